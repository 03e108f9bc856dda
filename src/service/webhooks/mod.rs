//! Webhook endpoints (registered by IT admins, each with its own signing
//! secret shown once), the destination rules of the SSRF guard, and the outbox
//! messages written inside the transactions that cause them. Delivery itself
//! is `outbound::webhooks`.

use std::net::{IpAddr, SocketAddr};

use chrono::{DateTime, Utc};
use ring::rand::{SecureRandom, SystemRandom};
use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::access::AdminCtx;
use super::audit::{self, AuditEvent};
use super::{RequestMeta, Services};
use crate::domain::audit::Outcome;
use crate::domain::net_guard::{self, Network};
use crate::domain::notifications::NotificationSettings;
use crate::domain::webhook::{self, EventType};
use crate::domain::{EnterpriseId, WebhookId};
use crate::error::FieldError;
use crate::store::{self, webhooks::Endpoint};
use crate::AppError;

mod destination;

pub use destination::*;

/// Events per delivery of record changes: a change batch's events of one type.
pub const MAX_EVENTS_PER_DELIVERY: usize = crate::service::import::EVENTS_PER_BATCH;
pub const MAX_ENDPOINTS: usize = 20;
const MAX_URL: usize = 2048;
const MAX_DESCRIPTION: usize = 500;

pub const SECRET_WARNING: &str = "Save this secret now: it will not be shown again. / Sauvegardez ce secret maintenant, il ne sera plus affiché.";

#[derive(utoipa::ToSchema, Debug, Deserialize)]
pub struct RegisterWebhook {
    /// Where to POST events: `https://…` (plain `http://` only to an allowed network).
    #[schema(required = true, value_type = String, min_length = 1)]
    pub url: Option<String>,
    #[schema(max_length = 500)]
    pub description: Option<String>,
    /// Event types to receive; at least one.
    #[schema(required = true, value_type = Vec<crate::domain::webhook::EventType>, min_items = 1)]
    pub events: Option<Vec<String>>,
}

#[derive(utoipa::ToSchema, Debug, Serialize)]
pub struct WebhookView {
    pub id: WebhookId,
    pub url: String,
    pub description: String,
    pub events: Vec<EventType>,
    /// `active`, or `disabled` (see `disabled_reason`).
    pub state: &'static str,
    pub disabled_at: Option<DateTime<Utc>>,
    pub disabled_reason: Option<String>,
    pub last_success_at: Option<DateTime<Utc>>,
    pub pending_messages: i64,
    pub delivered_messages: i64,
    pub failed_messages: i64,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
}

#[derive(utoipa::ToSchema, Debug, Serialize)]
pub struct RegisteredWebhook {
    #[serde(flatten)]
    pub webhook: WebhookView,
    /// `whsec_…`: verify each delivery's `webhook-signature` with it. Shown once.
    pub secret: String,
    pub warning: &'static str,
}

#[derive(utoipa::ToSchema, Debug, Serialize)]
pub struct DeliveryAttemptView {
    /// Cursor: pass as `before` for older attempts.
    pub seq: i64,
    /// The message's `webhook-id`, the same on every retry.
    pub message_id: String,
    pub event_type: String,
    /// The message's state now: `pending`, `delivered`, `failed` or `cancelled`.
    pub message_state: String,
    pub attempt: u32,
    pub started_at: DateTime<Utc>,
    pub duration_ms: i64,
    /// The receiver's status; absent when it did not answer.
    pub status_code: Option<u16>,
    pub error: Option<String>,
    /// The start of the receiver's answer.
    pub response_snippet: Option<String>,
    pub next_attempt_at: Option<DateTime<Utc>>,
}

fn view(endpoint: Endpoint, counts: [i64; 3]) -> WebhookView {
    WebhookView {
        id: endpoint.id,
        url: endpoint.url,
        description: endpoint.description,
        events: endpoint.events,
        state: if endpoint.disabled_at.is_some() {
            "disabled"
        } else {
            "active"
        },
        disabled_at: endpoint.disabled_at,
        disabled_reason: endpoint.disabled_reason,
        last_success_at: endpoint.last_success_at,
        pending_messages: counts[0],
        delivered_messages: counts[1],
        failed_messages: counts[2],
        created_at: endpoint.created_at,
        created_by: endpoint.created_by,
    }
}

