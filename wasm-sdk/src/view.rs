//! Read-only views of log records and spans straight from the protobuf bytes, without
//! decoding the batch: the fast path for processors that only decide what to keep. Malformed
//! bytes inside an item read as absent fields; malformed batch structure is an error of the
//! `retain_*view` call.

/// The batch bytes were not valid protobuf where a view looked.
///
/// ```
/// # use weir_wasm_sdk::Logs;
/// let garbage = [0x0a, 0xff, 0xff, 0x01];
/// let e = Logs::from_protobuf(&garbage).retain_view(|_| true).unwrap_err();
/// assert_eq!(e.to_string(), "malformed protobuf in batch");
/// ```
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
pub(crate) enum Value<'a> {
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
#[derive(Debug, Clone)]
pub(crate) struct Fields<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Fields<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Fields { buf, pos: 0 }
    }

    /// Offset of the next field.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], MalformedProtobuf> {
        let end = self.pos.checked_add(n).ok_or(MalformedProtobuf)?;
        let s = self.buf.get(self.pos..end).ok_or(MalformedProtobuf)?;
        self.pos = end;
        Ok(s)
    }

    pub(crate) fn next_field(&mut self) -> Result<Option<(u32, Value<'a>)>, MalformedProtobuf> {
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
pub(crate) fn each_message<'a>(
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
/// `f` gets the resource entry (`ResourceLogs`, ...), the scope entry (`ScopeLogs`, ...) and
/// the item.
pub(crate) fn each_item_in_context<'a>(
    request: &'a [u8],
    f: &mut dyn FnMut(&'a [u8], &'a [u8], &'a [u8]) -> Result<(), MalformedProtobuf>,
) -> Result<(), MalformedProtobuf> {
    each_message(request, 1, &mut |resource| {
        each_message(resource, 2, &mut |scope| {
            each_message(scope, 2, &mut |item| f(resource, scope, item))
        })
    })
}

/// [`each_item_in_context`] without the context.
#[cfg(test)]
pub(crate) fn each_item<'a>(
    request: &'a [u8],
    f: &mut dyn FnMut(&'a [u8]) -> Result<(), MalformedProtobuf>,
) -> Result<(), MalformedProtobuf> {
    each_item_in_context(request, &mut |_, _, item| f(item))
}

/// Last occurrence of `field` in `msg` (protobuf lets a later one win for scalars).
pub(crate) fn field<'a>(msg: &'a [u8], wanted: u32) -> Option<Value<'a>> {
    let mut fields = Fields::new(msg);
    let mut found = None;
    while let Ok(Some((n, v))) = fields.next_field() {
        if n == wanted {
            found = Some(v);
        }
    }
    found
}

pub(crate) fn bytes_field(msg: &[u8], wanted: u32) -> &[u8] {
    match field(msg, wanted) {
        Some(Value::Bytes(b)) => b,
        _ => &[],
    }
}

pub(crate) fn str_field(msg: &[u8], wanted: u32) -> &str {
    std::str::from_utf8(bytes_field(msg, wanted)).unwrap_or("")
}

pub(crate) fn varint_field(msg: &[u8], wanted: u32) -> u64 {
    match field(msg, wanted) {
        Some(Value::Varint(v)) => v,
        _ => 0,
    }
}

pub(crate) fn fixed64_field(msg: &[u8], wanted: u32) -> Option<u64> {
    match field(msg, wanted) {
        Some(Value::Fixed64(v)) => Some(v),
        _ => None,
    }
}

pub(crate) fn fixed32_field(msg: &[u8], wanted: u32) -> u32 {
    match field(msg, wanted) {
        Some(Value::Fixed32(v)) => v,
        _ => 0,
    }
}

