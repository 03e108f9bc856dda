//! Time as a dependency: services read "now" from a [`Clock`] so that tests can move
//! time forward instead of sleeping.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, SubsecRound, TimeZone, Utc};

pub trait Clock: Send + Sync + 'static {
    /// Wall-clock time, for timestamps and expiry dates.
    fn now(&self) -> DateTime<Utc>;
    /// Monotonic time since an arbitrary origin, for rate limits and durations.
    fn monotonic(&self) -> Duration;
}

pub type SharedClock = Arc<dyn Clock>;

pub struct SystemClock {
    origin: Instant,
}

impl SystemClock {
    pub fn shared() -> SharedClock {
        Arc::new(SystemClock {
            origin: Instant::now(),
        })
    }
}

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        // Milliseconds: what the database stores, so values read back compare equal.
        Utc::now().trunc_subsecs(3)
    }
    fn monotonic(&self) -> Duration {
        self.origin.elapsed()
    }
}

/// A clock that only moves when told to; both its wall and monotonic readings
/// advance together.
pub struct ManualClock {
    wall_millis: AtomicI64,
    mono_nanos: AtomicU64,
}

impl ManualClock {
    pub fn starting_at(start: DateTime<Utc>) -> Arc<ManualClock> {
        Arc::new(ManualClock {
            wall_millis: AtomicI64::new(start.timestamp_millis()),
            mono_nanos: AtomicU64::new(1_000_000_000),
        })
    }

    pub fn advance(&self, by: Duration) {
        let millis = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.wall_millis.fetch_add(millis, Ordering::SeqCst);
        let nanos = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        self.mono_nanos.fetch_add(nanos, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        Utc.timestamp_millis_opt(self.wall_millis.load(Ordering::SeqCst))
            .single()
            .unwrap_or_default()
    }
    fn monotonic(&self) -> Duration {
        Duration::from_nanos(self.mono_nanos.load(Ordering::SeqCst))
    }
}
