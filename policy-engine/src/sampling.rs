//! Probability sampling primitives (OpenTelemetry consistent probability sampling: 56-bit
//! randomness R, rejection threshold T, keep iff R >= T), the W3C tracestate `ot` entry, and
//! fixed-window rate limiters.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// 2^56: the size of the randomness and threshold space.
pub const MAX_THRESHOLD: u64 = 1 << 56;
const MASK_56: u64 = MAX_THRESHOLD - 1;

/// T for a keep probability given in percent, cut to `precision` hex digits (the form it is
/// written in, so the decision and the written `th` agree). 100 % -> 0; 0 % -> 2^56.
pub fn threshold_for_percent(percent: f64, precision: u32) -> u64 {
    if percent.is_nan() || percent <= 0.0 {
        return MAX_THRESHOLD;
    }
    if percent >= 100.0 {
        return 0;
    }
    let t = ((1.0 - percent / 100.0) * MAX_THRESHOLD as f64) as u64;
    truncate(t.min(MASK_56), precision)
}

/// T for a probability in [0, 1].
pub fn threshold_for_probability(p: f64, precision: u32) -> u64 {
    threshold_for_percent(p * 100.0, precision)
}

/// Probability that T keeps.
pub fn probability(t: u64) -> f64 {
    if t >= MAX_THRESHOLD {
        0.0
    } else {
        (MAX_THRESHOLD - t) as f64 / MAX_THRESHOLD as f64
    }
}

fn truncate(t: u64, precision: u32) -> u64 {
    let digits = precision.clamp(1, 14);
    let drop_bits = (14 - digits) * 4;
    (t >> drop_bits) << drop_bits
}

/// The `th` encoding: 14 hex digits, cut to `precision`, trailing zeros removed ("0" for 0).
pub fn encode_threshold(t: u64, precision: u32) -> String {
    let full = format!("{:014x}", t & MASK_56);
    let cut = &full[..precision.clamp(1, 14) as usize];
    let trimmed = cut.trim_end_matches('0');
    if trimmed.is_empty() {
        "0".to_string()
    } else {
        trimmed.to_string()
    }
}

/// Parses a `th` value (1-14 hex digits, left-aligned in 56 bits).
pub fn parse_threshold(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 14 || !s.bytes().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let v = u64::from_str_radix(s, 16).ok()?;
    Some(v << ((14 - s.len()) * 4))
}

/// Parses an `rv` value (exactly 14 hex digits).
pub fn parse_randomness(s: &str) -> Option<u64> {
    if s.len() != 14 || !s.bytes().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(s, 16).ok()
}

/// The least significant 56 bits of an id (the trace id's randomness).
pub fn id_randomness(id: &[u8]) -> u64 {
    let tail = &id[id.len().saturating_sub(7)..];
    tail.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)) & MASK_56
}

pub use weir_policy_contract::canonical::fnv1a64;

/// 56 bits of randomness from an arbitrary sample-key value.
pub fn hashed_randomness(value: &[u8]) -> u64 {
    fnv1a64(&[value]) & MASK_56
}

/// The OpenTelemetry Collector's `hash_seed` bucket of a trace id: FNV-1a 32 over the
/// seed's little-endian bytes then the trace id, low 14 bits.
pub fn seeded_bucket(trace_id: &[u8], seed: u32) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in seed.to_le_bytes().iter().chain(trace_id) {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h & 0x3fff
}

/// The Collector's `hash_seed` rule: keep when the bucket is below `percent * 16384 / 100`.
/// Returns the decision and the equivalent 56-bit threshold (14-bit granularity).
pub fn seeded_decision(trace_id: &[u8], seed: u32, percent: f64) -> (bool, u64) {
    let rate = (percent * 16384.0 / 100.0) as u32;
    let keep = seeded_bucket(trace_id, seed) < rate;
    (keep, u64::from(16384 - rate.min(16384)) << 42)
}

/// A fresh random 56-bit value (unkeyed percentage sampling).
pub fn random56() -> u64 {
    rand::random::<u64>() & MASK_56
}

/// The `th` and `rv` sub-keys of the tracestate's `ot` entry (invalid values read as absent).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct OtValues {
    /// Incoming threshold.
    pub th: Option<u64>,
    /// Explicit randomness.
    pub rv: Option<u64>,
}

fn ot_entry(tracestate: &str) -> Option<&str> {
    tracestate
        .split(',')
        .map(str::trim)
        .find_map(|e| e.strip_prefix("ot="))
}

/// Reads `th` and `rv` from a W3C tracestate.
pub fn read_ot(tracestate: &str) -> OtValues {
    let mut out = OtValues::default();
    if let Some(ot) = ot_entry(tracestate) {
        for sub in ot.split(';') {
            if let Some(v) = sub.strip_prefix("th:") {
                out.th = parse_threshold(v);
            } else if let Some(v) = sub.strip_prefix("rv:") {
                out.rv = parse_randomness(v);
            }
        }
    }
    out
}

/// The tracestate with the `ot` entry's `th` set to `th` (or removed when `None`), other
/// `ot` sub-keys kept in order, and the `ot` entry moved to the front (W3C: a modified entry
/// goes first). An `ot` entry left empty is removed.
pub fn write_th(tracestate: &str, th: Option<&str>) -> String {
    let mut ot_subs: Vec<&str> = Vec::new();
    let mut others: Vec<&str> = Vec::new();
    for entry in tracestate
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        match entry.strip_prefix("ot=") {
            Some(ot) => ot_subs.extend(
                ot.split(';')
                    .filter(|s| !s.is_empty() && !s.starts_with("th:")),
            ),
            None => others.push(entry),
        }
    }
    let th_sub = th.map(|t| format!("th:{t}"));
    if let Some(t) = &th_sub {
        ot_subs.push(t);
    }
    let mut out = String::with_capacity(tracestate.len() + 8);
    if !ot_subs.is_empty() {
        out.push_str("ot=");
        out.push_str(&ot_subs.join(";"));
    }
    for e in others {
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(e);
    }
    out
}

