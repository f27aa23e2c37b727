//! The persistent sending queue (`sending_queue.storage`) as [`Delivery`] uses it: one
//! write-ahead log per signal, opened (and migrated from the older shared layout) at start,
//! written ahead before a batch is queued, and acknowledged once sent.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use weir_api::{Batch, ConsumeError, Signal, StartError};

use super::wal::{FsyncPolicy, Wal, WalError, WalOptions};
use super::{Delivery, DiskQueueSettings, ExportQueue, PushError, Refusal};

/// The disk queue of an exporter: one log for every signal (the inline
/// `storage: {directory: ...}`), or, with `storage: file_storage/x`, one log per signal as
/// the Collector has one storage client per exporter and signal. A signal's log is opened
/// at start when its directory exists (it may hold data from before) and otherwise on the
/// signal's first batch.
pub(super) struct Wals {
    pub(super) shared: Option<Arc<Wal>>,
    pub(super) per_signal: [tokio::sync::OnceCell<Arc<Wal>>; 3],
    /// Where each signal's log lives (per-signal form only).
    pub(super) dirs: Option<[DiskQueueSettings; 3]>,
}

impl Wals {
    /// The open log that holds `signal`'s batches.
    pub(super) fn get(&self, signal: Signal) -> Option<&Arc<Wal>> {
        self.shared
            .as_ref()
            .or_else(|| self.per_signal[usize::from(signal.code())].get())
    }

    pub(super) fn open(&self) -> impl Iterator<Item = &Arc<Wal>> {
        self.shared
            .iter()
            .chain(self.per_signal.iter().filter_map(|c| c.get()))
    }

    pub(super) fn persisted_bytes(&self) -> i64 {
        i64::try_from(self.open().map(|w| w.persisted_bytes()).sum::<u64>()).unwrap_or(i64::MAX)
    }

    pub(super) fn pending(&self) -> usize {
        self.open().map(|w| w.pending()).sum()
    }
}

pub(super) const SIGNALS: [Signal; 3] = [Signal::Logs, Signal::Traces, Signal::Metrics];

fn wal_options(disk: &DiskQueueSettings) -> WalOptions {
    let max_bytes = disk.max_size_mib.saturating_mul(1 << 20);
    WalOptions {
        max_bytes,
        segment_bytes: (max_bytes / 16).clamp(1 << 20, 64 << 20).min(max_bytes),
        fsync: disk.fsync,
    }
}

/// Moves the records of a disk queue written before queues were kept per signal (one
/// directory for all signals) into the per-signal logs, then removes it. A crash in between
/// leaves the old directory, which is moved again at the next start: at least once.
pub(super) fn migrate_shared_queue(
    old: &std::path::Path,
    dirs: &[DiskQueueSettings; 3],
) -> Result<usize, WalError> {
    let opts = wal_options(&dirs[0]);
    let (wal, replay) = Wal::open(old, opts)?;
    let mut targets: [Option<Wal>; 3] = [None, None, None];
    let n = replay.len();
    for r in replay {
        let i = usize::from(r.signal.code());
        if targets[i].is_none() {
            targets[i] = Some(Wal::open(&dirs[i].directory, wal_options(&dirs[i]))?.0);
        }
        if let Some(t) = &targets[i] {
            t.append(r.signal, &r.payload)?;
        }
    }
    for t in targets.iter().flatten() {
        t.sync()?;
    }
    drop(targets);
    drop(wal);
    std::fs::remove_dir_all(old).map_err(|e| WalError::Io {
        path: old.to_path_buf(),
        op: "remove the shared disk queue after moving its records",
        source: e,
    })?;
    Ok(n)
}

/// How long shutdown lets a disk-backed queue drain before leaving the rest on disk.
pub(super) const DISK_QUEUE_DRAIN: Duration = Duration::from_secs(2);

/// The `fsync: batch` interval.
pub(super) const FSYNC_BATCH_INTERVAL: Duration = Duration::from_millis(200);

