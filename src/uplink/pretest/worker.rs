// Copyright (C) 2026 The connectd developers
// SPDX-License-Identifier: GPL-3.0-or-later

//! Pre-tests off the supervisor's loop (issue 13): a DHCP pre-test waits up to 6 s for an
//! offer, a PPPoE one 3 s for a PADO, `qmicli` up to 10 s. Run on the loop thread they
//! stopped the health rounds and the passive sample for that long. [`PretestWorker`] runs
//! them on a thread of their own, one at a time, and hands each result back to the loop
//! with the time it finished.
//!
//! * **One at a time.** The worker holds at most one job; the others wait in a queue the
//!   loop owns, urgent ones (a failover's candidate, the failback vote) ahead of the
//!   background rounds. Two pre-tests never share a NIC's AF_PACKET socket or a modem.
//! * **One test per profile.** A job for a profile that is already queued or running is
//!   answered by that test: a background test of the candidate that is under way when the
//!   failover begins is the failover's answer, not a second wait.
//! * **Bounded.** A job that has not answered [`PRETEST_DEADLINE`] after it started is
//!   answered as failed by the loop side ([`Done::abandoned`]); its late result is dropped.
//!   The real pre-tests are bounded themselves: this only guards the loop against a wedge.
//! * **Lazy thread.** The thread starts with the first job, so a worker built before the
//!   daemon forks never runs a thread in the parent.
//!
//! [`PretestWorker::inline`] runs the jobs on the caller's thread at the next
//! [`PretestWorker::poll`] instead: the deterministic seam for tests on a fake clock.

use std::collections::VecDeque;
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::time::{Duration, Instant};

use crate::ipfire::profile::{Profile, ProfileName};
use crate::sys::clock::{Clock, SystemClock};

use super::seam::{PreTester, PretestOutcome};

/// A job that has not answered this long after it started is answered as failed.
pub const PRETEST_DEADLINE: Duration = Duration::from_secs(30);

/// One pre-test to run.
#[derive(Debug, Clone)]
pub struct Job {
    /// The profile to test.
    pub profile: Profile,
    /// Its device.
    pub device: String,
    /// The active uplink's device, if any.
    pub active_device: Option<String>,
    /// Attempts (stops at the first `CannotTest`).
    pub attempts: u32,
    /// A failover or failback waits for it: ahead of the background rounds.
    pub urgent: bool,
}

/// A finished (or abandoned) pre-test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Done {
    /// The profile tested.
    pub profile: ProfileName,
    /// One outcome per attempt made.
    pub outcomes: Vec<PretestOutcome>,
    /// The attempts asked for.
    pub attempts: u32,
    /// When it finished, on the clock of [`PretestWorker::poll`] (never after the poll).
    pub finished: Instant,
    /// It did not answer within [`PRETEST_DEADLINE`]: `outcomes` is empty, count it failed.
    pub abandoned: bool,
}

/// What the thread sends back: the profile, its outcomes, the time the test took.
type Answer = (ProfileName, Vec<PretestOutcome>, Duration);

enum Mode {
    /// Not started yet (no job so far).
    Idle(Box<dyn PreTester + Send>),
    /// The thread runs.
    Thread {
        jobs: Sender<Job>,
        answers: Receiver<Answer>,
    },
    /// Tests: run at the next poll on the caller's thread.
    Inline(Box<dyn PreTester>),
    /// The thread died (a panic in a pre-test): every job is answered as failed.
    Dead,
}

/// Runs pre-tests one at a time off the loop; see the module documentation.
pub struct PretestWorker {
    mode: Mode,
    queue: VecDeque<Job>,
    /// The job given to the thread and when (the poll's clock).
    running: Option<(Job, Instant)>,
    /// Profiles whose abandoned test may still answer: that answer is dropped.
    abandoned: Vec<ProfileName>,
    deadline: Duration,
}

