//! The profile switch with its journal in the state file (DESIGN.md 6), and the
//! network-script call that keeps `red/keepconnected`: what the supervisor's effects and,
//! with no supervisor running, the command line both run. Built on [`switch`], the steps
//! of one switch; nothing here decides *when* to switch.
//!
//! IPFire's `network stop red` removes `red/keepconnected` for the PPP types
//! (`src/initscripts/networking/red:492-569`), which would read as the user's
//! Disconnect: [`KeepconnectedStop`] undoes exactly the removal our own stop caused, in
//! both places.

use crate::error::{Error, Result};
use crate::ipfire::ethernet::RedValues;
use crate::ipfire::fsutil;
use crate::ipfire::journal::{Journal, SwitchKind};
use crate::ipfire::paths::Paths;
use crate::ipfire::policy::Policy;
use crate::ipfire::profile::ProfileName;
use crate::ipfire::state::{State, SwitchRecord};
use crate::sys::exec::Runner;
use crate::uplink::switch::{self, SwitchOptions};

/// `red/keepconnected` across our own `network stop red`: remembered just before the stop
/// (for a PPP RED only, where IPFire's script removes it), written back right after it
/// when the stop removed it. A removal at any other moment, or under an ethernet type,
/// is the user's Disconnect and stays.
#[derive(Debug, Default)]
pub struct KeepconnectedStop(Option<String>);

impl KeepconnectedStop {
    /// Remembers the counter before a stop of the RED described by `red`.
    pub fn before(paths: &Paths, red: Option<&RedValues>) -> KeepconnectedStop {
        let ppp = red.is_some_and(|r| r.get("RED_TYPE") == Some("PPPOE"));
        let kc = paths.keepconnected();
        KeepconnectedStop(
            (ppp && kc.exists()).then(|| fsutil::read_word(&kc).unwrap_or_else(|| "0".into())),
        )
    }

    /// Writes the counter back if the stop removed it.
    pub fn after(self, paths: &Paths) {
        let Some(v) = self.0 else { return };
        let kc = paths.keepconnected();
        if !kc.exists() {
            if let Err(e) = fsutil::replace_atomically(&kc, v.as_bytes(), 0o644) {
                log::warn!("cannot restore {}: {e}", kc.display());
            }
        }
    }
}

/// A switch with its journal in the state file (DESIGN.md 6), used by the supervisor and,
/// with no supervisor running, by the CLI. `state` is updated and saved: the journal while
/// the switch runs, then the transition, the primary's saved RED_* values (when leaving the
/// primary), and no journal. A switch that fails after the old RED was stopped still gets
/// its files completed, so `settings`, `secrets` and `ethernet/settings` always agree.
#[allow(clippy::too_many_arguments)]
pub(crate) fn journaled_activate(
    paths: &Paths,
    runner: &(dyn Runner + Sync),
    policy: &Policy,
    state: &mut State,
    to: &ProfileName,
    kind: SwitchKind,
    reason: &str,
    opts: &SwitchOptions,
    wall: i64,
) -> Result<switch::SwitchReport> {
    let from = state.active.clone();
    state.journal = Some(Journal {
        from: from.clone(),
        to: to.clone(),
        step: None,
        started: wall,
        kind,
        previous_red: None,
    });
    let restore = (state.primary.as_ref() == Some(to))
        .then(|| state.primary_red.clone())
        .flatten();
    let mut kc = KeepconnectedStop::default();
    let result = {
        let mut journal = |step: switch::Step, report: &switch::SwitchReport| -> Result<()> {
            // Our stop runs right after `Intent` is journaled and ends at `Stopped`.
            match step {
                switch::Step::Intent => {
                    kc = KeepconnectedStop::before(paths, Some(&report.previous_red));
                }
                switch::Step::Stopped => std::mem::take(&mut kc).after(paths),
                switch::Step::EthernetWritten
                | switch::Step::Linked
                | switch::Step::SecretsWritten
                | switch::Step::Started => {}
            }
            if let Some(j) = &mut state.journal {
                j.step = Some(step);
                if j.previous_red.is_none() {
                    j.previous_red = Some(report.previous_red.clone());
                }
            }
            state.save(paths)
        };
        switch::activate(
            paths,
            runner,
            policy,
            to,
            restore.as_ref(),
            opts,
            &mut journal,
        )
    };
    match result {
        Ok(report) => {
            let from_name = report.from.clone().or(from);
            if from_name.is_some() && from_name == state.primary && from_name.as_ref() != Some(to) {
                state.primary_red = Some(report.previous_red.clone());
            }
            state.journal = None;
            state.record_switch(SwitchRecord {
                at: wall,
                from: from_name,
                to: to.clone(),
                kind,
                reason: reason.to_string(),
            });
            state.save(paths)?;
            Ok(report)
        }
        Err(e) => {
            log::error!("switch to {to} failed: {e}");
            if let Some(j) = state.journal.take() {
                if !j.nothing_changed() {
                    if j.from == state.primary && state.primary_red.is_none() {
                        state.primary_red = j.previous_red.clone();
                    }
                    match switch::apply_files(paths, policy, to, restore.as_ref()) {
                        Ok(_) => state.active = Some(to.clone()),
                        Err(e2) => log::error!("cannot complete the files of {to}: {e2}"),
                    }
                }
            }
            let _ = state.save(paths);
            Err(e)
        }
    }
}

