//! Removing data points from an encoded OTLP metrics export request by copying the byte
//! ranges of what stays, instead of decoding the request, editing it and encoding it again.
//!
//! The levels walked (every other field is copied as it is):
//! - request: field 1, a resource entry (`ResourceMetrics`);
//! - resource entry: field 2, a scope entry (`ScopeMetrics`);
//! - scope entry: field 2, a metric;
//! - metric: fields 5, 7, 9, 10 and 11, the members of the `data` oneof (gauge, sum,
//!   histogram, exponential histogram, summary);
//! - each of those five: field 1, a data point.
//!
//! Points are numbered as the decoded request numbers them (resource by resource, scope by
//! scope, metric by metric, point by point), which takes prost's reading of the oneof: a
//! metric's data is the last member that occurs, merged with the occurrences of that same
//! member since the last occurrence of another (two gauge fields in a row are one gauge with
//! the points of both). Members an other member overrides hold no numbered points and are
//! left out of the result, which changes nothing a decoder sees.
//!
//! Like [`Payload::prune_empty`](crate::Payload::prune_empty) on the decoded form, a metric
//! left with no points (or that had none, or no data) is left out, then a scope entry left
//! with no metrics, then a resource entry left with no scope entries. The result decodes to
//! exactly the request that dropping the points from the decoded request and encoding it
//! gives (the `retain_metric_points` tests and the `metric_splice` fuzz target compare the
//! two), with the unknown fields of what stays kept.
//!
//! Two passes, as in [`crate::splice`] for logs and traces: the first finds every entry's new
//! length (a length prefix comes before the body), the second copies.

use std::ops::Range;

use crate::splice::{framed_len, put_header};
use crate::wire_check::varint;

const LEN: u64 = 2;

/// Bytes that are not an encoded metrics request this walk can cut, with what was wrong and
/// the offset in the request where it was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot cut data points out of the OTLP metrics request: {what} (at byte {offset})")]
pub struct MetricSpliceError {
    /// Offset of the field (or key) at fault, from the start of the request.
    pub offset: usize,
    /// What was wrong there.
    pub what: &'static str,
}

fn err<T>(offset: usize, what: &'static str) -> Result<T, MetricSpliceError> {
    Err(MetricSpliceError { offset, what })
}

/// The request with data points removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetainedPoints {
    /// The new encoding.
    pub bytes: Vec<u8>,
    /// Data points in the new encoding (as the decoded form counts them).
    pub points: usize,
}

/// One field of a message.
struct Field {
    number: u64,
    wire: u64,
    /// The whole field: key, length prefix (if any) and body.
    whole: Range<usize>,
    /// The body of a length-delimited field.
    body: Range<usize>,
}

/// Reads the field at `*pos` of the message ending at `end`.
fn next_field(buf: &[u8], pos: &mut usize, end: usize) -> Result<Field, MetricSpliceError> {
    let start = *pos;
    let view = &buf[..end];
    let Some(key) = varint(view, pos) else {
        return err(
            start,
            "a field key is not a valid varint or runs past its message",
        );
    };
    if key >> 3 == 0 || key > u64::from(u32::MAX) {
        return err(start, "a field key has field number 0 or is over 32 bits");
    }
    let mut body = *pos..*pos;
    match key & 7 {
        0 => {
            if varint(view, pos).is_none() {
                return err(start, "a varint field is not a valid varint");
            }
        }
        1 | 5 => {
            let n = if key & 7 == 1 { 8 } else { 4 };
            if end - *pos < n {
                return err(start, "a fixed-size field runs past its message");
            }
            *pos += n;
        }
        LEN => {
            let Some(len) = varint(view, pos) else {
                return err(start, "a length prefix is not a valid varint");
            };
            match usize::try_from(len) {
                Ok(len) if len <= end - *pos => {
                    body = *pos..*pos + len;
                    *pos += len;
                }
                _ => return err(start, "a length-delimited field runs past its message"),
            }
        }
        3 | 4 => {
            return err(
                start,
                "a group (deprecated wire types 3 and 4) is not supported",
            )
        }
        _ => {
            return err(
                start,
                "a field key has wire type 6 or 7, which do not exist",
            )
        }
    }
    Ok(Field {
        number: key >> 3,
        wire: key & 7,
        whole: start..*pos,
        body,
    })
}

/// Calls `f` on each field of the message in `buf[range]`, in order.
fn each_field(
    buf: &[u8],
    range: Range<usize>,
    mut f: impl FnMut(Field) -> Result<(), MetricSpliceError>,
) -> Result<(), MetricSpliceError> {
    let mut pos = range.start;
    while pos < range.end {
        f(next_field(buf, &mut pos, range.end)?)?;
    }
    Ok(())
}

