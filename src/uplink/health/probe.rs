//! The probers: [`RealProber`] sends native probes out of one interface; [`ScriptedProber`]
//! replays canned results for tests of everything above the network.
//!
//! A round opens one ICMP socket for all ICMP targets, one UDP socket for all DNS servers and
//! one non-blocking TCP socket per `tcp:` target, every one bound to the interface with
//! `SO_BINDTODEVICE`; sends everything, then `poll()`s all of them until every target has
//! answered or the timeout is reached. No thread or process per probe. Sockets are opened per
//! round (a few syscalls) so a RED interface that was renamed or recreated is picked up.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{SockaddrIn, recvfrom};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::icmp::{self, Reply};
use super::{Probe, Prober, Target, TargetResult, dns};

/// Distinct identifiers for several probers in one process.
static NEXT_IDENT: AtomicU16 = AtomicU16::new(0);

/// A small non-cryptographic seed from the clock and the pid, for identifiers and IDs.
pub(crate) fn seed16() -> u16 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    (nanos ^ (nanos >> 16) ^ std::process::id()) as u16
}

/// The native prober.
#[derive(Debug)]
pub struct RealProber {
    ident: u16,
    seq: u16,
    dns_id: u16,
    /// Devices whose carrier ends a round early (see [`Prober::watch`]).
    watch: Vec<String>,
    /// Where `class/net` is read for [`Prober::watch`] (`/sys`).
    pub sys_root: std::path::PathBuf,
}

/// How often a waiting round looks at the watched devices' carrier.
const WATCH_EVERY: Duration = Duration::from_millis(50);

/// The first watched device that has lost its carrier (or vanished).
fn carrier_gone(sys_root: &std::path::Path, devices: &[String]) -> Option<String> {
    devices.iter().find_map(|d| {
        let c = std::fs::read_to_string(sys_root.join("class/net").join(d).join("carrier"));
        match c.as_deref().map(str::trim) {
            Ok("1") => None,
            Ok(_) | Err(_) => Some(format!("carrier lost on {d}")),
        }
    })
}

impl Default for RealProber {
    fn default() -> Self {
        Self::new()
    }
}

impl RealProber {
    /// A prober with its own ICMP identifier.
    pub fn new() -> Self {
        let n = NEXT_IDENT.fetch_add(0x9e37, Ordering::Relaxed);
        let ident = seed16() ^ n;
        RealProber {
            ident,
            seq: ident.rotate_left(5),
            dns_id: ident.rotate_left(11),
            watch: Vec::new(),
            sys_root: std::path::PathBuf::from("/sys"),
        }
    }

    fn next_seq(&mut self) -> u16 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    fn next_dns_id(&mut self) -> u16 {
        self.dns_id = self.dns_id.wrapping_add(0x3b9d);
        self.dns_id
    }
}

fn bound_socket(iface: &str, domain: Domain, ty: Type, proto: Protocol) -> io::Result<Socket> {
    let s = Socket::new(domain, ty, Some(proto))?;
    s.bind_device(Some(iface.as_bytes()))?;
    s.set_nonblocking(true)?;
    Ok(s)
}

/// The ICMP socket of a round: raw when we may, else an unprivileged ping socket (the kernel
/// then picks the identifier and delivers only our own replies, without IP header).
struct IcmpSock {
    sock: Socket,
    raw: bool,
}

impl IcmpSock {
    fn open(iface: &str) -> io::Result<IcmpSock> {
        match bound_socket(iface, Domain::IPV4, Type::RAW, Protocol::ICMPV4) {
            Ok(sock) => Ok(IcmpSock { sock, raw: true }),
            Err(e)
                if e.kind() == io::ErrorKind::PermissionDenied
                    || e.raw_os_error() == Some(nix::libc::EPERM) =>
            {
                let sock = bound_socket(iface, Domain::IPV4, Type::DGRAM, Protocol::ICMPV4)?;
                Ok(IcmpSock { sock, raw: false })
            }
            Err(e) => Err(e),
        }
    }
}

