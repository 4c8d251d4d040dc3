//! The supervisor's persistent state: `/var/ipfire/connectd/state` (JSON, atomic writes).
//!
//! It holds what must survive a restart or a crash (DESIGN.md section 6): the primary and
//! active profile, the failback backoff, the switch counter, the recent switches, the
//! primary's saved RED_* values (restored exactly on failback) and the journal of a switch
//! in progress (`ipfire::journal`). A journal entry found at start means a switch was
//! interrupted; the supervisor finishes it so `settings`, `secrets` and `ethernet/settings`
//! never disagree.
//!
//! Everything is typed (profile names, journal steps, switch kinds) and written as the
//! same strings earlier versions wrote, so a state file reads both ways across an upgrade
//! or a downgrade (tested below).
//!
//! The files of older failover scripts, `red/current-profile` and `red/failover-time`, are
//! kept up to date here too.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ipfire::ethernet::RedValues;
use crate::ipfire::fsutil;
use crate::ipfire::journal::{Journal, SwitchKind};
use crate::ipfire::paths::Paths;
use crate::ipfire::profile::ProfileName;

/// Most recent switches kept in the state file's history.
pub(crate) const MAX_TRANSITIONS: usize = 50;

/// One completed switch of the files from a profile to another, for the history in the
/// state file and `status` (`"transitions"`). Not to be confused with the core's phase
/// changes (`supervisor::machine::TransitionView`, under `"core"` in `status`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwitchRecord {
    /// Unix time of the switch.
    pub at: i64,
    /// Profile before.
    pub from: Option<ProfileName>,
    /// Profile after.
    pub to: ProfileName,
    /// Why it switched.
    pub kind: SwitchKind,
    /// Why, in words.
    pub reason: String,
}

