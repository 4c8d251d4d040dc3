// Copyright (C) 2026 The connectd developers
// SPDX-License-Identifier: GPL-3.0-or-later

//! `tools/bench`'s figures, statistics and tables: the shell drives the lab and records
//! what it saw; this reads connectd's log and the LAN client's ping log, turns them into
//! figures, and renders the BENCHMARKS.md table (an example: it does not ship).
//!
//! ```text
//! bench-report fault SC LOG PING T_FAULT T_RESTORE T_END    figures of a blackhole/linkdown/
//!                                                           story run, with the decomposition
//!                                                           of its failover and failback
//! bench-report loss LOG PING T_FROM T_TO                    of the loss run
//! bench-report flap LOG PING T_FROM T_TO WINDOW [T_END]     of the flap run (T_END: the
//!                                                           whole story's end)
//! bench-report steady SECS CPU0 CPU1 T0,G0,D0 T1,G1,D1      of the steady run (CPU seconds,
//!                                                           probe counters before and after)
//! bench-report summary                                      "MEDIAN MIN MAX N" of the numbers
//!                                                           on stdin (one per line)
//! bench-report table OUT                                    the table from OUT/results.tsv
//!                                                           and OUT/meta
//! bench-report machine OUT                                  the machine line
//! bench-report write OUT BENCHMARKS.md LAB_PREFIX           the generated block of the file
//!                                                           replaced (or appended)
//! ```
//!
//! The figure commands print `SCENARIO<TAB>METRIC<TAB>VALUE` lines (the raw data of
//! `results.tsv`); `flap` also prints `# failovers_at ...` and `# failbacks_at ...` lines
//! with the times, for the shell's progress line. Times (T_*) are `$EPOCHREALTIME` values; connectd's
//! log lines start with the local time of day `HH:MM:SS.mmm` (`--foreground`), the ping log's
//! with `[EPOCH]` (`ping -D`). Numbers are printed as `awk`'s printf printed them before
//! (`%g`, `%.3f`, ...), so a table rendered again from old raw data is the same.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use chrono::{Local, TimeZone, Timelike};

type Res<T> = Result<T, String>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = match a.as_slice() {
        ["fault", sc, log, ping, tf, tr, te] => fault(sc, log, ping, tf, tr, te),
        ["loss", log, ping, from, to] => loss(log, ping, from, to),
        ["flap", log, ping, from, to, window] => flap(log, ping, from, to, window, None),
        ["flap", log, ping, from, to, window, end] => flap(log, ping, from, to, window, Some(end)),
        ["steady", secs, cpu0, cpu1, p0, p1] => steady(secs, cpu0, cpu1, p0, p1),
        ["summary"] => summary_stdin(),
        ["table", out] => Results::load(Path::new(out)).map(|r| r.table()),
        ["machine", out] => Results::load(Path::new(out)).map(|r| machine(&r) + "\n"),
        ["write", out, md, prefix] => {
            Results::load(Path::new(out)).and_then(|r| write_benchmarks(&r, Path::new(md), prefix))
        }
        _ => {
            eprintln!(
                "usage: bench-report fault SC LOG PING T_FAULT T_RESTORE T_END | loss LOG PING \
                 FROM TO | flap LOG PING FROM TO WINDOW | steady SECS CPU0 CPU1 T,G,D T,G,D | \
                 summary | table OUT | machine OUT | write OUT BENCHMARKS.md LAB_PREFIX"
            );
            return ExitCode::from(2);
        }
    };
    match out {
        Ok(text) => {
            print!("{text}");
            let _ = std::io::stdout().flush();
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bench-report: {e}");
            ExitCode::from(2)
        }
    }
}

// ---- numbers as awk reads and prints them ---------------------------------------------------

/// awk's string-to-number: the longest numeric prefix (after blanks), else 0.
fn awk_num(s: &str) -> f64 {
    let s = s.trim_start();
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i > start
    };
    let mut any = digits(&mut i);
    if i < b.len() && b[i] == b'.' {
        i += 1;
        any |= digits(&mut i);
    }
    if !any {
        return 0.0;
    }
    let mut end = i;
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        let mut j = i + 1;
        if j < b.len() && (b[j] == b'+' || b[j] == b'-') {
            j += 1;
        }
        if digits(&mut j) {
            end = j;
        }
    }
    s[..end].parse().unwrap_or(0.0)
}

/// C's `%g` (precision 6), as awk's printf prints it.
fn fmt_g(x: f64) -> String {
    if x == 0.0 {
        return if x.is_sign_negative() { "-0" } else { "0" }.into();
    }
    if !x.is_finite() {
        return if x.is_nan() {
            "nan".into()
        } else if x > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        };
    }
    // The exponent after rounding to 6 significant digits decides the style.
    let sci = format!("{x:.5e}");
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        let mant = trim_zeros(mant);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mant}e{sign}{:02}", exp.abs())
    } else {
        let decimals = usize::try_from(5 - exp).unwrap_or(0);
        trim_zeros(&format!("{x:.decimals$}")).to_string()
    }
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

// ---- statistics -----------------------------------------------------------------------------

/// Median, smallest, largest and count of `values`; None when empty.
fn stats(values: &[f64]) -> Option<(f64, f64, f64, usize)> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let (first, last) = (*v.first()?, *v.last()?);
    let med = if n % 2 == 1 {
        v[(n - 1) / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    Some((med, first, last, n))
}

/// `summary`: "MEDIAN MIN MAX N" (`%g`) of the numbers on stdin; "- - - 0" for none.
fn summary_stdin() -> Res<String> {
    let mut s = String::new();
    std::io::stdin()
        .read_to_string(&mut s)
        .map_err(|e| format!("stdin: {e}"))?;
    let v: Vec<f64> = s
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(awk_num)
        .collect();
    Ok(match stats(&v) {
        Some((med, min, max, n)) => {
            format!("{} {} {} {n}\n", fmt_g(med), fmt_g(min), fmt_g(max))
        }
        None => "- - - 0\n".into(),
    })
}

/// The most of `times` (ascending) that fall within any `window`-long span.
fn max_in_window(window: f64, times: &[f64]) -> usize {
    (0..times.len())
        .map(|i| {
            times[i..]
                .iter()
                .filter(|&&t| t - times[i] < window)
                .count()
        })
        .max()
        .unwrap_or(0)
}

// ---- the logs -------------------------------------------------------------------------------

/// Seconds since local midnight of an `$EPOCHREALTIME` value, the way the shell wrote it
/// as `%(%H:%M:%S)T.FRACTION` and awk read that back.
fn epoch_sod(epoch: &str) -> Res<f64> {
    let (secs, frac) = epoch.split_once('.').unwrap_or((epoch, "0"));
    let secs: i64 = secs
        .parse()
        .map_err(|_| format!("{epoch:?} is not an $EPOCHREALTIME value"))?;
    let t = Local
        .timestamp_opt(secs, 0)
        .single()
        .ok_or_else(|| format!("{epoch:?}: no local time"))?;
    let s = awk_num(&format!("{:02}.{frac}", t.second()));
    Ok(f64::from(t.hour()) * 3600.0 + f64::from(t.minute()) * 60.0 + s)
}

fn epoch(s: &str) -> Res<f64> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not an $EPOCHREALTIME value"))?;
    Ok(v)
}

