//! What keeps one control plane fast under a fleet of edges (docs/ARCHITECTURE.md,
//! "The control plane at fleet scale"):
//!
//! - **Staged ingest.** An accepted summary is checked against the catalog's service caps
//!   and the edge's summary sequence, then merged into an in-memory delta per service;
//!   [`Store::persist`] writes each service that has a delta (one transaction for all of
//!   them, the edges' sequence numbers in the same one), merging the delta into the stored
//!   row under the same caps as before. The ingest request calls it before it answers, so
//!   requests that arrive while a transaction is written share the next one (group commit)
//!   and a service is written once per transaction, not once per request.
//! - **Idempotent ingest.** An edge numbers its summaries per stream (a random id per
//!   exporter start) in `x-weir-summary-seq: <stream>:<n>`; a number at or below the
//!   stream's last applied one is acknowledged and not merged again, so a summary sent
//!   again after a timeout is never counted twice. The check and the merge happen under one
//!   lock, so two copies of one summary racing each other merge once.
//! - **Decoded catalog.** The rows as last written or read, decoded, serve the views; they
//!   are used only while the connection's `PRAGMA data_version` says no other connection
//!   (the CLI, a local `catalog` exporter) changed the file.
//! - **Token cache, sync status buffer, generations.** Token lookups are answered from
//!   memory (dropped on create, revoke, retention and any change by another connection,
//!   which is checked at least once a second); sync reports are added up in memory and
//!   written with the persister; every change that views depend on bumps a generation, so
//!   the advice and the served policy set are recomputed only when something changed.
//!
//! An acknowledged summary is in the database (a crash does not lose it; it is never
//! counted twice). The persister also runs every `persist_interval` and at shutdown, for
//! the buffered sync reports and anything staged by a request whose write failed.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use crate::db::Connection;
use weir_summary::summary::{CatalogSummary, MergeCaps, ServiceSummary};

use crate::ingest::IngestConfig;
use crate::store::{EdgeInfo, Store, TokenInfo};
use crate::CatalogError;

mod persist;

/// Every stored service, decoded: (summary, first seen, last seen) by name.
pub type CatalogRows = BTreeMap<String, (Arc<ServiceSummary>, i64, i64)>;

type Written = Vec<(String, ServiceSummary, i64, i64)>;

/// A staged delta's key: the service, and, on a database several control planes share,
/// the numbered summary it came from (edge, stream, number), so that a summary another
/// replica applied first is left out when the delta is written (see `persist`). On
/// SQLite every summary of a service adds to one delta (`None`).
type DeltaKey = (String, Option<(String, String, u64)>);
type Prevs<'a> = HashMap<&'a str, (Arc<ServiceSummary>, i64, i64)>;

/// How often changes by other connections are looked for when nothing else asks.
const WATCH_EVERY: Duration = Duration::from_secs(1);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One token as looked up.
#[derive(Clone)]
pub(crate) struct CachedToken {
    pub(crate) info: TokenInfo,
    pub(crate) hash: Vec<u8>,
}

/// Adds of one service not written yet.
struct Delta {
    add: ServiceSummary,
    first: i64,
    last: i64,
}

/// Sync reports of one edge instance not written yet.
struct PendingSync {
    info: EdgeInfo,
    /// policy id -> (hits, misses, latest errors)
    statuses: BTreeMap<String, (i64, i64, Vec<String>)>,
}

#[derive(Default)]
struct Staged {
    /// Whether the index below was read from the database (and is current).
    loaded: bool,
    /// Services in the catalog (stored or staged).
    services: HashSet<String>,
    /// Services each edge reported.
    edge_services: HashMap<String, HashSet<String>>,
    /// (edge, stream) -> last applied sequence number.
    streams: HashMap<(String, String), u64>,
    deltas: HashMap<DeltaKey, Delta>,
    new_pairs: Vec<(String, String)>,
    dirty_streams: HashSet<(String, String)>,
}

#[derive(Default)]
struct Decoded {
    /// The connection's data_version these rows are valid for.
    data_version: Option<i64>,
    /// Whether `rows` holds every stored service.
    complete: bool,
    rows: CatalogRows,
}

#[derive(Default)]
struct Watch {
    data_version: Option<i64>,
    checked: Option<Instant>,
}

