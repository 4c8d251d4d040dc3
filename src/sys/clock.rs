//! Time as a seam: the daemon reads the clock and waits only through [`Clock`], so the
//! whole supervisor runs in tests on a fake clock (weeks of outages in milliseconds).
//!
//! [`SystemClock`] is the one place that reads the real clock and sleeps (`Instant::now`
//! and `thread::sleep` are banned everywhere else by `clippy.toml`); code that talks to the
//! real world (sockets, processes) uses it directly, since its waits are real. `FakeClock`
//! exists for tests only (`cfg(test)` or the `test-util` feature).

#[cfg(any(test, feature = "test-util"))]
use std::cell::Cell;
use std::time::{Duration, Instant, SystemTime};

/// Monotonic and wall-clock time.
pub trait Clock {
    /// Monotonic time, for every decision.
    fn now(&self) -> Instant;
    /// Wall-clock time, for logs, status and the state file only.
    fn wall(&self) -> SystemTime;
    /// Waits `d` (a bounded poll of something without a descriptor to wait on): the real
    /// clock sleeps, a fake one moves forward by `d`.
    fn sleep(&self, d: Duration);
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

// The one real implementation: everything else reads time and waits through it.
#[allow(clippy::disallowed_methods)]
impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
    fn wall(&self) -> SystemTime {
        SystemTime::now()
    }
    fn sleep(&self, d: Duration) {
        std::thread::sleep(d);
    }
}

/// A clock that moves only when told to (or when something sleeps on it).
#[cfg(any(test, feature = "test-util"))]
#[derive(Debug)]
pub struct FakeClock {
    base: Instant,
    wall_base: SystemTime,
    offset: Cell<Duration>,
}

#[cfg(any(test, feature = "test-util"))]
impl Default for FakeClock {
    fn default() -> Self {
        FakeClock {
            base: SystemClock.now(),
            wall_base: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
            offset: Cell::new(Duration::ZERO),
        }
    }
}

#[cfg(any(test, feature = "test-util"))]
impl FakeClock {
    /// Moves time forward by `d`.
    pub(crate) fn advance(&self, d: Duration) {
        self.offset.set(self.offset.get() + d);
    }
    /// Moves time forward to `t` (no-op if `t` is in the past).
    pub fn advance_to(&self, t: Instant) {
        if let Some(d) = t.checked_duration_since(self.base) {
            if d > self.offset.get() {
                self.offset.set(d);
            }
        }
    }
}

#[cfg(any(test, feature = "test-util"))]
impl Clock for FakeClock {
    fn now(&self) -> Instant {
        self.base + self.offset.get()
    }
    fn wall(&self) -> SystemTime {
        self.wall_base + self.offset.get()
    }
    fn sleep(&self, d: Duration) {
        self.advance(d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fake_clock_moves_only_forward_when_told() {
        let c = FakeClock::default();
        let t0 = c.now();
        c.advance(Duration::from_secs(3600));
        assert_eq!(c.now() - t0, Duration::from_secs(3600));
        c.advance_to(t0);
        assert_eq!(c.now() - t0, Duration::from_secs(3600));
        c.advance_to(t0 + Duration::from_secs(7200));
        assert_eq!(c.now() - t0, Duration::from_secs(7200));
        c.sleep(Duration::from_secs(1));
        assert_eq!(
            c.now() - t0,
            Duration::from_secs(7201),
            "sleeping moves a fake clock"
        );
    }

    #[test]
    fn the_system_clock_sleeps_for_real() {
        let c = SystemClock;
        let t0 = c.now();
        c.sleep(Duration::from_millis(20));
        assert!(c.now() - t0 >= Duration::from_millis(20));
    }
}
