//! `connectd`: the supervisor and its control commands (DESIGN.md section 7).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use std::time::Duration;

use crate::error::{Error, Result};
use crate::ipfire::journal::SwitchKind;
use crate::ipfire::paths::Paths;
use crate::ipfire::policy::Policy;
use crate::ipfire::profile::ProfileName;
use crate::ipfire::state::State;
use crate::supervisor::control::{self, Reply, Request};
use crate::supervisor::daemon;
use crate::supervisor::offline;
use crate::supervisor::status;
use crate::supervisor::{Seams, Services, Supervisor};
use crate::sys::clock::SystemClock;
use crate::sys::exec::ProcessRunner;
use crate::uplink::health::{Passive, RealProber};
use crate::uplink::journaled;
use crate::uplink::pretest::{PretestWorker, RealPreTester};
use crate::uplink::switch::{self, SwitchOptions};

/// Keeps IPFire's RED uplink alive: failover along backup profiles, failback without flapping.
#[derive(Debug, Parser)]
#[command(name = "connectd", version)]
pub struct Args {
    /// Resolve every IPFire path under DIR (env CONNECTD_ROOT; default /).
    #[arg(long, global = true, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Log debug details too.
    #[arg(short, long, global = true)]
    pub verbose: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start supervising RED (returns at once; a running supervisor is left alone).
    Start {
        /// Stay attached and log to stderr too.
        #[arg(long)]
        foreground: bool,
    },
    /// Stop supervising (no redial).
    Stop,
    /// Reconnect RED (called by pppd's ip-down).
    Reconnect,
    /// Switch to PROFILE and pin it (automatic failback paused).
    Failover {
        /// The profile to switch to.
        profile: String,
    },
    /// Return to the primary profile.
    Failback {
        /// Skip the pre-test of the primary.
        #[arg(long)]
        force: bool,
    },
    /// Turn automatic failover/failback on or off.
    Auto {
        /// on or off.
        #[arg(value_parser = ["on", "off"])]
        mode: String,
    },
    /// Show the supervisor's state.
    Status {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Run one probe round on the current RED now.
    Check {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// The last 24 hours: which profile carried traffic, switches, RTT, pre-tests.
    History {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Show the failover policy, or change it (validated, written atomically, reloaded).
    Policy {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        /// `set KEY=VALUE...`.
        #[command(subcommand)]
        action: Option<PolicyAction>,
    },
    /// Create (or show) the HTTP API token.
    ApiKey,
}

/// `connectd policy` subcommands.
#[derive(Debug, Subcommand)]
pub enum PolicyAction {
    /// Set KEY=VALUE pairs in connectd/settings; nothing is written if any is refused.
    Set {
        /// KEY=VALUE, e.g. FAILBACK_DELAY=600.
        #[arg(required = true, value_name = "KEY=VALUE")]
        pairs: Vec<String>,
    },
}

/// Parses the command line, runs the command, maps errors onto exit codes.
pub fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    match run(args) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("connectd: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn run(args: Args) -> Result<u8> {
    if matches!(args.command, Command::Start { .. }) {
        // Before anything is opened: the supervisor keeps none of its caller's descriptors.
        crate::supervisor::daemon::close_inherited_fds();
    }
    let foreground = matches!(args.command, Command::Start { foreground: true });
    crate::sys::log::init(foreground || args.verbose, args.verbose);
    let paths = Paths::from_arg_or_env(args.root.as_deref())?;
    match args.command {
        Command::Start { foreground } => start(&paths, foreground),
        Command::Stop => match daemon::stop(&paths, &SystemClock, STOP_WAIT)? {
            true => {
                println!("connectd stopped");
                Ok(0)
            }
            false => {
                println!("connectd is not running");
                Ok(0)
            }
        },
        Command::Reconnect => {
            if let Some(r) = control::call(&paths.control_socket(), &Request::Reconnect, CALL_WAIT)?
            {
                return Ok(print_reply(&r));
            }
            if !paths.keepconnected().exists() {
                println!("red/keepconnected is absent (the user disconnected): not reconnecting");
                return Ok(0);
            }
            // No supervisor (failover off: IPFire's connectd exits once online): what
            // IPFire's `connectd reconnect` does, `network restart red` once pppd is gone;
            // the network script's own `connectd start` then supervises the dial.
            let opts = SwitchOptions::default();
            journaled::network(&paths, &ProcessRunner, &opts, "stop")?;
            journaled::network(&paths, &ProcessRunner, &opts, "start")?;
            start(&paths, false)
        }
        Command::Failover { profile } => {
            let name = ProfileName::new(&profile)?;
            let req = Request::Failover {
                profile: name.to_string(),
            };
            match control::call(&paths.control_socket(), &req, CALL_WAIT)? {
                Some(r) => Ok(print_reply(&r)),
                None => offline::switch_to(
                    &paths,
                    &ProcessRunner,
                    &SystemClock,
                    &name,
                    SwitchKind::Manual,
                    true,
                ),
            }
        }
        Command::Failback { force } => {
            match control::call(
                &paths.control_socket(),
                &Request::Failback { force },
                CALL_WAIT,
            )? {
                Some(r) => Ok(print_reply(&r)),
                None => {
                    let st = State::load_or_reset(&paths);
                    let primary = offline::primary(&paths, &st)?;
                    if switch::active_profile(&paths)?.as_ref() == Some(&primary) {
                        println!("already on the primary profile {primary}");
                        return Ok(0);
                    }
                    offline::switch_to(
                        &paths,
                        &ProcessRunner,
                        &SystemClock,
                        &primary,
                        SwitchKind::Failback,
                        true,
                    )
                }
            }
        }
        Command::Auto { mode } => {
            let enabled = mode == "on";
            match control::call(
                &paths.control_socket(),
                &Request::Auto { enabled },
                CALL_WAIT,
            )? {
                Some(r) => Ok(print_reply(&r)),
                None => offline::set_auto(&paths, enabled),
            }
        }
        Command::Status { json } => {
            let status = match control::call(&paths.control_socket(), &Request::Status, CALL_WAIT)?
            {
                Some(Reply {
                    status: Some(s), ..
                }) => s,
                Some(r) => return Ok(print_reply(&r)),
                None => status::from_files(&paths, &State::load_or_reset(&paths)),
            };
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&status).unwrap_or_default()
                );
            } else {
                print!("{}", crate::front::status::human(&status));
            }
            Ok(0)
        }
        Command::Check { json } => crate::uplink::health::run_check(&paths, json),
        Command::History { json } => super::wui::history(&paths, json),
        Command::Policy { json, action } => match action {
            Some(PolicyAction::Set { pairs }) => super::wui::policy(&paths, json, Some(&pairs)),
            None => super::wui::policy(&paths, json, None),
        },
        Command::ApiKey => crate::front::status::api_key(&paths),
    }
}

