//! Templates with a free-text tail: a line whose words after a common prefix are free
//! text joins the template of that prefix, whatever the tail's length.

use std::hash::Hasher;

use super::{Merged, TemplateMiner, NIL};
use crate::mask::WILDCARD_HASH;
use crate::structure::PROVEN_VARIANTS;

/// Tokens a template keeps before a free-text tail, at least.
pub(super) const TAIL_MIN_PREFIX: usize = 3;

/// The key of a line's or template's first two token hashes; `None` for text too short to
/// take a free-text tail.
pub(super) fn head_key(hashes: impl Iterator<Item = u64>, len: usize) -> Option<u64> {
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
pub(super) fn is_free_word(text: &str) -> bool {
    let b = text.as_bytes();
    b.iter().any(u8::is_ascii_alphabetic)
        && b.iter().all(|&c| {
            c.is_ascii_alphabetic()
                || matches!(c, b'.' | b',' | b';' | b':' | b'!' | b'?' | b'\'' | b'-')
        })
}

impl TemplateMiner {
    /// Whether the current tokens from `from` on are all free-text words.
    pub(super) fn free_tail(&self, from: usize) -> bool {
        self.tokens[from..]
            .iter()
            .all(|t| t.hash != WILDCARD_HASH && is_free_word(self.line.text(t)))
    }

    /// A template with a free-text tail whose prefix the current tokens follow.
    pub(super) fn tail_match(&self) -> Option<u32> {
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
    pub(super) fn tail_prefix(&self, slot: u32) -> Option<usize> {
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
    pub(super) fn make_tail(&mut self) -> Option<u32> {
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
    pub(super) fn unlist(&mut self, key: u64, slot: u32) {
        if let Some(v) = self.heads.get_mut(&key) {
            v.retain(|&s| s != slot);
            if v.is_empty() {
                self.heads.remove(&key);
            }
        }
    }
}
