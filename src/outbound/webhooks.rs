//! Delivers queued webhook messages: signed (Standard Webhooks), sent only to
//! addresses the SSRF guard checked just before, never following redirects,
//! retried on the schedule, and logged attempt by attempt.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::json;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use crate::domain::audit::{ActorType, Outcome};
use crate::domain::retry::{next_attempt, WEBHOOK_RETRY_DELAYS};
use crate::domain::webhook;
use crate::domain::WebhookId;
use crate::service::access::Actor;
use crate::service::audit::{self, AuditEvent};
use crate::service::webhooks::{check_destination, message_body, parse_destination, Refusal};
use crate::service::{RequestMeta, Services};
use crate::store::{self, webhooks::DueMessage};
use crate::AppError;

/// Most of a receiver's answer read; the rest is dropped unread.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// What the delivery log keeps of an answer.
const SNIPPET_BYTES: usize = 1024;
/// Longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);
/// How long a client (and its kept-alive connections) serves one endpoint's
/// checked addresses before they are looked up again.
const CLIENT_TTL: Duration = Duration::from_secs(300);

pub fn spawn(svc: Arc<Services>, stop: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(async move {
        let worker = Worker {
            clients: Arc::new(Mutex::new(HashMap::new())),
            svc,
        };
        worker.run(stop).await;
    })
}

struct CachedClient {
    addresses: Vec<SocketAddr>,
    built: Instant,
    client: reqwest::Client,
}

type Clients = Arc<Mutex<HashMap<WebhookId, CachedClient>>>;

struct Worker {
    svc: Arc<Services>,
    clients: Clients,
}

impl Worker {
    async fn run(self, stop: CancellationToken) {
        let wake = self.svc.outbound.webhooks();
        let max_concurrent = self.svc.config.webhooks.max_concurrent.max(1);
        let poll = Duration::from_millis(self.svc.config.webhooks.poll_interval_ms.max(10));
        let mut in_flight: HashSet<i64> = HashSet::new();
        let mut tasks: JoinSet<i64> = JoinSet::new();
        let mut last_read = tokio::time::Instant::now();
        loop {
            let room = max_concurrent.saturating_sub(tasks.len());
            if room > 0 {
                last_read = tokio::time::Instant::now();
                let now = self.svc.clock.now();
                let wanted = room + in_flight.len();
                match self
                    .svc
                    .db
                    .read(move |conn| {
                        store::webhooks::due(conn, now, wanted).map_err(AppError::from)
                    })
                    .await
                {
                    Ok(due) => {
                        let fresh: Vec<DueMessage> = due
                            .into_iter()
                            .filter(|m| !in_flight.contains(&m.seq))
                            .take(room)
                            .collect();
                        for message in fresh {
                            in_flight.insert(message.seq);
                            let (svc, clients) = (self.svc.clone(), self.clients.clone());
                            tasks.spawn(async move {
                                let seq = message.seq;
                                if let Err(e) = deliver(&svc, &clients, message).await {
                                    tracing::warn!(error = %e, "recording a webhook attempt failed");
                                }
                                seq
                            });
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "reading due webhooks failed"),
                }
            }
            tokio::select! {
                _ = stop.cancelled() => break,
                Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                    if let Ok(seq) = done {
                        in_flight.remove(&seq);
                    }
                }
                _ = wake.notified() => crate::service::outbox::gather_wakeups(last_read).await,
                _ = tokio::time::sleep(poll) => {}
            }
        }
        // Deliveries cut short stay pending and go out again, with the same
        // webhook-id, after the restart.
        tasks.shutdown().await;
    }
}

/// How an attempt ended.
enum Ending {
    Delivered,
    /// 410 Gone: the receiver asks for no more deliveries.
    Gone,
    Retry {
        retry_after: Option<Duration>,
    },
}

struct AttemptFacts {
    started_at: DateTime<Utc>,
    elapsed: Duration,
    status: Option<u16>,
    error: Option<String>,
    snippet: Option<String>,
    ending: Ending,
}

