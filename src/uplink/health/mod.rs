//! Health of the RED uplink (DESIGN.md sections 3 and 5): what is probed, how replies become
//! a verdict, and the cheap passive signals read between rounds.
//!
//! * [`Target`]s are built once per policy load by [`build_targets`]: names in
//!   `FAILOVER_CHECK_HOST` are resolved there, never on the probe path;
//! * a [`Prober`] runs one round: every target probed in parallel, on one socket per probe
//!   kind, bound to the RED interface. [`RealProber`] is the native one (ICMP echo, a DNS
//!   query, TCP connect); `ScriptedProber` (tests only) replays canned results;
//! * the [`Monitor`] is pure: it turns round results into a [`Verdict`] (RELIABILITY of N,
//!   immediate confirm rounds, FAILURES consecutive failed rounds, quality triggers over a
//!   sliding window). The gateway is reported, never voted;
//! * [`Passive`] reads carrier, operstate, pppd and `red/active` without sending anything.
//!
//! This file only declares and re-exports: the parts import each other (`target` below
//! them all), never this file.

mod check;
mod dns;
mod icmp;
mod monitor;
mod passive;
mod probe;
mod target;

pub use self::check::{red_iface, run_check};
pub(crate) use self::icmp::inet_checksum;
pub use self::monitor::{HealthStatus, Monitor, TargetStatus, Verdict};
pub use self::passive::{PROOF_LINKNAME, Passive, PassiveState};
pub use self::probe::RealProber;
#[cfg(any(test, feature = "test-util"))]
pub use self::probe::ScriptedProber;
pub(crate) use self::probe::seed16 as probe_seed;
pub use self::target::{
    DNS_PROBE_NAME, Probe, Prober, Role, Target, TargetResult, build_targets, dns_servers, gateway,
};