/// How long `stop` waits for the supervisor to let go of its lock.
const STOP_WAIT: Duration = Duration::from_secs(30);
/// How long a control call waits for the supervisor's answer (a switch may be running).
const CALL_WAIT: Duration = Duration::from_secs(120);

fn print_reply(r: &Reply) -> u8 {
    let msg = r.message.as_deref().unwrap_or_default();
    if r.ok {
        println!("{msg}");
        0
    } else {
        eprintln!("connectd: {msg}");
        r.code.unwrap_or(1)
    }
}

/// `start`: exactly one supervisor per root. Returns at once when one runs; otherwise
/// prepares (an invalid policy fails here, exit 2, before any fork) and runs it, detached
/// unless `foreground`.
fn start(paths: &Paths, foreground: bool) -> Result<u8> {
    // IPFire's network script waits on its `connectd start` (networking/red:484,
    // system/connectd:45-75): boot continues once the line is up. Our own calls (the
    // supervisor's network-script calls, our red.up hook, the boot link) never wait.
    let caller = std::env::var(switch::CALLER_ENV).ok();
    let wait = !foreground && caller.is_none() && called_by_network_script(&paths.proc());
    // IPFire's connectd writes red/keepconnected on every start when it is missing or
    // empty (system/connectd:45-49): a Connect after a Disconnect, connscheduler's
    // `profile N` + `network restart red` (issue 12 item 9). Not on the supervisor's own
    // network-script calls: a Disconnect during its switch must stay.
    if caller.as_deref() != Some(switch::OWN_CALLER) {
        let kc = paths.keepconnected();
        if crate::ipfire::fsutil::read_word(&kc).is_none() && paths.red_dir().is_dir() {
            if let Err(e) = crate::ipfire::fsutil::replace_atomically(&kc, b"0", 0o644) {
                log::warn!("{e}");
            }
        }
    }
    let code = start_supervisor(paths, foreground)?;
    if wait && code == 0 {
        wait_like_ipfire(paths, &SystemClock, IPFIRE_WAIT_ROUNDS, IPFIRE_WAIT_ROUND);
    }
    Ok(code)
}

