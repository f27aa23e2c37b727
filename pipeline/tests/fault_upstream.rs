//! Fault: the upstream misbehaves while a client sends at a steady pace through the real
//! `weir`: it is down for a while, it is slow, or it answers 503/429 with `Retry-After`.
//! The client retries what weir refuses (as OTLP clients do); every record it got OK for
//! arrives upstream exactly once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use prost::Message;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

type Counts = Arc<Mutex<BTreeMap<String, u32>>>;

fn count_bodies(counts: &Counts, req: &ExportLogsServiceRequest) {
    let mut counts = counts.lock().unwrap();
    for rl in &req.resource_logs {
        for sl in &rl.scope_logs {
            for lr in &sl.log_records {
                if let Some(any_value::Value::StringValue(s)) =
                    lr.body.as_ref().and_then(|b| b.value.as_ref())
                {
                    *counts.entry(s.clone()).or_default() += 1;
                }
            }
        }
    }
}

/// A gRPC upstream that counts log bodies, after an optional delay per request.
#[derive(Clone, Default)]
struct GrpcSink {
    counts: Counts,
    delay: Duration,
}

#[tonic::async_trait]
impl LogsService for GrpcSink {
    async fn export(
        &self,
        r: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        tokio::time::sleep(self.delay).await;
        count_bodies(&self.counts, r.get_ref());
        Ok(tonic::Response::new(Default::default()))
    }
}

impl GrpcSink {
    fn serve(&self, port: u16) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(
                    LogsServiceServer::new(me)
                        .accept_compressed(tonic::codec::CompressionEncoding::Gzip),
                )
                .serve(([127, 0, 0, 1], port).into())
                .await
                .unwrap();
        })
    }
}

