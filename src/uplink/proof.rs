// Copyright (C) 2026 The connectd developers
// SPDX-License-Identifier: GPL-3.0-or-later

//! The end-to-end failback proof (DESIGN.md 5.1, issue 13): while a backup on another
//! device carries the traffic, the primary is brought up **beside** it, not as RED, and
//! the health probes are sent through it. The supervisor fails back only after the
//! primary carried them for FAILBACK_VOTE_WINDOW; then this session is torn down and the
//! switch goes the IPFire way (`network stop red`, the files, `network start red`).
//!
//! * **PPPoE** (pppoe, vdsl, pppoeatm): a pppd of our own with IPFire's options
//!   (`networking/red:380-447` at ipfire-2.x a259d42: the plugin, `noipdefault noauth default-asyncmap
//!   hide-password noipv6 noaccomp nodeflate nopcomp novj novjccomp nobsdcomp user U
//!   lcp-echo-interval 20 lcp-echo-failure 5`, AUTH, MTU, MRU) minus what would touch the
//!   box: no `defaultroute` (`nodefaultroute`), no `usepeerdns` (the resolver stays the
//!   backup's), `unit` [`PROOF_UNIT`] (RED is `ppp0`: IPFire's ip-up hard-codes it,
//!   `src/ppp/ip-up:36`), `linkname connectd-proof`, and our own `ip-up-script` /
//!   `ip-down-script`, so IPFire's ip-up, which writes `red/*`, `/var/run/dns*` and the
//!   default route (`src/ppp/ip-up:28-36`), never runs. `updetach` instead of `nodetach`:
//!   pppd returns once IPCP is up (or exits with an error), then stays in the background
//!   until we TERM it. The password goes in a 0600 options file (`file`), never on argv:
//!   `ppp/secrets` holds the backup's while on it.
//! * **STATIC**: the profile's address added to its NIC (nothing else).
//! * **DHCP**: a lease taken by our own client (`pretest::dhcp::lease`: DISCOVER, OFFER,
//!   REQUEST, ACK on a packet socket), its address added to the NIC, released
//!   (DHCPRELEASE) when the proof ends so that IPFire's dhcpcd gets it again at the switch.
//!   Chosen over a second dhcpcd: dhcpcd would have to be kept from installing a default
//!   route, writing resolv.conf and running IPFire's hooks (`dhcpcd.exe`, which acts on
//!   RED_DEV) by a config and hook of our own, would spend ~5 s on its ARP probe (the lab
//!   measured it), and would be one more daemon to find and stop; the pre-test already
//!   speaks DHCP on the NIC, and the lease needs nothing from it but the address and the
//!   router.
//!
//! Probes go out bound to the session's interface (`SO_BINDTODEVICE`); policy rules
//! (`ip rule add oif IFACE lookup` [`PROOF_TABLE`], and `from ADDRESS lookup` it, which
//! also lets the replies pass a strict `rp_filter`) with a default route through the
//! session in that table let them leave by it, while the main table (the backup's default
//! route) carries everything else. Only the policy's internet targets count (the DNS
//! target asks the backup's resolver; the gateway never votes).
//!
//! Everything runs on a thread of its own ([`ProofSession`]); reports come back through a
//! channel; [`ProofSession::stop`] tears it down before it returns (bounded).

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::ipfire::fsutil;
use crate::ipfire::paths::Paths;
use crate::ipfire::profile::{Kind, Profile};
use crate::sys::clock::{Clock, SystemClock};
use crate::sys::exec::{CommandSpec, Runner};
use crate::uplink::health::{Prober, Role, Target};

/// The pppd unit of the proof session: `ppp9` (RED is `ppp0`).
pub const PROOF_UNIT: u32 = 9;
/// The routing table (and rule preference) of the proof session's policy route.
pub const PROOF_TABLE: u32 = 4713;
/// pppd's `linkname`: its pid file is `/var/run/ppp-connectd-proof.pid` (defined with the
/// passive signals, which must not take this pppd for RED's).
pub use crate::uplink::health::PROOF_LINKNAME;

/// What a session reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// Up on this interface.
    Up(String),
    /// One probe round through it: passed or not.
    Round(bool),
    /// It could not come up, or went down.
    Failed(String),
}

/// One session of a profile beside RED: the seam between the proof and the system.
pub trait ProofLink: Send {
    /// Brings it up (bounded); returns its interface. `stop` set: give up early.
    fn up(&mut self, stop: &AtomicBool) -> Result<String, String>;
    /// Still up (pppd alive, the address still there)?
    fn alive(&mut self) -> Result<(), String>;
    /// Tears it down, whatever state it is in (bounded, never fails loudly).
    fn down(&mut self);
}

/// How a session probes: the policy's internet targets, RELIABILITY, the interval.
#[derive(Debug, Clone)]
pub struct ProofProbes {
    /// The targets (only `Role::Internet` ones are kept).
    pub targets: Vec<Target>,
    /// FAILOVER_RELIABILITY.
    pub reliability: usize,
    /// FAILOVER_CHECK_INTERVAL.
    pub interval: Duration,
    /// FAILOVER_CHECK_TIMEOUT.
    pub timeout: Duration,
}

