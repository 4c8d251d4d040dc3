//! `/var/ipfire/ethernet/settings`, written by IPFire's setup: the RED_* keys that decide
//! how `networking/red` brings RED up (`RED_TYPE`, `RED_DEV`, the STATIC address), which a
//! switch to a profile of another type or device rewrites and a failback restores.

use std::collections::BTreeMap;

use crate::error::Result;
use crate::ipfire::fsutil;
use crate::ipfire::paths::Paths;
use crate::ipfire::readhash::Document;

/// The keys of `ethernet/settings` a switch may change; every other line stays byte for byte.
pub const RED_KEYS: [&str; 10] = [
    "RED_TYPE",
    "RED_DEV",
    // Derived from RED_DEV: IPFire's network_get_intfs tells QMI from PPPoE by RED_DRIVER
    // (functions.network:63), suricata and the firewall by the interface it returns.
    "RED_DRIVER",
    "RED_MACADDR",
    "RED_ADDRESS",
    "RED_NETMASK",
    "RED_NETADDRESS",
    "DEFAULT_GATEWAY",
    "DNS1",
    "DNS2",
];

/// The [`RED_KEYS`] of `ethernet/settings`: key -> value, or `None` when the key is absent.
/// Serializable, so the supervisor can keep the primary's values in its state and restore
/// them exactly on failback (`restore` of `uplink::switch::activate`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RedValues(pub BTreeMap<String, Option<String>>);

impl RedValues {
    /// The RED_* values of a parsed `ethernet/settings`.
    pub fn from_doc(doc: &Document) -> Self {
        RedValues(
            RED_KEYS
                .iter()
                .map(|k| ((*k).to_string(), doc.get(k).map(String::from)))
                .collect(),
        )
    }

    /// The RED_* values of the box's `ethernet/settings` now.
    pub fn read(paths: &Paths) -> Result<Self> {
        Ok(Self::from_doc(&fsutil::read_settings(
            &paths.ethernet_settings(),
        )?))
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.as_deref())
    }
}
