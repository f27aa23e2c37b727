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
//! - A record's attributes are read only when a policy of the set reads them
//!   ([`crate::set::Reads`]); otherwise they are checked for their wire type alone, and
//!   nothing inside them sends a record to prost (no verdict depends on them).
//! - A request whose resource and scope levels cannot be read at all is left to the caller
//!   (`None`, before anything was evaluated), which decodes it.
//! - Strings inside records are made `str`s (validated as UTF-8) only when a policy reads
//!   them; the receiver's check already refused invalid UTF-8, so a string that failed here
//!   (never seen) would read as absent.

use std::time::Instant;

use opentelemetry_proto::tonic::logs::v1::LogRecord;
use prost::Message;

use crate::evaluate::{LogDecider, LogVerdicts};
use crate::matcher::Facets;
use crate::raw::{attribute, fields, layout, parse_any, parse_key_value, utf8};
use crate::raw::{RawAny, RawKeyValue, Wire};
use crate::record::Context;
use crate::record::WellKnown;
use crate::record::{non_empty, non_empty_bytes, Field, FieldValue, LogView, Record};
use crate::set::{PolicySet, Reads};

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
    /// Reads a record's top level and, when a policy reads them (`reads.attributes`), its
    /// attributes: all of them, nested lists included, so that every reason to leave the
    /// record to prost shows up before it is evaluated. Attributes no policy reads are only
    /// checked for their wire type: nothing in them can change the verdict.
    fn parse(
        buf: &'a [u8],
        reads: Reads,
        attributes: &mut Vec<RawKeyValue<'a>>,
    ) -> Option<RawLog<'a>> {
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
                (6, Wire::Len(b)) if reads.attributes => {
                    attributes.push(parse_key_value(b, 1, true)?);
                }
                (6, Wire::Len(_)) => {}
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
            Field::Record(path) => attribute(self.attributes, path),
            Field::Well(WellKnown::Body) => match crate::raw::field_value(r.body?)? {
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
    v.keep.reserve(layout.items.len());
    v.transforms.reserve(layout.items.len());
    let mut attributes = Vec::new();
    let reads = set.logs.reads;
    for scope in &layout.scopes {
        let (ctx, records) = crate::raw::scope(&layout, scope);
        for &bytes in records {
            if let Some(record) = RawLog::parse(bytes, reads, &mut attributes) {
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
