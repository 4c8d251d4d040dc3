//! The last 24 hours of the uplink, for the web UI's timeline (DESIGN.md 7a):
//! which profile carried the traffic when, the RTT of the active uplink, and the last
//! pre-test of every profile. The switches themselves are the state file's transitions.
//!
//! The supervisor keeps it in `/var/ipfire/connectd/history` (JSON), so it survives
//! restarts. It is bounded: entries older than 24 hours are dropped, and at most
//! [`MAX_INTERVALS`] intervals, [`MAX_RTT`] RTT points (one per minute, the mean of that
//! minute's rounds) and [`MAX_PRETESTS`] profiles are kept, which keeps the file under
//! about 100 KB. It is written atomically, at once when the carrying profile changes or a
//! pre-test ends, otherwise at most once every [`SAVE_EVERY_SECS`] seconds.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::ipfire::fsutil;
use crate::ipfire::paths::Paths;
use crate::ipfire::state::SwitchRecord;

/// The window the history covers.
pub(crate) const WINDOW_SECS: i64 = 86_400;
/// One RTT point per this many seconds.
pub(crate) const RTT_STEP_SECS: i64 = 60;
/// RTT points kept: one a minute for 24 hours.
pub const MAX_RTT: usize = 1440;
/// Carrying intervals kept (a flapping line cannot grow the file without bound).
pub const MAX_INTERVALS: usize = 512;
/// Profiles whose last pre-test is kept.
pub const MAX_PRETESTS: usize = 32;
/// Longest a pre-test's detail may be.
const MAX_DETAIL: usize = 200;
/// The least time between two writes that only add RTT.
pub const SAVE_EVERY_SECS: i64 = 60;

/// A span during which one profile carried the traffic (`profile` None: nothing did).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Interval {
    /// The profile, or None while RED was down.
    pub profile: Option<String>,
    /// Unix time it began.
    pub from: i64,
    /// Unix time it ended; None while it lasts.
    pub to: Option<i64>,
}

/// The last pre-test of a profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pretest {
    /// Unix time.
    pub at: i64,
    /// `passed`, `failed` or `cannot test`.
    pub result: String,
    /// What was seen (e.g. the access concentrator), or why it could not test.
    pub detail: String,
}

/// The minute being collected.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
struct Bucket {
    start: i64,
    sum_ms: f64,
    answered: u32,
}

/// The history (see the module documentation).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub(crate) struct History {
    /// Oldest first; the last one is open while it lasts.
    pub intervals: VecDeque<Interval>,
    /// (minute start, mean RTT in ms; None when no round answered in that minute).
    pub rtt: VecDeque<(i64, Option<f64>)>,
    /// The last pre-test per profile.
    pub pretests: BTreeMap<String, Pretest>,
    #[serde(skip)]
    bucket: Option<Bucket>,
    #[serde(skip)]
    dirty: bool,
    #[serde(skip)]
    urgent: bool,
    #[serde(skip)]
    saved_at: i64,
}

