//! The supervisor: the pure decision machine, the run loop that feeds it and the effects
//! that execute it, its control socket and its process (pid file, lock, fork) (DESIGN.md
//! 4, 6).
//!
//! * [`machine`]: `Core::step(event, now) -> actions`, no I/O;
//! * `observe`: the pure step from sampled levels (files, pppd, the link, verdicts) to
//!   the machine's events;
//! * `effects`: executes the machine's actions through the seams (`Seams`, built by the
//!   front that starts the daemon); `prove`: its part for the pre-tests and the failback
//!   proof, which run off the loop;
//! * `runloop`: poll, signals, the control socket, the `Supervisor`;
//! * `setup`: the policy and profiles, typed into the machine's config;
//! * `offline`: the control commands under the lock when no supervisor runs;
//! * [`status`]: the one typed status (the files, the core's view, health, traffic);
//! * [`control`] (the socket's protocol), `daemon` (the process), `hooks` (the
//!   `failover.d` hooks).
//!
//! Only [`control`], [`status`] and the [`machine`] (whose snapshot is part of the status)
//! are public; the rest is the crate's.

pub mod control;
pub(crate) mod daemon;
mod effects;
pub(crate) mod hooks;
pub mod machine;
#[cfg(test)]
mod machine_prop;
mod observe;
pub(crate) mod offline;
mod prove;
pub(crate) mod runloop;
#[cfg(test)]
mod scenario;
mod setup;
#[cfg(test)]
mod sim;
#[cfg(test)]
mod sim_pretest;
#[cfg(test)]
mod soak;
pub mod status;

pub(crate) use effects::Seams;
pub(crate) use runloop::{Services, Supervisor};
