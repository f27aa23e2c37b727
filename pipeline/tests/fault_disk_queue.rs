//! Fault: weir is killed with `kill -9` while its upstream is down, and restarted on the
//! same disk queue (`sending_queue.storage`, inline or the collector's
//! `storage: file_storage/x`). Everything a client got OK for arrives once the upstream is
//! back, exactly once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use support::*;

/// Upstream: counts each log body it receives.
#[derive(Clone, Default)]
struct CountingSink {
    bodies: Arc<Mutex<BTreeMap<String, u32>>>,
}

#[tonic::async_trait]
impl LogsService for CountingSink {
    async fn export(
        &self,
        r: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        let mut bodies = self.bodies.lock().unwrap();
        for rl in &r.into_inner().resource_logs {
            for sl in &rl.scope_logs {
                for lr in &sl.log_records {
                    if let Some(any_value::Value::StringValue(s)) =
                        lr.body.as_ref().and_then(|b| b.value.as_ref())
                    {
                        *bodies.entry(s.clone()).or_default() += 1;
                    }
                }
            }
        }
        Ok(tonic::Response::new(Default::default()))
    }
}

impl CountingSink {
    fn total(&self) -> u32 {
        self.bodies.lock().unwrap().values().sum()
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

/// otlp in -> otlp out with the disk queue; no batch processor, so a client's OK means the
/// data is in the disk queue.
fn disk_queue_config(ports: &Ports, upstream: u16, queue_dir: &Path) -> String {
    queue_config(
        ports,
        upstream,
        &format!(
            "{{directory: '{}', fsync: always, max_size_mib: 8}}",
            queue_dir.display()
        ),
        "",
    )
}

/// The same with the collector's shape: a `file_storage` extension named by the queue.
fn extension_queue_config(ports: &Ports, upstream: u16, storage_dir: &Path) -> String {
    queue_config(
        ports,
        upstream,
        "file_storage/queue",
        &format!(
            "  file_storage/queue: {{directory: '{}', create_directory: true, fsync: true}}\n",
            storage_dir.display()
        ),
    )
}

fn queue_config(ports: &Ports, upstream: u16, storage: &str, extension: &str) -> String {
    let exts = if extension.is_empty() {
        "[health_check]"
    } else {
        "[health_check, file_storage/queue]"
    };
    format!(
        "receivers:
  otlp:
    protocols:
      grpc: {{endpoint: '127.0.0.1:{grpc}'}}
exporters:
  otlp/up:
    endpoint: 127.0.0.1:{upstream}
    tls: {{insecure: true}}
    timeout: 2s
    retry_on_failure: {{initial_interval: 100ms, max_interval: 300ms, max_elapsed_time: 0s}}
    sending_queue:
      num_consumers: 4
      storage: {storage}
extensions:
  health_check: {{endpoint: '127.0.0.1:{health}'}}
{extension}service:
  extensions: {exts}
  telemetry:
    metrics: {{address: '127.0.0.1:{metrics}'}}
  pipelines:
    logs: {{receivers: [otlp], exporters: [otlp/up]}}
",
        grpc = ports.grpc,
        health = ports.health,
        metrics = ports.metrics,
    )
}

/// The value of the first sample of `name` on the metrics page.
fn metric(port: u16, name: &str) -> Option<f64> {
    let (_, body) = http_get(port, "/metrics")?;
    body.lines()
        .find(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_with_upstream_down_then_restart_delivers_every_accepted_record_once() {
    let dir = tempfile::tempdir().unwrap();
    let queue_dir = dir.path().join("queue");
    let upstream = free_port();
    let ports = Ports::pick();
    let config = write(
        dir.path(),
        "weir.yaml",
        &disk_queue_config(&ports, upstream, &queue_dir),
    );
    kill_9_then_restart(dir.path(), &config, &ports, upstream).await;
    assert!(queue_dir.is_dir());
}

/// The collector's config shape: `sending_queue: {storage: file_storage/queue}`; the queue
/// lives in the extension's directory, subdirectory `exporter_otlp_up_logs` (one queue per
/// exporter and signal, as the Collector names them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_with_a_file_storage_extension_queue_delivers_every_accepted_record_once() {
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().join("storage");
    let upstream = free_port();
    let ports = Ports::pick();
    let config = write(
        dir.path(),
        "weir.yaml",
        &extension_queue_config(&ports, upstream, &storage),
    );
    kill_9_then_restart(dir.path(), &config, &ports, upstream).await;
    let queue = storage.join("exporter_otlp_up_logs");
    assert!(queue.is_dir(), "{}", log_of(dir.path()));
    assert!(std::fs::read_dir(&queue).unwrap().count() > 0);
    // Only the logs pipeline uses the exporter: no queue for the other signals.
    assert!(!storage.join("exporter_otlp_up_traces").exists());
    assert!(!storage.join("exporter_otlp_up_metrics").exists());
}

/// Accepts N records with the upstream down, kill -9, restarts with the upstream up: each
/// record arrives exactly once; a third start sends nothing.
async fn kill_9_then_restart(dir: &Path, config: &Path, ports: &Ports, upstream: u16) {
    const N: usize = 60;

    // First life: the upstream is down; every export is accepted into the disk queue.
    let mut weir = spawn(dir, config, &[]);
    assert!(
        wait_for_status(ports.health, "/", 200, Duration::from_secs(20)).is_some(),
        "weir did not become healthy: {}",
        log_of(dir)
    );
    let mut client = LogsServiceClient::connect(format!("http://127.0.0.1:{}", ports.grpc))
        .await
        .unwrap();
    for i in 0..N {
        client
            .export(log_request(&format!("record-{i}")))
            .await
            .unwrap_or_else(|e| panic!("export {i} refused: {e}"));
    }
    assert_eq!(
        metric(ports.metrics, "weir_exporter_queue_size"),
        Some(N as f64)
    );
    let persisted = metric(ports.metrics, "weir_exporter_persisted_bytes").unwrap();
    assert!(persisted > (N * 17) as f64, "persisted bytes {persisted}");
    weir.kill().unwrap(); // SIGKILL: no shutdown, no drain
    weir.wait().unwrap();
    drop(client);

    // The upstream comes back, then weir restarts on the same directory.
    let sink = CountingSink::default();
    let server = {
        let sink = sink.clone();
        tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(
                    LogsServiceServer::new(sink)
                        .accept_compressed(tonic::codec::CompressionEncoding::Gzip),
                )
                .serve(([127, 0, 0, 1], upstream).into())
                .await
                .unwrap();
        })
    };
    let mut weir = spawn(dir, config, &[]);
    let start = Instant::now();
    while sink.total() < N as u32 && start.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Give duplicates, if any, the time to show up.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let bodies = sink.bodies.lock().unwrap().clone();
    let log = log_of(dir);
    // Nothing was ever sent in the first life, so nothing was acknowledged: each of the N
    // records arrives exactly once.
    assert_eq!(bodies.len(), N, "distinct records; weir log:\n{log}");
    for i in 0..N {
        assert_eq!(bodies.get(&format!("record-{i}")), Some(&1), "record-{i}");
    }
    assert!(
        log.contains("sending batches stored in the disk queue before the last stop"),
        "{log}"
    );
    assert_eq!(metric(ports.metrics, "weir_exporter_queue_size"), Some(0.0));
    sigterm(&weir);
    assert!(wait_exit(&mut weir, Duration::from_secs(15)).is_some());

    // A third start finds nothing left to send.
    let before = sink.total();
    let mut weir = spawn(dir, config, &[]);
    assert!(wait_for_status(ports.health, "/", 200, Duration::from_secs(20)).is_some());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sink.total(), before);
    assert_eq!(
        metric(ports.metrics, "weir_exporter_persisted_bytes").map(|b| b < 1.0),
        Some(true),
        "persisted bytes after everything was acknowledged"
    );
    sigterm(&weir);
    assert!(wait_exit(&mut weir, Duration::from_secs(15)).is_some());
    server.abort();
}

