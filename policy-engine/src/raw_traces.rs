//! Evaluating trace policies on the protobuf bytes of a traces export request, without
//! decoding the request.
//!
//! As for logs ([`crate::raw_logs`]): a received traces batch holds its bytes, checked but
//! not decoded, and prost's decoding (about 550 us per 1,000 spans) would serve the
//! evaluation alone when the policies only drop spans. Here the spans are read in place;
//! every span gets the same decision as on the decoded request, because both paths run
//! through one decision function ([`crate::evaluate::SpanDecider`]) and the span view here
//! returns what [`SpanView`] returns on prost's decoding of the same bytes. Only spans
//! whose tracestate a sampling policy rewrites need the decoded request; the caller decodes
//! it then, with the decisions made here.
//!
//! Protobuf semantics kept (opentelemetry-proto 0.33 `Span`):
//! - Resources and scopes are decoded with prost, once per entry (see [`crate::raw`]).
//! - A singular scalar, string or bytes field that occurs several times takes its last
//!   occurrence (trace id, span id, parent span id, tracestate, name, kind; an event's
//!   name; a link's trace id; an attribute's key).
//! - `status` is a singular message: several occurrences merge, which for the only field
//!   policies read, `code`, is its last occurrence in any of them; a status without a code
//!   reads as unset, as an absent status does.
//! - Events, links and attributes are repeated: every occurrence appends.
//! - Where prost would merge two occurrences of a message that policies read inside (a
//!   `KeyValue` with two values, an `AnyValue` with two key-value lists, in the span's or
//!   an event's attributes), or anything the check should have refused shows up (a group,
//!   a wrong wire type), the span is decoded with prost on its own and read through
//!   [`SpanView`]. That is decided while the span is read, before it is evaluated, so each
//!   span is evaluated exactly once ([`TraceVerdicts::prost_decoded`] counts these spans).
//! - Links' attributes and tracestates and events' times are not read (no policy reads
//!   them), so nothing in them sends a span to prost. Likewise a span's attributes, and
//!   its events, when no policy of the set reads them ([`crate::set::Reads`]): they are
//!   checked for their wire type alone.

use std::ops::Range;

use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

use crate::evaluate::{SpanDecider, SpanDecision, TraceVerdicts};
use crate::matcher::{Facets, Test};
use crate::raw::{attribute, fields, layout, parse_key_value, utf8, RawKeyValue, Wire};
use crate::record::{non_empty, non_empty_bytes, Context, Field, FieldValue, Record};
use crate::record::{SpanView, WellKnown};
use crate::set::{PolicySet, Reads};

/// An event: its name and its attributes (a range of [`SpanParts::event_attributes`]).
struct RawEvent<'a> {
    name: &'a [u8],
    attributes: Range<usize>,
}

/// The repeated parts of a span, in vectors reused from span to span.
#[derive(Default)]
struct SpanParts<'a> {
    attributes: Vec<RawKeyValue<'a>>,
    events: Vec<RawEvent<'a>>,
    event_attributes: Vec<RawKeyValue<'a>>,
    /// Each link's trace id.
    links: Vec<&'a [u8]>,
}

impl SpanParts<'_> {
    fn clear(&mut self) {
        self.attributes.clear();
        self.events.clear();
        self.event_attributes.clear();
        self.links.clear();
    }
}

/// A span's singular fields that policies read, in place.
#[derive(Default)]
struct RawSpan<'a> {
    trace_id: &'a [u8],
    span_id: &'a [u8],
    trace_state: &'a [u8],
    parent_span_id: &'a [u8],
    name: &'a [u8],
    kind: i32,
    /// The status code (0 when there is no status or it has no code).
    status: i32,
}

impl<'a> RawSpan<'a> {
    /// Reads a span's top level, its attributes, events (with their attributes) and links;
    /// `None` when prost must decode it (see the module documentation).
    /// Attributes and events no policy reads (`reads`) are only checked for their wire type.
    fn parse(buf: &'a [u8], reads: Reads, parts: &mut SpanParts<'a>) -> Option<RawSpan<'a>> {
        parts.clear();
        let mut s = RawSpan::default();
        for f in fields(buf) {
            match f? {
                (1, Wire::Len(b)) => s.trace_id = b,
                (2, Wire::Len(b)) => s.span_id = b,
                (3, Wire::Len(b)) => s.trace_state = b,
                (4, Wire::Len(b)) => s.parent_span_id = b,
                (5, Wire::Len(b)) => s.name = b,
                // An enum: prost keeps the varint's low 32 bits, as `i32`.
                (6, Wire::Varint(k)) => s.kind = k as i32,
                // Times, dropped counts, flags: not read.
                (7 | 8, Wire::Fixed64(_))
                | (10 | 12 | 14, Wire::Varint(_))
                | (16, Wire::Fixed32) => {}
                (9, Wire::Len(b)) if reads.attributes => {
                    parts.attributes.push(parse_key_value(b, 1, true)?);
                }
                (11, Wire::Len(b)) if reads.events => {
                    let event = parse_event(b, &mut parts.event_attributes)?;
                    parts.events.push(event);
                }
                (9 | 11, Wire::Len(_)) => {}
                (13, Wire::Len(b)) => parts.links.push(parse_link(b)?),
                (15, Wire::Len(b)) => {
                    // Merged with any earlier status: a code given here replaces its code.
                    if let Some(code) = parse_status(b)? {
                        s.status = code;
                    }
                }
                (1..=16, _) => return None,
                _ => {}
            }
        }
        Some(s)
    }
}

