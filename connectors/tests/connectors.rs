//! The connectors on crafted requests: exact counts, attributes, routes, error modes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use weir_api::fixtures::kv;
use weir_api::otlp::collector::logs::v1::ExportLogsServiceRequest;
use weir_api::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use weir_api::otlp::collector::trace::v1::ExportTraceServiceRequest;
use weir_api::otlp::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use weir_api::otlp::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use weir_api::otlp::metrics::v1::{
    metric::Data, number_data_point, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics,
};
use weir_api::otlp::resource::v1::Resource;
use weir_api::otlp::trace::v1::{span::Event, ResourceSpans, ScopeSpans, Span};
use weir_api::{
    Batch, BuildContext, ComponentId, ConsumeError, Consumer, Payload, Registry, Signal,
};

#[derive(Default)]
struct Capture(Mutex<Vec<Payload>>);

#[async_trait]
impl Consumer for Capture {
    async fn consume(&self, batch: Batch) -> Result<(), ConsumeError> {
        self.0.lock().unwrap().push(batch.into_payload());
        Ok(())
    }
}

fn s(v: &str) -> any_value::Value {
    any_value::Value::StringValue(v.into())
}

fn registry() -> Registry {
    let mut r = Registry::new();
    weir_connectors::register(&mut r);
    r
}

/// Builds connector `kind` with `yaml` from `from` to `to`, feeding the named captures.
fn build(
    kind: &str,
    yaml: &str,
    from: Signal,
    to: Signal,
    outputs: &[(&str, Arc<Capture>)],
) -> Arc<dyn weir_api::Stage> {
    let r = registry();
    let value = config_yaml(yaml);
    let cfg = r.connectors[kind]
        .parse(&value, &format!("connectors.{kind}"))
        .unwrap();
    let ctx = BuildContext::for_component(ComponentId::parse(kind).unwrap());
    cfg.build(
        &ctx,
        from,
        to,
        outputs
            .iter()
            .map(|(id, c)| (id.to_string(), c.clone() as Arc<dyn Consumer>))
            .collect(),
    )
    .unwrap()
}

fn parse_errors(kind: &str, yaml: &str) -> Vec<String> {
    let r = registry();
    let value = config_yaml(yaml);
    match r.connectors[kind].parse(&value, &format!("connectors.{kind}")) {
        Ok(_) => Vec::new(),
        Err(e) => e.0.iter().map(|e| e.to_string()).collect(),
    }
}

fn log(body: &str, sev: i32, attrs: Vec<KeyValue>, t: u64) -> LogRecord {
    LogRecord {
        body: Some(AnyValue {
            value: Some(s(body)),
        }),
        severity_number: sev,
        attributes: attrs,
        time_unix_nano: t,
        ..Default::default()
    }
}

fn logs_req(resources: Vec<(Vec<KeyValue>, Vec<LogRecord>)>) -> Batch {
    Batch::new(Payload::Logs(ExportLogsServiceRequest {
        resource_logs: resources
            .into_iter()
            .map(|(attrs, records)| ResourceLogs {
                resource: Some(Resource {
                    attributes: attrs,
                    ..Default::default()
                }),
                scope_logs: vec![ScopeLogs {
                    scope: Some(InstrumentationScope {
                        name: "scope".into(),
                        attributes: vec![kv("region", s("eu"))],
                        ..Default::default()
                    }),
                    log_records: records,
                    ..Default::default()
                }],
                ..Default::default()
            })
            .collect(),
    }))
}

/// (metric name, attributes as "k=v,...", value, start, end) of every emitted point.
fn points(p: &[Payload]) -> Vec<(String, String, i64, u64, u64)> {
    let mut out = Vec::new();
    for payload in p {
        let Payload::Metrics(m) = payload else {
            panic!("not metrics")
        };
        for rm in &m.resource_metrics {
            for sm in &rm.scope_metrics {
                assert_eq!(
                    sm.scope.as_ref().unwrap().name,
                    weir_connectors::count::SCOPE_NAME
                );
                for metric in &sm.metrics {
                    let Some(Data::Sum(sum)) = &metric.data else {
                        panic!("not a sum")
                    };
                    assert!(sum.is_monotonic);
                    assert_eq!(sum.aggregation_temporality, 1);
                    for dp in &sum.data_points {
                        let attrs: Vec<String> = dp
                            .attributes
                            .iter()
                            .map(|kv| {
                                let v = match kv.value.as_ref().unwrap().value.as_ref().unwrap() {
                                    any_value::Value::StringValue(s) => s.clone(),
                                    any_value::Value::IntValue(i) => format!("{i}i"),
                                    other => format!("{other:?}"),
                                };
                                format!("{}={v}", kv.key)
                            })
                            .collect();
                        let Some(number_data_point::Value::AsInt(n)) = dp.value else {
                            panic!("not an int")
                        };
                        out.push((
                            metric.name.clone(),
                            attrs.join(","),
                            n,
                            dp.start_time_unix_nano,
                            dp.time_unix_nano,
                        ));
                    }
                }
            }
        }
    }
    out
}

