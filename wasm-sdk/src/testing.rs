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
///
/// ```
/// use weir_wasm_sdk::testing::IntoAnyValue;
/// use weir_wasm_sdk::otlp::common::v1::any_value::Value;
/// assert_eq!(true.into_any_value().value, Some(Value::BoolValue(true)));
/// ```
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
///
/// ```
/// use weir_wasm_sdk::testing::{kv, log_record};
/// use weir_wasm_sdk::otlp::logs::v1::LogRecord;
/// let r = LogRecord { attributes: vec![kv("user.id", "42")], ..log_record("login", 9) };
/// assert_eq!(r.severity_number, 9);
/// ```
pub fn log_record(body: &str, severity_number: i32) -> LogRecord {
    LogRecord {
        severity_number,
        body: Some(body.into_any_value()),
        ..Default::default()
    }
}

/// A scope named `name`.
///
/// ```
/// let s = weir_wasm_sdk::testing::scope("my.lib");
/// assert_eq!(s.name, "my.lib");
/// ```
pub fn scope(name: &str) -> InstrumentationScope {
    InstrumentationScope {
        name: name.to_string(),
        ..Default::default()
    }
}

/// A logs batch of one resource (with `resource_attributes`) and one scope.
///
/// ```
/// use weir_wasm_sdk::testing::{kv, log_record, logs_request};
/// let mut batch = logs_request(vec![kv("service.name", "a")], vec![log_record("x", 9)]);
/// // More resources: append the entries of another request.
/// batch.resource_logs.extend(logs_request(vec![kv("service.name", "b")], vec![]).resource_logs);
/// assert_eq!(batch.resource_logs.len(), 2);
/// ```
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
///
/// ```
/// use weir_wasm_sdk::testing::span;
/// use weir_wasm_sdk::otlp::trace::v1::Span;
/// let s = Span { kind: 2, ..span("GET /", [1; 16], [2; 8]) };
/// assert_eq!(s.trace_id, vec![1; 16]);
/// ```
pub fn span(name: &str, trace_id: [u8; 16], span_id: [u8; 8]) -> Span {
    Span {
        name: name.to_string(),
        trace_id: trace_id.to_vec(),
        span_id: span_id.to_vec(),
        ..Default::default()
    }
}

/// A traces batch of one resource and one scope.
///
/// ```
/// use weir_wasm_sdk::testing::{kv, span, traces_request};
/// let batch = traces_request(vec![kv("service.name", "a")], vec![span("GET /", [1; 16], [2; 8])]);
/// assert_eq!(batch.resource_spans[0].scope_spans[0].spans.len(), 1);
/// ```
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
///
/// ```
/// use weir_wasm_sdk::testing::{double_point, kv};
/// let p = double_point(vec![kv("cpu", "0")], 1_000, 0.25);
/// assert_eq!(p.time_unix_nano, 1_000);
/// ```
pub fn double_point(attributes: Vec<KeyValue>, time_unix_nano: u64, value: f64) -> NumberDataPoint {
    NumberDataPoint {
        attributes,
        time_unix_nano,
        value: Some(number_data_point::Value::AsDouble(value)),
        ..Default::default()
    }
}

/// A number point (gauge or sum) with an integer value.
///
/// ```
/// use weir_wasm_sdk::testing::int_point;
/// use weir_wasm_sdk::otlp::metrics::v1::number_data_point::Value;
/// assert_eq!(int_point(vec![], 1, 7).value, Some(Value::AsInt(7)));
/// ```
pub fn int_point(attributes: Vec<KeyValue>, time_unix_nano: u64, value: i64) -> NumberDataPoint {
    NumberDataPoint {
        attributes,
        time_unix_nano,
        value: Some(number_data_point::Value::AsInt(value)),
        ..Default::default()
    }
}

