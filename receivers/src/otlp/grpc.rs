//! OTLP/gRPC: the `LogsService`, `TraceService` and `MetricsService` Export methods on a tonic
//! server.
//!
//! The services are served with a codec that hands over the request message as raw bytes
//! (after tonic's framing, size limit and gzip/zstd decompression) instead of the generated
//! servers' prost codec: the receiver decodes with [`weir_api::Batch::decode`], which keeps the bytes so
//! an unchanged batch is forwarded without being encoded again.
//!
//! Admission: the request body is wrapped so that every HTTP/2 data frame takes its bytes from
//! the in-flight budget as it arrives, before tonic buffers it; when the budget is spent the
//! call fails at once with RESOURCE_EXHAUSTED and RetryInfo. A compressed message also takes
//! its decompressed size before it is decoded. The share is held until the pipeline answered.

use std::convert::Infallible;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use bytes::{Buf, Bytes};
use tokio_util::sync::CancellationToken;
use tonic::codec::CompressionEncoding;
use tonic::codegen::{Body, BoxFuture, Context, Poll, Service, StdError};
use tonic::server::{NamedService, UnaryService};
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};
use weir_api::grpc_raw::RawRequestCodec;
use weir_api::otlp::collector::logs::v1::ExportLogsServiceResponse;
use weir_api::otlp::collector::metrics::v1::ExportMetricsServiceResponse;
use weir_api::otlp::collector::trace::v1::ExportTraceServiceResponse;
use weir_api::{ServerAuthenticator, Signal};

use super::config::GrpcSettings;
use super::ingest::{decode_body, BodyEncoding, BudgetShare, Ingest, Transport};

/// One OTLP export service: its gRPC name, signal and response message.
pub trait ExportService: Send + Sync + 'static {
    /// The fully qualified service name.
    const NAME: &'static str;
    /// The signal it carries.
    const SIGNAL: Signal;
    /// Its `Export*ServiceResponse`.
    type Response: prost::Message + Default + Send + 'static;
}

/// `opentelemetry.proto.collector.logs.v1.LogsService`.
pub struct LogsExport;
impl ExportService for LogsExport {
    const NAME: &'static str = "opentelemetry.proto.collector.logs.v1.LogsService";
    const SIGNAL: Signal = Signal::Logs;
    type Response = ExportLogsServiceResponse;
}

/// `opentelemetry.proto.collector.trace.v1.TraceService`.
pub struct TracesExport;
impl ExportService for TracesExport {
    const NAME: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
    const SIGNAL: Signal = Signal::Traces;
    type Response = ExportTraceServiceResponse;
}

/// `opentelemetry.proto.collector.metrics.v1.MetricsService`.
pub struct MetricsExport;
impl ExportService for MetricsExport {
    const NAME: &'static str = "opentelemetry.proto.collector.metrics.v1.MetricsService";
    const SIGNAL: Signal = Signal::Metrics;
    type Response = ExportMetricsServiceResponse;
}

/// What the services share.
struct GrpcState {
    ingest: Arc<Ingest>,
    /// `auth.authenticator`: asked before anything of a call is read.
    auth: Option<Arc<dyn ServerAuthenticator>>,
    include_metadata: bool,
    max_recv_msg_size: usize,
}

/// One export service as a tower service tonic's router can serve.
struct GrpcExportService<S> {
    state: Arc<GrpcState>,
    service: PhantomData<fn() -> S>,
}

impl<S> Clone for GrpcExportService<S> {
    fn clone(&self) -> Self {
        GrpcExportService {
            state: self.state.clone(),
            service: PhantomData,
        }
    }
}

