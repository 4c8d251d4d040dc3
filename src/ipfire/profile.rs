//! Connection profiles: `/var/ipfire/ppp/settings-NAME`, typed (DESIGN.md section 2).
//!
//! NAME is `1`..`5` (the WUI's numbered slots) or `[A-Za-z0-9_-]{1,32}`; a [`ProfileName`]
//! is checked before any path is built from it, so `../x` never reaches the filesystem.
//! `TYPE` decides how RED comes up: dial types (RED_TYPE=PPPOE in `ethernet/settings`) or
//! the ethernet types DHCP and STATIC. The WUI rewrites a profile in place (truncate, then
//! write), so an empty profile is reported as [`LoadError::Empty`]: "being written", never a
//! configuration to act on.
//!
//! Beyond loading: [`list`], [`create`] (from a [`NewProfile`], checked by
//! [`NewProfile::validate`] before any path is built or byte written), [`delete`], and
//! [`resolve_chain`] (the failover chain, a missing profile or a loop reported by name).
//!
//! Passwords: IPFire's shell readhash drops a line whose value has `'`, `"`, `\`, `$`, ...,
//! so such a password cannot live in the profile's `PASSWORD` key without being lost (or,
//! with IPFire's `eval`, run). It is not refused either, since pppd can take it: [`create`]
//! keeps it in [`password_file`] (`/var/ipfire/connectd/secret-NAME`, 0600) and leaves
//! `PASSWORD` out of the profile; [`Profile::load`] reads it back from there when the profile
//! has no `PASSWORD`; activation writes it to `ppp/secrets` quoted as pppd reads it
//! ([`crate::uplink::switch::secrets_line`]). A password the readhash can carry (spaces and `#`
//! included) stays in the profile, where the WUI keeps it. Every other value (USERNAME, APN,
//! PROFILENAME, DEVICE) must pass [`crate::ipfire::readhash::check_value`] and is refused, naming the
//! key, otherwise.

use std::fmt;
use std::fs;
use std::net::Ipv4Addr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, IoContext, Result};
use crate::ipfire::fsutil;
use crate::ipfire::paths::Paths;
use crate::ipfire::readhash::Document;

/// A validated profile name.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct ProfileName(String);

impl ProfileName {
    /// Checks `name`: `[A-Za-z0-9_-]{1,32}` (which includes the WUI's `1`..`5`).
    pub fn new(name: &str) -> Result<Self> {
        let ok = !name.is_empty()
            && name.len() <= 32
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if ok {
            Ok(ProfileName(name.to_string()))
        } else {
            Err(Error::usage(
                "NAME",
                format!("{name:?} is not a valid profile name (1 to 32 of A-Z a-z 0-9 _ -)"),
            ))
        }
    }

    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is one of the WUI's numbered slots `1`..`5`.
    pub fn is_wui_slot(&self) -> bool {
        matches!(self.0.as_str(), "1" | "2" | "3" | "4" | "5")
    }
}

impl TryFrom<String> for ProfileName {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        ProfileName::new(&s)
    }
}

impl From<ProfileName> for String {
    fn from(n: ProfileName) -> String {
        n.0
    }
}

impl fmt::Display for ProfileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether `dev` looks like a Linux interface name (1..15 chars, no `/`, no spaces).
pub fn valid_device(dev: &str) -> bool {
    !dev.is_empty()
        && dev.len() <= 15
        && dev
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.:@".contains(c))
}

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
    pub fn is_dial(self) -> bool {
        !matches!(self, Kind::Dhcp | Kind::Static)
    }

    /// Whether pppd carries the session (every dial type but QMI).
    pub fn uses_pppd(self) -> bool {
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
    pub fn netaddress(&self) -> Ipv4Addr {
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

/// A password, never printed by `Debug`.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() {
            "\"\""
        } else {
            "\"****\""
        })
    }
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

