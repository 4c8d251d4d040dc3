//! The run loop: one thread, one loop. `poll()` on the signal self-pipe and the control
//! socket, with a timeout to the earliest of the core's next deadline, the next probe round
//! and the next passive sample; then the signals, the control requests, the passive sample
//! (the pure `observe` step), a probe round and the core's timers, each turned into
//! [`Event`]s for the pure [`Core`], whose [`Action`]s the effects executor carries out
//! (DESIGN.md 4).
//!
//! Everything that touches the outside goes through the [`Seams`] the binary passes in, so
//! the whole loop runs in tests against a fake network script and a fake clock. Signals and
//! control requests that arrive during a switch wait in the pipe and the socket backlog.

use std::collections::VecDeque;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::ipfire::paths::Paths;
use crate::ipfire::policy::Policy;
use crate::ipfire::profile::{Kind, ProfileName, Reconnection};
use crate::ipfire::state::State;
use crate::supervisor::control::{self, Reply, Request};
use crate::supervisor::hooks::HookRunner;
use crate::sys::watch::ChangeWatch;
use crate::uplink::health::{self, Monitor, Verdict};
use crate::uplink::switch;

use super::effects::{Effects, Seams};
use super::machine::{Action, Command, Core, Event};
use super::observe::{self, Levels, LinkLoss, Observer};
use super::setup::load_setup;

/// How often the passive signals (red/active, keepconnected, carrier, pppd) are sampled
/// while anything is in flux: carrier loss is acted on within this, and a probe round in
/// progress ends within 50 ms of it. A finished pre-test is picked up at the same pace.
/// 250 ms keeps both well under the 0.5 s target at a third of the system calls of 100 ms
/// (BENCHMARKS.md).
pub(crate) const PASSIVE_INTERVAL: Duration = Duration::from_millis(250);

/// The passive sample's pace while online and quiet, when every change it looks for wakes
/// the loop by itself ([`ChangeWatch`]: link changes by netlink, the files in `red/` and
/// `connectd/` by inotify): only a safety net then. The four wake-ups a second of the
/// short pace were most of an idle supervisor's CPU (BENCHMARKS.md).
pub(crate) const QUIET_PASSIVE_INTERVAL: Duration = Duration::from_secs(1);

/// Services that follow the policy and run beside the supervisor (the HTTP API), passed in
/// by the front that starts the daemon: the supervisor layer knows them only by this.
pub trait Services {
    /// The supervisor runs (after the fork): start what `policy` asks for.
    fn start(&mut self, paths: &Paths, policy: &Policy);
    /// The supervisor exits.
    fn stop(&mut self);
}

/// No services beside the supervisor (tests).
#[cfg(test)]
#[derive(Debug, Default)]
pub(crate) struct NoServices;

#[cfg(test)]
impl Services for NoServices {
    fn start(&mut self, _paths: &Paths, _policy: &Policy) {}
    fn stop(&mut self) {}
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

/// The keepconnected counter; `None` when the file is absent or empty.
fn read_attempts(paths: &Paths) -> Option<u32> {
    // Never evaluated: a counter that is not a small number counts as 0.
    crate::ipfire::fsutil::read_word(&paths.keepconnected()).map(|w| w.parse::<u32>().unwrap_or(0))
}

/// The supervisor: the core, the effects executor and the observer.
pub struct Supervisor<'a> {
    pub(super) core: Core,
    pub(super) fx: Effects<'a>,
    next_traffic: Option<Instant>,
    /// Every change the passive sample looks for wakes the loop (the real loop's
    /// [`ChangeWatch`] is complete): the quiet pace may be used.
    pub(super) watched: bool,
}

