//! Shared test helpers.
#![allow(dead_code)]
#![allow(clippy::unwrap_used)] // test helpers: a failed setup is a failed test

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub mod supervised;

/// The shared fixtures of an IPFire box, when present next to the repository.
pub fn fixture_box() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/ipfire-box");
    p.is_dir().then_some(p)
}

/// Whether we run as root (tests needing namespaces skip otherwise, saying why).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// A full `ethernet/settings` as setup writes it, for roots built without the fixtures.
pub const ETHERNET_SETTINGS: &str = "CONFIG_TYPE=1\nGREEN_DEV=green0\n\
GREEN_MACADDR=00:0d:b9:4a:11:20\nGREEN_DRIVER=igb\nGREEN_ADDRESS=192.168.1.1\n\
GREEN_NETMASK=255.255.255.0\nGREEN_NETADDRESS=192.168.1.0\nGREEN_BROADCAST=192.168.1.255\n\
RED_DEV=red0\nRED_MACADDR=00:0d:b9:4a:11:21\nRED_DRIVER=igb\nRED_TYPE=PPPOE\n\
RED_DHCP_HOSTNAME=ipfire\nRED_DHCP_FORCE_MTU=\nRED_ADDRESS=198.51.100.77\n\
RED_NETMASK=255.255.255.0\nRED_NETADDRESS=198.51.100.0\nRED_BROADCAST=198.51.100.255\n\
DEFAULT_GATEWAY=\nDNS1=\nDNS2=\n";

/// A WUI-written PPPoE profile 1 for roots built without the fixtures.
pub const PROFILE_1: &str = "DTERATE=115200\nPROFILENAME='Telekom DSL'\nTYPE=pppoe\n\
RECONNECTION=persistent\nHOLDOFF=30\nUSERNAME=0012345678901234567890#0001@t-online.de\n\
MAXRETRIES=5\nPPTP_NICCFG='10.0.0.140/24 broadcast 10.0.0.255'\nBACKUPPROFILE=1\n\
PASSWORD=Xy7-qP2@z\nMETHOD=PPPOE_PLUGIN\nPROFILE=1\nMTU=\n";

/// A WUI-written QMI profile 2.
pub const PROFILE_2: &str = "PROFILE=2\nPROFILENAME='LTE stick'\nTYPE=qmi\n\
APN=internet.telekom\nAUTH=pap-or-chap\nUSERNAME=telekom\nPASSWORD=tm\n\
RECONNECTION=persistent\nMAXRETRIES=5\nHOLDOFF=30\nBACKUPPROFILE=2\n";

/// A temporary IPFire root (`<tmp>/root`) with a fake network script; the script's log
/// lives outside the root (`<tmp>/network.log`) so a tree comparison of the root is exact.
pub struct TestRoot {
    dir: tempfile::TempDir,
    root: PathBuf,
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dst);
        } else {
            fs::copy(e.path(), &dst).unwrap();
            fs::set_permissions(&dst, fs::Permissions::from_mode(0o644)).unwrap();
        }
    }
}

impl TestRoot {
    fn empty() -> TestRoot {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("root")).unwrap();
        fs::create_dir(dir.path().join("proc")).unwrap();
        let root = dir.path().join("root");
        TestRoot { dir, root }
    }

    fn finish(self) -> TestRoot {
        let ppp = self.root().join("var/ipfire/ppp");
        fs::hard_link(ppp.join("settings-1"), ppp.join("settings")).unwrap();
        fs::set_permissions(ppp.join("secrets"), fs::Permissions::from_mode(0o600)).unwrap();
        for d in ["var/ipfire/red", "var/ipfire/connectd", "var/run"] {
            fs::create_dir_all(self.root().join(d)).unwrap();
        }
        self.install_fake_network();
        self
    }

    /// A copy of `../shared/fixtures/ipfire-box`, `settings` hard-linked to `settings-1`,
    /// `secrets` 0600. `None` (the caller prints `skipped`) when the fixtures are absent.
    pub fn from_fixture() -> Option<TestRoot> {
        let fx = fixture_box()?;
        let t = TestRoot::empty();
        copy_tree(&fx, t.root());
        Some(t.finish())
    }

    /// A root built from the constants above, without the shared fixtures.
    pub fn synthetic() -> TestRoot {
        let t = TestRoot::empty();
        t.write("var/ipfire/ethernet/settings", ETHERNET_SETTINGS);
        t.write("var/ipfire/ppp/settings-1", PROFILE_1);
        t.write("var/ipfire/ppp/settings-2", PROFILE_2);
        for n in 3..=5 {
            t.write(&format!("var/ipfire/ppp/settings-{n}"), "");
        }
        t.write(
            "var/ipfire/ppp/secrets",
            "'0012345678901234567890#0001@t-online.de' * 'Xy7-qP2@z'\n",
        );
        t.write("var/ipfire/red/keepconnected", "0\n");
        t.write(
            "var/ipfire/connectd/settings",
            "FAILOVER_ENABLED=on\nBACKUPPROFILE=2\nDEVICE_2=wwan0\n",
        );
        t.finish()
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A fake `/proc` (empty unless a test adds processes).
    pub fn proc_root(&self) -> PathBuf {
        self.dir.path().join("proc")
    }

    /// `connectd::ipfire::paths::Paths` for the root.
    pub fn paths(&self) -> connectd::ipfire::paths::Paths {
        connectd::ipfire::paths::Paths::new(self.root()).unwrap()
    }

    /// A file under the root.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root().join(rel)
    }

    /// Writes a file under the root, creating directories.
    pub fn write(&self, rel: &str, data: impl AsRef<[u8]>) {
        let p = self.path(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, data).unwrap();
    }

    /// Reads a file under the root.
    pub fn read(&self, rel: &str) -> Vec<u8> {
        fs::read(self.path(rel)).unwrap()
    }

    /// Inode of a file under the root.
    pub fn inode(&self, rel: &str) -> u64 {
        fs::metadata(self.path(rel)).unwrap().ino()
    }

    /// The fake network script's log: one line per call, `ARGS inode=N red_type=T`, where
    /// inode and RED_TYPE are what `ppp/settings` and `ethernet/settings` held at the call.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("network.log")
    }

    /// The log's lines.
    pub fn network_calls(&self) -> Vec<String> {
        fs::read_to_string(self.log_path())
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
    }

    /// Installs `<root>/etc/rc.d/init.d/network`: records its calls; `start` creates
    /// `red/active`, `red/iface` (from RED_DEV) and `stop` removes them, like IPFire's.
    pub fn install_fake_network(&self) {
        let script = format!(
            r#"#!/bin/sh
# Fake IPFire network script for tests.
R='{root}'
ino=$(stat -c %i "$R/var/ipfire/ppp/settings" 2>/dev/null || echo none)
rt=$(sed -n 's/^RED_TYPE=//p' "$R/var/ipfire/ethernet/settings")
echo "$* inode=$ino red_type=$rt" >> '{log}'
case "$1" in
start)
	dev=$(sed -n 's/^RED_DEV=//p' "$R/var/ipfire/ethernet/settings")
	printf '%s' "$dev" > "$R/var/ipfire/red/iface"
	touch "$R/var/ipfire/red/active"
	;;
stop)
	rm -f "$R/var/ipfire/red/active" "$R/var/ipfire/red/iface"
	;;
