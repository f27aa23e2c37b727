//! The catalog stores metadata only: secrets, e-mails, card numbers and metric values
//! planted in real batches never reach the SQLite file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use weir_api::fixtures::kv;
use weir_api::otlp::collector::logs::v1::ExportLogsServiceRequest;
use weir_api::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use weir_api::otlp::collector::trace::v1::ExportTraceServiceRequest;
use weir_api::otlp::common::v1::{any_value, AnyValue};
use weir_api::otlp::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use weir_api::otlp::metrics::v1::{
    metric, number_data_point, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics,
};
use weir_api::otlp::resource::v1::Resource;
use weir_api::otlp::trace::v1::{ResourceSpans, ScopeSpans, Span};
use weir_api::{Batch, BuildContext, ComponentId, ExporterFactory, Payload};
use weir_catalog::component::CatalogExporterFactory;
use weir_catalog::control::ControlPlane;

const SECRETS: &[&str] = &[
    "hunter2-Sup3rS3cret",
    "alice.smith@example.com",
    "4111111111111111",
    "4111 1111 1111 1111",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlMTIz",
    "AKIAIOSFODNN7EXAMPLE",
    "9f8e7d6c-5b4a-3928-1706-f5e4d3c2b1a0",
    "203.0.113.77",
];
const METRIC_VALUE: f64 = 98_765.432_1;

fn sv(v: &str) -> Option<AnyValue> {
    Some(AnyValue {
        value: Some(any_value::Value::StringValue(v.into())),
    })
}
fn resource() -> Option<Resource> {
    Some(Resource {
        attributes: vec![kv("service.name", "billing")],
        ..Default::default()
    })
}

fn batches() -> Vec<Batch> {
    let mut records = Vec::new();
    for (i, s) in SECRETS.iter().enumerate() {
        for j in 0..20 {
            records.push(LogRecord {
                time_unix_nano: 1_700_000_000_000_000_000 + (i * 20 + j) as u64,
                severity_number: 9,
                body: sv(&format!(
                    "user login password={s} card {s} from {s} attempt {j}"
                )),
                attributes: vec![kv("user.email", s), kv("session", format!("{s}-{j}"))],
                ..Default::default()
            });
        }
    }
    let logs = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource(),
            scope_logs: vec![ScopeLogs {
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let spans = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource(),
            scope_spans: vec![ScopeSpans {
                spans: SECRETS
                    .iter()
                    .map(|s| Span {
                        name: "charge".into(),
                        trace_id: vec![7; 16],
                        span_id: vec![1; 8],
                        attributes: vec![kv("card.number", s)],
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let metrics = ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource(),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: "balance".into(),
                    data: Some(metric::Data::Gauge(Gauge {
                        data_points: vec![NumberDataPoint {
                            value: Some(number_data_point::Value::AsDouble(METRIC_VALUE)),
                            attributes: vec![kv("account", SECRETS[2])],
                            ..Default::default()
                        }],
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    vec![
        Batch::new(Payload::Logs(logs)),
        Batch::new(Payload::Traces(spans)),
        Batch::new(Payload::Metrics(metrics)),
    ]
}

#[tokio::test]
async fn no_planted_secret_reaches_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("catalog.db");
    let cfg = serde_json::json!({"storage": db.display().to_string(), "flush_interval": "1h"});
    let parsed = CatalogExporterFactory
        .parse(&cfg, "exporters.catalog")
        .unwrap();
    let exporter = parsed
        .build(&BuildContext::for_component(
            ComponentId::parse("catalog").unwrap(),
        ))
        .unwrap();
    exporter.start().await.unwrap();
    for b in batches() {
        exporter.consume(b).await.unwrap();
    }
    exporter.shutdown().await; // flushes
    drop(exporter);

    // The catalog did learn something: the service, its template, its keys.
    let control = ControlPlane::open(&db).unwrap();
    let svc = control.service("billing").unwrap();
    assert_eq!(svc.logs.volume.items, (SECRETS.len() * 20) as u64);
    assert!(svc.logs.attributes.item.contains_key("user.email"));
    assert!(svc.traces.spans.contains_key("charge"));
    assert!(svc.metrics.metrics.contains_key("balance"));
    let key = control.store().key().clone();
    drop(control);

    // Every file's bytes, and the database and its -wal decrypted page by page with the
    // key (the files are encrypted: the raw bytes alone would prove nothing).
    let mut stored = Vec::new();
    let mut raw = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        raw.extend(std::fs::read(&path).unwrap());
        let name = path.display().to_string();
        if name.ends_with(".db") || name.ends_with(".db-wal") {
            stored.extend(weir_catalog::at_rest::decrypt_file_pages(&path, &key).unwrap());
        }
    }
    assert!(
        !String::from_utf8_lossy(&raw).contains("user login password="),
        "the store is readable without its key"
    );
    stored.extend(raw);
    assert!(stored.len() > 4096);
    let find = |needle: &[u8]| stored.windows(needle.len()).any(|w| w == needle);
    for s in SECRETS {
        assert!(!find(s.as_bytes()), "{s:?} found in the catalog store");
    }
    for v in [
        METRIC_VALUE.to_string().as_bytes(),
        &METRIC_VALUE.to_le_bytes(),
        &METRIC_VALUE.to_be_bytes(),
    ] {
        assert!(!find(v), "the metric value was stored");
    }
    // And what the catalog keeps is what we expect: the masked template.
    let text = String::from_utf8_lossy(&stored);
    assert!(
        text.contains("user login password="),
        "template text missing"
    );
}
