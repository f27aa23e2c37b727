//! The write-ahead log behind `sending_queue.storage`: batches accepted by an exporter are
//! appended to segment files before `consume` returns, and acknowledged once sent (or given
//! up on), so that a crash (`kill -9`) and a restart lose nothing the exporter accepted.
//!
//! Layout of the directory:
//! - `NNNNNNNNNNNNNNNNNNNN.wal` (20 digits: the sequence number of its first record): records
//!   appended one after another. A record is the marker `F7 57 51 A5`, `len: u32 LE`,
//!   `crc32(len, body): u32 LE`, then the body of `len` bytes: `seq: u64 LE`, `signal: u8`
//!   (0 logs, 1 traces, 2 metrics) and the OTLP protobuf export request. Sequence numbers
//!   are consecutive, across segments too, so a gap says how many records are missing.
//! - `NNNNNNNNNNNNNNNNNNNN.seg`: the format of weir before record markers (a record is
//!   `len`, `crc32(body)`, body). Such segments are still read and sent; new records always
//!   go to `.wal` segments.
//! - `ack`: the acknowledgement cursor, replaced atomically (written to `ack.tmp`, then
//!   renamed): `WACK`, `floor: u64 LE` (every record below it is acknowledged),
//!   `count: u32 LE`, `count` × `[start, end): u64 LE × 2` (stretches of records at or above
//!   `floor` acknowledged out of order, at most 4,096), and `crc32` of what precedes it.
//!   The cursor of earlier versions (no `WACK`, single sequence numbers) is still read.
//! - `LOCK`: held with an exclusive file lock while the log is open, so two exporters or two
//!   weir processes never share a directory.
//!
//! Damage: a record whose marker, length or checksum is wrong is skipped, and reading goes
//! on at the next marker that starts an intact record, so a flipped byte costs one record
//! and a cut costs only what was cut. Each damaged stretch is logged with its file, offset,
//! size and the number of unacknowledged records lost in it (from the gap in sequence
//! numbers), and counted ([`Wal::lost`]). A torn tail of the newest segment (a write cut
//! short) is cut off. A failed or short write is cut off at once, before anything else is
//! appended, and the next record starts a new segment. A segment is deleted once every
//! record in it is acknowledged.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use bytes::Bytes;
use serde::Deserialize;
use weir_api::Signal;

/// When the log calls `fsync`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum FsyncPolicy {
    /// After every record, before `consume` returns, and after every acknowledgement:
    /// nothing accepted is lost even if the machine loses power. Slowest.
    Always,
    /// Every 200 ms at most, from a background task: a killed process loses nothing (its
    /// writes are in the OS page cache); a power cut can lose the last 200 ms.
    #[default]
    Batch,
    /// Never; the OS writes back when it likes. A killed process still loses nothing.
    Never,
}

/// The marker each record starts with, to find the next record after a damaged one.
pub(super) const MAGIC: [u8; 4] = [0xF7, 0x57, 0x51, 0xA5];
/// Header bytes in front of each record body: marker, length and checksum.
pub(super) const RECORD_HEADER: usize = 12;
/// Body bytes in front of the payload: sequence number and signal.
pub(super) const BODY_PREFIX: usize = 9;
/// Stretches of consecutive sequence numbers acknowledged out of order kept in the ack file
/// at most. Beyond that the newest are left out, and those records are sent again after a
/// restart (a duplicate, never a loss).
const MAX_ACKED_RANGES: usize = 4096;
/// The first bytes of the ack file in the current format (ranges).
const ACK_MAGIC: [u8; 4] = *b"WACK";

