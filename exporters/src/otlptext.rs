//! The collector's text layout of OTLP data (its debug exporter at `verbosity: detailed`):
//! `ResourceLog #0`, `Resource attributes:` with `-> key: Str(value)` lines, timestamps as Go
//! prints them (`2020-02-11 20:26:13.000000789 +0000 UTC`), floats as Go's `%f`, maps and
//! lists as Go's JSON. Written from the layout the collector produces, field by field.

use std::fmt::Write as _;

use weir_api::otlp::collector::logs::v1::ExportLogsServiceRequest;
use weir_api::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use weir_api::otlp::collector::trace::v1::ExportTraceServiceRequest;
use weir_api::otlp::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use weir_api::otlp::metrics::v1::{
    exemplar, metric, number_data_point, Exemplar, HistogramDataPoint, NumberDataPoint,
};
use weir_api::otlp::resource::v1::Resource;
use weir_api::otlp::trace::v1::span;
use weir_api::Payload;

/// The text of one request, every line ending in `\n`.
pub fn render(payload: &Payload) -> String {
    match payload {
        Payload::Logs(r) => logs(r),
        Payload::Traces(r) => traces(r),
        Payload::Metrics(r) => metrics(r),
    }
}

struct Buf(String);

impl Buf {
    fn line(&mut self, text: impl AsRef<str>) {
        self.0.push_str(text.as_ref());
        self.0.push('\n');
    }

    /// `header:` then one `-> key: Type(value)` line per attribute; a header holding `->`
    /// indents its attributes under it.
    fn attributes(&mut self, header: &str, attrs: &[KeyValue]) {
        if attrs.is_empty() {
            return;
        }
        self.line(format!("{header}:"));
        let prefix = match header.split_once("->") {
            Some((lead, _)) => format!("{lead}     ->"),
            None => "     ->".to_string(),
        };
        for kv in attrs {
            self.line(format!(
                "{prefix} {}: {}",
                kv.key,
                value_string(kv.value.as_ref())
            ));
        }
    }

    /// `    Name           : value` (the span fields).
    fn field(&mut self, name: &str, value: impl AsRef<str>) {
        self.line(format!("    {name:<15}: {}", value.as_ref()));
    }

