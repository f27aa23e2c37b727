//! `sending_queue`: a bounded in-memory queue between `consume` and the consumer tasks that
//! send. Space is held until a batch is sent (or given up), so memory stays bounded while
//! the upstream is slow or down.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use tokio::sync::{mpsc, AcquireError, OwnedSemaphorePermit, Semaphore, TryAcquireError};
use weir_api::{Batch, ConfigErrors, Gauge};

use super::wal::FsyncPolicy;

/// What `queue_size` counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sizer {
    /// Batches (one per export request).
    Requests,
    /// Log records, spans or metric data points.
    Items,
    /// Bytes of the protobuf encoding.
    Bytes,
}

impl Sizer {
    /// The config name (`requests`, `items`, `bytes`).
    pub fn as_str(self) -> &'static str {
        match self {
            Sizer::Requests => "requests",
            Sizer::Items => "items",
            Sizer::Bytes => "bytes",
        }
    }
}

/// The `sending_queue` section of an OTLP exporter (the collector's names and defaults).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueSettings {
    /// Whether batches are queued; when `false`, `consume` sends (and retries) before it
    /// returns. Default `true`.
    pub enabled: bool,
    /// Tasks sending from the queue at once. Default `10`.
    pub num_consumers: usize,
    /// Capacity, in units of `sizer`. Default `1000`.
    pub queue_size: u64,
    /// What `queue_size` counts: `requests`, `items` or `bytes`. Default `requests`.
    pub sizer: Sizer,
    /// When the queue is full: `false` refuses the batch at once (the receiver tells its
    /// client to retry later), `true` waits for space. Default `false`.
    pub block_on_overflow: bool,
    /// Wait for the send result before `consume` returns. Only `false` (the default) is
    /// supported.
    pub wait_for_result: bool,
    /// Keep the queue on disk (a write-ahead log) so a crash or restart loses nothing:
    /// `storage: {directory: PATH, fsync: batch, max_size_mib: 1024}`, or the collector's
    /// form, the id of a `file_storage` extension (`storage: file_storage/x`: the queue is
    /// kept in its subdirectory `exporter_<exporter id>`). Default none (in memory).
    pub storage: Option<Storage>,
    /// Batching in front of the queue (the collector's `sending_queue.batch`); present, even
    /// empty (`batch: {}` or `batch:`), turns it on with its defaults. Default: off.
    #[serde(deserialize_with = "present_or_default")]
    pub batch: Option<QueueBatchSettings>,
}

use weir_processors::queuebatch::{present_or_default, SizerKind};
pub use weir_processors::queuebatch::{QueueBatchPartition, QueueBatchSettings};

impl Sizer {
    fn kind(self) -> SizerKind {
        match self {
            Sizer::Requests => SizerKind::Requests,
            Sizer::Items => SizerKind::Items,
            Sizer::Bytes => SizerKind::Bytes,
        }
    }
}

impl Default for QueueSettings {
    fn default() -> Self {
        QueueSettings {
            enabled: true,
            num_consumers: 10,
            queue_size: 1000,
            sizer: Sizer::Requests,
            block_on_overflow: false,
            wait_for_result: false,
            storage: None,
            batch: None,
        }
    }
}