/// Upstream for logs and traces: counts log bodies and span names.
#[derive(Clone, Default)]
struct TwoSignalSink {
    logs: CountingSink,
    spans: Arc<Mutex<BTreeMap<String, u32>>>,
}

#[tonic::async_trait]
impl TraceService for TwoSignalSink {
    async fn export(
        &self,
        r: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.spans.lock().unwrap();
        for rs in &r.into_inner().resource_spans {
            for ss in &rs.scope_spans {
                for sp in &ss.spans {
                    *spans.entry(sp.name.clone()).or_default() += 1;
                }
            }
        }
        Ok(tonic::Response::new(Default::default()))
    }
}

fn span_request(name: &str, i: u8) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: vec![Span {
                    trace_id: vec![1 + i; 16],
                    span_id: vec![1 + i; 8],
                    name: name.to_string(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// Serves `sink` on `port` (logs and traces) until aborted.
fn serve_two(sink: TwoSignalSink, port: u16) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(
                LogsServiceServer::new(sink.logs.clone())
                    .accept_compressed(tonic::codec::CompressionEncoding::Gzip),
            )
            .add_service(
                TraceServiceServer::new(sink)
                    .accept_compressed(tonic::codec::CompressionEncoding::Gzip),
            )
            .serve(([127, 0, 0, 1], port).into())
            .await
            .unwrap();
    })
}