    fn resource(&mut self, resource: Option<&Resource>) {
        let Some(r) = resource else { return };
        self.attributes("Resource attributes", &r.attributes);
        if r.entity_refs.is_empty() {
            return;
        }
        self.line("Resource entity refs:");
        for (i, e) in r.entity_refs.iter().enumerate() {
            self.line(format!("     -> Entity ref #{i}:"));
            self.line(format!("          -> Type: {}", e.r#type));
            if !e.schema_url.is_empty() {
                self.line(format!("          -> Schema URL: {}", e.schema_url));
            }
            for (title, keys) in [
                ("ID keys", &e.id_keys),
                ("Description keys", &e.description_keys),
            ] {
                if !keys.is_empty() {
                    self.line(format!("          -> {title}:"));
                    for k in keys {
                        self.line(format!("               -> {k}"));
                    }
                }
            }
        }
    }

    fn scope(&mut self, scope: Option<&InstrumentationScope>) {
        let (name, version, attrs) = match scope {
            Some(s) => (s.name.as_str(), s.version.as_str(), &s.attributes[..]),
            None => ("", "", &[][..]),
        };
        self.line(format!("InstrumentationScope {name} {version}"));
        self.attributes("InstrumentationScope attributes", attrs);
    }
}

fn logs(req: &ExportLogsServiceRequest) -> String {
    let mut b = Buf(String::new());
    for (i, rl) in req.resource_logs.iter().enumerate() {
        b.line(format!("ResourceLog #{i}"));
        b.line(format!("Resource SchemaURL: {}", rl.schema_url));
        b.resource(rl.resource.as_ref());
        for (j, sl) in rl.scope_logs.iter().enumerate() {
            b.line(format!("ScopeLogs #{j}"));
            b.line(format!("ScopeLogs SchemaURL: {}", sl.schema_url));
            b.scope(sl.scope.as_ref());
            for (k, r) in sl.log_records.iter().enumerate() {
                b.line(format!("LogRecord #{k}"));
                b.line(format!(
                    "ObservedTimestamp: {}",
                    timestamp(r.observed_time_unix_nano)
                ));
                b.line(format!("Timestamp: {}", timestamp(r.time_unix_nano)));
                b.line(format!("SeverityText: {}", r.severity_text));
                b.line(format!(
                    "SeverityNumber: {}({})",
                    severity_name(r.severity_number),
                    r.severity_number
                ));
                if !r.event_name.is_empty() {
                    b.line(format!("EventName: {}", r.event_name));
                }
                b.line(format!("Body: {}", value_string(r.body.as_ref())));
                b.attributes("Attributes", &r.attributes);
                b.line(format!("Trace ID: {}", id_hex(&r.trace_id)));
                b.line(format!("Span ID: {}", id_hex(&r.span_id)));
                b.line(format!("Flags: {}", r.flags));
            }
        }
    }
    b.0
}

fn traces(req: &ExportTraceServiceRequest) -> String {
    let mut b = Buf(String::new());
    for (i, rs) in req.resource_spans.iter().enumerate() {
        b.line(format!("ResourceSpans #{i}"));
        b.line(format!("Resource SchemaURL: {}", rs.schema_url));
        b.resource(rs.resource.as_ref());
        for (j, ss) in rs.scope_spans.iter().enumerate() {
            b.line(format!("ScopeSpans #{j}"));
            b.line(format!("ScopeSpans SchemaURL: {}", ss.schema_url));
            b.scope(ss.scope.as_ref());
            for (k, s) in ss.spans.iter().enumerate() {
                b.line(format!("Span #{k}"));
                b.field("Trace ID", id_hex(&s.trace_id));
                b.field("Parent ID", id_hex(&s.parent_span_id));
                b.field("ID", id_hex(&s.span_id));
                b.field("Name", &s.name);
                b.field("Kind", span_kind(s.kind));
                if !s.trace_state.is_empty() {
                    b.field("TraceState", &s.trace_state);
                }
                b.field("Start time", timestamp(s.start_time_unix_nano));
                b.field("End time", timestamp(s.end_time_unix_nano));
                let (code, message) = match &s.status {
                    Some(st) => (st.code, st.message.as_str()),
                    None => (0, ""),
                };
                b.field("Status code", status_code(code));
                b.field("Status message", message);
                b.field(
                    "DroppedAttributesCount",
                    s.dropped_attributes_count.to_string(),
                );
                b.field("DroppedEventsCount", s.dropped_events_count.to_string());
                b.field("DroppedLinksCount", s.dropped_links_count.to_string());
                b.attributes("Attributes", &s.attributes);
                if !s.events.is_empty() {
                    b.line("Events:");
                    for (n, e) in s.events.iter().enumerate() {
                        b.line(format!("SpanEvent #{n}"));
                        b.line(format!("     -> Name: {}", e.name));
                        b.line(format!(
                            "     -> Timestamp: {}",
                            timestamp(e.time_unix_nano)
                        ));
                        b.line(format!(
                            "     -> DroppedAttributesCount: {}",
                            e.dropped_attributes_count
                        ));
                        b.attributes("     -> Attributes:", &e.attributes);
                    }
                }
                if !s.links.is_empty() {
                    b.line("Links:");
                    for (n, l) in s.links.iter().enumerate() {
                        link(&mut b, n, l);
                    }
                }
            }
        }
    }
    b.0
}

fn link(b: &mut Buf, n: usize, l: &span::Link) {
    b.line(format!("SpanLink #{n}"));
    b.line(format!("     -> Trace ID: {}", id_hex(&l.trace_id)));
    b.line(format!("     -> ID: {}", id_hex(&l.span_id)));
    b.line(format!("     -> TraceState: {}", l.trace_state));
    b.line(format!(
        "     -> DroppedAttributesCount: {}",
        l.dropped_attributes_count
    ));
    b.attributes("     -> Attributes:", &l.attributes);
}

fn metrics(req: &ExportMetricsServiceRequest) -> String {
    let mut b = Buf(String::new());
    for (i, rm) in req.resource_metrics.iter().enumerate() {
        b.line(format!("ResourceMetrics #{i}"));
        b.line(format!("Resource SchemaURL: {}", rm.schema_url));
        b.resource(rm.resource.as_ref());
        for (j, sm) in rm.scope_metrics.iter().enumerate() {
            b.line(format!("ScopeMetrics #{j}"));
            b.line(format!("ScopeMetrics SchemaURL: {}", sm.schema_url));
            b.scope(sm.scope.as_ref());
            for (k, m) in sm.metrics.iter().enumerate() {
                b.line(format!("Metric #{k}"));
                b.line("Descriptor:");
                b.line(format!("     -> Name: {}", m.name));
                b.line(format!("     -> Description: {}", m.description));
                b.line(format!("     -> Unit: {}", m.unit));
                let data_type = match &m.data {
                    None => "Empty",
                    Some(metric::Data::Gauge(_)) => "Gauge",
                    Some(metric::Data::Sum(_)) => "Sum",
                    Some(metric::Data::Histogram(_)) => "Histogram",
                    Some(metric::Data::ExponentialHistogram(_)) => "ExponentialHistogram",
                    Some(metric::Data::Summary(_)) => "Summary",
                };
                b.line(format!("     -> DataType: {data_type}"));
                b.attributes("     -> Metadata", &m.metadata);
                data_points(&mut b, m.data.as_ref());
            }
        }
    }
    b.0
}

fn data_points(b: &mut Buf, data: Option<&metric::Data>) {
    match data {
        None => {}
        Some(metric::Data::Gauge(g)) => number_points(b, &g.data_points),
        Some(metric::Data::Sum(s)) => {
            b.line(format!("     -> IsMonotonic: {}", s.is_monotonic));
            b.line(format!(
                "     -> AggregationTemporality: {}",
                temporality(s.aggregation_temporality)
            ));
            number_points(b, &s.data_points);
        }
        Some(metric::Data::Histogram(h)) => {
            b.line(format!(
                "     -> AggregationTemporality: {}",
                temporality(h.aggregation_temporality)
            ));
            for (i, p) in h.data_points.iter().enumerate() {
                histogram_point(b, i, p);
            }
        }
        Some(metric::Data::ExponentialHistogram(h)) => {
            b.line(format!(
                "     -> AggregationTemporality: {}",
                temporality(h.aggregation_temporality)
            ));
            for (i, p) in h.data_points.iter().enumerate() {
                b.line(format!("ExponentialHistogramDataPoints #{i}"));
                b.attributes("Data point attributes", &p.attributes);
                b.line(format!(
                    "StartTimestamp: {}",
                    timestamp(p.start_time_unix_nano)
                ));
                b.line(format!("Timestamp: {}", timestamp(p.time_unix_nano)));
                b.line(format!("Count: {}", p.count));
                optional_floats(b, p.sum, p.min, p.max);
                let factor = std::f64::consts::LN_2 * 2f64.powi(-p.scale);
                if let Some(neg) = &p.negative {
                    for pos in (0..neg.bucket_counts.len()).rev() {
                        let index = f64::from(neg.offset) + pos as f64;
                        let lower = (index * factor).exp();
                        let upper = ((index + 1.0) * factor).exp();
                        b.line(format!(
                            "Bucket [{}, {}), Count: {}",
                            go_f(-upper),
                            go_f(-lower),
                            neg.bucket_counts[pos]
                        ));
                    }
                }
                if p.zero_count != 0 {
                    b.line(format!("Bucket [0, 0], Count: {}", p.zero_count));
                }
                if let Some(posb) = &p.positive {
                    for (pos, count) in posb.bucket_counts.iter().enumerate() {
                        let index = f64::from(posb.offset) + pos as f64;
                        let lower = (index * factor).exp();
                        let upper = ((index + 1.0) * factor).exp();
                        b.line(format!(
                            "Bucket ({}, {}], Count: {count}",
                            go_f(lower),
                            go_f(upper)
                        ));
                    }
                }
                exemplars(b, &p.exemplars);
            }
        }
        Some(metric::Data::Summary(s)) => {
            for (i, p) in s.data_points.iter().enumerate() {
                b.line(format!("SummaryDataPoints #{i}"));
                b.attributes("Data point attributes", &p.attributes);
                b.line(format!(
                    "StartTimestamp: {}",
                    timestamp(p.start_time_unix_nano)
                ));
                b.line(format!("Timestamp: {}", timestamp(p.time_unix_nano)));
                b.line(format!("Count: {}", p.count));
                b.line(format!("Sum: {}", go_f(p.sum)));
                for (n, q) in p.quantile_values.iter().enumerate() {
                    b.line(format!(
                        "QuantileValue #{n}: Quantile {}, Value {}",
                        go_f(q.quantile),
                        go_f(q.value)
                    ));
                }
            }
        }
    }
}

fn optional_floats(b: &mut Buf, sum: Option<f64>, min: Option<f64>, max: Option<f64>) {
    for (name, v) in [("Sum", sum), ("Min", min), ("Max", max)] {
        if let Some(v) = v {
            b.line(format!("{name}: {}", go_f(v)));
        }
    }
}

fn number_points(b: &mut Buf, points: &[NumberDataPoint]) {
    for (i, p) in points.iter().enumerate() {
        b.line(format!("NumberDataPoints #{i}"));
        b.attributes("Data point attributes", &p.attributes);
        b.line(format!(
            "StartTimestamp: {}",
            timestamp(p.start_time_unix_nano)
        ));
        b.line(format!("Timestamp: {}", timestamp(p.time_unix_nano)));
        match p.value {
            Some(number_data_point::Value::AsInt(v)) => b.line(format!("Value: {v}")),
            Some(number_data_point::Value::AsDouble(v)) => b.line(format!("Value: {}", go_f(v))),
            None => {}
        }
        exemplars(b, &p.exemplars);
    }
}

fn histogram_point(b: &mut Buf, i: usize, p: &HistogramDataPoint) {
    b.line(format!("HistogramDataPoints #{i}"));
    b.attributes("Data point attributes", &p.attributes);
    b.line(format!(
        "StartTimestamp: {}",
        timestamp(p.start_time_unix_nano)
    ));
    b.line(format!("Timestamp: {}", timestamp(p.time_unix_nano)));
    b.line(format!("Count: {}", p.count));
    optional_floats(b, p.sum, p.min, p.max);
    for (n, bound) in p.explicit_bounds.iter().enumerate() {
        b.line(format!("ExplicitBounds #{n}: {}", go_f(*bound)));
    }
    for (n, count) in p.bucket_counts.iter().enumerate() {
        b.line(format!("Buckets #{n}, Count: {count}"));
    }
    exemplars(b, &p.exemplars);
}

fn exemplars(b: &mut Buf, list: &[Exemplar]) {
    if list.is_empty() {
        return;
    }
    b.line("Exemplars:");
    for (i, e) in list.iter().enumerate() {
        b.line(format!("Exemplar #{i}"));
        b.line(format!("     -> Trace ID: {}", id_hex(&e.trace_id)));
        b.line(format!("     -> Span ID: {}", id_hex(&e.span_id)));
        b.line(format!(
            "     -> Timestamp: {}",
            timestamp(e.time_unix_nano)
        ));
        match e.value {
            Some(exemplar::Value::AsInt(v)) => b.line(format!("     -> Value: {v}")),
            Some(exemplar::Value::AsDouble(v)) => b.line(format!("     -> Value: {}", go_f(v))),
            None => {}
        }
        b.attributes("     -> FilteredAttributes", &e.filtered_attributes);
    }
}

/// A trace or span id in hex; all zeros (or absent) is empty, as pdata prints it.
fn id_hex(id: &[u8]) -> String {
    if id.iter().all(|b| *b == 0) {
        return String::new();
    }
    id.iter()
        .fold(String::with_capacity(id.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Go's `time.Time.String()` of the UTC time `nanos` after the epoch:
/// `2006-01-02 15:04:05.999999999 +0000 UTC`, trailing zeros of the fraction left out.
pub fn timestamp(nanos: u64) -> String {
    // pdata converts to a signed nanosecond count first.
    let nanos = nanos as i64;
    let secs = nanos.div_euclid(1_000_000_000);
    let frac = nanos.rem_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let tod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let mut out = format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        tod / 3600,
        tod / 60 % 60,
        tod % 60
    );
    if frac != 0 {
        let digits = format!("{frac:09}");
        out.push('.');
        out.push_str(digits.trim_end_matches('0'));
    }
    out.push_str(" +0000 UTC");
    out
}

/// Days since 1970-01-01 -> (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Go's `%f`: six decimals; `+Inf`, `-Inf`, `NaN`.
fn go_f(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v:.6}")
    }
}

/// pdata's double as text (ECMAScript number form): shortest digits, exponent form below
/// 1e-6 and from 1e21 (`1e-7`, `1e+21`).
fn go_double(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    let abs = v.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let s = format!("{v:e}");
        match s.split_once('e') {
            Some((mantissa, exp)) if !exp.starts_with('-') => format!("{mantissa}e+{exp}"),
            _ => s,
        }
    } else {
        format!("{v}")
    }
}

fn severity_name(n: i32) -> &'static str {
    const NAMES: [&str; 25] = [
        "Unspecified",
        "Trace",
        "Trace2",
        "Trace3",
        "Trace4",
        "Debug",
        "Debug2",
        "Debug3",
        "Debug4",
        "Info",
        "Info2",
        "Info3",
        "Info4",
        "Warn",
        "Warn2",
        "Warn3",
        "Warn4",
        "Error",
        "Error2",
        "Error3",
        "Error4",
        "Fatal",
        "Fatal2",
        "Fatal3",
        "Fatal4",
    ];
    usize::try_from(n)
        .ok()
        .and_then(|i| NAMES.get(i))
        .copied()
        .unwrap_or("")
}

