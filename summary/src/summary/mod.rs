//! Catalog summaries: what the `metadata` processor learns about the telemetry it sees,
//! without keeping any of it.
//!
//! A [`CatalogSummary`] holds, per `service.name`, one section per signal. Every part is
//! mergeable ([`CatalogSummary::merge`]): counts add, sketches merge, first/last-seen widen,
//! sets unite. A summary holds no log body, attribute value or metric value: only masked
//! templates, names, keys, counts, hashes and sketch registers. It serialises with serde
//! (JSON is what the catalog store and edges exchange).
//!
//! By concern: `parts` (what every signal's section is made of: volumes, first/last seen,
//! value types, attribute schemas), `logs` (templates, severities, template widening),
//! `traces` (span names), `metrics` (metric names); here the summary, the per-service
//! merge under caps and template ids.

mod logs;
mod metrics;
mod parts;
mod traces;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::sketch::DistinctSketch;

pub use logs::{
    add_severity_class, parse_severity_class, severity_class_key, severity_class_key_into,
    widen_template, LogsSummary, SeverityMix, TemplateSummary, MAX_SEVERITY_CLASSES,
    OVERFLOW_SEVERITY_CLASS,
};
pub use metrics::{ConstantValue, MetricKind, MetricSummary, MetricsSummary, Temporality};
pub use parts::{AttributeSchema, AttributeSchemas, Seen, ValueKind, ValueTypes, Volume};
pub use traces::{KindMix, SpanSummary, StatusMix, TracesSummary};

/// Everything learnt over a window, per service.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct CatalogSummary {
    /// Per `service.name` (`unknown_service` when the resource has none).
    pub services: BTreeMap<String, ServiceSummary>,
    /// Templates evicted from the miners to respect `max_templates` (their counts up to
    /// eviction are kept in `services`).
    pub evicted_templates: u64,
    /// Attribute keys and metric/span entries evicted to respect the key caps (their
    /// counts are lost).
    pub evicted_keys: u64,
    /// [`crate::key::SketchKey::id`] of the key every value hash in here was made with
    /// (empty: the summary holds no value hashes). Summaries of different keys never mix
    /// hashes: merging drops the other key's ([`CatalogSummary::forget_value_hashes`]).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub sketch_key_id: String,
}

/// One service: a section per signal.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ServiceSummary {
    /// Log records.
    pub logs: LogsSummary,
    /// Spans.
    pub traces: TracesSummary,
    /// Metric data points.
    pub metrics: MetricsSummary,
    /// When the batches counted without being read (`unsummarised` of any signal) were
    /// received: they have no record times, and a catalog's projection window must still
    /// cover them.
    #[serde(skip_serializing_if = "Seen::is_never")]
    pub unsummarised_seen: Seen,
}

/// Attribute keys kept per template or span name.
pub const MAX_KEYS_PER_ENTRY: usize = 64;

impl CatalogSummary {
    /// Adds `other` into `self`: counts add, sketches merge, first/last seen widen. When the
    /// two were hashed under different keys, the value hashes of one side are forgotten
    /// first (the side without a key, else `other`'s): hashes of different keys never merge.
    pub fn merge(&mut self, other: &CatalogSummary) {
        if self.sketch_key_id != other.sketch_key_id && !other.is_empty() {
            if self.is_empty() {
                self.sketch_key_id.clone_from(&other.sketch_key_id);
            } else if self.sketch_key_id.is_empty() {
                self.forget_value_hashes();
                self.sketch_key_id.clone_from(&other.sketch_key_id);
            } else {
                let mut other = other.clone();
                other.forget_value_hashes();
                self.merge_same_key(&other);
                return;
            }
        }
        self.merge_same_key(other);
    }

    /// Merges a summary under the same key; counts saturate.
    fn merge_same_key(&mut self, other: &CatalogSummary) {
        let caps = MergeCaps::UNLIMITED;
        self.evicted_templates = self
            .evicted_templates
            .saturating_add(other.evicted_templates);
        self.evicted_keys = self.evicted_keys.saturating_add(other.evicted_keys);
        let mut left_out = 0u64;
        for (name, s) in &other.services {
            let room = self.services.len() < caps.services;
            match self.services.get_mut(name) {
                Some(mine) => left_out = left_out.saturating_add(mine.merge_within(s, &caps)),
                None if room => {
                    let mut fresh = ServiceSummary::default();
                    left_out = left_out.saturating_add(fresh.merge_within(s, &caps));
                    self.services.insert(name.clone(), fresh);
                }
                None => left_out = left_out.saturating_add(1),
            }
        }
        self.evicted_keys = self.evicted_keys.saturating_add(left_out);
    }

