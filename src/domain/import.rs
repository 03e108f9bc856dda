//! What every import source (REST bulk import, drop-directory files, SCIM) hands
//! to the one import engine, and the report it gets back.

use super::records::text_enum;
use serde::{Deserialize, Serialize};

use super::ids::{StoreId, UserId};
use super::records::RecordSyncMode;

#[derive(utoipa::ToSchema, Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportMode {
    /// A row whose record exists is an error.
    CreateOnly,
    /// A row whose record does not exist is an error.
    UpdateOnly,
    #[default]
    CreateOrUpdate,
}

impl ImportMode {
    pub fn parse(text: &str) -> Option<ImportMode> {
        match text {
            "create_only" => Some(ImportMode::CreateOnly),
            "update_only" => Some(ImportMode::UpdateOnly),
            "create_or_update" => Some(ImportMode::CreateOrUpdate),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    Api,
    File,
    Scim,
}

impl SourceKind {
    /// `sync_logs.sync_type`.
    pub fn sync_type(self) -> &'static str {
        match self {
            SourceKind::Api => "api",
            SourceKind::File => "file",
            SourceKind::Scim => "scim",
        }
    }

    /// The `sync_mode` given to records this source creates.
    pub fn record_sync_mode(self) -> RecordSyncMode {
        match self {
            SourceKind::Api => RecordSyncMode::ApiSync,
            SourceKind::File => RecordSyncMode::FileSync,
            SourceKind::Scim => RecordSyncMode::ScimSync,
        }
    }
}

/// Who runs an import: the source kind and the `initiated_by` of its sync log
/// (`api_key:<id>`, `file:<name>`, `scim:<id>`).
#[derive(Debug, Clone)]
pub struct ImportSource {
    pub kind: SourceKind,
    pub initiated_by: String,
}

/// What a run's rows are about: its sync-log entry's `resource_type`, which
/// keys limited to one kind read runs by.
pub trait ImportedResource {
    const RESOURCE_TYPE: &'static str;
}

impl ImportedResource for StoreRecord {
    const RESOURCE_TYPE: &'static str = "store";
}

impl ImportedResource for UserRecord {
    const RESOURCE_TYPE: &'static str = "user";
}

/// A store row, normalised by the adapter. `None` means "not given".
#[derive(utoipa::ToSchema, Debug, Clone, Default, PartialEq)]
pub struct StoreRecord {
    /// SCIM only: the store this row is (matched by our id, or created with
    /// it). REST bodies and files never set it.
    #[schema(ignore)]
    pub id: Option<StoreId>,
    pub name: Option<String>,
    pub location: Option<String>,
    pub address: Option<String>,
    pub phone: Option<String>,
    pub external_id: Option<String>,
    pub active: Option<bool>,
    /// SCIM only: the row replaces the store, so an absent externalId clears it.
    #[schema(ignore)]
    pub clear_external_id: bool,
}

/// A user row. `store_ref` and `manager_ref` may be our id or the source's
/// external id (a manager also by email).
#[derive(utoipa::ToSchema, Debug, Clone, Default, PartialEq)]
pub struct UserRecord {
    /// SCIM only: the person this row is (matched by our id, or created with
    /// it). REST bodies and files never set it.
    #[schema(ignore)]
    pub id: Option<UserId>,
    pub email: Option<String>,
    pub name: Option<String>,
    /// `manager` or `seller`; another value is that row's error (the
    /// report's, with 200), not the request's.
    pub role: Option<String>,
    /// The store: our id or its external id.
    #[schema(rename = "store_id")]
    pub store_ref: Option<String>,
    /// The manager: our id, their external id or their email.
    #[schema(rename = "manager_id")]
    pub manager_ref: Option<String>,
    pub external_id: Option<String>,
    pub active: Option<bool>,
    /// SCIM only: what the row takes away rather than leaves as it is (a
    /// member removed from their group, a manager or externalId removed).
    #[schema(ignore)]
    pub clear: ClearFields,
    /// SCIM only: what a person the row creates is written with besides
    /// (a person it updates gets it in a write of its own).
    #[schema(ignore)]
    pub scim_identity: Option<ScimIdentity>,
}

/// A SCIM User's userName and the attributes kept to answer it as sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScimIdentity {
    pub user_name: String,
    /// JSON text.
    pub attributes: String,
}

/// Fields a SCIM row empties; REST bodies and files never empty a field.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClearFields {
    pub store: bool,
    pub manager: bool,
    pub external_id: bool,
}

// Why a row was refused. Text only at the JSON and SQL edges: SCIM's
// answers, alerts and reports match on the variant.
text_enum!(RowErrorCode {
    // Read by the adapter.
    InvalidRow => "invalid_row",
    InvalidType => "invalid_type",
    InvalidDate => "invalid_date",
    ForbiddenField => "forbidden_field",
    // The row on its own.
    Required => "required",
    TooLong => "too_long",
    InvalidEmail => "invalid_email",
    InvalidRole => "invalid_role",
    ForbiddenRole => "forbidden_role",
    // The row against the request and the enterprise.
    DuplicateKey => "duplicate_key",
    EmailTaken => "email_taken",
    ExternalIdTaken => "external_id_taken",
    AlreadyExists => "already_exists",
    NotFound => "not_found",
    UnknownStore => "unknown_store",
    StoreRequired => "store_required",
    UnknownManager => "unknown_manager",
    NotAManager => "not_a_manager",
    ManagerHasStaff => "manager_has_staff",
    SeatLimitReached => "seat_limit_reached",
});

