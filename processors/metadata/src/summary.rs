//! Catalog summaries: what the `metadata` processor learns about the telemetry it sees,
//! without keeping any of it.
//!
//! A [`CatalogSummary`] holds, per `service.name`, one section per signal. Every part is
//! mergeable ([`CatalogSummary::merge`]): counts add, sketches merge, first/last-seen widen,
//! sets unite. A summary holds no log body, attribute value or metric value: only masked
//! templates, names, keys, counts, hashes and sketch registers. It serialises with serde
//! (JSON is what the catalog store and edges exchange).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::sketch::{DistinctSketch, DurationSketch};

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
}

/// Items and bytes (protobuf-encoded size of each item).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Volume {
    /// Log records, spans or data points.
    pub items: u64,
    /// Their encoded size in bytes.
    pub bytes: u64,
}

impl Volume {
    fn merge(&mut self, o: &Volume) {
        self.items = self.items.saturating_add(o.items);
        self.bytes = self.bytes.saturating_add(o.bytes);
    }
}

/// First and last time something was seen, in Unix nanoseconds (0: never).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Seen {
    /// Earliest timestamp.
    pub first_unix_nano: u64,
    /// Latest timestamp.
    pub last_unix_nano: u64,
}

impl Seen {
    /// Widens to include `t` (0 is ignored).
    pub fn observe(&mut self, t: u64) {
        if t == 0 {
            return;
        }
        if self.first_unix_nano == 0 || t < self.first_unix_nano {
            self.first_unix_nano = t;
        }
        if t > self.last_unix_nano {
            self.last_unix_nano = t;
        }
    }

    fn merge(&mut self, o: &Seen) {
        self.observe(o.first_unix_nano);
        self.observe(o.last_unix_nano);
    }
}

/// Log records by severity range (OpenTelemetry severity numbers; `severity_text` when
/// the number is unset).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SeverityMix {
    /// TRACE (1-4).
    pub trace: u64,
    /// DEBUG (5-8).
    pub debug: u64,
    /// INFO (9-12).
    pub info: u64,
    /// WARN (13-16).
    pub warn: u64,
    /// ERROR (17-20).
    pub error: u64,
    /// FATAL (21-24).
    pub fatal: u64,
    /// No severity.
    pub unspecified: u64,
}

impl SeverityMix {
    /// Counts one record.
    pub fn observe(&mut self, number: i32, text: &str) {
        let slot = match number {
            1..=4 => &mut self.trace,
            5..=8 => &mut self.debug,
            9..=12 => &mut self.info,
            13..=16 => &mut self.warn,
            17..=20 => &mut self.error,
            21..=24 => &mut self.fatal,
            _ => match text.as_bytes().first().map(u8::to_ascii_lowercase) {
                Some(b't') => &mut self.trace,
                Some(b'd') => &mut self.debug,
                Some(b'i') | Some(b'n') => &mut self.info,
                Some(b'w') => &mut self.warn,
                Some(b'e') => &mut self.error,
                Some(b'f') | Some(b'c') | Some(b'a') => &mut self.fatal,
                _ => &mut self.unspecified,
            },
        };
        *slot = slot.saturating_add(1);
    }

    fn merge(&mut self, o: &SeverityMix) {
        self.trace = self.trace.saturating_add(o.trace);
        self.debug = self.debug.saturating_add(o.debug);
        self.info = self.info.saturating_add(o.info);
        self.warn = self.warn.saturating_add(o.warn);
        self.error = self.error.saturating_add(o.error);
        self.fatal = self.fatal.saturating_add(o.fatal);
        self.unspecified = self.unspecified.saturating_add(o.unspecified);
    }

    /// Records counted.
    pub fn total(&self) -> u64 {
        [
            self.trace,
            self.debug,
            self.info,
            self.warn,
            self.error,
            self.fatal,
            self.unspecified,
        ]
        .iter()
        .fold(0u64, |a, b| a.saturating_add(*b))
    }
}

/// The type of one attribute value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    /// String.
    String,
    /// Boolean.
    Bool,
    /// Integer.
    Int,
    /// Double.
    Double,
    /// Array.
    Array,
    /// Key-value list.
    Kvlist,
    /// Bytes.
    Bytes,
    /// No value.
    Empty,
}

