//! The HTTP API as a real HTTP client sees it, against a fake supervisor on the control
//! socket of a temporary root. Loopback only, ephemeral ports.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use connectd::front::api::{self, ApiHandle};
use connectd::ipfire::paths::Paths;
use connectd::ipfire::profile::ProfileName;
use connectd::supervisor::control::{self, Reply, Request};
use connectd::supervisor::status::{self, Status};
use serde_json::{Value, json};

use crate::util::TestRoot;

const TOKEN: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// A supervisor stand-in: answers `status` with `status`, records every other request.
struct FakeSupervisor {
    stop: Arc<AtomicBool>,
    requests: Arc<Mutex<Vec<Request>>>,
    thread: Option<JoinHandle<()>>,
}

impl FakeSupervisor {
    fn start(paths: &Paths, status: Status) -> FakeSupervisor {
        let listener = control::bind(&paths.control_socket()).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let (stop, requests) = (stop.clone(), requests.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let mut s = match listener.accept() {
                        Ok((s, _)) => s,
                        Err(_) => {
                            std::thread::sleep(Duration::from_millis(10));
                            continue;
                        }
                    };
                    let Ok(req) = control::read_request(&mut s) else {
                        continue;
                    };
                    let reply = match &req {
                        Request::Status => {
                            let mut r = Reply::ok("status");
                            r.status = Some(status.clone());
                            r
                        }
                        Request::Failover { profile } if profile == "9" => {
                            Reply::err(&connectd::Error::usage(
                                "PROFILE",
                                "profile 9 is not in the failover chain",
                            ))
                        }
                        _ => Reply::ok("accepted"),
                    };
                    if req != Request::Status {
                        requests.lock().unwrap().push(req);
                    }
                    control::write_reply(&mut s, &reply);
                }
            })
        };
        FakeSupervisor {
            stop,
            requests,
            thread: Some(thread),
        }
    }

    fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for FakeSupervisor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The status as the supervisor builds it (from the files), with a live health object
/// and traffic, on profile `active`.
fn canned_status(t: &TestRoot, active: &str) -> Status {
    let name = |n: &str| ProfileName::new(n).unwrap();
    let state = connectd::ipfire::state::State {
        primary: Some(name("1")),
        active: Some(name(active)),
        switch_count: 4,
        ..Default::default()
    };
    let mut s = status::from_files(&t.paths(), &state);
    s.running = true;
    s.state = "online".into();
    s.active_profile = Some(name(active));
    s.active_display_name = Some(
        if active == "1" {
            "Telekom DSL"
        } else {
            "LTE stick"
        }
        .into(),
    );
    s.auto = true;
    s.red = serde_json::from_value(
        json!({"iface": if active == "1" {"ppp0"} else {"wwan0"}, "active": true,
        "since": null, "local_ip": "198.51.100.7", "gateway": "198.51.100.1"}),
    )
    .unwrap();
    s.health = serde_json::from_value(json!({"healthy": true, "verdict": "healthy", "reason": null,
        "failed_rounds": 0, "rounds": 12,
        "targets": [{"host": "192.0.2.10", "rtt_ms": 11.2, "avg_rtt_ms": 10.9, "loss_pct": 0.0, "samples": 12, "error": null},
                    {"host": "192.0.2.11", "rtt_ms": null, "avg_rtt_ms": null, "loss_pct": 100.0, "samples": 12, "error": "timeout"}],
        "gateway": {"host": "198.51.100.1", "rtt_ms": 0.8, "avg_rtt_ms": 0.9, "loss_pct": 0.0, "samples": 12, "error": null}}))
    .unwrap();
    s.traffic = serde_json::from_value(
        json!({"iface": "ppp0", "rx_mbps": 12.5, "tx_mbps": 1.25, "rx_mbps_avg": 10.0, "tx_mbps_avg": 1.0}),
    )
    .unwrap();
    s
}

