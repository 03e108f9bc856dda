//! An enterprise's notification settings: email language, alert recipients
//! and triggers, and the networks its webhooks may reach.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::json;

use super::access::AdminCtx;
use super::audit::{self, AuditEvent};
use super::{RequestMeta, Services};
use crate::domain::audit::Outcome;
use crate::domain::email;
use crate::domain::net_guard::Network;
use crate::domain::notifications::{Language, NotificationSettings};
use crate::error::FieldError;
use crate::store;
use crate::AppError;

pub const MAX_RECIPIENTS: usize = 20;
pub const MAX_NETWORKS: usize = 20;
/// A month: a sync quieter than that is not a schedule but an outage.
pub const MAX_STALE_HOURS: u32 = 720;

#[derive(utoipa::ToSchema, Debug, Serialize)]
pub struct SettingsView {
    /// `fr` or `en`: the language of invitation and alert emails.
    pub language: Language,
    /// Who receives alerts; `null` means the enterprise's active IT admins.
    pub alert_recipients: Option<Vec<String>>,
    /// Alert on runs where some rows failed, not only on failed runs.
    pub alert_on_partial: bool,
    /// Alert when no sync succeeded for this many hours; `null`: never.
    pub stale_after_hours: Option<u32>,
    /// CIDR networks webhooks may reach although the SSRF guard refuses
    /// private, loopback and link-local addresses.
    pub webhook_allowed_networks: Vec<String>,
}

fn view(settings: NotificationSettings) -> SettingsView {
    SettingsView {
        language: settings.language,
        alert_recipients: settings.alert_recipients,
        alert_on_partial: settings.alert_on_partial,
        stale_after_hours: settings.stale_after_hours,
        webhook_allowed_networks: settings
            .webhook_allowed_networks
            .iter()
            .map(ToString::to_string)
            .collect(),
    }
}

/// Absent fields keep their value; `alert_recipients` and `stale_after_hours`
/// given as `null` go back to their default.
#[derive(utoipa::ToSchema, Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SettingsChange {
    #[schema(value_type = Option<crate::domain::notifications::Language>)]
    pub language: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Vec<EmailAddress>>)]
    pub alert_recipients: Option<Option<Vec<String>>>,
    pub alert_on_partial: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u32>)]
    pub stale_after_hours: Option<Option<u32>>,
    pub webhook_allowed_networks: Option<Vec<String>>,
}

/// An email address, as the document names it.
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, format = Email)]
#[allow(dead_code)]
struct EmailAddress(String);

/// Tells `null` (Some(None)) from an absent field (None).
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

fn apply(
    mut settings: NotificationSettings,
    change: SettingsChange,
    operator: &[Network],
) -> Result<NotificationSettings, AppError> {
    let mut problems = Vec::new();
    if let Some(language) = change.language {
        match Language::parse(&language) {
            Some(l) => settings.language = l,
            None => problems.push(FieldError::new(
                "language",
                "invalid",
                "language must be fr or en",
            )),
        }
    }
    if let Some(recipients) = change.alert_recipients {
        match recipients {
            None => settings.alert_recipients = None,
            Some(list) if list.len() > MAX_RECIPIENTS => problems.push(FieldError::new(
                "alert_recipients",
                "too_many",
                format!("at most {MAX_RECIPIENTS} recipients"),
            )),
            Some(list) => {
                let mut clean = Vec::new();
                for (i, raw) in list.iter().enumerate() {
                    let address = email::normalize(raw);
                    match email::problem(&address) {
                        Some(why) => problems.push(FieldError::new(
                            format!("alert_recipients[{i}]"),
                            "invalid_email",
                            format!("{raw:?} {why}"),
                        )),
                        None if !clean.contains(&address) => clean.push(address),
                        None => {}
                    }
                }
                settings.alert_recipients = Some(clean);
            }
        }
    }
    if let Some(partial) = change.alert_on_partial {
        settings.alert_on_partial = partial;
    }
    if let Some(hours) = change.stale_after_hours {
        match hours {
            Some(h) if h == 0 || h > MAX_STALE_HOURS => problems.push(FieldError::new(
                "stale_after_hours",
                "out_of_range",
                format!("stale_after_hours must be 1 to {MAX_STALE_HOURS}, or null to turn the alert off"),
            )),
            hours => settings.stale_after_hours = hours,
        }
    }
    if let Some(networks) = change.webhook_allowed_networks {
        if networks.len() > MAX_NETWORKS {
            problems.push(FieldError::new(
                "webhook_allowed_networks",
                "too_many",
                format!("at most {MAX_NETWORKS} networks"),
            ));
        } else {
            let mut parsed = Vec::new();
            for (i, raw) in networks.iter().enumerate() {
                match raw.parse::<Network>() {
                    // A tenant chooses among the operator's networks, never more.
                    Ok(network) if !operator.iter().any(|op| op.covers(&network)) => {
                        problems.push(FieldError::new(
                            format!("webhook_allowed_networks[{i}]"),
                            "network_not_allowed",
                            if operator.is_empty() {
                                format!(
                                    "{network} is not open to webhooks: the appliance's operator \
                                     has opened no network (webhooks.allowed_networks)"
                                )
                            } else {
                                format!(
                                    "{network} is not inside a network the appliance's operator \
                                     opened to webhooks: {}",
                                    operator
                                        .iter()
                                        .map(Network::to_string)
                                        .collect::<Vec<_>>()
                                        .join(", ")
                                )
                            },
                        ))
                    }
                    Ok(network) if !parsed.contains(&network) => parsed.push(network),
                    Ok(_) => {}
                    Err(why) => problems.push(FieldError::new(
                        format!("webhook_allowed_networks[{i}]"),
                        "invalid_network",
                        why,
                    )),
                }
            }
            settings.webhook_allowed_networks = parsed;
        }
    }
    if problems.is_empty() {
        Ok(settings)
    } else {
        Err(AppError::Validation(problems))
    }
}

pub async fn get(svc: &Services, admin: &AdminCtx) -> Result<SettingsView, AppError> {
    let enterprise = admin.enterprise();
    svc.db
        .read(move |conn| {
            store::notification_settings::get(conn, enterprise).map_err(AppError::from)
        })
        .await
        .map(view)
}

pub async fn update(
    svc: &Services,
    admin: &AdminCtx,
    meta: &RequestMeta,
    change: SettingsChange,
) -> Result<SettingsView, AppError> {
    let (enterprise, now, meta) = (admin.enterprise(), svc.clock.now(), meta.clone());
    let actor = admin.actor();
    let operator = svc.settings().webhooks.allowed_networks.clone();
    svc.db
        .write(move |txn| {
            let before = store::notification_settings::get(txn, enterprise)?;
            let after = apply(before.clone(), change, &operator)?;
            if after != before {
                store::notification_settings::put(txn, enterprise, &after, now)?;
                let (old, new) = (view(before), view(after.clone()));
                let event = AuditEvent::new("notification_settings.update", Outcome::Success, actor)
                    .in_enterprise(enterprise)
                    .target("enterprise", enterprise)
                    .changes(json!({
                        "language": [old.language, new.language],
                        "alert_recipients": [old.alert_recipients.as_ref().map(Vec::len), new.alert_recipients.as_ref().map(Vec::len)],
                        "alert_on_partial": [old.alert_on_partial, new.alert_on_partial],
                        "stale_after_hours": [old.stale_after_hours, new.stale_after_hours],
                        "webhook_allowed_networks": [old.webhook_allowed_networks, new.webhook_allowed_networks],
                    }));
                audit::append(txn, &event, &meta, now)?;
            }
            Ok(view(after))
        })
        .await
}
