//! OTLP/HTTP: `POST` of protobuf or JSON export requests to the per-signal paths, answered
//! with the collector's status codes.
//!
//! | situation                                   | answer                                  |
//! |---------------------------------------------|-----------------------------------------|
//! | accepted downstream (or 0 items)            | 200, `Export*ServiceResponse`           |
//! | `auth.authenticator` refuses the credentials | 401, `WWW-Authenticate: Bearer`, reason |
//! | unknown path, or a signal no pipeline takes | 404                                     |
//! | method other than POST                      | 405, `Allow: POST`                      |
//! | Content-Type not protobuf or JSON           | 415                                     |
//! | body not the signal's export request        | 400, `google.rpc.Status`                |
//! | body (or decompressed body) over the limit  | 413, `google.rpc.Status`                |
//! | in-flight budget spent, pipeline refuses    | 503, `Retry-After`, `google.rpc.Status` |
//! | pipeline rejects the data                   | 400, `google.rpc.Status`                |
//!
//! Answers with a body use the request's encoding (protobuf or JSON).

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use prost::Message;
use tokio_util::sync::CancellationToken;
use weir_api::otlp::collector::logs::v1::ExportLogsServiceResponse;
use weir_api::otlp::collector::metrics::v1::ExportMetricsServiceResponse;
use weir_api::otlp::collector::trace::v1::ExportTraceServiceResponse;
use weir_api::{ServerAuthenticator, Signal};

use super::body::{self, ContentEncoding};
use super::config::{sanitize_url_path, HttpSettings};
use super::cors::CorsPolicy;
use super::ingest::{decode_body, BodyEncoding, Ingest, Transport};
use super::status::{rpc_status_json, RequestError};

const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";

/// The body encoding a `Content-Type` value names: the media type, case-insensitive,
/// parameters ignored.
fn encoding_of_content_type(value: Option<&HeaderValue>) -> Option<BodyEncoding> {
    let value = value?.to_str().ok()?;
    let media = value.split(';').next().unwrap_or("").trim();
    if media.eq_ignore_ascii_case(PROTOBUF) {
        Some(BodyEncoding::Protobuf)
    } else if media.eq_ignore_ascii_case(JSON) {
        Some(BodyEncoding::Json)
    } else {
        None
    }
}

/// The `Content-Type` of an answer in `encoding`.
fn content_type_of(encoding: BodyEncoding) -> &'static str {
    match encoding {
        BodyEncoding::Protobuf => PROTOBUF,
        BodyEncoding::Json => JSON,
    }
}

/// What the connection handlers share.
struct HttpState {
    ingest: Arc<Ingest>,
    /// `auth.authenticator`: asked before anything of a request is read.
    auth: Option<Arc<dyn ServerAuthenticator>>,
    routes: [(String, Signal); 3],
    max_body_size: usize,
    read_timeout: Option<std::time::Duration>,
    include_metadata: bool,
    cors: Option<CorsPolicy>,
}

impl HttpState {
    fn signal_for(&self, path: &str) -> Option<Signal> {
        self.routes.iter().find(|(p, _)| p == path).map(|(_, s)| *s)
    }
}

