//! Each enterprise's notification settings; an enterprise without a row has
//! the defaults.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};

use super::ts;
use crate::domain::net_guard::Network;
use crate::domain::notifications::{Language, NotificationSettings};
use crate::domain::EnterpriseId;

pub fn get(conn: &Connection, enterprise: EnterpriseId) -> rusqlite::Result<NotificationSettings> {
    let found = conn
        .prepare_cached(
            "SELECT language, alert_recipients, alert_on_partial, stale_after_hours,
                    webhook_allowed_networks
               FROM notification_settings WHERE enterprise_account_id = ?1",
        )?
        .query_row([enterprise], |row| {
            let language: String = row.get(0)?;
            let recipients: Option<String> = row.get(1)?;
            let networks: String = row.get(4)?;
            Ok(NotificationSettings {
                language: Language::parse(&language).unwrap_or_default(),
                alert_recipients: recipients
                    .and_then(|text| serde_json::from_str::<Vec<String>>(&text).ok()),
                alert_on_partial: row.get(2)?,
                stale_after_hours: row.get(3)?,
                // A network this version cannot read allows nothing.
                webhook_allowed_networks: serde_json::from_str::<Vec<String>>(&networks)
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|n| n.parse::<Network>().ok())
                    .collect(),
            })
        })
        .optional()?;
    Ok(found.unwrap_or_default())
}

pub fn put(
    conn: &Connection,
    enterprise: EnterpriseId,
    settings: &NotificationSettings,
    now: DateTime<Utc>,
) -> rusqlite::Result<()> {
    let recipients = settings
        .alert_recipients
        .as_ref()
        .map(|list| serde_json::to_string(list).unwrap_or_else(|_| "[]".into()));
    let networks: Vec<String> = settings
        .webhook_allowed_networks
        .iter()
        .map(ToString::to_string)
        .collect();
    conn.prepare_cached(
        "INSERT INTO notification_settings (enterprise_account_id, language, alert_recipients,
                                            alert_on_partial, stale_after_hours,
                                            webhook_allowed_networks, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (enterprise_account_id) DO UPDATE SET
            language = excluded.language, alert_recipients = excluded.alert_recipients,
            alert_on_partial = excluded.alert_on_partial,
            stale_after_hours = excluded.stale_after_hours,
            webhook_allowed_networks = excluded.webhook_allowed_networks,
            updated_at = excluded.updated_at",
    )?
    .execute(params![
        enterprise,
        settings.language.as_str(),
        recipients,
        settings.alert_on_partial,
        settings.stale_after_hours,
        serde_json::to_string(&networks).unwrap_or_else(|_| "[]".into()),
        ts(now)
    ])?;
    Ok(())
}