    /// Drops every value hash (distinct sketches become empty, constant-value checks become
    /// "varied": constancy can no longer be shown) and clears [`Self::sketch_key_id`]. Used
    /// when hashes were made under a key other than the deployment's.
    pub fn forget_value_hashes(&mut self) {
        fn schemas(a: &mut AttributeSchemas) {
            for s in a.resource.values_mut().chain(a.item.values_mut()) {
                s.distinct = DistinctSketch::new();
                s.forget_memo();
            }
        }
        for s in self.services.values_mut() {
            schemas(&mut s.logs.attributes);
            schemas(&mut s.traces.attributes);
            schemas(&mut s.metrics.attributes);
            for m in s.metrics.metrics.values_mut() {
                m.series = DistinctSketch::new();
                for d in m.attribute_keys.values_mut() {
                    *d = DistinctSketch::new();
                }
                if m.constant.value_hash.is_some() || m.constant.varied {
                    m.constant = ConstantValue {
                        value_hash: None,
                        varied: true,
                    };
                }
            }
        }
        self.sketch_key_id.clear();
    }

    /// Whether nothing was seen.
    pub fn is_empty(&self) -> bool {
        self.services.is_empty() && self.evicted_templates == 0 && self.evicted_keys == 0
    }
}

impl ServiceSummary {
    /// Adds `o` into `self`, never growing a map past `caps`; returns how many templates,
    /// names and keys were left out.
    pub fn merge_within(&mut self, o: &ServiceSummary, caps: &MergeCaps) -> u64 {
        let mut out = 0u64;
        self.unsummarised_seen.merge(&o.unsummarised_seen);
        let (l, ol) = (&mut self.logs, &o.logs);
        l.volume.merge(&ol.volume);
        l.unsummarised.merge(&ol.unsummarised);
        l.severity.merge(&ol.severity);
        // Retirements first: a template sent under a retired id joins its survivor even when
        // the cap leaves no room for the retired id itself.
        for (old, new) in &ol.retired {
            l.retired.insert(old.clone(), new.clone());
        }
        l.apply_retired();
        if l.retired.is_empty() {
            out = out.saturating_add(merge_map(
                &mut l.templates,
                &ol.templates,
                caps.templates,
                TemplateSummary::merge,
            ));
        } else {
            for (id, t) in &ol.templates {
                let id = l.resolve_id(id).to_string();
                let room = l.templates.len() < caps.templates;
                match l.templates.get_mut(&id) {
                    Some(mine) => mine.merge(t),
                    None if room => {
                        l.templates.insert(id, t.clone());
                    }
                    None => out = out.saturating_add(1),
                }
            }
            // Remembered up to the template cap (the last ids in order are forgotten).
            while l.retired.len() > caps.templates {
                l.retired.pop_last();
            }
        }
        out = out.saturating_add(l.attributes.merge(&ol.attributes, caps.attribute_keys));

        let (t, ot) = (&mut self.traces, &o.traces);
        t.volume.merge(&ot.volume);
        t.unsummarised.merge(&ot.unsummarised);
        out = out.saturating_add(merge_map(
            &mut t.spans,
            &ot.spans,
            caps.names,
            SpanSummary::merge,
        ));
        out = out.saturating_add(t.attributes.merge(&ot.attributes, caps.attribute_keys));

        let (m, om) = (&mut self.metrics, &o.metrics);
        m.volume.merge(&om.volume);
        m.unsummarised.merge(&om.unsummarised);
        out = out.saturating_add(merge_map(
            &mut m.metrics,
            &om.metrics,
            caps.names,
            MetricSummary::merge,
        ));
        out.saturating_add(m.attributes.merge(&om.attributes, caps.attribute_keys))
    }
}

/// The id of a template: 16 hex digits of a stable hash of its text, so that the same
/// template mined on different edges gets the same id.
pub fn template_id(template: &str) -> String {
    format!("{:016x}", crate::sketch::stable_hash(template.as_bytes()))
}

/// Caps on how many entries a merge lets a summary hold (see
/// [`ServiceSummary::merge_within`]); the control plane's store merges under them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MergeCaps {
    /// Services in a catalog summary.
    pub services: usize,
    /// Log templates per service.
    pub templates: usize,
    /// Span names, and metric names, per service.
    pub names: usize,
    /// Attribute keys per service, signal and location (resource / item).
    pub attribute_keys: usize,
}

impl MergeCaps {
    /// No caps (edges, whose extractor is capped already).
    pub const UNLIMITED: MergeCaps = MergeCaps {
        services: usize::MAX,
        templates: usize::MAX,
        names: usize::MAX,
        attribute_keys: usize::MAX,
    };
}

/// Merges `from` into `into`; keys new to `into` are added while it holds fewer than `cap`
/// entries, the rest are left out and counted.
fn merge_map<K: Ord + Clone, V: Default + Clone>(
    into: &mut BTreeMap<K, V>,
    from: &BTreeMap<K, V>,
    cap: usize,
    merge: impl Fn(&mut V, &V),
) -> u64 {
    let mut left_out = 0u64;
    for (k, v) in from {
        let room = into.len() < cap;
        match into.get_mut(k) {
            Some(mine) => merge(mine, v),
            None if room => {
                into.insert(k.clone(), v.clone());
            }
            None => left_out = left_out.saturating_add(1),
        }
    }
    left_out
}

fn unite_keys(into: &mut BTreeSet<String>, from: &BTreeSet<String>) {
    for k in from {
        if into.len() >= MAX_KEYS_PER_ENTRY {
            break;
        }
        if !into.contains(k) {
            into.insert(k.clone());
        }
    }
}
