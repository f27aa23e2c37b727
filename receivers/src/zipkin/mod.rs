//! The `zipkin` receiver: Zipkin spans over HTTP, converted to OTLP as the OpenTelemetry
//! Collector's receiver of the same name does.
//!
//! ```yaml
//! receivers:
//!   zipkin:
//!     endpoint: localhost:9411          # default
//!     parse_string_tags: false          # default; true: "42" -> int, "2.5" -> double, "true" -> bool
//!     max_request_body_size: 20971520   # default (bytes, after decompression too)
//!     include_metadata: false           # default
//!     tls: { cert_file: server.pem, key_file: server-key.pem }   # default: none
//! ```
//!
//! | request                                                       | read as            |
//! |---------------------------------------------------------------|--------------------|
//! | `POST /api/v2/spans`, `Content-Type: application/x-protobuf`  | v2 protobuf        |
//! | `POST /api/v2/spans`, any other type                          | v2 JSON            |
//! | `POST /api/v1/spans`, JSON                                    | v1 JSON            |
//! | `POST /api/v1/spans`, `Content-Type: application/x-thrift`    | 415: not supported |
//!
//! As in the Collector, any path that is not `/api/v1/spans` is read as v2. Bodies may be
//! `Content-Encoding: gzip`, `deflate`/`zlib` or `zstd`. Accepted requests are answered
//! `202 Accepted` once the pipeline has taken them; a body that cannot be read gets `400`
//! with a plain-text message naming the span and field; a body over
//! `max_request_body_size` gets `413`; a pipeline that cannot take data now gets `503` with
//! `Retry-After`. The translation rules are in [`model`].

pub mod decode;
pub mod model;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;
use weir_api::otlp::collector::trace::v1::ExportTraceServiceRequest;
use weir_api::{
    parse_component_config, Batch, BuildContext, BuildError, Component, ComponentId, ConfigErrors,
    Payload, ReceiverConfig, ReceiverFactory, Signal, SignalConsumers, SignalSet, StartError,
};

use crate::http_server::{self, respond};
use crate::otlp::body::{self, ContentEncoding};
use crate::otlp::ingest::{ByteBudget, Ingest, Transport};
use crate::otlp::status::RequestError;

/// Default `endpoint`.
pub const DEFAULT_ENDPOINT: &str = "localhost:9411";
/// Default `max_request_body_size`: 20 MiB.
pub const DEFAULT_MAX_REQUEST_BODY_SIZE: usize = 20 * 1024 * 1024;
/// Request bytes held at once across requests.
const MAX_IN_FLIGHT_BYTES: u64 = 64 * 1024 * 1024;

/// The `zipkin` receiver's config (the Collector's fields).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZipkinReceiverSettings {
    /// `host:port` to listen on. Default `localhost:9411`.
    #[serde(default = "default_endpoint")]
    pub endpoint: String,
    /// Read tag values that look like ints, doubles or booleans as such. Default `false`.
    #[serde(default)]
    pub parse_string_tags: bool,
    /// Largest body, compressed or not. Default 20 MiB.
    #[serde(default)]
    pub max_request_body_size: Option<usize>,
    /// Pass the request headers along with the batch. Default `false`.
    #[serde(default)]
    pub include_metadata: bool,
    /// TLS server settings (weir-tls). Default: none (plain HTTP).
    #[serde(default)]
    pub tls: Option<weir_tls::TlsServerSettings>,
}

fn default_endpoint() -> String {
    DEFAULT_ENDPOINT.to_string()
}

/// The factory of the `zipkin` receiver type.
#[derive(Debug, Default, Clone, Copy)]
pub struct ZipkinReceiverFactory;

impl ZipkinReceiverFactory {
    /// Parses and validates the config at YAML `path`, keeping its concrete type.
    pub fn parse_config(
        &self,
        config: &serde_json::Value,
        path: &str,
    ) -> Result<ZipkinReceiverConfig, ConfigErrors> {
        let settings: ZipkinReceiverSettings = parse_component_config(config, path)?;
        let mut errors = ConfigErrors::default();
        if settings.endpoint.trim().is_empty() {
            errors.push(format!("{path}.endpoint"), "must not be empty");
        }
        if settings.max_request_body_size == Some(0) {
            errors.push(
                format!("{path}.max_request_body_size"),
                "must be greater than 0",
            );
        }
        if let Some(tls) = &settings.tls {
            errors.0.extend(tls.validate(&format!("{path}.tls")).0);
        }
        errors.into_result(ZipkinReceiverConfig { settings })
    }
}