#[tokio::test]
async fn count_defaults_count_every_log_record_per_resource() {
    let out = Arc::new(Capture::default());
    let c = build(
        "count",
        "{}",
        Signal::Logs,
        Signal::Metrics,
        &[("metrics", out.clone())],
    );
    let batch = logs_req(vec![
        (
            vec![kv("service.name", s("a"))],
            vec![log("x", 9, vec![], 100), log("y", 9, vec![], 300)],
        ),
        (
            vec![kv("service.name", s("b"))],
            vec![log("z", 9, vec![], 0)],
        ),
    ]);
    c.consume(batch).await.unwrap();
    let got = points(&out.0.lock().unwrap());
    assert_eq!(got.len(), 2);
    assert_eq!(
        (got[0].0.as_str(), got[0].2, got[0].3, got[0].4),
        ("log.record.count", 2, 100, 300)
    );
    assert_eq!((got[1].0.as_str(), got[1].2), ("log.record.count", 1));
    // No item time: now.
    assert!(got[1].4 > 1_600_000_000_000_000_000, "{got:?}");
    let Payload::Metrics(m) = &out.0.lock().unwrap()[0] else {
        panic!()
    };
    assert_eq!(
        m.resource_metrics[1].resource.as_ref().unwrap().attributes,
        vec![kv("service.name", s("b"))]
    );
}

#[tokio::test]
async fn count_conditions_or_and_attributes_from_item_scope_resource_or_default() {
    let out = Arc::new(Capture::default());
    let c = build(
        "count",
        r#"
logs:
  errors.by.env:
    description: errors
    conditions: ['severity_number >= SEVERITY_NUMBER_ERROR', 'attributes["forced"] == true']
    attributes: [{key: env, default_value: unknown}, {key: region}]
  by.code:
    attributes: [{key: code}]
"#,
        Signal::Logs,
        Signal::Metrics,
        &[("metrics", out.clone())],
    );
    let batch = logs_req(vec![(
        vec![kv("env", s("prod"))],
        vec![
            log(
                "a",
                17,
                vec![kv("code", any_value::Value::IntValue(500))],
                1,
            ),
            log(
                "b",
                9,
                vec![kv("forced", any_value::Value::BoolValue(true))],
                2,
            ),
            log("c", 9, vec![kv("env", s("dev"))], 3),
            log(
                "d",
                21,
                vec![
                    kv("env", s("dev")),
                    kv("code", any_value::Value::IntValue(500)),
                ],
                4,
            ),
            log("e", 9, vec![kv("code", s("x"))], 5),
        ],
    )]);
    c.consume(batch).await.unwrap();
    let mut got: Vec<(String, String, i64)> = points(&out.0.lock().unwrap())
        .into_iter()
        .map(|(n, a, v, _, _)| (n, a, v))
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            ("by.code".into(), "code=500i".into(), 2),
            ("by.code".into(), "code=x".into(), 1),
            // env from the record (dev) before the resource (prod); region from the scope.
            ("errors.by.env".into(), "env=dev,region=eu".into(), 1),
            ("errors.by.env".into(), "env=prod,region=eu".into(), 2),
        ]
    );
}