impl<'a> Supervisor<'a> {
    /// Prepares the supervisor: determines the primary, loads policy and profiles (an
    /// invalid policy is an error: the daemon refuses to start), finishes an interrupted
    /// switch. Nothing runs yet.
    pub fn new(paths: &'a Paths, seams: Seams) -> Result<Supervisor<'a>> {
        let mut state = State::load_or_reset(paths);
        if std::fs::symlink_metadata(paths.ppp_settings()).is_err() {
            return Err(Error::Failed(format!(
                "{} is missing: no profile is configured",
                paths.ppp_settings().display()
            )));
        }
        let primary = super::offline::follow_selection(paths, &mut state)?;
        let active = switch::active_profile(paths)?.ok_or_else(|| {
            Error::Failed(format!(
                "{} is missing: no profile is configured",
                paths.ppp_settings().display()
            ))
        })?;
        state.active = Some(active.clone());
        let setup = load_setup(paths, seams.clock.as_ref(), &primary, &state)?;
        let mut core = Core::new(setup.config.clone());
        let obs = Observer::new(paths.red_active().exists(), paths.keepconnected().exists());
        let mut fx = Effects::new(paths, seams, setup, state, obs);
        core.restore(&fx.persisted(active));
        fx.recover_journal()?;
        Ok(Supervisor {
            core,
            fx,
            next_traffic: None,
            watched: false,
        })
    }

    /// Runs the loop until the core exits. `listener`: the bound control socket.
    /// `ready` is called once the supervisor runs (the daemon's start-up handshake);
    /// `services` are started then and stopped at the exit.
    pub fn run(
        mut self,
        listener: UnixListener,
        ready: &mut dyn FnMut(),
        services: &mut dyn Services,
    ) -> Result<u8> {
        let signals = Signals::install()?;
        let mut queue = self.begin(services)?;
        let mut watch = self.change_watch();
        ready();
        let mut next_passive = self.fx.seams.clock.now();
        loop {
            self.fx.execute(&mut self.core, &mut queue);
            if let Some(code) = self.fx.exit {
                self.shutdown(services);
                return Ok(code);
            }
            // The quiet pace needs links watched too: not with a `/sys` of a test's own.
            self.watched = watch.complete() && watch.watches_links();
            // What ran since the sample (a switch, a pre-test submitted) may have ended
            // the quiet: back to the short pace at once.
            next_passive = next_passive.min(self.fx.seams.clock.now() + self.passive_interval());
            let deadline = self.next_wake(next_passive);
            if self.wait(&signals, &listener, &mut watch, deadline) {
                // A link or a watched file changed: sample now.
                next_passive = self.fx.seams.clock.now();
            }
            let now = self.fx.seams.clock.now();

            // Signals.
            if signals.term.swap(false, Ordering::SeqCst) {
                log::info!("SIGTERM: stopping supervision (no redial)");
                self.fx.step(&mut self.core, Event::Terminate, &mut queue);
                continue;
            }
            if signals.hup.swap(false, Ordering::SeqCst) {
                self.reload(now, &mut queue);
            }
            if signals.usr1.swap(false, Ordering::SeqCst) {
                log::info!("status: {}", self.fx.status(&self.core));
            }
            // Control requests.
            while let Ok((mut stream, _)) = listener.accept() {
                if let Some(ev) = self.handle_client(&mut stream) {
                    self.fx.pending_client = Some(stream);
                    self.fx.step(&mut self.core, ev, &mut queue);
                    // The Reply action answers it during execute().
                    self.fx.execute(&mut self.core, &mut queue);
                    if let Some(mut s) = self.fx.pending_client.take() {
                        control::write_reply(&mut s, &Reply::ok("done"));
                    }
                }
            }
            self.turn(now, &mut next_passive, &mut queue);
        }
    }

    /// Starts supervising: the hook thread, the services, the core's `Start`. Returns the
    /// core's first actions.
    pub(super) fn begin(&mut self, services: &mut dyn Services) -> Result<VecDeque<Action>> {
        let paths = self.fx.paths;
        // Threads only now: the daemon has forked before `run`.
        self.fx.hooks = Some(HookRunner::spawn(
            Arc::clone(&self.fx.seams.runner),
            paths.hooks_dir(),
            self.fx.setup.policy.hook_timeout,
        ));
        services.start(paths, &self.fx.setup.policy);
        crate::uplink::proof::clean_leftovers(paths, self.fx.seams.runner.as_ref());
        let active = switch::active_profile(paths)?
            .unwrap_or_else(|| self.fx.setup.config.primary.name.clone());
        let red_active = paths.red_active().exists();
        self.fx.obs = Observer::new(red_active, paths.keepconnected().exists());
        self.log_start(&active);
        let mut queue = VecDeque::new();
        self.fx.step(
            &mut self.core,
            Event::Start {
                active,
                red_active,
                keepconnected: read_attempts(paths),
            },
            &mut queue,
        );
        Ok(queue)
    }

    /// The wake-ups on changes: the files of `red/` (`active`, `keepconnected`, `iface`)
    /// and of connectd's own directory (`red-stopped`), and the kernel's link changes when
    /// the sampled `/sys` is this namespace's own.
    fn change_watch(&self) -> ChangeWatch {
        let paths = self.fx.paths;
        let _ = crate::ipfire::fsutil::ensure_dir(&paths.connectd_dir());
        let own_sys = paths
            .sys()
            .canonicalize()
            .is_ok_and(|p| p == std::path::Path::new("/sys"));
        ChangeWatch::new(&[&paths.red_dir(), &paths.connectd_dir()], own_sys)
    }

    /// The pace of the passive sample from now: quiet only while online with nothing in
    /// flight (no grace after `red/active` vanished, no loss reported, no pre-test or
    /// proof whose answer is picked up by the sample's turn) and every change watched.
    pub(super) fn passive_interval(&self) -> Duration {
        let fx = &self.fx;
        let quiet = self.watched
            && fx.obs.wants_link()
            && fx.monitoring.is_some()
            && !fx.seams.pretests.busy()
            && fx.proof.is_none();
        if quiet {
            QUIET_PASSIVE_INTERVAL
        } else {
            PASSIVE_INTERVAL
        }
    }

    /// When the loop must wake up next: the passive sample, the core's deadline, the next
    /// probe round while RED is up.
    pub(super) fn next_wake(&self, next_passive: Instant) -> Instant {
        let now = self.fx.seams.clock.now();
        let mut deadline = next_passive.max(now);
        if let Some(d) = self.core.next_deadline() {
            deadline = deadline.min(d);
        }
        if let Some(m) = &self.fx.monitoring {
            if self.fx.obs.probing() {
                deadline = deadline.min(m.monitor.next_round_at());
            }
        }
        deadline
    }

    /// One turn after a wake-up at `now`: the passive sample when due, the traffic
    /// counters, a probe round when due, the core's timers.
    pub(super) fn turn(
        &mut self,
        now: Instant,
        next_passive: &mut Instant,
        queue: &mut VecDeque<Action>,
    ) {
        if now >= *next_passive {
            self.sample_passive(now, queue);
            *next_passive = now + self.passive_interval();
        }
        // Pre-tests run on their own thread: their answers, when they finished.
        for ev in self.fx.poll_pretests(now) {
            self.fx.step(&mut self.core, ev, queue);
        }
        // The failback proof session beside RED: its reports.
        for ev in self.fx.poll_proof(now) {
            self.fx.step(&mut self.core, ev, queue);
        }
        self.sample_traffic(now);
        self.fx.record_history();
        if self.fx.obs.probing() {
            if let Some(ev) = self.probe_if_due(now) {
                self.fx.step(&mut self.core, ev, queue);
            }
        }
        if self.core.next_deadline().is_some_and(|d| d <= now) {
            self.fx.step(&mut self.core, Event::Tick, queue);
        }
    }

    fn log_start(&self, active: &ProfileName) {
        let config = &self.fx.setup.config;
        if config.reconnection == Reconnection::DialOnDemand {
            log::info!("profile {active} dials on demand: supervised without probes");
        }
        log::info!(
            "supervising RED: profile {active}, primary {}, failover {}{}",
            config.primary.name,
            if self.fx.setup.policy.enabled {
                "on"
            } else {
                "off"
            },
            if config.chain.is_empty() {
                String::new()
            } else {
                format!(
                    ", chain {}",
                    config
                        .chain
                        .iter()
                        .map(|l| l.name.as_str())
                        .collect::<Vec<_>>()
                        .join(",")
                )
            }
        );
    }

    /// Sleeps in `poll()` until `deadline`, a signal, a control request or a watched
    /// change; whether a watched change woke it.
    fn wait(
        &self,
        signals: &Signals,
        listener: &UnixListener,
        watch: &mut ChangeWatch,
        deadline: Instant,
    ) -> bool {
        let now = self.fx.seams.clock.now();
        let left = deadline.saturating_duration_since(now);
        if left.is_zero() {
            return watch.drain();
        }
        let ms = u16::try_from(left.as_millis().max(1)).unwrap_or(u16::MAX);
        let mut fds = vec![
            nix::poll::PollFd::new(signals.pipe.as_fd(), nix::poll::PollFlags::POLLIN),
            nix::poll::PollFd::new(listener.as_fd(), nix::poll::PollFlags::POLLIN),
        ];
        fds.extend(
            watch
                .fds()
                .into_iter()
                .map(|fd| nix::poll::PollFd::new(fd, nix::poll::PollFlags::POLLIN)),
        );
        let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(ms));
        drop(fds);
        signals.drain();
        watch.drain()
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
        self.request_event(req, stream)
    }

