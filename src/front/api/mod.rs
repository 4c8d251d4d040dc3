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
//!
//! The pieces: this module runs the server (the accept thread, one bounded thread per
//! connection); `http` is the wire (request parsing, responses); `routes` authenticates
//! and answers each endpoint; `ha` renders the supervisor's
//! [`Status`](crate::supervisor::status::Status) in the Home Assistant shape and `metrics`
//! as Prometheus text.
//!
//! Why our own parser and not `httparse`: the request head we accept is one request line
//! and `Name: value` headers, parsed in about 40 lines (`http::parse_head`) that are
//! property-tested against arbitrary bytes; `httparse` would replace only those lines, not
//! the deadline, size and body handling around them, and would be one more crate for
//! IPFire to package.

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::ipfire::fsutil;
use crate::ipfire::paths::Paths;
use crate::ipfire::policy::Policy;
use crate::supervisor::control::{self, Request};
use crate::sys::clock::{Clock, SystemClock};

pub(crate) mod ha;
pub(crate) mod http;
pub(crate) mod metrics;
pub(crate) mod routes;

pub use http::{MAX_BODY, MAX_HEAD};

/// Connections served at the same time; more are answered 503 and closed.
pub const MAX_CONNECTIONS: usize = 16;
/// Time a client has to send its whole request.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(5);
/// Time a client has to take our response.
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long `status` may take on the control socket.
pub(crate) const STATUS_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a command may take on the control socket (the supervisor may be mid-switch).
pub(crate) const COMMAND_TIMEOUT: Duration = Duration::from_secs(15);
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
    /// Wakes the accept thread, which sleeps in `poll()` without a timeout while idle.
    wake: UnixStream,
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
        let _ = (&self.wake).write_all(&[1]);
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
pub(crate) fn load_token(paths: &Paths) -> Result<String> {
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
    let (wake, woken) = UnixStream::pair()
        .map_err(|e| Error::Failed(format!("HTTP API: cannot make its wake-up pair: {e}")))?;
    let ctx = Arc::new(Ctx { paths, token });
    let thread = {
        let stop = stop.clone();
        std::thread::Builder::new()
            .name("connectd-api".into())
            .spawn(move || accept_loop(&listener, &woken, &ctx, &stop))
            .map_err(|e| Error::Failed(format!("HTTP API: cannot start its thread: {e}")))?
    };
    log::info!("HTTP API listening on {addr}");
    Ok(ApiHandle {
        addr,
        stop,
        wake,
        thread: Some(thread),
    })
}

/// What every connection thread needs.
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

/// Accepts connections until `stop` is set (and `woken` readable). Idle, it sleeps in
/// `poll()` without a timeout: an idle daemon's API costs no wake-ups.
fn accept_loop(listener: &TcpListener, woken: &UnixStream, ctx: &Arc<Ctx>, stop: &AtomicBool) {
    let active = Arc::new(AtomicUsize::new(0));
    // Refused connections wait here a moment before they are closed, so that a request
    // still arriving is drained and the close is not a reset that loses the 503.
    let mut lingering: VecDeque<(Instant, TcpStream)> = VecDeque::new();
    while !stop.load(Ordering::SeqCst) {
        let mut fds = [
            nix::poll::PollFd::new(listener.as_fd(), nix::poll::PollFlags::POLLIN),
            nix::poll::PollFd::new(woken.as_fd(), nix::poll::PollFlags::POLLIN),
        ];
        // Until the first lingering connection is due to close, or for ever.
        let timeout = lingering
            .front()
            .map_or(nix::poll::PollTimeout::NONE, |(t, _)| {
                let left = LINGER.saturating_sub(SystemClock.now().duration_since(*t));
                nix::poll::PollTimeout::from(
                    u16::try_from(left.as_millis() + 1).unwrap_or(u16::MAX),
                )
            });
        let _ = nix::poll::poll(&mut fds, timeout);
        let now = SystemClock.now();
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
    let resp = http::Response::error(503, "too many connections; try again");
    let _ = stream.write_all(&resp.to_bytes());
    let _ = stream.shutdown(std::net::Shutdown::Write);
    stream
}

fn serve_connection(mut stream: TcpStream, peer: SocketAddr, ctx: &Ctx) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let deadline = SystemClock.now() + REQUEST_DEADLINE;
    let (resp, drain) = match http::read_http(&mut stream, deadline) {
        Ok(req) => {
            let call = |r: &Request, t: Duration| control::call(&ctx.paths.control_socket(), r, t);
            let resp = routes::route(&ctx.paths, &ctx.token, &req, &call);
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
        Err(http::ReadError::Close) => return,
        Err(http::ReadError::Respond(resp)) => (resp, true),
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

/// What the unit tests of the API's parts share.
#[cfg(test)]
mod fixtures;
