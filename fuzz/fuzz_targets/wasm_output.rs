//! What a WASM guest writes back, through the host's reader (`weir_wasm::fuzzing`, the code
//! the processor runs after a guest call), against a batch that the guest was given.
//!
//! Input: byte 0 picks the signal (`& 3`: logs, traces, metrics) and the answer kind
//! (`& 4`: replacement bytes, else verdicts); bytes 1-2 are the little-endian length of the
//! input batch (OTLP protobuf) that follows; the rest is the guest's output buffer.
//!
//! Properties: never panics; a rejected answer is a malformed or oversized output with a
//! detail, and leaves the batch exactly as it was; an accepted answer never yields more items
//! than the input had; verdicts keep exactly the items marked 1, in order, and an all-keep
//! answer leaves the original bytes untouched; a replacement becomes the batch (its context
//! kept); whatever is accepted encodes to protobuf that decodes to as many items again.
#![no_main]

use std::sync::Arc;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use prost::Message;
use weir_api::otlp::metrics::v1::metric::Data;
use weir_api::{Batch, Payload, Signal};
use weir_wasm::fuzzing::apply_output;
use weir_wasm::FailureCause;

/// Each item (log record, span, data point) encoded on its own, in canonical order.
fn items(payload: &Payload) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    match payload {
        Payload::Logs(r) => {
            for sl in r.resource_logs.iter().flat_map(|rl| &rl.scope_logs) {
                out.extend(sl.log_records.iter().map(Message::encode_to_vec));
            }
        }
        Payload::Traces(r) => {
            for ss in r.resource_spans.iter().flat_map(|rs| &rs.scope_spans) {
                out.extend(ss.spans.iter().map(Message::encode_to_vec));
            }
        }
        Payload::Metrics(r) => {
            let metrics = r
                .resource_metrics
                .iter()
                .flat_map(|rm| &rm.scope_metrics)
                .flat_map(|sm| &sm.metrics);
            for m in metrics {
                let tagged = |tag: u8, bytes: Vec<u8>| {
                    let mut v = vec![tag];
                    v.extend(m.name.as_bytes());
                    v.push(0);
                    v.extend(bytes);
                    v
                };
                match &m.data {
                    None => {}
                    Some(Data::Gauge(g)) => {
                        out.extend(g.data_points.iter().map(|p| tagged(1, p.encode_to_vec())))
                    }
                    Some(Data::Sum(s)) => {
                        out.extend(s.data_points.iter().map(|p| tagged(2, p.encode_to_vec())))
                    }
                    Some(Data::Histogram(h)) => {
                        out.extend(h.data_points.iter().map(|p| tagged(3, p.encode_to_vec())))
                    }
                    Some(Data::ExponentialHistogram(h)) => {
                        out.extend(h.data_points.iter().map(|p| tagged(4, p.encode_to_vec())))
                    }
                    Some(Data::Summary(s)) => {
                        out.extend(s.data_points.iter().map(|p| tagged(5, p.encode_to_vec())))
                    }
                }
            }
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let signal = match data[0] & 3 {
        0 => Signal::Logs,
        1 => Signal::Traces,
        2 => Signal::Metrics,
        _ => return,
    };
    let replacement = data[0] & 4 != 0;
    let input_len = usize::from(u16::from_le_bytes([data[1], data[2]]));
    let rest = &data[3..];
    if rest.len() < input_len {
        return;
    }
    let (input, output) = rest.split_at(input_len);
    let Ok(mut batch) = Batch::decode(signal, Bytes::copy_from_slice(input)) else {
        return;
    };
    let metadata = Arc::new(vec![("fuzz".to_string(), "kept".to_string())]);
    batch.context.metadata = Some(metadata.clone());
    let before_items = items(batch.payload());
    let before_encoding = batch.payload().encode_to_vec();
    let before = batch.item_count();
    assert_eq!(before_items.len(), before);

    match apply_output(&mut batch, replacement, output) {
        Err((cause, detail)) => {
            assert!(
                matches!(
                    cause,
                    FailureCause::MalformedOutput | FailureCause::OversizedOutput
                ),
                "rejected as {cause}: {detail}"
            );
            assert!(!detail.is_empty());
            assert_eq!(
                batch.item_count(),
                before,
                "a rejected answer changed the batch"
            );
            assert_eq!(
                batch.payload().encode_to_vec(),
                before_encoding,
                "a rejected answer changed the batch"
            );
            assert!(batch.original_bytes().is_some(), "original bytes lost");
        }
        Ok(()) => {
            let after = batch.item_count();
            assert!(after <= before, "{after} items out of {before}");
            assert_eq!(batch.signal(), signal);
            assert_eq!(
                batch.context.metadata,
                Some(metadata),
                "the batch context was lost"
            );
            if replacement {
                let expected = Batch::decode(signal, Bytes::copy_from_slice(output))
                    .unwrap_or_else(|e| panic!("accepted a replacement that does not decode: {e}"));
                assert_eq!(
                    batch.payload().encode_to_vec(),
                    expected.payload().encode_to_vec(),
                    "the replacement is not what the guest wrote"
                );
            } else {
                assert_eq!(output.len(), before, "accepted a wrong number of verdicts");
                let kept: Vec<Vec<u8>> = before_items
                    .into_iter()
                    .zip(output)
                    .filter(|(_, v)| **v == 1)
                    .map(|(item, _)| item)
                    .collect();
                assert_eq!(
                    items(batch.payload()),
                    kept,
                    "verdicts kept the wrong items"
                );
                if output.iter().all(|v| *v == 1) {
                    assert_eq!(
                        batch.original_bytes().map(|b| b.as_ref()),
                        Some(input),
                        "an all-keep answer lost the original bytes"
                    );
                }
            }
            let again = Batch::decode(signal, batch.to_protobuf())
                .unwrap_or_else(|e| panic!("the result does not decode: {e}"));
            assert_eq!(again.item_count(), after);
        }
    }
});
