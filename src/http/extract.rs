//! Extractors whose rejections speak our error format.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use serde::de::DeserializeOwned;

use crate::error::FieldError;
use crate::service::access::Principal;
use crate::service::{RequestMeta, Services};
use crate::AppError;

pub type AppState = Arc<Services>;

/// A JSON body; malformed JSON is a 400, a wrong type a 422 naming the field,
/// a missing or wrong content type 415, an oversized body 413.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let limit = state.config.http.max_body_bytes;
        if !is_json(req.headers()) {
            return Err(AppError::UnsupportedMediaType);
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|rejection| match rejection.status() {
                StatusCode::PAYLOAD_TOO_LARGE => AppError::PayloadTooLarge { limit },
                _ => AppError::BadRequest {
                    code: "invalid_body",
                    message: rejection.body_text(),
                },
            })?;
        // Every body is an object: serde would also fill a struct from an
        // array's elements in order, a shape the contract does not have.
        let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
        if first != Some(&b'{') {
            return Err(
                match serde_json::from_slice::<serde::de::IgnoredAny>(&bytes) {
                    Ok(_) => {
                        AppError::field("body", "invalid_type", "the body must be a JSON object")
                    }
                    Err(e) => AppError::BadRequest {
                        code: "invalid_json",
                        message: format!("Failed to parse the request body as JSON: {e}"),
                    },
                },
            );
        }
        match axum::Json::<T>::from_bytes(&bytes) {
            Ok(axum::Json(value)) => Ok(JsonBody(value)),
            Err(rejection) => Err(json_rejection(rejection, limit)),
        }
    }
}

/// `application/json`, or a `+json` type, as axum's `Json` accepts.
fn is_json(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    kind == "application" && (subtype == "json" || subtype.ends_with("+json"))
}

fn json_rejection(rejection: JsonRejection, limit: usize) -> AppError {
    match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => AppError::PayloadTooLarge { limit },
        StatusCode::UNSUPPORTED_MEDIA_TYPE => AppError::UnsupportedMediaType,
        _ => match rejection {
            JsonRejection::JsonDataError(e) => {
                // axum reports "<prefix>: <path>: <serde message>".
                let text = e.body_text();
                let detail = text.split_once(": ").map(|(_, rest)| rest).unwrap_or(&text);
                let (field, message) = match detail.split_once(": ") {
                    Some((path, message)) if !path.contains(' ') => {
                        (path.to_string(), message.to_string())
                    }
                    _ => ("body".to_string(), detail.to_string()),
                };
                AppError::Validation(vec![FieldError::new(field, "invalid_type", message)])
            }
            other => AppError::BadRequest {
                code: "invalid_json",
                message: other.body_text(),
            },
        },
    }
}

/// Query-string parameters; a malformed value is a 422 naming it.
pub struct QueryParams<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts<AppState> for QueryParams<T> {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(QueryParams(value)),
            Err(rejection) => Err(query_rejection(rejection)),
        }
    }
}

fn query_rejection(rejection: QueryRejection) -> AppError {
    AppError::Validation(vec![FieldError::new(
        "query",
        "invalid_query",
        rejection.body_text(),
    )])
}

/// The client's address: the TCP peer, or the last untrusted hop of
/// `X-Forwarded-For` when the peer is a configured proxy.
pub fn client_ip(
    headers: &HeaderMap,
    peer: Option<IpAddr>,
    trusted_proxies: &[IpAddr],
) -> Option<IpAddr> {
    let peer = peer?;
    if !trusted_proxies.contains(&peer) {
        return Some(peer);
    }
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|hop| hop.trim().parse::<IpAddr>().ok())
        .collect::<Vec<_>>();
    Some(
        forwarded
            .into_iter()
            .rev()
            .find(|hop| !trusted_proxies.contains(hop))
            .unwrap_or(peer),
    )
}

pub fn peer_ip(parts_extensions: &axum::http::Extensions) -> Option<IpAddr> {
    parts_extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
}

pub fn request_meta(
    headers: &HeaderMap,
    extensions: &axum::http::Extensions,
    state: &AppState,
) -> RequestMeta {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    RequestMeta {
        ip: client_ip(
            headers,
            peer_ip(extensions),
            &state.settings().trusted_proxies,
        ),
        user_agent: text("user-agent"),
        request_id: text("x-request-id"),
    }
}

/// Where the request came from, for the audit trail.
pub struct Meta(pub RequestMeta);

impl FromRequestParts<AppState> for Meta {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Meta(request_meta(&parts.headers, &parts.extensions, state)))
    }
}

/// The authenticated caller, put there by the authentication middleware.
pub struct Auth(pub Principal);

impl FromRequestParts<AppState> for Auth {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .map(Auth)
            .ok_or_else(AppError::unauthenticated)
    }
}

/// Parses an id from the path; a malformed id is simply an unknown object.
pub fn parse_id<T: std::str::FromStr>(raw: &str, resource: &'static str) -> Result<T, AppError> {
    raw.parse().map_err(|_| AppError::NotFound { resource })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "203.0.113.9, 10.0.0.2".parse().unwrap());
        let proxy: IpAddr = "10.0.0.2".parse().unwrap();
        let stranger: IpAddr = "198.51.100.7".parse().unwrap();
        assert_eq!(
            client_ip(&headers, Some(stranger), &[proxy]),
            Some(stranger)
        );
        assert_eq!(
            client_ip(&headers, Some(proxy), &[proxy]),
            Some("203.0.113.9".parse().unwrap())
        );
    }
}
