//! Deterministic, realistic OTLP load: several services, attribute sets, bodies with
//! variable parts and a configurable share of noise (debug logs, health-check spans).

use bytes::Bytes;
use prost::Message;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use weir_api::otlp::collector::logs::v1::ExportLogsServiceRequest;
use weir_api::otlp::collector::trace::v1::ExportTraceServiceRequest;
use weir_api::otlp::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use weir_api::otlp::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use weir_api::otlp::resource::v1::Resource;
use weir_api::otlp::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};

/// The sentinel written into the first item's stamp field, found in the encoding and
/// replaced by the send time on every send.
const STAMP_SENTINEL: u64 = 0x5A17_5A17_5A17_5A17;

const SERVICES: [&str; 5] = ["checkout", "payments", "cart", "frontend", "inventory"];

/// How much noise the load holds.
#[derive(Debug, Clone, Copy)]
pub struct Mix {
    /// Share of log records at DEBUG severity (what the drop scenario removes).
    pub debug_share: f64,
    /// Share of spans that are health checks (`GET /healthz`, what the trace drop removes).
    pub health_share: f64,
}

impl Default for Mix {
    fn default() -> Self {
        Mix {
            debug_share: 0.5,
            health_share: 0.5,
        }
    }
}

/// One pre-encoded request ready to send.
#[derive(Debug, Clone)]
pub struct Request {
    /// The protobuf bytes.
    pub bytes: Bytes,
    /// Items in it.
    pub items: u64,
    /// Items a policy dropping noise (DEBUG logs / health-check spans) removes.
    pub noise: u64,
    /// Byte offset of the first item's 8-byte stamp.
    pub stamp_at: usize,
}

/// Builds requests from a fixed seed.
pub struct Generator {
    rng: StdRng,
    mix: Mix,
}

fn kv(k: &str, v: any_value::Value) -> KeyValue {
    KeyValue {
        key: k.to_string(),
        value: Some(AnyValue { value: Some(v) }),
        ..Default::default()
    }
}

fn s(v: String) -> any_value::Value {
    any_value::Value::StringValue(v)
}

fn resource(service: &str, i: usize) -> Resource {
    Resource {
        attributes: vec![
            kv("service.name", s(service.to_string())),
            kv("service.version", s(format!("1.{}.0", i % 7))),
            kv("deployment.environment", s("production".into())),
            kv("host.name", s(format!("node-{:02}", i % 16))),
        ],
        ..Default::default()
    }
}

impl Generator {
    /// A generator with a fixed seed.
    pub fn new(seed: u64, mix: Mix) -> Self {
        Generator {
            rng: StdRng::seed_from_u64(seed),
            mix,
        }
    }

    fn pick_service(&mut self) -> (usize, &'static str) {
        let i = self.rng.random_range(0..SERVICES.len());
        (i, SERVICES[i])
    }