/// The body of field `f`, which must be length-delimited (it holds a message).
fn message(f: &Field, what: &'static str) -> Result<Range<usize>, MetricSpliceError> {
    if f.wire == LEN {
        Ok(f.body.clone())
    } else {
        err(f.whole.start, what)
    }
}

/// Whether field `number` of a metric is a member of its `data` oneof.
fn is_data(number: u64) -> bool {
    matches!(number, 5 | 7 | 9 | 10 | 11)
}

/// A resource, scope or metric entry, or a kept data member, as pass one found it: its new
/// body length (`None`: left out), how many entries its subtree adds after it, and how many
/// numbered points it held.
#[derive(Clone, Copy)]
struct Entry {
    len: Option<usize>,
    subtree: usize,
    points: usize,
    /// For a metric: how many data members come before the ones its data is read from.
    overridden: usize,
}

/// Pass one.
struct Planner<'a> {
    buf: &'a [u8],
    keep: &'a [bool],
    /// The next point's number.
    point: usize,
    kept_points: usize,
    entries: Vec<Entry>,
}

impl Planner<'_> {
    fn open(&mut self) -> usize {
        self.entries.push(Entry {
            len: None,
            subtree: 0,
            points: 0,
            overridden: 0,
        });
        self.entries.len() - 1
    }

    fn close(&mut self, at: usize, len: Option<usize>, points: usize) {
        let subtree = self.entries.len() - at - 1;
        let e = &mut self.entries[at];
        e.len = len;
        e.subtree = subtree;
        e.points = points;
    }

    /// New length of the request.
    fn request(&mut self) -> Result<usize, MetricSpliceError> {
        let buf = self.buf;
        let mut total = 0;
        each_field(buf, 0..buf.len(), |f| {
            if f.number != 1 {
                total += f.whole.len();
                return Ok(());
            }
            let body = message(
                &f,
                "a resource entry (request field 1) is not length-delimited",
            )?;
            if let Some(len) = self.resource(body)? {
                total += framed_len(len);
            }
            Ok(())
        })?;
        Ok(total)
    }

    fn resource(&mut self, range: Range<usize>) -> Result<Option<usize>, MetricSpliceError> {
        let at = self.open();
        let first = self.point;
        let (mut len, mut kept) = (0, 0);
        each_field(self.buf, range, |f| {
            if f.number != 2 {
                len += f.whole.len();
                return Ok(());
            }
            let body = message(
                &f,
                "a scope entry (resource entry field 2) is not length-delimited",
            )?;
            if let Some(scope) = self.scope(body)? {
                len += framed_len(scope);
                kept += 1;
            }
            Ok(())
        })?;
        let len = (kept > 0).then_some(len);
        self.close(at, len, self.point - first);
        Ok(len)
    }

    fn scope(&mut self, range: Range<usize>) -> Result<Option<usize>, MetricSpliceError> {
        let at = self.open();
        let first = self.point;
        let (mut len, mut kept) = (0, 0);
        each_field(self.buf, range, |f| {
            if f.number != 2 {
                len += f.whole.len();
                return Ok(());
            }
            let body = message(&f, "a metric (scope entry field 2) is not length-delimited")?;
            if let Some(metric) = self.metric(body)? {
                len += framed_len(metric);
                kept += 1;
            }
            Ok(())
        })?;
        let len = (kept > 0).then_some(len);
        self.close(at, len, self.point - first);
        Ok(len)
    }

    fn metric(&mut self, range: Range<usize>) -> Result<Option<usize>, MetricSpliceError> {
        let at = self.open();
        let first = self.point;
        // Which data members hold the metric's data: those since the last change of member.
        let (mut members, mut overridden, mut last) = (0usize, 0usize, None);
        each_field(self.buf, range.clone(), |f| {
            if is_data(f.number) {
                message(&f, "a metric's data (gauge, sum, histogram, exponential histogram or summary) is not length-delimited")?;
                if last != Some(f.number) {
                    overridden = members;
                    last = Some(f.number);
                }
                members += 1;
            }
            Ok(())
        })?;
        let (mut len, mut member, mut kept) = (0, 0usize, 0);
        each_field(self.buf, range, |f| {
            if !is_data(f.number) {
                len += f.whole.len();
                return Ok(());
            }
            member += 1;
            if member <= overridden {
                return Ok(());
            }
            let (data, k) = self.data(f.body)?;
            len += framed_len(data);
            kept += k;
            Ok(())
        })?;
        let len = (kept > 0).then_some(len);
        self.close(at, len, self.point - first);
        self.entries[at].overridden = overridden;
        Ok(len)
    }

    /// A data member: its new length and how many points it keeps.
    fn data(&mut self, range: Range<usize>) -> Result<(usize, usize), MetricSpliceError> {
        let at = self.open();
        let first = self.point;
        let (mut len, mut kept) = (0, 0);
        each_field(self.buf, range, |f| {
            if f.number == 1 {
                message(
                    &f,
                    "a data point (field 1 of a metric's data) is not length-delimited",
                )?;
                let keep = self.keep.get(self.point).copied().unwrap_or(true);
                self.point += 1;
                if !keep {
                    return Ok(());
                }
                kept += 1;
            }
            len += f.whole.len();
            Ok(())
        })?;
        self.kept_points += kept;
        self.close(at, Some(len), self.point - first);
        Ok((len, kept))
    }
}

