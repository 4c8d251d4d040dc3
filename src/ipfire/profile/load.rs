//! A profile file typed: [`Profile`] from `settings-NAME` ([`Profile::from_doc`],
//! [`Profile::load`]), its [`Kind`], and why loading can fail ([`LoadError`]).

use std::fmt;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::ipfire::fsutil;
use crate::ipfire::paths::Paths;
use crate::ipfire::policy::Policy;
use crate::ipfire::profile::name::{ProfileName, valid_device};
use crate::ipfire::profile::secret::{Secret, check_password, password_file};
use crate::ipfire::readhash::Document;

/// The connection type of a profile (`TYPE`, case-insensitive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// PPP over Ethernet (DSL).
    Pppoe,
    /// PPPoE on a VLAN (VDSL).
    Vdsl,
    /// PPTP.
    Pptp,
    /// LTE/5G modem via QMI.
    Qmi,
    /// Analog/ISDN modem.
    Modem,
    /// Serial line.
    Serial,
    /// PPPoE over ATM.
    Pppoeatm,
    /// PPTP over ATM.
    Pptpatm,
    /// Ethernet with DHCP.
    Dhcp,
    /// Ethernet with a static address.
    Static,
}

impl Kind {
    /// Parses `TYPE`, case-insensitively.
    pub fn parse(s: &str) -> Option<Kind> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "pppoe" => Kind::Pppoe,
            "vdsl" => Kind::Vdsl,
            "pptp" => Kind::Pptp,
            "qmi" => Kind::Qmi,
            "modem" => Kind::Modem,
            "serial" => Kind::Serial,
            "pppoeatm" => Kind::Pppoeatm,
            "pptpatm" => Kind::Pptpatm,
            "dhcp" => Kind::Dhcp,
            "static" => Kind::Static,
            _ => return None,
        })
    }

    /// `RED_TYPE` in `ethernet/settings` for this kind.
    pub fn red_type(self) -> &'static str {
        match self {
            Kind::Dhcp => "DHCP",
            Kind::Static => "STATIC",
            _ => "PPPOE",
        }
    }

    /// Whether RED comes up through pppd (or the QMI path of IPFire's network script).
    pub(crate) fn is_dial(self) -> bool {
        !matches!(self, Kind::Dhcp | Kind::Static)
    }

    /// Whether pppd carries the session (every dial type but QMI).
    pub(crate) fn uses_pppd(self) -> bool {
        self.is_dial() && self != Kind::Qmi
    }

    /// The `TYPE` value as written.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Pppoe => "pppoe",
            Kind::Vdsl => "vdsl",
            Kind::Pptp => "pptp",
            Kind::Qmi => "qmi",
            Kind::Modem => "modem",
            Kind::Serial => "serial",
            Kind::Pppoeatm => "pppoeatm",
            Kind::Pptpatm => "pptpatm",
            Kind::Dhcp => "DHCP",
            Kind::Static => "STATIC",
        }
    }
}

/// A STATIC profile's addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticCfg {
    /// `IP`.
    pub ip: Ipv4Addr,
    /// `NETMASK`.
    pub netmask: Ipv4Addr,
    /// `GATEWAY`.
    pub gateway: Ipv4Addr,
    /// `DNS1`, `DNS2`.
    pub dns: Vec<Ipv4Addr>,
}

impl StaticCfg {
    /// The network address (`RED_NETADDRESS`).
    pub(crate) fn netaddress(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.ip) & u32::from(self.netmask))
    }
}

/// `RECONNECTION`: how the line is kept up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reconnection {
    /// Redial whenever it drops (the default).
    Persistent,
    /// pppd dials on demand; connectd exits at once.
    DialOnDemand,
    /// Manual: connect once, no redial.
    Manual,
}

