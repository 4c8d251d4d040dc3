//! The supervisor's persistent state: `/var/ipfire/connectd/state` (JSON, atomic writes).
//!
//! It holds what must survive a restart or a crash (DESIGN.md section 6): the primary and
//! active profile, the failback backoff, switch counters, recent transitions, the primary's
//! saved RED_* values (restored exactly on failback) and the journal of a switch in progress.
//! A journal entry found at start means a switch was interrupted; the supervisor finishes it
//! so `settings`, `secrets` and `ethernet/settings` never disagree.
//!
//! The files of older failover scripts, `red/current-profile` and `red/failover-time`, are
//! kept up to date here too.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ipfire::fsutil;
use crate::ipfire::paths::Paths;

/// Most recent transitions kept in the state file.
pub const MAX_TRANSITIONS: usize = 50;

/// One switch, for status and history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    /// Unix time of the switch.
    pub at: i64,
    /// Profile before.
    pub from: Option<String>,
    /// Profile after.
    pub to: String,
    /// failover, failback, rollback, manual, ...
    pub kind: String,
    /// Why.
    pub reason: String,
}

/// A switch in progress: written before the first step, removed after the last.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journal {
    /// The profile active before the switch.
    pub from: Option<String>,
    /// The profile being activated.
    pub to: String,
    /// The last step completed (see `switch::Step`).
    pub step: String,
    /// Unix time the switch began.
    pub started: i64,
    /// failover, failback, ...
    pub kind: String,
    /// RED_* of `ethernet/settings` before the switch (the primary's, when leaving it).
    #[serde(default)]
    pub previous_red: Option<crate::ipfire::ethernet::RedValues>,
}

/// The state file's contents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct State {
    /// Format version.
    pub version: u32,
    /// The primary profile (the one `settings` pointed at when supervision began).
    pub primary: Option<String>,
    /// The active profile.
    pub active: Option<String>,
    /// Unix time the active profile became active.
    pub since: Option<i64>,
    /// Unix time of the last switch.
    pub last_switch: Option<i64>,
    /// Switches since the state file was created.
    pub switch_count: u64,
    /// Current failback delay in seconds (doubles after each rollback).
    pub failback_delay_secs: Option<u64>,
    /// A profile pinned by `connectd failover P`.
    pub pinned: Option<String>,
    /// Automatic failover/failback.
    pub auto: bool,
    /// Recent transitions, newest last.
    pub transitions: Vec<Transition>,
    /// The primary's RED_* values of `ethernet/settings`, restored exactly on failback.
    pub primary_red: Option<crate::ipfire::ethernet::RedValues>,
    /// The switch in progress, if any.
    pub journal: Option<Journal>,
}

impl Default for State {
    fn default() -> Self {
        State {
            version: 1,
            primary: None,
            active: None,
            since: None,
            last_switch: None,
            switch_count: 0,
            failback_delay_secs: None,
            pinned: None,
            auto: true,
            transitions: Vec::new(),
            primary_red: None,
            journal: None,
        }
    }
}

/// Unix seconds of a wall-clock time.
pub fn unix(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl State {
    /// Reads the state file; a missing one is the default state. A corrupt one is an error
    /// naming the file (the caller decides: the supervisor moves it aside and starts fresh).
    pub fn load(paths: &Paths) -> Result<State> {
        let path = paths.state();
        let data = match fsutil::read_bounded(&path) {
            Ok(d) => d,
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                return Ok(State::default());
            }
            Err(e) => return Err(e),
        };
        serde_json::from_slice(&data).map_err(|e| Error::Parse {
            file: path,
            line: Some(e.line()),
            msg: format!("not a valid state file: {e}"),
        })
    }

    /// Reads the state file, moving a corrupt one aside (`state.corrupt`) with a log line.
    pub fn load_or_reset(paths: &Paths) -> State {
        match State::load(paths) {
            Ok(s) => s,
            Err(e) => {
                log::error!("{e}; starting with a fresh state");
                let path = paths.state();
                let _ = std::fs::rename(&path, path.with_extension("corrupt"));
                State::default()
            }
        }
    }

    /// Writes the state file atomically (0644: it holds no secret).
    pub fn save(&self, paths: &Paths) -> Result<()> {
        fsutil::ensure_dir(&paths.connectd_dir())?;
        let mut data = serde_json::to_vec_pretty(self)
            .map_err(|e| Error::Failed(format!("cannot serialize state: {e}")))?;
        data.push(b'\n');
        fsutil::replace_atomically(&paths.state(), &data, 0o644)
    }

    /// Records a completed switch and bounds the history.
    pub fn record_switch(&mut self, t: Transition) {
        self.active = Some(t.to.clone());
        self.since = Some(t.at);
        self.last_switch = Some(t.at);
        self.switch_count += 1;
        self.transitions.push(t);
        if self.transitions.len() > MAX_TRANSITIONS {
            let excess = self.transitions.len() - MAX_TRANSITIONS;
            self.transitions.drain(..excess);
        }
    }
}

/// Updates the older failover scripts' files: `red/current-profile` (the active profile's
/// name) and `red/failover-time` (unix time of the last switch).
pub fn write_legacy_files(paths: &Paths, active: &str, switched_at: Option<i64>) -> Result<()> {
    fsutil::ensure_dir(&paths.red_dir())?;
    fsutil::replace_atomically(&paths.current_profile(), active.as_bytes(), 0o644)?;
    if let Some(t) = switched_at {
        fsutil::replace_atomically(&paths.failover_time(), t.to_string().as_bytes(), 0o644)?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests build fixtures with plain writes
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_bounds_history() {
        let d = tempfile::tempdir().unwrap();
        let paths = Paths::new(d.path()).unwrap();
        assert_eq!(State::load(&paths).unwrap(), State::default());
        let mut s = State::default();
        for i in 0..(MAX_TRANSITIONS + 5) {
            s.record_switch(Transition {
                at: i as i64,
                from: Some("1".into()),
                to: "2".into(),
                kind: "failover".into(),
                reason: "test".into(),
            });
        }
        s.journal = Some(Journal {
            from: Some("1".into()),
            to: "2".into(),
            step: "linked".into(),
            started: 7,
            kind: "failover".into(),
            previous_red: None,
        });
        s.save(&paths).unwrap();
        let back = State::load(&paths).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.transitions.len(), MAX_TRANSITIONS);
        assert_eq!(back.switch_count, (MAX_TRANSITIONS + 5) as u64);
    }

    #[test]
    fn corrupt_state_is_named_and_moved_aside() {
        let d = tempfile::tempdir().unwrap();
        let paths = Paths::new(d.path()).unwrap();
        std::fs::create_dir_all(paths.connectd_dir()).unwrap();
        std::fs::write(paths.state(), "{ not json").unwrap();
        let e = State::load(&paths).unwrap_err();
        assert!(e.to_string().contains("connectd/state"), "{e}");
        assert_eq!(State::load_or_reset(&paths), State::default());
        assert!(paths.state().with_extension("corrupt").exists());
    }

    #[test]
    fn legacy_files_are_written() {
        let d = tempfile::tempdir().unwrap();
        let paths = Paths::new(d.path()).unwrap();
        write_legacy_files(&paths, "2", Some(1234)).unwrap();
        assert_eq!(
            std::fs::read_to_string(paths.current_profile()).unwrap(),
            "2"
        );
        assert_eq!(
            std::fs::read_to_string(paths.failover_time()).unwrap(),
            "1234"
        );
    }
}
