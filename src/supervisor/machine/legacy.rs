//! Failover off (`FAILOVER_ENABLED=off`): IPFire's connectd, decision for decision (the
//! first diagram of the [module documentation](super)): wait 160 s for `red/active`, count
//! the attempts in `red/keepconnected`, HOLDOFF, redial; after MAXRETRIES the profile's own
//! BACKUPPROFILE, once; exit as soon as RED is up.

use std::time::Instant;

use log::Level;

use super::{
    Action, Attempt, Core, Episode, LEGACY_CONNECT_WAIT, LegacyNext, Pending, Phase, Purpose,
    SwitchKind, World,
};

impl Core {
    pub(super) fn legacy_wait(&mut self, mut a: Attempt, event: World, now: Instant) -> Phase {
        match event {
            // Waiting ---- ActivateDone(ok) ----> Waiting (160 s from now)
            // Waiting ---- ActivateDone(failed) ----> Holdoff | Exited (a failed attempt)
            World::ActivateDone { profile, ok, error }
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
            World::RestartDone { ok, error } if a.awaiting == Some(Pending::Restart) => {
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
            World::ActivateDone { .. } | World::RestartDone { .. } => Phase::LegacyWait(a),
            // Waiting ---- RedUp ----> Exited ("System is online. Exiting.")
            World::RedUp => {
                if a.awaiting.is_some() {
                    a.red_up = true;
                    Phase::LegacyWait(a)
                } else {
                    self.legacy_online(now)
                }
            }
            // Waiting ---- RedDown ----> Waiting
            World::RedDown => {
                a.red_up = false;
                Phase::LegacyWait(a)
            }
            // Waiting ---- LinkLost ("no pppd running") ----> Holdoff | Exited
            World::LinkLost { reason, .. } => {
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
            World::Tick => {
                if a.due(now) {
                    self.legacy_fail(
                        format!("no red/active within {}s", LEGACY_CONNECT_WAIT.as_secs()),
                        now,
                    )
                } else {
                    Phase::LegacyWait(a)
                }
            }
            // Waiting ---- health/pre-test ----> Waiting
            World::Healthy
            | World::Suspect
            | World::Unhealthy { .. }
            | World::PretestDone { .. }
            | World::Proof { .. } => Phase::LegacyWait(a),
        }
    }

    pub(super) fn legacy_online(&mut self, now: Instant) -> Phase {
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
    pub(super) fn legacy_fail(&mut self, why: String, now: Instant) -> Phase {
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

    pub(super) fn legacy_holdoff(
        &mut self,
        until: Instant,
        next: LegacyNext,
        event: World,
        now: Instant,
    ) -> Phase {
        if !event.is_tick_after(until, now) {
            // Holdoff ---- anything else ----> Holdoff
            return Phase::LegacyHoldoff { until, next };
        }
        match next {
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
        }
    }
}