/// How often each value type was seen for an attribute key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ValueTypes {
    /// Strings.
    pub string: u64,
    /// Booleans.
    pub bool: u64,
    /// Integers.
    pub int: u64,
    /// Doubles.
    pub double: u64,
    /// Arrays.
    pub array: u64,
    /// Key-value lists.
    pub kvlist: u64,
    /// Byte strings.
    pub bytes: u64,
    /// Key present without a value.
    pub empty: u64,
}

impl ValueTypes {
    /// Adds `n` to the count of `kind`.
    pub fn add(&mut self, kind: ValueKind, n: u64) {
        let slot = match kind {
            ValueKind::String => &mut self.string,
            ValueKind::Bool => &mut self.bool,
            ValueKind::Int => &mut self.int,
            ValueKind::Double => &mut self.double,
            ValueKind::Array => &mut self.array,
            ValueKind::Kvlist => &mut self.kvlist,
            ValueKind::Bytes => &mut self.bytes,
            ValueKind::Empty => &mut self.empty,
        };
        *slot = slot.saturating_add(n);
    }

    fn merge(&mut self, o: &ValueTypes) {
        self.string = self.string.saturating_add(o.string);
        self.bool = self.bool.saturating_add(o.bool);
        self.int = self.int.saturating_add(o.int);
        self.double = self.double.saturating_add(o.double);
        self.array = self.array.saturating_add(o.array);
        self.kvlist = self.kvlist.saturating_add(o.kvlist);
        self.bytes = self.bytes.saturating_add(o.bytes);
        self.empty = self.empty.saturating_add(o.empty);
    }
}

/// The schema of one attribute key within a service and signal.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AttributeSchema {
    /// Value types seen, with counts.
    pub types: ValueTypes,
    /// Items (records, spans, data points) carrying the key; divide by the signal's
    /// `volume.items` for the share.
    pub items: u64,
    /// Encoded bytes of the key/value pairs (with field tag and length prefix): what
    /// removing the attribute from the items saves.
    pub bytes: u64,
    /// Distinct values (estimate over value hashes).
    pub distinct: DistinctSketch,
    /// When items carrying it were seen.
    pub seen: Seen,
    /// The last values whose keyed hashes went into `distinct` (in memory only: never
    /// serialised, shown, cloned or merged).
    #[serde(skip)]
    pub(crate) memo: ValueMemo,
}

/// Bytes of a value [`ValueMemo`] holds at most.
const MEMO_BYTES: usize = 30;

/// The last two distinct values (type tag and bytes, each at most [`MEMO_BYTES`]) whose keyed
/// hashes a schema's `distinct` sketch already holds, with those hashes: a value equal to
/// one of them (compared byte for byte, so a collision cannot make a wrong result) needs
/// neither the keyed hash nor the sketch update again, since inserting a hash twice changes
/// no sketch. Low-cardinality attributes (`http.method`, `region`) then cost a compare per
/// item instead of a SipHash. It lives beside the sketch it describes; whatever replaces
/// the sketch ([`AttributeSchema::forget_memo`], a take, a new key) empties it, and a
/// clone starts empty, so no raw value ever leaves the accumulator with a summary.
#[derive(Default)]
pub(crate) struct ValueMemo {
    entries: [MemoEntry; 2],
    /// The entry the next miss replaces.
    next: u8,
}

#[derive(Default, Clone, Copy)]
struct MemoEntry {
    /// Bytes held plus one; 0: empty.
    len: u8,
    tag: u8,
    bytes: [u8; MEMO_BYTES],
    hash: u64,
}

impl ValueMemo {
    /// The hash remembered for (`tag`, `bytes`).
    #[inline]
    pub(crate) fn get(&self, tag: u8, bytes: &[u8]) -> Option<u64> {
        self.entries
            .iter()
            .find(|e| {
                e.len as usize == bytes.len() + 1
                    && e.tag == tag
                    && &e.bytes[..bytes.len()] == bytes
            })
            .map(|e| e.hash)
    }

    /// Remembers that the sketch holds `hash`, the hash of (`tag`, `bytes`).
    #[inline]
    pub(crate) fn put(&mut self, tag: u8, bytes: &[u8], hash: u64) {
        if bytes.len() > MEMO_BYTES {
            return;
        }
        let e = &mut self.entries[usize::from(self.next & 1)];
        e.len = bytes.len() as u8 + 1;
        e.tag = tag;
        e.bytes[..bytes.len()].copy_from_slice(bytes);
        e.hash = hash;
        self.next ^= 1;
    }
}

impl Clone for ValueMemo {
    fn clone(&self) -> Self {
        ValueMemo::default()
    }
}

