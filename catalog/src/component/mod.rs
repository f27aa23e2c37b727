//! The control plane as collector components.
//!
//! ```yaml
//! extensions:
//!   control_plane:
//!     endpoint: localhost:8080        # HTTP: API, UI, POST /v1/policy/sync
//!     grpc_endpoint: localhost:4320   # PolicyService.Sync over gRPC (optional)
//!     storage: ./weir-catalog.db      # the SQLite file (with `postgres`: the key files' prefix)
//!     postgres:                       # optional: the store in PostgreSQL, shared by replicas
//!       url: postgres://weir@db.internal:5432/weir   # default: none (the SQLite file)
//!       tls: {ca_file: db-ca.pem}     # optional: TLS only, the server's certificate checked
//!     auth: true                      # bearer tokens required (`weir admin token create`)
//!     sync_interval: 30s              # recommended to edges
//!     retention: 720h                 # catalog entries unseen this long are removed
//!     retention_per_table:            # every other table (crate::retention); 0s = forever
//!       edges: 720h
//!       policy_status: 720h
//!       dismissed_findings: 2160h
//!       revoked_tokens: 2160h
//!       disabled_users: 2160h
//!       audit: 8760h
//!     encryption:                     # the database is always encrypted (crate::at_rest)
//!       key_file: /etc/weir/catalog.key  # default: $WEIR_CATALOG_KEY, else <storage>.key
//!     tls:                            # HTTPS and gRPC over TLS (both listeners); see weir-tls
//!       cert_file: server.pem
//!       key_file: server-key.pem
//!       client_ca_file: ca.pem        # optional: mTLS, edges must present a cert from this CA
//!       min_version: "1.3"            # default
//!     ingest:                         # limits of POST /api/v1/ingest (docs/CONTROL-PLANE-LIMITS.md)
//!       max_request_bytes: 8388608
//!       requests_per_minute: 600      # per token
//!     failed_auth:                    # per client address and per account (docs/SECURITY.md)
//!       max_failures: 10              # within `window`, then 429 + Retry-After for `lockout`,
//!       window: 1m                    # doubling at each further lockout up to `max_lockout`
//!       lockout: 1m
//!       max_lockout: 1h
//!     overload:                       # load shedding: 503 + Retry-After past these (crate::shed)
//!       sync_max_in_flight: 256
//!       read_max_in_flight: 16
//!       retry_after: 5s
//!     connections:                    # both listeners
//!       max_connections: 16384
//!       header_read_timeout: 10s
//!       body_read_timeout: 30s
//!       idle_timeout: 120s
//!     sources:                        # read-only catalog sources (docs/PROMETHEUS-CATALOG.md)
//!       prometheus:
//!         - endpoint: http://prometheus:9090   # GET requests only
//!           interval: 5m
//!           # basic_auth: {username: weir, password_file: /etc/weir/prom-password}
//!           # bearer_token_file: /etc/weir/prom-token
//!     oidc:                           # optional single sign-on (docs/SECURITY.md)
//!       issuer: https://id.example.com
//!       client_id: weir
//!       client_secret: ${env:WEIR_OIDC_CLIENT_SECRET}
//!       redirect_url: https://weir.example.com/auth/oidc/callback
//! receivers:
//!   otlp:                             # the catalog's own OTLP receiver: edge/admin tokens only
//!     protocols: {http: {auth: {authenticator: control_plane}}}
//! exporters:
//!   catalog:                          # summarises what it receives; metadata only
//!     storage: ./weir-catalog.db      # write into a local store, or ...
//!     # endpoint: https://cp:8080     # ... ship summaries to a remote control plane
//!     # token: ${env:WEIR_EDGE_TOKEN}
//!     # tls: { ca_file: ca.pem }      # https:// endpoints: trust this CA (default: system roots)
//!     flush_interval: 10s
//!     include_processors: [metadata]  # also take what these metadata processors gathered
//!     # sketch_key_file: weir-sketch.key  # endpoint only: the deployment's sketch key
//! ```
//!
//! Value hashes in summaries are keyed with the deployment's sketch key
//! (`weir_summary::key`). With `storage` the key is the file beside the database
//! (`<storage>.sketch-key`). With `endpoint` it is read from `sketch_key_file`, or, when that
//! file does not exist, fetched from the control plane with the edge token and written there
//! (mode 0600); until then the exporter hashes with a key of its own and the control plane
//! drops those hashes (counts are kept).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use tokio::sync::watch;
use weir_api::{
    parse_component_config, BuildContext, BuildError, Component, ConfigErrors, ExtensionConfig,
    ExtensionFactory, StartError,
};
use weir_tls::{Alpn, ServerTls, TlsServerSettings};