/// `network stop|start red` (the same call a switch makes), keeping `red/keepconnected`
/// ([`KeepconnectedStop`]). After `stop`, waits (bounded) until pppd and RED's dhcpcd are
/// gone. A script killed at its deadline is an error here: a restart that did not finish
/// is a failed restart.
pub fn network(paths: &Paths, runner: &dyn Runner, opts: &SwitchOptions, verb: &str) -> Result<()> {
    let red = RedValues::read(paths).ok();
    let kc = KeepconnectedStop::before(paths, red.as_ref());
    let out = switch::network(runner, paths, verb, opts.network_timeout);
    if verb == "stop" {
        switch::wait_gone(paths, opts, red.as_ref().and_then(|r| r.get("RED_DEV")));
        kc.after(paths);
    }
    if out?.timed_out {
        return Err(Error::Command {
            argv0: paths.network_script().display().to_string(),
            msg: format!("{verb} red timed out"),
        });
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests build fixtures with plain writes
mod tests {
    use super::*;

    fn red(kind: &str) -> RedValues {
        let mut m = std::collections::BTreeMap::new();
        m.insert("RED_TYPE".to_string(), Some(kind.to_string()));
        RedValues(m)
    }

    #[test]
    fn our_own_stop_keeps_keepconnected_for_ppp_only() {
        let d = tempfile::tempdir().unwrap();
        let paths = Paths::new(d.path()).unwrap();
        fsutil::ensure_dir(&paths.red_dir()).unwrap();
        let kc = paths.keepconnected();

        std::fs::write(&kc, "3").unwrap();
        let guard = KeepconnectedStop::before(&paths, Some(&red("PPPOE")));
        std::fs::remove_file(&kc).unwrap(); // what IPFire's `network stop red` does
        guard.after(&paths);
        assert_eq!(std::fs::read_to_string(&kc).unwrap(), "3");

        // An ethernet type: a removal is the user's, it stays.
        let guard = KeepconnectedStop::before(&paths, Some(&red("DHCP")));
        std::fs::remove_file(&kc).unwrap();
        guard.after(&paths);
        assert!(!kc.exists());

        // Absent before the stop (the user disconnected earlier): not recreated.
        let guard = KeepconnectedStop::before(&paths, Some(&red("PPPOE")));
        guard.after(&paths);
        assert!(!kc.exists());
    }
}
