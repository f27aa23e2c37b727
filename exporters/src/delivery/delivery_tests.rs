use std::sync::atomic::{AtomicU64, Ordering};

use weir_api::otlp::collector::logs::v1::ExportLogsServiceRequest;
use weir_api::otlp::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use weir_api::Payload;

use super::*;

/// An upstream that is always unavailable.
#[derive(Default)]
struct Down(AtomicU64);

#[async_trait]
impl Sender for Down {
    async fn send(&self, _batch: &Batch) -> Result<Delivered, SendError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Err(SendError::HttpStatus {
            url: "http://up".into(),
            status: 503,
            message: "down".into(),
            retry_after: None,
        })
    }
}

fn batch(n: usize) -> Batch {
    Batch::new(Payload::Logs(ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![LogRecord::default(); n],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }))
}

/// Runs an hour of an upstream outage (in paused time) and returns the items given up on
/// and the attempts made.
async fn an_hour_down(queue: serde_json::Value, retry: serde_json::Value) -> (f64, u64) {
    let down = Arc::new(Down::default());
    let telemetry = Telemetry::new();
    let delivery = Delivery::new(
        &ComponentId::parse("otlp").unwrap(),
        down.clone(),
        serde_json::from_value(retry).unwrap(),
        serde_json::from_value(queue).unwrap(),
        &telemetry,
    );
    delivery.start().await.unwrap();
    delivery.consume(batch(4)).await.unwrap();
    for _ in 0..3600 {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let text = telemetry.encode();
    let expired = text
        .lines()
        .find(|l| l.starts_with("weir_exporter_retry_expired_items_total{") && l.contains("logs"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    delivery.shutdown().await;
    (expired, down.0.load(Ordering::SeqCst))
}

#[tokio::test(start_paused = true)]
async fn with_storage_data_is_kept_until_delivered_unless_a_maximum_age_is_set() {
    let dir = tempfile::tempdir().unwrap();
    let retry = serde_json::json!({"initial_interval": "1s", "max_interval": "10s"});
    let storage = |sub: &str| serde_json::json!({"storage": {"directory": dir.path().join(sub), "fsync": "never"}});
    // Storage, no max_elapsed_time: an hour of retries, nothing given up.
    let (expired, attempts) = an_hour_down(storage("keep"), retry.clone()).await;
    assert_eq!(expired, 0.0);
    assert!(attempts > 300, "{attempts}");
    // Storage with a maximum age: given up on after it, and counted.
    let mut aged = retry.clone();
    aged["max_elapsed_time"] = serde_json::json!("2m");
    let (expired, _) = an_hour_down(storage("aged"), aged).await;
    assert_eq!(expired, 4.0);
    // In memory, the collector's default of 300 s holds.
    let (expired, _) = an_hour_down(serde_json::json!({}), retry).await;
    assert_eq!(expired, 4.0);
}

#[test]
fn sending_queue_batch_is_on_when_present_even_empty_and_checked() {
    use crate::delivery::{QueueBatchSettings, QueueSettings, Sizer};
    let parse = |v: serde_json::Value| -> QueueSettings { serde_json::from_value(v).unwrap() };
    assert_eq!(parse(serde_json::json!({})).batch, None);
    for empty in [
        serde_json::json!({"batch": null}),
        serde_json::json!({"batch": {}}),
    ] {
        let q = parse(empty);
        assert_eq!(q.batch, Some(QueueBatchSettings::default()));
        let b = q.batch.as_ref().unwrap();
        assert_eq!(b.flush_timeout, std::time::Duration::from_millis(200));
        assert_eq!((b.min_size, b.max_size), (8192, 0));
        assert_eq!(q.batch_sizer(), Some(Sizer::Items));
    }
    let q = parse(
        serde_json::json!({"sizer": "bytes", "queue_size": 100, "batch": {"flush_timeout": "0s", "min_size": 10, "max_size": 5, "partition": {"metadata_keys": ["tenant"]}}}),
    );
    let mut errors = weir_api::ConfigErrors::default();
    q.validate("exporters.otlp.sending_queue", &mut errors);
    assert_eq!(
        errors.to_string(),
        "exporters.otlp.sending_queue.batch.flush_timeout: must be positive\n\
         exporters.otlp.sending_queue.batch.sizer: the bytes sizer is not supported for batching yet; use items\n\
         exporters.otlp.sending_queue.batch.max_size: max_size (5) must be greater or equal to min_size (10)\n\
         exporters.otlp.sending_queue.batch.partition.metadata_keys: batching by metadata keys is not supported yet"
    );
    let q = parse(serde_json::json!({"sizer": "items", "queue_size": 100, "batch": {}}));
    let mut errors = weir_api::ConfigErrors::default();
    q.validate("q", &mut errors);
    assert_eq!(
        errors.to_string(),
        "q.batch.min_size: must be less than or equal to queue_size"
    );
}
