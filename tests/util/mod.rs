//! Shared test helpers.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The shared fixtures of an IPFire box, when present next to the repository.
pub fn fixture_box() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/ipfire-box");
    p.is_dir().then_some(p)
}

/// Whether we run as root (tests needing namespaces skip otherwise, saying why).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}
