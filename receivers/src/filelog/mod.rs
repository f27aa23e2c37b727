//! `filelog` (also `file_log`): tails files into log records, with the Collector's
//! `filelog` receiver fields and defaults.
//!
//! ```yaml
//! receivers:
//!   filelog:
//!     include: [/var/log/app/*.log]      # globs, `**` crosses directories; required
//!     exclude: [/var/log/app/debug.log]
//!     start_at: end                      # or beginning; applies to files found by the first poll
//!     poll_interval: 200ms
//!     fingerprint_size: 1KiB             # a file is known by its first bytes
//!     max_log_size: 1MiB                 # longer entries are cut into pieces of this size
//!     encoding: utf-8                    # or nop (body is the raw bytes, no splitting)
//!     multiline: {line_start_pattern: '^\d{4}-'}   # or line_end_pattern
//!     include_file_name: true            # attribute log.file.name
//!     include_file_path: false           # attribute log.file.path
//!     force_flush_period: 500ms          # an unfinished last entry is sent after this quiet time
//!     delete_after_read: false           # needs start_at: beginning
//!     storage: file_storage/x            # checkpoints that survive restarts
//!     operators:                         # stanza operators, see [`operators`]
//!       - {type: container}
//! ```
//!
//! Each poll lists the files, identifies each by its fingerprint (its first
//! `fingerprint_size` bytes: a file that has grown still starts with the bytes it was
//! known by), and reads each from its offset to its end. A file renamed away (rotation by
//! rename) is read to its end through the handle kept open since the last poll (over as
//! many polls as its backlog takes, the handle kept open until then), and the
//! new file at the path is read from its start; a file that became shorter than its offset
//! (copytruncate) is read from 0. One batch per file per poll, of at most
//! [`MAX_BATCH_BYTES`]; a file with more is read again by the next poll, which then comes
//! at once. Up to [`MAX_IN_FLIGHT`] polls' batches are offered to the pipeline at once (a
//! batch processor merges them instead of waiting for more), and the next poll reads while
//! they are in flight. A batch that the pipeline refuses is offered again; a file's offset
//! moves only once its batch was accepted, in read order (reads name their file by key, and
//! a read from before a truncation moves nothing). With `storage`, offsets per fingerprint
//! are written to the storage directory after each accepted batch, never past a batch still
//! in flight.
//!
//! Guarantee (with `storage`): at least once. The offset written for a file is never
//! beyond the start of the first line of an entry that has not gone downstream yet: an
//! unfinished entry the splitter waits on (a line without its newline, a multiline entry
//! whose end is not known yet), an entry a `recombine` operator (or the `container`
//! operator's partial-line joining) holds, or one read but not yet taken by the pipeline.
//! After kill -9 and a restart such entries are read again and arrive whole. What can
//! arrive twice: records of the batch in flight at the kill, and records from lines after
//! the start of a held entry that went downstream before it did (e.g. entries of another
//! source, or entries an operator's `if` let bypass the recombine). A graceful stop sends
//! what the operators hold (as the Collector's recombine does on stop) and then writes
//! the checkpoint; an unfinished entry in the file is not sent at a stop (more of it may
//! still be written) and is read again after the restart. `force_flush_period` is
//! unchanged: a held entry goes out once its source was quiet that long.
//!
//! Also accepted: `include_file_name_resolved` / `include_file_path_resolved`
//! (`log.file.name_resolved`, `log.file.path_resolved`, symlinks resolved),
//! `preserve_leading_whitespaces` / `preserve_trailing_whitespaces` (otherwise entries are
//! trimmed), `multiline.omit_pattern`, `attributes` and `resource` (string values added to
//! every record / its resource), and `max_concurrent_files` (default 1024): files are opened
//! and read in groups of half of it and only the last group stays open until the next poll,
//! so no more than that many are open at once (two when it is 1), besides files renamed away
//! still being read to their end; with more files, a file renamed away is read to its end only
//! if it was in that last group. Fields of the Collector
//! that are not implemented ([`NOT_SUPPORTED`], any encoding but utf-8 and nop, operator
//! types and fields [`operators`] does not have) are config errors that name them.

mod config;
mod encode;
pub mod operators;
pub mod split;
mod tailer;

