//! Helpers shared by the CLI's black-box tests.
#![allow(dead_code, clippy::unwrap_used, missing_docs, unreachable_pub)]

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

/// One HTTP/1.1 request with `Connection: close`: (status, content type,
/// body), or `None` if the connection fails.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &str,
) -> Option<(u16, String, String)> {
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    let (head, body) = resp.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let ctype = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type: ")
                .map(str::to_owned)
        })
        .unwrap_or_default();
    Some((status, ctype, body.to_owned()))
}

/// tlog-witness `POST /add-checkpoint`.
pub fn post_add_checkpoint(addr: SocketAddr, body: &str) -> Option<(u16, String, String)> {
    http(addr, "POST", "/add-checkpoint", body)
}
