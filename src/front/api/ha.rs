//! `/api/status` in the shape Home Assistant users already wire up for a two-link failover
//! daemon, rendered from the supervisor's [`Status`].

use serde_json::{Value, json};

use crate::ipfire::paths::Paths;
use crate::ipfire::policy::Policy;
use crate::ipfire::profile::{Profile, ProfileName};
use crate::supervisor::status::{Status, TrafficStatus};

/// How many switches `recent_events` lists.
const RECENT_EVENTS: usize = 20;

/// A profile of the failover chain as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Link {
    /// The profile name (`1`, `lte`).
    pub(crate) name: ProfileName,
    /// Its PROFILENAME, else the name.
    pub(crate) display_name: String,
}

/// The chain `[primary, backups...]` read from the files under `paths` (policy and
/// profiles); just the primary when the chain cannot be resolved.
pub(crate) fn chain_links(paths: &Paths, primary: Option<&ProfileName>) -> Vec<Link> {
    let Some(primary) = primary else {
        return Vec::new();
    };
    let names = Policy::load(paths, Some(primary.as_str()))
        .ok()
        .and_then(|(policy, _)| crate::ipfire::profile::resolve_chain(paths, primary, &policy).ok())
        .unwrap_or_else(|| {
            let mut v = vec![primary.clone()];
            if let Ok(p) = Profile::load(paths, primary) {
                if let Some(b) = p.backup.filter(|b| b != primary) {
                    v.push(b);
                }
            }
            v
        });
    names
        .into_iter()
        .map(|n| Link {
            display_name: Profile::load(paths, &n)
                .map(|p| p.display_name)
                .unwrap_or_else(|_| n.to_string()),
            name: n,
        })
        .collect()
}

/// The "secondary" link: the active profile when it is not the primary, else the first
/// backup of the chain.
pub(crate) fn secondary_of<'a>(status: &'a Status, links: &'a [Link]) -> Option<&'a ProfileName> {
    match &status.active_profile {
        Some(a) if Some(a) != status.primary_profile.as_ref() => Some(a),
        _ => links.get(1).map(|l| &l.name),
    }
}

