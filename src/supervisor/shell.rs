//! The imperative shell: the synchronous loop that turns the world into [`Event`]s for the
//! pure [`Core`] and executes its [`Action`]s (DESIGN.md 4).
//!
//! One thread, one loop: `poll()` on the signal self-pipe and the control socket, with a
//! timeout to the earliest of the core's next deadline, the next probe round and the next
//! passive sample. Everything that touches the outside goes through the seams in
//! [`Seams`] (command runner, clock, prober, pre-tester, passive signal reader), so the
//! whole loop runs in tests against a fake network script and a simulated clock.
//!
//! Blocking work (a switch runs IPFire's network script; a pre-test waits for a PADO) is
//! done synchronously and is bounded by deadlines: the core's contract is that every
//! `Activate`, `Restart` and `Pretest` is answered before any other event, and a switch
//! in progress is never interleaved with a second one. Signals and control requests that
//! arrive meanwhile wait in the pipe and the socket backlog.

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::ipfire::ethernet::RedValues;
use crate::ipfire::fsutil;
use crate::ipfire::journal::{Journal, Step};
use crate::ipfire::paths::Paths;
use crate::ipfire::policy::Policy;
use crate::ipfire::profile::{Kind, LoadError, Profile, ProfileName, Reconnection};
use crate::ipfire::state::{self, State, SwitchRecord};
use crate::supervisor::control::{self, Reply, Request};
use crate::supervisor::hooks::{HookCall, HookRunner};
use crate::sys::clock::Clock;
use crate::sys::exec::Runner;
use crate::uplink::health::{self, HealthStatus, Monitor, Passive, Prober, Target, Verdict};
use crate::uplink::pretest::{PreTester, PretestOutcome};
use crate::uplink::switch::{self, SwitchOptions};

use super::machine::{Action, Command, Config, Core, Event, Link, SwitchKind};
use super::status::{Status, TrafficStatus};

/// How often the passive signals (red/active, keepconnected, carrier, pppd) are sampled:
/// carrier loss is acted on within this, and a probe round in progress ends within 50 ms
/// of it. 250 ms keeps both well under the 0.5 s target at a third of the system calls of
/// 100 ms (BENCHMARKS.md).
pub const PASSIVE_INTERVAL: Duration = Duration::from_millis(250);
/// After a dial starts, how long pppd may take to appear before "no pppd is running".
const DIAL_GRACE: Duration = Duration::from_secs(5);
/// How long an empty profile (the WUI writing it) is re-read before giving up.
const EMPTY_PROFILE_RETRY: Duration = Duration::from_secs(3);

/// The seams the loop acts through.
pub struct Seams {
    /// Runs IPFire's network script and tools.
    pub runner: Box<dyn Runner>,
    /// Time.
    pub clock: Box<dyn Clock>,
    /// Health probes.
    pub prober: Box<dyn Prober>,
    /// Pre-tests of resting profiles.
    pub pretester: Box<dyn PreTester>,
    /// Carrier, pppd, red/active.
    pub passive: Passive,
    /// Timeouts of a switch.
    pub switch: SwitchOptions,
}

/// Signals, turned into flags plus a wake-up pipe the loop polls.
struct Signals {
    term: Arc<AtomicBool>,
    hup: Arc<AtomicBool>,
    usr1: Arc<AtomicBool>,
    pipe: OwnedFd,
}

impl Signals {
    fn install() -> Result<Signals> {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
        let (rd, wr) = nix::unistd::pipe().map_err(|e| Error::Failed(format!("pipe: {e}")))?;
        for fd in [&rd, &wr] {
            let _ = nix::fcntl::fcntl(
                fd.as_raw_fd(),
                nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
            );
        }
        let s = Signals {
            term: Arc::new(AtomicBool::new(false)),
            hup: Arc::new(AtomicBool::new(false)),
            usr1: Arc::new(AtomicBool::new(false)),
            pipe: rd,
        };
        let err = |e: std::io::Error| Error::Failed(format!("cannot install signal handlers: {e}"));
        for (sig, flag) in [
            (SIGTERM, &s.term),
            (SIGINT, &s.term),
            (SIGHUP, &s.hup),
            (SIGUSR1, &s.usr1),
        ] {
            signal_hook::flag::register(sig, Arc::clone(flag)).map_err(err)?;
            let w = wr.try_clone().map_err(err)?;
            signal_hook::low_level::pipe::register(sig, w).map_err(err)?;
        }
        Ok(s)
    }

    fn drain(&self) {
        let mut buf = [0u8; 64];
        while matches!(nix::unistd::read(self.pipe.as_raw_fd(), &mut buf), Ok(n) if n > 0) {}
    }
}

/// What the loop knows about the profiles, typed once per (re)load.
struct Setup {
    policy: Policy,
    config: Config,
    profiles: Vec<Profile>,
}

/// Health probing of the active uplink.
struct Monitoring {
    profile: ProfileName,
    monitor: Monitor,
    targets: Vec<Target>,
    /// The last verdict class sent to the core (`Some(true)` healthy).
    sent: Option<bool>,
    /// `red/iface`, read when RED came up (not on every sample: it changes only then).
    iface: Option<String>,
}

