//! What the parts of a round share: the results so far ([`Outcomes`]), the shape of one
//! probe kind's part ([`Piece`]) and the socket helpers.

use std::io;
use std::net::SocketAddrV4;
use std::os::fd::AsRawFd;
use std::time::Duration;

use nix::poll::PollFd;
use nix::sys::socket::{SockaddrIn, recvfrom};
use socket2::{Domain, Protocol, Socket, Type};

use crate::uplink::health::target::{Target, TargetResult};

/// One probe kind's part of a round, once its probes are sent: the sockets to wait on and
/// what to do with the replies.
pub(super) trait Piece {
    /// The descriptors to `poll()`, each with the events wanted.
    fn poll_fds(&self) -> Vec<PollFd<'_>>;
    /// Reads what arrived; `ready[k]` says whether the `k`th descriptor of
    /// [`Piece::poll_fds`] had an event. `buf` is scratch space.
    fn on_ready(&mut self, ready: &[bool], out: &mut Outcomes<'_>, buf: &mut [u8]);
}

/// The round's result per target so far: `None` while it is still waited for.
pub(super) struct Outcomes<'t> {
    targets: &'t [Target],
    results: Vec<Option<TargetResult>>,
}

impl<'t> Outcomes<'t> {
    pub(super) fn new(targets: &'t [Target]) -> Self {
        Outcomes {
            targets,
            results: vec![None; targets.len()],
        }
    }

    /// The round's targets.
    pub(super) fn targets(&self) -> &'t [Target] {
        self.targets
    }

    /// Whether target `i` is still waited for.
    pub(super) fn is_open(&self, i: usize) -> bool {
        self.results[i].is_none()
    }

    /// Whether every target is decided.
    pub(super) fn all_decided(&self) -> bool {
        self.results.iter().all(Option::is_some)
    }

    /// Target `i` answered after `rtt`.
    pub(super) fn ok(&mut self, i: usize, rtt: Duration) {
        self.results[i] = Some(TargetResult::ok(&self.targets[i], rtt));
    }

    /// Target `i` failed, for `reason`.
    pub(super) fn failed(&mut self, i: usize, reason: impl Into<String>) {
        self.results[i] = Some(TargetResult::failed(&self.targets[i], reason));
    }

    /// Every target that `which` picks failed, for `reason`.
    pub(super) fn fail_all(&mut self, which: impl Fn(&Target) -> bool, reason: &str) {
        for (i, t) in self.targets.iter().enumerate() {
            if which(t) {
                self.failed(i, reason);
            }
        }
    }

    /// The results, one per target; an undecided one failed for `undecided(i)`.
    pub(super) fn finish(self, undecided: impl Fn(usize) -> String) -> Vec<TargetResult> {
        self.results
            .into_iter()
            .enumerate()
            .map(|(i, r)| r.unwrap_or_else(|| TargetResult::failed(&self.targets[i], undecided(i))))
            .collect()
    }
}

/// A non-blocking socket bound to `iface` (`SO_BINDTODEVICE`).
pub(super) fn bound_socket(
    iface: &str,
    domain: Domain,
    ty: Type,
    proto: Protocol,
) -> io::Result<Socket> {
    let s = Socket::new(domain, ty, Some(proto))?;
    s.bind_device(Some(iface.as_bytes()))?;
    s.set_nonblocking(true)?;
    Ok(s)
}

/// Reads one datagram; `None` when nothing is queued.
pub(super) fn recv_one(sock: &Socket, buf: &mut [u8]) -> Option<(usize, Option<SocketAddrV4>)> {
    match recvfrom::<SockaddrIn>(sock.as_raw_fd(), buf) {
        Ok((n, from)) => Some((n, from.map(|a| SocketAddrV4::new(a.ip(), a.port())))),
        Err(_) => None,
    }
}

/// A socket error as a probe's reason.
pub(super) fn io_reason(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(nix::libc::ENODEV) => "no such interface".into(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    #[test]
    fn outcomes_keep_what_was_decided_and_name_the_rest() {
        let t = [
            Target::icmp(Ipv4Addr::new(203, 0, 113, 1)),
            Target::icmp(Ipv4Addr::new(203, 0, 113, 2)),
            Target::gateway(Ipv4Addr::new(198, 51, 100, 1)),
        ];
        let mut out = Outcomes::new(&t);
        assert!(out.is_open(0) && !out.all_decided());
        out.ok(0, Duration::from_millis(7));
        out.fail_all(
            |t| t.role == crate::uplink::health::target::Role::Gateway,
            "no route",
        );
        assert!(!out.is_open(2) && out.is_open(1));
        let r = out.finish(|i| format!("silent {i}"));
        assert_eq!(r[0].rtt, Some(Duration::from_millis(7)));
        assert_eq!(r[1].error.as_deref(), Some("silent 1"));
        assert_eq!(r[2].error.as_deref(), Some("no route"));
    }
}
