//! A profile's name ([`ProfileName`]) and the check of a device name ([`valid_device`]):
//! checked before any path is built from them, so `../x` never reaches the filesystem.
//!
//! A module of its own, below everything else of the profiles, so that the failover policy
//! (which names profiles and devices) and the profiles (which read the policy) do not
//! import each other.

use std::fmt;

use crate::error::{Error, Result};

/// A validated profile name.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct ProfileName(String);

impl ProfileName {
    /// Checks `name`: `[A-Za-z0-9_-]{1,32}` (which includes the WUI's `1`..`5`).
    pub fn new(name: &str) -> Result<Self> {
        let ok = !name.is_empty()
            && name.len() <= 32
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if ok {
            Ok(ProfileName(name.to_string()))
        } else {
            Err(Error::usage(
                "NAME",
                format!("{name:?} is not a valid profile name (1 to 32 of A-Z a-z 0-9 _ -)"),
            ))
        }
    }

    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is one of the WUI's numbered slots `1`..`5`.
    pub(crate) fn is_wui_slot(&self) -> bool {
        matches!(self.0.as_str(), "1" | "2" | "3" | "4" | "5")
    }
}

impl TryFrom<String> for ProfileName {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        ProfileName::new(&s)
    }
}

impl From<ProfileName> for String {
    fn from(n: ProfileName) -> String {
        n.0
    }
}

impl fmt::Display for ProfileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether `dev` looks like a Linux interface name (1..15 chars, no `/`, no spaces).
pub fn valid_device(dev: &str) -> bool {
    !dev.is_empty()
        && dev.len() <= 15
        && dev
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.:@".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_before_any_path() {
        for bad in ["", "../x", "a b", "x/y", ".", "..", "a;b", &"x".repeat(33)] {
            let e = ProfileName::new(bad).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad:?}");
        }
        for good in ["1", "5", "usb-modem", "LTE_2", &"x".repeat(32)] {
            assert!(ProfileName::new(good).is_ok(), "{good:?}");
        }
    }
}
