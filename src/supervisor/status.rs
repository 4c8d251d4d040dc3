//! The status of connectd as one typed value (DESIGN.md 7): what `connectd status` prints,
//! what `status --json` and the control socket carry, and what the HTTP API's Home
//! Assistant view and `/metrics` are rendered from.
//!
//! A [`Status`] is built in one of two ways: [`from_files`] when no supervisor runs (the
//! box's files and the state file only), or `supervised` by the supervisor, which adds
//! its core's view ([`Snapshot`]), the last health verdict and the RED throughput. Both give
//! the same shape: every key is always present (`null` when that source has nothing), so a
//! reader of `status --json` sees one schema.
//!
//! Two histories appear in it and are not the same thing: `transitions` is the state file's
//! list of completed switches of the files ([`SwitchRecord`]: from, to, kind, reason), and
//! `core.transitions` the core's recent phase changes (`Online(1) -> Holdoff`).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ipfire::chain_view::{ChainEntry, LastPretest, chain_view};
use crate::ipfire::fsutil;
use crate::ipfire::journal::Journal;
use crate::ipfire::paths::Paths;
use crate::ipfire::profile::{Profile, ProfileName};
use crate::ipfire::state::{State, SwitchRecord};
use crate::supervisor::machine::Snapshot;
use crate::uplink::health::{self, HealthStatus};
use crate::uplink::switch;
use crate::uplink::traffic::{Rates, Traffic};

/// The status object of `status --json` (DESIGN.md 7 lists the keys scripts rely on).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Status {
    /// A supervisor answered (false: built from the files alone).
    pub running: bool,
    /// With a supervisor, the core's phase kind (`online`, `holdoff`, `trial`, ...);
    /// from the files, `online` or `offline` (whether `red/active` exists).
    pub state: String,
    /// The core's phase with its profile, e.g. `Online(2)`.
    pub phase: Option<String>,
    /// FAILOVER_ENABLED, as the supervisor runs it.
    pub failover_enabled: Option<bool>,
    /// The active profile.
    pub active_profile: Option<ProfileName>,
    /// Its PROFILENAME.
    pub active_display_name: Option<String>,
    /// The primary profile.
    pub primary_profile: Option<ProfileName>,
    /// Its PROFILENAME.
    pub primary_display_name: Option<String>,
    /// Automatic failover/failback.
    pub auto: bool,
    /// A manual failover pinned the active profile.
    pub pinned: bool,
    /// Completed switches (the one counter: see `State::switch_count`).
    pub switch_count: u64,
    /// When the files last switched, RFC 3339 in local time.
    pub last_switch: Option<String>,
    /// The current failback delay.
    pub failback_delay_secs: Option<u64>,
    /// Seconds until the next automatic failback check, when one is scheduled.
    pub next_failback_in_secs: Option<u64>,
    /// The keepconnected counter.
    pub attempts: Option<u32>,
    /// RED as the network scripts left it.
    pub red: RedStatus,
    /// The active uplink's health (`unknown` without a supervisor or before a round).
    #[serde(default = "unknown_health")]
    pub health: HealthStatus,
    /// RED's throughput (a supervisor measures it).
    pub traffic: Option<TrafficStatus>,
    /// The state file's recent switches, oldest first.
    pub transitions: Vec<SwitchRecord>,
    /// A switch in progress (or interrupted, before the next start finishes it).
    pub journal: Option<Journal>,
    /// The failover chain: each profile's role, name, type and RED device.
    pub chain: Vec<ChainEntry>,
    /// The core's whole view, with its recent phase changes.
    pub core: Option<Snapshot>,
}

impl Default for Status {
    fn default() -> Self {
        Status {
            running: false,
            state: "offline".into(),
            phase: None,
            failover_enabled: None,
            active_profile: None,
            active_display_name: None,
            primary_profile: None,
            primary_display_name: None,
            auto: true,
            pinned: false,
            switch_count: 0,
            last_switch: None,
            failback_delay_secs: None,
            next_failback_in_secs: None,
            attempts: None,
            red: RedStatus::default(),
            health: unknown_health(),
            traffic: None,
            transitions: Vec::new(),
            journal: None,
            chain: Vec::new(),
            core: None,
        }
    }
}