/// A loaded profile. Its `Debug` leaves out `doc`: the raw file holds the password.
#[derive(Clone)]
pub struct Profile {
    /// Its name.
    pub name: ProfileName,
    /// `PROFILENAME`, or the name.
    pub display_name: String,
    /// `TYPE`.
    pub kind: Kind,
    /// `DEVICE` in the profile (WUI profiles carry none).
    pub device: Option<String>,
    /// `USERNAME`.
    pub username: Option<String>,
    /// `PASSWORD`.
    pub password: Secret,
    /// `APN` (QMI).
    pub apn: Option<String>,
    /// `SERVICENAME` (PPPoE), checked by the discovery pre-test.
    pub service_name: Option<String>,
    /// `CONCENTRATORNAME` (PPPoE), checked by the discovery pre-test.
    pub concentrator_name: Option<String>,
    /// STATIC addresses.
    pub static_cfg: Option<StaticCfg>,
    /// `BACKUPPROFILE`; `None` when absent or naming the profile itself (the WUI default).
    pub backup: Option<ProfileName>,
    /// `MAXRETRIES` (5).
    pub max_retries: u32,
    /// `HOLDOFF` (30 s).
    pub holdoff: Duration,
    /// `RECONNECTION`.
    pub reconnection: Reconnection,
    /// Lines IPFire's shell reader would drop, as warnings.
    pub warnings: Vec<String>,
    /// The file as read, for rewrites that must keep every other line.
    pub doc: Document,
}

impl fmt::Debug for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not derived: `doc` would print every raw line, `PASSWORD=...` included (found by
        // cargo fuzz, fuzz/checks.rs `profile`).
        f.debug_struct("Profile")
            .field("name", &self.name)
            .field("display_name", &self.display_name)
            .field("kind", &self.kind)
            .field("device", &self.device)
            .field("username", &self.username)
            .field("password", &self.password)
            .field("apn", &self.apn)
            .field("service_name", &self.service_name)
            .field("concentrator_name", &self.concentrator_name)
            .field("static_cfg", &self.static_cfg)
            .field("backup", &self.backup)
            .field("max_retries", &self.max_retries)
            .field("holdoff", &self.holdoff)
            .field("reconnection", &self.reconnection)
            .field("warnings", &self.warnings)
            .finish_non_exhaustive()
    }
}

/// Why a profile could not be loaded.
#[derive(Debug)]
pub enum LoadError {
    /// The file is empty: an unused WUI slot, or the WUI is writing it right now.
    Empty,
    /// Any other problem.
    Other(Error),
}

impl From<Error> for LoadError {
    fn from(e: Error) -> Self {
        LoadError::Other(e)
    }
}

impl From<LoadError> for Error {
    fn from(e: LoadError) -> Self {
        match e {
            LoadError::Empty => Error::Failed("profile is empty".into()),
            LoadError::Other(e) => e,
        }
    }
}

pub(crate) fn nonempty(doc: &Document, key: &str) -> Option<String> {
    doc.get(key)
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(String::from)
}

