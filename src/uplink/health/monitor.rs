//! The voting: round results in, a verdict out. Pure: no I/O, time passed in.
//!
//! A round passes when at least RELIABILITY voting targets answered (capped at the number
//! of targets, so a missing DNS target never makes every round fail) **and**, when any
//! [`Role::Internet`] target is configured, at least one of those answered. A failed round
//! asks for the next one at once (confirm rounds) instead of after CHECK_INTERVAL; FAILURES
//! consecutive failed rounds are [`Verdict::Down`]. Each target keeps its last `window`
//! rounds for RTT and loss; with MAX_LOSS or MAX_RTT set, a full window in which fewer than
//! RELIABILITY targets meet them (or no `Internet` one does) is also `Down`, with the
//! numbers as the reason. The gateway is tracked and reported like a target but never
//! counted.
//!
//! # What counts (issue 13, DESIGN.md 5)
//!
//! A target counts only for what its answer proves about the path beyond the ISP:
//!
//! * an ICMP echo reply from an internet address, or a TCP handshake on a port that
//!   middleboxes leave alone: the packet went there and back ([`Role::Internet`]);
//! * the uplink's resolver: even a random name answered with the zone's SOA (see `dns`)
//!   proves only that *the resolver* reached the zone's authority, over a path that may not
//!   be ours (a resolver farm with its own transit), and a validating resolver may still
//!   synthesize the answer from its cache (RFC 8198); a resolver that answered from its
//!   cache kept a dead uplink "healthy" for as long as the record lived. So DNS is
//!   [`Role::Corroborating`]: it adds to the count towards RELIABILITY, but cannot make a
//!   round pass on its own while every ICMP/TCP target is silent;
//! * a TCP handshake on a port that transparent proxies and captive portals take over (53,
//!   80, 443, ...): the SYN-ACK may come from the middlebox, so it corroborates too;
//! * the gateway answers whenever the ISP's first hop is up, upstream dead or not: it is
//!   reported, never counted ([`Role::Gateway`]).
//!
//! When the administrator configured corroborating targets only (`FAILOVER_CHECK_HOST`
//! empty, or `tcp:` targets on proxied ports only, with DNS on), they vote alone: there is
//! nothing better to ask, and the DNS answer is still checked to come from the zone's
//! authority for a name no cache can hold.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::target::{Role, TargetResult};
use crate::ipfire::policy::Policy;

/// What the monitor concludes after a round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The round passed (and the quality triggers, when set, are met).
    Healthy,
    /// Rounds failed, fewer than FAILURES in a row: confirm rounds follow at once.
    Suspect {
        /// Which targets failed and why.
        reason: String,
    },
    /// The uplink does not carry traffic (or not well enough).
    Down {
        /// For the log line and the `REASON` of hooks.
        reason: String,
    },
}

impl Verdict {
    /// `healthy`, `suspect` or `down`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Verdict::Healthy => "healthy",
            Verdict::Suspect { .. } => "suspect",
            Verdict::Down { .. } => "down",
        }
    }
}

/// One target in the `health` object of `status --json` (DESIGN.md 7).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TargetStatus {
    /// The target as configured (`9.9.9.9`, `tcp:HOST:PORT`, `dns:...`) or the gateway.
    pub host: String,
    /// RTT of the last round in ms; `null` when it did not answer.
    pub rtt_ms: Option<f64>,
    /// Mean RTT over the window in ms; `null` when nothing answered.
    pub avg_rtt_ms: Option<f64>,
    /// Loss over the window in percent.
    pub loss_pct: f64,
    /// Rounds in the window.
    pub samples: usize,
    /// Why the last probe failed.
    pub error: Option<String>,
}

