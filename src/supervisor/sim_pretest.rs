// Copyright (C) 2026 The connectd developers
// SPDX-License-Identifier: GPL-3.0-or-later

//! Prove before moving (DESIGN.md 5.1) on the simulated clock: the timed failback vote
//! and the background pre-tests of the chain.

use std::time::Duration;

use super::machine::{Action, Command, Event, SwitchKind};
use super::sim::{Line, Sim, cmd, config, link, name};

fn pretests_of(sim: &Sim, p: &str) -> Vec<u64> {
    sim.times(|a| matches!(a, Action::Pretest { profile, .. } if profile.as_str() == p))
}

/// The actions of second `t`.
fn actions_at(sim: &Sim, t: u64) -> Vec<Action> {
    sim.log
        .iter()
        .filter(|r| r.t == t)
        .map(|r| r.action.clone())
        .collect()
}

// ---- A timed vote ----------------------------------------------------------------------

/// Primary 1 blackholed 100..400, backup 2 up: online on 2 at 109, the vote from 409.
fn failback_sim(primary: impl Fn(u64) -> Line + 'static) -> Sim {
    Sim::new(config(&["2", "3"]))
        .line("1", primary)
        .line("2", |_| Line::Up)
        .line("3", |_| Line::Up)
}

#[test]
fn the_failback_vote_takes_the_window() {
    let mut sim = failback_sim(|t| {
        if (100..400).contains(&t) {
            Line::Blackhole
        } else {
            Line::Up
        }
    });
    sim.start("1", true);
    sim.run_until(600);
    // FAILBACK_ATTEMPTS=3 over FAILBACK_VOTE_WINDOW=30: one test every 15 s, each alone.
    assert_eq!(
        pretests_of(&sim, "1"),
        vec![409, 424, 439],
        "{}",
        sim.dump()
    );
    assert!(
        sim.log.iter().all(|r| !matches!(&r.action,
            Action::Pretest { profile, attempts, .. } if profile.as_str() == "1" && *attempts != 1)),
        "one attempt per test"
    );
    let back: Vec<_> = sim
        .activates()
        .into_iter()
        .filter(|(_, p, _)| p == "1")
        .collect();
    assert_eq!(back, vec![(439, "1".into(), SwitchKind::Failback)]);
    // Between two tests the core waits on a deadline, it never sleeps.
    let mut probe = failback_sim(|t| {
        if (100..400).contains(&t) {
            Line::Blackhole
        } else {
            Line::Up
        }
    });
    probe.start("1", true);
    probe.run_until(415);
    let s = probe.core.snapshot(probe.now());
    assert_eq!(s.phase, "FailbackTest(1)");
    assert_eq!(
        probe.core.next_deadline(),
        Some(probe.t0 + Duration::from_secs(424))
    );
}

#[test]
fn a_primary_that_flaps_inside_the_window_does_not_pass() {
    // Up at 409, down 420..440 (the old three-answers-in-50-ms vote passed it at 409).
    let mut sim = failback_sim(|t| match t {
        100..=399 => Line::Blackhole,
        420..=439 => Line::Down,
        _ => Line::Up,
    });
    sim.start("1", true);
    sim.run_until(900);
    // 409 pass, 424 fail, 439 fail: lost at 439; the next vote 300 s later passes.
    assert_eq!(
        pretests_of(&sim, "1"),
        vec![409, 424, 439, 739, 754, 769],
        "{}",
        sim.dump()
    );
    let back: Vec<u64> = sim
        .activates()
        .into_iter()
        .filter(|(_, p, _)| p == "1")
        .map(|(t, _, _)| t)
        .collect();
    assert_eq!(back, vec![769]);
}

#[test]
fn a_lost_vote_stops_as_soon_as_no_majority_is_possible() {
    let mut sim = failback_sim(|t| if t >= 100 { Line::Blackhole } else { Line::Up });
    sim.start("1", true);
    sim.run_until(500);
    // 409 fail, 424 fail: 2 of 3 failed, the third test is not sent.
    assert_eq!(pretests_of(&sim, "1"), vec![409, 424], "{}", sim.dump());
    let s = sim.core.snapshot(sim.now());
    assert_eq!(s.phase, "Online(2)");
    assert_eq!(s.next_failback_in_secs, Some(424 + 300 - 501));
}

