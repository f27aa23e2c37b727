//! The write-ahead log behind `sending_queue.storage`: batches accepted by an exporter are
//! appended to segment files before `consume` returns, and acknowledged once sent (or given
//! up on), so that a crash (`kill -9`) and a restart lose nothing the exporter accepted.
//!
//! Layout of the directory:
//! - `NNNNNNNNNNNNNNNNNNNN.seg` (20 digits: the sequence number of its first record): records
//!   appended one after another. A record is `len: u32 LE`, `crc32(body): u32 LE`, then the
//!   body of `len` bytes: `seq: u64 LE`, `signal: u8` (0 logs, 1 traces, 2 metrics) and the
//!   OTLP protobuf export request.
//! - `ack`: the acknowledgement cursor, replaced atomically (written to `ack.tmp`, then
//!   renamed): `floor: u64 LE` (every record below it is acknowledged), `count: u32 LE`,
//!   `count` × `seq: u64 LE` (records at or above `floor` acknowledged out of order), and
//!   `crc32` of what precedes it.
//! - `LOCK`: held with an exclusive file lock while the log is open, so two exporters or two
//!   weir processes never share a directory.
//!
//! A record that is cut short or fails its checksum (a crash in the middle of a write) ends
//! the reading of its segment with a warning; the torn tail of the newest segment is cut off.
//! A segment is deleted once every record in it is acknowledged.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
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

/// Header bytes in front of each record body: length and checksum.
const RECORD_HEADER: usize = 8;
/// Body bytes in front of the payload: sequence number and signal.
const BODY_PREFIX: usize = 9;
/// Acknowledged-out-of-order sequence numbers kept in the ack file at most. Beyond that the
/// newest are left out, and those records are sent again after a restart (a duplicate,
/// never a loss).
const MAX_ACKED_ABOVE_FLOOR: usize = 4096;

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

fn io_err(path: &Path, op: &'static str) -> impl FnOnce(io::Error) -> WalError + use<> {
    let path = path.to_path_buf();
    move |source| WalError::Io { path, op, source }
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
    _lock: File,
}

fn signal_byte(signal: Signal) -> u8 {
    match signal {
        Signal::Logs => 0,
        Signal::Traces => 1,
        Signal::Metrics => 2,
    }
}

fn byte_signal(b: u8) -> Option<Signal> {
    match b {
        0 => Some(Signal::Logs),
        1 => Some(Signal::Traces),
        2 => Some(Signal::Metrics),
        _ => None,
    }
}

fn segment_name(first_seq: u64) -> String {
    format!("{first_seq:020}.seg")
}

/// The records of one segment file, and the offset after the last good one.
fn read_segment(path: &Path) -> Result<(Vec<Replayed>, u64, bool), WalError> {
    let mut data = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut data))
        .map_err(io_err(path, "read segment"))?;
    let data = Bytes::from(data);
    let mut records = Vec::new();
    let mut at = 0usize;
    let mut torn = false;
    while at < data.len() {
        let problem = (|| {
            let header = data.get(at..at + RECORD_HEADER).ok_or("cut short header")?;
            let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
            let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
            let body_at = at + RECORD_HEADER;
            let body = data.get(body_at..body_at + len).ok_or("record cut short")?;
            if len < BODY_PREFIX || crc32fast::hash(body) != crc {
                return Err("checksum mismatch");
            }
            let seq = u64::from_le_bytes(body[..8].try_into().map_err(|_| "bad sequence")?);
            let signal = byte_signal(body[8]).ok_or("unknown signal")?;
            records.push(Replayed {
                seq,
                signal,
                payload: data.slice(body_at + BODY_PREFIX..body_at + len),
            });
            at = body_at + len;
            Ok(())
        })();
        if let Err(why) = problem {
            tracing::warn!(
                segment = %path.display(), offset = at, reason = why,
                "disk queue: torn or corrupt record (a crash during a write?); skipping the rest of this segment"
            );
            torn = true;
            break;
        }
    }
    Ok((records, at as u64, torn))
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
        let floor = u64::from_le_bytes(body.get(..8)?.try_into().ok()?);
        let count = u32::from_le_bytes(body.get(8..12)?.try_into().ok()?) as usize;
        let mut acked = BTreeSet::new();
        for i in 0..count {
            let at = 12 + i * 8;
            acked.insert(u64::from_le_bytes(body.get(at..at + 8)?.try_into().ok()?));
        }
        Some((floor, acked))
    })();
    Ok(parsed.unwrap_or_else(|| {
        // Resending everything is better than losing anything.
        tracing::warn!(file = %path.display(), "disk queue: the ack cursor is corrupt; every stored record will be sent again");
        (0, BTreeSet::new())
    }))
}

