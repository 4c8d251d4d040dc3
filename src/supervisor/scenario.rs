//! The whole supervisor in-process: the machine, the effects and the observer, driven turn
//! by turn on a fake clock against a temporary IPFire root, with a fake network script (the
//! command runner), a prober and a pre-tester that answer from a small simulated world.
//! Through a failover, a failback and a rollback it checks the files a switch must leave
//! (`ppp/settings`, `ethernet/settings`, `red/current-profile`, the state file) and the
//! commands run.
//!
//! Unlike `sim.rs` (the core alone), everything between the decision and the files runs
//! here for real: the journaled switch, the keepconnected handling, the passive sample,
//! the health monitor, the state file.

#![allow(clippy::unwrap_used)] // a test: a failed setup is a failed test
#![allow(clippy::disallowed_methods)] // a test builds its root with plain writes

use std::collections::{BTreeSet, VecDeque};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use super::effects::Seams;
use super::machine::Action;
use super::runloop::{NoServices, PASSIVE_INTERVAL, QUIET_PASSIVE_INTERVAL, Supervisor};
use crate::error::Result;
use crate::ipfire::paths::Paths;
use crate::ipfire::state::State;
use crate::sys::clock::{Clock, FakeClock};
use crate::sys::exec::{CmdOutcome, CommandSpec, Runner};
use crate::uplink::health::{Passive, Prober, Target, TargetResult};
use crate::uplink::pretest::{PretestOutcome, PretestWorker, ScriptedPreTester};
use crate::uplink::switch::{self, SwitchOptions};

const ETHERNET: &str = "CONFIG_TYPE=1\nGREEN_DEV=green0\nGREEN_ADDRESS=192.168.1.1\n\
RED_DEV=red0\nRED_TYPE=DHCP\nRED_DHCP_HOSTNAME=ipfire\nRED_ADDRESS=\nDEFAULT_GATEWAY=\n";
const PROFILE_1: &str = "PROFILE=1\nPROFILENAME='Cable'\nTYPE=DHCP\nRECONNECTION=persistent\n\
MAXRETRIES=2\nHOLDOFF=10\nBACKUPPROFILE=1\n";
const PROFILE_2: &str = "PROFILE=2\nPROFILENAME='Second line'\nTYPE=DHCP\nDEVICE=red1\n\
RECONNECTION=persistent\nMAXRETRIES=2\nHOLDOFF=10\n";
const POLICY: &str = "FAILOVER_ENABLED=on\nBACKUPPROFILE=2\nFAILOVER_CHECK_HOST=203.0.113.1\n\
FAILOVER_CHECK_DNS=off\nFAILOVER_CHECK_INTERVAL=5\nFAILOVER_FAILURES=3\n\
FAILOVER_CONNECT_TIMEOUT=30\nFAILBACK_DELAY=60\nFAILBACK_ATTEMPTS=3\nFAILBACK_GRACE=30\n";

/// The simulated world: which profiles' lines are dead, and the commands run.
#[derive(Debug, Default)]
struct World {
    dead: BTreeSet<String>,
    calls: Vec<String>,
    /// Probe rounds sent.
    rounds: usize,
}

type Shared = Arc<Mutex<World>>;

/// The active profile as the files say.
fn files_profile(paths: &Paths) -> String {
    switch::active_profile(paths)
        .unwrap()
        .map(|p| p.to_string())
        .unwrap_or_default()
}

/// IPFire's network script as far as the supervisor can tell: `start red` brings RED up on
/// `ethernet/settings`' RED_DEV when the active profile's line is alive; `stop red` takes it
/// down. Every other program (conntrack) is only recorded.
struct FakeRunner {
    paths: Paths,
    world: Shared,
}

