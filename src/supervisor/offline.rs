//! Control commands with no supervisor running (failover off: IPFire's connectd exits
//! once online): the CLI acts offline, under the supervisor's lock, through the same
//! journaled switch the supervisor uses, with the runner and clock its caller passes in.

use std::net::Ipv4Addr;
use std::time::{Duration, SystemTime};

use crate::error::{Error, Result};
use crate::ipfire::fsutil;
use crate::ipfire::journal::SwitchKind;
use crate::ipfire::paths::Paths;
use crate::ipfire::policy::Policy;
use crate::ipfire::profile::{Profile, ProfileName};
use crate::ipfire::state::{self, State};
use crate::supervisor::daemon::Lock;
use crate::sys::clock::Clock;
use crate::sys::exec::Runner;
use crate::uplink::journaled;
use crate::uplink::switch::{self, SwitchOptions};

fn busy(paths: &Paths) -> Error {
    Error::Busy(format!(
        "{}: connectd is running (it holds the lock) but did not answer on {}",
        paths.pidfile().display(),
        paths.control_socket().display()
    ))
}

/// The primary: from the state file (when that profile still exists), else the profile
/// active now. The supervisor and the direct commands agree on it through this.
pub fn primary(paths: &Paths, st: &State) -> Result<ProfileName> {
    if let Some(p) = &st.primary {
        if paths.profile(p.as_str()).exists() {
            return Ok(p.clone());
        }
    }
    switch::active_profile(paths)?.ok_or_else(|| {
        Error::Failed(format!(
            "{} links to no profile",
            paths.ppp_settings().display()
        ))
    })
}

/// What `settings` is at a start, the administrator's selection followed, for the
/// supervisor and the direct commands alike (DESIGN.md 1.1: the primary follows the
/// administrator's selection):
/// * a plain copy of a profile (IPFire's own backup switch and the older script copy the
///   backup over `settings`, `system/connectd:82-88`) is that profile, linked again; with
///   no primary known yet (an upgrade) the profile whose BACKUPPROFILE it is stays the
///   primary: a backup is never promoted;
/// * a hand-made `settings` is saved as a profile of its own (`switch::adopt_handmade`);
/// * `settings` linked to another profile than the one connectd left it at (pppsetup's
///   Select, connscheduler's `profile N`, index.cgi's dial profile): that profile is the
///   new primary, any failover episode (a pin, the failback delay) ends.
///
/// Updates `st.primary` and `st.active` and returns the primary.
pub fn follow_selection(paths: &Paths, st: &mut State) -> Result<ProfileName> {
    let copy = switch::copy_of_profile(paths)?;
    if let Some(name) = switch::adopt_handmade(paths)? {
        if copy.as_ref() == Some(&name) {
            log::warn!("ppp/settings was a plain copy of profile {name}: linked to it again");
        } else {
            log::warn!("ppp/settings was hand-made: now profile {name}");
        }
    }
    let linked = switch::active_profile(paths)?;
    if let Some(b) = copy.filter(|_| st.primary.is_none()) {
        if let Some(owner) = backup_owner(paths, &b) {
            log::warn!(
                "profile {b} is the backup of profile {owner} (its BACKUPPROFILE):                  {owner} stays the primary"
            );
            st.primary = Some(owner);
            st.active = Some(b);
        }
    }
    if let (Some(l), Some(known)) = (&linked, &st.active) {
        if l != known && st.journal.is_none() {
            log::warn!(
                "ppp/settings was linked to profile {l} by someone else (connectd left it at                  {known}): the administrator's selection is the primary now"
            );
            let primary_red = st.primary_red.take();
            // The files were still a backup's that connectd had switched to (no
            // supervisor saw the Disconnect that ended the episode: `killall connectd`,
            // failover off), while `settings` names the administrator's selection now:
            // `ethernet/settings` gets that profile's RED_* values (RED_DRIVER and every
            // device key), on the primary's saved ones (the administrator's own setup,
            // DESIGN.md 2) when it is of the primary's kind, as a supervised Disconnect
            // would have left them (effects.rs end_episode_files).
            if st.primary.as_ref() != Some(known) {
                let kind = |p: &ProfileName| Profile::load(paths, p).ok().map(|p| p.kind);
                let restore = primary_red.filter(|_| {
                    st.primary
                        .as_ref()
                        .is_some_and(|p| kind(p).is_some() && kind(p) == kind(l))
                });
                match Policy::load(paths, Some(l.as_str())).and_then(|(policy, _)| {
                    switch::apply_files(paths, &policy, l, restore.as_ref())
                }) {
                    Ok(red) => log::info!(
                        "ethernet/settings follows profile {l} again (RED_TYPE={}, RED_DEV={})",
                        red.get("RED_TYPE").unwrap_or("-"),
                        red.get("RED_DEV").unwrap_or("-")
                    ),
                    Err(e) => log::error!("cannot give the files to profile {l}: {e}"),
                }
            }
            st.primary = Some(l.clone());
            st.pinned = None;
            st.failback_delay_secs = None;
        }
    }
    let primary = primary(paths, st)?;
    st.primary = Some(primary.clone());
    if let Some(l) = linked {
        st.active = Some(l);
    }
    Ok(primary)
}

