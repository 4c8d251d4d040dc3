//! The `manage-wan-profiles` binary: everything lives in the library.
fn main() -> std::process::ExitCode {
    connectd::front::cli::mwp::main()
}
