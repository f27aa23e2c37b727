//! Logs messages.

use super::tree::JsonValue;
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs, SeverityNumber};

use super::{
    any_value, enumeration, fields, hex_id, key_value, list, resource, scope, string, uint32,
    uint64, SPAN_ID_DIGITS, TRACE_ID_DIGITS,
};
use crate::json::error::{JsonError, Path};

pub(super) fn resource_logs(
    value: &JsonValue<'_>,
    path: &Path<'_>,
) -> Result<ResourceLogs, JsonError> {
    let mut rl = ResourceLogs::default();
    for (key, value) in fields(value, path)? {
        let path = path.field(key);
        match key {
            "resource" => rl.resource = Some(resource(value, &path)?),
            "scopeLogs" | "scope_logs" => rl.scope_logs = list(value, &path, scope_logs)?,
            "schemaUrl" | "schema_url" => rl.schema_url = string(value, &path)?,
            _ => {}
        }
    }
    Ok(rl)
}

fn scope_logs(value: &JsonValue<'_>, path: &Path<'_>) -> Result<ScopeLogs, JsonError> {
    let mut sl = ScopeLogs::default();
    for (key, value) in fields(value, path)? {
        let path = path.field(key);
        match key {
            "scope" => sl.scope = Some(scope(value, &path)?),
            "logRecords" | "log_records" => sl.log_records = list(value, &path, log_record)?,
            "schemaUrl" | "schema_url" => sl.schema_url = string(value, &path)?,
            _ => {}
        }
    }
    Ok(sl)
}

fn log_record(value: &JsonValue<'_>, path: &Path<'_>) -> Result<LogRecord, JsonError> {
    let mut r = LogRecord::default();
    for (key, value) in fields(value, path)? {
        let path = path.field(key);
        let path = &path;
        match key {
            "timeUnixNano" | "time_unix_nano" => r.time_unix_nano = uint64(value, path)?,
            "observedTimeUnixNano" | "observed_time_unix_nano" => {
                r.observed_time_unix_nano = uint64(value, path)?
            }
            "severityNumber" | "severity_number" => {
                r.severity_number = enumeration(value, path, "SeverityNumber", |name| {
                    SeverityNumber::from_str_name(name).map(|n| n as i32)
                })?
            }
            "severityText" | "severity_text" => r.severity_text = string(value, path)?,
            "body" => r.body = Some(any_value(value, path)?),
            "attributes" => r.attributes = list(value, path, key_value)?,
            "droppedAttributesCount" | "dropped_attributes_count" => {
                r.dropped_attributes_count = uint32(value, path)?
            }
            "flags" => r.flags = uint32(value, path)?,
            "traceId" | "trace_id" => r.trace_id = hex_id(value, path, TRACE_ID_DIGITS)?,
            "spanId" | "span_id" => r.span_id = hex_id(value, path, SPAN_ID_DIGITS)?,
            "eventName" | "event_name" => r.event_name = string(value, path)?,
            _ => {}
        }
    }
    Ok(r)
}
