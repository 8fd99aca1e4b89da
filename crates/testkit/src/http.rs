//! Clients of the plugin socket that send what the engine sends: a one-shot
//! request on a connection of its own ([`request`], for tests that check
//! every byte of an answer) and keep-alive connections ([`Conn`], for load).

use crate::{Error, Result};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// A reply: status and body.
#[derive(Debug)]
pub struct Reply {
    /// HTTP status (0 when none could be read).
    pub status: u16,
    /// The body, de-chunked.
    pub body: String,
}

impl Reply {
    /// The body as JSON; panics (a test assertion) if it is none.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("reply is not JSON ({e}): {:?}", self.body))
    }

    /// Asserts a failure in the documented shape: `status`, and both
    /// fields with the same non-empty text, which it returns.
    pub fn assert_error(&self, status: u16) -> String {
        assert_eq!(self.status, status, "{}", self.body);
        let v = self.json();
        let err = v["Err"].as_str().unwrap_or_default().to_string();
        assert!(!err.is_empty(), "no Err in {}", self.body);
        assert_eq!(
            v["Error"].as_str(),
            Some(err.as_str()),
            "Err and Error differ: {}",
            self.body
        );
        err
    }
}

/// One HTTP/1.1 request the way the engine sends it: `Accept` only, no
/// `Content-Type`, `Content-Length` always. A test helper: it panics when
/// there is no socket to connect to ("connect ...") or no HTTP reply ("no
/// HTTP reply ..."), which crash tests catch as "plugin gone".
pub fn request(socket: &Path, method: &str, path: &str, body: &[u8]) -> Reply {
    let s =
        UnixStream::connect(socket).unwrap_or_else(|e| panic!("connect {}: {e}", socket.display()));
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap_or_else(|e| panic!("connect {}: {e}", socket.display()));
    request_over(s, method, path, body)
}

/// [`request`] on a TCP connection to `addr` (the plugin's `METRICS_ADDR`).
pub fn request_tcp(addr: std::net::SocketAddr, method: &str, path: &str, body: &[u8]) -> Reply {
    let s = std::net::TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    request_over(s, method, path, body)
}

/// [`request`] on a connected stream.
fn request_over(mut s: impl Read + Write, method: &str, path: &str, body: &[u8]) -> Reply {
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: plugin.moby.localhost\r\nAccept: application/vnd.docker.plugins.v1.2+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    // a server may answer (and close) before reading all of a request it
    // refuses: what it answered is read below either way
    let _ = s.write_all(head.as_bytes());
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP reply: {text:?}"));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    Reply { status, body }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// One keep-alive HTTP/1.1 connection, sending requests as the engine does.
pub struct Conn {
    sender: SendRequest<Full<Bytes>>,
}

impl Conn {
    /// Connects to the plugin's socket.
    pub async fn open(socket: &Path) -> Result<Conn> {
        let stream = tokio::net::UnixStream::connect(socket)
            .await
            .map_err(|e| Error::with(format!("connect {}", socket.display()), e))?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| Error::with(format!("handshake on {}", socket.display()), e))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Conn { sender })
    }

    /// Opens `n` connections.
    pub async fn open_many(socket: &Path, n: usize) -> Result<Vec<Conn>> {
        let mut conns = Vec::with_capacity(n);
        for _ in 0..n {
            conns.push(Conn::open(socket).await?);
        }
        Ok(conns)
    }

    /// POSTs `body` to `path`: the JSON answer, or an error naming the
    /// call (an answer other than 200 is one).
    pub async fn post(&mut self, path: &str, body: String) -> Result<Value> {
        let failed = |e: &dyn std::fmt::Display| Error::with(path, e);
        let req = hyper::Request::post(path)
            .header("Host", "plugin.moby.localhost")
            .header("Accept", "application/vnd.docker.plugins.v1.2+json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| failed(&e))?;
        self.sender.ready().await.map_err(|e| failed(&e))?;
        let resp = self
            .sender
            .send_request(req)
            .await
            .map_err(|e| failed(&e))?;
        let status = resp.status();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| failed(&e))?
            .to_bytes();
        let text = String::from_utf8_lossy(&bytes);
        if status != hyper::StatusCode::OK {
            return Err(Error::new(format!(
                "{path}: HTTP {status}: {}",
                text.trim()
            )));
        }
        serde_json::from_slice(&bytes).map_err(|e| Error::new(format!("{path}: {e}: {text}")))
    }
}
