//! Activating a profile: the only way the active profile ever changes (DESIGN.md 2).
//!
//! [`activate`] runs the steps of DESIGN.md 2 in this order, reporting each finished
//! [`Step`] to the caller's journal before it goes on:
//!
//! 1. [`Step::Intent`]: nothing has changed yet. The journal gets a [`SwitchReport`] with
//!    the RED_* values of `ethernet/settings` as they are now, so that a crash after the
//!    next steps can still restore them (and failback can restore them exactly).
//! 2. `network stop red`, while `ethernet/settings` and `ppp/settings` still describe the OLD
//!    profile (IPFire's script stops what they say), then a bounded wait until pppd and the
//!    RED dhcpcd are gone ([`Step::Stopped`]).
//! 3. `ethernet/settings`: only the RED_* keys, every other line byte for byte
//!    ([`Step::EthernetWritten`]).
//! 4. `ppp/settings` re-pointed at `settings-P` as a hard link, atomically; a hand-made
//!    `settings` is first saved as `settings-primary` ([`Step::Linked`]).
//! 5. `ppp/secrets` for P, 0600 from its creation ([`Step::SecretsWritten`]).
//! 6. `network start red` ([`Step::Started`]). Its exit code means nothing; the caller
//!    watches `red/active` (FAILOVER_CONNECT_TIMEOUT) and then calls [`flush_conntrack`]
//!    with the old RED address (step 7).
//!
//! Why this order survives a crash between any two steps: every file write is atomic
//! (temp + fsync + rename), so each file is wholly old or wholly new, and the three files
//! are derived from `to` (plus the journaled `restore` values) alone, never from each
//! other's new state. [`apply_files`] recomputes all three from `to` and rewrites whatever
//! differs, so whether a crash left none, one, two or all of them done, running it (then
//! `network stop red` and `start red`, which are idempotent) finishes the switch. Stopping
//! before any write means the old pppd/dhcpcd is never orphaned by files that already name
//! the new profile; a crash before [`Step::Stopped`] leaves every file old, so rolling back
//! is simply "start red again". The one value a later step could not recompute, the
//! primary's RED_* before the switch, is handed to the journal at [`Step::Intent`].
//!
//! `secrets` for ethernet types (DHCP, STATIC) is left as it is: pppd does not run, and the
//! credentials the WUI wrote for the primary stay intact for the way back. A dial profile
//! without `USERNAME` gets an empty secrets file. The line is `'USER' * 'PASS'`, as the WUI
//! writes it, when both words carry no `'` and no `\`; otherwise the word is double-quoted
//! with `\` and `"` escaped, which is what pppd's `getword()` reads back (it honours
//! backslash escapes inside either kind of quotes, so `\` can never sit in a single-quoted
//! word unescaped, and `'` cannot sit in one at all). `#` and spaces are literal inside
//! quotes.
//!
//! A replaced `ethernet/settings` or `secrets` keeps its owner (the WUI runs as `nobody`
//! and rewrites `secrets` on every Save) and its mode (`secrets` always 0600).
//!
//! Crash injection, for the reliability tests: when the environment variable
//! [`CRASH_ENV`] (`CONNECTD_CRASH_AT`) equals a step's [`Step::name`], the process aborts
//! right after that step was journaled.

use std::ffi::OsString;
use std::fs;
use std::io::ErrorKind;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::ipfire::ethernet::{RED_KEYS, RedValues};
use crate::ipfire::fsutil;
use crate::ipfire::paths::Paths;
use crate::ipfire::policy::Policy;
use crate::ipfire::profile::{LoadError, Profile, ProfileName};
use crate::sys::clock::{Clock, SystemClock};
use crate::sys::exec::{CmdOutcome, CommandSpec, Runner};

/// The environment variable that tells our hooks and `connectd start` who called.
pub const CALLER_ENV: &str = "CONNECTD_CALLER";
/// [`CALLER_ENV`] on the supervisor's own network-script calls.
pub const OWN_CALLER: &str = "connectd";

/// The environment variable of the crash-injection seam: a [`Step::name`].
pub const CRASH_ENV: &str = "CONNECTD_CRASH_AT";

/// A finished step of [`activate`], in order (defined with the journal that stores it).
pub use crate::ipfire::journal::Step;

/// How [`activate`] runs the network script and waits for the old session to end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwitchOptions {
    /// Deadline of each `network stop red` / `network start red`.
    pub network_timeout: Duration,
    /// How long to wait for pppd / dhcpcd of RED to exit after `network stop red`.
    pub stop_wait: Duration,
    /// Where processes are looked up: `None` is `/proc` under the root
    /// ([`Paths::proc`]); a fake tree in tests.
    pub proc_root: Option<PathBuf>,
}

impl Default for SwitchOptions {
    fn default() -> Self {
        SwitchOptions {
            // STATIC waits up to 60 s for the carrier (networking/red:142-148), then
            // runs the red.up hooks (DNS, firewall, IPsec, suricata: tens of seconds on a
            // slow box); dhcpcd waits DHCP_TIMEOUT (60 s). 90 s killed slow but good
            // bring-ups (issue 12 item 10).
            network_timeout: Duration::from_secs(180),
            stop_wait: Duration::from_secs(15),
            proc_root: None,
        }
    }
}

/// What a switch did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SwitchReport {
    /// The RED_* values of `ethernet/settings` before the switch.
    pub previous_red: RedValues,
    /// The profile active before (a hand-made `settings` counts as the profile it is saved
    /// as, `primary`); `None` when `settings` was missing.
    pub from: Option<ProfileName>,
    /// The profile activated.
    pub to: ProfileName,
}

/// Which `settings-*` shares the inode of `ppp/settings`; `None` when `settings` is missing
/// or hand-made.
pub fn active_profile(paths: &Paths) -> Result<Option<ProfileName>> {
    let Some(id) = fsutil::file_id(&paths.ppp_settings()) else {
        return Ok(None);
    };
    let dir = paths.ppp_dir();
    let mut found = Vec::new();
    for entry in fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))? {
        let entry = entry.map_err(|e| Error::io(&dir, e))?;
        let file_name = entry.file_name();
        let Some(n) = file_name.to_str().and_then(|f| f.strip_prefix("settings-")) else {
            continue;
        };
        let Ok(name) = ProfileName::new(n) else {
            continue;
        };
        if fsutil::file_id(&entry.path()) == Some(id) {
            found.push(name);
        }
    }
    found.sort();
    Ok(found.into_iter().next())
}

/// Quotes one word of pppd's secrets file (see the module documentation).
fn pppd_word(word: &str) -> String {
    if word.contains(['\'', '\\']) {
        let mut s = String::with_capacity(word.len() + 2);
        s.push('"');
        for c in word.chars() {
            if c == '"' || c == '\\' {
                s.push('\\');
            }
            s.push(c);
        }
        s.push('"');
        s
    } else {
        format!("'{word}'")
    }
}

/// The secrets line for `user` and `password`, with its newline: `'USER' * 'PASS'` as the
/// WUI writes it, or double-quoted with escapes where that cannot carry the word. Refuses
/// control characters (by key, never showing the password).
pub fn secrets_line(user: &str, password: &str) -> Result<String> {
    if user.chars().any(char::is_control) {
        return Err(Error::usage("USERNAME", "contains a control character"));
    }
    crate::ipfire::profile::check_password(password)?;
    Ok(format!("{} * {}\n", pppd_word(user), pppd_word(password)))
}

/// Everything a switch to `to` will write, computed before anything is touched.
struct Plan {
    profile: Profile,
    red_before: RedValues,
    red_after: RedValues,
    /// The new `ethernet/settings`, when it differs from the current one.
    ethernet: Option<String>,
    /// The new `secrets`, or `None` to leave it (ethernet types).
    secrets: Option<String>,
}

fn load_target(paths: &Paths, to: &ProfileName) -> Result<Profile> {
    match Profile::load(paths, to) {
        Ok(p) => Ok(p),
        Err(LoadError::Empty) => Err(Error::Parse {
            file: paths.profile(to.as_str()),
            line: None,
            msg: "is empty (an unused WUI slot, or the WUI is writing it right now); \
                  not activated"
                .into(),
        }),
        Err(LoadError::Other(e)) => Err(e),
    }
}

