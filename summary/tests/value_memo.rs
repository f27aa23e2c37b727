//! Attribute schemas remember the last values they hashed, so a repeated value skips the keyed
//! hash and the sketch update. The distinct sketches must stay exactly those that hashing
//! every value gives, on both reading paths (decoded and in place), for every value type, for
//! values past the memo's size, and across takes and key changes (a new sketch must never
//! be thought to hold a value already); no remembered value may leave with a summary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use prost::Message;
use weir_api::otlp::collector::logs::v1::ExportLogsServiceRequest;
use weir_api::otlp::common::v1::{any_value::Value, AnyValue, KeyValue};
use weir_api::otlp::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use weir_api::otlp::resource::v1::Resource;
use weir_api::{Batch, Payload, Signal};
use weir_summary::sketch::DistinctSketch;
use weir_summary::{CatalogSummary, MetadataConfig, MetadataHandle, SketchKey};

fn any(v: Value) -> Option<AnyValue> {
    Some(AnyValue { value: Some(v) })
}

/// A long value (past what the memo holds), repeated.
const LONG: &str = "a value longer than thirty bytes, never remembered";

/// The values of attribute `v`, in order: repeats next to each other and apart, more distinct
/// values than the memo holds, one key with values of every scalar type.
fn values() -> Vec<Value> {
    let s = |x: &str| Value::StringValue(x.into());
    vec![
        s("alpha"),
        s("alpha"),
        s("beta"),
        s("alpha"),
        s("gamma"),
        s("beta"),
        s("delta"),
        s("alpha"),
        s(LONG),
        s(LONG),
        Value::IntValue(7),
        Value::IntValue(7),
        Value::IntValue(8),
        // The same eight bytes as the int 7, as a double: a different value.
        Value::DoubleValue(f64::from_bits(7)),
        Value::BoolValue(true),
        Value::BoolValue(true),
        Value::BoolValue(false),
        Value::BytesValue(b"alpha".to_vec()),
        Value::BytesValue(b"alpha".to_vec()),
        s(""),
        s(""),
    ]
}

/// The tag and bytes each value is hashed by (as `SketchKey::hash_tagged` documents).
fn tagged(v: &Value) -> (u8, Vec<u8>) {
    match v {
        Value::StringValue(s) => (1, s.as_bytes().to_vec()),
        Value::BoolValue(b) => (2, vec![u8::from(*b)]),
        Value::IntValue(i) => (3, i.to_le_bytes().to_vec()),
        Value::DoubleValue(d) => (4, d.to_bits().to_le_bytes().to_vec()),
        Value::BytesValue(b) => (5, b.clone()),
        _ => unreachable!("scalars only"),
    }
}

fn request(values: &[Value]) -> ExportLogsServiceRequest {
    let records = values
        .iter()
        .map(|v| LogRecord {
            time_unix_nano: 1_700_000_000_000_000_000,
            body: any(Value::StringValue("user signed up".into())),
            attributes: vec![KeyValue {
                key: "v".into(),
                value: any(v.clone()),
                ..Default::default()
            }],
            ..Default::default()
        })
        .collect();
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![KeyValue {
                    key: "service.name".into(),
                    value: any(Value::StringValue("signup".into())),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// The batch decoded in memory, and the same request read in place from its bytes.
fn batches(values: &[Value]) -> [Batch; 2] {
    let req = request(values);
    let bytes = Bytes::from(req.encode_to_vec());
    let encoded = Batch::decode(Signal::Logs, bytes).unwrap();
    assert!(!encoded.is_decoded());
    [Batch::new(Payload::Logs(req)), encoded]
}

/// The sketch of every value's keyed hash, inserted one by one.
fn expected(key: SketchKey, values: &[Value]) -> String {
    let mut d = DistinctSketch::new();
    for v in values {
        let (tag, bytes) = tagged(v);
        d.insert_hash(key.hash_tagged(tag, &bytes));
    }
    serde_json::to_string(&d).unwrap()
}

fn stored(s: &CatalogSummary) -> String {
    serde_json::to_string(&s.services["signup"].logs.attributes.item["v"].distinct).unwrap()
}

#[test]
fn repeated_values_give_the_sketch_of_every_value_hashed() {
    let values = values();
    for batch in batches(&values) {
        let key = SketchKey::random();
        let h = MetadataHandle::new(&MetadataConfig::default());
        h.set_key(key);
        h.observe(&batch);
        let s = h.take();
        assert_eq!(stored(&s), expected(key, &values));
        let schema = &s.services["signup"].logs.attributes.item["v"];
        // alpha beta gamma delta LONG 7 8 7.0 true false b"alpha" "": twelve.
        assert_eq!(schema.distinct.estimate(), 12);
        assert_eq!(schema.items, values.len() as u64);
        assert_eq!(schema.types.string, 12);
        assert_eq!(schema.types.int, 3);
        assert_eq!(schema.types.double, 1);
        assert_eq!(schema.types.bool, 3);
        assert_eq!(schema.types.bytes, 2);
        // No value the memo held leaves with the summary, in any form.
        let json = serde_json::to_string(&s).unwrap();
        let debug = format!("{s:?}");
        for secret in ["alpha", "gamma", "delta", LONG] {
            assert!(!json.contains(secret), "{secret} in {json}");
            assert!(!debug.contains(secret), "{secret} in {debug}");
        }
    }
}

#[test]
fn a_new_sketch_never_counts_on_values_of_the_previous_one() {
    let values = values();
    // The decoded batch first, then the same values read in place.
    let [first, second] = batches(&values);
    {
        // After a take the next window's sketch holds the repeated values again.
        let key = SketchKey::random();
        let h = MetadataHandle::new(&MetadataConfig::default());
        h.set_key(key);
        h.observe(&first);
        let one = h.take();
        h.observe(&second);
        let two = h.take();
        assert_eq!(stored(&one), expected(key, &values));
        assert_eq!(stored(&two), expected(key, &values));

        // After a key change every value is hashed under the new key.
        let other = SketchKey::random();
        h.observe(&first);
        let before = h.set_key(other);
        assert_eq!(stored(&before), expected(key, &values));
        h.observe(&second);
        let after = h.take();
        assert_eq!(after.sketch_key_id, other.id());
        assert_eq!(stored(&after), expected(other, &values));
    }
}