    /// A request as the core's event; `Status` and a bad name are answered here.
    fn request_event(&mut self, req: Request, stream: &mut UnixStream) -> Option<Event> {
        match req {
            Request::Status => {
                let mut r = Reply::ok("status");
                r.status = Some(self.fx.status(&self.core));
                control::write_reply(stream, &r);
                None
            }
            // Answered after the event ran ("done"): the core replies to commands only.
            Request::Stop => Some(Event::Terminate),
            Request::Reconnect => Some(Event::Command(Command::Reconnect)),
            Request::Failover { profile } => match ProfileName::new(&profile) {
                Ok(p) if self.fx.setup.config.link(&p).is_some() => {
                    Some(Event::Command(Command::Failover(p)))
                }
                Ok(p) => {
                    control::write_reply(
                        stream,
                        &Reply::err(&Error::usage(
                            "PROFILE",
                            format!("profile {p} is not in the failover chain (BACKUPPROFILE)"),
                        )),
                    );
                    None
                }
                Err(e) => {
                    control::write_reply(stream, &Reply::err(&e));
                    None
                }
            },
            Request::Failback { force } => Some(Event::Command(Command::Failback { force })),
            Request::Auto { enabled } => Some(Event::Command(Command::Auto(enabled))),
        }
    }

    /// SIGHUP: re-reads policy and profiles; an invalid policy keeps the old one.
    fn reload(&mut self, now: Instant, queue: &mut VecDeque<Action>) {
        let fx = &mut self.fx;
        let primary = fx.setup.config.primary.name.clone();
        match load_setup(fx.paths, fx.seams.clock.as_ref(), &primary, &fx.state) {
            Ok(setup) => {
                log::info!(
                    "SIGHUP: policy reloaded from {}",
                    fx.paths.policy().display()
                );
                let config = setup.config.clone();
                fx.setup = setup;
                if let Some(m) = &mut fx.monitoring {
                    m.monitor = Monitor::new(&fx.setup.policy, now);
                    m.targets = health::build_targets(&fx.setup.policy, fx.paths);
                }
                queue.extend(self.core.step(Event::Reload(Box::new(config)), now));
            }
            Err(e) => log::error!("SIGHUP: {e}; keeping the previous policy"),
        }
    }

