//! RX/TX throughput of the RED interface, from the kernel's interface counters
//! (`/sys/class/net/IFACE/statistics/{rx,tx}_bytes` under the root, [`crate::ipfire::paths::Paths::sys`]).
//!
//! [`Traffic`] is pure: the supervisor loop reads the counters once a second
//! ([`read_counters`]) and feeds them in with the loop's instant; [`Traffic::rates`] gives
//! the rate over the last sample interval ("now") and over about the last minute ("avg").
//! A counter that goes backwards (the interface was recreated, e.g. a new `ppp0`) or a
//! change of interface starts over instead of producing a huge or negative rate.

use std::collections::VecDeque;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;

/// The window of the average.
pub(crate) const AVG_WINDOW: Duration = Duration::from_secs(60);
/// Most intervals kept (bounds memory whatever the sampling rate).
const MAX_INTERVALS: usize = 240;

/// Throughput in Mbit/s (10^6 bit/s), rounded to 0.001.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Rates {
    /// Received, over the last sample interval.
    pub rx_mbps: f64,
    /// Sent, over the last sample interval.
    pub tx_mbps: f64,
    /// Received, over about the last minute.
    pub rx_mbps_avg: f64,
    /// Sent, over about the last minute.
    pub tx_mbps_avg: f64,
}

/// One interval between two samples.
#[derive(Debug, Clone, Copy)]
struct Interval {
    end: Instant,
    dur: Duration,
    rx: u64,
    tx: u64,
}

/// Throughput of one interface from successive counter samples.
#[derive(Debug, Clone, Default)]
pub struct Traffic {
    iface: Option<String>,
    last: Option<(u64, u64, Instant)>,
    intervals: VecDeque<Interval>,
}

impl Traffic {
    /// No samples yet.
    pub fn new() -> Traffic {
        Traffic::default()
    }

    /// The interface of the last sample.
    pub fn iface(&self) -> Option<&str> {
        self.iface.as_deref()
    }

    /// Forgets everything (RED went down, or its counters are unreadable).
    pub fn reset(&mut self) {
        *self = Traffic::default();
    }

    /// Records the counters `rx`/`tx` (bytes) of `iface` at `now`.
    pub(crate) fn sample(&mut self, iface: &str, rx: u64, tx: u64, now: Instant) {
        if self.iface.as_deref() != Some(iface) {
            self.reset();
            self.iface = Some(iface.to_string());
        }
        let Some((last_rx, last_tx, at)) = self.last else {
            self.last = Some((rx, tx, now));
            return;
        };
        if now <= at {
            // Same instant (or a clock that did not advance): nothing to measure.
            return;
        }
        self.last = Some((rx, tx, now));
        if rx < last_rx || tx < last_tx {
            // The counters were reset (interface recreated): a new baseline, no interval.
            return;
        }
        if self.intervals.len() == MAX_INTERVALS {
            self.intervals.pop_front();
        }
        self.intervals.push_back(Interval {
            end: now,
            dur: now - at,
            rx: rx - last_rx,
            tx: tx - last_tx,
        });
        while let Some(first) = self.intervals.front() {
            if now.duration_since(first.end) + first.dur > AVG_WINDOW && self.intervals.len() > 1 {
                self.intervals.pop_front();
            } else {
                break;
            }
        }
    }

    /// Reads the counters of `iface` under `sys_root` and records them; an unreadable
    /// counter (the interface is gone) resets. `sys_root` is `Paths::sys`.
    pub fn poll(&mut self, sys_root: &Path, iface: &str, now: Instant) {
        match read_counters(sys_root, iface) {
            Some((rx, tx)) => self.sample(iface, rx, tx, now),
            None => self.reset(),
        }
    }

    /// The rates now (last interval) and on average (about the last minute).
    pub fn rates(&self) -> Rates {
        let Some(last) = self.intervals.back() else {
            return Rates::default();
        };
        let (mut rx, mut tx, mut dur) = (0u64, 0u64, Duration::ZERO);
        for i in &self.intervals {
            rx = rx.saturating_add(i.rx);
            tx = tx.saturating_add(i.tx);
            dur += i.dur;
        }
        Rates {
            rx_mbps: mbps(last.rx, last.dur),
            tx_mbps: mbps(last.tx, last.dur),
            rx_mbps_avg: mbps(rx, dur),
            tx_mbps_avg: mbps(tx, dur),
        }
    }
}

fn mbps(bytes: u64, dur: Duration) -> f64 {
    let secs = dur.as_secs_f64();
    if secs <= 0.0 {
        return 0.0;
    }
    let v = bytes as f64 * 8.0 / 1_000_000.0 / secs;
    (v * 1000.0).round() / 1000.0
}

