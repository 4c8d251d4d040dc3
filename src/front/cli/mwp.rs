//! `manage-wan-profiles`: list, create, test, activate, show and delete connection profiles
//! (DESIGN.md section 7).
//!
//! Every error is one line on stderr, `manage-wan-profiles: <message>`, naming the file, key
//! or argument; exit 2 for bad usage or bad input (and then nothing is written), 1 for a
//! failure at run time. A password is read from the terminal (`create` on a terminal) or
//! from stdin (`--password-stdin`), never from argv, and `show` masks it.
//!
//! `activate` switches directly (the `switch` module, under the supervisor's lock so it
//! never races a running supervisor); it then waits for `red/active` up to
//! FAILOVER_CONNECT_TIMEOUT (unless `--no-wait`) and drops conntrack entries of the old RED
//! address.

use std::io::{BufRead, IsTerminal, Read, Write};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args as ClapArgs, Parser, Subcommand};

use crate::error::{Error, Result};
use crate::ipfire::fsutil;
use crate::ipfire::journal::SwitchKind;
use crate::ipfire::paths::Paths;
use crate::ipfire::policy::Policy;
use crate::ipfire::profile::{self, Kind, NewProfile, Profile, ProfileName, Secret};
use crate::uplink::pretest::PretestOutcome;
use crate::uplink::switch;