impl std::fmt::Debug for PretestWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PretestWorker")
            .field("queued", &self.queue.len())
            .field(
                "running",
                &self.running.as_ref().map(|(j, _)| &j.profile.name),
            )
            .finish_non_exhaustive()
    }
}

/// Runs `job` with `tester`; returns its outcomes and how long it took.
fn run_job(tester: &mut dyn PreTester, job: &Job) -> (Vec<PretestOutcome>, Duration) {
    let clock = SystemClock;
    let start = clock.now();
    let mut outcomes = Vec::new();
    for _ in 0..job.attempts.max(1) {
        let o = tester.pretest(&job.profile, &job.device, job.active_device.as_deref());
        let stop = matches!(o, PretestOutcome::CannotTest(_));
        outcomes.push(o);
        if stop {
            break;
        }
    }
    (outcomes, clock.now().saturating_duration_since(start))
}

impl PretestWorker {
    /// A worker that runs `tester` on a thread of its own (started with the first job).
    pub fn threaded(tester: Box<dyn PreTester + Send>) -> PretestWorker {
        PretestWorker::with_mode(Mode::Idle(tester))
    }

    /// A worker that runs `tester` on the caller's thread at the next poll (tests).
    pub fn inline(tester: Box<dyn PreTester>) -> PretestWorker {
        PretestWorker::with_mode(Mode::Inline(tester))
    }

    fn with_mode(mode: Mode) -> PretestWorker {
        PretestWorker {
            mode,
            queue: VecDeque::new(),
            running: None,
            abandoned: Vec::new(),
            deadline: PRETEST_DEADLINE,
        }
    }

    /// Another deadline than [`PRETEST_DEADLINE`] (tests).
    pub fn with_deadline(mut self, d: Duration) -> PretestWorker {
        self.deadline = d;
        self
    }

    /// Queues `job`, unless a test of its profile is queued or running (that one answers
    /// for both; an urgent job moves a queued one to the front).
    pub fn submit(&mut self, job: Job) {
        let name = &job.profile.name;
        if self
            .running
            .as_ref()
            .is_some_and(|(j, _)| &j.profile.name == name)
        {
            return;
        }
        if let Some(k) = self.queue.iter().position(|j| &j.profile.name == name) {
            if job.urgent && !self.queue[k].urgent {
                if let Some(mut j) = self.queue.remove(k) {
                    j.urgent = true;
                    self.push_urgent(j);
                }
            }
            return;
        }
        if job.urgent {
            self.push_urgent(job);
        } else {
            self.queue.push_back(job);
        }
    }

    /// Behind the other urgent jobs, ahead of the background ones.
    fn push_urgent(&mut self, job: Job) {
        let at = self.queue.iter().position(|j| !j.urgent);
        match at {
            Some(k) => self.queue.insert(k, job),
            None => self.queue.push_back(job),
        }
    }

    /// A test is queued or running.
    pub fn busy(&self) -> bool {
        self.running.is_some() || !self.queue.is_empty()
    }

    /// The profile being tested now, if any.
    pub fn running(&self) -> Option<&ProfileName> {
        self.running.as_ref().map(|(j, _)| &j.profile.name)
    }

    /// Collects what finished by `now`, abandons a job past its deadline and starts the
    /// next one. Never blocks (inline mode runs its queued jobs here).
    pub fn poll(&mut self, now: Instant) -> Vec<Done> {
        let mut done = Vec::new();
        if let Mode::Inline(tester) = &mut self.mode {
            while let Some(job) = self.queue.pop_front() {
                let (outcomes, _) = run_job(tester.as_mut(), &job);
                done.push(Done {
                    profile: job.profile.name.clone(),
                    outcomes,
                    attempts: job.attempts,
                    finished: now,
                    abandoned: false,
                });
            }
            return done;
        }
        self.collect(now, &mut done);
        if let Some((job, started)) = &self.running {
            if now.saturating_duration_since(*started) >= self.deadline {
                log::warn!(
                    "pre-test of {} did not answer within {} s: counted as failed",
                    job.profile.name,
                    self.deadline.as_secs()
                );
                self.abandoned.push(job.profile.name.clone());
                done.push(Done {
                    profile: job.profile.name.clone(),
                    outcomes: Vec::new(),
                    attempts: job.attempts,
                    finished: now,
                    abandoned: true,
                });
                self.running = None;
            }
        }
        if self.running.is_none() {
            if let Some(job) = self.queue.pop_front() {
                self.start(job, now, &mut done);
            }
        }
        done
    }

