//! Reading sketches from outside (edges, stored rows) without trusting them.
//!
//! The sketch crates' own serde forms are their internal state: indexes, offsets, tagged
//! words and bin limits that their merge code indexes with. A hostile or corrupted form
//! could make a merge allocate gigabytes or index out of bounds. So a sketch is never
//! deserialised into the crate's state directly: its wire form is read into plain values
//! under size caps, checked, and the sketch is rebuilt through the crate's public API
//! (inserting the same hashes, adding the same bucket counts). What comes out satisfies
//! the crate's invariants by construction.

use cardinality_estimator::CardinalityEstimator;
use serde::de::{Error as _, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use sketches_ddsketch::{Config as DdConfig, DDSketch};

/// Register precision of the distinct-count sketch (the crate's default `P`).
const HLL_P: u32 = 12;
/// Register width in bits (the crate's default `W`).
const HLL_W: u32 = 6;
/// Registers of the HyperLogLog form.
const HLL_REGISTERS: usize = 1 << HLL_P;
/// Length of the HyperLogLog form: zeros, harmonic sum, packed registers, one spare word.
pub const HLL_WORDS: usize = HLL_REGISTERS * HLL_W as usize / 32 + 3;
/// Most encoded hashes the array form holds before it becomes a HyperLogLog.
pub const ARRAY_MAX: usize = 128;
/// Highest rank a 64-bit hash can give (a run of ones over bits 12..62, plus one).
const MAX_RANK: u32 = 52;
/// Most bins a duration sketch store may hold (the DDSketch default bin limit).
pub const DD_MAX_BINS: usize = 2048;
/// Most values a duration sketch may count (2^53: exact in a double).
pub const DD_MAX_COUNT: u64 = 1 << 53;

/// A sequence read with at most `N` elements; more fails the read before anything is
/// allocated for the extra elements.
struct Bounded<T, const N: usize>(Vec<T>);

impl<'de, T: Deserialize<'de>, const N: usize> Deserialize<'de> for Bounded<T, N> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T, const N: usize>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>, const N: usize> Visitor<'de> for V<T, N> {
            type Value = Bounded<T, N>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "a sequence of at most {N} elements")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(N));
                while let Some(x) = seq.next_element()? {
                    if out.len() == N {
                        return Err(A::Error::custom(format!(
                            "more than {N} elements (the limit)"
                        )));
                    }
                    out.push(x);
                }
                Ok(Bounded(out))
            }
        }
        d.deserialize_seq(V::<T, N>(std::marker::PhantomData))
    }
}

/// The 64-bit hash whose sparse encoding (as the estimator computes it) is `h`, or `None`
/// when no hash encodes to `h`.
///
/// The encoding keeps the hash's low 25 bits as the index and, as the rank, one plus the
/// number of consecutive one bits from bit 12. Bits 12..25 are in both, so the rank must
/// agree with them; a longer run continues above bit 25.
fn hash_of_encoded(h: u32) -> Option<u64> {
    let rank = h & ((1 << HLL_W) - 1);
    let idx = u64::from(h >> HLL_W);
    if rank == 0 || rank > MAX_RANK || idx >> 25 != 0 {
        return None;
    }
    let run = rank - 1;
    let shared = (idx >> HLL_P) as u32; // bits 12..25 of the hash: 13 bits
    let ones = (!shared).trailing_zeros().min(13);
    if ones < 13 {
        return (run == ones).then_some(idx);
    }
    // Bits 12..25 are all ones: the run goes on from bit 25 and stops with a zero bit.
    let extra = run.checked_sub(13)?;
    Some(idx | (((1u64 << extra) - 1) << 25))
}

/// The hash that lands in HyperLogLog register `idx` with rank `rank`.
#[cfg(test)]
fn hash_of_register(idx: usize, rank: u32) -> Option<u64> {
    if rank == 0 || rank > MAX_RANK {
        return None;
    }
    Some(idx as u64 | (((1u64 << (rank - 1)) - 1) << HLL_P))
}

fn register(words: &[u32], idx: usize) -> u32 {
    let bit = idx * HLL_W as usize;
    let word = bit / 32 + 2;
    let pos = bit % 32;
    let low = HLL_W.min(32 - pos as u32);
    let high = HLL_W - low;
    let first = words.get(word).copied().unwrap_or(0);
    let second = words.get(word + 1).copied().unwrap_or(0);
    ((first >> pos) & ((1 << low) - 1)) | ((second & ((1 << high) - 1)) << low)
}

