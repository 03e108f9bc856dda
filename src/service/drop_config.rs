//! An enterprise's drop-directory profile: read, set by its IT admins (audited,
//! validated whole), reset to the config file's, and tried on a sample file.

use serde::Serialize;

use super::access::{AdminCtx, EnterpriseCtx};
use super::audit::{self, AuditEvent};
use super::{RequestMeta, Services};
use crate::domain::audit::Outcome;
use crate::domain::drop_profile::DropProfile;
use crate::domain::EnterpriseId;
use crate::dropfile::settings::{DropSettings, ProfileSource};
use crate::store;
use crate::AppError;

/// The profile in force for an enterprise: the API's, else the config file's,
/// else the defaults.
pub async fn settings_of(
    svc: &Services,
    enterprise: EnterpriseId,
) -> Result<DropSettings, AppError> {
    let stored = svc
        .db
        .read(move |conn| store::drop_profiles::get(conn, enterprise).map_err(AppError::from))
        .await?;
    settings_from(svc, enterprise, stored.as_ref())
}

fn settings_from(
    svc: &Services,
    enterprise: EnterpriseId,
    stored: Option<&store::drop_profiles::StoredProfile>,
) -> Result<DropSettings, AppError> {
    let settings = svc.settings();
    let config = &settings.dropdir;
    match stored {
        None => Ok(DropSettings::from_config(config, &enterprise.to_string())),
        Some(stored) => {
            let profile: DropProfile = serde_json::from_str(&stored.profile).map_err(|e| {
                AppError::Internal(format!("the stored drop profile cannot be read: {e}"))
            })?;
            Ok(DropSettings::resolve(config, profile, ProfileSource::Api))
        }
    }
}

#[derive(utoipa::ToSchema, Debug, Serialize)]
pub struct DropConfigView {
    pub source: ProfileSource,
    /// The profile as set (what a PUT replaces).
    pub profile: DropProfile,
    /// What is in force once the appliance defaults fill the gaps.
    pub effective: serde_json::Value,
    pub updated_by: Option<String>,
    pub updated_at: Option<String>,
    /// The enterprise's folder (its SFTP account's root), when the drop directory is on.
    pub drop_folder: Option<String>,
}

pub async fn get(svc: &Services, ctx: &EnterpriseCtx) -> Result<DropConfigView, AppError> {
    view(svc, ctx.enterprise()).await
}

async fn view(svc: &Services, enterprise: EnterpriseId) -> Result<DropConfigView, AppError> {
    let stored = svc
        .db
        .read(move |conn| store::drop_profiles::get(conn, enterprise).map_err(AppError::from))
        .await?;
    let settings = settings_from(svc, enterprise, stored.as_ref())?;
    let drop_folder = svc.config.dropdir.enabled.then(|| {
        crate::dropfile::layout::Folders::of(&svc.settings(), enterprise)
            .drop_folder()
            .display()
            .to_string()
    });
    Ok(DropConfigView {
        source: settings.source,
        effective: settings.effective(),
        profile: settings.profile,
        updated_by: stored.as_ref().map(|s| s.updated_by.clone()),
        updated_at: stored.as_ref().and_then(|s| s.updated_at).map(store::ts),
        drop_folder,
    })
}

/// Replaces the enterprise's profile; the next file read uses it.
pub async fn put(
    svc: &Services,
    admin: &AdminCtx,
    profile: DropProfile,
    meta: &RequestMeta,
) -> Result<DropConfigView, AppError> {
    profile.validate().map_err(AppError::Validation)?;
    let enterprise = admin.enterprise();
    let text = serde_json::to_string(&profile)
        .map_err(|e| AppError::Internal(format!("writing the profile: {e}")))?;
    let (actor, now) = (admin.actor(), svc.clock.now());
    let event = AuditEvent::new("drop_config.update", Outcome::Success, actor.clone())
        .in_enterprise(enterprise)
        .target("drop_config", enterprise)
        .changes(serde_json::json!({ "profile": profile }));
    let meta_owned = meta.clone();
    svc.db
        .write(move |txn| {
            store::drop_profiles::put(txn, enterprise, &text, &actor.id, now)?;
            audit::append(txn, &event, &meta_owned, now)?;
            Ok::<_, AppError>(())
        })
        .await?;
    view(svc, enterprise).await
}

/// Drops the API's profile: the config file's (or the defaults) applies again.
pub async fn reset(
    svc: &Services,
    admin: &AdminCtx,
    meta: &RequestMeta,
) -> Result<DropConfigView, AppError> {
    let enterprise = admin.enterprise();
    let (actor, now) = (admin.actor(), svc.clock.now());
    let event = AuditEvent::new("drop_config.reset", Outcome::Success, actor)
        .in_enterprise(enterprise)
        .target("drop_config", enterprise);
    let meta_owned = meta.clone();
    svc.db
        .write(move |txn| {
            store::drop_profiles::delete(txn, enterprise)?;
            audit::append(txn, &event, &meta_owned, now)?;
            Ok::<_, AppError>(())
        })
        .await?;
    view(svc, enterprise).await
}

