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

/// A token that can name a kind of event (`Paused`, `user=root`): letters and no `/`.
fn is_word_value(text: &str) -> bool {
    text.bytes().any(|b| b.is_ascii_alphabetic()) && !text.contains('/')
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

/// Tokens a template keeps before a free-text tail, at least.
const TAIL_MIN_PREFIX: usize = 3;

/// The key of a line's or template's first two token hashes; `None` for text too short to
/// take a free-text tail.
fn head_key(hashes: impl Iterator<Item = u64>, len: usize) -> Option<u64> {
    if len <= TAIL_MIN_PREFIX {
        return None;
    }
    let mut h = rustc_hash::FxHasher::default();
    for x in hashes.take(2) {
        h.write_u64(x);
    }
    Some(h.finish())
}

/// A word of free text: letters and sentence punctuation, nothing masked.
fn is_free_word(text: &str) -> bool {
    let b = text.as_bytes();
    b.iter().any(u8::is_ascii_alphabetic)
        && b.iter().all(|&c| {
            c.is_ascii_alphabetic()
                || matches!(c, b'.' | b',' | b';' | b':' | b'!' | b'?' | b'\'' | b'-')
        })
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

    /// Whether the current tokens from `from` on are all free-text words.
    fn free_tail(&self, from: usize) -> bool {
        self.tokens[from..]
            .iter()
            .all(|t| t.hash != WILDCARD_HASH && is_free_word(self.line.text(t)))
    }

    /// A template with a free-text tail whose prefix the current tokens follow.
    fn tail_match(&self) -> Option<u32> {
        if self.tails.is_empty() {
            return None;
        }
        let key = head_key(self.tokens.iter().map(|t| t.hash), self.tokens.len())?;
        self.tails.get(&key)?.iter().copied().find(|&slot| {
            let c = self.cluster(slot);
            let p = c.hashes.len() - 1;
            self.tokens.len() > p
                && self.tokens[..p]
                    .iter()
                    .zip(&c.hashes)
                    .all(|(t, &h)| h == WILDCARD_HASH || h == t.hash || !t.informative)
                && self.free_tail(p)
        })
    }

    /// How far the current tokens follow the template in `slot` before a free-text tail on
    /// both sides: the prefix length, if the rule for a free-text tail holds (a prefix of at
    /// least [`TAIL_MIN_PREFIX`] tokens with two agreeing words ending in a label word such
    /// as `error:`, then at least one word of free text on each side, differing in the
    /// first).
    fn tail_prefix(&self, slot: u32) -> Option<usize> {
        let c = self.cluster(slot);
        if c.family.is_some() || c.tail {
            return None;
        }
        let (m, n) = (c.hashes.len(), self.tokens.len());
        let lim = m.min(n);
        let (mut p, mut agree) = (0, 0);
        while p < lim {
            let (h, t) = (c.hashes[p], &self.tokens[p]);
            if h == t.hash {
                agree += usize::from(t.informative);
            } else if h != WILDCARD_HASH && t.informative {
                break;
            }
            p += 1;
        }
        // Free text follows a label (`error:`, `reason:`): without one, words after a
        // common prefix name different events (`Took <*> to build instance.` / `Took <*>
        // to deallocate network for instance.`).
        let label = p > 0 && self.tokens[p - 1].informative && {
            let t = self.line.text(&self.tokens[p - 1]);
            t.ends_with(':')
                && t.bytes()
                    .rev()
                    .nth(1)
                    .is_some_and(|b| b.is_ascii_alphabetic())
        };
        if p < TAIL_MIN_PREFIX || p >= lim || agree < 2 || !label || !self.free_tail(p) {
            return None;
        }
        let template_tail = (p..m).all(|i| {
            let (a, b) = c.spans[i];
            c.hashes[i] != WILDCARD_HASH && is_free_word(&c.text[a as usize..b as usize])
        });
        template_tail.then_some(p)
    }

    /// When a template of the same head differs from the current tokens only by a free-text
    /// tail, it takes a tail (`<*>` for any number of words) and keeps its id; other
    /// templates of the head that fit the tail merge into it. Returns its slot.
    fn make_tail(&mut self) -> Option<u32> {
        let key = head_key(self.tokens.iter().map(|t| t.hash), self.tokens.len())?;
        let candidates = self.heads.get(&key)?.clone();
        let (slot, p) = candidates
            .iter()
            .filter_map(|&s| Some((s, self.tail_prefix(s)?)))
            .max_by_key(|&(s, p)| (p, std::cmp::Reverse(self.cluster(s).id)))?;
        // The template becomes prefix + `<*>`, out of the tree and into `tails`.
        let c = self.cluster_mut(slot);
        let leaf = c.leaf;
        let end = c.spans[p - 1].1;
        c.hashes.truncate(p);
        c.hashes.push(WILDCARD_HASH);
        c.spans.truncate(p);
        c.spans.push((end, end));
        c.text.truncate(end as usize);
        c.tail = true;
        c.leaf = NIL;
        self.nodes[leaf as usize].clusters.retain(|&s| s != slot);
        self.prune(leaf);
        self.unlist(key, slot);
        self.tails.entry(key).or_default().push(slot);
        let into_id = self.cluster(slot).id;
        for other in candidates {
            if other == slot {
                continue;
            }
            let fits = {
                let (t, o) = (self.cluster(slot), self.cluster(other));
                o.family.is_none()
                    && o.hashes.len() > p
                    && t.hashes[..p]
                        .iter()
                        .zip(&o.hashes)
                        .all(|(&a, &b)| a == WILDCARD_HASH || a == b)
                    && (p..o.hashes.len()).all(|i| {
                        let (a, b) = o.spans[i];
                        o.hashes[i] != WILDCARD_HASH
                            && is_free_word(&o.text[a as usize..b as usize])
                    })
            };
            if !fits {
                continue;
            }
            self.unlink(other);
            let Some(gone) = self.clusters[other as usize].take() else {
                continue;
            };
            self.nodes[gone.leaf as usize]
                .clusters
                .retain(|&s| s != other);
            self.prune(gone.leaf);
            self.unlist(key, other);
            self.free.push(other);
            self.live -= 1;
            let c = self.cluster_mut(slot);
            c.size += gone.size;
            for v in gone.variants {
                if c.variants.len() < PROVEN_VARIANTS && !c.variants.contains(&v) {
                    c.variants.push(v);
                }
            }
            for (h, g) in c.hashes.iter_mut().zip(&gone.hashes).take(p) {
                if *h != *g {
                    *h = WILDCARD_HASH;
                }
            }
            self.merged.push(Merged {
                slot: other,
                id: gone.id,
                into_slot: slot,
                into_id,
            });
        }
        Some(slot)
    }

    /// Removes `slot` from the templates listed under `key` in `heads`.
    fn unlist(&mut self, key: u64, slot: u32) {
        if let Some(v) = self.heads.get_mut(&key) {
            v.retain(|&s| s != slot);
            if v.is_empty() {
                self.heads.remove(&key);
            }
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

    fn new_node(&mut self, parent: Option<(u32, Edge)>) -> u32 {
        let node = Node {
            parent,
            ..Node::default()
        };
        match self.free_nodes.pop() {
            Some(n) => {
                self.nodes[n as usize] = node;
                n
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as u32
            }
        }
    }

    /// Tree nodes in use (bounded: evictions remove the branches they empty).
    pub fn node_count(&self) -> usize {
        self.nodes.len() - self.free_nodes.len()
    }

    /// Removes `node` and then each ancestor left without templates or children.
    fn prune(&mut self, mut node: u32) {
        loop {
            let n = &self.nodes[node as usize];
            if !n.clusters.is_empty() || !n.children.is_empty() || n.wildcard.is_some() {
                return;
            }
            let parent = n.parent;
            self.nodes[node as usize] = Node::default();
            self.free_nodes.push(node);
            match parent {
                None => return,
                Some((_, Edge::Length(len))) => {
                    self.by_length.remove(&len);
                    return;
                }
                Some((p, Edge::Token(h))) => {
                    self.nodes[p as usize].children.remove(&h);
                    node = p;
                }
                Some((p, Edge::Wildcard)) => {
                    self.nodes[p as usize].wildcard = None;
                    node = p;
                }
            }
        }
    }

    /// Walks (and grows) the tree to the leaf for the current tokens.
    fn route(&mut self) -> u32 {
        let len = self.tokens.len() as u32;
        let mut node = match self.by_length.get(&len) {
            Some(&n) => n,
            None => {
                let n = self.new_node(Some((NIL, Edge::Length(len))));
                self.by_length.insert(len, n);
                n
            }
        };
        let levels = (self.config.depth - 2).min(self.tokens.len());
        for i in 0..levels {
            let h = self.tokens[i].hash;
            let n = &self.nodes[node as usize];
            let next = if h != WILDCARD_HASH {
                match n.children.get(&h) {
                    Some(&c) => Some(c),
                    None if n.children.len() + 1 < self.config.max_children => {
                        let c = self.new_node(Some((node, Edge::Token(h))));
                        self.nodes[node as usize].children.insert(h, c);
                        Some(c)
                    }
                    None => None,
                }
            } else {
                None
            };
            node = match next {
                Some(c) => c,
                None => match self.nodes[node as usize].wildcard {
                    Some(w) => w,
                    None => {
                        let w = self.new_node(Some((node, Edge::Wildcard)));
                        self.nodes[node as usize].wildcard = Some(w);
                        w
                    }
                },
            };
        }
        node
    }

    /// The most similar template in `leaf`, if similar enough, and whether the line's
    /// words all agree with it.
    fn best_match(&self, leaf: u32) -> Option<(u32, bool)> {
        // Only words are evidence: two lines agreeing on "<*>]" or "(<*>)" say nothing.
        let n = self.tokens.iter().filter(|t| t.informative).count();
        let mut best: Option<(u32, usize, usize)> = None;
        for &slot in &self.nodes[leaf as usize].clusters {
            let c = self.cluster(slot);
            let mut same = 0;
            let mut params = 0;
            for (t, &h) in self.tokens.iter().zip(&c.hashes) {
                if !t.informative {
                    continue;
                }
                if h == WILDCARD_HASH {
                    // Not evidence: counting it would let a template that has widened
                    // swallow every line of its length.
                    params += 1;
                } else if h == t.hash {
                    same += 1;
                }
            }
            let better = match best {
                None => true,
                Some((_, s, p)) => same > s || (same == s && params > p),
            };
            if better {
                best = Some((slot, same, params));
            }
        }
        let (slot, same, params) = best?;
        let sim = if n == 0 { 1.0 } else { same as f64 / n as f64 };
        // Exact: every word agrees with a word of the template or falls on a `<*>`.
        (sim >= self.config.similarity_threshold).then_some((slot, same + params == n))
    }

    /// The one position where the template in `slot` holds a word and the line another
    /// word, if there is exactly one such position.
    fn single_word_conflict(&self, slot: u32) -> Option<usize> {
        let c = self.cluster(slot);
        let mut found = None;
        for (i, (t, &h)) in self.tokens.iter().zip(&c.hashes).enumerate() {
            if h == WILDCARD_HASH || h == t.hash || !t.informative {
                continue;
            }
            let (a, b) = c.spans[i];
            if !is_word_value(&c.text[a as usize..b as usize]) || !is_word_value(self.line.text(t))
            {
                // Paths, lists and masked values differ by data, not by kind of event.
                return None;
            }
            if found.is_some() {
                return None;
            }
            found = Some(i);
        }
        found
    }

    /// Decides between widening, a sibling and merging the siblings.
    fn family_step(&mut self, leaf: u32, slot: u32) -> Step {
        let k = self.config.max_word_variants;
        if k == 0 {
            return Step::Widen;
        }
        let Some(pos) = self.single_word_conflict(slot) else {
            return Step::Widen;
        };
        let c = self.cluster(slot);
        let mut h = rustc_hash::FxHasher::default();
        h.write_u32(leaf);
        h.write_usize(pos);
        for (i, &x) in c.hashes.iter().enumerate() {
            h.write_u64(if i == pos { WILDCARD_HASH } else { x });
        }
        let key = h.finish();
        if c.family.is_some_and(|f| f != key) {
            return Step::Widen;
        }
        let (own, value) = (c.hashes[pos], self.tokens[pos].hash);
        self.cluster_mut(slot).family = Some(key);
        let fam = self.families.entry(key).or_insert_with(|| Family {
            values: Vec::new(),
            members: Vec::new(),
        });
        if !fam.members.contains(&slot) {
            fam.members.push(slot);
        }
        if !fam.values.contains(&own) {
            fam.values.push(own);
        }
        if fam.values.contains(&value) {
            // A sibling holds this word but matched less well: no new sibling.
            return Step::Widen;
        }
        fam.values.push(value);
        if fam.values.len() <= k {
            return Step::Split(key);
        }
        Step::Join(self.merge_family(key))
    }

    fn join_family(&mut self, key: u64, slot: u32) {
        self.cluster_mut(slot).family = Some(key);
        let fam = self.families.entry(key).or_insert_with(|| Family {
            values: Vec::new(),
            members: Vec::new(),
        });
        fam.members.push(slot);
    }

    /// Merges every sibling of the family into the oldest; returns its slot.
    fn merge_family(&mut self, key: u64) -> u32 {
        let members = self
            .families
            .remove(&key)
            .map(|f| f.members)
            .unwrap_or_default();
        let Some(&into) = members.iter().min_by_key(|&&s| self.cluster(s).id) else {
            unreachable!("a family has a member");
        };
        let into_id = self.cluster(into).id;
        for &m in &members {
            if m == into {
                continue;
            }
            self.unlink(m);
            let Some(gone) = self.clusters[m as usize].take() else {
                continue;
            };
            self.nodes[gone.leaf as usize].clusters.retain(|&s| s != m);
            if let Some(key) = gone.head {
                self.unlist(key, m);
            }
            self.free.push(m);
            self.live -= 1;
            let c = self.cluster_mut(into);
            c.size += gone.size;
            for v in gone.variants {
                if c.variants.len() < PROVEN_VARIANTS && !c.variants.contains(&v) {
                    c.variants.push(v);
                }
            }
            for (h, g) in c.hashes.iter_mut().zip(&gone.hashes) {
                if *h != *g {
                    *h = WILDCARD_HASH;
                }
            }
            self.merged.push(Merged {
                slot: m,
                id: gone.id,
                into_slot: into,
                into_id,
            });
        }
        self.cluster_mut(into).family = None;
        into
    }

    /// Widens the template in `slot` to cover the current tokens.
    fn absorb(&mut self, slot: u32) {
        let tokens = std::mem::take(&mut self.tokens);
        let c = self.cluster_mut(slot);
        for (t, h) in tokens.iter().zip(c.hashes.iter_mut()) {
            if *h != t.hash {
                *h = WILDCARD_HASH;
            }
        }
        self.tokens = tokens;
    }

    fn create(&mut self, leaf: u32) -> u32 {
        let leaf = if self.live >= self.config.max_templates {
            self.evict_oldest();
            // The eviction may have pruned the branch `leaf` is on: walk again.
            self.route()
        } else {
            leaf
        };
        let mut text = String::with_capacity(self.tokens.len() * 8);
        let mut spans = Vec::with_capacity(self.tokens.len());
        let mut hashes = Vec::with_capacity(self.tokens.len());
        for t in &self.tokens {
            let a = text.len() as u32;
            if t.hash != WILDCARD_HASH {
                text.push_str(self.line.text(t));
            }
            spans.push((a, text.len() as u32));
            hashes.push(t.hash);
        }
        let head = head_key(hashes.iter().copied(), hashes.len());
        let cluster = Cluster {
            id: self.next_id,
            hashes,
            text,
            spans,
            leaf,
            family: None,
            head,
            tail: false,
            prev: NIL,
            next: NIL,
            size: 1,
            variants: Vec::new(),
        };
        self.next_id += 1;
        let slot = match self.free.pop() {
            Some(s) => {
                self.clusters[s as usize] = Some(cluster);
                s
            }
            None => {
                self.clusters.push(Some(cluster));
                (self.clusters.len() - 1) as u32
            }
        };
        self.nodes[leaf as usize].clusters.push(slot);
        if let Some(key) = head {
            self.heads.entry(key).or_default().push(slot);
        }
        self.push_front(slot);
        self.live += 1;
        slot
    }

    fn evict_oldest(&mut self) {
        let slot = self.lru_tail;
        if slot == NIL {
            return;
        }
        self.unlink(slot);
        let template = self.template(slot).unwrap_or_default();
        let Some(c) = self.clusters[slot as usize].take() else {
            return;
        };
        if c.tail {
            if let Some(v) = c.head.and_then(|k| self.tails.get_mut(&k)) {
                v.retain(|&s| s != slot);
                if v.is_empty() {
                    if let Some(k) = c.head {
                        self.tails.remove(&k);
                    }
                }
            }
        } else {
            self.nodes[c.leaf as usize].clusters.retain(|&s| s != slot);
            self.prune(c.leaf);
            if let Some(key) = c.head {
                self.unlist(key, slot);
            }
        }
        if let Some(key) = c.family {
            if let Some(f) = self.families.get_mut(&key) {
                f.members.retain(|&s| s != slot);
                if f.members.is_empty() {
                    self.families.remove(&key);
                }
            }
        }
        self.free.push(slot);
        self.live -= 1;
        self.evictions += 1;
        self.last_evicted = Some(Evicted {
            slot,
            id: c.id,
            template,
        });
    }

    fn push_front(&mut self, slot: u32) {
        let head = self.lru_head;
        {
            let c = self.cluster_mut(slot);
            c.prev = NIL;
            c.next = head;
        }
        if head != NIL {
            self.cluster_mut(head).prev = slot;
        } else {
            self.lru_tail = slot;
        }
        self.lru_head = slot;
    }

    fn unlink(&mut self, slot: u32) {
        let (prev, next) = {
            let c = self.cluster(slot);
            (c.prev, c.next)
        };
        if prev != NIL {
            self.cluster_mut(prev).next = next;
        } else {
            self.lru_head = next;
        }
        if next != NIL {
            self.cluster_mut(next).prev = prev;
        } else {
            self.lru_tail = prev;
        }
    }

    fn touch(&mut self, slot: u32) {
        if self.lru_head != slot {
            self.unlink(slot);
            self.push_front(slot);
        }
    }
}

#[cfg(test)]
#[path = "drain_tests.rs"]
mod tests;
