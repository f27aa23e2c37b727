//! One batch as the guest sees it: the protobuf bytes, decoded only when asked.

use prost::Message;

use crate::otlp::collector::logs::v1::ExportLogsServiceRequest;
use crate::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use crate::otlp::collector::trace::v1::ExportTraceServiceRequest;
use crate::otlp::logs::v1::LogRecord;
use crate::otlp::metrics::v1::{metric::Data, Metric};
use crate::otlp::trace::v1::Span;
use crate::view::{each_item, LogRecordView, SpanView};
use crate::Error;

/// What the guest answers for a batch (see ABI.md, "Answers").
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    /// Forward the batch as it arrived.
    Unchanged,
    /// One byte per item in canonical order, 1 keep, 0 drop.
    Verdicts(Vec<u8>),
    /// A replacement export request, protobuf-encoded.
    Replacement(Vec<u8>),
}

/// State shared by the three batch kinds.
struct Core<'a, R> {
    bytes: &'a [u8],
    decoded: Option<R>,
    /// Per-item verdicts, once any item was dropped or kept explicitly.
    keep: Option<Vec<u8>>,
    modified: bool,
}

impl<'a, R: Message + Default> Core<'a, R> {
    fn new(bytes: &'a [u8]) -> Self {
        Core {
            bytes,
            decoded: None,
            keep: None,
            modified: false,
        }
    }

    fn request(&mut self) -> Result<&mut R, Error> {
        if self.decoded.is_none() {
            self.decoded = Some(R::decode(self.bytes).map_err(|e| Error::new(e.to_string()))?);
        }
        self.decoded
            .as_mut()
            .ok_or_else(|| Error::new("batch not decoded"))
    }

    fn verdicts(&mut self, len: usize) -> &mut Vec<u8> {
        self.keep.get_or_insert_with(|| vec![1; len])
    }

    /// The answer: verdicts when only drops happened, replacement bytes after edits.
    fn finish(mut self, retain: impl FnOnce(&mut R, &mut dyn FnMut() -> bool)) -> Answer {
        let drops = self.keep.as_ref().is_some_and(|k| k.contains(&0));
        if self.modified {
            let Some(mut request) = self.decoded.take() else {
                return Answer::Unchanged;
            };
            if let Some(keep) = self.keep.filter(|_| drops) {
                let mut next = keep.into_iter();
                retain(&mut request, &mut || next.next() != Some(0));
            }
            return Answer::Replacement(request.encode_to_vec());
        }
        match self.keep {
            Some(keep) if drops => Answer::Verdicts(keep),
            _ => Answer::Unchanged,
        }
    }
}

