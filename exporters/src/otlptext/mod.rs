//! The collector's text layout of OTLP data (its debug exporter at `verbosity: detailed`):
//! `ResourceLog #0`, `Resource attributes:` with `-> key: Str(value)` lines, timestamps as Go
//! prints them (`2020-02-11 20:26:13.000000789 +0000 UTC`), floats as Go's `%f`, maps and
//! lists as Go's JSON. Written from the layout the collector produces, field by field.

mod metrics;
#[cfg(test)]
mod tests;
mod values;

use weir_api::otlp::collector::logs::v1::ExportLogsServiceRequest;
use weir_api::otlp::collector::trace::v1::ExportTraceServiceRequest;
use weir_api::otlp::common::v1::{InstrumentationScope, KeyValue};
use weir_api::otlp::resource::v1::Resource;
use weir_api::otlp::trace::v1::span;
use weir_api::Payload;

use metrics::metrics;
pub use values::timestamp;
use values::{id_hex, severity_name, span_kind, status_code, value_string};

/// The text of one request, every line ending in `\n`.
pub fn render(payload: &Payload) -> String {
    match payload {
        Payload::Logs(r) => logs(r),
        Payload::Traces(r) => traces(r),
        Payload::Metrics(r) => metrics(r),
    }
}

struct Buf(String);

impl Buf {
    fn line(&mut self, text: impl AsRef<str>) {
        self.0.push_str(text.as_ref());
        self.0.push('\n');
    }

    /// `header:` then one `-> key: Type(value)` line per attribute; a header holding `->`
    /// indents its attributes under it.
    fn attributes(&mut self, header: &str, attrs: &[KeyValue]) {
        if attrs.is_empty() {
            return;
        }
        self.line(format!("{header}:"));
        let prefix = match header.split_once("->") {
            Some((lead, _)) => format!("{lead}     ->"),
            None => "     ->".to_string(),
        };
        for kv in attrs {
            self.line(format!(
                "{prefix} {}: {}",
                kv.key,
                value_string(kv.value.as_ref())
            ));
        }
    }

    /// `    Name           : value` (the span fields).
    fn field(&mut self, name: &str, value: impl AsRef<str>) {
        self.line(format!("    {name:<15}: {}", value.as_ref()));
    }

