//! Event hooks: executables in `/etc/rc.d/init.d/networking/failover.d/`, run in name order
//! (IPFire's `run_subdir` style) with `EVENT`, `FROM_PROFILE`, `TO_PROFILE` and `REASON` in
//! the environment.
//!
//! Hooks run on a thread of their own, one event after the other, each with a deadline
//! (`HOOK_TIMEOUT`): a hanging or failing hook is logged and killed, and never blocks the
//! supervisor's loop.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use crate::sys::exec::{CommandSpec, Runner};

pub use crate::supervisor::machine::HookEvent;

/// One event to report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HookCall {
    /// What happened.
    pub event: HookEvent,
    /// `FROM_PROFILE` (empty when none).
    pub from: String,
    /// `TO_PROFILE` (empty when none).
    pub to: String,
    /// `REASON`.
    pub reason: String,
}

/// The executable regular files of `dir`, in name order; hidden files and editor backups
/// (`*~`, `*.bak`, `*.orig`, `*.dpkg-*`) are skipped.
pub(crate) fn list_hooks(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = rd
        .filter_map(|e| e.ok())
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            !(name.starts_with('.')
                || name.ends_with('~')
                || name.ends_with(".bak")
                || name.ends_with(".orig")
                || name.contains(".dpkg-"))
        })
        .filter(|e| {
            e.metadata()
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
        .map(|e| e.path())
        .collect();
    out.sort();
    out
}

/// Runs every hook for `call` now, each within `timeout`. Failures are logged.
pub(crate) fn run_now(runner: &dyn Runner, dir: &Path, call: &HookCall, timeout: Duration) {
    for hook in list_hooks(dir) {
        let spec = CommandSpec::new([hook.as_os_str()], timeout)
            .in_own_group()
            .env("EVENT", call.event.as_str())
            .env("FROM_PROFILE", &call.from)
            .env("TO_PROFILE", &call.to)
            .env("REASON", &call.reason);
        match runner.run(&spec) {
            Ok(o) if o.success() => {
                log::debug!("hook {} ({}) ok", hook.display(), call.event.as_str())
            }
            Ok(o) if o.timed_out => log::warn!(
                "hook {} ({}) killed after {}s",
                hook.display(),
                call.event.as_str(),
                timeout.as_secs_f32()
            ),
            Ok(o) => log::warn!(
                "hook {} ({}) failed with {:?}: {}",
                hook.display(),
                call.event.as_str(),
                o.code,
                o.output.lines().last().unwrap_or_default()
            ),
            Err(e) => log::warn!("hook {}: {e}", hook.display()),
        }
    }
}

/// Runs hooks on a background thread, in the order events are sent.
#[derive(Debug)]
pub(crate) struct HookRunner {
    tx: Option<mpsc::Sender<HookCall>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HookRunner {
    /// Starts the hook thread for `dir`, running the hooks through `runner`.
    pub fn spawn(runner: Arc<dyn Runner + Send + Sync>, dir: PathBuf, timeout: Duration) -> Self {
        let (tx, rx) = mpsc::channel::<HookCall>();
        let thread = std::thread::Builder::new()
            .name("hooks".into())
            .spawn(move || {
                for call in rx {
                    run_now(runner.as_ref(), &dir, &call, timeout);
                }
            })
            .ok();
        HookRunner {
            tx: Some(tx),
            thread,
        }
    }

    /// Queues `call`; returns at once.
    pub(crate) fn send(&self, call: HookCall) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(call);
        }
    }

    /// Lets queued hooks finish (each bounded by its timeout) and stops the thread.
    pub fn finish(mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests build fixtures with plain writes
mod tests {
    use super::*;
    use crate::sys::clock::{Clock, SystemClock};
    use crate::sys::exec::ProcessRunner;

    fn hook(dir: &Path, name: &str, body: &str) {
        let p = dir.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn hooks_get_the_environment_in_name_order() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("out");
        hook(
            d.path(),
            "20-second",
            &format!("echo second $EVENT >> {}", out.display()),
        );
        hook(
            d.path(),
            "10-first",
            &format!(
                "echo \"$EVENT|$FROM_PROFILE|$TO_PROFILE|$REASON\" >> {}",
                out.display()
            ),
        );
        std::fs::write(d.path().join("30-not-executable"), "#!/bin/sh\necho no\n").unwrap();
        hook(d.path(), "40-backup~", "echo no");
        let call = HookCall {
            event: HookEvent::Failover,
            from: "1".into(),
            to: "2".into(),
            reason: "3/3 rounds failed".into(),
        };
        run_now(&ProcessRunner, d.path(), &call, Duration::from_secs(5));
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "failover|1|2|3/3 rounds failed\nsecond failover\n"
        );
    }

    #[test]
    fn a_hanging_hook_is_killed_and_never_blocks_the_sender() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("out");
        hook(d.path(), "10-hang", "sleep 30");
        hook(
            d.path(),
            "20-after",
            &format!("echo ran >> {}", out.display()),
        );
        let runner = HookRunner::spawn(
            Arc::new(ProcessRunner),
            d.path().to_path_buf(),
            Duration::from_millis(300),
        );
        let t = SystemClock.now();
        runner.send(HookCall {
            event: HookEvent::Up,
            from: String::new(),
            to: "1".into(),
            reason: "test".into(),
        });
        assert!(t.elapsed() < Duration::from_millis(100), "send blocked");
        runner.finish();
        assert!(t.elapsed() < Duration::from_secs(5), "hang not killed");
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "ran\n");
    }
}
