//! Reliability: hostile input over the real binaries and the library, concurrency and
//! SIGTERM at random moments against a running supervisor, secrets never shown, and the
//! fuzz corpus replayed on stable. See RELIABILITY.md for what each test proves.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns: a failed setup is a failed test

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::util::supervised::{BIN, Box_, alive, skip, start, supervisors};
use crate::util::{TestRoot, is_root};

const MWP: &str = env!("CARGO_BIN_EXE_manage-wan-profiles");

#[derive(Clone, Copy, Debug)]
enum Bin {
    Connectd,
    Mwp,
}

fn run(t: &TestRoot, bin: Bin, args: &[&str]) -> Output {
    let exe = match bin {
        Bin::Connectd => BIN,
        Bin::Mwp => MWP,
    };
    let mut c = Command::new(exe);
    c.arg("--root").arg(t.root()).args(args);
    run_bounded(c, Duration::from_secs(60))
}

/// Runs `c` (stdin closed, output captured, our environment cleared) and kills it after
/// `limit`: a hostile input must never make a command hang.
fn run_bounded(mut c: Command, limit: Duration) -> Output {
    c.env_remove("CONNECTD_ROOT")
        .env_remove("CONNECTD_CRASH_AT")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let t0 = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if t0.elapsed() > limit {
            let _ = child.kill();
            let o = child.wait_with_output().unwrap();
            panic!(
                "{c:?} hung for {limit:?}; stderr: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The tree under the root minus `var/run` (the pidfile lock is created before anything
/// is read, by design) and the state file's timestamps are not involved: everything else.
fn snap(t: &TestRoot) -> BTreeMap<PathBuf, (Vec<u8>, u32, u64)> {
    let mut s = t.snapshot();
    s.retain(|p, _| !p.starts_with("var/run"));
    s
}

/// No temporary file left anywhere under the root.
fn assert_no_temp_files(t: &TestRoot, what: &str) {
    for p in t.snapshot().keys() {
        let n = p.file_name().unwrap().to_string_lossy();
        assert!(
            !n.contains(".tmp") && !n.starts_with(".connectd") && !n.contains("tmp."),
            "{what}: temporary file left: {}",
            p.display()
        );
    }
}

fn marker_dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

// ---------------------------------------------------------------------------------------
// 1. Hostile input: a table over the real binaries.
// ---------------------------------------------------------------------------------------

type Setup = Box<dyn Fn(&TestRoot, &Path)>;

struct Case {
    name: &'static str,
    setup: Setup,
    bin: Bin,
    args: Vec<&'static str>,
    code: i32,
    /// Substrings the one error line must contain (file, key, value, ...).
    says: Vec<&'static str>,
    /// Nothing under the root may change (var/run aside).
    unchanged: bool,
}

fn case(
    name: &'static str,
    bin: Bin,
    args: &[&'static str],
    code: i32,
    says: &[&'static str],
    setup: impl Fn(&TestRoot, &Path) + 'static,
) -> Case {
    Case {
        name,
        setup: Box::new(setup),
        bin,
        args: args.to_vec(),
        code,
        says: says.to_vec(),
        unchanged: code != 0,
    }
}

const BIG: usize = 10 * 1024 * 1024;

fn big_profile() -> Vec<u8> {
    let mut v = b"TYPE=DHCP\nDEVICE=red1\n".to_vec();
    while v.len() < BIG {
        v.extend_from_slice(b"FILLER=0123456789abcdef0123456789abcdef0123456789abcdef\n");
    }
    v
}

fn cases() -> Vec<Case> {
    use Bin::{Connectd, Mwp};
    vec![
        // NUL bytes: refused as binary, naming the file and line.
        case(
            "NUL in a profile, failover",
            Connectd,
            &["failover", "bin"],
            2,
            &["settings-bin", "NUL"],
            |t, _| t.write("var/ipfire/ppp/settings-bin", b"TYPE=DHCP\nDEVICE=red1\0\n"),
        ),
        case(
            "NUL in connectd/settings, start",
            Connectd,
            &["start"],
            2,
            &["connectd/settings", "NUL"],
            |t, _| t.write("var/ipfire/connectd/settings", b"FAILOVER_ENABLED=on\0\n"),
        ),
        case(
            "NUL in connectd/settings, status",
            Connectd,
            &["status"],
            0,
            &[],
            |t, _| t.write("var/ipfire/connectd/settings", b"FAILOVER_ENABLED=on\0\n"),
        ),
        // 10 MB: refused without reading it all.
        case(
            "10 MB profile, failover",
            Connectd,
            &["failover", "big"],
            2,
            &["settings-big", "larger than"],
            |t, _| t.write("var/ipfire/ppp/settings-big", big_profile()),
        ),
        case(
            "10 MB profile, show",
            Mwp,
            &["show", "big"],
            2,
            &["settings-big", "larger than"],
            |t, _| t.write("var/ipfire/ppp/settings-big", big_profile()),
        ),
        case(
            "10 MB connectd/settings, start",
            Connectd,
            &["start"],
            2,
            &["connectd/settings", "larger than"],
            |t, _| t.write("var/ipfire/connectd/settings", big_profile()),
        ),
        // Unreadable even for root: a directory where the file should be (EISDIR), and a
        // symlink loop (ELOOP). chmod 000 does not stop root.
        case(
            "directory in place of a profile, failover",
            Connectd,
            &["failover", "dir"],
            1,
            &["settings-dir", "Is a directory"],
            |t, _| fs::create_dir_all(t.path("var/ipfire/ppp/settings-dir")).unwrap(),
        ),
        case(
            "symlink loop in place of connectd/settings, start",
            Connectd,
            &["start"],
            1,
            &["connectd/settings", "symbolic links"],
            |t, _| {
                let p = t.path("var/ipfire/connectd/settings");
                fs::remove_file(&p).unwrap();
                std::os::unix::fs::symlink(&p, &p).unwrap();
            },
        ),
        case(
            "directory in place of connectd/settings, start",
            Connectd,
            &["start"],
            1,
            &["connectd/settings", "Is a directory"],
            |t, _| {
                let p = t.path("var/ipfire/connectd/settings");
                fs::remove_file(&p).unwrap();
                fs::create_dir(&p).unwrap();
            },
        ),
        // CRLF: we read it, but IPFire's shell readhash ignores every CRLF line: the
        // switch goes ahead (DESIGN 9: warned about) and the warning names file and line.
        case(
            "CRLF profile, failover -v",
            Connectd,
            &["-v", "failover", "crlf"],
            0,
            &["settings-crlf:1", "shell reader ignores"],
            |t, _| {
                t.write(
                    "var/ipfire/ppp/settings-crlf",
                    "TYPE=DHCP\r\nDEVICE=red1\r\n",
                )
            },
        ),
        case(
            "CRLF profile, show",
            Mwp,
            &["show", "crlf"],
            0,
            &[],
            |t, _| {
                t.write(
                    "var/ipfire/ppp/settings-crlf",
                    "TYPE=DHCP\r\nDEVICE=red1\r\n",
                )
            },
        ),
        case(
            "CRLF connectd/settings with a bad value, start",
            Connectd,
            &["start"],
            2,
            &["connectd/settings", "FAILOVER_FAILURES", "banana"],
            |t, _| {
                t.write(
                    "var/ipfire/connectd/settings",
                    "FAILOVER_ENABLED=on\r\nFAILOVER_FAILURES=banana\r\n",
                )
            },
        ),
        // A policy with an invalid value: start refuses, naming file, key and value.
        case(
            "invalid policy value, start",
            Connectd,
            &["start"],
            2,
            &["connectd/settings", "FAILOVER_CHECK_INTERVAL", "soon"],
            |t, _| {
                t.write(
                    "var/ipfire/connectd/settings",
                    "FAILOVER_ENABLED=on\nFAILOVER_CHECK_INTERVAL=soon\n",
                )
            },
        ),
        case(
            "invalid legacy key in the primary profile, start",
            Connectd,
            &["start"],
            2,
            &["settings", "FAILBACK_DELAY", "-5"],
            |t, _| {
                t.write("var/ipfire/connectd/settings", "FAILOVER_ENABLED=on\n");
                let mut p = t.read("var/ipfire/ppp/settings-1");
                p.extend_from_slice(b"FAILBACK_DELAY=-5\n");
                // in place: settings shares the inode
                fs::OpenOptions::new()
                    .write(true)
                    .truncate(true)
                    .open(t.path("var/ipfire/ppp/settings-1"))
                    .and_then(|mut f| std::io::Write::write_all(&mut f, &p))
                    .unwrap();
            },
        ),
        // Chains: a missing profile and a loop.
        case(
            "chain names a missing profile, start",
            Connectd,
            &["start"],
            2,
            &["nosuch"],
            |t, _| {
                t.write(
                    "var/ipfire/connectd/settings",
                    "FAILOVER_ENABLED=on\nBACKUPPROFILE=2,nosuch\nDEVICE_2=wwan0\n",
                )
            },
        ),
        case(
            "chain with a loop, start",
            Connectd,
            &["start"],
            2,
            &["BACKUPPROFILE", "2"],
            |t, _| {
                t.write(
                    "var/ipfire/connectd/settings",
                    "FAILOVER_ENABLED=on\nBACKUPPROFILE=2,1,2\nDEVICE_2=wwan0\n",
                )
            },
        ),
        case(
            "chain with a bad name, start",
            Connectd,
            &["start"],
            2,
            &["connectd/settings", "BACKUPPROFILE", "../etc"],
            |t, _| {
                t.write(
                    "var/ipfire/connectd/settings",
                    "FAILOVER_ENABLED=on\nBACKUPPROFILE=../etc\n",
                )
            },
        ),
        // A device that does not exist.
        case(
            "profile on a device that does not exist, failover -v",
            Connectd,
            &["-v", "failover", "ghost"],
            0,
            &[],
            |t, _| {
                t.write(
                    "var/ipfire/ppp/settings-ghost",
                    "TYPE=DHCP\nDEVICE=nosuch9\n",
                )
            },
        ),
        case(
            "profile with a device name that is not one, failover",
            Connectd,
            &["failover", "ghost"],
            2,
            &["settings-ghost", "DEVICE"],
            |t, _| {
                t.write(
                    "var/ipfire/ppp/settings-ghost",
                    "TYPE=DHCP\nDEVICE=$(reboot)\n",
                )
            },
        ),
        // Values that IPFire's own readhash would eval: never executed by us, refused.
        case(
            "PASSWORD=x;cmd;Y=1 in a profile, failover -v",
            Connectd,
            &["-v", "failover", "evil"],
            0,
            &["settings-evil:4", "PASSWORD", "shell reader ignores"],
            |t, m| {
                t.write(
                    "var/ipfire/ppp/settings-evil",
                    format!(
                        "TYPE=pppoe\nDEVICE=red0\nUSERNAME=u\nPASSWORD=x;touch {}/MARKER;Y=1\n",
                        m.display()
                    ),
                )
            },
        ),
        case(
            "PASSWORD=x;cmd;Y=1 in a profile, show",
            Mwp,
            &["show", "evil"],
            0,
            &[],
            |t, m| {
                t.write(
                    "var/ipfire/ppp/settings-evil",
                    format!(
                        "TYPE=pppoe\nDEVICE=red0\nUSERNAME=u\nPASSWORD=x;touch {}/MARKER;Y=1\n",
                        m.display()
                    ),
                )
            },
        ),
        case(
            "keepconnected holding x[$(cmd)], status",
            Connectd,
            &["status", "--json"],
            0,
            &[],
            |t, m| {
                t.write(
                    "var/ipfire/red/keepconnected",
                    format!("x[$(touch {}/MARKER)]", m.display()),
                )
            },
        ),
    ]
}

#[test]
fn hostile_input_gets_one_message_the_right_code_and_no_write() {
    let mut tried = 0;
    let mut report = Vec::new();
    let mut failures = Vec::new();
    for c in cases() {
        let t = TestRoot::synthetic();
        let m = marker_dir();
        (c.setup)(&t, m.path());
        let before = snap(&t);
        let o = run(&t, c.bin, &c.args);
        tried += 1;
        let err = text(&o.stderr);
        report.push(format!(
            "{:<52} -> {:?} {}",
            c.name,
            o.status.code(),
            err.trim()
        ));
        let mut fail = |why: String| failures.push(format!("{}: {why}", c.name));
        if o.status.code() != Some(c.code) {
            fail(format!(
                "exit {:?}, want {}; stderr: {err} stdout: {}",
                o.status.code(),
                c.code,
                text(&o.stdout)
            ));
        }
        if c.code != 0 {
            let lines = err.lines().filter(|l| !l.trim().is_empty()).count();
            if lines != 1 {
                fail(format!("{lines} lines, want one message: {err}"));
            }
        }
        for s in &c.says {
            if !err.contains(s) {
                fail(format!("{err:?} does not name {s:?}"));
            }
        }
        if c.unchanged {
            if snap(&t) != before {
                fail("wrote something".into());
            }
            if !t.network_calls().is_empty() {
                fail("ran the network script".into());
            }
        }
        if !supervisors(t.root()).is_empty() {
            fail("a supervisor is running".into());
        }
        if m.path().join("MARKER").exists() {
            fail("a stored command was executed".into());
        }
        assert_no_temp_files(&t, c.name);
    }
    eprintln!("hostile inputs tried: {tried}\n{}", report.join("\n"));
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// Runs `script` as `sh -c` in a private mount namespace (mounts vanish with it), with
/// `args` as `$1...`. Root only.
fn in_mount_ns(script: &str, args: &[&str]) -> Output {
    let mut c = Command::new("unshare");
    c.args(["-m", "--propagation", "private", "sh", "-c", script, "sh"])
        .args(args);
    run_bounded(c, Duration::from_secs(60))
}

fn can_mount() -> bool {
    if !is_root() {
        eprintln!("skipped: mounting a read-only or a full filesystem needs root");
        return false;
    }
    if connectd::sys::exec::find_in_path("unshare").is_none() {
        eprintln!("skipped: unshare(1) is not installed");
        return false;
    }
    true
}

#[test]
fn read_only_root_fails_cleanly_and_writes_nothing() {
    if !can_mount() {
        return;
    }
    let t = TestRoot::synthetic();
    let root = t.root().display().to_string();
    for (args, says) in [
        (vec!["failover", "2"], "Read-only file system"),
        (vec!["failback", "--force"], ""),
        (vec!["auto", "off"], "Read-only file system"),
        (vec!["start"], "Read-only file system"),
    ] {
        let before = t.snapshot();
        let script =
            "mount --bind \"$1\" \"$1\" && mount -o remount,bind,ro \"$1\" && shift && exec \"$@\"";
        let mut a = vec![root.as_str(), BIN, "--root", root.as_str()];
        a.extend(&args);
        let o = in_mount_ns(script, &a);
        let err = text(&o.stderr);
        if says.is_empty() {
            // already on the primary: nothing to do, nothing written
            assert_eq!(o.status.code(), Some(0), "{args:?}: {err}");
        } else {
            assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
            assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
            assert!(err.contains(says) && err.contains(&root), "{args:?}: {err}");
        }
        assert_eq!(
            t.snapshot(),
            before,
            "{args:?} wrote through a read-only root"
        );
        assert!(
            t.network_calls().is_empty(),
            "{args:?} ran the network script"
        );
    }
}

/// Fills a 64 KiB tmpfs mounted over the root until `free` KiB are left, runs
/// `connectd failover 2`, then copies what the tmpfs holds to `<root>.after`.
fn failover_on_a_full_disk(t: &TestRoot, free_kib: u32) -> (Output, PathBuf) {
    let root = t.root().display().to_string();
    let after = format!("{root}.after-{free_kib}");
    let script = r#"set -e
R=$1; FREE=$2; BIN=$3; AFTER=$4
cp -a "$R" "$R.orig-$FREE"
mount -t tmpfs -o size=64k,mode=0755 tmpfs "$R"
cp -a "$R.orig-$FREE/." "$R/"
avail=$(df -k --output=avail "$R" | tail -n 1 | tr -d ' ')
fill=$((avail - FREE))
if [ "$fill" -gt 0 ]; then dd if=/dev/zero of="$R/filler" bs=1024 count="$fill" 2>/dev/null || true; fi
set +e
"$BIN" --root "$R" failover 2 >"$AFTER.out" 2>"$AFTER.err"
echo $? >"$AFTER.rc"
set -e
rm -f "$R/filler"
mkdir -p "$AFTER"
cp -a "$R/." "$AFTER/"
"#;
    let free = free_kib.to_string();
    let o = in_mount_ns(script, &[&root, &free, BIN, &after]);
    assert!(o.status.success(), "harness: {}", text(&o.stderr));
    let rc: i32 = fs::read_to_string(format!("{after}.rc"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let out = Output {
        status: std::os::unix::process::ExitStatusExt::from_raw(rc << 8),
        stdout: fs::read(format!("{after}.out")).unwrap(),
        stderr: fs::read(format!("{after}.err")).unwrap(),
    };
    (out, PathBuf::from(after))
}

#[test]
fn a_switch_on_a_full_disk_fails_cleanly_or_completes_never_half_written() {
    if !can_mount() {
        return;
    }
    let mut outcomes = Vec::new();
    for free in [0u32, 4, 8, 12, 16, 20, 24, 32] {
        let t = TestRoot::synthetic();
        let orig = t.snapshot();
        let (o, after) = failover_on_a_full_disk(&t, free);
        let err = text(&o.stderr);
        let ino = |rel: &str| fs::metadata(after.join(rel)).unwrap().ino();
        let read = |rel: &str| fs::read(after.join(rel)).unwrap();
        let on_2 = ino("var/ipfire/ppp/settings") == ino("var/ipfire/ppp/settings-2");
        let on_1 = ino("var/ipfire/ppp/settings") == ino("var/ipfire/ppp/settings-1");
        assert!(on_1 || on_2, "free {free}: settings links to no profile");
        let secrets = text(&read("var/ipfire/ppp/secrets"));
        let eth = text(&read("var/ipfire/ethernet/settings"));
        let mode = fs::metadata(after.join("var/ipfire/ppp/secrets"))
            .unwrap()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "free {free}");
        if on_1 {
            // Failed: exit 1, one message naming the full filesystem, old files intact.
            assert_eq!(o.status.code(), Some(1), "free {free}: {err}");
            assert!(
                err.contains("No space left on device"),
                "free {free}: {err}"
            );
            assert_eq!(err.lines().count(), 1, "free {free}: {err}");
            for rel in [
                "var/ipfire/ppp/secrets",
                "var/ipfire/ethernet/settings",
                "var/ipfire/ppp/settings-1",
                "var/ipfire/ppp/settings-2",
            ] {
                assert_eq!(
                    read(rel),
                    orig[Path::new(rel)].0,
                    "free {free}: {rel} changed by a failed switch"
                );
            }
        } else {
            assert!(
                secrets.contains("'telekom' * 'tm'"),
                "free {free}: {secrets}"
            );
            assert!(eth.contains("RED_TYPE=PPPOE\n"), "free {free}: {eth}");
            assert!(eth.contains("RED_DEV=wwan0\n"), "free {free}: {eth}");
        }
        assert!(eth.contains("GREEN_DEV=green0\n"), "free {free}: {eth}");
        if let Ok(s) = fs::read(after.join("var/ipfire/connectd/state")) {
            let v: serde_json::Value = serde_json::from_slice(&s)
                .unwrap_or_else(|e| panic!("free {free}: state does not parse: {e}"));
            if v["journal"].is_null() {
                // Switched all the way: the command says so (exit 0), even when an
                // informational file (red/failover-time) could not be updated.
                assert!(
                    on_1 || o.status.success(),
                    "free {free}: exit {:?} {err}",
                    o.status.code()
                );
            } else {
                // The journal could not be updated after the files were switched: the files
                // agree with each other, the command fails naming the full disk, and the
                // journal names the target so the next start finishes the switch.
                assert_eq!(o.status.code(), Some(1), "free {free}: {err}");
                assert!(
                    err.contains("No space left on device"),
                    "free {free}: {err}"
                );
                assert_eq!(v["journal"]["to"], "2", "free {free}: {v}");
            }
        }
        for e in walk(&after) {
            let n = e.file_name().unwrap().to_string_lossy().to_string();
            assert!(
                !n.contains("tmp"),
                "free {free}: temporary file left: {}",
                e.display()
            );
        }
        outcomes.push(format!(
            "{free:>2} KiB free: exit {:?} {}",
            o.status.code(),
            err.trim()
        ));
    }
    eprintln!("{}", outcomes.join("\n"));
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if e.file_type().unwrap().is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn settings_symlinked_outside_the_root_is_never_written_through() {
    let t = TestRoot::synthetic();
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("settings-elsewhere");
    fs::write(&target, "TYPE=DHCP\nDEVICE=red9\nPASSWORD=outside\n").unwrap();
    let settings = t.path("var/ipfire/ppp/settings");
    fs::remove_file(&settings).unwrap();
    std::os::unix::fs::symlink(&target, &settings).unwrap();
    let target_before = (
        fs::read(&target).unwrap(),
        fs::metadata(&target).unwrap().mode(),
    );
    let before = snap(&t);
    // A symlink is not IPFire's hard link: switches refuse it with one message naming
    // `ppp/settings`, and never follow it (nothing outside the root is read into a profile
    // or written).
    for args in [&["failback", "--force"][..], &["failover", "2"]] {
        let o = run(&t, Bin::Connectd, args);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.contains("ppp/settings links to no profile"),
            "{args:?}: {err}"
        );
    }
    for args in [&["status"][..], &["list"], &["status"], &["show", "2"]] {
        let o = run(&t, Bin::Mwp, &args[..args.len().min(2)]);
        assert!(o.status.code().is_some(), "{args:?}");
    }
    let o = run(&t, Bin::Connectd, &["status", "--json"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(snap(&t), before, "something was written");
    assert!(t.network_calls().is_empty());
    assert_eq!(
        (
            fs::read(&target).unwrap(),
            fs::metadata(&target).unwrap().mode()
        ),
        target_before,
        "the file outside the root changed"
    );
    assert_no_temp_files(&t, "symlink");
}

#[test]
fn a_stored_password_with_shell_syntax_is_written_literally_and_never_run() {
    let t = TestRoot::synthetic();
    let m = marker_dir();
    let marker = m.path().join("MARKER");
    let pw = format!("x;touch {};Y=1", marker.display());
    t.write(
        "var/ipfire/ppp/settings-evil",
        format!("TYPE=pppoe\nDEVICE=red0\nUSERNAME=u\nPASSWORD={pw}\n"),
    );
    let o = run(&t, Bin::Connectd, &["failover", "evil"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let secrets = text(&t.read("var/ipfire/ppp/secrets"));
    let line = secrets.lines().next().unwrap();
    assert_eq!(crate::util::pppd_words(line), vec!["u", "*", pw.as_str()]);
    let mode = fs::metadata(t.path("var/ipfire/ppp/secrets"))
        .unwrap()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    // show masks it, list does not carry it
    for args in [&["show", "evil"][..], &["list", "--json"], &["status"]] {
        let o = run(&t, Bin::Mwp, args);
        let all = format!("{}{}", text(&o.stdout), text(&o.stderr));
        assert!(!all.contains("touch"), "{args:?} shows the password: {all}");
    }
    assert!(!marker.exists(), "the stored command was executed");
}

// ---------------------------------------------------------------------------------------
// Supervisor in the foreground with -v: the log is its stderr.
// ---------------------------------------------------------------------------------------

struct Foreground {
    child: std::process::Child,
    log: PathBuf,
}

impl Foreground {
    fn start(b: &Box_) -> Foreground {
        let log = b.t.root().parent().unwrap().join("foreground.log");
        let mut c = Command::new(BIN);
        c.arg("--root")
            .arg(b.t.root())
            .args(["-v", "start", "--foreground"])
            .env_remove("CONNECTD_ROOT")
            .env_remove("CONNECTD_CRASH_AT")
            .stdin(Stdio::null())
            .stdout(Stdio::from(fs::File::create(&log).unwrap()))
            .stderr(Stdio::from(
                fs::OpenOptions::new().append(true).open(&log).unwrap(),
            ));
        let child = c.spawn().unwrap();
        let f = Foreground { child, log };
        b.wait_for("the foreground supervisor", |b| {
            b.status()["running"] == true
        });
        f
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn pid(&self) -> nix::unistd::Pid {
        nix::unistd::Pid::from_raw(self.child.id() as i32)
    }
}

impl Drop for Foreground {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(self.pid(), nix::sys::signal::Signal::SIGTERM);
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_log(f: &Foreground, what: &str) {
    let t0 = Instant::now();
    while !f.log().contains(what) {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "no {what:?} in the log:\n{}",
            f.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sighup_with_an_invalid_policy_keeps_the_old_one() {
    if skip() {
        return;
    }
    let b = Box_::new();
    let f = Foreground::start(&b);
    let good = b.t.read("var/ipfire/connectd/settings");
    let mut bad = good.clone();
    bad.extend_from_slice(b"FAILOVER_FAILURES=many\n");
    b.t.write("var/ipfire/connectd/settings", &bad);
    nix::sys::signal::kill(f.pid(), nix::sys::signal::Signal::SIGHUP).unwrap();
    wait_log(&f, "keeping the previous policy");
    let log = f.log();
    let line = log
        .lines()
        .find(|l| l.contains("keeping the previous policy"))
        .unwrap();
    for want in ["connectd/settings", "FAILOVER_FAILURES", "many"] {
        assert!(line.contains(want), "{line:?} does not name {want}");
    }
    assert!(
        alive(f.child.id() as i32),
        "the supervisor died on a bad SIGHUP"
    );
    let s = b.status();
    assert_eq!(s["running"], true, "{s}");
    // The file is left as the user wrote it; a valid one is taken on the next SIGHUP.
    assert_eq!(b.t.read("var/ipfire/connectd/settings"), bad);
    b.t.write("var/ipfire/connectd/settings", &good);
    nix::sys::signal::kill(f.pid(), nix::sys::signal::Signal::SIGHUP).unwrap();
    wait_log(&f, "policy reloaded");
}

#[test]
fn secrets_never_appear_in_logs_status_or_output_and_control_files_are_0600() {
    if skip() {
        return;
    }
    const PW1: &str = "Pw1-Qx7Zu-9931";
    const PW2: &str = "Pw2-Rk4Lm-5520";
    let b = Box_::new();
    // Passwords in both profiles (DHCP ignores them, but every reader sees the key).
    let p1 = format!(
        "{}PASSWORD={PW1}\n",
        text(&b.t.read("var/ipfire/ppp/settings-1"))
    );
    fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(b.t.path("var/ipfire/ppp/settings-1"))
        .and_then(|mut f| std::io::Write::write_all(&mut f, p1.as_bytes()))
        .unwrap();
    let p2 = format!(
        "{}USERNAME=user2\nPASSWORD={PW2}\n",
        text(&b.t.read("var/ipfire/ppp/settings-2"))
    );
    b.t.write("var/ipfire/ppp/settings-2", p2);
    b.t.write("var/ipfire/ppp/secrets", format!("'user1' * '{PW1}'\n"));
    fs::set_permissions(
        b.t.path("var/ipfire/ppp/secrets"),
        fs::Permissions::from_mode(0o600),
    )
    .unwrap();

    let f = Foreground::start(&b);
    let sock = b.t.path("var/run/connectd.sock");
    assert_eq!(
        fs::metadata(&sock).unwrap().mode() & 0o777,
        0o600,
        "control socket"
    );

    let mut outputs = Vec::new();
    let mut out = |o: Output| {
        outputs.push(format!("{}{}", text(&o.stdout), text(&o.stderr)));
        o
    };
    let cmds: Vec<(Bin, Vec<&str>)> = vec![
        (Bin::Connectd, vec!["status"]),
        (Bin::Connectd, vec!["status", "--json"]),
        (Bin::Connectd, vec!["failover", "2"]),
        (Bin::Connectd, vec!["status", "--json"]),
        (Bin::Connectd, vec!["failback", "--force"]),
        (Bin::Connectd, vec!["check", "--json"]),
        (Bin::Connectd, vec!["-v", "status", "--json"]),
        (Bin::Connectd, vec!["api-key"]),
        (Bin::Mwp, vec!["show", "1"]),
        (Bin::Mwp, vec!["show", "2"]),
        (Bin::Mwp, vec!["list"]),
        (Bin::Mwp, vec!["list", "--json"]),
        (Bin::Mwp, vec!["status"]),
    ];
    for (bin, args) in &cmds {
        let o = out(run(&b.t, *bin, args));
        if args[0] == "failover" {
            assert!(o.status.success(), "{args:?}: {}", text(&o.stderr));
            b.wait_for("online on 2", |b| {
                let s = b.status();
                s["state"] == "online" && s["active_profile"] == "2"
            });
        }
        if args[0] == "failback" {
            b.wait_for("online on 1", |b| {
                let s = b.status();
                s["state"] == "online" && s["active_profile"] == "1"
            });
        }
    }
    // show masks: it says a password is set without showing it.
    let show2 = &outputs[9];
    assert!(
        show2.contains("PASSWORD"),
        "show does not mention the password: {show2}"
    );

    let token = b.t.paths().api_token();
    assert_eq!(
        fs::metadata(&token).unwrap().mode() & 0o777,
        0o600,
        "API token"
    );
    nix::sys::signal::kill(f.pid(), nix::sys::signal::Signal::SIGUSR1).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    drop(f);
    let log = fs::read_to_string(b.t.root().parent().unwrap().join("foreground.log")).unwrap();
    assert!(log.contains("profile 2"), "the log saw the switches: {log}");
    let state = text(&b.t.read("var/ipfire/connectd/state"));
    let mut places = vec![("supervisor log (-v)", log), ("state file", state)];
    for (i, o) in outputs.into_iter().enumerate() {
        places.push((cmds[i].1.join(" ").leak(), o));
    }
    for (what, s) in &places {
        for pw in [PW1, PW2] {
            assert!(!s.contains(pw), "{what} shows a password:\n{s}");
        }
    }
    eprintln!("secrets checked absent from {} outputs", places.len());
}

// ---------------------------------------------------------------------------------------
// 2. Concurrency with the real binary.
// ---------------------------------------------------------------------------------------

/// xorshift64*: seeded, printed, so a failing run can be replayed.
struct Rng(u64);

impl Rng {
    fn seeded() -> Rng {
        let seed = std::env::var("RELIABILITY_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    | 1
            });
        eprintln!("RELIABILITY_SEED={seed}");
        Rng(seed)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn spawn_cli(
    root: &Path,
    args: &'static [&'static str],
    delay_ms: u64,
) -> std::thread::JoinHandle<Output> {
    let root = root.to_path_buf();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(delay_ms));
        let mut c = Command::new(BIN);
        c.arg("--root").arg(root).args(args);
        run_bounded(c, Duration::from_secs(150))
    })
}

#[test]
fn reconnect_failover_and_failback_racing_a_switch_are_serialized() {
    race(2, false);
}

/// Regression (found by this suite): a switch used to restore `red/keepconnected` whenever
/// it was missing at the end of the switch, so a WUI Disconnect during a switch was undone
/// and the supervisor redialled. Deterministic: the Disconnect lands while the (slow)
/// `network start red` of the switch runs.
#[test]
fn a_disconnect_during_a_switch_wins() {
    if skip() {
        return;
    }
    let b = Box_::new();
    start(&b);
    let slow = b.t.root().parent().unwrap().join("slow-start");
    fs::write(&slow, "").unwrap();
    let h = spawn_cli(b.t.root(), &["failover", "2"], 0);
    b.wait_for("the switch to reach start red", |b| {
        b.t.network_calls().last().map(String::as_str) == Some("start red")
    });
    fs::remove_file(b.t.path("var/ipfire/red/keepconnected")).unwrap();
    let _ = h.join();
    fs::remove_file(&slow).unwrap();
    b.wait_for("the supervisor to exit after Disconnect", |b| {
        supervisors(b.t.root()).is_empty()
    });
    assert!(
        !b.t.path("var/ipfire/red/keepconnected").exists(),
        "keepconnected was re-created"
    );
}

/// The same race with random timing (the Disconnect may land before, during or after).
#[test]
fn a_disconnect_racing_a_switch_wins() {
    race(2, true);
}

fn race(rounds: u32, with_disconnect: bool) {
    if skip() {
        return;
    }
    let mut rng = Rng::seeded();
    for round in 0..rounds {
        let b = Box_::new();
        start(&b);
        let root = b.t.root().to_path_buf();
        let disconnect = with_disconnect && round % 2 == 1;
        let mut hs = vec![
            spawn_cli(&root, &["failover", "2"], rng.below(50)),
            // pppd's ip-down: `connectd reconnect &`
            spawn_cli(&root, &["reconnect"], rng.below(300)),
            spawn_cli(&root, &["failover", "2"], rng.below(300)),
            spawn_cli(&root, &["failback", "--force"], rng.below(300)),
            spawn_cli(&root, &["reconnect"], rng.below(300)),
        ];
        let kc = b.t.path("var/ipfire/red/keepconnected");
        let dc_at = rng.below(300);
        let watcher = {
            let root = root.clone();
            std::thread::spawn(move || {
                // A process counts when it is there in two samples 10 ms apart: a forked
                // child before its exec (the network script, a hook) is briefly a second
                // `connectd ... start` too.
                let t0 = Instant::now();
                let (mut most, mut last) = (0, Vec::new());
                while t0.elapsed() < Duration::from_millis(1500) {
                    let now = supervisors(&root);
                    most = most.max(now.iter().filter(|p| last.contains(*p)).count());
                    last = now;
                    std::thread::sleep(Duration::from_millis(10));
                }
                most
            })
        };
        if disconnect {
            // the WUI's Disconnect: redctrl stop removes keepconnected
            std::thread::sleep(Duration::from_millis(dc_at));
            let _ = fs::remove_file(&kc);
        }
        for h in hs.drain(..) {
            let o = h.join().unwrap();
            assert!(
                matches!(o.status.code(), Some(0..=2)),
                "round {round}: {}",
                text(&o.stderr)
            );
        }
        assert!(
            watcher.join().unwrap() <= 1,
            "round {round}: two supervisors at once"
        );
        if disconnect {
            // Disconnect wins: the supervisor stops RED and exits, and nobody redials.
            b.wait_for("the supervisor to exit after Disconnect", |b| {
                supervisors(b.t.root()).is_empty()
            });
            std::thread::sleep(Duration::from_millis(300));
            assert!(
                supervisors(b.t.root()).is_empty(),
                "round {round}: restarted"
            );
            fs::write(&kc, "0\n").unwrap();
            start(&b);
        }
        b.wait_for("online", |b| b.status()["state"] == "online");
        b.assert_consistent();
        assert!(supervisors(b.t.root()).len() <= 1);
    }
}

#[test]
fn sigterm_at_random_moments_during_switches_leaves_a_consistent_box() {
    if skip() {
        return;
    }
    let mut rng = Rng::seeded();
    let b = Box_::new();
    let primary_before = b.t.read("var/ipfire/ppp/settings-1");
    let rounds = 8;
    for round in 0..rounds {
        start(&b);
        let pid = b.pid().unwrap();
        let args: &'static [&'static str] = if round % 2 == 0 {
            &["failover", "2"]
        } else {
            &["failback", "--force"]
        };
        let h = spawn_cli(b.t.root(), args, 0);
        std::thread::sleep(Duration::from_millis(rng.below(250)));
        // connscheduler's `killall connectd`: SIGTERM to the supervisor
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = h.join();
        b.wait_for("the supervisor to exit on SIGTERM", |_| !alive(pid));
        start(&b);
        b.wait_for("online after the restart", |b| {
            b.status()["state"] == "online"
        });
        b.assert_consistent();
        assert_eq!(
            b.t.read("var/ipfire/ppp/settings-1"),
            primary_before,
            "round {round}"
        );
        assert_eq!(supervisors(b.t.root()).len(), 1);
        let _ = b.connectd(&["stop"]);
    }
}

// ---------------------------------------------------------------------------------------
// 4. The fuzz corpus, replayed on stable through the same checks as the fuzz targets.
// ---------------------------------------------------------------------------------------

#[path = "../fuzz/checks.rs"]
#[allow(clippy::unwrap_used)]
mod fuzz_checks;

#[test]
fn the_fuzz_corpus_replays_through_the_same_checks_on_stable() {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let mut n = 0;
    for (dir, check) in [
        ("readhash", fuzz_checks::readhash as fn(&[u8])),
        ("policy", fuzz_checks::policy),
        ("profile", fuzz_checks::profile),
    ] {
        let mut files: Vec<PathBuf> = fs::read_dir(base.join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "no corpus for {dir}");
        for f in files {
            let data = fs::read(&f).unwrap();
            check(&data);
            // every input is also fed to the other two checks
            fuzz_checks::readhash(&data);
            fuzz_checks::policy(&data);
            fuzz_checks::profile(&data);
            n += 1;
        }
    }
    eprintln!("fuzz corpus replayed: {n} files");
}