    fn resource(&mut self, resource: Option<&Resource>) {
        let Some(r) = resource else { return };
        self.attributes("Resource attributes", &r.attributes);
        if r.entity_refs.is_empty() {
            return;
        }
        self.line("Resource entity refs:");
        for (i, e) in r.entity_refs.iter().enumerate() {
            self.line(format!("     -> Entity ref #{i}:"));
            self.line(format!("          -> Type: {}", e.r#type));
            if !e.schema_url.is_empty() {
                self.line(format!("          -> Schema URL: {}", e.schema_url));
            }
            for (title, keys) in [
                ("ID keys", &e.id_keys),
                ("Description keys", &e.description_keys),
            ] {
                if !keys.is_empty() {
                    self.line(format!("          -> {title}:"));
                    for k in keys {
                        self.line(format!("               -> {k}"));
                    }
                }
            }
        }
    }

    fn scope(&mut self, scope: Option<&InstrumentationScope>) {
        let (name, version, attrs) = match scope {
            Some(s) => (s.name.as_str(), s.version.as_str(), &s.attributes[..]),
            None => ("", "", &[][..]),
        };
        self.line(format!("InstrumentationScope {name} {version}"));
        self.attributes("InstrumentationScope attributes", attrs);
    }
}

fn logs(req: &ExportLogsServiceRequest) -> String {
    let mut b = Buf(String::new());
    for (i, rl) in req.resource_logs.iter().enumerate() {
        b.line(format!("ResourceLog #{i}"));
        b.line(format!("Resource SchemaURL: {}", rl.schema_url));
        b.resource(rl.resource.as_ref());
        for (j, sl) in rl.scope_logs.iter().enumerate() {
            b.line(format!("ScopeLogs #{j}"));
            b.line(format!("ScopeLogs SchemaURL: {}", sl.schema_url));
            b.scope(sl.scope.as_ref());
            for (k, r) in sl.log_records.iter().enumerate() {
                b.line(format!("LogRecord #{k}"));
                b.line(format!(
                    "ObservedTimestamp: {}",
                    timestamp(r.observed_time_unix_nano)
                ));
                b.line(format!("Timestamp: {}", timestamp(r.time_unix_nano)));
                b.line(format!("SeverityText: {}", r.severity_text));
                b.line(format!(
                    "SeverityNumber: {}({})",
                    severity_name(r.severity_number),
                    r.severity_number
                ));
                if !r.event_name.is_empty() {
                    b.line(format!("EventName: {}", r.event_name));
                }
                b.line(format!("Body: {}", value_string(r.body.as_ref())));
                b.attributes("Attributes", &r.attributes);
                b.line(format!("Trace ID: {}", id_hex(&r.trace_id)));
                b.line(format!("Span ID: {}", id_hex(&r.span_id)));
                b.line(format!("Flags: {}", r.flags));
            }
        }
    }
    b.0
}

fn traces(req: &ExportTraceServiceRequest) -> String {
    let mut b = Buf(String::new());
    for (i, rs) in req.resource_spans.iter().enumerate() {
        b.line(format!("ResourceSpans #{i}"));
        b.line(format!("Resource SchemaURL: {}", rs.schema_url));
        b.resource(rs.resource.as_ref());
        for (j, ss) in rs.scope_spans.iter().enumerate() {
            b.line(format!("ScopeSpans #{j}"));
            b.line(format!("ScopeSpans SchemaURL: {}", ss.schema_url));
            b.scope(ss.scope.as_ref());
            for (k, s) in ss.spans.iter().enumerate() {
                b.line(format!("Span #{k}"));
                b.field("Trace ID", id_hex(&s.trace_id));
                b.field("Parent ID", id_hex(&s.parent_span_id));
                b.field("ID", id_hex(&s.span_id));
                b.field("Name", &s.name);
                b.field("Kind", span_kind(s.kind));
                if !s.trace_state.is_empty() {
                    b.field("TraceState", &s.trace_state);
                }
                b.field("Start time", timestamp(s.start_time_unix_nano));
                b.field("End time", timestamp(s.end_time_unix_nano));
                let (code, message) = match &s.status {
                    Some(st) => (st.code, st.message.as_str()),
                    None => (0, ""),
                };
                b.field("Status code", status_code(code));
                b.field("Status message", message);
                b.field(
                    "DroppedAttributesCount",
                    s.dropped_attributes_count.to_string(),
                );
                b.field("DroppedEventsCount", s.dropped_events_count.to_string());
                b.field("DroppedLinksCount", s.dropped_links_count.to_string());
                b.attributes("Attributes", &s.attributes);
                if !s.events.is_empty() {
                    b.line("Events:");
                    for (n, e) in s.events.iter().enumerate() {
                        b.line(format!("SpanEvent #{n}"));
                        b.line(format!("     -> Name: {}", e.name));
                        b.line(format!(
                            "     -> Timestamp: {}",
                            timestamp(e.time_unix_nano)
                        ));
                        b.line(format!(
                            "     -> DroppedAttributesCount: {}",
                            e.dropped_attributes_count
                        ));
                        b.attributes("     -> Attributes:", &e.attributes);
                    }
                }
                if !s.links.is_empty() {
                    b.line("Links:");
                    for (n, l) in s.links.iter().enumerate() {
                        link(&mut b, n, l);
                    }
                }
            }
        }
    }
    b.0
}

fn link(b: &mut Buf, n: usize, l: &span::Link) {
    b.line(format!("SpanLink #{n}"));
    b.line(format!("     -> Trace ID: {}", id_hex(&l.trace_id)));
    b.line(format!("     -> ID: {}", id_hex(&l.span_id)));
    b.line(format!("     -> TraceState: {}", l.trace_state));
    b.line(format!(
        "     -> DroppedAttributesCount: {}",
        l.dropped_attributes_count
    ));
    b.attributes("     -> Attributes:", &l.attributes);
}
