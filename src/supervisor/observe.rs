//! The pure step from sampled levels to the core's [`Event`]s: `red/active`,
//! `red/keepconnected`, whether pppd runs, the link's own state, and the health verdicts.
//! No I/O: the run loop samples (the costly samples through closures, taken only when they
//! can matter) and feeds the results in; the latches that keep an event from repeating live
//! here.
//!
//! * `red/active` and `red/keepconnected` are levels: an event is sent on a change only
//!   (`KeepconnectedRemoved` on a removal, never for its creation).
//! * "No pppd is running" ends a dial (IPFire's `system/connectd:68-71`: "No pppd is
//!   running. Trying reconnect."), but not within [`DIAL_GRACE`] of a dial we (or the network
//!   script that ran `connectd start`) just began: pppd takes a moment to appear.
//! * A lost link (pppd gone, carrier lost) is reported once, until RED comes up again or
//!   a new dial starts.
//! * A `red/keepconnected` found missing when the supervisor is about to switch or write
//!   the counter is the user's Disconnect: the core is told (it stops and exits) instead of
//!   the switch or the write going ahead.

use std::time::{Duration, Instant};

use super::machine::Event;
use crate::uplink::health::Verdict;

/// After a dial starts, how long pppd may take to appear before "no pppd is running".
pub(crate) const DIAL_GRACE: Duration = Duration::from_secs(5);

/// The cheap levels, sampled every [`PASSIVE_INTERVAL`](super::runloop::PASSIVE_INTERVAL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Levels {
    /// `red/keepconnected` exists.
    pub(crate) keepconnected: bool,
    /// `red/active` exists.
    pub(crate) red_active: bool,
    /// The profile the files describe dials with pppd.
    pub(crate) uses_pppd: bool,
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

/// The last levels seen and the latches.
#[derive(Debug, Clone)]
pub(crate) struct Observer {
    red_active: bool,
    keepconnected: bool,
    link_lost_sent: bool,
    dial_grace_until: Option<Instant>,
}

impl Observer {
    /// The levels at start-up. The network script runs `connectd start` right after it
    /// started pppd: a dial is under way.
    pub(crate) fn new(red_active: bool, keepconnected: bool, now: Instant) -> Observer {
        Observer {
            red_active,
            keepconnected,
            link_lost_sent: false,
            dial_grace_until: Some(now + DIAL_GRACE),
        }
    }

    /// `red/active` as last seen.
    pub(crate) fn red_active(&self) -> bool {
        self.red_active
    }

