//! Tidies metrics: drops whole metrics whose name starts with one of `drop_prefixes`, and
//! removes the point attributes named in `remove_attributes` (high-cardinality ones such as
//! `host.id` or `http.url`), merging the series that become identical with
//! [`Metrics::merge_series`](weir_wasm_sdk::Metrics::merge_series) (counters added, gauges:
//! latest value, histogram buckets added).
//!
//! ```yaml
//! processors:
//!   wasm/tidy:
//!     module: metric_tidy.wasm
//!     config:
//!       drop_prefixes: [debug., go.gc.]
//!       remove_attributes: [host.id]
//!     on_error: pass     # tidying is not a security control: fail open
//! ```
//!
//! Batches with nothing to remove are answered from the bytes alone (verdicts or
//! "unchanged"); only a batch holding one of the attributes is decoded and re-encoded.

use weir_wasm_sdk::{export, remove_attribute, Error, Metrics, Processor};

/// The processor: its config.
pub struct MetricTidy {
    drop_prefixes: Vec<String>,
    remove_attributes: Vec<String>,
}

fn strings(config: &weir_wasm_sdk::serde_json::Value, key: &str) -> Result<Vec<String>, Error> {
    match &config[key] {
        v if v.is_null() => Ok(Vec::new()),
        v => v
            .as_array()
            .and_then(|a| a.iter().map(|s| s.as_str().map(str::to_string)).collect())
            .ok_or_else(|| Error::new(format!("{key} must be a list of strings, got {v}"))),
    }
}

impl Processor for MetricTidy {
    fn init(config: &weir_wasm_sdk::serde_json::Value) -> Result<Self, Error> {
        Ok(MetricTidy {
            drop_prefixes: strings(config, "drop_prefixes")?,
            remove_attributes: strings(config, "remove_attributes")?,
        })
    }

    fn process_metrics(&mut self, metrics: &mut Metrics<'_>) -> Result<(), Error> {
        if !self.drop_prefixes.is_empty() {
            metrics.retain_metrics_view(|m| {
                !self
                    .drop_prefixes
                    .iter()
                    .any(|p| m.name().starts_with(p.as_str()))
            })?;
        }
        if self.remove_attributes.is_empty() {
            return Ok(());
        }
        // A cheap look at the bytes first: decode only when some point has an attribute to
        // remove.
        let mut found = false;
        metrics.retain_points_view(|p| {
            found = found
                || p.attributes()
                    .any(|(k, _)| self.remove_attributes.iter().any(|r| r == k));
            true
        })?;
        if !found {
            return Ok(());
        }
        metrics.for_each_point_mut(|_, mut point| {
            for key in &self.remove_attributes {
                remove_attribute(point.attributes_mut(), key);
            }
        })?;
        metrics.merge_series()?;
        Ok(())
    }
}

export!(MetricTidy, metrics);

#[cfg(test)]
mod tests {
    use super::*;
    use weir_wasm_sdk::otlp::metrics::v1::{metric::Data, number_data_point::Value};
    use weir_wasm_sdk::serde_json::json;
    use weir_wasm_sdk::testing::{counter, gauge, int_point, kv, metrics_request, run_metrics};
    use weir_wasm_sdk::Answer;

    fn tidy(config: weir_wasm_sdk::serde_json::Value) -> MetricTidy {
        MetricTidy::init(&config).unwrap()
    }

    #[test]
    fn drops_metrics_by_prefix_with_verdicts_only() {
        let batch = metrics_request(
            vec![],
            vec![
                gauge("debug.queue", vec![int_point(vec![], 1, 1)]),
                counter("requests", vec![int_point(vec![kv("code", 200_i64)], 1, 5)]),
            ],
        );
        let out = run_metrics(&mut tidy(json!({"drop_prefixes": ["debug."]})), &batch).unwrap();
        assert_eq!(out.answer, Answer::Verdicts(vec![0, 1]));
        let names: Vec<_> = out.metrics().iter().map(|m| m.name.clone()).collect();
        assert_eq!(names, ["requests"]);
    }

    #[test]
    fn removing_an_attribute_merges_the_series() {
        let batch = metrics_request(
            vec![],
            vec![counter(
                "requests",
                vec![
                    int_point(vec![kv("host.id", "a"), kv("code", 200_i64)], 1, 5),
                    int_point(vec![kv("host.id", "b"), kv("code", 200_i64)], 1, 7),
                    int_point(vec![kv("host.id", "a"), kv("code", 500_i64)], 1, 1),
                ],
            )],
        );
        let mut p = tidy(json!({"remove_attributes": ["host.id"]}));
        let out = run_metrics(&mut p, &batch).unwrap();
        assert_eq!((out.input, out.dropped, out.replaced), (3, 1, 2));
        let Some(Data::Sum(s)) = &out.metrics()[0].data else {
            panic!("a sum")
        };
        let series: Vec<_> = s
            .data_points
            .iter()
            .map(|p| (p.attributes.clone(), p.value))
            .collect();
        assert_eq!(
            series,
            [
                (vec![kv("code", 200_i64)], Some(Value::AsInt(12))),
                (vec![kv("code", 500_i64)], Some(Value::AsInt(1))),
            ]
        );
    }

    #[test]
    fn a_batch_without_the_attribute_is_answered_unchanged() {
        let batch = metrics_request(
            vec![],
            vec![counter(
                "requests",
                vec![int_point(vec![kv("code", 200_i64)], 1, 5)],
            )],
        );
        let out =
            run_metrics(&mut tidy(json!({"remove_attributes": ["host.id"]})), &batch).unwrap();
        assert_eq!(out.answer, Answer::Unchanged);
    }

    #[test]
    fn a_config_that_is_not_a_list_is_refused() {
        let e = MetricTidy::init(&json!({"drop_prefixes": "debug."}))
            .err()
            .unwrap();
        assert_eq!(
            e.to_string(),
            "drop_prefixes must be a list of strings, got \"debug.\""
        );
    }
}
