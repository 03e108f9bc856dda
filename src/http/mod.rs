//! The HTTP layer the REST API, SCIM and the dashboard share: the state,
//! extractors and authentication (one style: extractors and the middleware
//! that resolves a credential into a principal), request logging, client
//! limits, security headers, and `AppError` → HTTP.

pub mod auth;
pub mod client_limits;
pub mod error;
pub mod extract;
pub mod fallback;
pub mod observe;
pub mod rate_limit_headers;
pub mod security_headers;

pub use extract::AppState;