impl Wal {
    /// Opens (or creates) the log in `dir` and returns the records not yet acknowledged,
    /// oldest first.
    pub fn open(dir: &Path, opts: WalOptions) -> Result<(Wal, Vec<Replayed>), WalError> {
        fs::create_dir_all(dir).map_err(io_err(dir, "create directory"))?;
        let lock_path = dir.join("LOCK");
        let lock = OpenOptions::new()
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
        let mut seg_paths: Vec<(u64, PathBuf)> = Vec::new();
        for entry in fs::read_dir(dir).map_err(io_err(dir, "list directory"))? {
            let entry = entry.map_err(io_err(dir, "list directory"))?;
            let name = entry.file_name();
            let Some(first) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".seg"))
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            seg_paths.push((first, entry.path()));
        }
        seg_paths.sort();
        let mut inner = Inner {
            segments: BTreeMap::new(),
            active: None,
            next_seq: floor,
            pending: BTreeSet::new(),
            acked_above_floor: BTreeSet::new(),
            total_bytes: 0,
            dirty: false,
        };
        let mut replay = Vec::new();
        let last = seg_paths.len().saturating_sub(1);
        for (i, (first, path)) in seg_paths.into_iter().enumerate() {
            let (records, good_len, torn) = read_segment(&path)?;
            if torn && i == last {
                OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .and_then(|f| f.set_len(good_len))
                    .map_err(io_err(&path, "cut off torn tail"))?;
            }
            let mut live = 0;
            for record in records {
                let seq = record.seq;
                inner.next_seq = inner.next_seq.max(seq + 1);
                if seq >= floor && !acked.contains(&seq) {
                    live += 1;
                    inner.pending.insert(seq);
                    replay.push(record);
                }
            }
            if live == 0 {
                fs::remove_file(&path).map_err(io_err(&path, "remove acknowledged segment"))?;
                continue;
            }
            let bytes = fs::metadata(&path)
                .map_err(io_err(&path, "stat segment"))?
                .len();
            inner.total_bytes += bytes;
            inner.segments.insert(first, Segment { path, bytes, live });
        }
        replay.sort_by_key(|r| r.seq);
        let wal = Wal {
            dir: dir.to_path_buf(),
            opts,
            inner: Mutex::new(inner),
            _lock: lock,
        };
        {
            let mut inner = wal.lock();
            wal.write_ack(&mut inner)?;
        }
        Ok((wal, replay))
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
    /// with `fsync: always`).
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
            Some(a) => inner
                .segments
                .get(&a.first_seq)
                .is_none_or(|s| s.bytes >= self.opts.segment_bytes),
            None => true,
        };
        if roll {
            self.roll(&mut inner, seq)?;
        }
        let mut record = Vec::with_capacity(size as usize);
        let body_len = (BODY_PREFIX + payload.len()) as u32;
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&seq.to_le_bytes());
        hasher.update(&[signal_byte(signal)]);
        hasher.update(payload);
        record.extend_from_slice(&body_len.to_le_bytes());
        record.extend_from_slice(&hasher.finalize().to_le_bytes());
        record.extend_from_slice(&seq.to_le_bytes());
        record.push(signal_byte(signal));
        record.extend_from_slice(payload);
        let Some(active) = inner.active.as_mut() else {
            return Err(io_err(&self.dir, "append")(io::Error::other(
                "no active segment",
            )));
        };
        let first = active.first_seq;
        let seg_path = self.dir.join(segment_name(first));
        if let Err(e) = active.file.write_all(&record) {
            // A partial write leaves a torn record; start a fresh segment for the next one
            // (the torn record is skipped when the log is read back).
            inner.active = None;
            return Err(io_err(&seg_path, "append record")(e));
        }
        if self.opts.fsync == FsyncPolicy::Always {
            active
                .file
                .sync_data()
                .map_err(io_err(&seg_path, "fsync segment"))?;
        }
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
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io_err(&path, "create segment"))?;
        if self.opts.fsync == FsyncPolicy::Always {
            sync_dir(&self.dir)?;
        }
        let bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
        inner.total_bytes += bytes;
        inner.segments.insert(
            first_seq,
            Segment {
                path,
                bytes,
                live: 0,
            },
        );
        inner.active = Some(Active { first_seq, file });
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
        let acked: Vec<u64> = inner
            .acked_above_floor
            .iter()
            .take(MAX_ACKED_ABOVE_FLOOR)
            .copied()
            .collect();
        let mut buf = Vec::with_capacity(16 + acked.len() * 8);
        buf.extend_from_slice(&floor.to_le_bytes());
        buf.extend_from_slice(&(acked.len() as u32).to_le_bytes());
        for seq in acked {
            buf.extend_from_slice(&seq.to_le_bytes());
        }
        let crc = crc32fast::hash(&buf);
        buf.extend_from_slice(&crc.to_le_bytes());
        let tmp = self.dir.join("ack.tmp");
        let path = self.dir.join("ack");
        let mut f = File::create(&tmp).map_err(io_err(&tmp, "write ack cursor"))?;
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

#[cfg(test)]
#[path = "wal_tests.rs"]
mod tests;
