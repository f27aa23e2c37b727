//! A recording OTLP/gRPC upstream for the `otlp` exporter tests: every accepted request with
//! its metadata, scripted failures and partial successes, and the retry settings and
//! record-sequence helpers the tests read it with.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tonic::codec::CompressionEncoding;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};
use weir_api::otlp::collector::logs::v1::logs_service_server::{LogsService, LogsServiceServer};
use weir_api::otlp::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use weir_api::otlp::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use weir_api::otlp::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use weir_api::otlp::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use weir_api::otlp::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use weir_api::Payload;

/// What the test upstream does with the next call.
pub enum Reply {
    Fail(Status),
    PartiallyAccept(i64, &'static str),
}

/// An accepted request and its metadata.
pub type Received = (Payload, Vec<(String, String)>);

/// A recording OTLP server: every accepted request with its metadata, scripted failures.
#[derive(Clone, Default)]
pub struct Upstream {
    pub received: Arc<Mutex<Vec<Received>>>,
    pub replies: Arc<Mutex<VecDeque<Reply>>>,
    pub calls: Arc<AtomicUsize>,
    pub delay: Duration,
}

impl Upstream {
    pub fn script(self, replies: Vec<Reply>) -> Self {
        *self.replies.lock().unwrap() = replies.into();
        self
    }

    pub async fn handle(
        &self,
        payload: Payload,
        metadata: &tonic::metadata::MetadataMap,
    ) -> Result<Option<(i64, &'static str)>, Status> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        let reply = self.replies.lock().unwrap().pop_front();
        if let Some(Reply::Fail(status)) = reply {
            return Err(status);
        }
        let headers = metadata
            .clone()
            .into_headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        self.received.lock().unwrap().push((payload, headers));
        Ok(match reply {
            Some(Reply::PartiallyAccept(n, m)) => Some((n, m)),
            _ => None,
        })
    }

    pub fn payloads(&self) -> Vec<Payload> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .map(|(p, _)| p.clone())
            .collect()
    }

    pub fn items(&self) -> usize {
        self.received
            .lock()
            .unwrap()
            .iter()
            .map(|(p, _)| p.item_count())
            .sum()
    }

    pub async fn serve_on(&self, listener: tokio::net::TcpListener) -> tokio::task::JoinHandle<()> {
        let logs = LogsServiceServer::new(self.clone())
            .accept_compressed(CompressionEncoding::Gzip)
            .accept_compressed(CompressionEncoding::Zstd);
        let traces = TraceServiceServer::new(self.clone())
            .accept_compressed(CompressionEncoding::Gzip)
            .accept_compressed(CompressionEncoding::Zstd);
        let metrics = MetricsServiceServer::new(self.clone())
            .accept_compressed(CompressionEncoding::Gzip)
            .accept_compressed(CompressionEncoding::Zstd);
        tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(logs)
                .add_service(traces)
                .add_service(metrics)
                .serve_with_incoming(TcpIncoming::from(listener))
                .await
                .unwrap();
        })
    }

    pub async fn serve(&self) -> (SocketAddr, tokio::task::JoinHandle<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        (addr, self.serve_on(listener).await)
    }
}

#[async_trait::async_trait]
impl LogsService for Upstream {
    async fn export(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        let metadata = request.metadata().clone();
        let partial = self
            .handle(Payload::Logs(request.into_inner()), &metadata)
            .await?;
        Ok(Response::new(ExportLogsServiceResponse {
            partial_success: partial.map(|(n, m)| ExportLogsPartialSuccess {
                rejected_log_records: n,
                error_message: m.to_string(),
            }),
        }))
    }
}

#[async_trait::async_trait]
impl TraceService for Upstream {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let metadata = request.metadata().clone();
        self.handle(Payload::Traces(request.into_inner()), &metadata)
            .await?;
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
}

#[async_trait::async_trait]
impl MetricsService for Upstream {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        let metadata = request.metadata().clone();
        self.handle(Payload::Metrics(request.into_inner()), &metadata)
            .await?;
        Ok(Response::new(ExportMetricsServiceResponse::default()))
    }
}

pub fn fast_retry() -> serde_json::Value {
    serde_json::json!({"initial_interval": "50ms", "max_interval": "200ms", "max_elapsed_time": "10s"})
}
