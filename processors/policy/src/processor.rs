//! The `policy` processor: applies the telemetry policies from every configured source to
//! each batch (logs, metrics and traces), failing open.
//!
//! ```yaml
//! processors:
//!   policy:
//!     sources:
//!       - file:
//!           path: ./policies          # a file or a directory of YAML/JSON policy documents
//!           watch: true               # reload on change (default true); SIGHUP always reloads
//!           poll_interval: 2s         # how often files are checked (default 2s)
//!       - http:
//!           endpoint: http://control-plane:8080/v1/policy/sync
//!           encoding: protobuf        # protobuf (default) | json
//!           interval: 60s             # used when the server recommends no interval
//!           timeout: 10s
//!           headers: {authorization: "Bearer ${env:POLICY_TOKEN}"}
//!           cache_dir: /var/lib/weir/policy-cache
//!       - grpc:
//!           endpoint: https://control-plane:4320
//!           cache_dir: /var/lib/weir/policy-cache
//!           tls:                      # https:// endpoints; see weir-tls for every field
//!             ca_file: /etc/weir/ca.pem        # default: the system's roots
//!             cert_file: /etc/weir/edge.pem    # mTLS (with key_file)
//!             key_file: /etc/weir/edge-key.pem
//!     shadow: false                   # true: count what would be dropped, change nothing
//!     client:                         # who this edge is, sent with every sync
//!       service_name: weir-edge
//!       service_namespace: prod
//! ```
//!
//! A single policy runs in shadow mode when it carries the label `weir.shadow: "true"`.
//! Metrics: `weir_policy_hits_total`, `weir_policy_misses_total`,
//! `weir_policy_shadow_drops_total`, `weir_policy_errors` (gauge; label `policy_id`),
//! `weir_policy_invalid` (gauge of
//! policies with errors, label `processor`) and `weir_policy_shadow_dropped_items_total`
//! (label `processor`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use weir_api::{
    parse_component_config, Batch, BuildContext, BuildError, Component, ConfigErrors, ConsumeError,
    Consumer, Counter, Gauge, ProcessError, Processor, ProcessorConfig, ProcessorFactory,
    ProcessorStage, Signal, SignalSet, Stage,
};

use crate::active::ActivePolicies;
use crate::file_source::FileSource;
use crate::sync_client::{SyncClient, SyncSettings, Transport};
use weir_policy_engine::stats::StatsRegistry;

fn default_true() -> bool {
    true
}
fn default_poll() -> Duration {
    Duration::from_secs(2)
}
fn default_interval() -> Duration {
    Duration::from_secs(60)
}
fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

/// Config of the `policy` processor.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyProcessorConfig {
    /// Where policies come from; all sources apply together. Default: none (everything
    /// passes unchanged).
    #[serde(default)]
    pub sources: Vec<SourceConfig>,
    /// Count what the policies would drop (`weir_policy_shadow_dropped_items`) but drop and
    /// change nothing. Default: `false`.
    #[serde(default)]
    pub shadow: bool,
    /// Identity sent to control planes. Default: see [`ClientConfig`].
    #[serde(default)]
    pub client: ClientConfig,
}

/// One policy source.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum SourceConfig {
    /// Local files.
    File(FileSourceConfig),
    /// A control plane over HTTP (`POST /v1/policy/sync`).
    Http(RemoteSourceConfig),
    /// A control plane over gRPC (`PolicyService.Sync`).
    Grpc(RemoteSourceConfig),
}

/// A `file` source.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSourceConfig {
    /// A policy document or a directory of them (`.yaml`, `.yml`, `.json`, walked
    /// recursively), relative to the config file's directory. Required.
    pub path: String,
    /// Reload when the files change. Default: `true`.
    #[serde(default = "default_true")]
    pub watch: bool,
    /// How often the files are checked for changes. Default: `2s`.
    #[serde(default = "default_poll", with = "humantime_serde")]
    pub poll_interval: Duration,
}

/// Body encoding of the HTTP sync.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    /// `application/x-protobuf` (default).
    #[default]
    Protobuf,
    /// `application/json`.
    Json,
}

