//! The `file` exporter's config: the Collector's fields (format, rotation, group_by,
//! flush interval) with their defaults and validation, and the factory.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use weir_api::{
    parse_component_config, BuildContext, BuildError, ConfigErrors, ExporterConfig,
    ExporterFactory, PerSignal, SignalSet, Stage,
};

use super::FileExporter;

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
    pub(super) fn max_bytes(&self) -> u64 {
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
    pub(super) fn grouped(&self) -> Option<&GroupBySettings> {
        self.group_by.as_ref().filter(|g| g.enabled)
    }

    pub(super) fn zstd(&self) -> bool {
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