/// Manage IPFire's WAN connection profiles (/var/ipfire/ppp/settings-NAME).
#[derive(Debug, Parser)]
#[command(name = "manage-wan-profiles", version)]
pub struct Args {
    /// Resolve every IPFire path under DIR (env CONNECTD_ROOT; default /).
    #[arg(long, global = true, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Log debug details on stderr.
    #[arg(short, long, global = true)]
    pub verbose: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the profiles.
    List {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Create a profile (asks on a terminal; takes flags otherwise).
    Create(Box<CreateArgs>),
    /// Pre-test a profile without disturbing the active uplink.
    Test {
        /// The profile.
        name: String,
    },
    /// Make NAME the active profile (network stop red, switch files, network start red).
    Activate {
        /// The profile.
        name: String,
        /// Do not wait for RED to come up.
        #[arg(long)]
        no_wait: bool,
    },
    /// Show the active profile and the state of RED.
    Status,
    /// Show a profile (the password masked).
    Show {
        /// The profile.
        name: String,
    },
    /// Delete a profile (a WUI slot 1..5 is emptied, as the WUI does).
    Delete {
        /// The profile.
        name: String,
    },
}

/// `create`'s arguments.
#[derive(Debug, ClapArgs)]
pub struct CreateArgs {
    /// The new profile's name: 1..5 or [A-Za-z0-9_-]{1,32}.
    pub name: String,
    /// TYPE: pppoe, vdsl, pptp, qmi, modem, serial, pppoeatm, pptpatm, DHCP, STATIC.
    #[arg(long = "type", value_name = "T")]
    pub kind: Option<String>,
    /// DEVICE: the NIC, or the wwan interface for QMI.
    #[arg(long, value_name = "D")]
    pub device: Option<String>,
    /// PROFILENAME shown by the WUI (default: NAME).
    #[arg(long, value_name = "TEXT")]
    pub profile_name: Option<String>,
    /// IP (STATIC).
    #[arg(long, value_name = "A.B.C.D")]
    pub ip: Option<String>,
    /// NETMASK (STATIC).
    #[arg(long, value_name = "A.B.C.D")]
    pub netmask: Option<String>,
    /// GATEWAY (STATIC).
    #[arg(long, value_name = "A.B.C.D")]
    pub gateway: Option<String>,
    /// DNS1 (STATIC).
    #[arg(long, value_name = "A.B.C.D")]
    pub dns1: Option<String>,
    /// DNS2 (STATIC).
    #[arg(long, value_name = "A.B.C.D")]
    pub dns2: Option<String>,
    /// USERNAME (dial types).
    #[arg(long)]
    pub username: Option<String>,
    /// APN (QMI).
    #[arg(long)]
    pub apn: Option<String>,
    /// Read the password from stdin (one line).
    #[arg(long)]
    pub password_stdin: bool,
}

/// Parses the command line, runs the command, maps errors onto exit codes.
pub fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => {
            if !e.use_stderr() {
                let _ = e.print(); // --help, --version
                return ExitCode::SUCCESS;
            }
            // clap's message spans lines (the problem, then a usage block): keep the problem.
            let text = e.to_string();
            let problem: Vec<&str> = text
                .lines()
                .map(str::trim)
                .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more"))
                .filter(|l| !l.is_empty())
                .collect();
            eprintln!(
                "manage-wan-profiles: {} (see --help)",
                problem.join(" ").trim_start_matches("error: ")
            );
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("manage-wan-profiles: {}", one_line(&e.to_string()));
            ExitCode::from(e.exit_code())
        }
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Runs a parsed command line; returns the exit code for a result that is not an error.
pub fn run(args: Args) -> Result<u8> {
    crate::sys::log::init(args.verbose, args.verbose);
    let paths = Paths::from_arg_or_env(args.root.as_deref())?;
    match args.command {
        Command::List { json } => list(&paths, json),
        Command::Create(c) => create(&paths, &c),
        Command::Test { name } => test(&paths, &ProfileName::new(&name)?),
        Command::Activate { name, no_wait } => {
            activate(&paths, &ProfileName::new(&name)?, !no_wait)
        }
        Command::Status => {
            let code = status(&paths)?;
            // With a supervisor running, its view too (the same path as `connectd status`).
            if let Ok(Some(crate::supervisor::control::Reply {
                status: Some(s), ..
            })) = crate::supervisor::control::call(
                &paths.control_socket(),
                &crate::supervisor::control::Request::Status,
                Duration::from_secs(10),
            ) {
                println!();
                print!("{}", crate::front::status::human(&s));
            }
            Ok(code)
        }
        Command::Show { name } => show(&paths, &ProfileName::new(&name)?),
        Command::Delete { name } => {
            let name = ProfileName::new(&name)?;
            profile::delete(&paths, &name)?;
            println!("deleted profile {name}");
            Ok(0)
        }
    }
}

fn json_line(v: &impl serde::Serialize) -> Result<String> {
    serde_json::to_string_pretty(v).map_err(|e| Error::Failed(format!("JSON: {e}")))
}

fn list(paths: &Paths, json: bool) -> Result<u8> {
    let rows = profile::list(paths)?;
    if json {
        println!("{}", json_line(&rows)?);
        return Ok(0);
    }
    println!(
        "{:<2} {:<12} {:<10} {:<24} NOTE",
        "", "NAME", "TYPE", "PROFILENAME"
    );
    for r in &rows {
        let note = match (&r.problem, r.empty, r.warnings.len()) {
            (Some(p), _, _) => format!("unusable: {p}"),
            (None, true, _) => "empty slot".to_string(),
            (None, false, 0) => String::new(),
            (None, false, n) => format!("{n} line(s) IPFire's shell reader ignores (see show)"),
        };
        println!(
            "{:<2} {:<12} {:<10} {:<24} {}",
            if r.active { "*" } else { "" },
            r.name.as_str(),
            r.kind.as_deref().unwrap_or("-"),
            r.profile_name.as_deref().unwrap_or("-"),
            note
        );
    }
    Ok(0)
}

// ---- create --------------------------------------------------------------------------

fn parse_ip(flag: &str, v: &Option<String>) -> Result<Option<Ipv4Addr>> {
    match v.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) => s
            .parse()
            .map(Some)
            .map_err(|_| Error::usage(flag, format!("{s:?} is not an IPv4 address"))),
    }
}

fn parse_kind(flag: &str, v: &str) -> Result<Kind> {
    Kind::parse(v).ok_or_else(|| {
        Error::usage(
            flag,
            format!(
                "unknown type {v:?} (pppoe, vdsl, pptp, qmi, modem, serial, pppoeatm, \
                 pptpatm, DHCP, STATIC)"
            ),
        )
    })
}

