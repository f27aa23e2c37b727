#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use weir_api::otlp::common::v1::InstrumentationScope;
use weir_api::otlp::resource::v1::Resource;
use weir_filter::ottl::{compile_group, Ctx, Item, PathMode, Point, Record, SignalKind};

fn signal_of(ctx: Ctx) -> SignalKind {
    match ctx {
        Ctx::Log => SignalKind::Logs,
        Ctx::Span | Ctx::SpanEvent => SignalKind::Traces,
        _ => SignalKind::Metrics,
    }
}

/// Compiles `cond` in `ctx` (unprefixed paths allowed) and evaluates it.
fn eval(ctx: Ctx, cond: &str, rec: &Record<'_>) -> Result<bool, String> {
    let g = compile_group(signal_of(ctx), PathMode::Explicit(ctx), &[cond.to_string()])
        .map_err(|e| format!("compile: {}", e.error))?;
    g.conditions[0].eval(rec).map_err(|e| e.to_string())
}

fn truth(ctx: Ctx, cond: &str, rec: &Record<'_>) -> bool {
    eval(ctx, cond, rec).unwrap_or_else(|e| panic!("{cond}: {e}"))
}

struct Fixture {
    resource: Option<Resource>,
    scope: Option<InstrumentationScope>,
}

fn at<'a>(fx: &'a Fixture, item: Item<'a>) -> Record<'a> {
    Record {
        resource: fx.resource.as_ref(),
        scope: fx.scope.as_ref(),
        item,
    }
}

fn fixture() -> Fixture {
    Fixture {
        resource: resource(vec![
            kv("service.name", s("checkout")),
            kv("host.name", s("web-1")),
        ]),
        scope: scope("io.opentelemetry.http", "1.2.3"),
    }
}

