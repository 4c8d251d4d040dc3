//! Non-disruptive pre-tests of resting profiles (DESIGN.md section 5): does the line of a
//! profile that is not active answer, without touching the active uplink?
//!
//! * pppoe, vdsl, pppoeatm: PPPoE discovery, PADI → PADO ([`pppoe`]);
//! * DHCP: one DISCOVER, never a REQUEST; an OFFER with a router passes ([`dhcp`]);
//! * STATIC: ARP who-has for the gateway ([`arp`]);
//! * QMI: the control device exists and `qmicli` reports the modem registered;
//! * a profile on the active uplink's device, or of a type without a test: `CannotTest`
//!   (the supervisor's trial switch with rollback is the test then).
//!
//! Everything but QMI runs on an AF_PACKET socket ([`packet`]): no address, route or process
//! is created, so nothing can be left behind.

pub mod arp;
pub mod dhcp;
pub mod packet;
pub mod pppoe;
#[cfg(any(test, feature = "test-util"))]
mod scripted;
mod seam;
pub mod worker;

use std::path::PathBuf;
use std::time::Duration;

use crate::error::Result;
use crate::ipfire::paths::Paths;
use crate::ipfire::policy::Policy;
use crate::ipfire::profile::{Kind, Profile, ProfileName};
use crate::sys::clock::{Clock, SystemClock};
use crate::sys::exec::{CommandSpec, Runner};

#[cfg(any(test, feature = "test-util"))]
pub use self::scripted::ScriptedPreTester;
pub use self::seam::{PreTester, PretestOutcome};
pub use self::worker::{Done, Job, PRETEST_DEADLINE, PretestWorker};

/// The real pre-tests.
pub struct RealPreTester {
    runner: Box<dyn Runner + Send>,
    /// Where interfaces' flags, carrier and modem are read (`/sys` under the root).
    sys_root: PathBuf,
    /// Where `cdc-wdm*` control devices are looked for (`/dev`).
    pub dev_root: PathBuf,
    /// PPPoE discovery deadline.
    pub pppoe_timeout: Duration,
    /// DHCP deadline (servers may ping-check an address before offering it).
    pub dhcp_timeout: Duration,
    /// ARP deadline.
    pub arp_timeout: Duration,
    /// `qmicli` deadline.
    pub qmi_timeout: Duration,
}

impl std::fmt::Debug for RealPreTester {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RealPreTester")
            .field("sys_root", &self.sys_root)
            .field("dev_root", &self.dev_root)
            .finish_non_exhaustive()
    }
}

impl RealPreTester {
    /// Pre-tests with `runner` for `qmicli` and `ip`, the `/sys` of the box under `paths`,
    /// `/dev` and the default deadlines.
    pub fn new(runner: Box<dyn Runner + Send>, paths: &Paths) -> RealPreTester {
        RealPreTester {
            runner,
            sys_root: paths.sys(),
            dev_root: PathBuf::from("/dev"),
            pppoe_timeout: Duration::from_secs(3),
            dhcp_timeout: Duration::from_secs(6),
            arp_timeout: Duration::from_secs(2),
            qmi_timeout: Duration::from_secs(10),
        }
    }

