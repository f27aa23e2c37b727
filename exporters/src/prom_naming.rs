//! OTLP to Prometheus naming, shared by the `prometheus` and `prometheusremotewrite`
//! exporters. The rules are the Collector's (its Prometheus translator, "underscore
//! escaping" strategies):
//!
//! - metric names keep `[a-zA-Z0-9:]`; any run of other characters splits the name into
//!   tokens joined by `_` (so `http.server.duration` is `http_server_duration`);
//! - with suffixes on, the unit is appended (`s` → `seconds`, `By` → `bytes`, `ms` →
//!   `milliseconds`, `1` → nothing, `{requests}` → nothing, `By/s` → `bytes_per_second`)
//!   unless a name token already says it; monotonic sums end in `_total`; gauges of unit
//!   `1` end in `_ratio`;
//! - the namespace, if any, comes first; a name starting with a digit gets a `_` prefix;
//! - label names keep `[a-zA-Z0-9_]`, other characters become `_`; a name starting with a
//!   digit gets `key_`, one starting with a single `_` gets `key`.

use weir_api::otlp::common::v1::{any_value, AnyValue, KeyValue};

/// How an OTLP metric is typed for naming.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    /// A monotonic sum: a Prometheus counter, `_total`.
    Counter,
    /// A gauge (or a non-monotonic sum, which is exposed as a gauge but gets no `_ratio`).
    Gauge,
    /// A non-monotonic sum.
    UpDown,
    /// A histogram.
    Histogram,
    /// A summary.
    Summary,
}

fn unit_word(unit: &str) -> &str {
    match unit {
        "d" => "days",
        "h" => "hours",
        "min" => "minutes",
        "s" => "seconds",
        "ms" => "milliseconds",
        "us" => "microseconds",
        "ns" => "nanoseconds",
        "By" => "bytes",
        "KiBy" => "kibibytes",
        "MiBy" => "mebibytes",
        "GiBy" => "gibibytes",
        "TiBy" => "tibibytes",
        "KBy" => "kilobytes",
        "MBy" => "megabytes",
        "GBy" => "gigabytes",
        "TBy" => "terabytes",
        "m" => "meters",
        "V" => "volts",
        "A" => "amperes",
        "J" => "joules",
        "W" => "watts",
        "g" => "grams",
        "Cel" => "celsius",
        "Hz" => "hertz",
        "1" => "",
        "%" => "percent",
        other => other,
    }
}

fn per_unit_word(unit: &str) -> &str {
    match unit {
        "s" => "second",
        "m" => "minute",
        "h" => "hour",
        "d" => "day",
        "w" => "week",
        "mo" => "month",
        "y" => "year",
        other => other,
    }
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == ':'
}

/// A unit word as a name token: characters outside `[a-zA-Z0-9:_]` become `_`, runs of `_`
/// one `_`, a leading `_` is dropped.
fn clean_unit(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let c = if is_name_char(c) || c == '_' { c } else { '_' };
        if c == '_' && (out.is_empty() || out.ends_with('_')) {
            continue;
        }
        out.push(c);
    }
    out
}

/// The main and `per_` unit suffixes of an OTLP unit (`By/s` → `bytes`, `per_second`).
fn unit_suffixes(unit: &str) -> (String, String) {
    let mut parts = unit.splitn(2, '/');
    let main = parts.next().unwrap_or("").trim();
    let main = if main.is_empty() || main.contains(['{', '}']) {
        String::new()
    } else {
        clean_unit(unit_word(main))
    };
    let per = match parts.next() {
        Some(p) if !p.trim().is_empty() && !p.trim().contains(['{', '}']) => {
            let word = per_unit_word(p.trim());
            if word.is_empty() {
                String::new()
            } else {
                clean_unit(&format!("per_{word}"))
            }
        }
        _ => String::new(),
    };
    (main, per)
}