#[test]
fn a_disconnect_during_the_vote_cancels_it() {
    let mut sim = failback_sim(|t| {
        if (100..400).contains(&t) {
            Line::Blackhole
        } else {
            Line::Up
        }
    });
    sim.at(415, Event::KeepconnectedRemoved);
    sim.start("1", true);
    sim.run_until(600);
    assert_eq!(pretests_of(&sim, "1"), vec![409], "{}", sim.dump());
    assert!(sim.exited);
    assert!(
        actions_at(&sim, 415)
            .iter()
            .any(|a| matches!(a, Action::StopRed { .. }))
    );
    assert!(!sim.activates().iter().any(|(_, p, _)| p == "1"));
}

#[test]
fn a_command_during_the_vote_cancels_it() {
    // reconnect: the backup is redialled at once, no test after it
    let mut sim = failback_sim(|t| {
        if (100..400).contains(&t) {
            Line::Blackhole
        } else {
            Line::Up
        }
    });
    sim.at(415, cmd(Command::Reconnect));
    sim.start("1", true);
    sim.run_until(430);
    assert_eq!(pretests_of(&sim, "1"), vec![409], "{}", sim.dump());
    assert!(
        actions_at(&sim, 415)
            .iter()
            .any(|a| matches!(a, Action::Restart { profile, .. } if profile.as_str() == "2"))
    );
    // auto off: the vote stops at its next step, back to Online(2)
    let mut sim = failback_sim(|t| {
        if (100..400).contains(&t) {
            Line::Blackhole
        } else {
            Line::Up
        }
    });
    sim.at(415, cmd(Command::Auto(false)));
    sim.start("1", true);
    sim.run_until(600);
    assert_eq!(pretests_of(&sim, "1"), vec![409], "{}", sim.dump());
    assert_eq!(sim.core.snapshot(sim.now()).phase, "Online(2)");
    // failover 3: the manual switch wins, the vote's remaining tests are never sent
    let mut sim = failback_sim(|t| {
        if (100..400).contains(&t) {
            Line::Blackhole
        } else {
            Line::Up
        }
    });
    sim.at(415, cmd(Command::Failover(name("3"))));
    sim.start("1", true);
    sim.run_until(600);
    assert_eq!(pretests_of(&sim, "1"), vec![409], "{}", sim.dump());
    assert_eq!(sim.core.snapshot(sim.now()).phase, "Online(3)");
}

#[test]
fn a_backup_fault_during_the_vote_is_handled_at_once() {
    // The backup blackholes at 410 (between two tests): the walk starts at its verdict,
    // not at the vote's end.
    let mut sim = Sim::new(config(&["2", "3"]))
        .line("1", |t| {
            if (100..400).contains(&t) {
                Line::Blackhole
            } else {
                Line::Up
            }
        })
        .line("2", |t| if t >= 410 { Line::Blackhole } else { Line::Up })
        .line("3", |_| Line::Up);
    sim.start("1", true);
    sim.run_until(600);
    assert_eq!(pretests_of(&sim, "1"), vec![409], "{}", sim.dump());
    let to3: Vec<u64> = sim
        .activates()
        .into_iter()
        .filter(|(_, p, _)| p == "3")
        .map(|(t, _, _)| t)
        .collect();
    assert_eq!(to3, vec![416], "{}", sim.dump());
}

// ---- Backups known before they are needed ----------------------------------------------

fn bg_config(backups: &[&str]) -> super::machine::Config {
    let mut c = config(backups);
    c.pretest_interval = Some(Duration::from_secs(300));
    c
}

