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

mod encode;
pub mod operators;
pub mod split;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;
use weir_api::{
    parse_component_config, Batch, BuildContext, BuildError, Component, ComponentId, ConfigErrors,
    Consumer, ReceiverConfig, ReceiverFactory, Signal, SignalConsumers, SignalSet, StartError,
};

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

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum StartAt {
    Beginning,
    #[default]
    End,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Multiline {
    #[serde(default)]
    line_start_pattern: String,
    #[serde(default)]
    line_end_pattern: String,
    #[serde(default)]
    omit_pattern: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    include: Vec<String>,
    #[serde(default)]
    exclude: Vec<String>,
    #[serde(default)]
    start_at: StartAt,
    #[serde(default = "d_poll", with = "humantime_serde")]
    poll_interval: Duration,
    #[serde(default)]
    fingerprint_size: Option<serde_json::Value>,
    #[serde(default)]
    max_log_size: Option<serde_json::Value>,
    #[serde(default = "d_max_files")]
    max_concurrent_files: usize,
    #[serde(default = "d_encoding")]
    encoding: String,
    #[serde(default = "d_true")]
    include_file_name: bool,
    #[serde(default)]
    include_file_path: bool,
    #[serde(default)]
    include_file_name_resolved: bool,
    #[serde(default)]
    include_file_path_resolved: bool,
    #[serde(default)]
    multiline: Option<Multiline>,
    #[serde(default = "d_flush", with = "humantime_serde")]
    force_flush_period: Duration,
    #[serde(default)]
    delete_after_read: bool,
    #[serde(default)]
    storage: Option<String>,
    #[serde(default)]
    operators: Vec<serde_json::Value>,
    #[serde(default)]
    preserve_leading_whitespaces: bool,
    #[serde(default)]
    preserve_trailing_whitespaces: bool,
    #[serde(default)]
    attributes: BTreeMap<String, String>,
    #[serde(default)]
    resource: BTreeMap<String, String>,
}

fn d_poll() -> Duration {
    Duration::from_millis(200)
}
fn d_flush() -> Duration {
    Duration::from_millis(500)
}
fn d_max_files() -> usize {
    1024
}
fn d_encoding() -> String {
    "utf-8".into()
}
fn d_true() -> bool {
    true
}

/// A size as the Collector writes it: an integer of bytes, or a number with a unit
/// (`KB`/`MB`/`GB` are powers of 1000, `KiB`/`MiB`/`GiB` of 1024; case does not matter).
fn byte_size(v: &serde_json::Value) -> Result<usize, String> {
    if let Some(n) = v.as_u64() {
        return Ok(n as usize);
    }
    let s = v
        .as_str()
        .ok_or_else(|| format!("{v} is not a size (an integer of bytes or e.g. \"1KiB\")"))?;
    let t = s.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size (e.g. 1024, \"1KiB\", \"1MB\")"))?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" => 1e3,
        "kib" => 1024.0,
        "mb" => 1e6,
        "mib" => 1048576.0,
        "gb" => 1e9,
        "gib" => 1073741824.0,
        other => {
            return Err(format!(
                "{s:?}: unknown unit {other:?} (use B, KB, KiB, MB, MiB, GB, GiB)"
            ))
        }
    };
    Ok((n * mult) as usize)
}

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

fn vals(m: &BTreeMap<String, String>) -> BTreeMap<String, operators::Val> {
    m.iter()
        .map(|(k, v)| (k.clone(), operators::Val::Str(v.clone())))
        .collect()
}

