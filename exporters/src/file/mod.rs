//! `file`: writes every batch to a local file.
//!
//! ```yaml
//! exporters:
//!   file:
//!     path: ./telemetry.jsonl   # required; relative to the config file's directory
//!     format: json              # json (default): one OTLP JSON export request per line
//!                               # proto: 4-byte big-endian length + protobuf request
//!     compression: zstd         # each request compressed on its own (default: none)
//!     flush_interval: 1s        # a duration, or an integer of nanoseconds (the collector's
//!                               # form); 0 flushes after every batch
//!     append: false             # false truncates the file at start
//!     rotation:                 # roll the file over by size (the collector's lumberjack)
//!       max_megabytes: 100      # default 100
//!       max_days: 0             # delete backups older than this many days; default 0: keep
//!       max_backups: 100        # backups kept; default 100 (0: keep all)
//!       localtime: false        # backup names in local time instead of UTC
//!     group_by:                 # one file per resource attribute value
//!       enabled: false          # default false; then `path` holds one `*`: out/*.jsonl
//!       resource_attribute: fileexporter.path_segment   # default
//!       max_open_files: 100     # default; the least recently written is closed beyond
//! ```
//!
//! The proto format is the collector's: a reader takes a 4-byte length, then that many bytes
//! of an `Export*ServiceRequest`. As in the collector, the signals share one file; in the JSON
//! format each line names its signal (`resourceLogs`, `resourceSpans`, `resourceMetrics`).
//!
//! With `compression: zstd` every request (JSON or protobuf) is one zstd frame written with
//! the 4-byte length in front, in both formats, as the collector does by default (its
//! per-message compression).
//!
//! Rotation: before a write that would take the file past `max_megabytes`, the file is
//! renamed to `<name>-<timestamp>.<ext>` (timestamp `2006-01-02T15-04-05.000` form, UTC
//! unless `localtime`) next to it and a new file is started; then backups beyond
//! `max_backups` (oldest first) and older than `max_days` are deleted. A record is never
//! split across files. With `rotation` the existing file is appended to, as the collector
//! does; `append` together with `rotation` or `compression` is refused, as in the collector.
//! `localtime` takes the local UTC offset (`date +%z`) when the exporter starts.
//!
//! `group_by`: each resource goes to the file named by its attribute's string value in
//! place of the `*`; resources without it (or with a value of another type) are left out,
//! as in the collector. `/`, `.` and `..` parts of a value cannot leave the prefix's
//! directory. A file closed for `max_open_files` and written again is appended to.

mod config;
mod group_by;
mod rotation;
#[cfg(test)]
mod tests;

use std::fs::OpenOptions;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::task::JoinHandle;
use weir_api::{Batch, Component, ConsumeError, Consumer, Counter, PerSignal, StartError};

pub use config::{FileFactory, FileFormat, FileSettings, GroupBySettings, RotationSettings};
use group_by::{split_by_attribute, Groups};
use rotation::{local_offset_secs, Output};

/// The running `file` exporter.
pub struct FileExporter {
    exporter: weir_api::ComponentId,
    path: PathBuf,
    settings: FileSettings,
    /// Open between start and shutdown.
    writer: Arc<Mutex<Option<Output>>>,
    /// With `group_by`: the open files, by path (open between start and shutdown).
    groups: Arc<Mutex<Option<Groups>>>,
    flusher: Mutex<Option<JoinHandle<()>>>,
    counters: PerSignal<Counter>,
}

