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

pub mod convert;
pub mod from_thrift;
pub mod proto;
pub mod thrift;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use serde::Deserialize;
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;
use tonic::codegen::{Body, BoxFuture, Context, Poll, Service, StdError};
use tonic::server::{NamedService, UnaryService};
use weir_api::otlp::collector::trace::v1::ExportTraceServiceRequest;
use weir_api::{
    parse_component_config, Batch, BuildContext, BuildError, Component, ComponentId, ConfigErrors,
    Payload, ReceiverConfig, ReceiverFactory, Signal, SignalConsumers, SignalSet, StartError,
};

use crate::http_server::{self, respond};
use crate::otlp::body::{self, ContentEncoding};
use crate::otlp::config::present_or_default;
use crate::otlp::ingest::{ByteBudget, Ingest, Transport};
use crate::otlp::status::RequestError;
use weir_api::grpc_raw::RawRequestCodec;

/// Request bytes held at once across requests.
const MAX_IN_FLIGHT_BYTES: u64 = 64 * 1024 * 1024;

/// `protocols.grpc`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GrpcSettings {
    /// Default `localhost:14250`.
    pub endpoint: String,
    /// Largest message in MiB. Default 4.
    pub max_recv_msg_size_mib: u64,
    /// TLS server settings. Default none.
    pub tls: Option<weir_tls::TlsServerSettings>,
}

impl Default for GrpcSettings {
    fn default() -> Self {
        GrpcSettings {
            endpoint: "localhost:14250".into(),
            max_recv_msg_size_mib: 4,
            tls: None,
        }
    }
}

/// `protocols.thrift_http`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThriftHttpSettings {
    /// Default `localhost:14268`.
    pub endpoint: String,
    /// Largest body (also after decompression). Default 20 MiB.
    pub max_request_body_size: usize,
    /// Pass the request headers along with the batch. Default false.
    pub include_metadata: bool,
    /// TLS server settings. Default none.
    pub tls: Option<weir_tls::TlsServerSettings>,
}

impl Default for ThriftHttpSettings {
    fn default() -> Self {
        ThriftHttpSettings {
            endpoint: "localhost:14268".into(),
            max_request_body_size: 20 * 1024 * 1024,
            include_metadata: false,
            tls: None,
        }
    }
}

/// `protocols.thrift_compact` / `protocols.thrift_binary`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UdpSettings {
    /// Default `localhost:6831` (compact) / `localhost:6832` (binary).
    pub endpoint: Option<String>,
    /// Packets waiting for a worker; a packet arriving at a full queue is dropped. Default 1000.
    pub queue_size: usize,
    /// Largest packet read (longer ones are cut and fail to decode). Default 65000.
    pub max_packet_size: usize,
    /// Packets decoded and delivered at once. Default 10.
    pub workers: usize,
    /// `SO_RCVBUF` in bytes; 0 keeps the system's. Default 0.
    pub socket_buffer_size: usize,
}

impl Default for UdpSettings {
    fn default() -> Self {
        UdpSettings {
            endpoint: None,
            queue_size: 1000,
            max_packet_size: 65000,
            workers: 10,
            socket_buffer_size: 0,
        }
    }
}

/// Default `thrift_compact` endpoint.
pub const DEFAULT_COMPACT_ENDPOINT: &str = "localhost:6831";
/// Default `thrift_binary` endpoint.
pub const DEFAULT_BINARY_ENDPOINT: &str = "localhost:6832";

/// `receivers.jaeger.protocols`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Protocols {
    /// gRPC. Default off.
    #[serde(deserialize_with = "present_or_default")]
    pub grpc: Option<GrpcSettings>,
    /// Thrift over HTTP. Default off.
    #[serde(deserialize_with = "present_or_default")]
    pub thrift_http: Option<ThriftHttpSettings>,
    /// Agent UDP, Thrift compact. Default off.
    #[serde(deserialize_with = "present_or_default")]
    pub thrift_compact: Option<UdpSettings>,
    /// Agent UDP, Thrift binary. Default off.
    #[serde(deserialize_with = "present_or_default")]
    pub thrift_binary: Option<UdpSettings>,
}

/// The `jaeger` receiver's config.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JaegerReceiverSettings {
    /// The protocols served.
    #[serde(default)]
    pub protocols: Protocols,
}

/// The factory of the `jaeger` receiver type.
#[derive(Debug, Default, Clone, Copy)]
pub struct JaegerReceiverFactory;