fn span_kind(k: i32) -> &'static str {
    match k {
        0 => "Unspecified",
        1 => "Internal",
        2 => "Server",
        3 => "Client",
        4 => "Producer",
        5 => "Consumer",
        _ => "",
    }
}

fn status_code(c: i32) -> &'static str {
    match c {
        0 => "Unset",
        1 => "Ok",
        2 => "Error",
        _ => "",
    }
}

fn temporality(t: i32) -> &'static str {
    match t {
        1 => "Delta",
        2 => "Cumulative",
        _ => "Unspecified",
    }
}

/// `Type(text)` of one value, as the collector prints attributes and bodies.
fn value_string(v: Option<&AnyValue>) -> String {
    let value = v.and_then(|v| v.value.as_ref());
    let (kind, text) = match value {
        None => ("Empty", String::new()),
        Some(any_value::Value::StringValue(s)) => ("Str", s.clone()),
        Some(any_value::Value::BoolValue(b)) => ("Bool", b.to_string()),
        Some(any_value::Value::IntValue(i)) => ("Int", i.to_string()),
        Some(any_value::Value::DoubleValue(d)) => ("Double", go_double(*d)),
        Some(any_value::Value::BytesValue(b)) => ("Bytes", base64(b)),
        Some(any_value::Value::ArrayValue(a)) => {
            let mut s = String::new();
            json_array(&a.values, &mut s);
            ("Slice", s)
        }
        Some(any_value::Value::KvlistValue(l)) => {
            let mut s = String::new();
            json_map(&l.values, &mut s);
            ("Map", s)
        }
        Some(any_value::Value::StringValueStrindex(i)) => ("Int", i.to_string()),
    };
    format!("{kind}({text})")
}

