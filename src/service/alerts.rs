//! Alerts: one per incident (a failed run, a partial one if the enterprise
//! asked, a held file, no successful sync for too long), emailed to the
//! enterprise's recipients and recorded in the audit trail. Raised inside the
//! transaction that records the incident, so a rolled-back run alerts no one.

use chrono::{DateTime, Utc};
use rusqlite::Connection;
use serde_json::json;

use super::access::Actor;
use super::audit::{self, AuditEvent};
use super::{RequestMeta, Services};
use crate::domain::audit::{ActorType, Outcome};
use crate::domain::notifications::AlertFacts;
use crate::domain::EnterpriseId;
use crate::store;
use crate::AppError;

/// Incidents emailed per enterprise per hour: a source failing every minute
/// must not flood the admins' mailboxes. Further incidents are still recorded
/// and audited, marked suppressed.
pub const MAX_ALERT_EMAILS_PER_HOUR: u32 = 10;

fn kind_of(facts: &AlertFacts) -> &'static str {
    match facts {
        AlertFacts::SyncFailed { .. } => "sync_failed",
        AlertFacts::SyncPartial { .. } => "sync_partial",
        AlertFacts::FileHeld { .. } => "file_held",
        AlertFacts::SyncStale { .. } => "sync_stale",
        AlertFacts::DiskLow { .. } => "disk_low",
        AlertFacts::Seats { full: false, .. } => "seats_high",
        AlertFacts::Seats { full: true, .. } => "seats_full",
    }
}

/// The addresses an enterprise's alerts go to: its list, else its active IT admins.
pub fn recipients(conn: &Connection, enterprise: EnterpriseId) -> rusqlite::Result<Vec<String>> {
    match store::notification_settings::get(conn, enterprise)?.alert_recipients {
        Some(list) => Ok(list),
        None => store::users::admin_emails(conn, enterprise),
    }
}

/// Raises one alert about `subject_id`: one email per recipient, an `alerts`
/// row, and an audit event.
pub fn raise(
    conn: &Connection,
    enterprise: EnterpriseId,
    subject_id: Option<&str>,
    facts: &AlertFacts,
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    let kind = kind_of(facts);
    let to = recipients(conn, enterprise)?;
    let hour_ago = now - chrono::Duration::hours(1);
    let suppressed =
        store::alerts::emailed_since(conn, enterprise, hour_ago)? >= MAX_ALERT_EMAILS_PER_HOUR;
    let payload = serde_json::to_string(facts).map_err(AppError::internal)?;
    if !suppressed {
        for address in &to {
            store::email_outbox::insert(
                conn,
                &store::email_outbox::NewEmail {
                    enterprise: Some(enterprise),
                    kind: "alert",
                    recipient: address,
                    user_id: None,
                    payload: &payload,
                    now,
                },
            )?;
        }
    }
    let id = uuid::Uuid::now_v7().to_string();
    store::alerts::insert(
        conn,
        &store::alerts::NewAlert {
            id: &id,
            enterprise,
            kind,
            subject_id,
            recipients: to.len(),
            suppressed,
            now,
        },
    )?;
    let mut event = AuditEvent::new(
        "alert.raise",
        Outcome::Success,
        Actor {
            kind: ActorType::System,
            id: "alerts".into(),
        },
    )
    .in_enterprise(enterprise)
    .target("alert", &id)
    .changes(json!({
        "kind": kind,
        "subject_id": subject_id,
        "recipients": to.len(),
        "suppressed": suppressed,
    }));
    if suppressed {
        event = event.reason("hourly_alert_cap");
    }
    audit::append(conn, &event, &RequestMeta::default(), now)?;
    if to.is_empty() {
        tracing::warn!(%enterprise, kind, "an alert has no recipient: the enterprise has no active IT admin and no alert list");
    }
    Ok(())
}

/// After a run: alerts the enterprise once when its active staff reach 90 %
/// of the purchased seats, once more when they reach all of them, and again
/// only after use fell back under the level.
pub fn check_seats(
    conn: &Connection,
    enterprise: EnterpriseId,
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    let Some((purchased, alerted)) = store::enterprises::seats(conn, enterprise)? else {
        return Ok(());
    };
    let used = store::users::staff_counts(conn, enterprise)?.active;
    let level = match purchased {
        0 => 0,
        _ if used >= purchased => 2,
        _ if used * 10 >= purchased * 9 => 1,
        _ => 0,
    };
    if level != alerted {
        store::enterprises::set_seat_alert_level(conn, enterprise, level)?;
    }
    if level > alerted {
        let facts = AlertFacts::Seats {
            used,
            purchased,
            full: level == 2,
            at: now,
        };
        raise(conn, enterprise, None, &facts, now)?;
    }
    Ok(())
}

/// Alerts every enterprise whose last applied run is older than its
/// `stale_after_hours`, once per silence (the alert names that run).
/// Enterprises that never synced are not alerted: they are being set up.
pub async fn check_stale(svc: &Services) -> Result<usize, AppError> {
    let now = svc.clock.now();
    let raised = svc
        .db
        .write(move |txn| {
            let mut raised = 0;
            for enterprise in store::enterprises::all_ids(txn)? {
                let settings = store::notification_settings::get(txn, enterprise)?;
                let Some(hours) = settings.stale_after_hours else {
                    continue;
                };
                let Some((run_id, at)) = store::sync_logs::last_applied_run(txn, enterprise)?
                else {
                    continue;
                };
                let Some(last) = store::parse_ts(&at) else {
                    continue;
                };
                if now - last < chrono::Duration::hours(i64::from(hours))
                    || store::alerts::exists(txn, enterprise, "sync_stale", &run_id)?
                {
                    continue;
                }
                raise(
                    txn,
                    enterprise,
                    Some(&run_id),
                    &AlertFacts::SyncStale {
                        hours,
                        last_success_at: last,
                    },
                    now,
                )?;
                raised += 1;
            }
            Ok::<_, AppError>(raised)
        })
        .await?;
    if raised > 0 {
        svc.outbound.wake_email();
    }
    Ok(raised)
}
