//! The product's records as the rest of the program sees them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::ids::{EnterpriseId, StoreId, UserId};

macro_rules! text_enum {
    ($name:ident { $($variant:ident => $text:tt),+ $(,)? }) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
        pub enum $name {
            $(#[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }

            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
        }

        impl rusqlite::types::ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
                Ok(rusqlite::types::ToSqlOutput::from(self.as_str()))
            }
        }

        impl rusqlite::types::FromSql for $name {
            fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
                let text = value.as_str()?;
                $name::parse(text).ok_or_else(|| rusqlite::types::FromSqlError::Other(
                    format!("unexpected {} value {text:?}", stringify!($name)).into(),
                ))
            }
        }
    };
}

pub(crate) use text_enum;

text_enum!(Role {
    ItAdmin => "it_admin",
    Manager => "manager",
    Seller => "seller",
});

text_enum!(EnterpriseSyncMode {
    Api => "api",
    Scim => "scim",
    File => "file",
});

// Where a dropped file stands. `processing` until its outcome is written in
// the transaction of its import (or of its refusal); `held` waits for an IT
// admin's approval, which sets it `processing` again. `waiting` is only in
// the files list: still in `incoming/` because claiming it failed (a full
// disk, say); it is never stored.
text_enum!(FileState {
    Processing => "processing",
    Applied => "applied",
    Duplicate => "duplicate",
    Failed => "failed",
    Refused => "refused",
    Held => "held",
    Waiting => "waiting",
});

text_enum!(RecordSyncMode {
    ApiSync => "api_sync",
    ScimSync => "scim_sync",
    FileSync => "file_sync",
    Manual => "manual",
});

/// The most seats an enterprise can hold (registration, operator, config).
pub const MAX_SEATS: i64 = 10_000_000;

#[derive(Debug, Clone, Serialize)]
pub struct Enterprise {
    pub id: EnterpriseId,
    pub company_name: String,
    pub company_email: String,
    pub sync_mode: EnterpriseSyncMode,
    pub scim_enabled: bool,
    pub seats_purchased: i64,
    pub rate_limit_per_key_per_minute: Option<u32>,
    pub rate_limit_per_enterprise_per_minute: Option<u32>,
    pub rate_limit_scim_per_minute: Option<u32>,
    /// IANA name; the dashboard shows times in it.
    pub time_zone: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A person, without any credential material.
#[derive(utoipa::ToSchema, Debug, Clone, Serialize)]
pub struct User {
    pub id: UserId,
    pub enterprise_account_id: EnterpriseId,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub store_id: Option<StoreId>,
    pub manager_id: Option<UserId>,
    pub external_id: Option<String>,
    pub sync_mode: RecordSyncMode,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deactivated_at: Option<DateTime<Utc>>,
}

#[derive(utoipa::ToSchema, Debug, Clone, Serialize)]
pub struct Store {
    pub id: StoreId,
    pub enterprise_account_id: EnterpriseId,
    pub name: String,
    pub location: Option<String>,
    pub address: Option<String>,
    pub phone: Option<String>,
    pub external_id: Option<String>,
    pub sync_mode: RecordSyncMode,
    pub gerant_id: Option<String>,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deactivated_at: Option<DateTime<Utc>>,
}