/// The store's caches and staging (see the module documentation).
pub(crate) struct Fast {
    generation: AtomicU64,
    policy_generation: AtomicU64,
    watch: Mutex<Watch>,
    tokens: Mutex<HashMap<Vec<u8>, CachedToken>>,
    /// Token id -> unix second of the last `last_used_at` write.
    touched: Mutex<HashMap<String, i64>>,
    /// Token id -> `last_used_at` not written yet (written by the next persist).
    touches: Mutex<HashMap<String, i64>>,
    staged: Mutex<Staged>,
    /// Set when the staged index must be read again (never taken with the connection
    /// locked: staging takes the connection with the staged lock held).
    index_stale: AtomicBool,
    persisting: Mutex<()>,
    /// The database is shared with other control planes (PostgreSQL): staged summaries
    /// are kept apart by number until written (see [`DeltaKey`]).
    pub(crate) shared: AtomicBool,
    /// Requests that staged and will persist before they answer (see
    /// [`Store::will_persist`]).
    will_persist: AtomicUsize,
    decoded: Mutex<Decoded>,
    syncs: Mutex<HashMap<String, PendingSync>>,
    config: RwLock<IngestConfig>,
}

impl Default for Fast {
    fn default() -> Self {
        Fast {
            generation: AtomicU64::new(1),
            policy_generation: AtomicU64::new(1),
            watch: Mutex::default(),
            tokens: Mutex::default(),
            touched: Mutex::default(),
            touches: Mutex::default(),
            staged: Mutex::default(),
            index_stale: AtomicBool::new(false),
            persisting: Mutex::new(()),
            shared: AtomicBool::new(false),
            will_persist: AtomicUsize::new(0),
            decoded: Mutex::default(),
            syncs: Mutex::default(),
            config: RwLock::new(IngestConfig::default()),
        }
    }
}

/// A caller that stages and then persists before it answers (an ingest request); while
/// one is held, views do not write what is staged themselves (that caller will).
pub struct WillPersist<'a>(&'a AtomicUsize);

impl Drop for WillPersist<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// What became of a staged summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Staging {
    /// Merged (written with the next persist).
    Applied,
    /// Its sequence number was applied before: acknowledged, not merged again.
    Duplicate,
}

/// The header an edge numbers its summaries in: `<stream>:<n>`.
pub const SEQ_HEADER: &str = "x-weir-summary-seq";

/// A summary's place in its edge's sequence: `<stream>:<n>` (stream: 1 to 64 of
/// `0-9 a-z A-Z - _`, n > 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SummarySeq {
    /// The exporter run's stream id.
    pub stream: String,
    /// The summary's number in it, from 1.
    pub seq: u64,
}

impl SummarySeq {
    /// Parses the `x-weir-summary-seq` header's value.
    pub fn parse(v: &str) -> Result<SummarySeq, String> {
        let (stream, n) = v
            .split_once(':')
            .ok_or_else(|| format!("x-weir-summary-seq: {v:?} is not <stream>:<number>"))?;
        if stream.is_empty()
            || stream.len() > 64
            || !stream
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(format!(
                "x-weir-summary-seq: stream {stream:?} is not 1 to 64 of 0-9 a-z A-Z - _"
            ));
        }
        let seq: u64 = n
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("x-weir-summary-seq: {n:?} is not a number above 0"))?;
        Ok(SummarySeq {
            stream: stream.to_string(),
            seq,
        })
    }
}

/// A stored body read back: a summary, or a fresh one for a row that is oversized or does
/// not read back (corrupt, or written by a build without today's checks).
pub(crate) fn decode_stored(service: &str, old: &str, cfg: &IngestConfig) -> ServiceSummary {
    if old.len() > cfg.max_service_bytes.saturating_mul(2) {
        tracing::warn!(
            service,
            bytes = old.len(),
            "stored summary oversized; replaced"
        );
        return ServiceSummary::default();
    }
    serde_json::from_str(old).unwrap_or_else(|e| {
        tracing::warn!(service, error = %e, "stored summary unreadable; replaced");
        ServiceSummary::default()
    })
}

/// `prev` with `add` merged in under the caps of `cfg`, and its JSON: past
/// `max_service_bytes` the service takes no new templates, names or keys (counts of those
/// it holds still add up).
pub(crate) fn merge_service(
    prev: &ServiceSummary,
    add: &ServiceSummary,
    cfg: &IngestConfig,
) -> Result<(ServiceSummary, String), CatalogError> {
    let mut merged = prev.clone();
    merged.merge_within(add, &cfg.limits.store_caps());
    let body = serde_json::to_string(&merged)?;
    if body.len() <= cfg.max_service_bytes {
        return Ok((merged, body));
    }
    let frozen = MergeCaps {
        services: usize::MAX,
        templates: prev.logs.templates.len(),
        names: prev.traces.spans.len().min(prev.metrics.metrics.len()),
        attribute_keys: 0,
    };
    let mut merged = prev.clone();
    merged.merge_within(add, &frozen);
    let body = serde_json::to_string(&merged)?;
    Ok((merged, body))
}

