//! Nothing a summary holds may contain a log body, an attribute value or a metric value:
//! secrets, e-mails, card numbers and tokens planted in telemetry must not appear in any
//! serialised byte of the summaries.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use weir_api::otlp::collector::logs::v1::ExportLogsServiceRequest;
use weir_api::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use weir_api::otlp::collector::trace::v1::ExportTraceServiceRequest;
use weir_api::otlp::common::v1::{any_value, AnyValue, ArrayValue, KeyValue, KeyValueList};
use weir_api::otlp::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use weir_api::otlp::metrics::v1::{
    metric, number_data_point, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics,
};
use weir_api::otlp::resource::v1::Resource;
use weir_api::otlp::trace::v1::{ResourceSpans, ScopeSpans, Span};
use weir_api::{Batch, Payload, Processor};
use weir_metadata::processor::MetadataProcessor;
use weir_metadata::{MetadataConfig, MetadataHandle};

const JWT: &str =
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJwbGFudGVkIn0.c2lnbmF0dXJlcGxhbnRlZA";

/// Strings planted in bodies and attribute values; none may be stored.
const PLANTED: &[&str] = &[
    "hunter2planted",
    "lettersonlyplanted",
    "alice.planted@example.com",
    "bob_planted@corp.example.org",
    "4111 1111 1111 1111",
    "4111111111111111",
    "5500-0000-0000-0004",
    "5500",
    JWT,
    "eyJzdWIiOiJwbGFudGVkIn0",
    "sk_live_PLANTEDabc123",
    "PLANTEDabc123",
    "Zm9vYmFyc2VjcmV0",
    "s3cr3t-cookie-planted",
    "192.168.77.123",
    "10.9.8.7",
    "2001:db8::7:1",
    "planted-attr-value",
    "PlantedAttrValue",
    "314159.2653",
    "+1-555-0100-7788",
    "deadbeefcafe0042",
    "77c8e8b4-1f2e-4c41-9a7c-1b2c3d4e5f60",
];

fn s(v: &str) -> Option<AnyValue> {
    Some(AnyValue {
        value: Some(any_value::Value::StringValue(v.to_string())),
    })
}

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.to_string(),
        value: s(v),
        ..Default::default()
    }
}

fn secret_attrs() -> Vec<KeyValue> {
    vec![
        kv("user.email", "alice.planted@example.com"),
        kv("card", "4111 1111 1111 1111"),
        kv("auth", JWT),
        kv("note", "planted-attr-value"),
        kv("label", "PlantedAttrValue"),
        kv("client.address", "192.168.77.123"),
        KeyValue {
            key: "nested".to_string(),
            value: Some(AnyValue {
                value: Some(any_value::Value::KvlistValue(KeyValueList {
                    values: vec![kv("password", "hunter2planted")],
                })),
            }),
            ..Default::default()
        },
        KeyValue {
            key: "list".to_string(),
            value: Some(AnyValue {
                value: Some(any_value::Value::ArrayValue(ArrayValue {
                    values: vec![s("sk_live_PLANTEDabc123").unwrap()],
                })),
            }),
            ..Default::default()
        },
    ]
}

fn bodies() -> Vec<&'static str> {
    vec![
        "login failed password=hunter2planted for alice.planted@example.com",
        "charging card 4111 1111 1111 1111 amount 314159.2653",
        "charging card 5500-0000-0000-0004 ok",
        "card=4111111111111111 declined",
        "Authorization: Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJwbGFudGVkIn0.c2lnbmF0dXJlcGxhbnRlZA",
        "jwt eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJwbGFudGVkIn0.c2lnbmF0dXJlcGxhbnRlZA accepted",
        "using api_key=sk_live_PLANTEDabc123 for upstream",
        "token: Zm9vYmFyc2VjcmV0 refreshed",
        "set-cookie session=s3cr3t-cookie-planted; path=/",
        "connection from 192.168.77.123:5522 and 10.9.8.7 via 2001:db8::7:1",
        "mail to <bob_planted@corp.example.org> bounced",
        "GET https://shop.example.com/cart?user=alice.planted@example.com&token=PLANTEDabc123 200",
        "call +1-555-0100-7788 for object deadbeefcafe0042 request 77c8e8b4-1f2e-4c41-9a7c-1b2c3d4e5f60",
        "{\"password\": \"hunter2planted\"}",
        "{\"password\": \"lettersonlyplanted\", \"user\": \"x\"}",
    ]
}

#[test]
fn planted_secrets_never_reach_a_summary() {
    let handle = std::sync::Arc::new(MetadataHandle::new(&MetadataConfig::default()));
    let processor = MetadataProcessor::new(handle.clone());
    let resource = Some(Resource {
        attributes: [vec![kv("service.name", "payments")], secret_attrs()].concat(),
        ..Default::default()
    });
    let records: Vec<LogRecord> = bodies()
        .into_iter()
        .map(|b| LogRecord {
            body: s(b),
            severity_text: "INFO".to_string(),
            attributes: secret_attrs(),
            ..Default::default()
        })
        .collect();
    // Repeat so templates generalise as they would in production.
    let mut batches = Vec::new();
    for _ in 0..3 {
        batches.push(Batch::new(Payload::Logs(ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: resource.clone(),
                scope_logs: vec![ScopeLogs {
                    log_records: records.clone(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
        })));
    }
    batches.push(Batch::new(Payload::Traces(ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource.clone(),
            scope_spans: vec![ScopeSpans {
                spans: vec![Span {
                    name: "POST /cards/4111111111111111/charge".to_string(),
                    span_id: vec![1; 8],
                    attributes: secret_attrs(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    })));
    batches.push(Batch::new(Payload::Metrics(ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource,
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: "charge.amount".to_string(),
                    data: Some(metric::Data::Gauge(Gauge {
                        data_points: vec![NumberDataPoint {
                            attributes: secret_attrs(),
                            value: Some(number_data_point::Value::AsDouble(314159.2653)),
                            ..Default::default()
                        }],
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    })));

    for mut b in batches {
        let before = b.payload().clone();
        processor.process(&mut b).unwrap();
        assert_eq!(
            b.payload(),
            &before,
            "the processor must not change the batch"
        );
    }
    let summary = handle.take();
    let svc = &summary.services["payments"];
    assert_eq!(svc.logs.volume.items, 3 * bodies().len() as u64);
    assert_eq!(svc.traces.volume.items, 1);
    assert_eq!(
        svc.traces.spans.keys().collect::<Vec<_>>(),
        vec!["POST /cards/<*>/charge"]
    );
    assert_eq!(svc.metrics.volume.items, 1);

    let stored = serde_json::to_string(&summary).unwrap();
    let debug = format!("{summary:?}");
    for planted in PLANTED {
        assert!(
            !stored.contains(planted),
            "planted {planted:?} found in the serialised summary"
        );
        assert!(
            !debug.contains(planted),
            "planted {planted:?} in Debug output"
        );
    }
    // The planted digits cannot survive masking in any template.
    for t in svc.logs.templates.values() {
        assert!(
            !t.template.bytes().any(|b| b.is_ascii_digit()),
            "digit kept in template {:?}",
            t.template
        );
    }
}