/// Reads one datagram; `None` when nothing is queued.
fn recv_one(sock: &Socket, buf: &mut [u8]) -> Option<(usize, Option<SocketAddrV4>)> {
    match recvfrom::<SockaddrIn>(sock.as_raw_fd(), buf) {
        Ok((n, from)) => Some((n, from.map(|a| SocketAddrV4::new(a.ip(), a.port())))),
        Err(_) => None,
    }
}

fn io_reason(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(nix::libc::ENODEV) => "no such interface".into(),
        _ => e.to_string(),
    }
}

impl Prober for RealProber {
    fn watch(&mut self, devices: &[String]) {
        self.watch = devices.to_vec();
    }

    fn round(&mut self, iface: &str, targets: &[Target], timeout: Duration) -> Vec<TargetResult> {
        let start = Instant::now();
        let deadline = start + timeout;
        let mut results: Vec<Option<TargetResult>> = vec![None; targets.len()];

        // ICMP: one socket, one request per target; seq -> (target, sent at).
        let mut icmp_pending: HashMap<u16, (usize, Ipv4Addr, Instant)> = HashMap::new();
        let needs_icmp = targets.iter().any(|t| matches!(t.probe, Probe::Icmp(_)));
        let icmp_sock = if needs_icmp {
            match IcmpSock::open(iface) {
                Ok(s) => Some(s),
                Err(e) => {
                    let reason = format!("cannot open ICMP socket on {iface}: {}", io_reason(&e));
                    for (i, t) in targets.iter().enumerate() {
                        if matches!(t.probe, Probe::Icmp(_)) {
                            results[i] = Some(TargetResult::failed(t, reason.clone()));
                        }
                    }
                    None
                }
            }
        } else {
            None
        };
        // DNS: one socket for every server; id -> (target, server, sent at).
        let mut dns_pending: HashMap<u16, (usize, Ipv4Addr, Instant)> = HashMap::new();
        let mut dns_errors: HashMap<usize, Vec<String>> = HashMap::new();
        let needs_dns = targets.iter().any(|t| matches!(t.probe, Probe::Dns(..)));
        let dns_sock = if needs_dns {
            match bound_socket(iface, Domain::IPV4, Type::DGRAM, Protocol::UDP).and_then(|s| {
                s.bind(&SockAddr::from(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)))?;
                Ok(s)
            }) {
                Ok(s) => Some(s),
                Err(e) => {
                    let reason = format!("cannot open UDP socket on {iface}: {}", io_reason(&e));
                    for (i, t) in targets.iter().enumerate() {
                        if matches!(t.probe, Probe::Dns(..)) {
                            results[i] = Some(TargetResult::failed(t, reason.clone()));
                        }
                    }
                    None
                }
            }
        } else {
            None
        };
        // TCP: one socket per target.
        let mut tcp: Vec<(usize, Socket, Instant)> = Vec::new();

