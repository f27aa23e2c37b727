//! The `transform` processor: Collector-shaped configs load, conditions select, errors
//! follow error_mode, span events and metric contexts, and every config problem is reported
//! with its path and statement. The editors one by one: transform_editors.rs.

mod common;

use common::transform::*;
use common::*;
use weir_api::otlp::metrics::v1::metric::Data;
use weir_api::{Payload, Processor};
use weir_transform::transform::{TransformPlan, TransformProcessor};

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
