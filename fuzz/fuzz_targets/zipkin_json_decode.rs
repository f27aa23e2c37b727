//! Arbitrary bytes into the zipkin receiver's v2 and v1 JSON decoders (with and without
//! `parse_string_tags`): they must never panic; an accepted body must yield exactly one
//! span per element of its JSON array, and its error, when refused, must say which decoder.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir_receivers::zipkin::{decode_body, Format};

fuzz_target!(|data: &[u8]| {
    let elements = serde_json::from_slice::<Vec<serde_json::Value>>(data)
        .ok()
        .map(|v| v.len());
    for format in [Format::V2Json, Format::V1Json] {
        for parse_string_tags in [false, true] {
            match decode_body(format, data, parse_string_tags) {
                Ok(request) => {
                    let spans: usize = request
                        .resource_spans
                        .iter()
                        .flat_map(|rs| &rs.scope_spans)
                        .map(|ss| ss.spans.len())
                        .sum();
                    assert_eq!(Some(spans), elements, "{format:?}: span count");
                }
                Err(e) => assert!(e.starts_with("invalid Zipkin v"), "{format:?}: {e}"),
            }
        }
    }
});
