//! Benchmark driver for the health engine (used by `tools/bench-health`).
//!
//! ```text
//! bench-probe rounds IFACE N TARGET...       N rounds back to back with the real prober;
//!                                           prints per-round stats at the end
//! bench-probe watch IFACE DEV TARGET...      the monitor loop with the default policy
//!                                           (interval 2 s, timeout 1 s, failures 3) plus
//!                                           passive sampling every 100 ms; prints
//!                                           "EPOCH_MS EVENT detail" on every change
//! ```

use std::io::Write;
use std::net::Ipv4Addr;
use std::process::ExitCode;
use std::time::{Duration, UNIX_EPOCH};

use connectd::ipfire::paths::Paths;
use connectd::ipfire::policy::Policy;
use connectd::sys::clock::{Clock, SystemClock};
use connectd::uplink::health::{Monitor, Passive, Prober, RealProber, Target, Verdict};

fn epoch_ms() -> u128 {
    SystemClock
        .wall()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

fn targets(args: &[String]) -> Option<Vec<Target>> {
    args.iter()
        .map(|a| a.parse::<Ipv4Addr>().ok().map(Target::icmp))
        .collect()
}

/// Waits without a busy loop (poll on nothing).
fn pause(d: Duration) {
    let ms = i32::try_from(d.as_millis()).unwrap_or(i32::MAX);
    let _ = nix::poll::poll(
        &mut [],
        nix::poll::PollTimeout::try_from(ms).unwrap_or(nix::poll::PollTimeout::MAX),
    );
}

/// The host's own `/sys` and `/proc` (the root `/`).
fn host_root() -> Paths {
    Paths::new("/").expect("/ is a directory")
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("rounds") if args.len() >= 4 => {
            let iface = &args[1];
            let Ok(n) = args[2].parse::<u64>() else {
                return ExitCode::from(2);
            };
            let Some(ts) = targets(&args[3..]) else {
                return ExitCode::from(2);
            };
            let mut p = RealProber::new(&host_root());
            let (mut answered, mut sent) = (0u64, 0u64);
            let mut worst = Duration::ZERO;
            let start = SystemClock.now();
            for _ in 0..n {
                let t = SystemClock.now();
                let r = p.round(iface, &ts, Duration::from_secs(1));
                worst = worst.max(SystemClock.now() - t);
                sent += r.len() as u64;
                answered += r.iter().filter(|x| x.answered()).count() as u64;
            }
            let total = SystemClock.now() - start;
            println!(
                "rounds={n} targets={} answered={answered}/{sent} wall={:.3}s per_round_us={:.1} worst_round_ms={:.3}",
                ts.len(),
                total.as_secs_f64(),
                total.as_secs_f64() * 1e6 / n.max(1) as f64,
                worst.as_secs_f64() * 1e3
            );
            ExitCode::SUCCESS
        }
        Some("watch") if args.len() >= 4 => {
            let (iface, dev) = (&args[1], &args[2]);
            let Some(ts) = targets(&args[3..]) else {
                return ExitCode::from(2);
            };
            let policy = Policy::default();
            let host = host_root();
            let passive = Passive::with_roots(host.sys(), host.proc());
            let mut p = RealProber::new(&host);
            let mut m = Monitor::new(&policy, SystemClock.now());
            let mut last = String::new();
            let mut link_lost = false;
            let mut out = std::io::stdout();
            loop {
                // Passive sampling until the next round is due.
                loop {
                    let lost = passive.device(dev).lost();
                    if lost.is_some() != link_lost {
                        link_lost = lost.is_some();
                        let what = match &lost {
                            Some(r) => format!("link-lost {r}"),
                            None => "link-back".into(),
                        };
                        let _ = writeln!(out, "{} {what}", epoch_ms());
                        let _ = out.flush();
                    }
                    let now = SystemClock.now();
                    if now >= m.next_round_at() {
                        break;
                    }
                    pause((m.next_round_at() - now).min(Duration::from_millis(100)));
                }
                let r = p.round(iface, &ts, policy.check_timeout);
                let v = m.record(&r, SystemClock.now());
                let line = match &v {
                    Verdict::Healthy => "healthy".to_string(),
                    Verdict::Suspect { .. } => "suspect".to_string(),
                    Verdict::Down { reason } => format!("down {reason}"),
                };
                let name = v.as_str().to_string();
                if name != last {
                    let _ = writeln!(out, "{} {line}", epoch_ms());
                    let _ = out.flush();
                    last = name;
                }
            }
        }
        _ => {
            eprintln!("usage: bench-probe rounds IFACE N TARGET... | watch IFACE DEV TARGET...");
            ExitCode::from(2)
        }
    }
}
