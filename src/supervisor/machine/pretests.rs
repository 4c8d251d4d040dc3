// Copyright (C) 2026 The connectd developers
// SPDX-License-Identifier: GPL-3.0-or-later

//! Backups known before they are needed (DESIGN.md 5.1): the last pre-test of each
//! profile, the background rounds (every FAILOVER_PRETEST_INTERVAL, and at once on a
//! suspect round of the active uplink), and the freshness rule a failover uses.
//!
//! * A background round pre-tests, once each, every profile of the config except the
//!   active one, those on the active profile's device (testing them would disturb it) and
//!   those in FAILOVER_PRETEST_SKIP (metered links). It runs only while `Online` outside a
//!   trial failback.
//! * On `Suspect` (a failed probe round, not yet a verdict) the same profiles are tested
//!   at once, except those tested less than [`SUSPECT_RETEST`] ago.
//! * A failover uses a result younger than [`Core::pretest_fresh`] (one interval, at least
//!   [`PRETEST_FRESH_MIN`]) instead of a new pre-test: a pass is activated at once, a
//!   failure skips the profile. An older one is tested again, as before.
//! * FAILOVER_PRETEST_INTERVAL=off turns all of this off: the failover pre-tests each
//!   candidate as IPFire's chain walk always did.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::classify::PretestResult;
use super::{Action, Core, Online};
use crate::ipfire::profile::ProfileName;

/// The least spacing of two pre-tests of one failback vote: three answers within 100 ms
/// are one answer, not three.
pub const VOTE_MIN_SPACING: Duration = Duration::from_secs(1);
/// A suspect round does not re-test a profile tested less than this ago.
pub const SUSPECT_RETEST: Duration = Duration::from_secs(30);
/// A result is fresh for at least this long (covers a suspect round's tests until the
/// verdict, FAILOVER_FAILURES rounds later).
pub const PRETEST_FRESH_MIN: Duration = Duration::from_secs(60);

/// The last pre-test of a profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct PretestRecord {
    pub(super) at: Instant,
    pub(super) result: PretestResult,
}

/// A profile's last pre-test, for `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PretestView {
    /// The profile.
    pub profile: ProfileName,
    /// `passed`, `failed` or `untestable`.
    pub result: String,
    /// Attempts that passed.
    pub passed: u32,
    /// Attempts that failed.
    pub failed: u32,
    /// Seconds before the snapshot.
    pub secs_ago: u64,
}

impl Core {
    pub(super) fn record_pretest(
        &mut self,
        profile: &ProfileName,
        result: PretestResult,
        now: Instant,
    ) {
        self.pretests
            .insert(profile.clone(), PretestRecord { at: now, result });
    }

    /// How long a result stands in for a new pre-test at failover; `None`: never (off).
    pub(super) fn pretest_fresh(&self) -> Option<Duration> {
        self.config
            .pretest_interval
            .map(|i| i.max(PRETEST_FRESH_MIN))
    }

    /// The result for `c` a failover may use instead of a new pre-test.
    pub(super) fn fresh_result(
        &self,
        c: &ProfileName,
        now: Instant,
    ) -> Option<(PretestResult, u64)> {
        let fresh = self.pretest_fresh()?;
        let r = self.pretests.get(c)?;
        let age = now.saturating_duration_since(r.at);
        (age < fresh).then_some((r.result, age.as_secs()))
    }

    /// When the next background round is due in this online phase.
    pub(super) fn background_due_at(&self, o: &Online) -> Option<Instant> {
        if o.trial.is_some() || !self.config.enabled {
            return None;
        }
        self.config.pretest_interval?;
        self.bg_at
    }

    /// The profiles a background round tests.
    fn background_set(&self) -> Vec<ProfileName> {
        self.config
            .links()
            .map(|l| l.name.clone())
            .filter(|n| {
                *n != self.active
                    && !self.shares_device(n, &self.active)
                    && !self.config.pretest_skip.contains(n)
            })
            .collect()
    }

    /// Online, on a Tick: the background round when it is due.
    pub(super) fn background_tick(&mut self, o: &Online, now: Instant) {
        let Some(interval) = self.config.pretest_interval else {
            return;
        };
        if self.background_due_at(o).is_some_and(|at| now >= at) {
            self.bg_at = Some(now + interval);
            let set = self.background_set();
            self.send_pretests(set, "background pre-test round");
        }
    }

    /// Online, on a suspect round: test now what was not tested recently.
    pub(super) fn suspect_round(&mut self, o: &Online, now: Instant) {
        if o.trial.is_some() || self.config.pretest_interval.is_none() {
            return;
        }
        let set: Vec<ProfileName> = self
            .background_set()
            .into_iter()
            .filter(|n| {
                self.pretests
                    .get(n)
                    .is_none_or(|r| now.saturating_duration_since(r.at) >= SUSPECT_RETEST)
            })
            .collect();
        self.send_pretests(set, "the active uplink is suspect: pre-testing the chain");
    }

    fn send_pretests(&mut self, set: Vec<ProfileName>, why: &str) {
        if set.is_empty() {
            return;
        }
        let names: Vec<&str> = set.iter().map(ProfileName::as_str).collect();
        self.log(log::Level::Info, format!("{why}: {}", names.join(", ")));
        for profile in set {
            self.out.push(Action::Pretest {
                profile,
                attempts: 1,
                background: true,
            });
        }
    }

    pub(super) fn pretest_views(&self, now: Instant) -> Vec<PretestView> {
        self.pretests
            .iter()
            .map(|(p, r)| PretestView {
                profile: p.clone(),
                result: if r.result.untestable {
                    "untestable"
                } else if r.result.go() {
                    "passed"
                } else {
                    "failed"
                }
                .into(),
                passed: r.result.passed,
                failed: r.result.failed,
                secs_ago: now.saturating_duration_since(r.at).as_secs(),
            })
            .collect()
    }
}
