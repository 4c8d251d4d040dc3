//! The supervisor: the pure decision core and the loop that executes it (DESIGN.md 4).

pub mod core;
#[cfg(test)]
mod core_prop;
pub mod direct;
pub mod shell;
#[cfg(test)]
mod sim;
#[cfg(test)]
mod soak;