/// Go's JSON of a map: keys sorted, no spaces, `<>&` not escaped.
fn json_map(kvs: &[KeyValue], out: &mut String) {
    let sorted: std::collections::BTreeMap<&str, Option<&AnyValue>> = kvs
        .iter()
        .map(|kv| (kv.key.as_str(), kv.value.as_ref()))
        .collect();
    out.push('{');
    for (i, (k, v)) in sorted.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json_string(k, out);
        out.push(':');
        json_value(v, out);
    }
    out.push('}');
}

fn json_array(values: &[AnyValue], out: &mut String) {
    out.push('[');
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json_value(Some(v), out);
    }
    out.push(']');
}

fn json_value(v: Option<&AnyValue>, out: &mut String) {
    match v.and_then(|v| v.value.as_ref()) {
        None => out.push_str("null"),
        Some(any_value::Value::StringValue(s)) => json_string(s, out),
        Some(any_value::Value::BoolValue(b)) => out.push_str(if *b { "true" } else { "false" }),
        Some(any_value::Value::IntValue(i)) => {
            let _ = write!(out, "{i}");
        }
        Some(any_value::Value::DoubleValue(d)) => out.push_str(&go_double(*d)),
        Some(any_value::Value::BytesValue(b)) => json_string(&base64(b), out),
        Some(any_value::Value::ArrayValue(a)) => json_array(&a.values, out),
        Some(any_value::Value::KvlistValue(l)) => json_map(&l.values, out),
        Some(any_value::Value::StringValueStrindex(i)) => {
            let _ = write!(out, "{i}");
        }
    }
}

