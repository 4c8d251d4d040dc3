//! End-to-end tests on the lab (DESIGN.md section 8): `tools/lab` builds a whole IPFire box
//! with three uplinks in network namespaces; these tests drive it and, once the supervisor
//! exists, connectd inside it.
//!
//! Each test runs its own copy of the lab (its own `LAB_PREFIX` and `LAB_DIR`, so tests and
//! engineers never collide) and tears it down in `Drop`, also when an assertion fails.
//! They need root and the lab's tools (iproute2, nftables, dnsmasq, dhcpcd, ping); without
//! them they print `skipped: <reason>` and pass.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::util::is_root;

pub(crate) fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub(crate) fn connectd_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_connectd"))
}

/// `target/debug/examples/lab-pppoe`, next to the connectd binary.
pub(crate) fn lab_pppoe_bin() -> PathBuf {
    let bin = connectd_bin();
    bin.parent()
        .map(|d| d.join("examples/lab-pppoe"))
        .unwrap_or_else(|| PathBuf::from("target/debug/examples/lab-pppoe"))
}

fn have(tool: &str) -> bool {
    ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
        .iter()
        .any(|d| Path::new(d).join(tool).exists())
}

/// Why the lab cannot run here, if it cannot.
pub(crate) fn cannot_run() -> Option<String> {
    if !is_root() {
        return Some("the lab needs root (network namespaces)".into());
    }
    for tool in [
        "ip", "nft", "dnsmasq", "dhcpcd", "ping", "unshare", "setsid",
    ] {
        if !have(tool) {
            return Some(format!("{tool} is not installed (run tools/setup)"));
        }
    }
    None
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// One running copy of the lab; `tools/lab down` on drop.
pub(crate) struct Lab {
    pub(crate) prefix: String,
    pub(crate) dir: PathBuf,
    pub(crate) connectd: Option<Child>,
    client: Option<Child>,
}

impl Lab {
    /// Brings a fresh lab up, or prints why it cannot and returns None.
    pub(crate) fn up(test: &str) -> Option<Lab> {
        Lab::up_with(test, false)
    }

    /// `connectd`: whether the box's own scripts call connectd (the network script's
    /// `connectd start`, ip-down's `connectd reconnect`), as on IPFire.
    pub(crate) fn up_with(test: &str, connectd: bool) -> Option<Lab> {
        let env: &[(&str, &str)] = if connectd {
            &[]
        } else {
            &[("LAB_NO_CONNECTD", "1")]
        };
        Lab::up_env(test, env)
    }

    /// A fresh lab whose `tools/lab up` sees ENV (LAB_PRIMARY, LAB_NO_CONNECTD, ...).
    pub(crate) fn up_env(test: &str, env: &[(&str, &str)]) -> Option<Lab> {
        if let Some(why) = cannot_run() {
            println!("skipped: {test}: {why}");
            return None;
        }
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id() % 100_000;
        // LAB_TEST_PREFIX / LAB_TEST_DIR: another namespace prefix and state directory
        // base, for runs beside other labs on the same machine.
        let prefix = std::env::var("LAB_TEST_PREFIX").unwrap_or_else(|_| "ct".into());
        let base =
            std::env::var("LAB_TEST_DIR").unwrap_or_else(|_| "/tmp/connectd-lab-test".into());
        let lab = Lab {
            prefix: format!("{prefix}{pid}{n}-"),
            dir: PathBuf::from(format!("{base}-{pid}-{n}")),
            connectd: None,
            client: None,
        };
        let started = Instant::now();
        let mut up = lab.command(&["up"]);
        up.envs(env.iter().copied());
        let o = up.output().unwrap_or_else(|e| panic!("tools/lab up: {e}"));
        assert!(
            o.status.success(),
            "tools/lab up: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        println!("{test}: lab {} up in {:?}", lab.prefix, started.elapsed());
        Some(lab)
    }

    pub(crate) fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(repo().join("tools/lab"));
        c.args(args)
            .env("LAB_PREFIX", &self.prefix)
            .env("LAB_DIR", &self.dir)
            .env("CONNECTD_BIN", connectd_bin())
            .env("MWP_BIN", env!("CARGO_BIN_EXE_manage-wan-profiles"))
            .env("LAB_PPPOE_BIN", lab_pppoe_bin())
            .stdin(Stdio::null());
        c
    }

    pub(crate) fn run(&self, args: &[&str]) -> Output {
        self.command(args)
            .output()
            .unwrap_or_else(|e| panic!("tools/lab {args:?}: {e}"))
    }

    /// Runs `tools/lab ARGS`, panics with its output unless it succeeds; returns stdout.
    pub(crate) fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "tools/lab {args:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub(crate) fn ns(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    pub(crate) fn root(&self) -> PathBuf {
        self.dir.join("root")
    }

    pub(crate) fn red(&self, file: &str) -> PathBuf {
        self.root().join("var/ipfire/red").join(file)
    }

    pub(crate) fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.root().join(rel)).unwrap_or_default()
    }

    /// `tools/lab carrier`: which ISP carried the LAN client's replies (1 s window).
    pub(crate) fn carrier(&self) -> String {
        self.ok(&["carrier", "1"]).trim().to_string()
    }

    /// Whether the LAN client reaches ADDR (a few pings).
    pub(crate) fn lan_reaches(&self, addr: &str) -> bool {
        self.run(&[
            "shell", "lan", "ping", "-n", "-q", "-c", "3", "-i", "0.2", "-W", "1", addr,
        ])
        .status
        .success()
    }

    /// Starts the LAN client pinging 203.0.113.1 every 100 ms (so `carrier` has traffic).
    pub(crate) fn start_client(&mut self) {
        let child = self
            .command(&[
                "shell",
                "lan",
                "ping",
                "-n",
                "-q",
                "-i",
                "0.1",
                "203.0.113.1",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the LAN client");
        self.client = Some(child);
    }

    /// PIDs of the processes (not zombies) in namespace NAME.
    pub(crate) fn pids_in(&self, name: &str) -> Vec<u32> {
        let out = Command::new("ip")
            .args(["netns", "pids", &self.ns(name)])
            .output()
            .expect("ip netns pids");
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .filter(|&p| alive(p))
            .collect()
    }

    /// Starts `connectd start --foreground` inside fw (log: LAB_DIR/connectd.log).
    pub(crate) fn start_connectd(&mut self) {
        let log = std::fs::File::create(self.dir.join("connectd.log")).expect("connectd.log");
        let err = log.try_clone().expect("clone log");
        let path = format!(
            "{}:{}",
            self.root().join("usr/lib/cdlab/bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns("fw"), "env"])
            .arg(format!("PATH={path}"))
            .arg(connectd_bin())
            .arg("--root")
            .arg(self.root())
            .args(["start", "--foreground"])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .expect("spawn connectd");
        self.connectd = Some(child);
    }

    /// `connectd status --json`, parsed (Null when it cannot be read).
    pub(crate) fn status(&self) -> serde_json::Value {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns("fw")])
            .arg(connectd_bin())
            .arg("--root")
            .arg(self.root())
            .args(["status", "--json"])
            .output();
        match out {
            Ok(o) if o.status.success() => {
                serde_json::from_slice(&o.stdout).unwrap_or(serde_json::Value::Null)
            }
            _ => serde_json::Value::Null,
        }
    }

    pub(crate) fn active_profile(&self) -> String {
        match &self.status()["active_profile"] {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            _ => "?".into(),
        }
    }

    pub(crate) fn switch_count(&self) -> u64 {
        self.status()["switch_count"].as_u64().unwrap_or(0)
    }

    pub(crate) fn connectd_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("connectd.log")).unwrap_or_default()
    }

    /// Waits until connectd reports PROFILE active and the LAN's traffic flows via ISP;
    /// returns how long that took, panics (with connectd's log) after TIMEOUT.
    pub(crate) fn wait_on(&mut self, profile: &str, isp: &str, timeout: Duration) -> Duration {
        let start = Instant::now();
        loop {
            if let Some(c) = self.connectd.as_mut() {
                if let Ok(Some(st)) = c.try_wait() {
                    panic!("connectd exited ({st}):\n{}", self.connectd_log());
                }
            }
            let (p, c) = (self.active_profile(), self.carrier());
            if p == profile && c == isp {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < timeout,
                "after {timeout:?}: profile {p} (want {profile}), traffic via {c} (want {isp})\n{}",
                self.connectd_log()
            );
        }
    }

    /// The files of DESIGN.md 1 agree with PROFILE being active.
    pub(crate) fn assert_consistent(&self, profile: &str, red_type: &str, red_dev: &str) {
        let ppp = self.root().join("var/ipfire/ppp");
        let settings = std::fs::metadata(ppp.join("settings")).expect("ppp/settings");
        let chosen = std::fs::metadata(ppp.join(format!("settings-{profile}"))).expect("profile");
        assert_eq!(
            settings.ino(),
            chosen.ino(),
            "settings is a hard link to settings-{profile}"
        );
        let eth = self.read("var/ipfire/ethernet/settings");
        assert!(
            eth.lines().any(|l| l == format!("RED_TYPE={red_type}")),
            "{eth}"
        );
        assert!(
            eth.lines().any(|l| l == format!("RED_DEV={red_dev}")),
            "{eth}"
        );
        assert!(
            eth.lines().any(|l| l == "GREEN_ADDRESS=192.0.2.129"),
            "green kept: {eth}"
        );
        let secrets = std::fs::metadata(ppp.join("secrets")).expect("secrets");
        assert_eq!(secrets.permissions().mode() & 0o777, 0o600, "secrets mode");
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for child in [self.client.take(), self.connectd.take()]
            .into_iter()
            .flatten()
        {
            let mut child = child;
            let _ = child.kill();
            let _ = child.wait();
        }
        let out = self.run(&["down"]);
        if !out.status.success() {
            eprintln!(
                "tools/lab down failed for {}: {}",
                self.prefix,
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

/// True while PID runs and is not a zombie (this machine's PID 1 reaps lazily).
pub(crate) fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(") ")
            .map(|(_, rest)| !rest.starts_with('Z'))
            .unwrap_or(false),
        Err(_) => false,
    }
}

pub(crate) fn pid_in(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

pub(crate) fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    cond()
}

/// Processes that are gone or zombies (not yet reaped by PID 1) count as gone.
fn all_gone(pids: &[u32]) -> bool {
    pids.iter().all(|&p| !alive(p))
}

const NAMESPACES: [&str; 6] = ["fw", "isp1", "isp2", "lte", "inet", "lan"];

#[test]
fn up_then_down_leaves_no_namespace_process_or_file() {
    let Some(mut lab) = Lab::up("lab_up_down") else {
        return;
    };
    // Something running in every corner: RED up on the DHCP profile (`profile` is
    // `manage-wan-profiles activate`: it runs `network start red`), a LAN client.
    lab.ok(&["profile", "2"]);
    lab.start_client();
    let mut pids = Vec::new();
    for n in NAMESPACES {
        assert!(
            Path::new("/run/netns").join(lab.ns(n)).exists(),
            "namespace {n}"
        );
        assert!(
            Path::new("/etc/netns")
                .join(lab.ns(n))
                .join("resolv.conf")
                .exists()
        );
        pids.extend(lab.pids_in(n));
    }
    assert!(pids.len() >= 4, "dnsmasq x4 at least: {pids:?}");

    let started = Instant::now();
    lab.ok(&["down"]);
    println!("down took {:?}", started.elapsed());
    for n in NAMESPACES {
        assert!(
            !Path::new("/run/netns").join(lab.ns(n)).exists(),
            "namespace {n} left"
        );
        assert!(
            !Path::new("/etc/netns").join(lab.ns(n)).exists(),
            "/etc/netns/{n} left"
        );
    }
    assert!(!lab.dir.exists(), "{} left", lab.dir.display());
    assert!(
        wait_for(Duration::from_secs(2), || all_gone(&pids)),
        "processes left: {pids:?}"
    );
    // down twice is fine
    lab.ok(&["down"]);
}

#[test]
fn up_twice_replaces_the_leftovers() {
    let Some(lab) = Lab::up("lab_up_twice") else {
        return;
    };
    let before = lab.pids_in("inet");
    lab.ok(&["up"]);
    assert!(
        wait_for(Duration::from_secs(2), || all_gone(&before)),
        "old dnsmasq left"
    );
    assert_eq!(lab.pids_in("inet").len(), 1, "one lab DNS");
}

#[test]
fn network_start_stop_dhcp() {
    let Some(lab) = Lab::up("network_dhcp") else {
        return;
    };
    // `manage-wan-profiles activate 2`: network stop red, the files, network start red.
    lab.ok(&["profile", "2"]);
    assert!(
        wait_for(Duration::from_secs(15), || lab.red("active").exists()),
        "red/active within 15 s; dhcpcd log:\n{}",
        lab.read("var/log/lab/dhcpcd-red1.log")
    );
    assert_eq!(lab.read("var/ipfire/red/iface"), "red1");
    assert_eq!(lab.read("var/ipfire/red/remote-ipaddress"), "198.51.100.65");
    let local = lab.read("var/ipfire/red/local-ipaddress");
    let host: u32 = local
        .rsplit('.')
        .next()
        .and_then(|h| h.parse().ok())
        .unwrap_or(0);
    assert!(
        local.starts_with("198.51.100.") && (80..=99).contains(&host),
        "{local}"
    );
    assert_eq!(lab.read("var/run/dns1").trim(), "198.51.100.65");
    assert!(
        lab.lan_reaches("203.0.113.1"),
        "LAN client reaches the target via isp2"
    );
    // The DNS probe through isp2's resolver: a random name under target.lab, denied by the
    // lab DNS with target.lab's SOA, proves the path (src/uplink/health/dns.rs).
    let out = Command::new("ip")
        .args(["netns", "exec", &lab.ns("fw")])
        .arg(connectd_bin())
        .arg("--root")
        .arg(lab.root())
        .args(["check", "--json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let dns = v["targets"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["host"] == "dns:198.51.100.65"))
        .unwrap_or_else(|| panic!("no DNS target: {v}"));
    assert!(dns["rtt_ms"].is_number(), "{v}");
    assert_eq!(v["healthy"], true, "{v}");

    let dhcpcd = pid_in(&lab.root().join("var/run/dhcpcd-lab/red1/pid")).expect("dhcpcd pid");
    assert!(alive(dhcpcd));
    lab.ok(&["red", "stop"]);
    assert!(!lab.red("active").exists(), "red/active removed");
    assert!(
        wait_for(Duration::from_secs(2), || !alive(dhcpcd)),
        "dhcpcd left running"
    );
    assert!(
        lab.pids_in("fw").is_empty(),
        "nothing left in fw: {:?}",
        lab.pids_in("fw")
    );
    assert!(!lab.lan_reaches("203.0.113.1"), "no uplink after stop");
}

#[test]
fn network_start_stop_qmi() {
    let Some(lab) = Lab::up("network_qmi") else {
        return;
    };
    // `manage-wan-profiles activate 3` runs `network start red`.
    lab.ok(&["profile", "3"]);
    assert!(
        wait_for(Duration::from_secs(15), || lab.red("active").exists()),
        "red/active"
    );
    assert_eq!(lab.read("var/ipfire/red/iface"), "wwan0");
    assert_eq!(
        lab.read("var/ipfire/red/remote-ipaddress"),
        "198.51.100.129"
    );
    let out = lab.ok(&["shell", "fw", "qmicli", "--nas-get-serving-system"]);
    assert!(out.contains("Registration state: 'registered'"), "{out}");
    lab.ok(&["red", "stop"]);
    assert!(lab.pids_in("fw").is_empty(), "nothing left in fw");
}

/// `tools/lab profile` is `manage-wan-profiles activate`: a password with `'` and `$` (and
/// `"`, `\`, a space), which the bash profile switch it replaced quoted wrongly, reaches
/// ppp/secrets as pppd's `getword()` reads it, and the box comes up on the profile.
#[test]
fn lab_profile_activates_a_password_with_quote_and_dollar() {
    let Some(lab) = Lab::up("lab_profile_password") else {
        return;
    };
    let user = "dsl-user@isp1.example";
    let pw = r#"it's $HOME "x" a\b"#;
    let mut create = Command::new(env!("CARGO_BIN_EXE_manage-wan-profiles"));
    create
        .arg("--root")
        .arg(lab.root())
        .args(["create", "quoted", "--type", "pppoe", "--device", "red0"])
        .args(["--profile-name", "Quoted DSL", "--username", user])
        .arg("--password-stdin");
    let out = crate::util::run_with_stdin(create, &format!("{pw}\n"));
    assert!(
        out.status.success(),
        "create: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = lab.ok(&["profile", "quoted"]);
    assert!(said.contains("activated profile quoted"), "{said}");
    assert!(lab.red("active").exists(), "RED up on the profile: {said}");
    lab.assert_consistent("quoted", "PPPOE", "red0");
    let secrets = lab.read("var/ipfire/ppp/secrets");
    let lines: Vec<&str> = secrets.lines().collect();
    assert_eq!(lines.len(), 1, "{secrets}");
    assert_eq!(
        crate::util::pppd_words(lines[0]),
        [user, "*", pw],
        "{secrets}"
    );
    // And back to the WUI's profile 1, whose plain password is written plainly.
    lab.ok(&["profile", "1"]);
    lab.assert_consistent("1", "PPPOE", "red0");
    assert_eq!(
        lab.read("var/ipfire/ppp/secrets"),
        "'dsl-user@isp1.example' * 'Lab-pass1'\n"
    );
    lab.ok(&["red", "stop"]);
}

#[test]
fn pppoe_session_survives_a_blackhole_and_dies_with_the_link() {
    let Some(mut lab) = Lab::up("pppoe_faults") else {
        return;
    };
    lab.ok(&["red", "start"]);
    assert!(
        wait_for(Duration::from_secs(10), || lab.red("active").exists()),
        "red/active"
    );
    assert_eq!(lab.read("var/ipfire/red/iface"), "ppp0");
    assert_eq!(lab.read("var/ipfire/red/local-ipaddress"), "198.51.100.10");
    let pppd = pid_in(&lab.root().join("var/run/ppp-lab.pid")).expect("pppd pid");
    assert_eq!(
        std::fs::read_to_string(format!("/proc/{pppd}/comm")).unwrap_or_default(),
        "pppd\n"
    );
    lab.start_client();
    assert_eq!(lab.carrier(), "isp1");

    // Blackhole: the gateway answers, so the session stays up; traffic beyond dies.
    lab.ok(&["fault", "isp1", "blackhole"]);
    std::thread::sleep(Duration::from_secs(5));
    assert!(
        lab.red("active").exists() && alive(pppd),
        "session survives a blackhole"
    );
    assert_eq!(lab.carrier(), "none");
    lab.ok(&["fault", "isp1", "clear"]);
    assert!(
        wait_for(Duration::from_secs(3), || lab.carrier() == "isp1"),
        "traffic back"
    );

    // Link down: the stand-in notices (carrier, echo), runs ip-down and exits.
    lab.ok(&["fault", "isp1", "link-down"]);
    assert!(
        wait_for(Duration::from_secs(8), || !alive(pppd)),
        "pppd exits on a dead line"
    );
    assert!(!lab.red("active").exists(), "ip-down removed red/active");
    let log = lab.read("var/log/lab/pppd.log");
    assert!(log.contains("peer not responding"), "{log}");
    lab.ok(&["fault", "isp1", "clear"]);
    lab.ok(&["red", "stop"]);
    assert!(lab.pids_in("fw").is_empty(), "nothing left in fw");
}

// ---- with the supervisor ------------------------------------------------------------------
// Written against DESIGN.md's contract (`status --json`: `active_profile`, `switch_count`);
// the lab's policy: probes every 1 s, 3 failures, FAILBACK_DELAY=20, FAILBACK_GRACE=5,
// FAILBACK_VOTE_WINDOW=10.

/// A lab with connectd supervising, online on the primary (profile 1, isp1).
pub(crate) fn supervised(test: &str) -> Option<Lab> {
    if cannot_run().is_none() && !lab_pppoe_bin().exists() {
        // The PPPoE pre-test needs the access concentrator of the example.
        println!(
            "skipped: {test}: {} is not built",
            lab_pppoe_bin().display()
        );
        return None;
    }
    let mut lab = Lab::up_with(test, true)?;
    lab.start_client();
    lab.start_connectd();
    // As at boot: the network script brings RED up; its `connectd start` returns at once.
    lab.ok(&["red", "start"]);
    let t = lab.wait_on("1", "isp1", Duration::from_secs(45));
    println!("{test}: online on the primary after {t:?}");
    Some(lab)
}

#[test]
fn e2e_blackhole_fails_over_then_back() {
    let Some(mut lab) = supervised("e2e_blackhole") else {
        return;
    };
    lab.ok(&["fault", "isp1", "blackhole"]);
    let t = lab.wait_on("2", "isp2", Duration::from_secs(25));
    println!("failover took {t:?}");
    assert!(
        t < Duration::from_secs(15),
        "failover within 15 s, took {t:?}"
    );
    lab.assert_consistent("2", "DHCP", "red1");

    lab.ok(&["fault", "isp1", "clear"]);
    let t = lab.wait_on("1", "isp1", Duration::from_secs(60));
    println!("failback took {t:?}");
    assert!(
        t >= Duration::from_secs(15),
        "no failback before FAILBACK_DELAY, took {t:?}"
    );
    std::thread::sleep(Duration::from_secs(7));
    assert_eq!(
        lab.active_profile(),
        "1",
        "stays on the primary through FAILBACK_GRACE"
    );
    assert_eq!(lab.carrier(), "isp1");
    lab.assert_consistent("1", "PPPOE", "red0");
    assert_eq!(lab.switch_count(), 2, "one failover, one failback");
}

/// Issue 13: the chain is pre-tested in the background (FAILOVER_PRETEST_INTERVAL, default
/// 300 s: a round at the start) against the real DHCP server of isp2, `status` shows each
/// profile's last pre-test and its age, and a blackhole's failover takes that pass (or the
/// one of its first failed round) instead of waiting for a new pre-test.
#[test]
fn e2e_background_pretests_are_shown_and_used_by_the_failover() {
    let Some(mut lab) = supervised("e2e_bg_pretests") else {
        return;
    };
    let last = |lab: &Lab, profile: &str| -> serde_json::Value {
        let st = lab.status();
        st["chain"]
            .as_array()
            .and_then(|c| c.iter().find(|e| e["profile"] == profile).cloned())
            .map_or(serde_json::Value::Null, |e| e["last_pretest"].clone())
    };
    assert!(
        wait_for(Duration::from_secs(20), || last(&lab, "2")["result"]
            == "passed"),
        "no background pass of 2 in status: {}\n{}",
        lab.status(),
        lab.connectd_log()
    );
    let age = last(&lab, "2")["secs_ago"].as_u64().expect("secs_ago");
    assert!(age < 60, "the pass of 2 is {age} s old");
    assert!(
        last(&lab, "1").is_null(),
        "the active primary is not pre-tested: {}",
        last(&lab, "1")
    );
    let log = lab.connectd_log();
    assert!(
        log.contains("pre-test 1/1 of 2: Passed(\"DHCP offer of 198.51.100."),
        "a real DHCP offer from isp2:\n{log}"
    );

    lab.ok(&["fault", "isp1", "blackhole"]);
    let t = lab.wait_on("2", "isp2", Duration::from_secs(25));
    println!("failover took {t:?}");
    let log = lab.connectd_log();
    let decision = log
        .lines()
        .find(|l| l.contains("-> Switching(2)"))
        .expect("the failover's decision");
    assert!(
        decision.contains("2 passed its pre-test"),
        "the failover used a pass it had: {decision}"
    );
    assert!(
        !log.contains("Pretesting(2)"),
        "the failover did not wait for a pre-test:\n{log}"
    );
    lab.assert_consistent("2", "DHCP", "red1");
}

/// Issue 13: the PPPoE primary blackholed beyond its access concentrator (the AC answers,
/// the session comes up, nothing beyond the ISP router works). connectd proves it beside
/// the backup (its own pppd, unit 9, no default route, its own ip-up) and never switches
/// to it while it is dead; once restored it fails back within FAILBACK_DELAY (20 s) + the
/// vote window (10 s) + 10 s.
#[test]
fn e2e_failback_proof_never_switches_to_a_blackholed_primary() {
    let Some(mut lab) = supervised("e2e_failback_proof") else {
        return;
    };
    lab.ok(&["fault", "isp1", "blackhole"]);
    let t = lab.wait_on("2", "isp2", Duration::from_secs(25));
    println!("failover took {t:?}");
    let switches = lab.switch_count();
    let proofs_failed = |lab: &Lab| {
        lab.connectd_log()
            .matches("failback proof of 1 failed")
            .count()
    };
    // Two proofs fail (at ~20 s and ~50 s after the failover): the box stays on 2 the
    // whole time, RED's files and default route are the backup's while ppp9 is up beside.
    let start = Instant::now();
    let mut saw_session = false;
    while proofs_failed(&lab) < 2 {
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "two proofs did not fail within 90 s:\n{}",
            lab.connectd_log()
        );
        assert_eq!(lab.active_profile(), "2", "switched to a dead primary");
        assert_eq!(lab.switch_count(), switches, "no switch while 1 is dead");
        let links = lab.ok(&["shell", "fw", "ip", "-o", "link", "show"]);
        if links.contains("ppp9") {
            saw_session = true;
            let route = lab.ok(&["shell", "fw", "ip", "-4", "route", "show", "default"]);
            assert!(
                !route.contains("ppp9"),
                "the proof took the default route: {route}"
            );
            assert_eq!(
                lab.read("var/ipfire/red/iface"),
                "red1",
                "red/iface untouched"
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        saw_session,
        "no proof session (ppp9) was seen:\n{}",
        lab.connectd_log()
    );
    assert!(
        lab.connectd_log()
            .contains("probe rounds through it passed"),
        "{}",
        lab.connectd_log()
    );
    // Torn down after each failed proof: no ppp9, no proof pppd.
    assert!(wait_for(Duration::from_secs(5), || !lab
        .ok(&["shell", "fw", "ip", "-o", "link", "show"])
        .contains("ppp9")));
    let proof_pid = lab.root().join("var/run/ppp-connectd-proof.pid");
    // The teardown TERMs pppd and waits for it (KILL after 5 s): gone within that bound.
    assert!(
        wait_for(Duration::from_secs(7), || pid_in(&proof_pid)
            .is_none_or(|p| !alive(p))),
        "proof pppd left running:\n{}",
        lab.connectd_log()
    );
    assert_eq!(lab.carrier(), "isp2");

    // Restored right after a failed proof: the next proof (FAILBACK_DELAY later) passes.
    lab.ok(&["fault", "isp1", "clear"]);
    let t = lab.wait_on("1", "isp1", Duration::from_secs(60));
    println!("failback after the restore took {t:?}");
    assert!(
        t <= Duration::from_secs(20 + 10 + 10),
        "failback within FAILBACK_DELAY + window + 10 s, took {t:?}"
    );
    assert_eq!(
        lab.switch_count(),
        switches + 1,
        "one failback, nothing else"
    );
    lab.assert_consistent("1", "PPPOE", "red0");
    assert!(
        pid_in(&proof_pid).is_none_or(|p| !alive(p)),
        "proof pppd left running after the failback"
    );
    let links = lab.ok(&["shell", "fw", "ip", "-o", "link", "show"]);
    assert!(!links.contains("ppp9"), "{links}");
    let rules = lab.ok(&["shell", "fw", "ip", "-4", "rule", "show"]);
    assert!(
        !rules.contains("4713"),
        "the proof's policy rule is gone: {rules}"
    );
    for l in lab.connectd_log().lines().filter(|l| l.contains("proof")) {
        println!("  {l}");
    }
}

/// Issue 13, DHCP: the DHCP primary (profile 2, isp2 on red1) blackholed beyond its
/// router; connectd is on the LTE backup (3, wwan0) and proves 2 with a lease of its own on
/// red1 (no route, no hook, released at the end): never switched to while dead, back on it
/// within FAILBACK_DELAY + window + 15 s of the restore.
#[test]
fn e2e_failback_proof_of_a_dhcp_primary() {
    let test = "e2e_failback_proof_dhcp";
    if cannot_run().is_none() && !lab_pppoe_bin().exists() {
        println!(
            "skipped: {test}: {} is not built",
            lab_pppoe_bin().display()
        );
        return;
    }
    let Some(mut lab) = Lab::up_env(test, &[("LAB_PRIMARY", "dhcp")]) else {
        return;
    };
    lab.start_client();
    lab.start_connectd();
    lab.ok(&["red", "start"]);
    lab.wait_on("2", "isp2", Duration::from_secs(60));
    lab.ok(&["fault", "isp2", "blackhole"]);
    let t = lab.wait_on("3", "lte", Duration::from_secs(60));
    println!("{test}: failover to LTE took {t:?}");
    let switches = lab.switch_count();
    let failed = |lab: &Lab| {
        lab.connectd_log()
            .matches("failback proof of 2 failed")
            .count()
    };
    let start = Instant::now();
    while failed(&lab) < 1 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no failed proof within 60 s:\n{}",
            lab.connectd_log()
        );
        assert_eq!(lab.active_profile(), "3", "switched to a dead primary");
        assert_eq!(lab.switch_count(), switches);
        std::thread::sleep(Duration::from_millis(500));
    }
    // The failed proof is torn down (the lease released) right after its verdict.
    assert!(
        wait_for(Duration::from_secs(10), || lab
            .connectd_log()
            .contains("failback proof: released 198.51.100.")),
        "{}",
        lab.connectd_log()
    );
    let log = lab.connectd_log();
    assert!(
        log.contains("failback proof: lease of 198.51.100."),
        "{log}"
    );
    assert_eq!(
        lab.read("var/ipfire/red/iface"),
        "wwan0",
        "red/iface untouched"
    );
    let addrs = lab.ok(&[
        "shell", "fw", "ip", "-4", "-o", "addr", "show", "dev", "red1",
    ]);
    assert!(
        !addrs.contains("inet "),
        "the proof's address is gone: {addrs}"
    );
    assert_eq!(lab.carrier(), "lte");

    lab.ok(&["fault", "isp2", "clear"]);
    let t = lab.wait_on("2", "isp2", Duration::from_secs(60));
    println!("{test}: failback after the restore took {t:?}");
    // FAILBACK_DELAY + window + 10 s, and 5 s more for DHCP: the lab's dnsmasq ping-checks
    // an address for 3 s before it offers it (the proof's lease), and IPFire's dhcpcd
    // spends 5 s on its ARP probe at the switch (measured: 38 s in all).
    assert!(
        t <= Duration::from_secs(20 + 10 + 10 + 5),
        "failback within FAILBACK_DELAY + window + 15 s, took {t:?}"
    );
    assert_eq!(lab.switch_count(), switches + 1);
    lab.assert_consistent("2", "DHCP", "red1");
    for l in lab.connectd_log().lines().filter(|l| l.contains("proof")) {
        println!("  {l}");
    }
}

#[test]
fn e2e_flapping_primary_does_not_flap_the_box() {
    let Some(mut lab) = supervised("e2e_flapping") else {
        return;
    };
    let before = lab.switch_count();
    for fault in ["blackhole", "clear", "blackhole", "clear", "blackhole"] {
        lab.ok(&["fault", "isp1", fault]);
        std::thread::sleep(Duration::from_secs(10));
    }
    lab.wait_on("2", "isp2", Duration::from_secs(30));
    let switches = lab.switch_count() - before;
    assert!(
        switches <= 3,
        "{switches} switches while the primary flapped 5 times"
    );
}

#[test]
fn e2e_backup_dead_too_goes_to_tertiary() {
    let Some(mut lab) = supervised("e2e_tertiary") else {
        return;
    };
    lab.ok(&["fault", "isp1", "blackhole"]);
    lab.wait_on("2", "isp2", Duration::from_secs(25));
    lab.ok(&["fault", "isp2", "blackhole"]);
    let t = lab.wait_on("3", "lte", Duration::from_secs(40));
    println!("backup to tertiary took {t:?}");
    lab.assert_consistent("3", "PPPOE", "wwan0");
    // Nothing of the backup is left running: one DHCP client, on wwan0.
    let red1 = pid_in(&lab.root().join("var/run/dhcpcd-lab/red1/pid"));
    assert!(
        red1.map(|p| !alive(p)).unwrap_or(true),
        "dhcpcd on red1 left running"
    );
}

#[test]
fn e2e_link_down_reconnects_the_same_profile() {
    let Some(mut lab) = supervised("e2e_link_down") else {
        return;
    };
    lab.ok(&["fault", "isp1", "link-down"]);
    std::thread::sleep(Duration::from_secs(4));
    lab.ok(&["fault", "isp1", "clear"]);
    // A dropped link is redialled (MAXRETRIES=2, HOLDOFF=5) before the chain is walked;
    // either way the box must be back on the primary eventually.
    let t = lab.wait_on("1", "isp1", Duration::from_secs(60));
    println!("back on the primary after {t:?}");
    lab.assert_consistent("1", "PPPOE", "red0");
}

#[test]
fn e2e_disconnect_stops_without_failover() {
    let Some(mut lab) = supervised("e2e_disconnect") else {
        return;
    };
    std::fs::remove_file(lab.red("keepconnected")).expect("remove keepconnected");
    let exited = wait_for(Duration::from_secs(15), || {
        matches!(
            lab.connectd.as_mut().map(|c| c.try_wait()),
            Some(Ok(Some(_)))
        )
    });
    assert!(exited, "connectd exits when the user disconnects");
    std::thread::sleep(Duration::from_secs(3));
    assert!(!lab.red("active").exists(), "RED stays down");
    lab.assert_consistent("1", "PPPOE", "red0");
    assert!(
        lab.pids_in("fw").is_empty(),
        "no pppd/dhcpcd left: {:?}",
        lab.pids_in("fw")
    );
}

#[test]
fn e2e_sigterm_leaves_the_box_consistent() {
    let Some(mut lab) = supervised("e2e_sigterm") else {
        return;
    };
    lab.ok(&["fault", "isp1", "blackhole"]);
    lab.wait_on("2", "isp2", Duration::from_secs(25));
    let pid = lab.connectd.as_ref().map(|c| c.id()).expect("connectd");
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let exited = wait_for(Duration::from_secs(10), || {
        matches!(
            lab.connectd.as_mut().map(|c| c.try_wait()),
            Some(Ok(Some(_)))
        )
    });
    assert!(exited, "connectd exits on SIGTERM");
    lab.assert_consistent("2", "DHCP", "red1");
    assert!(
        lab.red("active").exists(),
        "SIGTERM means no redial, not hang up"
    );
}

/// VmRSS of a process in KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Random faults on every line for SOAK_SECS (default 120 s in CI; `tools/bench soak` runs
/// it for 30 minutes), the daemon's RSS sampled every 10 s. Afterwards, with every fault
/// cleared, the box must come back to the primary with its files consistent, and the RSS
/// must not have grown beyond the noise of the allocator.
#[test]
fn e2e_random_faults_soak() {
    let secs: u64 = std::env::var("SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(120);
    let Some(mut lab) = supervised("e2e_soak") else {
        return;
    };
    let pid = lab.connectd.as_ref().map(|c| c.id()).expect("connectd");
    // `ip netns exec` execs: the child is connectd itself.
    assert_eq!(
        std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default(),
        "connectd\n"
    );
    let mut seed = u64::from(std::process::id()) | 1;
    let mut rand = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let faults = ["blackhole", "link-down", "loss 30", "clear", "clear"];
    // The primary's line twice as often: it carries the traffic most of the time.
    let isps = ["isp1", "isp1", "isp2", "lte"];
    let start = Instant::now();
    let mut samples = vec![(0u64, rss_kib(pid).expect("rss"))];
    let mut next_sample = Duration::from_secs(10);
    let mut injected = 0;
    while start.elapsed() < Duration::from_secs(secs) {
        // The first fault always makes the box switch (a blackhole on the primary held
        // long enough to be detected and acted on); the rest are random.
        let (isp, f) = if injected == 0 {
            ("isp1", "blackhole")
        } else {
            (
                isps[rand(isps.len() as u64) as usize],
                faults[rand(faults.len() as u64) as usize],
            )
        };
        let mut args = vec!["fault", isp];
        args.extend(f.split(' '));
        if f != "clear" {
            // one fault at a time per line
            lab.ok(&["fault", isp, "clear"]);
        }
        lab.ok(&args);
        injected += 1;
        let pause = if injected == 1 {
            Duration::from_secs(15)
        } else {
            Duration::from_millis(3_000 + rand(12_000))
        };
        let until = start.elapsed() + pause;
        while start.elapsed() < until {
            if start.elapsed() >= next_sample {
                let r = rss_kib(pid)
                    .unwrap_or_else(|| panic!("connectd died:\n{}", lab.connectd_log()));
                samples.push((start.elapsed().as_secs(), r));
                next_sample += Duration::from_secs(10);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    for isp in ["isp1", "isp2", "lte"] {
        lab.ok(&["fault", isp, "clear"]);
    }
    // Back on the primary: after the (lab's 20 s) failback delay, doubled at most a few
    // times by rollbacks during the soak, capped at FAILBACK_DELAY_MAX=120 s.
    let t = lab.wait_on("1", "isp1", Duration::from_secs(200));
    lab.assert_consistent("1", "PPPOE", "red0");
    let first = samples[0].1;
    let last = rss_kib(pid).expect("rss");
    let peak = samples.iter().map(|s| s.1).max().unwrap_or(first).max(last);
    println!(
        "soak: {secs} s, {injected} faults, {} switches, back on the primary {t:?} after the \
         last fault; RSS {first} KiB at start, {last} KiB at the end, peak {peak} KiB; samples \
         (s, KiB): {samples:?}",
        lab.switch_count()
    );
    assert!(lab.switch_count() > 0, "the soak never made the box switch");
    // (The peak itself is a benchmark figure of the release build: BENCHMARKS.md.)
    assert!(
        last <= first + 1024,
        "RSS grew from {first} to {last} KiB: {samples:?}"
    );
}

/// FAILOVER_ENABLED=off: IPFire's connectd, end to end. The network script's own
/// `connectd start` supervises the dial and exits once online; when the line dies, pppd's
/// ip-down calls `connectd reconnect`, the redials are counted in keepconnected, and after
/// MAXRETRIES (2 in the lab) the profile's BACKUPPROFILE (2) takes over, after which no
/// connectd is left running.
#[test]
fn e2e_failover_off_behaves_like_ipfire_connectd() {
    let Some(mut lab) = Lab::up_with("e2e_failover_off", true) else {
        return;
    };
    let policy = lab.root().join("var/ipfire/connectd/settings");
    std::fs::write(&policy, "FAILOVER_ENABLED=off\n").expect("policy");
    lab.start_client();
    lab.ok(&["red", "start"]);
    assert!(
        wait_for(Duration::from_secs(15), || lab.red("active").exists()
            && lab.carrier() == "isp1"),
        "online on isp1"
    );
    let pidfile = lab.root().join("var/run/connectd.pid");
    let no_supervisor = |lab: &Lab| {
        let ours = pid_in(&pidfile).filter(|&p| alive(p));
        // A pid of ours that is alive and named connectd means it still supervises.
        !ours.is_some_and(|p| {
            std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default() == "connectd\n"
        }) && lab.red("active").exists()
    };
    assert!(
        wait_for(Duration::from_secs(10), || no_supervisor(&lab)),
        "connectd exits once online, as IPFire's does"
    );
    assert_eq!(lab.read("var/ipfire/red/keepconnected").trim(), "0");

    lab.ok(&["fault", "isp1", "link-down"]);
    assert!(
        wait_for(Duration::from_secs(90), || {
            lab.active_profile() == "2" && lab.carrier() == "isp2"
        }),
        "BACKUPPROFILE after MAXRETRIES; log: {}",
        std::fs::read_to_string(lab.root().join("var/log/lab/connectd-reconnect.log"))
            .unwrap_or_default()
    );
    assert!(
        wait_for(Duration::from_secs(10), || no_supervisor(&lab)),
        "connectd exits once online on the backup"
    );
    lab.assert_consistent("2", "DHCP", "red1");
    assert_eq!(lab.read("var/ipfire/red/keepconnected").trim(), "0");
}

// ---- tools/bench's figures and table (examples/bench-report.rs) ---------------------------

/// `target/debug/examples/bench-report`, built by `cargo build --examples` (tools/test).
fn bench_report_bin() -> PathBuf {
    lab_pppoe_bin().with_file_name("bench-report")
}

fn bench_report(args: &[&str]) -> Option<String> {
    let bin = bench_report_bin();
    if !bin.exists() {
        println!(
            "skipped: {} is not built (cargo build --examples)",
            bin.display()
        );
        return None;
    }
    let out = Command::new(&bin)
        .args(args)
        .output()
        .expect("bench-report");
    assert!(
        out.status.success(),
        "bench-report {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The figures of a fault run come from connectd's log (local `HH:MM:SS.mmm`) and the LAN
/// client's ping log (`[EPOCH]`), measured from the shell's `$EPOCHREALTIME` times.
#[test]
fn bench_report_takes_a_fault_runs_figures_from_the_logs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let t0: i64 = 1_764_000_000;
    let tod = |secs: f64| {
        use chrono::TimeZone;
        let whole = secs.floor() as i64;
        let ms = ((secs - secs.floor()) * 1000.0).round() as u32;
        let t = chrono::Local
            .timestamp_opt(t0 + whole, 0)
            .single()
            .expect("local time");
        format!("{}.{ms:03}", t.format("%H:%M:%S"))
    };
    // fault at +10.0, the decision at +13.5, a failover at +14.0, restore at +40.0, online
    // on the primary at +52.25, end at +60.0
    let log = [
        (
            5.0,
            "connectd[7] info: uplink 1 on ppp0 is down: before the fault",
        ),
        (
            13.5,
            "connectd[7] info: uplink 1 on ppp0 is down: 3 failed rounds",
        ),
        (
            14.0,
            "connectd[7] warn: switching to profile 2 (failover): down",
        ),
        (52.25, "connectd[7] info: now online on profile 1 (was 2)"),
    ]
    .iter()
    .map(|(t, m)| format!("{} {m}\n", tod(*t)))
    .collect::<String>();
    // replies every 0.1 s except from +12.0 to +20.0 and from +45.0 to +47.0
    let ping = (0..600)
        .map(|i| f64::from(i) / 10.0)
        .filter(|t| !(12.0..20.0).contains(t) && !(45.0..47.0).contains(t))
        .map(|t| {
            format!(
                "[{:.6}] 64 bytes from 203.0.113.1: icmp_seq=1\n",
                t0 as f64 + t
            )
        })
        .collect::<String>();
    std::fs::write(dir.path().join("connectd.log"), log).expect("log");
    std::fs::write(dir.path().join("ping.log"), ping).expect("ping");
    let at = |s: f64| format!("{:.6}", t0 as f64 + s);
    let (log, ping) = (dir.path().join("connectd.log"), dir.path().join("ping.log"));
    let Some(out) = bench_report(&[
        "fault",
        "blackhole",
        log.to_str().expect("utf-8"),
        ping.to_str().expect("utf-8"),
        &at(10.0),
        &at(40.0),
        &at(59.95),
    ]) else {
        return;
    };
    let figures: Vec<&str> = out.lines().collect();
    assert_eq!(
        figures,
        [
            "blackhole\tdetect_s\t3.500",
            "blackhole\toutage_fault_s\t8.00",
            "blackhole\toutage_restore_s\t2.00",
            "blackhole\tfailed_over\t1",
            "blackhole\tfailback_log_s\t12.250",
            // The decomposition (BENCHMARKS.md): the verdict at +13.5, the switch at
            // +14.0; this log has no phase lines after it, so those are unknown.
            "blackhole\tpretest_s\t0.500",
            "blackhole\tstop_s\tNaN",
            "blackhole\tbringup_s\tNaN",
            "blackhole\tfirst_round_s\tNaN",
            "blackhole\tfb_stop_s\tNaN",
            "blackhole\tfb_bringup_s\tNaN",
            "blackhole\tfb_first_round_s\tNaN",
            "blackhole\tfailbacks_while_dead\t0",
            "blackhole\toutage_failover_s\tNaN",
            // 8 s during the fault + 2 s after the restore.
            "blackhole\toutage_story_s\t10.00",
            "# switch failover to 2 at +4.0 s: pre-test 0.50 s, stop ?, bring-up ?, first round ?",
        ],
        "{out}"
    );
}

/// The table: medians (of two values for an even count), the spread, NaN left out, the
/// verdicts against the targets, the peak RSS line.
#[test]
fn bench_report_renders_the_table_from_raw_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let results = "blackhole\tdetect_s\t4.5\nblackhole\tdetect_s\t3.0\nblackhole\tdetect_s\tNaN\n\
                   blackhole\tdetect_s\t3.5\nblackhole\tdetect_s\t3.25\n\
                   blackhole\trss_kib\t3308\nsteady\trss_kib\t2988\nsteady\tswitches\t0\n\
                   flap\tmax_failovers_per_window\t2\n";
    std::fs::write(dir.path().join("results.tsv"), results).expect("results");
    std::fs::write(dir.path().join("meta"), "FAILBACK_DELAY=45\n").expect("meta");
    let Some(table) = bench_report(&["table", dir.path().to_str().expect("utf-8")]) else {
        return;
    };
    let expected = "\
| scenario | figure | median | min – max | runs | target | result |
|---|---|---|---|---|---|---|
| blackhole | detect: fault → decision (`is down`/`link lost`) | 3.375 s | 3 – 4.5 | 4 | median < 4 s | met |
| blackhole | daemon peak RSS (VmHWM) | 3308 KiB | (one run) | 1 | - | - |
| flap | most failovers in any 45 s window | 2 | (one run) | 1 | <= 1 | **missed** (max 2 vs <= 1) |
| steady | switches (false failovers) | 0 | (one run) | 1 | 0 | met |
| steady | daemon peak RSS (VmHWM) | 2988 KiB | (one run) | 1 | ≤ 4 MiB | met |

Peak RSS over every run: 3308 KiB.
";
    assert_eq!(table, expected);
}