impl Fast {
    /// Something views depend on changed.
    pub(crate) fn bump(&self) {
        self.generation.fetch_add(1, Ordering::Relaxed);
    }

    /// The policies changed.
    pub(crate) fn bump_policies(&self) {
        self.policy_generation.fetch_add(1, Ordering::Relaxed);
        self.bump();
    }

    /// Tokens changed: lookups go to the database again.
    pub(crate) fn forget_tokens(&self) {
        lock(&self.tokens).clear();
    }

    fn forget_catalog(&self) {
        *lock(&self.decoded) = Decoded::default();
        self.index_stale.store(true, Ordering::Relaxed);
    }

    /// Everything read from the database is dropped (another connection changed it).
    fn forget_all(&self) {
        self.forget_tokens();
        self.forget_catalog();
        self.bump_policies();
    }
}

impl Store {
    /// The generation of everything the views depend on (catalog, policies, statuses,
    /// dismissals, sources); it changes whenever one of them does.
    pub fn generation(&self) -> u64 {
        self.watch_external(false);
        self.fast.generation.load(Ordering::Relaxed)
    }

    /// As [`Store::generation`], after looking for other connections' changes now.
    pub fn generation_now(&self) -> u64 {
        self.watch_external(true);
        self.fast.generation.load(Ordering::Relaxed)
    }

    /// The generation of the policies.
    pub fn policy_generation(&self) -> u64 {
        self.watch_external(false);
        self.fast.policy_generation.load(Ordering::Relaxed)
    }

    /// Sets the ingest limits the staged merges and the persister apply.
    pub fn set_ingest_config(&self, cfg: IngestConfig) {
        *self.fast.config.write().unwrap_or_else(|e| e.into_inner()) = cfg;
    }