impl ProofProbes {
    /// From the health targets: the internet ones only.
    pub fn new(
        targets: &[Target],
        reliability: usize,
        interval: Duration,
        timeout: Duration,
    ) -> Self {
        ProofProbes {
            targets: targets
                .iter()
                .filter(|t| t.role == Role::Internet)
                .cloned()
                .collect(),
            reliability: reliability.max(1),
            interval,
            timeout,
        }
    }
}

/// A running proof session: on a thread of its own, or (tests) stepped by the caller.
pub struct ProofSession {
    mode: SessionMode,
}

enum SessionMode {
    Thread {
        stop: Arc<AtomicBool>,
        reports: Receiver<Report>,
        /// Set by the thread once the link is torn down.
        finished: Arc<Mutex<bool>>,
    },
    Inline(Box<InlineSession>),
}

/// The inline mode's state: up at the first poll, a round per interval of the caller's
/// clock.
struct InlineSession {
    link: Box<dyn ProofLink>,
    prober: Box<dyn Prober + Send>,
    probes: ProofProbes,
    iface: Option<String>,
    next_round: Option<std::time::Instant>,
    done: bool,
}

impl std::fmt::Debug for ProofSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProofSession").finish_non_exhaustive()
    }
}

/// How long [`ProofSession::stop`] waits for the teardown.
pub const STOP_WAIT: Duration = Duration::from_secs(15);

impl ProofSession {
    /// Starts `link` on a thread: up, then a probe round through it every interval.
    pub fn start(
        mut link: Box<dyn ProofLink>,
        mut prober: Box<dyn Prober + Send>,
        probes: ProofProbes,
    ) -> std::io::Result<ProofSession> {
        let stop = Arc::new(AtomicBool::new(false));
        let finished = Arc::new(Mutex::new(false));
        let (tx, reports) = mpsc::channel();
        let (stop2, fin2) = (Arc::clone(&stop), Arc::clone(&finished));
        std::thread::Builder::new()
            .name("proof".into())
            .spawn(move || {
                let send = |r: Report| {
                    let _ = tx.send(r);
                };
                match link.up(&stop2) {
                    Err(e) => send(Report::Failed(e)),
                    Ok(iface) => {
                        send(Report::Up(iface.clone()));
                        run_rounds(
                            link.as_mut(),
                            prober.as_mut(),
                            &probes,
                            &iface,
                            &stop2,
                            &send,
                        );
                    }
                }
                link.down();
                if let Ok(mut f) = fin2.lock() {
                    *f = true;
                }
            })?;
        Ok(ProofSession {
            mode: SessionMode::Thread {
                stop,
                reports,
                finished,
            },
        })
    }

    /// A session stepped by [`ProofSession::poll`] on the caller's thread and clock
    /// (tests on a fake clock): up at the first poll, then a round per interval.
    pub fn inline(
        link: Box<dyn ProofLink>,
        prober: Box<dyn Prober + Send>,
        probes: ProofProbes,
    ) -> ProofSession {
        ProofSession {
            mode: SessionMode::Inline(Box::new(InlineSession {
                link,
                prober,
                probes,
                iface: None,
                next_round: None,
                done: false,
            })),
        }
    }

    /// The reports since the last call (`now`: the caller's clock, for the inline mode).
    pub fn poll(&mut self, now: std::time::Instant) -> Vec<Report> {
        let mut out = Vec::new();
        match &mut self.mode {
            SessionMode::Thread { reports, .. } => loop {
                match reports.try_recv() {
                    Ok(r) => out.push(r),
                    Err(TryRecvError::Empty | TryRecvError::Disconnected) => return out,
                }
            },
            SessionMode::Inline(s) => {
                if s.done {
                    return out;
                }
                let iface = match s.iface.clone() {
                    Some(i) => i,
                    None => match s.link.up(&AtomicBool::new(false)) {
                        Ok(i) => {
                            out.push(Report::Up(i.clone()));
                            s.iface = Some(i.clone());
                            s.next_round = Some(now);
                            i
                        }
                        Err(e) => {
                            s.done = true;
                            out.push(Report::Failed(e));
                            return out;
                        }
                    },
                };
                if s.next_round.is_some_and(|t| now >= t) {
                    if let Err(e) = s.link.alive() {
                        s.done = true;
                        out.push(Report::Failed(e));
                        return out;
                    }
                    out.push(Report::Round(round(s.prober.as_mut(), &s.probes, &iface)));
                    s.next_round = Some(now + s.probes.interval);
                }
                out
            }
        }
    }