/// IPFire's connectd waits `MAX=160` rounds of `sleep 5` (system/connectd:31,53-75).
const IPFIRE_WAIT_ROUNDS: u32 = 160;
const IPFIRE_WAIT_ROUND: Duration = Duration::from_secs(5);

/// Whether an ancestor (up to four up) is IPFire's network script bringing RED up:
/// `networking/red start`, or `network start red` (the lab's one-file stand-in).
fn called_by_network_script(proc: &std::path::Path) -> bool {
    let mut pid = std::process::id();
    for _ in 0..4 {
        let Some(ppid) = std::fs::read_to_string(proc.join(format!("{pid}/stat")))
            .ok()
            .and_then(|s| {
                // pid (comm) state ppid ...: comm may hold spaces and parentheses.
                let rest = &s[s.rfind(')')? + 1..];
                rest.split_whitespace().nth(1)?.parse::<u32>().ok()
            })
        else {
            return false;
        };
        if ppid <= 1 {
            return false;
        }
        let args: Vec<String> = std::fs::read(proc.join(format!("{ppid}/cmdline")))
            .unwrap_or_default()
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if is_network_script(&args) {
            return true;
        }
        pid = ppid;
    }
    false
}

/// `…/networking/red start` or `…/init.d/network start red`, as a shell runs it.
fn is_network_script(args: &[String]) -> bool {
    let script = args
        .iter()
        .position(|a| a.ends_with("init.d/networking/red") || a.ends_with("init.d/network"));
    let Some(i) = script else { return false };
    let rest = &args[i + 1..];
    if args[i].ends_with("networking/red") {
        rest.first().is_some_and(|v| v == "start")
    } else {
        rest.first().is_some_and(|v| v == "start") && rest.get(1).is_some_and(|v| v == "red")
    }
}

/// Blocks like IPFire's `connectd start` while the supervisor runs in the background:
/// until `red/active` appears, `red/keepconnected` vanishes (Disconnect), no pppd runs on
/// a pppd RED, or `rounds` × `round` passed. Polls every second.
fn wait_like_ipfire(
    paths: &Paths,
    clock: &dyn crate::sys::clock::Clock,
    rounds: u32,
    round: Duration,
) {
    let limit = round * rounds;
    let start = clock.now();
    let pppd_red = crate::ipfire::ethernet::RedValues::read(paths)
        .ok()
        .is_some_and(|r| r.get("RED_TYPE") == Some("PPPOE"))
        && switch::active_profile(paths)
            .ok()
            .flatten()
            .and_then(|p| crate::ipfire::profile::Profile::load(paths, &p).ok())
            .is_some_and(|p| p.kind.uses_pppd());
    loop {
        if paths.red_active().exists() {
            return;
        }
        if !paths.keepconnected().exists() {
            return;
        }
        if pppd_red && switch::red_daemons(&paths.proc(), None).is_empty() {
            return;
        }
        if clock.now().duration_since(start) >= limit {
            return;
        }
        clock.sleep(Duration::from_secs(1).min(round));
    }
}

