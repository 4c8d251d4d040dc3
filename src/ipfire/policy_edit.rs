//! `connectd policy` and `connectd policy set KEY=VALUE...`: the failover policy as the web
//! UI shows and changes it (DESIGN.md 3, 7a).
//!
//! A change is validated with the daemon's own parser ([`Policy::from_docs`]) on the whole
//! resulting file, so nothing is stored that the supervisor would refuse; on any error
//! nothing is written and the error names the key. The file is rewritten through the
//! readhash [`Document`], so comments, order and unknown keys stay as they were, and
//! atomically. Reloading the running supervisor is the caller's part (SIGHUP).

use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::ipfire::fsutil;
use crate::ipfire::paths::Paths;
use crate::ipfire::policy::Policy;
use crate::ipfire::readhash::{self, Document};

/// The keys of `connectd/settings` with their defaults as written (README, Configuration).
/// `DEVICE_<NAME>` keys are known too.
pub(crate) const KEYS: [(&str, &str); 23] = [
    ("FAILOVER_ENABLED", "off"),
    ("BACKUPPROFILE", ""),
    ("FAILOVER_CONNECT_TIMEOUT", "60"),
    ("FAILOVER_CHECK_HOST", "9.9.9.9,1.1.1.1,8.8.8.8"),
    ("FAILOVER_CHECK_INTERVAL", "2"),
    ("FAILOVER_CHECK_TIMEOUT", "1"),
    ("FAILOVER_RELIABILITY", "1"),
    ("FAILOVER_FAILURES", "3"),
    ("FAILOVER_CHECK_DNS", "on"),
    ("FAILOVER_CHECK_DNS_NAME", "ipfire.org"),
    ("FAILOVER_MAX_LOSS", "off"),
    ("FAILOVER_MAX_RTT", "off"),
    ("FAILOVER_WINDOW", "30"),
    ("FAILBACK_ENABLED", "on"),
    ("FAILBACK_DELAY", "300"),
    ("FAILBACK_ATTEMPTS", "3"),
    ("FAILBACK_GRACE", "30"),
    ("FAILBACK_DELAY_MAX", "3600"),
    ("HOOK_TIMEOUT", "30"),
    ("API_ENABLED", "off"),
    ("API_LISTEN", "127.0.0.1:8780"),
    // Read by older failover scripts from the profile; accepted, shown as set.
    ("MAXRETRIES", "5"),
    ("HOLDOFF", "30"),
];

fn known(key: &str) -> bool {
    KEYS.iter().any(|(k, _)| *k == key)
        || key
            .strip_prefix("DEVICE_")
            .is_some_and(|n| crate::ipfire::profile::ProfileName::new(n).is_ok())
}

/// Reads `connectd/settings`; an absent file is an empty document.
fn read(paths: &Paths) -> Result<Document> {
    match fsutil::read_settings(&paths.policy()) {
        Ok(d) => Ok(d),
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            Ok(Document::default())
        }
        Err(e) => Err(e),
    }
}

/// The `policy --json` object: `file`, and `keys`, one
/// `{"key", "value", "default", "in_file"}` per known key (the file's value, else the
/// default), then the file's other keys.
pub fn view(paths: &Paths) -> Result<Value> {
    let doc = read(paths)?;
    let mut keys: Vec<Value> = KEYS
        .iter()
        .filter(|(k, _)| !matches!(*k, "MAXRETRIES" | "HOLDOFF") || doc.get(k).is_some())
        .map(|(k, d)| {
            let v = doc.get(k);
            json!({"key": k, "value": v.unwrap_or(d), "default": d, "in_file": v.is_some()})
        })
        .collect();
    for (k, v) in doc.entries() {
        if !KEYS.iter().any(|(known, _)| *known == k) {
            keys.push(json!({"key": k, "value": v, "default": null, "in_file": true}));
        }
    }
    Ok(json!({"file": paths.policy().display().to_string(), "keys": keys}))
}

/// `KEY=VALUE` lines for a terminal.
pub(crate) fn human(v: &Value) -> String {
    let mut out = format!("# {}\n", v["file"].as_str().unwrap_or_default());
    for k in v["keys"].as_array().into_iter().flatten() {
        let def = match &k["default"] {
            Value::String(d) if k["in_file"] == true => format!("   (default {d:?})"),
            Value::String(_) => "   (default)".to_string(),
            _ => String::new(),
        };
        out.push_str(&format!(
            "{}={}{def}\n",
            k["key"].as_str().unwrap_or_default(),
            k["value"].as_str().unwrap_or_default()
        ));
    }
    out
}

