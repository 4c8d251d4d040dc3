//! Every file connectd reads, writes or executes, resolved under a root prefix.
//!
//! On a box the root is `/`; tests and the lab pass `--root DIR` (or set `CONNECTD_ROOT`)
//! and nothing outside that directory is touched. This is the only module that spells out
//! IPFire's absolute paths (DESIGN.md section 1), the kernel's `/sys` and `/proc` included:
//! under a test root they are the test's fakes, on a box (root `/`) the kernel's.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The environment variable that sets the root when `--root` is not given.
pub(crate) const ROOT_ENV: &str = "CONNECTD_ROOT";

/// IPFire's paths under one root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    root: PathBuf,
}

impl Paths {
    /// Paths under `root`, which must be an existing directory.
    pub fn new(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        if !root.is_dir() {
            return Err(Error::usage(
                "--root",
                format!("{} is not an existing directory", root.display()),
            ));
        }
        // Absolute: the daemon changes its directory to `/`.
        let root = std::fs::canonicalize(&root)
            .map_err(|e| Error::usage("--root", format!("{}: {e}", root.display())))?;
        Ok(Paths { root })
    }

    /// The root from `--root`, else `CONNECTD_ROOT`, else `/`.
    pub(crate) fn from_arg_or_env(arg: Option<&Path>) -> Result<Self> {
        match arg {
            Some(p) => Self::new(p),
            None => match std::env::var_os(ROOT_ENV) {
                Some(v) if !v.is_empty() => Self::new(PathBuf::from(v)),
                _ => Self::new("/"),
            },
        }
    }

