//! Evaluating log policies on the protobuf bytes of a logs export request, without decoding
//! the request.
//!
//! A received logs batch holds its bytes, checked but not decoded
//! ([`weir_api::Batch::decode`]). Decoding it with prost costs an allocation per string,
//! attribute and value (about 600 us per 1,000 records) while the policies only read a few
//! fields of each record; and when they only drop records, the batch is cut out of its bytes
//! ([`weir_api::Batch::retain_items`]), so the decoded form would serve evaluation alone.
//! Here the records are read in place instead: every record gets the same verdict as on the
//! decoded request, because both run through one decision function
//! ([`crate::evaluate::LogDecider`]) and the record view here returns what
//! [`LogView`] returns on prost's decoding of the same bytes.
//!
//! Protobuf semantics kept:
//! - Resources and instrumentation scopes are small and read once per entry, so they are
//!   decoded with prost: a singular message field that occurs several times is the merge of
//!   its occurrences, which is what `Message::merge` over each occurrence gives. A string
//!   field that occurs several times (`schema_url`, a record's `severity_text`, an
//!   attribute's key, an `AnyValue` member) takes its last occurrence, as prost does.
//! - Where prost would merge two occurrences of a message inside a record (a second `body`,
//!   a `KeyValue` with two values, an `AnyValue` with two key-value lists), or anything the
//!   check should have refused shows up (a group, a wrong wire type), the record is decoded
//!   with prost on its own and read through [`LogView`]. That is decided while the record's
//!   top level and attributes are read, before the record is evaluated, so each record is
//!   evaluated exactly once ([`LogVerdicts::prost_decoded`] counts these records).
//! - A request whose resource and scope levels cannot be read at all is left to the caller
//!   (`None`, before anything was evaluated), which decodes it.
//! - Strings inside records are made `str`s (validated as UTF-8) only when a policy reads
//!   them; the receiver's check already refused invalid UTF-8, so a string that failed here
//!   (never seen) would read as absent.

use std::ops::Range;
use std::time::Instant;

use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;

use crate::evaluate::{LogDecider, LogVerdicts};
use crate::matcher::Facets;
use crate::record::WellKnown;
use crate::record::{non_empty, non_empty_bytes, Context, Field, FieldValue, LogView, Record};
use crate::set::PolicySet;

/// prost's recursion limit: deeper nesting never passes the receiver's check.
const RECURSION_LIMIT: usize = 100;

/// One field's value as it is on the wire.
#[derive(Clone, Copy)]
enum Wire<'a> {
    Varint(u64),
    Fixed64(u64),
    Len(&'a [u8]),
    Fixed32,
}

#[inline(always)]
fn varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    // Keys, lengths and most values fit one byte.
    let first = *buf.get(*pos)?;
    if first < 0x80 {
        *pos += 1;
        return Some(u64::from(first));
    }
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos)?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// The fields of one message in order, as (number, value). Yields `None` once, and stops,
/// at a field it cannot read: malformed, or a group (only ever in unknown fields, which
/// prost skips; the record is then left to prost).
struct Fields<'a> {
    buf: &'a [u8],
    pos: usize,
}

fn fields(buf: &[u8]) -> Fields<'_> {
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
fn utf8(b: &[u8]) -> Option<&str> {
    std::str::from_utf8(b).ok()
}

/// A resource entry: its resource (the merge of every occurrence) and schema URL (the last).
struct ResourceEntry<'a> {
    resource: Option<Resource>,
    schema_url: &'a str,
}

/// A scope entry: the resource entry it is in, its scope and schema URL, and its records
/// (a range of [`Layout::records`]).
struct ScopeEntry<'a> {
    resource: usize,
    scope: Option<InstrumentationScope>,
    schema_url: &'a str,
    records: Range<usize>,
}

