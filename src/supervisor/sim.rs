//! A simulated world for the decision core: lines that are up, down or blackholed as a
//! function of time, a shell that answers every action at once, and a clock that moves
//! one second per step. A simulated day runs in milliseconds.
//!
//! The world follows the shell's contract (see `core`'s module documentation): an
//! Activate/Restart starts dialling the profile (RED appears after `dial_secs` when its
//! line is not down), a monitored uplink reports `Healthy` when its line is up,
//! `Suspect` at the first second of a blackhole and `Unhealthy` after `detect_secs` of
//! it, a line that dies under a running RED reports `LinkLost`; pre-tests pass when the
//! profile's line is up.

use std::collections::BTreeMap;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::sys::clock::{Clock as _, SystemClock};

use super::machine::{Action, Command, Config, Core, Event, Link, ProofReport, SwitchKind};
use crate::ipfire::profile::{ProfileName, Reconnection};

/// The state of a profile's line at a given second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Line {
    Up,
    Down,
    Blackhole,
}

type LineFn = Box<dyn Fn(u64) -> Line>;
type PretestFn = Box<dyn FnMut(&str, u32, u64) -> (u32, u32)>;

pub fn name(s: &str) -> ProfileName {
    ProfileName::new(s).unwrap()
}

pub fn link(n: &str, dev: &str, max_retries: u32, holdoff: u64) -> Link {
    Link {
        name: name(n),
        device: dev.into(),
        max_retries,
        holdoff: Duration::from_secs(holdoff),
        backup: None,
    }
}

/// Failover on, primary `1` on red0, backups `2` (wwan0) and `3` (red1), IPFire defaults.
pub fn config(backups: &[&str]) -> Config {
    let devs = |n: &str| match n {
        "1" => "red0",
        "2" => "wwan0",
        "3" => "red1",
        _ => "eth9",
    };
    Config {
        enabled: true,
        primary: link("1", "red0", 5, 30),
        chain: backups.iter().map(|b| link(b, devs(b), 5, 30)).collect(),
        reconnection: Reconnection::Persistent,
        connect_timeout: Duration::from_secs(60),
        failback_enabled: true,
        failback_delay: Duration::from_secs(300),
        failback_attempts: 3,
        failback_grace: Duration::from_secs(30),
        failback_delay_max: Duration::from_secs(3600),
        failback_vote_window: Duration::from_secs(30),
        pretest_interval: None,
        pretest_skip: Vec::new(),
        failback_proof: false,
    }
}

/// One recorded action with its second.
#[derive(Debug, Clone)]
pub(crate) struct Rec {
    pub t: u64,
    pub action: Action,
}

pub(crate) struct Sim {
    pub core: Core,
    pub t0: Instant,
    pub t: u64,
    pub log: Vec<Rec>,
    /// Events fed, with their second (for failure messages).
    pub fed: Vec<(u64, Event)>,
    lines: BTreeMap<String, LineFn>,
    pub pretest: Option<PretestFn>,
    pub activate_ok: Box<dyn Fn(&str) -> bool>,
    pub dial_secs: u64,
    pub detect_secs: u64,
    /// Seconds a pre-test takes (its answer comes that much later, as from the worker).
    pub pretest_secs: u64,
    /// Scripted events: (second, event).
    pub script: Vec<(u64, Event)>,
    files: ProfileName,
    running: Option<ProfileName>,
    dial_started: u64,
    red_up: bool,
    monitored: Option<ProfileName>,
    reported: Option<bool>,
    bad_since: Option<u64>,
    /// The proof session running (profile, second it started).
    proving: Option<(ProfileName, u64)>,
    pub exited: bool,
}

impl Sim {
    pub fn new(config: Config) -> Sim {
        let primary = config.primary.name.clone();
        Sim {
            core: Core::new(config),
            t0: SystemClock.now(),
            t: 0,
            log: Vec::new(),
            fed: Vec::new(),
            lines: BTreeMap::new(),
            pretest: None,
            activate_ok: Box::new(|_| true),
            dial_secs: 3,
            detect_secs: 6,
            pretest_secs: 0,
            script: Vec::new(),
            files: primary,
            running: None,
            dial_started: 0,
            red_up: false,
            monitored: None,
            reported: None,
            bad_since: None,
            proving: None,
            exited: false,
        }
    }

    pub fn line(mut self, n: &str, f: impl Fn(u64) -> Line + 'static) -> Sim {
        self.lines.insert(n.into(), Box::new(f));
        self
    }

    fn line_at(&self, n: &ProfileName, t: u64) -> Line {
        self.lines.get(n.as_str()).map_or(Line::Down, |f| f(t))
    }

    pub fn now(&self) -> Instant {
        self.t0 + Duration::from_secs(self.t)
    }

    /// Starts with `active` in the files; RED running (and up) if `red_active`.
    pub fn start(&mut self, active: &str, red_active: bool) {
        self.files = name(active);
        if red_active {
            self.running = Some(name(active));
            self.red_up = true;
        } else if self.line_at(&name(active), 0) != Line::Down {
            // the network script has just started it
            self.running = Some(name(active));
        }
        self.feed(Event::Start {
            active: name(active),
            red_active,
            keepconnected: Some(0),
        });
    }

