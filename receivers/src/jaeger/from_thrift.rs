//! The `jaeger.thrift` structs read from a [`thrift::Value`] tree (field ids and required
//! fields as the IDL declares them; unknown fields are skipped). Errors name the path, e.g.
//! `Batch.spans[2].tags[0].vType: missing (required)`.

use super::convert::{Batch, JaegerSpan, Log, Process, SpanRef, Tag, TagValue};
use super::thrift::{MessageHeader, Protocol, Reader, Value};

type Fields = [(i16, Value)];

fn field(fields: &Fields, id: i16) -> Option<&Value> {
    fields.iter().rev().find(|(i, _)| *i == id).map(|(_, v)| v)
}

fn type_error(path: &str, want: &str, got: &Value) -> String {
    let got = match got {
        Value::Bool(_) => "bool",
        Value::Byte(_) => "byte",
        Value::I16(_) => "i16",
        Value::I32(_) => "i32",
        Value::I64(_) => "i64",
        Value::Double(_) => "double",
        Value::Binary(_) => "string",
        Value::Struct(_) => "struct",
        Value::List(_) => "list",
        Value::Map(_) => "map",
    };
    format!("{path}: expected {want}, got {got}")
}

fn required<'a>(fields: &'a Fields, id: i16, path: &str) -> Result<&'a Value, String> {
    field(fields, id).ok_or_else(|| format!("{path}: missing (required)"))
}

fn i64_of(v: &Value, path: &str) -> Result<i64, String> {
    match v {
        Value::I64(i) => Ok(*i),
        other => Err(type_error(path, "i64", other)),
    }
}

fn i32_of(v: &Value, path: &str) -> Result<i32, String> {
    match v {
        Value::I32(i) => Ok(*i),
        other => Err(type_error(path, "i32", other)),
    }
}

fn string_of(v: &Value, path: &str) -> Result<String, String> {
    match v {
        Value::Binary(b) => Ok(String::from_utf8_lossy(b).into_owned()),
        other => Err(type_error(path, "string", other)),
    }
}

fn struct_of<'a>(v: &'a Value, path: &str) -> Result<&'a Fields, String> {
    match v {
        Value::Struct(f) => Ok(f),
        other => Err(type_error(path, "struct", other)),
    }
}

fn list_of<'a>(v: &'a Value, path: &str) -> Result<&'a [Value], String> {
    match v {
        Value::List(l) => Ok(l),
        other => Err(type_error(path, "list", other)),
    }
}

fn req_i64(f: &Fields, id: i16, path: &str) -> Result<i64, String> {
    i64_of(required(f, id, path)?, path)
}

fn tag(v: &Value, path: &str) -> Result<Tag, String> {
    let f = struct_of(v, path)?;
    let key = string_of(
        required(f, 1, &format!("{path}.key"))?,
        &format!("{path}.key"),
    )?;
    let vt = i32_of(
        required(f, 2, &format!("{path}.vType"))?,
        &format!("{path}.vType"),
    )?;
    let value = match vt {
        0 => TagValue::Str(match field(f, 3) {
            Some(v) => string_of(v, &format!("{path}.vStr"))?,
            None => String::new(),
        }),
        1 => TagValue::Double(match field(f, 4) {
            Some(Value::Double(d)) => *d,
            Some(other) => return Err(type_error(&format!("{path}.vDouble"), "double", other)),
            None => 0.0,
        }),
        2 => TagValue::Bool(match field(f, 5) {
            Some(Value::Bool(b)) => *b,
            Some(other) => return Err(type_error(&format!("{path}.vBool"), "bool", other)),
            None => false,
        }),
        3 => TagValue::Long(match field(f, 6) {
            Some(v) => i64_of(v, &format!("{path}.vLong"))?,
            None => 0,
        }),
        4 => TagValue::Binary(match field(f, 7) {
            Some(Value::Binary(b)) => b.clone(),
            Some(other) => return Err(type_error(&format!("{path}.vBinary"), "binary", other)),
            None => Vec::new(),
        }),
        other => TagValue::Unknown(other),
    };
    Ok(Tag { key, value })
}

fn tags(v: Option<&Value>, path: &str) -> Result<Vec<Tag>, String> {
    let Some(v) = v else { return Ok(Vec::new()) };
    list_of(v, path)?
        .iter()
        .enumerate()
        .map(|(i, t)| tag(t, &format!("{path}[{i}]")))
        .collect()
}

fn ids(low: i64, high: i64) -> [u8; 16] {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&high.to_be_bytes());
    id[8..].copy_from_slice(&low.to_be_bytes());
    id
}

fn micros_to_ns(us: i64) -> u64 {
    // As the Collector: the microseconds taken as unsigned.
    (us as u64).wrapping_mul(1000)
}

