//! Arbitrary bytes as an OTLP metrics export request, cut with
//! `weir_api::metric_splice::retain_metric_points` (how a metrics batch applies point verdicts
//! to the bytes it arrived as), against the decoded path (prost decode, drop the points,
//! prune empty metrics, scopes and resources).
//!
//! Input: byte 0 is the drop pattern (point `i` is kept when bit `i % 8` is set); the rest is
//! the request.
//!
//! Properties: never panics; a refusal names what was wrong at an offset inside the request;
//! for a request prost reads, the cut is refused only for a group (which prost skips in
//! unknown fields), and otherwise decodes to the decoded path's request (compared by prost's
//! encoding of both, so NaN values compare by their bits) with its point count,
//! byte for byte its encoding when the input was prost's own encoding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use weir_api::metric_splice::retain_metric_points;
use weir_api::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use weir_api::otlp::metrics::v1::metric::Data;
use weir_api::Payload;

fuzz_target!(|data: &[u8]| {
    let Some((&pattern, request)) = data.split_first() else {
        return;
    };
    let decoded = ExportMetricsServiceRequest::decode(request).ok();
    let points = decoded
        .as_ref()
        .map_or(request.len(), |r| Payload::Metrics(r.clone()).item_count());
    let keep: Vec<bool> = (0..points).map(|i| pattern >> (i % 8) & 1 == 1).collect();
    let cut = retain_metric_points(request, &keep);
    let Some(mut want) = decoded else {
        if let Err(e) = cut {
            assert!(e.offset < request.len(), "{e}");
        }
        return;
    };
    let cut = match cut {
        Ok(cut) => cut,
        Err(e) => {
            assert!(
                e.what.starts_with("a group"),
                "prost reads it, the cut refused: {e}"
            );
            return;
        }
    };
    let canonical = want.encode_to_vec() == request;
    let mut flags = keep.iter().copied();
    for m in want
        .resource_metrics
        .iter_mut()
        .flat_map(|rm| &mut rm.scope_metrics)
        .flat_map(|sm| &mut sm.metrics)
    {
        let mut keep = || flags.next().unwrap_or(true);
        match &mut m.data {
            None => {}
            Some(Data::Gauge(g)) => g.data_points.retain(|_| keep()),
            Some(Data::Sum(s)) => s.data_points.retain(|_| keep()),
            Some(Data::Histogram(h)) => h.data_points.retain(|_| keep()),
            Some(Data::ExponentialHistogram(h)) => h.data_points.retain(|_| keep()),
            Some(Data::Summary(s)) => s.data_points.retain(|_| keep()),
        }
    }
    let mut want = Payload::Metrics(want);
    want.prune_empty();
    let got = ExportMetricsServiceRequest::decode(cut.bytes.as_slice())
        .unwrap_or_else(|e| panic!("the cut does not decode: {e}"));
    // Compared as prost's encoding of both: a NaN point value is unequal to itself as a
    // struct, while the same bits encode the same.
    assert_eq!(
        Payload::Metrics(got).encode_to_vec(),
        want.encode_to_vec(),
        "the cut differs from the decoded path"
    );
    assert_eq!(cut.points, want.item_count(), "point count");
    if canonical {
        assert_eq!(cut.bytes, want.encode_to_vec(), "not byte for byte");
    }
});
