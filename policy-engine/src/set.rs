//! A compiled set of policies and, per signal, the multi-pattern prefilter that finds the
//! policies a record may match without trying every policy.
//!
//! Each policy contributes one "anchor" matcher when it has a cheap one: a case-sensitive
//! equality (hash lookup), a literal `contains`/`starts_with`/`ends_with` (one Aho-Corasick
//! automaton per field), or a regex. A regex whose matches must start with one of a few
//! literals (found with `regex-syntax`'s prefix extraction) joins the same automaton as a
//! hint: the literal firing makes the policy a candidate, and the regex itself runs in the
//! full evaluation. Other regexes go to one `RegexSet` per field. A record is scanned once per
//! anchored field; only the policies whose anchor fired, plus the few without an anchor, are
//! evaluated in full. A verified anchor (equality, literal, RegexSet) is not evaluated again.

use std::collections::HashMap;
use std::sync::Arc;

use rustc_hash::FxHashMap;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use regex::{RegexSet, RegexSetBuilder};
use weir_api::Signal;

use crate::compile::{compile, Target};
use crate::matcher::{Literal, LiteralKind, Subject, Test};
use crate::record::{hex_into, Field, FieldValue, Record};
use crate::stats::{PolicyStats, StatsRegistry};
use weir_policy_contract::parse::ParsedPolicy;
use weir_policy_contract::proto;

/// Label that puts one policy in shadow mode (`"true"`): it is matched and counted, and what
/// it would drop is counted in `weir_policy_shadow_drops`, but it drops and changes nothing.
/// The contract's: the control plane sets it.
pub use weir_policy_contract::SHADOW_LABEL;

/// One policy of a set: valid and compiled, or inert with its errors.
#[derive(Debug)]
pub struct PolicyEntry {
    /// Policy id.
    pub id: String,
    /// Policy name.
    pub name: String,
    /// `enabled: false` policies are kept only for listing; they are never evaluated.
    pub enabled: bool,
    /// Shadow mode (label `weir.shadow: "true"`).
    pub shadow: bool,
    /// The signal of its target, when known.
    pub signal: Option<Signal>,
    /// The compiled target; `None` when the policy has errors.
    pub target: Option<Target>,
    /// Parse and compile errors, worded for `PolicySyncStatus.errors`.
    pub errors: Vec<String>,
    /// Counters.
    pub stats: Arc<PolicyStats>,
}

impl PolicyEntry {
    /// Whether the entry takes part in evaluation.
    pub fn active(&self) -> bool {
        self.enabled && self.target.is_some()
    }
}

enum Anchor {
    Exact(String),
    Literal(LiteralKind, String),
    /// Literals one of which starts every match of the regex (not a verification).
    Hints(Vec<String>),
    Regex(String),
}

/// A possible anchor of a policy: matcher index, field, anchor.
type AnchorOption = (usize, (Field, Anchor));

/// Literal kinds in a field's automaton: the three literal tests, and regex hints.
#[derive(Clone, Copy, PartialEq, Eq)]
enum PatternKind {
    Literal(LiteralKind),
    Hint,
}

/// At most this many hint literals per regex, each at least this long; otherwise the regex
/// goes to the RegexSet (too many or too short literals make a poor filter).
const MAX_HINTS: usize = 64;
const MIN_HINT_LEN: usize = 3;

/// Literals one of which every match of `pattern` starts with, when there are few enough.
fn prefix_hints(pattern: &str) -> Option<Vec<String>> {
    use regex_syntax::hir::literal::{ExtractKind, Extractor};
    let hir = regex_syntax::Parser::new().parse(pattern).ok()?;
    let mut seq = Extractor::new()
        .kind(ExtractKind::Prefix)
        .limit_total(MAX_HINTS * 4)
        .extract(&hir);
    seq.optimize_for_prefix_by_preference();
    let lits = seq.literals()?;
    if lits.is_empty() || lits.len() > MAX_HINTS {
        return None;
    }
    lits.iter()
        .map(|l| {
            let bytes = l.as_bytes();
            (bytes.len() >= MIN_HINT_LEN)
                .then(|| String::from_utf8(bytes.to_vec()).ok())
                .flatten()
        })
        .collect()
}