/// Makes a write beyond the file-size limit (`ulimit -f`) fail with EFBIG, which the disk
/// queue refuses data for, instead of killing the process with SIGXFSZ: a handler is
/// registered for the signal (and kept for the life of the process), which replaces the
/// default action.
pub(super) fn ignore_sigxfsz() {
    static REGISTERED: OnceLock<()> = OnceLock::new();
    REGISTERED.get_or_init(|| {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::from_raw(libc::SIGXFSZ)) {
            // Dropping the stream leaves the handler in place; the signal is then ignored.
            Ok(_stream) => {}
            Err(e) => {
                tracing::warn!(error = %e, "cannot ignore SIGXFSZ; a file-size limit would kill the process")
            }
        }
    });
}

/// Runs a blocking disk-queue call off the async threads.
pub(super) async fn blocking<T: Send + 'static>(
    wal: &Arc<Wal>,
    f: impl FnOnce(&Wal) -> Result<T, WalError> + Send + 'static,
) -> Result<T, WalError> {
    let wal = wal.clone();
    let dir = wal.dir().to_path_buf();
    tokio::task::spawn_blocking(move || f(&wal))
        .await
        .unwrap_or_else(|e| {
            Err(WalError::Io {
                path: dir,
                op: "disk queue task",
                source: std::io::Error::other(e.to_string()),
            })
        })
}

impl Delivery {
    /// `consume` with a disk queue: take room in the queue, write ahead, then queue.
    pub(super) async fn consume_persisted(
        &self,
        queue: &ExportQueue,
        wal: &Arc<Wal>,
        batch: Batch,
    ) -> Result<(), ConsumeError> {
        let signal = batch.signal();
        let room = match queue.reserve(&batch).await {
            Ok(room) => room,
            Err(Refusal::Full) => {
                self.core
                    .counters(signal)
                    .enqueue_failed
                    .inc_by(batch.item_count() as u64);
                return Err(self.refused(format!(
                    "sending queue is full ({} {})",
                    queue.capacity(),
                    queue.sizer().as_str()
                )));
            }
            Err(Refusal::Closed) => return Err(ConsumeError::ShuttingDown),
        };
        let bytes = batch.to_protobuf();
        let appended = blocking(wal, move |w| w.append(signal, &bytes)).await;
        self.update_persisted();
        let seq = match appended {
            Ok(seq) => seq,
            Err(e @ WalError::TooLarge { .. }) => {
                self.core
                    .counters(signal)
                    .send_failed
                    .inc_by(batch.item_count() as u64);
                tracing::error!(exporter = %self.core.exporter, %signal, "{e}; rejecting the batch");
                return Err(ConsumeError::Rejected {
                    component: self.core.exporter.clone(),
                    reason: e.to_string(),
                });
            }
            Err(e) => {
                self.core
                    .counters(signal)
                    .enqueue_failed
                    .inc_by(batch.item_count() as u64);
                match e {
                    WalError::Full { .. } => {}
                    WalError::NoSpace { .. } => {
                        tracing::error!(exporter = %self.core.exporter, error = %e, "the disk holding the disk queue is full; refusing data until there is room")
                    }
                    _ => {
                        tracing::error!(exporter = %self.core.exporter, error = %e, "cannot write to the disk queue; refusing data")
                    }
                }
                return Err(self.refused(e.to_string()));
            }
        };
        match queue.push_reserved(batch, Some(seq), room) {
            Ok(()) => Ok(()),
            // Shutting down: the record is on disk and is sent after the next start; the
            // client is told to retry, so it may arrive twice (at least once).
            Err(PushError::Full(_) | PushError::Closed(_)) => Err(ConsumeError::ShuttingDown),
        }
    }

    pub(super) fn update_persisted(&self) {
        if let Some(w) = self.wals.get() {
            self.persisted_bytes.set(w.persisted_bytes());
        }
    }

