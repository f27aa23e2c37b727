//! Evaluating metric policies on the protobuf bytes of a metrics export request, without
//! decoding the request.
//!
//! As for logs ([`crate::raw_logs`]) and traces ([`crate::raw_traces`]): a received metrics
//! batch holds its bytes, checked but not decoded, and prost's decoding (an allocation per
//! metric, data point, attribute and string) would serve the evaluation alone, since metric
//! policies only drop points and the batch is then cut out of its bytes
//! ([`weir_api::Batch::retain_items`]). Here the metrics and their data points are read in
//! place; every point gets the same verdict as on the decoded request, because both paths
//! run through one decision function ([`crate::evaluate::MetricDecider`]) and the point view
//! here returns what [`MetricView`] returns on prost's decoding of the same bytes.
//!
//! What metric policies read: the metric's name, description and unit, its type (which
//! member of the `data` oneof it holds), its aggregation temporality (sums, histograms and
//! exponential histograms), the data point's attributes, and the resource and scope.
//!
//! Protobuf semantics kept (opentelemetry-proto 0.33 `Metric`):
//! - Resources and scopes are decoded with prost, once per entry (see [`crate::raw`]).
//! - A string field that occurs several times takes its last occurrence (name,
//!   description, unit; an attribute's key, an `AnyValue` member). The metric's name,
//!   description and unit are validated as UTF-8 once per metric (policies read them once
//!   per point); attribute strings only when a policy reads them.
//! - The `data` oneof: the last member present is the metric's data, merged with the
//!   earlier occurrences of that same member since the last occurrence of another member (a
//!   gauge then a gauge is one gauge with the points of both; a gauge then a sum is the sum
//!   alone), as prost merges it and as the receiver's check counts points
//!   (`count_items` in weir-api's `wire_check`) and [`weir_api::Batch::retain_items`]
//!   numbers them. The merged member's points are every occurrence's points in order, and
//!   its temporality is the last one any of those occurrences gives (prost keeps an enum's
//!   low 32 bits, as `i32`); a sum's `is_monotonic` is not read.
//! - A metric without points (no data, or a member with none) is decided once, with no
//!   point attributes, as on the decoded request.
//! - Where prost would merge two occurrences of a message that policies read inside (a
//!   `KeyValue` with two values, an `AnyValue` with two key-value lists, in a point's
//!   attributes), where a group shows up in what is read (valid in unknown fields, which
//!   prost skips; the field walker does not), or anything the check should have refused (a
//!   wrong wire type at a level read here, a name that is not UTF-8), the metric is decoded
//!   with prost on its own ([`Metric::decode`]) and read through [`MetricView`]. That is
//!   decided while the metric is read (its top level, data members, points and their
//!   attributes), before any of its points is evaluated, so each point is evaluated exactly
//!   once ([`MetricVerdicts::prost_decoded`] counts these metrics).
//! - Metadata, exemplars and point values are not read (no policy reads them), so nothing
//!   in them sends a metric to prost. Likewise the points' attributes when no policy of the
//!   set reads them ([`crate::set::Reads`]): they are checked for their wire type alone.
//! - A request whose resource and scope levels cannot be read at all is left to the caller
//!   (`None`, before anything was evaluated), which decodes it. A metric that neither this
//!   reader nor prost reads (never for checked bytes) leaves the flags unable to number the
//!   points: the whole request is then kept (fail open), its counters as they were counted.
//!
//! [`MetricView`]: crate::record::MetricView

use std::ops::Range;

use opentelemetry_proto::tonic::metrics::v1::Metric;
use prost::Message;

use crate::evaluate::{MetricDecider, MetricVerdicts};
use crate::matcher::Facets;
use crate::raw::{attribute, fields, layout, parse_key_value, utf8, RawKeyValue, Wire};
use crate::record::{non_empty, Context, Field, FieldValue, Record, WellKnown};
use crate::set::{PolicySet, Reads};

/// Field numbers of the `data` oneof's members in `Metric`.
const GAUGE: u64 = 5;
const SUM: u64 = 7;
const HISTOGRAM: u64 = 9;
const EXP_HISTOGRAM: u64 = 10;
const SUMMARY: u64 = 11;

/// The repeated parts of a metric, in vectors reused from metric to metric.
#[derive(Default)]
struct MetricParts<'a> {
    /// The occurrences of the metric's `data` member since the last occurrence of another.
    data: Vec<&'a [u8]>,
    /// Each data point's attributes, a range of `attributes`.
    points: Vec<Range<usize>>,
    attributes: Vec<RawKeyValue<'a>>,
}