async fn deliver(svc: &Services, clients: &Clients, message: DueMessage) -> Result<(), AppError> {
    let started_at = svc.clock.now();
    let timer = Instant::now();
    let reading = message.clone();
    let body = svc
        .db
        .read(move |conn| message_body(conn, &reading))
        .await?;
    let Some(body) = body else {
        let (seq, now) = (message.seq, svc.clock.now());
        tracing::warn!(message = %message.id, "a webhook message's change batch is no longer kept");
        return svc
            .db
            .write(move |txn| store::webhooks::fail_message(txn, seq, now).map_err(AppError::from))
            .await;
    };
    let facts = match send(svc, clients, &message, body, started_at).await {
        Ok(answer) => answer,
        Err(problem) => AttemptFacts {
            started_at,
            elapsed: timer.elapsed(),
            status: None,
            error: Some(problem),
            snippet: None,
            ending: Ending::Retry { retry_after: None },
        },
    };
    record(svc, &message, facts).await
}

/// Checks the destination again, signs and posts. `Err` is a failure before
/// any answer (refused address, connection, timeout).
async fn send(
    svc: &Services,
    clients: &Clients,
    message: &DueMessage,
    body: String,
    started_at: DateTime<Utc>,
) -> Result<AttemptFacts, String> {
    let timer = Instant::now();
    let secret = svc
        .webhook_secrets
        .open(&message.secret_sealed, &message.endpoint.to_string())
        .and_then(|s| String::from_utf8(s).ok())
        .ok_or("the endpoint's secret cannot be opened: was the pepper file replaced?")?;
    let key = webhook::secret_key(&secret).ok_or("the endpoint's secret is malformed")?;
    let destination = parse_destination(&message.url).map_err(|Refusal(why)| why)?;
    let enterprise = message.enterprise;
    let settings = svc
        .db
        .read(move |conn| {
            store::notification_settings::get(conn, enterprise).map_err(AppError::from)
        })
        .await
        .map_err(|e| e.to_string())?;
    let operator = svc.settings().webhooks.allowed_networks.clone();
    let checked = check_destination(&destination, &settings, &operator)
        .await
        .map_err(|Refusal(why)| format!("destination refused: {why}"))?;
    let internal = checked.internal;
    let client = client_for(
        svc,
        clients,
        message.endpoint,
        &destination.host,
        checked.addresses,
    )?;
    let timestamp = svc.clock.now().timestamp();
    let signature = webhook::sign(&key, &message.id, timestamp, body.as_bytes());
    let response = client
        .post(destination.url.clone())
        .header("content-type", "application/json")
        .header("webhook-id", &message.id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(body)
        .send()
        .await
        .map_err(|e| {
            // The cause (refused, reset, timeout, certificate) is the operator's
            // to read; a tenant told which would have a port scanner.
            tracing::info!(
                endpoint = %message.endpoint,
                error = %describe(e),
                "a webhook delivery got no answer"
            );
            "could not deliver: no answer from the receiver".to_string()
        })?;
    let status = response.status();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|secs| Duration::from_secs(secs).min(MAX_RETRY_AFTER));
    // A receiver inside the company's network answers the tenant nothing
    // beyond its status: its body could be any internal service's.
    let snippet = if internal {
        None
    } else {
        read_snippet(response).await
    };
    let ending = if status.is_success() {
        Ending::Delivered
    } else if status == reqwest::StatusCode::GONE {
        Ending::Gone
    } else {
        Ending::Retry { retry_after }
    };
    let error = (!status.is_success()).then(|| {
        if status.is_redirection() {
            format!("answered {status}; redirects are not followed")
        } else {
            format!("answered {status}")
        }
    });
    Ok(AttemptFacts {
        started_at,
        elapsed: timer.elapsed(),
        status: Some(status.as_u16()),
        error,
        snippet,
        ending,
    })
}

fn describe(e: reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "failed"
    };
    // The source chain says why (refused, reset, certificate…); the URL is in the endpoint.
    let mut why = String::new();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        why = cause.to_string();
        source = cause.source();
    }
    if why.is_empty() {
        format!("the request {kind}")
    } else {
        format!("the request {kind}: {why}")
    }
}

/// Reads at most [`MAX_RESPONSE_BYTES`] of the answer and keeps its start.
async fn read_snippet(mut response: reqwest::Response) -> Option<String> {
    let mut kept = Vec::new();
    let mut read = 0usize;
    while let Ok(Some(chunk)) = response.chunk().await {
        read += chunk.len();
        if kept.len() < SNIPPET_BYTES {
            let take = (SNIPPET_BYTES - kept.len()).min(chunk.len());
            kept.extend_from_slice(&chunk[..take]);
        }
        if read >= MAX_RESPONSE_BYTES {
            break;
        }
    }
    if kept.is_empty() {
        return None;
    }
    let text = String::from_utf8_lossy(&kept);
    Some(text.trim_end_matches('\u{FFFD}').to_string())
}

