//! The supervisor: the pure decision machine, the loop that executes it, its control socket
//! and its process (pid file, lock, fork) (DESIGN.md 4, 6).

pub mod control;
pub mod daemon;
pub mod direct;
pub mod hooks;
pub mod machine;
#[cfg(test)]
mod machine_prop;
pub mod shell;
#[cfg(test)]
mod sim;
#[cfg(test)]
mod soak;
pub mod status;
