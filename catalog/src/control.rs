//! The control plane's operations, shared by the HTTP API and the CLI: ingest summaries,
//! list the catalog, find waste, accept suggestions, manage policies. Every change is
//! written to the audit log with its actor.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use weir_summary::summary::{CatalogSummary, ServiceSummary};
use weir_summary::SketchKey;

use crate::advice::{advise, Advice, ExistingPolicy};
use crate::analysis::{Finding, Thresholds};
use crate::ingest::{IngestConfig, Ingestor};
use crate::store::{now_secs, Store, StoredPolicy};
use crate::CatalogError;

/// The deployment's sketch key file of the store at `db`: `<db>.sketch-key`, beside the
/// database (mode 0600), never inside it.
pub fn sketch_key_path(db: &Path) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push(".sketch-key");
    PathBuf::from(p)
}

/// Why a control-plane request could not be done (mapped to HTTP statuses by the API).
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] CatalogError),
    /// Nothing has this id.
    #[error("{what} {id:?} not found")]
    NotFound {
        /// What kind of thing.
        what: &'static str,
        /// Its id.
        id: String,
    },
    /// The submitted document is invalid.
    #[error("{0}")]
    Invalid(String),
    /// The id is taken.
    #[error("{what} {id:?} already exists")]
    Conflict {
        /// What kind of thing.
        what: &'static str,
        /// Its id.
        id: String,
    },
}

/// Checks a policy document before it is stored (the policy engine's compiler).
pub type PolicyCheck = Box<dyn Fn(&serde_json::Value) -> Result<(), String> + Send + Sync>;

/// A service in the catalog listing.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceOverview {
    /// service.name.
    pub service: String,
    /// Log records / spans / data points seen.
    pub logs_items: u64,
    /// Bytes of logs.
    pub logs_bytes: u64,
    /// Spans.
    pub traces_items: u64,
    /// Bytes of spans.
    pub traces_bytes: u64,
    /// Data points.
    pub metrics_items: u64,
    /// Bytes of metrics.
    pub metrics_bytes: u64,
    /// Log templates known.
    pub templates: usize,
    /// Per signal, the items and bytes edges counted without reading them (and their share
    /// of the signal's items): templates and names describe the rest.
    #[serde(default)]
    pub unsummarised: crate::units::UnsummarisedSignals,
    /// Unix seconds first seen by the catalog.
    pub first_seen: i64,
    /// Unix seconds last seen.
    pub last_seen: i64,
}