#[tokio::test]
async fn count_spans_events_metrics_and_points() {
    let out = Arc::new(Capture::default());
    let c = build(
        "count",
        "",
        Signal::Traces,
        Signal::Metrics,
        &[("m", out.clone())],
    );
    let span = |name: &str, events: usize| Span {
        name: name.into(),
        start_time_unix_nano: 10,
        end_time_unix_nano: 20,
        events: vec![Event::default(); events],
        ..Default::default()
    };
    c.consume(Batch::new(Payload::Traces(ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: vec![span("a", 2), span("b", 0), span("c", 1)],
                ..Default::default()
            }],
            ..Default::default()
        }],
    })))
    .await
    .unwrap();
    let got: Vec<(String, i64)> = points(&out.0.lock().unwrap())
        .into_iter()
        .map(|(n, _, v, _, _)| (n, v))
        .collect();
    assert_eq!(
        got,
        vec![
            ("trace.span.count".to_string(), 3),
            ("trace.span.event.count".to_string(), 3)
        ]
    );

    let out = Arc::new(Capture::default());
    let c = build(
        "count",
        "",
        Signal::Metrics,
        Signal::Metrics,
        &[("m", out.clone())],
    );
    let gauge = |n: usize| Metric {
        name: "g".into(),
        data: Some(Data::Gauge(Gauge {
            data_points: vec![NumberDataPoint::default(); n],
        })),
        ..Default::default()
    };
    c.consume(Batch::new(Payload::Metrics(ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![gauge(2), gauge(5)],
                ..Default::default()
            }],
            ..Default::default()
        }],
    })))
    .await
    .unwrap();
    let got: Vec<(String, i64)> = points(&out.0.lock().unwrap())
        .into_iter()
        .map(|(n, _, v, _, _)| (n, v))
        .collect();
    assert_eq!(
        got,
        vec![
            ("metric.count".to_string(), 2),
            ("metric.datapoint.count".to_string(), 7)
        ]
    );
}

#[test]
fn count_config_errors_name_the_path() {
    assert_eq!(
        parse_errors(
            "count",
            "{metrics: {m: {attributes: [{key: a}]}}, logs: {l: {attributes: [{key: a, any_depth: true, default_value: [1]}]}}, spans: {s: {conditions: ['nosuch == 1']}}}"
        ),
        vec![
            "connectors.count.spans.s.conditions[0]: unknown path \"nosuch\" in the span context".to_string(),
            "connectors.count.metrics.m.attributes: attributes are not supported for metrics (a metric has none; count data points instead)".to_string(),
            "connectors.count.logs.l.attributes[0].any_depth: any_depth is not supported: the attribute is looked up on the item, its scope and its resource".to_string(),
            "connectors.count.logs.l.attributes[0].default_value: default_value must be a string, an integer or a float, found a list".to_string(),
        ]
    );
}

fn bodies(p: &[Payload]) -> Vec<String> {
    let mut out = Vec::new();
    for payload in p {
        let Payload::Logs(l) = payload else { panic!() };
        for rl in &l.resource_logs {
            for sl in &rl.scope_logs {
                for lr in &sl.log_records {
                    if let Some(any_value::Value::StringValue(b)) =
                        lr.body.as_ref().and_then(|b| b.value.as_ref())
                    {
                        out.push(b.clone());
                    }
                }
            }
        }
    }
    out
}

const ROUTES: &str = r#"
default_pipelines: [logs/other]
table:
  - condition: 'attributes["tenant"] == "acme"'
    pipelines: [logs/acme]
  - context: log
    statement: route() where severity_number >= SEVERITY_NUMBER_ERROR
    pipelines: [logs/errors, logs/audit]
  - context: request
    condition: 'request["X-Tenant"] == "globex"'
    pipelines: [logs/globex]
"#;

#[tokio::test]
async fn routing_sends_each_unit_to_the_first_matching_route_once() {
    let names = [
        "logs/acme",
        "logs/errors",
        "logs/audit",
        "logs/globex",
        "logs/other",
    ];
    let caps: Vec<(&str, Arc<Capture>)> = names
        .iter()
        .map(|n| (*n, Arc::new(Capture::default())))
        .collect();
    let r = build("routing", ROUTES, Signal::Logs, Signal::Logs, &caps);
    let batch = logs_req(vec![
        (
            vec![kv("tenant", s("acme"))],
            vec![
                log("acme-info", 9, vec![], 1),
                log("acme-error", 17, vec![], 2),
            ],
        ),
        (
            vec![kv("tenant", s("initech"))],
            vec![
                log("ini-info", 9, vec![], 3),
                log("ini-error", 17, vec![], 4),
                log("ini-fatal", 21, vec![], 5),
            ],
        ),
    ]);
    r.consume(batch).await.unwrap();
    let got = |i: usize| bodies(&caps[i].1 .0.lock().unwrap());
    assert_eq!(got(0), vec!["acme-info", "acme-error"]);
    assert_eq!(got(1), vec!["ini-error", "ini-fatal"]);
    assert_eq!(got(2), vec!["ini-error", "ini-fatal"]);
    assert_eq!(got(3), Vec::<String>::new());
    assert_eq!(got(4), vec!["ini-info"]);

    // A request route takes the whole request by its client metadata.
    let mut b = logs_req(vec![(
        vec![kv("tenant", s("initech"))],
        vec![log("g-info", 9, vec![], 1)],
    )]);
    b.context.metadata = Some(Arc::new(vec![("x-tenant".into(), "globex".into())]));
    r.consume(b).await.unwrap();
    assert_eq!(got(3), vec!["g-info"]);
    assert_eq!(got(4), vec!["ini-info"]);
}

