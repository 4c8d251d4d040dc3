//! What people and programs talk to: the two command lines ([`cli`]), the status
//! they print ([`status`]) and the optional HTTP API ([`api`]). The shell completions
//! in `completions/` are generated from [`cli`] by a test (tests/completions.rs).

pub mod api;
pub mod cli;
pub mod status;
