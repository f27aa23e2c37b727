//! The `attributes` processor's match properties (include/exclude by service, span name,
//! log body and severity, metric name, client metadata), and the `resource` processor.

mod common;

use common::attributes::*;
use common::*;
use weir_api::{BatchContext, Payload, Processor};
use weir_transform::attributes::AttributesPlan;
use weir_transform::resource::ResourceProcessor;

#[test]
fn selective_processing_include_then_exclude() {
    // The Collector's documented example: spans 1 and 2 are processed, 3 and 4 are not.
    let p = attributes(
        r#"
include:
  match_type: strict
  services: ["svcA", "svcB"]
exclude:
  match_type: strict
  attributes:
    - { key: redact_trace, value: false}
actions:
  - {key: credit_card, action: delete}
"#,
    );
    let svc = |n: &str| vec![kv("service.name", s(n))];
    let mut batch = traces_batch(vec![
        (
            svc("svcB"),
            "lib",
            vec![span(
                "1",
                0,
                0,
                vec![
                    kv("env", s("production")),
                    kv("credit_card", s("1234")),
                    kv("redact_trace", s("false")),
                ],
            )],
        ),
        (
            svc("svcA"),
            "lib",
            vec![span(
                "2",
                0,
                0,
                vec![kv("credit_card", s("1234")), kv("redact_trace", b(true))],
            )],
        ),
        (
            svc("svcB"),
            "lib",
            vec![span(
                "3",
                0,
                0,
                vec![kv("credit_card", s("1234")), kv("redact_trace", b(false))],
            )],
        ),
        (
            svc("svcC"),
            "lib",
            vec![span("4", 0, 0, vec![kv("credit_card", s("1234"))])],
        ),
    ]);
    p.process(&mut batch).expect("processes");
    assert_eq!(
        span_attrs(&batch),
        vec![
            vec!["env=production", "redact_trace=false"],
            vec!["redact_trace=true"],
            vec!["credit_card=1234", "redact_trace=false"],
            vec!["credit_card=1234"],
        ]
    );
}

#[test]
fn regexp_services_and_span_names() {
    let p = attributes(
        r#"
include: {match_type: regexp, services: ["auth.*"]}
exclude: {match_type: regexp, span_names: ["login.*"]}
actions:
  - {key: password, action: update, value: obfuscated}
  - {key: token, action: delete}
"#,
    );
    let attrs = || vec![kv("password", s("p")), kv("token", s("t"))];
    let mut batch = traces_batch(vec![
        (
            vec![kv("service.name", s("auth-svc"))],
            "lib",
            vec![span("get", 0, 0, attrs()), span("login-x", 0, 0, attrs())],
        ),
        (
            vec![kv("service.name", s("billing"))],
            "lib",
            vec![span("get", 0, 0, attrs())],
        ),
    ]);
    p.process(&mut batch).expect("processes");
    assert_eq!(
        span_attrs(&batch),
        vec![
            vec!["password=obfuscated"],
            vec!["password=p", "token=t"],
            vec!["password=p", "token=t"],
        ]
    );
}

#[test]
fn logs_by_body_and_severity_text() {
    let p = attributes(
        r#"
include:
  match_type: regexp
  log_bodies: ["AUTH.*"]
  log_severity_texts: ["debug.*"]
actions:
  - {key: password, action: update, value: obfuscated}
"#,
    );
    let mut l1 = log("AUTH ok", 5, vec![kv("password", s("p"))]);
    l1.severity_text = "debug".into();
    let mut l2 = log("AUTH ok", 9, vec![kv("password", s("p"))]);
    l2.severity_text = "info".into();
    let mut l3 = log("other", 5, vec![kv("password", s("p"))]);
    l3.severity_text = "debug".into();
    let mut batch = logs_batch(vec![(vec![], "lib", vec![l1, l2, l3])]);
    p.process(&mut batch).expect("processes");
    assert_eq!(
        log_attrs(&batch),
        vec![
            vec!["password=obfuscated"],
            vec!["password=p"],
            vec!["password=p"]
        ]
    );
}