    /// Feeds one event at the current second and executes the answers to its actions.
    pub(crate) fn feed(&mut self, event: Event) {
        let mut queue = VecDeque::from([event]);
        while let Some(ev) = queue.pop_front() {
            if self.exited {
                // The process is gone; record what a (buggy) shell would still feed.
                self.fed.push((self.t, ev.clone()));
                let acts = self.core.step(ev, self.now());
                assert!(
                    acts.iter()
                        .all(|a| matches!(a, Action::Reply { ok: false, .. })),
                    "actions after Exit: {acts:?}"
                );
                continue;
            }
            self.fed.push((self.t, ev.clone()));
            let now = self.now();
            let actions = self.core.step(ev, now);
            if let Some(d) = self.core.next_deadline() {
                assert!(d >= now, "deadline in the past at t={}", self.t);
            }
            for a in actions {
                self.log.push(Rec {
                    t: self.t,
                    action: a.clone(),
                });
                match a {
                    Action::Activate { to, .. } => {
                        let ok = (self.activate_ok)(to.as_str());
                        self.red_up = false;
                        self.reported = None;
                        if ok {
                            self.files = to.clone();
                            self.running = Some(to.clone());
                            self.dial_started = self.t;
                        } else {
                            self.running = None;
                        }
                        queue.push_back(Event::ActivateDone {
                            profile: to,
                            ok,
                            error: (!ok).then(|| "simulated failure".to_string()),
                        });
                    }
                    Action::Restart { .. } => {
                        self.red_up = false;
                        self.reported = None;
                        self.running = Some(self.files.clone());
                        self.dial_started = self.t;
                        queue.push_back(Event::RestartDone {
                            ok: true,
                            error: None,
                        });
                    }
                    Action::StopRed { .. } => {
                        self.running = None;
                        self.red_up = false;
                    }
                    Action::Monitor(m) => {
                        self.monitored = m;
                        self.reported = None;
                        self.bad_since = None;
                    }
                    Action::Pretest {
                        profile, attempts, ..
                    } => {
                        let t = self.t;
                        let (passed, failed) = match self.pretest.as_mut() {
                            Some(f) => f(profile.as_str(), attempts, t),
                            None => {
                                if self.line_at(&profile, t) == Line::Up {
                                    (attempts, 0)
                                } else {
                                    (0, attempts)
                                }
                            }
                        };
                        let done_at = self.t + self.pretest_secs;
                        let ev = Event::PretestDone {
                            profile,
                            at: self.t0 + Duration::from_secs(done_at),
                            passed,
                            failed,
                            untestable: false,
                        };
                        if self.pretest_secs == 0 {
                            queue.push_back(ev);
                        } else {
                            self.script.push((done_at, ev));
                        }
                    }
                    Action::ProofStart { profile } => {
                        assert!(self.proving.is_none(), "two proof sessions at {}", self.t);
                        self.proving = Some((profile, self.t));
                    }
                    Action::ProofStop { profile } => {
                        // A session that failed by itself is gone already.
                        if let Some((p, _)) = self.proving.take() {
                            assert_eq!(p, profile, "ProofStop of another session");
                        }
                    }
                    Action::Exit(_) => self.exited = true,
                    Action::Hook { .. }
                    | Action::SetAttempts(_)
                    | Action::SwitchCompleted { .. }
                    | Action::SaveState
                    | Action::Log { .. }
                    | Action::Reply { .. } => {}
                }
            }
        }
    }

    /// What the proof session reports at the current second: up 2 s after its start
    /// unless its line is down (then it fails), a probe round every 2 s after that.
    fn proof_events(&mut self) -> Vec<Event> {
        let Some((p, start)) = self.proving.clone() else {
            return Vec::new();
        };
        let line = self.line_at(&p, self.t);
        let report = match self.t.checked_sub(start + 2) {
            Some(0) if line == Line::Down => {
                self.proving = None;
                ProofReport::Failed {
                    reason: "no PADO".into(),
                }
            }
            Some(0) => ProofReport::Up {
                iface: "ppp1".into(),
            },
            Some(k) if k % 2 == 0 => ProofReport::Round {
                ok: line == Line::Up,
            },
            _ => return Vec::new(),
        };
        vec![Event::Proof { profile: p, report }]
    }

    /// What the world reports at the current second.
    fn world_events(&mut self) -> Vec<Event> {
        let mut out = self.proof_events();
        let Some(p) = self.running.clone() else {
            return out;
        };
        let line = self.line_at(&p, self.t);
        if !self.red_up {
            if line != Line::Down && self.t >= self.dial_started + self.dial_secs {
                self.red_up = true;
                out.push(Event::RedUp);
            }
        } else if line == Line::Down {
            self.red_up = false;
            self.running = None;
            // pppd noticed the line drop (LCP echo): a redial may bring it back.
            out.push(Event::LinkLost {
                reason: "pppd exited".into(),
                carrier_lost: false,
            });
            return out;
        }
        if self.red_up && self.monitored.as_ref() == Some(&p) {
            match line {
                Line::Up => {
                    self.bad_since = None;
                    if self.reported != Some(true) {
                        self.reported = Some(true);
                        out.push(Event::Healthy);
                    }
                }
                Line::Blackhole => {
                    let since = *self.bad_since.get_or_insert(self.t);
                    if since == self.t && self.reported == Some(true) {
                        // the first failed round, while the uplink still counts as healthy
                        out.push(Event::Suspect {
                            reason: "1/3 probe rounds failed".into(),
                        });
                    }
                    if self.t >= since + self.detect_secs && self.reported != Some(false) {
                        self.reported = Some(false);
                        out.push(Event::Unhealthy {
                            reason: "3/3 probe rounds failed".into(),
                        });
                    }
                }
                Line::Down => {}
            }
        }
        out
    }

    /// Runs until second `end` (inclusive of events at `end`).
    pub(crate) fn run_until(&mut self, end: u64) {
        while self.t <= end {
            let scripted: Vec<Event> = {
                let t = self.t;
                let (now, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.script)
                    .into_iter()
                    .partition(|(s, _)| *s == t);
                self.script = later;
                now.into_iter().map(|(_, e)| e).collect()
            };
            for ev in scripted {
                self.feed(ev);
            }
            for ev in self.world_events() {
                self.feed(ev);
            }
            if self.core.next_deadline().is_some_and(|d| d <= self.now()) {
                self.feed(Event::Tick);
            }
            self.t += 1;
        }
        self.t = end + 1;
    }

