//! The profiles on disk: [`list`] them, [`create`] one from a [`NewProfile`] (checked by
//! [`NewProfile::validate`] before any path is built or byte written), [`delete`] one.

use std::fs;
use std::net::Ipv4Addr;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use crate::error::{Error, IoContext, Result};
use crate::ipfire::fsutil;
use crate::ipfire::paths::Paths;
use crate::ipfire::profile::load::{Kind, LoadError, Profile, StaticCfg, is_not_found, nonempty};
use crate::ipfire::profile::name::{ProfileName, valid_device};
use crate::ipfire::profile::secret::{
    Secret, check_password, password_file, password_fits_profile,
};
use crate::ipfire::readhash::Document;

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
    /// the readhash cannot carry is left out (see [`super::password_file`]).
    pub(crate) fn to_document(&self) -> Result<Document> {
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
/// with its [`super::password_file`].
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

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests build fixtures with plain writes
mod tests {
    use std::path::Path;

    use super::*;

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
}