/// Serves OTLP/HTTP on `listener` until `shutdown`, then stops accepting and lets open
/// requests finish.
pub fn serve(
    listener: super::Listener,
    settings: &HttpSettings,
    ingest: Arc<Ingest>,
    shutdown: CancellationToken,
    tls: Option<weir_tls::ServerTls>,
    auth: Option<Arc<dyn ServerAuthenticator>>,
) -> tokio::task::JoinHandle<()> {
    let state = Arc::new(HttpState {
        ingest,
        auth,
        routes: [
            (sanitize_url_path(&settings.traces_url_path), Signal::Traces),
            (
                sanitize_url_path(&settings.metrics_url_path),
                Signal::Metrics,
            ),
            (sanitize_url_path(&settings.logs_url_path), Signal::Logs),
        ],
        max_body_size: settings.max_body_size(),
        read_timeout: settings.read_timeout.filter(|d| !d.is_zero()),
        include_metadata: settings.include_metadata,
        cors: settings.cors.as_ref().and_then(CorsPolicy::new),
    });
    let header_timeout = settings.read_header_timeout.filter(|d| !d.is_zero());
    tokio::spawn(async move {
        let graceful = GracefulShutdown::new();
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(header_timeout);
        builder.http2().timer(TokioTimer::new());
        loop {
            let accepted = tokio::select! {
                accepted = accept(&listener) => accepted,
                () = shutdown.cancelled() => break,
            };
            let stream = match accepted {
                Ok(stream) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: pause instead of spinning.
                    tracing::warn!(error = %e, "OTLP/HTTP accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            let state = state.clone();
            let service = service_fn(move |req: Request<Incoming>| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(handle(&state, req).await) }
            });
            if let Some(tls) = &tls {
                // The handshake runs in the connection's task: a slow client must not hold
                // up the accept loop. It is bounded by weir-tls (10 s).
                let (tls, builder, watcher) = (tls.clone(), builder.clone(), graceful.watcher());
                tokio::spawn(async move {
                    let stream = match tls.accept(stream).await {
                        Ok(s) => s,
                        Err(e) => {
                            tracing::debug!(error = %e, "OTLP/HTTP TLS handshake failed");
                            return;
                        }
                    };
                    let connection = builder.serve_connection(TokioIo::new(stream), service);
                    if let Err(e) = watcher.watch(connection.into_owned()).await {
                        tracing::debug!(error = %e, "OTLP/HTTP connection ended with an error");
                    }
                });
                continue;
            }
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            let connection = graceful.watch(connection.into_owned());
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!(error = %e, "OTLP/HTTP connection ended with an error");
                }
            });
        }
        if let super::Listener::Unix(_, path) = &listener {
            let _ = std::fs::remove_file(path);
        }
        drop(listener);
        graceful.shutdown().await;
    })
}

/// A connection's byte stream, TCP or Unix socket.
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin> Io for T {}

async fn accept(listener: &super::Listener) -> std::io::Result<Box<dyn Io>> {
    match listener {
        super::Listener::Tcp(l) => {
            let (stream, _) = l.accept().await?;
            let _ = stream.set_nodelay(true);
            Ok(Box::new(stream))
        }
        super::Listener::Unix(l, _) => {
            let (stream, _) = l.accept().await?;
            Ok(Box::new(stream))
        }
    }
}

/// Answers one request (CORS around the OTLP handling).
async fn handle(state: &HttpState, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let Some(cors) = &state.cors else {
        return export(state, req).await;
    };
    if CorsPolicy::is_preflight(req.method(), req.headers()) {
        return cors.preflight(req.headers());
    }
    let origin = cors.allowed_origin(req.headers()).cloned();
    let mut response = export(state, req).await;
    if let Some(origin) = origin {
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        if let Some(exposed) = cors.exposed_headers() {
            headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, exposed.clone());
        }
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
    }
    response
}

