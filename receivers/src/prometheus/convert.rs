//! Scraped samples to OTLP metrics, as the Collector's receiver converts them, with the
//! state a target keeps from one scrape to the next (start times, resets, staleness).
//!
//! Speed: a target serves mostly the same series every scrape, so the work that depends
//! only on a series' text (label merge with the target's labels, `metric_relabel_configs`,
//! the point attributes, the `le`/`quantile` bound) is done once per series and cached
//! under the series' text as written (`name{labels}`), as Prometheus's own scrape cache
//! does. A scrape then costs, per sample, a family lookup, a cache lookup and the value.
//! Series not seen in a scrape leave the cache (and are reported stale).

use std::collections::{BTreeMap, HashMap};

use weir_api::otlp::common::v1::KeyValue;
use weir_api::otlp::metrics::v1::{
    exemplar, metric, number_data_point, summary_data_point::ValueAtQuantile, Exemplar, Gauge,
    Histogram, HistogramDataPoint, Metric, NumberDataPoint, Sum, Summary, SummaryDataPoint,
};

use super::jobs::Target;
use super::relabel;
use super::scrape::string_kv;
use super::text::{self, FamilyType, Format};

/// Maps keyed by what targets write: foldhash, seeded per map (resists crafted collisions
/// better than a fixed-key hash, much faster than SipHash on series text).
pub type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// OTLP's "no recorded value" data point flag (staleness).
pub const NO_RECORDED_VALUE: u32 = 1;

/// What a sample is within its family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// The value (counter, gauge, untyped, info, stateset; a summary's quantile).
    Value,
    Bucket,
    Sum,
    Count,
    /// `_created`: the start time, in seconds.
    Created,
    /// A part of a family that the conversion does not use.
    Ignored,
}

/// The family a sample name belongs to, with its type and the sample's role in it.
fn family_of<'n>(
    name: &'n str,
    format: Format,
    types: &FastMap<&str, FamilyType>,
) -> (&'n str, FamilyType, Role) {
    if let Some(t) = types.get(name) {
        let role = match t {
            // A sample named as its histogram family has no place in it.
            FamilyType::Histogram | FamilyType::GaugeHistogram => Role::Ignored,
            _ => Role::Value,
        };
        return (name, *t, role);
    }
    let Some(us) = name.rfind('_') else {
        return (name, FamilyType::Untyped, Role::Value);
    };
    let (base, suffix) = (&name[..us], &name[us..]);
    let Some(t) = types.get(base).copied() else {
        return (name, FamilyType::Untyped, Role::Value);
    };
    let role = match (format, t, suffix) {
        (_, FamilyType::Histogram, "_bucket") => Role::Bucket,
        (_, FamilyType::Histogram | FamilyType::Summary, "_sum") => Role::Sum,
        (_, FamilyType::Histogram | FamilyType::Summary, "_count") => Role::Count,
        (_, FamilyType::Histogram | FamilyType::Summary, "_created") => Role::Created,
        (Format::OpenMetrics, FamilyType::Counter, "_total") => Role::Value,
        (Format::OpenMetrics, FamilyType::Counter, "_created") => Role::Created,
        (Format::OpenMetrics, FamilyType::Info, "_info") => Role::Value,
        (Format::OpenMetrics, FamilyType::GaugeHistogram, "_bucket" | "_gcount" | "_gsum") => {
            Role::Ignored
        }
        _ => return (name, FamilyType::Untyped, Role::Value),
    };
    (base, t, role)
}

/// What one point (a family and its attributes) was last time: start time, last level,
/// and what a stale marker needs.
pub struct SeriesState {
    pub kind: FamilyType,
    pub family: String,
    pub attributes: Vec<KeyValue>,
    pub start_ns: u64,
    /// The last value (counters), or count (histograms, summaries): a drop is a reset.
    pub last: f64,
}

/// One point known to the target.
struct Point {
    key: Box<str>,
    state: SeriesState,
    /// Whether a scrape has produced it yet (a point is created when first resolved).
    reported: bool,
    /// The last scrape that saw it.
    gen: u64,
}

