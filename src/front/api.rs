//! The optional HTTP API (DESIGN.md 7): `GET /api/status`, `GET /api/health`,
//! `POST /api/switch`, `POST /api/auto`, `GET /metrics`.
//!
//! It runs on its own threads and talks to the supervisor only through the control socket
//! of the same root, exactly as the CLI does, so the supervisor loop stays synchronous and
//! shares no state with it. `/api/status` keeps the shape that Home Assistant users already
//! wire up for a two-link failover daemon (`active_display_name`, `auto_enabled`,
//! `switch_count`, `primary`/`secondary` with `display_name`, `gateway`, `healthy`,
//! `gateway_reachable`, `traffic.*_mbps`), next to our own status fields.
//!
//! The HTTP side is a deliberately small HTTP/1.1 server of our own rather than tiny_http:
//! tiny_http 0.12 sets no socket timeouts, runs one unbounded thread per connection and
//! reads bodies over 1 KiB lazily in the handler, so an idle or slow client pins a thread
//! for ever. Here every connection has one deadline for reading its request
//! ([`REQUEST_DEADLINE`]), heads and bodies are size-limited, at most [`MAX_CONNECTIONS`]
//! are served at once (more get 503 at once), one request per connection
//! (`Connection: close`). Only the `Authorization: Bearer TOKEN` header authenticates,
//! compared in constant time; the token lives in `/var/ipfire/connectd/api-token` (0600,
//! created by `connectd api-key`).

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::ipfire::fsutil;
use crate::ipfire::paths::Paths;
use crate::ipfire::policy::Policy;
use crate::ipfire::profile::{Profile, ProfileName};
use crate::supervisor::control::{self, Reply, Request};

/// Largest request body accepted.
pub const MAX_BODY: usize = 4096;
/// Largest request line plus headers accepted.
pub const MAX_HEAD: usize = 8192;
/// Connections served at the same time; more are answered 503 and closed.
pub const MAX_CONNECTIONS: usize = 16;
/// Time a client has to send its whole request.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(5);
/// Time a client has to take our response.
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long `status` may take on the control socket.
const STATUS_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a command may take on the control socket (the supervisor may be mid-switch).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(15);
/// How often the accept thread looks at its stop flag.
const ACCEPT_POLL_MS: u16 = 200;
/// How long a refused connection stays open to drain its request.
const LINGER: Duration = Duration::from_millis(200);
/// Most refused connections lingering at once.
const MAX_LINGERING: usize = 64;

