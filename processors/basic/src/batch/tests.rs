use super::*;
use std::sync::atomic::AtomicUsize;
use weir_api::otlp::collector::logs::v1::ExportLogsServiceRequest;
use weir_api::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use weir_api::otlp::common::v1::{any_value, AnyValue, KeyValue};
use weir_api::otlp::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use weir_api::otlp::metrics::v1::{
    metric, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};
use weir_api::otlp::resource::v1::Resource;
use weir_api::{ComponentId, Payload, Telemetry};

/// Records what arrives; refuses the first `refuse` batches.
#[derive(Default)]
struct Sink {
    got: Mutex<Vec<Batch>>,
    refuse: AtomicUsize,
}
#[async_trait]
impl Consumer for Sink {
    async fn consume(&self, batch: Batch) -> Result<(), ConsumeError> {
        if self.refuse.load(Ordering::SeqCst) > 0 {
            self.refuse.fetch_sub(1, Ordering::SeqCst);
            return Err(ConsumeError::Refused {
                component: "sink".into(),
                reason: "full".into(),
                retry_after: None,
            });
        }
        self.got.lock().unwrap().push(batch);
        Ok(())
    }
}
impl Sink {
    fn counts(&self) -> Vec<usize> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .map(Batch::item_count)
            .collect()
    }
}

fn resource(name: &str) -> Option<Resource> {
    Some(Resource {
        attributes: vec![KeyValue {
            key: "service.name".into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(name.into())),
            }),
            ..Default::default()
        }],
        ..Default::default()
    })
}