/// The `health` object of `status --json` and `check --json`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HealthStatus {
    /// The last verdict is healthy (false before the first round).
    pub healthy: bool,
    /// `healthy`, `suspect`, `down`, or `unknown` before the first round.
    pub verdict: String,
    /// The reason of a suspect or down verdict.
    pub reason: Option<String>,
    /// Consecutive failed rounds.
    #[serde(default)]
    pub failed_rounds: u32,
    /// Rounds recorded since the monitor started.
    #[serde(default)]
    pub rounds: u64,
    /// The internet targets, in policy order.
    pub targets: Vec<TargetStatus>,
    /// The gateway, when one is known.
    pub gateway: Option<TargetStatus>,
}

#[derive(Debug, Clone)]
struct Track {
    host: String,
    role: Role,
    window: VecDeque<Option<Duration>>,
    last: Option<TargetResult>,
}

impl Track {
    fn new(host: &str, role: Role) -> Track {
        Track {
            host: host.to_string(),
            role,
            window: VecDeque::new(),
            last: None,
        }
    }

    fn push(&mut self, r: &TargetResult, cap: usize) {
        if self.window.len() == cap {
            self.window.pop_front();
        }
        self.window.push_back(r.rtt);
        self.last = Some(r.clone());
    }

    fn loss_pct(&self) -> f64 {
        if self.window.is_empty() {
            return 0.0;
        }
        let lost = self.window.iter().filter(|s| s.is_none()).count();
        lost as f64 * 100.0 / self.window.len() as f64
    }

    fn avg_rtt(&self) -> Option<Duration> {
        let ok: Vec<Duration> = self.window.iter().flatten().copied().collect();
        if ok.is_empty() {
            return None;
        }
        Some(ok.iter().sum::<Duration>() / ok.len() as u32)
    }

    fn status(&self) -> TargetStatus {
        let ms = |d: Duration| (d.as_secs_f64() * 10_000.0).round() / 10.0;
        TargetStatus {
            host: self.host.clone(),
            rtt_ms: self.last.as_ref().and_then(|l| l.rtt).map(ms),
            avg_rtt_ms: self.avg_rtt().map(ms),
            loss_pct: (self.loss_pct() * 10.0).round() / 10.0,
            samples: self.window.len(),
            error: self.last.as_ref().and_then(|l| l.error.clone()),
        }
    }
}

/// Turns rounds into verdicts under one policy.
#[derive(Debug, Clone)]
pub struct Monitor {
    reliability: usize,
    failures: u32,
    interval: Duration,
    window: usize,
    max_loss_pct: Option<u8>,
    max_rtt: Option<Duration>,
    failed: u32,
    rounds: u64,
    next: Instant,
    verdict: Option<Verdict>,
    targets: Vec<Track>,
    gateway: Option<Track>,
}

impl Monitor {
    /// A monitor for `policy` whose first round is due at `now`.
    pub fn new(policy: &Policy, now: Instant) -> Monitor {
        Monitor {
            reliability: policy.reliability.max(1),
            failures: policy.failures.max(1),
            interval: policy.check_interval,
            window: policy.window.max(1),
            max_loss_pct: policy.max_loss_pct,
            max_rtt: policy.max_rtt,
            failed: 0,
            rounds: 0,
            next: now,
            verdict: None,
            targets: Vec::new(),
            gateway: None,
        }
    }

    /// Forgets every round (a new uplink came up); the next round is due at `now`.
    pub fn reset(&mut self, now: Instant) {
        self.failed = 0;
        self.rounds = 0;
        self.next = now;
        self.verdict = None;
        self.targets.clear();
        self.gateway = None;
    }

    /// When the next round is due: `interval` after a passed round, at once after a failed
    /// one (confirm round), `interval` again once the uplink is declared down.
    pub fn next_round_at(&self) -> Instant {
        self.next
    }

    /// Consecutive failed rounds so far.
    pub fn failed_rounds(&self) -> u32 {
        self.failed
    }

    /// The last verdict; `None` before the first round.
    pub fn verdict(&self) -> Option<&Verdict> {
        self.verdict.as_ref()
    }

