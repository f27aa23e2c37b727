//! A streaming template miner in the manner of Drain (He et al., ICWS 2017).
//!
//! Each line is masked first ([`crate::mask`]), then routed through a fixed-depth tree: the
//! first level by token count, the next `depth - 2` levels by the leading tokens (masked
//! tokens and tokens past `max_children` go to a wildcard branch). The leaf holds candidate
//! templates; the line joins the most similar one when the share of its word tokens (tokens
//! with a letter outside masks) that equal the template's token at their position reaches
//! `similarity_threshold` (positions that disagree become `<*>` in the template); otherwise
//! it starts a template of its own. Tokens without letters (`<*>`, `(<*>)`) are no evidence
//! either way.
//!
//! Memory is bounded: at most `max_templates` templates are kept; making room evicts the
//! least recently seen one (counted in [`TemplateMiner::evictions`]). Lines longer than
//! `max_tokens` tokens keep their first `max_tokens - 1` tokens and one `<*>` for the rest.
//!
//! The hot path allocates nothing per line or per token: tokens are ranges of one reusable
//! buffer, compared by 64-bit hash; a template allocates once when it is created.
//!
//! By concern: `tree` (routing a line through the prefix tree, the best match in a leaf),
//! `families` (word-variant siblings and their merge), `tails` (templates with a free-text
//! tail), `slots` (creating templates, the recency list, eviction); here the settings, the
//! miner's state, adding a line and reading templates.

mod families;
mod slots;
mod tails;
mod tree;

use std::hash::Hasher;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::mask::{MaskedLine, MaskedToken, Masker, WILDCARD, WILDCARD_HASH};
use crate::structure::{redact_token_into, PROVEN_LINES, PROVEN_VARIANTS};

const NIL: u32 = u32::MAX;

/// Settings of the miner; one set serves every system.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MinerConfig {
    /// Depth of the parse tree: token count, then `depth - 2` leading tokens, then the
    /// leaf. Default: 4.
    pub depth: usize,
    /// Share of a line's word tokens (0..=1) that must equal the template's token at their
    /// position for the line to join it; tokens without letters are not counted, and a
    /// `<*>` in the template is no agreement.
    /// Default: 0.6.
    pub similarity_threshold: f64,
    /// Children per tree node before further tokens share a wildcard branch. Default: 100.
    pub max_children: usize,
    /// Templates kept at most; the least recently seen is evicted to make room.
    /// Default: 10000.
    pub max_templates: usize,
    /// Tokens of a line looked at; the rest count as one `<*>`. Default: 128.
    pub max_tokens: usize,
    /// Word values a position may take as separate templates before it becomes `<*>`:
    /// lines that differ from a template in one word only (`VM Paused` / `VM Resumed`)
    /// make sibling templates until more than this many words were seen there; then the
    /// siblings merge into one template (the oldest keeps its id) with `<*>` there.
    /// 0: widen at once (plain Drain). Default: 3.
    pub max_word_variants: usize,
}

impl Default for MinerConfig {
    fn default() -> Self {
        MinerConfig {
            depth: 4,
            similarity_threshold: 0.6,
            max_children: 100,
            max_templates: 10_000,
            max_tokens: 128,
            max_word_variants: 3,
        }
    }
}

impl MinerConfig {
    /// Problems with the settings, as (field, message).
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut p = Vec::new();
        if self.depth < 3 {
            p.push(("depth", format!("must be at least 3, got {}", self.depth)));
        }
        if !(0.0..=1.0).contains(&self.similarity_threshold) {
            p.push((
                "similarity_threshold",
                format!("must be between 0 and 1, got {}", self.similarity_threshold),
            ));
        }
        if self.max_children < 2 {
            p.push((
                "max_children",
                format!("must be at least 2, got {}", self.max_children),
            ));
        }
        if self.max_templates == 0 {
            p.push(("max_templates", "must be at least 1".to_string()));
        }
        if self.max_tokens < 2 {
            p.push((
                "max_tokens",
                format!("must be at least 2, got {}", self.max_tokens),
            ));
        }
        p
    }
}

/// Where a line went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Assignment {
    /// Slot of the template in the miner (reused after eviction); index for side tables.
    pub slot: u32,
    /// Id of the template, unique for the life of the miner (1, 2, ...).
    pub id: u64,
    /// Whether the line started a new template.
    pub created: bool,
}

/// A template merged into another (see [`MinerConfig::max_word_variants`]): its slot is
/// free and its lines now count under `into`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Merged {
    /// Slot it occupied.
    pub slot: u32,
    /// Its id.
    pub id: u64,
    /// Slot of the template it merged into.
    pub into_slot: u32,
    /// Id of the template it merged into.
    pub into_id: u64,
}

/// Sibling templates that differ in the word at one position.
struct Family {
    /// Token hashes seen at the position (at most `max_word_variants + 1`).
    values: Vec<u64>,
    /// Slots of the siblings.
    members: Vec<u32>,
}

