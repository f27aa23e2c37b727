//! The `transform` processor: Collector-shaped configs load, each editor changes exactly
//! what it should, conditions select, errors follow error_mode, and every config problem
//! is reported with its path and statement.

// The OTLP builders the filter tests use (one copy for both crates).
#[path = "../../filter/tests/common/mod.rs"]
mod common;

use common::*;
use weir_api::otlp::common::v1::{any_value, AnyValue, KeyValue};
use weir_api::otlp::metrics::v1::metric::Data;
use weir_api::{Batch, Payload, Processor};
use weir_transform::transform::{TransformPlan, TransformProcessor};

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
        Some(any_value::Value::KvlistValue(m)) => format!("{{{}}}", render(&m.values).join(",")),
        Some(any_value::Value::ArrayValue(a)) => format!(
            "[{}]",
            a.values
                .iter()
                .map(|x| show(Some(x)))
                .collect::<Vec<_>>()
                .join(",")
        ),
        other => format!("{other:?}"),
    }
}

fn transform(src: &str) -> TransformProcessor {
    TransformProcessor::from_config(&yaml(src), "processors.transform").expect("config is valid")
}

fn errors_of(src: &str) -> Vec<String> {
    match TransformPlan::parse(&yaml(src), "processors.transform") {
        Ok(_) => panic!("config should be rejected"),
        Err(e) => e.0.iter().map(|e| e.to_string()).collect(),
    }
}

fn logs(batch: &Batch) -> Vec<(String, String, Vec<String>)> {
    let Payload::Logs(req) = batch.payload() else {
        panic!("not logs")
    };
    req.resource_logs
        .iter()
        .flat_map(|r| &r.scope_logs)
        .flat_map(|s| &s.log_records)
        .map(|l| {
            (
                show(l.body.as_ref()),
                l.severity_text.clone(),
                render(&l.attributes),
            )
        })
        .collect()
}

fn spans(batch: &Batch) -> Vec<(String, Vec<String>)> {
    let Payload::Traces(req) = batch.payload() else {
        panic!("not traces")
    };
    req.resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
        .map(|s| (s.name.clone(), render(&s.attributes)))
        .collect()
}

/// Shaped like the Collector's `processor/transformprocessor/testdata/config.yaml`.
const COLLECTOR_SHAPED: &str = r#"
transform:
  trace_statements:
    - context: span
      statements:
        - set(name, "bear") where attributes["http.path"] == "/animal"
        - keep_keys(attributes, ["http.method", "http.path"])
    - context: resource
      statements:
        - set(attributes["name"], "bear")
  metric_statements:
    - context: datapoint
      statements:
        - set(metric.name, "bear") where attributes["http.path"] == "/animal"
        - keep_keys(attributes, ["http.method", "http.path"])
    - context: resource
      statements:
        - set(attributes["name"], "bear")
  log_statements:
    - context: log
      statements:
        - set(body, "bear") where attributes["http.path"] == "/animal"
        - keep_keys(attributes, ["http.method", "http.path"])
    - context: resource
      statements:
        - set(attributes["name"], "bear")
transform/with_conditions:
  trace_statements:
    - context: span
      conditions:
        - attributes["http.path"] == "/animal"
      statements:
        - set(name, "bear")
  log_statements:
    - context: log
      conditions:
        - attributes["http.path"] == "/animal"
      statements:
        - set(body, "bear")
transform/ignore_errors:
  error_mode: ignore
  trace_statements:
    - context: resource
      statements:
        - set(attributes["name"], "bear")
transform/structured_configuration_with_path_context:
  trace_statements:
    - context: span
      statements:
        - set(span.name, "bear") where span.attributes["http.path"] == "/animal"
transform/flat_configuration:
  trace_statements:
    - set(span.name, "bear") where span.attributes["http.path"] == "/animal"
    - set(resource.attributes["name"], "bear")
  metric_statements:
    - set(metric.name, "bear") where resource.attributes["http.path"] == "/animal"
  log_statements:
    - set(log.body, "bear") where log.attributes["http.path"] == "/animal"