/// A series' text, resolved.
struct Entry {
    gen: u64,
    /// `metric_relabel_configs` dropped it.
    dropped: bool,
    /// The name after relabelling, when it changed.
    renamed: Option<Box<str>>,
    /// The family (its length in the name) and type it was resolved with.
    family_len: usize,
    kind: FamilyType,
    point: u32,
    /// `le` or `quantile`, when the role needs it.
    bound: Option<f64>,
}

/// The samples of one point in one scrape, gathered.
#[derive(Default)]
struct Agg {
    value: Option<f64>,
    sum: Option<f64>,
    count: Option<f64>,
    created: Option<f64>,
    buckets: Vec<(f64, f64)>,
    quantiles: Vec<(f64, f64)>,
    ts: Option<i64>,
    exemplars: Vec<Exemplar>,
}

/// A target's conversion state.
#[derive(Default)]
pub struct Converter {
    entries: FastMap<Box<str>, Entry>,
    points: Vec<Option<Point>>,
    point_ids: FastMap<Box<str>, u32>,
    free: Vec<u32>,
    gen: u64,
    /// Per scrape: point id → slot in `aggs`.
    slot_of: Vec<u32>,
}

const NO_SLOT: u32 = u32::MAX;

/// What a scrape produced.
pub struct Converted {
    pub metrics: Vec<Metric>,
    /// Points not seen before.
    pub added: usize,
    /// Samples left after `metric_relabel_configs`.
    pub kept: usize,
}

/// A sample's whole label set: target labels, job, instance, the scraped labels (a clash
/// becomes `exported_<name>` unless `honor_labels`) and `__name__`.
fn merged(t: &Target, name: &str, labels: &[text::Label]) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = t.labels.iter().cloned().collect();
    out.insert("job".into(), t.job.clone());
    out.insert("instance".into(), t.instance.clone());
    for (k, v) in labels {
        if out.contains_key(*k) && !t.honor_labels {
            out.insert(format!("exported_{k}"), v.to_string());
        } else {
            out.insert(k.to_string(), v.to_string());
        }
    }
    out.insert("__name__".into(), name.to_string());
    out
}

/// Point attributes from a merged label set: without `__name__`, `skip` (`le`,
/// `quantile`), `__`-labels, empty values, and job/instance when they are the resource's.
fn attributes_from(t: &Target, labels: &BTreeMap<String, String>, skip: &str) -> Vec<KeyValue> {
    labels
        .iter()
        .filter(|(k, v)| {
            let resource_says = match k.as_str() {
                "job" => **v == t.job,
                "instance" => **v == t.instance,
                _ => false,
            };
            !k.starts_with("__") && k.as_str() != skip && !v.is_empty() && !resource_says
        })
        .map(|(k, v)| string_kv(k, v))
        .collect()
}

pub(crate) fn text_of(kv: &KeyValue) -> &str {
    use weir_api::otlp::common::v1::any_value;
    match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s,
        _ => "",
    }
}

/// Seconds (as OpenMetrics writes them) to nanoseconds, without the rounding error of
/// one multiplication.
fn secs_to_ns(s: f64) -> u64 {
    if s.is_nan() || s <= 0.0 {
        return 0;
    }
    let whole = s.trunc();
    (whole as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(((s - whole) * 1e9).round() as u64)
}

fn hex(s: &str, len: usize) -> Option<Vec<u8>> {
    // ASCII only: a multi-byte character would put a two-digit slice inside it.
    if s.len() != len * 2 || !s.is_ascii() {
        return None;
    }
    (0..len)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok())
        .collect()
}

fn otlp_exemplar(e: &text::Exemplar, time: u64) -> Exemplar {
    let mut out = Exemplar {
        time_unix_nano: e.timestamp_s.map(secs_to_ns).unwrap_or(time),
        value: Some(exemplar::Value::AsDouble(e.value)),
        ..Default::default()
    };
    for (k, v) in &e.labels {
        match (*k, hex(v, if *k == "trace_id" { 16 } else { 8 })) {
            ("trace_id", Some(b)) => out.trace_id = b,
            ("span_id", Some(b)) => out.span_id = b,
            _ => out.filtered_attributes.push(string_kv(k, v)),
        }
    }
    out
}

