//! The `attributes` and `resource` processors: the Collector's test-data config shapes load,
//! and each action and match property changes exactly what it should.

// The OTLP builders the filter tests use (one copy for both crates).
#[path = "../../filter/tests/common/mod.rs"]
mod common;

use common::*;
use weir_api::otlp::common::v1::{any_value, AnyValue, KeyValue};
use weir_api::{Batch, BatchContext, Payload, Processor};
use weir_transform::attributes::{AttributesPlan, AttributesProcessor};
use weir_transform::resource::ResourceProcessor;

/// `key=value` pairs, sorted; non-strings are marked (`7i`, `1.5f`, `true`).
fn render(attrs: &[KeyValue]) -> Vec<String> {
    let mut out: Vec<String> = attrs
        .iter()
        .map(|kv| format!("{}={}", kv.key, show(kv.value.as_ref())))
        .collect();
    out.sort();
    out
}

fn show(v: Option<&AnyValue>) -> String {
    match v.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => format!("{i}i"),
        Some(any_value::Value::DoubleValue(d)) => format!("{d}f"),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::ArrayValue(a)) => {
            let items: Vec<String> = a.values.iter().map(|x| show(Some(x))).collect();
            format!("[{}]", items.join(","))
        }
        other => format!("{other:?}"),
    }
}

fn span_attrs(batch: &Batch) -> Vec<Vec<String>> {
    let Payload::Traces(req) = batch.payload() else {
        panic!("not traces")
    };
    req.resource_spans
        .iter()
        .flat_map(|rs| &rs.scope_spans)
        .flat_map(|ss| &ss.spans)
        .map(|s| render(&s.attributes))
        .collect()
}

fn log_attrs(batch: &Batch) -> Vec<Vec<String>> {
    let Payload::Logs(req) = batch.payload() else {
        panic!("not logs")
    };
    req.resource_logs
        .iter()
        .flat_map(|r| &r.scope_logs)
        .flat_map(|s| &s.log_records)
        .map(|l| render(&l.attributes))
        .collect()
}

fn resource_attrs(batch: &Batch) -> Vec<Vec<String>> {
    let res = match batch.payload() {
        Payload::Logs(r) => r
            .resource_logs
            .iter()
            .map(|x| x.resource.clone())
            .collect::<Vec<_>>(),
        Payload::Traces(r) => r
            .resource_spans
            .iter()
            .map(|x| x.resource.clone())
            .collect(),
        Payload::Metrics(r) => r
            .resource_metrics
            .iter()
            .map(|x| x.resource.clone())
            .collect(),
    };
    res.iter()
        .map(|r| render(r.as_ref().map_or(&[][..], |r| &r.attributes)))
        .collect()
}

fn attributes(src: &str) -> AttributesProcessor {
    AttributesProcessor::from_config(&yaml(src), "processors.attributes").expect("config is valid")
}

fn errors_of(src: &str) -> Vec<String> {
    match AttributesPlan::parse(&yaml(src), "processors.attributes") {
        Ok(_) => panic!("config should be rejected"),
        Err(e) => e.0.iter().map(|e| e.to_string()).collect(),
    }
}

/// Shaped like the Collector's `processor/attributesprocessor/testdata/config.yaml`: every
/// entry must load, for the signals the Collector accepts it for.
const COLLECTOR_SHAPED: &str = r#"
attributes/insert:
  actions:
    - key: "attribute1"
      value: 123
      action: insert
    - key: "string key"
      from_attribute: "anotherkey"
      action: insert
attributes/regex_insert:
  actions:
    - key: "http.url"
      # The Collector's file has an unnamed group `(\?|\&)` here, which its processor
      # rejects when it is created (every group must be named); a non-capturing one works.
      pattern: ^(?P<http_protocol>.*):\/\/(?P<http_domain>.*)\/(?P<http_path>.*)(?:\?|\&)(?P<http_query_params>.*)
      action: extract
attributes/update:
  actions:
    - key: "boo"
      from_attribute: "foo"
      action: update
    - key: db.secret
      value: redacted
      action: update