/// Why the log could not take or give back a record.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    /// The disk budget (`max_size_mib`) is used up until records are acknowledged.
    #[error("the disk queue in {dir} is full ({used} of {budget} bytes in use)")]
    Full {
        /// The queue directory.
        dir: PathBuf,
        /// Bytes in segment files now.
        used: u64,
        /// The budget.
        budget: u64,
    },
    /// A record larger than the whole budget can never be stored.
    #[error("a batch of {size} bytes is larger than the disk queue's budget of {budget} bytes")]
    TooLarge {
        /// The record's size.
        size: u64,
        /// The budget.
        budget: u64,
    },
    /// Another process or exporter holds the directory.
    #[error("the disk queue directory {dir} is in use by another exporter or weir process")]
    Locked {
        /// The queue directory.
        dir: PathBuf,
    },
    /// The disk (or the file-size limit of the process) is full.
    #[error(
        "disk queue {path}: {op}: the disk is full or a file-size limit was reached ({source})"
    )]
    NoSpace {
        /// The file or directory.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A file operation failed.
    #[error("disk queue {path}: {op}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// Whether an OS error means there is no room to write (ENOSPC, EDQUOT, EFBIG).
pub fn is_no_space(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded | io::ErrorKind::FileTooLarge
    )
}

pub(super) fn io_err(path: &Path, op: &'static str) -> impl FnOnce(io::Error) -> WalError + use<> {
    let path = path.to_path_buf();
    move |source| {
        if is_no_space(&source) {
            WalError::NoSpace { path, op, source }
        } else {
            WalError::Io { path, op, source }
        }
    }
}

/// Records and bytes lost to damage found when the log was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lost {
    /// Unacknowledged records that could not be read back.
    pub records: u64,
    /// Bytes skipped.
    pub bytes: u64,
}

/// A record read back at open: not yet acknowledged, to be sent again.
#[derive(Debug, Clone, PartialEq)]
pub struct Replayed {
    /// Its sequence number, to acknowledge it with.
    pub seq: u64,
    /// Its signal.
    pub signal: Signal,
    /// The OTLP protobuf export request.
    pub payload: Bytes,
}

/// How the log is opened.
#[derive(Debug, Clone)]
pub struct WalOptions {
    /// Bytes all segment files may take together.
    pub max_bytes: u64,
    /// A segment is closed and a new one started once it reaches this size.
    pub segment_bytes: u64,
    /// When to fsync.
    pub fsync: FsyncPolicy,
}

struct Segment {
    path: PathBuf,
    bytes: u64,
    /// Records in it not yet acknowledged.
    live: u64,
}

struct Active {
    first_seq: u64,
    file: File,
    /// Bytes of intact records in it: where a failed write is cut back to.
    len: u64,
}

struct Inner {
    /// Segments by first sequence number.
    segments: BTreeMap<u64, Segment>,
    active: Option<Active>,
    next_seq: u64,
    /// Records written and not yet acknowledged.
    pending: BTreeSet<u64>,
    /// Records acknowledged while an older one is still pending.
    acked_above_floor: BTreeSet<u64>,
    total_bytes: u64,
    dirty: bool,
}

/// The open log. All methods block on file I/O; call them from `spawn_blocking`.
pub struct Wal {
    dir: PathBuf,
    opts: WalOptions,
    inner: Mutex<Inner>,
    lost: Lost,
    _lock: File,
}

fn segment_name(first_seq: u64) -> String {
    format!("{first_seq:020}.wal")
}

