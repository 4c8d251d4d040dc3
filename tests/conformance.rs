//! The conformance suite of issue 12: connectd as a drop-in on every RED type. For each
//! primary type (PPPoE, DHCP, STATIC, QMI) one lab box runs the stories IPFire's callers
//! tell (boot, the WUI's Connect/Disconnect through `redctrl`, an administrator's `network
//! stop red`, the connection scheduler, pppsetup's Select, the line dropping, shutdown,
//! failover off, a Disconnect in the middle of a failover), each with the outcome DESIGN.md
//! 1.1 promises written next to it: the administrator's intent wins, a deliberate stop is
//! never undone, supervision resumes on the next Connect, the primary follows the
//! administrator's selection, nothing is left half-switched.
//!
//! The four boxes run in parallel (own LAB_PREFIX and LAB_DIR each); the stories of one
//! box run in order and their outcomes are collected, then the whole matrix is printed and
//! checked against [`EXPECTED_TO_FAIL`]: the cells that fail today (none), each with the
//! issue that fixes it. A cell outside that list that fails, or a listed cell that passes,
//! fails the test, so the list only shrinks and never goes stale. A failing box's logs
//! (connectd's own lines included) are kept in `$TMPDIR/connectd-conformance-PID-TYPE`.
//!
//! Root only (namespaces); without root or the lab's tools it prints `skipped: <reason>`.
//! `tools/test` runs it as a step of its own, after the other tests, so that the other
//! tests' load does not skew its timers.
//! `CONFORMANCE_TYPES=pppoe,dhcp` runs a subset (the list check then covers those columns).
//! The lab's timers are shortened: policy keys as in `tools/lab up` (probes every 1 s, 3
//! failures, FAILOVER_CONNECT_TIMEOUT=20, FAILBACK_DELAY=20), dhcpcd's timeout and STATIC's
//! carrier wait 10 s (`LAB_DHCP_TIMEOUT`, `LAB_CARRIER_WAIT`). Every wait polls a condition
//! against a deadline; "stays down" holds for [`HOLD`], longer than detection (3 s) plus a
//! bring-up would take.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::lab::{Lab, alive, cannot_run, lab_pppoe_bin, pid_in};

/// How long a deliberate stop must hold (no red/active, no pppd or dhcpcd of RED).
const HOLD: Duration = Duration::from_secs(10);

/// A cell that fails today: the type, the story, and the issue that fixes it.
struct Known {
    ty: &'static str,
    story: &'static str,
    issue: &'static str,
}

/// The cells that fail today, each with the issue that fixes it. Empty: every cell of
/// every type passes (issue 12). A cell listed here that passes fails the test, so the
/// list never goes stale.
const EXPECTED_TO_FAIL: &[Known] = &[];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Ty {
    Pppoe,
    Dhcp,
    Static,
    Qmi,
}

/// One primary type: its box and what its lines are.
struct Kind {
    ty: Ty,
    name: &'static str,
    /// `LAB_PRIMARY` of `tools/lab up`.
    lab: &'static str,
    primary: &'static str,
    isp: &'static str,
    /// The first profile of the chain and the ISP behind it.
    backup: &'static str,
    backup_isp: &'static str,
}

const KINDS: [Kind; 4] = [
    Kind {
        ty: Ty::Pppoe,
        name: "PPPoE",
        lab: "pppoe",
        primary: "1",
        isp: "isp1",
        backup: "2",
        backup_isp: "isp2",
    },
    Kind {
        ty: Ty::Dhcp,
        name: "DHCP",
        lab: "dhcp",
        primary: "2",
        isp: "isp2",
        backup: "3",
        backup_isp: "lte",
    },
    Kind {
        ty: Ty::Static,
        name: "STATIC",
        lab: "static",
        primary: "fibre",
        isp: "isp1",
        backup: "2",
        backup_isp: "isp2",
    },
    Kind {
        ty: Ty::Qmi,
        name: "QMI",
        lab: "qmi",
        primary: "3",
        isp: "lte",
        backup: "2",
        backup_isp: "isp2",
    },
];

/// The stories, in the order one box plays them. `off:` stories run with
/// FAILOVER_ENABLED=off (IPFire's own connectd behaviour).
const STORIES: &[&str] = &[
    "boot, primary up",
    "boot, primary dead",
    "WUI Disconnect, Connect",
    "redctrl restart",
    "admin network stop red",
    "connscheduler hangup",
    "connscheduler dial",
    "connscheduler reconnect",
    "connscheduler profile 4",
    "pppsetup Select, online",
    "pppsetup Select, on backup",
    "index.cgi dial profile 4",
    "primary line drops",
    "primary lease NAKed",
    "shutdown (runlevel 0)",
    "Disconnect during failover",
    "off: boot, primary up",
    "off: WUI Disconnect, Connect",
    "off: admin network stop red",
    "off: hangup, dial",
    "off: connscheduler profile 4",
    "off: primary line drops",
    "off: shutdown (runlevel 0)",
];

type Outcome = Result<(), String>;

