//! Time as a seam: the daemon reads the clock only through [`Clock`], so the whole
//! supervisor runs in tests on a [`FakeClock`] (weeks of outages in milliseconds).

use std::cell::Cell;
use std::time::{Duration, Instant, SystemTime};

/// Monotonic and wall-clock time.
pub trait Clock {
    /// Monotonic time, for every decision.
    fn now(&self) -> Instant;
    /// Wall-clock time, for logs, status and the state file only.
    fn wall(&self) -> SystemTime;
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
    fn wall(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that moves only when told to.
#[derive(Debug)]
pub struct FakeClock {
    base: Instant,
    wall_base: SystemTime,
    offset: Cell<Duration>,
}

impl Default for FakeClock {
    fn default() -> Self {
        FakeClock {
            base: Instant::now(),
            wall_base: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
            offset: Cell::new(Duration::ZERO),
        }
    }
}

impl FakeClock {
    /// Moves time forward by `d`.
    pub fn advance(&self, d: Duration) {
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

impl Clock for FakeClock {
    fn now(&self) -> Instant {
        self.base + self.offset.get()
    }
    fn wall(&self) -> SystemTime {
        self.wall_base + self.offset.get()
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
    }
}
