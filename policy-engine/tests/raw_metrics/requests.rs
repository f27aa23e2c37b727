//! Metrics built at the byte level, in the unusual encodings protobuf allows, for the
//! differential test of the evaluation on encoded requests; the shared `Gen` of
//! `raw_common` writes the values, scopes, resources and requests around them.

use opentelemetry_proto::tonic::metrics::v1::exponential_histogram_data_point::Buckets;
use opentelemetry_proto::tonic::metrics::v1::summary_data_point::ValueAtQuantile;
use opentelemetry_proto::tonic::metrics::v1::{exemplar, number_data_point, Exemplar};
use opentelemetry_proto::tonic::metrics::v1::{ExponentialHistogramDataPoint, HistogramDataPoint};
use opentelemetry_proto::tonic::metrics::v1::{NumberDataPoint, SummaryDataPoint};
use prost::Message;

use crate::raw_common::{
    field, len_field, put_varint, unknown_group, varint_field, Gen, Prost, DOUBLES, INTS, TRACE_ID,
    WORDS,
};

/// Field numbers of the `data` oneof's members in `Metric`.
pub(crate) const GAUGE: u64 = 5;
pub(crate) const SUM: u64 = 7;
pub(crate) const HISTOGRAM: u64 = 9;
pub(crate) const EXP_HISTOGRAM: u64 = 10;
pub(crate) const SUMMARY: u64 = 11;
pub(crate) const MEMBERS: [u64; 5] = [GAUGE, SUM, HISTOGRAM, EXP_HISTOGRAM, SUMMARY];

pub(crate) const METRIC_NAMES: [&str; 6] =
    ["", "alpha", "http.server.duration", "beta", "ERROR", "4bf9"];
pub(crate) const UNITS: [&str; 4] = ["", "ms", "By", "alpha"];

fn varint_vec(number: u64, v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    varint_field(&mut out, number, v);
    out
}

/// The metric generator (with its data members, points and exemplars).
impl Gen {
    /// An exemplar, sometimes with encodings that would send a metric to prost were they
    /// read (they are not: nothing reads exemplars).
    fn exemplar(&mut self) -> Vec<u8> {
        let e = Exemplar {
            filtered_attributes: self.key_values(0),
            time_unix_nano: self.rng.next(),
            span_id: TRACE_ID[8..].to_vec(),
            trace_id: TRACE_ID.to_vec(),
            value: Some(exemplar::Value::AsDouble(self.rng.pick(&DOUBLES))),
        };
        let mut bytes = e.encode_to_vec();
        if self.rng.chance(30) {
            let mut ignored = false;
            self.append_odd_attribute(7, &mut bytes, &mut ignored);
            unknown_group(&mut bytes);
        }
        bytes
    }

    /// A data point of the `data` member numbered `member`; sets `prost` when prost must
    /// decide the metric because of it.
    fn point(&mut self, member: u64, prost: &mut Prost) -> Vec<u8> {
        let attributes = self.key_values(0);
        let r = &mut self.rng;
        let (mut bytes, attributes_field, exemplars_field) = match member {
            GAUGE | SUM => {
                let value = if r.chance(50) {
                    number_data_point::Value::AsDouble(r.pick(&DOUBLES))
                } else {
                    number_data_point::Value::AsInt(r.pick(&INTS))
                };
                let p = NumberDataPoint {
                    attributes,
                    start_time_unix_nano: r.next(),
                    time_unix_nano: r.next(),
                    exemplars: vec![],
                    flags: r.below(2) as u32,
                    value: r.chance(90).then_some(value),
                };
                (p.encode_to_vec(), 7, 5)
            }
            HISTOGRAM => {
                let p = HistogramDataPoint {
                    attributes,
                    time_unix_nano: r.next(),
                    count: r.below(10) as u64,
                    sum: r.chance(50).then_some(2.5),
                    bucket_counts: vec![1, r.below(5) as u64],
                    explicit_bounds: vec![r.pick(&DOUBLES)],
                    min: r.chance(50).then_some(-1.5),
                    max: r.chance(50).then_some(200.0),
                    ..Default::default()
                };
                (p.encode_to_vec(), 9, 8)
            }
            EXP_HISTOGRAM => {
                let p = ExponentialHistogramDataPoint {
                    attributes,
                    time_unix_nano: r.next(),
                    count: 3,
                    scale: r.below(7) as i32 - 3,
                    zero_count: 1,
                    positive: r.chance(70).then(|| Buckets {
                        offset: r.below(5) as i32 - 2,
                        bucket_counts: vec![1, 1],
                    }),
                    negative: r.chance(30).then(Buckets::default),
                    zero_threshold: r.pick(&DOUBLES),
                    ..Default::default()
                };
                (p.encode_to_vec(), 1, 11)
            }
            _ => {
                let p = SummaryDataPoint {
                    attributes,
                    time_unix_nano: r.next(),
                    count: 4,
                    sum: 10.0,
                    quantile_values: vec![ValueAtQuantile {
                        quantile: 0.5,
                        value: r.pick(&DOUBLES),
                    }],
                    ..Default::default()
                };
                (p.encode_to_vec(), 7, 0)
            }
        };
        if exemplars_field > 0 && self.rng.chance(20) {
            let e = self.exemplar();
            len_field(&mut bytes, exemplars_field, &e);
        }
        let odd = if self.rng.chance(35) {
            self.rng.below(2) + 1
        } else {
            0
        };
        for _ in 0..odd {
            match self.rng.below(8) {
                0 | 1 => {
                    self.append_odd_attribute(attributes_field, &mut bytes, &mut prost.attributes)
                }
                2 => {
                    self.prepend_odd_attribute(attributes_field, &mut bytes, &mut prost.attributes)
                }
                3 => {
                    // Unknown fields of every wire type.
                    varint_field(&mut bytes, 100, 7);
                    put_varint(&mut bytes, 17 << 3 | 5);
                    bytes.extend_from_slice(&[1, 2, 3, 4]);
                    len_field(&mut bytes, 18, b"unknown");
                }
                4 if member == HISTOGRAM => {
                    // A bucket count and a bound one value per field (not packed).
                    put_varint(&mut bytes, 6 << 3 | 1);
                    bytes.extend_from_slice(&7u64.to_le_bytes());
                    put_varint(&mut bytes, 7 << 3 | 1);
                    bytes.extend_from_slice(&2.5f64.to_le_bytes());
                }
                5 => {
                    unknown_group(&mut bytes);
                    prost.other = true;
                }
                _ => {
                    // Plain attributes after everything else.
                    for a in self.key_values(0) {
                        len_field(&mut bytes, attributes_field, &a.encode_to_vec());
                    }
                }
            }
        }
        bytes
    }