    /// One sample of the levels. `pppd_alive` is called only while waiting for RED on a
    /// pppd type outside the dial grace.
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
        let red = levels.red_active;
        if red != self.red_active {
            self.red_active = red;
            if red {
                self.link_lost_sent = false;
                out.red_came_up = true;
                out.events.push(Event::RedUp);
            } else {
                out.events.push(Event::RedDown);
            }
        }
        if !red && !self.link_lost_sent {
            // Waiting for red/active on a pppd type: a pppd that is gone will never bring
            // it up.
            let in_grace = self.dial_grace_until.is_some_and(|t| now < t);
            if levels.uses_pppd && !in_grace && !pppd_alive() {
                self.link_lost_sent = true;
                log::info!("no pppd is running: the dial failed");
                out.events.push(Event::LinkLost {
                    reason: "no pppd is running".into(),
                    carrier_lost: false,
                });
            }
        }
        out
    }

    /// Whether the link of the monitored uplink is worth sampling (after [`sample`]: RED
    /// is up and no loss was reported since).
    ///
    /// [`sample`]: Observer::sample
    pub(crate) fn wants_link(&self) -> bool {
        self.red_active && !self.link_lost_sent
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

    /// A dial begins now (a switch or a redial is executed).
    pub(crate) fn dial_started(&mut self, now: Instant) {
        self.dial_grace_until = Some(now + DIAL_GRACE);
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
/// last one sent, `Some(true)` healthy); `Suspect` is no change.
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
        Verdict::Healthy | Verdict::Down { .. } | Verdict::Suspect { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALIVE: fn() -> bool = || true;
    const DEAD: fn() -> bool = || false;

    fn levels(keepconnected: bool, red_active: bool, uses_pppd: bool) -> Levels {
        Levels {
            keepconnected,
            red_active,
            uses_pppd,
        }
    }

    #[test]
    fn levels_give_events_on_changes_only() {
        let t0 = Instant::now();
        let mut o = Observer::new(false, true, t0);
        let s = o.sample(levels(true, false, false), t0, ALIVE);
        assert!(s.events.is_empty());
        let s = o.sample(levels(true, true, false), t0, ALIVE);
        assert_eq!(s.events, vec![Event::RedUp]);
        assert!(s.red_came_up);
        assert!(o.red_active());
        let s = o.sample(levels(true, true, false), t0, ALIVE);
        assert!(s.events.is_empty() && !s.red_came_up);
        let s = o.sample(levels(false, false, false), t0, ALIVE);
        assert_eq!(s.events, vec![Event::KeepconnectedRemoved, Event::RedDown]);
        // Its creation is no event.
        let s = o.sample(levels(true, false, false), t0, ALIVE);
        assert!(s.events.is_empty());
    }

    #[test]
    fn no_pppd_ends_a_dial_after_the_grace_only_and_once() {
        let t0 = Instant::now();
        let mut o = Observer::new(false, true, t0);
        let s = o.sample(levels(true, false, true), t0 + Duration::from_secs(1), DEAD);
        assert!(s.events.is_empty(), "within the dial grace");
        let later = t0 + DIAL_GRACE;
        let s = o.sample(levels(true, false, true), later, DEAD);
        assert_eq!(
            s.events,
            vec![Event::LinkLost {
                reason: "no pppd is running".into(),
                carrier_lost: false
            }]
        );
        let s = o.sample(levels(true, false, true), later, DEAD);
        assert!(s.events.is_empty(), "latched");
        // A new dial: a fresh grace, and the loss may be reported again after it.
        o.dial_started(later);
        o.dial_done();
        let s = o.sample(levels(true, false, true), later, DEAD);
        assert!(s.events.is_empty());
        let s = o.sample(levels(true, false, true), later + DIAL_GRACE, DEAD);
        assert_eq!(s.events.len(), 1);
    }

    #[test]
    fn pppd_is_not_looked_for_on_ethernet_types_or_when_alive() {
        let t0 = Instant::now();
        let mut o = Observer::new(false, true, t0);
        let late = t0 + DIAL_GRACE;
        let s = o.sample(levels(true, false, false), late, || panic!("sampled"));
        assert!(s.events.is_empty());
        let s = o.sample(levels(true, false, true), late, ALIVE);
        assert!(s.events.is_empty());
    }

    #[test]
    fn a_lost_link_is_reported_once_until_red_comes_up_again() {
        let t0 = Instant::now();
        let mut o = Observer::new(true, true, t0);
        let lost = || {
            Some(LinkLoss {
                reason: "carrier lost on eth1".into(),
                carrier_lost: true,
            })
        };
        o.sample(levels(true, true, false), t0, ALIVE);
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
        o.sample(levels(true, false, false), t0, ALIVE);
        assert!(!o.wants_link(), "RED is down");
        let s = o.sample(levels(true, true, false), t0, ALIVE);
        assert_eq!(s.events, vec![Event::RedUp]);
        assert!(o.wants_link());
        assert!(o.link(lost()).is_some());
        assert_eq!(o.link(None), None);
    }

    #[test]
    fn a_missing_counter_is_a_disconnect_before_a_switch_or_a_write() {
        let t0 = Instant::now();
        let mut o = Observer::new(true, true, t0);
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
        let s = o.sample(levels(false, true, false), t0, ALIVE);
        assert!(s.events.is_empty());
    }

    #[test]
    fn after_an_answer_red_up_is_reported_as_a_level() {
        let mut o = Observer::new(false, true, Instant::now());
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
}