impl Converter {
    /// The id of the point `key`, created (with `state`) when new.
    fn point_id(&mut self, key: String, state: impl FnOnce() -> SeriesState) -> u32 {
        if let Some(id) = self.point_ids.get(key.as_str()) {
            return *id;
        }
        let key: Box<str> = key.into();
        let point = Point {
            key: key.clone(),
            state: state(),
            reported: false,
            gen: 0,
        };
        let id = match self.free.pop() {
            Some(id) => {
                self.points[id as usize] = Some(point);
                id
            }
            None => {
                self.points.push(Some(point));
                self.points.len() as u32 - 1
            }
        };
        self.point_ids.insert(key, id);
        id
    }

    /// Resolves a series seen for the first time (or whose family changed).
    fn resolve(
        &mut self,
        t: &Target,
        e: &text::Exposition,
        s: &text::Sample,
        format: Format,
    ) -> Entry {
        let mut labels = merged(t, s.name, e.labels_of(s));
        if !t.metric_relabel.is_empty() && !relabel::apply(&t.metric_relabel, &mut labels) {
            return Entry::dropped(self.gen);
        }
        let name = labels.get("__name__").cloned().unwrap_or_default();
        if name.is_empty() {
            return Entry::dropped(self.gen);
        }
        let (family, kind, role) = family_of(&name, format, &e.types);
        let skip = match kind {
            FamilyType::Histogram | FamilyType::GaugeHistogram => "le",
            FamilyType::Summary => "quantile",
            _ => "",
        };
        let bound = match (kind, role) {
            (FamilyType::Histogram, Role::Bucket) => {
                labels.get("le").and_then(|v| text::parse_float(v))
            }
            (FamilyType::Summary, Role::Value) => {
                labels.get("quantile").and_then(|v| text::parse_float(v))
            }
            _ => None,
        };
        let attrs = attributes_from(t, &labels, skip);
        // The type is part of the point: a family retyped is a new point.
        let mut key = String::with_capacity(family.len() + 32);
        key.push_str(&format!("{kind:?}\u{3}"));
        key.push_str(family);
        for kv in &attrs {
            key.push('\u{1}');
            key.push_str(&kv.key);
            key.push('\u{2}');
            key.push_str(text_of(kv));
        }
        let family_len = family.len();
        let family_owned = family.to_string();
        let point = self.point_id(key, || SeriesState {
            kind,
            family: family_owned,
            attributes: attrs,
            start_ns: 0,
            last: 0.0,
        });
        Entry {
            gen: self.gen,
            dropped: false,
            renamed: (name != s.name).then(|| name.into()),
            family_len,
            kind,
            point,
            bound,
        }
    }

