//! The OpenTelemetry Collector's names for Weir's own metrics.
//!
//! Each `weir_*` series that has a Collector counterpart is written again under the
//! Collector's name and labels (summed where several Weir series map to one Collector
//! series), as the Collector's Prometheus reader exposes them:
//!
//! | Weir | Collector | labels |
//! | --- | --- | --- |
//! | `weir_receiver_accepted_items{signal}` | `otelcol_receiver_accepted_{log_records,spans,metric_points}` | `receiver`, `transport` |
//! | `weir_receiver_refused_items{signal}` | `otelcol_receiver_refused_*` | `receiver`, `transport` |
//! | `weir_exporter_sent_items{signal}` | `otelcol_exporter_sent_*` | `exporter` |
//! | `weir_exporter_send_failed_items{signal}` | `otelcol_exporter_send_failed_*` | `exporter` |
//! | `weir_exporter_enqueue_failed_items{signal}` | `otelcol_exporter_enqueue_failed_*` | `exporter` |
//! | `weir_exporter_queue_size`, `_capacity` | `otelcol_exporter_queue_size`, `_capacity` | `exporter` |
//! | `weir_processor_incoming_items`, `_outgoing_items` | `otelcol_processor_incoming_items`, `_outgoing_items` | `processor`, `otel_signal` |
//!
//! plus the process metrics read at scrape time: `otelcol_process_uptime` (seconds since
//! the telemetry registry was created), `otelcol_process_cpu_seconds` and
//! `otelcol_process_memory_rss` (Linux `/proc/self`). Counters get the `_total` suffix and
//! units their suffix (`_seconds`, `_bytes`) unless `without_type_suffix` / `without_units`;
//! every series carries `otel_scope_name` and `otel_scope_version` unless
//! `without_scope_info`; the resource is written as `target_info`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::OnceLock;
use std::time::Instant;

use crate::telemetry::{Handle, Labels};

/// How the Collector's metrics are written (a pull reader's `prometheus` settings and the
/// service's telemetry resource).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exposition {
    /// No unit suffix (`otelcol_process_uptime_total` rather than `..._seconds_total`).
    pub without_units: bool,
    /// No `_total` suffix on counters (they are then typed `unknown`, as OpenMetrics
    /// requires counter samples to end in `_total`).
    pub without_type_suffix: bool,
    /// No `otel_scope_name` / `otel_scope_version` labels.
    pub without_scope_info: bool,
    /// The resource of the process's telemetry, written as `target_info` (none: omitted).
    pub resource: Vec<(String, String)>,
    /// Resource attributes also written as labels on every `otelcol_*` series.
    pub constant_labels: Vec<(String, String)>,
}

/// When the process's telemetry started (the first call); `otelcol_process_uptime` counts
/// from here.
pub fn process_start() -> Instant {
    static START: OnceLock<Instant> = OnceLock::new();
    *START.get_or_init(Instant::now)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
}

const RECEIVER_SCOPE: &str = "go.opentelemetry.io/collector/receiver/receiverhelper";
const EXPORTER_SCOPE: &str = "go.opentelemetry.io/collector/exporter/exporterhelper";
const PROCESSOR_SCOPE: &str = "go.opentelemetry.io/collector/processor/processorhelper";
const SERVICE_SCOPE: &str = "go.opentelemetry.io/collector/service";

/// One Collector metric family.
struct Family {
    help: &'static str,
    unit: Option<&'static str>,
    kind: Kind,
    scope: &'static str,
    points: BTreeMap<Labels, f64>,
}

fn item_name(signal: &str) -> Option<&'static str> {
    match signal {
        "logs" => Some("log_records"),
        "traces" => Some("spans"),
        "metrics" => Some("metric_points"),
        _ => None,
    }
}

