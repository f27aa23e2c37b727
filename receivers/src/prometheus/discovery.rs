//! `file_sd_configs`: target groups read from JSON or YAML files named by glob patterns,
//! with Prometheus's rules. A pattern may hold one `*`, in its last path element only, and
//! must end in `.json`, `.yml` or `.yaml`. Each file holds a list of groups
//! (`{targets: [host:port, ...], labels: {...}}`); every group gets the label
//! `__meta_filepath` with the file's path. The files are read again every
//! `refresh_interval` (default 5m) and as soon as the set of matching files, or a file's
//! modification time or size, changes (checked every second). A file that cannot be read
//! or parsed is logged with its path and keeps the groups it last gave.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use serde::Deserialize;
use weir_api::ConfigErrors;

/// Prometheus's default `refresh_interval`.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(300);

/// How often file changes are looked for.
pub const POLL: Duration = Duration::from_secs(1);

/// One `file_sd_configs` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSdConfig {
    /// Glob patterns of the files.
    #[serde(default)]
    pub files: Vec<String>,
    /// Default `5m`.
    #[serde(default, with = "humantime_serde")]
    pub refresh_interval: Option<Duration>,
}

/// Checks the patterns and the interval.
pub fn validate(configs: &[FileSdConfig], path: &str, errors: &mut ConfigErrors) {
    for (i, c) in configs.iter().enumerate() {
        let p = format!("{path}[{i}]");
        if c.files.is_empty() {
            errors.push(format!("{p}.files"), "must list at least one file pattern");
        }
        for (j, f) in c.files.iter().enumerate() {
            if !pattern_ok(f) {
                errors.push(
                    format!("{p}.files[{j}]"),
                    format!(
                        "{f:?} is not a file_sd pattern: one `*` at most, in the file name only, \
                         and a .json, .yml or .yaml extension"
                    ),
                );
            } else if let Err(e) = glob::Pattern::new(f) {
                errors.push(format!("{p}.files[{j}]"), format!("{f:?}: {e}"));
            }
        }
        if c.refresh_interval == Some(Duration::ZERO) {
            errors.push(format!("{p}.refresh_interval"), "must be greater than 0");
        }
    }
}

/// Prometheus's pattern rule: `^[^*]*(\*[^/]*)?\.(json|yml|yaml|JSON|YML|YAML)$`.
fn pattern_ok(p: &str) -> bool {
    let Some((stem, ext)) = p.rsplit_once('.') else {
        return false;
    };
    if !matches!(ext, "json" | "yml" | "yaml" | "JSON" | "YML" | "YAML") {
        return false;
    }
    match stem.split_once('*') {
        None => true,
        Some((_, after)) => !after.contains('*') && !after.contains('/'),
    }
}

/// One target group as read from a file.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// `<file>:<index>`, for messages.
    pub source: String,
    /// The group's labels, `__meta_filepath` included.
    pub labels: BTreeMap<String, String>,
    /// `host:port` addresses.
    pub targets: Vec<String>,
}