use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;
use weir_api::{
    parse_component_config, Batch, BuildContext, BuildError, Component, ComponentId, ConfigErrors,
    Consumer, ReceiverConfig, ReceiverFactory, Signal, SignalConsumers, SignalSet, StartError,
};

use config::{settings, Raw};
use split::Splitter;

/// The most bytes of one file that go into one batch (a poll reads up to this plus
/// `max_log_size`, so an entry of the longest size can end in the read).
pub const MAX_BATCH_BYTES: usize = 256 << 10;
/// Polls a file that is gone is remembered for (so a file that comes back is not re-read).
const FORGET_AFTER_POLLS: u64 = 3;

/// Fields the Collector has that this receiver does not implement yet: a config error
/// naming them, never silently ignored.
const NOT_SUPPORTED: &[&str] = &[
    "header",
    "ordering_criteria",
    "exclude_older_than",
    "compression",
    "acquire_fs_lock",
    "include_file_owner_name",
    "include_file_owner_group_name",
    "include_file_record_number",
    "include_file_record_offset",
    "polls_to_archive",
    "retry_on_failure",
    "max_batches",
];

/// Validated settings of one `filelog` receiver.
#[derive(Debug, Clone)]
pub struct FileLogSettings {
    include: Vec<glob::Pattern>,
    exclude: Vec<glob::Pattern>,
    start_at_beginning: bool,
    poll_interval: Duration,
    fingerprint_size: usize,
    max_log_size: usize,
    max_concurrent_files: usize,
    raw_bytes: bool,
    splitter: Splitter,
    include_file_name: bool,
    include_file_path: bool,
    include_file_name_resolved: bool,
    include_file_path_resolved: bool,
    force_flush_period: Duration,
    delete_after_read: bool,
    storage: Option<String>,
    keep_leading: bool,
    keep_trailing: bool,
    attributes: BTreeMap<String, String>,
    resource: BTreeMap<String, String>,
    attr_map: BTreeMap<String, operators::Val>,
    res_map: BTreeMap<String, operators::Val>,
    pipeline: operators::Pipeline,
}

/// Factory of `filelog` / `file_log`.
pub struct FileLogReceiverFactory;

impl ReceiverFactory for FileLogReceiverFactory {
    fn signals(&self) -> SignalSet {
        SignalSet::of(&[weir_api::Signal::Logs])
    }

    fn parse(
        &self,
        config: &serde_json::Value,
        path: &str,
    ) -> Result<Box<dyn ReceiverConfig>, ConfigErrors> {
        let mut errors = ConfigErrors::default();
        let mut value = config.clone();
        if let Some(map) = value.as_object_mut() {
            for key in NOT_SUPPORTED {
                if map.remove(*key).is_some() {
                    errors.push(
                        format!("{path}.{key}"),
                        "not supported by weir's filelog receiver yet (remove it)",
                    );
                }
            }
        }
        let raw: Raw = match parse_component_config(&value, path) {
            Ok(r) => r,
            Err(mut e) => {
                errors.0.append(&mut e.0);
                return Err(errors);
            }
        };
        match settings(raw, path, &mut errors) {
            Some(s) if errors.is_empty() => Ok(Box::new(s)),
            _ => Err(errors),
        }
    }
}

impl ReceiverConfig for FileLogSettings {
    fn build(
        &self,
        ctx: &BuildContext,
        consumers: SignalConsumers,
    ) -> Result<Arc<dyn Component>, BuildError> {
        let Some(next) = consumers.logs else {
            return Err(BuildError::message(
                &ctx.id,
                "filelog feeds logs pipelines only, and no logs pipeline lists it",
            ));
        };
        let mut settings = self.clone();
        settings
            .pipeline
            .attach(&ctx.telemetry, &ctx.id.to_string());
        Ok(Arc::new(FileLogReceiver {
            id: ctx.id.clone(),
            settings,
            next,
            cancel: CancellationToken::new(),
            task: Mutex::new(None),
        }))
    }
}