/// A problem with one row: where, which record, which field, why.
#[derive(utoipa::ToSchema, Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowError {
    pub row: usize,
    /// The row's external_id, else its email or name, to find it in the source.
    pub key: Option<String>,
    pub field: Option<String>,
    pub code: RowErrorCode,
    pub message: String,
}

impl RowError {
    /// The error as stored in a sync log: its texts bounded.
    pub fn bounded(&self) -> RowError {
        use crate::domain::text::{clip, MAX_TEXT_CHARS};
        RowError {
            row: self.row,
            key: self.key.as_deref().map(|key| clip(key, MAX_TEXT_CHARS)),
            field: self
                .field
                .as_deref()
                .map(|field| clip(field, MAX_TEXT_CHARS)),
            code: self.code,
            message: clip(&self.message, MAX_TEXT_CHARS),
        }
    }
}

/// The row numbers reports and messages use, so people find the row in their
/// source: the REST body's index, or a file's record number.
#[derive(Debug, Clone, Default)]
pub enum RowNumbering {
    /// 0 for the first row, as in the request's `rows` array.
    #[default]
    Index,
    /// 1 for the first record after a file's header.
    FromOne,
    /// The record number of each row, when the adapter left records out
    /// (superseded dated rows).
    Explicit(std::sync::Arc<[usize]>),
}

impl RowNumbering {
    pub fn number(&self, row: usize) -> usize {
        match self {
            RowNumbering::Index => row,
            RowNumbering::FromOne => row + 1,
            RowNumbering::Explicit(numbers) => numbers.get(row).copied().unwrap_or(row + 1),
        }
    }
}

/// A problem the adapter found in a row while reading it.
#[derive(Debug, Clone)]
pub struct RowProblem {
    pub field: Option<String>,
    pub code: RowErrorCode,
    pub message: String,
}

/// A row as the adapter read it.
pub struct SourceRow {
    pub record: UserRecord,
    pub problems: Vec<RowProblem>,
    /// How reports name the row in its `problems`, when the adapter names
    /// rows otherwise than the engine (a JSON row: its external_id, email or
    /// name as written); `None`: the engine's key.
    pub problems_key: Option<String>,
    /// Fields the adapter ignored (unknown to it) that this row is the first
    /// to name: the run warns of them once.
    pub ignored_fields: Vec<String>,
}

/// Rows read one at a time (a file being parsed). An `Err` is the source
/// failing as a whole (an unreadable record): the import stops, nothing applies.
pub type RowStream = Box<dyn Iterator<Item = Result<SourceRow, String>> + Send>;

/// Longest accepted text field, in characters.
pub const MAX_TEXT: usize = 500;
pub const MAX_NAME: usize = 200;
pub const MAX_EXTERNAL_ID: usize = 255;

text_enum!(SyncOperation {
    BulkUserImport => "bulk_user_import",
    BulkStoreImport => "bulk_store_import",
    FileImport => "file_import",
    ScimUserCreate => "scim_user_create",
    ScimUserReplace => "scim_user_replace",
    ScimUserPatch => "scim_user_patch",
    ScimUserDelete => "scim_user_delete",
    ScimGroupCreate => "scim_group_create",
    ScimGroupReplace => "scim_group_replace",
    ScimGroupPatch => "scim_group_patch",
    ScimGroupDelete => "scim_group_delete",
});
// The per-record entries a run's changes read as in the sync logs.
text_enum!(RecordOperation {
    UserCreated => "user_created",
    UserUpdated => "user_updated",
    UserDeactivated => "user_deactivated",
    StoreCreated => "store_created",
    StoreUpdated => "store_updated",
    StoreDeactivated => "store_deactivated",
});
/// A run's `status`.
pub const SYNC_STATUSES: [&str; 3] = ["success", "partial", "failed"];
/// A run's `sync_type`: where it came from.
pub const SYNC_TYPES: [&str; 3] = ["api", "file", "scim"];

#[derive(utoipa::ToSchema, Debug, Clone, Default, Serialize)]
pub struct ImportReport {
    pub success: bool,
    pub dry_run: bool,
    pub total_processed: usize,
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub deactivated: usize,
    pub failed: usize,
    /// Created users who were given an invitation.
    pub invited: usize,
    pub errors: Vec<RowError>,
    pub warnings: Vec<String>,
    /// The sync_logs entry of this run (absent on a dry run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync_log_id: Option<String>,
    /// Set when nothing was applied on purpose: a full export held by the
    /// deactivation guard, or rejected whole for its row errors. The counts
    /// then say what the import would have done.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_applied: Option<NotApplied>,
}

// Why a run applied nothing on purpose.
text_enum!(NotAppliedCode {
    // An all-or-nothing source with row errors.
    RowsRejected => "rows_rejected",
    // A full export the deactivation guard holds for an IT admin's approval.
    FullExportHeld => "full_export_held",
    // A full export with row errors (a skipped row must not look like a leaver).
    FullExportRejected => "full_export_rejected",
});

#[derive(utoipa::ToSchema, Debug, Clone, Serialize, PartialEq, Eq)]
pub struct NotApplied {
    pub code: NotAppliedCode,
    pub message: String,
}