/// Sets `KEY=VALUE` pairs in `connectd/settings`. Returns the keys whose value changed
/// (empty: nothing written). Every pair is checked first (form, known key, readhash
/// charset), then the whole resulting policy with the daemon's parser, taking the
/// primary profile's legacy keys into account as the daemon does; any error is
/// [`Error::Usage`] or [`Error::BadValue`] naming the key, and nothing is written.
pub fn set(paths: &Paths, pairs: &[String], primary: Option<&str>) -> Result<Vec<String>> {
    if pairs.is_empty() {
        return Err(Error::Usage {
            arg: "KEY=VALUE".into(),
            msg: "give at least one".into(),
        });
    }
    let path = paths.policy();
    let mut doc = read(paths)?;
    let before = doc.to_text();
    let mut changed = Vec::new();
    for pair in pairs {
        let Some((key, value)) = pair.split_once('=') else {
            return Err(Error::Usage {
                arg: pair.clone(),
                msg: "expected KEY=VALUE".into(),
            });
        };
        if !readhash::is_valid_key(key) || !known(key) {
            return Err(Error::Usage {
                arg: key.to_string(),
                msg: "not a key of the failover policy (see README, Configuration)".into(),
            });
        }
        if doc.get(key) == Some(value) {
            continue;
        }
        doc.set(key, value).map_err(|e| Error::BadValue {
            file: path.clone(),
            key: key.to_string(),
            value: value.to_string(),
            msg: e.0,
        })?;
        if !changed.iter().any(|c| c == key) {
            changed.push(key.to_string());
        }
    }
    // The daemon's own rules, on the file as it would be.
    let prof_path = primary.map(|p| paths.profile(p));
    let prof = prof_path
        .as_ref()
        .and_then(|p| fsutil::read_settings(p).ok());
    match (&prof, &prof_path) {
        (Some(d), Some(pp)) => Policy::from_docs(Some(&doc), &path, Some((d, pp)))?,
        _ => Policy::from_docs(Some(&doc), &path, None)?,
    };
    if doc.to_text() == before {
        return Ok(Vec::new());
    }
    fsutil::ensure_dir(&paths.connectd_dir())?;
    fsutil::write_settings(&path, &doc)?;
    Ok(changed)
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests build fixtures with plain writes
mod tests {
    use super::*;

    const FILE: &str = "# my policy\nFAILOVER_ENABLED=on\nMY_NOTE=keep-me\nFAILBACK_DELAY=300\n";

    fn root(policy: Option<&str>) -> (tempfile::TempDir, Paths) {
        let dir = tempfile::tempdir().unwrap();
        let p = Paths::new(dir.path()).unwrap();
        std::fs::create_dir_all(p.connectd_dir()).unwrap();
        if let Some(text) = policy {
            std::fs::write(p.policy(), text).unwrap();
        }
        (dir, p)
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn set_changes_only_the_keys_given_and_keeps_the_rest_byte_for_byte() {
        let (_d, p) = root(Some(FILE));
        let changed = set(
            &p,
            &s(&["FAILBACK_DELAY=600", "FAILOVER_MAX_RTT=250"]),
            None,
        )
        .unwrap();
        assert_eq!(changed, s(&["FAILBACK_DELAY", "FAILOVER_MAX_RTT"]));
        assert_eq!(
            std::fs::read_to_string(p.policy()).unwrap(),
            "# my policy\nFAILOVER_ENABLED=on\nMY_NOTE=keep-me\nFAILBACK_DELAY=600\nFAILOVER_MAX_RTT=250\n"
        );
    }

    #[test]
    fn a_value_the_daemon_refuses_writes_nothing_and_names_the_key() {
        for (pairs, key) in [
            (
                vec!["FAILBACK_DELAY=600", "FAILOVER_CHECK_INTERVAL=fast"],
                "FAILOVER_CHECK_INTERVAL",
            ),
            (vec!["FAILOVER_ENABLED=maybe"], "FAILOVER_ENABLED"),
            (vec!["BACKUPPROFILE=2,../x"], "BACKUPPROFILE"),
            (vec!["FAILOVER_MAX_LOSS=150"], "FAILOVER_MAX_LOSS"),
            (vec!["FAILBACK_DELAYY=5"], "FAILBACK_DELAYY"),
            (vec!["FAILOVER_CHECK_HOST=a'b"], "FAILOVER_CHECK_HOST"),
            (vec!["novalue"], "novalue"),
        ] {
            let (_d, p) = root(Some(FILE));
            let e = set(&p, &s(&pairs), None).unwrap_err();
            assert!(e.to_string().contains(key), "{pairs:?}: {e}");
            assert_eq!(e.exit_code(), 2, "{pairs:?}: {e}");
            assert_eq!(
                std::fs::read_to_string(p.policy()).unwrap(),
                FILE,
                "{pairs:?}"
            );
        }
    }

    #[test]
    fn the_same_values_write_nothing() {
        let (_d, p) = root(Some(FILE));
        let before = std::fs::metadata(p.policy()).unwrap().modified().unwrap();
        crate::sys::clock::Clock::sleep(
            &crate::sys::clock::SystemClock,
            std::time::Duration::from_millis(20),
        );
        assert!(
            set(&p, &s(&["FAILBACK_DELAY=300"]), None)
                .unwrap()
                .is_empty()
        );
        let after = std::fs::metadata(p.policy()).unwrap().modified().unwrap();
        assert_eq!(before, after);
    }

    #[test]
    fn a_missing_file_is_created_and_the_view_shows_defaults() {
        let (_d, p) = root(None);
        let v = view(&p).unwrap();
        let delay = v["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["key"] == "FAILBACK_DELAY")
            .unwrap();
        assert_eq!(delay["value"], "300");
        assert_eq!(delay["in_file"], false);
        set(&p, &s(&["FAILOVER_ENABLED=on", "DEVICE_2=wwan0"]), None).unwrap();
        assert_eq!(
            std::fs::read_to_string(p.policy()).unwrap(),
            "FAILOVER_ENABLED=on\nDEVICE_2=wwan0\n"
        );
        let v = view(&p).unwrap();
        let keys = v["keys"].as_array().unwrap();
        assert!(
            keys.iter().any(|k| k["key"] == "FAILOVER_ENABLED"
                && k["value"] == "on"
                && k["in_file"] == true)
        );
        assert!(
            keys.iter()
                .any(|k| k["key"] == "DEVICE_2" && k["value"] == "wwan0")
        );
        assert!(human(&v).contains("FAILOVER_ENABLED=on   (default \"off\")"));
    }
}