impl Runner for FakeRunner {
    fn run(&self, cmd: &CommandSpec) -> Result<CmdOutcome> {
        let argv = cmd.display();
        let script = self.paths.network_script().display().to_string();
        let mut world = self.world.lock().unwrap();
        match argv.strip_prefix(&script) {
            Some(" start red") => {
                world.calls.push("network start red".into());
                let profile = files_profile(&self.paths);
                if !world.dead.contains(&profile) {
                    let eth = fs::read_to_string(self.paths.ethernet_settings()).unwrap();
                    let dev = eth
                        .lines()
                        .find_map(|l| l.strip_prefix("RED_DEV="))
                        .unwrap()
                        .to_string();
                    fs::write(self.paths.red_iface(), dev).unwrap();
                    fs::write(self.paths.red_local_ip(), format!("198.51.100.{profile}")).unwrap();
                    fs::write(self.paths.red_active(), "").unwrap();
                }
            }
            Some(" stop red") => {
                world.calls.push("network stop red".into());
                let _ = fs::remove_file(self.paths.red_active());
            }
            Some(_) | None => world.calls.push(argv),
        }
        Ok(CmdOutcome {
            code: Some(0),
            timed_out: false,
            output: String::new(),
        })
    }
}

/// Every target answers while RED is up on a live line.
struct WorldProber {
    paths: Paths,
    world: Shared,
}

impl Prober for WorldProber {
    fn round(&mut self, _iface: &str, targets: &[Target], _timeout: Duration) -> Vec<TargetResult> {
        self.world.lock().unwrap().rounds += 1;
        let alive = self.paths.red_active().exists()
            && !self
                .world
                .lock()
                .unwrap()
                .dead
                .contains(&files_profile(&self.paths));
        targets
            .iter()
            .map(|t| {
                if alive {
                    TargetResult::ok(t, Duration::from_millis(10))
                } else {
                    TargetResult::failed(t, "no reply")
                }
            })
            .collect()
    }
}

/// The primary's session beside RED: always comes up (its AC answers); records itself.
struct WorldLink {
    world: Shared,
    profile: String,
    device: String,
}

impl crate::uplink::proof::ProofLink for WorldLink {
    fn up(&mut self, _stop: &std::sync::atomic::AtomicBool) -> std::result::Result<String, String> {
        let mut w = self.world.lock().unwrap();
        w.calls
            .push(format!("proof up {} on {}", self.profile, self.device));
        Ok(self.device.clone())
    }
    fn alive(&mut self) -> std::result::Result<(), String> {
        Ok(())
    }
    fn down(&mut self) {
        let mut w = self.world.lock().unwrap();
        w.calls.push(format!("proof down {}", self.profile));
    }
}

/// Probes through the proof session: answered while the profile's line is alive.
struct WorldProofProber {
    world: Shared,
    profile: String,
}

impl Prober for WorldProofProber {
    fn round(&mut self, _iface: &str, targets: &[Target], _timeout: Duration) -> Vec<TargetResult> {
        let alive = !self.world.lock().unwrap().dead.contains(&self.profile);
        targets
            .iter()
            .map(|t| {
                if alive {
                    TargetResult::ok(t, Duration::from_millis(10))
                } else {
                    TargetResult::failed(t, "no reply")
                }
            })
            .collect()
    }
}

/// The fake clock, shared between the test and the supervisor.
struct SharedClock(Rc<FakeClock>);

impl Clock for SharedClock {
    fn now(&self) -> Instant {
        self.0.now()
    }
    fn wall(&self) -> SystemTime {
        self.0.wall()
    }
    fn sleep(&self, d: Duration) {
        self.0.sleep(d);
    }
}

fn write(root: &Path, rel: &str, data: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, data).unwrap();
}