    /// Converts one scrape's exposition taken at `time` (ns).
    pub fn convert(&mut self, t: &Target, e: &text::Exposition, time: u64) -> Converted {
        self.gen += 1;
        let gen = self.gen;
        let format = e.format.unwrap_or(Format::Text);
        let mut aggs: Vec<Agg> = Vec::new();
        let mut order: Vec<u32> = Vec::new();
        self.slot_of.clear();
        self.slot_of.resize(self.points.len(), NO_SLOT);
        let mut kept = 0;
        for s in &e.samples {
            // The cached resolution, checked against this scrape's types.
            let cached = match self.entries.get_mut(s.series) {
                Some(en) if en.dropped => {
                    en.gen = gen;
                    continue;
                }
                Some(en) => {
                    let name = en.renamed.as_deref().unwrap_or(s.name);
                    let (family, kind, role) = family_of(name, format, &e.types);
                    if family.len() == en.family_len && kind == en.kind {
                        en.gen = gen;
                        Some((en.point, en.bound, kind, role))
                    } else {
                        None
                    }
                }
                None => None,
            };
            let (point, bound, kind, role) = match cached {
                Some(c) => c,
                None => {
                    let en = self.resolve(t, e, s, format);
                    if self.slot_of.len() < self.points.len() {
                        self.slot_of.resize(self.points.len(), NO_SLOT);
                    }
                    let dropped = en.dropped;
                    let (point, bound) = (en.point, en.bound);
                    let name = en.renamed.clone();
                    self.entries.insert(s.series.into(), en);
                    if dropped {
                        continue;
                    }
                    let (_, kind, role) =
                        family_of(name.as_deref().unwrap_or(s.name), format, &e.types);
                    (point, bound, kind, role)
                }
            };
            kept += 1;
            let slot = &mut self.slot_of[point as usize];
            if *slot == NO_SLOT {
                *slot = aggs.len() as u32;
                aggs.push(Agg::default());
                order.push(point);
            }
            let agg = &mut aggs[*slot as usize];
            if t.honor_timestamps && s.timestamp_ms.is_some() {
                agg.ts = s.timestamp_ms;
            }
            if let Some(x) = s.exemplar {
                agg.exemplars
                    .push(otlp_exemplar(&e.exemplars[x as usize], time));
            }
            match (kind, role) {
                (FamilyType::Histogram, Role::Bucket) => {
                    if let Some(le) = bound {
                        agg.buckets.push((le, s.value));
                    }
                }
                (FamilyType::Summary, Role::Value) => {
                    if let Some(q) = bound {
                        agg.quantiles.push((q, s.value));
                    }
                }
                (_, Role::Sum) => agg.sum = Some(s.value),
                (_, Role::Count) => agg.count = Some(s.value),
                (_, Role::Created) => agg.created = Some(s.value),
                (_, Role::Ignored) => {}
                (_, _) => agg.value = Some(s.value),
            }
        }
        // Series not seen this time leave the cache.
        self.entries.retain(|_, en| en.gen == gen);

        let mut added = 0;
        let mut out: Vec<Metric> = Vec::new();
        let mut family_index: FastMap<String, usize> = FastMap::default();
        let mut last_family: Option<usize> = None;
        for (slot, id) in order.iter().enumerate() {
            let agg = std::mem::take(&mut aggs[slot]);
            let Some(p) = self.points[*id as usize].as_mut() else {
                continue;
            };
            p.gen = gen;
            let kind = p.state.kind;
            if kind == FamilyType::GaugeHistogram {
                // The Collector drops gauge histograms.
                continue;
            }
            let ts = agg
                .ts
                .map(|ms| (ms.max(0) as u64).saturating_mul(1_000_000))
                .unwrap_or(time);
            let level = match kind {
                FamilyType::Histogram | FamilyType::Summary => agg.count.unwrap_or(0.0),
                _ => agg.value.unwrap_or(0.0),
            };
            let mut start = if !p.reported {
                added += 1;
                ts
            } else if matches!(kind, FamilyType::Info | FamilyType::StateSet)
                || level >= p.state.last
                || level.is_nan()
            {
                p.state.start_ns
            } else {
                ts // reset
            };
            if let Some(c) = agg.created.filter(|c| *c > 0.0 && c.is_finite()) {
                start = secs_to_ns(c);
            }
            p.reported = true;
            p.state.start_ns = start;
            p.state.last = level;
            // Samples come grouped by family: the previous point's family is the likely one.
            let same = last_family
                .filter(|i| out[*i].name == p.state.family)
                .or_else(|| family_index.get(p.state.family.as_str()).copied());
            let fi = match same {
                Some(i) => i,
                None => {
                    let name = p.state.family.clone();
                    let description = e
                        .help
                        .get(name.as_str())
                        .map(|h| h.to_string())
                        .unwrap_or_default();
                    let unit = e
                        .units
                        .get(name.as_str())
                        .map(|u| u.to_string())
                        .unwrap_or_default();
                    let data = match kind {
                        FamilyType::Counter => metric::Data::Sum(Sum {
                            data_points: Vec::new(),
                            aggregation_temporality: 2,
                            is_monotonic: true,
                        }),
                        FamilyType::Info | FamilyType::StateSet => metric::Data::Sum(Sum {
                            data_points: Vec::new(),
                            aggregation_temporality: 2,
                            is_monotonic: false,
                        }),
                        FamilyType::Gauge | FamilyType::Untyped | FamilyType::GaugeHistogram => {
                            metric::Data::Gauge(Gauge {
                                data_points: Vec::new(),
                            })
                        }
                        FamilyType::Histogram => metric::Data::Histogram(Histogram {
                            data_points: Vec::new(),
                            aggregation_temporality: 2,
                        }),
                        FamilyType::Summary => metric::Data::Summary(Summary {
                            data_points: Vec::new(),
                        }),
                    };
                    family_index.insert(name.clone(), out.len());
                    out.push(Metric {
                        name,
                        description,
                        unit,
                        data: Some(data),
                        ..Default::default()
                    });
                    out.len() - 1
                }
            };
            last_family = Some(fi);
            let attributes = p.state.attributes.clone();
            match out[fi].data.as_mut() {
                Some(metric::Data::Sum(sum)) => {
                    let Some(v) = agg.value else { continue };
                    sum.data_points.push(NumberDataPoint {
                        attributes,
                        start_time_unix_nano: start,
                        time_unix_nano: ts,
                        value: Some(number_data_point::Value::AsDouble(v)),
                        exemplars: agg.exemplars,
                        ..Default::default()
                    });
                }
                Some(metric::Data::Gauge(g)) => {
                    let Some(v) = agg.value else { continue };
                    g.data_points.push(NumberDataPoint {
                        attributes,
                        time_unix_nano: ts,
                        value: Some(number_data_point::Value::AsDouble(v)),
                        exemplars: agg.exemplars,
                        ..Default::default()
                    });
                }
                Some(metric::Data::Histogram(h)) => {
                    let mut buckets = agg.buckets;
                    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
                    let mut bounds = Vec::with_capacity(buckets.len());
                    let mut counts = Vec::with_capacity(buckets.len() + 1);
                    let mut prev = 0.0;
                    let mut inf = None;
                    for (le, c) in &buckets {
                        if le.is_infinite() && *le > 0.0 {
                            inf = Some(*c);
                            continue;
                        }
                        counts.push((c - prev).max(0.0) as u64);
                        prev = *c;
                        bounds.push(*le);
                    }
                    let count = agg.count.or(inf).unwrap_or(prev);
                    counts.push((count - prev).max(0.0) as u64);
                    h.data_points.push(HistogramDataPoint {
                        attributes,
                        start_time_unix_nano: start,
                        time_unix_nano: ts,
                        count: count as u64,
                        sum: agg.sum,
                        bucket_counts: counts,
                        explicit_bounds: bounds,
                        exemplars: agg.exemplars,
                        ..Default::default()
                    });
                }
                Some(metric::Data::Summary(sm)) => {
                    let mut q = agg.quantiles;
                    q.sort_by(|a, b| a.0.total_cmp(&b.0));
                    sm.data_points.push(SummaryDataPoint {
                        attributes,
                        start_time_unix_nano: start,
                        time_unix_nano: ts,
                        count: agg.count.unwrap_or(0.0) as u64,
                        sum: agg.sum.unwrap_or(0.0),
                        quantile_values: q
                            .into_iter()
                            .map(|(quantile, value)| ValueAtQuantile { quantile, value })
                            .collect(),
                        ..Default::default()
                    });
                }
                _ => {}
            }
        }
        // Points not seen this time are stale; their ids are freed.
        let mut gone = Vec::new();
        for id in 0..self.points.len() {
            let stale = matches!(&self.points[id], Some(p) if p.gen != gen);
            if stale {
                if let Some(p) = self.points[id].take() {
                    self.point_ids.remove(&p.key);
                    self.free.push(id as u32);
                    if p.reported && p.state.kind != FamilyType::GaugeHistogram {
                        gone.push(p.state);
                    }
                }
            }
        }
        out.extend(stale_metrics(gone, time));
        Converted {
            metrics: out,
            added,
            kept,
        }
    }

