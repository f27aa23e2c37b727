//! The control plane's listeners, built to outlast slow and hostile clients: a cap on
//! open connections (one more waits in the kernel's backlog until one closes), a
//! deadline for the request head, a deadline for the request body, and an idle deadline
//! on every read and write of a connection.
//!
//! ```yaml
//! extensions:
//!   control_plane:
//!     connections:
//!       max_connections: 16384      # HTTP and gRPC listeners, each (held under `ulimit -n`)
//!       header_read_timeout: 10s    # the request line and headers
//!       body_read_timeout: 30s      # the whole request body
//!       idle_timeout: 120s          # no byte read or written for this long: closed
//! ```

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;

fn default_max_connections() -> usize {
    16384
}

/// Descriptors kept free under the open-file limit for the database, the listeners and
/// everything else the process opens.
const RESERVED_FDS: u64 = 256;

/// The process's soft limit on open files (`ulimit -n`), from `/proc/self/limits`.
pub fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line
        .trim_start_matches("Max open files")
        .split_whitespace()
        .next()?;
    if soft == "unlimited" {
        return Some(u64::MAX);
    }
    soft.parse().ok()
}

/// The connection cap in force: `max_connections`, lowered (with a warning) so that the
/// open connections stay [`RESERVED_FDS`] under the open-file limit; past it, accepting
/// would fail and the database could not open its files.
pub fn effective_max_connections(max_connections: usize, listener: &str) -> usize {
    let Some(limit) = open_files_limit() else {
        return max_connections;
    };
    let room = limit.saturating_sub(RESERVED_FDS).max(16);
    if (max_connections as u64) <= room {
        return max_connections;
    }
    let lowered = usize::try_from(room).unwrap_or(max_connections);
    tracing::warn!(
        listener,
        max_connections,
        open_files_limit = limit,
        lowered,
        "connections.max_connections is above the open-file limit (ulimit -n) less {RESERVED_FDS}: \
         connections are capped at {lowered}; raise the limit (ulimit -n, systemd LimitNOFILE=) \
         to hold more edges"
    );
    lowered
}
fn default_header_read_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_body_read_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_idle_timeout() -> Duration {
    Duration::from_secs(120)
}

/// Connection limits of the control plane's listeners (`extensions.control_plane.connections`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionLimits {
    /// Open connections per listener (HTTP, gRPC); further ones wait in the backlog.
    /// Every edge holds one or two (catalog ingest, policy sync). Capped at the open-file
    /// limit (`ulimit -n`) less 256, with a warning. Default: 16384.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Time a client has to send the request line and headers (HTTP/1). Default: 10s.
    #[serde(default = "default_header_read_timeout", with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// Time a client has to send a whole request body; after it the request gets 408.
    /// Default: 30s.
    #[serde(default = "default_body_read_timeout", with = "humantime_serde")]
    pub body_read_timeout: Duration,
    /// A connection on which no byte is read or written for this long is closed (keep-alive
    /// connections, stalled clients, clients that stop reading). Default: 120s.
    #[serde(default = "default_idle_timeout", with = "humantime_serde")]
    pub idle_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: default_max_connections(),
            header_read_timeout: default_header_read_timeout(),
            body_read_timeout: default_body_read_timeout(),
            idle_timeout: default_idle_timeout(),
        }
    }
}

impl ConnectionLimits {
    /// Problems with the values, as (field, message).
    pub fn check(&self) -> Vec<(&'static str, &'static str)> {
        let mut out = Vec::new();
        if self.max_connections == 0 {
            out.push(("max_connections", "must be at least 1"));
        }
        for (f, d) in [
            ("header_read_timeout", self.header_read_timeout),
            ("body_read_timeout", self.body_read_timeout),
            ("idle_timeout", self.idle_timeout),
        ] {
            if d.is_zero() {
                out.push((f, "must be greater than 0"));
            }
        }
        out
    }
}

/// A connection's stream with an idle deadline on reads and on writes, holding its slot
/// under the connection cap until dropped.
pub struct Guarded<T> {
    inner: T,
    idle: Duration,
    read_deadline: Option<Pin<Box<Sleep>>>,
    write_deadline: Option<Pin<Box<Sleep>>>,
    _permit: OwnedSemaphorePermit,
}

impl<T> Guarded<T> {
    fn new(inner: T, idle: Duration, permit: OwnedSemaphorePermit) -> Self {
        Guarded {
            inner,
            idle,
            read_deadline: None,
            write_deadline: None,
            _permit: permit,
        }
    }
}