fn parse_events(raw: Option<Vec<String>>) -> Result<Vec<EventType>, AppError> {
    let raw = raw.unwrap_or_default();
    if raw.is_empty() {
        return Err(AppError::field(
            "events",
            "required",
            format!(
                "name at least one event: {}",
                EventType::ALL.map(EventType::as_str).join(", ")
            ),
        ));
    }
    let mut events = Vec::new();
    let mut problems = Vec::new();
    for (i, name) in raw.iter().enumerate() {
        match EventType::parse(name.trim()) {
            Some(event) => events.push(event),
            None => problems.push(FieldError::new(
                format!("events[{i}]"),
                "unknown_event",
                format!(
                    "unknown event {name:?}; known: {}",
                    EventType::ALL.map(EventType::as_str).join(", ")
                ),
            )),
        }
    }
    if !problems.is_empty() {
        return Err(AppError::Validation(problems));
    }
    events.sort();
    events.dedup();
    Ok(events)
}

fn new_secret() -> Result<String, AppError> {
    let mut key = [0u8; 32];
    SystemRandom::new()
        .fill(&mut key)
        .map_err(|_| AppError::internal("random generator failed"))?;
    Ok(webhook::format_secret(&key))
}

pub async fn register(
    svc: &Services,
    admin: &AdminCtx,
    meta: &RequestMeta,
    body: RegisterWebhook,
) -> Result<RegisteredWebhook, AppError> {
    let enterprise = admin.enterprise();
    let raw_url = body
        .url
        .filter(|u| !u.trim().is_empty())
        .ok_or_else(|| AppError::field("url", "required", "url is required"))?;
    let description = body.description.unwrap_or_default().trim().to_string();
    if description.chars().count() > MAX_DESCRIPTION {
        return Err(AppError::field(
            "description",
            "too_long",
            format!("description is longer than {MAX_DESCRIPTION} characters"),
        ));
    }
    let events = parse_events(body.events)?;
    let destination = parse_destination(&raw_url)
        .map_err(|Refusal(why)| AppError::field("url", "invalid_url", why))?;
    let settings = svc
        .db
        .read(move |conn| {
            store::notification_settings::get(conn, enterprise).map_err(AppError::from)
        })
        .await?;
    let operator = svc.settings().webhooks.allowed_networks.clone();
    if let Err(Refusal(why)) = check_destination(&destination, &settings, &operator).await {
        audit::record(
            svc,
            AuditEvent::new("webhook.create", Outcome::Denied, admin.actor())
                .in_enterprise(enterprise)
                .reason("destination_refused")
                .changes(json!({ "url": destination.url.as_str() })),
            meta,
        )
        .await?;
        return Err(AppError::field("url", "destination_refused", why));
    }
    let secret = new_secret()?;
    let id = WebhookId::generate();
    let sealed = svc
        .webhook_secrets
        .seal(secret.as_bytes(), &id.to_string())
        .map_err(AppError::internal)?;
    let (now, url, meta_c) = (svc.clock.now(), destination.url.to_string(), meta.clone());
    let event = AuditEvent::new("webhook.create", Outcome::Success, admin.actor())
        .in_enterprise(enterprise)
        .target("webhook", id)
        .changes(json!({ "url": url, "events": events }));
    let created_by = admin.user().to_string();
    let created = svc
        .db
        .write(move |txn| {
            if store::webhooks::count_endpoints(txn, enterprise)? >= MAX_ENDPOINTS {
                return Err(AppError::Conflict {
                    code: "too_many_webhooks",
                    field: None,
                    message: format!(
                        "an enterprise has at most {MAX_ENDPOINTS} webhook endpoints; delete one first"
                    ),
                });
            }
            store::webhooks::insert_endpoint(
                txn,
                &store::webhooks::NewEndpoint {
                    id,
                    enterprise,
                    url: &url,
                    description: &description,
                    events: &events,
                    secret_sealed: &sealed,
                    created_by: &created_by,
                    now,
                },
            )?;
            audit::append(txn, &event, &meta_c, now)?;
            store::webhooks::endpoint(txn, enterprise, id)?
                .ok_or_else(|| AppError::internal("the new webhook vanished"))
        })
        .await?;
    Ok(RegisteredWebhook {
        webhook: view(created, [0; 3]),
        secret,
        warning: SECRET_WARNING,
    })
}