/// A box on profile 1 (DHCP on red0), RED up, profile 2 (DHCP on red1) as its backup.
fn root(dir: &Path) -> Paths {
    let r = dir.join("root");
    write(&r, "var/ipfire/ethernet/settings", ETHERNET);
    write(&r, "var/ipfire/ppp/settings-1", PROFILE_1);
    write(&r, "var/ipfire/ppp/settings-2", PROFILE_2);
    write(&r, "var/ipfire/ppp/secrets", "");
    write(&r, "var/ipfire/connectd/settings", POLICY);
    write(&r, "var/ipfire/red/keepconnected", "0\n");
    write(&r, "var/ipfire/red/iface", "red0");
    write(&r, "var/ipfire/red/local-ipaddress", "198.51.100.1");
    write(&r, "var/ipfire/red/active", "");
    fs::create_dir_all(r.join("var/run")).unwrap();
    fs::hard_link(
        r.join("var/ipfire/ppp/settings-1"),
        r.join("var/ipfire/ppp/settings"),
    )
    .unwrap();
    // The root's own /sys and /proc: RED's devices up, no processes.
    for dev in ["red0", "red1"] {
        write(&r, &format!("sys/class/net/{dev}/carrier"), "1\n");
        write(&r, &format!("sys/class/net/{dev}/operstate"), "up\n");
    }
    fs::create_dir_all(r.join("proc")).unwrap();
    Paths::new(r).unwrap()
}

/// The supervisor with its clock and queue, driven one wake-up at a time.
struct Driver<'a> {
    sup: Supervisor<'a>,
    clock: Rc<FakeClock>,
    queue: VecDeque<Action>,
    next_passive: Instant,
}

impl<'a> Driver<'a> {
    /// A supervisor on `paths` with `seams`, begun (its start-up actions queued).
    fn start(paths: &'a Paths, seams: Seams, clock: &Rc<FakeClock>) -> Driver<'a> {
        let mut sup = Supervisor::new(paths, seams).unwrap();
        let queue = sup.begin(&mut NoServices).unwrap();
        Driver {
            sup,
            next_passive: clock.now(),
            clock: Rc::clone(clock),
            queue,
        }
    }
}

impl Driver<'_> {
    /// Runs until `done` holds for the core's snapshot, at most `limit` of simulated time.
    fn until(&mut self, what: &str, limit: Duration, done: impl Fn(&str, &str) -> bool) {
        let end = self.clock.now() + limit;
        loop {
            self.sup.fx.execute(&mut self.sup.core, &mut self.queue);
            assert!(self.sup.fx.exit.is_none(), "the supervisor exited");
            let snap = self.sup.core.snapshot(self.clock.now());
            if done(&snap.state, snap.active.as_str()) {
                return;
            }
            assert!(
                self.clock.now() < end,
                "no {what} within {limit:?}: {} on {}",
                snap.phase,
                snap.active
            );
            let wake = self.sup.next_wake(self.next_passive);
            self.clock.advance_to(wake);
            let now = self.clock.now();
            self.sup.turn(now, &mut self.next_passive, &mut self.queue);
        }
    }
}

impl Driver<'_> {
    /// Runs for `span` of simulated time.
    fn run_for(&mut self, span: Duration) {
        let end = self.clock.now() + span;
        while self.clock.now() < end {
            self.sup.fx.execute(&mut self.sup.core, &mut self.queue);
            let wake = self.sup.next_wake(self.next_passive).min(end);
            self.clock.advance_to(wake);
            let now = self.clock.now();
            self.sup.turn(now, &mut self.next_passive, &mut self.queue);
        }
        self.sup.fx.execute(&mut self.sup.core, &mut self.queue);
    }
}

fn calls(world: &Shared) -> Vec<String> {
    let mut w = world.lock().unwrap();
    std::mem::take(&mut w.calls)
        .into_iter()
        .filter(|c| c.starts_with("network "))
        .collect()
}

fn same_file(paths: &Paths, profile: &str) -> bool {
    fs::metadata(paths.ppp_settings()).unwrap().ino()
        == fs::metadata(paths.profile(profile)).unwrap().ino()
}