#[tokio::test]
async fn routing_error_modes_and_datapoint_routes() {
    let other = Arc::new(Capture::default());
    let big = Arc::new(Capture::default());
    // Int() of a string that is no number fails at run time.
    let r = build(
        "routing",
        "{error_mode: propagate, default_pipelines: [m/other], table: [{context: datapoint, condition: 'Int(attributes[\"n\"]) > 10', pipelines: [m/big]}]}",
        Signal::Metrics,
        Signal::Metrics,
        &[("m/other", other.clone()), ("m/big", big.clone())],
    );
    // A map where a number is expected makes Int() fail at run time.
    let point = |n: &str| NumberDataPoint {
        attributes: vec![kv(
            "n",
            if n == "x" {
                any_value::Value::KvlistValue(Default::default())
            } else {
                s(n)
            },
        )],
        value: Some(number_data_point::Value::AsInt(1)),
        ..Default::default()
    };
    let req = |pts: Vec<NumberDataPoint>| {
        Batch::new(Payload::Metrics(ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![Metric {
                        name: "g".into(),
                        unit: "1".into(),
                        data: Some(Data::Gauge(Gauge { data_points: pts })),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }))
    };
    r.consume(req(vec![point("5"), point("50"), point("11")]))
        .await
        .unwrap();
    let count = |c: &Capture| -> usize { c.0.lock().unwrap().iter().map(|p| p.item_count()).sum() };
    assert_eq!((count(&big), count(&other)), (2, 1));
    let err = r
        .consume(req(vec![point("x")]))
        .await
        .expect_err("propagate refuses");
    assert!(
        matches!(&err, ConsumeError::Rejected { reason, .. } if reason.contains("routing condition failed")),
        "{err}"
    );
    assert_eq!((count(&big), count(&other)), (2, 1));
    // The split metric keeps its name and unit on both sides.
    {
        let captured = big.0.lock().unwrap();
        let Payload::Metrics(m) = &captured[0] else {
            panic!()
        };
        assert_eq!(m.resource_metrics[0].scope_metrics[0].metrics[0].unit, "1");
    }

    let r = build(
        "routing",
        "{error_mode: ignore, default_pipelines: [m/other], table: [{context: datapoint, condition: 'Int(attributes[\"n\"]) > 10', pipelines: [m/big]}]}",
        Signal::Metrics,
        Signal::Metrics,
        &[("m/other", other.clone()), ("m/big", big.clone())],
    );
    r.consume(req(vec![point("x"), point("12")])).await.unwrap();
    assert_eq!((count(&big), count(&other)), (3, 2));
}

#[test]
fn routing_config_errors_name_the_path() {
    assert_eq!(
        parse_errors(
            "routing",
            "{match_once: false, table: [{pipelines: [a]}, {condition: x1, statement: y1, pipelines: [a]}, {condition: 'attributes[\"a\"] == 1', context: trace, pipelines: [a]}, {statement: 'drop()', pipelines: []}, {context: request, condition: 'request[\"a\"] > 1', pipelines: [a]}]}"
        ),
        vec![
            "connectors.routing.match_once: match_once: false is no longer supported (the collector removed it): each unit of data goes to the first matching route",
            "connectors.routing.table[0]: a route needs a condition or a statement",
            "connectors.routing.table[1]: a route takes a condition or a statement, not both",
            "connectors.routing.table[2].context: invalid context \"trace\" (expected resource, span, metric, datapoint, log or request)",
            "connectors.routing.table[3].pipelines: a route needs at least one pipeline",
            "connectors.routing.table[3].statement: expected \"route() where <condition>\", found \"drop()\"",
            "connectors.routing.table[4].condition: a request condition is request[\"<metadata key>\"] == \"<value>\" (or !=), found \"request[\\\"a\\\"] > 1\"",
        ]
    );
    assert_eq!(
        parse_errors("routing", "{}"),
        vec!["connectors.routing.table: the routing table is empty: give at least one route"]
    );
}

/// YAML with the rules of Weir's config loader (the Collector's YAML 1.2 core schema):
/// `n`, `y`, `on`, `off` stay strings; `0755` and `1_000` keep their spelling.
fn config_yaml(src: &str) -> serde_json::Value {
    serde_saphyr::from_str_with_options(
        src,
        serde_saphyr::options! {
            strict_booleans: true,
            leading_zero_numbers_as_strings: true,
            underscored_numbers_as_strings: true,
        },
    )
    .unwrap()
}
