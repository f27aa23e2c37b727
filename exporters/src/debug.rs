//! `debug`: shows each batch, for looking at what flows through a pipeline.
//!
//! ```yaml
//! exporters:
//!   debug:
//!     verbosity: basic          # basic (default): one line per batch with counts
//!                               # normal: one line per record
//!                               # detailed: every field, in the collector's text layout
//!                               # (ResourceLog #0, Resource attributes: ..., LogRecord #0, ...)
//!     sampling_initial: 2       # per second, the first N batches are shown ...
//!     sampling_thereafter: 1    # ... then every Mth (1 = all)
//!     use_internal_logger: true # true: Weir's log (tracing, level info); false: output_paths
//!     output_paths: [stdout]    # with use_internal_logger: false; stdout, stderr or files
//! ```
//!
//! `logging` (the collector's exporter that `debug` replaced) is read as `debug`, with a
//! deprecation warning; its `loglevel` maps to a verbosity (debug: detailed, info: normal,
//! anything else: basic) when `verbosity` is not given.
//!
//! As in the collector, output goes to Weir's own log by default (at info level, target
//! `weir::exporter::debug`), and sampling applies only there; `use_internal_logger: false`
//! writes every batch to standard output instead.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::Deserialize;
use weir_api::otlp::common::v1::{any_value, AnyValue, KeyValue};
use weir_api::otlp::metrics::v1::{metric, number_data_point};
use weir_api::{
    parse_component_config, Batch, BuildContext, BuildError, Component, ConfigErrors, ConsumeError,
    Consumer, Counter, ExporterConfig, ExporterFactory, Payload, PerSignal, SignalSet, Stage,
};

/// How much of each batch is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verbosity {
    /// One line per batch with counts (the default).
    #[default]
    Basic,
    /// One line per log record, span or data point.
    Normal,
    /// Every field of every record.
    Detailed,
}

fn default_sampling_initial() -> u64 {
    2
}
fn default_sampling_thereafter() -> u64 {
    1
}
fn default_true() -> bool {
    true
}

/// The `debug` exporter's config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DebugSettings {
    /// `basic`, `normal` or `detailed`. Default `basic`.
    #[serde(default)]
    pub verbosity: Verbosity,
    /// Batches shown per second before sampling starts. Default `2`.
    #[serde(default = "default_sampling_initial")]
    pub sampling_initial: u64,
    /// After `sampling_initial` in a second, every Mth batch is shown. Default `1` (all).
    #[serde(default = "default_sampling_thereafter")]
    pub sampling_thereafter: u64,
    /// Write to Weir's log (`true`) or to `output_paths` (`false`). Default `true`.
    #[serde(default = "default_true")]
    pub use_internal_logger: bool,
    /// Where batches are written when `use_internal_logger` is false: `stdout`, `stderr` or
    /// file paths (appended to, created when missing). Default: absent (standard output);
    /// set together with `use_internal_logger: true` it is an error, as in the collector.
    #[serde(default, deserialize_with = "weir_api::config::opt_string_list")]
    pub output_paths: Option<Vec<String>>,
    /// The `logging` exporter's level (only read under `exporters.logging`). Default: absent.
    #[serde(default, skip)]
    pub loglevel: Option<String>,
}

/// The deprecated `logging` exporter's config: `debug`'s fields plus `loglevel`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct LoggingSettings {
    loglevel: Option<String>,
    verbosity: Option<Verbosity>,
    #[serde(default = "default_sampling_initial")]
    sampling_initial: u64,
    #[serde(default = "default_sampling_thereafter")]
    sampling_thereafter: u64,
}

/// The verbosity the collector's `logging` exporter gave a `loglevel`.
fn verbosity_for_loglevel(level: &str) -> Option<Verbosity> {
    match level.to_ascii_lowercase().as_str() {
        "debug" => Some(Verbosity::Detailed),
        "info" => Some(Verbosity::Normal),
        "warn" | "error" | "dpanic" | "panic" | "fatal" => Some(Verbosity::Basic),
        _ => None,
    }
}

/// Factory of the deprecated `logging` exporter: builds a `debug` exporter.
pub struct LoggingFactory;

impl ExporterFactory for LoggingFactory {
    fn signals(&self) -> SignalSet {
        SignalSet::ALL
    }