impl QueueSettings {
    /// Reports every unsupported or out-of-range value below `path`.
    pub fn validate(&self, path: &str, errors: &mut ConfigErrors) {
        if !self.enabled {
            return;
        }
        if self.num_consumers == 0 {
            errors.push(format!("{path}.num_consumers"), "must be at least 1");
        }
        if self.queue_size == 0 {
            errors.push(format!("{path}.queue_size"), "must be at least 1");
        }
        if self.wait_for_result {
            errors.push(
                format!("{path}.wait_for_result"),
                "is not supported yet; remove it or set it to false",
            );
        }
        match &self.storage {
            Some(Storage::Extension(name)) if !name.starts_with("file_storage") => errors.push(
                format!("{path}.storage"),
                format!(
                    "`{name}` is not a file_storage extension (weir's only storage extension); name one, e.g. `file_storage/queue`, or give the disk queue inline: `storage: {{directory: /var/lib/weir/queue}}`"
                ),
            ),
            Some(Storage::Extension(_)) => {}
            Some(Storage::Disk(disk)) => {
                if disk.directory.as_os_str().is_empty() {
                    errors.push(format!("{path}.storage.directory"), "must not be empty");
                }
                if disk.max_size_mib == 0 {
                    errors.push(format!("{path}.storage.max_size_mib"), "must be at least 1");
                }
            }
            None => {}
        }
        if let Some(b) = &self.batch {
            b.validate(
                self.sizer.kind(),
                self.queue_size,
                &format!("{path}.batch"),
                errors,
            );
        }
    }

    /// The sizer of `batch`: its own, else the queue's when that is items or bytes, else
    /// items. `None` without `batch`.
    pub fn batch_sizer(&self) -> Option<Sizer> {
        let b = self.batch.as_ref().filter(|b| b.is_on())?;
        Some(match b.effective_sizer(self.sizer.kind()) {
            SizerKind::Requests => Sizer::Requests,
            SizerKind::Items => Sizer::Items,
            SizerKind::Bytes => Sizer::Bytes,
        })
    }

    /// The room a batch takes in the queue, in units of the sizer.
    pub fn size_of(&self, batch: &Batch) -> u64 {
        match self.sizer {
            Sizer::Requests => 1,
            Sizer::Items => batch.item_count() as u64,
            Sizer::Bytes => batch.encoded_len() as u64,
        }
    }
}

/// `sending_queue.storage`: where and how the queue is kept on disk.
#[derive(Debug, Clone, PartialEq)]
pub enum Storage {
    /// The collector's form: the id of a `file_storage` extension.
    Extension(String),
    /// An inline disk queue.
    Disk(DiskQueueSettings),
}

/// The inline disk queue block of `sending_queue.storage`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiskQueueSettings {
    /// Directory of the write-ahead log; created if missing. One exporter per directory (a
    /// lock file enforces it). Required, no default.
    pub directory: PathBuf,
    /// When to fsync: `always` (each batch before it is accepted, and each
    /// acknowledgement), `batch` (every 200 ms) or `never`. A killed process loses nothing
    /// with any of them; they differ on a power cut. Default `batch`.
    #[serde(default)]
    pub fsync: FsyncPolicy,
    /// Disk budget for the queue's segment files, in MiB. When it is used up, new data is
    /// refused with a retryable error until sent data frees room. Default `1024`.
    #[serde(default = "default_max_size_mib")]
    pub max_size_mib: u64,
}

fn default_max_size_mib() -> u64 {
    1024
}