impl ReceiverFactory for ZipkinReceiverFactory {
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

/// A validated `zipkin` receiver config.
#[derive(Debug, Clone)]
pub struct ZipkinReceiverConfig {
    settings: ZipkinReceiverSettings,
}

impl ZipkinReceiverConfig {
    /// Builds the receiver with its concrete type.
    pub fn build_receiver(
        &self,
        ctx: &BuildContext,
        consumers: SignalConsumers,
    ) -> Arc<ZipkinReceiver> {
        let in_flight = ctx.telemetry.gauge(
            "weir_receiver_in_flight_bytes",
            "Request bytes (as received and decompressed) a receiver holds now, against its max_in_flight_mib",
            &[("receiver", ctx.id.to_string())],
        );
        let budget = ByteBudget::new(MAX_IN_FLIGHT_BYTES, in_flight);
        Arc::new(ZipkinReceiver {
            id: ctx.id.clone(),
            base_dir: ctx.base_dir.clone(),
            settings: self.settings.clone(),
            ingest: Arc::new(Ingest::new(&ctx.id, consumers, budget, &ctx.telemetry)),
            shutdown: CancellationToken::new(),
            server: Mutex::new(None),
            address: OnceLock::new(),
        })
    }
}

impl ReceiverConfig for ZipkinReceiverConfig {
    fn build(
        &self,
        ctx: &BuildContext,
        consumers: SignalConsumers,
    ) -> Result<Arc<dyn Component>, BuildError> {
        Ok(self.build_receiver(ctx, consumers))
    }
}

/// A running (or ready to start) `zipkin` receiver.
pub struct ZipkinReceiver {
    id: ComponentId,
    base_dir: std::path::PathBuf,
    settings: ZipkinReceiverSettings,
    ingest: Arc<Ingest>,
    shutdown: CancellationToken,
    server: Mutex<Option<tokio::task::JoinHandle<()>>>,
    address: OnceLock<SocketAddr>,
}

impl ZipkinReceiver {
    /// The address the server listens on, once started.
    pub fn address(&self) -> Option<SocketAddr> {
        self.address.get().copied()
    }
}

#[async_trait]
impl Component for ZipkinReceiver {
    async fn start(&self) -> Result<(), StartError> {
        let tls = http_server::load_tls(
            &self.id,
            &self.base_dir,
            &format!("receivers.{}.tls", self.id),
            self.settings.tls.as_ref(),
            weir_tls::Alpn::Http,
        )?;
        let listener = http_server::bind(&self.id, "Zipkin", &self.settings.endpoint).await?;
        if let Ok(a) = listener.local_addr() {
            let _ = self.address.set(a);
            tracing::info!(receiver = %self.id, address = %a, "Zipkin receiver listening");
        }
        let state = Arc::new(State {
            ingest: self.ingest.clone(),
            parse_string_tags: self.settings.parse_string_tags,
            max_body_size: self
                .settings
                .max_request_body_size
                .unwrap_or(DEFAULT_MAX_REQUEST_BODY_SIZE),
            include_metadata: self.settings.include_metadata,
        });
        let handler: http_server::Handler = Arc::new(move |req| {
            let state = state.clone();
            Box::pin(async move { handle(&state, req).await })
        });
        let server = http_server::serve(listener, tls, self.shutdown.clone(), handler, "Zipkin");
        *self.server.lock().unwrap_or_else(|e| e.into_inner()) = Some(server);
        Ok(())
    }

    async fn shutdown(&self) {
        self.shutdown.cancel();
        let server = self.server.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(server) = server {
            let _ = server.await;
        }
    }
}

struct State {
    ingest: Arc<Ingest>,
    parse_string_tags: bool,
    max_body_size: usize,
    include_metadata: bool,
}

/// The body formats of the receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// v1 JSON (`/api/v1/spans`).
    V1Json,
    /// v2 JSON.
    V2Json,
    /// v2 protobuf.
    V2Proto,
}

/// Decodes a body of `format` into OTLP.
pub fn decode_body(
    format: Format,
    body: &[u8],
    parse_string_tags: bool,
) -> Result<ExportTraceServiceRequest, String> {
    match format {
        Format::V1Json => decode::v1_json(body, parse_string_tags),
        Format::V2Json => decode::v2_json(body, parse_string_tags),
        Format::V2Proto => decode::v2_proto(body, parse_string_tags),
    }
}

fn text(status: StatusCode, message: impl Into<String>) -> Response<Full<Bytes>> {
    let mut m = message.into();
    m.push('\n');
    respond(status, "text/plain; charset=utf-8", m)
}

async fn handle(state: &State, req: Request<Incoming>) -> Response<Full<Bytes>> {
    if req.method() != Method::POST {
        let mut r = text(
            StatusCode::METHOD_NOT_ALLOWED,
            "405 method not allowed, supported: [POST]",
        );
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return r;
    }
    let v1 = req.uri().path().contains("api/v1/spans");
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
    let format =
        match (v1, media.as_str()) {
            (true, "application/x-thrift") => return text(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "415 Zipkin v1 Thrift is not supported by Weir; send v1 JSON or v2 JSON/protobuf",
            ),
            (true, _) => Format::V1Json,
            (false, "application/x-protobuf") => Format::V2Proto,
            (false, _) => Format::V2Json,
        };
    match receive(state, format, req).await {
        Ok(()) => respond(StatusCode::ACCEPTED, "text/plain; charset=utf-8", ""),
        Err(e) => {
            state
                .ingest
                .count_refused_request(Transport::Http, Signal::Traces);
            tracing::debug!(error = %e, "Zipkin request not taken");
            let mut r = text(e.http_status(), e.to_string());
            if let Some(secs) = e.retry_after_secs() {
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            r
        }
    }
}

async fn receive(
    state: &State,
    format: Format,
    req: Request<Incoming>,
) -> Result<(), RequestError> {
    let encoding = req
        .headers()
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("(not text)"))
        .map(|v| {
            if v.trim().eq_ignore_ascii_case("zlib") {
                "deflate"
            } else {
                v
            }
        });
    let encoding = ContentEncoding::parse(encoding).map_err(RequestError::Malformed)?;
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
    let parse_string_tags = state.parse_string_tags;
    let decoded = if bytes.len() <= 256 * 1024 {
        decode_body(format, &bytes, parse_string_tags)
    } else {
        tokio::task::spawn_blocking(move || decode_body(format, &bytes, parse_string_tags))
            .await
            .map_err(|e| RequestError::Malformed(format!("decoding the request failed: {e}")))?
    };
    let request = decoded.map_err(RequestError::Malformed)?;
    let mut batch = Batch::new(Payload::Traces(request));
    batch.context.metadata = metadata;
    let delivered = ingest.deliver(Transport::Http, batch).await;
    drop(share);
    delivered
}
