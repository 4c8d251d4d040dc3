//! The supervisor: the pure decision core and the loop that executes it (DESIGN.md 4).

pub mod core;
#[cfg(test)]
mod core_prop;
#[cfg(test)]
mod sim;
pub mod shell;
pub mod direct;
