//! The web UI page (DESIGN.md 7a, issue 14) as an administrator sees it: the real
//! `wui/connectd.cgi`, served by a real web server with CGI (lighttpd, running as `nobody`)
//! on 127.0.0.1 inside the lab's `fw` namespace, reaching the lab box's connectd through the
//! real setuid helper (`wui/connectdctrl.c`, built for the lab box, installed 4750
//! root:nobody's group), loaded by headless Chromium during a lab story.
//!
//! The page's text is asserted on `chromium --headless --dump-dom`; screenshots go to
//! `target/wui-screenshots/` (CI keeps them). Buttons are clicked in the browser through
//! Chromium's own WebDriver (chromedriver, spoken to with curl): the click submits the
//! page's real form, so the POST, its Referer and the CGI's checks are the browser's own,
//! not a hand-made request.
//!
//! IPFire's `/var/ipfire/header.pl`, `general-functions.pl` and `lang.pl` are replaced by
//! stand-ins (`tests/wui/*.pl`, each says so at its top), and `redctrl` by a stand-in that
//! runs the lab box's network script. The page requires them from `/var/ipfire` and runs
//! `/usr/local/bin/connectdctrl`, as on IPFire; the web server runs in a private mount
//! namespace where the lab box's `var/ipfire` and `usr/local/bin` are mounted there.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::lab::{Lab, alive, cannot_run, pid_in, repo, supervised, wait_for};
use crate::util::is_root;
use crate::util::supervised::{Box_, skip, start};

const URL: &str = "http://127.0.0.1:81/cgi-bin/connectd.cgi";
const DRIVER: &str = "http://127.0.0.1:9515";
/// IPFire's error box (header.pl:358-376), as the page prints it.
const ERROR_BOX: &str = "class=\"section is-box is-error\"";

fn have(tool: &str) -> bool {
    ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
        .iter()
        .any(|d| Path::new(d).join(tool).exists())
}

