//! Applying a guest's answer to the host's own batch, after checking it.

use bytes::Bytes;
use weir_api::Batch;

use crate::guest::{Failure, FailureCause, GuestAnswer};

/// Replacement bytes may be at most this many times the input's size, plus [`OUTPUT_SLACK`]
/// (a guest may grow records, e.g. by adding attributes, but not without bound).
pub(crate) const OUTPUT_GROWTH_FACTOR: usize = 2;
/// Extra replacement bytes allowed beyond [`OUTPUT_GROWTH_FACTOR`] times the input.
pub(crate) const OUTPUT_SLACK: usize = 64 * 1024;

/// The largest replacement a guest may return for an input of `input_len` bytes.
pub(crate) fn max_output(input_len: usize) -> usize {
    input_len
        .saturating_mul(OUTPUT_GROWTH_FACTOR)
        .saturating_add(OUTPUT_SLACK)
}

/// Applies `answer` to `batch`. On `Err` the batch is untouched.
pub(crate) fn apply(batch: &mut Batch, answer: GuestAnswer) -> Result<(), Failure> {
    match answer {
        GuestAnswer::Unchanged => Ok(()),
        GuestAnswer::Verdicts(verdicts) => apply_verdicts(batch, &verdicts),
        GuestAnswer::Replacement(bytes) => {
            let before = batch.item_count();
            let replacement = Batch::decode(batch.signal(), Bytes::from(bytes)).map_err(|e| {
                Failure::new(FailureCause::MalformedOutput, format!("replacement: {e}"))
            })?;
            let after = replacement.item_count();
            if after > before {
                return Err(Failure::new(
                    FailureCause::OversizedOutput,
                    format!("replacement holds {after} items, the input held {before}"),
                ));
            }
            let context = batch.context.clone();
            *batch = replacement;
            batch.context = context;
            Ok(())
        }
    }
}

/// Keeps the items whose verdict byte is 1 and drops those whose byte is 0, in canonical
/// order (resource, scope, record; metrics: metric, data point).
fn apply_verdicts(batch: &mut Batch, verdicts: &[u8]) -> Result<(), Failure> {
    let items = batch.item_count();
    if verdicts.len() != items {
        return Err(Failure::new(
            FailureCause::MalformedOutput,
            format!("{} verdicts for {items} items", verdicts.len()),
        ));
    }
    if let Some(i) = verdicts.iter().position(|v| *v > 1) {
        return Err(Failure::new(
            FailureCause::MalformedOutput,
            format!(
                "verdict {} for item {i} (must be 0 drop or 1 keep)",
                verdicts[i]
            ),
        ));
    }
    if !verdicts.contains(&0) {
        // All kept: forward the batch, original bytes included, untouched.
        return Ok(());
    }
    let flags: Vec<bool> = verdicts.iter().map(|v| *v == 1).collect();
    // What stays is copied out of the original bytes, if the batch still holds them (logs,
    // traces and metrics alike), so the export does not encode the batch again; a decoded
    // payload is edited to match.
    batch.retain_items(&flags);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_api::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
    use weir_api::otlp::metrics::v1::{
        metric::Data, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics,
    };
    use weir_api::Payload;

    fn gauge(name: &str, points: usize) -> Metric {
        Metric {
            name: name.into(),
            data: Some(Data::Gauge(Gauge {
                data_points: vec![NumberDataPoint::default(); points],
            })),
            ..Default::default()
        }
    }

    #[test]
    fn metric_verdicts_apply_per_point_and_prune_emptied_metrics() {
        let mut batch = Batch::new(Payload::Metrics(ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![gauge("a", 2), gauge("b", 1), gauge("c", 2)],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }));
        apply_verdicts(&mut batch, &[1, 0, 0, 0, 1]).unwrap();
        let Payload::Metrics(r) = batch.payload() else {
            unreachable!()
        };
        let names: Vec<&str> = r.resource_metrics[0].scope_metrics[0]
            .metrics
            .iter()
            .map(|m| m.name.as_str())
            .collect();
        assert_eq!(names, ["a", "c"]);
        assert_eq!(batch.item_count(), 2);
    }

    #[test]
    fn bad_verdicts_leave_the_batch_alone() {
        let mut batch = Batch::new(Payload::Metrics(ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![gauge("a", 2)],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }));
        let e = apply_verdicts(&mut batch, &[1]).unwrap_err();
        assert_eq!(e.cause, FailureCause::MalformedOutput);
        assert_eq!(e.detail, "1 verdicts for 2 items");
        let e = apply_verdicts(&mut batch, &[1, 7]).unwrap_err();
        assert_eq!(e.detail, "verdict 7 for item 1 (must be 0 drop or 1 keep)");
        assert_eq!(batch.item_count(), 2);
    }

    #[test]
    fn log_verdicts_keep_an_encoding_copied_from_the_original_bytes() {
        use prost::Message;
        use weir_api::otlp::collector::logs::v1::ExportLogsServiceRequest;
        use weir_api::otlp::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
        use weir_api::Signal;
        let req = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs {
                    log_records: (1..=3)
                        .map(|t| LogRecord {
                            time_unix_nano: t,
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let bytes = Bytes::from(req.encode_to_vec());
        let mut batch = Batch::decode(Signal::Logs, bytes).unwrap();
        apply(&mut batch, GuestAnswer::Verdicts(vec![1, 0, 1])).unwrap();
        assert_eq!(batch.item_count(), 2);
        let spliced = batch.original_bytes().expect("encoding kept").clone();
        let again = Batch::decode(Signal::Logs, spliced).unwrap();
        assert_eq!(again.payload(), batch.payload());
        let Payload::Logs(r) = again.payload() else {
            panic!("logs")
        };
        let times: Vec<u64> = r.resource_logs[0].scope_logs[0]
            .log_records
            .iter()
            .map(|l| l.time_unix_nano)
            .collect();
        assert_eq!(times, vec![1, 3]);
    }

    #[test]
    fn output_cap_grows_with_input() {
        assert_eq!(max_output(0), 65_536);
        assert_eq!(max_output(1000), 67_536);
    }
}