fn read_ack(path: &Path) -> Result<(u64, BTreeSet<u64>), WalError> {
    let data = match fs::read(path) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((0, BTreeSet::new())),
        Err(e) => return Err(io_err(path, "read ack cursor")(e)),
    };
    let parsed = (|| {
        let (body, crc) = data.split_at_checked(data.len().checked_sub(4)?)?;
        if crc32fast::hash(body) != u32::from_le_bytes(crc.try_into().ok()?) {
            return None;
        }
        let u64_at = |at: usize| Some(u64::from_le_bytes(body.get(at..at + 8)?.try_into().ok()?));
        let u32_at = |at: usize| Some(u32::from_le_bytes(body.get(at..at + 4)?.try_into().ok()?));
        let mut acked = BTreeSet::new();
        if body.starts_with(&ACK_MAGIC) {
            // `WACK`, floor, count, count × [start, end) ranges.
            let floor = u64_at(4)?;
            let count = u32_at(12)? as usize;
            for i in 0..count.min(MAX_ACKED_RANGES) {
                let (start, end) = (u64_at(16 + i * 16)?, u64_at(24 + i * 16)?);
                if end < start || end - start > 1 << 32 {
                    return None;
                }
                acked.extend(start..end);
            }
            return Some((floor, acked));
        }
        // The format before ranges: floor, count, count × seq.
        let floor = u64_at(0)?;
        let count = u32_at(8)? as usize;
        for i in 0..count {
            acked.insert(u64_at(12 + i * 8)?);
        }
        Some((floor, acked))
    })();
    Ok(parsed.unwrap_or_else(|| {
        // Resending everything is better than losing anything.
        tracing::warn!(file = %path.display(), "disk queue: the ack cursor is corrupt; every stored record will be sent again");
        (0, BTreeSet::new())
    }))
}

/// Unacknowledged records among sequence numbers `from..to`.
fn unacked_in(from: u64, to: u64, floor: u64, acked: &BTreeSet<u64>) -> u64 {
    let from = from.max(floor);
    if to <= from {
        return 0;
    }
    (to - from) - acked.range(from..to).count() as u64
}

/// Segment files in `dir`: first sequence number, path, and whether it is of the old format.
fn list_segments(dir: &Path) -> Result<Vec<(u64, PathBuf, bool)>, WalError> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err(dir, "list directory"))? {
        let entry = entry.map_err(io_err(dir, "list directory"))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let (stem, old) = match (name.strip_suffix(".wal"), name.strip_suffix(".seg")) {
            (Some(stem), _) => (stem, false),
            (None, Some(stem)) => (stem, true),
            (None, None) => continue,
        };
        if let Ok(first) = stem.parse::<u64>() {
            out.push((first, entry.path(), old));
        }
    }
    out.sort();
    Ok(out)
}

