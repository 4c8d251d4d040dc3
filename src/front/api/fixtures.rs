//! What the unit tests of the API's parts share: a request and a supervisor's status.

use super::http::HttpRequest;
use crate::supervisor::status::Status;

pub(crate) fn req(method: &str, path: &str, auth: Option<&str>, body: &str) -> HttpRequest {
    let mut headers = Vec::new();
    if let Some(a) = auth {
        headers.push(("authorization".to_string(), a.to_string()));
    }
    HttpRequest {
        method: method.into(),
        path: path.into(),
        headers,
        body: body.as_bytes().to_vec(),
    }
}

/// A supervisor's status on the backup `2` (LTE) of primary `1`.
pub(crate) fn status() -> Status {
    serde_json::from_value(serde_json::json!({
        "running": true, "state": "online", "active_profile": "2", "primary_profile": "1",
        "active_display_name": "LTE stick", "primary_display_name": "Telekom DSL",
        "auto": true, "switch_count": 3,
        "red": {"iface": "wwan0", "active": true, "gateway": "203.0.113.1", "local_ip": "203.0.113.7"},
        "health": {"healthy": true, "verdict": "healthy", "reason": null,
            "failed_rounds": 0, "rounds": 3,
            "targets": [{"host": "192.0.2.1", "rtt_ms": 12.5, "avg_rtt_ms": 12.5, "loss_pct": 0.0, "samples": 3, "error": null},
                        {"host": "dns \"x\"", "rtt_ms": null, "avg_rtt_ms": null, "loss_pct": 50.0, "samples": 3, "error": "timeout"}],
            "gateway": {"host": "203.0.113.1", "rtt_ms": 1.0, "avg_rtt_ms": 1.0, "loss_pct": 0.0, "samples": 3, "error": null}},
        "traffic": {"iface": "wwan0", "rx_mbps": 1.5, "tx_mbps": 0.5, "rx_mbps_avg": 1.0, "tx_mbps_avg": 0.25},
        "transitions": [{"at": 1700000000, "from": "1", "to": "2", "kind": "failover", "reason": "probes failed"}],
    }))
    .unwrap()
}
