//! The pure step from sampled levels to the core's [`Event`]s: `red/active`,
//! `red/keepconnected`, whether pppd runs, the link's own state, and the health verdicts.
//! No I/O: the run loop samples (the costly samples through closures, taken only when they
//! can matter) and feeds the results in; the latches that keep an event from repeating live
//! here.
//!
//! * `red/active` and `red/keepconnected` are levels: an event is sent on a change only
//!   (`KeepconnectedRemoved` on a removal, never for its creation).
//! * Whether pppd runs while RED is down on a pppd type is a level too, sent as
//!   [`Event::NoPppd`] on every sample: the machine decides when it ends a dial (not within
//!   its dial grace).
//! * A lost link of the monitored uplink (pppd gone, carrier lost) is reported once, until
//!   RED comes up again or a new dial was executed.
//! * A `red/keepconnected` found missing when the supervisor is about to switch or write
//!   the counter is the user's Disconnect: the core is told (it stops and exits) instead of
//!   the switch or the write going ahead.

use std::time::{Duration, Instant};

use super::machine::Event;
use crate::uplink::health::Verdict;

/// The cheap levels, sampled every [`PASSIVE_INTERVAL`](super::runloop::PASSIVE_INTERVAL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Levels {
    /// `red/keepconnected` exists.
    pub(crate) keepconnected: bool,
    /// `red/active` exists.
    pub(crate) red_active: bool,
    /// The profile the files describe dials with pppd.
    pub(crate) uses_pppd: bool,
    /// `connectd/red-stopped` exists: our red.down hook saw a deliberate stop.
    pub(crate) red_stopped: bool,
}

/// A lost link as the passive sample saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LinkLoss {
    /// What was seen.
    pub(crate) reason: String,
    /// The device itself has no carrier (a redial is futile).
    pub(crate) carrier_lost: bool,
}

/// What one sample gave.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Observed {
    /// For the core, in order.
    pub(crate) events: Vec<Event>,
    /// `red/active` appeared: a new uplink (new address, DNS servers, gateway).
    pub(crate) red_came_up: bool,
}

/// The last levels seen and the latch of the link sample.
#[derive(Debug, Clone)]
pub(crate) struct Observer {
    red_active: bool,
    keepconnected: bool,
    red_stopped: bool,
    link_lost_sent: bool,
    /// Since when `red/active` has been seen gone, not yet reported (the grace).
    down_since: Option<Instant>,
}

/// How long a vanished `red/active` on a type dhcpcd serves (DHCP, QMI) or STATIC waits
/// before it is reported as [`Event::RedDown`]: `dhcpcd.exe` removes it first and runs
/// red.down/ (where our hook marks a deliberate stop) right after (`dhcpcd.exe:85-89`),
/// and `networking/red stop` on STATIC likewise (`networking/red:495-504`). Without the
/// wait a supervisor sampling in between would start RED again under the administrator's
/// stop. A time, not a count of samples: a change wakes the supervisor at once, so samples
/// may come in bursts.
pub(crate) const DOWN_GRACE: Duration = Duration::from_secs(2);

/// The same wait on a pppd type: `networking/red stop` removes `red/active` (red:493)
/// before `red/keepconnected` and pppd (red:523-524), so a sample in between, which the
/// wake-up on `red/active`'s removal makes the rule, took the administrator's stop for a
/// dropped line and redialled (conformance, PPPoE, "shutdown (runlevel 0)").
pub(crate) const PPP_DOWN_GRACE: Duration = Duration::from_millis(500);

/// The grace of a vanished `red/active` on a type that does (`uses_pppd`) or does not
/// use pppd.
fn grace(uses_pppd: bool) -> Duration {
    if uses_pppd {
        PPP_DOWN_GRACE
    } else {
        DOWN_GRACE
    }
}

impl Observer {
    /// The levels at start-up.
    pub(crate) fn new(red_active: bool, keepconnected: bool) -> Observer {
        Observer {
            red_active,
            keepconnected,
            red_stopped: false,
            link_lost_sent: false,
            down_since: None,
        }
    }

