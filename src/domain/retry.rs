//! Retry schedules of what is sent out (webhooks, emails): when the next
//! attempt is due after a number of failures, with jitter.

use std::time::Duration;

use chrono::{DateTime, Utc};
use ring::rand::{SecureRandom, SystemRandom};

/// Waits after each failed attempt of a webhook message: the Standard
/// Webhooks schedule (then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h,
/// 24 h), ten attempts over about three days.
pub const WEBHOOK_RETRY_DELAYS: [Duration; 9] = [
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(14 * 3600),
    Duration::from_secs(20 * 3600),
    Duration::from_secs(24 * 3600),
];

/// Waits after each failed attempt at sending an email (a mail server down
/// for a weekend still gets its invitations out): 1 min, 5 min, 15 min, 1 h,
/// 2 h, 4 h, 8 h, 12 h, then daily, about three days in all.
pub const EMAIL_RETRY_DELAYS: [Duration; 10] = [
    Duration::from_secs(60),
    Duration::from_secs(5 * 60),
    Duration::from_secs(15 * 60),
    Duration::from_secs(3600),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(4 * 3600),
    Duration::from_secs(8 * 3600),
    Duration::from_secs(12 * 3600),
    Duration::from_secs(24 * 3600),
    Duration::from_secs(24 * 3600),
];

/// Jitter spreads retries of many messages failed together: each delay is
/// stretched by a random factor in [1.0, 1.2).
pub const JITTER: f64 = 0.2;

/// When the attempt after `failed_attempts` failures is due, or `None` when
/// the schedule is over. `at_least` (a receiver's `Retry-After`) can push it later.
pub fn next_attempt(
    schedule: &[Duration],
    failed_attempts: u32,
    now: DateTime<Utc>,
    at_least: Option<Duration>,
) -> Option<DateTime<Utc>> {
    let index = usize::try_from(failed_attempts).ok()?.checked_sub(1)?;
    let base = *schedule.get(index)?;
    let mut random = [0u8; 4];
    let fraction = match SystemRandom::new().fill(&mut random) {
        Ok(()) => f64::from(u32::from_le_bytes(random)) / (f64::from(u32::MAX) + 1.0),
        Err(_) => 0.5,
    };
    let delay = base
        .mul_f64(1.0 + JITTER * fraction)
        .max(at_least.unwrap_or_default());
    chrono::Duration::from_std(delay).ok().map(|d| now + d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_spans_about_three_days_with_bounded_jitter() {
        let total: Duration = WEBHOOK_RETRY_DELAYS.iter().sum();
        assert!(total > Duration::from_secs(3 * 24 * 3600));
        assert!(total < Duration::from_secs(4 * 24 * 3600));
        let now = Utc::now();
        for (i, base) in WEBHOOK_RETRY_DELAYS.iter().enumerate() {
            let failed = u32::try_from(i + 1).unwrap();
            for _ in 0..50 {
                let at = next_attempt(&WEBHOOK_RETRY_DELAYS, failed, now, None).unwrap();
                let waited = (at - now).to_std().unwrap();
                assert!(
                    waited >= *base && waited <= base.mul_f64(1.0 + JITTER),
                    "{waited:?}"
                );
            }
        }
        assert_eq!(next_attempt(&WEBHOOK_RETRY_DELAYS, 10, now, None), None);
        assert_eq!(next_attempt(&WEBHOOK_RETRY_DELAYS, 0, now, None), None);
        let pushed = next_attempt(&WEBHOOK_RETRY_DELAYS, 1, now, Some(Duration::from_secs(60)));
        assert!(pushed.unwrap() - now >= chrono::Duration::seconds(60));
    }
}