impl MetricParts<'_> {
    fn clear(&mut self) {
        self.data.clear();
        self.points.clear();
        self.attributes.clear();
    }
}

/// A metric's singular fields that policies read, in place.
/// Name, description and unit are made `str`s (validated as UTF-8) once per metric, as
/// policies read them once per point.
#[derive(Default)]
struct RawMetric<'a> {
    name: &'a str,
    description: &'a str,
    unit: &'a str,
    /// The field number of the `data` member (0: no data).
    data: u64,
    /// The aggregation temporality (0 when the member has none or does not give it).
    temporality: i32,
}

impl<'a> RawMetric<'a> {
    /// Reads a metric's top level, its data member's occurrences, their points and the
    /// points' attributes; `None` when prost must decode it (see the module documentation).
    fn parse(buf: &'a [u8], reads: Reads, parts: &mut MetricParts<'a>) -> Option<RawMetric<'a>> {
        parts.clear();
        let mut m = RawMetric::default();
        let (mut name, mut description, mut unit): (&[u8], &[u8], &[u8]) = (b"", b"", b"");
        for f in fields(buf) {
            match f? {
                (1, Wire::Len(s)) => name = s,
                (2, Wire::Len(s)) => description = s,
                (3, Wire::Len(s)) => unit = s,
                (n @ (GAUGE | SUM | HISTOGRAM | EXP_HISTOGRAM | SUMMARY), Wire::Len(b)) => {
                    // Another member replaces the data read so far; the same one merges.
                    if n != m.data {
                        parts.data.clear();
                        m.data = n;
                    }
                    parts.data.push(b);
                }
                // Metadata: not read.
                (12, Wire::Len(_)) => {}
                (1..=3 | 5 | 7 | 9..=12, _) => return None,
                _ => {}
            }
        }
        // Checked on receipt: a string that is not UTF-8 (never seen) is left to prost,
        // which refuses it.
        (m.name, m.description, m.unit) = (utf8(name)?, utf8(description)?, utf8(unit)?);
        for i in 0..parts.data.len() {
            let member = parts.data[i];
            for f in fields(member) {
                match (m.data, f?) {
                    (kind, (1, Wire::Len(point))) => {
                        let first = parts.attributes.len();
                        parse_point(kind, point, reads, &mut parts.attributes)?;
                        parts.points.push(first..parts.attributes.len());
                    }
                    // An enum: prost keeps the varint's low 32 bits, as `i32`.
                    (SUM | HISTOGRAM | EXP_HISTOGRAM, (2, Wire::Varint(t))) => {
                        m.temporality = t as i32
                    }
                    // is_monotonic: not read.
                    (SUM, (3, Wire::Varint(_))) => {}
                    (_, (1, _)) | (SUM | HISTOGRAM | EXP_HISTOGRAM, (2, _)) | (SUM, (3, _)) => {
                        return None
                    }
                    _ => {}
                }
            }
        }
        Some(m)
    }

    /// The metric type as the policy engine numbers it (the oneof's member, 0 for none).
    fn metric_type(&self) -> i32 {
        match self.data {
            GAUGE => 1,
            SUM => 2,
            HISTOGRAM => 3,
            EXP_HISTOGRAM => 4,
            SUMMARY => 5,
            _ => 0,
        }
    }
}

/// Reads a data point of the member numbered `kind`, appending its attributes (all of
/// them, nested lists included) to `attributes` when a policy reads them (`reads`); the
/// fields not read are only checked for their wire types.
fn parse_point<'a>(
    kind: u64,
    buf: &'a [u8],
    reads: Reads,
    attributes: &mut Vec<RawKeyValue<'a>>,
) -> Option<()> {
    let attrs = match kind {
        HISTOGRAM => 9,
        EXP_HISTOGRAM => 1,
        _ => 7,
    };
    for f in fields(buf) {
        match f? {
            (n, Wire::Len(kv)) if n == attrs && reads.attributes => {
                attributes.push(parse_key_value(kv, 3, true)?)
            }
            (n, Wire::Len(_)) if n == attrs => {}
            (n, _) if n == attrs => return None,
            (n, w) if !point_wire_ok(kind, n, w) => return None,
            _ => {}
        }
    }
    Some(())
}

