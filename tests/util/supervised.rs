//! The real `connectd` binary against a temporary IPFire root: `Box_`, a root whose two
//! profiles are DHCP on `lo` with a fake network script (probe target 127.0.0.1), and the
//! helpers that drive it. Shared by `tests/supervisor.rs` and `tests/reliability.rs`.
#![allow(dead_code)]
#![allow(clippy::unwrap_used)]

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use super::{TestRoot, is_root};

pub const BIN: &str = env!("CARGO_BIN_EXE_connectd");

/// FAILBACK_GRACE is short: a forced failback is `online` once the trial grace has passed,
/// and a 30 s default grace raced the helpers' 30 s wait.
pub const POLICY: &str = "FAILOVER_ENABLED=on\nBACKUPPROFILE=2\nFAILOVER_CHECK_HOST=127.0.0.1\n\
FAILOVER_CHECK_DNS=off\nFAILOVER_CHECK_INTERVAL=0.5\nFAILOVER_CONNECT_TIMEOUT=10\n\
FAILBACK_DELAY=3600\nFAILBACK_GRACE=3\n";

/// A root whose two profiles are DHCP on `lo`, with a fake network script that records its
/// calls and brings RED up on `lo` (slowly when `slow-start` exists next to the root).
pub struct Box_ {
    pub t: TestRoot,
}

impl Box_ {
    pub fn new() -> Box_ {
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
        // The box's kernel is the host's (RED is `lo`): connectd reads `/sys` and `/proc`
        // under its root.
        std::os::unix::fs::symlink("/sys", t.path("sys")).unwrap();
        std::os::unix::fs::symlink("/proc", t.path("proc")).unwrap();
        // RED is up as the network script left it before calling `connectd start`.
        t.write("var/ipfire/red/iface", "lo");
        t.write("var/ipfire/red/active", "");
        Box_ { t }
    }

    pub fn connectd(&self, args: &[&str]) -> Output {
        self.connectd_env(args, &[])
    }

    pub fn connectd_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut c = Command::new(BIN);
        c.arg("--root").arg(self.t.root()).args(args);
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    }

    pub fn pid(&self) -> Option<i32> {
        let s = fs::read_to_string(self.t.path("var/run/connectd.pid")).ok()?;
        let pid: i32 = s.trim().parse().ok()?;
        alive(pid).then_some(pid)
    }

    pub fn status(&self) -> serde_json::Value {
        let o = self.connectd(&["status", "--json"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice(&o.stdout).unwrap()
    }

    pub fn wait_for(&self, what: &str, mut f: impl FnMut(&Box_) -> bool) {
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

    pub fn settings_is(&self, profile: &str) -> bool {
        self.t.inode("var/ipfire/ppp/settings")
            == self.t.inode(&format!("var/ipfire/ppp/settings-{profile}"))
    }

    /// `settings`, `secrets`, `ethernet/settings` and the state agree.
    pub fn assert_consistent(&self) {
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

pub fn alive(pid: i32) -> bool {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    !stat.is_empty() && !stat.contains(") Z ")
}

/// Supervisors of this root: processes named connectd whose command line names it.
pub fn supervisors(root: &Path) -> Vec<i32> {
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

pub fn skip() -> bool {
    if !is_root() {
        eprintln!("skipped: raw ICMP probes of the supervisor need root");
        return true;
    }
    false
}

pub fn start(b: &Box_) {
    let o = b.connectd(&["start"]);
    assert!(
        o.status.success(),
        "start: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    b.wait_for("the supervisor", |b| b.status()["running"] == true);
}