    /// `red/active` as last seen.
    pub(crate) fn red_active(&self) -> bool {
        self.red_active
    }

    /// One sample of the levels at `now`. `pppd_alive` is called only while RED is down on
    /// a pppd type.
    pub(crate) fn sample(
        &mut self,
        levels: Levels,
        now: Instant,
        pppd_alive: impl FnOnce() -> bool,
    ) -> Observed {
        let mut out = Observed::default();
        if self.keepconnected && !levels.keepconnected {
            log::info!("red/keepconnected removed: the user disconnected");
            out.events.push(Event::KeepconnectedRemoved);
        }
        self.keepconnected = levels.keepconnected;
        // A deliberate stop on a type whose stop keeps red/keepconnected (our red.down
        // hook's marker): the same Disconnect, never undone.
        if levels.red_stopped
            && !self.red_stopped
            && !out.events.contains(&Event::KeepconnectedRemoved)
        {
            log::info!(
                "RED was stopped deliberately (connectd/red-stopped): the user disconnected"
            );
            out.events.push(Event::KeepconnectedRemoved);
        }
        self.red_stopped = levels.red_stopped;
        let red = levels.red_active;
        if red != self.red_active {
            if red {
                // A phase boundary of tools/bench's decomposition (BENCHMARKS.md).
                log::info!("red/active appeared: RED is up");
                self.red_active = true;
                self.link_lost_sent = false;
                out.red_came_up = true;
                out.events.push(Event::RedUp);
            } else if !levels.red_stopped
                && levels.keepconnected
                && now < *self.down_since.get_or_insert(now) + grace(levels.uses_pppd)
            {
                // Not yet: red.down or the rest of `networking/red stop` may be about to
                // tell a deliberate stop.
            } else {
                self.red_active = false;
                self.down_since = None;
                out.events.push(Event::RedDown);
            }
        } else {
            self.down_since = None;
        }
        // Only once RED is taken for down: in the grace, the stop's own `killall pppd`
        // follows its removal of keepconnected.
        if !red && !self.red_active && levels.uses_pppd && !pppd_alive() {
            // Waiting for red/active on a pppd type: a pppd that is gone will never bring
            // it up.
            out.events.push(Event::NoPppd);
        }
        out
    }

    /// Whether probe rounds may run: RED is up, and not in the grace after `red/active`
    /// vanished on a type dhcpcd serves or STATIC. In the grace the line is going or gone
    /// (a deliberate stop whose red.down is about to mark it, a NAKed or expired lease):
    /// rounds that fail on an interface without an address are no evidence of a
    /// blackhole, and each blocks the loop for its timeout, so three of them (3 s) came
    /// before the grace's samples and walked the chain where a redial, or the
    /// administrator's stop, was due (issue 12 item 9: `redctrl restart`).
    pub(crate) fn probing(&self) -> bool {
        self.red_active && self.down_since.is_none()
    }

    /// Whether the link of the monitored uplink is worth sampling (after [`sample`]: RED
    /// is up and no loss was reported since).
    ///
    /// [`sample`]: Observer::sample
    pub(crate) fn wants_link(&self) -> bool {
        self.red_active && !self.link_lost_sent && self.down_since.is_none()
    }

    /// The link sample of the monitored uplink, taken when [`Observer::wants_link`].
    pub(crate) fn link(&mut self, loss: Option<LinkLoss>) -> Option<Event> {
        if !self.wants_link() {
            return None;
        }
        let loss = loss?;
        self.link_lost_sent = true;
        Some(Event::LinkLost {
            reason: loss.reason,
            carrier_lost: loss.carrier_lost,
        })
    }

    /// A switch or redial was executed (whatever its outcome): a lost link may be reported
    /// again.
    pub(crate) fn dial_done(&mut self) {
        self.link_lost_sent = false;
    }

    /// After the core got the answer to an action, the level of `red/active` it must be
    /// told (the core's contract): `RedUp` when it exists.
    pub(crate) fn after_answer(&mut self, red_active: bool) -> Option<Event> {
        self.red_active = red_active;
        self.down_since = None;
        red_active.then_some(Event::RedUp)
    }

