//! `file_storage` extension: a directory where components keep state across restarts: the
//! `filelog` receiver's checkpoints (`storage: file_storage/x`, one file per receiver) and
//! exporters' persistent `sending_queue` (`sending_queue: {storage: file_storage/x}`: one
//! disk queue per exporter and signal, as the Collector names its storage clients, in the
//! subdirectory `exporter_<type>_<name>_<signal>`, e.g. `exporter_otlp_up_logs` for
//! `otlp/up` and `exporter_otlp__traces` for `otlp`).
//!
//! ```yaml
//! extensions:
//!   file_storage/logs:
//!     directory: /var/lib/weir/file_storage   # default /var/lib/otelcol/file_storage
//!     create_directory: true                  # default false: the directory must exist
//!     fsync: true                             # default false
//! ```
//!
//! The Collector keeps a bbolt database per component; Weir keeps one small file per
//! component, replaced atomically (written aside, then renamed; with `fsync` the file and
//! the directory are synced before the write counts as done). `directory_permissions`
//! applies to a created directory. `timeout` and the `compaction` section are read and
//! checked for their types as the Collector has them and have nothing to do on such files;
//! `recreate: true` is a config error (not supported yet).

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use weir_api::{
    parse_component_config, BuildContext, BuildError, Component, ConfigErrors, ExtensionConfig,
    ExtensionFactory,
};

/// The `compaction` section, accepted with the Collector's fields.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct Compaction {
    #[serde(default)]
    directory: Option<String>,
    #[serde(default)]
    on_start: bool,
    #[serde(default)]
    on_rebound: bool,
    #[serde(default)]
    rebound_needed_threshold_mib: Option<u64>,
    #[serde(default)]
    rebound_trigger_threshold_mib: Option<u64>,
    #[serde(default)]
    max_transaction_size: Option<u64>,
    #[serde(default, with = "humantime_serde")]
    check_interval: Option<Duration>,
    #[serde(default)]
    cleanup_on_start: bool,
}

/// Settings of `file_storage`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileStorageSettings {
    /// Where state files live.
    #[serde(default = "default_directory")]
    pub directory: String,
    /// How long an operation may wait for the store (accepted; file operations here do not
    /// wait on a lock).
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Accepted as the Collector has it.
    #[serde(default)]
    pub compaction: Compaction,
    /// fsync each state file (and its directory) after writing it.
    #[serde(default)]
    pub fsync: bool,
    /// Create the directory (and its parents) when missing.
    #[serde(default)]
    pub create_directory: bool,
    /// Permissions of a created directory, an octal string (default `0750`).
    #[serde(default = "default_permissions")]
    pub directory_permissions: String,
    /// The Collector's "start from empty state"; `true` is refused (not supported yet).
    #[serde(default)]
    pub recreate: bool,
}

fn default_directory() -> String {
    "/var/lib/otelcol/file_storage".into()
}
fn default_timeout() -> Duration {
    Duration::from_secs(1)
}
fn default_permissions() -> String {
    "0750".into()
}

pub use weir_api::storage::StorageDir;

/// The storage directory of the `file_storage` extension `id` (as written in the config).
pub fn lookup(id: &str) -> Option<StorageDir> {
    weir_api::storage::storage_dir(id)
}

/// Factory of `file_storage`.
pub struct FileStorageFactory;

impl ExtensionFactory for FileStorageFactory {
    fn parse(
        &self,
        config: &serde_json::Value,
        path: &str,
    ) -> Result<Box<dyn ExtensionConfig>, ConfigErrors> {
        let s: FileStorageSettings = parse_component_config(config, path)?;
        let mut errors = ConfigErrors::default();
        if s.directory.is_empty() {
            errors.push(format!("{path}.directory"), "must not be empty");
        }
        if s.recreate {
            errors.push(
                format!("{path}.recreate"),
                "not supported by weir's file_storage yet (remove the state files instead)",
            );
        }
        if u32::from_str_radix(&s.directory_permissions, 8).is_err() {
            errors.push(
                format!("{path}.directory_permissions"),
                format!("{:?} is not an octal mode", s.directory_permissions),
            );
        }
        errors.into_result(Box::new(s) as Box<dyn ExtensionConfig>)
    }
}

impl ExtensionConfig for FileStorageSettings {
    fn build(&self, ctx: &BuildContext) -> Result<Arc<dyn Component>, BuildError> {
        let dir = ctx.resolve_path(&self.directory);
        if !dir.is_dir() {
            if !self.create_directory {
                return Err(BuildError::message(
                    &ctx.id,
                    format!(
                        "directory {} does not exist (create it, or set create_directory: true)",
                        dir.display()
                    ),
                ));
            }
            std::fs::create_dir_all(&dir).map_err(|e| {
                BuildError::other(&ctx.id, format!("cannot create {}", dir.display()), e)
            })?;
            use std::os::unix::fs::PermissionsExt;
            let mode = u32::from_str_radix(&self.directory_permissions, 8).unwrap_or(0o750);
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode)).map_err(|e| {
                BuildError::other(&ctx.id, format!("cannot chmod {}", dir.display()), e)
            })?;
        }
        weir_api::storage::register_storage(
            &ctx.id.to_string(),
            StorageDir {
                directory: dir,
                fsync: self.fsync,
            },
        );
        Ok(Arc::new(FileStorage))
    }
}

/// The running extension: the directory is all there is.
pub struct FileStorage;

impl Component for FileStorage {}
