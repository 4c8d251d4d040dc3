//! The line itself: the one journaled way the active profile changes ([`switch`]), native
//! health probes and the monitor that turns rounds into verdicts ([`health`]), non-disruptive
//! pre-tests of resting profiles ([`pretest`]) and the RED device's counters ([`traffic`]).

pub mod health;
pub mod pretest;
pub mod switch;
pub mod traffic;