#[test]
fn the_chain_is_pretested_in_the_background_at_the_interval() {
    let mut c = bg_config(&["2", "3"]);
    // 4 shares the primary's device: never tested while 1 is active. 3 is metered.
    c.chain.push(link("4", "red0", 5, 30));
    c.pretest_skip = vec![name("3")];
    let mut sim = Sim::new(c)
        .line("1", |_| Line::Up)
        .line("2", |_| Line::Up)
        .line("3", |_| Line::Up);
    sim.start("1", true);
    sim.run_until(1000);
    assert_eq!(
        pretests_of(&sim, "2"),
        vec![0, 300, 600, 900],
        "{}",
        sim.dump()
    );
    assert!(pretests_of(&sim, "1").is_empty(), "the active one");
    assert!(pretests_of(&sim, "3").is_empty(), "FAILOVER_PRETEST_SKIP");
    assert!(pretests_of(&sim, "4").is_empty(), "same device");
    // off: none at all
    let mut sim = Sim::new(config(&["2", "3"])).line("1", |_| Line::Up);
    sim.start("1", true);
    sim.run_until(1000);
    assert_eq!(sim.count(|a| matches!(a, Action::Pretest { .. })), 0);
}

#[test]
fn status_shows_each_profiles_last_pretest_and_its_age() {
    let mut sim = Sim::new(bg_config(&["2", "3"]))
        .line("1", |_| Line::Up)
        .line("2", |_| Line::Up)
        .line("3", |_| Line::Down);
    sim.start("1", true);
    sim.run_until(340);
    let s = sim.core.snapshot(sim.now());
    let view: Vec<(String, String, u64)> = s
        .pretests
        .iter()
        .map(|p| (p.profile.to_string(), p.result.clone(), p.secs_ago))
        .collect();
    assert_eq!(
        view,
        vec![
            ("2".into(), "passed".into(), 41),
            ("3".into(), "failed".into(), 41)
        ]
    );
}

#[test]
fn a_suspect_round_pretests_the_chain_at_once() {
    let mut sim = Sim::new(bg_config(&["2"]))
        .line("1", |t| if t >= 100 { Line::Blackhole } else { Line::Up })
        .line("2", |_| Line::Up);
    sim.at(
        102,
        Event::Suspect {
            reason: "again".into(),
        },
    );
    sim.start("1", true);
    sim.run_until(105);
    // 0: background round; 100: the first failed round (Suspect); 102: tested 2 s ago.
    assert_eq!(pretests_of(&sim, "2"), vec![0, 100], "{}", sim.dump());
}

#[test]
fn a_failover_uses_a_fresh_pass_without_waiting_for_a_pretest() {
    let mut sim = Sim::new(bg_config(&["2"]))
        .line("1", |t| if t >= 100 { Line::Blackhole } else { Line::Up })
        .line("2", |_| Line::Up);
    sim.start("1", true);
    sim.run_until(200);
    assert_eq!(
        sim.activates(),
        vec![(106, "2".into(), SwitchKind::Failover)]
    );
    let at_failover = actions_at(&sim, 106);
    assert!(
        !at_failover
            .iter()
            .any(|a| matches!(a, Action::Pretest { .. })),
        "{at_failover:?}"
    );
    assert!(at_failover.iter().any(|a| matches!(a,
        Action::Activate { reason, .. } if reason.contains("2 passed its pre-test 6s ago"))));
}

#[test]
fn a_stale_pass_is_pretested_again() {
    // The primary's line drops at 250: redials (HOLDOFF 30, CONNECT_TIMEOUT 60) take it
    // far past the 300 s a pass of the round at 0 stays fresh, with no round meanwhile.
    let mut sim = Sim::new(bg_config(&["2"]))
        .line("1", |t| if t >= 250 { Line::Down } else { Line::Up })
        .line("2", |_| Line::Up);
    sim.start("1", true);
    sim.run_until(1200);
    let to2 = sim.activates();
    assert_eq!(to2.len(), 1, "{}", sim.dump());
    let t = to2[0].0;
    assert!(t > 300, "{to2:?}");
    assert_eq!(pretests_of(&sim, "2"), vec![0, t], "{}", sim.dump());
}

#[test]
fn a_failed_background_pretest_skips_that_profile_at_failover() {
    let mut sim = Sim::new(bg_config(&["2", "3"]))
        .line("1", |t| if t >= 100 { Line::Blackhole } else { Line::Up })
        .line("2", |_| Line::Down)
        .line("3", |_| Line::Up);
    sim.start("1", true);
    sim.run_until(200);
    assert_eq!(
        sim.activates(),
        vec![(106, "3".into(), SwitchKind::Failover)]
    );
    assert!(
        !actions_at(&sim, 106)
            .iter()
            .any(|a| matches!(a, Action::Pretest { .. })),
        "{}",
        sim.dump()
    );
    // 2 was tested at 0 and on the suspect round at 100, not at the failover
    assert_eq!(pretests_of(&sim, "2"), vec![0, 100]);
}