/// Reads a distinct-count sketch's wire form `(word, registers)` and rebuilds it.
pub fn read_distinct<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<CardinalityEstimator<u64>, D::Error> {
    let (word, registers): (u64, Option<Bounded<u32, HLL_WORDS>>) = Deserialize::deserialize(d)?;
    let mut out = CardinalityEstimator::<u64>::new();
    let mut insert = |h: u32| -> Result<(), D::Error> {
        let hash = hash_of_encoded(h).ok_or_else(|| {
            D::Error::custom(format!("distinct sketch: {h:#x} is not an encoded hash"))
        })?;
        out.insert_hash(hash);
        Ok(())
    };
    match (word & 0b11, registers.map(|r| r.0)) {
        (0, None) => {
            for h in [(word >> 2) & 0x7fff_ffff, (word >> 33) & 0x7fff_ffff] {
                if h != 0 {
                    insert(h as u32)?;
                }
            }
        }
        (1, Some(items)) => {
            if items.len() < 3 || items.len() > ARRAY_MAX {
                return Err(D::Error::custom(format!(
                    "distinct sketch: array form holds {} hashes (3 to {ARRAY_MAX})",
                    items.len()
                )));
            }
            for h in items {
                insert(h)?;
            }
        }
        (3, Some(words)) => return read_hll(words).map_err(D::Error::custom),
        (tag, r) => {
            return Err(D::Error::custom(format!(
                "distinct sketch: representation {tag} {} registers is not one this build writes",
                if r.is_some() { "with" } else { "without" }
            )))
        }
    }
    Ok(out)
}

/// Checks a HyperLogLog form and rebuilds it: registers in range, the zero count and the
/// harmonic sum (the estimate's inputs) consistent with the registers.
fn read_hll(words: Vec<u32>) -> Result<CardinalityEstimator<u64>, String> {
    if words.len() != HLL_WORDS {
        return Err(format!(
            "distinct sketch: HyperLogLog form has {} words, not {HLL_WORDS}",
            words.len()
        ));
    }
    let mut zeros = 0u32;
    let mut sum = 0f64;
    for idx in 0..HLL_REGISTERS {
        let r = register(&words, idx);
        if r > MAX_RANK {
            return Err(format!(
                "distinct sketch: register {idx} holds rank {r} (at most {MAX_RANK})"
            ));
        }
        zeros += u32::from(r == 0);
        sum += 1.0 / (1u64 << r) as f64;
    }
    let stated_sum = f64::from(f32::from_bits(words[1]));
    if words[0] != zeros || !stated_sum.is_finite() || (stated_sum - sum).abs() > sum * 0.01 {
        return Err(format!(
            "distinct sketch: zero count {} / harmonic sum {stated_sum} disagree with the registers ({zeros} / {sum})",
            words[0]
        ));
    }
    // A checked form is handed to the crate's own reader, which takes the words as they
    // are (its sparse forms are rebuilt by insertion instead, above).
    let value = serde_json::json!([3u64, words]);
    serde_json::from_value(value).map_err(|e| format!("distinct sketch: {e}"))
}

#[derive(Deserialize)]
struct WireConfig {
    max_num_bins: u32,
    gamma: f64,
    gamma_ln: f64,
    min_value: f64,
    offset: i32,
}

#[derive(Deserialize)]
struct WireStore {
    bins: Bounded<u64, DD_MAX_BINS>,
    count: u64,
    offset: i32,
}

#[derive(Deserialize)]
struct WireDdSketch {
    config: WireConfig,
    store: WireStore,
    negative_store: WireStore,
    min: f64,
    max: f64,
    zero_count: u64,
}

/// Where a value falls in a sketch: a negative bucket, zero, a positive bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bucket {
    Negative(i32),
    Zero,
    Positive(i32),
}

fn bucket(config: &DdConfig, v: f64) -> Bucket {
    if v > config.min_possible() {
        Bucket::Positive(config.key(v))
    } else if v < -config.min_possible() {
        Bucket::Negative(config.key(-v))
    } else {
        Bucket::Zero
    }
}

/// Reads a duration sketch's wire form (the DDSketch crate's serde form) and rebuilds it:
/// default settings only, at most [`DD_MAX_BINS`] bins per store, bin counts that add up
/// to the stated counts, keys whose values are finite, at most [`DD_MAX_COUNT`] values.
/// `null` is the empty sketch.
pub fn read_duration<'de, D: Deserializer<'de>>(d: D) -> Result<DDSketch, D::Error> {
    match Option::<WireDdSketch>::deserialize(d)? {
        None => Ok(DDSketch::new(DdConfig::defaults())),
        Some(w) => {
            rebuild_duration(w).map_err(|e| D::Error::custom(format!("duration sketch: {e}")))
        }
    }
}

