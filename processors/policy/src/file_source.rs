//! Policies from local files or directories, reloaded when a file changes (polling the
//! files' modification times and sizes, so it works on every filesystem and in containers).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use crate::active::ActivePolicies;
use crate::load::{load_path, policy_files};

type Fingerprint = Vec<(PathBuf, Option<SystemTime>, u64)>;

fn fingerprint(path: &Path) -> Option<Fingerprint> {
    let files = policy_files(path).ok()?;
    Some(
        files
            .into_iter()
            .map(|f| {
                let meta = std::fs::metadata(&f).ok();
                let modified = meta.as_ref().and_then(|m| m.modified().ok());
                let len = meta.map_or(0, |m| m.len());
                (f, modified, len)
            })
            .collect(),
    )
}

impl weir_api::reload::Reloadable for FileSource {
    fn describe(&self) -> String {
        format!("policy file {}", self.path.display())
    }

    fn reload(&self) -> Result<bool, String> {
        self.try_reload()
    }
}

/// One `file` source.
pub struct FileSource {
    path: PathBuf,
    index: usize,
    active: Arc<ActivePolicies>,
    seen: Mutex<Option<Fingerprint>>,
    /// The load errors last logged (each logged once until they change).
    reported: Mutex<Vec<String>>,
}

impl FileSource {
    /// A source reading `path` into slot `index` of `active`.
    pub fn new(path: PathBuf, index: usize, active: Arc<ActivePolicies>) -> Self {
        FileSource {
            path,
            index,
            active,
            seen: Mutex::new(None),
            reported: Mutex::new(Vec::new()),
        }
    }

    /// Loads the files if they changed since the last load. A load where some document does
    /// not parse, or the path is unreadable, keeps the policies in force (an editor may be
    /// half-way through a save). Returns whether the policy set was replaced.
    pub fn reload_if_changed(&self) -> bool {
        self.try_reload().unwrap_or(false)
    }

    /// [`Self::reload_if_changed`], saying why a changed set was not loaded.
    pub fn try_reload(&self) -> Result<bool, String> {
        let now = fingerprint(&self.path);
        {
            let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            if now.is_some() && *seen == now {
                return Ok(false);
            }
        }
        let loaded = load_path(&self.path);
        if !loaded.errors.is_empty() {
            // Each problem is logged once, not at every poll, until it changes.
            let mut reported = self.reported.lock().unwrap_or_else(|e| e.into_inner());
            let now: Vec<String> = loaded.errors.iter().map(|e| e.to_string()).collect();
            if *reported != now {
                for e in &now {
                    tracing::warn!(path = %self.path.display(), error = %e, "policy file not loaded; keeping the policies in force");
                }
                *reported = now.clone();
            }
            return Err(now.join("; "));
        }
        let had_errors =
            !std::mem::take(&mut *self.reported.lock().unwrap_or_else(|e| e.into_inner()))
                .is_empty();
        if had_errors {
            tracing::info!(path = %self.path.display(), "policy files load again (recovered)");
        }
        *self.seen.lock().unwrap_or_else(|e| e.into_inner()) = now;
        let set = self.active.replace(self.index, loaded.policies);
        tracing::info!(path = %self.path.display(), policies = set.entries.len(), "policies loaded");
        Ok(true)
    }

    /// Polls for changes every `interval` until the task is aborted.
    pub async fn watch(self: Arc<Self>, interval: Duration) {
        let mut tick = tokio::time::interval(interval.max(Duration::from_millis(50)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let me = self.clone();
            // File IO off the async workers.
            let _ = tokio::task::spawn_blocking(move || me.reload_if_changed()).await;
        }
    }
}
