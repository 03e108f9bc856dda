//! SCIM 2.0 (RFC 7643/7644) for identity providers: an adapter that turns
//! `/scim/v2` requests into calls of the same import engine as the REST bulk
//! imports and the drop directory.

pub mod filter;