/// An `http` or `grpc` source.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteSourceConfig {
    /// `https://host:port` (gRPC) or the sync URL (HTTP; `/v1/policy/sync` is added when the
    /// URL has no path); `http://` for plain text. Required.
    pub endpoint: String,
    /// TLS for an `https://` endpoint: `ca_file`, `cert_file`/`key_file` (mTLS),
    /// `server_name_override`, `min_version` (default "1.3"), `insecure_skip_verify`.
    /// Default: none (the system's roots, TLS 1.3).
    #[serde(default)]
    pub tls: Option<weir_tls::TlsClientSettings>,
    /// Poll interval used until the server recommends one. Default: `60s`.
    #[serde(default = "default_interval", with = "humantime_serde")]
    pub interval: Duration,
    /// Timeout of one sync request. Default: `10s`.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Headers (gRPC metadata) sent with every sync. Default: none.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Directory where the last good policy list is kept, loaded at start when the control
    /// plane cannot be reached. Default: none (no cache).
    #[serde(default)]
    pub cache_dir: Option<String>,
    /// The file holding the key the cache is encrypted with (AES-256-GCM; 64 hex digits),
    /// created with a random key (mode 0600) when it does not exist. The environment
    /// variable `WEIR_POLICY_CACHE_KEY` (64 hex digits) overrides it. Default:
    /// `cache.key` in `cache_dir`.
    #[serde(default)]
    pub cache_key_file: Option<String>,
    /// HTTP body encoding (ignored for gRPC). Default: `protobuf`.
    #[serde(default)]
    pub encoding: Encoding,
}

/// The identity an edge reports in `ClientMetadata`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientConfig {
    /// `service.name`. Default: `weir`.
    pub service_name: String,
    /// `service.namespace`. Default: empty.
    pub service_namespace: String,
    /// `service.version`. Default: this crate's version.
    pub service_version: String,
    /// `service.instance.id`. Default: a random id kept in the file `instance-id` of the
    /// first sync source's `cache_dir` (so it survives restarts); without a `cache_dir`, a
    /// random id chosen at start.
    pub service_instance_id: Option<String>,
    /// `ClientMetadata.labels`. Default: none.
    pub labels: BTreeMap<String, String>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            service_name: "weir".into(),
            service_namespace: String::new(),
            service_version: env!("CARGO_PKG_VERSION").into(),
            service_instance_id: None,
            labels: BTreeMap::new(),
        }
    }
}

fn check_endpoint(e: &str, path: &str, errs: &mut ConfigErrors) {
    if e.is_empty() {
        errs.push(path, "endpoint is required");
    } else if !e.starts_with("http://") && !e.starts_with("https://") {
        errs.push(
            path,
            format!("endpoint {e:?} must start with http:// or https://"),
        );
    }
}

impl PolicyProcessorConfig {
    fn validate(&self, path: &str) -> ConfigErrors {
        let mut errs = ConfigErrors::default();
        for (i, s) in self.sources.iter().enumerate() {
            let p = format!("{path}.sources[{i}]");
            match s {
                SourceConfig::File(f) => {
                    if f.path.is_empty() {
                        errs.push(format!("{p}.file.path"), "path is required");
                    }
                    if f.poll_interval.is_zero() {
                        errs.push(format!("{p}.file.poll_interval"), "must be positive");
                    }
                }
                SourceConfig::Http(r) | SourceConfig::Grpc(r) => {
                    let kind = if matches!(s, SourceConfig::Http(_)) {
                        "http"
                    } else {
                        "grpc"
                    };
                    check_endpoint(&r.endpoint, &format!("{p}.{kind}.endpoint"), &mut errs);
                    if let Some(tls) = &r.tls {
                        errs.0.extend(tls.validate(&format!("{p}.{kind}.tls")).0);
                        if r.endpoint.starts_with("http://") && !tls.insecure {
                            errs.push(
                                format!("{p}.{kind}.tls"),
                                "is set but the endpoint is http:// (use https://)",
                            );
                        }
                    }
                    if r.interval.is_zero() {
                        errs.push(format!("{p}.{kind}.interval"), "must be positive");
                    }
                    if r.timeout.is_zero() {
                        errs.push(format!("{p}.{kind}.timeout"), "must be positive");
                    }
                }
            }
        }
        errs
    }
}

/// Factory of the `policy` processor.
pub struct PolicyFactory;

impl ProcessorFactory for PolicyFactory {
    fn signals(&self) -> SignalSet {
        SignalSet::ALL
    }

    fn parse(
        &self,
        config: &serde_json::Value,
        path: &str,
    ) -> Result<Box<dyn ProcessorConfig>, ConfigErrors> {
        let cfg: PolicyProcessorConfig = parse_component_config(config, path)?;
        cfg.validate(path).into_result(())?;
        Ok(Box::new(BuiltConfig {
            cfg,
            runtime: Mutex::new(None),
        }))
    }
}

