//! Arbitrary bytes into the OTLP protobuf decoder of every signal (`Batch::decode`): it must
//! never panic; what it accepts must encode as valid OTLP/JSON, and as protobuf again. A
//! request of any signal is only checked on receipt and decoded when read: the check must
//! accept exactly what prost accepts, with prost's item count.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use prost::Message;
use weir_api::otlp::collector::logs::v1::ExportLogsServiceRequest;
use weir_api::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use weir_api::otlp::collector::trace::v1::ExportTraceServiceRequest;
use weir_api::{json, Batch, Payload, Signal};

/// prost's own verdict on `data` as a request of `signal`.
fn prost_decode(signal: Signal, data: &[u8]) -> Option<Payload> {
    match signal {
        Signal::Logs => ExportLogsServiceRequest::decode(data).ok().map(Payload::Logs),
        Signal::Traces => ExportTraceServiceRequest::decode(data)
            .ok()
            .map(Payload::Traces),
        Signal::Metrics => ExportMetricsServiceRequest::decode(data)
            .ok()
            .map(Payload::Metrics),
    }
}

fuzz_target!(|data: &[u8]| {
    for signal in Signal::ALL {
        let decoded = Batch::decode(signal, Bytes::copy_from_slice(data));
        {
            match (&decoded, prost_decode(signal, data)) {
                (Ok(batch), Some(payload)) => {
                    assert!(!batch.is_decoded(), "{signal}: the check refused what prost accepts");
                    assert_eq!(batch.item_count(), payload.item_count(), "{signal}: item count");
                    assert!(
                        batch.payload().encode_to_vec() == payload.encode_to_vec(),
                        "{signal}: lazily decoded payload differs"
                    );
                }
                (Err(_), None) => {}
                (Ok(_), None) => panic!("{signal}: the check accepted what prost refuses"),
                (Err(e), Some(_)) => panic!("{signal}: refused what prost accepts: {e}"),
            }
        }
        let Ok(batch) = decoded else {
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
