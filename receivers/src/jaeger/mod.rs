//! The `jaeger` receiver: Jaeger spans over gRPC (`jaeger.api_v2.CollectorService/PostSpans`),
//! Thrift over HTTP (`POST /api/traces`) and the agent's UDP protocols (Thrift compact and
//! binary `emitBatch` calls), converted to OTLP as the OpenTelemetry Collector's receiver does.
//!
//! ```yaml
//! receivers:
//!   jaeger:
//!     protocols:                      # at least one
//!       grpc:
//!         endpoint: localhost:14250   # default
//!         max_recv_msg_size_mib: 4    # default
//!       thrift_http:
//!         endpoint: localhost:14268   # default
//!         max_request_body_size: 20971520
//!       thrift_compact:
//!         endpoint: localhost:6831    # default
//!         queue_size: 1000            # packets waiting for a worker; more are dropped
//!         max_packet_size: 65000      # default
//!         workers: 10                 # default
//!         socket_buffer_size: 0       # default: the system's
//!       thrift_binary:
//!         endpoint: localhost:6832    # default; same fields as thrift_compact
//! ```
//!
//! `grpc` and `thrift_http` take `tls` (weir-tls server settings). Answers: gRPC OK,
//! INVALID_ARGUMENT naming the field that could not be read, RESOURCE_EXHAUSTED/UNAVAILABLE
//! when the pipeline cannot take data now; HTTP 202, 400 naming the field, 413, 415 for a
//! body that is not Thrift binary, 503 + `Retry-After`. UDP has no answer: a packet that
//! cannot be read, that finds the queue full or that the pipeline refuses is dropped and
//! counted (`weir_receiver_refused_requests{transport="udp"}`), and the first of each minute
//! is logged. The translation rules are in [`convert`].

mod agent_udp;
mod config;
pub mod convert;
pub mod from_thrift;
mod grpc;
pub mod proto;
pub mod thrift;
mod thrift_http;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;
use weir_api::{Component, ComponentId, StartError};

pub use agent_udp::decode_agent_packet;
use agent_udp::serve_udp;
pub use config::{
    GrpcSettings, JaegerReceiverConfig, JaegerReceiverFactory, JaegerReceiverSettings, Protocols,
    ThriftHttpSettings, UdpSettings, DEFAULT_BINARY_ENDPOINT, DEFAULT_COMPACT_ENDPOINT,
};
pub use grpc::decode_grpc;
use grpc::serve_grpc;
pub use thrift_http::decode_thrift_http;
use thrift_http::{handle_http, HttpState};

use crate::http_server;
use crate::otlp::ingest::Ingest;

/// Request bytes held at once across requests.
const MAX_IN_FLIGHT_BYTES: u64 = 64 * 1024 * 1024;

#[derive(Default)]
struct Addresses {
    grpc: OnceLock<SocketAddr>,
    thrift_http: OnceLock<SocketAddr>,
    thrift_compact: OnceLock<SocketAddr>,
    thrift_binary: OnceLock<SocketAddr>,
}

/// A running (or ready to start) `jaeger` receiver.
pub struct JaegerReceiver {
    id: ComponentId,
    base_dir: std::path::PathBuf,
    settings: JaegerReceiverSettings,
    ingest: Arc<Ingest>,
    shutdown: CancellationToken,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    addresses: Addresses,
}

impl JaegerReceiver {
    /// The gRPC address, once started.
    pub fn grpc_address(&self) -> Option<SocketAddr> {
        self.addresses.grpc.get().copied()
    }
    /// The thrift_http address, once started.
    pub fn thrift_http_address(&self) -> Option<SocketAddr> {
        self.addresses.thrift_http.get().copied()
    }
    /// The thrift_compact UDP address, once started.
    pub fn thrift_compact_address(&self) -> Option<SocketAddr> {
        self.addresses.thrift_compact.get().copied()
    }
    /// The thrift_binary UDP address, once started.
    pub fn thrift_binary_address(&self) -> Option<SocketAddr> {
        self.addresses.thrift_binary.get().copied()
    }

    fn load_tls(
        &self,
        protocol: &str,
        tls: Option<&weir_tls::TlsServerSettings>,
        alpn: weir_tls::Alpn,
    ) -> Result<Option<weir_tls::ServerTls>, StartError> {
        let field = format!("receivers.{}.protocols.{protocol}.tls", self.id);
        http_server::load_tls(&self.id, &self.base_dir, &field, tls, alpn)
    }

