//! The effects executor: carries out the core's [`Action`]s through the [`Seams`] (the
//! network script and tools through the command runner, probes, pre-tests, hooks, the
//! files) and answers the synchronous ones (`Activate`, `Restart`) with the event the
//! core waits for (DESIGN.md 4).
//!
//! A switch (IPFire's network script) is done synchronously and is bounded by deadlines:
//! the core's contract is that every `Activate` and `Restart` is answered before any other
//! event, and a switch in progress is never interleaved with a second one. A pre-test
//! (which waits seconds for a PADO or a DHCP offer) goes to the pre-test worker instead
//! and is answered when it finished ([`Effects::poll_pretests`]): the health rounds go on
//! meanwhile.

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::os::unix::net::UnixStream;
use std::sync::Arc;

use crate::error::Result;
use crate::ipfire::ethernet::RedValues;
use crate::ipfire::fsutil;
use crate::ipfire::history::History;
use crate::ipfire::journal::Step;
use crate::ipfire::paths::Paths;
use crate::ipfire::profile::{Kind, Profile, ProfileName, Reconnection};
use crate::ipfire::state::{self, State};
use crate::supervisor::control::{self, Reply};
use crate::supervisor::hooks::{HookCall, HookRunner};
use crate::sys::clock::Clock;
use crate::sys::exec::Runner;
use crate::uplink::health::{self, HealthStatus, Monitor, Passive, Prober, Target};
use crate::uplink::journaled;
use crate::uplink::pretest::PretestWorker;
use crate::uplink::proof::{ProofProbes, ProofSession};
use crate::uplink::switch::{self, SwitchOptions};
use crate::uplink::traffic::Traffic;

use super::machine::{Action, Core, Event, Persisted, SwitchKind};
use super::observe::Observer;
use super::setup::Setup;
use super::status::{Status, TrafficStatus};

/// The seams the supervisor acts through, built by the binary (real ones) or by a test
/// (fakes).
pub(crate) struct Seams {
    /// Runs IPFire's network script and tools, and the hooks (on their own thread).
    pub runner: Arc<dyn Runner + Send + Sync>,
    /// Time.
    pub clock: Box<dyn Clock>,
    /// Health probes.
    pub prober: Box<dyn Prober>,
    /// Pre-tests of resting profiles, run off the loop (one at a time).
    pub pretests: PretestWorker,
    /// Carrier, pppd, red/active.
    pub passive: Passive,
    /// Builds the failback proof of a profile on a device, with the deadline to bring it
    /// up (`None`: it cannot be proven); see `uplink/proof.rs`.
    pub proof: ProofMaker,
    /// Timeouts of a switch.
    pub switch: SwitchOptions,
}

/// Starts the proof session of a profile on a device (bring-up deadline, probes);
/// `None`: its kind cannot be proven.
pub(crate) type ProofMaker = Box<
    dyn FnMut(
        &Profile,
        &str,
        std::time::Duration,
        ProofProbes,
    ) -> Option<std::io::Result<ProofSession>>,
>;

/// Health probing of the active uplink.
pub(crate) struct Monitoring {
    pub(crate) profile: ProfileName,
    pub(crate) monitor: Monitor,
    pub(crate) targets: Vec<Target>,
    /// The last verdict class sent to the core (`Some(true)` healthy).
    pub(crate) sent: Option<bool>,
    /// `red/iface`, read when RED came up (not on every sample: it changes only then).
    pub(crate) iface: Option<String>,
    /// Probes are sent: not on a line that dials on demand (RECONNECTION=dialondemand),
    /// whose pppd would dial for every probe; its drops are seen passively (pppd, ip-down).
    pub(crate) probes: bool,
}

