//! Summarising batches into a [`CatalogSummary`] held in memory until taken.
//!
//! An [`Accumulator`] keeps, per service, a template miner (whose templates live across
//! flushes, so ids stay stable) and the counts since the last [`Accumulator::take`].
//! Memory is bounded by [`Limits`]: services, templates per service, attribute keys per
//! service/signal/location, metric and span names per service. Past a cap the least recently
//! seen entry is evicted and counted.
//!
//! By concern: `values` (how a value or attribute is read, hashed and counted into
//! an attribute schema), `logs` (records: mining bodies into templates), `traces` (spans),
//! `metrics` (metric points); here the accumulator, its caps, per-service state and the
//! take.

mod logs;
mod metrics;
mod traces;
pub(crate) mod unread;
mod values;

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use rustc_hash::{FxHashMap, FxHashSet};
use weir_api::otlp::common::v1::any_value::Value;
use weir_api::otlp::resource::v1::Resource;
use weir_api::{Batch, Payload, Signal};

use crate::drain::{MinerConfig, TemplateMiner};
use crate::key::SketchKey;
use crate::mask::{MaskedLine, Masker};
use crate::summary::{template_id, CatalogSummary, ServiceSummary, TemplateSummary};

pub(crate) use logs::LogFacts;
pub use logs::MAX_MINED_BYTES;
pub(crate) use traces::SpanFacts;
pub(crate) use values::{AttrRef, Nested, ValueRef};

use metrics::point_count;
use values::{attributes_hash, observe_attributes};

/// Service name used when a resource has no `service.name`.
pub const UNKNOWN_SERVICE: &str = "unknown_service";
/// Service name that services past `max_services` are counted under.
pub const OTHER_SERVICES: &str = "(other services)";

/// Caps that keep an accumulator's memory bounded whatever the input.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Template-miner settings; `max_templates` applies per service.
    pub miner: MinerConfig,
    /// Services tracked; further ones are counted under [`OTHER_SERVICES`].
    pub max_services: usize,
    /// Attribute keys per service, signal and location (resource or item).
    pub max_attribute_keys: usize,
    /// Metric names and span names per service.
    pub max_names: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            miner: MinerConfig {
                max_templates: 2000,
                ..MinerConfig::default()
            },
            max_services: 1000,
            max_attribute_keys: 256,
            max_names: 2000,
        }
    }
}

struct ServiceState {
    miner: TemplateMiner,
    /// Counts per miner slot since the last take (text filled in at take time).
    slots: Vec<TemplateSummary>,
    summary: ServiceSummary,
    /// Template slot and hash of the previous record (body, attributes, resource), to count
    /// exact repeats.
    last_record: Option<(u32, u64)>,
    /// Catalog id per miner slot: fixed at the template's first take, so a template that
    /// widens later keeps its id.
    ids: Vec<Option<String>>,
    /// Per miner slot: the current second (record time) and the records of the slot in it.
    rate: Vec<(u64, u64)>,
    /// Ids already taken of templates that merged into another since the last take, with
    /// the slot they merged into (its id may be fixed only at the next take).
    retiring: Vec<(String, u32)>,
    /// Retired ids whose survivor was evicted before the take, with the survivor's id.
    retired: Vec<(String, String)>,
}

/// Summaries since the last take, plus the template miners.
pub struct Accumulator {
    limits: Limits,
    services: FxHashMap<String, ServiceState>,
    evicted_templates: u64,
    evicted_keys: u64,
    body: String,
    /// Scratch for a record's severity class key.
    severity_key: String,
    masker: Masker,
    masked: MaskedLine,
    span_name: String,
    /// Key of every value hash ([`SketchKey`]).
    key: SketchKey,
}

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

fn service_name(resource: Option<&Resource>) -> &str {
    resource
        .into_iter()
        .flat_map(|r| &r.attributes)
        .find(|kv| kv.key == "service.name")
        .and_then(
            |kv| match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(Value::StringValue(s)) if !s.is_empty() => Some(s.as_str()),
                _ => None,
            },
        )
        .unwrap_or(UNKNOWN_SERVICE)
}