/// Polls `deadline` (armed on the first Pending); Ready(err) once it has passed.
fn expired(
    deadline: &mut Option<Pin<Box<Sleep>>>,
    idle: Duration,
    cx: &mut Context<'_>,
) -> Poll<io::Error> {
    let sleep = deadline.get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
    match sleep.as_mut().poll(cx) {
        Poll::Ready(()) => Poll::Ready(io::Error::new(
            io::ErrorKind::TimedOut,
            "connection idle past idle_timeout",
        )),
        Poll::Pending => Poll::Pending,
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Guarded<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(r) => {
                this.read_deadline = None;
                Poll::Ready(r)
            }
            Poll::Pending => expired(&mut this.read_deadline, this.idle, cx).map(Err),
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Guarded<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_write(cx, buf) {
            Poll::Ready(r) => {
                this.write_deadline = None;
                Poll::Ready(r)
            }
            Poll::Pending => expired(&mut this.write_deadline, this.idle, cx).map(Err),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_flush(cx) {
            Poll::Ready(r) => {
                this.write_deadline = None;
                Poll::Ready(r)
            }
            Poll::Pending => expired(&mut this.write_deadline, this.idle, cx).map(Err),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl<T: tonic::transport::server::Connected> tonic::transport::server::Connected for Guarded<T> {
    type ConnectInfo = T::ConnectInfo;
    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

/// Accepts the next connection once a slot under the cap is free.
async fn accept(
    listener: &TcpListener,
    slots: &Arc<Semaphore>,
    idle: Duration,
) -> Option<(Guarded<tokio::net::TcpStream>, std::net::SocketAddr)> {
    let permit = slots.clone().acquire_owned().await.ok()?;
    loop {
        match listener.accept().await {
            Ok((tcp, peer)) => {
                let _ = tcp.set_nodelay(true);
                return Some((Guarded::new(tcp, idle, permit), peer));
            }
            Err(e) => {
                // Out of descriptors and the like: wait instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Serves `app` over HTTP/1 and HTTP/2 (TLS when `tls` is set) under `limits` until
/// `shutdown` resolves; open connections then get 10 s to finish.
pub async fn serve_http(
    listener: TcpListener,
    app: axum::Router,
    tls: Option<weir_tls::ServerTls>,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send,
) {
    let slots = Arc::new(Semaphore::new(effective_max_connections(
        limits.max_connections,
        "http",
    )));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let (io, peer) = tokio::select! {
            c = accept(&listener, &slots, limits.idle_timeout) => match c {
                Some(c) => c,
                None => break,
            },
            _ = &mut shutdown => break,
        };
        // Every request carries its connection's client address (failed-authentication
        // limits, audit log).
        let client = crate::guard::ClientAddr(peer.ip());
        let service =
            hyper_util::service::TowerToHyperService::new(tower::ServiceExt::map_request(
                app.clone(),
                move |mut r: http::Request<hyper::body::Incoming>| {
                    r.extensions_mut().insert(client);
                    r
                },
            ));
        let (tls, mut stop) = (tls.clone(), stop_rx.clone());
        tokio::spawn(async move {
            let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout);
            builder
                .http2()
                .timer(TokioTimer::new())
                .keep_alive_interval(Some(limits.idle_timeout))
                .keep_alive_timeout(limits.header_read_timeout);
            let run = async {
                match tls {
                    Some(tls) => {
                        let stream = match tls.accept(io).await {
                            Ok(s) => s,
                            Err(e) => {
                                tracing::debug!(%peer, error = %e, "TLS handshake failed");
                                return;
                            }
                        };
                        serve_one(&builder, TokioIo::new(stream), service, &mut stop, peer).await
                    }
                    None => serve_one(&builder, TokioIo::new(io), service, &mut stop, peer).await,
                }
            };
            run.await;
        });
    }
    let _ = stop_tx.send(true);
}

async fn serve_one<I, S>(
    builder: &hyper_util::server::conn::auto::Builder<TokioExecutor>,
    io: TokioIo<I>,
    service: hyper_util::service::TowerToHyperService<S>,
    stop: &mut tokio::sync::watch::Receiver<bool>,
    peer: std::net::SocketAddr,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: tower::Service<
            http::Request<hyper::body::Incoming>,
            Response = Response,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let conn = builder.serve_connection_with_upgrades(io, service);
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(%peer, error = %e, "HTTP connection ended with an error");
            }
        }
        _ = async { let _ = stop.wait_for(|s| *s).await; } => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(10), conn).await;
        }
    }
}

/// The connections accepted on `listener` under the cap, for tonic's
/// `serve_with_incoming_shutdown` (TLS when `tls` is set; handshakes run concurrently).
pub fn grpc_incoming(
    listener: TcpListener,
    tls: Option<weir_tls::ServerTls>,
    limits: ConnectionLimits,
) -> impl futures::Stream<Item = io::Result<GrpcConnection>> + Send + 'static {
    let (tx, rx) = tokio::sync::mpsc::channel::<GrpcConnection>(64);
    let slots = Arc::new(Semaphore::new(effective_max_connections(
        limits.max_connections,
        "grpc",
    )));
    tokio::spawn(async move {
        loop {
            let (io, peer) = tokio::select! {
                c = accept(&listener, &slots, limits.idle_timeout) => match c {
                    Some(c) => c,
                    None => break,
                },
                _ = tx.closed() => break,
            };
            let (tls, tx) = (tls.clone(), tx.clone());
            tokio::spawn(async move {
                let conn = match tls {
                    Some(tls) => match tls.accept(io).await {
                        Ok(s) => GrpcConnection::Tls(Box::new(s)),
                        Err(e) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                            return;
                        }
                    },
                    None => GrpcConnection::Plain(io),
                };
                let _ = tx.send(conn).await;
            });
        }
    });
    ReceiverStream(rx)
}