fn log_request(body: &str) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![LogRecord {
                    body: Some(AnyValue {
                        value: Some(any_value::Value::StringValue(body.to_string())),
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// Weir: OTLP/gRPC in, no processor, out through exporter `id` (defined in `exporter_yaml`).
fn start(dir: &Path, exporter_yaml: &str, id: &str) -> (Child, Ports) {
    let ports = Ports::pick();
    let config = format!(
        "receivers:
  otlp:
    protocols:
      grpc: {{endpoint: '127.0.0.1:{grpc}'}}
exporters:
{exporter_yaml}
extensions:
  health_check: {{endpoint: '127.0.0.1:{health}'}}
service:
  extensions: [health_check]
  telemetry:
    metrics: {{address: '127.0.0.1:{metrics}'}}
  pipelines:
    logs: {{receivers: [otlp], exporters: [{id}]}}
",
        grpc = ports.grpc,
        health = ports.health,
        metrics = ports.metrics,
    );
    let config = write(dir, "weir.yaml", &config);
    let weir = spawn(dir, &config, &[]);
    assert!(
        wait_for_status(ports.health, "/", 200, Duration::from_secs(20)).is_some(),
        "weir did not become healthy: {}",
        log_of(dir)
    );
    (weir, ports)
}

/// Sends `n` one-record requests named `{prefix}-{i}`, one every `pace`, retrying each on
/// UNAVAILABLE / RESOURCE_EXHAUSTED for up to 20 s. Returns the bodies that got OK and the
/// number of refusals.
async fn steady_client(port: u16, prefix: &str, n: usize, pace: Duration) -> (Vec<String>, usize) {
    let mut client = LogsServiceClient::connect(format!("http://127.0.0.1:{port}"))
        .await
        .unwrap();
    let (mut acked, mut refusals) = (Vec::new(), 0);
    for i in 0..n {
        let body = format!("{prefix}-{i}");
        let give_up = Instant::now() + Duration::from_secs(20);
        loop {
            match client.export(log_request(&body)).await {
                Ok(_) => {
                    acked.push(body);
                    break;
                }
                Err(s)
                    if matches!(
                        s.code(),
                        tonic::Code::Unavailable | tonic::Code::ResourceExhausted
                    ) && Instant::now() < give_up =>
                {
                    refusals += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(s) => panic!("{body}: {s}"),
            }
        }
        tokio::time::sleep(pace).await;
    }
    (acked, refusals)
}

/// Waits until `counts` holds `want` records in all (or 20 s), then a little longer for
/// duplicates to show.
async fn settle(counts: &Counts, want: u32) -> BTreeMap<String, u32> {
    let start = Instant::now();
    while counts.lock().unwrap().values().sum::<u32>() < want
        && start.elapsed() < Duration::from_secs(20)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    counts.lock().unwrap().clone()
}

fn assert_exactly_once(got: &BTreeMap<String, u32>, acked: &[String], dir: &Path) {
    for body in acked {
        assert_eq!(
            got.get(body),
            Some(&1),
            "{body} (got {} records in all); weir log:\n{}",
            got.len(),
            log_of(dir)
        );
    }
    assert_eq!(got.len(), acked.len(), "records that no client got OK for");
}

fn stop(mut weir: Child, dir: &Path) {
    assert!(
        weir.try_wait().unwrap().is_none(),
        "weir exited: {}",
        log_of(dir)
    );
    sigterm(&weir);
    assert!(wait_exit(&mut weir, Duration::from_secs(15)).is_some());
}

fn grpc_exporter(upstream: u16, extra: &str) -> String {
    format!(
        "  otlp/out:
    endpoint: 127.0.0.1:{upstream}
    tls: {{insecure: true}}
    retry_on_failure: {{initial_interval: 100ms, max_interval: 400ms, max_elapsed_time: 60s}}
{extra}"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_down_for_a_while_under_steady_load_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = free_port();
    let exporter = grpc_exporter(upstream, "    sending_queue: {queue_size: 40}\n");
    let (weir, ports) = start(dir.path(), &exporter, "otlp/out");
    // 120 requests over ~3 s; the upstream is down for the first 1.5 s, during which the
    // 40-request queue fills and weir refuses the rest with UNAVAILABLE until it drains.
    let client = tokio::spawn(steady_client(
        ports.grpc,
        "down",
        120,
        Duration::from_millis(25),
    ));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let sink = GrpcSink::default();
    let server = sink.serve(upstream);
    let (acked, refusals) = client.await.unwrap();
    assert_eq!(
        acked.len(),
        120,
        "the client retries until it gets OK for each"
    );
    assert!(
        refusals > 0,
        "the full queue never refused: the fault did not happen"
    );
    let got = settle(&sink.counts, 120).await;
    assert_exactly_once(&got, &acked, dir.path());
    stop(weir, dir.path());
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_upstream_gets_everything_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = free_port();
    let sink = GrpcSink {
        delay: Duration::from_millis(300),
        ..Default::default()
    };
    let server = sink.serve(upstream);
    let exporter = grpc_exporter(
        upstream,
        "    timeout: 5s\n    sending_queue: {queue_size: 20, num_consumers: 4}\n",
    );
    let (weir, ports) = start(dir.path(), &exporter, "otlp/out");
    // 60 requests in ~1.2 s against an upstream that takes 300 ms for each with 4 senders:
    // the queue fills and the client is told to come back.
    let (acked, refusals) = steady_client(ports.grpc, "slow", 60, Duration::from_millis(20)).await;
    assert_eq!(acked.len(), 60);
    assert!(
        refusals > 0,
        "the full queue never refused: the upstream was not slow enough"
    );
    let got = settle(&sink.counts, 60).await;
    assert_exactly_once(&got, &acked, dir.path());
    stop(weir, dir.path());
    server.abort();
}

/// An OTLP/HTTP upstream that answers the first `refusals` requests with 503 (odd) or 429
/// (even), each with `Retry-After: 1`, and then 200; it records when each request came.
async fn refusing_http_upstream(
    port: u16,
    refusals: usize,
    counts: Counts,
    arrivals: Arc<Mutex<Vec<(Instant, u16)>>>,
) {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let served = Arc::new(Mutex::new(0usize));
    loop {
        let (mut s, _) = listener.accept().await.unwrap();
        let (counts, arrivals, served) = (counts.clone(), arrivals.clone(), served.clone());
        tokio::spawn(async move {
            let mut buf = Vec::new();
            loop {
                // One request: headers, then Content-Length bytes of body.
                let head_end = loop {
                    if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break p + 4;
                    }
                    let mut chunk = [0u8; 8192];
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
                let header = |name: &str| {
                    head.lines().find_map(|l| {
                        l.strip_prefix(&format!("{name}:"))
                            .map(|v| v.trim().to_string())
                    })
                };
                let len: usize = header("content-length")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                while buf.len() < head_end + len {
                    let mut chunk = [0u8; 8192];
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let body: Vec<u8> = buf.drain(..head_end + len).skip(head_end).collect();
                let nth = {
                    let mut served = served.lock().unwrap();
                    *served += 1;
                    *served
                };
                let status = if nth <= refusals {
                    if nth % 2 == 1 {
                        503
                    } else {
                        429
                    }
                } else {
                    200
                };
                arrivals.lock().unwrap().push((Instant::now(), status));
                let answer = if status == 200 {
                    let body = if header("content-encoding").as_deref() == Some("gzip") {
                        let mut out = Vec::new();
                        flate2::read::GzDecoder::new(&body[..])
                            .read_to_end(&mut out)
                            .unwrap();
                        out
                    } else {
                        body
                    };
                    count_bodies(
                        &counts,
                        &ExportLogsServiceRequest::decode(&body[..]).unwrap(),
                    );
                    let resp = ExportLogsServiceResponse::default().encode_to_vec();
                    let mut a = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: {}\r\n\r\n",
                        resp.len()
                    )
                    .into_bytes();
                    a.extend_from_slice(&resp);
                    a
                } else {
                    let reason = if status == 503 {
                        "Service Unavailable"
                    } else {
                        "Too Many Requests"
                    };
                    format!(
                        "HTTP/1.1 {status} {reason}\r\nRetry-After: 1\r\nContent-Length: 0\r\n\r\n"
                    )
                    .into_bytes()
                };
                if s.write_all(&answer).await.is_err() {
                    return;
                }
            }
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_503_and_429_with_retry_after_are_waited_out_then_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = free_port();
    let counts = Counts::default();
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    let server = tokio::spawn(refusing_http_upstream(
        upstream,
        3,
        counts.clone(),
        arrivals.clone(),
    ));
    let exporter = format!(
        "  otlp_http/out:
    endpoint: http://127.0.0.1:{upstream}
    retry_on_failure: {{initial_interval: 50ms, max_interval: 100ms, max_elapsed_time: 60s}}
    sending_queue: {{num_consumers: 1}}
"
    );
    let (weir, ports) = start(dir.path(), &exporter, "otlp_http/out");
    let (acked, _) = steady_client(ports.grpc, "retry", 10, Duration::from_millis(10)).await;
    assert_eq!(acked.len(), 10);
    let got = settle(&counts, 10).await;
    assert_exactly_once(&got, &acked, dir.path());
    let arrivals = arrivals.lock().unwrap().clone();
    let statuses: Vec<u16> = arrivals.iter().take(4).map(|a| a.1).collect();
    assert_eq!(statuses, vec![503, 429, 503, 200]);
    // Retry-After: 1 is honoured although the configured backoff is 50-100 ms.
    for w in arrivals[..4].windows(2) {
        let gap = w[1].0 - w[0].0;
        assert!(gap >= Duration::from_millis(900), "retried after {gap:?}");
    }
    stop(weir, dir.path());
    server.abort();
}
