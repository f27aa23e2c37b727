//! Nothing a summary holds may contain a log body, an attribute value or a metric value:
//! secrets, e-mails, card numbers and tokens planted in telemetry must not appear in any
//! serialised byte of the summaries.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use weir_api::fixtures::kv;
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
use weir_metadata::MetadataProcessor;
use weir_summary::{MetadataConfig, MetadataHandle};

fn fixed_key() -> weir_summary::SketchKey {
    weir_summary::SketchKey::from_bytes(*b"privacy-test-key")
}

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
    // A fixed key: the summary holds keyed hashes as decimal numbers, and a random key
    // would now and then spell a short planted number such as "5500" among their digits.
    handle.set_key(fixed_key());
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

/// Secret values of every class the structure rule is built for; each appears in log
/// bodies (repeated with other parts varying, so templates are proven structure), span
/// names, metric names and units, and attribute keys.
const CLASSES: &[(&str, &[&str])] = &[
    ("e-mail in a token", &["alice.w@corp-mail.com"]),
    ("e-mail in JSON", &["bob.k@corp-mail.com"]),
    (
        "mailto and to:",
        &["carol.z@corp-mail.com", "dave.q@corp-mail.com"],
    ),
    (
        "e-mail in a URL path",
        &["erin.m@corp-mail.com", "frank.p@corp-mail.com"],
    ),
    (
        "name and diagnosis in free text",
        &["Jane Doe", "hypertension"],
    ),
    ("passphrase in free text", &["correcthorsebatterystaple"]),
    ("SQL literals", &["Tr0ub4dor&3", "Zelda Quint"]),
    ("cloud access key", &["AKIAZQ3DRSTUVWXYZ7AB"]),
    (
        "piece of a secret key",
        &["wJalrXUtnFEMI", "bPxRfiCYEXAMPLEKEY"],
    ),
    ("user name in an auth template", &["fztu", "qwopbanner"]),
    ("IP addresses", &["10.201.3.77", "2001:db8::9:4"]),
    ("phone numbers", &["555 010-7788", "7946 0958"]),
    (
        "IBAN",
        &["DE89370400440532013000", "GB82WEST12345698765432"],
    ),
    (
        "vendor API keys",
        &[
            "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
            "ghp_RxKqLmNvBtYwZcDfGhJkPsQaUeiOtrVb",
            "xoxb-123456789012-AbCdEfGhIjKlMnOp",
            "AIzaSyD4xK9mPq2RvT6wY8zB1nC3eF5gH7jL0oQ",
        ],
    ),
    (
        "private key",
        &["MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0t"],
    ),
    ("secrets in JSON", &["qUxvhTzLmWpRkS", "zzTopSecretValue"]),
    ("secrets in URLs", &["XXXXqzvkpathZZZZ", "abcSECRETdef"]),
    ("names in attribute keys", &["janedoe", "vexilmoor"]),
    ("person name in free text", &["Okonkwo"]),
];