    fn parse(
        &self,
        config: &serde_json::Value,
        path: &str,
    ) -> Result<Box<dyn ExporterConfig>, ConfigErrors> {
        let logging: LoggingSettings = parse_component_config(config, path)?;
        let mut errors = ConfigErrors::default();
        if logging.sampling_thereafter == 0 {
            errors.push(format!("{path}.sampling_thereafter"), "must be at least 1");
        }
        let verbosity = match (logging.verbosity, logging.loglevel.as_deref()) {
            (Some(v), _) => v,
            (None, None) => Verbosity::Normal,
            (None, Some(level)) => verbosity_for_loglevel(level).unwrap_or_else(|| {
                errors.push(
                    format!("{path}.loglevel"),
                    format!("unknown level {level:?} (debug, info, warn, error)"),
                );
                Verbosity::Basic
            }),
        };
        let settings = DebugSettings {
            verbosity,
            sampling_initial: logging.sampling_initial,
            sampling_thereafter: logging.sampling_thereafter,
            use_internal_logger: true,
            output_paths: None,
            loglevel: Some(logging.loglevel.unwrap_or_else(|| "info".to_string())),
        };
        errors.into_result(Box::new(settings) as Box<dyn ExporterConfig>)
    }
}

/// Factory of the `debug` exporter.
pub struct DebugFactory;

impl ExporterFactory for DebugFactory {
    fn signals(&self) -> SignalSet {
        SignalSet::ALL
    }

    fn parse(
        &self,
        config: &serde_json::Value,
        path: &str,
    ) -> Result<Box<dyn ExporterConfig>, ConfigErrors> {
        let settings: DebugSettings = parse_component_config(config, path)?;
        let mut errors = ConfigErrors::default();
        if settings.sampling_thereafter == 0 {
            errors.push(format!("{path}.sampling_thereafter"), "must be at least 1");
        }
        match (&settings.output_paths, settings.use_internal_logger) {
            (Some(_), true) => errors.push(
                format!("{path}.output_paths"),
                "output_paths is not supported when use_internal_logger is true",
            ),
            (Some(p), false) if p.is_empty() => errors.push(
                format!("{path}.output_paths"),
                "output_paths must not be empty when use_internal_logger is false",
            ),
            _ => {}
        }
        errors.into_result(Box::new(settings) as Box<dyn ExporterConfig>)
    }
}

/// Where a batch's text goes when the internal logger is off.
enum Output {
    Stdout,
    Stderr,
    File(Mutex<std::fs::File>),
}

impl Output {
    fn open(path: &str) -> Result<Output, std::io::Error> {
        Ok(match path {
            "stdout" => Output::Stdout,
            "stderr" => Output::Stderr,
            file => Output::File(Mutex::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(file)?,
            )),
        })
    }

    fn write(&self, text: &[u8]) {
        // A closed or failing output is not the pipeline's problem; the batch counts as shown.
        let _ = match self {
            Output::Stdout => std::io::stdout().lock().write_all(text),
            Output::Stderr => std::io::stderr().lock().write_all(text),
            Output::File(f) => f.lock().unwrap_or_else(|e| e.into_inner()).write_all(text),
        };
    }
}

impl ExporterConfig for DebugSettings {
    fn build(&self, ctx: &BuildContext) -> Result<Arc<dyn Stage>, BuildError> {
        if let Some(level) = &self.loglevel {
            tracing::warn!(
                exporter = %ctx.id,
                loglevel = %level,
                "the logging exporter is deprecated: running it as the debug exporter \
                 (verbosity {:?}); rename it to debug",
                self.verbosity
            );
        }
        let mut outputs = Vec::new();
        if !self.use_internal_logger {
            for path in self
                .output_paths
                .as_deref()
                .unwrap_or(&["stdout".to_string()])
            {
                let output = Output::open(path).map_err(|e| {
                    BuildError::other(&ctx.id, format!("cannot open output path {path:?}"), e)
                })?;
                outputs.push(output);
            }
        }
        let counters = PerSignal::from_fn(|signal| {
            ctx.telemetry.counter(
                "weir_exporter_sent_items",
                "Items (log records, spans, data points) an exporter delivered upstream",
                &[
                    ("exporter", ctx.id.to_string()),
                    ("signal", signal.as_str().to_string()),
                ],
            )
        });
        Ok(Arc::new(DebugExporter {
            exporter: ctx.id.to_string(),
            settings: self.clone(),
            sampler: Mutex::new(Sampler {
                window_start: Instant::now(),
                seen: 0,
            }),
            counters,
            outputs,
        }))
    }
}

