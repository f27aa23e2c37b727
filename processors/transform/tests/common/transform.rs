//! How the `transform` tests build the processor and read what it did.

use weir_api::otlp::common::v1::{any_value, AnyValue, KeyValue};
use weir_api::{Batch, Payload};
use weir_transform::transform::{TransformPlan, TransformProcessor};

use super::yaml;

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
        Some(any_value::Value::KvlistValue(m)) => format!("{{{}}}", render(&m.values).join(",")),
        Some(any_value::Value::ArrayValue(a)) => format!(
            "[{}]",
            a.values
                .iter()
                .map(|x| show(Some(x)))
                .collect::<Vec<_>>()
                .join(",")
        ),
        other => format!("{other:?}"),
    }
}

pub fn transform(src: &str) -> TransformProcessor {
    TransformProcessor::from_config(&yaml(src), "processors.transform").expect("config is valid")
}

pub fn errors_of(src: &str) -> Vec<String> {
    match TransformPlan::parse(&yaml(src), "processors.transform") {
        Ok(_) => panic!("config should be rejected"),
        Err(e) => e.0.iter().map(|e| e.to_string()).collect(),
    }
}

pub fn logs(batch: &Batch) -> Vec<(String, String, Vec<String>)> {
    let Payload::Logs(req) = batch.payload() else {
        panic!("not logs")
    };
    req.resource_logs
        .iter()
        .flat_map(|r| &r.scope_logs)
        .flat_map(|s| &s.log_records)
        .map(|l| {
            (
                show(l.body.as_ref()),
                l.severity_text.clone(),
                render(&l.attributes),
            )
        })
        .collect()
}

pub fn spans(batch: &Batch) -> Vec<(String, Vec<String>)> {
    let Payload::Traces(req) = batch.payload() else {
        panic!("not traces")
    };
    req.resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
        .map(|s| (s.name.clone(), render(&s.attributes)))
        .collect()
}
