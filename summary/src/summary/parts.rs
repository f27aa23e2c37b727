//! The parts every signal's section is made of: volumes (items and bytes), first/last
//! seen, value types, and attribute schemas with the memo of their last values.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::merge_map;
use crate::sketch::DistinctSketch;

/// Items and bytes (protobuf-encoded size of each item).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Volume {
    /// Log records, spans or data points.
    pub items: u64,
    /// Their encoded size in bytes.
    pub bytes: u64,
}

impl Volume {
    /// No items and no bytes.
    pub fn is_zero(&self) -> bool {
        self.items == 0 && self.bytes == 0
    }

    pub(super) fn merge(&mut self, o: &Volume) {
        self.items = self.items.saturating_add(o.items);
        self.bytes = self.bytes.saturating_add(o.bytes);
    }
}

/// First and last time something was seen, in Unix nanoseconds (0: never).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Seen {
    /// Earliest timestamp.
    pub first_unix_nano: u64,
    /// Latest timestamp.
    pub last_unix_nano: u64,
}

impl Seen {
    /// Widens to include `t` (0 is ignored).
    pub fn observe(&mut self, t: u64) {
        if t == 0 {
            return;
        }
        if self.first_unix_nano == 0 || t < self.first_unix_nano {
            self.first_unix_nano = t;
        }
        if t > self.last_unix_nano {
            self.last_unix_nano = t;
        }
    }

    /// Nothing seen.
    pub fn is_never(&self) -> bool {
        self.first_unix_nano == 0 && self.last_unix_nano == 0
    }

    pub(super) fn merge(&mut self, o: &Seen) {
        self.observe(o.first_unix_nano);
        self.observe(o.last_unix_nano);
    }
}

/// The type of one attribute value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    /// String.
    String,
    /// Boolean.
    Bool,
    /// Integer.
    Int,
    /// Double.
    Double,
    /// Array.
    Array,
    /// Key-value list.
    Kvlist,
    /// Bytes.
    Bytes,
    /// No value.
    Empty,
}

/// How often each value type was seen for an attribute key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ValueTypes {
    /// Strings.
    pub string: u64,
    /// Booleans.
    pub bool: u64,
    /// Integers.
    pub int: u64,
    /// Doubles.
    pub double: u64,
    /// Arrays.
    pub array: u64,
    /// Key-value lists.
    pub kvlist: u64,
    /// Byte strings.
    pub bytes: u64,
    /// Key present without a value.
    pub empty: u64,
}

impl ValueTypes {
    /// Adds `n` to the count of `kind`.
    pub fn add(&mut self, kind: ValueKind, n: u64) {
        let slot = match kind {
            ValueKind::String => &mut self.string,
            ValueKind::Bool => &mut self.bool,
            ValueKind::Int => &mut self.int,
            ValueKind::Double => &mut self.double,
            ValueKind::Array => &mut self.array,
            ValueKind::Kvlist => &mut self.kvlist,
            ValueKind::Bytes => &mut self.bytes,
            ValueKind::Empty => &mut self.empty,
        };
        *slot = slot.saturating_add(n);
    }

    pub(super) fn merge(&mut self, o: &ValueTypes) {
        self.string = self.string.saturating_add(o.string);
        self.bool = self.bool.saturating_add(o.bool);
        self.int = self.int.saturating_add(o.int);
        self.double = self.double.saturating_add(o.double);
        self.array = self.array.saturating_add(o.array);
        self.kvlist = self.kvlist.saturating_add(o.kvlist);
        self.bytes = self.bytes.saturating_add(o.bytes);
        self.empty = self.empty.saturating_add(o.empty);
    }
}