fn rebuild_duration(w: WireDdSketch) -> Result<DDSketch, String> {
    let config = DdConfig::defaults();
    let want: WireConfig = serde_json::to_value(config)
        .and_then(serde_json::from_value)
        .map_err(|e| e.to_string())?;
    let c = &w.config;
    if c.max_num_bins != want.max_num_bins
        || c.gamma.to_bits() != want.gamma.to_bits()
        || c.gamma_ln.to_bits() != want.gamma_ln.to_bits()
        || c.min_value.to_bits() != want.min_value.to_bits()
        || c.offset != want.offset
    {
        return Err("config: not this build's sketch settings".into());
    }
    let lowest = config.key(config.min_possible() * (1.0 + 1e-9));
    let highest = config.key(f64::MAX);
    let mut entries: Vec<(Bucket, f64, u64)> = Vec::new();
    let mut total = w.zero_count;
    for (name, store, negative) in [
        ("negative_store", &w.negative_store, true),
        ("store", &w.store, false),
    ] {
        let mut sum = 0u64;
        let mut part = Vec::new();
        for (i, &n) in store.bins.0.iter().enumerate() {
            sum = sum
                .checked_add(n)
                .filter(|s| *s <= DD_MAX_COUNT)
                .ok_or_else(|| format!("{name}.bins: counts exceed {DD_MAX_COUNT}"))?;
            if n == 0 {
                continue;
            }
            let key = i32::try_from(i)
                .ok()
                .and_then(|i| store.offset.checked_add(i))
                .filter(|k| (lowest..=highest).contains(k))
                .ok_or_else(|| {
                    format!(
                        "{name}.bins[{i}]: key out of range (offset {})",
                        store.offset
                    )
                })?;
            let v = config.value(key);
            if !v.is_finite() {
                return Err(format!("{name}.bins[{i}]: key {key} has no finite value"));
            }
            if negative {
                part.push((Bucket::Negative(key), -v, n));
            } else {
                part.push((Bucket::Positive(key), v, n));
            }
        }
        if sum != store.count {
            return Err(format!(
                "{name}.count: {} but the bins add up to {sum}",
                store.count
            ));
        }
        total = total
            .checked_add(sum)
            .filter(|t| *t <= DD_MAX_COUNT)
            .ok_or_else(|| format!("count: more than {DD_MAX_COUNT} values"))?;
        if negative {
            part.reverse();
            entries.extend(part);
            if w.zero_count > 0 {
                entries.push((Bucket::Zero, 0.0, w.zero_count));
            }
        } else {
            entries.extend(part);
        }
    }
    let mut out = DDSketch::new(config);
    if total == 0 {
        return Ok(out);
    }
    if !w.min.is_finite() || !w.max.is_finite() || w.min > w.max {
        return Err(format!(
            "min/max: {} / {} are not finite and ordered",
            w.min, w.max
        ));
    }
    // Keep the exact extremes when they fall in the outermost buckets (as they do in
    // every sketch this crate writes); otherwise the buckets' values stand in for them.
    let mut exact = Vec::new();
    if let Some(first) = entries.first_mut() {
        if bucket(&config, w.min) == first.0 {
            first.2 -= 1;
            exact.push(w.min);
        }
    }
    if let Some(last) = entries.last_mut() {
        if last.2 > 0 && bucket(&config, w.max) == last.0 {
            last.2 -= 1;
            exact.push(w.max);
        }
    }
    for (_, v, n) in entries {
        out.add_with_count(v, n);
    }
    for v in exact {
        out.add(v);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_hash_inverts_to_its_encoding() {
        // Encode as the estimator does and check the inverse re-encodes the same.
        let encode = |hash: u64| -> u32 {
            let idx = (hash as u32) & ((1 << (32 - HLL_W - 1)) - 1);
            let rank = (!hash >> HLL_P).trailing_zeros() + 1;
            (idx << HLL_W) | rank
        };
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for i in 0..200_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Long runs of ones are rare in random hashes; force some.
            let hash = if i % 3 == 0 {
                x | (((1u64 << (i % 50)) - 1) << 12)
            } else {
                x
            };
            if (!hash >> HLL_P).trailing_zeros() + 1 > MAX_RANK {
                continue; // ones up to bit 63: the encoding overflows its rank field
            }
            let h = encode(hash);
            let back = hash_of_encoded(h).unwrap_or_else(|| panic!("{hash:#x} -> {h:#x}"));
            assert_eq!(encode(back), h, "{hash:#x}");
        }
        assert_eq!(hash_of_encoded(0), None);
        assert_eq!(hash_of_encoded(u32::MAX), None);
        // Rank 1 needs bit 12 clear: index bit 12 set contradicts it.
        assert_eq!(hash_of_encoded(((1 << 12) << HLL_W) | 1), None);
    }

    #[test]
    fn register_hashes_land_in_their_register() {
        for (idx, rank) in [(0usize, 1u32), (4095, 52), (17, 13), (2048, 14)] {
            let h = hash_of_register(idx, rank).unwrap();
            assert_eq!(h & 0xfff, idx as u64);
            assert_eq!((!h >> HLL_P).trailing_zeros() + 1, rank);
        }
    }

    #[test]
    fn bounded_sequences_stop_at_the_limit() {
        let ok: Bounded<u32, 3> = serde_json::from_str("[1,2,3]").unwrap();
        assert_eq!(ok.0, [1, 2, 3]);
        let e = serde_json::from_str::<Bounded<u32, 3>>("[1,2,3,4]")
            .err()
            .unwrap();
        assert!(e.to_string().contains("more than 3 elements"), "{e}");
    }
}
