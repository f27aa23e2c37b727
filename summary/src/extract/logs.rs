//! Log records: the text mined for a body, what is read of a record, and how records
//! (decoded, or in place from the encoded request) count into templates, severities and
//! attribute schemas.

use prost::Message;
use weir_api::otlp::common::v1::any_value::Value;
use weir_api::otlp::logs::v1::LogRecord;

use super::values::{attributes_hash, observe_attributes, AttrRef, Nested, ValueRef};
use super::{service_name, Accumulator, ServiceState, Sig};
use crate::sketch::stable_hash;
use crate::summary::{
    add_severity_class, severity_class_key_into, template_id, TemplateSummary, Volume,
    MAX_KEYS_PER_ENTRY,
};

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
    /// Summarises the encoded logs request in `buf` as [`Self::observe`] summarises its
    /// prost decoding. `false`, with nothing summarised, when its resource and scope levels
    /// cannot be read (never for bytes that passed the receiver's check).
    pub(super) fn observe_logs_encoded(&mut self, buf: &[u8], received: u64) -> bool {
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

    pub(super) fn observe_log(
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
}
