//! Running external programs: argv vectors only, always with a deadline.
//!
//! Settings come from the web UI and are untrusted, so nothing is ever passed through a
//! shell. Output is captured into an unlinked temporary file rather than a pipe: IPFire's
//! `network start red` leaves pppd or dhcpcd running with our stdout inherited, and a pipe
//! would then never reach end-of-file.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::sys::clock::{Clock, SystemClock};

use crate::error::{Error, IoContext, Result};

/// How much of a program's output is kept for logs and errors.
const OUTPUT_TAIL: usize = 4096;

/// A program to run: argv, extra environment, and how long it may take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandSpec {
    /// Program and arguments; `argv[0]` is a path or a name looked up in `PATH`.
    pub argv: Vec<OsString>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// Deadline; the program is killed when it is reached.
    pub timeout: Duration,
    /// Run it in a process group of its own and kill the whole group at the deadline
    /// (hooks, pre-tests: nothing they started may outlive them). Off for IPFire's network
    /// script, whose daemons must keep running.
    pub own_group: bool,
}

impl CommandSpec {
    /// A command with no extra environment.
    pub fn new<I, S>(argv: I, timeout: Duration) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        CommandSpec {
            argv: argv.into_iter().map(Into::into).collect(),
            env: Vec::new(),
            timeout,
            own_group: false,
        }
    }

    /// Runs it in its own process group, killed as a whole at the deadline.
    pub(crate) fn in_own_group(mut self) -> Self {
        self.own_group = true;
        self
    }

    /// Adds an environment variable.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// `argv` for logs.
    pub fn display(&self) -> String {
        self.argv
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// `argv[0]` for error messages.
    pub(crate) fn argv0(&self) -> String {
        self.argv
            .first()
            .map(|a| a.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

/// The first executable file called `name` in the directories of `PATH`, as `command -v`
/// finds it; `None` when there is none (or `PATH` is unset).
pub fn find_in_path(name: &str) -> Option<PathBuf> {
    find_in(&std::env::var_os("PATH")?, name)
}

fn find_in(path: &std::ffi::OsStr, name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    std::env::split_paths(path)
        .filter(|d| !d.as_os_str().is_empty())
        .map(|d| d.join(name))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// What a finished (or killed) program left.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CmdOutcome {
    /// Exit code; `None` when killed by a signal or by the deadline.
    pub code: Option<i32>,
    /// Whether the deadline killed it.
    pub timed_out: bool,
    /// The last few KiB of stdout and stderr, interleaved.
    pub output: String,
}

impl CmdOutcome {
    /// Exit code 0 within the deadline.
    pub fn success(&self) -> bool {
        self.code == Some(0) && !self.timed_out
    }
}

/// The seam through which every external program runs.
pub trait Runner {
    /// Runs `cmd` to completion or its deadline. `Err` only when it could not be started.
    fn run(&self, cmd: &CommandSpec) -> Result<CmdOutcome>;
}

/// The real runner: `std::process` with a deadline (no crate: a spawn, a `try_wait` loop
/// and a kill are all it takes, and the output goes to a file, so no pipe can fill up).
#[derive(Debug, Default, Clone, Copy)]
pub struct ProcessRunner;

fn unlinked_tempfile() -> Result<File> {
    let path: PathBuf = std::env::temp_dir().join(format!(
        "connectd-out.{}.{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .at(&path)?;
    std::fs::remove_file(&path).at(&path)?;
    Ok(f)
}

fn tail(mut f: File) -> String {
    let len = f.seek(SeekFrom::End(0)).unwrap_or(0);
    let start = len.saturating_sub(OUTPUT_TAIL as u64);
    let mut buf = Vec::new();
    if f.seek(SeekFrom::Start(start)).is_ok() {
        let _ = f.read_to_end(&mut buf);
    }
    String::from_utf8_lossy(&buf).into_owned()
}

impl Runner for ProcessRunner {
    fn run(&self, cmd: &CommandSpec) -> Result<CmdOutcome> {
        use std::os::unix::process::CommandExt;

        let (prog, args) = cmd
            .argv
            .split_first()
            .ok_or_else(|| Error::usage("argv", "empty command"))?;
        let out = unlinked_tempfile()?;
        let stdout = out.try_clone().at("output file")?;
        let stderr = out.try_clone().at("output file")?;
        #[allow(clippy::disallowed_methods)] // this is the Runner every program goes through
        let mut c = Command::new(prog);
        c.args(args)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr);
        for (k, v) in &cmd.env {
            c.env(k, v);
        }
        if cmd.own_group {
            c.process_group(0);
        }
        let mut child = c.spawn().map_err(|e| Error::Command {
            argv0: cmd.argv0(),
            msg: format!("cannot start: {e}"),
        })?;
        let deadline = SystemClock.now() + cmd.timeout;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    return Ok(CmdOutcome {
                        code: status.code(),
                        timed_out: false,
                        output: tail(out),
                    });
                }
                Ok(None) => {}
                Err(e) => {
                    return Err(Error::Command {
                        argv0: cmd.argv0(),
                        msg: format!("wait failed: {e}"),
                    });
                }
            }
            if SystemClock.now() >= deadline {
                // Its own group: the whole group (the child is its leader, its PID the
                // group's ID; it is not reaped yet, so the ID cannot have been reused).
                if cmd.own_group {
                    if let Ok(pgid) = i32::try_from(child.id()) {
                        let _ = nix::sys::signal::killpg(
                            nix::unistd::Pid::from_raw(pgid),
                            nix::sys::signal::Signal::SIGKILL,
                        );
                    }
                }
                let _ = child.kill();
                let _ = child.wait();
                log::warn!(
                    "{} killed after its deadline of {:?}",
                    cmd.argv0(),
                    cmd.timeout
                );
                return Ok(CmdOutcome {
                    code: None,
                    timed_out: true,
                    output: tail(out),
                });
            }
            #[allow(clippy::disallowed_methods)]
            // a child's exit has no fd to poll; 10 ms is cheap
            SystemClock.sleep(Duration::from_millis(10));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::disallowed_methods)] // a fixture tree
    fn finds_the_first_executable_in_path() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (d.path().join("a"), d.path().join("b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        std::fs::write(a.join("conntrack"), "not executable").unwrap();
        std::fs::create_dir(a.join("tool")).unwrap();
        std::fs::write(b.join("conntrack"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(b.join("conntrack"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        let path = std::env::join_paths(["", a.to_str().unwrap(), b.to_str().unwrap()]).unwrap();
        assert_eq!(find_in(&path, "conntrack"), Some(b.join("conntrack")));
        assert_eq!(find_in(&path, "tool"), None);
        assert_eq!(find_in(&path, "missing"), None);
        assert!(find_in_path("sh").is_some());
    }

    #[test]
    fn captures_exit_code_and_output() {
        let o = ProcessRunner
            .run(&CommandSpec::new(
                ["sh", "-c", "echo hi; echo err >&2; exit 3"],
                Duration::from_secs(5),
            ))
            .unwrap();
        assert_eq!(o.code, Some(3));
        assert!(o.output.contains("hi") && o.output.contains("err"));
        assert!(!o.success());
    }

    #[test]
    fn kills_at_the_deadline() {
        let t = SystemClock.now();
        let o = ProcessRunner
            .run(&CommandSpec::new(
                ["sleep", "30"],
                Duration::from_millis(200),
            ))
            .unwrap();
        assert!(o.timed_out && o.code.is_none());
        assert!(t.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn own_group_kills_grandchildren_at_the_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let script = format!("sleep 30 & echo $! > {}; wait", pidfile.display());
        let o = ProcessRunner
            .run(
                &CommandSpec::new(["sh", "-c", &script], Duration::from_millis(300)).in_own_group(),
            )
            .unwrap();
        assert!(o.timed_out);
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // The grandchild is gone (or a zombie being reaped by init).
        let mut alive = true;
        for _ in 0..50 {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            if stat.is_empty() || stat.contains(") Z ") {
                alive = false;
                break;
            }
            #[allow(clippy::disallowed_methods)]
            SystemClock.sleep(Duration::from_millis(20));
        }
        assert!(!alive, "grandchild {pid} survived the deadline");
    }

    #[test]
    fn background_children_holding_stdout_do_not_block() {
        // Like `network start red` leaving pppd behind with our stdout.
        let t = SystemClock.now();
        let o = ProcessRunner
            .run(&CommandSpec::new(
                ["sh", "-c", "sleep 3 & echo started"],
                Duration::from_secs(10),
            ))
            .unwrap();
        assert!(o.success(), "{o:?}");
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "waited for the background child"
        );
    }

    #[test]
    fn environment_is_passed_and_missing_program_is_an_error() {
        let o = ProcessRunner
            .run(
                &CommandSpec::new(["sh", "-c", "echo $EVENT"], Duration::from_secs(5))
                    .env("EVENT", "up"),
            )
            .unwrap();
        assert_eq!(o.output.trim(), "up");
        let e = ProcessRunner
            .run(&CommandSpec::new(
                ["/nonexistent/prog"],
                Duration::from_secs(1),
            ))
            .unwrap_err();
        assert!(e.to_string().contains("/nonexistent/prog"));
    }
}
