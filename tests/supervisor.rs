//! The real `connectd` binary against a temporary IPFire root with a fake network script:
//! one supervisor per root, status, manual failover/failback through the control socket,
//! and recovery after a crash at every step of a switch.
//!
//! The fake network script brings "RED" up on `lo` and the probe target is 127.0.0.1, so
//! the real prober sees a healthy uplink. Raw ICMP sockets need root: these tests skip
//! (saying so) when not run as root; CI runs them as root.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns: a failed setup is a failed test

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::util::{TestRoot, is_root};

const BIN: &str = env!("CARGO_BIN_EXE_connectd");

const POLICY: &str = "FAILOVER_ENABLED=on\nBACKUPPROFILE=2\nFAILOVER_CHECK_HOST=127.0.0.1\n\
FAILOVER_CHECK_DNS=off\nFAILOVER_CHECK_INTERVAL=0.5\nFAILOVER_CONNECT_TIMEOUT=10\n\
FAILBACK_DELAY=3600\n";

/// A root whose two profiles are DHCP on `lo`, with a fake network script that records its
/// calls and brings RED up on `lo` (slowly when `slow-start` exists next to the root).
struct Box_ {
    t: TestRoot,
}

impl Box_ {
    fn new() -> Box_ {
        let t = TestRoot::synthetic();
        let eth = String::from_utf8(t.read("var/ipfire/ethernet/settings"))
            .unwrap()
            .replace("RED_DEV=red0", "RED_DEV=lo")
            .replace("RED_TYPE=PPPOE", "RED_TYPE=DHCP");
        t.write("var/ipfire/ethernet/settings", eth);
        // In place: settings shares the inode of settings-1.
        t.write(
            "var/ipfire/ppp/settings-1",
            "PROFILE=1\nPROFILENAME='Cable'\nTYPE=DHCP\nMAXRETRIES=2\nHOLDOFF=1\nBACKUPPROFILE=1\n",
        );
        t.write(
            "var/ipfire/ppp/settings-2",
            "PROFILE=2\nPROFILENAME='Second line'\nTYPE=DHCP\nDEVICE=lo\nMAXRETRIES=2\nHOLDOFF=1\n",
        );
        t.write("var/ipfire/connectd/settings", POLICY);
        let script = format!(
            r#"#!/bin/sh
R='{root}'
echo "$*" >> '{log}'
case "$1" in
start)
	[ -e '{dir}/slow-start' ] && sleep 5
	printf lo > "$R/var/ipfire/red/iface"
	printf 127.0.0.1 > "$R/var/ipfire/red/local-ipaddress"
	touch "$R/var/ipfire/red/active"
	;;
stop)
	rm -f "$R/var/ipfire/red/active"
	;;
esac
exit 0
"#,
            root = t.root().display(),
            log = t.log_path().display(),
            dir = t.root().parent().unwrap().display(),
        );
        t.write("etc/rc.d/init.d/network", script);
        fs::set_permissions(
            t.path("etc/rc.d/init.d/network"),
            fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        // RED is up as the network script left it before calling `connectd start`.
        t.write("var/ipfire/red/iface", "lo");
        t.write("var/ipfire/red/active", "");
        Box_ { t }
    }

    fn connectd(&self, args: &[&str]) -> Output {
        self.connectd_env(args, &[])
    }

    fn connectd_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut c = Command::new(BIN);
        c.arg("--root").arg(self.t.root()).args(args);
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    }

    fn pid(&self) -> Option<i32> {
        let s = fs::read_to_string(self.t.path("var/run/connectd.pid")).ok()?;
        let pid: i32 = s.trim().parse().ok()?;
        alive(pid).then_some(pid)
    }

    fn status(&self) -> serde_json::Value {
        let o = self.connectd(&["status", "--json"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice(&o.stdout).unwrap()
    }

    fn wait_for(&self, what: &str, mut f: impl FnMut(&Box_) -> bool) {
        let start = Instant::now();
        while !f(self) {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "timed out waiting for {what}; network calls: {:?}",
                self.t.network_calls()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn settings_is(&self, profile: &str) -> bool {
        self.t.inode("var/ipfire/ppp/settings")
            == self.t.inode(&format!("var/ipfire/ppp/settings-{profile}"))
    }

    /// `settings`, `secrets`, `ethernet/settings` and the state agree.
    fn assert_consistent(&self) {
        let ppp = self.t.path("var/ipfire/ppp");
        let active = ["1", "2"]
            .into_iter()
            .find(|p| self.settings_is(p))
            .expect("settings links to a profile");
        let eth = String::from_utf8(self.t.read("var/ipfire/ethernet/settings")).unwrap();
        assert!(eth.contains("RED_TYPE=DHCP\n"), "{eth}");
        assert!(eth.contains("RED_DEV=lo\n"), "{eth}");
        assert!(eth.contains("GREEN_DEV=green0\n"), "non-RED lines kept");
        let mode = fs::metadata(ppp.join("secrets")).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let state: serde_json::Value =
            serde_json::from_slice(&self.t.read("var/ipfire/connectd/state")).unwrap();
        assert!(state["journal"].is_null(), "journal left: {state}");
        assert_eq!(state["active"], active, "{state}");
        assert!(
            !fs::read_dir(&ppp).unwrap().any(|e| e
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains("tmp")),
            "temporary files left in ppp/"
        );
    }
}

impl Drop for Box_ {
    fn drop(&mut self) {
        let _ = self.connectd(&["stop"]);
        if let Some(pid) = self.pid() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

fn alive(pid: i32) -> bool {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    !stat.is_empty() && !stat.contains(") Z ")
}

/// Supervisors of this root: processes named connectd whose command line names it.
fn supervisors(root: &Path) -> Vec<i32> {
    let mut out = Vec::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let comm = fs::read_to_string(e.path().join("comm")).unwrap_or_default();
        let cmdline = fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if comm.trim() == "connectd"
            && cmdline.contains(&root.display().to_string())
            && cmdline.contains(" start")
            && alive(pid)
        {
            out.push(pid);
        }
    }
    out
}

fn skip() -> bool {
    if !is_root() {
        eprintln!("skipped: raw ICMP probes of the supervisor need root");
        return true;
    }
    false
}

fn start(b: &Box_) {
    let o = b.connectd(&["start"]);
    assert!(
        o.status.success(),
        "start: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    b.wait_for("the supervisor", |b| b.status()["running"] == true);
}

#[test]
fn start_returns_at_once_and_ten_concurrent_starts_give_one_supervisor() {
    if skip() {
        return;
    }
    let b = Box_::new();
    let t0 = Instant::now();
    start(&b);
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "start took {:?}",
        t0.elapsed()
    );
    let handles: Vec<_> = (0..10)
        .map(|_| {
            let root: PathBuf = b.t.root().to_path_buf();
            std::thread::spawn(move || {
                Command::new(BIN)
                    .arg("--root")
                    .arg(root)
                    .arg("start")
                    .output()
                    .unwrap()
            })
        })
        .collect();
    for h in handles {
        let o = h.join().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    std::thread::sleep(Duration::from_millis(300));
    let sups = supervisors(b.t.root());
    assert_eq!(sups.len(), 1, "supervisors: {sups:?}");
    assert_eq!(b.pid(), Some(sups[0]));
}

#[test]
fn status_json_has_the_documented_fields() {
    if skip() {
        return;
    }
    let b = Box_::new();
    start(&b);
    b.wait_for("a healthy verdict", |b| {
        b.status()["health"]["healthy"] == true
    });
    let s = b.status();
    for key in [
        "state",
        "active_profile",
        "primary_profile",
        "auto",
        "switch_count",
        "last_switch",
        "red",
        "health",
    ] {
        assert!(s.get(key).is_some(), "missing {key}: {s}");
    }
    for key in ["iface", "active", "local_ip", "gateway"] {
        assert!(s["red"].get(key).is_some(), "missing red.{key}: {s}");
    }
    assert_eq!(s["active_profile"], "1");
    assert_eq!(s["primary_profile"], "1");
    assert_eq!(s["red"]["iface"], "lo");
    let t = &s["health"]["targets"][0];
    assert_eq!(t["host"], "127.0.0.1");
    assert!(t["rtt_ms"].as_f64().is_some(), "{s}");
    assert!(t.get("loss_pct").is_some());
}

#[test]
fn manual_failover_and_failback_switch_the_files() {
    if skip() {
        return;
    }
    let b = Box_::new();
    let eth_before = b.t.read("var/ipfire/ethernet/settings");
    let primary_before = b.t.read("var/ipfire/ppp/settings-1");
    start(&b);
    let o = b.connectd(&["failover", "2"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    b.wait_for("settings -> settings-2", |b| b.settings_is("2"));
    b.wait_for("online on 2", |b| {
        let s = b.status();
        s["state"] == "online" && s["active_profile"] == "2"
    });
    let s = b.status();
    assert_eq!(s["pinned"], true, "a manual failover pins: {s}");
    assert_eq!(s["switch_count"], 1);
    assert_eq!(
        fs::read_to_string(b.t.path("var/ipfire/red/current-profile")).unwrap(),
        "2"
    );
    let calls = b.t.network_calls();
    assert!(
        calls.ends_with(&["stop red".to_string(), "start red".to_string()]),
        "{calls:?}"
    );

    let o = b.connectd(&["failback", "--force"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    b.wait_for("settings -> settings-1", |b| b.settings_is("1"));
    b.wait_for("online on 1", |b| {
        let s = b.status();
        s["state"] == "online" && s["active_profile"] == "1" && s["pinned"] == false
    });
    assert_eq!(b.t.read("var/ipfire/ethernet/settings"), eth_before);
    assert_eq!(b.t.read("var/ipfire/ppp/settings-1"), primary_before);
    b.assert_consistent();

    // Bad input gets exit 2 and one message; nothing switches.
    let o = b.connectd(&["failover", "../x"]);
    assert_eq!(o.status.code(), Some(2));
    let o = b.connectd(&["failover", "4"]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(b.settings_is("1"));
}

#[test]
fn sigterm_stops_without_redial_and_leaves_the_files_consistent() {
    if skip() {
        return;
    }
    let b = Box_::new();
    start(&b);
    let calls_before = b.t.network_calls().len();
    let o = b.connectd(&["stop"]);
    assert!(o.status.success());
    assert!(b.pid().is_none());
    assert_eq!(
        b.t.network_calls().len(),
        calls_before,
        "no redial, no stop on SIGTERM"
    );
    assert!(!b.t.path("var/run/connectd.sock").exists());
    b.assert_consistent();
}

#[test]
fn a_crash_at_every_step_of_a_switch_is_recovered_by_the_next_start() {
    if skip() {
        return;
    }
    for step in [
        "intent",
        "stopped",
        "ethernet_written",
        "linked",
        "secrets_written",
        "started",
    ] {
        let b = Box_::new();
        let primary_before = b.t.read("var/ipfire/ppp/settings-1");
        let o = b.connectd_env(&["start"], &[("CONNECTD_CRASH_AT", step)]);
        assert!(o.status.success());
        b.wait_for("the supervisor", |b| b.status()["running"] == true);
        let pid = b.pid().unwrap();
        let _ = b.connectd(&["failover", "2"]);
        b.wait_for(&format!("the abort at {step}"), |_| !alive(pid));
        start(&b);
        b.wait_for(&format!("online after the crash at {step}"), |b| {
            b.status()["state"] == "online"
        });
        b.assert_consistent();
        assert_eq!(
            b.t.read("var/ipfire/ppp/settings-1"),
            primary_before,
            "primary changed after a crash at {step}"
        );
    }
}

#[test]
fn kill_9_during_a_switch_then_start_recovers() {
    if skip() {
        return;
    }
    let b = Box_::new();
    start(&b);
    fs::write(b.t.root().parent().unwrap().join("slow-start"), "").unwrap();
    let pid = b.pid().unwrap();
    let root = b.t.root().to_path_buf();
    let caller = std::thread::spawn(move || {
        Command::new(BIN)
            .arg("--root")
            .arg(root)
            .args(["failover", "2"])
            .output()
            .unwrap()
    });
    // The slow `start red` runs after every file was switched.
    b.wait_for("the switch to reach start red", |b| {
        b.t.network_calls().last().map(String::as_str) == Some("start red")
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let _ = caller.join();
    fs::remove_file(b.t.root().parent().unwrap().join("slow-start")).unwrap();
    start(&b);
    b.wait_for("online after kill -9", |b| b.status()["state"] == "online");
    b.assert_consistent();
}