    fn log_record(&mut self, first: bool) -> (LogRecord, bool) {
        let noise = !first && self.rng.random_bool(self.mix.debug_share);
        let user = self.rng.random_range(1000..99999u32);
        let ms = self.rng.random_range(1..900u32);
        let (sev, text, body) = if noise {
            (
                5,
                "DEBUG",
                format!(
                    "cache lookup key=user:{user} hit={} took {ms}us",
                    ms % 2 == 0
                ),
            )
        } else {
            match self.rng.random_range(0..10) {
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
        let rec = LogRecord {
            time_unix_nano: 1_700_000_000_000_000_000 + u64::from(user),
            observed_time_unix_nano: if first { STAMP_SENTINEL } else { 0 },
            severity_number: sev,
            severity_text: text.to_string(),
            body: Some(AnyValue {
                value: Some(s(body)),
            }),
            attributes: vec![
                kv("http.method", s("GET".into())),
                kv("user.id", any_value::Value::IntValue(i64::from(user))),
                kv(
                    "region",
                    s(["eu-west-1", "us-east-1"][ms as usize % 2].into()),
                ),
            ],
            trace_id: self.rng.random::<[u8; 16]>().to_vec(),
            span_id: self.rng.random::<[u8; 8]>().to_vec(),
            ..Default::default()
        };
        (rec, noise)
    }

    /// A logs request of `n` records spread over a few services.
    #[cfg(test)]
    pub fn logs(&mut self, n: usize) -> ExportLogsServiceRequest {
        self.logs_counted(n).0
    }

    /// Splits `n` items over up to four services: calls `item(first)` per item and
    /// `group(service index, service name, items)` per service; returns the noise count.
    fn grouped<T>(
        &mut self,
        n: usize,
        mut item: impl FnMut(&mut Self, bool) -> (T, bool),
        mut group: impl FnMut(usize, &'static str, Vec<T>),
    ) -> u64 {
        let groups = 4.min(n.max(1));
        let (mut noise, mut made) = (0, 0);
        for g in 0..groups {
            let count = if g + 1 == groups {
                n - made
            } else {
                n / groups
            };
            let (i, service) = self.pick_service();
            let mut items = Vec::with_capacity(count);
            for _ in 0..count {
                let (it, is_noise) = item(self, made == 0);
                noise += u64::from(is_noise);
                items.push(it);
                made += 1;
            }
            group(i, service, items);
        }
        noise
    }

    fn logs_counted(&mut self, n: usize) -> (ExportLogsServiceRequest, u64) {
        let mut resource_logs = Vec::new();
        let noise = self.grouped(
            n,
            |g, first| g.log_record(first),
            |i, service, records| {
                resource_logs.push(ResourceLogs {
                    resource: Some(resource(service, i)),
                    scope_logs: vec![ScopeLogs {
                        scope: Some(InstrumentationScope {
                            name: format!("{service}.logger"),
                            ..Default::default()
                        }),
                        log_records: records,
                        ..Default::default()
                    }],
                    ..Default::default()
                })
            },
        );
        (ExportLogsServiceRequest { resource_logs }, noise)
    }

    fn span(&mut self, first: bool) -> (Span, bool) {
        let noise = !first && self.rng.random_bool(self.mix.health_share);
        let id = self.rng.random_range(1000..99999u32);
        let name = if noise {
            "GET /healthz".to_string()
        } else {
            [
                "GET /api/v1/orders/{id}",
                "POST /api/v1/pay",
                "SELECT orders",
            ][id as usize % 3]
                .to_string()
        };
        let start = 1_700_000_000_000_000_000 + u64::from(id);
        let span = Span {
            trace_id: self.rng.random::<[u8; 16]>().to_vec(),
            span_id: self.rng.random::<[u8; 8]>().to_vec(),
            name,
            kind: if noise { 2 } else { 1 + (id as i32 % 3) },
            start_time_unix_nano: if first { STAMP_SENTINEL } else { start },
            end_time_unix_nano: start + u64::from(id) * 1000,
            attributes: vec![
                kv("http.route", s("/api/v1/orders/{id}".into())),
                kv("http.status_code", any_value::Value::IntValue(200)),
                kv("user.id", any_value::Value::IntValue(i64::from(id))),
            ],
            status: Some(Status {
                // One span in fifty fails (STATUS_CODE_ERROR).
                code: if id % 50 == 0 { 2 } else { 0 },
                ..Default::default()
            }),
            ..Default::default()
        };
        (span, noise)
    }

    /// A traces request of `n` spans spread over a few services.
    #[cfg(test)]
    pub fn spans(&mut self, n: usize) -> ExportTraceServiceRequest {
        self.spans_counted(n).0
    }

    fn spans_counted(&mut self, n: usize) -> (ExportTraceServiceRequest, u64) {
        let mut resource_spans = Vec::new();
        let noise = self.grouped(
            n,
            |g, first| g.span(first),
            |i, service, spans| {
                resource_spans.push(ResourceSpans {
                    resource: Some(resource(service, i)),
                    scope_spans: vec![ScopeSpans {
                        scope: Some(InstrumentationScope {
                            name: format!("{service}.tracer"),
                            ..Default::default()
                        }),
                        spans,
                        ..Default::default()
                    }],
                    ..Default::default()
                })
            },
        );
        (ExportTraceServiceRequest { resource_spans }, noise)
    }

    /// A pool of `count` pre-encoded requests of `size` items each.
    pub fn pool(&mut self, traces: bool, count: usize, size: usize) -> Vec<Request> {
        (0..count)
            .map(|_| {
                let (bytes, noise) = if traces {
                    let (r, noise) = self.spans_counted(size);
                    (r.encode_to_vec(), noise)
                } else {
                    let (r, noise) = self.logs_counted(size);
                    (r.encode_to_vec(), noise)
                };
                let sentinel = STAMP_SENTINEL.to_le_bytes();
                let stamp_at = bytes
                    .windows(8)
                    .position(|w| w == sentinel)
                    .unwrap_or(usize::MAX);
                Request {
                    bytes: Bytes::from(bytes),
                    items: size as u64,
                    noise,
                    stamp_at,
                }
            })
            .collect()
    }
}

impl Request {
    /// The request bytes with the first item stamped with `now_ns`.
    pub fn stamped(&self, now_ns: u64) -> Bytes {
        if self.stamp_at == usize::MAX {
            return self.bytes.clone();
        }
        let mut v = self.bytes.to_vec();
        v[self.stamp_at..self.stamp_at + 8].copy_from_slice(&now_ns.to_le_bytes());
        Bytes::from(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::scan;

    #[test]
    fn pool_is_deterministic_and_stamps_survive() {
        let a = Generator::new(42, Mix::default()).pool(false, 3, 100);
        let b = Generator::new(42, Mix::default()).pool(false, 3, 100);
        assert_eq!(a[2].bytes, b[2].bytes);
        let r = &a[0];
        let stamped = r.stamped(123_456_789);
        let got = scan(&stamped, false).unwrap();
        assert_eq!(got.items, 100);
        assert_eq!(got.first_stamp, Some(123_456_789));
        let t = Generator::new(42, Mix::default()).pool(true, 1, 50);
        let got = scan(&t[0].stamped(99), true).unwrap();
        assert_eq!((got.items, got.first_stamp), (50, Some(99)));
    }

    #[test]
    fn noise_share_follows_the_mix() {
        let pool = Generator::new(3, Mix::default()).pool(false, 20, 1000);
        let noise: u64 = pool.iter().map(|r| r.noise).sum();
        // 20,000 records at p = 0.5: far inside +-3%.
        assert!((9_400..=10_600).contains(&noise), "{noise}");
        let decoded = ExportLogsServiceRequest::decode(pool[0].bytes.clone()).unwrap();
        let debug = decoded
            .resource_logs
            .iter()
            .flat_map(|r| &r.scope_logs)
            .flat_map(|s| &s.log_records)
            .filter(|r| r.severity_text == "DEBUG")
            .count() as u64;
        assert_eq!(debug, pool[0].noise);
    }
}