        for (i, t) in targets.iter().enumerate() {
            if results[i].is_some() {
                continue;
            }
            match &t.probe {
                Probe::Unresolved(reason) => {
                    results[i] = Some(TargetResult::failed(t, reason.clone()));
                }
                Probe::Icmp(addr) => {
                    let Some(s) = &icmp_sock else { continue };
                    let seq = self.next_seq();
                    let pkt = icmp::echo_request(self.ident, seq);
                    let to = SockAddr::from(SocketAddrV4::new(*addr, 0));
                    match s.sock.send_to(&pkt, &to) {
                        Ok(_) => {
                            icmp_pending.insert(seq, (i, *addr, Instant::now()));
                        }
                        Err(e) => {
                            results[i] = Some(TargetResult::failed(t, io_reason(&e)));
                        }
                    }
                }
                Probe::Dns(servers, name) => {
                    let Some(s) = &dns_sock else { continue };
                    for server in servers {
                        let id = self.next_dns_id();
                        let q = dns::query(id, name);
                        let to = SockAddr::from(SocketAddrV4::new(*server, 53));
                        match s.send_to(&q, &to) {
                            Ok(_) => {
                                dns_pending.insert(id, (i, *server, Instant::now()));
                            }
                            Err(e) => dns_errors
                                .entry(i)
                                .or_default()
                                .push(format!("{server}: {}", io_reason(&e))),
                        }
                    }
                    if servers.is_empty() {
                        results[i] = Some(TargetResult::failed(t, "no DNS servers"));
                    } else if !dns_pending.values().any(|(ti, _, _)| *ti == i) {
                        let why = dns_errors.remove(&i).unwrap_or_default().join("; ");
                        results[i] = Some(TargetResult::failed(t, why));
                    }
                }
                Probe::Tcp(addr) => {
                    let opened = bound_socket(iface, Domain::IPV4, Type::STREAM, Protocol::TCP);
                    let s = match opened {
                        Ok(s) => s,
                        Err(e) => {
                            results[i] = Some(TargetResult::failed(t, io_reason(&e)));
                            continue;
                        }
                    };
                    let sent = Instant::now();
                    match s.connect(&SockAddr::from(*addr)) {
                        Ok(()) => results[i] = Some(TargetResult::ok(t, sent.elapsed())),
                        Err(e)
                            if e.raw_os_error() == Some(nix::libc::EINPROGRESS)
                                || e.kind() == io::ErrorKind::WouldBlock =>
                        {
                            tcp.push((i, s, sent));
                        }
                        Err(e) => results[i] = Some(TargetResult::failed(t, io_reason(&e))),
                    }
                }
            }
        }

        let mut buf = vec![0u8; 2048];
        let mut aborted: Option<String> = None;
        loop {
            if results.iter().all(Option::is_some) {
                break;
            }
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            // A line that lost its carrier will not answer: end the round now, so the
            // supervisor sees the carrier loss within WATCH_EVERY, not after the timeout.
            if let Some(why) = carrier_gone(&self.sys_root, &self.watch) {
                aborted = Some(why);
                break;
            }
            let left = (deadline - now).min(if self.watch.is_empty() {
                Duration::MAX
            } else {
                WATCH_EVERY
            });
            let ms = i32::try_from(left.as_millis().saturating_add(1)).unwrap_or(i32::MAX);
            let (icmp_ready, dns_ready, tcp_ready) = {
                let mut fds: Vec<PollFd<'_>> = Vec::new();
                if let Some(s) = &icmp_sock {
                    fds.push(PollFd::new(s.sock.as_fd(), PollFlags::POLLIN));
                }
                if let Some(s) = &dns_sock {
                    fds.push(PollFd::new(s.as_fd(), PollFlags::POLLIN));
                }
                let tcp_base = fds.len();
                for (_, s, _) in &tcp {
                    fds.push(PollFd::new(s.as_fd(), PollFlags::POLLOUT));
                }
                let timeout = PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX);
                match nix::poll::poll(&mut fds, timeout) {
                    Ok(_) => {}
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(_) => break,
                }
                let ready = |fd: &PollFd<'_>| fd.revents().is_some_and(|r| !r.is_empty());
                let mut k = 0;
                let icmp_ready = icmp_sock.is_some() && {
                    k += 1;
                    ready(&fds[k - 1])
                };
                let dns_ready = dns_sock.is_some() && {
                    k += 1;
                    ready(&fds[k - 1])
                };
                let tcp_ready: Vec<bool> = fds[tcp_base..].iter().map(ready).collect();
                (icmp_ready, dns_ready, tcp_ready)
            };

