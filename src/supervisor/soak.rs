//! Long-run soaks on a simulated clock: 30 simulated days of random faults on every link
//! for the decision core (in the `sim` world), and 30 simulated days of random probe
//! results for the health `Monitor`. Each checks its invariants as it goes and that its
//! internal collections stay bounded; the process RSS before and after is printed
//! (`cargo test soak -- --nocapture`) as a figure for RELIABILITY.md. The seed is printed;
//! `SOAK_SEED=N` replays a run.

use std::time::Duration;

use crate::sys::clock::{Clock as _, SystemClock};

use super::machine::{Action, TRANSITIONS_KEPT};
use super::sim::{Line, Sim, config};
use crate::ipfire::policy::Policy;
use crate::uplink::health::{Monitor, Verdict};
use crate::uplink::health::{Target, TargetResult};

const DAY: u64 = 86_400;
const DAYS: u64 = 30;

/// xorshift64*: seeded, printed, replayable.
struct Rng(u64);

impl Rng {
    fn seeded(what: &str) -> Rng {
        let seed = std::env::var("SOAK_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
                    | 1
            });
        eprintln!("{what}: SOAK_SEED={seed}");
        Rng(seed)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// A random fault schedule for one link: `(from, to, line)` outages, sorted, none after
/// `clear_after`. Outages: down or blackhole, 5 s .. 3 h, every 20 min .. 12 h.
fn schedule(rng: &mut Rng, clear_after: u64) -> Vec<(u64, u64, Line)> {
    let mut out = Vec::new();
    let mut t = rng.below(6 * 3600);
    while t < clear_after {
        let len = 5 + rng.below(3 * 3600);
        let kind = if rng.below(3) == 0 {
            Line::Blackhole
        } else {
            Line::Down
        };
        out.push((t, (t + len).min(clear_after), kind));
        t += len + 1200 + rng.below(12 * 3600);
    }
    out
}

fn line_at(s: &[(u64, u64, Line)], t: u64) -> Line {
    let i = s.partition_point(|&(from, _, _)| from <= t);
    match i.checked_sub(1).map(|i| s[i]) {
        Some((_, to, l)) if t < to => l,
        _ => Line::Up,
    }
}

/// The resident set size of this process in KiB (`VmRSS` of `/proc/self/status`).
pub fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

#[test]
fn core_soak_30_simulated_days_of_random_faults_on_every_link() {
    let mut rng = Rng::seeded("core soak");
    let profiles = ["1", "2", "3"];
    // Faults for 29 days, then one quiet day: the box must end on the primary.
    let quiet_from = (DAYS - 1) * DAY;
    let mut sim = Sim::new(config(&["2", "3"]));
    for p in profiles {
        let s = schedule(&mut rng, quiet_from);
        sim = sim.line(p, move |t| line_at(&s, t));
    }
    sim.start("1", true);

    let wall = SystemClock.now();
    let mut rss_day1 = 0;
    let (mut activations, mut steps, mut most_per_hour) = (0usize, 0usize, 0usize);
    let mut end = 0;
    while end < DAYS * DAY {
        end += 3600;
        sim.run_until(end - 1);
        // Invariants over the hour (the sim itself asserts per step that no deadline is in
        // the past and nothing is acted on after Exit).
        assert!(!sim.exited, "the supervisor exited at t={}", sim.t);
        let snap = sim.core.snapshot(sim.now());
        assert!(
            snap.transitions.len() <= TRANSITIONS_KEPT,
            "{} transitions kept",
            snap.transitions.len()
        );
        assert!(profiles.contains(&snap.active.as_str()), "{snap:?}");
        let acts = sim.count(|a| matches!(a, Action::Activate { .. }));
        for r in &sim.log {
            if let Action::Activate { to, .. } = &r.action {
                assert!(profiles.contains(&to.as_str()), "activate {to}");
            }
        }
        // Episodes are separated by at least HOLDOFF (30 s): a bound with margin.
        assert!(
            acts <= 3 * (3600 / 30 + 3),
            "{acts} activations in hour {}",
            end / 3600
        );
        most_per_hour = most_per_hour.max(acts);
        activations += acts;
        steps += sim.fed.len();
        // The world's logs are the test's, not the core's: drop them so RSS shows the core.
        sim.log.clear();
        sim.fed.clear();
        if end == DAY {
            rss_day1 = rss_kib();
        }
    }
    let rss_end = rss_kib();
    let snap = sim.core.snapshot(sim.now());
    assert_eq!(
        snap.active.as_str(),
        "1",
        "not back on the primary after a quiet day: {snap:?}"
    );
    assert_eq!(snap.state, "online", "{snap:?}");
    assert!(
        activations > 50,
        "only {activations} activations: the faults did not bite"
    );
    eprintln!(
        "core soak: {DAYS} simulated days in {:?}, {steps} events, {activations} activations \
         ({} switches completed, at most {most_per_hour} in an hour), transitions kept {}, \
         RSS after day 1 {rss_day1} KiB, after day {DAYS} {rss_end} KiB (growth {} KiB)",
        wall.elapsed(),
        snap.switch_count,
        snap.transitions.len(),
        rss_end as i64 - rss_day1 as i64,
    );
}

#[test]
fn monitor_soak_30_simulated_days_of_random_results_keeps_windows_bounded() {
    let mut rng = Rng::seeded("monitor soak");
    let policy = Policy {
        max_loss_pct: Some(30),
        max_rtt: Some(Duration::from_millis(300)),
        ..Policy::default()
    };
    let sets: Vec<Vec<Target>> = vec![
        (1..=3)
            .map(|i| Target::icmp(std::net::Ipv4Addr::new(192, 0, 2, i)))
            .collect(),
        (1..=5)
            .map(|i| Target::icmp(std::net::Ipv4Addr::new(198, 51, 100, i)))
            .collect(),
        vec![Target::icmp(std::net::Ipv4Addr::new(203, 0, 113, 9))],
    ];
    let gateway = Target::gateway(std::net::Ipv4Addr::new(203, 0, 113, 1));
    let t0 = SystemClock.now();
    let mut m = Monitor::new(&policy, t0);
    let (mut now, mut rounds, mut set) = (t0, 0u64, 0usize);
    let (mut downs, mut loss_pct) = (0u64, 20u64);
    let end = t0 + Duration::from_secs(DAYS * DAY);
    let wall = SystemClock.now();
    let rss_before = rss_kib();
    while now < end {
        // Every few hours: a new loss level, sometimes a new target set (a reload) or a
        // new uplink (reset).
        if rounds % 5000 == 0 {
            loss_pct = rng.below(60);
            match rng.below(4) {
                0 => set = rng.below(sets.len() as u64) as usize,
                1 => m.reset(now),
                _ => {}
            }
        }
        let mut results: Vec<TargetResult> = sets[set]
            .iter()
            .map(|t| {
                if rng.below(100) < loss_pct {
                    TargetResult::failed(t, "no reply within 1000 ms")
                } else {
                    TargetResult::ok(t, Duration::from_millis(5 + rng.below(400)))
                }
            })
            .collect();
        if rng.below(10) > 0 {
            results.push(TargetResult::ok(&gateway, Duration::from_millis(1)));
        }
        now = m.next_round_at().max(now) + policy.check_timeout;
        if matches!(m.record(&results, now), Verdict::Down { .. }) {
            downs += 1;
        }
        rounds += 1;
        if rounds % 50 != 0 {
            assert!(m.next_round_at() >= now);
            continue;
        }
        let s = m.status();
        assert!(
            s.targets.len() <= sets[set].len(),
            "stale targets kept: {s:?}"
        );
        for t in s.targets.iter().chain(s.gateway.iter()) {
            assert!(t.samples <= policy.window, "window grew: {t:?}");
            assert!((0.0..=100.0).contains(&t.loss_pct), "{t:?}");
        }
        assert!(m.next_round_at() >= now);
    }
    let rss_after = rss_kib();
    assert!(downs > 0, "the random loss never declared the uplink down");
    eprintln!(
        "monitor soak: {DAYS} simulated days, {rounds} rounds in {:?}, {downs} down verdicts, \
         window <= {}, RSS {rss_before} -> {rss_after} KiB",
        wall.elapsed(),
        policy.window
    );
}
