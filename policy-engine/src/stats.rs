//! Per-policy counters (match hits/misses, transform hits/misses) that survive reloads of the
//! policy set, optionally mirrored as Prometheus counters.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use weir_api::{Counter, Gauge, Telemetry};

/// Hits and misses of one transform stage of one policy.
#[derive(Debug, Default)]
pub struct StageCounts {
    /// Times an op of this stage was applied.
    pub hits: AtomicU64,
    /// Times an op ran but its field selected nothing.
    pub misses: AtomicU64,
}

/// Counters of one policy id. Cumulative; reporting "since last sync" is the sync client's
/// job (it remembers what it sent).
#[derive(Debug, Default)]
pub struct PolicyStats {
    /// Match hits (specification section 10).
    pub hits: AtomicU64,
    /// Match misses (matched, overridden by a more restrictive policy).
    pub misses: AtomicU64,
    /// Records this policy would have dropped while in shadow mode.
    pub shadow_drops: AtomicU64,
    /// Transform stage counts: remove, redact, rename, add.
    pub stages: [StageCounts; 4],
    metrics: Option<PolicyMetrics>,
}

#[derive(Debug)]
struct PolicyMetrics {
    hits: Counter,
    misses: Counter,
    shadow_drops: Counter,
    errors: Gauge,
}

impl PolicyStats {
    /// Counts a hit.
    pub fn hit(&self) {
        self.hits.fetch_add(1, Ordering::Relaxed);
        if let Some(m) = &self.metrics {
            m.hits.inc();
        }
    }

    /// Counts a miss.
    pub fn miss(&self) {
        self.misses.fetch_add(1, Ordering::Relaxed);
        if let Some(m) = &self.metrics {
            m.misses.inc();
        }
    }

    /// Counts a record a shadow policy would have dropped.
    pub fn shadow_drop(&self) {
        self.shadow_drops.fetch_add(1, Ordering::Relaxed);
        if let Some(m) = &self.metrics {
            m.shadow_drops.inc();
        }
    }

    /// Records how many parse/compile errors the policy currently has.
    pub fn set_errors(&self, n: usize) {
        if let Some(m) = &self.metrics {
            m.errors.set(n as i64);
        }
    }

    /// Counts a transform op outcome; `stage` 0..4 = remove, redact, rename, add.
    pub fn transform(&self, stage: usize, applied: bool) {
        if let Some(s) = self.stages.get(stage) {
            if applied {
                s.hits.fetch_add(1, Ordering::Relaxed);
            } else {
                s.misses.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// (hits, misses) so far.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }
}

/// Stats by policy id, shared by every policy set built from the same sources, so counts
/// continue across reloads.
#[derive(Clone, Default)]
pub struct StatsRegistry {
    inner: Arc<Mutex<HashMap<String, Arc<PolicyStats>>>>,
    telemetry: Option<Telemetry>,
}

impl StatsRegistry {
    /// A registry without Prometheus counters (tools, tests).
    pub fn new() -> Self {
        Self::default()
    }

    /// A registry that also exposes `weir_policy_hits`, `weir_policy_misses`,
    /// `weir_policy_shadow_drops` and the gauge `weir_policy_errors` (label `policy_id`) in
    /// `telemetry`.
    pub fn with_telemetry(telemetry: Telemetry) -> Self {
        StatsRegistry {
            inner: Arc::default(),
            telemetry: Some(telemetry),
        }
    }

    /// The stats of `id`, created on first use.
    pub fn get(&self, id: &str) -> Arc<PolicyStats> {
        let mut map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = map.get(id) {
            return s.clone();
        }
        let metrics = self.telemetry.as_ref().map(|t| {
            let l = [("policy_id", id.to_string())];
            PolicyMetrics {
                hits: t.counter("weir_policy_hits", "Policy match hits", &l),
                misses: t.counter(
                    "weir_policy_misses",
                    "Policy matches overridden by a more restrictive policy",
                    &l,
                ),
                shadow_drops: t.counter(
                    "weir_policy_shadow_drops",
                    "Items a policy in shadow mode would have dropped",
                    &l,
                ),
                errors: t.gauge(
                    "weir_policy_errors",
                    "Parse and compile errors of a policy (a policy with errors is inert)",
                    &l,
                ),
            }
        });
        let s = Arc::new(PolicyStats {
            metrics,
            ..Default::default()
        });
        map.insert(id.to_string(), s.clone());
        s
    }
}
