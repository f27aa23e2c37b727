//! Unit tests of the views: reading fields, attributes, records and spans from bytes, and
//! malformed bytes reading as absent.

use prost::Message;

use super::*;
use crate::otlp::collector::trace::v1::ExportTraceServiceRequest;
use crate::otlp::common::v1::{any_value, AnyValue, KeyValue};
use crate::otlp::trace::v1::{ResourceSpans, ScopeSpans, Span};

#[test]
fn span_view_reads_the_same_fields_prost_decodes() {
    let span = Span {
        trace_id: vec![9; 16],
        span_id: vec![3; 8],
        name: "GET /x".into(),
        kind: 2,
        attributes: vec![KeyValue {
            key: "http.route".into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue("/x".into())),
            }),
            ..Default::default()
        }],
        ..Default::default()
    };
    let bytes = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: vec![span.clone(), Span::default()],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec();
    let mut views = Vec::new();
    each_item(&bytes, &mut |item| {
        views.push(SpanView::new(&[], &[], item));
        Ok(())
    })
    .unwrap();
    assert_eq!(views.len(), 2);
    assert_eq!(views[0].trace_id(), &span.trace_id[..]);
    assert_eq!(views[0].span_id(), &span.span_id[..]);
    assert_eq!(views[0].name(), "GET /x");
    assert_eq!(views[0].kind(), 2);
    assert_eq!(views[0].attribute_str("http.route"), Some("/x"));
    assert_eq!(views[0].attribute_str("missing"), None);
    assert_eq!(views[1].name(), "");
    assert!(views[1].trace_id().is_empty());
}

#[test]
fn truncated_input_is_malformed() {
    let mut pos = 0;
    assert_eq!(varint(&[0x80, 0x80], &mut pos), Err(MalformedProtobuf));
    let mut n = 0;
    assert_eq!(
        each_item(&[0x0a, 0x05, 0x12], &mut |_| {
            n += 1;
            Ok(())
        }),
        Err(MalformedProtobuf)
    );
}
