//! Spans: what is read of a span, and how spans (decoded, or in place from the encoded
//! request) count into span names, kinds, statuses, durations and attribute schemas.

use prost::Message;
use rustc_hash::FxHashSet;
use weir_api::otlp::resource::v1::Resource;
use weir_api::otlp::trace::v1::Span;

use super::values::{observe_attributes, AttrRef};
use super::{evict_least_recent, service_name, Accumulator, Sig};
use crate::summary::{SpanSummary, MAX_KEYS_PER_ENTRY};

impl Accumulator {
    /// Summarises the encoded traces request in `buf` as [`Self::observe`] summarises its
    /// prost decoding; `false`, with nothing summarised, when its resource and scope levels
    /// cannot be read.
    pub(super) fn observe_traces_encoded(&mut self, buf: &[u8], received: u64) -> bool {
        let Some(layout) = weir_api::wire_read::layout(buf) else {
            return false;
        };
        let parents: FxHashSet<&[u8]> = layout
            .items
            .iter()
            .map(|span| crate::raw::parent_span_id(span))
            .filter(|p| !p.is_empty())
            .collect();
        let mut attrs = Vec::new();
        let mut scopes = layout.scopes.as_slice();
        for (i, entry) in layout.resources.iter().enumerate() {
            let own = scopes.iter().take_while(|s| s.resource == i).count();
            let (mine, rest) = scopes.split_at(own);
            scopes = rest;
            let n: u64 = mine.iter().map(|s| s.items.len() as u64).sum();
            let resource = entry.resource.as_ref();
            self.observe_resource(resource, n, received, Sig::Traces);
            let spans = mine
                .iter()
                .flat_map(|s| layout.items.get(s.items.clone()).unwrap_or(&[]));
            self.observe_spans(resource, received, &parents, |each| {
                for &bytes in spans {
                    if let Some(facts) = crate::raw::span(bytes, &mut attrs) {
                        each(&facts, &attrs);
                        continue;
                    }
                    // A span prost would merge fields of: read from prost's decoding.
                    let Ok(span) = Span::decode(bytes) else {
                        // Not reached for checked bytes.
                        continue;
                    };
                    let mut own_attrs = Vec::new();
                    let mut facts = SpanFacts::of(&span, &mut own_attrs);
                    facts.bytes = bytes.len() as u64;
                    each(&facts, &own_attrs);
                }
            });
        }
        true
    }

    /// Summarises the spans of one resource: `spans` calls its argument once per span.
    pub(super) fn observe_spans(
        &mut self,
        resource: Option<&Resource>,
        received: u64,
        parents: &FxHashSet<&[u8]>,
        spans: impl FnOnce(&mut dyn FnMut(&SpanFacts<'_>, &[AttrRef<'_>])),
    ) {
        let (cap_keys, cap_names) = (self.limits.max_attribute_keys, self.limits.max_names);
        let mut evicted = 0;
        let mut masked = std::mem::take(&mut self.masked);
        let mut name = std::mem::take(&mut self.span_name);
        let masker = self.masker.clone();
        let key = self.key;
        let svc = self.service(service_name(resource));
        spans(&mut |span, attrs| {
            // Span names can carry ids ("GET /users/123"): keep them masked.
            masker.mask_into(span.name, &mut masked);
            masked.write_joined(&mut name);
            let t = if span.start_time_unix_nano > 0 {
                span.start_time_unix_nano
            } else {
                received
            };
            let traces = &mut svc.summary.traces;
            traces.volume.items += 1;
            traces.volume.bytes += span.bytes;
            observe_attributes(
                &mut traces.attributes.item,
                attrs.iter().copied(),
                1,
                t,
                cap_keys,
                &mut evicted,
                &key,
            );
            let entry = match traces.spans.get_mut(name.as_str()) {
                Some(e) => e,
                None => {
                    if traces.spans.len() >= cap_names {
                        evict_least_recent(&mut traces.spans, |s: &SpanSummary| {
                            s.seen.last_unix_nano
                        });
                        evicted += 1;
                    }
                    traces.spans.entry(name.clone()).or_default()
                }
            };
            observe_span(entry, span, attrs, t, parents.contains(span.span_id));
        });
        self.evicted_keys += evicted;
        self.masked = masked;
        self.span_name = name;
    }
}

/// What the summariser reads of a span besides its attributes.
pub(crate) struct SpanFacts<'a> {
    pub(crate) name: &'a str,
    pub(crate) span_id: &'a [u8],
    pub(crate) parent_span_id: &'a [u8],
    pub(crate) kind: i32,
    pub(crate) status_code: i32,
    pub(crate) start_time_unix_nano: u64,
    pub(crate) end_time_unix_nano: u64,
    /// Encoded size of the span.
    pub(crate) bytes: u64,
}

impl<'a> SpanFacts<'a> {
    /// The facts of a decoded span, with its attributes into `attrs` (cleared first).
    pub(crate) fn of(span: &'a Span, attrs: &mut Vec<AttrRef<'a>>) -> Self {
        attrs.clear();
        attrs.extend(span.attributes.iter().map(AttrRef::of));
        SpanFacts {
            name: &span.name,
            span_id: &span.span_id,
            parent_span_id: &span.parent_span_id,
            kind: span.kind,
            status_code: span.status.as_ref().map_or(0, |s| s.code),
            start_time_unix_nano: span.start_time_unix_nano,
            end_time_unix_nano: span.end_time_unix_nano,
            bytes: span.encoded_len() as u64,
        }
    }
}

fn observe_span(
    entry: &mut SpanSummary,
    span: &SpanFacts<'_>,
    attrs: &[AttrRef<'_>],
    t: u64,
    has_child: bool,
) {
    let bytes = span.bytes;
    entry.volume.items += 1;
    entry.volume.bytes += bytes;
    match span.kind {
        1 => entry.kinds.internal += 1,
        2 => entry.kinds.server += 1,
        3 => entry.kinds.client += 1,
        4 => entry.kinds.producer += 1,
        5 => entry.kinds.consumer += 1,
        _ => entry.kinds.unspecified += 1,
    }
    match span.status_code {
        1 => entry.status.ok += 1,
        2 => entry.status.error += 1,
        _ => entry.status.unset += 1,
    }
    if span.end_time_unix_nano >= span.start_time_unix_nano && span.start_time_unix_nano > 0 {
        let ms = (span.end_time_unix_nano - span.start_time_unix_nano) as f64 / 1e6;
        entry.duration_ms.add_ms(ms);
    }
    if span.parent_span_id.is_empty() {
        entry.roots += 1;
    }
    if !has_child {
        entry.childless_in_batch += 1;
    }
    entry.seen.observe(t);
    for kv in attrs {
        if entry.attribute_keys.len() < MAX_KEYS_PER_ENTRY && !entry.attribute_keys.contains(kv.key)
        {
            entry.attribute_keys.insert(kv.key.to_string());
        }
    }
}
