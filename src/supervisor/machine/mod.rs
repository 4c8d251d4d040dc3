//! The pure decision core of the supervisor (DESIGN.md sections 4 and 6).
//!
//! `Core::step(event, now) -> Vec<Action>` is the whole failover/failback policy as a
//! transition function: no I/O, no clock, no files. The imperative shell (the sibling
//! modules `runloop`, `observe` and `effects`) turns the world into [`Event`]s, feeds them
//! in with the current `Instant`, and executes the returned [`Action`]s in order. It sends
//! [`Event::Tick`] when [`Core::next_deadline`] is reached (an early or extra `Tick` is
//! harmless).
//!
//! # Contract with the shell (the run loop and the effects)
//!
//! * Feed `Start` once, first (after an optional [`Core::restore`]). Events before `Start`
//!   are ignored (commands are refused), except `Terminate`/`KeepconnectedRemoved`.
//! * Every [`Action::Activate`] is answered by exactly one [`Event::ActivateDone`] for that
//!   profile, every [`Action::Restart`] by one [`Event::RestartDone`], every
//!   [`Action::Pretest`] by one [`Event::PretestDone`] for that profile; Activate and
//!   Restart before any other event the shell observed afterwards. Pre-tests run off the
//!   loop (issue 13): their answer comes later, with the time the test finished, and any
//!   event may come first; one test of a profile already under way may answer several
//!   `Pretest`s of it. A `KeepconnectedRemoved` may stand in for an answer (the shell
//!   found `red/keepconnected` gone when it was about to switch or to write the counter: the
//!   user disconnected, and the core stops and exits). While an `Activate`/`Restart` is
//!   unanswered the core never issues another one. `ActivateDone { ok: false }` means the files could not be switched and
//!   still (or again) describe the previous profile; RED may be down.
//! * `Activate` is DESIGN.md 2 steps 1..6: `network stop red`, switch the files, `network
//!   start red`. `Restart` is `network stop red` + `network start red` of the same profile.
//!   `StopRed` is `network stop red` only.
//! * `RedUp`/`RedDown` are levels of `red/active`, `Healthy`/`Unhealthy` the health
//!   engine's verdicts for the profile named in the last `Monitor(Some(..))`; repeating
//!   them is harmless. After an `ActivateDone`/`RestartDone` report the current level of
//!   `red/active` (send `RedUp` if it exists). The health engine should start a fresh
//!   streak on each `Monitor(Some(..))`. `NoPppd` is a level too (no pppd while waiting on
//!   a pppd type): the core ignores it within [`DIAL_GRACE`] of a dial.
//! * `network stop red` removes `red/keepconnected` for PPP types: the shell rewrites the
//!   counter right after its own stops and reports [`Event::KeepconnectedRemoved`] only
//!   for removals it did not cause (the user pressed Disconnect). `SetAttempts(n)` writes
//!   the counter (creating the file), unless the file was there and is gone (then the shell
//!   answers `KeepconnectedRemoved`).
//! * Every `Command` gets exactly one [`Action::Reply`] (the control socket's answer).
//!   `Command::Reconnect` (pppd's ip-down, or the user) redials when online and is
//!   ignored while a (re)connection is already under way. With failover off the core has
//!   exited once online, so `connectd reconnect` finds no supervisor: the shell does what
//!   IPFire's `connectd reconnect` does (wait for pppd to exit, `network restart red`,
//!   whose `connectd start` brings up a fresh core).
//! * Names are validated by the shell, but the core never panics on an unknown one:
//!   `failover P` with P outside the config or P already active is refused or a no-op.
//!   A `Start.active` outside the config is supervised; its failure walks from the top.
//! * `Exit(code)` is always the last action of a step; afterwards the core ignores all
//!   events (a `Command` still gets its `Reply { ok: false }`) and never emits
//!   `Activate`, `Restart` or `StopRed` again.
//! * `SaveState` is emitted when anything in [`Persisted`] or the phase changed; the
//!   shell writes [`Core::persisted`] and [`Core::snapshot`] to the state file.
//!
//! # Failover off (`FAILOVER_ENABLED=off`): IPFire's connectd, decision for decision
//!
//! ```text
//!  Start (also RECONNECTION=dialondemand: no special case, system/connectd:45-75)
//!    │ red up: SetAttempts(0) ───────────────────────────────────────> Exit(0)
//!    v
//!  Waiting(P) ──RedUp: SetAttempts(0) "System is online. Exiting."──> Exit(0)
//!    │ 160 × 5 s without red/active, or LinkLost ("no pppd running")
//!    │ StopRed; attempts += 1 (SetAttempts)
//!    ├── attempts < MAXRETRIES ──────────> Holdoff ──HOLDOFF──> Restart ──> Waiting(P)
//!    └── attempts >= MAXRETRIES: SetAttempts(0)
//!          ├── P has a BACKUPPROFILE B ──> Holdoff ──HOLDOFF──> Activate(B, Legacy) ──> Waiting(B)
//!          └── none: "No backup profile given. Exiting." ─────────────────────────> Exit(0)
//! ```
//! The wait is IPFire's `MAX=160` rounds of `sleep 5` (800 s), not FAILOVER_CONNECT_TIMEOUT. Deviations from
//! the shell script, on purpose: the backup's files are switched at the end of HOLDOFF
//! (not before it), so a Disconnect during HOLDOFF leaves the old profile in place and
//! never fails over; HOLDOFF is at least [`MIN_GAP`] so HOLDOFF=0 cannot spin.
//!
//! # Failover on
//!
//! ```text
//!            Start(red up)                      Start(red down)
//!                 │                                   │
//!                 v          RedUp+Healthy            v
//!   ┌────────> Online(P) <───────────────────── Connecting(P) / Switching(P)
//!   │             │ │                             ^        │ connect timeout, LinkLost,
//!   │  Unhealthy  │ │ LinkLost / RedDown          │        │ ActivateDone{ok:false}
//!   │ (blackhole) │ │ retries < MAXRETRIES: ──────┘        v
//!   │             │ │   Restart (HOLDOFF after a failed dial) next candidate of the walk
//!   │             v v   retries exhausted ──┐              │
//!   │           walk the chain <────────────┴──────────────┘
//!   │             │ candidate C (cyclic order after the failed link, each once per episode):
//!   │             │   Pretest{C,1} unless C shares the active link's device
//!   │             │   failed pre-test: next candidate; passed/untestable: Activate(C)
//!   │             │ no candidate left: StopRed ──> Holdoff ──HOLDOFF──> new pass from the
//!   │             │                              primary (the primary is not pre-tested)
//!   │             v
//!   │   Online(backup B) ──FAILBACK_DELAY──> FailbackTest(primary): ATTEMPTS × Pretest{primary, 1}
//!   │             ^            spread over FAILBACK_VOTE_WINDOW (a Tick each)
//!   │             │            no majority: back to Online(B), retry after the delay
//!   │             │            majority passed (or untestable): Activate(primary, Failback)
//!   │    Rollback │                                       │ RedUp+Healthy
//!   │    (delay   │                                       v
//!   │    doubles) └──── fault within FAILBACK_GRACE ── Trial(primary) ──GRACE over──┐
//!   └──────────────────────── delay reset to FAILBACK_DELAY <─────────────────────────┘
//! ```
//! * A link "dropped" (LinkLost, RedDown, `reconnect`): redial the same profile first
//!   (the first redial at once, each failed dial counts, HOLDOFF between), then the chain.
//!   A link that is up but carries no traffic (`Unhealthy`) goes straight to the chain.
//! * Flapping is bounded by *episodes*: the profiles tried and the redials counted since
//!   the last time a link stayed online for `max(FAILOVER_CONNECT_TIMEOUT, HOLDOFF)`. A
//!   link that fails sooner continues the episode instead of starting a fresh one, so
//!   each profile is activated at most once per episode, and episodes are at least
//!   [`MIN_GAP`] apart (HOLDOFF, the stability time or the failback delay separate them).
//! * The failback vote (DESIGN.md 5.1): one pre-test at a time, spaced
//!   FAILBACK_VOTE_WINDOW / (ATTEMPTS - 1) apart (at least [`VOTE_MIN_SPACING`]); it ends
//!   early once no majority is possible. A fault of the backup between two tests, a
//!   `reconnect`, a manual failover, `auto off` or a Disconnect cancel it.
//! * The end-to-end proof (`failback.rs`, [`Config::failback_proof`]): instead of the
//!   vote, when the primary does not share the backup's device. `ProofStart`, the
//!   session's reports (`Up`, a `Round` per probe interval, `Failed`) as
//!   [`Event::Proof`]; once up, FAILBACK_VOTE_WINDOW of rounds: a majority passed and the
//!   last one passed → `ProofStop`, then the trial (`Activate(primary, Failback)`, with
//!   its grace and rollback). No majority but the last round passed (the primary came
//!   back during the window) → the window slides for one more window, deciding at every
//!   round. Not carried → `ProofStop`, Online(B), the next proof after the current delay; not up within FAILOVER_CONNECT_TIMEOUT or `Failed` → the same with
//!   the delay doubled. Every way out of `Proving` emits `ProofStop` first.
//! * Background pre-tests (`pretests.rs`): while online, the other profiles of the
//!   config are pre-tested every FAILOVER_PRETEST_INTERVAL and at once on `Suspect`; a
//!   walk uses a fresh result instead of a new pre-test.
//! * Failback pre-test without a majority: retried after the current delay, which does
//!   not double (a pre-test disturbs nothing). A failed trial doubles the delay, capped at
//!   FAILBACK_DELAY_MAX; a trial that survives FAILBACK_GRACE resets it.
//! * Manual `failover P` pins P: automatic failback pauses until `failback` or `auto on`;
//!   automatic failover (P dies) still happens, and a pinned P that fails to come up
//!   releases the pin. `failback` unpins and, without `--force`, pre-tests the primary
//!   first (when online). `auto off` pauses automatic failback only: the uplink is never
//!   left dead because of a forgotten switch.
//! * Disconnect (`KeepconnectedRemoved`): StopRed, Exit(0), in every phase.
//!   `Terminate` (SIGTERM): SaveState, Exit(0), no StopRed.
//! * `Reload`: the new config applies to the next decision; the phase and counters stay.
//!   Turning failover off while online exits (IPFire's connectd never runs while online);
//!   turning it on while waiting keeps the waiting and monitors once online.
//!
//! # Where the code is
//!
//! This file holds the public types, the [`Core`] with `step` and its dispatch;
//! `classify.rs` the event classifier (each [`Event`] sorted once into the control events
//! every phase handles alike and the `World` events a phase decides on); `phase.rs` the
//! internal state. The phases' transitions are in `legacy.rs` (failover off),
//! `failover.rs` (bringing links up, the chain walk, the online link, HOLDOFF),
//! `failback.rs` (pre-test, trial, rollback) and `commands.rs`.
//!
//! Hooks (failover on only): `PreUp` before each Activate/Restart, `Up` when an attempt
//! succeeds, `Down` when an online link is declared dead, `Failover`/`Failback`/`Rollback`
//! when a switch completes (by destination: the primary is a failback), `PostDown` after
//! a profile was taken down (moved away from, or stopped).

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use log::Level;
use serde::{Deserialize, Serialize};