impl<'de> Deserialize<'de> for Storage {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StorageVisitor;
        impl<'de> Visitor<'de> for StorageVisitor {
            type Value = Storage;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(
                    "a block `{directory: PATH, fsync: always|batch|never, max_size_mib: N}`",
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Storage, E> {
                Ok(Storage::Extension(v.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Storage, A::Error> {
                DiskQueueSettings::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(Storage::Disk)
            }
        }
        deserializer.deserialize_any(StorageVisitor)
    }
}

/// Why a batch was not queued; the batch is handed back.
#[derive(Debug)]
pub enum PushError {
    /// No room (and `block_on_overflow` is off).
    Full(Batch),
    /// The queue is closed for shutdown.
    Closed(Batch),
}

/// Why [`ExportQueue::reserve`] found no room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No room (and `block_on_overflow` is off).
    Full,
    /// The queue is closed for shutdown.
    Closed,
}

impl Refusal {
    fn with(self, batch: Batch) -> PushError {
        match self {
            Refusal::Full => PushError::Full(batch),
            Refusal::Closed => PushError::Closed(batch),
        }
    }
}

/// Room in the queue taken for one batch; given back when dropped unused.
pub struct Reserved(OwnedSemaphorePermit);

/// A queued batch and the room it holds; the room is freed when the job is dropped.
pub struct Job {
    /// The batch to send.
    pub batch: Batch,
    /// Its record in the disk queue, to acknowledge once it is sent or given up on.
    pub seq: Option<u64>,
    _slot: Slot,
}

struct Slot {
    permit: Option<OwnedSemaphorePermit>,
    /// Room taken beyond the capacity (a replayed batch): not given back on drop.
    forced: bool,
    size: i64,
    gauge: Gauge,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.gauge.dec_by(self.size);
        if let (true, Some(p)) = (self.forced, self.permit.take()) {
            p.forget();
        }
    }
}

/// The bounded queue: a semaphore holds the capacity, a channel the order.
pub struct ExportQueue {
    settings: QueueSettings,
    capacity: u32,
    room: Arc<Semaphore>,
    tx: Mutex<Option<mpsc::UnboundedSender<Job>>>,
    rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<Job>>,
    size_gauge: Gauge,
}

impl ExportQueue {
    /// An empty queue; `size_gauge` follows the room in use.
    pub fn new(settings: QueueSettings, size_gauge: Gauge) -> Self {
        let capacity = u32::try_from(settings.queue_size.max(1)).unwrap_or(u32::MAX);
        let (tx, rx) = mpsc::unbounded_channel();
        ExportQueue {
            settings,
            capacity,
            room: Arc::new(Semaphore::new(capacity as usize)),
            tx: Mutex::new(Some(tx)),
            rx: tokio::sync::Mutex::new(rx),
            size_gauge,
        }
    }

    /// Capacity in units of the sizer.
    pub fn capacity(&self) -> u64 {
        u64::from(self.capacity)
    }

    /// Room in use (queued and in-flight batches), in units of the sizer.
    pub fn in_use(&self) -> u64 {
        u64::from(self.capacity).saturating_sub(self.room.available_permits() as u64)
    }

    /// What the capacity counts.
    pub fn sizer(&self) -> Sizer {
        self.settings.sizer
    }

    /// Queues `batch`: refuses at once when full, or waits for room when
    /// `block_on_overflow` is on. A batch larger than the whole queue takes all of it, so
    /// it goes through once the queue is empty instead of never.
    pub async fn push(&self, batch: Batch) -> Result<(), PushError> {
        self.push_tagged(batch, None).await
    }

    /// [`ExportQueue::push`] for a batch stored in the disk queue as record `seq`.
    pub async fn push_tagged(&self, batch: Batch, seq: Option<u64>) -> Result<(), PushError> {
        let permit = match self.reserve(&batch).await {
            Ok(p) => p,
            Err(e) => return Err(e.with(batch)),
        };
        self.send(batch, seq, permit.0, false)
    }

    /// Takes room for `batch` without queueing it yet (refusing at once when full, or
    /// waiting with `block_on_overflow`), so that a batch is written to the disk queue only
    /// once it is sure to be queued.
    pub async fn reserve(&self, batch: &Batch) -> Result<Reserved, Refusal> {
        let size = u32::try_from(self.settings.size_of(batch))
            .unwrap_or(u32::MAX)
            .clamp(1, self.capacity);
        let permit = if self.settings.block_on_overflow {
            self.room
                .clone()
                .acquire_many_owned(size)
                .await
                .map_err(|AcquireError { .. }| Refusal::Closed)?
        } else {
            match self.room.clone().try_acquire_many_owned(size) {
                Ok(p) => p,
                Err(TryAcquireError::NoPermits) => return Err(Refusal::Full),
                Err(TryAcquireError::Closed) => return Err(Refusal::Closed),
            }
        };
        Ok(Reserved(permit))
    }