/// The Prometheus name of an OTLP metric.
pub fn metric_name(
    name: &str,
    unit: &str,
    kind: NameKind,
    namespace: &str,
    add_suffixes: bool,
) -> String {
    let mut tokens: Vec<String> = name
        .split(|c: char| !is_name_char(c))
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect();
    if !add_suffixes {
        let base = tokens.join("_");
        let ns = namespace
            .split(|c: char| !is_name_char(c) && c != '_')
            .filter(|t| !t.is_empty())
            .collect::<Vec<_>>()
            .join("_");
        if !ns.is_empty() {
            return format!("{ns}_{base}");
        }
        return digit_prefixed(base);
    }
    let (mut main, per) = unit_suffixes(unit);
    if tokens.contains(&main) {
        main.clear();
    }
    let mut per = if per == "per_" {
        String::new()
    } else {
        per.trim_end_matches('_').to_string()
    };
    if tokens.contains(&per) {
        per.clear();
    }
    if !per.is_empty() {
        main = main.trim_end_matches('_').to_string();
    }
    if !main.is_empty() {
        tokens.push(main);
    }
    if !per.is_empty() {
        tokens.push(per);
    }
    if kind == NameKind::Counter {
        tokens.retain(|t| t != "total");
        tokens.push("total".into());
    }
    if unit == "1" && kind == NameKind::Gauge {
        tokens.retain(|t| t != "ratio");
        tokens.push("ratio".into());
    }
    if !namespace.is_empty() {
        tokens.insert(0, namespace.to_string());
    }
    digit_prefixed(tokens.join("_"))
}

fn digit_prefixed(name: String) -> String {
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        format!("_{name}")
    } else {
        name
    }
}

/// A Prometheus label name for an OTLP attribute key.
pub fn label_name(key: &str) -> String {
    if key.is_empty() {
        return String::new();
    }
    let mut out: String = key
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert_str(0, "key_");
    } else if out.starts_with('_') && !out.starts_with("__") {
        out.insert_str(0, "key");
    }
    out
}

/// An attribute value as a label value (the Collector's `AsString`): strings as they are,
/// numbers and booleans in their usual text, bytes in base64, arrays and maps as JSON.
pub fn value_string(v: Option<&AnyValue>) -> String {
    match v.and_then(|v| v.value.as_ref()) {
        None => String::new(),
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => format_float(*d),
        Some(any_value::Value::BytesValue(b)) => {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.encode(b)
        }
        Some(other) => json_value(other).to_string(),
    }
}

fn json_value(v: &any_value::Value) -> serde_json::Value {
    match v {
        any_value::Value::StringValue(s) => serde_json::Value::String(s.clone()),
        any_value::Value::BoolValue(b) => serde_json::Value::Bool(*b),
        any_value::Value::IntValue(i) => serde_json::Value::from(*i),
        any_value::Value::DoubleValue(d) => serde_json::Value::from(*d),
        any_value::Value::BytesValue(b) => {
            use base64::Engine;
            serde_json::Value::String(base64::engine::general_purpose::STANDARD.encode(b))
        }
        any_value::Value::ArrayValue(a) => serde_json::Value::Array(
            a.values
                .iter()
                .map(|x| x.value.as_ref().map_or(serde_json::Value::Null, json_value))
                .collect(),
        ),
        // A profiles string-table reference: no table here, so the index itself.
        any_value::Value::StringValueStrindex(i) => serde_json::Value::from(*i),
        any_value::Value::KvlistValue(kv) => serde_json::Value::Object(
            kv.values
                .iter()
                .map(|x| {
                    (
                        x.key.clone(),
                        x.value
                            .as_ref()
                            .and_then(|v| v.value.as_ref())
                            .map_or(serde_json::Value::Null, json_value),
                    )
                })
                .collect(),
        ),
    }
}

/// Looks up an attribute by key.
pub fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
}

/// `job` from a resource: `service.namespace/service.name`, or `service.name`.
pub fn job(resource: &[KeyValue]) -> Option<String> {
    let name = value_string(Some(attr(resource, "service.name")?));
    Some(match attr(resource, "service.namespace") {
        Some(ns) => format!("{}/{name}", value_string(Some(ns))),
        None => name,
    })
}

/// `instance` from a resource: `service.instance.id`.
pub fn instance(resource: &[KeyValue]) -> Option<String> {
    attr(resource, "service.instance.id").map(|v| value_string(Some(v)))
}

/// Adds `(label_name(key), value)` to `labels`; when two keys map to one label name, the
/// values are joined with `;` in key order (as the Collector's translators do).
pub fn push_label(labels: &mut Vec<(String, String)>, name: String, value: String) {
    if name.is_empty() {
        return;
    }
    match labels.iter_mut().find(|(n, _)| *n == name) {
        Some((_, v)) => {
            v.push(';');
            v.push_str(&value);
        }
        None => labels.push((name, value)),
    }
}

/// Converts attributes to labels, colliding names joined as [`push_label`] says (in key
/// order, so the result does not depend on attribute order).
pub fn attrs_to_labels(attrs: &[KeyValue], labels: &mut Vec<(String, String)>) {
    let mut sorted: Vec<&KeyValue> = attrs.iter().collect();
    sorted.sort_by(|a, b| a.key.cmp(&b.key));
    for kv in sorted {
        push_label(labels, label_name(&kv.key), value_string(kv.value.as_ref()));
    }
}

