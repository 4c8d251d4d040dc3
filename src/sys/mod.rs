//! Seams to the operating system: the clock, the command runner (argv and a deadline),
//! logging to syslog, and wake-ups on link and file changes.

pub mod clock;
pub mod exec;
pub mod log;
pub mod watch;
