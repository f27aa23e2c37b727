//! Helpers shared by the catalog's integration tests: a free loopback port and raw
//! HTTP/1.1 exchanges (the request as bytes on the wire, the whole answer read back).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A loopback port nothing listens on now, never the same one twice in a test process.
#[allow(unused_imports)] // not every test binary picks a port
pub use weir_api::fixtures::free_port;

/// Splits a raw HTTP/1.1 answer into (status, head, body bytes).
pub fn split_answer(out: &[u8]) -> (u16, String, Vec<u8>) {
    let at = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(out.len(), |p| p + 4);
    let head = String::from_utf8_lossy(&out[..at]).trim_end().to_string();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head, out[at..].to_vec())
}

/// Sends `req` (a whole request, which should say `connection: close`) on a new
/// connection from `from` (any 127.x.y.z; None: the default) and reads the whole answer:
/// (status, head, body bytes).
pub async fn exchange_raw_from(
    from: Option<&str>,
    to: SocketAddr,
    req: &[u8],
) -> (u16, String, Vec<u8>) {
    let mut s = match from {
        Some(from) => {
            let sock = tokio::net::TcpSocket::new_v4().unwrap();
            sock.bind(format!("{from}:0").parse().unwrap()).unwrap();
            sock.connect(to).await.unwrap()
        }
        None => tokio::net::TcpStream::connect(to).await.unwrap(),
    };
    s.write_all(req).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    split_answer(&out)
}

/// As [`exchange_raw_from`] from the default address, the body as text.
pub async fn exchange(to: SocketAddr, req: &[u8]) -> (u16, String, String) {
    let (status, head, body) = exchange_raw_from(None, to, req).await;
    (status, head, String::from_utf8_lossy(&body).to_string())
}

/// One HTTP/1.1 request (`connection: close`, `content-length` added) as bytes.
pub fn request(
    to: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Vec<u8> {
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nhost: {to}\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    let mut out = req.into_bytes();
    out.extend_from_slice(body);
    out
}

/// One HTTP/1.1 request from the local address `from` (any 127.x.y.z): (status, head,
/// body).
pub async fn http_from(
    from: &str,
    to: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, String) {
    let req = request(to, method, path, headers, body.as_bytes());
    let (status, head, body) = exchange_raw_from(Some(from), to, &req).await;
    (status, head, String::from_utf8_lossy(&body).to_string())
}