use crate::ipfire::policy::Policy;
use crate::ipfire::profile::{ProfileName, Reconnection};

mod classify;
mod commands;
mod failback;
mod failover;
mod legacy;
mod phase;
mod pretests;

use classify::{Class, World};
use phase::{
    Attempt, Episode, Fault, LegacyNext, Next, Online, Pending, Phase, Proof, Purpose, Transition,
    Trial, Vote,
};
use pretests::PretestRecord;
pub use pretests::{PRETEST_FRESH_MIN, PretestView, SUSPECT_RETEST, VOTE_MIN_SPACING};

/// IPFire's connectd waits `MAX=160` rounds of `sleep 5` for `red/active` (failover off,
/// `src/initscripts/system/connectd:31,53-75`): 800 s, not 160 s.
pub(crate) const LEGACY_CONNECT_WAIT: Duration = Duration::from_secs(160 * 5);
/// The reason of the StopRed a Disconnect sends (the shell skips it when someone else is
/// already bringing RED up again: their restart, not a stop).
pub(crate) const DISCONNECT_REASON: &str = "keepconnected removed: the user disconnected";
/// The least time between two passes, redials or failback checks: HOLDOFF=0 or
/// FAILBACK_DELAY=0 must not make the core spin.
pub const MIN_GAP: Duration = Duration::from_secs(5);
/// After a dial starts (`Start`: the network script runs `connectd start` right after it
/// started pppd; an `Activate`; a `Restart` answered), how long pppd may take to appear
/// before [`Event::NoPppd`] counts.
pub const DIAL_GRACE: Duration = Duration::from_secs(5);
/// The longest timer the core schedules (a year); longer settings are capped.
pub(crate) const MAX_TIMER: Duration = Duration::from_secs(365 * 86_400);
/// How many transitions [`Snapshot::transitions`] keeps.
pub const TRANSITIONS_KEPT: usize = 20;
/// MAXRETRIES and HOLDOFF for a profile the config does not know (IPFire's defaults).
const DEFAULT_MAX_RETRIES: u32 = 5;
const DEFAULT_HOLDOFF: Duration = Duration::from_secs(30);