pub async fn list(svc: &Services, admin: &AdminCtx) -> Result<Vec<WebhookView>, AppError> {
    let enterprise = admin.enterprise();
    svc.db
        .read(move |conn| {
            store::webhooks::endpoints(conn, enterprise)?
                .into_iter()
                .map(|endpoint| {
                    let counts = store::webhooks::message_counts(conn, endpoint.id)?;
                    Ok(view(endpoint, counts))
                })
                .collect()
        })
        .await
}

/// The enterprise's endpoint `id`, or not found (another enterprise's too).
fn endpoint_of(
    conn: &Connection,
    enterprise: EnterpriseId,
    id: WebhookId,
) -> Result<Endpoint, AppError> {
    store::webhooks::endpoint(conn, enterprise, id)?.ok_or(AppError::NotFound {
        resource: "webhook",
    })
}

fn load_view(
    conn: &Connection,
    enterprise: EnterpriseId,
    id: WebhookId,
) -> Result<WebhookView, AppError> {
    let endpoint = endpoint_of(conn, enterprise, id)?;
    let counts = store::webhooks::message_counts(conn, id)?;
    Ok(view(endpoint, counts))
}

pub async fn get(svc: &Services, admin: &AdminCtx, id: WebhookId) -> Result<WebhookView, AppError> {
    let enterprise = admin.enterprise();
    svc.db
        .read(move |conn| load_view(conn, enterprise, id))
        .await
}

/// Removes an endpoint, its undelivered messages and its delivery log.
pub async fn delete(
    svc: &Services,
    admin: &AdminCtx,
    meta: &RequestMeta,
    id: WebhookId,
) -> Result<(), AppError> {
    let (enterprise, now, meta) = (admin.enterprise(), svc.clock.now(), meta.clone());
    let event = AuditEvent::new("webhook.delete", Outcome::Success, admin.actor())
        .in_enterprise(enterprise)
        .target("webhook", id);
    svc.db
        .write(move |txn| {
            let endpoint = endpoint_of(txn, enterprise, id)?;
            store::webhooks::delete_endpoint(txn, enterprise, id)?;
            audit::append(
                txn,
                &event.changes(json!({ "url": endpoint.url })),
                &meta,
                now,
            )?;
            Ok(())
        })
        .await
}

/// Turns a disabled endpoint back on: the messages it had not received when
/// it was disabled go out again (events while it was off were not queued).
pub async fn enable(
    svc: &Services,
    admin: &AdminCtx,
    meta: &RequestMeta,
    id: WebhookId,
) -> Result<WebhookView, AppError> {
    let (enterprise, now, meta) = (admin.enterprise(), svc.clock.now(), meta.clone());
    let event = AuditEvent::new("webhook.enable", Outcome::Success, admin.actor())
        .in_enterprise(enterprise)
        .target("webhook", id);
    let enabled = svc
        .db
        .write(move |txn| {
            if endpoint_of(txn, enterprise, id)?.disabled_at.is_some() {
                store::webhooks::enable_endpoint(txn, enterprise, id)?;
                store::webhooks::restart_pending(txn, id, now)?;
                audit::append(txn, &event, &meta, now)?;
            }
            load_view(txn, enterprise, id)
        })
        .await?;
    svc.outbound.wake_webhooks();
    Ok(enabled)
}

pub const MAX_ATTEMPTS_PAGE: usize = 100;

