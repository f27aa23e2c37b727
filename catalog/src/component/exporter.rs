//! The `catalog` exporter: summarises what it receives (and takes what the `metadata`
//! processors it includes gathered) and delivers the summaries to a local store or a remote
//! control plane, numbered so a resend is merged once; the sketch key of the deployment
//! (the module above documents the config).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use tokio::sync::watch;
use weir_api::{
    parse_component_config, Batch, BuildContext, BuildError, Component, ConfigErrors, ConsumeError,
    Consumer, ExporterConfig, ExporterFactory, PerSignal, SignalSet, Stage, StartError,
};
use weir_summary::{
    Background, BackgroundCounters, CatalogSummary, MetadataConfig, MetadataHandle, SketchKey,
};
use weir_tls::{ClientTls, HttpVersions, TlsClientSettings};

use super::store_path;
use crate::control::ControlPlane;

fn default_flush() -> Duration {
    Duration::from_secs(10)
}

/// Config of the `catalog` exporter.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogExporterConfig {
    /// Local SQLite file to merge summaries into. Exactly one of `storage` and `endpoint`.
    /// A relative path is relative to the working directory, like `weir admin --db`.
    #[serde(default)]
    pub storage: Option<String>,
    /// Base URL of a remote control plane (`https://host:8080`, or `http://` on a trusted
    /// network); summaries are POSTed to `/api/v1/ingest`.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// TLS for an `https://` endpoint: `ca_file` (default: the system's roots), `cert_file`
    /// and `key_file` for mTLS, `server_name_override`, `min_version` (default "1.3"),
    /// `insecure_skip_verify`. Default: none (system roots, TLS 1.3).
    #[serde(default)]
    pub tls: Option<TlsClientSettings>,
    /// Bearer token (role `edge`) for the remote control plane.
    #[serde(default)]
    pub token: Option<String>,
    /// How often summaries are flushed. Default: 10s.
    #[serde(default = "default_flush", with = "humantime_serde")]
    pub flush_interval: Duration,
    /// Ids of `metadata` processors of the same service whose summaries this exporter also
    /// takes.
    #[serde(default)]
    pub include_processors: Vec<String>,
    /// Summariser settings (caps, miner); as the `metadata` processor's.
    #[serde(default)]
    pub metadata: MetadataConfig,
    /// With `endpoint` only: the file holding the deployment's sketch key (32 hex digits),
    /// relative to the config's directory. Read at start when it exists (provision the same
    /// file on every edge to do without the fetch); otherwise the key is fetched from the
    /// control plane (`GET /api/v1/sketch-key`, edge token) and written here, mode 0600.
    /// Default: `weir-sketch.key`. With `storage` the key is `<storage>.sketch-key`.
    #[serde(default)]
    pub sketch_key_file: Option<String>,
    /// With `storage`: encryption of the database at rest, as the `control_plane`
    /// extension's (`key_file`; give both the same).
    #[serde(default)]
    pub encryption: crate::at_rest::EncryptionConfig,
    /// YAML path of the section (set by the factory), for messages about TLS files.
    #[serde(skip)]
    pub path: String,
}

/// Factory of the `catalog` exporter.
pub struct CatalogExporterFactory;