    /// An occurrence of the `data` member numbered `member` holding `points` points, and
    /// for sums and histograms temporalities (none, one or two; some beyond 32 bits) and a
    /// sum's monotonic flag, in random order, sometimes with unknown fields or a group; sets
    /// `prost` when prost must decide the metric because of it.
    fn member(&mut self, member: u64, points: usize, prost: &mut Prost) -> Vec<u8> {
        let points: Vec<Vec<u8>> = (0..points)
            .map(|_| field(1, &self.point(member, prost)))
            .collect();
        let mut extras = Vec::new();
        if matches!(member, SUM | HISTOGRAM | EXP_HISTOGRAM) {
            for _ in 0..self.rng.pick(&[0, 1, 1, 1, 2]) {
                let t = self.rng.below(3) as u64;
                let t = match self.rng.below(20) {
                    0 => t | 1 << 33,
                    1 => u64::MAX,
                    _ => t,
                };
                extras.push(varint_vec(2, t));
            }
        }
        if member == SUM && self.rng.chance(60) {
            extras.push(varint_vec(3, self.rng.below(2) as u64));
        }
        if self.rng.chance(10) {
            extras.push(varint_vec(15, 1));
        }
        if self.rng.chance(2) {
            let mut g = Vec::new();
            unknown_group(&mut g);
            extras.push(g);
            prost.other = true;
        }
        self.interleave(points, extras)
    }

    /// A metric: its name, description and unit (each absent, once or twice), no data or
    /// one to three occurrences of `data` members (one member, the same member twice,
    /// two members in either order, a member then another then the first again), metadata,
    /// unknown fields and groups. About one metric in ten has no points (no data, or a
    /// member without any), so that many requests have a flag per point. Counts the metric
    /// in `prost` with the reasons prost must decide it for: only what the metric's data finally
    /// is (the last member, merged with its earlier occurrences since another member) sends
    /// it there; a member another one overrides is never read.
    pub(crate) fn metric(&mut self) -> Vec<u8> {
        let r = &mut self.rng;
        let pointless = r.chance(10);
        let mut members: Vec<u64> = match r.below(12) {
            _ if pointless && r.chance(50) => vec![],
            0..=6 => vec![r.pick(&MEMBERS)],
            7 | 8 => vec![r.pick(&MEMBERS); 2],
            9 | 10 => {
                let a = r.pick(&MEMBERS);
                let b = r.pick(&MEMBERS);
                vec![a, b]
            }
            _ => {
                let a = r.pick(&MEMBERS);
                let b = r.pick(&MEMBERS);
                vec![a, b, a]
            }
        };
        if members.len() == 3 && self.rng.chance(30) {
            // Three of one member: one data, points of all three.
            members = vec![members[0]; 3];
        }
        let last = members.last().copied();
        // The occurrences that make the data: the last ones, of the last member.
        let final_run = members
            .iter()
            .rev()
            .take_while(|m| Some(**m) == last)
            .count();
        let mut occurrences = Vec::new();
        let mut prost = Prost::default();
        for (i, &m) in members.iter().enumerate() {
            let in_data = i >= members.len() - final_run;
            let points = match self.rng.pick(&[0, 1, 1, 2, 3, 4]) {
                _ if in_data && pointless => 0,
                0 if i + 1 == members.len() => 1,
                n => n,
            };
            let mut p = Prost::default();
            occurrences.push(field(m, &self.member(m, points, &mut p)));
            if in_data {
                prost.other |= p.other;
                prost.attributes |= p.attributes;
            }
        }

        let mut extras = Vec::new();
        for (number, words) in [(1, &METRIC_NAMES[..]), (2, &WORDS[..]), (3, &UNITS[..])] {
            for _ in 0..self.rng.pick(&[0, 1, 1, 1, 2]) {
                extras.push(field(number, self.rng.pick(words).as_bytes()));
            }
        }
        // Metadata: nobody reads it, so nothing in it sends the metric to prost.
        for kv in self.key_values(0) {
            extras.push(field(12, &kv.encode_to_vec()));
        }
        if self.rng.chance(10) {
            let mut ignored = false;
            extras.push(self.odd_attribute(12, &mut ignored));
        }
        if self.rng.chance(10) {
            // Unknown fields, and the reserved field 4.
            let mut u = Vec::new();
            varint_field(&mut u, 100, 7);
            len_field(&mut u, 4, b"reserved");
            extras.push(u);
        }
        if self.rng.chance(2) {
            let mut g = Vec::new();
            unknown_group(&mut g);
            extras.push(g);
            prost.other = true;
        }
        self.prost.push(prost);
        self.interleave(occurrences, extras)
    }
}
