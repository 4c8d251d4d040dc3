//! Failback: the pre-test of the primary from an online backup, the trial failback with
//! its FAILBACK_GRACE, and the rollback with the doubled delay (the second diagram of the
//! [module documentation](super), right half).

use std::collections::VecDeque;
use std::time::Instant;

use log::Level;

use super::{
    Action, Core, Episode, Fault, MIN_GAP, Online, Phase, Proof, ProofReport, Purpose, SwitchKind,
    VOTE_MIN_SPACING, Vote, World,
};
use crate::ipfire::profile::ProfileName;

impl Core {
    /// Time to check the primary (or try it directly when it cannot be pre-tested).
    pub(super) fn start_failback(
        &mut self,
        o: Online,
        manual: bool,
        force: bool,
        now: Instant,
    ) -> Phase {
        let primary = self.config.primary.name.clone();
        if force || self.shares_device(&primary, &self.active) {
            let why = if force {
                "manual failback (forced)".to_string()
            } else {
                format!("{primary} shares the device: trial failback")
            };
            return self.trial(o, manual, why);
        }
        if self.config.failback_proof {
            return self.start_proof(o, manual, now);
        }
        let attempts = self.config.failback_attempts.max(1);
        self.out.push(Action::Pretest {
            profile: primary.clone(),
            attempts: 1,
            background: false,
        });
        let window = self.config.failback_vote_window.as_secs();
        self.decide(
            Level::Info,
            &format!(
                "on {} long enough: pre-testing {primary} ({attempts}x over {window}s)",
                self.active
            ),
        );
        Phase::FailbackTest {
            online: o,
            manual,
            fault: None,
            vote: Vote {
                passed: 0,
                failed: 0,
                left: attempts - 1,
                awaiting: true,
                next_at: None,
            },
        }
    }

    /// The time between two tests of the vote: the window split evenly, at least
    /// [`VOTE_MIN_SPACING`].
    fn vote_spacing(&self) -> std::time::Duration {
        let n = self.config.failback_attempts.max(2) - 1;
        (self.config.failback_vote_window / n).max(VOTE_MIN_SPACING)
    }

    /// The vote ended without a majority: back online on the backup, retried after the
    /// current delay (which does not double: a pre-test disturbs nothing).
    fn vote_lost(&mut self, mut online: Online, vote: Vote, now: Instant) -> Phase {
        let primary = self.config.primary.name.clone();
        online.failback_at = Some(now + self.failback_gap());
        let n = self.config.failback_attempts.max(1);
        self.decide(
            Level::Info,
            &format!(
                "failback postponed: {} of {n} pre-tests of {primary} passed ({} failed); next try in {}s",
                vote.passed,
                vote.failed,
                self.failback_gap().as_secs()
            ),
        );
        Phase::Online(online)
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
        online: Online,
        manual: bool,
        fault: Option<(Fault, String)>,
        mut vote: Vote,
        event: World,
        now: Instant,
    ) -> Phase {
        let primary = self.config.primary.name.clone();
        match event {
            World::PretestDone {
                profile,
                result,
                at,
            } if profile == primary && vote.awaiting => {
                vote.awaiting = false;
                if let Some((f, reason)) = fault {
                    // FailbackTest ---- result, but B failed meanwhile ----> as Online's fault
                    return self.online_failed(online, f, reason, now);
                }
                if result.untestable {
                    // FailbackTest ---- untestable ----> Switching(primary) trial
                    let why = format!("{primary} cannot be pre-tested: trial failback");
                    return self.trial(online, manual, why);
                }
                vote.passed += result.passed;
                vote.failed += result.failed;
                let n = self.config.failback_attempts.max(1);
                if u64::from(vote.failed) * 2 >= u64::from(n) {
                    // FailbackTest ---- no majority possible any more ----> Online(B)
                    return self.vote_lost(online, vote, now);
                }
                if vote.left == 0 {
                    if super::majority(vote.passed, vote.failed) {
                        // FailbackTest ---- majority over the window ----> Switching(primary)
                        let why = format!(
                            "{}/{n} pre-tests of {primary} over {}s passed: failing back",
                            vote.passed,
                            self.config.failback_vote_window.as_secs()
                        );
                        return self.trial(online, manual, why);
                    }
                    return self.vote_lost(online, vote, now);
                }
                // FailbackTest ---- one answer ----> FailbackTest (next test scheduled,
                // spaced from when this one finished)
                vote.next_at = Some(at.min(now) + self.vote_spacing());
                Phase::FailbackTest {
                    online,
                    manual,
                    fault,
                    vote,
                }
            }
            World::Tick if !vote.awaiting && vote.next_at.is_some_and(|at| now >= at) => {
                if !manual && !self.failback_allowed() {
                    // FailbackTest ---- auto off / pinned meanwhile ----> Online(B)
                    let mut online = online;
                    online.failback_at = Some(now + self.failback_gap());
                    self.decide(Level::Info, "failback vote cancelled: failback paused");
                    return Phase::Online(online);
                }
                // FailbackTest ---- next test due ----> FailbackTest (Pretest sent)
                self.out.push(Action::Pretest {
                    profile: primary,
                    attempts: 1,
                    background: false,
                });
                vote.left -= 1;
                vote.awaiting = true;
                vote.next_at = None;
                Phase::FailbackTest {
                    online,
                    manual,
                    fault,
                    vote,
                }
            }
            // FailbackTest ---- Unhealthy ----> as Online's fault (the vote is cancelled);
            // remembered while a test is outstanding
            World::Unhealthy { reason } => {
                self.vote_fault(online, manual, vote, (Fault::Blackhole, reason), now)
            }
            // FailbackTest ---- LinkLost/RedDown ----> as Online's fault (likewise)
            World::LinkLost {
                reason,
                carrier_lost,
            } => self.vote_fault(
                online,
                manual,
                vote,
                (Fault::link_lost(carrier_lost), reason),
                now,
            ),
            World::RedDown => self.vote_fault(
                online,
                manual,
                vote,
                (Fault::Dropped, "red/active vanished".into()),
                now,
            ),
            // FailbackTest ---- Healthy ----> FailbackTest (a blackhole healed)
            World::Healthy => {
                let fault = fault.filter(|(f, _)| *f != Fault::Blackhole);
                Phase::FailbackTest {
                    online,
                    manual,
                    fault,
                    vote,
                }
            }
            // FailbackTest ---- others ----> FailbackTest
            World::PretestDone { .. }
            | World::Proof { .. }
            | World::Tick
            | World::Suspect
            | World::RedUp
            | World::ActivateDone { .. }
            | World::RestartDone { .. } => Phase::FailbackTest {
                online,
                manual,
                fault,
                vote,
            },
        }
    }

