//! Health probes and pre-tests against real packets, in network namespaces of our own.
//!
//! Root only (each test prints `skipped: ...` otherwise). Every test builds its own
//! namespaces named `cdh-<pid>-<n>...`, connected only to each other with veth pairs and
//! addressed from the documentation ranges; a [`Lab`] guard kills the processes it started
//! (by PID) and deletes its namespaces on drop, also when the test fails. Our own code runs
//! inside a namespace on a dedicated thread that `setns()`es into it, so the probes and
//! pre-tests under test are the library's, not a copy.

#![allow(clippy::unwrap_used)] // test helpers panic with the failing command

use std::fs::File;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use connectd::ipfire::paths::Paths;
use connectd::ipfire::policy::Policy;
use connectd::ipfire::profile::{Profile, ProfileName};
use connectd::ipfire::readhash::Document;
use connectd::sys::clock::{Clock, SystemClock};
use connectd::uplink::health::{Monitor, Probe, Prober, RealProber, Role, Target, Verdict};
use connectd::uplink::pretest::{PreTester, PretestOutcome, RealPreTester};

static NEXT: AtomicUsize = AtomicUsize::new(0);

fn skip_reason() -> Option<String> {
    if !super::util::is_root() {
        return Some("needs root for network namespaces".into());
    }
    if connectd::sys::exec::find_in_path("ip").is_none() {
        return Some("the ip tool is missing".into());
    }
    None
}

macro_rules! require_root {
    () => {
        if let Some(r) = skip_reason() {
            eprintln!("skipped: {r}");
            return;
        }
    };
}

