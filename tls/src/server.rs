//! The server side: a rustls config that follows its files, and ways to serve over it.

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use hyper::body::{Body, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::server::WebPkiClientVerifier;
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::{files, TlsError, TlsServerSettings, TlsVersion};

/// How long a client has to finish its handshake; a slow or silent client must not hold a
/// task (and a socket) forever.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The application protocols offered in the handshake (ALPN).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alpn {
    /// HTTP/2 and HTTP/1.1 (an HTTP API, OTLP/HTTP).
    Http,
    /// HTTP/2 only (gRPC).
    Grpc,
}

impl Alpn {
    fn protocols(self) -> Vec<Vec<u8>> {
        match self {
            Alpn::Http => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
            Alpn::Grpc => vec![b"h2".to_vec()],
        }
    }
}

/// The files a server config was built from, resolved.
#[derive(Debug, Clone)]
struct ServerFiles {
    /// YAML path of the `tls` section, for messages.
    field: String,
    cert: PathBuf,
    key: PathBuf,
    client_ca: Option<PathBuf>,
    min: TlsVersion,
    max: Option<TlsVersion>,
    alpn: Alpn,
}

/// What identifies a version of a file: modification time and size.
type Stamp = Option<(SystemTime, u64)>;

fn stamp(path: &Path) -> Stamp {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

impl ServerFiles {
    fn stamps(&self) -> Vec<Stamp> {
        let mut out = vec![stamp(&self.cert), stamp(&self.key)];
        if let Some(ca) = &self.client_ca {
            out.push(stamp(ca));
        }
        out
    }

    fn build(&self) -> Result<ServerConfig, TlsError> {
        let cert_field = format!("{}.cert_file", self.field);
        let certs = files::certificates(&cert_field, &self.cert)?;
        let key = files::private_key(&format!("{}.key_file", self.field), &self.key)?;
        let builder = ServerConfig::builder_with_provider(crate::crypto_provider())
            .with_protocol_versions(&TlsVersion::range(self.min, self.max))
            .map_err(|source| TlsError::Rustls {
                field: format!("{}.min_version", self.field),
                source,
            })?;
        let builder = match &self.client_ca {
            Some(ca) => {
                let field = format!("{}.client_ca_file", self.field);
                let roots = files::roots(&field, ca)?;
                let verifier = WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    crate::crypto_provider(),
                )
                .build()
                .map_err(|source| TlsError::ClientVerifier { field, source })?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let mut config =
            builder
                .with_single_cert(certs, key)
                .map_err(|source| TlsError::Rustls {
                    field: cert_field,
                    source,
                })?;
        config.alpn_protocols = self.alpn.protocols();
        Ok(config)
    }
}

struct Loaded {
    config: Arc<ServerConfig>,
    stamps: Vec<Stamp>,
    checked_at: Instant,
}

struct Reloading {
    files: ServerFiles,
    reload_interval: Duration,
    loaded: Mutex<Loaded>,
}

/// A TLS server config that reloads its certificate, key and client CAs when their files
/// change. Cheap to clone; clones share the loaded config.
#[derive(Clone)]
pub struct ServerTls {
    inner: Arc<Reloading>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("files", &self.inner.files)
            .finish_non_exhaustive()
    }
}

impl TlsServerSettings {
    /// Reads the files and builds the server config. `field` is the YAML path of the `tls`
    /// section (for messages); `resolve` turns a configured path into a file (relative paths
    /// against the config's directory, e.g. `|p| ctx.resolve_path(p)`).
    pub fn load(
        &self,
        field: &str,
        resolve: impl Fn(&str) -> PathBuf,
        alpn: Alpn,
    ) -> Result<ServerTls, TlsError> {
        let files = ServerFiles {
            field: field.to_string(),
            cert: resolve(&self.cert_file),
            key: resolve(&self.key_file),
            client_ca: self.client_ca_file.as_deref().map(&resolve),
            min: self.min_version,
            max: self.max_version,
            alpn,
        };
        // Stamps first: a file changed while it is read is then seen as changed next time.
        let stamps = files.stamps();
        let config = Arc::new(files.build()?);
        Ok(ServerTls {
            inner: Arc::new(Reloading {
                files,
                reload_interval: self.reload_interval,
                loaded: Mutex::new(Loaded {
                    config,
                    stamps,
                    checked_at: Instant::now(),
                }),
            }),
        })
    }
}

impl ServerTls {
    /// The config for the next handshake, reloaded first if the files changed and
    /// `reload_interval` has passed since the last check.
    pub fn config(&self) -> Arc<ServerConfig> {
        let inner = &self.inner;
        let mut loaded = inner.loaded.lock().unwrap_or_else(|e| e.into_inner());
        if loaded.checked_at.elapsed() < inner.reload_interval {
            return loaded.config.clone();
        }
        loaded.checked_at = Instant::now();
        let stamps = inner.files.stamps();
        if stamps != loaded.stamps {
            // Remember the stamps even on failure: one log line per change, not per connection.
            loaded.stamps = stamps;
            match inner.files.build() {
                Ok(config) => {
                    loaded.config = Arc::new(config);
                    tracing::info!(tls = %inner.files.field, cert_file = %inner.files.cert.display(), "TLS certificate reloaded");
                }
                Err(e) => {
                    tracing::warn!(error = %e, "TLS files changed but do not load; serving the previous certificate");
                }
            }
        }
        loaded.config.clone()
    }

    /// Runs the TLS handshake on an accepted connection (bounded to 10 s).
    pub async fn accept<IO>(&self, io: IO) -> io::Result<tokio_rustls::server::TlsStream<IO>>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let acceptor = tokio_rustls::TlsAcceptor::from(self.config());
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(io)).await {
            Ok(r) => r,
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "TLS handshake timed out",
            )),
        }
    }

    /// Accepts connections on `listener` and serves each with `service` (HTTP/1.1 or HTTP/2,
    /// chosen by ALPN) over TLS, until `shutdown` resolves; open connections are then asked to
    /// finish (graceful shutdown). For axum: `hyper_util::service::TowerToHyperService::new(router)`.
    /// A failed handshake closes that connection only (logged at debug level).
    pub async fn serve_http<S, B>(
        &self,
        listener: TcpListener,
        service: S,
        shutdown: impl Future<Output = ()> + Send,
    ) where
        S: hyper::service::Service<hyper::Request<Incoming>, Response = hyper::Response<B>>
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
        S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let (stop_tx, stop_rx) = watch::channel(false);
        tokio::pin!(shutdown);
        loop {
            let (tcp, peer) = tokio::select! {
                r = listener.accept() => match r {
                    Ok(c) => c,
                    Err(e) => {
                        // Out of descriptors and the like: wait instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = &mut shutdown => break,
            };
            let tls = self.clone();
            let service = service.clone();
            let mut stop = stop_rx.clone();
            tokio::spawn(async move {
                // Small request/response exchanges: do not wait to fill segments.
                let _ = tcp.set_nodelay(true);
                let stream = match tls.accept(tcp).await {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        return;
                    }
                };
                let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                let conn = builder.serve_connection(TokioIo::new(stream), service);
                tokio::pin!(conn);
                tokio::select! {
                    r = conn.as_mut() => {
                        if let Err(e) = r {
                            tracing::debug!(%peer, error = %e, "HTTPS connection ended with an error");
                        }
                    }
                    _ = async { let _ = stop.wait_for(|s| *s).await; } => {
                        conn.as_mut().graceful_shutdown();
                        let _ = tokio::time::timeout(Duration::from_secs(10), conn).await;
                    }
                }
            });
        }
        let _ = stop_tx.send(true);
    }

    /// A stream of TLS connections accepted on `listener`, for tonic's
    /// `Server::serve_with_incoming[_shutdown]`. Handshakes run concurrently; a failed one is
    /// logged at debug level and skipped. Accepting stops when the stream is dropped.
    pub fn incoming(
        &self,
        listener: TcpListener,
    ) -> impl futures::Stream<Item = Result<TlsConnection, io::Error>> + Send + 'static {
        let (tx, rx) = tokio::sync::mpsc::channel::<TlsConnection>(64);
        let tls = self.clone();
        tokio::spawn(async move {
            loop {
                let (tcp, peer) = tokio::select! {
                    r = listener.accept() => match r {
                        Ok(c) => c,
                        Err(e) => {
                            tracing::warn!(error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    },
                    _ = tx.closed() => break,
                };
                let _ = tcp.set_nodelay(true);
                let tls = tls.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    let info = tonic::transport::server::TcpConnectInfo {
                        local_addr: tcp.local_addr().ok(),
                        remote_addr: Some(peer),
                    };
                    match tls.accept(tcp).await {
                        Ok(stream) => {
                            let _ = tx.send(TlsConnection { stream, info }).await;
                        }
                        Err(e) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                    }
                });
            }
        });
        futures::stream::unfold(
            rx,
            |mut rx| async move { rx.recv().await.map(|c| (Ok(c), rx)) },
        )
    }
}

/// An accepted TLS connection, for tonic's incoming streams. Its connect info is the TCP
/// one, so `Request::remote_addr()` works as over plain TCP.
pub struct TlsConnection {
    stream: tokio_rustls::server::TlsStream<TcpStream>,
    info: tonic::transport::server::TcpConnectInfo,
}

impl TlsConnection {
    /// The certificate chain the client presented (mTLS), leaf first.
    pub fn peer_certificates(&self) -> Option<&[rustls::pki_types::CertificateDer<'static>]> {
        self.stream.get_ref().1.peer_certificates()
    }
}

impl tonic::transport::server::Connected for TlsConnection {
    type ConnectInfo = tonic::transport::server::TcpConnectInfo;
    fn connect_info(&self) -> Self::ConnectInfo {
        self.info.clone()
    }
}

impl AsyncRead for TlsConnection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConnection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}
