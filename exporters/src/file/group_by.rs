//! `group_by`: one output file per value of a resource attribute, the path built from
//! the attribute's value, with a bound on how many files are open at once.

use std::fs::OpenOptions;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::config::RotationSettings;
use super::rotation::Output;

/// The files of `group_by`, the least recently written closed beyond `max_open_files`.
pub(super) struct Groups {
    /// `path` before and after its `*`.
    pub(super) prefix: String,
    pub(super) suffix: String,
    pub(super) open: Vec<(PathBuf, Output)>,
    /// Files opened in this run: opened again (after being closed) they are appended to.
    pub(super) seen: std::collections::HashSet<PathBuf>,
    pub(super) max_open: usize,
    pub(super) truncate_first: bool,
    pub(super) rotation: Option<RotationSettings>,
    pub(super) offset_secs: i64,
}

impl Groups {
    /// The file of a path segment: inside the prefix whatever the segment holds (`..`,
    /// `/` and `.` parts are dropped); `None` when nothing is left of it.
    pub(super) fn path_of(&self, segment: &str) -> Option<PathBuf> {
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

    pub(super) fn output(&mut self, path: &Path) -> std::io::Result<&mut Output> {
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
pub(super) fn split_by_attribute(
    payload: &weir_api::Payload,
    key: &str,
) -> Vec<(String, weir_api::Payload)> {
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