    fn ingest_config(&self) -> IngestConfig {
        self.fast
            .config
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Looks at the connection's data_version (at most once a second unless `now`): when
    /// another connection committed, every cache is dropped.
    fn watch_external(&self, now: bool) {
        {
            let w = lock(&self.fast.watch);
            if !now && w.checked.is_some_and(|t| t.elapsed() < WATCH_EVERY) {
                return;
            }
        }
        if now {
            let conn = self.lock();
            self.watch_with(&conn);
            return;
        }
        // Not forced (token checks on the async workers come here): a connection busy with
        // a write is not waited for; the next caller that finds it free looks, and every
        // persist looks before it writes.
        if let Some(conn) = self.try_lock() {
            self.watch_with(&conn);
        }
    }

    /// As [`Store::watch_external`], with the connection locked by the caller; returns the
    /// data_version.
    pub(crate) fn watch_with(&self, conn: &Connection) -> Option<i64> {
        let dv: Option<i64> = conn.data_version().ok();
        let mut w = lock(&self.fast.watch);
        w.checked = Some(Instant::now());
        if dv.is_some() && w.data_version.is_some() && w.data_version != dv {
            drop(w);
            tracing::debug!("catalog store changed by another connection: caches dropped");
            self.fast.forget_all();
            w = lock(&self.fast.watch);
        }
        w.data_version = dv;
        dv
    }

    // ---- tokens ----

    /// The live token with this hash, from memory when it was looked up before.
    pub(crate) fn token_cached(
        &self,
        hash: &[u8],
    ) -> Result<Option<(TokenInfo, Vec<u8>)>, CatalogError> {
        self.watch_external(false);
        if let Some(t) = lock(&self.fast.tokens).get(hash) {
            return Ok(Some((t.info.clone(), t.hash.clone())));
        }
        let found = self.token_by_hash(hash)?;
        if let Some((info, stored)) = &found {
            let mut cache = lock(&self.fast.tokens);
            if cache.len() > 100_000 {
                cache.clear();
            }
            cache.insert(
                hash.to_vec(),
                CachedToken {
                    info: info.clone(),
                    hash: stored.clone(),
                },
            );
        }
        Ok(found)
    }

    /// Records a token's use at most once a minute, buffered: written by the next
    /// persist (no database write on the request path). `stored` is the `last_used_at` the
    /// database held when the token was read: the minute counts from it until this process
    /// has recorded a use of its own, so a restart (or a restored copy) does not record a
    /// use the stored one already covers.
    pub(crate) fn touch_token_cached(
        &self,
        id: &str,
        stored: Option<i64>,
        now: i64,
    ) -> Result<(), CatalogError> {
        {
            let mut t = lock(&self.fast.touched);
            let last = t.get(id).copied().or(stored);
            if last.is_some_and(|at| now - at < 60) {
                return Ok(());
            }
            if t.len() > 100_000 {
                t.clear();
            }
            t.insert(id.to_string(), now);
        }
        let mut q = lock(&self.fast.touches);
        let at = q.entry(id.to_string()).or_insert(now);
        *at = (*at).max(now);
        Ok(())
    }

    /// Token uses buffered and not written yet: id -> unix second.
    pub(crate) fn pending_touches(&self) -> HashMap<String, i64> {
        lock(&self.fast.touches).clone()
    }

    // ---- staged ingest ----

    fn load_index(&self, staged: &mut Staged) -> Result<(), CatalogError> {
        let conn = self.lock();
        let services: Vec<String> = {
            let mut st = conn.prepare("SELECT DISTINCT service FROM summaries")?;
            let r = st.query_map([], |r| r.get(0))?;
            r.collect::<Result<_, _>>()?
        };
        let pairs: Vec<(String, String)> = {
            let mut st = conn.prepare("SELECT edge, service FROM edge_services")?;
            let r = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            r.collect::<Result<_, _>>()?
        };
        let streams: Vec<(String, String, i64)> = {
            let mut st = conn.prepare("SELECT edge, stream, seq FROM ingest_streams")?;
            let r = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            r.collect::<Result<_, _>>()?
        };
        drop(conn);
        staged.services = services.into_iter().collect();
        staged
            .services
            .extend(staged.deltas.keys().map(|k| k.0.clone()));
        staged.edge_services.clear();
        for (e, s) in pairs.into_iter().chain(staged.new_pairs.iter().cloned()) {
            staged.edge_services.entry(e).or_default().insert(s);
        }
        for (e, s, n) in streams {
            let v = staged.streams.entry((e, s)).or_insert(0);
            *v = (*v).max(n.max(0) as u64);
        }
        staged.loaded = true;
        Ok(())
    }

    /// Checks `summary` (from `edge`, numbered `seq`) against the catalog's caps and
    /// merges it into the staged deltas: all of it or, with an error, nothing. Written by
    /// the next [`Store::persist`].
    pub fn stage(
        &self,
        summary: &CatalogSummary,
        edge: Option<&str>,
        seq: Option<&SummarySeq>,
        seen_at: i64,
    ) -> Result<Staging, CatalogError> {
        let cfg = self.ingest_config();
        self.watch_external(false);
        let mut staged = lock(&self.fast.staged);
        if !staged.loaded || self.fast.index_stale.swap(false, Ordering::Relaxed) {
            self.load_index(&mut staged)?;
        }
        let stream_key = match (edge, seq) {
            (Some(e), Some(s)) => {
                let k = (e.to_string(), s.stream.clone());
                if staged.streams.get(&k).is_some_and(|last| *last >= s.seq) {
                    return Ok(Staging::Duplicate);
                }
                Some((k, s.seq))
            }
            _ => None,
        };
        // The caps, before anything changes.
        if let Some(e) = edge {
            let known = staged.edge_services.get(e);
            let before = known.map_or(0, HashSet::len);
            let added = summary
                .services
                .keys()
                .filter(|s| known.is_none_or(|k| !k.contains(*s)))
                .count();
            let n = before + added;
            if added > 0 && n > cfg.max_services_per_edge {
                return Err(CatalogError::Limit(format!(
                    "services: edge {e:?} would report {n} services, the per-edge limit is {}",
                    cfg.max_services_per_edge
                )));
            }
        }
        let new_services = summary
            .services
            .keys()
            .filter(|s| !staged.services.contains(*s))
            .count();
        if new_services > 0 && staged.services.len() + new_services > cfg.max_services {
            return Err(CatalogError::Limit(format!(
                "services: the catalog holds {} services, the limit is {}",
                staged.services.len(),
                cfg.max_services
            )));
        }
        let caps = cfg.limits.store_caps();
        let numbered = match (&stream_key, self.fast.shared.load(Ordering::Relaxed)) {
            (Some(((e, s), n)), true) => Some((e.clone(), s.clone(), *n)),
            _ => None,
        };
        for (service, add) in &summary.services {
            staged.services.insert(service.clone());
            if let Some(e) = edge {
                if staged
                    .edge_services
                    .entry(e.to_string())
                    .or_default()
                    .insert(service.clone())
                {
                    staged.new_pairs.push((e.to_string(), service.clone()));
                }
            }
            let key = (service.clone(), numbered.clone());
            match staged.deltas.get_mut(&key) {
                Some(d) => {
                    d.add.merge_within(add, &caps);
                    d.last = d.last.max(seen_at);
                }
                None => {
                    let mut d = ServiceSummary::default();
                    d.merge_within(add, &caps);
                    staged.deltas.insert(
                        key,
                        Delta {
                            add: d,
                            first: seen_at,
                            last: seen_at,
                        },
                    );
                }
            }
        }
        if let Some((k, n)) = stream_key {
            staged.streams.insert(k.clone(), n);
            staged.dirty_streams.insert(k);
        }
        Ok(Staging::Applied)
    }

    /// Marks the caller as one that persists what it stages before it answers (held from
    /// before [`Store::stage`] until after [`Store::persist`]).
    pub fn will_persist(&self) -> WillPersist<'_> {
        self.fast.will_persist.fetch_add(1, Ordering::AcqRel);
        WillPersist(&self.fast.will_persist)
    }