macro_rules! flat_batch {
    ($(#[$doc:meta])* $name:ident, $request:ty, $item:ty, $view:ident, $resources:ident, $scopes:ident, $items:ident) => {
        $(#[$doc])*
        pub struct $name<'a> {
            core: Core<'a, $request>,
        }

        impl<'a> $name<'a> {
            /// A batch over the export request bytes the host passed in.
            pub fn from_protobuf(bytes: &'a [u8]) -> Self {
                $name { core: Core::new(bytes) }
            }

            /// The decoded request (decoded on first use).
            pub fn request(&mut self) -> Result<&$request, Error> {
                self.core.request().map(|r| &*r)
            }

            /// The decoded request for editing; the batch will be answered with replacement
            /// bytes, so edit only when something really changes.
            pub fn request_mut(&mut self) -> Result<&mut $request, Error> {
                self.core.modified = true;
                self.core.request()
            }

            /// Number of items, counted from the bytes when not decoded.
            pub fn len(&mut self) -> Result<usize, Error> {
                if let Some(r) = &self.core.decoded {
                    return Ok(r.$resources.iter().flat_map(|x| &x.$scopes).map(|s| s.$items.len()).sum());
                }
                let mut n = 0;
                each_item(self.core.bytes, &mut |_| {
                    n += 1;
                    Ok(())
                })
                .map_err(|e| Error::new(e.to_string()))?;
                Ok(n)
            }

            /// Whether the batch holds no items.
            pub fn is_empty(&mut self) -> Result<bool, Error> {
                self.len().map(|n| n == 0)
            }

            /// Keeps the items for which `keep` is true, reading them in place from the bytes
            /// (no decode): the fast path. Verdicts of several calls combine (an item dropped
            /// once stays dropped).
            pub fn retain_view(&mut self, mut keep: impl FnMut(&$view<'a>) -> bool) -> Result<(), Error> {
                let mut out = self.core.keep.take();
                let mut i = 0;
                let mut fresh = Vec::new();
                let bytes = self.core.bytes;
                each_item(bytes, &mut |item| {
                    let k = keep(&$view::new(item));
                    match &mut out {
                        Some(v) => {
                            if let Some(slot) = v.get_mut(i) {
                                *slot &= u8::from(k);
                            }
                        }
                        None => fresh.push(u8::from(k)),
                    }
                    i += 1;
                    Ok(())
                })
                .map_err(|e| Error::new(e.to_string()))?;
                self.core.keep = Some(out.unwrap_or(fresh));
                Ok(())
            }

            /// Keeps the items for which `keep` is true, on the decoded items.
            pub fn retain(&mut self, mut keep: impl FnMut(&$item) -> bool) -> Result<(), Error> {
                let n = self.len()?;
                let request = self.core.request()?;
                let decisions: Vec<bool> = request
                    .$resources
                    .iter()
                    .flat_map(|x| &x.$scopes)
                    .flat_map(|s| &s.$items)
                    .map(|item| keep(item))
                    .collect();
                let v = self.core.verdicts(n);
                for (slot, k) in v.iter_mut().zip(decisions) {
                    *slot &= u8::from(k);
                }
                Ok(())
            }

            /// Calls `edit` on every item, in canonical order, for changing fields or
            /// attributes. Items dropped by an earlier `retain` are visited too.
            pub fn for_each_mut(&mut self, mut edit: impl FnMut(&mut $item)) -> Result<(), Error> {
                let request = self.request_mut()?;
                request
                    .$resources
                    .iter_mut()
                    .flat_map(|x| &mut x.$scopes)
                    .flat_map(|s| &mut s.$items)
                    .for_each(|item| edit(item));
                Ok(())
            }

            /// What to answer the host.
            pub fn finish(self) -> Answer {
                self.core.finish(|request, keep| {
                    for x in &mut request.$resources {
                        for s in &mut x.$scopes {
                            s.$items.retain(|_| keep());
                        }
                        x.$scopes.retain(|s| !s.$items.is_empty());
                    }
                    request.$resources.retain(|x| !x.$scopes.is_empty());
                })
            }
        }
    };
}

flat_batch!(
    /// A batch of log records.
    Logs, ExportLogsServiceRequest, LogRecord, LogRecordView, resource_logs, scope_logs, log_records
);
flat_batch!(
    /// A batch of spans.
    Spans, ExportTraceServiceRequest, Span, SpanView, resource_spans, scope_spans, spans
);

/// Number of data points of one metric (the unit verdicts count in).
pub fn point_count(metric: &Metric) -> usize {
    match &metric.data {
        None => 0,
        Some(Data::Gauge(g)) => g.data_points.len(),
        Some(Data::Sum(s)) => s.data_points.len(),
        Some(Data::Histogram(h)) => h.data_points.len(),
        Some(Data::ExponentialHistogram(h)) => h.data_points.len(),
        Some(Data::Summary(s)) => s.data_points.len(),
    }
}

/// A batch of metrics. Items are data points; [`Metrics::retain_metrics`] decides per metric.
pub struct Metrics<'a> {
    core: Core<'a, ExportMetricsServiceRequest>,
}

impl<'a> Metrics<'a> {
    /// A batch over the export request bytes the host passed in.
    pub fn from_protobuf(bytes: &'a [u8]) -> Self {
        Metrics {
            core: Core::new(bytes),
        }
    }

    fn metrics(request: &ExportMetricsServiceRequest) -> impl Iterator<Item = &Metric> {
        request
            .resource_metrics
            .iter()
            .flat_map(|r| &r.scope_metrics)
            .flat_map(|s| &s.metrics)
    }

    /// The decoded request (decoded on first use).
    pub fn request(&mut self) -> Result<&ExportMetricsServiceRequest, Error> {
        self.core.request().map(|r| &*r)
    }

    /// The decoded request for editing (answered with replacement bytes).
    pub fn request_mut(&mut self) -> Result<&mut ExportMetricsServiceRequest, Error> {
        self.core.modified = true;
        self.core.request()
    }

    /// Keeps all data points of the metrics for which `keep` is true, drops the others.
    pub fn retain_metrics(&mut self, mut keep: impl FnMut(&Metric) -> bool) -> Result<(), Error> {
        let request = self.core.request()?;
        let decisions: Vec<(usize, bool)> = Self::metrics(request)
            .map(|m| (point_count(m), keep(m)))
            .collect();
        let total = decisions.iter().map(|(n, _)| n).sum();
        let v = self.core.verdicts(total);
        let mut slots = v.iter_mut();
        for (n, k) in decisions {
            for slot in slots.by_ref().take(n) {
                *slot &= u8::from(k);
            }
        }
        Ok(())
    }

    /// What to answer the host.
    pub fn finish(self) -> Answer {
        self.core.finish(|request, keep| {
            for rm in &mut request.resource_metrics {
                for sm in &mut rm.scope_metrics {
                    for m in &mut sm.metrics {
                        match &mut m.data {
                            None => {}
                            Some(Data::Gauge(g)) => g.data_points.retain(|_| keep()),
                            Some(Data::Sum(s)) => s.data_points.retain(|_| keep()),
                            Some(Data::Histogram(h)) => h.data_points.retain(|_| keep()),
                            Some(Data::ExponentialHistogram(h)) => h.data_points.retain(|_| keep()),
                            Some(Data::Summary(s)) => s.data_points.retain(|_| keep()),
                        }
                    }
                    sm.metrics.retain(|m| point_count(m) > 0);
                }
                rm.scope_metrics.retain(|sm| !sm.metrics.is_empty());
            }
            request
                .resource_metrics
                .retain(|rm| !rm.scope_metrics.is_empty());
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otlp::common::v1::{any_value, AnyValue};
    use crate::otlp::logs::v1::{ResourceLogs, ScopeLogs};

    fn record(body: &str, severity: i32) -> LogRecord {
        LogRecord {
            severity_number: severity,
            body: Some(AnyValue {
                value: Some(any_value::Value::StringValue(body.into())),
            }),
            ..Default::default()
        }
    }

    /// Two resources with two and one records.
    fn bytes() -> Vec<u8> {
        let scope = |records: Vec<LogRecord>| ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        };
        ExportLogsServiceRequest {
            resource_logs: vec![
                scope(vec![record("a", 5), record("b", 9)]),
                scope(vec![record("c", 13)]),
            ],
        }
        .encode_to_vec()
    }

    fn bodies(request: &ExportLogsServiceRequest) -> Vec<String> {
        request
            .resource_logs
            .iter()
            .flat_map(|r| &r.scope_logs)
            .flat_map(|s| &s.log_records)
            .map(|r| match r.body.as_ref().and_then(|b| b.value.as_ref()) {
                Some(any_value::Value::StringValue(s)) => s.clone(),
                _ => String::new(),
            })
            .collect()
    }

    #[test]
    fn untouched_batch_answers_unchanged() {
        let b = bytes();
        let mut logs = Logs::from_protobuf(&b);
        assert_eq!(logs.len().unwrap(), 3);
        logs.retain_view(|_| true).unwrap();
        assert_eq!(logs.finish(), Answer::Unchanged);
    }

    #[test]
    fn view_decisions_become_verdicts_in_canonical_order() {
        let b = bytes();
        let mut logs = Logs::from_protobuf(&b);
        let mut seen = Vec::new();
        logs.retain_view(|r| {
            seen.push((r.body_str().unwrap_or(""), r.severity_number()));
            r.severity_number() >= 9
        })
        .unwrap();
        assert_eq!(seen, [("a", 5), ("b", 9), ("c", 13)]);
        // A second rule combines with the first.
        logs.retain(|r| r.severity_number != 13).unwrap();
        assert_eq!(logs.finish(), Answer::Verdicts(vec![0, 1, 0]));
    }

    #[test]
    fn edits_answer_a_replacement_without_the_dropped_records() {
        let b = bytes();
        let mut logs = Logs::from_protobuf(&b);
        logs.retain_view(|r| r.body_str() != Some("b")).unwrap();
        logs.for_each_mut(|r| r.severity_text = "X".into()).unwrap();
        let Answer::Replacement(out) = logs.finish() else {
            panic!("expected a replacement")
        };
        let out = ExportLogsServiceRequest::decode(out.as_slice()).unwrap();
        assert_eq!(bodies(&out), ["a", "c"]);
        assert_eq!(out.resource_logs.len(), 2);
        assert_eq!(
            out.resource_logs[1].scope_logs[0].log_records[0].severity_text,
            "X"
        );
    }

    #[test]
    fn dropping_a_whole_resource_prunes_it_from_the_replacement() {
        let b = bytes();
        let mut logs = Logs::from_protobuf(&b);
        logs.retain_view(|r| r.body_str() == Some("c")).unwrap();
        logs.request_mut().unwrap();
        let Answer::Replacement(out) = logs.finish() else {
            panic!("expected a replacement")
        };
        let out = ExportLogsServiceRequest::decode(out.as_slice()).unwrap();
        assert_eq!(out.resource_logs.len(), 1);
        assert_eq!(bodies(&out), ["c"]);
    }

    #[test]
    fn malformed_bytes_are_an_error_not_a_panic() {
        let b = [0x0a, 0xff, 0xff, 0x01];
        let mut logs = Logs::from_protobuf(&b);
        assert!(logs.retain_view(|_| true).is_err());
        assert!(logs.len().is_err());
        assert!(logs.request().is_err());
    }
}