/// RED_DRIVER and RED_MACADDR of `dev` as the kernel reports them (the setup wizard's
/// keys): the driver's name from `/sys/class/net/DEV/device/driver`, the address from
/// `.../address`. A QMI modem not plugged in yet is `qmi_wwan` all the same (the driver
/// IPFire's network_get_intfs looks for, functions.network:63).
fn device_keys(
    paths: &Paths,
    dev: &str,
    kind: crate::ipfire::profile::Kind,
) -> (Option<String>, Option<String>) {
    let sys = paths.sys_net(dev);
    let driver = fs::read_link(sys.join("device/driver"))
        .ok()
        .and_then(|t| t.file_name().map(|n| n.to_string_lossy().into_owned()))
        .or_else(|| (kind == crate::ipfire::profile::Kind::Qmi).then(|| "qmi_wwan".to_string()));
    let mac = fsutil::read_word(&sys.join("address"));
    (driver, mac)
}

fn plan(
    paths: &Paths,
    policy: &Policy,
    to: &ProfileName,
    restore: Option<&RedValues>,
) -> Result<Plan> {
    let profile = load_target(paths, to)?;
    let eth = paths.ethernet_settings();
    let mut doc = fsutil::read_settings(&eth)?;
    let before = doc.to_text();
    let red_before = RedValues::from_doc(&doc);
    let mut set = |key: &str, value: Option<&str>| -> Result<()> {
        match value {
            Some(v) => doc.set(key, v).map_err(|e| Error::BadValue {
                file: eth.clone(),
                key: key.into(),
                value: v.into(),
                msg: e.0,
            }),
            None => {
                doc.remove(key);
                Ok(())
            }
        }
    };
    match restore {
        Some(saved) => {
            for key in RED_KEYS {
                if let Some(v) = saved.0.get(key) {
                    set(key, v.as_deref())?;
                }
            }
        }
        None => {
            set("RED_TYPE", Some(profile.kind.red_type()))?;
            let dev = profile
                .red_device(policy, red_before.get("RED_DEV"))
                .map(String::from);
            if let Some(dev) = dev {
                set("RED_DEV", Some(&dev))?;
                // Every key derived from the device goes with it (issue 12 item 7).
                // An unreadable key of the same device keeps its value; another device's
                // value never stays.
                let (driver, mac) = device_keys(paths, &dev, profile.kind);
                let moved = red_before.get("RED_DEV") != Some(dev.as_str());
                // Emptied in place, not removed: a restore puts the line back where it was.
                for (key, v) in [("RED_DRIVER", driver), ("RED_MACADDR", mac)] {
                    match v {
                        Some(v) => set(key, Some(&v))?,
                        None if moved && red_before.get(key).is_some() => set(key, Some(""))?,
                        None => {}
                    }
                }
            }
            if let Some(s) = &profile.static_cfg {
                let dns = |i: usize| s.dns.get(i).map(ToString::to_string).unwrap_or_default();
                set("RED_ADDRESS", Some(&s.ip.to_string()))?;
                set("RED_NETMASK", Some(&s.netmask.to_string()))?;
                set("RED_NETADDRESS", Some(&s.netaddress().to_string()))?;
                set("DEFAULT_GATEWAY", Some(&s.gateway.to_string()))?;
                set("DNS1", Some(&dns(0)))?;
                set("DNS2", Some(&dns(1)))?;
            }
        }
    }
    let after = doc.to_text();
    let red_after = RedValues::from_doc(&doc);
    let secrets = if profile.kind.is_dial() {
        Some(match &profile.username {
            Some(user) => secrets_line(user, &profile.password.0)?,
            None => String::new(),
        })
    } else {
        None
    };
    Ok(Plan {
        profile,
        red_before,
        red_after,
        ethernet: (after != before).then_some(after),
        secrets,
    })
}

/// A hand-made `settings` (one that shares no inode with a `settings-*`): the name it is,
/// or will be, saved as. With `write`, saves it (copy, atomic). `primary`, or `primary-2`..
/// `primary-9` when `settings-primary` already holds something else: nothing is overwritten.
fn save_handmade(paths: &Paths, write: bool) -> Result<Option<ProfileName>> {
    let settings = paths.ppp_settings();
    if fsutil::file_id(&settings).is_none() || active_profile(paths)?.is_some() {
        return Ok(None);
    }
    if let Ok(m) = fs::symlink_metadata(&settings) {
        if m.file_type().is_symlink() {
            // A symlink to a profile is handled above (it is that profile). Anything else:
            // not IPFire's hard link: it may point anywhere (outside the root, at a file
            // the web server's user controls). Never read through it, never adopt it.
            let target = fs::read_link(&settings)
                .map(|t| t.display().to_string())
                .unwrap_or_default();
            return Err(Error::Failed(format!(
                "{} links to no profile: it is a symbolic link to {target}, not IPFire's \
                 hard link to a settings-N; refusing to follow it",
                settings.display()
            )));
        }
    }
    // A plain copy of a profile is that profile (the upgrade path, issue 12 item 8).
    if let Some(name) = copy_of_profile(paths)? {
        return Ok(Some(name));
    }
    let data = fsutil::read_bounded(&settings)?;
    for i in 1..=9 {
        let n = if i == 1 {
            "primary".to_string()
        } else {
            format!("primary-{i}")
        };
        let name = ProfileName::new(&n)?;
        let path = paths.profile(&n);
        match fs::read(&path) {
            Ok(existing) if existing == data => return Ok(Some(name)),
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                if write {
                    replace_keeping_owner(&path, &data, fsutil::mode_or(&settings, 0o644))?;
                    log::warn!(
                        "{} was hand-made (a link to no profile): saved as {}",
                        settings.display(),
                        path.display()
                    );
                }
                return Ok(Some(name));
            }
            Err(e) => return Err(Error::io(&path, e)),
        }
    }
    Err(Error::Failed(format!(
        "{} is hand-made, and settings-primary..settings-primary-9 are all taken: \
         not overwriting any of them",
        settings.display()
    )))
}

/// `settings` as a plain copy of a profile (not a link): the profile whose bytes it holds.
/// IPFire's own backup switch copies the backup profile over `settings`
/// (`src/initscripts/system/connectd:82-88`, `rm` + `cp`), and so did the older failover
/// script: such a `settings` is that profile, not a hand-made one. The first by name when
/// several profiles hold the same bytes.
pub fn copy_of_profile(paths: &Paths) -> Result<Option<ProfileName>> {
    let settings = paths.ppp_settings();
    let Ok(m) = fs::symlink_metadata(&settings) else {
        return Ok(None);
    };
    if !m.file_type().is_file() || active_profile(paths)?.is_some() {
        return Ok(None);
    }
    let data = fsutil::read_bounded(&settings)?;
    let dir = paths.ppp_dir();
    let mut found = Vec::new();
    for entry in fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))? {
        let entry = entry.map_err(|e| Error::io(&dir, e))?;
        let file_name = entry.file_name();
        let Some(n) = file_name.to_str().and_then(|f| f.strip_prefix("settings-")) else {
            continue;
        };
        let Ok(name) = ProfileName::new(n) else {
            continue;
        };
        if entry.file_type().is_ok_and(|t| t.is_file())
            && fsutil::read_bounded(&entry.path()).is_ok_and(|d| d == data)
        {
            found.push(name);
        }
    }
    found.sort();
    Ok(found.into_iter().next())
}

/// A hand-made `settings` at supervisor start: saves it as `settings-primary` (see
/// `save_handmade`) and points `settings` at the copy, so the box runs the same
/// configuration under a profile name. Nothing changes when `settings` is already a link.
pub(crate) fn adopt_handmade(paths: &Paths) -> Result<Option<ProfileName>> {
    let Some(name) = save_handmade(paths, true)? else {
        return Ok(None);
    };
    hard_link_settings(paths, &name)?;
    Ok(Some(name))
}

/// Owner of `path`, else of its directory.
fn owner_of(path: &Path) -> Option<(u32, u32)> {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(path)
        .ok()
        .or_else(|| path.parent().and_then(|d| fs::metadata(d).ok()))
        .map(|m| (m.uid(), m.gid()))
}

/// [`fsutil::replace_atomically`], then the owner the file had (or its directory's). The
/// WUI runs as `nobody` and writes `ppp/secrets` on every Save: a file we replaced must stay
/// writable for it.
fn replace_keeping_owner(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    let owner = owner_of(path);
    fsutil::replace_atomically(path, data, mode)?;
    if let Some((uid, gid)) = owner {
        if let Err(e) = std::os::unix::fs::chown(path, Some(uid), Some(gid)) {
            log::debug!("{}: chown {uid}:{gid}: {e}", path.display());
        }
    }
    Ok(())
}

