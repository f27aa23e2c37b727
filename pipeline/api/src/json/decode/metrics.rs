//! Metrics messages.

use super::tree::JsonValue;
use opentelemetry_proto::tonic::metrics::v1::exponential_histogram_data_point::Buckets;
use opentelemetry_proto::tonic::metrics::v1::summary_data_point::ValueAtQuantile;
use opentelemetry_proto::tonic::metrics::v1::{
    exemplar, metric, number_data_point, AggregationTemporality, Exemplar, ExponentialHistogram,
    ExponentialHistogramDataPoint, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint,
};

use super::{
    boolean, double, enumeration, fields, hex_id, int32, int64, key_value, list, resource, scope,
    string, uint32, uint64, SPAN_ID_DIGITS, TRACE_ID_DIGITS,
};
use crate::json::error::{JsonError, Path, Problem};

pub(super) fn resource_metrics(
    value: &JsonValue<'_>,
    path: &Path<'_>,
) -> Result<ResourceMetrics, JsonError> {
    let mut rm = ResourceMetrics::default();
    for (key, value) in fields(value, path)? {
        let path = path.field(key);
        match key {
            "resource" => rm.resource = Some(resource(value, &path)?),
            "scopeMetrics" | "scope_metrics" => {
                rm.scope_metrics = list(value, &path, scope_metrics)?
            }
            "schemaUrl" | "schema_url" => rm.schema_url = string(value, &path)?,
            _ => {}
        }
    }
    Ok(rm)
}

fn scope_metrics(value: &JsonValue<'_>, path: &Path<'_>) -> Result<ScopeMetrics, JsonError> {
    let mut sm = ScopeMetrics::default();
    for (key, value) in fields(value, path)? {
        let path = path.field(key);
        match key {
            "scope" => sm.scope = Some(scope(value, &path)?),
            "metrics" => sm.metrics = list(value, &path, metric)?,
            "schemaUrl" | "schema_url" => sm.schema_url = string(value, &path)?,
            _ => {}
        }
    }
    Ok(sm)
}

fn metric(value: &JsonValue<'_>, path: &Path<'_>) -> Result<Metric, JsonError> {
    let mut m = Metric::default();
    let mut data_key: Option<&str> = None;
    for (key, value) in fields(value, path)? {
        let path = path.field(key);
        let path = &path;
        let data = match key {
            "name" => {
                m.name = string(value, path)?;
                continue;
            }
            "description" => {
                m.description = string(value, path)?;
                continue;
            }
            "unit" => {
                m.unit = string(value, path)?;
                continue;
            }
            "metadata" => {
                m.metadata = list(value, path, key_value)?;
                continue;
            }
            "gauge" => metric::Data::Gauge(gauge(value, path)?),
            "sum" => metric::Data::Sum(sum(value, path)?),
            "histogram" => metric::Data::Histogram(histogram(value, path)?),
            "exponentialHistogram" | "exponential_histogram" => {
                metric::Data::ExponentialHistogram(exponential_histogram(value, path)?)
            }
            "summary" => metric::Data::Summary(summary(value, path)?),
            _ => continue,
        };
        if let Some(first) = data_key {
            return Err(path.error(Problem::OneofConflict {
                first: first.to_owned(),
                second: key.to_string(),
            }));
        }
        data_key = Some(key);
        m.data = Some(data);
    }
    Ok(m)
}

fn temporality(value: &JsonValue<'_>, path: &Path<'_>) -> Result<i32, JsonError> {
    enumeration(value, path, "AggregationTemporality", |name| {
        AggregationTemporality::from_str_name(name).map(|t| t as i32)
    })
}

fn gauge(value: &JsonValue<'_>, path: &Path<'_>) -> Result<Gauge, JsonError> {
    let mut g = Gauge::default();
    for (key, value) in fields(value, path)? {
        if let "dataPoints" | "data_points" = key {
            g.data_points = list(value, &path.field(key), number_data_point)?;
        }
    }
    Ok(g)
}

fn sum(value: &JsonValue<'_>, path: &Path<'_>) -> Result<Sum, JsonError> {
    let mut s = Sum::default();
    for (key, value) in fields(value, path)? {
        let path = path.field(key);
        match key {
            "dataPoints" | "data_points" => s.data_points = list(value, &path, number_data_point)?,
            "aggregationTemporality" | "aggregation_temporality" => {
                s.aggregation_temporality = temporality(value, &path)?
            }
            "isMonotonic" | "is_monotonic" => s.is_monotonic = boolean(value, &path)?,
            _ => {}
        }
    }
    Ok(s)
}

