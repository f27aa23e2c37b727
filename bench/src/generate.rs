//! Deterministic, realistic OTLP load: several services, attribute sets, bodies with
//! variable parts and a configurable share of noise (debug logs, health-check spans,
//! `debug.*` metrics).

use bytes::Bytes;
use prost::Message;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use weir_api::otlp::collector::logs::v1::ExportLogsServiceRequest;
use weir_api::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use weir_api::otlp::collector::trace::v1::ExportTraceServiceRequest;
use weir_api::otlp::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use weir_api::otlp::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use weir_api::otlp::metrics::v1::{
    metric, number_data_point, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum,
};
use weir_api::otlp::resource::v1::Resource;
use weir_api::otlp::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use weir_api::Signal;

/// The sentinel written into the first item's stamp field, found in the encoding and
/// replaced by the send time on every send. Logs: the first record's
/// `observed_time_unix_nano` (0 in every other record); spans: the first span's
/// `start_time_unix_nano`; metrics: the `start_time_unix_nano` of the first point of the
/// first metric, always a gauge (the generator's gauges carry no start time otherwise).
const STAMP_SENTINEL: u64 = 0x5A17_5A17_5A17_5A17;

const SERVICES: [&str; 5] = ["checkout", "payments", "cart", "frontend", "inventory"];

/// What a generated metric is.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// A gauge of doubles.
    Gauge,
    /// A monotonic cumulative sum of integers.
    Counter,
    /// A cumulative histogram with explicit bounds (10 bounds, 11 buckets).
    Histogram,
}

/// Name, unit and kind of the metrics the services report. The first is a gauge: the first
/// metric of every request is this one (it carries the stamp).
const METRICS: [(&str, &str, Kind); 6] = [
    ("process.cpu.utilization", "1", Kind::Gauge),
    ("http.server.request.duration", "s", Kind::Histogram),
    ("http.server.requests", "{request}", Kind::Counter),
    ("system.memory.usage", "By", Kind::Gauge),
    ("db.client.operation.duration", "s", Kind::Histogram),
    (
        "messaging.client.consumed.messages",
        "{message}",
        Kind::Counter,
    ),
];

/// The metric noise: internal debug metrics (`debug.` prefix, what the metrics drop
/// scenario's policy removes), their points carrying a random cache key.
const DEBUG_METRICS: [(&str, &str, Kind); 3] = [
    ("debug.cache.lookups", "{lookup}", Kind::Counter),
    ("debug.queue.depth", "{item}", Kind::Gauge),
    ("debug.handler.duration", "ms", Kind::Histogram),
];

const ROUTES: [&str; 4] = [
    "/api/v1/orders/{id}",
    "/api/v1/pay",
    "/api/v1/cart",
    "/healthz",
];

/// Histogram bucket bounds (seconds, as the HTTP semantic conventions advise).
const BOUNDS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// Time of the generated data points, and the start of cumulative series an hour before.
const POINT_TIME: u64 = 1_700_000_000_000_000_000;
const PROCESS_START: u64 = POINT_TIME - 3_600_000_000_000;

/// `AGGREGATION_TEMPORALITY_CUMULATIVE`.
const CUMULATIVE: i32 = 2;

/// How much noise the load holds.
#[derive(Debug, Clone, Copy)]
pub struct Mix {
    /// Share of log records at DEBUG severity (what the drop scenario removes).
    pub debug_share: f64,
    /// Share of spans that are health checks (`GET /healthz`, what the trace drop removes).
    pub health_share: f64,
    /// Share of metrics named `debug.*` (what the metric drop removes, every point of them);
    /// points per metric do not depend on it, so it is also the expected share of points.
    pub debug_metric_share: f64,
}

impl Default for Mix {
    fn default() -> Self {
        Mix {
            debug_share: 0.5,
            health_share: 0.5,
            debug_metric_share: 0.5,
        }
    }
}

/// One pre-encoded request ready to send.
#[derive(Debug, Clone)]
pub struct Request {
    /// The protobuf bytes.
    pub bytes: Bytes,
    /// Items in it (log records, spans or metric data points).
    pub items: u64,
    /// Items a policy dropping noise (DEBUG logs / health-check spans / points of `debug.*`
    /// metrics) removes.
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

