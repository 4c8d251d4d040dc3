//! What a round probes: the [`Target`]s, built once per policy load by [`build_targets`]
//! (names in `FAILOVER_CHECK_HOST` resolved there, never on the probe path), what a probe
//! of one found ([`TargetResult`]) and the seam that runs a round ([`Prober`]).

use std::net::{Ipv4Addr, SocketAddrV4, ToSocketAddrs};
use std::time::Duration;

use crate::ipfire::paths::Paths;
use crate::ipfire::policy::{Policy, TargetSpec};

/// The default zone under which the DNS probe asks a fresh random name (type A); see
/// `dns` for what an answer must show.
pub const DNS_PROBE_NAME: &str = "ipfire.org";

/// TCP ports that transparent proxies and captive portals commonly take over: a SYN-ACK on
/// them may come from a middlebox on the ISP's side whatever lies beyond it, so a `tcp:`
/// target on one of them only corroborates (like DNS).
pub(crate) const INTERCEPTED_PORTS: [u16; 7] = [53, 80, 443, 3128, 8000, 8080, 8443];

/// What a target is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// An internet target whose answer proves the path (ICMP echo, TCP connect to a port
    /// middleboxes leave alone): votes on the verdict.
    Internet,
    /// An internet target whose answer a box on the ISP's side can give without the
    /// upstream (the uplink's resolver, a TCP port a transparent proxy takes over): counts
    /// towards RELIABILITY, but never makes a round pass while every [`Role::Internet`]
    /// target is silent. Alone (no `Internet` target configured) it votes like one.
    Corroborating,
    /// The uplink's gateway (`red/remote-ipaddress`): probed and reported, never voted.
    Gateway,
}

/// How a target is probed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// ICMP echo.
    Icmp(Ipv4Addr),
    /// A DNS query over UDP to each server for a fresh random name under the zone
    /// (FAILOVER_CHECK_DNS_NAME); any one server's answer that proves it reached the
    /// zone's authority (`dns::proves_path`) passes the target.
    Dns(Vec<Ipv4Addr>, String),
    /// TCP connect.
    Tcp(SocketAddrV4),
    /// A name that did not resolve when the targets were built: fails every round with the
    /// reason, so a typo in FAILOVER_CHECK_HOST is visible in `check` and `status`.
    Unresolved(String),
}

/// One probe target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The label shown in status: the host as written in the policy, `dns`, or the gateway.
    pub host: String,
    /// How it is probed.
    pub probe: Probe,
    /// Whether it votes.
    pub role: Role,
}

impl Target {
    /// An internet ICMP target.
    pub fn icmp(addr: Ipv4Addr) -> Target {
        Target {
            host: addr.to_string(),
            probe: Probe::Icmp(addr),
            role: Role::Internet,
        }
    }

    /// The gateway, probed with ICMP echo.
    pub fn gateway(addr: Ipv4Addr) -> Target {
        Target {
            host: addr.to_string(),
            probe: Probe::Icmp(addr),
            role: Role::Gateway,
        }
    }
}

/// The outcome of probing one target in one round. A failure is data, not an error.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TargetResult {
    /// [`Target::host`].
    pub host: String,
    /// [`Target::role`].
    pub role: Role,
    /// Round-trip time when it answered.
    pub rtt: Option<Duration>,
    /// Why it did not, when it did not.
    pub error: Option<String>,
}

impl TargetResult {
    /// An answer after `rtt`.
    pub fn ok(target: &Target, rtt: Duration) -> TargetResult {
        TargetResult {
            host: target.host.clone(),
            role: target.role,
            rtt: Some(rtt),
            error: None,
        }
    }

    /// No answer, for `reason`.
    pub fn failed(target: &Target, reason: impl Into<String>) -> TargetResult {
        TargetResult {
            host: target.host.clone(),
            role: target.role,
            rtt: None,
            error: Some(reason.into()),
        }
    }

    /// Whether the target answered.
    pub fn answered(&self) -> bool {
        self.rtt.is_some()
    }
}

impl Role {
    /// Whether targets of this role count towards RELIABILITY (the gateway does not).
    pub fn votes(self) -> bool {
        matches!(self, Role::Internet | Role::Corroborating)
    }
}

/// The seam between the supervisor and the network: one round of probes.
pub trait Prober {
    /// Probes every target once, in parallel, out of interface `iface`, waiting at most
    /// `timeout` for replies. Returns one result per target, in the order of `targets`.
    fn round(&mut self, iface: &str, targets: &[Target], timeout: Duration) -> Vec<TargetResult>;

    /// Devices whose loss of carrier ends a round at once (the supervisor then acts on the
    /// carrier loss instead of waiting out the round's timeout). Default: none.
    fn watch(&mut self, _devices: &[String]) {}
}

impl<P: Prober + ?Sized> Prober for Box<P> {
    fn round(&mut self, iface: &str, targets: &[Target], timeout: Duration) -> Vec<TargetResult> {
        (**self).round(iface, targets, timeout)
    }

    fn watch(&mut self, devices: &[String]) {
        (**self).watch(devices);
    }
}

