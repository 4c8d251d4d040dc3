//! The shell completions in `completions/` (bash, zsh, fish for both commands) are made
//! from the CLI definitions by clap_complete, a dev-dependency: the binaries do not carry
//! the generator. This test fails when a file no longer matches the CLI;
//! `CONNECTD_BLESS=1 cargo test --test integration completions` rewrites them.
#![allow(clippy::unwrap_used)]

use clap::CommandFactory;
use clap_complete::Shell;

const COMMANDS: [&str; 2] = ["connectd", "manage-wan-profiles"];
const SHELLS: [(Shell, &str); 3] = [
    (Shell::Bash, "bash"),
    (Shell::Zsh, "zsh"),
    (Shell::Fish, "fish"),
];

fn generate(shell: Shell, which: &str) -> String {
    let mut cmd = match which {
        "connectd" => connectd::front::cli::connectd::Args::command(),
        _ => connectd::front::cli::mwp::Args::command(),
    };
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, which, &mut out);
    String::from_utf8(out).unwrap()
}

/// The file a script goes by in `completions/` (zsh's `fpath` wants `_NAME`).
fn file_name(shell: &str, which: &str) -> String {
    match shell {
        "zsh" => format!("_{which}"),
        "fish" => format!("{which}.fish"),
        _ => format!("{which}.{shell}"),
    }
}

#[test]
fn completions_in_the_repository_match_the_cli() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("completions");
    let bless = std::env::var_os("CONNECTD_BLESS").is_some();
    for (shell, name) in SHELLS {
        for c in COMMANDS {
            let want = generate(shell, c);
            assert!(want.contains(c), "{name} {c}");
            let path = dir.join(file_name(name, c));
            if bless {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&path, &want).unwrap();
                continue;
            }
            let have = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                have == want,
                "{} is out of date: run CONNECTD_BLESS=1 cargo test --test integration completions",
                path.display()
            );
        }
    }
    let bash = generate(Shell::Bash, "connectd");
    for sub in ["failover", "failback", "status", "api-key"] {
        assert!(bash.contains(sub), "{sub}");
    }
}