    /// Buffers one sync report (written by the next [`Store::persist`]): the edge's row,
    /// and its per-policy counts added up.
    pub fn stage_sync(&self, edge: &EdgeInfo, statuses: &[(String, i64, i64, Vec<String>)]) {
        let mut syncs = lock(&self.fast.syncs);
        let p = syncs
            .entry(edge.instance_id.clone())
            .or_insert_with(|| PendingSync {
                info: edge.clone(),
                statuses: BTreeMap::new(),
            });
        p.info = edge.clone();
        for (id, hits, misses, errors) in statuses {
            let s = p.statuses.entry(id.clone()).or_insert((0, 0, Vec::new()));
            s.0 = s.0.saturating_add(*hits);
            s.1 = s.1.saturating_add(*misses);
            s.2 = errors.clone();
        }
        if !statuses.is_empty() {
            self.fast.bump();
        }
    }

    /// Every stored service, decoded: from memory while no other connection changed the
    /// file (looked for now, or, while the connection is busy with a write, at the last
    /// look, at most a second ago: every acknowledged summary is in the decoded rows once
    /// written) and nothing is staged that no ingest request is about to write; else read
    /// after writing what is staged.
    pub fn decoded_catalog(&self) -> Result<CatalogRows, CatalogError> {
        // Looked for now when the connection is free, else the last look is used.
        let seen = match self.try_lock() {
            Some(conn) => self.watch_with(&conn),
            None => lock(&self.fast.watch).data_version,
        };
        // Staged deltas no ingest request is about to write (a direct caller of
        // `stage`, a failed write) are written first.
        let unwritten = self.fast.will_persist.load(Ordering::Acquire) == 0
            && !lock(&self.fast.staged).deltas.is_empty();
        if !unwritten {
            let d = lock(&self.fast.decoded);
            if d.complete && d.data_version.is_some() && d.data_version == seen {
                return Ok(d.rows.clone());
            }
        }
        self.persist()?;
        let cfg = self.ingest_config();
        let dv = {
            let conn = self.lock();
            self.watch_with(&conn)
        };
        {
            let d = lock(&self.fast.decoded);
            if d.complete && d.data_version == dv {
                return Ok(d.rows.clone());
            }
        }
        let _one = lock(&self.fast.persisting);
        let conn = self.lock();
        let dv = self.watch_with(&conn);
        let mut rows = BTreeMap::new();
        {
            let mut st = conn.prepare(
                "SELECT service, body, first_seen, last_seen FROM summaries ORDER BY service, signal",
            )?;
            let it = st.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })?;
            for row in it {
                let (service, body, first, last) = row?;
                if body.len() > cfg.max_service_bytes.saturating_mul(2) {
                    tracing::warn!(service, "stored summary oversized; skipped");
                    continue;
                }
                match serde_json::from_str::<ServiceSummary>(&body) {
                    Ok(s) => {
                        rows.insert(service, (Arc::new(s), first, last));
                    }
                    Err(e) => {
                        tracing::warn!(service, error = %e, "stored summary unreadable; skipped")
                    }
                }
            }
        }
        drop(conn);
        *lock(&self.fast.decoded) = Decoded {
            data_version: dv,
            complete: true,
            rows: rows.clone(),
        };
        Ok(rows)
    }

    /// Runs `f` on the connection after writing what is staged, then drops what was read
    /// from the database (for changes to the catalog's rows other than staged merges:
    /// deletions, erasure, retention).
    pub(crate) fn exclusive<R>(&self, f: impl FnOnce(&Connection) -> R) -> Result<R, CatalogError> {
        let _one = lock(&self.fast.persisting);
        self.persist_locked()?;
        let r = f(&self.lock());
        self.fast.forget_catalog();
        self.fast.forget_tokens();
        self.fast.bump_policies();
        Ok(r)
    }
}