use crate::api::{router, ApiState};
use crate::control::ControlPlane;
use crate::ingest::IngestConfig;
use crate::listener::ConnectionLimits;
use crate::sync::CatalogPolicyStore;

mod exporter;

pub use exporter::{CatalogExporter, CatalogExporterConfig, CatalogExporterFactory};

fn default_endpoint() -> String {
    "localhost:8080".into()
}
fn default_storage() -> String {
    "weir-catalog.db".into()
}
fn default_sync_interval() -> Duration {
    Duration::from_secs(30)
}
fn default_retention() -> Duration {
    Duration::from_secs(30 * 24 * 3600)
}
fn default_true() -> bool {
    true
}

/// Config of the `control_plane` extension.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlPlaneConfig {
    /// HTTP listen address for the API, the UI and HTTP policy sync. Default: `localhost:8080`.
    #[serde(default = "default_endpoint")]
    pub endpoint: String,
    /// gRPC listen address for `PolicyService.Sync`. Default: none (HTTP sync only).
    #[serde(default)]
    pub grpc_endpoint: Option<String>,
    /// SQLite file of the catalog and policies. Default: `weir-catalog.db`. A relative path
    /// is relative to the working directory (as `weir admin --db` reads it), not to the
    /// config file.
    #[serde(default = "default_storage")]
    pub storage: String,
    /// The store in a PostgreSQL database instead of the SQLite file `storage`: `url`.
    /// Several control planes (replicas behind a load balancer) can share one database;
    /// `storage` then only names the key files (`<storage>.audit-key`,
    /// `<storage>.sketch-key`), which every replica must be given. Default: none.
    #[serde(default)]
    pub postgres: Option<PostgresConfig>,
    /// Require bearer tokens. Default: true. `false` makes every caller an admin: local
    /// trials only.
    #[serde(default = "default_true")]
    pub auth: bool,
    /// Sync interval recommended to edges. Default: 30s.
    #[serde(default = "default_sync_interval", with = "humantime_serde")]
    pub sync_interval: Duration,
    /// Catalog entries not seen for this long are removed (checked hourly). Default: 720h.
    #[serde(default = "default_retention", with = "humantime_serde")]
    pub retention: Duration,
    /// How long every other table keeps its rows (edges, policy status, dismissed findings,
    /// revoked or expired tokens, disabled users, audit; expired sessions always go),
    /// enforced hourly with `retention`. Default: see `crate::retention::RetentionPerTable`
    /// (30, 30, 90, 90, 90 and 365 days).
    #[serde(default)]
    pub retention_per_table: crate::retention::RetentionPerTable,
    /// TLS for both listeners (HTTP API/UI/sync and gRPC sync): certificate, key, optional
    /// `client_ca_file` for mTLS, `min_version` (default "1.3"), reload on change. Default:
    /// none (plain text; keep the listeners on a trusted network).
    #[serde(default)]
    pub tls: Option<TlsServerSettings>,
    /// Limits of `POST /api/v1/ingest`: body size, per-token quotas, per-request summary
    /// limits, catalog and per-edge service caps (docs/CONTROL-PLANE-LIMITS.md).
    /// Default: see `IngestConfig`.
    #[serde(default)]
    pub ingest: IngestConfig,
    /// Limits of both listeners: connection cap, header, body and idle timeouts
    /// (docs/CONTROL-PLANE-LIMITS.md). Default: see `ConnectionLimits`.
    #[serde(default)]
    pub connections: ConnectionLimits,
    /// Load shedding of policy syncs and API reads: requests served at once, the
    /// `Retry-After` of a shed one (docs/CONTROL-PLANE-LIMITS.md). Default: see
    /// `crate::shed::OverloadConfig`.
    #[serde(default)]
    pub overload: crate::shed::OverloadConfig,
    /// Failed-authentication limits: failures per client address and per account within
    /// a window, then a lockout (429 + Retry-After) that doubles up to a maximum
    /// (docs/SECURITY.md). Default: see `FailedAuthLimits`.
    #[serde(default)]
    pub failed_auth: crate::guard::FailedAuthLimits,
    /// Encryption of the database at rest (always on): `key_file`. Default: the key in
    /// `WEIR_CATALOG_KEY`, else the file `WEIR_CATALOG_KEY_FILE`, else `<storage>.key`,
    /// created on first use (see `crate::at_rest`).
    #[serde(default)]
    pub encryption: crate::at_rest::EncryptionConfig,
    /// OpenID Connect single sign-on (authorization code + PKCE): `issuer`, `client_id`,
    /// `client_secret`, `redirect_url`, `scopes`, `user_claim` (see `crate::oidc`).
    /// Default: none (password + TOTP only).
    #[serde(default)]
    pub oidc: Option<crate::oidc::OidcConfig>,
    /// Read-only catalog sources polled periodically: `prometheus: [{endpoint, interval,
    /// basic_auth, bearer_token_file, tls, max_response_bytes, timeout}]`
    /// (`crate::prometheus::PromSourceConfig`, docs/PROMETHEUS-CATALOG.md). Default: none.
    #[serde(default)]
    pub sources: SourcesConfig,
}