struct ReceiverStream(tokio::sync::mpsc::Receiver<GrpcConnection>);

impl futures::Stream for ReceiverStream {
    type Item = io::Result<GrpcConnection>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx).map(|c| c.map(Ok))
    }
}

/// One gRPC connection: plain or TLS, under the cap and the idle deadline.
pub enum GrpcConnection {
    /// Plain TCP.
    Plain(Guarded<tokio::net::TcpStream>),
    /// TLS over TCP.
    Tls(Box<weir_tls::tokio_rustls::server::TlsStream<Guarded<tokio::net::TcpStream>>>),
}

impl tonic::transport::server::Connected for GrpcConnection {
    type ConnectInfo = tonic::transport::server::TcpConnectInfo;
    fn connect_info(&self) -> Self::ConnectInfo {
        match self {
            GrpcConnection::Plain(s) => s.connect_info(),
            GrpcConnection::Tls(s) => s.get_ref().0.connect_info(),
        }
    }
}

impl AsyncRead for GrpcConnection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            GrpcConnection::Plain(s) => Pin::new(s).poll_read(cx, buf),
            GrpcConnection::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for GrpcConnection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            GrpcConnection::Plain(s) => Pin::new(s).poll_write(cx, buf),
            GrpcConnection::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            GrpcConnection::Plain(s) => Pin::new(s).poll_flush(cx),
            GrpcConnection::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            GrpcConnection::Plain(s) => Pin::new(s).poll_shutdown(cx),
            GrpcConnection::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Middleware: the request body must arrive whole within `limit` (else 408), and is read
/// here so no handler waits on a slow client.
pub async fn body_deadline(
    limit: Duration,
    max_bytes: usize,
    req: Request,
    next: Next,
) -> Response {
    let (parts, body) = req.into_parts();
    match tokio::time::timeout(limit, axum::body::to_bytes(body, max_bytes)).await {
        Ok(Ok(bytes)) => {
            next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
                .await
        }
        Ok(Err(e)) => (
            StatusCode::PAYLOAD_TOO_LARGE,
            axum::Json(serde_json::json!({"error": format!("body: {e} (limit {max_bytes} bytes)")})),
        )
            .into_response(),
        Err(_) => (
            StatusCode::REQUEST_TIMEOUT,
            axum::Json(serde_json::json!({
                "error": format!("body: not received within body_read_timeout ({}s)", limit.as_secs())
            })),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_cap_stays_under_the_open_file_limit() {
        let limit = open_files_limit().expect("/proc/self/limits names Max open files");
        assert!(limit > 0);
        // A small cap is kept as configured.
        assert_eq!(effective_max_connections(8, "test"), 8);
        // One past what the descriptors allow is lowered to the limit less the reserve.
        let huge = usize::MAX / 2;
        let cap = effective_max_connections(huge, "test") as u64;
        if limit == u64::MAX {
            assert_eq!(cap, huge as u64);
        } else {
            assert_eq!(cap, limit.saturating_sub(RESERVED_FDS).max(16));
        }
    }
}
