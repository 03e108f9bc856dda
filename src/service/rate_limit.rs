//! Request limits on governor's GCRA.
//!
//! Semantics (documented in the README): each limit is a bucket of `limit`
//! requests that refills continuously at `limit` per window. A client may spend
//! the whole bucket at once — the (limit+1)-th request in a burst gets 429 — and
//! then sustains `limit` per window. In the worst case (full bucket spent, then
//! steady refill) a client gets at most 2×limit−1 requests in a 60-second window,
//! and never more than `limit` per window on average.
//!
//! Buckets: per API key, per enterprise (all its keys together), per client IP on
//! login and on registration. Idle buckets (full again) are pruned periodically.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use governor::clock::Clock as GovernorClock;
use governor::middleware::StateInformationMiddleware;
use governor::nanos::Nanos;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

use crate::clock::SharedClock;
use crate::domain::{ApiKeyId, EnterpriseId};

/// The service clock as governor sees it.
#[derive(Clone)]
pub struct LimiterClock(SharedClock);

impl GovernorClock for LimiterClock {
    type Instant = Nanos;
    fn now(&self) -> Nanos {
        Nanos::from(self.0.monotonic())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bucket {
    ApiKey(ApiKeyId),
    Enterprise(EnterpriseId),
    LoginIp(IpAddr),
    /// A person's requests with their access token (JWT).
    Person(crate::domain::UserId),
    /// Failed sign-ins of one account from one client address.
    LoginFailures(crate::domain::UserId, IpAddr),
    RegisterIp(IpAddr),
    /// An enterprise's SCIM requests.
    Scim(EnterpriseId),
    /// Password reset emails sent to one account.
    PasswordResetMail(crate::domain::UserId),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Name shown in `RateLimit-Policy` and in the 429 body.
    pub name: &'static str,
    pub limit: u32,
    pub window: Duration,
}

impl Policy {
    pub fn per_minute(name: &'static str, limit: u32) -> Policy {
        Policy {
            name,
            limit,
            window: Duration::from_secs(60),
        }
    }

    fn quota(&self) -> Quota {
        let limit = NonZeroU32::new(self.limit).unwrap_or(NonZeroU32::MIN);
        let period = self.window / limit.get();
        Quota::with_period(period.max(Duration::from_nanos(1)))
            .unwrap_or_else(|| Quota::per_second(limit))
            .allow_burst(limit)
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Allowed {
    pub policy: Policy,
    pub remaining: u32,
    /// Time until the bucket is full again.
    pub reset: Duration,
}

#[derive(Debug, Clone, Copy)]
pub struct Denied {
    pub policy: Policy,
    pub retry_after: Duration,
}

type Limiter = RateLimiter<NotKeyed, InMemoryState, LimiterClock, StateInformationMiddleware>;

struct Entry {
    policy: Policy,
    limiter: Limiter,
    last_seen: Duration,
}

pub struct RateLimits {
    clock: SharedClock,
    buckets: Mutex<HashMap<Bucket, Entry>>,
    metrics: std::sync::Arc<crate::metrics::Metrics>,
}

impl RateLimits {
    pub fn new(clock: SharedClock, metrics: std::sync::Arc<crate::metrics::Metrics>) -> RateLimits {
        RateLimits {
            clock,
            buckets: Mutex::new(HashMap::new()),
            metrics,
        }
    }

    /// Takes one request from `bucket`, created with `policy` if new. A changed
    /// policy (an administrator raised the limit) starts a fresh bucket.
    pub fn check(&self, bucket: Bucket, policy: Policy) -> Result<Allowed, Denied> {
        let now = self.clock.monotonic();
        let Ok(mut buckets) = self.buckets.lock() else {
            // A poisoned map means a panic elsewhere; failing open here would
            // disable limits silently, so refuse briefly instead.
            self.metrics.rate_limited(policy.name);
            return Err(Denied {
                policy,
                retry_after: Duration::from_secs(1),
            });
        };
        let entry = buckets
            .entry(bucket)
            .or_insert_with(|| self.new_entry(policy, now));
        if entry.policy != policy {
            *entry = self.new_entry(policy, now);
        }
        entry.last_seen = now;
        let period = policy.window / policy.limit.max(1);
        match entry.limiter.check() {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                Ok(Allowed {
                    policy,
                    remaining,
                    reset: period * (policy.limit.saturating_sub(remaining)),
                })
            }
            Err(not_until) => {
                self.metrics.rate_limited(policy.name);
                Err(Denied {
                    policy,
                    retry_after: not_until.wait_time_from(Nanos::from(now)),
                })
            }
        }
    }

    fn new_entry(&self, policy: Policy, now: Duration) -> Entry {
        Entry {
            policy,
            limiter: RateLimiter::direct_with_clock(
                policy.quota(),
                LimiterClock(self.clock.clone()),
            )
            .with_middleware::<StateInformationMiddleware>(),
            last_seen: now,
        }
    }

    /// Drops buckets idle for a whole window: they are full again, so forgetting
    /// them changes nothing but memory (per-IP keys are chosen by strangers).
    pub fn prune(&self) -> usize {
        let now = self.clock.monotonic();
        let Ok(mut buckets) = self.buckets.lock() else {
            return 0;
        };
        let before = buckets.len();
        buckets.retain(|_, entry| now.saturating_sub(entry.last_seen) < entry.policy.window);
        buckets.shrink_to_fit();
        before - buckets.len()
    }

    pub fn bucket_count(&self) -> usize {
        self.buckets.lock().map(|b| b.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use proptest::prelude::*;

    fn limits() -> (std::sync::Arc<ManualClock>, RateLimits) {
        let clock = ManualClock::starting_at(chrono::Utc::now());
        let limits = RateLimits::new(clock.clone(), Default::default());
        (clock, limits)
    }

    #[test]
    fn the_request_after_a_full_burst_is_refused() {
        let (clock, limits) = limits();
        let key = Bucket::ApiKey(ApiKeyId::generate());
        let policy = Policy::per_minute("per-key", 100);
        for i in 0..100 {
            let allowed = limits.check(key, policy).unwrap();
            assert_eq!(allowed.remaining, 99 - i);
        }
        let denied = limits.check(key, policy).unwrap_err();
        assert_eq!(denied.retry_after, Duration::from_millis(600));
        clock.advance(Duration::from_millis(600));
        assert!(limits.check(key, policy).is_ok());
        assert!(limits.check(key, policy).is_err());
    }

    #[test]
    fn buckets_are_independent() {
        let (_, limits) = limits();
        let policy = Policy::per_minute("per-key", 2);
        let a = Bucket::ApiKey(ApiKeyId::generate());
        let b = Bucket::ApiKey(ApiKeyId::generate());
        assert!(limits.check(a, policy).is_ok());
        assert!(limits.check(a, policy).is_ok());
        assert!(limits.check(a, policy).is_err());
        assert!(limits.check(b, policy).is_ok());
    }

    #[test]
    fn idle_buckets_are_pruned() {
        let (clock, limits) = limits();
        let policy = Policy::per_minute("login", 5);
        for i in 0..10u8 {
            let _ = limits.check(Bucket::LoginIp(IpAddr::from([10, 0, 0, i])), policy);
        }
        assert_eq!(limits.bucket_count(), 10);
        clock.advance(Duration::from_secs(30));
        assert_eq!(limits.prune(), 0);
        clock.advance(Duration::from_secs(31));
        assert_eq!(limits.prune(), 10);
    }

    proptest! {
        /// Whatever the arrival pattern, no 60-second window admits more than
        /// 2×limit−1 requests, and the first window of a fresh bucket admits at
        /// most limit + (elapsed refills).
        #[test]
        fn window_bound_holds(gaps in proptest::collection::vec(0u64..2_000, 1..400)) {
            let (clock, limits) = limits();
            let policy = Policy::per_minute("per-key", 20);
            let key = Bucket::ApiKey(ApiKeyId::generate());
            let mut admitted: Vec<u64> = Vec::new();
            let mut t = 0u64;
            for gap in gaps {
                clock.advance(Duration::from_millis(gap));
                t += gap;
                if limits.check(key, policy).is_ok() {
                    admitted.push(t);
                }
            }
            for (i, start) in admitted.iter().enumerate() {
                let in_window = admitted[i..].iter().take_while(|&&x| x < start + 60_000).count();
                prop_assert!(in_window <= 39, "{in_window} requests within 60 s");
            }
        }
    }
}
