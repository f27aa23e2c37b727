//! The `otlp` receiver: OTLP over gRPC and HTTP (protobuf and JSON), as the OpenTelemetry
//! Collector's receiver of the same name.
//!
//! ```yaml
//! receivers:
//!   otlp:
//!     protocols:
//!       grpc:
//!         endpoint: localhost:4317      # default
//!         max_recv_msg_size_mib: 4      # default
//!         include_metadata: false       # default
//!         auth:                         # default: none
//!           authenticator: bearertokenauth
//!       http:
//!         endpoint: localhost:4318      # default
//!         logs_url_path: /v1/logs       # default; also traces_url_path, metrics_url_path
//!         max_request_body_size: 20971520
//!         cors:
//!           allowed_origins: ["https://*.example.com"]
//!           max_age: 7200
//!     max_in_flight_mib: 64             # Weir only: request bytes held at once
//! ```
//!
//! A request is answered only after the pipeline has accepted its batch; when the pipeline
//! (a memory limiter, a full sending queue) or the receiver's own in-flight byte budget cannot
//! take it now, the client is told to retry (HTTP 503 + `Retry-After`, gRPC
//! `RESOURCE_EXHAUSTED` with `RetryInfo`, or `UNAVAILABLE` when no delay is known), so data is
//! never acknowledged and then lost. `tls` takes weir-tls server settings. `auth:
//! {authenticator: <extension id>}` on a protocol makes every request pass that extension
//! (`bearertokenauth`, or `control_plane` for the control plane's tokens) before anything of
//! it is read: refused, HTTP answers 401 and gRPC UNAUTHENTICATED. Partial success is never reported: the pipeline accepts or refuses a whole
//! batch.

pub(crate) mod body;
pub mod config;
mod cors;
pub(crate) mod grpc;
mod http;
pub(crate) mod ingest;
pub(crate) mod status;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use weir_api::{
    BuildContext, BuildError, Component, ComponentId, ConfigErrors, ReceiverConfig,
    ReceiverFactory, ServerAuthenticator, SignalConsumers, SignalSet, StartError,
};

pub use config::OtlpReceiverSettings;
pub use ingest::Transport;
pub use status::RequestError;

use ingest::{ByteBudget, Ingest};

/// Default of `max_in_flight_mib`.
const DEFAULT_MAX_IN_FLIGHT_MIB: u64 = 64;

/// The factory of the `otlp` receiver type.
#[derive(Debug, Default, Clone, Copy)]
pub struct OtlpReceiverFactory;

impl OtlpReceiverFactory {
    /// Parses and validates the config at YAML `path`, keeping its concrete type (tests and
    /// tools use it to reach [`OtlpReceiver::grpc_address`] and friends).
    pub fn parse_config(
        &self,
        config: &serde_json::Value,
        path: &str,
    ) -> Result<OtlpReceiverConfig, ConfigErrors> {
        let settings = config::parse(config, path)?;
        Ok(OtlpReceiverConfig {
            settings,
            path: path.to_string(),
        })
    }
}

impl ReceiverFactory for OtlpReceiverFactory {
    fn signals(&self) -> SignalSet {
        SignalSet::ALL
    }

    fn parse(
        &self,
        config: &serde_json::Value,
        path: &str,
    ) -> Result<Box<dyn ReceiverConfig>, ConfigErrors> {
        Ok(Box::new(self.parse_config(config, path)?))
    }
}

/// A validated `otlp` receiver config.
#[derive(Debug, Clone)]
pub struct OtlpReceiverConfig {
    settings: OtlpReceiverSettings,
    /// YAML path of the section (`receivers.otlp`), for messages.
    path: String,
}

impl OtlpReceiverConfig {
    /// The parsed settings.
    pub fn settings(&self) -> &OtlpReceiverSettings {
        &self.settings
    }

    /// The `auth.authenticator` of `protocol` (`grpc`, `http`) with its YAML path.
    fn auth_ref(&self, protocol: &str) -> Option<(String, String)> {
        let p = &self.settings.protocols;
        let auth = match protocol {
            "grpc" => p.grpc.as_ref().and_then(|g| g.auth.as_ref()),
            _ => p.http.as_ref().and_then(|h| h.auth.as_ref()),
        }?;
        Some((
            format!("{}.protocols.{protocol}.auth.authenticator", self.path),
            auth.authenticator.clone(),
        ))
    }

