//! The summariser alone on the load `weir-bench` sends to the edge scenario: records and
//! spans shaped as `bench/src/generate.rs` makes them (five services, bodies with ids, ms and
//! addresses, three attributes; spans of four names with three attributes), 64 requests of
//! 1,000 items, encoded once and summarised in place over and over, as the `catalog`
//! exporter of `configs/edge.yaml` does.
//!
//! ```text
//! cargo run --release -p weir-metadata --example edge_summary -- logs 20
//! ```
//! The arguments: the signal (`logs` or `traces`) and how many passes over the 64 requests
//! (default 20). Prints items per CPU-second of the summarising thread, median of 5 runs;
//! `WEIR_RUNS=1` runs once (for profilers: `valgrind --tool=callgrind`, `perf record`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use bytes::Bytes;
use prost::Message;
use weir_api::otlp::collector::logs::v1::ExportLogsServiceRequest;
use weir_api::otlp::collector::trace::v1::ExportTraceServiceRequest;
use weir_api::otlp::common::v1::{any_value::Value, AnyValue, InstrumentationScope, KeyValue};
use weir_api::otlp::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use weir_api::otlp::resource::v1::Resource;
use weir_api::otlp::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use weir_api::{Batch, Signal};
use weir_metadata::{MetadataConfig, MetadataHandle};

const SERVICES: [&str; 5] = ["checkout", "payments", "cart", "frontend", "inventory"];

/// Deterministic pseudo-random numbers (xorshift).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn range(&mut self, lo: u32, hi: u32) -> u32 {
        lo + (self.next() % u64::from(hi - lo)) as u32
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn kv(k: &str, v: Value) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue { value: Some(v) }),
        ..Default::default()
    }
}

fn s(v: impl Into<String>) -> Value {
    Value::StringValue(v.into())
}

fn resource(i: usize) -> Resource {
    Resource {
        attributes: vec![
            kv("service.name", s(SERVICES[i])),
            kv("service.version", s(format!("1.{}.0", i % 7))),
            kv("deployment.environment", s("production")),
            kv("host.name", s(format!("node-{:02}", i % 16))),
        ],
        ..Default::default()
    }
}

fn log_record(rng: &mut Rng) -> LogRecord {
    let noise = rng.next().is_multiple_of(2);
    let user = rng.range(1000, 99999);
    let ms = rng.range(1, 900);
    let (sev, text, body) = if noise {
        (
            5,
            "DEBUG",
            format!(
                "cache lookup key=user:{user} hit={} took {ms}us",
                ms.is_multiple_of(2)
            ),
        )
    } else {
        match rng.next() % 10 {
            0 => (
                17,
                "ERROR",
                format!("payment declined for order {} code=E{}", user * 7, ms % 40),
            ),
            1 | 2 => (
                13,
                "WARN",
                format!("slow query on orders took {ms} ms rows={user}"),
            ),
            _ => (
                9,
                "INFO",
                format!(
                    "GET /api/v1/orders/{user} 200 {ms}ms ip=10.{}.{}.{}",
                    ms % 255,
                    user % 255,
                    (user / 7) % 255
                ),
            ),
        }
    };
    LogRecord {
        time_unix_nano: 1_700_000_000_000_000_000 + u64::from(user),
        severity_number: sev,
        severity_text: text.into(),
        body: Some(AnyValue {
            value: Some(s(body)),
        }),
        attributes: vec![
            kv("http.method", s("GET")),
            kv("user.id", Value::IntValue(i64::from(user))),
            kv("region", s(["eu-west-1", "us-east-1"][ms as usize % 2])),
        ],
        trace_id: rng.bytes(16),
        span_id: rng.bytes(8),
        ..Default::default()
    }
}