/// An attribute or body value read in place (an OTLP `AnyValue`).
///
/// ```
/// # use weir_wasm_sdk::{testing::*, Logs, Message, ValueView};
/// # use weir_wasm_sdk::otlp::logs::v1::LogRecord;
/// let record = LogRecord { attributes: vec![kv("retries", 3_i64)], ..log_record("x", 9) };
/// let bytes = logs_request(vec![], vec![record]).encode_to_vec();
/// Logs::from_protobuf(&bytes).retain_view(|r| {
///     assert_eq!(r.attribute("retries"), Some(ValueView::Int(3)));
///     assert_eq!(r.body(), ValueView::Str("x"));
///     true
/// })?;
/// # Ok::<(), weir_wasm_sdk::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ValueView<'a> {
    /// No value set.
    Empty,
    /// `string_value` (invalid UTF-8 reads as `Empty`).
    Str(&'a str),
    /// `bool_value`.
    Bool(bool),
    /// `int_value`.
    Int(i64),
    /// `double_value`.
    Double(f64),
    /// `bytes_value`.
    Bytes(&'a [u8]),
    /// `array_value`, as its encoded `ArrayValue` bytes (decode with
    /// [`crate::otlp::common::v1::ArrayValue`] when you need it).
    Array(&'a [u8]),
    /// `kvlist_value`, as its encoded `KeyValueList` bytes.
    KvList(&'a [u8]),
}

impl<'a> ValueView<'a> {
    /// Reads an encoded `AnyValue`.
    pub(crate) fn parse(any: &'a [u8]) -> Self {
        let mut fields = Fields::new(any);
        let mut out = ValueView::Empty;
        while let Ok(Some((n, v))) = fields.next_field() {
            out = match (n, v) {
                (1, Value::Bytes(b)) => std::str::from_utf8(b)
                    .map(ValueView::Str)
                    .unwrap_or(ValueView::Empty),
                (2, Value::Varint(v)) => ValueView::Bool(v != 0),
                (3, Value::Varint(v)) => ValueView::Int(v as i64),
                (4, Value::Fixed64(v)) => ValueView::Double(f64::from_bits(v)),
                (5, Value::Bytes(b)) => ValueView::Array(b),
                (6, Value::Bytes(b)) => ValueView::KvList(b),
                (7, Value::Bytes(b)) => ValueView::Bytes(b),
                _ => out,
            };
        }
        out
    }

    /// The string, if this is a string value.
    ///
    /// ```
    /// # use weir_wasm_sdk::ValueView;
    /// assert_eq!(ValueView::Str("a").as_str(), Some("a"));
    /// assert_eq!(ValueView::Int(1).as_str(), None);
    /// ```
    pub fn as_str(&self) -> Option<&'a str> {
        match self {
            ValueView::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The integer, if this is an int value.
    ///
    /// ```
    /// # use weir_wasm_sdk::ValueView;
    /// assert_eq!(ValueView::Int(7).as_i64(), Some(7));
    /// ```
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            ValueView::Int(v) => Some(*v),
            _ => None,
        }
    }

    /// The number as `f64`, if this is a double or an int value.
    ///
    /// ```
    /// # use weir_wasm_sdk::ValueView;
    /// assert_eq!(ValueView::Int(2).as_f64(), Some(2.0));
    /// assert_eq!(ValueView::Double(0.5).as_f64(), Some(0.5));
    /// ```
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            ValueView::Double(v) => Some(*v),
            ValueView::Int(v) => Some(*v as f64),
            _ => None,
        }
    }

    /// The boolean, if this is a bool value.
    ///
    /// ```
    /// # use weir_wasm_sdk::ValueView;
    /// assert_eq!(ValueView::Bool(true).as_bool(), Some(true));
    /// ```
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            ValueView::Bool(v) => Some(*v),
            _ => None,
        }
    }
}

/// The attributes of a message read in place: `(key, value)` in the order they are encoded.
/// Stops at the first malformed entry.
///
/// ```
/// # use weir_wasm_sdk::{testing::*, Logs, Message};
/// # use weir_wasm_sdk::otlp::logs::v1::LogRecord;
/// let record = LogRecord { attributes: vec![kv("a", "1"), kv("b", true)], ..log_record("x", 9) };
/// let bytes = logs_request(vec![], vec![record]).encode_to_vec();
/// Logs::from_protobuf(&bytes).retain_view(|r| {
///     let keys: Vec<&str> = r.attributes().map(|(k, _)| k).collect();
///     assert_eq!(keys, ["a", "b"]);
///     true
/// })?;
/// # Ok::<(), weir_wasm_sdk::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct AttributesView<'a> {
    fields: Fields<'a>,
    wanted: u32,
}

impl<'a> AttributesView<'a> {
    pub(crate) fn new(msg: &'a [u8], wanted: u32) -> Self {
        AttributesView {
            fields: Fields::new(msg),
            wanted,
        }
    }
}