/// One exporter with a `file_storage` queue in a logs and a traces pipeline keeps one queue
/// per signal (`exporter_otlp_up_logs`, `exporter_otlp_up_traces`), as the Collector does.
/// Upstream down, kill -9; then a restart with only the logs queue in place delivers
/// exactly the logs (so no span was in it), and a restart with the traces queue put back
/// delivers exactly the spans (and no log again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_storage_queue_is_kept_per_signal_and_each_survives_kill_9() {
    const N: usize = 40;
    const M: usize = 25;
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().join("storage");
    let upstream = free_port();
    let ports = Ports::pick();
    let text = extension_queue_config(&ports, upstream, &storage).replace(
        "    logs: {receivers: [otlp], exporters: [otlp/up]}\n",
        "    logs: {receivers: [otlp], exporters: [otlp/up]}\n    traces: {receivers: [otlp], exporters: [otlp/up]}\n",
    );
    assert!(text.contains("traces: {receivers"));
    let config = write(dir.path(), "weir.yaml", &text);

    let mut weir = spawn(dir.path(), &config, &[]);
    assert!(
        wait_for_status(ports.health, "/", 200, Duration::from_secs(20)).is_some(),
        "weir did not become healthy: {}",
        log_of(dir.path())
    );
    let endpoint = format!("http://127.0.0.1:{}", ports.grpc);
    let mut logs = LogsServiceClient::connect(endpoint.clone()).await.unwrap();
    let mut traces = TraceServiceClient::connect(endpoint).await.unwrap();
    for i in 0..N.max(M) {
        if i < N {
            logs.export(log_request(&format!("log-{i}")))
                .await
                .unwrap_or_else(|e| panic!("log export {i} refused: {e}"));
        }
        if i < M {
            traces
                .export(span_request(&format!("span-{i}"), i as u8))
                .await
                .unwrap_or_else(|e| panic!("trace export {i} refused: {e}"));
        }
    }
    assert_eq!(
        metric(ports.metrics, "weir_exporter_queue_size"),
        Some((N + M) as f64)
    );
    weir.kill().unwrap();
    weir.wait().unwrap();
    drop((logs, traces));
    let logs_q = storage.join("exporter_otlp_up_logs");
    let traces_q = storage.join("exporter_otlp_up_traces");
    assert!(
        logs_q.is_dir() && traces_q.is_dir(),
        "{}",
        log_of(dir.path())
    );
    assert!(!storage.join("exporter_otlp_up_metrics").exists());
    let aside = dir.path().join("traces_aside");
    std::fs::rename(&traces_q, &aside).unwrap();

    let sink = TwoSignalSink::default();
    let server = serve_two(sink.clone(), upstream);
    let wait = |want_logs: usize, want_spans: usize| {
        let sink = sink.clone();
        async move {
            let start = Instant::now();
            while (sink.logs.total() as usize) < want_logs
                || sink.spans.lock().unwrap().values().sum::<u32>() < want_spans as u32
            {
                if start.elapsed() > Duration::from_secs(20) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            // Time for duplicates or strays to show up.
            tokio::time::sleep(Duration::from_millis(700)).await;
        }
    };
    // Second life: the logs queue only.
    let mut weir = spawn(dir.path(), &config, &[]);
    wait(N, 0).await;
    let log = log_of(dir.path());
    let got_logs = sink.logs.bodies.lock().unwrap().clone();
    assert_eq!(got_logs.len(), N, "{log}");
    assert!(got_logs.values().all(|n| *n == 1), "{got_logs:?}");
    assert!(
        sink.spans.lock().unwrap().is_empty(),
        "spans came out of the logs queue"
    );
    sigterm(&weir);
    assert!(wait_exit(&mut weir, Duration::from_secs(15)).is_some());

    // Third life: the traces queue back in place.
    let _ = std::fs::remove_dir_all(&traces_q);
    std::fs::rename(&aside, &traces_q).unwrap();
    let mut weir = spawn(dir.path(), &config, &[]);
    wait(N, M).await;
    let log = log_of(dir.path());
    let spans = sink.spans.lock().unwrap().clone();
    assert_eq!(spans.len(), M, "{log}");
    for i in 0..M {
        assert_eq!(spans.get(&format!("span-{i}")), Some(&1), "span-{i}");
    }
    assert_eq!(sink.logs.total() as usize, N, "logs came again: {log}");
    sigterm(&weir);
    assert!(wait_exit(&mut weir, Duration::from_secs(15)).is_some());
    server.abort();
}

