//! The `policy` processor as the engine builds it: config parsing and validation, file
//! sources with hot reload, shadow mode, metrics, and fail-open behaviour.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use weir_api::{
    Batch, BuildContext, ComponentId, ConsumeError, Consumer, Payload, ProcessorFactory, Signal,
    Stage,
};
use weir_policy::processor::PolicyFactory;

#[derive(Default)]
struct Sink(Mutex<Vec<Batch>>);

#[async_trait]
impl Consumer for Sink {
    async fn consume(&self, batch: Batch) -> Result<(), ConsumeError> {
        self.0.lock().unwrap().push(batch);
        Ok(())
    }
}

impl Sink {
    fn bodies(&self) -> Vec<String> {
        let batches = self.0.lock().unwrap();
        let mut out = vec![];
        for b in batches.iter() {
            let Payload::Logs(r) = b.payload() else {
                panic!("not logs")
            };
            for rl in &r.resource_logs {
                for sl in &rl.scope_logs {
                    for rec in &sl.log_records {
                        if let Some(any_value::Value::StringValue(s)) =
                            rec.body.as_ref().and_then(|b| b.value.as_ref())
                        {
                            out.push(s.clone());
                        }
                    }
                }
            }
        }
        out
    }
}

fn logs(records: &[(&str, &str)]) -> Batch {
    Batch::new(Payload::Logs(ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: records
                    .iter()
                    .map(|(sev, body)| LogRecord {
                        severity_text: sev.to_string(),
                        body: Some(AnyValue {
                            value: Some(any_value::Value::StringValue(body.to_string())),
                        }),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }))
}

fn build(config: serde_json::Value, ctx: &BuildContext) -> (Arc<dyn Stage>, Arc<Sink>) {
    let cfg = PolicyFactory
        .parse(&config, "processors.policy")
        .unwrap_or_else(|e| panic!("{e}"));
    let sink = Arc::new(Sink::default());
    let stage = cfg.build(ctx, Signal::Logs, sink.clone()).unwrap();
    (stage, sink)
}

const DROP_DEBUG: &str = "id: drop-debug\nname: d\nlog:\n  match:\n    - {log_field: severity_text, exact: DEBUG}\n  keep: none\n";
const DROP_INFO: &str = "id: drop-info\nname: i\nlog:\n  match:\n    - {log_field: severity_text, exact: INFO}\n  keep: none\n";

#[test]
fn config_errors_name_their_path() {
    let err = PolicyFactory
        .parse(
            &serde_json::json!({"sources": [{"http": {"endpoint": "ftp://x"}}, {"file": {"path": ""}}]}),
            "processors.policy/edge",
        )
        .err()
        .unwrap();
    let text = err.to_string();
    assert!(
        text.contains("processors.policy/edge.sources[0].http.endpoint: endpoint \"ftp://x\" must start with http"),
        "{text}"
    );
    assert!(
        text.contains("processors.policy/edge.sources[1].file.path: path is required"),
        "{text}"
    );
    let err = PolicyFactory
        .parse(
            &serde_json::json!({"sources": [], "shadw": true}),
            "processors.policy",
        )
        .err()
        .unwrap();
    assert!(err.to_string().contains("unknown field `shadw`"), "{err}");
}

#[tokio::test]
async fn directory_source_reloads_on_change_without_restart() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.yaml"), DROP_DEBUG).unwrap();
    let ctx = BuildContext::for_component(ComponentId::parse("policy").unwrap());
    let (stage, sink) = build(
        serde_json::json!({"sources": [{"file": {"path": dir.path(), "poll_interval": "50ms"}}]}),
        &ctx,
    );
    stage.start().await.unwrap();
    stage
        .consume(logs(&[("DEBUG", "d1"), ("INFO", "i1")]))
        .await
        .unwrap();
    assert_eq!(sink.bodies(), ["i1"]);

    std::fs::write(dir.path().join("b.yaml"), DROP_INFO).unwrap();
    // The poller picks the new file up within a few intervals.
    let mut reloaded = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        sink.0.lock().unwrap().clear();
        stage.consume(logs(&[("INFO", "probe")])).await.unwrap();
        if sink.bodies().is_empty() {
            reloaded = true;
            break;
        }
    }
    assert!(reloaded, "new policy file was not picked up");

    // A half-written (invalid) document keeps the policies in force.
    std::fs::write(dir.path().join("b.yaml"), "id: [unclosed").unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    sink.0.lock().unwrap().clear();
    stage
        .consume(logs(&[("INFO", "i2"), ("DEBUG", "d2"), ("WARN", "w2")]))
        .await
        .unwrap();
    assert_eq!(sink.bodies(), ["w2"]);
    stage.shutdown().await;
}

