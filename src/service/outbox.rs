//! The outboxes' doorbell: a commit that queued a webhook or an email wakes
//! the worker that sends it (`outbound/`), which otherwise sleeps until the
//! next retry falls due. It lives here, not beside the workers, because the
//! services ring it and the layers above them own the workers.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

/// Least time between two reads of an outbox that a wake-up starts. Under a
/// stream of commits (SCIM writes, thousands a second) each one rings: one
/// read per gap serves them all, where a read per ring cost every write a
/// trip to a reader. An idle worker woken after the gap reads at once.
pub const WAKE_GAP: Duration = Duration::from_millis(10);

/// Waits, after a wake-up, until `WAKE_GAP` has passed since `last_read`.
pub async fn gather_wakeups(last_read: tokio::time::Instant) {
    tokio::time::sleep_until(last_read + WAKE_GAP).await;
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::Instant;

    #[tokio::test(start_paused = true)]
    async fn a_wake_soon_after_a_read_waits_out_the_gap_and_a_later_one_goes_at_once() {
        let read = Instant::now();
        tokio::time::advance(Duration::from_millis(3)).await;
        gather_wakeups(read).await;
        assert_eq!(read.elapsed(), WAKE_GAP, "a burst of wakes shares one read");

        let read = Instant::now();
        tokio::time::advance(WAKE_GAP * 5).await;
        let woken = Instant::now();
        gather_wakeups(read).await;
        assert_eq!(
            woken.elapsed(),
            Duration::ZERO,
            "an idle worker reads at once"
        );
    }
}
