//! Directories of the `file_storage` extensions, by extension id, for the components that
//! keep state in them (the `filelog` receiver's checkpoints, exporters' persistent
//! `sending_queue`). An extension records its directory when it is built; extensions are
//! built before any receiver or exporter starts, so components look it up at start.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

/// Where a `file_storage` extension keeps its files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageDir {
    /// The directory.
    pub directory: PathBuf,
    /// Whether writes are fsynced.
    pub fsync: bool,
}

fn dirs() -> &'static Mutex<BTreeMap<String, StorageDir>> {
    static DIRS: OnceLock<Mutex<BTreeMap<String, StorageDir>>> = OnceLock::new();
    DIRS.get_or_init(Default::default)
}

/// Records the directory of the storage extension `id` (as written in the config).
pub fn register_storage(id: &str, dir: StorageDir) {
    dirs()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(id.to_string(), dir);
}

/// The directory of the storage extension `id`, if one was built.
pub fn storage_dir(id: &str) -> Option<StorageDir> {
    dirs()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(id)
        .cloned()
}