pub async fn attempts(
    svc: &Services,
    admin: &AdminCtx,
    id: WebhookId,
    before: Option<i64>,
    limit: Option<usize>,
) -> Result<Vec<DeliveryAttemptView>, AppError> {
    let enterprise = admin.enterprise();
    let limit = limit.unwrap_or(50).clamp(1, MAX_ATTEMPTS_PAGE);
    svc.db
        .read(move |conn| {
            endpoint_of(conn, enterprise, id)?;
            let rows = store::webhooks::attempts(conn, id, before, limit)?;
            Ok(rows
                .into_iter()
                .map(|a| DeliveryAttemptView {
                    seq: a.seq,
                    message_id: a.message_id,
                    event_type: a.event_type,
                    message_state: a.message_state,
                    attempt: a.attempt,
                    started_at: a.started_at,
                    duration_ms: a.duration_ms,
                    status_code: a.status_code,
                    error: a.error,
                    response_snippet: a.response_snippet,
                    next_attempt_at: a.next_attempt_at,
                })
                .collect())
        })
        .await
}

/// A message id: `msg_` and a time-ordered UUID, as Standard Webhooks senders use.
fn message_id() -> String {
    format!("msg_{}", uuid::Uuid::now_v7().simple())
}

/// The enterprise's endpoints, read once per transaction that fans events out.
pub struct Subscribers {
    enterprise: EnterpriseId,
    endpoints: Vec<(WebhookId, Vec<EventType>)>,
}

impl Subscribers {
    pub fn load(conn: &Connection, enterprise: EnterpriseId) -> rusqlite::Result<Subscribers> {
        Ok(Subscribers {
            enterprise,
            endpoints: store::webhooks::subscribers(conn, enterprise)?,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.endpoints.is_empty()
    }

    /// Queues one message per endpoint subscribed to each type present in the
    /// change batch `batch_seq`; the delivery builds the body from the batch.
    pub fn batch(
        &self,
        conn: &Connection,
        batch_seq: i64,
        present: &[EventType],
        now: DateTime<Utc>,
    ) -> rusqlite::Result<()> {
        for (endpoint, subscribed) in &self.endpoints {
            for event_type in present.iter().filter(|t| subscribed.contains(t)) {
                store::webhooks::insert_message(
                    conn,
                    &store::webhooks::NewMessage {
                        id: &message_id(),
                        endpoint: *endpoint,
                        enterprise: self.enterprise,
                        event_type: *event_type,
                        batch_seq: Some(batch_seq),
                        data: None,
                        now,
                    },
                )?;
            }
        }
        Ok(())
    }

    /// Queues one message with its data for each endpoint subscribed to `event_type`.
    pub fn event(
        &self,
        conn: &Connection,
        event_type: EventType,
        data: &serde_json::Value,
        now: DateTime<Utc>,
    ) -> rusqlite::Result<()> {
        let data = data.to_string();
        for (endpoint, subscribed) in &self.endpoints {
            if subscribed.contains(&event_type) {
                store::webhooks::insert_message(
                    conn,
                    &store::webhooks::NewMessage {
                        id: &message_id(),
                        endpoint: *endpoint,
                        enterprise: self.enterprise,
                        event_type,
                        batch_seq: None,
                        data: Some(&data),
                        now,
                    },
                )?;
            }
        }
        Ok(())
    }
}

/// The body of a message, the same bytes at every attempt:
/// `{"type", "timestamp", "data"}` as Standard Webhooks payloads are. `None`
/// when its change batch is no longer kept.
pub fn message_body(
    conn: &Connection,
    message: &store::webhooks::DueMessage,
) -> Result<Option<String>, AppError> {
    let data: serde_json::Value = match (&message.data, message.batch_seq) {
        (Some(data), _) => serde_json::from_str(data).map_err(AppError::internal)?,
        (None, Some(seq)) => {
            let Some((run_id, batch)) = store::change_batches::by_seq(conn, seq)? else {
                return Ok(None);
            };
            let events: Vec<crate::service::import::ChangeEvent> =
                serde_json::from_str(&batch.events_json).map_err(AppError::internal)?;
            let events: Vec<_> = events
                .into_iter()
                .filter(|e| e.event_type == message.event_type)
                .collect();
            json!({
                "enterprise_id": message.enterprise,
                "run_id": run_id,
                "count": events.len(),
                "events": events,
            })
        }
        (None, None) => return Ok(None),
    };
    Ok(Some(
        json!({
            "type": message.event_type,
            "timestamp": store::ts(message.created_at),
            "data": data,
        })
        .to_string(),
    ))
}