    /// Queues a batch in room taken by [`ExportQueue::reserve`].
    pub fn push_reserved(
        &self,
        batch: Batch,
        seq: Option<u64>,
        room: Reserved,
    ) -> Result<(), PushError> {
        self.send(batch, seq, room.0, false)
    }

    /// Queues a batch read back from the disk queue at start, beyond the capacity if need
    /// be: it was accepted before the restart and must not be refused now.
    pub fn push_replayed(&self, batch: Batch, seq: u64) -> Result<(), PushError> {
        let size = u32::try_from(self.settings.size_of(&batch))
            .unwrap_or(u32::MAX)
            .clamp(1, self.capacity);
        self.room.add_permits(size as usize);
        match self.room.clone().try_acquire_many_owned(size) {
            Ok(permit) => self.send(batch, Some(seq), permit, true),
            Err(_) => Err(PushError::Closed(batch)),
        }
    }

    fn send(
        &self,
        batch: Batch,
        seq: Option<u64>,
        permit: OwnedSemaphorePermit,
        forced: bool,
    ) -> Result<(), PushError> {
        let size = i64::from(permit.num_permits() as u32);
        self.size_gauge.inc_by(size);
        let job = Job {
            batch,
            seq,
            _slot: Slot {
                permit: Some(permit),
                forced,
                size,
                gauge: self.size_gauge.clone(),
            },
        };
        let tx = self.tx.lock().unwrap_or_else(|e| e.into_inner());
        match tx.as_ref() {
            Some(tx) => tx.send(job).map_err(|e| PushError::Closed(e.0.batch)),
            None => Err(PushError::Closed(job.batch)),
        }
    }

    /// The next job; `None` once the queue is closed and empty.
    pub async fn pop(&self) -> Option<Job> {
        self.rx.lock().await.recv().await
    }

    /// Stops taking new batches; what is queued stays for [`ExportQueue::pop`].
    pub fn close(&self) {
        self.tx.lock().unwrap_or_else(|e| e.into_inner()).take();
        self.room.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_api::otlp::collector::logs::v1::ExportLogsServiceRequest;
    use weir_api::otlp::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use weir_api::{Payload, Telemetry};

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

    fn queue(json: serde_json::Value) -> (ExportQueue, Gauge) {
        let settings: QueueSettings = serde_json::from_value(json).unwrap();
        let gauge = Telemetry::new().gauge("q", "q", &[]);
        (ExportQueue::new(settings, gauge.clone()), gauge)
    }

    #[tokio::test]
    async fn items_sizer_refuses_when_full_and_frees_room_after_send() {
        let (q, gauge) = queue(serde_json::json!({"sizer": "items", "queue_size": 10}));
        q.push(batch(6)).await.unwrap();
        assert_eq!(gauge.get(), 6);
        assert_eq!(q.in_use(), 6);
        assert!(matches!(q.push(batch(5)).await, Err(PushError::Full(b)) if b.item_count() == 5));
        q.push(batch(4)).await.unwrap();
        assert_eq!(gauge.get(), 10);
        let job = q.pop().await.unwrap();
        assert_eq!(job.batch.item_count(), 6);
        // Room is held until the job is finished with.
        assert!(matches!(q.push(batch(1)).await, Err(PushError::Full(_))));
        drop(job);
        assert_eq!(gauge.get(), 4);
        q.push(batch(5)).await.unwrap();
    }

    #[test]
    fn sizers_measure_requests_items_and_bytes() {
        let b = batch(4);
        let size = |sizer: &str| {
            serde_json::from_value::<QueueSettings>(serde_json::json!({"sizer": sizer}))
                .unwrap()
                .size_of(&b)
        };
        assert_eq!(size("requests"), 1);
        assert_eq!(size("items"), 4);
        assert_eq!(size("bytes"), b.encoded_len() as u64);
        assert!(b.encoded_len() > 4);
    }

    #[tokio::test]
    async fn oversized_batch_passes_when_queue_is_empty() {
        let (q, _) = queue(serde_json::json!({"sizer": "items", "queue_size": 3}));
        q.push(batch(50)).await.unwrap();
        assert!(matches!(q.push(batch(1)).await, Err(PushError::Full(_))));
    }

    #[tokio::test]
    async fn close_keeps_queued_jobs_and_refuses_new_ones() {
        let (q, _) = queue(serde_json::json!({}));
        q.push(batch(1)).await.unwrap();
        q.push(batch(2)).await.unwrap();
        q.close();
        assert!(matches!(q.push(batch(3)).await, Err(PushError::Closed(_))));
        assert_eq!(q.pop().await.unwrap().batch.item_count(), 1);
        assert_eq!(q.pop().await.unwrap().batch.item_count(), 2);
        assert!(q.pop().await.is_none());
    }

    #[tokio::test]
    async fn block_on_overflow_waits_for_room() {
        let (q, _) = queue(serde_json::json!({"queue_size": 1, "block_on_overflow": true}));
        let q = Arc::new(q);
        q.push(batch(1)).await.unwrap();
        let q2 = q.clone();
        let waiting = tokio::spawn(async move { q2.push(batch(2)).await.is_ok() });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!waiting.is_finished());
        drop(q.pop().await.unwrap());
        assert!(waiting.await.unwrap());
    }

