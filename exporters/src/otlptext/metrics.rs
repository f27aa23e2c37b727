//! The layout of metrics: `ResourceMetrics #n`, `Metric #n` headers, and the data points of
//! every metric type (number points, histograms, exponential histograms, summaries) with
//! their exemplars.

use weir_api::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use weir_api::otlp::metrics::v1::{
    exemplar, metric, number_data_point, Exemplar, HistogramDataPoint, NumberDataPoint,
};

use super::values::{go_f, id_hex, temporality, timestamp};
use super::Buf;

pub(super) fn metrics(req: &ExportMetricsServiceRequest) -> String {
    let mut b = Buf(String::new());
    for (i, rm) in req.resource_metrics.iter().enumerate() {
        b.line(format!("ResourceMetrics #{i}"));
        b.line(format!("Resource SchemaURL: {}", rm.schema_url));
        b.resource(rm.resource.as_ref());
        for (j, sm) in rm.scope_metrics.iter().enumerate() {
            b.line(format!("ScopeMetrics #{j}"));
            b.line(format!("ScopeMetrics SchemaURL: {}", sm.schema_url));
            b.scope(sm.scope.as_ref());
            for (k, m) in sm.metrics.iter().enumerate() {
                b.line(format!("Metric #{k}"));
                b.line("Descriptor:");
                b.line(format!("     -> Name: {}", m.name));
                b.line(format!("     -> Description: {}", m.description));
                b.line(format!("     -> Unit: {}", m.unit));
                let data_type = match &m.data {
                    None => "Empty",
                    Some(metric::Data::Gauge(_)) => "Gauge",
                    Some(metric::Data::Sum(_)) => "Sum",
                    Some(metric::Data::Histogram(_)) => "Histogram",
                    Some(metric::Data::ExponentialHistogram(_)) => "ExponentialHistogram",
                    Some(metric::Data::Summary(_)) => "Summary",
                };
                b.line(format!("     -> DataType: {data_type}"));
                b.attributes("     -> Metadata", &m.metadata);
                data_points(&mut b, m.data.as_ref());
            }
        }
    }
    b.0
}

fn data_points(b: &mut Buf, data: Option<&metric::Data>) {
    match data {
        None => {}
        Some(metric::Data::Gauge(g)) => number_points(b, &g.data_points),
        Some(metric::Data::Sum(s)) => {
            b.line(format!("     -> IsMonotonic: {}", s.is_monotonic));
            b.line(format!(
                "     -> AggregationTemporality: {}",
                temporality(s.aggregation_temporality)
            ));
            number_points(b, &s.data_points);
        }
        Some(metric::Data::Histogram(h)) => {
            b.line(format!(
                "     -> AggregationTemporality: {}",
                temporality(h.aggregation_temporality)
            ));
            for (i, p) in h.data_points.iter().enumerate() {
                histogram_point(b, i, p);
            }
        }
        Some(metric::Data::ExponentialHistogram(h)) => {
            b.line(format!(
                "     -> AggregationTemporality: {}",
                temporality(h.aggregation_temporality)
            ));
            for (i, p) in h.data_points.iter().enumerate() {
                b.line(format!("ExponentialHistogramDataPoints #{i}"));
                b.attributes("Data point attributes", &p.attributes);
                b.line(format!(
                    "StartTimestamp: {}",
                    timestamp(p.start_time_unix_nano)
                ));
                b.line(format!("Timestamp: {}", timestamp(p.time_unix_nano)));
                b.line(format!("Count: {}", p.count));
                optional_floats(b, p.sum, p.min, p.max);
                let factor = std::f64::consts::LN_2 * 2f64.powi(-p.scale);
                if let Some(neg) = &p.negative {
                    for pos in (0..neg.bucket_counts.len()).rev() {
                        let index = f64::from(neg.offset) + pos as f64;
                        let lower = (index * factor).exp();
                        let upper = ((index + 1.0) * factor).exp();
                        b.line(format!(
                            "Bucket [{}, {}), Count: {}",
                            go_f(-upper),
                            go_f(-lower),
                            neg.bucket_counts[pos]
                        ));
                    }
                }
                if p.zero_count != 0 {
                    b.line(format!("Bucket [0, 0], Count: {}", p.zero_count));
                }
                if let Some(posb) = &p.positive {
                    for (pos, count) in posb.bucket_counts.iter().enumerate() {
                        let index = f64::from(posb.offset) + pos as f64;
                        let lower = (index * factor).exp();
                        let upper = ((index + 1.0) * factor).exp();
                        b.line(format!(
                            "Bucket ({}, {}], Count: {count}",
                            go_f(lower),
                            go_f(upper)
                        ));
                    }
                }
                exemplars(b, &p.exemplars);
            }
        }
        Some(metric::Data::Summary(s)) => {
            for (i, p) in s.data_points.iter().enumerate() {
                b.line(format!("SummaryDataPoints #{i}"));
                b.attributes("Data point attributes", &p.attributes);
                b.line(format!(
                    "StartTimestamp: {}",
                    timestamp(p.start_time_unix_nano)
                ));
                b.line(format!("Timestamp: {}", timestamp(p.time_unix_nano)));
                b.line(format!("Count: {}", p.count));
                b.line(format!("Sum: {}", go_f(p.sum)));
                for (n, q) in p.quantile_values.iter().enumerate() {
                    b.line(format!(
                        "QuantileValue #{n}: Quantile {}, Value {}",
                        go_f(q.quantile),
                        go_f(q.value)
                    ));
                }
            }
        }
    }
}

