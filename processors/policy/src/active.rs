//! The policies in force: the union of what every source last delivered, compiled into one
//! [`PolicySet`] that batches read without waiting for reloads.

use std::sync::{Arc, Mutex, RwLock};

use crate::parse::ParsedPolicy;
use weir_policy_engine::set::PolicySet;
use weir_policy_engine::stats::StatsRegistry;

/// The current policy set, rebuilt whenever a source delivers a new list.
pub struct ActivePolicies {
    per_source: Mutex<Vec<Vec<ParsedPolicy>>>,
    current: RwLock<Arc<PolicySet>>,
    stats: StatsRegistry,
}

impl ActivePolicies {
    /// No policies yet, room for `sources` sources.
    pub fn new(sources: usize, stats: StatsRegistry) -> Self {
        ActivePolicies {
            per_source: Mutex::new(vec![Vec::new(); sources]),
            current: RwLock::new(Arc::new(PolicySet::empty())),
            stats,
        }
    }

    /// The set in force.
    pub fn current(&self) -> Arc<PolicySet> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The stats registry shared by every rebuilt set.
    pub fn stats(&self) -> &StatsRegistry {
        &self.stats
    }

    /// Replaces what source `index` contributes and recompiles the set. Returns the new set.
    pub fn replace(&self, index: usize, policies: Vec<ParsedPolicy>) -> Arc<PolicySet> {
        let all = {
            let mut per = self.per_source.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(slot) = per.get_mut(index) {
                *slot = policies;
            }
            per.iter().flatten().cloned().collect::<Vec<_>>()
        };
        let set = Arc::new(PolicySet::build(all, &self.stats));
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = set.clone();
        set
    }

    /// Ids of the policies source `index` contributes.
    pub fn ids_of(&self, index: usize) -> Vec<String> {
        let per = self.per_source.lock().unwrap_or_else(|e| e.into_inner());
        per.get(index)
            .map(|l| l.iter().map(|p| p.id.clone()).collect())
            .unwrap_or_default()
    }
}
