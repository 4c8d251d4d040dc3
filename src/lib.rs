//! connectd: keeps an IPFire box's RED uplink alive.
//!
//! A drop-in replacement for IPFire's `connectd` shell script. It supervises the RED
//! (internet) connection, fails over along a chain of backup profiles when the uplink dies
//! or stops carrying traffic, and fails back once the primary has proven itself. See
//! DESIGN.md for the IPFire contract. The folders are the layers, each importing only from
//! the layers listed before it (checked by `tests/layers.rs`):
//!
//! * [`sys`]: seams to the operating system (clock, command runner, logging);
//! * [`ipfire`]: the box's files: readhash, paths under the root, profiles, the failover
//!   policy, our state file; read losslessly, written atomically;
//! * [`uplink`]: the line: the journaled profile switch, health probes and the monitor,
//!   pre-tests of resting profiles, traffic counters;
//! * [`supervisor`]: the pure decision machine, the loop that executes it, its control
//!   socket and its process;
//! * [`front`]: what people and programs talk to: the command lines, the status, the HTTP
//!   API.

pub mod error;
pub mod front;
pub mod ipfire;
pub mod supervisor;
pub mod sys;
pub mod uplink;

pub use error::{Error, Result};
