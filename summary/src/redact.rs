//! The structure rule applied to a service's summary when it is taken: attribute keys,
//! span names, metric names and units are rewritten by [`crate::structure`] (entries that
//! become equal merge). Done at take time, so the per-record path is not slowed and the
//! caps apply to what was seen.

use std::collections::{BTreeMap, BTreeSet};

use crate::sketch::DistinctSketch;
use crate::structure::{redact_name, redact_text};
use crate::summary::{AttributeSchema, CatalogSummary, ServiceSummary};

/// Attribute keys with the structure rule applied.
pub(crate) fn keys(set: BTreeSet<String>) -> BTreeSet<String> {
    set.iter().map(|k| redact_name(k)).collect()
}

fn sketch_keys(map: BTreeMap<String, DistinctSketch>) -> BTreeMap<String, DistinctSketch> {
    let mut out: BTreeMap<String, DistinctSketch> = BTreeMap::new();
    for (k, v) in map {
        match out.get_mut(&redact_name(&k)) {
            Some(s) => s.merge(&v),
            None => {
                out.insert(redact_name(&k), v);
            }
        }
    }
    out
}

/// Adds `piece` into `acc` (merging entries with equal keys, as a catalog merge does).
fn add(acc: &mut CatalogSummary, piece: ServiceSummary) {
    let mut c = CatalogSummary::default();
    c.services.insert(String::new(), piece);
    acc.merge(&c);
}

fn attrs(
    acc: &mut CatalogSummary,
    map: BTreeMap<String, AttributeSchema>,
    place: fn(&mut ServiceSummary) -> &mut BTreeMap<String, AttributeSchema>,
) {
    for (k, v) in map {
        let mut p = ServiceSummary::default();
        place(&mut p).insert(redact_name(&k), v);
        add(acc, p);
    }
}

/// `s` with the structure rule applied to every key and name it holds.
pub(crate) fn redact_service(s: ServiceSummary) -> ServiceSummary {
    let mut acc = CatalogSummary::default();
    let mut base = ServiceSummary::default();
    base.logs.volume = s.logs.volume;
    base.logs.severity = s.logs.severity;
    base.logs.templates = s
        .logs
        .templates
        .into_iter()
        .map(|(id, mut t)| {
            t.attribute_keys = keys(std::mem::take(&mut t.attribute_keys));
            (id, t)
        })
        .collect();
    base.traces.volume = s.traces.volume;
    base.metrics.volume = s.metrics.volume;
    add(&mut acc, base);
    attrs(&mut acc, s.logs.attributes.resource, |p| {
        &mut p.logs.attributes.resource
    });
    attrs(&mut acc, s.logs.attributes.item, |p| {
        &mut p.logs.attributes.item
    });
    attrs(&mut acc, s.traces.attributes.resource, |p| {
        &mut p.traces.attributes.resource
    });
    attrs(&mut acc, s.traces.attributes.item, |p| {
        &mut p.traces.attributes.item
    });
    attrs(&mut acc, s.metrics.attributes.resource, |p| {
        &mut p.metrics.attributes.resource
    });
    attrs(&mut acc, s.metrics.attributes.item, |p| {
        &mut p.metrics.attributes.item
    });
    for (name, mut span) in s.traces.spans {
        span.attribute_keys = keys(std::mem::take(&mut span.attribute_keys));
        let mut p = ServiceSummary::default();
        p.traces.spans.insert(redact_text(&name), span);
        add(&mut acc, p);
    }
    for (name, mut m) in s.metrics.metrics {
        m.unit = redact_name(&m.unit);
        m.attribute_keys = sketch_keys(std::mem::take(&mut m.attribute_keys));
        let mut p = ServiceSummary::default();
        p.metrics.metrics.insert(redact_name(&name), m);
        add(&mut acc, p);
    }
    acc.services.remove("").unwrap_or_default()
}