fn write_ethernet(paths: &Paths, plan: &Plan) -> Result<()> {
    if let Some(text) = &plan.ethernet {
        let eth = paths.ethernet_settings();
        replace_keeping_owner(&eth, text.as_bytes(), fsutil::mode_or(&eth, 0o644))?;
        log::info!(
            "{}: RED_TYPE={} RED_DEV={}",
            eth.display(),
            plan.red_after.get("RED_TYPE").unwrap_or("-"),
            plan.red_after.get("RED_DEV").unwrap_or("-")
        );
    }
    Ok(())
}

/// Makes `ppp/settings` a hard link to `settings-TO` (a hand-made `settings` saved first):
/// the step [`Step::Linked`].
fn hard_link_settings(paths: &Paths, to: &ProfileName) -> Result<()> {
    save_handmade(paths, true)?;
    let target = paths.profile(to.as_str());
    let settings = paths.ppp_settings();
    if fsutil::file_id(&settings).is_none()
        || fsutil::file_id(&settings) != fsutil::file_id(&target)
    {
        fsutil::link_atomically(&target, &settings)?;
    }
    Ok(())
}

fn write_secrets(paths: &Paths, plan: &Plan) -> Result<()> {
    if let Some(text) = &plan.secrets {
        replace_keeping_owner(&paths.ppp_secrets(), text.as_bytes(), 0o600)?;
    }
    Ok(())
}

/// Makes `ethernet/settings`, `ppp/settings` and `ppp/secrets` agree with profile `to`
/// (steps 3 to 5), idempotently: for crash recovery, and for a switch whose network part
/// the caller runs itself. `restore` (the primary's saved values) wins over the profile's
/// RED_* as in [`activate`]. Returns the RED_* values `ethernet/settings` now holds.
pub fn apply_files(
    paths: &Paths,
    policy: &Policy,
    to: &ProfileName,
    restore: Option<&RedValues>,
) -> Result<RedValues> {
    let plan = plan(paths, policy, to, restore)?;
    write_ethernet(paths, &plan)?;
    hard_link_settings(paths, to)?;
    write_secrets(paths, &plan)?;
    Ok(plan.red_after)
}

/// `<root>/etc/rc.d/init.d/network VERB red` with a deadline, its output logged. Its exit
/// code means nothing (IPFire's script returns 0 whatever happened); the outcome is returned
/// for callers that care whether it was killed at the deadline. A stop of RED by someone
/// else while it runs is marked as the administrator's (see [`network_watched`]).
pub(crate) fn network(
    runner: &dyn Runner,
    paths: &Paths,
    verb: &str,
    timeout: Duration,
) -> Result<CmdOutcome> {
    let watch = ForeignStopWatch::start(paths.proc(), paths.network_script());
    let out = network_watched(runner, paths, verb, timeout, &watch);
    if let Some(who) = watch.finish() {
        mark_foreign_stop(paths, &who, verb);
    }
    out
}

/// Writes the deliberate-stop marker for a foreign stop WHO seen during our VERB.
fn mark_foreign_stop(paths: &Paths, who: &str, verb: &str) {
    let marker = paths.red_stopped();
    if !marker.exists() {
        log::warn!("RED was stopped by another process during our {verb}: {who}");
        let _ = fsutil::replace_atomically(
            &marker,
            format!("{who} (during connectd's network {verb})\n").as_bytes(),
            0o644,
        );
    }
}

/// [`network`] under a watch the caller started (a switch keeps one from its first step
/// to its last, so that a stop between its two calls is seen too).
fn network_watched(
    runner: &dyn Runner,
    paths: &Paths,
    verb: &str,
    timeout: Duration,
    watch: &ForeignStopWatch,
) -> Result<CmdOutcome> {
    let argv: Vec<OsString> = vec![
        paths.network_script().into_os_string(),
        verb.into(),
        "red".into(),
    ];
    let mut spec = CommandSpec::new(argv, timeout);
    // Our own call: our red.down hook (reached through networking/red on STATIC) and our
    // `connectd start` (networking/red:484) know it is not the administrator's.
    spec.env.push((CALLER_ENV.into(), OWN_CALLER.into()));
    // dhcpcd's hooks do not inherit our environment: a deliberate-stop marker that our own
    // stop caused (dhcpcd -k gives RELEASE) is removed again.
    let marker = paths.red_stopped();
    let marker_before = verb == "stop" && marker.exists();
    // Someone else's stop while our call runs (the WUI's Disconnect in the middle of a
    // switch) may reach no red.down at all (networking/red stop exits early when dhcpcd
    // is not running yet, functions.network:401-406): the watch sees it, and it is marked.
    let out = runner.run(&spec);
    if let Some(who) = watch.seen() {
        mark_foreign_stop(paths, &who, verb);
    } else if verb == "stop" && !marker_before && marker.exists() {
        let _ = fs::remove_file(&marker);
    }
    let out = out?;
    if out.timed_out {
        log::warn!("{}: killed after {:?}", spec.display(), timeout);
    }
    log::debug!(
        "{}: exit {:?}: {}",
        spec.display(),
        out.code,
        out.output.trim()
    );
    Ok(out)
}