#[test]
fn a_reload_turns_the_background_pretests_on_and_off() {
    let mut sim = Sim::new(config(&["2"]))
        .line("1", |_| Line::Up)
        .line("2", |_| Line::Up);
    sim.at(100, Event::Reload(Box::new(bg_config(&["2"]))));
    sim.at(650, Event::Reload(Box::new(config(&["2"]))));
    sim.start("1", true);
    sim.run_until(1500);
    assert_eq!(pretests_of(&sim, "2"), vec![100, 400], "{}", sim.dump());
}

// ---- Pre-tests off the loop (issue 13) ----------------------------------------------------

#[test]
fn a_slow_pretest_spaces_the_vote_from_when_it_finished() {
    // Each test takes 5 s on the worker: the failover's own test of 2 (106..111) puts the
    // vote at 414; the next test is due 15 s after each answer.
    let mut sim = failback_sim(|t| {
        if (100..400).contains(&t) {
            Line::Blackhole
        } else {
            Line::Up
        }
    });
    sim.pretest_secs = 5;
    sim.start("1", true);
    sim.run_until(700);
    assert_eq!(
        pretests_of(&sim, "1"),
        vec![414, 434, 454],
        "{}",
        sim.dump()
    );
    let back: Vec<u64> = sim
        .activates()
        .into_iter()
        .filter(|(_, p, _)| p == "1")
        .map(|(t, _, _)| t)
        .collect();
    assert_eq!(back, vec![459], "switched when the third answer came");
}

#[test]
fn a_backup_that_fails_while_the_vote_waits_for_an_answer_is_handled_with_the_answer() {
    // The primary 1 is blackholed from 100 on. Tests take 10 s: online on 2 at 119 (its
    // own test 106..116), the vote's first test of 1 at 419. The backup 2 is blackholed
    // from 420: its failure (426) is reported while that test still runs.
    let mut sim = failback_sim(|t| if t >= 100 { Line::Blackhole } else { Line::Up })
        .line("2", |t| if t >= 420 { Line::Blackhole } else { Line::Up });
    sim.pretest_secs = 10;
    sim.start("1", true);
    sim.run_until(500);
    assert_eq!(pretests_of(&sim, "1"), vec![419], "{}", sim.dump());
    // The answer (429) is not counted as a vote: 2's fault is handled then, the chain is
    // walked to 3 (tested 429..439).
    assert_eq!(pretests_of(&sim, "3"), vec![429], "{}", sim.dump());
    let to3: Vec<u64> = sim
        .activates()
        .into_iter()
        .filter(|(_, p, _)| p == "3")
        .map(|(t, _, _)| t)
        .collect();
    assert_eq!(to3, vec![439], "{}", sim.dump());
    assert!(
        !sim.activates().iter().any(|(_, p, _)| p == "1"),
        "never to the dead primary: {}",
        sim.dump()
    );
}

#[test]
fn a_late_answer_after_the_state_moved_on_is_recorded_not_acted_on() {
    // The suspect round at 100 sends a test of 2 that takes 20 s; the failover after the
    // detection (106) cannot wait for it: it tests 2 itself and the walk uses the first
    // answer that comes (the background one, at 120). The second answer changes nothing.
    let mut sim = Sim::new(bg_config(&["2"]))
        .line("1", |t| if t >= 100 { Line::Blackhole } else { Line::Up })
        .line("2", |_| Line::Up);
    sim.pretest_secs = 20;
    sim.start("1", true);
    sim.run_until(300);
    assert_eq!(pretests_of(&sim, "2"), vec![0, 100], "{}", sim.dump());
    assert_eq!(
        sim.activates(),
        vec![(106, "2".into(), SwitchKind::Failover)],
        "the pass of 0 was fresh at 106: {}",
        sim.dump()
    );
    let s = sim.core.snapshot(sim.now());
    assert_eq!(s.phase, "Online(2)");
    let p2 = s
        .pretests
        .iter()
        .find(|p| p.profile.as_str() == "2")
        .unwrap();
    // Recorded with the time it finished (120), not the time it was fed.
    assert_eq!(p2.secs_ago, 301 - 120);
}

