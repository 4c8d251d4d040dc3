//! Seams to the operating system: the clock, the command runner (argv and a deadline),
//! and logging to syslog.

pub mod clock;
pub mod exec;
pub mod log;
