//! Builders for the OTLP records the tests feed through the processors.
#![allow(dead_code)]

pub use weir_api::fixtures::kv;
use weir_api::otlp::collector::logs::v1::ExportLogsServiceRequest;
use weir_api::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use weir_api::otlp::collector::trace::v1::ExportTraceServiceRequest;
use weir_api::otlp::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use weir_api::otlp::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use weir_api::otlp::metrics::v1::{
    metric::Data, number_data_point, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum,
};
use weir_api::otlp::resource::v1::Resource;
use weir_api::otlp::trace::v1::{span::Event, ResourceSpans, ScopeSpans, Span, Status};
use weir_api::{Batch, Payload};

pub fn s(v: &str) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::StringValue(v.into())),
    }
}
pub fn i(v: i64) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::IntValue(v)),
    }
}
pub fn f(v: f64) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::DoubleValue(v)),
    }
}
pub fn b(v: bool) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::BoolValue(v)),
    }
}
pub fn bytes(v: &[u8]) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::BytesValue(v.to_vec())),
    }
}
pub fn map(kvs: Vec<KeyValue>) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::KvlistValue(
            weir_api::otlp::common::v1::KeyValueList { values: kvs },
        )),
    }
}
pub fn list(items: Vec<AnyValue>) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::ArrayValue(
            weir_api::otlp::common::v1::ArrayValue { values: items },
        )),
    }
}

pub fn resource(attrs: Vec<KeyValue>) -> Option<Resource> {
    Some(Resource {
        attributes: attrs,
        ..Default::default()
    })
}

pub fn scope(name: &str, version: &str) -> Option<InstrumentationScope> {
    Some(InstrumentationScope {
        name: name.into(),
        version: version.into(),
        ..Default::default()
    })
}

pub fn log(body: &str, severity: i32, attrs: Vec<KeyValue>) -> LogRecord {
    LogRecord {
        body: Some(s(body)),
        severity_number: severity,
        severity_text: severity_text(severity).into(),
        attributes: attrs,
        ..Default::default()
    }
}

fn severity_text(n: i32) -> &'static str {
    match n {
        1..=4 => "TRACE",
        5..=8 => "DEBUG",
        9..=12 => "INFO",
        13..=16 => "WARN",
        17..=20 => "ERROR",
        21..=24 => "FATAL",
        _ => "",
    }
}

/// Logs grouped as (resource attributes, scope name, records).
pub fn logs_batch(groups: Vec<(Vec<KeyValue>, &str, Vec<LogRecord>)>) -> Batch {
    Batch::new(Payload::Logs(ExportLogsServiceRequest {
        resource_logs: groups
            .into_iter()
            .map(|(r, sc, recs)| ResourceLogs {
                resource: resource(r),
                scope_logs: vec![ScopeLogs {
                    scope: scope(sc, "1.0"),
                    log_records: recs,
                    ..Default::default()
                }],
                ..Default::default()
            })
            .collect(),
    }))
}

pub fn span(name: &str, kind: i32, status: i32, attrs: Vec<KeyValue>) -> Span {
    Span {
        trace_id: vec![1; 16],
        span_id: vec![2; 8],
        name: name.into(),
        kind,
        status: Some(Status {
            code: status,
            ..Default::default()
        }),
        attributes: attrs,
        ..Default::default()
    }
}

pub fn event(name: &str, attrs: Vec<KeyValue>) -> Event {
    Event {
        name: name.into(),
        attributes: attrs,
        ..Default::default()
    }
}

