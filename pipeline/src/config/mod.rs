//! The config loader: sources -> YAML trees -> merged -> `--set` -> expanded -> validated.
//!
//! The order is the collector's: every `--config` source is parsed, the trees are merged in
//! order (maps deep-merge, lists replace), the `--set` overrides apply last, and `${...}`
//! references are expanded in the result.

mod expand;
mod http;
mod merge;
mod redact;
mod telemetry;
mod validate;
mod yaml;

use std::path::PathBuf;

use serde_json::Value;
use weir_api::{ConfigError, ConfigErrors};

pub use expand::{expand_tree, expand_value, ProcessResolver, Resolver};
pub use http::{fetch as fetch_http, MAX_BODY as HTTP_MAX_BODY};
pub use merge::{apply_set, deep_merge, expand_key_separators};
pub use redact::redact;
pub use telemetry::{LogEncoding, LogLevel, TelemetrySettings, DEFAULT_METRICS_ADDRESS};
pub use validate::{
    connector_targets, suggest, validate, PipelineSpec, ValidConnector, ValidatedConfig,
};
pub use yaml::{parse_document, parse_value};

/// The config that runs when no `--config` is given: `configs/default.yaml`.
pub const DEFAULT_CONFIG: &str = include_str!("../../../configs/default.yaml");

/// One `--config` argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// `FILE` or `file:FILE`.
    File(PathBuf),
    /// `yaml:key: value` (inline YAML, as the collector accepts), or the embedded default.
    Yaml {
        /// Where it came from, for messages.
        name: String,
        /// The YAML text.
        text: String,
    },
    /// `env:VAR`: YAML held in an environment variable.
    Env(String),
    /// `http://...` or `https://...`: YAML fetched with one GET when the config loads.
    Http(String),
}

impl ConfigSource {
    /// Parses a `--config` argument in the collector's URI forms.
    pub fn from_arg(arg: &str) -> ConfigSource {
        if let Some(p) = arg.strip_prefix("file:") {
            ConfigSource::File(PathBuf::from(p))
        } else if let Some(t) = arg.strip_prefix("yaml:") {
            ConfigSource::Yaml {
                name: "yaml:".to_string(),
                text: t.to_string(),
            }
        } else if let Some(v) = arg.strip_prefix("env:") {
            ConfigSource::Env(v.to_string())
        } else if arg.starts_with("http:") || arg.starts_with("https:") {
            ConfigSource::Http(arg.to_string())
        } else {
            ConfigSource::File(PathBuf::from(arg))
        }
    }

    /// The embedded default config.
    pub fn embedded_default() -> ConfigSource {
        ConfigSource::Yaml {
            name: "configs/default.yaml (embedded)".to_string(),
            text: DEFAULT_CONFIG.to_string(),
        }
    }

    fn name(&self) -> String {
        match self {
            ConfigSource::File(p) => p.display().to_string(),
            ConfigSource::Yaml { name, .. } => name.clone(),
            ConfigSource::Env(v) => format!("env:{v}"),
            ConfigSource::Http(uri) => uri.clone(),
        }
    }

    fn read(&self) -> Result<String, String> {
        match self {
            ConfigSource::File(p) => {
                std::fs::read_to_string(p).map_err(|e| format!("cannot read the config file: {e}"))
            }
            ConfigSource::Yaml { text, .. } => Ok(text.clone()),
            ConfigSource::Env(v) => {
                std::env::var(v).map_err(|_| format!("environment variable {v:?} is not set"))
            }
            ConfigSource::Http(uri) => http::fetch(uri),
        }
    }
}

/// The merged, expanded config tree and where relative paths start.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    /// The whole config after merge, `--set` and expansion.
    pub tree: Value,
    /// The first config file's directory (the working directory for other sources).
    pub base_dir: PathBuf,
}