/// Reads the password from stdin: everything up to the first line break.
fn read_password_stdin() -> Result<Secret> {
    let mut buf = Vec::new();
    std::io::stdin()
        .take(64 * 1024)
        .read_to_end(&mut buf)
        .map_err(|e| Error::usage("--password-stdin", format!("cannot read stdin: {e}")))?;
    let text = String::from_utf8(buf)
        .map_err(|_| Error::usage("--password-stdin", "the password is not valid UTF-8"))?;
    let line = text.split('\n').next().unwrap_or_default();
    let line = line.strip_suffix('\r').unwrap_or(line);
    Ok(Secret(line.to_string()))
}

/// Labels `NewProfile::validate` errors with the flag as well as the key.
fn flag_for(key: &str) -> Option<&'static str> {
    Some(match key {
        "DEVICE" => "--device",
        "PROFILENAME" => "--profile-name",
        "USERNAME" => "--username",
        "APN" => "--apn",
        "PASSWORD" => "--password-stdin",
        "IP" => "--ip",
        "NETMASK" => "--netmask",
        "GATEWAY" => "--gateway",
        "DNS1" => "--dns1",
        "DNS2" => "--dns2",
        _ => return None,
    })
}

fn create(paths: &Paths, c: &CreateArgs) -> Result<u8> {
    let name = ProfileName::new(&c.name)?;
    let interactive = c.kind.is_none() && std::io::stdin().is_terminal();
    let new = if interactive {
        ask(name)?
    } else {
        let kind_raw = c
            .kind
            .as_deref()
            .ok_or_else(|| Error::usage("--type", "required when stdin is not a terminal"))?;
        let mut n = NewProfile::new(name, parse_kind("--type", kind_raw)?);
        n.device = c.device.clone();
        n.display_name = c.profile_name.clone();
        n.ip = parse_ip("--ip", &c.ip)?;
        n.netmask = parse_ip("--netmask", &c.netmask)?;
        n.gateway = parse_ip("--gateway", &c.gateway)?;
        n.dns1 = parse_ip("--dns1", &c.dns1)?;
        n.dns2 = parse_ip("--dns2", &c.dns2)?;
        n.username = c.username.clone();
        n.apn = c.apn.clone();
        if c.password_stdin {
            n.password = read_password_stdin()?;
        }
        n
    };
    let path = profile::create(paths, &new).map_err(|e| match e {
        Error::Usage { arg, msg } if !interactive => match flag_for(&arg) {
            Some(flag) => Error::Usage {
                arg: format!("{arg} ({flag})"),
                msg,
            },
            None => Error::Usage { arg, msg },
        },
        e => e,
    })?;
    println!("created profile {} in {}", new.name, path.display());
    if !new.password.0.is_empty() && !profile::password_fits_profile(&new.password.0) {
        println!(
            "the password has characters IPFire's readhash cannot carry: it is kept in {} \
             (0600), not in the profile",
            profile::password_file(paths, &new.name).display()
        );
    }
    Ok(0)
}

/// Turns the terminal's echo off or on for the password prompt, with `stty` on our own
/// terminal (nix's termios needs a crate feature we do not build with).
#[allow(clippy::disallowed_methods)] // a fixed argv on the user's own terminal, no settings
fn echo(on: bool) {
    let r = std::process::Command::new("stty")
        .arg(if on { "echo" } else { "-echo" })
        .stdin(std::process::Stdio::inherit())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
    if let Err(e) = r {
        log::debug!("stty: {e}");
    }
}