impl Profile {
    /// Types a parsed profile file. `file` is used in error messages.
    pub fn from_doc(name: ProfileName, doc: Document, file: &Path) -> Result<Profile, LoadError> {
        if doc.has_no_entries() {
            return Err(LoadError::Empty);
        }
        let bad = |key: &str, value: &str, msg: &str| Error::BadValue {
            file: file.to_path_buf(),
            key: key.into(),
            value: value.into(),
            msg: msg.into(),
        };
        let type_raw = doc.get("TYPE").unwrap_or_default();
        let kind = Kind::parse(type_raw).ok_or_else(|| {
            bad(
                "TYPE",
                type_raw,
                "unknown type (pppoe, vdsl, pptp, qmi, modem, serial, pppoeatm, pptpatm, DHCP, STATIC)",
            )
        })?;
        let device = nonempty(&doc, "DEVICE");
        if let Some(d) = &device {
            if !valid_device(d) {
                return Err(bad("DEVICE", d, "not a network interface name").into());
            }
        }
        let ip = |key: &str| -> Result<Ipv4Addr> {
            let v = doc.get(key).unwrap_or_default();
            v.trim()
                .parse()
                .map_err(|_| bad(key, v, "expected an IPv4 address"))
        };
        let static_cfg = if kind == Kind::Static {
            let mut dns = Vec::new();
            for k in ["DNS1", "DNS2"] {
                if nonempty(&doc, k).is_some() {
                    dns.push(ip(k)?);
                }
            }
            Some(StaticCfg {
                ip: ip("IP")?,
                netmask: ip("NETMASK")?,
                gateway: ip("GATEWAY")?,
                dns,
            })
        } else {
            None
        };
        let backup = match nonempty(&doc, "BACKUPPROFILE") {
            Some(b) if b == name.as_str() => None,
            Some(b) => Some(
                ProfileName::new(&b).map_err(|_| bad("BACKUPPROFILE", &b, "not a profile name"))?,
            ),
            None => None,
        };
        let number = |key: &str, default: u64| -> Result<u64> {
            match nonempty(&doc, key) {
                None => Ok(default),
                Some(v) => v
                    .parse::<u64>()
                    .ok()
                    .filter(|&n| n <= 86_400)
                    .ok_or_else(|| bad(key, &v, "expected a whole number")),
            }
        };
        let max_retries = number("MAXRETRIES", 5)? as u32;
        let holdoff = Duration::from_secs(number("HOLDOFF", 30)?);
        let reconnection = match doc
            .get("RECONNECTION")
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("dialondemand") => Reconnection::DialOnDemand,
            Some("manual") => Reconnection::Manual,
            _ => Reconnection::Persistent,
        };
        let warnings = doc
            .shell_dropped()
            .into_iter()
            .map(|d| {
                format!(
                    "{}:{}: {}{}: IPFire's shell reader ignores this line",
                    file.display(),
                    d.line,
                    d.key.map(|k| format!("{k}: ")).unwrap_or_default(),
                    d.reason
                )
            })
            .collect();
        Ok(Profile {
            display_name: nonempty(&doc, "PROFILENAME").unwrap_or_else(|| name.to_string()),
            name,
            kind,
            device,
            username: nonempty(&doc, "USERNAME"),
            password: Secret(doc.get("PASSWORD").unwrap_or_default().to_string()),
            apn: nonempty(&doc, "APN"),
            service_name: nonempty(&doc, "SERVICENAME"),
            concentrator_name: nonempty(&doc, "CONCENTRATORNAME"),
            static_cfg,
            backup,
            max_retries,
            holdoff,
            reconnection,
            warnings,
            doc,
        })
    }

    /// Loads `settings-NAME` under `paths`. A profile without `PASSWORD` takes its password
    /// from [`super::password_file`] when there is one.
    pub fn load(paths: &Paths, name: &ProfileName) -> Result<Profile, LoadError> {
        let file = paths.profile(name.as_str());
        let doc = match fsutil::read_settings(&file) {
            Ok(d) => d,
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                return Err(LoadError::Other(Error::NoSuchProfile(name.to_string())));
            }
            Err(e) => return Err(e.into()),
        };
        let mut p = Profile::from_doc(name.clone(), doc, &file)?;
        if p.password.0.is_empty() {
            let side = password_file(paths, name);
            match fsutil::read_bounded(&side) {
                Ok(bytes) => {
                    let pw = String::from_utf8(bytes).map_err(|_| Error::Parse {
                        file: side.clone(),
                        line: None,
                        msg: "is not valid UTF-8 text".into(),
                    })?;
                    check_password(&pw).map_err(|e| Error::Parse {
                        file: side.clone(),
                        line: None,
                        msg: e.to_string(),
                    })?;
                    p.password = Secret(pw);
                }
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(p)
    }

    /// The RED device this profile runs on: `DEVICE_<NAME>` in the policy, else the
    /// profile's `DEVICE`, else the box's current `RED_DEV` (`box_red_dev`).
    pub(crate) fn red_device<'a>(
        &'a self,
        policy: &'a Policy,
        box_red_dev: Option<&'a str>,
    ) -> Option<&'a str> {
        policy
            .device_override(self.name.as_str())
            .or(self.device.as_deref())
            .or(box_red_dev)
    }
}

