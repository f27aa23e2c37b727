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

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use serde::Deserialize;
use tokio::task::JoinHandle;
use weir_api::{
    parse_component_config, Batch, BuildContext, BuildError, Component, ConfigErrors, ConsumeError,
    Consumer, Counter, ExporterConfig, ExporterFactory, PerSignal, SignalSet, Stage, StartError,
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

/// A Go duration as the collector's config loader takes it: a string (`1s`, `500ms`) or an
/// integer number of nanoseconds.
fn go_duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Nanos(u64),
        Negative(i64),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Nanos(n) => Ok(Duration::from_nanos(n)),
        Raw::Negative(n) => Err(serde::de::Error::custom(format!(
            "{n} must not be negative"
        ))),
        Raw::Text(t) => humantime::parse_duration(t.trim()).map_err(|e| {
            serde::de::Error::custom(format!(
                "{t:?} is not a duration ({e}); write e.g. 1s, 500ms, or an integer of nanoseconds"
            ))
        }),
    }
}

/// The `rotation` section (the collector's lumberjack settings).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotationSettings {
    /// Size in megabytes (MiB) at which the file is rolled over. Default 100.
    #[serde(default = "default_max_megabytes")]
    pub max_megabytes: u64,
    /// Backups older than this many days (by the timestamp in their name) are deleted.
    /// Default 0: no age limit.
    #[serde(default)]
    pub max_days: u64,
    /// Backups kept, newest first. Default 100; 0 keeps all.
    #[serde(default = "default_max_backups")]
    pub max_backups: usize,
    /// Backup names in local time instead of UTC. Default false.
    #[serde(default)]
    pub localtime: bool,
}

fn default_max_megabytes() -> u64 {
    100
}
fn default_max_backups() -> usize {
    100
}

impl RotationSettings {
    fn max_bytes(&self) -> u64 {
        self.max_megabytes.saturating_mul(1024 * 1024)
    }
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
    /// A duration string or an integer of nanoseconds. Default `1s`.
    #[serde(default = "default_flush_interval", deserialize_with = "go_duration")]
    pub flush_interval: Duration,
    /// Append to an existing file instead of truncating it. Default `false`.
    #[serde(default)]
    pub append: bool,
    /// File rotation by size. Default none (one file that grows).
    #[serde(default)]
    pub rotation: Option<RotationSettings>,
    /// `zstd` (each request compressed on its own), or empty / `none`. Default none.
    #[serde(default)]
    pub compression: Option<String>,
    /// Encoding extension. Not supported yet; default none.
    #[serde(default)]
    pub encoding: Option<String>,
    /// One file per value of a resource attribute. Default: off.
    #[serde(default)]
    pub group_by: Option<GroupBySettings>,
    /// Create the file's directory at start. Weir always does; accepted. Default false.
    #[serde(default)]
    pub create_directory: bool,
    /// Octal permissions of a created directory (with `create_directory`). Default `0755`.
    #[serde(default)]
    pub directory_permissions: Option<String>,
}

/// `group_by`: the file of each resource is `path` with its `*` replaced by the value of
/// a resource attribute (the collector's fields and defaults).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GroupBySettings {
    /// Turns grouping on. Default false.
    pub enabled: bool,
    /// The resource attribute whose (string) value names the file. Default
    /// `fileexporter.path_segment`.
    pub resource_attribute: String,
    /// Files kept open at once; the least recently written is closed beyond. Default 100.
    pub max_open_files: usize,
}

impl Default for GroupBySettings {
    fn default() -> Self {
        GroupBySettings {
            enabled: false,
            resource_attribute: "fileexporter.path_segment".into(),
            max_open_files: 100,
        }
    }
}

impl FileSettings {
    fn grouped(&self) -> Option<&GroupBySettings> {
        self.group_by.as_ref().filter(|g| g.enabled)
    }

