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
#[derive(Debug)]
pub enum Error {
    /// An I/O operation on a file failed.
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's reason.
        source: io::Error,
    },

    /// A file exists but its contents are unusable.
    Parse {
        /// The file.
        file: PathBuf,
        /// 1-based line number, when the problem sits on one line.
        line: Option<usize>,
        /// What is wrong.
        msg: String,
    },

    /// A settings key has a value that is not allowed.
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
    Usage {
        /// The argument (e.g. `NAME`, `--type`).
        arg: String,
        /// Why it is refused.
        msg: String,
    },

    /// A profile does not exist.
    NoSuchProfile(String),

    /// An external program could not be run or failed.
    Command {
        /// The program.
        argv0: String,
        /// What happened (exit status, timeout, last lines of stderr).
        msg: String,
    },

    /// Another instance holds the lock.
    Busy(String),

    /// A failure at run time that fits no other variant.
    Failed(String),
}

// Written out rather than derived (thiserror): eight messages do not earn two crates,
// one of them a proc-macro, that IPFire would have to package.
impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Io { path, source } => write!(f, "{}: {source}", path.display()),
            Error::Parse { file, line, msg } => match line {
                Some(l) => write!(f, "{}:{l}: {msg}", file.display()),
                None => write!(f, "{}: {msg}", file.display()),
            },
            Error::BadValue {
                file,
                key,
                value,
                msg,
            } => write!(f, "{}: {key}={value:?}: {msg}", file.display()),
            Error::Usage { arg, msg } => write!(f, "{arg}: {msg}"),
            Error::NoSuchProfile(name) => write!(f, "profile {name:?} does not exist"),
            Error::Command { argv0, msg } => write!(f, "{argv0}: {msg}"),
            Error::Busy(msg) | Error::Failed(msg) => f.write_str(msg),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
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
pub(crate) trait IoContext<T> {
    /// Maps an `io::Error` into [`Error::Io`] naming `path`.
    fn at(self, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| Error::io(path, e))
    }
}

#[cfg(test)]
mod display_tests {
    use super::*;

    #[test]
    fn messages_name_the_object() {
        let io = Error::Io {
            path: "/var/ipfire/ppp/settings".into(),
            source: io::Error::from_raw_os_error(2),
        };
        assert!(
            io.to_string()
                .starts_with("/var/ipfire/ppp/settings: No such file")
        );
        assert!(std::error::Error::source(&io).is_some());
        let p = |line| Error::Parse {
            file: "s".into(),
            line,
            msg: "bad".into(),
        };
        assert_eq!(p(Some(3)).to_string(), "s:3: bad");
        assert_eq!(p(None).to_string(), "s: bad");
        let v = Error::BadValue {
            file: "f".into(),
            key: "K".into(),
            value: "v".into(),
            msg: "no".into(),
        };
        assert_eq!(v.to_string(), "f: K=\"v\": no");
        assert_eq!(Error::usage("NAME", "empty").to_string(), "NAME: empty");
        assert_eq!(
            Error::NoSuchProfile("x".into()).to_string(),
            "profile \"x\" does not exist"
        );
        assert_eq!(Error::Failed("boom".into()).to_string(), "boom");
        assert!(std::error::Error::source(&Error::Busy("b".into())).is_none());
    }
}
