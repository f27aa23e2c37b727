//! A shallow protobuf walk over OTLP export requests: counts log records / spans and reads
//! the first item's send stamp without decoding the message.

/// What the sink learns from one export request.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ScanResult {
    /// Log records or spans in the request.
    pub items: u64,
    /// The generator's send stamp (unix ns) from the first item, when present.
    pub first_stamp: Option<u64>,
}

/// Errors are not expected from a well-behaved peer; a truncated message stops the walk.
#[derive(Debug, PartialEq, Eq)]
pub struct Truncated;

fn varint(buf: &[u8], pos: &mut usize) -> Result<u64, Truncated> {
    let mut v = 0u64;
    let mut shift = 0;
    loop {
        let b = *buf.get(*pos).ok_or(Truncated)?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
        shift += 7;
        if shift > 63 {
            return Err(Truncated);
        }
    }
}

/// Calls `f(field, payload)` for each length-delimited field of `buf`; returns the value of
/// the fixed64 field `fixed_field` if met.
fn walk<'a>(
    buf: &'a [u8],
    fixed_field: u64,
    mut f: impl FnMut(u64, &'a [u8]) -> Result<(), Truncated>,
) -> Result<Option<u64>, Truncated> {
    let mut pos = 0;
    let mut fixed = None;
    while pos < buf.len() {
        let key = varint(buf, &mut pos)?;
        let (field, wire) = (key >> 3, key & 7);
        match wire {
            0 => {
                varint(buf, &mut pos)?;
            }
            1 => {
                let end = pos + 8;
                let bytes = buf.get(pos..end).ok_or(Truncated)?;
                if field == fixed_field {
                    let mut a = [0u8; 8];
                    a.copy_from_slice(bytes);
                    fixed = Some(u64::from_le_bytes(a));
                }
                pos = end;
            }
            2 => {
                let len = varint(buf, &mut pos)? as usize;
                let end = pos.checked_add(len).ok_or(Truncated)?;
                let payload = buf.get(pos..end).ok_or(Truncated)?;
                f(field, payload)?;
                pos = end;
            }
            5 => pos += 4,
            _ => return Err(Truncated),
        }
    }
    Ok(fixed)
}

/// Counts the items of an export request (logs: records; traces: spans) and reads the stamp
/// of the first one (logs: `observed_time_unix_nano`, field 11; spans:
/// `start_time_unix_nano`, field 7).
pub fn scan(buf: &[u8], traces: bool) -> Result<ScanResult, Truncated> {
    let stamp_field = if traces { 7 } else { 11 };
    let mut r = ScanResult::default();
    // request.resource_* (1) -> scope_* (2) -> items (2)
    walk(buf, 0, |f, resource| {
        if f != 1 {
            return Ok(());
        }
        walk(resource, 0, |f, scope| {
            if f != 2 {
                return Ok(());
            }
            walk(scope, 0, |f, item| {
                if f != 2 {
                    return Ok(());
                }
                r.items += 1;
                if r.first_stamp.is_none() {
                    let stamp = walk(item, stamp_field, |_, _| Ok(()))?;
                    r.first_stamp = stamp.filter(|s| *s > 0);
                }
                Ok(())
            })
            .map(|_| ())
        })
        .map(|_| ())
    })?;
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::{Generator, Mix};
    use prost::Message;
    use weir_api::otlp::collector::logs::v1::ExportLogsServiceRequest;
    use weir_api::otlp::collector::trace::v1::ExportTraceServiceRequest;

    #[test]
    fn counts_match_a_full_decode() {
        let mut g = Generator::new(7, Mix::default());
        for n in [1, 10, 1000] {
            let logs = g.logs(n);
            let bytes = logs.encode_to_vec();
            let decoded = ExportLogsServiceRequest::decode(bytes.as_slice()).unwrap();
            let expect: usize = decoded
                .resource_logs
                .iter()
                .flat_map(|r| &r.scope_logs)
                .map(|s| s.log_records.len())
                .sum();
            assert_eq!(scan(&bytes, false).unwrap().items, expect as u64);
            let spans = g.spans(n).encode_to_vec();
            let decoded = ExportTraceServiceRequest::decode(spans.as_slice()).unwrap();
            let expect: usize = decoded
                .resource_spans
                .iter()
                .flat_map(|r| &r.scope_spans)
                .map(|s| s.spans.len())
                .sum();
            assert_eq!(scan(&spans, true).unwrap().items, expect as u64);
        }
    }

    #[test]
    fn truncated_is_reported() {
        let mut g = Generator::new(1, Mix::default());
        let bytes = g.logs(5).encode_to_vec();
        assert_eq!(scan(&bytes[..bytes.len() - 3], false), Err(Truncated));
    }
}