// ---- The end-to-end failback proof (issue 13) --------------------------------------------

/// Primary 1 (red0) that can be proven beside backup 2 (wwan0).
fn proof_sim(primary: impl Fn(u64) -> Line + 'static) -> Sim {
    let mut c = config(&["2"]);
    c.failback_proof = true;
    Sim::new(c).line("1", primary).line("2", |_| Line::Up)
}

fn proof_actions(sim: &Sim) -> Vec<(u64, String)> {
    sim.log
        .iter()
        .filter_map(|r| match &r.action {
            Action::ProofStart { .. } => Some((r.t, "start".into())),
            Action::ProofStop { .. } => Some((r.t, "stop".into())),
            Action::Activate { to, .. } => Some((r.t, format!("activate {to}"))),
            _ => None,
        })
        .collect()
}

#[test]
fn a_proof_that_carries_the_probes_for_the_window_fails_back_after_tearing_down() {
    let mut sim = proof_sim(|t| {
        if (100..400).contains(&t) {
            Line::Blackhole
        } else {
            Line::Up
        }
    });
    sim.start("1", true);
    sim.run_until(600);
    // Online on 2 at 109; at 409 the session of 1 starts beside it, is up at 411; the
    // window (30 s) ends at 441 after 15 good rounds: stop, then the switch.
    assert_eq!(
        proof_actions(&sim),
        [
            (106, "activate 2".to_string()),
            (409, "start".into()),
            (441, "stop".into()),
            (441, "activate 1".into()),
        ],
        "{}",
        sim.dump()
    );
    let at441: Vec<&Action> = sim
        .log
        .iter()
        .filter(|r| r.t == 441)
        .map(|r| &r.action)
        .collect();
    let stop = at441
        .iter()
        .position(|a| matches!(a, Action::ProofStop { .. }));
    let act = at441
        .iter()
        .position(|a| matches!(a, Action::Activate { .. }));
    assert!(stop < act, "torn down before the switch: {at441:?}");
    assert!(
        sim.count(|a| matches!(a, Action::Pretest { profile, .. } if profile.as_str() == "1")) == 0,
        "no pre-test vote when the proof runs"
    );
    assert_eq!(sim.core.snapshot(sim.now()).phase, "Online(1)");
    // The trial's grace ran out healthy: the delay is back to FAILBACK_DELAY.
    assert_eq!(sim.core.snapshot(sim.now()).failback_delay_secs, 300);
}

#[test]
fn a_primary_blackholed_beyond_its_ac_is_never_switched_to_and_is_found_once_restored() {
    // The session comes up (the AC answers) but nothing beyond it: every proof fails and
    // nothing is switched. Such a proof cost the LAN nothing, so the next one comes after
    // the same delay (no doubling): the restored primary (1000) is found by the proof at
    // 1073, within FAILBACK_DELAY + the window + a few seconds of the restore.
    let mut sim = proof_sim(|t| {
        if (100..1000).contains(&t) {
            Line::Blackhole
        } else {
            Line::Up
        }
    });
    sim.start("1", true);
    sim.run_until(1200);
    assert_eq!(
        proof_actions(&sim),
        [
            (106, "activate 2".to_string()),
            (409, "start".into()),
            (441, "stop".into()),
            (741, "start".into()),
            (773, "stop".into()),
            (1073, "start".into()),
            (1105, "stop".into()),
            (1105, "activate 1".into()),
        ],
        "{}",
        sim.dump()
    );
    let failed_at_441 = sim.log.iter().any(|r| {
        r.t == 441
            && matches!(&r.action, Action::Log { msg, .. }
                if msg.contains("failback proof of 1 failed") && msg.contains("next try in 300s"))
    });
    assert!(failed_at_441, "{}", sim.dump());
}

