//! Passive signals: what the kernel already knows about the line (its devices' presence and
//! carrier, pppd), read without sending a packet. Cheap enough to sample every 250 ms
//! between rounds: two small sysfs reads per device (one `read` each), one `comm` read for
//! a known pppd (a scan of `/proc` only when it is gone).

use std::cell::Cell;
use std::path::{Path, PathBuf};

use crate::ipfire::paths::Paths;

/// pppd's `linkname` of the failback proof's session beside RED (`uplink/proof.rs`): that
/// pppd is not RED's.
pub const PROOF_LINKNAME: &str = "connectd-proof";

/// The state of one network device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceState {
    /// Device name.
    pub name: String,
    /// `/sys/class/net/NAME` exists.
    pub present: bool,
    /// `carrier` reads 1 (it cannot be read while the device is down: false then).
    pub carrier: bool,
    /// `operstate` (`up`, `down`, `unknown`, `lowerlayerdown`, ...); empty when absent.
    pub operstate: String,
}

impl DeviceState {
    /// Why this device is lost, if it is.
    pub fn lost(&self) -> Option<String> {
        if !self.present {
            return Some(format!("{} vanished", self.name));
        }
        if matches!(
            self.operstate.as_str(),
            "down" | "lowerlayerdown" | "notpresent"
        ) {
            return Some(format!("{} is {}", self.name, self.operstate));
        }
        if !self.carrier {
            return Some(format!("carrier lost on {}", self.name));
        }
        None
    }
}

/// One sample of the passive signals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassiveState {
    /// The RED interface (`red/iface`: `ppp0`, `red0`, `wwan0`).
    pub iface: DeviceState,
    /// The device under it (the PPPoE NIC); equal to `iface` for ethernet types.
    pub device: DeviceState,
    /// On a type pppd serves: whether RED's pppd runs. `None` on the others.
    pub pppd_running: Option<bool>,
}

impl PassiveState {
    /// Why the line itself is gone, if it is: the device vanished or lost carrier, or (for
    /// pppd types) pppd exited or its interface vanished. `red/active` is not judged here:
    /// the supervisor watches it appear and vanish.
    pub(crate) fn line_lost(&self) -> Option<String> {
        if let Some(r) = self.device.lost() {
            return Some(r);
        }
        match self.pppd_running {
            Some(false) => Some("pppd exited".into()),
            Some(true) if !self.iface.present => Some(format!("{} vanished", self.iface.name)),
            Some(true) => None,
            None => self.iface.lost(),
        }
    }
}

/// Reads the passive signals under injectable roots.
#[derive(Debug)]
pub struct Passive {
    sys_root: PathBuf,
    proc_root: PathBuf,
    pppd_pid: Cell<Option<u32>>,
}

fn read_trim(p: &Path) -> Option<String> {
    read_small(p).ok()
}

/// A small attribute file (sysfs, `/proc/PID/comm`) in one `read`, trimmed: an open, a read
/// and a close, where `read_to_string` adds a `statx` and a second read for the end.
fn read_small(p: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut buf = [0u8; 64];
    let n = std::fs::File::open(p)?.read(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf[..n]).trim().to_string())
}

impl Passive {
    /// The box under `paths`: its `/sys` and `/proc`.
    pub fn new(paths: &Paths) -> Passive {
        Passive::with_roots(paths.sys(), paths.proc())
    }

    /// Custom roots (tests).
    pub fn with_roots(sys_root: impl Into<PathBuf>, proc_root: impl Into<PathBuf>) -> Passive {
        Passive {
            sys_root: sys_root.into(),
            proc_root: proc_root.into(),
            pppd_pid: Cell::new(None),
        }
    }

    /// Carrier and operstate of `dev`. Every network device has an `operstate`, so its
    /// absence is the device's; only an unexpected error asks the directory itself.
    pub fn device(&self, dev: &str) -> DeviceState {
        let absent = || DeviceState {
            name: dev.to_string(),
            present: false,
            carrier: false,
            operstate: String::new(),
        };
        if dev.is_empty() || dev.contains('/') {
            return absent();
        }
        let base = self.sys_root.join("class/net").join(dev);
        let operstate = match read_small(&base.join("operstate")) {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return absent(),
            Err(_) if base.is_dir() => String::new(),
            Err(_) => return absent(),
        };
        DeviceState {
            name: dev.to_string(),
            present: true,
            carrier: read_trim(&base.join("carrier")).as_deref() == Some("1"),
            operstate,
        }
    }

    /// A process named `pppd` in our own network namespace (a pppd of another namespace
    /// carries no RED of ours; when `ns/net` cannot be read, the name alone decides), and
    /// not the failback proof's session beside RED (`linkname connectd-proof`).
    fn is_pppd(&self, pid: &str) -> bool {
        let dir = self.proc_root.join(pid);
        if read_trim(&dir.join("comm")).as_deref() != Some("pppd") {
            return false;
        }
        let proof = PROOF_LINKNAME.as_bytes();
        if std::fs::read(dir.join("cmdline"))
            .is_ok_and(|c| c.split(|b| *b == 0).any(|a| a == proof))
        {
            return false;
        }
        match (
            std::fs::read_link(self.proc_root.join("self/ns/net")),
            std::fs::read_link(dir.join("ns/net")),
        ) {
            (Ok(ours), Ok(theirs)) => ours == theirs,
            _ => true,
        }
    }