/// Dropped in this order: the API, the fake supervisor, then the root.
struct Setup {
    api: ApiHandle,
    sup: FakeSupervisor,
    _root: TestRoot,
}

fn setup(active: &str) -> Setup {
    let root = TestRoot::synthetic();
    let paths = root.paths();
    let sup = FakeSupervisor::start(&paths, canned_status(&root, active));
    let api = api::spawn(paths, "127.0.0.1:0".parse().unwrap(), TOKEN.into()).unwrap();
    Setup {
        _root: root,
        sup,
        api,
    }
}

/// One raw HTTP/1.1 exchange: (status code, headers, body).
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: Option<&str>,
) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: test\r\n");
    if let Some(a) = auth {
        req.push_str(&format!("Authorization: {a}\r\n"));
    }
    if let Some(b) = body {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            b.len()
        ));
    }
    req.push_str("\r\n");
    if let Some(b) = body {
        req.push_str(b);
    }
    s.write_all(req.as_bytes()).unwrap();
    read_response(&mut s)
}

fn read_response(s: &mut TcpStream) -> (u16, String, String) {
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let text = String::from_utf8(buf).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let code = head.split(' ').nth(1).unwrap().parse().unwrap();
    (code, head.to_string(), body.to_string())
}

fn bearer() -> String {
    format!("Bearer {TOKEN}")
}

