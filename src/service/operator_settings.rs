//! Appliance-operator settings of an enterprise (run from the command line on the
//! appliance, not through the API: they protect the appliance from its tenants).

use super::access::Actor;
use super::audit::{self, AuditEvent};
use super::RequestMeta;
use crate::clock::SharedClock;
use crate::domain::audit::{ActorType, Outcome};
use crate::domain::EnterpriseId;
use crate::store::{self, Db};
use crate::AppError;

/// Sets the per-key and per-enterprise request limits (`None`: the appliance
/// default). Running servers apply them within the key cache's 5 seconds.
/// An operator's change to an enterprise, made from the command line.
fn operator_change(action: &'static str, enterprise: EnterpriseId) -> AuditEvent {
    AuditEvent::new(
        action,
        Outcome::Success,
        Actor {
            kind: ActorType::System,
            id: "cli".into(),
        },
    )
    .in_enterprise(enterprise)
    .target("enterprise", enterprise)
}

/// The operator's seat count for an enterprise (`enterprise-sync set-seats`),
/// audited with before and after; imports read it at their next run.
pub async fn set_seats(
    db: &Db,
    clock: &SharedClock,
    enterprise: EnterpriseId,
    seats: i64,
) -> Result<(), AppError> {
    if !(0..=crate::domain::records::MAX_SEATS).contains(&seats) {
        return Err(AppError::field(
            "seats",
            "out_of_range",
            format!("seats must be 0 to {}", crate::domain::records::MAX_SEATS),
        ));
    }
    let now = clock.now();
    db.write(move |txn| {
        let before = store::enterprises::get(txn, enterprise)?.ok_or(AppError::NotFound {
            resource: "enterprise",
        })?;
        store::enterprises::set_seats(txn, enterprise, seats, now)?;
        let event = operator_change("enterprise.seats.update", enterprise)
            .changes(serde_json::json!({ "seats_purchased": [before.seats_purchased, seats] }));
        audit::append(txn, &event, &RequestMeta::default(), now)?;
        Ok(())
    })
    .await
}

pub async fn set_rate_limits(
    db: &Db,
    clock: &SharedClock,
    enterprise: EnterpriseId,
    limits: store::enterprises::RateLimits,
) -> Result<(), AppError> {
    if [limits.per_key, limits.per_enterprise, limits.scim].contains(&Some(0)) {
        return Err(AppError::field(
            "rate_limit",
            "out_of_range",
            "limits must be at least 1",
        ));
    }
    let now = clock.now();
    db.write(move |txn| {
        let before = store::enterprises::get(txn, enterprise)?.ok_or(AppError::NotFound { resource: "enterprise" })?;
        store::enterprises::set_rate_limits(txn, enterprise, limits, now)?;
        let event = operator_change("enterprise.rate_limits.update", enterprise).changes(serde_json::json!({
            "rate_limit_per_key_per_minute": [before.rate_limit_per_key_per_minute, limits.per_key],
            "rate_limit_per_enterprise_per_minute": [before.rate_limit_per_enterprise_per_minute, limits.per_enterprise],
            "rate_limit_scim_per_minute": [before.rate_limit_scim_per_minute, limits.scim],
        }));
        audit::append(txn, &event, &RequestMeta::default(), now)?;
        Ok(())
    })
    .await
}