    /// Records one round that ended at `now` and returns the verdict.
    pub fn record(&mut self, results: &[TargetResult], now: Instant) -> Verdict {
        self.rounds += 1;
        // Tracks follow the targets of this round, in their order (targets are rebuilt when
        // the policy or the uplink changes; stale ones go).
        let mut tracks = Vec::new();
        let mut gateway = None;
        for r in results {
            match r.role {
                Role::Internet | Role::Corroborating => {
                    let pos = self
                        .targets
                        .iter()
                        .position(|t| t.host == r.host && t.role == r.role);
                    let mut t = match pos {
                        Some(p) => self.targets.swap_remove(p),
                        None => Track::new(&r.host, r.role),
                    };
                    t.push(r, self.window);
                    tracks.push(t);
                }
                Role::Gateway => {
                    let mut t = match self.gateway.take() {
                        Some(g) if g.host == r.host => g,
                        _ => Track::new(&r.host, r.role),
                    };
                    t.push(r, self.window);
                    gateway = Some(t);
                }
            }
        }
        self.targets = tracks;
        self.gateway = gateway;

        let internet: Vec<&TargetResult> = results.iter().filter(|r| r.role.votes()).collect();
        let required = self.reliability.min(internet.len());
        let answered = internet.iter().filter(|r| r.answered()).count();
        // The path targets: when there are any, one of them must answer (module docs).
        let path: Vec<&&TargetResult> = internet
            .iter()
            .filter(|r| r.role == Role::Internet)
            .collect();
        let path_answered = path.is_empty() || path.iter().any(|r| r.answered());

        let verdict = if answered >= required && path_answered {
            self.failed = 0;
            self.next = now + self.interval;
            match self.quality_problem(required) {
                Some(reason) => Verdict::Down { reason },
                None => Verdict::Healthy,
            }
        } else {
            self.failed += 1;
            let failures: Vec<String> = internet
                .iter()
                .filter(|r| !r.answered())
                .map(|r| format!("{}: {}", r.host, r.error.as_deref().unwrap_or("no reply")))
                .collect();
            let reason = if answered >= required {
                let by: Vec<&str> = internet
                    .iter()
                    .filter(|r| r.answered())
                    .map(|r| r.host.as_str())
                    .collect();
                format!(
                    "only {} answered, which a resolver or proxy on the ISP's side can do \
                     without the upstream; no ICMP/TCP target did ({})",
                    by.join(", "),
                    failures.join("; ")
                )
            } else {
                format!(
                    "{answered} of {} targets answered, {required} required ({})",
                    internet.len(),
                    failures.join("; ")
                )
            };
            if self.failed >= self.failures {
                self.next = now + self.interval;
                Verdict::Down {
                    reason: format!("{} consecutive failed rounds: {reason}", self.failed),
                }
            } else {
                self.next = now;
                Verdict::Suspect { reason }
            }
        };
        self.verdict = Some(verdict.clone());
        verdict
    }

    /// With quality triggers set: the reason when fewer than `required` targets with a full
    /// window meet them (targets whose window is not full yet get the benefit of the doubt).
    fn quality_problem(&self, required: usize) -> Option<String> {
        if self.max_loss_pct.is_none() && self.max_rtt.is_none() {
            return None;
        }
        let mut good = 0;
        let mut path_good = false;
        let has_path = self.targets.iter().any(|t| t.role == Role::Internet);
        let mut bad = Vec::new();
        for t in &self.targets {
            if t.window.len() < self.window {
                good += 1;
                path_good |= t.role == Role::Internet;
                continue;
            }
            let mut why = Vec::new();
            if let Some(max) = self.max_loss_pct {
                let loss = t.loss_pct();
                if loss > f64::from(max) {
                    why.push(format!("loss {loss:.0}% > {max}%"));
                }
            }
            if let (Some(max), Some(avg)) = (self.max_rtt, t.avg_rtt()) {
                if avg > max {
                    why.push(format!(
                        "rtt {} ms > {} ms",
                        avg.as_millis(),
                        max.as_millis()
                    ));
                }
            }
            if why.is_empty() {
                good += 1;
                path_good |= t.role == Role::Internet;
            } else {
                bad.push(format!("{}: {}", t.host, why.join(", ")));
            }
        }
        if good >= required && (path_good || !has_path) {
            None
        } else {
            Some(format!(
                "quality over the last {} rounds: {}",
                self.window,
                bad.join("; ")
            ))
        }
    }

