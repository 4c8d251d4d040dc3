//! The supervisor: the pure decision machine, the run loop that feeds it and the effects
//! that execute it, its control socket and its process (pid file, lock, fork) (DESIGN.md
//! 4, 6).
//!
//! * [`machine`]: `Core::step(event, now) -> actions`, no I/O;
//! * `observe`: the pure step from sampled levels (files, pppd, the link, verdicts) to
//!   the machine's events;
//! * `effects`: executes the machine's actions through the [`Seams`];
//! * [`runloop`]: poll, signals, the control socket, the [`Supervisor`];
//! * `setup`: the policy and profiles, typed into the machine's config;
//! * [`offline`]: the control commands under the lock when no supervisor runs;
//! * [`control`], [`daemon`], [`hooks`]: the socket's protocol, the process, the
//!   `failover.d` hooks.

pub mod control;
pub mod daemon;
mod effects;
pub mod hooks;
pub mod machine;
#[cfg(test)]
mod machine_prop;
mod observe;
pub mod offline;
pub mod runloop;
#[cfg(test)]
mod scenario;
mod setup;
#[cfg(test)]
mod sim;
#[cfg(test)]
mod soak;

pub use effects::{Seams, status_from_files};
pub use runloop::{NoServices, Services, Supervisor};
