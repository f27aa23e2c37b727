//! Taking summaries from edges (`POST /api/v1/ingest`) as hostile input: a size cap on the
//! body, a per-token quota on requests and bytes per minute, a strict read (sketches are
//! checked and rebuilt as they are read, every error names its JSON path), the limits of
//! [`SummaryLimits`], then one all-or-nothing merge under the store's caps.
//!
//! ```yaml
//! extensions:
//!   control_plane:
//!     ingest:
//!       max_request_bytes: 8388608     # bigger bodies get 413
//!       requests_per_minute: 600       # per token; over it: 429 + Retry-After
//!       bytes_per_minute: 268435456    # per token
//!       max_services: 10000            # in the whole catalog
//!       max_services_per_edge: 2000    # services one edge name may report
//!       max_service_bytes: 8388608     # a stored service summary stops taking new entries
//!       max_in_flight: 64              # requests being read or merged; more get 503 + Retry-After
//!       persist_interval: 1s           # buffered sync reports are written this often
//!       limits:                        # per request; see weir_summary::validate
//!         max_services: 1000
//! ```

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Deserialize;
use weir_api::{Counter, Telemetry};
use weir_summary::summary::CatalogSummary;
use weir_summary::validate::{validate, SummaryLimits};

fn default_max_request_bytes() -> usize {
    8 * 1024 * 1024
}
fn default_requests_per_minute() -> u32 {
    600
}
fn default_bytes_per_minute() -> u64 {
    256 * 1024 * 1024
}
fn default_max_services() -> usize {
    10_000
}
fn default_max_services_per_edge() -> usize {
    2_000
}
fn default_max_service_bytes() -> usize {
    8 * 1024 * 1024
}
fn default_max_in_flight() -> usize {
    64
}
fn default_persist_interval() -> Duration {
    Duration::from_secs(1)
}

/// Limits of `POST /api/v1/ingest` (under `extensions.control_plane.ingest`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestConfig {
    /// Largest request body in bytes; a bigger one is refused with 413 before it is read
    /// whole. Default: 8388608 (8 MiB).
    #[serde(default = "default_max_request_bytes")]
    pub max_request_bytes: usize,
    /// Ingest requests one token may make per minute; more get 429 with Retry-After.
    /// Default: 600. 0: no limit.
    #[serde(default = "default_requests_per_minute")]
    pub requests_per_minute: u32,
    /// Body bytes one token may send per minute; more get 429 with Retry-After.
    /// Default: 268435456 (256 MiB). 0: no limit.
    #[serde(default = "default_bytes_per_minute")]
    pub bytes_per_minute: u64,
    /// Services the catalog holds at most; a request adding more is refused (400).
    /// Default: 10000.
    #[serde(default = "default_max_services")]
    pub max_services: usize,
    /// Services one edge (the edge name its token is bound to) may report; a request
    /// adding more is refused (400). Default: 2000.
    #[serde(default = "default_max_services_per_edge")]
    pub max_services_per_edge: usize,
    /// Size in bytes (JSON) past which a stored service summary takes no new templates,
    /// names or keys (counts of those it has still add up). Default: 8388608.
    #[serde(default = "default_max_service_bytes")]
    pub max_service_bytes: usize,
    /// Ingest requests being read and merged at once; one more is answered 503 with
    /// Retry-After at once (the edge keeps its summary and sends it again), so an overload
    /// sheds load instead of growing latency until edges time out. Default: 64.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    /// How often the persister writes what is buffered (sync reports, and anything still
    /// staged) to the database; an ingest request writes what it staged before it is
    /// acknowledged. Default: 1s.
    #[serde(default = "default_persist_interval", with = "humantime_serde")]
    pub persist_interval: Duration,
    /// Limits on each request's summary (services, templates, names, keys, name lengths,
    /// counts). Default: see `weir_summary::validate::SummaryLimits`.
    #[serde(default)]
    pub limits: SummaryLimits,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            max_request_bytes: default_max_request_bytes(),
            requests_per_minute: default_requests_per_minute(),
            bytes_per_minute: default_bytes_per_minute(),
            max_services: default_max_services(),
            max_services_per_edge: default_max_services_per_edge(),
            max_service_bytes: default_max_service_bytes(),
            max_in_flight: default_max_in_flight(),
            persist_interval: default_persist_interval(),
            limits: SummaryLimits::default(),
        }
    }
}

