//! SCIM 2.0 (RFC 7643/7644) as plain data and rules, below every layer that
//! serves it: `schema` defines what we serve, `filter` parses filters and
//! PATCH paths, `document` reads, patches and projects resources as JSON,
//! `users` and `groups` map them to our people and stores, and `fault` names
//! what can be wrong with a request. The services (`service::scim`) apply
//! them; the `/scim/v2` adapter (`scim/`) only speaks HTTP.

pub mod document;
pub mod fault;
pub mod filter;
pub mod groups;
pub mod patch;
pub mod schema;
pub mod users;

pub use fault::{FaultKind, ScimFault};

/// `meta.created` and `meta.lastModified`: RFC 3339 in UTC, to the millisecond.
pub fn meta_time(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
