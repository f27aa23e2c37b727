//! A shallow protobuf walk over OTLP export requests: counts log records / spans / metric
//! data points and reads the generator's send stamp without decoding the message.

use weir_api::Signal;

/// What the sink learns from one export request.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ScanResult {
    /// Log records, spans or metric data points in the request.
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

/// Calls `f(payload)` for each length-delimited field numbered `field` of `buf`.
fn each<'a>(
    buf: &'a [u8],
    field: u64,
    mut f: impl FnMut(&'a [u8]) -> Result<(), Truncated>,
) -> Result<(), Truncated> {
    walk(
        buf,
        0,
        |n, payload| if n == field { f(payload) } else { Ok(()) },
    )
    .map(|_| ())
}

/// `Metric.data` fields holding data points: gauge (5), sum (7), histogram (9),
/// exponential_histogram (10), summary (11). In each, `data_points` is field 1.
const METRIC_DATA: [u64; 5] = [5, 7, 9, 10, 11];

/// Counts the items of an export request (logs: records; traces: spans; metrics: data
/// points of all five kinds) and reads the generator's stamp: logs, the first record's
/// `observed_time_unix_nano` (field 11) that is set; spans, the first span's
/// `start_time_unix_nano` (field 7); metrics, the first gauge point's
/// `start_time_unix_nano` (field 2) that is set (the generator sets it only on the stamped
/// point; other gauges carry no start time).
pub fn scan(buf: &[u8], signal: Signal) -> Result<ScanResult, Truncated> {
    let mut r = ScanResult::default();
    // request.resource_* (1) -> scope_* (2) -> items (2)
    each(buf, 1, |resource| {
        each(resource, 2, |scope| {
            each(scope, 2, |item| match signal {
                Signal::Logs | Signal::Traces => {
                    r.items += 1;
                    if r.first_stamp.is_none() {
                        let field = if signal == Signal::Traces { 7 } else { 11 };
                        let stamp = walk(item, field, |_, _| Ok(()))?;
                        r.first_stamp = stamp.filter(|s| *s > 0);
                    }
                    Ok(())
                }
                // item is a Metric: its data (one of METRIC_DATA) -> data_points (1)
                Signal::Metrics => walk(item, 0, |kind, data| {
                    if !METRIC_DATA.contains(&kind) {
                        return Ok(());
                    }
                    each(data, 1, |point| {
                        r.items += 1;
                        if kind == 5 && r.first_stamp.is_none() {
                            let stamp = walk(point, 2, |_, _| Ok(()))?;
                            r.first_stamp = stamp.filter(|s| *s > 0);
                        }
                        Ok(())
                    })
                })
                .map(|_| ()),
            })
        })
    })?;
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::{Generator, Mix};
    use prost::Message;
    use weir_api::otlp::collector::logs::v1::ExportLogsServiceRequest;
    use weir_api::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
    use weir_api::otlp::collector::trace::v1::ExportTraceServiceRequest;
    use weir_api::otlp::common::v1::{any_value, AnyValue, KeyValue};
    use weir_api::otlp::metrics::v1::{
        exponential_histogram_data_point::Buckets, metric::Data, number_data_point,
        summary_data_point::ValueAtQuantile, ExponentialHistogram, ExponentialHistogramDataPoint,
        Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics,
        ScopeMetrics, Sum, Summary, SummaryDataPoint,
    };

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
            assert_eq!(scan(&bytes, Signal::Logs).unwrap().items, expect as u64);
            let spans = g.spans(n).encode_to_vec();
            let decoded = ExportTraceServiceRequest::decode(spans.as_slice()).unwrap();
            let expect: usize = decoded
                .resource_spans
                .iter()
                .flat_map(|r| &r.scope_spans)
                .map(|s| s.spans.len())
                .sum();
            assert_eq!(scan(&spans, Signal::Traces).unwrap().items, expect as u64);
        }
    }

    #[test]
    fn truncated_is_reported() {
        let mut g = Generator::new(1, Mix::default());
        let bytes = g.logs(5).encode_to_vec();
        assert_eq!(
            scan(&bytes[..bytes.len() - 3], Signal::Logs),
            Err(Truncated)
        );
    }

    fn attrs(k: &str) -> Vec<KeyValue> {
        vec![KeyValue {
            key: k.into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue("v".into())),
            }),
            ..Default::default()
        }]
    }

    fn number(start: u64) -> NumberDataPoint {
        NumberDataPoint {
            attributes: attrs("n"),
            start_time_unix_nano: start,
            time_unix_nano: 1_700_000_000_000_000_000,
            value: Some(number_data_point::Value::AsInt(3)),
            ..Default::default()
        }
    }

    fn metric(name: &str, data: Data) -> Metric {
        Metric {
            name: name.into(),
            unit: "1".into(),
            data: Some(data),
            ..Default::default()
        }
    }

    /// A request with every kind of point: 2 sum + 3 gauge + 4 histogram + 5 exponential
    /// histogram + 6 summary points = 20, plus a metric without data and an empty gauge.
    /// The sum comes first, with start times (not a stamp); the second gauge point carries
    /// `stamp` as its start time.
    fn all_kinds(stamp: u64) -> ExportMetricsServiceRequest {
        let sum = metric(
            "requests",
            Data::Sum(Sum {
                data_points: vec![number(1_600_000_000_000_000_000); 2],
                aggregation_temporality: 2,
                is_monotonic: true,
            }),
        );
        let gauge = metric(
            "cpu",
            Data::Gauge(Gauge {
                data_points: vec![number(0), number(stamp), number(0)],
            }),
        );
        let histogram = metric(
            "duration",
            Data::Histogram(Histogram {
                data_points: vec![
                    HistogramDataPoint {
                        attributes: attrs("h"),
                        start_time_unix_nano: 5,
                        count: 3,
                        bucket_counts: vec![1, 2, 0],
                        explicit_bounds: vec![0.1, 1.0],
                        sum: Some(1.5),
                        ..Default::default()
                    };
                    4
                ],
                aggregation_temporality: 2,
            }),
        );
        let exponential = metric(
            "latency",
            Data::ExponentialHistogram(ExponentialHistogram {
                data_points: vec![
                    ExponentialHistogramDataPoint {
                        attributes: attrs("e"),
                        start_time_unix_nano: 6,
                        count: 4,
                        scale: 2,
                        positive: Some(Buckets {
                            offset: -1,
                            bucket_counts: vec![1, 3],
                        }),
                        ..Default::default()
                    };
                    5
                ],
                aggregation_temporality: 1,
            }),
        );
        let summary = metric(
            "gc",
            Data::Summary(Summary {
                data_points: vec![
                    SummaryDataPoint {
                        attributes: attrs("s"),
                        start_time_unix_nano: 7,
                        count: 2,
                        sum: 0.5,
                        quantile_values: vec![ValueAtQuantile {
                            quantile: 0.99,
                            value: 0.4,
                        }],
                        ..Default::default()
                    };
                    6
                ],
            }),
        );
        let no_data = Metric {
            name: "described only".into(),
            ..Default::default()
        };
        let empty = metric("empty", Data::Gauge(Gauge::default()));
        ExportMetricsServiceRequest {
            resource_metrics: vec![
                ResourceMetrics {
                    scope_metrics: vec![
                        ScopeMetrics {
                            metrics: vec![sum, no_data, gauge],
                            ..Default::default()
                        },
                        ScopeMetrics {
                            metrics: vec![histogram, empty],
                            ..Default::default()
                        },
                    ],
                    ..Default::default()
                },
                ResourceMetrics::default(),
                ResourceMetrics {
                    scope_metrics: vec![ScopeMetrics {
                        metrics: vec![exponential, summary],
                        ..Default::default()
                    }],
                    ..Default::default()
                },
            ],
        }
    }

    #[test]
    fn metrics_count_every_point_kind_and_read_the_gauge_stamp() {
        let bytes = all_kinds(1_765_000_000_123_456_789).encode_to_vec();
        assert_eq!(
            scan(&bytes, Signal::Metrics),
            Ok(ScanResult {
                items: 20,
                first_stamp: Some(1_765_000_000_123_456_789),
            })
        );
        // Without the stamp, no other point's start time is taken for one.
        let bytes = all_kinds(0).encode_to_vec();
        assert_eq!(
            scan(&bytes, Signal::Metrics),
            Ok(ScanResult {
                items: 20,
                first_stamp: None,
            })
        );
        assert_eq!(
            scan(
                &ExportMetricsServiceRequest::default().encode_to_vec(),
                Signal::Metrics
            ),
            Ok(ScanResult::default())
        );
        assert_eq!(
            scan(&bytes[..bytes.len() - 2], Signal::Metrics),
            Err(Truncated)
        );
    }

    #[test]
    fn metric_counts_match_a_full_decode_of_generated_requests() {
        let mut g = Generator::new(11, Mix::default());
        for n in [1, 7, 1000] {
            let bytes = g.metrics(n).encode_to_vec();
            let decoded = ExportMetricsServiceRequest::decode(bytes.as_slice()).unwrap();
            let expect: usize = decoded
                .resource_metrics
                .iter()
                .flat_map(|r| &r.scope_metrics)
                .flat_map(|s| &s.metrics)
                .map(|m| match &m.data {
                    Some(Data::Gauge(g)) => g.data_points.len(),
                    Some(Data::Sum(s)) => s.data_points.len(),
                    Some(Data::Histogram(h)) => h.data_points.len(),
                    Some(Data::ExponentialHistogram(h)) => h.data_points.len(),
                    Some(Data::Summary(s)) => s.data_points.len(),
                    None => 0,
                })
                .sum();
            assert_eq!(expect, n);
            let got = scan(&bytes, Signal::Metrics).unwrap();
            assert_eq!(got.items, n as u64);
            // Unstamped (not from a pool): the sentinel is what the first gauge carries.
            assert_eq!(got.first_stamp, Some(0x5A17_5A17_5A17_5A17));
        }
    }
}
