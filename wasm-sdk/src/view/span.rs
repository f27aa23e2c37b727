//! [`SpanView`]: one span read in place, with its status, events and links
//! ([`StatusView`], [`EventView`], [`LinkView`], over a [`RepeatedView`]).

use super::common::{attribute, attribute_str, AttributesView, ResourceView, ScopeView, ValueView};
use super::{bytes_field, fixed32_field, fixed64_field, str_field, varint_field, Fields, Value};

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