/// Refuses every name lookup: clients connect only to the addresses the
/// guard checked, given to them with `resolve_to_addrs`.
struct CheckedAddressesOnly;

impl reqwest::dns::Resolve for CheckedAddressesOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let name = name.as_str().to_string();
        Box::pin(async move { Err(format!("{name} was not checked by the SSRF guard").into()) })
    }
}

fn client_for(
    svc: &Services,
    clients: &Clients,
    endpoint: WebhookId,
    host: &url::Host<String>,
    addresses: Vec<SocketAddr>,
) -> Result<reqwest::Client, String> {
    let mut cache = clients.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(cached) = cache.get(&endpoint) {
        if cached.addresses == addresses && cached.built.elapsed() < CLIENT_TTL {
            return Ok(cached.client.clone());
        }
    }
    let timeout = Duration::from_secs(svc.config.webhooks.timeout_secs.max(1));
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!(
            "enterprise-sync/",
            env!("CARGO_PKG_VERSION"),
            " (webhooks)"
        ))
        .dns_resolver(Arc::new(CheckedAddressesOnly));
    if let url::Host::Domain(name) = host {
        builder = builder.resolve_to_addrs(name, &addresses);
    }
    let client = builder
        .build()
        .map_err(|e| format!("building the HTTP client failed: {e}"))?;
    cache.insert(
        endpoint,
        CachedClient {
            addresses,
            built: Instant::now(),
            client: client.clone(),
        },
    );
    Ok(client)
}

fn system() -> Actor {
    Actor {
        kind: ActorType::System,
        id: "webhooks".into(),
    }
}

async fn record(svc: &Services, message: &DueMessage, facts: AttemptFacts) -> Result<(), AppError> {
    let now = svc.clock.now();
    let attempt = message.attempts + 1;
    let message = message.clone();
    svc.db
        .write(move |txn| {
            let (final_state, next, disable) = match facts.ending {
                Ending::Delivered => (Some("delivered"), None, None),
                Ending::Gone => (
                    Some("failed"),
                    None,
                    Some(("gone", "the receiver answered 410 Gone".to_string())),
                ),
                Ending::Retry { retry_after } => {
                    match next_attempt(&WEBHOOK_RETRY_DELAYS, attempt, now, retry_after) {
                        Some(next) => (None, Some(next), None),
                        None => {
                            // Disable only an endpoint that stayed dead through the
                            // window, not one that refuses this message alone.
                            let endpoint = store::webhooks::endpoint(txn, message.enterprise, message.endpoint)?;
                            let dead = endpoint.is_some_and(|e| {
                                e.last_success_at.is_none_or(|t| t < message.created_at)
                            });
                            (
                                Some("failed"),
                                None,
                                dead.then(|| {
                                    (
                                        "retry_window_exhausted",
                                        "no delivery succeeded in the three-day retry window".to_string(),
                                    )
                                }),
                            )
                        }
                    }
                }
            };
            store::webhooks::record_attempt(
                txn,
                &store::webhooks::NewAttempt {
                    message_seq: message.seq,
                    endpoint: message.endpoint,
                    attempt,
                    started_at: facts.started_at,
                    duration_ms: u64::try_from(facts.elapsed.as_millis()).unwrap_or(u64::MAX),
                    status_code: facts.status,
                    error: facts.error.as_deref(),
                    response_snippet: facts.snippet.as_deref(),
                    next_attempt_at: next,
                },
                final_state,
                now,
            )?;
            if let Some((code, reason)) = disable {
                if store::webhooks::disable_endpoint(txn, message.endpoint, &reason, now)? {
                    tracing::warn!(endpoint = %message.endpoint, reason, "webhook endpoint disabled");
                    let event = AuditEvent::new("webhook.disable", Outcome::Success, system())
                        .in_enterprise(message.enterprise)
                        .target("webhook", message.endpoint)
                        .reason(code)
                        .changes(json!({ "message_id": message.id, "attempt": attempt }));
                    audit::append(txn, &event, &RequestMeta::default(), now)?;
                }
            }
            Ok(())
        })
        .await
}
