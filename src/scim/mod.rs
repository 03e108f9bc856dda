//! SCIM 2.0 (RFC 7643/7644) for identity providers: an adapter that turns
//! `/scim/v2` requests into calls of the same import engine as the REST bulk
//! imports and the drop directory.
//!
//! `schema` (in `domain`, since the store's filter translation reads it too)
//! defines what we serve; `document` reads, patches and projects resources as
//! JSON; `users` and `groups` map them to our records; `http` holds the
//! routes. The filter grammar is `domain::scim_filter`.

pub mod document;
pub mod error;
pub mod groups;
pub mod http;
pub mod users;

pub use crate::domain::scim_schema as schema;
