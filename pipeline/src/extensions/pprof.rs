//! The `pprof` extension: the Collector's config, and what a Rust process can honestly
//! show under `/debug/pprof/`.
//!
//! ```yaml
//! extensions:
//!   pprof:
//!     endpoint: localhost:1777
//!     block_profile_fraction: 0
//!     mutex_profile_fraction: 0
//!     save_to_file: ""
//! ```
//!
//! Served: `/debug/pprof/` (an HTML index), `/debug/pprof/cmdline` (the command line, its
//! arguments separated by NUL bytes, as Go's), `/debug/pprof/status` (the kernel's view of
//! the process: memory, threads, context switches, from `/proc/self/status`) and
//! `/debug/pprof/threads` (each thread's name and user/system CPU seconds, from
//! `/proc/self/task`). Weir is not a Go program: the pprof-format profiles (`profile`,
//! `heap`, `allocs`, `goroutine`, `block`, `mutex`, `threadcreate`, `trace`, `symbol`)
//! answer 501 with that explanation; `block_profile_fraction` and `mutex_profile_fraction`
//! (Go runtime settings) have no effect, and `save_to_file` writes no CPU profile (a warning
//! says so at start). Use `perf record -p <pid>` for CPU profiles of Weir.

use std::fmt::Write as _;
use std::sync::Arc;

use async_trait::async_trait;
use axum::extract::Path;
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::Mutex;
use weir_api::{
    parse_component_config, BuildContext, BuildError, Component, ComponentId, ConfigErrors,
    ExtensionConfig, ExtensionFactory, StartError,
};

use crate::metrics_server::HttpServer;

/// `extensions.pprof` as written.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct PprofConfig {
    /// `host:port` to listen on. Default: localhost:1777.
    #[serde(default = "default_endpoint")]
    pub endpoint: String,
    /// Go's block profile rate. Default: 0. Accepted; no effect in Weir.
    #[serde(default)]
    pub block_profile_fraction: i64,
    /// Go's mutex profile fraction. Default: 0. Accepted; no effect in Weir.
    #[serde(default)]
    pub mutex_profile_fraction: i64,
    /// Where the Collector writes a CPU profile of its whole run. Default: none. Accepted;
    /// Weir writes none and warns at start.
    #[serde(default)]
    pub save_to_file: String,
}

fn default_endpoint() -> String {
    "localhost:1777".to_string()
}

/// The Go profiles that Weir does not produce.
pub const GO_ONLY: [&str; 9] = [
    "profile",
    "heap",
    "allocs",
    "goroutine",
    "block",
    "mutex",
    "threadcreate",
    "trace",
    "symbol",
];

/// Factory of the `pprof` extension.
pub struct PprofFactory;

impl ExtensionFactory for PprofFactory {
    fn parse(&self, config: &Value, path: &str) -> Result<Box<dyn ExtensionConfig>, ConfigErrors> {
        let cfg: PprofConfig = parse_component_config(config, path)?;
        let mut errors = ConfigErrors::default();
        if cfg.endpoint.trim().is_empty() {
            errors.push(
                format!("{path}.endpoint"),
                "an endpoint (host:port) is required",
            );
        }
        errors.into_result(Box::new(cfg) as Box<dyn ExtensionConfig>)
    }
}

impl ExtensionConfig for PprofConfig {
    fn build(&self, ctx: &BuildContext) -> Result<Arc<dyn Component>, BuildError> {
        Ok(Arc::new(Pprof {
            id: ctx.id.clone(),
            config: self.clone(),
            server: Mutex::new(None),
        }))
    }
}

/// The running extension.
pub struct Pprof {
    id: ComponentId,
    config: PprofConfig,
    server: Mutex<Option<HttpServer>>,
}

