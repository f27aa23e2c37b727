//! Template slots: creating a template (evicting the least recently seen one at the cap)
//! and the recency list.

use super::tails::head_key;
use super::{Cluster, Evicted, TemplateMiner, NIL};
use crate::mask::WILDCARD_HASH;

impl TemplateMiner {
    pub(super) fn create(&mut self, leaf: u32) -> u32 {
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

    pub(super) fn evict_oldest(&mut self) {
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

    pub(super) fn push_front(&mut self, slot: u32) {
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

    pub(super) fn unlink(&mut self, slot: u32) {
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

    pub(super) fn touch(&mut self, slot: u32) {
        if self.lru_head != slot {
            self.unlink(slot);
            self.push_front(slot);
        }
    }
}
