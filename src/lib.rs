//! enterprise-sync: the on-premise appliance that provisions store staff and stores
//! from HR/ERP systems into Retail Performer.
//!
//! Layers, with data flowing one way: the adapters ([`api`], [`scim`], [`web`]
//! over the shared [`http`] layer; [`dropdir`]; [`outbound`]) → [`service`] (rules
//! and transactions) → [`store`] (SQL, one module per table); [`domain`] holds the
//! plain types and validation every layer shares. `tests/it/architecture.rs`
//! keeps it so.
#![forbid(unsafe_code)]

pub mod api;
pub mod cli;
pub mod clock;
pub mod config;
pub mod domain;
pub mod dropdir;
pub mod dropfile;
pub mod error;
pub mod healthcheck;
pub mod http;
pub mod listener;
pub mod metrics;
pub mod outbound;
pub mod scim;
pub mod server;
pub mod service;
pub mod store;
pub mod systemd;
pub mod telemetry;
pub mod web;

pub use error::AppError;
