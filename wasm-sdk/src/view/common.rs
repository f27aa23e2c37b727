//! Views shared by logs and spans: attribute values ([`ValueView`]), attribute lists
//! ([`AttributesView`]) and lookup by key, and the resource and scope of an item.

use super::{bytes_field, str_field, varint_field, Fields, Value};

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
pub(super) fn attribute_str<'a>(msg: &'a [u8], attrs_field: u32, key: &str) -> Option<&'a str> {
    attribute(msg, attrs_field, key)?.as_str()
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
