//! The failover policy: `/var/ipfire/connectd/settings` (DESIGN.md section 3), typed once.
//!
//! The WUI rebuilds `ppp/settings-N` from its form on every Save, so our keys live in a file
//! of their own. Older failover scripts put `FAILOVER_*`/`FAILBACK_*` into the primary
//! profile; those are still read when our file lacks them ([`Policy::load`] reports which, so
//! the supervisor can copy them over once). Unknown keys are kept and ignored; an invalid
//! value is an [`Error::BadValue`] naming file, key and value.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::ipfire::readhash::Document;

/// Keys of ours that may still sit in the primary profile (older failover scripts).
const LEGACY_PREFIXES: [&str; 2] = ["FAILOVER_", "FAILBACK_"];

/// One probe target of `FAILOVER_CHECK_HOST`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetSpec {
    /// ICMP echo to an IPv4 address or a name.
    Icmp(String),
    /// TCP connect, written `tcp:HOST:PORT`.
    Tcp(String, u16),
}

impl std::fmt::Display for TargetSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TargetSpec::Icmp(h) => f.write_str(h),
            TargetSpec::Tcp(h, p) => write!(f, "tcp:{h}:{p}"),
        }
    }
}

/// The typed policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// FAILOVER_ENABLED: off means "exactly IPFire's original connectd".
    pub enabled: bool,
    /// BACKUPPROFILE in our file: the ordered chain. Empty: take the profile's BACKUPPROFILE.
    pub chain: Vec<String>,
    /// `DEVICE_<NAME>`: the RED device of a profile, winning over the profile's DEVICE.
    pub devices: BTreeMap<String, String>,
    /// FAILOVER_CONNECT_TIMEOUT.
    pub connect_timeout: Duration,
    /// FAILOVER_CHECK_HOST.
    pub check_hosts: Vec<TargetSpec>,
    /// FAILOVER_CHECK_INTERVAL.
    pub check_interval: Duration,
    /// FAILOVER_CHECK_TIMEOUT.
    pub check_timeout: Duration,
    /// FAILOVER_RELIABILITY: targets that must answer for a round to pass.
    pub reliability: usize,
    /// FAILOVER_FAILURES: consecutive failed rounds that mean "down".
    pub failures: u32,
    /// FAILOVER_CHECK_DNS: a query to the uplink's DNS servers is a target. It only
    /// corroborates: it never makes a round pass while every ICMP/TCP target is silent
    /// (`uplink::health::monitor`), unless it is the only kind of target.
    pub check_dns: bool,
    /// FAILOVER_CHECK_DNS_NAME: the zone (an apex that exists, without a wildcard) under
    /// which every DNS probe asks a fresh random name; only a denial carrying this zone's
    /// SOA counts (`uplink::health::dns`).
    pub dns_name: String,
    /// FAILOVER_MAX_LOSS in percent over the window; `None` = off.
    pub max_loss_pct: Option<u8>,
    /// FAILOVER_MAX_RTT over the window; `None` = off.
    pub max_rtt: Option<Duration>,
    /// FAILOVER_WINDOW: rounds in the sliding window for loss/RTT.
    pub window: usize,
    /// FAILBACK_ENABLED.
    pub failback_enabled: bool,
    /// FAILBACK_DELAY.
    pub failback_delay: Duration,
    /// FAILBACK_ATTEMPTS.
    pub failback_attempts: u32,
    /// FAILBACK_GRACE.
    pub failback_grace: Duration,
    /// FAILBACK_DELAY_MAX.
    pub failback_delay_max: Duration,
    /// FAILBACK_VOTE_WINDOW: the FAILBACK_ATTEMPTS pre-tests of the primary are spread
    /// evenly over it (DESIGN.md 5.1, "a timed vote").
    pub failback_vote_window: Duration,
    /// FAILOVER_PRETEST_INTERVAL: how often every other profile of the chain is pre-tested
    /// in the background; `None` = off (no background pre-tests, none on a suspect round).
    pub pretest_interval: Option<Duration>,
    /// FAILOVER_PRETEST_SKIP: profiles never pre-tested in the background (metered links);
    /// they are still pre-tested when a failover is about to use them.
    pub pretest_skip: Vec<String>,
    /// HOOK_TIMEOUT: seconds a failover.d hook may run.
    pub hook_timeout: Duration,
    /// API_ENABLED.
    pub api_enabled: bool,
    /// API_LISTEN.
    pub api_listen: SocketAddr,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            enabled: false,
            chain: Vec::new(),
            devices: BTreeMap::new(),
            connect_timeout: Duration::from_secs(60),
            check_hosts: ["9.9.9.9", "1.1.1.1", "8.8.8.8"]
                .into_iter()
                .map(|h| TargetSpec::Icmp(h.into()))
                .collect(),
            check_interval: Duration::from_secs(2),
            check_timeout: Duration::from_secs(1),
            reliability: 1,
            failures: 3,
            check_dns: true,
            dns_name: "ipfire.org".into(),
            max_loss_pct: None,
            max_rtt: None,
            window: 30,
            failback_enabled: true,
            failback_delay: Duration::from_secs(300),
            failback_attempts: 3,
            failback_grace: Duration::from_secs(30),
            failback_delay_max: Duration::from_secs(3600),
            failback_vote_window: Duration::from_secs(30),
            pretest_interval: Some(Duration::from_secs(300)),
            pretest_skip: Vec::new(),
            hook_timeout: Duration::from_secs(30),
            api_enabled: false,
            api_listen: SocketAddr::from(([127, 0, 0, 1], 8780)),
        }
    }
}

