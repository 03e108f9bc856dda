//! The outboxes' doorbell: a commit that queued a webhook or an email wakes
//! the worker that sends it (`outbound/`), which otherwise sleeps until the
//! next retry falls due. It lives here, not beside the workers, because the
//! services ring it and the layers above them own the workers.

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

    pub fn webhooks(&self) -> Arc<Notify> {
        self.webhooks.clone()
    }

    pub fn email(&self) -> Arc<Notify> {
        self.email.clone()
    }
}