/// Whether STORY can be told on a box of type TY: a lease is NAKed only where dhcpcd
/// serves the primary (DHCP, QMI's wwan0).
fn applies(story: &str, ty: Ty) -> bool {
    story != "primary lease NAKed" || matches!(ty, Ty::Dhcp | Ty::Qmi)
}

/// One lab box of one primary type, and the story helpers.
struct BoxUnderTest {
    lab: Lab,
    k: &'static Kind,
    /// ethernet/settings, connectd/settings and secrets as `tools/lab up` wrote them.
    pristine: Vec<(String, Vec<u8>)>,
    failover: bool,
    fault: Option<(&'static str, &'static str)>,
    /// The box must boot afresh before the next story.
    dirty: bool,
}

fn fail<T>(msg: impl Into<String>) -> Result<T, String> {
    Err(msg.into())
}

impl BoxUnderTest {
    fn up(k: &'static Kind) -> Option<BoxUnderTest> {
        let mut lab = Lab::up_env(
            &format!("conformance {}", k.name),
            &[
                ("LAB_PRIMARY", k.lab),
                ("LAB_DHCP_TIMEOUT", "10"),
                ("LAB_CARRIER_WAIT", "10"),
            ],
        )?;
        lab.start_client();
        let mut pristine = Vec::new();
        for rel in [
            "var/ipfire/ethernet/settings",
            "var/ipfire/connectd/settings",
            "var/ipfire/ppp/secrets",
            // index.cgi's dial profile rewrites it.
            "var/ipfire/ppp/settings-4",
        ] {
            pristine.push((
                rel.to_string(),
                fs::read(lab.root().join(rel)).unwrap_or_default(),
            ));
        }
        Some(BoxUnderTest {
            lab,
            k,
            pristine,
            failover: true,
            fault: None,
            dirty: false,
        })
    }

    fn root(&self) -> std::path::PathBuf {
        self.lab.root()
    }

    fn lab(&self, args: &[&str]) -> String {
        let o = self.lab.run(args);
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    fn active(&self) -> bool {
        self.lab.red("active").exists()
    }

    /// The profile `ppp/settings` is a hard link to (None: no link to any profile).
    fn selected(&self) -> Option<String> {
        use std::os::unix::fs::MetadataExt;
        let ppp = self.root().join("var/ipfire/ppp");
        let s = fs::metadata(ppp.join("settings")).ok()?;
        for e in fs::read_dir(&ppp).ok()?.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(p) = name.strip_prefix("settings-") {
                if e.metadata()
                    .is_ok_and(|m| m.ino() == s.ino() && m.dev() == s.dev())
                {
                    return Some(p.to_string());
                }
            }
        }
        None
    }