struct BuiltConfig {
    cfg: PolicyProcessorConfig,
    /// Shared by every pipeline the processor is listed in: one set of sources per id.
    runtime: Mutex<Option<Arc<Runtime>>>,
}

/// The sources of one processor id and the policies they produce.
pub struct Runtime {
    /// The policies in force.
    pub active: Arc<ActivePolicies>,
    files: Vec<(Arc<FileSource>, Option<Duration>)>,
    remotes: Vec<Arc<SyncClient>>,
    started: AtomicBool,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Runtime {
    /// Builds the sources and loads what is available now: files, and cached sync results.
    /// Fails when a source's TLS files do not load.
    pub fn new(cfg: &PolicyProcessorConfig, ctx: &BuildContext) -> Result<Runtime, BuildError> {
        let stats = StatsRegistry::with_telemetry(ctx.telemetry.clone());
        let active = Arc::new(ActivePolicies::new(cfg.sources.len(), stats));
        // A stable identity: configured, else kept beside the first sync source's cache.
        let instance = cfg
            .client
            .service_instance_id
            .clone()
            .or_else(|| {
                let dir = cfg.sources.iter().find_map(|s| match s {
                    SourceConfig::Http(r) | SourceConfig::Grpc(r) => r.cache_dir.as_ref(),
                    _ => None,
                })?;
                let dir = ctx.resolve_path(dir);
                crate::sync_client::stable_instance_id(&dir)
                    .map_err(|e| {
                        tracing::warn!(dir = %dir.display(), error = %e, "cannot keep the edge instance id; a random one is used until restart");
                    })
                    .ok()
            })
            .unwrap_or_else(|| format!("{:032x}", rand::random::<u128>()));
        let mut files = vec![];
        let mut remotes = vec![];
        for (i, s) in cfg.sources.iter().enumerate() {
            match s {
                SourceConfig::File(f) => {
                    let src = Arc::new(FileSource::new(
                        ctx.resolve_path(&f.path),
                        i,
                        active.clone(),
                    ));
                    src.reload_if_changed();
                    let reloadable: Arc<dyn weir_api::reload::Reloadable> = src.clone();
                    weir_api::reload::register(&reloadable);
                    files.push((src, f.watch.then_some(f.poll_interval)));
                }
                SourceConfig::Http(r) | SourceConfig::Grpc(r) => {
                    let transport = match (s, r.encoding) {
                        (SourceConfig::Grpc(_), _) => Transport::Grpc,
                        (_, Encoding::Json) => Transport::HttpJson,
                        _ => Transport::HttpProtobuf,
                    };
                    let mut endpoint = r.endpoint.clone();
                    let no_path = endpoint
                        .parse::<http::Uri>()
                        .is_ok_and(|u| matches!(u.path(), "" | "/"));
                    if transport != Transport::Grpc && no_path {
                        endpoint = format!("{}/v1/policy/sync", endpoint.trim_end_matches('/'));
                    }
                    let file_name: String = format!("{}-{i}.pb", ctx.id)
                        .chars()
                        .map(|c| {
                            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                                c
                            } else {
                                '_'
                            }
                        })
                        .collect();
                    let settings = SyncSettings {
                        endpoint,
                        transport,
                        interval: r.interval,
                        timeout: r.timeout,
                        headers: r
                            .headers
                            .iter()
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect(),
                        cache_file: r
                            .cache_dir
                            .as_ref()
                            .map(|d| ctx.resolve_path(d).join(file_name)),
                        cache_key: match &r.cache_dir {
                            Some(d) => {
                                let file = match &r.cache_key_file {
                                    Some(f) => ctx.resolve_path(f),
                                    None => {
                                        ctx.resolve_path(d).join(crate::sync_client::CACHE_KEY_FILE)
                                    }
                                };
                                Some(crate::sync_client::cache_key(&file).map_err(|e| {
                                    BuildError::message(
                                        &ctx.id,
                                        format!("policy cache key of sources[{i}]: {e}"),
                                    )
                                })?)
                            }
                            None => None,
                        },
                        resource_attributes: vec![
                            ("service.name".into(), cfg.client.service_name.clone()),
                            (
                                "service.namespace".into(),
                                cfg.client.service_namespace.clone(),
                            ),
                            ("service.version".into(), cfg.client.service_version.clone()),
                            ("service.instance.id".into(), instance.clone()),
                        ],
                        labels: cfg
                            .client
                            .labels
                            .iter()
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect(),
                    };
                    let kind = if transport == Transport::Grpc {
                        "grpc"
                    } else {
                        "http"
                    };
                    let tls = match &r.tls {
                        Some(tls) => tls
                            .load(
                                &format!("processors.{}.sources[{i}].{kind}.tls", ctx.id),
                                |p| ctx.resolve_path(p),
                            )
                            .map_err(|e| BuildError::caused_by(&ctx.id, e))?,
                        None if r.endpoint.starts_with("https://") => {
                            weir_tls::TlsClientSettings::default()
                                .load("", |p| p.into())
                                .map_err(|e| BuildError::caused_by(&ctx.id, e))?
                        }
                        None => weir_tls::ClientTls::plaintext(),
                    };
                    let client = Arc::new(SyncClient::with_tls(settings, i, active.clone(), tls));
                    client.load_cache();
                    remotes.push(client);
                }
            }
        }
        Ok(Runtime {
            active,
            files,
            remotes,
            started: AtomicBool::new(false),
            tasks: Mutex::new(vec![]),
        })
    }

