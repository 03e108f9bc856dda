//! One log line and one metrics observation per request.
//!
//! The line names the request id, method, route template (never the query
//! string, where a careless client might put a secret), status, latency, and who
//! called: the principal kind and enterprise that [`super::auth`] leaves on the
//! response as a [`Caller`].

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use super::extract::AppState;
use crate::domain::EnterpriseId;
use crate::service::access::Principal;

/// Who a request was served for, as far as the request log may tell.
#[derive(Debug, Clone, Copy)]
pub struct Caller {
    pub principal: &'static str,
    pub enterprise: EnterpriseId,
}

impl From<&Principal> for Caller {
    fn from(principal: &Principal) -> Caller {
        Caller {
            principal: match principal {
                Principal::User { .. } => "user",
                Principal::ApiKey { .. } => "api_key",
            },
            enterprise: principal.enterprise(),
        }
    }
}

pub async fn observe(State(svc): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let span = tracing::info_span!("request", %method, %route, %request_id);
    let response = next.run(request).instrument(span).await;
    let latency = started.elapsed();
    let status = response.status().as_u16();
    svc.metrics
        .http_request(method.as_str(), &route, status, latency);
    let caller = response.extensions().get::<Caller>();
    tracing::info!(
        target: "enterprise_sync::request",
        %request_id,
        %method,
        %route,
        status,
        latency_ms = latency.as_secs_f64() * 1000.0,
        enterprise_id = caller.map(|c| c.enterprise.to_string()),
        principal = caller.map_or("anonymous", |c| c.principal),
        "request"
    );
    response
}
