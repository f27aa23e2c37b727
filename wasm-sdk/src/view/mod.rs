//! Read-only views of log records and spans straight from the protobuf bytes, without
//! decoding the batch: the fast path for processors that only decide what to keep. Malformed
//! bytes inside an item read as absent fields; malformed batch structure is an error of the
//! `retain_*view` call.

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

mod common;
mod log;
mod span;
#[cfg(test)]
mod tests;

pub(crate) use common::attribute;
pub use common::{AttributesView, ResourceView, ScopeView, ValueView};
pub use log::LogRecordView;
pub use span::{EventView, LinkView, RepeatedView, SpanView, StatusView};

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
