//! Mergeable sketches used in summaries: distinct-value counts (HyperLogLog++ from
//! `cardinality-estimator`) and duration quantiles (DDSketch from `sketches-ddsketch`).
//!
//! Both hold only hashes, registers and bucket counts, never the values themselves. The
//! hashes a [`DistinctSketch`] holds are keyed with the deployment's secret sketch key
//! ([`crate::key::SketchKey`]), so they cannot be matched against guessed values.

use cardinality_estimator::CardinalityEstimator;
use serde::ser::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sketches_ddsketch::{Config as DdConfig, DDSketch};

/// Seed of the unkeyed hash used for template ids and in-memory bookkeeping. Never used
/// for values: every value hash a sketch holds is keyed ([`crate::key::SketchKey`]).
pub const HASH_SEED: u64 = 0x5745_4952_4d45_5441; // "WEIRMETA"

/// A stable, public 64-bit hash of bytes (wyhash with [`HASH_SEED`]): template ids (whose
/// text is stored beside them) and hashes that never leave the process. Not for values.
pub fn stable_hash(bytes: &[u8]) -> u64 {
    wyhash::wyhash(bytes, HASH_SEED)
}

/// Estimates the number of distinct values seen (exact up to 128, then ~1.6% error).
#[derive(Clone, Default)]
pub struct DistinctSketch(CardinalityEstimator<u64>);

impl DistinctSketch {
    /// An empty sketch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a value by its keyed hash ([`crate::key::SketchKey::hash`]).
    pub fn insert_hash(&mut self, hash: u64) {
        self.0.insert_hash(hash);
    }

    /// The estimated number of distinct values.
    pub fn estimate(&self) -> u64 {
        self.0.estimate() as u64
    }

    /// Adds everything `other` saw.
    pub fn merge(&mut self, other: &DistinctSketch) {
        self.0.merge(&other.0);
    }
}

impl std::fmt::Debug for DistinctSketch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DistinctSketch(~{})", self.estimate())
    }
}

/// Low bits of the estimator's first field that name its representation; the rest is a
/// heap address when the second field is present.
const REPRESENTATION_TAG_BITS: u64 = 0b11;

impl Serialize for DistinctSketch {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // The crate writes (tagged word, registers). When registers are present the word is
        // a pointer: keep only its tag so equal sketches serialise to equal bytes and no
        // address leaks into stored data.
        let value = serde_json::to_value(&self.0).map_err(S::Error::custom)?;
        let (word, registers): (u64, Option<Vec<u32>>) =
            serde_json::from_value(value).map_err(S::Error::custom)?;
        let word = if registers.is_some() {
            word & REPRESENTATION_TAG_BITS
        } else {
            word
        };
        (word, registers).serialize(serializer)
    }
}

// Read through `sketch_wire`: checked and rebuilt, never taken as the crate's raw state.
impl<'de> Deserialize<'de> for DistinctSketch {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        crate::sketch_wire::read_distinct(deserializer).map(DistinctSketch)
    }
}

/// Quantiles of durations in milliseconds, within 1% relative error.
#[derive(Clone)]
pub struct DurationSketch(DDSketch);

// An empty DDSketch holds infinite min/max, which JSON cannot carry (they become null and
// fail to read back), so an empty sketch is written as `null`.
impl Serialize for DurationSketch {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.count() == 0 {
            s.serialize_none()
        } else {
            s.serialize_some(&self.0)
        }
    }
}

// Read through `sketch_wire`: checked and rebuilt, never taken as the crate's raw state.
impl<'de> Deserialize<'de> for DurationSketch {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::sketch_wire::read_duration(d).map(DurationSketch)
    }
}

impl Default for DurationSketch {
    fn default() -> Self {
        DurationSketch(DDSketch::new(DdConfig::defaults()))
    }
}

impl DurationSketch {
    /// An empty sketch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one duration in milliseconds.
    pub fn add_ms(&mut self, ms: f64) {
        self.0.add(ms);
    }

    /// Number of durations recorded.
    pub fn count(&self) -> u64 {
        self.0.count() as u64
    }

    /// The `q` quantile (0..=1) in milliseconds, if anything was recorded.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        self.0.quantile(q).ok().flatten()
    }

    /// Adds everything `other` recorded. Sketches made with other settings (not by this
    /// crate) cannot merge; they are skipped with a warning, as is a merge that would count
    /// more than [`crate::sketch_wire::DD_MAX_COUNT`] values (counts stay exact).
    pub fn merge(&mut self, other: &DurationSketch) {
        let total = self.count().checked_add(other.count());
        if total.is_none_or(|t| t > crate::sketch_wire::DD_MAX_COUNT) {
            tracing::warn!(
                count = self.count(),
                adding = other.count(),
                "duration sketch full; values not merged"
            );
            return;
        }
        if let Err(e) = self.0.merge(&other.0) {
            tracing::warn!(error = %e, "duration sketch with foreign settings not merged");
        }
    }
}

impl std::fmt::Debug for DurationSketch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "DurationSketch(n={}, p50={:?}, p99={:?})",
            self.count(),
            self.quantile_ms(0.5),
            self.quantile_ms(0.99)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_estimate_within_tolerance_and_merges() {
        let mut a = DistinctSketch::new();
        let mut b = DistinctSketch::new();
        for i in 0..60_000u64 {
            a.insert_hash(stable_hash(format!("user-{i}").as_bytes()));
        }
        for i in 40_000..100_000u64 {
            b.insert_hash(stable_hash(format!("user-{i}").as_bytes()));
        }
        let err = |est: u64, truth: f64| (est as f64 - truth).abs() / truth;
        assert!(err(a.estimate(), 60_000.0) < 0.05, "{}", a.estimate());
        a.merge(&b);
        assert!(err(a.estimate(), 100_000.0) < 0.05, "{}", a.estimate());
        // Small sets are exact.
        let mut s = DistinctSketch::new();
        for v in ["GET", "POST", "GET", "PUT"] {
            s.insert_hash(stable_hash(v.as_bytes()));
        }
        assert_eq!(s.estimate(), 3);
    }

    #[test]
    fn distinct_sketch_round_trips_deterministically() {
        for n in [0u64, 2, 50, 5_000] {
            let mut s = DistinctSketch::new();
            for i in 0..n {
                s.insert_hash(stable_hash(&i.to_le_bytes()));
            }
            let json = serde_json::to_string(&s).unwrap();
            let back: DistinctSketch = serde_json::from_str(&json).unwrap();
            assert_eq!(back.estimate(), s.estimate());
            assert_eq!(serde_json::to_string(&back).unwrap(), json);
            assert_eq!(serde_json::to_string(&s.clone()).unwrap(), json);
        }
    }

    #[test]
    fn duration_quantiles_merge() {
        let mut a = DurationSketch::new();
        let mut b = DurationSketch::new();
        for i in 1..=500 {
            a.add_ms(i as f64);
        }
        for i in 501..=1000 {
            b.add_ms(i as f64);
        }
        a.merge(&b);
        assert_eq!(a.count(), 1000);
        let p50 = a.quantile_ms(0.5).unwrap();
        assert!((p50 - 500.0).abs() <= 10.0, "{p50}");
        let json = serde_json::to_string(&a).unwrap();
        let back: DurationSketch = serde_json::from_str(&json).unwrap();
        assert_eq!(back.count(), 1000);
    }
}
