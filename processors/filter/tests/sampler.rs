#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::json;
use weir_api::otlp::logs::v1::LogRecord;
use weir_api::otlp::trace::v1::Span;
use weir_api::{Payload, Processor, SignalSet};
use weir_filter::sampler::{hash_scaled_rate, Sampler, SamplerConfig, SamplerProcessor};

fn sampler(cfg: serde_json::Value) -> Sampler {
    Sampler::new(&SamplerConfig::parse(&cfg, "processors.probabilistic_sampler").unwrap())
}

fn span_with(trace_id: Vec<u8>, trace_state: &str) -> Span {
    Span {
        trace_id,
        trace_state: trace_state.into(),
        name: "op".into(),
        ..Default::default()
    }
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// FNV-1a 32, written here from the algorithm's definition (offset basis 2166136261,
/// prime 16777619, xor then multiply per byte), independent of the crate's version.
fn fnv_reference(seed: u32, id: &[u8]) -> u32 {
    let mut h: u32 = 2_166_136_261;
    let seed_le = [
        seed as u8,
        (seed >> 8) as u8,
        (seed >> 16) as u8,
        (seed >> 24) as u8,
    ];
    for byte in seed_le.iter().chain(id) {
        h ^= *byte as u32;
        h = h.wrapping_mul(16_777_619);
    }
    h
}

#[test]
fn hash_seed_scaled_rate_uses_float32_truncation() {
    // Obtained once from a Python reimplementation of the collector's
    // `uint32(pct * percentageScaleFactor)` with both operands rounded to float32
    // (struct.pack('<f')) and the product rounded to float32, then truncated.
    let table = [
        (15.3f32, 2506u32),
        (33.33, 5460),
        (0.01, 1),
        (0.0061, 0),
        (99.99, 16382),
        (50.0, 8192),
        (100.0, 16384),
        (1.0, 163),
        (12.5, 2048),
        (66.6667, 10922),
        (250.0, 16384),
    ];
    for (pct, want) in table {
        assert_eq!(hash_scaled_rate(pct), want, "{pct}%");
    }
}

#[test]
fn hash_seed_decisions_match_vectors_from_an_independent_implementation() {
    // (seed, trace id, percentage, FNV-1a hash, kept). Produced once by a standalone
    // Python reimplementation of the Go algorithm (fnv over struct.pack('<I', seed) +
    // trace id bytes; keep when hash & 0x3fff < float32 scaled rate), not by this crate.
    let vectors = [
        (
            0u32,
            "0102030405060708090a0b0c0d0e0f10",
            50.0f32,
            0xdf24_1a25u32,
            true,
        ),
        (
            22,
            "0102030405060708090a0b0c0d0e0f10",
            15.3,
            0xd863_b443,
            false,
        ),
        (
            22,
            "4bf92f3577b34da6a3ce929d0e0e4736",
            15.3,
            0x5610_306b,
            false,
        ),
        (
            1,
            "4bf92f3577b34da6a3ce929d0e0e4736",
            50.0,
            0x5077_e6b8,
            false,
        ),
        (
            12345,
            "ffffffffffffffffffffffffffffffff",
            33.33,
            0x1d2f_9f9c,
            false,
        ),
        (
            7,
            "00000000000000000000000000000001",
            99.99,
            0xa415_f5f5,
            true,
        ),
        (
            0,
            "5b8efff798038103d269b633813fc60c",
            10.0,
            0x245d_d6df,
            false,
        ),
        (
            4_294_967_295,
            "5b8efff798038103d269b633813fc60c",
            90.0,
            0x920e_3093,
            true,
        ),
    ];
    for (seed, id, pct, hash, kept) in vectors {
        let id = hex(id);
        assert_eq!(fnv_reference(seed, &id), hash, "reference fnv for {seed}");
        assert_eq!(weir_filter::sampler::otep235::fnv1a32(seed, &id), hash);
        let s = sampler(json!({"sampling_percentage": pct, "hash_seed": seed}));
        assert_eq!(s.span(&span_with(id, "")).0, kept, "seed {seed} pct {pct}");
    }
}

#[test]
fn hash_seed_agrees_with_the_reference_on_many_ids() {
    let mut rng = SplitMix(42);
    for (seed, pct) in [(0u32, 10.0f32), (22, 15.3), (99, 50.0), (7, 0.5), (1, 99.0)] {
        let s = sampler(json!({"sampling_percentage": pct, "hash_seed": seed}));
        let scaled = hash_scaled_rate(pct);
        for _ in 0..5_000 {
            let id = rng.trace_id();
            let want = fnv_reference(seed, &id) & 0x3fff < scaled;
            assert_eq!(s.span(&span_with(id, "")).0, want);
        }
    }
}

#[test]
fn hash_seed_writes_rv_and_th_on_kept_spans() {
    let s = sampler(json!({"sampling_percentage": 50, "hash_seed": 0}));
    let id = hex("0102030405060708090a0b0c0d0e0f10");
    let (kept, ts) = s.span(&span_with(id.clone(), "vendor=a"));
    assert!(kept);
    // rv as the collector's randomnessFromBytes writes it: 16383 - (hash & 0x3fff) in bits
    // 42-55, m ^ (m << 10) with m = hash >> 18 (its top 14 bits) in bits 14-41, hash &
    // 0x3fff in bits 0-13; th: (16384 - 8192) << 42 = "8".
    let h = fnv_reference(0, &id);
    let low = u64::from(h & 0x3fff);
    let top14 = u64::from(h >> 18);
    let rv = ((16383 - low) << 42) | ((top14 ^ (top14 << 10)) << 14) | low;
    assert_eq!(
        ts.as_deref(),
        Some(format!("ot=rv:{rv:014x};th:8,vendor=a").as_str())
    );
    // The same value worked out independently from the collector's formula.
    assert_eq!(ts.unwrap(), "ot=rv:976837c4f25a25;th:8,vendor=a");
    // An arriving rv/th means OTEP 235 sampling is in use: an error, dropped when fail_closed.
    let arriving = "ot=th:0;rv:ffffffffffffff";
    assert_eq!(s.span(&span_with(id.clone(), arriving)), (false, None));
    let open = sampler(json!({"sampling_percentage": 50, "fail_closed": false}));
    assert_eq!(open.span(&span_with(id, arriving)), (true, None));
}

#[test]
fn sampling_rates_stay_within_statistical_bounds() {
    let n = 100_000u32;
    for cfg in [
        json!({"sampling_percentage": 10, "hash_seed": 3}),
        json!({"sampling_percentage": 33.3, "mode": "hash_seed"}),
        json!({"sampling_percentage": 10, "mode": "equalizing"}),
        json!({"sampling_percentage": 25, "mode": "proportional"}),
        json!({"sampling_percentage": 1, "mode": "proportional", "sampling_precision": 2}),
    ] {
        let pct = cfg["sampling_percentage"].as_f64().unwrap();
        let p = pct / 100.0;
        let s = sampler(cfg.clone());
        let mut rng = SplitMix(7);
        let kept = (0..n)
            .filter(|_| s.span(&span_with(rng.trace_id(), "")).0)
            .count() as f64;
        let expected = f64::from(n) * p;
        let sigma = (f64::from(n) * p * (1.0 - p)).sqrt();
        assert!(
            (kept - expected).abs() < 5.0 * sigma,
            "{cfg}: kept {kept}, expected {expected} ± {}",
            5.0 * sigma
        );
    }
}

/// A trace id whose W3C randomness (last 7 bytes) is `r`.
fn id_with_randomness(r: u64) -> Vec<u8> {
    let mut id = vec![0xab; 9];
    id.extend_from_slice(&r.to_be_bytes()[1..]);
    id
}

#[test]
fn equalizing_sets_threshold_and_never_raises_probability() {
    let s = sampler(json!({"sampling_percentage": 50, "mode": "equalizing"}));
    let high = id_with_randomness(0xd0_0000_0000_0000);
    let low = id_with_randomness(0x10_0000_0000_0000);
    // No arriving threshold: th:8 written, other vendors kept after it.
    assert_eq!(
        s.span(&span_with(high.clone(), "x=1")),
        (true, Some("ot=th:8,x=1".into()))
    );
    assert_eq!(s.span(&span_with(low.clone(), "x=1")), (false, None));
    // Arriving at 25% (th:c) and consistent: the lower probability is kept as it is.
    assert_eq!(s.span(&span_with(high.clone(), "ot=th:c")), (true, None));
    // Arriving at 75% (th:4): raised to th:8.
    let mid = id_with_randomness(0x90_0000_0000_0000);
    assert_eq!(
        s.span(&span_with(mid.clone(), "ot=th:4")),
        (true, Some("ot=th:8".into()))
    );
    // Inconsistent arriving threshold (R < T): an error; dropped when fail_closed.
    assert_eq!(s.span(&span_with(low.clone(), "ot=th:c")), (false, None));
    let open =
        sampler(json!({"sampling_percentage": 50, "mode": "equalizing", "fail_closed": false}));
    // Fail open: kept, with the inconsistent threshold cleared and th:0 recorded.
    assert_eq!(
        open.span(&span_with(low, "ot=th:c")),
        (true, Some("ot=th:0".into()))
    );
    // An explicit rv takes precedence over the trace id.
    let rv = "ot=rv:f0000000000000";
    assert_eq!(
        s.span(&span_with(mid, rv)),
        (true, Some("ot=rv:f0000000000000;th:8".into()))
    );
}

#[test]
fn proportional_multiplies_arriving_probability() {
    let s = sampler(json!({"sampling_percentage": 50, "mode": "proportional"}));
    // Arriving at 50% (th:8): 50% of that is 25% (th:c).
    let keep = id_with_randomness(0xc8_0000_0000_0000);
    let drop = id_with_randomness(0xa0_0000_0000_0000);
    assert_eq!(
        s.span(&span_with(keep, "ot=th:8")),
        (true, Some("ot=th:c".into()))
    );
    assert_eq!(s.span(&span_with(drop, "ot=th:8")), (false, None));
    // 10% at precision 4 and 2: the written thresholds differ only in rounding.
    let p4 = sampler(json!({"sampling_percentage": 10, "mode": "proportional"}));
    let p2 = sampler(
        json!({"sampling_percentage": 10, "mode": "proportional", "sampling_precision": 2}),
    );
    let r = id_with_randomness(0xff_0000_0000_0000);
    assert_eq!(p4.span(&span_with(r.clone(), "")).1.unwrap(), "ot=th:e666");
    assert_eq!(p2.span(&span_with(r, "")).1.unwrap(), "ot=th:e6");
}

#[test]
fn bad_tracestate_and_missing_trace_id_follow_fail_closed() {
    let closed = sampler(json!({"sampling_percentage": 100, "mode": "proportional"}));
    let open =
        sampler(json!({"sampling_percentage": 100, "mode": "proportional", "fail_closed": false}));
    let id = id_with_randomness(5);
    assert!(!closed.span(&span_with(id.clone(), "ot=th:zz")).0);
    assert_eq!(open.span(&span_with(id, "ot=th:zz")), (true, None));
    assert!(!closed.span(&span_with(vec![0; 16], "")).0);
    assert_eq!(
        open.span(&span_with(vec![0; 16], "")),
        (true, Some("ot=th:0".into()))
    );
}

#[test]
fn sampling_priority_forces_span_decisions() {
    let s = sampler(json!({"sampling_percentage": 0}));
    let mut keep = span_with(id_with_randomness(1), "");
    keep.attributes = vec![kv("sampling.priority", i(1))];
    let mut drop = span_with(id_with_randomness(u64::MAX >> 8), "");
    drop.attributes = vec![kv("sampling.priority", s_val("0"))];
    assert!(s.span(&keep).0);
    let all = sampler(json!({"sampling_percentage": 100}));
    assert!(!all.span(&drop).0);
}

fn s_val(v: &str) -> weir_api::otlp::common::v1::AnyValue {
    common::s(v)
}

fn log_with(trace_id: Vec<u8>, attrs: Vec<weir_api::otlp::common::v1::KeyValue>) -> LogRecord {
    LogRecord {
        trace_id,
        attributes: attrs,
        ..Default::default()
    }
}

fn attr(rec_changes: &[(&'static str, Option<String>)], key: &str) -> Option<String> {
    rec_changes
        .iter()
        .rev()
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| v.clone())
}

#[test]
fn logs_hash_on_trace_id_or_record_attribute() {
    let by_trace = sampler(json!({"sampling_percentage": 50, "hash_seed": 22}));
    let mut rng = SplitMix(3);
    for _ in 0..2_000 {
        let id = rng.trace_id();
        let want = fnv_reference(22, &id) & 0x3fff < 8192;
        let (kept, changes) = by_trace.log(&log_with(id.clone(), vec![]));
        assert_eq!(kept, want);
        // The decision is the one a span with the same trace id gets.
        assert_eq!(by_trace.span(&span_with(id, "")).0, want);
        if kept {
            assert_eq!(attr(&changes, "sampling.threshold").as_deref(), Some("8"));
            assert_eq!(
                attr(&changes, "sampling.randomness").map(|r| r.len()),
                Some(14)
            );
        }
    }
    let by_attr = sampler(
        json!({"sampling_percentage": 50, "hash_seed": 22, "attribute_source": "record", "from_attribute": "log.id"}),
    );
    for n in 0..2_000 {
        let value = format!("record-{n}");
        let want = fnv_reference(22, value.as_bytes()) & 0x3fff < 8192;
        let rec = log_with(rng.trace_id(), vec![kv("log.id", common::s(&value))]);
        assert_eq!(by_attr.log(&rec).0, want, "{value}");
    }
    // No trace id and no attribute: missing randomness, dropped (fail_closed).
    assert!(!by_attr.log(&log_with(vec![], vec![])).0);
}

#[test]
fn logs_sampling_priority_replaces_the_percentage() {
    let s = sampler(
        json!({"sampling_percentage": 0.0001, "mode": "equalizing", "sampling_priority": "priority"}),
    );
    let id = id_with_randomness(0x20_0000_0000_0000);
    assert!(!s.log(&log_with(id.clone(), vec![])).0);
    let (kept, changes) = s.log(&log_with(id.clone(), vec![kv("priority", i(100))]));
    assert!(kept);
    assert_eq!(attr(&changes, "sampling.threshold").as_deref(), Some("0"));
    // 50% priority: kept only when the randomness clears th:8.
    assert!(!s.log(&log_with(id, vec![kv("priority", f(50.0))])).0);
}

#[test]
fn processor_drops_and_rewrites_in_one_pass() {
    let cfg = SamplerConfig::parse(
        &json!({"sampling_percentage": 50, "mode": "equalizing"}),
        "p",
    )
    .unwrap();
    let p = SamplerProcessor::new(Sampler::new(&cfg));
    let spans: Vec<Span> = [0x90u8, 0x10, 0xf0, 0x00]
        .iter()
        .map(|top| {
            let mut sp = span_with(id_with_randomness(u64::from(*top) << 48), "");
            sp.name = format!("r{top:02x}");
            sp
        })
        .collect();
    let mut batch = traces_batch(vec![
        (vec![], "a", spans[..2].to_vec()),
        (vec![], "b", spans[2..3].to_vec()),
        (vec![], "c", spans[3..].to_vec()),
    ]);
    let before = batch.item_count();
    p.process(&mut batch).unwrap();
    assert_eq!(span_names(&batch), vec!["r90", "rf0"]);
    assert_eq!(before, 4);
    assert_eq!(batch.item_count() + 2, before);
    let Payload::Traces(req) = batch.payload() else {
        unreachable!()
    };
    // The resource whose only span was dropped is gone.
    assert_eq!(req.resource_spans.len(), 2);
    assert!(req
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
        .all(|s| s.trace_state == "ot=th:8"));

    let none = SamplerProcessor::new(sampler(json!({"sampling_percentage": 0})));
    let mut logs = logs_batch(vec![(
        vec![],
        "s",
        vec![log("a", 9, vec![]), log("b", 9, vec![])],
    )]);
    none.process(&mut logs).unwrap();
    assert_eq!(logs.item_count(), 0);
}

#[test]
fn sampler_is_offered_for_traces_and_logs_only() {
    let mut reg = weir_api::Registry::new();
    weir_filter::register(&mut reg);
    let f = reg.processors.get("probabilistic_sampler").unwrap();
    assert_eq!(
        f.signals(),
        SignalSet::of(&[weir_api::Signal::Traces, weir_api::Signal::Logs])
    );
    assert!(reg.processors.contains_key("filter"));
}