impl Wal {
    /// Opens (or creates) the log in `dir` and returns the records not yet acknowledged,
    /// oldest first. Damaged records are skipped, logged and counted in [`Wal::lost`].
    pub fn open(dir: &Path, opts: WalOptions) -> Result<(Wal, Vec<Replayed>), WalError> {
        // The queue holds telemetry as sent: owner-only directory and files (0700 / 0600).
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io_err(dir, "create directory"))?;
        let lock_path = dir.join("LOCK");
        let lock = OpenOptions::new()
            .mode(0o600)
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err(&lock_path, "open lock file"))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(WalError::Locked {
                    dir: dir.to_path_buf(),
                })
            }
            Err(fs::TryLockError::Error(e)) => return Err(io_err(&lock_path, "lock")(e)),
        }
        let (floor, acked) = read_ack(&dir.join("ack"))?;
        let mut reads = Vec::new();
        for (first, path, old) in list_segments(dir)? {
            let read = if old {
                wal_read::read_v1(&path)?
            } else {
                wal_read::read_v2(&path)?
            };
            reads.push((first, path, old, read));
        }
        let mut next_seq = floor;
        for (first, _, _, read) in &reads {
            next_seq = next_seq.max(*first);
            if let Some(r) = read.records.last() {
                next_seq = next_seq.max(r.seq + 1);
            }
        }
        let mut inner = Inner {
            segments: BTreeMap::new(),
            active: None,
            next_seq,
            pending: BTreeSet::new(),
            acked_above_floor: BTreeSet::new(),
            total_bytes: 0,
            dirty: false,
        };
        let mut lost = Lost::default();
        let mut replay = Vec::new();
        let count = reads.len();
        let next_firsts: Vec<Option<u64>> =
            (0..count).map(|i| reads.get(i + 1).map(|r| r.0)).collect();
        for (i, (first, path, old, read)) in reads.into_iter().enumerate() {
            // The file holds sequence numbers `first..end`: up to the next file's first, or
            // for the newest file up to its last intact record, plus the one record whose
            // write was cut short if its tail is torn.
            let last = read.records.last().map_or(first, |r| r.seq + 1).max(first);
            let end = next_firsts[i].unwrap_or(last);
            // A damaged end of the newest file: the record it starts with, and one more for
            // each record marker inside it (what was cut off entirely cannot be known).
            let torn_tail = match read.damage.last() {
                Some(d) if next_firsts[i].is_none() && d.before_seq.is_none() => 1 + d.markers,
                _ => 0,
            };
            let present = read
                .records
                .iter()
                .filter(|r| (first..end).contains(&r.seq))
                .filter(|r| r.seq >= floor && !acked.contains(&r.seq))
                .count() as u64;
            let missing = unacked_in(first, end, floor, &acked).saturating_sub(present)
                + unacked_in(end, end + torn_tail, floor, &acked);
            let skipped: u64 = read.damage.iter().map(|d| d.bytes).sum();
            if missing > 0 || skipped > 0 {
                let at: Vec<String> = read
                    .damage
                    .iter()
                    .map(|d| format!("{}+{} ({})", d.offset, d.bytes, d.reason))
                    .collect();
                tracing::warn!(
                    segment = %path.display(), records_lost = missing, bytes_skipped = skipped,
                    damaged_at = %at.join(", "),
                    "disk queue: damaged or torn records skipped; the intact records around them are kept"
                );
            }
            lost.records += missing;
            lost.bytes += skipped;
            let mut live = 0;
            for record in read.records {
                let seq = record.seq;
                if seq >= floor && !acked.contains(&seq) && inner.pending.insert(seq) {
                    live += 1;
                    replay.push(record);
                }
            }
            if live == 0 {
                fs::remove_file(&path).map_err(io_err(&path, "remove acknowledged segment"))?;
                continue;
            }
            let mut bytes = read.len;
            if i + 1 == count && !old && read.good_end < read.len {
                // The torn tail of the newest segment: cut it off.
                OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .and_then(|f| f.set_len(read.good_end))
                    .map_err(io_err(&path, "cut off torn tail"))?;
                bytes = read.good_end;
            }
            inner.total_bytes += bytes;
            inner.segments.insert(first, Segment { path, bytes, live });
        }
        replay.sort_by_key(|r| r.seq);
        // Records acknowledged out of order stay acknowledged in the next cursor.
        let new_floor = inner.pending.first().copied().unwrap_or(inner.next_seq);
        inner.acked_above_floor = acked.range(new_floor..).copied().collect();
        let wal = Wal {
            dir: dir.to_path_buf(),
            opts,
            inner: Mutex::new(inner),
            lost,
            _lock: lock,
        };
        {
            let mut inner = wal.lock();
            match wal.write_ack(&mut inner) {
                Ok(()) => {}
                // The cursor on disk is still right (or older: duplicates, never losses);
                // it is written again at the next acknowledgement.
                Err(e @ WalError::NoSpace { .. }) => tracing::warn!(
                    error = %e,
                    "disk queue: the disk is full; stored records are sent, new data is refused until there is room"
                ),
                Err(e) => return Err(e),
            }
        }
        Ok((wal, replay))
    }

    /// What damage found at open cost.
    pub fn lost(&self) -> Lost {
        self.lost
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The queue directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Bytes in segment files.
    pub fn persisted_bytes(&self) -> u64 {
        self.lock().total_bytes
    }

    /// Records stored and not yet acknowledged.
    pub fn pending(&self) -> usize {
        self.lock().pending.len()
    }

    /// Appends a record and returns its sequence number once it is written (and synced,
    /// with `fsync: always`). A write that fails is cut off before this returns, and the
    /// next record starts a new segment.
    pub fn append(&self, signal: Signal, payload: &[u8]) -> Result<u64, WalError> {
        let size = (RECORD_HEADER + BODY_PREFIX + payload.len()) as u64;
        if size > self.opts.max_bytes {
            return Err(WalError::TooLarge {
                size,
                budget: self.opts.max_bytes,
            });
        }
        let mut inner = self.lock();
        if inner.total_bytes + size > self.opts.max_bytes {
            return Err(WalError::Full {
                dir: self.dir.clone(),
                used: inner.total_bytes,
                budget: self.opts.max_bytes,
            });
        }
        let seq = inner.next_seq;
        let roll = match &inner.active {
            Some(a) => a.len >= self.opts.segment_bytes,
            None => true,
        };
        if roll {
            self.roll(&mut inner, seq)?;
        }
        let mut record = Vec::with_capacity(size as usize);
        let body_len = (BODY_PREFIX + payload.len()) as u32;
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&body_len.to_le_bytes());
        hasher.update(&seq.to_le_bytes());
        hasher.update(&[signal.code()]);
        hasher.update(payload);
        record.extend_from_slice(&MAGIC);
        record.extend_from_slice(&body_len.to_le_bytes());
        record.extend_from_slice(&hasher.finalize().to_le_bytes());
        record.extend_from_slice(&seq.to_le_bytes());
        record.push(signal.code());
        record.extend_from_slice(payload);
        let Some(active) = inner.active.as_mut() else {
            return Err(io_err(&self.dir, "append")(io::Error::other(
                "no active segment",
            )));
        };
        let first = active.first_seq;
        let seg_path = self.dir.join(segment_name(first));
        let written = active.file.write_all(&record).and_then(|()| {
            if self.opts.fsync == FsyncPolicy::Always {
                active.file.sync_data()
            } else {
                Ok(())
            }
        });
        if let Err(e) = written {
            // Cut the partial record off before anything else is appended, and start a
            // fresh segment for the next one (a file-size limit is per file).
            let good = active.len;
            if let Err(cut) = active.file.set_len(good) {
                tracing::error!(
                    segment = %seg_path.display(), offset = good, error = %cut,
                    "disk queue: cannot cut off a failed write; it is skipped when the segment is read back"
                );
            }
            inner.active = None;
            self.remove_if_done(&mut inner, first)?;
            return Err(io_err(&seg_path, "append record")(e));
        }
        active.len += size;
        inner.next_seq = seq + 1;
        inner.pending.insert(seq);
        inner.total_bytes += size;
        inner.dirty = true;
        if let Some(seg) = inner.segments.get_mut(&first) {
            seg.bytes += size;
            seg.live += 1;
        }
        Ok(seq)
    }

    /// Closes the active segment (deleting it if all acknowledged) and starts a new one
    /// whose first record is `first_seq`.
    fn roll(&self, inner: &mut Inner, first_seq: u64) -> Result<(), WalError> {
        if let Some(old) = inner.active.take() {
            let _ = old.file.sync_data();
            self.remove_if_done(inner, old.first_seq)?;
        }
        let path = self.dir.join(segment_name(first_seq));
        let file = OpenOptions::new()
            .mode(0o600)
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io_err(&path, "create segment"))?;
        // Normally empty; a segment of this name left by a failed write holds no record.
        file.set_len(0).map_err(io_err(&path, "create segment"))?;
        if self.opts.fsync == FsyncPolicy::Always {
            sync_dir(&self.dir)?;
        }
        if let Some(old) = inner.segments.remove(&first_seq) {
            inner.total_bytes -= old.bytes;
        }
        inner.segments.insert(
            first_seq,
            Segment {
                path,
                bytes: 0,
                live: 0,
            },
        );
        inner.active = Some(Active {
            first_seq,
            file,
            len: 0,
        });
        Ok(())
    }

    fn remove_if_done(&self, inner: &mut Inner, first_seq: u64) -> Result<(), WalError> {
        let is_active = inner
            .active
            .as_ref()
            .is_some_and(|a| a.first_seq == first_seq);
        let Some(seg) = inner.segments.get(&first_seq) else {
            return Ok(());
        };
        if seg.live > 0 || is_active {
            return Ok(());
        }
        let seg = inner.segments.remove(&first_seq).ok_or_else(|| {
            io_err(&self.dir, "remove segment")(io::Error::other("segment vanished"))
        })?;
        inner.total_bytes -= seg.bytes;
        match fs::remove_file(&seg.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(&seg.path, "remove acknowledged segment")(e)),
        }
    }

    /// Marks record `seq` as done (sent, or given up on) so it is not sent again after a
    /// restart, and frees its segment once the whole segment is done.
    pub fn ack(&self, seq: u64) -> Result<(), WalError> {
        let mut inner = self.lock();
        if !inner.pending.remove(&seq) {
            return Ok(());
        }
        let first = inner.segments.range(..=seq).next_back().map(|(k, _)| *k);
        if let Some(first) = first {
            if let Some(seg) = inner.segments.get_mut(&first) {
                seg.live = seg.live.saturating_sub(1);
            }
            self.remove_if_done(&mut inner, first)?;
        }
        let floor = inner.pending.first().copied().unwrap_or(inner.next_seq);
        inner.acked_above_floor.insert(seq);
        inner.acked_above_floor = inner.acked_above_floor.split_off(&floor);
        self.write_ack(&mut inner)
    }

    fn write_ack(&self, inner: &mut Inner) -> Result<(), WalError> {
        let floor = inner.pending.first().copied().unwrap_or(inner.next_seq);
        let mut ranges: Vec<(u64, u64)> = Vec::new();
        for &seq in &inner.acked_above_floor {
            if let Some((_, end)) = ranges.last_mut().filter(|(_, end)| *end == seq) {
                *end = seq + 1;
            } else if ranges.len() == MAX_ACKED_RANGES {
                break;
            } else {
                ranges.push((seq, seq + 1));
            }
        }
        let mut buf = Vec::with_capacity(20 + ranges.len() * 16);
        buf.extend_from_slice(&ACK_MAGIC);
        buf.extend_from_slice(&floor.to_le_bytes());
        buf.extend_from_slice(&(ranges.len() as u32).to_le_bytes());
        for (start, end) in ranges {
            buf.extend_from_slice(&start.to_le_bytes());
            buf.extend_from_slice(&end.to_le_bytes());
        }
        let crc = crc32fast::hash(&buf);
        buf.extend_from_slice(&crc.to_le_bytes());
        let tmp = self.dir.join("ack.tmp");
        let path = self.dir.join("ack");
        let mut f = OpenOptions::new()
            .mode(0o600)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(io_err(&tmp, "write ack cursor"))?;
        f.write_all(&buf)
            .map_err(io_err(&tmp, "write ack cursor"))?;
        if self.opts.fsync == FsyncPolicy::Always {
            f.sync_data().map_err(io_err(&tmp, "fsync ack cursor"))?;
        }
        fs::rename(&tmp, &path).map_err(io_err(&path, "replace ack cursor"))?;
        if self.opts.fsync == FsyncPolicy::Always {
            sync_dir(&self.dir)?;
        }
        Ok(())
    }

    /// Flushes the active segment and the directory to disk (the `fsync: batch` tick).
    pub fn sync(&self) -> Result<(), WalError> {
        let mut inner = self.lock();
        if !inner.dirty {
            return Ok(());
        }
        inner.dirty = false;
        if let Some(a) = &inner.active {
            a.file
                .sync_data()
                .map_err(io_err(&self.dir, "fsync segment"))?;
        }
        sync_dir(&self.dir)
    }
}

fn sync_dir(dir: &Path) -> Result<(), WalError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir, "fsync directory"))
}

#[path = "wal_read.rs"]
mod wal_read;

#[cfg(test)]
#[path = "wal_tests.rs"]
mod tests;
