//! The prefilter only narrows the policies tried: with and without it, every record gets
//! the same verdict and every policy the same hit/miss counts.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use weir_policy_contract::parse::parse_document;
use weir_policy_engine::evaluate::evaluate_logs;
use weir_policy_engine::set::PolicySet;
use weir_policy_engine::stats::StatsRegistry;

const WORDS: [&str; 8] = [
    "alpha", "beta", "Gamma", "delta", "ERROR", "health", "x", "",
];

fn s(v: &str) -> Option<AnyValue> {
    Some(AnyValue {
        value: Some(any_value::Value::StringValue(v.into())),
    })
}

fn doc() -> String {
    // Every anchor kind (exact, equals, starts/ends/contains, case-insensitive, regex), on
    // body, severity, record and resource attributes, with negations and second matchers.
    let mut d = String::from("policies:\n");
    let mut n = 0;
    for w in WORDS.iter().filter(|w| !w.is_empty()) {
        for (k, m) in [
            ("a", format!("{{log_field: body, contains: '{w}'}}")),
            ("b", format!("{{log_field: body, starts_with: '{w}'}}")),
            (
                "c",
                format!("{{log_field: body, ends_with: '{w}', case_insensitive: true}}"),
            ),
            ("d", format!("{{log_field: severity_text, exact: '{w}'}}")),
            ("e", format!("{{log_attribute: k, equals: '{w}'}}")),
            ("f", format!("{{resource_attribute: svc, regex: '^{w}'}}")),
            (
                "g",
                format!("{{log_field: body, contains: '{w}', negate: true}}"),
            ),
            (
                "h",
                format!(
                    "{{log_attribute: k, exists: true}}, {{log_field: body, regex: '(?i){w}$'}}"
                ),
            ),
        ] {
            let keep = ["none", "all", "50%", "3/m"][n % 4];
            d.push_str(&format!(
                "  - {{id: p{n:03}{k}, name: x, log: {{match: [{m}], keep: '{keep}', sample_key: {{log_attribute: k}}}}}}\n"
            ));
            n += 1;
        }
    }
    d
}

fn records() -> ExportLogsServiceRequest {
    let mut resource_logs = vec![];
    for (ri, svc) in WORDS.iter().enumerate() {
        let mut log_records = vec![];
        for (i, a) in WORDS.iter().enumerate() {
            for b in WORDS.iter() {
                log_records.push(LogRecord {
                    severity_text: WORDS[(i + ri) % WORDS.len()].into(),
                    body: s(&format!("{a} {b}")),
                    attributes: if i % 3 == 0 {
                        vec![]
                    } else {
                        vec![KeyValue {
                            key: "k".into(),
                            value: s(b),
                            ..Default::default()
                        }]
                    },
                    ..Default::default()
                });
            }
        }
        resource_logs.push(ResourceLogs {
            resource: Some(Resource {
                attributes: vec![KeyValue {
                    key: "svc".into(),
                    value: s(svc),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                log_records,
                ..Default::default()
            }],
            ..Default::default()
        });
    }
    ExportLogsServiceRequest { resource_logs }
}

#[test]
fn prefilter_changes_nothing_but_speed() {
    let parsed = parse_document(&doc(), "t").unwrap();
    let fast = PolicySet::build(parsed.clone(), &StatsRegistry::new());
    let slow = PolicySet::build_without_prefilter(parsed, &StatsRegistry::new());
    assert!(fast.entries.iter().all(|e| e.errors.is_empty()));
    let req = records();
    let now = std::time::Instant::now();
    let a = evaluate_logs(&fast, &req, now);
    let b = evaluate_logs(&slow, &req, now);
    assert_eq!(a.keep, b.keep);
    assert_eq!(a.transforms, b.transforms);
    assert!(a.dropped > 0 && a.dropped < a.keep.len());
    for (x, y) in fast.entries.iter().zip(&slow.entries) {
        assert_eq!(x.stats.counts(), y.stats.counts(), "{}", x.id);
    }
    let matched: u64 = fast.entries.iter().map(|e| e.stats.counts().0).sum();
    assert!(matched > 100, "too few matches to mean anything: {matched}");
}