    fn zstd(&self) -> bool {
        self.compression.as_deref() == Some("zstd")
    }
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
        match settings.compression.as_deref() {
            None | Some("") | Some("none") | Some("zstd") => {}
            Some(other) => errors.push(
                format!("{path}.compression"),
                format!("unsupported compression {other:?}; expected zstd or none"),
            ),
        }
        let compressed = settings.zstd();
        if settings.append && compressed {
            errors.push(
                format!("{path}.append"),
                "append and compression enabled at the same time is not supported",
            );
        }
        if settings.append && settings.rotation.is_some() {
            errors.push(
                format!("{path}.append"),
                "append and rotation enabled at the same time is not supported",
            );
        }
        if let Some(r) = &settings.rotation {
            if r.max_megabytes == 0 {
                errors.push(
                    format!("{path}.rotation.max_megabytes"),
                    "must be greater than 0",
                );
            }
        }
        if let Some(g) = settings.grouped() {
            let parts: Vec<&str> = settings.path.split('*').collect();
            if parts.len() != 2 {
                errors.push(
                    format!("{path}.path"),
                    "must contain exactly one * when group_by is enabled",
                );
            } else if parts[0].is_empty() {
                errors.push(
                    format!("{path}.path"),
                    "must not start with * when group_by is enabled",
                );
            }
            if g.resource_attribute.is_empty() {
                errors.push(
                    format!("{path}.group_by.resource_attribute"),
                    "must not be empty when group_by is enabled",
                );
            }
            if g.max_open_files == 0 {
                errors.push(
                    format!("{path}.group_by.max_open_files"),
                    "must be at least 1",
                );
            }
        }
        if let Some(p) = settings.directory_permissions.as_deref() {
            if !settings.create_directory {
                errors.push(
                    format!("{path}.directory_permissions"),
                    "only allowed with create_directory: true",
                );
            } else if u32::from_str_radix(p, 8).map_or(true, |v| v > 0o777) {
                errors.push(
                    format!("{path}.directory_permissions"),
                    format!("{p:?} is not octal permission bits (e.g. \"0755\")"),
                );
            }
        }
        if settings.encoding.is_some() {
            errors.push(
                format!("{path}.encoding"),
                "encoding extensions are not supported yet; use `format: json` or `format: proto`",
            );
        }
        errors.into_result(Box::new(settings) as Box<dyn ExporterConfig>)
    }
}

impl ExporterConfig for FileSettings {
    fn build(&self, ctx: &BuildContext) -> Result<Arc<dyn Stage>, BuildError> {
        let counters = PerSignal::from_fn(|signal| {
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
            groups: Arc::new(Mutex::new(None)),
            flusher: Mutex::new(None),
            counters,
        }))
    }
}

/// The open output file, and rotation.
struct Output {
    path: PathBuf,
    file: BufWriter<File>,
    /// Bytes in the current file (written or buffered).
    size: u64,
    rotation: Option<RotationSettings>,
    /// Seconds east of UTC for backup names (`localtime`), else 0.
    offset_secs: i64,
}

impl Output {
    fn write(&mut self, record: &[u8]) -> std::io::Result<()> {
        if let Some(r) = &self.rotation {
            // A record is never split: roll over first when it would not fit. A record larger
            // than the limit goes alone into a file of its own.
            if self.size > 0 && self.size + record.len() as u64 > r.max_bytes() {
                self.rotate()?;
            }
        }
        self.file.write_all(record)?;
        self.size += record.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        self.file.flush()?;
        self.file.get_ref().sync_all()?;
        let now = SystemTime::now();
        let mut millis = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
            + self.offset_secs * 1000;
        // Two rollovers in one millisecond must not overwrite a backup.
        let backup = loop {
            let candidate = backup_path(&self.path, millis);
            if !candidate.exists() {
                break candidate;
            }
            millis += 1;
        };
        std::fs::rename(&self.path, &backup)?;
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&self.path)?;
        self.file = BufWriter::with_capacity(256 * 1024, file);
        self.size = 0;
        if let Some(r) = &self.rotation {
            remove_old_backups(&self.path, r, now, self.offset_secs);
        }
        Ok(())
    }
}

/// `dir/name.ext` -> (`name-`, `.ext`), the parts around a backup's timestamp.
fn backup_affixes(path: &Path) -> (String, String) {
    let file = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    match file.rfind('.') {
        Some(dot) if dot > 0 => (format!("{}-", &file[..dot]), file[dot..].to_string()),
        _ => (format!("{file}-"), String::new()),
    }
}

/// The backup name for a rollover at `millis` (milliseconds since the epoch, already shifted
/// to local time when asked).
fn backup_path(path: &Path, millis: i64) -> PathBuf {
    let (prefix, ext) = backup_affixes(path);
    path.with_file_name(format!("{prefix}{}{ext}", format_timestamp(millis)))
}

/// `2006-01-02T15-04-05.000`, the collector's backup timestamp layout.
fn format_timestamp(millis: i64) -> String {
    let secs = millis.div_euclid(1000);
    let ms = millis.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let tod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}-{:02}-{:02}.{ms:03}",
        tod / 3600,
        tod / 60 % 60,
        tod % 60
    )
}

