// Copyright (C) 2026 The connectd developers
// SPDX-License-Identifier: GPL-3.0-or-later

//! Wake-ups for what the supervisor samples: the kernel's link changes (an rtnetlink
//! socket in `RTMGRP_LINK`: a device's carrier, operstate, appearing and vanishing) and
//! files appearing or vanishing in directories (inotify). The supervisor still reads the
//! levels themselves (a sample); these only tell it when a sample is worth taking, so a
//! missed or spurious wake-up costs latency or one read, never a wrong decision.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use nix::sys::socket::{
    AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, bind, recv, socket,
};

/// rtnetlink's multicast group of link messages (`RTMGRP_LINK` in `linux/rtnetlink.h`).
const RTMGRP_LINK: u32 = 1;

/// The watched sources; [`ChangeWatch::complete`] says whether every one was armed.
#[derive(Debug)]
pub struct ChangeWatch {
    links: Option<OwnedFd>,
    files: Option<Inotify>,
    complete: bool,
}

impl ChangeWatch {
    /// Watches `dirs` for files created, removed, renamed or written, and (with `links`)
    /// this network namespace's link changes. What cannot be armed is left out, and the
    /// watch is then not [`complete`](ChangeWatch::complete).
    pub fn new(dirs: &[&Path], links: bool) -> ChangeWatch {
        let mut complete = true;
        let links = if links {
            let fd = link_socket();
            if let Err(e) = &fd {
                log::warn!("link changes are not watched (netlink: {e}): sampled instead");
            }
            complete &= fd.is_ok();
            fd.ok()
        } else {
            None
        };
        let files = match Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC) {
            Ok(ino) => Some(ino),
            Err(e) => {
                log::warn!("files are not watched (inotify: {e}): sampled instead");
                complete = false;
                None
            }
        };
        if let Some(ino) = &files {
            let mask = AddWatchFlags::IN_CREATE
                | AddWatchFlags::IN_DELETE
                | AddWatchFlags::IN_MOVED_FROM
                | AddWatchFlags::IN_MOVED_TO
                | AddWatchFlags::IN_CLOSE_WRITE
                | AddWatchFlags::IN_DELETE_SELF
                | AddWatchFlags::IN_MOVE_SELF;
            for dir in dirs {
                if ino.add_watch(*dir, mask).is_err() {
                    // Missing now (connectd's own directory before its first write):
                    // sampled instead.
                    complete = false;
                }
            }
        }
        ChangeWatch {
            links,
            files,
            complete,
        }
    }

    /// Every source asked for is armed: a change in them wakes the loop.
    pub fn complete(&self) -> bool {
        self.complete
    }

    /// Link changes are watched (asked for, and armed).
    pub fn watches_links(&self) -> bool {
        self.links.is_some()
    }

    /// The descriptors to poll for reading.
    pub fn fds(&self) -> Vec<BorrowedFd<'_>> {
        let mut v = Vec::with_capacity(2);
        if let Some(fd) = &self.links {
            v.push(fd.as_fd());
        }
        if let Some(ino) = &self.files {
            v.push(ino.as_fd());
        }
        v
    }

    /// Reads every pending notification; whether there was one. A watched directory that
    /// went away (or was moved) makes the watch incomplete from then on.
    pub fn drain(&mut self) -> bool {
        let mut any = false;
        if let Some(fd) = &self.links {
            let mut buf = [0u8; 8192];
            loop {
                match recv(fd.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT) {
                    Ok(0) => break,
                    Ok(_) => any = true,
                    Err(Errno::EINTR) => continue,
                    // The kernel dropped messages (overrun): something changed.
                    Err(Errno::ENOBUFS) => any = true,
                    Err(_) => break,
                }
            }
        }
        if let Some(ino) = &self.files {
            while let Ok(events) = ino.read_events() {
                if events.is_empty() {
                    break;
                }
                any = true;
                if events.iter().any(|e| {
                    e.mask.intersects(
                        AddWatchFlags::IN_IGNORED
                            | AddWatchFlags::IN_DELETE_SELF
                            | AddWatchFlags::IN_MOVE_SELF,
                    )
                }) {
                    self.complete = false;
                }
            }
        }
        any
    }
}

