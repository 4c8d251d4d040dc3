//! IPFire's `KEY=VALUE` settings files ("readhash" format), read and rewritten losslessly.
//!
//! IPFire has two readers of these files, and both matter:
//!
//! * the shell reader `/usr/local/bin/readhash` (used as `eval $(readhash FILE)`) prints only
//!   lines matching `KEY=[A-Za-z0-9=/,.:%_@#+-]*` or `KEY='[ A-Za-z0-9=/,.:%_@#+-]*'` and
//!   **silently drops** every other line;
//! * Perl's `General::readhash` splits at the first `=`, skips lines starting with `#`, strips
//!   one leading and one trailing `'` and keeps everything else.
//!
//! A [`Document`] keeps every line of a file as it was read (order, comments, blank lines,
//! unknown keys, duplicate keys, the quoting style), so that [`Document::set`] changes only
//! the line of the key it sets and every other byte stays identical. Values are read the way
//! Perl reads them; [`Document::shell_dropped`] names the lines the shell reader would drop,
//! so callers can warn or refuse. The writer never produces such a line: [`check_value`]
//! refuses values the shell reader cannot carry (quotes, `$`, `!`, `;`, non-ASCII, ...),
//! instead of storing them broken or, worse, letting IPFire's `eval` run them.
//!
//! serde_ini was considered and rejected: unmaintained since 2018, it cannot keep order,
//! comments, duplicate keys or IPFire's quoting, which is the whole point here.

use std::fmt;

/// Characters the shell reader accepts in a value (besides a space inside single quotes).
pub const SHELL_VALUE_CHARS: &str =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789=/,.:%_@#+-";

/// One line of a readhash file.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Line {
    /// `KEY=...`: `raw` is the whole line without its terminator.
    Entry { key: String, raw: String },
    /// A comment, a blank line or anything else: kept verbatim, never interpreted.
    Other(String),
}

/// A parsed readhash file that can be rewritten key by key.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Document {
    lines: Vec<Line>,
    /// The line terminator of each line (`"\n"`, `"\r\n"` or `""` for a last line without one).
    ends: Vec<&'static str>,
}

/// Why the shell reader would drop a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    /// 1-based line number.
    pub line: usize,
    /// The key, when the line looks like `KEY=...`.
    pub key: Option<String>,
    /// Why.
    pub reason: String,
}

/// Why a value cannot be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadValue(pub String);

impl fmt::Display for BadValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether `key` is a valid readhash key: `[A-Za-z_][A-Za-z0-9_]*`.
pub(crate) fn is_valid_key(key: &str) -> bool {
    let mut chars = key.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn is_shell_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "=/,.:%_@#+-".contains(c)
}

/// Checks that `value` can be written so that both IPFire readers get it back unchanged.
///
/// Allowed: the characters of [`SHELL_VALUE_CHARS`] and spaces (the writer then quotes the
/// value). Everything else is refused with the first offending character named.
pub fn check_value(value: &str) -> Result<(), BadValue> {
    if let Some(c) = value.chars().find(|&c| !(is_shell_char(c) || c == ' ')) {
        let shown = if c.is_ascii_graphic() {
            format!("{c:?}")
        } else {
            format!("U+{:04X}", u32::from(c))
        };
        return Err(BadValue(format!(
            "contains {shown}, which IPFire's shell reader cannot carry \
             (allowed: letters, digits, space and = / , . : % _ @ # + -)"
        )));
    }
    Ok(())
}

/// Formats `KEY=VALUE` the way `General::writehash` does: values with a space are quoted.
fn format_entry(key: &str, value: &str) -> String {
    if value.contains(' ') {
        format!("{key}='{value}'")
    } else {
        format!("{key}={value}")
    }
}

/// Splits `KEY=rest` when KEY is a valid key.
fn split_entry(line: &str) -> Option<(&str, &str)> {
    let (k, v) = line.split_once('=')?;
    is_valid_key(k).then_some((k, v))
}

/// The value as Perl's `General::readhash` sees it: one leading and one trailing `'` removed.
fn unquote(raw_value: &str) -> &str {
    let v = raw_value.strip_prefix('\'').unwrap_or(raw_value);
    v.strip_suffix('\'').unwrap_or(v)
}

