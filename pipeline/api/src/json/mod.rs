//! OTLP/JSON: the JSON form of the OTLP export requests, as sent to and by OTLP/HTTP with
//! `Content-Type: application/json` (the "OTLP/HTTP JSON Protobuf Encoding" of the OTLP
//! specification).
//!
//! ```
//! use weir_api::json;
//!
//! let body = br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{
//!     "timeUnixNano":"1700000000000000000",
//!     "severityNumber":"SEVERITY_NUMBER_INFO",
//!     "traceId":"5B8EFFF798038103D269B633813FC60C",
//!     "body":{"stringValue":"hello"}}]}]}]}"#;
//! let request = json::decode_logs(body)?;
//! let record = &request.resource_logs[0].scope_logs[0].log_records[0];
//! assert_eq!(record.severity_number, 9);
//! assert_eq!(record.trace_id.len(), 16);
//!
//! let encoded = json::encode_logs(&request);
//! assert_eq!(json::decode_logs(&encoded)?, request);
//! # Ok::<(), json::JsonError>(())
//! ```
//!
//! Decoding is lenient in the ways the OTLP/JSON rules ask receivers to be: field names in
//! lowerCamelCase or as the proto (snake_case) names; trace and span ids as hex in either
//! case (`""` for none); enums as integers or value names (`"SPAN_KIND_SERVER"`); 64-bit
//! integers as numbers or decimal strings; doubles as numbers or `"NaN"`, `"Infinity"`,
//! `"-Infinity"`; bytes as standard or URL-safe base64; unknown fields ignored; `null` for
//! absent. It is strict where leniency would hide a broken sender: ids must have exactly 32
//! (trace) or 16 (span) hex digits, numbers must fit their field's type, an enum name must
//! exist, two members of one oneof (e.g. `stringValue` and `intValue`) and `null` list
//! elements are errors. An error names the JSON path of the offending value ([`JsonError`]).
//! Nesting deeper than 128 levels is refused as invalid JSON, so input cannot exhaust the
//! stack.
//!
//! Encoding writes what the OTLP/JSON rules prescribe: lowerCamelCase names, hex ids,
//! enums as integers, 64-bit integers as decimal strings, bytes as base64, fields holding
//! default values left out. It writes straight into a byte buffer.

mod decode;
mod encode;
mod error;

use std::io;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

use crate::{Payload, Signal};

pub use error::{JsonError, Problem};

/// Decodes an OTLP/JSON logs export request (the body of `POST /v1/logs`).
pub fn decode_logs(body: &[u8]) -> Result<ExportLogsServiceRequest, JsonError> {
    decode::logs_request(body)
}

/// Decodes an OTLP/JSON traces export request (the body of `POST /v1/traces`).
pub fn decode_traces(body: &[u8]) -> Result<ExportTraceServiceRequest, JsonError> {
    decode::traces_request(body)
}

/// Decodes an OTLP/JSON metrics export request (the body of `POST /v1/metrics`).
pub fn decode_metrics(body: &[u8]) -> Result<ExportMetricsServiceRequest, JsonError> {
    decode::metrics_request(body)
}

/// Decodes an OTLP/JSON export request of `signal`.
pub fn decode(signal: Signal, body: &[u8]) -> Result<Payload, JsonError> {
    match signal {
        Signal::Logs => decode_logs(body).map(Payload::Logs),
        Signal::Traces => decode_traces(body).map(Payload::Traces),
        Signal::Metrics => decode_metrics(body).map(Payload::Metrics),
    }
}

/// Encodes a logs export request as OTLP/JSON.
pub fn encode_logs(request: &ExportLogsServiceRequest) -> Vec<u8> {
    let mut out = Vec::with_capacity(INITIAL_CAPACITY);
    encode::logs_request(&mut out, request);
    out
}

/// Encodes a traces export request as OTLP/JSON.
pub fn encode_traces(request: &ExportTraceServiceRequest) -> Vec<u8> {
    let mut out = Vec::with_capacity(INITIAL_CAPACITY);
    encode::traces_request(&mut out, request);
    out
}

/// Encodes a metrics export request as OTLP/JSON.
pub fn encode_metrics(request: &ExportMetricsServiceRequest) -> Vec<u8> {
    let mut out = Vec::with_capacity(INITIAL_CAPACITY);
    encode::metrics_request(&mut out, request);
    out
}

/// Encodes a payload as OTLP/JSON (one JSON object, no trailing newline).
pub fn encode(payload: &Payload) -> Vec<u8> {
    let mut out = Vec::with_capacity(INITIAL_CAPACITY);
    encode_into(payload, &mut out);
    out
}

/// Appends the OTLP/JSON encoding of a payload to `out` (e.g. one line of a JSON-lines file:
/// the encoding never contains a raw newline).
pub fn encode_into(payload: &Payload, out: &mut Vec<u8>) {
    match payload {
        Payload::Logs(request) => encode::logs_request(out, request),
        Payload::Traces(request) => encode::traces_request(out, request),
        Payload::Metrics(request) => encode::metrics_request(out, request),
    }
}

/// Writes the OTLP/JSON encoding of a payload to `writer` (encoded in memory first, then
/// written with one `write_all`).
pub fn encode_to_writer(payload: &Payload, mut writer: impl io::Write) -> io::Result<()> {
    writer.write_all(&encode(payload))
}

/// First allocation of an encoding buffer; it grows as needed.
const INITIAL_CAPACITY: usize = 1024;
