//! `connectd status` for people, and the HTTP API's token (`connectd api-key`).

use std::fmt::Write as _;
use std::io::Read;

use crate::error::{Error, IoContext, Result};
use crate::ipfire::fsutil;
use crate::ipfire::paths::Paths;
use crate::ipfire::profile::ProfileName;
use crate::supervisor::status::{Status, TrafficStatus};

/// A value or `-`.
fn or_dash<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_string(), |x| x.to_string())
}

/// `NAME (DISPLAY NAME)`, or just the name.
fn named(name: Option<&ProfileName>, display: Option<&str>) -> String {
    match display {
        Some(d) => format!("{} ({d})", or_dash(name)),
        None => or_dash(name),
    }
}

/// The throughput line: `"rx 12.5 Mbit/s (60 s avg 10.0), tx 1.3 Mbit/s (60 s avg 1.0)"`.
pub fn traffic_line(t: &TrafficStatus) -> String {
    format!(
        "rx {:.1} Mbit/s (60 s avg {:.1}), tx {:.1} Mbit/s (60 s avg {:.1})",
        t.rx_mbps, t.rx_mbps_avg, t.tx_mbps, t.tx_mbps_avg
    )
}

/// Renders the status as lines for a terminal.
pub fn human(v: &Status) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "connectd:    {}",
        if v.running {
            "supervising"
        } else {
            "not running"
        }
    );
    let phase = v
        .phase
        .as_deref()
        .map(|p| format!("({p})"))
        .unwrap_or_default();
    let _ = writeln!(out, "state:       {} {phase}", v.state);
    let _ = writeln!(
        out,
        "active:      {}",
        named(v.active_profile.as_ref(), v.active_display_name.as_deref())
    );
    let _ = writeln!(
        out,
        "primary:     {}",
        named(
            v.primary_profile.as_ref(),
            v.primary_display_name.as_deref()
        )
    );
    let _ = writeln!(
        out,
        "automatic:   {}{}",
        if v.auto { "on" } else { "off" },
        if v.pinned {
            ", pinned by a manual failover"
        } else {
            ""
        }
    );
    let _ = writeln!(
        out,
        "switches:    {} (last {})",
        v.switch_count,
        or_dash(v.last_switch.as_deref())
    );
    if let Some(n) = v.next_failback_in_secs {
        let _ = writeln!(out, "failback:    next attempt in {n}s");
    }
    let red = &v.red;
    let _ = writeln!(
        out,
        "RED:         {} {} since {}, address {}, gateway {}",
        or_dash(red.iface.as_deref()),
        if red.active { "up" } else { "down" },
        or_dash(red.since.as_deref()),
        or_dash(red.local_ip.as_deref()),
        or_dash(red.gateway.as_deref()),
    );
    if let Some(t) = &v.traffic {
        let _ = writeln!(out, "traffic:     {}", traffic_line(t));
    }
    let h = &v.health;
    let _ = writeln!(out, "health:      {}", h.verdict);
    if let Some(g) = &h.gateway {
        let reach = match g.rtt_ms {
            Some(r) => format!("reachable, {r:.1} ms"),
            None => "not reachable".to_string(),
        };
        let _ = writeln!(out, "gateway:     {} {reach}", g.host);
    }
    for t in &h.targets {
        let rtt = t
            .rtt_ms
            .map_or_else(|| "no reply".to_string(), |r| format!("{r:.1} ms"));
        let _ = writeln!(out, "  {:<24} {rtt:>10}  loss {:.0}%", t.host, t.loss_pct);
    }
    if !v.transitions.is_empty() {
        let _ = writeln!(out, "last switches:");
        for t in v.transitions.iter().rev().take(5) {
            let at = chrono::DateTime::from_timestamp(t.at, 0)
                .map(|d| {
                    d.with_timezone(&chrono::Local)
                        .format("%Y-%m-%d %H:%M:%S")
                        .to_string()
                })
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  {at}  {} -> {} ({}): {}",
                or_dash(t.from.as_ref()),
                t.to,
                t.kind,
                t.reason
            );
        }
    }
    out
}

/// `connectd api-key`: prints the API token, creating it (32 random bytes, hex, mode 0600
/// from the first byte) when missing.
pub fn api_key(paths: &Paths) -> Result<u8> {
    let path = paths.api_token();
    if let Some(t) = fsutil::read_word(&path) {
        println!("{t}");
        return Ok(0);
    }
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .at("/dev/urandom")?;
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    fsutil::ensure_dir(&paths.connectd_dir())?;
    fsutil::replace_atomically(&path, format!("{token}\n").as_bytes(), 0o600)
        .map_err(|e| Error::Failed(format!("cannot write the API token: {e}")))?;
    println!("{token}");
    Ok(0)
}