    /// Up to four attributes of one data point; the `j`th point of a metric differs from its
    /// other points in them (a point per attribute set, as an SDK reports). Noise points
    /// carry a random cache key: the high-cardinality kind of metric a policy drops.
    fn point_attributes(&mut self, noise: bool, j: usize) -> Vec<KeyValue> {
        let n = self.rng.random_range(2..=4usize);
        let mut attrs = if noise {
            vec![
                kv(
                    "cache.key",
                    s(format!("user:{}", self.rng.random_range(0..1_000_000u32))),
                ),
                kv("worker", s(format!("w-{}", j % 8))),
                kv(
                    "thread.id",
                    any_value::Value::IntValue(self.rng.random_range(1..64)),
                ),
                kv("build", s("dev".into())),
            ]
        } else {
            vec![
                kv(
                    "http.request.method",
                    s(["GET", "POST", "PUT"][j % 3].into()),
                ),
                kv("http.route", s(ROUTES[(j / 3) % ROUTES.len()].into())),
                kv(
                    "http.response.status_code",
                    any_value::Value::IntValue([200, 200, 201, 404, 500][j % 5]),
                ),
                kv("server.port", any_value::Value::IntValue(8080)),
            ]
        };
        attrs.truncate(n);
        attrs
    }

    fn number_point(&mut self, noise: bool, j: usize, start: u64, time: u64) -> NumberDataPoint {
        NumberDataPoint {
            attributes: self.point_attributes(noise, j),
            start_time_unix_nano: start,
            time_unix_nano: time,
            ..Default::default()
        }
    }

    /// One metric of `points` data points, and whether it is noise (`debug.*`). The first
    /// metric of a request is a gauge whose first point carries the stamp.
    fn metric(&mut self, first: bool, points: usize) -> (Metric, bool) {
        let noise = !first && self.rng.random_bool(self.mix.debug_metric_share);
        let (name, unit, kind) = if first {
            METRICS[0]
        } else if noise {
            DEBUG_METRICS[self.rng.random_range(0..DEBUG_METRICS.len())]
        } else {
            METRICS[self.rng.random_range(0..METRICS.len())]
        };
        let time = POINT_TIME + self.rng.random_range(0..60_000u64) * 1_000_000;
        let data = match kind {
            Kind::Gauge => {
                let mut data_points = Vec::with_capacity(points);
                for j in 0..points {
                    // Gauges carry no start time, except the stamped first point.
                    let start = if first && j == 0 { STAMP_SENTINEL } else { 0 };
                    let mut p = self.number_point(noise, j, start, time);
                    p.value = Some(number_data_point::Value::AsDouble(
                        self.rng.random_range(0.0..100.0),
                    ));
                    data_points.push(p);
                }
                metric::Data::Gauge(Gauge { data_points })
            }
            Kind::Counter => {
                let mut data_points = Vec::with_capacity(points);
                for j in 0..points {
                    let mut p = self.number_point(noise, j, PROCESS_START, time);
                    p.value = Some(number_data_point::Value::AsInt(
                        self.rng.random_range(0..1_000_000),
                    ));
                    data_points.push(p);
                }
                metric::Data::Sum(Sum {
                    data_points,
                    aggregation_temporality: CUMULATIVE,
                    is_monotonic: true,
                })
            }
            Kind::Histogram => {
                let mut data_points = Vec::with_capacity(points);
                for j in 0..points {
                    let bucket_counts: Vec<u64> = (0..=BOUNDS.len())
                        .map(|_| self.rng.random_range(0..50u64))
                        .collect();
                    let count = bucket_counts.iter().sum();
                    // Each bucket's observations counted at its upper bound (the last: 10).
                    let sum = bucket_counts
                        .iter()
                        .zip(BOUNDS.iter().chain([10.0].iter()))
                        .map(|(c, b)| *c as f64 * b)
                        .sum();
                    data_points.push(HistogramDataPoint {
                        attributes: self.point_attributes(noise, j),
                        start_time_unix_nano: PROCESS_START,
                        time_unix_nano: time,
                        count,
                        sum: Some(sum),
                        bucket_counts,
                        explicit_bounds: BOUNDS.to_vec(),
                        min: Some(0.001),
                        max: Some(10.0),
                        ..Default::default()
                    });
                }
                metric::Data::Histogram(Histogram {
                    data_points,
                    aggregation_temporality: CUMULATIVE,
                })
            }
        };
        let m = Metric {
            name: name.to_string(),
            unit: unit.to_string(),
            data: Some(data),
            ..Default::default()
        };
        (m, noise)
    }

