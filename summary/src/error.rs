//! Errors of this crate.

use std::path::PathBuf;

/// What can go wrong outside the hot path (the processor itself cannot fail).
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// An input file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Output could not be written.
    #[error("cannot write output: {0}")]
    Write(#[source] std::io::Error),
    /// A sketch key file holds something else than a key.
    #[error("sketch key file {}: {message}", path.display())]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A sketch key file could not be written.
    #[error("cannot write sketch key file {}: {source}", path.display())]
    KeyFileIo {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}