/// Watches, on a thread of its own, while our network-script calls run, for a stop of
/// RED that is not ours: IPFire's `networking/red stop` or `network stop [red]` whose
/// environment lacks our [`CALLER_ENV`]. Such a stop can be over in a few milliseconds
/// (`networking/red stop` on DHCP exits at once when dhcpcd is not running yet,
/// functions.network:401-406), too short for a `/proc` scan on a timer to see reliably:
/// every open of the network scripts (inotify `IN_OPEN`; a shell opens its script first
/// thing) triggers a scan while the opener still runs; a timer backs it up (every 250 ms,
/// every 50 ms on a box whose scripts cannot be watched).
pub(crate) struct ForeignStopWatch {
    proc_root: PathBuf,
    network: PathBuf,
    /// Closed to end the thread's wait at once.
    wake: Option<std::os::fd::OwnedFd>,
    /// Tells the thread to end (at its next wake-up at the latest).
    done: std::sync::Arc<std::sync::atomic::AtomicBool>,
    seen: std::sync::Arc<std::sync::Mutex<Option<String>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ForeignStopWatch {
    pub(crate) fn start(proc_root: PathBuf, network: PathBuf) -> ForeignStopWatch {
        use nix::poll::{PollFd, PollFlags, PollTimeout};
        use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
        use std::os::fd::AsFd;
        let seen = std::sync::Arc::new(std::sync::Mutex::new(None));
        let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)
            .ok()
            .filter(|ino| {
                let red = network.with_file_name("networking/red");
                // Either may be missing (the lab's network script does both jobs).
                let a = ino.add_watch(&network, AddWatchFlags::IN_OPEN).is_ok();
                let b = ino.add_watch(&red, AddWatchFlags::IN_OPEN).is_ok();
                a || b
            });
        // inotify wakes the thread for every open; a timer backs it up.
        let every = PollTimeout::from(if inotify.is_some() { 250u16 } else { 50 });
        // Close-on-exec: a copy of the write end in the network script's children (a
        // daemon like dhcpcd) would keep the read end from ever seeing EOF.
        let (wake_rx, wake) = match nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) {
            Ok((r, w)) => (Some(r), Some(w)),
            Err(_) => (None, None),
        };
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let quit = std::sync::Arc::clone(&done);
        let out = std::sync::Arc::clone(&seen);
        let (proc_dir, script) = (proc_root.clone(), network.clone());
        let thread = std::thread::Builder::new()
            .name("stop-watch".into())
            .spawn(move || {
                let Some(wake_rx) = wake_rx else { return };
                loop {
                    if quit.load(std::sync::atomic::Ordering::SeqCst) {
                        return;
                    }
                    if let Some(who) = foreign_stop(&proc_dir, &script) {
                        *out.lock().unwrap_or_else(|e| e.into_inner()) = Some(who);
                        return;
                    }
                    let mut fds = vec![PollFd::new(wake_rx.as_fd(), PollFlags::POLLIN)];
                    if let Some(ino) = &inotify {
                        fds.push(PollFd::new(ino.as_fd(), PollFlags::POLLIN));
                    }
                    let _ = nix::poll::poll(&mut fds, every);
                    if fds[0].revents().is_some_and(|r| !r.is_empty()) {
                        return;
                    }
                    // Drained; what was opened does not matter, the scan tells.
                    if let Some(ino) = &inotify {
                        while ino.read_events().is_ok_and(|e| !e.is_empty()) {}
                    }
                }
            })
            .ok();
        ForeignStopWatch {
            proc_root,
            network,
            wake,
            done,
            seen,
            thread,
        }
    }

    /// The foreign stop the watch's thread has seen so far, if any (no scan).
    pub(crate) fn seen_so_far(&self) -> Option<String> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The foreign stop seen so far or running now (one more scan, on this thread), if
    /// any.
    pub(crate) fn seen(&self) -> Option<String> {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.is_none() {
            *seen = foreign_stop(&self.proc_root, &self.network);
        }
        seen.clone()
    }

    /// Ends the watch (after one last look): the foreign stop seen, if any.
    pub(crate) fn finish(mut self) -> Option<String> {
        self.stop();
        self.seen()
    }

    fn stop(&mut self) {
        self.done.store(true, std::sync::atomic::Ordering::SeqCst);
        // Closing the write end makes the read end readable (EOF): the thread returns.
        drop(self.wake.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for ForeignStopWatch {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `ROOT/etc/rc.d/init.d/networking/red stop`, or `ROOT/etc/rc.d/init.d/network stop
/// [red]`, as a shell runs it (the scripts of this root only: other roots on the same
/// machine, the lab's boxes, are not ours).
fn is_stop_of_red(args: &[String], network: &Path) -> bool {
    let red = network.with_file_name("networking/red");
    let Some(i) = args
        .iter()
        .position(|a| Path::new(a) == network || Path::new(a) == red)
    else {
        return false;
    };
    let rest = &args[i + 1..];
    if rest.first().map(String::as_str) != Some("stop") {
        return false;
    }
    Path::new(&args[i]) == red || rest.get(1).is_none_or(|z| z == "red")
}

/// `ROOT/etc/rc.d/init.d/network start|restart [red]` or `…/networking/red start`.
fn is_start_of_red(args: &[String], network: &Path) -> bool {
    let red = network.with_file_name("networking/red");
    let Some(i) = args
        .iter()
        .position(|a| Path::new(a) == network || Path::new(a) == red)
    else {
        return false;
    };
    let rest = &args[i + 1..];
    match rest.first().map(String::as_str) {
        Some("start") => Path::new(&args[i]) == red || rest.get(1).is_none_or(|z| z == "red"),
        Some("restart") => Path::new(&args[i]) == network && rest.get(1).is_none_or(|z| z == "red"),
        _ => false,
    }
}

/// Someone else (connscheduler's `profile N` or `reconnect`, `redctrl restart`, the WUI's
/// Connect) is bringing RED up right now with IPFire's network script: its command line.
/// A Disconnect seen then is the first half of their restart (IPFire's `network restart
/// red` is `stop` then `start`, `system/network:104-113`): our own stop would kill their
/// new session (issue 12 item 9).
pub fn foreign_start_of_red(paths: &Paths) -> Option<String> {
    foreign_network_call(&paths.proc(), &paths.network_script(), is_start_of_red)
}

/// A process under `proc_root` stopping RED (`network`: our root's network script) that
/// is not one of ours: its command line.
fn foreign_stop(proc_root: &Path, network: &Path) -> Option<String> {
    foreign_network_call(proc_root, network, is_stop_of_red)
}

/// A process under `proc_root` whose command line `matches` and whose environment lacks
/// our [`CALLER_ENV`]: its command line.
fn foreign_network_call(
    proc_root: &Path,
    network: &Path,
    matches: fn(&[String], &Path) -> bool,
) -> Option<String> {
    let own = format!("{CALLER_ENV}={OWN_CALLER}");
    for entry in fs::read_dir(proc_root).ok()?.flatten() {
        let name = entry.file_name();
        if name.to_str().and_then(|s| s.parse::<u32>().ok()).is_none() {
            continue;
        }
        let Ok(cmdline) = fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if !matches(&args, network) {
            continue;
        }
        let Ok(environ) = fs::read(entry.path().join("environ")) else {
            continue;
        };
        if environ.split(|b| *b == 0).any(|v| v == own.as_bytes()) {
            continue;
        }
        // No environment at all: the process is exiting (the kernel answers an empty
        // `environ` once its memory is gone, after `cmdline` was still read), so whose it
        // was cannot be told: our own `network stop red` ending was taken for a foreign
        // stop and a failover abandoned (tools/bench, blackhole run 4 of 5). Every real
        // caller has an environment: even IPFire's setuid helpers exec the scripts with
        // PATH, SHELL and TERM (src/misc-progs/setuid.c:48-52). A live foreign stop is
        // seen on its script's open, long before it exits.
        if !environ.split(|b| *b == 0).any(|v| !v.is_empty()) {
            continue;
        }
        // A descendant of ours is ours, whatever environment it shows: the environment is
        // only a hint where our own call's ancestry cannot be read. A CI conformance run
        // (QMI, "boot, primary dead") took a `network stop red` for foreign while only our
        // own ran, and the box stayed offline as after a Disconnect.
        let pid = name.to_str().and_then(|s| s.parse::<u32>().ok());
        if pid.is_some_and(|p| descends_from_us(proc_root, p)) {
            continue;
        }
        let who = args.join(" ");
        log::debug!("foreign network call: PID {pid:?}: {who}");
        return Some(who);
    }
    None
}

/// Whether process `pid` under `proc_root` is this process or descends from it (its
/// parents, read from `stat`, lead to us before they reach init).
fn descends_from_us(proc_root: &Path, pid: u32) -> bool {
    let me = std::process::id();
    let mut p = pid;
    // A bound against a loop in a fake or changing /proc.
    for _ in 0..64 {
        if p == me {
            return true;
        }
        match parent_of(proc_root, p) {
            Some(parent) if parent > 1 => p = parent,
            _ => return false,
        }
    }
    false
}

/// The parent PID in `/proc/PID/stat` (the field after the state, which follows the last
/// `)`: the command name in parentheses may hold anything).
fn parent_of(proc_root: &Path, pid: u32) -> Option<u32> {
    let stat = fs::read_to_string(proc_root.join(pid.to_string()).join("stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// PIDs under `proc_root` of pppd (any: on IPFire only RED runs pppd) and of a dhcpcd with
/// `red_dev` among its arguments. Processes in another network namespace than ours are not
/// RED's and are skipped (when `ns/net` is readable).
/// Whether `/proc/PID` is a process that has exited and waits to be reaped (state `Z` or
/// `X` in `stat`): it holds no device and no session any more. An orphaned pppd is reaped by
/// init or a subreaper, which may take its time (1-2 s in the lab): not a reason to wait.
fn is_zombie(proc_pid: &Path) -> bool {
    fs::read_to_string(proc_pid.join("stat")).is_ok_and(|stat| {
        stat.rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().next())
            .is_some_and(|state| state == "Z" || state == "X")
    })
}

pub(crate) fn red_daemons(proc_root: &Path, red_dev: Option<&str>) -> Vec<u32> {
    let own_ns = fs::read_link(proc_root.join("self/ns/net")).ok();
    let Ok(dir) = fs::read_dir(proc_root) else {
        return Vec::new();
    };
    let mut pids = Vec::new();
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let p = entry.path();
        let Ok(comm) = fs::read_to_string(p.join("comm")) else {
            continue;
        };
        let hit = match comm.trim_end() {
            "pppd" => true,
            "dhcpcd" => match (red_dev, fs::read(p.join("cmdline"))) {
                (Some(dev), Ok(cmd)) => String::from_utf8_lossy(&cmd)
                    .split(|c: char| c == '\0' || c.is_whitespace())
                    .any(|w| w == dev),
                _ => false,
            },
            _ => false,
        };
        if !hit || is_zombie(&p) {
            continue;
        }
        if let (Some(own), Ok(theirs)) = (&own_ns, fs::read_link(p.join("ns/net"))) {
            if *own != theirs {
                continue;
            }
        }
        pids.push(pid);
    }
    pids.sort_unstable();
    pids
}

impl SwitchOptions {
    /// Where processes are looked up for the box under `paths`.
    pub fn proc_root(&self, paths: &Paths) -> PathBuf {
        self.proc_root.clone().unwrap_or_else(|| paths.proc())
    }
}

/// Waits, up to `opts.stop_wait`, until pppd and RED's dhcpcd are gone after a stop.
pub(crate) fn wait_gone(paths: &Paths, opts: &SwitchOptions, red_dev: Option<&str>) {
    let clock = SystemClock;
    let proc_root = opts.proc_root(paths);
    let start = clock.now();
    let mut first: Option<Vec<String>> = None;
    loop {
        let pids = red_daemons(&proc_root, red_dev);
        if pids.is_empty() {
            if let Some(f) = first {
                // (how long IPFire's stop left its daemons running: the stop phase of
                // tools/bench's decomposition)
                log::info!(
                    "pppd/dhcpcd of RED ({}) gone {:.3} s after the stop returned",
                    f.join("; "),
                    clock.now().saturating_duration_since(start).as_secs_f64()
                );
            }
            return;
        }
        first.get_or_insert_with(|| {
            pids.iter()
                .map(|p| {
                    let cmd = fs::read(proc_root.join(p.to_string()).join("cmdline"))
                        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
                        .unwrap_or_default();
                    format!(
                        "{p} {}",
                        cmd.trim_end().chars().take(60).collect::<String>()
                    )
                })
                .collect()
        });
        if clock.now().saturating_duration_since(start) >= opts.stop_wait {
            log::warn!(
                "pppd/dhcpcd of RED still running after {:?} (pids {pids:?}); switching anyway",
                opts.stop_wait
            );
            return;
        }
        // A process exit has no descriptor to wait on: look again every 50 ms.
        clock.sleep(Duration::from_millis(50));
    }
}

/// Our `network start red` of a switch, under the switch's watch. Once the
/// administrator's stop is seen while it runs, what our start brings up is stopped again
/// and again (our own `network stop red`, every 100 ms) until it returns: their stop may
/// have come before there was anything to stop (`networking/red stop` on DHCP exits when
/// dhcpcd is not running yet, functions.network:401-406), and a dhcpcd our start is still
/// waiting on must not get its lease under their Disconnect.
fn start_unless_stopped(
    runner: &(dyn Runner + Sync),
    paths: &Paths,
    opts: &SwitchOptions,
    watch: &ForeignStopWatch,
) -> Result<CmdOutcome> {
    let clock = SystemClock;
    std::thread::scope(|s| {
        let start =
            s.spawn(|| network_watched(runner, paths, "start", opts.network_timeout, watch));
        let mut marked = false;
        while !start.is_finished() {
            if let Some(who) = watch.seen_so_far() {
                if !marked {
                    mark_foreign_stop(paths, &who, "start");
                    marked = true;
                }
                let _ = network(runner, paths, "stop", opts.network_timeout);
                clock.sleep(Duration::from_millis(100));
            } else {
                clock.sleep(Duration::from_millis(50));
            }
        }
        start
            .join()
            .unwrap_or_else(|_| Err(Error::Failed("network start red: the thread died".into())))
    })
}

fn crash_point(step: Step) {
    if std::env::var(CRASH_ENV).as_deref() == Ok(step.name()) {
        log::error!("{CRASH_ENV}={}: aborting on purpose", step.name());
        std::process::abort();
    }
}

/// Activates profile `to`: DESIGN.md 2 steps 1 to 6 (see the module documentation).
///
/// Everything that can be refused (missing or empty profile, bad values, an unreadable
/// `ethernet/settings`, a password pppd cannot take) is refused before the journal sees
/// [`Step::Intent`] and before anything runs or is written. `journal` is called after each
/// step with the report; its error aborts the switch there. `restore`: the primary's RED_*
/// values saved at the switch away from it (from [`SwitchReport::previous_red`]); when given
/// they are written instead of the profile's. Returns once `network start red` returned;
/// whether RED comes up is the caller's to watch (`red/active`).
pub fn activate(
    paths: &Paths,
    runner: &(dyn Runner + Sync),
    policy: &Policy,
    to: &ProfileName,
    restore: Option<&RedValues>,
    opts: &SwitchOptions,
    journal: &mut dyn FnMut(Step, &SwitchReport) -> Result<()>,
) -> Result<SwitchReport> {
    let first = plan(paths, policy, to, restore)?;
    for w in &first.profile.warnings {
        log::warn!("{w}");
    }
    let from = match save_handmade(paths, false)? {
        Some(n) => Some(n),
        None => active_profile(paths)?,
    };
    let report = SwitchReport {
        previous_red: first.red_before.clone(),
        from,
        to: to.clone(),
    };
    log::info!(
        "activating profile {to} ({}) from {}",
        first.profile.display_name,
        report
            .from
            .as_ref()
            .map_or_else(|| "no profile".to_string(), ToString::to_string)
    );
    let mut done = |step: Step| -> Result<()> {
        journal(step, &report)?;
        crash_point(step);
        Ok(())
    };
    // One watch for the whole switch: a foreign stop between our two calls (while the
    // files are written) is the administrator's too.
    let watch = ForeignStopWatch::start(paths.proc(), paths.network_script());
    let stopped_meanwhile = |watch: &ForeignStopWatch| {
        if let Some(who) = watch.seen() {
            mark_foreign_stop(paths, &who, "switch");
        }
        paths.red_stopped().exists()
    };
    done(Step::Intent)?;

    // The phase lines below (stop done, start returned) are the boundaries tools/bench's
    // decomposition of a switch reads (BENCHMARKS.md).
    let clock = SystemClock;
    let t_stop = clock.now();
    network_watched(runner, paths, "stop", opts.network_timeout, &watch)?;
    let t_script = clock.now().saturating_duration_since(t_stop);
    wait_gone(paths, opts, report.previous_red.get("RED_DEV"));
    log::info!(
        "switch to {to}: RED stopped in {:.3} s (network stop red {:.3} s)",
        clock.now().saturating_duration_since(t_stop).as_secs_f64(),
        t_script.as_secs_f64()
    );
    // The administrator stopped RED meanwhile (our red.down hook's or our stop-watch's
    // marker): the switch is abandoned before any file changes, nothing is brought up.
    if stopped_meanwhile(&watch) {
        return Err(Error::Failed(
            "RED was stopped deliberately during the switch: abandoned, the files unchanged".into(),
        ));
    }
    done(Step::Stopped)?;

    // Computed again: the stop may have taken a while, and the WUI may have saved meanwhile.
    let plan = plan(paths, policy, to, restore)?;
    write_ethernet(paths, &plan)?;
    done(Step::EthernetWritten)?;
    hard_link_settings(paths, to)?;
    done(Step::Linked)?;
    write_secrets(paths, &plan)?;
    done(Step::SecretsWritten)?;
    // Stopped while the files were written: the files are the new profile's (whole and
    // consistent), nothing is brought up.
    if stopped_meanwhile(&watch) {
        return Err(Error::Failed(
            "RED was stopped deliberately during the switch: abandoned before the start".into(),
        ));
    }

    let t_start = clock.now();
    let started = start_unless_stopped(runner, paths, opts, &watch);
    log::info!(
        "switch to {to}: network start red returned in {:.3} s (red/active {})",
        clock.now().saturating_duration_since(t_start).as_secs_f64(),
        if paths.red_active().exists() {
            "present"
        } else {
            "not yet"
        }
    );
    if let Some(who) = watch.finish() {
        mark_foreign_stop(paths, &who, "start");
    }
    // Stopped while our start ran: the administrator's stop may have found nothing to
    // stop yet (networking/red stop exits when dhcpcd is not running yet,
    // functions.network:401-406) and our start then brought the profile up anyway. Their
    // stop wins: RED is stopped again and the switch does not complete.
    if paths.red_stopped().exists() {
        log::warn!("RED was stopped deliberately while profile {to} came up: stopping it again");
        let _ = network(runner, paths, "stop", opts.network_timeout);
        wait_gone(paths, opts, plan.red_after.get("RED_DEV"));
        return Err(Error::Failed(
            "RED was stopped deliberately during the switch: abandoned, RED stopped again".into(),
        ));
    }
    started?;
    done(Step::Started)?;
    Ok(report)
}

/// Step 7 with the `conntrack` tool found in `PATH`: drops the conntrack entries still bound
/// to the old RED address. Returns whether the tool was there to run.
pub fn flush_conntrack(runner: &dyn Runner, old_addr: Ipv4Addr) -> Result<bool> {
    match crate::sys::exec::find_in_path("conntrack") {
        Some(prog) => {
            flush_conntrack_with(runner, &prog, old_addr)?;
            Ok(true)
        }
        None => {
            log::debug!("conntrack not installed: entries of {old_addr} expire by themselves");
            Ok(false)
        }
    }
}

/// [`flush_conntrack`] with the program given: `conntrack -D -q ADDR` (flows NATed to the
/// old address: their replies go to it) and `conntrack -D -s ADDR` (flows the box itself
/// opened from it). "Nothing to delete" is not an error.
pub fn flush_conntrack_with(runner: &dyn Runner, program: &Path, old_addr: Ipv4Addr) -> Result<()> {
    for flag in ["-q", "-s"] {
        let spec = CommandSpec::new(
            [
                program.as_os_str().to_owned(),
                "-D".into(),
                flag.into(),
                old_addr.to_string().into(),
            ],
            Duration::from_secs(10),
        );
        let out = runner.run(&spec)?;
        log::debug!(
            "{}: exit {:?}: {}",
            spec.display(),
            out.code,
            out.output.trim()
        );
    }
    log::info!("dropped conntrack entries of the old RED address {old_addr}");
    Ok(())
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests build fixtures with plain writes
mod tests {
    use super::*;
    use crate::ipfire::readhash::Document;

    /// A network script that runs our red.down hook the way dhcpcd would (RELEASE, without
    /// our environment): it writes the deliberate-stop marker. Records the environment.
    struct ReleasingNetwork {
        marker: PathBuf,
        env: std::sync::Mutex<Vec<(String, String)>>,
    }

    impl Runner for ReleasingNetwork {
        fn run(&self, cmd: &CommandSpec) -> Result<crate::sys::exec::CmdOutcome> {
            *self.env.lock().unwrap() = cmd.env.clone();
            fs::write(&self.marker, "dhcpcd RELEASE on red0\n").unwrap();
            Ok(crate::sys::exec::CmdOutcome {
                code: Some(0),
                timed_out: false,
                output: String::new(),
            })
        }
    }

    #[test]
    fn our_own_stop_is_never_taken_for_a_deliberate_one() {
        let d = tempfile::tempdir().unwrap();
        let paths = Paths::new(d.path()).unwrap();
        fsutil::ensure_dir(&paths.connectd_dir()).unwrap();
        let net = ReleasingNetwork {
            marker: paths.red_stopped(),
            env: Default::default(),
        };
        network(&net, &paths, "stop", Duration::from_secs(1)).unwrap();
        assert!(
            !paths.red_stopped().exists(),
            "our stop left a Disconnect marker"
        );
        assert!(
            net.env
                .lock()
                .unwrap()
                .contains(&(CALLER_ENV.to_string(), OWN_CALLER.to_string())),
            "our calls must mark their environment"
        );
        // A marker that was there before our stop is the administrator's: it stays.
        network(&net, &paths, "stop", Duration::from_secs(1)).unwrap();
        fs::write(paths.red_stopped(), "x").unwrap();
        network(&net, &paths, "stop", Duration::from_secs(1)).unwrap();
        assert!(paths.red_stopped().exists());
        // One that appears during our start (a Disconnect while we bring a line up) stays.
        fs::remove_file(paths.red_stopped()).unwrap();
        network(&net, &paths, "start", Duration::from_secs(1)).unwrap();
        assert!(paths.red_stopped().exists());
    }

    #[test]
    fn red_driver_and_every_device_key_switch_and_restore_with_red_dev() {
        // Issue 12 item 7: IPFire tells QMI from PPPoE by RED_DRIVER
        // (functions.network:63): a stale e1000e on a QMI RED makes it ppp0.
        let d = tempfile::tempdir().unwrap();
        let paths = Paths::new(d.path()).unwrap();
        fs::create_dir_all(paths.ppp_dir()).unwrap();
        fs::create_dir_all(paths.ethernet_settings().parent().unwrap()).unwrap();
        for (dev, driver, mac) in [
            ("red0", "e1000e", "52:54:00:00:00:01"),
            ("wwan0", "qmi_wwan", "52:54:00:00:00:02"),
        ] {
            let sys = paths.sys_net(dev);
            fs::create_dir_all(sys.join("device")).unwrap();
            let drv = d.path().join("sys/bus/drivers").join(driver);
            fs::create_dir_all(&drv).unwrap();
            std::os::unix::fs::symlink(&drv, sys.join("device/driver")).unwrap();
            fs::write(sys.join("address"), format!("{mac}\n")).unwrap();
        }
        fs::write(
            paths.ethernet_settings(),
            "RED_TYPE=PPPOE\nRED_DEV=red0\nRED_DRIVER=e1000e\nRED_MACADDR=52:54:00:00:00:01\n",
        )
        .unwrap();
        fs::write(
            paths.profile("lte"),
            "PROFILENAME='LTE'\nTYPE=qmi\nDEVICE=wwan0\nAPN=internet\n",
        )
        .unwrap();
        let policy = Policy::default();
        let lte = ProfileName::new("lte").unwrap();
        let p = plan(&paths, &policy, &lte, None).unwrap();
        assert_eq!(p.red_after.get("RED_DEV"), Some("wwan0"));
        assert_eq!(p.red_after.get("RED_DRIVER"), Some("qmi_wwan"));
        assert_eq!(p.red_after.get("RED_MACADDR"), Some("52:54:00:00:00:02"));
        // The primary's values come back exactly (failback restores the saved RED_*).
        let saved = p.red_before.clone();
        fs::write(paths.ethernet_settings(), p.ethernet.unwrap()).unwrap();
        let back = plan(&paths, &policy, &lte, Some(&saved)).unwrap();
        assert_eq!(back.red_after.get("RED_DRIVER"), Some("e1000e"));
        assert_eq!(back.red_after.get("RED_MACADDR"), Some("52:54:00:00:00:01"));
        assert_eq!(back.red_after.get("RED_DEV"), Some("red0"));
    }

    #[test]
    fn someone_elses_stop_during_our_network_call_is_a_deliberate_stop() {
        let d = tempfile::tempdir().unwrap();
        let paths = Paths::new(d.path()).unwrap();
        fsutil::ensure_dir(&paths.connectd_dir()).unwrap();
        let proc_dir = paths.proc();
        let network = paths.network_script();
        let net_s = network.display().to_string();
        let red_s = network
            .with_file_name("networking/red")
            .display()
            .to_string();
        let pid = |n: u32, args: &[&str], env: &[&str]| {
            let p = proc_dir.join(n.to_string());
            fs::create_dir_all(&p).unwrap();
            fs::write(p.join("cmdline"), args.join("\0") + "\0").unwrap();
            fs::write(p.join("environ"), env.join("\0") + "\0").unwrap();
        };
        // Our own stop (its child networking/red inherits our environment): not foreign.
        pid(
            20,
            &["/bin/bash", &red_s, "stop"],
            &["PATH=/bin", "CONNECTD_CALLER=connectd"],
        );
        pid(21, &["/bin/bash", &red_s, "start"], &["PATH=/bin"]);
        // Another root's (another lab box on the same machine): not ours.
        pid(
            23,
            &["/bin/bash", "/etc/rc.d/init.d/networking/red", "stop"],
            &[],
        );
        // A stop that is exiting: the kernel gives its cmdline but no environment any
        // more (whose it was cannot be told; ours ending raced the scan).
        pid(24, &["/bin/bash", &net_s, "stop", "red"], &[]);
        fs::write(proc_dir.join("24/environ"), b"").unwrap();
        assert_eq!(foreign_stop(&proc_dir, &network), None);
        fs::remove_dir_all(proc_dir.join("24")).unwrap();
        // A descendant of ours (its parent's parent is this process) without our variable
        // in what its environ shows: ours all the same.
        let me = std::process::id();
        pid(25, &["/bin/bash", &net_s, "stop", "red"], &["PATH=/bin"]);
        fs::write(proc_dir.join("25/stat"), "25 (network) S 26 25 25 0").unwrap();
        pid(26, &["/bin/bash", "x"], &["PATH=/bin"]);
        fs::write(proc_dir.join("26/stat"), format!("26 (a) b) S {me} 1 1 0")).unwrap();
        assert_eq!(foreign_stop(&proc_dir, &network), None);
        // Not ours once the chain reaches init without us.
        fs::write(proc_dir.join("26/stat"), "26 (a) b) S 1 1 1 0").unwrap();
        assert!(foreign_stop(&proc_dir, &network).is_some());
        fs::remove_dir_all(proc_dir.join("25")).unwrap();
        fs::remove_dir_all(proc_dir.join("26")).unwrap();
        let net = ReleasingNetwork {
            marker: d.path().join("elsewhere"),
            env: Default::default(),
        };
        network_call(&net, &paths, "start");
        assert!(!paths.red_stopped().exists());
        // The WUI's Disconnect (redctrl stop -> network stop red) while our start runs.
        pid(22, &["/bin/sh", &net_s, "stop", "red"], &["PATH=/bin"]);
        assert!(foreign_stop(&proc_dir, &network).is_some());
        network_call(&net, &paths, "start");
        assert!(paths.red_stopped().exists());
        assert!(is_stop_of_red(&[net_s.clone(), "stop".into()], &network));
        // connscheduler's `profile N`: `network restart red` is stop then start; the
        // WUI's Connect a start.
        assert!(
            foreign_start_of_red(&paths)
                .unwrap()
                .ends_with("networking/red start")
        );
        fs::remove_dir_all(proc_dir.join("21")).unwrap();
        assert_eq!(foreign_start_of_red(&paths), None);
        pid(24, &["/bin/sh", &net_s, "restart", "red"], &["PATH=/bin"]);
        assert!(foreign_start_of_red(&paths).is_some());
        assert!(!is_stop_of_red(
            &[net_s, "stop".into(), "green".into()],
            &network
        ));
    }

    #[test]
    fn a_disconnect_during_our_stop_abandons_the_switch_with_the_files_unchanged() {
        // The WUI's Disconnect (`network stop red`, not ours) while a failover stops the
        // primary: nothing is brought up, nothing is half-switched.
        let d = tempfile::tempdir().unwrap();
        let paths = Paths::new(d.path()).unwrap();
        fsutil::ensure_dir(&paths.connectd_dir()).unwrap();
        fs::create_dir_all(paths.ppp_dir()).unwrap();
        fs::create_dir_all(paths.ethernet_settings().parent().unwrap()).unwrap();
        fs::write(paths.ethernet_settings(), "RED_TYPE=DHCP\nRED_DEV=red0\n").unwrap();
        fs::write(paths.profile("1"), "PROFILE=1\nTYPE=DHCP\n").unwrap();
        fs::write(paths.profile("2"), "PROFILE=2\nTYPE=DHCP\nDEVICE=red1\n").unwrap();
        fs::hard_link(paths.profile("1"), paths.ppp_settings()).unwrap();
        let p = paths.proc().join("30");
        fs::create_dir_all(&p).unwrap();
        let net_s = paths.network_script().display().to_string();
        fs::write(p.join("cmdline"), format!("/bin/sh\0{net_s}\0stop\0red\0")).unwrap();
        fs::write(p.join("environ"), "PATH=/bin\0").unwrap();
        let net = ReleasingNetwork {
            marker: d.path().join("elsewhere"),
            env: Default::default(),
        };
        let mut steps = Vec::new();
        let r = activate(
            &paths,
            &net,
            &Policy::default(),
            &ProfileName::new("2").unwrap(),
            None,
            &SwitchOptions {
                network_timeout: Duration::from_secs(1),
                stop_wait: Duration::ZERO,
                proc_root: Some(d.path().join("none")),
            },
            &mut |step, _| {
                steps.push(step);
                Ok(())
            },
        );
        assert!(r.is_err(), "the switch went on");
        assert_eq!(steps, [Step::Intent], "no step after the stop");
        assert_eq!(active_profile(&paths).unwrap().unwrap().as_str(), "1");
        assert_eq!(
            fs::read_to_string(paths.ethernet_settings()).unwrap(),
            "RED_TYPE=DHCP\nRED_DEV=red0\n"
        );
    }

    /// A network script whose `start` runs while the administrator's `network stop red`
    /// appears (and is over before the start returns, as `networking/red stop` on DHCP
    /// with dhcpcd not running yet): records the verbs it was called with.
    struct StopDuringStart {
        proc_pid: PathBuf,
        script: String,
        verbs: std::sync::Mutex<Vec<String>>,
    }

    impl Runner for StopDuringStart {
        fn run(&self, cmd: &CommandSpec) -> Result<crate::sys::exec::CmdOutcome> {
            let verb = cmd.argv[1].to_string_lossy().into_owned();
            if verb == "start" {
                fs::create_dir_all(&self.proc_pid).unwrap();
                fs::write(self.proc_pid.join("environ"), "PATH=/bin\0").unwrap();
                fs::write(
                    self.proc_pid.join("cmdline"),
                    format!("/bin/sh\0{}\0stop\0red\0", self.script),
                )
                .unwrap();
                std::thread::sleep(Duration::from_millis(300));
                fs::remove_dir_all(&self.proc_pid).unwrap();
            }
            self.verbs.lock().unwrap().push(verb);
            Ok(crate::sys::exec::CmdOutcome {
                code: Some(0),
                timed_out: false,
                output: String::new(),
            })
        }
    }

    #[test]
    fn a_watch_ends_at_once_even_with_a_daemon_started_meanwhile() {
        // The network script's start leaves a daemon behind (dhcpcd): it must hold none
        // of the watch's descriptors, and the watch must end when our call does (a
        // redial's `network start red` never returned: the supervisor hung for minutes).
        let d = tempfile::tempdir().unwrap();
        let paths = Paths::new(d.path()).unwrap();
        fs::create_dir_all(paths.proc()).unwrap();
        let watch = ForeignStopWatch::start(paths.proc(), paths.network_script());
        let mut daemon = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let t = std::time::Instant::now();
        assert_eq!(watch.finish(), None);
        let took = t.elapsed();
        let _ = daemon.kill();
        let _ = daemon.wait();
        assert!(
            took < Duration::from_secs(1),
            "the watch took {took:?} to end"
        );
    }

    #[test]
    fn a_foreign_stop_over_in_milliseconds_is_seen_through_the_scripts_open() {
        // `networking/red stop` on DHCP with dhcpcd not running yet lives a few ms
        // (functions.network:401-406): a timer between scans misses it; the script's
        // open (inotify) triggers a scan while it runs.
        let d = tempfile::tempdir().unwrap();
        let paths = Paths::new(d.path()).unwrap();
        let script = paths.network_script();
        fs::create_dir_all(script.parent().unwrap()).unwrap();
        fs::write(&script, "#!/bin/sh\n").unwrap();
        fs::create_dir_all(paths.proc()).unwrap();
        let watch = ForeignStopWatch::start(paths.proc(), script.clone());
        // Between two timer scans (every 50 ms without inotify): only the open tells.
        std::thread::sleep(Duration::from_millis(125));
        let p = paths.proc().join("60");
        fs::create_dir_all(&p).unwrap();
        fs::write(p.join("environ"), "PATH=/bin\0").unwrap();
        let cmd = format!("/bin/sh\0{}\0stop\0red\0", script.display());
        fs::write(p.join("cmdline"), cmd).unwrap();
        drop(fs::File::open(&script).unwrap()); // the shell opens its script
        std::thread::sleep(Duration::from_millis(10));
        fs::remove_dir_all(&p).unwrap();
        let who = watch.finish();
        assert!(who.is_some_and(|w| w.ends_with("stop red")));
    }

    #[test]
    fn a_disconnect_during_our_start_stops_red_again_and_the_switch_does_not_complete() {
        // Issue 12 item 3, "Disconnect during failover" on DHCP/STATIC/QMI: the WUI's
        // Disconnect lands while the backup comes up and finds nothing to stop yet; our
        // start would bring the backup up under it. The administrator's stop wins.
        let d = tempfile::tempdir().unwrap();
        let paths = Paths::new(d.path()).unwrap();
        fsutil::ensure_dir(&paths.connectd_dir()).unwrap();
        fs::create_dir_all(paths.ppp_dir()).unwrap();
        fs::create_dir_all(paths.ethernet_settings().parent().unwrap()).unwrap();
        fs::write(paths.ethernet_settings(), "RED_TYPE=STATIC\nRED_DEV=red0\n").unwrap();
        fs::write(paths.profile("1"), "PROFILE=1\nTYPE=STATIC\n").unwrap();
        fs::write(paths.profile("2"), "PROFILE=2\nTYPE=DHCP\nDEVICE=red1\n").unwrap();
        fs::hard_link(paths.profile("1"), paths.ppp_settings()).unwrap();
        fs::create_dir_all(paths.proc()).unwrap();
        let net = StopDuringStart {
            proc_pid: paths.proc().join("40"),
            script: paths.network_script().display().to_string(),
            verbs: Default::default(),
        };
        let mut steps = Vec::new();
        let r = activate(
            &paths,
            &net,
            &Policy::default(),
            &ProfileName::new("2").unwrap(),
            None,
            &SwitchOptions {
                network_timeout: Duration::from_secs(1),
                stop_wait: Duration::ZERO,
                proc_root: Some(d.path().join("none")),
            },
            &mut |step, _| {
                steps.push(step);
                Ok(())
            },
        );
        assert!(
            r.is_err(),
            "the switch completed under the administrator's stop"
        );
        assert!(!steps.contains(&Step::Started), "{steps:?}");
        // Our stop of the old profile; then, while our start still runs, our stops of
        // what it brings up; after it, one more.
        let verbs = net.verbs.lock().unwrap().clone();
        let start = verbs.iter().position(|v| v == "start").unwrap();
        assert!(start >= 2, "no stop while our start ran: {verbs:?}");
        assert!(verbs[..start].iter().all(|v| v == "stop"), "{verbs:?}");
        assert_eq!(verbs[start + 1..], ["stop"], "{verbs:?}");
        assert!(paths.red_stopped().exists(), "the Disconnect is marked");
        // The files are whole: all of the new profile's (the supervisor's Disconnect then
        // gives them back to the primary, effects.rs end_episode_files).
        assert_eq!(active_profile(&paths).unwrap().unwrap().as_str(), "2");
        let eth = fs::read_to_string(paths.ethernet_settings()).unwrap();
        assert!(
            eth.contains("RED_TYPE=DHCP") && eth.contains("RED_DEV=red1"),
            "{eth}"
        );
    }

    fn network_call(runner: &dyn Runner, paths: &Paths, verb: &str) {
        network(runner, paths, verb, Duration::from_secs(1)).unwrap();
    }

    #[test]
    fn the_network_script_deadline_covers_statics_carrier_wait_and_slow_red_up_hooks() {
        // networking/red:142-148 waits 60 s for STATIC's carrier, dhcpcd DHCP_TIMEOUT 60 s;
        // the red.up hooks run after that in the same call.
        let carrier_wait = Duration::from_secs(60);
        let slow_hooks = Duration::from_secs(60);
        assert!(SwitchOptions::default().network_timeout >= carrier_wait + slow_hooks);
    }

    #[test]
    fn secrets_line_is_the_wuis_when_it_can_be() {
        assert_eq!(
            secrets_line("0012#0001@t-online.de", "Xy7-qP2@z").unwrap(),
            "'0012#0001@t-online.de' * 'Xy7-qP2@z'\n"
        );
        assert_eq!(
            secrets_line("u", "a \"b\" #c").unwrap(),
            "'u' * 'a \"b\" #c'\n"
        );
        // ' and \ cannot sit in a single-quoted pppd word: double quotes, \ and " escaped.
        assert_eq!(
            secrets_line("u", "it's a\\b \"c\"").unwrap(),
            "'u' * \"it's a\\\\b \\\"c\\\"\"\n"
        );
        assert!(secrets_line("u", "a\nb").is_err());
        assert!(secrets_line("u\n", "x").is_err());
        let e = secrets_line("u", "hunter2\r").unwrap_err().to_string();
        assert!(e.contains("PASSWORD") && !e.contains("hunter2"), "{e}");
    }

    #[test]
    fn red_values_keep_absent_keys_absent() {
        let doc = Document::parse("GREEN_DEV=green0\nRED_TYPE=DHCP\nRED_DEV=red0\nDNS1=\n");
        let r = RedValues::from_doc(&doc);
        assert_eq!(r.get("RED_TYPE"), Some("DHCP"));
        assert_eq!(r.get("DNS1"), Some(""));
        assert_eq!(r.0.get("RED_ADDRESS"), Some(&None));
        assert!(!r.0.contains_key("GREEN_DEV"));
        let back: RedValues = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back, r);
    }

    fn fake_proc(dir: &Path, pid: u32, comm: &str, cmdline: &[&str], ns: Option<&str>) {
        let p = dir.join(pid.to_string());
        fs::create_dir_all(p.join("ns")).unwrap();
        fs::write(p.join("comm"), format!("{comm}\n")).unwrap();
        fs::write(p.join("cmdline"), cmdline.join("\0") + "\0").unwrap();
        if let Some(ns) = ns {
            std::os::unix::fs::symlink(ns, p.join("ns/net")).unwrap();
        }
    }

    #[test]
    fn red_daemons_are_pppd_by_comm_and_dhcpcd_on_the_red_device() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::create_dir_all(d.join("self/ns")).unwrap();
        std::os::unix::fs::symlink("net:[1]", d.join("self/ns/net")).unwrap();
        fake_proc(
            d,
            10,
            "pppd",
            &["/usr/sbin/pppd", "call", "dsl"],
            Some("net:[1]"),
        );
        fake_proc(d, 11, "dhcpcd", &["dhcpcd", "-b", "red0"], None);
        fake_proc(d, 12, "dhcpcd", &["dhcpcd", "green0"], Some("net:[1]"));
        fake_proc(d, 13, "bash", &["bash", "-c", "pppd red0"], Some("net:[1]"));
        fake_proc(d, 14, "pppd", &["pppd"], Some("net:[2]")); // another namespace
        fake_proc(d, 15, "dhcpcd", &["dhcpcd: red0 [ip4]"], Some("net:[1]"));
        // a pppd that exited and waits for its parent to reap it: gone
        fake_proc(d, 16, "pppd", &[], Some("net:[1]"));
        fs::write(d.join("16/stat"), "16 (pppd) Z 1 16 16 0 -1").unwrap();
        fs::write(d.join("10/stat"), "10 (pppd) S 1 10 10 0 -1").unwrap();
        assert_eq!(red_daemons(d, Some("red0")), [10, 11, 15]);
        assert_eq!(red_daemons(d, None), [10]);
        assert!(red_daemons(Path::new("/nonexistent/proc"), Some("red0")).is_empty());
    }

    #[test]
    fn active_profile_is_the_one_sharing_the_inode() {
        let dir = tempfile::tempdir().unwrap();
        let ppp = dir.path().join("var/ipfire/ppp");
        fs::create_dir_all(&ppp).unwrap();
        let paths = Paths::new(dir.path()).unwrap();
        assert_eq!(active_profile(&paths).unwrap(), None);
        fs::write(ppp.join("settings-1"), "TYPE=pppoe\n").unwrap();
        fs::write(ppp.join("settings-2"), "TYPE=pppoe\n").unwrap();
        // Hand-made: no profile holds these bytes (a plain copy of one would be that one).
        fs::write(ppp.join("settings"), "TYPE=pppoe\nUSERNAME=hand\n").unwrap();
        assert_eq!(active_profile(&paths).unwrap(), None, "hand-made");
        assert_eq!(
            save_handmade(&paths, false).unwrap().unwrap().as_str(),
            "primary"
        );
        assert!(
            !ppp.join("settings-primary").exists(),
            "a dry run writes nothing"
        );
        fs::write(ppp.join("settings-primary"), "TYPE=DHCP\n").unwrap();
        assert_eq!(
            save_handmade(&paths, true).unwrap().unwrap().as_str(),
            "primary-2",
            "an existing settings-primary is never overwritten"
        );
        assert_eq!(
            fs::read(ppp.join("settings-primary-2")).unwrap(),
            b"TYPE=pppoe\nUSERNAME=hand\n"
        );
        fs::remove_file(ppp.join("settings")).unwrap();
        fs::hard_link(ppp.join("settings-2"), ppp.join("settings")).unwrap();
        assert_eq!(active_profile(&paths).unwrap().unwrap().as_str(), "2");
        assert_eq!(save_handmade(&paths, true).unwrap(), None);
    }

    #[test]
    fn replaced_files_keep_their_owner() {
        use std::os::unix::fs::MetadataExt;
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: chown needs root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("secrets");
        fs::write(&f, "old").unwrap();
        std::os::unix::fs::chown(&f, Some(65534), Some(65534)).unwrap();
        replace_keeping_owner(&f, b"new", 0o600).unwrap();
        let m = fs::metadata(&f).unwrap();
        assert_eq!((m.uid(), m.gid(), m.mode() & 0o777), (65534, 65534, 0o600));
        assert_eq!(fs::read(&f).unwrap(), b"new");
    }
}
