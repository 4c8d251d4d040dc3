//! The pre-test seam: [`PreTester`] and what it finds ([`PretestOutcome`]), apart from the
//! real pre-tests so that a fake needs only this.

use crate::ipfire::profile::Profile;

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

/// The seam: pre-tests one profile whose line is on `device`, while the active uplink runs
/// on `active_device` (`None`: nothing is active).
pub trait PreTester {
    /// Never blocks longer than its own deadline (a few seconds).
    fn pretest(
        &mut self,
        profile: &Profile,
        device: &str,
        active_device: Option<&str>,
    ) -> PretestOutcome;
}
