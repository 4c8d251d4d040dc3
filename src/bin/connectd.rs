//! The `connectd` binary: everything lives in the library. Called by the name
//! `manage-wan-profiles` (the link IPFire's add-on and `tools/install` make to it), it is
//! that command: one binary instead of two that share nearly all their code.
fn main() -> std::process::ExitCode {
    let called = std::env::args_os()
        .next()
        .map(std::path::PathBuf::from)
        .and_then(|p| p.file_name().map(|n| n.to_owned()));
    if called.as_deref() == Some(std::ffi::OsStr::new("manage-wan-profiles")) {
        connectd::front::cli::mwp::main()
    } else {
        connectd::front::cli::connectd::main()
    }
}
