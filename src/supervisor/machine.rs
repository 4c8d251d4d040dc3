//! The pure decision core of the supervisor (DESIGN.md sections 4 and 6).
//!
//! `Core::step(event, now) -> Vec<Action>` is the whole failover/failback policy as a
//! transition function: no I/O, no clock, no files. The imperative shell (the loop in the
//! sibling modules) turns the world into [`Event`]s, feeds them in with the current
//! `Instant`, and executes the returned [`Action`]s in order. It sends [`Event::Tick`] when
//! [`Core::next_deadline`] is reached (an early or extra `Tick` is harmless).
//!
//! # Contract with the shell
//!
//! * Feed `Start` once, first (after an optional [`Core::restore`]). Events before `Start`
//!   are ignored (commands are refused), except `Terminate`/`KeepconnectedRemoved`.
//! * Every [`Action::Activate`] is answered by exactly one [`Event::ActivateDone`] for that
//!   profile, every [`Action::Restart`] by one [`Event::RestartDone`], every
//!   [`Action::Pretest`] by one [`Event::PretestDone`], before any other event the shell
//!   observed afterwards. While an `Activate`/`Restart` is unanswered the core never issues
//!   another one. `ActivateDone { ok: false }` means the files could not be switched and
//!   still (or again) describe the previous profile; RED may be down.
//! * `Activate` is DESIGN.md 2 steps 1..6: `network stop red`, switch the files, `network
//!   start red`. `Restart` is `network stop red` + `network start red` of the same profile.
//!   `StopRed` is `network stop red` only.
//! * `RedUp`/`RedDown` are levels of `red/active`, `Healthy`/`Unhealthy` the health
//!   engine's verdicts for the profile named in the last `Monitor(Some(..))`; repeating
//!   them is harmless. After an `ActivateDone`/`RestartDone` report the current level of
//!   `red/active` (send `RedUp` if it exists). The health engine should start a fresh
//!   streak on each `Monitor(Some(..))`.
//! * `network stop red` removes `red/keepconnected` for PPP types: the shell rewrites the
//!   counter right after its own stops and reports [`Event::KeepconnectedRemoved`] only
//!   for removals it did not cause (the user pressed Disconnect). `SetAttempts(n)` writes
//!   the counter (creating the file).
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
//!  Start ──dialondemand──────────────────────────────────────────────> Exit(0)
//!    │ red up: SetAttempts(0) ───────────────────────────────────────> Exit(0)
//!    v
//!  Waiting(P) ──RedUp: SetAttempts(0) "System is online. Exiting."──> Exit(0)
//!    │ 160 s without red/active, or LinkLost ("no pppd running")
//!    │ StopRed; attempts += 1 (SetAttempts)
//!    ├── attempts < MAXRETRIES ──────────> Holdoff ──HOLDOFF──> Restart ──> Waiting(P)
//!    └── attempts >= MAXRETRIES: SetAttempts(0)
//!          ├── P has a BACKUPPROFILE B ──> Holdoff ──HOLDOFF──> Activate(B, Legacy) ──> Waiting(B)
//!          └── none: "No backup profile given. Exiting." ─────────────────────────> Exit(0)
//! ```
//! The wait is IPFire's `MAX=160` seconds, not FAILOVER_CONNECT_TIMEOUT. Deviations from
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
//!   │   Online(backup B) ──FAILBACK_DELAY──> FailbackTest(primary): Pretest{primary, ATTEMPTS}
//!   │             ^            minority passed: back to Online(B), retry after the delay
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
//! Hooks (failover on only): `PreUp` before each Activate/Restart, `Up` when an attempt
//! succeeds, `Down` when an online link is declared dead, `Failover`/`Failback`/`Rollback`
//! when a switch completes (by destination: the primary is a failback), `PostDown` after
//! a profile was taken down (moved away from, or stopped).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use log::Level;
use serde::{Deserialize, Serialize};

use crate::ipfire::policy::Policy;
use crate::ipfire::profile::{ProfileName, Reconnection};

/// IPFire's connectd waits `MAX=160` seconds for `red/active` (failover off).
pub const LEGACY_CONNECT_WAIT: Duration = Duration::from_secs(160);
/// The least time between two passes, redials or failback checks: HOLDOFF=0 or
/// FAILBACK_DELAY=0 must not make the core spin.
pub const MIN_GAP: Duration = Duration::from_secs(5);
/// The longest timer the core schedules (a year); longer settings are capped.
pub const MAX_TIMER: Duration = Duration::from_secs(365 * 86_400);
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
            &mut self.primary.holdoff,
        ] {
            *t = (*t).min(MAX_TIMER);
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
    /// The answer to [`Action::Pretest`].
    PretestDone {
        /// The profile tested.
        profile: ProfileName,
        /// Attempts that passed.
        passed: u32,
        /// Attempts that failed.
        failed: u32,
        /// The profile cannot be tested without disturbing the active uplink.
        untestable: bool,
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
    /// Pre-test `profile` `attempts` times; answer with `PretestDone`.
    Pretest {
        /// The profile.
        profile: ProfileName,
        /// How many attempts.
        attempts: u32,
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
}

// ---------------------------------------------------------------------------------------
// Internal state.

/// An Activate/Restart not answered yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    Activate,
    Restart,
}

/// What a connection attempt is for: decides what happens when it fails.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Purpose {
    /// Redial of the active profile (also the first wait after `Start`).
    Reconnect,
    /// A candidate of a chain walk that started after `anchor` (`None`: from the top).
    Walk {
        anchor: Option<ProfileName>,
        kind: SwitchKind,
    },
    /// Trial failback from `from`.
    Trial { from: ProfileName, automatic: bool },
    /// Back to the backup after a failed trial.
    Rollback,
    /// A control command.
    Manual,
}

/// Bringing one link up.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Attempt {
    link: ProfileName,
    purpose: Purpose,
    /// `Some` until the shell answered the Activate/Restart; no deadline meanwhile.
    awaiting: Option<Pending>,
    deadline: Option<Instant>,
    red_up: bool,
    healthy: bool,
}

impl Attempt {
    fn new(link: ProfileName, purpose: Purpose, awaiting: Option<Pending>) -> Attempt {
        Attempt {
            link,
            purpose,
            awaiting,
            deadline: None,
            red_up: false,
            healthy: false,
        }
    }

    fn due(&self, now: Instant) -> bool {
        self.awaiting.is_none() && self.deadline.is_some_and(|d| now >= d)
    }
}

/// A trial failback being verified for FAILBACK_GRACE.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Trial {
    from: ProfileName,
    automatic: bool,
    until: Instant,
}

