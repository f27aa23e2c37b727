//! The prefix tree: routing a line to its leaf (by token count, then leading tokens), the
//! best match among a leaf's templates, and pruning branches left empty.

use super::{Edge, Node, TemplateMiner, NIL};
use crate::mask::WILDCARD_HASH;

impl TemplateMiner {
    pub(super) fn new_node(&mut self, parent: Option<(u32, Edge)>) -> u32 {
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
    pub(super) fn prune(&mut self, mut node: u32) {
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
    pub(super) fn route(&mut self) -> u32 {
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
    pub(super) fn best_match(&self, leaf: u32) -> Option<(u32, bool)> {
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
}