/// Whether field `number` of a data point of the member numbered `kind`, not its
/// attributes, has the wire type of its declared type (times, values, counts, sums,
/// bounds, flags, exemplars, buckets, quantiles); `true` for unknown fields.
fn point_wire_ok(kind: u64, number: u64, wire: Wire<'_>) -> bool {
    let fixed64 = matches!(wire, Wire::Fixed64(_));
    let len = matches!(wire, Wire::Len(_));
    let varint = matches!(wire, Wire::Varint(_));
    match (kind, number) {
        (GAUGE | SUM, 2..=4 | 6) => fixed64,
        (GAUGE | SUM, 5) => len,
        (GAUGE | SUM, 8) => varint,
        (HISTOGRAM, 2..=5 | 11 | 12) => fixed64,
        // bucket_counts, explicit_bounds: one value per field, or packed.
        (HISTOGRAM, 6 | 7) => fixed64 || len,
        (HISTOGRAM, 8) => len,
        (HISTOGRAM, 10) => varint,
        (EXP_HISTOGRAM, 2..=5 | 7 | 12..=14) => fixed64,
        (EXP_HISTOGRAM, 6 | 10) => varint,
        (EXP_HISTOGRAM, 8 | 9 | 11) => len,
        (SUMMARY, 2..=5) => fixed64,
        (SUMMARY, 6) => len,
        (SUMMARY, 8) => varint,
        _ => true,
    }
}

/// A data point (or a metric without points) read in place, in its metric and context:
/// what [`MetricView`] is on a decoded metric.
struct RawPointView<'a> {
    ctx: Context<'a>,
    metric: &'a RawMetric<'a>,
    attributes: &'a [RawKeyValue<'a>],
}

impl Record for RawPointView<'_> {
    fn value(&self, field: &Field) -> Option<FieldValue<'_>> {
        let m = self.metric;
        match field {
            Field::Record(path) => attribute(self.attributes, path),
            Field::Well(WellKnown::Name) => non_empty(m.name),
            Field::Well(WellKnown::Description) => non_empty(m.description),
            Field::Well(WellKnown::Unit) => non_empty(m.unit),
            other => self.ctx.common(other),
        }
    }
}

impl Facets for RawPointView<'_> {
    fn metric_type(&self) -> i32 {
        self.metric.metric_type()
    }
    fn temporality(&self) -> i32 {
        self.metric.temporality
    }
}

/// Decides every data point of the encoded `ExportMetricsServiceRequest` in `buf` (and
/// every metric without points, once), as [`crate::evaluate::evaluate_metrics`] decides
/// them on its prost decoding: same keep flags in the same order, same counters. `None`
/// when the request's resource or scope levels cannot be read (never for bytes that passed
/// the receiver's check); nothing has been evaluated then, and the caller decodes the
/// request instead.
pub fn evaluate_metrics_encoded(set: &PolicySet, buf: &[u8]) -> Option<MetricVerdicts> {
    let mut v = MetricVerdicts::default();
    let Some(mut decider) = MetricDecider::new(set) else {
        return Some(v);
    };
    let layout = layout(buf)?;
    v.keep.reserve(layout.items.len());
    let mut parts = MetricParts::default();
    let reads = set.metrics.reads;
    let mut unreadable = false;
    for scope in &layout.scopes {
        let (ctx, metrics) = crate::raw::scope(&layout, scope);
        for &bytes in metrics {
            if let Some(metric) = RawMetric::parse(bytes, reads, &mut parts) {
                if parts.points.is_empty() {
                    let view = RawPointView {
                        ctx,
                        metric: &metric,
                        attributes: &[],
                    };
                    decider.decide(&view, &mut v);
                }
                for range in &parts.points {
                    let view = RawPointView {
                        ctx,
                        metric: &metric,
                        attributes: parts.attributes.get(range.clone()).unwrap_or(&[]),
                    };
                    decider.decide(&view, &mut v);
                }
                continue;
            }
            v.prost_decoded += 1;
            match Metric::decode(bytes) {
                Ok(metric) => decider.decide_metric(ctx, &metric, &mut v),
                Err(e) => {
                    // Not reached for checked bytes. Its points cannot be numbered, so no
                    // flag after it would name the right point: everything stays.
                    tracing::error!(error = %e, "a checked metric failed to decode; the request is kept without evaluation");
                    unreadable = true;
                    v.keep.push(true);
                }
            }
        }
    }
    if unreadable {
        v.keep.iter_mut().for_each(|k| *k = true);
        v.dropped = 0;
    }
    Some(v)
}
