//! The `connectd` binary: everything lives in the library.
fn main() -> std::process::ExitCode {
    connectd::front::cli::connectd::main()
}
