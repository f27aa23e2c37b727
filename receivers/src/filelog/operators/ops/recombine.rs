//! The recombine operator at run time: batches per source, flushed by match, size or age.

use std::time::Instant;

use super::super::{Entry, Val};
use super::{Matcher, RBatch, Recombine, DEFAULT_SOURCE};

impl Recombine {
    fn matches(&self, e: &Entry) -> bool {
        match &self.matcher {
            Matcher::Expr(x) => x.test(e),
            Matcher::LogtagF => matches!(e.attributes.get("logtag"), Some(Val::Str(s)) if s == "F"),
        }
    }

    pub(super) fn process(&mut self, e: Entry, fwd: &mut Vec<Entry>) {
        let m = self.matches(&e);
        if m && !self.first {
            // An entry that ends a batch while none is open for its source goes on as
            // `add` then `flush` would send it, without opening one.
            let alone = {
                let source = match self.source.get(&e) {
                    Some(Val::Str(s)) if !s.is_empty() => s.as_str(),
                    _ => DEFAULT_SOURCE,
                };
                !self.batches.contains_key(source) && self.batches.len() < self.max_sources
            };
            if alone {
                let mut e = e;
                if !matches!(self.combine_field.get(&e), Some(Val::Str(_))) {
                    self.combine_field.set(&mut e, Val::Str(String::new()));
                }
                fwd.push(e);
                return;
            }
        }
        let source = match self.source.get(&e) {
            Some(Val::Str(s)) if !s.is_empty() => s.clone(),
            _ => DEFAULT_SOURCE.to_string(),
        };
        if m && self.first {
            self.flush(&source, fwd);
            self.add(e, &source, m, fwd);
        } else if m {
            self.add(e, &source, m, fwd);
            self.flush(&source, fwd);
        } else {
            self.add(e, &source, m, fwd);
        }
    }

    fn add(&mut self, mut e: Entry, source: &str, m: bool, fwd: &mut Vec<Entry>) {
        let origin = std::mem::take(&mut e.origin);
        let piece = match self.combine_field.get(&e) {
            Some(Val::Str(s)) => Some(s.clone()),
            _ => None,
        };
        if !self.batches.contains_key(source) && self.batches.len() >= self.max_sources {
            tracing::warn!(
                "recombine: too many sources; flushing all batched entries (raise max_sources)"
            );
            self.flush_due(true, fwd);
        }
        let newest = self.overwrite_newest;
        let b = match self.batches.get_mut(source) {
            Some(b) => {
                b.n += 1;
                if newest {
                    b.base = e;
                }
                b
            }
            None => self.batches.entry(source.to_string()).or_insert(RBatch {
                base: e,
                origin: super::super::Origin::None,
                n: 1,
                text: String::new(),
                started: Instant::now(),
                matched: false,
            }),
        };
        b.matched |= m;
        b.origin.merge(&origin);
        if let Some(p) = piece {
            if !b.text.is_empty() {
                b.text.push_str(&self.combine_with);
            }
            b.text.push_str(&p);
        }
        if (self.max_log_size > 0 && b.text.len() > self.max_log_size)
            || (self.max_batch_size > 0 && b.n >= self.max_batch_size)
            || (!b.matched
                && self.max_unmatched_batch_size > 0
                && b.n >= self.max_unmatched_batch_size)
        {
            self.flush(source, fwd);
        }
    }

    fn flush(&mut self, source: &str, fwd: &mut Vec<Entry>) {
        if let Some(b) = self.batches.remove(source) {
            let mut e = b.base;
            e.origin = b.origin;
            self.combine_field.set(&mut e, Val::Str(b.text));
            fwd.push(e);
        }
    }

    pub(super) fn flush_due(&mut self, all: bool, fwd: &mut Vec<Entry>) {
        let due: Vec<String> = self
            .batches
            .iter()
            .filter(|(_, b)| all || b.started.elapsed() >= self.force_flush)
            .map(|(k, _)| k.clone())
            .collect();
        for s in due {
            self.flush(&s, fwd);
        }
    }
}
