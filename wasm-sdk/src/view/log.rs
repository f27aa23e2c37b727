//! [`LogRecordView`]: one log record read in place.

use super::common::{attribute, attribute_str, AttributesView, ResourceView, ScopeView, ValueView};
use super::{bytes_field, field, fixed32_field, fixed64_field, str_field, varint_field, Value};

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