    fn qmi(&self, device: &str) -> PretestOutcome {
        // The modem's own control device (sysfs knows which cdc-wdm belongs to the wwan
        // interface), else the first one there is.
        let own = std::fs::read_dir(self.sys_net(device).join("device/usbmisc"))
            .ok()
            .and_then(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .find(|n| n.starts_with("cdc-wdm"))
            })
            .map(|n| self.dev_root.join(n))
            .filter(|p| p.exists());
        let mut ctl: Vec<PathBuf> = std::fs::read_dir(&self.dev_root)
            .map(|rd| {
                rd.flatten()
                    .filter(|e| e.file_name().to_string_lossy().starts_with("cdc-wdm"))
                    .map(|e| e.path())
                    .collect()
            })
            .unwrap_or_default();
        ctl.sort();
        let Some(dev) = own.or_else(|| ctl.into_iter().next()) else {
            // Nothing to ask: not a failure of the line, so the trial switch is the test.
            return PretestOutcome::CannotTest(format!(
                "no QMI control device ({}/cdc-wdm*) for {device}",
                self.dev_root.display()
            ));
        };
        let cmd = CommandSpec::new(
            [
                std::ffi::OsString::from("qmicli"),
                "-d".into(),
                dev.clone().into_os_string(),
                // Through qmi-proxy, as IPFire always talks to the modem
                // (functions.network:460,518,526): never fight its own session.
                "--device-open-proxy".into(),
                "--nas-get-serving-system".into(),
            ],
            self.qmi_timeout,
        );
        match self.runner.run(&cmd) {
            Err(e) => PretestOutcome::Failed(e.to_string()),
            Ok(o) if o.timed_out => PretestOutcome::Failed(format!(
                "qmicli on {} did not answer within {} s",
                dev.display(),
                self.qmi_timeout.as_secs()
            )),
            Ok(o) => {
                let state = o
                    .output
                    .lines()
                    .find_map(|l| l.trim().strip_prefix("Registration state:"))
                    .map(|s| s.trim().trim_matches('\'').to_string());
                match state.as_deref() {
                    Some("registered") if o.success() => {
                        PretestOutcome::Passed(format!("modem on {} is registered", dev.display()))
                    }
                    Some(s) => PretestOutcome::Failed(format!(
                        "modem on {} is not registered ({s})",
                        dev.display()
                    )),
                    None => PretestOutcome::Failed(format!(
                        "qmicli on {} reported no registration state (exit {:?}): {}",
                        dev.display(),
                        o.code,
                        o.output.lines().last().unwrap_or("").trim()
                    )),
                }
            }
        }
    }
}

impl RealPreTester {
    /// `class/net/DEVICE` under [`RealPreTester::sys_root`].
    fn sys_net(&self, device: &str) -> PathBuf {
        self.sys_root.join("class/net").join(device)
    }

    /// IPFire's `network stop red` sets the old RED NIC down, so a resting primary's NIC is
    /// usually down when its failback is pre-tested: bring it up (harmless, nothing is
    /// configured on it) and give the carrier a moment, bounded.
    fn ensure_up(&self, device: &str) {
        let flags = std::fs::read_to_string(self.sys_net(device).join("flags"))
            .ok()
            .and_then(|f| u32::from_str_radix(f.trim().trim_start_matches("0x"), 16).ok());
        let Some(flags) = flags else { return };
        if flags & 1 != 0 {
            return; // IFF_UP
        }
        log::info!("pre-test: bringing {device} up (IPFire's network stop left it down)");
        let spec = CommandSpec::new(
            ["ip", "link", "set", "dev", device, "up"],
            Duration::from_secs(5),
        );
        if let Err(e) = self.runner.run(&spec) {
            log::warn!("pre-test: cannot bring {device} up: {e}");
            return;
        }
        let clock = SystemClock;
        let start = clock.now();
        while clock.now().saturating_duration_since(start) < Duration::from_secs(3) {
            let carrier = std::fs::read_to_string(self.sys_net(device).join("carrier"));
            if carrier.map(|c| c.trim() == "1").unwrap_or(false) {
                return;
            }
            // Waiting for the line to negotiate its carrier, bounded.
            clock.sleep(Duration::from_millis(50));
        }
    }
}