/// Loads and merges `sources` (the embedded default when empty), applies `sets`, expands.
pub fn load(
    sources: &[ConfigSource],
    sets: &[String],
    resolver: &dyn Resolver,
) -> Result<LoadedConfig, ConfigErrors> {
    let default_source = [ConfigSource::embedded_default()];
    let sources = if sources.is_empty() {
        &default_source[..]
    } else {
        sources
    };
    let mut errors = ConfigErrors::default();
    let mut tree = Value::Object(Default::default());
    for source in sources {
        match source.read().and_then(|text| parse_document(&text)) {
            Ok(Value::Object(m)) => {
                let mut v = Value::Object(m);
                expand_key_separators(&mut v);
                deep_merge(&mut tree, v)
            }
            Ok(other) => errors.0.push(ConfigError::new(
                source.name(),
                format!("a config must be a map at the top, found {other}"),
            )),
            Err(message) => errors.0.push(ConfigError::new(source.name(), message)),
        }
    }
    for set in sets {
        if let Err(message) = apply_set(&mut tree, set) {
            errors.push("--set", message);
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    expand_tree(&mut tree, resolver)?;
    let base_dir = sources
        .iter()
        .find_map(|s| match s {
            ConfigSource::File(p) => p.parent().map(|d| {
                if d.as_os_str().is_empty() {
                    PathBuf::from(".")
                } else {
                    d.to_path_buf()
                }
            }),
            _ => None,
        })
        .unwrap_or_else(|| PathBuf::from("."));
    Ok(LoadedConfig { tree, base_dir })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merges_files_then_sets_then_expands() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.yaml");
        let b = dir.path().join("b.yaml");
        std::fs::write(&a, "processors:\n  batch/x:\n    timeout: 1s\n    send_batch_size: 10\nservice:\n  pipelines:\n    logs:\n      exporters: [debug, nop]\n").unwrap();
        std::fs::write(&b, "processors:\n  batch/x:\n    send_batch_size: 20\nservice:\n  pipelines:\n    logs:\n      exporters: [nop]\n").unwrap();
        let sources = vec![
            ConfigSource::from_arg(a.to_str().unwrap()),
            ConfigSource::from_arg(&format!("file:{}", b.display())),
        ];
        let sets = vec![
            "processors.batch/x.timeout=$${literal}".to_string(),
            "processors.batch/x.send_batch_max_size=${WEIR_TEST_UNSET_VAR:-30}".to_string(),
        ];
        let loaded = load(&sources, &sets, &ProcessResolver).unwrap();
        assert_eq!(
            loaded.tree,
            json!({
                "processors": {"batch/x": {"timeout": "${literal}", "send_batch_size": 20, "send_batch_max_size": 30}},
                "service": {"pipelines": {"logs": {"exporters": ["nop"]}}}
            })
        );
        assert_eq!(loaded.base_dir, dir.path());
    }

    #[test]
    fn unreadable_file_and_bad_yaml_are_reported_by_source() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.yaml");
        std::fs::write(&bad, "a: [1,\n").unwrap();
        let missing = dir.path().join("missing.yaml");
        let errs = load(
            &[
                ConfigSource::File(missing.clone()),
                ConfigSource::File(bad.clone()),
            ],
            &[],
            &ProcessResolver,
        )
        .unwrap_err();
        assert_eq!(errs.0.len(), 2);
        assert_eq!(errs.0[0].path, missing.display().to_string());
        assert!(
            errs.0[0]
                .message
                .starts_with("cannot read the config file: "),
            "{}",
            errs.0[0].message
        );
        assert_eq!(errs.0[1].path, bad.display().to_string());
    }

    #[test]
    fn no_source_means_embedded_default() {
        let loaded = load(&[], &[], &ProcessResolver).unwrap();
        assert!(loaded.tree["service"]["pipelines"].is_object());
    }

    #[test]
    fn source_forms() {
        assert_eq!(
            ConfigSource::from_arg("a.yaml"),
            ConfigSource::File("a.yaml".into())
        );
        assert_eq!(
            ConfigSource::from_arg("file:a.yaml"),
            ConfigSource::File("a.yaml".into())
        );
        assert_eq!(
            ConfigSource::from_arg("env:CFG"),
            ConfigSource::Env("CFG".into())
        );
        let loaded = load(
            &[ConfigSource::from_arg(
                "yaml:processors::batch::timeout: 2s",
            )],
            &[],
            &ProcessResolver,
        );
        // The collector's `yaml:` form uses `::` nesting; Weir takes it as plain YAML.
        assert!(loaded.is_ok());
    }
}
