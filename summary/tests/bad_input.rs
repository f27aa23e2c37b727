//! Bad input is summarised like any other, without storing content and with bounded cost:
//! a 1 MB body, binary bodies, text that was invalid UTF-8 (as a lossy decoder hands it
//! on), control characters, deeply nested key-value lists, a body with thousands of keys.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use weir_api::fixtures::kv;
use weir_api::otlp::collector::logs::v1::ExportLogsServiceRequest;
use weir_api::otlp::common::v1::{any_value, AnyValue, ArrayValue, KeyValueList};
use weir_api::otlp::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use weir_api::otlp::resource::v1::Resource;
use weir_api::{Batch, Payload};
use weir_summary::{CatalogSummary, MetadataConfig, MetadataHandle};

fn string(v: &str) -> Option<AnyValue> {
    Some(AnyValue {
        value: Some(any_value::Value::StringValue(v.into())),
    })
}

fn summarise(records: Vec<LogRecord>) -> (CatalogSummary, String) {
    let batch = Batch::new(Payload::Logs(ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![kv("service.name", string("bad-input"))],
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }));
    let h = MetadataHandle::new(&MetadataConfig::default());
    h.observe(&batch);
    let s = h.take();
    let json = serde_json::to_string(&s).unwrap();
    (s, json)
}

/// Deterministic pseudo-random bytes.
fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn nested(depth: usize, leaf: &str) -> AnyValue {
    let mut v = AnyValue {
        value: Some(any_value::Value::StringValue(leaf.into())),
    };
    for i in 0..depth {
        v = AnyValue {
            value: Some(any_value::Value::KvlistValue(KeyValueList {
                values: vec![kv(&format!("level{}", i % 3), Some(v))],
            })),
        };
    }
    v
}

#[test]
fn a_one_megabyte_body_is_summarised_from_its_head_and_stored_nowhere() {
    // 1 MB of log-like text with a secret near the start, the middle and the end.
    let secret = "zorvakquixelSECRET";
    let mut body = format!("upload failed for {secret} ");
    while body.len() < 500_000 {
        body.push_str("chunk ok bytes 4096 retry 0 ");
    }
    body.push_str(&format!(" {secret} "));
    while body.len() < 1_048_576 {
        body.push_str("chunk ok bytes 4096 retry 0 ");
    }
    body.push_str(secret);
    let attr = "v".repeat(1_048_576);
    let (s, json) = summarise(vec![
        LogRecord {
            body: string(&body),
            attributes: vec![kv("payload", string(&attr))],
            ..Default::default()
        };
        3
    ]);
    let logs = &s.services["bad-input"].logs;
    assert_eq!(logs.volume.items, 3);
    assert!(logs.volume.bytes > 3 * 2 * 1_048_576);
    assert_eq!(logs.templates.len(), 1);
    let t = logs.templates.values().next().unwrap();
    assert_eq!(t.count, 3);
    assert!(
        t.template.len() < 4096,
        "{} bytes of template",
        t.template.len()
    );
    assert!(!json.to_lowercase().contains("zorvak"), "{json}");
    assert!(!json.contains("vvvvvvvv"));
    assert!(json.len() < 64 * 1024, "{} bytes of summary", json.len());
    let payload = &logs.attributes.item["payload"];
    assert_eq!((payload.types.string, payload.distinct.estimate()), (3, 1));
}

#[test]
fn binary_bodies_and_lossy_text_store_their_shape_only() {
    let raw = noise(4096, 7);
    let lossy = String::from_utf8_lossy(&noise(4096, 11)).into_owned();
    assert!(lossy.contains('\u{FFFD}'), "the noise is not valid UTF-8");
    let control: String = (0u8..32).map(char::from).collect::<String>() + "\u{7f}\u{202e}tail";
    let records = vec![
        LogRecord {
            body: Some(AnyValue {
                value: Some(any_value::Value::BytesValue(raw.clone())),
            }),
            attributes: vec![kv(
                "blob",
                Some(AnyValue {
                    value: Some(any_value::Value::BytesValue(raw.clone())),
                }),
            )],
            ..Default::default()
        },
        LogRecord {
            body: string(&lossy),
            ..Default::default()
        },
        LogRecord {
            body: string(&control),
            ..Default::default()
        },
    ];
    let (s, json) = summarise(records);
    let logs = &s.services["bad-input"].logs;
    assert_eq!(logs.volume.items, 3);
    let texts: Vec<&str> = logs
        .templates
        .values()
        .map(|t| t.template.as_str())
        .collect();
    assert!(texts.contains(&"{bytes}"), "{texts:?}");
    assert_eq!(logs.attributes.item["blob"].types.bytes, 1);
    // No run of 8 bytes of the binary input is anywhere in the summary.
    let hay = json.as_bytes();
    for w in raw.windows(8).step_by(64) {
        assert!(!hay.windows(8).any(|h| h == w));
    }
    // The lossy text's letters do not survive as a stored run either.
    let letters: String = lossy.chars().filter(|c| c.is_ascii_alphabetic()).collect();
    for w in letters.as_bytes().windows(6).step_by(16) {
        assert!(
            !json.contains(std::str::from_utf8(w).unwrap()),
            "{}",
            std::str::from_utf8(w).unwrap()
        );
    }
}

#[test]
fn deeply_nested_and_wide_kvlists_are_counted_not_stored() {
    let deep = nested(200, "deep-secret-leaf-value");
    let wide = AnyValue {
        value: Some(any_value::Value::KvlistValue(KeyValueList {
            values: (0..20_000)
                .map(|i| kv(&format!("k{i}"), string("wide-secret-value")))
                .collect(),
        })),
    };
    let array = AnyValue {
        value: Some(any_value::Value::ArrayValue(ArrayValue {
            values: vec![nested(50, "array-secret-leaf"); 10],
        })),
    };
    let records = vec![
        LogRecord {
            body: Some(deep.clone()),
            attributes: vec![kv("ctx", Some(deep.clone())), kv("list", Some(array))],
            ..Default::default()
        },
        LogRecord {
            body: Some(wide),
            ..Default::default()
        },
    ];
    let (s, json) = summarise(records);
    let logs = &s.services["bad-input"].logs;
    assert_eq!(logs.volume.items, 2);
    assert_eq!(logs.attributes.item["ctx"].types.kvlist, 1);
    assert_eq!(logs.attributes.item["list"].types.array, 1);
    for leaf in ["deep-secret", "wide-secret", "array-secret"] {
        assert!(!json.contains(leaf), "{leaf} stored");
    }
    for t in logs.templates.values() {
        assert!(t.template.len() < 4096, "{} bytes", t.template.len());
    }
    assert!(json.len() < 64 * 1024, "{} bytes of summary", json.len());
}