fn settings(raw: Raw, path: &str, errors: &mut ConfigErrors) -> Option<FileLogSettings> {
    let pipeline = operators::build(&raw.operators, path, errors);
    if raw.include.is_empty() {
        errors.push(format!("{path}.include"), "required: at least one glob");
    }
    let mut globs = |list: &[String], field: &str| -> Vec<glob::Pattern> {
        let mut out = Vec::new();
        for (i, g) in list.iter().enumerate() {
            match glob::Pattern::new(g) {
                Ok(p) => out.push(p),
                Err(e) => errors.push(format!("{path}.{field}[{i}]"), format!("{g:?}: {e}")),
            }
        }
        out
    };
    let include = globs(&raw.include, "include");
    let exclude = globs(&raw.exclude, "exclude");
    let mut size = |v: &Option<serde_json::Value>, field: &str, default: usize| match v {
        None => default,
        Some(v) => match byte_size(v) {
            Ok(n) => n,
            Err(e) => {
                errors.push(format!("{path}.{field}"), e);
                default
            }
        },
    };
    let fingerprint_size = size(&raw.fingerprint_size, "fingerprint_size", 1000);
    let max_log_size = size(&raw.max_log_size, "max_log_size", 1 << 20);
    if fingerprint_size < 16 {
        errors.push(
            format!("{path}.fingerprint_size"),
            "must be at least 16 bytes",
        );
    }
    if max_log_size == 0 {
        errors.push(format!("{path}.max_log_size"), "must be greater than 0");
    }
    if raw.max_concurrent_files == 0 {
        errors.push(format!("{path}.max_concurrent_files"), "must be positive");
    }
    if raw.poll_interval.is_zero() {
        errors.push(format!("{path}.poll_interval"), "must be greater than 0");
    }
    let raw_bytes = match raw.encoding.to_ascii_lowercase().as_str() {
        "utf-8" | "utf8" | "" => false,
        "nop" => true,
        other => {
            errors.push(
                format!("{path}.encoding"),
                format!(
                    "{other:?} is not supported by weir's filelog receiver yet (use utf-8 or nop)"
                ),
            );
            false
        }
    };
    if raw.delete_after_read && raw.start_at != StartAt::Beginning {
        errors.push(
            format!("{path}.delete_after_read"),
            "requires start_at: beginning",
        );
    }
    let ml = raw.multiline.clone().unwrap_or_default();
    let compile = |p: &str, field: &str, errors: &mut ConfigErrors| match regex::bytes::Regex::new(
        &format!("(?m){p}"),
    ) {
        Ok(r) => Some(r),
        Err(e) => {
            errors.push(format!("{path}.multiline.{field}"), format!("{p:?}: {e}"));
            None
        }
    };
    let splitter = match (
        ml.line_start_pattern.is_empty(),
        ml.line_end_pattern.is_empty(),
    ) {
        _ if raw_bytes
            && (!ml.line_start_pattern.is_empty() || !ml.line_end_pattern.is_empty()) =>
        {
            errors.push(
                format!("{path}.multiline"),
                "line_start_pattern and line_end_pattern cannot be used with encoding: nop",
            );
            Splitter::None
        }
        _ if raw_bytes => Splitter::None,
        (true, true) => Splitter::Newline,
        (false, true) => Splitter::LineStart {
            re: compile(&ml.line_start_pattern, "line_start_pattern", errors)?,
            omit: ml.omit_pattern,
        },
        (true, false) => Splitter::LineEnd {
            re: compile(&ml.line_end_pattern, "line_end_pattern", errors)?,
            omit: ml.omit_pattern,
        },
        (false, false) => {
            errors.push(
                format!("{path}.multiline"),
                "only one of line_start_pattern or line_end_pattern can be set",
            );
            Splitter::Newline
        }
    };
    Some(FileLogSettings {
        include,
        exclude,
        start_at_beginning: raw.start_at == StartAt::Beginning,
        poll_interval: raw.poll_interval,
        fingerprint_size,
        max_log_size,
        max_concurrent_files: raw.max_concurrent_files,
        raw_bytes,
        splitter,
        include_file_name: raw.include_file_name,
        include_file_path: raw.include_file_path,
        include_file_name_resolved: raw.include_file_name_resolved,
        include_file_path_resolved: raw.include_file_path_resolved,
        force_flush_period: raw.force_flush_period,
        delete_after_read: raw.delete_after_read,
        storage: raw.storage,
        keep_leading: raw.preserve_leading_whitespaces,
        keep_trailing: raw.preserve_trailing_whitespaces,
        attr_map: vals(&raw.attributes),
        res_map: vals(&raw.resource),
        attributes: raw.attributes,
        resource: raw.resource,
        pipeline,
    })
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
    /// The records, an encoded OTLP logs export request (`None`: no record).
    request: Option<Bytes>,
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

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

impl Tailer {
    fn restore(&mut self) -> Result<(), String> {
        let Some(cp) = &self.checkpoint else {
            return Ok(());
        };
        let text = match std::fs::read(&cp.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(format!("cannot read checkpoint {}: {e}", cp.path.display())),
        };
        let saved: Saved = serde_json::from_slice(&text)
            .map_err(|e| format!("checkpoint {} is damaged: {e}", cp.path.display()))?;
        for f in saved.files {
            let Some(fp) = unhex(&f.fingerprint) else {
                return Err(format!(
                    "checkpoint {} is damaged: bad fingerprint",
                    cp.path.display()
                ));
            };
            self.next_key += 1;
            self.files.push(Tracked {
                key: self.next_key,
                fingerprint: fp,
                path: PathBuf::from(f.path),
                offset: f.offset,
                read_to: f.offset,
                generation: 0,
                file: None,
                inode: (0, 0),
                seen: 0,
                last_size: 0,
                last_change: Instant::now(),
                draining: false,
            });
        }
        self.restored = true;
        Ok(())
    }

    /// The offset to persist for each file: never beyond the start of an entry that has
    /// not gone downstream yet, i.e. one an operator holds or one in `pending` (read, not
    /// yet taken by the pipeline). A restart reads such entries again whole (at least once).
    fn floors(&self, pending: &[Read1]) -> HashMap<u64, u64> {
        let mut floor: HashMap<u64, u64> = HashMap::new();
        let mut add = |(file, at): operators::Start| {
            let v = floor.entry(file).or_insert(at);
            *v = (*v).min(at);
        };
        self.pipeline.held(&mut add);
        for r in pending {
            for s in &r.origins {
                add(*s);
            }
        }
        floor
    }

    fn save(&self, pending: &[Read1]) -> std::io::Result<()> {
        let Some(cp) = &self.checkpoint else {
            return Ok(());
        };
        let floor = self.floors(pending);
        let saved = Saved {
            files: self
                .files
                .iter()
                .map(|f| SavedFile {
                    fingerprint: hex(&f.fingerprint),
                    offset: floor.get(&f.key).map_or(f.offset, |&a| a.min(f.offset)),
                    path: f.path.display().to_string(),
                })
                .collect(),
        };
        let tmp = cp.path.with_extension("json.tmp");
        let mut out = File::create(&tmp)?;
        out.write_all(&serde_json::to_vec(&saved).map_err(std::io::Error::other)?)?;
        if cp.fsync {
            out.sync_all()?;
        }
        drop(out);
        std::fs::rename(&tmp, &cp.path)?;
        if cp.fsync {
            if let Some(dir) = cp.path.parent() {
                File::open(dir)?.sync_all()?;
            }
        }
        Ok(())
    }

    /// The files that match `include` and not `exclude`, sorted.
    fn list(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        for p in &self.s.include {
            let Ok(paths) = glob::glob(p.as_str()) else {
                continue;
            };
            for path in paths.flatten() {
                if excluded(&self.s.exclude, &path) {
                    continue;
                }
                if path.is_file() && seen.insert(path.clone()) {
                    out.push(path);
                }
            }
        }
        out.sort();
        out
    }

    /// One poll: find the files and read each from its offset. Offsets do not move here;
    /// [`Tailer::accepted`] moves them once the pipeline took the records.
    fn scan(&mut self) -> Vec<Read1> {
        self.poll += 1;
        let first = self.poll == 1;
        let mut fps_this_poll: Vec<Vec<u8>> = Vec::new();
        let mut active: Vec<usize> = Vec::new();
        let mut reads = Vec::new();
        // Files are opened and read in groups of max_concurrent_files / 2; only the last
        // group stays open until the next poll (for files renamed away meanwhile), so at
        // most max_concurrent_files are open at once.
        let paths = self.list();
        let group = (self.s.max_concurrent_files / 2).max(1);
        let groups = paths.len().div_ceil(group);
        for (g, paths) in paths.chunks(group).enumerate() {
            let opened = active.len();
            for path in paths.iter().cloned() {
                let Ok(mut file) = File::open(&path) else {
                    continue;
                };
                let Ok(meta) = file.metadata() else { continue };
                let mut fp = vec![0u8; self.s.fingerprint_size];
                let n = read_full(&mut file, &mut fp).unwrap_or(0);
                fp.truncate(n);
                if fp.is_empty() || fps_this_poll.iter().any(|f| f == &fp) {
                    continue;
                }
                fps_this_poll.push(fp.clone());
                // The known file this one is: its fingerprint starts with the known one (the
                // longest such), not already claimed in this poll.
                let known = self
                    .files
                    .iter()
                    .enumerate()
                    .filter(|(i, f)| {
                        !f.fingerprint.is_empty()
                            && f.seen != self.poll
                            && !active.contains(i)
                            && fp.starts_with(&f.fingerprint)
                    })
                    .max_by_key(|(_, f)| f.fingerprint.len())
                    .map(|(i, _)| i);
                let inode = (meta.dev(), meta.ino());
                match known {
                    Some(i) => {
                        let f = &mut self.files[i];
                        if meta.len() < f.read_to {
                            tracing::info!(path = %path.display(), "file is shorter than its offset (truncated): reading it from the start");
                            f.offset = 0;
                            f.read_to = 0;
                            f.generation += 1;
                            self.dirty = true;
                        }
                        f.fingerprint = fp;
                        f.path = path;
                        f.file = Some(file);
                        f.inode = inode;
                        f.seen = self.poll;
                        f.draining = false;
                        active.push(i);
                    }
                    None => {
                        let offset = if first && !self.s.start_at_beginning {
                            meta.len()
                        } else {
                            0
                        };
                        self.dirty = true;
                        self.next_key += 1;
                        self.files.push(Tracked {
                            key: self.next_key,
                            fingerprint: fp,
                            path,
                            offset,
                            read_to: offset,
                            generation: 0,
                            file: Some(file),
                            inode,
                            seen: self.poll,
                            last_size: meta.len(),
                            last_change: Instant::now(),
                            draining: false,
                        });
                        active.push(self.files.len() - 1);
                    }
                }
            }
            let this_group: Vec<usize> = active[opened..].to_vec();
            for i in this_group {
                match self.read_one(i, false) {
                    Ok(Some(r)) => reads.push(r),
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(path = %self.files[i].path.display(), error = %e, "cannot read file");
                    }
                }
                if g + 1 < groups {
                    self.files[i].file = None;
                }
            }
        }
        // Files open since the last poll that were not found again (renamed away, deleted):
        // read to their end through the open handle, unless the handle is a file read
        // under another entry in this poll (copytruncate of the same inode).
        let live: HashSet<(u64, u64)> = active.iter().map(|&i| self.files[i].inode).collect();
        let mut lost = Vec::new();
        for (i, f) in self.files.iter_mut().enumerate() {
            if f.seen != self.poll && f.file.is_some() {
                if live.contains(&f.inode) {
                    f.file = None;
                } else {
                    lost.push(i);
                }
            }
        }
        for &i in &lost {
            // One read per poll, like any file; one with more keeps its handle (`draining`)
            // and is read on by the next polls, which come at once.
            let draining = match self.read_one(i, true) {
                Ok(Some(r)) => {
                    let more = r.more;
                    reads.push(r);
                    more
                }
                Ok(None) => false,
                Err(e) => {
                    tracing::warn!(path = %self.files[i].path.display(), error = %e, "cannot read file");
                    false
                }
            };
            self.files[i].draining = draining;
        }
        if !self.pipeline.is_empty() {
            let mut out = Vec::new();
            self.pipeline.flush_due(false, &mut out);
            if !out.is_empty() {
                let mut req = encode::Request::default();
                let origins = encode_entries(&out, &mut req);
                reads.push(Read1 {
                    key: NO_FILE,
                    generation: 0,
                    path: String::new(),
                    request: req.finish(),
                    origins,
                    new_offset: 0,
                    at_end: false,
                    more: false,
                    delete: false,
                });
            }
        }
        reads
    }

    fn read_one(&mut self, i: usize, lost: bool) -> std::io::Result<Option<Read1>> {
        let s = &self.s;
        let f = &mut self.files[i];
        let Some(file) = f.file.as_mut() else {
            return Ok(None);
        };
        let size = file.metadata()?.len();
        if size != f.last_size {
            f.last_size = size;
            f.last_change = Instant::now();
        }
        if size <= f.read_to {
            return Ok(None);
        }
        let want = ((size - f.read_to) as usize).min(MAX_BATCH_BYTES + s.max_log_size);
        file.seek(SeekFrom::Start(f.read_to))?;
        // One read buffer for all files, kept between reads (at most MAX_BATCH_BYTES +
        // max_log_size).
        if self.buf.len() < want {
            self.buf.resize(want, 0);
        }
        let n = read_full(file, &mut self.buf[..want])?;
        let buf = &self.buf[..n];
        let reached_end = f.read_to + n as u64 >= size;
        // The last unfinished entry goes out when the file has been quiet for
        // force_flush_period, or when the file is gone (nothing more will come).
        let flush = reached_end && (lost || f.last_change.elapsed() >= s.force_flush_period);
        let (tokens, used) = s.splitter.split(buf, flush, s.max_log_size);
        let mut consumed = 0usize;
        let mut bytes = 0usize;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        // The attributes of every record of this file: `attributes:` then the file's.
        let mut attrs: Vec<(&str, String)> = s
            .attributes
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
        if s.include_file_name {
            let name = f
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            attrs.push(("log.file.name", name));
        }
        if s.include_file_path {
            attrs.push(("log.file.path", f.path.display().to_string()));
        }
        if s.include_file_name_resolved || s.include_file_path_resolved {
            let resolved = std::fs::canonicalize(&f.path).unwrap_or_else(|_| f.path.clone());
            if s.include_file_name_resolved {
                let name = resolved
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                attrs.push(("log.file.name_resolved", name));
            }
            if s.include_file_path_resolved {
                attrs.push(("log.file.path_resolved", resolved.display().to_string()));
            }
        }
        let mut more = false;
        let ops = !self.pipeline.is_empty();
        let mut entries = Vec::new();
        let mut req = encode::Request::default();
        // With operators: the attributes every entry of this read starts with.
        let mut base = BTreeMap::new();
        if ops {
            base = s.attr_map.clone();
            for (k, v) in &attrs[s.attributes.len()..] {
                base.insert((*k).to_string(), operators::Val::Str(v.clone()));
            }
        }
        let shared = if ops {
            Vec::new()
        } else {
            req.resource_strings(s.resource.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            encode::string_attributes(attrs.iter().map(|(k, v)| (*k, v.as_str())))
        };
        for t in &tokens {
            if bytes >= MAX_BATCH_BYTES {
                more = true;
                break;
            }
            // The entry's bytes start where the previous one's ended (its delimiter).
            let begins = f.read_to + consumed as u64;
            consumed = t.next;
            bytes += t.end - t.start;
            let raw = &buf[t.start..t.end];
            let text = if s.raw_bytes {
                raw
            } else {
                let text = split::trim(raw, s.keep_leading, s.keep_trailing);
                if text.is_empty() {
                    continue;
                }
                text
            };
            if !ops {
                // Straight from the read buffer into the request.
                if s.raw_bytes {
                    req.bytes_record(now, text, &shared);
                } else {
                    match std::str::from_utf8(text) {
                        Ok(t) => req.text_record(now, t, &shared),
                        Err(_) => req.text_record(now, &String::from_utf8_lossy(text), &shared),
                    }
                }
                continue;
            }
            let mut e = operators::Entry::new(if s.raw_bytes {
                operators::Val::Bytes(text.to_vec())
            } else {
                operators::Val::Str(String::from_utf8_lossy(text).into_owned())
            });
            e.observed = now;
            e.attributes = base.clone();
            e.resource = s.res_map.clone();
            e.origin = operators::Origin::One((f.key, begins));
            entries.push(e);
        }
        let origins = if ops {
            let mut out = Vec::with_capacity(entries.len());
            self.pipeline.process(entries, &mut out);
            encode_entries(&out, &mut req)
        } else {
            Vec::new()
        };
        let request = req.finish();
        if !more {
            consumed = used.max(consumed);
        }
        if n == want && (n as u64) < size - f.read_to {
            more = true;
        }
        let new_offset = f.read_to + consumed as u64;
        let at_end = new_offset >= size;
        if consumed == 0 {
            return Ok(None);
        }
        // The next read goes on from here, before this one is accepted.
        f.read_to = new_offset;
        Ok(Some(Read1 {
            key: f.key,
            generation: f.generation,
            path: f.path.display().to_string(),
            request,
            origins,
            new_offset,
            at_end,
            more,
            delete: s.delete_after_read && at_end && !lost,
        }))
    }

    /// The pipeline took the records of `r` (and of every read of the file before it): move
    /// the offset.
    fn accepted(&mut self, r: &Read1) {
        if r.key == NO_FILE {
            return;
        }
        let Some(f) = self.files.iter_mut().find(|f| f.key == r.key) else {
            // Forgotten meanwhile.
            return;
        };
        if f.generation != r.generation {
            // Read before the file was truncated; it is read again from its start.
            return;
        }
        f.offset = r.new_offset;
        if r.delete && r.at_end {
            if let Err(e) = std::fs::remove_file(&f.path) {
                tracing::warn!(path = %f.path.display(), error = %e, "delete_after_read: cannot delete");
            }
            f.file = None;
        }
    }

    /// After a poll: close handles of files no longer found, forget files gone for a while.
    fn end_poll(&mut self) {
        let poll = self.poll;
        for f in &mut self.files {
            if f.seen != poll && !f.draining {
                f.file = None;
            }
        }
        let restored_grace = if self.restored { 1 } else { 0 };
        let before = self.files.len();
        self.files.retain(|f| {
            f.draining || poll.saturating_sub(f.seen) <= FORGET_AFTER_POLLS + restored_grace
        });
        self.dirty |= self.files.len() != before;
    }
}

/// Whether `path` matches one of the `exclude` globs. As in the Collector's glob matching,
/// `*` and `?` stay within one path component and `**` spans directories.
fn excluded(exclude: &[glob::Pattern], path: &std::path::Path) -> bool {
    let opts = glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: true,
        require_literal_leading_dot: false,
    };
    exclude.iter().any(|x| x.matches_path_with(path, opts))
}