    /// Marks every known point stale (a failed scrape or a target that went away) and
    /// forgets everything.
    pub fn stale_all(&mut self, time: u64) -> Vec<Metric> {
        let gone: Vec<SeriesState> = self
            .points
            .drain(..)
            .flatten()
            .filter(|p| p.reported && p.state.kind != FamilyType::GaugeHistogram)
            .map(|p| p.state)
            .collect();
        self.entries.clear();
        self.point_ids.clear();
        self.free.clear();
        stale_metrics(gone, time)
    }
}

impl Entry {
    fn dropped(gen: u64) -> Entry {
        Entry {
            gen,
            dropped: true,
            renamed: None,
            family_len: 0,
            kind: FamilyType::Untyped,
            point: 0,
            bound: None,
        }
    }
}

/// Points flagged "no recorded value" for series that went away.
pub fn stale_metrics(gone: Vec<SeriesState>, time: u64) -> Vec<Metric> {
    let mut by_family: BTreeMap<String, (FamilyType, Vec<SeriesState>)> = BTreeMap::new();
    for s in gone {
        by_family
            .entry(s.family.clone())
            .or_insert_with(|| (s.kind, Vec::new()))
            .1
            .push(s);
    }
    by_family
        .into_iter()
        .map(|(name, (kind, series))| {
            let number = |s: SeriesState| NumberDataPoint {
                attributes: s.attributes,
                start_time_unix_nano: s.start_ns,
                time_unix_nano: time,
                flags: NO_RECORDED_VALUE,
                ..Default::default()
            };
            let data = match kind {
                FamilyType::Counter | FamilyType::Info | FamilyType::StateSet => {
                    metric::Data::Sum(Sum {
                        data_points: series.into_iter().map(number).collect(),
                        aggregation_temporality: 2,
                        is_monotonic: kind == FamilyType::Counter,
                    })
                }
                FamilyType::Gauge | FamilyType::Untyped | FamilyType::GaugeHistogram => {
                    metric::Data::Gauge(Gauge {
                        data_points: series
                            .into_iter()
                            .map(|s| NumberDataPoint {
                                start_time_unix_nano: 0,
                                ..number(s)
                            })
                            .collect(),
                    })
                }
                FamilyType::Histogram => metric::Data::Histogram(Histogram {
                    data_points: series
                        .into_iter()
                        .map(|s| HistogramDataPoint {
                            attributes: s.attributes,
                            start_time_unix_nano: s.start_ns,
                            time_unix_nano: time,
                            flags: NO_RECORDED_VALUE,
                            ..Default::default()
                        })
                        .collect(),
                    aggregation_temporality: 2,
                }),
                FamilyType::Summary => metric::Data::Summary(Summary {
                    data_points: series
                        .into_iter()
                        .map(|s| SummaryDataPoint {
                            attributes: s.attributes,
                            start_time_unix_nano: s.start_ns,
                            time_unix_nano: time,
                            flags: NO_RECORDED_VALUE,
                            ..Default::default()
                        })
                        .collect(),
                }),
            };
            Metric {
                name,
                data: Some(data),
                ..Default::default()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    #[test]
    fn exemplar_ids_that_are_not_ascii_hex_stay_attributes() {
        // 32 bytes, but a two-byte character sits where a digit pair is read: it panicked.
        let odd = "0123456789abcdef0123456789abcdé";
        assert_eq!(odd.len(), 32);
        let e = text::Exemplar {
            labels: vec![
                ("trace_id", Cow::Borrowed(odd)),
                ("span_id", Cow::Borrowed("00f067aa0ba902b7")),
            ],
            value: 1.5,
            timestamp_s: None,
        };
        let out = otlp_exemplar(&e, 7);
        assert!(out.trace_id.is_empty());
        assert_eq!(
            out.span_id,
            vec![0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7]
        );
        assert_eq!(out.filtered_attributes.len(), 1);
        assert_eq!(out.filtered_attributes[0].key, "trace_id");
        assert_eq!(out.time_unix_nano, 7);
    }
}