impl std::fmt::Debug for ValueMemo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ValueMemo")
    }
}

impl AttributeSchema {
    /// Empties the memo of hashed values (the sketch was replaced).
    pub(crate) fn forget_memo(&mut self) {
        self.memo = ValueMemo::default();
    }

    fn merge(&mut self, o: &AttributeSchema) {
        self.types.merge(&o.types);
        self.items = self.items.saturating_add(o.items);
        self.bytes = self.bytes.saturating_add(o.bytes);
        self.distinct.merge(&o.distinct);
        self.seen.merge(&o.seen);
    }
}

/// Attribute schemas by key, split by where the attribute sits.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AttributeSchemas {
    /// Attributes of the resource (counted once per item under the resource).
    pub resource: BTreeMap<String, AttributeSchema>,
    /// Attributes of the item (log record, span, data point).
    pub item: BTreeMap<String, AttributeSchema>,
}

impl AttributeSchemas {
    /// Merges, adding at most `cap` keys per location; returns the keys left out.
    fn merge(&mut self, o: &AttributeSchemas, cap: usize) -> u64 {
        merge_map(&mut self.resource, &o.resource, cap, AttributeSchema::merge).saturating_add(
            merge_map(&mut self.item, &o.item, cap, AttributeSchema::merge),
        )
    }
}

/// One log template of a service.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TemplateSummary {
    /// Masked template text (`<*>` for variables); never holds a raw variable value.
    pub template: String,
    /// Records matched.
    pub count: u64,
    /// Their encoded bytes.
    pub bytes: u64,
    /// Their severities.
    pub severity: SeverityMix,
    /// When they were seen.
    pub seen: Seen,
    /// Attribute keys carried by its records (at most 64 kept).
    pub attribute_keys: BTreeSet<String>,
    /// Records that repeated the previous record of their service exactly: same body,
    /// same record attributes (keys and values) and same resource. One body sent from many
    /// nodes that differ in an attribute is not a repeat.
    pub duplicates: u64,
    /// Records and bytes per severity class, keyed by [`severity_class_key`]: the severity
    /// number and the severity text as sent, so that a policy can be dry-run against what
    /// a `severity_text` matcher would see. At most [`MAX_SEVERITY_CLASSES`] classes; the
    /// rest are counted under [`OVERFLOW_SEVERITY_CLASS`].
    pub severities: BTreeMap<String, Volume>,
    /// The most records of this template seen within one second (record time): with
    /// `count` and `seen`, what tells a burst from a steady rate.
    pub peak_per_second: u64,
}

/// Severity classes kept per template.
pub const MAX_SEVERITY_CLASSES: usize = 16;
/// The class records past [`MAX_SEVERITY_CLASSES`] are counted under (severity unknown).
pub const OVERFLOW_SEVERITY_CLASS: &str = "*|*";

/// The severity class of a record: `"<number>|<text>"`. The number is kept when it is a valid
/// severity number (1-24, else 0); the text is kept as sent when it is a severity word (1-16
/// ASCII letters or digits starting like one of `SEVERITY_WORDS`), is empty when absent,
/// and is `?` otherwise (so an arbitrary string in the field is never stored).
pub fn severity_class_key(number: i32, text: &str) -> String {
    let mut key = String::with_capacity(8);
    severity_class_key_into(number, text, &mut key);
    key
}

/// [`severity_class_key`] written into `out` (cleared first), so a caller can reuse one
/// buffer record after record.
pub fn severity_class_key_into(number: i32, text: &str, out: &mut String) {
    let n = if (1..=24).contains(&number) {
        number
    } else {
        0
    };
    let t = if text.is_empty() {
        ""
    } else if text.len() <= 16 && is_severity_word(text) {
        text
    } else {
        "?"
    };
    out.clear();
    if n >= 10 {
        out.push(char::from(b'0' + (n / 10) as u8));
    }
    out.push(char::from(b'0' + (n % 10) as u8));
    out.push('|');
    out.push_str(t);
}

/// Severity texts kept as sent (case-insensitive), optionally followed by one digit
/// (`INFO2`, `DEBUG3`); any other text, even one that starts like them (`infoJaneDoe`), is
/// counted as `?`, so that a value put in the field is never stored.
const SEVERITY_WORDS: [&str; 31] = [
    "trace",
    "finest",
    "finer",
    "fine",
    "verbose",
    "debug",
    "dbg",
    "config",
    "info",
    "inf",
    "information",
    "informational",
    "notice",
    "warn",
    "warning",
    "wrn",
    "err",
    "error",
    "severe",
    "fatal",
    "crit",
    "critical",
    "alert",
    "emerg",
    "emergency",
    "panic",
    "ftl",
    "trc",
    "dbug",
    "eror",
    "ok",
];

