//! A pre-tester for tests: replays outcomes.

use std::collections::VecDeque;

use crate::ipfire::profile::Profile;
use crate::uplink::pretest::seam::{PreTester, PretestOutcome};

/// A pre-tester that replays outcomes (for supervisor tests). Records (profile, device) of
/// each call; when the script is empty it returns `default`.
#[derive(Debug, Clone)]
pub struct ScriptedPreTester {
    /// Outcomes still to replay.
    pub script: VecDeque<PretestOutcome>,
    /// The outcome once the script is empty.
    pub default: PretestOutcome,
    /// (profile name, device) of every call.
    pub calls: Vec<(String, String)>,
}

impl ScriptedPreTester {
    /// Always `outcome`.
    pub fn always(outcome: PretestOutcome) -> Self {
        ScriptedPreTester {
            script: VecDeque::new(),
            default: outcome,
            calls: Vec::new(),
        }
    }
}

impl PreTester for ScriptedPreTester {
    fn pretest(
        &mut self,
        profile: &Profile,
        device: &str,
        active_device: Option<&str>,
    ) -> PretestOutcome {
        self.calls
            .push((profile.name.to_string(), device.to_string()));
        if active_device == Some(device) {
            return PretestOutcome::CannotTest(format!(
                "shares the device {device} with the active uplink"
            ));
        }
        self.script
            .pop_front()
            .unwrap_or_else(|| self.default.clone())
    }
}