impl JaegerReceiverFactory {
    /// Parses and validates the config at YAML `path`, keeping its concrete type.
    pub fn parse_config(
        &self,
        config: &serde_json::Value,
        path: &str,
    ) -> Result<JaegerReceiverConfig, ConfigErrors> {
        let settings: JaegerReceiverSettings = parse_component_config(config, path)?;
        let mut errors = ConfigErrors::default();
        let p = &settings.protocols;
        let pp = format!("{path}.protocols");
        if p.grpc.is_none()
            && p.thrift_http.is_none()
            && p.thrift_compact.is_none()
            && p.thrift_binary.is_none()
        {
            errors.push(
                pp.clone(),
                "must specify at least one protocol (grpc, thrift_http, thrift_compact, thrift_binary)",
            );
        }
        if let Some(g) = &p.grpc {
            if g.endpoint.trim().is_empty() {
                errors.push(format!("{pp}.grpc.endpoint"), "must not be empty");
            }
            if g.max_recv_msg_size_mib == 0 {
                errors.push(
                    format!("{pp}.grpc.max_recv_msg_size_mib"),
                    "must be greater than 0",
                );
            }
            if let Some(tls) = &g.tls {
                errors.0.extend(tls.validate(&format!("{pp}.grpc.tls")).0);
            }
        }
        if let Some(h) = &p.thrift_http {
            if h.endpoint.trim().is_empty() {
                errors.push(format!("{pp}.thrift_http.endpoint"), "must not be empty");
            }
            if h.max_request_body_size == 0 {
                errors.push(
                    format!("{pp}.thrift_http.max_request_body_size"),
                    "must be greater than 0",
                );
            }
            if let Some(tls) = &h.tls {
                errors
                    .0
                    .extend(tls.validate(&format!("{pp}.thrift_http.tls")).0);
            }
        }
        for (name, u) in [
            ("thrift_compact", p.thrift_compact.as_ref()),
            ("thrift_binary", p.thrift_binary.as_ref()),
        ] {
            let Some(u) = u else { continue };
            if u.endpoint.as_deref().is_some_and(|e| e.trim().is_empty()) {
                errors.push(format!("{pp}.{name}.endpoint"), "must not be empty");
            }
            for (field, v) in [
                ("queue_size", u.queue_size),
                ("max_packet_size", u.max_packet_size),
                ("workers", u.workers),
            ] {
                if v == 0 {
                    errors.push(format!("{pp}.{name}.{field}"), "must be greater than 0");
                }
            }
            if u.max_packet_size > 65535 {
                errors.push(
                    format!("{pp}.{name}.max_packet_size"),
                    "must be at most 65535 (a UDP datagram)",
                );
            }
        }
        errors.into_result(JaegerReceiverConfig { settings })
    }
}

impl ReceiverFactory for JaegerReceiverFactory {
    fn signals(&self) -> SignalSet {
        SignalSet::of(&[Signal::Traces])
    }

    fn parse(
        &self,
        config: &serde_json::Value,
        path: &str,
    ) -> Result<Box<dyn ReceiverConfig>, ConfigErrors> {
        Ok(Box::new(self.parse_config(config, path)?))
    }
}

/// A validated `jaeger` receiver config.
#[derive(Debug, Clone)]
pub struct JaegerReceiverConfig {
    settings: JaegerReceiverSettings,
}

impl JaegerReceiverConfig {
    /// Builds the receiver with its concrete type.
    pub fn build_receiver(
        &self,
        ctx: &BuildContext,
        consumers: SignalConsumers,
    ) -> Arc<JaegerReceiver> {
        let in_flight = ctx.telemetry.gauge(
            "weir_receiver_in_flight_bytes",
            "Request bytes (as received and decompressed) a receiver holds now, against its max_in_flight_mib",
            &[("receiver", ctx.id.to_string())],
        );
        let budget = ByteBudget::new(MAX_IN_FLIGHT_BYTES, in_flight);
        let ingest = Ingest::with_transports(
            &ctx.id,
            consumers,
            budget,
            &ctx.telemetry,
            &[Transport::Grpc, Transport::Http, Transport::Udp],
        );
        Arc::new(JaegerReceiver {
            id: ctx.id.clone(),
            base_dir: ctx.base_dir.clone(),
            settings: self.settings.clone(),
            ingest: Arc::new(ingest),
            shutdown: CancellationToken::new(),
            tasks: Mutex::new(Vec::new()),
            addresses: Addresses::default(),
        })
    }
}

impl ReceiverConfig for JaegerReceiverConfig {
    fn build(
        &self,
        ctx: &BuildContext,
        consumers: SignalConsumers,
    ) -> Result<Arc<dyn Component>, BuildError> {
        Ok(self.build_receiver(ctx, consumers))
    }
}

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