    /// Takes the thread's answers.
    fn collect(&mut self, now: Instant, done: &mut Vec<Done>) {
        let Mode::Thread { answers, .. } = &self.mode else {
            return;
        };
        loop {
            match answers.try_recv() {
                Ok((profile, outcomes, took)) => {
                    if let Some(k) = self.abandoned.iter().position(|p| *p == profile) {
                        // The late answer of an abandoned job: already counted as failed.
                        self.abandoned.remove(k);
                        continue;
                    }
                    let Some((job, started)) = self.running.take() else {
                        continue;
                    };
                    done.push(Done {
                        profile,
                        outcomes,
                        attempts: job.attempts,
                        finished: (started + took).min(now),
                        abandoned: false,
                    });
                }
                Err(TryRecvError::Empty) => return,
                Err(TryRecvError::Disconnected) => {
                    log::error!("the pre-test thread died: pre-tests count as failed");
                    self.mode = Mode::Dead;
                    if let Some((job, _)) = self.running.take() {
                        done.push(abandoned(&job, now));
                    }
                    return;
                }
            }
        }
    }

    /// Gives `job` to the thread (starting it on the first job).
    fn start(&mut self, job: Job, now: Instant, done: &mut Vec<Done>) {
        if matches!(self.mode, Mode::Idle(_)) {
            let Mode::Idle(mut tester) = std::mem::replace(&mut self.mode, Mode::Dead) else {
                return;
            };
            let (jobs, rx) = mpsc::channel::<Job>();
            let (tx, answers) = mpsc::channel::<Answer>();
            let spawned = std::thread::Builder::new()
                .name("pretest".into())
                .spawn(move || {
                    for job in rx {
                        let (outcomes, took) = run_job(tester.as_mut(), &job);
                        if tx.send((job.profile.name.clone(), outcomes, took)).is_err() {
                            return;
                        }
                    }
                });
            match spawned {
                Ok(_) => self.mode = Mode::Thread { jobs, answers },
                Err(e) => log::error!("cannot start the pre-test thread: {e}"),
            }
        }
        let sent = match &self.mode {
            Mode::Thread { jobs, .. } => jobs.send(job.clone()).is_ok(),
            Mode::Idle(_) | Mode::Inline(_) | Mode::Dead => false,
        };
        if sent {
            self.running = Some((job, now));
        } else {
            self.mode = Mode::Dead;
            done.push(abandoned(&job, now));
        }
    }
}