    async fn bind_udp(
        &self,
        what: &str,
        u: &UdpSettings,
        default_endpoint: &str,
    ) -> Result<UdpSocket, StartError> {
        let endpoint = u.endpoint.as_deref().unwrap_or(default_endpoint);
        let failed = |e: std::io::Error| {
            StartError::new(
                &self.id,
                format!("cannot listen for {what} on {endpoint}"),
                e,
            )
        };
        let address = match endpoint.strip_prefix(':') {
            Some(port) => format!("0.0.0.0:{port}"),
            None => endpoint.to_string(),
        };
        let mut addresses: Vec<SocketAddr> = tokio::net::lookup_host(&address)
            .await
            .map_err(failed)?
            .collect();
        addresses.sort_by_key(|a| !a.is_ipv4());
        let mut last = None;
        for a in addresses {
            let socket = match a {
                SocketAddr::V4(_) => socket2::Socket::new(
                    socket2::Domain::IPV4,
                    socket2::Type::DGRAM,
                    Some(socket2::Protocol::UDP),
                ),
                SocketAddr::V6(_) => socket2::Socket::new(
                    socket2::Domain::IPV6,
                    socket2::Type::DGRAM,
                    Some(socket2::Protocol::UDP),
                ),
            };
            let bound = socket.and_then(|s| {
                if u.socket_buffer_size > 0 {
                    s.set_recv_buffer_size(u.socket_buffer_size)?;
                }
                s.set_nonblocking(true)?;
                s.bind(&a.into())?;
                Ok(s)
            });
            match bound.and_then(|s| UdpSocket::from_std(s.into())) {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(failed(last.unwrap_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "the host name resolves to no address",
            )
        })))
    }
}

#[async_trait]
impl Component for JaegerReceiver {
    async fn start(&self) -> Result<(), StartError> {
        let p = &self.settings.protocols;
        let grpc_tls = self.load_tls(
            "grpc",
            p.grpc.as_ref().and_then(|g| g.tls.as_ref()),
            weir_tls::Alpn::Grpc,
        )?;
        let http_tls = self.load_tls(
            "thrift_http",
            p.thrift_http.as_ref().and_then(|h| h.tls.as_ref()),
            weir_tls::Alpn::Http,
        )?;
        // Bind everything before serving anything, so a port in use fails the start cleanly.
        let grpc = match &p.grpc {
            Some(g) => Some((
                http_server::bind(&self.id, "Jaeger gRPC", &g.endpoint).await?,
                g,
            )),
            None => None,
        };
        let thrift_http = match &p.thrift_http {
            Some(h) => Some((
                http_server::bind(&self.id, "Jaeger Thrift HTTP", &h.endpoint).await?,
                h,
            )),
            None => None,
        };
        let compact = match &p.thrift_compact {
            Some(c) => Some((
                self.bind_udp("Jaeger Thrift compact", c, DEFAULT_COMPACT_ENDPOINT)
                    .await?,
                c,
            )),
            None => None,
        };
        let binary = match &p.thrift_binary {
            Some(b) => Some((
                self.bind_udp("Jaeger Thrift binary", b, DEFAULT_BINARY_ENDPOINT)
                    .await?,
                b,
            )),
            None => None,
        };
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((listener, g)) = grpc {
            if let Ok(a) = listener.local_addr() {
                let _ = self.addresses.grpc.set(a);
                tracing::info!(receiver = %self.id, address = %a, "Jaeger gRPC receiver listening");
            }
            tasks.push(serve_grpc(
                listener,
                grpc_tls,
                self.ingest.clone(),
                usize::try_from(g.max_recv_msg_size_mib.saturating_mul(1024 * 1024))
                    .unwrap_or(usize::MAX),
                self.shutdown.clone(),
            ));
        }
        if let Some((listener, h)) = thrift_http {
            if let Ok(a) = listener.local_addr() {
                let _ = self.addresses.thrift_http.set(a);
                tracing::info!(receiver = %self.id, address = %a, "Jaeger Thrift HTTP receiver listening");
            }
            let state = Arc::new(HttpState {
                ingest: self.ingest.clone(),
                max_body_size: h.max_request_body_size,
                include_metadata: h.include_metadata,
            });
            let handler: http_server::Handler = Arc::new(move |req| {
                let state = state.clone();
                Box::pin(async move { handle_http(&state, req).await })
            });
            tasks.push(http_server::serve(
                listener,
                http_tls,
                self.shutdown.clone(),
                handler,
                "Jaeger Thrift HTTP",
            ));
        }
        for (bound, protocol, slot) in [
            (
                compact,
                thrift::Protocol::Compact,
                &self.addresses.thrift_compact,
            ),
            (
                binary,
                thrift::Protocol::Binary,
                &self.addresses.thrift_binary,
            ),
        ] {
            let Some((socket, u)) = bound else { continue };
            if let Ok(a) = socket.local_addr() {
                let _ = slot.set(a);
                tracing::info!(receiver = %self.id, address = %a, protocol = ?protocol, "Jaeger agent UDP receiver listening");
            }
            tasks.extend(serve_udp(
                socket,
                protocol,
                u,
                self.ingest.clone(),
                self.shutdown.clone(),
            ));
        }
        Ok(())
    }

    async fn shutdown(&self) {
        self.shutdown.cancel();
        let tasks: Vec<_> = self
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
            .collect();
        for t in tasks {
            let _ = t.await;
        }
    }
}