fn label<'l>(labels: &'l Labels, key: &str) -> Option<&'l str> {
    labels
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// The Collector family, help, scope and labels of a Weir series, if it has one.
fn map(name: &str, labels: &Labels) -> Option<(String, &'static str, Kind, &'static str, Labels)> {
    let keep = |keys: &[&str]| -> Labels {
        keys.iter()
            .filter_map(|k| label(labels, k).map(|v| (k.to_string(), v.to_string())))
            .collect()
    };
    let per_signal = |prefix: &str| -> Option<String> {
        Some(format!("{prefix}_{}", item_name(label(labels, "signal")?)?))
    };
    Some(match name {
        "weir_receiver_accepted_items" => (
            per_signal("otelcol_receiver_accepted")?,
            "Items the pipeline took from the receiver.",
            Kind::Counter,
            RECEIVER_SCOPE,
            keep(&["receiver", "transport"]),
        ),
        "weir_receiver_refused_items" => (
            per_signal("otelcol_receiver_refused")?,
            "Items the pipeline did not take from the receiver.",
            Kind::Counter,
            RECEIVER_SCOPE,
            keep(&["receiver", "transport"]),
        ),
        "weir_exporter_sent_items" => (
            per_signal("otelcol_exporter_sent")?,
            "Items the exporter delivered.",
            Kind::Counter,
            EXPORTER_SCOPE,
            keep(&["exporter"]),
        ),
        "weir_exporter_send_failed_items" => (
            per_signal("otelcol_exporter_send_failed")?,
            "Items the exporter failed to deliver.",
            Kind::Counter,
            EXPORTER_SCOPE,
            keep(&["exporter"]),
        ),
        "weir_exporter_enqueue_failed_items" => (
            per_signal("otelcol_exporter_enqueue_failed")?,
            "Items the sending queue had no room for.",
            Kind::Counter,
            EXPORTER_SCOPE,
            keep(&["exporter"]),
        ),
        "weir_exporter_queue_size" => (
            "otelcol_exporter_queue_size".to_string(),
            "Current size of the sending queue, in its sizer's units.",
            Kind::Gauge,
            EXPORTER_SCOPE,
            keep(&["exporter"]),
        ),
        "weir_exporter_queue_capacity" => (
            "otelcol_exporter_queue_capacity".to_string(),
            "Capacity of the sending queue, in its sizer's units.",
            Kind::Gauge,
            EXPORTER_SCOPE,
            keep(&["exporter"]),
        ),
        "weir_processor_incoming_items" | "weir_processor_outgoing_items" => {
            let signal = label(labels, "signal")?;
            let mut l = keep(&["processor"]);
            l.push(("otel_signal".to_string(), signal.to_string()));
            if name.ends_with("incoming_items") {
                (
                    "otelcol_processor_incoming_items".to_string(),
                    "Items handed to the processor.",
                    Kind::Counter,
                    PROCESSOR_SCOPE,
                    l,
                )
            } else {
                (
                    "otelcol_processor_outgoing_items".to_string(),
                    "Items the processor handed on.",
                    Kind::Counter,
                    PROCESSOR_SCOPE,
                    l,
                )
            }
        }
        _ => return None,
    })
}

/// CPU seconds (user + system) and resident bytes of this process, from `/proc/self`.
fn process_usage() -> (Option<f64>, Option<f64>) {
    // /proc reports times in USER_HZ, which is 100 on Linux.
    const USER_HZ: f64 = 100.0;
    let cpu = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // Fields after the command name (which is in parentheses and may hold spaces).
            let rest = &s[s.rfind(')')? + 2..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
            let utime: f64 = f.get(11)?.parse().ok()?;
            let stime: f64 = f.get(12)?.parse().ok()?;
            Some((utime + stime) / USER_HZ)
        });
    let rss = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
            let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kb * 1024.0)
        });
    (cpu, rss)
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// The Collector's families of `series`, with the process metrics read now.
fn families(series: &[(String, Labels, Handle)]) -> BTreeMap<String, Family> {
    let mut families: BTreeMap<String, Family> = BTreeMap::new();
    for (name, labels, handle) in series {
        let Some((fam, help, kind, scope, l)) = map(name, labels) else {
            continue;
        };
        let value = match handle {
            Handle::Counter(c) => c.get() as f64,
            Handle::Gauge(g) => g.get() as f64,
        };
        let f = families.entry(fam).or_insert_with(|| Family {
            help,
            unit: None,
            kind,
            scope,
            points: BTreeMap::new(),
        });
        *f.points.entry(l).or_insert(0.0) += value;
    }
    let mut process = |name: &str, help, unit, kind, value: Option<f64>| {
        if let Some(v) = value {
            let mut points = BTreeMap::new();
            points.insert(Labels::new(), v);
            families.insert(
                name.to_string(),
                Family {
                    help,
                    unit: Some(unit),
                    kind,
                    scope: SERVICE_SCOPE,
                    points,
                },
            );
        }
    };
    let (cpu, rss) = process_usage();
    process(
        "otelcol_process_uptime",
        "Seconds since the process's telemetry started",
        "seconds",
        Kind::Counter,
        Some(process_start().elapsed().as_secs_f64()),
    );
    process(
        "otelcol_process_cpu_seconds",
        "CPU time of the process (user and system), in seconds",
        "seconds",
        Kind::Counter,
        cpu,
    );
    process(
        "otelcol_process_memory_rss",
        "Resident memory of the process, in bytes",
        "bytes",
        Kind::Gauge,
        rss,
    );
    families
}