fn optional_floats(b: &mut Buf, sum: Option<f64>, min: Option<f64>, max: Option<f64>) {
    for (name, v) in [("Sum", sum), ("Min", min), ("Max", max)] {
        if let Some(v) = v {
            b.line(format!("{name}: {}", go_f(v)));
        }
    }
}

fn number_points(b: &mut Buf, points: &[NumberDataPoint]) {
    for (i, p) in points.iter().enumerate() {
        b.line(format!("NumberDataPoints #{i}"));
        b.attributes("Data point attributes", &p.attributes);
        b.line(format!(
            "StartTimestamp: {}",
            timestamp(p.start_time_unix_nano)
        ));
        b.line(format!("Timestamp: {}", timestamp(p.time_unix_nano)));
        match p.value {
            Some(number_data_point::Value::AsInt(v)) => b.line(format!("Value: {v}")),
            Some(number_data_point::Value::AsDouble(v)) => b.line(format!("Value: {}", go_f(v))),
            None => {}
        }
        exemplars(b, &p.exemplars);
    }
}

fn histogram_point(b: &mut Buf, i: usize, p: &HistogramDataPoint) {
    b.line(format!("HistogramDataPoints #{i}"));
    b.attributes("Data point attributes", &p.attributes);
    b.line(format!(
        "StartTimestamp: {}",
        timestamp(p.start_time_unix_nano)
    ));
    b.line(format!("Timestamp: {}", timestamp(p.time_unix_nano)));
    b.line(format!("Count: {}", p.count));
    optional_floats(b, p.sum, p.min, p.max);
    for (n, bound) in p.explicit_bounds.iter().enumerate() {
        b.line(format!("ExplicitBounds #{n}: {}", go_f(*bound)));
    }
    for (n, count) in p.bucket_counts.iter().enumerate() {
        b.line(format!("Buckets #{n}, Count: {count}"));
    }
    exemplars(b, &p.exemplars);
}

fn exemplars(b: &mut Buf, list: &[Exemplar]) {
    if list.is_empty() {
        return;
    }
    b.line("Exemplars:");
    for (i, e) in list.iter().enumerate() {
        b.line(format!("Exemplar #{i}"));
        b.line(format!("     -> Trace ID: {}", id_hex(&e.trace_id)));
        b.line(format!("     -> Span ID: {}", id_hex(&e.span_id)));
        b.line(format!(
            "     -> Timestamp: {}",
            timestamp(e.time_unix_nano)
        ));
        match e.value {
            Some(exemplar::Value::AsInt(v)) => b.line(format!("     -> Value: {v}")),
            Some(exemplar::Value::AsDouble(v)) => b.line(format!("     -> Value: {}", go_f(v))),
            None => {}
        }
        b.attributes("     -> FilteredAttributes", &e.filtered_attributes);
    }
}
