//! The IPFire add-on: `tools/pak` packs the test build into `connectd-VER-PAK_VER.ipfire`;
//! pakfire's steps (ipfire-2.x src/pakfire/lib/functions.pl:816-824, 873-881, 895-902)
//! run against a temporary IPFire root: the pak unpacked into `opt/pakfire/tmp`,
//! `NAME=connectd ./install.sh` there, ROOTFILES kept as `opt/pakfire/db/rootfiles/connectd`.
//! The installed tree must be the rootfile's, IPFire's own connectd kept aside, and after
//! `uninstall.sh` the box must be as before, byte for byte (content, mode, owner, mtime).
//! The add-on scripts see the root through their test seam `CONNECTD_PAK_ROOT`, and
//! `tests/pakfire/functions.sh` stands in for pakfire's library there.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use super::install::{
    Entry, ORIGINAL_CONNECTD, bin_dir, ipfire_originals, ok, repo, snapshot, write,
};
use super::util::{self, TestRoot};

/// Asserts two snapshots are equal, naming the paths that differ (not their bytes).
fn assert_same(a: &BTreeMap<PathBuf, Entry>, b: &BTreeMap<PathBuf, Entry>, what: &str) {
    let differ: Vec<String> = a
        .keys()
        .chain(b.keys())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| {
            let show = |e: Option<&Entry>| {
                e.map_or("absent".to_string(), |e| {
                    format!("{} mode {:o} owner {:?} mtime {}", e.0, e.1, e.2, e.3)
                })
            };
            format!("{}: {} / {}", k.display(), show(a.get(k)), show(b.get(k)))
        })
        .collect();
    assert!(differ.is_empty(), "{what}: differ:\n{}", differ.join("\n"));
}

/// Builds the pak once per test run (from the test build's binaries) and returns it.
fn pak() -> &'static Path {
    static PAK: OnceLock<PathBuf> = OnceLock::new();
    PAK.get_or_init(|| {
        let out =
            Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("pak-{}", std::process::id()));
        let o = Command::new("bash")
            .arg(repo().join("tools/pak"))
            .arg("--bin-dir")
            .arg(bin_dir())
            .arg("--out")
            .arg(&out)
            .env("XZ_OPT", "-0") // debug binaries: fast beats small here
            .output()
            .unwrap();
        ok(&o);
        let name = fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|e| e == "ipfire"))
            .expect("tools/pak made no .ipfire");
        let meta = fs::read_to_string(out.join("meta-connectd")).unwrap();
        let file = name.file_name().unwrap().to_string_lossy().into_owned();
        assert!(meta.contains(&format!("File: {file}\n")), "{meta}");
        assert!(meta.contains("Services: connectd\n"), "{meta}");
        name
    })
}

/// An IPFire box: the shared fixtures (or the synthetic root without them), IPFire's own
/// connectd script, pakfire's directories and our stand-in for its library.
fn ipfire_box(red_active: bool) -> TestRoot {
    let t = TestRoot::from_fixture().unwrap_or_else(TestRoot::synthetic);
    let r = t.root();
    ipfire_originals(r);
    write(
        r,
        "var/ipfire/backup/addons/includes/wio",
        "/var/ipfire/wio/wio.conf\n",
        0o644,
        90,
    );
    fs::create_dir_all(r.join("opt/pakfire/tmp")).unwrap();
    fs::create_dir_all(r.join("opt/pakfire/db/rootfiles")).unwrap();
    write(
        r,
        "opt/pakfire/lib/functions.sh",
        &fs::read_to_string(repo().join("tests/pakfire/functions.sh")).unwrap(),
        0o644,
        90,
    );
    // Directories every IPFire has (the fixtures hold only var/ipfire).
    for d in [
        "usr/sbin",
        "usr/lib",
        "usr/share",
        "usr/local/bin",
        "var/ipfire/backup/addons/backup",
        "var/ipfire/addon-lang",
        "var/ipfire/menu.d",
        "srv/web/ipfire/cgi-bin",
        "etc/rc.d/rc3.d",
    ] {
        fs::create_dir_all(r.join(d)).unwrap();
    }
    // IPFire's language cache rebuild (src/scripts/update-lang-cache): recorded here.
    write(
        r,
        "usr/local/bin/update-lang-cache",
        "#!/bin/sh\necho update-lang-cache >>\"$CONNECTD_PAK_CALLS\"\n",
        0o755,
        90,
    );
    if red_active {
        write(r, "var/ipfire/red/active", "", 0o644, 0);
    }
    t
}