/// One profile the supervisor may bring up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The profile.
    pub name: ProfileName,
    /// Its RED device (`Profile::red_device`); empty when unknown. Two links with the same
    /// device cannot pre-test each other.
    pub device: String,
    /// The profile's MAXRETRIES.
    pub max_retries: u32,
    /// The profile's HOLDOFF.
    pub holdoff: Duration,
    /// The profile's own BACKUPPROFILE (`None` when absent or naming itself). Used only
    /// with failover off, where it is the one switch IPFire's connectd makes.
    pub backup: Option<ProfileName>,
}

/// What the core decides with: the policy and the profiles, typed by the shell.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// FAILOVER_ENABLED.
    pub enabled: bool,
    /// The primary profile.
    pub primary: Link,
    /// The backups in order; the primary and duplicates are dropped by [`Config::from_policy`].
    /// With failover off, it must hold every profile a [`Link::backup`] names.
    pub chain: Vec<Link>,
    /// The primary's RECONNECTION (dial on demand: exit at once).
    pub reconnection: Reconnection,
    /// FAILOVER_CONNECT_TIMEOUT: time for RED to come up and be healthy.
    pub connect_timeout: Duration,
    /// FAILBACK_ENABLED.
    pub failback_enabled: bool,
    /// FAILBACK_DELAY.
    pub failback_delay: Duration,
    /// FAILBACK_ATTEMPTS.
    pub failback_attempts: u32,
    /// FAILBACK_GRACE.
    pub failback_grace: Duration,
    /// FAILBACK_DELAY_MAX.
    pub failback_delay_max: Duration,
    /// FAILBACK_VOTE_WINDOW: the failback pre-tests are spread over it.
    pub failback_vote_window: Duration,
    /// FAILOVER_PRETEST_INTERVAL: background pre-tests of the chain; `None`: off.
    pub pretest_interval: Option<Duration>,
    /// FAILOVER_PRETEST_SKIP: never pre-tested in the background.
    pub pretest_skip: Vec<ProfileName>,
    /// The primary can be brought up beside a backup on another device (PPPoE, DHCP,
    /// STATIC): its failback is proven end to end ([`Action::ProofStart`]) instead of
    /// voted on by pre-tests.
    pub failback_proof: bool,
}

impl Config {
    /// Builds the config from the policy and the profiles' links.
    pub fn from_policy(
        policy: &Policy,
        primary: Link,
        chain: Vec<Link>,
        reconnection: Reconnection,
    ) -> Config {
        Config {
            enabled: policy.enabled,
            primary,
            chain,
            reconnection,
            connect_timeout: policy.connect_timeout,
            failback_enabled: policy.failback_enabled,
            failback_delay: policy.failback_delay,
            failback_attempts: policy.failback_attempts,
            failback_grace: policy.failback_grace,
            failback_delay_max: policy.failback_delay_max,
            failback_vote_window: policy.failback_vote_window,
            pretest_interval: policy.pretest_interval,
            pretest_skip: policy
                .pretest_skip
                .iter()
                .filter_map(|n| ProfileName::new(n).ok())
                .collect(),
            failback_proof: false,
        }
        .normalized()
    }

    /// Drops the primary and duplicates from the chain; keeps the delay cap >= the delay;
    /// caps every timer at [`MAX_TIMER`] (so `now + timer` cannot overflow).
    fn normalized(mut self) -> Config {
        for t in [
            &mut self.connect_timeout,
            &mut self.failback_delay,
            &mut self.failback_grace,
            &mut self.failback_delay_max,
            &mut self.failback_vote_window,
            &mut self.primary.holdoff,
        ] {
            *t = (*t).min(MAX_TIMER);
        }
        if let Some(i) = &mut self.pretest_interval {
            *i = (*i).clamp(MIN_GAP, MAX_TIMER);
        }
        for l in &mut self.chain {
            l.holdoff = l.holdoff.min(MAX_TIMER);
        }
        let mut seen = vec![self.primary.name.clone()];
        self.chain.retain(|l| {
            if seen.contains(&l.name) {
                false
            } else {
                seen.push(l.name.clone());
                true
            }
        });
        if self.failback_delay_max < self.failback_delay {
            self.failback_delay_max = self.failback_delay;
        }
        self
    }

    /// The primary, then the chain.
    pub fn links(&self) -> impl Iterator<Item = &Link> {
        std::iter::once(&self.primary).chain(self.chain.iter())
    }

