//! The endpoints: authentication (a bearer token, compared in constant time), routing,
//! and each endpoint's answer from the supervisor behind the control socket.

use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

use super::http::{HttpRequest, Response};
use super::{COMMAND_TIMEOUT, STATUS_TIMEOUT};
use crate::error::Result;
use crate::ipfire::paths::Paths;
use crate::ipfire::profile::ProfileName;
use crate::supervisor::control::{Reply, Request};
use crate::supervisor::status::Status;

/// Compares `given` with `expected` in time that depends only on `expected`'s length.
pub(crate) fn constant_time_eq(given: &[u8], expected: &[u8]) -> bool {
    let mut diff = u8::from(given.len() != expected.len());
    for (i, e) in expected.iter().enumerate() {
        let g = given.get(i).copied().unwrap_or(!*e);
        diff |= g ^ e;
    }
    std::hint::black_box(diff) == 0
}

/// Whether the request carries exactly one `Authorization: Bearer TOKEN` with our token.
fn authorized(req: &HttpRequest, token: &str) -> bool {
    let mut values = req.header_values("authorization");
    let (Some(v), None) = (values.next(), values.next()) else {
        return false;
    };
    let Some((scheme, given)) = v.split_once(' ') else {
        return false;
    };
    scheme.eq_ignore_ascii_case("bearer")
        && constant_time_eq(given.trim().as_bytes(), token.as_bytes())
}

/// How the API reaches the supervisor: `control::call` on the control socket in
/// production, a closure in tests.
pub(crate) type Call<'a> = dyn Fn(&Request, Duration) -> Result<Option<Reply>> + 'a;