fn nonempty(doc: &Document, key: &str) -> Option<String> {
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
    /// from [`password_file`] when there is one.
    pub fn load(paths: &Paths, name: &ProfileName) -> Result<Profile, LoadError> {
        let file = paths.profile(name.as_str());
        let doc = match crate::ipfire::fsutil::read_settings(&file) {
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
    pub fn red_device<'a>(
        &'a self,
        policy: &'a crate::ipfire::policy::Policy,
        box_red_dev: Option<&'a str>,
    ) -> Option<&'a str> {
        policy
            .device_override(self.name.as_str())
            .or(self.device.as_deref())
            .or(box_red_dev)
    }
}

// ---------------------------------------------------------------------------------------
// Passwords that IPFire's readhash cannot carry.
// ---------------------------------------------------------------------------------------

/// Longest password pppd reads from its secrets file (`MAXSECRETLEN` is 256 with the NUL).
pub const MAX_PASSWORD_BYTES: usize = 255;

/// Where a profile's password lives when the profile file cannot hold it:
/// `/var/ipfire/connectd/secret-NAME` (mode 0600, the password's bytes, no newline).
///
/// The shell readhash drops a `PASSWORD=` line with `'`, `"`, `\`, `$`, `!`, ... (and
/// IPFire's `eval` would run some of them), so such a password is never stored in the
/// profile. [`create`] puts it here instead, [`Profile::load`] reads it back when the profile
/// has no `PASSWORD`, and activation writes it into `ppp/secrets` quoted the way pppd reads
/// it. A password the readhash can carry stays in the profile, as the WUI keeps it.
pub fn password_file(paths: &Paths, name: &ProfileName) -> PathBuf {
    paths.connectd_dir().join(format!("secret-{name}"))
}

/// Whether `password` can be stored as `PASSWORD=` in a profile (see [`password_file`]).
pub fn password_fits_profile(password: &str) -> bool {
    crate::ipfire::readhash::check_value(password).is_ok()
}