#[tokio::test]
async fn shadow_mode_counts_and_drops_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.yaml"), DROP_DEBUG).unwrap();
    let ctx = BuildContext::for_component(ComponentId::parse("policy/shadow").unwrap());
    let (stage, sink) = build(
        serde_json::json!({"sources": [{"file": {"path": dir.path(), "watch": false}}], "shadow": true}),
        &ctx,
    );
    stage
        .consume(logs(&[("DEBUG", "d1"), ("DEBUG", "d2"), ("INFO", "i1")]))
        .await
        .unwrap();
    assert_eq!(sink.bodies(), ["d1", "d2", "i1"]);
    let metrics = ctx.telemetry.encode();
    assert!(
        metrics.contains("weir_policy_shadow_dropped_items_total{processor=\"policy/shadow\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("weir_policy_hits_total{policy_id=\"drop-debug\"} 2"),
        "{metrics}"
    );
}

#[tokio::test]
async fn shadow_label_puts_one_policy_in_shadow() {
    let dir = tempfile::tempdir().unwrap();
    let shadowed = "id: try-drop-info\nname: s\nlabels: {weir.shadow: \"true\"}\nlog:\n  match:\n    - {log_field: severity_text, exact: INFO}\n  keep: none\n";
    std::fs::write(dir.path().join("a.yaml"), DROP_DEBUG).unwrap();
    std::fs::write(dir.path().join("b.yaml"), shadowed).unwrap();
    let ctx = BuildContext::for_component(ComponentId::parse("policy").unwrap());
    let (stage, sink) = build(
        serde_json::json!({"sources": [{"file": {"path": dir.path(), "watch": false}}]}),
        &ctx,
    );
    stage
        .consume(logs(&[("DEBUG", "d1"), ("INFO", "i1"), ("INFO", "i2")]))
        .await
        .unwrap();
    assert_eq!(sink.bodies(), ["i1", "i2"]);
    let metrics = ctx.telemetry.encode();
    assert!(
        metrics.contains("weir_policy_shadow_drops_total{policy_id=\"try-drop-info\"} 2"),
        "{metrics}"
    );
}

#[tokio::test]
async fn invalid_policies_never_lose_data() {
    let dir = tempfile::tempdir().unwrap();
    // Every kind of broken policy, including ones that would drop everything if they ran.
    let broken = r#"policies:
  - {id: a, name: a, log: {match: [{log_field: body, regex: "(("}], keep: none}}
  - {id: b, name: b, log: {match: [{log_field: body, exists: true}], keep: "drop-it"}}
  - {id: c, name: c, log: {match: [], keep: none}}
  - {id: d, name: d, log: {match: [{log_field: body, exists: true}], keep: none, transform: {rename: [{from_log_attribute: x, to: ""}]}}}
  - {id: e, name: e, trace: {match: [{span_kind: SERVER}], keep: {percentage: 500}}}
"#;
    std::fs::write(dir.path().join("broken.yaml"), broken).unwrap();
    let ctx = BuildContext::for_component(ComponentId::parse("policy").unwrap());
    let (stage, sink) = build(
        serde_json::json!({"sources": [{"file": {"path": dir.path(), "watch": false}}]}),
        &ctx,
    );
    let input = logs(&[("DEBUG", "d1"), ("INFO", "i1")]);
    let bytes = input.to_protobuf();
    stage.consume(input).await.unwrap();
    assert_eq!(sink.bodies(), ["d1", "i1"]);
    // Untouched batches pass on exactly as they came.
    assert_eq!(sink.0.lock().unwrap()[0].to_protobuf(), bytes);
    let metrics = ctx.telemetry.encode();
    assert!(
        metrics.contains("weir_policy_invalid{processor=\"policy\"} 5"),
        "{metrics}"
    );
    assert!(
        metrics.contains("weir_policy_errors{policy_id=\"a\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn one_processor_id_shares_its_sources_across_pipelines() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.yaml"), DROP_DEBUG).unwrap();
    let cfg = PolicyFactory
        .parse(
            &serde_json::json!({"sources": [{"file": {"path": dir.path(), "watch": false}}]}),
            "processors.policy",
        )
        .unwrap();
    let ctx = BuildContext::for_component(ComponentId::parse("policy").unwrap());
    let a = Arc::new(Sink::default());
    let b = Arc::new(Sink::default());
    let s1 = cfg.build(&ctx, Signal::Logs, a.clone()).unwrap();
    let s2 = cfg.build(&ctx, Signal::Logs, b.clone()).unwrap();
    s1.consume(logs(&[("DEBUG", "x")])).await.unwrap();
    s2.consume(logs(&[("DEBUG", "y")])).await.unwrap();
    let metrics = ctx.telemetry.encode();
    assert!(
        metrics.contains("weir_policy_hits_total{policy_id=\"drop-debug\"} 2"),
        "{metrics}"
    );
}