#[derive(Default)]
struct FieldGroup {
    field: Option<Field>,
    /// Looked up once per record: a fast hasher (the keys are the policies' own values, so
    /// records cannot choose collisions).
    exact: FxHashMap<String, Vec<u32>>,
    literal_patterns: Vec<(String, u32, PatternKind)>,
    literals: Option<AhoCorasick>,
    regex_patterns: Vec<(String, u32)>,
    regexes: Option<RegexSet>,
}

/// The prefilter of one signal.
#[derive(Default)]
pub struct SignalIndex {
    groups: Vec<FieldGroup>,
    always: Vec<u32>,
    /// Per policy index: the matcher index verified by the prefilter (`NO_ANCHOR`: none).
    /// Read for every candidate of every record, so a vector, not a map.
    anchors: Vec<u32>,
    /// Number of active policies of this signal.
    pub active: usize,
    /// Which parts of an item the active policies read.
    pub reads: Reads,
}

const NO_ANCHOR: u32 = u32::MAX;

/// Which parts of its items (log records, spans, data points) a signal's active policies
/// read, shadow policies included. The readers of encoded requests ([`crate::raw_logs`],
/// [`crate::raw_traces`], [`crate::raw_metrics`]) skip a part nobody reads, after checking its wire type: no
/// verdict depends on it, so however it is encoded (a value prost would merge included)
/// the record is decided as on the decoded request, and the time to read it is saved.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Reads {
    /// The item's own attributes (a log record's, a span's, a data point's): a matcher on
    /// them, or a sampling key.
    pub attributes: bool,
    /// Span events: their names or their attributes.
    pub events: bool,
}

impl Reads {
    /// What `target` reads.
    fn add(&mut self, target: &Target) {
        for m in target.matchers() {
            match &m.subject {
                Subject::Field(Field::Record(_), _) => self.attributes = true,
                Subject::EventName(_) | Subject::EventAttribute(..) => self.events = true,
                _ => {}
            }
        }
        if let Target::Log {
            sample_key: Some(Field::Record(_)),
            ..
        } = target
        {
            self.attributes = true;
        }
    }
}

fn anchor_of(subject: &Subject) -> Option<(Field, Anchor)> {
    let Subject::Field(field, test) = subject else {
        return None;
    };
    if let Field::Well(w) = field {
        if w.is_bytes() {
            return None;
        }
    }
    let a = match test {
        Test::Literal {
            kind: LiteralKind::Exact,
            text,
            as_bytes: None,
        } => Anchor::Exact(text.clone()),
        Test::Equals(Literal::Str {
            value,
            as_bytes: None,
        }) => Anchor::Exact(value.clone()),
        Test::Literal {
            kind,
            text,
            as_bytes: None,
        } if !text.is_empty() => Anchor::Literal(*kind, text.clone()),
        Test::Regex(re) => match prefix_hints(re.as_str()) {
            Some(h) => Anchor::Hints(h),
            None => Anchor::Regex(re.as_str().to_string()),
        },
        _ => return None,
    };
    Some((field.clone(), a))
}

fn rank(a: &Anchor) -> u8 {
    match a {
        Anchor::Exact(_) => 0,
        Anchor::Literal(..) => 1,
        Anchor::Hints(_) => 2,
        Anchor::Regex(_) => 3,
    }
}