    /// About to switch profiles: a missing `red/keepconnected` is the user's Disconnect,
    /// and no switch may happen.
    pub(crate) fn before_switch(&mut self, keepconnected: bool) -> Option<Event> {
        if keepconnected {
            return None;
        }
        log::info!("red/keepconnected is gone (Disconnect): no switch");
        self.keepconnected = false;
        Some(Event::KeepconnectedRemoved)
    }

    /// About to write the counter: when the file was there and is gone, it is the user's
    /// Disconnect, not ours to undo. Otherwise the write goes ahead and the level is set.
    pub(crate) fn before_counter_write(&mut self, keepconnected: bool) -> Option<Event> {
        if self.keepconnected && !keepconnected {
            self.keepconnected = false;
            log::info!("red/keepconnected removed: the user disconnected");
            return Some(Event::KeepconnectedRemoved);
        }
        self.keepconnected = true;
        None
    }
}

/// The health engine's verdict for the core: a change of class only (`sent` remembers the
/// last one sent, `Some(true)` healthy). `Suspect` is no change of class: it is passed on
/// (on every such round) while the uplink counts as healthy, so the core can pre-test the
/// chain before the verdict (DESIGN.md 5.1).
pub(crate) fn health_event(
    sent: &mut Option<bool>,
    verdict: Verdict,
    iface: &str,
) -> Option<Event> {
    match verdict {
        Verdict::Healthy if *sent != Some(true) => {
            *sent = Some(true);
            Some(Event::Healthy)
        }
        Verdict::Down { reason } if *sent != Some(false) => {
            *sent = Some(false);
            Some(Event::Unhealthy {
                reason: format!("{reason} on {iface}"),
            })
        }
        Verdict::Suspect { reason } if *sent == Some(true) => Some(Event::Suspect {
            reason: format!("{reason} on {iface}"),
        }),
        Verdict::Healthy | Verdict::Down { .. } | Verdict::Suspect { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The time `ms` milliseconds into a test.
    fn t(ms: u64) -> Instant {
        static BASE: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        use crate::sys::clock::{Clock, SystemClock};
        *BASE.get_or_init(|| SystemClock.now()) + Duration::from_millis(ms)
    }

    const ALIVE: fn() -> bool = || true;
    const DEAD: fn() -> bool = || false;

    fn levels(keepconnected: bool, red_active: bool, uses_pppd: bool) -> Levels {
        Levels {
            keepconnected,
            red_active,
            uses_pppd,
            red_stopped: false,
        }
    }

    #[test]
    fn a_vanished_red_active_waits_for_red_down_before_it_is_a_dropped_line() {
        // DHCP: dhcpcd.exe removes red/active, then runs red.down (our hook). A sample in
        // between must not report a dropped line (the supervisor would start RED again
        // under the administrator's `network stop red`).
        let mut o = Observer::new(true, true);
        let s = o.sample(levels(true, false, false), t(0), ALIVE);
        assert!(s.events.is_empty());
        assert!(!o.wants_link());
        let s = o.sample(
            Levels {
                red_stopped: true,
                ..levels(true, false, false)
            },
            t(0),
            ALIVE,
        );
        assert_eq!(s.events, vec![Event::KeepconnectedRemoved, Event::RedDown]);
        // No marker: a dropped line after the grace, once.
        let mut o = Observer::new(true, true);
        let mut events = Vec::new();
        for i in 0..=8 {
            events.extend(
                o.sample(levels(true, false, false), t(i * 250), ALIVE)
                    .events,
            );
        }
        assert_eq!(events, vec![Event::RedDown]);
        // Samples in a burst (each change wakes the supervisor) do not shorten the grace.
        let mut o = Observer::new(true, true);
        for _ in 0..20 {
            assert!(
                o.sample(levels(true, false, false), t(10), ALIVE)
                    .events
                    .is_empty()
            );
        }
        assert_eq!(
            o.sample(levels(true, false, false), t(10) + DOWN_GRACE, ALIVE)
                .events,
            vec![Event::RedDown]
        );
        // pppd types: `networking/red stop` removes red/active (red:493) before
        // keepconnected (red:523); a sample in between is not a dropped line, and the
        // removal that follows is the Disconnect.
        let mut o = Observer::new(true, true);
        assert!(
            o.sample(levels(true, false, true), t(0), DEAD)
                .events
                .is_empty()
        );
        assert_eq!(
            o.sample(levels(false, false, true), t(5), DEAD).events,
            vec![Event::KeepconnectedRemoved, Event::RedDown, Event::NoPppd]
        );
        // A dropped line (ip-down; keepconnected stays): after the shorter grace.
        let mut o = Observer::new(true, true);
        assert!(
            o.sample(levels(true, false, true), t(0), ALIVE)
                .events
                .is_empty()
        );
        assert!(!o.probing());
        let s = o.sample(levels(true, false, true), t(0) + PPP_DOWN_GRACE, ALIVE);
        assert_eq!(s.events, vec![Event::RedDown]);
    }

    #[test]
    fn a_deliberate_stop_seen_by_red_down_is_the_users_disconnect_on_every_type() {
        // DHCP, STATIC, QMI: `network stop red` keeps red/keepconnected; our red.down hook
        // writes connectd/red-stopped instead. The supervisor must take it as Disconnect
        // (StopRed, Exit), not as a dropped line to bring up again.
        let mut o = Observer::new(true, true);
        let stopped = Levels {
            red_stopped: true,
            ..levels(true, false, false)
        };
        let s = o.sample(stopped, t(0), ALIVE);
        assert_eq!(s.events, vec![Event::KeepconnectedRemoved, Event::RedDown]);
        // A level: once.
        let s = o.sample(stopped, t(0), ALIVE);
        assert!(s.events.is_empty());
        // Both at once (PPP's Disconnect at shutdown): one Disconnect.
        let mut o = Observer::new(true, true);
        let s = o.sample(
            Levels {
                red_stopped: true,
                ..levels(false, false, false)
            },
            t(0),
            ALIVE,
        );
        assert_eq!(s.events, vec![Event::KeepconnectedRemoved, Event::RedDown]);
        // A vanished red/active alone is a dropped line (after the grace), not a Disconnect.
        let mut o = Observer::new(true, true);
        let mut events = Vec::new();
        for i in 0..=8 {
            events.extend(
                o.sample(levels(true, false, false), t(i * 250), ALIVE)
                    .events,
            );
        }
        assert_eq!(events, vec![Event::RedDown]);
    }

    #[test]
    fn levels_give_events_on_changes_only() {
        let mut o = Observer::new(false, true);
        let s = o.sample(levels(true, false, false), t(0), ALIVE);
        assert!(s.events.is_empty());
        let s = o.sample(levels(true, true, false), t(0), ALIVE);
        assert_eq!(s.events, vec![Event::RedUp]);
        assert!(s.red_came_up);
        assert!(o.red_active());
        let s = o.sample(levels(true, true, false), t(0), ALIVE);
        assert!(s.events.is_empty() && !s.red_came_up);
        let s = o.sample(levels(false, false, false), t(0), ALIVE);
        assert_eq!(s.events, vec![Event::KeepconnectedRemoved, Event::RedDown]);
        // Its creation is no event.
        let s = o.sample(levels(true, false, false), t(0), ALIVE);
        assert!(s.events.is_empty());
    }

    #[test]
    fn no_pppd_is_a_level_while_red_is_down_on_a_pppd_type() {
        let mut o = Observer::new(false, true);
        for _ in 0..2 {
            let s = o.sample(levels(true, false, true), t(0), DEAD);
            assert_eq!(s.events, vec![Event::NoPppd]);
        }
        let s = o.sample(levels(true, false, true), t(0), ALIVE);
        assert!(s.events.is_empty());
        // Not looked for on ethernet types, nor while RED is up.
        let s = o.sample(levels(true, false, false), t(0), || panic!("sampled"));
        assert!(s.events.is_empty());
        let s = o.sample(levels(true, true, true), t(0), || panic!("sampled"));
        assert_eq!(s.events, vec![Event::RedUp]);
    }

    #[test]
    fn a_lost_link_is_reported_once_until_red_comes_up_again_or_a_dial() {
        let mut o = Observer::new(true, true);
        let lost = || {
            Some(LinkLoss {
                reason: "carrier lost on eth1".into(),
                carrier_lost: true,
            })
        };
        o.sample(levels(true, true, false), t(0), ALIVE);
        assert!(o.wants_link());
        assert_eq!(
            o.link(lost()),
            Some(Event::LinkLost {
                reason: "carrier lost on eth1".into(),
                carrier_lost: true
            })
        );
        assert!(!o.wants_link());
        assert_eq!(o.link(lost()), None);
        o.dial_done();
        assert!(o.link(lost()).is_some(), "a new dial reports again");
        for i in 0..=8 {
            o.sample(levels(true, false, false), t(i * 250), ALIVE);
        }
        assert!(!o.wants_link(), "RED is down");
        let s = o.sample(levels(true, true, false), t(0), ALIVE);
        assert_eq!(s.events, vec![Event::RedUp]);
        assert!(o.wants_link());
        assert!(o.link(lost()).is_some());
        assert_eq!(o.link(None), None);
    }

    #[test]
    fn a_missing_counter_is_a_disconnect_before_a_switch_or_a_write() {
        let mut o = Observer::new(true, true);
        assert_eq!(o.before_switch(true), None);
        assert_eq!(o.before_switch(false), Some(Event::KeepconnectedRemoved));
        // Already known to be gone: the counter write recreates it (the core's Start).
        assert_eq!(o.before_counter_write(false), None);
        assert_eq!(o.before_counter_write(true), None);
        assert_eq!(
            o.before_counter_write(false),
            Some(Event::KeepconnectedRemoved)
        );
        // The next sample does not report the same removal twice.
        let s = o.sample(levels(false, true, false), t(0), ALIVE);
        assert!(s.events.is_empty());
    }

    #[test]
    fn after_an_answer_red_up_is_reported_as_a_level() {
        let mut o = Observer::new(false, true);
        assert_eq!(o.after_answer(true), Some(Event::RedUp));
        assert!(o.red_active());
        assert_eq!(o.after_answer(false), None);
        assert!(!o.red_active());
    }

    #[test]
    fn health_verdicts_are_sent_on_a_change_of_class() {
        let mut sent = None;
        assert_eq!(
            health_event(&mut sent, Verdict::Healthy, "ppp0"),
            Some(Event::Healthy)
        );
        assert_eq!(health_event(&mut sent, Verdict::Healthy, "ppp0"), None);
        let down = Verdict::Down {
            reason: "3/3 probe rounds failed".into(),
        };
        assert_eq!(
            health_event(&mut sent, down.clone(), "ppp0"),
            Some(Event::Unhealthy {
                reason: "3/3 probe rounds failed on ppp0".into()
            })
        );
        assert_eq!(health_event(&mut sent, down, "ppp0"), None);
    }

    #[test]
    fn a_suspect_round_is_passed_on_only_while_healthy() {
        let suspect = || Verdict::Suspect {
            reason: "1/3 probe rounds failed".into(),
        };
        let mut sent = None;
        assert_eq!(health_event(&mut sent, suspect(), "ppp0"), None);
        sent = Some(true);
        let ev = Some(Event::Suspect {
            reason: "1/3 probe rounds failed on ppp0".into(),
        });
        assert_eq!(health_event(&mut sent, suspect(), "ppp0"), ev);
        assert_eq!(health_event(&mut sent, suspect(), "ppp0"), ev, "a level");
        assert_eq!(sent, Some(true), "no change of class");
        sent = Some(false);
        assert_eq!(health_event(&mut sent, suspect(), "ppp0"), None);
    }
}
