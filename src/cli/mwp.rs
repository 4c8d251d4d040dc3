//! `manage-wan-profiles`: list, create, test, activate and show profiles. Placeholder: the
//! foundation issue fills this in.

use std::process::ExitCode;

/// Entry point.
pub fn main() -> ExitCode {
    eprintln!("manage-wan-profiles: not implemented yet");
    ExitCode::from(1)
}