pub fn traces_batch(groups: Vec<(Vec<KeyValue>, &str, Vec<Span>)>) -> Batch {
    Batch::new(Payload::Traces(ExportTraceServiceRequest {
        resource_spans: groups
            .into_iter()
            .map(|(r, sc, spans)| ResourceSpans {
                resource: resource(r),
                scope_spans: vec![ScopeSpans {
                    scope: scope(sc, "1.0"),
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            })
            .collect(),
    }))
}

pub fn int_point(v: i64, attrs: Vec<KeyValue>) -> NumberDataPoint {
    NumberDataPoint {
        attributes: attrs,
        value: Some(number_data_point::Value::AsInt(v)),
        ..Default::default()
    }
}
pub fn double_point(v: f64, attrs: Vec<KeyValue>) -> NumberDataPoint {
    NumberDataPoint {
        attributes: attrs,
        value: Some(number_data_point::Value::AsDouble(v)),
        ..Default::default()
    }
}

pub fn gauge(name: &str, points: Vec<NumberDataPoint>) -> Metric {
    Metric {
        name: name.into(),
        data: Some(Data::Gauge(Gauge {
            data_points: points,
        })),
        ..Default::default()
    }
}
pub fn sum(name: &str, points: Vec<NumberDataPoint>) -> Metric {
    Metric {
        name: name.into(),
        unit: "1".into(),
        data: Some(Data::Sum(Sum {
            data_points: points,
            aggregation_temporality: 2,
            is_monotonic: true,
        })),
        ..Default::default()
    }
}
pub fn histogram(name: &str, counts: &[u64]) -> Metric {
    Metric {
        name: name.into(),
        data: Some(Data::Histogram(Histogram {
            data_points: counts
                .iter()
                .map(|c| HistogramDataPoint {
                    count: *c,
                    sum: Some(*c as f64 * 1.5),
                    ..Default::default()
                })
                .collect(),
            aggregation_temporality: 1,
        })),
        ..Default::default()
    }
}

pub fn metrics_batch(groups: Vec<(Vec<KeyValue>, &str, Vec<Metric>)>) -> Batch {
    Batch::new(Payload::Metrics(ExportMetricsServiceRequest {
        resource_metrics: groups
            .into_iter()
            .map(|(r, sc, metrics)| ResourceMetrics {
                resource: resource(r),
                scope_metrics: vec![ScopeMetrics {
                    scope: scope(sc, "1.0"),
                    metrics,
                    ..Default::default()
                }],
                ..Default::default()
            })
            .collect(),
    }))
}

/// Log bodies left in a batch, in order.
pub fn log_bodies(batch: &Batch) -> Vec<String> {
    let Payload::Logs(r) = batch.payload() else {
        panic!("not logs")
    };
    r.resource_logs
        .iter()
        .flat_map(|rl| &rl.scope_logs)
        .flat_map(|sl| &sl.log_records)
        .map(|l| match l.body.as_ref().and_then(|b| b.value.as_ref()) {
            Some(any_value::Value::StringValue(s)) => s.clone(),
            _ => String::new(),
        })
        .collect()
}

/// Span names left in a batch, in order.
pub fn span_names(batch: &Batch) -> Vec<String> {
    let Payload::Traces(r) = batch.payload() else {
        panic!("not traces")
    };
    r.resource_spans
        .iter()
        .flat_map(|rs| &rs.scope_spans)
        .flat_map(|ss| &ss.spans)
        .map(|s| s.name.clone())
        .collect()
}

/// `metric name: point count` for every metric left, in order.
pub fn metric_points(batch: &Batch) -> Vec<String> {
    let Payload::Metrics(r) = batch.payload() else {
        panic!("not metrics")
    };
    r.resource_metrics
        .iter()
        .flat_map(|rm| &rm.scope_metrics)
        .flat_map(|sm| &sm.metrics)
        .map(|m| {
            let n = match &m.data {
                None => 0,
                Some(Data::Gauge(g)) => g.data_points.len(),
                Some(Data::Sum(s)) => s.data_points.len(),
                Some(Data::Histogram(h)) => h.data_points.len(),
                Some(Data::ExponentialHistogram(h)) => h.data_points.len(),
                Some(Data::Summary(s)) => s.data_points.len(),
            };
            format!("{}:{n}", m.name)
        })
        .collect()
}

/// Parses a YAML snippet into the JSON value a factory receives, with the rules of Weir's
/// config loader (pipeline/src/config/yaml.rs, the Collector's YAML 1.2 core schema): `n`,
/// `y`, `on`, `off`, `yes` stay strings; `0755` and `1_000` keep their spelling.
pub fn yaml(src: &str) -> serde_json::Value {
    serde_saphyr::from_str_with_options(
        src,
        serde_saphyr::options! {
            strict_booleans: true,
            leading_zero_numbers_as_strings: true,
            underscored_numbers_as_strings: true,
        },
    )
    .expect("test YAML parses")
}

/// A deterministic 64-bit generator (splitmix64) for trace ids.
pub struct SplitMix(pub u64);
impl SplitMix {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn trace_id(&mut self) -> Vec<u8> {
        let mut id = self.next().to_be_bytes().to_vec();
        id.extend_from_slice(&self.next().to_be_bytes());
        id
    }
}
