//! What the durability fault tests share: a sender that numbers every record and keeps the
//! numbers it got OK for, a counting upstream that can refuse, weir's config, and the final
//! accounting by sequence number.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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

use crate::support::*;

/// A small xorshift generator: the tests print their seed so a failure can be replayed
/// with `WEIR_FAULT_SEED`.
pub struct Rng(u64);

impl Rng {
    pub fn from_env_or_time(test: &str) -> Rng {
        let seed = std::env::var("WEIR_FAULT_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        eprintln!("{test}: WEIR_FAULT_SEED={seed}");
        Rng(seed | 1)
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    /// A number in `lo..hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo).max(1)
    }
}

/// The upstream: counts each numbered record it receives; answers UNAVAILABLE while
/// refusing.
#[derive(Clone, Default)]
pub struct Sink {
    counts: Arc<Mutex<HashMap<u64, u32>>>,
    refusing: Arc<AtomicBool>,
    /// Milliseconds each request takes (a slow upstream).
    pub delay_ms: Arc<AtomicU64>,
}

#[tonic::async_trait]
impl LogsService for Sink {
    async fn export(
        &self,
        r: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        let delay = self.delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        if self.refusing.load(Ordering::SeqCst) {
            return Err(tonic::Status::unavailable("sink is refusing"));
        }
        let mut counts = self.counts.lock().unwrap();
        for rl in &r.get_ref().resource_logs {
            for sl in &rl.scope_logs {
                for lr in &sl.log_records {
                    if let Some(any_value::Value::StringValue(s)) =
                        lr.body.as_ref().and_then(|b| b.value.as_ref())
                    {
                        let seq = s.strip_prefix("rec-").unwrap().parse().unwrap();
                        *counts.entry(seq).or_default() += 1;
                    }
                }
            }
        }
        Ok(tonic::Response::new(Default::default()))
    }
}

impl Sink {
    /// Serves on 127.0.0.1:`port` until the returned task is aborted.
    pub fn serve(&self, port: u16) -> tokio::task::JoinHandle<()> {
        let sink = self.clone();
        tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(
                    LogsServiceServer::new(sink)
                        .accept_compressed(tonic::codec::CompressionEncoding::Gzip),
                )
                .serve(([127, 0, 0, 1], port).into())
                .await
                .unwrap();
        })
    }
    pub fn refuse(&self, on: bool) {
        self.refusing.store(on, Ordering::SeqCst);
    }
    pub fn counts(&self) -> HashMap<u64, u32> {
        self.counts.lock().unwrap().clone()
    }
}

/// Numbers records and remembers which weir answered OK for.
#[derive(Default)]
pub struct Sender {
    next: AtomicU64,
    acked: Mutex<BTreeSet<u64>>,
    pub refused_requests: AtomicU64,
    /// The last refusal: its gRPC code and message.
    pub last_refusal: Mutex<Option<(tonic::Code, String)>>,
    /// Bytes of padding (an attribute) on each record.
    pub pad: std::sync::atomic::AtomicUsize,
}

