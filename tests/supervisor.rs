//! The real `connectd` binary against a temporary IPFire root with a fake network script:
//! one supervisor per root, status, manual failover/failback through the control socket,
//! and recovery after a crash at every step of a switch.
//!
//! The fake network script brings "RED" up on `lo` and the probe target is 127.0.0.1, so
//! the real prober sees a healthy uplink. Raw ICMP sockets need root: these tests skip
//! (saying so) when not run as root; CI runs them as root.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns: a failed setup is a failed test

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::util::supervised::{BIN, Box_, alive, skip, start, supervisors};

#[test]
fn start_returns_at_once_and_ten_concurrent_starts_give_one_supervisor() {
    if skip() {
        return;
    }
    let b = Box_::new();
    let t0 = Instant::now();
    start(&b);
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "start took {:?}",
        t0.elapsed()
    );
    let handles: Vec<_> = (0..10)
        .map(|_| {
            let root: PathBuf = b.t.root().to_path_buf();
            std::thread::spawn(move || {
                Command::new(BIN)
                    .arg("--root")
                    .arg(root)
                    .arg("start")
                    .output()
                    .unwrap()
            })
        })
        .collect();
    for h in handles {
        let o = h.join().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    std::thread::sleep(Duration::from_millis(300));
    let sups = supervisors(b.t.root());
    assert_eq!(sups.len(), 1, "supervisors: {sups:?}");
    assert_eq!(b.pid(), Some(sups[0]));
}

#[test]
fn status_json_has_the_documented_fields() {
    if skip() {
        return;
    }
    let b = Box_::new();
    start(&b);
    b.wait_for("a healthy verdict", |b| {
        b.status()["health"]["healthy"] == true
    });
    let s = b.status();
    for key in [
        "state",
        "active_profile",
        "primary_profile",
        "auto",
        "switch_count",
        "last_switch",
        "red",
        "health",
    ] {
        assert!(s.get(key).is_some(), "missing {key}: {s}");
    }
    for key in ["iface", "active", "local_ip", "gateway"] {
        assert!(s["red"].get(key).is_some(), "missing red.{key}: {s}");
    }
    assert_eq!(s["active_profile"], "1");
    assert_eq!(s["primary_profile"], "1");
    assert_eq!(s["red"]["iface"], "lo");
    let t = &s["health"]["targets"][0];
    assert_eq!(t["host"], "127.0.0.1");
    assert!(t["rtt_ms"].as_f64().is_some(), "{s}");
    assert!(t.get("loss_pct").is_some());
}