/// Decodes a Thrift binary `Batch` (the thrift_http body) into OTLP.
pub fn decode_thrift_http(body: &[u8]) -> Result<ExportTraceServiceRequest, String> {
    from_thrift::decode_binary_batch(body).map(convert::thrift_to_otlp)
}

/// Decodes one agent UDP packet into OTLP.
pub fn decode_agent_packet(
    packet: &[u8],
    protocol: thrift::Protocol,
) -> Result<ExportTraceServiceRequest, String> {
    from_thrift::decode_agent_packet(packet, protocol).map(convert::thrift_to_otlp)
}

/// Decodes a gRPC `PostSpansRequest` into OTLP.
pub fn decode_grpc(body: &[u8]) -> Result<ExportTraceServiceRequest, String> {
    proto::decode_post_spans(body).map(|b| convert::proto_to_otlp(vec![b]))
}

struct HttpState {
    ingest: Arc<Ingest>,
    max_body_size: usize,
    include_metadata: bool,
}

fn text(status: StatusCode, message: impl Into<String>) -> Response<Full<Bytes>> {
    let mut m = message.into();
    m.push('\n');
    respond(status, "text/plain; charset=utf-8", m)
}

async fn handle_http(state: &HttpState, req: Request<Incoming>) -> Response<Full<Bytes>> {
    if req.uri().path() != "/api/traces" {
        return text(StatusCode::NOT_FOUND, "404 page not found");
    }
    if req.method() != Method::POST {
        let mut r = text(
            StatusCode::METHOD_NOT_ALLOWED,
            "405 method not allowed, supported: [POST]",
        );
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return r;
    }
    let media = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    if !matches!(
        media.as_str(),
        "application/x-thrift" | "application/vnd.apache.thrift.binary"
    ) {
        return text(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("415 unsupported media type {media:?}, supported: [application/x-thrift, application/vnd.apache.thrift.binary]"),
        );
    }
    match receive_http(state, req).await {
        Ok(()) => respond(StatusCode::ACCEPTED, "text/plain; charset=utf-8", ""),
        Err(e) => {
            state
                .ingest
                .count_refused_request(Transport::Http, Signal::Traces);
            tracing::debug!(error = %e, "Jaeger Thrift HTTP request not taken");
            let mut r = text(e.http_status(), e.to_string());
            if let Some(secs) = e.retry_after_secs() {
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            r
        }
    }
}

async fn receive_http(state: &HttpState, req: Request<Incoming>) -> Result<(), RequestError> {
    let encoding = ContentEncoding::parse(
        req.headers()
            .get(header::CONTENT_ENCODING)
            .map(|v| v.to_str().unwrap_or("(not text)")),
    )
    .map_err(RequestError::Malformed)?;
    let content_length = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let metadata = state.include_metadata.then(|| {
        Arc::new(
            req.headers()
                .iter()
                .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
                .collect::<Vec<_>>(),
        )
    });
    let ingest = &state.ingest;
    let limit = state.max_body_size;
    let mut share = ingest.budget.share();
    let raw = body::read_limited(req.into_body(), content_length, limit, &mut share).await?;
    ingest.count_bytes(Transport::Http, Signal::Traces, raw.len());
    let (bytes, share) = body::decompress(encoding, raw, limit, share).await?;
    let request = decode_thrift_http(&bytes).map_err(RequestError::Malformed)?;
    let mut batch = Batch::new(Payload::Traces(request));
    batch.context.metadata = metadata;
    let delivered = ingest.deliver(Transport::Http, batch).await;
    drop(share);
    delivered
}

/// Logs at most one warning a minute per socket.
struct RateLimitedLog {
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLimitedLog {
    fn warn(&mut self, what: &str, error: &str) {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < Duration::from_secs(60))
        {
            self.suppressed += 1;
            return;
        }
        tracing::warn!(error = %error, suppressed = self.suppressed, "{what}: packet dropped");
        self.last = Some(now);
        self.suppressed = 0;
    }
}

fn serve_udp(
    socket: UdpSocket,
    protocol: thrift::Protocol,
    u: &UdpSettings,
    ingest: Arc<Ingest>,
    shutdown: CancellationToken,
) -> Vec<tokio::task::JoinHandle<()>> {
    let what = match protocol {
        thrift::Protocol::Compact => "Jaeger Thrift compact",
        thrift::Protocol::Binary => "Jaeger Thrift binary",
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(u.queue_size);
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let log = Arc::new(Mutex::new(RateLimitedLog {
        last: None,
        suppressed: 0,
    }));
    let mut tasks = Vec::new();
    let max = u.max_packet_size;
    {
        let (ingest, log, shutdown) = (ingest.clone(), log.clone(), shutdown.clone());
        tasks.push(tokio::spawn(async move {
            let mut buf = vec![0u8; max];
            loop {
                let received = tokio::select! {
                    r = socket.recv_from(&mut buf) => r,
                    () = shutdown.cancelled() => break,
                };
                let n = match received {
                    Ok((n, _)) => n,
                    Err(e) => {
                        tracing::debug!(error = %e, "{what}: receive failed");
                        continue;
                    }
                };
                ingest.count_bytes(Transport::Udp, Signal::Traces, n);
                if tx.try_send(buf[..n].to_vec()).is_err() {
                    ingest.count_refused_request(Transport::Udp, Signal::Traces);
                    log.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .warn(what, "the queue is full (queue_size)");
                }
            }
            // Dropping the sender lets the workers finish what is queued, then stop.
        }));
    }
    for _ in 0..u.workers {
        let (ingest, log, rx) = (ingest.clone(), log.clone(), rx.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let packet = { rx.lock().await.recv().await };
                let Some(packet) = packet else { break };
                let outcome = match decode_agent_packet(&packet, protocol) {
                    Ok(request) => ingest
                        .deliver(Transport::Udp, Batch::new(Payload::Traces(request)))
                        .await
                        .map_err(|e| e.to_string()),
                    Err(e) => Err(e),
                };
                if let Err(e) = outcome {
                    ingest.count_refused_request(Transport::Udp, Signal::Traces);
                    log.lock().unwrap_or_else(|e| e.into_inner()).warn(what, &e);
                }
            }
        }));
    }
    tasks
}

