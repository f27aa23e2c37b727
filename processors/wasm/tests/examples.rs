//! The wasm-sdk example guests, compiled to wasm32 by this test build, run through the real
//! `wasm` processor stage with exact expected outputs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::json;
use weir_api::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use weir_api::otlp::metrics::v1::{
    metric::Data, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics,
};
use weir_api::{Payload, Signal};

fn module(name: &str) -> String {
    example_wasm(name).display().to_string()
}

#[tokio::test]
async fn severity_filter_drops_records_below_the_configured_severity() {
    let h = harness(
        json!({"module": module("severity_filter"), "config": {"min_severity": 13}}),
        Signal::Logs,
    );
    let batch = logs_batch(vec![
        record("debug", 5),
        record("warn", 13),
        record("info", 9),
        record("unset", 0),
        record("error", 17),
        record("trace", 1),
    ]);
    let out = h.run(batch).await;
    assert_eq!(out.len(), 1);
    assert_eq!(log_bodies(&out[0]), ["warn", "unset", "error"]);
    // Verdicts are applied to the host's batch: resources survive with their attributes.
    let Payload::Logs(r) = out[0].payload() else {
        unreachable!()
    };
    assert_eq!(r.resource_logs.len(), 2);
    assert_eq!(h.failures("trap"), 0);
}

#[tokio::test]
async fn severity_filter_passes_an_untouched_batch_as_its_original_bytes() {
    let h = harness(json!({"module": module("severity_filter")}), Signal::Logs);
    let batch = logs_batch(vec![record("a", 9), record("b", 21)]);
    let bytes = batch.original_bytes().cloned().unwrap();
    let out = h.run(batch).await;
    assert_eq!(out[0].original_bytes(), Some(&bytes));
}

#[tokio::test]
async fn severity_filter_dropping_everything_stops_the_batch() {
    let h = harness(
        json!({"module": module("severity_filter"), "config": {"min_severity": 21}}),
        Signal::Logs,
    );
    let out = h
        .run(logs_batch(vec![record("a", 9), record("b", 5)]))
        .await;
    assert!(out.is_empty());
    assert_eq!(
        metric_value(
            &h.telemetry.encode(),
            "weir_processor_dropped_items_total",
            "wasm/test"
        ),
        2
    );
}

#[tokio::test]
async fn redact_emails_rewrites_bodies_and_keeps_the_rest() {
    let h = harness(json!({"module": module("redact_emails")}), Signal::Logs);
    let batch = logs_batch(vec![
        record("login by jane.doe+x@example.com from 10.0.0.1", 9),
        record("no address here @ all", 9),
        record("mail a@b.io and bob@mail.example.org.", 13),
    ]);
    let out = h.run(batch).await;
    assert_eq!(
        log_bodies(&out[0]),
        [
            "login by [REDACTED] from 10.0.0.1",
            "no address here @ all",
            "mail [REDACTED] and [REDACTED].",
        ]
    );
    // The rewritten batch is a replacement: severities and resources are preserved.
    let Payload::Logs(r) = out[0].payload() else {
        unreachable!()
    };
    assert_eq!(
        r.resource_logs[1].scope_logs[0].log_records[1].severity_number,
        13
    );
    assert_eq!(
        r.resource_logs[1].resource.as_ref().unwrap().attributes[0].value,
        string_value("svc-1")
    );
}

#[tokio::test]
async fn redact_emails_uses_the_configured_replacement() {
    let h = harness(
        json!({"module": module("redact_emails"), "config": {"replacement": "<email>"}}),
        Signal::Logs,
    );
    let out = h
        .run(logs_batch(vec![record("to: ops@corp.example", 9)]))
        .await;
    assert_eq!(log_bodies(&out[0]), ["to: <email>"]);
}

fn trace_id(last: u8) -> [u8; 16] {
    let mut id = [7u8; 16];
    id[8..15].copy_from_slice(&[0; 7]);
    id[15] = last;
    id
}

#[tokio::test]
async fn trace_sampler_keeps_one_trace_in_n_by_trace_id() {
    let h = harness(
        json!({"module": module("trace_sampler"), "config": {"one_in": 4}}),
        Signal::Traces,
    );
    let spans = (0u8..10)
        .map(|i| span(&format!("s{i}"), trace_id(i)))
        .collect();
    let out = h.run(spans_batch(spans)).await;
    // The low 8 bytes of the ids are 0..9; multiples of 4 are kept.
    assert_eq!(span_names(&out[0]), ["s0", "s4", "s8"]);
}