            if let (true, Some(s)) = (icmp_ready, &icmp_sock) {
                while let Some((n, from)) = recv_one(&s.sock, &mut buf) {
                    let at = Instant::now();
                    let reply = if s.raw {
                        icmp::parse_raw(&buf[..n])
                    } else {
                        from.and_then(|f| icmp::parse_icmp(*f.ip(), &buf[..n]))
                    };
                    let (seq, ok, reason) = match reply {
                        Some(Reply::Echo { from, ident, seq }) => {
                            let ours = !s.raw || ident == self.ident;
                            let matches = icmp_pending.get(&seq).is_some_and(|p| p.1 == from);
                            if !(ours && matches) {
                                continue; // someone else's reply, or a stray one
                            }
                            (seq, true, String::new())
                        }
                        Some(Reply::Error {
                            to,
                            ident,
                            seq,
                            reason,
                            ..
                        }) => {
                            let ours = !s.raw || ident == self.ident;
                            if !(ours && icmp_pending.get(&seq).is_some_and(|p| p.1 == to)) {
                                continue;
                            }
                            (seq, false, reason)
                        }
                        None => continue,
                    };
                    if let Some((i, _, sent)) = icmp_pending.remove(&seq) {
                        results[i] = Some(if ok {
                            TargetResult::ok(&targets[i], at.duration_since(sent))
                        } else {
                            TargetResult::failed(&targets[i], reason)
                        });
                    }
                }
            }
            if let (true, Some(s)) = (dns_ready, &dns_sock) {
                while let Some((n, from)) = recv_one(s, &mut buf) {
                    let at = Instant::now();
                    let Some(id) = dns::response_id(&buf[..n]) else {
                        continue;
                    };
                    let Some(&(i, server, sent)) = dns_pending.get(&id) else {
                        continue;
                    };
                    if from != Some(SocketAddrV4::new(server, 53)) {
                        continue;
                    }
                    if let Err(why) = dns::resolved(&buf[..n]) {
                        // This server answered but could not resolve: the others may.
                        dns_pending.remove(&id);
                        dns_errors
                            .entry(i)
                            .or_default()
                            .push(format!("{server}: {why}"));
                        if results[i].is_none() && !dns_pending.values().any(|p| p.0 == i) {
                            let why = dns_errors.remove(&i).unwrap_or_default().join("; ");
                            results[i] = Some(TargetResult::failed(&targets[i], why));
                        }
                        continue;
                    }
                    dns_pending.retain(|_, p| p.0 != i);
                    if results[i].is_none() {
                        results[i] = Some(TargetResult::ok(&targets[i], at.duration_since(sent)));
                    }
                }
            }
            let mut still = Vec::new();
            for ((i, s, sent), ready) in tcp.drain(..).zip(tcp_ready) {
                if !ready {
                    still.push((i, s, sent));
                    continue;
                }
                results[i] = Some(match s.take_error() {
                    Ok(None) => TargetResult::ok(&targets[i], sent.elapsed()),
                    Ok(Some(e)) | Err(e) => TargetResult::failed(&targets[i], io_reason(&e)),
                });
            }
            tcp = still;
        }

        let waited = timeout.as_millis();
        targets
            .iter()
            .zip(results)
            .enumerate()
            .map(|(i, (t, r))| {
                r.unwrap_or_else(|| {
                    if let Some(a) = &aborted {
                        return TargetResult::failed(t, a.clone());
                    }
                    let mut why = format!("no reply within {waited} ms");
                    if let Some(errs) = dns_errors.get(&i) {
                        why = format!("{why} ({})", errs.join("; "));
                    }
                    TargetResult::failed(t, why)
                })
            })
            .collect()
    }
}

/// A prober that replays scripted rounds (for tests of the monitor and the supervisor).
///
/// Each round pops the next script entry: a list of `(host, Some(rtt) | None)`; targets not
/// named answer with the default RTT when `default_up`, else fail. When the script is empty
/// every target gets the default. It records the interface and targets of every call.
#[derive(Debug, Default)]
pub struct ScriptedProber {
    /// Rounds still to replay.
    pub script: VecDeque<Vec<(String, Option<Duration>)>>,
    /// Whether unnamed targets answer.
    pub default_up: bool,
    /// The RTT of unnamed targets that answer.
    pub default_rtt: Duration,
    /// (interface, number of targets) of each round run so far.
    pub calls: Vec<(String, usize)>,
}

