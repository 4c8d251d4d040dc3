//! One supervisor per root: the pidfile lock, daemonizing, and stopping.
//!
//! `/var/run/connectd.pid` is held with an exclusive `flock` for the supervisor's whole
//! life. IPFire's network script calls `connectd start` in the foreground while RED comes
//! up, and pppd's ip-down calls `connectd reconnect`, so `start` must return within a
//! second or two and must never start a second loop.
//!
//! The lock is taken *before* forking. A flock belongs to the open file description, which
//! fork shares, so the daemon inherits the very lock its parent took: there is no moment
//! where the lock is free between "checked" and "running", and ten concurrent `start`s
//! yield exactly one supervisor.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::time::Duration;

use nix::fcntl::{Flock, FlockArg};

use crate::error::{Error, IoContext, Result};
use crate::ipfire::paths::Paths;
use crate::sys::clock::Clock;

/// The supervisor lock, held while this value lives.
#[derive(Debug)]
pub(crate) struct Lock {
    file: Flock<File>,
}

impl Lock {
    /// Takes the lock, or `Ok(None)` when another supervisor holds it.
    pub(crate) fn try_acquire(paths: &Paths) -> Result<Option<Lock>> {
        let path = paths.pidfile();
        if let Some(dir) = path.parent() {
            crate::ipfire::fsutil::ensure_dir(dir)?;
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .open(&path)
            .at(&path)?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(file) => Ok(Some(Lock { file })),
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
            Err((_, e)) => Err(Error::io(&path, e.into())),
        }
    }

    /// Writes our PID into the pidfile (after a fork: the daemon's own).
    pub(crate) fn write_pid(&mut self) -> std::io::Result<()> {
        let f: &mut File = &mut self.file;
        f.set_len(0)?;
        f.seek(SeekFrom::Start(0))?;
        writeln!(f, "{}", std::process::id())?;
        f.sync_all()
    }
}

/// The PID of the running supervisor, when one holds the lock.
pub(crate) fn running_pid(paths: &Paths) -> Option<i32> {
    match Lock::try_acquire(paths) {
        Ok(None) => crate::ipfire::fsutil::read_word(&paths.pidfile()).and_then(|s| s.parse().ok()),
        Ok(Some(_)) | Err(_) => None,
    }
}

/// Where we are after [`daemonize`].
#[derive(Debug)]
pub(crate) enum Forked {
    /// The original process: the daemon reported ready (`true`) or died first (`false`).
    Parent(bool),
    /// The daemon: detached, stdio on /dev/null. Call [`Ready::notify`] once running.
    Daemon(Ready),
}

/// The daemon's end of the start-up pipe.
#[derive(Debug)]
pub(crate) struct Ready(Option<OwnedFd>);

impl Ready {
    /// Tells the waiting `connectd start` that the supervisor runs; it then exits 0.
    pub fn notify(&mut self) {
        if let Some(fd) = self.0.take() {
            let _ = nix::unistd::write(&fd, b"R");
        }
    }
}

/// Double-forks into a daemon (DESIGN.md 4). Must be called while the process has a single
/// thread. The caller holds `lock`; the daemon inherits it (see the module docs). The
/// parent waits up to `wait` (on `clock`) for the daemon's "ready".
#[allow(unsafe_code)]
pub(crate) fn daemonize(
    lock: Lock,
    clock: &dyn Clock,
    wait: Duration,
) -> Result<(Forked, Option<Lock>)> {
    let (rd, wr) = nix::unistd::pipe().map_err(|e| Error::Failed(format!("pipe: {e}")))?;
    // SAFETY: connectd forks before it starts any thread (the hook thread and the API
    // thread are spawned by the daemon after this returns), so the child is a faithful,
    // single-threaded copy and may run arbitrary code.
    match unsafe { nix::unistd::fork() } {
        Err(e) => Err(Error::Failed(format!("fork: {e}"))),
        Ok(nix::unistd::ForkResult::Parent { child }) => {
            drop(wr);
            // The first child exits at once; reap it.
            let _ = nix::sys::wait::waitpid(child, None);
            // Not dropped: dropping a Flock unlocks the open file description, which the
            // daemon shares. Forgetting it only leaks this process's descriptor until the
            // exit that follows.
            std::mem::forget(lock);
            Ok((Forked::Parent(wait_ready(rd, clock, wait)), None))
        }
        Ok(nix::unistd::ForkResult::Child) => {
            drop(rd);
            // A new session: no controlling terminal, not killed with the caller's group.
            let _ = nix::unistd::setsid();
            // SAFETY: still single-threaded (see above).
            match unsafe { nix::unistd::fork() } {
                Ok(nix::unistd::ForkResult::Parent { .. }) | Err(_) => {
                    // The session leader exits so the daemon can never reacquire a
                    // controlling terminal; its parent reaps it.
                    #[allow(clippy::exit)] // the intermediate child of a double fork
                    std::process::exit(0);
                }
                Ok(nix::unistd::ForkResult::Child) => {
                    let _ = std::env::set_current_dir("/");
                    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
                    redirect_stdio_to_null();
                    let mut lock = lock;
                    let _ = lock.write_pid();
                    Ok((Forked::Daemon(Ready(Some(wr))), Some(lock)))
                }
            }
        }
    }
}