    /// The backup failed during the vote: handled at once (the vote is cancelled), or
    /// with the answer when a test is outstanding.
    fn vote_fault(
        &mut self,
        online: Online,
        manual: bool,
        vote: Vote,
        fault: (Fault, String),
        now: Instant,
    ) -> Phase {
        if vote.awaiting {
            return Phase::FailbackTest {
                online,
                manual,
                fault: Some(fault),
                vote,
            };
        }
        let (f, reason) = fault;
        self.online_failed(
            online,
            f,
            format!("{reason} (failback vote cancelled)"),
            now,
        )
    }

    // -----------------------------------------------------------------------------------
    // The end-to-end proof (DESIGN.md 5.1): the primary beside the backup, probed through
    // its own session for the vote window; switched to only after it carried them.

    /// Online(B) ---- FAILBACK_DELAY ----> Proving(primary) (ProofStart)
    fn start_proof(&mut self, online: Online, manual: bool, now: Instant) -> Phase {
        let primary = self.config.primary.name.clone();
        self.out.push(Action::ProofStart {
            profile: primary.clone(),
        });
        self.decide(
            Level::Info,
            &format!(
                "on {} long enough: proving {primary} end to end beside it for {}s",
                self.active,
                self.config.failback_vote_window.as_secs()
            ),
        );
        Phase::Proving(Proof {
            online,
            manual,
            up_by: now + self.config.connect_timeout,
            window_end: None,
            sliding: false,
            rounds: VecDeque::new(),
        })
    }

    /// Tears the proof session down when `phase` is `Proving` (before whatever leaves it).
    pub(super) fn stop_proof(&mut self, phase: &Phase) {
        if matches!(phase, Phase::Proving(_)) {
            self.out.push(Action::ProofStop {
                profile: self.config.primary.name.clone(),
            });
        }
    }

    /// The proof failed: nothing was switched. `double`: the session itself could not
    /// come up (or died): the line is dead, so the next attempt waits the doubled delay, as
    /// after a failed trial (each attempt costs a dial at the ISP's AC). A session that came
    /// up but did not carry the probes (a blackhole beyond the AC) cost the LAN nothing:
    /// the next proof comes after the current delay, so a restored primary is found within
    /// FAILBACK_DELAY + the window (issue 13's figure), not after hours of doubling.
    fn proof_failed(&mut self, p: Proof, why: String, double: bool, now: Instant) -> Phase {
        self.out.push(Action::ProofStop {
            profile: self.config.primary.name.clone(),
        });
        if double && !p.manual {
            let doubled = self.failback_delay.saturating_mul(2).max(MIN_GAP);
            self.failback_delay = doubled.min(self.config.failback_delay_max);
        }
        let mut online = p.online;
        online.failback_at = Some(now + self.failback_gap());
        self.decide(
            Level::Warn,
            &format!(
                "failback proof of {} failed ({why}): staying on {}, next try in {}s",
                self.config.primary.name,
                self.active,
                self.failback_gap().as_secs()
            ),
        );
        Phase::Online(online)
    }