#[test]
fn status_needs_the_token_and_has_the_home_assistant_shape() {
    let s = setup("1");
    let addr = s.api.local_addr();
    let (code, head, _) = http(addr, "GET", "/api/status", None, None);
    assert_eq!(code, 401);
    assert!(head.contains("WWW-Authenticate: Bearer"));
    assert_eq!(
        http(addr, "GET", "/api/status", Some("Bearer nope"), None).0,
        401
    );
    assert_eq!(
        http(
            addr,
            "GET",
            &format!("/api/status?api_key={TOKEN}"),
            None,
            None
        )
        .0,
        401
    );
    assert_eq!(http(addr, "GET", "/metrics", None, None).0, 401);

    let (code, _, body) = http(addr, "GET", "/api/status", Some(&bearer()), None);
    assert_eq!(code, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    // The two-link daemon's fields that Home Assistant sensors read.
    assert_eq!(v["active_display_name"], "Telekom DSL");
    assert_eq!(v["active_link"], "primary");
    assert_eq!(v["auto_enabled"], true);
    assert_eq!(v["switch_count"], 4);
    for link in ["primary", "secondary"] {
        for key in ["display_name", "gateway", "healthy", "gateway_reachable"] {
            assert!(v[link].get(key).is_some(), "{link}.{key} in {v}");
        }
        for key in ["rx_mbps", "tx_mbps", "rx_mbps_avg", "tx_mbps_avg"] {
            assert!(v[link]["traffic"][key].is_number(), "{link}.traffic.{key}");
        }
    }
    assert_eq!(v["primary"]["gateway"], "198.51.100.1");
    assert_eq!(v["primary"]["healthy"], true);
    assert_eq!(v["primary"]["gateway_reachable"], true);
    assert_eq!(v["primary"]["traffic"]["rx_mbps"], 12.5);
    // The secondary is the first backup of the chain in the root's files (profile 2).
    assert_eq!(v["secondary"]["profile"], "2");
    assert_eq!(v["secondary"]["display_name"], "LTE stick");
    // Our own status fields (DESIGN.md 7) are kept.
    for key in [
        "state",
        "active_profile",
        "primary_profile",
        "auto",
        "switch_count",
        "last_switch",
        "red",
        "health",
    ] {
        assert!(v.get(key).is_some(), "{key}");
    }

    // curl, as Home Assistant's REST integration would ask.
    if connectd::sys::exec::find_in_path("curl").is_some() {
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "10", "-H"])
            .arg(format!("Authorization: Bearer {TOKEN}"))
            .arg(format!("http://{addr}/api/health"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let h: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(h["status"], "ok");
        assert_eq!(h["healthy"], true);
        assert_eq!(h["targets"].as_array().unwrap().len(), 2);
    } else {
        println!("skipped the curl part: curl not installed");
    }
}

#[test]
fn switch_and_auto_forward_the_right_control_requests() {
    let s = setup("1");
    let addr = s.api.local_addr();
    let post = |path: &str, body: &str| http(addr, "POST", path, Some(&bearer()), Some(body));

    let (code, _, body) = post("/api/switch", r#"{"target": "secondary"}"#);
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["success"],
        true
    );
    let (code, _, _) = post("/api/switch", r#"{"target": "primary"}"#);
    assert_eq!(code, 200);
    let (code, _, _) = post("/api/switch", r#"{"target": "2"}"#);
    assert_eq!(code, 200);
    let (code, _, body) = post("/api/auto", r#"{"enabled": false}"#);
    assert_eq!(code, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["auto_enabled"],
        false
    );
    assert_eq!(
        s.sup.requests(),
        vec![
            Request::Failover {
                profile: "2".into()
            },
            Request::Failback { force: false },
            Request::Failover {
                profile: "2".into()
            },
            Request::Auto { enabled: false },
        ]
    );

    // Refused by the supervisor: 400 with its reason.
    let (code, _, body) = post("/api/switch", r#"{"target": "9"}"#);
    assert_eq!(code, 400);
    assert!(body.contains("not in the failover chain"), "{body}");
    let before = s.sup.requests().len();

    // Bad bodies: 400 with a reason, nothing reaches the supervisor.
    for bad in [
        r#"{"target": "../x"}"#,
        r#"{"target": "a b"}"#,
        r#"{"target": ""}"#,
        "not json",
        r#"{"enabled": "yes"}"#,
        "",
    ] {
        let path = if bad.contains("enabled") {
            "/api/auto"
        } else {
            "/api/switch"
        };
        let (code, _, body) = post(path, bad);
        assert_eq!(code, 400, "{bad:?}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{body}");
    }
    // Too large: refused before it is read.
    let big = format!(r#"{{"target": "{}"}}"#, "x".repeat(5000));
    assert_eq!(post("/api/switch", &big).0, 413);
    // Wrong method, unknown path.
    assert_eq!(
        http(addr, "GET", "/api/switch", Some(&bearer()), None).0,
        405
    );
    assert_eq!(
        http(addr, "DELETE", "/api/status", Some(&bearer()), None).0,
        405
    );
    assert_eq!(
        http(addr, "GET", "/api/nothing", Some(&bearer()), None).0,
        404
    );
    assert_eq!(s.sup.requests().len(), before);
}

/// Checks the Prometheus text exposition format (0.0.4) line by line.
fn parse_prometheus(text: &str) -> Vec<(String, String, f64)> {
    let mut typed = std::collections::BTreeSet::new();
    let mut samples = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut w = rest.split(' ');
            let name = w.next().unwrap();
            assert!(["gauge", "counter"].contains(&w.next().unwrap()), "{line}");
            typed.insert(name.to_string());
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        assert!(
            !line.starts_with('#') && !line.is_empty(),
            "stray line {line:?}"
        );
        let name_end = line.find(['{', ' ']).unwrap();
        let name = &line[..name_end];
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
                && !name.starts_with(|c: char| c.is_ascii_digit()),
            "{name}"
        );
        assert!(typed.contains(name), "{name} has no # TYPE before it");
        let (labels, value) = if line[name_end..].starts_with('{') {
            let close = line.rfind("} ").unwrap();
            (line[name_end + 1..close].to_string(), &line[close + 2..])
        } else {
            (String::new(), &line[name_end + 1..])
        };
        let v: f64 = match value {
            "NaN" => f64::NAN,
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            x => x
                .parse()
                .unwrap_or_else(|_| panic!("value {x:?} in {line:?}")),
        };
        samples.push((name.to_string(), labels, v));
    }
    samples
}

#[test]
fn metrics_parse_as_prometheus_text() {
    let s = setup("2");
    let (code, head, body) = http(s.api.local_addr(), "GET", "/metrics", Some(&bearer()), None);
    assert_eq!(code, 200);
    assert!(head.contains("Content-Type: text/plain; version=0.0.4"));
    let samples = parse_prometheus(&body);
    let get = |n: &str| samples.iter().find(|(name, _, _)| name == n).map(|s| s.2);
    assert_eq!(get("connectd_up"), Some(1.0));
    assert_eq!(get("connectd_healthy"), Some(1.0));
    assert_eq!(get("connectd_on_primary"), Some(0.0));
    assert_eq!(get("connectd_switches_total"), Some(4.0));
    assert_eq!(get("connectd_red_rx_mbps"), Some(12.5));
    let rtts: Vec<_> = samples
        .iter()
        .filter(|(n, _, _)| n == "connectd_target_rtt_seconds")
        .collect();
    assert_eq!(rtts.len(), 3, "two targets and the gateway");
    assert!(
        rtts.iter()
            .any(|(_, l, v)| l.contains("192.0.2.11") && v.is_nan())
    );
    assert!(
        samples
            .iter()
            .any(|(n, l, v)| n == "connectd_target_loss_ratio"
                && l.contains("192.0.2.11")
                && *v == 1.0)
    );
}

#[test]
fn idle_and_slow_clients_do_not_stall_others() {
    let s = setup("1");
    let addr = s.api.local_addr();
    // One connects and says nothing; one sends half a request; one sends a head and
    // a part of its body.
    let idle = TcpStream::connect(addr).unwrap();
    let mut half = TcpStream::connect(addr).unwrap();
    half.write_all(b"GET /api/status HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let mut slow_body = TcpStream::connect(addr).unwrap();
    slow_body
        .write_all(
            format!("POST /api/auto HTTP/1.1\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 20\r\n\r\n{{\"ena")
                .as_bytes(),
        )
        .unwrap();
    let t0 = Instant::now();
    let (code, _, _) = http(addr, "GET", "/api/status", Some(&bearer()), None);
    assert_eq!(code, 200);
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "served in {:?}",
        t0.elapsed()
    );

    // The stalled ones are cut off after the request deadline, without an answer (idle)
    // or with 408 (partial request).
    let mut idle = idle;
    idle.set_read_timeout(Some(api::REQUEST_DEADLINE + Duration::from_secs(3)))
        .unwrap();
    let mut buf = Vec::new();
    idle.read_to_end(&mut buf).unwrap();
    assert!(buf.is_empty());
    assert!(t0.elapsed() < api::REQUEST_DEADLINE + Duration::from_secs(2));
    half.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    assert_eq!(read_response(&mut half).0, 408);
    slow_body
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    assert_eq!(read_response(&mut slow_body).0, 408);
    assert!(s.sup.requests().is_empty());
}

#[test]
fn a_flood_of_idle_connections_gets_503_not_a_hang() {
    let s = setup("1");
    let addr = s.api.local_addr();
    let idle: Vec<TcpStream> = (0..api::MAX_CONNECTIONS)
        .map(|_| TcpStream::connect(addr).unwrap())
        .collect();
    // Let the accept thread take them all.
    let t0 = Instant::now();
    let mut got_503 = false;
    while t0.elapsed() < Duration::from_secs(3) {
        let (code, _, _) = http(addr, "GET", "/api/status", Some(&bearer()), None);
        if code == 503 {
            got_503 = true;
            break;
        }
    }
    assert!(got_503, "the connection limit answers 503 at once");
    drop(idle);
    // Once they are gone, clients are served again.
    let t0 = Instant::now();
    loop {
        let (code, _, _) = http(addr, "GET", "/api/status", Some(&bearer()), None);
        if code == 200 {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(5), "still {code}");
    }
}

#[test]
fn no_supervisor_no_token_no_api() {
    let root = TestRoot::synthetic();
    let paths = root.paths();
    root.write(
        "var/ipfire/connectd/settings",
        "FAILOVER_ENABLED=on\nBACKUPPROFILE=2\nAPI_ENABLED=on\nAPI_LISTEN=127.0.0.1:0\n",
    );
    let (policy, _) = connectd::ipfire::policy::Policy::load(&paths, Some("1")).unwrap();
    assert!(
        api::start_from_policy(&paths, &policy).is_none(),
        "no token file, no API"
    );
    root.write("var/ipfire/connectd/api-token", format!("{TOKEN}\n"));
    let h = api::start_from_policy(&paths, &policy).unwrap();
    assert!(h.local_addr().ip().is_loopback());
    // No supervisor behind the control socket: status 503, metrics say down.
    let (code, _, body) = http(h.local_addr(), "GET", "/api/status", Some(&bearer()), None);
    assert_eq!(code, 503, "{body}");
    let (code, _, body) = http(h.local_addr(), "GET", "/metrics", Some(&bearer()), None);
    assert_eq!(code, 200);
    assert!(body.contains("connectd_up 0"));
    let addr = h.local_addr();
    h.stop();
    assert!(TcpStream::connect(addr).is_err(), "stopped means closed");
    // Disabled: nothing starts.
    root.write("var/ipfire/connectd/settings", "FAILOVER_ENABLED=on\n");
    let (policy, _) = connectd::ipfire::policy::Policy::load(&paths, Some("1")).unwrap();
    assert!(api::start_from_policy(&paths, &policy).is_none());
}

/// The status a real supervisor sends: RED's measured traffic is in it (also in the Home
/// Assistant view and `/metrics`, rendered from the same value), and the switch counter is
/// one number whether the supervisor or the command line (no supervisor) switched.
#[test]
fn a_supervisor_reports_traffic_and_one_switch_counter() {
    use crate::util::supervised::{Box_, skip, start};
    if skip() {
        return;
    }
    let b = Box_::new();
    let state_count = |b: &Box_| -> u64 {
        let v: Value = serde_json::from_slice(&b.t.read("var/ipfire/connectd/state")).unwrap();
        v["switch_count"].as_u64().unwrap()
    };
    start(&b);
    b.wait_for("traffic of lo", |b| b.status()["traffic"]["iface"] == "lo");
    let s = b.status();
    for key in ["rx_mbps", "tx_mbps", "rx_mbps_avg", "tx_mbps_avg"] {
        assert!(s["traffic"][key].is_number(), "traffic.{key}: {s}");
    }
    assert!(s["core"]["transitions"].is_array(), "{s}");

    // A supervised switch: counted by the supervisor, stored in the state file.
    let o = b.connectd(&["failover", "2"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    b.wait_for("online on 2", |b| {
        let s = b.status();
        s["state"] == "online" && s["active_profile"] == "2" && s["switch_count"] == 1
    });
    b.wait_for("the count saved", |b| state_count(b) == 1);
    let o = b.connectd(&["stop"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    b.wait_for("the supervisor gone", |b| b.status()["running"] == false);
    assert_eq!(b.status()["switch_count"], 1, "the files say what it said");
    assert_eq!(b.status()["transitions"][0]["kind"], "manual");

    // A switch from the command line, no supervisor: the same counter goes on.
    let o = b.connectd(&["failback", "--force"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(state_count(&b), 2);
    start(&b);
    let s = b.status();
    assert_eq!(s["switch_count"], 2, "{s}");
    assert_eq!(s["core"]["switch_count"], 2, "{s}");
    assert_eq!(s["transitions"][1]["kind"], "failback", "{s}");
}
