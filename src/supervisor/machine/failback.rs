//! Failback: the pre-test of the primary from an online backup, the trial failback with
//! its FAILBACK_GRACE, and the rollback with the doubled delay (the second diagram of the
//! [module documentation](super), right half).

use std::time::Instant;

use log::Level;

use super::{Action, Core, Episode, Fault, MIN_GAP, Online, Phase, Purpose, SwitchKind, World};
use crate::ipfire::profile::ProfileName;

impl Core {
    /// Time to check the primary (or try it directly when it cannot be pre-tested).
    pub(super) fn start_failback(&mut self, o: Online, manual: bool, force: bool) -> Phase {
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
    pub(super) fn trial(&mut self, _o: Online, manual: bool, why: String) -> Phase {
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

    pub(super) fn rollback(
        &mut self,
        from: ProfileName,
        automatic: bool,
        why: String,
        now: Instant,
    ) -> Phase {
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

    pub(super) fn failback_test(
        &mut self,
        mut online: Online,
        manual: bool,
        mut fault: Option<(Fault, String)>,
        event: World,
        now: Instant,
    ) -> Phase {
        let primary = self.config.primary.name.clone();
        match event {
            World::PretestDone { profile, result } if profile == primary => {
                if let Some((f, reason)) = fault {
                    // FailbackTest ---- result, but B failed meanwhile ----> as Online's fault
                    return self.online_failed(online, f, reason, now);
                }
                let (passed, n) = (result.passed, result.attempts());
                if result.go() {
                    // FailbackTest ---- majority ----> Switching(primary) trial
                    let why = if result.untestable {
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
            World::Unhealthy { reason } => {
                fault = Some((Fault::Blackhole, reason));
                Phase::FailbackTest {
                    online,
                    manual,
                    fault,
                }
            }
            // FailbackTest ---- LinkLost/RedDown ----> FailbackTest (remembered)
            World::LinkLost {
                reason,
                carrier_lost,
            } => Phase::FailbackTest {
                online,
                manual,
                fault: Some((Fault::link_lost(carrier_lost), reason)),
            },
            World::RedDown => Phase::FailbackTest {
                online,
                manual,
                fault: Some((Fault::Dropped, "red/active vanished".into())),
            },
            // FailbackTest ---- Healthy ----> FailbackTest (a blackhole healed)
            World::Healthy => {
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
            World::PretestDone { .. }
            | World::Tick
            | World::RedUp
            | World::ActivateDone { .. }
            | World::RestartDone { .. } => Phase::FailbackTest {
                online,
                manual,
                fault,
            },
        }
    }
}