/// Seconds of day of a log line's `HH:MM:SS.mmm`; None for a line without one.
fn line_sod(line: &str) -> Option<f64> {
    let first = line.split_whitespace().next()?;
    let mut it = first.split(':');
    let (h, m, s) = (it.next()?, it.next()?, it.next()?);
    if it.next().is_some() || h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    if !s.bytes().next()?.is_ascii_digit() {
        return None;
    }
    Some(f64::from(h) * 3600.0 + f64::from(m) * 60.0 + awk_num(s))
}

/// connectd's log lines at or after `from` (seconds of day) with their offset in seconds
/// (a log that crosses midnight is understood).
fn lines_after<'a>(log: &'a str, from: f64) -> impl Iterator<Item = (f64, &'a str)> + 'a {
    log.lines().filter_map(move |l| {
        let mut d = line_sod(l)? - from;
        if d < -43200.0 {
            d += 86400.0;
        }
        (d >= 0.0).then_some((d, l))
    })
}

/// A decision of connectd's: a verdict `is down`, `link lost`, or a transition `->`.
fn is_decision(l: &str) -> bool {
    has_connectd_tag(l)
        && (l.contains(" is down: ") || l.contains(" link lost ") || l.contains(" -> "))
}

/// `connectd[PID]` somewhere in the line.
fn has_connectd_tag(l: &str) -> bool {
    l.match_indices("connectd[").any(|(i, m)| {
        let rest = &l[i + m.len()..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        digits > 0 && rest.as_bytes().get(digits) == Some(&b']')
    })
}

/// A switch line: `switching to profile NAME (KIND)` with KIND failover, failback or
/// rollback; returns KIND.
fn switch_kind(l: &str) -> Option<&'static str> {
    l.match_indices(" switching to profile ")
        .find_map(|(i, m)| {
            let rest = &l[i + m.len()..];
            let name_len = rest.find(' ').filter(|&n| n > 0)?;
            let rest = rest[name_len..].strip_prefix(" (")?;
            ["failover", "failback", "rollback"]
                .into_iter()
                .find(|k| rest.strip_prefix(k).is_some_and(|r| r.starts_with(')')))
        })
}

/// A switch line that names a failover (`switching to profile ... (failover`).
fn is_failover_line(l: &str) -> bool {
    l.find(" switching to profile ")
        .is_some_and(|i| l[i..].contains("(failover"))
}

fn first_after(log: &str, from: f64, pred: impl Fn(&str) -> bool) -> Option<f64> {
    lines_after(log, from)
        .find(|(_, l)| pred(l))
        .map(|(d, _)| d)
}

fn count_after(log: &str, from: f64, pred: impl Fn(&str) -> bool) -> usize {
    lines_after(log, from).filter(|(_, l)| pred(l)).count()
}

/// One switch in connectd's log with its phase boundaries, in seconds after the `from`
/// given to [`switches`]:
///
/// * `decided`: the last verdict (`is down`, `link lost`) before the switch line, for a
///   failover; the end of detection, the start of the pre-test;
/// * `switched`: `switching to profile NAME (KIND)`: the pre-test (or a fresh result) done,
///   `network stop red` starts;
/// * `stopped`: `switch to NAME: RED stopped in ...` (pppd/dhcpcd gone);
/// * `red_up`: `network start red returned ... (red/active present)` or, for types whose
///   start returns before RED is up (PPPoE), the next `red/active appeared`;
/// * `healthy`: the transition `... -> Online(NAME)` or `-> Trial(NAME)` that says `is up
///   and healthy`: the first healthy round.
#[derive(Debug, Clone, PartialEq)]
struct SwitchPhases {
    kind: &'static str,
    to: String,
    decided: Option<f64>,
    switched: f64,
    stopped: Option<f64>,
    red_up: Option<f64>,
    healthy: Option<f64>,
}

impl SwitchPhases {
    fn pretest(&self) -> Option<f64> {
        self.decided.map(|d| self.switched - d)
    }
    fn stop(&self) -> Option<f64> {
        self.stopped.map(|t| t - self.switched)
    }
    fn bring_up(&self) -> Option<f64> {
        Some(self.red_up? - self.stopped?)
    }
    fn first_round(&self) -> Option<f64> {
        Some(self.healthy? - self.red_up?)
    }
}

/// The profile a switch line names (`switching to profile NAME (`).
fn switch_target(l: &str) -> Option<&str> {
    let i = l.find(" switching to profile ")?;
    let rest = &l[i + " switching to profile ".len()..];
    rest.split(' ').next().filter(|n| !n.is_empty())
}

/// Every switch after `from` (seconds of day), with its phases.
fn switches(log: &str, from: f64) -> Vec<SwitchPhases> {
    let mut out: Vec<SwitchPhases> = Vec::new();
    let mut decided: Option<f64> = None;
    for (d, l) in lines_after(log, from) {
        if !has_connectd_tag(l) {
            continue;
        }
        if l.contains(" is down: ") || l.contains(" link lost ") {
            decided = Some(d);
            continue;
        }
        if let (Some(kind), Some(to)) = (switch_kind(l), switch_target(l)) {
            out.push(SwitchPhases {
                kind,
                to: to.to_string(),
                decided: decided.take().filter(|_| kind != "failback"),
                switched: d,
                stopped: None,
                red_up: None,
                healthy: None,
            });
            continue;
        }
        let Some(sw) = out.last_mut() else { continue };
        if sw.stopped.is_none() {
            if l.contains(&format!(" switch to {}: RED stopped in ", sw.to)) {
                sw.stopped = Some(d);
            }
        } else if sw.red_up.is_none() {
            let returned = l.contains(&format!(
                " switch to {}: network start red returned ",
                sw.to
            )) && l.contains("(red/active present)");
            if returned || l.contains(" red/active appeared") {
                sw.red_up = Some(d);
            }
        } else if sw.healthy.is_none()
            && l.contains(" is up and healthy")
            && (l.contains(&format!(" -> Online({})", sw.to))
                || l.contains(&format!(" -> Trial({})", sw.to)))
        {
            sw.healthy = Some(d);
        }
    }
    out
}

/// The decomposition's rows for one switch, each metric prefixed with `prefix`.
fn rec_phases(o: &mut String, sc: &str, prefix: &str, sw: Option<&SwitchPhases>) {
    let get = |f: fn(&SwitchPhases) -> Option<f64>| sw.and_then(f);
    if prefix.is_empty() {
        rec(o, sc, "pretest_s", opt3(get(SwitchPhases::pretest)));
    }
    rec(
        o,
        sc,
        &format!("{prefix}stop_s"),
        opt3(get(SwitchPhases::stop)),
    );
    rec(
        o,
        sc,
        &format!("{prefix}bringup_s"),
        opt3(get(SwitchPhases::bring_up)),
    );
    rec(
        o,
        sc,
        &format!("{prefix}first_round_s"),
        opt3(get(SwitchPhases::first_round)),
    );
}

/// "# switch KIND to NAME at T: pre-test P, stop S, bring-up B, first round R" lines for
/// the shell's progress output.
fn describe(switches: &[SwitchPhases]) -> String {
    let f = |v: Option<f64>| v.map_or_else(|| "?".into(), |x| format!("{x:.2} s"));
    switches
        .iter()
        .map(|s| {
            format!(
                "# switch {} to {} at +{:.1} s: pre-test {}, stop {}, bring-up {}, first round {}\n",
                s.kind,
                s.to,
                s.switched,
                f(s.pretest()),
                f(s.stop()),
                f(s.bring_up()),
                f(s.first_round())
            )
        })
        .collect()
}

/// The LAN client's reply times (`[EPOCH] NN bytes from ...`).
fn replies(ping: &str) -> Vec<f64> {
    ping.lines()
        .filter(|l| l.contains("bytes from"))
        .map(|l| {
            let first = l.split_whitespace().next().unwrap_or("");
            let inner = first.get(1..first.len().saturating_sub(1)).unwrap_or("");
            awk_num(inner)
        })
        .collect()
}

/// (sum, longest) seconds without replies in [from, to]: every gap between two replies
/// beyond the 0.1 s interval, clipped to the window; a gap of 0.15 s or less is noise.
fn outage(replies: &[f64], from: f64, to: f64) -> (f64, f64) {
    let (mut sum, mut max) = (0.0f64, 0.0f64);
    let mut add = |s: f64, e: f64| {
        let s = (s + 0.1).max(from);
        let e = e.min(to);
        if e - s > 0.15 {
            sum += e - s;
            if e - s > max {
                max = e - s;
            }
        }
    };
    let mut prev: Option<f64> = None;
    for &t in replies {
        if let Some(p) = prev {
            if t - p > 0.25 {
                add(p, t);
            }
        }
        prev = Some(t);
    }
    let prev = prev.unwrap_or(from);
    if to - prev > 0.25 {
        add(prev, to);
    }
    (sum, max)
}

/// % of the echo requests in [from, to] (one per 0.1 s) without a reply.
fn lan_loss(replies: &[f64], from: f64, to: f64) -> f64 {
    let n = replies.iter().filter(|&&t| t >= from && t <= to).count() as f64;
    let want = (to - from) / 0.1;
    if want > 0.0 {
        100.0 * (1.0 - n / want)
    } else {
        0.0
    }
}

fn read(path: &str) -> Res<String> {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .map_err(|e| format!("{path}: {e}"))
}

fn opt3(v: Option<f64>) -> String {
    v.map_or_else(|| "NaN".into(), |d| format!("{d:.3}"))
}

fn rec(out: &mut String, sc: &str, metric: &str, value: impl std::fmt::Display) {
    let _ = writeln!(out, "{sc}\t{metric}\t{value}");
}

/// A blackhole or linkdown run: the fault at `tf`, the restore at `tr`, the end of the
/// watch (FAILBACK_GRACE) at `te`.
fn fault(sc: &str, log: &str, ping: &str, tf: &str, tr: &str, te: &str) -> Res<String> {
    let (log, ping) = (read(log)?, replies(&read(ping)?));
    let (ftod, rtod) = (epoch_sod(tf)?, epoch_sod(tr)?);
    let (tf, tr, te) = (epoch(tf)?, epoch(tr)?, epoch(te)?);
    let mut o = String::new();
    rec(
        &mut o,
        sc,
        "detect_s",
        opt3(first_after(&log, ftod, is_decision)),
    );
    rec(
        &mut o,
        sc,
        "outage_fault_s",
        format!("{:.2}", outage(&ping, tf, tr).0),
    );
    rec(
        &mut o,
        sc,
        "outage_restore_s",
        format!("{:.2}", outage(&ping, tr, te).0),
    );
    rec(
        &mut o,
        sc,
        "failed_over",
        count_after(&log, ftod, is_failover_line),
    );
    let online = |l: &str| l.contains("now online on profile 1 ");
    rec(
        &mut o,
        sc,
        "failback_log_s",
        opt3(first_after(&log, rtod, online)),
    );
    // The decomposition of the failover (the first one after the fault) and of the
    // failback after the restore.
    let sws = switches(&log, ftod);
    let dead = rtod - ftod + if rtod < ftod - 43200.0 { 86400.0 } else { 0.0 };
    let failover = sws.iter().find(|s| s.kind == "failover");
    rec_phases(&mut o, sc, "", failover);
    let failback = sws
        .iter()
        .find(|s| s.kind == "failback" && s.switched >= dead);
    rec_phases(&mut o, sc, "fb_", failback);
    // The whole story: switches to the primary while it was dead, the LAN outage of the
    // failover alone (from the fault to its first healthy round + 1 s) and of everything.
    let to_dead = sws
        .iter()
        .filter(|s| s.kind == "failback" && s.switched < dead)
        .count();
    rec(&mut o, sc, "failbacks_while_dead", to_dead);
    let fo_end = failover.and_then(|f| f.healthy).map(|h| tf + h + 1.0);
    let out_fo = fo_end.map(|e| outage(&ping, tf, e.min(tr)).0);
    rec(
        &mut o,
        sc,
        "outage_failover_s",
        out_fo.map_or_else(|| "NaN".into(), |v| format!("{v:.2}")),
    );
    let out_all = outage(&ping, tf, te).0;
    rec(&mut o, sc, "outage_story_s", format!("{out_all:.2}"));
    if let Some(f) = out_fo {
        rec(
            &mut o,
            sc,
            "outage_beyond_failover_s",
            format!("{:.2}", out_all - f),
        );
    }
    o += &describe(&sws);
    Ok(o)
}

/// The loss run: from `from` to `to`.
fn loss(log: &str, ping: &str, from: &str, to: &str) -> Res<String> {
    let (log, ping) = (read(log)?, replies(&read(ping)?));
    let ftod = epoch_sod(from)?;
    let (from, to) = (epoch(from)?, epoch(to)?);
    let down = |l: &str| l.contains(" is down: ") || l.contains(" link lost ");
    let mut o = String::new();
    rec(
        &mut o,
        "loss",
        "down_verdicts",
        count_after(&log, ftod, down),
    );
    rec(
        &mut o,
        "loss",
        "lan_loss_pct",
        format!("{:.1}", lan_loss(&ping, from, to)),
    );
    Ok(o)
}

/// The flap run: from `from` to `to`; switches counted per FAILBACK_DELAY-long `window`.
/// With `end` (the end of the watch after the box is back on the primary): the LAN outage
/// over the whole story, from the first fault to `end`.
fn flap(
    log: &str,
    ping: &str,
    from: &str,
    to: &str,
    window: &str,
    end: Option<&str>,
) -> Res<String> {
    let (log, ping) = (read(log)?, replies(&read(ping)?));
    let ftod = epoch_sod(from)?;
    let (from, to) = (epoch(from)?, epoch(to)?);
    let window = awk_num(window);
    let (mut fo, mut fb) = (Vec::new(), Vec::new());
    for (d, l) in lines_after(&log, ftod) {
        // (the times as the progress line shows them, one decimal; windows count on those)
        let d = format!("{d:.1}");
        match switch_kind(l) {
            Some("failback") => fb.push(d),
            Some(_) => fo.push(d),
            None => {}
        }
    }
    let nums = |v: &[String]| v.iter().map(|s| awk_num(s)).collect::<Vec<_>>();
    let (out, longest) = outage(&ping, from, to);
    let mut o = String::new();
    rec(&mut o, "flap", "failovers", fo.len());
    rec(&mut o, "flap", "failbacks", fb.len());
    rec(
        &mut o,
        "flap",
        "max_failovers_per_window",
        max_in_window(window, &nums(&fo)),
    );
    rec(
        &mut o,
        "flap",
        "max_failbacks_per_window",
        max_in_window(window, &nums(&fb)),
    );
    rec(&mut o, "flap", "outage_s", format!("{out:.2}"));
    rec(&mut o, "flap", "longest_gap_s", format!("{longest:.2}"));
    if let Some(end) = end {
        let (all, _) = outage(&ping, from, epoch(end)?);
        rec(&mut o, "flap", "outage_story_s", format!("{all:.2}"));
    }
    let _ = writeln!(o, "# failovers_at {}", fo.join(" "));
    let _ = writeln!(o, "# failbacks_at {}", fb.join(" "));
    o += &describe(&switches(&log, ftod));
    Ok(o)
}

/// The steady run: `secs` long; connectd's CPU seconds and isp1's probe counters
/// (targets, gateway, DNS) before and after.
fn steady(secs: &str, cpu0: &str, cpu1: &str, p0: &str, p1: &str) -> Res<String> {
    let counters = |s: &str| -> Res<[i64; 3]> {
        let v: Vec<i64> = s
            .split(',')
            .map(|x| x.trim().parse().map_err(|_| format!("counter {x:?}")))
            .collect::<Res<_>>()?;
        <[i64; 3]>::try_from(v).map_err(|_| format!("{s:?}: three counters T,G,D"))
    };
    let (c0, c1) = (counters(p0)?, counters(p1)?);
    let s = awk_num(secs);
    let d = [c1[0] - c0[0], c1[1] - c0[1], c1[2] - c0[2]];
    let all = d.iter().sum::<i64>() as f64;
    let per_min = |p: f64| format!("{:.1}", p * 60.0 / s);
    let mut o = String::new();
    let cpu = (awk_num(cpu1) - awk_num(cpu0)) * 600.0 / s;
    rec(&mut o, "steady", "cpu_per_10min_s", format!("{cpu:.3}"));
    rec(&mut o, "steady", "probes_per_min", per_min(all));
    rec(
        &mut o,
        "steady",
        "probe_targets_per_min",
        per_min(d[0] as f64),
    );
    rec(
        &mut o,
        "steady",
        "probe_gateway_per_min",
        per_min(d[1] as f64),
    );
    rec(&mut o, "steady", "probe_dns_per_min", per_min(d[2] as f64));
    rec(&mut o, "steady", "probes_per_s", format!("{:.2}", all / s));
    Ok(o)
}

// ---- the table ------------------------------------------------------------------------------

/// `results.tsv` (SCENARIO, METRIC, VALUE) and `meta` (KEY=VALUE) of a bench run.
struct Results {
    rows: Vec<(String, String, String)>,
    meta: BTreeMap<String, String>,
}

impl Results {
    fn load(out: &Path) -> Res<Results> {
        let at = |f: &str| -> PathBuf { out.join(f) };
        let results = std::fs::read_to_string(at("results.tsv"))
            .map_err(|e| format!("{}: {e}", at("results.tsv").display()))?;
        let meta = std::fs::read_to_string(at("meta"))
            .map_err(|e| format!("{}: {e}", at("meta").display()))?;
        Ok(Results::parse(&results, &meta))
    }

    fn parse(results: &str, meta: &str) -> Results {
        let rows = results
            .lines()
            .filter_map(|l| {
                let mut f = l.split('\t');
                let (s, m) = (f.next()?, f.next()?);
                Some((
                    s.to_string(),
                    m.to_string(),
                    f.next().unwrap_or("").to_string(),
                ))
            })
            .collect();
        let meta = meta
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Results { rows, meta }
    }

    /// A setting of the run: from `meta`, else tools/bench's default.
    fn setting(&self, key: &str) -> String {
        let default = match key {
            "FAULT_SECS" => "60",
            "FAILBACK_DELAY" | "VOTE_WINDOW" => "30",
            "LOSS_SECS" | "STORY_SECS" => "600",
            "FLAP_SECS" => "120",
            _ => "",
        };
        self.meta
            .get(key)
            .map_or(default, String::as_str)
            .to_string()
    }

    fn has(&self, sc: &str) -> bool {
        self.rows.iter().any(|r| r.0 == sc)
    }

    fn values(&self, sc: &str, metric: &str) -> Vec<f64> {
        self.rows
            .iter()
            .filter(|r| r.0 == sc && r.1 == metric && r.2 != "NaN")
            .map(|r| awk_num(&r.2))
            .collect()
    }

    /// One row of the table; none when the figure has no value. `target`: the text, what
    /// it applies to (the median or the max), the comparison and the limit.
    fn row(
        &self,
        sc: &str,
        metric: &str,
        label: &str,
        unit: &str,
        target: Option<(&str, &str, &str, &str)>,
    ) -> String {
        let Some((med, min, max, n)) = stats(&self.values(sc, metric)) else {
            return String::new();
        };
        let (med, min, max) = (fmt_g(med), fmt_g(min), fmt_g(max));
        let (text, verdict) = match target {
            Some((text, on, op, lim)) => {
                let v = if on == "max" { &max } else { &med };
                let (x, l) = (awk_num(v), awk_num(lim));
                let met = match op {
                    "<" => x < l,
                    "<=" => x <= l,
                    _ => x == l,
                };
                let verdict = if met {
                    "met".to_string()
                } else {
                    format!("**missed** ({on} {v}{unit} vs {op} {lim}{unit})")
                };
                (text.to_string(), verdict)
            }
            None => ("-".into(), "-".into()),
        };
        let spread = if n == 1 {
            "(one run)".to_string()
        } else {
            format!("{min} – {max}")
        };
        format!("| {sc} | {label} | {med}{unit} | {spread} | {n} | {text} | {verdict} |\n")
    }

    /// The BENCHMARKS.md table and its closing "Peak RSS" line.
    fn table(&self) -> String {
        let mut t =
            String::from("| scenario | figure | median | min – max | runs | target | result |\n");
        t.push_str("|---|---|---|---|---|---|---|\n");
        let fault_secs = self.setting("FAULT_SECS");
        let (delay, vote) = (self.setting("FAILBACK_DELAY"), self.setting("VOTE_WINDOW"));
        for sc in ["blackhole", "linkdown", "story"] {
            if !self.has(sc) {
                continue;
            }
            let secs = if sc == "story" {
                self.setting("STORY_SECS")
            } else {
                fault_secs.clone()
            };
            let detect = match sc {
                "blackhole" => Some(("median < 4 s", "median", "<", "4")),
                "linkdown" => Some(("< 0.5 s", "max", "<", "0.5")),
                _ => None,
            };
            t += &self.row(
                sc,
                "detect_s",
                "detect: fault → decision (`is down`/`link lost`)",
                " s",
                detect,
            );
            t += &self.row(
                sc,
                "pretest_s",
                "pre-test: decision → switch (0 with a fresh result)",
                " s",
                None,
            );
            t += &self.row(sc, "stop_s", "stop: `network stop red`", " s", None);
            t += &self.row(
                sc,
                "bringup_s",
                "bring-up: `network start red` until RED up",
                " s",
                None,
            );
            t += &self.row(
                sc,
                "first_round_s",
                "first healthy round after RED up",
                " s",
                None,
            );
            let at_failover = match sc {
                "blackhole" => Some(("median ≤ 7 s", "median", "<=", "7")),
                "linkdown" => Some(("median ≤ 6 s", "median", "<=", "6")),
                _ => None,
            };
            t += &self.row(
                sc,
                "outage_failover_s",
                "LAN outage at the failover (fault → first healthy round + 1 s)",
                " s",
                at_failover,
            );
            let during = format!("LAN outage during the {secs} s fault");
            t += &self.row(sc, "outage_fault_s", &during, " s", None);
            let one = (sc == "story").then_some(("1", "max", "==", "1"));
            t += &self.row(sc, "failed_over", "failovers (to profile 2)", "", one);
            let zero = (sc == "story").then_some(("0", "max", "==", "0"));
            t += &self.row(
                sc,
                "failbacks_while_dead",
                "switches to the primary while it is dead",
                "",
                zero,
            );
            let fb_limit = format!("{}", awk_num(&delay) + awk_num(&vote) + 10.0);
            let fb_text = format!("≤ {fb_limit} s (DELAY {delay} + vote {vote} + 10)");
            t += &self.row(
                sc,
                "failback_s",
                "failback: restore → profile 1 and LAN via isp1",
                " s",
                (sc == "story").then_some((fb_text.as_str(), "max", "<=", fb_limit.as_str())),
            );
            t += &self.row(sc, "fb_stop_s", "failback: stop", " s", None);
            t += &self.row(
                sc,
                "fb_bringup_s",
                "failback: bring-up until RED up",
                " s",
                None,
            );
            t += &self.row(
                sc,
                "fb_first_round_s",
                "failback: first healthy round",
                " s",
                None,
            );
            t += &self.row(
                sc,
                "outage_restore_s",
                "LAN outage from the restore to grace's end",
                " s",
                None,
            );
            t += &self.row(
                sc,
                "outage_story_s",
                "LAN outage over the whole story (fault → grace's end)",
                " s",
                None,
            );
            t += &self.row(
                sc,
                "outage_beyond_failover_s",
                "… beyond the failover's own outage",
                " s",
                (sc == "story").then_some(("≤ 1 s", "max", "<=", "1")),
            );
            t += &self.row(sc, "switches", "switches (switch_count)", "", None);
            t += &self.row(
                sc,
                "on_primary_after_grace",
                "on the primary after FAILBACK_GRACE (1 = yes)",
                "",
                None,
            );
            t += &self.row(sc, "cpu_s", "daemon CPU over the run", " s", None);
            t += &self.row(sc, "rss_kib", "daemon peak RSS (VmHWM)", " KiB", None);
            t += &self.row(
                sc,
                "client_restarts",
                "LAN client restarts (killed from outside; 0 = clean)",
                "",
                None,
            );
        }
        if self.has("loss") {
            let secs = self.setting("LOSS_SECS");
            let label = format!("false failovers in {secs} s at 20 % loss");
            t += &self.row(
                "loss",
                "false_failovers",
                &label,
                "",
                Some(("0", "max", "==", "0")),
            );
            t += &self.row("loss", "down_verdicts", "'is down' verdicts", "", None);
            t += &self.row(
                "loss",
                "lan_loss_pct",
                "LAN client's lost replies",
                " %",
                None,
            );
            t += &self.row("loss", "cpu_s", "daemon CPU over the run", " s", None);
        }
        if self.has("flap") {
            let (secs, delay) = (self.setting("FLAP_SECS"), self.setting("FAILBACK_DELAY"));
            let one = Some(("<= 1", "max", "<=", "1"));
            t += &self.row(
                "flap",
                "switches",
                &format!("switches in {secs} s (10 s down / 10 s up)"),
                "",
                None,
            );
            t += &self.row("flap", "failovers", "failovers + rollbacks", "", None);
            t += &self.row("flap", "failbacks", "failbacks", "", None);
            t += &self.row(
                "flap",
                "max_failovers_per_window",
                &format!("most failovers in any {delay} s window"),
                "",
                one,
            );
            t += &self.row(
                "flap",
                "max_failbacks_per_window",
                &format!("most failbacks in any {delay} s window"),
                "",
                one,
            );
            let over = format!("LAN outage over the {secs} s");
            t += &self.row("flap", "outage_s", &over, " s", None);
            t += &self.row("flap", "longest_gap_s", "longest LAN gap", " s", None);
            t += &self.row(
                "flap",
                "outage_story_s",
                "LAN outage over the whole story (until back on the primary + grace)",
                " s",
                Some(("≤ 12 s", "max", "<=", "12")),
            );
            t += &self.row(
                "flap",
                "failback_after_s",
                "back on the primary after the flapping stopped",
                " s",
                None,
            );
        }
        if self.has("steady") {
            let st = "steady";
            t += &self.row(
                st,
                "switches",
                "switches (false failovers)",
                "",
                Some(("0", "max", "==", "0")),
            );
            t += &self.row(
                st,
                "cpu_per_10min_s",
                "daemon CPU per 10 minutes (background pre-tests on)",
                " s",
                Some(("≤ 1 s", "max", "<=", "1")),
            );
            t += &self.row(
                st,
                "rss_kib",
                "daemon peak RSS (VmHWM)",
                " KiB",
                Some(("≤ 4 MiB", "max", "<=", "4096")),
            );
            t += &self.row(
                st,
                "probes_per_min",
                "probe packets per minute, all (targets + gateway + DNS)",
                "",
                None,
            );
            t += &self.row(
                st,
                "probe_targets_per_min",
                "… ICMP to the 3 targets",
                "",
                None,
            );
            t += &self.row(
                st,
                "probe_gateway_per_min",
                "… ICMP to the gateway",
                "",
                None,
            );
            t += &self.row(st, "probe_dns_per_min", "… DNS queries", "", None);
            t += &self.row(
                st,
                "probes_per_s",
                "probe packets per second",
                "",
                Some(("<= 3/s", "max", "<=", "3")),
            );
        }
        if self.has("dhcp") {
            for (v, label) in [
                (
                    "unknown",
                    "first contact (the server pings before it offers)",
                ),
                ("known", "the server knows the client"),
                (
                    "leasefile",
                    "… and dhcpcd's lease file is there (INIT-REBOOT)",
                ),
                (
                    "addr",
                    "… and the address is on red1 already (no lease file)",
                ),
                ("both", "… lease file and address"),
            ] {
                t += &self.row(
                    "dhcp",
                    &format!("bringup_{v}_s"),
                    &format!("dhcpcd start → leased: {label}"),
                    " s",
                    None,
                );
                t += &self.row(
                    "dhcp",
                    &format!("probed_{v}"),
                    &format!("… ARP probes of the address ({v})"),
                    "",
                    None,
                );
            }
        }
        // the largest VmHWM of any run, as recorded
        let peak = self
            .rows
            .iter()
            .filter(|r| r.1 == "rss_kib")
            .max_by(|a, b| awk_num(&a.2).total_cmp(&awk_num(&b.2)));
        if let Some(r) = peak.filter(|r| !r.2.is_empty()) {
            let _ = write!(t, "\nPeak RSS over every run: {} KiB.\n", r.2);
        }
        t
    }
}

// ---- the machine and BENCHMARKS.md ----------------------------------------------------------

/// "N CPUs (MODEL), M MiB RAM, Linux R; 1-minute load average at the runs' starts A – B
/// (...)": the CPUs this process may run on, /proc's model name, MemTotal, the kernel, and
/// the smallest and largest load recorded at the runs' starts.
fn machine(r: &Results) -> String {
    let cpus = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0))
        .map(|set| {
            (0..nix::sched::CpuSet::count())
                .filter(|&i| set.is_set(i).unwrap_or(false))
                .count()
        })
        .unwrap_or(1);
    let proc_field = |file: &str, key: &str| -> Option<String> {
        std::fs::read_to_string(file).ok()?.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == key).then(|| v.trim().to_string())
        })
    };
    let model = proc_field("/proc/cpuinfo", "model name")
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| "unknown".into());
    let mem_mib = proc_field("/proc/meminfo", "MemTotal").map_or(0, |v| {
        (awk_num(v.trim_end_matches("kB")) / 1024.0).trunc() as i64
    });
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let mut loads: Vec<&str> = r
        .rows
        .iter()
        .filter(|x| x.1 == "load1")
        .map(|x| x.2.as_str())
        .collect();
    loads.sort_by(|a, b| awk_num(a).total_cmp(&awk_num(b)));
    // (the smallest and the largest, also when they are the same run's)
    let loads = match (loads.first(), loads.last()) {
        (Some(a), Some(b)) => format!("{a} – {b}"),
        _ => String::new(),
    };
    format!(
        "{cpus} CPUs ({model}), {mem_mib} MiB RAM, Linux {kernel}; 1-minute load average at the \
         runs' starts {loads} (other engineers' builds and tests ran meanwhile)."
    )
}