/// The state file's contents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct State {
    /// Format version.
    pub version: u32,
    /// The primary profile (the one `settings` pointed at when supervision began).
    pub primary: Option<ProfileName>,
    /// The active profile.
    pub active: Option<ProfileName>,
    /// Unix time the active profile became active.
    pub since: Option<i64>,
    /// Unix time of the last switch.
    pub last_switch: Option<i64>,
    /// Completed switches: the one switch counter. While a supervisor runs, its core
    /// counts (a switch is complete when RED came up on the new profile) and every save
    /// stores the core's count here; the core starts from it again. With no supervisor,
    /// the command-line switch counts it (`State::count_switch`).
    pub switch_count: u64,
    /// Current failback delay in seconds (doubles after each rollback).
    pub failback_delay_secs: Option<u64>,
    /// A profile pinned by `connectd failover P`.
    pub pinned: Option<ProfileName>,
    /// Automatic failover/failback.
    pub auto: bool,
    /// Recent switches, newest last.
    pub transitions: Vec<SwitchRecord>,
    /// The primary's RED_* values of `ethernet/settings`, restored exactly on failback.
    pub primary_red: Option<RedValues>,
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
pub(crate) fn unix(t: SystemTime) -> i64 {
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
    pub(crate) fn load_or_reset(paths: &Paths) -> State {
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
    pub(crate) fn save(&self, paths: &Paths) -> Result<()> {
        fsutil::ensure_dir(&paths.connectd_dir())?;
        let mut data = serde_json::to_vec_pretty(self)
            .map_err(|e| Error::Failed(format!("cannot serialize state: {e}")))?;
        data.push(b'\n');
        fsutil::replace_atomically(&paths.state(), &data, 0o644)
    }

    /// Records a switch of the files (the active profile, when, the history, bounded).
    /// The switch counter is not touched: see [`State::switch_count`].
    pub(crate) fn record_switch(&mut self, t: SwitchRecord) {
        self.active = Some(t.to.clone());
        self.since = Some(t.at);
        self.last_switch = Some(t.at);
        self.transitions.push(t);
        if self.transitions.len() > MAX_TRANSITIONS {
            let excess = self.transitions.len() - MAX_TRANSITIONS;
            self.transitions.drain(..excess);
        }
    }

    /// Counts a completed switch made with no supervisor running (the supervisor's core
    /// counts its own and stores the count with every save).
    pub(crate) fn count_switch(&mut self) {
        self.switch_count += 1;
    }
}

/// Updates the older failover scripts' files: `red/current-profile` (the active profile's
/// name) and `red/failover-time` (unix time of the last switch).
pub(crate) fn write_legacy_files(
    paths: &Paths,
    active: &str,
    switched_at: Option<i64>,
) -> Result<()> {
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
    use crate::ipfire::journal::Step;

    fn name(n: &str) -> ProfileName {
        ProfileName::new(n).unwrap()
    }

    #[test]
    fn round_trips_and_bounds_history() {
        let d = tempfile::tempdir().unwrap();
        let paths = Paths::new(d.path()).unwrap();
        assert_eq!(State::load(&paths).unwrap(), State::default());
        let mut s = State::default();
        for i in 0..(MAX_TRANSITIONS + 5) {
            s.record_switch(SwitchRecord {
                at: i as i64,
                from: Some(name("1")),
                to: name("2"),
                kind: SwitchKind::Failover,
                reason: "test".into(),
            });
            s.count_switch();
        }
        s.journal = Some(Journal {
            from: Some(name("1")),
            to: name("2"),
            step: Some(Step::Linked),
            started: 7,
            kind: SwitchKind::Failover,
            previous_red: None,
        });
        s.save(&paths).unwrap();
        let back = State::load(&paths).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.transitions.len(), MAX_TRANSITIONS);
        assert_eq!(back.switch_count, (MAX_TRANSITIONS + 5) as u64);
        assert_eq!(back.last_switch, Some((MAX_TRANSITIONS + 4) as i64));
    }

    /// A state file as the previous version (string-typed names, steps and kinds) wrote it.
    const PREVIOUS_FORMAT: &str = r#"{
  "version": 1,
  "primary": "1",
  "active": "lte",
  "since": 1700000100,
  "last_switch": 1700000100,
  "switch_count": 3,
  "failback_delay_secs": 600,
  "pinned": "lte",
  "auto": false,
  "transitions": [
    {"at": 1700000000, "from": null, "to": "2", "kind": "chain-pass", "reason": "whole chain failed"},
    {"at": 1700000100, "from": "2", "to": "lte", "kind": "manual", "reason": "manual requested on the command line"}
  ],
  "primary_red": {"RED_TYPE": "PPPOE", "RED_DEV": "red0", "RED_ADDRESS": null},
  "journal": {"from": "lte", "to": "1", "step": "planned", "started": 1700000200, "kind": "failback", "previous_red": null}
}
"#;

    /// The previous version's types, to check that what we write still reads there.
    #[derive(Deserialize)]
    #[allow(dead_code)] // only parsed
    struct PreviousState {
        primary: Option<String>,
        active: Option<String>,
        switch_count: u64,
        pinned: Option<String>,
        transitions: Vec<PreviousTransition>,
        journal: Option<PreviousJournal>,
    }
    #[derive(Deserialize)]
    #[allow(dead_code)] // only parsed
    struct PreviousTransition {
        at: i64,
        from: Option<String>,
        to: String,
        kind: String,
        reason: String,
    }
    #[derive(Deserialize)]
    #[allow(dead_code)] // only parsed
    struct PreviousJournal {
        from: Option<String>,
        to: String,
        step: String,
        started: i64,
        kind: String,
    }

    #[test]
    fn a_state_file_of_the_previous_version_loads_and_ours_reads_there() {
        let d = tempfile::tempdir().unwrap();
        let paths = Paths::new(d.path()).unwrap();
        std::fs::create_dir_all(paths.connectd_dir()).unwrap();
        std::fs::write(paths.state(), PREVIOUS_FORMAT).unwrap();
        let s = State::load(&paths).unwrap();
        assert_eq!(s.primary, Some(name("1")));
        assert_eq!(s.active, Some(name("lte")));
        assert_eq!(s.pinned, Some(name("lte")));
        assert_eq!(s.switch_count, 3);
        assert!(!s.auto);
        assert_eq!(s.transitions[0].kind, SwitchKind::ChainPass);
        assert_eq!(s.transitions[0].from, None);
        assert_eq!(s.transitions[1].kind, SwitchKind::Manual);
        let j = s.journal.clone().unwrap();
        assert_eq!((j.step, j.kind), (None, SwitchKind::Failback));
        assert!(j.nothing_changed());
        assert_eq!(
            s.primary_red.as_ref().unwrap().get("RED_TYPE"),
            Some("PPPOE")
        );

        // Written back, it is the same document for the previous version's reader.
        s.save(&paths).unwrap();
        let ours: serde_json::Value =
            serde_json::from_slice(&std::fs::read(paths.state()).unwrap()).unwrap();
        let before: serde_json::Value = serde_json::from_str(PREVIOUS_FORMAT).unwrap();
        assert_eq!(ours, before);
        let mut s2 = s.clone();
        s2.journal.as_mut().unwrap().step = Some(Step::SecretsWritten);
        s2.save(&paths).unwrap();
        let old: PreviousState =
            serde_json::from_slice(&std::fs::read(paths.state()).unwrap()).unwrap();
        assert_eq!(old.journal.unwrap().step, "secrets_written");
        assert_eq!(old.transitions[0].kind, "chain-pass");
        assert_eq!(old.active.as_deref(), Some("lte"));
    }

    #[test]
    fn a_bad_name_in_the_state_file_is_a_parse_error_naming_it() {
        let d = tempfile::tempdir().unwrap();
        let paths = Paths::new(d.path()).unwrap();
        std::fs::create_dir_all(paths.connectd_dir()).unwrap();
        std::fs::write(paths.state(), r#"{"active": "../etc"}"#).unwrap();
        let e = State::load(&paths).unwrap_err().to_string();
        assert!(e.contains("connectd/state") && e.contains("../etc"), "{e}");
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