fn index() -> String {
    let mut b = String::from(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>/debug/pprof/</title></head><body>\n<h1>/debug/pprof/</h1>\n<ul>\n",
    );
    for (p, what) in [
        (
            "cmdline",
            "the command line, arguments separated by NUL bytes",
        ),
        (
            "status",
            "the kernel's view of the process (/proc/self/status)",
        ),
        (
            "threads",
            "each thread's name and CPU seconds (user, system)",
        ),
    ] {
        let _ = writeln!(b, "<li><a href=\"{p}\">{p}</a>: {what}</li>");
    }
    b.push_str("</ul>\n<p>Weir is not a Go program: the Go pprof profiles (");
    b.push_str(&GO_ONLY.join(", "));
    b.push_str(") are not available. Use <code>perf record -p PID</code> for CPU profiles.</p>\n</body></html>\n");
    b
}

/// Each thread's name, user and system CPU seconds.
fn threads() -> String {
    const USER_HZ: f64 = 100.0;
    let mut rows = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc/self/task") {
        for entry in dir.flatten() {
            let tid = entry.file_name().to_string_lossy().to_string();
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
                continue;
            };
            let name = stat[open + 1..close].to_string();
            let f: Vec<&str> = stat[close + 2..].split_whitespace().collect();
            let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
            rows.push((tid, name, ticks(11) / USER_HZ, ticks(12) / USER_HZ));
        }
    }
    rows.sort_by_key(|r| r.0.parse::<u64>().ok());
    let mut out = String::from("tid\tname\tuser_seconds\tsystem_seconds\n");
    for (tid, name, u, s) in rows {
        let _ = writeln!(out, "{tid}\t{name}\t{u:.2}\t{s:.2}");
    }
    out
}

async fn entry(
    Path(name): Path<String>,
) -> (
    StatusCode,
    [(axum::http::HeaderName, &'static str); 1],
    Vec<u8>,
) {
    let text = [(CONTENT_TYPE, "text/plain; charset=utf-8")];
    match name.as_str() {
        "cmdline" => {
            let args: Vec<String> = std::env::args().collect();
            (StatusCode::OK, text, args.join("\0").into_bytes())
        }
        "status" => match std::fs::read_to_string("/proc/self/status") {
            Ok(s) => (StatusCode::OK, text, s.into_bytes()),
            Err(e) => (
                StatusCode::NOT_IMPLEMENTED,
                text,
                format!("/proc/self/status is not readable here: {e}\n").into_bytes(),
            ),
        },
        "threads" => (StatusCode::OK, text, threads().into_bytes()),
        n if GO_ONLY.contains(&n) => (
            StatusCode::NOT_IMPLEMENTED,
            text,
            format!(
                "{n}: Weir is not a Go program and does not produce Go pprof profiles; use `perf record -p {}` for CPU profiles, or /debug/pprof/threads and /debug/pprof/status\n",
                std::process::id()
            )
            .into_bytes(),
        ),
        other => (
            StatusCode::NOT_FOUND,
            text,
            format!("unknown profile {other:?}; see /debug/pprof/\n").into_bytes(),
        ),
    }
}

#[async_trait]
impl Component for Pprof {
    async fn start(&self) -> Result<(), StartError> {
        if !self.config.save_to_file.is_empty() {
            tracing::warn!(extension = %self.id, file = %self.config.save_to_file, "pprof: save_to_file is accepted but Weir writes no CPU profile (not a Go program)");
        }
        if self.config.block_profile_fraction != 0 || self.config.mutex_profile_fraction != 0 {
            tracing::warn!(extension = %self.id, "pprof: block_profile_fraction and mutex_profile_fraction are Go runtime settings and have no effect in Weir");
        }
        let router = Router::new()
            .route(
                "/debug/pprof/",
                get(|| async { ([(CONTENT_TYPE, "text/html; charset=utf-8")], index()) }),
            )
            .route("/debug/pprof/{name}", get(entry));
        let server = HttpServer::start(&self.config.endpoint, router)
            .await
            .map_err(|e| {
                StartError::new(
                    &self.id,
                    format!("cannot listen on {}", self.config.endpoint),
                    e,
                )
            })?;
        tracing::info!(extension = %self.id, address = %server.local_addr(), "pprof index at /debug/pprof/");
        *self.server.lock().await = Some(server);
        Ok(())
    }

    async fn shutdown(&self) {
        if let Some(mut server) = self.server.lock().await.take() {
            server.stop().await;
        }
    }
}
