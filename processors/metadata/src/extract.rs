//! Summarising batches into a [`CatalogSummary`] held in memory until taken.
//!
//! An [`Accumulator`] keeps, per service, a template miner (whose templates live across
//! flushes, so ids stay stable) and the counts since the last [`Accumulator::take`].
//! Memory is bounded by [`Limits`]: services, templates per service, attribute keys per
//! service/signal/location, metric and span names per service. Past a cap the least recently
//! seen entry is evicted and counted.

use std::collections::BTreeMap;
use std::hash::Hasher as _;
use std::time::{SystemTime, UNIX_EPOCH};

use prost::Message;
use rustc_hash::{FxHashMap, FxHashSet};
use weir_api::otlp::common::v1::{any_value::Value, AnyValue, KeyValue};
use weir_api::otlp::logs::v1::LogRecord;
use weir_api::otlp::metrics::v1::{metric::Data, number_data_point, Metric};
use weir_api::otlp::resource::v1::Resource;
use weir_api::otlp::trace::v1::Span;
use weir_api::{Batch, Payload, Signal};

use crate::drain::{MinerConfig, TemplateMiner};
use crate::key::SketchKey;
use crate::mask::{MaskedLine, Masker};
use crate::sketch::{stable_hash, DistinctSketch};
use crate::summary::{
    add_severity_class, severity_class_key_into, template_id, AttributeSchema, CatalogSummary,
    MetricKind, MetricSummary, ServiceSummary, SpanSummary, TemplateSummary, Temporality,
    ValueKind, Volume, MAX_KEYS_PER_ENTRY,
};

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
/// bytes of an encoded one ([`crate::raw`]). Both give the same kind, hash and size.
#[derive(Clone, Copy)]
pub(crate) enum ValueRef<'a> {
    /// No value set.
    Empty,
    Str(&'a str),
    Bool(bool),
    Int(i64),
    Double(f64),
    Bytes(&'a [u8]),
    /// An array or key-value list (or another member), summarised by its encoding.
    Nested(Nested<'a>),
}

/// A nested value: decoded, or the `AnyValue` field number and bytes of its member.
#[derive(Clone, Copy)]
pub(crate) enum Nested<'a> {
    Decoded(&'a Value),
    Encoded { field: u8, member: &'a [u8] },
}

impl<'a> ValueRef<'a> {
    pub(crate) fn of(v: Option<&'a AnyValue>) -> Self {
        match v.and_then(|v| v.value.as_ref()) {
            None => ValueRef::Empty,
            Some(Value::StringValue(s)) => ValueRef::Str(s),
            Some(Value::BoolValue(b)) => ValueRef::Bool(*b),
            Some(Value::IntValue(i)) => ValueRef::Int(*i),
            Some(Value::DoubleValue(d)) => ValueRef::Double(*d),
            Some(Value::BytesValue(b)) => ValueRef::Bytes(b),
            Some(other) => ValueRef::Nested(Nested::Decoded(other)),
        }
    }
}

impl Nested<'_> {
    /// 5: array, 6: key-value list, another number: a member the summariser does not read.
    fn field(&self) -> u8 {
        match self {
            Nested::Decoded(Value::ArrayValue(_)) => 5,
            Nested::Decoded(Value::KvlistValue(_)) => 6,
            Nested::Decoded(_) => 0,
            Nested::Encoded { field, .. } => *field,
        }
    }

    /// The encoding of the `AnyValue` holding this member alone.
    fn any_value_encoding(&self) -> Vec<u8> {
        match self {
            Nested::Decoded(v) => AnyValue {
                value: Some((*v).clone()),
            }
            .encode_to_vec(),
            Nested::Encoded { field, member } => {
                let mut out = Vec::with_capacity(member.len() + 11);
                prost::encoding::encode_key(
                    u32::from(*field),
                    prost::encoding::WireType::LengthDelimited,
                    &mut out,
                );
                prost::encoding::encode_varint(member.len() as u64, &mut out);
                out.extend_from_slice(member);
                out
            }
        }
    }
}

/// The type of a scalar value and the tag and bytes its keyed hash is made of (`word`
/// holds them for numbers and booleans); `None` for a nested value.
#[inline]
fn scalar<'a>(v: ValueRef<'a>, word: &'a mut [u8; 8]) -> Option<(ValueKind, u8, &'a [u8])> {
    Some(match v {
        ValueRef::Empty => (ValueKind::Empty, 0, b""),
        ValueRef::Str(s) => (ValueKind::String, 1, s.as_bytes()),
        ValueRef::Bool(b) => {
            word[0] = u8::from(b);
            (ValueKind::Bool, 2, &word[..1])
        }
        ValueRef::Int(i) => {
            *word = i.to_le_bytes();
            (ValueKind::Int, 3, &word[..])
        }
        ValueRef::Double(d) => {
            *word = d.to_bits().to_le_bytes();
            (ValueKind::Double, 4, &word[..])
        }
        ValueRef::Bytes(b) => (ValueKind::Bytes, 5, b),
        ValueRef::Nested(_) => return None,
    })
}

/// Type, keyed hash and approximate encoded size of a value.
pub(crate) fn value_info(v: ValueRef<'_>, key: &SketchKey) -> (ValueKind, u64, u64) {
    let mut word = [0u8; 8];
    if let Some((kind, tag, bytes)) = scalar(v, &mut word) {
        let size = match v {
            ValueRef::Str(s) => s.len() as u64,
            ValueRef::Bytes(b) => b.len() as u64,
            ValueRef::Bool(_) => 1,
            ValueRef::Int(_) | ValueRef::Double(_) => 8,
            _ => 0,
        };
        return (kind, key.hash_tagged(tag, bytes), size);
    }
    let ValueRef::Nested(n) = v else {
        unreachable!("scalar() reads every value but a nested one")
    };
    let kind = match n.field() {
        5 => ValueKind::Array,
        _ => ValueKind::Kvlist,
    };
    // Rare: nested values are hashed by their encoding.
    let bytes = n.any_value_encoding();
    (kind, key.hash_tagged(6, &bytes), bytes.len() as u64)
}

/// An attribute as the summariser reads it: its key, its value and the encoded size of the
/// `KeyValue` message.
#[derive(Clone, Copy)]
pub(crate) struct AttrRef<'a> {
    pub(crate) key: &'a str,
    pub(crate) value: ValueRef<'a>,
    pub(crate) pair_len: usize,
}