impl FileExporter {
    fn record(&self, batch: &Batch) -> std::io::Result<Vec<u8>> {
        let body = match self.settings.format {
            FileFormat::Proto => batch.to_protobuf().to_vec(),
            FileFormat::Json => {
                let mut line = Vec::with_capacity(batch.encoded_len() * 2);
                weir_api::json::encode_into(batch.payload(), &mut line);
                line
            }
        };
        let framed = |body: &[u8]| {
            let mut out = Vec::with_capacity(body.len() + 4);
            // Length prefixes are 32-bit in the collector's format; protobuf messages are
            // limited to 2 GiB, so the length always fits.
            out.extend_from_slice(&(body.len() as u32).to_be_bytes());
            out.extend_from_slice(body);
            out
        };
        if self.settings.zstd() {
            let compressed = zstd::bulk::compress(&body, 0)?;
            return Ok(framed(&compressed));
        }
        Ok(match self.settings.format {
            FileFormat::Proto => framed(&body),
            FileFormat::Json => {
                let mut line = body;
                line.push(b'\n');
                line
            }
        })
    }
}

#[async_trait]
impl Consumer for FileExporter {
    async fn consume(&self, batch: Batch) -> Result<(), ConsumeError> {
        if let Some(g) = self.settings.grouped() {
            return self.consume_grouped(&batch, &g.resource_attribute);
        }
        let record = self.record(&batch).map_err(|e| ConsumeError::Refused {
            component: self.exporter.to_string(),
            reason: format!("cannot compress a batch: {e}"),
            retry_after: None,
        })?;
        let mut guard = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let Some(out) = guard.as_mut() else {
            return Err(ConsumeError::ShuttingDown);
        };
        let written = out.write(&record).and_then(|()| {
            if self.settings.flush_interval.is_zero() {
                out.file.flush()
            } else {
                Ok(())
            }
        });
        if let Err(e) = written {
            // A full disk may clear up: the sender keeps the data and tries again.
            return Err(ConsumeError::Refused {
                component: self.exporter.to_string(),
                reason: format!("cannot write {}: {e}", self.path.display()),
                retry_after: Some(Duration::from_secs(1)),
            });
        }
        drop(guard);
        self.counters[batch.signal()].inc_by(batch.item_count() as u64);
        Ok(())
    }
}

impl FileExporter {
    fn consume_grouped(&self, batch: &Batch, key: &str) -> Result<(), ConsumeError> {
        let parts = split_by_attribute(batch.payload(), key);
        let mut guard = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        let Some(groups) = guard.as_mut() else {
            return Err(ConsumeError::ShuttingDown);
        };
        let mut written = 0u64;
        for (segment, payload) in parts {
            let Some(path) = groups.path_of(&segment) else {
                tracing::debug!(segment = %segment, "file exporter: a group_by value names no file; left out");
                continue;
            };
            let sub = Batch::new(payload);
            let record = self.record(&sub).map_err(|e| ConsumeError::Refused {
                component: self.exporter.to_string(),
                reason: format!("cannot compress a batch: {e}"),
                retry_after: None,
            })?;
            let flush_now = self.settings.flush_interval.is_zero();
            let done = groups.output(&path).and_then(|out| {
                out.write(&record)?;
                if flush_now {
                    out.file.flush()?;
                }
                Ok(())
            });
            if let Err(e) = done {
                // Groups written before stay written; the sender retries the whole batch.
                return Err(ConsumeError::Refused {
                    component: self.exporter.to_string(),
                    reason: format!("cannot write {}: {e}", path.display()),
                    retry_after: Some(Duration::from_secs(1)),
                });
            }
            written += sub.item_count() as u64;
        }
        drop(guard);
        self.counters[batch.signal()].inc_by(written);
        Ok(())
    }
}

fn flush_groups(groups: &Mutex<Option<Groups>>) {
    let mut guard = groups.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(g) = guard.as_mut() {
        for (path, out) in &mut g.open {
            if let Err(e) = out.file.flush() {
                tracing::error!(path = %path.display(), error = %e, "file exporter: flush failed");
            }
        }
    }
}

fn flush(writer: &Mutex<Option<Output>>, path: &std::path::Path) {
    let mut guard = writer.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(w) = guard.as_mut() {
        if let Err(e) = w.file.flush() {
            tracing::error!(path = %path.display(), error = %e, "file exporter: flush failed");
        }
    }
}

