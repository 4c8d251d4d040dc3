//! The TCP part of a round: one non-blocking connect per `tcp:` target, each on its own
//! socket; the handshake completing is the answer.

use std::io;
use std::os::fd::AsFd;
use std::time::Instant;

use nix::poll::{PollFd, PollFlags};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::part::{Outcomes, Piece, bound_socket, io_reason};
use crate::sys::clock::{Clock, SystemClock};
use crate::uplink::health::target::Probe;

/// The connects of one round still in progress: (target index, socket, started at).
pub(super) struct Connect {
    pending: Vec<(usize, Socket, Instant)>,
}

impl Connect {
    /// Starts a connect per TCP target. One that completes or fails at once is decided now.
    pub(super) fn start(iface: &str, out: &mut Outcomes<'_>) -> Connect {
        let mut pending = Vec::new();
        for (i, t) in out.targets().iter().enumerate() {
            let Probe::Tcp(addr) = &t.probe else {
                continue;
            };
            if !out.is_open(i) {
                continue;
            }
            let s = match bound_socket(iface, Domain::IPV4, Type::STREAM, Protocol::TCP) {
                Ok(s) => s,
                Err(e) => {
                    out.failed(i, io_reason(&e));
                    continue;
                }
            };
            let sent = SystemClock.now();
            match s.connect(&SockAddr::from(*addr)) {
                Ok(()) => out.ok(i, SystemClock.now().saturating_duration_since(sent)),
                Err(e)
                    if e.raw_os_error() == Some(nix::libc::EINPROGRESS)
                        || e.kind() == io::ErrorKind::WouldBlock =>
                {
                    pending.push((i, s, sent));
                }
                Err(e) => out.failed(i, io_reason(&e)),
            }
        }
        Connect { pending }
    }
}

impl Piece for Connect {
    fn poll_fds(&self) -> Vec<PollFd<'_>> {
        self.pending
            .iter()
            .map(|(_, s, _)| PollFd::new(s.as_fd(), PollFlags::POLLOUT))
            .collect()
    }

    fn on_ready(&mut self, ready: &[bool], out: &mut Outcomes<'_>, _buf: &mut [u8]) {
        let mut still = Vec::new();
        for ((i, s, sent), ready) in self.pending.drain(..).zip(ready) {
            if !*ready {
                still.push((i, s, sent));
                continue;
            }
            match s.take_error() {
                Ok(None) => out.ok(i, SystemClock.now().saturating_duration_since(sent)),
                Ok(Some(e)) | Err(e) => out.failed(i, io_reason(&e)),
            }
        }
        self.pending = still;
    }
}