/// The resource and scope levels of a request, read before any record is evaluated (a
/// resource or scope may follow the records it applies to).
#[derive(Default)]
struct Layout<'a> {
    resources: Vec<ResourceEntry<'a>>,
    scopes: Vec<ScopeEntry<'a>>,
    /// Every record's bytes, in encounter order (the numbering of `Batch::retain_items`).
    records: Vec<&'a [u8]>,
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
fn layout(buf: &[u8]) -> Option<Layout<'_>> {
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
                    let first = out.records.len();
                    for f in fields(scope_logs) {
                        match f? {
                            (1, Wire::Len(b)) => scope_bodies.push(b),
                            (2, Wire::Len(b)) => out.records.push(b),
                            (3, Wire::Len(s)) => schema_url = utf8(s)?,
                            (1..=3, _) => return None,
                            _ => {}
                        }
                    }
                    out.scopes.push(ScopeEntry {
                        resource,
                        scope: merged(&scope_bodies)?,
                        schema_url,
                        records: first..out.records.len(),
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
enum RawAny<'a> {
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
    /// An array, or a `string_value_strindex` (which [`crate::record::any_value`] reads as
    /// `Other` too).
    Other,
}

impl<'a> RawAny<'a> {
    /// What [`crate::record::any_value`] gives for the decoded value.
    fn field_value(self) -> Option<FieldValue<'a>> {
        Some(match self {
            RawAny::Empty => return None,
            RawAny::Str(s) => FieldValue::Str(utf8(s)?),
            RawAny::Bool(b) => FieldValue::Bool(b),
            RawAny::Int(i) => FieldValue::Int(i),
            RawAny::Double(d) => FieldValue::Double(d),
            RawAny::Bytes(b) => FieldValue::Bytes(b),
            RawAny::Kvlist(_) | RawAny::Other => FieldValue::Other,
        })
    }
}

/// A `KeyValue` as read from its bytes.
#[derive(Debug, Clone, Copy)]
struct RawKeyValue<'a> {
    /// The key's bytes: compared, never read as text.
    key: &'a [u8],
    /// `None`: no value field.
    value: Option<RawAny<'a>>,
}

/// Reads an `AnyValue`. The oneof takes its last member, as in prost. With `deep` (a value
/// attribute paths may look into), a second key-value list gives `None` (decode the record
/// with prost: prost merges the two lists), and the lists inside are checked the same way,
/// all the way down. Without it (a body, which reads as `Other` whatever the list holds, or
/// a value checked before) the lists are not looked at.
fn parse_any(buf: &[u8], depth: usize, deep: bool) -> Option<RawAny<'_>> {
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
fn parse_key_value(buf: &[u8], depth: usize, deep: bool) -> Option<RawKeyValue<'_>> {
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

/// The rest of an attribute path below a value: the value itself at the end of the path,
/// else a lookup in it when it is a key-value list.
#[inline]
fn descend<'a>(value: RawAny<'a>, rest: &[String]) -> Option<RawAny<'a>> {
    if rest.is_empty() {
        return Some(value);
    }
    match value {
        RawAny::Kvlist(list) => lookup_in_list(list, rest),
        _ => None,
    }
}

/// [`crate::record::lookup`] on an encoded `KeyValueList` (checked by [`check_kvlist`]):
/// the first entry with the key decides.
fn lookup_in_list<'a>(list: &'a [u8], path: &[String]) -> Option<RawAny<'a>> {
    let (first, rest) = path.split_first()?;
    for f in fields(list) {
        let (1, Wire::Len(kv)) = f? else { continue };
        let kv = parse_key_value(kv, 0, false)?;
        if kv.key == first.as_bytes() {
            return descend(kv.value?, rest);
        }
    }
    None
}

/// A log record's fields that policies read, in place. Attributes are kept beside it, in a
/// vector reused from record to record.
#[derive(Default)]
struct RawLog<'a> {
    /// `None`: no body field.
    body: Option<RawAny<'a>>,
    severity_text: &'a [u8],
    trace_id: &'a [u8],
    span_id: &'a [u8],
    event_name: &'a [u8],
}