fn run(argv: &[&str]) {
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .unwrap_or_else(|e| panic!("{argv:?}: {e}"));
    assert!(
        out.status.success(),
        "{argv:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn output(argv: &[&str]) -> String {
    let out = Command::new(argv[0]).args(&argv[1..]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Namespaces and processes of one test, gone on drop.
struct Lab {
    prefix: String,
    namespaces: Vec<String>,
    children: Vec<Child>,
    tmp: tempfile::TempDir,
}

impl Lab {
    fn new() -> Lab {
        Lab {
            prefix: format!(
                "cdh-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ),
            namespaces: Vec::new(),
            children: Vec::new(),
            tmp: tempfile::tempdir().unwrap(),
        }
    }

    /// A namespace with lo up.
    fn ns(&mut self, suffix: &str) -> String {
        let name = format!("{}{suffix}", self.prefix);
        run(&["ip", "netns", "add", &name]);
        self.namespaces.push(name.clone());
        run(&["ip", "-n", &name, "link", "set", "lo", "up"]);
        for key in [
            "net.ipv4.conf.all.rp_filter",
            "net.ipv4.conf.default.rp_filter",
        ] {
            run(&[
                "ip",
                "netns",
                "exec",
                &name,
                "sysctl",
                "-q",
                "-w",
                &format!("{key}=0"),
            ]);
        }
        name
    }

    /// A veth pair `a_dev` in `a` and `b_dev` in `b`, both up.
    fn veth(&self, a: &str, a_dev: &str, b: &str, b_dev: &str) {
        run(&[
            "ip", "-n", a, "link", "add", a_dev, "type", "veth", "peer", "name", b_dev, "netns", b,
        ]);
        run(&["ip", "-n", a, "link", "set", a_dev, "up"]);
        run(&["ip", "-n", b, "link", "set", b_dev, "up"]);
    }

    fn ip(&self, ns: &str, args: &[&str]) {
        let mut argv = vec!["ip", "-n", ns];
        argv.extend_from_slice(args);
        run(&argv);
    }

    fn exec(&self, ns: &str, args: &[&str]) {
        let mut argv = vec!["ip", "netns", "exec", ns];
        argv.extend_from_slice(args);
        run(&argv);
    }

    /// Starts `argv` inside `ns` (`ip netns exec` execs it: same PID), output to a file.
    fn spawn(&mut self, ns: &str, argv: &[&str], log: &str) -> u32 {
        let log = File::create(self.tmp.path().join(log)).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", ns])
            .args(argv)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let pid = child.id();
        self.children.push(child);
        pid
    }

    fn tmp(&self) -> &Path {
        self.tmp.path()
    }

    /// Runs `f` on a thread inside `ns`.
    fn inside<T: Send + 'static>(&self, ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = PathBuf::from("/run/netns").join(ns);
        std::thread::spawn(move || {
            let fd = File::open(&path).unwrap();
            nix::sched::setns(&fd, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            f()
        })
        .join()
        .unwrap()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in &mut self.children {
            let pid = nix::unistd::Pid::from_raw(c.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT);
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in &self.namespaces {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

fn profile(text: &str) -> Profile {
    Profile::from_doc(
        ProfileName::new("t").unwrap(),
        Document::parse(text),
        Path::new("settings-t"),
    )
    .unwrap()
}

fn lab_pppoe() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/debug/examples/lab-pppoe");
    p.is_file().then_some(p)
}

fn wait_for(path: &Path, needle: &str) {
    let end = SystemClock.now() + Duration::from_secs(5);
    while SystemClock.now() < end {
        if std::fs::read_to_string(path).is_ok_and(|s| s.contains(needle)) {
            return;
        }
        SystemClock.sleep(Duration::from_millis(20));
    }
    panic!(
        "{} never said {needle:?}: {:?}",
        path.display(),
        std::fs::read_to_string(path)
    );
}

/// Client `c` (a0 198.51.100.2) ↔ peer `p` (b0 198.51.100.1, 203.0.113.1 on lo); the client
/// routes 203.0.113.0/24 via the peer.
fn two_hosts(lab: &mut Lab) -> (String, String) {
    let c = lab.ns("c");
    let p = lab.ns("p");
    lab.veth(&c, "a0", &p, "b0");
    lab.ip(&c, &["addr", "add", "198.51.100.2/24", "dev", "a0"]);
    lab.ip(&p, &["addr", "add", "198.51.100.1/24", "dev", "b0"]);
    lab.ip(&p, &["addr", "add", "203.0.113.1/32", "dev", "lo"]);
    lab.ip(
        &c,
        &["route", "add", "203.0.113.0/24", "via", "198.51.100.1"],
    );
    (c, p)
}

/// The host's own root: probes inside a lab namespace read its `/sys`.
fn host() -> Paths {
    Paths::new("/").unwrap()
}

fn target(host: &str, probe: Probe) -> Target {
    Target {
        host: host.into(),
        probe,
        role: Role::Internet,
    }
}

#[test]
fn reachable_targets_answer_with_an_rtt_over_icmp_dns_and_tcp() {
    require_root!();
    let mut lab = Lab::new();
    let (c, p) = two_hosts(&mut lab);
    let pid = lab.tmp().join("dnsmasq.pid").display().to_string();
    lab.spawn(
        &p,
        &[
            "dnsmasq",
            "--no-daemon",
            "--conf-file=/dev/null",
            &format!("--pid-file={pid}"),
            "--listen-address=203.0.113.1",
            "--bind-interfaces",
            "--no-resolv",
            "--no-hosts",
            // The zone's authority: NXDOMAIN with its SOA for the probe's random names.
            "--auth-server=ns.ipfire.org,203.0.113.1",
            "--auth-zone=ipfire.org",
            "--auth-soa=1,hostmaster.ipfire.org",
            "--host-record=ipfire.org,203.0.113.80",
        ],
        "dns.log",
    );
    let gw = Ipv4Addr::new(198, 51, 100, 1);
    let a = Ipv4Addr::new(203, 0, 113, 1);
    let targets = vec![
        Target::icmp(a),
        target("dns", Probe::Dns(vec![a], "ipfire.org".into())),
        target("tcp:53", Probe::Tcp("203.0.113.1:53".parse().unwrap())),
        target("tcp:9", Probe::Tcp("203.0.113.1:9".parse().unwrap())),
        Target::icmp(Ipv4Addr::new(203, 0, 113, 77)),
        Target::gateway(gw),
    ];
    let results = lab.inside(&c, move || {
        let mut prober = RealProber::new(&host());
        // dnsmasq may need a moment to bind: a few rounds at most.
        let mut r = Vec::new();
        for _ in 0..20 {
            let t = SystemClock.now();
            r = prober.round("a0", &targets, Duration::from_millis(500));
            if r[1].answered() && r[2].answered() {
                assert!(
                    t.elapsed() >= Duration::from_millis(500),
                    "waited for the silent one"
                );
                break;
            }
        }
        r
    });
    assert!(results[0].rtt.is_some(), "{:?}", results[0]);
    assert!(results[0].rtt.unwrap() < Duration::from_millis(100));
    assert!(results[1].answered(), "DNS: {:?}", results[1]);
    assert!(results[2].answered(), "TCP 53: {:?}", results[2]);
    assert!(
        results[3]
            .error
            .as_deref()
            .is_some_and(|e| e.contains("refused")),
        "{:?}",
        results[3]
    );
    assert!(
        results[4]
            .error
            .as_deref()
            .is_some_and(|e| e.contains("no reply")),
        "{:?}",
        results[4]
    );
    assert!(results[5].answered() && results[5].role == Role::Gateway);
    let mut m = Monitor::new(&Policy::default(), SystemClock.now());
    assert_eq!(m.record(&results, SystemClock.now()), Verdict::Healthy);
}

#[test]
fn blackholed_target_is_down_after_failures_rounds() {
    require_root!();
    if connectd::sys::exec::find_in_path("nft").is_none() {
        eprintln!("skipped: nft is missing");
        return;
    }
    let mut lab = Lab::new();
    let (c, p) = two_hosts(&mut lab);
    let policy = Policy {
        check_timeout: Duration::from_millis(300),
        check_interval: Duration::from_millis(200),
        ..Policy::default()
    };
    let targets = vec![
        Target::icmp(Ipv4Addr::new(203, 0, 113, 1)),
        Target::gateway(Ipv4Addr::new(198, 51, 100, 1)),
    ];
    let pol = policy.clone();
    let ts = targets.clone();
    let first = lab.inside(&c, move || {
        RealProber::new(&host()).round("a0", &ts, pol.check_timeout)
    });
    let mut m = Monitor::new(&policy, SystemClock.now());
    assert_eq!(m.record(&first, SystemClock.now()), Verdict::Healthy);

    // The gateway keeps answering; nothing beyond it does.
    lab.exec(&p, &["nft", "add table ip cdh"]);
    lab.exec(
        &p,
        &[
            "nft",
            "add chain ip cdh input { type filter hook input priority 0 ; }",
        ],
    );
    lab.exec(
        &p,
        &["nft", "add rule ip cdh input ip daddr 203.0.113.1 drop"],
    );

    let (rounds, verdict, m) = lab.inside(&c, move || {
        let mut prober = RealProber::new(&host());
        for round in 1..=10u32 {
            let r = prober.round("a0", &targets, policy.check_timeout);
            assert!(r[1].answered(), "gateway still answers: {:?}", r[1]);
            let v = m.record(&r, SystemClock.now());
            if let Verdict::Down { .. } = v {
                return (round, v, m);
            }
            assert!(
                m.next_round_at() <= SystemClock.now(),
                "confirm round at once"
            );
        }
        panic!("never down");
    });
    assert_eq!(rounds, Policy::default().failures, "{verdict:?}");
    let Verdict::Down { reason } = verdict else {
        unreachable!()
    };
    assert!(
        reason.contains("203.0.113.1: no reply within 300 ms"),
        "{reason}"
    );
    assert_eq!(m.status().gateway.unwrap().loss_pct, 0.0);
}

#[test]
fn probes_leave_through_the_bound_interface_not_the_default_route() {
    require_root!();
    let mut lab = Lab::new();
    let c = lab.ns("c");
    let p1 = lab.ns("p1");
    let p2 = lab.ns("p2");
    lab.veth(&c, "a0", &p1, "b0");
    lab.veth(&c, "c0", &p2, "d0");
    lab.ip(&c, &["addr", "add", "198.51.100.2/24", "dev", "a0"]);
    lab.ip(&c, &["addr", "add", "192.0.2.2/24", "dev", "c0"]);
    lab.ip(&c, &["route", "add", "default", "via", "192.0.2.1"]);
    lab.ip(&p1, &["addr", "add", "198.51.100.1/24", "dev", "b0"]);
    lab.ip(&p1, &["addr", "add", "203.0.113.1/32", "dev", "lo"]);
    lab.ip(&p2, &["addr", "add", "192.0.2.1/24", "dev", "d0"]);
    let t = vec![Target::icmp(Ipv4Addr::new(203, 0, 113, 1))];
    let (via_a0, via_c0) = lab.inside(&c, move || {
        let mut p = RealProber::new(&host());
        let a = p.round("a0", &t, Duration::from_millis(500));
        let c = p.round("c0", &t, Duration::from_millis(500));
        (a, c)
    });
    assert!(via_a0[0].answered(), "bound to a0: {:?}", via_a0[0]);
    assert!(
        !via_c0[0].answered(),
        "the default route's side: {:?}",
        via_c0[0]
    );
}

#[test]
fn pppoe_discovery_passes_against_the_lab_ac_and_fails_when_it_is_silent() {
    require_root!();
    let Some(bin) = lab_pppoe() else {
        eprintln!("skipped: build the examples first (cargo build --examples)");
        return;
    };
    let mut lab = Lab::new();
    let c = lab.ns("c");
    let p = lab.ns("p");
    lab.veth(&c, "p0", &p, "q0");
    let bin_s = bin.display().to_string();
    let ac = lab.spawn(
        &p,
        &[&bin_s, "ac", "q0", "--ac-name", "LAB", "--service", "inet"],
        "ac.log",
    );
    wait_for(&lab.tmp().join("ac.log"), "listening");

    let test = |lab: &Lab, text: &'static str| {
        lab.inside(&c, move || {
            let mut t = RealPreTester::new(Box::new(connectd::sys::exec::ProcessRunner), &host());
            t.pppoe_timeout = Duration::from_millis(1200);
            t.pretest(&profile(text), "p0", Some("red9"))
        })
    };
    let o = test(&lab, "TYPE=pppoe\nSERVICENAME=inet\nCONCENTRATORNAME=LAB\n");
    assert!(
        matches!(&o, PretestOutcome::Passed(m) if m.contains("LAB")),
        "{o:?}"
    );
    let o = test(&lab, "TYPE=vdsl\n");
    assert!(matches!(o, PretestOutcome::Passed(_)), "{o:?}");
    let o = test(&lab, "TYPE=pppoe\nCONCENTRATORNAME=OTHER\n");
    assert!(
        matches!(&o, PretestOutcome::Failed(m) if m.contains("did not match") && m.contains("LAB")),
        "{o:?}"
    );

    // The lab client: a whole discovery with a session id.
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &c,
            &bin_s,
            "client",
            "p0",
            "--timeout-ms",
            "2000",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let sid: u16 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert!(sid >= 1);

    // The AC goes silent.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(ac as i32),
        nix::sys::signal::Signal::SIGSTOP,
    )
    .unwrap();
    let o = test(&lab, "TYPE=pppoe\n");
    assert!(
        matches!(&o, PretestOutcome::Failed(m) if m.contains("no PADO on p0")),
        "{o:?}"
    );
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &c,
            &bin_s,
            "client",
            "p0",
            "--timeout-ms",
            "600",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
}

#[test]
fn dhcp_lease_of_the_failback_proof_is_taken_and_released() {
    // Issue 13: the failback proof of a DHCP primary takes a lease with our own client
    // (DISCOVER, OFFER, REQUEST, ACK) and gives it back (RELEASE) when it ends.
    require_root!();
    if connectd::sys::exec::find_in_path("dnsmasq").is_none() {
        eprintln!("skipped: dnsmasq is missing");
        return;
    }
    let mut lab = Lab::new();
    let c = lab.ns("c");
    let p = lab.ns("p");
    lab.veth(&c, "p0", &p, "q0");
    lab.ip(&p, &["addr", "add", "192.0.2.1/24", "dev", "q0"]);
    let pid = lab.tmp().join("dnsmasq.pid").display().to_string();
    let leases = lab.tmp().join("leases");
    lab.spawn(
        &p,
        &[
            "dnsmasq",
            "--no-daemon",
            "--conf-file=/dev/null",
            &format!("--pid-file={pid}"),
            "--port=0",
            "--dhcp-range=192.0.2.50,192.0.2.60,255.255.255.0,1h",
            "--dhcp-option=3,192.0.2.1",
            "--interface=q0",
            "--bind-interfaces",
            &format!("--dhcp-leasefile={}", leases.display()),
        ],
        "dhcp.log",
    );
    let l = lab.inside(&c, move || {
        connectd::uplink::pretest::dhcp::lease("p0", Duration::from_secs(8))
    });
    let l = l.unwrap_or_else(|e| {
        panic!(
            "{e}; dnsmasq said: {:?}",
            std::fs::read_to_string(lab.tmp().join("dhcp.log"))
        )
    });
    assert_eq!(l.router, std::net::Ipv4Addr::new(192, 0, 2, 1));
    assert_eq!(l.server, std::net::Ipv4Addr::new(192, 0, 2, 1));
    assert_eq!(l.netmask, Some(std::net::Ipv4Addr::new(255, 255, 255, 0)));
    assert_eq!(l.lease_secs, Some(3600));
    let addr = l.address.to_string();
    assert!(addr.starts_with("192.0.2."), "{addr}");
    let committed = || std::fs::read_to_string(&leases).unwrap_or_default();
    assert!(
        committed().contains(&addr),
        "the server committed it: {}",
        committed()
    );
    // Nothing configured by the lease itself.
    let addrs = output(&["ip", "-n", &c, "-4", "addr", "show", "dev", "p0"]);
    assert!(!addrs.contains("inet "), "{addrs}");
    let l2 = l.clone();
    lab.inside(&c, move || {
        connectd::uplink::pretest::dhcp::release("p0", &l2)
    })
    .unwrap();
    let end = SystemClock.now() + Duration::from_secs(3);
    while committed().contains(&addr) && SystemClock.now() < end {
        SystemClock.sleep(Duration::from_millis(50));
    }
    assert!(!committed().contains(&addr), "released: {}", committed());
}

#[test]
fn dhcp_pretest_gets_an_offer_and_leaves_nothing_behind() {
    require_root!();
    if connectd::sys::exec::find_in_path("dnsmasq").is_none() {
        eprintln!("skipped: dnsmasq is missing");
        return;
    }
    let mut lab = Lab::new();
    let c = lab.ns("c");
    let p = lab.ns("p");
    lab.veth(&c, "p0", &p, "q0");
    lab.ip(&p, &["addr", "add", "192.0.2.1/24", "dev", "q0"]);
    let pid = lab.tmp().join("dnsmasq.pid").display().to_string();
    lab.spawn(
        &p,
        &[
            "dnsmasq",
            "--no-daemon",
            "--conf-file=/dev/null",
            &format!("--pid-file={pid}"),
            "--port=0",
            "--dhcp-range=192.0.2.50,192.0.2.60,255.255.255.0,1h",
            "--dhcp-option=3,192.0.2.1",
            "--interface=q0",
            "--bind-interfaces",
            "--leasefile-ro",
        ],
        "dhcp.log",
    );
    let before = output(&["ip", "-n", &c, "-4", "route", "show", "table", "all"]);
    let started = SystemClock.now();
    let o = lab.inside(&c, move || {
        let mut t = RealPreTester::new(Box::new(connectd::sys::exec::ProcessRunner), &host());
        t.dhcp_timeout = Duration::from_secs(8);
        t.pretest(&profile("TYPE=DHCP\n"), "p0", Some("red9"))
    });
    assert!(
        matches!(&o, PretestOutcome::Passed(m) if m.contains("router 192.0.2.1")),
        "{o:?} after {:?}; dnsmasq said: {:?}",
        started.elapsed(),
        std::fs::read_to_string(lab.tmp().join("dhcp.log"))
    );
    // Nothing configured, nothing running in the client's namespace.
    let addrs = output(&["ip", "-n", &c, "-4", "addr", "show", "dev", "p0"]);
    assert!(!addrs.contains("inet "), "{addrs}");
    assert_eq!(
        output(&["ip", "-n", &c, "-4", "route", "show", "table", "all"]),
        before
    );
    assert_eq!(output(&["ip", "netns", "pids", &c]).trim(), "");

    // No server: no offer.
    let o = lab.inside(&p, move || {
        let mut t = RealPreTester::new(Box::new(connectd::sys::exec::ProcessRunner), &host());
        t.dhcp_timeout = Duration::from_millis(700);
        t.pretest(&profile("TYPE=DHCP\n"), "q0", None)
    });
    assert!(
        matches!(&o, PretestOutcome::Failed(m) if m.contains("no DHCP offer on q0")),
        "{o:?}"
    );
}

#[test]
fn arp_pretest_needs_the_gateway_on_the_line() {
    require_root!();
    let mut lab = Lab::new();
    let c = lab.ns("c");
    let p = lab.ns("p");
    lab.veth(&c, "p0", &p, "q0");
    lab.ip(&p, &["addr", "add", "192.0.2.1/24", "dev", "q0"]);
    let test = |lab: &Lab, gw: &'static str| {
        let text = format!("TYPE=STATIC\nIP=192.0.2.10\nNETMASK=255.255.255.0\nGATEWAY={gw}\n");
        lab.inside(&c, move || {
            let mut t = RealPreTester::new(Box::new(connectd::sys::exec::ProcessRunner), &host());
            t.arp_timeout = Duration::from_millis(700);
            t.pretest(&profile(&text), "p0", None)
        })
    };
    let o = test(&lab, "192.0.2.1");
    assert!(
        matches!(&o, PretestOutcome::Passed(m) if m.contains("192.0.2.1")),
        "{o:?}"
    );
    let o = test(&lab, "192.0.2.99");
    assert!(
        matches!(&o, PretestOutcome::Failed(m) if m.contains("no ARP reply")),
        "{o:?}"
    );
}

#[test]
fn connectd_check_probes_the_red_interface_and_prints_the_health_object() {
    require_root!();
    let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/debug/connectd");
    if !bin.is_file() {
        eprintln!("skipped: target/debug/connectd not built");
        return;
    }
    let mut lab = Lab::new();
    let (c, _p) = two_hosts(&mut lab);
    let root = lab.tmp().join("root");
    for d in ["var/ipfire/red", "var/ipfire/connectd", "var/run"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::write(root.join("var/ipfire/red/iface"), "a0").unwrap();
    std::fs::write(root.join("var/ipfire/red/remote-ipaddress"), "198.51.100.1").unwrap();
    std::fs::write(
        root.join("var/ipfire/connectd/settings"),
        "FAILOVER_CHECK_HOST=203.0.113.1,203.0.113.77\nFAILOVER_CHECK_DNS=off\nFAILOVER_CHECK_TIMEOUT=0.3\n",
    )
    .unwrap();
    let check = |json: bool| {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &c])
            .arg(&bin)
            .arg("--root")
            .arg(&root)
            .arg("check");
        if json {
            cmd.arg("--json");
        }
        cmd.output().unwrap()
    };
    let out = check(false);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        text.contains("203.0.113.1") && text.contains(" ms"),
        "{text}"
    );
    assert!(
        text.contains("203.0.113.77") && text.contains("no reply"),
        "{text}"
    );
    assert!(text.contains("gateway 198.51.100.1"), "{text}");
    assert!(text.contains("verdict: healthy"), "{text}");
    let out = check(true);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["healthy"], true);
    assert_eq!(v["targets"][0]["host"], "203.0.113.1");
    assert!(v["targets"][0]["rtt_ms"].is_number());
    assert!(v["targets"][1]["rtt_ms"].is_null());
    assert_eq!(v["gateway"]["host"], "198.51.100.1");
    // All targets silent: exit 1.
    std::fs::write(
        root.join("var/ipfire/connectd/settings"),
        "FAILOVER_CHECK_HOST=203.0.113.77\nFAILOVER_CHECK_DNS=off\nFAILOVER_CHECK_TIMEOUT=0.3\n",
    )
    .unwrap();
    let out = check(false);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("NOT healthy"));
}

