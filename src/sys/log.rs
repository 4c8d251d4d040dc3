//! Logging: syslog as `connectd[PID]` (like the old script's `logger -t connectd[$$]`),
//! optionally mirrored to stderr (`--foreground`, the CLIs' `-v`).
//!
//! The library logs through the `log` facade; user-facing messages of the CLIs go to stderr
//! directly. Nothing logged may contain a secret: profiles carry passwords as
//! [`crate::ipfire::profile::Secret`], whose `Debug` masks them.
//!
//! The syslog client is ours ([`Syslog`], no crate): one RFC 3164 line per datagram to
//! `/dev/log`, the PID taken at each line (the supervisor is forked off the short-lived
//! `connectd start`, whose PID the lines must not keep), and a new connection when a send
//! fails (syslogd restarted: its socket is a new one).

use std::io::{self, Write};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Where syslogd listens.
pub const DEV_LOG: &str = "/dev/log";

/// Facility `daemon` (RFC 3164 4.1.1).
const FACILITY_DAEMON: u8 = 3;

/// One line as syslogd expects it on `/dev/log` (RFC 3164 4.1, without the hostname, which
/// syslogd adds): `<PRI>Mmm dd hh:mm:ss connectd[PID]: MSG`.
pub(crate) fn format_3164(
    level: log::Level,
    msg: &str,
    pid: u32,
    now: chrono::DateTime<chrono::Local>,
) -> String {
    let severity: u8 = match level {
        log::Level::Error => 3,
        log::Level::Warn => 4,
        log::Level::Info => 6,
        log::Level::Debug | log::Level::Trace => 7,
    };
    format!(
        "<{}>{} connectd[{pid}]: {msg}",
        FACILITY_DAEMON * 8 + severity,
        now.format("%b %e %H:%M:%S")
    )
}

enum Conn {
    /// What syslogds (sysklogd on IPFire, rsyslog, journald) listen on.
    Datagram(UnixDatagram),
    /// A stream socket (some syslogds): NUL ends a message.
    Stream(UnixStream),
}

/// A syslog client on a Unix socket, connected when first needed.
pub struct Syslog {
    path: PathBuf,
    conn: Option<Conn>,
}

impl Syslog {
    /// A client for the socket at `path` ([`DEV_LOG`] in production).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Syslog {
            path: path.into(),
            conn: None,
        }
    }

    fn connect(path: &Path) -> io::Result<Conn> {
        let d = UnixDatagram::unbound()?;
        match d.connect(path) {
            Ok(()) => {
                // A hung syslogd must not stall the supervisor: a full queue drops the line.
                d.set_nonblocking(true)?;
                Ok(Conn::Datagram(d))
            }
            Err(e) if e.raw_os_error() == Some(nix::libc::EPROTOTYPE) => {
                let s = UnixStream::connect(path)?;
                s.set_write_timeout(Some(std::time::Duration::from_millis(200)))?;
                Ok(Conn::Stream(s))
            }
            Err(e) => Err(e),
        }
    }

    fn send_on(conn: &mut Conn, line: &[u8]) -> io::Result<()> {
        match conn {
            Conn::Datagram(d) => d.send(line).map(|_| ()),
            Conn::Stream(s) => {
                s.write_all(line)?;
                s.write_all(b"\0")
            }
        }
    }

    /// Sends one line: on the current connection, else (none yet, or the send failed
    /// because syslogd went away or restarted) on a new one, once. A full queue of a
    /// datagram socket drops the line rather than wait.
    pub(crate) fn send(&mut self, line: &str) -> io::Result<()> {
        if let Some(c) = &mut self.conn {
            match Self::send_on(c, line.as_bytes()) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Err(e),
                Err(_) => self.conn = None,
            }
        }
        let mut c = Self::connect(&self.path)?;
        Self::send_on(&mut c, line.as_bytes())?;
        self.conn = Some(c);
        Ok(())
    }
}

struct Logger {
    syslog: Option<Mutex<Syslog>>,
    stderr: bool,
    /// [`LOG_FILE_ENV`]: a copy of every line appended to this file.
    file: Option<std::path::PathBuf>,
    level: log::LevelFilter,
}