/// A sample file to try a profile on.
pub struct Sample {
    pub file_name: String,
    /// users or stores; else from the file name.
    pub kind: Option<crate::dropfile::formats::Kind>,
    pub bytes: Vec<u8>,
    /// A profile to try instead of the one in force.
    pub profile: Option<DropProfile>,
}

/// Rows shown by a preview.
pub const PREVIEW_ROWS: usize = 20;

#[derive(utoipa::ToSchema, Debug, Serialize)]
pub struct Preview {
    pub kind: &'static str,
    pub encoding: &'static str,
    pub delimiter: Option<String>,
    /// The profile tried: `request` (sent with the sample) or where the one in force comes from.
    pub profile: &'static str,
    /// The header line's columns as compared with the mapping (CSV only).
    pub columns: Vec<String>,
    pub records: usize,
    /// The first mapped rows, by record number.
    pub rows: Vec<serde_json::Value>,
    pub full_export: bool,
    /// What importing the file now would do (a dry run of the import engine),
    /// row errors included.
    pub would: crate::domain::import::ImportReport,
}

/// Reads a sample as a dropped file would be read and runs the import as a dry
/// run: nothing is written.
pub async fn preview(
    svc: &Services,
    ctx: &EnterpriseCtx,
    sample: Sample,
) -> Result<Preview, AppError> {
    use crate::dropfile::formats::{self, Kind};
    use crate::service::drop_files::{import_records, FileImport};
    let enterprise = ctx.enterprise();
    let (settings, tried) = match sample.profile {
        Some(profile) => {
            profile.validate().map_err(AppError::Validation)?;
            let settings = DropSettings::resolve(&svc.config.dropdir, profile, ProfileSource::Api);
            (settings, "request")
        }
        None => {
            let settings = settings_of(svc, enterprise).await?;
            let source = match settings.source {
                ProfileSource::Api => "api",
                ProfileSource::ConfigFile => "config_file",
                ProfileSource::Defaults => "defaults",
            };
            (settings, source)
        }
    };
    let kind = match sample
        .kind
        .or_else(|| Kind::of(&sample.file_name, &svc.config.dropdir))
    {
        Some(kind) => kind,
        None => return Err(AppError::field(
            "kind",
            "required",
            "say kind=users or kind=stores, or give a file_name starting with a configured prefix",
        )),
    };
    let full_export = kind == Kind::Users && settings.is_full_export(&sample.file_name);
    let today = svc.clock.now().date_naive();
    let max_rows = svc.config.imports.max_rows;
    let name = sample.file_name.clone();
    let bytes = sample.bytes;
    let fallback = settings.fallback_encoding;
    let read_settings = settings.clone();
    let (encoding, read) = tokio::task::spawn_blocking(move || {
        let decoded = formats::decode(&bytes, fallback);
        let options = read_settings.read_options(today);
        let read = formats::read(kind, &name, &decoded.text, max_rows, &options);
        (decoded.encoding, read)
    })
    .await
    .map_err(|e| AppError::Internal(format!("preview task: {e}")))?;
    let records = read.map_err(|problem| AppError::BadRequest {
        code: "unreadable_file",
        message: problem.0,
    })?;
    let shown = formats::shown_rows(&records, PREVIEW_ROWS);
    let mut details = serde_json::Map::new();
    details.insert("file".into(), serde_json::json!(sample.file_name));
    let previous_rows = svc
        .db
        .read(move |conn| {
            store::drop_files::last_full_export_rows(conn, enterprise).map_err(AppError::from)
        })
        .await?;
    let how = FileImport {
        enterprise,
        source: crate::domain::import::ImportSource {
            kind: crate::domain::import::SourceKind::File,
            initiated_by: format!("file:{}", sample.file_name),
        },
        details,
        mode: None,
        dry_run: true,
        full_export: full_export.then(|| crate::service::import::FullExport {
            max_deactivate_percent: settings.max_deactivate_percent,
            max_deactivate_count: settings.max_deactivate_count,
            previous_rows: previous_rows.and_then(|n| usize::try_from(n).ok()),
            approved: false,
            stale: None,
        }),
        all_or_nothing: !full_export
            && settings.delta_row_errors == crate::domain::drop_profile::RowErrorPolicy::RejectFile,
    };
    let delimiter = records.delimiter().map(|d| match d {
        '\t' => "tab".to_string(),
        other => other.to_string(),
    });
    let (columns, count) = (records.columns().to_vec(), records.len());
    let would = import_records(svc, records, how, None).await?;
    Ok(Preview {
        kind: kind.as_str(),
        encoding,
        delimiter,
        profile: tried,
        columns,
        records: count,
        rows: shown,
        full_export,
        would,
    })
}
