//! Reading an encoded OTLP logs, traces or metrics export request in place, without
//! decoding it: a field walker, the resource and scope levels of a request (identical for
//! `ResourceLogs`/`ScopeLogs`, `ResourceSpans`/`ScopeSpans` and
//! `ResourceMetrics`/`ScopeMetrics`: 1 resource or scope, 2 the items, 3 schema URL), and readers of `AnyValue` and `KeyValue` that say when prost would
//! merge two occurrences of a message (the caller then decodes the item with prost).
//!
//! The policy engine evaluates records this way and the metadata summariser summarises
//! them this way: decoding a request with prost costs an allocation per string, attribute
//! and value, while both only read a few fields of each record. Bytes that passed the
//! receiver's check ([`crate::Batch::decode`]) always read; where this reader and prost
//! could differ (a message field occurring twice, which prost merges) the readers return
//! `None` and the caller decodes that item with prost.

use std::ops::Range;

use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;

use crate::wire_check::varint;

/// prost's recursion limit: deeper nesting never passes the receiver's check.
pub const RECURSION_LIMIT: usize = 100;

/// One field's value as it is on the wire.
#[derive(Clone, Copy)]
pub enum Wire<'a> {
    Varint(u64),
    Fixed64(u64),
    Len(&'a [u8]),
    Fixed32,
}

/// The fields of one message in order, as (number, value). Yields `None` once, and stops,
/// at a field it cannot read: malformed, or a group (only ever in unknown fields, which
/// prost skips; the item is then left to prost).
pub struct Fields<'a> {
    buf: &'a [u8],
    pos: usize,
}

pub fn fields(buf: &[u8]) -> Fields<'_> {
    Fields { buf, pos: 0 }
}

impl<'a> Fields<'a> {
    #[inline(always)]
    fn read(&mut self) -> Option<(u64, Wire<'a>)> {
        let buf = self.buf;
        let key = varint(buf, &mut self.pos)?;
        let wire = match key & 7 {
            0 => Wire::Varint(varint(buf, &mut self.pos)?),
            1 => {
                let end = self.pos.checked_add(8)?;
                let b: [u8; 8] = buf.get(self.pos..end)?.try_into().ok()?;
                self.pos = end;
                Wire::Fixed64(u64::from_le_bytes(b))
            }
            2 => {
                let len = usize::try_from(varint(buf, &mut self.pos)?).ok()?;
                let end = self.pos.checked_add(len)?;
                let b = buf.get(self.pos..end)?;
                self.pos = end;
                Wire::Len(b)
            }
            5 => {
                let end = self.pos.checked_add(4)?;
                buf.get(self.pos..end)?;
                self.pos = end;
                Wire::Fixed32
            }
            _ => return None,
        };
        Some((key >> 3, wire))
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Option<(u64, Wire<'a>)>;

    #[inline(always)]
    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.buf.len() {
            return None;
        }
        let field = self.read();
        if field.is_none() {
            self.pos = self.buf.len();
        }
        Some(field)
    }
}

#[inline]
pub fn utf8(b: &[u8]) -> Option<&str> {
    std::str::from_utf8(b).ok()
}

/// A resource entry: its resource (the merge of every occurrence) and schema URL (the last).
pub struct ResourceEntry<'a> {
    pub resource: Option<Resource>,
    pub schema_url: &'a str,
}

/// A scope entry: the resource entry it is in, its scope and schema URL, and its items
/// (a range of [`Layout::items`]).
pub struct ScopeEntry<'a> {
    pub resource: usize,
    pub scope: Option<InstrumentationScope>,
    pub schema_url: &'a str,
    pub items: Range<usize>,
}

/// The resource and scope levels of a request, read before any item is evaluated (a
/// resource or scope may follow the items it applies to).
#[derive(Default)]
pub struct Layout<'a> {
    pub resources: Vec<ResourceEntry<'a>>,
    pub scopes: Vec<ScopeEntry<'a>>,
    /// Every item's bytes (log records, spans or metrics), in encounter order (for log
    /// records and spans, the numbering of `Batch::retain_items`; metrics are numbered by
    /// their data points).
    pub items: Vec<&'a [u8]>,
}

/// What prost decodes for a singular message field occurring once per body in `bodies`.
fn merged<M: Message + Default>(bodies: &[&[u8]]) -> Option<Option<M>> {
    if bodies.is_empty() {
        return Some(None);
    }
    let mut m = M::default();
    for body in bodies {
        m.merge(*body).ok()?;
    }
    Some(Some(m))
}