impl<'a> Iterator for AttributesView<'a> {
    type Item = (&'a str, ValueView<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.fields.next_field() {
                Ok(Some((n, Value::Bytes(kv)))) if n == self.wanted => {
                    let key = str_field(kv, 1);
                    return Some((key, ValueView::parse(bytes_field(kv, 2))));
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => return None,
            }
        }
    }
}

/// The value of attribute `key` in a message whose attributes are field `attrs_field`.
pub(crate) fn attribute<'a>(msg: &'a [u8], attrs_field: u32, key: &str) -> Option<ValueView<'a>> {
    let mut fields = Fields::new(msg);
    while let Ok(Some((n, v))) = fields.next_field() {
        if let (true, Value::Bytes(kv)) = (n == attrs_field, v) {
            if bytes_field(kv, 1) == key.as_bytes() {
                return Some(ValueView::parse(bytes_field(kv, 2)));
            }
        }
    }
    None
}

/// The string value of attribute `key` in a message whose attributes are field `attrs_field`.
fn attribute_str<'a>(msg: &'a [u8], attrs_field: u32, key: &str) -> Option<&'a str> {
    attribute(msg, attrs_field, key)?.as_str()
}

/// Attribute accessors shared by every view whose message keeps attributes in one field.
macro_rules! attribute_accessors {
    ($bytes:ident, $field:expr) => {
        /// The string value of attribute `key`, if present and a string.
        pub fn attribute_str(&self, key: &str) -> Option<&'a str> {
            attribute_str(self.$bytes(), $field, key)
        }

        /// The value of attribute `key`, if present (any type).
        pub fn attribute(&self, key: &str) -> Option<ValueView<'a>> {
            attribute(self.$bytes(), $field, key)
        }

        /// All attributes, `(key, value)`, in their encoded order.
        pub fn attributes(&self) -> AttributesView<'a> {
            AttributesView::new(self.$bytes(), $field)
        }
    };
}

/// The resource a record, span or data point came from, read in place. Every item of one
/// resource entry sees the same resource.
///
/// ```
/// # use weir_wasm_sdk::{testing::*, Logs, Message};
/// # use weir_wasm_sdk::otlp::logs::v1::LogRecord;
/// let bytes = logs_request(vec![kv("service.name", "api")], vec![log_record("x", 9)]).encode_to_vec();
/// Logs::from_protobuf(&bytes).retain_view(|r| {
///     assert_eq!(r.resource().attribute_str("service.name"), Some("api"));
///     assert_eq!(r.resource().schema_url(), "");
///     true
/// })?;
/// # Ok::<(), weir_wasm_sdk::Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct ResourceView<'a> {
    /// The `ResourceLogs`/`ResourceSpans`/`ResourceMetrics` entry.
    entry: &'a [u8],
}

impl<'a> ResourceView<'a> {
    pub(crate) fn new(entry: &'a [u8]) -> Self {
        ResourceView { entry }
    }

    fn message(&self) -> &'a [u8] {
        bytes_field(self.entry, 1)
    }

    attribute_accessors!(message, 1);

    /// `dropped_attributes_count` of the resource.
    pub fn dropped_attributes_count(&self) -> u32 {
        varint_field(self.message(), 2) as u32
    }

    /// `schema_url` of the resource entry.
    pub fn schema_url(&self) -> &'a str {
        str_field(self.entry, 3)
    }
}

/// The instrumentation scope of a record, span or metric, read in place.
///
/// ```
/// # use weir_wasm_sdk::{testing::*, Logs, Message};
/// # use weir_wasm_sdk::otlp::logs::v1::LogRecord;
/// let mut batch = logs_request(vec![], vec![log_record("x", 9)]);
/// batch.resource_logs[0].scope_logs[0].scope = Some(scope("io.opentelemetry.jdbc"));
/// let bytes = batch.encode_to_vec();
/// Logs::from_protobuf(&bytes).retain_view(|r| {
///     assert_eq!(r.scope().name(), "io.opentelemetry.jdbc");
///     assert_eq!(r.scope().version(), "");
///     true
/// })?;
/// # Ok::<(), weir_wasm_sdk::Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct ScopeView<'a> {
    /// The `ScopeLogs`/`ScopeSpans`/`ScopeMetrics` entry.
    entry: &'a [u8],
}

