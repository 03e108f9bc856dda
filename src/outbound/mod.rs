//! What the service sends out: webhooks and emails, from the persistent
//! outboxes that imports (and alerts) write in their own transactions.
//! Workers wake when a commit queued something (`service::outbox::Wakeups`)
//! and otherwise poll for retries
//! that fell due; a restart loses nothing, since every message and its next
//! attempt are in the database. The schedules are `domain::retry`.

pub mod email;
pub mod templates;
pub mod webhooks;