fn histogram(value: &JsonValue<'_>, path: &Path<'_>) -> Result<Histogram, JsonError> {
    let mut h = Histogram::default();
    for (key, value) in fields(value, path)? {
        let path = path.field(key);
        match key {
            "dataPoints" | "data_points" => {
                h.data_points = list(value, &path, histogram_data_point)?
            }
            "aggregationTemporality" | "aggregation_temporality" => {
                h.aggregation_temporality = temporality(value, &path)?
            }
            _ => {}
        }
    }
    Ok(h)
}

fn exponential_histogram(
    value: &JsonValue<'_>,
    path: &Path<'_>,
) -> Result<ExponentialHistogram, JsonError> {
    let mut h = ExponentialHistogram::default();
    for (key, value) in fields(value, path)? {
        let path = path.field(key);
        match key {
            "dataPoints" | "data_points" => {
                h.data_points = list(value, &path, exponential_histogram_data_point)?
            }
            "aggregationTemporality" | "aggregation_temporality" => {
                h.aggregation_temporality = temporality(value, &path)?
            }
            _ => {}
        }
    }
    Ok(h)
}

fn summary(value: &JsonValue<'_>, path: &Path<'_>) -> Result<Summary, JsonError> {
    let mut s = Summary::default();
    for (key, value) in fields(value, path)? {
        if let "dataPoints" | "data_points" = key {
            s.data_points = list(value, &path.field(key), summary_data_point)?;
        }
    }
    Ok(s)
}

fn number_data_point(value: &JsonValue<'_>, path: &Path<'_>) -> Result<NumberDataPoint, JsonError> {
    let mut p = NumberDataPoint::default();
    let mut value_key: Option<&str> = None;
    for (key, value) in fields(value, path)? {
        let path = path.field(key);
        let path = &path;
        let point_value = match key {
            "attributes" => {
                p.attributes = list(value, path, key_value)?;
                continue;
            }
            "startTimeUnixNano" | "start_time_unix_nano" => {
                p.start_time_unix_nano = uint64(value, path)?;
                continue;
            }
            "timeUnixNano" | "time_unix_nano" => {
                p.time_unix_nano = uint64(value, path)?;
                continue;
            }
            "exemplars" => {
                p.exemplars = list(value, path, exemplar)?;
                continue;
            }
            "flags" => {
                p.flags = uint32(value, path)?;
                continue;
            }
            "asDouble" | "as_double" => number_data_point::Value::AsDouble(double(value, path)?),
            "asInt" | "as_int" => number_data_point::Value::AsInt(int64(value, path)?),
            _ => continue,
        };
        if let Some(first) = value_key {
            return Err(path.error(Problem::OneofConflict {
                first: first.to_owned(),
                second: key.to_string(),
            }));
        }
        value_key = Some(key);
        p.value = Some(point_value);
    }
    Ok(p)
}

fn histogram_data_point(
    value: &JsonValue<'_>,
    path: &Path<'_>,
) -> Result<HistogramDataPoint, JsonError> {
    let mut p = HistogramDataPoint::default();
    for (key, value) in fields(value, path)? {
        let path = path.field(key);
        let path = &path;
        match key {
            "attributes" => p.attributes = list(value, path, key_value)?,
            "startTimeUnixNano" | "start_time_unix_nano" => {
                p.start_time_unix_nano = uint64(value, path)?
            }
            "timeUnixNano" | "time_unix_nano" => p.time_unix_nano = uint64(value, path)?,
            "count" => p.count = uint64(value, path)?,
            "sum" => p.sum = Some(double(value, path)?),
            "bucketCounts" | "bucket_counts" => p.bucket_counts = list(value, path, uint64)?,
            "explicitBounds" | "explicit_bounds" => p.explicit_bounds = list(value, path, double)?,
            "exemplars" => p.exemplars = list(value, path, exemplar)?,
            "flags" => p.flags = uint32(value, path)?,
            "min" => p.min = Some(double(value, path)?),
            "max" => p.max = Some(double(value, path)?),
            _ => {}
        }
    }
    Ok(p)
}