    /// The link named `name`, if the config knows it.
    pub fn link(&self, name: &ProfileName) -> Option<&Link> {
        self.links().find(|l| &l.name == name)
    }
}

/// A control command (socket, CLI, API).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `connectd reconnect` (also pppd's ip-down): the link dropped, redial it.
    Reconnect,
    /// `connectd failover P`: switch to P and pin it.
    Failover(ProfileName),
    /// `connectd failback [--force]`: back to the primary; `force` skips the pre-test.
    Failback {
        /// Skip the pre-test.
        force: bool,
    },
    /// `connectd auto on|off`: automatic failback on or off.
    Auto(bool),
}

/// What the shell observed.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The supervisor starts. `active`: the profile `ppp/settings` points at;
    /// `red_active`: `red/active` exists; `keepconnected`: the counter in
    /// `red/keepconnected`, `None` when the file is absent or empty (the core recreates it).
    Start {
        /// The profile the files describe.
        active: ProfileName,
        /// `red/active` exists.
        red_active: bool,
        /// The keepconnected counter.
        keepconnected: Option<u32>,
    },
    /// [`Core::next_deadline`] was reached (or any wake-up).
    Tick,
    /// `red/active` exists.
    RedUp,
    /// `red/active` vanished.
    RedDown,
    /// No pppd runs while `red/active` is absent and the active profile dials with pppd (a
    /// level, sent on every sample). Within [`DIAL_GRACE`] of a dial it is ignored; after
    /// it, it is `LinkLost { reason: "no pppd is running", carrier_lost: false }` (IPFire's
    /// `system/connectd:68-71`: "No pppd is running. Trying reconnect.").
    NoPppd,
    /// The line itself dropped: carrier lost, pppd died.
    LinkLost {
        /// What the shell saw.
        reason: String,
        /// The device has no carrier (or vanished): the line is physically dead, so
        /// redialling it is futile and the chain is walked at once. `false`: pppd died or
        /// the interface vanished with the carrier still up: redial first, as IPFire does.
        carrier_lost: bool,
    },
    /// The health engine: the monitored uplink carries traffic.
    Healthy,
    /// The health engine: a probe round failed, not yet FAILOVER_FAILURES of them (a
    /// level, sent on every such round). Online, the core pre-tests the chain at once.
    Suspect {
        /// E.g. "1/3 probe rounds failed".
        reason: String,
    },
    /// The health engine: FAILOVER_FAILURES rounds failed.
    Unhealthy {
        /// E.g. "3/3 probe rounds failed on ppp0".
        reason: String,
    },
    /// The answer to [`Action::Activate`].
    ActivateDone {
        /// The profile of the Activate.
        profile: ProfileName,
        /// The files now describe `profile` and `network start red` ran.
        ok: bool,
        /// Why not.
        error: Option<String>,
    },
    /// The answer to [`Action::Restart`].
    RestartDone {
        /// `network stop red` + `start red` ran.
        ok: bool,
        /// Why not.
        error: Option<String>,
    },
    /// The answer to [`Action::Pretest`] (later, from the pre-test worker: other events
    /// come in meanwhile).
    PretestDone {
        /// The profile tested.
        profile: ProfileName,
        /// When the test finished (at most the `now` of the step that feeds it).
        at: Instant,
        /// Attempts that passed.
        passed: u32,
        /// Attempts that failed.
        failed: u32,
        /// The profile cannot be tested without disturbing the active uplink.
        untestable: bool,
    },
    /// What the proof session of `profile` reports (after [`Action::ProofStart`]).
    Proof {
        /// The profile proven.
        profile: ProfileName,
        /// What happened.
        report: ProofReport,
    },
    /// `red/keepconnected` was removed by someone else: the user pressed Disconnect.
    KeepconnectedRemoved,
    /// A control command.
    Command(Command),
    /// SIGTERM: stop supervising, no redial.
    Terminate,
    /// SIGHUP with a valid policy (an invalid one never reaches the core).
    Reload(Box<Config>),
}

/// What a proof session reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProofReport {
    /// The session is up beside the active uplink (on `iface`).
    Up {
        /// Its interface (`ppp1`, the primary's NIC).
        iface: String,
    },
    /// One probe round through the session: `ok` when FAILOVER_RELIABILITY targets
    /// answered.
    Round {
        /// The round passed.
        ok: bool,
    },
    /// The session could not come up, or went down.
    Failed {
        /// Why.
        reason: String,
    },
}

/// Why a profile is activated; the shell journals it (defined with the journal).
pub use crate::ipfire::journal::SwitchKind;

/// A `failover.d` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HookEvent {
    /// Before a profile is brought up.
    PreUp,
    /// A profile came up healthy.
    Up,
    /// An online profile was declared dead.
    Down,
    /// A switch to a backup completed.
    Failover,
    /// A switch to the primary completed.
    Failback,
    /// A rollback after a failed trial failback completed.
    Rollback,
    /// After a profile was taken down.
    PostDown,
}

impl HookEvent {
    /// The value of `EVENT` for the hook.
    pub fn as_str(self) -> &'static str {
        match self {
            HookEvent::PreUp => "pre-up",
            HookEvent::Up => "up",
            HookEvent::Down => "down",
            HookEvent::Failover => "failover",
            HookEvent::Failback => "failback",
            HookEvent::Rollback => "rollback",
            HookEvent::PostDown => "post-down",
        }
    }
}

