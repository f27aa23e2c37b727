#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use common::*;
use weir_api::{Batch, BuildContext, ComponentId, ConsumeError, Consumer, Processor, Signal};
use weir_filter::filter::FilterProcessor;

/// The batch as it arrives from a receiver: decoded from protobuf, bytes remembered.
fn encode(batch: &Batch) -> Batch {
    Batch::decode(batch.signal(), batch.to_protobuf()).unwrap()
}

const PATH: &str = "processors.filter/test";

fn filter(yaml_src: &str) -> FilterProcessor {
    FilterProcessor::from_config(&yaml(yaml_src), PATH)
        .unwrap_or_else(|e| panic!("config rejected:\n{e}"))
}

fn config_error(yaml_src: &str) -> String {
    match FilterProcessor::from_config(&yaml(yaml_src), PATH) {
        Ok(_) => panic!("config accepted:\n{yaml_src}"),
        Err(e) => e.to_string(),
    }
}

fn sample_logs() -> Batch {
    logs_batch(vec![
        (
            vec![kv("service.name", s("checkout"))],
            "app",
            vec![
                log("GET /healthz 200", 9, vec![]),
                log("order placed", 9, vec![kv("order.id", i(7))]),
                log("cache miss", 5, vec![]),
                log("no severity", 0, vec![]),
            ],
        ),
        (
            vec![kv("service.name", s("cart"))],
            "app",
            vec![
                log("payment failed", 17, vec![]),
                log("GET /healthz 503", 13, vec![]),
                log("trace detail", 1, vec![]),
            ],
        ),
    ])
}

#[test]
fn every_log_form_drops_the_same_records() {
    let forms = [
        r#"
log_conditions:
  - 'log.severity_number < SEVERITY_NUMBER_INFO'
  - 'IsMatch(log.body, ".*healthz.*")'
"#,
        r#"
log_conditions:
  - context: log
    conditions:
      - 'severity_number < SEVERITY_NUMBER_INFO'
      - 'IsMatch(body, ".*healthz.*")'
"#,
        r#"
logs:
  log_record:
    - 'severity_number < SEVERITY_NUMBER_INFO'
    - 'IsMatch(body, ".*healthz.*")'
"#,
        r#"
logs:
  include:
    severity_number:
      min: info
  exclude:
    match_type: regexp
    bodies: [".*healthz.*"]
"#,
    ];
    for form in forms {
        let mut batch = sample_logs();
        let before = batch.item_count();
        filter(form).process(&mut batch).unwrap();
        assert_eq!(
            log_bodies(&batch),
            vec!["order placed", "payment failed"],
            "form:{form}"
        );
        assert_eq!(
            (before, batch.item_count()),
            (7, 2),
            "in = out + dropped for {form}"
        );
    }
}

#[test]
fn resource_and_scope_conditions_drop_everything_below() {
    let mut batch = sample_logs();
    filter("log_conditions: ['resource.attributes[\"service.name\"] == \"cart\"']")
        .process(&mut batch)
        .unwrap();
    assert_eq!(log_bodies(&batch).len(), 4);
    let weir_api::Payload::Logs(req) = batch.payload() else {
        unreachable!()
    };
    assert_eq!(req.resource_logs.len(), 1);

    let mut batch = sample_logs();
    filter("logs: {resource: ['attributes[\"service.name\"] == \"checkout\"']}")
        .process(&mut batch)
        .unwrap();
    assert_eq!(
        log_bodies(&batch),
        vec!["payment failed", "GET /healthz 503", "trace detail"]
    );

    let mut batch = sample_logs();
    filter("log_conditions: [{context: scope, conditions: ['name == \"app\"']}]")
        .process(&mut batch)
        .unwrap();
    assert_eq!(batch.item_count(), 0);
}