    /// Builds the receiver with its concrete type; fails when an `auth.authenticator` names
    /// no server authenticator among the service's extensions.
    pub fn build_receiver(
        &self,
        ctx: &BuildContext,
        consumers: SignalConsumers,
    ) -> Result<Arc<OtlpReceiver>, BuildError> {
        let authenticator =
            |protocol: &str| -> Result<Option<Arc<dyn ServerAuthenticator>>, BuildError> {
                match self.auth_ref(protocol) {
                    None => Ok(None),
                    Some((path, name)) => {
                        ctx.authenticators.server(&ctx.id, &path, &name).map(Some)
                    }
                }
            };
        let grpc_auth = authenticator("grpc")?;
        let http_auth = authenticator("http")?;
        let mib = self
            .settings
            .max_in_flight_mib
            .unwrap_or(DEFAULT_MAX_IN_FLIGHT_MIB);
        let in_flight = ctx.telemetry.gauge(
            "weir_receiver_in_flight_bytes",
            "Request bytes (as received and decompressed) a receiver holds now, against its max_in_flight_mib",
            &[("receiver", ctx.id.to_string())],
        );
        let budget = ByteBudget::new(mib.saturating_mul(1024 * 1024), in_flight);
        let ingest = Ingest::new(&ctx.id, consumers, budget, &ctx.telemetry);
        Ok(Arc::new(OtlpReceiver {
            id: ctx.id.clone(),
            grpc_auth,
            http_auth,
            base_dir: ctx.base_dir.clone(),
            settings: self.settings.clone(),
            ingest: Arc::new(ingest),
            shutdown: CancellationToken::new(),
            servers: Mutex::new(Vec::new()),
            grpc_address: OnceLock::new(),
            http_address: OnceLock::new(),
        }))
    }
}

impl ReceiverConfig for OtlpReceiverConfig {
    fn build(
        &self,
        ctx: &BuildContext,
        consumers: SignalConsumers,
    ) -> Result<Arc<dyn Component>, BuildError> {
        Ok(self.build_receiver(ctx, consumers)?)
    }

    fn authenticator_refs(&self) -> Vec<(String, String)> {
        ["grpc", "http"]
            .into_iter()
            .filter_map(|p| self.auth_ref(p))
            .collect()
    }
}

/// A running (or ready to start) `otlp` receiver.
pub struct OtlpReceiver {
    id: ComponentId,
    /// `protocols.grpc.auth`: every call must pass it.
    grpc_auth: Option<Arc<dyn ServerAuthenticator>>,
    /// `protocols.http.auth`: every request must pass it.
    http_auth: Option<Arc<dyn ServerAuthenticator>>,
    /// Where relative TLS file paths are taken from.
    base_dir: std::path::PathBuf,
    settings: OtlpReceiverSettings,
    ingest: Arc<Ingest>,
    shutdown: CancellationToken,
    servers: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    grpc_address: OnceLock<SocketAddr>,
    http_address: OnceLock<SocketAddr>,
}

/// A bound listener: TCP, or a Unix domain socket (`transport: unix`).
pub(crate) enum Listener {
    /// `transport: tcp`.
    Tcp(TcpListener),
    /// `transport: unix`; the path is removed again at shutdown.
    Unix(tokio::net::UnixListener, std::path::PathBuf),
}

/// Binds a Unix domain socket at `path`. A socket file left by a process that is gone (no
/// one accepts on it) is replaced; a live one is an error, as is any other file.
async fn bind_unix(path: &std::path::Path) -> std::io::Result<tokio::net::UnixListener> {
    use std::os::unix::fs::FileTypeExt;
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "the path exists and is not a socket",
            ));
        }
        match tokio::net::UnixStream::connect(path).await {
            Ok(_) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::AddrInUse,
                    "another process listens on this socket",
                ))
            }
            Err(_) => std::fs::remove_file(path)?,
        }
    }
    tokio::net::UnixListener::bind(path)
}

impl OtlpReceiver {
    /// The address the gRPC server listens on, once started (the real port when the
    /// endpoint asked for port 0).
    pub fn grpc_address(&self) -> Option<SocketAddr> {
        self.grpc_address.get().copied()
    }

    /// The address the HTTP server listens on, once started.
    pub fn http_address(&self) -> Option<SocketAddr> {
        self.http_address.get().copied()
    }

    /// Reads a protocol's TLS files (named by YAML path in errors).
    fn load_tls(
        &self,
        protocol: &str,
        tls: Option<&weir_tls::TlsServerSettings>,
        alpn: weir_tls::Alpn,
    ) -> Result<Option<weir_tls::ServerTls>, StartError> {
        let field = format!("receivers.{}.protocols.{protocol}.tls", self.id);
        crate::http_server::load_tls(&self.id, &self.base_dir, &field, tls, alpn)
    }

