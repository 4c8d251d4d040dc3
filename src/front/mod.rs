//! What people and programs talk to: the two command lines ([`cli`]), the status
//! they print ([`status`]), the optional HTTP API ([`api`]) and
//! the shell completions.

pub mod api;
pub mod cli;
pub mod completions;
pub mod status;
