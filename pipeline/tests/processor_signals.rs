//! A processor config that is wrong only for some signals (the `attributes` processor's
//! span-only match fields) is reported by the config check for each pipeline of such a
//! signal, together with every other problem of the config.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use weir::config::{parse_document, validate};

#[test]
fn signal_specific_problems_are_reported_per_pipeline_with_the_rest() {
    let doc = parse_document(
        r#"
receivers:
  otlp:
    protocols:
      grpc:
processors:
  attributes/spans_only:
    include:
      match_type: strict
      services: [auth]
    actions:
      - {key: password, action: delete}
  transform:
    log_statements:
      - 'set(log.attributes["x"], ParseXML(log.body))'
exporters:
  debug:
service:
  pipelines:
    traces:
      receivers: [otlp]
      processors: [attributes/spans_only]
      exporters: [debug]
    logs:
      receivers: [otlp]
      processors: [attributes/spans_only, transform]
      exporters: [debug]
    logs/2:
      receivers: [otlp]
      processors: [attributes/spans_only]
      exporters: [debug]
"#,
    )
    .unwrap();
    let errors = match validate(&doc, &weir::registry()) {
        Ok(_) => panic!("the config must be rejected"),
        Err(e) => e,
    };
    let got: Vec<String> = errors.0.iter().map(|e| e.to_string()).collect();
    assert_eq!(
        got,
        vec![
            "processors.transform.log_statements[0]: function \"ParseXML\" is not supported by Weir's OTTL (supported: IsMatch, IsRootSpan, HasAttrKeyOnDatapoint, HasAttrOnDatapoint, Len, Concat, String, Int, Double, ConvertCase, ToLowerCase, ToUpperCase, SHA256, Substring, HasPrefix, HasSuffix, IsString, IsInt, IsDouble, IsBool, IsMap, IsList, Split, ParseJSON) in statement \"set(log.attributes[\\\"x\\\"], ParseXML(log.body))\"",
            "processors.attributes/spans_only.include: services, span_names, and span_kinds are not valid for log records (in the logs pipeline \"logs\")",
            "processors.attributes/spans_only.include: for logs at least one of \"attributes\", \"libraries\", \"resources\", \"log_bodies\", \"log_severity_texts\" or \"log_severity_number\" must be specified (in the logs pipeline \"logs\")",
        ]
    );
}
