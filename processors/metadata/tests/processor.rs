//! The `metadata` processor end to end: built from its YAML section through the registry,
//! run as a pipeline stage, summaries taken from the hub.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use prost::Message;
use weir_api::fixtures::kv;
use weir_api::otlp::collector::logs::v1::ExportLogsServiceRequest;
use weir_api::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use weir_api::otlp::collector::trace::v1::ExportTraceServiceRequest;
use weir_api::otlp::common::v1::{any_value, AnyValue, KeyValue};
use weir_api::otlp::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use weir_api::otlp::metrics::v1::{
    metric, number_data_point, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};
use weir_api::otlp::resource::v1::Resource;
use weir_api::otlp::trace::v1::{span, ResourceSpans, ScopeSpans, Span, Status};
use weir_api::{
    Batch, BuildContext, ComponentId, ConsumeError, Consumer, Payload, Registry, Shared, Signal,
    Stage,
};
use weir_summary::summary::{CatalogSummary, MetricKind, Temporality};
use weir_summary::{MetadataConfig, MetadataHandle};

fn s(v: &str) -> Option<AnyValue> {
    Some(AnyValue {
        value: Some(any_value::Value::StringValue(v.to_string())),
    })
}

fn resource(service: &str) -> Option<Resource> {
    Some(Resource {
        attributes: vec![kv("service.name", service), kv("host.name", "node-1")],
        ..Default::default()
    })
}

fn log(body: &str, severity: i32, attrs: Vec<KeyValue>) -> LogRecord {
    LogRecord {
        time_unix_nano: 1_700_000_000_000_000_000,
        severity_number: severity,
        body: s(body),
        attributes: attrs,
        ..Default::default()
    }
}

