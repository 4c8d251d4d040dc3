//! `connectd`: the supervisor and its control commands (DESIGN.md section 7).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::error::{Error, Result};
use crate::paths::Paths;

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
    /// Create (or show) the HTTP API token.
    ApiKey,
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
    crate::log::init(foreground, args.verbose);
    let paths = Paths::from_arg_or_env(args.root.as_deref())?;
    match args.command {
        Command::Check { json } => crate::health::run_check(&paths, json),
        other => Err(Error::Failed(format!("{other:?}: not implemented yet"))),
    }
}