type Handler = fn(&Paths, &HttpRequest, &Call<'_>) -> Response;

/// Answers one request (authentication, routing, the endpoint).
pub(crate) fn route(paths: &Paths, token: &str, req: &HttpRequest, call: &Call<'_>) -> Response {
    if !authorized(req, token) {
        return Response::error(
            401,
            "unauthorized: send the header Authorization: Bearer TOKEN (see `connectd api-key`)",
        )
        .with_header("WWW-Authenticate", "Bearer realm=\"connectd\"");
    }
    let path = req.path.split('?').next().unwrap_or_default();
    let (allowed, handler): (&str, Handler) = match path {
        "/api/status" => ("GET", get_status),
        "/api/health" => ("GET", get_health),
        "/metrics" => ("GET", get_metrics),
        "/api/switch" => ("POST", post_switch),
        "/api/auto" => ("POST", post_auto),
        _ => return Response::error(404, "no such endpoint"),
    };
    if req.method != allowed {
        return Response::error(405, &format!("{path} takes {allowed}"))
            .with_header("Allow", allowed);
    }
    handler(paths, req, call)
}

fn fetch_status(call: &Call<'_>) -> std::result::Result<Status, Response> {
    match call(&Request::Status, STATUS_TIMEOUT) {
        Ok(Some(Reply {
            ok: true,
            status: Some(v),
            ..
        })) => Ok(v),
        Ok(Some(r)) => Err(Response::error(
            502,
            &format!(
                "the supervisor answered without a status: {}",
                r.message.unwrap_or_default()
            ),
        )),
        Ok(None) => Err(Response::error(503, "connectd is not running")),
        Err(e) => Err(Response::error(
            503,
            &format!("the supervisor did not answer: {e}"),
        )),
    }
}

fn get_status(paths: &Paths, _req: &HttpRequest, call: &Call<'_>) -> Response {
    match fetch_status(call) {
        Ok(s) => {
            let links = super::ha::chain_links(paths, s.primary_profile.as_ref());
            Response::json(200, &super::ha::ha_status(&s, &links))
        }
        Err(r) => r,
    }
}

fn get_health(_paths: &Paths, _req: &HttpRequest, call: &Call<'_>) -> Response {
    match fetch_status(call) {
        Ok(s) => {
            let mut h = serde_json::to_value(&s.health).unwrap_or_else(|_| json!({}));
            if let Some(o) = h.as_object_mut() {
                o.insert("status".into(), "ok".into());
                o.insert("state".into(), s.state.into());
                o.insert("red_active".into(), s.red.active.into());
            }
            Response::json(200, &h)
        }
        Err(r) => r,
    }
}

fn get_metrics(_paths: &Paths, _req: &HttpRequest, call: &Call<'_>) -> Response {
    let text = match fetch_status(call) {
        Ok(s) => super::metrics::metrics(Some(&s)),
        Err(_) => super::metrics::metrics(None),
    };
    Response {
        status: 200,
        content_type: "text/plain; version=0.0.4; charset=utf-8",
        headers: Vec::new(),
        body: text.into_bytes(),
    }
}

fn parse_body<T: for<'de> Deserialize<'de>>(
    req: &HttpRequest,
    example: &str,
) -> std::result::Result<T, Response> {
    if req.body.is_empty() {
        return Err(Response::error(
            400,
            &format!("missing body; expected {example}"),
        ));
    }
    serde_json::from_slice(&req.body)
        .map_err(|e| Response::error(400, &format!("bad body ({e}); expected {example}")))
}

#[derive(Deserialize)]
struct SwitchBody {
    target: String,
}

#[derive(Deserialize)]
struct AutoBody {
    enabled: bool,
}

fn command(call: &Call<'_>, req: &Request) -> std::result::Result<Reply, Response> {
    match call(req, COMMAND_TIMEOUT) {
        Ok(Some(r)) if r.ok => Ok(r),
        Ok(Some(r)) => {
            let msg = r.message.unwrap_or_else(|| "refused".into());
            Err(Response::error(
                if r.code == Some(2) { 400 } else { 500 },
                &msg,
            ))
        }
        Ok(None) => Err(Response::error(503, "connectd is not running")),
        Err(e) => Err(Response::error(
            504,
            &format!("the supervisor did not answer in time: {e}"),
        )),
    }
}

fn post_switch(paths: &Paths, req: &HttpRequest, call: &Call<'_>) -> Response {
    let body: SwitchBody = match parse_body(req, r#"{"target": "primary" | "secondary" | PROFILE}"#)
    {
        Ok(b) => b,
        Err(r) => return r,
    };
    let target = body.target.trim();
    let name = match ProfileName::new(target) {
        Ok(n) => n,
        Err(e) => return Response::error(400, &format!("target: {e}")),
    };
    let status = match fetch_status(call) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let primary = status.primary_profile.as_ref();
    let request = if target == "primary" || primary == Some(&name) {
        Request::Failback { force: false }
    } else if target == "secondary" && !paths.profile("secondary").exists() {
        let links = super::ha::chain_links(paths, primary);
        match super::ha::secondary_of(&status, &links) {
            Some(s) => Request::Failover {
                profile: s.to_string(),
            },
            None => {
                return Response::error(400, "target: there is no backup profile (BACKUPPROFILE)");
            }
        }
    } else {
        Request::Failover {
            profile: name.to_string(),
        }
    };
    match command(call, &request) {
        Ok(r) => Response::json(
            200,
            &json!({"success": true, "message": r.message, "request": request}),
        ),
        Err(r) => r,
    }
}

fn post_auto(_paths: &Paths, req: &HttpRequest, call: &Call<'_>) -> Response {
    let body: AutoBody = match parse_body(req, r#"{"enabled": true | false}"#) {
        Ok(b) => b,
        Err(r) => return r,
    };
    match command(
        call,
        &Request::Auto {
            enabled: body.enabled,
        },
    ) {
        Ok(r) => Response::json(
            200,
            &json!({"success": true, "auto_enabled": body.enabled, "message": r.message}),
        ),
        Err(r) => r,
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::super::fixtures::{req, status};
    use super::*;
    use crate::error::Error;

    #[test]
    fn constant_time_compare() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abd", b"abc"));
        assert!(!constant_time_eq(b"ab", b"abc"));
        assert!(!constant_time_eq(b"abcd", b"abc"));
        assert!(!constant_time_eq(b"", b"abc"));
        // A given token that is the expected one plus what `!e` would pad with.
        assert!(!constant_time_eq(&[b'a', b'b', b'c', !0], b"abc"));
    }

    #[test]
    fn auth_is_bearer_in_one_header_only() {
        let d = tempfile::tempdir().unwrap();
        let paths = Paths::new(d.path()).unwrap();
        let calls = RefCell::new(Vec::new());
        let call = |r: &Request, _t: Duration| -> Result<Option<Reply>> {
            calls.borrow_mut().push(r.clone());
            let mut rep = Reply::ok("status");
            rep.status = Some(status());
            Ok(Some(rep))
        };
        for a in [
            None,
            Some("Bearer wrong"),
            Some("Basic s3cret"),
            Some("s3cret"),
            Some("Bearer"),
        ] {
            let r = route(&paths, "s3cret", &req("GET", "/api/status", a, ""), &call);
            assert_eq!(r.status, 401, "{a:?}");
        }
        let r = route(
            &paths,
            "s3cret",
            &req("GET", "/api/status?api_key=s3cret", None, ""),
            &call,
        );
        assert_eq!(r.status, 401, "never from the query string");
        let mut two = req("GET", "/api/status", Some("Bearer s3cret"), "");
        two.headers
            .push(("authorization".into(), "Bearer s3cret".into()));
        assert_eq!(route(&paths, "s3cret", &two, &call).status, 401);
        assert!(
            calls.borrow().is_empty(),
            "nothing reaches the supervisor unauthenticated"
        );
        let r = route(
            &paths,
            "s3cret",
            &req("GET", "/api/status", Some("bearer s3cret"), ""),
            &call,
        );
        assert_eq!(r.status, 200);
        assert_eq!(
            route(
                &paths,
                "s3cret",
                &req("GET", "/nope", Some("Bearer s3cret"), ""),
                &call
            )
            .status,
            404
        );
        let r = route(
            &paths,
            "s3cret",
            &req("GET", "/api/switch", Some("Bearer s3cret"), ""),
            &call,
        );
        assert_eq!(r.status, 405);
        assert!(r.headers.contains(&("Allow", "POST".into())));
    }

    #[test]
    fn switch_maps_targets_onto_control_requests() {
        let d = tempfile::tempdir().unwrap();
        let paths = Paths::new(d.path()).unwrap();
        let calls = RefCell::new(Vec::new());
        let call = |r: &Request, _t: Duration| -> Result<Option<Reply>> {
            calls.borrow_mut().push(r.clone());
            let mut rep = Reply::ok("accepted");
            rep.status = Some(status());
            Ok(Some(rep))
        };
        let post = |body: &str| {
            route(
                &paths,
                "t",
                &req("POST", "/api/switch", Some("Bearer t"), body),
                &call,
            )
        };
        assert_eq!(post(r#"{"target":"primary"}"#).status, 200);
        assert_eq!(
            calls.borrow().last(),
            Some(&Request::Failback { force: false })
        );
        assert_eq!(post(r#"{"target":"1"}"#).status, 200);
        assert_eq!(
            calls.borrow().last(),
            Some(&Request::Failback { force: false })
        );
        // Active is 2 (not the primary): "secondary" is the active backup.
        assert_eq!(post(r#"{"target":"secondary"}"#).status, 200);
        assert_eq!(
            calls.borrow().last(),
            Some(&Request::Failover {
                profile: "2".into()
            })
        );
        assert_eq!(post(r#"{"target":"usb-lte"}"#).status, 200);
        assert_eq!(
            calls.borrow().last(),
            Some(&Request::Failover {
                profile: "usb-lte".into()
            })
        );
        let n = calls.borrow().len();
        for bad in [
            "",
            "{",
            r#"{"target":"../x"}"#,
            r#"{"target":""}"#,
            r#"{"target":5}"#,
            r#"{"to":"2"}"#,
            "[]",
        ] {
            let r = post(bad);
            assert_eq!(r.status, 400, "{bad}");
            let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
            assert!(!v["error"].as_str().unwrap().is_empty());
        }
        assert_eq!(
            calls.borrow().len(),
            n,
            "bad bodies never reach the supervisor"
        );
    }

    #[test]
    fn refusals_of_the_supervisor_become_4xx_or_5xx() {
        let d = tempfile::tempdir().unwrap();
        let paths = Paths::new(d.path()).unwrap();
        let call = |r: &Request, _t: Duration| -> Result<Option<Reply>> {
            Ok(Some(match r {
                Request::Status => {
                    let mut rep = Reply::ok("status");
                    rep.status = Some(status());
                    rep
                }
                _ => Reply::err(&Error::usage(
                    "PROFILE",
                    "profile 9 is not in the failover chain",
                )),
            }))
        };
        let r = route(
            &paths,
            "t",
            &req("POST", "/api/switch", Some("Bearer t"), r#"{"target":"9"}"#),
            &call,
        );
        assert_eq!(r.status, 400);
        assert!(String::from_utf8_lossy(&r.body).contains("not in the failover chain"));
        let none = |_: &Request, _: Duration| -> Result<Option<Reply>> { Ok(None) };
        let r = route(
            &paths,
            "t",
            &req("GET", "/api/status", Some("Bearer t"), ""),
            &none,
        );
        assert_eq!(r.status, 503);
        let r = route(
            &paths,
            "t",
            &req("GET", "/metrics", Some("Bearer t"), ""),
            &none,
        );
        assert_eq!(r.status, 200);
        assert!(String::from_utf8_lossy(&r.body).contains("connectd_up 0"));
    }
}