/// `postgres` of the `control_plane` extension.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresConfig {
    /// The database: `postgres://user[:password]@host[:port]/database[?options]` or
    /// libpq's `key=value` form.
    pub url: String,
    /// TLS to the database (weir-tls's client settings: `ca_file`, `cert_file`/`key_file`
    /// for a client certificate, `min_version`, ...): the server's certificate must chain
    /// to the CA and name the URL's host; plain text is then refused. Default: none (plain
    /// text: keep the database on loopback or a trusted network).
    #[serde(default)]
    pub tls: Option<weir_tls::TlsClientSettings>,
}

/// `sources` of the `control_plane` extension.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourcesConfig {
    /// Prometheus servers read with GET requests only.
    #[serde(default)]
    pub prometheus: Vec<crate::prometheus::PromSourceConfig>,
}

fn parse_addr(s: &str, path: &str, errors: &mut ConfigErrors) -> Option<SocketAddr> {
    let s = s.replace("localhost:", "127.0.0.1:");
    match s.parse() {
        Ok(a) => Some(a),
        Err(_) => {
            errors.push(path, format!("invalid address {s:?} (expected host:port)"));
            None
        }
    }
}

/// Factory of the `control_plane` extension.
pub struct ControlPlaneFactory;

struct ParsedControlPlane {
    cfg: ControlPlaneConfig,
    http: SocketAddr,
    grpc: Option<SocketAddr>,
    /// YAML path of the section, for messages about files read at build time.
    path: String,
}

/// Loads TLS files at build time (relative paths from the config's directory) into a
/// `BuildError` that names the YAML path and the file.
fn load_server_tls(
    tls: &TlsServerSettings,
    field: &str,
    ctx: &BuildContext,
    alpn: Alpn,
) -> Result<ServerTls, BuildError> {
    tls.load(field, |p| ctx.resolve_path(p), alpn)
        .map_err(|e| BuildError::caused_by(&ctx.id, e))
}

