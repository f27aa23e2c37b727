#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The fuzz targets' properties (fuzz/fuzz_targets), checked on stable over the committed seed
//! corpus and over seeded byte-level mutations of it, so that CI exercises the decoders on
//! malformed input without cargo-fuzz.

use std::fs;
use std::path::PathBuf;

use bytes::Bytes;
use weir_api::{json, Batch, Signal};

fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, fs::read(&path).unwrap())
        })
        .collect();
    files.sort();
    files
}

/// The otlp_json_decode property: no panic; what decodes re-encodes stably.
fn check_json(data: &[u8]) -> usize {
    let mut accepted = 0;
    for signal in Signal::ALL {
        let Ok(payload) = json::decode(signal, data) else {
            continue;
        };
        accepted += 1;
        let canonical = json::encode(&payload);
        let again = json::decode(signal, &canonical).unwrap();
        assert_eq!(json::encode(&again), canonical);
    }
    accepted
}

/// The otlp_proto_decode property: no panic; what decodes encodes as valid, stable JSON.
fn check_proto(data: &[u8]) -> usize {
    let mut accepted = 0;
    for signal in Signal::ALL {
        let Ok(batch) = Batch::decode(signal, Bytes::copy_from_slice(data)) else {
            continue;
        };
        accepted += 1;
        let encoded = json::encode(batch.payload());
        serde_json::from_slice::<serde_json::Value>(&encoded).unwrap();
        if let Ok(payload) = json::decode(signal, &encoded) {
            assert_eq!(json::encode(&payload), encoded);
        }
    }
    accepted
}

/// xorshift64*: a fixed-seed generator, so a failure reproduces.
struct Mutator(u64);

impl Mutator {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// Flips, overwrites, inserts or deletes a few bytes; JSON seeds also get structural
    /// characters, so that the decoder sees wrong types, not only broken syntax.
    fn mutate(&mut self, seed: &[u8]) -> Vec<u8> {
        const JSON_BYTES: &[u8] = b"{}[]\":,0123456789-.eE\\ntfaluNI";
        let mut data = seed.to_vec();
        for _ in 0..1 + self.below(4) {
            let at = self.below(data.len() + 1);
            match self.below(4) {
                0 if at < data.len() => data[at] ^= 1 << self.below(8),
                1 if at < data.len() => data[at] = JSON_BYTES[self.below(JSON_BYTES.len())],
                2 => data.insert(at, self.next() as u8),
                _ if at < data.len() => {
                    data.remove(at);
                }
                _ => data.push(b'"'),
            }
        }
        data
    }
}

#[test]
fn json_seed_corpus_decodes_and_round_trips() {
    let seeds = corpus("otlp_json_decode");
    assert!(seeds.len() >= 4);
    for (name, data) in &seeds {
        // Every seed is a valid request of its signal (and "{}" of all three).
        assert!(check_json(data) >= 1, "{name} decodes as no signal");
    }
}

#[test]
fn proto_seed_corpus_decodes_and_round_trips() {
    let seeds = corpus("otlp_proto_decode");
    assert!(seeds.len() >= 4);
    for (name, data) in &seeds {
        assert!(check_proto(data) >= 1, "{name} decodes as no signal");
    }
}

#[test]
fn mutated_json_never_panics() {
    let seeds = corpus("otlp_json_decode");
    let mut mutator = Mutator(0x5eed_0f0e_1e00_0001);
    let mut accepted = 0;
    for round in 0..3000 {
        let (_, seed) = &seeds[round % seeds.len()];
        accepted += check_json(&mutator.mutate(seed));
    }
    // Some mutations keep the document valid (e.g. inside string values).
    assert!(accepted > 0);
}

#[test]
fn mutated_protobuf_never_panics() {
    let seeds = corpus("otlp_proto_decode");
    let mut mutator = Mutator(0x5eed_0f0e_1e00_0002);
    for round in 0..3000 {
        let (_, seed) = &seeds[round % seeds.len()];
        check_proto(&mutator.mutate(seed));
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let mut body = String::from(r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":"#);
    for _ in 0..10_000 {
        body.push_str(r#"{"arrayValue":{"values":["#);
    }
    let err = json::decode_logs(body.as_bytes()).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("invalid JSON: recursion limit exceeded"),
        "{err}"
    );
}