/// Checks a password for pppd's secrets file: at most [`MAX_PASSWORD_BYTES`] bytes and no
/// control characters (a line break would end the secrets line). Every printable character,
/// quotes and backslashes included, is fine: [`crate::uplink::switch::secrets_line`] quotes it.
/// The message never shows the password.
pub fn check_password(password: &str) -> Result<()> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(Error::usage(
            "PASSWORD",
            format!("longer than the {MAX_PASSWORD_BYTES} bytes pppd accepts"),
        ));
    }
    if password.chars().any(char::is_control) {
        return Err(Error::usage(
            "PASSWORD",
            "contains a control character (e.g. a line break), which pppd's secrets file cannot carry",
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Listing.
// ---------------------------------------------------------------------------------------

/// One row of `manage-wan-profiles list`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ProfileInfo {
    /// NAME of `settings-NAME`.
    pub name: ProfileName,
    /// `PROFILENAME`, as the WUI shows it.
    pub profile_name: Option<String>,
    /// `TYPE` as written.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// An empty file: an unused WUI slot (or one being written right now).
    pub empty: bool,
    /// `settings` is a hard link to this profile.
    pub active: bool,
    /// Why the profile cannot be used, if it cannot.
    pub problem: Option<String>,
    /// Lines IPFire's shell reader would drop.
    pub warnings: Vec<String>,
}

/// Every `settings-NAME` in the ppp directory with a valid NAME: the WUI's slots `1`..`5`
/// first, then named profiles in name order. An unreadable or invalid profile is listed
/// with its [`ProfileInfo::problem`], not an error: one bad file must not hide the others.
pub fn list(paths: &Paths) -> Result<Vec<ProfileInfo>> {
    let dir = paths.ppp_dir();
    let active = fsutil::file_id(&paths.ppp_settings());
    let mut out = Vec::new();
    for entry in fs::read_dir(&dir).at(&dir)? {
        let entry = entry.at(&dir)?;
        let file_name = entry.file_name();
        let Some(n) = file_name.to_str().and_then(|f| f.strip_prefix("settings-")) else {
            continue;
        };
        let Ok(name) = ProfileName::new(n) else {
            continue; // e.g. settings-1.bak: not a profile name
        };
        let path = entry.path();
        if !path.is_file() {
            continue;
        }
        let mut info = ProfileInfo {
            active: active.is_some() && fsutil::file_id(&path) == active,
            name,
            profile_name: None,
            kind: None,
            empty: false,
            problem: None,
            warnings: Vec::new(),
        };
        match fsutil::read_settings(&path) {
            Ok(doc) if doc.has_no_entries() => info.empty = true,
            Ok(doc) => {
                info.profile_name = nonempty(&doc, "PROFILENAME");
                info.kind = nonempty(&doc, "TYPE");
                match Profile::from_doc(info.name.clone(), doc, &path) {
                    Ok(p) => info.warnings = p.warnings,
                    Err(LoadError::Other(e)) => info.problem = Some(e.to_string()),
                    Err(LoadError::Empty) => info.empty = true,
                }
            }
            Err(e) => info.problem = Some(e.to_string()),
        }
        out.push(info);
    }
    out.sort_by(|a, b| (!a.name.is_wui_slot(), &a.name).cmp(&(!b.name.is_wui_slot(), &b.name)));
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Creating and deleting.
// ---------------------------------------------------------------------------------------

/// A profile to create (`manage-wan-profiles create`). Check it with
/// [`NewProfile::validate`]; [`create`] does so before it builds a path or writes a byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewProfile {
    /// NAME.
    pub name: ProfileName,
    /// `TYPE`.
    pub kind: Kind,
    /// `PROFILENAME`; the name when absent.
    pub display_name: Option<String>,
    /// `DEVICE`: required for named profiles, optional for the WUI slots `1`..`5`.
    pub device: Option<String>,
    /// `IP` (STATIC).
    pub ip: Option<Ipv4Addr>,
    /// `NETMASK` (STATIC).
    pub netmask: Option<Ipv4Addr>,
    /// `GATEWAY` (STATIC).
    pub gateway: Option<Ipv4Addr>,
    /// `DNS1` (STATIC).
    pub dns1: Option<Ipv4Addr>,
    /// `DNS2` (STATIC).
    pub dns2: Option<Ipv4Addr>,
    /// `USERNAME` (dial types).
    pub username: Option<String>,
    /// `APN` (QMI).
    pub apn: Option<String>,
    /// The password (dial types); empty for none.
    pub password: Secret,
}

fn netmask_bits(mask: Ipv4Addr) -> Option<u32> {
    let m = u32::from(mask);
    (m.leading_ones() + m.trailing_zeros() == 32).then_some(m.leading_ones())
}

impl NewProfile {
    /// A profile of `kind` named `name`, every other field empty.
    pub fn new(name: ProfileName, kind: Kind) -> Self {
        NewProfile {
            name,
            kind,
            display_name: None,
            device: None,
            ip: None,
            netmask: None,
            gateway: None,
            dns1: None,
            dns2: None,
            username: None,
            apn: None,
            password: Secret::default(),
        }
    }

    /// Checks every field; the error names the key (`DEVICE`, `USERNAME`, ...) and says why.
    pub fn validate(&self) -> Result<()> {
        let name = &self.name;
        match &self.device {
            None if !name.is_wui_slot() => {
                return Err(Error::usage(
                    "DEVICE",
                    format!(
                        "profile {name} needs a DEVICE (the NIC, or the wwan interface for QMI); \
                         only the WUI's profiles 1..5 take the box's RED_DEV"
                    ),
                ));
            }
            Some(d) if !valid_device(d) => {
                return Err(Error::usage(
                    "DEVICE",
                    format!("{d:?} is not a network interface name"),
                ));
            }
            _ => {}
        }
        let texts = [
            ("PROFILENAME", &self.display_name),
            ("USERNAME", &self.username),
            ("APN", &self.apn),
        ];
        for (key, value) in texts {
            if let Some(v) = value {
                crate::ipfire::readhash::check_value(v)
                    .map_err(|e| Error::usage(key, format!("{v:?} {e}")))?;
                if v.trim().is_empty() {
                    return Err(Error::usage(key, "is empty"));
                }
            }
        }
        check_password(&self.password.0)?;
        let only = |key: &str, what: &str| {
            Error::usage(
                key,
                format!("only for {what}, not for TYPE={}", self.kind.as_str()),
            )
        };
        if !self.kind.is_dial() {
            if self.username.is_some() {
                return Err(only("USERNAME", "dial types"));
            }
            if !self.password.0.is_empty() {
                return Err(only("PASSWORD", "dial types"));
            }
        }
        if self.apn.is_some() && self.kind != Kind::Qmi {
            return Err(only("APN", "TYPE=qmi"));
        }
        if self.kind == Kind::Static {
            let need = |key: &str, v: Option<Ipv4Addr>| {
                v.ok_or_else(|| Error::usage(key, "required for TYPE=STATIC"))
            };
            let ip = need("IP", self.ip)?;
            let mask = need("NETMASK", self.netmask)?;
            let gw = need("GATEWAY", self.gateway)?;
            let bits = netmask_bits(mask)
                .filter(|b| (1..=30).contains(b))
                .ok_or_else(|| {
                    Error::usage("NETMASK", format!("{mask} is not a netmask from /1 to /30"))
                })?;
            let cfg = StaticCfg {
                ip,
                netmask: mask,
                gateway: gw,
                dns: Vec::new(),
            };
            let net = cfg.netaddress();
            let broadcast = Ipv4Addr::from(u32::from(net) | !u32::from(mask));
            for (key, a) in [("IP", ip), ("GATEWAY", gw)] {
                if a == net || a == broadcast {
                    return Err(Error::usage(
                        key,
                        format!("{a} is the network or broadcast address of {net}/{bits}"),
                    ));
                }
            }
            if Ipv4Addr::from(u32::from(gw) & u32::from(mask)) != net {
                return Err(Error::usage(
                    "GATEWAY",
                    format!("{gw} is not in the network {net}/{bits} of IP {ip}"),
                ));
            }
            if gw == ip {
                return Err(Error::usage("GATEWAY", format!("{gw} is the IP itself")));
            }
        } else {
            for (key, v) in [
                ("IP", self.ip),
                ("NETMASK", self.netmask),
                ("GATEWAY", self.gateway),
                ("DNS1", self.dns1),
                ("DNS2", self.dns2),
            ] {
                if v.is_some() {
                    return Err(only(key, "TYPE=STATIC"));
                }
            }
        }
        Ok(())
    }

    /// The profile file, keyed the way the WUI and IPFire's network script expect. A password
    /// the readhash cannot carry is left out (see [`password_file`]).
    pub fn to_document(&self) -> Result<Document> {
        self.validate()?;
        let name = self.name.as_str().to_string();
        let mut pairs: Vec<(&str, String)> = Vec::new();
        if self.name.is_wui_slot() {
            pairs.push(("PROFILE", name.clone()));
        }
        pairs.push((
            "PROFILENAME",
            self.display_name.clone().unwrap_or_else(|| name.clone()),
        ));
        pairs.push(("TYPE", self.kind.as_str().to_string()));
        if let Some(d) = &self.device {
            pairs.push(("DEVICE", d.clone()));
        }
        let s = |v: &Option<String>| v.clone().unwrap_or_default();
        let a = |v: Option<Ipv4Addr>| v.map(|a| a.to_string()).unwrap_or_default();
        match self.kind {
            Kind::Dhcp => {}
            Kind::Static => {
                pairs.push(("IP", a(self.ip)));
                pairs.push(("NETMASK", a(self.netmask)));
                pairs.push(("GATEWAY", a(self.gateway)));
                pairs.push(("DNS1", a(self.dns1)));
                pairs.push(("DNS2", a(self.dns2)));
            }
            kind => {
                if kind == Kind::Qmi {
                    pairs.push(("APN", s(&self.apn)));
                }
                if matches!(kind, Kind::Pppoe | Kind::Vdsl) {
                    pairs.push(("METHOD", "PPPOE_PLUGIN".into()));
                }
                pairs.push(("USERNAME", s(&self.username)));
                if password_fits_profile(&self.password.0) {
                    pairs.push(("PASSWORD", self.password.0.clone()));
                }
                pairs.push(("AUTH", "pap-or-chap".into()));
                pairs.push(("DNS", "Automatic".into()));
                pairs.push(("TIMEOUT", "15".into()));
            }
        }
        pairs.push(("AUTOCONNECT", "on".into()));
        pairs.push(("RECONNECTION", "persistent".into()));
        pairs.push(("MAXRETRIES", "5".into()));
        pairs.push(("HOLDOFF", "30".into()));
        // The WUI's default: a backup that names the profile itself means "no backup".
        pairs.push(("BACKUPPROFILE", name.clone()));
        let file = format!("settings-{name}");
        let mut doc = Document::default();
        for (k, v) in &pairs {
            doc.set(k, v).map_err(|e| Error::BadValue {
                file: file.clone().into(),
                key: (*k).into(),
                value: if *k == "PASSWORD" {
                    "****".into()
                } else {
                    v.clone()
                },
                msg: e.0,
            })?;
        }
        Ok(doc)
    }
}

fn is_not_found(e: &Error) -> bool {
    matches!(e, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
}

/// Creates `settings-NAME` (atomically, mode 0644 and the owner of the ppp directory, like
/// the WUI's files). Everything is checked first; on bad input nothing is written. An
/// existing profile is refused unless it is an empty WUI slot. Returns the profile's path.
pub fn create(paths: &Paths, new: &NewProfile) -> Result<PathBuf> {
    let doc = new.to_document()?;
    let dir = paths.ppp_dir();
    if !dir.is_dir() {
        return Err(Error::io(
            &dir,
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such directory"),
        ));
    }
    let path = paths.profile(new.name.as_str());
    match fsutil::read_settings(&path) {
        Ok(d) if d.has_no_entries() => {}
        Ok(_) => {
            return Err(Error::usage(
                "NAME",
                format!(
                    "profile {} already exists ({}); delete it first",
                    new.name,
                    path.display()
                ),
            ));
        }
        Err(e) if is_not_found(&e) => {}
        Err(e) => return Err(e),
    }
    // The password first, so that no moment has a profile without its password.
    let side = password_file(paths, &new.name);
    if !new.password.0.is_empty() && !password_fits_profile(&new.password.0) {
        fsutil::ensure_dir(&paths.connectd_dir())?;
        fsutil::replace_atomically(&side, new.password.0.as_bytes(), 0o600)?;
    } else if side.exists() {
        fs::remove_file(&side).at(&side)?;
    }
    fsutil::replace_atomically(&path, doc.to_text().as_bytes(), 0o644)?;
    if let Ok(meta) = fs::metadata(&dir) {
        // Best effort: the WUI (user nobody) owns its profiles; root-owned is fine too.
        if let Err(e) = std::os::unix::fs::chown(&path, Some(meta.uid()), Some(meta.gid())) {
            log::debug!("{}: chown: {e}", path.display());
        }
    }
    log::info!("created profile {} ({})", new.name, new.kind.as_str());
    Ok(path)
}

/// Deletes profile `name`. The active profile is refused (activate another one first). A WUI
/// slot `1`..`5` is emptied, as the WUI leaves deleted slots; a named profile is removed,
/// with its [`password_file`].
pub fn delete(paths: &Paths, name: &ProfileName) -> Result<()> {
    let path = paths.profile(name.as_str());
    let id = fsutil::file_id(&path).ok_or_else(|| Error::NoSuchProfile(name.to_string()))?;
    let settings = paths.ppp_settings();
    if fsutil::file_id(&settings) == Some(id) {
        return Err(Error::usage(
            "NAME",
            format!(
                "profile {name} is active ({} links to it); activate another profile first",
                settings.display()
            ),
        ));
    }
    if name.is_wui_slot() {
        fsutil::replace_atomically(&path, b"", fsutil::mode_or(&path, 0o644))?;
    } else {
        fs::remove_file(&path).at(&path)?;
        fsutil::fsync_dir(&path)?;
    }
    let side = password_file(paths, name);
    if side.exists() {
        fs::remove_file(&side).at(&side)?;
    }
    log::info!("deleted profile {name}");
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The failover chain.
// ---------------------------------------------------------------------------------------

/// The chain of profiles starting at `primary`: `[primary, backup1, backup2, ...]`.
///
/// From `BACKUPPROFILE` in `connectd/settings` when it is set (an ordered list), else by
/// following each profile's own `BACKUPPROFILE` (one that names itself means "no backup";
/// one that leads back to the primary ends the chain there, as IPFire's connectd would
/// alternate). Every profile must exist and load. A missing or empty profile, or a loop
/// (a name twice), is an [`Error::BadValue`] naming the file, `BACKUPPROFILE` and the
/// profile.
pub fn resolve_chain(
    paths: &Paths,
    primary: &ProfileName,
    policy: &crate::ipfire::policy::Policy,
) -> Result<Vec<ProfileName>> {
    let load = |name: &ProfileName, file: &Path, value: &str| -> Result<Profile> {
        let bad = |msg: String| Error::BadValue {
            file: file.to_path_buf(),
            key: "BACKUPPROFILE".into(),
            value: value.into(),
            msg,
        };
        match Profile::load(paths, name) {
            Ok(p) => Ok(p),
            Err(LoadError::Empty) => Err(bad(format!(
                "profile {name} is empty (an unused WUI slot, or being written)"
            ))),
            Err(LoadError::Other(Error::NoSuchProfile(_))) => Err(bad(format!(
                "profile {name} does not exist ({})",
                paths.profile(name.as_str()).display()
            ))),
            Err(LoadError::Other(e)) => Err(e),
        }
    };
    let mut chain = vec![primary.clone()];
    let first = match Profile::load(paths, primary) {
        Ok(p) => p,
        Err(LoadError::Empty) => {
            return Err(Error::Parse {
                file: paths.profile(primary.as_str()),
                line: None,
                msg: "is empty (an unused WUI slot, or being written)".into(),
            });
        }
        Err(LoadError::Other(e)) => return Err(e),
    };
    if !policy.chain.is_empty() {
        let file = paths.policy();
        let value = policy.chain.join(",");
        for n in &policy.chain {
            let name = ProfileName::new(n).map_err(|_| Error::BadValue {
                file: file.clone(),
                key: "BACKUPPROFILE".into(),
                value: value.clone(),
                msg: format!("{n:?} is not a profile name"),
            })?;
            if chain.contains(&name) {
                return Err(Error::BadValue {
                    file: file.clone(),
                    key: "BACKUPPROFILE".into(),
                    value: value.clone(),
                    msg: format!("profile {name} is in the chain twice (a loop)"),
                });
            }
            load(&name, &file, &value)?;
            chain.push(name);
        }
        return Ok(chain);
    }
    let mut cur = first;
    while let Some(next) = cur.backup.clone() {
        let file = paths.profile(cur.name.as_str());
        if next == *primary {
            break;
        }
        if chain.contains(&next) {
            let path: Vec<&str> = chain.iter().map(ProfileName::as_str).collect();
            return Err(Error::BadValue {
                file,
                key: "BACKUPPROFILE".into(),
                value: next.to_string(),
                msg: format!("a loop: {} -> {next}", path.join(" -> ")),
            });
        }
        cur = load(&next, &file, next.as_str())?;
        chain.push(next);
    }
    Ok(chain)
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
    fn names_are_checked_before_any_path() {
        for bad in ["", "../x", "a b", "x/y", ".", "..", "a;b", &"x".repeat(33)] {
            let e = ProfileName::new(bad).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad:?}");
        }
        for good in ["1", "5", "usb-modem", "LTE_2", &"x".repeat(32)] {
            assert!(ProfileName::new(good).is_ok(), "{good:?}");
        }
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

    fn new(name: &str, kind: Kind) -> NewProfile {
        NewProfile::new(ProfileName::new(name).unwrap(), kind)
    }

    #[test]
    fn new_profile_validation_names_the_key() {
        let err = |n: &NewProfile| match n.validate().unwrap_err() {
            Error::Usage { arg, .. } => arg,
            e => panic!("{e}"),
        };
        assert_eq!(err(&new("cable", Kind::Dhcp)), "DEVICE");
        assert!(
            new("3", Kind::Dhcp).validate().is_ok(),
            "WUI slots keep RED_DEV"
        );
        let mut n = new("dsl", Kind::Pppoe);
        n.device = Some("red1".into());
        n.username = Some("a$b".into());
        assert_eq!(err(&n), "USERNAME");
        n.username = Some("user@isp".into());
        n.password = Secret("pass\\word \"q\" 's'".into());
        assert!(n.validate().is_ok(), "pppd takes it");
        n.password = Secret("a\nb".into());
        assert_eq!(err(&n), "PASSWORD");
        n.password = Secret("x".repeat(256));
        assert_eq!(err(&n), "PASSWORD");
        n.password = Secret::default();
        n.apn = Some("internet".into());
        assert_eq!(err(&n), "APN");
        let mut s = new("fibre", Kind::Static);
        s.device = Some("red2".into());
        s.ip = Some(Ipv4Addr::new(203, 0, 113, 10));
        s.netmask = Some(Ipv4Addr::new(255, 255, 255, 0));
        assert_eq!(err(&s), "GATEWAY");
        s.gateway = Some(Ipv4Addr::new(203, 0, 113, 255));
        assert_eq!(err(&s), "GATEWAY");
        s.gateway = Some(Ipv4Addr::new(203, 0, 113, 1));
        assert!(s.validate().is_ok());
        s.netmask = Some(Ipv4Addr::new(255, 0, 255, 0));
        assert_eq!(err(&s), "NETMASK");
        let mut d = new("cable", Kind::Dhcp);
        d.device = Some("red1".into());
        d.ip = Some(Ipv4Addr::new(203, 0, 113, 10));
        assert_eq!(err(&d), "IP");
    }

    #[test]
    fn created_documents_load_back_and_the_shell_keeps_every_line() {
        for kind in [Kind::Pppoe, Kind::Vdsl, Kind::Qmi, Kind::Dhcp, Kind::Static] {
            let mut n = new("p-1", kind);
            n.device = Some("red1".into());
            n.display_name = Some("My line".into());
            if kind.is_dial() {
                n.username = Some("user@isp".into());
                n.password = Secret("se cret#1".into());
            }
            if kind == Kind::Qmi {
                n.apn = Some("internet".into());
            }
            if kind == Kind::Static {
                n.ip = Some(Ipv4Addr::new(198, 51, 100, 2));
                n.netmask = Some(Ipv4Addr::new(255, 255, 255, 0));
                n.gateway = Some(Ipv4Addr::new(198, 51, 100, 1));
            }
            let doc = n.to_document().unwrap();
            assert!(doc.shell_dropped().is_empty(), "{kind:?}");
            let p = Profile::from_doc(
                n.name.clone(),
                Document::parse(&doc.to_text()),
                Path::new("x"),
            )
            .unwrap();
            assert_eq!(p.kind, kind);
            assert_eq!(p.device.as_deref(), Some("red1"));
            assert_eq!(p.display_name, "My line");
            assert_eq!(p.backup, None, "BACKUPPROFILE names itself: no backup");
            if kind.is_dial() {
                assert_eq!(p.password.0, "se cret#1");
            }
        }
        // A password readhash cannot carry is left out of the profile.
        let mut n = new("dsl", Kind::Pppoe);
        n.device = Some("red1".into());
        n.username = Some("u".into());
        n.password = Secret("it's".into());
        assert!(n.to_document().unwrap().get("PASSWORD").is_none());
    }

    #[test]
    fn the_examples_are_valid_profiles() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles.example");
        let mut kinds = Vec::new();
        for e in std::fs::read_dir(&dir).unwrap() {
            let path = e.unwrap().path();
            let doc = crate::ipfire::fsutil::read_settings(&path).unwrap();
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
    fn create_and_load_with_a_password_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("var/ipfire/ppp")).unwrap();
        let paths = Paths::new(dir.path()).unwrap();
        let mut n = new("dsl", Kind::Pppoe);
        n.device = Some("red1".into());
        n.username = Some("u".into());
        n.password = Secret("a'b\"c\\d $x".into());
        let path = create(&paths, &n).unwrap();
        assert!(!std::fs::read_to_string(&path).unwrap().contains("PASSWORD"));
        let p = Profile::load(&paths, &n.name).unwrap();
        assert_eq!(p.password, n.password);
        // Refused the second time, nothing changed.
        assert_eq!(create(&paths, &n).unwrap_err().exit_code(), 2);
        delete(&paths, &n.name).unwrap();
        assert!(!path.exists() && !password_file(&paths, &n.name).exists());
        assert!(matches!(
            delete(&paths, &n.name),
            Err(Error::NoSuchProfile(_))
        ));
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
