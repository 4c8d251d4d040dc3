//! Our red.down hook (`initscripts/red.down/99-connectd`), run as IPFire runs it: which
//! stops it reports to the supervisor as deliberate (issue 12 item 3).
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::install::repo;

/// Runs the hook under a fake root with RED_TYPE `red_type` (and ppp TYPE `ppp_type`)
/// and the environment `env`; returns the marker's content, if written.
fn run_hook(red_type: &str, ppp_type: &str, env: &[(&str, &str)]) -> Option<String> {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    for dir in [
        "var/ipfire/connectd",
        "var/ipfire/ethernet",
        "var/ipfire/ppp",
    ] {
        fs::create_dir_all(r.join(dir)).unwrap();
    }
    fs::write(
        r.join("var/ipfire/ethernet/settings"),
        format!("RED_TYPE={red_type}\nRED_DEV=red0\n"),
    )
    .unwrap();
    fs::write(
        r.join("var/ipfire/ppp/settings"),
        format!("TYPE={ppp_type}\n"),
    )
    .unwrap();
    let mut c = Command::new(repo().join("initscripts/red.down/99-connectd"));
    c.env("CONNECTD_ROOT", r)
        .env_remove("reason")
        .env_remove("RUNLEVEL")
        .env_remove("CONNECTD_CALLER");
    for (k, v) in env {
        c.env(k, v);
    }
    let st = c.status().unwrap();
    assert!(st.success(), "the hook failed: {st}");
    fs::read_to_string(r.join(Path::new("var/ipfire/connectd/red-stopped"))).ok()
}

#[test]
fn red_down_reports_deliberate_stops_on_every_type_and_not_a_dying_line() {
    // DHCP: networking/red stop runs `dhcpcd -k` (RELEASE); `-x`/TERM gives STOP.
    for reason in ["RELEASE", "STOP"] {
        let m = run_hook(
            "DHCP",
            "pppoe",
            &[("reason", reason), ("interface", "red0")],
        );
        assert!(m.unwrap().contains(reason), "{reason}");
    }
    // A line that died: the supervisor's to handle (fail over), not a Disconnect.
    for reason in ["EXPIRE", "FAIL", "NAK", "IPV4LL"] {
        assert_eq!(
            run_hook("DHCP", "pppoe", &[("reason", reason)]),
            None,
            "{reason}"
        );
    }
    // QMI: RED_TYPE=PPPOE with a qmi profile, dhcpcd on wwan0.
    assert!(run_hook("PPPOE", "qmi", &[("reason", "RELEASE")]).is_some());
    assert_eq!(run_hook("PPPOE", "qmi", &[("reason", "EXPIRE")]), None);
    // STATIC: networking/red stop runs red.down/ itself, no $reason.
    assert!(run_hook("STATIC", "pppoe", &[]).unwrap().contains("STATIC"));
    // PPP: ip-down runs red.down/ on every hang-up; its Disconnect is keepconnected.
    assert_eq!(run_hook("PPPOE", "pppoe", &[]), None);
    // Shutdown, whatever the type.
    assert!(
        run_hook("PPPOE", "pppoe", &[("RUNLEVEL", "0")])
            .unwrap()
            .contains("shutdown")
    );
    assert!(run_hook("DHCP", "pppoe", &[("RUNLEVEL", "6"), ("reason", "EXPIRE")]).is_some());
    // The supervisor's own stop (its environment reaches the hook through networking/red).
    assert_eq!(
        run_hook("STATIC", "pppoe", &[("CONNECTD_CALLER", "connectd")]),
        None
    );
}
