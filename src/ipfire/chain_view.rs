//! The failover chain as people see it (`status --json` key `chain`, the web UI's table):
//! each profile's role, name, type and the RED device it runs on.

use serde_json::{Value, json};

use crate::ipfire::ethernet::RedValues;
use crate::ipfire::paths::Paths;
use crate::ipfire::policy::Policy;
use crate::ipfire::profile::{Profile, ProfileName, resolve_chain};
use crate::ipfire::state::State;

/// `[{"profile", "display_name", "role", "type", "device"}]` for the primary and its
/// backups; just the primary when the chain cannot be resolved, empty without a primary.
/// A profile without a device of its own runs on the box's RED_DEV; for the primary while
/// a backup is active that is the RED_DEV saved when the box left it.
pub fn chain_view(paths: &Paths, state: &State) -> Value {
    let Some(primary) = state
        .primary
        .as_deref()
        .and_then(|p| ProfileName::new(p).ok())
    else {
        return json!([]);
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
        .filter(|_| state.active.as_deref() != Some(primary.as_str()))
        .and_then(|r| r.get("RED_DEV").map(str::to_string))
        .or_else(|| box_dev.clone());
    names
        .iter()
        .map(|n| {
            let role = if *n == primary { "primary" } else { "backup" };
            let fallback = if *n == primary {
                &primary_dev
            } else {
                &box_dev
            };
            match Profile::load(paths, n) {
                Ok(p) => json!({
                    "profile": n.as_str(),
                    "display_name": p.display_name,
                    "role": role,
                    "type": p.kind.as_str(),
                    "device": p.red_device(&policy, fallback.as_deref()),
                }),
                Err(_) => json!({
                    "profile": n.as_str(), "display_name": null, "role": role,
                    "type": null, "device": null,
                }),
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
            primary: Some("1".into()),
            active: Some("2".into()),
            ..State::default()
        };
        st.primary_red = Some(RedValues::from_doc(
            &crate::ipfire::readhash::Document::parse("RED_TYPE=PPPOE\nRED_DEV=red0\n"),
        ));
        let v = chain_view(&p, &st);
        assert_eq!(
            v,
            json!([
                {"profile": "1", "display_name": "DSL", "role": "primary", "type": "pppoe", "device": "red0"},
                {"profile": "2", "display_name": "Cable", "role": "backup", "type": "DHCP", "device": "red1"},
                {"profile": "lte", "display_name": "lte", "role": "backup", "type": "qmi", "device": "wwan0"},
            ])
        );
        assert_eq!(chain_view(&p, &State::default()), json!([]));
    }
}