impl<S: ExportService> NamedService for GrpcExportService<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> Service<http::Request<B>> for GrpcExportService<S>
where
    S: ExportService,
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let state = self.state.clone();
        let is_export = req
            .uri()
            .path()
            .strip_prefix('/')
            .and_then(|p| p.strip_prefix(S::NAME))
            == Some("/Export");
        if is_export {
            if let Some(auth) = &state.auth {
                if let Err(e) = auth.authenticate(req.headers()) {
                    // Answered before the body is read: nothing of the call is kept.
                    state
                        .ingest
                        .count_unauthenticated(Transport::Grpc, S::SIGNAL);
                    tracing::debug!(signal = %S::SIGNAL, error = %e, "OTLP/gRPC call not authenticated");
                    let status = Status::unauthenticated(e.0).into_http();
                    return Box::pin(async move { Ok(status) });
                }
            }
        }
        let share = Arc::new(Mutex::new(state.ingest.budget.share()));
        let compressed = req
            .headers()
            .get("grpc-encoding")
            .is_some_and(|v| v.as_bytes() != b"identity");
        let mut req = req.map(|body| BudgetedBody {
            inner: Box::pin(body),
            share: share.clone(),
            received_bytes: state.ingest.bytes_counter(Transport::Grpc, S::SIGNAL),
        });
        req.extensions_mut().insert(CallShare { share, compressed });
        Box::pin(async move {
            if !is_export {
                return Ok(Status::unimplemented("unknown method").into_http());
            }
            let mut grpc = tonic::server::Grpc::new(RawRequestCodec::<S::Response>::default())
                .accept_compressed(CompressionEncoding::Gzip)
                .accept_compressed(CompressionEncoding::Zstd)
                .send_compressed(CompressionEncoding::Gzip)
                .send_compressed(CompressionEncoding::Zstd)
                .max_decoding_message_size(state.max_recv_msg_size);
            let call = ExportCall::<S> {
                state,
                service: PhantomData,
            };
            Ok(grpc.unary(call, req).await)
        })
    }
}

/// One Export call.
struct ExportCall<S> {
    state: Arc<GrpcState>,
    service: PhantomData<fn() -> S>,
}

impl<S: ExportService> UnaryService<Bytes> for ExportCall<S> {
    type Response = S::Response;
    type Future = BoxFuture<Response<S::Response>, Status>;

    fn call(&mut self, request: Request<Bytes>) -> Self::Future {
        let state = self.state.clone();
        Box::pin(async move {
            let signal = S::SIGNAL;
            let ingest = &state.ingest;
            let metadata = state
                .include_metadata
                .then(|| Arc::new(metadata_pairs(request.metadata())));
            let call_share = request.extensions().get::<CallShare>().cloned();
            let bytes = request.into_inner();
            let outcome = async {
                if let Some(CallShare {
                    share,
                    compressed: true,
                }) = &call_share
                {
                    // The frames' budget covered the compressed bytes; the decompressed
                    // message is held too.
                    lock(share).take(bytes.len())?;
                }
                let mut batch = decode_body(signal, BodyEncoding::Protobuf, bytes).await?;
                batch.context.metadata = metadata;
                ingest.deliver(Transport::Grpc, batch).await
            }
            .await;
            drop(call_share);
            match outcome {
                Ok(()) => Ok(Response::new(S::Response::default())),
                Err(e) => {
                    ingest.count_refused_request(Transport::Grpc, signal);
                    tracing::debug!(signal = %signal, error = %e, "OTLP/gRPC request not taken");
                    Err(e.grpc_status())
                }
            }
        })
    }
}

/// The budget share of one call, reachable from the call (request extensions) and from the
/// body that fills it.
#[derive(Clone)]
struct CallShare {
    share: Arc<Mutex<BudgetShare>>,
    compressed: bool,
}

fn lock(share: &Mutex<BudgetShare>) -> std::sync::MutexGuard<'_, BudgetShare> {
    share.lock().unwrap_or_else(|e| e.into_inner())
}

/// A request body whose data frames take their bytes from the in-flight budget as they
/// arrive; when the budget is spent it fails with the RESOURCE_EXHAUSTED status tonic then
/// answers with.
struct BudgetedBody<B> {
    inner: Pin<Box<B>>,
    share: Arc<Mutex<BudgetShare>>,
    /// `weir_receiver_request_bytes` of the signal: bytes as they came over the wire.
    received_bytes: Option<weir_api::Counter>,
}

