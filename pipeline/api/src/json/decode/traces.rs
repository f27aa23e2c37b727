//! Trace messages.

use super::tree::JsonValue;
use opentelemetry_proto::tonic::trace::v1::span::{Event, Link, SpanKind};
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};

use super::{
    enumeration, fields, hex_id, key_value, list, resource, scope, string, uint32, uint64,
    SPAN_ID_DIGITS, TRACE_ID_DIGITS,
};
use crate::json::error::{JsonError, Path};

pub(super) fn resource_spans(
    value: &JsonValue<'_>,
    path: &Path<'_>,
) -> Result<ResourceSpans, JsonError> {
    let mut rs = ResourceSpans::default();
    for (key, value) in fields(value, path)? {
        let path = path.field(key);
        match key {
            "resource" => rs.resource = Some(resource(value, &path)?),
            "scopeSpans" | "scope_spans" => rs.scope_spans = list(value, &path, scope_spans)?,
            "schemaUrl" | "schema_url" => rs.schema_url = string(value, &path)?,
            _ => {}
        }
    }
    Ok(rs)
}

fn scope_spans(value: &JsonValue<'_>, path: &Path<'_>) -> Result<ScopeSpans, JsonError> {
    let mut ss = ScopeSpans::default();
    for (key, value) in fields(value, path)? {
        let path = path.field(key);
        match key {
            "scope" => ss.scope = Some(scope(value, &path)?),
            "spans" => ss.spans = list(value, &path, span)?,
            "schemaUrl" | "schema_url" => ss.schema_url = string(value, &path)?,
            _ => {}
        }
    }
    Ok(ss)
}

fn span(value: &JsonValue<'_>, path: &Path<'_>) -> Result<Span, JsonError> {
    let mut s = Span::default();
    for (key, value) in fields(value, path)? {
        let path = path.field(key);
        let path = &path;
        match key {
            "traceId" | "trace_id" => s.trace_id = hex_id(value, path, TRACE_ID_DIGITS)?,
            "spanId" | "span_id" => s.span_id = hex_id(value, path, SPAN_ID_DIGITS)?,
            "traceState" | "trace_state" => s.trace_state = string(value, path)?,
            "parentSpanId" | "parent_span_id" => {
                s.parent_span_id = hex_id(value, path, SPAN_ID_DIGITS)?
            }
            "flags" => s.flags = uint32(value, path)?,
            "name" => s.name = string(value, path)?,
            "kind" => {
                s.kind = enumeration(value, path, "SpanKind", |name| {
                    SpanKind::from_str_name(name).map(|k| k as i32)
                })?
            }
            "startTimeUnixNano" | "start_time_unix_nano" => {
                s.start_time_unix_nano = uint64(value, path)?
            }
            "endTimeUnixNano" | "end_time_unix_nano" => s.end_time_unix_nano = uint64(value, path)?,
            "attributes" => s.attributes = list(value, path, key_value)?,
            "droppedAttributesCount" | "dropped_attributes_count" => {
                s.dropped_attributes_count = uint32(value, path)?
            }
            "events" => s.events = list(value, path, event)?,
            "droppedEventsCount" | "dropped_events_count" => {
                s.dropped_events_count = uint32(value, path)?
            }
            "links" => s.links = list(value, path, link)?,
            "droppedLinksCount" | "dropped_links_count" => {
                s.dropped_links_count = uint32(value, path)?
            }
            "status" => s.status = Some(status(value, path)?),
            _ => {}
        }
    }
    Ok(s)
}

fn event(value: &JsonValue<'_>, path: &Path<'_>) -> Result<Event, JsonError> {
    let mut e = Event::default();
    for (key, value) in fields(value, path)? {
        let path = path.field(key);
        match key {
            "timeUnixNano" | "time_unix_nano" => e.time_unix_nano = uint64(value, &path)?,
            "name" => e.name = string(value, &path)?,
            "attributes" => e.attributes = list(value, &path, key_value)?,
            "droppedAttributesCount" | "dropped_attributes_count" => {
                e.dropped_attributes_count = uint32(value, &path)?
            }
            _ => {}
        }
    }
    Ok(e)
}

fn link(value: &JsonValue<'_>, path: &Path<'_>) -> Result<Link, JsonError> {
    let mut l = Link::default();
    for (key, value) in fields(value, path)? {
        let path = path.field(key);
        match key {
            "traceId" | "trace_id" => l.trace_id = hex_id(value, &path, TRACE_ID_DIGITS)?,
            "spanId" | "span_id" => l.span_id = hex_id(value, &path, SPAN_ID_DIGITS)?,
            "traceState" | "trace_state" => l.trace_state = string(value, &path)?,
            "attributes" => l.attributes = list(value, &path, key_value)?,
            "droppedAttributesCount" | "dropped_attributes_count" => {
                l.dropped_attributes_count = uint32(value, &path)?
            }
            "flags" => l.flags = uint32(value, &path)?,
            _ => {}
        }
    }
    Ok(l)
}

fn status(value: &JsonValue<'_>, path: &Path<'_>) -> Result<Status, JsonError> {
    let mut st = Status::default();
    for (key, value) in fields(value, path)? {
        let path = path.field(key);
        match key {
            "message" => st.message = string(value, &path)?,
            "code" => {
                st.code = enumeration(value, &path, "StatusCode", |name| {
                    StatusCode::from_str_name(name).map(|c| c as i32)
                })?
            }
            _ => {}
        }
    }
    Ok(st)
}
