//! connectd: keeps an IPFire box's RED uplink alive.
//!
//! A drop-in replacement for IPFire's `connectd` shell script. It supervises the RED
//! (internet) connection, fails over along a chain of backup profiles when the uplink dies
//! or stops carrying traffic, and fails back once the primary has proven itself. See
//! DESIGN.md for the IPFire contract; the modules below own one concern each:
//!
//! * [`readhash`], [`fsutil`], [`paths`]: IPFire's files, read losslessly, written atomically;
//! * [`profile`], [`switch`]: profiles and the one way the active profile ever changes;
//! * [`policy`]: the failover policy (`/var/ipfire/connectd/settings`);
//! * [`health`], [`pretest`]: native probes of the uplink and of resting profiles;
//! * [`supervisor`]: the pure decision core and the loop that executes it;
//! * [`exec`], [`clock`]: the seams to the outside world.

pub mod api;
pub mod cli;
pub mod clock;
pub mod completions;
pub mod control;
pub mod daemon;
pub mod error;
pub mod exec;
pub mod fsutil;
pub mod health;
pub mod hooks;
pub mod log;
pub mod paths;
pub mod policy;
pub mod pretest;
pub mod profile;
pub mod readhash;
pub mod state;
pub mod status;
pub mod supervisor;
pub mod switch;
pub mod traffic;

pub use error::{Error, Result};
