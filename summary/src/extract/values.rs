//! Values and attributes as the summariser reads them, decoded or in place from their
//! encoding ([`crate::raw`]): their kind, keyed hash and size, and how attributes are
//! counted into an attribute schema under its key cap.

use std::collections::BTreeMap;
use std::hash::Hasher as _;

use prost::Message;
use weir_api::otlp::common::v1::{any_value::Value, AnyValue, KeyValue};

use super::evict_least_recent;
use crate::key::SketchKey;
use crate::summary::{AttributeSchema, ValueKind};

/// bytes of an encoded one ([`crate::raw`]). Both give the same kind, hash and size.
#[derive(Clone, Copy)]
pub(crate) enum ValueRef<'a> {
    /// No value set.
    Empty,
    Str(&'a str),
    Bool(bool),
    Int(i64),
    Double(f64),
    Bytes(&'a [u8]),
    /// An array or key-value list (or another member), summarised by its encoding.
    Nested(Nested<'a>),
}

/// A nested value: decoded, or the `AnyValue` field number and bytes of its member.
#[derive(Clone, Copy)]
pub(crate) enum Nested<'a> {
    Decoded(&'a Value),
    Encoded { field: u8, member: &'a [u8] },
}

impl<'a> ValueRef<'a> {
    pub(crate) fn of(v: Option<&'a AnyValue>) -> Self {
        match v.and_then(|v| v.value.as_ref()) {
            None => ValueRef::Empty,
            Some(Value::StringValue(s)) => ValueRef::Str(s),
            Some(Value::BoolValue(b)) => ValueRef::Bool(*b),
            Some(Value::IntValue(i)) => ValueRef::Int(*i),
            Some(Value::DoubleValue(d)) => ValueRef::Double(*d),
            Some(Value::BytesValue(b)) => ValueRef::Bytes(b),
            Some(other) => ValueRef::Nested(Nested::Decoded(other)),
        }
    }
}

impl Nested<'_> {
    /// 5: array, 6: key-value list, another number: a member the summariser does not read.
    pub(super) fn field(&self) -> u8 {
        match self {
            Nested::Decoded(Value::ArrayValue(_)) => 5,
            Nested::Decoded(Value::KvlistValue(_)) => 6,
            Nested::Decoded(_) => 0,
            Nested::Encoded { field, .. } => *field,
        }
    }

    /// The encoding of the `AnyValue` holding this member alone.
    fn any_value_encoding(&self) -> Vec<u8> {
        match self {
            Nested::Decoded(v) => AnyValue {
                value: Some((*v).clone()),
            }
            .encode_to_vec(),
            Nested::Encoded { field, member } => {
                let mut out = Vec::with_capacity(member.len() + 11);
                prost::encoding::encode_key(
                    u32::from(*field),
                    prost::encoding::WireType::LengthDelimited,
                    &mut out,
                );
                prost::encoding::encode_varint(member.len() as u64, &mut out);
                out.extend_from_slice(member);
                out
            }
        }
    }
}

/// The type of a scalar value and the tag and bytes its keyed hash is made of (`word`
/// holds them for numbers and booleans); `None` for a nested value.
#[inline]
pub(super) fn scalar<'a>(
    v: ValueRef<'a>,
    word: &'a mut [u8; 8],
) -> Option<(ValueKind, u8, &'a [u8])> {
    Some(match v {
        ValueRef::Empty => (ValueKind::Empty, 0, b""),
        ValueRef::Str(s) => (ValueKind::String, 1, s.as_bytes()),
        ValueRef::Bool(b) => {
            word[0] = u8::from(b);
            (ValueKind::Bool, 2, &word[..1])
        }
        ValueRef::Int(i) => {
            *word = i.to_le_bytes();
            (ValueKind::Int, 3, &word[..])
        }
        ValueRef::Double(d) => {
            *word = d.to_bits().to_le_bytes();
            (ValueKind::Double, 4, &word[..])
        }
        ValueRef::Bytes(b) => (ValueKind::Bytes, 5, b),
        ValueRef::Nested(_) => return None,
    })
}

/// Type, keyed hash and approximate encoded size of a value.
pub(crate) fn value_info(v: ValueRef<'_>, key: &SketchKey) -> (ValueKind, u64, u64) {
    let mut word = [0u8; 8];
    if let Some((kind, tag, bytes)) = scalar(v, &mut word) {
        let size = match v {
            ValueRef::Str(s) => s.len() as u64,
            ValueRef::Bytes(b) => b.len() as u64,
            ValueRef::Bool(_) => 1,
            ValueRef::Int(_) | ValueRef::Double(_) => 8,
            _ => 0,
        };
        return (kind, key.hash_tagged(tag, bytes), size);
    }
    let ValueRef::Nested(n) = v else {
        unreachable!("scalar() reads every value but a nested one")
    };
    let kind = match n.field() {
        5 => ValueKind::Array,
        _ => ValueKind::Kvlist,
    };
    // Rare: nested values are hashed by their encoding.
    let bytes = n.any_value_encoding();
    (kind, key.hash_tagged(6, &bytes), bytes.len() as u64)
}

/// An attribute as the summariser reads it: its key, its value and the encoded size of the
/// `KeyValue` message.
#[derive(Clone, Copy)]
pub(crate) struct AttrRef<'a> {
    pub(crate) key: &'a str,
    pub(crate) value: ValueRef<'a>,
    pub(crate) pair_len: usize,
}