transform/mixed_configuration_styles:
  trace_statements:
    - set(span.name, "bear") where span.attributes["http.path"] == "/animal"
    - context: span
      statements:
        - set(attributes["name"], "bear")
        - keep_keys(attributes, ["http.method", "http.path"])
transform/with_shared_cache_key:
  trace_statements:
    - context: span
      error_mode: silent
      statements:
        - set(attributes["name"], "bear")
"#;

#[test]
fn collector_shaped_configs_load() {
    let all = yaml(COLLECTOR_SHAPED);
    let map = all.as_object().expect("a map");
    assert_eq!(map.len(), 7);
    for (name, section) in map {
        TransformPlan::parse(section, &format!("processors.{name}"))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let plan = TransformPlan::parse(&map["transform"], "p").expect("valid");
    assert_eq!(
        (plan.logs.len(), plan.traces.len(), plan.metrics.len()),
        (2, 2, 2)
    );
    let flat = TransformPlan::parse(&map["transform/flat_configuration"], "p").expect("valid");
    let ctxs: Vec<&str> = flat.traces.iter().map(|g| g.ctx.name()).collect();
    assert_eq!(ctxs, ["span", "resource"]);
    assert_eq!(flat.metrics[0].ctx.name(), "metric");
}

#[test]
fn collector_shaped_bad_configs_are_rejected_with_the_statement() {
    // The Collector's bad_syntax_* / unknown_function_* / unknown_context cases.
    let errs = errors_of(
        r#"
log_statements:
  - context: log
    statements:
      - set(body, "bear" where attributes["http.path"] == "/animal")
      - not_a_function(attributes, "http.method", "http.path")
trace_statements:
  - context: test
    statements:
      - set(name, "bear")
metric_statements:
  - context: datapoint
    statements:
      - set(metric.name, ParseXML(metric.name))
"#,
    );
    assert_eq!(
        errs,
        vec![
            "processors.transform.log_statements[0].statements[0]: syntax error at column 18: expected \",\" or \")\", found \"where\" in statement \"set(body, \\\"bear\\\" where attributes[\\\"http.path\\\"] == \\\"/animal\\\")\"",
            "processors.transform.log_statements[0].statements[1]: unknown editor \"not_a_function\" (supported: set, delete_key, delete_matching_keys, keep_keys, keep_matching_keys, truncate_all, limit, replace_pattern, replace_all_patterns, replace_match, replace_all_matches, merge_maps, append, delete_index, flatten) in statement \"not_a_function(attributes, \\\"http.method\\\", \\\"http.path\\\")\"",
            "processors.transform.trace_statements[0].context: unknown context \"test\" for trace_statements (valid: resource, scope, span, spanevent)",
            "processors.transform.metric_statements[0].statements[0]: function \"ParseXML\" is not supported by Weir's OTTL (supported: IsMatch, IsRootSpan, HasAttrKeyOnDatapoint, HasAttrOnDatapoint, Len, Concat, String, Int, Double, ConvertCase, ToLowerCase, ToUpperCase, SHA256, Substring, HasPrefix, HasSuffix, IsString, IsInt, IsDouble, IsBool, IsMap, IsList, Split, ParseJSON) in statement \"set(metric.name, ParseXML(metric.name))\"",
        ]
    );
}

#[test]
fn collector_example_changes_exactly_the_matching_records() {
    let all = yaml(COLLECTOR_SHAPED);
    let p =
        TransformProcessor::from_config(&all["transform"], "processors.transform").expect("valid");
    let mut batch = traces_batch(vec![(
        vec![kv("service.name", s("zoo"))],
        "lib",
        vec![
            span(
                "a",
                0,
                0,
                vec![
                    kv("http.path", s("/animal")),
                    kv("http.method", s("GET")),
                    kv("extra", i(1)),
                ],
            ),
            span(
                "b",
                0,
                0,
                vec![kv("http.path", s("/plant")), kv("x", s("y"))],
            ),
        ],
    )]);
    p.process(&mut batch).expect("processes");
    assert_eq!(
        spans(&batch),
        vec![
            (
                "bear".to_string(),
                vec![
                    "http.method=GET".to_string(),
                    "http.path=/animal".to_string()
                ]
            ),
            ("b".to_string(), vec!["http.path=/plant".to_string()]),
        ]
    );
    let Payload::Traces(req) = batch.payload() else {
        panic!()
    };
    let res = render(
        &req.resource_spans[0]
            .resource
            .as_ref()
            .expect("resource")
            .attributes,
    );
    assert_eq!(res, vec!["name=bear", "service.name=zoo"]);

    // Data points: set(metric.name) from the datapoint context renames the metric.
    let mut m = metrics_batch(vec![(
        vec![],
        "lib",
        vec![
            sum(
                "requests",
                vec![int_point(
                    1,
                    vec![kv("http.path", s("/animal")), kv("drop", s("x"))],
                )],
            ),
            gauge(
                "other",
                vec![int_point(2, vec![kv("http.path", s("/plant"))])],
            ),
        ],
    )]);
    p.process(&mut m).expect("processes");
    let Payload::Metrics(req) = m.payload() else {
        panic!()
    };
    let ms = &req.resource_metrics[0].scope_metrics[0].metrics;
    assert_eq!(ms[0].name, "bear");
    assert_eq!(ms[1].name, "other");
    let Some(Data::Sum(sum0)) = &ms[0].data else {
        panic!()
    };
    assert_eq!(
        render(&sum0.data_points[0].attributes),
        vec!["http.path=/animal"]
    );
}

#[test]
fn map_editors() {
    let p = transform(
        r#"
log_statements:
  - context: log
    statements:
      - delete_key(attributes, "gone")
      - delete_matching_keys(attributes, "^tmp_")
      - truncate_all(attributes, 3)
      - replace_all_patterns(attributes, "value", "\\d+", "N")
      - replace_all_patterns(attributes, "key", "^old\\.", "new.")
      - replace_all_matches(attributes, "secret-*", "***")
      - limit(attributes, 4, ["z"])
"#,
    );
    let mut batch = logs_batch(vec![(
        vec![],
        "lib",
        vec![log(
            "b",
            9,
            vec![
                kv("a", s("abcdef")),
                kv("gone", s("x")),
                kv("tmp_1", s("x")),
                kv("n", s("12")),
                kv("old.k", s("v")),
                kv("p", s("secret-1")),
                kv("q", i(5)),
                kv("z", s("zz")),
            ],
        )],
    )]);
    p.process(&mut batch).expect("processes");
    // truncate_all cut "abcdef" to "abc" and "secret-1" to "sec" (so it no longer
    // matches the glob); "12" became "N"; limit kept the priority key z and the first 3.
    assert_eq!(logs(&batch)[0].2, vec!["a=abc", "n=N", "new.k=v", "z=zz"]);
}

#[test]
fn keep_matching_keys_merge_maps_and_nested_set() {
    let p = transform(
        r#"
trace_statements:
  - context: span
    statements:
      - keep_matching_keys(attributes, "^(http|user)\\.")
      - merge_maps(attributes, resource.attributes, "insert")
      - set(attributes["nested"]["inner"], "v")
      - set(attributes["http.method"], ToLowerCase(attributes["http.method"]))
"#,
    );
    let mut batch = traces_batch(vec![(
        vec![
            kv("service.name", s("svc")),
            kv("http.method", s("RESOURCE")),
        ],
        "lib",
        vec![span(
            "a",
            0,
            0,
            vec![
                kv("http.method", s("GET")),
                kv("user.id", s("u1")),
                kv("other", s("x")),
            ],
        )],
    )]);
    p.process(&mut batch).expect("processes");
    assert_eq!(
        spans(&batch)[0].1,
        vec![
            "http.method=get",
            "nested={inner=v}",
            "service.name=svc",
            "user.id=u1"
        ]
    );
}

#[test]
fn string_editors_and_converters_with_where() {
    let p = transform(
        r#"
log_statements:
  - context: log
    statements:
      - replace_pattern(body, "password=([^ ]+)", "password=***")
      - replace_match(attributes["path"], "/users/*", "/users/{id}")
      - set(attributes["hash"], SHA256(attributes["user"])) where attributes["user"] != nil
      - set(attributes["code"], Int(attributes["code"]))
      - set(attributes["ratio"], Double("0.25"))
      - set(attributes["joined"], Concat([attributes["user"], "x"], "-")) where IsMatch(body, "^login")
      - set(attributes["snake"], ConvertCase("HelloWorld", "snake"))
      - set(attributes["head"], Substring(body, 0, 5))
      - set(severity_text, "WARN") where HasPrefix(body, "login")
"#,
    );
    let mut batch = logs_batch(vec![(
        vec![],
        "lib",
        vec![
            log(
                "login ok password=hunter2 user=a",
                9,
                vec![
                    kv("user", s("foo")),
                    kv("path", s("/users/42")),
                    kv("code", s("404")),
                ],
            ),
            log("other", 9, vec![kv("path", s("/items/1"))]),
        ],
    )]);
    p.process(&mut batch).expect("processes");
    let got = logs(&batch);
    assert_eq!(got[0].0, "login ok password=*** user=a");
    assert_eq!(got[0].1, "WARN");
    assert_eq!(
        got[0].2,
        vec![
            "code=404i",
            "hash=2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae",
            "head=login",
            "joined=foo-x",
            "path=/users/{id}",
            "ratio=0.25f",
            "snake=hello_world",
            "user=foo",
        ]
    );
    assert_eq!(got[1].0, "other");
    assert_eq!(got[1].1, "INFO");
    // Int(nil) is nil and set(nil) does nothing; no hash, no join for the second record.
    assert_eq!(
        got[1].2,
        vec![
            "head=other",
            "path=/items/1",
            "ratio=0.25f",
            "snake=hello_world"
        ]
    );
}

#[test]
fn error_modes() {
    let src = |mode: &str| {
        format!(
            r#"
error_mode: {mode}
log_statements:
  - context: log
    statements:
      - set(attributes["s"], Substring(body, 0, 10))
      - set(attributes["after"], "yes")
"#
        )
    };
    // A 3-byte body cannot give 10 bytes: the first statement fails.
    for mode in ["ignore", "silent"] {
        let p = transform(&src(mode));
        let mut batch = logs_batch(vec![(vec![], "lib", vec![log("abc", 9, vec![])])]);
        p.process(&mut batch).expect("ignored");
        assert_eq!(logs(&batch)[0].2, vec!["after=yes"], "{mode}");
    }
    let p = transform(&src("propagate"));
    let mut batch = logs_batch(vec![(vec![], "lib", vec![log("abc", 9, vec![])])]);
    let err = p.process(&mut batch).expect_err("propagates");
    assert_eq!(
        err.to_string(),
        "statement \"set(attributes[\\\"s\\\"], Substring(body, 0, 10))\" failed: Substring: invalid range 0..10 for a string of 3 bytes"
    );
}

#[test]
fn span_events_and_metric_context() {
    let p = transform(
        r#"
trace_statements:
  - context: spanevent
    statements:
      - set(attributes["seen"], true) where name == "exception"
      - set(span.attributes["had_event"], true)
metric_statements:
  - context: metric
    statements:
      - set(description, "renamed") where name == "requests"
      - set(unit, "1")
"#,
    );
    let mut sp = span("a", 0, 0, vec![]);
    sp.events = vec![event("exception", vec![]), event("log", vec![])];
    let mut batch = traces_batch(vec![(vec![], "lib", vec![sp])]);
    p.process(&mut batch).expect("processes");
    let Payload::Traces(req) = batch.payload() else {
        panic!()
    };
    let s0 = &req.resource_spans[0].scope_spans[0].spans[0];
    assert_eq!(render(&s0.attributes), vec!["had_event=true"]);
    assert_eq!(render(&s0.events[0].attributes), vec!["seen=true"]);
    assert!(s0.events[1].attributes.is_empty());

    let mut m = metrics_batch(vec![(
        vec![],
        "lib",
        vec![sum("requests", vec![]), gauge("other", vec![])],
    )]);
    p.process(&mut m).expect("processes");
    let Payload::Metrics(req) = m.payload() else {
        panic!()
    };
    let ms = &req.resource_metrics[0].scope_metrics[0].metrics;
    assert_eq!(
        (ms[0].description.as_str(), ms[0].unit.as_str()),
        ("renamed", "1")
    );
    assert_eq!((ms[1].description.as_str(), ms[1].unit.as_str()), ("", "1"));
}

#[test]
fn every_problem_is_reported() {
    let errs = errors_of(
        r#"
error_mode: loud
log_statements:
  - 'set(attributes["x"], 1)'
  - context: log
    statements:
      - route()
      - set(resource.attributes["x"], "y")
      - limit(attributes, 1, ["a", "b"])
    conditions:
      - 'IsMach(body, "x")'
profile_statements: []
"#,
    );
    assert_eq!(
        errs,
        vec!["processors.transform.error_mode: unknown variant `loud`, expected one of `propagate`, `ignore`, `silent`"]
    );
    let errs = errors_of(
        r#"
log_statements:
  - 'set(attributes["x"], 1)'
  - context: log
    statements:
      - route()
      - set(resource.attributes["x"], "y")
      - limit(attributes, 1, ["a", "b"])
    conditions:
      - 'IsMach(body, "x")'
profile_statements: []
"#,
    );
    assert_eq!(
        errs,
        vec![
            "processors.transform.profile_statements: the profiles signal is not supported by Weir",
            "processors.transform.log_statements[0]: path \"attributes[\"x\"]\" has no context prefix; log_statements needs one (did you mean \"log.attributes[\"x\"]\"?) in statement \"set(attributes[\\\"x\\\"], 1)\"",
            "processors.transform.log_statements[1].statements[0]: editor \"route\" is not supported by Weir's transform (supported: set, delete_key, delete_matching_keys, keep_keys, keep_matching_keys, truncate_all, limit, replace_pattern, replace_all_patterns, replace_match, replace_all_matches, merge_maps, append, delete_index, flatten) in statement \"route()\"",
            "processors.transform.log_statements[1].statements[1]: set: path \"resource.attributes[\"x\"]\" cannot be written in the log context by Weir's transform (a statement writes its own context, and the span from span events or the metric from data points; use a group with the context of the path) in statement \"set(resource.attributes[\\\"x\\\"], \\\"y\\\")\"",
            "processors.transform.log_statements[1].statements[2]: limit: 2 priority keys are more than the limit 1 in statement \"limit(attributes, 1, [\\\"a\\\", \\\"b\\\"])\"",
            "processors.transform.log_statements[1].conditions[0]: unknown function \"IsMach\" (did you mean \"IsMatch\"?) in condition \"IsMach(body, \\\"x\\\")\"",
        ]
    );
}

#[test]
fn type_check_converters_in_where() {
    let p = transform(
        r#"
log_statements:
  - context: log
    statements:
      - set(attributes["t"], "string") where IsString(body)
      - set(attributes["t"], "map") where IsMap(body)
      - set(attributes["n"], "int") where IsInt(attributes["v"])
      - set(attributes["n"], "double") where IsDouble(attributes["v"])
      - set(attributes["n"], "bool") where IsBool(attributes["v"])
      - set(attributes["l"], true) where IsList(attributes["xs"])
"#,
    );
    let mut l2 = log("", 9, vec![kv("v", f(1.5)), kv("xs", list(vec![i(1)]))]);
    l2.body = Some(map(vec![kv("k", s("v"))]));
    let mut batch = logs_batch(vec![(
        vec![],
        "lib",
        vec![
            log("text", 9, vec![kv("v", i(1))]),
            l2,
            log("x", 9, vec![kv("v", b(true))]),
        ],
    )]);
    p.process(&mut batch).expect("processes");
    let got: Vec<Vec<String>> = logs(&batch).into_iter().map(|(_, _, a)| a).collect();
    assert_eq!(
        got,
        vec![
            vec!["n=int", "t=string", "v=1i"],
            vec!["l=true", "n=double", "t=map", "v=1.5f", "xs=[1i]"],
            vec!["n=bool", "t=string", "v=true"],
        ]
    );
}

#[test]
fn split_gives_a_list_of_strings() {
    let p = transform(
        r#"
log_statements:
  - context: log
    statements:
      - set(attributes["parts"], Split(body, ","))
      - set(attributes["chars"], Split(attributes["w"], ""))
      - set(attributes["is_list"], true) where IsList(Split(body, ","))
"#,
    );
    let mut batch = logs_batch(vec![(
        vec![],
        "lib",
        vec![log("a,b,,c", 9, vec![kv("w", s("hé"))])],
    )]);
    p.process(&mut batch).expect("processes");
    let Payload::Logs(req) = batch.payload() else {
        panic!()
    };
    let attrs = &req.resource_logs[0].scope_logs[0].log_records[0].attributes;
    let strings = |k: &str| -> Vec<String> {
        let v = attrs
            .iter()
            .find(|kv| kv.key == k)
            .and_then(|kv| kv.value.as_ref());
        match v.and_then(|v| v.value.as_ref()) {
            Some(any_value::Value::ArrayValue(a)) => {
                a.values.iter().map(|x| show(Some(x))).collect()
            }
            other => panic!("{k}: {other:?}"),
        }
    };
    assert_eq!(strings("parts"), ["a", "b", "", "c"]);
    assert_eq!(strings("chars"), ["h", "é"]);
    assert!(attrs.iter().any(|kv| kv.key == "is_list"));
}

/// `ParseJSON` as in the Collector's transform README (`merge_maps(..., ParseJSON(body),
/// "upsert") where IsMatch(body, "^\\{")`): objects become maps, arrays lists, every number a
/// double, `null` an empty value; a body that is not JSON fails the statement.
#[test]
fn parse_json_gives_maps_and_lists() {
    let src = |mode: &str| {
        format!(
            r#"
error_mode: {mode}
log_statements:
  - context: log
    statements:
      - merge_maps(attributes, ParseJSON(body), "upsert") where IsMatch(body, "^\\{{")
      - set(attributes["list"], ParseJSON(attributes["arr"])) where attributes["arr"] != nil
      - set(attributes["map"], true) where IsMap(ParseJSON("{{}}"))
"#
        )
    };
    let p = transform(&src("propagate"));
    let mut batch = logs_batch(vec![(
        vec![],
        "lib",
        vec![
            log(
                r#"{"name":"checkout","count":3,"ok":true,"none":null,"nested":{"a":[1,"x",{"b":2.5}]}}"#,
                9,
                vec![kv("count", s("old")), kv("keep", s("k"))],
            ),
            log(
                "plain text",
                9,
                vec![kv("arr", s(r#"[1, "two", false, []]"#))],
            ),
        ],
    )]);
    p.process(&mut batch).expect("processes");
    let out = logs(&batch);
    assert_eq!(
        out[0].2,
        vec![
            "count=3f",
            "keep=k",
            "map=true",
            "name=checkout",
            "nested={a=[1f,x,{b=2.5f}]}",
            "none=None",
            "ok=true",
        ]
    );
    assert_eq!(
        out[1].2,
        vec![
            r#"arr=[1, "two", false, []]"#,
            "list=[1f,two,false,[]]",
            "map=true"
        ]
    );

    let bad = |body: &str| {
        let p = transform(&src("propagate"));
        let mut batch = logs_batch(vec![(vec![], "lib", vec![log(body, 9, vec![])])]);
        p.process(&mut batch).expect_err("fails").to_string()
    };
    assert_eq!(
        bad(r#"{"a": "#),
        "statement \"merge_maps(attributes, ParseJSON(body), \\\"upsert\\\") where IsMatch(body, \\\"^\\\\\\\\{\\\")\" failed: ParseJSON: EOF while parsing a value at line 1 column 6"
    );
    let p = transform(&src("propagate").replace("where IsMatch(body, \"^\\\\{\")", ""));
    let mut batch = logs_batch(vec![(vec![], "lib", vec![log("42", 9, vec![])])]);
    let err = p.process(&mut batch).expect_err("fails").to_string();
    assert!(
        err.ends_with("failed: ParseJSON: the document is a number, not an object or an array"),
        "{err}"
    );
    // With error_mode ignore the record goes on unchanged by the failed statement.
    let p = transform(&src("ignore"));
    let mut batch = logs_batch(vec![(vec![], "lib", vec![log("{oops", 9, vec![])])]);
    p.process(&mut batch).expect("ignored");
    assert_eq!(logs(&batch)[0].2, vec!["map=true"]);
}

/// `append` as the Collector's: a list target gets the values at its end, a scalar target
/// becomes a list holding it then the values, an absent target a list of the values; a map
/// target is an error.
#[test]
fn append_extends_lists_and_turns_scalars_into_lists() {
    let p = transform(
        r#"
log_statements:
  - context: log
    statements:
      - append(attributes["tags"], "prod")
      - append(attributes["one"], "b")
      - append(attributes["n"], 2, ["x", true, 1.5])
      - append(attributes["new"], attributes["absent"])
"#,
    );
    let mut batch = logs_batch(vec![(
        vec![],
        "lib",
        vec![log(
            "",
            9,
            vec![
                kv("tags", list(vec![s("a"), s("b")])),
                kv("one", s("a")),
                kv("n", i(1)),
            ],
        )],
    )]);
    p.process(&mut batch).expect("processes");
    assert_eq!(
        logs(&batch)[0].2,
        vec![
            "n=[1i,2i,x,true,1.5f]",
            "new=[None]",
            "one=[a,b]",
            "tags=[a,b,prod]"
        ]
    );

    let p = transform(
        r#"
log_statements:
  - context: log
    statements: ['append(attributes["m"], "x")']
"#,
    );
    let mut batch = logs_batch(vec![(
        vec![],
        "lib",
        vec![log("", 9, vec![kv("m", map(vec![kv("k", s("v"))]))])],
    )]);
    let err = p.process(&mut batch).expect_err("a map target fails");
    assert_eq!(
        err.to_string(),
        "statement \"append(attributes[\\\"m\\\"], \\\"x\\\")\" failed: append: unsupported type of target field: map"
    );
    assert_eq!(
        errors_of("log_statements: ['append(log.attributes[\"m\"])']"),
        vec!["processors.transform.log_statements[0]: append takes 2 to 3 arguments, got 1 in statement \"append(log.attributes[\\\"m\\\"])\""]
    );
}

/// `delete_index` as the Collector's: one item, a range [start, end), everything, and its
/// bounds errors in its words.
#[test]
fn delete_index_removes_items_and_checks_bounds() {
    let run = |stmt: &str| {
        let p = transform(&format!(
            "log_statements:\n  - context: log\n    statements: ['{stmt}']\n"
        ));
        let mut batch = logs_batch(vec![(
            vec![],
            "lib",
            vec![log(
                "",
                9,
                vec![kv("xs", list(vec![s("a"), s("b"), s("c"), s("d")]))],
            )],
        )]);
        match p.process(&mut batch) {
            Ok(()) => logs(&batch)[0].2.join(" "),
            Err(e) => e.to_string(),
        }
    };
    assert_eq!(run(r#"delete_index(attributes["xs"], 1)"#), "xs=[a,c,d]");
    assert_eq!(run(r#"delete_index(attributes["xs"], 1, 3)"#), "xs=[a,d]");
    assert_eq!(run(r#"delete_index(attributes["xs"], 0, 4)"#), "xs=[]");
    assert_eq!(
        run(r#"delete_index(attributes["xs"], 2, 2)"#),
        "xs=[a,b,c,d]"
    );
    assert!(run(r#"delete_index(attributes["xs"], 4)"#)
        .ends_with("failed: startIndex 4 out of bounds for slice of length 4"));
    assert!(run(r#"delete_index(attributes["xs"], 2, 1)"#)
        .ends_with("failed: endIndex 1 cannot be less than startIndex 2"));
    assert!(run(r#"delete_index(attributes["xs"], 1, 5)"#)
        .ends_with("failed: deletion range [1:5] out of bounds for slice of length 4"));
    assert!(run(r#"delete_index(attributes["nope"], 0)"#)
        .ends_with("failed: delete_index: the target is a nil, not a list"));
}

/// `flatten` with the shapes of the Collector's func_flatten tests: nested maps, lists,
/// a prefix, a depth limit (lists count as a level), and resolveConflicts.
#[test]
fn flatten_moves_nested_values_to_dotted_keys() {
    let run = |stmt: &str, attrs: Vec<KeyValue>| {
        let p = transform(&format!(
            "log_statements:\n  - context: log\n    statements: ['{stmt}']\n"
        ));
        let mut batch = logs_batch(vec![(vec![], "lib", vec![log("", 9, attrs)])]);
        p.process(&mut batch).expect("processes");
        let Payload::Logs(req) = batch.payload() else {
            panic!()
        };
        // In order, not sorted: flatten keeps the map's order.
        req.resource_logs[0].scope_logs[0].log_records[0]
            .attributes
            .iter()
            .map(|kv| format!("{}={}", kv.key, show(kv.value.as_ref())))
            .collect::<Vec<_>>()
    };
    let combination = || {
        vec![
            kv("name", s("test")),
            kv(
                "address",
                map(vec![kv("street", s("first")), kv("house", s("1234"))]),
            ),
            kv("occupants", list(vec![s("user 1"), s("user 2")])),
        ]
    };
    assert_eq!(
        run("flatten(attributes)", combination()),
        vec![
            "name=test",
            "address.street=first",
            "address.house=1234",
            "occupants.0=user 1",
            "occupants.1=user 2"
        ]
    );
    assert_eq!(
        run(r#"flatten(attributes, "app")"#, combination()),
        vec![
            "app.name=test",
            "app.address.street=first",
            "app.address.house=1234",
            "app.occupants.0=user 1",
            "app.occupants.1=user 2"
        ]
    );
    let deep = || {
        vec![kv(
            "0",
            map(vec![kv(
                "1",
                map(vec![kv("2", map(vec![kv("3", s("4"))]))]),
            )]),
        )]
    };
    assert_eq!(run("flatten(attributes)", deep()), vec!["0.1.2.3=4"]);
    assert_eq!(
        run(r#"flatten(attributes, "", 2)"#, deep()),
        vec!["0.1.2={3=4}"]
    );
    // A list is a level: at depth 1 the list stays; at depth 3 a map in it is flattened.
    let with_list = || {
        vec![kv(
            "0",
            map(vec![kv(
                "1",
                list(vec![s("2"), map(vec![kv("3", s("4"))])]),
            )]),
        )]
    };
    assert_eq!(
        run(r#"flatten(attributes, "", 1)"#, with_list()),
        vec!["0.1=[2,{3=4}]"]
    );
    assert_eq!(
        run(r#"flatten(attributes, "", 3)"#, with_list()),
        vec!["0.1.0=2", "0.1.1.3=4"]
    );
    // resolveConflicts: a key written twice gets .0; list items go under the list's key.
    assert_eq!(
        run(
            r#"flatten(attributes, "", 10, true)"#,
            vec![
                kv("address", map(vec![kv("street", s("first"))])),
                kv("address.street", s("second")),
                kv("tags", list(vec![s("a"), s("b")])),
            ]
        ),
        vec![
            "address.street=first",
            "address.street.0=second",
            "tags=a",
            "tags.0=b"
        ]
    );
    assert_eq!(
        errors_of("log_statements: ['flatten(log.attributes, \"\", 0)']"),
        vec!["processors.transform.log_statements[0]: invalid depth '0' for flatten function, must be greater than 0 in statement \"flatten(log.attributes, \\\"\\\", 0)\""]
    );
}