fn exponential_histogram_data_point(
    value: &JsonValue<'_>,
    path: &Path<'_>,
) -> Result<ExponentialHistogramDataPoint, JsonError> {
    let mut p = ExponentialHistogramDataPoint::default();
    for (key, value) in fields(value, path)? {
        let path = path.field(key);
        let path = &path;
        match key {
            "attributes" => p.attributes = list(value, path, key_value)?,
            "startTimeUnixNano" | "start_time_unix_nano" => {
                p.start_time_unix_nano = uint64(value, path)?
            }
            "timeUnixNano" | "time_unix_nano" => p.time_unix_nano = uint64(value, path)?,
            "count" => p.count = uint64(value, path)?,
            "sum" => p.sum = Some(double(value, path)?),
            "scale" => p.scale = int32(value, path)?,
            "zeroCount" | "zero_count" => p.zero_count = uint64(value, path)?,
            "positive" => p.positive = Some(buckets(value, path)?),
            "negative" => p.negative = Some(buckets(value, path)?),
            "flags" => p.flags = uint32(value, path)?,
            "exemplars" => p.exemplars = list(value, path, exemplar)?,
            "min" => p.min = Some(double(value, path)?),
            "max" => p.max = Some(double(value, path)?),
            "zeroThreshold" | "zero_threshold" => p.zero_threshold = double(value, path)?,
            _ => {}
        }
    }
    Ok(p)
}

fn buckets(value: &JsonValue<'_>, path: &Path<'_>) -> Result<Buckets, JsonError> {
    let mut b = Buckets::default();
    for (key, value) in fields(value, path)? {
        let path = path.field(key);
        match key {
            "offset" => b.offset = int32(value, &path)?,
            "bucketCounts" | "bucket_counts" => b.bucket_counts = list(value, &path, uint64)?,
            _ => {}
        }
    }
    Ok(b)
}

fn summary_data_point(
    value: &JsonValue<'_>,
    path: &Path<'_>,
) -> Result<SummaryDataPoint, JsonError> {
    let mut p = SummaryDataPoint::default();
    for (key, value) in fields(value, path)? {
        let path = path.field(key);
        let path = &path;
        match key {
            "attributes" => p.attributes = list(value, path, key_value)?,
            "startTimeUnixNano" | "start_time_unix_nano" => {
                p.start_time_unix_nano = uint64(value, path)?
            }
            "timeUnixNano" | "time_unix_nano" => p.time_unix_nano = uint64(value, path)?,
            "count" => p.count = uint64(value, path)?,
            "sum" => p.sum = double(value, path)?,
            "quantileValues" | "quantile_values" => {
                p.quantile_values = list(value, path, value_at_quantile)?
            }
            "flags" => p.flags = uint32(value, path)?,
            _ => {}
        }
    }
    Ok(p)
}

fn value_at_quantile(value: &JsonValue<'_>, path: &Path<'_>) -> Result<ValueAtQuantile, JsonError> {
    let mut q = ValueAtQuantile::default();
    for (key, value) in fields(value, path)? {
        let path = path.field(key);
        match key {
            "quantile" => q.quantile = double(value, &path)?,
            "value" => q.value = double(value, &path)?,
            _ => {}
        }
    }
    Ok(q)
}

fn exemplar(value: &JsonValue<'_>, path: &Path<'_>) -> Result<Exemplar, JsonError> {
    let mut e = Exemplar::default();
    let mut value_key: Option<&str> = None;
    for (key, value) in fields(value, path)? {
        let path = path.field(key);
        let path = &path;
        let exemplar_value = match key {
            "filteredAttributes" | "filtered_attributes" => {
                e.filtered_attributes = list(value, path, key_value)?;
                continue;
            }
            "timeUnixNano" | "time_unix_nano" => {
                e.time_unix_nano = uint64(value, path)?;
                continue;
            }
            "spanId" | "span_id" => {
                e.span_id = hex_id(value, path, SPAN_ID_DIGITS)?;
                continue;
            }
            "traceId" | "trace_id" => {
                e.trace_id = hex_id(value, path, TRACE_ID_DIGITS)?;
                continue;
            }
            "asDouble" | "as_double" => exemplar::Value::AsDouble(double(value, path)?),
            "asInt" | "as_int" => exemplar::Value::AsInt(int64(value, path)?),
            _ => continue,
        };
        if let Some(first) = value_key {
            return Err(path.error(Problem::OneofConflict {
                first: first.to_owned(),
                second: key.to_string(),
            }));
        }
        value_key = Some(key);
        e.value = Some(exemplar_value);
    }
    Ok(e)
}
