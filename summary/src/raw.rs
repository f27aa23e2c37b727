//! Reading log records in place from the bytes of an encoded logs export request, for the
//! summariser ([`crate::extract`]): what [`LogFacts::of`] and [`AttrRef::of`] read from a
//! decoded record, without decoding it (prost's decode costs an allocation per string,
//! attribute and value, more than the summary itself on short records).
//!
//! Where prost would merge two occurrences of a message (a second body, a `KeyValue` with
//! two values, an `AnyValue` with two lists) or a member the summariser does not read shows
//! up, [`record`] gives `None` and the caller decodes that record with prost, so both paths
//! give the same summary.

use weir_api::wire_read::{fields, utf8, Wire};

use crate::extract::{AttrRef, LogFacts, Nested, SpanFacts, ValueRef};

/// Reads an `AnyValue` (the last member wins, as in prost); `None` where prost would merge
/// two lists, or for a member other than the eight the summariser reads.
pub(crate) fn value(buf: &[u8]) -> Option<ValueRef<'_>> {
    let mut v = ValueRef::Empty;
    let mut lists = 0;
    for f in fields(buf) {
        v = match f? {
            (1, Wire::Len(s)) => ValueRef::Str(utf8(s)?),
            (2, Wire::Varint(b)) => ValueRef::Bool(b != 0),
            // int64 on the wire: the varint's bits, two's complement.
            (3, Wire::Varint(i)) => ValueRef::Int(i as i64),
            (4, Wire::Fixed64(d)) => ValueRef::Double(f64::from_bits(d)),
            (field @ (5 | 6), Wire::Len(member)) => {
                lists += 1;
                if lists > 1 {
                    return None;
                }
                ValueRef::Nested(Nested::Encoded {
                    field: field as u8,
                    member,
                })
            }
            (7, Wire::Len(b)) => ValueRef::Bytes(b),
            (1..=8, _) => return None,
            _ => continue,
        };
    }
    Some(v)
}

/// Reads a `KeyValue`: the last key, the value; `None` for a second value (prost merges it).
pub(crate) fn key_value(buf: &[u8]) -> Option<AttrRef<'_>> {
    let mut key: &[u8] = b"";
    let mut val = None;
    for f in fields(buf) {
        match f? {
            (1, Wire::Len(k)) => key = k,
            (2, Wire::Len(b)) => {
                if val.is_some() {
                    return None;
                }
                val = Some(value(b)?);
            }
            (3, Wire::Varint(_)) => {}
            (1..=3, _) => return None,
            _ => {}
        }
    }
    Some(AttrRef {
        key: utf8(key)?,
        value: val.unwrap_or(ValueRef::Empty),
        pair_len: buf.len(),
    })
}

/// Calls `add` with the key of every entry of an encoded `KeyValueList`, in order.
pub(crate) fn list_keys(list: &[u8], mut add: impl FnMut(&str)) {
    for f in fields(list) {
        let Some((1, Wire::Len(kv))) = f else {
            continue;
        };
        let mut key: &[u8] = b"";
        for f in fields(kv) {
            if let Some((1, Wire::Len(k))) = f {
                key = k;
            }
        }
        add(utf8(key).unwrap_or(""));
    }
}

/// Reads a `LogRecord`, its attributes into `attrs` (cleared first).
pub(crate) fn record<'a>(buf: &'a [u8], attrs: &mut Vec<AttrRef<'a>>) -> Option<LogFacts<'a>> {
    attrs.clear();
    let mut r = LogFacts {
        time_unix_nano: 0,
        observed_time_unix_nano: 0,
        bytes: buf.len() as u64,
        severity_number: 0,
        severity_text: "",
        body: ValueRef::Empty,
    };
    let mut body = false;
    for f in fields(buf) {
        match f? {
            (1, Wire::Fixed64(t)) => r.time_unix_nano = t,
            (11, Wire::Fixed64(t)) => r.observed_time_unix_nano = t,
            // An enum: prost keeps the varint's low 32 bits.
            (2, Wire::Varint(n)) => r.severity_number = n as i32,
            (3, Wire::Len(s)) => r.severity_text = utf8(s)?,
            (5, Wire::Len(b)) => {
                if body {
                    return None;
                }
                body = true;
                r.body = value(b)?;
            }
            (6, Wire::Len(b)) => attrs.push(key_value(b)?),
            // Dropped attributes count, flags, trace and span ids, event name: not read.
            (7, Wire::Varint(_)) | (8, Wire::Fixed32) | (9 | 10 | 12, Wire::Len(_)) => {}
            (1..=3 | 5..=12, _) => return None,
            _ => {}
        }
    }
    Some(r)
}

/// The last `parent_span_id` of an encoded `Span` (empty when it has none or cannot be
/// read), as prost keeps the last occurrence of a bytes field.
pub(crate) fn parent_span_id(buf: &[u8]) -> &[u8] {
    let mut parent: &[u8] = b"";
    for f in fields(buf) {
        match f {
            Some((4, Wire::Len(b))) => parent = b,
            Some(_) => {}
            None => return b"",
        }
    }
    parent
}

/// Reads a `Span`, its attributes into `attrs` (cleared first).
pub(crate) fn span<'a>(buf: &'a [u8], attrs: &mut Vec<AttrRef<'a>>) -> Option<SpanFacts<'a>> {
    attrs.clear();
    let mut s = SpanFacts {
        name: "",
        span_id: b"",
        parent_span_id: b"",
        kind: 0,
        status_code: 0,
        start_time_unix_nano: 0,
        end_time_unix_nano: 0,
        bytes: buf.len() as u64,
    };
    for f in fields(buf) {
        match f? {
            (2, Wire::Len(b)) => s.span_id = b,
            (4, Wire::Len(b)) => s.parent_span_id = b,
            (5, Wire::Len(b)) => s.name = utf8(b)?,
            // An enum: prost keeps the varint's low 32 bits.
            (6, Wire::Varint(k)) => s.kind = k as i32,
            (7, Wire::Fixed64(t)) => s.start_time_unix_nano = t,
            (8, Wire::Fixed64(t)) => s.end_time_unix_nano = t,
            (9, Wire::Len(b)) => attrs.push(key_value(b)?),
            // Several statuses merge: the last code set wins.
            (15, Wire::Len(b)) => {
                for f in fields(b) {
                    match f? {
                        (3, Wire::Varint(code)) => s.status_code = code as i32,
                        (2, Wire::Len(_)) => {}
                        (2 | 3, _) => return None,
                        _ => {}
                    }
                }
            }
            // Trace id, trace state, dropped counts, events, links, flags: not read.
            (1 | 3 | 11 | 13, Wire::Len(_))
            | (10 | 12 | 14, Wire::Varint(_))
            | (16, Wire::Fixed32) => {}
            (1..=16, _) => return None,
            _ => {}
        }
    }
    Some(s)
}