/// The active link is up and monitored.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Online {
    since: Instant,
    trial: Option<Trial>,
    /// On a backup: when to check the primary.
    failback_at: Option<Instant>,
}

/// How an online link failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Up, but no traffic: straight to the chain.
    Blackhole,
    /// The line dropped: redial first.
    Dropped,
    /// No carrier on the device: nothing to redial, straight to the chain.
    NoCarrier,
}

/// What follows a HOLDOFF (failover on).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Next {
    Restart,
    NewPass,
}

/// What follows a HOLDOFF (failover off).
#[derive(Debug, Clone, PartialEq, Eq)]
enum LegacyNext {
    Restart,
    Switch(ProfileName),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    /// Before `Start`.
    Idle,
    /// Failover off: waiting for `red/active`.
    LegacyWait(Attempt),
    /// Failover off: HOLDOFF.
    LegacyHoldoff { until: Instant, next: LegacyNext },
    /// Failover on: bringing a link up.
    Connecting(Attempt),
    /// Failover on: the pre-test of a chain candidate is outstanding.
    Pretesting {
        candidate: ProfileName,
        anchor: Option<ProfileName>,
        kind: SwitchKind,
    },
    /// Failover on: the active link is up.
    Online(Online),
    /// Failover on, on a backup: the failback pre-test of the primary is outstanding. A
    /// fault of the backup meanwhile is handled when the result arrives.
    FailbackTest {
        online: Online,
        manual: bool,
        fault: Option<(Fault, String)>,
    },
    /// Failover on: HOLDOFF.
    Holdoff { until: Instant, next: Next },
    /// `Exit` was emitted.
    Exited,
}

impl Phase {
    fn label(&self, active: &ProfileName, primary: &ProfileName) -> String {
        match self {
            Phase::Idle => "Idle".into(),
            Phase::LegacyWait(a) => format!("Waiting({})", a.link),
            Phase::LegacyHoldoff { .. } | Phase::Holdoff { .. } => "Holdoff".into(),
            Phase::Connecting(a) => match a.purpose {
                Purpose::Reconnect => format!("Connecting({})", a.link),
                Purpose::Walk { .. }
                | Purpose::Trial { .. }
                | Purpose::Rollback
                | Purpose::Manual => {
                    format!("Switching({})", a.link)
                }
            },
            Phase::Pretesting { candidate, .. } => format!("Pretesting({candidate})"),
            Phase::Online(o) => match o.trial {
                Some(_) => format!("Trial({active})"),
                None => format!("Online({active})"),
            },
            Phase::FailbackTest { .. } => format!("FailbackTest({primary})"),
            Phase::Exited => "Exited".into(),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Phase::Idle => "idle",
            Phase::LegacyWait(_) => "waiting",
            Phase::LegacyHoldoff { .. } | Phase::Holdoff { .. } => "holdoff",
            Phase::Connecting(a) => match a.purpose {
                Purpose::Reconnect => "connecting",
                Purpose::Walk { .. }
                | Purpose::Trial { .. }
                | Purpose::Rollback
                | Purpose::Manual => "switching",
            },
            Phase::Pretesting { .. } => "pretesting",
            Phase::Online(o) => match o.trial {
                Some(_) => "trial",
                None => "online",
            },
            Phase::FailbackTest { .. } => "failback-test",
            Phase::Exited => "exited",
        }
    }

    fn busy(&self) -> bool {
        match self {
            Phase::LegacyWait(a) | Phase::Connecting(a) => a.awaiting.is_some(),
            Phase::Idle
            | Phase::LegacyHoldoff { .. }
            | Phase::Pretesting { .. }
            | Phase::Online(_)
            | Phase::FailbackTest { .. }
            | Phase::Holdoff { .. }
            | Phase::Exited => false,
        }
    }

    fn is_legacy(&self) -> bool {
        match self {
            Phase::LegacyWait(_) | Phase::LegacyHoldoff { .. } => true,
            Phase::Idle
            | Phase::Connecting(_)
            | Phase::Pretesting { .. }
            | Phase::Online(_)
            | Phase::FailbackTest { .. }
            | Phase::Holdoff { .. }
            | Phase::Exited => false,
        }
    }
}

/// Profiles tried and redials counted since a link last stayed online long enough.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Episode {
    tried: Vec<ProfileName>,
    retries: u32,
}

impl Episode {
    fn fresh(first: &ProfileName) -> Episode {
        Episode {
            tried: vec![first.clone()],
            retries: 0,
        }
    }
}

#[derive(Debug, Clone)]
struct Transition {
    at: Instant,
    from: String,
    to: String,
    reason: String,
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

    /// The config in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The profile the files describe, as the core believes.
    pub fn active(&self) -> &ProfileName {
        &self.active
    }

    /// Whether `Exit` was emitted.
    pub fn exited(&self) -> bool {
        self.phase == Phase::Exited
    }

    /// When the shell must send `Tick` next; `None`: only events wake the core.
    pub fn next_deadline(&self) -> Option<Instant> {
        match &self.phase {
            Phase::Idle | Phase::Exited | Phase::Pretesting { .. } | Phase::FailbackTest { .. } => {
                None
            }
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
                match (grace, failback) {
                    (Some(g), Some(f)) => Some(g.min(f)),
                    (Some(g), None) => Some(g),
                    (None, f) => f,
                }
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
            | Phase::Holdoff { .. }
            | Phase::Exited => (None, None),
        };
        let target = match &self.phase {
            Phase::LegacyWait(a) | Phase::Connecting(a) => Some(a.link.clone()),
            Phase::Pretesting { candidate, .. } => Some(candidate.clone()),
            Phase::FailbackTest { .. } => Some(self.config.primary.name.clone()),
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
        }
    }

