//! Trace messages.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::span::{Event, Link};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};

use super::writer::ObjectWriter;
use super::{key_value, resource, scope};

pub(crate) fn traces_request(out: &mut Vec<u8>, request: &ExportTraceServiceRequest) {
    let mut o = ObjectWriter::begin(out);
    o.list("resourceSpans", &request.resource_spans, resource_spans);
    o.end();
}

fn resource_spans(out: &mut Vec<u8>, rs: &ResourceSpans) {
    let mut o = ObjectWriter::begin(out);
    if let Some(r) = &rs.resource {
        o.message("resource", |out| resource(out, r));
    }
    o.list("scopeSpans", &rs.scope_spans, scope_spans);
    o.string("schemaUrl", &rs.schema_url);
    o.end();
}

fn scope_spans(out: &mut Vec<u8>, ss: &ScopeSpans) {
    let mut o = ObjectWriter::begin(out);
    if let Some(s) = &ss.scope {
        o.message("scope", |out| scope(out, s));
    }
    o.list("spans", &ss.spans, span);
    o.string("schemaUrl", &ss.schema_url);
    o.end();
}

fn span(out: &mut Vec<u8>, s: &Span) {
    let mut o = ObjectWriter::begin(out);
    o.hex("traceId", &s.trace_id);
    o.hex("spanId", &s.span_id);
    o.string("traceState", &s.trace_state);
    o.hex("parentSpanId", &s.parent_span_id);
    o.u32("flags", s.flags);
    o.string("name", &s.name);
    o.i32("kind", s.kind);
    o.u64("startTimeUnixNano", s.start_time_unix_nano);
    o.u64("endTimeUnixNano", s.end_time_unix_nano);
    o.list("attributes", &s.attributes, key_value);
    o.u32("droppedAttributesCount", s.dropped_attributes_count);
    o.list("events", &s.events, event);
    o.u32("droppedEventsCount", s.dropped_events_count);
    o.list("links", &s.links, link);
    o.u32("droppedLinksCount", s.dropped_links_count);
    if let Some(st) = &s.status {
        o.message("status", |out| status(out, st));
    }
    o.end();
}

fn event(out: &mut Vec<u8>, e: &Event) {
    let mut o = ObjectWriter::begin(out);
    o.u64("timeUnixNano", e.time_unix_nano);
    o.string("name", &e.name);
    o.list("attributes", &e.attributes, key_value);
    o.u32("droppedAttributesCount", e.dropped_attributes_count);
    o.end();
}

fn link(out: &mut Vec<u8>, l: &Link) {
    let mut o = ObjectWriter::begin(out);
    o.hex("traceId", &l.trace_id);
    o.hex("spanId", &l.span_id);
    o.string("traceState", &l.trace_state);
    o.list("attributes", &l.attributes, key_value);
    o.u32("droppedAttributesCount", l.dropped_attributes_count);
    o.u32("flags", l.flags);
    o.end();
}

fn status(out: &mut Vec<u8>, st: &Status) {
    let mut o = ObjectWriter::begin(out);
    o.string("message", &st.message);
    o.i32("code", st.code);
    o.end();
}