attributes/upsert:
  actions:
    - key: region
      value: "planet-earth"
      action: upsert
    - key: new_user_key
      from_attribute: user_key
      action: upsert
attributes/delete:
  actions:
    - key: credit_card
      action: delete
    - key: duplicate_key
      action: delete
attributes/hash:
  actions:
    - key: user.email
      action: hash
attributes/convert:
  actions:
    - key: http.status_code
      action: convert
      converted_type: int
attributes/excludemulti:
  exclude:
    match_type: strict
    services: ["svcA", "svcB"]
    attributes:
      - {key: env, value: "dev"}
      - {key: test_request}
  actions:
    - key: credit_card
      action: delete
attributes/excluderesources:
  exclude:
    match_type: strict
    resources:
      - {key: host.type, value: "n1-standard-1"}
  actions:
    - key: credit_card
      action: delete
attributes/excludelibrary:
  exclude:
    match_type: strict
    libraries:
      - {name: "mongo-java-driver", version: "3.8.0"}
  actions:
    - key: credit_card
      action: delete
attributes/includeservices:
  include:
    match_type: regexp
    services: ["auth.*", "login.*"]
  actions:
    - key: credit_card
      action: delete
attributes/selectiveprocessing:
  include:
    match_type: strict
    services: ["svcA", "svcB"]
  exclude:
    match_type: strict
    attributes:
      - { key: redact_trace, value: false}
  actions:
    - key: credit_card
      action: delete
    - key: duplicate_key
      action: delete
attributes/complex:
  actions:
    - key: operation
      value: default
      action: insert
    - key: svc.operation
      from_attribute: operation
      action: upsert
    - key: operation
      action: delete
attributes/example:
  actions:
    - key: db.table
      action: delete
    - key: redacted_span
      value: true
      action: upsert
    - key: copy_key
      from_attribute: key_original
      action: update
    - key: account_id
      value: 2245
      action: insert
    - key: account_password
      action: delete
attributes/regexp:
  include:
    match_type: regexp
    services: ["auth.*"]
  exclude:
    match_type: regexp
    span_names: ["login.*"]
  actions:
    - key: password
      action: update
      value: "obfuscated"
    - key: token
      action: delete
attributes/regexp2:
  include:
    match_type: regexp
    attributes:
      - {key: env, value: 'SELECT \* FROM USERS.*'}
  actions:
    - key: db.statement
      action: update
      value: "SELECT * FROM USERS [obfuscated]"
attributes/log_body_regexp:
  include:
    match_type: regexp
    log_bodies: ["AUTH.*"]
  actions:
    - key: password
      action: update
      value: "obfuscated"
attributes/log_severity_regexp:
  include:
    match_type: regexp
    log_severity_texts: [ "debug.*" ]
  actions:
    - key: password
      action: update
      value: "obfuscated"
attributes/from_context:
  actions:
  - key: origin
    from_context: metadata.origin
    action: insert
  - key: enduser.id
    from_context: auth.subject
    action: insert
"#;

#[test]
fn collector_shaped_configs_load() {
    let all = yaml(COLLECTOR_SHAPED);
    let map = all.as_object().expect("a map");
    assert_eq!(map.len(), 19);
    let mut log_only = Vec::new();
    for (name, section) in map {
        let plan = AttributesPlan::parse(section, &format!("processors.{name}"))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        // The log-only match fields are rejected for spans, as in the Collector.
        if plan.traces.is_err() {
            assert!(plan.logs.is_ok(), "{name}");
            log_only.push(name.clone());
        }
    }
    assert_eq!(
        log_only,
        [
            "attributes/log_body_regexp",
            "attributes/log_severity_regexp"
        ]
    );
    let mut r = weir_api::Registry::new();
    weir_transform::register(&mut r);
    assert!(r.processors.contains_key("attributes"));
    assert!(r.processors.contains_key("resource"));
}

