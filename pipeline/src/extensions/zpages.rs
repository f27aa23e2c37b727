//! The `zpages` extension: HTML pages describing the running service, as the Collector's.
//!
//! ```yaml
//! extensions:
//!   zpages:
//!     endpoint: localhost:55679
//! service:
//!   extensions: [zpages]
//! ```
//!
//! Serves `/debug/servicez` (build, start time, uptime, whether every component is up,
//! links to the other pages), `/debug/pipelinez` (each pipeline with its receivers,
//! processors and exporters, connectors included), `/debug/extensionz` (the service's
//! extensions) and `/debug/featurez` (Weir has no feature gates: an empty table). Not
//! served: `/debug/tracez` (Weir records no spans of its own) and `/debug/expvarz`
//! (`expvar.enabled` is accepted; Go's expvar has no Weir counterpart).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex as StdMutex, OnceLock};
use std::time::{Instant, SystemTime};

use async_trait::async_trait;
use axum::http::header::CONTENT_TYPE;
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::Mutex;
use weir_api::{
    parse_component_config, BuildContext, BuildError, Component, ComponentId, ConfigErrors,
    ExtensionConfig, ExtensionFactory, StartError,
};

use crate::config::ValidatedConfig;
use crate::metrics_server::HttpServer;

/// `extensions.zpages` as written.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct ZPagesConfig {
    /// `host:port` to listen on. Default: localhost:55679.
    #[serde(default = "default_endpoint")]
    pub endpoint: String,
    /// Go's expvar page. Default: disabled. Accepted; not served.
    #[serde(default)]
    pub expvar: Option<ExpvarConfig>,
}

/// `expvar:`.
#[derive(Debug, Deserialize, Clone, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ExpvarConfig {
    /// Default: false.
    pub enabled: bool,
}

fn default_endpoint() -> String {
    "localhost:55679".to_string()
}

/// One pipeline as the zpages show it: id, receivers, processors, exporters.
pub type PipelineRow = (String, Vec<String>, Vec<String>, Vec<String>);

/// What the zpages show of one running service.
#[derive(Debug, Clone, Default)]
pub struct ServiceSnapshot {
    /// (pipeline id, receivers, processors, exporters).
    pub pipelines: Vec<PipelineRow>,
    /// Extension ids in start order.
    pub extensions: Vec<String>,
    /// Connector ids.
    pub connectors: Vec<String>,
}

impl ServiceSnapshot {
    /// The snapshot of a validated config.
    pub fn of(config: &ValidatedConfig) -> Self {
        let ids = |v: &[ComponentId]| v.iter().map(|i| i.to_string()).collect::<Vec<_>>();
        ServiceSnapshot {
            pipelines: config
                .pipelines
                .iter()
                .map(|p| {
                    (
                        p.id.clone(),
                        ids(&p.receivers),
                        ids(&p.processors),
                        ids(&p.exporters),
                    )
                })
                .collect(),
            extensions: ids(&config.service_extensions),
            connectors: config.connectors.keys().map(|c| c.to_string()).collect(),
        }
    }
}

/// The services running in this process, by the address of their `ready` flag (the one
/// thing a component's build context shares with the engine that runs it).
fn services() -> &'static StdMutex<HashMap<usize, Arc<ServiceSnapshot>>> {
    static S: OnceLock<StdMutex<HashMap<usize, Arc<ServiceSnapshot>>>> = OnceLock::new();
    S.get_or_init(Default::default)
}

fn key(ready: &Arc<AtomicBool>) -> usize {
    Arc::as_ptr(ready) as usize
}

/// Makes `snapshot` what the zpages of the service owning `ready` show.
pub fn register_service(ready: &Arc<AtomicBool>, snapshot: ServiceSnapshot) {
    services()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(key(ready), Arc::new(snapshot));
}

/// Forgets the service owning `ready`.
pub fn unregister_service(ready: &Arc<AtomicBool>) {
    services()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&key(ready));
}

fn snapshot_of(ready: &Arc<AtomicBool>) -> Arc<ServiceSnapshot> {
    services()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&key(ready))
        .cloned()
        .unwrap_or_default()
}

/// Factory of the `zpages` extension.
pub struct ZPagesFactory;

impl ExtensionFactory for ZPagesFactory {
    fn parse(&self, config: &Value, path: &str) -> Result<Box<dyn ExtensionConfig>, ConfigErrors> {
        let cfg: ZPagesConfig = parse_component_config(config, path)?;
        let mut errors = ConfigErrors::default();
        if cfg.endpoint.trim().is_empty() {
            errors.push(
                format!("{path}.endpoint"),
                "\"endpoint\" is required when using the \"zpages\" extension",
            );
        }
        errors.into_result(Box::new(cfg) as Box<dyn ExtensionConfig>)
    }
}

impl ExtensionConfig for ZPagesConfig {
    fn build(&self, ctx: &BuildContext) -> Result<Arc<dyn Component>, BuildError> {
        Ok(Arc::new(ZPages {
            id: ctx.id.clone(),
            endpoint: self.endpoint.clone(),
            ready: ctx.ready.clone(),
            server: Mutex::new(None),
        }))
    }
}