#[test]
fn a_primary_restored_during_a_proof_is_found_by_that_proof() {
    // Restored at 432, two thirds into the window 411..441: at 441 the window has more
    // failed rounds than passed ones, but the last passed, so the window slides (at most
    // one more window) and the same session fails back once the last 30 s carried a
    // majority, instead of a new proof FAILBACK_DELAY (300 s) later.
    let mut sim = proof_sim(|t| {
        if (100..432).contains(&t) {
            Line::Blackhole
        } else {
            Line::Up
        }
    });
    sim.start("1", true);
    sim.run_until(800);
    let acts = proof_actions(&sim);
    assert_eq!(
        acts[..2],
        [(106, "activate 2".to_string()), (409, "start".into())],
        "{acts:?}"
    );
    assert_eq!(acts.len(), 4, "one proof, its stop, the switch: {acts:?}");
    let (stop, switch) = (&acts[2], &acts[3]);
    assert_eq!(
        (stop.1.as_str(), switch.1.as_str()),
        ("stop", "activate 1"),
        "{acts:?}"
    );
    assert_eq!(stop.0, switch.0, "{acts:?}");
    assert!(
        (442..=471).contains(&switch.0),
        "slid past the window's end, within one more window: {acts:?}\n{}",
        sim.dump()
    );
}

#[test]
fn a_slide_ends_after_one_more_window_when_the_primary_only_half_answers() {
    // From the proof's start the primary answers one round in three (rounds at 411, 413,
    // ...: 415, 421, ..., 439 pass) and its last round before the window's end passed: the
    // window slides, never finds a majority, and the slide ends one window later.
    // Nothing is switched.
    let mut sim = proof_sim(|t| {
        if (100..409).contains(&t) || (t >= 409 && (t.saturating_sub(411) / 2) % 3 != 2) {
            Line::Blackhole
        } else {
            Line::Up
        }
    });
    sim.start("1", true);
    sim.run_until(600);
    let acts = proof_actions(&sim);
    assert!(!acts.iter().any(|(_, a)| a == "activate 1"), "{acts:?}");
    let start = acts.iter().find(|(_, a)| a == "start").expect("a proof").0;
    let stop = acts.iter().find(|(_, a)| a == "stop").expect("its end").0;
    // The session is up 2 s after its start; window 30 s, slide 30 s more.
    assert_eq!(
        stop,
        start + 2 + 60,
        "slid to its end: {acts:?}\n{}",
        sim.dump()
    );
}

#[test]
fn a_proof_session_that_cannot_come_up_costs_nothing_and_doubles_the_delay() {
    // The primary's line is dead (no PADO): redials, then the backup from 520.
    let mut sim = proof_sim(|t| if t >= 100 { Line::Down } else { Line::Up });
    sim.start("1", true);
    sim.run_until(2000);
    let acts = proof_actions(&sim);
    assert!(
        !acts.iter().any(|(_, a)| a == "activate 1"),
        "never to a dead primary: {acts:?}"
    );
    // Each session fails 2 s after its start: the next one 600 s later, then 1200 s.
    let starts: Vec<u64> = acts
        .iter()
        .filter(|(_, a)| a == "start")
        .map(|(t, _)| *t)
        .collect();
    assert_eq!(starts.len(), 2, "{acts:?}");
    assert_eq!(starts[1] - (starts[0] + 2), 600, "{acts:?}");
    assert_eq!(sim.core.snapshot(sim.now()).failback_delay_secs, 1200);
}

#[test]
fn a_backup_failing_during_the_proof_stops_it_before_anything_else() {
    let mut sim = proof_sim(|t| {
        if (100..400).contains(&t) {
            Line::Blackhole
        } else {
            Line::Up
        }
    })
    .line("2", |t| if t >= 420 { Line::Blackhole } else { Line::Up });
    sim.start("1", true);
    sim.run_until(600);
    let acts = proof_actions(&sim);
    // 2 is declared dead at 426 during the proof: the session is stopped, then the chain
    // is walked (to the primary, which is up by then).
    assert_eq!(acts[1], (409, "start".into()), "{acts:?}");
    assert_eq!(acts[2], (426, "stop".into()), "{acts:?}");
    assert_eq!(acts.len(), 4, "{acts:?}");
    assert!(acts[3].1 == "activate 1" && acts[3].0 >= 426, "{acts:?}");
}

