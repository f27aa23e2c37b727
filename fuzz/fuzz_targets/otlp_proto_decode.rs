//! Arbitrary bytes into the OTLP protobuf decoder of every signal (`Batch::decode`): it must
//! never panic; what it accepts must encode as valid OTLP/JSON, and as protobuf again.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use weir_api::{json, Batch, Signal};

fuzz_target!(|data: &[u8]| {
    for signal in Signal::ALL {
        let Ok(batch) = Batch::decode(signal, Bytes::copy_from_slice(data)) else {
            continue;
        };
        let _ = batch.item_count();
        let encoded = json::encode(batch.payload());
        if let Err(e) = serde_json::from_slice::<serde_json::Value>(&encoded) {
            panic!("{signal} JSON encoding is not JSON: {e}");
        }
        // Ids of the wrong length are legal protobuf but not legal OTLP/JSON, so the JSON
        // decoder may refuse them; when it accepts, the encoding must be stable.
        if let Ok(payload) = json::decode(signal, &encoded) {
            assert_eq!(
                json::encode(&payload),
                encoded,
                "{signal} JSON round trip changed"
            );
        }
        let reencoded = batch.payload().encode_to_vec();
        let redecoded = Batch::decode(signal, Bytes::from(reencoded));
        assert!(
            redecoded.is_ok(),
            "{signal} protobuf re-encoding does not decode"
        );
    }
});