fn is_severity_word(text: &str) -> bool {
    let word = match text.as_bytes().last() {
        Some(b) if b.is_ascii_digit() => &text[..text.len() - 1],
        _ => text,
    };
    SEVERITY_WORDS.iter().any(|w| word.eq_ignore_ascii_case(w))
}

/// Splits a severity class key into (number, text); `None` for the overflow class or a
/// malformed key.
pub fn parse_severity_class(key: &str) -> Option<(i32, &str)> {
    let (n, t) = key.split_once('|')?;
    Some((n.parse().ok()?, t))
}

/// Adds `v` to class `key` of `map`, folding new classes past the cap into the overflow class.
pub fn add_severity_class(map: &mut BTreeMap<String, Volume>, key: &str, v: &Volume) {
    if let Some(e) = map.get_mut(key) {
        return e.merge(v);
    }
    let key = if map.len() < MAX_SEVERITY_CLASSES {
        key
    } else {
        OVERFLOW_SEVERITY_CLASS
    };
    match map.get_mut(key) {
        Some(e) => e.merge(v),
        None => {
            map.insert(key.to_string(), *v);
        }
    }
}

/// Attribute keys kept per template or span name.
pub const MAX_KEYS_PER_ENTRY: usize = 64;

impl TemplateSummary {
    /// Adds `o` into `self`. The texts of one id join ([`widen_template`]): a template
    /// that widened after its id was fixed shows its widened text, not the first one.
    pub fn merge(&mut self, o: &TemplateSummary) {
        if self.template != o.template {
            self.template = widen_template(&self.template, &o.template);
        }
        self.count = self.count.saturating_add(o.count);
        self.bytes = self.bytes.saturating_add(o.bytes);
        self.severity.merge(&o.severity);
        self.seen.merge(&o.seen);
        unite_keys(&mut self.attribute_keys, &o.attribute_keys);
        self.duplicates = self.duplicates.saturating_add(o.duplicates);
        for (k, v) in &o.severities {
            add_severity_class(&mut self.severities, k, v);
        }
        self.peak_per_second = self.peak_per_second.max(o.peak_per_second);
    }
}

/// Whether `glob` (where `<*>` stands for any text, also none) matches `text`.
fn glob_matches(glob: &[u8], text: &[u8]) -> bool {
    const W: &[u8] = b"<*>";
    let (mut g, mut t) = (0, 0);
    // Where to resume after the last `<*>`: (glob index after it, text index tried).
    let mut back: Option<(usize, usize)> = None;
    while t < text.len() {
        if glob[g..].starts_with(W) {
            back = Some((g + W.len(), t));
            g += W.len();
        } else if g < glob.len() && glob[g] == text[t] {
            g += 1;
            t += 1;
        } else if let Some((bg, bt)) = back {
            g = bg;
            t = bt + 1;
            back = Some((bg, bt + 1));
        } else {
            return false;
        }
    }
    while glob[g..].starts_with(W) {
        g += W.len();
    }
    g == glob.len()
}

/// One token of two texts of the same template: `<*>` where either is `<*>` (the miner
/// widened the position) or where they disagree; when one is the other with more `<*>`
/// inside (the structure rule let identifier pieces through once the template was proven),
/// the more specific, which is one of the two texts as an edge stored it.
fn widen_token<'a>(a: &'a str, b: &'a str) -> &'a str {
    if a == b {
        a
    } else if a == crate::mask::WILDCARD || b == crate::mask::WILDCARD {
        crate::mask::WILDCARD
    } else if glob_matches(a.as_bytes(), b.as_bytes()) {
        b
    } else if glob_matches(b.as_bytes(), a.as_bytes()) {
        a
    } else {
        crate::mask::WILDCARD
    }
}

