//! A prober for tests: replays canned rounds.

use std::collections::VecDeque;
use std::time::Duration;

use crate::uplink::health::target::{Prober, Target, TargetResult};

/// A prober that replays scripted rounds (for tests of the monitor and the supervisor).
///
/// Each round pops the next script entry: a list of `(host, Some(rtt) | None)`; targets not
/// named answer with the default RTT when `default_up`, else fail. When the script is empty
/// every target gets the default. It records the interface and targets of every call.
#[derive(Debug, Default)]
pub struct ScriptedProber {
    /// Rounds still to replay.
    pub script: VecDeque<Vec<(String, Option<Duration>)>>,
    /// Whether unnamed targets answer.
    pub default_up: bool,
    /// The RTT of unnamed targets that answer.
    pub default_rtt: Duration,
    /// (interface, number of targets) of each round run so far.
    pub calls: Vec<(String, usize)>,
}

impl ScriptedProber {
    /// Every target answers after 10 ms unless scripted otherwise.
    pub fn all_up() -> Self {
        ScriptedProber {
            default_up: true,
            default_rtt: Duration::from_millis(10),
            ..Self::default()
        }
    }

    /// No target answers unless scripted otherwise.
    pub fn all_down() -> Self {
        ScriptedProber::default()
    }

    /// Appends one round.
    pub fn push(&mut self, round: &[(&str, Option<Duration>)]) {
        self.script
            .push_back(round.iter().map(|(h, r)| (h.to_string(), *r)).collect());
    }
}

impl Prober for ScriptedProber {
    fn round(&mut self, iface: &str, targets: &[Target], timeout: Duration) -> Vec<TargetResult> {
        self.calls.push((iface.to_string(), targets.len()));
        let round = self.script.pop_front().unwrap_or_default();
        targets
            .iter()
            .map(|t| {
                let scripted = round.iter().find(|(h, _)| *h == t.host).map(|(_, r)| *r);
                let rtt = match scripted {
                    Some(r) => r,
                    None if self.default_up => Some(self.default_rtt),
                    None => None,
                };
                match rtt {
                    Some(r) => TargetResult::ok(t, r),
                    None => TargetResult::failed(
                        t,
                        format!("no reply within {} ms", timeout.as_millis()),
                    ),
                }
            })
            .collect()
    }
}