/// The supervisor.
pub struct Supervisor<'a> {
    paths: &'a Paths,
    seams: Seams,
    core: Core,
    setup: Setup,
    state: State,
    hooks: Option<HookRunner>,
    monitoring: Option<Monitoring>,
    last_health: Option<HealthStatus>,
    /// Last sampled levels.
    red_active: bool,
    keepconnected: bool,
    link_lost_sent: bool,
    /// No "pppd is gone" verdict before this: a dial was just started (by us, or by the
    /// network script that calls `connectd start` right after starting pppd).
    dial_grace_until: Option<Instant>,
    /// The RED address in use when the current switch or redial began: flows NATed to it
    /// are dead once RED is up with another one (DESIGN.md 2, step 7).
    old_red_ip: Option<Ipv4Addr>,
    /// The control client waiting for the core's `Reply`.
    pending_client: Option<UnixStream>,
    /// RED's throughput, sampled once a second.
    traffic: crate::uplink::traffic::Traffic,
    next_traffic: Option<Instant>,
    /// The optional HTTP API (its own thread).
    api: Option<crate::front::api::ApiHandle>,
    /// The last 24 hours, for the web UI (`connectd history`).
    history: crate::ipfire::history::History,
    exit: Option<u8>,
}

fn load_profile_retrying(paths: &Paths, clock: &dyn Clock, name: &ProfileName) -> Result<Profile> {
    let start = clock.now();
    loop {
        match Profile::load(paths, name) {
            Ok(p) => return Ok(p),
            Err(LoadError::Other(e)) => return Err(e),
            Err(LoadError::Empty) if clock.now().duration_since(start) >= EMPTY_PROFILE_RETRY => {
                return Err(Error::Parse {
                    file: paths.profile(name.as_str()),
                    line: None,
                    msg: "is empty (an unused WUI slot, or the WUI is still writing it)".into(),
                });
            }
            Err(LoadError::Empty) => {
                // The WUI truncates, then writes: read again shortly.
                #[allow(clippy::disallowed_methods)] // a short, bounded wait at start-up
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
}

/// Reads the policy and the profiles and types them into the core's [`Config`].
fn load_setup(
    paths: &Paths,
    clock: &dyn Clock,
    primary: &ProfileName,
    state: &State,
) -> Result<Setup> {
    let (policy, loaded) = Policy::load(paths, Some(primary.as_str()))?;
    if !loaded.legacy.is_empty() {
        migrate_legacy_keys(paths, &loaded.legacy);
    }
    let names = profile_chain(paths, primary, &policy)?;
    let mut profiles = Vec::new();
    for n in &names {
        let p = load_profile_retrying(paths, clock, n)?;
        for w in &p.warnings {
            log::warn!("{w}");
        }
        profiles.push(p);
    }
    let eth = fsutil::read_settings(&paths.ethernet_settings()).ok();
    let box_dev = eth
        .as_ref()
        .and_then(|d| d.get("RED_DEV"))
        .map(String::from);
    let primary_dev = state
        .primary_red
        .as_ref()
        .and_then(|r| r.get("RED_DEV").map(String::from))
        .or_else(|| box_dev.clone());
    let link = |p: &Profile, box_dev: Option<&str>| Link {
        name: p.name.clone(),
        device: p
            .red_device(&policy, box_dev)
            .unwrap_or_default()
            .to_string(),
        max_retries: p.max_retries,
        holdoff: p.holdoff,
        backup: p.backup.clone(),
    };
    let primary_link = link(&profiles[0], primary_dev.as_deref());
    let chain: Vec<Link> = profiles[1..]
        .iter()
        .map(|p| link(p, box_dev.as_deref()))
        .collect();
    let reconnection = profiles[0].reconnection;
    let config = Config::from_policy(&policy, primary_link, chain, reconnection);
    Ok(Setup {
        policy,
        config,
        profiles,
    })
}

/// The profiles the supervisor may bring up: with failover on, the chain of DESIGN.md 3;
/// with failover off, the primary and its own BACKUPPROFILE (IPFire's one switch).
fn profile_chain(
    paths: &Paths,
    primary: &ProfileName,
    policy: &Policy,
) -> Result<Vec<ProfileName>> {
    if policy.enabled {
        return crate::ipfire::profile::resolve_chain(paths, primary, policy);
    }
    let mut names = vec![primary.clone()];
    if let Ok(p) = Profile::load(paths, primary) {
        if let Some(b) = p.backup {
            if paths.profile(b.as_str()).exists() {
                names.push(b);
            } else {
                log::warn!("BACKUPPROFILE={b} of profile {primary} does not exist: no backup");
            }
        }
    }
    Ok(names)
}

/// Copies the `FAILOVER_*`/`FAILBACK_*` keys older scripts kept in the primary profile into
/// `connectd/settings`, once (the WUI would erase them from the profile on its next Save).
fn migrate_legacy_keys(paths: &Paths, legacy: &[(String, String)]) {
    let path = paths.policy();
    let mut doc = fsutil::read_settings(&path).unwrap_or_default();
    for (k, v) in legacy {
        if let Err(e) = doc.set(k, v) {
            log::warn!("cannot copy {k} into {}: {e}", path.display());
            return;
        }
    }
    let res = fsutil::ensure_dir(&paths.connectd_dir())
        .and_then(|()| fsutil::write_settings(&path, &doc));
    match res {
        Ok(()) => log::info!(
            "copied {} from the primary profile into {}",
            legacy
                .iter()
                .map(|(k, _)| k.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            path.display()
        ),
        Err(e) => log::warn!("cannot copy the legacy failover keys: {e}"),
    }
}

fn read_ip(path: &std::path::Path) -> Option<Ipv4Addr> {
    fsutil::read_word(path).and_then(|w| w.parse().ok())
}

fn read_attempts(paths: &Paths) -> Option<u32> {
    // Never evaluated: a counter that is not a small number counts as 0.
    fsutil::read_word(&paths.keepconnected()).map(|w| w.parse::<u32>().unwrap_or(0))
}

impl<'a> Supervisor<'a> {
    /// Prepares the supervisor: determines the primary, loads policy and profiles (an
    /// invalid policy is an error: the daemon refuses to start), finishes an interrupted
    /// switch. Nothing runs yet.
    pub fn new(paths: &'a Paths, seams: Seams) -> Result<Supervisor<'a>> {
        let mut state = State::load_or_reset(paths);
        if let Some(name) = switch::adopt_handmade(paths)? {
            log::warn!("ppp/settings was hand-made: now profile {name}");
        }
        let active = switch::active_profile(paths)?.ok_or_else(|| {
            Error::Failed(format!(
                "{} is missing: no profile is configured",
                paths.ppp_settings().display()
            ))
        })?;
        let primary = super::direct::primary(paths, &state)?;
        state.primary = Some(primary.clone());
        state.active = Some(active.clone());
        let setup = load_setup(paths, seams.clock.as_ref(), &primary, &state)?;
        let mut core = Core::new(setup.config.clone());
        core.restore(&super::machine::Persisted {
            active: active.clone(),
            failback_delay_secs: state
                .failback_delay_secs
                .unwrap_or(setup.policy.failback_delay.as_secs()),
            switch_count: state.switch_count,
            pinned: state.pinned.is_some(),
            auto: state.auto,
        });
        let mut sup = Supervisor {
            paths,
            seams,
            core,
            setup,
            state,
            hooks: None,
            monitoring: None,
            last_health: None,
            red_active: false,
            keepconnected: false,
            link_lost_sent: false,
            dial_grace_until: None,
            old_red_ip: None,
            pending_client: None,
            traffic: crate::uplink::traffic::Traffic::new(),
            next_traffic: None,
            api: None,
            history: crate::ipfire::history::History::load(paths),
            exit: None,
        };
        sup.recover_journal()?;
        Ok(sup)
    }

    /// A switch interrupted by a crash: before the old RED was stopped nothing changed
    /// (roll back: the files are still the old profile's); after it, finish the file part
    /// for the journaled target, so `settings`, `secrets` and `ethernet/settings` agree.
    fn recover_journal(&mut self) -> Result<()> {
        let Some(j) = self.state.journal.clone() else {
            return Ok(());
        };
        let to = j.to.clone();
        let from = j.from.as_ref().map(ProfileName::as_str);
        if j.nothing_changed() {
            log::warn!(
                "a switch from {} to {} was interrupted before anything changed: staying on {}",
                from.unwrap_or("?"),
                j.to,
                from.unwrap_or("the current profile")
            );
        } else {
            log::warn!(
                "finishing the switch from {} to {} interrupted after step {}",
                from.unwrap_or("?"),
                j.to,
                j.step.map_or("planned", Step::name)
            );
            if j.from == self.state.primary && self.state.primary_red.is_none() {
                self.state.primary_red = j.previous_red.clone();
            }
            let restore = self.restore_for(&to);
            switch::apply_files(self.paths, &self.setup.policy, &to, restore.as_ref())?;
            self.state.active = Some(j.to);
        }
        self.state.journal = None;
        self.state.save(self.paths)?;
        Ok(())
    }

    fn restore_for(&self, to: &ProfileName) -> Option<RedValues> {
        (self.state.primary.as_ref() == Some(to))
            .then(|| self.state.primary_red.clone())
            .flatten()
    }

    fn profile(&self, name: &ProfileName) -> Option<&Profile> {
        self.setup.profiles.iter().find(|p| &p.name == name)
    }

    fn kind_of(&self, name: &ProfileName) -> Option<Kind> {
        self.profile(name).map(|p| p.kind)
    }

    /// Runs the loop until the core exits. `listener`: the bound control socket.
    /// `ready` is called once the supervisor runs (the daemon's start-up handshake).
    pub fn run(mut self, listener: UnixListener, ready: &mut dyn FnMut()) -> Result<u8> {
        let signals = Signals::install()?;
        // Threads only now: the daemon has forked before `run`.
        self.hooks = Some(HookRunner::spawn(
            self.paths.hooks_dir(),
            self.setup.policy.hook_timeout,
        ));
        self.api = crate::front::api::start_from_policy(self.paths, &self.setup.policy);
        let now = self.seams.clock.now();
        let active = switch::active_profile(self.paths)?
            .unwrap_or_else(|| self.setup.config.primary.name.clone());
        self.red_active = self.paths.red_active().exists();
        self.keepconnected = self.paths.keepconnected().exists();
        if self.setup.config.reconnection == Reconnection::DialOnDemand {
            log::info!("profile {active} dials on demand: nothing to supervise");
        }
        log::info!(
            "supervising RED: profile {active}, primary {}, failover {}{}",
            self.setup.config.primary.name,
            if self.setup.policy.enabled {
                "on"
            } else {
                "off"
            },
            if self.setup.config.chain.is_empty() {
                String::new()
            } else {
                format!(
                    ", chain {}",
                    self.setup
                        .config
                        .chain
                        .iter()
                        .map(|l| l.name.as_str())
                        .collect::<Vec<_>>()
                        .join(",")
                )
            }
        );
        ready();
        let attempts = read_attempts(self.paths);
        let mut queue: VecDeque<Action> = self
            .core
            .step(
                Event::Start {
                    active,
                    red_active: self.red_active,
                    keepconnected: attempts,
                },
                now,
            )
            .into();
        let mut next_passive = now;
        self.dial_grace_until = Some(now + DIAL_GRACE);
        loop {
            self.execute(&mut queue);
            if let Some(code) = self.exit {
                self.shutdown();
                return Ok(code);
            }
            let now = self.seams.clock.now();
            let mut deadline = next_passive.max(now);
            if let Some(d) = self.core.next_deadline() {
                deadline = deadline.min(d);
            }
            if let Some(m) = &self.monitoring {
                if self.red_active {
                    deadline = deadline.min(m.monitor.next_round_at());
                }
            }
            self.wait(&signals, &listener, deadline);
            let now = self.seams.clock.now();

            // Signals.
            if signals.term.swap(false, Ordering::SeqCst) {
                log::info!("SIGTERM: stopping supervision (no redial)");
                queue.extend(self.core.step(Event::Terminate, now));
                continue;
            }
            if signals.hup.swap(false, Ordering::SeqCst) {
                queue.extend(self.reload(now));
            }
            if signals.usr1.swap(false, Ordering::SeqCst) {
                log::info!("status: {}", self.status());
            }
            // Control requests.
            while let Ok((mut stream, _)) = listener.accept() {
                if let Some(ev) = self.handle_client(&mut stream) {
                    self.pending_client = Some(stream);
                    queue.extend(self.core.step(ev, now));
                    // The Reply action answers it during execute().
                    self.execute(&mut queue);
                    if let Some(mut s) = self.pending_client.take() {
                        control::write_reply(&mut s, &Reply::ok("done"));
                    }
                }
            }
            // Passive signals.
            if now >= next_passive {
                next_passive = now + PASSIVE_INTERVAL;
                queue.extend(self.sample_passive(now));
            }
            self.sample_traffic(now);
            self.record_history();
            // A probe round.
            if self.red_active {
                if let Some(ev) = self.probe_if_due(now) {
                    queue.extend(self.core.step(ev, now));
                }
            }
            // The core's own timers.
            if self.core.next_deadline().is_some_and(|d| d <= now) {
                queue.extend(self.core.step(Event::Tick, now));
            }
        }
    }

    /// Sleeps in poll() until `deadline`, a signal or a control connection.
    fn wait(&self, signals: &Signals, listener: &UnixListener, deadline: Instant) {
        let now = self.seams.clock.now();
        let left = deadline.saturating_duration_since(now);
        if left.is_zero() {
            return;
        }
        let ms = u16::try_from(left.as_millis().max(1)).unwrap_or(u16::MAX);
        let mut fds = [
            nix::poll::PollFd::new(signals.pipe.as_fd(), nix::poll::PollFlags::POLLIN),
            nix::poll::PollFd::new(listener.as_fd(), nix::poll::PollFlags::POLLIN),
        ];
        let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(ms));
        signals.drain();
    }

    /// Reads one control request; status is answered at once, commands become events.
    fn handle_client(&mut self, stream: &mut UnixStream) -> Option<Event> {
        let req = match control::read_request(stream) {
            Ok(r) => r,
            Err(msg) => {
                control::write_reply(stream, &Reply::err(&Error::usage("request", msg)));
                return None;
            }
        };
        let bad_name = |stream: &mut UnixStream, e: Error| {
            control::write_reply(stream, &Reply::err(&e));
        };
        match req {
            Request::Status => {
                let mut r = Reply::ok("status");
                r.status = Some(self.status());
                control::write_reply(stream, &r);
                None
            }
            // Answered after the event ran ("done"): the core replies to commands only.
            Request::Stop => Some(Event::Terminate),
            Request::Reconnect => Some(Event::Command(Command::Reconnect)),
            Request::Failover { profile } => match ProfileName::new(&profile) {
                Ok(p) if self.setup.config.link(&p).is_some() => {
                    Some(Event::Command(Command::Failover(p)))
                }
                Ok(p) => {
                    bad_name(
                        stream,
                        Error::usage(
                            "PROFILE",
                            format!("profile {p} is not in the failover chain (BACKUPPROFILE)"),
                        ),
                    );
                    None
                }
                Err(e) => {
                    bad_name(stream, e);
                    None
                }
            },
            Request::Failback { force } => Some(Event::Command(Command::Failback { force })),
            Request::Auto { enabled } => Some(Event::Command(Command::Auto(enabled))),
        }
    }

    /// SIGHUP: re-reads policy and profiles; an invalid policy keeps the old one.
    fn reload(&mut self, now: Instant) -> Vec<Action> {
        let primary = self.setup.config.primary.name.clone();
        match load_setup(self.paths, self.seams.clock.as_ref(), &primary, &self.state) {
            Ok(setup) => {
                log::info!(
                    "SIGHUP: policy reloaded from {}",
                    self.paths.policy().display()
                );
                let config = setup.config.clone();
                self.setup = setup;
                if let Some(m) = &mut self.monitoring {
                    m.monitor = Monitor::new(&self.setup.policy, now);
                    m.targets = health::build_targets(&self.setup.policy, self.paths);
                }
                self.core.step(Event::Reload(Box::new(config)), now)
            }
            Err(e) => {
                log::error!("SIGHUP: {e}; keeping the previous policy");
                Vec::new()
            }
        }
    }

    /// Samples red/active, keepconnected and the link itself; returns the core's actions.
    fn sample_passive(&mut self, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        let kc = self.paths.keepconnected().exists();
        if self.keepconnected && !kc {
            log::info!("red/keepconnected removed: the user disconnected");
            out.extend(self.core.step(Event::KeepconnectedRemoved, now));
        }
        self.keepconnected = kc;
        let red = self.paths.red_active().exists();
        if red != self.red_active {
            self.red_active = red;
            if red {
                self.link_lost_sent = false;
                self.flush_old_address();
                if let Some(m) = &mut self.monitoring {
                    // New uplink: new DNS servers and gateway; a fresh streak.
                    m.targets = health::build_targets(&self.setup.policy, self.paths);
                    m.monitor = Monitor::new(&self.setup.policy, now);
                    m.sent = None;
                    m.iface = health::red_iface(self.paths);
                }
                out.extend(self.core.step(Event::RedUp, now));
            } else {
                out.extend(self.core.step(Event::RedDown, now));
            }
        }
        if !red && !self.link_lost_sent {
            // Waiting for red/active on a pppd type: a pppd that is gone will never bring it
            // up (IPFire's connectd: "No pppd is running. Trying reconnect.").
            let uses_pppd = self
                .state
                .active
                .as_ref()
                .and_then(|p| self.kind_of(p))
                .is_some_and(Kind::uses_pppd);
            let in_grace = self.dial_grace_until.is_some_and(|t| now < t);
            if uses_pppd && !in_grace && self.seams.passive.pppd_pid().is_none() {
                self.link_lost_sent = true;
                log::info!("no pppd is running: the dial failed");
                out.extend(self.core.step(
                    Event::LinkLost {
                        reason: "no pppd is running".into(),
                        carrier_lost: false,
                    },
                    now,
                ));
            }
        }
        if red && !self.link_lost_sent {
            if let Some(m) = &self.monitoring {
                let kind = self.kind_of(&m.profile);
                let dev = self
                    .setup
                    .config
                    .link(&m.profile)
                    .map(|l| l.device.clone())
                    .unwrap_or_default();
                let iface = m.iface.clone().unwrap_or_else(|| dev.clone());
                let dev = if dev.is_empty() { iface.clone() } else { dev };
                let uses_pppd = kind.is_some_and(Kind::uses_pppd);
                let sample = self.seams.passive.sample(&iface, &dev);
                if let Some(reason) = sample.line_lost(uses_pppd) {
                    self.link_lost_sent = true;
                    // No carrier on the device itself: the line is dead, a redial is futile.
                    let carrier_lost = sample.device.lost().is_some();
                    log::info!("link lost on {iface}: {reason}");
                    out.extend(self.core.step(
                        Event::LinkLost {
                            reason,
                            carrier_lost,
                        },
                        now,
                    ));
                }
            }
        }
        out
    }

    /// RED's byte counters, once a second while RED is up.
    fn sample_traffic(&mut self, now: Instant) {
        if self.next_traffic.is_some_and(|t| now < t) {
            return;
        }
        self.next_traffic = Some(now + Duration::from_secs(1));
        match health::red_iface(self.paths).filter(|_| self.red_active) {
            Some(iface) => self.traffic.poll(&self.paths.sys(), &iface, now),
            None => self.traffic.reset(),
        }
    }

    /// Runs a probe round when one is due; returns the verdict change for the core.
    fn probe_if_due(&mut self, now: Instant) -> Option<Event> {
        let iface = match self.monitoring.as_ref().and_then(|m| m.iface.clone()) {
            Some(i) => i,
            None => health::red_iface(self.paths)?,
        };
        let timeout = self.setup.policy.check_timeout;
        let m = self.monitoring.as_mut()?;
        if m.monitor.next_round_at() > now {
            return None;
        }
        if m.targets.is_empty() {
            m.targets = health::build_targets(&self.setup.policy, self.paths);
        }
        let results = self.seams.prober.round(&iface, &m.targets, timeout);
        let after = self.seams.clock.now();
        let verdict = m.monitor.record(&results, after);
        let status = m.monitor.status();
        let answered: Vec<f64> = status.targets.iter().filter_map(|t| t.rtt_ms).collect();
        let wall = state::unix(self.seams.clock.wall());
        self.history.round(
            wall,
            (!answered.is_empty()).then(|| answered.iter().sum::<f64>() / answered.len() as f64),
        );
        self.last_health = Some(status);
        match verdict {
            Verdict::Healthy if m.sent != Some(true) => {
                m.sent = Some(true);
                Some(Event::Healthy)
            }
            Verdict::Down { reason } if m.sent != Some(false) => {
                m.sent = Some(false);
                log::info!("uplink {} on {iface} is down: {reason}", m.profile);
                Some(Event::Unhealthy {
                    reason: format!("{reason} on {iface}"),
                })
            }
            Verdict::Healthy | Verdict::Down { .. } | Verdict::Suspect { .. } => None,
        }
    }

    /// Executes queued actions in order, feeding the answers of synchronous ones back in.
    fn execute(&mut self, queue: &mut VecDeque<Action>) {
        while let Some(action) = queue.pop_front() {
            if self.exit.is_some() {
                break;
            }
            if let Some(ev) = self.execute_one(action) {
                let now = self.seams.clock.now();
                queue.extend(self.core.step(ev, now));
                // Report the level of red/active after a switch or restart (contract).
                if self.paths.red_active().exists() {
                    self.red_active = true;
                    queue.extend(self.core.step(Event::RedUp, now));
                } else {
                    self.red_active = false;
                }
            }
        }
    }

    fn execute_one(&mut self, action: Action) -> Option<Event> {
        match action {
            Action::Activate { to, reason, kind } => Some(self.activate(to, &reason, kind)),
            Action::Restart { profile, reason } => {
                log::info!("restarting RED ({profile}): {reason}");
                self.old_red_ip = read_ip(&self.paths.red_local_ip()).or(self.old_red_ip);
                let res = self.network("stop").and_then(|()| self.network("start"));
                self.link_lost_sent = false;
                self.dial_grace_until = Some(self.seams.clock.now() + DIAL_GRACE);
                Some(Event::RestartDone {
                    ok: res.is_ok(),
                    error: res.err().map(|e| e.to_string()),
                })
            }
            Action::StopRed { reason } => {
                log::info!("stopping RED: {reason}");
                if let Err(e) = self.network("stop") {
                    log::error!("{e}");
                }
                None
            }
            Action::Monitor(Some(profile)) => {
                let now = self.seams.clock.now();
                // A round ends early when this profile's device loses its carrier.
                let dev = self
                    .setup
                    .config
                    .link(&profile)
                    .map(|l| l.device.clone())
                    .filter(|d| !d.is_empty());
                self.seams
                    .prober
                    .watch(&dev.into_iter().collect::<Vec<_>>());
                self.monitoring = Some(Monitoring {
                    profile,
                    monitor: Monitor::new(&self.setup.policy, now),
                    targets: if self.red_active {
                        health::build_targets(&self.setup.policy, self.paths)
                    } else {
                        Vec::new()
                    },
                    sent: None,
                    iface: health::red_iface(self.paths),
                });
                None
            }
            Action::Monitor(None) => {
                self.monitoring = None;
                self.seams.prober.watch(&[]);
                None
            }
            Action::Pretest { profile, attempts } => Some(self.pretest(profile, attempts)),
            Action::Hook {
                event,
                from,
                to,
                reason,
            } => {
                if let Some(h) = &self.hooks {
                    h.send(HookCall {
                        event,
                        from: from.map(|p| p.to_string()).unwrap_or_default(),
                        to: to.map(|p| p.to_string()).unwrap_or_default(),
                        reason,
                    });
                }
                None
            }
            Action::SetAttempts(n) => {
                let path = self.paths.keepconnected();
                if self.keepconnected && !path.exists() {
                    // It was there and is gone: the user's Disconnect, not ours to undo.
                    self.keepconnected = false;
                    return Some(Event::KeepconnectedRemoved);
                }
                if let Err(e) = fsutil::ensure_dir(&self.paths.red_dir()).and_then(|()| {
                    fsutil::replace_atomically(&path, n.to_string().as_bytes(), 0o644)
                }) {
                    log::error!("{e}");
                }
                self.keepconnected = true;
                None
            }
            Action::SwitchCompleted { from, to } => {
                self.switch_completed(&from, &to);
                None
            }
            Action::SaveState => {
                self.save_state();
                None
            }
            Action::Log { level, msg } => {
                log::log!(level, "{msg}");
                None
            }
            Action::Reply { ok, msg } => {
                if let Some(mut s) = self.pending_client.take() {
                    let reply = if ok {
                        Reply::ok(msg)
                    } else {
                        Reply {
                            ok: false,
                            message: Some(msg),
                            code: Some(1),
                            status: None,
                        }
                    };
                    control::write_reply(&mut s, &reply);
                }
                None
            }
            Action::Exit(code) => {
                self.exit = Some(code);
                None
            }
        }
    }

    fn network(&mut self, verb: &str) -> Result<()> {
        network(
            self.paths,
            self.seams.runner.as_ref(),
            &self.seams.switch,
            verb,
        )
    }

    /// Executes a switch with its journal; returns the core's `ActivateDone`.
    fn activate(&mut self, to: ProfileName, reason: &str, kind: SwitchKind) -> Event {
        if !self.paths.keepconnected().exists() {
            // The user disconnected between the decision and now: never switch.
            return Event::ActivateDone {
                profile: to,
                ok: false,
                error: Some("red/keepconnected is gone (Disconnect)".into()),
            };
        }
        log::warn!("switching to profile {to} ({kind}): {reason}");
        let wall = state::unix(self.seams.clock.wall());
        self.dial_grace_until = Some(self.seams.clock.now() + DIAL_GRACE);
        // The last address RED had (also after a drop: red/local-ipaddress stays).
        self.old_red_ip = read_ip(&self.paths.red_local_ip()).or(self.old_red_ip);
        let result = journaled_activate(
            self.paths,
            self.seams.runner.as_ref(),
            &self.setup.policy,
            &mut self.state,
            &to,
            kind,
            reason,
            &self.seams.switch,
            wall,
        );
        match result {
            Ok(_report) => {
                self.save_state();
                self.monitoring = None;
                self.link_lost_sent = false;
                Event::ActivateDone {
                    profile: to,
                    ok: true,
                    error: None,
                }
            }
            Err(e) => {
                self.save_state();
                self.link_lost_sent = false;
                Event::ActivateDone {
                    profile: to,
                    ok: false,
                    error: Some(e.to_string()),
                }
            }
        }
    }

    fn pretest(&mut self, profile: ProfileName, attempts: u32) -> Event {
        let (mut passed, mut failed, mut untestable) = (0, 0, false);
        let Some(p) = self.profile(&profile).cloned() else {
            return Event::PretestDone {
                profile,
                passed: 0,
                failed: attempts,
                untestable: false,
            };
        };
        let device = self
            .setup
            .config
            .link(&profile)
            .map(|l| l.device.clone())
            .unwrap_or_default();
        let active_dev = self
            .state
            .active
            .as_ref()
            .and_then(|a| self.setup.config.link(a).map(|l| l.device.clone()));
        for i in 0..attempts {
            let outcome = self
                .seams
                .pretester
                .pretest(&p, &device, active_dev.as_deref());
            log::info!("pre-test {}/{attempts} of {profile}: {outcome:?}", i + 1);
            let (result, detail) = match &outcome {
                PretestOutcome::Passed(d) => ("passed", d.to_string()),
                PretestOutcome::Failed(d) => ("failed", d.to_string()),
                PretestOutcome::CannotTest(d) => ("cannot test", d.to_string()),
            };
            let wall = state::unix(self.seams.clock.wall());
            self.history
                .pretest(wall, profile.as_str(), result, &detail);
            match outcome {
                PretestOutcome::Passed(_) => passed += 1,
                PretestOutcome::Failed(_) => failed += 1,
                PretestOutcome::CannotTest(_) => {
                    untestable = true;
                    break;
                }
            }
        }
        Event::PretestDone {
            profile,
            passed,
            failed,
            untestable,
        }
    }

    fn switch_completed(&mut self, from: &ProfileName, to: &ProfileName) {
        self.flush_old_address();
        let at = self.state.last_switch;
        if let Err(e) = state::write_legacy_files(self.paths, to.as_str(), at) {
            log::warn!("{e}");
        }
        log::info!("now online on profile {to} (was {from})");
    }

    /// Step 7: once RED is up again with a new address, drop the conntrack entries still
    /// bound to the address in use before the switch or redial.
    fn flush_old_address(&mut self) {
        let Some(old) = self.old_red_ip else { return };
        let now = read_ip(&self.paths.red_local_ip());
        if now.is_none() || now == Some(old) {
            return; // not up yet, or the same address: nothing is stale
        }
        self.old_red_ip = None;
        match switch::flush_conntrack(self.seams.runner.as_ref(), old) {
            Ok(true) => {}
            Ok(false) => {
                log::debug!("conntrack not installed: entries of {old} expire by themselves")
            }
            Err(e) => log::warn!("conntrack flush for {old}: {e}"),
        }
    }

    fn save_state(&mut self) {
        // `state.active` is the files' truth, set by the switch itself, not the core's view.
        let p = self.core.persisted();
        self.state.failback_delay_secs = Some(p.failback_delay_secs);
        self.state.pinned = p.pinned.then(|| p.active.clone());
        self.state.switch_count = p.switch_count;
        self.state.auto = p.auto;
        if let Err(e) = self.state.save(self.paths) {
            log::error!("{e}");
        }
    }

    /// The status (DESIGN.md 7): the files, the core's view, health and traffic.
    pub fn status(&self) -> Status {
        let snap = self.core.snapshot(self.seams.clock.now());
        super::status::supervised(
            self.paths,
            &self.state,
            snap,
            self.last_health.clone(),
            TrafficStatus::of(&self.traffic),
        )
    }

    /// Who carries the traffic now (RED up: the active profile), into the history; the
    /// history file is written when that changed, else at most once a minute.
    fn record_history(&mut self) {
        let wall = state::unix(self.seams.clock.wall());
        let carrying = self.red_active.then(|| self.state.active.clone()).flatten();
        self.history
            .carrying(wall, carrying.as_ref().map(ProfileName::as_str));
        if let Err(e) = self.history.save_if_due(self.paths, wall) {
            log::warn!("{e}");
        }
    }

    fn shutdown(&mut self) {
        self.save_state();
        let wall = state::unix(self.seams.clock.wall());
        if let Err(e) = self.history.save(self.paths, wall) {
            log::warn!("{e}");
        }
        if let Some(api) = self.api.take() {
            api.stop();
        }
        let _ = std::fs::remove_file(self.paths.control_socket());
        if let Some(h) = self.hooks.take() {
            h.finish();
        }
        log::info!("connectd exits");
    }
}

/// A switch with its journal in the state file (DESIGN.md 6), used by the supervisor and,
/// with no supervisor running, by the CLI. `state` is updated and saved: the journal while
/// the switch runs, then the transition, the primary's saved RED_* values (when leaving the
/// primary), and no journal. A switch that fails after the old RED was stopped still gets
/// its files completed, so `settings`, `secrets` and `ethernet/settings` always agree.
#[allow(clippy::too_many_arguments)]
pub fn journaled_activate(
    paths: &Paths,
    runner: &dyn Runner,
    policy: &Policy,
    state: &mut State,
    to: &ProfileName,
    kind: SwitchKind,
    reason: &str,
    opts: &SwitchOptions,
    wall: i64,
) -> Result<switch::SwitchReport> {
    let from = state.active.clone();
    state.journal = Some(Journal {
        from: from.clone(),
        to: to.clone(),
        step: None,
        started: wall,
        kind,
        previous_red: None,
    });
    let restore = (state.primary.as_ref() == Some(to))
        .then(|| state.primary_red.clone())
        .flatten();
    let mut kc: Option<String> = None;
    let result = {
        let mut journal = |step: switch::Step, report: &switch::SwitchReport| -> Result<()> {
            // IPFire's `network stop red` removes keepconnected for PPP types: undo exactly
            // that, right after our stop (`Intent` is journaled just before it). A removal
            // at any other moment, or under an ethernet type, is the user's Disconnect and
            // stays.
            match step {
                switch::Step::Intent => {
                    let ppp = report.previous_red.get("RED_TYPE") == Some("PPPOE");
                    kc = if ppp && paths.keepconnected().exists() {
                        Some(
                            fsutil::read_word(&paths.keepconnected()).unwrap_or_else(|| "0".into()),
                        )
                    } else {
                        None
                    };
                }
                switch::Step::Stopped => {
                    if let Some(v) = &kc {
                        if !paths.keepconnected().exists() {
                            let _ = fsutil::replace_atomically(
                                &paths.keepconnected(),
                                v.as_bytes(),
                                0o644,
                            );
                        }
                    }
                }
                switch::Step::EthernetWritten
                | switch::Step::Linked
                | switch::Step::SecretsWritten
                | switch::Step::Started => {}
            }
            if let Some(j) = &mut state.journal {
                j.step = Some(step);
                if j.previous_red.is_none() {
                    j.previous_red = Some(report.previous_red.clone());
                }
            }
            state.save(paths)
        };
        switch::activate(
            paths,
            runner,
            policy,
            to,
            restore.as_ref(),
            opts,
            &mut journal,
        )
    };
    match result {
        Ok(report) => {
            let from_name = report.from.clone().or(from);
            if from_name.is_some() && from_name == state.primary && from_name.as_ref() != Some(to) {
                state.primary_red = Some(report.previous_red.clone());
            }
            state.journal = None;
            state.record_switch(SwitchRecord {
                at: wall,
                from: from_name,
                to: to.clone(),
                kind,
                reason: reason.to_string(),
            });
            state.save(paths)?;
            Ok(report)
        }
        Err(e) => {
            log::error!("switch to {to} failed: {e}");
            if let Some(j) = state.journal.take() {
                if !j.nothing_changed() {
                    if j.from == state.primary && state.primary_red.is_none() {
                        state.primary_red = j.previous_red.clone();
                    }
                    match switch::apply_files(paths, policy, to, restore.as_ref()) {
                        Ok(_) => state.active = Some(to.clone()),
                        Err(e2) => log::error!("cannot complete the files of {to}: {e2}"),
                    }
                }
            }
            let _ = state.save(paths);
            Err(e)
        }
    }
}

/// `network stop|start red` (the same call a switch makes), keeping `red/keepconnected`:
/// IPFire's script removes it on stop for PPP types, which would otherwise read as the
/// user's Disconnect. After `stop`, waits (bounded) until pppd and RED's dhcpcd are gone.
/// A script killed at its deadline is an error here: a restart that did not finish is a
/// failed restart.
pub fn network(paths: &Paths, runner: &dyn Runner, opts: &SwitchOptions, verb: &str) -> Result<()> {
    // IPFire's `network stop red` removes keepconnected for PPP types only.
    let red = RedValues::read(paths).ok();
    let ppp = red
        .as_ref()
        .is_some_and(|r| r.get("RED_TYPE") == Some("PPPOE"));
    let kc = fsutil::read_word(&paths.keepconnected());
    let had_kc = ppp && paths.keepconnected().exists();
    let out = switch::network(runner, paths, verb, opts.network_timeout);
    if verb == "stop" {
        switch::wait_gone(paths, opts, red.as_ref().and_then(|r| r.get("RED_DEV")));
        // Only our own stop is undone: a keepconnected that vanishes at any other moment
        // is the user's Disconnect and must stay gone.
        if had_kc && !paths.keepconnected().exists() {
            let v = kc.unwrap_or_else(|| "0".into());
            let _ = fsutil::replace_atomically(&paths.keepconnected(), v.as_bytes(), 0o644);
        }
    }
    if out?.timed_out {
        return Err(Error::Command {
            argv0: paths.network_script().display().to_string(),
            msg: format!("{verb} red timed out"),
        });
    }
    Ok(())
}
