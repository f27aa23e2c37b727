//! Native unit tests for processors: builders for OTLP batches and runners that call your
//! [`Processor`] the way Weir does and return what Weir would forward.
//!
//! Test natively (`cargo test`, no wasm target needed): the export macro's entry points are
//! plain functions on the host, and everything here is ordinary Rust. Nothing outside this
//! crate is needed (the OTLP types are [`crate::otlp`], prost is [`crate::prost`]).
//!
//! ```
//! use weir_wasm_sdk::testing::{kv, log_record, logs_request, run_logs};
//! use weir_wasm_sdk::{Error, Logs, Processor};
//!
//! struct DropDebug;
//! impl Processor for DropDebug {
//!     fn init(_: &weir_wasm_sdk::serde_json::Value) -> Result<Self, Error> {
//!         Ok(DropDebug)
//!     }
//!     fn process_logs(&mut self, logs: &mut Logs<'_>) -> Result<(), Error> {
//!         logs.retain_view(|r| r.severity_number() >= 9)
//!     }
//! }
//!
//! let batch = logs_request(
//!     vec![kv("service.name", "api")],
//!     vec![log_record("debug", 5), log_record("info", 9)],
//! );
//! let out = run_logs(&mut DropDebug, &batch).unwrap();
//! assert_eq!(out.kept, 1);
//! assert_eq!(out.dropped, 1);
//! assert_eq!(out.bodies(), ["info"]);
//! ```

use prost::Message;

use crate::batch::{Answer, ExportRequest};
use crate::otlp::collector::logs::v1::ExportLogsServiceRequest;
use crate::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use crate::otlp::collector::trace::v1::ExportTraceServiceRequest;
use crate::otlp::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use crate::otlp::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use crate::otlp::metrics::v1::{
    metric::Data, number_data_point, AggregationTemporality, Gauge, Histogram, HistogramDataPoint,
    Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};
use crate::otlp::resource::v1::Resource;
use crate::otlp::trace::v1::{ResourceSpans, ScopeSpans, Span};
use crate::{Error, Logs, Metrics, Processor, Spans};

/// An attribute value from a Rust value: `&str`, `String`, `i64`, `f64` or `bool`.
pub trait IntoAnyValue {
    /// The OTLP value.
    fn into_any_value(self) -> AnyValue;
}

fn any(value: any_value::Value) -> AnyValue {
    AnyValue { value: Some(value) }
}

impl IntoAnyValue for &str {
    fn into_any_value(self) -> AnyValue {
        any(any_value::Value::StringValue(self.to_string()))
    }
}

impl IntoAnyValue for String {
    fn into_any_value(self) -> AnyValue {
        any(any_value::Value::StringValue(self))
    }
}

impl IntoAnyValue for i64 {
    fn into_any_value(self) -> AnyValue {
        any(any_value::Value::IntValue(self))
    }
}

impl IntoAnyValue for f64 {
    fn into_any_value(self) -> AnyValue {
        any(any_value::Value::DoubleValue(self))
    }
}

impl IntoAnyValue for bool {
    fn into_any_value(self) -> AnyValue {
        any(any_value::Value::BoolValue(self))
    }
}

/// An attribute.
///
/// ```
/// use weir_wasm_sdk::testing::kv;
/// let a = kv("http.status_code", 500_i64);
/// assert_eq!(a.key, "http.status_code");
/// ```
pub fn kv(key: &str, value: impl IntoAnyValue) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(value.into_any_value()),
        ..Default::default()
    }
}

/// A log record with a string body and a severity number (set other fields with struct
/// update syntax: `LogRecord { attributes: vec![...], ..log_record("x", 9) }`).
pub fn log_record(body: &str, severity_number: i32) -> LogRecord {
    LogRecord {
        severity_number,
        body: Some(body.into_any_value()),
        ..Default::default()
    }
}

/// A scope named `name`.
pub fn scope(name: &str) -> InstrumentationScope {
    InstrumentationScope {
        name: name.to_string(),
        ..Default::default()
    }
}

