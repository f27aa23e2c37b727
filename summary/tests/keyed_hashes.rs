//! Value hashes are keyed: a reader of a summary (or of the catalog built from it) who lacks
//! the deployment's sketch key cannot confirm a guessed value, while summaries made under one
//! key merge exactly and summaries of different keys never mix their hashes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use weir_api::fixtures::kv;
use weir_api::otlp::collector::logs::v1::ExportLogsServiceRequest;
use weir_api::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use weir_api::otlp::common::v1::{any_value, AnyValue};
use weir_api::otlp::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use weir_api::otlp::metrics::v1::{
    metric, number_data_point, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics,
};
use weir_api::otlp::resource::v1::Resource;
use weir_api::{Batch, Payload};
use weir_summary::sketch::{stable_hash, DistinctSketch};
use weir_summary::{CatalogSummary, MetadataConfig, MetadataHandle, SketchKey};

fn sv(v: &str) -> Option<AnyValue> {
    Some(AnyValue {
        value: Some(any_value::Value::StringValue(v.into())),
    })
}

fn resource() -> Option<Resource> {
    Some(Resource {
        attributes: vec![kv("service.name", "signup")],
        ..Default::default()
    })
}

/// Records whose `user.email` takes the given values.
fn logs(emails: &[String]) -> Batch {
    let records = emails
        .iter()
        .map(|e| LogRecord {
            time_unix_nano: 1_700_000_000_000_000_000,
            body: sv("user signed up"),
            attributes: vec![kv("user.email", e)],
            ..Default::default()
        })
        .collect();
    Batch::new(Payload::Logs(ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource(),
            scope_logs: vec![ScopeLogs {
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }))
}

/// A gauge whose points all carry `pin`.
fn gauge(pin: i64) -> Batch {
    let points = (0..5)
        .map(|i| NumberDataPoint {
            time_unix_nano: 1_700_000_000_000_000_000 + i,
            value: Some(number_data_point::Value::AsInt(pin)),
            ..Default::default()
        })
        .collect();
    Batch::new(Payload::Metrics(ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource(),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: "door.pin".into(),
                    data: Some(metric::Data::Gauge(Gauge {
                        data_points: points,
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }))
}

fn summary_of(key: SketchKey, batches: &[Batch]) -> CatalogSummary {
    let h = MetadataHandle::new(&MetadataConfig::default());
    h.set_key(key);
    for b in batches {
        h.observe(b);
    }
    h.take()
}

fn email_sketch(s: &CatalogSummary) -> &DistinctSketch {
    &s.services["signup"].logs.attributes.item["user.email"].distinct
}

/// What an attacker does to confirm a guess: build the sketch the guess would give and
/// compare it with the stored one, byte for byte.
fn sketch_of(hash: u64) -> String {
    let mut d = DistinctSketch::new();
    d.insert_hash(hash);
    serde_json::to_string(&d).unwrap()
}

#[test]
fn a_guess_is_confirmed_only_with_the_key() {
    let key = SketchKey::random();
    let s = summary_of(key, &[logs(&["alice@corp.com".to_string()])]);
    assert_eq!(s.sketch_key_id, key.id());
    let stored = serde_json::to_string(email_sketch(&s)).unwrap();
    // With the key the guess is confirmed: the test looks where the hash is.
    assert_eq!(stored, sketch_of(key.hash_tagged(1, b"alice@corp.com")));
    // Without it, no public or other hash matches.
    for guess in [
        stable_hash(b"alice@corp.com"),
        SketchKey::from_bytes([0; 16]).hash_tagged(1, b"alice@corp.com"),
        SketchKey::random().hash_tagged(1, b"alice@corp.com"),
    ] {
        assert_ne!(stored, sketch_of(guess));
    }
    // The summary never names the key itself.
    let json = serde_json::to_string(&s).unwrap();
    assert!(!json.contains(&key.to_hex()));
}

#[test]
fn a_small_metric_value_cannot_be_brute_forced_without_the_key() {
    let key = SketchKey::random();
    let s = summary_of(key, &[gauge(4711)]);
    let c = s.services["signup"].metrics.metrics["door.pin"].constant;
    assert!(c.is_constant());
    let stored = c.value_hash.unwrap();
    // Every 4-digit PIN under the public hash and under a wrong key: no match.
    let wrong = SketchKey::random();
    for pin in 0..10_000i64 {
        let mut tagged = vec![3u8];
        tagged.extend_from_slice(&pin.to_le_bytes());
        assert_ne!(stable_hash(&tagged), stored);
        assert_ne!(wrong.hash_tagged(3, &pin.to_le_bytes()), stored);
    }
    assert_eq!(key.hash_tagged(3, &4711i64.to_le_bytes()), stored);
}

#[test]
fn summaries_of_one_key_merge_exactly() {
    let key = SketchKey::random();
    let emails = |r: std::ops::Range<u32>| -> Vec<String> {
        r.map(|i| format!("user{i}@corp.com")).collect()
    };
    let mut a = summary_of(key, &[logs(&emails(0..60))]);
    let b = summary_of(key, &[logs(&emails(40..100))]);
    a.merge(&b);
    assert_eq!(a.sketch_key_id, key.id());
    assert_eq!(email_sketch(&a).estimate(), 100);
    let mut m = summary_of(key, &[gauge(7)]);
    m.merge(&summary_of(key, &[gauge(7)]));
    assert!(m.services["signup"].metrics.metrics["door.pin"]
        .constant
        .is_constant());
    let mut m2 = summary_of(key, &[gauge(7)]);
    m2.merge(&summary_of(key, &[gauge(8)]));
    assert!(!m2.services["signup"].metrics.metrics["door.pin"]
        .constant
        .is_constant());
}

#[test]
fn summaries_of_different_keys_never_mix_hashes() {
    let (k1, k2) = (SketchKey::random(), SketchKey::random());
    let emails: Vec<String> = (0..30).map(|i| format!("u{i}@corp.com")).collect();
    let mut a = summary_of(k1, &[logs(&emails), gauge(7)]);
    let b = summary_of(k2, &[logs(&emails), gauge(7)]);
    a.merge(&b);
    // The other key's hashes are dropped, not double counted; its counts are kept.
    assert_eq!(a.sketch_key_id, k1.id());
    assert_eq!(email_sketch(&a).estimate(), 30);
    assert_eq!(a.services["signup"].logs.volume.items, 60);
    let pin = &a.services["signup"].metrics.metrics["door.pin"];
    assert_eq!(pin.volume.items, 10);
    // Constancy cannot be shown across keys: not claimed.
    assert!(!pin.constant.is_constant());

    // A summary without hashes (forgotten) merges into anything.
    let mut c = summary_of(k2, &[logs(&emails)]);
    c.forget_value_hashes();
    assert!(c.sketch_key_id.is_empty());
    assert_eq!(email_sketch(&c).estimate(), 0);
    let mut d = summary_of(k1, &[logs(&emails)]);
    d.merge(&c);
    assert_eq!(d.sketch_key_id, k1.id());
    assert_eq!(email_sketch(&d).estimate(), 30);

    // Switching a handle's key hands back what was gathered under the old one.
    let h = MetadataHandle::new(&MetadataConfig::default());
    h.set_key(k1);
    h.observe(&logs(&emails));
    let before = h.set_key(k2);
    assert_eq!(before.sketch_key_id, k1.id());
    assert_eq!(email_sketch(&before).estimate(), 30);
    assert_eq!(h.key(), k2);
    h.observe(&logs(&emails[..5]));
    let after = h.take();
    assert_eq!(after.sketch_key_id, k2.id());
    assert_eq!(email_sketch(&after).estimate(), 5);
}