/// The scenario's seams: the fake network script and prober on `world`, the shared fake
/// clock, and pre-tests that always pass.
fn fake_seams(paths: &Paths, world: &Shared, clock: &Rc<FakeClock>) -> Seams {
    Seams {
        runner: Arc::new(FakeRunner {
            paths: paths.clone(),
            world: Arc::clone(world),
        }),
        clock: Box::new(SharedClock(Rc::clone(clock))),
        prober: Box::new(WorldProber {
            paths: paths.clone(),
            world: Arc::clone(world),
        }),
        pretests: PretestWorker::inline(Box::new(ScriptedPreTester::always(
            PretestOutcome::Passed("a DHCP offer".into()),
        ))),
        passive: Passive::new(paths),
        proof: {
            let world = Arc::clone(world);
            Box::new(move |profile, device, _timeout, probes| {
                let link = WorldLink {
                    world: Arc::clone(&world),
                    profile: profile.name.to_string(),
                    device: device.to_string(),
                };
                let prober = WorldProofProber {
                    world: Arc::clone(&world),
                    profile: profile.name.to_string(),
                };
                Some(Ok(crate::uplink::proof::ProofSession::inline(
                    Box::new(link),
                    Box::new(prober),
                    probes,
                )))
            })
        },
        switch: SwitchOptions {
            network_timeout: Duration::from_secs(5),
            stop_wait: Duration::ZERO,
            proc_root: None,
        },
    }
}

fn kinds(paths: &Paths) -> Vec<String> {
    State::load_or_reset(paths)
        .transitions
        .iter()
        .map(|t| format!("{}:{}", t.kind, t.to))
        .collect()
}