/// Why an ingest request was refused.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The body or the summary breaks a limit or does not parse: 400.
    #[error("{0}")]
    Invalid(String),
    /// The token's quota for this minute is used up: 429.
    #[error("{what} quota of this token used up ({limit} per minute); retry in {}s", retry_after.as_secs())]
    Quota {
        /// `requests` or `bytes`.
        what: &'static str,
        /// The limit.
        limit: u64,
        /// When the window resets.
        retry_after: Duration,
    },
    /// Too many ingest requests in flight: 503 with Retry-After.
    #[error(
        "the control plane is busy ({0} ingest requests in flight); retry in {RETRY_BUSY_SECS}s"
    )]
    Busy(usize),
    /// The store failed: 500.
    #[error(transparent)]
    Store(#[from] crate::CatalogError),
}

struct Window {
    start: Instant,
    requests: u64,
    bytes: u64,
}

/// Seconds a shed ingest request is told to wait.
pub const RETRY_BUSY_SECS: u64 = 5;

/// One ingest request in flight (see [`Ingestor::admit`]).
pub struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The ingest gate: quotas, checks and metrics.
pub struct Ingestor {
    config: IngestConfig,
    in_flight: AtomicUsize,
    windows: Mutex<HashMap<String, Window>>,
    accepted: Counter,
    telemetry: Telemetry,
}

const WINDOW: Duration = Duration::from_secs(60);

