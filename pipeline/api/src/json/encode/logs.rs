//! Logs messages.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};

use super::writer::ObjectWriter;
use super::{any_value, key_value, resource, scope};

pub(crate) fn logs_request(out: &mut Vec<u8>, request: &ExportLogsServiceRequest) {
    let mut o = ObjectWriter::begin(out);
    o.list("resourceLogs", &request.resource_logs, resource_logs);
    o.end();
}

fn resource_logs(out: &mut Vec<u8>, rl: &ResourceLogs) {
    let mut o = ObjectWriter::begin(out);
    if let Some(r) = &rl.resource {
        o.message("resource", |out| resource(out, r));
    }
    o.list("scopeLogs", &rl.scope_logs, scope_logs);
    o.string("schemaUrl", &rl.schema_url);
    o.end();
}

fn scope_logs(out: &mut Vec<u8>, sl: &ScopeLogs) {
    let mut o = ObjectWriter::begin(out);
    if let Some(s) = &sl.scope {
        o.message("scope", |out| scope(out, s));
    }
    o.list("logRecords", &sl.log_records, log_record);
    o.string("schemaUrl", &sl.schema_url);
    o.end();
}

fn log_record(out: &mut Vec<u8>, r: &LogRecord) {
    let mut o = ObjectWriter::begin(out);
    o.u64("timeUnixNano", r.time_unix_nano);
    o.u64("observedTimeUnixNano", r.observed_time_unix_nano);
    o.i32("severityNumber", r.severity_number);
    o.string("severityText", &r.severity_text);
    if let Some(body) = &r.body {
        o.message("body", |out| any_value(out, body));
    }
    o.list("attributes", &r.attributes, key_value);
    o.u32("droppedAttributesCount", r.dropped_attributes_count);
    o.u32("flags", r.flags);
    o.hex("traceId", &r.trace_id);
    o.hex("spanId", &r.span_id);
    o.string("eventName", &r.event_name);
    o.end();
}
