//! What the service sends out: webhooks and emails, from the persistent
//! outboxes that imports (and alerts) write in their own transactions.
//! Workers wake when a commit queued something and otherwise poll for retries
//! that fell due; a restart loses nothing, since every message and its next
//! attempt are in the database. The schedules are `domain::retry`.

pub mod email;
pub mod templates;
pub mod webhooks;

use std::sync::Arc;

use tokio::sync::Notify;

/// Wakes a worker; a wake-up while it works is kept for its next wait.
#[derive(Default, Clone)]
pub struct Wakeups {
    webhooks: Arc<Notify>,
    email: Arc<Notify>,
}

impl Wakeups {
    pub fn wake_webhooks(&self) {
        self.webhooks.notify_one();
    }

    pub fn wake_email(&self) {
        self.email.notify_one();
    }

    pub(crate) fn webhooks(&self) -> Arc<Notify> {
        self.webhooks.clone()
    }

    pub(crate) fn email(&self) -> Arc<Notify> {
        self.email.clone()
    }
}