    /// A metrics request of `n` data points spread over a few services.
    #[cfg(test)]
    pub fn metrics(&mut self, n: usize) -> ExportMetricsServiceRequest {
        self.metrics_counted(n).0
    }

    /// Splits `n` points over up to four services, in metrics of 1 to 8 points; returns the
    /// request and its points of noise metrics.
    fn metrics_counted(&mut self, n: usize) -> (ExportMetricsServiceRequest, u64) {
        let groups = 4.min(n.max(1));
        let (mut noise, mut made) = (0u64, 0usize);
        let mut resource_metrics = Vec::with_capacity(groups);
        for g in 0..groups {
            let count = if g + 1 == groups {
                n - made
            } else {
                n / groups
            };
            let (i, service) = self.pick_service();
            let mut metrics = Vec::new();
            let mut left = count;
            while left > 0 {
                let points = self.rng.random_range(1..=8usize).min(left);
                let (m, is_noise) = self.metric(made == 0, points);
                if is_noise {
                    noise += points as u64;
                }
                metrics.push(m);
                made += points;
                left -= points;
            }
            resource_metrics.push(ResourceMetrics {
                resource: Some(resource(service, i)),
                scope_metrics: vec![ScopeMetrics {
                    scope: Some(InstrumentationScope {
                        name: format!("{service}.meter"),
                        ..Default::default()
                    }),
                    metrics,
                    ..Default::default()
                }],
                ..Default::default()
            });
        }
        (ExportMetricsServiceRequest { resource_metrics }, noise)
    }