/// The running receiver: one task that polls.
pub struct FileLogReceiver {
    id: ComponentId,
    settings: FileLogSettings,
    next: Arc<dyn Consumer>,
    cancel: CancellationToken,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

#[async_trait]
impl Component for FileLogReceiver {
    async fn start(&self) -> Result<(), StartError> {
        let checkpoint = match &self.settings.storage {
            None => None,
            Some(ext) => {
                let Some(dir) = crate::file_storage::lookup(ext) else {
                    return Err(StartError {
                        id: self.id.clone(),
                        message: format!(
                            "storage: {ext:?} is not a configured file_storage extension listed in service.extensions"
                        ),
                        source: None,
                    });
                };
                let name = self.id.to_string().replace(['/', '\\'], "_");
                Some(Checkpoint {
                    path: dir.directory.join(format!("receiver_{name}.json")),
                    fsync: dir.fsync,
                })
            }
        };
        let mut tailer = Tailer {
            pipeline: self.settings.pipeline.clone(),
            s: self.settings.clone(),
            files: Vec::new(),
            poll: 0,
            checkpoint,
            restored: false,
            next_key: 0,
            buf: Vec::new(),
            entries: Vec::new(),
            out: Vec::new(),
            dirty: false,
        };
        tailer.restore().map_err(|e| StartError {
            id: self.id.clone(),
            message: e,
            source: None,
        })?;
        let (id, next, cancel) = (self.id.clone(), self.next.clone(), self.cancel.clone());
        let task = tokio::spawn(run(tailer, id, next, cancel));
        *self.task.lock().unwrap_or_else(|e| e.into_inner()) = Some(task);
        Ok(())
    }

    async fn shutdown(&self) {
        self.cancel.cancel();
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = task {
            let _ = t.await;
        }
    }
}

/// Where offsets are persisted.
#[derive(Debug, Clone)]
struct Checkpoint {
    path: PathBuf,
    fsync: bool,
}

/// A file the receiver knows.
struct Tracked {
    /// Names the file in [`operators::Origin`]s (unique for the receiver's run).
    key: u64,
    fingerprint: Vec<u8>,
    path: PathBuf,
    /// Bytes already handed on (accepted downstream).
    offset: u64,
    /// Bytes read: `offset` plus what reads in flight hold.
    read_to: u64,
    /// Counts resets of the offset (truncation): a read in flight from before a reset does
    /// not move the offset when it is accepted.
    generation: u64,
    /// Open since the last poll that found it; `None` for files known only from a checkpoint
    /// or no longer found.
    file: Option<File>,
    inode: (u64, u64),
    /// Last poll that found the file at a path matching `include`.
    seen: u64,
    /// Size at the last read and when it last changed (for force_flush_period).
    last_size: u64,
    last_change: Instant,
    /// No longer found (renamed away or deleted) with more to read than one read takes: its
    /// handle stays open and it is read on through the next polls until its end.
    draining: bool,
}

/// What one file gave in one poll.
struct Read1 {
    /// The file's key; [`NO_FILE`] for entries a recombine operator let go on its own.
    key: u64,
    /// The file's [`Tracked::generation`] at the read.
    generation: u64,
    /// The file's path (for logs).
    path: String,
    /// The records, an encoded OTLP logs export request and its record count (`None`: no
    /// record).
    request: Option<(Bytes, usize)>,
    /// Where the lines of entries out of the operators start (earliest per file): until
    /// the pipeline took them, checkpoints stay at or before these.
    origins: Vec<operators::Start>,
    new_offset: u64,
    /// Everything up to the end of the file was consumed.
    at_end: bool,
    /// The batch reached MAX_BATCH_BYTES: more is waiting.
    more: bool,
    delete: bool,
}

/// [`Read1::key`] of records that come from no read (held entries let go); files' keys
/// start at 1.
const NO_FILE: u64 = 0;

struct Tailer {
    s: FileLogSettings,
    /// The operators with their state.
    pipeline: operators::Pipeline,
    files: Vec<Tracked>,
    poll: u64,
    checkpoint: Option<Checkpoint>,
    restored: bool,
    /// The key the next tracked file gets.
    next_key: u64,
    /// The read buffer, reused.
    buf: Vec<u8>,
    /// The entries of a read and those out of the operators, kept between reads (see
    /// `tailer::keep`).
    entries: Vec<operators::Entry>,
    out: Vec<operators::Entry>,
    /// Files were found, reset or forgotten since the checkpoint was last written.
    dirty: bool,
}

#[derive(serde::Serialize, Deserialize)]
struct Saved {
    files: Vec<SavedFile>,
}

#[derive(serde::Serialize, Deserialize)]
struct SavedFile {
    fingerprint: String,
    offset: u64,
    path: String,
}

/// Entries out of the operators into `req`, grouped by resource (in order of appearance);
/// returns the earliest start of their lines per file.
fn encode_entries(
    entries: &[operators::Entry],
    req: &mut encode::Request,
) -> Vec<operators::Start> {
    let mut enc = Encoder::default();
    enc.add(entries, req);
    enc.starts()
}

/// Entries out of the operators written into one request, in chunks: the groups of the
/// resources seen so far and where the entries' lines started.
#[derive(Default)]
struct Encoder {
    origin: operators::Origin,
    resources: Vec<std::collections::BTreeMap<String, operators::Val>>,
}

impl Encoder {
    fn add(&mut self, entries: &[operators::Entry], req: &mut encode::Request) {
        for e in entries {
            self.origin.merge(&e.origin);
            req.entry(e, &mut self.resources);
        }
    }