/// `jaeger.api_v2.CollectorService` as a tower service tonic's router serves.
#[derive(Clone)]
struct CollectorService {
    ingest: Arc<Ingest>,
    max_recv_msg_size: usize,
}

impl NamedService for CollectorService {
    const NAME: &'static str = "jaeger.api_v2.CollectorService";
}

impl<B> Service<http::Request<B>> for CollectorService
where
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            if req.uri().path() != "/jaeger.api_v2.CollectorService/PostSpans" {
                return Ok(tonic::Status::unimplemented("unknown method").into_http());
            }
            let mut grpc =
                tonic::server::Grpc::new(RawRequestCodec::<proto::PostSpansResponse>::default())
                    .accept_compressed(tonic::codec::CompressionEncoding::Gzip)
                    .max_decoding_message_size(this.max_recv_msg_size);
            Ok(grpc.unary(PostSpans(this.ingest.clone()), req).await)
        })
    }
}

struct PostSpans(Arc<Ingest>);

impl UnaryService<Bytes> for PostSpans {
    type Response = proto::PostSpansResponse;
    type Future = BoxFuture<tonic::Response<proto::PostSpansResponse>, tonic::Status>;

    fn call(&mut self, request: tonic::Request<Bytes>) -> Self::Future {
        let ingest = self.0.clone();
        Box::pin(async move {
            let bytes = request.into_inner();
            ingest.count_bytes(Transport::Grpc, Signal::Traces, bytes.len());
            let outcome = async {
                let mut share = ingest.budget.share();
                share.take(bytes.len())?;
                let request = decode_grpc(&bytes).map_err(RequestError::Malformed)?;
                let delivered = ingest
                    .deliver(Transport::Grpc, Batch::new(Payload::Traces(request)))
                    .await;
                drop(share);
                delivered
            }
            .await;
            match outcome {
                Ok(()) => Ok(tonic::Response::new(proto::PostSpansResponse {})),
                Err(e) => {
                    ingest.count_refused_request(Transport::Grpc, Signal::Traces);
                    tracing::debug!(error = %e, "Jaeger gRPC request not taken");
                    Err(e.grpc_status())
                }
            }
        })
    }
}

fn serve_grpc(
    listener: tokio::net::TcpListener,
    tls: Option<weir_tls::ServerTls>,
    ingest: Arc<Ingest>,
    max_recv_msg_size: usize,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let router = tonic::transport::Server::builder().add_service(CollectorService {
        ingest,
        max_recv_msg_size,
    });
    tokio::spawn(async move {
        let served = match tls {
            Some(tls) => {
                router
                    .serve_with_incoming_shutdown(
                        tls.incoming(listener),
                        shutdown.cancelled_owned(),
                    )
                    .await
            }
            None => {
                let incoming =
                    tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
                router
                    .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned())
                    .await
            }
        };
        if let Err(e) = served {
            tracing::error!(error = %e, "Jaeger gRPC server failed");
        }
    })
}