    /// Starts file watching and sync polling (once).
    pub fn start(&self) {
        if self.started.swap(true, Ordering::SeqCst) {
            return;
        }
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        for (f, poll) in &self.files {
            if let Some(poll) = poll {
                tasks.push(tokio::spawn(f.clone().watch(*poll)));
            }
        }
        for r in &self.remotes {
            tasks.push(tokio::spawn(r.clone().run()));
        }
    }

    /// Stops the background tasks.
    pub fn stop(&self) {
        for t in self
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            t.abort();
        }
    }
}

/// The processor itself: evaluates the current policy set on each batch.
pub struct PolicyProcessor {
    runtime: Arc<Runtime>,
    shadow: bool,
    shadow_dropped: Counter,
    invalid: Gauge,
}

impl Processor for PolicyProcessor {
    fn process(&self, batch: &mut Batch) -> Result<(), ProcessError> {
        let set = self.runtime.active.current();
        self.invalid
            .set(set.entries.iter().filter(|e| !e.errors.is_empty()).count() as i64);
        let outcome = weir_policy_engine::run::process(&set, batch, self.shadow);
        if self.shadow && outcome.dropped > 0 {
            self.shadow_dropped.inc_by(outcome.dropped as u64);
        }
        Ok(())
    }
}

struct PolicyStage {
    inner: ProcessorStage,
    runtime: Arc<Runtime>,
}

#[async_trait]
impl Consumer for PolicyStage {
    async fn consume(&self, batch: Batch) -> Result<(), ConsumeError> {
        self.inner.consume(batch).await
    }
}

#[async_trait]
impl Component for PolicyStage {
    async fn start(&self) -> Result<(), weir_api::StartError> {
        self.runtime.start();
        Ok(())
    }
    async fn shutdown(&self) {
        self.runtime.stop();
    }
}

impl ProcessorConfig for BuiltConfig {
    fn build(
        &self,
        ctx: &BuildContext,
        signal: Signal,
        next: Arc<dyn Consumer>,
    ) -> Result<Arc<dyn Stage>, BuildError> {
        let runtime = {
            let mut slot = self.runtime.lock().unwrap_or_else(|e| e.into_inner());
            match slot.as_ref() {
                Some(runtime) => runtime.clone(),
                None => {
                    let runtime = Arc::new(Runtime::new(&self.cfg, ctx)?);
                    *slot = Some(runtime.clone());
                    runtime
                }
            }
        };
        let labels = [("processor", ctx.id.to_string())];
        let processor = PolicyProcessor {
            runtime: runtime.clone(),
            shadow: self.cfg.shadow,
            shadow_dropped: ctx.telemetry.counter(
                "weir_policy_shadow_dropped_items",
                "Items the policy processor would have dropped in shadow mode",
                &labels,
            ),
            invalid: ctx.telemetry.gauge(
                "weir_policy_invalid",
                "Policies with errors (inert)",
                &labels,
            ),
        };
        let pipeline = ctx
            .pipeline
            .clone()
            .unwrap_or_else(|| signal.as_str().to_string());
        Ok(Arc::new(PolicyStage {
            inner: ProcessorStage::new(
                ctx.id.clone(),
                &pipeline,
                Arc::new(processor),
                next,
                &ctx.telemetry,
            ),
            runtime,
        }))
    }
}