/// The profile (other than `backup` itself) whose own BACKUPPROFILE is `backup`, the
/// first by name.
fn backup_owner(paths: &Paths, backup: &ProfileName) -> Option<ProfileName> {
    let mut owners: Vec<ProfileName> = crate::ipfire::profile::list(paths)
        .ok()?
        .into_iter()
        .filter_map(|i| Profile::load(paths, &i.name).ok())
        .filter(|p| p.backup.as_ref() == Some(backup) && &p.name != backup)
        .map(|p| p.name)
        .collect();
    owners.sort();
    owners.into_iter().next()
}

/// `red/active` written since `since` (a stale flag from before the switch does not count).
fn came_up(paths: &Paths, since: SystemTime) -> bool {
    std::fs::metadata(paths.red_active())
        .and_then(|m| m.modified())
        .is_ok_and(|t| t >= since)
}

/// Switches to `to` now: journaled, under the lock; then waits for RED (up to
/// FAILOVER_CONNECT_TIMEOUT) when `wait`. `pin`: a manual failover pins `to` (failback
/// to the primary unpins). Returns the exit code.
pub(crate) fn switch_to(
    paths: &Paths,
    runner: &(dyn Runner + Sync),
    clock: &dyn Clock,
    to: &ProfileName,
    kind: SwitchKind,
    wait: bool,
) -> Result<u8> {
    match Profile::load(paths, to) {
        Ok(_) => {}
        Err(e) => return Err(e.into()),
    }
    let Some(_lock) = Lock::try_acquire(paths)? else {
        return Err(busy(paths));
    };
    let mut st = State::load_or_reset(paths);
    let primary = follow_selection(paths, &mut st)?;
    let (policy, _) = Policy::load(paths, Some(primary.as_str()))?;
    let old_addr: Option<Ipv4Addr> =
        fsutil::read_word(&paths.red_local_ip()).and_then(|s| s.parse().ok());
    let since = clock.wall() - Duration::from_secs(1);
    let report = journaled::journaled_activate(
        paths,
        runner,
        &policy,
        &mut st,
        to,
        kind,
        &format!("{kind} requested on the command line"),
        &SwitchOptions::default(),
        state::unix(clock.wall()),
    )?;
    st.count_switch();
    st.pinned = (to != &primary && kind == SwitchKind::Manual).then(|| to.clone());
    st.save(paths)?;
    // The older scripts' files only inform: the switch is done, so a failure to update
    // them (a full disk) is a warning, as in the supervisor, not a failed switch.
    if let Err(e) = state::write_legacy_files(paths, to.as_str(), st.last_switch) {
        log::warn!("{e}");
    }
    let from = report
        .from
        .map_or_else(|| "no profile".to_string(), |f| f.to_string());
    if !wait {
        println!("activated profile {to} (was {from}); not waiting for RED");
        return Ok(0);
    }
    let start = clock.now();
    while !came_up(paths, since) {
        if clock.now().duration_since(start) >= policy.connect_timeout {
            println!(
                "activated profile {to} (was {from}), but RED did not come up within {}s",
                policy.connect_timeout.as_secs()
            );
            return Ok(1);
        }
        // Polling a flag file the network scripts write.
        clock.sleep(Duration::from_millis(100));
    }
    let new_addr: Option<Ipv4Addr> =
        fsutil::read_word(&paths.red_local_ip()).and_then(|s| s.parse().ok());
    if let Some(old) = old_addr.filter(|o| Some(*o) != new_addr) {
        switch::flush_conntrack(runner, old)?;
    }
    let iface = fsutil::read_word(&paths.red_iface()).unwrap_or_else(|| "?".into());
    println!("activated profile {to} (was {from}); RED is up on {iface}");
    Ok(0)
}