#[test]
fn metrics_data_points_by_metric_name() {
    let p = attributes(
        r#"
include: {match_type: strict, metric_names: [requests]}
actions:
  - {key: host, action: delete}
  - {key: env, value: prod, action: insert}
"#,
    );
    let mut batch = metrics_batch(vec![(
        vec![],
        "lib",
        vec![
            sum(
                "requests",
                vec![
                    int_point(1, vec![kv("host", s("a"))]),
                    int_point(2, vec![kv("host", s("b")), kv("env", s("dev"))]),
                ],
            ),
            gauge("other", vec![int_point(3, vec![kv("host", s("c"))])]),
        ],
    )]);
    p.process(&mut batch).expect("processes");
    let Payload::Metrics(req) = batch.payload() else {
        panic!()
    };
    let ms = &req.resource_metrics[0].scope_metrics[0].metrics;
    let points = |m: &weir_api::otlp::metrics::v1::Metric| -> Vec<Vec<String>> {
        use weir_api::otlp::metrics::v1::metric::Data;
        match &m.data {
            Some(Data::Sum(s)) => s
                .data_points
                .iter()
                .map(|p| render(&p.attributes))
                .collect(),
            Some(Data::Gauge(g)) => g
                .data_points
                .iter()
                .map(|p| render(&p.attributes))
                .collect(),
            _ => panic!(),
        }
    };
    assert_eq!(points(&ms[0]), vec![vec!["env=prod"], vec!["env=dev"]]);
    assert_eq!(points(&ms[1]), vec![vec!["host=c"]]);
}

#[test]
fn from_context_reads_client_metadata() {
    let p = attributes(
        r#"
actions:
  - {key: origin, from_context: metadata.origin, action: insert}
  - {key: tenant, from_context: x-tenant, action: upsert}
  - {key: enduser.id, from_context: auth.subject, action: insert}
"#,
    );
    let mut batch = logs_batch(vec![(vec![], "lib", vec![log("x", 9, vec![])])]);
    batch.context = BatchContext {
        metadata: Some(std::sync::Arc::new(vec![
            ("origin".into(), "edge-1".into()),
            ("x-tenant".into(), "a".into()),
            ("x-tenant".into(), "b".into()),
        ])),
        ..BatchContext::default()
    };
    p.process(&mut batch).expect("processes");
    assert_eq!(log_attrs(&batch), vec![vec!["origin=edge-1", "tenant=a;b"]]);
}

#[test]
fn resource_processor_collector_shape_and_actions() {
    // Shaped like processor/resourceprocessor/testdata/config.yaml.
    let cfg = yaml(
        r#"
resource:
  attributes:
    - key: cloud.availability_zone
      value: "zone-1"
      action: upsert
    - key: k8s.cluster.name
      from_attribute: k8s-cluster
      action: insert
    - key: redundant-attribute
      action: delete
resource/invalid: {}
"#,
    );
    let p = ResourceProcessor::from_config(&cfg["resource"], "processors.resource").expect("valid");
    let e = ResourceProcessor::from_config(&cfg["resource/invalid"], "processors.resource/invalid")
        .err()
        .expect("empty is invalid");
    assert_eq!(
        e.to_string(),
        "processors.resource/invalid.attributes: missing required field \"attributes\""
    );
    let mut batch = traces_batch(vec![
        (
            vec![
                kv("k8s-cluster", s("c1")),
                kv("redundant-attribute", s("x")),
            ],
            "lib",
            vec![span("a", 0, 0, vec![])],
        ),
        (
            vec![kv("cloud.availability_zone", s("old"))],
            "lib",
            vec![span("b", 0, 0, vec![])],
        ),
    ]);
    p.process(&mut batch).expect("processes");
    assert_eq!(
        resource_attrs(&batch),
        vec![
            vec![
                "cloud.availability_zone=zone-1",
                "k8s-cluster=c1",
                "k8s.cluster.name=c1"
            ],
            vec!["cloud.availability_zone=zone-1"],
        ]
    );
    // Span attributes are untouched.
    assert_eq!(span_attrs(&batch), vec![Vec::<String>::new(), vec![]]);
}

#[test]
fn span_only_fields_fail_the_logs_build() {
    let plan = AttributesPlan::parse(
        &yaml(
            "{include: {match_type: strict, services: [a]}, actions: [{key: a, action: delete}]}",
        ),
        "processors.attributes",
    )
    .expect("valid for spans");
    assert!(plan.traces.is_ok());
    let e = plan.logs.as_ref().expect_err("services are not for logs");
    assert_eq!(
        e.to_string(),
        "processors.attributes.include: services, span_names, and span_kinds are not valid for log records\n\
         processors.attributes.include: for logs at least one of \"attributes\", \"libraries\", \"resources\", \"log_bodies\", \"log_severity_texts\" or \"log_severity_number\" must be specified"
    );
}