fn class_bodies(n: usize) -> Vec<String> {
    vec![
        format!("user signup email:alice.w@corp-mail.com from web request {n}"),
        format!(r#"{{"event":"signup","email":"bob.k@corp-mail.com","n":{n}}}"#),
        format!("send mailto:carol.z@corp-mail.com to:dave.q@corp-mail.com attempt {n}"),
        format!("\"GET /users/erin.m@corp-mail.com/cards/{n} HTTP/1.1\" 200"),
        format!("fetch https://api.shop.example/users/frank.p@corp-mail.com/orders?page={n}"),
        format!("patient Jane Doe diagnosed with hypertension passphrase correcthorsebatterystaple visit {n}"),
        format!("SELECT * FROM users WHERE name = 'Zelda Quint' AND pw = 'Tr0ub4dor&3' LIMIT {n}"),
        format!("aws key AKIAZQ3DRSTUVWXYZ7AB secret wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY req {n}"),
        format!("Accepted password for fztu from 10.201.3.{} port {n} ssh2", n % 200),
        format!("session opened for user qwopbanner by (uid={n})"),
        format!("peer 10.201.3.77 and 2001:db8::9:4 retry {n}"),
        format!("call +1 (555) 010-7788 or +44 20 7946 0958 ticket {n}"),
        format!("iban DE89370400440532013000 and GB82 WEST 1234 5698 7654 32 payment {n}"),
        format!("keys sk_live_4eC39HqLyjWDarjtT1zdp7dc ghp_RxKqLmNvBtYwZcDfGhJkPsQaUeiOtrVb job {n}"),
        format!("slack xoxb-123456789012-AbCdEfGhIjKlMnOp maps AIzaSyD4xK9mPq2RvT6wY8zB1nC3eF5gH7jL0oQ n={n}"),
        format!("-----BEGIN RSA PRIVATE KEY----- MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0t -----END RSA PRIVATE KEY----- {n}"),
        format!(r#"config {{"api_secret":"qUxvhTzLmWpRkS","token":"zzTopSecretValue","n":{n}}}"#),
        format!("hook https://hooks.example.com/services/XXXXqzvkpathZZZZ?token=abcSECRETdef&n={n}"),
        format!("message from Mallory Okonkwo: see you at noon {n}"),
    ]
}

fn traffic() -> Vec<Batch> {
    let resource = Some(Resource {
        attributes: vec![kv("service.name", "privacy"), kv("owner.vexilmoor", "x")],
        ..Default::default()
    });
    let key_attrs = vec![
        kv("customer_janedoe_score", "1"),
        kv("prefs.alice.w@corp-mail.com", "1"),
        kv("AKIAZQ3DRSTUVWXYZ7AB", "1"),
        kv("user.id", "42"),
    ];
    let mut batches = Vec::new();
    for n in 0..100 {
        let records = class_bodies(n)
            .into_iter()
            .map(|b| LogRecord {
                body: s(&b),
                attributes: key_attrs.clone(),
                ..Default::default()
            })
            .collect();
        batches.push(Batch::new(Payload::Logs(ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: resource.clone(),
                scope_logs: vec![ScopeLogs {
                    log_records: records,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        })));
    }
    let span = |name: &str| Span {
        name: name.to_string(),
        span_id: vec![1; 8],
        attributes: key_attrs.clone(),
        ..Default::default()
    };
    batches.push(Batch::new(Payload::Traces(ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource.clone(),
            scope_spans: vec![ScopeSpans {
                spans: vec![
                    span("SELECT * FROM users WHERE name = 'Zelda Quint' AND pw = 'Tr0ub4dor&3'"),
                    span("GET /users/erin.m@corp-mail.com/cards"),
                    span("notify Jane Doe fztu"),
                    span("sign AKIAZQ3DRSTUVWXYZ7AB"),
                ],
                ..Default::default()
            }],
            ..Default::default()
        }],
    })));
    let metric = |name: &str, unit: &str| Metric {
        name: name.to_string(),
        unit: unit.to_string(),
        data: Some(metric::Data::Gauge(Gauge {
            data_points: vec![NumberDataPoint {
                attributes: key_attrs.clone(),
                value: Some(number_data_point::Value::AsInt(7)),
                ..Default::default()
            }],
        })),
        ..Default::default()
    };
    batches.push(Batch::new(Payload::Metrics(ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource,
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![
                    metric("orders.by.bob.k@corp-mail.com", "{order}"),
                    metric("visits.janedoe.count", "carol.z@corp-mail.com"),
                    metric("http.server.request.duration", "ms"),
                ],
                ..Default::default()
            }],
            ..Default::default()
        }],
    })));
    batches
}

/// The secret and every 6-character piece of it (the whole of a shorter one).
fn pieces(secret: &str) -> Vec<String> {
    let c: Vec<char> = secret.chars().collect();
    if c.len() <= 6 {
        return vec![secret.to_string()];
    }
    c.windows(6).map(|w| w.iter().collect()).collect()
}

#[test]
fn no_planted_secret_of_any_class_reaches_templates_names_units_or_keys() {
    let handle = MetadataHandle::new(&MetadataConfig::default());
    handle.set_key(fixed_key());
    for b in traffic() {
        handle.observe(&b);
    }
    let summary = handle.take();
    let svc = &summary.services["privacy"];
    assert_eq!(svc.logs.volume.items, 100 * class_bodies(0).len() as u64);
    // Every text the summary holds (keys and string values; numbers are counts, sketch
    // registers and keyed hashes, random digits that a short digit piece would match by
    // chance; the test above searches them for planted numbers).
    fn texts(v: &serde_json::Value, out: &mut String) {
        match v {
            serde_json::Value::String(s) => {
                out.push_str(s);
                out.push('\n');
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| texts(x, out)),
            serde_json::Value::Object(o) => o.iter().for_each(|(k, x)| {
                out.push_str(k);
                out.push('\n');
                texts(x, out);
            }),
            _ => {}
        }
    }
    let mut stored = String::new();
    texts(&serde_json::to_value(&summary).unwrap(), &mut stored);
    for (class, secrets) in CLASSES {
        for secret in *secrets {
            for piece in pieces(secret) {
                assert!(
                    !stored.contains(&piece),
                    "{class}: {piece:?} of {secret:?} stored:\n{}",
                    serde_json::to_string_pretty(&svc).unwrap()
                );
            }
        }
    }
    // Structure stays: what the catalog needs to group and name things.
    let templates: Vec<&str> = svc
        .logs
        .templates
        .values()
        .map(|t| t.template.as_str())
        .collect();
    assert!(
        templates.contains(&"Accepted password for <*> from <*> port <*>"),
        "{templates:#?}"
    );
    assert!(svc
        .metrics
        .metrics
        .contains_key("http.server.request.duration"));
    assert_eq!(
        svc.metrics.metrics["http.server.request.duration"].unit,
        "ms"
    );
    assert!(svc.logs.attributes.item.contains_key("user.id"));
    assert!(svc.logs.attributes.item.contains_key("customer_<*>_score"));
}
