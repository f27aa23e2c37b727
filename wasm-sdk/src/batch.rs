//! One batch as the guest sees it: the protobuf bytes, decoded only when asked.

use prost::Message;

use crate::metrics_view::{count_points, each_metric, MetricView, PointView};
use crate::otlp::collector::logs::v1::ExportLogsServiceRequest;
use crate::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use crate::otlp::collector::trace::v1::ExportTraceServiceRequest;
use crate::otlp::logs::v1::LogRecord;
use crate::otlp::metrics::v1::{metric::Data, Metric};
use crate::otlp::trace::v1::Span;
use crate::points::{
    each_point_mut, each_point_ref, kind_of, merge_metric, Context, MetricContext, PointMut,
    PointRef,
};
use crate::view::{each_item_in_context, LogRecordView, MalformedProtobuf, SpanView};
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

macro_rules! flat_batch {
    (
        $(#[$doc:meta])* $name:ident, $request:ty, $item:ty, $view:ident,
        $resources:ident, $scopes:ident, $resource:ident, $scope:ident, $items:ident,
        setup: $setup:literal,
        retain_view: $retain_view:literal,
        retain: $retain:literal,
        edit: $edit:literal $(,)?
    ) => {
        $(#[$doc])*
        pub struct $name<'a> {
            core: Core<'a, $request>,
        }

        impl<'a> $name<'a> {
            /// A batch over the export request bytes the host passed in (the SDK does this
            /// for you; use it in native tests).
            #[doc = concat!("\n```\n", $setup, "\nlet mut batch = weir_wasm_sdk::", stringify!($name), "::from_protobuf(&bytes);\n", "assert_eq!(batch.len()?, 2);", "\n# Ok::<(), weir_wasm_sdk::Error>(())\n```")]
            pub fn from_protobuf(bytes: &'a [u8]) -> Self {
                $name { core: Core::new(bytes) }
            }

            /// The decoded request (decoded on first use). Items dropped by earlier `retain*`
            /// calls are still in it until [`finish`](Self::finish).
            #[doc = concat!("\n```\n", $setup, "\nlet mut batch = weir_wasm_sdk::", stringify!($name), "::from_protobuf(&bytes);\n", "assert_eq!(batch.request()?.encode_to_vec(), bytes);", "\n# Ok::<(), weir_wasm_sdk::Error>(())\n```")]
            pub fn request(&mut self) -> Result<&$request, Error> {
                self.core.request().map(|r| &*r)
            }

            /// The decoded request for any edit, including removing items or whole entries:
            /// the verdicts so far are applied to it first, and the batch will be answered
            /// with replacement bytes. A replacement cannot add items (the host refuses more
            /// items than it sent). After this call only the decoded `retain*` methods work.
            #[doc = concat!("\n```\n", $setup, "\nlet mut batch = weir_wasm_sdk::", stringify!($name), "::from_protobuf(&bytes);\n", "batch.request_mut()?.clear(); // remove everything\nlet weir_wasm_sdk::Answer::Replacement(out) = batch.finish() else { unreachable!() };\nassert!(out.is_empty());", "\n# Ok::<(), weir_wasm_sdk::Error>(())\n```")]
            pub fn request_mut(&mut self) -> Result<&mut $request, Error> {
                self.core.reshape()
            }

            /// Number of items, counted from the bytes when not decoded.
            #[doc = concat!("\n```\n", $setup, "\nlet mut batch = weir_wasm_sdk::", stringify!($name), "::from_protobuf(&bytes);\n", "assert_eq!(batch.len()?, 2);", "\n# Ok::<(), weir_wasm_sdk::Error>(())\n```")]
            pub fn len(&mut self) -> Result<usize, Error> {
                if let Some(r) = &self.core.decoded {
                    return Ok(r.item_count());
                }
                let mut n = 0;
                each_item_in_context(self.core.bytes, &mut |_, _, _| {
                    n += 1;
                    Ok(())
                })
                .map_err(malformed)?;
                Ok(n)
            }

            /// Whether the batch holds no items.
            ///
            /// ```
            /// # use weir_wasm_sdk::{Logs, Message};
            /// let empty = weir_wasm_sdk::testing::logs_request(vec![], vec![]).encode_to_vec();
            /// assert!(Logs::from_protobuf(&empty).is_empty()?);
            /// # Ok::<(), weir_wasm_sdk::Error>(())
            /// ```
            pub fn is_empty(&mut self) -> Result<bool, Error> {
                self.len().map(|n| n == 0)
            }

            /// Keeps the items for which `keep` is true, reading them in place from the bytes
            /// (no decode): the fast path, answered with verdicts. `keep` is called once per
            /// item in canonical order (resource entries, their scope entries, their items,
            /// each in batch order); the view reaches the item's resource and scope. Verdicts
            /// of several `retain*` calls combine (an item dropped once stays dropped; dropped
            /// items are still visited).
            #[doc = concat!("\n```\n", $setup, "\n", $retain_view, "\n# Ok::<(), weir_wasm_sdk::Error>(())\n```")]
            pub fn retain_view(&mut self, mut keep: impl FnMut(&$view<'a>) -> bool) -> Result<(), Error> {
                let bytes = self.core.bytes;
                self.core.decide_on_views(|decide| {
                    each_item_in_context(bytes, &mut |resource, scope, item| {
                        decide(keep(&$view::new(resource, scope, item)));
                        Ok(())
                    })
                })
            }

            /// Keeps the items for which `keep` is true, on the decoded items, in canonical
            /// order. Answered with verdicts unless something else edits the batch.
            #[doc = concat!("\n```\n", $setup, "\n", $retain, "\n# Ok::<(), weir_wasm_sdk::Error>(())\n```")]
            pub fn retain(&mut self, mut keep: impl FnMut(&$item) -> bool) -> Result<(), Error> {
                self.retain_in_context(|_, item| keep(item))
            }

            /// [`retain`](Self::retain) with each item's resource and scope.
            #[doc = concat!("\n```\n", $setup, "\nlet mut batch = weir_wasm_sdk::", stringify!($name), "::from_protobuf(&bytes);\n", "batch.retain_in_context(|ctx, _item| {\n    weir_wasm_sdk::attribute_str(&ctx.resource.attributes, \"service.name\") == Some(\"api\")\n})?;\nassert_eq!(batch.finish(), weir_wasm_sdk::Answer::Unchanged); // both items are from api", "\n# Ok::<(), weir_wasm_sdk::Error>(())\n```")]
            pub fn retain_in_context(
                &mut self,
                mut keep: impl FnMut(&Context<'_>, &$item) -> bool,
            ) -> Result<(), Error> {
                self.core.request()?;
                let Core { decoded, .. } = &mut self.core;
                let Some(request) = decoded.as_ref() else {
                    return Err(Error::new("batch not decoded"));
                };
                let mut decisions = Vec::new();
                for x in &request.$resources {
                    for s in &x.$scopes {
                        let ctx = Context::new(x.$resource.as_ref(), s.$scope.as_ref());
                        for item in &s.$items {
                            decisions.push(keep(&ctx, item));
                        }
                    }
                }
                self.core.decide(|decide| {
                    decisions.into_iter().for_each(&mut *decide);
                    Ok(())
                })
            }

            /// Calls `edit` on every item, in canonical order, for changing fields or
            /// attributes; the batch is answered with replacement bytes. Items dropped by an
            /// earlier `retain*` are visited too (and still dropped).
            #[doc = concat!("\n```\n", $setup, "\n", $edit, "\n# Ok::<(), weir_wasm_sdk::Error>(())\n```")]
            pub fn for_each_mut(&mut self, mut edit: impl FnMut(&mut $item)) -> Result<(), Error> {
                self.for_each_mut_in_context(|_, item| edit(item))
            }

            /// [`for_each_mut`](Self::for_each_mut) with each item's resource and scope.
            #[doc = concat!("\n```\n", $setup, "\nlet mut batch = weir_wasm_sdk::", stringify!($name), "::from_protobuf(&bytes);\n", "batch.for_each_mut_in_context(|ctx, item| {\n    let service = weir_wasm_sdk::attribute_str(&ctx.resource.attributes, \"service.name\");\n    let service = service.unwrap_or(\"unknown\").to_string();\n    weir_wasm_sdk::set_attribute_str(&mut item.attributes, \"service\", service);\n})?;\nassert!(matches!(batch.finish(), weir_wasm_sdk::Answer::Replacement(_)));", "\n# Ok::<(), weir_wasm_sdk::Error>(())\n```")]
            pub fn for_each_mut_in_context(
                &mut self,
                mut edit: impl FnMut(&Context<'_>, &mut $item),
            ) -> Result<(), Error> {
                self.core.modified = true;
                let request = self.core.request()?;
                for x in &mut request.$resources {
                    let resource = x.$resource.as_ref();
                    for s in &mut x.$scopes {
                        let ctx = Context::new(resource, s.$scope.as_ref());
                        for item in &mut s.$items {
                            edit(&ctx, item);
                        }
                    }
                }
                Ok(())
            }

            /// What to answer the host (the SDK calls this after your `process_*`).
            #[doc = concat!("\n```\n", $setup, "\nlet mut batch = weir_wasm_sdk::", stringify!($name), "::from_protobuf(&bytes);\n", "// Nothing decided, nothing edited: the host forwards its own bytes.\nassert_eq!(batch.finish(), weir_wasm_sdk::Answer::Unchanged);", "\n# Ok::<(), weir_wasm_sdk::Error>(())\n```")]
            pub fn finish(self) -> Answer {
                self.core.finish()
            }
        }
    };
}

flat_batch!(
    /// A batch of log records, as [`Processor::process_logs`](crate::Processor::process_logs)
    /// gets it. Decide with `retain_view` (fast, no decode) or `retain`; edit with
    /// `for_each_mut`. Methods return `Err` only for malformed input bytes.
    Logs, ExportLogsServiceRequest, LogRecord, LogRecordView,
    resource_logs, scope_logs, resource, scope, log_records,
    setup: "# use weir_wasm_sdk::{testing::*, Logs, Message};
let batch = logs_request(
    vec![kv(\"service.name\", \"api\")],
    vec![log_record(\"debug user=42\", 5), log_record(\"info\", 9)],
);
let bytes = batch.encode_to_vec();",
    retain_view: "let mut logs = Logs::from_protobuf(&bytes);
// Drop DEBUG (< 9) of service api, read in place.
logs.retain_view(|r| {
    r.severity_number() >= 9 || r.resource().attribute_str(\"service.name\") != Some(\"api\")
})?;
assert_eq!(logs.finish(), weir_wasm_sdk::Answer::Verdicts(vec![0, 1]));",
    retain: "let mut logs = Logs::from_protobuf(&bytes);
logs.retain(|r| r.severity_number >= 9)?;
assert_eq!(logs.finish(), weir_wasm_sdk::Answer::Verdicts(vec![0, 1]));",
    edit: "let mut logs = Logs::from_protobuf(&bytes);
logs.for_each_mut(|r| {
    weir_wasm_sdk::set_attribute_str(&mut r.attributes, \"checked\", \"yes\");
})?;
let weir_wasm_sdk::Answer::Replacement(out) = logs.finish() else { unreachable!() };
let out = weir_wasm_sdk::otlp::collector::logs::v1::ExportLogsServiceRequest::decode(&out[..]).unwrap();
let first = &out.resource_logs[0].scope_logs[0].log_records[0];
assert_eq!(weir_wasm_sdk::attribute_str(&first.attributes, \"checked\"), Some(\"yes\"));",
);
flat_batch!(
    /// A batch of spans, as [`Processor::process_spans`](crate::Processor::process_spans)
    /// gets it. Same methods as [`Logs`], with [`SpanView`] and
    /// [`Span`](crate::otlp::trace::v1::Span).
    Spans, ExportTraceServiceRequest, Span, SpanView,
    resource_spans, scope_spans, resource, scope, spans,
    setup: "# use weir_wasm_sdk::{testing::*, Spans, Message};
use weir_wasm_sdk::otlp::trace::v1::Span;
let slow = Span { start_time_unix_nano: 0, end_time_unix_nano: 2_000_000_000, ..span(\"slow\", [1; 16], [1; 8]) };
let batch = traces_request(
    vec![kv(\"service.name\", \"api\")],
    vec![span(\"GET /healthz\", [2; 16], [2; 8]), slow],
);
let bytes = batch.encode_to_vec();",
    retain_view: "let mut spans = Spans::from_protobuf(&bytes);
// Keep errors and spans slower than one second.
spans.retain_view(|s| s.is_error() || s.duration_nanos() > 1_000_000_000)?;
assert_eq!(spans.finish(), weir_wasm_sdk::Answer::Verdicts(vec![0, 1]));",
    retain: "let mut spans = Spans::from_protobuf(&bytes);
spans.retain(|s| s.name != \"GET /healthz\")?;
assert_eq!(spans.finish(), weir_wasm_sdk::Answer::Verdicts(vec![0, 1]));",
    edit: "let mut spans = Spans::from_protobuf(&bytes);
spans.for_each_mut(|s| {
    weir_wasm_sdk::remove_attribute(&mut s.attributes, \"http.url\");
})?;
assert!(matches!(spans.finish(), weir_wasm_sdk::Answer::Replacement(_)));",
);

/// Number of data points of one metric (the unit verdicts count in).
///
/// ```
/// use weir_wasm_sdk::testing::{gauge, double_point};
/// let m = gauge("g", vec![double_point(vec![], 1, 1.0), double_point(vec![], 2, 2.0)]);
/// assert_eq!(weir_wasm_sdk::point_count(&m), 2);
/// ```
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

/// A batch of metrics. Items are data points, of every type, in canonical order (resource
/// entries, scope entries, metrics, each metric's points).
pub struct Metrics<'a> {
    core: Core<'a, ExportMetricsServiceRequest>,
}

impl<'a> Metrics<'a> {
    /// A batch over the export request bytes the host passed in.
    ///
    /// ```
    /// # use weir_wasm_sdk::{testing::*, Metrics, Message, Answer};
    /// let batch = metrics_request(vec![kv("service.name", "api")], vec![
    ///     gauge("debug.queue", vec![double_point(vec![], 1, 3.0)]),
    ///     counter("requests", vec![
    ///         int_point(vec![kv("host.id", "a"), kv("code", 200_i64)], 1, 5),
    ///         int_point(vec![kv("host.id", "b"), kv("code", 200_i64)], 1, 7),
    ///     ]),
    /// ]);
    /// let bytes = batch.encode_to_vec();
    /// let mut metrics = Metrics::from_protobuf(&bytes);
    /// assert_eq!(metrics.len()?, 3); // data points
    /// # Ok::<(), weir_wasm_sdk::Error>(())
    /// ```
    pub fn from_protobuf(bytes: &'a [u8]) -> Self {
        Metrics {
            core: Core::new(bytes),
        }
    }

    /// The decoded request (decoded on first use).
    ///
    /// ```
    /// # use weir_wasm_sdk::{testing::*, Metrics, Message, Answer};
    /// let batch = metrics_request(vec![kv("service.name", "api")], vec![
    ///     gauge("debug.queue", vec![double_point(vec![], 1, 3.0)]),
    ///     counter("requests", vec![
    ///         int_point(vec![kv("host.id", "a"), kv("code", 200_i64)], 1, 5),
    ///         int_point(vec![kv("host.id", "b"), kv("code", 200_i64)], 1, 7),
    ///     ]),
    /// ]);
    /// let bytes = batch.encode_to_vec();
    /// let mut metrics = Metrics::from_protobuf(&bytes);
    /// assert_eq!(metrics.request()?.resource_metrics.len(), 1);
    /// # Ok::<(), weir_wasm_sdk::Error>(())
    /// ```
    pub fn request(&mut self) -> Result<&ExportMetricsServiceRequest, Error> {
        self.core.request().map(|r| &*r)
    }

    /// The decoded request for any edit (see [`Logs::request_mut`]).
    ///
    /// ```
    /// # use weir_wasm_sdk::{testing::*, Metrics, Message, Answer};
    /// let batch = metrics_request(vec![kv("service.name", "api")], vec![
    ///     gauge("debug.queue", vec![double_point(vec![], 1, 3.0)]),
    ///     counter("requests", vec![
    ///         int_point(vec![kv("host.id", "a"), kv("code", 200_i64)], 1, 5),
    ///         int_point(vec![kv("host.id", "b"), kv("code", 200_i64)], 1, 7),
    ///     ]),
    /// ]);
    /// let bytes = batch.encode_to_vec();
    /// let mut metrics = Metrics::from_protobuf(&bytes);
    /// metrics.request_mut()?.resource_metrics[0].scope_metrics[0].metrics.remove(0);
    /// let out = apply(&batch, metrics.finish())?;
    /// assert_eq!((out.dropped, out.replaced), (1, 2));
    /// # Ok::<(), weir_wasm_sdk::Error>(())
    /// ```
    pub fn request_mut(&mut self) -> Result<&mut ExportMetricsServiceRequest, Error> {
        self.core.reshape()
    }

    /// Number of data points, counted from the bytes when not decoded.
    ///
    /// ```
    /// # use weir_wasm_sdk::{testing::*, Metrics, Message, Answer};
    /// let batch = metrics_request(vec![kv("service.name", "api")], vec![
    ///     gauge("debug.queue", vec![double_point(vec![], 1, 3.0)]),
    ///     counter("requests", vec![
    ///         int_point(vec![kv("host.id", "a"), kv("code", 200_i64)], 1, 5),
    ///         int_point(vec![kv("host.id", "b"), kv("code", 200_i64)], 1, 7),
    ///     ]),
    /// ]);
    /// let bytes = batch.encode_to_vec();
    /// let mut metrics = Metrics::from_protobuf(&bytes);
    /// assert_eq!(metrics.len()?, 3);
    /// # Ok::<(), weir_wasm_sdk::Error>(())
    /// ```
    pub fn len(&mut self) -> Result<usize, Error> {
        if let Some(r) = &self.core.decoded {
            return Ok(r.item_count());
        }
        count_points(self.core.bytes).map_err(malformed)
    }

    /// Whether the batch holds no data points.
    ///
    /// ```
    /// # use weir_wasm_sdk::{testing::*, Metrics, Message, Answer};
    /// let batch = metrics_request(vec![kv("service.name", "api")], vec![
    ///     gauge("debug.queue", vec![double_point(vec![], 1, 3.0)]),
    ///     counter("requests", vec![
    ///         int_point(vec![kv("host.id", "a"), kv("code", 200_i64)], 1, 5),
    ///         int_point(vec![kv("host.id", "b"), kv("code", 200_i64)], 1, 7),
    ///     ]),
    /// ]);
    /// let bytes = batch.encode_to_vec();
    /// let mut metrics = Metrics::from_protobuf(&bytes);
    /// assert!(!metrics.is_empty()?);
    /// # Ok::<(), weir_wasm_sdk::Error>(())
    /// ```
    pub fn is_empty(&mut self) -> Result<bool, Error> {
        self.len().map(|n| n == 0)
    }

    /// Keeps the data points for which `keep` is true, read in place (no decode; answered
    /// with verdicts). Called once per point in canonical order; the view reaches the point's
    /// metric, resource and scope.
    ///
    /// ```
    /// # use weir_wasm_sdk::{testing::*, Metrics, Message, Answer};
    /// let batch = metrics_request(vec![kv("service.name", "api")], vec![
    ///     gauge("debug.queue", vec![double_point(vec![], 1, 3.0)]),
    ///     counter("requests", vec![
    ///         int_point(vec![kv("host.id", "a"), kv("code", 200_i64)], 1, 5),
    ///         int_point(vec![kv("host.id", "b"), kv("code", 200_i64)], 1, 7),
    ///     ]),
    /// ]);
    /// let bytes = batch.encode_to_vec();
    /// let mut metrics = Metrics::from_protobuf(&bytes);
    /// // Drop the 200s of host b, read in place.
    /// metrics.retain_points_view(|p| {
    ///     !(p.metric().name() == "requests" && p.attribute_str("host.id") == Some("b"))
    /// })?;
    /// assert_eq!(metrics.finish(), Answer::Verdicts(vec![1, 1, 0]));
    /// # Ok::<(), weir_wasm_sdk::Error>(())
    /// ```
    pub fn retain_points_view(
        &mut self,
        mut keep: impl FnMut(&PointView<'a>) -> bool,
    ) -> Result<(), Error> {
        let bytes = self.core.bytes;
        self.core.decide_on_views(|decide| {
            each_metric(bytes, &mut |_, points| points(&mut |p| decide(keep(&p))))
        })
    }

    /// Keeps all data points of the metrics for which `keep` is true, read in place (no
    /// decode; answered with verdicts). Called once per metric in canonical order.
    ///
    /// ```
    /// # use weir_wasm_sdk::{testing::*, Metrics, Message, Answer};
    /// let batch = metrics_request(vec![kv("service.name", "api")], vec![
    ///     gauge("debug.queue", vec![double_point(vec![], 1, 3.0)]),
    ///     counter("requests", vec![
    ///         int_point(vec![kv("host.id", "a"), kv("code", 200_i64)], 1, 5),
    ///         int_point(vec![kv("host.id", "b"), kv("code", 200_i64)], 1, 7),
    ///     ]),
    /// ]);
    /// let bytes = batch.encode_to_vec();
    /// let mut metrics = Metrics::from_protobuf(&bytes);
    /// metrics.retain_metrics_view(|m| !m.name().starts_with("debug."))?;
    /// assert_eq!(metrics.finish(), Answer::Verdicts(vec![0, 1, 1]));
    /// # Ok::<(), weir_wasm_sdk::Error>(())
    /// ```
    pub fn retain_metrics_view(
        &mut self,
        mut keep: impl FnMut(&MetricView<'a>) -> bool,
    ) -> Result<(), Error> {
        let bytes = self.core.bytes;
        self.core.decide_on_views(|decide| {
            each_metric(bytes, &mut |metric, points| {
                let k = keep(&metric);
                points(&mut |_| decide(k))
            })
        })
    }

    /// Keeps all data points of the metrics for which `keep` is true (decoded).
    ///
    /// ```
    /// # use weir_wasm_sdk::{testing::*, Metrics, Message, Answer};
    /// let batch = metrics_request(vec![kv("service.name", "api")], vec![
    ///     gauge("debug.queue", vec![double_point(vec![], 1, 3.0)]),
    ///     counter("requests", vec![
    ///         int_point(vec![kv("host.id", "a"), kv("code", 200_i64)], 1, 5),
    ///         int_point(vec![kv("host.id", "b"), kv("code", 200_i64)], 1, 7),
    ///     ]),
    /// ]);
    /// let bytes = batch.encode_to_vec();
    /// let mut metrics = Metrics::from_protobuf(&bytes);
    /// metrics.retain_metrics(|m| m.name != "debug.queue")?;
    /// assert_eq!(metrics.finish(), Answer::Verdicts(vec![0, 1, 1]));
    /// # Ok::<(), weir_wasm_sdk::Error>(())
    /// ```
    pub fn retain_metrics(&mut self, mut keep: impl FnMut(&Metric) -> bool) -> Result<(), Error> {
        let request = self.core.request()?;
        let decisions: Vec<(usize, bool)> = request
            .resource_metrics
            .iter()
            .flat_map(|r| &r.scope_metrics)
            .flat_map(|s| &s.metrics)
            .map(|m| (point_count(m), keep(m)))
            .collect();
        self.core.decide(|decide| {
            for (n, k) in decisions {
                (0..n).for_each(|_| decide(k));
            }
            Ok(())
        })
    }

    /// Keeps the decoded data points for which `keep` is true, in canonical order, with the
    /// point's metric and context.
    ///
    /// ```
    /// # use weir_wasm_sdk::{testing::*, Metrics, Message, Answer};
    /// let batch = metrics_request(vec![kv("service.name", "api")], vec![
    ///     gauge("debug.queue", vec![double_point(vec![], 1, 3.0)]),
    ///     counter("requests", vec![
    ///         int_point(vec![kv("host.id", "a"), kv("code", 200_i64)], 1, 5),
    ///         int_point(vec![kv("host.id", "b"), kv("code", 200_i64)], 1, 7),
    ///     ]),
    /// ]);
    /// let bytes = batch.encode_to_vec();
    /// let mut metrics = Metrics::from_protobuf(&bytes);
    /// use weir_wasm_sdk::{MetricKind, PointRef};
    /// // Keep gauges, and sum points with a value of at least 6.
    /// metrics.retain_points(|m, p| match p {
    ///     PointRef::Number(n) if m.kind == MetricKind::Sum => {
    ///         matches!(n.value, Some(weir_wasm_sdk::otlp::metrics::v1::number_data_point::Value::AsInt(v)) if v >= 6)
    ///     }
    ///     _ => true,
    /// })?;
    /// assert_eq!(metrics.finish(), Answer::Verdicts(vec![1, 0, 1]));
    /// # Ok::<(), weir_wasm_sdk::Error>(())
    /// ```
    pub fn retain_points(
        &mut self,
        mut keep: impl FnMut(&MetricContext<'_>, PointRef<'_>) -> bool,
    ) -> Result<(), Error> {
        let request = self.core.request()?;
        let mut decisions = Vec::new();
        for rm in &request.resource_metrics {
            for sm in &rm.scope_metrics {
                let context = Context::new(rm.resource.as_ref(), sm.scope.as_ref());
                for m in &sm.metrics {
                    let Some(data) = &m.data else { continue };
                    let mc = MetricContext {
                        context,
                        name: &m.name,
                        unit: &m.unit,
                        kind: kind_of(data),
                    };
                    each_point_ref(data, &mut |p| decisions.push(keep(&mc, p)));
                }
            }
        }
        self.core.decide(|decide| {
            decisions.into_iter().for_each(&mut *decide);
            Ok(())
        })
    }

    /// Calls `edit` on every decoded data point in canonical order, with its metric and
    /// context: for attribute edits per point ([`PointMut::attributes_mut`]). Answered with
    /// replacement bytes. Follow with [`merge_series`](Self::merge_series) when an edit can
    /// make two series of a metric identical.
    ///
    /// ```
    /// # use weir_wasm_sdk::{testing::*, Metrics, Message, Answer};
    /// let batch = metrics_request(vec![kv("service.name", "api")], vec![
    ///     gauge("debug.queue", vec![double_point(vec![], 1, 3.0)]),
    ///     counter("requests", vec![
    ///         int_point(vec![kv("host.id", "a"), kv("code", 200_i64)], 1, 5),
    ///         int_point(vec![kv("host.id", "b"), kv("code", 200_i64)], 1, 7),
    ///     ]),
    /// ]);
    /// let bytes = batch.encode_to_vec();
    /// let mut metrics = Metrics::from_protobuf(&bytes);
    /// metrics.for_each_point_mut(|_metric, mut point| {
    ///     weir_wasm_sdk::remove_attribute(point.attributes_mut(), "host.id");
    /// })?;
    /// assert_eq!(metrics.merge_series()?, 1); // the two requests series are now one
    /// let out = apply(&batch, metrics.finish())?;
    /// assert_eq!((out.input, out.dropped, out.replaced), (3, 1, 2));
    /// # Ok::<(), weir_wasm_sdk::Error>(())
    /// ```
    pub fn for_each_point_mut(
        &mut self,
        mut edit: impl FnMut(&MetricContext<'_>, PointMut<'_>),
    ) -> Result<(), Error> {
        self.core.modified = true;
        let request = self.core.request()?;
        for rm in &mut request.resource_metrics {
            let resource = rm.resource.as_ref();
            for sm in &mut rm.scope_metrics {
                let context = Context::new(resource, sm.scope.as_ref());
                for m in &mut sm.metrics {
                    let Some(data) = &mut m.data else { continue };
                    let mc = MetricContext {
                        context,
                        name: &m.name,
                        unit: &m.unit,
                        kind: kind_of(data),
                    };
                    each_point_mut(data, &mut |p| edit(&mc, p));
                }
            }
        }
        Ok(())
    }

    /// Calls `edit` on every decoded metric in canonical order, with its context (rename,
    /// change the unit or description). Answered with replacement bytes.
    ///
    /// ```
    /// # use weir_wasm_sdk::{testing::*, Metrics, Message, Answer};
    /// let batch = metrics_request(vec![kv("service.name", "api")], vec![
    ///     gauge("debug.queue", vec![double_point(vec![], 1, 3.0)]),
    ///     counter("requests", vec![
    ///         int_point(vec![kv("host.id", "a"), kv("code", 200_i64)], 1, 5),
    ///         int_point(vec![kv("host.id", "b"), kv("code", 200_i64)], 1, 7),
    ///     ]),
    /// ]);
    /// let bytes = batch.encode_to_vec();
    /// let mut metrics = Metrics::from_protobuf(&bytes);
    /// metrics.for_each_metric_mut(|_ctx, m| m.name = m.name.replace('.', "_"))?;
    /// let out = apply(&batch, metrics.finish())?;
    /// assert_eq!(out.metrics()[0].name, "debug_queue");
    /// # Ok::<(), weir_wasm_sdk::Error>(())
    /// ```
    pub fn for_each_metric_mut(
        &mut self,
        mut edit: impl FnMut(&Context<'_>, &mut Metric),
    ) -> Result<(), Error> {
        self.core.modified = true;
        let request = self.core.request()?;
        for rm in &mut request.resource_metrics {
            let resource = rm.resource.as_ref();
            for sm in &mut rm.scope_metrics {
                let context = Context::new(resource, sm.scope.as_ref());
                for m in &mut sm.metrics {
                    edit(&context, m);
                }
            }
        }
        Ok(())
    }

    /// Re-aggregates: within each metric, merges the data points whose attribute sets are
    /// equal (in any order), typically after an attribute was removed or rewritten.
    /// Returns the number of points removed. Pending verdicts are applied first.
    ///
    /// Rules, per type:
    /// - sum (counters and up-down counters, either temporality): values added (int + int
    ///   stays int, saturating; otherwise double), earliest non-zero start time, latest time,
    ///   exemplars concatenated;
    /// - gauge: the point with the latest `time_unix_nano` wins (on a tie, the later one in
    ///   the batch);
    /// - histogram: bucket counts, count and sum added, min of mins, max of maxes, when the
    ///   bucket bounds are equal; points with different bounds are left unmerged;
    /// - exponential histogram: downscaled to the smaller scale and buckets added, zero
    ///   counts, count and sum added, when the zero thresholds are equal (else unmerged);
    /// - summary: never merged (quantiles of different series cannot be combined).
    ///
    /// A merged point takes the place of the first of its points; the other points keep
    /// their order. Only points of one metric entry merge (not across metrics, scopes or
    /// resources). Answered with replacement bytes; after this, the view-based `retain_*`
    /// methods return an error (the decoded ones still work).
    ///
    /// ```
    /// # use weir_wasm_sdk::{testing::*, Metrics, Message, Answer};
    /// let batch = metrics_request(vec![kv("service.name", "api")], vec![
    ///     gauge("debug.queue", vec![double_point(vec![], 1, 3.0)]),
    ///     counter("requests", vec![
    ///         int_point(vec![kv("host.id", "a"), kv("code", 200_i64)], 1, 5),
    ///         int_point(vec![kv("host.id", "b"), kv("code", 200_i64)], 1, 7),
    ///     ]),
    /// ]);
    /// let bytes = batch.encode_to_vec();
    /// let mut metrics = Metrics::from_protobuf(&bytes);
    /// use weir_wasm_sdk::otlp::metrics::v1::{metric::Data, number_data_point::Value};
    /// metrics.for_each_point_mut(|_, mut p| {
    ///     weir_wasm_sdk::remove_attribute(p.attributes_mut(), "host.id");
    /// })?;
    /// assert_eq!(metrics.merge_series()?, 1);
    /// let out = apply(&batch, metrics.finish())?;
    /// let Some(Data::Sum(sum)) = &out.metrics()[1].data else { unreachable!() };
    /// assert_eq!(sum.data_points[0].value, Some(Value::AsInt(12)));
    /// # Ok::<(), weir_wasm_sdk::Error>(())
    /// ```
    pub fn merge_series(&mut self) -> Result<usize, Error> {
        let request = self.core.reshape()?;
        let mut removed = 0;
        for rm in &mut request.resource_metrics {
            for sm in &mut rm.scope_metrics {
                for m in &mut sm.metrics {
                    removed += merge_metric(m);
                }
            }
        }
        Ok(removed)
    }

    /// What to answer the host (the SDK calls this after your `process_metrics`).
    ///
    /// ```
    /// # use weir_wasm_sdk::{testing::*, Metrics, Message, Answer};
    /// let batch = metrics_request(vec![kv("service.name", "api")], vec![
    ///     gauge("debug.queue", vec![double_point(vec![], 1, 3.0)]),
    ///     counter("requests", vec![
    ///         int_point(vec![kv("host.id", "a"), kv("code", 200_i64)], 1, 5),
    ///         int_point(vec![kv("host.id", "b"), kv("code", 200_i64)], 1, 7),
    ///     ]),
    /// ]);
    /// let bytes = batch.encode_to_vec();
    /// let mut metrics = Metrics::from_protobuf(&bytes);
    /// assert_eq!(metrics.finish(), Answer::Unchanged);
    /// # Ok::<(), weir_wasm_sdk::Error>(())
    /// ```
    pub fn finish(self) -> Answer {
        self.core.finish()
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
