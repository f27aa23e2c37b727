//! Loading policy documents from files and directories.

use std::path::{Path, PathBuf};

use crate::parse::{parse_document, DocumentError, ParsedPolicy};

/// A file that could not be used; the other files still load.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Reading failed.
    #[error("{path}: cannot read: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The document is not a policy document.
    #[error(transparent)]
    Document(#[from] DocumentError),
}

/// Policies read from a path, and the files that failed.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Every policy found, in file then document order.
    pub policies: Vec<ParsedPolicy>,
    /// Files that could not be read or parsed at all.
    pub errors: Vec<LoadError>,
}

fn is_policy_file(p: &Path) -> bool {
    matches!(
        p.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    )
}

/// Policy files under `path` (itself when a file), sorted, directories walked recursively.
pub fn policy_files(path: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let meta = std::fs::metadata(path).map_err(|source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if !meta.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|source| LoadError::Io {
            path: dir.clone(),
            source,
        })?;
        for e in entries.flatten() {
            let p = e.path();
            let hidden = p
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.'));
            if hidden {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
            } else if is_policy_file(&p) {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Reads one document.
pub fn load_file(path: &Path) -> Result<Vec<ParsedPolicy>, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(parse_document(&text, &path.display().to_string())?)
}

/// Reads every policy document at `path` (a file or a directory of YAML/JSON files).
pub fn load_path(path: &Path) -> Loaded {
    let mut loaded = Loaded::default();
    let files = match policy_files(path) {
        Ok(f) => f,
        Err(e) => {
            loaded.errors.push(e);
            return loaded;
        }
    };
    for f in files {
        match load_file(&f) {
            Ok(mut p) => loaded.policies.append(&mut p),
            Err(e) => loaded.errors.push(e),
        }
    }
    loaded
}
