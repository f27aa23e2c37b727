//! Arbitrary bytes into the jaeger receiver's decoders: the Thrift binary `Batch` of
//! thrift_http, the agent's compact and binary `emitBatch` packets, and gRPC's
//! `PostSpansRequest`. They must never panic (nesting and lengths are bounded by the
//! reader); an error says what could not be read (`invalid ...` or an unsupported call); an
//! accepted body gives spans with 16-byte trace ids and 8-byte span ids, never more spans
//! than it has bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir_api::otlp::collector::trace::v1::ExportTraceServiceRequest;
use weir_receivers::jaeger::thrift::Protocol;
use weir_receivers::jaeger::{decode_agent_packet, decode_grpc, decode_thrift_http};

fn check(what: &str, data: &[u8], r: Result<ExportTraceServiceRequest, String>) {
    match r {
        Ok(req) => {
            let spans: Vec<_> = req
                .resource_spans
                .iter()
                .flat_map(|rs| &rs.scope_spans)
                .flat_map(|ss| &ss.spans)
                .collect();
            assert!(spans.len() <= data.len(), "{what}: more spans than bytes");
            for s in spans {
                assert_eq!(s.trace_id.len(), 16, "{what}");
                assert_eq!(s.span_id.len(), 8, "{what}");
                assert!(s.parent_span_id.is_empty() || s.parent_span_id.len() == 8);
            }
        }
        Err(e) => assert!(
            e.starts_with("invalid ") || e.starts_with("unsupported agent call"),
            "{what}: {e}"
        ),
    }
}

fuzz_target!(|data: &[u8]| {
    check("thrift_http", data, decode_thrift_http(data));
    check("compact", data, decode_agent_packet(data, Protocol::Compact));
    check("binary", data, decode_agent_packet(data, Protocol::Binary));
    check("grpc", data, decode_grpc(data));
});