fn span(rng: &mut Rng) -> Span {
    let noise = rng.next().is_multiple_of(2);
    let id = rng.range(1000, 99999);
    let name = if noise {
        "GET /healthz"
    } else {
        [
            "GET /api/v1/orders/{id}",
            "POST /api/v1/pay",
            "SELECT orders",
        ][id as usize % 3]
    };
    let start = 1_700_000_000_000_000_000 + u64::from(id);
    Span {
        trace_id: rng.bytes(16),
        span_id: rng.bytes(8),
        name: name.into(),
        kind: if noise { 2 } else { 1 + (id as i32 % 3) },
        start_time_unix_nano: start,
        end_time_unix_nano: start + u64::from(id) * 1000,
        attributes: vec![
            kv("http.route", s("/api/v1/orders/{id}")),
            kv("http.status_code", Value::IntValue(200)),
            kv("user.id", Value::IntValue(i64::from(id))),
        ],
        status: Some(Status {
            code: if id.is_multiple_of(50) { 2 } else { 0 },
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// 64 encoded requests of 1,000 items over four resources each.
fn pool(signal: Signal) -> Vec<Bytes> {
    let mut rng = Rng(0x5745_4952);
    (0..64)
        .map(|_| {
            let groups: Vec<usize> = (0..4).map(|_| (rng.next() % 5) as usize).collect();
            let bytes = match signal {
                Signal::Traces => ExportTraceServiceRequest {
                    resource_spans: groups
                        .iter()
                        .map(|&i| ResourceSpans {
                            resource: Some(resource(i)),
                            scope_spans: vec![ScopeSpans {
                                scope: Some(InstrumentationScope {
                                    name: format!("{}.tracer", SERVICES[i]),
                                    ..Default::default()
                                }),
                                spans: (0..250).map(|_| span(&mut rng)).collect(),
                                ..Default::default()
                            }],
                            ..Default::default()
                        })
                        .collect(),
                }
                .encode_to_vec(),
                _ => ExportLogsServiceRequest {
                    resource_logs: groups
                        .iter()
                        .map(|&i| ResourceLogs {
                            resource: Some(resource(i)),
                            scope_logs: vec![ScopeLogs {
                                scope: Some(InstrumentationScope {
                                    name: format!("{}.logger", SERVICES[i]),
                                    ..Default::default()
                                }),
                                log_records: (0..250).map(|_| log_record(&mut rng)).collect(),
                                ..Default::default()
                            }],
                            ..Default::default()
                        })
                        .collect(),
                }
                .encode_to_vec(),
            };
            Bytes::from(bytes)
        })
        .collect()
}

/// CPU time of this thread.
fn thread_cpu() -> std::time::Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 (utime, stime) are the 12th and 13th after the name.
    let field = |i: usize| f.get(i).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
    let ticks = field(11) + field(12);
    std::time::Duration::from_millis(ticks * 10)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let signal = match args.next().as_deref() {
        Some("traces") => Signal::Traces,
        _ => Signal::Logs,
    };
    let passes: usize = args.next().and_then(|p| p.parse().ok()).unwrap_or(20);
    let runs: usize = std::env::var("WEIR_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    let pool = pool(signal);
    let mut rates = Vec::new();
    for _ in 0..runs {
        let handle = MetadataHandle::new(&MetadataConfig::default());
        let (cpu0, wall0) = (thread_cpu(), Instant::now());
        let mut items = 0u64;
        for _ in 0..passes {
            for bytes in &pool {
                let batch = Batch::decode(signal, bytes.clone()).expect("valid request");
                items += batch.item_count() as u64;
                handle.observe(&batch);
            }
        }
        let (cpu, wall) = (thread_cpu() - cpu0, wall0.elapsed());
        let summary = handle.take();
        let counted: u64 = summary
            .services
            .values()
            .map(|s| s.logs.volume.items + s.traces.volume.items)
            .sum();
        assert_eq!(counted, items, "every item summarised");
        let rate = items as f64 / cpu.as_secs_f64().max(1e-9);
        println!(
            "{items} {} in {:.2} s CPU ({:.2} s wall): {:.3} M/s per CPU-second",
            signal.item_name(),
            cpu.as_secs_f64(),
            wall.as_secs_f64(),
            rate / 1e6
        );
        rates.push(rate);
    }
    rates.sort_by(f64::total_cmp);
    println!(
        "median {:.3} M/s per CPU-second",
        rates[rates.len() / 2] / 1e6
    );
}