impl log::Log for Logger {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= self.level
    }

    fn log(&self, r: &log::Record<'_>) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let msg = r.args().to_string();
        let now = chrono::Local::now();
        // The PID now, not at init: `connectd start` forks the supervisor off.
        let pid = std::process::id();
        if let Some(s) = &self.syslog {
            if let Ok(mut s) = s.lock() {
                let _ = s.send(&format_3164(r.level(), &msg, pid, now));
            }
        }
        let line = || {
            format!(
                "{} connectd[{pid}] {}: {msg}\n",
                now.format("%H:%M:%S%.3f"),
                r.level().as_str().to_ascii_lowercase()
            )
        };
        if self.stderr {
            let _ = std::io::stderr().write_all(line().as_bytes());
        }
        if let Some(f) = &self.file {
            // One write per line on an O_APPEND descriptor: lines of several processes
            // (the supervisor, `connectd start`) never interleave.
            if let Ok(mut f) = std::fs::OpenOptions::new().append(true).open(f) {
                let _ = f.write_all(line().as_bytes());
            }
        }
    }

    fn flush(&self) {}
}

/// A file that gets a copy of every log line, when it exists (the lab's boxes have no
/// syslogd: `tools/lab.d/connectd-init` points it into the box's log directory).
pub const LOG_FILE_ENV: &str = "CONNECTD_LOG_FILE";

/// Installs the logger: syslog on [`DEV_LOG`] and, if `stderr`, a copy on stderr (and
/// one in [`LOG_FILE_ENV`]'s file). Calling it twice is harmless (the first one stays).
pub fn init(stderr: bool, verbose: bool) {
    let level = if verbose {
        log::LevelFilter::Debug
    } else {
        log::LevelFilter::Info
    };
    let logger = Logger {
        syslog: Some(Mutex::new(Syslog::new(DEV_LOG))),
        stderr,
        file: std::env::var_os(LOG_FILE_ENV).map(Into::into),
        level,
    };
    if log::set_boxed_logger(Box::new(logger)).is_ok() {
        log::set_max_level(level);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn lines_are_rfc3164_with_the_pid_given() {
        let naive = chrono::NaiveDate::from_ymd_opt(2026, 3, 7)
            .unwrap()
            .and_hms_opt(9, 5, 1)
            .unwrap();
        let t = chrono::Local.from_local_datetime(&naive).single().unwrap();
        assert_eq!(
            format_3164(log::Level::Info, "online on 1", 4242, t),
            "<30>Mar  7 09:05:01 connectd[4242]: online on 1"
        );
        assert!(format_3164(log::Level::Error, "x", 1, t).starts_with("<27>"));
        assert!(format_3164(log::Level::Warn, "x", 1, t).starts_with("<28>"));
        assert!(format_3164(log::Level::Debug, "x", 1, t).starts_with("<31>"));
    }

    fn recv(d: &UnixDatagram) -> String {
        let mut buf = [0u8; 512];
        let n = d.recv(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[test]
    fn a_restarted_syslogd_gets_the_next_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let mut s = Syslog::new(&path);
        assert!(s.send("before syslogd").is_err(), "no socket yet");

        let d = UnixDatagram::bind(&path).unwrap();
        d.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        s.send("one").unwrap();
        assert_eq!(recv(&d), "one");

        // syslogd restarts: its socket file is removed and bound anew.
        drop(d);
        std::fs::remove_file(&path).unwrap();
        let d = UnixDatagram::bind(&path).unwrap();
        d.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        s.send("two").unwrap();
        assert_eq!(recv(&d), "two");
    }

    #[test]
    fn a_stream_socket_gets_nul_terminated_lines() {
        use std::io::Read;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let l = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let mut s = Syslog::new(&path);
        s.send("a").unwrap();
        s.send("b").unwrap();
        drop(s);
        let (mut c, _) = l.accept().unwrap();
        let mut got = Vec::new();
        c.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"a\0b\0");
    }
}
