//! The line itself: the one journaled way the active profile changes ([`switch`], with its
//! journal and the network-script call in [`journaled`]), native
//! health probes and the monitor that turns rounds into verdicts ([`health`]), non-disruptive
//! pre-tests of resting profiles ([`pretest`]) and the RED device's counters ([`traffic`]).

pub mod health;
pub mod journaled;
pub mod pretest;
pub mod proof;
pub mod switch;
pub mod traffic;