#[derive(Deserialize)]
struct JsonGroup {
    #[serde(default)]
    targets: Vec<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

/// YAML groups are read strictly, as Prometheus does (unknown keys are errors).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct YamlGroup {
    #[serde(default)]
    targets: Vec<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

fn label_name_ok(n: &str) -> bool {
    let mut chars = n.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Reads one file's groups; the error names what is wrong (the caller adds the path).
pub fn read_file(path: &std::path::Path) -> Result<Vec<Group>, String> {
    // Target files are small; a huge one is a mistake, not something to load.
    const MAX: u64 = 16 << 20;
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if meta.len() > MAX {
        return Err(format!("{} bytes, more than the {MAX} allowed", meta.len()));
    }
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let name = path.to_string_lossy().to_string();
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let raw: Vec<(Vec<String>, BTreeMap<String, String>)> = if ext == "json" {
        serde_json::from_str::<Vec<JsonGroup>>(&text)
            .map_err(|e| format!("not a JSON list of target groups: {e}"))?
            .into_iter()
            .map(|g| (g.targets, g.labels))
            .collect()
    } else if text.trim().is_empty() {
        Vec::new()
    } else {
        serde_saphyr::from_str::<Option<Vec<YamlGroup>>>(&text)
            .map_err(|e| {
                let msg = e.to_string();
                format!(
                    "not a YAML list of target groups: {}",
                    msg.lines().next().unwrap_or_default()
                )
            })?
            .unwrap_or_default()
            .into_iter()
            .map(|g| (g.targets, g.labels))
            .collect()
    };
    let mut out = Vec::with_capacity(raw.len());
    for (i, (targets, mut labels)) in raw.into_iter().enumerate() {
        if let Some(bad) = labels.keys().find(|k| !label_name_ok(k)) {
            return Err(format!("group {i}: {bad:?} is not a valid label name"));
        }
        if let Some(bad) = targets.iter().find(|t| t.is_empty() || t.contains('/')) {
            return Err(format!(
                "group {i}: target {bad:?} is not a host:port address"
            ));
        }
        labels.insert("__meta_filepath".into(), name.clone());
        out.push(Group {
            source: format!("{name}:{i}"),
            labels,
            targets,
        });
    }
    Ok(out)
}

/// What identifies a file's state between polls.
type Stamp = (PathBuf, Option<SystemTime>, u64);

/// The files of one job's `file_sd_configs`, read and watched.
pub struct FileWatch {
    patterns: Vec<String>,
    refresh: Duration,
    /// Last good groups per file.
    last: HashMap<PathBuf, Vec<Group>>,
    stamps: Vec<Stamp>,
    last_read: Instant,
}

impl FileWatch {
    /// Watches every pattern of `configs`; re-reads at the shortest `refresh_interval`.
    pub fn new(configs: &[FileSdConfig]) -> FileWatch {
        FileWatch {
            patterns: configs.iter().flat_map(|c| c.files.clone()).collect(),
            refresh: configs
                .iter()
                .map(|c| c.refresh_interval.unwrap_or(DEFAULT_REFRESH))
                .min()
                .unwrap_or(DEFAULT_REFRESH),
            last: HashMap::new(),
            stamps: Vec::new(),
            last_read: Instant::now(),
        }
    }

    fn list(&self) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = self
            .patterns
            .iter()
            .filter_map(|p| glob::glob(p).ok())
            .flat_map(|paths| paths.flatten())
            .filter(|p| p.is_file())
            .collect();
        out.sort();
        out.dedup();
        out
    }

    fn stamp(paths: &[PathBuf]) -> Vec<Stamp> {
        paths
            .iter()
            .map(|p| {
                let m = std::fs::metadata(p).ok();
                (
                    p.clone(),
                    m.as_ref().and_then(|m| m.modified().ok()),
                    m.map(|m| m.len()).unwrap_or(0),
                )
            })
            .collect()
    }

    /// Reads every matching file: the groups of all of them (a file that fails keeps its
    /// last good groups) and one message per file that failed, naming it.
    pub fn read(&mut self) -> (Vec<Group>, Vec<String>) {
        let files = self.list();
        self.stamps = Self::stamp(&files);
        self.last_read = Instant::now();
        let mut errors = Vec::new();
        let mut now: HashMap<PathBuf, Vec<Group>> = HashMap::new();
        for f in &files {
            match read_file(f) {
                Ok(groups) => {
                    now.insert(f.clone(), groups);
                }
                Err(e) => {
                    errors.push(format!("file_sd file {}: {e}", f.display()));
                    if let Some(old) = self.last.remove(f) {
                        now.insert(f.clone(), old);
                    }
                }
            }
        }
        self.last = now;
        let mut groups: Vec<Group> = Vec::new();
        for f in &files {
            if let Some(g) = self.last.get(f) {
                groups.extend(g.iter().cloned());
            }
        }
        (groups, errors)
    }

    /// Returns once the files changed or `refresh_interval` has passed since the last read.
    pub async fn changed(&self) {
        loop {
            let left = self.refresh.saturating_sub(self.last_read.elapsed());
            if left.is_zero() {
                return;
            }
            tokio::time::sleep(left.min(POLL)).await;
            if Self::stamp(&self.list()) != self.stamps {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_follow_prometheus() {
        for ok in ["a.json", "/x/*.yml", "/x/t-*.yaml", "/x/y/z.JSON", "*.json"] {
            assert!(pattern_ok(ok), "{ok}");
        }
        for bad in [
            "a.txt",
            "/x/*/y.json",
            "/x/**.json",
            "/x/*.json.bak",
            "json",
        ] {
            assert!(!pattern_ok(bad), "{bad}");
        }
    }

    #[test]
    fn reads_json_and_yaml_groups_and_names_bad_files() {
        let dir = tempfile::tempdir().unwrap();
        let j = dir.path().join("a.json");
        std::fs::write(
            &j,
            r#"[{"targets": ["h:1", "h:2"], "labels": {"env": "p"}}, {"targets": ["h:3"]}]"#,
        )
        .unwrap();
        let y = dir.path().join("b.yml");
        std::fs::write(&y, "- targets: [h:4]\n  labels: {dc: x}\n").unwrap();
        let mut w = FileWatch::new(&[FileSdConfig {
            files: vec![
                format!("{}/*.json", dir.path().display()),
                format!("{}/*.yml", dir.path().display()),
            ],
            refresh_interval: None,
        }]);
        let (groups, errors) = w.read();
        assert!(errors.is_empty(), "{errors:?}");
        type Row = (String, Vec<String>, Vec<(String, String)>);
        let got: Vec<Row> = groups
            .iter()
            .map(|g| {
                (
                    g.source.clone(),
                    g.targets.clone(),
                    g.labels.clone().into_iter().collect(),
                )
            })
            .collect();
        let jp = j.display().to_string();
        let yp = y.display().to_string();
        assert_eq!(
            got,
            vec![
                (
                    format!("{jp}:0"),
                    vec!["h:1".to_string(), "h:2".to_string()],
                    vec![
                        ("__meta_filepath".to_string(), jp.clone()),
                        ("env".to_string(), "p".to_string())
                    ]
                ),
                (
                    format!("{jp}:1"),
                    vec!["h:3".to_string()],
                    vec![("__meta_filepath".to_string(), jp.clone())]
                ),
                (
                    format!("{yp}:0"),
                    vec!["h:4".to_string()],
                    vec![
                        ("__meta_filepath".to_string(), yp.clone()),
                        ("dc".to_string(), "x".to_string())
                    ]
                ),
            ]
        );
        // A broken file is named and keeps its last good groups.
        std::fs::write(&y, "- targets: [h:4]\n  lables: {dc: x}\n").unwrap();
        let (groups, errors) = w.read();
        assert_eq!(groups.len(), 3);
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].starts_with(&format!(
                "file_sd file {yp}: not a YAML list of target groups:"
            )),
            "{errors:?}"
        );
        std::fs::write(&j, r#"[{"targets": ["h:1"], "labels": {"bad-name": "x"}}]"#).unwrap();
        let (_, errors) = w.read();
        assert!(
            errors.contains(&format!(
                "file_sd file {jp}: group 0: \"bad-name\" is not a valid label name"
            )),
            "{errors:?}"
        );
        // A removed file takes its groups with it.
        std::fs::remove_file(&j).unwrap();
        std::fs::write(&y, "[]").unwrap();
        let (groups, errors) = w.read();
        assert_eq!((groups.len(), errors.len()), (0, 0));
    }
}