/// Where each key came from, for the one-time migration out of the profile.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Loaded {
    /// Keys read from the primary profile because our file lacks them, with their values.
    pub legacy: Vec<(String, String)>,
}

struct Src<'a> {
    file: &'a Path,
}

impl Src<'_> {
    fn bad(&self, key: &str, value: &str, msg: impl Into<String>) -> Error {
        Error::BadValue {
            file: self.file.to_path_buf(),
            key: key.into(),
            value: value.into(),
            msg: msg.into(),
        }
    }
}

/// Parses `on/off`, `yes/no`, `true/false`, `1/0`, case-insensitively.
pub(crate) fn parse_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "on" | "yes" | "true" | "1" | "enabled" => Some(true),
        "off" | "no" | "false" | "0" | "disabled" | "" => Some(false),
        _ => None,
    }
}

/// Parses seconds, whole or with a fraction (`2`, `0.5`), at millisecond precision.
pub(crate) fn parse_secs(v: &str) -> Option<Duration> {
    let v = v.trim();
    let (whole, frac) = v.split_once('.').unwrap_or((v, ""));
    if whole.is_empty() && frac.is_empty() {
        return None;
    }
    if !whole.chars().all(|c| c.is_ascii_digit()) || !frac.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let secs: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let mut ms = 0u64;
    for (i, c) in frac.chars().take(3).enumerate() {
        ms += u64::from(c.to_digit(10)?) * 10u64.pow(2 - i as u32);
    }
    Some(Duration::from_secs(secs) + Duration::from_millis(ms))
}

fn parse_targets(v: &str) -> Option<Vec<TargetSpec>> {
    let mut out = Vec::new();
    for item in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if let Some(rest) = item.strip_prefix("tcp:") {
            let (host, port) = rest.rsplit_once(':')?;
            let port: u16 = port.parse().ok().filter(|&p| p != 0)?;
            if !valid_host(host) {
                return None;
            }
            out.push(TargetSpec::Tcp(host.into(), port));
        } else if valid_host(item) {
            out.push(TargetSpec::Icmp(item.into()));
        } else {
            return None;
        }
    }
    Some(out)
}

fn valid_host(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
}