    /// The `health` object.
    pub fn status(&self) -> HealthStatus {
        let (verdict, reason) = match &self.verdict {
            None => ("unknown".to_string(), None),
            Some(Verdict::Healthy) => ("healthy".to_string(), None),
            Some(Verdict::Suspect { reason }) => ("suspect".to_string(), Some(reason.clone())),
            Some(Verdict::Down { reason }) => ("down".to_string(), Some(reason.clone())),
        };
        HealthStatus {
            healthy: self.verdict == Some(Verdict::Healthy),
            verdict,
            reason,
            failed_rounds: self.failed,
            rounds: self.rounds,
            targets: self.targets.iter().map(Track::status).collect(),
            gateway: self.gateway.as_ref().map(Track::status),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::clock::{Clock, SystemClock};
    use crate::uplink::health::target::Target;
    use std::net::Ipv4Addr;

    const RTT: Duration = Duration::from_millis(20);

    fn targets(n: u8) -> Vec<Target> {
        (1..=n)
            .map(|i| Target::icmp(Ipv4Addr::new(203, 0, 113, i)))
            .collect()
    }

    fn round(ts: &[Target], up: &[bool]) -> Vec<TargetResult> {
        ts.iter()
            .zip(up)
            .map(|(t, &u)| {
                if u {
                    TargetResult::ok(t, RTT)
                } else {
                    TargetResult::failed(t, "no reply within 1000 ms")
                }
            })
            .collect()
    }

    /// xorshift64*: a seeded PRNG, enough for loss patterns.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn chance(&mut self, pct: u64) -> bool {
            self.next() % 100 < pct
        }
    }

    #[test]
    fn twenty_percent_loss_on_three_targets_never_declares_down() {
        let p = Policy::default();
        let ts = targets(3);
        let t0 = SystemClock.now();
        let mut m = Monitor::new(&p, t0);
        let mut rng = Rng(0x00c0_ffee_1234_5678);
        let (mut suspects, mut now) = (0, t0);
        for i in 0..10_000 {
            let up: Vec<bool> = (0..3).map(|_| !rng.chance(20)).collect();
            now = m.next_round_at().max(now) + p.check_timeout;
            let v = m.record(&round(&ts, &up), now);
            assert!(
                !matches!(v, Verdict::Down { .. }),
                "false down in round {i}: {v:?}"
            );
            if matches!(v, Verdict::Suspect { .. }) {
                suspects += 1;
            }
        }
        // 0.2^3 = 0.8 % of rounds fail on their own: the confirm logic was exercised.
        assert!(suspects > 20, "only {suspects} failed rounds");
        let s = m.status();
        for t in &s.targets {
            assert!(t.loss_pct > 0.0 && t.loss_pct < 60.0, "{t:?}");
        }
    }

    #[test]
    fn blackhole_is_down_after_exactly_failures_rounds_with_immediate_confirms() {
        for failures in [1u32, 3, 5] {
            let p = Policy {
                failures,
                ..Policy::default()
            };
            let ts = targets(3);
            let t0 = SystemClock.now();
            let mut m = Monitor::new(&p, t0);
            assert_eq!(m.record(&round(&ts, &[true; 3]), t0), Verdict::Healthy);
            assert_eq!(m.next_round_at(), t0 + p.check_interval);
            let mut now = m.next_round_at();
            for k in 1..=failures {
                now += p.check_timeout;
                let v = m.record(&round(&ts, &[false; 3]), now);
                if k < failures {
                    assert!(matches!(v, Verdict::Suspect { .. }), "{k}: {v:?}");
                    assert_eq!(m.next_round_at(), now, "confirm round at once");
                } else {
                    let Verdict::Down { reason } = v else {
                        panic!("not down after {k} rounds: {v:?}")
                    };
                    assert!(reason.contains("203.0.113.1: no reply"), "{reason}");
                    assert_eq!(m.next_round_at(), now + p.check_interval);
                }
            }
            assert!(!m.status().healthy);
            // One good round recovers.
            assert_eq!(
                m.record(&round(&ts, &[false, true, false]), now),
                Verdict::Healthy
            );
            assert_eq!(m.failed_rounds(), 0);
        }
    }

