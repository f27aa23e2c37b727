//! Arbitrary bytes into the three OTLP/JSON decoders: they must never panic, and whatever
//! they accept must re-encode to a canonical form that decodes to the same encoding again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir_api::json;
use weir_api::Signal;

fuzz_target!(|data: &[u8]| {
    for signal in Signal::ALL {
        let Ok(payload) = json::decode(signal, data) else {
            continue;
        };
        let canonical = json::encode(&payload);
        // Compare encodings, not payloads: NaN doubles never compare equal.
        let again = json::decode(signal, &canonical)
            .unwrap_or_else(|e| panic!("canonical {signal} encoding does not decode: {e}"));
        assert_eq!(
            json::encode(&again),
            canonical,
            "{signal} encoding is not stable"
        );
    }
});
