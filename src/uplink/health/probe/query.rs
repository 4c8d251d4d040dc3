//! The DNS part of a round: the DNS target's query to each of the uplink's servers, on one
//! UDP socket, each for a fresh random name under the zone; any one server's answer that
//! proves it reached the zone's authority (`dns::proves_path`: no cache, no hijack, no
//! synthesized denial) passes the target. What that proves, and why DNS only corroborates
//! in the vote, is in `dns` and `monitor`.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::AsFd;
use std::time::Instant;

use nix::poll::{PollFd, PollFlags};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::part::{Outcomes, Piece, bound_socket, io_reason, recv_one};
use crate::sys::clock::{Clock, SystemClock};
use crate::uplink::health::dns;
use crate::uplink::health::target::Probe;

/// The DNS queries of one round.
pub(super) struct Query {
    sock: Option<Socket>,
    /// id -> the query in flight.
    pending: HashMap<u16, Pending>,
    /// What each server that could not help said, by target index.
    errors: HashMap<usize, Vec<String>>,
}

/// One query in flight.
struct Pending {
    /// The target's index.
    target: usize,
    server: Ipv4Addr,
    /// The random name asked, and the zone it is under.
    qname: String,
    zone: String,
    sent: Instant,
}

fn is_dns(probe: &Probe) -> bool {
    matches!(probe, Probe::Dns(..))
}

impl Query {
    /// Opens the socket (when a target needs it) and sends the queries; `next_id` gives
    /// their IDs. A target with no server, or whose every send failed, fails at once.
    pub(super) fn start(
        iface: &str,
        mut next_id: impl FnMut() -> u16,
        out: &mut Outcomes<'_>,
    ) -> Query {
        let mut q = Query {
            sock: None,
            pending: HashMap::new(),
            errors: HashMap::new(),
        };
        let targets = out.targets();
        if !targets.iter().any(|t| is_dns(&t.probe)) {
            return q;
        }
        let opened = bound_socket(iface, Domain::IPV4, Type::DGRAM, Protocol::UDP).and_then(|s| {
            s.bind(&SockAddr::from(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)))?;
            Ok(s)
        });
        let sock = match opened {
            Ok(s) => s,
            Err(e) => {
                let reason = format!("cannot open UDP socket on {iface}: {}", io_reason(&e));
                out.fail_all(|t| is_dns(&t.probe), &reason);
                return q;
            }
        };
        for (i, t) in targets.iter().enumerate() {
            let Probe::Dns(servers, zone) = &t.probe else {
                continue;
            };
            if !out.is_open(i) {
                continue;
            }
            for server in servers {
                let id = next_id();
                let to = SockAddr::from(SocketAddrV4::new(*server, 53));
                // A name no cache can hold, new for every query.
                let qname = dns::random_name(zone);
                match sock.send_to(&dns::query(id, &qname), &to) {
                    Ok(_) => {
                        let sent = SystemClock.now();
                        q.pending.insert(
                            id,
                            Pending {
                                target: i,
                                server: *server,
                                qname,
                                zone: zone.clone(),
                                sent,
                            },
                        );
                    }
                    Err(e) => q.note(i, format!("{server}: {}", io_reason(&e))),
                }
            }
            if servers.is_empty() {
                out.failed(i, "no DNS servers");
            } else {
                q.fail_if_no_server_left(i, out);
            }
        }
        q.sock = Some(sock);
        q
    }

    fn note(&mut self, i: usize, why: String) {
        self.errors.entry(i).or_default().push(why);
    }

    /// Fails target `i` with every server's reason once none of its queries is pending.
    fn fail_if_no_server_left(&mut self, i: usize, out: &mut Outcomes<'_>) {
        if out.is_open(i) && !self.pending.values().any(|p| p.target == i) {
            let why = self.errors.remove(&i).unwrap_or_default().join("; ");
            out.failed(i, why);
        }
    }

    /// What the servers of target `i` said, for a target that timed out.
    pub(super) fn errors(&self, i: usize) -> Option<String> {
        self.errors.get(&i).map(|e| e.join("; "))
    }
}

impl Piece for Query {
    fn poll_fds(&self) -> Vec<PollFd<'_>> {
        self.sock
            .iter()
            .map(|s| PollFd::new(s.as_fd(), PollFlags::POLLIN))
            .collect()
    }

    fn on_ready(&mut self, ready: &[bool], out: &mut Outcomes<'_>, buf: &mut [u8]) {
        if !ready.first().copied().unwrap_or(false) {
            return;
        }
        while let Some((n, from)) = self.sock.as_ref().and_then(|s| recv_one(s, buf)) {
            let at = SystemClock.now();
            let Some(id) = dns::response_id(&buf[..n]) else {
                continue;
            };
            let Some(p) = self.pending.get(&id) else {
                continue;
            };
            let (i, server, sent) = (p.target, p.server, p.sent);
            if from != Some(SocketAddrV4::new(server, 53)) {
                continue;
            }
            if let Err(why) = dns::proves_path(&buf[..n], &p.qname, &p.zone) {
                // This server answered, but nothing that proves the path: the others may.
                self.pending.remove(&id);
                self.note(i, format!("{server}: {why}"));
                self.fail_if_no_server_left(i, out);
                continue;
            }
            self.pending.retain(|_, p| p.target != i);
            if out.is_open(i) {
                out.ok(i, at.saturating_duration_since(sent));
            }
        }
    }
}