const BEGIN_MARK: &str = "<!-- tools/bench: begin (generated; edit outside the markers) -->";
const END_MARK: &str = "<!-- tools/bench: end -->";

/// The generated block of BENCHMARKS.md.
fn block(r: &Results, prefix: &str) -> String {
    let t_start = awk_num(&r.setting("T_START"));
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64())
    };
    let t_end = r.meta.get("T_END").map_or_else(now, |v| awk_num(v));
    let day = chrono::TimeZone::timestamp_opt(&chrono::Utc, t_start.trunc() as i64, 0)
        .single()
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default();
    let mut b = String::new();
    let _ = writeln!(b, "{BEGIN_MARK}");
    let _ = writeln!(
        b,
        "Command (root; builds connectd in release, one fresh lab `{prefix}*` per run):\n"
    );
    let _ = writeln!(b, "```\ntools/bench {}\n```\n", r.setting("MODE_ARGS"));
    let minutes = (t_end - t_start) / 60.0;
    let _ = writeln!(
        b,
        "Run {day}, {minutes:.0} minutes. Machine: {}\n",
        machine(r)
    );
    b.push_str(
        "Policy: connectd defaults (probe rounds every 2 s, 1 s timeout, 3 failed rounds, DNS probe on,\n",
    );
    let _ = writeln!(
        b,
        "FAILOVER_CONNECT_TIMEOUT 60 s, FAILBACK_ATTEMPTS 3 over FAILBACK_VOTE_WINDOW {} s, FAILBACK_GRACE 30 s,\n\
         background pre-tests every 300 s) except **FAILBACK_DELAY={} s**",
        r.setting("VOTE_WINDOW"),
        r.setting("FAILBACK_DELAY")
    );
    b.push_str("(default 300 s); profiles as the lab writes them (MAXRETRIES=2, HOLDOFF=5).\n\n");
    b.push_str(&r.table());
    let _ = writeln!(b, "\n{END_MARK}");
    b
}

