//! The `attributes` processor: the Collector's test-data config shapes load, each action
//! changes exactly what it should, and every problem is reported with its path. Which
//! items it applies to (include/exclude): attributes_match.rs.

mod common;

use common::attributes::*;
use common::*;
use weir_api::Processor;
use weir_transform::attributes::AttributesPlan;

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
