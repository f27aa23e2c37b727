//! Read-only views of log records and spans straight from the protobuf bytes, without
//! decoding the batch: the fast path for processors that only decide what to keep.

/// The batch bytes were not valid protobuf where a view looked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MalformedProtobuf;

impl std::fmt::Display for MalformedProtobuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("malformed protobuf in batch")
    }
}

impl std::error::Error for MalformedProtobuf {}

/// One field of a protobuf message.
#[derive(Debug, Clone, Copy)]
enum Value<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32(u32),
}

fn varint(buf: &[u8], pos: &mut usize) -> Result<u64, MalformedProtobuf> {
    let mut out = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos).ok_or(MalformedProtobuf)?;
        *pos += 1;
        out |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Ok(out);
        }
    }
    Err(MalformedProtobuf)
}

/// Iterates over the fields of one message: (field number, value).
struct Fields<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Fields<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Fields { buf, pos: 0 }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], MalformedProtobuf> {
        let end = self.pos.checked_add(n).ok_or(MalformedProtobuf)?;
        let s = self.buf.get(self.pos..end).ok_or(MalformedProtobuf)?;
        self.pos = end;
        Ok(s)
    }

    fn next_field(&mut self) -> Result<Option<(u32, Value<'a>)>, MalformedProtobuf> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let key = varint(self.buf, &mut self.pos)?;
        let field = u32::try_from(key >> 3).map_err(|_| MalformedProtobuf)?;
        let value = match key & 7 {
            0 => Value::Varint(varint(self.buf, &mut self.pos)?),
            1 => {
                let b = self.take(8)?;
                Value::Fixed64(u64::from_le_bytes(
                    b.try_into().map_err(|_| MalformedProtobuf)?,
                ))
            }
            2 => {
                let n = varint(self.buf, &mut self.pos)?;
                let n = usize::try_from(n).map_err(|_| MalformedProtobuf)?;
                Value::Bytes(self.take(n)?)
            }
            5 => {
                let b = self.take(4)?;
                Value::Fixed32(u32::from_le_bytes(
                    b.try_into().map_err(|_| MalformedProtobuf)?,
                ))
            }
            _ => return Err(MalformedProtobuf),
        };
        Ok(Some((field, value)))
    }
}

/// Calls `f` with the bytes of every occurrence of length-delimited `field` in `msg`.
fn each_message<'a>(
    msg: &'a [u8],
    field: u32,
    f: &mut dyn FnMut(&'a [u8]) -> Result<(), MalformedProtobuf>,
) -> Result<(), MalformedProtobuf> {
    let mut fields = Fields::new(msg);
    while let Some((n, v)) = fields.next_field()? {
        if n == field {
            match v {
                Value::Bytes(b) => f(b)?,
                _ => return Err(MalformedProtobuf),
            }
        }
    }
    Ok(())
}

/// Calls `f` for every item of an export request in canonical order: field 1 of the request
/// (resource entries), their field 2 (scope entries), and those entries' field 2 (items).
pub(crate) fn each_item<'a>(
    request: &'a [u8],
    f: &mut dyn FnMut(&'a [u8]) -> Result<(), MalformedProtobuf>,
) -> Result<(), MalformedProtobuf> {
    each_message(request, 1, &mut |resource| {
        each_message(resource, 2, &mut |scope| each_message(scope, 2, f))
    })
}

/// First occurrence of `field` in `msg` (protobuf lets a later one win for scalars; OTLP
/// encoders write each once).
fn field<'a>(msg: &'a [u8], wanted: u32) -> Option<Value<'a>> {
    let mut fields = Fields::new(msg);
    let mut found = None;
    while let Ok(Some((n, v))) = fields.next_field() {
        if n == wanted {
            found = Some(v);
        }
    }
    found
}

fn bytes_field(msg: &[u8], wanted: u32) -> &[u8] {
    match field(msg, wanted) {
        Some(Value::Bytes(b)) => b,
        _ => &[],
    }
}

/// The string in an `AnyValue`, if it holds one.
fn any_value_str(any: &[u8]) -> Option<&str> {
    match field(any, 1) {
        Some(Value::Bytes(b)) => std::str::from_utf8(b).ok(),
        _ => None,
    }
}

/// The string value of attribute `key` in a message whose attributes are field `attrs_field`.
fn attribute_str<'a>(msg: &'a [u8], attrs_field: u32, key: &str) -> Option<&'a str> {
    let mut fields = Fields::new(msg);
    while let Ok(Some((n, v))) = fields.next_field() {
        if let (true, Value::Bytes(kv)) = (n == attrs_field, v) {
            if bytes_field(kv, 1) == key.as_bytes() {
                return any_value_str(bytes_field(kv, 2));
            }
        }
    }
    None
}

