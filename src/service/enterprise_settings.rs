//! What an IT admin reads and changes of their own enterprise: its name,
//! contact email and sync mode (seats are the appliance operator's: read here,
//! set with `enterprise-sync set-seats`). Changes are audited with before and
//! after.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::access::AdminCtx;
use super::accounts::{checked_email, required_text};
use super::audit::{self, AuditEvent};
use super::{RequestMeta, Services};
use crate::domain::audit::Outcome;
use crate::domain::{Enterprise, EnterpriseId, EnterpriseSyncMode};
use crate::error::FieldError;
use crate::store;
use crate::AppError;

#[derive(utoipa::ToSchema, Debug, Serialize)]
pub struct EnterpriseSettings {
    pub enterprise_account_id: EnterpriseId,
    pub company_name: String,
    pub company_email: String,
    pub sync_mode: EnterpriseSyncMode,
    /// IANA time zone (`Europe/Paris` by default): the dashboard shows
    /// times in it.
    pub time_zone: String,
    /// Set by the appliance operator (`enterprise-sync set-seats`).
    pub seats_purchased: i64,
    /// Active staff (IT admins do not take seats).
    pub seats_used: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The fields to change; those left out stay as they are.
#[derive(utoipa::ToSchema, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnterpriseSettingsChange {
    /// 1 to 200 characters.
    #[serde(default, deserialize_with = "crate::domain::text::given")]
    #[schema(value_type = String, min_length = 1, max_length = 200, pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$")]
    pub company_name: Option<String>,
    #[serde(default, deserialize_with = "crate::domain::text::given")]
    #[schema(value_type = String, format = Email, max_length = 254)]
    pub company_email: Option<String>,
    #[serde(default, deserialize_with = "crate::domain::text::given")]
    #[schema(value_type = EnterpriseSyncMode)]
    pub sync_mode: Option<String>,
    /// An IANA time zone name (`Europe/Paris`, `America/Martinique`, `UTC`).
    #[serde(default, deserialize_with = "crate::domain::text::given")]
    #[schema(value_type = String, pattern = "^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$", max_length = 64)]
    pub time_zone: Option<String>,
    /// Not part of the contract: seats are the appliance operator's; sent
    /// anyway, it is refused (422 `read_only`) rather than ignored.
    #[schema(ignore)]
    pub seats_purchased: Option<serde_json::Value>,
}

fn settings_of(enterprise: Enterprise, seats_used: i64) -> EnterpriseSettings {
    EnterpriseSettings {
        enterprise_account_id: enterprise.id,
        company_name: enterprise.company_name,
        company_email: enterprise.company_email,
        sync_mode: enterprise.sync_mode,
        time_zone: enterprise.time_zone,
        seats_purchased: enterprise.seats_purchased,
        seats_used,
        created_at: enterprise.created_at,
        updated_at: enterprise.updated_at,
    }
}

fn read(
    conn: &rusqlite::Connection,
    enterprise: EnterpriseId,
) -> Result<EnterpriseSettings, AppError> {
    let account = store::enterprises::get(conn, enterprise)?.ok_or(AppError::NotFound {
        resource: "enterprise",
    })?;
    let seats_used = store::users::staff_counts(conn, enterprise)?.active;
    Ok(settings_of(account, seats_used))
}

pub async fn get(svc: &Services, admin: &AdminCtx) -> Result<EnterpriseSettings, AppError> {
    let enterprise = admin.enterprise();
    svc.db.read(move |conn| read(conn, enterprise)).await
}

/// Validates the change against the current settings: the values to store.
/// The values to store.
struct Validated {
    name: String,
    email: String,
    mode: EnterpriseSyncMode,
    time_zone: String,
}

fn validated(
    change: EnterpriseSettingsChange,
    current: &EnterpriseSettings,
) -> Result<Validated, AppError> {
    let mut errors = Vec::new();
    if change.seats_purchased.is_some() {
        errors.push(FieldError::new(
            "seats_purchased",
            "read_only",
            "seats are set by the appliance operator (enterprise-sync set-seats)",
        ));
    }
    let name = match change.company_name {
        Some(name) => required_text(&mut errors, "company_name", Some(name), 200),
        None => current.company_name.clone(),
    };
    let email = match change.company_email {
        Some(email) => checked_email(&mut errors, "company_email", Some(email)),
        None => current.company_email.clone(),
    };
    let mode = match change.sync_mode.as_deref().map(str::trim) {
        None => current.sync_mode,
        Some(mode) => EnterpriseSyncMode::parse(mode).unwrap_or_else(|| {
            errors.push(FieldError::new(
                "sync_mode",
                "invalid_value",
                "sync_mode must be api, scim or file",
            ));
            current.sync_mode
        }),
    };
    let time_zone = match change.time_zone {
        None => current.time_zone.clone(),
        Some(zone) => match zone.trim().parse::<chrono_tz::Tz>() {
            Ok(tz) => tz.name().to_string(),
            Err(_) => {
                errors.push(FieldError::new(
                    "time_zone",
                    "invalid_value",
                    "time_zone is an IANA time zone name, such as Europe/Paris",
                ));
                current.time_zone.clone()
            }
        },
    };
    if errors.is_empty() {
        Ok(Validated {
            name,
            email,
            mode,
            time_zone,
        })
    } else {
        Err(AppError::Validation(errors))
    }
}

/// Changes the given fields, audited with each changed field's before and
/// after (an unchanged request records nothing).
pub async fn update(
    svc: &Services,
    admin: &AdminCtx,
    meta: &RequestMeta,
    change: EnterpriseSettingsChange,
) -> Result<EnterpriseSettings, AppError> {
    let (enterprise, actor, now, meta) = (
        admin.enterprise(),
        admin.actor(),
        svc.clock.now(),
        meta.clone(),
    );
    svc.db
        .write(move |txn| {
            let before = read(txn, enterprise)?;
            let Validated {
                name,
                email,
                mode,
                time_zone,
            } = validated(change, &before)?;
            let mut changes = serde_json::Map::new();
            if name != before.company_name {
                changes.insert(
                    "company_name".into(),
                    serde_json::json!([before.company_name, name]),
                );
            }
            if email != before.company_email {
                changes.insert(
                    "company_email".into(),
                    serde_json::json!([before.company_email, email]),
                );
            }
            if mode != before.sync_mode {
                changes.insert(
                    "sync_mode".into(),
                    serde_json::json!([before.sync_mode.as_str(), mode.as_str()]),
                );
            }
            if time_zone != before.time_zone {
                changes.insert(
                    "time_zone".into(),
                    serde_json::json!([before.time_zone, time_zone]),
                );
            }
            if changes.is_empty() {
                return Ok(before);
            }
            let profile = store::enterprises::Profile {
                company_name: &name,
                company_email: &email,
                sync_mode: mode,
                time_zone: &time_zone,
            };
            store::enterprises::update_profile(txn, enterprise, &profile, now)?;
            let event = AuditEvent::new("enterprise.settings.update", Outcome::Success, actor)
                .in_enterprise(enterprise)
                .target("enterprise", enterprise)
                .changes(serde_json::Value::Object(changes));
            audit::append(txn, &event, &meta, now)?;
            read(txn, enterprise)
        })
        .await
}