impl<'a> AttrRef<'a> {
    pub(crate) fn of(kv: &'a KeyValue) -> Self {
        AttrRef {
            key: &kv.key,
            value: ValueRef::of(kv.value.as_ref()),
            pair_len: kv.encoded_len(),
        }
    }
}

/// Keyed hash of one key/value pair, for series identity.
fn pair_hash(kv: &KeyValue, key: &SketchKey) -> u64 {
    let (_, vh, _) = value_info(ValueRef::of(kv.value.as_ref()), key);
    key.hash(kv.key.as_bytes()).rotate_left(17) ^ vh
}

/// Order-independent hash of a set of attributes (keys and values).
fn attributes_hash(attrs: &[KeyValue], key: &SketchKey) -> u64 {
    attrs
        .iter()
        .fold(0u64, |acc, kv| acc.wrapping_add(pair_hash(kv, key)))
}

/// Counts attributes carried by `weight` items into `map`, keeping at most `cap` keys.
/// Returns an order-independent hash of the attributes (keys and values) for telling
/// exact repeats apart in memory: each value is hashed once, with the key, for both.
fn observe_attributes<'a>(
    map: &mut BTreeMap<String, AttributeSchema>,
    attrs: impl IntoIterator<Item = AttrRef<'a>>,
    weight: u64,
    t: u64,
    cap: usize,
    evicted: &mut u64,
    key: &SketchKey,
) -> u64 {
    let mut set_hash = 0u64;
    for kv in attrs {
        let schema = match map.get_mut(kv.key) {
            Some(s) => s,
            None => {
                if map.len() >= cap {
                    evict_least_recent(map, |s| s.seen.last_unix_nano);
                    *evicted += 1;
                }
                map.entry(kv.key.to_string()).or_default()
            }
        };
        // The keyed hash and the sketch update, unless the schema's memo shows the sketch
        // holds this value's hash already (a byte compare; inserting twice changes nothing).
        let mut word = [0u8; 8];
        let (kind, h) = match scalar(kv.value, &mut word) {
            Some((kind, tag, bytes)) => match schema.memo.get(tag, bytes) {
                Some(h) => (kind, h),
                None => {
                    let h = key.hash_tagged(tag, bytes);
                    schema.distinct.insert_hash(h);
                    schema.memo.put(tag, bytes, h);
                    (kind, h)
                }
            },
            None => {
                let (kind, h, _) = value_info(kv.value, key);
                schema.distinct.insert_hash(h);
                (kind, h)
            }
        };
        schema.types.add(kind, weight);
        schema.items += weight;
        // What removing the attribute saves on the wire: the whole encoded key/value pair
        // with its field tag and length prefix.
        let pair = kv.pair_len;
        let encoded = (1 + prost::encoding::encoded_len_varint(pair as u64) + pair) as u64;
        schema.bytes += encoded * weight;
        schema.seen.observe(t);
        // In memory only (repeat detection): a fast hash of the key is enough.
        let mut kh = rustc_hash::FxHasher::default();
        kh.write(kv.key.as_bytes());
        set_hash = set_hash.wrapping_add(kh.finish().rotate_left(17) ^ h);
    }
    set_hash
}