    /// The disk queues in the directory of the `file_storage` extension `ext`, one per
    /// signal as the Collector names its storage clients: the subdirectory
    /// `exporter_<type>_<name>_<signal>` (`exporter_otlp_up_logs` for `otlp/up`,
    /// `exporter_otlp__traces` for `otlp`), fsynced per batch when the extension has
    /// `fsync: true`, else every 200 ms; the default disk budget for each. Also the
    /// directory of the single queue earlier versions kept for all signals,
    /// `exporter_<type>_<name>`, if it exists (its records are moved).
    pub(super) fn extension_disks(
        &self,
        ext: &str,
    ) -> Result<([DiskQueueSettings; 3], std::path::PathBuf), StartError> {
        let Some(dir) = weir_api::storage::storage_dir(ext) else {
            return Err(StartError {
                id: self.id.clone(),
                message: format!(
                    "sending_queue.storage: {ext:?} is not a configured file_storage extension listed in service.extensions"
                ),
                source: None,
            });
        };
        let safe = |s: &str| s.replace(['/', '\\'], "_");
        let kind = safe(self.id.kind());
        let name = safe(self.id.name().unwrap_or(""));
        let disks = SIGNALS.map(|signal| DiskQueueSettings {
            directory: dir
                .directory
                .join(format!("exporter_{kind}_{name}_{}", signal.as_str())),
            fsync: if dir.fsync {
                FsyncPolicy::Always
            } else {
                FsyncPolicy::Batch
            },
            max_size_mib: 1024,
        });
        let old = dir
            .directory
            .join(format!("exporter_{}", safe(&self.id.to_string())));
        Ok((disks, old))
    }

    /// Opens the disk queue and queues what it holds from before.
    pub(super) async fn open_disk_queue(
        &self,
        queue: &ExportQueue,
        disk: &DiskQueueSettings,
    ) -> Result<Arc<Wal>, StartError> {
        let opts = wal_options(disk);
        ignore_sigxfsz();
        let dir = disk.directory.clone();
        let opened = tokio::task::spawn_blocking(move || Wal::open(&dir, opts)).await;
        let id = &self.id;
        let (wal, replay) = match opened {
            Ok(Ok(opened)) => opened,
            Ok(Err(e)) => {
                return Err(StartError::new(
                    id,
                    format!(
                        "cannot open sending_queue.storage.directory {}: {e}",
                        disk.directory.display()
                    ),
                    e,
                ))
            }
            Err(e) => return Err(StartError::new(id, "cannot open the disk queue", e)),
        };
        let wal = Arc::new(wal);
        let lost = wal.lost();
        self.lost_records.inc_by(lost.records);
        self.lost_bytes.inc_by(lost.bytes);
        if lost.bytes > 0 {
            tracing::warn!(
                exporter = %self.core.exporter, records_lost = lost.records,
                bytes_skipped = lost.bytes, directory = %disk.directory.display(),
                "the disk queue held damaged data; intact records around it are kept"
            );
        }
        if !replay.is_empty() {
            tracing::info!(
                exporter = %self.core.exporter, batches = replay.len(),
                directory = %disk.directory.display(),
                "sending batches stored in the disk queue before the last stop"
            );
        }
        for record in replay {
            let seq = record.seq;
            match Batch::decode(record.signal, record.payload) {
                Ok(batch) => {
                    if queue.push_replayed(batch, seq).is_err() {
                        break;
                    }
                }
                Err(e) => {
                    tracing::error!(exporter = %self.core.exporter, seq, error = %e, "dropping an undecodable record from the disk queue");
                    blocking(&wal, move |w| w.ack(seq)).await.map_err(|e| {
                        StartError::new(id, "cannot acknowledge a record in the disk queue", e)
                    })?;
                }
            }
        }
        Ok(wal)
    }

    /// The log for `signal`, opened now if this is the signal's first batch.
    pub(super) async fn wal_for(
        &self,
        queue: &ExportQueue,
        wals: &Wals,
        signal: Signal,
    ) -> Result<Arc<Wal>, ConsumeError> {
        if let Some(w) = wals.get(signal) {
            return Ok(w.clone());
        }
        let Some(dirs) = &wals.dirs else {
            return Err(self.refused("the disk queue is not open".to_string()));
        };
        let i = usize::from(signal.code());
        let opened = wals.per_signal[i]
            .get_or_try_init(|| self.open_disk_queue(queue, &dirs[i]))
            .await;
        self.update_persisted();
        match opened {
            Ok(w) => Ok(w.clone()),
            Err(e) => {
                tracing::error!(exporter = %self.core.exporter, %signal, error = %e, "cannot open the disk queue; refusing data");
                Err(self.refused(e.to_string()))
            }
        }
    }
}
