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
    runner: &dyn Runner,
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
    if let Some(name) = switch::adopt_handmade(paths)? {
        log::warn!("ppp/settings was hand-made: now profile {name}");
    }
    let mut st = State::load_or_reset(paths);
    let primary = primary(paths, &st)?;
    st.primary = Some(primary.clone());
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
