//! Metrics messages.

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::exponential_histogram_data_point::Buckets;
use opentelemetry_proto::tonic::metrics::v1::summary_data_point::ValueAtQuantile;
use opentelemetry_proto::tonic::metrics::v1::{
    exemplar, metric, number_data_point, Exemplar, ExponentialHistogramDataPoint,
    HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, SummaryDataPoint,
};

use super::writer::{write_f64, write_u64, ObjectWriter};
use super::{key_value, resource, scope};

pub(crate) fn metrics_request(out: &mut Vec<u8>, request: &ExportMetricsServiceRequest) {
    let mut o = ObjectWriter::begin(out);
    o.list(
        "resourceMetrics",
        &request.resource_metrics,
        resource_metrics,
    );
    o.end();
}

fn resource_metrics(out: &mut Vec<u8>, rm: &ResourceMetrics) {
    let mut o = ObjectWriter::begin(out);
    if let Some(r) = &rm.resource {
        o.message("resource", |out| resource(out, r));
    }
    o.list("scopeMetrics", &rm.scope_metrics, scope_metrics);
    o.string("schemaUrl", &rm.schema_url);
    o.end();
}

fn scope_metrics(out: &mut Vec<u8>, sm: &ScopeMetrics) {
    let mut o = ObjectWriter::begin(out);
    if let Some(s) = &sm.scope {
        o.message("scope", |out| scope(out, s));
    }
    o.list("metrics", &sm.metrics, metric);
    o.string("schemaUrl", &sm.schema_url);
    o.end();
}

fn metric(out: &mut Vec<u8>, m: &Metric) {
    let mut o = ObjectWriter::begin(out);
    o.string("name", &m.name);
    o.string("description", &m.description);
    o.string("unit", &m.unit);
    match &m.data {
        None => {}
        Some(metric::Data::Gauge(g)) => o.message("gauge", |out| {
            let mut o = ObjectWriter::begin(out);
            o.list("dataPoints", &g.data_points, number_data_point);
            o.end();
        }),
        Some(metric::Data::Sum(s)) => o.message("sum", |out| {
            let mut o = ObjectWriter::begin(out);
            o.list("dataPoints", &s.data_points, number_data_point);
            o.i32("aggregationTemporality", s.aggregation_temporality);
            o.bool("isMonotonic", s.is_monotonic);
            o.end();
        }),
        Some(metric::Data::Histogram(h)) => o.message("histogram", |out| {
            let mut o = ObjectWriter::begin(out);
            o.list("dataPoints", &h.data_points, histogram_data_point);
            o.i32("aggregationTemporality", h.aggregation_temporality);
            o.end();
        }),
        Some(metric::Data::ExponentialHistogram(h)) => o.message("exponentialHistogram", |out| {
            let mut o = ObjectWriter::begin(out);
            o.list(
                "dataPoints",
                &h.data_points,
                exponential_histogram_data_point,
            );
            o.i32("aggregationTemporality", h.aggregation_temporality);
            o.end();
        }),
        Some(metric::Data::Summary(s)) => o.message("summary", |out| {
            let mut o = ObjectWriter::begin(out);
            o.list("dataPoints", &s.data_points, summary_data_point);
            o.end();
        }),
    }
    o.list("metadata", &m.metadata, key_value);
    o.end();
}

fn number_data_point(out: &mut Vec<u8>, p: &NumberDataPoint) {
    let mut o = ObjectWriter::begin(out);
    o.list("attributes", &p.attributes, key_value);
    o.u64("startTimeUnixNano", p.start_time_unix_nano);
    o.u64("timeUnixNano", p.time_unix_nano);
    match p.value {
        None => {}
        Some(number_data_point::Value::AsDouble(d)) => o.f64_always("asDouble", d),
        Some(number_data_point::Value::AsInt(i)) => o.i64_always("asInt", i),
    }
    o.list("exemplars", &p.exemplars, exemplar);
    o.u32("flags", p.flags);
    o.end();
}

fn histogram_data_point(out: &mut Vec<u8>, p: &HistogramDataPoint) {
    let mut o = ObjectWriter::begin(out);
    o.list("attributes", &p.attributes, key_value);
    o.u64("startTimeUnixNano", p.start_time_unix_nano);
    o.u64("timeUnixNano", p.time_unix_nano);
    o.u64("count", p.count);
    if let Some(sum) = p.sum {
        o.f64_always("sum", sum);
    }
    o.list("bucketCounts", &p.bucket_counts, |out, c| {
        write_u64(out, *c)
    });
    o.list("explicitBounds", &p.explicit_bounds, |out, b| {
        write_f64(out, *b)
    });
    o.list("exemplars", &p.exemplars, exemplar);
    o.u32("flags", p.flags);
    if let Some(min) = p.min {
        o.f64_always("min", min);
    }
    if let Some(max) = p.max {
        o.f64_always("max", max);
    }
    o.end();
}

fn exponential_histogram_data_point(out: &mut Vec<u8>, p: &ExponentialHistogramDataPoint) {
    let mut o = ObjectWriter::begin(out);
    o.list("attributes", &p.attributes, key_value);
    o.u64("startTimeUnixNano", p.start_time_unix_nano);
    o.u64("timeUnixNano", p.time_unix_nano);
    o.u64("count", p.count);
    if let Some(sum) = p.sum {
        o.f64_always("sum", sum);
    }
    o.i32("scale", p.scale);
    o.u64("zeroCount", p.zero_count);
    if let Some(b) = &p.positive {
        o.message("positive", |out| buckets(out, b));
    }
    if let Some(b) = &p.negative {
        o.message("negative", |out| buckets(out, b));
    }
    o.u32("flags", p.flags);
    o.list("exemplars", &p.exemplars, exemplar);
    if let Some(min) = p.min {
        o.f64_always("min", min);
    }
    if let Some(max) = p.max {
        o.f64_always("max", max);
    }
    o.f64("zeroThreshold", p.zero_threshold);
    o.end();
}

fn buckets(out: &mut Vec<u8>, b: &Buckets) {
    let mut o = ObjectWriter::begin(out);
    o.i32("offset", b.offset);
    o.list("bucketCounts", &b.bucket_counts, |out, c| {
        write_u64(out, *c)
    });
    o.end();
}

fn summary_data_point(out: &mut Vec<u8>, p: &SummaryDataPoint) {
    let mut o = ObjectWriter::begin(out);
    o.list("attributes", &p.attributes, key_value);
    o.u64("startTimeUnixNano", p.start_time_unix_nano);
    o.u64("timeUnixNano", p.time_unix_nano);
    o.u64("count", p.count);
    o.f64("sum", p.sum);
    o.list("quantileValues", &p.quantile_values, value_at_quantile);
    o.u32("flags", p.flags);
    o.end();
}

fn value_at_quantile(out: &mut Vec<u8>, q: &ValueAtQuantile) {
    let mut o = ObjectWriter::begin(out);
    o.f64("quantile", q.quantile);
    o.f64("value", q.value);
    o.end();
}

fn exemplar(out: &mut Vec<u8>, e: &Exemplar) {
    let mut o = ObjectWriter::begin(out);
    o.list("filteredAttributes", &e.filtered_attributes, key_value);
    o.u64("timeUnixNano", e.time_unix_nano);
    match e.value {
        None => {}
        Some(exemplar::Value::AsDouble(d)) => o.f64_always("asDouble", d),
        Some(exemplar::Value::AsInt(i)) => o.i64_always("asInt", i),
    }
    o.hex("spanId", &e.span_id);
    o.hex("traceId", &e.trace_id);
    o.end();
}
