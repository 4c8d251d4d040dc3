//! Integration tests: profiles, activation and `manage-wan-profiles` (DESIGN.md 2, 7, 9),
//! against a copy of `../shared/fixtures/ipfire-box` and against roots built here, with a
//! fake `network` script that records what it saw.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns: a failed setup is a failed test

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Output};
use std::time::Duration;

use connectd::ipfire::ethernet::{self, RedValues};
use connectd::ipfire::policy::Policy;
use connectd::ipfire::profile::{self, ProfileName};
use connectd::sys::clock::{Clock, SystemClock};
use connectd::sys::exec::{CmdOutcome, CommandSpec, ProcessRunner, Runner};
use connectd::uplink::switch::{self, Step, SwitchOptions};

use crate::util::{TestRoot, pppd_words};

fn name(n: &str) -> ProfileName {
    ProfileName::new(n).unwrap()
}

fn opts(t: &TestRoot) -> SwitchOptions {
    SwitchOptions {
        network_timeout: Duration::from_secs(10),
        stop_wait: Duration::from_millis(300),
        proc_root: Some(t.proc_root()),
    }
}

fn policy(t: &TestRoot) -> Policy {
    Policy::load(&t.paths(), Some("1")).unwrap().0
}

/// Both kinds of root: the shared fixture (when present) and one built here.
fn roots() -> Vec<(&'static str, TestRoot)> {
    let mut v = vec![("synthetic", TestRoot::synthetic())];
    match TestRoot::from_fixture() {
        Some(t) => v.push(("fixture", t)),
        None => eprintln!("skipped fixture root: ../shared/fixtures not present"),
    }
    v
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn stderr_line(o: &Output) -> String {
    let e = text(&o.stderr);
    assert_eq!(
        e.lines().count(),
        1,
        "expected one line on stderr, got {e:?}"
    );
    assert!(e.starts_with("manage-wan-profiles: "), "{e:?}");
    e
}

/// Lines of `ethernet/settings` that are not RED_* keys a switch may change.
fn non_red_lines(s: &str) -> Vec<String> {
    s.lines()
        .filter(|l| {
            !ethernet::RED_KEYS
                .iter()
                .any(|k| l.starts_with(&format!("{k}=")))
        })
        .map(String::from)
        .collect()
}

fn add_cable(t: &TestRoot) {
    let o = t.mwp(
        &["create", "cable", "--type", "DHCP", "--device", "red1"],
        "",
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
}

fn add_fibre(t: &TestRoot) {
    let o = t.mwp(
        &[
            "create",
            "fibre",
            "--type",
            "STATIC",
            "--device",
            "red2",
            "--ip",
            "203.0.113.10",
            "--netmask",
            "255.255.255.0",
            "--gateway",
            "203.0.113.1",
            "--dns1",
            "203.0.113.53",
        ],
        "",
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
}

#[test]
fn activate_relinks_settings_and_keeps_every_other_byte() {
    for (kind, t) in roots() {
        add_cable(&t);
        let before = t.snapshot();
        let eth_before = text(&t.read("var/ipfire/ethernet/settings"));
        let ino1 = t.inode("var/ipfire/ppp/settings-1");
        assert_eq!(t.inode("var/ipfire/ppp/settings"), ino1, "{kind}");

        let o = t.mwp(&["activate", "cable"], "");
        assert!(o.status.success(), "{kind}: {}", text(&o.stderr));
        assert!(text(&o.stdout).contains("RED is up on red1"), "{kind}");

        // settings has the inode of the target.
        let ino_cable = t.inode("var/ipfire/ppp/settings-cable");
        assert_eq!(t.inode("var/ipfire/ppp/settings"), ino_cable, "{kind}");
        // Every profile is byte-identical, with its inode.
        let after = t.snapshot();
        for (p, v) in &before {
            let s = p.to_string_lossy();
            if s.contains("ppp/settings-") {
                assert_eq!(after.get(p), Some(v), "{kind}: {s} changed");
            }
        }
        // ethernet/settings: RED_TYPE/RED_DEV switched, every other line identical.
        let eth = text(&t.read("var/ipfire/ethernet/settings"));
        assert_eq!(non_red_lines(&eth), non_red_lines(&eth_before), "{kind}");
        assert_eq!(eth.lines().count(), eth_before.lines().count());
        assert!(eth.contains("\nRED_TYPE=DHCP\n") && eth.contains("\nRED_DEV=red1\n"));
        assert!(
            eth.contains("\nRED_ADDRESS=198.51.100.77\n"),
            "leftovers stay"
        );
        // secrets: left as it was for an ethernet type, still 0600.
        assert_eq!(
            after[std::path::Path::new("var/ipfire/ppp/secrets")].0,
            before[std::path::Path::new("var/ipfire/ppp/secrets")].0
        );
        // stop red saw the OLD files, start red the new ones.
        assert_eq!(
            t.network_calls(),
            vec![
                format!("stop red inode={ino1} red_type=PPPOE"),
                format!("start red inode={ino_cable} red_type=DHCP"),
            ],
            "{kind}"
        );

        // Back to the WUI profile 1: dial secrets written, 0600, right credentials.
        let o = t.mwp(&["activate", "1"], "");
        assert!(o.status.success(), "{kind}: {}", text(&o.stderr));
        assert_eq!(t.inode("var/ipfire/ppp/settings"), ino1);
        let sec = t.path("var/ipfire/ppp/secrets");
        assert_eq!(
            fs::metadata(&sec).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            pppd_words(&fs::read_to_string(&sec).unwrap()),
            ["0012345678901234567890#0001@t-online.de", "*", "Xy7-qP2@z"]
        );
        assert_eq!(
            fs::read_to_string(&sec).unwrap(),
            "'0012345678901234567890#0001@t-online.de' * 'Xy7-qP2@z'\n",
            "the WUI's own format when it can carry the words"
        );
    }
}

#[test]
fn qmi_backup_gets_its_device_from_the_policy() {
    for (kind, t) in roots() {
        let o = t.mwp(&["activate", "2"], "");
        assert!(o.status.success(), "{kind}: {}", text(&o.stderr));
        let eth = text(&t.read("var/ipfire/ethernet/settings"));
        assert!(eth.contains("\nRED_DEV=wwan0\n"), "DEVICE_2 wins: {eth}");
        assert!(eth.contains("\nRED_TYPE=PPPOE\n"));
        assert_eq!(
            text(&t.read("var/ipfire/ppp/secrets")),
            "'telekom' * 'tm'\n"
        );
        let o = t.mwp(&["status"], "");
        let out = text(&o.stdout);
        assert!(out.contains("active profile: 2 (LTE stick)"), "{out}");
        assert!(
            out.contains("RED_DEV=wwan0") && out.contains("red/iface: wwan0"),
            "{out}"
        );
    }
}

#[test]
fn password_with_quotes_backslash_hash_and_spaces_reaches_pppd_intact() {
    let t = TestRoot::synthetic();
    let pw = "a'b\"c\\d #e f";
    let o = t.mwp(
        &[
            "create",
            "dsl2",
            "--type",
            "pppoe",
            "--device",
            "red1",
            "--username",
            "user@isp.example",
            "--password-stdin",
        ],
        &format!("{pw}\n"),
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    // The profile cannot carry it (readhash): it stays out of the profile...
    let prof = text(&t.read("var/ipfire/ppp/settings-dsl2"));
    assert!(!prof.contains("PASSWORD"), "{prof}");
    assert!(
        connectd::ipfire::readhash::Document::parse(&prof)
            .shell_dropped()
            .is_empty()
    );
    // ...and in a 0600 file of ours.
    let side = t.path("var/ipfire/connectd/secret-dsl2");
    assert_eq!(fs::read_to_string(&side).unwrap(), pw);
    assert_eq!(
        fs::metadata(&side).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // show masks it and says where it is.
    let out = text(&t.mwp(&["show", "dsl2"], "").stdout);
    assert!(
        !out.contains("#e f") && out.contains("secret-dsl2"),
        "{out}"
    );

    let o = t.mwp(&["activate", "dsl2"], "");
    assert!(o.status.success(), "{}", text(&o.stderr));
    let sec = t.path("var/ipfire/ppp/secrets");
    assert_eq!(
        fs::metadata(&sec).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let line = fs::read_to_string(&sec).unwrap();
    assert_eq!(pppd_words(&line), ["user@isp.example", "*", pw], "{line}");

    // A password the readhash can carry (space, #) stays in the profile, like the WUI's.
    let pw2 = "x #y z";
    let o = t.mwp(
        &[
            "create",
            "dsl3",
            "--type",
            "vdsl",
            "--device",
            "red1",
            "--username",
            "u",
            "--password-stdin",
        ],
        pw2,
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&t.read("var/ipfire/ppp/settings-dsl3")).contains("PASSWORD='x #y z'\n"));
    assert!(t.mwp(&["activate", "dsl3"], "").status.success());
    let line = fs::read_to_string(&sec).unwrap();
    assert_eq!(line, "'u' * 'x #y z'\n");
    assert_eq!(pppd_words(&line), ["u", "*", pw2]);
}

#[test]
fn dial_profile_without_username_leaves_an_empty_secrets_file() {
    let t = TestRoot::synthetic();
    let o = t.mwp(
        &[
            "create", "lte", "--type", "qmi", "--device", "wwan1", "--apn", "internet",
        ],
        "",
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        t.mwp(&["activate", "lte", "--no-wait"], "")
            .status
            .success()
    );
    assert_eq!(t.read("var/ipfire/ppp/secrets"), b"");
    let sec = t.path("var/ipfire/ppp/secrets");
    assert_eq!(
        fs::metadata(&sec).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[test]
fn static_profile_writes_the_red_addresses_and_restore_brings_back_the_primary() {
    let t = TestRoot::synthetic();
    add_fibre(&t);
    let paths = t.paths();
    let pol = policy(&t);
    let eth0 = t.read("var/ipfire/ethernet/settings");
    let mut steps = Vec::new();
    let report = switch::activate(
        &paths,
        &ProcessRunner,
        &pol,
        &name("fibre"),
        None,
        &opts(&t),
        &mut |s, _| {
            steps.push(s);
            Ok(())
        },
    )
    .unwrap();
    assert_eq!(steps, Step::ALL);
    assert_eq!(report.from, Some(name("1")));
    let eth = text(&t.read("var/ipfire/ethernet/settings"));
    for l in [
        "RED_TYPE=STATIC",
        "RED_DEV=red2",
        "RED_ADDRESS=203.0.113.10",
        "RED_NETMASK=255.255.255.0",
        "RED_NETADDRESS=203.0.113.0",
        "DEFAULT_GATEWAY=203.0.113.1",
        "DNS1=203.0.113.53",
        "DNS2=",
    ] {
        assert!(eth.lines().any(|x| x == l), "{l} missing in {eth}");
    }
    // The saved values survive a trip through JSON (the supervisor's state).
    let saved: RedValues =
        serde_json::from_str(&serde_json::to_string(&report.previous_red).unwrap()).unwrap();
    switch::activate(
        &paths,
        &ProcessRunner,
        &pol,
        &name("1"),
        Some(&saved),
        &opts(&t),
        &mut |_, _| Ok(()),
    )
    .unwrap();
    assert_eq!(
        t.read("var/ipfire/ethernet/settings"),
        eth0,
        "restored exactly"
    );
}

#[test]
fn a_hundred_switches_back_and_forth_leave_the_primary_byte_identical() {
    for (kind, t) in roots() {
        add_cable(&t);
        add_fibre(&t);
        let paths = t.paths();
        let pol = policy(&t);
        let snap = t.snapshot();
        let eth0 = t.read("var/ipfire/ethernet/settings");
        let started = SystemClock.now();
        let mut saved: Option<RedValues> = None;
        for i in 0..100 {
            let to = ["cable", "1", "fibre", "1", "2", "1"][i % 6];
            let restore = if to == "1" { saved.as_ref() } else { None };
            let r = switch::activate(
                &paths,
                &ProcessRunner,
                &pol,
                &name(to),
                restore,
                &opts(&t),
                &mut |_, _| Ok(()),
            )
            .unwrap();
            if r.from == Some(name("1")) {
                saved = Some(r.previous_red);
            }
            assert_eq!(
                t.inode("var/ipfire/ppp/settings"),
                t.inode(&format!("var/ipfire/ppp/settings-{to}"))
            );
        }
        // Activation 100 went to "1" ("1" is every second): the box is as it was.
        let after = t.snapshot();
        for p in [
            "var/ipfire/ppp/settings-1",
            "var/ipfire/ppp/settings-2",
            "var/ipfire/ppp/settings-cable",
            "var/ipfire/ppp/settings-fibre",
        ] {
            assert_eq!(
                after[std::path::Path::new(p)],
                snap[std::path::Path::new(p)],
                "{kind}: {p}"
            );
        }
        assert_eq!(t.read("var/ipfire/ethernet/settings"), eth0, "{kind}");
        assert_eq!(t.network_calls().len(), 200);
        eprintln!(
            "{kind}: 100 activations in {:?} ({:?} each)",
            started.elapsed(),
            started.elapsed() / 100
        );
    }
}

#[test]
fn bad_input_exits_2_with_one_line_and_writes_nothing() {
    let t = TestRoot::synthetic();
    t.write(
        "var/ipfire/ppp/settings-bin",
        b"TYPE=pppoe\n\0\x01\x02binary\n",
    );
    t.write(
        "var/ipfire/ppp/settings-weird",
        "TYPE=carrier-pigeon\nDEVICE=red1\n",
    );
    t.write(
        "var/ipfire/ppp/settings-crlf",
        "TYPE=DHCP\r\nDEVICE=red1\r\n",
    );
    let cases: Vec<(Vec<&str>, &str, &str)> = vec![
        (
            vec!["create", "../x", "--type", "DHCP", "--device", "red1"],
            "",
            "NAME",
        ),
        (
            vec!["create", "", "--type", "DHCP", "--device", "red1"],
            "",
            "NAME",
        ),
        (
            vec!["create", "a b", "--type", "DHCP", "--device", "red1"],
            "",
            "NAME",
        ),
        (
            vec![
                "create",
                "x",
                "--type",
                "carrier-pigeon",
                "--device",
                "red1",
            ],
            "",
            "carrier-pigeon",
        ),
        (vec!["create", "x", "--type", "DHCP"], "", "DEVICE"),
        (
            vec!["create", "x", "--type", "DHCP", "--device", "red/1"],
            "",
            "DEVICE",
        ),
        (
            vec![
                "create",
                "x",
                "--type",
                "pppoe",
                "--device",
                "red1",
                "--username",
                "a$b",
            ],
            "",
            "USERNAME",
        ),
        (
            vec![
                "create", "x", "--type", "qmi", "--device", "wwan0", "--apn", "x;reboot",
            ],
            "",
            "APN",
        ),
        (
            vec![
                "create",
                "x",
                "--type",
                "STATIC",
                "--device",
                "red1",
                "--ip",
                "203.0.113.5",
                "--netmask",
                "255.255.255.0",
            ],
            "",
            "GATEWAY",
        ),
        (
            vec![
                "create",
                "x",
                "--type",
                "STATIC",
                "--device",
                "red1",
                "--ip",
                "203.0.113.5",
                "--netmask",
                "255.0.255.0",
                "--gateway",
                "203.0.113.1",
            ],
            "",
            "NETMASK",
        ),
        (
            vec![
                "create",
                "x",
                "--type",
                "STATIC",
                "--device",
                "red1",
                "--ip",
                "203.0.113.500",
            ],
            "",
            "--ip",
        ),
        (
            vec![
                "create",
                "x",
                "--type",
                "pppoe",
                "--device",
                "red1",
                "--username",
                "u",
                "--password-stdin",
            ],
            "a\u{1}b",
            "PASSWORD",
        ),
        (
            vec!["create", "1", "--type", "DHCP", "--device", "red1"],
            "",
            "already exists",
        ),
        (vec!["create", "x", "--bogus"], "", "--bogus"),
        (vec!["activate", "../x"], "", "NAME"),
        (vec!["activate", ""], "", "NAME"),
        (vec!["activate", "nosuch"], "", "nosuch"),
        (vec!["activate", "3"], "", "empty"),
        (vec!["activate", "bin"], "", "NUL"),
        (vec!["activate", "weird"], "", "carrier-pigeon"),
        (vec!["show", "bin"], "", "settings-bin"),
        (vec!["test", "weird"], "", "TYPE"),
        (vec!["delete", "1"], "", "active"),
        (vec!["delete", "nosuch"], "", "nosuch"),
    ];
    for (args, stdin, want) in cases {
        let before = t.snapshot();
        let o = t.mwp(&args, stdin);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o.stderr));
        let e = stderr_line(&o);
        assert!(e.contains(want), "{args:?}: {e:?} does not name {want:?}");
        assert_eq!(t.snapshot(), before, "{args:?} wrote something");
        assert!(
            t.network_calls().is_empty(),
            "{args:?} ran the network script"
        );
    }
    // A missing root.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_manage-wan-profiles"));
    cmd.args(["--root", "/nonexistent/connectd-test-root", "list"]);
    let o = crate::util::run_with_stdin(cmd, "");
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr_line(&o).contains("--root"));
    assert!(!std::path::Path::new("/nonexistent/connectd-test-root").exists());
    // The CRLF profile is usable by us, but `show` warns that IPFire's shell ignores it.
    let out = text(&t.mwp(&["show", "crlf"], "").stdout);
    assert!(out.contains("warning") && out.contains("CR"), "{out}");
}

#[test]
fn a_hand_made_settings_is_saved_as_settings_primary() {
    let t = TestRoot::synthetic();
    let ppp = t.path("var/ipfire/ppp");
    fs::remove_file(ppp.join("settings")).unwrap();
    let hand = "TYPE=pppoe\nUSERNAME=me\nPASSWORD=pw\n# by hand\n";
    t.write("var/ipfire/ppp/settings", hand);
    let o = t.mwp(&["status"], "");
    assert!(text(&o.stdout).contains("hand-made"), "{}", text(&o.stdout));
    let o = t.mwp(&["activate", "2"], "");
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("(was primary)"),
        "{}",
        text(&o.stdout)
    );
    assert_eq!(text(&t.read("var/ipfire/ppp/settings-primary")), hand);
    assert_eq!(
        t.inode("var/ipfire/ppp/settings"),
        t.inode("var/ipfire/ppp/settings-2")
    );
    // It is a profile now: back to it, then nothing new is saved.
    assert!(t.mwp(&["activate", "primary"], "").status.success());
    assert_eq!(
        t.inode("var/ipfire/ppp/settings"),
        t.inode("var/ipfire/ppp/settings-primary")
    );
    assert!(!t.path("var/ipfire/ppp/settings-primary-2").exists());
    assert_eq!(text(&t.read("var/ipfire/ppp/secrets")), "'me' * 'pw'\n");
}

#[test]
fn list_show_delete() {
    for (kind, t) in roots() {
        add_cable(&t);
        let o = t.mwp(&["list", "--json"], "");
        assert!(o.status.success(), "{kind}");
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let rows = v.as_array().unwrap();
        let names: Vec<&str> = rows.iter().map(|r| r["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["1", "2", "3", "4", "5", "cable"], "{kind}");
        assert_eq!(rows[0]["active"], true);
        assert_eq!(rows[0]["profile_name"], "Telekom DSL");
        assert_eq!(rows[1]["type"], "qmi");
        assert_eq!(rows[2]["empty"], true);
        let plain = text(&t.mwp(&["list"], "").stdout);
        assert!(
            plain.contains("empty slot") && plain.contains("cable"),
            "{plain}"
        );

        let out = text(&t.mwp(&["show", "1"], "").stdout);
        assert!(!out.contains("Xy7-qP2@z"), "{kind}: password shown");
        assert!(out.contains("PASSWORD=****") && out.contains("PROFILENAME='Telekom DSL'"));

        let o = t.mwp(&["delete", "cable"], "");
        assert!(o.status.success(), "{}", text(&o.stderr));
        assert!(!t.path("var/ipfire/ppp/settings-cable").exists());
        // A WUI slot is emptied, as the WUI does.
        let o = t.mwp(&["delete", "2"], "");
        assert!(o.status.success(), "{}", text(&o.stderr));
        assert_eq!(t.read("var/ipfire/ppp/settings-2"), b"");
    }
}

#[test]
fn test_command_never_fakes_a_pass() {
    let t = TestRoot::synthetic();
    let o = t.mwp(&["test", "2"], "");
    let out = text(&o.stdout);
    assert!(
        out.starts_with("PASSED: ")
            || out.starts_with("FAILED: ")
            || out.starts_with("CANNOT TEST: "),
        "{out}"
    );
    let want = if out.starts_with("PASSED") { 0 } else { 1 };
    assert_eq!(o.status.code(), Some(want));
}

#[test]
fn interactive_style_flags_on_a_pipe_need_a_type() {
    let t = TestRoot::synthetic();
    let before = t.snapshot();
    let o = t.mwp(&["create", "x", "--device", "red1"], "");
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr_line(&o).contains("--type"));
    assert_eq!(t.snapshot(), before);
}

#[test]
fn chain_reports_missing_profiles_and_loops_by_name() {
    for (kind, t) in roots() {
        let paths = t.paths();
        let pol = policy(&t);
        assert_eq!(
            profile::resolve_chain(&paths, &name("1"), &pol).unwrap(),
            [name("1"), name("2")],
            "{kind}"
        );
        let mut p = pol.clone();
        p.chain = vec!["2".into(), "gone".into()];
        let e = profile::resolve_chain(&paths, &name("1"), &p)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("gone") && e.contains("does not exist") && e.contains("BACKUPPROFILE"),
            "{e}"
        );
        p.chain = vec!["2".into(), "3".into()];
        let e = profile::resolve_chain(&paths, &name("1"), &p)
            .unwrap_err()
            .to_string();
        assert!(e.contains("3") && e.contains("empty"), "{e}");
        p.chain = vec!["2".into(), "1".into()];
        let e = profile::resolve_chain(&paths, &name("1"), &p)
            .unwrap_err()
            .to_string();
        assert!(e.contains("twice"), "{e}");
    }
    // Through the profiles' own BACKUPPROFILE: 1 -> a -> b -> a is a loop; -> 1 ends it.
    let t = TestRoot::synthetic();
    t.write("var/ipfire/connectd/settings", "FAILOVER_ENABLED=on\n");
    let s1 =
        text(&t.read("var/ipfire/ppp/settings-1")).replace("BACKUPPROFILE=1", "BACKUPPROFILE=a");
    // Rewrite through the link-free path: replace the profile's content in place is what
    // the WUI does; here a plain write keeps settings' inode.
    fs::write(t.path("var/ipfire/ppp/settings-1"), s1).unwrap();
    t.write(
        "var/ipfire/ppp/settings-a",
        "TYPE=DHCP\nDEVICE=red1\nBACKUPPROFILE=b\n",
    );
    t.write(
        "var/ipfire/ppp/settings-b",
        "TYPE=DHCP\nDEVICE=red2\nBACKUPPROFILE=a\n",
    );
    let pol = policy(&t);
    let e = profile::resolve_chain(&t.paths(), &name("1"), &pol)
        .unwrap_err()
        .to_string();
    assert!(e.contains("1 -> a -> b -> a"), "{e}");
    t.write(
        "var/ipfire/ppp/settings-b",
        "TYPE=DHCP\nDEVICE=red2\nBACKUPPROFILE=1\n",
    );
    assert_eq!(
        profile::resolve_chain(&t.paths(), &name("1"), &pol).unwrap(),
        [name("1"), name("a"), name("b")]
    );
}

/// A runner that records and does nothing.
#[derive(Default)]
struct Recorder(std::sync::Mutex<Vec<String>>);

impl Runner for Recorder {
    fn run(&self, cmd: &CommandSpec) -> connectd::Result<CmdOutcome> {
        self.0.lock().unwrap().push(cmd.display());
        Ok(CmdOutcome {
            code: Some(0),
            ..CmdOutcome::default()
        })
    }
}

#[test]
fn the_stop_waits_for_pppd_bounded() {
    let t = TestRoot::synthetic();
    let pid = t.proc_root().join("4242");
    fs::create_dir_all(&pid).unwrap();
    fs::write(pid.join("comm"), "pppd\n").unwrap();
    let rec = Recorder::default();
    let started = SystemClock.now();
    switch::activate(
        &t.paths(),
        &rec,
        &policy(&t),
        &name("2"),
        None,
        &opts(&t),
        &mut |_, _| Ok(()),
    )
    .unwrap();
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(300), "did not wait: {took:?}");
    assert!(took < Duration::from_secs(3), "unbounded: {took:?}");
    let calls = rec.0.lock().unwrap();
    assert_eq!(calls.len(), 2);
    assert!(calls[0].ends_with("network stop red") && calls[1].ends_with("network start red"));
}

#[test]
fn journal_error_stops_the_switch_before_anything_is_touched() {
    let t = TestRoot::synthetic();
    let before = t.snapshot();
    let e = switch::activate(
        &t.paths(),
        &Recorder::default(),
        &policy(&t),
        &name("2"),
        None,
        &opts(&t),
        &mut |_, _| Err(connectd::Error::Failed("state: disk full".into())),
    )
    .unwrap_err();
    assert!(e.to_string().contains("disk full"));
    assert_eq!(t.snapshot(), before);
}

#[test]
fn a_crash_after_any_step_is_finished_by_apply_files() {
    // The real binary aborts at each step in turn (CONNECTD_CRASH_AT); apply_files must
    // then bring settings, secrets and ethernet/settings into agreement with the target.
    for step in Step::ALL {
        let t = TestRoot::synthetic();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_manage-wan-profiles"));
        cmd.arg("--root")
            .arg(t.root())
            .args(["activate", "2", "--no-wait"])
            .env("CONNECTD_CRASH_AT", step.name());
        let o = cmd.output().unwrap();
        assert_eq!(
            o.status.signal(),
            Some(6),
            "{}: {:?}",
            step.name(),
            o.status
        );
        let paths = t.paths();
        switch::apply_files(&paths, &policy(&t), &name("2"), None).unwrap();
        assert_eq!(switch::active_profile(&paths).unwrap(), Some(name("2")));
        assert_eq!(
            text(&t.read("var/ipfire/ppp/secrets")),
            "'telekom' * 'tm'\n"
        );
        let eth = text(&t.read("var/ipfire/ethernet/settings"));
        assert!(eth.contains("\nRED_DEV=wwan0\n"), "{}", step.name());
        assert_eq!(
            non_red_lines(&eth),
            non_red_lines(crate::util::ETHERNET_SETTINGS)
        );
        // No temporary file left anywhere.
        assert!(
            t.snapshot()
                .keys()
                .all(|p| !p.to_string_lossy().contains("connectd-tmp")),
            "{}",
            step.name()
        );
        // apply_files again changes nothing.
        let snap = t.snapshot();
        switch::apply_files(&paths, &policy(&t), &name("2"), None).unwrap();
        let again = t.snapshot();
        assert_eq!(
            snap.get(std::path::Path::new("var/ipfire/ethernet/settings")),
            again.get(std::path::Path::new("var/ipfire/ethernet/settings"))
        );
    }
}

#[test]
fn conntrack_is_flushed_for_the_old_address_only() {
    let rec = Recorder::default();
    switch::flush_conntrack_with(
        &rec,
        std::path::Path::new("/usr/sbin/conntrack"),
        "198.51.100.77".parse().unwrap(),
    )
    .unwrap();
    assert_eq!(
        *rec.0.lock().unwrap(),
        [
            "/usr/sbin/conntrack -D -q 198.51.100.77",
            "/usr/sbin/conntrack -D -s 198.51.100.77"
        ]
    );
}

#[test]
fn activate_refuses_while_a_supervisor_holds_the_lock() {
    let t = TestRoot::synthetic();
    let f = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(t.path("var/run/connectd.pid"))
        .unwrap();
    let lock = nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock).unwrap();
    let before = t.snapshot();
    let o = t.mwp(&["activate", "2"], "");
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr_line(&o).contains("connectd is running"));
    assert_eq!(t.snapshot(), before);
    assert!(t.network_calls().is_empty());
    drop(lock);
    assert!(t.mwp(&["activate", "2"], "").status.success());
}

#[test]
fn activate_says_so_when_red_does_not_come_up() {
    let t = TestRoot::synthetic();
    t.write(
        "var/ipfire/connectd/settings",
        "BACKUPPROFILE=2\nDEVICE_2=wwan0\nFAILOVER_CONNECT_TIMEOUT=0.5\n",
    );
    // A network script that never brings RED up, and whose exit code lies.
    t.write("etc/rc.d/init.d/network", "#!/bin/sh\nexit 0\n");
    let started = SystemClock.now();
    let o = t.mwp(&["activate", "2"], "");
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("did not come up"),
        "{}",
        text(&o.stdout)
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    // The switch itself happened: the supervisor (or the user) decides what next.
    assert_eq!(
        t.inode("var/ipfire/ppp/settings"),
        t.inode("var/ipfire/ppp/settings-2")
    );
}