impl<'a> RawLog<'a> {
    /// Reads a record's top level and its attributes (all of them, nested lists included,
    /// so that every reason to leave the record to prost shows up before it is evaluated).
    fn parse(buf: &'a [u8], attributes: &mut Vec<RawKeyValue<'a>>) -> Option<RawLog<'a>> {
        attributes.clear();
        let mut r = RawLog::default();
        for f in fields(buf) {
            match f? {
                // Times, severity number, dropped attributes count, flags: not read.
                (1 | 11, Wire::Fixed64(_)) | (2 | 7, Wire::Varint(_)) | (8, Wire::Fixed32) => {}
                (3, Wire::Len(s)) => r.severity_text = s,
                (5, Wire::Len(b)) => {
                    if r.body.is_some() {
                        return None;
                    }
                    r.body = Some(parse_any(b, 1, false)?);
                }
                (6, Wire::Len(b)) => attributes.push(parse_key_value(b, 1, true)?),
                (9, Wire::Len(b)) => r.trace_id = b,
                (10, Wire::Len(b)) => r.span_id = b,
                (12, Wire::Len(s)) => r.event_name = s,
                (1..=3 | 5..=12, _) => return None,
                _ => {}
            }
        }
        Some(r)
    }
}

/// A log record read in place, in its context: what [`LogView`] is on a decoded record.
struct RawLogView<'a> {
    ctx: Context<'a>,
    record: &'a RawLog<'a>,
    attributes: &'a [RawKeyValue<'a>],
}

impl Record for RawLogView<'_> {
    fn value(&self, field: &Field) -> Option<FieldValue<'_>> {
        let r = self.record;
        match field {
            Field::Record(path) => {
                let (first, rest) = path.split_first()?;
                let kv = self
                    .attributes
                    .iter()
                    .find(|kv| kv.key == first.as_bytes())?;
                descend(kv.value?, rest)?.field_value()
            }
            Field::Well(WellKnown::Body) => match r.body?.field_value()? {
                FieldValue::Str("") => None,
                v => Some(v),
            },
            Field::Well(WellKnown::SeverityText) => non_empty(utf8(r.severity_text)?),
            Field::Well(WellKnown::TraceId) => non_empty_bytes(r.trace_id),
            Field::Well(WellKnown::SpanId) => non_empty_bytes(r.span_id),
            Field::Well(WellKnown::EventName) => non_empty(utf8(r.event_name)?),
            other => self.ctx.common(other),
        }
    }
}

impl Facets for RawLogView<'_> {}

/// Decides every log record of the encoded `ExportLogsServiceRequest` in `buf`, as
/// [`crate::evaluate::evaluate_logs`] decides them on its prost decoding: same verdicts,
/// same counters, same rate-limiter admissions. `None` when the request's resource or scope
/// levels cannot be read (never for bytes that passed the receiver's check); nothing has
/// been evaluated then, and the caller decodes the request instead.
pub fn evaluate_logs_encoded(set: &PolicySet, buf: &[u8], now: Instant) -> Option<LogVerdicts> {
    let mut v = LogVerdicts::default();
    let Some(mut decider) = LogDecider::new(set, now) else {
        return Some(v);
    };
    let layout = layout(buf)?;
    v.keep.reserve(layout.records.len());
    v.transforms.reserve(layout.records.len());
    let mut attributes = Vec::new();
    for scope in &layout.scopes {
        let resource = layout.resources.get(scope.resource);
        let ctx = Context {
            resource: resource.and_then(|r| r.resource.as_ref()),
            resource_schema_url: resource.map_or("", |r| r.schema_url),
            scope: scope.scope.as_ref(),
            scope_schema_url: scope.schema_url,
        };
        let records = layout.records.get(scope.records.clone()).unwrap_or(&[]);
        for &bytes in records {
            if let Some(record) = RawLog::parse(bytes, &mut attributes) {
                let view = RawLogView {
                    ctx,
                    record: &record,
                    attributes: &attributes,
                };
                decider.decide(&view, &mut v);
                continue;
            }
            v.prost_decoded += 1;
            match LogRecord::decode(bytes) {
                Ok(record) => decider.decide(
                    &LogView {
                        ctx,
                        record: &record,
                    },
                    &mut v,
                ),
                Err(e) => {
                    // Not reached for checked bytes. Fail open: the record stays, unjudged.
                    tracing::error!(error = %e, "a checked log record failed to decode; it is kept without evaluation");
                    v.keep.push(true);
                    v.transforms.push((v.transform_policies.len() as u32, 0));
                }
            }
        }
    }
    Some(v)
}
