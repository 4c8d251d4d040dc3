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
use crate::uplink::pretest::RealPreTester;
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
        pretester: Box::new(RealPreTester::new(Box::new(ProcessRunner), paths)),
        passive: Passive::new(paths),
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
