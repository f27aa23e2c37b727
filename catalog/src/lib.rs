//! The Weir control plane: the catalog store (metadata only), waste analysis, the policy
//! store served to edges, access control and the audit log, behind an HTTP API.

pub mod advice;
pub mod analysis;
pub mod api;
pub mod at_rest;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod component;
pub mod control;
mod db;
pub mod dryrun;
pub mod guard;
pub mod ingest;
pub mod listener;
pub mod metric_findings;
pub mod oidc;
pub mod otlp_auth;
mod policy_forms;
pub mod prom_findings;
pub mod prometheus;
pub mod retention;
mod sealed;
pub mod shed;
pub mod signin;
pub mod staging;
pub mod store;
pub mod subject;
pub mod sync;
pub mod ui;
pub mod units;
pub mod users;
pub mod views;

use weir_api::Registry;

/// Adds the `control_plane` extension and the `catalog` exporter.
pub fn register(registry: &mut Registry) {
    registry.extension("control_plane", component::ControlPlaneFactory);
    registry.exporter(&["catalog"], component::CatalogExporterFactory);
}

/// Errors of the control plane.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The SQLite file could not be opened.
    #[error("cannot open catalog store {path}: {source}")]
    Open {
        /// The file.
        path: String,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// The PostgreSQL database could not be reached or its URL is not one.
    #[error("catalog store: {0}")]
    Postgres(String),
    /// A store operation failed.
    #[error("catalog store: {0}")]
    Sql(#[from] rusqlite::Error),
    /// A stored or submitted document is not valid JSON of the expected shape.
    #[error("catalog document: {0}")]
    Json(#[from] serde_json::Error),
    /// The deployment's sketch key file could not be read or created.
    #[error("sketch key: {0}")]
    SketchKey(#[from] weir_summary::error::MetadataError),
    /// The database key is missing, unreadable or wrong.
    #[error("catalog key: {0}")]
    Key(String),
    /// A request breaks a limit of the store (nothing of it was stored).
    #[error("{0}")]
    Limit(String),
    /// A filesystem operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}