#[tokio::test]
async fn drop_matching_drops_logs_whose_attribute_equals_the_value() {
    let h = harness(
        json!({"module": module("drop_matching"),
               "config": {"field": "attributes.http.route", "equals": "/healthz"}}),
        Signal::Logs,
    );
    let mut health = record("health", 9);
    health.attributes.push(attr("http.route", "/healthz"));
    let mut api = record("api", 9);
    api.attributes.push(attr("http.route", "/api"));
    let out = h
        .run(logs_batch(vec![
            health.clone(),
            api,
            record("none", 9),
            health,
        ]))
        .await;
    assert_eq!(log_bodies(&out[0]), ["api", "none"]);
}

#[tokio::test]
async fn drop_matching_drops_whole_metrics_by_name() {
    let h = harness(
        json!({"module": module("drop_matching"), "config": {"field": "name", "equals": "noisy"}}),
        Signal::Metrics,
    );
    let gauge = |name: &str, points: usize| Metric {
        name: name.into(),
        data: Some(Data::Gauge(Gauge {
            data_points: vec![NumberDataPoint::default(); points],
        })),
        ..Default::default()
    };
    let batch = encoded(Payload::Metrics(ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![gauge("a", 2), gauge("noisy", 3), gauge("b", 1)],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }));
    let out = h.run(batch).await;
    let Payload::Metrics(r) = out[0].payload() else {
        unreachable!()
    };
    let names: Vec<&str> = r.resource_metrics[0].scope_metrics[0]
        .metrics
        .iter()
        .map(|m| m.name.as_str())
        .collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(out[0].item_count(), 3);
}

#[tokio::test]
async fn probabilistic_sampler_decides_like_the_built_in_sampler() {
    let wasm = harness(
        json!({"module": module("probabilistic_sampler"),
               "config": {"sampling_percentage": 30, "hash_seed": 22}}),
        Signal::Traces,
    );
    let builtin = {
        let parsed = weir_filter::register;
        let mut registry = weir_api::Registry::new();
        parsed(&mut registry);
        let factory = registry
            .processors
            .get("probabilistic_sampler")
            .unwrap()
            .clone();
        let config = factory
            .parse(
                &json!({"sampling_percentage": 30, "hash_seed": 22, "mode": "hash_seed"}),
                "processors.probabilistic_sampler",
            )
            .unwrap();
        let mut ctx = weir_api::BuildContext::for_component(
            weir_api::ComponentId::parse("probabilistic_sampler").unwrap(),
        );
        ctx.pipeline = Some("traces".into());
        let sink = std::sync::Arc::new(Sink::default());
        let stage = config.build(&ctx, Signal::Traces, sink.clone()).unwrap();
        (stage, sink)
    };
    // 400 spans with ids spread by a simple LCG: enough for both outcomes to occur often.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let spans: Vec<_> = (0..400)
        .map(|i| {
            let mut id = [0u8; 16];
            for chunk in id.chunks_mut(8) {
                x = x
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                chunk.copy_from_slice(&x.to_be_bytes());
            }
            span(&format!("s{i}"), id)
        })
        .collect();
    let out = wasm.run(spans_batch(spans.clone())).await;
    builtin.0.consume(spans_batch(spans)).await.unwrap();
    let expected = span_names(&builtin.1.take()[0]);
    let got = span_names(&out[0]);
    assert_eq!(got, expected);
    assert!(
        (60..=180).contains(&got.len()),
        "kept {} of 400 at 30%",
        got.len()
    );
}

#[tokio::test]
async fn a_module_is_reused_across_batches() {
    let h = harness(
        json!({"module": module("chaos"), "config": {"mode": "count"}}),
        Signal::Logs,
    );
    for n in 1..=3 {
        let out = h.run(logs_batch(vec![record("x", 9); n])).await;
        assert_eq!(out[0].item_count(), n);
    }
    let text = h.telemetry.encode();
    assert_eq!(
        metric_value(&text, "weir_wasm_instantiations_total", "module="),
        1,
        "{text}"
    );
    assert_eq!(
        metric_value(&text, "weir_processor_failures_total", "wasm/test"),
        0,
        "{text}"
    );
}