/// The OTLP unit of a Collector family (its metadata's).
fn otlp_unit(name: &str, unit: Option<&str>) -> &'static str {
    match unit {
        Some("seconds") => return "s",
        Some("bytes") => return "By",
        _ => {}
    }
    if name.ends_with("_spans") {
        "{span}"
    } else if name.ends_with("_log_records") {
        "{record}"
    } else if name.ends_with("_metric_points") {
        "{datapoint}"
    } else if name.contains("queue") {
        "{batch}"
    } else {
        "{item}"
    }
}

/// The Collector's metrics of `series` as one OTLP request (what a periodic reader pushes):
/// one scope per Collector package, cumulative monotonic sums for counters, gauges, each
/// point with its labels as attributes (`otel_signal` as `otel.signal`); `resource` is the
/// request's resource.
pub(crate) fn to_otlp(
    series: &[(String, Labels, Handle)],
    resource: &[(String, String)],
) -> crate::otlp::collector::metrics::v1::ExportMetricsServiceRequest {
    use crate::otlp::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
    use crate::otlp::metrics::v1::{
        metric::Data, number_data_point, AggregationTemporality, Gauge, Metric, NumberDataPoint,
        ResourceMetrics, ScopeMetrics, Sum,
    };
    use crate::otlp::resource::v1::Resource;
    let now = std::time::SystemTime::now();
    let nanos = |t: std::time::SystemTime| {
        t.duration_since(std::time::UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
            .unwrap_or(0)
    };
    let end = nanos(now);
    let start = nanos(now - process_start().elapsed());
    let kv = |k: &str, v: &str| KeyValue {
        key: k.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.to_string())),
        }),
        ..Default::default()
    };
    let mut scopes: BTreeMap<&'static str, Vec<Metric>> = BTreeMap::new();
    for (name, f) in families(series) {
        let points: Vec<NumberDataPoint> = f
            .points
            .iter()
            .map(|(labels, v)| NumberDataPoint {
                attributes: labels
                    .iter()
                    .map(|(k, v)| kv(if k == "otel_signal" { "otel.signal" } else { k }, v))
                    .collect(),
                start_time_unix_nano: if f.kind == Kind::Counter { start } else { 0 },
                time_unix_nano: end,
                value: Some(if v.fract() == 0.0 && f.unit.is_none() {
                    number_data_point::Value::AsInt(*v as i64)
                } else {
                    number_data_point::Value::AsDouble(*v)
                }),
                ..Default::default()
            })
            .collect();
        let data = match f.kind {
            Kind::Counter => Data::Sum(Sum {
                data_points: points,
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
                is_monotonic: true,
            }),
            Kind::Gauge => Data::Gauge(Gauge {
                data_points: points,
            }),
        };
        scopes.entry(f.scope).or_default().push(Metric {
            unit: otlp_unit(&name, f.unit).to_string(),
            name,
            description: f.help.to_string(),
            data: Some(data),
            ..Default::default()
        });
    }
    crate::otlp::collector::metrics::v1::ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: resource.iter().map(|(k, v)| kv(k, v)).collect(),
                ..Default::default()
            }),
            scope_metrics: scopes
                .into_iter()
                .map(|(scope, metrics)| ScopeMetrics {
                    scope: Some(InstrumentationScope {
                        name: scope.to_string(),
                        ..Default::default()
                    }),
                    metrics,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
    }
}

/// Appends the Collector's families for `series` to `out` (OpenMetrics text, no `# EOF`).
pub(crate) fn write(out: &mut String, series: &[(String, Labels, Handle)], x: &Exposition) {
    let families = families(series);
    for (base, f) in &families {
        let unit = f.unit.filter(|_| !x.without_units);
        let name = match unit {
            Some(u) if !base.ends_with(&format!("_{u}")) => format!("{base}_{u}"),
            _ => base.clone(),
        };
        let (type_name, sample) = match f.kind {
            Kind::Counter if x.without_type_suffix => ("unknown", name.clone()),
            Kind::Counter => ("counter", format!("{name}_total")),
            Kind::Gauge => ("gauge", name.clone()),
        };
        let _ = writeln!(out, "# HELP {name} {}", f.help);
        let _ = writeln!(out, "# TYPE {name} {type_name}");
        if let Some(u) = unit {
            let _ = writeln!(out, "# UNIT {name} {u}");
        }
        for (labels, v) in &f.points {
            let mut all: Vec<(String, String)> = labels.clone();
            if !x.without_scope_info {
                all.push(("otel_scope_name".to_string(), f.scope.to_string()));
                all.push(("otel_scope_version".to_string(), String::new()));
            }
            all.extend(x.constant_labels.iter().cloned());
            let _ = write!(out, "{sample}");
            if !all.is_empty() {
                let inner: Vec<String> = all
                    .iter()
                    .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                    .collect();
                let _ = write!(out, "{{{}}}", inner.join(","));
            }
            let _ = writeln!(out, " {}", number(*v));
        }
    }
    if !x.resource.is_empty() {
        let _ = writeln!(out, "# HELP target Target metadata");
        let _ = writeln!(out, "# TYPE target info");
        let inner: Vec<String> = x
            .resource
            .iter()
            .map(|(k, v)| format!("{}=\"{}\"", sanitize(k), escape(v)))
            .collect();
        let _ = writeln!(out, "target_info{{{}}} 1", inner.join(","));
    }
}