impl<'a> ScopeView<'a> {
    pub(crate) fn new(entry: &'a [u8]) -> Self {
        ScopeView { entry }
    }

    fn message(&self) -> &'a [u8] {
        bytes_field(self.entry, 1)
    }

    /// The scope's `name` (often the instrumentation library).
    pub fn name(&self) -> &'a str {
        str_field(self.message(), 1)
    }

    /// The scope's `version`.
    pub fn version(&self) -> &'a str {
        str_field(self.message(), 2)
    }

    attribute_accessors!(message, 3);

    /// `schema_url` of the scope entry.
    pub fn schema_url(&self) -> &'a str {
        str_field(self.entry, 3)
    }
}

/// A log record read in place from the batch bytes. Accessors scan the record's fields;
/// absent fields read as their protobuf default. [`resource`](Self::resource) and
/// [`scope`](Self::scope) give the record's context.
///
/// ```
/// # use weir_wasm_sdk::{testing::*, Logs, Message};
/// # use weir_wasm_sdk::otlp::logs::v1::LogRecord;
/// let record = LogRecord { severity_text: "WARN".into(), time_unix_nano: 5, ..log_record("disk 91%", 13) };
/// let bytes = logs_request(vec![], vec![record]).encode_to_vec();
/// Logs::from_protobuf(&bytes).retain_view(|r| {
///     assert_eq!((r.severity_number(), r.severity_text()), (13, "WARN"));
///     assert_eq!(r.body_str(), Some("disk 91%"));
///     assert_eq!(r.time_unix_nano(), 5);
///     assert!(r.trace_id().is_empty());
///     true
/// })?;
/// # Ok::<(), weir_wasm_sdk::Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct LogRecordView<'a> {
    bytes: &'a [u8],
    resource: &'a [u8],
    scope: &'a [u8],
}

impl<'a> LogRecordView<'a> {
    pub(crate) fn new(resource: &'a [u8], scope: &'a [u8], bytes: &'a [u8]) -> Self {
        LogRecordView {
            bytes,
            resource,
            scope,
        }
    }

    fn record(&self) -> &'a [u8] {
        self.bytes
    }

    /// The resource this record came from.
    pub fn resource(&self) -> ResourceView<'a> {
        ResourceView::new(self.resource)
    }

    /// The instrumentation scope of this record.
    pub fn scope(&self) -> ScopeView<'a> {
        ScopeView::new(self.scope)
    }

    /// `severity_number` (0 when unset).
    pub fn severity_number(&self) -> i32 {
        varint_field(self.bytes, 2) as i32
    }

    /// `severity_text`.
    pub fn severity_text(&self) -> &'a str {
        str_field(self.bytes, 3)
    }

    /// The body when it is a string.
    pub fn body_str(&self) -> Option<&'a str> {
        self.body().as_str()
    }

    /// The body, any type (`ValueView::Empty` when unset).
    pub fn body(&self) -> ValueView<'a> {
        match field(self.bytes, 5) {
            Some(Value::Bytes(b)) => ValueView::parse(b),
            _ => ValueView::Empty,
        }
    }

    attribute_accessors!(record, 6);

    /// `dropped_attributes_count`.
    pub fn dropped_attributes_count(&self) -> u32 {
        varint_field(self.bytes, 7) as u32
    }

    /// `trace_id` (empty when unset).
    pub fn trace_id(&self) -> &'a [u8] {
        bytes_field(self.bytes, 9)
    }

    /// `span_id` (empty when unset).
    pub fn span_id(&self) -> &'a [u8] {
        bytes_field(self.bytes, 10)
    }

    /// `flags` (trace flags; 0 when unset).
    pub fn flags(&self) -> u32 {
        fixed32_field(self.bytes, 8)
    }

    /// `time_unix_nano` (0 when unset).
    pub fn time_unix_nano(&self) -> u64 {
        fixed64_field(self.bytes, 1).unwrap_or(0)
    }

    /// `observed_time_unix_nano` (0 when unset).
    pub fn observed_time_unix_nano(&self) -> u64 {
        fixed64_field(self.bytes, 11).unwrap_or(0)
    }

    /// `event_name` (empty when unset).
    pub fn event_name(&self) -> &'a str {
        str_field(self.bytes, 12)
    }
}