/// What the shell must do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Make `to` the active profile and start RED (DESIGN.md 2); answer with `ActivateDone`.
    Activate {
        /// The profile.
        to: ProfileName,
        /// For the journal and the log.
        reason: String,
        /// Why.
        kind: SwitchKind,
    },
    /// `network stop red` + `network start red`, same profile; answer with `RestartDone`.
    Restart {
        /// The active profile.
        profile: ProfileName,
        /// For the log.
        reason: String,
    },
    /// `network stop red`.
    StopRed {
        /// For the log.
        reason: String,
    },
    /// Start health probing of this profile's uplink (`Some`), or stop it (`None`).
    Monitor(Option<ProfileName>),
    /// Pre-test `profile` `attempts` times, off the loop; answer with `PretestDone` when
    /// it finished.
    Pretest {
        /// The profile.
        profile: ProfileName,
        /// How many attempts.
        attempts: u32,
        /// A background round's test: nothing waits for it (the shell runs the others
        /// first).
        background: bool,
    },
    /// Bring `profile` up beside the active uplink, not as RED (its own session, no
    /// default route, no `red/*` file touched), and probe through it each
    /// FAILOVER_CHECK_INTERVAL; report with [`Event::Proof`]. No answer is awaited.
    ProofStart {
        /// The primary.
        profile: ProfileName,
    },
    /// Tear the proof session of `profile` down, before anything after it runs. Later
    /// reports of that session are stale.
    ProofStop {
        /// The primary.
        profile: ProfileName,
    },
    /// Run the `failover.d` hooks.
    Hook {
        /// EVENT.
        event: HookEvent,
        /// FROM_PROFILE.
        from: Option<ProfileName>,
        /// TO_PROFILE.
        to: Option<ProfileName>,
        /// REASON.
        reason: String,
    },
    /// Write `n` to `red/keepconnected` (creating it).
    SetAttempts(u32),
    /// A different profile is online now: flush conntrack of the old RED address, update
    /// `red/current-profile` and `red/failover-time`.
    SwitchCompleted {
        /// The profile that was online before.
        from: ProfileName,
        /// The profile online now.
        to: ProfileName,
    },
    /// Write the state file ([`Core::persisted`], [`Core::snapshot`]).
    SaveState,
    /// One syslog line.
    Log {
        /// Its level.
        level: Level,
        /// The line, never a secret.
        msg: String,
    },
    /// The answer to the `Command` of this step.
    Reply {
        /// Accepted.
        ok: bool,
        /// What happens (or why not).
        msg: String,
    },
    /// Exit the supervisor with this code. Always the last action.
    Exit(u8),
}

/// What survives a restart of the supervisor (part of the state file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Persisted {
    /// The active profile as the core last knew it (informative: `Start` wins).
    pub active: ProfileName,
    /// The current failback delay (doubled by failed trials).
    pub failback_delay_secs: u64,
    /// Completed switches.
    pub switch_count: u64,
    /// A manual failover pinned the active profile.
    pub pinned: bool,
    /// Automatic failback enabled.
    pub auto: bool,
}

/// One recorded transition, for `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransitionView {
    /// Seconds before the snapshot.
    pub secs_ago: u64,
    /// The phase left, e.g. `Online(1)`.
    pub from: String,
    /// The phase entered.
    pub to: String,
    /// Why.
    pub reason: String,
}

/// The core's view for `status` and the state file. No `Instant`s: times are relative
/// to the `now` passed to [`Core::snapshot`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The phase kind: `idle`, `waiting`, `holdoff`, `connecting`, `switching`,
    /// `pretesting`, `online`, `trial`, `failback-test`, `exited`.
    pub state: String,
    /// The phase with its profile, e.g. `Online(2)`.
    pub phase: String,
    /// FAILOVER_ENABLED.
    pub failover_enabled: bool,
    /// The profile the files describe.
    pub active: ProfileName,
    /// The primary.
    pub primary: ProfileName,
    /// The profile being brought up or tested, if any.
    pub target: Option<ProfileName>,
    /// A manual failover pinned the active profile.
    pub pinned: bool,
    /// Automatic failback enabled.
    pub auto: bool,
    /// Completed switches.
    pub switch_count: u64,
    /// Seconds since the last completed switch.
    pub last_switch_secs_ago: Option<u64>,
    /// The keepconnected counter.
    pub attempts: u32,
    /// The current failback delay.
    pub failback_delay_secs: u64,
    /// Seconds until the next automatic failback check, when one is scheduled.
    pub next_failback_in_secs: Option<u64>,
    /// Seconds left of FAILBACK_GRACE during a trial failback.
    pub grace_left_secs: Option<u64>,
    /// The last [`TRANSITIONS_KEPT`] transitions, oldest first.
    pub transitions: Vec<TransitionView>,
    /// The last pre-test of each profile tested since the supervisor started.
    #[serde(default)]
    pub pretests: Vec<PretestView>,
}

/// The decision core. See the module documentation for the contract.
#[derive(Debug, Clone)]
pub struct Core {
    config: Config,
    phase: Phase,
    active: ProfileName,
    /// The profile that was last online (SwitchCompleted's `from`).
    last_online: ProfileName,
    pinned: bool,
    auto: bool,
    failback_delay: Duration,
    switch_count: u64,
    last_switch: Option<Instant>,
    attempts: u32,
    episode: Episode,
    monitoring: Option<ProfileName>,
    transitions: VecDeque<Transition>,
    // Per step.
    out: Vec<Action>,
    why: String,
    level: Level,
    exit: Option<u8>,
    /// When the last dial started (see [`DIAL_GRACE`]).
    dial_at: Option<Instant>,
    /// The last pre-test of each profile.
    pretests: BTreeMap<ProfileName, PretestRecord>,
    /// When the next background round of pre-tests is due (FAILOVER_PRETEST_INTERVAL).
    bg_at: Option<Instant>,
}

impl Core {
    /// A core before `Start`: the primary is assumed active.
    pub fn new(config: Config) -> Core {
        let config = config.normalized();
        let primary = config.primary.name.clone();
        Core {
            failback_delay: config.failback_delay,
            config,
            phase: Phase::Idle,
            active: primary.clone(),
            last_online: primary,
            pinned: false,
            auto: true,
            switch_count: 0,
            last_switch: None,
            attempts: 0,
            episode: Episode::default(),
            monitoring: None,
            transitions: VecDeque::new(),
            out: Vec::new(),
            why: String::new(),
            level: Level::Info,
            exit: None,
            dial_at: None,
            pretests: BTreeMap::new(),
            bg_at: None,
        }
    }