/// `md` with the generated block between the markers replaced, or a new section with it.
fn splice(md: &str, block: &str) -> String {
    let lines: Vec<&str> = md.lines().collect();
    if !lines.contains(&BEGIN_MARK) {
        return format!("{md}\n## Supervisor in the lab\n\n{block}");
    }
    let mut out = String::new();
    let mut skip = false;
    for l in lines {
        if l == BEGIN_MARK {
            out.push_str(block);
            skip = true;
        } else if l == END_MARK {
            skip = false;
        } else if !skip {
            out.push_str(l);
            out.push('\n');
        }
    }
    out
}

fn write_benchmarks(r: &Results, md: &Path, prefix: &str) -> Res<String> {
    let old = std::fs::read_to_string(md).map_err(|e| format!("{}: {e}", md.display()))?;
    let new = splice(&old, &block(r, prefix));
    replace_file(md, new.as_bytes()).map_err(|e| format!("{}: {e}", md.display()))?;
    Ok(format!("{} updated\n", md.display()))
}

/// Temp file in the same directory, fsync, rename, fsync of the directory.
fn replace_file(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g_format_is_cs() {
        for (x, s) in [
            (4.428, "4.428"),
            (3308.0, "3308"),
            (0.0, "0"),
            (4.4285, "4.4285"),
            (66.24567, "66.2457"),
            (1234565.0, "1.23456e+06"),
            (0.0001234, "0.0001234"),
            (0.00001234, "1.234e-05"),
            (-2.5, "-2.5"),
            (999999.5, "1e+06"),
            (100000.0, "100000"),
        ] {
            assert_eq!(fmt_g(x), s, "{x}");
        }
    }

    #[test]
    fn awk_numbers() {
        assert_eq!(awk_num("3.5"), 3.5);
        assert_eq!(awk_num(" 12abc"), 12.0);
        assert_eq!(awk_num(""), 0.0);
        assert_eq!(awk_num("x"), 0.0);
        assert_eq!(awk_num("1e3"), 1000.0);
        assert_eq!(awk_num("1e"), 1.0);
        assert_eq!(awk_num("-.5"), -0.5);
    }

    #[test]
    fn stats_median_min_max() {
        assert_eq!(stats(&[]), None);
        assert_eq!(stats(&[5.0]), Some((5.0, 5.0, 5.0, 1)));
        assert_eq!(stats(&[3.0, 1.0, 2.0]), Some((2.0, 1.0, 3.0, 3)));
        assert_eq!(stats(&[4.0, 1.0, 3.0, 2.0]), Some((2.5, 1.0, 4.0, 4)));
    }

    #[test]
    fn windows() {
        assert_eq!(max_in_window(60.0, &[]), 0);
        assert_eq!(max_in_window(60.0, &[1.0, 30.0, 61.0, 200.0]), 2);
        assert_eq!(max_in_window(60.0, &[1.0, 61.0, 121.0]), 1);
        assert_eq!(max_in_window(10.0, &[0.0, 1.0, 2.0, 3.0]), 4);
    }

    #[test]
    fn outage_sums_gaps_clipped_to_the_window() {
        // replies every 0.1 s, a 2 s hole from 10.0 to 12.0, then again
        let mut r: Vec<f64> = (0..100).map(|i| f64::from(i) * 0.1).collect();
        r.extend((0..50).map(|i| 12.0 + f64::from(i) * 0.1));
        let (sum, max) = outage(&r, 0.0, 16.0);
        // the gap 9.9 -> 12.0 is 2.0 s after the interval; the tail 16.9..16 is outside
        assert!(
            (sum - 2.0).abs() < 1e-9 && (max - 2.0).abs() < 1e-9,
            "{sum} {max}"
        );
        // clipped: the window starts in the middle of the hole
        let (sum, _) = outage(&r, 11.0, 13.0);
        assert!((sum - 1.0).abs() < 1e-9, "{sum}");
        // replies stop before the window's end: the tail counts
        let (sum, _) = outage(&r, 12.0, 20.0);
        assert!((sum - (20.0 - (16.9 + 0.1))).abs() < 1e-9, "{sum}");
        // no replies at all: all of it (after one interval)
        let (sum, _) = outage(&[], 5.0, 10.0);
        assert!((sum - 4.9).abs() < 1e-9, "{sum}");
        // a small jitter is not an outage
        assert_eq!(outage(&[0.0, 0.2, 0.4], 0.0, 0.4), (0.0, 0.0));
    }

    #[test]
    fn loss_percent() {
        let r: Vec<f64> = (0..80).map(|i| f64::from(i) * 0.1).collect();
        assert!((lan_loss(&r, 0.0, 10.0) - 20.0).abs() < 1e-9);
        assert_eq!(lan_loss(&r, 5.0, 5.0), 0.0);
    }

    #[test]
    fn log_lines() {
        let l = "12:00:05.250 connectd[42] info: uplink 1 on ppp0 is down: 3 failed rounds";
        assert_eq!(line_sod(l), Some(43205.25));
        assert!(is_decision(l));
        assert!(!is_decision("12:00:05.250 other[42] info: x is down: y"));
        assert!(is_decision(
            "12:00:05.250 connectd[1] info: Online -> Failing"
        ));
        assert_eq!(line_sod("thread 'main' panicked"), None);
        let sw = "12:00:06.000 connectd[42] warn: switching to profile 2 (failover): down";
        assert_eq!(switch_kind(sw), Some("failover"));
        assert!(is_failover_line(sw));
        assert_eq!(
            switch_kind("00:00:01.000 connectd[4] warn: switching to profile 1 (failback): ok"),
            Some("failback")
        );
        assert_eq!(switch_kind("switching to profile 2 (manual): x"), None);
        // after midnight, from a time before it
        let log = "23:59:59.000 connectd[1] info: a -> b\n00:00:01.500 connectd[1] info: b -> c\n";
        let found: Vec<f64> = lines_after(log, 86399.5).map(|(d, _)| d).collect();
        assert_eq!(found, vec![2.0]);
    }

    /// A failover and a failback as connectd logs them (DHCP backup: `network start red`
    /// returns with RED up; PPPoE primary: `red/active appeared` later).
    const SWITCH_LOG: &str = "\
12:00:00.000 connectd[9] info: Online(1) -> Online(1): nothing
12:00:03.500 connectd[9] info: uplink 1 on ppp0 is down: 3 consecutive failed rounds
12:00:03.500 connectd[9] warn: Online(1) -> Switching(2): fresh pre-test of 2 passed
12:00:03.600 connectd[9] warn: switching to profile 2 (failover): 2 pre-test passed (1/1)
12:00:03.601 connectd[9] info: activating profile 2 (ISP2 cable) from 1
12:00:03.900 connectd[9] info: switch to 2: RED stopped in 0.299 s
12:00:06.400 connectd[9] info: switch to 2: network start red returned in 2.500 s (red/active present)
12:00:06.900 connectd[9] warn: Switching(2) -> Online(2): 2 is up and healthy (was 1)
12:00:40.000 connectd[9] warn: switching to profile 1 (failback): 3/3 pre-tests of 1 passed
12:00:40.200 connectd[9] info: switch to 1: RED stopped in 0.200 s
12:00:40.300 connectd[9] info: switch to 1: network start red returned in 0.100 s (red/active not yet)
12:00:40.800 connectd[9] info: red/active appeared: RED is up
12:00:41.000 connectd[9] warn: Switching(1) -> Trial(1): 1 is up and healthy (was 2)
";

    #[test]
    fn a_switch_is_decomposed_into_its_phases() {
        let sws = switches(SWITCH_LOG, 43200.0);
        assert_eq!(sws.len(), 2);
        let close = |a: Option<f64>, b: f64| a.is_some_and(|a| (a - b).abs() < 1e-6);
        let fo = &sws[0];
        assert_eq!((fo.kind, fo.to.as_str()), ("failover", "2"));
        assert!(close(fo.pretest(), 0.1), "{fo:?}");
        assert!(close(fo.stop(), 0.3), "{fo:?}");
        assert!(close(fo.bring_up(), 2.5), "{fo:?}");
        assert!(close(fo.first_round(), 0.5), "{fo:?}");
        let fb = &sws[1];
        assert_eq!((fb.kind, fb.pretest()), ("failback", None));
        // PPPoE: RED is up at `red/active appeared`, not when the start returned
        assert!(close(fb.bring_up(), 0.6), "{fb:?}");
        assert!(close(fb.first_round(), 0.2), "{fb:?}");
        // a switch whose stop never finished has no later phases
        let cut = SWITCH_LOG.lines().take(5).collect::<Vec<_>>().join("\n");
        let sws = switches(&cut, 43200.0);
        assert_eq!((sws[0].stop(), sws[0].bring_up()), (None, None));
        assert!(
            describe(&switches(SWITCH_LOG, 43200.0))
                .starts_with("# switch failover to 2 at +3.6 s: pre-test 0.10 s, stop 0.30 s")
        );
    }

    #[test]
    #[allow(clippy::disallowed_methods)] // test fixtures are plain writes
    fn a_story_counts_switches_to_the_dead_primary_and_the_outage_beyond_the_failover() {
        let d = tempfile::tempdir().unwrap();
        // a trial failback while the primary is still dead (before the restore at +30 s)
        let log = SWITCH_LOG.replace("12:00:40.", "12:00:20.");
        let (lp, pp) = (d.path().join("log"), d.path().join("ping"));
        std::fs::write(&lp, log).unwrap();
        // the LAN client: replies every 0.1 s except 3..7 s and 20..21.5 s
        // local noon of 5 January 2026, whatever the time zone
        let base = 1_767_614_400.0_f64;
        let t0 = base - epoch_sod("1767614400").unwrap() + 43200.0;
        let ping: String = (0..600)
            .map(|i| f64::from(i) * 0.1)
            .filter(|t| !(3.0..7.0).contains(t) && !(20.0..21.5).contains(t))
            .map(|t| format!("[{:.3}] 64 bytes from 203.0.113.1: icmp_seq=1\n", t0 + t))
            .collect();
        std::fs::write(&pp, ping).unwrap();
        let at = |s: f64| format!("{:.6}", t0 + s);
        let o = fault(
            "story",
            lp.to_str().unwrap(),
            pp.to_str().unwrap(),
            &at(0.0),
            &at(30.0),
            &at(59.95),
        )
        .unwrap();
        let get = |m: &str| {
            o.lines()
                .find_map(|l| l.strip_prefix(&format!("story\t{m}\t")))
                .unwrap_or_else(|| panic!("{m} in {o}"))
                .to_string()
        };
        assert_eq!(get("failbacks_while_dead"), "1");
        assert_eq!(get("failed_over"), "1");
        assert_eq!(get("pretest_s"), "0.100");
        assert_eq!(get("bringup_s"), "2.500");
        assert_eq!(
            get("fb_stop_s"),
            "NaN",
            "the only failback was before the restore"
        );
        let (fo, all) = (
            awk_num(&get("outage_failover_s")),
            awk_num(&get("outage_story_s")),
        );
        assert!((fo - 4.0).abs() < 0.15, "{o}");
        assert!((all - 5.5).abs() < 0.2, "{o}");
        assert!(
            (awk_num(&get("outage_beyond_failover_s")) - 1.5).abs() < 0.2,
            "{o}"
        );
    }

    #[test]
    fn issue_13_targets_in_the_table() {
        let results = "story\tfailbacks_while_dead\t1\nstory\tfailed_over\t1\n\
                       story\tfailback_s\t65\nstory\toutage_beyond_failover_s\t0.4\n\
                       blackhole\toutage_failover_s\t6.5\nblackhole\toutage_failover_s\t7.5\n\
                       blackhole\toutage_failover_s\t6.9\nlinkdown\toutage_failover_s\t6.2\n\
                       flap\toutage_story_s\t11.9\nsteady\trss_kib\t4200\n";
        let t = Results::parse(results, "FAILBACK_DELAY=30\nVOTE_WINDOW=30\n").table();
        for row in [
            "| story | switches to the primary while it is dead | 1 | (one run) | 1 | 0 | **missed** (max 1 vs == 0) |",
            "| story | failovers (to profile 2) | 1 | (one run) | 1 | 1 | met |",
            "| story | failback: restore → profile 1 and LAN via isp1 | 65 s | (one run) | 1 | ≤ 70 s (DELAY 30 + vote 30 + 10) | met |",
            "| story | … beyond the failover's own outage | 0.4 s | (one run) | 1 | ≤ 1 s | met |",
            "| blackhole | LAN outage at the failover (fault → first healthy round + 1 s) | 6.9 s | 6.5 – 7.5 | 3 | median ≤ 7 s | met |",
            "| linkdown | LAN outage at the failover (fault → first healthy round + 1 s) | 6.2 s | (one run) | 1 | median ≤ 6 s | **missed** (median 6.2 s vs <= 6 s) |",
            "| flap | LAN outage over the whole story (until back on the primary + grace) | 11.9 s | (one run) | 1 | ≤ 12 s | met |",
            "| steady | daemon peak RSS (VmHWM) | 4200 KiB | (one run) | 1 | ≤ 4 MiB | **missed** (max 4200 KiB vs <= 4096 KiB) |",
        ] {
            assert!(t.contains(row), "{row}\nnot in\n{t}");
        }
    }

    #[test]
    fn table_rows_and_verdicts() {
        let results = "blackhole\tdetect_s\t4.5\nblackhole\tdetect_s\t3.5\nblackhole\tdetect_s\tNaN\n\
                       blackhole\trss_kib\t3308\nsteady\trss_kib\t2988\nsteady\tswitches\t0\n";
        let r = Results::parse(results, "FAULT_SECS=30\n");
        let t = r.table();
        assert!(
            t.contains("| blackhole | detect: fault → decision (`is down`/`link lost`) | 4 s | 3.5 – 4.5 | 2 | median < 4 s | **missed** (median 4 s vs < 4 s) |"),
            "{t}"
        );
        assert!(
            t.contains(
                "| blackhole | daemon peak RSS (VmHWM) | 3308 KiB | (one run) | 1 | - | - |"
            ),
            "{t}"
        );
        assert!(
            t.contains("| steady | switches (false failovers) | 0 | (one run) | 1 | 0 | met |"),
            "{t}"
        );
        assert!(
            !t.contains("linkdown") && !t.contains("LAN outage during"),
            "{t}"
        );
        assert!(t.ends_with("\nPeak RSS over every run: 3308 KiB.\n"), "{t}");
    }

    #[test]
    fn splice_replaces_between_the_markers() {
        let md = format!("# B\n\ntext\n{BEGIN_MARK}\nold\n{END_MARK}\nafter\n");
        let block = format!("{BEGIN_MARK}\nnew\n{END_MARK}\n");
        assert_eq!(splice(&md, &block), format!("# B\n\ntext\n{block}after\n"));
        assert_eq!(
            splice("# B\n", &block),
            format!("# B\n\n## Supervisor in the lab\n\n{block}")
        );
    }
}