/// The running extension.
pub struct ZPages {
    id: ComponentId,
    endpoint: String,
    ready: Arc<AtomicBool>,
    server: Mutex<Option<HttpServer>>,
}

struct Page {
    ready: Arc<AtomicBool>,
    since: SystemTime,
    started: Instant,
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn html(title: &str, body: &str) -> ([(axum::http::HeaderName, &'static str); 1], String) {
    (
        [(CONTENT_TYPE, "text/html; charset=utf-8")],
        format!(
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{t}</title></head><body>\n<h1>{t}</h1>\n{body}</body></html>\n",
            t = esc(title)
        ),
    )
}

fn links(list: &[String], kind: &str) -> String {
    if list.is_empty() {
        return String::new();
    }
    list.iter()
        .map(|c| format!("<span class=\"{kind}\">{}</span>", esc(c)))
        .collect::<Vec<_>>()
        .join(" &rarr; ")
}

fn servicez(page: &Page) -> String {
    let mut b = String::new();
    let _ = writeln!(b, "<table>");
    for (k, v) in [
        ("Command", "weir".to_string()),
        (
            "Description",
            "Weir, an OpenTelemetry-native telemetry pipeline".to_string(),
        ),
        ("Version", env!("CARGO_PKG_VERSION").to_string()),
        (
            "Start time",
            humantime::format_rfc3339_seconds(page.since).to_string(),
        ),
        (
            "Uptime",
            format!("{:.0}s", page.started.elapsed().as_secs_f64()),
        ),
        (
            "Status",
            if page.ready.load(Ordering::SeqCst) {
                "every component is started".to_string()
            } else {
                "starting or shutting down".to_string()
            },
        ),
    ] {
        let _ = writeln!(b, "<tr><th>{k}</th><td>{}</td></tr>", esc(&v));
    }
    let _ = writeln!(b, "</table>");
    let _ = writeln!(
        b,
        "<ul><li><a href=\"/debug/pipelinez\">Pipelines</a></li><li><a href=\"/debug/extensionz\">Extensions</a></li><li><a href=\"/debug/featurez\">Feature gates</a></li></ul>"
    );
    b
}

fn pipelinez(s: &ServiceSnapshot) -> String {
    let mut b = String::new();
    let _ = writeln!(
        b,
        "<table>\n<tr><th>Pipeline</th><th>Receivers</th><th>Processors</th><th>Exporters</th></tr>"
    );
    for (id, receivers, processors, exporters) in &s.pipelines {
        let _ = writeln!(
            b,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(id),
            links(receivers, "receiver"),
            links(processors, "processor"),
            links(exporters, "exporter")
        );
    }
    let _ = writeln!(b, "</table>");
    if !s.connectors.is_empty() {
        let _ = writeln!(
            b,
            "<p>Connectors (an exporter of one pipeline, a receiver of another): {}</p>",
            links(&s.connectors, "connector")
        );
    }
    b
}

fn extensionz(s: &ServiceSnapshot) -> String {
    let mut b = String::from("<table>\n<tr><th>Extension</th></tr>\n");
    for e in &s.extensions {
        let _ = writeln!(b, "<tr><td>{}</td></tr>", esc(e));
    }
    b.push_str("</table>\n");
    b
}

#[async_trait]
impl Component for ZPages {
    async fn start(&self) -> Result<(), StartError> {
        let page = Arc::new(Page {
            ready: self.ready.clone(),
            since: SystemTime::now(),
            started: Instant::now(),
        });
        let (p1, p2, p3) = (page.clone(), page.clone(), page.clone());
        let router = Router::new()
            .route(
                "/debug/servicez",
                get(move || {
                    let p = p1.clone();
                    async move { html("Service", &servicez(&p)) }
                }),
            )
            .route(
                "/debug/pipelinez",
                get(move || {
                    let s = snapshot_of(&p2.ready);
                    async move { html("Pipelines", &pipelinez(&s)) }
                }),
            )
            .route(
                "/debug/extensionz",
                get(move || {
                    let s = snapshot_of(&p3.ready);
                    async move { html("Extensions", &extensionz(&s)) }
                }),
            )
            .route(
                "/debug/featurez",
                get(|| async {
                    html(
                        "Feature gates",
                        "<table>\n<tr><th>ID</th><th>Enabled</th><th>Stage</th><th>Description</th></tr>\n</table>\n<p>Weir has no feature gates.</p>\n",
                    )
                }),
            );
        let server = HttpServer::start(&self.endpoint, router)
            .await
            .map_err(|e| {
                StartError::new(&self.id, format!("cannot listen on {}", self.endpoint), e)
            })?;
        tracing::info!(extension = %self.id, address = %server.local_addr(), "zpages at /debug/servicez and /debug/pipelinez");
        *self.server.lock().await = Some(server);
        Ok(())
    }

    async fn shutdown(&self) {
        if let Some(mut server) = self.server.lock().await.take() {
            server.stop().await;
        }
    }
}