impl<B> Body for BudgetedBody<B>
where
    B: Body,
    B::Error: Into<StdError>,
{
    type Data = B::Data;
    type Error = StdError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<B::Data>, StdError>>> {
        let this = self.get_mut();
        match this.inner.as_mut().poll_frame(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    if let Some(c) = &this.received_bytes {
                        c.inc_by(data.remaining() as u64);
                    }
                    if let Err(e) = lock(&this.share).take(data.remaining()) {
                        return Poll::Ready(Some(Err(Box::new(e.grpc_status()))));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// The request's metadata as lower-case `(key, value)` pairs (binary `-bin` entries and
/// values that are not visible ASCII are left out).
fn metadata_pairs(metadata: &tonic::metadata::MetadataMap) -> Vec<(String, String)> {
    metadata
        .clone()
        .into_headers()
        .iter()
        .filter(|(k, _)| !k.as_str().ends_with("-bin"))
        .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
        .collect()
}

/// Serves the export services of the signals some pipeline takes (the others answer
/// UNIMPLEMENTED, as in the collector) until `shutdown`, then lets open calls finish.
pub fn serve(
    listener: super::Listener,
    settings: &GrpcSettings,
    ingest: Arc<Ingest>,
    shutdown: CancellationToken,
    tls: Option<weir_tls::ServerTls>,
    auth: Option<Arc<dyn ServerAuthenticator>>,
) -> tokio::task::JoinHandle<()> {
    let state = Arc::new(GrpcState {
        ingest: ingest.clone(),
        auth,
        include_metadata: settings.include_metadata,
        max_recv_msg_size: settings.max_recv_msg_size(),
    });
    let service = |signal: Signal| ingest.serves(signal).then_some(());
    let mut builder =
        // 0 means "no limit" in the collector; for HTTP/2 it would mean no stream at all.
        tonic::transport::Server::builder()
            .max_concurrent_streams(settings.max_concurrent_streams.filter(|n| *n > 0));
    if let Some(sp) = settings
        .keepalive
        .as_ref()
        .and_then(|k| k.server_parameters.as_ref())
    {
        builder = builder
            .http2_keepalive_interval(sp.time)
            .http2_keepalive_timeout(sp.timeout);
        if let Some(age) = sp.max_connection_age {
            builder = builder.max_connection_age(age);
        }
        if let Some(grace) = sp.max_connection_age_grace {
            builder = builder.max_connection_age_grace(grace);
        }
    }
    let router = builder
        .add_optional_service(service(Signal::Logs).map(|()| export_service::<LogsExport>(&state)))
        .add_optional_service(
            service(Signal::Traces).map(|()| export_service::<TracesExport>(&state)),
        )
        .add_optional_service(
            service(Signal::Metrics).map(|()| export_service::<MetricsExport>(&state)),
        );
    let (listener, socket) = match listener {
        super::Listener::Tcp(l) => (Some(l), None),
        super::Listener::Unix(l, path) => (None, Some((l, path))),
    };
    let local: Option<SocketAddr> = listener.as_ref().and_then(|l| l.local_addr().ok());
    tokio::spawn(async move {
        let served = match (listener, socket, tls) {
            // Handshakes run beside the accept loop; a failed one drops that connection only.
            (Some(listener), _, Some(tls)) => {
                router
                    .serve_with_incoming_shutdown(
                        tls.incoming(listener),
                        shutdown.cancelled_owned(),
                    )
                    .await
            }
            (Some(listener), _, None) => {
                let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
                router
                    .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned())
                    .await
            }
            (None, Some((unix, path)), _) => {
                let incoming = futures::stream::unfold(unix, |l| async move {
                    let next = l.accept().await.map(|(stream, _)| stream);
                    Some((next, l))
                });
                let served = router
                    .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned())
                    .await;
                let _ = std::fs::remove_file(&path);
                served
            }
            (None, None, _) => Ok(()),
        };
        if let Err(e) = served {
            tracing::error!(address = ?local, error = %e, "OTLP/gRPC server stopped");
        }
    })
}

fn export_service<S: ExportService>(state: &Arc<GrpcState>) -> GrpcExportService<S> {
    GrpcExportService {
        state: state.clone(),
        service: PhantomData,
    }
}
