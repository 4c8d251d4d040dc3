//! Passwords: [`Secret`] (never printed), and the side file for a password IPFire's
//! readhash cannot carry ([`password_file`]).

use std::fmt;
use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::ipfire::paths::Paths;
use crate::ipfire::profile::name::ProfileName;

/// A password, never printed by `Debug`.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() {
            "\"\""
        } else {
            "\"****\""
        })
    }
}

/// Longest password pppd reads from its secrets file (`MAXSECRETLEN` is 256 with the NUL).
pub const MAX_PASSWORD_BYTES: usize = 255;

/// Where a profile's password lives when the profile file cannot hold it:
/// `/var/ipfire/connectd/secret-NAME` (mode 0600, the password's bytes, no newline).
///
/// The shell readhash drops a `PASSWORD=` line with `'`, `"`, `\`, `$`, `!`, ... (and
/// IPFire's `eval` would run some of them), so such a password is never stored in the
/// profile. [`super::create`] puts it here instead, [`super::Profile::load`] reads it back
/// when the profile has no `PASSWORD`, and activation writes it into `ppp/secrets` quoted the
/// way pppd reads it. A password the readhash can carry stays in the profile, as the WUI keeps it.
pub fn password_file(paths: &Paths, name: &ProfileName) -> PathBuf {
    paths.connectd_dir().join(format!("secret-{name}"))
}

/// Whether `password` can be stored as `PASSWORD=` in a profile (see [`password_file`]).
pub fn password_fits_profile(password: &str) -> bool {
    crate::ipfire::readhash::check_value(password).is_ok()
}

/// Checks a password for pppd's secrets file: at most [`MAX_PASSWORD_BYTES`] bytes and no
/// control characters (a line break would end the secrets line). Every printable character,
/// quotes and backslashes included, is fine: [`crate::uplink::switch::secrets_line`] quotes it.
/// The message never shows the password.
pub fn check_password(password: &str) -> Result<()> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(Error::usage(
            "PASSWORD",
            format!("longer than the {MAX_PASSWORD_BYTES} bytes pppd accepts"),
        ));
    }
    if password.chars().any(char::is_control) {
        return Err(Error::usage(
            "PASSWORD",
            "contains a control character (e.g. a line break), which pppd's secrets file cannot carry",
        ));
    }
    Ok(())
}