/// Milliseconds since the epoch of a timestamp written by [`format_timestamp`].
fn parse_timestamp(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 23 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[19] != b'.' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se, ms) = (num(11..13)?, num(14..16)?, num(17..19)?, num(20..23)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    Some(((days * 86_400 + h * 3600 + mi * 60 + se) * 1000) + ms)
}

/// Days since 1970-01-01 -> (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// (year, month, day) -> days since 1970-01-01.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The backups of `path` with their timestamps (ms), newest first.
fn list_backups(path: &Path) -> Vec<(i64, PathBuf)> {
    let (prefix, ext) = backup_affixes(path);
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut found: Vec<(i64, PathBuf)> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let stamp = name.strip_prefix(&prefix)?.strip_suffix(ext.as_str())?;
            Some((parse_timestamp(stamp)?, entry.path()))
        })
        .collect();
    found.sort_by_key(|b| std::cmp::Reverse(b.0));
    found
}

/// Deletes backups beyond `max_backups` and older than `max_days`.
fn remove_old_backups(path: &Path, r: &RotationSettings, now: SystemTime, offset_secs: i64) {
    let now_ms = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
        + offset_secs * 1000;
    for (i, (stamp, backup)) in list_backups(path).into_iter().enumerate() {
        let too_many = r.max_backups > 0 && i >= r.max_backups;
        let too_old = r.max_days > 0 && now_ms - stamp > r.max_days as i64 * 86_400_000;
        if too_many || too_old {
            if let Err(e) = std::fs::remove_file(&backup) {
                tracing::warn!(file = %backup.display(), error = %e, "file exporter: cannot delete an old backup");
            }
        }
    }
}

/// The local UTC offset in seconds, from `date +%z` (0 when it cannot be read).
fn local_offset_secs() -> i64 {
    let out = std::process::Command::new("date").arg("+%z").output();
    let text = match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_string(),
        _ => {
            tracing::warn!("file exporter: cannot read the local time zone; backup names use UTC");
            return 0;
        }
    };
    let (sign, digits) = match text.split_at_checked(1) {
        Some(("-", d)) => (-1, d),
        Some(("+", d)) => (1, d),
        _ => return 0,
    };
    match (
        digits.get(0..2).and_then(|h| h.parse::<i64>().ok()),
        digits.get(2..4).and_then(|m| m.parse::<i64>().ok()),
    ) {
        (Some(h), Some(m)) => sign * (h * 3600 + m * 60),
        _ => 0,
    }
}

/// The files of `group_by`, the least recently written closed beyond `max_open_files`.
struct Groups {
    /// `path` before and after its `*`.
    prefix: String,
    suffix: String,
    open: Vec<(PathBuf, Output)>,
    /// Files opened in this run: opened again (after being closed) they are appended to.
    seen: std::collections::HashSet<PathBuf>,
    max_open: usize,
    truncate_first: bool,
    rotation: Option<RotationSettings>,
    offset_secs: i64,
}

impl Groups {
    /// The file of a path segment: inside the prefix whatever the segment holds (`..`,
    /// `/` and `.` parts are dropped); `None` when nothing is left of it.
    fn path_of(&self, segment: &str) -> Option<PathBuf> {
        let parts: Vec<&str> = segment
            .split('/')
            .filter(|p| !p.is_empty() && *p != "." && *p != "..")
            .collect();
        if parts.is_empty() {
            return None;
        }
        Some(PathBuf::from(format!(
            "{}{}{}",
            self.prefix,
            parts.join("/"),
            self.suffix
        )))
    }

    fn output(&mut self, path: &Path) -> std::io::Result<&mut Output> {
        if let Some(i) = self.open.iter().position(|(p, _)| p == path) {
            // Most recently used last.
            let entry = self.open.remove(i);
            self.open.push(entry);
        } else {
            if self.open.len() >= self.max_open {
                let (old, mut out) = self.open.remove(0);
                if let Err(e) = out.file.flush() {
                    tracing::error!(path = %old.display(), error = %e, "file exporter: flush failed");
                }
            }
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            let mut options = OpenOptions::new();
            options.create(true);
            if self.truncate_first && !self.seen.contains(path) {
                options.write(true).truncate(true);
            } else {
                options.append(true);
            }
            let file = options.open(path)?;
            self.seen.insert(path.to_path_buf());
            let size = file.metadata().map(|m| m.len()).unwrap_or(0);
            self.open.push((
                path.to_path_buf(),
                Output {
                    path: path.to_path_buf(),
                    file: BufWriter::with_capacity(64 * 1024, file),
                    size,
                    rotation: self.rotation.clone(),
                    offset_secs: self.offset_secs,
                },
            ));
        }
        let last = self.open.len() - 1;
        Ok(&mut self.open[last].1)
    }
}