impl Policy {
    /// Builds the policy from our file (`ours`, at `ours_path`) and, for keys our file lacks,
    /// the primary profile (`profile`). Either may be absent.
    pub fn from_docs(
        ours: Option<&Document>,
        ours_path: &Path,
        profile: Option<(&Document, &Path)>,
    ) -> Result<(Policy, Loaded)> {
        let mut p = Policy::default();
        let mut loaded = Loaded::default();
        let empty = Document::default();
        let doc = ours.unwrap_or(&empty);
        let src = Src { file: ours_path };

        // Our file first, then the legacy keys of the profile.
        let mut pairs: Vec<(String, String, PathBuf)> = doc
            .entries()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string(), ours_path.to_path_buf()))
            .collect();
        if let Some((pdoc, ppath)) = profile {
            for (k, v) in pdoc.entries() {
                let legacy = LEGACY_PREFIXES.iter().any(|pre| k.starts_with(pre));
                if legacy && doc.get(k).is_none() {
                    loaded.legacy.push((k.to_string(), v.to_string()));
                    pairs.push((k.to_string(), v.to_string(), ppath.to_path_buf()));
                }
            }
        }

        for (key, value, file) in &pairs {
            let src = Src { file };
            let secs = || {
                parse_secs(value)
                    .ok_or_else(|| src.bad(key, value, "expected seconds, e.g. 30 or 0.5"))
            };
            let boolean =
                || parse_bool(value).ok_or_else(|| src.bad(key, value, "expected on or off"));
            let count = |min: u64| -> Result<u64> {
                value
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|&n| n >= min && n <= 1_000_000)
                    .ok_or_else(|| src.bad(key, value, format!("expected a whole number >= {min}")))
            };
            match key.as_str() {
                "FAILOVER_ENABLED" => p.enabled = boolean()?,
                "BACKUPPROFILE" => {
                    p.chain = value
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(String::from)
                        .collect();
                    for name in &p.chain {
                        if crate::ipfire::profile::name::ProfileName::new(name).is_err() {
                            return Err(src.bad(
                                key,
                                value,
                                format!("{name:?} is not a profile name"),
                            ));
                        }
                    }
                }
                "FAILOVER_CONNECT_TIMEOUT" => {
                    p.connect_timeout = nonzero(secs()?, &src, key, value)?
                }
                "FAILOVER_CHECK_HOST" => {
                    p.check_hosts = parse_targets(value).ok_or_else(|| {
                        src.bad(
                        key,
                        value,
                        "expected a comma-separated list of IPv4 addresses, names or tcp:HOST:PORT",
                    )
                    })?
                }
                "FAILOVER_CHECK_INTERVAL" => p.check_interval = nonzero(secs()?, &src, key, value)?,
                "FAILOVER_CHECK_TIMEOUT" => p.check_timeout = nonzero(secs()?, &src, key, value)?,
                "FAILOVER_RELIABILITY" => p.reliability = count(1)? as usize,
                "FAILOVER_FAILURES" => p.failures = count(1)? as u32,
                "FAILOVER_CHECK_DNS" => p.check_dns = boolean()?,
                "FAILOVER_CHECK_DNS_NAME" => {
                    let v = value.trim().trim_end_matches('.');
                    if !valid_host(v) || !v.contains('.') {
                        return Err(src.bad(
                            key,
                            value,
                            "expected a zone such as ipfire.org (random names are asked under it)",
                        ));
                    }
                    p.dns_name = v.to_string();
                }
                "FAILOVER_MAX_LOSS" => {
                    p.max_loss_pct = match parse_bool(value) {
                        Some(false) => None,
                        _ => Some(
                            value
                                .trim()
                                .trim_end_matches('%')
                                .parse::<u8>()
                                .ok()
                                .filter(|&n| (1..=100).contains(&n))
                                .ok_or_else(|| {
                                    src.bad(key, value, "expected off or a percentage 1..100")
                                })?,
                        ),
                    }
                }
                "FAILOVER_MAX_RTT" => {
                    p.max_rtt = match parse_bool(value) {
                        Some(false) => None,
                        _ => Some(Duration::from_millis(
                            value
                                .trim()
                                .trim_end_matches("ms")
                                .parse::<u64>()
                                .ok()
                                .filter(|&n| n >= 1)
                                .ok_or_else(|| {
                                    src.bad(key, value, "expected off or milliseconds")
                                })?,
                        )),
                    }
                }
                "FAILOVER_WINDOW" => p.window = count(1)? as usize,
                "FAILBACK_ENABLED" => p.failback_enabled = boolean()?,
                "FAILBACK_DELAY" => p.failback_delay = secs()?,
                "FAILBACK_ATTEMPTS" => p.failback_attempts = count(1)? as u32,
                "FAILBACK_GRACE" => p.failback_grace = secs()?,
                "FAILBACK_DELAY_MAX" => p.failback_delay_max = secs()?,
                "FAILBACK_VOTE_WINDOW" => {
                    p.failback_vote_window = secs()?;
                    if p.failback_vote_window > Duration::from_secs(3600) {
                        return Err(src.bad(key, value, "expected seconds from 0 to 3600"));
                    }
                }
                "FAILOVER_PRETEST_INTERVAL" => {
                    p.pretest_interval = match parse_bool(value) {
                        Some(false) => None,
                        _ => Some(
                            parse_secs(value)
                                .filter(|d| {
                                    *d >= Duration::from_secs(60)
                                        && *d <= Duration::from_secs(86_400)
                                })
                                .ok_or_else(|| {
                                    src.bad(key, value, "expected off or seconds from 60 to 86400")
                                })?,
                        ),
                    }
                }
                "FAILOVER_PRETEST_SKIP" => {
                    p.pretest_skip = value
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(String::from)
                        .collect();
                    for name in &p.pretest_skip {
                        if crate::ipfire::profile::name::ProfileName::new(name).is_err() {
                            return Err(src.bad(
                                key,
                                value,
                                format!("{name:?} is not a profile name"),
                            ));
                        }
                    }
                }
                "HOOK_TIMEOUT" => p.hook_timeout = nonzero(secs()?, &src, key, value)?,
                "API_ENABLED" => p.api_enabled = boolean()?,
                "API_LISTEN" => {
                    p.api_listen = value.trim().parse().map_err(|_| {
                        src.bad(key, value, "expected ADDRESS:PORT, e.g. 127.0.0.1:8780")
                    })?
                }
                k if k.starts_with("DEVICE_") => {
                    let name = &k["DEVICE_".len()..];
                    let dev = value.trim();
                    if !crate::ipfire::profile::name::valid_device(dev) {
                        return Err(src.bad(key, value, "not a network interface name"));
                    }
                    p.devices.insert(name.to_string(), dev.to_string());
                }
                _ => {} // unknown keys are kept in the file and ignored
            }
        }

        let targets = p.check_hosts.len() + usize::from(p.check_dns);
        if p.enabled && p.check_hosts.is_empty() && !p.check_dns {
            return Err(src.bad(
                "FAILOVER_CHECK_HOST",
                "",
                "failover needs at least one target",
            ));
        }
        if p.reliability > targets.max(1) {
            return Err(src.bad(
                "FAILOVER_RELIABILITY",
                &p.reliability.to_string(),
                format!("more than the {targets} targets there are"),
            ));
        }
        if p.failback_delay_max < p.failback_delay {
            p.failback_delay_max = p.failback_delay;
        }
        Ok((p, loaded))
    }

    /// Reads `connectd/settings` (absent = defaults) and the primary profile's legacy keys.
    pub fn load(
        paths: &crate::ipfire::paths::Paths,
        primary: Option<&str>,
    ) -> Result<(Policy, Loaded)> {
        let ours_path = paths.policy();
        let ours = match crate::ipfire::fsutil::read_settings(&ours_path) {
            Ok(d) => Some(d),
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        let prof_path = primary.map(|n| paths.profile(n));
        let prof = match &prof_path {
            Some(p) => crate::ipfire::fsutil::read_settings(p).ok(),
            None => None,
        };
        match (&prof, &prof_path) {
            (Some(d), Some(pp)) => Policy::from_docs(ours.as_ref(), &ours_path, Some((d, pp))),
            _ => Policy::from_docs(ours.as_ref(), &ours_path, None),
        }
    }

    /// FAILOVER_PRETEST_SKIP must name profiles of the chain (`chain`: the primary and its
    /// backups, as resolved): a typo would silently pre-test a metered link.
    pub fn check_pretest_skip(
        &self,
        paths: &crate::ipfire::paths::Paths,
        chain: &[&str],
    ) -> Result<()> {
        for name in &self.pretest_skip {
            if !chain.contains(&name.as_str()) {
                let src = Src {
                    file: &paths.policy(),
                };
                return Err(src.bad(
                    "FAILOVER_PRETEST_SKIP",
                    &self.pretest_skip.join(","),
                    format!("{name} is not a profile of the failover chain"),
                ));
            }
        }
        Ok(())
    }

    /// The RED device for profile `name`: `DEVICE_<NAME>` from our file wins.
    pub(crate) fn device_override(&self, name: &str) -> Option<&str> {
        self.devices.get(name).map(String::as_str)
    }
}