/// dnsmasq in `ns` with our common options plus `extra`, logging to `log`.
fn dnsmasq(lab: &mut Lab, ns: &str, log: &str, extra: &[&str]) {
    let pid = lab.tmp().join(format!("{log}.pid")).display().to_string();
    let mut argv = vec![
        "dnsmasq",
        "--no-daemon",
        "--conf-file=/dev/null",
        "--bind-interfaces",
        "--no-resolv",
        "--no-hosts",
        "--user=root",
        "--group=root",
    ];
    let pid = format!("--pid-file={pid}");
    argv.push(&pid);
    argv.extend_from_slice(extra);
    lab.spawn(ns, &argv, log);
}

/// A plain recursive query for `name` (type A) to `server`, the way a LAN client asks;
/// the response, if one came within 500 ms.
fn ask(server: Ipv4Addr, name: &str) -> Option<Vec<u8>> {
    let mut q = vec![0x4c, 0x61, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for l in name.split('.') {
        q.push(l.len() as u8);
        q.extend_from_slice(l.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    let s = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    s.send_to(&q, (server, 53)).unwrap();
    let mut buf = [0u8; 1500];
    let (n, _) = s.recv_from(&mut buf).ok()?;
    Some(buf[..n].to_vec())
}

/// The lab root of `connectd check` on interface a0, with `dns1` and `settings`.
fn check_root(lab: &Lab, dns1: &str, settings: &str) -> PathBuf {
    let root = lab.tmp().join("root");
    for d in ["var/ipfire/red", "var/ipfire/connectd", "var/run"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::write(root.join("var/ipfire/red/iface"), "a0").unwrap();
    std::fs::write(root.join("var/ipfire/red/remote-ipaddress"), "198.51.100.1").unwrap();
    std::fs::write(root.join("var/run/dns1"), dns1).unwrap();
    std::fs::write(root.join("var/ipfire/connectd/settings"), settings).unwrap();
    root
}

/// `connectd --root ROOT check --json` inside `ns`: exit code and the health object.
fn check_json(bin: &Path, ns: &str, root: &Path) -> (Option<i32>, serde_json::Value) {
    let out = Command::new("ip")
        .args(["netns", "exec", ns])
        .arg(bin)
        .arg("--root")
        .arg(root)
        .args(["check", "--json"])
        .output()
        .unwrap();
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    (out.status.code(), v)
}

/// Issue 13, the story as found: with the default DNS settings (FAILOVER_CHECK_DNS on,
/// ipfire.org, RELIABILITY 1) the ISP's upstream dies; its resolver keeps answering
/// `ipfire.org` from its warm cache; every ICMP target is silent. `connectd check` must say
/// unhealthy (it said `healthy (1 of 2 targets answered)`).
#[test]
fn a_resolver_answering_from_its_warm_cache_does_not_keep_a_dead_uplink_healthy() {
    require_root!();
    let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/debug/connectd");
    if !bin.is_file() {
        eprintln!("skipped: target/debug/connectd not built");
        return;
    }
    if connectd::sys::exec::find_in_path("dnsmasq").is_none()
        || connectd::sys::exec::find_in_path("nft").is_none()
    {
        eprintln!("skipped: dnsmasq or nft is missing");
        return;
    }
    let mut lab = Lab::new();
    // p is the ISP: gateway and resolver at 198.51.100.1; "the internet" behind it is
    // 203.0.113.1 (the ICMP target) and 203.0.113.53 (ipfire.org's authority).
    let (c, p) = two_hosts(&mut lab);
    lab.ip(&p, &["addr", "add", "203.0.113.53/32", "dev", "lo"]);
    dnsmasq(
        &mut lab,
        &p,
        "auth.log",
        &[
            "--listen-address=203.0.113.53",
            "--auth-server=ns.ipfire.org,203.0.113.53",
            "--auth-zone=ipfire.org",
            "--auth-soa=1,hostmaster.ipfire.org",
            "--host-record=ipfire.org,203.0.113.80",
        ],
    );
    dnsmasq(
        &mut lab,
        &p,
        "resolver.log",
        &["--listen-address=198.51.100.1", "--server=203.0.113.53"],
    );
    let resolver = Ipv4Addr::new(198, 51, 100, 1);
    // The defaults but for the target (a documentation address) and a short timeout.
    const MIXED: &str = "FAILOVER_CHECK_HOST=203.0.113.1\nFAILOVER_CHECK_TIMEOUT=0.5\n";
    // DNS alone: it votes, so only the random name's denial by the authority carries it.
    const DNS_ONLY: &str = "FAILOVER_CHECK_HOST=\nFAILOVER_CHECK_TIMEOUT=0.5\n";
    let root = check_root(&lab, "198.51.100.1", MIXED);
    let settings = root.join("var/ipfire/connectd/settings");

    // Upstream alive: a LAN client's query warms the resolver's cache, and the round
    // passes with both targets, the DNS one on a random name the authority denied.
    let warm = lab.inside(&c, move || {
        (0..20).find_map(|_| {
            let r = ask(resolver, "ipfire.org");
            if r.is_none() {
                SystemClock.sleep(Duration::from_millis(100));
            }
            r
        })
    });
    let warm = warm.expect("the resolver never answered");
    assert_eq!(warm[3] & 0x0f, 0, "NOERROR for ipfire.org: {warm:?}");
    let (code, v) = check_json(&bin, &c, &root);
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["healthy"], true, "{v}");
    assert_eq!(v["targets"][1]["host"], "dns:198.51.100.1", "{v}");
    assert!(v["targets"][1]["rtt_ms"].is_number(), "DNS passed: {v}");
    std::fs::write(&settings, DNS_ONLY).unwrap();
    let (code, v) = check_json(&bin, &c, &root);
    assert_eq!((code, &v["healthy"]), (Some(0), &true.into()), "{v}");
    assert_eq!(v["targets"][0]["host"], "dns:198.51.100.1", "{v}");
    std::fs::write(&settings, MIXED).unwrap();

    // The ISP's upstream dies: nothing beyond p answers, p itself (and its resolver) does.
    lab.exec(&p, &["nft", "add table ip cdh"]);
    lab.exec(
        &p,
        &[
            "nft",
            "add chain ip cdh input { type filter hook input priority 0 ; }",
        ],
    );
    lab.exec(
        &p,
        &["nft", "add rule ip cdh input ip daddr 203.0.113.0/24 drop"],
    );
    // The resolver still answers ipfire.org, from its cache: the story of the issue.
    let cached = lab.inside(&c, move || ask(resolver, "ipfire.org"));
    let cached = cached.expect("the resolver answers from its cache");
    assert_eq!(cached[3] & 0x0f, 0, "{cached:?}");
    assert_eq!(u16::from_be_bytes([cached[6], cached[7]]), 1, "one answer");

    let (code, v) = check_json(&bin, &c, &root);
    assert_eq!(code, Some(1), "a dead uplink is not healthy: {v}");
    assert_eq!(v["healthy"], false, "{v}");
    assert!(v["targets"][0]["rtt_ms"].is_null(), "{v}");
    assert!(
        v["targets"][1]["rtt_ms"].is_null(),
        "a random name cannot come from the cache: {v}"
    );
    assert_eq!(v["gateway"]["host"], "198.51.100.1");
    assert!(
        v["gateway"]["rtt_ms"].is_number(),
        "the gateway answers: {v}"
    );
    // DNS alone cannot be fooled by the cache either.
    std::fs::write(&settings, DNS_ONLY).unwrap();
    let (code, v) = check_json(&bin, &c, &root);
    assert_eq!((code, &v["healthy"]), (Some(1), &false.into()), "{v}");
    assert!(v["targets"][0]["rtt_ms"].is_null(), "{v}");
}

/// A DNS-hijacking captive portal answers every name, random ones too, with its own address:
/// the DNS target fails and says why.
#[test]
fn a_hijacking_resolver_does_not_pass_the_dns_target() {
    require_root!();
    if connectd::sys::exec::find_in_path("dnsmasq").is_none() {
        eprintln!("skipped: dnsmasq is missing");
        return;
    }
    let mut lab = Lab::new();
    let (c, p) = two_hosts(&mut lab);
    dnsmasq(
        &mut lab,
        &p,
        "portal.log",
        &["--listen-address=198.51.100.1", "--address=/#/198.51.100.1"],
    );
    let resolver = Ipv4Addr::new(198, 51, 100, 1);
    let targets = vec![target(
        "dns",
        Probe::Dns(vec![resolver], "ipfire.org".into()),
    )];
    let r = lab.inside(&c, move || {
        let mut prober = RealProber::new(&host());
        let mut r = Vec::new();
        for _ in 0..20 {
            r = prober.round("a0", &targets, Duration::from_millis(300));
            // Until dnsmasq listens: "no reply".
            if r[0]
                .error
                .as_deref()
                .is_some_and(|e| !e.contains("no reply"))
            {
                break;
            }
        }
        r
    });
    assert!(!r[0].answered(), "{:?}", r[0]);
    let e = r[0].error.as_deref().unwrap();
    assert!(
        e.contains("198.51.100.1: a random name was answered with address 198.51.100.1"),
        "{e}"
    );
}