#[test]
fn failover_failback_and_rollback_leave_the_files_and_commands_right() {
    let dir = tempfile::tempdir().unwrap();
    let paths = root(dir.path());
    let world: Shared = Arc::default();
    let clock = Rc::new(FakeClock::default());
    let seams = fake_seams(&paths, &world, &clock);
    let eth_primary = fs::read_to_string(paths.ethernet_settings()).unwrap();
    let mut d = Driver::start(&paths, seams, &clock);
    let minute = Duration::from_secs(60);
    d.until("online on 1", minute, |s, a| s == "online" && a == "1");
    assert!(calls(&world).is_empty(), "nothing to do while 1 is healthy");
    // The background round at the start pre-tested the backup; status shows it.
    d.run_for(Duration::from_secs(3));
    let st = d.sup.fx.status(&d.sup.core);
    let c2 = st.chain.iter().find(|c| c.profile.as_str() == "2").unwrap();
    let lp = c2
        .last_pretest
        .as_ref()
        .expect("2 pre-tested in the background");
    assert_eq!(lp.result, "passed");
    assert!(
        st.chain[0].last_pretest.is_none(),
        "the active primary is not pre-tested"
    );

    // Failover: the line of 1 dies (RED stays up, nothing answers). The first failed
    // round pre-tests 2 at once; the failover uses that pass instead of a new pre-test.
    world.lock().unwrap().dead.insert("1".into());
    d.until("failover to 2", minute, |s, a| s == "online" && a == "2");
    let reason = State::load_or_reset(&paths).transitions[0].reason.clone();
    assert!(reason.contains("2 passed its pre-test"), "{reason}");
    assert_eq!(calls(&world), ["network stop red", "network start red"]);
    assert!(same_file(&paths, "2"), "ppp/settings is profile 2");
    let eth = fs::read_to_string(paths.ethernet_settings()).unwrap();
    assert!(eth.contains("RED_DEV=red1\n"), "{eth}");
    assert_eq!(
        fs::read_to_string(paths.current_profile()).unwrap(),
        "2",
        "red/current-profile"
    );
    assert_eq!(fs::read_to_string(paths.keepconnected()).unwrap(), "0");
    let st = State::load_or_reset(&paths);
    assert_eq!(st.active.as_ref().map(|p| p.as_str()), Some("2"));
    assert!(st.journal.is_none());
    assert_eq!(kinds(&paths), ["failover:2"]);

    // Failback: 1 heals; after FAILBACK_DELAY it is proven beside 2 (its own device),
    // torn down, then switched to; the trial survives FAILBACK_GRACE.
    world.lock().unwrap().dead.remove("1");
    d.until("the failback trial", 2 * minute, |s, a| {
        s == "trial" && a == "1"
    });
    assert_eq!(
        world.lock().unwrap().calls[..4],
        [
            "proof up 1 on red0",
            "proof down 1",
            "network stop red",
            "network start red"
        ],
        "the proof is torn down before the switch"
    );
    assert_eq!(calls(&world), ["network stop red", "network start red"]);
    assert!(same_file(&paths, "1"));
    assert_eq!(
        fs::read_to_string(paths.ethernet_settings()).unwrap(),
        eth_primary,
        "the primary's RED values are restored exactly"
    );
    d.until("the failback confirmed", minute, |s, a| {
        s == "online" && a == "1"
    });
    assert_eq!(kinds(&paths), ["failover:2", "failback:1"]);

    // Rollback: 1 fails again, the supervisor fails over; 1 heals, the failback trial
    // starts, and 1 dies within FAILBACK_GRACE: back to 2.
    world.lock().unwrap().dead.insert("1".into());
    d.until("the second failover", minute, |s, a| {
        s == "online" && a == "2"
    });
    world.lock().unwrap().dead.remove("1");
    d.until("the second trial", 2 * minute, |s, a| {
        s == "trial" && a == "1"
    });
    world.lock().unwrap().dead.insert("1".into());
    d.until("the rollback", minute, |s, a| s == "online" && a == "2");
    assert_eq!(
        calls(&world),
        ["network stop red", "network start red"].repeat(3)
    );
    assert!(same_file(&paths, "2"));
    let eth = fs::read_to_string(paths.ethernet_settings()).unwrap();
    assert!(eth.contains("RED_DEV=red1\n"), "{eth}");
    assert_eq!(
        kinds(&paths),
        [
            "failover:2",
            "failback:1",
            "failover:2",
            "failback:1",
            "rollback:2"
        ]
    );
    let snap = d.sup.core.snapshot(clock.now());
    assert_eq!(
        snap.failback_delay_secs, 120,
        "a failed trial doubles the delay"
    );
    let st = State::load_or_reset(&paths);
    assert_eq!(st.active.as_ref().map(|p| p.as_str()), Some("2"));
    assert_eq!(st.failback_delay_secs, Some(120));
    assert_eq!(st.switch_count, 5);
    if let Some(h) = d.sup.fx.hooks.take() {
        h.finish();
    }
}

#[test]
fn a_disconnect_on_the_backup_is_never_undone_and_gives_the_files_back_to_the_primary() {
    // Issue 12 items 3 and 7: DHCP's `network stop red` keeps keepconnected; our red.down
    // hook's marker is the Disconnect. The supervisor stops and exits, and the next
    // Connect (or pppsetup's Select that follows) must not run on the backup's RED_*.
    let dir = tempfile::tempdir().unwrap();
    let paths = root(dir.path());
    let world: Shared = Arc::default();
    let clock = Rc::new(FakeClock::default());
    let seams = fake_seams(&paths, &world, &clock);
    let eth_primary = fs::read_to_string(paths.ethernet_settings()).unwrap();
    let mut d = Driver::start(&paths, seams, &clock);
    let minute = Duration::from_secs(60);
    d.until("online on 1", minute, |s, a| s == "online" && a == "1");
    world.lock().unwrap().dead.insert("1".into());
    d.until("failover to 2", minute, |s, a| s == "online" && a == "2");
    calls(&world);
    // The administrator's `network stop red` on the DHCP backup: dhcpcd.exe removes
    // red/active, then our red.down hook writes the marker.
    fs::remove_file(paths.red_active()).unwrap();
    write(
        paths.root(),
        "var/ipfire/connectd/red-stopped",
        "dhcpcd RELEASE on red1\n",
    );
    for _ in 0..40 {
        d.sup.fx.execute(&mut d.sup.core, &mut d.queue);
        if d.sup.fx.exit.is_some() {
            break;
        }
        let wake = d.sup.next_wake(d.next_passive);
        d.clock.advance_to(wake);
        let now = d.clock.now();
        d.sup.turn(now, &mut d.next_passive, &mut d.queue);
    }
    assert_eq!(d.sup.fx.exit, Some(0), "the Disconnect ends supervision");
    assert_eq!(calls(&world), ["network stop red"], "never started again");
    assert!(same_file(&paths, "1"), "ppp/settings is the primary again");
    assert_eq!(
        fs::read_to_string(paths.ethernet_settings()).unwrap(),
        eth_primary,
        "the primary's RED values are back"
    );
    let st = State::load_or_reset(&paths);
    assert_eq!(st.active.as_ref().map(|p| p.as_str()), Some("1"));
    if let Some(h) = d.sup.fx.hooks.take() {
        h.finish();
    }
}