/// Reads an event, appending its attributes to `attributes`.
fn parse_event<'a>(buf: &'a [u8], attributes: &mut Vec<RawKeyValue<'a>>) -> Option<RawEvent<'a>> {
    let first = attributes.len();
    let mut name: &[u8] = b"";
    for f in fields(buf) {
        match f? {
            (1, Wire::Fixed64(_)) | (4, Wire::Varint(_)) => {}
            (2, Wire::Len(s)) => name = s,
            (3, Wire::Len(b)) => attributes.push(parse_key_value(b, 2, true)?),
            (1..=4, _) => return None,
            _ => {}
        }
    }
    Some(RawEvent {
        name,
        attributes: first..attributes.len(),
    })
}

/// Reads a link's trace id (the last occurrence); its other fields are only checked for
/// their wire types.
fn parse_link(buf: &[u8]) -> Option<&[u8]> {
    let mut trace_id: &[u8] = b"";
    for f in fields(buf) {
        match f? {
            (1, Wire::Len(b)) => trace_id = b,
            (2..=4, Wire::Len(_)) | (5, Wire::Varint(_)) | (6, Wire::Fixed32) => {}
            (1..=6, _) => return None,
            _ => {}
        }
    }
    Some(trace_id)
}

/// Reads a status occurrence: the last code in it, `None` inside when it has none.
fn parse_status(buf: &[u8]) -> Option<Option<i32>> {
    let mut code = None;
    for f in fields(buf) {
        match f? {
            (2, Wire::Len(_)) => {}
            (3, Wire::Varint(c)) => code = Some(c as i32),
            (2 | 3, _) => return None,
            _ => {}
        }
    }
    Some(code)
}

/// A span read in place, in its context: what [`SpanView`] is on a decoded span.
struct RawSpanView<'a> {
    ctx: Context<'a>,
    span: &'a RawSpan<'a>,
    parts: &'a SpanParts<'a>,
}

impl Record for RawSpanView<'_> {
    fn value(&self, field: &Field) -> Option<FieldValue<'_>> {
        let s = self.span;
        match field {
            Field::Record(path) => attribute(&self.parts.attributes, path),
            Field::Well(WellKnown::Name) => non_empty(utf8(s.name)?),
            Field::Well(WellKnown::TraceId) => non_empty_bytes(s.trace_id),
            Field::Well(WellKnown::SpanId) => non_empty_bytes(s.span_id),
            Field::Well(WellKnown::ParentSpanId) => non_empty_bytes(s.parent_span_id),
            Field::Well(WellKnown::TraceState) => non_empty(utf8(s.trace_state)?),
            other => self.ctx.common(other),
        }
    }
}

impl Facets for RawSpanView<'_> {
    fn span_kind(&self) -> i32 {
        self.span.kind
    }
    fn span_status(&self) -> i32 {
        self.span.status
    }
    fn has_event(&self, name: &str) -> bool {
        self.parts.events.iter().any(|e| e.name == name.as_bytes())
    }
    fn event_attribute(&self, path: &[String], test: &Test) -> bool {
        let parts = self.parts;
        let mut values = parts.events.iter().map(|e| {
            let attributes = parts
                .event_attributes
                .get(e.attributes.clone())
                .unwrap_or(&[]);
            attribute(attributes, path)
        });
        match test {
            Test::Exists(false) => values.all(|v| v.is_none()),
            t => values.any(|v| v.is_some() && t.check(v)),
        }
    }
    fn links_to(&self, trace_id: &[u8]) -> bool {
        self.parts.links.contains(&trace_id)
    }
}

/// Decides every span of the encoded `ExportTraceServiceRequest` in `buf`, as
/// [`crate::evaluate::evaluate_traces`] decides them on its prost decoding: same decisions
/// (tracestate rewrites included), same counters. `None` when the request's resource or
/// scope levels cannot be read (never for bytes that passed the receiver's check); nothing
/// has been evaluated then, and the caller decodes the request instead.
pub fn evaluate_traces_encoded(set: &PolicySet, buf: &[u8]) -> Option<TraceVerdicts> {
    let mut v = TraceVerdicts::default();
    let Some(mut decider) = SpanDecider::new(set) else {
        return Some(v);
    };
    let layout = layout(buf)?;
    v.spans.reserve(layout.items.len());
    let mut parts = SpanParts::default();
    let reads = set.traces.reads;
    for scope in &layout.scopes {
        let (ctx, spans) = crate::raw::scope(&layout, scope);
        for &bytes in spans {
            if let Some(span) = RawSpan::parse(bytes, reads, &mut parts) {
                let view = RawSpanView {
                    ctx,
                    span: &span,
                    parts: &parts,
                };
                // The tracestate is UTF-8 (checked on receipt); were it not, it would read
                // as absent, as it does for matchers.
                let trace_state = utf8(span.trace_state).unwrap_or("");
                decider.decide(&view, span.trace_id, trace_state, &mut v);
                continue;
            }
            v.prost_decoded += 1;
            match Span::decode(bytes) {
                Ok(span) => decider.decide(
                    &SpanView { ctx, span: &span },
                    &span.trace_id,
                    &span.trace_state,
                    &mut v,
                ),
                Err(e) => {
                    // Not reached for checked bytes. Fail open: the span stays, unjudged.
                    tracing::error!(error = %e, "a checked span failed to decode; it is kept without evaluation");
                    v.spans.push(SpanDecision {
                        keep: true,
                        tracestate: None,
                    });
                }
            }
        }
    }
    Some(v)
}