/// A non-blocking rtnetlink socket in `RTMGRP_LINK`.
fn link_socket() -> nix::Result<OwnedFd> {
    let fd = socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkRoute,
    )?;
    bind(fd.as_raw_fd(), &NetlinkAddr::new(0, RTMGRP_LINK))?;
    Ok(fd)
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests write their fixtures plainly
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn woke(w: &mut ChangeWatch, within: Duration) -> bool {
        let end = Instant::now() + within;
        while Instant::now() < end {
            if w.drain() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    }

    #[test]
    fn files_created_and_removed_wake_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = ChangeWatch::new(&[dir.path()], false);
        assert!(w.complete());
        assert_eq!(w.fds().len(), 1);
        assert!(!w.drain(), "nothing happened yet");
        std::fs::write(dir.path().join("active"), "").unwrap();
        assert!(woke(&mut w, Duration::from_secs(2)), "creation not seen");
        assert!(!w.drain(), "drained");
        std::fs::remove_file(dir.path().join("active")).unwrap();
        assert!(woke(&mut w, Duration::from_secs(2)), "removal not seen");
    }

    #[test]
    fn a_missing_or_vanished_directory_makes_it_incomplete() {
        let dir = tempfile::tempdir().unwrap();
        let w = ChangeWatch::new(&[&dir.path().join("nope")], false);
        assert!(!w.complete());

        let sub = dir.path().join("red");
        std::fs::create_dir(&sub).unwrap();
        let mut w = ChangeWatch::new(&[&sub], false);
        assert!(w.complete());
        std::fs::remove_dir(&sub).unwrap();
        assert!(woke(&mut w, Duration::from_secs(2)));
        assert!(!w.complete(), "a vanished directory is no longer watched");
    }

    #[test]
    fn the_link_socket_opens_unprivileged() {
        let dir = tempfile::tempdir().unwrap();
        let w = ChangeWatch::new(&[dir.path()], true);
        assert!(w.complete() && w.watches_links());
        assert_eq!(w.fds().len(), 2);
        let w = ChangeWatch::new(&[dir.path()], false);
        assert!(w.complete() && !w.watches_links());
    }

    /// Root only: in a network namespace of this test's own (the thread's, unshared, so
    /// `ip` forked from it runs there too), a veth pair coming, its carrier going (the
    /// peer set down, as a line drop) and the pair vanishing each wake the watch.
    #[test]
    fn link_changes_wake_it_in_a_namespace_of_our_own() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root for a network namespace of its own");
            return;
        }
        let t = std::thread::spawn(|| {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            let ip = |args: &[&str]| {
                let ok = std::process::Command::new("ip")
                    .args(args)
                    .status()
                    .is_ok_and(|s| s.success());
                assert!(ok, "ip {args:?}");
            };
            let mut w = ChangeWatch::new(&[], true);
            assert!(w.complete() && !w.drain());
            ip(&[
                "link", "add", "cdw0", "type", "veth", "peer", "name", "cdw1",
            ]);
            assert!(woke(&mut w, Duration::from_secs(2)), "new link not seen");
            ip(&["link", "set", "cdw0", "up"]);
            ip(&["link", "set", "cdw1", "up"]);
            assert!(woke(&mut w, Duration::from_secs(2)), "link up not seen");
            std::thread::sleep(Duration::from_millis(100));
            w.drain();
            ip(&["link", "set", "cdw1", "down"]);
            assert!(
                woke(&mut w, Duration::from_secs(2)),
                "carrier loss not seen"
            );
            ip(&["link", "del", "cdw0"]);
            assert!(woke(&mut w, Duration::from_secs(2)), "removal not seen");
        });
        t.join().unwrap();
    }
}
