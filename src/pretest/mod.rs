//! Non-disruptive pre-tests of resting profiles (DESIGN.md section 5). The health issue
//! fills in the real tests; the types below are the contract the rest of the crate uses.

use crate::error::Result;
use crate::paths::Paths;
use crate::profile::ProfileName;

/// The result of pre-testing one profile.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "result", content = "detail", rename_all = "snake_case")]
pub enum PretestOutcome {
    /// The profile's line answered (e.g. a PADO, a DHCP offer with a router, an ARP reply).
    Passed(String),
    /// It did not; the reason says what was missing.
    Failed(String),
    /// It cannot be tested without disturbing the active uplink (same device), or the type
    /// has no pre-test; a trial switch is the test.
    CannotTest(String),
}

/// `manage-wan-profiles test NAME`: pre-tests a profile by name, with the box's current
/// RED as the active uplink.
pub fn test_profile(_paths: &Paths, name: &ProfileName) -> Result<PretestOutcome> {
    Ok(PretestOutcome::CannotTest(format!(
        "not implemented yet for profile {name}"
    )))
}