fn read_full(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Entries out of the operators into `req`, grouped by resource (in order of appearance);
/// returns the earliest start of their lines per file.
fn encode_entries(
    entries: &[operators::Entry],
    req: &mut encode::Request,
) -> Vec<operators::Start> {
    let mut origin = operators::Origin::None;
    let mut resources = Vec::new();
    for e in entries {
        origin.merge(&e.origin);
        req.entry(e, &mut resources);
    }
    origin.starts().to_vec()
}

/// Offers the records of a read to the pipeline until it takes them. `false`: cancelled
/// first.
async fn offer(
    request: Option<Bytes>,
    path: String,
    id: ComponentId,
    next: Arc<dyn Consumer>,
    cancel: CancellationToken,
) -> bool {
    let Some(bytes) = request else {
        return true;
    };
    let mut backoff = Duration::from_millis(100);
    loop {
        let batch = match Batch::decode(Signal::Logs, bytes.clone()) {
            Ok(b) => b,
            Err(e) => {
                // Not expected: the request is built by encode.rs, whose tests decode it.
                tracing::error!(receiver = %id, error = %e, "dropping records this receiver encoded wrongly");
                return true;
            }
        };
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
    let Some(bytes) = req.finish() else { return };
    let batch = match Batch::decode(Signal::Logs, bytes) {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(receiver = %id, error = %e, "dropping records this receiver encoded wrongly");
            return;
        }
    };
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
    use super::*;

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