/// A queue an earlier version kept for all signals in `exporter_otlp_up` (written here with
/// the inline form pointed at that directory) is moved into the per-signal queues at start
/// and each record is delivered once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_queue_of_an_earlier_version_is_moved_into_per_signal_queues() {
    const N: usize = 10;
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().join("storage");
    let old = storage.join("exporter_otlp_up");
    let upstream = free_port();
    let ports = Ports::pick();
    let two = |t: String| {
        t.replace(
            "    logs: {receivers: [otlp], exporters: [otlp/up]}\n",
            "    logs: {receivers: [otlp], exporters: [otlp/up]}\n    traces: {receivers: [otlp], exporters: [otlp/up]}\n",
        )
    };
    let inline = write(
        dir.path(),
        "inline.yaml",
        &two(disk_queue_config(&ports, upstream, &old)),
    );
    let mut weir = spawn(dir.path(), &inline, &[]);
    assert!(
        wait_for_status(ports.health, "/", 200, Duration::from_secs(20)).is_some(),
        "{}",
        log_of(dir.path())
    );
    let endpoint = format!("http://127.0.0.1:{}", ports.grpc);
    let mut logs = LogsServiceClient::connect(endpoint.clone()).await.unwrap();
    let mut traces = TraceServiceClient::connect(endpoint).await.unwrap();
    for i in 0..N {
        logs.export(log_request(&format!("log-{i}"))).await.unwrap();
        traces
            .export(span_request(&format!("span-{i}"), i as u8))
            .await
            .unwrap();
    }
    weir.kill().unwrap();
    weir.wait().unwrap();
    drop((logs, traces));
    assert!(old.is_dir());

    let sink = TwoSignalSink::default();
    let server = serve_two(sink.clone(), upstream);
    let config = write(
        dir.path(),
        "weir.yaml",
        &two(extension_queue_config(&ports, upstream, &storage)),
    );
    let mut weir = spawn(dir.path(), &config, &[]);
    let start = Instant::now();
    while ((sink.logs.total() as usize) < N
        || sink.spans.lock().unwrap().values().sum::<u32>() < N as u32)
        && start.elapsed() < Duration::from_secs(20)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    let log = log_of(dir.path());
    let got_logs = sink.logs.bodies.lock().unwrap().clone();
    let spans = sink.spans.lock().unwrap().clone();
    assert_eq!(got_logs.len(), N, "{log}");
    assert!(got_logs.values().all(|n| *n == 1), "{got_logs:?}");
    assert_eq!(spans.len(), N, "{log}");
    assert!(spans.values().all(|n| *n == 1), "{spans:?}");
    assert!(!old.exists(), "the old queue directory is still there");
    assert!(
        log.contains("moved the disk queue of an earlier version"),
        "{log}"
    );
    sigterm(&weir);
    assert!(wait_exit(&mut weir, Duration::from_secs(15)).is_some());
    server.abort();
}