    #[test]
    fn unsupported_fields_are_named() {
        let s: QueueSettings = serde_json::from_value(
            serde_json::json!({"storage": "redis_storage", "num_consumers": 0}),
        )
        .unwrap();
        let mut errors = ConfigErrors::default();
        s.validate("exporters.otlp.sending_queue", &mut errors);
        let text = errors.to_string();
        assert!(
            text.contains("exporters.otlp.sending_queue.num_consumers: must be at least 1"),
            "{text}"
        );
        assert!(text.contains("exporters.otlp.sending_queue.storage: `redis_storage` is not a file_storage extension"), "{text}");
        // A file_storage extension is the collector's form and accepted.
        let s: QueueSettings =
            serde_json::from_value(serde_json::json!({"storage": "file_storage/q"})).unwrap();
        let mut errors = ConfigErrors::default();
        s.validate("exporters.otlp.sending_queue", &mut errors);
        assert!(errors.is_empty(), "{errors}");
        assert_eq!(s.storage, Some(Storage::Extension("file_storage/q".into())));
    }

    #[test]
    fn disk_storage_block_has_defaults_and_checks() {
        let s: QueueSettings =
            serde_json::from_value(serde_json::json!({"storage": {"directory": "/q"}})).unwrap();
        assert_eq!(
            s.storage,
            Some(Storage::Disk(DiskQueueSettings {
                directory: PathBuf::from("/q"),
                fsync: FsyncPolicy::Batch,
                max_size_mib: 1024
            }))
        );
        let s: QueueSettings = serde_json::from_value(
            serde_json::json!({"storage": {"directory": "", "fsync": "always", "max_size_mib": 0}}),
        )
        .unwrap();
        let mut errors = ConfigErrors::default();
        s.validate("exporters.otlp.sending_queue", &mut errors);
        let text = errors.to_string();
        assert!(
            text.contains("exporters.otlp.sending_queue.storage.directory: must not be empty"),
            "{text}"
        );
        assert!(
            text.contains("exporters.otlp.sending_queue.storage.max_size_mib: must be at least 1"),
            "{text}"
        );
        let err = serde_json::from_value::<QueueSettings>(
            serde_json::json!({"storage": {"directory": "/q", "fsync": "sometimes"}}),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("unknown variant `sometimes`"), "{err}");
        let err =
            serde_json::from_value::<QueueSettings>(serde_json::json!({"storage": {"dir": "/q"}}))
                .unwrap_err()
                .to_string();
        assert!(err.contains("unknown field `dir`"), "{err}");
    }
}