/// Whether IPFire's shell reader keeps a raw value (as written after `KEY=`).
fn shell_reads(v: &str) -> bool {
    if v.chars().all(is_shell_char) {
        true
    } else if v.len() >= 2 && v.starts_with('\'') && v.ends_with('\'') {
        v[1..v.len() - 1]
            .chars()
            .all(|c| is_shell_char(c) || c == ' ')
    } else {
        false
    }
}

impl Document {
    /// Parses text. Never fails: lines that are not `KEY=VALUE` are kept as they are.
    /// Use [`Document::shell_dropped`] to learn which lines IPFire's shell would ignore.
    pub fn parse(text: &str) -> Self {
        let mut doc = Document::default();
        let mut rest = text;
        while !rest.is_empty() {
            let (line, end, next) = match rest.find('\n') {
                Some(i) => {
                    let line = &rest[..i];
                    match line.strip_suffix('\r') {
                        Some(l) => (l, "\r\n", &rest[i + 1..]),
                        None => (line, "\n", &rest[i + 1..]),
                    }
                }
                None => (rest, "", ""),
            };
            let parsed = match split_entry(line) {
                Some((k, _)) if !line.starts_with('#') => Line::Entry {
                    key: k.to_string(),
                    raw: line.to_string(),
                },
                _ => Line::Other(line.to_string()),
            };
            doc.lines.push(parsed);
            doc.ends.push(end);
            rest = next;
        }
        doc
    }

    /// Builds a document from pairs, in order, the way `General::writehash` writes them.
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, BadValue> {
        let mut doc = Document::default();
        for (k, v) in pairs {
            doc.set(k, v)?;
        }
        Ok(doc)
    }