/// A pre-test that waits until the test opens the gate (a DHCP server slow to offer).
struct GatedPreTester(Arc<Mutex<()>>);

impl crate::uplink::pretest::PreTester for GatedPreTester {
    fn pretest(
        &mut self,
        _p: &crate::ipfire::profile::Profile,
        device: &str,
        _a: Option<&str>,
    ) -> PretestOutcome {
        let _open = self.0.lock().unwrap();
        PretestOutcome::Passed(format!("a DHCP offer on {device}"))
    }
}

/// Online on 1, with pre-tests on a thread of their own that hang while `gate` is locked.
fn online_with_gated_pretests<'a>(
    paths: &'a Paths,
    world: &Shared,
    clock: &Rc<FakeClock>,
    gate: &Arc<Mutex<()>>,
) -> Driver<'a> {
    let mut seams = fake_seams(paths, world, clock);
    seams.pretests = PretestWorker::threaded(Box::new(GatedPreTester(Arc::clone(gate))));
    let mut d = Driver::start(paths, seams, clock);
    d.until("online on 1", Duration::from_secs(60), |s, a| {
        s == "online" && a == "1"
    });
    d
}

#[test]
fn health_rounds_go_on_while_a_pretest_runs_on_its_thread() {
    let dir = tempfile::tempdir().unwrap();
    let paths = root(dir.path());
    let world: Shared = Arc::default();
    let clock = Rc::new(FakeClock::default());
    let gate = Arc::new(Mutex::new(()));
    let closed = gate.lock().unwrap();
    let mut d = online_with_gated_pretests(&paths, &world, &clock, &gate);
    // The background round at the start sent 2's pre-test, which now hangs on its
    // thread: the loop goes on probing 1 (FAILOVER_CHECK_INTERVAL=5) all the same.
    let before = world.lock().unwrap().rounds;
    d.run_for(Duration::from_secs(20));
    let during = world.lock().unwrap().rounds - before;
    assert!(
        during >= 4,
        "{during} probe rounds in 20 s while the pre-test ran"
    );
    assert_eq!(
        d.sup.fx.seams.pretests.running().map(|p| p.as_str()),
        Some("2")
    );
    let st = d.sup.fx.status(&d.sup.core);
    assert!(
        st.chain.iter().all(|c| c.last_pretest.is_none()),
        "not answered yet"
    );
    // The offer comes: the answer reaches the core at the next turn.
    drop(closed);
    let mut answered = false;
    for _ in 0..400 {
        d.run_for(Duration::from_millis(250));
        let st = d.sup.fx.status(&d.sup.core);
        let c2 = st.chain.iter().find(|c| c.profile.as_str() == "2").unwrap();
        if let Some(lp) = &c2.last_pretest {
            assert_eq!(lp.result, "passed");
            answered = true;
            break;
        }
        crate::sys::clock::SystemClock.sleep(Duration::from_millis(5));
    }
    assert!(answered, "the pre-test's answer never reached the core");
    assert!(!d.sup.fx.seams.pretests.busy());
    if let Some(h) = d.sup.fx.hooks.take() {
        h.finish();
    }
}

