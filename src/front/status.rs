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
pub(crate) fn traffic_line(t: &TrafficStatus) -> String {
    format!(
        "rx {:.1} Mbit/s (60 s avg {:.1}), tx {:.1} Mbit/s (60 s avg {:.1})",
        t.rx_mbps, t.rx_mbps_avg, t.tx_mbps, t.tx_mbps_avg
    )
}

/// Renders the status as lines for a terminal.
pub(crate) fn human(v: &Status) -> String {
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
    if v.chain.iter().any(|c| c.last_pretest.is_some()) {
        let _ = writeln!(out, "pre-tests:");
        for c in &v.chain {
            let last = c.last_pretest.as_ref().map_or_else(
                || "not tested".to_string(),
                |p| format!("{} {}s ago", p.result, p.secs_ago),
            );
            let _ = writeln!(out, "  {:<24} {last}", c.profile.as_str());
        }
    }
    if !v.transitions.is_empty() {
        let _ = writeln!(out, "last switches:");
        for t in v.transitions.iter().rev().take(5) {
            let at = chrono::TimeZone::timestamp_opt(&chrono::Utc, t.at, 0)
                .single()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipfire::journal::SwitchKind;
    use crate::ipfire::state::SwitchRecord;
    use crate::uplink::health::TargetStatus;

    fn name(n: &str) -> ProfileName {
        ProfileName::new(n).unwrap()
    }

    #[test]
    fn files_only_status_reads_as_not_running() {
        let text = human(&Status::default());
        assert!(text.contains("connectd:    not running\n"), "{text}");
        assert!(text.contains("active:      -\n"), "{text}");
        assert!(text.contains("switches:    0 (last -)\n"), "{text}");
        assert!(text.contains("RED:         - down since -"), "{text}");
        assert!(text.contains("health:      unknown\n"), "{text}");
        assert!(!text.contains("traffic:"), "{text}");
        assert!(!text.contains("last switches:"), "{text}");
    }

    #[test]
    fn supervised_status_shows_every_part() {
        let mut s = Status {
            running: true,
            state: "online".into(),
            phase: Some("Online(2)".into()),
            active_profile: Some(name("2")),
            active_display_name: Some("LTE stick".into()),
            primary_profile: Some(name("1")),
            auto: false,
            pinned: true,
            switch_count: 3,
            next_failback_in_secs: Some(120),
            traffic: Some(TrafficStatus {
                iface: Some("wwan0".into()),
                rx_mbps: 8.0,
                tx_mbps: 0.0,
                rx_mbps_avg: 8.0,
                tx_mbps_avg: 0.0,
            }),
            ..Status::default()
        };
        s.red.iface = Some("wwan0".into());
        s.red.active = true;
        s.health.verdict = "healthy".into();
        s.health.targets.push(TargetStatus {
            host: "192.0.2.1".into(),
            rtt_ms: Some(12.5),
            avg_rtt_ms: Some(12.0),
            loss_pct: 25.0,
            samples: 4,
            error: None,
        });
        s.health.gateway = Some(TargetStatus {
            host: "203.0.113.1".into(),
            rtt_ms: None,
            avg_rtt_ms: None,
            loss_pct: 100.0,
            samples: 4,
            error: Some("timeout".into()),
        });
        s.transitions.push(SwitchRecord {
            at: 1_700_000_000,
            from: None,
            to: name("2"),
            kind: SwitchKind::ChainPass,
            reason: "whole chain failed".into(),
        });
        s.chain.push(crate::ipfire::chain_view::ChainEntry {
            profile: name("3"),
            display_name: None,
            role: crate::ipfire::chain_view::Role::Backup,
            kind: Some("dhcp".into()),
            device: Some("red1".into()),
            last_pretest: Some(crate::ipfire::chain_view::LastPretest {
                result: "passed".into(),
                secs_ago: 40,
            }),
        });
        let text = human(&s);
        for line in [
            "pre-tests:\n",
            "  3                        passed 40s ago\n",
            "connectd:    supervising\n",
            "state:       online (Online(2))\n",
            "active:      2 (LTE stick)\n",
            "primary:     1\n",
            "automatic:   off, pinned by a manual failover\n",
            "switches:    3 (last -)\n",
            "failback:    next attempt in 120s\n",
            "RED:         wwan0 up since -",
            "traffic:     rx 8.0 Mbit/s (60 s avg 8.0), tx 0.0 Mbit/s (60 s avg 0.0)\n",
            "health:      healthy\n",
            "gateway:     203.0.113.1 not reachable\n",
            "12.5 ms  loss 25%\n",
            "  - -> 2 (chain-pass): whole chain failed\n",
        ] {
            assert!(text.contains(line), "{line:?} in\n{text}");
        }
    }
}