fn span(v: &Value, path: &str) -> Result<JaegerSpan, String> {
    let f = struct_of(v, path)?;
    let p = |name: &str| format!("{path}.{name}");
    let trace_low = req_i64(f, 1, &p("traceIdLow"))?;
    let trace_high = req_i64(f, 2, &p("traceIdHigh"))?;
    let span_id = req_i64(f, 3, &p("spanId"))?;
    let parent = req_i64(f, 4, &p("parentSpanId"))?;
    let operation_name = string_of(required(f, 5, &p("operationName"))?, &p("operationName"))?;
    let mut references = Vec::new();
    if let Some(refs) = field(f, 6) {
        for (i, r) in list_of(refs, &p("references"))?.iter().enumerate() {
            let rp = format!("{path}.references[{i}]");
            let rf = struct_of(r, &rp)?;
            references.push(SpanRef {
                ref_type: i32_of(
                    required(rf, 1, &format!("{rp}.refType"))?,
                    &format!("{rp}.refType"),
                )?,
                trace_id: ids(
                    req_i64(rf, 2, &format!("{rp}.traceIdLow"))?,
                    req_i64(rf, 3, &format!("{rp}.traceIdHigh"))?,
                ),
                span_id: req_i64(rf, 4, &format!("{rp}.spanId"))?.to_be_bytes(),
            });
        }
    }
    let flags = i32_of(required(f, 7, &p("flags"))?, &p("flags"))?;
    let start = req_i64(f, 8, &p("startTime"))?;
    let duration = req_i64(f, 9, &p("duration"))?;
    let mut logs = Vec::new();
    if let Some(l) = field(f, 11) {
        for (i, log) in list_of(l, &p("logs"))?.iter().enumerate() {
            let lp = format!("{path}.logs[{i}]");
            let lf = struct_of(log, &lp)?;
            logs.push(Log {
                time_ns: micros_to_ns(req_i64(lf, 1, &format!("{lp}.timestamp"))?),
                fields: tags(
                    Some(required(lf, 2, &format!("{lp}.fields"))?),
                    &format!("{lp}.fields"),
                )?,
            });
        }
    }
    Ok(JaegerSpan {
        trace_id: ids(trace_low, trace_high),
        span_id: span_id.to_be_bytes(),
        parent_span_id: parent.to_be_bytes(),
        operation_name,
        references,
        flags: flags as u32,
        start_ns: micros_to_ns(start),
        duration_ns: micros_to_ns(duration),
        tags: tags(field(f, 10), &p("tags"))?,
        logs,
        process: None,
    })
}

/// Reads a `Batch` struct.
pub fn batch(fields: &Fields) -> Result<Batch, String> {
    let pf = struct_of(required(fields, 1, "Batch.process")?, "Batch.process")?;
    let process = Process {
        service_name: string_of(
            required(pf, 1, "Batch.process.serviceName")?,
            "Batch.process.serviceName",
        )?,
        tags: match field(pf, 2) {
            Some(t) => Some(tags(Some(t), "Batch.process.tags")?),
            None => None,
        },
    };
    let spans = list_of(required(fields, 2, "Batch.spans")?, "Batch.spans")?
        .iter()
        .enumerate()
        .map(|(i, s)| span(s, &format!("Batch.spans[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Batch {
        process: Some(process),
        spans,
    })
}

/// Decodes a `Batch` written with TBinaryProtocol (the body of `POST /api/traces`).
pub fn decode_binary_batch(body: &[u8]) -> Result<Batch, String> {
    let mut r = Reader::new(body, Protocol::Binary);
    let fields = r
        .read_struct(0)
        .map_err(|e| format!("invalid Thrift (binary) jaeger.Batch: {e}"))?;
    batch(&fields).map_err(|e| format!("invalid jaeger.Batch: {e}"))
}

/// Decodes one agent UDP packet (an `Agent.emitBatch` oneway call) in `protocol`.
pub fn decode_agent_packet(packet: &[u8], protocol: Protocol) -> Result<Batch, String> {
    let name = match protocol {
        Protocol::Binary => "binary",
        Protocol::Compact => "compact",
    };
    let mut r = Reader::new(packet, protocol);
    let header: MessageHeader = r
        .message_header()
        .map_err(|e| format!("invalid Thrift ({name}) message: {e}"))?;
    if header.name != "emitBatch" {
        return Err(format!(
            "unsupported agent call {:?} (only emitBatch is taken)",
            header.name
        ));
    }
    let args = r
        .read_struct(0)
        .map_err(|e| format!("invalid Thrift ({name}) emitBatch arguments: {e}"))?;
    let b = required(&args, 1, "emitBatch.batch")
        .and_then(|b| struct_of(b, "emitBatch.batch"))
        .map_err(|e| format!("invalid emitBatch call: {e}"))?;
    batch(b).map_err(|e| format!("invalid jaeger.Batch: {e}"))
}