/// A resource attribute key as a Prometheus label name (`service.name` -> `service_name`).
pub fn sanitize(key: &str) -> String {
    let mut s: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    s
}

#[cfg(test)]
mod tests {
    use crate::{Exposition, Telemetry};

    #[test]
    fn collector_names_labels_and_suffixes() {
        let t = Telemetry::new();
        let l = |sig: &str| {
            [
                ("receiver", "otlp".to_string()),
                ("transport", "grpc".to_string()),
                ("signal", sig.to_string()),
            ]
        };
        t.counter("weir_receiver_accepted_items", "h", &l("traces"))
            .inc_by(7);
        t.counter("weir_receiver_refused_items", "h", &l("logs"))
            .inc_by(2);
        for p in ["traces", "traces/b"] {
            t.counter(
                "weir_processor_incoming_items",
                "h",
                &[
                    ("processor", "batch".to_string()),
                    ("pipeline", p.to_string()),
                    ("signal", "traces".to_string()),
                ],
            )
            .inc_by(3);
        }
        t.gauge(
            "weir_exporter_queue_capacity",
            "h",
            &[("exporter", "otlp".to_string())],
        )
        .set(1000);
        let s = t.encode();
        let scope = "otel_scope_name=\"go.opentelemetry.io/collector/receiver/receiverhelper\",otel_scope_version=\"\"";
        for want in [
            format!("otelcol_receiver_accepted_spans_total{{receiver=\"otlp\",transport=\"grpc\",{scope}}} 7\n"),
            format!("otelcol_receiver_refused_log_records_total{{receiver=\"otlp\",transport=\"grpc\",{scope}}} 2\n"),
            "# TYPE otelcol_receiver_accepted_spans counter\n".to_string(),
            "otelcol_processor_incoming_items_total{processor=\"batch\",otel_signal=\"traces\",otel_scope_name=\"go.opentelemetry.io/collector/processor/processorhelper\",otel_scope_version=\"\"} 6\n".to_string(),
            "otelcol_exporter_queue_capacity{exporter=\"otlp\",otel_scope_name=\"go.opentelemetry.io/collector/exporter/exporterhelper\",otel_scope_version=\"\"} 1000\n".to_string(),
            "# UNIT otelcol_process_uptime_seconds seconds\n".to_string(),
            "otelcol_process_uptime_seconds_total{".to_string(),
            "otelcol_process_cpu_seconds_total{".to_string(),
            "otelcol_process_memory_rss_bytes{".to_string(),
        ] {
            assert!(s.contains(&want), "missing {want:?} in\n{s}");
        }
        assert!(s.ends_with("# EOF\n"));
        assert_eq!(s.matches("# EOF").count(), 1);
        assert!(!s.contains("target_info"));

        let s = t.encode_with(&Exposition {
            without_units: true,
            without_type_suffix: true,
            without_scope_info: true,
            resource: vec![("service.name".into(), "weir".into())],
            constant_labels: vec![("service_name".into(), "weir".into())],
        });
        for want in [
            "# TYPE otelcol_receiver_accepted_spans unknown\n",
            "otelcol_receiver_accepted_spans{receiver=\"otlp\",transport=\"grpc\",service_name=\"weir\"} 7\n",
            "otelcol_process_uptime{service_name=\"weir\"} ",
            "otelcol_process_memory_rss{service_name=\"weir\"} ",
            "target_info{service_name=\"weir\"} 1\n",
        ] {
            assert!(s.contains(want), "missing {want:?} in\n{s}");
        }
        assert!(!s.contains("otel_scope_name"), "{s}");
        assert!(!s.contains("otelcol_receiver_accepted_spans_total"), "{s}");
        assert!(!s.contains("uptime_seconds"), "{s}");
    }
}
