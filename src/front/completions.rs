//! Shell completions for `connectd` and `manage-wan-profiles` (clap_complete).
//!
//! `connectd completions SHELL [COMMAND]` prints them; `completions/` in the repository
//! holds the generated bash, zsh and fish files, which a test keeps in step with the CLI
//! (`CONNECTD_BLESS=1 cargo test completions` rewrites them after a CLI change).

use clap::CommandFactory;
use clap_complete::Shell;

use crate::error::{Error, Result};

/// The commands completions exist for.
pub const COMMANDS: [&str; 2] = ["connectd", "manage-wan-profiles"];

/// The completion script of `which` (`connectd` or `manage-wan-profiles`) for `shell`
/// (`bash`, `zsh`, `fish`, `elvish`, `powershell`).
pub fn completions(shell: &str, which: &str) -> Result<String> {
    let sh: Shell = shell.parse().map_err(|_| {
        Error::usage(
            "SHELL",
            format!("{shell:?} is not one of bash, zsh, fish, elvish, powershell"),
        )
    })?;
    let mut cmd = match which {
        "connectd" => crate::front::cli::connectd::Args::command(),
        "manage-wan-profiles" => crate::front::cli::mwp::Args::command(),
        other => {
            return Err(Error::usage(
                "COMMAND",
                format!("{other:?} is not connectd or manage-wan-profiles"),
            ));
        }
    };
    let mut out = Vec::new();
    clap_complete::generate(sh, &mut cmd, which, &mut out);
    String::from_utf8(out).map_err(|e| Error::Failed(format!("completions: {e}")))
}

/// The file name a completion script goes by in `completions/`.
pub fn file_name(shell: &str, which: &str) -> String {
    match shell {
        "zsh" => format!("_{which}"),
        "fish" => format!("{which}.fish"),
        _ => format!("{which}.{shell}"),
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // blessing writes the checked-in files
mod tests {
    use super::*;

    #[test]
    fn every_shell_and_command() {
        for sh in ["bash", "zsh", "fish"] {
            for c in COMMANDS {
                let s = completions(sh, c).unwrap();
                assert!(s.contains(c), "{sh} {c}");
            }
        }
        let b = completions("bash", "connectd").unwrap();
        for sub in ["failover", "failback", "status", "api-key"] {
            assert!(b.contains(sub), "{sub}");
        }
        assert_eq!(completions("tcsh", "connectd").unwrap_err().exit_code(), 2);
        assert_eq!(completions("bash", "rm").unwrap_err().exit_code(), 2);
    }

    /// The checked-in `completions/` match the CLI.
    #[test]
    fn checked_in_completions_are_current() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("completions");
        let bless = std::env::var_os("CONNECTD_BLESS").is_some();
        for sh in ["bash", "zsh", "fish"] {
            for c in COMMANDS {
                let want = completions(sh, c).unwrap();
                let path = dir.join(file_name(sh, c));
                if bless {
                    std::fs::create_dir_all(&dir).unwrap();
                    std::fs::write(&path, &want).unwrap();
                    continue;
                }
                let have = std::fs::read_to_string(&path).unwrap_or_default();
                assert!(
                    have == want,
                    "{} is out of date: run CONNECTD_BLESS=1 cargo test completions",
                    path.display()
                );
            }
        }
    }
}