    /// Feeds one event; returns the actions to execute, in order.
    pub fn step(&mut self, event: Event, now: Instant) -> Vec<Action> {
        let before = (self.label(), self.persisted());
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
        self.phase = match event {
            // Any ---- Terminate ----> Exited
            Event::Terminate => self.terminate(phase),
            // Any ---- KeepconnectedRemoved ----> Exited
            Event::KeepconnectedRemoved => self.disconnect(phase),
            // Any ---- Reload ----> same phase, new config
            Event::Reload(config) => self.reload(phase, *config, now),
            // Any ---- Command ----> see `command`
            Event::Command(cmd) => self.command(phase, cmd, now),
            event => match phase {
                Phase::Idle => self.idle(event, now),
                Phase::LegacyWait(a) => self.legacy_wait(a, event, now),
                Phase::LegacyHoldoff { until, next } => {
                    self.legacy_holdoff(until, next, event, now)
                }
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
                } => self.failback_test(online, manual, fault, event, now),
                Phase::Holdoff { until, next } => self.holdoff_phase(until, next, event, now),
                // Exited ---- anything ----> Exited
                Phase::Exited => Phase::Exited,
            },
        };
        // A failback check that became allowed late is due now, never in the past.
        if let Phase::Online(o) = &mut self.phase {
            if let Some(at) = o.failback_at {
                if at < now {
                    o.failback_at = Some(now);
                }
            }
        }
    }

    fn idle(&mut self, event: Event, now: Instant) -> Phase {
        match event {
            // Idle ---- Start ----> Waiting | Connecting | Online | Exited
            Event::Start {
                active,
                red_active,
                keepconnected,
            } => self.start(active, red_active, keepconnected, now),
            // Idle ---- anything else ----> Idle (nothing is known yet)
            Event::Tick
            | Event::RedUp
            | Event::RedDown
            | Event::LinkLost { .. }
            | Event::Healthy
            | Event::Unhealthy { .. }
            | Event::ActivateDone { .. }
            | Event::RestartDone { .. }
            | Event::PretestDone { .. }
            | Event::KeepconnectedRemoved
            | Event::Command(_)
            | Event::Terminate
            | Event::Reload(_) => Phase::Idle,
        }
    }

    fn start(
        &mut self,
        active: ProfileName,
        red_active: bool,
        keepconnected: Option<u32>,
        now: Instant,
    ) -> Phase {
        if self.config.reconnection == Reconnection::DialOnDemand {
            self.decide(Level::Info, "dial on demand: pppd dials by itself, exiting");
            return self.exit(0);
        }
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
        match phase {
            // Exited ---- Terminate ----> Exited
            Phase::Exited => Phase::Exited,
            // Any ---- Terminate ----> Exited (SaveState, Exit(0), no StopRed)
            Phase::Idle
            | Phase::LegacyWait(_)
            | Phase::LegacyHoldoff { .. }
            | Phase::Connecting(_)
            | Phase::Pretesting { .. }
            | Phase::Online(_)
            | Phase::FailbackTest { .. }
            | Phase::Holdoff { .. } => {
                // SaveState follows from the phase change (see `step`).
                self.decide(Level::Info, "SIGTERM: stopping supervision, no redial");
                self.exit(0)
            }
        }
    }

    fn disconnect(&mut self, phase: Phase) -> Phase {
        match phase {
            // Exited ---- KeepconnectedRemoved ----> Exited
            Phase::Exited => Phase::Exited,
            // Any ---- KeepconnectedRemoved ----> Exited (StopRed, Exit(0))
            Phase::Idle
            | Phase::LegacyWait(_)
            | Phase::LegacyHoldoff { .. }
            | Phase::Connecting(_)
            | Phase::Pretesting { .. }
            | Phase::Online(_)
            | Phase::FailbackTest { .. }
            | Phase::Holdoff { .. } => {
                let failover = !phase.is_legacy() && phase != Phase::Idle;
                self.set_monitor(None);
                self.out.push(Action::StopRed {
                    reason: "keepconnected removed: the user disconnected".into(),
                });
                if failover {
                    let active = self.active.clone();
                    self.hook(HookEvent::PostDown, Some(active), None, "disconnected");
                }
                self.decide(Level::Info, "Stopping by user request. Exiting.");
                self.exit(0)
            }
        }
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
        match phase {
            // Online ---- Reload(failover off) ----> Exited (IPFire's connectd is not
            // running while online)
            Phase::Online(_) | Phase::FailbackTest { .. } if !self.config.enabled => {
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

    fn command(&mut self, phase: Phase, cmd: Command, now: Instant) -> Phase {
        match (&phase, &cmd) {
            // Exited | Idle ---- Command ----> unchanged, refused
            (Phase::Exited, _) => {
                self.reply(false, "the supervisor is exiting");
                return phase;
            }
            (Phase::Idle, _) => {
                self.reply(false, "the supervisor has not started yet");
                return phase;
            }
            _ => {}
        }
        match cmd {
            // Any ---- auto on|off ----> same phase
            Command::Auto(on) => {
                self.auto = on;
                if on {
                    self.pinned = false;
                }
                let msg = if on {
                    "automatic failback on"
                } else {
                    "automatic failback off (failover stays automatic)"
                };
                self.log(Level::Info, msg.into());
                self.reply(true, msg);
                phase
            }
            Command::Reconnect => match phase {
                // Online ---- reconnect ----> Connecting (the link dropped: redial)
                Phase::Online(o) => {
                    self.reply(true, "reconnecting");
                    self.online_failed(o, Fault::Dropped, "reconnect requested".into(), now)
                }
                // FailbackTest ---- reconnect ----> FailbackTest (handled with the result)
                Phase::FailbackTest { online, manual, .. } => {
                    self.reply(true, "reconnecting after the pre-test");
                    Phase::FailbackTest {
                        online,
                        manual,
                        fault: Some((Fault::Dropped, "reconnect requested".into())),
                    }
                }
                // Connecting | Waiting | Holdoff | Pretesting ---- reconnect ----> unchanged
                other @ (Phase::Idle
                | Phase::LegacyWait(_)
                | Phase::LegacyHoldoff { .. }
                | Phase::Connecting(_)
                | Phase::Pretesting { .. }
                | Phase::Holdoff { .. }
                | Phase::Exited) => {
                    self.log(Level::Info, "reconnect: already (re)connecting".into());
                    self.reply(true, "already (re)connecting");
                    other
                }
            },
            Command::Failover(p) => {
                if self.config.link(&p).is_none() {
                    self.log(
                        Level::Warn,
                        format!("failover {p}: unknown profile, no switch"),
                    );
                    self.reply(
                        false,
                        &format!("{p} is neither the primary nor in the chain"),
                    );
                    return phase;
                }
                if phase.busy() {
                    self.reply(false, "a switch is in progress, try again");
                    return phase;
                }
                self.pinned = p != self.config.primary.name;
                if p == self.active {
                    self.log(
                        Level::Info,
                        format!("failover {p}: already active, no switch"),
                    );
                    self.reply(true, &format!("{p} is already active"));
                    return phase;
                }
                self.reply(true, &format!("switching to {p}"));
                let why = format!("manual failover to {p}");
                self.manual_switch(phase, p, why)
            }
            Command::Failback { force } => {
                self.pinned = false;
                let primary = self.config.primary.name.clone();
                if self.active == primary {
                    self.log(Level::Info, "failback: already on the primary".into());
                    self.reply(true, &format!("{primary} is already active"));
                    return phase;
                }
                if phase.busy() {
                    self.reply(false, "a switch is in progress, try again");
                    return phase;
                }
                match phase {
                    // Online(B) ---- failback ----> FailbackTest | Switching(primary)
                    Phase::Online(o) if self.config.enabled => {
                        self.reply(true, &format!("failing back to {primary}"));
                        self.start_failback(o, true, force)
                    }
                    // FailbackTest ---- failback --force ----> Switching(primary)
                    Phase::FailbackTest { online, .. } if force => {
                        self.reply(true, &format!("failing back to {primary}"));
                        self.trial(online, true, "manual failback".into())
                    }
                    // FailbackTest ---- failback ----> FailbackTest (already testing)
                    p @ Phase::FailbackTest { .. } => {
                        self.reply(true, &format!("already pre-testing {primary}"));
                        p
                    }
                    // anything else ---- failback ----> Switching(primary) (nothing healthy
                    // to disturb or roll back to)
                    other @ (Phase::Idle
                    | Phase::Online(_)
                    | Phase::LegacyWait(_)
                    | Phase::LegacyHoldoff { .. }
                    | Phase::Connecting(_)
                    | Phase::Pretesting { .. }
                    | Phase::Holdoff { .. }
                    | Phase::Exited) => {
                        self.reply(true, &format!("switching to {primary}"));
                        self.manual_switch(other, primary, "manual failback".into())
                    }
                }
            }
        }
    }

    /// A manual switch to `to` from any phase that is not busy.
    fn manual_switch(&mut self, phase: Phase, to: ProfileName, why: String) -> Phase {
        if phase.is_legacy() {
            // Waiting | Holdoff ---- failover P ----> Waiting(P) (failover off)
            self.set_attempts(0);
            self.out.push(Action::Activate {
                to: to.clone(),
                reason: why.clone(),
                kind: SwitchKind::Manual,
            });
            self.decide(Level::Warn, &why);
            return Phase::LegacyWait(Attempt::new(
                to,
                Purpose::Reconnect,
                Some(Pending::Activate),
            ));
        }
        // Online | Connecting | Holdoff | Pretesting ---- failover P ----> Switching(P)
        self.episode = Episode::fresh(&to);
        self.bring_up(to, Purpose::Manual, SwitchKind::Manual, why)
    }

    // -----------------------------------------------------------------------------------
    // Failover off.

    fn legacy_wait(&mut self, mut a: Attempt, event: Event, now: Instant) -> Phase {
        match event {
            // Waiting ---- ActivateDone(ok) ----> Waiting (160 s from now)
            // Waiting ---- ActivateDone(failed) ----> Holdoff | Exited (a failed attempt)
            Event::ActivateDone { profile, ok, error }
                if a.awaiting == Some(Pending::Activate) && profile == a.link =>
            {
                a.awaiting = None;
                if ok {
                    self.active = profile;
                    a.deadline = Some(now + LEGACY_CONNECT_WAIT);
                    if a.red_up {
                        return self.legacy_online(now);
                    }
                    Phase::LegacyWait(a)
                } else {
                    let e = error.unwrap_or_default();
                    self.legacy_fail(format!("switching to {} failed: {e}", a.link), now)
                }
            }
            // Waiting ---- RestartDone ----> Waiting | Holdoff
            Event::RestartDone { ok, error } if a.awaiting == Some(Pending::Restart) => {
                a.awaiting = None;
                if ok {
                    a.deadline = Some(now + LEGACY_CONNECT_WAIT);
                    if a.red_up {
                        return self.legacy_online(now);
                    }
                    Phase::LegacyWait(a)
                } else {
                    let e = error.unwrap_or_default();
                    self.legacy_fail(format!("network start red failed: {e}"), now)
                }
            }
            // Waiting ---- stale answer ----> Waiting
            Event::ActivateDone { .. } | Event::RestartDone { .. } => Phase::LegacyWait(a),
            // Waiting ---- RedUp ----> Exited ("System is online. Exiting.")
            Event::RedUp => {
                if a.awaiting.is_some() {
                    a.red_up = true;
                    Phase::LegacyWait(a)
                } else {
                    self.legacy_online(now)
                }
            }
            // Waiting ---- RedDown ----> Waiting
            Event::RedDown => {
                a.red_up = false;
                Phase::LegacyWait(a)
            }
            // Waiting ---- LinkLost ("no pppd running") ----> Holdoff | Exited
            Event::LinkLost { reason, .. } => {
                if a.awaiting.is_some() {
                    Phase::LegacyWait(a)
                } else {
                    self.legacy_fail(
                        format!("No pppd is running ({reason}). Trying reconnect."),
                        now,
                    )
                }
            }
            // Waiting ---- 160 s ----> Holdoff | Exited
            Event::Tick => {
                if a.due(now) {
                    self.legacy_fail(
                        format!("no red/active within {}s", LEGACY_CONNECT_WAIT.as_secs()),
                        now,
                    )
                } else {
                    Phase::LegacyWait(a)
                }
            }
            // Waiting ---- health/pre-test/others ----> Waiting
            Event::Healthy
            | Event::Unhealthy { .. }
            | Event::PretestDone { .. }
            | Event::Start { .. }
            | Event::KeepconnectedRemoved
            | Event::Command(_)
            | Event::Terminate
            | Event::Reload(_) => Phase::LegacyWait(a),
        }
    }

    fn legacy_online(&mut self, now: Instant) -> Phase {
        if self.config.enabled {
            // Waiting ---- RedUp (failover turned on by a reload) ----> Online
            let active = self.active.clone();
            self.episode = Episode::fresh(&active);
            self.set_attempts(0);
            self.set_monitor(Some(active));
            self.decide(Level::Info, "RED is up, monitoring");
            return Phase::Online(self.online_at(now, None));
        }
        self.set_attempts(0);
        self.decide(Level::Info, "System is online. Exiting.");
        self.exit(0)
    }

    /// IPFire's connectd after a failed attempt: stop, count, switch or wait, redial.
    fn legacy_fail(&mut self, why: String, now: Instant) -> Phase {
        self.out.push(Action::StopRed {
            reason: why.clone(),
        });
        let active = self.active.clone();
        let max = self.max_retries(&active);
        let until = now + self.holdoff(&active);
        self.attempts = self.attempts.saturating_add(1);
        self.log(
            Level::Info,
            format!("Reconnecting: Attempt {} of {max}", self.attempts),
        );
        if self.attempts >= max {
            self.set_attempts(0);
            let backup = self
                .config
                .link(&active)
                .and_then(|l| l.backup.clone())
                .filter(|b| *b != active);
            match backup {
                Some(b) => {
                    self.decide(
                        Level::Warn,
                        &format!("{why}; switching to backup profile {b} after HOLDOFF"),
                    );
                    Phase::LegacyHoldoff {
                        until,
                        next: LegacyNext::Switch(b),
                    }
                }
                None => {
                    self.decide(
                        Level::Warn,
                        &format!("{why}; No backup profile given. Exiting."),
                    );
                    self.exit(0)
                }
            }
        } else {
            let n = self.attempts;
            self.set_attempts(n);
            self.decide(Level::Info, &why);
            Phase::LegacyHoldoff {
                until,
                next: LegacyNext::Restart,
            }
        }
    }

    fn legacy_holdoff(
        &mut self,
        until: Instant,
        next: LegacyNext,
        event: Event,
        now: Instant,
    ) -> Phase {
        match event {
            Event::Tick if now >= until => match next {
                // Holdoff ---- HOLDOFF over ----> Waiting(P) (network start red)
                LegacyNext::Restart => {
                    let active = self.active.clone();
                    self.out.push(Action::Restart {
                        profile: active.clone(),
                        reason: "HOLDOFF over: redialling".into(),
                    });
                    self.decide(Level::Info, "HOLDOFF over: redialling");
                    Phase::LegacyWait(Attempt::new(
                        active,
                        Purpose::Reconnect,
                        Some(Pending::Restart),
                    ))
                }
                // Holdoff ---- HOLDOFF over, B reloaded away ----> Waiting(P) (redial)
                LegacyNext::Switch(b) if self.config.link(&b).is_none() => {
                    let active = self.active.clone();
                    let why = format!("backup profile {b} is no longer configured: redialling");
                    self.out.push(Action::Restart {
                        profile: active.clone(),
                        reason: why.clone(),
                    });
                    self.decide(Level::Warn, &why);
                    Phase::LegacyWait(Attempt::new(
                        active,
                        Purpose::Reconnect,
                        Some(Pending::Restart),
                    ))
                }
                // Holdoff ---- HOLDOFF over ----> Waiting(B) (switch to the backup)
                LegacyNext::Switch(b) => {
                    let why = format!("Switched to backup profile {b}");
                    self.out.push(Action::Activate {
                        to: b.clone(),
                        reason: why.clone(),
                        kind: SwitchKind::Legacy,
                    });
                    self.decide(Level::Warn, &why);
                    Phase::LegacyWait(Attempt::new(b, Purpose::Reconnect, Some(Pending::Activate)))
                }
            },
            // Holdoff ---- anything else ----> Holdoff
            Event::Tick
            | Event::RedUp
            | Event::RedDown
            | Event::LinkLost { .. }
            | Event::Healthy
            | Event::Unhealthy { .. }
            | Event::ActivateDone { .. }
            | Event::RestartDone { .. }
            | Event::PretestDone { .. }
            | Event::Start { .. }
            | Event::KeepconnectedRemoved
            | Event::Command(_)
            | Event::Terminate
            | Event::Reload(_) => Phase::LegacyHoldoff { until, next },
        }
    }

    // -----------------------------------------------------------------------------------
    // Failover on.

    fn connecting(&mut self, mut a: Attempt, event: Event, now: Instant) -> Phase {
        match event {
            // Switching(C) ---- ActivateDone(ok) ----> Switching(C) (connect timeout runs)
            // Switching(C) ---- ActivateDone(failed) ----> next candidate / rollback / holdoff
            Event::ActivateDone { profile, ok, error }
                if a.awaiting == Some(Pending::Activate) && profile == a.link =>
            {
                a.awaiting = None;
                if !ok {
                    let e = error.unwrap_or_default();
                    let why = format!("activating {} failed: {e}", a.link);
                    return self.fail_attempt(a, why, now);
                }
                let prev = std::mem::replace(&mut self.active, profile);
                if prev != self.active {
                    self.episode.retries = 0;
                    self.hook(
                        HookEvent::PostDown,
                        Some(prev),
                        Some(a.link.clone()),
                        "switched away",
                    );
                }
                self.set_monitor(Some(a.link.clone()));
                a.deadline = Some(now + self.config.connect_timeout);
                Phase::Connecting(a)
            }
            // Connecting(P) ---- RestartDone ----> Connecting(P) | failed attempt
            Event::RestartDone { ok, error } if a.awaiting == Some(Pending::Restart) => {
                a.awaiting = None;
                if !ok {
                    let e = error.unwrap_or_default();
                    return self.fail_attempt(a, format!("network restart failed: {e}"), now);
                }
                self.set_monitor(Some(a.link.clone()));
                a.deadline = Some(now + self.config.connect_timeout);
                Phase::Connecting(a)
            }
            // Connecting ---- stale answer ----> Connecting
            Event::ActivateDone { .. } | Event::RestartDone { .. } | Event::PretestDone { .. } => {
                Phase::Connecting(a)
            }
            // Connecting(P) ---- RedUp (+Healthy) ----> Online(P)
            Event::RedUp => {
                a.red_up = true;
                if a.awaiting.is_none() && a.healthy {
                    self.succeed(a, now)
                } else {
                    Phase::Connecting(a)
                }
            }
            // Connecting(P) ---- Healthy (+RedUp) ----> Online(P)
            Event::Healthy => {
                if a.awaiting.is_some() {
                    return Phase::Connecting(a);
                }
                a.healthy = true;
                if a.red_up {
                    self.succeed(a, now)
                } else {
                    Phase::Connecting(a)
                }
            }
            // Connecting(P) ---- Unhealthy after RedUp ----> failed attempt
            Event::Unhealthy { reason } => {
                if a.awaiting.is_none() && a.red_up {
                    self.fail_attempt(a, format!("up but {reason}"), now)
                } else {
                    a.healthy = false;
                    Phase::Connecting(a)
                }
            }
            // Connecting(P) ---- LinkLost ----> failed attempt
            Event::LinkLost { reason, .. } => {
                if a.awaiting.is_none() {
                    self.fail_attempt(a, reason, now)
                } else {
                    Phase::Connecting(a)
                }
            }
            // Connecting(P) ---- RedDown after RedUp ----> failed attempt
            Event::RedDown => {
                if a.awaiting.is_none() && a.red_up {
                    self.fail_attempt(a, "red/active vanished".into(), now)
                } else {
                    a.red_up = false;
                    Phase::Connecting(a)
                }
            }
            // Connecting(P) ---- connect timeout ----> failed attempt
            Event::Tick => {
                if a.due(now) {
                    let secs = self.config.connect_timeout.as_secs();
                    let why = if a.red_up {
                        format!("{} up but not healthy within {secs}s", a.link)
                    } else {
                        format!("no red/active for {} within {secs}s", a.link)
                    };
                    self.fail_attempt(a, why, now)
                } else {
                    Phase::Connecting(a)
                }
            }
            // Connecting ---- others ----> Connecting
            Event::Start { .. }
            | Event::KeepconnectedRemoved
            | Event::Command(_)
            | Event::Terminate
            | Event::Reload(_) => Phase::Connecting(a),
        }
    }

    /// The attempt `a` came up healthy.
    fn succeed(&mut self, a: Attempt, now: Instant) -> Phase {
        let to = self.active.clone();
        self.set_attempts(0);
        self.hook(HookEvent::Up, None, Some(to.clone()), "up and healthy");
        if !self.config.enabled {
            // Connecting ---- up (failover turned off by a reload) ----> Exited
            self.set_monitor(None);
            self.decide(Level::Info, "System is online. Exiting.");
            return self.exit(0);
        }
        let from = std::mem::replace(&mut self.last_online, to.clone());
        let mut trial = false;
        let mut automatic = false;
        let mut rollback = false;
        match a.purpose {
            Purpose::Trial {
                automatic: auto, ..
            } => {
                trial = true;
                automatic = auto;
            }
            Purpose::Rollback => rollback = true,
            Purpose::Reconnect | Purpose::Walk { .. } | Purpose::Manual => {}
        }
        if from != to {
            self.switch_count += 1;
            self.last_switch = Some(now);
            self.out.push(Action::SwitchCompleted {
                from: from.clone(),
                to: to.clone(),
            });
            let ev = if rollback {
                HookEvent::Rollback
            } else if to == self.config.primary.name {
                HookEvent::Failback
            } else {
                HookEvent::Failover
            };
            self.hook(ev, Some(from.clone()), Some(to.clone()), "switch completed");
        }
        let grace = self.config.failback_grace;
        let t = if trial && !grace.is_zero() {
            Some(Trial {
                from: from.clone(),
                automatic,
                until: now + grace,
            })
        } else {
            if trial {
                self.failback_delay = self.config.failback_delay;
            }
            None
        };
        let why = if from != to {
            format!("{to} is up and healthy (was {from})")
        } else {
            format!("{to} is up and healthy")
        };
        self.decide(if from != to { Level::Warn } else { Level::Info }, &why);
        Phase::Online(self.online_at(now, t))
    }

    /// The attempt `a` failed: what its purpose says comes next.
    fn fail_attempt(&mut self, a: Attempt, why: String, now: Instant) -> Phase {
        self.set_monitor(None);
        match a.purpose {
            // Connecting(P) ---- failed dial ----> Holdoff (redial) | walk
            Purpose::Reconnect => {
                let active = self.active.clone();
                self.episode.retries = self.episode.retries.saturating_add(1);
                let n = self.episode.retries;
                self.set_attempts(n);
                let max = self.max_retries(&active);
                if n >= max {
                    let why = format!("{why}; {n} of {max} attempts failed");
                    self.walk_next(Some(active), false, SwitchKind::Failover, why, now)
                } else {
                    self.stop_red(&why);
                    self.decide(Level::Info, &format!("{why}; attempt {n} of {max}"));
                    Phase::Holdoff {
                        until: now + self.holdoff(&active),
                        next: Next::Restart,
                    }
                }
            }
            // Switching(C) ---- failed ----> next candidate
            Purpose::Walk { anchor, kind } => self.walk_next(anchor, false, kind, why, now),
            // Switching(primary) trial ---- failed ----> Switching(B) rollback
            Purpose::Trial { from, automatic } => self.rollback(from, automatic, why, now),
            // Switching(B) rollback ---- failed ----> walk after B
            Purpose::Rollback => {
                self.walk_next(Some(a.link), false, SwitchKind::Failover, why, now)
            }
            // Switching(P) manual ---- failed ----> walk after P, pin released
            Purpose::Manual => {
                if self.pinned {
                    self.pinned = false;
                    self.log(
                        Level::Warn,
                        format!("{} failed to come up: pin released", a.link),
                    );
                }
                self.walk_next(Some(a.link), false, SwitchKind::Failover, why, now)
            }
        }
    }

    /// The next chain candidate after `anchor` not yet tried in this episode.
    fn walk_next(
        &mut self,
        anchor: Option<ProfileName>,
        skip_pretest: bool,
        kind: SwitchKind,
        why: String,
        now: Instant,
    ) -> Phase {
        let order: Vec<ProfileName> = self.config.links().map(|l| l.name.clone()).collect();
        let start = anchor
            .as_ref()
            .and_then(|a| order.iter().position(|n| n == a))
            .map_or(0, |k| k + 1);
        let next = order[start..]
            .iter()
            .chain(order[..start].iter())
            .find(|c| !self.episode.tried.contains(c))
            .cloned();
        match next {
            // walk ---- no candidate left ----> Holdoff (new pass from the primary)
            None => {
                self.stop_red(&why);
                let primary = self.config.primary.name.clone();
                self.decide(
                    Level::Warn,
                    &format!("{why}; every profile failed, new pass from {primary} after HOLDOFF"),
                );
                Phase::Holdoff {
                    until: now + self.holdoff(&primary),
                    next: Next::NewPass,
                }
            }
            Some(c) => {
                let test =
                    !skip_pretest && c != self.active && !self.shares_device(&c, &self.active);
                if test {
                    // walk ---- candidate C ----> Pretesting(C)
                    self.episode.tried.push(c.clone());
                    self.set_monitor(None);
                    self.out.push(Action::Pretest {
                        profile: c.clone(),
                        attempts: 1,
                    });
                    self.decide(Level::Warn, &why);
                    Phase::Pretesting {
                        candidate: c,
                        anchor,
                        kind,
                    }
                } else {
                    // walk ---- candidate C (untestable) ----> Switching(C)
                    self.bring_up(c, Purpose::Walk { anchor, kind }, kind, why)
                }
            }
        }
    }

    /// Activate `c` (or restart it when it is the active profile).
    fn bring_up(
        &mut self,
        c: ProfileName,
        purpose: Purpose,
        kind: SwitchKind,
        why: String,
    ) -> Phase {
        if !self.episode.tried.contains(&c) {
            self.episode.tried.push(c.clone());
        }
        self.set_monitor(None);
        let active = self.active.clone();
        self.hook(
            HookEvent::PreUp,
            Some(active.clone()),
            Some(c.clone()),
            &why,
        );
        let pending = if c == active {
            self.out.push(Action::Restart {
                profile: c.clone(),
                reason: why.clone(),
            });
            Pending::Restart
        } else {
            self.out.push(Action::Activate {
                to: c.clone(),
                reason: why.clone(),
                kind,
            });
            Pending::Activate
        };
        let level = match kind {
            SwitchKind::Failover
            | SwitchKind::Failback
            | SwitchKind::Rollback
            | SwitchKind::ChainPass
            | SwitchKind::Legacy => Level::Warn,
            SwitchKind::Manual => Level::Info,
        };
        self.decide(
            if pending == Pending::Restart {
                Level::Info
            } else {
                level
            },
            &why,
        );
        Phase::Connecting(Attempt::new(c, purpose, Some(pending)))
    }

    fn pretesting(
        &mut self,
        candidate: ProfileName,
        anchor: Option<ProfileName>,
        kind: SwitchKind,
        event: Event,
        now: Instant,
    ) -> Phase {
        match event {
            Event::PretestDone {
                profile,
                passed,
                failed,
                untestable,
            } if profile == candidate => {
                let n = passed + failed;
                if self.config.link(&candidate).is_none() {
                    // Pretesting(C) ---- result, C reloaded away ----> next candidate
                    let why = format!("skipping {candidate}: no longer in the chain");
                    self.walk_next(anchor, false, kind, why, now)
                } else if untestable || majority(passed, failed) {
                    // Pretesting(C) ---- passed ----> Switching(C)
                    let why = if untestable {
                        format!("{candidate} cannot be pre-tested: trying it")
                    } else {
                        format!("{candidate} pre-test passed ({passed}/{n})")
                    };
                    self.bring_up(candidate, Purpose::Walk { anchor, kind }, kind, why)
                } else {
                    // Pretesting(C) ---- failed ----> next candidate
                    let why = format!("skipping {candidate}: pre-test failed ({passed}/{n})");
                    self.walk_next(anchor, false, kind, why, now)
                }
            }
            // Pretesting ---- anything else ----> Pretesting (the old link is abandoned)
            Event::PretestDone { .. }
            | Event::Tick
            | Event::RedUp
            | Event::RedDown
            | Event::LinkLost { .. }
            | Event::Healthy
            | Event::Unhealthy { .. }
            | Event::ActivateDone { .. }
            | Event::RestartDone { .. }
            | Event::Start { .. }
            | Event::KeepconnectedRemoved
            | Event::Command(_)
            | Event::Terminate
            | Event::Reload(_) => Phase::Pretesting {
                candidate,
                anchor,
                kind,
            },
        }
    }

    fn online(&mut self, mut o: Online, event: Event, now: Instant) -> Phase {
        match event {
            // Online ---- Healthy ----> Online
            Event::Healthy => Phase::Online(o),
            // Online(P) ---- Unhealthy (blackhole) ----> walk
            Event::Unhealthy { reason } => self.online_failed(o, Fault::Blackhole, reason, now),
            // Online(P) ---- LinkLost ----> Connecting(P) (redial) | walk
            Event::LinkLost {
                reason,
                carrier_lost,
            } => {
                let fault = if carrier_lost {
                    Fault::NoCarrier
                } else {
                    Fault::Dropped
                };
                self.online_failed(o, fault, reason, now)
            }
            // Online(P) ---- RedDown ----> Connecting(P) (redial) | walk
            Event::RedDown => {
                self.online_failed(o, Fault::Dropped, "red/active vanished".into(), now)
            }
            Event::Tick => {
                if o.trial.as_ref().is_some_and(|t| now >= t.until) {
                    // Trial(primary) ---- FAILBACK_GRACE over ----> Online(primary)
                    o.trial = None;
                    self.failback_delay = self.config.failback_delay;
                    // The primary proved itself and the backup was left healthy, not
                    // dead: a new episode, so a later failure goes back to that backup
                    // rather than further down the chain. Failbacks stay bounded by the
                    // failback delay.
                    self.episode = Episode::fresh(&self.active.clone());
                    self.decide(
                        Level::Info,
                        &format!(
                            "healthy for {}s: failback confirmed",
                            self.config.failback_grace.as_secs()
                        ),
                    );
                    return Phase::Online(o);
                }
                if self.failback_allowed() && o.failback_at.is_some_and(|at| now >= at) {
                    // Online(B) ---- FAILBACK_DELAY over ----> FailbackTest | Switching(primary)
                    return self.start_failback(o, false, false);
                }
                Phase::Online(o)
            }
            // Online ---- others ----> Online
            Event::RedUp
            | Event::ActivateDone { .. }
            | Event::RestartDone { .. }
            | Event::PretestDone { .. }
            | Event::Start { .. }
            | Event::KeepconnectedRemoved
            | Event::Command(_)
            | Event::Terminate
            | Event::Reload(_) => Phase::Online(o),
        }
    }

    /// The online link failed.
    fn online_failed(&mut self, o: Online, fault: Fault, reason: String, now: Instant) -> Phase {
        let dead = self.active.clone();
        self.hook(HookEvent::Down, Some(dead.clone()), None, &reason);
        self.set_monitor(None);
        if let Some(t) = o.trial {
            // Trial(primary) ---- fault within GRACE ----> Switching(B) rollback
            return self.rollback(t.from, t.automatic, reason, now);
        }
        let stable = now.saturating_duration_since(o.since) >= self.stable_time(&dead);
        if stable {
            self.episode = Episode::fresh(&dead);
        }
        match fault {
            Fault::Blackhole => {
                let why = format!("{reason} on {dead}: up but no traffic");
                self.walk_next(Some(dead), false, SwitchKind::Failover, why, now)
            }
            Fault::NoCarrier => {
                let why = format!("{reason} on {dead}: the line is dead, no redial");
                self.walk_next(Some(dead), false, SwitchKind::Failover, why, now)
            }
            Fault::Dropped => {
                if !stable {
                    self.episode.retries = self.episode.retries.saturating_add(1);
                }
                let max = self.max_retries(&dead);
                if self.episode.retries >= max {
                    let why = format!("{reason} on {dead}; redials exhausted ({max})");
                    self.walk_next(Some(dead), false, SwitchKind::Failover, why, now)
                } else {
                    let why = format!("{reason} on {dead}: redialling");
                    self.bring_up(dead, Purpose::Reconnect, SwitchKind::Failover, why)
                }
            }
        }
    }

    /// Time to check the primary (or try it directly when it cannot be pre-tested).
    fn start_failback(&mut self, o: Online, manual: bool, force: bool) -> Phase {
        let primary = self.config.primary.name.clone();
        if force || self.shares_device(&primary, &self.active) {
            let why = if force {
                "manual failback (forced)".to_string()
            } else {
                format!("{primary} shares the device: trial failback")
            };
            return self.trial(o, manual, why);
        }
        let attempts = self.config.failback_attempts.max(1);
        self.out.push(Action::Pretest {
            profile: primary.clone(),
            attempts,
        });
        self.decide(
            Level::Info,
            &format!(
                "on {} long enough: pre-testing {primary} ({attempts}x)",
                self.active
            ),
        );
        Phase::FailbackTest {
            online: o,
            manual,
            fault: None,
        }
    }

    /// The trial failback from the online backup (`_o` is left behind).
    fn trial(&mut self, _o: Online, manual: bool, why: String) -> Phase {
        let from = self.active.clone();
        let primary = self.config.primary.name.clone();
        self.episode = Episode {
            tried: vec![from.clone(), primary.clone()],
            retries: 0,
        };
        let kind = if manual {
            SwitchKind::Manual
        } else {
            SwitchKind::Failback
        };
        self.bring_up(
            primary,
            Purpose::Trial {
                from,
                automatic: !manual,
            },
            kind,
            why,
        )
    }

    fn rollback(&mut self, from: ProfileName, automatic: bool, why: String, now: Instant) -> Phase {
        if automatic {
            let doubled = self.failback_delay.saturating_mul(2).max(MIN_GAP);
            self.failback_delay = doubled.min(self.config.failback_delay_max);
        }
        if self.config.link(&from).is_none() {
            // Trial ---- failed, backup reloaded away ----> walk
            let why = format!("failback failed ({why}); {from} is no longer in the chain");
            return self.walk_next(Some(from), false, SwitchKind::Failover, why, now);
        }
        let why = format!(
            "failback to {} failed ({why}): rolling back to {from}, next failback in {}s",
            self.config.primary.name,
            self.failback_gap().as_secs()
        );
        self.bring_up(from, Purpose::Rollback, SwitchKind::Rollback, why)
    }

    fn failback_test(
        &mut self,
        mut online: Online,
        manual: bool,
        mut fault: Option<(Fault, String)>,
        event: Event,
        now: Instant,
    ) -> Phase {
        let primary = self.config.primary.name.clone();
        match event {
            Event::PretestDone {
                profile,
                passed,
                failed,
                untestable,
            } if profile == primary => {
                if let Some((f, reason)) = fault {
                    // FailbackTest ---- result, but B failed meanwhile ----> as Online's fault
                    return self.online_failed(online, f, reason, now);
                }
                let n = passed + failed;
                if untestable || majority(passed, failed) {
                    // FailbackTest ---- majority ----> Switching(primary) trial
                    let why = if untestable {
                        format!("{primary} cannot be pre-tested: trial failback")
                    } else {
                        format!("{passed}/{n} pre-tests of {primary} passed: failing back")
                    };
                    self.trial(online, manual, why)
                } else {
                    // FailbackTest ---- minority ----> Online(B), retry after the delay
                    online.failback_at = Some(now + self.failback_gap());
                    self.decide(
                        Level::Info,
                        &format!(
                            "failback postponed: {passed}/{n} pre-tests of {primary} passed; next try in {}s",
                            self.failback_gap().as_secs()
                        ),
                    );
                    Phase::Online(online)
                }
            }
            // FailbackTest ---- Unhealthy ----> FailbackTest (remembered)
            Event::Unhealthy { reason } => {
                fault = Some((Fault::Blackhole, reason));
                Phase::FailbackTest {
                    online,
                    manual,
                    fault,
                }
            }
            // FailbackTest ---- LinkLost/RedDown ----> FailbackTest (remembered)
            Event::LinkLost {
                reason,
                carrier_lost,
            } => Phase::FailbackTest {
                online,
                manual,
                fault: Some((
                    if carrier_lost {
                        Fault::NoCarrier
                    } else {
                        Fault::Dropped
                    },
                    reason,
                )),
            },
            Event::RedDown => Phase::FailbackTest {
                online,
                manual,
                fault: Some((Fault::Dropped, "red/active vanished".into())),
            },
            // FailbackTest ---- Healthy ----> FailbackTest (a blackhole healed)
            Event::Healthy => {
                if matches!(fault, Some((Fault::Blackhole, _))) {
                    fault = None;
                }
                Phase::FailbackTest {
                    online,
                    manual,
                    fault,
                }
            }
            // FailbackTest ---- others ----> FailbackTest
            Event::PretestDone { .. }
            | Event::Tick
            | Event::RedUp
            | Event::ActivateDone { .. }
            | Event::RestartDone { .. }
            | Event::Start { .. }
            | Event::KeepconnectedRemoved
            | Event::Command(_)
            | Event::Terminate
            | Event::Reload(_) => Phase::FailbackTest {
                online,
                manual,
                fault,
            },
        }
    }

    fn holdoff_phase(&mut self, until: Instant, next: Next, event: Event, now: Instant) -> Phase {
        match event {
            Event::Tick if now >= until => match next {
                // Holdoff ---- HOLDOFF over ----> Connecting(P) (redial)
                Next::Restart => {
                    let active = self.active.clone();
                    self.bring_up(
                        active,
                        Purpose::Reconnect,
                        SwitchKind::Failover,
                        "HOLDOFF over: redialling".into(),
                    )
                }
                // Holdoff ---- HOLDOFF over ----> Switching(primary) (new pass)
                Next::NewPass => {
                    self.episode = Episode::default();
                    self.walk_next(
                        None,
                        true,
                        SwitchKind::ChainPass,
                        "HOLDOFF over: new pass from the primary".into(),
                        now,
                    )
                }
            },
            // Holdoff ---- anything else ----> Holdoff
            Event::Tick
            | Event::RedUp
            | Event::RedDown
            | Event::LinkLost { .. }
            | Event::Healthy
            | Event::Unhealthy { .. }
            | Event::ActivateDone { .. }
            | Event::RestartDone { .. }
            | Event::PretestDone { .. }
            | Event::Start { .. }
            | Event::KeepconnectedRemoved
            | Event::Command(_)
            | Event::Terminate
            | Event::Reload(_) => Phase::Holdoff { until, next },
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