#[test]
fn complex_example_gives_the_documented_result() {
    let p = attributes(
        r#"
actions:
  - {key: operation, value: default, action: insert}
  - {key: svc.operation, from_attribute: operation, action: upsert}
  - {key: operation, action: delete}
"#,
    );
    let mut batch = traces_batch(vec![(
        vec![],
        "lib",
        vec![
            span(
                "1",
                0,
                0,
                vec![
                    kv("timeout", i(10)),
                    kv("svc.operation", s("addition")),
                    kv("operation", s("addition")),
                ],
            ),
            span(
                "2",
                0,
                0,
                vec![kv("operation", s("subtract")), kv("math_value", i(123))],
            ),
            span(
                "3",
                0,
                0,
                vec![kv("timeout", i(10)), kv("math_value", i(4))],
            ),
            span(
                "4",
                0,
                0,
                vec![kv("svc.operation", s("division")), kv("timeout", i(3))],
            ),
        ],
    )]);
    p.process(&mut batch).expect("processes");
    assert_eq!(
        span_attrs(&batch),
        vec![
            vec!["svc.operation=addition", "timeout=10i"],
            vec!["math_value=123i", "svc.operation=subtract"],
            vec!["math_value=4i", "svc.operation=default", "timeout=10i"],
            vec!["svc.operation=default", "timeout=3i"],
        ]
    );
}

#[test]
fn insert_update_upsert_keep_value_types() {
    let p = attributes(
        r#"
actions:
  - {key: attribute1, value: 123, action: insert}
  - {key: ratio, value: 0.5, action: insert}
  - {key: flag, value: true, action: upsert}
  - {key: tags, value: [a, b], action: upsert}
  - {key: present, value: new, action: insert}
  - {key: missing, value: x, action: update}
  - {key: present, value: updated, action: update}
  - {key: copy, from_attribute: absent, action: upsert}
"#,
    );
    let mut batch = traces_batch(vec![(
        vec![],
        "lib",
        vec![span("a", 0, 0, vec![kv("present", s("old"))])],
    )]);
    p.process(&mut batch).expect("processes");
    assert_eq!(
        span_attrs(&batch),
        vec![vec![
            "attribute1=123i",
            "flag=true",
            "present=updated",
            "ratio=0.5f",
            "tags=[a,b]"
        ]]
    );
}

/// The Collector's YAML reader (yaml.v3, the YAML 1.2 core schema) takes `n`, `y`, `on`,
/// `off`, `yes` and `No` as strings: only true/false in three spellings are booleans.
#[test]
fn yaml_1_1_boolean_spellings_are_keys_and_values() {
    let p = attributes(
        r#"
actions: [{key: n, action: delete}, {key: y, value: on, action: upsert}, {key: off, value: No, action: insert}, {key: flag, value: True, action: insert}]
"#,
    );
    let mut batch = traces_batch(vec![(
        vec![],
        "lib",
        vec![span("a", 0, 0, vec![kv("n", s("gone")), kv("y", s("old"))])],
    )]);
    p.process(&mut batch).expect("processes");
    assert_eq!(
        span_attrs(&batch),
        vec![vec!["flag=true", "off=No", "y=on"]]
    );
}

#[test]
fn hash_uses_sha256_of_the_collectors_byte_forms() {
    let p = attributes(
        r#"
actions:
  - {key: user.email, action: hash}
  - {key: num, action: hash}
  - {key: b, action: hash}
  - {pattern: "^secret\\.", action: hash}
"#,
    );
    let mut batch = traces_batch(vec![(
        vec![],
        "lib",
        vec![span(
            "a",
            0,
            0,
            vec![
                kv("user.email", s("foo")),
                kv("num", i(1234)),
                kv("b", b(true)),
                kv("secret.x", s("foo")),
                kv("other", s("foo")),
            ],
        )],
    )]);
    p.process(&mut batch).expect("processes");
    assert_eq!(
        span_attrs(&batch),
        vec![vec![
            "b=4bf5122f344554c53bde2ebb8cd2b7e3d1600ad631c385a5d7cce23c7785459a",
            "num=1af2444c165b8d6156651aa4f8dc49e6302f690473e80304fdfdb73baa9140c7",
            "other=foo",
            "secret.x=2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae",
            "user.email=2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae",
        ]]
    );
}

