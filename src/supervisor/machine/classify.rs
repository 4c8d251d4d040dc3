//! The event classifier: every [`Event`] is sorted here, once, into what `dispatch`
//! handles for every phase alike (the control events) and what the phase methods decide
//! on ([`World`]). A new `Event` variant is added here; a new `World` variant makes each
//! phase's match fail to compile until it is handled.

use std::time::Instant;

use super::{Command, Config, Event, ProofReport, majority};
use crate::ipfire::profile::ProfileName;

/// An [`Event`], sorted.
pub(super) enum Class {
    /// SIGTERM.
    Terminate,
    /// `red/keepconnected` removed by the user.
    Disconnect,
    /// A new config.
    Reload(Box<Config>),
    /// A control command.
    Command(Command),
    /// No pppd while waiting on a pppd type (see [`Event::NoPppd`]).
    NoPppd,
    /// The supervisor starts (only `Idle` takes it).
    Start {
        active: ProfileName,
        red_active: bool,
        keepconnected: Option<u32>,
    },
    /// What the world reports: the phase methods decide.
    World(World),
}

/// The events a phase method decides on.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum World {
    Tick,
    RedUp,
    RedDown,
    LinkLost {
        reason: String,
        carrier_lost: bool,
    },
    Healthy,
    Suspect,
    Unhealthy {
        reason: String,
    },
    ActivateDone {
        profile: ProfileName,
        ok: bool,
        error: Option<String>,
    },
    RestartDone {
        ok: bool,
        error: Option<String>,
    },
    PretestDone {
        profile: ProfileName,
        result: PretestResult,
        /// When the test finished.
        at: Instant,
    },
    Proof {
        profile: ProfileName,
        report: ProofReport,
    },
}

/// The answer to a pre-test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct PretestResult {
    pub(super) passed: u32,
    pub(super) failed: u32,
    pub(super) untestable: bool,
}

impl PretestResult {
    /// Passed by a strict majority, or cannot be tested (then it is tried).
    pub(super) fn go(self) -> bool {
        self.untestable || majority(self.passed, self.failed)
    }

    pub(super) fn attempts(self) -> u32 {
        self.passed + self.failed
    }
}

impl Event {
    pub(super) fn classify(self) -> Class {
        match self {
            Event::Terminate => Class::Terminate,
            Event::KeepconnectedRemoved => Class::Disconnect,
            Event::Reload(c) => Class::Reload(c),
            Event::Command(c) => Class::Command(c),
            Event::Start {
                active,
                red_active,
                keepconnected,
            } => Class::Start {
                active,
                red_active,
                keepconnected,
            },
            Event::NoPppd => Class::NoPppd,
            Event::Tick => Class::World(World::Tick),
            Event::RedUp => Class::World(World::RedUp),
            Event::RedDown => Class::World(World::RedDown),
            Event::LinkLost {
                reason,
                carrier_lost,
            } => Class::World(World::LinkLost {
                reason,
                carrier_lost,
            }),
            Event::Healthy => Class::World(World::Healthy),
            Event::Suspect { .. } => Class::World(World::Suspect),
            Event::Unhealthy { reason } => Class::World(World::Unhealthy { reason }),
            Event::ActivateDone { profile, ok, error } => {
                Class::World(World::ActivateDone { profile, ok, error })
            }
            Event::RestartDone { ok, error } => Class::World(World::RestartDone { ok, error }),
            Event::Proof { profile, report } => Class::World(World::Proof { profile, report }),
            Event::PretestDone {
                profile,
                at,
                passed,
                failed,
                untestable,
            } => Class::World(World::PretestDone {
                profile,
                result: PretestResult {
                    passed,
                    failed,
                    untestable,
                },
                at,
            }),
        }
    }
}

impl World {
    /// The deadline `until` has passed (a phase that only waits for it ignores the rest).
    pub(super) fn is_tick_after(&self, until: Instant, now: Instant) -> bool {
        *self == World::Tick && now >= until
    }

    /// The result of the pre-test of `profile` (a phase that only waits for it ignores
    /// the rest, stale answers included).
    pub(super) fn pretest_of(&self, profile: &ProfileName) -> Option<PretestResult> {
        match self {
            World::PretestDone {
                profile: p, result, ..
            } if p == profile => Some(*result),
            World::PretestDone { .. }
            | World::Proof { .. }
            | World::Tick
            | World::RedUp
            | World::RedDown
            | World::LinkLost { .. }
            | World::Healthy
            | World::Suspect
            | World::Unhealthy { .. }
            | World::ActivateDone { .. }
            | World::RestartDone { .. } => None,
        }
    }
}
