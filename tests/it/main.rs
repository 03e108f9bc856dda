//! Integration tests: one binary (one link), modules per feature.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod accounts;
mod api_keys;
mod audit;
mod backups;
mod binary;
mod browser;
mod dashboard;
mod directory;
mod docs;
mod drop_profiles;
mod dropdir;
mod emails;
mod http_basics;
mod imports;
mod metrics;
mod openapi;
mod rate_limits;
mod receiver;
mod scim;
mod sessions;
mod smtp;
mod staged_import;
mod support;
mod tenancy;
mod webhooks;
