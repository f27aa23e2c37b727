//! Arbitrary bytes into the zipkin receiver's v2 protobuf decoder: it must never panic; an
//! accepted body yields one span per `ListOfSpans.spans` entry, and the spans re-encoded by
//! Weir's zipkin exporter decode again to the same number of spans.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir_api::{zipkin_proto, Payload};
use weir_receivers::zipkin::{decode_body, Format};

fuzz_target!(|data: &[u8]| {
    let listed = zipkin_proto::decode(data).ok().map(|l| l.spans.len());
    match decode_body(Format::V2Proto, data, true) {
        Ok(request) => {
            let payload = Payload::Traces(request);
            assert_eq!(Some(payload.item_count()), listed, "span count");
            let spans = weir_exporters::zipkin::to_zipkin(&payload, "fuzz")
                .expect("decoded spans have valid ids");
            let again = weir_exporters::zipkin::encode_proto(&spans);
            let back = decode_body(Format::V2Proto, &again, true)
                .unwrap_or_else(|e| panic!("re-encoded spans do not decode: {e}"));
            assert_eq!(Payload::Traces(back).item_count(), payload.item_count());
        }
        Err(e) => assert!(e.starts_with("invalid Zipkin v2"), "{e}"),
    }
});
