//! Removing items from an encoded OTLP logs or traces export request by copying the byte
//! ranges of the items that stay, instead of encoding the decoded request again.
//!
//! Both requests share one shape: field 1 of the request is a resource entry, field 2 of a
//! resource entry is a scope entry, field 2 of a scope entry is an item (log record or
//! span). Everything else at those three levels is copied as it is. A scope entry left with
//! no items is left out, and so is a resource entry left with no scope entries, which is
//! what [`Payload::prune_empty`](crate::Payload::prune_empty) does to the decoded form; the
//! result decodes to the same request as dropping the items from the decoded request and
//! encoding it.

use std::ops::Range;

use crate::wire_check::varint;

/// Field number of the resource entries in a request, and of the items in a scope entry.
const RESOURCE_FIELD: u64 = 1;
/// Field number of the scope entries in a resource entry, and of the items in a scope entry.
const CHILD_FIELD: u64 = 2;
const LEN: u64 = 2;

/// One field of a protobuf message.
struct Field {
    number: u64,
    /// The whole field: key, length prefix and body.
    whole: Range<usize>,
    /// The body of a length-delimited field.
    body: Option<Range<usize>>,
}

/// The fields of the message in `buf[range]`; `None` when it is not valid protobuf (or uses
/// the deprecated groups).
fn fields(buf: &[u8], range: Range<usize>) -> impl Iterator<Item = Option<Field>> + '_ {
    let mut pos = range.start;
    let end = range.end;
    std::iter::from_fn(move || {
        if pos >= end {
            return None;
        }
        let start = pos;
        let field = (|| {
            let key = varint(buf, &mut pos)?;
            let mut body = None;
            match key & 7 {
                0 => {
                    varint(buf, &mut pos)?;
                }
                1 => pos = pos.checked_add(8)?,
                LEN => {
                    let len = usize::try_from(varint(buf, &mut pos)?).ok()?;
                    let b = pos..pos.checked_add(len)?;
                    pos = b.end;
                    body = Some(b);
                }
                5 => pos = pos.checked_add(4)?,
                _ => return None,
            }
            (pos <= end).then_some(Field {
                number: key >> 3,
                whole: start..pos,
                body,
            })
        })();
        if field.is_none() {
            // Stop after the first error.
            pos = end;
        }
        Some(field)
    })
}

/// Length of a length-delimited field with a one-byte key and a body of `body` bytes.
pub(crate) fn framed_len(body: usize) -> usize {
    1 + prost::encoding::encoded_len_varint(body as u64) + body
}

/// Pass one's findings, per resource and scope entry in encounter order: the new body length
/// of those that stay (`None` for those left out), and the item count of each scope entry.
#[derive(Default)]
struct Plan {
    scopes: Vec<(usize, Option<usize>)>,
    resources: Vec<Option<usize>>,
    total: usize,
}

/// Pass one: which entries stay and how long they become.
fn plan(buf: &[u8], keep: &[bool]) -> Option<Plan> {
    let mut p = Plan::default();
    let mut item = 0usize;
    for f in fields(buf, 0..buf.len()) {
        let f = f?;
        let Some(rbody) = f.body.clone().filter(|_| f.number == RESOURCE_FIELD) else {
            p.total += f.whole.len();
            continue;
        };
        let mut resource_len = 0;
        let mut kept_scopes = 0;
        for rf in fields(buf, rbody) {
            let rf = rf?;
            let Some(sbody) = rf.body.clone().filter(|_| rf.number == CHILD_FIELD) else {
                resource_len += rf.whole.len();
                continue;
            };
            let (mut scope_len, mut items, mut kept_items) = (0, 0, 0);
            for sf in fields(buf, sbody) {
                let sf = sf?;
                if sf.number == CHILD_FIELD && sf.body.is_some() {
                    let k = keep.get(item).copied().unwrap_or(true);
                    item += 1;
                    items += 1;
                    if !k {
                        continue;
                    }
                    kept_items += 1;
                }
                scope_len += sf.whole.len();
            }
            if kept_items > 0 {
                p.scopes.push((items, Some(scope_len)));
                resource_len += framed_len(scope_len);
                kept_scopes += 1;
            } else {
                p.scopes.push((items, None));
            }
        }
        if kept_scopes > 0 {
            p.resources.push(Some(resource_len));
            p.total += framed_len(resource_len);
        } else {
            p.resources.push(None);
        }
    }
    Some(p)
}

/// The key (field numbers below 16) and length prefix of a length-delimited field.
pub(crate) fn put_header(out: &mut Vec<u8>, field: u64, len: usize) {
    out.push((field << 3 | LEN) as u8);
    prost::encoding::encode_varint(len as u64, out);
}

/// The request encoded in `buf` with the items whose flag in `keep` is `false` left out
/// (items are numbered in encounter order, resource by resource, scope by scope; a missing
/// flag keeps its item). `None` when `buf` is not valid protobuf.
pub(crate) fn retain_items(buf: &[u8], keep: &[bool]) -> Option<Vec<u8>> {
    let plan = plan(buf, keep)?;
    let mut out = Vec::with_capacity(plan.total);
    let mut scopes = plan.scopes.iter();
    let mut resources = plan.resources.iter();
    let mut item = 0usize;
    for f in fields(buf, 0..buf.len()) {
        let f = f?;
        let Some(rbody) = f.body.clone().filter(|_| f.number == RESOURCE_FIELD) else {
            out.extend_from_slice(&buf[f.whole]);
            continue;
        };
        let resource_len = *resources.next()?;
        if let Some(len) = resource_len {
            put_header(&mut out, RESOURCE_FIELD, len);
        }
        for rf in fields(buf, rbody) {
            let rf = rf?;
            let Some(sbody) = rf.body.clone().filter(|_| rf.number == CHILD_FIELD) else {
                if resource_len.is_some() {
                    out.extend_from_slice(&buf[rf.whole]);
                }
                continue;
            };
            let &(items, scope_len) = scopes.next()?;
            let Some(len) = scope_len else {
                item += items;
                continue;
            };
            put_header(&mut out, CHILD_FIELD, len);
            for sf in fields(buf, sbody) {
                let sf = sf?;
                if sf.number == CHILD_FIELD && sf.body.is_some() {
                    let k = keep.get(item).copied().unwrap_or(true);
                    item += 1;
                    if !k {
                        continue;
                    }
                }
                out.extend_from_slice(&buf[sf.whole]);
            }
        }
    }
    debug_assert_eq!(out.len(), plan.total);
    Some(out)
}