fn sample_traces() -> Batch {
    let mut checkout = span("GET /cart", 2, 0, vec![kv("http.route", s("/cart"))]);
    checkout.events = vec![
        event("exception", vec![kv("grpc", b(true))]),
        event("retry", vec![]),
    ];
    let mut ready = span("GET /ready", 2, 0, vec![kv("http.route", s("/ready"))]);
    ready.events = vec![event("exception", vec![])];
    traces_batch(vec![
        (
            vec![kv("service.name", s("checkout"))],
            "http",
            vec![checkout, ready],
        ),
        (
            vec![kv("service.name", s("db"))],
            "sql",
            vec![span("SELECT", 3, 0, vec![]), span("INSERT", 3, 2, vec![])],
        ),
    ])
}

fn event_names(batch: &Batch) -> Vec<String> {
    let weir_api::Payload::Traces(r) = batch.payload() else {
        unreachable!()
    };
    r.resource_spans
        .iter()
        .flat_map(|rs| &rs.scope_spans)
        .flat_map(|ss| &ss.spans)
        .map(|sp| {
            format!(
                "{}:{}",
                sp.name,
                sp.events
                    .iter()
                    .map(|e| e.name.as_str())
                    .collect::<Vec<_>>()
                    .join("+")
            )
        })
        .collect()
}

#[test]
fn every_span_form_drops_the_same_spans() {
    let forms = [
        r#"trace_conditions: ['span.attributes["http.route"] == "/ready"', 'resource.attributes["service.name"] == "db" and span.status.code != STATUS_CODE_ERROR']"#,
        r#"
traces:
  span:
    - 'attributes["http.route"] == "/ready"'
    - 'resource.attributes["service.name"] == "db" and status.code != STATUS_CODE_ERROR'
"#,
        r#"
trace_conditions:
  - context: span
    conditions: ['attributes["http.route"] == "/ready"']
  - conditions: ['resource.attributes["service.name"] == "db" and span.status.code != 2']
"#,
        r#"
spans:
  exclude:
    match_type: regexp
    span_names: ["^GET /ready$", "^SELECT$"]
"#,
    ];
    for form in forms {
        let mut batch = sample_traces();
        filter(form).process(&mut batch).unwrap();
        assert_eq!(
            span_names(&batch),
            vec!["GET /cart", "INSERT"],
            "form:{form}"
        );
        assert_eq!(batch.item_count(), 2);
    }
}

#[test]
fn legacy_spans_include_services_and_kinds() {
    let mut batch = sample_traces();
    filter(
        "spans: {include: {match_type: strict, services: [db], span_kinds: [SPAN_KIND_CLIENT]}}",
    )
    .process(&mut batch)
    .unwrap();
    assert_eq!(span_names(&batch), vec!["SELECT", "INSERT"]);
    let mut batch = sample_traces();
    filter("spans: {exclude: {match_type: strict, libraries: [{name: sql}], attributes: []}}")
        .process(&mut batch)
        .unwrap();
    assert_eq!(span_names(&batch), vec!["GET /cart", "GET /ready"]);
}

#[test]
fn a_string_where_a_list_is_expected_reads_as_the_collector_reads_it() {
    // Name lists: split on ',' (the collector's loader); regexp cache settings accepted.
    let mut batch = sample_traces();
    filter("spans: {include: {match_type: strict, services: db, span_kinds: 'SPAN_KIND_CLIENT', regexp: {cacheenabled: true, cachemaxnumentries: 10}}}")
        .process(&mut batch)
        .unwrap();
    assert_eq!(span_names(&batch), vec!["SELECT", "INSERT"]);
    let mut batch = sample_metrics();
    filter("metrics: {include: {match_type: strict, metric_names: 'latency, http.requests'}}")
        .process(&mut batch)
        .unwrap();
    assert_eq!(metric_points(&batch), vec!["http.requests:1", "latency:2"]);
    let mut batch = sample_metrics();
    filter("metrics: {exclude: {match_type: regexp, regexp: {cacheenabled: false}, metric_names: '^queue'}}")
        .process(&mut batch)
        .unwrap();
    assert_eq!(metric_points(&batch), vec!["http.requests:1", "latency:2"]);
    // OTTL conditions: one string is one condition, commas and all.
    let mut batch = sample_traces();
    filter("traces: {span: 'IsMatch(name, \"^(SELECT|INSERT)$\")'}")
        .process(&mut batch)
        .unwrap();
    assert_eq!(span_names(&batch), vec!["GET /cart", "GET /ready"]);
    assert!(
        config_error("spans: {include: {match_type: strict, services: {a: 1}}}")
            .contains("processors.filter/test.spans.include.services"),
    );
}