/// A JSON string as Go's encoder writes it (HTML characters left as they are).
fn json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = match chunk.len() {
            3 => (u32::from(chunk[0]) << 16) | (u32::from(chunk[1]) << 8) | u32::from(chunk[2]),
            2 => (u32::from(chunk[0]) << 16) | (u32::from(chunk[1]) << 8),
            _ => u32::from(chunk[0]) << 16,
        };
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_api::otlp::common::v1::KeyValueList;
    use weir_api::otlp::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use weir_api::otlp::metrics::v1::{
        exponential_histogram_data_point::Buckets, summary_data_point::ValueAtQuantile,
        ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram, Metric,
        ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint,
    };
    use weir_api::otlp::trace::v1::{span::Event, ResourceSpans, ScopeSpans, Span, Status};

    const START: u64 = 1_581_452_772_000_000_321;
    const END: u64 = 1_581_452_773_000_000_789;
    const EVENT: u64 = 1_581_452_773_000_000_123;

    fn kv(k: &str, v: any_value::Value) -> KeyValue {
        KeyValue {
            key: k.into(),
            value: Some(AnyValue { value: Some(v) }),
            ..Default::default()
        }
    }
    fn s(k: &str, v: &str) -> KeyValue {
        kv(k, any_value::Value::StringValue(v.into()))
    }
    fn resource() -> Option<Resource> {
        Some(Resource {
            attributes: vec![s("resource-attr", "resource-attr-val-1")],
            ..Default::default()
        })
    }
    fn map(kvs: Vec<KeyValue>) -> any_value::Value {
        any_value::Value::KvlistValue(KeyValueList { values: kvs })
    }

    #[test]
    fn logs_in_the_collectors_layout() {
        let record = |body: any_value::Value, attrs: Vec<KeyValue>| LogRecord {
            time_unix_nano: END,
            severity_text: "Info".into(),
            severity_number: 9,
            body: Some(AnyValue { value: Some(body) }),
            attributes: attrs,
            ..Default::default()
        };
        let mut first = record(
            any_value::Value::StringValue("This is a log message".into()),
            vec![
                s("app", "server"),
                kv("instance_num", any_value::Value::IntValue(1)),
            ],
        );
        first.trace_id = vec![8, 4, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        first.span_id = vec![1, 2, 4, 8, 0, 0, 0, 0];
        let mut second = record(
            map(vec![
                s("key1", "val1"),
                kv(
                    "key2",
                    map(vec![s("key22", "val22"), s("key21", "a<b>\"c\"\n")]),
                ),
            ]),
            vec![
                kv("ratio", any_value::Value::DoubleValue(0.5)),
                kv("tiny", any_value::Value::DoubleValue(1e-7)),
                kv("ok", any_value::Value::BoolValue(true)),
                kv("raw", any_value::Value::BytesValue(b"hi!?".to_vec())),
            ],
        );
        second.severity_number = 17;
        second.severity_text = "ERROR".into();
        second.event_name = "app.crash".into();
        second.flags = 1;
        let req = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: resource(),
                scope_logs: vec![ScopeLogs {
                    log_records: vec![first, second],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        assert_eq!(
            render(&Payload::Logs(req)),
            "ResourceLog #0
Resource SchemaURL: 
Resource attributes:
     -> resource-attr: Str(resource-attr-val-1)
ScopeLogs #0
ScopeLogs SchemaURL: 
InstrumentationScope  
LogRecord #0
ObservedTimestamp: 1970-01-01 00:00:00 +0000 UTC
Timestamp: 2020-02-11 20:26:13.000000789 +0000 UTC
SeverityText: Info
SeverityNumber: Info(9)
Body: Str(This is a log message)
Attributes:
     -> app: Str(server)
     -> instance_num: Int(1)
Trace ID: 08040201000000000000000000000000
Span ID: 0102040800000000
Flags: 0
LogRecord #1
ObservedTimestamp: 1970-01-01 00:00:00 +0000 UTC
Timestamp: 2020-02-11 20:26:13.000000789 +0000 UTC
SeverityText: ERROR
SeverityNumber: Error(17)
EventName: app.crash
Body: Map({\"key1\":\"val1\",\"key2\":{\"key21\":\"a<b>\\\"c\\\"\\n\",\"key22\":\"val22\"}})
Attributes:
     -> ratio: Double(0.5)
     -> tiny: Double(1e-7)
     -> ok: Bool(true)
     -> raw: Bytes(aGkhPw==)
Trace ID: 
Span ID: 
Flags: 1
"
        );
    }

    #[test]
    fn spans_in_the_collectors_layout() {
        let a = Span {
            trace_id: (1..=16).collect(),
            span_id: (0x11..=0x18).collect(),
            trace_state: "ot=th:0".into(),
            name: "operationA".into(),
            start_time_unix_nano: START,
            end_time_unix_nano: END,
            dropped_attributes_count: 1,
            dropped_events_count: 1,
            events: vec![
                Event {
                    time_unix_nano: EVENT,
                    name: "event-with-attr".into(),
                    attributes: vec![s("span-event-attr", "span-event-attr-val")],
                    dropped_attributes_count: 2,
                },
                Event {
                    time_unix_nano: EVENT,
                    name: "event".into(),
                    attributes: vec![],
                    dropped_attributes_count: 2,
                },
            ],
            status: Some(Status {
                message: "status-cancelled".into(),
                code: 2,
            }),
            ..Default::default()
        };
        let b = Span {
            name: "operationB".into(),
            kind: 2,
            start_time_unix_nano: START,
            end_time_unix_nano: END,
            dropped_links_count: 3,
            attributes: vec![s("http.method", "GET")],
            links: vec![span::Link {
                attributes: vec![s("span-link-attr", "span-link-attr-val")],
                dropped_attributes_count: 4,
                ..Default::default()
            }],
            ..Default::default()
        };
        let req = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: resource(),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: "lib".into(),
                        version: "1.2".into(),
                        attributes: vec![s("scope-attr", "x")],
                        ..Default::default()
                    }),
                    spans: vec![a, b],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        assert_eq!(
            render(&Payload::Traces(req)),
            "ResourceSpans #0
Resource SchemaURL: 
Resource attributes:
     -> resource-attr: Str(resource-attr-val-1)
ScopeSpans #0
ScopeSpans SchemaURL: 
InstrumentationScope lib 1.2
InstrumentationScope attributes:
     -> scope-attr: Str(x)
Span #0
    Trace ID       : 0102030405060708090a0b0c0d0e0f10
    Parent ID      : 
    ID             : 1112131415161718
    Name           : operationA
    Kind           : Unspecified
    TraceState     : ot=th:0
    Start time     : 2020-02-11 20:26:12.000000321 +0000 UTC
    End time       : 2020-02-11 20:26:13.000000789 +0000 UTC
    Status code    : Error
    Status message : status-cancelled
    DroppedAttributesCount: 1
    DroppedEventsCount: 1
    DroppedLinksCount: 0
Events:
SpanEvent #0
     -> Name: event-with-attr
     -> Timestamp: 2020-02-11 20:26:13.000000123 +0000 UTC
     -> DroppedAttributesCount: 2
     -> Attributes::
          -> span-event-attr: Str(span-event-attr-val)
SpanEvent #1
     -> Name: event
     -> Timestamp: 2020-02-11 20:26:13.000000123 +0000 UTC
     -> DroppedAttributesCount: 2
Span #1
    Trace ID       : 
    Parent ID      : 
    ID             : 
    Name           : operationB
    Kind           : Server
    Start time     : 2020-02-11 20:26:12.000000321 +0000 UTC
    End time       : 2020-02-11 20:26:13.000000789 +0000 UTC
    Status code    : Unset
    Status message : 
    DroppedAttributesCount: 0
    DroppedEventsCount: 0
    DroppedLinksCount: 3
Attributes:
     -> http.method: Str(GET)
Links:
SpanLink #0
     -> Trace ID: 
     -> ID: 
     -> TraceState: 
     -> DroppedAttributesCount: 4
     -> Attributes::
          -> span-link-attr: Str(span-link-attr-val)
"
        );
    }

    #[test]
    fn metrics_of_every_point_type_in_the_collectors_layout() {
        let label = |k: &str| vec![s(k, &format!("{k}-value"))];
        let metric = |name: &str, data: metric::Data| Metric {
            name: name.into(),
            unit: "1".into(),
            data: Some(data),
            ..Default::default()
        };
        let number = |v: number_data_point::Value| NumberDataPoint {
            attributes: label("label-1"),
            start_time_unix_nano: START,
            time_unix_nano: END,
            value: Some(v),
            ..Default::default()
        };
        let mut gauge = metric(
            "gauge-int",
            metric::Data::Gauge(Gauge {
                data_points: vec![number(number_data_point::Value::AsInt(123))],
            }),
        );
        gauge.description = "a gauge".into();
        gauge.metadata = vec![s("origin", "sdk")];
        let sum = metric(
            "sum-double",
            metric::Data::Sum(Sum {
                data_points: vec![number(number_data_point::Value::AsDouble(4.56))],
                aggregation_temporality: 2,
                is_monotonic: true,
            }),
        );
        let histogram = metric(
            "histogram",
            metric::Data::Histogram(Histogram {
                data_points: vec![HistogramDataPoint {
                    attributes: label("label-2"),
                    start_time_unix_nano: START,
                    time_unix_nano: END,
                    count: 1,
                    sum: Some(15.0),
                    min: Some(15.0),
                    max: Some(15.0),
                    bucket_counts: vec![0, 1],
                    explicit_bounds: vec![1.0],
                    exemplars: vec![Exemplar {
                        filtered_attributes: vec![s(
                            "exemplar-attachment",
                            "exemplar-attachment-value",
                        )],
                        time_unix_nano: EVENT,
                        span_id: (0x11..=0x18).collect(),
                        trace_id: (1..=16).collect(),
                        value: Some(exemplar::Value::AsDouble(15.0)),
                    }],
                    ..Default::default()
                }],
                aggregation_temporality: 2,
            }),
        );
        let exponential = metric(
            "exponential-histogram",
            metric::Data::ExponentialHistogram(ExponentialHistogram {
                data_points: vec![
                    ExponentialHistogramDataPoint {
                        attributes: label("label-1"),
                        start_time_unix_nano: START,
                        time_unix_nano: END,
                        count: 5,
                        sum: Some(0.15),
                        scale: 1,
                        zero_count: 1,
                        positive: Some(Buckets {
                            offset: 1,
                            bucket_counts: vec![1, 1],
                        }),
                        negative: Some(Buckets {
                            offset: -1,
                            bucket_counts: vec![1, 1],
                        }),
                        ..Default::default()
                    },
                    ExponentialHistogramDataPoint {
                        start_time_unix_nano: START,
                        time_unix_nano: END,
                        count: 3,
                        sum: Some(1.25),
                        min: Some(0.0),
                        max: Some(1.0),
                        scale: -1,
                        zero_count: 1,
                        positive: Some(Buckets {
                            offset: -1,
                            bucket_counts: vec![1, 1],
                        }),
                        exemplars: vec![Exemplar {
                            time_unix_nano: EVENT,
                            value: Some(exemplar::Value::AsInt(15)),
                            ..Default::default()
                        }],
                        ..Default::default()
                    },
                ],
                aggregation_temporality: 1,
            }),
        );
        let summary = metric(
            "summary",
            metric::Data::Summary(Summary {
                data_points: vec![SummaryDataPoint {
                    attributes: label("label-3"),
                    start_time_unix_nano: START,
                    time_unix_nano: END,
                    count: 1,
                    sum: 15.0,
                    quantile_values: vec![ValueAtQuantile {
                        quantile: 0.01,
                        value: 15.0,
                    }],
                    ..Default::default()
                }],
            }),
        );
        let req = ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: resource(),
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![gauge, sum, histogram, exponential, summary],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        assert_eq!(
            render(&Payload::Metrics(req)),
            "ResourceMetrics #0
Resource SchemaURL: 
Resource attributes:
     -> resource-attr: Str(resource-attr-val-1)
ScopeMetrics #0
ScopeMetrics SchemaURL: 
InstrumentationScope  
Metric #0
Descriptor:
     -> Name: gauge-int
     -> Description: a gauge
     -> Unit: 1
     -> DataType: Gauge
     -> Metadata:
          -> origin: Str(sdk)
NumberDataPoints #0
Data point attributes:
     -> label-1: Str(label-1-value)
StartTimestamp: 2020-02-11 20:26:12.000000321 +0000 UTC
Timestamp: 2020-02-11 20:26:13.000000789 +0000 UTC
Value: 123
Metric #1
Descriptor:
     -> Name: sum-double
     -> Description: 
     -> Unit: 1
     -> DataType: Sum
     -> IsMonotonic: true
     -> AggregationTemporality: Cumulative
NumberDataPoints #0
Data point attributes:
     -> label-1: Str(label-1-value)
StartTimestamp: 2020-02-11 20:26:12.000000321 +0000 UTC
Timestamp: 2020-02-11 20:26:13.000000789 +0000 UTC
Value: 4.560000
Metric #2
Descriptor:
     -> Name: histogram
     -> Description: 
     -> Unit: 1
     -> DataType: Histogram
     -> AggregationTemporality: Cumulative
HistogramDataPoints #0
Data point attributes:
     -> label-2: Str(label-2-value)
StartTimestamp: 2020-02-11 20:26:12.000000321 +0000 UTC
Timestamp: 2020-02-11 20:26:13.000000789 +0000 UTC
Count: 1
Sum: 15.000000
Min: 15.000000
Max: 15.000000
ExplicitBounds #0: 1.000000
Buckets #0, Count: 0
Buckets #1, Count: 1
Exemplars:
Exemplar #0
     -> Trace ID: 0102030405060708090a0b0c0d0e0f10
     -> Span ID: 1112131415161718
     -> Timestamp: 2020-02-11 20:26:13.000000123 +0000 UTC
     -> Value: 15.000000
     -> FilteredAttributes:
          -> exemplar-attachment: Str(exemplar-attachment-value)
Metric #3
Descriptor:
     -> Name: exponential-histogram
     -> Description: 
     -> Unit: 1
     -> DataType: ExponentialHistogram
     -> AggregationTemporality: Delta
ExponentialHistogramDataPoints #0
Data point attributes:
     -> label-1: Str(label-1-value)
StartTimestamp: 2020-02-11 20:26:12.000000321 +0000 UTC
Timestamp: 2020-02-11 20:26:13.000000789 +0000 UTC
Count: 5
Sum: 0.150000
Bucket [-1.414214, -1.000000), Count: 1
Bucket [-1.000000, -0.707107), Count: 1
Bucket [0, 0], Count: 1
Bucket (1.414214, 2.000000], Count: 1
Bucket (2.000000, 2.828427], Count: 1
ExponentialHistogramDataPoints #1
StartTimestamp: 2020-02-11 20:26:12.000000321 +0000 UTC
Timestamp: 2020-02-11 20:26:13.000000789 +0000 UTC
Count: 3
Sum: 1.250000
Min: 0.000000
Max: 1.000000
Bucket [0, 0], Count: 1
Bucket (0.250000, 1.000000], Count: 1
Bucket (1.000000, 4.000000], Count: 1
Exemplars:
Exemplar #0
     -> Trace ID: 
     -> Span ID: 
     -> Timestamp: 2020-02-11 20:26:13.000000123 +0000 UTC
     -> Value: 15
Metric #4
Descriptor:
     -> Name: summary
     -> Description: 
     -> Unit: 1
     -> DataType: Summary
SummaryDataPoints #0
Data point attributes:
     -> label-3: Str(label-3-value)
StartTimestamp: 2020-02-11 20:26:12.000000321 +0000 UTC
Timestamp: 2020-02-11 20:26:13.000000789 +0000 UTC
Count: 1
Sum: 15.000000
QuantileValue #0: Quantile 0.010000, Value 15.000000
"
        );
    }

    #[test]
    fn go_number_and_time_forms() {
        assert_eq!(timestamp(0), "1970-01-01 00:00:00 +0000 UTC");
        assert_eq!(timestamp(1_500_000_000), "1970-01-01 00:00:01.5 +0000 UTC");
        assert_eq!(go_f(f64::INFINITY), "+Inf");
        assert_eq!(go_f(-0.5), "-0.500000");
        assert_eq!(go_double(3.0), "3");
        assert_eq!(go_double(1e21), "1e+21");
        assert_eq!(go_double(-2.5e-9), "-2.5e-9");
        assert_eq!(base64(b"a"), "YQ==");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b"abc"), "YWJj");
    }
}
