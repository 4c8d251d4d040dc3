//! Command-line front ends. The binaries in `src/bin` only call into here.

pub mod connectd;
pub mod mwp;
pub mod wui;