impl ScriptedProber {
    /// Every target answers after 10 ms unless scripted otherwise.
    pub fn all_up() -> Self {
        ScriptedProber {
            default_up: true,
            default_rtt: Duration::from_millis(10),
            ..Self::default()
        }
    }

    /// No target answers unless scripted otherwise.
    pub fn all_down() -> Self {
        ScriptedProber::default()
    }

    /// Appends one round.
    pub fn push(&mut self, round: &[(&str, Option<Duration>)]) {
        self.script
            .push_back(round.iter().map(|(h, r)| (h.to_string(), *r)).collect());
    }
}

impl Prober for ScriptedProber {
    fn round(&mut self, iface: &str, targets: &[Target], timeout: Duration) -> Vec<TargetResult> {
        self.calls.push((iface.to_string(), targets.len()));
        let round = self.script.pop_front().unwrap_or_default();
        targets
            .iter()
            .map(|t| {
                let scripted = round.iter().find(|(h, _)| *h == t.host).map(|(_, r)| *r);
                let rtt = match scripted {
                    Some(r) => r,
                    None if self.default_up => Some(self.default_rtt),
                    None => None,
                };
                match rtt {
                    Some(r) => TargetResult::ok(t, r),
                    None => TargetResult::failed(
                        t,
                        format!("no reply within {} ms", timeout.as_millis()),
                    ),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::disallowed_methods)] // a fake sysfs tree
    fn watched_device_without_carrier_is_named() {
        let d = tempfile::tempdir().unwrap();
        let net = d.path().join("class/net");
        for (dev, carrier) in [("red0", "1\n"), ("red1", "0\n")] {
            std::fs::create_dir_all(net.join(dev)).unwrap();
            std::fs::write(net.join(dev).join("carrier"), carrier).unwrap();
        }
        assert_eq!(carrier_gone(d.path(), &["red0".into()]), None);
        assert_eq!(
            carrier_gone(d.path(), &["red0".into(), "red1".into()]).as_deref(),
            Some("carrier lost on red1")
        );
        assert_eq!(
            carrier_gone(d.path(), &["wwan0".into()]).as_deref(),
            Some("carrier lost on wwan0"),
            "a vanished device has no carrier"
        );
        assert_eq!(carrier_gone(d.path(), &[]), None);
    }

    #[test]
    fn scripted_rounds_replay_in_order() {
        let t = [Target::icmp(Ipv4Addr::new(203, 0, 113, 1))];
        let mut p = ScriptedProber::all_up();
        p.push(&[("203.0.113.1", None)]);
        let r1 = p.round("ppp0", &t, Duration::from_secs(1));
        assert!(!r1[0].answered());
        let r2 = p.round("ppp0", &t, Duration::from_secs(1));
        assert_eq!(r2[0].rtt, Some(Duration::from_millis(10)));
        assert_eq!(p.calls.len(), 2);
    }

    #[test]
    fn a_missing_interface_is_a_failed_probe_not_an_error() {
        let t = [
            Target::icmp(Ipv4Addr::new(203, 0, 113, 1)),
            Target {
                host: "dns".into(),
                probe: Probe::Dns(vec![Ipv4Addr::new(203, 0, 113, 53)], "ipfire.org".into()),
                role: super::super::Role::Internet,
            },
            Target {
                host: "tcp".into(),
                probe: Probe::Tcp("203.0.113.1:443".parse().unwrap()),
                role: super::super::Role::Internet,
            },
        ];
        let r = RealProber::new().round("cdh-nonexist0", &t, Duration::from_millis(100));
        assert_eq!(r.len(), 3);
        for x in &r {
            assert!(x.rtt.is_none() && x.error.is_some(), "{x:?}");
        }
    }
}
