//! The core's internal state: the phases and what they carry (the attempt being brought
//! up, the online link, the chain walk's episode), with the labels `status` shows.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::SwitchKind;
use crate::ipfire::profile::ProfileName;

/// An Activate/Restart not answered yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Pending {
    Activate,
    Restart,
}

/// What a connection attempt is for: decides what happens when it fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Purpose {
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
pub(super) struct Attempt {
    pub(super) link: ProfileName,
    pub(super) purpose: Purpose,
    /// `Some` until the shell answered the Activate/Restart; no deadline meanwhile.
    pub(super) awaiting: Option<Pending>,
    pub(super) deadline: Option<Instant>,
    pub(super) red_up: bool,
    pub(super) healthy: bool,
}

impl Attempt {
    pub(super) fn new(link: ProfileName, purpose: Purpose, awaiting: Option<Pending>) -> Attempt {
        Attempt {
            link,
            purpose,
            awaiting,
            deadline: None,
            red_up: false,
            healthy: false,
        }
    }

    pub(super) fn due(&self, now: Instant) -> bool {
        self.awaiting.is_none() && self.deadline.is_some_and(|d| now >= d)
    }
}

/// A trial failback being verified for FAILBACK_GRACE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Trial {
    pub(super) from: ProfileName,
    pub(super) automatic: bool,
    pub(super) until: Instant,
}

/// The active link is up and monitored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Online {
    pub(super) since: Instant,
    pub(super) trial: Option<Trial>,
    /// On a backup: when to check the primary.
    pub(super) failback_at: Option<Instant>,
}

/// The timed failback vote (DESIGN.md 5.1): FAILBACK_ATTEMPTS single pre-tests of the
/// primary, spread evenly over FAILBACK_VOTE_WINDOW, decided by a strict majority.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Vote {
    pub(super) passed: u32,
    pub(super) failed: u32,
    /// Tests still to send after the outstanding or last one.
    pub(super) left: u32,
    /// A pre-test was sent and is not answered yet.
    pub(super) awaiting: bool,
    /// When the next test is due (`None` while one is outstanding).
    pub(super) next_at: Option<Instant>,
}

/// The end-to-end failback proof (DESIGN.md 5.1): the primary brought up beside the
/// online backup, probed through its own session for FAILBACK_VOTE_WINDOW.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Proof {
    pub(super) online: Online,
    pub(super) manual: bool,
    /// The session must be up by then (FAILOVER_CONNECT_TIMEOUT).
    pub(super) up_by: Instant,
    /// Set when the session came up: the end of the window (of the slide once `sliding`).
    pub(super) window_end: Option<Instant>,
    /// The window ended without a majority but with a passing last round: it slides for
    /// one more window, deciding at every round.
    pub(super) sliding: bool,
    /// The probe rounds through the session within the last window (when, passed),
    /// oldest first: the vote slides with them once the window has ended.
    pub(super) rounds: VecDeque<(Instant, bool)>,
}

impl Proof {
    /// Records a round and forgets those older than `window` before it.
    pub(super) fn record(&mut self, at: Instant, ok: bool, window: Duration) {
        self.rounds.push_back((at, ok));
        while let Some(&(t, _)) = self.rounds.front() {
            if at.saturating_duration_since(t) <= window {
                break;
            }
            self.rounds.pop_front();
        }
    }

    /// Rounds of the last window that passed and failed.
    pub(super) fn tally(&self) -> (u32, u32) {
        let ok = self.rounds.iter().filter(|(_, ok)| *ok).count();
        let n = self.rounds.len();
        let clamp = |x: usize| u32::try_from(x).unwrap_or(u32::MAX);
        (clamp(ok), clamp(n - ok))
    }

    /// The last round passed.
    pub(super) fn last_ok(&self) -> bool {
        self.rounds.back().is_some_and(|(_, ok)| *ok)
    }

    /// The session carried the probes: a majority of the last window, the last one too.
    pub(super) fn carried(&self) -> bool {
        let (ok, bad) = self.tally();
        ok > 0 && super::majority(ok, bad) && self.last_ok()
    }
}

/// How an online link failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fault {
    /// Up, but no traffic: straight to the chain.
    Blackhole,
    /// The line dropped: redial first.
    Dropped,
    /// No carrier on the device: nothing to redial, straight to the chain.
    NoCarrier,
}

impl Fault {
    /// The fault a `LinkLost` reports.
    pub(super) fn link_lost(carrier_lost: bool) -> Fault {
        if carrier_lost {
            Fault::NoCarrier
        } else {
            Fault::Dropped
        }
    }
}

/// What follows a HOLDOFF (failover on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Next {
    Restart,
    NewPass,
}

/// What follows a HOLDOFF (failover off).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum LegacyNext {
    Restart,
    Switch(ProfileName),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Phase {
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
        vote: Vote,
    },
    /// Failover on, on a backup: the primary's proof session runs beside it.
    Proving(Proof),
    /// Failover on: HOLDOFF.
    Holdoff { until: Instant, next: Next },
    /// `Exit` was emitted.
    Exited,
}

impl Phase {
    pub(super) fn label(&self, active: &ProfileName, primary: &ProfileName) -> String {
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
            Phase::Proving(_) => format!("Proving({primary})"),
            Phase::Exited => "Exited".into(),
        }
    }

    pub(super) fn kind(&self) -> &'static str {
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
            Phase::Proving(_) => "proving",
            Phase::Exited => "exited",
        }
    }

    pub(super) fn busy(&self) -> bool {
        match self {
            Phase::LegacyWait(a) | Phase::Connecting(a) => a.awaiting.is_some(),
            Phase::Idle
            | Phase::LegacyHoldoff { .. }
            | Phase::Pretesting { .. }
            | Phase::Online(_)
            | Phase::FailbackTest { .. }
            | Phase::Proving(_)
            | Phase::Holdoff { .. }
            | Phase::Exited => false,
        }
    }

    pub(super) fn is_legacy(&self) -> bool {
        match self {
            Phase::LegacyWait(_) | Phase::LegacyHoldoff { .. } => true,
            Phase::Idle
            | Phase::Connecting(_)
            | Phase::Pretesting { .. }
            | Phase::Online(_)
            | Phase::FailbackTest { .. }
            | Phase::Proving(_)
            | Phase::Holdoff { .. }
            | Phase::Exited => false,
        }
    }
}

/// Profiles tried and redials counted since a link last stayed online long enough.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(super) struct Episode {
    pub(super) tried: Vec<ProfileName>,
    pub(super) retries: u32,
}

impl Episode {
    pub(super) fn fresh(first: &ProfileName) -> Episode {
        Episode {
            tried: vec![first.clone()],
            retries: 0,
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct Transition {
    pub(super) at: Instant,
    pub(super) from: String,
    pub(super) to: String,
    pub(super) reason: String,
}
