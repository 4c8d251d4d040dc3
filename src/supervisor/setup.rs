//! What the supervisor decides with, read from the box's files once per start and per
//! SIGHUP: the failover policy (`connectd/settings`), the profiles of the chain, and the
//! core's typed [`Config`] built from them. An invalid policy is an error (the daemon
//! refuses to start; a reload keeps the previous one).

use std::time::Duration;

use crate::error::{Error, Result};
use crate::ipfire::fsutil;
use crate::ipfire::paths::Paths;
use crate::ipfire::policy::Policy;
use crate::ipfire::profile::{LoadError, Profile, ProfileName};
use crate::ipfire::state::State;
use crate::sys::clock::Clock;

use super::machine::{Config, Link};

/// How long an empty profile (the WUI writing it) is re-read before giving up.
const EMPTY_PROFILE_RETRY: Duration = Duration::from_secs(3);

/// What the loop knows about the profiles, typed once per (re)load.
pub(crate) struct Setup {
    /// The failover policy.
    pub(crate) policy: Policy,
    /// The core's config built from it.
    pub(crate) config: Config,
    /// The primary, then the chain (or the primary's BACKUPPROFILE with failover off).
    pub(crate) profiles: Vec<Profile>,
}

impl Setup {
    /// A profile of the chain.
    pub(crate) fn profile(&self, name: &ProfileName) -> Option<&Profile> {
        self.profiles.iter().find(|p| &p.name == name)
    }

    /// The RED device of a profile of the chain; empty when unknown.
    pub(crate) fn device(&self, name: &ProfileName) -> String {
        self.config
            .link(name)
            .map(|l| l.device.clone())
            .unwrap_or_default()
    }
}

fn load_profile_retrying(paths: &Paths, clock: &dyn Clock, name: &ProfileName) -> Result<Profile> {
    let start = clock.now();
    loop {
        match Profile::load(paths, name) {
            Ok(p) => return Ok(p),
            Err(LoadError::Other(e)) => return Err(e),
            Err(LoadError::Empty) if clock.now().duration_since(start) >= EMPTY_PROFILE_RETRY => {
                return Err(Error::Parse {
                    file: paths.profile(name.as_str()),
                    line: None,
                    msg: "is empty (an unused WUI slot, or the WUI is still writing it)".into(),
                });
            }
            Err(LoadError::Empty) => {
                // The WUI truncates, then writes: read again shortly.
                clock.sleep(Duration::from_millis(200));
            }
        }
    }
}

/// Reads the policy and the profiles and types them into the core's [`Config`].
pub(crate) fn load_setup(
    paths: &Paths,
    clock: &dyn Clock,
    primary: &ProfileName,
    state: &State,
) -> Result<Setup> {
    let (policy, loaded) = Policy::load(paths, Some(primary.as_str()))?;
    if !loaded.legacy.is_empty() {
        migrate_legacy_keys(paths, &loaded.legacy);
    }
    let names = profile_chain(paths, primary, &policy)?;
    let chain: Vec<&str> = names.iter().map(ProfileName::as_str).collect();
    policy.check_pretest_skip(paths, &chain)?;
    let mut profiles = Vec::new();
    for n in &names {
        let p = load_profile_retrying(paths, clock, n)?;
        for w in &p.warnings {
            log::warn!("{w}");
        }
        profiles.push(p);
    }
    let eth = fsutil::read_settings(&paths.ethernet_settings()).ok();
    let box_dev = eth
        .as_ref()
        .and_then(|d| d.get("RED_DEV"))
        .map(String::from);
    let primary_dev = state
        .primary_red
        .as_ref()
        .and_then(|r| r.get("RED_DEV").map(String::from))
        .or_else(|| box_dev.clone());
    let link = |p: &Profile, box_dev: Option<&str>| Link {
        name: p.name.clone(),
        device: p
            .red_device(&policy, box_dev)
            .unwrap_or_default()
            .to_string(),
        max_retries: p.max_retries,
        holdoff: p.holdoff,
        backup: p.backup.clone(),
    };
    let primary_link = link(&profiles[0], primary_dev.as_deref());
    let chain: Vec<Link> = profiles[1..]
        .iter()
        .map(|p| link(p, box_dev.as_deref()))
        .collect();
    let reconnection = profiles[0].reconnection;
    let mut config = Config::from_policy(&policy, primary_link, chain, reconnection);
    // A primary that can be brought up beside a backup (PPPoE, STATIC) is proven end to
    // end before a failback (uplink/proof.rs); the core still falls back to the trial
    // when it shares the backup's device.
    config.failback_proof = crate::uplink::proof::provable(profiles[0].kind);
    Ok(Setup {
        policy,
        config,
        profiles,
    })
}

/// The profiles the supervisor may bring up: with failover on, the chain of DESIGN.md 3;
/// with failover off, the primary and its own BACKUPPROFILE (IPFire's one switch).
fn profile_chain(
    paths: &Paths,
    primary: &ProfileName,
    policy: &Policy,
) -> Result<Vec<ProfileName>> {
    if policy.enabled {
        return crate::ipfire::profile::resolve_chain(paths, primary, policy);
    }
    let mut names = vec![primary.clone()];
    if let Ok(p) = Profile::load(paths, primary) {
        if let Some(b) = p.backup {
            if paths.profile(b.as_str()).exists() {
                names.push(b);
            } else {
                log::warn!("BACKUPPROFILE={b} of profile {primary} does not exist: no backup");
            }
        }
    }
    Ok(names)
}

/// Copies the `FAILOVER_*`/`FAILBACK_*` keys older scripts kept in the primary profile into
/// `connectd/settings`, once (the WUI would erase them from the profile on its next Save).
fn migrate_legacy_keys(paths: &Paths, legacy: &[(String, String)]) {
    let path = paths.policy();
    let mut doc = fsutil::read_settings(&path).unwrap_or_default();
    for (k, v) in legacy {
        if let Err(e) = doc.set(k, v) {
            log::warn!("cannot copy {k} into {}: {e}", path.display());
            return;
        }
    }
    let res = fsutil::ensure_dir(&paths.connectd_dir())
        .and_then(|()| fsutil::write_settings(&path, &doc));
    match res {
        Ok(()) => log::info!(
            "copied {} from the primary profile into {}",
            legacy
                .iter()
                .map(|(k, _)| k.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            path.display()
        ),
        Err(e) => log::warn!("cannot copy the legacy failover keys: {e}"),
    }
}