/// A gauge metric.
///
/// ```
/// use weir_wasm_sdk::testing::{double_point, gauge};
/// let m = gauge("cpu.utilization", vec![double_point(vec![], 1, 0.5)]);
/// assert_eq!(weir_wasm_sdk::point_count(&m), 1);
/// ```
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
///
/// ```
/// use weir_wasm_sdk::testing::{counter, int_point};
/// let m = counter("requests", vec![int_point(vec![], 1, 10)]);
/// assert_eq!(m.name, "requests");
/// ```
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
///
/// ```
/// use weir_wasm_sdk::testing::histogram_point;
/// let p = histogram_point(vec![], 1, &[10.0, 100.0], &[4, 2, 1], 250.0);
/// assert_eq!(p.count, 7);
/// ```
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
///
/// ```
/// use weir_wasm_sdk::testing::{histogram, histogram_point};
/// let m = histogram("latency", vec![histogram_point(vec![], 1, &[1.0], &[1, 1], 3.0)]);
/// assert_eq!(weir_wasm_sdk::point_count(&m), 1);
/// ```
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
///
/// ```
/// use weir_wasm_sdk::testing::{counter, int_point, metrics_request};
/// let batch = metrics_request(vec![], vec![counter("c", vec![int_point(vec![], 1, 1)])]);
/// assert_eq!(batch.resource_metrics.len(), 1);
/// ```
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
///
/// ```
/// use weir_wasm_sdk::testing::{apply, log_record, logs_request};
/// use weir_wasm_sdk::Answer;
/// let batch = logs_request(vec![], vec![log_record("a", 1), log_record("b", 9)]);
/// let out = apply(&batch, Answer::Verdicts(vec![0, 1]))?;
/// assert_eq!((out.input, out.kept, out.dropped, out.replaced), (2, 1, 1, 0));
/// assert_eq!(out.bodies(), ["b"]);
/// # Ok::<(), weir_wasm_sdk::Error>(())
/// ```
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
    /// The string bodies of the forwarded records, in order (empty for non-string bodies);
    /// see the [`run_logs`] example.
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
    /// The names of the forwarded spans, in order; see the [`run_spans`] example.
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
    /// The forwarded metrics, in order; see the [`run_metrics`] example.
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
///
/// ```
/// use weir_wasm_sdk::testing::{apply, log_record, logs_request};
/// use weir_wasm_sdk::Answer;
/// let batch = logs_request(vec![], vec![log_record("a", 1)]);
/// assert_eq!(apply(&batch, Answer::Unchanged)?.output, batch);
/// assert!(apply(&batch, Answer::Verdicts(vec![1, 1])).is_err()); // wrong count
/// # Ok::<(), weir_wasm_sdk::Error>(())
/// ```
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

/// Runs `processor.process_logs` on `batch` as Weir does and returns what Weir would forward
/// (the module-level example shows it in use).
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
///
/// ```
/// use weir_wasm_sdk::testing::{run_spans, span, traces_request};
/// use weir_wasm_sdk::{Error, Processor, Spans};
/// struct DropHealth;
/// impl Processor for DropHealth {
///     fn init(_: &weir_wasm_sdk::serde_json::Value) -> Result<Self, Error> { Ok(DropHealth) }
///     fn process_spans(&mut self, spans: &mut Spans<'_>) -> Result<(), Error> {
///         spans.retain_view(|s| s.name() != "GET /healthz")
///     }
/// }
/// let batch = traces_request(vec![], vec![
///     span("GET /healthz", [1; 16], [1; 8]),
///     span("GET /pay", [2; 16], [2; 8]),
/// ]);
/// assert_eq!(run_spans(&mut DropHealth, &batch)?.span_names(), ["GET /pay"]);
/// # Ok::<(), Error>(())
/// ```
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
///
/// ```
/// use weir_wasm_sdk::testing::{counter, gauge, int_point, metrics_request, run_metrics};
/// use weir_wasm_sdk::{Error, Metrics, Processor};
/// struct NoDebug;
/// impl Processor for NoDebug {
///     fn init(_: &weir_wasm_sdk::serde_json::Value) -> Result<Self, Error> { Ok(NoDebug) }
///     fn process_metrics(&mut self, m: &mut Metrics<'_>) -> Result<(), Error> {
///         m.retain_metrics_view(|m| !m.name().starts_with("debug."))
///     }
/// }
/// let batch = metrics_request(vec![], vec![
///     gauge("debug.x", vec![int_point(vec![], 1, 1)]),
///     counter("requests", vec![int_point(vec![], 1, 1)]),
/// ]);
/// let out = run_metrics(&mut NoDebug, &batch)?;
/// assert_eq!(out.metrics()[0].name, "requests");
/// # Ok::<(), Error>(())
/// ```
pub fn run_metrics<P: Processor>(
    processor: &mut P,
    batch: &ExportMetricsServiceRequest,
) -> Result<Outcome<ExportMetricsServiceRequest>, Error> {
    let bytes = batch.encode_to_vec();
    let mut metrics = Metrics::from_protobuf(&bytes);
    processor.process_metrics(&mut metrics)?;
    apply(batch, metrics.finish())
}
