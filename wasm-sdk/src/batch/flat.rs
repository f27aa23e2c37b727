//! The batches of flat items, [`Logs`] and [`Spans`]: one macro writes both, with the same
//! methods (views in place, decoded retain, edits, merging) over their item type.

use super::{malformed, Answer, Core, ExportRequest};
use crate::otlp::collector::logs::v1::ExportLogsServiceRequest;
use crate::otlp::collector::trace::v1::ExportTraceServiceRequest;
use crate::otlp::logs::v1::LogRecord;
use crate::otlp::trace::v1::Span;
use crate::points::Context;
use crate::view::{each_item_in_context, LogRecordView, SpanView};
use crate::Error;

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