impl SignalIndex {
    fn build(entries: &[PolicyEntry], signal: Signal, prefilter: bool) -> SignalIndex {
        let mut index = SignalIndex {
            anchors: vec![NO_ANCHOR; entries.len()],
            ..SignalIndex::default()
        };
        let mut groups: HashMap<Field, usize> = HashMap::new();
        let options: Vec<Option<Vec<AnchorOption>>> = entries
            .iter()
            .map(|e| {
                let t = e
                    .target
                    .as_ref()
                    .filter(|_| e.active() && e.signal == Some(signal))?;
                Some(
                    t.matchers()
                        .iter()
                        .enumerate()
                        .filter(|(_, m)| !m.negate)
                        .filter_map(|(mi, m)| anchor_of(&m.subject).map(|a| (mi, a)))
                        .collect(),
                )
            })
            .collect();
        // How many policies could anchor on each (field, equal value): a value many policies
        // share (severity ERROR) filters little, so another anchor is preferred to it.
        let mut shared: HashMap<(Field, String), usize> = HashMap::new();
        for list in options.iter().flatten() {
            for (_, (f, a)) in list {
                if let Anchor::Exact(v) = a {
                    *shared.entry((f.clone(), v.clone())).or_default() += 1;
                }
            }
        }
        let cost = |f: &Field, a: &Anchor| match a {
            Anchor::Exact(v) if shared.get(&(f.clone(), v.clone())).is_some_and(|n| *n > 8) => 10,
            a => rank(a),
        };
        let mut chosen: Vec<Option<AnchorOption>> = options
            .into_iter()
            .map(|list| list?.into_iter().min_by_key(|(_, (f, a))| cost(f, a)))
            .collect();
        for (i, e) in entries.iter().enumerate() {
            if !e.active() || e.signal != Some(signal) {
                continue;
            }
            index.active += 1;
            if let Some(t) = &e.target {
                index.reads.add(t);
            }
            let best = chosen[i].take().filter(|_| prefilter);
            let Some((mi, (field, anchor))) = best else {
                index.always.push(i as u32);
                continue;
            };
            let g = *groups.entry(field.clone()).or_insert_with(|| {
                index.groups.push(FieldGroup {
                    field: Some(field),
                    ..Default::default()
                });
                index.groups.len() - 1
            });
            let group = &mut index.groups[g];
            let verified = !matches!(anchor, Anchor::Hints(_));
            match anchor {
                Anchor::Exact(s) => group.exact.entry(s).or_default().push(i as u32),
                Anchor::Literal(k, s) => {
                    group
                        .literal_patterns
                        .push((s, i as u32, PatternKind::Literal(k)))
                }
                Anchor::Hints(list) => group
                    .literal_patterns
                    .extend(list.into_iter().map(|s| (s, i as u32, PatternKind::Hint))),
                Anchor::Regex(s) => group.regex_patterns.push((s, i as u32)),
            }
            if verified {
                index.anchors[i] = mi as u32;
            }
        }
        for g in &mut index.groups {
            if !g.literal_patterns.is_empty() {
                // A DFA scans fastest; its table grows with the patterns, so large sets use
                // the contiguous NFA.
                let kind = if g.literal_patterns.len() <= 20_000 {
                    AhoCorasickKind::DFA
                } else {
                    AhoCorasickKind::ContiguousNFA
                };
                match AhoCorasickBuilder::new()
                    .match_kind(MatchKind::Standard)
                    .kind(Some(kind))
                    .build(g.literal_patterns.iter().map(|(s, _, _)| s.as_bytes()))
                {
                    Ok(ac) => g.literals = Some(ac),
                    Err(_) => {
                        for (_, p, _) in g.literal_patterns.drain(..) {
                            index.anchors[p as usize] = NO_ANCHOR;
                            index.always.push(p);
                        }
                    }
                }
            }
            if !g.regex_patterns.is_empty() {
                match RegexSetBuilder::new(g.regex_patterns.iter().map(|(s, _)| s))
                    .size_limit(64 << 20)
                    .dfa_size_limit(16 << 20)
                    .build()
                {
                    Ok(set) => g.regexes = Some(set),
                    Err(_) => {
                        for (_, p) in g.regex_patterns.drain(..) {
                            index.anchors[p as usize] = NO_ANCHOR;
                            index.always.push(p);
                        }
                    }
                }
            }
        }
        index.always.sort_unstable();
        index
    }

