//! Headers we take from clients only in a safe shape, and the ones every
//! answer carries.

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue};
use axum::response::Response;

use super::extract::AppState;

/// Longest request id taken from a client.
const MAX_REQUEST_ID: usize = 64;

/// Whether a client's `X-Request-Id` may be kept, echoed and logged: a short
/// token of `[A-Za-z0-9._-]`. Anything else (spaces, `=`, quotes, newlines)
/// could forge fields in a log line, and is replaced by one of ours.
pub fn is_safe_request_id(value: &[u8]) -> bool {
    !value.is_empty()
        && value.len() <= MAX_REQUEST_ID
        && value
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Drops a client's request id that is not a safe token; the request-id
/// layer then gives the request a fresh one.
pub async fn sanitize_request_id(mut request: Request) -> Request {
    let unsafe_id = request
        .headers()
        .get_all("x-request-id")
        .iter()
        .any(|value| !is_safe_request_id(value.as_bytes()))
        || request.headers().get_all("x-request-id").iter().count() > 1;
    if unsafe_id {
        request.headers_mut().remove("x-request-id");
    }
    request
}

/// `Strict-Transport-Security` on every answer when people reach the service
/// over https (`public_base_url`): browsers then never try plain http again.
pub async fn strict_transport(State(svc): State<AppState>, mut response: Response) -> Response {
    if svc.public_base_url().starts_with("https://") {
        response.headers_mut().insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::is_safe_request_id;

    #[test]
    fn request_ids_are_short_plain_tokens() {
        for ok in ["abc", "0190a-7f.x_y", &"a".repeat(64)] {
            assert!(is_safe_request_id(ok.as_bytes()), "{ok}");
        }
        for bad in [
            "",
            "forged route=/x status=200",
            "a\"b",
            "a\nb",
            "a=b",
            &"a".repeat(65),
        ] {
            assert!(!is_safe_request_id(bad.as_bytes()), "{bad:?}");
        }
    }
}