#[test]
fn span_event_conditions_drop_events_never_spans() {
    for form in [
        "traces: {spanevent: ['name == \"exception\"']}",
        "trace_conditions: ['spanevent.name == \"exception\"']",
    ] {
        let mut batch = sample_traces();
        filter(form).process(&mut batch).unwrap();
        assert_eq!(batch.item_count(), 4);
        assert_eq!(
            event_names(&batch),
            vec!["GET /cart:retry", "GET /ready:", "SELECT:", "INSERT:"]
        );
    }
    // A span dropped by a span condition is not looked at by the event conditions.
    let mut batch = sample_traces();
    filter("traces: {span: ['name == \"GET /cart\"'], spanevent: ['span.name == \"GET /cart\" and Len(attributes) > 5']}")
        .process(&mut batch)
        .unwrap();
    assert_eq!(
        event_names(&batch),
        vec!["GET /ready:exception", "SELECT:", "INSERT:"]
    );
}

fn sample_metrics() -> Batch {
    metrics_batch(vec![(
        vec![kv("service.name", s("queue"))],
        "m",
        vec![
            gauge(
                "queue.size",
                vec![
                    int_point(0, vec![kv("q", s("a"))]),
                    int_point(0, vec![kv("q", s("b"))]),
                ],
            ),
            gauge(
                "queue.age",
                vec![int_point(0, vec![]), int_point(5, vec![])],
            ),
            sum(
                "http.requests",
                vec![int_point(3, vec![kv("http.method", s("GET"))])],
            ),
            histogram("latency", &[1, 2]),
        ],
    )])
}

#[test]
fn every_metric_form_drops_the_same_points() {
    let forms = [
        "metric_conditions: ['datapoint.value_int == 0 and metric.type == METRIC_DATA_TYPE_GAUGE', 'metric.name == \"latency\"']",
        r#"
metric_conditions:
  - context: datapoint
    conditions: ['value_int == 0 and metric.type == METRIC_DATA_TYPE_GAUGE']
  - context: metric
    conditions: ['name == "latency"']
"#,
        r#"
metrics:
  datapoint: ['value_int == 0 and metric.type == METRIC_DATA_TYPE_GAUGE']
  metric: ['type == METRIC_DATA_TYPE_HISTOGRAM']
"#,
    ];
    for form in forms {
        let mut batch = sample_metrics();
        assert_eq!(batch.item_count(), 7);
        filter(form).process(&mut batch).unwrap();
        // queue.size lost both points, so the metric is gone; queue.age keeps one.
        assert_eq!(
            metric_points(&batch),
            vec!["queue.age:1", "http.requests:1"],
            "form:{form}"
        );
        assert_eq!(batch.item_count(), 2);
    }
}

#[test]
fn legacy_metric_names_and_datapoint_attribute_functions() {
    let mut batch = sample_metrics();
    filter("metrics: {exclude: {match_type: regexp, metric_names: ['^queue\\.']}}")
        .process(&mut batch)
        .unwrap();
    assert_eq!(metric_points(&batch), vec!["http.requests:1", "latency:2"]);
    let mut batch = sample_metrics();
    filter("metrics: {include: {match_type: strict, metric_names: [latency], resource_attributes: [{Key: service.name, Value: queue}]}}")
        .process(&mut batch)
        .unwrap();
    assert_eq!(metric_points(&batch), vec!["latency:2"]);
    let mut batch = sample_metrics();
    filter("metric_conditions: ['HasAttrOnDatapoint(\"http.method\", \"GET\")', 'HasAttrKeyOnDatapoint(\"q\")']")
        .process(&mut batch)
        .unwrap();
    assert_eq!(metric_points(&batch), vec!["queue.age:2", "latency:2"]);
}