    fn starts(&self) -> Vec<operators::Start> {
        self.origin.starts().to_vec()
    }
}

/// Offers the records of a read to the pipeline until it takes them. `false`: cancelled
/// first.
async fn offer(
    request: Option<(Bytes, usize)>,
    path: String,
    id: ComponentId,
    next: Arc<dyn Consumer>,
    cancel: CancellationToken,
) -> bool {
    let Some((bytes, records)) = request else {
        return true;
    };
    let mut backoff = Duration::from_millis(100);
    loop {
        // Written by encode.rs (whose tests decode it with prost): no receipt check.
        let batch = Batch::from_own_encoding(Signal::Logs, bytes.clone(), records);
        match next.consume(batch).await {
            Ok(()) => return true,
            Err(e) => {
                if cancel.is_cancelled() {
                    return false;
                }
                tracing::warn!(receiver = %id, path = %path, error = %e, "the pipeline did not take the records; offering them again");
                tokio::select! {
                    _ = cancel.cancelled() => return false,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

fn save(tailer: &mut Tailer, pending: &[Read1], id: &ComponentId) {
    match tailer.save(pending) {
        Ok(()) => tailer.dirty = false,
        Err(e) => tracing::warn!(receiver = %id, error = %e, "cannot write the checkpoint"),
    }
}

/// Reads offered to the pipeline and not yet answered before the next poll waits for an
/// answer. The pipeline gets several at once (a batch processor merges them rather than
/// waiting for more), while what the receiver holds stays bounded.
pub const MAX_IN_FLIGHT: usize = 4;

/// The reads in flight, oldest first, and their offers, which answer in the same order.
struct InFlight {
    reads: VecDeque<Read1>,
    offers: futures::stream::FuturesOrdered<futures::future::BoxFuture<'static, bool>>,
}

impl InFlight {
    fn push(
        &mut self,
        mut r: Read1,
        id: &ComponentId,
        next: &Arc<dyn Consumer>,
        cancel: &CancellationToken,
    ) {
        let request = r.request.take();
        self.offers.push_back(Box::pin(offer(
            request,
            r.path.clone(),
            id.clone(),
            next.clone(),
            cancel.clone(),
        )));
        self.reads.push_back(r);
    }
}

/// An answered read: the offset moves, the checkpoint is written.
fn answered(tailer: &mut Tailer, in_flight: &mut InFlight, id: &ComponentId) {
    if let Some(r) = in_flight.reads.pop_front() {
        tailer.accepted(&r);
        save(tailer, in_flight.reads.make_contiguous(), id);
    }
}

async fn run(
    mut tailer: Tailer,
    id: ComponentId,
    next: Arc<dyn Consumer>,
    cancel: CancellationToken,
) {
    use futures::StreamExt;
    let interval = tailer.s.poll_interval;
    let mut in_flight = InFlight {
        reads: VecDeque::new(),
        offers: futures::stream::FuturesOrdered::new(),
    };
    let mut next_poll = tokio::time::Instant::now();
    // The last poll left data to read: poll again as soon as there is room.
    let mut more = false;
    'polls: loop {
        let room = in_flight.reads.len() < MAX_IN_FLIGHT;
        if room && (more || tokio::time::Instant::now() >= next_poll) {
            // The poll reads on a blocking thread while the pipeline takes reads in flight;
            // their answers are applied once the tailer is back.
            let mut scan = tokio::task::spawn_blocking(move || {
                let reads = tailer.scan();
                (tailer, reads)
            });
            let mut answers = 0usize;
            let mut stop = false;
            let (t, reads) = loop {
                tokio::select! {
                    r = &mut scan => match r {
                        Ok(x) => break x,
                        Err(e) => {
                            tracing::error!(receiver = %id, error = %e, "file poll failed");
                            return;
                        }
                    },
                    Some(ok) = in_flight.offers.next(), if !stop => {
                        if ok {
                            answers += 1;
                        } else {
                            stop = true;
                        }
                    }
                }
            };
            tailer = t;
            for _ in 0..answers {
                answered(&mut tailer, &mut in_flight, &id);
            }
            if stop {
                break 'polls;
            }
            // The files' handles are closed and gone files forgotten only now; reads in
            // flight name their file by key.
            tailer.end_poll();
            more = false;
            for r in reads {
                more |= r.more;
                in_flight.push(r, &id, &next, &cancel);
            }
            // New files (their offsets under start_at), resets and forgotten files are
            // written too, so a restart does not apply start_at again to a file already
            // known.
            if tailer.dirty {
                save(&mut tailer, in_flight.reads.make_contiguous(), &id);
            }
            if !more {
                next_poll = tokio::time::Instant::now() + interval;
            }
            if cancel.is_cancelled() {
                break;
            }
            continue;
        }
        tokio::select! {
            Some(ok) = in_flight.offers.next() => {
                if !ok {
                    break 'polls;
                }
                answered(&mut tailer, &mut in_flight, &id);
            }
            _ = tokio::time::sleep_until(next_poll), if room && !more => {}
            _ = cancel.cancelled() => break,
        }
    }
    // Offers not answered are dropped: their offsets did not move.
    let pending: Vec<Read1> = in_flight.reads.into_iter().collect();
    // Stopping: what the operators hold goes downstream now (as the Collector's recombine
    // does on stop), once; if the pipeline does not take it, the checkpoint written last
    // still lies before it and a restart reads it again.
    let mut out = Vec::new();
    tailer.pipeline.flush_due(true, &mut out);
    if out.is_empty() {
        return;
    }
    let mut req = encode::Request::default();
    encode_entries(&out, &mut req);
    let Some((bytes, records)) = req.finish() else {
        return;
    };
    let batch = Batch::from_own_encoding(Signal::Logs, bytes, records);
    match next.consume(batch).await {
        Ok(()) => save(&mut tailer, &pending, &id),
        Err(e) => {
            tracing::warn!(receiver = %id, error = %e, "stopping: the pipeline did not take the entries the operators held; with storage they are read again after a restart")
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::config::byte_size;
    use super::tailer::{excluded, hex, unhex};

    fn ex(pats: &[&str], path: &str) -> bool {
        let pats: Vec<glob::Pattern> = pats
            .iter()
            .map(|p| glob::Pattern::new(p).unwrap())
            .collect();
        excluded(&pats, std::path::Path::new(path))
    }

    #[test]
    fn exclude_star_stays_in_one_directory_and_double_star_crosses() {
        assert!(ex(&["/var/log/*.log"], "/var/log/a.log"));
        assert!(!ex(&["/var/log/*.log"], "/var/log/sub/a.log"));
        assert!(ex(&["/var/log/**/*.log"], "/var/log/sub/deeper/a.log"));
        assert!(ex(&["**/skip.log"], "/tmp/x/logs/skip.log"));
        assert!(!ex(&["**/skip.log"], "/tmp/x/logs/keep.log"));
        assert!(ex(&["/var/log/.hidden*"], "/var/log/.hidden.log"));
    }

    #[test]
    fn sizes_take_the_collectors_units() {
        assert_eq!(byte_size(&serde_json::json!(1024)).unwrap(), 1024);
        assert_eq!(byte_size(&serde_json::json!("1KiB")).unwrap(), 1024);
        assert_eq!(byte_size(&serde_json::json!("1kb")).unwrap(), 1000);
        assert_eq!(byte_size(&serde_json::json!("2MiB")).unwrap(), 2 << 20);
        assert!(byte_size(&serde_json::json!("1 parsec")).is_err());
    }

    #[test]
    fn fingerprints_survive_the_checkpoint_encoding() {
        let fp = vec![0u8, 1, 0xab, 0xff];
        assert_eq!(unhex(&hex(&fp)).unwrap(), fp);
        assert!(unhex("abc").is_none());
        assert!(unhex("zz").is_none());
    }
}
