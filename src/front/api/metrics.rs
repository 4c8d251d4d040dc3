//! `/metrics`: the supervisor's [`Status`] in the Prometheus text format (0.0.4).

use std::fmt::Write as _;

use crate::supervisor::status::Status;
use crate::uplink::health::TargetStatus;

fn label(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

fn num(v: Option<f64>) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{x}"),
        _ => "NaN".into(),
    }
}

/// `/metrics` in the Prometheus text format (0.0.4) from the status object; with `None`
/// (no supervisor answering) only `connectd_up 0`.
pub(crate) fn metrics(status: Option<&Status>) -> String {
    let mut out = String::new();
    let family =
        |out: &mut String, name: &str, kind: &str, help: &str, samples: &[(String, String)]| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
    let b = |v: bool| if v { "1".to_string() } else { "0".to_string() };
    family(
        &mut out,
        "connectd_up",
        "gauge",
        "1 when the supervisor answers.",
        &[(String::new(), b(status.is_some()))],
    );
    let Some(s) = status else {
        return out;
    };
    family(
        &mut out,
        "connectd_healthy",
        "gauge",
        "1 when the active uplink passes its health checks.",
        &[(String::new(), b(s.healthy()))],
    );
    family(
        &mut out,
        "connectd_red_active",
        "gauge",
        "1 while RED is up (red/active exists).",
        &[(String::new(), b(s.red.active))],
    );
    family(
        &mut out,
        "connectd_auto_enabled",
        "gauge",
        "1 when automatic switching is on.",
        &[(String::new(), b(s.auto))],
    );
    let active = s.active_profile.as_ref().map_or("", |p| p.as_str());
    family(
        &mut out,
        "connectd_on_primary",
        "gauge",
        "1 when the active profile is the primary.",
        &[(String::new(), b(s.on_primary()))],
    );
    family(
        &mut out,
        "connectd_active_profile_info",
        "gauge",
        "The active profile, as labels.",
        &[(
            format!(
                "{{profile=\"{}\",display_name=\"{}\"}}",
                label(active),
                label(s.active_display_name.as_deref().unwrap_or(active))
            ),
            "1".into(),
        )],
    );
    family(
        &mut out,
        "connectd_switches_total",
        "counter",
        "Completed profile switches.",
        &[(String::new(), s.switch_count.to_string())],
    );
    let mut targets: Vec<(&str, &TargetStatus)> =
        s.health.targets.iter().map(|t| ("internet", t)).collect();
    if let Some(g) = &s.health.gateway {
        targets.push(("gateway", g));
    }
    let per_target = |f: &dyn Fn(&TargetStatus) -> Option<f64>| -> Vec<(String, String)> {
        targets
            .iter()
            .map(|(role, t)| {
                (
                    format!("{{host=\"{}\",role=\"{role}\"}}", label(&t.host)),
                    num(f(t)),
                )
            })
            .collect()
    };
    family(
        &mut out,
        "connectd_target_rtt_seconds",
        "gauge",
        "Round-trip time of the last probe (NaN: no reply).",
        &per_target(&|t| t.rtt_ms.map(|ms| ms / 1000.0)),
    );
    family(
        &mut out,
        "connectd_target_loss_ratio",
        "gauge",
        "Probe loss over the window, 0 to 1.",
        &per_target(&|t| Some(t.loss_pct / 100.0)),
    );
    let t = s.traffic.clone().unwrap_or_default();
    for (name, rate, help) in [
        (
            "connectd_red_rx_mbps",
            t.rx_mbps,
            "RED receive rate over the last second, Mbit/s.",
        ),
        (
            "connectd_red_tx_mbps",
            t.tx_mbps,
            "RED send rate over the last second, Mbit/s.",
        ),
        (
            "connectd_red_rx_mbps_avg",
            t.rx_mbps_avg,
            "RED receive rate over about a minute, Mbit/s.",
        ),
        (
            "connectd_red_tx_mbps_avg",
            t.tx_mbps_avg,
            "RED send rate over about a minute, Mbit/s.",
        ),
    ] {
        family(
            &mut out,
            name,
            "gauge",
            help,
            &[(String::new(), num(Some(rate)))],
        );
    }
    if let Some(n) = s.next_failback_in_secs {
        family(
            &mut out,
            "connectd_next_failback_seconds",
            "gauge",
            "Seconds until the next automatic failback attempt.",
            &[(String::new(), n.to_string())],
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::status;
    use super::*;

    #[test]
    fn metrics_text() {
        let m = metrics(Some(&status()));
        assert!(m.contains("connectd_up 1\n"));
        assert!(m.contains("connectd_healthy 1\n"));
        assert!(m.contains("connectd_switches_total 3\n"));
        assert!(m.contains("# TYPE connectd_switches_total counter\n"));
        assert!(m.contains(
            "connectd_target_rtt_seconds{host=\"192.0.2.1\",role=\"internet\"} 0.0125\n"
        ));
        assert!(m.contains(
            "connectd_target_rtt_seconds{host=\"dns \\\"x\\\"\",role=\"internet\"} NaN\n"
        ));
        assert!(
            m.contains("connectd_target_loss_ratio{host=\"203.0.113.1\",role=\"gateway\"} 0\n")
        );
        assert!(m.contains("connectd_red_rx_mbps 1.5\n"));
        assert!(m.contains("connectd_on_primary 0\n"));
    }
}