    #[test]
    fn a_passing_round_in_between_resets_the_count() {
        let p = Policy::default();
        let ts = targets(2);
        let t0 = SystemClock.now();
        let mut m = Monitor::new(&p, t0);
        for _ in 0..10 {
            m.record(&round(&ts, &[false, false]), t0);
            m.record(&round(&ts, &[false, false]), t0);
            assert_eq!(m.record(&round(&ts, &[false, true]), t0), Verdict::Healthy);
        }
    }

    #[test]
    fn reliability_counts_answers_and_is_capped_at_the_targets() {
        let p = Policy {
            reliability: 2,
            failures: 1,
            ..Policy::default()
        };
        let ts = targets(3);
        let t0 = SystemClock.now();
        let mut m = Monitor::new(&p, t0);
        assert!(matches!(
            m.record(&round(&ts, &[true, false, false]), t0),
            Verdict::Down { .. }
        ));
        assert_eq!(
            m.record(&round(&ts, &[true, false, true]), t0),
            Verdict::Healthy
        );
        // Only one target left (e.g. no DNS servers known): one answer is enough.
        let one = targets(1);
        assert_eq!(m.record(&round(&one, &[true]), t0), Verdict::Healthy);
        assert_eq!(m.status().targets.len(), 1, "stale targets are dropped");
    }

    #[test]
    fn the_gateway_is_reported_but_never_votes() {
        let p = Policy {
            failures: 1,
            ..Policy::default()
        };
        let gw = Target::gateway(Ipv4Addr::new(198, 51, 100, 1));
        let inet = Target::icmp(Ipv4Addr::new(203, 0, 113, 1));
        let t0 = SystemClock.now();
        let mut m = Monitor::new(&p, t0);
        // Gateway silent (many routers drop pings), internet fine: healthy.
        let v = m.record(
            &[
                TargetResult::ok(&inet, RTT),
                TargetResult::failed(&gw, "no reply"),
            ],
            t0,
        );
        assert_eq!(v, Verdict::Healthy);
        // Gateway answers, internet does not (blackhole upstream): down.
        let v = m.record(
            &[
                TargetResult::failed(&inet, "no reply"),
                TargetResult::ok(&gw, RTT),
            ],
            t0,
        );
        assert!(matches!(v, Verdict::Down { .. }), "{v:?}");
        let s = m.status();
        assert_eq!(s.targets.len(), 1);
        let g = s.gateway.unwrap();
        assert_eq!((g.host.as_str(), g.rtt_ms), ("198.51.100.1", Some(20.0)));
        assert_eq!(g.loss_pct, 50.0);
    }

    fn dns() -> Target {
        Target {
            host: "dns:198.51.100.53".into(),
            probe: crate::uplink::health::target::Probe::Dns(
                vec![Ipv4Addr::new(198, 51, 100, 53)],
                "ipfire.org".into(),
            ),
            role: Role::Corroborating,
        }
    }