/// `(rx_bytes, tx_bytes)` of `iface` from `<sys_root>/class/net/IFACE/statistics/`, or
/// `None` when the interface does not exist, the name is not an interface name, or a
/// counter is unreadable.
pub fn read_counters(sys_root: &Path, iface: &str) -> Option<(u64, u64)> {
    if !crate::ipfire::profile::valid_device(iface) || iface.starts_with('.') {
        return None;
    }
    let dir = sys_root.join("class/net").join(iface).join("statistics");
    let read = |name: &str| -> Option<u64> {
        let s = std::fs::read_to_string(dir.join(name)).ok()?;
        s.trim().parse().ok()
    };
    Some((read("rx_bytes")?, read("tx_bytes")?))
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // fixture files
mod tests {
    use super::*;
    use crate::sys::clock::{Clock, SystemClock};

    fn secs(t0: Instant, s: u64) -> Instant {
        t0 + Duration::from_secs(s)
    }

    #[test]
    fn no_rate_before_two_samples() {
        let t0 = SystemClock.now();
        let mut t = Traffic::new();
        assert_eq!(t.rates(), Rates::default());
        t.sample("ppp0", 1000, 1000, t0);
        assert_eq!(t.rates(), Rates::default());
    }

    #[test]
    fn now_is_the_last_interval_and_avg_the_minute() {
        let t0 = SystemClock.now();
        let mut t = Traffic::new();
        // 1 MB/s = 8 Mbit/s down, 125 kB/s = 1 Mbit/s up, for 10 s.
        let (mut rx, mut tx) = (0u64, 0u64);
        for s in 0..=10 {
            t.sample("red0", rx, tx, secs(t0, s));
            rx += 1_000_000;
            tx += 125_000;
        }
        let r = t.rates();
        assert_eq!(r.rx_mbps, 8.0);
        assert_eq!(r.tx_mbps, 1.0);
        assert_eq!(r.rx_mbps_avg, 8.0);
        assert_eq!(r.tx_mbps_avg, 1.0);
        // Then one idle second: now 0, the average dips a little.
        t.sample("red0", rx - 1_000_000, tx - 125_000, secs(t0, 11));
        let r = t.rates();
        assert_eq!(r.rx_mbps, 0.0);
        assert!((r.rx_mbps_avg - 80.0 / 11.0).abs() < 0.001, "{r:?}");
    }

    #[test]
    fn the_average_forgets_what_is_older_than_a_minute() {
        let t0 = SystemClock.now();
        let mut t = Traffic::new();
        let mut rx = 0u64;
        // 30 s at 8 Mbit/s, then 90 s idle.
        for s in 0..=30 {
            t.sample("red0", rx, 0, secs(t0, s));
            rx += 1_000_000;
        }
        rx -= 1_000_000;
        for s in 31..=120 {
            t.sample("red0", rx, 0, secs(t0, s));
        }
        let r = t.rates();
        assert_eq!(r.rx_mbps_avg, 0.0, "{r:?}");
        assert!(t.intervals.len() <= 61);
    }

    #[test]
    fn memory_is_bounded_with_fast_sampling() {
        let t0 = SystemClock.now();
        let mut t = Traffic::new();
        for ms in 0..10_000u64 {
            t.sample("red0", ms * 100, ms, t0 + Duration::from_millis(ms));
        }
        assert!(t.intervals.len() <= MAX_INTERVALS);
        // 100 bytes per ms = 0.8 Mbit/s.
        assert_eq!(t.rates().rx_mbps, 0.8);
        assert_eq!(t.rates().rx_mbps_avg, 0.8);
    }

    #[test]
    fn a_counter_reset_starts_over_without_a_spike() {
        let t0 = SystemClock.now();
        let mut t = Traffic::new();
        t.sample("ppp0", 5_000_000_000, 10, t0);
        t.sample("ppp0", 5_001_000_000, 20, secs(t0, 1));
        // ppp0 recreated: counters back near zero.
        t.sample("ppp0", 500, 0, secs(t0, 2));
        let r = t.rates();
        assert_eq!(r.rx_mbps, 8.0, "the reset interval is not counted: {r:?}");
        t.sample("ppp0", 125_500, 0, secs(t0, 3));
        assert_eq!(t.rates().rx_mbps, 1.0);
        assert!(t.rates().rx_mbps_avg < 8.0);
    }

    #[test]
    fn a_new_interface_starts_over() {
        let t0 = SystemClock.now();
        let mut t = Traffic::new();
        t.sample("red0", 0, 0, t0);
        t.sample("red0", 1_000_000, 0, secs(t0, 1));
        t.sample("wwan0", 7, 7, secs(t0, 2));
        assert_eq!(t.rates(), Rates::default());
        assert_eq!(t.iface(), Some("wwan0"));
    }

    #[test]
    fn a_clock_that_does_not_advance_is_ignored() {
        let t0 = SystemClock.now();
        let mut t = Traffic::new();
        t.sample("red0", 0, 0, t0);
        t.sample("red0", 1_000_000, 0, t0);
        assert_eq!(
            t.rates(),
            Rates::default(),
            "no division by a zero interval"
        );
        // The bytes are not lost: they count in the next interval.
        t.sample("red0", 1_000_000, 0, secs(t0, 1));
        assert_eq!(t.rates().rx_mbps, 8.0);
    }

    #[test]
    fn counters_come_from_the_sys_tree() {
        let d = tempfile::tempdir().unwrap();
        let stats = d.path().join("class/net/red0/statistics");
        std::fs::create_dir_all(&stats).unwrap();
        std::fs::write(stats.join("rx_bytes"), "123456\n").unwrap();
        std::fs::write(stats.join("tx_bytes"), "654321\n").unwrap();
        assert_eq!(read_counters(d.path(), "red0"), Some((123456, 654321)));
        assert_eq!(read_counters(d.path(), "ppp0"), None);
        assert_eq!(read_counters(d.path(), "../red0"), None);
        std::fs::write(stats.join("tx_bytes"), "garbage").unwrap();
        assert_eq!(read_counters(d.path(), "red0"), None);

        std::fs::write(stats.join("tx_bytes"), "0").unwrap();
        let t0 = SystemClock.now();
        let mut t = Traffic::new();
        t.poll(d.path(), "red0", t0);
        std::fs::write(stats.join("rx_bytes"), "1123456").unwrap();
        t.poll(d.path(), "red0", secs(t0, 1));
        assert_eq!(t.rates().rx_mbps, 8.0);
        assert_eq!(t.iface(), Some("red0"));
        assert_eq!(t.rates().rx_mbps_avg, 8.0);
        // The interface vanishes: everything resets.
        t.poll(d.path(), "ppp0", secs(t0, 2));
        assert_eq!(t.rates(), Rates::default());
    }
}