    /// The root prefix itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn at(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// `/var/ipfire/ppp`: the profiles, `settings` and `secrets`.
    pub(crate) fn ppp_dir(&self) -> PathBuf {
        self.at("var/ipfire/ppp")
    }
    /// `/var/ipfire/ppp/settings`: hard link to the active profile.
    pub(crate) fn ppp_settings(&self) -> PathBuf {
        self.at("var/ipfire/ppp/settings")
    }
    /// `/var/ipfire/ppp/settings-NAME`. `name` must already be validated
    /// ([`crate::ipfire::profile::ProfileName`]).
    pub fn profile(&self, name: &str) -> PathBuf {
        self.ppp_dir().join(format!("settings-{name}"))
    }
    /// `/var/ipfire/ppp/secrets`: pppd's credentials, mode 0600.
    pub(crate) fn ppp_secrets(&self) -> PathBuf {
        self.at("var/ipfire/ppp/secrets")
    }
    /// `/var/ipfire/ethernet/settings`: RED_TYPE, RED_DEV and the rest of the NIC setup.
    pub(crate) fn ethernet_settings(&self) -> PathBuf {
        self.at("var/ipfire/ethernet/settings")
    }
    /// `/var/ipfire/red`.
    pub(crate) fn red_dir(&self) -> PathBuf {
        self.at("var/ipfire/red")
    }
    /// `/var/ipfire/red/active`: flag file, present while RED is up.
    pub fn red_active(&self) -> PathBuf {
        self.at("var/ipfire/red/active")
    }
    /// `/var/ipfire/red/iface`: the RED interface name.
    pub fn red_iface(&self) -> PathBuf {
        self.at("var/ipfire/red/iface")
    }
    /// `/var/ipfire/red/device`: the RED interface name on older builds.
    pub(crate) fn red_device(&self) -> PathBuf {
        self.at("var/ipfire/red/device")
    }
    /// `/var/ipfire/red/local-ipaddress`.
    pub(crate) fn red_local_ip(&self) -> PathBuf {
        self.at("var/ipfire/red/local-ipaddress")
    }
    /// `/var/ipfire/red/remote-ipaddress`: the gateway.
    pub(crate) fn red_remote_ip(&self) -> PathBuf {
        self.at("var/ipfire/red/remote-ipaddress")
    }
    /// `/var/ipfire/red/keepconnected`: attempt counter; absent means "the user disconnected".
    pub fn keepconnected(&self) -> PathBuf {
        self.at("var/ipfire/red/keepconnected")
    }
    /// `/var/ipfire/red/current-profile`: kept for older failover scripts.
    pub(crate) fn current_profile(&self) -> PathBuf {
        self.at("var/ipfire/red/current-profile")
    }
    /// `/var/ipfire/red/failover-time`: kept for older failover scripts.
    pub(crate) fn failover_time(&self) -> PathBuf {
        self.at("var/ipfire/red/failover-time")
    }
    /// `/var/run/dns1`.
    pub fn dns1(&self) -> PathBuf {
        self.at("var/run/dns1")
    }
    /// `/var/run/dns2`.
    pub(crate) fn dns2(&self) -> PathBuf {
        self.at("var/run/dns2")
    }
    /// `/var/ipfire/connectd`: our own directory.
    pub(crate) fn connectd_dir(&self) -> PathBuf {
        self.at("var/ipfire/connectd")
    }
    /// `/var/ipfire/connectd/red-stopped`: written by our red.down hook when RED was stopped
    /// deliberately on a type whose stop keeps `red/keepconnected` (DHCP, STATIC, QMI), or
    /// at shutdown; removed by `connectd start` (DESIGN.md 1.1).
    pub fn red_stopped(&self) -> PathBuf {
        self.at("var/ipfire/connectd/red-stopped")
    }
    /// `/var/run/connectd-proof`: the failback proof session's options file (0600), its
    /// ip-up/ip-down scripts and what they report.
    pub(crate) fn proof_dir(&self) -> PathBuf {
        self.at("var/run/connectd-proof")
    }
    /// `/var/ipfire/connectd/settings`: the failover policy.
    pub fn policy(&self) -> PathBuf {
        self.at("var/ipfire/connectd/settings")
    }
    /// `/var/ipfire/connectd/state`: JSON state and switch journal.
    pub fn state(&self) -> PathBuf {
        self.at("var/ipfire/connectd/state")
    }
    /// `/var/ipfire/connectd/history`: the last 24 hours for the web UI's timeline (JSON).
    pub fn history(&self) -> PathBuf {
        self.at("var/ipfire/connectd/history")
    }
    /// `/var/ipfire/connectd/api-token`: the HTTP API's bearer token, mode 0600.
    pub fn api_token(&self) -> PathBuf {
        self.at("var/ipfire/connectd/api-token")
    }
    /// `/var/run/connectd.pid`: pidfile, flock-ed by the running supervisor.
    pub fn pidfile(&self) -> PathBuf {
        self.at("var/run/connectd.pid")
    }
    /// `/var/run/connectd.sock`: the control socket.
    pub fn control_socket(&self) -> PathBuf {
        self.at("var/run/connectd.sock")
    }
    /// `/sys`: interfaces' carrier, flags and counters (`class/net/NAME/...`).
    pub fn sys(&self) -> PathBuf {
        self.at("sys")
    }
    /// `/sys/class/net/NAME`: one network interface. `name` must already be checked
    /// ([`crate::ipfire::profile::valid_device`]) or come from the kernel.
    pub fn sys_net(&self, name: &str) -> PathBuf {
        self.sys().join("class/net").join(name)
    }
    /// `/proc`: processes (pppd, dhcpcd of RED).
    pub fn proc(&self) -> PathBuf {
        self.at("proc")
    }
    /// `/etc/rc.d/init.d/network`: IPFire's network script.
    pub(crate) fn network_script(&self) -> PathBuf {
        self.at("etc/rc.d/init.d/network")
    }
    /// `/etc/rc.d/init.d/networking/failover.d`: event hooks.
    pub(crate) fn hooks_dir(&self) -> PathBuf {
        self.at("etc/rc.d/init.d/networking/failover.d")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_stays_under_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let p = Paths::new(dir.path()).unwrap();
        for path in [
            p.ppp_settings(),
            p.profile("1"),
            p.ppp_secrets(),
            p.ethernet_settings(),
            p.red_active(),
            p.keepconnected(),
            p.policy(),
            p.state(),
            p.pidfile(),
            p.control_socket(),
            p.network_script(),
            p.hooks_dir(),
            p.dns1(),
            p.sys(),
            p.sys_net("red0"),
            p.proc(),
        ] {
            assert!(path.starts_with(dir.path()), "{}", path.display());
        }
    }

    #[test]
    fn the_kernels_trees_are_the_real_ones_on_a_box() {
        let p = Paths::new("/").unwrap();
        assert_eq!(p.sys(), Path::new("/sys"));
        assert_eq!(p.sys_net("red0"), Path::new("/sys/class/net/red0"));
        assert_eq!(p.proc(), Path::new("/proc"));
    }

    #[test]
    fn missing_root_is_a_usage_error() {
        let err = Paths::new("/nonexistent/connectd-root").unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("--root"));
    }
}