fn start_supervisor(paths: &Paths, foreground: bool) -> Result<u8> {
    // `start` is the next Connect (networking/red:484, our red.up hook, the boot link):
    // supervision resumes, a deliberate stop seen by our red.down hook is over.
    let _ = std::fs::remove_file(paths.red_stopped());
    let Some(lock) = daemon::Lock::try_acquire(paths)? else {
        let pid = daemon::running_pid(paths)
            .map(|p| format!(" (pid {p})"))
            .unwrap_or_default();
        println!("connectd is already running{pid}");
        return Ok(0);
    };
    let sup = Supervisor::new(paths, real_seams(paths))?;
    if foreground {
        let mut lock = lock;
        let _ = lock.write_pid();
        let listener = control::bind(&paths.control_socket())?;
        return sup.run(listener, &mut || {}, &mut Api::default());
    }
    match daemon::daemonize(lock, &SystemClock, Duration::from_secs(10))? {
        (daemon::Forked::Parent(true), _) => Ok(0),
        (daemon::Forked::Parent(false), _) => Err(Error::Failed(
            "the supervisor did not come up; see the system log (connectd[PID])".into(),
        )),
        (daemon::Forked::Daemon(mut ready), lock) => {
            let _lock = lock;
            let listener = control::bind(&paths.control_socket())?;
            let code = sup.run(listener, &mut || ready.notify(), &mut Api::default());
            match code {
                Ok(c) => Ok(c),
                Err(e) => {
                    log::error!("{e}");
                    Err(e)
                }
            }
        }
    }
}

/// The real seams: the library never creates them itself.
fn real_seams(paths: &Paths) -> Seams {
    Seams {
        runner: std::sync::Arc::new(ProcessRunner),
        clock: Box::new(SystemClock),
        prober: Box::new(RealProber::new(paths)),
        pretests: PretestWorker::threaded(Box::new(RealPreTester::new(
            Box::new(ProcessRunner),
            paths,
        ))),
        passive: Passive::new(paths),
        proof: {
            let paths = paths.clone();
            Box::new(move |profile, device, timeout, probes| {
                let link = crate::uplink::proof::real_link(&paths, profile, device, timeout)?;
                let prober = Box::new(RealProber::new(&paths));
                Some(crate::uplink::proof::ProofSession::start(
                    link, prober, probes,
                ))
            })
        },
        switch: SwitchOptions::default(),
    }
}

/// The HTTP API, started beside the supervisor when the policy asks for it.
#[derive(Default)]
struct Api(Option<crate::front::api::ApiHandle>);

impl Services for Api {
    fn start(&mut self, paths: &Paths, policy: &Policy) {
        self.0 = crate::front::api::start_from_policy(paths, policy);
    }

    fn stop(&mut self) {
        if let Some(api) = self.0.take() {
            api.stop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| (*s).to_string()).collect()
    }

    #[test]
    fn only_the_network_scripts_start_of_red_is_recognised() {
        assert!(is_network_script(&args(&[
            "/bin/bash",
            "/etc/rc.d/init.d/networking/red",
            "start"
        ])));
        assert!(is_network_script(&args(&[
            "/bin/bash",
            "/etc/rc.d/init.d/network",
            "start",
            "red"
        ])));
        assert!(!is_network_script(&args(&[
            "/bin/bash",
            "/etc/rc.d/init.d/networking/red",
            "stop"
        ])));
        assert!(!is_network_script(&args(&[
            "/bin/bash",
            "/etc/rc.d/init.d/network",
            "start"
        ])));
        assert!(!is_network_script(&args(&[
            "/bin/bash",
            "/etc/rc.d/init.d/connectd",
            "start"
        ])));
    }
}