/// Resolves `host` to its first IPv4 address.
fn resolve(host: &str) -> Result<Ipv4Addr, String> {
    if let Ok(a) = host.parse::<Ipv4Addr>() {
        return Ok(a);
    }
    let addrs = (host, 0)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?;
    addrs
        .filter_map(|a| match a {
            std::net::SocketAddr::V4(v4) => Some(*v4.ip()),
            std::net::SocketAddr::V6(_) => None,
        })
        .next()
        .ok_or_else(|| format!("{host} has no IPv4 address"))
}

/// The uplink's DNS servers from `/var/run/dns1` and `dns2` (missing or bad files skipped).
pub fn dns_servers(paths: &Paths) -> Vec<Ipv4Addr> {
    let mut out = Vec::new();
    for p in [paths.dns1(), paths.dns2()] {
        if let Some(a) =
            crate::ipfire::fsutil::read_word(&p).and_then(|w| w.parse::<Ipv4Addr>().ok())
        {
            if !a.is_unspecified() && !out.contains(&a) {
                out.push(a);
            }
        }
    }
    out
}

/// The gateway from `red/remote-ipaddress`, if it holds an address.
pub fn gateway(paths: &Paths) -> Option<Ipv4Addr> {
    crate::ipfire::fsutil::read_word(&paths.red_remote_ip())
        .and_then(|w| w.parse::<Ipv4Addr>().ok())
        .filter(|a| !a.is_unspecified())
}

/// The targets of a round under `policy`: FAILOVER_CHECK_HOST in order (names resolved
/// now, once), then the DNS target when FAILOVER_CHECK_DNS is on and the uplink has DNS
/// servers, then the gateway when `red/remote-ipaddress` names one. Call again when the
/// policy is reloaded or the uplink changed (new DNS servers, new gateway).
pub fn build_targets(policy: &Policy, paths: &Paths) -> Vec<Target> {
    let mut out: Vec<Target> = policy
        .check_hosts
        .iter()
        .map(|spec| {
            let host = spec.to_string();
            let probe = match spec {
                TargetSpec::Icmp(h) => match resolve(h) {
                    Ok(a) => Probe::Icmp(a),
                    Err(e) => Probe::Unresolved(e),
                },
                TargetSpec::Tcp(h, port) => match resolve(h) {
                    Ok(a) => Probe::Tcp(SocketAddrV4::new(a, *port)),
                    Err(e) => Probe::Unresolved(e),
                },
            };
            let role = match spec {
                TargetSpec::Tcp(_, port) if INTERCEPTED_PORTS.contains(port) => Role::Corroborating,
                _ => Role::Internet,
            };
            Target { host, probe, role }
        })
        .collect();
    if policy.check_dns {
        let servers = dns_servers(paths);
        if !servers.is_empty() {
            out.push(Target {
                host: format!(
                    "dns:{}",
                    servers
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(",")
                ),
                probe: Probe::Dns(servers, policy.dns_name.clone()),
                role: Role::Corroborating,
            });
        }
    }
    if let Some(gw) = gateway(paths) {
        out.push(Target::gateway(gw));
    }
    out
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests build fixtures with plain writes
mod tests {
    use super::*;

    #[test]
    fn targets_come_from_policy_dns_files_and_gateway() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::new(dir.path()).unwrap();
        std::fs::create_dir_all(dir.path().join("var/run")).unwrap();
        std::fs::create_dir_all(paths.red_dir()).unwrap();
        std::fs::write(paths.dns1(), "198.51.100.53\n").unwrap();
        std::fs::write(paths.dns2(), "garbage").unwrap();
        std::fs::write(paths.red_remote_ip(), "198.51.100.1").unwrap();
        let policy = Policy {
            check_hosts: vec![
                TargetSpec::Icmp("203.0.113.1".into()),
                TargetSpec::Tcp("203.0.113.2".into(), 443),
            ],
            ..Policy::default()
        };
        let t = build_targets(&policy, &paths);
        assert_eq!(t.len(), 4, "{t:?}");
        assert_eq!(t[0].probe, Probe::Icmp(Ipv4Addr::new(203, 0, 113, 1)));
        assert_eq!(t[1].probe, Probe::Tcp("203.0.113.2:443".parse().unwrap()));
        assert_eq!(t[1].host, "tcp:203.0.113.2:443");
        assert_eq!(t[0].role, Role::Internet);
        assert_eq!(
            t[1].role,
            Role::Corroborating,
            "a proxy may answer on 443 (INTERCEPTED_PORTS)"
        );
        assert_eq!(t[2].role, Role::Corroborating, "DNS corroborates");
        assert_eq!(
            t[2].probe,
            Probe::Dns(vec![Ipv4Addr::new(198, 51, 100, 53)], "ipfire.org".into())
        );
        assert_eq!(t[3].role, Role::Gateway);
        let no_dns = Policy {
            check_dns: false,
            check_hosts: vec![
                TargetSpec::Icmp("203.0.113.1".into()),
                TargetSpec::Tcp("203.0.113.2".into(), 22),
            ],
            ..policy
        };
        let t = build_targets(&no_dns, &paths);
        assert_eq!(t.len(), 3);
        assert_eq!(t[1].role, Role::Internet, "no proxy takes port 22 over");
    }
}