/// A float in the text exposition format's shortest form (as Go's `FormatFloat(v, 'g',
/// -1, 64)`, which Prometheus clients use): `1`, `0.25`, `1e+06`, `1e-05`, `NaN`, `+Inf`.
pub fn format_float(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if v == 0.0 {
        return if v.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    // The shortest round-trip digits, in exponent form: `1.2345e5`.
    let sci = format!("{v:e}");
    let Some((mantissa, e)) = sci.split_once('e') else {
        return sci;
    };
    let exp: i32 = e.parse().unwrap_or(0);
    if (-4..6).contains(&exp) {
        // Rust prints the same digits without an exponent.
        return format!("{v}");
    }
    // Go writes at least two exponent digits and always a sign: `1e-05`, `1.5e+300`.
    let (sign, digits) = match e.strip_prefix('-') {
        Some(d) => ('-', d),
        None => ('+', e),
    };
    if digits.len() < 2 {
        format!("{mantissa}e{sign}0{digits}")
    } else {
        format!("{mantissa}e{sign}{digits}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_collector() {
        use NameKind::*;
        let n = |name, unit, kind| metric_name(name, unit, kind, "", true);
        assert_eq!(
            n("http.server.duration", "s", Histogram),
            "http_server_duration_seconds"
        );
        assert_eq!(n("requests", "1", Counter), "requests_total");
        assert_eq!(n("requests.total", "{request}", Counter), "requests_total");
        assert_eq!(n("memory.usage", "By", Gauge), "memory_usage_bytes");
        assert_eq!(n("cpu.utilization", "1", Gauge), "cpu_utilization_ratio");
        assert_eq!(n("cpu.utilization", "1", UpDown), "cpu_utilization");
        assert_eq!(n("net.io", "By/s", Gauge), "net_io_bytes_per_second");
        assert_eq!(n("latency_seconds", "s", Histogram), "latency_seconds");
        assert_eq!(n("queue", "{items}/s", Gauge), "queue_per_second");
        assert_eq!(n("2xx.count", "", Counter), "_2xx_count_total");
        assert_eq!(n("a__b:c", "ms", Summary), "a_b:c_milliseconds");
        assert_eq!(n("temp", "Cel", Gauge), "temp_celsius");
        assert_eq!(n("weird", "m/s/x", Gauge), "weird_meters_per_s_x");
        assert_eq!(
            metric_name("a.b", "s", Counter, "ns", true),
            "ns_a_b_seconds_total"
        );
        assert_eq!(metric_name("a.b", "s", Counter, "ns", false), "ns_a_b");
        assert_eq!(metric_name("1a.b", "s", Counter, "", false), "_1a_b");
    }

    #[test]
    fn labels_follow_the_collector() {
        assert_eq!(label_name("http.method"), "http_method");
        assert_eq!(label_name("2xx"), "key_2xx");
        assert_eq!(label_name("_private"), "key_private");
        assert_eq!(label_name("__meta"), "__meta");
        assert_eq!(label_name("ünïcode"), "key_n_code");
        let mut labels = Vec::new();
        attrs_to_labels(
            &[
                KeyValue {
                    key: "a_b".into(),
                    value: Some(AnyValue {
                        value: Some(any_value::Value::IntValue(2)),
                    }),
                    ..Default::default()
                },
                KeyValue {
                    key: "a.b".into(),
                    value: Some(AnyValue {
                        value: Some(any_value::Value::StringValue("x".into())),
                    }),
                    ..Default::default()
                },
            ],
            &mut labels,
        );
        assert_eq!(labels, vec![("a_b".to_string(), "x;2".to_string())]);
    }

    #[test]
    fn floats_like_go() {
        assert_eq!(format_float(1.0), "1");
        assert_eq!(format_float(0.25), "0.25");
        assert_eq!(format_float(-3.5), "-3.5");
        assert_eq!(format_float(1e21), "1e+21");
        assert_eq!(format_float(1e-5), "1e-05");
        assert_eq!(format_float(123456789.0), "1.23456789e+08");
        assert_eq!(format_float(100000.0), "100000");
        assert_eq!(format_float(1e6), "1e+06");
        assert_eq!(format_float(123456.5), "123456.5");
        assert_eq!(format_float(0.0001), "0.0001");
        assert_eq!(format_float(f64::INFINITY), "+Inf");
        assert_eq!(format_float(f64::NAN), "NaN");
        assert_eq!(format_float(1.5e300), "1.5e+300");
    }
}