    /// Samples red/active, keepconnected and the link itself; queues the core's actions.
    fn sample_passive(&mut self, now: Instant, queue: &mut VecDeque<Action>) {
        let fx = &mut self.fx;
        let paths = fx.paths;
        let uses_pppd = fx
            .files_active()
            .and_then(|p| fx.kind_of(&p))
            .is_some_and(Kind::uses_pppd);
        let levels = Levels {
            keepconnected: paths.keepconnected().exists(),
            red_active: paths.red_active().exists(),
            uses_pppd,
            red_stopped: paths.red_stopped().exists(),
        };
        // The monitored uplink's link, sampled only when RED is up (see `Observer::sample`).
        let link_of = |fx: &Effects<'_>| -> Option<LinkLoss> {
            let m = fx.monitoring.as_ref()?;
            let uses_pppd = fx.kind_of(&m.profile).is_some_and(Kind::uses_pppd);
            let dev = fx.setup.device(&m.profile);
            let iface = m.iface.clone().unwrap_or_else(|| dev.clone());
            let dev = if dev.is_empty() { iface.clone() } else { dev };
            let sample = fx.seams.passive.sample(&iface, &dev, uses_pppd);
            let reason = sample.line_lost()?;
            log::info!("link lost on {iface}: {reason}");
            Some(LinkLoss {
                reason,
                // No carrier on the device itself: the line is dead, a redial is futile.
                carrier_lost: sample.device.lost().is_some(),
            })
        };
        let seen = fx
            .obs
            .sample(levels, now, || fx.seams.passive.pppd_pid().is_some());
        if seen.red_came_up {
            fx.flush_old_address();
            if let Some(m) = &mut fx.monitoring {
                // New uplink: new DNS servers and gateway; a fresh streak.
                m.targets = health::build_targets(&fx.setup.policy, paths);
                m.monitor = Monitor::new(&fx.setup.policy, now);
                m.sent = None;
                m.iface = health::red_iface(paths);
            }
        }
        let mut events = seen.events;
        if fx.obs.wants_link() {
            let loss = link_of(fx);
            events.extend(fx.obs.link(loss));
        }
        for ev in events {
            queue.extend(self.core.step(ev, now));
        }
    }

    /// RED's byte counters, once a second while RED is up.
    fn sample_traffic(&mut self, now: Instant) {
        if self.next_traffic.is_some_and(|t| now < t) {
            return;
        }
        self.next_traffic = Some(now + Duration::from_secs(1));
        let fx = &mut self.fx;
        match health::red_iface(fx.paths).filter(|_| fx.obs.red_active()) {
            Some(iface) => fx.traffic.poll(&fx.paths.sys(), &iface, now),
            None => fx.traffic.reset(),
        }
    }

    /// Runs a probe round when one is due; returns the verdict change for the core.
    fn probe_if_due(&mut self, now: Instant) -> Option<Event> {
        let fx = &mut self.fx;
        let iface = match fx.monitoring.as_ref().and_then(|m| m.iface.clone()) {
            Some(i) => i,
            None => health::red_iface(fx.paths)?,
        };
        let timeout = fx.setup.policy.check_timeout;
        let m = fx.monitoring.as_mut()?;
        if !m.probes || m.monitor.next_round_at() > now {
            return None;
        }
        if m.targets.is_empty() {
            m.targets = health::build_targets(&fx.setup.policy, fx.paths);
        }
        let results = fx.seams.prober.round(&iface, &m.targets, timeout);
        let after = fx.seams.clock.now();
        let verdict = m.monitor.record(&results, after);
        let status = m.monitor.status();
        let answered: Vec<f64> = status.targets.iter().filter_map(|t| t.rtt_ms).collect();
        let wall = crate::ipfire::state::unix(fx.seams.clock.wall());
        fx.history.round(
            wall,
            (!answered.is_empty()).then(|| answered.iter().sum::<f64>() / answered.len() as f64),
        );
        fx.last_health = Some(status);
        if let Verdict::Down { reason } = &verdict {
            if m.sent != Some(false) {
                log::info!("uplink {} on {iface} is down: {reason}", m.profile);
            }
        }
        observe::health_event(&mut m.sent, verdict, &iface)
    }

    fn shutdown(&mut self, services: &mut dyn Services) {
        self.fx.save_state(&self.core);
        self.fx.save_history();
        services.stop();
        let _ = std::fs::remove_file(self.fx.paths.control_socket());
        if let Some(h) = self.fx.hooks.take() {
            h.finish();
        }
        log::info!("connectd exits");
    }
}
