//! tools/install and tools/uninstall on a fake IPFire root: install then uninstall leaves
//! the tree as it was (content, mode, owner, mtime), both are idempotent, and a root that
//! is not IPFire-like is refused with exit 2 and nothing written.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

/// What a tree entry looks like: kind, mode, owner, mtime (ns), content or link target.
pub(crate) type Entry = (char, u32, (u32, u32), i128, Vec<u8>);

pub(crate) fn snapshot(root: &Path) -> BTreeMap<PathBuf, Entry> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Entry>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let m = fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(base).unwrap().to_path_buf();
            let owner = (m.uid(), m.gid());
            let mtime = i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec());
            if m.file_type().is_symlink() {
                let t = fs::read_link(&p)
                    .unwrap()
                    .into_os_string()
                    .into_encoded_bytes();
                out.insert(rel, ('l', m.mode(), owner, 0, t));
            } else if m.is_dir() {
                // A directory's mtime moves whenever an entry comes and goes: not compared.
                out.insert(rel, ('d', m.mode(), owner, 0, Vec::new()));
                walk(base, &p, out);
            } else {
                out.insert(rel, ('f', m.mode(), owner, mtime, fs::read(&p).unwrap()));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

pub(crate) fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub(crate) fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_connectd"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn tool(name: &str, root: &Path, extra: &[&str]) -> Output {
    let mut cmd = Command::new("bash");
    cmd.arg(repo().join("tools").join(name))
        .arg("--root")
        .arg(root);
    if name == "install" {
        cmd.arg("--bin-dir").arg(bin_dir());
    }
    cmd.args(extra).output().unwrap()
}

pub(crate) fn ok(o: &Output) {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

pub(crate) const ORIGINAL_CONNECTD: &str =
    "#!/bin/sh\n# IPFire's own connectd\n. /etc/sysconfig/rc\necho original\n";

pub(crate) fn write(root: &Path, rel: &str, data: &str, mode: u32, age_days: u64) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(&p, data).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
    let t = SystemTime::now() - Duration::from_secs(age_days * 86_400 + 1234);
    fs::File::options()
        .write(true)
        .open(&p)
        .unwrap()
        .set_modified(t)
        .unwrap();
}

/// What every IPFire has where connectd installs: its own connectd script and a red.up
/// hook of its own (both old, so a rewrite would show in their mtime).
pub(crate) fn ipfire_originals(r: &Path) {
    write(r, "etc/rc.d/init.d/connectd", ORIGINAL_CONNECTD, 0o754, 400);
    write(
        r,
        "etc/rc.d/init.d/networking/red.up/10-static-routes",
        "#!/bin/sh\n",
        0o754,
        400,
    );
    // IPFire ships red.down/ too (src/initscripts/networking/red.down/10-static-routes).
    write(
        r,
        "etc/rc.d/init.d/networking/red.down/10-static-routes",
        "#!/bin/sh\n",
        0o754,
        400,
    );
}

/// An IPFire-like root with IPFire's original connectd script and a red.up hook of its own.
fn fake_ipfire(with_connectd_dir: bool) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    write(
        r,
        "var/ipfire/ppp/settings-1",
        "PROFILE=1\nTYPE=pppoe\n",
        0o644,
        30,
    );
    write(
        r,
        "var/ipfire/ethernet/settings",
        "RED_TYPE=PPPOE\nRED_DEV=red0\n",
        0o644,
        30,
    );
    write(
        r,
        "etc/rc.d/init.d/network",
        "#!/bin/sh\nexit 0\n",
        0o754,
        400,
    );
    ipfire_originals(r);
    if with_connectd_dir {
        // IPFire's boot link of the network script (lfs/initscripts:128); the fresh box
        // below has no rc3.d, so the install makes it and the uninstall takes it away.
        let rc3 = r.join("etc/rc.d/rc3.d");
        fs::create_dir_all(&rc3).unwrap();
        std::os::unix::fs::symlink("../init.d/network", rc3.join("S20network")).unwrap();
        write(
            r,
            "var/ipfire/connectd/settings",
            "FAILOVER_ENABLED=on\n",
            0o644,
            3,
        );
    }
    d
}

