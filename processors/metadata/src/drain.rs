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

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::mask::{MaskedLine, MaskedToken, Masker, WILDCARD, WILDCARD_HASH};

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
}

impl Default for MinerConfig {
    fn default() -> Self {
        MinerConfig {
            depth: 4,
            similarity_threshold: 0.6,
            max_children: 100,
            max_templates: 10_000,
            max_tokens: 128,
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
    prev: u32,
    next: u32,
    size: u64,
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

    /// Masks and mines one line.
    pub fn add(&mut self, line: &str) -> Assignment {
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
        let leaf = self.route();
        if let Some(slot) = self.best_match(leaf) {
            self.absorb(slot);
            self.touch(slot);
            let c = self.cluster_mut(slot);
            c.size += 1;
            return Assignment {
                slot,
                id: c.id,
                created: false,
            };
        }
        let slot = self.create(leaf);
        Assignment {
            slot,
            id: self.cluster(slot).id,
            created: true,
        }
    }

    /// The template text of the template in `slot` (`<*>` for variable positions).
    pub fn template(&self, slot: u32) -> Option<String> {
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

    /// The most similar template in `leaf`, if similar enough.
    fn best_match(&self, leaf: u32) -> Option<u32> {
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
        let (slot, same, _) = best?;
        let sim = if n == 0 { 1.0 } else { same as f64 / n as f64 };
        (sim >= self.config.similarity_threshold).then_some(slot)
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
        let cluster = Cluster {
            id: self.next_id,
            hashes,
            text,
            spans,
            leaf,
            prev: NIL,
            next: NIL,
            size: 1,
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
        self.nodes[c.leaf as usize].clusters.retain(|&s| s != slot);
        self.prune(c.leaf);
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
mod tests {
    use super::*;

    fn miner() -> TemplateMiner {
        TemplateMiner::new(MinerConfig::default())
    }

    #[test]
    fn groups_lines_of_one_statement_and_separates_others() {
        let mut m = miner();
        let lines = [
            "Connected to 10.0.0.1:5432 in 12 ms",
            "login accepted for alice from web",
            "Connected to 10.0.0.7:5432 in 3 ms",
            "login accepted for bob from web",
            "Disk /dev/sda1 is 91% full",
            "login accepted for carol from web",
        ];
        let ids: Vec<u64> = lines.iter().map(|l| m.add(l).id).collect();
        assert_eq!(ids, vec![1, 2, 1, 2, 3, 2]);
        let t: Vec<(u64, u64, String)> = m
            .templates()
            .into_iter()
            .map(|(_, id, n, t)| (id, n, t))
            .collect();
        assert_eq!(
            t,
            vec![
                (1, 2, "Connected to <*> in <*> ms".to_string()),
                (2, 3, "login accepted for <*> from web".to_string()),
                (3, 1, "Disk /dev/<*> is <*> full".to_string()),
            ]
        );
    }

    #[test]
    fn lines_differing_in_most_words_stay_apart() {
        let mut m = miner();
        let a = m.add("[instance: 3edec1e4-9678-4a3a-a21b-a145a4ee5e61] Claim successful");
        let b = m.add("[instance: 3edec1e4-9678-4a3a-a21b-a145a4ee5e61] Creating image");
        let c = m.add("[instance: 96abccce-8d1f-4e07-b6d1-4b2ab87e23b4] Creating image");
        assert_ne!(a.id, b.id);
        assert_eq!(b.id, c.id);
        assert!(!c.created);
    }

    #[test]
    fn a_widened_template_does_not_swallow_other_statements() {
        let mut m = miner();
        let a = m.add("Jul combo ftpd connection from alpha");
        let b = m.add("Jul combo ftpd connection from beta");
        assert_eq!(a.id, b.id);
        assert_eq!(
            m.template(a.slot).unwrap(),
            "Jul combo ftpd connection from <*>"
        );
        // 3 of 6 words agree; the template's <*> is no agreement.
        let c = m.add("Jul combo ftpd closed by peer");
        assert!(c.created);
        assert_eq!(
            m.template(a.slot).unwrap(),
            "Jul combo ftpd connection from <*>"
        );
    }

    #[test]
    fn eviction_keeps_the_cap_and_counts() {
        let mut m = TemplateMiner::new(MinerConfig {
            max_templates: 3,
            ..MinerConfig::default()
        });
        m.add("alpha one happened");
        m.add("beta two happened twice");
        m.add("gamma three happened here now");
        // Seeing "alpha" again makes "beta" the least recently seen.
        m.add("alpha one happened");
        assert_eq!(m.evictions(), 0);
        m.add("delta four x y z w");
        assert_eq!(m.len(), 3);
        assert_eq!(m.evictions(), 1);
        let evicted = m.take_evicted().unwrap();
        assert_eq!(evicted.template, "beta two happened twice");
        assert_eq!(evicted.id, 2);
        assert_eq!(m.take_evicted(), None);
        m.add("epsilon five a b c d e f");
        assert_eq!(m.evictions(), 2);
        assert_eq!(
            m.take_evicted().unwrap().template,
            "gamma three happened here now"
        );
        let kept: Vec<String> = m.templates().into_iter().map(|t| t.3).collect();
        assert_eq!(kept.len(), 3);
        assert!(kept.contains(&"alpha one happened".to_string()));
        // A new line of an evicted statement starts a fresh template with a new id.
        let again = m.add("beta two happened twice");
        assert!(again.created);
        assert_eq!(again.id, 6);
        assert_eq!(m.evictions(), 3);
    }

    #[test]
    fn tree_stays_bounded_under_unbounded_distinct_input() {
        let mut m = TemplateMiner::new(MinerConfig {
            max_templates: 10,
            ..MinerConfig::default()
        });
        let word = |i: u32| -> String {
            // Digit-free distinct words, so nothing is masked.
            let mut s = String::new();
            let mut n = i;
            loop {
                s.push((b'a' + (n % 26) as u8) as char);
                n /= 26;
                if n == 0 {
                    break s;
                }
            }
        };
        for i in 0..20_000u32 {
            let len = 1 + (i % 7) as usize;
            let line = (0..len).map(|k| word(i * 7 + k as u32)).collect::<Vec<_>>();
            m.add(&line.join(" "));
        }
        assert_eq!(m.len(), 10);
        assert_eq!(m.evictions(), 20_000 - 10);
        // Evicting the only template of a leaf and creating one in the same leaf.
        let mut one = TemplateMiner::new(MinerConfig {
            max_templates: 1,
            ..MinerConfig::default()
        });
        let a = one.add("same head alpha beta");
        let b = one.add("same head gamma delta");
        assert!(b.created);
        assert_eq!(one.template(b.slot).unwrap(), "same head gamma delta");
        let c = one.add("same head gamma delta");
        assert_eq!((c.id, c.created), (b.id, false));
        assert_ne!(a.id, b.id);
        // Each held template needs at most depth - 1 nodes (length root, two levels).
        assert!(m.node_count() <= 10 * 3, "{} nodes", m.node_count());
    }

    #[test]
    fn long_lines_are_capped() {
        let mut m = TemplateMiner::new(MinerConfig {
            max_tokens: 4,
            ..MinerConfig::default()
        });
        let a = m.add("list of items: a b c d e");
        let b = m.add("list of items: x y");
        assert_eq!(a.id, b.id);
        assert_eq!(m.template(a.slot).unwrap(), "list of items: <*>");
    }

    #[test]
    fn config_problems_are_reported() {
        let bad = MinerConfig {
            depth: 2,
            similarity_threshold: 1.5,
            max_children: 1,
            max_templates: 0,
            max_tokens: 1,
        };
        let fields: Vec<&str> = bad.problems().into_iter().map(|p| p.0).collect();
        assert_eq!(
            fields,
            vec![
                "depth",
                "similarity_threshold",
                "max_children",
                "max_templates",
                "max_tokens"
            ]
        );
        assert!(MinerConfig::default().problems().is_empty());
    }
}