/// What to do with a line whose best template differs from it in one word.
enum Step {
    /// Join the template and widen it (plain Drain).
    Widen,
    /// Start a sibling template in the family `key`.
    Split(u64),
    /// The family merged into this slot; join it.
    Join(u32),
}

/// A template that was evicted to make room (its slot is reused by the new template).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evicted {
    /// Slot it occupied.
    pub slot: u32,
    /// Its id.
    pub id: u64,
    /// Its template text.
    pub template: String,
}

#[derive(Default)]
struct Node {
    children: FxHashMap<u64, u32>,
    wildcard: Option<u32>,
    clusters: Vec<u32>,
    /// Where the node hangs, so that a node left empty by evictions can be removed.
    parent: Option<(u32, Edge)>,
}

/// The edge from a parent to a node.
#[derive(Clone, Copy)]
enum Edge {
    /// A token-count root (`by_length`).
    Length(u32),
    /// A child for a token hash.
    Token(u64),
    /// The wildcard child.
    Wildcard,
}

struct Cluster {
    id: u64,
    /// Token hashes; [`WILDCARD_HASH`] where the template has `<*>`.
    hashes: Vec<u64>,
    /// The first line's masked tokens, joined without separators; `spans` cut it.
    text: String,
    spans: Vec<(u32, u32)>,
    leaf: u32,
    /// The family of siblings it belongs to, if any.
    family: Option<u64>,
    /// Key of its first two tokens ([`head_key`]) when it has enough tokens to take a
    /// free-text tail: it is listed under it in `heads` (or `tails` once it has one).
    head: Option<u64>,
    /// Whether its last `<*>` stands for a free-text tail of any length (it then hangs in
    /// `tails`, not in the tree).
    tail: bool,
    prev: u32,
    next: u32,
    size: u64,
    /// Hashes of distinct lines matched, up to [`PROVEN_VARIANTS`]: evidence that the
    /// template's words are structure (see [`crate::structure`]).
    variants: Vec<u64>,
}

/// The Drain-style miner. Not thread-safe; wrap it in a lock to share.
pub struct TemplateMiner {
    config: MinerConfig,
    masker: Masker,
    line: MaskedLine,
    tokens: Vec<MaskedToken>,
    by_length: FxHashMap<u32, u32>,
    nodes: Vec<Node>,
    free_nodes: Vec<u32>,
    clusters: Vec<Option<Cluster>>,
    free: Vec<u32>,
    lru_head: u32,
    lru_tail: u32,
    live: usize,
    next_id: u64,
    evictions: u64,
    last_evicted: Option<Evicted>,
    families: FxHashMap<u64, Family>,
    merged: Vec<Merged>,
    /// Templates (not yet with a tail) by [`head_key`].
    heads: FxHashMap<u64, Vec<u32>>,
    /// Templates with a free-text tail by [`head_key`].
    tails: FxHashMap<u64, Vec<u32>>,
}

impl TemplateMiner {
    /// A miner with `config` (validate it with [`MinerConfig::problems`] first; nonsense
    /// values are clamped).
    pub fn new(config: MinerConfig) -> Self {
        let mut config = config;
        config.depth = config.depth.max(3);
        config.max_children = config.max_children.max(2);
        config.max_templates = config.max_templates.max(1);
        config.max_tokens = config.max_tokens.max(2);
        TemplateMiner {
            config,
            masker: Masker::new(),
            line: MaskedLine::new(),
            tokens: Vec::with_capacity(64),
            by_length: FxHashMap::default(),
            nodes: Vec::new(),
            free_nodes: Vec::new(),
            clusters: Vec::new(),
            free: Vec::new(),
            lru_head: NIL,
            lru_tail: NIL,
            live: 0,
            next_id: 1,
            evictions: 0,
            last_evicted: None,
            families: FxHashMap::default(),
            merged: Vec::new(),
            heads: FxHashMap::default(),
            tails: FxHashMap::default(),
        }
    }

    /// The settings in use.
    pub fn config(&self) -> &MinerConfig {
        &self.config
    }

    /// Number of templates held.
    pub fn len(&self) -> usize {
        self.live
    }

    /// Whether no template is held.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Templates evicted so far to stay under `max_templates`.
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// The template evicted by the last [`TemplateMiner::add`], if it evicted one.
    pub fn take_evicted(&mut self) -> Option<Evicted> {
        self.last_evicted.take()
    }