struct Sampler {
    window_start: Instant,
    seen: u64,
}

/// The running `debug` exporter.
pub struct DebugExporter {
    exporter: String,
    settings: DebugSettings,
    sampler: Mutex<Sampler>,
    counters: PerSignal<Counter>,
    outputs: Vec<Output>,
}

impl DebugExporter {
    /// Whether this batch is shown, by the collector's rule: per one-second window, the first
    /// `sampling_initial`, then every `sampling_thereafter`-th.
    fn sampled(&self) -> bool {
        let mut s = self.sampler.lock().unwrap_or_else(|e| e.into_inner());
        if s.window_start.elapsed() >= Duration::from_secs(1) {
            s.window_start = Instant::now();
            s.seen = 0;
        }
        s.seen += 1;
        let n = s.seen;
        n <= self.settings.sampling_initial
            || (n - self.settings.sampling_initial)
                .is_multiple_of(self.settings.sampling_thereafter.max(1))
    }
}

#[async_trait]
impl Consumer for DebugExporter {
    async fn consume(&self, batch: Batch) -> Result<(), ConsumeError> {
        self.counters[batch.signal()].inc_by(batch.item_count() as u64);
        if self.settings.use_internal_logger {
            if !self.sampled() {
                return Ok(());
            }
            let text = render(batch.payload(), self.settings.verbosity);
            tracing::info!(target: "weir::exporter::debug", exporter = %self.exporter, "{text}");
        } else {
            let mut text = render(batch.payload(), self.settings.verbosity);
            text.push('\n');
            for output in &self.outputs {
                output.write(text.as_bytes());
            }
        }
        Ok(())
    }
}

impl Component for DebugExporter {}

/// The text shown for one batch.
pub fn render(payload: &Payload, verbosity: Verbosity) -> String {
    let mut out = summary(payload);
    match verbosity {
        Verbosity::Basic => {}
        Verbosity::Normal => records(payload, &mut out),
        Verbosity::Detailed => detailed(payload, &mut out),
    }
    out
}

fn summary(payload: &Payload) -> String {
    match payload {
        Payload::Logs(r) => format!(
            "Logs: {} resource logs, {} log records",
            r.resource_logs.len(),
            payload.item_count()
        ),
        Payload::Traces(r) => format!(
            "Traces: {} resource spans, {} spans",
            r.resource_spans.len(),
            payload.item_count()
        ),
        Payload::Metrics(r) => format!(
            "Metrics: {} resource metrics, {} metrics, {} data points",
            r.resource_metrics.len(),
            r.resource_metrics
                .iter()
                .flat_map(|rm| &rm.scope_metrics)
                .map(|sm| sm.metrics.len())
                .sum::<usize>(),
            payload.item_count()
        ),
    }
}

/// One line per record (the `normal` verbosity).
fn records(payload: &Payload, out: &mut String) {
    match payload {
        Payload::Logs(r) => {
            for record in r
                .resource_logs
                .iter()
                .flat_map(|rl| &rl.scope_logs)
                .flat_map(|sl| &sl.log_records)
            {
                let body = record.body.as_ref().map(value_text).unwrap_or_default();
                out.push('\n');
                if !record.severity_text.is_empty() {
                    let _ = write!(out, "{} ", record.severity_text);
                }
                out.push_str(&body);
                attributes(&record.attributes, out);
            }
        }
        Payload::Traces(r) => {
            for span in r
                .resource_spans
                .iter()
                .flat_map(|rs| &rs.scope_spans)
                .flat_map(|ss| &ss.spans)
            {
                let _ = write!(
                    out,
                    "\n{} {} {}",
                    hex(&span.trace_id),
                    hex(&span.span_id),
                    span.name
                );
                attributes(&span.attributes, out);
            }
        }
        Payload::Metrics(r) => {
            for m in r
                .resource_metrics
                .iter()
                .flat_map(|rm| &rm.scope_metrics)
                .flat_map(|sm| &sm.metrics)
            {
                metric_lines(m, out);
            }
        }
    }
}