impl ExtensionFactory for ControlPlaneFactory {
    fn parse(
        &self,
        config: &serde_json::Value,
        path: &str,
    ) -> Result<Box<dyn ExtensionConfig>, ConfigErrors> {
        let cfg: ControlPlaneConfig = parse_component_config(config, path)?;
        let mut errors = ConfigErrors::default();
        let http = parse_addr(&cfg.endpoint, &format!("{path}.endpoint"), &mut errors);
        let grpc = cfg
            .grpc_endpoint
            .as_deref()
            .and_then(|g| parse_addr(g, &format!("{path}.grpc_endpoint"), &mut errors));
        if cfg.sync_interval.is_zero() {
            errors.push(format!("{path}.sync_interval"), "must be greater than 0");
        }
        if let Some(tls) = &cfg.tls {
            errors.0.extend(tls.validate(&format!("{path}.tls")).0);
        }
        for (field, msg) in cfg.connections.check() {
            errors.push(format!("{path}.connections.{field}"), msg);
        }
        for (field, msg) in cfg.overload.check() {
            errors.push(format!("{path}.overload.{field}"), msg);
        }
        for (field, msg) in cfg.failed_auth.check() {
            errors.push(format!("{path}.failed_auth.{field}"), msg);
        }
        if let Some(oidc) = &cfg.oidc {
            for (field, msg) in oidc.check() {
                errors.push(format!("{path}.oidc.{field}"), msg);
            }
        }
        for (i, src) in cfg.sources.prometheus.iter().enumerate() {
            for (field, msg) in src.check() {
                errors.push(format!("{path}.sources.prometheus[{i}].{field}"), msg);
            }
        }
        if let Some(pg) = &cfg.postgres {
            if let Err(e) = pg.url.parse::<postgres::Config>() {
                errors.push(
                    format!("{path}.postgres.url"),
                    format!("not a PostgreSQL connection URL: {e}"),
                );
            }
        }
        if cfg.ingest.max_request_bytes == 0 {
            errors.push(
                format!("{path}.ingest.max_request_bytes"),
                "must be at least 1",
            );
        }
        match http {
            Some(http) if errors.is_empty() => Ok(Box::new(ParsedControlPlane {
                cfg,
                http,
                grpc,
                path: path.to_string(),
            })),
            _ => Err(errors),
        }
    }
}

/// A store path from the config: relative paths are relative to the working directory,
/// as `weir admin --db` and `weir catalog report --db` read them.
pub(crate) fn store_path(p: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(p)
}

/// Validates policy documents with the policy engine's own parser and compiler.
pub fn policy_check() -> crate::control::PolicyCheck {
    Box::new(|doc| {
        let parsed = weir_policy_contract::parse::parse_policy(doc, "policy");
        let p = parsed.policy.map_err(|e| e.join("; "))?;
        weir_policy_engine::compile::compile(&p)
            .map(|_| ())
            .map_err(|e| e.join("; "))
    })
}

impl ExtensionConfig for ParsedControlPlane {
    fn offers_server_authenticator(&self) -> bool {
        true
    }

    fn build(&self, ctx: &BuildContext) -> Result<Arc<dyn Component>, BuildError> {
        let path = store_path(&self.cfg.storage);
        let key_file = self.cfg.encryption.key_file.as_deref().map(store_path);
        let opened = match &self.cfg.postgres {
            Some(pg) => {
                let tls = match &pg.tls {
                    Some(t) => t
                        .load(&format!("{}.postgres.tls", self.path), |p| {
                            ctx.resolve_path(p)
                        })
                        .map_err(|e| BuildError::message(&ctx.id, e.to_string()))?
                        .rustls_config(),
                    None => None,
                };
                ControlPlane::open_postgres_tls(&pg.url, &path, tls).map_err(|e| {
                    BuildError::other(
                        &ctx.id,
                        format!("{}.postgres: cannot open the store", self.path),
                        e,
                    )
                })
            }
            None => ControlPlane::open_with_key_file(&path, key_file.as_deref()).map_err(|e| {
                BuildError::other(
                    &ctx.id,
                    format!("cannot open storage {}", path.display()),
                    e,
                )
            }),
        };
        let control = opened?
            .with_policy_check(policy_check())
            .with_ingest(self.cfg.ingest.clone(), &ctx.telemetry)
            .with_overload(self.cfg.overload)
            .with_failed_auth(self.cfg.failed_auth, &ctx.telemetry)
            .with_secure_cookies(self.cfg.tls.is_some())
            .with_stale_after(3 * self.cfg.sync_interval.as_secs().max(1) as i64);
        let control = match &self.cfg.oidc {
            Some(cfg) => {
                control.with_oidc(crate::oidc::Oidc::new(cfg.clone()).map_err(|e| {
                    BuildError::message(&ctx.id, format!("{}.oidc: {e}", self.path))
                })?)
            }
            None => control,
        };
        let shown = match &self.cfg.postgres {
            Some(pg) => pg.url.parse::<postgres::Config>().map_or_else(
                |_| "PostgreSQL".to_string(),
                |c| format!("PostgreSQL at {}", crate::db::pg::describe(&c)),
            ),
            None => std::fs::canonicalize(&path)
                .unwrap_or_else(|_| path.clone())
                .display()
                .to_string(),
        };
        let tokens = control
            .store()
            .tokens()
            .map_or(0, |t| t.iter().filter(|t| t.revoked_at.is_none()).count());
        tracing::info!(store = %shown, tokens, "control plane store opened");
        if tokens == 0 && self.cfg.auth {
            tracing::warn!(
                store = %shown,
                "the store has no API tokens: every request gets 401; create one with `weir admin token create --db {} --role admin`",
                self.cfg.storage
            );
        }
        let field = format!("{}.tls", self.path);
        let (http_tls, grpc_tls) = match &self.cfg.tls {
            Some(tls) => (
                Some(load_server_tls(tls, &field, ctx, Alpn::Http)?),
                match self.grpc {
                    Some(_) => Some(load_server_tls(tls, &field, ctx, Alpn::Grpc)?),
                    None => None,
                },
            ),
            None => (None, None),
        };
        Ok(Arc::new(ControlPlaneServer {
            id: ctx.id.clone(),
            control: Arc::new(control),
            cfg: self.cfg.clone(),
            http: self.http,
            grpc: self.grpc,
            http_tls,
            grpc_tls,
            stop: Mutex::new(None),
        }))
    }
}