#[test]
fn errors_carry_yaml_paths_and_hints() {
    assert_eq!(
        FilterProcessor::from_config(
            &yaml("logs: {log_record: ['body == \"a\"', 'IsMach(body, \"x\")']}"),
            "processors.filter/noise"
        )
        .err()
        .unwrap()
        .to_string(),
        r#"processors.filter/noise.logs.log_record[1]: unknown function "IsMach" (did you mean "IsMatch"?)"#
    );
    let cases = [
        ("log_conditions: ['log.body == \"a\"', 'log.severity_number < SEVERITY_NUMBER_WARM']",
         r#"processors.filter/test.log_conditions[1]: unknown enum "SEVERITY_NUMBER_WARM" (did you mean "SEVERITY_NUMBER_WARN"?)"#),
        ("trace_conditions: [{context: span, conditions: ['nme == \"x\"']}]",
         r#"processors.filter/test.trace_conditions[0].conditions[0]: unknown path "nme" in the span context (did you mean "name"?)"#),
        ("trace_conditions: [{context: spam, conditions: ['name == \"x\"']}]",
         r#"processors.filter/test.trace_conditions[0].context: unknown context "spam" (valid: resource, scope, span, spanevent) (did you mean "span"?)"#),
        ("trace_conditions: [{context: span, condition: ['name == \"x\"']}]",
         "processors.filter/test.trace_conditions[0].condition: unknown field `condition`, expected one of `context`, `conditions`, `error_mode`"),
        ("log_conditions: ['log.body == \"a\"', {conditions: ['log.body == \"b\"']}]",
         "processors.filter/test.log_conditions: configuring multiple configuration styles is not supported, please use only Basic configuration (a list of strings) or only Advanced configuration (a list of {context, conditions})"),
        ("log_conditions: ['log.body == \"a\"']\nlogs: {log_record: ['body == \"b\"']}",
         r#"processors.filter/test: cannot use context inferred log conditions "log_conditions" and the settings "logs.resource", "logs.log_record", "logs.include", "logs.exclude" at the same time"#),
        ("spans: {exclude: {match_type: regex, services: [a]}}",
         r#"processors.filter/test.spans.exclude.match_type: unrecognized match_type "regex", valid types are: strict, regexp (did you mean "regexp"?)"#),
        ("metrics: {exclude: {match_type: expr, expressions: ['MetricName == \"x\"']}}",
         r#"processors.filter/test.metrics.exclude.match_type: match_type "expr" (antonmedv/expr expressions) is not supported; write the expressions as metric_conditions"#),
        ("logs: {include: {severity_number: {min: NOTICE}}}",
         r#"processors.filter/test.logs.include.severity_number.min: "NOTICE" is not a valid severity (use 1-24 or TRACE, DEBUG, INFO, WARN, ERROR, FATAL with an optional 2-4 suffix)"#),
        ("spans: {include: {match_type: strict}}",
         r#"processors.filter/test.spans.include: at least one of "services", "span_names", "span_kinds", "attributes", "resources" or "libraries" must be specified"#),
        ("logs: {exclude: {match_type: regexp, bodies: ['(']}}",
         "processors.filter/test.logs.exclude.bodies[0]: invalid regex \"(\": regex parse error:\n    (\n    ^\nerror: unclosed group"),
        ("error_mode: loud", "processors.filter/test.error_mode: unknown variant `loud`, expected one of `propagate`, `ignore`, `silent`"),
    ];
    for (src, want) in cases {
        assert_eq!(config_error(src), want, "for {src}");
    }
    assert_eq!(
        config_error("profiles: {profile: ['true']}"),
        "processors.filter/test.profiles: the profiles signal is not supported by Weir"
    );
    assert_eq!(
        config_error("logs: {log: ['true']}"),
        "processors.filter/test.logs.log: unknown field `log`, expected one of `include`, `exclude`, `resource`, `log_record`"
    );
    // Every problem is reported in one pass.
    let many = config_error("log_conditions: ['log.bdy == 1']\ntrace_conditions: ['span.nam == 1']\nmetrics: {metric: ['Lenn(name) > 1']}");
    assert_eq!(many.lines().count(), 3, "{many}");
}

#[test]
fn error_mode_propagate_leaves_the_batch_unchanged() {
    let p = filter(
        "log_conditions: ['log.body == \"cache miss\"', 'Len(log.attributes[\"order.id\"]) > 0']",
    );
    let mut batch = sample_logs();
    let err = p.process(&mut batch).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"condition "Len(log.attributes[\"order.id\"]) > 0" failed: Len: unsupported type nil (want a string, map or list)"#
    );
    assert_eq!(batch.item_count(), 7, "nothing dropped on error");

    for mode in ["ignore", "silent"] {
        let p = filter(&format!("error_mode: {mode}\nlog_conditions: ['log.body == \"cache miss\"', 'Len(log.attributes[\"order.id\"]) > 0']"));
        let mut batch = sample_logs();
        p.process(&mut batch).unwrap();
        assert_eq!(
            batch.item_count(),
            6,
            "{mode}: the failing condition counts as false"
        );
    }
    // A group's error_mode overrides the processor's.
    let p = filter("log_conditions: [{conditions: ['Len(log.attributes[\"order.id\"]) > 0'], error_mode: ignore}, {conditions: ['log.body == \"cache miss\"']}]");
    let mut batch = sample_logs();
    p.process(&mut batch).unwrap();
    assert_eq!(batch.item_count(), 6);
}

#[derive(Default)]
struct Sink(Mutex<Vec<Batch>>);

#[async_trait]
impl Consumer for Sink {
    async fn consume(&self, batch: Batch) -> Result<(), ConsumeError> {
        self.0.lock().unwrap().push(batch);
        Ok(())
    }
}

#[tokio::test]
async fn built_stage_fails_open_and_counts() {
    let mut reg = weir_api::Registry::new();
    weir_filter::register(&mut reg);
    let factory = reg.processors.get("filter").unwrap();
    let cfg = factory
        .parse(
            &yaml("log_conditions: ['log.body == \"cache miss\"', 'Len(log.severity_number) > 0']"),
            PATH,
        )
        .unwrap();
    let ctx = BuildContext::for_component(ComponentId::parse("filter/test").unwrap());
    let sink = Arc::new(Sink::default());
    let stage = cfg.build(&ctx, Signal::Logs, sink.clone()).unwrap();
    stage.consume(sample_logs()).await.unwrap();
    let ok = factory
        .parse(
            &yaml("log_conditions: ['log.body == \"cache miss\"']"),
            PATH,
        )
        .unwrap();
    ok.build(&ctx, Signal::Logs, sink.clone())
        .unwrap()
        .consume(sample_logs())
        .await
        .unwrap();
    let counts: Vec<usize> = sink
        .0
        .lock()
        .unwrap()
        .iter()
        .map(Batch::item_count)
        .collect();
    assert_eq!(counts, vec![7, 6]);
    let metrics = ctx.telemetry.encode();
    assert!(
        metrics.contains(
            "weir_processor_failures_total{processor=\"filter/test\",pipeline=\"logs\"} 1"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "weir_processor_dropped_items_total{processor=\"filter/test\",pipeline=\"logs\"} 1"
        ),
        "{metrics}"
    );
}

#[test]
fn unchanged_batches_keep_their_bytes() {
    let mut batch = encode(&sample_logs());
    assert!(batch.original_bytes().is_some());
    filter("log_conditions: ['log.body == \"nothing like this\"']")
        .process(&mut batch)
        .unwrap();
    assert!(batch.original_bytes().is_some(), "no drop, no re-encode");
    filter("log_conditions: ['log.body == \"cache miss\"']")
        .process(&mut batch)
        .unwrap();
    assert!(batch.original_bytes().is_none());
    assert_eq!(batch.item_count(), 6);
}

#[test]
fn collector_configs_from_the_wild_parse() {
    // Snippets in the shapes found in the filterprocessor README and in users' configs.
    let snippets = [
        r#"
error_mode: ignore
traces:
  span:
    - 'attributes["container.name"] == "app_container_1"'
    - 'resource.attributes["host.name"] == "localhost"'
    - 'name == "app_3"'
  spanevent:
    - 'attributes["grpc"] == true'
    - 'IsMatch(name, ".*grpc.*")'
metrics:
  metric:
    - 'name == "my.metric" and resource.attributes["my_label"] == "abc123"'
    - 'type == METRIC_DATA_TYPE_HISTOGRAM'
  datapoint:
    - 'metric.type == METRIC_DATA_TYPE_SUMMARY'
    - 'resource.attributes["service.name"] == "my_service_name"'
logs:
  log_record:
    - 'IsMatch(body, ".*password.*")'
    - 'severity_number < SEVERITY_NUMBER_WARN'
"#,
        r#"
error_mode: ignore
trace_conditions:
  - 'IsMatch(span.attributes["http.url"], ".*/health.*")'
  - 'span.kind == SPAN_KIND_INTERNAL and IsRootSpan()'
metric_conditions:
  - 'metric.name == "k8s.pod.phase" and datapoint.value_int == 4'
  - 'metric.name == "http.server.duration" and metric.type == METRIC_DATA_TYPE_HISTOGRAM'
log_conditions:
  - 'log.severity_text == "DEBUG"'
  - 'resource.attributes["k8s.namespace.name"] == "kube-system"'
"#,
        r#"
log_conditions:
  - context: resource
    error_mode: silent
    conditions:
      - 'attributes["service.name"] == "noisy"'
  - context: log
    conditions:
      - 'IsMatch(String(body), "^DEBUG")'
      - 'Concat([attributes["a"], attributes["b"]], ":") == "x:y"'
"#,
        r#"
metrics:
  include:
    match_type: regexp
    metric_names:
      - prefix/.*
      - prefix_.*
    resource_attributes:
      - key: container.name
        value: app_container_1
  exclude:
    match_type: strict
    metric_names:
      - hello_world
      - hello/world
"#,
        r#"
logs:
  include:
    match_type: regexp
    resource_attributes:
      - Key: host.name
        Value: prefix.*
    record_attributes:
      - key: record_attr
        value: prefix_.*
    severity_texts: ["INFO[2-4]?", "WARN[2-4]?", "ERROR[2-4]?"]
  exclude:
    match_type: strict
    bodies: ["IMPORTANT RECORD"]
    severity_number:
      min: "INFO"
      match_undefined: true
"#,
        r#"
spans:
  include:
    match_type: strict
    services:
      - app_3
  exclude:
    match_type: regexp
    services:
      - app_1
      - app_2
    span_names:
      - hello_world
      - hello/world
    attributes:
      - key: container.name
        value: (app_container_1|app_container_2)
    libraries:
      - name: opentelemetry
        version: 0.0-beta
    resources:
      - key: container.host
        value: (localhost|127.0.0.1)
"#,
        r#"
metrics:
  regexp:
    cacheenabled: true
    cachemaxnumentries: 10
  exclude:
    match_type: regexp
    metric_names: ['.*\.bucket$']
"#,
    ];
    for src in snippets {
        filter(src);
    }
}

#[test]
fn legacy_attribute_matching_is_typed() {
    let batch = || {
        logs_batch(vec![(
            vec![],
            "s",
            vec![
                log("int", 9, vec![kv("code", i(200))]),
                log("str", 9, vec![kv("code", s("200"))]),
                log("bytes", 9, vec![kv("code", bytes(b"200"))]),
                log("none", 9, vec![]),
            ],
        )])
    };
    let cases = [
        (
            "{match_type: strict, record_attributes: [{key: code, value: 200}]}",
            vec!["str", "bytes", "none"],
        ),
        (
            "{match_type: strict, record_attributes: [{key: code, value: '200'}]}",
            vec!["int", "bytes", "none"],
        ),
        (
            "{match_type: regexp, record_attributes: [{key: code, value: '^2'}]}",
            vec!["bytes", "none"],
        ),
        (
            "{match_type: strict, record_attributes: [{key: code}]}",
            vec!["none"],
        ),
    ];
    for (exclude, want) in cases {
        let mut b = batch();
        filter(&format!("logs: {{exclude: {exclude}}}"))
            .process(&mut b)
            .unwrap();
        assert_eq!(log_bodies(&b), want, "{exclude}");
    }
}