/// A running API; [`ApiHandle::stop`] (or dropping it) stops accepting and joins the
/// accept thread. Requests in flight finish on their own threads (bounded by the deadlines).
#[derive(Debug)]
pub struct ApiHandle {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ApiHandle {
    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting connections and waits for the accept thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for ApiHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Reads the API token from `paths.api_token()`: an error naming the file when it is
/// missing or empty (the API must then not start).
pub fn load_token(paths: &Paths) -> Result<String> {
    let path = paths.api_token();
    match fsutil::read_word(&path) {
        Some(t) if !t.is_empty() => Ok(t),
        _ => Err(Error::Parse {
            file: path,
            line: None,
            msg: "missing or empty: create it with `connectd api-key`".into(),
        }),
    }
}

/// Starts the API when `API_ENABLED` is on: reads the token and binds `API_LISTEN`.
/// Every reason not to start is logged as an error and gives `None`; the supervisor runs
/// on without the API.
pub fn start_from_policy(paths: &Paths, policy: &Policy) -> Option<ApiHandle> {
    if !policy.api_enabled {
        return None;
    }
    let token = match load_token(paths) {
        Ok(t) => t,
        Err(e) => {
            log::error!("API_ENABLED=on but {e}; the HTTP API is not started");
            return None;
        }
    };
    warn_if_token_readable(paths);
    match spawn(paths.clone(), policy.api_listen, token) {
        Ok(h) => Some(h),
        Err(e) => {
            log::error!("{e}; the HTTP API is not started");
            None
        }
    }
}

fn warn_if_token_readable(paths: &Paths) {
    use std::os::unix::fs::PermissionsExt;
    let path = paths.api_token();
    if let Ok(m) = std::fs::metadata(&path) {
        if m.permissions().mode() & 0o077 != 0 {
            log::warn!(
                "{} is readable by other users (mode {:o}); chmod 600 it",
                path.display(),
                m.permissions().mode() & 0o777
            );
        }
    }
}

/// Binds `listen` and serves the API on a thread of its own, answering from the
/// supervisor behind `paths.control_socket()`.
pub fn spawn(paths: Paths, listen: SocketAddr, token: String) -> Result<ApiHandle> {
    let token = token.trim().to_string();
    if token.is_empty() {
        return Err(Error::usage("API token", "is empty"));
    }
    let listener = TcpListener::bind(listen)
        .map_err(|e| Error::Failed(format!("HTTP API: cannot listen on {listen}: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::Failed(format!("HTTP API: {listen}: {e}")))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| Error::Failed(format!("HTTP API: {addr}: {e}")))?;
    let stop = Arc::new(AtomicBool::new(false));
    let ctx = Arc::new(Ctx { paths, token });
    let thread = {
        let stop = stop.clone();
        std::thread::Builder::new()
            .name("connectd-api".into())
            .spawn(move || accept_loop(&listener, &ctx, &stop))
            .map_err(|e| Error::Failed(format!("HTTP API: cannot start its thread: {e}")))?
    };
    log::info!("HTTP API listening on {addr}");
    Ok(ApiHandle {
        addr,
        stop,
        thread: Some(thread),
    })
}

struct Ctx {
    paths: Paths,
    token: String,
}

/// Decrements the connection count when a connection thread ends (also on panic).
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn accept_loop(listener: &TcpListener, ctx: &Arc<Ctx>, stop: &AtomicBool) {
    let active = Arc::new(AtomicUsize::new(0));
    // Refused connections wait here a moment before they are closed, so that a request
    // still arriving is drained and the close is not a reset that loses the 503.
    let mut lingering: VecDeque<(Instant, TcpStream)> = VecDeque::new();
    while !stop.load(Ordering::SeqCst) {
        let mut fds = [nix::poll::PollFd::new(
            listener.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(ACCEPT_POLL_MS));
        let now = Instant::now();
        while lingering
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) >= LINGER)
        {
            if let Some((_, s)) = lingering.pop_front() {
                drain_nonblocking(&s);
            }
        }
        loop {
            let (stream, peer) = match listener.accept() {
                Ok(c) => c,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    // EMFILE and friends: back off until the next poll round.
                    log::warn!("HTTP API: accept: {e}");
                    break;
                }
            };
            if active.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
                active.fetch_sub(1, Ordering::SeqCst);
                if lingering.len() >= MAX_LINGERING {
                    lingering.pop_front();
                }
                lingering.push_back((now, refuse_busy(stream)));
                continue;
            }
            let slot = Slot(active.clone());
            let ctx = ctx.clone();
            let spawned = std::thread::Builder::new()
                .name("connectd-api-conn".into())
                .spawn(move || {
                    let _slot = slot;
                    serve_connection(stream, peer, &ctx);
                });
            if let Err(e) = spawned {
                log::warn!("HTTP API: cannot start a connection thread: {e}");
            }
        }
    }
}

/// Reads what has arrived, without waiting.
fn drain_nonblocking(mut stream: &TcpStream) {
    let _ = stream.set_nonblocking(true);
    let mut sink = [0u8; 4096];
    for _ in 0..16 {
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
}

/// Too many connections: a 503 written without blocking, the write side closed.
fn refuse_busy(mut stream: TcpStream) -> TcpStream {
    drain_nonblocking(&stream);
    let resp = Response::error(503, "too many connections; try again");
    let _ = stream.write_all(&resp.to_bytes());
    let _ = stream.shutdown(std::net::Shutdown::Write);
    stream
}

fn serve_connection(mut stream: TcpStream, peer: SocketAddr, ctx: &Ctx) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let deadline = Instant::now() + REQUEST_DEADLINE;
    let (resp, drain) = match read_http(&mut stream, deadline) {
        Ok(req) => {
            let call = |r: &Request, t: Duration| control::call(&ctx.paths.control_socket(), r, t);
            let resp = route(&ctx.paths, &ctx.token, &req, &call);
            if req.method == "POST" && resp.status < 300 {
                log::info!(
                    "HTTP API: {} {} from {peer}: {}",
                    req.method,
                    req.path,
                    resp.status
                );
            }
            (resp, false)
        }
        Err(ReadError::Close) => return,
        Err(ReadError::Respond(resp)) => (resp, true),
    };
    let _ = stream.write_all(&resp.to_bytes());
    let _ = stream.flush();
    let _ = stream.shutdown(std::net::Shutdown::Write);
    if drain {
        // Refused before its body was read: take a little of what is in flight, so the
        // close is not a reset that loses our answer on the client's side.
        let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
        let mut sink = [0u8; 4096];
        let mut left = 64 * 1024usize;
        while left > 0 {
            match stream.read(&mut sink) {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// HTTP/1.1, the small subset we need.
// ---------------------------------------------------------------------------------------

/// A parsed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The request target as sent (path and query).
    pub path: String,
    /// Headers with lower-case names, in order.
    pub headers: Vec<(String, String)>,
    /// The body (at most [`MAX_BODY`] bytes).
    pub body: Vec<u8>,
}

impl HttpRequest {
    fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A response.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Content-Type.
    pub content_type: &'static str,
    /// Extra headers.
    pub headers: Vec<(&'static str, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl Response {
    fn json(status: u16, v: &Value) -> Response {
        let mut body = serde_json::to_vec(v).unwrap_or_default();
        body.push(b'\n');
        Response {
            status,
            content_type: "application/json",
            headers: Vec::new(),
            body,
        }
    }

    fn error(status: u16, msg: &str) -> Response {
        Response::json(status, &json!({"success": false, "error": msg}))
    }

    fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Response {
        self.headers.push((name, value.into()));
        self
    }

    /// The response on the wire.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut head = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\nCache-Control: no-store\r\n",
            self.status,
            reason(self.status),
            self.content_type,
            self.body.len()
        );
        for (n, v) in &self.headers {
            let _ = write!(head, "{n}: {v}\r\n");
        }
        head.push_str("\r\n");
        let mut out = head.into_bytes();
        out.extend_from_slice(&self.body);
        out
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// Why a request could not be read.
#[derive(Debug)]
enum ReadError {
    /// Nothing (or nothing usable) arrived: close without an answer.
    Close,
    /// Answer this, then close.
    Respond(Response),
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Reads more into `buf` before `deadline`; `Ok(false)` at end of stream or deadline.
fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>, deadline: Instant) -> bool {
    let mut chunk = [0u8; 2048];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        let _ = stream.set_read_timeout(Some(left));
        match stream.read(&mut chunk) {
            Ok(0) => return false,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                return true;
            }
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::Interrupted | ErrorKind::WouldBlock | ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            Err(_) => return false,
        }
    }
}

fn read_http(
    stream: &mut TcpStream,
    deadline: Instant,
) -> std::result::Result<HttpRequest, ReadError> {
    let mut buf = Vec::with_capacity(1024);
    let head_end = loop {
        if let Some(p) = find(&buf, b"\r\n\r\n") {
            break p;
        }
        if buf.len() > MAX_HEAD {
            return Err(ReadError::Respond(Response::error(
                431,
                "request head larger than 8 KiB",
            )));
        }
        if !fill(stream, &mut buf, deadline) {
            return Err(if buf.is_empty() {
                ReadError::Close
            } else if Instant::now() >= deadline {
                ReadError::Respond(Response::error(408, "request not complete in time"))
            } else {
                ReadError::Close
            });
        }
    };
    if head_end > MAX_HEAD {
        return Err(ReadError::Respond(Response::error(
            431,
            "request head larger than 8 KiB",
        )));
    }
    let mut req = parse_head(&buf[..head_end]).map_err(ReadError::Respond)?;
    if req.header_values("transfer-encoding").next().is_some() {
        return Err(ReadError::Respond(Response::error(
            411,
            "chunked bodies are not accepted; send Content-Length",
        )));
    }
    let lengths: Vec<&str> = req.header_values("content-length").collect();
    let len = match lengths.as_slice() {
        [] => 0,
        [one] => one
            .parse::<usize>()
            .map_err(|_| ReadError::Respond(Response::error(400, "bad Content-Length")))?,
        _ => {
            return Err(ReadError::Respond(Response::error(
                400,
                "more than one Content-Length",
            )));
        }
    };
    if len > MAX_BODY {
        return Err(ReadError::Respond(Response::error(
            413,
            &format!("body of {len} bytes refused: at most {MAX_BODY}"),
        )));
    }
    let mut body = buf.split_off(head_end + 4);
    if body.len() < len
        && req
            .header_values("expect")
            .any(|v| v.eq_ignore_ascii_case("100-continue"))
    {
        let _ = stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
    }
    while body.len() < len {
        if !fill(stream, &mut body, deadline) {
            return Err(if Instant::now() >= deadline {
                ReadError::Respond(Response::error(408, "request body not complete in time"))
            } else {
                ReadError::Close
            });
        }
    }
    body.truncate(len);
    req.body = body;
    Ok(req)
}

fn parse_head(head: &[u8]) -> std::result::Result<HttpRequest, Response> {
    let text =
        std::str::from_utf8(head).map_err(|_| Response::error(400, "request head is not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let line = lines.next().unwrap_or_default();
    let mut parts = line.split(' ');
    let (Some(method), Some(path), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Response::error(400, "bad request line"));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(Response::error(505, "only HTTP/1.0 and HTTP/1.1"));
    }
    if method.is_empty()
        || !method.bytes().all(|b| b.is_ascii_uppercase())
        || !path.starts_with('/')
    {
        return Err(Response::error(400, "bad request line"));
    }
    let mut headers = Vec::new();
    for l in lines {
        let Some((name, value)) = l.split_once(':') else {
            return Err(Response::error(400, "bad header line"));
        };
        if name.is_empty()
            || name
                .bytes()
                .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
        {
            return Err(Response::error(400, "bad header name"));
        }
        headers.push((name.to_ascii_lowercase(), value.trim().to_string()));
    }
    Ok(HttpRequest {
        method: method.to_string(),
        path: path.to_string(),
        headers,
        body: Vec::new(),
    })
}

// ---------------------------------------------------------------------------------------
// Authentication.
// ---------------------------------------------------------------------------------------

/// Compares `given` with `expected` in time that depends only on `expected`'s length.
pub fn constant_time_eq(given: &[u8], expected: &[u8]) -> bool {
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

// ---------------------------------------------------------------------------------------
// Routing.
// ---------------------------------------------------------------------------------------

/// How the API reaches the supervisor: `control::call` on the control socket in
/// production, a closure in tests.
pub type Call<'a> = dyn Fn(&Request, Duration) -> Result<Option<Reply>> + 'a;

type Handler = fn(&Paths, &HttpRequest, &Call<'_>) -> Response;

/// Answers one request (authentication, routing, the endpoint).
pub fn route(paths: &Paths, token: &str, req: &HttpRequest, call: &Call<'_>) -> Response {
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

fn fetch_status(call: &Call<'_>) -> std::result::Result<Value, Response> {
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
            let links = chain_links(paths, s.get("primary_profile").and_then(Value::as_str));
            Response::json(200, &ha_status(&s, &links))
        }
        Err(r) => r,
    }
}

fn get_health(_paths: &Paths, _req: &HttpRequest, call: &Call<'_>) -> Response {
    match fetch_status(call) {
        Ok(s) => {
            let mut h = s.get("health").cloned().unwrap_or_else(|| json!({}));
            if let Some(o) = h.as_object_mut() {
                o.insert("status".into(), "ok".into());
                o.insert(
                    "state".into(),
                    s.get("state").cloned().unwrap_or(Value::Null),
                );
                o.insert(
                    "red_active".into(),
                    s.pointer("/red/active")
                        .cloned()
                        .unwrap_or(Value::Bool(false)),
                );
            }
            Response::json(200, &h)
        }
        Err(r) => r,
    }
}

fn get_metrics(_paths: &Paths, _req: &HttpRequest, call: &Call<'_>) -> Response {
    let text = match fetch_status(call) {
        Ok(s) => metrics(Some(&s)),
        Err(_) => metrics(None),
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
    let primary = status.get("primary_profile").and_then(Value::as_str);
    let request = if target == "primary" || Some(target) == primary {
        Request::Failback { force: false }
    } else if target == "secondary" && !paths.profile("secondary").exists() {
        let links = chain_links(paths, primary);
        match secondary_of(&status, &links) {
            Some(s) => Request::Failover { profile: s },
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

// ---------------------------------------------------------------------------------------
// The Home Assistant shape.
// ---------------------------------------------------------------------------------------

/// A profile of the failover chain as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The profile name (`1`, `lte`).
    pub name: String,
    /// Its PROFILENAME, else the name.
    pub display_name: String,
}

/// The chain `[primary, backups...]` read from the files under `paths` (policy and
/// profiles); just the primary when the chain cannot be resolved.
pub fn chain_links(paths: &Paths, primary: Option<&str>) -> Vec<Link> {
    let Some(primary) = primary.and_then(|p| ProfileName::new(p).ok()) else {
        return Vec::new();
    };
    let names = Policy::load(paths, Some(primary.as_str()))
        .ok()
        .and_then(|(policy, _)| {
            crate::ipfire::profile::resolve_chain(paths, &primary, &policy).ok()
        })
        .unwrap_or_else(|| {
            let mut v = vec![primary.clone()];
            if let Ok(p) = Profile::load(paths, &primary) {
                if let Some(b) = p.backup.filter(|b| *b != primary) {
                    v.push(b);
                }
            }
            v
        });
    names
        .into_iter()
        .map(|n| Link {
            display_name: Profile::load(paths, &n)
                .map(|p| p.display_name)
                .unwrap_or_else(|_| n.to_string()),
            name: n.to_string(),
        })
        .collect()
}

/// The "secondary" link: the active profile when it is not the primary, else the first
/// backup of the chain.
fn secondary_of(status: &Value, links: &[Link]) -> Option<String> {
    let active = status.get("active_profile").and_then(Value::as_str);
    let primary = status.get("primary_profile").and_then(Value::as_str);
    match active {
        Some(a) if Some(a) != primary => Some(a.to_string()),
        _ => links.get(1).map(|l| l.name.clone()),
    }
}

fn zero_traffic() -> Value {
    json!({"rx_mbps": 0.0, "tx_mbps": 0.0, "rx_mbps_avg": 0.0, "tx_mbps_avg": 0.0})
}

/// `/api/status`: our status object plus the fields of the two-link failover daemon's
/// API that Home Assistant configurations read: `active_link`, `active_display_name`,
/// `active_interface`, `active_gateway`, `auto_enabled`, `primary`, `secondary` (each with
/// `name`, `profile`, `display_name`, `active`, `interface`, `gateway`, `gateway_ip`,
/// `healthy`, `gateway_reachable`, `traffic`), `links` (the whole chain the same way) and
/// `recent_events`. Only the active link is probed: a resting link has `healthy` and
/// `gateway_reachable` null and zero traffic.
pub fn ha_status(status: &Value, links: &[Link]) -> Value {
    let mut out = status.clone();
    let s = |k: &str| status.get(k).and_then(Value::as_str).map(str::to_string);
    let active = s("active_profile");
    let primary = s("primary_profile").or_else(|| links.first().map(|l| l.name.clone()));
    let secondary = secondary_of(status, links);
    let display = |name: &str| -> String {
        if Some(name) == active.as_deref() {
            if let Some(d) = s("active_display_name") {
                return d;
            }
        }
        if Some(name) == primary.as_deref() {
            if let Some(d) = s("primary_display_name") {
                return d;
            }
        }
        links
            .iter()
            .find(|l| l.name == name)
            .map_or_else(|| name.to_string(), |l| l.display_name.clone())
    };
    let role = |name: &str| -> String {
        if Some(name) == primary.as_deref() {
            "primary".into()
        } else if Some(name) == secondary.as_deref() {
            "secondary".into()
        } else {
            name.to_string()
        }
    };
    let red = status.get("red").cloned().unwrap_or(Value::Null);
    let iface = red.get("iface").cloned().unwrap_or(Value::Null);
    let gateway = red.get("gateway").cloned().unwrap_or(Value::Null);
    let red_up = red.get("active").and_then(Value::as_bool).unwrap_or(false);
    let health = status.get("health").cloned().unwrap_or(Value::Null);
    let healthy = red_up
        && health
            .get("healthy")
            .and_then(Value::as_bool)
            .unwrap_or(false);
    let gw_reachable = match health.get("gateway") {
        Some(Value::Object(g)) => {
            Value::Bool(red_up && g.get("rtt_ms").is_some_and(|r| !r.is_null()))
        }
        _ => Value::Null,
    };
    let traffic = status
        .get("traffic")
        .filter(|t| t.is_object())
        .cloned()
        .unwrap_or_else(zero_traffic);
    let link = |name: &str| -> Value {
        let is_active = Some(name) == active.as_deref();
        json!({
            "name": role(name),
            "profile": name,
            "display_name": display(name),
            "active": is_active,
            "interface": if is_active { iface.clone() } else { Value::Null },
            "gateway": if is_active { gateway.clone() } else { Value::Null },
            "gateway_ip": if is_active { gateway.clone() } else { Value::Null },
            "healthy": if is_active { Value::Bool(healthy) } else { Value::Null },
            "gateway_reachable": if is_active { gw_reachable.clone() } else { Value::Null },
            "traffic": if is_active { traffic.clone() } else { zero_traffic() },
        })
    };
    let mut names: Vec<String> = links.iter().map(|l| l.name.clone()).collect();
    for n in [&primary, &active].into_iter().flatten() {
        if !names.contains(n) {
            names.push(n.clone());
        }
    }
    let events: Vec<Value> = status
        .get("transitions")
        .and_then(Value::as_array)
        .map(|ts| {
            ts.iter()
                .rev()
                .take(20)
                .rev()
                .map(|t| {
                    let at = t
                        .get("at")
                        .and_then(Value::as_i64)
                        .and_then(|a| chrono::TimeZone::timestamp_opt(&chrono::Utc, a, 0).single())
                        .map(|d| d.to_rfc3339());
                    let g = |k: &str| t.get(k).and_then(Value::as_str).unwrap_or("?").to_string();
                    json!({
                        "time": at,
                        "type": t.get("kind").cloned().unwrap_or(Value::Null),
                        "message": format!("{} -> {}: {}", g("from"), g("to"), g("reason")),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    if let Some(o) = out.as_object_mut() {
        o.insert(
            "active_link".into(),
            active
                .as_deref()
                .map_or(Value::Null, |a| Value::String(role(a))),
        );
        o.insert(
            "active_display_name".into(),
            active
                .as_deref()
                .map_or(Value::Null, |a| Value::String(display(a))),
        );
        o.insert("active_interface".into(), iface.clone());
        o.insert("active_gateway".into(), gateway.clone());
        o.insert(
            "auto_enabled".into(),
            status.get("auto").cloned().unwrap_or(Value::Bool(true)),
        );
        if !o.contains_key("switch_count") {
            o.insert("switch_count".into(), 0.into());
        }
        o.insert("traffic".into(), traffic.clone());
        o.insert(
            "primary".into(),
            primary.as_deref().map_or(Value::Null, link),
        );
        o.insert(
            "secondary".into(),
            secondary.as_deref().map_or(Value::Null, link),
        );
        o.insert("links".into(), names.iter().map(|n| link(n)).collect());
        o.insert("recent_events".into(), events.into());
    }
    out
}

// ---------------------------------------------------------------------------------------
// Prometheus.
// ---------------------------------------------------------------------------------------

fn label(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

fn num(v: Option<f64>) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{x}"),
        _ => "NaN".into(),
    }
}

/// `/metrics` in the Prometheus text format (0.0.4) from the status object; with `None`
/// (no supervisor answering) only `connectd_up 0`.
pub fn metrics(status: Option<&Value>) -> String {
    let mut out = String::new();
    let family =
        |out: &mut String, name: &str, kind: &str, help: &str, samples: &[(String, String)]| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
    let b = |v: bool| if v { "1".to_string() } else { "0".to_string() };
    family(
        &mut out,
        "connectd_up",
        "gauge",
        "1 when the supervisor answers.",
        &[(String::new(), b(status.is_some()))],
    );
    let Some(s) = status else {
        return out;
    };
    let flag = |p: &str| s.pointer(p).and_then(Value::as_bool).unwrap_or(false);
    let health = s.get("health");
    family(
        &mut out,
        "connectd_healthy",
        "gauge",
        "1 when the active uplink passes its health checks.",
        &[(
            String::new(),
            b(flag("/red/active") && flag("/health/healthy")),
        )],
    );
    family(
        &mut out,
        "connectd_red_active",
        "gauge",
        "1 while RED is up (red/active exists).",
        &[(String::new(), b(flag("/red/active")))],
    );
    family(
        &mut out,
        "connectd_auto_enabled",
        "gauge",
        "1 when automatic switching is on.",
        &[(
            String::new(),
            b(s.get("auto").and_then(Value::as_bool).unwrap_or(true)),
        )],
    );
    let active = s
        .get("active_profile")
        .and_then(Value::as_str)
        .unwrap_or("");
    let primary = s
        .get("primary_profile")
        .and_then(Value::as_str)
        .unwrap_or("");
    family(
        &mut out,
        "connectd_on_primary",
        "gauge",
        "1 when the active profile is the primary.",
        &[(String::new(), b(!active.is_empty() && active == primary))],
    );
    family(
        &mut out,
        "connectd_active_profile_info",
        "gauge",
        "The active profile, as labels.",
        &[(
            format!(
                "{{profile=\"{}\",display_name=\"{}\"}}",
                label(active),
                label(
                    s.get("active_display_name")
                        .and_then(Value::as_str)
                        .unwrap_or(active)
                )
            ),
            "1".into(),
        )],
    );
    family(
        &mut out,
        "connectd_switches_total",
        "counter",
        "Completed profile switches.",
        &[(
            String::new(),
            s.get("switch_count")
                .and_then(Value::as_u64)
                .unwrap_or(0)
                .to_string(),
        )],
    );
    let mut targets: Vec<(&str, &Value)> = Vec::new();
    if let Some(ts) = health
        .and_then(|h| h.get("targets"))
        .and_then(Value::as_array)
    {
        targets.extend(ts.iter().map(|t| ("internet", t)));
    }
    if let Some(g) = health
        .and_then(|h| h.get("gateway"))
        .filter(|g| g.is_object())
    {
        targets.push(("gateway", g));
    }
    let per_target = |f: &dyn Fn(&Value) -> Option<f64>| -> Vec<(String, String)> {
        targets
            .iter()
            .map(|(role, t)| {
                let host = t.get("host").and_then(Value::as_str).unwrap_or("?");
                (
                    format!("{{host=\"{}\",role=\"{role}\"}}", label(host)),
                    num(f(t)),
                )
            })
            .collect()
    };
    family(
        &mut out,
        "connectd_target_rtt_seconds",
        "gauge",
        "Round-trip time of the last probe (NaN: no reply).",
        &per_target(&|t| {
            t.get("rtt_ms")
                .and_then(Value::as_f64)
                .map(|ms| ms / 1000.0)
        }),
    );
    family(
        &mut out,
        "connectd_target_loss_ratio",
        "gauge",
        "Probe loss over the window, 0 to 1.",
        &per_target(&|t| t.get("loss_pct").and_then(Value::as_f64).map(|p| p / 100.0)),
    );
    let rate = |k: &str| {
        num(Some(
            s.pointer(&format!("/traffic/{k}"))
                .and_then(Value::as_f64)
                .unwrap_or(0.0),
        ))
    };
    for (name, key, help) in [
        (
            "connectd_red_rx_mbps",
            "rx_mbps",
            "RED receive rate over the last second, Mbit/s.",
        ),
        (
            "connectd_red_tx_mbps",
            "tx_mbps",
            "RED send rate over the last second, Mbit/s.",
        ),
        (
            "connectd_red_rx_mbps_avg",
            "rx_mbps_avg",
            "RED receive rate over about a minute, Mbit/s.",
        ),
        (
            "connectd_red_tx_mbps_avg",
            "tx_mbps_avg",
            "RED send rate over about a minute, Mbit/s.",
        ),
    ] {
        family(&mut out, name, "gauge", help, &[(String::new(), rate(key))]);
    }
    if let Some(n) = s.get("next_failback_in_secs").and_then(Value::as_u64) {
        family(
            &mut out,
            "connectd_next_failback_seconds",
            "gauge",
            "Seconds until the next automatic failback attempt.",
            &[(String::new(), n.to_string())],
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    fn req(method: &str, path: &str, auth: Option<&str>, body: &str) -> HttpRequest {
        let mut headers = Vec::new();
        if let Some(a) = auth {
            headers.push(("authorization".to_string(), a.to_string()));
        }
        HttpRequest {
            method: method.into(),
            path: path.into(),
            headers,
            body: body.as_bytes().to_vec(),
        }
    }

    fn status() -> Value {
        json!({
            "running": true, "state": "online", "active_profile": "2", "primary_profile": "1",
            "active_display_name": "LTE stick", "primary_display_name": "Telekom DSL",
            "auto": true, "switch_count": 3,
            "red": {"iface": "wwan0", "active": true, "gateway": "203.0.113.1", "local_ip": "203.0.113.7"},
            "health": {"healthy": true, "verdict": "healthy",
                "targets": [{"host": "192.0.2.1", "rtt_ms": 12.5, "loss_pct": 0.0},
                            {"host": "dns \"x\"", "rtt_ms": null, "loss_pct": 50.0}],
                "gateway": {"host": "203.0.113.1", "rtt_ms": 1.0, "loss_pct": 0.0}},
            "traffic": {"iface": "wwan0", "rx_mbps": 1.5, "tx_mbps": 0.5, "rx_mbps_avg": 1.0, "tx_mbps_avg": 0.25},
            "transitions": [{"at": 1700000000, "from": "1", "to": "2", "kind": "failover", "reason": "probes failed"}],
        })
    }

    fn links() -> Vec<Link> {
        vec![
            Link {
                name: "1".into(),
                display_name: "Telekom DSL".into(),
            },
            Link {
                name: "2".into(),
                display_name: "LTE stick".into(),
            },
        ]
    }

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
            let v: Value = serde_json::from_slice(&r.body).unwrap();
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

    #[test]
    fn ha_shape_of_the_status() {
        let v = ha_status(&status(), &links());
        assert_eq!(v["active_display_name"], "LTE stick");
        assert_eq!(v["active_link"], "secondary");
        assert_eq!(v["auto_enabled"], true);
        assert_eq!(v["switch_count"], 3);
        assert_eq!(v["primary"]["display_name"], "Telekom DSL");
        assert_eq!(v["primary"]["healthy"], Value::Null);
        assert_eq!(v["primary"]["traffic"]["rx_mbps"], 0.0);
        assert_eq!(v["secondary"]["display_name"], "LTE stick");
        assert_eq!(v["secondary"]["gateway"], "203.0.113.1");
        assert_eq!(v["secondary"]["healthy"], true);
        assert_eq!(v["secondary"]["gateway_reachable"], true);
        assert_eq!(v["secondary"]["traffic"]["rx_mbps_avg"], 1.0);
        assert_eq!(v["secondary"]["traffic"]["tx_mbps"], 0.5);
        assert_eq!(v["links"].as_array().unwrap().len(), 2);
        assert_eq!(v["recent_events"][0]["type"], "failover");
        // Our own fields are still there.
        assert_eq!(v["active_profile"], "2");
        assert_eq!(v["health"]["verdict"], "healthy");

        // On the primary, the secondary is the first backup, resting.
        let mut s = status();
        s["active_profile"] = "1".into();
        s["active_display_name"] = "Telekom DSL".into();
        let v = ha_status(&s, &links());
        assert_eq!(v["active_link"], "primary");
        assert_eq!(v["primary"]["healthy"], true);
        assert_eq!(v["secondary"]["display_name"], "LTE stick");
        assert_eq!(v["secondary"]["healthy"], Value::Null);
        // Without a backup, `secondary` is null.
        let v = ha_status(&s, &links()[..1]);
        assert_eq!(v["secondary"], Value::Null);
    }

    #[test]
    fn metrics_text() {
        let m = metrics(Some(&status()));
        assert!(m.contains("connectd_up 1\n"));
        assert!(m.contains("connectd_healthy 1\n"));
        assert!(m.contains("connectd_switches_total 3\n"));
        assert!(m.contains("# TYPE connectd_switches_total counter\n"));
        assert!(m.contains(
            "connectd_target_rtt_seconds{host=\"192.0.2.1\",role=\"internet\"} 0.0125\n"
        ));
        assert!(m.contains(
            "connectd_target_rtt_seconds{host=\"dns \\\"x\\\"\",role=\"internet\"} NaN\n"
        ));
        assert!(
            m.contains("connectd_target_loss_ratio{host=\"203.0.113.1\",role=\"gateway\"} 0\n")
        );
        assert!(m.contains("connectd_red_rx_mbps 1.5\n"));
        assert!(m.contains("connectd_on_primary 0\n"));
    }

    #[test]
    fn head_parsing() {
        let r = parse_head(b"POST /api/auto HTTP/1.1\r\nHost: x\r\nContent-Length: 3").unwrap();
        assert_eq!(r.method, "POST");
        assert_eq!(r.headers[1], ("content-length".into(), "3".into()));
        assert_eq!(parse_head(b"GET /x HTTP/2.0").unwrap_err().status, 505);
        assert_eq!(parse_head(b"GET x HTTP/1.1").unwrap_err().status, 400);
        assert_eq!(
            parse_head(b"GET /x HTTP/1.1 extra").unwrap_err().status,
            400
        );
        assert_eq!(
            parse_head(b"GET /x HTTP/1.1\r\nno colon")
                .unwrap_err()
                .status,
            400
        );
        assert_eq!(
            parse_head(b"GET /x HTTP/1.1\r\nBad Name: 1")
                .unwrap_err()
                .status,
            400
        );
    }
}