impl<'a> AttrRef<'a> {
    pub(crate) fn of(kv: &'a KeyValue) -> Self {
        AttrRef {
            key: &kv.key,
            value: ValueRef::of(kv.value.as_ref()),
            pair_len: kv.encoded_len(),
        }
    }
}

/// Keyed hash of one key/value pair, for series identity.
pub(super) fn pair_hash(kv: &KeyValue, key: &SketchKey) -> u64 {
    let (_, vh, _) = value_info(ValueRef::of(kv.value.as_ref()), key);
    key.hash(kv.key.as_bytes()).rotate_left(17) ^ vh
}

/// Order-independent hash of a set of attributes (keys and values).
pub(super) fn attributes_hash(attrs: &[KeyValue], key: &SketchKey) -> u64 {
    attrs
        .iter()
        .fold(0u64, |acc, kv| acc.wrapping_add(pair_hash(kv, key)))
}

/// Counts attributes carried by `weight` items into `map`, keeping at most `cap` keys.
/// Returns an order-independent hash of the attributes (keys and values) for telling
/// exact repeats apart in memory: each value is hashed once, with the key, for both.
pub(super) fn observe_attributes<'a>(
    map: &mut BTreeMap<String, AttributeSchema>,
    attrs: impl IntoIterator<Item = AttrRef<'a>>,
    weight: u64,
    t: u64,
    cap: usize,
    evicted: &mut u64,
    key: &SketchKey,
) -> u64 {
    let mut set_hash = 0u64;
    for kv in attrs {
        let schema = match map.get_mut(kv.key) {
            Some(s) => s,
            None => {
                if map.len() >= cap {
                    evict_least_recent(map, |s| s.seen.last_unix_nano);
                    *evicted += 1;
                }
                map.entry(kv.key.to_string()).or_default()
            }
        };
        // The keyed hash and the sketch update, unless the schema's memo shows the sketch
        // holds this value's hash already (a byte compare; inserting twice changes nothing).
        let mut word = [0u8; 8];
        let (kind, h) = match scalar(kv.value, &mut word) {
            Some((kind, tag, bytes)) => match schema.memo.get(tag, bytes) {
                Some(h) => (kind, h),
                None => {
                    let h = key.hash_tagged(tag, bytes);
                    schema.distinct.insert_hash(h);
                    schema.memo.put(tag, bytes, h);
                    (kind, h)
                }
            },
            None => {
                let (kind, h, _) = value_info(kv.value, key);
                schema.distinct.insert_hash(h);
                (kind, h)
            }
        };
        schema.types.add(kind, weight);
        schema.items += weight;
        // What removing the attribute saves on the wire: the whole encoded key/value pair
        // with its field tag and length prefix.
        let pair = kv.pair_len;
        let encoded = (1 + prost::encoding::encoded_len_varint(pair as u64) + pair) as u64;
        schema.bytes += encoded * weight;
        schema.seen.observe(t);
        // In memory only (repeat detection): a fast hash of the key is enough.
        let mut kh = rustc_hash::FxHasher::default();
        kh.write(kv.key.as_bytes());
        set_hash = set_hash.wrapping_add(kh.finish().rotate_left(17) ^ h);
    }
    set_hash
}
