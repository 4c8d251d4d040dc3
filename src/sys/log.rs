//! Logging: syslog as `connectd[PID]` (like the old script's `logger -t connectd[$$]`),
//! optionally mirrored to stderr (`--foreground`, the CLIs' `-v`).
//!
//! The library logs through the `log` facade; user-facing messages of the CLIs go to stderr
//! directly. Nothing logged may contain a secret: profiles carry passwords as
//! [`crate::ipfire::profile::Secret`], whose `Debug` masks them.

use std::io::Write;
use std::sync::Mutex;

struct Logger {
    syslog: Option<Mutex<syslog::Logger<syslog::LoggerBackend, syslog::Formatter3164>>>,
    stderr: bool,
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
        if let Some(s) = &self.syslog {
            if let Ok(mut s) = s.lock() {
                let _ = match r.level() {
                    log::Level::Error => s.err(&msg),
                    log::Level::Warn => s.warning(&msg),
                    log::Level::Info => s.info(&msg),
                    log::Level::Debug | log::Level::Trace => s.debug(&msg),
                };
            }
        }
        if self.stderr {
            let now = chrono::Local::now().format("%H:%M:%S%.3f");
            let _ = writeln!(
                std::io::stderr(),
                "{now} connectd[{}] {}: {msg}",
                std::process::id(),
                r.level().as_str().to_ascii_lowercase()
            );
        }
    }

    fn flush(&self) {}
}

/// Installs the logger: syslog (when reachable) and, if `stderr`, a copy on stderr.
/// Calling it twice is harmless (the first one stays).
pub fn init(stderr: bool, verbose: bool) {
    let formatter = syslog::Formatter3164 {
        facility: syslog::Facility::LOG_DAEMON,
        hostname: None,
        process: "connectd".into(),
        pid: std::process::id(),
    };
    let syslog = syslog::unix(formatter).ok().map(Mutex::new);
    let level = if verbose {
        log::LevelFilter::Debug
    } else {
        log::LevelFilter::Info
    };
    let logger = Logger {
        syslog,
        stderr,
        level,
    };
    if log::set_boxed_logger(Box::new(logger)).is_ok() {
        log::set_max_level(level);
    }
}