    /// Tears the session down and waits (at most [`STOP_WAIT`]) until it is.
    pub fn stop(self) -> bool {
        let (stop, finished) = match self.mode {
            SessionMode::Inline(mut s) => {
                s.link.down();
                return true;
            }
            SessionMode::Thread { stop, finished, .. } => (stop, finished),
        };
        stop.store(true, Ordering::SeqCst);
        let clock = SystemClock;
        let start = clock.now();
        loop {
            if finished.lock().map(|f| *f).unwrap_or(true) {
                return true;
            }
            if clock.now().saturating_duration_since(start) >= STOP_WAIT {
                log::warn!("the proof session did not end within {STOP_WAIT:?}");
                return false;
            }
            // Waiting for the thread's teardown (pppd's exit), bounded.
            clock.sleep(Duration::from_millis(20));
        }
    }
}

/// One probe round through `iface`: passed when RELIABILITY targets answered.
fn round(prober: &mut dyn Prober, probes: &ProofProbes, iface: &str) -> bool {
    let results = prober.round(iface, &probes.targets, probes.timeout);
    let answered = results.iter().filter(|r| r.rtt.is_some()).count();
    log::debug!(
        "proof round through {iface}: {answered}/{} answered",
        probes.targets.len()
    );
    !probes.targets.is_empty() && answered >= probes.reliability
}

fn run_rounds(
    link: &mut dyn ProofLink,
    prober: &mut dyn Prober,
    probes: &ProofProbes,
    iface: &str,
    stop: &AtomicBool,
    send: &dyn Fn(Report),
) {
    let clock = SystemClock;
    loop {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        if let Err(e) = link.alive() {
            send(Report::Failed(e));
            return;
        }
        let started = clock.now();
        let ok = round(prober, probes, iface);
        send(Report::Round(ok));
        // The next round one interval after this one began; the stop flag is looked at
        // every 50 ms meanwhile.
        while clock.now().saturating_duration_since(started) < probes.interval {
            if stop.load(Ordering::SeqCst) {
                return;
            }
            clock.sleep(Duration::from_millis(50));
        }
    }
}