/// `connectd auto on|off` with no supervisor: recorded in the state file for the next start.
pub(crate) fn set_auto(paths: &Paths, enabled: bool) -> Result<u8> {
    let Some(_lock) = Lock::try_acquire(paths)? else {
        return Err(busy(paths));
    };
    let mut st = State::load_or_reset(paths);
    st.auto = enabled;
    if enabled {
        st.pinned = None;
    }
    st.save(paths)?;
    println!(
        "automatic failback {} (no supervisor running: applies at its next start)",
        if enabled { "on" } else { "off" }
    );
    Ok(0)
}

#[cfg(test)]
#[allow(clippy::disallowed_methods, clippy::unwrap_used)] // tests build fixtures with plain writes
mod tests {
    use super::*;

    fn name(s: &str) -> ProfileName {
        ProfileName::new(s).unwrap()
    }

    /// Profiles 1 (PPPoE, BACKUPPROFILE=2), 2 (DHCP) and 4 (PPPoE).
    fn box_with_profiles() -> (tempfile::TempDir, Paths) {
        let d = tempfile::tempdir().unwrap();
        let paths = Paths::new(d.path()).unwrap();
        std::fs::create_dir_all(paths.ppp_dir()).unwrap();
        std::fs::write(
            paths.profile("1"),
            "PROFILE=1\nPROFILENAME='DSL'\nTYPE=pppoe\nUSERNAME=u\nPASSWORD=p\nBACKUPPROFILE=2\n",
        )
        .unwrap();
        std::fs::write(
            paths.profile("2"),
            "PROFILE=2\nPROFILENAME='Cable'\nTYPE=pppoe\nUSERNAME=c\nPASSWORD=q\n",
        )
        .unwrap();
        std::fs::write(
            paths.profile("4"),
            "PROFILE=4\nPROFILENAME='Other'\nTYPE=pppoe\nUSERNAME=o\nPASSWORD=r\n",
        )
        .unwrap();
        (d, paths)
    }

    /// A network script that does nothing.
    struct NoopRunner;

    impl Runner for NoopRunner {
        fn run(&self, _: &crate::sys::exec::CommandSpec) -> Result<crate::sys::exec::CmdOutcome> {
            Ok(crate::sys::exec::CmdOutcome {
                code: Some(0),
                timed_out: false,
                output: String::new(),
            })
        }
    }

    fn link(paths: &Paths, to: &str) {
        let _ = std::fs::remove_file(paths.ppp_settings());
        std::fs::hard_link(paths.profile(to), paths.ppp_settings()).unwrap();
    }

    #[test]
    fn a_profile_relinked_by_the_administrator_becomes_the_primary_and_ends_the_episode() {
        let (_d, paths) = box_with_profiles();
        // On the backup 2 after a failover from 1, pinned; then connscheduler's
        // `profile 4` (or pppsetup's Select) links settings to 4.
        let mut st = State {
            primary: Some(name("1")),
            active: Some(name("2")),
            pinned: Some(name("2")),
            failback_delay_secs: Some(600),
            ..State::default()
        };
        link(&paths, "4");
        assert_eq!(follow_selection(&paths, &mut st).unwrap(), name("4"));
        assert_eq!(st.primary, Some(name("4")));
        assert_eq!(st.active, Some(name("4")));
        assert_eq!(st.pinned, None);
        assert_eq!(st.failback_delay_secs, None);
    }