/// The interactive dialogue, as the original shell tool asks it.
fn ask(name: ProfileName) -> Result<NewProfile> {
    let stdin = std::io::stdin();
    let mut lines = stdin.lock();
    let mut prompt = |q: &str| -> Result<String> {
        eprint!("{q}");
        let _ = std::io::stderr().flush();
        let mut s = String::new();
        let n = lines
            .read_line(&mut s)
            .map_err(|e| Error::usage("stdin", e.to_string()))?;
        if n == 0 {
            return Err(Error::usage(
                "stdin",
                "ended before the profile was complete",
            ));
        }
        Ok(s.trim_end_matches(['\n', '\r']).to_string())
    };
    let opt = |s: String| {
        let t = s.trim().to_string();
        (!t.is_empty()).then_some(t)
    };
    eprintln!("Creating profile: {name}");
    eprintln!("Select connection type:\n1) DHCP\n2) Static IP\n3) PPPoE\n4) QMI (USB modem)");
    let kind = match prompt("Choice [1-4]: ")?.trim() {
        "1" => Kind::Dhcp,
        "2" => Kind::Static,
        "3" => Kind::Pppoe,
        "4" => Kind::Qmi,
        other => parse_kind("choice", other)?,
    };
    let mut n = NewProfile::new(name, kind);
    let dev_q = if kind == Kind::Qmi {
        "wwan interface (e.g. wwan0): "
    } else {
        "Device (e.g. red1): "
    };
    n.device = opt(prompt(dev_q)?);
    let ip = |flag: &str, s: String| parse_ip(flag, &Some(s));
    match kind {
        Kind::Static => {
            n.ip = ip("IP", prompt("IP address: ")?)?;
            n.netmask = ip("NETMASK", prompt("Netmask: ")?)?;
            n.gateway = ip("GATEWAY", prompt("Gateway: ")?)?;
            n.dns1 = ip("DNS1", prompt("DNS 1 (empty for none): ")?)?;
            n.dns2 = ip("DNS2", prompt("DNS 2 (empty for none): ")?)?;
        }
        Kind::Dhcp => {}
        _ => {
            if kind == Kind::Qmi {
                n.apn = opt(prompt("APN: ")?);
            }
            n.username = opt(prompt("Username (empty for none): ")?);
            if n.username.is_some() {
                echo(false);
                let pw = prompt("Password (not shown): ");
                echo(true);
                eprintln!();
                n.password = Secret(pw?);
            }
        }
    }
    Ok(n)
}

// ---- test, show, status ----------------------------------------------------------------

fn load(paths: &Paths, name: &ProfileName) -> Result<Profile> {
    match Profile::load(paths, name) {
        Ok(p) => Ok(p),
        Err(profile::LoadError::Empty) => Err(Error::Parse {
            file: paths.profile(name.as_str()),
            line: None,
            msg: "is empty (an unused WUI slot, or being written)".into(),
        }),
        Err(profile::LoadError::Other(e)) => Err(e),
    }
}

fn test(paths: &Paths, name: &ProfileName) -> Result<u8> {
    load(paths, name)?;
    let runner = Box::new(crate::sys::exec::ProcessRunner);
    let outcome = crate::uplink::pretest::test_profile(paths, runner, name)?;
    Ok(match outcome {
        PretestOutcome::Passed(d) => {
            println!("PASSED: {d}");
            0
        }
        PretestOutcome::Failed(d) => {
            println!("FAILED: {d}");
            1
        }
        PretestOutcome::CannotTest(d) => {
            println!("CANNOT TEST: {d}");
            1
        }
    })
}

fn show(paths: &Paths, name: &ProfileName) -> Result<u8> {
    let p = load(paths, name)?;
    let policy = load_policy(paths)?;
    let box_dev = crate::ipfire::ethernet::RedValues::read(paths)
        .ok()
        .and_then(|r| r.get("RED_DEV").map(String::from));
    println!("# {}", paths.profile(name.as_str()).display());
    for (k, v) in p.doc.entries() {
        if k == "PASSWORD" && !v.is_empty() {
            println!("{k}=****");
        } else if v.contains(' ') {
            println!("{k}='{v}'");
        } else {
            println!("{k}={v}");
        }
    }
    println!(
        "# type: {} (RED_TYPE={})",
        p.kind.as_str(),
        p.kind.red_type()
    );
    println!(
        "# RED device: {}",
        p.red_device(&policy, box_dev.as_deref()).unwrap_or("-")
    );
    let pw = if p.password.0.is_empty() {
        "none".to_string()
    } else if p.doc.get("PASSWORD").is_some_and(|v| !v.is_empty()) {
        "set (in the profile)".to_string()
    } else {
        format!("set (in {})", profile::password_file(paths, name).display())
    };
    println!("# password: {pw}");
    println!(
        "# backup: {}",
        p.backup.as_ref().map_or("none", ProfileName::as_str)
    );
    for w in &p.warnings {
        println!("# warning: {w}");
    }
    Ok(0)
}

