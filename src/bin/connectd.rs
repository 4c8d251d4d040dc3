//! The `connectd` binary: everything lives in the library.
fn main() -> std::process::ExitCode {
    connectd::cli::connectd::main()
}