fn perl_has_cgi() -> bool {
    Command::new("perl")
        .args(["-MCGI", "-e", "1"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Why the browser test cannot run here, if it cannot.
fn cannot_run_wui() -> Option<String> {
    if let Some(why) = cannot_run() {
        return Some(why);
    }
    for tool in [
        "lighttpd",
        "chromium",
        "chromedriver",
        "cc",
        "perl",
        "curl",
        "unshare",
    ] {
        if !have(tool) {
            return Some(format!("{tool} is not installed (run tools/setup)"));
        }
    }
    if !perl_has_cgi() {
        return Some("Perl's CGI module is not installed (run tools/setup)".into());
    }
    None
}

fn ok(o: &Output, what: &str) -> String {
    assert!(
        o.status.success(),
        "{what}: {}\n{}{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn shots_dir() -> PathBuf {
    let d = repo().join("target/wui-screenshots");
    std::fs::create_dir_all(&d).expect("target/wui-screenshots");
    d
}

/// The page served in the lab: lighttpd and chromedriver (each its own process group,
/// killed on drop), the lab box's paths for it.
struct Web {
    ns: String,
    dir: PathBuf,
    server: Option<Child>,
    driver: Option<Child>,
    session: Option<String>,
}

fn kill_group(child: &mut Child) {
    let pid = nix::unistd::Pid::from_raw(-(child.id() as i32));
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    if !wait_for(Duration::from_secs(3), || {
        matches!(child.try_wait(), Ok(Some(_)))
    }) {
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
    }
    let _ = child.wait();
}

impl Drop for Web {
    fn drop(&mut self) {
        if let Some(s) = self.session.take() {
            let _ = self.curl("DELETE", &format!("{DRIVER}/session/{s}"), None);
        }
        for c in [self.driver.take(), self.server.take()]
            .into_iter()
            .flatten()
        {
            let mut c = c;
            kill_group(&mut c);
        }
    }
}

impl Web {
    /// Installs the page into the lab box and serves it on 127.0.0.1:81 in `fw`.
    fn serve(lab: &Lab) -> Web {
        let root = lab.root();
        let dir = lab.dir.join("wui");
        for d in [
            "srv/web/ipfire/html",
            "srv/web/ipfire/cgi-bin",
            "usr/local/bin",
            "var/ipfire/menu.d",
            "var/ipfire/addon-lang",
            "var/ipfire/main",
        ] {
            std::fs::create_dir_all(root.join(d)).expect(d);
        }
        std::fs::create_dir_all(dir.join("tmp")).expect("wui dir");
        let _ = nix::unistd::chown(
            &dir.join("tmp"),
            nix::unistd::User::from_name("nobody")
                .ok()
                .flatten()
                .map(|u| u.uid),
            None,
        );
        let copy = |from: &str, to: &str, mode: u32| {
            let dst = root.join(to);
            std::fs::copy(repo().join(from), &dst).unwrap_or_else(|e| panic!("{from}: {e}"));
            std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(mode)).expect(to);
        };
        copy(
            "wui/connectd.cgi",
            "srv/web/ipfire/cgi-bin/connectd.cgi",
            0o755,
        );
        copy(
            "wui/EX-connectd.menu",
            "var/ipfire/menu.d/EX-connectd.menu",
            0o644,
        );
        copy(
            "wui/lang/connectd.en.pl",
            "var/ipfire/addon-lang/connectd.en.pl",
            0o644,
        );
        copy(
            "wui/lang/connectd.de.pl",
            "var/ipfire/addon-lang/connectd.de.pl",
            0o644,
        );
        for f in ["header.pl", "general-functions.pl", "lang.pl"] {
            copy(&format!("tests/wui/{f}"), &format!("var/ipfire/{f}"), 0o644);
        }
        copy("tests/wui/redctrl", "usr/local/bin/redctrl", 0o755);
        std::fs::write(root.join("var/ipfire/main/settings"), "LANGUAGE=en\n").expect("main");

        // The helper, built for the lab box (its connectd, root and redctrl), installed
        // as tools/install does: 4750 root:<nobody's group>.
        let ctrl = root.join("usr/local/bin/connectdctrl");
        let q = |s: &Path| format!("\"{}\"", s.display());
        ok(
            &Command::new("cc")
                .args(["-O2", "-Wall", "-Wextra", "-Werror"])
                .arg(format!("-DCONNECTD_BIN={}", q(&crate::lab::connectd_bin())))
                .arg(format!("-DCONNECTD_ROOT={}", q(&root)))
                .arg(format!(
                    "-DREDCTRL={}",
                    q(&root.join("usr/local/bin/redctrl"))
                ))
                .arg("-o")
                .arg(&ctrl)
                .arg(repo().join("wui/connectdctrl.c"))
                .output()
                .expect("cc"),
            "cc connectdctrl.c",
        );
        let nobody = nix::unistd::User::from_name("nobody")
            .ok()
            .flatten()
            .expect("user nobody");
        nix::unistd::chown(&ctrl, Some(0.into()), Some(nobody.gid)).expect("chown helper");
        std::fs::set_permissions(&ctrl, std::fs::Permissions::from_mode(0o4750)).expect("chmod");

        let group = nix::unistd::Group::from_gid(nobody.gid)
            .ok()
            .flatten()
            .map_or_else(|| "nogroup".to_string(), |g| g.name);
        let conf = dir.join("lighttpd.conf");
        std::fs::write(
            &conf,
            format!(
                "server.document-root = \"{root}/srv/web/ipfire/html\"\n\
                 server.bind = \"127.0.0.1\"\nserver.port = 81\n\
                 server.username = \"nobody\"\nserver.groupname = \"{group}\"\n\
                 server.upload-dirs = ( \"{dir}/tmp\" )\n\
                 server.modules = ( \"mod_alias\", \"mod_cgi\" )\n\
                 alias.url = ( \"/cgi-bin/\" => \"{root}/srv/web/ipfire/cgi-bin/\" )\n\
                 $HTTP[\"url\"] =~ \"^/cgi-bin/\" {{ cgi.assign = ( \".cgi\" => \"\" ) }}\n",
                root = root.display(),
                dir = dir.display(),
            ),
        )
        .expect("lighttpd.conf");
        let log = std::fs::File::create(dir.join("lighttpd.log")).expect("log");
        // A private mount namespace inside fw: the box's var/ipfire and usr/local/bin where
        // IPFire has them. /var gets a tmpfs for the mount point, with every entry of the
        // real /var bound back (dhcpcd, started through the page's Connect, needs
        // /var/lib/dhcpcd); nothing propagates out of the namespace.
        let script = format!(
            "set -e; real={dir}/realvar; mkdir -p $real; mount --bind /var $real; \
             mount -t tmpfs -o mode=0755 tmpfs /var; \
             for e in $real/* $real/.[!.]*; do [ -e \"$e\" ] || [ -L \"$e\" ] || continue; \
               n=${{e##*/}}; \
               if [ -L \"$e\" ]; then ln -s \"$(readlink \"$e\")\" \"/var/$n\"; \
               elif [ -d \"$e\" ]; then mkdir \"/var/$n\"; mount --bind \"$e\" \"/var/$n\"; fi; \
             done; \
             mkdir /var/ipfire; mount --bind {root}/var/ipfire /var/ipfire; \
             mount --bind {root}/usr/local/bin /usr/local/bin; \
             exec lighttpd -D -f {conf}",
            dir = dir.display(),
            root = root.display(),
            conf = conf.display()
        );
        let server = Command::new("ip")
            .args(["netns", "exec", &lab.ns("fw")])
            .args([
                "unshare",
                "-m",
                "--propagation",
                "private",
                "sh",
                "-c",
                &script,
            ])
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("lighttpd");
        let driver = Command::new("ip")
            .args([
                "netns",
                "exec",
                &lab.ns("fw"),
                "chromedriver",
                "--port=9515",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("chromedriver");
        let web = Web {
            ns: lab.ns("fw"),
            dir,
            server: Some(server),
            driver: Some(driver),
            session: None,
        };
        let up = wait_for(Duration::from_secs(10), || {
            web.curl("GET", URL, None).contains("Uplink failover")
                && web
                    .curl("GET", &format!("{DRIVER}/status"), None)
                    .contains("ready")
        });
        assert!(up, "the page is not served: {}", web.server_log());
        web
    }

    fn server_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("lighttpd.log")).unwrap_or_default()
    }

    /// curl inside fw; the response body ("" on failure).
    fn curl(&self, method: &str, url: &str, body: Option<&Value>) -> String {
        let mut c = Command::new("ip");
        c.args([
            "netns", "exec", &self.ns, "curl", "-sS", "-m", "150", "-X", method,
        ]);
        if let Some(b) = body {
            c.args(["-H", "Content-Type: application/json", "--data-binary"])
                .arg(b.to_string());
        }
        c.arg(url);
        c.output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }

    /// A form POST made by hand (not the browser), with an optional Referer.
    fn post(&self, fields: &[(&str, &str)], referer: Option<&str>) -> String {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns, "curl", "-sS", "-m", "60"]);
        for (k, v) in fields {
            c.arg("--data-urlencode").arg(format!("{k}={v}"));
        }
        if let Some(r) = referer {
            c.args(["-e", r]);
        }
        c.arg(URL);
        String::from_utf8_lossy(&c.output().expect("curl").stdout).into_owned()
    }

    /// `chromium --headless --dump-dom` of the page.
    fn dump_dom(&self) -> String {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.ns,
                "chromium",
                "--headless",
                "--no-sandbox",
            ])
            .args(["--disable-gpu", "--hide-scrollbars"])
            .arg(format!(
                "--user-data-dir={}",
                self.dir.join("chrome").display()
            ))
            .args(["--dump-dom", URL])
            .stderr(Stdio::null())
            .output()
            .expect("chromium --dump-dom");
        ok(&out, "chromium --dump-dom")
    }

    /// `chromium --headless --screenshot`: target/wui-screenshots/NAME.png.
    fn screenshot(&self, name: &str) -> PathBuf {
        let png = shots_dir().join(format!("{name}.png"));
        let _ = std::fs::remove_file(&png);
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.ns,
                "chromium",
                "--headless",
                "--no-sandbox",
            ])
            .args([
                "--disable-gpu",
                "--hide-scrollbars",
                "--window-size=1100,1900",
            ])
            .arg(format!(
                "--user-data-dir={}",
                self.dir.join("chrome").display()
            ))
            .arg(format!("--screenshot={}", png.display()))
            .arg(URL)
            .stderr(Stdio::null())
            .output()
            .expect("chromium --screenshot");
        ok(&out, "chromium --screenshot");
        let data = std::fs::read(&png).unwrap_or_default();
        assert!(data.starts_with(b"\x89PNG"), "{} is a PNG", png.display());
        png
    }

    /// One WebDriver command; its `value` (panics on a WebDriver error).
    fn wd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let text = self.curl(method, &format!("{DRIVER}{path}"), body.as_ref());
        let v: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}: {text:?}"));
        if let Some(err) = v["value"].get("error") {
            panic!(
                "WebDriver {method} {path}: {err}: {}",
                v["value"]["message"]
            );
        }
        v["value"].clone()
    }

    /// The browser session (opened on first use).
    fn session(&mut self) -> String {
        if let Some(s) = &self.session {
            return s.clone();
        }
        let v = self.wd(
            "POST",
            "/session",
            Some(json!({"capabilities": {"alwaysMatch": {"goog:chromeOptions": {
                "args": ["--headless", "--no-sandbox", "--disable-gpu", "--window-size=1100,1900"]
            }}}})),
        );
        let id = v["sessionId"].as_str().expect("sessionId").to_string();
        self.session = Some(id.clone());
        id
    }

    /// Opens the page in the browser.
    fn open(&mut self) {
        let s = self.session();
        self.wd(
            "POST",
            &format!("/session/{s}/url"),
            Some(json!({"url": URL})),
        );
    }

    fn element(&mut self, css: &str) -> String {
        let s = self.session();
        let v = self.wd(
            "POST",
            &format!("/session/{s}/element"),
            Some(json!({"using": "css selector", "value": css})),
        );
        v.as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no element {css}"))
            .to_string()
    }

    /// Types VALUE into the form field NAME (cleared first).
    fn type_into(&mut self, name: &str, value: &str) {
        let s = self.session();
        let e = self.element(&format!("input[name='{name}']"));
        self.wd(
            "POST",
            &format!("/session/{s}/element/{e}/clear"),
            Some(json!({})),
        );
        self.wd(
            "POST",
            &format!("/session/{s}/element/{e}/value"),
            Some(json!({"text": value})),
        );
    }

    /// Clicks the element CSS in the browser; returns the page source after the form's
    /// POST was answered (WebDriver waits for the navigation).
    fn click(&mut self, css: &str) -> String {
        let s = self.session();
        // Marks the current document, to tell the answer to the POST from it.
        self.wd(
            "POST",
            &format!("/session/{s}/execute/sync"),
            Some(json!({"script": "document.body.setAttribute('data-old', '1')", "args": []})),
        );
        let e = self.element(css);
        self.wd(
            "POST",
            &format!("/session/{s}/element/{e}/click"),
            Some(json!({})),
        );
        let mut page = String::new();
        let answered = wait_for(Duration::from_secs(150), || {
            page = self.source();
            page.contains("stand-in footer") && !page.contains("data-old")
        });
        assert!(
            answered,
            "no answer to the click on {css}:\n{page}\n{}",
            self.server_log()
        );
        page
    }

    fn source(&mut self) -> String {
        let s = self.session();
        self.wd("GET", &format!("/session/{s}/source"), None)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

/// The text of the `connectd-state` paragraph.
fn state_line(dom: &str) -> String {
    dom.split("class=\"connectd-state\"><strong>")
        .nth(1)
        .and_then(|r| r.split("</strong>").next())
        .unwrap_or_default()
        .to_string()
}

fn status_state(lab: &Lab) -> String {
    lab.status()["state"].as_str().unwrap_or("?").to_string()
}

#[test]
fn wui_page_logic_and_helper_checks() {
    // Runs without root: the Perl syntax check, the page's own unit tests, and the
    // helper's refusals (it exits 2 before it uses any privilege or runs anything).
    if !have("perl") || !have("cc") {
        println!("skipped: wui_page_logic_and_helper_checks: perl or cc is not installed");
        return;
    }
    let cgi = repo().join("wui/connectd.cgi");
    let o = Command::new("perl")
        .arg("-c")
        .arg(&cgi)
        .output()
        .expect("perl -c");
    assert!(
        o.status.success() && String::from_utf8_lossy(&o.stderr).contains("syntax OK"),
        "perl -c: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    for f in [
        "wui/lang/connectd.en.pl",
        "wui/lang/connectd.de.pl",
        "wui/EX-connectd.menu",
    ] {
        let o = Command::new("perl")
            .arg("-c")
            .arg(repo().join(f))
            .output()
            .expect("perl -c");
        assert!(
            o.status.success(),
            "perl -c {f}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let o = Command::new("perl")
        .arg(repo().join("wui/t/connectd.t"))
        .output()
        .expect("perl t/connectd.t");
    let tap = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && !tap.contains("not ok"),
        "wui/t/connectd.t:\n{tap}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    println!(
        "wui/t/connectd.t: {} tests",
        tap.lines().filter(|l| l.starts_with("ok")).count()
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let bin = dir.path().join("connectdctrl");
    let marker = dir.path().join("ran");
    // CONNECTD_BIN points at a program that would leave a marker: it must never run.
    let fake = dir.path().join("fake-connectd");
    std::fs::write(&fake, format!("#!/bin/sh\ntouch {}\n", marker.display())).expect("fake");
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    ok(
        &Command::new("cc")
            .args(["-O2", "-Wall", "-Wextra", "-Werror"])
            .arg(format!("-DCONNECTD_BIN=\"{}\"", fake.display()))
            .arg("-o")
            .arg(&bin)
            .arg(repo().join("wui/connectdctrl.c"))
            .output()
            .expect("cc"),
        "cc connectdctrl.c",
    );
    for args in [
        vec![],
        vec!["bogus"],
        vec!["status", "extra"],
        vec!["failover"],
        vec!["failover", "../x"],
        vec!["failover", "a b"],
        vec!["failover", "123456789012345678901234567890123"],
        vec!["failover", "$(reboot)"],
        vec!["auto", "maybe"],
        vec!["policy-set"],
        vec!["policy-set", "FOO=1"],
        vec!["policy-set", "FAILBACK_DELAY=1;reboot"],
        vec!["policy-set", "FAILBACK_DELAY=a b"],
        vec!["policy-set", "FAILBACK_DELAY"],
        vec!["policy-set", "API_LISTEN=0.0.0.0:80"],
    ] {
        let o = Command::new(&bin)
            .args(&args)
            .output()
            .expect("connectdctrl");
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(!marker.exists(), "{args:?} ran connectd");
    }
    if is_root() {
        // Accepted: runs the fixed program (as root here, no setuid needed).
        let o = Command::new(&bin)
            .args(["failover", "lte-2"])
            .env("EVIL", "1")
            .output()
            .expect("connectdctrl");
        assert!(o.status.success(), "{o:?}");
        assert!(marker.exists(), "an accepted command runs connectd");
    }
}

/// `connectd policy` / `policy set` / `history` as the page calls them, through the real
/// binary: a refused value writes nothing and names the key (exit 2); an accepted one is
/// written and the running supervisor reloads; the history is written while it runs.
#[test]
fn wui_policy_and_history_commands() {
    let b = Box_::new();
    let policy = b.t.path("var/ipfire/connectd/settings");
    let before = std::fs::read(&policy).expect("policy");
    let o = b.connectd(&[
        "policy",
        "set",
        "FAILBACK_DELAY=900",
        "FAILOVER_CHECK_INTERVAL=fast",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("FAILOVER_CHECK_INTERVAL") && err.lines().count() == 1,
        "{err}"
    );
    assert_eq!(
        std::fs::read(&policy).expect("policy"),
        before,
        "nothing written"
    );
    let o = b.connectd(&["policy", "set", "NO_SUCH_KEY=1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("NO_SUCH_KEY"));

    let o = b.connectd(&["policy", "set", "FAILBACK_DELAY=900"]);
    let out = ok(&o, "policy set");
    assert!(
        out.contains("policy saved: FAILBACK_DELAY; connectd is not running"),
        "{out}"
    );
    let text = std::fs::read_to_string(&policy).expect("policy");
    assert!(text.contains("\nFAILBACK_DELAY=900\n") && !text.contains("FAILBACK_DELAY=3600"));
    let v: Value =
        serde_json::from_str(&ok(&b.connectd(&["policy", "--json"]), "policy")).expect("json");
    let key = |k: &str| {
        v["keys"]
            .as_array()
            .and_then(|ks| ks.iter().find(|x| x["key"] == k).cloned())
            .unwrap_or(Value::Null)
    };
    assert_eq!(key("FAILBACK_DELAY")["value"], "900");
    assert_eq!(key("FAILBACK_DELAY")["default"], "300");
    assert_eq!(key("FAILOVER_WINDOW")["in_file"], false);
    let h: Value =
        serde_json::from_str(&ok(&b.connectd(&["history", "--json"]), "history")).expect("json");
    assert_eq!(
        h["intervals"],
        json!([]),
        "no history before a supervisor ran"
    );

    if skip() {
        return;
    }
    start(&b);
    b.wait_for("RED carried by profile 1 in the history", |b| {
        let h: Value =
            serde_json::from_slice(&b.connectd(&["history", "--json"]).stdout).unwrap_or_default();
        h["intervals"]
            .as_array()
            .and_then(|i| i.last())
            .is_some_and(|i| i["profile"] == "1" && i["to"].is_null())
    });
    let st = b.status();
    assert_eq!(st["chain"][0]["profile"], "1", "{st}");
    assert_eq!(st["chain"][1]["type"], "DHCP", "{st}");
    assert!(st["traffic"].is_object(), "{st}");
    let pid = b.pid().expect("supervisor");
    let out = ok(
        &b.connectd(&["policy", "set", "FAILOVER_CHECK_INTERVAL=0.7"]),
        "policy set",
    );
    assert!(out.contains("connectd reloaded it"), "{out}");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        b.pid(),
        Some(pid),
        "the supervisor reloads, it does not restart"
    );
    assert_eq!(b.status()["running"], true);
}

#[test]
fn wui_page_in_a_browser_during_a_lab_story() {
    if let Some(why) = cannot_run_wui() {
        println!("skipped: wui_page_in_a_browser_during_a_lab_story: {why}");
        return;
    }
    let started = Instant::now();
    let Some(mut lab) = supervised("wui") else {
        return;
    };
    let mut web = Web::serve(&lab);

    // --- Online on the primary.
    let dom = web.dump_dom();
    let line = state_line(&dom);
    assert!(
        line.starts_with("online on the primary 1 (ISP1 DSL) since "),
        "{line}\n{dom}"
    );
    for row in [
        "<td>1 (ISP1 DSL) <em>primary</em></td><td>pppoe</td><td>red0</td>",
        "<td>2 (ISP2 cable) <em>backup</em></td><td>DHCP</td><td>red1</td>",
        "<td>3 (LTE) <em>backup</em></td><td>qmi</td><td>wwan0</td>",
    ] {
        assert!(dom.contains(row), "chain row {row}:\n{dom}");
    }
    for target in [
        "203.0.113.1",
        "203.0.113.2",
        "203.0.113.3",
        "198.51.100.1 (Gateway)",
    ] {
        assert!(
            dom.contains(&format!("<td>{target}</td>")),
            "target {target}"
        );
    }
    assert!(dom.contains("class=\"connectd-timeline\""), "the timeline");
    assert!(dom.contains("<rect class=\"band\""), "the primary's band");
    web.screenshot("01-online");

    // --- The policy form, in the browser: accepted values are saved, comments kept, the
    // supervisor reloads; a refused value names the field and changes nothing.
    let policy = lab.root().join("var/ipfire/connectd/settings");
    web.open();
    web.type_into("FAILBACK_DELAY", "600");
    web.type_into("FAILBACK_GRACE", "30");
    let page = web.click("input.connectd-save");
    assert!(
        page.contains("policy saved: FAILBACK_DELAY, FAILBACK_GRACE"),
        "{page}"
    );
    let text = std::fs::read_to_string(&policy).expect("policy");
    assert!(text.contains("\nFAILBACK_DELAY=600\n") && text.contains("\nFAILBACK_GRACE=30\n"));
    assert!(
        text.starts_with("# The lab's failover policy"),
        "comments kept:\n{text}"
    );
    assert!(
        wait_for(Duration::from_secs(5), || lab
            .connectd_log()
            .contains("policy reloaded")),
        "SIGHUP reload:\n{}",
        lab.connectd_log()
    );
    let before = std::fs::read(&policy).expect("policy");
    web.open();
    web.type_into("FAILOVER_CHECK_INTERVAL", "fast");
    let page = web.click("input.connectd-save");
    assert!(page.contains(ERROR_BOX), "an error box:\n{page}");
    assert!(
        page.contains("Seconds between probe rounds (FAILOVER_CHECK_INTERVAL):"),
        "the error names the field:\n{page}"
    );
    assert!(
        page.contains("value=\"fast\""),
        "the form keeps what was typed"
    );
    assert_eq!(
        std::fs::read(&policy).expect("policy"),
        before,
        "nothing written"
    );
    web.open();
    web.type_into("FAILBACK_DELAY", "1;reboot");
    let page = web.click("input.connectd-save");
    assert!(
        page.contains("(FAILBACK_DELAY): only letters"),
        "{page}\n{}",
        web.server_log()
    );
    assert_eq!(
        std::fs::read(&policy).expect("policy"),
        before,
        "nothing written"
    );

    // --- A POST without this server as Referer does nothing (IPFire's referer check),
    // nor does a GET; bad input gets the error box, not a Perl error.
    let foreign = web.post(
        &[("ACTION", "failover"), ("PROFILE", "3")],
        Some("http://evil.example/x"),
    );
    assert!(
        !foreign.contains("connectd-info"),
        "no action for a foreign referer"
    );
    let none = web.post(&[("ACTION", "failover"), ("PROFILE", "3")], None);
    assert!(
        !none.contains("connectd-info"),
        "no action without a referer"
    );
    let get = web.curl("GET", &format!("{URL}?ACTION=failover&PROFILE=3"), None);
    assert!(!get.contains("connectd-info"), "no action on a GET");
    let bad = web.post(&[("ACTION", "failover"), ("PROFILE", "../../x")], Some(URL));
    assert!(
        bad.contains(ERROR_BOX) && bad.contains("not a profile name"),
        "{bad}"
    );
    let bad = web.post(&[("ACTION", "nonsense")], Some(URL));
    assert!(
        bad.contains(ERROR_BOX) && bad.contains("unknown action"),
        "{bad}"
    );
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(lab.active_profile(), "1", "no request above moved the box");

    // --- Failover: the primary stops carrying traffic.
    lab.ok(&["fault", "isp1", "blackhole"]);
    let t = lab.wait_on("2", "isp2", Duration::from_secs(30));
    println!("wui: failover after {t:?}");
    // The history is written at once when the carrying profile changes.
    let dom = web.dump_dom();
    let line = state_line(&dom);
    assert!(
        line.starts_with("on backup 2 (ISP2 cable) since ")
            && line.contains(", primary 1 (ISP1 DSL) failed: up but no traffic")
            && line.contains("; next failback try "),
        "{line}"
    );
    assert!(
        dom.contains("<line class=\"switch\""),
        "the switch is marked on the timeline"
    );
    assert!(
        dom.contains("class=\"connectd-switch\""),
        "the switch is listed"
    );
    web.screenshot("02-failover");

    // --- Fail back now, clicked in the browser: a trial failback (30 s of grace).
    lab.ok(&["fault", "isp1", "clear"]);
    web.open();
    let page = web.click("input.connectd-failback");
    assert!(
        page.contains("connectd-info"),
        "the click was answered:\n{page}"
    );
    let trial = wait_for(Duration::from_secs(30), || status_state(&lab) == "trial");
    assert!(trial, "a failback trial: {}", lab.status());
    let dom = web.dump_dom();
    let line = state_line(&dom);
    assert!(
        line.starts_with("trying the primary 1 (ISP1 DSL) again"),
        "{line}"
    );
    web.screenshot("03-failback-trial");
    lab.wait_on("1", "isp1", Duration::from_secs(60));

    // --- A profile name with HTML in it (profiles are files the web user can write).
    let p3 = lab.root().join("var/ipfire/ppp/settings-3");
    let text = std::fs::read_to_string(&p3).expect("settings-3");
    std::fs::write(
        &p3,
        text.replace(
            "PROFILENAME=LTE",
            "PROFILENAME='<script>document.title=\"owned\"</script><img src=x onerror=alert(1)>LTE'",
        ),
    )
    .expect("settings-3");
    let dom = web.dump_dom();
    assert!(
        dom.contains("&lt;script&gt;document.title"),
        "shown as text:\n{dom}"
    );
    assert!(!dom.contains("<script>document.title"), "never as markup");
    assert!(!dom.contains("<img src=\"x\""), "never as markup");
    assert!(
        dom.contains("<title>ipfire.lab - Uplink failover</title>"),
        "no script ran"
    );
    web.screenshot("04-html-injection");
    std::fs::write(&p3, text).expect("settings-3");

    // --- On the DHCP backup (fail over to 2, clicked), Disconnect and Connect.
    web.open();
    let page = web.click("input[value='Fail over to 2']");
    assert!(page.contains("connectd-info"), "{page}");
    lab.wait_on("2", "isp2", Duration::from_secs(40));
    web.open();
    let page = web.click("input.connectd-disconnect");
    assert!(!page.contains(ERROR_BOX), "{page}");
    let dhcpcd = lab.root().join("var/run/dhcpcd-lab/red1/pid");
    let down = wait_for(Duration::from_secs(20), || {
        !lab.red("active").exists()
            && matches!(
                lab.connectd.as_mut().map(|c| c.try_wait()),
                Some(Ok(Some(_)))
            )
            && pid_in(&dhcpcd).is_none_or(|p| !alive(p))
    });
    assert!(
        down,
        "Disconnect: RED down, connectd gone, dhcpcd gone\n{}",
        lab.connectd_log()
    );
    assert!(
        !lab.red("keepconnected").exists(),
        "keepconnected stays gone"
    );
    std::thread::sleep(Duration::from_secs(4));
    assert!(!lab.red("active").exists(), "nothing redials");
    assert_eq!(lab.carrier(), "none", "no traffic leaves the LAN");
    lab.assert_consistent("2", "DHCP", "red1");
    let dom = web.dump_dom();
    assert!(
        state_line(&dom).starts_with("not connected (profile 2 (ISP2 cable))"),
        "{}",
        state_line(&dom)
    );
    web.screenshot("05-disconnected");

    web.open();
    let page = web.click("input.connectd-connect");
    assert!(!page.contains(ERROR_BOX), "{page}");
    let up = wait_for(Duration::from_secs(30), || {
        lab.red("active").exists() && lab.carrier() == "isp2"
    });
    assert!(
        up,
        "Connect: RED up again on the DHCP backup, traffic via isp2"
    );
    lab.assert_consistent("2", "DHCP", "red1");
    assert!(pid_in(&dhcpcd).is_some_and(alive), "dhcpcd runs on red1");
    web.screenshot("06-connected");

    println!(
        "wui: story done in {:?}; screenshots in {}",
        started.elapsed(),
        shots_dir().display()
    );
    drop(web);
}