fn nonzero(d: Duration, src: &Src<'_>, key: &str, value: &str) -> Result<Duration> {
    if d.is_zero() {
        Err(src.bad(key, value, "must be more than 0"))
    } else {
        Ok(d)
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests build fixtures with plain writes
mod tests {
    use super::*;

    fn load(ours: &str, profile: Option<&str>) -> Result<(Policy, Loaded)> {
        let o = Document::parse(ours);
        let pd = profile.map(Document::parse);
        Policy::from_docs(
            Some(&o),
            Path::new("/var/ipfire/connectd/settings"),
            pd.as_ref()
                .map(|d| (d, Path::new("/var/ipfire/ppp/settings-1"))),
        )
    }

    #[test]
    fn defaults_match_the_design_table() {
        let (p, _) = load("", None).unwrap();
        assert!(!p.enabled);
        assert_eq!(p.check_hosts.len(), 3);
        assert_eq!(p.check_interval, Duration::from_secs(2));
        assert_eq!(p.failures, 3);
        assert_eq!(p.failback_delay, Duration::from_secs(300));
        assert_eq!(p.failback_attempts, 3);
        assert_eq!(p.api_listen.to_string(), "127.0.0.1:8780");
    }

    #[test]
    fn vote_window_and_background_pretest_keys() {
        let (p, _) = load("", None).unwrap();
        assert_eq!(p.failback_vote_window, Duration::from_secs(30));
        assert_eq!(p.pretest_interval, Some(Duration::from_secs(300)));
        assert!(p.pretest_skip.is_empty());
        let (p, _) = load(
            "FAILBACK_VOTE_WINDOW=90\nFAILOVER_PRETEST_INTERVAL=off\nFAILOVER_PRETEST_SKIP=3, 4\n",
            None,
        )
        .unwrap();
        assert_eq!(p.failback_vote_window, Duration::from_secs(90));
        assert_eq!(p.pretest_interval, None);
        assert_eq!(p.pretest_skip, vec!["3", "4"]);
        let (p, _) = load("FAILOVER_PRETEST_INTERVAL=600", None).unwrap();
        assert_eq!(p.pretest_interval, Some(Duration::from_secs(600)));
        // validated against the chain as resolved
        let paths = crate::ipfire::paths::Paths::new("/").unwrap();
        let chain = ["1", "3"];
        let (p, _) = load("FAILOVER_PRETEST_SKIP=3", None).unwrap();
        assert!(p.check_pretest_skip(&paths, &chain).is_ok());
        let (p, _) = load("FAILOVER_PRETEST_SKIP=3,4", None).unwrap();
        let msg = p
            .check_pretest_skip(&paths, &chain)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("connectd/settings")
                && msg.contains("FAILOVER_PRETEST_SKIP")
                && msg.contains("4 is not a profile of the failover chain"),
            "{msg}"
        );
    }

    #[test]
    fn reads_the_fixture_policy() {
        let text =
            std::fs::read_to_string("../shared/fixtures/ipfire-box/var/ipfire/connectd/settings");
        let Ok(text) = text else {
            eprintln!("skipped: ../shared/fixtures not present");
            return;
        };
        let (p, _) = load(&text, None).unwrap();
        assert!(p.enabled);
        assert_eq!(p.chain, vec!["2"]);
        assert_eq!(p.device_override("2"), Some("wwan0"));
    }

    #[test]
    fn legacy_keys_in_the_profile_are_read_when_ours_lack_them() {
        let (p, l) = load(
            "FAILBACK_DELAY=60\n",
            Some("FAILBACK_DELAY=10\nFAILOVER_ENABLED=on\nTYPE=pppoe\n"),
        )
        .unwrap();
        assert!(p.enabled);
        assert_eq!(p.failback_delay, Duration::from_secs(60), "ours wins");
        assert_eq!(
            l.legacy,
            vec![("FAILOVER_ENABLED".to_string(), "on".to_string())]
        );
    }

    #[test]
    fn invalid_values_name_file_key_and_value() {
        for (text, key) in [
            ("FAILOVER_CHECK_INTERVAL=fast", "FAILOVER_CHECK_INTERVAL"),
            ("FAILOVER_ENABLED=maybe", "FAILOVER_ENABLED"),
            ("FAILOVER_RELIABILITY=9", "FAILOVER_RELIABILITY"),
            (
                "FAILOVER_CHECK_HOST=9.9.9.9,bad host",
                "FAILOVER_CHECK_HOST",
            ),
            ("FAILOVER_CHECK_HOST=tcp:1.2.3.4:0", "FAILOVER_CHECK_HOST"),
            ("BACKUPPROFILE=2,../x", "BACKUPPROFILE"),
            ("DEVICE_2=a/b", "DEVICE_2"),
            ("API_LISTEN=nowhere", "API_LISTEN"),
            ("FAILOVER_MAX_LOSS=150", "FAILOVER_MAX_LOSS"),
            ("FAILOVER_CHECK_TIMEOUT=0", "FAILOVER_CHECK_TIMEOUT"),
            ("FAILBACK_VOTE_WINDOW=soon", "FAILBACK_VOTE_WINDOW"),
            ("FAILBACK_VOTE_WINDOW=7200", "FAILBACK_VOTE_WINDOW"),
            ("FAILOVER_PRETEST_INTERVAL=10", "FAILOVER_PRETEST_INTERVAL"),
            (
                "FAILOVER_PRETEST_INTERVAL=often",
                "FAILOVER_PRETEST_INTERVAL",
            ),
            ("FAILOVER_PRETEST_SKIP=2,../x", "FAILOVER_PRETEST_SKIP"),
        ] {
            let e = load(text, None).unwrap_err();
            let msg = e.to_string();
            assert!(
                msg.contains("connectd/settings") && msg.contains(key),
                "{msg}"
            );
            assert_eq!(e.exit_code(), 2);
        }
    }

    #[test]
    fn parses_targets_fractions_and_quality_triggers() {
        let (p, _) = load(
            "FAILOVER_CHECK_HOST=203.0.113.1, dns.example ,tcp:203.0.113.2:443\n\
             FAILOVER_CHECK_TIMEOUT=0.25\nFAILOVER_MAX_LOSS=20%\nFAILOVER_MAX_RTT=300\nUNKNOWN=1\n",
            None,
        )
        .unwrap();
        assert_eq!(
            p.check_hosts,
            vec![
                TargetSpec::Icmp("203.0.113.1".into()),
                TargetSpec::Icmp("dns.example".into()),
                TargetSpec::Tcp("203.0.113.2".into(), 443)
            ]
        );
        assert_eq!(p.check_timeout, Duration::from_millis(250));
        assert_eq!(p.max_loss_pct, Some(20));
        assert_eq!(p.max_rtt, Some(Duration::from_millis(300)));
    }
}