    /// Adopts what the state file kept from a previous run. Call before `Start`.
    pub fn restore(&mut self, saved: &Persisted) {
        self.active = saved.active.clone();
        self.last_online = saved.active.clone();
        self.failback_delay = Duration::from_secs(saved.failback_delay_secs)
            .clamp(self.config.failback_delay, self.config.failback_delay_max);
        self.switch_count = saved.switch_count;
        self.pinned = saved.pinned;
        self.auto = saved.auto;
    }

    /// What the state file keeps.
    pub fn persisted(&self) -> Persisted {
        Persisted {
            active: self.active.clone(),
            failback_delay_secs: self.failback_delay.as_secs(),
            switch_count: self.switch_count,
            pinned: self.pinned,
            auto: self.auto,
        }
    }

    /// The config in force (tests).
    #[cfg(test)]
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The profile the files describe, as the core believes (tests).
    #[cfg(test)]
    pub fn active(&self) -> &ProfileName {
        &self.active
    }

    /// Whether `Exit` was emitted (tests).
    #[cfg(test)]
    pub fn exited(&self) -> bool {
        self.phase == Phase::Exited
    }

    /// When the shell must send `Tick` next; `None`: only events wake the core.
    pub fn next_deadline(&self) -> Option<Instant> {
        match &self.phase {
            Phase::Idle | Phase::Exited | Phase::Pretesting { .. } => None,
            Phase::FailbackTest { vote, .. } => vote.next_at,
            Phase::Proving(p) => Some(p.window_end.unwrap_or(p.up_by)),
            Phase::LegacyWait(a) | Phase::Connecting(a) => match a.awaiting {
                Some(_) => None,
                None => a.deadline,
            },
            Phase::LegacyHoldoff { until, .. } | Phase::Holdoff { until, .. } => Some(*until),
            Phase::Online(o) => {
                let grace = o.trial.as_ref().map(|t| t.until);
                let failback = if self.failback_allowed() {
                    o.failback_at
                } else {
                    None
                };
                let bg = self.background_due_at(o);
                [grace, failback, bg].into_iter().flatten().min()
            }
        }
    }

    /// The core's view for `status`.
    pub fn snapshot(&self, now: Instant) -> Snapshot {
        let secs = |d: Duration| d.as_secs();
        let (next_failback, grace_left) = match &self.phase {
            Phase::Online(o) => (
                if self.failback_allowed() {
                    o.failback_at
                        .map(|at| secs(at.saturating_duration_since(now)))
                } else {
                    None
                },
                o.trial
                    .as_ref()
                    .map(|t| secs(t.until.saturating_duration_since(now))),
            ),
            Phase::Idle
            | Phase::LegacyWait(_)
            | Phase::LegacyHoldoff { .. }
            | Phase::Connecting(_)
            | Phase::Pretesting { .. }
            | Phase::FailbackTest { .. }
            | Phase::Proving(_)
            | Phase::Holdoff { .. }
            | Phase::Exited => (None, None),
        };
        let target = match &self.phase {
            Phase::LegacyWait(a) | Phase::Connecting(a) => Some(a.link.clone()),
            Phase::Pretesting { candidate, .. } => Some(candidate.clone()),
            Phase::FailbackTest { .. } | Phase::Proving(_) => {
                Some(self.config.primary.name.clone())
            }
            Phase::Idle
            | Phase::LegacyHoldoff { .. }
            | Phase::Online(_)
            | Phase::Holdoff { .. }
            | Phase::Exited => None,
        };
        Snapshot {
            state: self.phase.kind().into(),
            phase: self.label(),
            failover_enabled: self.config.enabled,
            active: self.active.clone(),
            primary: self.config.primary.name.clone(),
            target,
            pinned: self.pinned,
            auto: self.auto,
            switch_count: self.switch_count,
            last_switch_secs_ago: self
                .last_switch
                .map(|t| secs(now.saturating_duration_since(t))),
            attempts: self.attempts,
            failback_delay_secs: self.failback_delay.as_secs(),
            next_failback_in_secs: next_failback,
            grace_left_secs: grace_left,
            transitions: self
                .transitions
                .iter()
                .map(|t| TransitionView {
                    secs_ago: secs(now.saturating_duration_since(t.at)),
                    from: t.from.clone(),
                    to: t.to.clone(),
                    reason: t.reason.clone(),
                })
                .collect(),
            pretests: self.pretest_views(now),
        }
    }

    /// Feeds one event; returns the actions to execute, in order.
    pub fn step(&mut self, event: Event, now: Instant) -> Vec<Action> {
        let before = (self.label(), self.persisted());
        if matches!(event, Event::Start { .. } | Event::RestartDone { .. }) {
            self.dial_at = Some(now);
        }
        self.why.clear();
        self.level = Level::Info;

        // A deadline that passed while other events came in is handled first, so a late
        // RedUp never rescues an attempt that timed out. Disconnect and SIGTERM win.
        let urgent = matches!(event, Event::Terminate | Event::KeepconnectedRemoved);
        if !urgent
            && !matches!(event, Event::Tick)
            && self.next_deadline().is_some_and(|d| now >= d)
        {
            self.dispatch(Event::Tick, now);
        }
        self.dispatch(event, now);

        // One log line per decision: the transition, with its reason.
        let after_label = self.label();
        let mut head = Vec::new();
        if after_label != before.0 {
            let reason = std::mem::take(&mut self.why);
            let msg = if reason.is_empty() {
                format!("{} -> {}", before.0, after_label)
            } else {
                format!("{} -> {}: {}", before.0, after_label, reason)
            };
            head.push(Action::Log {
                level: self.level,
                msg,
            });
            self.transitions.push_back(Transition {
                at: now,
                from: before.0.clone(),
                to: after_label.clone(),
                reason,
            });
            while self.transitions.len() > TRANSITIONS_KEPT {
                self.transitions.pop_front();
            }
        } else if !self.why.is_empty() {
            head.push(Action::Log {
                level: self.level,
                msg: std::mem::take(&mut self.why),
            });
        }
        if self
            .out
            .iter()
            .any(|a| matches!(a, Action::Activate { .. }))
        {
            self.dial_at = Some(now);
        }
        let mut actions = head;
        actions.append(&mut self.out);
        if after_label != before.0 || self.persisted() != before.1 {
            actions.push(Action::SaveState);
        }
        if let Some(code) = self.exit.take() {
            actions.push(Action::Exit(code));
        }
        actions
    }

