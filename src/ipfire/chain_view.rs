//! The failover chain as people see it (`status --json` key `chain`, the web UI's table):
//! each profile's role, name, type and the RED device it runs on.

use serde::{Deserialize, Serialize};

use crate::ipfire::ethernet::RedValues;
use crate::ipfire::paths::Paths;
use crate::ipfire::policy::Policy;
use crate::ipfire::profile::{Profile, ProfileName, resolve_chain};
use crate::ipfire::state::State;

/// A profile's place in the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The primary.
    Primary,
    /// A backup.
    Backup,
}

/// One profile of the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainEntry {
    /// The profile.
    pub profile: ProfileName,
    /// Its PROFILENAME (null when the profile cannot be read).
    pub display_name: Option<String>,
    /// Primary or backup.
    pub role: Role,
    /// Its TYPE.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// The RED device it runs on.
    pub device: Option<String>,
    /// Its last pre-test since the supervisor started (a running supervisor only; absent
    /// from the JSON otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_pretest: Option<LastPretest>,
}

/// A profile's last pre-test (DESIGN.md 5.1: backups known before they are needed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastPretest {
    /// `passed`, `failed` or `untestable`.
    pub result: String,
    /// Seconds before the status was taken.
    pub secs_ago: u64,
}

/// `[{"profile", "display_name", "role", "type", "device"}]` for the primary and its
/// backups; just the primary when the chain cannot be resolved, empty without a primary.
/// A profile without a device of its own runs on the box's RED_DEV; for the primary while
/// a backup is active that is the RED_DEV saved when the box left it.
pub(crate) fn chain_view(paths: &Paths, state: &State) -> Vec<ChainEntry> {
    let Some(primary) = state.primary.clone() else {
        return Vec::new();
    };
    let policy = Policy::load(paths, Some(primary.as_str()))
        .map(|(p, _)| p)
        .unwrap_or_default();
    let names = resolve_chain(paths, &primary, &policy).unwrap_or_else(|_| vec![primary.clone()]);
    let box_dev = RedValues::read(paths)
        .ok()
        .and_then(|r| r.get("RED_DEV").map(str::to_string));
    let primary_dev = state
        .primary_red
        .as_ref()
        .filter(|_| state.active.as_ref() != Some(&primary))
        .and_then(|r| r.get("RED_DEV").map(str::to_string))
        .or_else(|| box_dev.clone());
    names
        .into_iter()
        .map(|n| {
            let (role, fallback) = if n == primary {
                (Role::Primary, &primary_dev)
            } else {
                (Role::Backup, &box_dev)
            };
            match Profile::load(paths, &n) {
                Ok(p) => ChainEntry {
                    display_name: Some(p.display_name.clone()),
                    role,
                    kind: Some(p.kind.as_str().to_string()),
                    device: p.red_device(&policy, fallback.as_deref()).map(String::from),
                    last_pretest: None,
                    profile: n,
                },
                Err(_) => ChainEntry {
                    profile: n,
                    display_name: None,
                    role,
                    kind: None,
                    device: None,
                    last_pretest: None,
                },
            }
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests build fixtures with plain writes
mod tests {
    use super::*;

    #[test]
    fn the_chain_with_types_and_devices() {
        let dir = tempfile::tempdir().unwrap();
        let p = Paths::new(dir.path()).unwrap();
        for d in [
            "var/ipfire/ppp",
            "var/ipfire/ethernet",
            "var/ipfire/connectd",
        ] {
            std::fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        std::fs::write(
            p.profile("1"),
            "PROFILENAME='DSL'\nTYPE=pppoe\nBACKUPPROFILE=1\n",
        )
        .unwrap();
        std::fs::write(
            p.profile("2"),
            "PROFILENAME='Cable'\nTYPE=DHCP\nDEVICE=red1\n",
        )
        .unwrap();
        std::fs::write(p.profile("lte"), "TYPE=qmi\nDEVICE=wwan0\n").unwrap();
        std::fs::write(p.policy(), "FAILOVER_ENABLED=on\nBACKUPPROFILE=2,lte\n").unwrap();
        std::fs::write(p.ethernet_settings(), "RED_TYPE=DHCP\nRED_DEV=red1\n").unwrap();
        let mut st = State {
            primary: Some(ProfileName::new("1").unwrap()),
            active: Some(ProfileName::new("2").unwrap()),
            ..State::default()
        };
        st.primary_red = Some(RedValues::from_doc(
            &crate::ipfire::readhash::Document::parse("RED_TYPE=PPPOE\nRED_DEV=red0\n"),
        ));
        let v = serde_json::to_value(chain_view(&p, &st)).unwrap();
        assert_eq!(
            v,
            serde_json::json!([
                {"profile": "1", "display_name": "DSL", "role": "primary", "type": "pppoe", "device": "red0"},
                {"profile": "2", "display_name": "Cable", "role": "backup", "type": "DHCP", "device": "red1"},
                {"profile": "lte", "display_name": "lte", "role": "backup", "type": "qmi", "device": "wwan0"},
            ])
        );
        assert_eq!(chain_view(&p, &State::default()), Vec::new());
    }
}