/// A value as the summariser reads it: from a decoded `AnyValue`, or in place from the
fn evict_least_recent<V>(map: &mut BTreeMap<String, V>, last_seen: impl Fn(&V) -> u64) {
    let oldest = map
        .iter()
        .min_by_key(|(_, v)| last_seen(v))
        .map(|(k, _)| k.clone());
    if let Some(k) = oldest {
        map.remove(&k);
    }
}
impl Accumulator {
    /// An empty accumulator with these caps.
    pub fn new(limits: Limits) -> Self {
        Accumulator {
            limits,
            services: FxHashMap::default(),
            evicted_templates: 0,
            evicted_keys: 0,
            body: String::new(),
            severity_key: String::new(),
            masker: Masker::new(),
            masked: MaskedLine::new(),
            span_name: String::new(),
            key: SketchKey::process_default(),
        }
    }

    /// The key value hashes are made with.
    pub fn key(&self) -> SketchKey {
        self.key
    }

    /// Hashes values with `key` from now on. What was gathered under the previous key is
    /// taken first and returned (labelled with that key), so no summary mixes keys.
    pub fn set_key(&mut self, key: SketchKey) -> CatalogSummary {
        let before = self.take();
        self.key = key;
        before
    }

    /// The name the state of service `name` is kept under: `name`, or [`OTHER_SERVICES`]
    /// once the service limit is reached.
    fn entry_key<'a>(&self, name: &'a str) -> &'a str {
        if self.services.contains_key(name) || self.services.len() < self.limits.max_services {
            name
        } else {
            OTHER_SERVICES
        }
    }

    fn service(&mut self, name: &str) -> &mut ServiceState {
        let name = self.entry_key(name);
        if !self.services.contains_key(name) {
            let miner = TemplateMiner::new(self.limits.miner.clone());
            self.services.insert(
                name.to_string(),
                ServiceState {
                    miner,
                    slots: Vec::new(),
                    summary: ServiceSummary::default(),
                    last_record: None,
                    ids: Vec::new(),
                    rate: Vec::new(),
                    retiring: Vec::new(),
                    retired: Vec::new(),
                },
            );
        }
        match self.services.get_mut(name) {
            Some(s) => s,
            None => unreachable!("inserted above"),
        }
    }

    /// Summarises one batch (never changes it).
    pub fn observe(&mut self, batch: &Batch) {
        let received = batch
            .context
            .received_at
            .duration_since(UNIX_EPOCH)
            .map_or_else(|_| now_nanos(), |d| d.as_nanos() as u64);
        // A logs request nobody decoded yet is summarised from its bytes: decoding it would
        // cost more than the summary, and the forwarded batch never needs it.
        if !batch.is_decoded() {
            if let Some(bytes) = batch.original_bytes() {
                let done = match batch.signal() {
                    Signal::Logs => self.observe_logs_encoded(bytes, received),
                    Signal::Traces => self.observe_traces_encoded(bytes, received),
                    Signal::Metrics => false,
                };
                if done {
                    return;
                }
            }
        }
        match batch.payload() {
            Payload::Logs(req) => {
                let mut attrs = Vec::new();
                for rl in &req.resource_logs {
                    let n: u64 = rl
                        .scope_logs
                        .iter()
                        .map(|s| s.log_records.len() as u64)
                        .sum();
                    self.observe_resource(rl.resource.as_ref(), n, received, Sig::Logs);
                    let resource_hash = rl
                        .resource
                        .as_ref()
                        .map_or(0, |r| attributes_hash(&r.attributes, &self.key));
                    // The service's state is looked up once per resource, not per record:
                    // taken out of the map while its records are observed.
                    let service = service_name(rl.resource.as_ref());
                    let key = self.entry_key(service);
                    self.service(key);
                    let Some((name, mut svc)) = self.services.remove_entry(key) else {
                        unreachable!("service() inserts the service")
                    };
                    for sl in &rl.scope_logs {
                        for r in &sl.log_records {
                            let facts = LogFacts::of(r, &mut attrs);
                            self.observe_log(&mut svc, &facts, &attrs, received, resource_hash);
                        }
                    }
                    self.services.insert(name, svc);
                }
            }
            Payload::Traces(req) => {
                // Span ids named as a parent anywhere in the batch.
                let parents: FxHashSet<&[u8]> = req
                    .resource_spans
                    .iter()
                    .flat_map(|r| &r.scope_spans)
                    .flat_map(|s| &s.spans)
                    .filter(|s| !s.parent_span_id.is_empty())
                    .map(|s| s.parent_span_id.as_slice())
                    .collect();
                let mut attrs = Vec::new();
                for rs in &req.resource_spans {
                    let n: u64 = rs.scope_spans.iter().map(|s| s.spans.len() as u64).sum();
                    let resource = rs.resource.as_ref();
                    self.observe_resource(resource, n, received, Sig::Traces);
                    let spans = rs.scope_spans.iter().flat_map(|s| &s.spans);
                    self.observe_spans(resource, received, &parents, |each| {
                        for span in spans {
                            each(&SpanFacts::of(span, &mut attrs), &attrs);
                        }
                    });
                }
            }
            Payload::Metrics(req) => {
                for rm in &req.resource_metrics {
                    let n: u64 = rm
                        .scope_metrics
                        .iter()
                        .flat_map(|s| &s.metrics)
                        .map(|m| point_count(m.data.as_ref()) as u64)
                        .sum();
                    self.observe_resource(rm.resource.as_ref(), n, received, Sig::Metrics);
                    for m in rm.scope_metrics.iter().flat_map(|s| &s.metrics) {
                        self.observe_metric(service_name(rm.resource.as_ref()), m, received);
                    }
                }
            }
        }
    }

    fn observe_resource(&mut self, resource: Option<&Resource>, items: u64, t: u64, sig: Sig) {
        if items == 0 {
            return;
        }
        let cap = self.limits.max_attribute_keys;
        let mut evicted = 0;
        let key = self.key;
        let svc = self.service(service_name(resource));
        let attrs = match sig {
            Sig::Logs => &mut svc.summary.logs.attributes.resource,
            Sig::Traces => &mut svc.summary.traces.attributes.resource,
            Sig::Metrics => &mut svc.summary.metrics.attributes.resource,
        };
        if let Some(r) = resource {
            let refs = r.attributes.iter().map(AttrRef::of);
            observe_attributes(attrs, refs, items, t, cap, &mut evicted, &key);
        }
        self.evicted_keys += evicted;
    }
    /// Takes what was summarised since the last take; templates stay known to the miners.
    pub fn take(&mut self) -> CatalogSummary {
        let mut out = CatalogSummary {
            evicted_templates: std::mem::take(&mut self.evicted_templates),
            evicted_keys: std::mem::take(&mut self.evicted_keys),
            sketch_key_id: self.key.id(),
            ..CatalogSummary::default()
        };
        for (name, svc) in &mut self.services {
            let mut summary = crate::redact::redact_service(std::mem::take(&mut svc.summary));
            for (slot, stats) in svc.slots.iter_mut().enumerate() {
                if stats.count == 0 {
                    continue;
                }
                let mut stats = std::mem::take(stats);
                stats.template = svc.miner.template(slot as u32).unwrap_or_default();
                stats.attribute_keys =
                    crate::redact::keys(std::mem::take(&mut stats.attribute_keys));
                if svc.ids.len() <= slot {
                    svc.ids.resize(slot + 1, None);
                }
                let id = svc.ids[slot]
                    .get_or_insert_with(|| template_id(&stats.template))
                    .clone();
                match summary.logs.templates.get_mut(&id) {
                    Some(t) => t.merge(&stats),
                    None => {
                        summary.logs.templates.insert(id, stats);
                    }
                }
            }
            // Retired ids name their survivor's id, fixed now if it had no take yet.
            for (old, into) in std::mem::take(&mut svc.retiring) {
                let slot = into as usize;
                let Some(text) = svc.miner.template(into) else {
                    continue;
                };
                if svc.ids.len() <= slot {
                    svc.ids.resize(slot + 1, None);
                }
                let id = svc.ids[slot]
                    .get_or_insert_with(|| template_id(&text))
                    .clone();
                svc.retired.push((old, id));
            }
            for (old, id) in std::mem::take(&mut svc.retired) {
                if old != id {
                    summary.logs.retired.insert(old, id);
                }
            }
            summary.logs.apply_retired();
            let empty = summary.logs.volume.items == 0
                && summary.traces.volume.items == 0
                && summary.metrics.volume.items == 0
                && summary.metrics.metrics.is_empty();
            if !empty {
                out.services.insert(name.clone(), summary);
            }
        }
        out
    }

    /// Templates evicted and held now, over all services: (evictions so far, held).
    pub fn template_counts(&self) -> (u64, usize) {
        self.services.values().fold((0, 0), |(e, h), s| {
            (e + s.miner.evictions(), h + s.miner.len())
        })
    }
}

#[derive(Clone, Copy)]
enum Sig {
    Logs,
    Traces,
    Metrics,
}