/// One pakfire step: unpack the pak into opt/pakfire/tmp, run SCRIPT there as pakfire
/// does, keep or drop the rootfile, empty tmp. Returns the script's output.
fn pakfire(root: &Path, script: &str, calls: &Path) -> Output {
    let tmp = root.join("opt/pakfire/tmp");
    ok(&Command::new("tar")
        .arg("xf")
        .arg(pak())
        .arg("-C")
        .arg(&tmp)
        .output()
        .unwrap());
    let o = Command::new(format!("./{script}"))
        .current_dir(&tmp)
        .env("NAME", "connectd")
        .env("CONNECTD_PAK_ROOT", root)
        .env("CONNECTD_PAK_CALLS", calls)
        .output()
        .unwrap();
    ok(&o);
    let db = root.join("opt/pakfire/db/rootfiles/connectd");
    if script == "uninstall.sh" {
        fs::remove_file(&db).unwrap();
    } else {
        fs::rename(tmp.join("ROOTFILES"), &db).unwrap();
    }
    for e in fs::read_dir(&tmp).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            fs::remove_dir_all(&p).unwrap();
        } else {
            fs::remove_file(&p).unwrap();
        }
    }
    o
}

/// The installed tree against the rootfile: every entry there, nothing new that is
/// not an entry, a directory above one, or the init script's link and kept original.
fn check_installed(r: &Path, before: &BTreeSet<PathBuf>) {
    let rootfile = fs::read_to_string(r.join("opt/pakfire/db/rootfiles/connectd")).unwrap();
    let entries: BTreeSet<PathBuf> = rootfile.lines().map(PathBuf::from).collect();
    assert!(
        entries.contains(Path::new("usr/sbin/connectd")),
        "{rootfile}"
    );
    for e in &entries {
        assert!(
            fs::symlink_metadata(r.join(e)).is_ok(),
            "rootfile entry {} not installed",
            e.display()
        );
    }
    let after: BTreeSet<PathBuf> = snapshot(r).into_keys().collect();
    for p in after.difference(before) {
        let ok = entries.contains(p)
            || entries.iter().any(|e| e.starts_with(p))
            || p == Path::new("etc/rc.d/init.d/connectd.ipfire-orig")
            || p == Path::new("opt/pakfire/db/rootfiles/connectd");
        assert!(ok, "installed but not in the rootfile: {}", p.display());
    }

    // The binaries and scripts are ours, with IPFire's modes; IPFire's connectd is kept.
    let sbin = r.join("usr/sbin/connectd");
    assert_eq!(
        fs::read(&sbin).unwrap(),
        fs::read(env!("CARGO_BIN_EXE_connectd")).unwrap()
    );
    assert_eq!(fs::metadata(&sbin).unwrap().mode() & 0o7777, 0o755);
    assert_eq!(
        fs::read_link(r.join("usr/sbin/manage-wan-profiles")).unwrap(),
        Path::new("connectd")
    );
    let init = r.join("etc/rc.d/init.d/connectd");
    assert_eq!(
        fs::read_link(&init).unwrap(),
        Path::new("../../../usr/lib/connectd/initscript")
    );
    assert_eq!(
        fs::read(&init).unwrap(),
        fs::read(repo().join("initscripts/connectd")).unwrap()
    );
    assert_eq!(fs::metadata(&init).unwrap().mode() & 0o7777, 0o754);
    assert_eq!(
        fs::read_to_string(r.join("etc/rc.d/init.d/connectd.ipfire-orig")).unwrap(),
        ORIGINAL_CONNECTD
    );
    assert_eq!(
        fs::read(r.join("etc/rc.d/init.d/networking/red.up/99-connectd")).unwrap(),
        fs::read(repo().join("initscripts/red.up/99-connectd")).unwrap()
    );
    // The boot start of its own, after IPFire's S20network (issue 12 item 2).
    assert_eq!(
        fs::read_link(r.join("etc/rc.d/rc3.d/S21connectd")).unwrap(),
        Path::new("../init.d/connectd")
    );
    assert_eq!(
        fs::read_to_string(r.join("var/ipfire/backup/addons/includes/connectd")).unwrap(),
        "/var/ipfire/connectd\n"
    );
    // The web UI page, its menu entry and strings, and its setuid helper.
    assert_eq!(
        fs::read(r.join("srv/web/ipfire/cgi-bin/connectd.cgi")).unwrap(),
        fs::read(repo().join("wui/connectd.cgi")).unwrap()
    );
    assert!(r.join("var/ipfire/menu.d/EX-connectd.menu").is_file());
    assert!(r.join("var/ipfire/addon-lang/connectd.de.pl").is_file());
    let ctrl = fs::metadata(r.join("usr/local/bin/connectdctrl")).unwrap();
    assert_eq!(ctrl.mode() & 0o7777, 0o4750, "setuid, root and nobody only");
    if util::is_root() {
        for e in &entries {
            let m = fs::symlink_metadata(r.join(e)).unwrap();
            // IPFire's nobody is gid 99 (config/etc/group).
            let gid = if e.ends_with("connectdctrl") { 99 } else { 0 };
            assert_eq!((m.uid(), m.gid()), (0, gid), "{} owner", e.display());
        }
    } else {
        println!("pak: owners not checked: not root (the pak's files are 0:0)");
    }
}

