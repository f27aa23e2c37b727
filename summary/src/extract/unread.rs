//! The volume of a batch per service, without reading its items: what a summary counts
//! for a batch its summariser had no time for ([`crate::background`]). Items and bytes are
//! those the summariser would count: log records and spans with their size as received,
//! metric data points with their metric's encoded size.

use prost::Message;
use weir_api::otlp::resource::v1::Resource;
use weir_api::wire_read::{fields, layout, Wire};
use weir_api::{Batch, Payload, Signal};

use super::service_name;
use crate::summary::Volume;

/// Calls `add(service name, volume)` for each resource of `batch` (a service may come more
/// than once). Reads the encoded request when the batch still holds it (its framing only:
/// no item is read), else the decoded one.
pub(crate) fn volumes(batch: &Batch, mut add: impl FnMut(&str, Volume)) {
    if !batch.is_decoded() {
        if let Some(bytes) = batch.original_bytes() {
            if let Some(l) = layout(bytes) {
                let mut scopes = l.scopes.as_slice();
                for (i, entry) in l.resources.iter().enumerate() {
                    let own = scopes.iter().take_while(|s| s.resource == i).count();
                    let (mine, rest) = scopes.split_at(own);
                    scopes = rest;
                    let mut v = Volume::default();
                    for scope in mine {
                        for item in l.items.get(scope.items.clone()).unwrap_or(&[]) {
                            let (items, bytes) = match batch.signal() {
                                Signal::Metrics => (points(item), item.len() as u64),
                                _ => (1, item.len() as u64),
                            };
                            v.items += items;
                            v.bytes += bytes;
                        }
                    }
                    add(service_name(entry.resource.as_ref()), v);
                }
                return;
            }
        }
    }
    match batch.payload() {
        Payload::Logs(r) => {
            for rl in &r.resource_logs {
                let records = rl.scope_logs.iter().flat_map(|s| &s.log_records);
                add_decoded(
                    &mut add,
                    rl.resource.as_ref(),
                    records.map(|x| (1, x.encoded_len())),
                );
            }
        }
        Payload::Traces(r) => {
            for rs in &r.resource_spans {
                let spans = rs.scope_spans.iter().flat_map(|s| &s.spans);
                add_decoded(
                    &mut add,
                    rs.resource.as_ref(),
                    spans.map(|x| (1, x.encoded_len())),
                );
            }
        }
        Payload::Metrics(r) => {
            for rm in &r.resource_metrics {
                let metrics = rm.scope_metrics.iter().flat_map(|s| &s.metrics);
                add_decoded(
                    &mut add,
                    rm.resource.as_ref(),
                    metrics.map(|m| {
                        (
                            super::metrics::point_count(m.data.as_ref()) as u64,
                            m.encoded_len(),
                        )
                    }),
                );
            }
        }
    }
}

fn add_decoded(
    add: &mut impl FnMut(&str, Volume),
    resource: Option<&Resource>,
    items: impl Iterator<Item = (u64, usize)>,
) {
    let mut v = Volume::default();
    for (n, bytes) in items {
        v.items += n;
        v.bytes += bytes as u64;
    }
    add(service_name(resource), v);
}

/// The data points of an encoded `Metric`: the `data_points` (field 1) of its gauge (5),
/// sum (7), histogram (9), exponential histogram (10) or summary (11). As prost decodes a
/// oneof: another member replaces the one before, the same member again merges into it.
fn points(metric: &[u8]) -> u64 {
    let (mut n, mut member) = (0, 0);
    for f in fields(metric) {
        if let Some((field @ (5 | 7 | 9 | 10 | 11), Wire::Len(data))) = f {
            let here = fields(data)
                .filter(|f| matches!(f, Some((1, Wire::Len(_)))))
                .count() as u64;
            n = if field == member { n + here } else { here };
            member = field;
        }
    }
    n
}