fn logs(service: &str, records: Vec<LogRecord>) -> Batch {
    let req = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource(service),
            scope_logs: vec![ScopeLogs {
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    Batch::decode(Signal::Logs, Bytes::from(req.encode_to_vec())).unwrap()
}

fn spans(service: &str, spans: Vec<Span>) -> Batch {
    Batch::new(Payload::Traces(ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource(service),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }))
}

fn span(name: &str, id: u8, parent: Option<u8>, ms: u64, attrs: Vec<KeyValue>) -> Span {
    Span {
        name: name.to_string(),
        span_id: vec![id; 8],
        parent_span_id: parent.map(|p| vec![p; 8]).unwrap_or_default(),
        kind: span::SpanKind::Internal as i32,
        start_time_unix_nano: 1_000_000_000,
        end_time_unix_nano: 1_000_000_000 + ms * 1_000_000,
        status: Some(Status {
            code: if id.is_multiple_of(2) { 2 } else { 0 },
            ..Default::default()
        }),
        attributes: attrs,
        ..Default::default()
    }
}

fn counter(service: &str, name: &str, points: Vec<(Vec<KeyValue>, f64)>) -> Batch {
    Batch::new(Payload::Metrics(ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource(service),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: name.to_string(),
                    unit: "By".to_string(),
                    data: Some(metric::Data::Sum(Sum {
                        data_points: points
                            .into_iter()
                            .map(|(attributes, v)| NumberDataPoint {
                                attributes,
                                time_unix_nano: 5,
                                value: Some(number_data_point::Value::AsDouble(v)),
                                ..Default::default()
                            })
                            .collect(),
                        aggregation_temporality: 2,
                        is_monotonic: true,
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }))
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

/// Builds the processor as one service build would, with that build's `shared` state.
fn build(
    id: &str,
    yaml: serde_json::Value,
    signal: Signal,
    sink: Arc<Sink>,
    shared: &Shared,
) -> Arc<dyn Stage> {
    let mut registry = Registry::new();
    weir_metadata::register(&mut registry);
    let factory = registry.processors.get("metadata").unwrap();
    let config = factory.parse(&yaml, &format!("processors.{id}")).unwrap();
    let mut ctx = BuildContext::for_component(ComponentId::parse(id).unwrap());
    ctx.shared = shared.clone();
    config.build(&ctx, signal, sink).unwrap()
}

#[tokio::test]
async fn passes_batches_through_unchanged_and_summarises_them() {
    let sink = Arc::new(Sink::default());
    let shared = Shared::new();
    let stage = build(
        "metadata/pass",
        serde_json::json!({"max_templates": 50}),
        Signal::Logs,
        sink.clone(),
        &shared,
    );
    let batch = logs(
        "checkout",
        vec![
            log(
                "order 1001 paid in 35 ms",
                9,
                vec![kv("http.method", "POST")],
            ),
            log(
                "order 1002 paid in 12 ms",
                9,
                vec![kv("http.method", "GET")],
            ),
            log("cache miss for key user:17", 5, vec![]),
        ],
    );
    let original = batch.original_bytes().cloned().unwrap();
    stage.consume(batch).await.unwrap();
    let got = sink.0.lock().unwrap().pop().unwrap();
    // Untouched: still forwarded as the bytes it arrived as.
    assert_eq!(got.original_bytes(), Some(&original));

    let summary = shared
        .get::<MetadataHandle>("metadata/pass")
        .unwrap()
        .take();
    let svc = &summary.services["checkout"];
    assert_eq!(svc.logs.volume.items, 3);
    assert_eq!(svc.logs.severity.info, 2);
    assert_eq!(svc.logs.severity.debug, 1);
    let mut templates: Vec<(String, u64)> = svc
        .logs
        .templates
        .values()
        .map(|t| (t.template.clone(), t.count))
        .collect();
    templates.sort();
    assert_eq!(
        templates,
        vec![
            ("cache miss for key user:<*>".to_string(), 1),
            ("order <*> paid in <*> ms".to_string(), 2),
        ]
    );
    let method = &svc.logs.attributes.item["http.method"];
    assert_eq!((method.items, method.types.string), (2, 2));
    assert_eq!(method.distinct.estimate(), 2);
    let host = &svc.logs.attributes.resource["host.name"];
    assert_eq!(host.items, 3);
    // A second take only holds what came since.
    assert!(shared
        .get::<MetadataHandle>("metadata/pass")
        .unwrap()
        .take()
        .is_empty());
}

#[tokio::test]
async fn same_id_in_several_pipelines_shares_one_handle() {
    let sink = Arc::new(Sink::default());
    let shared = Shared::new();
    let logs_stage = build(
        "metadata/shared",
        serde_json::Value::Null,
        Signal::Logs,
        sink.clone(),
        &shared,
    );
    let traces_stage = build(
        "metadata/shared",
        serde_json::Value::Null,
        Signal::Traces,
        sink.clone(),
        &shared,
    );
    logs_stage
        .consume(logs("api", vec![log("started", 9, vec![])]))
        .await
        .unwrap();
    traces_stage
        .consume(spans("api", vec![span("GET /", 1, None, 5, vec![])]))
        .await
        .unwrap();
    let summary = shared
        .get::<MetadataHandle>("metadata/shared")
        .unwrap()
        .take();
    assert_eq!(summary.services["api"].logs.volume.items, 1);
    assert_eq!(summary.services["api"].traces.volume.items, 1);
    assert_eq!(sink.0.lock().unwrap().len(), 2);
}

#[test]
fn config_errors_name_their_path() {
    let mut registry = Registry::new();
    weir_metadata::register(&mut registry);
    let factory = registry.processors.get("metadata").unwrap();
    let err = factory
        .parse(
            &serde_json::json!({"max_template": 5}),
            "processors.metadata",
        )
        .err()
        .unwrap();
    assert_eq!(err.0[0].path, "processors.metadata.max_template");
    assert!(
        err.0[0].message.contains("unknown field `max_template`"),
        "{err}"
    );
    let err = factory
        .parse(
            &serde_json::json!({"max_templates": 0, "flush_interval": "0s", "mining": {"similarity_threshold": 2.0}}),
            "processors.metadata/x",
        )
        .err()
        .unwrap();
    let paths: Vec<&str> = err.0.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        vec![
            "processors.metadata/x.mining.similarity_threshold",
            "processors.metadata/x.max_templates",
            "processors.metadata/x.flush_interval",
        ]
    );
}

#[test]
fn config_round_trips_with_defaults() {
    let c = MetadataConfig::default();
    assert_eq!(c.max_templates, 2000);
    assert_eq!(c.flush_interval, std::time::Duration::from_secs(60));
    let json = serde_json::to_value(&c).unwrap();
    assert_eq!(json["flush_interval"], "1m");
    let back: MetadataConfig = serde_json::from_value(json).unwrap();
    assert_eq!(back, c);
    let partial: MetadataConfig =
        serde_json::from_value(serde_json::json!({"flush_interval": "10s"})).unwrap();
    assert_eq!(partial.flush_interval, std::time::Duration::from_secs(10));
    assert_eq!(partial.mining, c.mining);
}

fn traffic_a() -> Vec<Batch> {
    vec![
        logs(
            "web",
            vec![
                log("GET /users/12 took 5 ms", 9, vec![kv("user.id", "u1")]),
                log("GET /users/13 took 7 ms", 13, vec![kv("user.id", "u2")]),
            ],
        ),
        spans(
            "web",
            vec![
                span("handle", 1, None, 10, vec![kv("route", "/users")]),
                span("db.query", 2, Some(1), 3, vec![]),
            ],
        ),
        counter(
            "web",
            "http.server.bytes",
            vec![
                (vec![kv("route", "/a")], 10.0),
                (vec![kv("route", "/b")], 10.0),
            ],
        ),
    ]
}

fn traffic_b() -> Vec<Batch> {
    vec![
        logs(
            "web",
            vec![
                log("GET /users/99 took 1 ms", 17, vec![kv("user.id", "u3")]),
                log("worker 3 restarted", 13, vec![]),
            ],
        ),
        logs("batch", vec![log("job 7 done", 9, vec![])]),
        spans("web", vec![span("handle", 3, None, 30, vec![])]),
        counter(
            "web",
            "http.server.bytes",
            vec![(vec![kv("route", "/c")], 11.0)],
        ),
    ]
}

fn summarise(batches: &[Batch]) -> CatalogSummary {
    let h = MetadataHandle::new(&MetadataConfig::default());
    for b in batches {
        h.observe(b);
    }
    h.take()
}

#[test]
fn merged_summaries_count_what_one_summary_of_everything_counts() {
    let a = summarise(&traffic_a());
    let b = summarise(&traffic_b());
    let all: Vec<Batch> = traffic_a().into_iter().chain(traffic_b()).collect();
    let whole = summarise(&all);
    let mut merged = a.clone();
    merged.merge(&b);

    // Through serialisation too, as the catalog stores and ships them.
    let merged: CatalogSummary =
        serde_json::from_str(&serde_json::to_string(&merged).unwrap()).unwrap();

    assert_eq!(
        merged.services.keys().collect::<Vec<_>>(),
        vec!["batch", "web"]
    );
    let (m, w) = (&merged.services["web"], &whole.services["web"]);
    assert_eq!(m.logs.volume, w.logs.volume);
    assert_eq!(m.logs.volume.items, 4);
    assert_eq!(m.logs.severity, w.logs.severity);
    let counts = |s: &weir_summary::summary::ServiceSummary| -> Vec<(String, u64, u64)> {
        s.logs
            .templates
            .iter()
            .map(|(id, t)| (id.clone(), t.count, t.bytes))
            .collect()
    };
    assert_eq!(counts(m), counts(w));
    let get = |s: &weir_summary::summary::ServiceSummary| {
        s.logs
            .templates
            .values()
            .find(|t| t.template == "GET /users/<*> took <*> ms")
            .map(|t| (t.count, t.severity.info, t.severity.warn, t.severity.error))
    };
    assert_eq!(get(m), Some((3, 1, 1, 1)));
    let uid = (
        &m.logs.attributes.item["user.id"],
        &w.logs.attributes.item["user.id"],
    );
    assert_eq!((uid.0.items, uid.0.distinct.estimate()), (3, 3));
    assert_eq!(uid.1.distinct.estimate(), 3);

    assert_eq!(m.traces.volume, w.traces.volume);
    let (hm, hw) = (&m.traces.spans["handle"], &w.traces.spans["handle"]);
    assert_eq!(hm.volume, hw.volume);
    assert_eq!(hm.volume.items, 2);
    assert_eq!(hm.roots, 2);
    assert_eq!(hm.duration_ms.count(), 2);
    assert_eq!(m.traces.spans["db.query"].childless_in_batch, 1);
    assert_eq!(m.traces.spans["db.query"].status.error, 1);
    assert_eq!(
        hm.childless_in_batch, 1,
        "span 1 has a child in its batch, span 3 not"
    );

    let (mm, mw) = (
        &m.metrics.metrics["http.server.bytes"],
        &w.metrics.metrics["http.server.bytes"],
    );
    assert_eq!(mm.volume.items, 3);
    assert_eq!(mm.volume, mw.volume);
    assert_eq!(mm.kind, MetricKind::Sum);
    assert_eq!(mm.temporality, Temporality::Cumulative);
    assert!(mm.monotonic);
    assert_eq!(mm.unit, "By");
    assert_eq!(mm.series.estimate(), 3);
    assert_eq!(mm.attribute_keys["route"].estimate(), 3);
    assert!(!mm.constant.is_constant(), "10 then 11");
    assert!(
        summarise(&traffic_a()).services["web"].metrics.metrics["http.server.bytes"]
            .constant
            .is_constant()
    );
    assert_eq!(merged.services["batch"].logs.volume.items, 1);
}

#[test]
fn template_cap_evicts_and_counts_without_losing_counts() {
    let config = MetadataConfig {
        max_templates: 5,
        ..MetadataConfig::default()
    };
    let h = MetadataHandle::new(&config);
    let words = [
        "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
        "juliet", "kilo", "lima",
    ];
    let mut records = Vec::new();
    for (i, w) in words.iter().enumerate() {
        // Distinct statements: different words and lengths.
        let body = format!("{w} {}", vec![*w; i + 1].join(" "));
        records.push(log(&body, 9, vec![]));
    }
    h.observe(&logs("svc", records));
    let summary = h.take();
    assert_eq!(summary.evicted_templates, 7);
    let svc = &summary.services["svc"];
    assert_eq!(svc.logs.templates.len(), 12);
    assert_eq!(
        svc.logs.templates.values().map(|t| t.count).sum::<u64>(),
        12
    );
}

#[test]
fn back_to_back_repeats_count_as_duplicates() {
    use weir_api::otlp::collector::logs::v1::ExportLogsServiceRequest;
    use weir_api::otlp::common::v1::{any_value, AnyValue};
    use weir_api::otlp::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    let rec = |b: &str| LogRecord {
        body: Some(AnyValue {
            value: Some(any_value::Value::StringValue(b.to_string())),
        }),
        ..Default::default()
    };
    let mut records: Vec<LogRecord> = (0..10).map(|_| rec("disk full on /dev/sda1")).collect();
    records.extend((0..5).map(|i| rec(&format!("disk full on /dev/sdb{i}"))));
    let batch = weir_api::Batch::new(weir_api::Payload::Logs(ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }));
    let handle = weir_summary::MetadataHandle::new(&weir_summary::MetadataConfig::default());
    handle.observe(&batch);
    let summary = handle.take();
    let svc = summary.services.values().next().unwrap();
    let dups: u64 = svc.logs.templates.values().map(|t| t.duplicates).sum();
    let count: u64 = svc.logs.templates.values().map(|t| t.count).sum();
    assert_eq!((dups, count), (9, 15));
}

fn template_texts(s: &CatalogSummary, service: &str) -> Vec<(String, u64)> {
    s.services[service]
        .logs
        .templates
        .values()
        .map(|t| (t.template.clone(), t.count))
        .collect()
}

/// A template that widens after its first take keeps its id, and a catalog merging the takes
/// holds the widened text only.
#[test]
fn a_widened_template_keeps_its_id_and_the_catalog_its_widened_text() {
    let h = MetadataHandle::new(&MetadataConfig::default());
    h.observe(&logs(
        "svc",
        vec![log("Opened file for reading /var/data/alpha", 9, vec![])],
    ));
    let mut catalog = h.take();
    let first_ids: Vec<String> = catalog.services["svc"]
        .logs
        .templates
        .keys()
        .cloned()
        .collect();
    assert_eq!(first_ids.len(), 1);
    h.observe(&logs(
        "svc",
        vec![log("Opened file for reading /srv/other/beta", 9, vec![])],
    ));
    let second = h.take();
    let second_ids: Vec<&String> = second.services["svc"].logs.templates.keys().collect();
    assert_eq!(
        second_ids,
        vec![&first_ids[0]],
        "the widened template kept its id: {first:?} then {second:?}",
        first = template_texts(&catalog, "svc"),
        second = template_texts(&second, "svc")
    );
    catalog.merge(&second);
    assert_eq!(
        template_texts(&catalog, "svc"),
        vec![("Opened file for reading <*>".to_string(), 2)]
    );
}

/// Word-variant siblings that merge retire their ids: a catalog that received them moves
/// their counts to the survivor and holds one template.
#[test]
fn merged_siblings_leave_one_template_in_the_catalog() {
    let h = MetadataHandle::new(&MetadataConfig::default());
    let words = ["Paused", "Resumed", "Stopped"];
    h.observe(&logs(
        "svc",
        words
            .iter()
            .map(|w| log(&format!("VM on host node {w} now"), 9, vec![]))
            .collect(),
    ));
    let mut catalog = h.take();
    assert_eq!(
        catalog.services["svc"].logs.templates.len(),
        3,
        "{:?}",
        template_texts(&catalog, "svc")
    );
    // A fourth word is past max_word_variants (3): the siblings merge into the oldest.
    h.observe(&logs(
        "svc",
        vec![log("VM on host node Started now", 9, vec![])],
    ));
    let second = h.take();
    let retired = &second.services["svc"].logs.retired;
    assert_eq!(retired.len(), 2, "{retired:?}");
    catalog.merge(&second);
    let texts = template_texts(&catalog, "svc");
    assert_eq!(texts.len(), 1, "{texts:?}");
    assert_eq!(texts[0].1, 4);
    assert_eq!(texts[0].0.split(' ').nth(4), Some("<*>"), "{texts:?}");
    // An edge that still sends a retired id (it had not merged yet) counts under the survivor.
    let (old, survivor) = retired.iter().next().unwrap();
    let mut late = CatalogSummary::default();
    let mut svc = weir_summary::summary::ServiceSummary::default();
    svc.logs.templates.insert(
        old.clone(),
        weir_summary::summary::TemplateSummary {
            template: "VM on host node Resumed now".into(),
            count: 5,
            ..Default::default()
        },
    );
    late.services.insert("svc".into(), svc);
    catalog.merge(&late);
    let t = &catalog.services["svc"].logs.templates;
    assert_eq!(t.len(), 1, "{t:?}");
    assert_eq!(t[survivor].count, 9);
}

#[test]
fn template_texts_of_one_id_join() {
    use weir_summary::summary::widen_template;
    assert_eq!(widen_template("a b c", "a x c"), "a <*> c");
    assert_eq!(widen_template("a <*> c", "a b c"), "a <*> c");
    assert_eq!(widen_template("a b c", "a <*> c"), "a <*> c");
    // A proven template lets identifier pieces through: the more specific text of a token.
    assert_eq!(
        widen_template("<*>_<*>(<*>) x", "pam_unix(sshd) x"),
        "pam_unix(sshd) x"
    );
    assert_eq!(
        widen_template("pam_unix(sshd) x", "<*>_<*>(<*>) x"),
        "pam_unix(sshd) x"
    );
    // A variable-length tail: the shorter text.
    assert_eq!(
        widen_template("error: <*>", "error: disk full"),
        "error: <*>"
    );
    assert_eq!(widen_template("", "a"), "a");
}