/// `/api/status`: our status object plus the fields of the two-link failover daemon's
/// API that Home Assistant configurations read: `active_link`, `active_display_name`,
/// `active_interface`, `active_gateway`, `auto_enabled`, `primary`, `secondary` (each with
/// `name`, `profile`, `display_name`, `active`, `interface`, `gateway`, `gateway_ip`,
/// `healthy`, `gateway_reachable`, `traffic`), `links` (the whole chain the same way) and
/// `recent_events`. Only the active link is probed: a resting link has `healthy` and
/// `gateway_reachable` null and zero traffic.
pub(crate) fn ha_status(status: &Status, links: &[Link]) -> Value {
    let active = status.active_profile.as_ref();
    let primary = status
        .primary_profile
        .as_ref()
        .or_else(|| links.first().map(|l| &l.name));
    let secondary = secondary_of(status, links);
    let display = |name: &ProfileName| -> String {
        if Some(name) == active {
            if let Some(d) = &status.active_display_name {
                return d.clone();
            }
        }
        if Some(name) == primary {
            if let Some(d) = &status.primary_display_name {
                return d.clone();
            }
        }
        links
            .iter()
            .find(|l| &l.name == name)
            .map_or_else(|| name.to_string(), |l| l.display_name.clone())
    };
    let role = |name: &ProfileName| -> String {
        if Some(name) == primary {
            "primary".into()
        } else if Some(name) == secondary {
            "secondary".into()
        } else {
            name.to_string()
        }
    };
    let red = &status.red;
    let healthy = status.healthy();
    let gw_reachable = status
        .health
        .gateway
        .as_ref()
        .map(|g| red.active && g.rtt_ms.is_some());
    // The measured traffic as the status has it (with its `iface`), else zero rates.
    let zero = || {
        let t = TrafficStatus::default();
        json!({"rx_mbps": t.rx_mbps, "tx_mbps": t.tx_mbps,
               "rx_mbps_avg": t.rx_mbps_avg, "tx_mbps_avg": t.tx_mbps_avg})
    };
    let traffic = status.traffic.as_ref().map_or_else(zero, |t| json!(t));
    let link = |name: &ProfileName| -> Value {
        let is_active = Some(name) == active;
        let if_active = |v: Value| if is_active { v } else { Value::Null };
        json!({
            "name": role(name),
            "profile": name,
            "display_name": display(name),
            "active": is_active,
            "interface": if_active(json!(red.iface)),
            "gateway": if_active(json!(red.gateway)),
            "gateway_ip": if_active(json!(red.gateway)),
            "healthy": if_active(json!(healthy)),
            "gateway_reachable": if_active(json!(gw_reachable)),
            "traffic": if is_active { traffic.clone() } else { zero() },
        })
    };
    let mut names: Vec<&ProfileName> = links.iter().map(|l| &l.name).collect();
    for n in [primary, active].into_iter().flatten() {
        if !names.contains(&n) {
            names.push(n);
        }
    }
    let skip = status.transitions.len().saturating_sub(RECENT_EVENTS);
    let events: Vec<Value> = status.transitions[skip..]
        .iter()
        .map(|t| {
            let at = chrono::TimeZone::timestamp_opt(&chrono::Utc, t.at, 0)
                .single()
                .map(|d| d.to_rfc3339());
            let from = t.from.as_ref().map_or("?", ProfileName::as_str);
            json!({
                "time": at,
                "type": t.kind,
                "message": format!("{from} -> {}: {}", t.to, t.reason),
            })
        })
        .collect();
    let mut out = serde_json::to_value(status).unwrap_or_else(|_| json!({}));
    if let Some(o) = out.as_object_mut() {
        o.insert("active_link".into(), json!(active.map(role)));
        o.insert("active_display_name".into(), json!(active.map(display)));
        o.insert("active_interface".into(), json!(red.iface));
        o.insert("active_gateway".into(), json!(red.gateway));
        o.insert("auto_enabled".into(), status.auto.into());
        o.insert("traffic".into(), traffic.clone());
        o.insert("primary".into(), primary.map_or(Value::Null, link));
        o.insert("secondary".into(), secondary.map_or(Value::Null, link));
        o.insert("links".into(), names.into_iter().map(link).collect());
        o.insert("recent_events".into(), events.into());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::status;
    use super::*;

    pub(crate) fn links() -> Vec<Link> {
        vec![
            Link {
                name: ProfileName::new("1").unwrap(),
                display_name: "Telekom DSL".into(),
            },
            Link {
                name: ProfileName::new("2").unwrap(),
                display_name: "LTE stick".into(),
            },
        ]
    }

    #[test]
    fn ha_shape_of_the_status() {
        let v = ha_status(&status(), &links());
        assert_eq!(v["active_display_name"], "LTE stick");
        assert_eq!(v["active_link"], "secondary");
        assert_eq!(v["auto_enabled"], true);
        assert_eq!(v["switch_count"], 3);
        assert_eq!(v["primary"]["display_name"], "Telekom DSL");
        assert_eq!(v["primary"]["healthy"], Value::Null);
        assert_eq!(v["primary"]["traffic"]["rx_mbps"], 0.0);
        assert_eq!(v["secondary"]["display_name"], "LTE stick");
        assert_eq!(v["secondary"]["gateway"], "203.0.113.1");
        assert_eq!(v["secondary"]["healthy"], true);
        assert_eq!(v["secondary"]["gateway_reachable"], true);
        assert_eq!(v["secondary"]["traffic"]["rx_mbps_avg"], 1.0);
        assert_eq!(v["secondary"]["traffic"]["tx_mbps"], 0.5);
        assert_eq!(v["links"].as_array().unwrap().len(), 2);
        assert_eq!(v["recent_events"][0]["type"], "failover");
        // Our own fields are still there.
        assert_eq!(v["active_profile"], "2");
        assert_eq!(v["health"]["verdict"], "healthy");

        // On the primary, the secondary is the first backup, resting.
        let mut s = status();
        s.active_profile = Some(ProfileName::new("1").unwrap());
        s.active_display_name = Some("Telekom DSL".into());
        let v = ha_status(&s, &links());
        assert_eq!(v["active_link"], "primary");
        assert_eq!(v["primary"]["healthy"], true);
        assert_eq!(v["secondary"]["display_name"], "LTE stick");
        assert_eq!(v["secondary"]["healthy"], Value::Null);
        // Without a backup, `secondary` is null.
        let v = ha_status(&s, &links()[..1]);
        assert_eq!(v["secondary"], Value::Null);
    }
}