fn evict_least_recent<V>(map: &mut BTreeMap<String, V>, last_seen: impl Fn(&V) -> u64) {
    let oldest = map
        .iter()
        .min_by_key(|(_, v)| last_seen(v))
        .map(|(k, _)| k.clone());
    if let Some(k) = oldest {
        map.remove(&k);
    }
}

/// Bytes of a string body that are masked and mined (the rest counts as one `<*>`).
pub const MAX_MINED_BYTES: usize = 16 * 1024;

/// At most `max` bytes of `s`, cut at a character boundary.
fn head(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The text mined for a log body: strings as they are; other bodies by their shape only.
fn body_text<'a>(body: ValueRef<'a>, scratch: &'a mut String) -> &'a str {
    match body {
        // The miner looks at the first `max_tokens` tokens only: a huge body (1 MB) is
        // mined from its head, so its cost stays that of a long line.
        ValueRef::Str(s) => head(s, MAX_MINED_BYTES),
        ValueRef::Empty => "",
        ValueRef::Nested(n) if n.field() == 6 => {
            scratch.clear();
            scratch.push_str("{kvlist:");
            let mut i = 0;
            let mut add = |key: &str| {
                if scratch.len() < MAX_MINED_BYTES {
                    scratch.push(if i == 0 { ' ' } else { ',' });
                    scratch.push_str(head(key, MAX_MINED_BYTES));
                }
                i += 1;
            };
            match n {
                Nested::Decoded(Value::KvlistValue(kv)) => {
                    kv.values.iter().for_each(|e| add(&e.key))
                }
                Nested::Encoded { member, .. } => crate::raw::list_keys(member, add),
                Nested::Decoded(_) => {}
            }
            scratch.push('}');
            scratch
        }
        ValueRef::Nested(n) if n.field() == 5 => "{array}",
        ValueRef::Bool(_) => "{bool}",
        ValueRef::Int(_) => "{int}",
        ValueRef::Double(_) => "{double}",
        ValueRef::Bytes(_) => "{bytes}",
        ValueRef::Nested(_) => "{other}",
    }
}

/// What the summariser reads of a log record besides its attributes.
pub(crate) struct LogFacts<'a> {
    pub(crate) time_unix_nano: u64,
    pub(crate) observed_time_unix_nano: u64,
    /// Encoded size of the record.
    pub(crate) bytes: u64,
    pub(crate) severity_number: i32,
    pub(crate) severity_text: &'a str,
    pub(crate) body: ValueRef<'a>,
}

