//! The ICMP part of a round: one echo request per ICMP target, internet targets and the
//! gateway alike ([`Role::Gateway`](crate::uplink::health::Role) is only reported, never
//! voted, but probed the same way), all on one socket.

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::AsFd;
use std::time::Instant;

use nix::poll::{PollFd, PollFlags};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::part::{Outcomes, Piece, bound_socket, io_reason, recv_one};
use crate::sys::clock::{Clock, SystemClock};
use crate::uplink::health::icmp::{self, Reply};
use crate::uplink::health::target::{Probe, Target};

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

/// The echo requests of one round: seq -> (target index, address, sent at).
pub(super) struct Echo {
    sock: Option<IcmpSock>,
    ident: u16,
    pending: HashMap<u16, (usize, Ipv4Addr, Instant)>,
}

fn icmp_addr(t: &Target) -> Option<Ipv4Addr> {
    match t.probe {
        Probe::Icmp(a) => Some(a),
        _ => None,
    }
}

impl Echo {
    /// Opens the socket (when a target needs it) and sends one request per ICMP target;
    /// `next_seq` numbers them. A target that cannot be sent to fails at once.
    pub(super) fn start(
        iface: &str,
        ident: u16,
        mut next_seq: impl FnMut() -> u16,
        out: &mut Outcomes<'_>,
    ) -> Echo {
        let mut echo = Echo {
            sock: None,
            ident,
            pending: HashMap::new(),
        };
        let targets = out.targets();
        if !targets.iter().any(|t| icmp_addr(t).is_some()) {
            return echo;
        }
        let sock = match IcmpSock::open(iface) {
            Ok(s) => s,
            Err(e) => {
                let reason = format!("cannot open ICMP socket on {iface}: {}", io_reason(&e));
                out.fail_all(|t| icmp_addr(t).is_some(), &reason);
                return echo;
            }
        };
        for (i, t) in targets.iter().enumerate() {
            let Some(addr) = icmp_addr(t) else { continue };
            if !out.is_open(i) {
                continue;
            }
            let seq = next_seq();
            let pkt = icmp::echo_request(ident, seq);
            let to = SockAddr::from(SocketAddrV4::new(addr, 0));
            match sock.sock.send_to(&pkt, &to) {
                Ok(_) => {
                    echo.pending.insert(seq, (i, addr, SystemClock.now()));
                }
                Err(e) => out.failed(i, io_reason(&e)),
            }
        }
        echo.sock = Some(sock);
        echo
    }

    /// Matches one datagram to a pending request: (seq, answered, why not).
    fn classify(
        &self,
        raw: bool,
        from: Option<SocketAddrV4>,
        data: &[u8],
    ) -> Option<(u16, bool, String)> {
        let reply = if raw {
            icmp::parse_raw(data)
        } else {
            from.and_then(|f| icmp::parse_icmp(*f.ip(), data))
        };
        let ours = |ident: u16| !raw || ident == self.ident;
        let asked = |seq: u16, addr: Ipv4Addr| self.pending.get(&seq).is_some_and(|p| p.1 == addr);
        match reply? {
            // Anything else is someone else's reply, or a stray one.
            Reply::Echo { from, ident, seq } if ours(ident) && asked(seq, from) => {
                Some((seq, true, String::new()))
            }
            Reply::Error {
                to,
                ident,
                seq,
                reason,
                ..
            } if ours(ident) && asked(seq, to) => Some((seq, false, reason)),
            _ => None,
        }
    }
}

impl Piece for Echo {
    fn poll_fds(&self) -> Vec<PollFd<'_>> {
        self.sock
            .iter()
            .map(|s| PollFd::new(s.sock.as_fd(), PollFlags::POLLIN))
            .collect()
    }

    fn on_ready(&mut self, ready: &[bool], out: &mut Outcomes<'_>, buf: &mut [u8]) {
        let Some(raw) = self.sock.as_ref().map(|s| s.raw) else {
            return;
        };
        if !ready.first().copied().unwrap_or(false) {
            return;
        }
        while let Some((n, from)) = self.sock.as_ref().and_then(|s| recv_one(&s.sock, buf)) {
            let at = SystemClock.now();
            let Some((seq, ok, reason)) = self.classify(raw, from, &buf[..n]) else {
                continue;
            };
            if let Some((i, _, sent)) = self.pending.remove(&seq) {
                if ok {
                    out.ok(i, at.saturating_duration_since(sent));
                } else {
                    out.failed(i, reason);
                }
            }
        }
    }
}