impl ExporterFactory for CatalogExporterFactory {
    fn signals(&self) -> SignalSet {
        SignalSet::ALL
    }
    fn parse(
        &self,
        config: &serde_json::Value,
        path: &str,
    ) -> Result<Box<dyn ExporterConfig>, ConfigErrors> {
        let mut cfg: CatalogExporterConfig = parse_component_config(config, path)?;
        cfg.path = path.to_string();
        let mut errors = cfg.metadata.validate(&format!("{path}.metadata"));
        match (&cfg.storage, &cfg.endpoint) {
            (Some(_), Some(_)) => errors.push(path, "set either storage or endpoint, not both"),
            (None, None) => errors.push(
                path,
                "set storage (a local SQLite file) or endpoint (a remote control plane)",
            ),
            (None, Some(e)) if !(e.starts_with("http://") || e.starts_with("https://")) => errors
                .push(
                    format!("{path}.endpoint"),
                    format!("{e:?} is not an http(s) URL"),
                ),
            _ => {}
        }
        if let Some(tls) = &cfg.tls {
            errors.0.extend(tls.validate(&format!("{path}.tls")).0);
            let plain = cfg
                .endpoint
                .as_deref()
                .is_some_and(|e| e.starts_with("http://"));
            if (plain && !tls.insecure) || (cfg.endpoint.is_none() && cfg.storage.is_some()) {
                errors.push(
                    format!("{path}.tls"),
                    "is set but the summaries do not go to an https:// endpoint",
                );
            }
        }
        if cfg.flush_interval.is_zero() {
            errors.push(format!("{path}.flush_interval"), "must be greater than 0");
        }
        if cfg.encryption.key_file.is_some() && cfg.storage.is_none() {
            errors.push(
                format!("{path}.encryption.key_file"),
                "is for storage (a local database); a remote control plane keeps its own key",
            );
        }
        if cfg.sketch_key_file.is_some() && cfg.storage.is_some() {
            errors.push(
                format!("{path}.sketch_key_file"),
                "is for an endpoint; with storage the key is the file <storage>.sketch-key",
            );
        }
        errors.into_result(Box::new(cfg) as Box<dyn ExporterConfig>)
    }
}

type HttpsClient = hyper_util::client::legacy::Client<
    weir_tls::hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    http_body_util::Full<bytes::Bytes>,
>;

enum Destination {
    Local(Arc<ControlPlane>),
    Remote {
        url: String,
        /// `GET` here for the deployment's sketch key.
        key_url: String,
        /// Where the fetched key is kept.
        key_file: std::path::PathBuf,
        token: Option<String>,
        client: Box<HttpsClient>,
    },
}

impl Destination {
    /// Where summaries go, for log lines.
    fn name(&self) -> String {
        match self {
            Destination::Local(_) => "local store".into(),
            Destination::Remote { url, .. } => url.clone(),
        }
    }
}

/// The `metadata` processors whose summaries an exporter also takes: their ids, and the
/// state of the build they and the exporter belong to, where each processor put its handle.
#[derive(Clone)]
struct Included {
    ids: Vec<String>,
    shared: weir_api::Shared,
}

impl Included {
    /// The handles of the included processors that were built, in the order listed.
    fn handles(&self) -> Vec<Arc<MetadataHandle>> {
        self.ids
            .iter()
            .filter_map(|id| self.shared.get::<MetadataHandle>(id))
            .collect()
    }
}

/// The running `catalog` exporter.
pub struct CatalogExporter {
    handle: Arc<MetadataHandle>,
    /// Summarises what this exporter receives into `handle` on a thread below the data
    /// path's priority; a batch it has no time for is counted as unsummarised.
    summariser: Background,
    include: Included,
    dest: Arc<Destination>,
    flush_interval: Duration,
    pending: Arc<Mutex<CatalogSummary>>,
    /// The summary sent and not acknowledged yet, with its number.
    outbox: Arc<Mutex<Outbox>>,
    /// Whether the handle hashes with the deployment's key already.
    keyed: bool,
    stop: Mutex<Option<watch::Sender<bool>>>,
}