esac
exit 0
"#,
            root = self.root().display(),
            log = self.log_path().display()
        );
        let p = self.path("etc/rc.d/init.d/network");
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, script).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// Every file under the root: relative path -> (content, mode, inode). Comparing two
    /// snapshots shows whether anything at all was written.
    pub fn snapshot(&self) -> BTreeMap<PathBuf, (Vec<u8>, u32, u64)> {
        fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, (Vec<u8>, u32, u64)>) {
            for e in fs::read_dir(dir).unwrap() {
                let e = e.unwrap();
                let p = e.path();
                let m = fs::symlink_metadata(&p).unwrap();
                if m.is_dir() {
                    walk(base, &p, out);
                } else if m.file_type().is_symlink() {
                    // a symlink is its target (never followed: it may loop or leave the root)
                    let rel = p.strip_prefix(base).unwrap().to_path_buf();
                    let to = fs::read_link(&p).unwrap();
                    out.insert(
                        rel,
                        (to.into_os_string().into_encoded_bytes(), m.mode(), m.ino()),
                    );
                } else {
                    let rel = p.strip_prefix(base).unwrap().to_path_buf();
                    out.insert(rel, (fs::read(&p).unwrap(), m.mode(), m.ino()));
                }
            }
        }
        let mut out = BTreeMap::new();
        walk(self.root(), self.root(), &mut out);
        out
    }

    /// Runs `manage-wan-profiles --root ROOT ARGS`, with `stdin` piped in.
    pub fn mwp(&self, args: &[&str], stdin: &str) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_manage-wan-profiles"));
        cmd.arg("--root").arg(self.root()).args(args);
        run_with_stdin(cmd, stdin)
    }
}

/// The words of one line of a pppd secrets file, read the way pppd's `getword()` reads
/// them (options.c): `'` or `"` quote (a quote of the other kind is literal inside), a
/// backslash escapes the next character everywhere (also inside quotes; `\s` is a space,
/// `\n` a newline ...), `#` outside quotes starts a comment.
pub fn pppd_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        match chars.peek() {
            None | Some('#') => return words,
            _ => {}
        }
        let mut w = String::new();
        let mut quote: Option<char> = None;
        while let Some(&c) = chars.peek() {
            if quote.is_none() && (c.is_whitespace() || c == '#') {
                break; // left for the next word (or the comment)
            }
            chars.next();
            if c == '\\' {
                match chars.next() {
                    Some('s') => w.push(' '),
                    Some('n') => w.push('\n'),
                    Some('t') => w.push('\t'),
                    Some(o) => w.push(o),
                    None => break,
                }
                continue;
            }
            match quote {
                Some(q) if c == q => quote = None,
                Some(_) => w.push(c),
                None if c == '"' || c == '\'' => quote = Some(c),
                None => w.push(c),
            }
        }
        words.push(w);
    }
}

/// Runs `cmd` with `stdin` piped in, stdout/stderr captured, `CONNECTD_ROOT` cleared.
pub fn run_with_stdin(mut cmd: Command, stdin: &str) -> Output {
    use std::io::Write;
    cmd.env_remove("CONNECTD_ROOT")
        .env_remove("CONNECTD_CRASH_AT")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}