/// A log record read in place from the batch bytes. Accessors scan the record's fields;
/// absent fields read as their protobuf default.
#[derive(Debug, Clone, Copy)]
pub struct LogRecordView<'a> {
    bytes: &'a [u8],
}

impl<'a> LogRecordView<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        LogRecordView { bytes }
    }

    /// `severity_number` (0 when unset).
    pub fn severity_number(&self) -> i32 {
        match field(self.bytes, 2) {
            Some(Value::Varint(v)) => v as i32,
            _ => 0,
        }
    }

    /// `severity_text`.
    pub fn severity_text(&self) -> &'a str {
        std::str::from_utf8(bytes_field(self.bytes, 3)).unwrap_or("")
    }

    /// The body when it is a string.
    pub fn body_str(&self) -> Option<&'a str> {
        any_value_str(bytes_field(self.bytes, 5))
    }

    /// The string value of attribute `key`, if present and a string.
    pub fn attribute_str(&self, key: &str) -> Option<&'a str> {
        attribute_str(self.bytes, 6, key)
    }

    /// `trace_id` (empty when unset).
    pub fn trace_id(&self) -> &'a [u8] {
        bytes_field(self.bytes, 9)
    }

    /// `flags` (trace flags; 0 when unset).
    pub fn flags(&self) -> u32 {
        match field(self.bytes, 8) {
            Some(Value::Fixed32(v)) => v,
            _ => 0,
        }
    }

    /// `time_unix_nano` (0 when unset).
    pub fn time_unix_nano(&self) -> u64 {
        match field(self.bytes, 1) {
            Some(Value::Fixed64(v)) => v,
            _ => 0,
        }
    }
}

/// A span read in place from the batch bytes.
#[derive(Debug, Clone, Copy)]
pub struct SpanView<'a> {
    bytes: &'a [u8],
}

impl<'a> SpanView<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        SpanView { bytes }
    }

    /// `trace_id` (16 bytes in valid spans; empty when unset).
    pub fn trace_id(&self) -> &'a [u8] {
        bytes_field(self.bytes, 1)
    }

    /// `span_id`.
    pub fn span_id(&self) -> &'a [u8] {
        bytes_field(self.bytes, 2)
    }

    /// `name`.
    pub fn name(&self) -> &'a str {
        std::str::from_utf8(bytes_field(self.bytes, 5)).unwrap_or("")
    }

    /// `kind` as its enum number.
    pub fn kind(&self) -> i32 {
        match field(self.bytes, 6) {
            Some(Value::Varint(v)) => v as i32,
            _ => 0,
        }
    }

    /// The string value of attribute `key`, if present and a string.
    pub fn attribute_str(&self, key: &str) -> Option<&'a str> {
        attribute_str(self.bytes, 9, key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otlp::collector::trace::v1::ExportTraceServiceRequest;
    use crate::otlp::common::v1::{any_value, AnyValue, KeyValue};
    use crate::otlp::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use prost::Message;

    #[test]
    fn span_view_reads_the_same_fields_prost_decodes() {
        let span = Span {
            trace_id: vec![9; 16],
            span_id: vec![3; 8],
            name: "GET /x".into(),
            kind: 2,
            attributes: vec![KeyValue {
                key: "http.route".into(),
                value: Some(AnyValue {
                    value: Some(any_value::Value::StringValue("/x".into())),
                }),
                ..Default::default()
            }],
            ..Default::default()
        };
        let bytes = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: vec![span.clone(), Span::default()],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
        .encode_to_vec();
        let mut views = Vec::new();
        each_item(&bytes, &mut |item| {
            views.push(SpanView::new(item));
            Ok(())
        })
        .unwrap();
        assert_eq!(views.len(), 2);
        assert_eq!(views[0].trace_id(), &span.trace_id[..]);
        assert_eq!(views[0].span_id(), &span.span_id[..]);
        assert_eq!(views[0].name(), "GET /x");
        assert_eq!(views[0].kind(), 2);
        assert_eq!(views[0].attribute_str("http.route"), Some("/x"));
        assert_eq!(views[0].attribute_str("missing"), None);
        assert_eq!(views[1].name(), "");
        assert!(views[1].trace_id().is_empty());
    }

    #[test]
    fn truncated_input_is_malformed() {
        let mut pos = 0;
        assert_eq!(varint(&[0x80, 0x80], &mut pos), Err(MalformedProtobuf));
        let mut n = 0;
        assert_eq!(
            each_item(&[0x0a, 0x05, 0x12], &mut |_| {
                n += 1;
                Ok(())
            }),
            Err(MalformedProtobuf)
        );
    }
}