    /// Proving ---- carried the probes for the (last) window ----> ProofStop,
    /// Switching(primary) (the IPFire way, with FAILBACK_GRACE)
    fn proof_carried(&mut self, p: Proof) -> Phase {
        let primary = self.config.primary.name.clone();
        self.out.push(Action::ProofStop {
            profile: primary.clone(),
        });
        let (ok, bad) = p.tally();
        let why = format!(
            "{primary} carried {ok} of {} probe rounds through its own session over the last {}s: failing back",
            ok + bad,
            self.config.failback_vote_window.as_secs()
        );
        self.trial(p.online, p.manual, why)
    }

    pub(super) fn proving(&mut self, mut p: Proof, event: World, now: Instant) -> Phase {
        let primary = self.config.primary.name.clone();
        match event {
            World::Proof { profile, report } if profile == primary => {
                match report {
                    // Proving ---- session up ----> Proving (the window starts)
                    ProofReport::Up { iface } => {
                        if p.window_end.is_none() {
                            p.window_end = Some(now + self.config.failback_vote_window);
                            self.log(
                            Level::Info,
                            format!("proof session of {primary} is up on {iface}: probing through it"),
                        );
                        }
                        Phase::Proving(p)
                    }
                    // Proving ---- probe round ----> Proving (counted; while the window
                    // slides, a majority of the last window switches at once)
                    ProofReport::Round { ok } => {
                        if p.window_end.is_none() {
                            return Phase::Proving(p);
                        }
                        p.record(now, ok, self.config.failback_vote_window);
                        if p.sliding && p.carried() {
                            return self.proof_carried(p);
                        }
                        Phase::Proving(p)
                    }
                    // Proving ---- session failed ----> Online(B) (ProofStop, delay doubled)
                    ProofReport::Failed { reason } => self.proof_failed(p, reason, true, now),
                }
            }
            World::Tick => match p.window_end {
                // Proving ---- not up in time ----> Online(B) (ProofStop, delay doubled)
                None if now >= p.up_by => {
                    let why = format!(
                        "no session within {}s",
                        self.config.connect_timeout.as_secs()
                    );
                    self.proof_failed(p, why, true, now)
                }
                Some(end) if now >= end => {
                    if p.carried() {
                        return self.proof_carried(p);
                    }
                    // Proving ---- no majority yet, but the last round passed ----> Proving
                    // (the window slides for one more window at most: a primary restored
                    // during the proof is found by this proof, not by the next one a
                    // FAILBACK_DELAY later)
                    if !p.sliding && p.last_ok() {
                        p.sliding = true;
                        p.window_end = Some(end + self.config.failback_vote_window);
                        return Phase::Proving(p);
                    }
                    // Proving ---- did not carry them ----> Online(B)
                    let (ok, bad) = p.tally();
                    let why = format!("{ok} of {} probe rounds through it passed", ok + bad);
                    self.proof_failed(p, why, false, now)
                }
                // Proving ---- early Tick ----> Proving
                None | Some(_) => Phase::Proving(p),
            },
            // Proving ---- the backup failed ----> ProofStop, as Online's fault
            World::Unhealthy { reason } => self.proof_fault(p, Fault::Blackhole, reason, now),
            World::LinkLost {
                reason,
                carrier_lost,
            } => self.proof_fault(p, Fault::link_lost(carrier_lost), reason, now),
            World::RedDown => {
                self.proof_fault(p, Fault::Dropped, "red/active vanished".into(), now)
            }
            // Proving ---- others (stale reports too) ----> Proving
            World::Proof { .. }
            | World::Healthy
            | World::Suspect
            | World::RedUp
            | World::PretestDone { .. }
            | World::ActivateDone { .. }
            | World::RestartDone { .. } => Phase::Proving(p),
        }
    }

    fn proof_fault(&mut self, p: Proof, f: Fault, reason: String, now: Instant) -> Phase {
        self.out.push(Action::ProofStop {
            profile: self.config.primary.name.clone(),
        });
        self.online_failed(
            p.online,
            f,
            format!("{reason} (failback proof cancelled)"),
            now,
        )
    }
}