    /// Templates merged into others by the last [`TemplateMiner::add`] (their slots are
    /// free; count their lines under `into_slot`).
    pub fn take_merged(&mut self) -> std::vec::Drain<'_, Merged> {
        self.merged.drain(..)
    }

    /// Masks and mines one line, masking into `scratch` (whose token cache then serves
    /// every miner it is passed to: one per processor instead of one per service).
    pub fn add_with(&mut self, line: &str, scratch: &mut MaskedLine) -> Assignment {
        std::mem::swap(&mut self.line, scratch);
        let a = self.add(line);
        std::mem::swap(&mut self.line, scratch);
        a
    }

    /// Masks and mines one line.
    pub fn add(&mut self, line: &str) -> Assignment {
        self.merged.clear();
        self.masker.mask_into(line, &mut self.line);
        self.tokens.clear();
        let all = self.line.tokens();
        let max = self.config.max_tokens;
        if all.len() > max {
            self.tokens.extend_from_slice(&all[..max - 1]);
            let mut tail = all[max - 1];
            tail.hash = WILDCARD_HASH;
            self.tokens.push(tail);
        } else {
            self.tokens.extend_from_slice(all);
        }
        if let Some(slot) = self.tail_match() {
            return self.join(slot, line);
        }
        let leaf = self.route();
        if let Some((mut slot, exact)) = self.best_match(leaf) {
            let step = if exact {
                Step::Widen
            } else {
                self.family_step(leaf, slot)
            };
            match step {
                Step::Widen => {}
                Step::Join(s) => slot = s,
                Step::Split(key) => {
                    let slot = self.create(leaf);
                    self.join_family(key, slot);
                    return Assignment {
                        slot,
                        id: self.cluster(slot).id,
                        created: true,
                    };
                }
            }
            return self.join(slot, line);
        }
        // A new statement, or one with a free-text tail of another length.
        self.prune(leaf);
        if let Some(slot) = self.make_tail() {
            return self.join(slot, line);
        }
        let leaf = self.route();
        let slot = self.create(leaf);
        Assignment {
            slot,
            id: self.cluster(slot).id,
            created: true,
        }
    }

    /// The line joins the template in `slot`.
    fn join(&mut self, slot: u32, line: &str) -> Assignment {
        self.absorb(slot);
        self.touch(slot);
        let c = self.cluster_mut(slot);
        c.size += 1;
        // A template still short of distinct lines after 1024 is a constant message:
        // stop hashing its lines.
        if c.variants.len() < PROVEN_VARIANTS && c.size <= 1024 {
            let mut h = rustc_hash::FxHasher::default();
            h.write(line.as_bytes());
            let h = h.finish();
            if !c.variants.contains(&h) {
                c.variants.push(h);
            }
        }
        Assignment {
            slot,
            id: c.id,
            created: false,
        }
    }

    /// The template text of the template in `slot` as it may be stored: `<*>` for variable
    /// positions and for every word that is not structure ([`crate::structure`]).
    pub fn template(&self, slot: u32) -> Option<String> {
        let c = self.clusters.get(slot as usize)?.as_ref()?;
        let proven = c.size >= PROVEN_LINES && c.variants.len() >= PROVEN_VARIANTS;
        let mut s = String::with_capacity(c.text.len() + c.spans.len());
        for (i, (&(a, b), &h)) in c.spans.iter().zip(&c.hashes).enumerate() {
            if i > 0 {
                s.push(' ');
            }
            if h == WILDCARD_HASH {
                s.push_str(WILDCARD);
            } else {
                redact_token_into(&c.text[a as usize..b as usize], proven, &mut s);
            }
        }
        Some(s)
    }

    /// The template text as mined, words kept (for looking at the miner's work; not for
    /// storing: it may hold words that are data).
    pub fn raw_template(&self, slot: u32) -> Option<String> {
        let c = self.clusters.get(slot as usize)?.as_ref()?;
        let mut s = String::with_capacity(c.text.len() + c.spans.len());
        for (i, (&(a, b), &h)) in c.spans.iter().zip(&c.hashes).enumerate() {
            if i > 0 {
                s.push(' ');
            }
            if h == WILDCARD_HASH {
                s.push_str(WILDCARD);
            } else {
                s.push_str(&c.text[a as usize..b as usize]);
            }
        }
        Some(s)
    }

    /// Every template held: (slot, id, lines matched, text), in slot order.
    pub fn templates(&self) -> Vec<(u32, u64, u64, String)> {
        (0..self.clusters.len() as u32)
            .filter_map(|slot| {
                let c = self.clusters[slot as usize].as_ref()?;
                Some((slot, c.id, c.size, self.template(slot)?))
            })
            .collect()
    }

    fn cluster(&self, slot: u32) -> &Cluster {
        match &self.clusters[slot as usize] {
            Some(c) => c,
            None => unreachable!("slot {slot} is linked but empty"),
        }
    }

    fn cluster_mut(&mut self, slot: u32) -> &mut Cluster {
        match &mut self.clusters[slot as usize] {
            Some(c) => c,
            None => unreachable!("slot {slot} is linked but empty"),
        }
    }
}

#[cfg(test)]
mod tests;
