//! One HTTP/1.1 POST over the plugin's unix socket, one connection per
//! call (`Connection: close`), as the engine's plugin client makes them.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

/// POSTs `body` to `path`; returns the status and the body of the answer.
pub fn post(socket: &Path, path: &str, body: &str) -> io::Result<(u16, String)> {
    let mut s = UnixStream::connect(socket)?;
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: plugin\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut answer = Vec::new();
    s.read_to_end(&mut answer)?;
    let text = String::from_utf8_lossy(&answer);
    let bad = || {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("not an HTTP answer: {text:?}"),
        )
    };
    let (head, rest) = text.split_once("\r\n\r\n").ok_or_else(bad)?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(bad)?;
    // the plugin answers with a Content-Length (JSON bodies); a chunked
    // answer would be misread
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a chunked answer, which this client does not read: {head}"),
        ));
    }
    Ok((status, rest.to_string()))
}
