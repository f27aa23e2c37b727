//! How the `attributes` and `resource` tests build the processor and read what it did.

use weir_api::otlp::common::v1::{any_value, AnyValue, KeyValue};
use weir_api::{Batch, Payload};
use weir_transform::attributes::{AttributesPlan, AttributesProcessor};

use super::yaml;

/// `key=value` pairs, sorted; non-strings are marked (`7i`, `1.5f`, `true`).
pub fn render(attrs: &[KeyValue]) -> Vec<String> {
    let mut out: Vec<String> = attrs
        .iter()
        .map(|kv| format!("{}={}", kv.key, show(kv.value.as_ref())))
        .collect();
    out.sort();
    out
}

pub fn show(v: Option<&AnyValue>) -> String {
    match v.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => format!("{i}i"),
        Some(any_value::Value::DoubleValue(d)) => format!("{d}f"),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::ArrayValue(a)) => {
            let items: Vec<String> = a.values.iter().map(|x| show(Some(x))).collect();
            format!("[{}]", items.join(","))
        }
        other => format!("{other:?}"),
    }
}

pub fn span_attrs(batch: &Batch) -> Vec<Vec<String>> {
    let Payload::Traces(req) = batch.payload() else {
        panic!("not traces")
    };
    req.resource_spans
        .iter()
        .flat_map(|rs| &rs.scope_spans)
        .flat_map(|ss| &ss.spans)
        .map(|s| render(&s.attributes))
        .collect()
}

pub fn log_attrs(batch: &Batch) -> Vec<Vec<String>> {
    let Payload::Logs(req) = batch.payload() else {
        panic!("not logs")
    };
    req.resource_logs
        .iter()
        .flat_map(|r| &r.scope_logs)
        .flat_map(|s| &s.log_records)
        .map(|l| render(&l.attributes))
        .collect()
}

pub fn resource_attrs(batch: &Batch) -> Vec<Vec<String>> {
    let res = match batch.payload() {
        Payload::Logs(r) => r
            .resource_logs
            .iter()
            .map(|x| x.resource.clone())
            .collect::<Vec<_>>(),
        Payload::Traces(r) => r
            .resource_spans
            .iter()
            .map(|x| x.resource.clone())
            .collect(),
        Payload::Metrics(r) => r
            .resource_metrics
            .iter()
            .map(|x| x.resource.clone())
            .collect(),
    };
    res.iter()
        .map(|r| render(r.as_ref().map_or(&[][..], |r| &r.attributes)))
        .collect()
}

pub fn attributes(src: &str) -> AttributesProcessor {
    AttributesProcessor::from_config(&yaml(src), "processors.attributes").expect("config is valid")
}

pub fn errors_of(src: &str) -> Vec<String> {
    match AttributesPlan::parse(&yaml(src), "processors.attributes") {
        Ok(_) => panic!("config should be rejected"),
        Err(e) => e.0.iter().map(|e| e.to_string()).collect(),
    }
}