pub(crate) fn is_not_found(e: &Error) -> bool {
    matches!(e, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests build fixtures with plain writes
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_password() {
        let doc = Document::parse("TYPE=pppoe\nDEVICE=red0\nUSERNAME=u\nPASSWORD=Zz-unique-771\n");
        let p = Profile::from_doc(ProfileName::new("x").unwrap(), doc, Path::new("settings-x"))
            .unwrap();
        let shown = format!("{p:?}");
        assert!(!shown.contains("Zz-unique-771"), "{shown}");
        assert!(shown.contains("password: \"****\""), "{shown}");
    }

    fn from(name: &str, text: &str) -> Result<Profile, LoadError> {
        Profile::from_doc(
            ProfileName::new(name).unwrap(),
            Document::parse(text),
            Path::new("settings-x"),
        )
    }

    #[test]
    fn backup_naming_itself_means_none() {
        let p = from("1", "TYPE=pppoe\nBACKUPPROFILE=1\n").unwrap();
        assert_eq!(p.backup, None);
        let p = from("1", "TYPE=pppoe\nBACKUPPROFILE=2\n").unwrap();
        assert_eq!(p.backup.unwrap().as_str(), "2");
    }

    #[test]
    fn empty_profile_is_being_written_not_a_config() {
        assert!(matches!(from("3", ""), Err(LoadError::Empty)));
        assert!(matches!(
            from("3", "# only a comment\n"),
            Err(LoadError::Empty)
        ));
    }

    #[test]
    fn type_is_case_insensitive_and_unknown_is_named() {
        assert_eq!(from("a", "TYPE=dhcp\n").unwrap().kind, Kind::Dhcp);
        assert_eq!(from("a", "TYPE=QMI\n").unwrap().kind.red_type(), "PPPOE");
        let Err(LoadError::Other(e)) = from("a", "TYPE=carrier-pigeon\n") else {
            panic!("unknown TYPE accepted")
        };
        assert!(e.to_string().contains("TYPE") && e.to_string().contains("carrier-pigeon"));
    }

    #[test]
    fn static_needs_addresses() {
        let p = from(
            "s",
            "TYPE=STATIC\nDEVICE=red1\nIP=203.0.113.10\nNETMASK=255.255.255.0\nGATEWAY=203.0.113.1\nDNS1=203.0.113.53\n",
        )
        .unwrap();
        let s = p.static_cfg.unwrap();
        assert_eq!(s.netaddress(), Ipv4Addr::new(203, 0, 113, 0));
        assert_eq!(s.dns.len(), 1);
        assert!(from("s", "TYPE=STATIC\nIP=x\n").is_err());
    }

    #[test]
    fn password_is_masked_in_debug() {
        let p = from("1", "TYPE=pppoe\nPASSWORD=hunter2\n").unwrap();
        assert!(!format!("{p:?}").contains("hunter2") || format!("{:?}", p.password) == "\"****\"");
        assert_eq!(format!("{:?}", p.password), "\"****\"");
    }

    #[test]
    fn the_examples_are_valid_profiles() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles.example");
        let mut kinds = Vec::new();
        for e in std::fs::read_dir(&dir).unwrap() {
            let path = e.unwrap().path();
            let doc = fsutil::read_settings(&path).unwrap();
            assert!(
                doc.shell_dropped().is_empty(),
                "{}: {:?}",
                path.display(),
                doc.shell_dropped()
            );
            let n = path.file_name().unwrap().to_str().unwrap();
            let name = ProfileName::new(n.strip_prefix("settings-").unwrap()).unwrap();
            let p = Profile::from_doc(name, doc, &path).unwrap();
            assert!(p.device.is_some(), "{n}");
            kinds.push(p.kind.as_str());
        }
        kinds.sort_unstable();
        assert_eq!(kinds, ["DHCP", "STATIC", "pppoe", "qmi", "vdsl"]);
    }

    #[test]
    fn reads_the_wui_fixture_profiles() {
        let dir = Path::new("../shared/fixtures/ipfire-box/var/ipfire/ppp");
        if !dir.is_dir() {
            eprintln!("skipped: ../shared/fixtures not present");
            return;
        }
        let text = std::fs::read_to_string(dir.join("settings-1")).unwrap();
        let p = from("1", &text).unwrap();
        assert_eq!(p.kind, Kind::Pppoe);
        assert_eq!(p.display_name, "Telekom DSL");
        assert_eq!(p.backup, None);
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
        let p2 = from(
            "2",
            &std::fs::read_to_string(dir.join("settings-2")).unwrap(),
        )
        .unwrap();
        assert_eq!(p2.kind, Kind::Qmi);
        assert_eq!(p2.apn.as_deref(), Some("internet.telekom"));
    }
}