/// The string value of resource attribute `key`, if any.
fn segment_of(
    resource: Option<&weir_api::otlp::resource::v1::Resource>,
    key: &str,
) -> Option<String> {
    use weir_api::otlp::common::v1::any_value::Value;
    resource?
        .attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
            Value::StringValue(s) => Some(s.clone()),
            _ => None,
        })
}

/// Splits a request by the string value of a resource attribute; resources without it (or
/// with a value of another type) are left out, as in the collector.
fn split_by_attribute(payload: &weir_api::Payload, key: &str) -> Vec<(String, weir_api::Payload)> {
    use std::collections::BTreeMap;
    use weir_api::otlp::collector::logs::v1::ExportLogsServiceRequest;
    use weir_api::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
    use weir_api::otlp::collector::trace::v1::ExportTraceServiceRequest;
    use weir_api::Payload;
    match payload {
        Payload::Logs(r) => {
            let mut groups: BTreeMap<String, ExportLogsServiceRequest> = BTreeMap::new();
            for rl in &r.resource_logs {
                if let Some(seg) = segment_of(rl.resource.as_ref(), key) {
                    groups
                        .entry(seg)
                        .or_default()
                        .resource_logs
                        .push(rl.clone());
                }
            }
            groups
                .into_iter()
                .map(|(k, v)| (k, Payload::Logs(v)))
                .collect()
        }
        Payload::Traces(r) => {
            let mut groups: BTreeMap<String, ExportTraceServiceRequest> = BTreeMap::new();
            for rs in &r.resource_spans {
                if let Some(seg) = segment_of(rs.resource.as_ref(), key) {
                    groups
                        .entry(seg)
                        .or_default()
                        .resource_spans
                        .push(rs.clone());
                }
            }
            groups
                .into_iter()
                .map(|(k, v)| (k, Payload::Traces(v)))
                .collect()
        }
        Payload::Metrics(r) => {
            let mut groups: BTreeMap<String, ExportMetricsServiceRequest> = BTreeMap::new();
            for rm in &r.resource_metrics {
                if let Some(seg) = segment_of(rm.resource.as_ref(), key) {
                    groups
                        .entry(seg)
                        .or_default()
                        .resource_metrics
                        .push(rm.clone());
                }
            }
            groups
                .into_iter()
                .map(|(k, v)| (k, Payload::Metrics(v)))
                .collect()
        }
    }
}

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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn backup_timestamps_round_trip_in_the_collectors_layout() {
        // 2024-02-29T23-59-58.123 UTC
        let ms = 1_709_251_198_123;
        assert_eq!(format_timestamp(ms), "2024-02-29T23-59-58.123");
        assert_eq!(parse_timestamp("2024-02-29T23-59-58.123"), Some(ms));
        assert_eq!(format_timestamp(0), "1970-01-01T00-00-00.000");
        assert_eq!(parse_timestamp("2024-13-01T00-00-00.000"), None);
        assert_eq!(
            backup_path(Path::new("/x/out.jsonl"), ms),
            Path::new("/x/out-2024-02-29T23-59-58.123.jsonl")
        );
        assert_eq!(
            backup_path(Path::new("out"), 0),
            Path::new("out-1970-01-01T00-00-00.000")
        );
    }

    #[test]
    fn integer_flush_interval_is_nanoseconds_as_in_the_collector() {
        let s: FileSettings =
            serde_json::from_value(serde_json::json!({"path": "x", "flush_interval": 5_000_000}))
                .unwrap();
        assert_eq!(s.flush_interval, Duration::from_millis(5));
        let s: FileSettings =
            serde_json::from_value(serde_json::json!({"path": "x", "flush_interval": "2s"}))
                .unwrap();
        assert_eq!(s.flush_interval, Duration::from_secs(2));
        let e = serde_json::from_value::<FileSettings>(
            serde_json::json!({"path": "x", "flush_interval": "soon"}),
        )
        .unwrap_err();
        assert!(e.to_string().contains("\"soon\" is not a duration"), "{e}");
    }
}