    #[test]
    fn the_admins_red_values_come_back_when_the_selection_leaves_an_unsupervised_backup() {
        // Issue 12 item 7: on the QMI backup (RED_DRIVER=qmi_wwan on wwan0) after a
        // failover from the PPPoE primary 1 on red0; the supervisor is gone without
        // seeing a Disconnect (`killall connectd`: connscheduler's hangup, or failover
        // off: it exits once online). The administrator selects 1 again (pppsetup's
        // Select): the next start gives ethernet/settings the primary's saved values.
        let (d, paths) = box_with_profiles();
        std::fs::write(
            paths.profile("3"),
            "PROFILE=3\nPROFILENAME='LTE'\nTYPE=qmi\nDEVICE=wwan0\nAPN=internet\n",
        )
        .unwrap();
        for (dev, driver) in [("red0", "e1000e"), ("wwan0", "qmi_wwan")] {
            let sys = paths.sys_net(dev);
            std::fs::create_dir_all(sys.join("device")).unwrap();
            let drv = d.path().join("sys/bus/drivers").join(driver);
            std::fs::create_dir_all(&drv).unwrap();
            std::os::unix::fs::symlink(&drv, sys.join("device/driver")).unwrap();
        }
        std::fs::create_dir_all(paths.ethernet_settings().parent().unwrap()).unwrap();
        let admins = "GREEN_DEV=green0\nRED_TYPE=PPPOE\nRED_DEV=red0\nRED_DRIVER=e1000e\n";
        std::fs::write(paths.ethernet_settings(), admins).unwrap();
        link(&paths, "1");
        // connectd's failover to 3, journaled as the supervisor does.
        let mut st = State {
            primary: Some(name("1")),
            active: Some(name("1")),
            ..State::default()
        };
        let report = switch::activate(
            &paths,
            &NoopRunner,
            &Policy::default(),
            &name("3"),
            None,
            &SwitchOptions {
                stop_wait: Duration::ZERO,
                proc_root: Some(d.path().join("none")),
                ..SwitchOptions::default()
            },
            &mut |_, _| Ok(()),
        )
        .unwrap();
        st.primary_red = Some(report.previous_red);
        st.active = Some(name("3"));
        let eth = std::fs::read_to_string(paths.ethernet_settings()).unwrap();
        assert!(
            eth.contains("RED_DEV=wwan0") && eth.contains("RED_DRIVER=qmi_wwan"),
            "{eth}"
        );
        // The supervisor is killed; the administrator selects 1.
        link(&paths, "1");
        assert_eq!(follow_selection(&paths, &mut st).unwrap(), name("1"));
        let eth = std::fs::read_to_string(paths.ethernet_settings()).unwrap();
        assert!(eth.contains("RED_DEV=red0"), "{eth}");
        assert!(eth.contains("RED_DRIVER=e1000e"), "{eth}");
        assert!(
            eth.contains("RED_TYPE=PPPOE") && eth.contains("GREEN_DEV=green0"),
            "{eth}"
        );
        assert_eq!(st.primary_red, None);
        // Selecting the backup itself keeps its files (connectd's own switch, nothing to do).
        let mut st = State {
            primary: Some(name("1")),
            active: Some(name("3")),
            ..State::default()
        };
        link(&paths, "3");
        follow_selection(&paths, &mut st).unwrap();
        let eth = std::fs::read_to_string(paths.ethernet_settings()).unwrap();
        assert!(eth.contains("RED_DEV=red0"), "untouched: {eth}");
    }

    #[test]
    fn connectds_own_failover_keeps_the_primary() {
        let (_d, paths) = box_with_profiles();
        let mut st = State {
            primary: Some(name("1")),
            active: Some(name("2")),
            ..State::default()
        };
        link(&paths, "2");
        assert_eq!(follow_selection(&paths, &mut st).unwrap(), name("1"));
        assert_eq!(st.active, Some(name("2")));
    }

    #[test]
    fn a_plain_copy_of_the_backup_is_recognised_and_never_promoted_to_primary() {
        let (_d, paths) = box_with_profiles();
        // IPFire's own backup switch (system/connectd:82-88): rm settings; cp settings-2.
        std::fs::copy(paths.profile("2"), paths.ppp_settings()).unwrap();
        let mut st = State::default();
        assert_eq!(follow_selection(&paths, &mut st).unwrap(), name("1"));
        assert_eq!(st.active, Some(name("2")));
        // Recognised by content: linked to settings-2, no settings-primary made up.
        assert_eq!(switch::active_profile(&paths).unwrap(), Some(name("2")));
        assert!(!paths.profile("primary").exists());
        // The next start keeps it so (connectd's own state now).
        assert_eq!(follow_selection(&paths, &mut st).unwrap(), name("1"));
    }

    #[test]
    fn a_plain_copy_of_a_primary_is_that_primary() {
        let (_d, paths) = box_with_profiles();
        std::fs::copy(paths.profile("4"), paths.ppp_settings()).unwrap();
        let mut st = State::default();
        assert_eq!(follow_selection(&paths, &mut st).unwrap(), name("4"));
        assert_eq!(switch::active_profile(&paths).unwrap(), Some(name("4")));
    }
}