#[test]
fn log_paths_literals_and_operators() {
    let fx = fixture();
    let mut rec = log(
        "GET /healthz 200",
        9,
        vec![
            kv("http.status_code", i(200)),
            kv("ratio", f(0.5)),
            kv("ok", b(true)),
            kv("blob", bytes(&[0xca, 0xfe])),
            kv("nested", map(vec![kv("inner", s("deep")), kv("n", i(3))])),
            kv("tags", list(vec![s("a"), s("b")])),
        ],
    );
    rec.trace_id = vec![0x0a; 16];
    rec.event_name = "http.request".into();
    let r = Record {
        resource: fx.resource.as_ref(),
        scope: fx.scope.as_ref(),
        item: Item::Log(&rec),
    };
    let t = |c: &str| truth(Ctx::Log, c, &r);
    // every comparison operator, on ints, floats, mixed numbers, strings, bools, bytes
    assert!(t(r#"attributes["http.status_code"] == 200"#));
    assert!(t(r#"attributes["http.status_code"] != 404"#));
    assert!(t(r#"attributes["http.status_code"] < 300"#));
    assert!(t(r#"attributes["http.status_code"] <= 200"#));
    assert!(t(r#"attributes["http.status_code"] > 199.5"#));
    assert!(t(r#"attributes["http.status_code"] >= 200.0"#));
    assert!(t(r#"attributes["ratio"] == 0.5"#));
    assert!(t(r#"attributes["ok"] == true"#));
    assert!(t(r#"attributes["ok"] > false"#));
    assert!(t(r#"attributes["blob"] == 0xCAFE"#));
    assert!(t(r#"attributes["blob"] < 0xcb"#));
    assert!(t(r#"body == "GET /healthz 200""#));
    assert!(t(r#"body < "Z""#));
    // nested keys and list indexes; missing keys are nil
    assert!(t(r#"attributes["nested"]["inner"] == "deep""#));
    assert!(t(r#"attributes["nested"]["n"] >= 3"#));
    assert!(t(r#"attributes["tags"][1] == "b""#));
    assert!(t(r#"attributes["missing"] == nil"#));
    assert!(t(r#"attributes["nested"]["missing"]["deeper"] == nil"#));
    assert!(!t(r#"attributes["missing"] != nil"#));
    // different types are only "not equal"
    assert!(!t(r#"attributes["http.status_code"] == "200""#));
    assert!(t(r#"attributes["http.status_code"] != "200""#));
    assert!(!t(r#"attributes["http.status_code"] < "300""#));
    assert!(!t(r#"body > 5"#));
    // other log fields, resource and scope
    assert!(t("severity_number == SEVERITY_NUMBER_INFO"));
    assert!(t("severity_number < SEVERITY_NUMBER_WARN"));
    assert!(t(r#"severity_text == "INFO""#));
    assert!(t(r#"event_name == "http.request""#));
    assert!(t("trace_id == 0x0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a"));
    assert!(t(
        r#"trace_id.string == "0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a""#
    ));
    assert!(t(r#"span_id.string == """#));
    assert!(t(r#"resource.attributes["service.name"] == "checkout""#));
    assert!(t(
        r#"scope.name == "io.opentelemetry.http" and scope.version == "1.2.3""#
    ));
    assert!(t(
        r#"instrumentation_scope.name == "io.opentelemetry.http""#
    ));
    assert!(t(r#"log.body != nil"#));
    // boolean structure
    assert!(t(
        r#"not (severity_number > 9) and (body == "x" or severity_text == "INFO")"#
    ));
    assert!(!t(r#"not severity_number == 9"#));
    assert!(t("true or false and false"));
    assert!(!t("(true or false) and false"));
    // the whole map compares deeply
    assert!(t(r#"attributes["nested"] != attributes["tags"]"#));
}

#[test]
fn converters() {
    let fx = fixture();
    let rec = log(
        "user password=hunter2 rejected",
        17,
        vec![
            kv("id", s("42")),
            kv("code", i(7)),
            kv("pi", f(3.9)),
            kv("m", map(vec![kv("b", s("<2>")), kv("a", i(1))])),
            kv("raw", bytes(b"hi")),
        ],
    );
    let r = Record {
        resource: fx.resource.as_ref(),
        scope: fx.scope.as_ref(),
        item: Item::Log(&rec),
    };
    let t = |c: &str| truth(Ctx::Log, c, &r);
    assert!(t(r#"IsMatch(body, ".*password=.*")"#));
    assert!(t(r#"IsMatch(body, "password=\\w+")"#));
    assert!(!t(r#"IsMatch(body, "^password")"#));
    assert!(t(r#"IsMatch(attributes["code"], "^7$")"#));
    assert!(!t(r#"IsMatch(attributes["missing"], ".*")"#));
    assert!(t(
        r#"IsMatch(resource.attributes["host.name"], "web-\\d+") == true"#
    ));
    assert!(t(r#"Len(body) == 30"#));
    assert!(t(r#"Len(attributes["m"]) == 2"#));
    assert!(t(
        r#"Concat([attributes["id"], attributes["code"], attributes["nope"]], "-") == "42-7-<nil>""#
    ));
    assert!(t(r#"String(attributes["code"]) == "7""#));
    assert!(t(r#"String(attributes["pi"]) == "3.9""#));
    assert!(t(
        r#"String(attributes["m"]) == "{\"a\":1,\"b\":\"\u003c2\u003e\"}""#
    ));
    assert!(t(r#"String(attributes["raw"]) == "aGk=""#));
    assert!(t(r#"String(attributes["nope"]) == nil"#));
    assert!(t(r#"Int(attributes["id"]) == 42"#));
    assert!(t(r#"Int(attributes["pi"]) == 3"#));
    assert!(t(r#"Int(body) == nil"#));
    // Runtime type errors are errors, not false.
    let e = eval(Ctx::Log, r#"Len(attributes["code"]) > 1"#, &r).unwrap_err();
    assert_eq!(
        e,
        r#"condition "Len(attributes[\"code\"]) > 1" failed: Len: unsupported type int (want a string, map or list)"#
    );
    let e = eval(Ctx::Log, r#"attributes["code"]["x"] == 1"#, &r).unwrap_err();
    assert!(
        e.ends_with(r#"cannot look up key "x" in a value of type int"#),
        "{e}"
    );
}

#[test]
fn span_and_span_event_contexts() {
    let fx = fixture();
    let mut root = span("GET /cart", 2, 2, vec![kv("http.route", s("/cart"))]);
    root.events = vec![event("exception", vec![kv("grpc", b(true))])];
    let mut child = span("SELECT", 3, 1, vec![]);
    child.parent_span_id = vec![9; 8];
    assert!(truth(
        Ctx::Span,
        "kind == SPAN_KIND_SERVER and status.code == STATUS_CODE_ERROR",
        &at(&fx, Item::Span(&root))
    ));
    assert!(truth(
        Ctx::Span,
        r#"kind.string == "Server""#,
        &at(&fx, Item::Span(&root))
    ));
    assert!(truth(
        Ctx::Span,
        "IsRootSpan()",
        &at(&fx, Item::Span(&root))
    ));
    assert!(!truth(
        Ctx::Span,
        "IsRootSpan()",
        &at(&fx, Item::Span(&child))
    ));
    assert!(truth(
        Ctx::Span,
        "kind == SPAN_KIND_CLIENT and status.code == STATUS_CODE_OK",
        &at(&fx, Item::Span(&child))
    ));
    assert!(truth(
        Ctx::Span,
        r#"name == "SELECT" and status.code != STATUS_CODE_UNSET"#,
        &at(&fx, Item::Span(&child))
    ));
    for (name, v) in [
        ("SPAN_KIND_UNSPECIFIED", 0),
        ("SPAN_KIND_INTERNAL", 1),
        ("SPAN_KIND_PRODUCER", 4),
        ("SPAN_KIND_CONSUMER", 5),
    ] {
        let mut sp = span("x", v, 0, vec![]);
        sp.parent_span_id = vec![];
        assert!(
            truth(
                Ctx::Span,
                &format!("kind == {name}"),
                &at(&fx, Item::Span(&sp))
            ),
            "{name}"
        );
    }
    let ev = &root.events[0];
    let er = Record {
        resource: fx.resource.as_ref(),
        scope: fx.scope.as_ref(),
        item: Item::SpanEvent(&root, ev),
    };
    assert!(truth(
        Ctx::SpanEvent,
        r#"name == "exception" and attributes["grpc"] == true"#,
        &er
    ));
    assert!(truth(Ctx::SpanEvent, r#"span.name == "GET /cart""#, &er));
    assert!(truth(
        Ctx::SpanEvent,
        r#"spanevent.name == "exception""#,
        &er
    ));
}

#[test]
fn metric_and_datapoint_contexts() {
    let fx = fixture();
    let g = gauge(
        "queue.size",
        vec![
            int_point(0, vec![kv("queue", s("a"))]),
            double_point(2.5, vec![]),
        ],
    );
    let sm = sum(
        "requests",
        vec![int_point(10, vec![kv("http.method", s("GET"))])],
    );
    let h = histogram("latency", &[4]);
    assert!(truth(
        Ctx::Metric,
        "type == METRIC_DATA_TYPE_GAUGE",
        &at(&fx, Item::Metric(&g))
    ));
    assert!(truth(
        Ctx::Metric,
        "type == METRIC_DATA_TYPE_SUM and is_monotonic == true",
        &at(&fx, Item::Metric(&sm))
    ));
    assert!(truth(
        Ctx::Metric,
        "aggregation_temporality == AGGREGATION_TEMPORALITY_CUMULATIVE",
        &at(&fx, Item::Metric(&sm))
    ));
    assert!(truth(
        Ctx::Metric,
        "metric.type == METRIC_DATA_TYPE_HISTOGRAM",
        &at(&fx, Item::Metric(&h))
    ));
    assert!(truth(
        Ctx::Metric,
        r#"unit == "1" and name == "requests""#,
        &at(&fx, Item::Metric(&sm))
    ));
    assert!(truth(
        Ctx::Metric,
        r#"HasAttrKeyOnDatapoint("http.method")"#,
        &at(&fx, Item::Metric(&sm))
    ));
    assert!(!truth(
        Ctx::Metric,
        r#"HasAttrKeyOnDatapoint("queue")"#,
        &at(&fx, Item::Metric(&sm))
    ));
    assert!(truth(
        Ctx::Metric,
        r#"HasAttrOnDatapoint("http.method", "GET")"#,
        &at(&fx, Item::Metric(&sm))
    ));
    assert!(!truth(
        Ctx::Metric,
        r#"HasAttrOnDatapoint("http.method", "POST")"#,
        &at(&fx, Item::Metric(&sm))
    ));
    for (name, n) in [
        ("METRIC_DATA_TYPE_NONE", 0),
        ("METRIC_DATA_TYPE_EXPONENTIAL_HISTOGRAM", 4),
        ("METRIC_DATA_TYPE_SUMMARY", 5),
    ] {
        assert!(truth(
            Ctx::Metric,
            &format!("{name} == {n}"),
            &at(&fx, Item::Metric(&g))
        ));
    }
    let weir_api::otlp::metrics::v1::metric::Data::Gauge(gd) = g.data.as_ref().unwrap() else {
        panic!()
    };
    let pr = |i: usize| Record {
        resource: fx.resource.as_ref(),
        scope: fx.scope.as_ref(),
        item: Item::DataPoint(&g, Point::Number(&gd.data_points[i])),
    };
    assert!(truth(
        Ctx::DataPoint,
        r#"value_int == 0 and attributes["queue"] == "a""#,
        &pr(0)
    ));
    assert!(truth(
        Ctx::DataPoint,
        r#"metric.name == "queue.size""#,
        &pr(0)
    ));
    assert!(truth(
        Ctx::DataPoint,
        "value_double == 2.5 and value_int == 0",
        &pr(1)
    ));
    assert!(truth(Ctx::DataPoint, "value_double > 2", &pr(1)));
    let weir_api::otlp::metrics::v1::metric::Data::Histogram(hd) = h.data.as_ref().unwrap() else {
        panic!()
    };
    let hr = Record {
        resource: fx.resource.as_ref(),
        scope: fx.scope.as_ref(),
        item: Item::DataPoint(&h, Point::Histogram(&hd.data_points[0])),
    };
    assert!(truth(
        Ctx::DataPoint,
        "count == 4 and sum == 6.0 and value_int == nil",
        &hr
    ));
}

#[test]
fn severity_enums_cover_every_level() {
    let names = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];
    for (i, n) in names.iter().enumerate() {
        for suffix in 1..=4 {
            let number = (i * 4 + suffix) as i32;
            let rec = log("x", number, vec![]);
            let r = Record {
                resource: None,
                scope: None,
                item: Item::Log(&rec),
            };
            let name = if suffix == 1 {
                format!("SEVERITY_NUMBER_{n}")
            } else {
                format!("SEVERITY_NUMBER_{n}{suffix}")
            };
            assert!(
                truth(Ctx::Log, &format!("severity_number == {name}"), &r),
                "{name}"
            );
        }
    }
    let rec = log("x", 0, vec![]);
    let r = Record {
        resource: None,
        scope: None,
        item: Item::Log(&rec),
    };
    assert!(truth(
        Ctx::Log,
        "severity_number == SEVERITY_NUMBER_UNSPECIFIED",
        &r
    ));
}

#[test]
fn compile_errors_are_exact() {
    let cases: &[(Ctx, &str, &str)] = &[
        (Ctx::Log, r#"IsMach(body, "x")"#, r#"unknown function "IsMach" (did you mean "IsMatch"?)"#),
        (Ctx::Log, "severity_number < SEVERITY_NUMBER_WARM", r#"unknown enum "SEVERITY_NUMBER_WARM" (did you mean "SEVERITY_NUMBER_WARN"?)"#),
        (Ctx::Log, r#"bdy == "x""#, r#"unknown path "bdy" in the log context (did you mean "body"?)"#),
        (Ctx::Log, r#"log.severity_txt == "x""#, r#"unknown path "log.severity_txt" in the log context (did you mean "log.severity_text"?)"#),
        (Ctx::Log, r#"resource.attribute["k"] == "x""#, r#"unknown path "resource.attribute" in the resource context (did you mean "resource.attributes"?)"#),
        (Ctx::Log, r#"span.name == "x""#, r#"path "span.name" reads the span context, which conditions in the log context cannot reach"#),
        (Ctx::Log, r#"ParseXML(body) == nil"#, "function \"ParseXML\" is not supported by Weir's OTTL (supported: IsMatch, IsRootSpan, HasAttrKeyOnDatapoint, HasAttrOnDatapoint, Len, Concat, String, Int, Double, ConvertCase, ToLowerCase, ToUpperCase, SHA256, Substring, HasPrefix, HasSuffix, IsString, IsInt, IsDouble, IsBool, IsMap, IsList, Split, ParseJSON)"),
        (Ctx::Log, r#"set(attributes["x"], 1)"#, r#""set" is an editor; filter conditions can only use converters"#),
        (Ctx::Log, "IsRootSpan()", r#"function "IsRootSpan" is only available in the span context, not in the log context"#),
        (Ctx::DataPoint, r#"HasAttrKeyOnDatapoint("k")"#, r#"function "HasAttrKeyOnDatapoint" is only available in the metric context, not in the datapoint context"#),
        (Ctx::Log, r#"IsMatch(body, "(")"#, "IsMatch: invalid regex \"(\": regex parse error:\n    (\n    ^\nerror: unclosed group"),
        (Ctx::Log, r#"IsMatch(body, attributes["p"])"#, "IsMatch: the pattern must be a string literal"),
        (Ctx::Log, "IsMatch(body)", "IsMatch takes 2 arguments, got 1"),
        (Ctx::Log, "Len(body)", "Len(...) returns a value, not a condition; compare it (for example Len(...) != nil)"),
        (Ctx::Log, r#"attributes["flag"]"#, r#"path "attributes["flag"]" alone is not a condition; compare it (for example attributes["flag"] == true)"#),
        (Ctx::Log, r#"severity_number["x"] == 1"#, r#"path "severity_number" does not take keys"#),
        (Ctx::Log, "[1, 2] == body", "list literals are only supported as the first argument of Concat"),
        (Ctx::Log, "body == ", "syntax error at column 9: expected a value, found end of condition"),
    ];
    for (ctx, cond, want) in cases {
        let got = compile_group(
            signal_of(*ctx),
            PathMode::Explicit(*ctx),
            &[cond.to_string()],
        )
        .map(|_| ())
        .unwrap_err()
        .error
        .to_string();
        assert_eq!(&got, want, "for {cond:?}");
    }
}

#[test]
fn context_inference_picks_the_most_specific_context() {
    let infer = |signal, conds: &[&str]| {
        let conds: Vec<String> = conds.iter().map(|c| c.to_string()).collect();
        compile_group(signal, PathMode::Inferred, &conds)
            .map(|g| g.ctx)
            .map_err(|e| (e.index, e.error.to_string()))
    };
    assert_eq!(
        infer(SignalKind::Logs, &[r#"resource.attributes["a"] == "b""#]),
        Ok(Ctx::Resource)
    );
    assert_eq!(
        infer(
            SignalKind::Logs,
            &[r#"scope.name == "x""#, r#"resource.attributes["a"] == "b""#]
        ),
        Ok(Ctx::Scope)
    );
    assert_eq!(
        infer(
            SignalKind::Logs,
            &[r#"resource.attributes["a"] == "b""#, r#"log.body == "x""#]
        ),
        Ok(Ctx::Log)
    );
    assert_eq!(
        infer(
            SignalKind::Traces,
            &[r#"span.name == "a""#, r#"spanevent.name == "b""#]
        ),
        Ok(Ctx::SpanEvent)
    );
    assert_eq!(infer(SignalKind::Traces, &["IsRootSpan()"]), Ok(Ctx::Span));
    assert_eq!(
        infer(SignalKind::Metrics, &[r#"metric.name == "a""#]),
        Ok(Ctx::Metric)
    );
    assert_eq!(
        infer(SignalKind::Metrics, &[r#"HasAttrKeyOnDatapoint("k")"#]),
        Ok(Ctx::Metric)
    );
    assert_eq!(
        infer(
            SignalKind::Metrics,
            &[r#"metric.name == "a" and datapoint.value_int == 0"#]
        ),
        Ok(Ctx::DataPoint)
    );
    assert_eq!(
        infer(SignalKind::Logs, &[r#"log.body == "a""#, r#"attributes["k"] == "v""#]),
        Err((1, r#"path "attributes["k"]" has no context prefix; log_conditions needs one (did you mean "log.attributes["k"]"?)"#.to_string()))
    );
    assert_eq!(
        infer(SignalKind::Logs, &[r#"span.name == "a""#]),
        Err((
            0,
            r#"context "span" is not available in log_conditions (valid: resource, scope, log)"#
                .to_string()
        ))
    );
    assert_eq!(
        infer(SignalKind::Traces, &["true"]),
        Err((0, "cannot infer the context of these conditions: prefix paths with one of resource, scope, span, spanevent".to_string()))
    );
}