impl PreTester for RealPreTester {
    fn pretest(
        &mut self,
        profile: &Profile,
        device: &str,
        active_device: Option<&str>,
    ) -> PretestOutcome {
        if active_device == Some(device) {
            return PretestOutcome::CannotTest(format!(
                "shares the device {device} with the active uplink; a trial switch is the test"
            ));
        }
        if profile.kind != Kind::Qmi {
            self.ensure_up(device);
        }
        let out = |r: std::result::Result<String, String>| match r {
            Ok(s) => PretestOutcome::Passed(s),
            Err(e) => PretestOutcome::Failed(e),
        };
        match profile.kind {
            Kind::Pppoe | Kind::Vdsl | Kind::Pppoeatm => out(pppoe::discover(
                device,
                profile.service_name.as_deref(),
                profile.concentrator_name.as_deref(),
                self.pppoe_timeout,
            )
            .map(|o| {
                format!(
                    "PADO from AC {:?} ({}) on {device}",
                    o.ac_name,
                    packet::fmt_mac(&o.ac_mac)
                )
            })),
            Kind::Dhcp => out(dhcp::pretest(device, self.dhcp_timeout).map(|o| {
                format!(
                    "DHCP offer of {} with router {} on {device}",
                    o.yiaddr,
                    o.router
                        .map(|r| r.to_string())
                        .unwrap_or_else(|| "?".into())
                )
            })),
            Kind::Static => match &profile.static_cfg {
                None => PretestOutcome::Failed("STATIC profile without GATEWAY".into()),
                Some(cfg) => out(
                    arp::pretest(device, Some(cfg.ip), cfg.gateway, self.arp_timeout).map(|mac| {
                        format!(
                            "gateway {} answered ARP from {mac} on {device}",
                            cfg.gateway
                        )
                    }),
                ),
            },
            Kind::Qmi => self.qmi(device),
            Kind::Pptp | Kind::Pptpatm | Kind::Modem | Kind::Serial => {
                PretestOutcome::CannotTest(format!(
                    "type {} has no pre-test; a trial switch is the test",
                    profile.kind.as_str()
                ))
            }
        }
    }
}

/// `RED_DEV` from `ethernet/settings`, if set.
fn box_red_dev(paths: &Paths) -> Option<String> {
    crate::ipfire::fsutil::read_settings(&paths.ethernet_settings())
        .ok()
        .and_then(|d| d.get("RED_DEV").map(|v| v.trim().to_string()))
        .filter(|v| crate::ipfire::profile::valid_device(v))
}

