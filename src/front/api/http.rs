//! The small subset of HTTP/1.1 the API speaks: one request per connection, a request
//! head of at most [`MAX_HEAD`] bytes, `Content-Length` bodies of at most [`MAX_BODY`]
//! bytes (no chunked encoding), every read bounded by one deadline; `Connection: close`
//! responses.

use std::fmt::Write as _;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Instant;

use serde::Serialize;
use serde_json::json;

use crate::sys::clock::{Clock, SystemClock};

/// Largest request body accepted.
pub const MAX_BODY: usize = 4096;
/// Largest request line plus headers accepted.
pub const MAX_HEAD: usize = 8192;

/// A parsed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HttpRequest {
    /// `GET`, `POST`, ...
    pub(crate) method: String,
    /// The request target as sent (path and query).
    pub(crate) path: String,
    /// Headers with lower-case names, in order.
    pub(crate) headers: Vec<(String, String)>,
    /// The body (at most [`MAX_BODY`] bytes).
    pub(crate) body: Vec<u8>,
}

impl HttpRequest {
    pub(crate) fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A response.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Response {
    /// Status code.
    pub(crate) status: u16,
    /// Content-Type.
    pub(crate) content_type: &'static str,
    /// Extra headers.
    pub(crate) headers: Vec<(&'static str, String)>,
    /// Body.
    pub(crate) body: Vec<u8>,
}

impl Response {
    pub(crate) fn json(status: u16, v: &impl Serialize) -> Response {
        let mut body = serde_json::to_vec(v).unwrap_or_default();
        body.push(b'\n');
        Response {
            status,
            content_type: "application/json",
            headers: Vec::new(),
            body,
        }
    }

    pub(crate) fn error(status: u16, msg: &str) -> Response {
        Response::json(status, &json!({"success": false, "error": msg}))
    }

    pub(crate) fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Response {
        self.headers.push((name, value.into()));
        self
    }

    /// The response on the wire.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
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
pub(crate) enum ReadError {
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
        let left = deadline.saturating_duration_since(SystemClock.now());
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

pub(crate) fn read_http(
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
            } else if SystemClock.now() >= deadline {
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
            return Err(if SystemClock.now() >= deadline {
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

pub(crate) fn parse_head(head: &[u8]) -> std::result::Result<HttpRequest, Response> {
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

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

    fn request_head() -> impl Strategy<Value = (String, String, Vec<(String, String)>)> {
        let token = "[A-Z]{1,7}";
        let path = "/[!-~]{0,40}";
        let name = "[!-9;-~]{1,20}";
        let value = "[ -~]{0,40}";
        (token, path, proptest::collection::vec((name, value), 0..8))
    }

    proptest! {
        /// Any bytes: an answer (a request or an error response), never a panic; what is
        /// accepted is a well-formed head.
        #[test]
        fn any_bytes_give_a_request_or_an_error(data in proptest::collection::vec(any::<u8>(), 0..600)) {
            match parse_head(&data) {
                Ok(r) => {
                    prop_assert!(r.path.starts_with('/'));
                    prop_assert!(!r.method.is_empty() && r.method.bytes().all(|b| b.is_ascii_uppercase()));
                    for (n, _) in &r.headers {
                        prop_assert!(!n.is_empty() && !n.bytes().any(|b| b.is_ascii_uppercase()));
                    }
                }
                Err(resp) => prop_assert!(matches!(resp.status, 400 | 505)),
            }
        }

        /// A well-formed head reads back exactly: method, target, headers in order with
        /// lower-case names and trimmed values.
        #[test]
        fn well_formed_heads_read_back((method, path, headers) in request_head()) {
            let mut text = format!("{method} {path} HTTP/1.1");
            for (n, v) in &headers {
                text.push_str(&format!("\r\n{n}:{v}"));
            }
            let r = parse_head(text.as_bytes()).unwrap();
            prop_assert_eq!(r.method, method);
            prop_assert_eq!(r.path, path);
            let want: Vec<(String, String)> = headers
                .iter()
                .map(|(n, v)| (n.to_ascii_lowercase(), v.trim().to_string()))
                .collect();
            prop_assert_eq!(r.headers, want);
        }
    }
}