/// A span's status read in place (`Status`).
///
/// ```
/// # use weir_wasm_sdk::{testing::*, Spans, Message};
/// use weir_wasm_sdk::otlp::trace::v1::{span::{Event, Link}, status::StatusCode, Span, Status};
/// let failed = Span {
///     status: Some(Status { code: StatusCode::Error as i32, message: "timeout".into() }),
///     events: vec![Event { name: "exception".into(), attributes: vec![kv("exception.type", "Timeout")], ..Default::default() }],
///     links: vec![Link { trace_id: vec![4; 16], span_id: vec![4; 8], ..Default::default() }],
///     parent_span_id: vec![2; 8],
///     start_time_unix_nano: 1_000,
///     end_time_unix_nano: 9_000,
///     ..span("charge", [1; 16], [3; 8])
/// };
/// let bytes = traces_request(vec![], vec![failed]).encode_to_vec();
/// Spans::from_protobuf(&bytes).retain_view(|s| {
///     assert_eq!((s.status().code(), s.status().message()), (2, "timeout"));
///     true
/// })?;
/// # Ok::<(), weir_wasm_sdk::Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct StatusView<'a> {
    bytes: &'a [u8],
}

impl<'a> StatusView<'a> {
    /// `code`: 0 unset, 1 ok, 2 error (see [`crate::otlp::trace::v1::status::StatusCode`]).
    pub fn code(&self) -> i32 {
        varint_field(self.bytes, 3) as i32
    }

    /// `message` (empty when unset).
    pub fn message(&self) -> &'a str {
        str_field(self.bytes, 2)
    }
}

/// One event of a span, read in place (`Span.Event`).
///
/// ```
/// # use weir_wasm_sdk::{testing::*, Spans, Message};
/// use weir_wasm_sdk::otlp::trace::v1::{span::{Event, Link}, status::StatusCode, Span, Status};
/// let failed = Span {
///     status: Some(Status { code: StatusCode::Error as i32, message: "timeout".into() }),
///     events: vec![Event { name: "exception".into(), attributes: vec![kv("exception.type", "Timeout")], ..Default::default() }],
///     links: vec![Link { trace_id: vec![4; 16], span_id: vec![4; 8], ..Default::default() }],
///     parent_span_id: vec![2; 8],
///     start_time_unix_nano: 1_000,
///     end_time_unix_nano: 9_000,
///     ..span("charge", [1; 16], [3; 8])
/// };
/// let bytes = traces_request(vec![], vec![failed]).encode_to_vec();
/// Spans::from_protobuf(&bytes).retain_view(|s| {
///     let e = s.events().next().unwrap();
///     assert_eq!(e.name(), "exception");
///     assert_eq!(e.attribute_str("exception.type"), Some("Timeout"));
///     true
/// })?;
/// # Ok::<(), weir_wasm_sdk::Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct EventView<'a> {
    bytes: &'a [u8],
}

impl<'a> EventView<'a> {
    fn event(&self) -> &'a [u8] {
        self.bytes
    }

    /// `time_unix_nano`.
    pub fn time_unix_nano(&self) -> u64 {
        fixed64_field(self.bytes, 1).unwrap_or(0)
    }

    /// `name` (e.g. `exception`).
    pub fn name(&self) -> &'a str {
        str_field(self.bytes, 2)
    }

    attribute_accessors!(event, 3);
}

/// One link of a span, read in place (`Span.Link`).
///
/// ```
/// # use weir_wasm_sdk::{testing::*, Spans, Message};
/// use weir_wasm_sdk::otlp::trace::v1::{span::{Event, Link}, status::StatusCode, Span, Status};
/// let failed = Span {
///     status: Some(Status { code: StatusCode::Error as i32, message: "timeout".into() }),
///     events: vec![Event { name: "exception".into(), attributes: vec![kv("exception.type", "Timeout")], ..Default::default() }],
///     links: vec![Link { trace_id: vec![4; 16], span_id: vec![4; 8], ..Default::default() }],
///     parent_span_id: vec![2; 8],
///     start_time_unix_nano: 1_000,
///     end_time_unix_nano: 9_000,
///     ..span("charge", [1; 16], [3; 8])
/// };
/// let bytes = traces_request(vec![], vec![failed]).encode_to_vec();
/// Spans::from_protobuf(&bytes).retain_view(|s| {
///     let l = s.links().next().unwrap();
///     assert_eq!((l.trace_id(), l.span_id()), (&[4u8; 16][..], &[4u8; 8][..]));
///     true
/// })?;
/// # Ok::<(), weir_wasm_sdk::Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct LinkView<'a> {
    bytes: &'a [u8],
}