/// One line of compact JSON (the SIGUSR1 log line).
impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = serde_json::to_string(self).map_err(|_| fmt::Error)?;
        f.write_str(&text)
    }
}

impl Status {
    /// Whether the active profile is the primary.
    pub(crate) fn on_primary(&self) -> bool {
        self.active_profile.is_some() && self.active_profile == self.primary_profile
    }

    /// Whether RED is up and the last health round passed.
    pub fn healthy(&self) -> bool {
        self.red.active && self.health.healthy
    }
}

/// The `red` object: the files IPFire's scripts write under `/var/ipfire/red`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RedStatus {
    /// `red/iface` (else `red/device`).
    pub iface: Option<String>,
    /// `red/active` exists.
    pub active: bool,
    /// When `red/active` was written, RFC 3339 in local time.
    pub since: Option<String>,
    /// `red/local-ipaddress`.
    pub local_ip: Option<String>,
    /// `red/remote-ipaddress`.
    pub gateway: Option<String>,
}

/// The `traffic` object: RED's throughput in Mbit/s (all 0 before two samples).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrafficStatus {
    /// The interface measured.
    pub iface: Option<String>,
    /// Received, over the last sample interval.
    pub rx_mbps: f64,
    /// Sent, over the last sample interval.
    pub tx_mbps: f64,
    /// Received, over about the last minute.
    pub rx_mbps_avg: f64,
    /// Sent, over about the last minute.
    pub tx_mbps_avg: f64,
}

impl TrafficStatus {
    /// The rates of `iface`.
    pub(crate) fn new(iface: Option<&str>, r: &Rates) -> TrafficStatus {
        TrafficStatus {
            iface: iface.map(String::from),
            rx_mbps: r.rx_mbps,
            tx_mbps: r.tx_mbps,
            rx_mbps_avg: r.rx_mbps_avg,
            tx_mbps_avg: r.tx_mbps_avg,
        }
    }

    /// What the supervisor's meter measured.
    pub(crate) fn of(meter: &Traffic) -> TrafficStatus {
        TrafficStatus::new(meter.iface(), &meter.rates())
    }
}

/// The health object before any round: not healthy, verdict `unknown`, no targets.
pub(crate) fn unknown_health() -> HealthStatus {
    HealthStatus {
        healthy: false,
        verdict: "unknown".into(),
        reason: None,
        failed_rounds: 0,
        rounds: 0,
        targets: Vec::new(),
        gateway: None,
    }
}

fn local_time(unix: i64) -> Option<String> {
    chrono::TimeZone::timestamp_opt(&chrono::Utc, unix, 0)
        .single()
        .map(|d| d.with_timezone(&chrono::Local).to_rfc3339())
}

fn display_name(paths: &Paths, name: Option<&ProfileName>) -> Option<String> {
    Profile::load(paths, name?).ok().map(|p| p.display_name)
}

/// The status from the files alone: no supervisor runs (or as the supervisor's base).
pub fn from_files(paths: &Paths, state: &State) -> Status {
    let red_active = paths.red_active().exists();
    let since = std::fs::metadata(paths.red_active())
        .and_then(|m| m.modified())
        .ok()
        .map(|t| chrono::DateTime::<chrono::Local>::from(t).to_rfc3339());
    let active = switch::active_profile(paths)
        .ok()
        .flatten()
        .or_else(|| state.active.clone());
    Status {
        running: false,
        state: if red_active { "online" } else { "offline" }.into(),
        active_display_name: display_name(paths, active.as_ref()),
        active_profile: active,
        primary_display_name: display_name(paths, state.primary.as_ref()),
        primary_profile: state.primary.clone(),
        auto: state.auto,
        pinned: state.pinned.is_some(),
        switch_count: state.switch_count,
        last_switch: state.last_switch.and_then(local_time),
        red: RedStatus {
            iface: health::red_iface(paths),
            active: red_active,
            since,
            local_ip: fsutil::read_word(&paths.red_local_ip()),
            gateway: fsutil::read_word(&paths.red_remote_ip()),
        },
        transitions: state.transitions.clone(),
        journal: state.journal.clone(),
        chain: chain_view(paths, state),
        ..Status::default()
    }
}

