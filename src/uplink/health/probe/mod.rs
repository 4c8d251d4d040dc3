//! The probers: [`RealProber`] sends native probes out of one interface; `ScriptedProber`
//! (tests only) replays canned results for tests of everything above the network.
//!
//! A round opens one ICMP socket for all ICMP targets (the gateway included), one UDP socket
//! for all DNS servers and one non-blocking TCP socket per `tcp:` target, every one bound to
//! the interface with `SO_BINDTODEVICE`; sends everything, then `poll()`s all of them until
//! every target has answered or the timeout is reached. No thread or process per probe.
//! Sockets are opened per round (a few syscalls) so a RED interface that was renamed or
//! recreated is picked up.
//!
//! Each probe kind is one part: `echo` (ICMP echo, internet targets and the gateway),
//! `query` (DNS) and `connect` (TCP), each sending its probes and reading its replies;
//! [`RealProber::round`] only composes them (`part` holds what they share).

mod connect;
mod echo;
mod part;
mod query;
#[cfg(any(test, feature = "test-util"))]
mod scripted;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollTimeout};

use self::connect::Connect;
use self::echo::Echo;
use self::part::{Outcomes, Piece};
use self::query::Query;
#[cfg(any(test, feature = "test-util"))]
pub use self::scripted::ScriptedProber;
use super::target::{Probe, Prober, Target, TargetResult};
use crate::ipfire::paths::Paths;
use crate::sys::clock::{Clock, SystemClock};

/// Distinct identifiers for several probers in one process.
static NEXT_IDENT: AtomicU16 = AtomicU16::new(0);

/// A small non-cryptographic seed from the clock and the pid, for identifiers and IDs.
pub(crate) fn seed16() -> u16 {
    let nanos = SystemClock
        .wall()
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
    /// Where `class/net` is read for [`Prober::watch`] (`/sys` under the root).
    sys_root: PathBuf,
}

/// How often a waiting round looks at the watched devices' carrier.
const WATCH_EVERY: Duration = Duration::from_millis(50);

/// The first watched device that has lost its carrier (or vanished).
fn carrier_gone(sys_root: &Path, devices: &[String]) -> Option<String> {
    devices.iter().find_map(|d| {
        let c = std::fs::read_to_string(sys_root.join("class/net").join(d).join("carrier"));
        match c.as_deref().map(str::trim) {
            Ok("1") => None,
            Ok(_) | Err(_) => Some(format!("carrier lost on {d}")),
        }
    })
}

impl RealProber {
    /// A prober with its own ICMP identifier, watching carriers under `paths`' `/sys`.
    pub fn new(paths: &Paths) -> Self {
        let n = NEXT_IDENT.fetch_add(0x9e37, Ordering::Relaxed);
        let ident = seed16() ^ n;
        RealProber {
            ident,
            seq: ident.rotate_left(5),
            dns_id: ident.rotate_left(11),
            watch: Vec::new(),
            sys_root: paths.sys(),
        }
    }

    /// Waits until every target is decided, `deadline` passes, or a watched device loses
    /// its carrier (returned as the reason). Replies are handed to the parts as they come.
    fn wait(
        &self,
        deadline: Instant,
        parts: &mut [&mut dyn Piece],
        out: &mut Outcomes<'_>,
    ) -> Option<String> {
        let mut buf = vec![0u8; 2048];
        loop {
            if out.all_decided() {
                return None;
            }
            let now = SystemClock.now();
            if now >= deadline {
                return None;
            }
            // A line that lost its carrier will not answer: end the round now, so the
            // supervisor sees the carrier loss within WATCH_EVERY, not after the timeout.
            if let Some(why) = carrier_gone(&self.sys_root, &self.watch) {
                return Some(why);
            }
            let left = (deadline - now).min(if self.watch.is_empty() {
                Duration::MAX
            } else {
                WATCH_EVERY
            });
            let ms = i32::try_from(left.as_millis().saturating_add(1)).unwrap_or(i32::MAX);
            let ready: Vec<Vec<bool>> = {
                let fds: Vec<Vec<PollFd<'_>>> = parts.iter().map(|p| p.poll_fds()).collect();
                let counts: Vec<usize> = fds.iter().map(Vec::len).collect();
                let mut all: Vec<PollFd<'_>> = fds.into_iter().flatten().collect();
                let timeout = PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX);
                match nix::poll::poll(&mut all, timeout) {
                    Ok(_) => {}
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(_) => return None,
                }
                let mut flags = all
                    .iter()
                    .map(|fd| fd.revents().is_some_and(|r| !r.is_empty()));
                counts
                    .iter()
                    .map(|&n| flags.by_ref().take(n).collect())
                    .collect()
            };
            for (part, ready) in parts.iter_mut().zip(&ready) {
                part.on_ready(ready, out, &mut buf);
            }
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

impl Prober for RealProber {
    fn watch(&mut self, devices: &[String]) {
        self.watch = devices.to_vec();
    }

    fn round(&mut self, iface: &str, targets: &[Target], timeout: Duration) -> Vec<TargetResult> {
        let deadline = SystemClock.now() + timeout;
        let mut out = Outcomes::new(targets);
        for (i, t) in targets.iter().enumerate() {
            if let Probe::Unresolved(reason) = &t.probe {
                out.failed(i, reason.clone());
            }
        }
        let mut echo = Echo::start(iface, self.ident, || self.next_seq(), &mut out);
        let mut query = Query::start(iface, || self.next_dns_id(), &mut out);
        let mut connect = Connect::start(iface, &mut out);
        let aborted = self.wait(
            deadline,
            &mut [&mut echo, &mut query, &mut connect],
            &mut out,
        );
        let waited = timeout.as_millis();
        out.finish(|i| match (&aborted, query.errors(i)) {
            (Some(why), _) => why.clone(),
            (None, Some(errs)) => format!("no reply within {waited} ms ({errs})"),
            (None, None) => format!("no reply within {waited} ms"),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

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
                role: crate::uplink::health::target::Role::Internet,
            },
            Target {
                host: "tcp".into(),
                probe: Probe::Tcp("203.0.113.1:443".parse().unwrap()),
                role: crate::uplink::health::target::Role::Internet,
            },
        ];
        let root = tempfile::tempdir().unwrap();
        let paths = Paths::new(root.path()).unwrap();
        let r = RealProber::new(&paths).round("cdh-nonexist0", &t, Duration::from_millis(100));
        assert_eq!(r.len(), 3);
        for x in &r {
            assert!(x.rtt.is_none() && x.error.is_some(), "{x:?}");
        }
    }
}
