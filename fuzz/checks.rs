//! The properties the fuzz targets check, shared with the stable replay of the corpus in
//! `tests/reliability.rs` (included there with `#[path]`), so both run the same code.

use std::path::Path;

use connectd::ipfire::policy::Policy;
use connectd::ipfire::profile::{LoadError, Profile, ProfileName};
use connectd::ipfire::readhash::Document;

/// Values the set/get round trip tries, besides the input's own lines.
const VALUES: [&str; 6] = ["", "on", "9.9.9.9,1.1.1.1", "a b c", "x;y", "Xy7-qP2@z"];

/// readhash: parse never panics; `to_text` gives back the input byte for byte;
/// `shell_dropped` never panics; a value `set` reads back the same through `get` and
/// after a rewrite, and what our writer writes is never a line the shell drops.
pub fn readhash(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let doc = Document::parse(text);
    assert_eq!(doc.to_text(), text, "to_text is not the identity");
    let dropped = doc.shell_dropped();
    assert!(dropped.iter().all(|d| d.line >= 1));
    let entries: Vec<(String, String)> = doc
        .entries()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut candidates: Vec<String> = VALUES.iter().map(|v| v.to_string()).collect();
    candidates.extend(text.lines().take(4).map(String::from));
    let keys: Vec<String> = entries
        .iter()
        .map(|(k, _)| k.clone())
        .take(4)
        .chain(std::iter::once("FUZZ_NEW_KEY".to_string()))
        .collect();
    for key in &keys {
        for value in &candidates {
            let mut d = doc.clone();
            if d.set(key, value).is_err() {
                continue;
            }
            assert_eq!(
                d.get(key),
                Some(value.as_str()),
                "get after set {key}={value:?}"
            );
            let again = Document::parse(&d.to_text());
            assert_eq!(
                again.get(key),
                Some(value.as_str()),
                "reparse {key}={value:?}"
            );
            let written: Vec<_> = again
                .shell_dropped()
                .into_iter()
                .filter(|x| x.key.as_deref() == Some(key.as_str()))
                .collect();
            // The set line itself is clean (another, older line of that key may be CRLF).
            let last_line = again
                .to_text()
                .lines()
                .enumerate()
                .filter(|(_, l)| l.starts_with(&format!("{key}=")))
                .map(|(i, _)| i + 1)
                .last();
            assert!(
                !written.iter().any(|x| Some(x.line) == last_line),
                "our writer produced a line the shell drops: {key}={value:?}: {written:?}"
            );
            // Every other line is kept byte for byte: removing the key from both gives
            // the same text, unless the key had no line before.
            let mut a = doc.clone();
            let mut b = d.clone();
            a.remove(key);
            b.remove(key);
            assert_eq!(a.to_text().lines().count(), b.to_text().lines().count());
        }
    }
}

/// Policy: never panics; an error names the file; an accepted policy is coherent.
pub fn policy(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The same text as our file, and (split at a blank line) as the primary's legacy keys.
    let (ours, legacy) = text.split_once("\n\n").unwrap_or((text, ""));
    let ours = Document::parse(ours);
    let legacy = Document::parse(legacy);
    let ours_path = Path::new("/fuzz/var/ipfire/connectd/settings");
    let prof_path = Path::new("/fuzz/var/ipfire/ppp/settings-1");
    match Policy::from_docs(Some(&ours), ours_path, Some((&legacy, prof_path))) {
        Ok((p, _)) => {
            assert!(p.failback_delay_max >= p.failback_delay);
            assert!(p.reliability >= 1);
            assert!(p.reliability <= (p.check_hosts.len() + usize::from(p.check_dns)).max(1));
        }
        Err(e) => {
            let msg = e.to_string();
            assert!(
                msg.contains("/fuzz/var/ipfire/"),
                "error names no file: {msg}"
            );
            assert!(e.exit_code() == 2, "bad input is exit 2: {msg}");
        }
    }
}

/// Profile: never panics; an error names the file; the Debug form never shows the password.
pub fn profile(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let doc = Document::parse(text);
    let path = Path::new("/fuzz/var/ipfire/ppp/settings-fuzz");
    let Ok(name) = ProfileName::new("fuzz") else {
        return;
    };
    match Profile::from_doc(name, doc.clone(), path) {
        Ok(p) => {
            // The Debug form is a fixed mask, whatever the password (found by cargo fuzz: a
            // password that is itself `"****"` made a substring check a false alarm).
            let shown = format!("{:?}", p.password);
            assert!(
                shown == "\"\"" || shown == "\"****\"",
                "Secret's Debug: {shown}"
            );
            let whole = format!("{p:?}");
            let pw = doc.get("PASSWORD").unwrap_or_default();
            let elsewhere = text.replacen(&format!("PASSWORD={pw}"), "", 1).contains(pw)
                || "\"****\"".contains(pw);
            if pw.len() >= 8 && !elsewhere {
                assert!(!whole.contains(pw), "Profile's Debug shows the password");
            }
        }
        Err(LoadError::Empty) => assert!(doc.has_no_entries()),
        Err(LoadError::Other(e)) => {
            let msg = e.to_string();
            assert!(msg.contains("settings-fuzz"), "error names no file: {msg}");
        }
    }
}