#[test]
fn a_primary_on_the_backups_device_keeps_the_trial_with_rollback() {
    let mut c = config(&["2"]);
    c.failback_proof = true;
    c.chain[0].device = "red0".into();
    let mut sim = Sim::new(c)
        .line("1", |t| {
            if (100..400).contains(&t) {
                Line::Blackhole
            } else {
                Line::Up
            }
        })
        .line("2", |_| Line::Up);
    sim.start("1", true);
    sim.run_until(900);
    assert_eq!(
        sim.count(|a| matches!(a, Action::ProofStart { .. })),
        0,
        "{}",
        sim.dump()
    );
    assert!(
        sim.activates()
            .iter()
            .any(|(_, p, k)| p == "1" && *k == SwitchKind::Failback),
        "{}",
        sim.dump()
    );
}

#[test]
fn commands_and_a_disconnect_during_the_proof_tear_it_down() {
    for (ev, expect) in [
        (cmd(Command::Failover(name("2"))), "stop"),
        (cmd(Command::Reconnect), "stop"),
        (cmd(Command::Failback { force: true }), "stop"),
        (Event::KeepconnectedRemoved, "stop"),
        (Event::Terminate, "stop"),
    ] {
        let mut sim = proof_sim(|t| {
            if (100..400).contains(&t) {
                Line::Blackhole
            } else {
                Line::Up
            }
        });
        let label = format!("{ev:?}");
        sim.at(420, ev);
        sim.start("1", true);
        sim.run_until(425);
        let acts = proof_actions(&sim);
        assert_eq!(
            acts.get(1),
            Some(&(409, "start".to_string())),
            "{label}: {acts:?}"
        );
        assert_eq!(
            acts.get(2),
            Some(&(420, expect.to_string())),
            "{label}: {acts:?}"
        );
    }
}

/// FAILBACK_ENABLED=off reloaded during a proof or a vote is obeyed at once: the session
/// is torn down (the vote dropped) and no failback follows, though the primary is fine;
/// turned on again, failback resumes.
#[test]
fn failback_turned_off_by_a_reload_ends_the_proof_and_the_vote() {
    let restored_at_400 = |t: u64| {
        if (100..400).contains(&t) {
            Line::Blackhole
        } else {
            Line::Up
        }
    };
    let mut off = config(&["2"]);
    off.failback_enabled = false;
    for proof in [true, false] {
        let (mut on, mut off) = (config(&["2"]), off.clone());
        on.failback_proof = proof;
        off.failback_proof = proof;
        let mut sim = Sim::new(on.clone())
            .line("1", restored_at_400)
            .line("2", |_| Line::Up);
        // The proof starts at 409 (up at 411, window to 441); the vote tests at 409, 424,
        // 439 and would win at 439.
        sim.at(420, Event::Reload(Box::new(off)));
        sim.at(900, Event::Reload(Box::new(on)));
        sim.start("1", true);
        sim.run_until(880);
        let label = if proof { "proof" } else { "vote" };
        assert_eq!(
            sim.core.snapshot(sim.now()).phase,
            "Online(2)",
            "{label}: {}",
            sim.dump()
        );
        let back = |sim: &Sim| {
            sim.activates()
                .into_iter()
                .filter(|(_, p, _)| p == "1")
                .map(|(t, _, _)| t)
                .collect::<Vec<_>>()
        };
        assert!(back(&sim).is_empty(), "{label}: {}", sim.dump());
        if proof {
            assert_eq!(
                proof_actions(&sim)[1..],
                [(409, "start".to_string()), (420, "stop".to_string())],
                "{}",
                sim.dump()
            );
        } else {
            assert_eq!(pretests_of(&sim, "1"), vec![409], "{}", sim.dump());
        }
        // On again at 900: FAILBACK_DELAY ran out meanwhile (at 720), so the proof or the
        // vote starts at once, and its window (30 s) decides.
        sim.run_until(1300);
        let b = back(&sim);
        assert!(
            b.len() == 1 && (930..960).contains(&b[0]),
            "{label}: {b:?} {}",
            sim.dump()
        );
    }
}