    #[test]
    fn a_resolver_answering_from_its_cache_never_keeps_a_dead_uplink_healthy() {
        // Issue 13: the defaults (RELIABILITY 1, DNS on); the ISP's upstream is dead, every
        // ICMP target silent, the ISP's resolver still answers. Down after FAILURES rounds.
        let p = Policy::default();
        let mut ts = targets(3);
        ts.push(dns());
        let t0 = SystemClock.now();
        let mut m = Monitor::new(&p, t0);
        assert_eq!(m.record(&round(&ts, &[true; 4]), t0), Verdict::Healthy);
        let mut v = Verdict::Healthy;
        for k in 1..=p.failures {
            v = m.record(&round(&ts, &[false, false, false, true]), t0);
            if k < p.failures {
                let Verdict::Suspect { reason } = &v else {
                    panic!("round {k}: {v:?}")
                };
                assert!(
                    reason.contains("only dns:198.51.100.53 answered")
                        && reason.contains("203.0.113.1: no reply"),
                    "{reason}"
                );
            }
        }
        assert!(matches!(v, Verdict::Down { .. }), "{v:?}");
        // The DNS target is still shown, with its answers.
        let s = m.status();
        assert_eq!(s.targets.len(), 4);
        assert_eq!(s.targets[3].host, "dns:198.51.100.53");
        assert_eq!(s.targets[3].loss_pct, 0.0);
        // One ICMP answer next to it: healthy again.
        assert_eq!(
            m.record(&round(&ts, &[false, true, false, true]), t0),
            Verdict::Healthy
        );
    }

    #[test]
    fn the_resolver_on_the_gateway_and_the_gateway_together_do_not_pass_a_round() {
        // A resolver on the gateway answering (from its cache, or a wildcard) plus the
        // gateway's echo: neither says anything beyond the first hop.
        let p = Policy {
            failures: 1,
            ..Policy::default()
        };
        let inet = Target::icmp(Ipv4Addr::new(203, 0, 113, 1));
        let gw = Target::gateway(Ipv4Addr::new(198, 51, 100, 1));
        let t0 = SystemClock.now();
        let mut m = Monitor::new(&p, t0);
        let v = m.record(
            &[
                TargetResult::failed(&inet, "no reply"),
                TargetResult::ok(&dns(), RTT),
                TargetResult::ok(&gw, RTT),
            ],
            t0,
        );
        assert!(matches!(v, Verdict::Down { .. }), "{v:?}");
        assert_eq!(m.status().gateway.unwrap().loss_pct, 0.0, "still reported");
    }

    #[test]
    fn dns_corroborates_towards_reliability() {
        let p = Policy {
            reliability: 2,
            failures: 1,
            ..Policy::default()
        };
        let mut ts = targets(2);
        ts.push(dns());
        let t0 = SystemClock.now();
        let mut m = Monitor::new(&p, t0);
        // One ICMP answer and DNS: two, one of them on the path.
        assert_eq!(
            m.record(&round(&ts, &[true, false, true]), t0),
            Verdict::Healthy
        );
        // One ICMP answer alone: one of two.
        assert!(matches!(
            m.record(&round(&ts, &[true, false, false]), t0),
            Verdict::Down { reason } if reason.contains("1 of 3 targets answered, 2 required")
        ));
    }

    #[test]
    fn corroborating_targets_vote_alone_when_nothing_else_is_configured() {
        // FAILOVER_CHECK_HOST empty, DNS on: the (random-label, checked) DNS answer decides.
        let p = Policy {
            failures: 1,
            ..Policy::default()
        };
        let ts = vec![dns()];
        let t0 = SystemClock.now();
        let mut m = Monitor::new(&p, t0);
        assert_eq!(m.record(&round(&ts, &[true]), t0), Verdict::Healthy);
        assert!(matches!(
            m.record(&round(&ts, &[false]), t0),
            Verdict::Down { .. }
        ));
    }

    #[test]
    fn a_tcp_target_on_a_proxied_port_does_not_outvote_silent_icmp_targets() {
        // A transparent proxy on the ISP's side completes the handshake on 443 whatever
        // lies beyond it; a handshake on 22 still counts (build_targets picks the roles).
        let p = Policy {
            failures: 1,
            ..Policy::default()
        };
        let icmp = Target::icmp(Ipv4Addr::new(203, 0, 113, 1));
        let https = Target {
            host: "tcp:203.0.113.2:443".into(),
            probe: crate::uplink::health::target::Probe::Tcp("203.0.113.2:443".parse().unwrap()),
            role: Role::Corroborating,
        };
        let ssh = Target {
            host: "tcp:203.0.113.2:22".into(),
            probe: crate::uplink::health::target::Probe::Tcp("203.0.113.2:22".parse().unwrap()),
            role: Role::Internet,
        };
        let t0 = SystemClock.now();
        let mut m = Monitor::new(&p, t0);
        let v = m.record(
            &[
                TargetResult::failed(&icmp, "no reply"),
                TargetResult::ok(&https, RTT),
            ],
            t0,
        );
        assert!(
            matches!(&v, Verdict::Down { reason } if reason.contains("only tcp:203.0.113.2:443")),
            "{v:?}"
        );
        let v = m.record(
            &[
                TargetResult::failed(&icmp, "no reply"),
                TargetResult::ok(&ssh, RTT),
            ],
            t0,
        );
        assert_eq!(v, Verdict::Healthy);
    }

