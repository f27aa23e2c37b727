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

/// Records what arrives; refuses the first `refuse` batches; waits while `gate` is held.
#[derive(Default)]
struct Sink {
    got: Mutex<Vec<Batch>>,
    refuse: AtomicUsize,
    gate: tokio::sync::Mutex<()>,
}
#[async_trait]
impl Consumer for Sink {
    async fn consume(&self, batch: Batch) -> Result<(), ConsumeError> {
        let _open = self.gate.lock().await;
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

#[tokio::test(start_paused = true)]
async fn flushes_on_size_merging_resources() {
    let sink = Arc::new(Sink::default());
    let (s, _) = stage(
        serde_json::json!({"send_batch_size": 10, "timeout": "1h"}),
        sink.clone(),
    );
    s.start().await.unwrap();
    let mut waiting = Vec::new();
    for i in 0..3 {
        waiting.push(spawn_consume(&s, logs(&format!("svc{i}"), 3)));
        settle().await;
    }
    assert!(sink.counts().is_empty());
    // Nobody is answered before their items are accepted downstream.
    assert!(waiting.iter().all(|w| !w.is_finished()));
    s.consume(logs("svc3", 3)).await.unwrap();
    assert_eq!(sink.counts(), vec![12]);
    for w in waiting {
        w.await.unwrap().unwrap();
    }
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

#[tokio::test(start_paused = true)]
async fn splits_over_max_size_and_flushes_rest_on_shutdown() {
    split_and_flush(logs).await;
}

#[tokio::test(start_paused = true)]
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
    let a = spawn_consume(&s, make("a", 7));
    settle().await;
    let b = spawn_consume(&s, make("b", 7));
    settle().await;
    assert_eq!(sink.counts(), vec![10]);
    a.await.unwrap().unwrap();
    // 4 of b's items are still pending: b is not answered yet.
    assert!(!b.is_finished());
    let c = spawn_consume(&s, make("c", 7));
    settle().await;
    assert_eq!(sink.counts(), vec![10, 10]);
    b.await.unwrap().unwrap();
    assert!(!c.is_finished());
    s.shutdown().await;
    c.await.unwrap().unwrap();
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
async fn flushes_after_a_pause_in_arrivals_or_on_timeout() {
    let sink = Arc::new(Sink::default());
    let (s, _) = stage(
        serde_json::json!({"send_batch_size": 1000, "timeout": "200ms"}),
        sink.clone(),
    );
    s.start().await.unwrap();
    // One sender alone: nothing else arrives, so its items go after a 5 ms pause, not 200.
    let started = Instant::now();
    s.consume(logs("a", 5)).await.unwrap();
    assert_eq!(started.elapsed(), Duration::from_millis(5));
    assert_eq!(sink.counts(), vec![5]);
    // An item every 3 ms for 300 ms: no pause, so the timeout flushes the first 200 ms.
    let mut waiting = Vec::new();
    for _ in 0..100 {
        waiting.push(spawn_consume(&s, logs("b", 1)));
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    for w in waiting {
        w.await.unwrap().unwrap();
    }
    assert_eq!(sink.counts(), vec![5, 67, 33]);
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
async fn a_refused_flush_is_refused_to_every_sender_in_it_and_not_kept() {
    let sink = Arc::new(Sink::default());
    sink.refuse.store(1, Ordering::SeqCst);
    let (s, t) = stage(
        serde_json::json!({"send_batch_size": 4, "send_batch_max_size": 4, "timeout": "100ms"}),
        sink.clone(),
    );
    s.start().await.unwrap();
    let a = spawn_consume(&s, logs("a", 3));
    settle().await;
    // Items 0..4 (a's 3 and b's first) are refused; b's other 2 stay pending, and are not
    // sent by the timer, as their only sender was refused: both senders retry.
    let err = s.consume(logs("b", 3)).await.unwrap_err();
    assert_eq!(err.to_string(), "sink: cannot accept data now: full");
    assert!(err.is_retryable());
    let err = a.await.unwrap().unwrap_err();
    assert_eq!(err.to_string(), "sink: cannot accept data now: full");
    // Nothing is held for a retry here: the senders send again.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(sink.counts().is_empty());
    s.consume(logs("c", 4)).await.unwrap();
    assert_eq!(sink.counts(), vec![4]);
    assert!(
        t.encode().contains(
            "weir_batch_send_refused_items_total{processor=\"batch\",pipeline=\"logs\"} 6"
        ),
        "{}",
        t.encode()
    );
    s.shutdown().await;
    assert_eq!(sink.counts(), vec![4], "nothing left to flush");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_next_stage_holds_senders_until_their_data_is_accepted() {
    let sink = Arc::new(Sink::default());
    let (s, _) = stage(
        serde_json::json!({"send_batch_size": 2, "timeout": "1h"}),
        sink.clone(),
    );
    s.start().await.unwrap();
    let gate = sink.gate.lock().await;
    let waiting: Vec<_> = (0..5).map(|_| spawn_consume(&s, logs("a", 2))).collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(waiting.iter().all(|w| !w.is_finished()));
    assert!(sink.counts().is_empty());
    drop(gate);
    for w in waiting {
        w.await.unwrap().unwrap();
    }
    assert_eq!(sink.counts(), vec![2; 5]);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_new_data_when_too_much_is_pending_or_being_flushed() {
    let sink = Arc::new(Sink::default());
    let (s, t) = stage(
        serde_json::json!({"send_batch_size": 0, "timeout": "1h"}),
        sink.clone(),
    );
    s.start().await.unwrap();
    // send_batch_size 0: the hold limit is 10 x 8192 items. The next stage is stuck, so
    // the first flush hangs and the rest stays pending.
    let gate = sink.gate.lock().await;
    let waiting: Vec<_> = (0..8)
        .map(|_| spawn_consume(&s, logs("a", 10_240)))
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let err = s.consume(logs("a", 2)).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "batch: cannot accept data now: 81920 items are pending or being flushed while the next stage is slow"
    );
    assert!(err.is_retryable());
    assert!(t
        .encode()
        .contains("weir_batch_refused_items_total{processor=\"batch\",pipeline=\"logs\"} 2"));
    // Once the next stage moves, every held item is delivered and its sender answered.
    drop(gate);
    for w in waiting {
        w.await.unwrap().unwrap();
    }
    assert_eq!(sink.counts().iter().sum::<usize>(), 81_920);
    s.shutdown().await;
}

/// Hands a batch to the stage from a task of its own; the stage answers once it is durable.
fn spawn_consume(
    s: &Arc<dyn Stage>,
    batch: Batch,
) -> tokio::task::JoinHandle<Result<(), ConsumeError>> {
    let s = s.clone();
    tokio::spawn(async move { s.consume(batch).await })
}

/// Lets spawned tasks run up to their next wait.
async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
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
    let built = Batch::new(Payload::Metrics(ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource("m"),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![sum_metric("a", 3), sum_metric("b", 5)],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }));
    // As built in memory (cut in the decoded form) and as received (bytes, cut without
    // decoding): the same two halves.
    let received = Batch::decode(weir_api::Signal::Metrics, built.to_protobuf()).unwrap();
    let mut b = built;
    let head = split_front(&mut b, 5);
    let mut received_back = received;
    let received_head = split_front(&mut received_back, 5);
    assert!(!received_head.is_decoded() && !received_back.is_decoded());
    assert_eq!(
        (received_head.item_count(), received_back.item_count()),
        (5, 3)
    );
    assert_eq!(received_head.payload(), head.payload());
    assert_eq!(received_back.payload(), b.payload());
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
