//! Shared helpers of the receiver tests: a consumer that records batches (or refuses
//! them), a receiver on ephemeral loopback ports, sample requests and a small HTTP client.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use weir_api::otlp::collector::logs::v1::ExportLogsServiceRequest;
use weir_api::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use weir_api::otlp::collector::trace::v1::ExportTraceServiceRequest;
use weir_api::otlp::common::v1::{any_value, AnyValue, InstrumentationScope};
use weir_api::otlp::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use weir_api::otlp::metrics::v1::{
    metric, number_data_point, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics,
};
use weir_api::otlp::resource::v1::Resource;
use weir_api::otlp::trace::v1::{ResourceSpans, ScopeSpans, Span};
use weir_api::{
    Batch, BuildContext, Component, ComponentId, ConsumeError, Consumer, SignalConsumers, Telemetry,
};
use weir_receivers::otlp::{OtlpReceiver, OtlpReceiverFactory};

/// What the test consumer answers.
#[derive(Debug, Clone)]
pub enum Answer {
    Accept,
    Refuse(Option<Duration>),
    Reject,
}

/// Records every batch it accepts; answers as told (a queue of answers, then `Accept`).
#[derive(Default)]
pub struct Recorder {
    pub batches: Mutex<Vec<Batch>>,
    pub answers: Mutex<VecDeque<Answer>>,
    /// When set, `consume` waits for this before answering.
    pub gate: Mutex<Option<Arc<tokio::sync::Semaphore>>>,
    /// Calls of `consume` so far (counted on entry).
    pub entered: std::sync::atomic::AtomicUsize,
}

impl Recorder {
    pub fn answer_next(&self, a: Answer) {
        self.answers.lock().unwrap().push_back(a);
    }

