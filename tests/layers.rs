//! The source tree's layers (README "How the code is laid out"): each folder of `src/` is a
//! layer that imports only from the layers below it, and no two modules import each other,
//! directly or round a loop. Checked by reading every `crate::…`, `super::…` and `self::…`
//! path in `src/` and resolving it to the module file it names.
//!
//! An upward import is allowed only where it is listed in [`UPWARD`] and the importing
//! module's documentation says why.

#![allow(clippy::unwrap_used)] // a test: an unreadable source file is a failed test

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The layers, lowest first. `error` is the crate root's shared error type.
const LAYERS: &[&str] = &["error", "sys", "ipfire", "uplink", "supervisor", "front"];

/// Upward imports that are allowed, as (importing module, imported module). Each one is
/// explained in the importing module's `//!`.
const UPWARD: &[(&str, &str)] = &[];

/// Cycles still being taken apart (issue 11), each as its sorted modules joined by ` <-> `.
/// The test fails when one of these is gone too, so the list cannot go stale.
const KNOWN_CYCLES: &[&str] = &[];

/// A module path such as `uplink::health::probe` (the crate root is the empty path).
type Module = String;

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every module file of the library (binaries excluded), by module path.
fn modules() -> BTreeMap<Module, PathBuf> {
    fn walk(dir: &Path, prefix: &[String], out: &mut BTreeMap<Module, PathBuf>) {
        let mut entries: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                if prefix.is_empty() && name == "bin" {
                    continue;
                }
                let mut p = prefix.to_vec();
                p.push(name);
                walk(&path, &p, out);
            } else if let Some(stem) = name.strip_suffix(".rs") {
                let mut p = prefix.to_vec();
                if stem != "mod" && stem != "lib" {
                    p.push(stem.to_string());
                }
                out.insert(p.join("::"), path);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(&src_dir(), &[], &mut out);
    out
}

/// The code of a file without comments and string literals' contents (a `crate::x` in a doc
/// comment or a message is no import).
fn code_only(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let mut in_str = false;
        let mut prev = ' ';
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            if !in_str && c == '/' && chars.peek() == Some(&'/') {
                break;
            }
            if c == '"' && prev != '\\' && prev != '\'' {
                in_str = !in_str;
                out.push(' ');
            } else if !in_str {
                out.push(c);
            }
            prev = c;
        }
        out.push('\n');
    }
    out
}

