//! One batch as the guest sees it: the protobuf bytes, decoded only when asked.

mod flat;
mod metrics;
#[cfg(test)]
mod tests;

use prost::Message;

pub use flat::{Logs, Spans};
pub use metrics::{point_count, Metrics};

use crate::otlp::collector::logs::v1::ExportLogsServiceRequest;
use crate::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use crate::otlp::collector::trace::v1::ExportTraceServiceRequest;
use crate::otlp::metrics::v1::metric::Data;
use crate::view::MalformedProtobuf;
use crate::Error;

/// What the guest answers for a batch (see ABI.md, "Answers"). The SDK picks it from what
/// your `process_*` did: nothing or all kept → `Unchanged`; only `retain*` drops →
/// `Verdicts`; any edit → `Replacement`.
///
/// ```
/// # use weir_wasm_sdk::{testing::*, Answer, Logs, Message};
/// let bytes = logs_request(vec![], vec![log_record("a", 1)]).encode_to_vec();
/// let mut logs = Logs::from_protobuf(&bytes);
/// logs.retain_view(|_| false)?;
/// assert_eq!(logs.finish(), Answer::Verdicts(vec![0]));
/// # Ok::<(), weir_wasm_sdk::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Forward the batch as it arrived.
    Unchanged,
    /// One byte per item in canonical order, 1 keep, 0 drop.
    Verdicts(Vec<u8>),
    /// A replacement export request, protobuf-encoded.
    Replacement(Vec<u8>),
}

/// An export request whose items can be counted and filtered in canonical order
/// (implemented for the three `Export*ServiceRequest` types; used by [`crate::testing`]).
///
/// ```
/// use weir_wasm_sdk::ExportRequest;
/// use weir_wasm_sdk::testing::{log_record, logs_request};
/// let mut batch = logs_request(vec![], vec![log_record("a", 1), log_record("b", 2)]);
/// let mut first = true;
/// batch.retain_items(&mut || std::mem::replace(&mut first, false));
/// assert_eq!(batch.item_count(), 1);
/// ```
pub trait ExportRequest: Message + Default + Clone {
    /// Number of items (log records, spans, data points).
    fn item_count(&self) -> usize;

    /// Keeps the items for which `keep()`, called once per item in canonical order, is true,
    /// and removes the scope, resource (and metric) entries left empty, as the host does
    /// with verdicts.
    fn retain_items(&mut self, keep: &mut dyn FnMut() -> bool);
}

macro_rules! flat_request {
    ($request:ty, $resources:ident, $scopes:ident, $items:ident) => {
        impl ExportRequest for $request {
            fn item_count(&self) -> usize {
                self.$resources
                    .iter()
                    .flat_map(|x| &x.$scopes)
                    .map(|s| s.$items.len())
                    .sum()
            }

            fn retain_items(&mut self, keep: &mut dyn FnMut() -> bool) {
                for x in &mut self.$resources {
                    for s in &mut x.$scopes {
                        s.$items.retain(|_| keep());
                    }
                    x.$scopes.retain(|s| !s.$items.is_empty());
                }
                self.$resources.retain(|x| !x.$scopes.is_empty());
            }
        }
    };
}

flat_request!(
    ExportLogsServiceRequest,
    resource_logs,
    scope_logs,
    log_records
);
flat_request!(
    ExportTraceServiceRequest,
    resource_spans,
    scope_spans,
    spans
);

impl ExportRequest for ExportMetricsServiceRequest {
    fn item_count(&self) -> usize {
        self.resource_metrics
            .iter()
            .flat_map(|r| &r.scope_metrics)
            .flat_map(|s| &s.metrics)
            .map(point_count)
            .sum()
    }

    fn retain_items(&mut self, keep: &mut dyn FnMut() -> bool) {
        for rm in &mut self.resource_metrics {
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
        self.resource_metrics
            .retain(|rm| !rm.scope_metrics.is_empty());
    }
}

/// State shared by the three batch kinds.
struct Core<'a, R> {
    bytes: &'a [u8],
    decoded: Option<R>,
    /// Per-item verdicts, once any item was dropped or kept explicitly.
    keep: Option<Vec<u8>>,
    modified: bool,
    /// The decoded request no longer has the items of `bytes` (pending verdicts were applied,
    /// items were merged or edited structurally): views of the original bytes would no
    /// longer line up.
    reshaped: bool,
}

fn malformed(e: MalformedProtobuf) -> Error {
    Error::new(e.to_string())
}

impl<'a, R: ExportRequest> Core<'a, R> {
    fn new(bytes: &'a [u8]) -> Self {
        Core {
            bytes,
            decoded: None,
            keep: None,
            modified: false,
            reshaped: false,
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

    /// The request for structural edits: verdicts so far are applied to it first.
    fn reshape(&mut self) -> Result<&mut R, Error> {
        self.request()?;
        self.modified = true;
        self.reshaped = true;
        let keep = self.keep.take();
        let request = self.request()?;
        if let Some(keep) = keep {
            let mut next = keep.into_iter();
            request.retain_items(&mut || next.next() != Some(0));
        }
        Ok(request)
    }

    /// Combines one decision per item (in canonical order, from `walk`) with the verdicts so
    /// far: an item dropped once stays dropped.
    fn decide(
        &mut self,
        walk: impl FnOnce(&mut dyn FnMut(bool)) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let mut out = self.keep.take();
        let had = out.is_some();
        let mut i = 0;
        let mut fresh = Vec::new();
        let result = walk(&mut |k| {
            match &mut out {
                Some(v) => {
                    if let Some(slot) = v.get_mut(i) {
                        *slot &= u8::from(k);
                    }
                }
                None => fresh.push(u8::from(k)),
            }
            i += 1;
        });
        self.keep = match (result.is_ok(), had) {
            (_, true) => out,
            (true, false) => Some(fresh),
            (false, false) => None,
        };
        result
    }

    /// Decisions from views of the original bytes.
    fn decide_on_views(
        &mut self,
        walk: impl FnOnce(&mut dyn FnMut(bool)) -> Result<(), MalformedProtobuf>,
    ) -> Result<(), Error> {
        if self.reshaped {
            return Err(Error::new(
                "a view-based retain after request_mut or merge_series: views read the batch as \
                 it arrived; use the decoded retain or call the view-based one first",
            ));
        }
        self.decide(|f| walk(f).map_err(malformed))
    }

    /// The answer: verdicts when only drops happened, replacement bytes after edits.
    fn finish(mut self) -> Answer {
        let drops = self.keep.as_ref().is_some_and(|k| k.contains(&0));
        if self.modified {
            let Some(mut request) = self.decoded.take() else {
                return Answer::Unchanged;
            };
            if let Some(keep) = self.keep.filter(|_| drops) {
                let mut next = keep.into_iter();
                request.retain_items(&mut || next.next() != Some(0));
            }
            return Answer::Replacement(request.encode_to_vec());
        }
        match self.keep {
            Some(keep) if drops => Answer::Verdicts(keep),
            _ => Answer::Unchanged,
        }
    }
}
