//! The failover chain: [`resolve_chain`], a missing profile or a loop reported by name.

use std::path::Path;

use crate::error::{Error, Result};
use crate::ipfire::paths::Paths;
use crate::ipfire::policy::Policy;
use crate::ipfire::profile::load::{LoadError, Profile};
use crate::ipfire::profile::name::ProfileName;

/// The chain of profiles starting at `primary`: `[primary, backup1, backup2, ...]`.
///
/// From `BACKUPPROFILE` in `connectd/settings` when it is set (an ordered list), else by
/// following each profile's own `BACKUPPROFILE` (one that names itself means "no backup";
/// one that leads back to the primary ends the chain there, as IPFire's connectd would
/// alternate). Every profile must exist and load. A missing or empty profile, or a loop
/// (a name twice), is an [`Error::BadValue`] naming the file, `BACKUPPROFILE` and the
/// profile.
pub fn resolve_chain(
    paths: &Paths,
    primary: &ProfileName,
    policy: &Policy,
) -> Result<Vec<ProfileName>> {
    let load = |name: &ProfileName, file: &Path, value: &str| -> Result<Profile> {
        let bad = |msg: String| Error::BadValue {
            file: file.to_path_buf(),
            key: "BACKUPPROFILE".into(),
            value: value.into(),
            msg,
        };
        match Profile::load(paths, name) {
            Ok(p) => Ok(p),
            Err(LoadError::Empty) => Err(bad(format!(
                "profile {name} is empty (an unused WUI slot, or being written)"
            ))),
            Err(LoadError::Other(Error::NoSuchProfile(_))) => Err(bad(format!(
                "profile {name} does not exist ({})",
                paths.profile(name.as_str()).display()
            ))),
            Err(LoadError::Other(e)) => Err(e),
        }
    };
    let mut chain = vec![primary.clone()];
    let first = match Profile::load(paths, primary) {
        Ok(p) => p,
        Err(LoadError::Empty) => {
            return Err(Error::Parse {
                file: paths.profile(primary.as_str()),
                line: None,
                msg: "is empty (an unused WUI slot, or being written)".into(),
            });
        }
        Err(LoadError::Other(e)) => return Err(e),
    };
    if !policy.chain.is_empty() {
        let file = paths.policy();
        let value = policy.chain.join(",");
        for n in &policy.chain {
            let name = ProfileName::new(n).map_err(|_| Error::BadValue {
                file: file.clone(),
                key: "BACKUPPROFILE".into(),
                value: value.clone(),
                msg: format!("{n:?} is not a profile name"),
            })?;
            if chain.contains(&name) {
                return Err(Error::BadValue {
                    file: file.clone(),
                    key: "BACKUPPROFILE".into(),
                    value: value.clone(),
                    msg: format!("profile {name} is in the chain twice (a loop)"),
                });
            }
            load(&name, &file, &value)?;
            chain.push(name);
        }
        return Ok(chain);
    }
    let mut cur = first;
    while let Some(next) = cur.backup.clone() {
        let file = paths.profile(cur.name.as_str());
        if next == *primary {
            break;
        }
        if chain.contains(&next) {
            let path: Vec<&str> = chain.iter().map(ProfileName::as_str).collect();
            return Err(Error::BadValue {
                file,
                key: "BACKUPPROFILE".into(),
                value: next.to_string(),
                msg: format!("a loop: {} -> {next}", path.join(" -> ")),
            });
        }
        cur = load(&next, &file, next.as_str())?;
        chain.push(next);
    }
    Ok(chain)
}