#[test]
fn manual_failover_and_failback_switch_the_files() {
    if skip() {
        return;
    }
    let b = Box_::new();
    let eth_before = b.t.read("var/ipfire/ethernet/settings");
    let primary_before = b.t.read("var/ipfire/ppp/settings-1");
    start(&b);
    let o = b.connectd(&["failover", "2"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    b.wait_for("settings -> settings-2", |b| b.settings_is("2"));
    b.wait_for("online on 2", |b| {
        let s = b.status();
        s["state"] == "online" && s["active_profile"] == "2"
    });
    let s = b.status();
    assert_eq!(s["pinned"], true, "a manual failover pins: {s}");
    assert_eq!(s["switch_count"], 1);
    assert_eq!(
        fs::read_to_string(b.t.path("var/ipfire/red/current-profile")).unwrap(),
        "2"
    );
    let calls = b.t.network_calls();
    assert!(
        calls.ends_with(&["stop red".to_string(), "start red".to_string()]),
        "{calls:?}"
    );

    let o = b.connectd(&["failback", "--force"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    b.wait_for("settings -> settings-1", |b| b.settings_is("1"));
    b.wait_for("online on 1", |b| {
        let s = b.status();
        s["state"] == "online" && s["active_profile"] == "1" && s["pinned"] == false
    });
    assert_eq!(b.t.read("var/ipfire/ethernet/settings"), eth_before);
    assert_eq!(b.t.read("var/ipfire/ppp/settings-1"), primary_before);
    b.assert_consistent();

    // Bad input gets exit 2 and one message; nothing switches.
    let o = b.connectd(&["failover", "../x"]);
    assert_eq!(o.status.code(), Some(2));
    let o = b.connectd(&["failover", "4"]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(b.settings_is("1"));
}

#[test]
fn sigterm_stops_without_redial_and_leaves_the_files_consistent() {
    if skip() {
        return;
    }
    let b = Box_::new();
    start(&b);
    let calls_before = b.t.network_calls().len();
    let o = b.connectd(&["stop"]);
    assert!(o.status.success());
    assert!(b.pid().is_none());
    assert_eq!(
        b.t.network_calls().len(),
        calls_before,
        "no redial, no stop on SIGTERM"
    );
    assert!(!b.t.path("var/run/connectd.sock").exists());
    b.assert_consistent();
}

#[test]
fn a_crash_at_every_step_of_a_switch_is_recovered_by_the_next_start() {
    if skip() {
        return;
    }
    for step in [
        "intent",
        "stopped",
        "ethernet_written",
        "linked",
        "secrets_written",
        "started",
    ] {
        let b = Box_::new();
        let primary_before = b.t.read("var/ipfire/ppp/settings-1");
        let o = b.connectd_env(&["start"], &[("CONNECTD_CRASH_AT", step)]);
        assert!(o.status.success());
        b.wait_for("the supervisor", |b| b.status()["running"] == true);
        let pid = b.pid().unwrap();
        let _ = b.connectd(&["failover", "2"]);
        b.wait_for(&format!("the abort at {step}"), |_| !alive(pid));
        start(&b);
        b.wait_for(&format!("online after the crash at {step}"), |b| {
            b.status()["state"] == "online"
        });
        b.assert_consistent();
        assert_eq!(
            b.t.read("var/ipfire/ppp/settings-1"),
            primary_before,
            "primary changed after a crash at {step}"
        );
    }
}

#[test]
fn kill_9_during_a_switch_then_start_recovers() {
    if skip() {
        return;
    }
    let b = Box_::new();
    start(&b);
    fs::write(b.t.root().parent().unwrap().join("slow-start"), "").unwrap();
    let pid = b.pid().unwrap();
    let root = b.t.root().to_path_buf();
    let caller = std::thread::spawn(move || {
        Command::new(BIN)
            .arg("--root")
            .arg(root)
            .args(["failover", "2"])
            .output()
            .unwrap()
    });
    // The slow `start red` runs after every file was switched.
    b.wait_for("the switch to reach start red", |b| {
        b.t.network_calls().last().map(String::as_str) == Some("start red")
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let _ = caller.join();
    // SIGKILL is delivered asynchronously: until the process is gone it holds the lock, and
    // a `start` then would find "connectd is already running".
    // Its main thread may be a zombie while its other threads (a switch's network call,
    // the stop-watch) are still exiting and hold the lock with the shared descriptors:
    // gone is when the lock is free.
    b.wait_for("the killed supervisor to be gone", |b| {
        !alive(pid) && {
            let f = fs::File::open(b.t.path("var/run/connectd.pid")).unwrap();
            nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock).is_ok()
        }
    });
    fs::remove_file(b.t.root().parent().unwrap().join("slow-start")).unwrap();
    start(&b);
    b.wait_for("online after kill -9", |b| b.status()["state"] == "online");
    b.assert_consistent();
}

#[test]
fn start_from_the_network_script_blocks_until_red_is_up_and_leaves_the_supervisor_running() {
    // Issue 12 item 6: IPFire's `network start red` waits on `connectd start`
    // (networking/red:484, system/connectd:45-75): later boot scripts start once the line
    // is up. Our own callers (CONNECTD_CALLER) never wait.
    if skip() {
        return;
    }
    let b = Box_::new();
    fs::remove_file(b.t.path("var/ipfire/red/active")).unwrap();
    b.t.write(
        "etc/rc.d/init.d/networking/red",
        format!(
            "#!/bin/bash\n\"{BIN}\" --root \"{}\" start\n",
            b.t.root().display()
        ),
    );
    let mut red = Command::new("/bin/bash")
        .arg(b.t.path("etc/rc.d/init.d/networking/red"))
        .arg("start")
        .env_remove("CONNECTD_CALLER")
        .spawn()
        .unwrap();
    b.wait_for("the supervisor", |b| b.pid().is_some());
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        red.try_wait().unwrap().is_none(),
        "connectd start returned before RED was up"
    );
    assert!(b.t.path("var/ipfire/red/keepconnected").exists());
    let up = Instant::now();
    b.t.write("var/ipfire/red/active", "");
    let st = red.wait().unwrap();
    assert!(st.success());
    assert!(up.elapsed() < Duration::from_secs(5), "{:?}", up.elapsed());
    let pid = b.pid().expect("the supervisor runs on in the background");
    assert!(alive(pid));
    // From our own red.up hook: at once.
    let t0 = Instant::now();
    fs::remove_file(b.t.path("var/ipfire/red/active")).unwrap();
    let o = b.connectd_env(&["start"], &[("CONNECTD_CALLER", "red.up")]);
    assert!(o.status.success());
    assert!(t0.elapsed() < Duration::from_secs(2));
}

#[test]
fn the_supervisor_keeps_none_of_its_callers_descriptors() {
    // Issue 12 item 9, `redctrl restart` on DHCP/QMI: `connectd start` runs under our
    // red.up hook, a child of dhcpcd's hook script; the supervisor it forks kept every
    // descriptor of that chain, among them the lab's one-dhcpcd-per-interface lock (as a
    // caller's lock or pipe may be on a box), so the restart's new dhcpcd was refused
    // while the old supervisor was still on its way out, and RED stayed down.
    if skip() {
        return;
    }
    let b = Box_::new();
    let lock = b.t.path("caller.lock");
    b.t.write(
        "caller",
        format!(
            "#!/bin/bash\nexec 9>>\"{}\"\nflock -n 9 || exit 3\n\"{BIN}\" --root \"{}\" start\n",
            lock.display(),
            b.t.root().display()
        ),
    );
    let st = Command::new("/bin/bash")
        .arg(b.t.path("caller"))
        .env("CONNECTD_CALLER", "red.up")
        .status()
        .unwrap();
    assert!(st.success(), "{st:?}");
    let pid = b.pid().expect("the supervisor runs");
    let held: Vec<PathBuf> = fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter_map(|e| fs::read_link(e.path()).ok())
        .filter(|t| *t == lock)
        .collect();
    assert!(held.is_empty(), "the supervisor holds its caller's lock");
    let free = Command::new("flock")
        .args(["-n"])
        .arg(&lock)
        .arg("true")
        .status()
        .unwrap();
    assert!(free.success(), "the caller's lock is still held");
}
