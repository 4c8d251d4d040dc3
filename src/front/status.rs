//! `connectd status` for people, and the HTTP API's token (`connectd api-key`).

use std::fmt::Write as _;
use std::io::Read;

use serde_json::Value;

use crate::error::{Error, IoContext, Result};
use crate::ipfire::fsutil;
use crate::ipfire::paths::Paths;

fn s(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(x)) => x.clone(),
        Some(Value::Null) | None => "-".into(),
        Some(other) => other.to_string(),
    }
}

/// Renders the status object as lines for a terminal.
pub fn human(v: &Value) -> String {
    let mut out = String::new();
    let running = v.get("running").and_then(Value::as_bool).unwrap_or(false);
    let _ = writeln!(
        out,
        "connectd:    {}",
        if running {
            "supervising"
        } else {
            "not running"
        }
    );
    let _ = writeln!(out, "state:       {} {}", s(v, "state"), {
        let p = s(v, "phase");
        if p == "-" {
            String::new()
        } else {
            format!("({p})")
        }
    });
    let name = |key: &str, display: &str| {
        let d = s(v, display);
        if d == "-" {
            s(v, key)
        } else {
            format!("{} ({d})", s(v, key))
        }
    };
    let _ = writeln!(
        out,
        "active:      {}",
        name("active_profile", "active_display_name")
    );
    let _ = writeln!(
        out,
        "primary:     {}",
        name("primary_profile", "primary_display_name")
    );
    let _ = writeln!(
        out,
        "automatic:   {}{}",
        if v.get("auto").and_then(Value::as_bool).unwrap_or(true) {
            "on"
        } else {
            "off"
        },
        if v.get("pinned").and_then(Value::as_bool).unwrap_or(false) {
            ", pinned by a manual failover"
        } else {
            ""
        }
    );
    let _ = writeln!(
        out,
        "switches:    {} (last {})",
        s(v, "switch_count"),
        s(v, "last_switch")
    );
    if let Some(n) = v.get("next_failback_in_secs").and_then(Value::as_u64) {
        let _ = writeln!(out, "failback:    next attempt in {n}s");
    }
    if let Some(red) = v.get("red") {
        let _ = writeln!(
            out,
            "RED:         {} {} since {}, address {}, gateway {}",
            s(red, "iface"),
            if red.get("active").and_then(Value::as_bool).unwrap_or(false) {
                "up"
            } else {
                "down"
            },
            s(red, "since"),
            s(red, "local_ip"),
            s(red, "gateway"),
        );
    }
    if let Some(line) = crate::uplink::traffic::human_line(v.get("traffic")) {
        let _ = writeln!(out, "traffic:     {line}");
    }
    if let Some(h) = v.get("health") {
        let _ = writeln!(out, "health:      {}", s(h, "verdict"));
        if let Some(g) = h.get("gateway").filter(|g| !g.is_null()) {
            let reach = match g.get("rtt_ms").and_then(Value::as_f64) {
                Some(r) => format!("reachable, {r:.1} ms"),
                None => "not reachable".to_string(),
            };
            let _ = writeln!(out, "gateway:     {} {reach}", s(g, "host"));
        }
        if let Some(ts) = h.get("targets").and_then(Value::as_array) {
            for t in ts {
                let rtt = t
                    .get("rtt_ms")
                    .and_then(Value::as_f64)
                    .map_or_else(|| "no reply".to_string(), |r| format!("{r:.1} ms"));
                let loss = t.get("loss_pct").and_then(Value::as_f64).unwrap_or(0.0);
                let _ = writeln!(out, "  {:<24} {rtt:>10}  loss {loss:.0}%", s(t, "host"));
            }
        }
    }
    if let Some(ts) = v.get("transitions").and_then(Value::as_array) {
        if !ts.is_empty() {
            let _ = writeln!(out, "last switches:");
            for t in ts.iter().rev().take(5) {
                let at = t
                    .get("at")
                    .and_then(Value::as_i64)
                    .and_then(|a| chrono::TimeZone::timestamp_opt(&chrono::Utc, a, 0).single())
                    .map(|d| {
                        d.with_timezone(&chrono::Local)
                            .format("%Y-%m-%d %H:%M:%S")
                            .to_string()
                    })
                    .unwrap_or_default();
                let _ = writeln!(
                    out,
                    "  {at}  {} -> {} ({}): {}",
                    s(t, "from"),
                    s(t, "to"),
                    s(t, "kind"),
                    s(t, "reason")
                );
            }
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
