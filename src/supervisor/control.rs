//! The control socket `/var/run/connectd.sock` (mode 0600): one JSON request per
//! connection, one JSON reply.
//!
//! The CLI talks to a running supervisor through it; without one, the CLI acts directly
//! under the supervisor's lock. Both sides are synchronous. The server never lets a client
//! stall the loop: accepted connections get short read/write timeouts and a size limit.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};
use crate::supervisor::status::Status;

/// Largest request or reply accepted.
const MAX_MESSAGE: u64 = 256 * 1024;
/// How long a client may take to send its request.
// Long enough for a client on a loaded box to get from connect() to write() (at 500 ms a
// busy test machine saw the request read time out and the client's late request reset the
// connection, losing the reply); short enough that a stuck root client cannot stall the
// loop for long. The socket is 0600: only root connects.
const SERVER_IO_TIMEOUT: Duration = Duration::from_secs(2);

/// A request to the supervisor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Request {
    /// The status object.
    Status,
    /// Reconnect RED (pppd's ip-down).
    Reconnect,
    /// Switch to a profile and pin it.
    Failover {
        /// The profile.
        profile: String,
    },
    /// Back to the primary.
    Failback {
        /// Skip the pre-test.
        #[serde(default)]
        force: bool,
    },
    /// Automatic switching on or off.
    Auto {
        /// on/off.
        enabled: bool,
    },
    /// Stop supervising (like SIGTERM).
    Stop,
}

/// The supervisor's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    /// Whether the request was accepted.
    pub ok: bool,
    /// A message for the user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Exit code the CLI should use when `ok` is false (2: bad request, 1: failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<u8>,
    /// The status, for `status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
}

impl Reply {
    /// Accepted, with a message.
    pub fn ok(message: impl Into<String>) -> Self {
        Reply {
            ok: true,
            message: Some(message.into()),
            code: None,
            status: None,
        }
    }
    /// Refused or failed, with the error's exit code.
    pub fn err(e: &Error) -> Self {
        Reply {
            ok: false,
            message: Some(e.to_string()),
            code: Some(e.exit_code()),
            status: None,
        }
    }
}

/// Binds the control socket, replacing a stale one, mode 0600, non-blocking.
pub fn bind(path: &Path) -> Result<UnixListener> {
    if let Some(dir) = path.parent() {
        crate::ipfire::fsutil::ensure_dir(dir)?;
    }
    // We hold the supervisor lock, so any socket file here is a leftover.
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path).at(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).at(path)?;
    listener.set_nonblocking(true).at(path)?;
    Ok(listener)
}

/// Reads one request from an accepted connection (bounded in time and size).
pub fn read_request(stream: &mut UnixStream) -> std::result::Result<Request, String> {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(SERVER_IO_TIMEOUT));
    let _ = stream.set_write_timeout(Some(SERVER_IO_TIMEOUT));
    let mut buf = Vec::new();
    match stream.take(MAX_MESSAGE).read_to_end(&mut buf) {
        Ok(_) => {}
        // A client that sends its request without shutting down its write side: take what
        // arrived before the timeout.
        Err(e) if buf.is_empty() => return Err(format!("cannot read request: {e}")),
        Err(_) => {}
    }
    serde_json::from_slice(&buf).map_err(|e| format!("bad request: {e}"))
}

/// Writes the reply to an accepted connection.
pub fn write_reply(stream: &mut UnixStream, reply: &Reply) {
    if let Ok(mut data) = serde_json::to_vec(reply) {
        data.push(b'\n');
        let _ = stream.write_all(&data);
    }
}

/// Sends `req` to the supervisor at `path` and waits up to `timeout` for the reply.
/// `Ok(None)` when no supervisor listens there.
pub fn call(path: &Path, req: &Request, timeout: Duration) -> Result<Option<Reply>> {
    // Serialized before connecting: the supervisor times a connection from its accept().
    let data = serde_json::to_vec(req).map_err(|e| Error::Failed(e.to_string()))?;
    let mut stream = match UnixStream::connect(path) {
        Ok(s) => s,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(Error::io(path, e)),
    };
    stream.set_read_timeout(Some(timeout)).at(path)?;
    stream.set_write_timeout(Some(timeout)).at(path)?;
    stream.write_all(&data).at(path)?;
    stream.shutdown(std::net::Shutdown::Write).at(path)?;
    let mut buf = Vec::new();
    stream.take(MAX_MESSAGE).read_to_end(&mut buf).at(path)?;
    let reply = serde_json::from_slice(&buf).map_err(|e| Error::Parse {
        file: path.into(),
        line: None,
        msg: format!("unreadable reply from the supervisor: {e}"),
    })?;
    Ok(Some(reply))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_round_trip_over_a_socket() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("c.sock");
        let listener = bind(&path).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let server = std::thread::spawn(move || {
            listener.set_nonblocking(false).unwrap();
            let (mut s, _) = listener.accept().unwrap();
            let req = read_request(&mut s).unwrap();
            assert_eq!(
                req,
                Request::Failover {
                    profile: "2".into()
                }
            );
            write_reply(&mut s, &Reply::ok("switching to 2"));
        });
        let reply = call(
            &path,
            &Request::Failover {
                profile: "2".into(),
            },
            Duration::from_secs(5),
        )
        .unwrap()
        .unwrap();
        assert!(reply.ok);
        assert_eq!(reply.message.as_deref(), Some("switching to 2"));
        server.join().unwrap();
    }

    #[test]
    fn no_supervisor_means_none() {
        let d = tempfile::tempdir().unwrap();
        assert!(
            call(
                &d.path().join("none.sock"),
                &Request::Status,
                Duration::from_secs(1)
            )
            .unwrap()
            .is_none()
        );
    }

    #[test]
    fn requests_have_the_documented_shape() {
        let r: Request = serde_json::from_str(r#"{"cmd":"failback","force":true}"#).unwrap();
        assert_eq!(r, Request::Failback { force: true });
        let r: Request = serde_json::from_str(r#"{"cmd":"auto","enabled":false}"#).unwrap();
        assert_eq!(r, Request::Auto { enabled: false });
        assert!(serde_json::from_str::<Request>(r#"{"cmd":"rm -rf"}"#).is_err());
    }
}