impl<'a> LinkView<'a> {
    fn link(&self) -> &'a [u8] {
        self.bytes
    }

    /// The linked span's `trace_id`.
    pub fn trace_id(&self) -> &'a [u8] {
        bytes_field(self.bytes, 1)
    }

    /// The linked span's `span_id`.
    pub fn span_id(&self) -> &'a [u8] {
        bytes_field(self.bytes, 2)
    }

    /// `trace_state`.
    pub fn trace_state(&self) -> &'a str {
        str_field(self.bytes, 3)
    }

    attribute_accessors!(link, 4);

    /// `flags`.
    pub fn flags(&self) -> u32 {
        fixed32_field(self.bytes, 6)
    }
}

/// The messages of one repeated field of a message, read in place, in encoded order (events,
/// links). Stops at the first malformed field.
///
/// ```
/// # use weir_wasm_sdk::{testing::*, Spans, Message};
/// use weir_wasm_sdk::otlp::trace::v1::{span::{Event, Link}, status::StatusCode, Span, Status};
/// let failed = Span {
///     status: Some(Status { code: StatusCode::Error as i32, message: "timeout".into() }),
///     events: vec![Event { name: "exception".into(), attributes: vec![kv("exception.type", "Timeout")], ..Default::default() }],
///     links: vec![Link { trace_id: vec![4; 16], span_id: vec![4; 8], ..Default::default() }],
///     parent_span_id: vec![2; 8],
///     start_time_unix_nano: 1_000,
///     end_time_unix_nano: 9_000,
///     ..span("charge", [1; 16], [3; 8])
/// };
/// let bytes = traces_request(vec![], vec![failed]).encode_to_vec();
/// Spans::from_protobuf(&bytes).retain_view(|s| {
///     assert_eq!(s.events().count(), 1);
///     assert_eq!(s.links().count(), 1);
///     true
/// })?;
/// # Ok::<(), weir_wasm_sdk::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct RepeatedView<'a, T> {
    fields: Fields<'a>,
    wanted: u32,
    make: fn(&'a [u8]) -> T,
}

impl<'a, T> Iterator for RepeatedView<'a, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        loop {
            match self.fields.next_field() {
                Ok(Some((n, Value::Bytes(b)))) if n == self.wanted => return Some((self.make)(b)),
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => return None,
            }
        }
    }
}

/// A span read in place from the batch bytes: every field of `Span`, plus its resource and
/// scope.
///
/// ```
/// # use weir_wasm_sdk::{testing::*, Spans, Message};
/// use weir_wasm_sdk::otlp::trace::v1::{span::{Event, Link}, status::StatusCode, Span, Status};
/// let failed = Span {
///     status: Some(Status { code: StatusCode::Error as i32, message: "timeout".into() }),
///     events: vec![Event { name: "exception".into(), attributes: vec![kv("exception.type", "Timeout")], ..Default::default() }],
///     links: vec![Link { trace_id: vec![4; 16], span_id: vec![4; 8], ..Default::default() }],
///     parent_span_id: vec![2; 8],
///     start_time_unix_nano: 1_000,
///     end_time_unix_nano: 9_000,
///     ..span("charge", [1; 16], [3; 8])
/// };
/// let bytes = traces_request(vec![], vec![failed]).encode_to_vec();
/// let mut spans = Spans::from_protobuf(&bytes);
/// spans.retain_view(|s| {
///     assert_eq!(s.name(), "charge");
///     assert_eq!(s.parent_span_id(), &[2; 8]);
///     assert!(!s.is_root());
///     assert_eq!(s.duration_nanos(), 8_000);
///     assert!(s.is_error());
///     // Tail-style rule: keep errors, spans with an exception event, or slow spans.
///     s.is_error() || s.events().any(|e| e.name() == "exception") || s.duration_nanos() > 1_000_000
/// })?;
/// assert_eq!(spans.finish(), weir_wasm_sdk::Answer::Unchanged); // all kept
/// # Ok::<(), weir_wasm_sdk::Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct SpanView<'a> {
    bytes: &'a [u8],
    resource: &'a [u8],
    scope: &'a [u8],
}