impl<'a> LogFacts<'a> {
    /// The facts of a decoded record, with its attributes into `attrs` (cleared first).
    pub(crate) fn of(r: &'a LogRecord, attrs: &mut Vec<AttrRef<'a>>) -> Self {
        attrs.clear();
        attrs.extend(r.attributes.iter().map(AttrRef::of));
        LogFacts {
            time_unix_nano: r.time_unix_nano,
            observed_time_unix_nano: r.observed_time_unix_nano,
            bytes: r.encoded_len() as u64,
            severity_number: r.severity_number,
            severity_text: &r.severity_text,
            body: ValueRef::of(r.body.as_ref()),
        }
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

    /// Summarises the encoded logs request in `buf` as [`Self::observe`] summarises its
    /// prost decoding. `false`, with nothing summarised, when its resource and scope levels
    /// cannot be read (never for bytes that passed the receiver's check).
    fn observe_logs_encoded(&mut self, buf: &[u8], received: u64) -> bool {
        let Some(layout) = weir_api::wire_read::layout(buf) else {
            return false;
        };
        let mut attrs = Vec::new();
        let mut scopes = layout.scopes.as_slice();
        for (i, entry) in layout.resources.iter().enumerate() {
            // A resource's scopes are contiguous, in order.
            let own = scopes.iter().take_while(|s| s.resource == i).count();
            let (mine, rest) = scopes.split_at(own);
            scopes = rest;
            let n: u64 = mine.iter().map(|s| s.items.len() as u64).sum();
            let resource = entry.resource.as_ref();
            self.observe_resource(resource, n, received, Sig::Logs);
            let resource_hash = resource.map_or(0, |r| attributes_hash(&r.attributes, &self.key));
            let key = self.entry_key(service_name(resource));
            self.service(key);
            let Some((name, mut svc)) = self.services.remove_entry(key) else {
                unreachable!("service() inserts the service")
            };
            for scope in mine {
                for &bytes in layout.items.get(scope.items.clone()).unwrap_or(&[]) {
                    if let Some(facts) = crate::raw::record(bytes, &mut attrs) {
                        self.observe_log(&mut svc, &facts, &attrs, received, resource_hash);
                        continue;
                    }
                    // A record prost would merge fields of: read from prost's decoding.
                    match LogRecord::decode(bytes) {
                        Ok(r) => {
                            let mut own_attrs = Vec::new();
                            let mut facts = LogFacts::of(&r, &mut own_attrs);
                            // Its size as received (prost's encoding may be shorter).
                            facts.bytes = bytes.len() as u64;
                            self.observe_log(&mut svc, &facts, &own_attrs, received, resource_hash);
                        }
                        // Not reached for checked bytes; the record is counted, unread.
                        Err(_) => {
                            let facts = LogFacts {
                                time_unix_nano: 0,
                                observed_time_unix_nano: 0,
                                bytes: bytes.len() as u64,
                                severity_number: 0,
                                severity_text: "",
                                body: ValueRef::Empty,
                            };
                            self.observe_log(&mut svc, &facts, &[], received, resource_hash);
                        }
                    }
                }
            }
            self.services.insert(name, svc);
        }
        true
    }

    /// Summarises the encoded traces request in `buf` as [`Self::observe`] summarises its
    /// prost decoding; `false`, with nothing summarised, when its resource and scope levels
    /// cannot be read.
    fn observe_traces_encoded(&mut self, buf: &[u8], received: u64) -> bool {
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
    fn observe_spans(
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

    fn observe_log(
        &mut self,
        svc: &mut ServiceState,
        r: &LogFacts<'_>,
        attrs: &[AttrRef<'_>],
        received: u64,
        resource_hash: u64,
    ) {
        let t = if r.time_unix_nano > 0 {
            r.time_unix_nano
        } else if r.observed_time_unix_nano > 0 {
            r.observed_time_unix_nano
        } else {
            received
        };
        let bytes = r.bytes;
        let cap = self.limits.max_attribute_keys;
        let mut body = std::mem::take(&mut self.body);
        let mut sev_key = std::mem::take(&mut self.severity_key);
        let mut masked = std::mem::take(&mut self.masked);
        let mut evicted_keys = 0;
        let mut evicted_templates = 0;
        let key = self.key;
        let text = body_text(r.body, &mut body);
        let logs = &mut svc.summary.logs;
        logs.volume.items += 1;
        logs.volume.bytes += bytes;
        logs.severity.observe(r.severity_number, r.severity_text);
        let attributes_hash = observe_attributes(
            &mut logs.attributes.item,
            attrs.iter().copied(),
            1,
            t,
            cap,
            &mut evicted_keys,
            &key,
        );
        // What makes a record an exact repeat: its body, its attributes and its resource.
        let body_hash = stable_hash(text.as_bytes())
            ^ attributes_hash.rotate_left(21)
            ^ resource_hash.rotate_left(42);
        let assignment = svc.miner.add_with(text, &mut masked);
        for m in svc.miner.take_merged() {
            // Siblings merged: their counts since the last take go to the survivor.
            let (from, into) = (m.slot as usize, m.into_slot as usize);
            // A catalog holding the merged template's id moves its counts to the survivor.
            for r in &mut svc.retiring {
                if r.1 == m.slot {
                    r.1 = m.into_slot;
                }
            }
            if let Some(old) = svc.ids.get_mut(from).and_then(Option::take) {
                svc.retiring.push((old, m.into_slot));
            }
            if from < svc.slots.len() {
                let moved = std::mem::take(&mut svc.slots[from]);
                if svc.slots.len() <= into {
                    svc.slots.resize_with(into + 1, TemplateSummary::default);
                }
                svc.slots[into].merge(&moved);
            }
        }
        if let Some(gone) = svc.miner.take_evicted() {
            evicted_templates += 1;
            let kept_id = svc.ids.get_mut(gone.slot as usize).and_then(Option::take);
            let id = kept_id.unwrap_or_else(|| template_id(&gone.template));
            // Ids retired into the evicted template point at its id from now on.
            let mut i = 0;
            while i < svc.retiring.len() {
                if svc.retiring[i].1 == gone.slot {
                    let (old, _) = svc.retiring.swap_remove(i);
                    svc.retired.push((old, id.clone()));
                } else {
                    i += 1;
                }
            }
            if let Some(stats) = svc.slots.get_mut(gone.slot as usize) {
                let mut stats = std::mem::take(stats);
                if stats.count > 0 {
                    stats.template = gone.template;
                    stats.attribute_keys =
                        crate::redact::keys(std::mem::take(&mut stats.attribute_keys));
                    match svc.summary.logs.templates.get_mut(&id) {
                        Some(t) => t.merge(&stats),
                        None => {
                            svc.summary.logs.templates.insert(id, stats);
                        }
                    }
                }
            }
        }
        let slot = assignment.slot as usize;
        if svc.slots.len() <= slot {
            svc.slots.resize_with(slot + 1, TemplateSummary::default);
        }
        if assignment.created {
            if let Some(id) = svc.ids.get_mut(slot) {
                *id = None;
            }
        }
        let repeat = svc.last_record == Some((assignment.slot, body_hash));
        svc.last_record = Some((assignment.slot, body_hash));
        if svc.rate.len() <= slot {
            svc.rate.resize(slot + 1, (0, 0));
        }
        let second = t / 1_000_000_000;
        let rate = &mut svc.rate[slot];
        if rate.0 == second {
            rate.1 += 1;
        } else {
            *rate = (second, 1);
        }
        let in_second = rate.1;
        let stats = &mut svc.slots[slot];
        stats.peak_per_second = stats.peak_per_second.max(in_second);
        severity_class_key_into(r.severity_number, r.severity_text, &mut sev_key);
        add_severity_class(&mut stats.severities, &sev_key, &Volume { items: 1, bytes });
        stats.duplicates += u64::from(repeat);
        stats.count += 1;
        stats.bytes += bytes;
        stats.severity.observe(r.severity_number, r.severity_text);
        stats.seen.observe(t);
        for kv in attrs {
            if stats.attribute_keys.len() < MAX_KEYS_PER_ENTRY
                && !stats.attribute_keys.contains(kv.key)
            {
                stats.attribute_keys.insert(kv.key.to_string());
            }
        }
        self.evicted_keys += evicted_keys;
        self.evicted_templates += evicted_templates;
        self.body = body;
        self.severity_key = sev_key;
        self.masked = masked;
    }

    fn observe_metric(&mut self, service: &str, m: &Metric, received: u64) {
        let points = point_count(m.data.as_ref()) as u64;
        let bytes = m.encoded_len() as u64;
        let (cap_keys, cap_names) = (self.limits.max_attribute_keys, self.limits.max_names);
        let mut evicted = 0;
        let key = self.key;
        let svc = self.service(service);
        let metrics = &mut svc.summary.metrics;
        metrics.volume.items += points;
        metrics.volume.bytes += bytes;
        let entry = match metrics.metrics.get_mut(m.name.as_str()) {
            Some(e) => e,
            None => {
                if metrics.metrics.len() >= cap_names {
                    evict_least_recent(&mut metrics.metrics, |s: &MetricSummary| {
                        s.seen.last_unix_nano
                    });
                    evicted += 1;
                }
                metrics.metrics.entry(m.name.clone()).or_default()
            }
        };
        if entry.unit.is_empty() {
            entry.unit.clone_from(&m.unit);
        }
        entry.volume.items += points;
        entry.volume.bytes += bytes;
        let temporality = |t: i32| match t {
            1 => Temporality::Delta,
            2 => Temporality::Cumulative,
            _ => Temporality::Unspecified,
        };
        let mut points_seen: Vec<(&[KeyValue], u64, u64)> = Vec::new();
        match m.data.as_ref() {
            None => {}
            Some(Data::Gauge(g)) => {
                entry.kind = MetricKind::Gauge;
                for p in &g.data_points {
                    points_seen.push((
                        &p.attributes,
                        p.time_unix_nano,
                        number_hash(&p.value, &key),
                    ));
                }
            }
            Some(Data::Sum(s)) => {
                entry.kind = MetricKind::Sum;
                entry.temporality = temporality(s.aggregation_temporality);
                entry.monotonic |= s.is_monotonic;
                for p in &s.data_points {
                    points_seen.push((
                        &p.attributes,
                        p.time_unix_nano,
                        number_hash(&p.value, &key),
                    ));
                }
            }
            Some(Data::Histogram(h)) => {
                entry.kind = MetricKind::Histogram;
                entry.temporality = temporality(h.aggregation_temporality);
                for p in &h.data_points {
                    let v = hist_hash(p.count, p.sum.unwrap_or(0.0), &key);
                    points_seen.push((&p.attributes, p.time_unix_nano, v));
                }
            }
            Some(Data::ExponentialHistogram(h)) => {
                entry.kind = MetricKind::ExponentialHistogram;
                entry.temporality = temporality(h.aggregation_temporality);
                for p in &h.data_points {
                    let v = hist_hash(p.count, p.sum.unwrap_or(0.0), &key);
                    points_seen.push((&p.attributes, p.time_unix_nano, v));
                }
            }
            Some(Data::Summary(s)) => {
                entry.kind = MetricKind::Summary;
                for p in &s.data_points {
                    points_seen.push((
                        &p.attributes,
                        p.time_unix_nano,
                        hist_hash(p.count, p.sum, &key),
                    ));
                }
            }
        }
        for (attrs, time, value_hash) in points_seen {
            let t = if time > 0 { time } else { received };
            entry.seen.observe(t);
            entry.constant.observe(value_hash);
            let mut series = 0u64;
            for kv in attrs {
                let h = pair_hash(kv, &key);
                series = series.wrapping_add(h);
                let keys = &mut entry.attribute_keys;
                if !keys.contains_key(kv.key.as_str()) && keys.len() < MAX_KEYS_PER_ENTRY {
                    keys.insert(kv.key.clone(), DistinctSketch::new());
                }
                let sketch = keys.get_mut(kv.key.as_str());
                if let Some(s) = sketch {
                    s.insert_hash(h);
                }
            }
            entry.series.insert_hash(key.hash(&series.to_le_bytes()));
            observe_attributes(
                &mut metrics.attributes.item,
                attrs.iter().map(AttrRef::of),
                1,
                t,
                cap_keys,
                &mut evicted,
                &key,
            );
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

/// Data points in one metric.
fn point_count(data: Option<&Data>) -> usize {
    match data {
        None => 0,
        Some(Data::Gauge(g)) => g.data_points.len(),
        Some(Data::Sum(s)) => s.data_points.len(),
        Some(Data::Histogram(h)) => h.data_points.len(),
        Some(Data::ExponentialHistogram(h)) => h.data_points.len(),
        Some(Data::Summary(s)) => s.data_points.len(),
    }
}

fn number_hash(v: &Option<number_data_point::Value>, key: &SketchKey) -> u64 {
    match v {
        Some(number_data_point::Value::AsDouble(d)) => {
            key.hash_tagged(4, &d.to_bits().to_le_bytes())
        }
        Some(number_data_point::Value::AsInt(i)) => key.hash_tagged(3, &i.to_le_bytes()),
        None => key.hash_tagged(0, b""),
    }
}

fn hist_hash(count: u64, sum: f64, key: &SketchKey) -> u64 {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&count.to_le_bytes());
    b[8..].copy_from_slice(&sum.to_bits().to_le_bytes());
    key.hash_tagged(7, &b)
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