/// The running control plane.
pub struct ControlPlaneServer {
    id: weir_api::ComponentId,
    control: Arc<ControlPlane>,
    cfg: ControlPlaneConfig,
    http: SocketAddr,
    grpc: Option<SocketAddr>,
    http_tls: Option<ServerTls>,
    grpc_tls: Option<ServerTls>,
    stop: Mutex<Option<watch::Sender<bool>>>,
}

/// The full HTTP app: API, policy sync (edge tokens), UI.
pub fn app(control: Arc<ControlPlane>, auth: bool, sync_interval: u32) -> axum::Router {
    let state = ApiState {
        control: control.clone(),
        auth,
    };
    let store = Arc::new(CatalogPolicyStore {
        control,
        interval_seconds: sync_interval,
    });
    let sync = weir_policy_contract::sync::http_router(store).layer(
        axum::middleware::from_fn_with_state(state.clone(), crate::api::authenticate_edge),
    );
    router(state).merge(sync).merge(crate::ui::router())
}

#[async_trait]
impl Component for ControlPlaneServer {
    async fn start(&self) -> Result<(), StartError> {
        let (tx, rx) = watch::channel(false);
        let listener = tokio::net::TcpListener::bind(self.http)
            .await
            .map_err(|e| StartError::new(&self.id, format!("cannot listen on {}", self.http), e))?;
        let interval = self.cfg.sync_interval.as_secs().max(1) as u32;
        let app = app(self.control.clone(), self.cfg.auth, interval);
        let mut stop_http = rx.clone();
        let stopped = async move {
            let _ = stop_http.wait_for(|s| *s).await;
        };
        let limits = self.cfg.connections;
        let max_body = self.cfg.ingest.max_request_bytes.max(1 << 20);
        let app = app.layer(axum::middleware::from_fn(move |req, next| {
            crate::listener::body_deadline(limits.body_read_timeout, max_body, req, next)
        }));
        let tls = self.http_tls.clone();
        tokio::spawn(crate::listener::serve_http(
            listener, app, tls, limits, stopped,
        ));
        if let Some(grpc) = self.grpc {
            let listener = tokio::net::TcpListener::bind(grpc)
                .await
                .map_err(|e| StartError::new(&self.id, format!("cannot listen on {grpc}"), e))?;
            let store = Arc::new(CatalogPolicyStore {
                control: self.control.clone(),
                interval_seconds: interval,
            });
            let control = self.control.clone();
            let auth = self.cfg.auth;
            let svc = crate::sync::EdgeAuth::new(
                weir_policy_contract::sync::grpc_service(store),
                control,
                auth,
            );
            let mut stop_grpc = rx.clone();
            let stopped = async move {
                let _ = stop_grpc.wait_for(|s| *s).await;
            };
            let limits = self.cfg.connections;
            let router = tonic::transport::Server::builder()
                .timeout(limits.body_read_timeout)
                .http2_keepalive_interval(Some(limits.idle_timeout))
                .http2_keepalive_timeout(Some(limits.header_read_timeout))
                .add_service(svc);
            let incoming = crate::listener::grpc_incoming(listener, self.grpc_tls.clone(), limits);
            tokio::spawn(async move {
                let _ = router.serve_with_incoming_shutdown(incoming, stopped).await;
            });
        }
        // Edge activity of finished minutes into the audit log, and the audit anchor
        // moved to the newest record, every minute; all of it at shutdown.
        let control = self.control.clone();
        let mut stop_act = rx.clone();
        tokio::spawn(async move {
            loop {
                let stopping = tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(60)) => false,
                    _ = stop_act.changed() => true,
                };
                let c = control.clone();
                let _ = tokio::task::spawn_blocking(move || {
                    c.flush_edge_activity(stopping);
                    if let Err(e) = c.store().anchor_audit() {
                        tracing::warn!(error = %e, "audit log: anchoring failed");
                    }
                })
                .await;
                if stopping {
                    break;
                }
            }
        });
        // Staged summaries and sync reports into the database, every persist_interval.
        let control = self.control.clone();
        let every = self
            .cfg
            .ingest
            .persist_interval
            .max(Duration::from_millis(10));
        let mut stop_persist = rx.clone();
        tokio::spawn(async move {
            loop {
                let stopping = tokio::select! {
                    _ = tokio::time::sleep(every) => false,
                    _ = stop_persist.changed() => true,
                };
                let c = control.clone();
                let r = tokio::task::spawn_blocking(move || c.store().persist()).await;
                match r {
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "catalog store: staged summaries not written; retried")
                    }
                    Err(e) => tracing::warn!(error = %e, "catalog store: persist task failed"),
                    Ok(Ok(_)) => {}
                }
                if stopping {
                    break;
                }
            }
        });
        // Read-only sources, each on its interval.
        for (i, src) in self.cfg.sources.prometheus.iter().enumerate() {
            tokio::spawn(crate::prometheus::poll(
                self.control.clone(),
                src.clone(),
                format!("{}.sources.prometheus[{i}]", self.id),
                rx.clone(),
            ));
        }
        // Retention, hourly.
        let control = self.control.clone();
        let retention = crate::retention::Retention {
            summaries: self.cfg.retention,
            tables: self.cfg.retention_per_table,
        };
        let mut stop_ret = rx;
        tokio::spawn(async move {
            loop {
                let store = control.clone();
                let run = tokio::task::spawn_blocking(move || {
                    store
                        .store()
                        .apply_retention(crate::store::now_secs(), &retention)
                })
                .await;
                match run {
                    Ok(Err(e)) => tracing::warn!(error = %e, "catalog retention failed"),
                    Err(e) => tracing::warn!(error = %e, "catalog retention failed"),
                    Ok(Ok(_)) => {}
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
                    _ = stop_ret.changed() => break,
                }
            }
        });
        *self.stop.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx);
        tracing::info!(endpoint = %self.http, tls = self.http_tls.is_some(), "control plane listening");
        Ok(())
    }

    async fn shutdown(&self) {
        if let Some(tx) = self.stop.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = tx.send(true);
        }
        // What is staged reaches the file before shutdown returns.
        let c = self.control.clone();
        if let Ok(Err(e)) = tokio::task::spawn_blocking(move || c.store().persist()).await {
            tracing::warn!(error = %e, "catalog store: staged summaries not written at shutdown");
        }
    }

    /// `auth: {authenticator: control_plane}` on a receiver: the store's edge and admin
    /// tokens (all requests when `auth: false`).
    fn server_authenticator(&self) -> Option<Arc<dyn weir_api::ServerAuthenticator>> {
        Some(Arc::new(crate::otlp_auth::IngestTokens::new(
            self.control.clone(),
            self.cfg.auth,
        )))
    }
}
