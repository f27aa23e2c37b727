//! Reading the files: finding them by `include`/`exclude` each poll, telling them apart by
//! fingerprint, reading each from its offset through the splitter and the operators, and
//! keeping offsets in the checkpoint file across restarts.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::{
    encode, encode_entries, operators, split, Read1, Saved, SavedFile, Tailer, Tracked,
    FORGET_AFTER_POLLS, MAX_BATCH_BYTES, NO_FILE,
};

pub(super) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub(super) fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

impl Tailer {
    pub(super) fn restore(&mut self) -> Result<(), String> {
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

    pub(super) fn save(&self, pending: &[Read1]) -> std::io::Result<()> {
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
    pub(super) fn scan(&mut self) -> Vec<Read1> {
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
        // The request's buffer is made about as big as the records will take at once: the
        // lines' bytes plus, per line, the file's attributes and the record's framing
        // (operators change the size; a request that outgrows it grows by doubling).
        let file_attrs = encode::string_attributes(attrs.iter().map(|(k, v)| (*k, v.as_str())));
        let (mut lines, mut raw) = (0usize, 0usize);
        for t in &tokens {
            if raw >= MAX_BATCH_BYTES {
                break;
            }
            lines += 1;
            raw += t.end - t.start;
        }
        let per_line = file_attrs.len() + if ops { 64 } else { 24 };
        // At most twice the read's size up front: a read of many empty or tiny lines would
        // otherwise reserve per-line room for records that are skipped or never that big.
        let estimate = (raw + lines * per_line).min(2 * (MAX_BATCH_BYTES + s.max_log_size));
        let mut req = encode::Request::with_capacity(estimate);
        // The entries of this read go through the operators and into the request a chunk
        // at a time (in the buffers kept between reads), so that a read's entries are
        // not all alive at once.
        let mut entries = std::mem::take(&mut self.entries);
        entries.clear();
        let mut out = std::mem::take(&mut self.out);
        out.clear();
        let mut enc = super::Encoder::default();
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
            file_attrs
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
                // Checked first as UTF-8 (the common case, and faster than the lossy
                // conversion's own scan).
                operators::Val::Str(match std::str::from_utf8(text) {
                    Ok(t) => t.to_owned(),
                    Err(_) => String::from_utf8_lossy(text).into_owned(),
                })
            });
            e.observed = now;
            e.attributes = base.clone();
            e.resource = s.res_map.clone();
            e.origin = operators::Origin::One((f.key, begins));
            entries.push(e);
            if entries.len() == CHUNK {
                self.pipeline.process(entries.drain(..), &mut out);
                enc.add(&out, &mut req);
                out.clear();
            }
        }
        let origins = if ops {
            self.pipeline.process(entries.drain(..), &mut out);
            enc.add(&out, &mut req);
            out.clear();
            enc.starts()
        } else {
            Vec::new()
        };
        self.entries = keep(entries);
        self.out = keep(out);
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
    pub(super) fn accepted(&mut self, r: &Read1) {
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
    pub(super) fn end_poll(&mut self) {
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
pub(super) fn excluded(exclude: &[glob::Pattern], path: &std::path::Path) -> bool {
    let opts = glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: true,
        require_literal_leading_dot: false,
    };
    exclude.iter().any(|x| x.matches_path_with(path, opts))
}

/// Entries a read puts through the operators at once.
const CHUNK: usize = 256;

/// Entries kept between reads: a buffer that grew past what a chunk needs (an operator
/// that makes several entries of one) is let go.
fn keep(v: Vec<operators::Entry>) -> Vec<operators::Entry> {
    const KEEP: usize = 4 * CHUNK;
    if v.capacity() > KEEP {
        Vec::new()
    } else {
        v
    }
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