/// What the executor works with and keeps between actions.
pub(crate) struct Effects<'a> {
    pub(crate) paths: &'a Paths,
    pub(crate) seams: Seams,
    pub(crate) setup: Setup,
    pub(crate) state: State,
    pub(crate) obs: Observer,
    pub(crate) hooks: Option<HookRunner>,
    pub(crate) monitoring: Option<Monitoring>,
    pub(crate) last_health: Option<HealthStatus>,
    /// The RED address in use when the current switch or redial began: flows NATed to it
    /// are dead once RED is up with another one (DESIGN.md 2, step 7).
    old_red_ip: Option<Ipv4Addr>,
    /// The control client waiting for the core's `Reply`.
    pub(crate) pending_client: Option<UnixStream>,
    /// RED's throughput, sampled once a second.
    pub(crate) traffic: Traffic,
    /// The last 24 hours, for the web UI (`connectd history`).
    pub(crate) history: History,
    /// `Exit(code)` was executed.
    pub(crate) exit: Option<u8>,
    /// The failback proof session running beside RED, and its profile (`prove.rs`).
    pub(super) proof: Option<(ProfileName, ProofSession)>,
}

fn read_ip(path: &std::path::Path) -> Option<Ipv4Addr> {
    fsutil::read_word(path).and_then(|w| w.parse().ok())
}

