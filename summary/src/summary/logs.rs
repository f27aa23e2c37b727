//! Logs of a service: severity mixes and classes, templates (and how the texts of one id
//! widen into one), and the retired ids of merged templates.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::parts::{AttributeSchemas, Seen, Volume};
use super::unite_keys;

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

    pub(super) fn merge(&mut self, o: &SeverityMix) {
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
    /// Of `volume`, the records the edge counted but did not read: its summariser runs below
    /// the data path's priority and, when the edge's CPU is saturated, counts a batch it has
    /// no time for (per service, items and encoded bytes) instead of reading it. The rest
    /// of this section describes `volume - unsummarised`; a catalog scales what it
    /// estimates from it by `volume / (volume - unsummarised)` and says so.
    #[serde(skip_serializing_if = "Volume::is_zero")]
    pub unsummarised: Volume,
    /// All records' severities.
    pub severity: SeverityMix,
    /// Templates by id (the hex [`template_id`](super::template_id) of the template text at its first take).
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
