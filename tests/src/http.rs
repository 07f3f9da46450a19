//! A minimal HTTP/1.1 client for the loopback endpoints of `wasmproc serve`.

use std::io::{Read, Write};
use std::time::Duration;

/// `GET path` on `addr` (`IP:PORT`, also sent as the `Host` header), each
/// step limited to `limit`; returns the status code and body, or `None` if
/// no whole answer came.
pub fn get(addr: &str, path: &str, limit: Duration) -> Option<(u16, String)> {
    let socket = addr.parse().ok()?;
    let mut s = std::net::TcpStream::connect_timeout(&socket, limit).ok()?;
    s.set_read_timeout(Some(limit)).ok()?;
    s.set_write_timeout(Some(limit)).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let code = text.get(9..12)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n")?.1.to_string();
    Some((code, body))
}
