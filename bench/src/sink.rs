//! An OTLP gRPC sink that counts what arrives, exactly, and records end-to-end latency from
//! the generator's stamp. Messages are walked, not decoded (see `scan`).

use std::convert::Infallible;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hdrhistogram::Histogram;
use tokio::net::TcpListener;
use tokio_stream_shim::TcpIncoming;
use tonic::server::{Grpc, NamedService, UnaryService};
use tonic::{Request, Response, Status};

use weir_api::Signal;

use crate::raw::RawCodec;
use crate::scan::scan;

/// Wall-clock now in unix nanoseconds (the generator stamps with the same clock).
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// What the sink has seen so far.
#[derive(Default)]
pub struct SinkStats {
    /// Export requests received.
    pub requests: AtomicU64,
    /// Items (log records, spans and metric data points) received.
    pub items: AtomicU64,
    /// Bytes of message payload received.
    pub bytes: AtomicU64,
    /// Messages that did not walk as protobuf.
    pub malformed: AtomicU64,
    /// End-to-end latency in microseconds, per request whose first item carried a stamp.
    pub latency_us: Mutex<Option<Histogram<u64>>>,
    /// Milliseconds each Export waits before it is counted and answered: a slow upstream.
    /// 0 (the default) answers at once.
    pub delay_ms: AtomicU64,
}

impl SinkStats {
    fn record(&self, msg: &Bytes, signal: Signal) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(msg.len() as u64, Ordering::Relaxed);
        match scan(msg, signal) {
            Ok(r) => {
                self.items.fetch_add(r.items, Ordering::Relaxed);
                if let Some(stamp) = r.first_stamp {
                    let lat = now_ns().saturating_sub(stamp) / 1000;
                    let mut h = self.latency_us.lock().unwrap_or_else(|e| e.into_inner());
                    if let Some(h) = h.as_mut() {
                        h.saturating_record(lat.max(1));
                    }
                }
            }
            Err(_) => {
                self.malformed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Clears the latency histogram (after warm-up).
    pub fn reset_latency(&self) {
        let mut h = self.latency_us.lock().unwrap_or_else(|e| e.into_inner());
        *h = Histogram::new_with_bounds(1, 60_000_000, 3).ok();
    }
}

/// Marker for which OTLP service a sink endpoint implements.
pub trait OtlpService: Send + Sync + 'static {
    /// The gRPC service name.
    const NAME: &'static str;
    /// The signal its Export requests carry.
    const SIGNAL: Signal;
    /// An empty Export*ServiceResponse (all three encode to zero bytes).
    fn response() -> Bytes {
        Bytes::new()
    }
}
/// The logs service.
pub struct Logs;
/// The trace service.
pub struct Traces;
/// The metrics service (items are data points).
pub struct Metrics;
impl OtlpService for Logs {
    const NAME: &'static str = "opentelemetry.proto.collector.logs.v1.LogsService";
    const SIGNAL: Signal = Signal::Logs;
}
impl OtlpService for Traces {
    const NAME: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
    const SIGNAL: Signal = Signal::Traces;
}
impl OtlpService for Metrics {
    const NAME: &'static str = "opentelemetry.proto.collector.metrics.v1.MetricsService";
    const SIGNAL: Signal = Signal::Metrics;
}

/// One OTLP service of the sink, answering Export with an empty success response.
pub struct SinkService<K> {
    stats: Arc<SinkStats>,
    kind: PhantomData<K>,
}

impl<K> Clone for SinkService<K> {
    fn clone(&self) -> Self {
        SinkService {
            stats: self.stats.clone(),
            kind: PhantomData,
        }
    }
}

impl<K: OtlpService> NamedService for SinkService<K> {
    const NAME: &'static str = K::NAME;
}

struct Export<K>(Arc<SinkStats>, PhantomData<K>);

impl<K: OtlpService> UnaryService<Bytes> for Export<K> {
    type Response = Bytes;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Response<Bytes>, Status>> + Send>,
    >;
    fn call(&mut self, request: Request<Bytes>) -> Self::Future {
        let stats = self.0.clone();
        let delay = stats.delay_ms.load(Ordering::Relaxed);
        if delay == 0 {
            stats.record(request.get_ref(), K::SIGNAL);
            return Box::pin(std::future::ready(Ok(Response::new(K::response()))));
        }
        Box::pin(async move {
            tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
            stats.record(request.get_ref(), K::SIGNAL);
            Ok(Response::new(K::response()))
        })
    }
}

impl<K: OtlpService, B> tower::Service<http::Request<B>> for SinkService<K>
where
    B: http_body::Body + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Infallible>> + Send>,
    >;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let stats = self.stats.clone();
        Box::pin(async move {
            let mut grpc = Grpc::new(RawCodec)
                .accept_compressed(tonic::codec::CompressionEncoding::Gzip)
                .accept_compressed(tonic::codec::CompressionEncoding::Zstd)
                .max_decoding_message_size(256 << 20);
            Ok(grpc.unary(Export::<K>(stats, PhantomData), req).await)
        })
    }
}