    pub fn at(&mut self, t: u64, ev: Event) {
        self.script.push((t, ev));
    }

    /// (second, target, kind) of every Activate.
    pub(crate) fn activates(&self) -> Vec<(u64, String, SwitchKind)> {
        self.log
            .iter()
            .filter_map(|r| match &r.action {
                Action::Activate { to, kind, .. } => Some((r.t, to.to_string(), *kind)),
                _ => None,
            })
            .collect()
    }

    pub fn count(&self, f: impl Fn(&Action) -> bool) -> usize {
        self.log.iter().filter(|r| f(&r.action)).count()
    }

    pub fn times(&self, f: impl Fn(&Action) -> bool) -> Vec<u64> {
        self.log
            .iter()
            .filter(|r| f(&r.action))
            .map(|r| r.t)
            .collect()
    }

    pub fn dump(&self) -> String {
        self.log
            .iter()
            .map(|r| format!("{:>6} {:?}", r.t, r.action))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

pub(crate) fn is_restart(a: &Action) -> bool {
    matches!(a, Action::Restart { .. })
}

pub(crate) fn is_activate(a: &Action) -> bool {
    matches!(a, Action::Activate { .. })
}

pub fn cmd(c: Command) -> Event {
    Event::Command(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::supervisor::machine::HookEvent;

    fn legacy(max_retries: u32, holdoff: u64, backup: Option<&str>) -> Config {
        let mut c = config(&[]);
        c.enabled = false;
        c.primary = link("1", "red0", max_retries, holdoff);
        c.primary.backup = backup.map(name);
        if let Some(b) = backup {
            c.chain = vec![link(b, "wwan0", max_retries, holdoff)];
        }
        c
    }

    fn set_attempts(sim: &Sim) -> Vec<u32> {
        sim.log
            .iter()
            .filter_map(|r| match r.action {
                Action::SetAttempts(n) => Some(n),
                _ => None,
            })
            .collect()
    }

    // ---------------------------------------------------------------- failover off

    #[test]
    fn failover_off_counts_attempts_switches_after_maxretries_and_exits_once_online() {
        let mut sim = Sim::new(legacy(3, 30, Some("2")))
            .line("1", |_| Line::Down)
            .line("2", |_| Line::Up);
        sim.start("1", false);
        sim.run_until(4000);
        // 160 × 5 s per attempt (system/connectd:31,53-75), HOLDOFF 30 between: failures
        // at 800, 1630, 2460.
        assert_eq!(
            sim.times(|a| matches!(a, Action::StopRed { .. })),
            vec![800, 1630, 2460],
            "{}",
            sim.dump()
        );
        assert_eq!(sim.times(is_restart), vec![830, 1660]);
        assert_eq!(
            sim.activates(),
            vec![(2490, "2".into(), SwitchKind::Legacy)]
        );
        assert_eq!(set_attempts(&sim), vec![1, 2, 0, 0]);
        // online 3 s after the switch: "System is online. Exiting."
        let exit = sim.times(|a| matches!(a, Action::Exit(0)));
        assert_eq!(exit, vec![2493]);
        assert!(sim.core.exited());
        // no hooks, no probing with failover off
        assert_eq!(
            sim.count(|a| matches!(a, Action::Hook { .. } | Action::Monitor(_))),
            0
        );
    }

    #[test]
    fn failover_off_exits_at_once_when_online() {
        let mut sim = Sim::new(legacy(5, 30, None)).line("1", |_| Line::Up);
        sim.start("1", true);
        let acts: Vec<Action> = sim.log.iter().map(|r| r.action.clone()).collect();
        assert!(acts.contains(&Action::SetAttempts(0)));
        assert_eq!(acts.last(), Some(&Action::Exit(0)));
    }

    #[test]
    fn dial_on_demand_keeps_keepconnected_for_ip_downs_redial_and_stays_supervised() {
        // Issue 12 item 5: IPFire's connectd does not special-case dialondemand; ip-down
        // redials only while red/keepconnected exists (src/ppp/ip-down:25-31).
        let mut c = legacy(5, 30, None);
        c.reconnection = Reconnection::DialOnDemand;
        let mut core = Core::new(c);
        let acts = core.step(
            Event::Start {
                active: name("1"),
                red_active: false,
                keepconnected: None,
            },
            SystemClock.now(),
        );
        assert!(acts.contains(&Action::SetAttempts(0)), "{acts:?}");
        assert!(!acts.contains(&Action::Exit(0)), "{acts:?}");
        // Failover on: supervised (the shell sends no probes on such a line).
        let mut c = config(&["2"]);
        c.reconnection = Reconnection::DialOnDemand;
        let mut core = Core::new(c);
        let acts = core.step(
            Event::Start {
                active: name("1"),
                red_active: true,
                keepconnected: None,
            },
            SystemClock.now(),
        );
        assert!(acts.contains(&Action::SetAttempts(0)), "{acts:?}");
        assert!(!acts.contains(&Action::Exit(0)), "{acts:?}");
        assert!(!core.exited());
    }

    #[test]
    fn failover_off_missing_keepconnected_is_recreated_and_counter_is_honoured() {
        let mut core = Core::new(legacy(3, 30, None));
        let t = SystemClock.now();
        let acts = core.step(
            Event::Start {
                active: name("1"),
                red_active: false,
                keepconnected: None,
            },
            t,
        );
        assert!(acts.contains(&Action::SetAttempts(0)));
        // a counter of 2 from the previous connectd: the next failure is attempt 3 = MAX
        let mut core = Core::new(legacy(3, 30, None));
        core.step(
            Event::Start {
                active: name("1"),
                red_active: false,
                keepconnected: Some(2),
            },
            t,
        );
        let acts = core.step(Event::Tick, t + Duration::from_secs(799));
        assert!(
            !acts.contains(&Action::SetAttempts(0)),
            "160 × 5 s, not 160 s: {acts:?}"
        );
        let acts = core.step(Event::Tick, t + Duration::from_secs(800));
        assert!(acts.contains(&Action::SetAttempts(0)), "{acts:?}");
        assert_eq!(acts.last(), Some(&Action::Exit(0)), "no backup: exit");
        assert!(acts.iter().any(
            |a| matches!(a, Action::Log { msg, .. } if msg.contains("No backup profile given"))
        ));
    }

    #[test]
    fn failover_off_pppd_death_ends_the_wait_early() {
        let mut sim = Sim::new(legacy(5, 30, None)).line("1", |_| Line::Down);
        sim.start("1", false);
        sim.at(
            20,
            Event::LinkLost {
                reason: "pppd exited".into(),
                carrier_lost: false,
            },
        );
        sim.run_until(60);
        assert_eq!(sim.times(|a| matches!(a, Action::StopRed { .. })), vec![20]);
        assert_eq!(sim.times(is_restart), vec![50]);
        assert_eq!(set_attempts(&sim), vec![1]);
    }

    #[test]
    fn no_pppd_within_the_dial_grace_is_ignored_after_it_ends_the_wait() {
        // Failover off: the network script runs `connectd start` right after it started
        // pppd; a pppd that has not appeared yet within DIAL_GRACE is no failure.
        let mut sim = Sim::new(legacy(5, 30, None)).line("1", |_| Line::Down);
        sim.start("1", false);
        sim.at(1, Event::NoPppd);
        sim.at(4, Event::NoPppd);
        sim.at(20, Event::NoPppd);
        sim.at(21, Event::NoPppd);
        // After the redial (answered at 50) a fresh grace: 52 is ignored, 60 counts.
        sim.at(52, Event::NoPppd);
        sim.at(60, Event::NoPppd);
        sim.run_until(61);
        assert_eq!(
            sim.times(|a| matches!(a, Action::StopRed { .. })),
            vec![20, 60],
            "{}",
            sim.dump()
        );
        assert_eq!(sim.times(is_restart), vec![50]);
        assert_eq!(set_attempts(&sim), vec![1, 2]);
        // Failover on: the same grace after an Activate.
        let mut sim = Sim::new(config(&["2"])).line("1", |_| Line::Down);
        sim.start("1", false);
        sim.at(3, Event::NoPppd);
        sim.run_until(4);
        assert_eq!(sim.count(is_restart), 0, "{}", sim.dump());
        sim.at(6, Event::NoPppd);
        sim.run_until(7);
        assert_eq!(sim.times(|a| matches!(a, Action::StopRed { .. })), vec![6]);
    }

    #[test]
    fn backupprofile_naming_itself_means_no_backup_never_activates() {
        // The shell passes backup None and an empty chain for BACKUPPROFILE=<self>.
        let mut sim = Sim::new(legacy(5, 30, None)).line("1", |_| Line::Down);
        sim.start("1", false);
        sim.run_until(86_400);
        assert_eq!(sim.count(is_activate), 0, "{}", sim.dump());
        assert!(sim.core.exited(), "gives up like IPFire's connectd");
        // Failover on with no chain: never Activate either, and never gives up.
        let mut sim = Sim::new(config(&[])).line("1", |_| Line::Down);
        sim.start("1", false);
        sim.run_until(86_400);
        assert_eq!(sim.count(is_activate), 0);
        assert!(!sim.core.exited());
        let last_hour = sim
            .log
            .iter()
            .filter(|r| r.t > 82_800)
            .filter(|r| is_restart(&r.action));
        assert!(last_hour.count() > 10, "still redialling after a day");
    }

    // ---------------------------------------------------------------- failover on

    #[test]
    fn blackhole_goes_straight_to_the_chain_and_the_backup() {
        let mut sim = Sim::new(config(&["2", "3"]))
            .line("1", |t| if t < 100 { Line::Up } else { Line::Blackhole })
            .line("2", |_| Line::Up)
            .line("3", |_| Line::Up);
        sim.start("1", true);
        sim.run_until(200);
        // Unhealthy at 106; no redial of the blackholed primary first.
        assert_eq!(sim.count(is_restart), 0, "{}", sim.dump());
        assert_eq!(
            sim.activates(),
            vec![(106, "2".into(), SwitchKind::Failover)]
        );
        let pre = sim.times(
            |a| matches!(a, Action::Pretest { profile, attempts: 1, .. } if profile.as_str() == "2"),
        );
        assert_eq!(pre, vec![106]);
        assert!(sim.log.iter().any(|r| r.action
            == Action::SwitchCompleted {
                from: name("1"),
                to: name("2")
            }));
        let hooks: Vec<HookEvent> = sim
            .log
            .iter()
            .filter_map(|r| match &r.action {
                Action::Hook { event, .. } => Some(*event),
                _ => None,
            })
            .collect();
        assert_eq!(
            hooks,
            vec![
                HookEvent::Down,
                HookEvent::PreUp,
                HookEvent::PostDown,
                HookEvent::Up,
                HookEvent::Failover
            ]
        );
        let s = sim.core.snapshot(sim.now());
        assert_eq!(s.phase, "Online(2)");
        assert_eq!(s.switch_count, 1);
        if std::env::var_os("SIM_LOG").is_some() {
            for r in &sim.log {
                if let Action::Log { level, msg } = &r.action {
                    eprintln!("{:>5}s {level:<5} {msg}", r.t);
                }
            }
        }
        assert!(s.transitions.iter().any(|t| t.from == "Online(1)"
            && t.to == "Pretesting(2)"
            && t.reason.contains("3/3 probe rounds failed")));
    }

    #[test]
    fn dropped_line_is_redialled_before_the_chain() {
        // The primary drops at 100 and is back at 130: one redial fixes it, no switch.
        let mut sim = Sim::new(config(&["2"]))
            .line("1", |t| {
                if (100..130).contains(&t) {
                    Line::Down
                } else {
                    Line::Up
                }
            })
            .line("2", |_| Line::Up);
        sim.start("1", true);
        sim.run_until(400);
        assert_eq!(sim.count(is_activate), 0, "{}", sim.dump());
        assert_eq!(sim.times(is_restart)[0], 100, "first redial at once");
        assert_eq!(sim.core.snapshot(sim.now()).phase, "Online(1)");

        // Down for good: MAXRETRIES=5 failed dials (HOLDOFF 30 between), then the chain.
        let mut sim = Sim::new(config(&["2"]))
            .line("1", |t| if t < 100 { Line::Up } else { Line::Down })
            .line("2", |_| Line::Up);
        sim.start("1", true);
        sim.run_until(1000);
        let restarts = sim.times(is_restart);
        assert_eq!(restarts, vec![100, 190, 280, 370, 460], "{}", sim.dump());
        assert_eq!(
            sim.activates(),
            vec![(520, "2".into(), SwitchKind::Failover)]
        );
    }

    #[test]
    fn carrier_loss_goes_straight_to_the_chain_without_redials() {
        // Found by the lab benchmark: with the carrier gone, redialling the same profile
        // (MAXRETRIES times, HOLDOFF apart) only prolongs the outage.
        let mut sim = Sim::new(config(&["2"]))
            .line("1", |_| Line::Up)
            .line("2", |_| Line::Up);
        sim.start("1", true);
        sim.at(
            100,
            Event::LinkLost {
                reason: "carrier lost on red0".into(),
                carrier_lost: true,
            },
        );
        sim.run_until(200);
        assert_eq!(sim.count(is_restart), 0, "{}", sim.dump());
        let acts = sim.activates();
        assert_eq!(
            acts.first().map(|a| (a.0, a.1.as_str())),
            Some((100, "2")),
            "{acts:?}"
        );
    }

    #[test]
    fn dead_backup_moves_down_the_chain() {
        let mut sim = Sim::new(config(&["2", "3"]))
            .line("1", |t| if t < 100 { Line::Up } else { Line::Blackhole })
            .line("2", |t| if t < 1000 { Line::Up } else { Line::Blackhole })
            .line("3", |_| Line::Up);
        sim.pretest = Some(Box::new(|p, n, _| if p == "1" { (0, n) } else { (n, 0) }));
        sim.start("1", true);
        sim.run_until(1200);
        let acts: Vec<String> = sim.activates().into_iter().map(|(_, p, _)| p).collect();
        assert_eq!(acts, vec!["2", "3"], "{}", sim.dump());
        assert_eq!(sim.core.snapshot(sim.now()).phase, "Online(3)");
    }

    #[test]
    fn dead_backup_goes_back_to_the_primary_when_it_is_the_only_one_left() {
        let mut sim = Sim::new(config(&["2"]))
            .line("1", |t| if t < 100 { Line::Up } else { Line::Blackhole })
            .line("2", |t| if t < 200 { Line::Up } else { Line::Down });
        // the primary's pre-tests fail: it is still tried at the start of the next pass
        sim.pretest = Some(Box::new(|p, n, _| if p == "1" { (0, n) } else { (n, 0) }));
        sim.start("1", true);
        sim.run_until(2000);
        let acts = sim.activates();
        assert_eq!(acts[0].1, "2");
        assert_eq!(
            (acts[1].1.as_str(), acts[1].2),
            ("1", SwitchKind::ChainPass),
            "{}",
            sim.dump()
        );
    }

    #[test]
    fn whole_chain_dead_keeps_retrying_with_holdoff_for_a_day() {
        let mut sim = Sim::new(config(&["2", "3"]))
            .line("1", |t| if t < 100 { Line::Up } else { Line::Down })
            .line("2", |_| Line::Down)
            .line("3", |_| Line::Down);
        sim.start("1", true);
        sim.run_until(86_400);
        assert!(!sim.core.exited());
        // A pass: primary (no pre-test) 60 s, candidates skipped by their pre-test,
        // HOLDOFF 30 s: at most one pass per 90 s, each with one Activate at most.
        for hour in 1..24u64 {
            let n = sim
                .log
                .iter()
                .filter(|r| r.t / 3600 == hour)
                .filter(|r| is_activate(&r.action) || is_restart(&r.action))
                .count();
            assert!(n >= 10, "hour {hour}: only {n} attempts: gave up?");
            assert!(n <= 3600 / 90 + 2, "hour {hour}: {n} attempts");
        }
        // Between two passes there is a HOLDOFF with RED stopped.
        let s = sim.core.snapshot(sim.now());
        assert!(s.transitions.iter().any(|t| t.to == "Holdoff"));
    }

    #[test]
    fn failback_waits_for_the_delay_and_a_majority() {
        // Primary down from 100 to 200, then up; pre-test results are scripted.
        let mut sim = Sim::new(config(&["2"]))
            .line("1", |t| {
                if (100..200).contains(&t) {
                    Line::Blackhole
                } else {
                    Line::Up
                }
            })
            .line("2", |_| Line::Up);
        // One answer per test of the timed vote (3 over 30 s: one every 15 s).
        let mut results = vec![(1, 0), (0, 1), (0, 1), (1, 0), (1, 0), (0, 1)].into_iter();
        sim.pretest = Some(Box::new(move |p, n, _| {
            if p == "1" {
                assert_eq!(n, 1, "one test per step of the vote");
                results.next().unwrap_or((1, 0))
            } else {
                (n, 0)
            }
        }));
        sim.start("1", true);
        sim.run_until(1500);
        // Online on 2 at 109; votes at 109+300 (pass, fail, fail: lost at 439) and
        // 439+300 (pass, pass, fail: 2/3 at 769).
        let online2 =
            sim.times(|a| matches!(a, Action::SwitchCompleted { to, .. } if to.as_str() == "2"));
        assert_eq!(online2, vec![109], "{}", sim.dump());
        let pre = sim.times(
            |a| matches!(a, Action::Pretest { profile, attempts: 1, .. } if profile.as_str() == "1"),
        );
        assert_eq!(pre, vec![409, 424, 439, 739, 754, 769]);
        let back = sim
            .activates()
            .into_iter()
            .filter(|(_, p, _)| p == "1")
            .collect::<Vec<_>>();
        assert_eq!(back, vec![(769, "1".into(), SwitchKind::Failback)]);
        // confirmed after the grace: delay unchanged, Online(1)
        let s = sim.core.snapshot(sim.now());
        assert_eq!(s.phase, "Online(1)");
        assert_eq!(s.failback_delay_secs, 300);
    }

    #[test]
    fn failed_trial_rolls_back_and_doubles_the_delay_up_to_the_cap() {
        // The primary passes pre-tests but blackholes 10 s after each failback.
        let fb_times = std::rc::Rc::new(std::cell::RefCell::new(Vec::<u64>::new()));
        let ft = fb_times.clone();
        let mut sim = Sim::new(config(&["2"]))
            .line("1", move |t| {
                if t < 100 {
                    return Line::Up;
                }
                let last = ft.borrow().iter().rev().find(|&&s| s <= t).copied();
                match last {
                    Some(s) if t < s + 10 => Line::Up,
                    _ => Line::Blackhole,
                }
            })
            .line("2", |_| Line::Up);
        sim.pretest = Some(Box::new(|_, n, _| (n, 0)));
        sim.start("1", true);
        let mut t = 0;
        while t < 20_000 {
            // record when the primary is activated so its line is "up" for 10 s
            sim.run_until(t);
            for (at, p, _) in sim.activates() {
                if p == "1" && !fb_times.borrow().contains(&at) {
                    fb_times.borrow_mut().push(at);
                }
            }
            t += 1;
        }
        let trials: Vec<u64> = sim
            .activates()
            .into_iter()
            .filter(|(_, p, k)| p == "1" && *k == SwitchKind::Failback)
            .map(|(t, _, _)| t)
            .collect();
        let rollbacks = sim
            .activates()
            .into_iter()
            .filter(|(_, _, k)| *k == SwitchKind::Rollback)
            .count();
        assert!(trials.len() >= 4, "{}", sim.dump());
        assert_eq!(rollbacks, trials.len());
        // gaps between trials grow: 300, 600, 1200, 2400, 3600, 3600 (+ the trial's time)
        let gaps: Vec<u64> = trials.windows(2).map(|w| w[1] - w[0]).collect();
        let expected = [600u64, 1200, 2400, 3600, 3600];
        for (g, e) in gaps.iter().zip(expected) {
            assert!(*g >= e && *g < e + 60, "gaps {gaps:?}");
        }
        assert_eq!(sim.core.snapshot(sim.now()).failback_delay_secs, 3600);
    }

    #[test]
    fn after_a_confirmed_failback_a_new_failure_goes_back_to_the_backup_not_down_the_chain() {
        // Found in the lab: the primary failed again soon after a confirmed failback, and
        // the walk skipped the healthy backup as "already tried" and went to the tertiary.
        let mut sim = Sim::new(config(&["2", "3"]))
            .line("1", |t| match t {
                0..=99 => Line::Up,
                100..=399 => Line::Blackhole,
                // Up long enough for the vote (30 s) and the trial to be confirmed
                // (GRACE 30 s), not long enough to count as stable (CONNECT_TIMEOUT 60 s).
                400..=489 => Line::Up,
                _ => Line::Blackhole,
            })
            .line("2", |_| Line::Up)
            .line("3", |_| Line::Up);
        sim.start("1", true);
        sim.run_until(1200);
        let acts = sim.activates();
        let failbacks: Vec<_> = acts
            .iter()
            .filter(|(_, p, k)| p == "1" && *k == SwitchKind::Failback)
            .collect();
        assert_eq!(failbacks.len(), 1, "{}", sim.dump());
        assert!(failbacks[0].0 >= 430 && failbacks[0].0 < 460, "{acts:?}");
        let after: Vec<_> = acts.iter().filter(|(t, _, _)| *t >= 490).collect();
        assert_eq!(after.first().map(|a| a.1.as_str()), Some("2"), "{acts:?}");
        assert!(!acts.iter().any(|(_, p, _)| p == "3"), "{acts:?}");
    }

    #[test]
    fn flapping_primary_gets_at_most_one_failback_attempt_per_window() {
        // The primary flips every 10 s for an hour; pre-tests sample the line.
        let flap = |t: u64| {
            if t < 50 {
                Line::Up
            } else if (t / 10) % 2 == 0 {
                Line::Down
            } else {
                Line::Up
            }
        };
        let mut sim = Sim::new(config(&["2"]))
            .line("1", flap)
            .line("2", |_| Line::Up);
        sim.pretest = Some(Box::new(move |p, n, t| {
            let passed = (0..u64::from(n))
                .filter(|i| flap(t + i * 4) == Line::Up)
                .count() as u32;
            if p == "1" {
                (passed, n - passed)
            } else {
                (n, 0)
            }
        }));
        sim.start("1", true);
        sim.run_until(3600);
        let to_primary: Vec<u64> = sim
            .activates()
            .into_iter()
            .filter(|(_, p, _)| p == "1")
            .map(|(t, _, _)| t)
            .collect();
        // windows: each failback attempt is at least the (doubling) delay after the last
        // switch to the backup; in one hour at most 300 + 600 + 1200 fit: <= 3 attempts.
        assert!(to_primary.len() <= 3, "{to_primary:?}\n{}", sim.dump());
        let to_backup: Vec<u64> =
            sim.times(|a| matches!(a, Action::SwitchCompleted { to, .. } if to.as_str() == "2"));
        let mut delay = 300;
        for t in &to_primary {
            let arrived = to_backup.iter().rev().find(|&&b| b <= *t).copied().unwrap();
            assert!(
                t - arrived >= delay,
                "failback at {t}, on backup since {arrived}"
            );
            delay = (delay * 2).min(3600);
        }
        let total_switches = sim.count(|a| matches!(a, Action::SwitchCompleted { .. }));
        assert!(
            total_switches <= 1 + 2 * to_primary.len(),
            "{total_switches}"
        );
    }

    #[test]
    fn manual_failover_pins_until_failback_or_auto_on() {
        let mut sim = Sim::new(config(&["2", "3"]))
            .line("1", |_| Line::Up)
            .line("2", |_| Line::Up)
            .line("3", |_| Line::Up);
        sim.start("1", true);
        sim.at(10, cmd(Command::Failover(name("3"))));
        sim.run_until(2000);
        assert_eq!(sim.activates(), vec![(10, "3".into(), SwitchKind::Manual)]);
        let s = sim.core.snapshot(sim.now());
        assert!(s.pinned);
        assert_eq!(s.phase, "Online(3)");
        assert_eq!(s.next_failback_in_secs, None);
        // unknown profile and the active one: refused / no switch, no panic
        sim.feed(cmd(Command::Failover(name("nope"))));
        sim.feed(cmd(Command::Failover(name("3"))));
        assert_eq!(sim.count(is_activate), 1);
        assert!(
            sim.log
                .iter()
                .any(|r| matches!(&r.action, Action::Reply { ok: false, .. }))
        );
        // auto on releases the pin: failback at once (the delay has long passed)
        sim.at(2001, cmd(Command::Auto(true)));
        sim.run_until(2100);
        let acts = sim.activates();
        assert_eq!(acts.len(), 2, "{}", sim.dump());
        assert_eq!((acts[1].1.as_str(), acts[1].2), ("1", SwitchKind::Failback));
        assert!(sim.log.iter().any(|r| r.t == 2001
            && matches!(&r.action, Action::Pretest { profile, attempts: 1, .. } if profile.as_str() == "1")));

        // failback --force skips the pre-test
        sim.at(2200, cmd(Command::Failover(name("2"))));
        sim.at(2300, cmd(Command::Failback { force: true }));
        sim.run_until(2400);
        let n_pre =
            sim.count(|a| matches!(a, Action::Pretest { profile, .. } if profile.as_str() == "1"));
        assert_eq!(n_pre, 3, "the one vote of `auto on`");
        let last = sim.activates().pop().unwrap();
        assert_eq!((last.0, last.1.as_str()), (2300, "1"));
        assert!(!sim.core.snapshot(sim.now()).pinned);
    }

    #[test]
    fn auto_off_pauses_failback_but_not_failover() {
        let mut sim = Sim::new(config(&["2"]))
            .line("1", |t| if t < 100 { Line::Up } else { Line::Blackhole })
            .line("2", |_| Line::Up);
        sim.at(5, cmd(Command::Auto(false)));
        sim.start("1", true);
        sim.run_until(3000);
        assert_eq!(
            sim.activates(),
            vec![(106, "2".into(), SwitchKind::Failover)]
        );
        assert_eq!(
            sim.count(|a| matches!(a, Action::Pretest { profile, .. } if profile.as_str() == "1")),
            0
        );
    }

    #[test]
    fn disconnect_during_a_switch_stops_and_never_switches_again() {
        for when in [106u64, 107, 108] {
            let mut sim = Sim::new(config(&["2"]))
                .line("1", |t| if t < 100 { Line::Up } else { Line::Blackhole })
                .line("2", |_| Line::Up);
            sim.dial_secs = 10;
            sim.start("1", true);
            sim.at(when, Event::KeepconnectedRemoved);
            sim.run_until(when);
            let last = sim.log.last().unwrap().action.clone();
            assert_eq!(last, Action::Exit(0), "{}", sim.dump());
            assert!(
                sim.log
                    .iter()
                    .any(|r| r.t == when && matches!(r.action, Action::StopRed { .. }))
            );
            let n = sim.log.len();
            // whatever follows: nothing
            for ev in chaos() {
                sim.feed(ev);
            }
            sim.run_until(10_000);
            assert_eq!(sim.log.len(), n);
        }
    }

    #[test]
    fn disconnect_during_holdoff_stops_and_never_switches() {
        // failover off: between attempts
        let mut sim = Sim::new(legacy(1, 30, Some("2")))
            .line("1", |_| Line::Down)
            .line("2", |_| Line::Up);
        sim.start("1", false);
        sim.at(170, Event::KeepconnectedRemoved);
        sim.run_until(10_000);
        assert_eq!(sim.count(is_activate), 0, "{}", sim.dump());
        assert_eq!(sim.count(is_restart), 0);
        assert_eq!(sim.log.last().unwrap().action, Action::Exit(0));
        // failover on: between passes
        let mut sim = Sim::new(config(&["2"]))
            .line("1", |t| if t < 10 { Line::Up } else { Line::Blackhole })
            .line("2", |_| Line::Down);
        sim.start("1", true);
        sim.run_until(100);
        let phase = sim.core.snapshot(sim.now()).phase;
        assert_eq!(phase, "Holdoff", "{}", sim.dump());
        let n = sim.count(|a| is_activate(a) || is_restart(a));
        sim.feed(Event::KeepconnectedRemoved);
        for ev in chaos() {
            sim.feed(ev);
        }
        sim.run_until(10_000);
        assert_eq!(sim.count(|a| is_activate(a) || is_restart(a)), n);
    }

    fn chaos() -> Vec<Event> {
        vec![
            Event::Tick,
            Event::RedUp,
            Event::Healthy,
            Event::LinkLost {
                reason: "x".into(),
                carrier_lost: false,
            },
            Event::Unhealthy { reason: "x".into() },
            Event::ActivateDone {
                profile: name("2"),
                ok: true,
                error: None,
            },
            cmd(Command::Reconnect),
            cmd(Command::Failover(name("2"))),
            cmd(Command::Failback { force: true }),
            cmd(Command::Auto(true)),
            Event::Reload(Box::new(config(&["2"]))),
            Event::Start {
                active: name("1"),
                red_active: false,
                keepconnected: None,
            },
        ]
    }

    #[test]
    fn sigterm_saves_and_exits_without_stopping_red() {
        let mut sim = Sim::new(config(&["2"])).line("1", |_| Line::Up);
        sim.start("1", true);
        sim.run_until(50);
        let n = sim.log.len();
        sim.feed(Event::Terminate);
        let tail: Vec<Action> = sim.log[n..].iter().map(|r| r.action.clone()).collect();
        assert!(tail.contains(&Action::SaveState));
        assert_eq!(tail.last(), Some(&Action::Exit(0)));
        assert!(!tail.iter().any(|a| matches!(a, Action::StopRed { .. })));
    }

    #[test]
    fn sighup_reload_keeps_state() {
        let mut sim = Sim::new(config(&["2"]))
            .line("1", |t| if t < 100 { Line::Up } else { Line::Blackhole })
            .line("2", |_| Line::Up);
        sim.start("1", true);
        sim.run_until(200);
        let before = sim.core.snapshot(sim.now());
        let mut c = config(&["2", "3"]);
        c.connect_timeout = Duration::from_secs(90);
        sim.feed(Event::Reload(Box::new(c.clone())));
        let after = sim.core.snapshot(sim.now());
        assert_eq!(before.phase, after.phase);
        assert_eq!(before.active, after.active);
        assert_eq!(before.switch_count, after.switch_count);
        assert_eq!(before.next_failback_in_secs, after.next_failback_in_secs);
        assert_eq!(sim.core.config().connect_timeout, Duration::from_secs(90));
        // the active backup vanishes from the chain: stay on it until the next decision
        sim.feed(Event::Reload(Box::new(config(&["3"]))));
        assert_eq!(sim.core.active().as_str(), "2");
        assert_eq!(sim.core.snapshot(sim.now()).phase, "Online(2)");
    }

    #[test]
    fn shared_device_primary_is_tried_without_a_pretest() {
        let mut c = config(&["2"]);
        c.chain[0].device = "red0".into();
        let mut sim = Sim::new(c)
            .line("1", |t| {
                if (100..200).contains(&t) {
                    Line::Blackhole
                } else {
                    Line::Up
                }
            })
            .line("2", |_| Line::Up);
        sim.start("1", true);
        sim.run_until(1000);
        assert_eq!(
            sim.count(|a| matches!(a, Action::Pretest { .. })),
            0,
            "{}",
            sim.dump()
        );
        let acts = sim.activates();
        assert_eq!(acts[0].1, "2");
        assert_eq!((acts[1].1.as_str(), acts[1].2), ("1", SwitchKind::Failback));
        assert_eq!(acts[1].0 - 109, 300);
    }

    #[test]
    fn restore_and_snapshot_round_trip_through_json() {
        let mut core = Core::new(config(&["2"]));
        let saved = crate::supervisor::machine::Persisted {
            active: name("2"),
            failback_delay_secs: 1200,
            switch_count: 7,
            pinned: false,
            auto: true,
        };
        let json = serde_json::to_string(&saved).unwrap();
        let back: crate::supervisor::machine::Persisted = serde_json::from_str(&json).unwrap();
        core.restore(&back);
        let t = SystemClock.now();
        core.step(
            Event::Start {
                active: name("2"),
                red_active: true,
                keepconnected: Some(0),
            },
            t,
        );
        let s = core.snapshot(t + Duration::from_secs(5));
        assert_eq!(s.failback_delay_secs, 1200);
        assert_eq!(s.switch_count, 7);
        assert_eq!(s.next_failback_in_secs, Some(1195));
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["state"], "online");
        assert_eq!(v["active"], "2");
        assert_eq!(v["primary"], "1");
    }

    #[test]
    fn absurd_timers_are_capped_instead_of_overflowing() {
        let mut c = config(&["2"]);
        c.connect_timeout = Duration::from_secs(u64::MAX / 4);
        c.failback_delay = Duration::from_secs(u64::MAX / 4);
        c.failback_delay_max = Duration::from_secs(u64::MAX / 2);
        c.primary.holdoff = Duration::from_secs(u64::MAX / 4);
        let mut sim = Sim::new(c)
            .line("1", |t| if t < 10 { Line::Up } else { Line::Down })
            .line("2", |_| Line::Up);
        sim.start("1", true);
        sim.run_until(100);
        assert!(sim.core.next_deadline().is_some());
    }

    #[test]
    fn activation_failure_counts_as_the_candidate_failing() {
        let mut sim = Sim::new(config(&["2", "3"]))
            .line("1", |t| if t < 100 { Line::Up } else { Line::Blackhole })
            .line("2", |_| Line::Up)
            .line("3", |_| Line::Up);
        sim.activate_ok = Box::new(|p| p != "2");
        sim.start("1", true);
        sim.run_until(300);
        let acts: Vec<String> = sim.activates().into_iter().map(|(_, p, _)| p).collect();
        assert_eq!(acts, vec!["2", "3"], "{}", sim.dump());
        assert_eq!(sim.core.snapshot(sim.now()).phase, "Online(3)");
    }
}