/// The status a running supervisor answers: the files, then its core's view (`snap`,
/// whose active and primary profile and switch counter win), the last health verdict
/// (`None`: no round yet) and RED's throughput.
pub(crate) fn supervised(
    paths: &Paths,
    state: &State,
    snap: Snapshot,
    health: Option<HealthStatus>,
    traffic: TrafficStatus,
) -> Status {
    let mut s = from_files(paths, state);
    if s.active_profile.as_ref() != Some(&snap.active) {
        s.active_display_name = display_name(paths, Some(&snap.active));
    }
    if s.primary_profile.as_ref() != Some(&snap.primary) {
        s.primary_display_name = display_name(paths, Some(&snap.primary));
    }
    for c in &mut s.chain {
        c.last_pretest = snap
            .pretests
            .iter()
            .find(|p| p.profile == c.profile)
            .map(|p| LastPretest {
                result: p.result.clone(),
                secs_ago: p.secs_ago,
            });
    }
    Status {
        running: true,
        state: snap.state.clone(),
        phase: Some(snap.phase.clone()),
        failover_enabled: Some(snap.failover_enabled),
        active_profile: Some(snap.active.clone()),
        primary_profile: Some(snap.primary.clone()),
        auto: snap.auto,
        pinned: snap.pinned,
        switch_count: snap.switch_count,
        failback_delay_secs: Some(snap.failback_delay_secs),
        next_failback_in_secs: snap.next_failback_in_secs,
        attempts: Some(snap.attempts),
        health: health.unwrap_or_else(unknown_health),
        traffic: Some(traffic),
        core: Some(snap),
        ..s
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests build fixture trees with plain writes
mod tests {
    use super::*;
    use crate::ipfire::journal::SwitchKind;

    fn name(n: &str) -> ProfileName {
        ProfileName::new(n).unwrap()
    }

    fn root() -> (tempfile::TempDir, Paths) {
        let d = tempfile::tempdir().unwrap();
        let paths = Paths::new(d.path()).unwrap();
        let ppp = d.path().join("var/ipfire/ppp");
        std::fs::create_dir_all(&ppp).unwrap();
        std::fs::write(
            ppp.join("settings-1"),
            "PROFILENAME=Telekom DSL\nTYPE=pppoe\n",
        )
        .unwrap();
        std::fs::write(ppp.join("settings-2"), "PROFILENAME=LTE stick\nTYPE=dhcp\n").unwrap();
        std::fs::hard_link(ppp.join("settings-1"), ppp.join("settings")).unwrap();
        let red = d.path().join("var/ipfire/red");
        std::fs::create_dir_all(&red).unwrap();
        std::fs::write(red.join("active"), "").unwrap();
        std::fs::write(red.join("iface"), "ppp0\n").unwrap();
        std::fs::write(red.join("local-ipaddress"), "198.51.100.7\n").unwrap();
        std::fs::write(red.join("remote-ipaddress"), "198.51.100.1\n").unwrap();
        (d, paths)
    }

    fn state() -> State {
        let mut st = State {
            primary: Some(name("1")),
            active: Some(name("1")),
            switch_count: 4,
            last_switch: Some(1_700_000_000),
            ..State::default()
        };
        st.transitions.push(SwitchRecord {
            at: 1_700_000_000,
            from: Some(name("2")),
            to: name("1"),
            kind: SwitchKind::Failback,
            reason: "primary healthy".into(),
        });
        st
    }

    /// The keys of DESIGN.md 7 and every key `status --json` had before it was typed.
    const KEYS: [&str; 22] = [
        "running",
        "state",
        "phase",
        "failover_enabled",
        "active_profile",
        "active_display_name",
        "primary_profile",
        "primary_display_name",
        "auto",
        "pinned",
        "switch_count",
        "last_switch",
        "failback_delay_secs",
        "next_failback_in_secs",
        "attempts",
        "red",
        "health",
        "traffic",
        "transitions",
        "journal",
        "chain",
        "core",
    ];

    #[test]
    fn from_the_files_alone() {
        let (_d, paths) = root();
        let s = from_files(&paths, &state());
        assert!(!s.running);
        assert_eq!(s.state, "online");
        assert_eq!(s.active_profile, Some(name("1")));
        assert_eq!(s.active_display_name.as_deref(), Some("Telekom DSL"));
        assert_eq!(s.primary_display_name.as_deref(), Some("Telekom DSL"));
        assert!(s.on_primary());
        assert_eq!(s.switch_count, 4);
        assert!(s.last_switch.is_some());
        assert_eq!(s.red.iface.as_deref(), Some("ppp0"));
        assert_eq!(s.red.gateway.as_deref(), Some("198.51.100.1"));
        assert!(s.red.since.is_some());
        assert_eq!(s.health.verdict, "unknown");
        assert!(!s.healthy());
        assert_eq!(s.traffic, None);

        let v = serde_json::to_value(&s).unwrap();
        for k in KEYS {
            assert!(v.get(k).is_some(), "missing {k}: {v}");
        }
        for k in ["iface", "active", "since", "local_ip", "gateway"] {
            assert!(v["red"].get(k).is_some(), "missing red.{k}: {v}");
        }
        assert_eq!(v["health"]["healthy"], false);
        assert_eq!(v["health"]["targets"], serde_json::json!([]));
        assert_eq!(v["transitions"][0]["kind"], "failback");
        assert_eq!(v["transitions"][0]["from"], "2");
        assert_eq!(v["active_profile"], "1");
        // The wire format reads back to the same value.
        let back: Status = serde_json::from_value(v).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn an_older_or_partial_status_still_reads() {
        let s: Status = serde_json::from_str(
            r#"{"running": true, "state": "online", "active_profile": "2",
                "health": {"healthy": false, "verdict": "unknown", "targets": []},
                "red": {"iface": "wwan0", "active": true}, "unknown_key": 1}"#,
        )
        .unwrap();
        assert_eq!(s.active_profile, Some(name("2")));
        assert!(s.auto, "auto defaults to on");
        assert_eq!(s.red.iface.as_deref(), Some("wwan0"));
        assert_eq!(s.health.rounds, 0);
    }

    #[test]
    fn supervised_takes_the_cores_view() {
        let (_d, paths) = root();
        use crate::sys::clock::{Clock, FakeClock};
        let clock = FakeClock::default();
        let core = crate::supervisor::machine::Core::new(crate::supervisor::sim::config(&["2"]));
        let mut snap = core.snapshot(clock.now());
        snap.active = name("2");
        snap.switch_count = 9;
        snap.next_failback_in_secs = Some(42);
        snap.pretests.push(crate::supervisor::machine::PretestView {
            profile: name("1"),
            result: "failed".into(),
            passed: 0,
            failed: 1,
            secs_ago: 17,
        });
        let mut meter = Traffic::new();
        let t0 = clock.now();
        meter.sample("ppp0", 0, 0, t0);
        meter.sample(
            "ppp0",
            1_000_000,
            125_000,
            t0 + std::time::Duration::from_secs(1),
        );
        let s = supervised(&paths, &state(), snap, None, TrafficStatus::of(&meter));
        assert!(s.running);
        assert_eq!(s.active_profile, Some(name("2")));
        assert_eq!(s.active_display_name.as_deref(), Some("LTE stick"));
        assert!(!s.on_primary());
        assert_eq!(s.switch_count, 9, "the core's counter");
        assert_eq!(s.next_failback_in_secs, Some(42));
        assert_eq!(s.health.verdict, "unknown");
        let t = s.traffic.clone().unwrap();
        assert_eq!(t.iface.as_deref(), Some("ppp0"));
        assert_eq!((t.rx_mbps, t.tx_mbps), (8.0, 1.0));
        assert_eq!(s.transitions.len(), 1, "the state file's switches");
        let v = serde_json::to_value(&s).unwrap();
        for k in KEYS {
            assert!(!v[k].is_null() || k == "journal", "null {k}: {v}");
        }
        assert!(v["core"]["transitions"].is_array());
        assert_eq!(v["chain"][0]["profile"], "1");
        assert_eq!(v["chain"][0]["last_pretest"]["result"], "failed");
        assert_eq!(v["chain"][0]["last_pretest"]["secs_ago"], 17);
        let line = s.to_string();
        assert!(
            !line.contains('\n') && line.contains("\"switch_count\":9"),
            "{line}"
        );
    }
}