impl ExporterConfig for CatalogExporterConfig {
    fn build(&self, ctx: &BuildContext) -> Result<Arc<dyn Stage>, BuildError> {
        let dest = match (&self.storage, &self.endpoint) {
            (Some(s), _) => {
                let path = store_path(s);
                let key_file = self.encryption.key_file.as_deref().map(store_path);
                Destination::Local(Arc::new(
                    ControlPlane::open_with_key_file(&path, key_file.as_deref()).map_err(|e| {
                        BuildError::other(
                            &ctx.id,
                            format!("cannot open storage {}", path.display()),
                            e,
                        )
                    })?,
                ))
            }
            (None, Some(url)) => {
                let tls = match &self.tls {
                    Some(tls) => tls
                        .load(&format!("{}.tls", self.path), |p| ctx.resolve_path(p))
                        .map_err(|e| BuildError::caused_by(&ctx.id, e))?,
                    None if url.starts_with("https://") => TlsClientSettings::default()
                        .load("", |p| p.into())
                        .map_err(|e| BuildError::caused_by(&ctx.id, e))?,
                    None => ClientTls::plaintext(),
                };
                let client = hyper_util::client::legacy::Client::builder(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .build(tls.https_connector(HttpVersions::Http1And2));
                let base = url.trim_end_matches('/');
                Destination::Remote {
                    url: format!("{base}/api/v1/ingest"),
                    key_url: format!("{base}/api/v1/sketch-key"),
                    key_file: ctx
                        .resolve_path(self.sketch_key_file.as_deref().unwrap_or("weir-sketch.key")),
                    token: self.token.clone(),
                    client: Box::new(client),
                }
            }
            (None, None) => return Err(BuildError::message(&ctx.id, "no storage or endpoint")),
        };
        let key = match &dest {
            Destination::Local(c) => Some(c.sketch_key()),
            Destination::Remote { key_file, .. } => {
                SketchKey::load(key_file).map_err(|e| BuildError::caused_by(&ctx.id, e))?
            }
        };
        let handle = Arc::new(MetadataHandle::new(&self.metadata));
        if let Some(key) = key {
            handle.set_key(key);
        }
        let exporter = ctx.id.to_string();
        let counter = |name: &str, help: &str| {
            PerSignal::from_fn(|signal| {
                ctx.telemetry.counter(
                    name,
                    help,
                    &[
                        ("exporter", exporter.clone()),
                        ("signal", signal.as_str().to_string()),
                    ],
                )
            })
        };
        let counters = BackgroundCounters {
            summarised: counter(
                "weir_catalog_summarised_items",
                "Items the catalog exporter's summariser read",
            ),
            unsummarised: counter(
                "weir_catalog_unsummarised_items",
                "Items the catalog exporter counted without reading them (its summariser, below the data path's priority, was behind)",
            ),
        };
        let summariser = Background::start(handle.clone(), counters)
            .map_err(|e| BuildError::other(&ctx.id, "cannot start the summarising thread", e))?;
        Ok(Arc::new(CatalogExporter {
            handle,
            summariser,
            include: Included {
                ids: self.include_processors.clone(),
                shared: ctx.shared.clone(),
            },
            dest: Arc::new(dest),
            flush_interval: self.flush_interval,
            pending: Arc::new(Mutex::new(CatalogSummary::default())),
            outbox: Arc::new(Mutex::new(Outbox::new())),
            keyed: key.is_some(),
            stop: Mutex::new(None),
        }))
    }
}

/// The numbering of one exporter run's summaries (`x-weir-summary-seq: <stream>:<n>`): a
/// summary not acknowledged is sent again, with its number, before anything newer, so the
/// control plane merges it once however often it arrives.
struct Outbox {
    stream: String,
    next: u64,
    unacked: Option<(u64, CatalogSummary)>,
}

impl Outbox {
    fn new() -> Outbox {
        Outbox {
            stream: format!("{:016x}", rand::random::<u64>()),
            next: 0,
            unacked: None,
        }
    }
}

async fn deliver(dest: &Destination, summary: &CatalogSummary, seq: &str) -> Result<(), String> {
    match dest {
        Destination::Local(c) => c.ingest(summary).map_err(|e| e.to_string()),
        Destination::Remote {
            url, token, client, ..
        } => {
            use http_body_util::{BodyExt, Full};
            let body = serde_json::to_vec(summary).map_err(|e| e.to_string())?;
            let mut req = hyper::Request::post(url.as_str())
                .header(hyper::header::CONTENT_TYPE, "application/json")
                .header(crate::staging::SEQ_HEADER, seq);
            if let Some(t) = token {
                req = req.header(hyper::header::AUTHORIZATION, format!("Bearer {t}"));
            }
            let req = req
                .body(Full::new(bytes::Bytes::from(body)))
                .map_err(|e| e.to_string())?;
            let resp = tokio::time::timeout(Duration::from_secs(30), client.request(req))
                .await
                .map_err(|_| "timed out".to_string())?
                .map_err(|e| e.to_string())?;
            let status = resp.status();
            let no_token = token
                .as_deref()
                .is_none_or(|t| t.trim().is_empty() || t.trim() == "none");
            if status.is_success() {
                Ok(())
            } else if status == hyper::StatusCode::UNAUTHORIZED && no_token {
                Err(format!(
                    "{status}: no edge token is configured (the token is empty or \"none\"): set WEIR_EDGE_TOKEN to a token from `weir admin token create --role edge`"
                ))
            } else if status.is_client_error()
                && status != hyper::StatusCode::TOO_MANY_REQUESTS
                && status != hyper::StatusCode::REQUEST_TIMEOUT
                && status != hyper::StatusCode::UNAUTHORIZED
            {
                // Refused for what it holds: sending it again would be refused again and
                // keep growing what is pending. Dropped, loudly.
                let text = resp
                    .into_body()
                    .collect()
                    .await
                    .map(|b| b.to_bytes())
                    .unwrap_or_default();
                tracing::error!(
                    %status,
                    reason = %String::from_utf8_lossy(&text),
                    "control plane refused the catalog summary; dropped"
                );
                Ok(())
            } else {
                let text = resp
                    .into_body()
                    .collect()
                    .await
                    .map(|b| b.to_bytes())
                    .unwrap_or_default();
                Err(format!("{status}: {}", String::from_utf8_lossy(&text)))
            }
        }
    }
}

/// Fetches the deployment's sketch key from the control plane.
async fn fetch_key(dest: &Destination) -> Result<SketchKey, String> {
    use http_body_util::{BodyExt, Full};
    let Destination::Remote {
        key_url,
        token,
        client,
        ..
    } = dest
    else {
        return Err("not a remote destination".into());
    };
    let mut req = hyper::Request::get(key_url.as_str());
    if let Some(t) = token {
        req = req.header(hyper::header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let req = req.body(Full::default()).map_err(|e| e.to_string())?;
    let resp = tokio::time::timeout(Duration::from_secs(30), client.request(req))
        .await
        .map_err(|_| "timed out".to_string())?
        .map_err(|e| e.to_string())?;
    let status = resp.status();
    let body = tokio::time::timeout(Duration::from_secs(30), resp.into_body().collect())
        .await
        .map_err(|_| "timed out".to_string())?
        .map_err(|e| e.to_string())?
        .to_bytes();
    if status == hyper::StatusCode::UNAUTHORIZED
        && token
            .as_deref()
            .is_none_or(|t| t.trim().is_empty() || t.trim() == "none")
    {
        return Err(format!(
            "{status}: no edge token is configured (the token is empty or \"none\"): set WEIR_EDGE_TOKEN"
        ));
    }
    if !status.is_success() {
        return Err(format!("{status}: {}", String::from_utf8_lossy(&body)));
    }
    #[derive(Deserialize)]
    struct KeyResponse {
        key: String,
    }
    let parsed: KeyResponse = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
    SketchKey::parse_hex(&parsed.key).ok_or_else(|| "the answer holds no sketch key".to_string())
}

/// Hashes with `key` from now on in `handle` and the included processors; what was gathered
/// under their previous key goes to `pending` (its hashes are dropped when merged there).
fn switch_key(
    key: SketchKey,
    handle: &MetadataHandle,
    include: &Included,
    pending: &Mutex<CatalogSummary>,
) {
    let mut before = if handle.key() == key {
        CatalogSummary::default()
    } else {
        handle.set_key(key)
    };
    for h in include.handles() {
        if h.key() != key {
            before.merge(&h.set_key(key));
        }
    }
    if !before.is_empty() {
        let mut p = pending.lock().unwrap_or_else(|e| e.into_inner());
        p.merge(&before);
    }
}

/// Until the deployment's key is known: fetches it (retrying with backoff up to 30s),
/// keeps it in the key file and switches to it.
async fn obtain_key(
    dest: Arc<Destination>,
    handle: Arc<MetadataHandle>,
    include: Included,
    pending: Arc<Mutex<CatalogSummary>>,
    mut stop: watch::Receiver<bool>,
) {
    let Destination::Remote { key_file, .. } = dest.as_ref() else {
        return;
    };
    let mut wait = Duration::from_secs(1);
    loop {
        match fetch_key(&dest).await {
            Ok(key) => {
                // Another process may have written the file meanwhile: its key wins.
                let key = match key.store_new(key_file) {
                    Ok(k) => k,
                    Err(e) => {
                        tracing::warn!(error = %e, "sketch key not kept on disk; fetched again at the next start");
                        key
                    }
                };
                switch_key(key, &handle, &include, &pending);
                tracing::info!(key_id = %key.id(), "sketch key of the deployment in use");
                return;
            }
            Err(e) => {
                tracing::warn!(endpoint = %dest.name(), error = %e, retry_in = ?wait, "cannot fetch the sketch key from the control plane; value hashes of this edge are dropped until it is known");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return,
        }
        wait = (wait * 2).min(Duration::from_secs(30));
    }
}

impl CatalogExporter {
    /// Takes what was gathered and delivers it after anything a failed delivery left.
    async fn flush(&self) {
        flush_once(
            &self.handle,
            &self.include,
            &self.pending,
            &self.outbox,
            &self.dest,
        )
        .await;
    }
}

async fn flush_once(
    handle: &Arc<MetadataHandle>,
    include: &Included,
    pending: &Mutex<CatalogSummary>,
    outbox: &Mutex<Outbox>,
    dest: &Destination,
) {
    // Off the async runtime: a take waits for the batch the summarising thread (at the
    // lowest priority, so slow to get the CPU under load) is reading.
    let (h, inc) = (handle.clone(), include.clone());
    let gathered = tokio::task::spawn_blocking(move || {
        let mut gathered = h.take();
        for h in inc.handles() {
            gathered.merge(&h.take());
        }
        gathered
    })
    .await
    .unwrap_or_else(|e| {
        tracing::error!(error = %e, "taking the catalog summary failed");
        CatalogSummary::default()
    });
    if !gathered.is_empty() {
        pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .merge(&gathered);
    }
    // At most two deliveries: what failed before (same number), then what is new.
    for _ in 0..2 {
        let (label, summary, resend) = {
            let mut o = outbox.lock().unwrap_or_else(|e| e.into_inner());
            match &o.unacked {
                Some((n, s)) => (format!("{}:{n}", o.stream), s.clone(), true),
                None => {
                    let s = std::mem::take(&mut *pending.lock().unwrap_or_else(|e| e.into_inner()));
                    if s.is_empty() {
                        return;
                    }
                    o.next += 1;
                    let n = o.next;
                    o.unacked = Some((n, s.clone()));
                    (format!("{}:{n}", o.stream), s, false)
                }
            }
        };
        match deliver(dest, &summary, &label).await {
            Err(e) => {
                tracing::warn!(endpoint = %dest.name(), error = %e, seq = %label, "catalog flush failed; sent again (same number) at the next flush");
                return;
            }
            Ok(()) => {
                outbox.lock().unwrap_or_else(|e| e.into_inner()).unacked = None;
                if resend {
                    tracing::info!(endpoint = %dest.name(), seq = %label, "catalog flush recovered; what failed before is delivered");
                }
            }
        }
    }
}

#[async_trait]
impl Consumer for CatalogExporter {
    async fn consume(&self, batch: Batch) -> Result<(), ConsumeError> {
        self.summariser.submit(batch);
        Ok(())
    }
}

#[async_trait]
impl Component for CatalogExporter {
    async fn start(&self) -> Result<(), StartError> {
        let (tx, mut rx) = watch::channel(false);
        let (handle, include, pending, outbox, dest, every) = (
            self.handle.clone(),
            self.include.clone(),
            self.pending.clone(),
            self.outbox.clone(),
            self.dest.clone(),
            self.flush_interval,
        );
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(every) => flush_once(&handle, &include, &pending, &outbox, &dest).await,
                    _ = rx.changed() => break,
                }
            }
        });
        if self.keyed {
            // Processors were built after this exporter: give them the key now.
            switch_key(
                self.handle.key(),
                &self.handle,
                &self.include,
                &self.pending,
            );
        } else {
            tokio::spawn(obtain_key(
                self.dest.clone(),
                self.handle.clone(),
                self.include.clone(),
                self.pending.clone(),
                tx.subscribe(),
            ));
        }
        *self.stop.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx);
        Ok(())
    }

    async fn shutdown(&self) {
        if let Some(tx) = self.stop.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = tx.send(true);
        }
        // What is queued is summarised first, so the last flush holds all that came in
        // (at most QUEUE_BATCHES batches; nothing else runs at shutdown).
        self.summariser.finish();
        self.flush().await;
    }
}