fn metric_lines(m: &weir_api::otlp::metrics::v1::Metric, out: &mut String) {
    let number = |v: &Option<number_data_point::Value>| match v {
        Some(number_data_point::Value::AsInt(i)) => i.to_string(),
        Some(number_data_point::Value::AsDouble(d)) => d.to_string(),
        None => String::new(),
    };
    match &m.data {
        Some(metric::Data::Gauge(g)) => {
            for p in &g.data_points {
                let _ = write!(out, "\n{}", m.name);
                braced(&p.attributes, out);
                let _ = write!(out, " {}", number(&p.value));
            }
        }
        Some(metric::Data::Sum(s)) => {
            for p in &s.data_points {
                let _ = write!(out, "\n{}", m.name);
                braced(&p.attributes, out);
                let _ = write!(out, " {}", number(&p.value));
            }
        }
        Some(metric::Data::Histogram(h)) => {
            for p in &h.data_points {
                let _ = write!(out, "\n{}", m.name);
                braced(&p.attributes, out);
                let _ = write!(out, " count={} sum={}", p.count, p.sum.unwrap_or_default());
            }
        }
        Some(metric::Data::ExponentialHistogram(h)) => {
            for p in &h.data_points {
                let _ = write!(out, "\n{}", m.name);
                braced(&p.attributes, out);
                let _ = write!(out, " count={} sum={}", p.count, p.sum.unwrap_or_default());
            }
        }
        Some(metric::Data::Summary(s)) => {
            for p in &s.data_points {
                let _ = write!(out, "\n{}", m.name);
                braced(&p.attributes, out);
                let _ = write!(out, " count={} sum={}", p.count, p.sum);
            }
        }
        None => {}
    }
}

/// Every field of every record (the `detailed` verbosity), in the collector's text layout
/// (see [`crate::otlptext`]).
fn detailed(payload: &Payload, out: &mut String) {
    out.push('\n');
    let text = crate::otlptext::render(payload);
    out.push_str(text.trim_end_matches('\n'));
}

fn attributes(attrs: &[KeyValue], out: &mut String) {
    for kv in attrs {
        let value = kv.value.as_ref().map(value_text).unwrap_or_default();
        let _ = write!(out, " {}={}", kv.key, value);
    }
}

fn braced(attrs: &[KeyValue], out: &mut String) {
    out.push('{');
    for (i, kv) in attrs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let value = kv.value.as_ref().map(value_text).unwrap_or_default();
        let _ = write!(out, "{}={}", kv.key, value);
    }
    out.push('}');
}