fn request(seqs: std::ops::Range<u64>, pad: usize) -> ExportLogsServiceRequest {
    let attributes = if pad == 0 {
        Vec::new()
    } else {
        vec![opentelemetry_proto::tonic::common::v1::KeyValue {
            key: "pad".into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue("x".repeat(pad))),
            }),
            ..Default::default()
        }]
    };
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: seqs
                    .map(|s| LogRecord {
                        body: Some(AnyValue {
                            value: Some(any_value::Value::StringValue(format!("rec-{s}"))),
                        }),
                        attributes: attributes.clone(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

impl Sender {
    pub fn acked(&self) -> BTreeSet<u64> {
        self.acked.lock().unwrap().clone()
    }

    /// Sends requests of `per_request` new records from `tasks` tasks at once until `until`;
    /// a refused record is not sent again (it was never acknowledged).
    pub async fn send_until(
        self: &Arc<Self>,
        grpc: u16,
        per_request: u64,
        tasks: usize,
        until: Instant,
    ) {
        let mut handles = Vec::new();
        for _ in 0..tasks {
            let me = self.clone();
            handles.push(tokio::spawn(async move {
                let mut client = None;
                while Instant::now() < until {
                    if client.is_none() {
                        client = LogsServiceClient::connect(format!("http://127.0.0.1:{grpc}"))
                            .await
                            .ok();
                        if client.is_none() {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            continue;
                        }
                    }
                    let Some(c) = client.as_mut() else { continue };
                    let first = me.next.fetch_add(per_request, Ordering::SeqCst);
                    let sent = tokio::time::timeout(
                        Duration::from_secs(5),
                        c.export(request(
                            first..first + per_request,
                            me.pad.load(Ordering::SeqCst),
                        )),
                    )
                    .await;
                    match sent {
                        Ok(Ok(_)) => {
                            me.acked.lock().unwrap().extend(first..first + per_request);
                        }
                        Ok(Err(status)) => {
                            me.refused_requests.fetch_add(1, Ordering::SeqCst);
                            *me.last_refusal.lock().unwrap() =
                                Some((status.code(), status.message().to_string()));
                            if status.code() == tonic::Code::Unknown
                                || status.code() == tonic::Code::Cancelled
                            {
                                client = None;
                            }
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                        Err(_) => client = None,
                    }
                }
            }));
        }
        for h in handles {
            h.await.unwrap();
        }
    }
}

impl Sender {
    /// Sends `n` requests of `per_request` new records one after another; returns how many
    /// were answered OK.
    pub async fn send_n(&self, grpc: u16, per_request: u64, n: usize) -> usize {
        let mut client = LogsServiceClient::connect(format!("http://127.0.0.1:{grpc}"))
            .await
            .unwrap();
        let mut ok = 0;
        for _ in 0..n {
            let first = self.next.fetch_add(per_request, Ordering::SeqCst);
            match client
                .export(request(
                    first..first + per_request,
                    self.pad.load(Ordering::SeqCst),
                ))
                .await
            {
                Ok(_) => {
                    self.acked
                        .lock()
                        .unwrap()
                        .extend(first..first + per_request);
                    ok += 1;
                }
                Err(status) => {
                    self.refused_requests.fetch_add(1, Ordering::SeqCst);
                    *self.last_refusal.lock().unwrap() =
                        Some((status.code(), status.message().to_string()));
                }
            }
        }
        ok
    }
}

/// What the test configures of weir.
pub struct Setup<'a> {
    pub ports: &'a Ports,
    pub upstream: u16,
    pub queue_dir: &'a Path,
    pub batch: bool,
    pub queue_size: u64,
    pub num_consumers: usize,
    pub max_size_mib: u64,
}

impl Setup<'_> {
    pub fn yaml(&self) -> String {
        let (processors, list) = if self.batch {
            (
                "processors:\n  batch: {timeout: 50ms, send_batch_size: 200, send_batch_max_size: 200}\n",
                "[batch]",
            )
        } else {
            ("", "[]")
        };
        format!(
            "receivers:
  otlp:
    protocols:
      grpc: {{endpoint: '127.0.0.1:{grpc}'}}
{processors}exporters:
  otlp/up:
    endpoint: 127.0.0.1:{upstream}
    tls: {{insecure: true}}
    timeout: 2s
    retry_on_failure: {{initial_interval: 50ms, max_interval: 200ms}}
    sending_queue:
      num_consumers: {consumers}
      queue_size: {queue_size}
      storage: {{directory: '{dir}', max_size_mib: {mib}}}
extensions:
  health_check: {{endpoint: '127.0.0.1:{health}'}}
service:
  extensions: [health_check]
  telemetry:
    metrics: {{address: '127.0.0.1:{metrics}'}}
  pipelines:
    logs: {{receivers: [otlp], processors: {list}, exporters: [otlp/up]}}
",
            grpc = self.ports.grpc,
            upstream = self.upstream,
            consumers = self.num_consumers,
            queue_size = self.queue_size,
            dir = self.queue_dir.display(),
            mib = self.max_size_mib,
            health = self.ports.health,
            metrics = self.ports.metrics,
        )
    }
}

/// Starts weir and waits until it is healthy.
pub fn start_weir(dir: &Path, config: &Path, ports: &Ports) -> std::process::Child {
    let weir = spawn(dir, config, &[]);
    assert!(
        wait_for_status(ports.health, "/", 200, Duration::from_secs(30)).is_some(),
        "weir did not become healthy: {}",
        log_of(dir)
    );
    weir
}

/// The value of the first sample of `name` on the metrics page.
pub fn metric(port: u16, name: &str) -> Option<f64> {
    let (_, body) = http_get(port, "/metrics")?;
    body.lines()
        .find(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Waits until the sink holds every record in `want`, or `limit` passes.
pub async fn wait_delivered(sink: &Sink, want: &BTreeSet<u64>, limit: Duration) {
    let start = Instant::now();
    while start.elapsed() < limit {
        let counts = sink.counts();
        if want.iter().all(|s| counts.contains_key(s)) {
            // Give copies, if any, the time to show up.
            tokio::time::sleep(Duration::from_millis(300)).await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The accounting: acknowledged records that never arrived, and extra copies.
pub struct Accounting {
    pub acked: usize,
    pub missing: Vec<u64>,
    pub duplicates: u64,
    pub delivered: usize,
}

pub fn account(acked: &BTreeSet<u64>, counts: &HashMap<u64, u32>) -> Accounting {
    Accounting {
        acked: acked.len(),
        missing: acked
            .iter()
            .filter(|s| !counts.contains_key(s))
            .copied()
            .collect(),
        duplicates: counts.values().map(|&c| u64::from(c - 1)).sum(),
        delivered: counts.len(),
    }
}
