//! `include_processors`: the `catalog` exporter takes the summaries of the `metadata`
//! processors built in the same service build (through the build's `weir_api::Shared`),
//! and nothing from another build, even under the same processor id.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use async_trait::async_trait;
use weir_api::fixtures::kv;
use weir_api::otlp::collector::logs::v1::ExportLogsServiceRequest;
use weir_api::otlp::common::v1::{any_value, AnyValue};
use weir_api::otlp::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use weir_api::otlp::resource::v1::Resource;
use weir_api::{
    Batch, BuildContext, ComponentId, ConsumeError, Consumer, ExporterFactory, Payload,
    ProcessorFactory, Shared, Signal, Stage,
};
use weir_catalog::component::CatalogExporterFactory;
use weir_catalog::control::ControlPlane;
use weir_metadata::MetadataFactory;

/// Where the processor's output goes: nowhere (only its summaries matter here).
struct Drop;

#[async_trait]
impl Consumer for Drop {
    async fn consume(&self, _batch: Batch) -> Result<(), ConsumeError> {
        Ok(())
    }
}

fn logs(service: &str, lines: usize) -> Batch {
    let records = (0..lines)
        .map(|i| LogRecord {
            body: Some(AnyValue {
                value: Some(any_value::Value::StringValue(format!(
                    "order {i} paid in 35 ms"
                ))),
            }),
            severity_number: 9,
            ..Default::default()
        })
        .collect();
    Batch::new(Payload::Logs(ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![kv("service.name", service)],
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }))
}

fn context(id: &str, shared: &Shared) -> BuildContext {
    let mut ctx = BuildContext::for_component(ComponentId::parse(id).unwrap());
    ctx.shared = shared.clone();
    ctx
}

fn metadata_processor(id: &str, shared: &Shared) -> Arc<dyn Stage> {
    MetadataFactory
        .parse(&serde_json::Value::Null, &format!("processors.{id}"))
        .unwrap()
        .build(&context(id, shared), Signal::Logs, Arc::new(Drop))
        .unwrap()
}

fn catalog_exporter(db: &std::path::Path, include: &[&str], shared: &Shared) -> Arc<dyn Stage> {
    let cfg = serde_json::json!({
        "storage": db.display().to_string(),
        "flush_interval": "1h",
        "include_processors": include,
    });
    CatalogExporterFactory
        .parse(&cfg, "exporters.catalog")
        .unwrap()
        .build(&context("catalog", shared))
        .unwrap()
}

#[tokio::test]
async fn the_exporter_takes_what_the_included_processors_of_its_build_gathered() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("catalog.db");
    let build = Shared::new();
    // As the engine builds them: exporters first, then the processors in front of them.
    let exporter = catalog_exporter(&db, &["metadata/edge"], &build);
    let edge = metadata_processor("metadata/edge", &build);
    let not_included = metadata_processor("metadata/other", &build);
    exporter.start().await.unwrap();
    edge.consume(logs("checkout", 7)).await.unwrap();
    not_included.consume(logs("billing", 3)).await.unwrap();
    exporter.shutdown().await; // flushes
    drop(exporter);

    let control = ControlPlane::open(&db).unwrap();
    let svc = control.service("checkout").unwrap();
    assert_eq!(svc.logs.volume.items, 7);
    assert_eq!(svc.logs.templates.len(), 1);
    // A processor the exporter does not list is not taken.
    assert!(control.service("billing").is_err());
}

#[tokio::test]
async fn another_build_with_the_same_processor_id_is_not_seen() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("catalog.db");
    let first = Shared::new();
    let second = Shared::new();
    let processor = metadata_processor("metadata", &first);
    let exporter = catalog_exporter(&db, &["metadata"], &second);
    exporter.start().await.unwrap();
    processor.consume(logs("checkout", 5)).await.unwrap();
    exporter.shutdown().await;
    drop(exporter);

    let control = ControlPlane::open(&db).unwrap();
    assert!(control.service("checkout").is_err());
    drop(control);
    // What the first build's processor gathered is still there for its own exporter.
    let handle = first
        .get::<weir_summary::MetadataHandle>("metadata")
        .expect("the processor put its handle in its build's shared state");
    assert_eq!(handle.take().services["checkout"].logs.volume.items, 5);
}
