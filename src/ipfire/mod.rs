//! The box's files (DESIGN.md 1–3, 6): IPFire's readhash format, every path under the
//! root prefix, atomic writes, the connection profiles in `/var/ipfire/ppp`, the failover
//! policy in `/var/ipfire/connectd/settings` and connectd's own state file.

pub mod chain_view;
pub mod ethernet;
pub mod fsutil;
pub mod history;
pub mod journal;
pub mod paths;
pub mod policy;
pub mod policy_edit;
pub mod profile;
pub mod readhash;
pub mod state;