impl Ingestor {
    /// A gate with these limits, counting into `telemetry`.
    pub fn new(config: IngestConfig, telemetry: &Telemetry) -> Ingestor {
        Ingestor {
            accepted: telemetry.counter(
                "weir_catalog_ingest_accepted",
                "Summaries the control plane took in",
                &[],
            ),
            telemetry: telemetry.clone(),
            config,
            in_flight: AtomicUsize::new(0),
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// The limits in force.
    pub fn config(&self) -> &IngestConfig {
        &self.config
    }

    fn rejected(&self, reason: &str) {
        self.telemetry
            .counter(
                "weir_catalog_ingest_rejected",
                "Ingest requests refused, by reason",
                &[("reason", reason.to_string())],
            )
            .inc();
    }

    /// Admits one more ingest request, or refuses it (503) when `max_in_flight` are being
    /// served; the slot is freed when the guard drops.
    pub fn admit(&self) -> Result<InFlight<'_>, IngestError> {
        let max = self.config.max_in_flight.max(1);
        let n = self.in_flight.fetch_add(1, Ordering::AcqRel);
        let guard = InFlight(&self.in_flight);
        if n >= max {
            drop(guard);
            self.rejected("busy");
            return Err(IngestError::Busy(max));
        }
        Ok(guard)
    }

    /// Counts a request of `bytes` against `token`'s quota for the current minute.
    pub fn charge(&self, token: &str, bytes: usize) -> Result<(), IngestError> {
        let c = &self.config;
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        // Forget windows that ended, so the map holds only tokens active this minute.
        if windows.len() > 1024 {
            windows.retain(|_, w| now.duration_since(w.start) < WINDOW);
        }
        let w = windows.entry(token.to_string()).or_insert(Window {
            start: now,
            requests: 0,
            bytes: 0,
        });
        if now.duration_since(w.start) >= WINDOW {
            *w = Window {
                start: now,
                requests: 0,
                bytes: 0,
            };
        }
        let retry_after =
            WINDOW.saturating_sub(now.duration_since(w.start)) + Duration::from_secs(1);
        let bytes = bytes as u64;
        if c.requests_per_minute > 0 && w.requests >= u64::from(c.requests_per_minute) {
            drop(windows);
            self.rejected("quota");
            return Err(IngestError::Quota {
                what: "requests",
                limit: u64::from(c.requests_per_minute),
                retry_after,
            });
        }
        if c.bytes_per_minute > 0 && w.bytes.saturating_add(bytes) > c.bytes_per_minute {
            drop(windows);
            self.rejected("quota");
            return Err(IngestError::Quota {
                what: "bytes",
                limit: c.bytes_per_minute,
                retry_after,
            });
        }
        w.requests += 1;
        w.bytes = w.bytes.saturating_add(bytes);
        Ok(())
    }

    /// Reads and checks a body; nothing is stored.
    pub fn read(&self, body: &[u8]) -> Result<CatalogSummary, IngestError> {
        if body.len() > self.config.max_request_bytes {
            self.rejected("too_large");
            return Err(IngestError::Invalid(format!(
                "body: {} bytes, the limit is {}",
                body.len(),
                self.config.max_request_bytes
            )));
        }
        let mut de = serde_json::Deserializer::from_slice(body);
        let summary: CatalogSummary = match serde_path_to_error::deserialize(&mut de)
            .map_err(|e| (e.path().to_string(), e.into_inner()))
            .and_then(|s| de.end().map(|_| s).map_err(|e| (String::new(), e)))
        {
            Ok(s) => s,
            Err((path, e)) => {
                self.rejected("parse");
                let at = if path.is_empty() || path == "." {
                    "body".to_string()
                } else {
                    path
                };
                return Err(IngestError::Invalid(format!(
                    "invalid catalog summary: {at}: {e}"
                )));
            }
        };
        let violations = validate(&summary, &self.config.limits);
        if let Some(first) = violations.first() {
            self.rejected(first.kind);
            let more = match violations.len() {
                1 => String::new(),
                n => format!(" (and {} more)", n - 1),
            };
            return Err(IngestError::Invalid(format!(
                "invalid catalog summary: {first}{more}"
            )));
        }
        Ok(summary)
    }

    /// Stages a checked summary reported by `edge` (see [`Ingestor::store_numbered`]).
    pub fn store(
        &self,
        store: &crate::store::Store,
        summary: &CatalogSummary,
        edge: Option<&str>,
    ) -> Result<crate::staging::Staging, IngestError> {
        self.store_numbered(store, summary, edge, None)
    }

    /// Stages a checked summary (reported by `edge`, numbered `seq`) into the store: all of
    /// it, or nothing when it breaks the catalog's caps. It is written by the store's next
    /// persist (see `crate::staging`); a sequence number applied before is acknowledged
    /// without merging again.
    pub fn store_numbered(
        &self,
        store: &crate::store::Store,
        summary: &CatalogSummary,
        edge: Option<&str>,
        seq: Option<&crate::staging::SummarySeq>,
    ) -> Result<crate::staging::Staging, IngestError> {
        let r = store.stage(summary, edge, seq, crate::store::now_secs());
        match &r {
            Ok(crate::staging::Staging::Applied) => {
                self.accepted.inc();
            }
            Ok(crate::staging::Staging::Duplicate) => self.rejected("duplicate"),
            Err(crate::CatalogError::Limit(_)) => self.rejected("too_many"),
            Err(_) => {}
        }
        r.map_err(|e| match e {
            crate::CatalogError::Limit(m) => IngestError::Invalid(m),
            e => IngestError::Store(e),
        })
    }
}

/// Rows of the catalog are stored per service, all signals in one document.
pub const ALL_SIGNALS: &str = "all";

/// Merges `summary` into the store under the caps of `config` and writes it: all of it or
/// nothing. A stored row that does not read back (corrupt, or written by a build without
/// today's checks) is replaced rather than failing this and every later merge.
pub fn merge_into(
    store: &crate::store::Store,
    summary: &CatalogSummary,
    edge: Option<&str>,
    config: &IngestConfig,
) -> Result<(), crate::CatalogError> {
    store.set_ingest_config(config.clone());
    store.stage(summary, edge, None, crate::store::now_secs())?;
    store.persist()?;
    Ok(())
}
