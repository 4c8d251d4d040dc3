//! `connectd check`: one round now on the current RED, printed.

use std::io::Write;
use std::time::Duration;

use super::monitor::{Monitor, Verdict};
use super::probe::RealProber;
use super::target::{Prober, Role, TargetResult, build_targets};
use crate::error::{Error, Result};
use crate::ipfire::paths::Paths;
use crate::ipfire::policy::Policy;
use crate::sys::clock::{Clock, SystemClock};

/// The RED interface from `red/iface` (older builds: `red/device`).
pub fn red_iface(paths: &Paths) -> Option<String> {
    crate::ipfire::fsutil::read_word(&paths.red_iface())
        .or_else(|| crate::ipfire::fsutil::read_word(&paths.red_device()))
        .filter(|w| crate::ipfire::profile::valid_device(w))
}

fn line(r: &TargetResult) -> String {
    let label = match r.role {
        Role::Internet | Role::Corroborating => "target ",
        Role::Gateway => "gateway",
    };
    // DNS and proxied TCP ports never pass a round without an ICMP/TCP target: say so.
    let note = if r.role == Role::Corroborating {
        " (corroborates only)"
    } else {
        ""
    };
    match (&r.rtt, &r.error) {
        (Some(rtt), _) => format!("{label} {:<24} ok    {:.1} ms{note}", r.host, ms(*rtt)),
        (None, e) => format!(
            "{label} {:<24} FAIL  {}{note}",
            r.host,
            e.as_deref().unwrap_or("no reply")
        ),
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `connectd check [--json]`: exit 0 when the round passed, 1 when not.
pub fn run_check(paths: &Paths, json: bool) -> Result<u8> {
    let (policy, _) = Policy::load(paths, None)?;
    let iface = red_iface(paths).ok_or_else(|| {
        Error::Failed(format!(
            "RED is not up: {} names no interface",
            paths.red_iface().display()
        ))
    })?;
    let targets = build_targets(&policy, paths);
    let mut prober = RealProber::new(paths);
    let results = prober.round(&iface, &targets, policy.check_timeout);
    let now = SystemClock.now();
    let mut monitor = Monitor::new(&policy, now);
    let verdict = monitor.record(&results, now);
    let mut out = std::io::stdout().lock();
    let w = |out: &mut std::io::StdoutLock<'_>, s: String| {
        writeln!(out, "{s}").map_err(|e| Error::Failed(format!("stdout: {e}")))
    };
    if json {
        let text = serde_json::to_string_pretty(&monitor.status())
            .map_err(|e| Error::Failed(format!("cannot encode status: {e}")))?;
        w(&mut out, text)?;
    } else {
        w(&mut out, format!("interface {iface}"))?;
        for r in &results {
            w(&mut out, line(r))?;
        }
        if !results.iter().any(|r| r.role == Role::Gateway) {
            w(
                &mut out,
                format!(
                    "gateway  (none: {} is empty or missing)",
                    paths.red_remote_ip().display()
                ),
            )?;
        }
        let answered = results
            .iter()
            .filter(|r| r.role.votes() && r.answered())
            .count();
        let total = results.iter().filter(|r| r.role.votes()).count();
        let mut summary = format!(
            "{answered} of {total} targets answered, {} required",
            policy.reliability.min(total)
        );
        let path = results.iter().filter(|r| r.role == Role::Internet);
        if answered > 0 && path.clone().count() > 0 && !path.clone().any(TargetResult::answered) {
            // DNS (and proxied TCP ports) only corroborate: see monitor.
            summary.push_str(", but no ICMP/TCP target");
        }
        w(
            &mut out,
            match &verdict {
                Verdict::Healthy => format!("verdict: healthy ({summary})"),
                Verdict::Suspect { .. } | Verdict::Down { .. } => {
                    format!("verdict: NOT healthy ({summary})")
                }
            },
        )?;
    }
    Ok(if verdict == Verdict::Healthy { 0 } else { 1 })
}