    /// The matcher index of policy `p` already verified by the prefilter.
    pub fn anchor(&self, p: u32) -> Option<usize> {
        match self.anchors.get(p as usize) {
            Some(&a) if a != NO_ANCHOR => Some(a as usize),
            _ => None,
        }
    }
}

/// Reusable buffers for candidate collection (one per batch, not per record).
pub struct Scratch {
    stamp: Vec<u32>,
    generation: u32,
    /// Candidate policy indexes of the current record, sorted.
    pub candidates: Vec<u32>,
    regex_hits: Vec<bool>,
}

impl Scratch {
    /// Buffers for a set of `n` policies.
    pub fn new(n: usize) -> Scratch {
        Scratch {
            stamp: vec![0; n],
            generation: 0,
            candidates: Vec::with_capacity(16),
            regex_hits: Vec::new(),
        }
    }

    fn push(&mut self, p: u32) {
        let slot = &mut self.stamp[p as usize];
        if *slot != self.generation {
            *slot = self.generation;
            self.candidates.push(p);
        }
    }
}

impl SignalIndex {
    /// Fills `scratch.candidates` with the policies `record` may match, in id order.
    pub fn candidates<R: Record>(&self, record: &R, scratch: &mut Scratch) {
        scratch.generation = scratch.generation.wrapping_add(1);
        if scratch.generation == 0 {
            scratch.stamp.iter_mut().for_each(|s| *s = 0);
            scratch.generation = 1;
        }
        scratch.candidates.clear();
        for &p in &self.always {
            scratch.push(p);
        }
        let mut hex = [0u8; 128];
        for g in &self.groups {
            let Some(field) = &g.field else { continue };
            let text = match record.value(field) {
                Some(FieldValue::Str(s)) => s,
                Some(FieldValue::Bytes(b)) => hex_into(b, &mut hex),
                _ => continue,
            };
            if let Some(list) = g.exact.get(text) {
                for &p in list {
                    scratch.push(p);
                }
            }
            if let Some(ac) = &g.literals {
                for m in ac.find_overlapping_iter(text) {
                    let (_, p, kind) = &g.literal_patterns[m.pattern().as_usize()];
                    let ok = match kind {
                        PatternKind::Literal(LiteralKind::StartsWith) => m.start() == 0,
                        PatternKind::Literal(LiteralKind::EndsWith) => m.end() == text.len(),
                        _ => true,
                    };
                    if ok {
                        scratch.push(*p);
                    }
                }
            }
            if let Some(set) = &g.regexes {
                scratch.regex_hits.clear();
                scratch.regex_hits.resize(set.len(), false);
                if set.matches_read_at(&mut scratch.regex_hits, text, 0) {
                    for (k, hit) in scratch.regex_hits.iter().enumerate() {
                        if *hit {
                            let p = g.regex_patterns[k].1;
                            let slot = &mut scratch.stamp[p as usize];
                            if *slot != scratch.generation {
                                *slot = scratch.generation;
                                scratch.candidates.push(p);
                            }
                        }
                    }
                }
            }
        }
        scratch.candidates.sort_unstable();
    }
}

/// A compiled, immutable set of policies, sorted by id, with a prefilter per signal.
pub struct PolicySet {
    /// The policies, sorted by id (the deterministic order of the specification).
    pub entries: Vec<PolicyEntry>,
    /// Log prefilter.
    pub logs: SignalIndex,
    /// Metric prefilter.
    pub metrics: SignalIndex,
    /// Trace prefilter.
    pub traces: SignalIndex,
}

impl std::fmt::Debug for PolicySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicySet")
            .field("entries", &self.entries)
            .finish()
    }
}

fn signal_of(p: &proto::Policy) -> Option<Signal> {
    match p.target {
        Some(proto::policy::Target::Log(_)) => Some(Signal::Logs),
        Some(proto::policy::Target::Metric(_)) => Some(Signal::Metrics),
        Some(proto::policy::Target::Trace(_)) => Some(Signal::Traces),
        None => None,
    }
}