impl<'a> SpanView<'a> {
    pub(crate) fn new(resource: &'a [u8], scope: &'a [u8], bytes: &'a [u8]) -> Self {
        SpanView {
            bytes,
            resource,
            scope,
        }
    }

    fn span(&self) -> &'a [u8] {
        self.bytes
    }

    /// The resource this span came from.
    pub fn resource(&self) -> ResourceView<'a> {
        ResourceView::new(self.resource)
    }

    /// The instrumentation scope of this span.
    pub fn scope(&self) -> ScopeView<'a> {
        ScopeView::new(self.scope)
    }

    /// `trace_id` (16 bytes in valid spans; empty when unset).
    pub fn trace_id(&self) -> &'a [u8] {
        bytes_field(self.bytes, 1)
    }

    /// `span_id` (8 bytes in valid spans).
    pub fn span_id(&self) -> &'a [u8] {
        bytes_field(self.bytes, 2)
    }

    /// `trace_state` (W3C tracestate, empty when unset).
    pub fn trace_state(&self) -> &'a str {
        str_field(self.bytes, 3)
    }

    /// `parent_span_id` (empty for a root span).
    pub fn parent_span_id(&self) -> &'a [u8] {
        bytes_field(self.bytes, 4)
    }

    /// Whether the span has no parent (`parent_span_id` empty).
    pub fn is_root(&self) -> bool {
        self.parent_span_id().is_empty()
    }

    /// `flags` (W3C trace flags and the `SpanFlags` bits; 0 when unset).
    pub fn flags(&self) -> u32 {
        fixed32_field(self.bytes, 16)
    }

    /// `name`.
    pub fn name(&self) -> &'a str {
        str_field(self.bytes, 5)
    }

    /// `kind` as its enum number: 0 unspecified, 1 internal, 2 server, 3 client, 4 producer,
    /// 5 consumer (see [`crate::otlp::trace::v1::span::SpanKind`]).
    pub fn kind(&self) -> i32 {
        varint_field(self.bytes, 6) as i32
    }

    /// `start_time_unix_nano` (0 when unset).
    pub fn start_time_unix_nano(&self) -> u64 {
        fixed64_field(self.bytes, 7).unwrap_or(0)
    }

    /// `end_time_unix_nano` (0 when unset).
    pub fn end_time_unix_nano(&self) -> u64 {
        fixed64_field(self.bytes, 8).unwrap_or(0)
    }

    /// End minus start in nanoseconds (0 when the end is before the start or unset).
    pub fn duration_nanos(&self) -> u64 {
        self.end_time_unix_nano()
            .saturating_sub(self.start_time_unix_nano())
    }

    attribute_accessors!(span, 9);

    /// `dropped_attributes_count`.
    pub fn dropped_attributes_count(&self) -> u32 {
        varint_field(self.bytes, 10) as u32
    }

    /// The span's events in encoded order.
    pub fn events(&self) -> RepeatedView<'a, EventView<'a>> {
        RepeatedView {
            fields: Fields::new(self.bytes),
            wanted: 11,
            make: |bytes| EventView { bytes },
        }
    }

    /// `dropped_events_count`.
    pub fn dropped_events_count(&self) -> u32 {
        varint_field(self.bytes, 12) as u32
    }

    /// The span's links in encoded order.
    pub fn links(&self) -> RepeatedView<'a, LinkView<'a>> {
        RepeatedView {
            fields: Fields::new(self.bytes),
            wanted: 13,
            make: |bytes| LinkView { bytes },
        }
    }

    /// `dropped_links_count`.
    pub fn dropped_links_count(&self) -> u32 {
        varint_field(self.bytes, 14) as u32
    }

    /// `status` (code 0 and an empty message when unset).
    pub fn status(&self) -> StatusView<'a> {
        StatusView {
            bytes: bytes_field(self.bytes, 15),
        }
    }

    /// Whether the status code is `ERROR` (2).
    pub fn is_error(&self) -> bool {
        self.status().code() == 2
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
            views.push(SpanView::new(&[], &[], item));
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