#[test]
fn pak_install_matches_the_rootfile_and_uninstall_restores_the_box() {
    let t = ipfire_box(true);
    let r = t.root();
    let calls = t.path("../pak-calls");
    let before = snapshot(r);
    let before_paths: BTreeSet<PathBuf> = before.keys().cloned().collect();

    let o = pakfire(r, "install.sh", &calls);
    check_installed(r, &before_paths);
    // RED is up and the fixture's policy has failover on: supervision starts now.
    let log = fs::read_to_string(&calls).unwrap();
    assert_eq!(
        log,
        "update-lang-cache\nstart_service --background connectd\n",
        "install.sh: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    // The user's data is not the pak's: it is there before and after.
    assert!(r.join("var/ipfire/connectd/settings").is_file());

    pakfire(r, "uninstall.sh", &calls);
    let log = fs::read_to_string(&calls).unwrap();
    assert!(
        log.ends_with("stop_service connectd\nupdate-lang-cache\n"),
        "{log}"
    );
    assert_same(&snapshot(r), &before, "uninstall leaves the box as it was");
}

#[test]
fn pak_update_keeps_the_original_and_a_box_without_red_is_not_started() {
    let t = ipfire_box(false);
    let r = t.root();
    let calls = t.path("../pak-calls");
    let before = snapshot(r);
    let before_paths: BTreeSet<PathBuf> = before.keys().cloned().collect();

    pakfire(r, "install.sh", &calls);
    assert_eq!(
        fs::read_to_string(&calls).unwrap(),
        "update-lang-cache\n",
        "RED is down: nothing started"
    );
    fs::remove_file(&calls).unwrap();
    let installed = snapshot(r);
    // pakfire's update: the same pak over itself (uninstall.sh, then install.sh).
    pakfire(r, "update.sh", &calls);
    check_installed(r, &before_paths);
    // Files are extracted anew with the pak's mtimes; the link is made anew: the same.
    assert_same(
        &snapshot(r),
        &installed,
        "an update with the same pak changes nothing",
    );
    assert_eq!(
        fs::read_to_string(&calls).unwrap(),
        "stop_service connectd\nupdate-lang-cache\nupdate-lang-cache\n"
    );

    pakfire(r, "uninstall.sh", &calls);
    assert_same(
        &snapshot(r),
        &before,
        "uninstall after update leaves the box as it was",
    );
}

#[test]
fn pak_after_a_core_update_keeps_ipfires_newer_script() {
    let t = ipfire_box(false);
    let r = t.root();
    let calls = t.path("../pak-calls");
    pakfire(r, "install.sh", &calls);
    // A core update ships IPFire's initscripts again: its connectd replaces our link.
    let init = r.join("etc/rc.d/init.d/connectd");
    fs::remove_file(&init).unwrap();
    let newer = "#!/bin/sh\n# IPFire's connectd, from a core update\n";
    write(r, "etc/rc.d/init.d/connectd", newer, 0o754, 1);
    let core = snapshot(r)
        .remove(Path::new("etc/rc.d/init.d/connectd"))
        .unwrap();

    pakfire(r, "update.sh", &calls);
    assert!(
        fs::symlink_metadata(&init)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(
        fs::read_to_string(r.join("etc/rc.d/init.d/connectd.ipfire-orig")).unwrap(),
        newer,
        "the newer script is the one kept"
    );
    pakfire(r, "uninstall.sh", &calls);
    assert_eq!(
        snapshot(r).remove(Path::new("etc/rc.d/init.d/connectd")),
        Some(core),
        "uninstall puts IPFire's newer script back as it was"
    );
    assert!(!r.join("etc/rc.d/init.d/connectd.ipfire-orig").exists());
}