    #[test]
    fn quality_needs_a_good_path_target_not_only_a_good_resolver() {
        let p = Policy {
            max_loss_pct: Some(30),
            window: 4,
            ..Policy::default()
        };
        let mut ts = targets(1);
        ts.push(dns());
        let t0 = SystemClock.now();
        let mut m = Monitor::new(&p, t0);
        // ICMP loses half, DNS all answered: every round passes, the window is lossy.
        let mut v = Verdict::Healthy;
        for i in 0..4 {
            v = m.record(&round(&ts, &[i % 2 == 1, true]), t0);
        }
        assert!(
            matches!(&v, Verdict::Down { reason } if reason.contains("203.0.113.1: loss 50% > 30%")),
            "{v:?}"
        );
    }

    #[test]
    fn quality_triggers_need_a_full_window() {
        let p = Policy {
            max_loss_pct: Some(30),
            max_rtt: Some(Duration::from_millis(100)),
            window: 10,
            ..Policy::default()
        };
        let ts = targets(2);
        let t0 = SystemClock.now();
        let mut m = Monitor::new(&p, t0);
        // 50 % loss on both, alternating so every round passes.
        let mut last = Verdict::Healthy;
        for i in 0..10 {
            let up = [i % 2 == 0, i % 2 == 1];
            last = m.record(&round(&ts, &up), t0);
            if i < 9 {
                assert_eq!(last, Verdict::Healthy, "round {i}: window not full yet");
            }
        }
        let Verdict::Down { reason } = last else {
            panic!("lossy uplink not down: {last:?}")
        };
        assert!(reason.contains("loss 50% > 30%"), "{reason}");
        // Slow but complete: the RTT trigger.
        let mut m = Monitor::new(&p, t0);
        let slow: Vec<TargetResult> = ts
            .iter()
            .map(|t| TargetResult::ok(t, Duration::from_millis(400)))
            .collect();
        let mut v = Verdict::Healthy;
        for _ in 0..10 {
            v = m.record(&slow, t0);
        }
        assert!(
            matches!(&v, Verdict::Down { reason } if reason.contains("rtt 400 ms > 100 ms")),
            "{v:?}"
        );
        // One good target is enough with RELIABILITY=1.
        let mut m = Monitor::new(&p, t0);
        for _ in 0..10 {
            v = m.record(
                &[
                    TargetResult::ok(&ts[0], RTT),
                    TargetResult::ok(&ts[1], Duration::from_millis(400)),
                ],
                t0,
            );
        }
        assert_eq!(v, Verdict::Healthy);
    }

    #[test]
    fn status_serialises_as_the_health_object() {
        let p = Policy::default();
        let ts = targets(1);
        let t0 = SystemClock.now();
        let mut m = Monitor::new(&p, t0);
        assert!(!m.status().healthy, "unknown before the first round");
        m.record(&round(&ts, &[true]), t0);
        let j = serde_json::to_value(m.status()).unwrap();
        assert_eq!(j["healthy"], true);
        assert_eq!(j["targets"][0]["host"], "203.0.113.1");
        assert_eq!(j["targets"][0]["rtt_ms"], 20.0);
        assert_eq!(j["targets"][0]["loss_pct"], 0.0);
        assert!(j["gateway"].is_null());
    }
}