/// A logs batch of one resource (with `resource_attributes`) and one scope.
pub fn logs_request(
    resource_attributes: Vec<KeyValue>,
    records: Vec<LogRecord>,
) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: resource_attributes,
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// A span named `name` in trace `trace_id` with span id `span_id` (other fields with struct
/// update syntax).
pub fn span(name: &str, trace_id: [u8; 16], span_id: [u8; 8]) -> Span {
    Span {
        name: name.to_string(),
        trace_id: trace_id.to_vec(),
        span_id: span_id.to_vec(),
        ..Default::default()
    }
}

/// A traces batch of one resource and one scope.
pub fn traces_request(
    resource_attributes: Vec<KeyValue>,
    spans: Vec<Span>,
) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: resource_attributes,
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// A number point (gauge or sum) with a double value.
pub fn double_point(attributes: Vec<KeyValue>, time_unix_nano: u64, value: f64) -> NumberDataPoint {
    NumberDataPoint {
        attributes,
        time_unix_nano,
        value: Some(number_data_point::Value::AsDouble(value)),
        ..Default::default()
    }
}

/// A number point (gauge or sum) with an integer value.
pub fn int_point(attributes: Vec<KeyValue>, time_unix_nano: u64, value: i64) -> NumberDataPoint {
    NumberDataPoint {
        attributes,
        time_unix_nano,
        value: Some(number_data_point::Value::AsInt(value)),
        ..Default::default()
    }
}

/// A gauge metric.
pub fn gauge(name: &str, points: Vec<NumberDataPoint>) -> Metric {
    Metric {
        name: name.to_string(),
        data: Some(Data::Gauge(Gauge {
            data_points: points,
        })),
        ..Default::default()
    }
}

/// A cumulative monotonic sum (a counter).
pub fn counter(name: &str, points: Vec<NumberDataPoint>) -> Metric {
    Metric {
        name: name.to_string(),
        data: Some(Data::Sum(Sum {
            data_points: points,
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
            is_monotonic: true,
        })),
        ..Default::default()
    }
}

/// A histogram point with explicit `bounds` and `counts` (one more count than bounds);
/// `count` is their total.
pub fn histogram_point(
    attributes: Vec<KeyValue>,
    time_unix_nano: u64,
    bounds: &[f64],
    counts: &[u64],
    sum: f64,
) -> HistogramDataPoint {
    HistogramDataPoint {
        attributes,
        time_unix_nano,
        count: counts.iter().sum(),
        sum: Some(sum),
        bucket_counts: counts.to_vec(),
        explicit_bounds: bounds.to_vec(),
        ..Default::default()
    }
}

/// A cumulative histogram metric.
pub fn histogram(name: &str, points: Vec<HistogramDataPoint>) -> Metric {
    Metric {
        name: name.to_string(),
        data: Some(Data::Histogram(Histogram {
            data_points: points,
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
        })),
        ..Default::default()
    }
}

/// A metrics batch of one resource and one scope.
pub fn metrics_request(
    resource_attributes: Vec<KeyValue>,
    metrics: Vec<Metric>,
) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: resource_attributes,
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// What a processor did to one batch, as Weir applies it.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome<R> {
    /// The processor's answer.
    pub answer: Answer,
    /// The batch Weir would forward (the input for `Unchanged`, the input with the dropped
    /// items removed for `Verdicts`, the decoded replacement).
    pub output: R,
    /// Items in the input.
    pub input: usize,
    /// Items forwarded unchanged (`Unchanged` or keep verdicts).
    pub kept: usize,
    /// Items removed (drop verdicts, or missing from a replacement).
    pub dropped: usize,
    /// Items forwarded from a replacement.
    pub replaced: usize,
}