#[async_trait]
impl Component for FileExporter {
    async fn start(&self) -> Result<(), StartError> {
        if self.settings.grouped().is_some() {
            let full = self.path.to_string_lossy().into_owned();
            let (prefix, suffix) = full.split_once('*').unwrap_or((full.as_str(), ""));
            let offset_secs = match &self.settings.rotation {
                Some(r) if r.localtime => local_offset_secs(),
                _ => 0,
            };
            *self.groups.lock().unwrap_or_else(|e| e.into_inner()) = Some(Groups {
                prefix: prefix.to_string(),
                suffix: suffix.to_string(),
                open: Vec::new(),
                seen: Default::default(),
                max_open: self
                    .settings
                    .grouped()
                    .map_or(100, |g| g.max_open_files.max(1)),
                truncate_first: !self.settings.append && self.settings.rotation.is_none(),
                rotation: self.settings.rotation.clone(),
                offset_secs,
            });
            if !self.settings.flush_interval.is_zero() {
                let (groups, every) = (self.groups.clone(), self.settings.flush_interval);
                *self.flusher.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some(tokio::spawn(async move {
                        let mut tick = tokio::time::interval(every);
                        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                        loop {
                            tick.tick().await;
                            flush_groups(&groups);
                        }
                    }));
            }
            return Ok(());
        }
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            let mut builder = std::fs::DirBuilder::new();
            builder.recursive(true);
            if let Some(mode) = self
                .settings
                .directory_permissions
                .as_deref()
                .and_then(|p| u32::from_str_radix(p, 8).ok())
            {
                use std::os::unix::fs::DirBuilderExt;
                builder.mode(mode);
            }
            builder.create(dir).map_err(|e| {
                StartError::new(
                    &self.exporter,
                    format!("cannot create {}", dir.display()),
                    e,
                )
            })?;
        }
        let mut options = OpenOptions::new();
        options.create(true);
        // With rotation the existing file is continued (and rolled over when full), as the
        // collector's rotating writer does.
        if self.settings.append || self.settings.rotation.is_some() {
            options.append(true);
        } else {
            options.write(true).truncate(true);
        }
        let file = options.open(&self.path).map_err(|e| {
            StartError::new(
                &self.exporter,
                format!("cannot open {}", self.path.display()),
                e,
            )
        })?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        let offset_secs = match &self.settings.rotation {
            Some(r) if r.localtime => local_offset_secs(),
            _ => 0,
        };
        *self.writer.lock().unwrap_or_else(|e| e.into_inner()) = Some(Output {
            path: self.path.clone(),
            file: BufWriter::with_capacity(256 * 1024, file),
            size,
            rotation: self.settings.rotation.clone(),
            offset_secs,
        });
        if !self.settings.flush_interval.is_zero() {
            let (writer, path, every) = (
                self.writer.clone(),
                self.path.clone(),
                self.settings.flush_interval,
            );
            *self.flusher.lock().unwrap_or_else(|e| e.into_inner()) =
                Some(tokio::spawn(async move {
                    let mut tick = tokio::time::interval(every);
                    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    loop {
                        tick.tick().await;
                        flush(&writer, &path);
                    }
                }));
        }
        Ok(())
    }

    async fn shutdown(&self) {
        if let Some(task) = self
            .flusher
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            task.abort();
        }
        let groups = self.groups.lock().unwrap_or_else(|e| e.into_inner()).take();
        for (path, mut out) in groups.map(|g| g.open).unwrap_or_default() {
            let done = out
                .file
                .flush()
                .and_then(|()| out.file.get_ref().sync_all());
            if let Err(e) = done {
                tracing::error!(path = %path.display(), error = %e, "file exporter: final flush failed");
            }
        }
        let writer = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(mut w) = writer {
            let done = w.file.flush().and_then(|()| w.file.get_ref().sync_all());
            if let Err(e) = done {
                tracing::error!(path = %self.path.display(), error = %e, "file exporter: final flush failed");
            }
        }
    }
}