    /// The value of `key` (the last occurrence wins, as in both IPFire readers).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.lines.iter().rev().find_map(|l| match l {
            Line::Entry { key: k, raw } if k == key => Some(unquote(&raw[k.len() + 1..])),
            _ => None,
        })
    }

    /// Whether the document has no `KEY=VALUE` line at all (an empty or comment-only file).
    pub fn has_no_entries(&self) -> bool {
        !self.lines.iter().any(|l| matches!(l, Line::Entry { .. }))
    }

    /// All keys with their values, in file order; a key that occurs twice is listed once,
    /// with its last value.
    pub fn entries(&self) -> Vec<(&str, &str)> {
        let mut out: Vec<(&str, &str)> = Vec::new();
        for l in &self.lines {
            if let Line::Entry { key, .. } = l {
                if !out.iter().any(|(k, _)| k == key) {
                    out.push((key, self.get(key).unwrap_or_default()));
                }
            }
        }
        out
    }

    /// Sets `key` to `value`. An existing key has its (last) line replaced in place; a new key
    /// is appended. Every other line is left byte for byte as it was.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), BadValue> {
        if !is_valid_key(key) {
            return Err(BadValue(format!("{key:?} is not a valid key")));
        }
        check_value(value)?;
        let new = format_entry(key, value);
        let pos = self
            .lines
            .iter()
            .rposition(|l| matches!(l, Line::Entry { key: k, .. } if k == key));
        match pos {
            Some(i) => {
                // A CRLF line is ignored by IPFire's shell reader: the line we set ends in LF.
                if self.ends[i] == "\r\n" {
                    self.ends[i] = "\n";
                }
                if let Line::Entry { raw, .. } = &mut self.lines[i] {
                    // Keep an existing, equivalent spelling (e.g. a value quoted without need)
                    // unless the shell would drop it (a lone `'` unquotes to "" too).
                    let old = &raw[key.len() + 1..];
                    if unquote(old) != value || !shell_reads(old) {
                        *raw = new;
                    }
                }
            }
            None => {
                if let Some(last) = self.ends.last_mut() {
                    if last.is_empty() {
                        *last = "\n";
                    }
                }
                self.lines.push(Line::Entry {
                    key: key.to_string(),
                    raw: new,
                });
                self.ends.push("\n");
            }
        }
        Ok(())
    }

    /// Removes every line of `key`. Returns whether there was one.
    pub fn remove(&mut self, key: &str) -> bool {
        let before = self.lines.len();
        let mut i = 0;
        while i < self.lines.len() {
            if matches!(&self.lines[i], Line::Entry { key: k, .. } if k == key) {
                self.lines.remove(i);
                self.ends.remove(i);
            } else {
                i += 1;
            }
        }
        before != self.lines.len()
    }

    /// The lines IPFire's shell reader would silently drop, with the reason for each.
    pub fn shell_dropped(&self) -> Vec<Dropped> {
        let mut out = Vec::new();
        for (i, (l, end)) in self.lines.iter().zip(&self.ends).enumerate() {
            let n = i + 1;
            match l {
                Line::Entry { key, raw } => {
                    if *end == "\r\n" {
                        out.push(Dropped {
                            line: n,
                            key: Some(key.clone()),
                            reason: "ends with CR (DOS line ending)".into(),
                        });
                        continue;
                    }
                    let v = &raw[key.len() + 1..];
                    let ok = shell_reads(v);
                    if !ok {
                        out.push(Dropped {
                            line: n,
                            key: Some(key.clone()),
                            reason: match check_value(unquote(v)) {
                                Err(e) => format!("value {e}"),
                                Ok(()) => "value with spaces is not single-quoted".into(),
                            },
                        });
                    }
                }
                Line::Other(raw) => {
                    let t = raw.trim();
                    if !t.is_empty() && !t.starts_with('#') {
                        out.push(Dropped {
                            line: n,
                            key: None,
                            reason: "not a KEY=VALUE line".into(),
                        });
                    }
                }
            }
        }
        out
    }

    /// The file's text: every untouched line exactly as it was read.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        for (l, end) in self.lines.iter().zip(&self.ends) {
            match l {
                Line::Entry { raw, .. } | Line::Other(raw) => s.push_str(raw),
            }
            s.push_str(end);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const WUI: &str = "DTERATE=115200\nPROFILENAME='Telekom DSL'\nMONPORT=\n\
        USERNAME=0012345678901234567890#0001@t-online.de\n\
        PPTP_NICCFG='10.0.0.140/24 broadcast 10.0.0.255'\nBACKUPPROFILE=1\n";

    #[test]
    fn reads_values_like_perl() {
        let d = Document::parse(WUI);
        assert_eq!(d.get("PROFILENAME"), Some("Telekom DSL"));
        assert_eq!(d.get("MONPORT"), Some(""));
        assert_eq!(
            d.get("USERNAME"),
            Some("0012345678901234567890#0001@t-online.de")
        );
        assert_eq!(d.get("MISSING"), None);
        assert!(d.shell_dropped().is_empty());
        assert_eq!(d.to_text(), WUI);
    }

    #[test]
    fn set_changes_one_line_only() {
        let mut d = Document::parse(WUI);
        d.set("BACKUPPROFILE", "2").unwrap();
        let want = WUI.replace("BACKUPPROFILE=1", "BACKUPPROFILE=2");
        assert_eq!(d.to_text(), want);
        d.set("NEW_KEY", "a b").unwrap();
        assert!(d.to_text().ends_with("BACKUPPROFILE=2\nNEW_KEY='a b'\n"));
    }

    #[test]
    fn comments_blank_lines_and_junk_are_kept() {
        let text = "# comment\n\nA=1\nnot a line\n#B=2\nA=3";
        let mut d = Document::parse(text);
        assert_eq!(d.get("A"), Some("3"), "last occurrence wins");
        assert_eq!(d.get("B"), None, "commented keys are not keys");
        d.set("C", "x").unwrap();
        assert_eq!(d.to_text(), format!("{text}\nC=x\n"));
    }

    #[test]
    fn shell_reader_drops_are_named() {
        let d = Document::parse("A=ok\nB=x;rm -rf /\nC=a b\nD='a b'\nE=$(id)\r\njunk\n");
        let dropped: Vec<_> = d.shell_dropped().into_iter().map(|x| x.line).collect();
        assert_eq!(dropped, vec![2, 3, 5, 6]);
    }

    #[test]
    fn crlf_is_reported_and_kept() {
        let d = Document::parse("A=1\r\nB=2\r\n");
        assert_eq!(d.get("A"), Some("1"));
        assert_eq!(d.shell_dropped().len(), 2);
        assert_eq!(d.to_text(), "A=1\r\nB=2\r\n");
    }

    #[test]
    fn writer_refuses_what_the_shell_cannot_carry() {
        for bad in [
            "a'b", "x$y", "a!b", "a&b", "a*b", "a;b", "a\"b", "a\\b", "ä", "a\nb",
        ] {
            assert!(check_value(bad).is_err(), "{bad:?} must be refused");
            assert!(Document::default().set("K", bad).is_err());
        }
        for good in ["", "a b", "x@y.de", "10.0.0.1/24", "#0001", "a=b", "+-%:,"] {
            assert!(check_value(good).is_ok(), "{good:?} must be allowed");
        }
        assert!(Document::default().set("1BAD", "x").is_err());
        assert!(Document::default().set("BAD-KEY", "x").is_err());
    }

    #[test]
    fn remove_drops_every_occurrence() {
        let mut d = Document::parse("A=1\nB=2\nA=3\n");
        assert!(d.remove("A"));
        assert_eq!(d.to_text(), "B=2\n");
        assert!(!d.remove("A"));
    }

    #[test]
    fn set_on_a_crlf_line_writes_a_line_the_shell_reads() {
        // found by the fuzz corpus (fuzz/corpus/readhash/crlf-and-shell)
        let mut d = Document::parse("A=1\r\nB=2\r\n");
        d.set("A", "3").unwrap();
        assert_eq!(d.to_text(), "A=3\nB=2\r\n");
        let dropped: Vec<usize> = d.shell_dropped().iter().map(|x| x.line).collect();
        assert_eq!(dropped, vec![2], "only the untouched CRLF line");
        d.set("B", "2").unwrap();
        assert!(d.shell_dropped().is_empty());
        // found by cargo fuzz: `B='` unquotes to "" but the shell drops it
        let mut d = Document::parse("B='\nC='x y\n");
        d.set("B", "").unwrap();
        d.set("C", "x y").unwrap();
        assert_eq!(d.to_text(), "B=\nC='x y'\n");
        assert!(d.shell_dropped().is_empty());
    }

    fn key() -> impl Strategy<Value = String> {
        "[A-Za-z_][A-Za-z0-9_]{0,12}"
    }
    fn value() -> impl Strategy<Value = String> {
        "[A-Za-z0-9=/,.:%_@#+ -]{0,24}"
    }

    proptest! {
        #[test]
        fn parse_of_write_is_identity(map in proptest::collection::btree_map(key(), value(), 0..20)) {
            let doc = Document::from_pairs(map.iter().map(|(k, v)| (k.as_str(), v.as_str()))).unwrap();
            let back = Document::parse(&doc.to_text());
            prop_assert!(back.shell_dropped().is_empty());
            for (k, v) in &map {
                prop_assert_eq!(back.get(k), Some(v.as_str()));
            }
            prop_assert_eq!(back.entries().len(), map.len());
        }

        #[test]
        fn rewriting_a_key_leaves_other_bytes_identical(
            map in proptest::collection::btree_map(key(), value(), 1..20),
            idx in any::<proptest::sample::Index>(),
            new in value(),
            junk in "(# [ -~]{0,20}\n|\n|[a-z ]{1,10}\n){0,3}",
        ) {
            let text = format!("{junk}{}", Document::from_pairs(map.iter().map(|(k, v)| (k.as_str(), v.as_str()))).unwrap().to_text());
            let key = map.keys().nth(idx.index(map.len())).unwrap().clone();
            let mut doc = Document::parse(&text);
            doc.set(&key, &new).unwrap();
            let out = doc.to_text();
            let before: Vec<&str> = text.lines().collect();
            let after: Vec<&str> = out.lines().collect();
            prop_assert_eq!(before.len(), after.len());
            for (b, a) in before.iter().zip(&after) {
                if !b.starts_with(&format!("{key}=")) {
                    prop_assert_eq!(b, a);
                }
            }
            let reparsed = Document::parse(&out);
            prop_assert_eq!(reparsed.get(&key), Some(new.as_str()));
        }
    }
}