#[test]
fn install_twice_then_uninstall_twice_leaves_the_box_as_it_was() {
    let d = fake_ipfire(true);
    let r = d.path();
    let before = snapshot(r);

    ok(&tool("install", r, &[]));
    let sbin = r.join("usr/sbin/connectd");
    assert_eq!(fs::metadata(&sbin).unwrap().mode() & 0o777, 0o755);
    assert_eq!(
        fs::read(&sbin).unwrap(),
        fs::read(env!("CARGO_BIN_EXE_connectd")).unwrap()
    );
    // One binary: manage-wan-profiles is a link to connectd, which answers to that name.
    let mwp = r.join("usr/sbin/manage-wan-profiles");
    assert_eq!(fs::read_link(&mwp).unwrap(), Path::new("connectd"));
    let help = Command::new(&mwp).arg("--help").output().unwrap();
    ok(&help);
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("Usage: manage-wan-profiles"), "{help}");
    assert!(help.contains("create"), "{help}");
    assert_eq!(
        fs::read(r.join("etc/rc.d/init.d/connectd")).unwrap(),
        fs::read(repo().join("initscripts/connectd")).unwrap()
    );
    let orig = r.join("etc/rc.d/init.d/connectd.ipfire-orig");
    assert_eq!(fs::read_to_string(&orig).unwrap(), ORIGINAL_CONNECTD);
    assert_eq!(
        fs::read(r.join("etc/rc.d/init.d/networking/red.up/99-connectd")).unwrap(),
        fs::read(repo().join("initscripts/red.up/99-connectd")).unwrap()
    );
    // The boot start of its own, after S20network (a DHCP primary dead at boot never runs
    // red.up, issue 12 item 2).
    assert_eq!(
        fs::read_link(r.join("etc/rc.d/rc3.d/S21connectd")).unwrap(),
        Path::new("../init.d/connectd")
    );
    let example = r.join("etc/rc.d/init.d/networking/failover.d/50-notify.example");
    assert_eq!(
        fs::metadata(&example).unwrap().mode() & 0o111,
        0,
        "the example hook is disabled (not executable)"
    );
    assert!(
        r.join("usr/share/connectd/profiles.example/settings-dsl")
            .is_file()
    );
    assert!(
        r.join("usr/share/bash-completion/completions/connectd")
            .is_file()
    );
    assert!(r.join("var/ipfire/connectd/.installed").is_file());
    // The web UI page, its menu entry, strings and setuid helper.
    for (rel, src, mode) in [
        (
            "srv/web/ipfire/cgi-bin/connectd.cgi",
            "wui/connectd.cgi",
            0o755,
        ),
        (
            "var/ipfire/menu.d/EX-connectd.menu",
            "wui/EX-connectd.menu",
            0o644,
        ),
        (
            "var/ipfire/addon-lang/connectd.en.pl",
            "wui/lang/connectd.en.pl",
            0o644,
        ),
        (
            "var/ipfire/addon-lang/connectd.de.pl",
            "wui/lang/connectd.de.pl",
            0o644,
        ),
    ] {
        assert_eq!(
            fs::read(r.join(rel)).unwrap(),
            fs::read(repo().join(src)).unwrap(),
            "{rel}"
        );
        assert_eq!(
            fs::metadata(r.join(rel)).unwrap().mode() & 0o7777,
            mode,
            "{rel}"
        );
    }
    let ctrl = fs::metadata(r.join("usr/local/bin/connectdctrl")).unwrap();
    assert_eq!(
        ctrl.mode() & 0o7777,
        0o4750,
        "setuid, group-executable only"
    );
    if crate::util::is_root() {
        assert_eq!(ctrl.uid(), 0);
        let nobody_gid = Command::new("id").args(["-g", "nobody"]).output().unwrap();
        let gid: u32 = String::from_utf8_lossy(&nobody_gid.stdout)
            .trim()
            .parse()
            .unwrap();
        assert_eq!(ctrl.gid(), gid, "the web server's group (nobody's)");
    }
    let once = snapshot(r);

    ok(&tool("install", r, &[]));
    assert_eq!(snapshot(r), once, "installing twice is installing once");

    ok(&tool("uninstall", r, &[]));
    assert_eq!(snapshot(r), before, "uninstall restores the tree exactly");
    let again = tool("uninstall", r, &[]);
    ok(&again);
    assert!(String::from_utf8_lossy(&again.stdout).contains("nothing to do"));
    assert_eq!(snapshot(r), before);
}

#[test]
fn a_fresh_box_gets_its_directories_back_and_purge_removes_user_data() {
    let d = fake_ipfire(false);
    let r = d.path();
    let before = snapshot(r);
    ok(&tool("install", r, &[]));
    ok(&tool("uninstall", r, &[]));
    assert_eq!(snapshot(r), before);

    // User data written while installed stays, unless --purge.
    ok(&tool("install", r, &[]));
    write(r, "var/ipfire/connectd/api-token", "abc\n", 0o600, 0);
    ok(&tool("uninstall", r, &[]));
    assert!(r.join("var/ipfire/connectd/api-token").is_file());
    assert!(!r.join("var/ipfire/connectd/.installed").exists());
    assert!(!r.join("usr").exists());
    ok(&tool("install", r, &[]));
    ok(&tool("uninstall", r, &["--purge"]));
    assert_eq!(snapshot(r), before);
}

#[test]
fn a_root_that_is_not_ipfire_is_refused_untouched() {
    for make in [
        |_: &Path| {},
        |r: &Path| fs::create_dir_all(r.join("var/ipfire/ppp")).unwrap(),
        |r: &Path| write(r, "etc/rc.d/init.d/network", "#!/bin/sh\n", 0o755, 1),
    ] {
        let d = tempfile::tempdir().unwrap();
        make(d.path());
        let before = snapshot(d.path());
        for t in ["install", "uninstall"] {
            let o = tool(t, d.path(), &[]);
            assert_eq!(o.status.code(), Some(2), "{t}");
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(err.lines().count(), 1, "one message: {err}");
            assert!(err.contains("does not look like IPFire"), "{err}");
            assert_eq!(snapshot(d.path()), before, "{t} wrote nothing");
        }
    }
    let o = tool("install", Path::new("/nonexistent/connectd-root"), &[]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn a_manifest_entry_outside_our_files_is_ignored() {
    let d = fake_ipfire(true);
    let r = d.path();
    write(r, "etc/passwd", "root:x:0:0::/root:/bin/sh\n", 0o644, 10);
    ok(&tool("install", r, &[]));
    let m = r.join("var/ipfire/connectd/.installed");
    let mut text = fs::read_to_string(&m).unwrap();
    text.push_str("file\tetc/passwd\nfile\tusr/sbin/../../etc/passwd\n");
    fs::write(&m, text).unwrap();
    let o = tool("uninstall", r, &[]);
    ok(&o);
    assert!(r.join("etc/passwd").is_file());
    assert!(String::from_utf8_lossy(&o.stderr).contains("ignoring unexpected manifest entry"));
}