    // -----------------------------------------------------------------------------------
    // Dispatch: one method per phase, each returning the next phase.

    fn dispatch(&mut self, event: Event, now: Instant) {
        let phase = std::mem::replace(&mut self.phase, Phase::Exited);
        self.phase = match event.classify() {
            // Any ---- Terminate ----> Exited
            Class::Terminate => self.terminate(phase),
            // Any ---- KeepconnectedRemoved ----> Exited
            Class::Disconnect => self.disconnect(phase),
            // Any ---- Reload ----> same phase, new config
            Class::Reload(config) => self.reload(phase, *config, now),
            // Any ---- Command ----> see `command`
            Class::Command(cmd) => self.command(phase, cmd, now),
            Class::Start {
                active,
                red_active,
                keepconnected,
            } => match phase {
                // Idle ---- Start ----> Waiting | Connecting | Online | Exited
                Phase::Idle => self.start(active, red_active, keepconnected, now),
                // Any ---- Start ----> same phase (there is one Start)
                other => other,
            },
            // Any ---- NoPppd within DIAL_GRACE ----> same phase
            Class::NoPppd if self.dial_at.is_some_and(|t| now < t + DIAL_GRACE) => phase,
            // Any ---- NoPppd after DIAL_GRACE ----> as LinkLost
            Class::NoPppd => {
                let lost = World::LinkLost {
                    reason: "no pppd is running".into(),
                    carrier_lost: false,
                };
                self.world(phase, lost, now)
            }
            Class::World(event) => self.world(phase, event, now),
        };
        // A background round that became allowed late (back online) is due now.
        if self.bg_at.is_some_and(|at| at < now) {
            self.bg_at = Some(now);
        }
        // A failback check that became allowed late is due now, never in the past.
        if let Phase::Online(o) = &mut self.phase {
            if let Some(at) = o.failback_at {
                if at < now {
                    o.failback_at = Some(now);
                }
            }
        }
    }

    /// What the world reports, decided by the phase.
    fn world(&mut self, phase: Phase, event: World, now: Instant) -> Phase {
        if let World::PretestDone {
            profile,
            result,
            at,
        } = &event
        {
            self.record_pretest(profile, *result, (*at).min(now));
        }
        match phase {
            // Idle ---- anything else ----> Idle (nothing is known yet)
            Phase::Idle => Phase::Idle,
            Phase::LegacyWait(a) => self.legacy_wait(a, event, now),
            Phase::LegacyHoldoff { until, next } => self.legacy_holdoff(until, next, event, now),
            Phase::Connecting(a) => self.connecting(a, event, now),
            Phase::Pretesting {
                candidate,
                anchor,
                kind,
            } => self.pretesting(candidate, anchor, kind, event, now),
            Phase::Online(o) => self.online(o, event, now),
            Phase::FailbackTest {
                online,
                manual,
                fault,
                vote,
            } => self.failback_test(online, manual, fault, vote, event, now),
            Phase::Proving(p) => self.proving(p, event, now),
            Phase::Holdoff { until, next } => self.holdoff_phase(until, next, event, now),
            // Exited ---- anything ----> Exited
            Phase::Exited => Phase::Exited,
        }
    }

    fn start(
        &mut self,
        active: ProfileName,
        red_active: bool,
        keepconnected: Option<u32>,
        now: Instant,
    ) -> Phase {
        // RECONNECTION=dialondemand is no special case: IPFire's connectd creates
        // red/keepconnected and waits like for any other line (system/connectd:45-75), and
        // ip-down's redial needs that file (src/ppp/ip-down:25-31). The shell sends no
        // probes on such a line (they would dial it).
        self.active = active.clone();
        self.last_online = active.clone();
        if self.config.link(&active).is_none() {
            self.log(
                Level::Warn,
                format!("active profile {active} is neither the primary nor in the chain"),
            );
        }
        match keepconnected {
            None => self.set_attempts(0),
            Some(n) => self.attempts = n,
        }
        if !self.config.enabled {
            if red_active {
                self.set_attempts(0);
                self.decide(Level::Info, "System is online. Exiting.");
                return self.exit(0);
            }
            let mut a = Attempt::new(active, Purpose::Reconnect, None);
            a.deadline = Some(now + LEGACY_CONNECT_WAIT);
            self.decide(Level::Info, "waiting for red/active");
            return Phase::LegacyWait(a);
        }
        self.episode = Episode::fresh(&active);
        self.bg_at = self.config.pretest_interval.map(|_| now);
        self.set_monitor(Some(active.clone()));
        if red_active {
            self.decide(Level::Info, "RED is up, monitoring");
            Phase::Online(self.online_at(now, None))
        } else {
            let mut a = Attempt::new(active, Purpose::Reconnect, None);
            a.deadline = Some(now + self.config.connect_timeout);
            self.decide(Level::Info, "waiting for red/active");
            Phase::Connecting(a)
        }
    }

    fn terminate(&mut self, phase: Phase) -> Phase {
        if phase == Phase::Exited {
            // Exited ---- Terminate ----> Exited
            return phase;
        }
        // Any ---- Terminate ----> Exited (SaveState, Exit(0), no StopRed)
        // SaveState follows from the phase change (see `step`).
        self.stop_proof(&phase);
        self.decide(Level::Info, "SIGTERM: stopping supervision, no redial");
        self.exit(0)
    }