/// `manage-wan-profiles test NAME`: pre-tests a profile by name, running `qmicli` and `ip`
/// through `runner`. Its device is [`Profile::red_device`] (`DEVICE_<NAME>`, DEVICE, else
/// the box's RED_DEV); the active uplink's device is the box's RED_DEV (else `red/iface`).
pub(crate) fn test_profile(
    paths: &Paths,
    runner: Box<dyn Runner + Send>,
    name: &ProfileName,
) -> Result<PretestOutcome> {
    let profile = Profile::load(paths, name)?;
    let (policy, _) = Policy::load(paths, None)?;
    let red_dev = box_red_dev(paths);
    let Some(device) = profile.red_device(&policy, red_dev.as_deref()) else {
        return Ok(PretestOutcome::Failed(format!(
            "profile {name} names no DEVICE and {} has no RED_DEV",
            paths.ethernet_settings().display()
        )));
    };
    let device = device.to_string();
    let active = red_dev.or_else(|| crate::uplink::health::red_iface(paths));
    let mut tester = RealPreTester::new(runner, paths);
    Ok(tester.pretest(&profile, &device, active.as_deref()))
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests build fixtures with plain writes
mod tests {
    use super::*;
    use crate::ipfire::readhash::Document;
    use crate::sys::exec::{CmdOutcome, ProcessRunner};
    use std::path::Path;
    use std::sync::Arc;
    use std::sync::Mutex;

    fn profile(text: &str) -> Profile {
        Profile::from_doc(
            ProfileName::new("p").unwrap(),
            Document::parse(text),
            Path::new("settings-p"),
        )
        .unwrap()
    }

    struct FakeQmicli {
        output: String,
        argv: Arc<Mutex<Vec<String>>>,
    }
    impl Runner for FakeQmicli {
        fn run(&self, cmd: &CommandSpec) -> Result<CmdOutcome> {
            *self.argv.lock().unwrap() = cmd
                .argv
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect();
            Ok(CmdOutcome {
                code: Some(0),
                timed_out: false,
                output: self.output.clone(),
            })
        }
    }

    #[test]
    fn same_device_and_untestable_types_are_cannot_test() {
        let root = tempfile::tempdir().unwrap();
        let paths = Paths::new(root.path()).unwrap();
        let mut t = RealPreTester::new(Box::new(ProcessRunner), &paths);
        let p = profile("TYPE=pppoe\n");
        let o = t.pretest(&p, "red0", Some("red0"));
        assert!(
            matches!(&o, PretestOutcome::CannotTest(m) if m.contains("shares the device")),
            "{o:?}"
        );
        let o = t.pretest(&profile("TYPE=pptp\n"), "red1", Some("red0"));
        assert!(matches!(o, PretestOutcome::CannotTest(_)), "{o:?}");
        // A device that does not exist fails with its name.
        let o = t.pretest(&p, "cdh-nonexist0", None);
        assert!(
            matches!(&o, PretestOutcome::Failed(m) if m.contains("cdh-nonexist0")),
            "{o:?}"
        );
    }

    #[test]
    fn qmi_needs_a_control_device_and_registration() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::new(dir.path()).unwrap();
        let argv = Arc::new(Mutex::new(Vec::new()));
        let reg = "[/dev/cdc-wdm0] Successfully got serving system:\n\tRegistration state: 'registered'\n";
        let mut t = RealPreTester::new(
            Box::new(FakeQmicli {
                output: reg.into(),
                argv: argv.clone(),
            }),
            &paths,
        );
        t.dev_root = dir.path().to_path_buf();
        let p = profile("TYPE=qmi\nAPN=internet\n");
        // No control device: nothing to ask, so the trial switch is the test.
        assert!(matches!(
            t.pretest(&p, "wwan0", Some("red0")),
            PretestOutcome::CannotTest(m) if m.contains("cdc-wdm")
        ));
        std::fs::write(dir.path().join("cdc-wdm0"), "").unwrap();
        let o = t.pretest(&p, "wwan0", Some("red0"));
        assert!(matches!(o, PretestOutcome::Passed(_)), "{o:?}");
        assert_eq!(
            argv.lock().unwrap()[1..],
            [
                "-d".to_string(),
                dir.path().join("cdc-wdm0").display().to_string(),
                "--device-open-proxy".into(),
                "--nas-get-serving-system".into()
            ]
        );

        let mut t = RealPreTester::new(
            Box::new(FakeQmicli {
                output: "\tRegistration state: 'not-registered-searching'\n".into(),
                argv,
            }),
            &paths,
        );
        t.dev_root = dir.path().to_path_buf();
        let o = t.pretest(&p, "wwan0", None);
        assert!(
            matches!(&o, PretestOutcome::Failed(m) if m.contains("not-registered-searching")),
            "{o:?}"
        );
    }

    #[test]
    fn test_profile_resolves_devices_from_the_box() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::new(dir.path()).unwrap();
        std::fs::create_dir_all(paths.ppp_dir()).unwrap();
        std::fs::create_dir_all(paths.ethernet_settings().parent().unwrap()).unwrap();
        std::fs::write(paths.ethernet_settings(), "RED_TYPE=PPPOE\nRED_DEV=red0\n").unwrap();
        std::fs::write(paths.profile("1"), "TYPE=pppoe\nPROFILENAME=dsl\n").unwrap();
        std::fs::write(paths.profile("2"), "TYPE=DHCP\nDEVICE=cdh-nonexist1\n").unwrap();
        let o = test_profile(
            &paths,
            Box::new(ProcessRunner),
            &ProfileName::new("1").unwrap(),
        )
        .unwrap();
        assert!(matches!(o, PretestOutcome::CannotTest(_)), "{o:?}");
        let o = test_profile(
            &paths,
            Box::new(ProcessRunner),
            &ProfileName::new("2").unwrap(),
        )
        .unwrap();
        assert!(
            matches!(&o, PretestOutcome::Failed(m) if m.contains("cdh-nonexist1")),
            "{o:?}"
        );
        let e = test_profile(
            &paths,
            Box::new(ProcessRunner),
            &ProfileName::new("9").unwrap(),
        )
        .unwrap_err();
        assert_eq!(e.exit_code(), 2);
    }
}