async fn export(state: &HttpState, req: Request<Incoming>) -> Response<Full<Bytes>> {
    if let Some(auth) = &state.auth {
        if let Err(e) = auth.authenticate(req.headers()) {
            // Answered before the body is read: nothing of the request is kept.
            if let Some(signal) = state.signal_for(req.uri().path()) {
                state.ingest.count_unauthenticated(Transport::Http, signal);
            }
            tracing::debug!(path = %req.uri().path(), error = %e, "OTLP/HTTP request not authenticated");
            return unauthorized(&e.0);
        }
    }
    let Some(signal) = state
        .signal_for(req.uri().path())
        .filter(|s| state.ingest.serves(*s))
    else {
        return text(StatusCode::NOT_FOUND, "404 page not found");
    };
    if req.method() != Method::POST {
        let mut response = text(
            StatusCode::METHOD_NOT_ALLOWED,
            "405 method not allowed, supported: [POST]",
        );
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    let Some(encoding) = encoding_of_content_type(req.headers().get(header::CONTENT_TYPE)) else {
        return text(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "415 unsupported media type, supported: [application/json, application/x-protobuf]",
        );
    };
    let ingest = &state.ingest;
    match receive(state, signal, encoding, req).await {
        Ok(()) => ok_response(signal, encoding),
        Err(e) => {
            ingest.count_refused_request(Transport::Http, signal);
            tracing::debug!(signal = %signal, error = %e, "OTLP/HTTP request not taken");
            error_response(&e, encoding)
        }
    }
}

/// Reads, decompresses, decodes and delivers one export request.
async fn receive(
    state: &HttpState,
    signal: Signal,
    encoding: BodyEncoding,
    req: Request<Incoming>,
) -> Result<(), RequestError> {
    let ingest = &state.ingest;
    let content_encoding = ContentEncoding::parse(
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
    let metadata = state
        .include_metadata
        .then(|| Arc::new(header_pairs(req.headers())));
    let limit = state.max_body_size;
    let mut share = ingest.budget.share();
    let reading = body::read_limited(req.into_body(), content_length, limit, &mut share);
    let raw = match state.read_timeout {
        None => reading.await?,
        Some(t) => tokio::time::timeout(t, reading).await.map_err(|_| {
            RequestError::TimedOut(format!(
                "the request body did not arrive within read_timeout ({t:?})"
            ))
        })??,
    };
    ingest.count_bytes(Transport::Http, signal, raw.len());
    let (bytes, share) = body::decompress(content_encoding, raw, limit, share).await?;
    let mut batch = decode_body(signal, encoding, bytes).await?;
    batch.context.metadata = metadata;
    let delivered = ingest.deliver(Transport::Http, batch).await;
    drop(share);
    delivered
}

/// The request headers as `(lower-case name, value)` pairs (values that are not visible
/// ASCII are left out).
fn header_pairs(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
        .collect()
}

fn ok_response(signal: Signal, encoding: BodyEncoding) -> Response<Full<Bytes>> {
    let body = match encoding {
        // An empty response message: no partial success to report.
        BodyEncoding::Json => b"{}".to_vec(),
        BodyEncoding::Protobuf => match signal {
            Signal::Logs => ExportLogsServiceResponse::default().encode_to_vec(),
            Signal::Traces => ExportTraceServiceResponse::default().encode_to_vec(),
            Signal::Metrics => ExportMetricsServiceResponse::default().encode_to_vec(),
        },
    };
    with_body(StatusCode::OK, content_type_of(encoding), body)
}

fn error_response(e: &RequestError, encoding: BodyEncoding) -> Response<Full<Bytes>> {
    let status = e.rpc_status();
    let body = match encoding {
        BodyEncoding::Protobuf => status.encode_to_vec(),
        BodyEncoding::Json => rpc_status_json(&status),
    };
    let mut response = with_body(e.http_status(), content_type_of(encoding), body);
    if let Some(secs) = e.retry_after_secs() {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

/// 401 with the authenticator's reason and `WWW-Authenticate: Bearer`.
fn unauthorized(reason: &str) -> Response<Full<Bytes>> {
    let mut response = with_body(
        StatusCode::UNAUTHORIZED,
        "text/plain; charset=utf-8",
        format!("401 unauthorized: {reason}").into_bytes(),
    );
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

fn text(status: StatusCode, message: &'static str) -> Response<Full<Bytes>> {
    with_body(
        status,
        "text/plain; charset=utf-8",
        message.as_bytes().to_vec(),
    )
}

fn with_body(
    status: StatusCode,
    content_type: &'static str,
    body: Vec<u8>,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
