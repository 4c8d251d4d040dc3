//! Control commands (`reconnect`, `failover P`, `failback [--force]`, `auto on|off`), in
//! every phase: each gets exactly one [`Action::Reply`](super::Action::Reply).

use std::time::Instant;

use log::Level;

use super::{Action, Attempt, Command, Core, Episode, Fault, Pending, Phase, Purpose, SwitchKind};
use crate::ipfire::profile::ProfileName;

impl Core {
    pub(super) fn command(&mut self, phase: Phase, cmd: Command, now: Instant) -> Phase {
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
                self.pause_proof(phase, now)
            }
            Command::Reconnect => match phase {
                // Online ---- reconnect ----> Connecting (the link dropped: redial)
                Phase::Online(o) => {
                    self.reply(true, "reconnecting");
                    self.online_failed(o, Fault::Dropped, "reconnect requested".into(), now)
                }
                // FailbackTest ---- reconnect ----> Connecting (the vote is cancelled; the
                // answer of a test still running is stale when it comes)
                Phase::FailbackTest { online, .. } => {
                    self.reply(true, "reconnecting (failback vote cancelled)");
                    self.online_failed(online, Fault::Dropped, "reconnect requested".into(), now)
                }
                // Proving ---- reconnect ----> ProofStop, Connecting
                Phase::Proving(p) => {
                    self.out.push(Action::ProofStop {
                        profile: self.config.primary.name.clone(),
                    });
                    self.reply(true, "reconnecting (failback proof cancelled)");
                    self.online_failed(p.online, Fault::Dropped, "reconnect requested".into(), now)
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
                    return self.pause_proof(phase, now);
                }
                self.reply(true, &format!("switching to {p}"));
                let why = format!("manual failover to {p}");
                // Proving ---- failover P ----> ProofStop, Switching(P)
                self.stop_proof(&phase);
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
                        self.start_failback(o, true, force, now)
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
                    // Proving ---- failback --force ----> ProofStop, Switching(primary)
                    Phase::Proving(p) if force => {
                        self.out.push(Action::ProofStop {
                            profile: primary.clone(),
                        });
                        self.reply(true, &format!("failing back to {primary}"));
                        self.trial(p.online, true, "manual failback".into())
                    }
                    // Proving ---- failback ----> Proving (already proving)
                    p @ Phase::Proving(_) => {
                        self.reply(true, &format!("already proving {primary}"));
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
    pub(super) fn manual_switch(&mut self, phase: Phase, to: ProfileName, why: String) -> Phase {
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

    /// Automatic failback was paused (`auto off`, a pin, FAILBACK_ENABLED=off reloaded)
    /// during an automatic proof: Proving ---- paused ----> ProofStop, Online(B).
    pub(super) fn pause_proof(&mut self, phase: Phase, now: Instant) -> Phase {
        match phase {
            Phase::Proving(p) if !p.manual && !self.failback_allowed() => {
                self.out.push(Action::ProofStop {
                    profile: self.config.primary.name.clone(),
                });
                let mut online = p.online;
                online.failback_at = Some(now + self.failback_gap());
                self.decide(Level::Info, "failback proof cancelled: failback paused");
                Phase::Online(online)
            }
            other => other,
        }
    }
}
