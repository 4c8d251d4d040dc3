//! The journal of a switch in progress, as the state file keeps it (DESIGN.md 6), and the
//! two small vocabularies it is written in: the [`Step`]s of a switch and the
//! [`SwitchKind`] that says why it happens.
//!
//! Both enums are defined here, in the layer of the files, because the state file stores
//! them; the switch (`uplink::switch`) and the decision core (`supervisor::machine`) use
//! them from here. Their names on disk are the strings earlier versions wrote, so a state
//! file reads the same in both directions across an upgrade or a downgrade.

use serde::{Deserialize, Serialize};

use crate::ipfire::ethernet::RedValues;
use crate::ipfire::profile::ProfileName;

/// A finished step of a switch (`uplink::switch::activate`), in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// The switch is about to start; nothing has changed.
    Intent,
    /// `network stop red` ran and pppd/dhcpcd of RED are gone (or the wait ran out).
    Stopped,
    /// `ethernet/settings` describes the new profile (or needed no change).
    EthernetWritten,
    /// `ppp/settings` is a hard link to the new profile.
    Linked,
    /// `ppp/secrets` holds the new profile's credentials (or was left alone: ethernet types).
    SecretsWritten,
    /// `network start red` ran.
    Started,
}

impl Step {
    /// Every step, in order.
    pub const ALL: [Step; 6] = [
        Step::Intent,
        Step::Stopped,
        Step::EthernetWritten,
        Step::Linked,
        Step::SecretsWritten,
        Step::Started,
    ];

    /// The step's name, as in the journal and the crash-injection seam.
    pub fn name(self) -> &'static str {
        match self {
            Step::Intent => "intent",
            Step::Stopped => "stopped",
            Step::EthernetWritten => "ethernet_written",
            Step::Linked => "linked",
            Step::SecretsWritten => "secrets_written",
            Step::Started => "started",
        }
    }

    /// The step called `name`.
    pub(crate) fn from_name(name: &str) -> Option<Step> {
        Step::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// Why a profile is activated: in the journal, the switch history and the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SwitchKind {
    /// Away from a dead link along the chain.
    Failover,
    /// Trial failback to the primary.
    Failback,
    /// Back to the backup after a failed trial.
    Rollback,
    /// A control command.
    Manual,
    /// A new pass after the whole chain failed.
    ChainPass,
    /// Failover off: IPFire's BACKUPPROFILE switch after MAXRETRIES.
    Legacy,
}

impl SwitchKind {
    /// The kind's name, as in the state file: `failover`, `chain-pass`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            SwitchKind::Failover => "failover",
            SwitchKind::Failback => "failback",
            SwitchKind::Rollback => "rollback",
            SwitchKind::Manual => "manual",
            SwitchKind::ChainPass => "chain-pass",
            SwitchKind::Legacy => "legacy",
        }
    }
}

impl std::fmt::Display for SwitchKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A switch in progress: written before the first step, removed after the last.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journal {
    /// The profile active before the switch.
    pub from: Option<ProfileName>,
    /// The profile being activated.
    pub to: ProfileName,
    /// The last step completed; `None` while the switch is only planned (on disk:
    /// `"planned"`).
    #[serde(with = "step_or_planned")]
    pub step: Option<Step>,
    /// Unix time the switch began.
    pub started: i64,
    /// Why.
    pub kind: SwitchKind,
    /// RED_* of `ethernet/settings` before the switch (the primary's, when leaving it).
    #[serde(default)]
    pub previous_red: Option<RedValues>,
}

impl Journal {
    /// Whether the switch was interrupted before the old RED was stopped: nothing changed
    /// yet, the files still describe the old profile.
    pub(crate) fn nothing_changed(&self) -> bool {
        matches!(self.step, None | Some(Step::Intent))
    }
}

/// The journal's `step` on disk: a [`Step::name`], or `"planned"` before the first step.
mod step_or_planned {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    use super::Step;

    const PLANNED: &str = "planned";

    pub(super) fn serialize<S: Serializer>(step: &Option<Step>, ser: S) -> Result<S::Ok, S::Error> {
        ser.serialize_str(step.map_or(PLANNED, Step::name))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(de: D) -> Result<Option<Step>, D::Error> {
        let name = String::deserialize(de)?;
        if name == PLANNED {
            return Ok(None);
        }
        Step::from_name(&name)
            .map(Some)
            .ok_or_else(|| D::Error::custom(format!("unknown journal step {name:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_have_stable_names_in_order() {
        let names: Vec<&str> = Step::ALL.iter().map(|s| s.name()).collect();
        assert_eq!(
            names,
            [
                "intent",
                "stopped",
                "ethernet_written",
                "linked",
                "secrets_written",
                "started"
            ]
        );
        for s in Step::ALL {
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.name())
            );
            assert_eq!(Step::from_name(s.name()), Some(s));
        }
        assert!(Step::ALL.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn switch_kinds_keep_their_names() {
        for (k, name) in [
            (SwitchKind::Failover, "failover"),
            (SwitchKind::Failback, "failback"),
            (SwitchKind::Rollback, "rollback"),
            (SwitchKind::Manual, "manual"),
            (SwitchKind::ChainPass, "chain-pass"),
            (SwitchKind::Legacy, "legacy"),
        ] {
            assert_eq!(k.as_str(), name);
            assert_eq!(serde_json::to_string(&k).unwrap(), format!("\"{name}\""));
            assert_eq!(
                serde_json::from_str::<SwitchKind>(&format!("\"{name}\"")).unwrap(),
                k
            );
        }
    }

    #[test]
    fn journal_step_planned_and_steps_on_disk() {
        let mut j = Journal {
            from: Some(ProfileName::new("1").unwrap()),
            to: ProfileName::new("2").unwrap(),
            step: None,
            started: 7,
            kind: SwitchKind::Failover,
            previous_red: None,
        };
        let v = serde_json::to_value(&j).unwrap();
        assert_eq!(v["step"], "planned");
        assert_eq!(v["kind"], "failover");
        assert!(j.nothing_changed());
        j.step = Some(Step::Linked);
        let v = serde_json::to_value(&j).unwrap();
        assert_eq!(v["step"], "linked");
        assert!(!j.nothing_changed());
        assert_eq!(serde_json::from_value::<Journal>(v).unwrap(), j);
        let bad = serde_json::json!({"from": null, "to": "2", "step": "halfway",
            "started": 1, "kind": "failover"});
        let e = serde_json::from_value::<Journal>(bad)
            .unwrap_err()
            .to_string();
        assert!(e.contains("halfway"), "{e}");
    }
}
