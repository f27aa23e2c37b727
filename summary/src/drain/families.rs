//! Word-variant families: sibling templates that differ in the word at one position, and
//! their merge into one template once a position shows too many variants.

use std::hash::Hasher;

use super::{Family, Merged, Step, TemplateMiner};
use crate::mask::WILDCARD_HASH;
use crate::structure::PROVEN_VARIANTS;

/// A token that can name a kind of event (`Paused`, `user=root`): letters and no `/`.
pub(super) fn is_word_value(text: &str) -> bool {
    text.bytes().any(|b| b.is_ascii_alphabetic()) && !text.contains('/')
}

impl TemplateMiner {
    /// The one position where the template in `slot` holds a word and the line another
    /// word, if there is exactly one such position.
    pub(super) fn single_word_conflict(&self, slot: u32) -> Option<usize> {
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
    pub(super) fn family_step(&mut self, leaf: u32, slot: u32) -> Step {
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

    pub(super) fn join_family(&mut self, key: u64, slot: u32) {
        self.cluster_mut(slot).family = Some(key);
        let fam = self.families.entry(key).or_insert_with(|| Family {
            values: Vec::new(),
            members: Vec::new(),
        });
        fam.members.push(slot);
    }

    /// Merges every sibling of the family into the oldest; returns its slot.
    pub(super) fn merge_family(&mut self, key: u64) -> u32 {
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
    pub(super) fn absorb(&mut self, slot: u32) {
        let tokens = std::mem::take(&mut self.tokens);
        let c = self.cluster_mut(slot);
        for (t, h) in tokens.iter().zip(c.hashes.iter_mut()) {
            if *h != t.hash {
                *h = WILDCARD_HASH;
            }
        }
        self.tokens = tokens;
    }
}