/// The passive sample's quiet pace (1 s instead of 250 ms) is taken only while online, with
/// every change watched and no pre-test or proof whose answer the sample's turn picks up;
/// a vanished `red/active` brings the short pace back for its grace.
#[test]
fn the_quiet_pace_needs_every_change_watched_and_nothing_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let paths = root(dir.path());
    let world: Shared = Arc::default();
    let clock = Rc::new(FakeClock::default());
    let gate = Arc::new(Mutex::new(()));
    let closed = gate.lock().unwrap();
    let mut d = online_with_gated_pretests(&paths, &world, &clock, &gate);
    d.sup.watched = true;
    // The background round at the start sends 2's pre-test, which hangs on its thread.
    d.run_for(Duration::from_secs(1));
    assert!(d.sup.fx.seams.pretests.busy());
    assert_eq!(
        d.sup.passive_interval(),
        PASSIVE_INTERVAL,
        "a pre-test runs"
    );
    drop(closed);
    for _ in 0..400 {
        d.run_for(Duration::from_millis(250));
        if !d.sup.fx.seams.pretests.busy() {
            break;
        }
        crate::sys::clock::SystemClock.sleep(Duration::from_millis(5));
    }
    assert!(!d.sup.fx.seams.pretests.busy(), "the pre-test never ended");
    assert_eq!(d.sup.passive_interval(), QUIET_PASSIVE_INTERVAL);
    // A sample now: the next one is a quiet interval away.
    d.next_passive = d.clock.now();
    d.run_for(Duration::from_millis(1));
    assert!(
        d.next_passive >= d.clock.now() + QUIET_PASSIVE_INTERVAL - Duration::from_millis(1),
        "the next sample is {:?} away",
        d.next_passive.saturating_duration_since(d.clock.now())
    );
    d.sup.watched = false;
    assert_eq!(
        d.sup.passive_interval(),
        PASSIVE_INTERVAL,
        "a change not watched: sampled at the short pace"
    );
    d.sup.watched = true;
    // The lease is lost: red/active vanishes (a watched change samples at once).
    fs::remove_file(paths.red_active()).unwrap();
    d.next_passive = d.clock.now();
    d.run_for(Duration::from_millis(1));
    assert_eq!(d.sup.passive_interval(), PASSIVE_INTERVAL, "in the grace");
    assert!(d.next_passive <= d.clock.now() + PASSIVE_INTERVAL);
    if let Some(h) = d.sup.fx.hooks.take() {
        h.finish();
    }
}

/// Pre-tests that pass, while the line of RED drops during the first one (dhcpcd.exe
/// removes red/active on EXPIRE, `dhcpcd.exe:76-96`, and kills the primary's line in the
/// world).
struct DropDuringPretest {
    paths: Paths,
    world: Shared,
    dropped: bool,
}

impl crate::uplink::pretest::PreTester for DropDuringPretest {
    fn pretest(
        &mut self,
        _profile: &crate::ipfire::profile::Profile,
        _device: &str,
        _active_device: Option<&str>,
    ) -> PretestOutcome {
        if !self.dropped {
            self.dropped = true;
            self.world.lock().unwrap().dead.insert("1".into());
            let _ = fs::remove_file(self.paths.red_active());
        }
        PretestOutcome::Passed("a DHCP offer".into())
    }
}