/// The inline modules of `code` (`mod tests { … }`), each as (where its body starts, where
/// it ends, its name): inside one, `super::` is the file's own module.
fn inline_modules(code: &str) -> Vec<(usize, usize, String)> {
    let bytes = code.as_bytes();
    let mut out = Vec::new();
    let mut open: Vec<(usize, usize, String)> = Vec::new(); // (depth, start, name)
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            // A char literal (`'{'`, `'\''`) is no brace; a lifetime has no closing quote.
            b'\'' if bytes.get(i + 1) == Some(&b'\\') => {
                i += code[i + 2..].find('\'').map_or(bytes.len(), |j| j + 3);
                continue;
            }
            b'\'' if bytes.get(i + 2) == Some(&b'\'') => {
                i += 3;
                continue;
            }
            b'{' => {
                let before = code[..i].trim_end();
                let name_start = before
                    .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .map_or(0, |j| j + 1);
                let head = before[..name_start].trim_end();
                let is_mod = head
                    .strip_suffix("mod")
                    .is_some_and(|h| !h.ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_'))
                    && !before[name_start..].is_empty();
                depth += 1;
                if is_mod {
                    open.push((depth, i, before[name_start..].to_string()));
                }
            }
            b'}' => {
                if open.last().is_some_and(|(d, _, _)| *d == depth) {
                    let (_, start, name) = open.pop().unwrap();
                    out.push((start, i, name));
                }
                depth = depth.saturating_sub(1);
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// The paths named after `crate::`, `super::` and `self::` in `code`, each as its segments
/// resolved against `here` (the module the code is in, or an inline module of it);
/// `use a::{b, c::d}` gives `a::b` and `a::c::d`.
fn referenced_paths(code: &str, here: &[String]) -> Vec<Vec<String>> {
    let bytes = code.as_bytes();
    let mut inline = inline_modules(code);
    inline.sort_by_key(|(start, _, _)| *start);
    let ident = |i: usize| -> (String, usize) {
        let mut j = i;
        while j < bytes.len() && (bytes[j].is_ascii_alphanumeric() || bytes[j] == b'_') {
            j += 1;
        }
        (code[i..j].to_string(), j)
    };
    // Reads `seg::seg::…` from i; returns the segments and where it stopped (at a `{` when
    // the path ends in a group).
    let read_path = |mut i: usize| -> (Vec<String>, usize) {
        let mut segs = Vec::new();
        loop {
            let (seg, j) = ident(i);
            if seg.is_empty() {
                return (segs, i);
            }
            segs.push(seg);
            i = j;
            if code[i..].starts_with("::") {
                i += 2;
            } else {
                return (segs, i);
            }
        }
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let boundary = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        let start = ["crate::", "super::", "self::"]
            .iter()
            .find(|p| boundary && code[i..].starts_with(**p));
        let Some(start) = start else {
            i += 1;
            continue;
        };
        let (mut segs, end) = read_path(i);
        let mut base: Vec<String> = match start.trim_end_matches(':') {
            "crate" => Vec::new(),
            _ => here
                .iter()
                .cloned()
                .chain(
                    inline
                        .iter()
                        .filter(|(s, e, _)| *s < i && i < *e)
                        .map(|(_, _, n)| n.clone()),
                )
                .collect(),
        };
        let mut k = 0;
        if segs[0] == "crate" {
            k = 1;
        }
        while k < segs.len() && (segs[k] == "super" || segs[k] == "self") {
            if segs[k] == "super" {
                base.pop();
            }
            k += 1;
        }
        let rest = segs.split_off(k);
        let prefix: Vec<String> = base.into_iter().chain(rest).collect();
        if code[end..].starts_with('{') {
            let close = code[end..].find('}').map_or(code.len(), |c| end + c);
            for item in code[end + 1..close].split(',') {
                let mut full = prefix.clone();
                full.extend(item.split("::").map(|s| s.trim().to_string()).filter(|s| {
                    !s.is_empty()
                        && s != "self"
                        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                }));
                out.push(full);
            }
            i = close;
        } else {
            out.push(prefix);
            i = end.max(i + 1);
        }
    }
    out
}

/// The module a path names: its longest prefix that is a module file.
fn resolve(path: &[String], modules: &BTreeMap<Module, PathBuf>) -> Option<Module> {
    (0..=path.len())
        .rev()
        .map(|n| path[..n].join("::"))
        .find(|m| modules.contains_key(m))
}

/// The import graph between module files: module → the modules it names.
fn graph() -> BTreeMap<Module, BTreeSet<Module>> {
    let modules = modules();
    let mut edges = BTreeMap::new();
    for (module, file) in &modules {
        let here: Vec<String> = if module.is_empty() {
            Vec::new()
        } else {
            module.split("::").map(str::to_string).collect()
        };
        let code = code_only(&fs::read_to_string(file).unwrap());
        let mut to = BTreeSet::new();
        for path in referenced_paths(&code, &here) {
            if let Some(target) = resolve(&path, &modules) {
                // A module naming its own parent folder's `mod.rs` or itself is no edge worth
                // reporting when it only re-exports; the crate root is the declarations.
                if target != *module && !target.is_empty() && !module.is_empty() {
                    to.insert(target);
                }
            }
        }
        edges.insert(module.clone(), to);
    }
    edges
}

fn layer_of(module: &str) -> usize {
    let top = module.split("::").next().unwrap_or("");
    LAYERS
        .iter()
        .position(|l| *l == top)
        .unwrap_or_else(|| panic!("module {module} is in no layer: add its folder to LAYERS"))
}

#[test]
fn every_module_imports_only_from_its_own_layer_or_below() {
    let mut upward = Vec::new();
    for (from, tos) in graph() {
        for to in tos {
            if layer_of(&to) > layer_of(&from) && !UPWARD.contains(&(from.as_str(), to.as_str())) {
                upward.push(format!("{from} -> {to}"));
            }
        }
    }
    assert!(upward.is_empty(), "upward imports:\n{}", upward.join("\n"));
}

#[test]
fn no_two_modules_import_each_other_round_a_loop() {
    let g = graph();
    // Tarjan's strongly connected components; any component of two or more is a cycle.
    struct Tarjan<'a> {
        g: &'a BTreeMap<Module, BTreeSet<Module>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        cycles: Vec<Vec<&'a str>>,
    }
    impl<'a> Tarjan<'a> {
        fn visit(&mut self, v: &'a str) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.g.get(v).into_iter().flatten() {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let lw = self.low[w];
                    let lv = self.low.get_mut(v).unwrap();
                    *lv = (*lv).min(lw);
                } else if self.on_stack.contains(w) {
                    let iw = self.index[w];
                    let lv = self.low.get_mut(v).unwrap();
                    *lv = (*lv).min(iw);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    component.push(w);
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort_unstable();
                    self.cycles.push(component);
                }
            }
        }
    }
    let mut t = Tarjan {
        g: &g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        cycles: Vec::new(),
    };
    for v in g.keys() {
        if !t.index.contains_key(v.as_str()) {
            t.visit(v);
        }
    }
    let cycles: Vec<String> = t.cycles.iter().map(|c| c.join(" <-> ")).collect();
    let new: Vec<&String> = cycles
        .iter()
        .filter(|c| !KNOWN_CYCLES.contains(&c.as_str()))
        .collect();
    let gone: Vec<&&str> = KNOWN_CYCLES
        .iter()
        .filter(|k| !cycles.iter().any(|c| c == *k))
        .collect();
    assert!(new.is_empty(), "module cycles:\n{new:#?}");
    assert!(
        gone.is_empty(),
        "cycles fixed: remove them from KNOWN_CYCLES: {gone:?}"
    );
}

#[test]
fn the_checker_sees_imports_of_every_form() {
    let here: Vec<String> = vec!["uplink".into(), "health".into(), "probe".into()];
    let code = code_only(
        "use crate::ipfire::{paths::Paths, profile};\nuse super::monitor::X;\n\
         // use crate::front::api;\nlet s = \"crate::front::cli\"; self::inner::f();\n\
         let c = '{'; mod tests { use super::Y; }",
    );
    let got = referenced_paths(&code, &here);
    let want: Vec<Vec<String>> = [
        "ipfire::paths::Paths",
        "ipfire::profile",
        "uplink::health::monitor::X",
        "uplink::health::probe::inner::f",
        "uplink::health::probe::Y",
    ]
    .iter()
    .map(|p| p.split("::").map(str::to_string).collect())
    .collect();
    assert_eq!(got, want);
}