/// Reads the resource and scope levels of the request in `buf`.
pub fn layout(buf: &[u8]) -> Option<Layout<'_>> {
    let mut out = Layout::default();
    let mut resource_bodies: Vec<&[u8]> = Vec::new();
    let mut scope_bodies: Vec<&[u8]> = Vec::new();
    for f in fields(buf) {
        let resource_logs = match f? {
            (1, Wire::Len(b)) => b,
            (1, _) => return None,
            _ => continue,
        };
        resource_bodies.clear();
        let mut resource_schema_url = "";
        let resource = out.resources.len();
        for f in fields(resource_logs) {
            match f? {
                (1, Wire::Len(b)) => resource_bodies.push(b),
                (2, Wire::Len(scope_logs)) => {
                    scope_bodies.clear();
                    let mut schema_url = "";
                    let first = out.items.len();
                    for f in fields(scope_logs) {
                        match f? {
                            (1, Wire::Len(b)) => scope_bodies.push(b),
                            (2, Wire::Len(b)) => out.items.push(b),
                            (3, Wire::Len(s)) => schema_url = utf8(s)?,
                            (1..=3, _) => return None,
                            _ => {}
                        }
                    }
                    out.scopes.push(ScopeEntry {
                        resource,
                        scope: merged(&scope_bodies)?,
                        schema_url,
                        items: first..out.items.len(),
                    });
                }
                (3, Wire::Len(s)) => resource_schema_url = utf8(s)?,
                (1..=3, _) => return None,
                _ => {}
            }
        }
        out.resources.push(ResourceEntry {
            resource: merged(&resource_bodies)?,
            schema_url: resource_schema_url,
        });
    }
    Some(out)
}

/// An `AnyValue` as read from its bytes.
#[derive(Debug, Clone, Copy)]
pub enum RawAny<'a> {
    /// No value set.
    Empty,
    /// A string's bytes, UTF-8 (the receiver checked it); made a `str` when read, so
    /// strings no policy reads are not validated twice.
    Str(&'a [u8]),
    Bool(bool),
    Int(i64),
    Double(f64),
    Bytes(&'a [u8]),
    /// The bytes of a `KeyValueList`.
    Kvlist(&'a [u8]),
    /// An array, or a `string_value_strindex` (which the policy engine reads as
    /// `Other` too).
    Other,
}

/// A `KeyValue` as read from its bytes.
#[derive(Debug, Clone, Copy)]
pub struct RawKeyValue<'a> {
    /// The key's bytes: compared, never read as text.
    pub key: &'a [u8],
    /// `None`: no value field.
    pub value: Option<RawAny<'a>>,
}

/// Reads an `AnyValue`. The oneof takes its last member, as in prost. With `deep` (a value
/// attribute paths may look into), a second key-value list gives `None` (decode the item
/// with prost: prost merges the two lists), and the lists inside are checked the same way,
/// all the way down. Without it (a body, which reads as `Other` whatever the list holds, or
/// a value checked before) the lists are not looked at.
pub fn parse_any(buf: &[u8], depth: usize, deep: bool) -> Option<RawAny<'_>> {
    if depth > RECURSION_LIMIT {
        return None;
    }
    let mut value = RawAny::Empty;
    let mut lists = 0;
    for f in fields(buf) {
        value = match f? {
            (1, Wire::Len(s)) => RawAny::Str(s),
            (2, Wire::Varint(b)) => RawAny::Bool(b != 0),
            // int64 on the wire: the varint's bits, two's complement.
            (3, Wire::Varint(i)) => RawAny::Int(i as i64),
            (4, Wire::Fixed64(d)) => RawAny::Double(f64::from_bits(d)),
            (5, Wire::Len(_)) | (8, Wire::Varint(_)) => RawAny::Other,
            (6, Wire::Len(list)) => {
                if deep {
                    lists += 1;
                    if lists > 1 {
                        return None;
                    }
                    check_kvlist(list, depth + 1)?;
                }
                RawAny::Kvlist(list)
            }
            (7, Wire::Len(b)) => RawAny::Bytes(b),
            (1..=8, _) => return None,
            _ => continue,
        };
    }
    Some(value)
}

/// Reads a `KeyValue`: the last key, the value; `None` for a second value (prost merges it).
pub fn parse_key_value(buf: &[u8], depth: usize, deep: bool) -> Option<RawKeyValue<'_>> {
    if depth > RECURSION_LIMIT {
        return None;
    }
    let mut kv = RawKeyValue {
        key: b"",
        value: None,
    };
    for f in fields(buf) {
        match f? {
            (1, Wire::Len(k)) => kv.key = k,
            (2, Wire::Len(v)) => {
                if kv.value.is_some() {
                    return None;
                }
                kv.value = Some(parse_any(v, depth + 1, deep)?);
            }
            // key_strindex: not read by policies.
            (3, Wire::Varint(_)) => {}
            (1..=3, _) => return None,
            _ => {}
        }
    }
    Some(kv)
}

/// Checks that every `KeyValue` in a `KeyValueList`, at every depth, reads without a merge.
fn check_kvlist(buf: &[u8], depth: usize) -> Option<()> {
    if depth > RECURSION_LIMIT {
        return None;
    }
    for f in fields(buf) {
        match f? {
            (1, Wire::Len(kv)) => {
                parse_key_value(kv, depth + 1, true)?;
            }
            (1, _) => return None,
            _ => {}
        }
    }
    Some(())
}