fn is_shadow(p: &proto::Policy) -> bool {
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    p.labels.iter().any(|kv| {
        kv.key == SHADOW_LABEL
            && match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(Value::StringValue(s)) => s.eq_ignore_ascii_case("true"),
                Some(Value::BoolValue(b)) => *b,
                _ => false,
            }
    })
}

impl PolicySet {
    /// An empty set.
    pub fn empty() -> PolicySet {
        PolicySet::build(Vec::new(), &StatsRegistry::new())
    }

    /// Compiles each policy on its own; one policy's errors never affect another. A duplicate
    /// id keeps its first occurrence and marks the later ones as errors.
    pub fn build(policies: Vec<ParsedPolicy>, stats: &StatsRegistry) -> PolicySet {
        Self::build_with(policies, stats, true)
    }

    /// Like [`PolicySet::build`] but without the prefilter: every policy is tried on every
    /// record. Slower; it exists to check the prefilter against.
    pub fn build_without_prefilter(
        policies: Vec<ParsedPolicy>,
        stats: &StatsRegistry,
    ) -> PolicySet {
        Self::build_with(policies, stats, false)
    }

    fn build_with(
        policies: Vec<ParsedPolicy>,
        stats: &StatsRegistry,
        prefilter: bool,
    ) -> PolicySet {
        let mut entries: Vec<PolicyEntry> = Vec::with_capacity(policies.len());
        let mut seen = std::collections::HashSet::new();
        for parsed in policies {
            let stats_of = stats.get(&parsed.id);
            let entry = match parsed.policy {
                Err(errors) => PolicyEntry {
                    id: parsed.id,
                    name: String::new(),
                    enabled: true,
                    shadow: false,
                    signal: None,
                    target: None,
                    errors,
                    stats: stats_of,
                },
                Ok(p) => {
                    let (target, errors) = match compile(&p) {
                        Ok(t) => (Some(t), vec![]),
                        Err(e) => (None, e),
                    };
                    PolicyEntry {
                        id: p.id.clone(),
                        name: p.name.clone(),
                        enabled: p.enabled,
                        shadow: is_shadow(&p),
                        signal: signal_of(&p),
                        target,
                        errors,
                        stats: stats_of,
                    }
                }
            };
            if !seen.insert(entry.id.clone()) {
                tracing::warn!(policy_id = %entry.id, "duplicate policy id; later copy ignored");
                continue;
            }
            entry.stats.set_errors(entry.errors.len());
            if !entry.errors.is_empty() {
                tracing::warn!(policy_id = %entry.id, errors = ?entry.errors, "policy is invalid and inert");
            }
            entries.push(entry);
        }
        entries.sort_by(|a, b| a.id.cmp(&b.id));
        let logs = SignalIndex::build(&entries, Signal::Logs, prefilter);
        let metrics = SignalIndex::build(&entries, Signal::Metrics, prefilter);
        let traces = SignalIndex::build(&entries, Signal::Traces, prefilter);
        PolicySet {
            entries,
            logs,
            metrics,
            traces,
        }
    }

    /// The prefilter of `signal`.
    pub fn signal_index(&self, signal: Signal) -> &SignalIndex {
        match signal {
            Signal::Logs => &self.logs,
            Signal::Metrics => &self.metrics,
            Signal::Traces => &self.traces,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::prefix_hints;

    #[test]
    fn regex_hints_are_prefix_literals_or_nothing() {
        let h = prefix_hints("error code E0042[0-9]+").unwrap();
        assert!(h.iter().all(|l| l.starts_with("error code E0042")), "{h:?}");
        assert_eq!(prefix_hints("^(GET|HEAD) /health").unwrap().len(), 2);
        // Matches that can start anywhere, or with too short a literal: no hints.
        assert_eq!(prefix_hints(".*timeout"), None);
        assert_eq!(prefix_hints("[0-9]+"), None);
        assert_eq!(prefix_hints("a|bcd"), None);
        // Case-insensitive: every case variant is a hint.
        let ci = prefix_hints("(?i)abc").unwrap();
        assert!(ci.contains(&"ABC".to_string()) && ci.contains(&"abc".to_string()));
    }
}