/// The policy route for `iface`: `ip rule add oif IFACE lookup TABLE` (and `from LOCAL`),
/// and a default route through the session in that table (`via` the peer or gateway,
/// `onlink`).
fn policy_route(
    runner: &dyn Runner,
    iface: &str,
    via: Option<Ipv4Addr>,
    local: Option<Ipv4Addr>,
) -> Result<(), String> {
    let table = PROOF_TABLE.to_string();
    clear_policy_route(runner);
    let mut route: Vec<String> = ["ip", "-4", "route", "replace", "default"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    if let Some(v) = via {
        route.extend(["via".into(), v.to_string()]);
    }
    route.extend(["dev".into(), iface.into()]);
    if via.is_some() {
        route.push("onlink".into());
    }
    route.extend(["table".into(), table.clone()]);
    let rule = [
        "ip", "-4", "rule", "add", "pref", &table, "oif", iface, "lookup", &table,
    ];
    let mut argvs: Vec<Vec<String>> = vec![route, rule.iter().map(|s| s.to_string()).collect()];
    if let Some(l) = local {
        let l = l.to_string();
        let from = [
            "ip", "-4", "rule", "add", "pref", &table, "from", &l, "lookup", &table,
        ];
        argvs.push(from.iter().map(|s| s.to_string()).collect());
    }
    for argv in argvs {
        run_ok(runner, argv)?;
    }
    Ok(())
}

/// Runs `argv` (an `ip` call, 5 s at most): its failure names the command and what it said.
fn run_ok<S: Into<std::ffi::OsString>>(
    runner: &dyn Runner,
    argv: impl IntoIterator<Item = S>,
) -> Result<(), String> {
    let spec = CommandSpec::new(argv, Duration::from_secs(5));
    match runner.run(&spec) {
        Ok(o) if o.success() => Ok(()),
        Ok(o) => Err(format!("{}: {}", spec.display(), o.output.trim())),
        Err(e) => Err(e.to_string()),
    }
}

/// `ip ARGS` through [`run_ok`] (the STATIC and DHCP sessions' addresses and links).
fn ip(runner: &dyn Runner, args: &[&str]) -> Result<(), String> {
    run_ok(runner, std::iter::once("ip").chain(args.iter().copied()))
}

/// Removes the proof's rules and table (also what a crashed run left).
fn clear_policy_route(runner: &dyn Runner) {
    let table = PROOF_TABLE.to_string();
    // One rule per call; there are at most two (and a crashed run's).
    for _ in 0..4 {
        let gone = runner.run(&CommandSpec::new(
            ["ip", "-4", "rule", "del", "pref", &table],
            Duration::from_secs(5),
        ));
        if !gone.is_ok_and(|o| o.success()) {
            break;
        }
    }
    let _ = runner.run(&CommandSpec::new(
        ["ip", "-4", "route", "flush", "table", &table],
        Duration::from_secs(5),
    ));
}

/// The primary's own PPPoE session (see the module documentation).
pub struct PppoeProof {
    runner: Box<dyn Runner + Send>,
    profile: Profile,
    nic: String,
    /// Our run directory: the options file, the ip-up script and its report.
    dir: PathBuf,
    /// Where pppd's pid file is (`/var/run` under the root).
    run_dir: PathBuf,
    /// How long pppd may take to bring IPCP up.
    timeout: Duration,
    pid: Option<i32>,
    iface: Option<String>,
}

impl PppoeProof {
    /// A session of `profile` on `nic`, started within `timeout`.
    pub fn new(
        runner: Box<dyn Runner + Send>,
        paths: &Paths,
        profile: Profile,
        nic: &str,
        timeout: Duration,
    ) -> PppoeProof {
        PppoeProof {
            runner,
            profile,
            nic: nic.to_string(),
            dir: paths.proof_dir(),
            run_dir: paths.root().join("var/run"),
            timeout,
            pid: None,
            iface: None,
        }
    }

    /// The pppd argv and the options file's text (user and password, 0600).
    pub fn argv(&self) -> (Vec<String>, String) {
        let p = &self.profile;
        let doc = |k: &str| p.doc.get(k).map(str::trim).filter(|v| !v.is_empty());
        let mut a: Vec<String> = vec!["pppd".into(), "plugin".into(), "pppoe.so".into()];
        if let Some(s) = p.service_name.as_deref() {
            a.extend(["rp_pppoe_service".into(), s.into()]);
        }
        a.push(self.nic.clone());
        for o in [
            "noipdefault",
            "noauth",
            "default-asyncmap",
            "hide-password",
            "updetach",
            "noipv6",
            "noaccomp",
            "nodeflate",
            "nopcomp",
            "novj",
            "novjccomp",
            "nobsdcomp",
            "lcp-echo-interval",
            "20",
            "lcp-echo-failure",
            "5",
        ] {
            a.push(o.into());
        }
        match doc("AUTH") {
            Some("pap") => a.push("-chap".into()),
            Some("chap") => a.push("-pap".into()),
            _ => {}
        }
        for (key, opt) in [("MTU", "mtu"), ("MRU", "mru")] {
            if let Some(v) = doc(key).filter(|v| v.bytes().all(|b| b.is_ascii_digit())) {
                a.extend([opt.into(), v.into()]);
            }
        }
        a.extend([
            "nodefaultroute".into(),
            "unit".into(),
            PROOF_UNIT.to_string(),
            "linkname".into(),
            PROOF_LINKNAME.into(),
            "ipparam".into(),
            PROOF_LINKNAME.into(),
            "ip-up-script".into(),
            self.dir.join("ip-up").display().to_string(),
            "ip-down-script".into(),
            self.dir.join("ip-down").display().to_string(),
            "file".into(),
            self.dir.join("options").display().to_string(),
        ]);
        let quote = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
        let mut opts = String::new();
        if let Some(u) = p.username.as_deref() {
            opts.push_str(&format!("user {}\n", quote(u)));
        }
        let pw = p.password.0.as_str();
        if !pw.is_empty() {
            opts.push_str(&format!("password {}\n", quote(pw)));
        }
        (a, opts)
    }

    fn report_file(&self) -> PathBuf {
        self.dir.join("up")
    }

    fn pid_file(&self) -> PathBuf {
        self.run_dir.join(format!("ppp-{PROOF_LINKNAME}.pid"))
    }

    /// Writes the options file (0600) and the two scripts (0700): ip-up records
    /// "IFACE LOCAL REMOTE" in `up`, ip-down removes it. Nothing else.
    fn prepare(&self, opts: &str) -> Result<(), String> {
        fsutil::ensure_dir(&self.dir).map_err(|e| e.to_string())?;
        let up = self.report_file();
        let _ = std::fs::remove_file(&up);
        let q = |p: &PathBuf| format!("'{}'", p.display().to_string().replace('\'', "'\\''"));
        let ip_up = format!(
            "#!/bin/sh\n# connectd's failback proof: record the session, touch nothing else.\n\
             printf '%s %s %s\\n' \"$1\" \"$4\" \"$5\" >{}.tmp && mv -f {}.tmp {}\n",
            q(&up),
            q(&up),
            q(&up)
        );
        let ip_down = format!(
            "#!/bin/sh\n# connectd's failback proof: the session ended.\nrm -f {}\n",
            q(&up)
        );
        let w = |name: &str, data: &str, mode: u32| {
            fsutil::replace_atomically(&self.dir.join(name), data.as_bytes(), mode)
                .map_err(|e| e.to_string())
        };
        w("options", opts, 0o600)?;
        w("ip-up", &ip_up, 0o700)?;
        w("ip-down", &ip_down, 0o700)
    }
}

fn read_pid(path: &std::path::Path) -> Option<i32> {
    fsutil::read_word(path).and_then(|w| w.parse().ok())
}

/// `pid` runs and is a pppd (a PID file left behind may name a reused PID); a zombie
/// (exited, not reaped yet: its parent may be gone) does not run.
fn pid_alive(pid: i32) -> bool {
    if pid <= 1 {
        return false;
    }
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // "PID (COMM) STATE ...": COMM may hold spaces and parentheses, so split at the last ')'.
    let comm = stat.split_once('(').and_then(|(_, r)| r.rsplit_once(')'));
    match comm {
        Some((name, rest)) => name == "pppd" && !rest.trim_start().starts_with(['Z', 'X']),
        None => false,
    }
}

impl ProofLink for PppoeProof {
    fn up(&mut self, stop: &AtomicBool) -> Result<String, String> {
        let (argv, opts) = self.argv();
        self.prepare(&opts)?;
        clear_policy_route(self.runner.as_ref());
        // IPFire's `network stop red` left the primary's NIC down: the session needs it up
        // (nothing is configured on it).
        let _ = self.runner.run(&CommandSpec::new(
            ["ip", "link", "set", "dev", self.nic.as_str(), "up"],
            Duration::from_secs(5),
        ));
        log::info!(
            "failback proof: starting pppd of {} on {} (unit {PROOF_UNIT}, no default route)",
            self.profile.name,
            self.nic
        );
        let spec = CommandSpec::new(argv, self.timeout).in_own_group();
        let outcome = self.runner.run(&spec).map_err(|e| e.to_string())?;
        self.pid = read_pid(&self.pid_file());
        if outcome.timed_out {
            return Err(format!(
                "pppd did not bring the session up within {} s",
                self.timeout.as_secs()
            ));
        }
        if !outcome.success() {
            return Err(format!(
                "pppd exited with {:?}: {}",
                outcome.code,
                outcome.output.lines().last().unwrap_or("").trim()
            ));
        }
        // updetach returned: IPCP is up; ip-up runs in the background, give it a moment.
        let clock = SystemClock;
        let start = clock.now();
        let line = loop {
            if let Some(l) = std::fs::read_to_string(self.report_file())
                .ok()
                .filter(|l| !l.trim().is_empty())
            {
                break l;
            }
            if stop.load(Ordering::SeqCst)
                || clock.now().saturating_duration_since(start) > Duration::from_secs(10)
            {
                return Err("pppd is up but its ip-up never ran".into());
            }
            clock.sleep(Duration::from_millis(50));
        };
        self.pid = self.pid.or_else(|| read_pid(&self.pid_file()));
        let mut f = line.split_whitespace();
        let iface = f.next().unwrap_or_default().to_string();
        let local = f.next().and_then(|p| p.parse::<Ipv4Addr>().ok());
        let peer = f.next().and_then(|p| p.parse::<Ipv4Addr>().ok());
        if !crate::ipfire::profile::valid_device(&iface) {
            return Err(format!("ip-up reported a bad interface {iface:?}"));
        }
        self.iface = Some(iface.clone());
        policy_route(self.runner.as_ref(), &iface, peer, local)?;
        Ok(iface)
    }

    fn alive(&mut self) -> Result<(), String> {
        match self.pid {
            Some(pid) if pid_alive(pid) => Ok(()),
            Some(pid) => Err(format!("pppd ({pid}) of the proof session exited")),
            None => Err("pppd of the proof session wrote no pid file".into()),
        }
    }

    fn down(&mut self) {
        clear_policy_route(self.runner.as_ref());
        let pid = self.pid.take().or_else(|| read_pid(&self.pid_file()));
        if let Some(pid) = pid.filter(|p| pid_alive(*p)) {
            let p = nix::unistd::Pid::from_raw(pid);
            let _ = nix::sys::signal::kill(p, nix::sys::signal::Signal::SIGTERM);
            let clock = SystemClock;
            let start = clock.now();
            let mut killed = false;
            while pid_alive(pid) {
                let waited = clock.now().saturating_duration_since(start);
                if !killed && waited > Duration::from_secs(5) {
                    log::warn!("failback proof: pppd ({pid}) ignored SIGTERM for 5 s: SIGKILL");
                    let _ = nix::sys::signal::kill(p, nix::sys::signal::Signal::SIGKILL);
                    killed = true;
                } else if waited > Duration::from_secs(6) {
                    log::error!("failback proof: pppd ({pid}) outlived SIGKILL by 1 s");
                    break;
                }
                // pppd sends LCP Terminate and runs ip-down: bounded; after SIGKILL, the
                // kernel's teardown of the process.
                clock.sleep(Duration::from_millis(50));
            }
            log::info!("failback proof: pppd ({pid}) stopped");
        }
        let _ = std::fs::remove_file(self.dir.join("options"));
        let _ = std::fs::remove_file(self.report_file());
        self.iface = None;
    }
}

/// The primary's STATIC address beside RED, on its own NIC.
pub struct StaticProof {
    runner: Box<dyn Runner + Send>,
    nic: String,
    ip: Ipv4Addr,
    prefix: u32,
    gateway: Ipv4Addr,
    added: bool,
}

impl StaticProof {
    /// The address of `profile` (STATIC) on `nic`; `None` without a STATIC config.
    pub fn new(runner: Box<dyn Runner + Send>, profile: &Profile, nic: &str) -> Option<Self> {
        let cfg = profile.static_cfg.as_ref()?;
        Some(StaticProof {
            runner,
            nic: nic.to_string(),
            ip: cfg.ip,
            prefix: u32::from(cfg.netmask).count_ones(),
            gateway: cfg.gateway,
            added: false,
        })
    }
}

impl ProofLink for StaticProof {
    fn up(&mut self, _stop: &AtomicBool) -> Result<String, String> {
        let addr = format!("{}/{}", self.ip, self.prefix);
        ip(
            self.runner.as_ref(),
            &["link", "set", "dev", &self.nic, "up"],
        )?;
        // noprefixroute: the connected route stays the backup's business; the policy
        // route below reaches the gateway on-link.
        ip(
            self.runner.as_ref(),
            &[
                "-4",
                "addr",
                "replace",
                &addr,
                "dev",
                &self.nic,
                "noprefixroute",
            ],
        )?;
        self.added = true;
        policy_route(
            self.runner.as_ref(),
            &self.nic,
            Some(self.gateway),
            Some(self.ip),
        )?;
        Ok(self.nic.clone())
    }

    fn alive(&mut self) -> Result<(), String> {
        Ok(())
    }

    fn down(&mut self) {
        clear_policy_route(self.runner.as_ref());
        if self.added {
            let addr = format!("{}/{}", self.ip, self.prefix);
            let _ = ip(
                self.runner.as_ref(),
                &["-4", "addr", "del", &addr, "dev", &self.nic],
            );
            self.added = false;
        }
    }
}

/// The primary's DHCP lease beside RED, on its own NIC, by our own client.
pub struct DhcpProof {
    runner: Box<dyn Runner + Send>,
    nic: String,
    timeout: Duration,
    lease: Option<(crate::uplink::pretest::dhcp::Lease, std::time::Instant)>,
    added: Option<String>,
}

impl DhcpProof {
    /// A lease on `nic`, taken within `timeout`.
    pub fn new(runner: Box<dyn Runner + Send>, nic: &str, timeout: Duration) -> DhcpProof {
        DhcpProof {
            runner,
            nic: nic.to_string(),
            timeout,
            lease: None,
            added: None,
        }
    }
}

impl ProofLink for DhcpProof {
    fn up(&mut self, _stop: &AtomicBool) -> Result<String, String> {
        ip(
            self.runner.as_ref(),
            &["link", "set", "dev", &self.nic, "up"],
        )?;
        log::info!(
            "failback proof: taking a DHCP lease on {} (no route, no hook)",
            self.nic
        );
        let l = crate::uplink::pretest::dhcp::lease(
            &self.nic,
            self.timeout.min(Duration::from_secs(30)),
        )?;
        let prefix = l.netmask.map_or(32, |m| u32::from(m).count_ones());
        let addr = format!("{}/{prefix}", l.address);
        log::info!(
            "failback proof: lease of {addr} from {} (router {}) on {}",
            l.server,
            l.router,
            self.nic
        );
        let (router, local) = (l.router, l.address);
        self.lease = Some((l, SystemClock.now()));
        ip(
            self.runner.as_ref(),
            &[
                "-4",
                "addr",
                "replace",
                &addr,
                "dev",
                &self.nic,
                "noprefixroute",
            ],
        )?;
        self.added = Some(addr);
        policy_route(self.runner.as_ref(), &self.nic, Some(router), Some(local))?;
        Ok(self.nic.clone())
    }

    fn alive(&mut self) -> Result<(), String> {
        match &self.lease {
            Some((l, at)) => match l.lease_secs {
                Some(s)
                    if SystemClock.now().saturating_duration_since(*at)
                        >= Duration::from_secs(u64::from(s)) =>
                {
                    Err(format!("the lease of {} expired", l.address))
                }
                _ => Ok(()),
            },
            None => Err("no lease".into()),
        }
    }

    fn down(&mut self) {
        clear_policy_route(self.runner.as_ref());
        if let Some(addr) = self.added.take() {
            let _ = ip(
                self.runner.as_ref(),
                &["-4", "addr", "del", &addr, "dev", &self.nic],
            );
        }
        if let Some((l, _)) = self.lease.take() {
            match crate::uplink::pretest::dhcp::release(&self.nic, &l) {
                Ok(()) => log::info!("failback proof: released {} on {}", l.address, self.nic),
                Err(e) => log::warn!("failback proof: {e}"),
            }
        }
    }
}

/// The real session of `profile` on `device` (`None`: its kind cannot be proven).
pub fn real_link(
    paths: &Paths,
    profile: &Profile,
    device: &str,
    timeout: Duration,
) -> Option<Box<dyn ProofLink>> {
    let runner = || Box::new(crate::sys::exec::ProcessRunner);
    match profile.kind {
        Kind::Pppoe | Kind::Vdsl | Kind::Pppoeatm => Some(Box::new(PppoeProof::new(
            runner(),
            paths,
            profile.clone(),
            device,
            timeout,
        ))),
        Kind::Static => {
            StaticProof::new(runner(), profile, device).map(|s| Box::new(s) as Box<dyn ProofLink>)
        }
        Kind::Dhcp => Some(Box::new(DhcpProof::new(runner(), device, timeout))),
        Kind::Qmi | Kind::Pptp | Kind::Pptpatm | Kind::Modem | Kind::Serial => None,
    }
}

/// What a proof session of a previous run left behind (connectd was killed while it ran):
/// its pppd (by its PID file, if it is still a pppd), its policy rules and table, its
/// options file. Called when the supervisor starts.
pub fn clean_leftovers(paths: &Paths, runner: &dyn Runner) {
    let pid_file = paths
        .root()
        .join(format!("var/run/ppp-{PROOF_LINKNAME}.pid"));
    if let Some(pid) = read_pid(&pid_file).filter(|p| pid_alive(*p)) {
        log::warn!("stopping the failback proof's pppd ({pid}) left by a previous run");
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
    let rules = runner.run(&CommandSpec::new(
        ["ip", "-4", "rule", "show", "pref", &PROOF_TABLE.to_string()],
        Duration::from_secs(5),
    ));
    if rules.is_ok_and(|o| o.success() && !o.output.trim().is_empty()) {
        log::warn!("removing the failback proof's policy route left by a previous run");
        clear_policy_route(runner);
    }
    let _ = std::fs::remove_file(paths.proof_dir().join("options"));
}

/// Whether a profile of this kind can be proven beside RED.
pub fn provable(kind: Kind) -> bool {
    match kind {
        Kind::Pppoe | Kind::Vdsl | Kind::Pppoeatm | Kind::Static | Kind::Dhcp => true,
        Kind::Qmi | Kind::Pptp | Kind::Pptpatm | Kind::Modem | Kind::Serial => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipfire::readhash::Document;
    use crate::sys::exec::ProcessRunner;
    use crate::uplink::health::TargetResult;
    use std::path::Path;

    fn profile(text: &str) -> Profile {
        Profile::from_doc(
            crate::ipfire::profile::ProfileName::new("1").unwrap(),
            Document::parse(text),
            Path::new("settings-1"),
        )
        .unwrap()
    }

    #[test]
    fn pppd_gets_ipfires_options_without_defaultroute_dns_or_ipfires_scripts() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::new(dir.path()).unwrap();
        let p = profile(
            "TYPE=pppoe\nUSERNAME=joe@isp\nPASSWORD=s3cr3t\nAUTH=pap\nMTU=1492\nSERVICENAME=inet\n",
        );
        let pr = PppoeProof::new(
            Box::new(ProcessRunner),
            &paths,
            p,
            "red0",
            Duration::from_secs(30),
        );
        let (argv, opts) = pr.argv();
        let s = argv.join(" ");
        assert!(
            s.starts_with("pppd plugin pppoe.so rp_pppoe_service inet red0 noipdefault noauth"),
            "{s}"
        );
        for want in [
            " nodefaultroute ",
            " unit 9 ",
            " linkname connectd-proof ",
            " -chap ",
            " mtu 1492 ",
            " lcp-echo-interval 20 lcp-echo-failure 5 ",
            " updetach ",
        ] {
            assert!(s.contains(want), "{want} in {s}");
        }
        for never in [
            " defaultroute ",
            "usepeerdns",
            "nodetach",
            "s3cr3t",
            "joe@isp",
        ] {
            assert!(!s.contains(never), "{never} in {s}");
        }
        assert!(s.contains(&format!(
            "ip-up-script {}",
            paths.proof_dir().join("ip-up").display()
        )));
        assert_eq!(opts, "user \"joe@isp\"\npassword \"s3cr3t\"\n");
    }

    #[test]
    fn ip_up_records_the_session_and_the_options_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::new(dir.path()).unwrap();
        let pr = PppoeProof::new(
            Box::new(ProcessRunner),
            &paths,
            profile("TYPE=pppoe\nUSERNAME=u\nPASSWORD=p\n"),
            "red0",
            Duration::from_secs(30),
        );
        pr.prepare("password \"p\"\n").unwrap();
        let mode = |n: &str| {
            std::fs::metadata(paths.proof_dir().join(n))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode("options"), 0o600);
        assert_eq!(mode("ip-up"), 0o700);
        let spec = CommandSpec::new(
            [
                paths.proof_dir().join("ip-up").display().to_string(),
                "ppp9".into(),
                "red0".into(),
                "0".into(),
                "198.51.100.11".into(),
                "198.51.100.1".into(),
                "connectd-proof".into(),
            ],
            Duration::from_secs(5),
        );
        assert!(ProcessRunner.run(&spec).unwrap().success());
        assert_eq!(
            std::fs::read_to_string(paths.proof_dir().join("up")).unwrap(),
            "ppp9 198.51.100.11 198.51.100.1\n"
        );
        assert!(
            !paths.red_active().exists(),
            "our ip-up never touches red/*"
        );
    }

    /// Records every command; `ip rule del` fails once no rule is left to delete.
    struct Recorder(Arc<Mutex<Vec<String>>>, Mutex<u32>);

    impl Runner for Recorder {
        fn run(&self, cmd: &CommandSpec) -> crate::error::Result<crate::sys::exec::CmdOutcome> {
            let line = cmd.display();
            let mut rules = self.1.lock().unwrap();
            let ok = if line.contains("rule add") {
                *rules += 1;
                true
            } else if line.contains("rule del") {
                let had = *rules > 0;
                *rules = rules.saturating_sub(1);
                had
            } else {
                true
            };
            self.0.lock().unwrap().push(line);
            Ok(crate::sys::exec::CmdOutcome {
                code: Some(if ok { 0 } else { 2 }),
                timed_out: false,
                output: String::new(),
            })
        }
    }

    #[test]
    fn a_static_primary_gets_its_address_beside_red_and_a_policy_route_then_none() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let p =
            profile("TYPE=STATIC\nIP=203.0.113.10\nNETMASK=255.255.255.0\nGATEWAY=203.0.113.1\n");
        let mut st = StaticProof::new(
            Box::new(Recorder(Arc::clone(&log), Mutex::new(0))),
            &p,
            "red2",
        )
        .unwrap();
        assert_eq!(st.up(&AtomicBool::new(false)).unwrap(), "red2");
        let n = log.lock().unwrap().len();
        let up: Vec<String> = log.lock().unwrap()[..n]
            .iter()
            .filter(|l| !l.contains("rule del") && !l.contains("route flush"))
            .cloned()
            .collect();
        assert_eq!(
            up,
            [
                "ip link set dev red2 up",
                "ip -4 addr replace 203.0.113.10/24 dev red2 noprefixroute",
                "ip -4 route replace default via 203.0.113.1 dev red2 onlink table 4713",
                "ip -4 rule add pref 4713 oif red2 lookup 4713",
                "ip -4 rule add pref 4713 from 203.0.113.10 lookup 4713",
            ]
        );
        st.down();
        let down = log.lock().unwrap()[n..].to_vec();
        assert_eq!(
            down.iter()
                .filter(|l| l.contains("rule del pref 4713"))
                .count(),
            3,
            "both rules deleted, then nothing left: {down:?}"
        );
        assert!(
            down.contains(&"ip -4 route flush table 4713".to_string()),
            "{down:?}"
        );
        assert_eq!(
            down.last().map(String::as_str),
            Some("ip -4 addr del 203.0.113.10/24 dev red2")
        );
    }

    /// A link that comes up at once and stays; records its teardown.
    struct FakeLink(Arc<Mutex<Vec<&'static str>>>);

    impl ProofLink for FakeLink {
        fn up(&mut self, _stop: &AtomicBool) -> Result<String, String> {
            self.0.lock().unwrap().push("up");
            Ok("ppp9".into())
        }
        fn alive(&mut self) -> Result<(), String> {
            Ok(())
        }
        fn down(&mut self) {
            self.0.lock().unwrap().push("down");
        }
    }

    struct HalfProber;

    impl Prober for HalfProber {
        fn round(&mut self, iface: &str, t: &[Target], _: Duration) -> Vec<TargetResult> {
            assert_eq!(iface, "ppp9", "probes go through the session");
            t.iter()
                .enumerate()
                .map(|(i, x)| {
                    if i == 0 {
                        TargetResult::ok(x, Duration::from_millis(5))
                    } else {
                        TargetResult::failed(x, "no reply")
                    }
                })
                .collect()
        }
    }

    #[test]
    fn a_session_reports_up_and_rounds_and_is_down_when_stop_returns() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let targets = vec![
            Target::icmp(Ipv4Addr::new(203, 0, 113, 1)),
            Target::icmp(Ipv4Addr::new(203, 0, 113, 2)),
        ];
        let probes = ProofProbes::new(&targets, 1, Duration::from_millis(20), Duration::ZERO);
        let mut s = ProofSession::start(
            Box::new(FakeLink(Arc::clone(&log))),
            Box::new(HalfProber),
            probes,
        )
        .unwrap();
        let mut got = Vec::new();
        for _ in 0..200 {
            got.extend(s.poll(SystemClock.now()));
            if got.len() >= 3 {
                break;
            }
            SystemClock.sleep(Duration::from_millis(10));
        }
        assert_eq!(got[0], Report::Up("ppp9".into()));
        assert!(
            got[1..].iter().all(|r| *r == Report::Round(true)),
            "{got:?}"
        );
        assert!(s.stop());
        assert_eq!(*log.lock().unwrap(), ["up", "down"]);
    }
}