/// The schema of one attribute key within a service and signal.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AttributeSchema {
    /// Value types seen, with counts.
    pub types: ValueTypes,
    /// Items (records, spans, data points) carrying the key; divide by the signal's
    /// `volume.items` for the share.
    pub items: u64,
    /// Encoded bytes of the key/value pairs (with field tag and length prefix): what
    /// removing the attribute from the items saves.
    pub bytes: u64,
    /// Distinct values (estimate over value hashes).
    pub distinct: DistinctSketch,
    /// When items carrying it were seen.
    pub seen: Seen,
    /// The last values whose keyed hashes went into `distinct` (in memory only: never
    /// serialised, shown, cloned or merged).
    #[serde(skip)]
    pub(crate) memo: ValueMemo,
}

/// Bytes of a value [`ValueMemo`] holds at most.
const MEMO_BYTES: usize = 30;

/// The last two distinct values (type tag and bytes, each at most [`MEMO_BYTES`]) whose keyed
/// hashes a schema's `distinct` sketch already holds, with those hashes: a value equal to
/// one of them (compared byte for byte, so a collision cannot make a wrong result) needs
/// neither the keyed hash nor the sketch update again, since inserting a hash twice changes
/// no sketch. Low-cardinality attributes (`http.method`, `region`) then cost a compare per
/// item instead of a SipHash. It lives beside the sketch it describes; whatever replaces
/// the sketch ([`AttributeSchema::forget_memo`], a take, a new key) empties it, and a
/// clone starts empty, so no raw value ever leaves the accumulator with a summary.
#[derive(Default)]
pub(crate) struct ValueMemo {
    entries: [MemoEntry; 2],
    /// The entry the next miss replaces.
    next: u8,
}

#[derive(Default, Clone, Copy)]
struct MemoEntry {
    /// Bytes held plus one; 0: empty.
    len: u8,
    tag: u8,
    bytes: [u8; MEMO_BYTES],
    hash: u64,
}

impl ValueMemo {
    /// The hash remembered for (`tag`, `bytes`).
    #[inline]
    pub(crate) fn get(&self, tag: u8, bytes: &[u8]) -> Option<u64> {
        self.entries
            .iter()
            .find(|e| {
                e.len as usize == bytes.len() + 1
                    && e.tag == tag
                    && &e.bytes[..bytes.len()] == bytes
            })
            .map(|e| e.hash)
    }

    /// Remembers that the sketch holds `hash`, the hash of (`tag`, `bytes`).
    #[inline]
    pub(crate) fn put(&mut self, tag: u8, bytes: &[u8], hash: u64) {
        if bytes.len() > MEMO_BYTES {
            return;
        }
        let e = &mut self.entries[usize::from(self.next & 1)];
        e.len = bytes.len() as u8 + 1;
        e.tag = tag;
        e.bytes[..bytes.len()].copy_from_slice(bytes);
        e.hash = hash;
        self.next ^= 1;
    }
}

impl Clone for ValueMemo {
    fn clone(&self) -> Self {
        ValueMemo::default()
    }
}

impl std::fmt::Debug for ValueMemo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ValueMemo")
    }
}

impl AttributeSchema {
    /// Empties the memo of hashed values (the sketch was replaced).
    pub(crate) fn forget_memo(&mut self) {
        self.memo = ValueMemo::default();
    }

    pub(super) fn merge(&mut self, o: &AttributeSchema) {
        self.types.merge(&o.types);
        self.items = self.items.saturating_add(o.items);
        self.bytes = self.bytes.saturating_add(o.bytes);
        self.distinct.merge(&o.distinct);
        self.seen.merge(&o.seen);
    }
}

/// Attribute schemas by key, split by where the attribute sits.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AttributeSchemas {
    /// Attributes of the resource (counted once per item under the resource).
    pub resource: BTreeMap<String, AttributeSchema>,
    /// Attributes of the item (log record, span, data point).
    pub item: BTreeMap<String, AttributeSchema>,
}

impl AttributeSchemas {
    /// Merges, adding at most `cap` keys per location; returns the keys left out.
    pub(super) fn merge(&mut self, o: &AttributeSchemas, cap: usize) -> u64 {
        merge_map(&mut self.resource, &o.resource, cap, AttributeSchema::merge).saturating_add(
            merge_map(&mut self.item, &o.item, cap, AttributeSchema::merge),
        )
    }
}