/// The control plane over one store.
pub struct ControlPlane {
    store: Store,
    /// The deployment's sketch key (beside the store, never in it).
    sketch_key: SketchKey,
    thresholds: Thresholds,
    check: Option<PolicyCheck>,
    ingestor: Ingestor,
    /// Load shedding of policy syncs and API reads (`crate::shed`).
    sync_gate: std::sync::Arc<crate::shed::Gate>,
    read_gate: std::sync::Arc<crate::shed::Gate>,
    stale_after_secs: i64,
    guard: crate::guard::Guard,
    secure_cookies: bool,
    /// OpenID Connect sign-in, when configured.
    oidc: Option<std::sync::Arc<crate::oidc::Oidc>>,
    /// The served policy set, with the policy generation it was built at.
    served_cache: std::sync::Mutex<Option<(u64, std::sync::Arc<crate::sync::Served>)>>,
    /// The advice as last computed, with the store generation it was computed at.
    advice_cache: std::sync::Mutex<Option<(u64, Advice)>>,
    /// Syncs and ingests per (edge, action) in the current minute, written to the audit
    /// log as one record each when the minute ends.
    activity: std::sync::Mutex<std::collections::HashMap<(String, &'static str), EdgeActivity>>,
    /// Finished minutes not written yet.
    activity_done: std::sync::Mutex<Vec<(String, &'static str, EdgeActivity)>>,
}

/// Syncs or ingests of one edge within one minute.
#[derive(Debug, Default)]
struct EdgeActivity {
    minute: i64,
    actor: String,
    clients: std::collections::BTreeSet<String>,
    count: u64,
    bytes: u64,
}

/// Client addresses kept per edge and minute in the audit record.
const MAX_ACTIVITY_CLIENTS: usize = 8;

impl ControlPlane {
    /// Opens the store at `path`.
    pub fn open(path: &Path) -> Result<ControlPlane, CatalogError> {
        ControlPlane::open_with_key_file(path, None)
    }

    /// Opens the store at `path` with its key in `key_file` (default: see
    /// [`crate::at_rest`]).
    pub fn open_with_key_file(
        path: &Path,
        key_file: Option<&Path>,
    ) -> Result<ControlPlane, CatalogError> {
        ControlPlane::with_store(Store::open_with_key_file(path, key_file)?, path)
    }

    /// Opens the store in the PostgreSQL database at `url` (see
    /// [`Store::open_postgres`]); the key files are named after `files`.
    pub fn open_postgres(url: &str, files: &Path) -> Result<ControlPlane, CatalogError> {
        ControlPlane::with_store(Store::open_postgres(url, files)?, files)
    }

    /// As [`ControlPlane::open_postgres`], over TLS when `tls` is given (see
    /// [`Store::open_postgres_tls`]).
    pub fn open_postgres_tls(
        url: &str,
        files: &Path,
        tls: Option<std::sync::Arc<weir_tls::rustls::ClientConfig>>,
    ) -> Result<ControlPlane, CatalogError> {
        ControlPlane::with_store(Store::open_postgres_tls(url, files, tls)?, files)
    }

    fn with_store(store: Store, path: &Path) -> Result<ControlPlane, CatalogError> {
        let sketch_key = SketchKey::load_or_create(&sketch_key_path(path))?;
        Ok(ControlPlane {
            store,
            sketch_key,
            thresholds: Thresholds::default(),
            check: None,
            ingestor: Ingestor::new(IngestConfig::default(), &weir_api::Telemetry::new()),
            sync_gate: {
                let d = crate::shed::OverloadConfig::default();
                crate::shed::Gate::new("sync", d.sync_max_in_flight, d.retry_after)
            },
            read_gate: {
                let d = crate::shed::OverloadConfig::default();
                crate::shed::Gate::new("read", d.read_max_in_flight, d.retry_after)
            },
            stale_after_secs: 90,
            guard: crate::guard::Guard::new(
                crate::guard::FailedAuthLimits::default(),
                &weir_api::Telemetry::new(),
            ),
            secure_cookies: false,
            oidc: None,
            advice_cache: std::sync::Mutex::new(None),
            served_cache: std::sync::Mutex::new(None),
            activity: std::sync::Mutex::new(std::collections::HashMap::new()),
            activity_done: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// A service's name as the audit log writes it: `service#<keyed hash>` (an erasure
    /// must leave no trace of the name; whoever holds the sketch key can still tell it).
    pub fn service_fingerprint(&self, service: &str) -> String {
        format!("service#{:016x}", self.sketch_key.hash(service.as_bytes()))
    }

    /// Marks session cookies `Secure` (set when the listener has TLS).
    pub fn with_secure_cookies(mut self, secure: bool) -> Self {
        self.secure_cookies = secure;
        self
    }

    /// Enables OpenID Connect sign-in (`/auth/oidc/login`, `/auth/oidc/callback`).
    pub fn with_oidc(mut self, oidc: crate::oidc::Oidc) -> Self {
        self.oidc = Some(std::sync::Arc::new(oidc));
        self
    }

    /// The OpenID Connect relying party, when configured.
    pub fn oidc(&self) -> Option<&crate::oidc::Oidc> {
        self.oidc.as_deref()
    }

    /// Whether session cookies are `Secure`.
    pub fn secure_cookies(&self) -> bool {
        self.secure_cookies
    }

    /// Counts one sync or ingest (`action` `edge.sync` / `edge.ingest`) of `edge` by
    /// `actor` from `client`, into the current minute's record; a finished minute's
    /// record is written to the audit log first.
    pub fn record_edge_activity(
        &self,
        action: &'static str,
        edge: &str,
        actor: &str,
        client: &str,
        bytes: u64,
    ) {
        let minute = now_secs() / 60 * 60;
        let done = {
            let mut map = self.activity.lock().unwrap_or_else(|e| e.into_inner());
            let a = map.entry((edge.to_string(), action)).or_default();
            let done = (a.count > 0 && a.minute != minute).then(|| std::mem::take(a));
            if a.count == 0 {
                a.minute = minute;
            }
            a.actor = actor.to_string();
            if a.clients.len() < MAX_ACTIVITY_CLIENTS {
                a.clients.insert(client.to_string());
            }
            a.count += 1;
            a.bytes += bytes;
            done
        };
        if let Some(d) = done {
            // Written with the others by the next flush (one transaction), not on the
            // request path.
            self.activity_done
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((edge.to_string(), action, d));
        }
    }

    fn write_activity(&self, done: Vec<(String, &'static str, EdgeActivity)>) {
        if done.is_empty() {
            return;
        }
        let records: Vec<crate::store::AuditRecord> = done
            .into_iter()
            .map(|(edge, action, a)| {
                let clients: Vec<&str> = a.clients.iter().map(String::as_str).collect();
                crate::store::AuditRecord {
                    client: clients.join(","),
                    actor: a.actor.clone(),
                    action: action.to_string(),
                    target: edge,
                    after: Some(
                        serde_json::json!({"minute": a.minute, "count": a.count, "bytes": a.bytes}),
                    ),
                }
            })
            .collect();
        if let Err(e) = self.store.audit_batch(&records) {
            tracing::warn!(error = %e, "audit log: could not record edge activity");
        }
    }

    /// Writes the edge activity of finished minutes (all of it with `all`) to the audit
    /// log. The control plane calls this every minute and at shutdown.
    pub fn flush_edge_activity(&self, all: bool) {
        let minute = now_secs() / 60 * 60;
        let mut done: Vec<(String, &'static str, EdgeActivity)> =
            std::mem::take(&mut *self.activity_done.lock().unwrap_or_else(|e| e.into_inner()));
        {
            let mut map = self.activity.lock().unwrap_or_else(|e| e.into_inner());
            let keys: Vec<_> = map
                .iter()
                .filter(|(_, a)| a.count > 0 && (all || a.minute != minute))
                .map(|(k, _)| k.clone())
                .collect();
            for k in keys {
                if let Some(a) = map.remove(&k) {
                    done.push((k.0, k.1, a));
                }
            }
        }
        self.write_activity(done);
    }

    /// Sets the failed-authentication limits and where their metrics are counted.
    pub fn with_failed_auth(
        mut self,
        limits: crate::guard::FailedAuthLimits,
        telemetry: &weir_api::Telemetry,
    ) -> Self {
        self.guard = crate::guard::Guard::new(limits, telemetry);
        self
    }

    /// The failed-authentication limiter.
    pub fn guard(&self) -> &crate::guard::Guard {
        &self.guard
    }

    /// Writes a failed authentication to the audit log: `account` (`token:<id>`,
    /// `user:<name>`) or `-` as the actor, the reason as the target. A failure to write is
    /// logged, not raised (the request is refused either way).
    pub fn audit_auth_failure(
        &self,
        client: Option<std::net::IpAddr>,
        account: Option<&str>,
        reason: &str,
    ) {
        let r = self.store.audit_with_client(
            account.unwrap_or("-"),
            &crate::guard::client_str(client),
            "auth.failure",
            reason,
            None,
            None,
        );
        if let Err(e) = r {
            tracing::warn!(error = %e, "audit log: could not record a failed authentication");
        }
    }

    /// Sets the ingest limits and where their metrics are counted.
    pub fn with_ingest(mut self, config: IngestConfig, telemetry: &weir_api::Telemetry) -> Self {
        self.store.set_ingest_config(config.clone());
        self.ingestor = Ingestor::new(config, telemetry);
        self
    }

    /// The ingest gate (limits, quotas, metrics).
    pub fn ingestor(&self) -> &Ingestor {
        &self.ingestor
    }

    /// Sets the load shedding of policy syncs and API reads.
    pub fn with_overload(mut self, config: crate::shed::OverloadConfig) -> Self {
        self.sync_gate =
            crate::shed::Gate::new("sync", config.sync_max_in_flight, config.retry_after);
        self.read_gate =
            crate::shed::Gate::new("read", config.read_max_in_flight, config.retry_after);
        self
    }

    /// The gate of policy syncs (HTTP and gRPC).
    pub fn sync_gate(&self) -> &std::sync::Arc<crate::shed::Gate> {
        &self.sync_gate
    }

    /// The gate of authenticated API reads.
    pub fn read_gate(&self) -> &std::sync::Arc<crate::shed::Gate> {
        &self.read_gate
    }

    /// Sets the policy validator used on create/update/accept.
    pub fn with_policy_check(mut self, check: PolicyCheck) -> Self {
        self.check = Some(check);
        self
    }

    /// The deployment's sketch key: every value hash in the catalog is keyed with it. Only
    /// edges get it (`GET /api/v1/sketch-key`); it is never stored in the database.
    pub fn sketch_key(&self) -> SketchKey {
        self.sketch_key
    }

    /// Sets after how long without a sync an edge is shown as stale (three sync intervals;
    /// default 90 s).
    pub fn with_stale_after(mut self, secs: i64) -> Self {
        self.stale_after_secs = secs.max(1);
        self
    }

    /// After how long without a sync an edge is stale, in seconds.
    pub fn stale_after_secs(&self) -> i64 {
        self.stale_after_secs
    }

    /// The underlying store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Merges a summary from this process (the local `catalog` exporter) into the
    /// catalog: one transaction, under the store's caps (no per-request checks: it was
    /// built here).
    pub fn ingest(&self, summary: &CatalogSummary) -> Result<(), CatalogError> {
        crate::ingest::merge_into(
            &self.store,
            &self.rekeyed(summary),
            None,
            self.ingestor.config(),
        )
    }

    /// `summary` as it may merge with the catalog: as it is when hashed under the
    /// deployment's sketch key; else (an edge that has not fetched the key yet) with its
    /// value hashes dropped, counts kept, as hashes of different keys never merge.
    pub fn rekeyed<'a>(&self, summary: &'a CatalogSummary) -> std::borrow::Cow<'a, CatalogSummary> {
        if summary.sketch_key_id == self.sketch_key.id() {
            return std::borrow::Cow::Borrowed(summary);
        }
        tracing::info!(
            key_id = %summary.sketch_key_id,
            "summary hashed under another sketch key: its value hashes are dropped"
        );
        let mut s = summary.clone();
        s.forget_value_hashes();
        std::borrow::Cow::Owned(s)
    }

    /// Every service's stored summary (what is staged written first). A row that does not
    /// read back is left out (and logged) rather than failing every view. Served from the
    /// decoded rows in memory while no other connection changed the file.
    pub fn catalog(&self) -> Result<crate::staging::CatalogRows, CatalogError> {
        self.store.decoded_catalog()
    }

    /// The services with their volumes.
    pub fn services(&self) -> Result<Vec<ServiceOverview>, CatalogError> {
        Ok(self
            .catalog()?
            .into_iter()
            .map(|(service, (s, first, last))| ServiceOverview {
                service,
                logs_items: s.logs.volume.items,
                logs_bytes: s.logs.volume.bytes,
                traces_items: s.traces.volume.items,
                traces_bytes: s.traces.volume.bytes,
                metrics_items: s.metrics.volume.items,
                metrics_bytes: s.metrics.volume.bytes,
                templates: s.logs.templates.len(),
                unsummarised: crate::units::UnsummarisedSignals::of(&s),
                first_seen: first,
                last_seen: last,
            })
            .collect())
    }

    /// One service's summary.
    pub fn service(&self, name: &str) -> Result<ServiceSummary, ControlError> {
        self.catalog()?
            .remove(name)
            .map(|(s, _, _)| (*s).clone())
            .ok_or_else(|| ControlError::NotFound {
                what: "service",
                id: name.to_string(),
            })
    }

    /// The advice: open findings (largest ledger saving first, without dismissed ones),
    /// accepted ones with estimated against measured savings, withheld candidates and the
    /// savings ledger. One computation serves the overview, the findings page, the CLI
    /// report and the API, so they show the same numbers.
    pub fn advice(&self) -> Result<Advice, CatalogError> {
        // Written and checked for other connections' changes first, so the generation is
        // current; one computation at a time, shared by requests that wait for it.
        let catalog = self.catalog()?;
        let mut cache = self.advice_cache.lock().unwrap_or_else(|e| e.into_inner());
        let generation = self.store.generation_now();
        if let Some((g, a)) = cache.as_ref() {
            if *g == generation {
                return Ok(a.clone());
            }
        }
        let advice = self.compute_advice(catalog)?;
        *cache = Some((generation, advice.clone()));
        Ok(advice)
    }

    fn compute_advice(&self, catalog: crate::staging::CatalogRows) -> Result<Advice, CatalogError> {
        let dismissed = self.store.dismissed()?;
        let statuses = self.store.policy_statuses()?;
        let existing: Vec<ExistingPolicy> = self
            .store
            .policies()?
            .into_iter()
            .map(|p| {
                let mine = statuses.iter().filter(|s| s.policy_id == p.id);
                let (enforced_hits, shadow_hits) =
                    mine.fold((0, 0), |(e, s), st| (e + st.hits, s + st.shadow_hits));
                ExistingPolicy {
                    id: p.id,
                    body: p.body,
                    shadow: p.shadow,
                    enabled: p.enabled,
                    enforced_hits,
                    shadow_hits,
                }
            })
            .collect();
        let catalog: BTreeMap<String, ServiceSummary> = catalog
            .into_iter()
            .map(|(k, (s, _, _))| (k, std::sync::Arc::unwrap_or_clone(s)))
            .collect();
        let mut advice = advise(&catalog, &existing, &dismissed, &self.thresholds);
        let prom = crate::prom_findings::advise(
            &self.store.prometheus_snapshots()?,
            &existing,
            &dismissed,
            &self.thresholds,
        );
        crate::advice::merge_prometheus(&mut advice, prom);
        Ok(advice)
    }

    /// Current open findings, largest saving first, without dismissed ones and without those
    /// whose suggested policy was already accepted.
    pub fn findings(&self) -> Result<Vec<Finding>, CatalogError> {
        Ok(self.advice()?.findings)
    }

    /// Turns a finding's suggestion into a policy (`shadow`: count only, drop nothing).
    pub fn accept(
        &self,
        finding_id: &str,
        shadow: bool,
        actor: &str,
    ) -> Result<StoredPolicy, ControlError> {
        let f = self
            .findings()?
            .into_iter()
            .find(|f| f.id == finding_id)
            .ok_or_else(|| ControlError::NotFound {
                what: "finding",
                id: finding_id.to_string(),
            })?;
        self.validate(&f.policy)?;
        let now = now_secs();
        let p = StoredPolicy {
            id: f.id.clone(),
            name: f.policy["name"].as_str().unwrap_or(&f.title).to_string(),
            body: f.policy.clone(),
            enabled: true,
            shadow,
            origin: format!("suggestion:{}", f.id),
            created_at: now,
            modified_at: now,
        };
        self.store.put_policy(&p, actor, "suggestion.accept")?;
        Ok(p)
    }

    /// Dismisses a finding.
    pub fn dismiss(&self, finding_id: &str, actor: &str) -> Result<(), CatalogError> {
        self.store.dismiss(finding_id, actor)
    }

    fn validate(&self, body: &serde_json::Value) -> Result<(), ControlError> {
        let id = body.get("id").and_then(|v| v.as_str()).unwrap_or("");
        if id.is_empty() {
            return Err(ControlError::Invalid("policy: id: required".into()));
        }
        if body
            .get("name")
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .is_empty()
        {
            return Err(ControlError::Invalid(format!(
                "policy {id}: name: required"
            )));
        }
        if let Some(check) = &self.check {
            check(body).map_err(|e| ControlError::Invalid(format!("policy {id}: {e}")))?;
        }
        Ok(())
    }

    /// Creates a policy from a document; fails when the id exists.
    pub fn create_policy(
        &self,
        body: serde_json::Value,
        shadow: bool,
        actor: &str,
    ) -> Result<StoredPolicy, ControlError> {
        self.validate(&body)?;
        let id = body["id"].as_str().unwrap_or_default().to_string();
        if self.store.policy(&id)?.is_some() {
            return Err(ControlError::Conflict { what: "policy", id });
        }
        let now = now_secs();
        let p = StoredPolicy {
            name: body["name"].as_str().unwrap_or_default().to_string(),
            enabled: body
                .get("enabled")
                .and_then(|v| v.as_bool())
                .unwrap_or(true),
            id,
            body,
            shadow,
            origin: "user".into(),
            created_at: now,
            modified_at: now,
        };
        self.store.put_policy(&p, actor, "policy.create")?;
        Ok(p)
    }

    /// Replaces a policy's document and/or switches (`enabled`, `shadow`).
    pub fn update_policy(
        &self,
        id: &str,
        body: Option<serde_json::Value>,
        enabled: Option<bool>,
        shadow: Option<bool>,
        actor: &str,
    ) -> Result<StoredPolicy, ControlError> {
        let mut p = self
            .store
            .policy(id)?
            .ok_or_else(|| ControlError::NotFound {
                what: "policy",
                id: id.to_string(),
            })?;
        if let Some(b) = body {
            self.validate(&b)?;
            if b["id"].as_str() != Some(id) {
                return Err(ControlError::Invalid(format!(
                    "policy {id}: id: the document's id {:?} differs from the policy's",
                    b["id"].as_str().unwrap_or("")
                )));
            }
            p.name = b["name"].as_str().unwrap_or_default().to_string();
            p.body = b;
        }
        if let Some(e) = enabled {
            p.enabled = e;
        }
        if let Some(s) = shadow {
            p.shadow = s;
        }
        p.modified_at = now_secs();
        self.store.put_policy(&p, actor, "policy.update")?;
        Ok(p)
    }

    /// Deletes a policy.
    pub fn delete_policy(&self, id: &str, actor: &str) -> Result<StoredPolicy, ControlError> {
        self.store
            .delete_policy(id, actor)?
            .ok_or_else(|| ControlError::NotFound {
                what: "policy",
                id: id.to_string(),
            })
    }

    /// Deletes everything the catalog knows about a service (audited).
    pub fn delete_service(&self, service: &str, actor: &str) -> Result<usize, ControlError> {
        let n = self.store.delete_service(service)?;
        if n == 0 {
            return Err(ControlError::NotFound {
                what: "service",
                id: service.to_string(),
            });
        }
        // The audit names the service by a keyed fingerprint: the erasure leaves no trace of
        // the name itself, and whoever holds the sketch key can still tell which it was.
        let target = format!("service#{:016x}", self.sketch_key.hash(service.as_bytes()));
        self.store
            .audit(actor, "catalog.delete_service", &target, None, None)?;
        Ok(n)
    }

    /// The policy set served to edges, rebuilt only when the policies changed (changes by
    /// another process, e.g. `weir admin`, are seen within a second).
    pub fn served_set(&self) -> Result<std::sync::Arc<crate::sync::Served>, CatalogError> {
        let generation = self.store.policy_generation();
        let mut cache = self.served_cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((g, s)) = cache.as_ref() {
            if *g == generation {
                return Ok(s.clone());
            }
        }
        let served = std::sync::Arc::new(crate::sync::build_served(&self.store.served_forms()?));
        *cache = Some((generation, served.clone()));
        Ok(served)
    }
}