/// Pass two: copies what pass one kept, reading its entries in the same order.
struct Writer<'a> {
    buf: &'a [u8],
    keep: &'a [bool],
    entries: &'a [Entry],
    next: usize,
    point: usize,
    out: Vec<u8>,
}

impl Writer<'_> {
    /// The next entry; skips its subtree (and its points) when it is left out.
    fn entry(&mut self) -> Entry {
        let e = self.entries[self.next];
        self.next += 1;
        if e.len.is_none() {
            self.next += e.subtree;
            self.point += e.points;
        }
        e
    }

    fn copy(&mut self, r: Range<usize>) {
        self.out.extend_from_slice(&self.buf[r]);
    }

    // Pass one read every field without error, so these walks cannot fail; they return the
    // error type only to share `each_field`.
    fn request(&mut self) -> Result<(), MetricSpliceError> {
        let buf = self.buf;
        each_field(buf, 0..buf.len(), |f| {
            if f.number != 1 {
                self.copy(f.whole);
                return Ok(());
            }
            if let Some(len) = self.entry().len {
                put_header(&mut self.out, 1, len);
                self.children(f.body, 2, Self::scope)?;
            }
            Ok(())
        })
    }

    /// Copies the fields of the entry in `range` that are not field `child`, and writes each
    /// child `child` with `inner` when pass one kept it.
    fn children(
        &mut self,
        range: Range<usize>,
        child: u64,
        inner: fn(&mut Self, Range<usize>) -> Result<(), MetricSpliceError>,
    ) -> Result<(), MetricSpliceError> {
        each_field(self.buf, range, |f| {
            if f.number != child {
                self.copy(f.whole);
                return Ok(());
            }
            if let Some(len) = self.entry().len {
                put_header(&mut self.out, child, len);
                inner(self, f.body)?;
            }
            Ok(())
        })
    }

    fn scope(&mut self, range: Range<usize>) -> Result<(), MetricSpliceError> {
        self.children(range, 2, Self::metric)
    }

    fn metric(&mut self, range: Range<usize>) -> Result<(), MetricSpliceError> {
        // The metric's own entry was read by `children`, just before this.
        let overridden = self.entries[self.next - 1].overridden;
        let mut member = 0usize;
        each_field(self.buf, range, |f| {
            if !is_data(f.number) {
                self.copy(f.whole);
                return Ok(());
            }
            member += 1;
            if member <= overridden {
                return Ok(());
            }
            let Some(len) = self.entry().len else {
                return Ok(());
            };
            put_header(&mut self.out, f.number, len);
            each_field(self.buf, f.body, |p| {
                if p.number == 1 {
                    let keep = self.keep.get(self.point).copied().unwrap_or(true);
                    self.point += 1;
                    if !keep {
                        return Ok(());
                    }
                }
                self.copy(p.whole);
                Ok(())
            })
        })
    }
}

/// The metrics export request encoded in `buf` with the data points whose flag in `keep` is
/// `false` left out, then the metrics, scope entries and resource entries left empty (see the
/// module documentation). Points are numbered as in the decoded request; a missing flag
/// keeps its point, flags beyond the last point are ignored.
///
/// Every field the walk reads is checked (keys, lengths, the wire types of the levels it
/// walks); the contents of points and of the fields it copies are not, so for bytes prost
/// would refuse the result is only as valid as the input. An error says what was wrong and
/// where; groups, which prost skips in unknown fields, are refused too.
pub fn retain_metric_points(
    buf: &[u8],
    keep: &[bool],
) -> Result<RetainedPoints, MetricSpliceError> {
    let mut plan = Planner {
        buf,
        keep,
        point: 0,
        kept_points: 0,
        entries: Vec::new(),
    };
    let total = plan.request()?;
    let mut w = Writer {
        buf,
        keep,
        entries: &plan.entries,
        next: 0,
        point: 0,
        out: Vec::with_capacity(total),
    };
    w.request()?;
    debug_assert_eq!(w.out.len(), total);
    debug_assert_eq!(w.next, plan.entries.len());
    Ok(RetainedPoints {
        bytes: w.out,
        points: plan.kept_points,
    })
}