fn wait_ready(rd: OwnedFd, clock: &dyn Clock, wait: Duration) -> bool {
    let deadline = clock.now() + wait;
    let mut file = File::from(rd);
    loop {
        let left = deadline.saturating_duration_since(clock.now());
        if left.is_zero() {
            return false;
        }
        let mut fds = [nix::poll::PollFd::new(
            file.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        match nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(ms)) {
            Ok(0) => return false,
            Ok(_) => {
                let mut b = [0u8; 1];
                return matches!(file.read(&mut b), Ok(1) if b[0] == b'R');
            }
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return false,
        }
    }
}

/// Closes every descriptor above stderr this process inherited from its caller. `connectd
/// start` is run by hooks (our red.up hook under dhcpcd's hook script, pppd's ip-up,
/// networking/red): a supervisor that kept their descriptors open for its whole life would
/// hold what they meant to be short-lived, e.g. a lock of the caller's (the lab's
/// one-dhcpcd-per-interface lock: the next `network start red` of a `redctrl restart`
/// found it held by the exiting supervisor and started no dhcpcd, issue 12 item 9), a pipe
/// whose reader waits for EOF. Called first thing, before this process opened anything.
pub(crate) fn close_inherited_fds() {
    let fds: Vec<i32> = match std::fs::read_dir("/proc/self/fd") {
        Ok(dir) => dir
            .flatten()
            .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
            .filter(|&fd| fd > 2)
            .collect(),
        Err(_) => return,
    };
    // The directory's own descriptor is among them, closed already: EBADF, ignored.
    for fd in fds {
        let _ = nix::unistd::close(fd);
    }
}

fn redirect_stdio_to_null() {
    if let Ok(null) = OpenOptions::new().read(true).write(true).open("/dev/null") {
        for fd in 0..=2 {
            let _ = nix::unistd::dup2(null.as_raw_fd(), fd);
        }
    }
}

/// Sends SIGTERM to the running supervisor and waits (up to `wait`) until it let go of the
/// lock (polling on `clock`). `Ok(false)` when none was running.
pub fn stop(paths: &Paths, clock: &dyn Clock, wait: Duration) -> Result<bool> {
    let Some(pid) = running_pid(paths) else {
        return Ok(false);
    };
    if pid <= 1 {
        return Err(Error::Failed(format!(
            "{}: holds pid {pid}, refusing to signal it",
            paths.pidfile().display()
        )));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGTERM,
    )
    .map_err(|e| Error::Failed(format!("cannot signal connectd (pid {pid}): {e}")))?;
    let deadline = clock.now() + wait;
    while clock.now() < deadline {
        if let Ok(Some(_)) = Lock::try_acquire(paths) {
            return Ok(true);
        }
        // Waiting for another process; no fd to poll.
        clock.sleep(Duration::from_millis(50));
    }
    Err(Error::Failed(format!(
        "connectd (pid {pid}) did not stop within {}s",
        wait.as_secs()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_is_exclusive_per_root() {
        let d = tempfile::tempdir().unwrap();
        let paths = Paths::new(d.path()).unwrap();
        let mut first = Lock::try_acquire(&paths).unwrap().expect("free lock");
        first.write_pid().unwrap();
        assert!(Lock::try_acquire(&paths).unwrap().is_none());
        assert_eq!(running_pid(&paths), Some(std::process::id() as i32));
        drop(first);
        assert!(Lock::try_acquire(&paths).unwrap().is_some());
        assert_eq!(running_pid(&paths), None);
    }
}