    /// A pool of `count` pre-encoded requests of `size` items each.
    pub fn pool(&mut self, signal: Signal, count: usize, size: usize) -> Vec<Request> {
        (0..count)
            .map(|_| {
                let (bytes, noise) = match signal {
                    Signal::Traces => {
                        let (r, noise) = self.spans_counted(size);
                        (r.encode_to_vec(), noise)
                    }
                    Signal::Logs => {
                        let (r, noise) = self.logs_counted(size);
                        (r.encode_to_vec(), noise)
                    }
                    Signal::Metrics => {
                        let (r, noise) = self.metrics_counted(size);
                        (r.encode_to_vec(), noise)
                    }
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
        let a = Generator::new(42, Mix::default()).pool(Signal::Logs, 3, 100);
        let b = Generator::new(42, Mix::default()).pool(Signal::Logs, 3, 100);
        assert_eq!(a[2].bytes, b[2].bytes);
        let r = &a[0];
        let stamped = r.stamped(123_456_789);
        let got = scan(&stamped, Signal::Logs).unwrap();
        assert_eq!(got.items, 100);
        assert_eq!(got.first_stamp, Some(123_456_789));
        let t = Generator::new(42, Mix::default()).pool(Signal::Traces, 1, 50);
        let got = scan(&t[0].stamped(99), Signal::Traces).unwrap();
        assert_eq!((got.items, got.first_stamp), (50, Some(99)));
        let m = Generator::new(42, Mix::default()).pool(Signal::Metrics, 2, 100);
        let again = Generator::new(42, Mix::default()).pool(Signal::Metrics, 2, 100);
        assert_eq!(m[1].bytes, again[1].bytes);
        for r in &m {
            assert_ne!(r.stamp_at, usize::MAX);
            let got = scan(&r.stamped(77), Signal::Metrics).unwrap();
            assert_eq!((got.items, got.first_stamp), (100, Some(77)));
        }
    }

    #[test]
    fn noise_share_follows_the_mix() {
        let pool = Generator::new(3, Mix::default()).pool(Signal::Logs, 20, 1000);
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

    fn points(m: &Metric) -> usize {
        match &m.data {
            Some(metric::Data::Gauge(g)) => g.data_points.len(),
            Some(metric::Data::Sum(s)) => s.data_points.len(),
            Some(metric::Data::Histogram(h)) => h.data_points.len(),
            other => panic!("the generator makes no {other:?}"),
        }
    }

    #[test]
    fn metrics_have_the_asked_points_and_count_their_noise() {
        let pool = Generator::new(5, Mix::default()).pool(Signal::Metrics, 20, 1000);
        let noise: u64 = pool.iter().map(|r| r.noise).sum();
        // Metrics of 1-8 points, each noise at p = 0.5: the point share stays near half.
        assert!((8_500..=11_500).contains(&noise), "{noise}");
        for r in &pool {
            let req = ExportMetricsServiceRequest::decode(r.bytes.clone()).unwrap();
            let metrics: Vec<&Metric> = req
                .resource_metrics
                .iter()
                .flat_map(|r| &r.scope_metrics)
                .flat_map(|s| &s.metrics)
                .collect();
            let total: usize = metrics.iter().map(|m| points(m)).sum();
            assert_eq!(total, 1000);
            let debug: usize = metrics
                .iter()
                .filter(|m| m.name.starts_with("debug."))
                .map(|m| points(m))
                .sum();
            assert_eq!(debug as u64, r.noise);
            // The first metric is the stamped gauge, kept by the drop policy.
            assert_eq!(metrics[0].name, "process.cpu.utilization");
            let Some(metric::Data::Gauge(g)) = &metrics[0].data else {
                panic!("first metric is not a gauge");
            };
            assert_eq!(g.data_points[0].start_time_unix_nano, STAMP_SENTINEL);
            for m in &metrics {
                match &m.data {
                    Some(metric::Data::Gauge(g)) => {
                        let stamped = g
                            .data_points
                            .iter()
                            .filter(|p| p.start_time_unix_nano != 0)
                            .count();
                        let expect = usize::from(std::ptr::eq(*m, metrics[0]));
                        assert_eq!(stamped, expect, "{}", m.name);
                    }
                    Some(metric::Data::Sum(s)) => {
                        assert!(s.is_monotonic);
                        assert_eq!(s.aggregation_temporality, CUMULATIVE);
                    }
                    Some(metric::Data::Histogram(h)) => {
                        for p in &h.data_points {
                            assert_eq!(p.bucket_counts.len(), 11);
                            assert_eq!(p.explicit_bounds.len(), 10);
                            assert_eq!(p.count, p.bucket_counts.iter().sum::<u64>());
                        }
                    }
                    _ => unreachable!(),
                }
                for p in 0..points(m) {
                    let attrs = match &m.data {
                        Some(metric::Data::Gauge(g)) => g.data_points[p].attributes.len(),
                        Some(metric::Data::Sum(s)) => s.data_points[p].attributes.len(),
                        Some(metric::Data::Histogram(h)) => h.data_points[p].attributes.len(),
                        _ => unreachable!(),
                    };
                    assert!((2..=4).contains(&attrs), "{attrs}");
                }
            }
            let resource = req.resource_metrics[0].resource.as_ref().unwrap();
            assert_eq!(resource.attributes[0].key, "service.name");
        }
        // One point requests: the lone point is the stamped gauge, never noise.
        let one = Generator::new(9, Mix::default()).pool(Signal::Metrics, 4, 1);
        assert!(one.iter().all(|r| r.items == 1 && r.noise == 0));
    }

    /// The drop scenarios' policy files (bench/scenarios/policies/<signal>), run by the
    /// policy processor's engine on the generator's requests, drop exactly the points the
    /// generator counts as noise: what `--fail-on-loss` relies on.
    #[test]
    fn scenario_policies_drop_exactly_the_noise() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/policies");
        for signal in [Signal::Logs, Signal::Traces, Signal::Metrics] {
            let loaded = weir_policy::load::load_path(&dir.join(signal.as_str()));
            assert!(loaded.errors.is_empty(), "{signal}: {:?}", loaded.errors);
            assert_eq!(loaded.policies.len(), 1, "{signal}");
            let stats = weir_policy_engine::stats::StatsRegistry::new();
            let set = weir_policy_engine::set::PolicySet::build(loaded.policies, &stats);
            let pool = Generator::new(17, Mix::default()).pool(signal, 8, 500);
            let mut noise = 0;
            for r in &pool {
                let mut batch = weir_api::Batch::decode(signal, r.stamped(1)).unwrap();
                weir_policy_engine::run::process(&set, &mut batch, false);
                assert_eq!(batch.item_count() as u64, r.items - r.noise, "{signal}");
                // The stamped first item survives the drop.
                let left = crate::scan::scan(&batch.to_protobuf(), signal).unwrap();
                assert_eq!(left.first_stamp, Some(1), "{signal}");
                noise += r.noise;
            }
            assert!(noise > 1000, "{signal}: {noise} noise items");
        }
    }
}