#[test]
fn a_line_that_drops_during_a_pre_test_is_noticed() {
    // The QMI column's "primary line drops": the line died (EXPIRE removed red/active)
    // while the supervisor ran its background pre-test round (3 s, blocking). Taking
    // red/active's level after the pre-test's answer swallowed the RedDown: nothing probed
    // a RED the supervisor thought down and the box stayed offline for good.
    let dir = tempfile::tempdir().unwrap();
    let paths = root(dir.path());
    let world: Shared = Arc::default();
    let clock = Rc::new(FakeClock::default());
    let mut seams = fake_seams(&paths, &world, &clock);
    seams.pretests = PretestWorker::inline(Box::new(DropDuringPretest {
        paths: paths.clone(),
        world: Arc::clone(&world),
        dropped: false,
    }));
    let mut d = Driver::start(&paths, seams, &clock);
    let minute = Duration::from_secs(60);
    d.until("failover to 2", 3 * minute, |s, a| {
        s == "online" && a == "2"
    });
    assert!(same_file(&paths, "2"));
    if let Some(h) = d.sup.fx.hooks.take() {
        h.finish();
    }
}

/// The world's prober, but a failed round takes its whole timeout of the fake clock (as a
/// real one waits for replies that never come).
struct SlowFailingProber {
    inner: WorldProber,
    clock: Rc<FakeClock>,
}

impl Prober for SlowFailingProber {
    fn round(&mut self, iface: &str, targets: &[Target], timeout: Duration) -> Vec<TargetResult> {
        let r = self.inner.round(iface, targets, timeout);
        if r.iter().all(|t| t.rtt.is_none()) {
            self.clock.advance_to(self.clock.now() + timeout);
        }
        r
    }
}

#[test]
fn a_lease_lost_then_renewed_is_redialled_not_walked_away_from() {
    // The lab's "primary lease NAKed" and issue 12 item 9 (`redctrl restart`): dhcpcd.exe
    // removes red/active (NAK, or the restart's stop) and the line has no address for a
    // few seconds. Probe rounds failing on it, one timeout each, used to add up to the
    // three failures of a blackhole before the 2 s grace on red/active had run its
    // samples: the supervisor walked to the backup. The line comes back by itself here.
    let dir = tempfile::tempdir().unwrap();
    let paths = root(dir.path());
    write(
        paths.root(),
        "var/ipfire/connectd/settings",
        &POLICY
            .replace("FAILOVER_CHECK_INTERVAL=5", "FAILOVER_CHECK_INTERVAL=1")
            .replace("FAILOVER_CONNECT_TIMEOUT=30", "FAILOVER_CONNECT_TIMEOUT=20"),
    );
    let world: Shared = Arc::default();
    let clock = Rc::new(FakeClock::default());
    let mut seams = fake_seams(&paths, &world, &clock);
    seams.prober = Box::new(SlowFailingProber {
        inner: WorldProber {
            paths: paths.clone(),
            world: Arc::clone(&world),
        },
        clock: Rc::clone(&clock),
    });
    let mut d = Driver::start(&paths, seams, &clock);
    let minute = Duration::from_secs(60);
    d.until("online on 1", minute, |s, a| s == "online" && a == "1");
    d.run_for(Duration::from_secs(3));
    calls(&world);
    // NAK: red/active gone, no marker (not a deliberate stop); the address is gone too.
    world.lock().unwrap().dead.insert("1".into());
    fs::remove_file(paths.red_active()).unwrap();
    d.run_for(Duration::from_millis(1500));
    world.lock().unwrap().dead.clear();
    d.until("online on 1 again", minute, |s, a| {
        s == "online" && a == "1"
    });
    d.run_for(Duration::from_secs(10));
    let snap = d.sup.core.snapshot(d.clock.now());
    assert_eq!(
        snap.active.as_str(),
        "1",
        "walked away from a line that came back"
    );
    assert!(same_file(&paths, "1"));
    assert!(
        !kinds(&paths).iter().any(|k| k.ends_with(":2")),
        "switched to the backup: {:?}",
        kinds(&paths)
    );
    if let Some(h) = d.sup.fx.hooks.take() {
        h.finish();
    }
}