/// The text of one template id seen as `a` and as `b` (by two takes or two edges): the
/// template as widened by both. Same number of tokens: token by token ([`widen_token`]);
/// otherwise the one with fewer tokens (a variable-length tail written as one `<*>` is the
/// wider form). Symmetric, so merges in any order agree.
pub fn widen_template(a: &str, b: &str) -> String {
    if a == b || b.is_empty() {
        return a.to_string();
    }
    if a.is_empty() {
        return b.to_string();
    }
    let (na, nb) = (a.split(' ').count(), b.split(' ').count());
    if na != nb {
        return if na < nb { a } else { b }.to_string();
    }
    let mut out = String::with_capacity(a.len().max(b.len()));
    for (i, (x, y)) in a.split(' ').zip(b.split(' ')).enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(widen_token(x, y));
    }
    out
}

/// Logs of one service.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct LogsSummary {
    /// All records.
    pub volume: Volume,
    /// All records' severities.
    pub severity: SeverityMix,
    /// Templates by id (the hex [`template_id`] of the template text at its first take).
    pub templates: BTreeMap<String, TemplateSummary>,
    /// Attribute schemas.
    pub attributes: AttributeSchemas,
    /// Template ids retired by the miner, with the id each merged into (word-variant
    /// siblings that merged, see `max_word_variants`). A merge moves a retired id's counts
    /// to its survivor, so a catalog never holds both; a catalog remembers up to its
    /// template cap of them, for edges that still send the retired id.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub retired: BTreeMap<String, String>,
}

impl LogsSummary {
    /// Where the id `id` lives now: follows [`LogsSummary::retired`] (a chain of at most
    /// as many steps as it holds, so a cycle ends).
    pub fn resolve_id<'a>(&'a self, mut id: &'a str) -> &'a str {
        for _ in 0..=self.retired.len() {
            match self.retired.get(id) {
                Some(next) if next != id => id = next,
                _ => break,
            }
        }
        id
    }

    /// Moves the counts of every retired id held in `templates` to the id it resolves to.
    pub fn apply_retired(&mut self) {
        if self.retired.is_empty() {
            return;
        }
        let held: Vec<String> = self
            .templates
            .keys()
            .filter(|k| self.retired.contains_key(k.as_str()))
            .cloned()
            .collect();
        for old in held {
            let to = self.resolve_id(&old).to_string();
            if to == old {
                continue;
            }
            let Some(moved) = self.templates.remove(&old) else {
                continue;
            };
            match self.templates.get_mut(&to) {
                Some(t) => t.merge(&moved),
                None => {
                    self.templates.insert(to, moved);
                }
            }
        }
    }
}

/// Spans by status code.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StatusMix {
    /// Unset.
    pub unset: u64,
    /// Ok.
    pub ok: u64,
    /// Error.
    pub error: u64,
}

/// Spans by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct KindMix {
    /// Unspecified.
    pub unspecified: u64,
    /// Internal.
    pub internal: u64,
    /// Server.
    pub server: u64,
    /// Client.
    pub client: u64,
    /// Producer.
    pub producer: u64,
    /// Consumer.
    pub consumer: u64,
}

/// One span name of a service.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SpanSummary {
    /// Spans and bytes.
    pub volume: Volume,
    /// Kinds.
    pub kinds: KindMix,
    /// Status codes.
    pub status: StatusMix,
    /// Durations (end - start) in milliseconds.
    pub duration_ms: DurationSketch,
    /// Spans without a parent (trace roots).
    pub roots: u64,
    /// Spans no other span of the same batch named as parent: evidence (children may come
    /// in other batches) of leaf spans, e.g. instrumentation noise when `internal`.
    pub childless_in_batch: u64,
    /// Attribute keys seen on these spans (at most 64 kept).
    pub attribute_keys: BTreeSet<String>,
    /// When seen (span start times).
    pub seen: Seen,
}

impl SpanSummary {
    fn merge(&mut self, o: &SpanSummary) {
        self.volume.merge(&o.volume);
        self.kinds.unspecified = self.kinds.unspecified.saturating_add(o.kinds.unspecified);
        self.kinds.internal = self.kinds.internal.saturating_add(o.kinds.internal);
        self.kinds.server = self.kinds.server.saturating_add(o.kinds.server);
        self.kinds.client = self.kinds.client.saturating_add(o.kinds.client);
        self.kinds.producer = self.kinds.producer.saturating_add(o.kinds.producer);
        self.kinds.consumer = self.kinds.consumer.saturating_add(o.kinds.consumer);
        self.status.unset = self.status.unset.saturating_add(o.status.unset);
        self.status.ok = self.status.ok.saturating_add(o.status.ok);
        self.status.error = self.status.error.saturating_add(o.status.error);
        self.duration_ms.merge(&o.duration_ms);
        self.roots = self.roots.saturating_add(o.roots);
        self.childless_in_batch = self.childless_in_batch.saturating_add(o.childless_in_batch);
        unite_keys(&mut self.attribute_keys, &o.attribute_keys);
        self.seen.merge(&o.seen);
    }
}