fn status(paths: &Paths) -> Result<u8> {
    match switch::active_profile(paths)? {
        Some(n) => {
            let label = match Profile::load(paths, &n) {
                Ok(p) => p.display_name,
                Err(_) => "?".into(),
            };
            println!("active profile: {n} ({label})");
        }
        None if paths.ppp_settings().exists() => println!(
            "active profile: none ({} is hand-made: a link to no profile)",
            paths.ppp_settings().display()
        ),
        None => println!(
            "active profile: none ({} is missing)",
            paths.ppp_settings().display()
        ),
    }
    let red = crate::ipfire::ethernet::RedValues::read(paths)?;
    println!(
        "RED_TYPE={} RED_DEV={}",
        red.get("RED_TYPE").unwrap_or("-"),
        red.get("RED_DEV").unwrap_or("-")
    );
    let iface =
        fsutil::read_word(&paths.red_iface()).or_else(|| fsutil::read_word(&paths.red_device()));
    match std::fs::metadata(paths.red_active()) {
        Ok(m) => {
            let since = m
                .modified()
                .ok()
                .map(|t| {
                    chrono::DateTime::<chrono::Local>::from(t)
                        .format("%F %T")
                        .to_string()
                })
                .unwrap_or_default();
            println!("red: active since {since}");
        }
        Err(_) => println!("red: not active"),
    }
    println!("red/iface: {}", iface.as_deref().unwrap_or("-"));
    if let Some(ip) = fsutil::read_word(&paths.red_local_ip()) {
        println!("local address: {ip}");
    }
    Ok(0)
}

// ---- activate --------------------------------------------------------------------------

fn load_policy(paths: &Paths) -> Result<Policy> {
    let active = switch::active_profile(paths)?;
    Ok(Policy::load(paths, active.as_ref().map(ProfileName::as_str))?.0)
}

fn activate(paths: &Paths, name: &ProfileName, wait: bool) -> Result<u8> {
    load(paths, name)?;
    // A running supervisor switches itself (the same path as `connectd failover`), so the
    // two never race; otherwise the same journaled switch runs here, under its lock.
    let status = crate::supervisor::control::call(
        &paths.control_socket(),
        &crate::supervisor::control::Request::Status,
        Duration::from_secs(10),
    )?;
    if let Some(reply) = status {
        let primary = reply.status.and_then(|s| s.primary_profile);
        let req = if primary.as_ref() == Some(name) {
            crate::supervisor::control::Request::Failback { force: true }
        } else {
            crate::supervisor::control::Request::Failover {
                profile: name.to_string(),
            }
        };
        let r = crate::supervisor::control::call(
            &paths.control_socket(),
            &req,
            Duration::from_secs(180),
        )?
        .ok_or_else(|| Error::Failed("the supervisor went away".into()))?;
        let msg = r.message.unwrap_or_default();
        return if r.ok {
            println!("{msg}");
            Ok(0)
        } else {
            eprintln!("manage-wan-profiles: {msg}");
            Ok(r.code.unwrap_or(1))
        };
    }
    crate::supervisor::offline::switch_to(
        paths,
        &crate::sys::exec::ProcessRunner,
        &crate::sys::clock::SystemClock,
        name,
        SwitchKind::Manual,
        wait,
    )
}