    /// PIDs of this box's connectd processes (comm connectd, our root on the command line).
    fn connectds(&self) -> Vec<u32> {
        let root = self.root();
        let root = root.to_string_lossy();
        let mut pids = Vec::new();
        for e in fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            if fs::read_to_string(e.path().join("comm")).unwrap_or_default() != "connectd\n" {
                continue;
            }
            let cmd = fs::read(e.path().join("cmdline")).unwrap_or_default();
            if cmd.split(|&b| b == 0).any(|a| a == root.as_bytes()) && alive(pid) {
                pids.push(pid);
            }
        }
        pids
    }

    /// A supervisor of this box runs (the PID in its pidfile, alive, named connectd).
    fn supervised(&self) -> bool {
        pid_in(&self.root().join("var/run/connectd.pid")).is_some_and(|p| {
            alive(p)
                && fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default() == "connectd\n"
        })
    }

    /// pppd or dhcpcd of RED still running.
    fn red_daemons(&self) -> Vec<String> {
        let mut v = Vec::new();
        let run = self.root().join("var/run");
        if let Some(p) = pid_in(&run.join("ppp-lab.pid")).filter(|&p| alive(p)) {
            v.push(format!("pppd {p}"));
        }
        for dev in ["red0", "red1", "wwan0"] {
            let f = run.join(format!("dhcpcd-lab/{dev}/pid"));
            if let Some(p) = pid_in(&f).filter(|&p| alive(p)) {
                v.push(format!("dhcpcd {p} on {dev}"));
            }
        }
        v
    }

    fn status_field(&self, key: &str) -> String {
        match &self.lab.status()[key] {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Null => "-".into(),
            other => other.to_string(),
        }
    }

    /// The files agree: `settings` links a profile whose TYPE is what RED_TYPE says and
    /// whose DEVICE (when it has one) is RED_DEV; secrets 0600.
    fn consistent(&self) -> Outcome {
        let Some(p) = self.selected() else {
            return fail("ppp/settings links no profile");
        };
        let prof = self.lab.read(&format!("var/ipfire/ppp/settings-{p}"));
        let key = |text: &str, k: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{k}=")))
                .map(|v| v.trim_matches('\'').to_string())
                .unwrap_or_default()
        };
        let eth = self.lab.read("var/ipfire/ethernet/settings");
        let want = match key(&prof, "TYPE").to_ascii_lowercase().as_str() {
            "dhcp" => "DHCP",
            "static" => "STATIC",
            _ => "PPPOE",
        };
        let (rt, rd) = (key(&eth, "RED_TYPE"), key(&eth, "RED_DEV"));
        if rt != want {
            return fail(format!(
                "half-switched: settings-{p} is {want}, RED_TYPE={rt}"
            ));
        }
        let dev = key(&prof, "DEVICE");
        if !dev.is_empty() && dev != rd {
            return fail(format!(
                "half-switched: settings-{p} on {dev}, RED_DEV={rd}"
            ));
        }
        let mode = fs::metadata(self.root().join("var/ipfire/ppp/secrets"))
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or(0);
        if mode != 0o600 {
            return fail(format!("secrets mode {mode:o}"));
        }
        Ok(())
    }

    /// Online on PROFILE: red/active, settings links it, the LAN's traffic flows via ISP.
    fn online_on(&self, profile: &str, isp: &str) -> bool {
        self.active() && self.selected().as_deref() == Some(profile) && self.lab.carrier() == isp
    }

    fn describe(&self) -> String {
        format!(
            "red/active {}, settings -> {}, traffic via {}, connectd {}",
            if self.active() { "yes" } else { "no" },
            self.selected().unwrap_or_else(|| "?".into()),
            self.lab.carrier(),
            if self.supervised() {
                format!(
                    "supervising (active {})",
                    self.status_field("active_profile")
                )
            } else {
                "not running".into()
            }
        )
    }

    fn wait_online(&self, profile: &str, isp: &str, secs: u64) -> Outcome {
        if poll(secs, || self.online_on(profile, isp)) {
            Ok(())
        } else {
            fail(format!(
                "not online on {profile} via {isp} within {secs} s — {}",
                self.describe()
            ))
        }
    }

    fn wait_supervised(&self, secs: u64) -> Outcome {
        if poll(secs, || self.supervised()) {
            Ok(())
        } else {
            fail(format!(
                "no supervisor within {secs} s — {}",
                self.describe()
            ))
        }
    }

    /// Down within 20 s and held down for HOLD: no red/active, no pppd/dhcpcd of RED.
    fn stays_down(&self, what: &str) -> Outcome {
        if !poll(20, || !self.active() && self.red_daemons().is_empty()) {
            return fail(format!(
                "{what}: RED not down within 20 s — {:?}, {}",
                self.red_daemons(),
                self.describe()
            ));
        }
        let start = Instant::now();
        while start.elapsed() < HOLD {
            if self.active() || !self.red_daemons().is_empty() {
                return fail(format!(
                    "{what} undone after {:.0?} — {:?}, {}",
                    start.elapsed(),
                    self.red_daemons(),
                    self.describe()
                ));
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        Ok(())
    }

    /// Stays on PROFILE for SECS (no fail back to a profile the admin left, no failover).
    fn stays_on(&self, profile: &str, isp: &str, secs: u64) -> Outcome {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(secs) {
            if !self.online_on(profile, isp) {
                return fail(format!(
                    "left {profile} after {:.0?} — {}",
                    start.elapsed(),
                    self.describe()
                ));
            }
        }
        Ok(())
    }

    fn primary_is(&self, p: &str) -> Outcome {
        let got = self.status_field("primary_profile");
        if got == p {
            Ok(())
        } else {
            fail(format!(
                "connectd's primary is {got}, the admin selected {p}"
            ))
        }
    }

    fn set_fault(&mut self, isp: &'static str, f: &'static str) {
        self.lab(&["fault", isp, f]);
        self.fault = Some((isp, f));
    }

    fn clear_fault(&mut self) {
        if let Some((isp, _)) = self.fault.take() {
            self.lab(&["fault", isp, "clear"]);
        }
    }

    /// Everything stopped, the box's files as `tools/lab up` wrote them (FAILOVER_ENABLED
    /// as FAILOVER says), connectd's state gone, no fault; then the boot of the box
    /// (rc3.d: S20network start, S21connectd start), with FAULT on the primary's ISP.
    fn boot(&mut self, failover: bool, fault: Option<&'static str>) {
        for p in self.connectds() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(p as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        if !poll(5, || self.connectds().is_empty()) {
            for p in self.connectds() {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(p as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        let _ = fs::remove_file(self.lab.red("keepconnected"));
        self.lab(&["red", "stop"]);
        // Whatever still runs in the box (a network script a killed supervisor started,
        // its pppd or dhcpcd) belongs to the previous story: stopped by PID.
        for sig in [
            nix::sys::signal::Signal::SIGTERM,
            nix::sys::signal::Signal::SIGKILL,
        ] {
            for p in self.lab.pids_in("fw") {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p as i32), sig);
            }
            if poll(3, || self.lab.pids_in("fw").is_empty()) {
                break;
            }
        }
        // Whatever the files described, nothing of RED may survive the reset.
        let run = self.root().join("var/run");
        for f in [
            "ppp-lab.pid",
            "dhcpcd-lab/red0/pid",
            "dhcpcd-lab/red1/pid",
            "dhcpcd-lab/wwan0/pid",
        ] {
            if let Some(p) = pid_in(&run.join(f)).filter(|&p| alive(p)) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(-(p as i32)),
                    nix::sys::signal::Signal::SIGTERM,
                );
                poll(5, || !alive(p));
                let _ = fs::remove_file(run.join(f));
            }
        }
        for dev in ["red0", "red1", "wwan0"] {
            self.lab(&["shell", "fw", "ip", "addr", "flush", "dev", dev]);
        }
        self.lab(&["shell", "fw", "ip", "-4", "route", "flush", "exact", "0/0"]);
        self.lab(&["shell", "fw", "ip", "link", "del", "ppp0"]);
        self.clear_fault();
        for isp in ["isp1", "isp2", "lte"] {
            self.lab(&["fault", isp, "clear"]);
        }
        let root = self.root();
        for (rel, data) in &self.pristine {
            let mut data = data.clone();
            if rel.ends_with("connectd/settings") && !failover {
                data = String::from_utf8_lossy(&data)
                    .replace("FAILOVER_ENABLED=on", "FAILOVER_ENABLED=off")
                    .into_bytes();
            }
            fs::write(root.join(rel), data).expect("restore");
        }
        fs::set_permissions(
            root.join("var/ipfire/ppp/secrets"),
            fs::Permissions::from_mode(0o600),
        )
        .expect("secrets mode");
        let ppp = root.join("var/ipfire/ppp");
        let _ = fs::remove_file(ppp.join("settings"));
        fs::hard_link(
            ppp.join(format!("settings-{}", self.k.primary)),
            ppp.join("settings"),
        )
        .expect("link settings");
        for rel in [
            "var/ipfire/connectd/state",
            "var/ipfire/connectd/history",
            "var/ipfire/red/current-profile",
            "var/ipfire/red/failover-time",
        ] {
            let _ = fs::remove_file(root.join(rel));
        }
        fs::write(self.lab.red("keepconnected"), "0\n").expect("keepconnected");
        self.failover = failover;
        self.dirty = false;
        if let Some(f) = fault {
            self.set_fault(self.k.isp, f);
        }
        self.lab(&["boot"]);
    }

    /// The box online on its primary (and supervised when failover is on), from a fresh
    /// boot unless it already is.
    fn ensure(&mut self, failover: bool) -> Outcome {
        let good = self.failover == failover
            && self.fault.is_none()
            && !self.dirty
            && self.online_on(self.k.primary, self.k.isp)
            && (!failover
                || (self.supervised() && self.status_field("primary_profile") == self.k.primary));
        if !good {
            self.boot(failover, None);
            self.wait_online(self.k.primary, self.k.isp, 60)
                .map_err(|e| format!("precondition: {e}"))?;
            if failover {
                self.wait_supervised(10)
                    .map_err(|e| format!("precondition: {e}"))?;
            }
        }
        Ok(())
    }

    /// pppsetup.cgi's Select (pppsetup.cgi:233-254): `settings` unlinked and linked to
    /// settings-N, the profile rewritten in place, secrets rewritten. The WUI refuses it
    /// while red/active exists (pppsetup.cgi:56-62).
    fn wui_select(&self, n: &str) -> Outcome {
        if self.active() {
            return fail("the WUI refuses Select while RED is active");
        }
        let ppp = self.root().join("var/ipfire/ppp");
        let _ = fs::remove_file(ppp.join("settings"));
        fs::hard_link(ppp.join(format!("settings-{n}")), ppp.join("settings"))
            .map_err(|e| e.to_string())?;
        let text = fs::read(ppp.join(format!("settings-{n}"))).map_err(|e| e.to_string())?;
        fs::write(ppp.join(format!("settings-{n}")), text).map_err(|e| e.to_string())?;
        let prof = String::from_utf8_lossy(&fs::read(ppp.join("settings")).unwrap_or_default())
            .into_owned();
        let user = prof
            .lines()
            .find_map(|l| l.strip_prefix("USERNAME="))
            .unwrap_or("");
        let pass = prof
            .lines()
            .find_map(|l| l.strip_prefix("PASSWORD="))
            .unwrap_or("");
        fs::write(ppp.join("secrets"), format!("'{user}' * '{pass}'\n"))
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    /// index.cgi's "dial profile" N (index.cgi:78-114), without the Dial: `settings`
    /// unlinked and linked to settings-N, `ppp/updatesettings` touched, the profile
    /// rewritten with PROFILE=N and BACKUPPROFILE=N, secrets written for it.
    fn wui_dial_profile(&self, n: &str) -> Outcome {
        let ppp = self.root().join("var/ipfire/ppp");
        let _ = fs::remove_file(ppp.join("settings"));
        fs::hard_link(ppp.join(format!("settings-{n}")), ppp.join("settings"))
            .map_err(|e| e.to_string())?;
        fs::write(ppp.join("updatesettings"), "").map_err(|e| e.to_string())?;
        let text = fs::read_to_string(ppp.join("settings")).map_err(|e| e.to_string())?;
        let mut lines: Vec<String> = text
            .lines()
            .filter(|l| !l.starts_with("PROFILE=") && !l.starts_with("BACKUPPROFILE="))
            .map(String::from)
            .collect();
        lines.push(format!("PROFILE={n}"));
        lines.push(format!("BACKUPPROFILE={n}"));
        // writehash rewrites the file in place (the link to `settings` stays).
        fs::write(ppp.join(format!("settings-{n}")), lines.join("\n") + "\n")
            .map_err(|e| e.to_string())?;
        let key = |k: &str| {
            lines
                .iter()
                .find_map(|l| l.strip_prefix(&format!("{k}=")))
                .unwrap_or("")
                .to_string()
        };
        fs::write(
            ppp.join("secrets"),
            format!("'{}' * '{}'\n", key("USERNAME"), key("PASSWORD")),
        )
        .map_err(|e| e.to_string())?;
        fs::set_permissions(ppp.join("secrets"), fs::Permissions::from_mode(0o600))
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    /// Waits until connectd begins to bring up a backup (failover.d's pre-up event, logged
    /// by the lab's hook) after events.log had LINES lines.
    fn wait_failover_begins(&self, lines: usize, secs: u64) -> Outcome {
        let log = self.root().join("var/log/lab/events.log");
        let begun = || {
            fs::read_to_string(&log)
                .unwrap_or_default()
                .lines()
                .skip(lines)
                .any(|l| l.contains(" pre-up ") || l.contains(" failover "))
        };
        if poll_fast(secs, begun) {
            Ok(())
        } else {
            fail(format!(
                "no failover began within {secs} s — {}",
                self.describe()
            ))
        }
    }

    fn events(&self) -> usize {
        fs::read_to_string(self.root().join("var/log/lab/events.log"))
            .unwrap_or_default()
            .lines()
            .count()
    }

    // ---- the stories ---------------------------------------------------------------------

    fn play(&mut self, story: &str) -> Outcome {
        let k = self.k;
        match story {
            // Boot (rc3.d S20network, S21connectd): online on the primary, supervised.
            "boot, primary up" => {
                self.boot(true, None);
                self.wait_online(k.primary, k.isp, 60)?;
                self.wait_supervised(10)?;
                self.consistent()
            }
            // The primary's line is dead at boot: supervision starts anyway (the boot link)
            // and the box fails over to the first backup.
            "boot, primary dead" => {
                self.boot(true, Some("link-down"));
                let r = self
                    .wait_online(k.backup, k.backup_isp, 150)
                    .and_then(|_| self.wait_supervised(5))
                    .and_then(|_| self.consistent());
                self.clear_fault();
                r
            }
            // WUI Disconnect (redctrl stop): RED stays down, never undone. Connect
            // (redctrl start): online on the primary, supervision resumes.
            "WUI Disconnect, Connect" => {
                self.ensure(true)?;
                self.lab(&["redctrl", "stop"]);
                self.stays_down("Disconnect")?;
                self.consistent()?;
                self.lab(&["redctrl", "start"]);
                self.wait_online(k.primary, k.isp, 60)?;
                self.wait_supervised(15)?;
                self.stays_on(k.primary, k.isp, 5)
            }
            // mac.cgi's redctrl restart: back online on the same primary, supervised.
            "redctrl restart" => {
                self.ensure(true)?;
                self.lab(&["redctrl", "restart"]);
                self.wait_online(k.primary, k.isp, 60)?;
                self.wait_supervised(15)?;
                self.stays_on(k.primary, k.isp, 8)?;
                self.consistent()
            }
            // An administrator's `network stop red` holds; `network start red` resumes.
            "admin network stop red" => {
                self.ensure(true)?;
                self.lab(&["red", "stop"]);
                self.stays_down("network stop red")?;
                self.lab(&["red", "start"]);
                self.wait_online(k.primary, k.isp, 60)?;
                self.wait_supervised(15)
            }
            // connscheduler hangup (killall connectd, network stop red): stays down.
            "connscheduler hangup" => {
                self.ensure(true)?;
                self.lab(&["connscheduler", "hangup"]);
                self.stays_down("hangup")?;
                self.consistent()
            }
            // connscheduler dial (network start red): online, supervision resumes.
            "connscheduler dial" => {
                self.lab(&["connscheduler", "dial"]);
                self.wait_online(k.primary, k.isp, 60)?;
                self.wait_supervised(15)?;
                self.stays_on(k.primary, k.isp, 5)
            }
            // connscheduler reconnect: hangup then dial; online and supervised after.
            "connscheduler reconnect" => {
                self.ensure(true)?;
                self.lab(&["connscheduler", "reconnect"]);
                self.wait_online(k.primary, k.isp, 60)?;
                self.wait_supervised(15)?;
                self.stays_on(k.primary, k.isp, 5)
            }
            // connscheduler profile 4 while connected: relink, restart RED; profile 4 is
            // the primary from now on (no "fail back" to the profile the admin left).
            "connscheduler profile 4" => {
                self.ensure(true)?;
                self.lab(&["connscheduler", "profile", "4"]);
                self.wait_online("4", k.isp, 60)?;
                self.wait_supervised(15)?;
                self.primary_is("4")?;
                self.stays_on("4", k.isp, 10)?;
                self.consistent()
            }
            // pppsetup Select while online: Disconnect (the WUI refuses Select while RED is
            // up), Select 4, Connect: online on 4, which is the primary now.
            "pppsetup Select, online" => {
                self.ensure(true)?;
                self.lab(&["redctrl", "stop"]);
                if !poll(20, || !self.active()) {
                    return fail(format!(
                        "Disconnect did not take RED down — {}",
                        self.describe()
                    ));
                }
                // At a human's pace: the page reloads before Select (the supervisor has
                // reacted to the Disconnect by then, exiting or not).
                poll(5, || !self.supervised());
                self.wui_select("4")?;
                self.lab(&["redctrl", "start"]);
                self.wait_online("4", k.isp, 60)?;
                self.wait_supervised(15)?;
                self.primary_is("4")?;
                self.stays_on("4", k.isp, 10)?;
                self.consistent()
            }
            // On the backup (primary blackholed); the line is repaired and the admin
            // Disconnects, Selects 4 and Connects: online on 4 (the primary's line), which
            // is the primary now, files agreeing.
            "pppsetup Select, on backup" => {
                self.boot(true, None);
                self.wait_online(k.primary, k.isp, 60)
                    .map_err(|e| format!("precondition: {e}"))?;
                self.set_fault(k.isp, "blackhole");
                self.wait_online(k.backup, k.backup_isp, 90)
                    .map_err(|e| format!("precondition (failover): {e}"))?;
                self.clear_fault();
                self.lab(&["redctrl", "stop"]);
                if !poll(20, || !self.active()) {
                    return fail(format!(
                        "Disconnect did not take RED down — {}",
                        self.describe()
                    ));
                }
                // At a human's pace: the page reloads before Select (the supervisor has
                // reacted to the Disconnect by then, exiting or not).
                poll(5, || !self.supervised());
                self.wui_select("4")?;
                self.lab(&["redctrl", "start"]);
                self.wait_online("4", k.isp, 90)?;
                self.wait_supervised(15)?;
                self.primary_is("4")?;
                self.consistent()
            }
            // index.cgi's "dial profile" while disconnected (index.cgi:78-114): `settings`
            // linked to settings-4, that profile rewritten with PROFILE and BACKUPPROFILE
            // set to itself, secrets written, then Dial (redctrl start). Online on 4, which
            // is the primary now; its BACKUPPROFILE naming itself is no loop and no switch.
            "index.cgi dial profile 4" => {
                self.ensure(true)?;
                self.lab(&["redctrl", "stop"]);
                if !poll(20, || !self.active()) {
                    return fail(format!(
                        "Disconnect did not take RED down — {}",
                        self.describe()
                    ));
                }
                poll(5, || !self.supervised());
                self.wui_dial_profile("4")?;
                self.lab(&["redctrl", "start"]);
                self.wait_online("4", k.isp, 60)?;
                self.wait_supervised(15)?;
                self.primary_is("4")?;
                self.stays_on("4", k.isp, 10)?;
                self.consistent()
            }
            // The primary's lease is NAKed (the ISP's DHCP server forgot it and answers the
            // renewal with NAK; lab: the renewal is brought forward): dhcpcd.exe removes
            // red/active and runs red.down with reason NAK, then dhcpcd leases anew. A line
            // that died, not a Disconnect: the box is online again on the primary (a new
            // address), supervised, the files unchanged.
            "primary lease NAKed" => {
                self.ensure(true)?;
                let before = self.lab.read("var/ipfire/red/local-ipaddress");
                self.set_fault(k.isp, "dhcp-nak");
                let r = if !poll(20, || {
                    self.lab.read("var/ipfire/red/local-ipaddress") != before && self.active()
                }) {
                    fail(format!(
                        "no new lease within 20 s (had {before}) — {}",
                        self.describe()
                    ))
                } else {
                    self.wait_online(k.primary, k.isp, 30)
                        .and_then(|_| self.wait_supervised(5))
                        .and_then(|_| self.stays_on(k.primary, k.isp, 5))
                        .and_then(|_| self.consistent())
                };
                // The ISP's server as it was; the next story boots afresh (the new
                // address is outside the restored range).
                self.clear_fault();
                self.dirty = true;
                r
            }
            // The primary's line drops (carrier lost: pppd exits on PPPoE, dhcpcd sees
            // NOCARRIER, STATIC keeps its address): the box fails over, files agree.
            "primary line drops" => {
                self.ensure(true)?;
                self.set_fault(k.isp, "link-down");
                let r = self
                    .wait_online(k.backup, k.backup_isp, 120)
                    .and_then(|_| self.wait_supervised(5))
                    .and_then(|_| self.consistent());
                self.clear_fault();
                r
            }
            // Shutdown: K80network stop (runlevel 0) takes RED down for good.
            "shutdown (runlevel 0)" => {
                self.ensure(true)?;
                self.lab(&["shutdown"]);
                self.stays_down("shutdown")?;
                self.consistent()
            }
            // The primary is blackholed; the moment connectd begins to bring up the backup
            // the admin presses Disconnect: RED stays down, nothing half-switched; the next
            // Connect brings the box online and supervised again.
            "Disconnect during failover" => {
                self.ensure(true)?;
                let n = self.events();
                self.set_fault(k.isp, "blackhole");
                self.wait_failover_begins(n, 40)
                    .map_err(|e| format!("precondition: {e}"))?;
                self.lab(&["redctrl", "stop"]);
                // Judged once connectd has reacted (it exits on the Disconnect): a dhcpcd
                // its start was launching as the Disconnect ran can still appear for a
                // moment; connectd stops it again, and from then on RED stays down.
                if !poll(30, || !self.supervised()) {
                    let r = fail(format!(
                        "connectd still supervises 30 s after the Disconnect — {}",
                        self.describe()
                    ));
                    self.clear_fault();
                    return r;
                }
                let r = self.stays_down("Disconnect during failover");
                self.clear_fault();
                r?;
                self.consistent()?;
                self.lab(&["redctrl", "start"]);
                if !poll(60, || self.active() && self.lab.carrier() != "none") {
                    return fail(format!(
                        "Connect: not online within 60 s — {}",
                        self.describe()
                    ));
                }
                self.wait_supervised(15)?;
                self.consistent()
            }
            // ---- failover off: IPFire's own connectd behaviour --------------------------
            "off: boot, primary up" => {
                self.boot(false, None);
                self.wait_online(k.primary, k.isp, 60)?;
                // IPFire's connectd exits once online (system/connectd:64-67).
                if !poll(15, || !self.supervised()) {
                    return fail(format!(
                        "a supervisor stays with failover off — {}",
                        self.describe()
                    ));
                }
                self.consistent()
            }
            "off: WUI Disconnect, Connect" => {
                self.ensure(false)?;
                self.lab(&["redctrl", "stop"]);
                self.stays_down("Disconnect")?;
                self.lab(&["redctrl", "start"]);
                self.wait_online(k.primary, k.isp, 60)?;
                self.stays_on(k.primary, k.isp, 5)
            }
            "off: admin network stop red" => {
                self.ensure(false)?;
                self.lab(&["red", "stop"]);
                self.stays_down("network stop red")?;
                self.lab(&["red", "start"]);
                self.wait_online(k.primary, k.isp, 60)
            }
            "off: hangup, dial" => {
                self.ensure(false)?;
                self.lab(&["connscheduler", "hangup"]);
                self.stays_down("hangup")?;
                self.lab(&["connscheduler", "dial"]);
                self.wait_online(k.primary, k.isp, 60)?;
                self.stays_on(k.primary, k.isp, 5)
            }
            "off: connscheduler profile 4" => {
                self.ensure(false)?;
                self.lab(&["connscheduler", "profile", "4"]);
                self.wait_online("4", k.isp, 60)?;
                self.stays_on("4", k.isp, 10)?;
                self.consistent()
            }
            // With failover off only pppd types redial (ip-down -> connectd reconnect) and
            // move to the profile's BACKUPPROFILE after MAXRETRIES; DHCP, STATIC and QMI
            // have nothing that reacts: no switch, and back once the line is.
            "off: primary line drops" => {
                self.ensure(false)?;
                self.set_fault(k.isp, "link-down");
                if k.ty == Ty::Pppoe {
                    let r = self
                        .wait_online("2", "isp2", 120)
                        .and_then(|_| self.consistent());
                    self.clear_fault();
                    r
                } else {
                    std::thread::sleep(HOLD);
                    let r = if self.selected().as_deref() != Some(k.primary) {
                        fail(format!("switched with failover off — {}", self.describe()))
                    } else {
                        Ok(())
                    };
                    self.clear_fault();
                    r?;
                    self.wait_online(k.primary, k.isp, 60)
                }
            }
            "off: shutdown (runlevel 0)" => {
                self.ensure(false)?;
                self.lab(&["shutdown"]);
                self.stays_down("shutdown")?;
                self.consistent()
            }
            other => fail(format!("unknown story {other}")),
        }
    }
}

fn poll(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(secs) {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    cond()
}

fn poll_fast(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(secs) {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    cond()
}

/// One box's results: (story, outcome, seconds).
type Column = Vec<(&'static str, Outcome, f64)>;

/// Plays every story on one box of kind K.
fn run_kind(k: &'static Kind) -> Option<Column> {
    let mut b = BoxUnderTest::up(k)?;
    let mut out = Vec::new();
    // CONFORMANCE_STORIES=a;b plays only those (each story sets its box up itself),
    // CONFORMANCE_REPEAT=N each N times: to hunt a race in a few cells.
    let only = std::env::var("CONFORMANCE_STORIES").unwrap_or_default();
    let repeat: usize = std::env::var("CONFORMANCE_REPEAT")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    let stories = STORIES
        .iter()
        .copied()
        .filter(|s| only.is_empty() || only.split(';').any(|o| o.trim() == *s))
        .flat_map(|s| std::iter::repeat_n(s, repeat));
    for story in stories {
        if !applies(story, k.ty) {
            continue;
        }
        let t = Instant::now();
        let r = b.play(story);
        let secs = t.elapsed().as_secs_f64();
        println!(
            "conformance {} | {story}: {} ({secs:.0} s)",
            k.name,
            match &r {
                Ok(()) => "pass".to_string(),
                Err(e) => format!("FAIL: {e}"),
            }
        );
        out.push((story, r, secs));
    }
    // The box's logs for whoever reads a failure.
    let keep = std::env::temp_dir().join(format!(
        "connectd-conformance-{}-{}",
        std::process::id(),
        k.lab
    ));
    let _ = fs::remove_dir_all(&keep);
    let _ = fs::create_dir_all(&keep);
    let _ = std::process::Command::new("cp")
        .arg("-r")
        .arg(b.root().join("var/log/lab"))
        .arg(&keep)
        .status();
    if out.iter().any(|(_, r, _)| r.is_err()) {
        println!(
            "conformance {}: the box's logs (connectd.log, network.log, events.log) are in {}",
            k.name,
            keep.display()
        );
    }
    Some(out)
}

fn listed(ty: &str, story: &str) -> Option<&'static Known> {
    EXPECTED_TO_FAIL
        .iter()
        .find(|x| x.ty.eq_ignore_ascii_case(ty) && x.story == story)
}

/// The short reason of a failure for the table: the text before the details (" — ").
fn short(e: &str) -> String {
    let one = e.split(" — ").next().unwrap_or("");
    if one.chars().count() > 70 {
        format!("{}…", one.chars().take(70).collect::<String>())
    } else {
        one.to_string()
    }
}

#[test]
fn conformance_matrix_every_red_type_every_caller() {
    if let Some(why) = cannot_run() {
        println!("skipped: conformance: {why}");
        return;
    }
    if !lab_pppoe_bin().exists() {
        println!(
            "skipped: conformance: {} is not built",
            lab_pppoe_bin().display()
        );
        return;
    }
    let only = std::env::var("CONFORMANCE_TYPES").unwrap_or_default();
    let kinds: Vec<&'static Kind> = KINDS
        .iter()
        .filter(|k| only.is_empty() || only.split(',').any(|t| t.eq_ignore_ascii_case(k.lab)))
        .collect();
    let started = Instant::now();
    let results: Mutex<Vec<(&'static Kind, Column)>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for &k in &kinds {
            let results = &results;
            s.spawn(move || {
                if let Some(r) = run_kind(k) {
                    results.lock().expect("results").push((k, r));
                }
            });
        }
    });
    let mut results = results.into_inner().expect("results");
    results.sort_by_key(|(k, _)| KINDS.iter().position(|x| x.ty == k.ty));
    let total = started.elapsed();

    // The matrix: story x type.
    let mut table = String::from("\n| story |");
    for (k, _) in &results {
        table.push_str(&format!(" {} |", k.name));
    }
    table.push_str("\n|---|");
    for _ in &results {
        table.push_str("---|");
    }
    table.push('\n');
    for &story in STORIES {
        table.push_str(&format!("| {story} |"));
        for (k, rs) in &results {
            let item = listed(k.name, story)
                .map(|x| format!(" ({})", x.issue))
                .unwrap_or_default();
            // Played several times (CONFORMANCE_REPEAT): a failure shows.
            let mine = || rs.iter().filter(|(s, _, _)| *s == story);
            let cell = match mine()
                .find(|(_, r, _)| r.is_err())
                .or_else(|| mine().next())
            {
                Some((_, Ok(()), _)) => "pass".to_string(),
                Some((_, Err(e), _)) => format!("FAIL{item}: {}", short(e)),
                None if !applies(story, k.ty) => "n/a".into(),
                None => "-".into(),
            };
            table.push_str(&format!(" {cell} |"));
        }
        table.push('\n');
    }
    println!("{table}");
    println!("conformance: {} boxes in {total:.0?}", results.len());

    let mut wrong = Vec::new();
    for (k, rs) in &results {
        for (story, r, _) in rs {
            match (r, listed(k.name, story)) {
                (Err(e), None) => wrong.push(format!("{} | {story}: FAIL: {e}", k.name)),
                (Ok(()), Some(x)) => wrong.push(format!(
                    "{} | {story}: passes now: remove it from EXPECTED_TO_FAIL ({})",
                    k.name, x.issue
                )),
                _ => {}
            }
        }
    }
    assert!(wrong.is_empty(), "conformance:\n{}", wrong.join("\n"));
}