    /// The PID of a running pppd (cached; `/proc` is scanned only when the cached one is gone).
    /// The cached one was checked whole when it was found (its namespace, not the proof's
    /// session); it is still it while its `comm` reads `pppd`: PIDs are not reused within
    /// a sample's interval.
    pub(crate) fn pppd_pid(&self) -> Option<u32> {
        if let Some(pid) = self.pppd_pid.get() {
            let comm = self.proc_root.join(pid.to_string()).join("comm");
            if read_trim(&comm).as_deref() == Some("pppd") {
                return Some(pid);
            }
        }
        let found = std::fs::read_dir(&self.proc_root).ok().and_then(|rd| {
            rd.flatten().find_map(|e| {
                let name = e.file_name();
                let name = name.to_str()?;
                let pid: u32 = name.parse().ok()?;
                self.is_pppd(name).then_some(pid)
            })
        });
        self.pppd_pid.set(found);
        found
    }

    /// Samples the line: `iface` is the RED interface, `dev` the device under it; pppd
    /// only on a type it serves (`uses_pppd`).
    pub(crate) fn sample(&self, iface: &str, dev: &str, uses_pppd: bool) -> PassiveState {
        let device = self.device(dev);
        PassiveState {
            iface: if iface == dev {
                device.clone()
            } else {
                self.device(iface)
            },
            device,
            pppd_running: uses_pppd.then(|| self.pppd_pid().is_some()),
        }
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests build fixtures with plain writes
mod tests {
    use super::*;
    use std::fs;

    fn dev(root: &Path, name: &str, carrier: Option<&str>, oper: &str) {
        let d = root.join("sys/class/net").join(name);
        fs::create_dir_all(&d).unwrap();
        if let Some(c) = carrier {
            fs::write(d.join("carrier"), format!("{c}\n")).unwrap();
        }
        fs::write(d.join("operstate"), format!("{oper}\n")).unwrap();
    }

    #[test]
    fn carrier_operstate_pppd_and_red_active() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        dev(r, "red0", Some("1"), "up");
        dev(r, "ppp0", Some("1"), "unknown");
        fs::create_dir_all(r.join("proc/123")).unwrap();
        fs::write(r.join("proc/123/comm"), "dhcpcd\n").unwrap();
        fs::create_dir_all(r.join("proc/self")).unwrap();
        let p = Passive::with_roots(r.join("sys"), r.join("proc"));

        let s = p.sample("ppp0", "red0", false);
        assert!(s.device.carrier && s.iface.present);
        assert_eq!(
            s.pppd_running, None,
            "pppd is not looked for on a DHCP line"
        );
        assert_eq!(s.line_lost(), None);
        let s = p.sample("ppp0", "red0", true);
        assert_eq!(s.line_lost().as_deref(), Some("pppd exited"));

        fs::create_dir_all(r.join("proc/456")).unwrap();
        fs::write(r.join("proc/456/comm"), "pppd\n").unwrap();
        let s = p.sample("ppp0", "red0", true);
        assert_eq!(s.pppd_running, Some(true));
        assert_eq!(p.pppd_pid(), Some(456));
        assert_eq!(s.line_lost(), None);
        // The cached pppd is asked by its comm alone: another program under its PID is not it.
        fs::write(r.join("proc/456/comm"), "sleep\n").unwrap();
        assert_eq!(p.pppd_pid(), None);
        fs::write(r.join("proc/456/comm"), "pppd\n").unwrap();
        assert_eq!(p.pppd_pid(), Some(456));

        // Carrier unreadable (device down) and a vanished device.
        dev(r, "red0", None, "down");
        let s = p.sample("ppp0", "red0", true);
        assert_eq!(s.line_lost().as_deref(), Some("red0 is down"));
        dev(r, "red0", Some("0"), "up");
        assert_eq!(
            p.sample("red0", "red0", false).line_lost().as_deref(),
            Some("carrier lost on red0")
        );
        let s = p.sample("ppp0", "nic9", true);
        assert_eq!(s.line_lost().as_deref(), Some("nic9 vanished"));
        dev(r, "red0", Some("1"), "up");
        fs::remove_dir_all(r.join("sys/class/net/ppp0")).unwrap();
        assert_eq!(
            p.sample("ppp0", "red0", true).line_lost().as_deref(),
            Some("ppp0 vanished")
        );
        dev(r, "ppp0", Some("1"), "unknown");
        fs::remove_dir_all(r.join("proc/456")).unwrap();
        assert_eq!(p.pppd_pid(), None);

        // The failback proof's pppd beside RED is not RED's pppd.
        fs::create_dir_all(r.join("proc/789")).unwrap();
        fs::write(r.join("proc/789/comm"), "pppd\n").unwrap();
        fs::write(
            r.join("proc/789/cmdline"),
            "pppd\0plugin\0pppoe.so\0red0\0unit\09\0linkname\0connectd-proof\0",
        )
        .unwrap();
        assert_eq!(p.pppd_pid(), None);
    }
}