/// A running sink.
pub struct Sink {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its counters.
    pub stats: Arc<SinkStats>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Sink {
    /// Starts a sink on `addr` (port 0 for any).
    pub async fn start(addr: SocketAddr) -> anyhow::Result<Sink> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let stats = Arc::new(SinkStats::default());
        stats.reset_latency();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let a = stats.clone();
        let router = tonic::transport::Server::builder()
            .add_service(SinkService::<Logs> {
                stats: a.clone(),
                kind: PhantomData,
            })
            .add_service(SinkService::<Traces> {
                stats: a.clone(),
                kind: PhantomData,
            })
            .add_service(SinkService::<Metrics> {
                stats: a,
                kind: PhantomData,
            });
        tokio::spawn(async move {
            let incoming = TcpIncoming::new(listener);
            let _ = router
                .serve_with_incoming_shutdown(incoming, async {
                    let _ = rx.await;
                })
                .await;
        });
        Ok(Sink {
            addr,
            stats,
            shutdown: Some(tx),
        })
    }

    /// Stops serving.
    pub fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Adapts a tokio listener into the stream of connections tonic serves.
mod tokio_stream_shim {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use tokio::net::{TcpListener, TcpStream};

    /// Accepted TCP connections with nodelay set.
    pub struct TcpIncoming(TcpListener);

    impl TcpIncoming {
        pub fn new(l: TcpListener) -> Self {
            TcpIncoming(l)
        }
    }

    impl futures_core::Stream for TcpIncoming {
        type Item = std::io::Result<TcpStream>;
        fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
            match self.0.poll_accept(cx) {
                Poll::Ready(Ok((s, _))) => {
                    let _ = s.set_nodelay(true);
                    Poll::Ready(Some(Ok(s)))
                }
                Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
                Poll::Pending => Poll::Pending,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::{Generator, Mix};
    use crate::raw::export_path;

    /// Each service of a running sink counts its own signal's items: 250 data points to the
    /// metrics service, 40 records to the logs service, over a real gRPC connection.
    #[tokio::test]
    async fn metrics_export_counts_points_over_grpc() {
        let sink = Sink::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", sink.addr))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut client = tonic::client::Grpc::new(channel);
        let mut g = Generator::new(4, Mix::default());
        for (signal, size) in [(Signal::Metrics, 250), (Signal::Logs, 40)] {
            let req = &g.pool(signal, 1, size)[0];
            client.ready().await.unwrap();
            client
                .unary(
                    tonic::Request::new(req.stamped(now_ns())),
                    http::uri::PathAndQuery::from_static(export_path(signal)),
                    RawCodec,
                )
                .await
                .unwrap();
        }
        assert_eq!(sink.stats.requests.load(Ordering::Relaxed), 2);
        assert_eq!(sink.stats.items.load(Ordering::Relaxed), 290);
        assert_eq!(sink.stats.malformed.load(Ordering::Relaxed), 0);
        let h = sink.stats.latency_us.lock().unwrap();
        assert_eq!(h.as_ref().map(|h| h.len()), Some(2));
    }
}