impl History {
    /// Reads the history file; missing or unreadable means an empty history (it is only
    /// for display: a corrupt file is logged and replaced on the next write).
    pub fn load(paths: &Paths) -> History {
        let path = paths.history();
        match fsutil::read_bounded(&path) {
            Ok(data) => match serde_json::from_slice::<History>(&data) {
                Ok(h) => h,
                Err(e) => {
                    log::warn!(
                        "{}: not a valid history ({e}); starting a new one",
                        path.display()
                    );
                    History::default()
                }
            },
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                History::default()
            }
            Err(e) => {
                log::warn!("{e}; starting a new history");
                History::default()
            }
        }
    }

    /// Who carries the traffic at `now` (None: RED is down). Closes the open interval and
    /// opens a new one when that changed.
    pub fn carrying(&mut self, now: i64, profile: Option<&str>) {
        if let Some(last) = self.intervals.back_mut() {
            if last.to.is_none() {
                if last.profile.as_deref() == profile {
                    return;
                }
                if last.from >= now {
                    // Changed again within the same second: that one never carried.
                    self.intervals.pop_back();
                    if let Some(prev) = self.intervals.back_mut() {
                        if prev.profile.as_deref() == profile && prev.to == Some(now) {
                            prev.to = None;
                            self.dirty = true;
                            self.urgent = true;
                            return;
                        }
                    }
                } else {
                    last.to = Some(now);
                }
            }
        }
        self.intervals.push_back(Interval {
            profile: profile.map(str::to_string),
            from: now,
            to: None,
        });
        self.prune(now);
        self.dirty = true;
        self.urgent = true;
    }

    /// A probe round of the active uplink at `now`: the mean RTT of the targets that
    /// answered, or None when none did. Rounds are averaged per minute.
    pub fn round(&mut self, now: i64, rtt_ms: Option<f64>) {
        let start = now - now.rem_euclid(RTT_STEP_SECS);
        let b = match self.bucket {
            Some(b) if b.start == start => b,
            Some(b) => {
                self.close_bucket(b);
                Bucket {
                    start,
                    ..Bucket::default()
                }
            }
            None => Bucket {
                start,
                ..Bucket::default()
            },
        };
        let mut b = b;
        if let Some(ms) = rtt_ms.filter(|m| m.is_finite() && *m >= 0.0) {
            b.sum_ms += ms;
            b.answered += 1;
        }
        self.bucket = Some(b);
        self.dirty = true;
    }

    fn close_bucket(&mut self, b: Bucket) {
        let mean = (b.answered > 0).then(|| b.sum_ms / f64::from(b.answered));
        self.rtt.push_back((b.start, mean));
        while self.rtt.len() > MAX_RTT {
            self.rtt.pop_front();
        }
    }

    /// The result of a pre-test of `profile` at `now`.
    pub fn pretest(&mut self, now: i64, profile: &str, result: &str, detail: &str) {
        let mut detail = detail.to_string();
        if detail.len() > MAX_DETAIL {
            let mut cut = MAX_DETAIL;
            while !detail.is_char_boundary(cut) {
                cut -= 1;
            }
            detail.truncate(cut);
        }
        self.pretests.insert(
            profile.to_string(),
            Pretest {
                at: now,
                result: result.to_string(),
                detail,
            },
        );
        while self.pretests.len() > MAX_PRETESTS {
            // Drop the oldest result.
            let oldest = self
                .pretests
                .iter()
                .min_by_key(|(_, p)| p.at)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => self.pretests.remove(&k),
                None => break,
            };
        }
        self.dirty = true;
        self.urgent = true;
    }

    /// Drops what lies wholly before the window and enforces the bounds.
    fn prune(&mut self, now: i64) {
        let start = now - WINDOW_SECS;
        while self
            .intervals
            .front()
            .is_some_and(|i| i.to.is_some_and(|to| to < start))
        {
            self.intervals.pop_front();
        }
        while self.intervals.len() > MAX_INTERVALS {
            self.intervals.pop_front();
        }
        while self.rtt.front().is_some_and(|(t, _)| *t < start) {
            self.rtt.pop_front();
        }
        self.pretests.retain(|_, p| p.at >= start);
    }

    /// Writes the file when something urgent changed, or when RTT points are due.
    pub(crate) fn save_if_due(&mut self, paths: &Paths, now: i64) -> Result<()> {
        if self.urgent || (self.dirty && now - self.saved_at >= SAVE_EVERY_SECS) {
            self.save(paths, now)?;
        }
        Ok(())
    }

    /// Writes the file now (atomically, 0644: it holds no secret).
    pub fn save(&mut self, paths: &Paths, now: i64) -> Result<()> {
        self.prune(now);
        let mut snapshot = self.clone();
        if let Some(b) = snapshot.bucket.take() {
            snapshot.close_bucket(b);
        }
        let data = serde_json::to_vec(&snapshot)
            .map_err(|e| Error::Failed(format!("cannot serialize the history: {e}")))?;
        fsutil::ensure_dir(&paths.connectd_dir())?;
        fsutil::replace_atomically(&paths.history(), &data, 0o644)?;
        self.saved_at = now;
        self.dirty = false;
        self.urgent = false;
        Ok(())
    }

    /// The `history --json` object at `now`: the last 24 hours of intervals, RTT points,
    /// pre-tests, and `switches` from the state file's transitions.
    pub fn view(&self, now: i64, transitions: &[SwitchRecord]) -> Value {
        let start = now - WINDOW_SECS;
        let mut rtt: Vec<(i64, Option<f64>)> = self.rtt.iter().copied().collect();
        if let Some(b) = self.bucket {
            rtt.push((
                b.start,
                (b.answered > 0).then(|| b.sum_ms / f64::from(b.answered)),
            ));
        }
        let rtt: Vec<Value> = rtt
            .into_iter()
            .filter(|(t, _)| *t >= start && *t <= now)
            .map(|(t, ms)| json!([t, ms.map(|m| (m * 10.0).round() / 10.0)]))
            .collect();
        let intervals: Vec<&Interval> = self
            .intervals
            .iter()
            .filter(|i| i.to.is_none_or(|to| to >= start))
            .collect();
        let switches: Vec<&SwitchRecord> = transitions.iter().filter(|t| t.at >= start).collect();
        json!({
            "now": now,
            "window_secs": WINDOW_SECS,
            "intervals": intervals,
            "switches": switches,
            "rtt": rtt,
            "pretests": self.pretests,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths() -> (tempfile::TempDir, Paths) {
        let dir = tempfile::tempdir().unwrap();
        let p = Paths::new(dir.path()).unwrap();
        (dir, p)
    }

    #[test]
    fn intervals_open_and_close_only_on_a_change() {
        let mut h = History::default();
        h.carrying(100, Some("1"));
        h.carrying(110, Some("1"));
        h.carrying(120, None);
        h.carrying(130, Some("2"));
        h.carrying(140, Some("3"));
        h.carrying(140, Some("2"));
        h.carrying(150, None);
        h.carrying(150, Some("2"));
        let got: Vec<_> = h
            .intervals
            .iter()
            .map(|i| (i.profile.clone(), i.from, i.to))
            .collect();
        assert_eq!(
            got,
            vec![
                (Some("1".into()), 100, Some(120)),
                (None, 120, Some(130)),
                (Some("2".into()), 130, None)
            ],
            "a change that lasted no second leaves no interval"
        );
    }

    #[test]
    fn rtt_is_one_mean_per_minute_and_none_when_nothing_answered() {
        let mut h = History::default();
        h.round(600, Some(10.0));
        h.round(610, Some(20.0));
        h.round(630, None);
        h.round(660, None);
        h.round(725, Some(5.0));
        let v = h.view(730, &[]);
        assert_eq!(v["rtt"], json!([[600, 15.0], [660, null], [720, 5.0]]));
    }

    #[test]
    fn bounded_in_time_and_size() {
        let mut h = History::default();
        let day = WINDOW_SECS;
        for i in 0..(MAX_INTERVALS as i64 * 3) {
            h.carrying(i, Some(if i % 2 == 0 { "1" } else { "2" }));
        }
        assert!(h.intervals.len() <= MAX_INTERVALS);
        for m in 0..(2 * MAX_RTT as i64) {
            h.round(m * 60, Some(1.0));
        }
        h.round(2 * MAX_RTT as i64 * 60 + 60, Some(1.0));
        assert!(h.rtt.len() <= MAX_RTT);
        for p in 0..(MAX_PRETESTS * 2) {
            h.pretest(p as i64, &format!("p{p}"), "passed", &"x".repeat(1000));
        }
        assert_eq!(h.pretests.len(), MAX_PRETESTS);
        assert!(h.pretests.values().all(|p| p.detail.len() <= MAX_DETAIL));
        // A day later, everything old is gone but the interval still open.
        let later = 10 * day;
        h.carrying(later, Some("1"));
        h.prune(later);
        assert!(h.rtt.is_empty());
        assert!(h.pretests.is_empty());
        assert_eq!(h.intervals.len(), 2, "{:?}", h.intervals);
        let (_d, p) = paths();
        h.save(&p, later).unwrap();
        let size = std::fs::metadata(p.history()).unwrap().len();
        assert!(size < 100_000, "{size} bytes");
    }

    #[test]
    fn the_worst_case_file_stays_under_100_kb() {
        let mut h = History::default();
        let now = 10 * WINDOW_SECS;
        for m in 0..MAX_RTT as i64 {
            h.round(now - WINDOW_SECS + m * 60, Some(123.456));
        }
        for i in 0..MAX_INTERVALS as i64 {
            h.carrying(
                now - WINDOW_SECS + i * 100,
                Some("abcdefghijklmnopqrstuvwxyz012345"),
            );
            h.carrying(now - WINDOW_SECS + i * 100 + 50, None);
        }
        for p in 0..MAX_PRETESTS {
            h.pretest(
                now,
                &format!("profile-name-{p:019}"),
                "cannot test",
                &"y".repeat(300),
            );
        }
        let (_d, p) = paths();
        h.save(&p, now).unwrap();
        let size = std::fs::metadata(p.history()).unwrap().len();
        assert!(size < 100_000, "{size} bytes");
    }

    #[test]
    fn survives_a_restart_and_writes_rarely() {
        let (_d, p) = paths();
        let mut h = History::default();
        h.carrying(1000, Some("1"));
        h.save_if_due(&p, 1000).unwrap();
        assert!(p.history().exists(), "a carrying change is written at once");
        let written = std::fs::read(p.history()).unwrap();
        h.round(1010, Some(3.0));
        h.save_if_due(&p, 1010).unwrap();
        assert_eq!(
            std::fs::read(p.history()).unwrap(),
            written,
            "RTT alone waits"
        );
        h.round(1070, Some(4.0));
        h.save_if_due(&p, 1070).unwrap();
        assert_ne!(
            std::fs::read(p.history()).unwrap(),
            written,
            "after a minute it is written"
        );
        h.pretest(1080, "2", "passed", "PADO from isp1");
        h.save(&p, 1080).unwrap();

        let back = History::load(&p);
        let v = back.view(1090, &[]);
        assert_eq!(v["intervals"][0]["profile"], "1");
        assert_eq!(v["intervals"][0]["to"], Value::Null);
        assert_eq!(v["rtt"][0], json!([960, 3.0]));
        assert_eq!(v["pretests"]["2"]["result"], "passed");
    }

    #[test]
    fn a_corrupt_file_is_an_empty_history() {
        let (_d, p) = paths();
        fsutil::ensure_dir(&p.connectd_dir()).unwrap();
        fsutil::replace_atomically(&p.history(), b"{not json", 0o644).unwrap();
        assert_eq!(History::load(&p), History::default());
    }

    #[test]
    fn the_view_holds_the_last_day_of_switches() {
        let h = History::default();
        let name = |n: &str| crate::ipfire::profile::ProfileName::new(n).unwrap();
        let t = |at: i64| SwitchRecord {
            at,
            from: Some(name("1")),
            to: name("2"),
            kind: crate::ipfire::journal::SwitchKind::Failover,
            reason: "no traffic".into(),
        };
        let v = h.view(WINDOW_SECS + 500, &[t(100), t(WINDOW_SECS + 400)]);
        assert_eq!(v["switches"].as_array().unwrap().len(), 1);
        assert_eq!(v["switches"][0]["at"], WINDOW_SECS + 400);
    }
}