fn abandoned(job: &Job, now: Instant) -> Done {
    Done {
        profile: job.profile.name.clone(),
        outcomes: Vec::new(),
        attempts: job.attempts,
        finished: now,
        abandoned: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipfire::readhash::Document;
    use std::path::Path;
    use std::sync::{Arc, Mutex};

    fn job(name: &str, urgent: bool) -> Job {
        Job {
            profile: Profile::from_doc(
                ProfileName::new(name).unwrap(),
                Document::parse("TYPE=DHCP\n"),
                Path::new("settings-x"),
            )
            .unwrap(),
            device: format!("dev{name}"),
            active_device: Some("red0".into()),
            attempts: 1,
            urgent,
        }
    }

    /// Passes after the gate opens; records the order of the profiles tested.
    struct Gated {
        gate: Arc<Mutex<()>>,
        order: Arc<Mutex<Vec<String>>>,
    }

    impl PreTester for Gated {
        fn pretest(&mut self, p: &Profile, _d: &str, _a: Option<&str>) -> PretestOutcome {
            let _g = self.gate.lock().unwrap();
            self.order.lock().unwrap().push(p.name.to_string());
            PretestOutcome::Passed("ok".into())
        }
    }

    fn wait_for(w: &mut PretestWorker, now: Instant) -> Vec<Done> {
        for _ in 0..400 {
            let d = w.poll(now);
            if !d.is_empty() {
                return d;
            }
            SystemClock.sleep(Duration::from_millis(5));
        }
        panic!("no answer from the pre-test thread");
    }

    #[test]
    fn runs_off_the_caller_one_at_a_time_urgent_first_and_once_per_profile() {
        let gate = Arc::new(Mutex::new(()));
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut w = PretestWorker::threaded(Box::new(Gated {
            gate: Arc::clone(&gate),
            order: Arc::clone(&order),
        }));
        let t0 = SystemClock.now();
        let held = gate.lock().unwrap();
        w.submit(job("2", false));
        w.submit(job("3", false));
        // Starts 2; poll returns at once although 2 cannot finish while the gate is held.
        assert!(w.poll(t0).is_empty());
        assert_eq!(w.running().map(ProfileName::as_str), Some("2"));
        // The failover's test of 2 is the running one; the vote's test of 4 jumps ahead
        // of the background test of 3; a second 3 is merged.
        w.submit(job("2", true));
        w.submit(job("4", true));
        w.submit(job("3", false));
        assert!(w.poll(t0).is_empty());
        drop(held);
        let mut got = Vec::new();
        while got.len() < 3 {
            got.extend(wait_for(&mut w, t0 + Duration::from_secs(1)));
        }
        let names: Vec<&str> = got.iter().map(|d| d.profile.as_str()).collect();
        assert_eq!(names, ["2", "4", "3"]);
        assert_eq!(*order.lock().unwrap(), ["2", "4", "3"]);
        assert!(got.iter().all(|d| !d.abandoned && d.outcomes.len() == 1));
        assert!(
            got.iter()
                .all(|d| d.finished <= t0 + Duration::from_secs(1))
        );
        assert!(!w.busy());
    }

    #[test]
    fn a_wedged_test_is_answered_as_failed_at_its_deadline_and_its_late_answer_dropped() {
        let gate = Arc::new(Mutex::new(()));
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut w = PretestWorker::threaded(Box::new(Gated {
            gate: Arc::clone(&gate),
            order,
        }))
        .with_deadline(Duration::from_secs(10));
        let t0 = SystemClock.now();
        let held = gate.lock().unwrap();
        w.submit(job("2", false));
        assert!(w.poll(t0).is_empty());
        assert!(w.poll(t0 + Duration::from_secs(9)).is_empty());
        let d = w.poll(t0 + Duration::from_secs(10));
        assert_eq!(d.len(), 1);
        assert!(d[0].abandoned && d[0].profile.as_str() == "2", "{d:?}");
        // The next job waits behind the wedged one on the thread, then runs.
        w.submit(job("3", false));
        assert!(w.poll(t0 + Duration::from_secs(11)).is_empty());
        drop(held);
        let d = wait_for(&mut w, t0 + Duration::from_secs(12));
        assert_eq!(d.len(), 1, "2's late answer is dropped: {d:?}");
        assert_eq!(d[0].profile.as_str(), "3");
        assert!(!d[0].abandoned);
    }

    #[test]
    fn inline_runs_at_the_next_poll() {
        let mut w =
            PretestWorker::inline(Box::new(super::super::scripted::ScriptedPreTester::always(
                PretestOutcome::Failed("no offer".into()),
            )));
        let t0 = SystemClock.now();
        w.submit(job("2", false));
        assert!(w.busy());
        let d = w.poll(t0);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].outcomes, [PretestOutcome::Failed("no offer".into())]);
        assert_eq!(d[0].finished, t0);
        assert!(!w.busy());
    }
}