    fn disconnect(&mut self, phase: Phase) -> Phase {
        if phase == Phase::Exited {
            // Exited ---- KeepconnectedRemoved ----> Exited
            return phase;
        }
        // Any ---- KeepconnectedRemoved ----> Exited (StopRed, Exit(0))
        let failover = !phase.is_legacy() && phase != Phase::Idle;
        self.stop_proof(&phase);
        self.set_monitor(None);
        self.out.push(Action::StopRed {
            reason: DISCONNECT_REASON.into(),
        });
        if failover {
            let active = self.active.clone();
            self.hook(HookEvent::PostDown, Some(active), None, "disconnected");
        }
        self.decide(Level::Info, "Stopping by user request. Exiting.");
        self.exit(0)
    }

    fn reload(&mut self, phase: Phase, config: Config, now: Instant) -> Phase {
        if phase == Phase::Exited {
            // Exited ---- Reload ----> Exited
            return phase;
        }
        self.config = config.normalized();
        self.failback_delay = self
            .failback_delay
            .clamp(self.config.failback_delay, self.config.failback_delay_max);
        self.log(Level::Info, "policy reloaded".into());
        self.bg_at = self.config.pretest_interval.map(|i| match self.bg_at {
            Some(at) => at.min(now + i),
            None => now,
        });
        match phase {
            // Online ---- Reload(failover off) ----> Exited (IPFire's connectd is not
            // running while online)
            Phase::Online(_) | Phase::FailbackTest { .. } | Phase::Proving(_)
                if !self.config.enabled =>
            {
                self.stop_proof(&phase);
                self.set_monitor(None);
                self.set_attempts(0);
                self.decide(
                    Level::Info,
                    "failover disabled while online: exiting as IPFire's connectd does",
                );
                self.exit(0)
            }
            // Online ---- Reload ----> Online (failback timer armed on a backup)
            Phase::Online(mut o) => {
                if o.failback_at.is_none() && self.active != self.config.primary.name {
                    o.failback_at = Some(now + self.failback_gap());
                }
                Phase::Online(o)
            }
            // Proving ---- Reload(FAILBACK_ENABLED=off) ----> ProofStop, Online(B): the
            // proof would otherwise end in the failback the administrator just turned off
            p @ Phase::Proving(_) => self.pause_proof(p, now),
            // FailbackTest ---- Reload(FAILBACK_ENABLED=off) ----> Online(B) (an answer
            // still coming is recorded, not acted on)
            Phase::FailbackTest {
                online,
                manual: false,
                ..
            } if !self.failback_allowed() => {
                let mut online = online;
                online.failback_at = Some(now + self.failback_gap());
                self.decide(Level::Info, "failback vote cancelled: failback turned off");
                Phase::Online(online)
            }
            // Any ---- Reload ----> same phase; the next decision uses the new config
            other @ (Phase::Idle
            | Phase::LegacyWait(_)
            | Phase::LegacyHoldoff { .. }
            | Phase::Connecting(_)
            | Phase::Pretesting { .. }
            | Phase::FailbackTest { .. }
            | Phase::Holdoff { .. }
            | Phase::Exited) => other,
        }
    }

    // -----------------------------------------------------------------------------------
    // Helpers.

    fn label(&self) -> String {
        self.phase.label(&self.active, &self.config.primary.name)
    }

    fn online_at(&self, now: Instant, trial: Option<Trial>) -> Online {
        let failback_at = if self.active != self.config.primary.name {
            Some(now + self.failback_gap())
        } else {
            None
        };
        Online {
            since: now,
            trial,
            failback_at,
        }
    }

    fn failback_allowed(&self) -> bool {
        self.config.enabled
            && self.config.failback_enabled
            && self.auto
            && !self.pinned
            && self.active != self.config.primary.name
    }

    fn failback_gap(&self) -> Duration {
        self.failback_delay.max(MIN_GAP)
    }

    fn max_retries(&self, name: &ProfileName) -> u32 {
        self.config
            .link(name)
            .map_or(DEFAULT_MAX_RETRIES, |l| l.max_retries)
    }

    fn holdoff(&self, name: &ProfileName) -> Duration {
        self.config
            .link(name)
            .map_or(DEFAULT_HOLDOFF, |l| l.holdoff)
            .max(MIN_GAP)
    }

    /// How long a link must stay online before its failure starts a fresh episode.
    fn stable_time(&self, name: &ProfileName) -> Duration {
        self.config.connect_timeout.max(self.holdoff(name))
    }

    fn shares_device(&self, a: &ProfileName, b: &ProfileName) -> bool {
        match (self.config.link(a), self.config.link(b)) {
            (Some(x), Some(y)) => !x.device.is_empty() && x.device == y.device,
            _ => false,
        }
    }

    fn decide(&mut self, level: Level, why: &str) {
        self.level = level;
        self.why = why.to_string();
    }

    fn log(&mut self, level: Level, msg: String) {
        self.out.push(Action::Log { level, msg });
    }

    fn reply(&mut self, ok: bool, msg: &str) {
        self.out.push(Action::Reply {
            ok,
            msg: msg.to_string(),
        });
    }

    fn hook(
        &mut self,
        event: HookEvent,
        from: Option<ProfileName>,
        to: Option<ProfileName>,
        reason: &str,
    ) {
        self.out.push(Action::Hook {
            event,
            from,
            to,
            reason: reason.to_string(),
        });
    }

    fn set_monitor(&mut self, m: Option<ProfileName>) {
        if self.monitoring != m {
            self.monitoring = m.clone();
            self.out.push(Action::Monitor(m));
        }
    }

    fn set_attempts(&mut self, n: u32) {
        self.attempts = n;
        self.out.push(Action::SetAttempts(n));
    }

    fn stop_red(&mut self, why: &str) {
        self.out.push(Action::StopRed {
            reason: why.to_string(),
        });
        let active = self.active.clone();
        self.hook(HookEvent::PostDown, Some(active), None, why);
    }

    fn exit(&mut self, code: u8) -> Phase {
        self.set_monitor(None);
        self.exit = Some(code);
        Phase::Exited
    }
}

/// A strict majority of the attempts passed.
fn majority(passed: u32, failed: u32) -> bool {
    u64::from(passed) * 2 > u64::from(passed) + u64::from(failed)
}