/// Keys of per-key rate limiting kept at most per window; beyond this, new keys share one
/// overflow budget so memory stays bounded.
const MAX_KEYS_PER_WINDOW: usize = 100_000;

/// A fixed-window rate limiter: at most `limit` admissions per `window`, per key.
#[derive(Debug)]
pub struct RateLimiter {
    limit: u64,
    window: Duration,
    state: Mutex<RateState>,
}

#[derive(Debug)]
struct RateState {
    window_start: Option<Instant>,
    shared: u64,
    per_key: HashMap<u64, u64>,
}

impl RateLimiter {
    /// A limiter for `limit` per `window`.
    pub fn new(limit: u64, window: Duration) -> Self {
        RateLimiter {
            limit,
            window,
            state: Mutex::new(RateState {
                window_start: None,
                shared: 0,
                per_key: HashMap::new(),
            }),
        }
    }

    /// Admits one item (of key hash `key`, `None` = the shared budget) at `now`.
    pub fn admit(&self, key: Option<u64>, now: Instant) -> bool {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let expired = s
            .window_start
            .is_none_or(|start| now.duration_since(start) >= self.window);
        if expired {
            s.window_start = Some(now);
            s.shared = 0;
            s.per_key.clear();
        }
        let limit = self.limit;
        let count = match key {
            Some(k) if s.per_key.len() < MAX_KEYS_PER_WINDOW || s.per_key.contains_key(&k) => {
                s.per_key.entry(k).or_insert(0)
            }
            _ => &mut s.shared,
        };
        if *count < limit {
            *count += 1;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_and_encoding() {
        assert_eq!(threshold_for_percent(25.0, 4), 0xc0_0000_0000_0000);
        assert_eq!(encode_threshold(threshold_for_percent(25.0, 4), 4), "c");
        assert_eq!(encode_threshold(threshold_for_percent(50.0, 4), 4), "8");
        assert_eq!(encode_threshold(threshold_for_percent(100.0, 4), 4), "0");
        assert_eq!(threshold_for_percent(0.0, 4), MAX_THRESHOLD);
        // 10 %: 0.9 * 2^56 = e6666..., cut to 4 digits.
        assert_eq!(encode_threshold(threshold_for_percent(10.0, 4), 4), "e666");
        assert_eq!(
            encode_threshold(threshold_for_percent(10.0, 6), 6),
            "e66666"
        );
        assert_eq!(parse_threshold("c"), Some(0xc0_0000_0000_0000));
        assert_eq!(parse_threshold("xyz"), None);
        assert_eq!(parse_randomness("abc123"), None);
        assert_eq!(parse_randomness("ffffffffffffff"), Some(MASK_56));
    }

    #[test]
    fn tracestate_rewrites_only_th() {
        assert_eq!(
            write_th("ot=th:4;rv:abc123", Some("8")),
            "ot=rv:abc123;th:8"
        );
        assert_eq!(
            write_th("ot=th:c,vendor=xyz", Some("8")),
            "ot=th:8,vendor=xyz"
        );
        assert_eq!(
            write_th("vendor=xyz,ot=rv:01", Some("8")),
            "ot=rv:01;th:8,vendor=xyz"
        );
        assert_eq!(write_th("", Some("c")), "ot=th:c");
        assert_eq!(write_th("ot=th:8,a=b", None), "a=b");
        let v = read_ot("a=b, ot=rv:ffffffffffffff;th:8");
        assert_eq!(v.rv, Some(MASK_56));
        assert_eq!(v.th, Some(0x80_0000_0000_0000));
    }

    #[test]
    fn rate_limiter_windows_and_keys() {
        let l = RateLimiter::new(2, Duration::from_secs(5));
        let t0 = Instant::now();
        assert!(l.admit(None, t0));
        assert!(l.admit(None, t0));
        assert!(!l.admit(None, t0));
        assert!(l.admit(Some(7), t0));
        assert!(l.admit(Some(7), t0));
        assert!(!l.admit(Some(7), t0));
        assert!(l.admit(None, t0 + Duration::from_secs(5)));
    }

    #[test]
    fn seeded_bucket_is_the_collectors_fnv32() {
        // FNV-1a 32 of [2a 00 00 00, 01 02 .. 10] = 0x75339e9f, low 14 bits 7839
        // (computed independently of this code).
        let id: Vec<u8> = (1..=16).collect();
        assert_eq!(seeded_bucket(&id, 42), 7839);
        // 7839 < 50% (8192): kept; not below 45% (7372).
        assert!(seeded_decision(&id, 42, 50.0).0);
        assert!(!seeded_decision(&id, 42, 45.0).0);
        assert_eq!(seeded_decision(&id, 42, 50.0).1, 0x80_0000_0000_0000);
    }

    #[test]
    fn id_randomness_takes_low_56_bits() {
        let id = [
            0xaa, 0xbb, 0xcc, 0xdd, 0, 0, 0, 0, 0x02, 0xc0, 0, 0, 0, 0, 0, 0,
        ];
        assert_eq!(id_randomness(&id), 0xc0_0000_0000_0000);
    }
}