#[test]
fn extract_and_delete_by_pattern_and_convert() {
    let p = attributes(
        r#"
actions:
  - key: http.url
    pattern: ^(?P<http_protocol>.*):\/\/(?P<http_domain>[^/]*)\/(?P<http_path>[^?]*)\?(?P<http_query_params>.*)
    action: extract
  - {pattern: "^tmp_", action: delete}
  - {key: code, action: convert, converted_type: int}
  - {key: bad, action: convert, converted_type: int}
  - {key: d, action: convert, converted_type: double}
  - {key: num, action: convert, converted_type: string}
"#,
    );
    let mut batch = traces_batch(vec![(
        vec![],
        "lib",
        vec![span(
            "a",
            0,
            0,
            vec![
                kv(
                    "http.url",
                    s("http://example.com/path?queryParam1=value1,queryParam2=value2"),
                ),
                kv("tmp_a", i(1)),
                kv("tmp_b", i(2)),
                kv("code", s("404")),
                kv("bad", s("4x")),
                kv("d", s("2.5")),
                kv("num", i(7)),
            ],
        )],
    )]);
    p.process(&mut batch).expect("processes");
    assert_eq!(
        span_attrs(&batch),
        vec![vec![
            "bad=4x",
            "code=404i",
            "d=2.5f",
            "http.url=http://example.com/path?queryParam1=value1,queryParam2=value2",
            "http_domain=example.com",
            "http_path=path",
            "http_protocol=http",
            "http_query_params=queryParam1=value1,queryParam2=value2",
            "num=7",
        ]]
    );
}

#[test]
fn extract_needs_named_groups_only() {
    // The Collector's own test-data pattern has an unnamed `(\?|\&)`: rejected, as the
    // Collector rejects it when it creates the processor.
    let err = AttributesPlan::parse(
        &yaml(r#"actions: [{key: u, pattern: '^(?P<a>.*):(\?|\&)(?P<b>.*)', action: extract}]"#),
        "processors.attributes",
    )
    .err()
    .expect("unnamed group rejected");
    assert_eq!(
        err.to_string(),
        "processors.attributes.actions[0].pattern: every group of an extract pattern must be named ((?P<name>...))"
    );
}

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
fn every_problem_is_reported_with_its_path() {
    let errs = errors_of(
        r#"
include: {match_type: regex, services: [a]}
actions:
  - {key: a, action: insrt, value: 1}
  - {action: insert, value: 1}
  - {key: c, action: upsert}
  - {key: d, action: update, value: 1, from_attribute: x}
  - {key: e, action: convert, converted_type: integer}
  - {key: f, action: extract, pattern: "(x"}
  - {key: g, action: delete, value: 3}
  - {key: h, action: hash, pattern: "[z"}
  - {key: i, action: upsert, value: 1, bogus: 2}
"#,
    );
    assert_eq!(
        errs,
        vec![
            "processors.attributes.actions[0].action: unsupported action \"insrt\" (one of insert, update, upsert, delete, hash, extract, convert) (did you mean \"insert\"?)",
            "processors.attributes.actions[1].key: missing required field \"key\"",
            "processors.attributes.actions[2]: action \"upsert\" needs one of \"value\", \"from_attribute\" or \"from_context\"",
            "processors.attributes.actions[3]: only one of \"value\", \"from_attribute\" and \"from_context\" may be set",
            "processors.attributes.actions[4].converted_type: invalid converted_type \"integer\" (int, double or string)",
            "processors.attributes.actions[5].pattern: invalid regex \"(x\": regex parse error:\n    (x\n    ^\nerror: unclosed group",
            "processors.attributes.actions[6].value: action \"delete\" does not use the \"value\" field; remove it",
            "processors.attributes.actions[7].pattern: invalid regex \"[z\": regex parse error:\n    [z\n    ^\nerror: unclosed character class",
            "processors.attributes.actions[8].bogus: unknown field `bogus`, expected one of `key`, `value`, `pattern`, `from_attribute`, `from_context`, `converted_type`, `action`",
            "processors.attributes.include.match_type: unrecognized match_type \"regex\", valid types are: strict, regexp (did you mean \"regexp\"?)",
        ]
    );
    assert_eq!(
        errors_of("{}"),
        vec!["processors.attributes.actions: missing required field \"actions\""]
    );
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