    /// Waits (at most 5 s) until `consume` was entered `n` times.
    pub async fn wait_entered(&self, n: usize) {
        for _ in 0..500 {
            if self.entered.load(std::sync::atomic::Ordering::SeqCst) >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("consume was not entered {n} times");
    }

    pub fn take(&self) -> Vec<Batch> {
        std::mem::take(&mut *self.batches.lock().unwrap())
    }
}

#[async_trait]
impl Consumer for Recorder {
    async fn consume(&self, batch: Batch) -> Result<(), ConsumeError> {
        self.entered
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let gate = self.gate.lock().unwrap().clone();
        if let Some(g) = gate {
            let _permit = g.acquire().await.unwrap();
        }
        let answer = self
            .answers
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(Answer::Accept);
        match answer {
            Answer::Accept => {
                self.batches.lock().unwrap().push(batch);
                Ok(())
            }
            Answer::Refuse(retry_after) => Err(ConsumeError::Refused {
                component: "memory_limiter".into(),
                reason: "memory usage is above the soft limit".into(),
                retry_after,
            }),
            Answer::Reject => Err(ConsumeError::Rejected {
                component: "policy".into(),
                reason: "not allowed".into(),
            }),
        }
    }
}

/// A started receiver, its recorder and its metrics.
pub struct Running {
    pub receiver: Arc<OtlpReceiver>,
    pub recorder: Arc<Recorder>,
    pub telemetry: Telemetry,
}

impl Running {
    pub fn grpc(&self) -> String {
        format!("http://{}", self.receiver.grpc_address().unwrap())
    }
    pub fn http(&self) -> std::net::SocketAddr {
        self.receiver.http_address().unwrap()
    }
}

/// Starts an `otlp` receiver from `yaml` (a JSON value of its config) that feeds every
/// signal in `signals` to one recorder.
pub async fn start(config: serde_json::Value, signals: &[&str]) -> Running {
    let cfg = OtlpReceiverFactory
        .parse_config(&config, "receivers.otlp")
        .unwrap();
    let recorder = Arc::new(Recorder::default());
    let c: Arc<dyn Consumer> = recorder.clone();
    let consumers = SignalConsumers {
        logs: signals.contains(&"logs").then(|| c.clone()),
        traces: signals.contains(&"traces").then(|| c.clone()),
        metrics: signals.contains(&"metrics").then(|| c.clone()),
    };
    let ctx = BuildContext::for_component(ComponentId::parse("otlp").unwrap());
    let telemetry = ctx.telemetry.clone();
    let receiver = cfg.build_receiver(&ctx, consumers).unwrap();
    receiver.start().await.unwrap();
    Running {
        receiver,
        recorder,
        telemetry,
    }
}

/// Both protocols on ephemeral loopback ports.
pub fn both_protocols() -> serde_json::Value {
    serde_json::json!({"protocols": {
        "grpc": {"endpoint": "127.0.0.1:0"},
        "http": {"endpoint": "127.0.0.1:0"}
    }})
}

pub use weir_api::fixtures::kv;

fn resource(service: &str) -> Option<Resource> {
    Some(Resource {
        attributes: vec![kv("service.name", service)],
        ..Default::default()
    })
}

/// `n` log records with bodies `line 0..n` and an attribute `i`.
pub fn logs(n: usize) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource("checkout"),
            scope_logs: vec![ScopeLogs {
                scope: Some(InstrumentationScope {
                    name: "test".into(),
                    ..Default::default()
                }),
                log_records: (0..n)
                    .map(|i| LogRecord {
                        time_unix_nano: 1_700_000_000_000_000_000 + i as u64,
                        severity_number: 9,
                        severity_text: "INFO".into(),
                        body: Some(AnyValue {
                            value: Some(any_value::Value::StringValue(format!("line {i}"))),
                        }),
                        attributes: vec![kv("i", i.to_string())],
                        trace_id: vec![0xab; 16],
                        span_id: vec![0xcd; 8],
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

pub fn traces(n: usize) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource("checkout"),
            scope_spans: vec![ScopeSpans {
                spans: (0..n)
                    .map(|i| Span {
                        trace_id: vec![1; 16],
                        span_id: vec![i as u8 + 1; 8],
                        name: format!("GET /item/{i}"),
                        kind: 2,
                        start_time_unix_nano: 1_700_000_000_000_000_000,
                        end_time_unix_nano: 1_700_000_000_500_000_000,
                        attributes: vec![kv("http.route", "/item/:id")],
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

pub fn metrics(points: usize) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource("checkout"),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: "queue.depth".into(),
                    unit: "1".into(),
                    data: Some(metric::Data::Gauge(Gauge {
                        data_points: (0..points)
                            .map(|i| NumberDataPoint {
                                attributes: vec![kv("queue", format!("q{i}"))],
                                time_unix_nano: 1_700_000_000_000_000_000,
                                value: Some(number_data_point::Value::AsInt(i as i64)),
                                ..Default::default()
                            })
                            .collect(),
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// An HTTP answer.
pub struct Answered {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Answered {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

/// Sends one HTTP/1.1 request on a fresh connection (bounded to 10 s).
pub async fn send(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Answered {
    tokio::time::timeout(Duration::from_secs(10), async {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(conn);
        let mut req = http::Request::builder()
            .method(method)
            .uri(path)
            .header("host", addr.to_string());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = sender
            .send_request(req.body(Full::new(Bytes::from(body))).unwrap())
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        Answered {
            status,
            headers,
            body,
        }
    })
    .await
    .expect("HTTP request timed out")
}

/// POSTs a body with a content type (and optional content encoding).
pub async fn post(
    addr: std::net::SocketAddr,
    path: &str,
    content_type: &str,
    encoding: Option<&str>,
    body: Vec<u8>,
) -> Answered {
    let mut headers = vec![("content-type", content_type)];
    if let Some(e) = encoding {
        headers.push(("content-encoding", e));
    }
    send(addr, "POST", path, &headers, body).await
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// The value of a metric line in the Prometheus text, or 0 when absent.
pub fn metric_value(telemetry: &Telemetry, series: &str) -> u64 {
    let text = telemetry.encode();
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|r| r.trim().parse().ok()))
        .unwrap_or(0)
}