impl<'a> Effects<'a> {
    pub(crate) fn new(
        paths: &'a Paths,
        seams: Seams,
        setup: Setup,
        state: State,
        obs: Observer,
    ) -> Effects<'a> {
        Effects {
            paths,
            seams,
            setup,
            state,
            obs,
            hooks: None,
            monitoring: None,
            last_health: None,
            old_red_ip: None,
            pending_client: None,
            traffic: Traffic::new(),
            history: History::load(paths),
            exit: None,
            proof: None,
        }
    }

    /// What the state file kept from a previous run, for [`Core::restore`].
    pub(crate) fn persisted(&self, active: ProfileName) -> Persisted {
        Persisted {
            active,
            failback_delay_secs: self
                .state
                .failback_delay_secs
                .unwrap_or(self.setup.policy.failback_delay.as_secs()),
            switch_count: self.state.switch_count,
            pinned: self.state.pinned.is_some(),
            auto: self.state.auto,
        }
    }

    /// A switch interrupted by a crash: before the old RED was stopped nothing changed
    /// (roll back: the files are still the old profile's); after it, finish the file part
    /// for the journaled target, so `settings`, `secrets` and `ethernet/settings` agree.
    pub(crate) fn recover_journal(&mut self) -> Result<()> {
        let Some(j) = self.state.journal.clone() else {
            return Ok(());
        };
        let to = j.to.clone();
        let from = j.from.as_ref().map(ProfileName::as_str);
        if j.nothing_changed() {
            log::warn!(
                "a switch from {} to {} was interrupted before anything changed: staying on {}",
                from.unwrap_or("?"),
                j.to,
                from.unwrap_or("the current profile")
            );
        } else {
            log::warn!(
                "finishing the switch from {} to {} interrupted after step {}",
                from.unwrap_or("?"),
                j.to,
                j.step.map_or("planned", Step::name)
            );
            if j.from == self.state.primary && self.state.primary_red.is_none() {
                self.state.primary_red = j.previous_red.clone();
            }
            let restore = self.restore_for(&to);
            switch::apply_files(self.paths, &self.setup.policy, &to, restore.as_ref())?;
            self.state.active = Some(j.to);
        }
        self.state.journal = None;
        self.state.save(self.paths)?;
        Ok(())
    }

    fn restore_for(&self, to: &ProfileName) -> Option<RedValues> {
        (self.state.primary.as_ref() == Some(to))
            .then(|| self.state.primary_red.clone())
            .flatten()
    }

    pub(super) fn profile(&self, name: &ProfileName) -> Option<&Profile> {
        self.setup.profile(name)
    }

    /// The kind of a profile of the chain.
    pub(crate) fn kind_of(&self, name: &ProfileName) -> Option<Kind> {
        self.profile(name).map(|p| p.kind)
    }

    /// The profile the files describe (the switch keeps `state.active` true to them).
    pub(crate) fn files_active(&self) -> Option<ProfileName> {
        self.state.active.clone()
    }

    /// Feeds `event` to the core and queues its actions.
    pub(crate) fn step(&self, core: &mut Core, event: Event, queue: &mut VecDeque<Action>) {
        let now = self.seams.clock.now();
        queue.extend(core.step(event, now));
    }

    /// Executes queued actions in order, feeding the answers of synchronous ones back in.
    pub(crate) fn execute(&mut self, core: &mut Core, queue: &mut VecDeque<Action>) {
        while let Some(action) = queue.pop_front() {
            if self.exit.is_some() {
                break;
            }
            // Only a switch or a restart changes RED under the core's eyes; the answer of
            // any other synchronous action (a pre-test round, a counter write) must leave
            // the observer's level alone: taking red/active's level then would swallow a
            // RedDown that happened meanwhile (the line dropped during a 3 s pre-test and
            // the supervisor, no longer probing a RED it thought down, never noticed).
            let changes_red = matches!(action, Action::Activate { .. } | Action::Restart { .. });
            if let Some(ev) = self.execute_one(core, action) {
                self.step(core, ev, queue);
                // Report the level of red/active after a switch or restart (contract).
                if changes_red {
                    let red = self.paths.red_active().exists();
                    if let Some(ev) = self.obs.after_answer(red) {
                        self.step(core, ev, queue);
                    }
                }
            }
        }
    }

    fn execute_one(&mut self, core: &Core, action: Action) -> Option<Event> {
        match action {
            Action::Activate { to, reason, kind } => Some(self.activate(core, to, &reason, kind)),
            Action::Restart { profile, reason } => {
                log::info!("restarting RED ({profile}): {reason}");
                self.old_red_ip = read_ip(&self.paths.red_local_ip()).or(self.old_red_ip);
                let res = self.network("stop").and_then(|()| {
                    if self.paths.red_stopped().exists() {
                        // Stopped deliberately meanwhile: not ours to start again.
                        return Ok(());
                    }
                    self.network("start")
                });
                self.obs.dial_done();
                Some(Event::RestartDone {
                    ok: res.is_ok(),
                    error: res.err().map(|e| e.to_string()),
                })
            }
            Action::StopRed { reason } => {
                let disconnect = reason == super::machine::DISCONNECT_REASON;
                match switch::foreign_start_of_red(self.paths).filter(|_| disconnect) {
                    Some(who) => log::info!("not stopping RED: the Disconnect is part of {who}"),
                    None => {
                        log::info!("stopping RED: {reason}");
                        if let Err(e) = self.network("stop") {
                            log::error!("{e}");
                        }
                    }
                }
                if disconnect {
                    self.end_episode_files();
                }
                None
            }
            Action::Monitor(Some(profile)) => {
                let now = self.seams.clock.now();
                let probes = self
                    .profile(&profile)
                    .is_none_or(|p| p.reconnection != Reconnection::DialOnDemand);
                // A round ends early when this profile's device loses its carrier.
                let dev = Some(self.setup.device(&profile)).filter(|d| !d.is_empty());
                self.seams
                    .prober
                    .watch(&dev.into_iter().collect::<Vec<_>>());
                self.monitoring = Some(Monitoring {
                    profile,
                    monitor: Monitor::new(&self.setup.policy, now),
                    targets: if self.obs.red_active() {
                        health::build_targets(&self.setup.policy, self.paths)
                    } else {
                        Vec::new()
                    },
                    sent: None,
                    iface: health::red_iface(self.paths),
                    probes,
                });
                None
            }
            Action::Monitor(None) => {
                self.monitoring = None;
                self.seams.prober.watch(&[]);
                None
            }
            Action::Pretest {
                profile,
                attempts,
                background,
            } => self.pretest(profile, attempts, !background),
            Action::Hook {
                event,
                from,
                to,
                reason,
            } => {
                if let Some(h) = &self.hooks {
                    h.send(HookCall {
                        event,
                        from: from.map(|p| p.to_string()).unwrap_or_default(),
                        to: to.map(|p| p.to_string()).unwrap_or_default(),
                        reason,
                    });
                }
                None
            }
            Action::SetAttempts(n) => {
                let path = self.paths.keepconnected();
                if let Some(ev) = self.obs.before_counter_write(path.exists()) {
                    return Some(ev);
                }
                if let Err(e) = fsutil::ensure_dir(&self.paths.red_dir()).and_then(|()| {
                    fsutil::replace_atomically(&path, n.to_string().as_bytes(), 0o644)
                }) {
                    log::error!("{e}");
                }
                None
            }
            Action::SwitchCompleted { from, to } => {
                self.switch_completed(&from, &to);
                None
            }
            Action::SaveState => {
                self.save_state(core);
                None
            }
            Action::Log { level, msg } => {
                log::log!(level, "{msg}");
                None
            }
            Action::Reply { ok, msg } => {
                if let Some(mut s) = self.pending_client.take() {
                    let reply = if ok {
                        Reply::ok(msg)
                    } else {
                        Reply {
                            ok: false,
                            message: Some(msg),
                            code: Some(1),
                            status: None,
                        }
                    };
                    control::write_reply(&mut s, &reply);
                }
                None
            }
            Action::ProofStart { profile } => self.start_proof(profile),
            Action::ProofStop { profile } => {
                self.stop_proof(&profile);
                None
            }
            Action::Exit(code) => {
                // Never leave a proof session behind (the core stops it first).
                if let Some((p, _)) = &self.proof {
                    let p = p.clone();
                    self.stop_proof(&p);
                }
                self.exit = Some(code);
                None
            }
        }
    }

    fn network(&self, verb: &str) -> Result<()> {
        journaled::network(
            self.paths,
            self.seams.runner.as_ref(),
            &self.seams.switch,
            verb,
        )
    }

    /// Executes a switch with its journal; returns the core's `ActivateDone`, or
    /// `KeepconnectedRemoved` when the user disconnected between the decision and now.
    fn activate(&mut self, core: &Core, to: ProfileName, reason: &str, kind: SwitchKind) -> Event {
        let wanted = self.paths.keepconnected().exists() && !self.paths.red_stopped().exists();
        if let Some(ev) = self.obs.before_switch(wanted) {
            return ev;
        }
        log::warn!("switching to profile {to} ({kind}): {reason}");
        let wall = state::unix(self.seams.clock.wall());
        // The last address RED had (also after a drop: red/local-ipaddress stays).
        self.old_red_ip = read_ip(&self.paths.red_local_ip()).or(self.old_red_ip);
        let result = journaled::journaled_activate(
            self.paths,
            self.seams.runner.as_ref(),
            &self.setup.policy,
            &mut self.state,
            &to,
            kind,
            reason,
            &self.seams.switch,
            wall,
        );
        self.save_state(core);
        self.obs.dial_done();
        match result {
            Ok(_report) => {
                self.monitoring = None;
                Event::ActivateDone {
                    profile: to,
                    ok: true,
                    error: None,
                }
            }
            Err(e) => Event::ActivateDone {
                profile: to,
                ok: false,
                error: Some(e.to_string()),
            },
        }
    }

    fn switch_completed(&mut self, from: &ProfileName, to: &ProfileName) {
        self.flush_old_address();
        let at = self.state.last_switch;
        if let Err(e) = state::write_legacy_files(self.paths, to.as_str(), at) {
            log::warn!("{e}");
        }
        log::info!("now online on profile {to} (was {from})");
    }

    /// Step 7: once RED is up again with a new address, drop the conntrack entries still
    /// bound to the address in use before the switch or redial.
    pub(crate) fn flush_old_address(&mut self) {
        let Some(old) = self.old_red_ip else { return };
        let now = read_ip(&self.paths.red_local_ip());
        if now.is_none() || now == Some(old) {
            return; // not up yet, or the same address: nothing is stale
        }
        self.old_red_ip = None;
        match switch::flush_conntrack(self.seams.runner.as_ref(), old) {
            Ok(true) => {}
            Ok(false) => {
                log::debug!("conntrack not installed: entries of {old} expire by themselves")
            }
            Err(e) => log::warn!("conntrack flush for {old}: {e}"),
        }
    }

    /// Who carries the traffic now (RED up: the active profile), into the history; the
    /// history file is written when that changed, else at most once a minute.
    pub(crate) fn record_history(&mut self) {
        let wall = state::unix(self.seams.clock.wall());
        let carrying = self
            .obs
            .red_active()
            .then(|| self.state.active.clone())
            .flatten();
        self.history
            .carrying(wall, carrying.as_ref().map(ProfileName::as_str));
        if let Err(e) = self.history.save_if_due(self.paths, wall) {
            log::warn!("{e}");
        }
    }

    /// Writes the history file now (at the exit).
    pub(crate) fn save_history(&mut self) {
        let wall = state::unix(self.seams.clock.wall());
        if let Err(e) = self.history.save(self.paths, wall) {
            log::warn!("{e}");
        }
    }

    /// Writes the state file with the core's persisted part. `state.active` is the files'
    /// truth, set by the switch itself, not the core's view.
    /// A Disconnect ends supervision and the failover episode (failover on): the files
    /// go back to the administrator's setup, so the next Connect, or pppsetup's Select
    /// that follows it, never runs on the backup's `ethernet/settings` (issue 12 item 7).
    /// `settings` still linked to the backup we left it at: the primary's files (its saved
    /// RED_* values). Linked by someone else since (connscheduler's `profile N`): that
    /// profile's files, on the primary's saved RED_* when it is of the primary's kind.
    fn end_episode_files(&mut self) {
        if !self.setup.policy.enabled {
            return;
        }
        let (Some(primary), Some(ours)) = (self.state.primary.clone(), self.files_active()) else {
            return;
        };
        if ours == primary {
            return;
        }
        // A backup the administrator chose with `failover P` (the web UI's "Fail over to
        // P", pinned until `failback` or `auto on`) is their choice, not ours to undo: its
        // files stay, so the next Connect brings P up again (tests/wui.rs).
        if self.state.pinned.as_ref() == Some(&ours) {
            log::info!("Disconnect on profile {ours}, chosen by the administrator: its files stay");
            return;
        }
        let linked = switch::active_profile(self.paths).ok().flatten();
        let to = match &linked {
            Some(l) if *l != ours => l.clone(),
            _ => primary.clone(),
        };
        let kind = |p: &ProfileName| Profile::load(self.paths, p).ok().map(|p| p.kind);
        let same_kind = kind(&to).is_some() && kind(&to) == kind(&primary);
        let restore = self
            .state
            .primary_red
            .clone()
            .filter(|_| to == primary || same_kind);
        match switch::apply_files(self.paths, &self.setup.policy, &to, restore.as_ref()) {
            Ok(_) => {
                log::info!("Disconnect on profile {ours}: the files are profile {to}'s again");
                // A profile linked by someone else stays theirs: the next start finds it
                // selected (and makes it the primary).
                if to == primary {
                    self.state.active = Some(to.clone());
                    self.state.primary_red = None;
                }
                self.state.pinned = None;
                if let Err(e) = self.state.save(self.paths) {
                    log::error!("{e}");
                }
            }
            Err(e) => log::error!("cannot give the files back to profile {to}: {e}"),
        }
    }

    pub(crate) fn save_state(&mut self, core: &Core) {
        let p = core.persisted();
        self.state.failback_delay_secs = Some(p.failback_delay_secs);
        self.state.pinned = p.pinned.then(|| p.active.clone());
        self.state.switch_count = p.switch_count;
        self.state.auto = p.auto;
        if let Err(e) = self.state.save(self.paths) {
            log::error!("{e}");
        }
    }

    /// The status (DESIGN.md 7): the files, the core's view, health and traffic.
    pub(crate) fn status(&self, core: &Core) -> Status {
        let snap = core.snapshot(self.seams.clock.now());
        super::status::supervised(
            self.paths,
            &self.state,
            snap,
            self.last_health.clone(),
            TrafficStatus::of(&self.traffic),
        )
    }
}
