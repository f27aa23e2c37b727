//! `file`: writes every batch to a local file.
//!
//! ```yaml
//! exporters:
//!   file:
//!     path: ./telemetry.jsonl   # required; relative to the config file's directory
//!     format: json              # json (default): one OTLP JSON export request per line
//!                               # proto: 4-byte big-endian length + protobuf request
//!     flush_interval: 1s        # 0 flushes after every batch
//!     append: false             # false truncates the file at start
//! ```
//!
//! The proto format is the collector's: a reader takes a 4-byte length, then that many bytes
//! of an `Export*ServiceRequest`. As in the collector, the signals share one file; in the JSON
//! format each line names its signal (`resourceLogs`, `resourceSpans`, `resourceMetrics`).

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use tokio::task::JoinHandle;
use weir_api::{
    parse_component_config, Batch, BuildContext, BuildError, Component, ConfigErrors, ConsumeError,
    Consumer, Counter, ExporterConfig, ExporterFactory, Signal, SignalSet, Stage, StartError,
};

/// How batches are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileFormat {
    /// One OTLP JSON export request per line (the default).
    #[default]
    Json,
    /// Length-prefixed protobuf export requests.
    Proto,
}

fn default_flush_interval() -> Duration {
    Duration::from_secs(1)
}

/// The `file` exporter's config (the collector's field names).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSettings {
    /// File to write. Required.
    #[serde(default)]
    pub path: String,
    /// `json` or `proto`. Default `json`.
    #[serde(default)]
    pub format: FileFormat,
    /// How often buffered output is flushed to the file; `0` flushes after every batch.
    /// Default `1s`.
    #[serde(default = "default_flush_interval", with = "humantime_serde")]
    pub flush_interval: Duration,
    /// Append to an existing file instead of truncating it. Default `false`.
    #[serde(default)]
    pub append: bool,
    /// File rotation. Not supported yet; default none.
    #[serde(default)]
    pub rotation: Option<serde_json::Value>,
    /// Compression of the output. Not supported yet; default none.
    #[serde(default)]
    pub compression: Option<String>,
    /// Encoding extension. Not supported yet; default none.
    #[serde(default)]
    pub encoding: Option<String>,
    /// One file per resource attribute value. Not supported yet; default none.
    #[serde(default)]
    pub group_by: Option<serde_json::Value>,
}

/// Factory of the `file` exporter.
pub struct FileFactory;

impl ExporterFactory for FileFactory {
    fn signals(&self) -> SignalSet {
        SignalSet::ALL
    }

    fn parse(
        &self,
        config: &serde_json::Value,
        path: &str,
    ) -> Result<Box<dyn ExporterConfig>, ConfigErrors> {
        let settings: FileSettings = parse_component_config(config, path)?;
        let mut errors = ConfigErrors::default();
        if settings.path.trim().is_empty() {
            errors.push(format!("{path}.path"), "is required");
        }
        let unsupported = [
            ("rotation", settings.rotation.is_some(), "file rotation is not supported yet; rotate with an external tool (logrotate copytruncate) or remove `rotation`"),
            ("compression", settings.compression.as_deref().is_some_and(|c| !c.is_empty()), "compression of the output file is not supported yet; remove `compression`"),
            ("encoding", settings.encoding.is_some(), "encoding extensions are not supported yet; use `format: json` or `format: proto`"),
            ("group_by", settings.group_by.is_some(), "group_by is not supported yet; remove it"),
        ];
        for (field, set, message) in unsupported {
            if set {
                errors.push(format!("{path}.{field}"), message);
            }
        }
        errors.into_result(Box::new(settings) as Box<dyn ExporterConfig>)
    }
}

impl ExporterConfig for FileSettings {
    fn build(&self, ctx: &BuildContext) -> Result<Arc<dyn Stage>, BuildError> {
        let counters = [Signal::Logs, Signal::Traces, Signal::Metrics].map(|signal| {
            ctx.telemetry.counter(
                "weir_exporter_sent_items",
                "Items (log records, spans, data points) an exporter delivered upstream",
                &[
                    ("exporter", ctx.id.to_string()),
                    ("signal", signal.as_str().to_string()),
                ],
            )
        });
        Ok(Arc::new(FileExporter {
            exporter: ctx.id.clone(),
            path: ctx.resolve_path(&self.path),
            settings: self.clone(),
            writer: Arc::new(Mutex::new(None)),
            flusher: Mutex::new(None),
            counters,
        }))
    }
}

/// The running `file` exporter.
pub struct FileExporter {
    exporter: weir_api::ComponentId,
    path: PathBuf,
    settings: FileSettings,
    /// Open between start and shutdown.
    writer: Arc<Mutex<Option<BufWriter<File>>>>,
    flusher: Mutex<Option<JoinHandle<()>>>,
    counters: [Counter; 3],
}

impl FileExporter {
    fn record(&self, batch: &Batch) -> Vec<u8> {
        match self.settings.format {
            FileFormat::Proto => {
                let body = batch.to_protobuf();
                let mut out = Vec::with_capacity(body.len() + 4);
                // Length prefixes are 32-bit in the collector's format; protobuf messages
                // are limited to 2 GiB, so the length always fits.
                out.extend_from_slice(&(body.len() as u32).to_be_bytes());
                out.extend_from_slice(&body);
                out
            }
            FileFormat::Json => {
                let mut line = Vec::with_capacity(batch.encoded_len() * 2);
                weir_api::json::encode_into(batch.payload(), &mut line);
                line.push(b'\n');
                line
            }
        }
    }
}

#[async_trait]
impl Consumer for FileExporter {
    async fn consume(&self, batch: Batch) -> Result<(), ConsumeError> {
        let record = self.record(&batch);
        let mut guard = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let Some(writer) = guard.as_mut() else {
            return Err(ConsumeError::ShuttingDown);
        };
        let written = writer.write_all(&record).and_then(|()| {
            if self.settings.flush_interval.is_zero() {
                writer.flush()
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
        let i = match batch.signal() {
            Signal::Logs => 0,
            Signal::Traces => 1,
            Signal::Metrics => 2,
        };
        self.counters[i].inc_by(batch.item_count() as u64);
        Ok(())
    }
}

fn flush(writer: &Mutex<Option<BufWriter<File>>>, path: &std::path::Path) {
    let mut guard = writer.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(w) = guard.as_mut() {
        if let Err(e) = w.flush() {
            tracing::error!(path = %path.display(), error = %e, "file exporter: flush failed");
        }
    }
}

#[async_trait]
impl Component for FileExporter {
    async fn start(&self) -> Result<(), StartError> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                StartError::new(
                    &self.exporter,
                    format!("cannot create {}", dir.display()),
                    e,
                )
            })?;
        }
        let mut options = OpenOptions::new();
        options.create(true);
        if self.settings.append {
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
        *self.writer.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(BufWriter::with_capacity(256 * 1024, file));
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
        let writer = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(mut w) = writer {
            let done = w.flush().and_then(|()| w.get_ref().sync_all());
            if let Err(e) = done {
                tracing::error!(path = %self.path.display(), error = %e, "file exporter: final flush failed");
            }
        }
    }
}
