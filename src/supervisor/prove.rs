// Copyright (C) 2026 The connectd developers
// SPDX-License-Identifier: GPL-3.0-or-later

//! Prove before moving (DESIGN.md 5.1, issue 13), as the effects executor runs it: the
//! pre-tests handed to the worker thread and their answers, and the failback proof session
//! beside RED (started, polled, torn down). Both run off the loop; their results come
//! back to the core as events at the loop's next turn.

use std::time::Instant;

use crate::ipfire::profile::ProfileName;
use crate::ipfire::state;
use crate::uplink::health;
use crate::uplink::pretest::{Done, Job, PretestOutcome};
use crate::uplink::proof::{ProofProbes, Report};

use super::effects::Effects;
use super::machine::{Event, ProofReport};

impl Effects<'_> {
    /// Hands a pre-test to the worker; answers at once only a profile it cannot test.
    pub(super) fn pretest(
        &mut self,
        profile: ProfileName,
        attempts: u32,
        urgent: bool,
    ) -> Option<Event> {
        let Some(p) = self.profile(&profile).cloned() else {
            return Some(Event::PretestDone {
                profile,
                at: self.seams.clock.now(),
                passed: 0,
                failed: attempts,
                untestable: false,
            });
        };
        let device = self.setup.device(&profile);
        let active_device = self
            .files_active()
            .and_then(|a| self.setup.config.link(&a).map(|l| l.device.clone()));
        self.seams.pretests.submit(Job {
            profile: p,
            device,
            active_device,
            attempts,
            urgent,
        });
        None
    }

    /// The pre-tests that finished by `now`, as the core's events (logged, and kept in
    /// the history).
    pub(crate) fn poll_pretests(&mut self, now: Instant) -> Vec<Event> {
        let done = self.seams.pretests.poll(now);
        done.into_iter().map(|d| self.pretest_done(d)).collect()
    }

    fn pretest_done(&mut self, d: Done) -> Event {
        let (mut passed, mut failed, mut untestable) = (0, 0, false);
        let n = d.attempts;
        let wall = state::unix(self.seams.clock.wall());
        if d.abandoned {
            failed = n;
            self.history.pretest(
                wall,
                d.profile.as_str(),
                "failed",
                "the pre-test did not answer in time",
            );
        }
        for (i, outcome) in d.outcomes.iter().enumerate() {
            log::info!("pre-test {}/{n} of {}: {outcome:?}", i + 1, d.profile);
            let (result, detail) = match outcome {
                PretestOutcome::Passed(x) => ("passed", x),
                PretestOutcome::Failed(x) => ("failed", x),
                PretestOutcome::CannotTest(x) => ("cannot test", x),
            };
            self.history
                .pretest(wall, d.profile.as_str(), result, detail);
            match outcome {
                PretestOutcome::Passed(_) => passed += 1,
                PretestOutcome::Failed(_) => failed += 1,
                PretestOutcome::CannotTest(_) => untestable = true,
            }
        }
        Event::PretestDone {
            profile: d.profile,
            at: d.finished,
            passed,
            failed,
            untestable,
        }
    }

    /// Starts the failback proof of `profile` beside RED; a profile that cannot be proven
    /// is answered at once.
    pub(super) fn start_proof(&mut self, profile: ProfileName) -> Option<Event> {
        if let Some((p, _)) = &self.proof {
            let p = p.clone();
            self.stop_proof(&p);
        }
        let failed = |reason: String| {
            Some(Event::Proof {
                profile: profile.clone(),
                report: ProofReport::Failed { reason },
            })
        };
        let Some(p) = self.profile(&profile).cloned() else {
            return failed(format!("profile {profile} is not loaded"));
        };
        let device = self.setup.device(&profile);
        let policy = &self.setup.policy;
        let probes = ProofProbes::new(
            &health::build_targets(policy, self.paths),
            policy.reliability,
            policy.check_interval,
            policy.check_timeout,
        );
        if probes.targets.is_empty() {
            return failed("no internet target in FAILOVER_CHECK_HOST to probe through it".into());
        }
        match (self.seams.proof)(&p, &device, policy.connect_timeout, probes) {
            None => failed(format!(
                "{profile} ({}) cannot be brought up beside RED",
                p.kind.as_str()
            )),
            Some(Ok(s)) => {
                log::info!("failback proof of {profile} on {device} started");
                self.proof = Some((profile, s));
                None
            }
            Some(Err(e)) => failed(format!("cannot start the proof thread: {e}")),
        }
    }

    /// Tears the proof session down before the next action runs (bounded).
    pub(super) fn stop_proof(&mut self, profile: &ProfileName) {
        if let Some((p, s)) = self.proof.take() {
            if p != *profile {
                log::warn!("stopping the proof session of {p} (asked for {profile})");
            }
            if s.stop() {
                log::info!("failback proof of {p} torn down");
            }
        }
    }

    /// What the proof session reported since the last call, as the core's events.
    pub(crate) fn poll_proof(&mut self, now: Instant) -> Vec<Event> {
        let Some((p, s)) = &mut self.proof else {
            return Vec::new();
        };
        let profile = p.clone();
        s.poll(now)
            .into_iter()
            .map(|r| {
                let report = match r {
                    Report::Up(iface) => ProofReport::Up { iface },
                    Report::Round(ok) => ProofReport::Round { ok },
                    Report::Failed(reason) => {
                        log::info!("failback proof of {profile}: {reason}");
                        ProofReport::Failed { reason }
                    }
                };
                Event::Proof {
                    profile: profile.clone(),
                    report,
                }
            })
            .collect()
    }
}