    async fn bind(
        &self,
        protocol: &str,
        transport: &str,
        endpoint: &str,
    ) -> Result<Listener, StartError> {
        if transport == "unix" {
            let path = self.base_dir.join(endpoint);
            return bind_unix(&path)
                .await
                .map(|l| Listener::Unix(l, path.clone()))
                .map_err(|e| {
                    StartError::new(
                        &self.id,
                        format!(
                            "cannot listen for OTLP/{protocol} on the unix socket {}",
                            path.display()
                        ),
                        e,
                    )
                });
        }
        self.bind_tcp(protocol, endpoint).await.map(Listener::Tcp)
    }

    async fn bind_tcp(&self, protocol: &str, endpoint: &str) -> Result<TcpListener, StartError> {
        let failed = |e: std::io::Error| {
            StartError::new(
                &self.id,
                format!("cannot listen for OTLP/{protocol} on {endpoint}"),
                e,
            )
        };
        // An empty host means every interface, as in the collector.
        let address = match endpoint.strip_prefix(':') {
            Some(port) => format!("0.0.0.0:{port}"),
            None => endpoint.to_string(),
        };
        // A host name listens on one of its addresses, IPv4 first, as the collector (Go)
        // does: `localhost` must serve clients that connect to 127.0.0.1 even where it
        // resolves to ::1 first.
        let mut addresses: Vec<SocketAddr> = tokio::net::lookup_host(&address)
            .await
            .map_err(failed)?
            .collect();
        addresses.sort_by_key(|a| !a.is_ipv4());
        let mut last_error = None;
        for a in addresses {
            match TcpListener::bind(a).await {
                Ok(listener) => return Ok(listener),
                Err(e) => last_error = Some(e),
            }
        }
        Err(failed(last_error.unwrap_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "the host name resolves to no address",
            )
        })))
    }
}

#[async_trait]
impl Component for OtlpReceiver {
    async fn start(&self) -> Result<(), StartError> {
        let protocols = &self.settings.protocols;
        let grpc_tls = self.load_tls(
            "grpc",
            protocols.grpc.as_ref().and_then(|s| s.tls.as_ref()),
            weir_tls::Alpn::Grpc,
        )?;
        let http_tls = self.load_tls(
            "http",
            protocols.http.as_ref().and_then(|s| s.tls.as_ref()),
            weir_tls::Alpn::Http,
        )?;
        // Bind both before serving either, so a port in use fails the start cleanly.
        let grpc = match &protocols.grpc {
            Some(s) => Some((self.bind("gRPC", &s.transport, &s.endpoint).await?, s)),
            None => None,
        };
        let http = match &protocols.http {
            Some(s) => Some((self.bind("HTTP", &s.transport, &s.endpoint).await?, s)),
            None => None,
        };
        let mut servers = self.servers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((listener, settings)) = grpc {
            match &listener {
                Listener::Tcp(l) => {
                    if let Ok(a) = l.local_addr() {
                        let _ = self.grpc_address.set(a);
                        tracing::info!(receiver = %self.id, address = %a, "OTLP/gRPC receiver listening");
                    }
                }
                Listener::Unix(_, path) => {
                    tracing::info!(receiver = %self.id, socket = %path.display(), "OTLP/gRPC receiver listening");
                }
            }
            servers.push(grpc::serve(
                listener,
                settings,
                self.ingest.clone(),
                self.shutdown.clone(),
                grpc_tls,
                self.grpc_auth.clone(),
            ));
        }
        if let Some((listener, settings)) = http {
            match &listener {
                Listener::Tcp(l) => {
                    if let Ok(a) = l.local_addr() {
                        let _ = self.http_address.set(a);
                        tracing::info!(receiver = %self.id, address = %a, "OTLP/HTTP receiver listening");
                    }
                }
                Listener::Unix(_, path) => {
                    tracing::info!(receiver = %self.id, socket = %path.display(), "OTLP/HTTP receiver listening");
                }
            }
            servers.push(http::serve(
                listener,
                settings,
                self.ingest.clone(),
                self.shutdown.clone(),
                http_tls,
                self.http_auth.clone(),
            ));
        }
        Ok(())
    }

    async fn shutdown(&self) {
        self.shutdown.cancel();
        let servers: Vec<_> = self
            .servers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
            .collect();
        for server in servers {
            let _ = server.await;
        }
    }
}