fn logs(service: &str, n: usize) -> Batch {
    Batch::new(Payload::Logs(ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource(service),
            scope_logs: vec![ScopeLogs {
                log_records: (0..n)
                    .map(|i| LogRecord {
                        time_unix_nano: i as u64,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }))
}

fn stage(yaml: Value, sink: Arc<Sink>) -> (Arc<dyn Stage>, Telemetry) {
    let cfg = BatchFactory
        .parse(&yaml, "processors.batch")
        .unwrap_or_else(|e| panic!("{e}"));
    let mut ctx = BuildContext::for_component(ComponentId::parse("batch").unwrap());
    ctx.pipeline = Some("logs".into());
    let t = ctx.telemetry.clone();
    (cfg.build(&ctx, Signal::Logs, sink).unwrap(), t)
}

#[test]
fn defaults_match_the_collector() {
    let cfg: BatchConfig = parse_component_config(&Value::Null, "processors.batch").unwrap();
    assert_eq!(cfg.send_batch_size, 8192);
    assert_eq!(cfg.send_batch_max_size, 0);
    assert_eq!(cfg.timeout, Duration::from_millis(200));
}

#[test]
fn config_errors() {
    let e = BatchFactory
        .parse(&serde_json::json!({"send_batch_size": 100, "send_batch_max_size": 10, "metadata_keys": ["tenant"]}), "processors.batch")
        .err()
        .unwrap();
    assert_eq!(
        e.to_string(),
        "processors.batch.send_batch_max_size: send_batch_max_size (10) must be 0 or at least send_batch_size (100)\n\
         processors.batch.metadata_keys: batching by metadata_keys is not supported yet"
    );
    let e = BatchFactory
        .parse(&serde_json::json!({"timeout": "soon"}), "processors.batch")
        .err()
        .unwrap();
    assert_eq!(e.0[0].path, "processors.batch.timeout");
}

#[tokio::test]
async fn flushes_on_size_merging_resources() {
    let sink = Arc::new(Sink::default());
    let (s, _) = stage(
        serde_json::json!({"send_batch_size": 10, "timeout": "1h"}),
        sink.clone(),
    );
    s.start().await.unwrap();
    for i in 0..3 {
        s.consume(logs(&format!("svc{i}"), 3)).await.unwrap();
    }
    assert!(sink.counts().is_empty());
    s.consume(logs("svc3", 3)).await.unwrap();
    assert_eq!(sink.counts(), vec![12]);
    match sink.got.lock().unwrap()[0].payload() {
        Payload::Logs(r) => assert_eq!(r.resource_logs.len(), 4),
        _ => unreachable!(),
    }
    s.shutdown().await;
    assert_eq!(sink.counts(), vec![12]);
}

/// A logs batch as a receiver hands it on: protobuf bytes, checked but not decoded.
fn received_logs(service: &str, n: usize) -> Batch {
    Batch::decode(weir_api::Signal::Logs, logs(service, n).to_protobuf()).unwrap()
}

#[tokio::test]
async fn splits_over_max_size_and_flushes_rest_on_shutdown() {
    split_and_flush(logs).await;
}

#[tokio::test]
async fn received_batches_are_merged_and_cut_without_decoding() {
    let got = split_and_flush(received_logs).await;
    for b in &got {
        assert!(!b.is_decoded(), "the batch processor decoded a batch");
        assert!(b.original_bytes().is_some());
    }
}

/// Three batches of 7 records through send_batch_size = send_batch_max_size = 10: two
/// batches of 10 and one of 1, each record once, in order, with its resource.
async fn split_and_flush(make: fn(&str, usize) -> Batch) -> Vec<Batch> {
    let sink = Arc::new(Sink::default());
    let (s, _) = stage(
        serde_json::json!({"send_batch_size": 10, "send_batch_max_size": 10, "timeout": "1h"}),
        sink.clone(),
    );
    s.start().await.unwrap();
    s.consume(make("a", 7)).await.unwrap();
    s.consume(make("b", 7)).await.unwrap();
    assert_eq!(sink.counts(), vec![10]);
    s.consume(make("c", 7)).await.unwrap();
    assert_eq!(sink.counts(), vec![10, 10]);
    s.shutdown().await;
    assert_eq!(sink.counts(), vec![10, 10, 1]);
    let got = std::mem::take(&mut *sink.got.lock().unwrap());
    check_order(&got);
    got
}

/// The cut kept each record once and in order, with its resource (this decodes the batches).
fn check_order(got: &[Batch]) {
    let got: Vec<Batch> = got.to_vec();
    let mut seen = Vec::new();
    for b in got.iter() {
        let Payload::Logs(r) = b.payload() else {
            unreachable!()
        };
        for rl in &r.resource_logs {
            let svc = match &rl.resource.as_ref().unwrap().attributes[0]
                .value
                .as_ref()
                .unwrap()
                .value
            {
                Some(any_value::Value::StringValue(s)) => s.clone(),
                _ => unreachable!(),
            };
            for lr in &rl.scope_logs[0].log_records {
                seen.push(format!("{svc}{}", lr.time_unix_nano));
            }
        }
    }
    let expected: Vec<String> = ["a", "b", "c"]
        .iter()
        .flat_map(|s| (0..7).map(move |i| format!("{s}{i}")))
        .collect();
    assert_eq!(seen, expected);
}

#[tokio::test(start_paused = true)]
async fn flushes_on_timeout() {
    let sink = Arc::new(Sink::default());
    let (s, _) = stage(
        serde_json::json!({"send_batch_size": 100, "timeout": "200ms"}),
        sink.clone(),
    );
    s.start().await.unwrap();
    s.consume(logs("a", 5)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    s.consume(logs("a", 2)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(40)).await;
    assert!(sink.counts().is_empty());
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(sink.counts(), vec![7]);
    s.consume(logs("a", 1)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(201)).await;
    assert_eq!(sink.counts(), vec![7, 1]);
    s.shutdown().await;
}

#[tokio::test]
async fn zero_timeout_sends_each_batch_at_once() {
    let sink = Arc::new(Sink::default());
    let (s, _) = stage(
        serde_json::json!({"timeout": "0s", "send_batch_max_size": 8192}),
        sink.clone(),
    );
    s.start().await.unwrap();
    s.consume(logs("a", 3)).await.unwrap();
    s.consume(logs("a", 4)).await.unwrap();
    assert_eq!(sink.counts(), vec![3, 4]);
    s.shutdown().await;
}

#[tokio::test]
async fn unchanged_single_batch_keeps_its_bytes() {
    let sink = Arc::new(Sink::default());
    let (s, _) = stage(serde_json::json!({"send_batch_size": 2}), sink.clone());
    let bytes = logs("a", 3).to_protobuf();
    s.consume(Batch::decode(Signal::Logs, bytes.clone()).unwrap())
        .await
        .unwrap();
    assert_eq!(sink.got.lock().unwrap()[0].original_bytes(), Some(&bytes));
}

#[tokio::test(start_paused = true)]
async fn refused_flush_stays_pending_and_is_retried() {
    let sink = Arc::new(Sink::default());
    sink.refuse.store(2, Ordering::SeqCst);
    let (s, t) = stage(
        serde_json::json!({"send_batch_size": 4, "timeout": "100ms"}),
        sink.clone(),
    );
    s.start().await.unwrap();
    // Size flush refused: the caller is still told ok, the 5 items stay pending.
    s.consume(logs("a", 5)).await.unwrap();
    assert!(sink.counts().is_empty());
    // Timer retry refused again, the next one succeeds.
    tokio::time::sleep(Duration::from_millis(110)).await;
    assert!(sink.counts().is_empty());
    tokio::time::sleep(Duration::from_millis(110)).await;
    assert_eq!(sink.counts(), vec![5]);
    assert!(
        t.encode()
            .contains("weir_batch_deferred_flushes_total{processor=\"batch\",pipeline=\"logs\"} 2"),
        "{}",
        t.encode()
    );
    s.shutdown().await;
}

#[tokio::test]
async fn refuses_new_data_when_too_much_is_held() {
    let sink = Arc::new(Sink::default());
    sink.refuse.store(usize::MAX / 2, Ordering::SeqCst);
    let (s, t) = stage(
        serde_json::json!({"send_batch_size": 2, "timeout": "1h"}),
        sink.clone(),
    );
    // Hold limit is 10 x send_batch_size = 20 items.
    for _ in 0..10 {
        s.consume(logs("a", 2)).await.unwrap();
    }
    let err = s.consume(logs("a", 2)).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "batch: cannot accept data now: 20 items are pending while the next stage refuses data"
    );
    assert!(err.is_retryable());
    assert!(t
        .encode()
        .contains("weir_batch_refused_items_total{processor=\"batch\",pipeline=\"logs\"} 2"));
    // Once the sink accepts again, shutdown delivers all 20 held items.
    sink.refuse.store(0, Ordering::SeqCst);
    s.shutdown().await;
    assert_eq!(sink.counts().iter().sum::<usize>(), 20);
}

fn sum_metric(name: &str, points: usize) -> Metric {
    Metric {
        name: name.into(),
        unit: "1".into(),
        data: Some(metric::Data::Sum(Sum {
            data_points: (0..points)
                .map(|i| NumberDataPoint {
                    time_unix_nano: i as u64,
                    ..Default::default()
                })
                .collect(),
            is_monotonic: true,
            aggregation_temporality: 2,
        })),
        ..Default::default()
    }
}

#[test]
fn metric_split_cuts_inside_a_metric_and_keeps_headers() {
    let mut b = Batch::new(Payload::Metrics(ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource("m"),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![sum_metric("a", 3), sum_metric("b", 5)],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }));
    let head = split_front(&mut b, 5);
    assert_eq!((head.item_count(), b.item_count()), (5, 3));
    let (Payload::Metrics(h), Payload::Metrics(r)) = (head.payload(), b.payload()) else {
        unreachable!()
    };
    let hm = &h.resource_metrics[0].scope_metrics[0].metrics;
    assert_eq!(
        hm.iter()
            .map(|m| (m.name.as_str(), split::metric_points(m)))
            .collect::<Vec<_>>(),
        vec![("a", 3), ("b", 2)]
    );
    let rm = &r.resource_metrics[0].scope_metrics[0].metrics;
    assert_eq!(rm.len(), 1);
    assert_eq!(
        (
            rm[0].name.as_str(),
            rm[0].unit.as_str(),
            split::metric_points(&rm[0])
        ),
        ("b", "1", 3)
    );
    let Some(metric::Data::Sum(sum)) = &rm[0].data else {
        unreachable!()
    };
    assert!(sum.is_monotonic);
    assert_eq!(sum.data_points[0].time_unix_nano, 2);
    assert_eq!(r.resource_metrics[0].resource, resource("m"));
}