impl Outcome<ExportLogsServiceRequest> {
    /// The string bodies of the forwarded records, in order (empty for non-string bodies).
    pub fn bodies(&self) -> Vec<String> {
        self.output
            .resource_logs
            .iter()
            .flat_map(|r| &r.scope_logs)
            .flat_map(|s| &s.log_records)
            .map(|r| match r.body.as_ref().and_then(|b| b.value.as_ref()) {
                Some(any_value::Value::StringValue(s)) => s.clone(),
                _ => String::new(),
            })
            .collect()
    }
}

impl Outcome<ExportTraceServiceRequest> {
    /// The names of the forwarded spans, in order.
    pub fn span_names(&self) -> Vec<String> {
        self.output
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| &s.spans)
            .map(|s| s.name.clone())
            .collect()
    }
}

impl Outcome<ExportMetricsServiceRequest> {
    /// The forwarded metrics, in order.
    pub fn metrics(&self) -> Vec<&Metric> {
        self.output
            .resource_metrics
            .iter()
            .flat_map(|r| &r.scope_metrics)
            .flat_map(|s| &s.metrics)
            .collect()
    }
}

/// Applies an answer to `input` as Weir does, with the checks Weir makes (verdict count,
/// verdict bytes, replacement item count).
pub fn apply<R: ExportRequest>(input: &R, answer: Answer) -> Result<Outcome<R>, Error> {
    let n = input.item_count();
    let (output, kept, dropped, replaced) = match &answer {
        Answer::Unchanged => (input.clone(), n, 0, 0),
        Answer::Verdicts(v) => {
            if v.len() != n {
                return Err(Error::new(format!(
                    "{} verdicts for {n} items (Weir would count a malformed_output failure)",
                    v.len()
                )));
            }
            if let Some(b) = v.iter().find(|b| **b > 1) {
                return Err(Error::new(format!("verdict byte {b} is neither 0 nor 1")));
            }
            let mut output = input.clone();
            let mut next = v.iter();
            output.retain_items(&mut || next.next() == Some(&1));
            let kept = v.iter().filter(|b| **b == 1).count();
            (output, kept, n - kept, 0)
        }
        Answer::Replacement(bytes) => {
            let output = R::decode(bytes.as_slice())
                .map_err(|e| Error::new(format!("replacement does not decode: {e}")))?;
            let m = output.item_count();
            if m > n {
                return Err(Error::new(format!(
                    "replacement holds {m} items, more than the {n} sent (Weir refuses it)"
                )));
            }
            (output, 0, n - m, m)
        }
    };
    Ok(Outcome {
        answer,
        output,
        input: n,
        kept,
        dropped,
        replaced,
    })
}

/// Runs `processor.process_logs` on `batch` as Weir does and returns what Weir would forward.
/// An `Err` is the processor's error (Weir would pass the batch on, or drop it with
/// `on_error: drop`) or an answer Weir would refuse.
pub fn run_logs<P: Processor>(
    processor: &mut P,
    batch: &ExportLogsServiceRequest,
) -> Result<Outcome<ExportLogsServiceRequest>, Error> {
    let bytes = batch.encode_to_vec();
    let mut logs = Logs::from_protobuf(&bytes);
    processor.process_logs(&mut logs)?;
    apply(batch, logs.finish())
}

/// [`run_logs`] for spans.
pub fn run_spans<P: Processor>(
    processor: &mut P,
    batch: &ExportTraceServiceRequest,
) -> Result<Outcome<ExportTraceServiceRequest>, Error> {
    let bytes = batch.encode_to_vec();
    let mut spans = Spans::from_protobuf(&bytes);
    processor.process_spans(&mut spans)?;
    apply(batch, spans.finish())
}

/// [`run_logs`] for metrics.
pub fn run_metrics<P: Processor>(
    processor: &mut P,
    batch: &ExportMetricsServiceRequest,
) -> Result<Outcome<ExportMetricsServiceRequest>, Error> {
    let bytes = batch.encode_to_vec();
    let mut metrics = Metrics::from_protobuf(&bytes);
    processor.process_metrics(&mut metrics)?;
    apply(batch, metrics.finish())
}
