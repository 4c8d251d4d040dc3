//! The commands the web UI page reads and acts through (DESIGN.md 7a), besides `status`,
//! `failover`, `failback` and `auto`: `connectd history` and `connectd policy [set]`.

use crate::error::Result;
use crate::ipfire::history::History;
use crate::ipfire::paths::Paths;
use crate::ipfire::policy_edit;
use crate::ipfire::state::{self, State};
use crate::supervisor::daemon;

/// `connectd history [--json]`: the last 24 hours (profile intervals, switches, RTT points,
/// pre-tests) as the supervisor last wrote them.
pub fn history(paths: &Paths, json: bool) -> Result<u8> {
    let now = state::unix(std::time::SystemTime::now());
    let transitions = State::load(paths)
        .map(|s| s.transitions)
        .unwrap_or_default();
    let v = History::load(paths).view(now, &transitions);
    if json {
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return Ok(0);
    }
    let at = |t: &serde_json::Value| {
        t.as_i64()
            .and_then(|s| chrono::TimeZone::timestamp_opt(&chrono::Utc, s, 0).single())
            .map(|d| {
                d.with_timezone(&chrono::Local)
                    .format("%H:%M:%S")
                    .to_string()
            })
            .unwrap_or_else(|| "now".into())
    };
    for i in v["intervals"].as_array().into_iter().flatten() {
        println!(
            "{} - {}  {}",
            at(&i["from"]),
            at(&i["to"]),
            i["profile"].as_str().unwrap_or("(RED down)")
        );
    }
    for s in v["switches"].as_array().into_iter().flatten() {
        println!(
            "{}  switch {} -> {} ({}): {}",
            at(&s["at"]),
            s["from"].as_str().unwrap_or("-"),
            s["to"].as_str().unwrap_or("-"),
            s["kind"].as_str().unwrap_or(""),
            s["reason"].as_str().unwrap_or("")
        );
    }
    println!(
        "{} RTT points (one a minute)",
        v["rtt"].as_array().map_or(0, Vec::len)
    );
    Ok(0)
}

/// `connectd policy [--json]` and `connectd policy set KEY=VALUE...` (validated with the
/// daemon's parser, written atomically, then SIGHUP to the running supervisor).
pub fn policy(paths: &Paths, json: bool, set: Option<&[String]>) -> Result<u8> {
    let Some(pairs) = set else {
        let v = policy_edit::view(paths)?;
        if json {
            println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        } else {
            print!("{}", policy_edit::human(&v));
        }
        return Ok(0);
    };
    let primary = State::load(paths).ok().and_then(|s| s.primary);
    let changed = policy_edit::set(
        paths,
        pairs,
        primary
            .as_ref()
            .map(crate::ipfire::profile::ProfileName::as_str),
    )?;
    if changed.is_empty() {
        println!("policy unchanged");
        return Ok(0);
    }
    let reloaded = match daemon::running_pid(paths) {
        Some(pid) => nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGHUP,
        )
        .is_ok(),
        None => false,
    };
    println!(
        "policy saved: {}{}",
        changed.join(", "),
        if reloaded {
            "; connectd reloaded it"
        } else {
            "; connectd is not running (read at its next start)"
        }
    );
    Ok(0)
}
