//! The one error type of the library.
//!
//! Every variant names the object it is about (a file, a key, an argument, a program), so
//! the message a user sees is enough to find the problem. [`Error::exit_code`] maps the
//! variants onto the documented exit codes: 2 for bad usage or bad input, 1 for everything
//! that failed at run time.

use std::io;
use std::path::PathBuf;

/// Result with the library's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, with the object it went wrong on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O operation on a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: io::Error,
    },

    /// A file exists but its contents are unusable.
    #[error("{file}{}: {msg}", line.map(|l| format!(":{l}")).unwrap_or_default())]
    Parse {
        /// The file.
        file: PathBuf,
        /// 1-based line number, when the problem sits on one line.
        line: Option<usize>,
        /// What is wrong.
        msg: String,
    },

    /// A settings key has a value that is not allowed.
    #[error("{file}: {key}={value:?}: {msg}")]
    BadValue {
        /// The file the key was read from.
        file: PathBuf,
        /// The key.
        key: String,
        /// The offending value (never a secret: callers mask those).
        value: String,
        /// Why it is refused.
        msg: String,
    },

    /// A command-line argument or request parameter is invalid.
    #[error("{arg}: {msg}")]
    Usage {
        /// The argument (e.g. `NAME`, `--type`).
        arg: String,
        /// Why it is refused.
        msg: String,
    },

    /// A profile does not exist.
    #[error("profile {0:?} does not exist")]
    NoSuchProfile(String),

    /// An external program could not be run or failed.
    #[error("{argv0}: {msg}")]
    Command {
        /// The program.
        argv0: String,
        /// What happened (exit status, timeout, last lines of stderr).
        msg: String,
    },

    /// Another instance holds the lock.
    #[error("{0}")]
    Busy(String),

    /// A failure at run time that fits no other variant.
    #[error("{0}")]
    Failed(String),
}

impl Error {
    /// Builds an [`Error::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// Builds an [`Error::Usage`].
    pub fn usage(arg: impl Into<String>, msg: impl Into<String>) -> Self {
        Error::Usage {
            arg: arg.into(),
            msg: msg.into(),
        }
    }

    /// The process exit code for this error: 2 for bad usage or bad input, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Parse { .. }
            | Error::BadValue { .. }
            | Error::Usage { .. }
            | Error::NoSuchProfile(_) => 2,
            Error::Io { .. } | Error::Command { .. } | Error::Busy(_) | Error::Failed(_) => 1,
        }
    }
}

/// Adds the path to an `io::Result`.
pub trait IoContext<T> {
    /// Maps an `io::Error` into [`Error::Io`] naming `path`.
    fn at(self, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| Error::io(path, e))
    }
}