/// Traces of one service.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TracesSummary {
    /// All spans.
    pub volume: Volume,
    /// Per span name, masked like log lines (`GET /users/<*>`).
    pub spans: BTreeMap<String, SpanSummary>,
    /// Attribute schemas.
    pub attributes: AttributeSchemas,
}

/// Metric data type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricKind {
    /// No data.
    #[default]
    Empty,
    /// Gauge.
    Gauge,
    /// Sum (counter or up-down counter).
    Sum,
    /// Explicit-bucket histogram.
    Histogram,
    /// Exponential histogram.
    ExponentialHistogram,
    /// Summary.
    Summary,
}

/// Aggregation temporality of sums and histograms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Temporality {
    /// Not applicable or unset.
    #[default]
    Unspecified,
    /// Delta.
    Delta,
    /// Cumulative.
    Cumulative,
}

/// Whether every data point of a metric carried the same value, tracked by a keyed value
/// hash. A flag alone would not merge: two windows that were each constant, at different
/// values, must merge into "varied", so the (keyed, [`crate::key::SketchKey`]) hash of the
/// value stays.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConstantValue {
    /// Keyed hash of the first value seen (`None`: no point yet, or forgotten).
    pub value_hash: Option<u64>,
    /// Whether a different value was seen since.
    pub varied: bool,
}

impl ConstantValue {
    /// Records one value hash.
    pub fn observe(&mut self, h: u64) {
        match self.value_hash {
            None => self.value_hash = Some(h),
            Some(first) if first != h => self.varied = true,
            Some(_) => {}
        }
    }

    /// Whether all points seen so far (at least one) had one value.
    pub fn is_constant(&self) -> bool {
        self.value_hash.is_some() && !self.varied
    }

    fn merge(&mut self, o: &ConstantValue) {
        self.varied |= o.varied;
        if let Some(h) = o.value_hash {
            self.observe(h);
        }
    }
}

/// One metric of a service.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct MetricSummary {
    /// Data type (the last seen, if it changed).
    pub kind: MetricKind,
    /// Unit.
    pub unit: String,
    /// Temporality of sums and histograms.
    pub temporality: Temporality,
    /// Whether a sum is monotonic.
    pub monotonic: bool,
    /// Data points and bytes.
    pub volume: Volume,
    /// Distinct series (attribute sets).
    pub series: DistinctSketch,
    /// Distinct values per data-point attribute key.
    pub attribute_keys: BTreeMap<String, DistinctSketch>,
    /// Constant-value detection.
    pub constant: ConstantValue,
    /// When points were seen.
    pub seen: Seen,
}

impl MetricSummary {
    fn merge(&mut self, o: &MetricSummary) {
        if o.kind != MetricKind::Empty {
            self.kind = o.kind;
        }
        if self.unit.is_empty() {
            self.unit.clone_from(&o.unit);
        }
        if o.temporality != Temporality::Unspecified {
            self.temporality = o.temporality;
        }
        self.monotonic |= o.monotonic;
        self.volume.merge(&o.volume);
        self.series.merge(&o.series);
        merge_map(
            &mut self.attribute_keys,
            &o.attribute_keys,
            MAX_KEYS_PER_ENTRY,
            |a, b| a.merge(b),
        );
        self.constant.merge(&o.constant);
        self.seen.merge(&o.seen);
    }
}

/// Metrics of one service.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct MetricsSummary {
    /// All data points.
    pub volume: Volume,
    /// Per metric name.
    pub metrics: BTreeMap<String, MetricSummary>,
    /// Attribute schemas (data-point attributes under `item`).
    pub attributes: AttributeSchemas,
}

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
        let (l, ol) = (&mut self.logs, &o.logs);
        l.volume.merge(&ol.volume);
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
        out = out.saturating_add(merge_map(
            &mut t.spans,
            &ot.spans,
            caps.names,
            SpanSummary::merge,
        ));
        out = out.saturating_add(t.attributes.merge(&ot.attributes, caps.attribute_keys));

        let (m, om) = (&mut self.metrics, &o.metrics);
        m.volume.merge(&om.volume);
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
