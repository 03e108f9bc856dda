//! SCIM 2.0 (RFC 7643/7644) for identity providers: the HTTP adapter under
//! `/scim/v2`. It authenticates the identity provider's token, reads the
//! request, calls `service::scim` (which applies `domain::scim` and the same
//! import engine as the REST bulk imports and the drop directory) and writes
//! every answer, errors included, as SCIM JSON (`error`).

pub mod error;
pub mod http;