fn value_text(v: &AnyValue) -> String {
    match &v.value {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(any_value::Value::BytesValue(b)) => hex(b),
        Some(any_value::Value::ArrayValue(a)) => {
            let items: Vec<String> = a.values.iter().map(value_text).collect();
            format!("[{}]", items.join(","))
        }
        Some(any_value::Value::KvlistValue(l)) => {
            let mut s = String::new();
            braced(&l.values, &mut s);
            s
        }
        Some(any_value::Value::StringValueStrindex(i)) => format!("strindex:{i}"),
        None => String::new(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_api::fixtures::kv;
    use weir_api::otlp::collector::logs::v1::ExportLogsServiceRequest;
    use weir_api::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
    use weir_api::otlp::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use weir_api::otlp::metrics::v1::{
        Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics,
    };

    fn parse_errors(factory: &dyn ExporterFactory, v: serde_json::Value) -> String {
        match factory.parse(&v, "exporters.x") {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn output_paths_rules_follow_the_collector() {
        let ok = |v| parse_errors(&DebugFactory, v);
        assert_eq!(ok(serde_json::json!({"use_internal_logger": false})), "");
        assert_eq!(
            ok(serde_json::json!({"use_internal_logger": false, "output_paths": "stderr"})),
            ""
        );
        assert_eq!(
            ok(serde_json::json!({"output_paths": ["stdout"]})),
            "exporters.x.output_paths: output_paths is not supported when use_internal_logger is true"
        );
        assert_eq!(
            ok(serde_json::json!({"use_internal_logger": false, "output_paths": []})),
            "exporters.x.output_paths: output_paths must not be empty when use_internal_logger is false"
        );
    }

    #[test]
    fn logging_reads_loglevel_as_a_verbosity() {
        for (level, want) in [
            ("debug", Verbosity::Detailed),
            ("INFO", Verbosity::Normal),
            ("warn", Verbosity::Basic),
        ] {
            assert_eq!(verbosity_for_loglevel(level), Some(want), "{level}");
            assert_eq!(
                parse_errors(&LoggingFactory, serde_json::json!({"loglevel": level})),
                ""
            );
        }
        assert_eq!(
            parse_errors(&LoggingFactory, serde_json::json!({"loglevel": "loud"})),
            "exporters.x.loglevel: unknown level \"loud\" (debug, info, warn, error)"
        );
        assert!(
            parse_errors(&LoggingFactory, serde_json::json!({"output_paths": ["x"]}))
                .contains("unknown field `output_paths`")
        );
    }

    fn logs() -> Payload {
        let record = |body: &str, n: i64| LogRecord {
            severity_text: "WARN".into(),
            body: Some(AnyValue {
                value: Some(any_value::Value::StringValue(body.into())),
            }),
            attributes: vec![
                kv("n", any_value::Value::IntValue(n)),
                kv("ok", any_value::Value::BoolValue(true)),
            ],
            ..Default::default()
        };
        Payload::Logs(ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs {
                    log_records: vec![record("disk full", 1), record("retrying", 2)],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        })
    }

    #[test]
    fn verbosities() {
        assert_eq!(
            render(&logs(), Verbosity::Basic),
            "Logs: 1 resource logs, 2 log records"
        );
        assert_eq!(
            render(&logs(), Verbosity::Normal),
            "Logs: 1 resource logs, 2 log records\nWARN disk full n=1 ok=true\nWARN retrying n=2 ok=true"
        );
        let detailed = render(&logs(), Verbosity::Detailed);
        let (head, text) = detailed.split_once('\n').unwrap();
        assert_eq!(head, "Logs: 1 resource logs, 2 log records");
        assert_eq!(
            text,
            crate::otlptext::render(&logs()).trim_end_matches('\n')
        );
        assert!(
            text.starts_with("ResourceLog #0\nResource SchemaURL: \nScopeLogs #0\n"),
            "{text}"
        );
        let metrics = Payload::Metrics(ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![Metric {
                        name: "queue.depth".into(),
                        data: Some(metric::Data::Gauge(Gauge {
                            data_points: vec![NumberDataPoint {
                                attributes: vec![kv(
                                    "q",
                                    any_value::Value::StringValue("a".into()),
                                )],
                                value: Some(number_data_point::Value::AsDouble(2.5)),
                                ..Default::default()
                            }],
                        })),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        });
        assert_eq!(
            render(&metrics, Verbosity::Normal),
            "Metrics: 1 resource metrics, 1 metrics, 1 data points\nqueue.depth{q=a} 2.5"
        );
    }

    #[tokio::test]
    async fn sampling_follows_initial_then_every_mth() {
        let exporter = DebugExporter {
            exporter: "debug".into(),
            settings: DebugSettings {
                verbosity: Verbosity::Basic,
                sampling_initial: 2,
                sampling_thereafter: 3,
                use_internal_logger: true,
                output_paths: None,
                loglevel: None,
            },
            sampler: Mutex::new(Sampler {
                window_start: Instant::now(),
                seen: 0,
            }),
            counters: Default::default(),
            outputs: Vec::new(),
        };
        let shown: Vec<bool> = (0..8).map(|_| exporter.sampled()).collect();
        assert_eq!(shown, [true, true, false, false, true, false, false, true]);
        exporter.consume(Batch::new(logs())).await.unwrap();
    }

    #[test]
    fn config_errors() {
        let err = DebugFactory
            .parse(&serde_json::json!({"verbosity": "loud"}), "exporters.debug")
            .err()
            .unwrap();
        assert!(
            err.to_string().starts_with("exporters.debug.verbosity: unknown variant `loud`, expected one of `basic`, `normal`, `detailed`"),
            "{err}"
        );
        let err = DebugFactory
            .parse(
                &serde_json::json!({"sampling_thereafter": 0}),
                "exporters.debug",
            )
            .err()
            .unwrap();
        assert_eq!(
            err.to_string(),
            "exporters.debug.sampling_thereafter: must be at least 1"
        );
    }
}
