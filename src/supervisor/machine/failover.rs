//! Failover on: bringing a link up, succeeding or failing an attempt, walking the chain
//! with pre-tests, the online link and its faults, HOLDOFF (the second diagram of the
//! [module documentation](super), left half).

use std::time::Instant;

use log::Level;

use super::{
    Action, Attempt, Core, Episode, Fault, HookEvent, Next, Online, Pending, Phase, Purpose,
    SwitchKind, Trial, World,
};
use crate::ipfire::profile::ProfileName;

impl Core {
    pub(super) fn connecting(&mut self, mut a: Attempt, event: World, now: Instant) -> Phase {
        match event {
            // Switching(C) ---- ActivateDone(ok) ----> Switching(C) (connect timeout runs)
            // Switching(C) ---- ActivateDone(failed) ----> next candidate / rollback / holdoff
            World::ActivateDone { profile, ok, error }
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
            World::RestartDone { ok, error } if a.awaiting == Some(Pending::Restart) => {
                a.awaiting = None;
                if !ok {
                    let e = error.unwrap_or_default();
                    return self.fail_attempt(a, format!("network restart failed: {e}"), now);
                }
                self.set_monitor(Some(a.link.clone()));
                a.deadline = Some(now + self.config.connect_timeout);
                Phase::Connecting(a)
            }
            // Connecting ---- stale answer, suspect round ----> Connecting
            World::ActivateDone { .. }
            | World::RestartDone { .. }
            | World::PretestDone { .. }
            | World::Proof { .. }
            | World::Suspect => Phase::Connecting(a),
            // Connecting(P) ---- RedUp (+Healthy) ----> Online(P)
            World::RedUp => {
                a.red_up = true;
                if a.awaiting.is_none() && a.healthy {
                    self.succeed(a, now)
                } else {
                    Phase::Connecting(a)
                }
            }
            // Connecting(P) ---- Healthy (+RedUp) ----> Online(P)
            World::Healthy => {
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
            World::Unhealthy { reason } => {
                if a.awaiting.is_none() && a.red_up {
                    self.fail_attempt(a, format!("up but {reason}"), now)
                } else {
                    a.healthy = false;
                    Phase::Connecting(a)
                }
            }
            // Connecting(P) ---- LinkLost ----> failed attempt
            World::LinkLost { reason, .. } => {
                if a.awaiting.is_none() {
                    self.fail_attempt(a, reason, now)
                } else {
                    Phase::Connecting(a)
                }
            }
            // Connecting(P) ---- RedDown after RedUp ----> failed attempt
            World::RedDown => {
                if a.awaiting.is_none() && a.red_up {
                    self.fail_attempt(a, "red/active vanished".into(), now)
                } else {
                    a.red_up = false;
                    Phase::Connecting(a)
                }
            }
            // Connecting(P) ---- connect timeout ----> failed attempt
            World::Tick => {
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
        }
    }

    /// The attempt `a` came up healthy.
    pub(super) fn succeed(&mut self, a: Attempt, now: Instant) -> Phase {
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
    pub(super) fn fail_attempt(&mut self, a: Attempt, why: String, now: Instant) -> Phase {
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
    pub(super) fn walk_next(
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
                let fresh = if test {
                    self.fresh_result(&c, now)
                } else {
                    None
                };
                if let Some((result, age)) = fresh {
                    if result.go() {
                        // walk ---- candidate C with a fresh pass ----> Switching(C)
                        let why = format!("{why}; {c} passed its pre-test {age}s ago");
                        return self.bring_up(c, Purpose::Walk { anchor, kind }, kind, why);
                    }
                    // walk ---- candidate C with a fresh failure ----> next candidate
                    self.episode.tried.push(c.clone());
                    let why = format!("{why}; skipping {c}: its pre-test failed {age}s ago");
                    return self.walk_next(anchor, skip_pretest, kind, why, now);
                }
                if test {
                    // walk ---- candidate C ----> Pretesting(C)
                    self.episode.tried.push(c.clone());
                    self.set_monitor(None);
                    self.out.push(Action::Pretest {
                        profile: c.clone(),
                        attempts: 1,
                        background: false,
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
    pub(super) fn bring_up(
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

    pub(super) fn pretesting(
        &mut self,
        candidate: ProfileName,
        anchor: Option<ProfileName>,
        kind: SwitchKind,
        event: World,
        now: Instant,
    ) -> Phase {
        let Some(result) = event.pretest_of(&candidate) else {
            // Pretesting ---- anything else ----> Pretesting (the old link is abandoned)
            return Phase::Pretesting {
                candidate,
                anchor,
                kind,
            };
        };
        let (passed, n) = (result.passed, result.attempts());
        if self.config.link(&candidate).is_none() {
            // Pretesting(C) ---- result, C reloaded away ----> next candidate
            let why = format!("skipping {candidate}: no longer in the chain");
            self.walk_next(anchor, false, kind, why, now)
        } else if result.go() {
            // Pretesting(C) ---- passed ----> Switching(C)
            let why = if result.untestable {
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

    pub(super) fn online(&mut self, mut o: Online, event: World, now: Instant) -> Phase {
        match event {
            // Online ---- Healthy ----> Online
            World::Healthy => Phase::Online(o),
            // Online ---- Suspect ----> Online (the chain pre-tested at once)
            World::Suspect => {
                self.suspect_round(&o, now);
                Phase::Online(o)
            }
            // Online(P) ---- Unhealthy (blackhole) ----> walk
            World::Unhealthy { reason } => self.online_failed(o, Fault::Blackhole, reason, now),
            // Online(P) ---- LinkLost ----> Connecting(P) (redial) | walk
            World::LinkLost {
                reason,
                carrier_lost,
            } => self.online_failed(o, Fault::link_lost(carrier_lost), reason, now),
            // Online(P) ---- RedDown ----> Connecting(P) (redial) | walk
            World::RedDown => {
                self.online_failed(o, Fault::Dropped, "red/active vanished".into(), now)
            }
            World::Tick => {
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
                    return self.start_failback(o, false, false, now);
                }
                // Online ---- FAILOVER_PRETEST_INTERVAL over ----> Online (background round)
                self.background_tick(&o, now);
                Phase::Online(o)
            }
            // Online ---- others ----> Online
            World::RedUp
            | World::ActivateDone { .. }
            | World::RestartDone { .. }
            | World::PretestDone { .. }
            | World::Proof { .. } => Phase::Online(o),
        }
    }

    /// The online link failed.
    pub(super) fn online_failed(
        &mut self,
        o: Online,
        fault: Fault,
        reason: String,
        now: Instant,
    ) -> Phase {
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

    pub(super) fn holdoff_phase(
        &mut self,
        until: Instant,
        next: Next,
        event: World,
        now: Instant,
    ) -> Phase {
        if !event.is_tick_after(until, now) {
            // Holdoff ---- anything else ----> Holdoff
            return Phase::Holdoff { until, next };
        }
        match next {
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
        }
    }
}
