//! The edge side of `PolicyService.Sync`: polls a control plane (gRPC, or HTTP POST
//! `/v1/policy/sync` with a protobuf or JSON body), reports per-policy status, and keeps the
//! last good policy list on disk so an edge that starts while the control plane is down
//! enforces its last policies.
//!
//! Rules: a response that cannot be decoded, an HTTP error, a gRPC error or a response with
//! `error_message` never changes the policies in force. A response whose `hash` equals the
//! last one applied changes nothing. Otherwise the response's policy list replaces this
//! source's policies (`SYNC_TYPE_FULL`, or an unspecified type with a non-empty list; an
//! unspecified type with an empty list is read as "no change"). The next poll comes after the
//! server's `recommended_sync_interval_seconds`, or the configured interval when it gives none.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use prost::Message;

use crate::active::ActivePolicies;
use crate::parse::ParsedPolicy;
use crate::proto::{self, policy_service_client::PolicyServiceClient};
use crate::sync_json;

/// How a sync request travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// gRPC `tero.policy.v1.PolicyService/Sync`.
    Grpc,
    /// HTTP POST with a protobuf body.
    HttpProtobuf,
    /// HTTP POST with a JSON body.
    HttpJson,
}

/// What a sync client needs to know.
#[derive(Debug, Clone)]
pub struct SyncSettings {
    /// gRPC endpoint (`http://host:port`) or full HTTP URL (`http://host:port/v1/policy/sync`).
    pub endpoint: String,
    /// Transport.
    pub transport: Transport,
    /// Poll interval when the server recommends none.
    pub interval: Duration,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Headers (gRPC metadata) sent with every request.
    pub headers: Vec<(String, String)>,
    /// Where the last good response is kept; `None`: no cache.
    pub cache_file: Option<PathBuf>,
    /// The key the cache is encrypted with (AES-256-GCM). `None` with a `cache_file`: the
    /// key from `WEIR_POLICY_CACHE_KEY`, else the file `cache.key` beside the cache
    /// (created, mode 0600, on first use); see [`cache_key`].
    pub cache_key: Option<crate::at_rest::Key>,
    /// Sent as `ClientMetadata.resource_attributes` (service.name, service.instance.id, ...).
    pub resource_attributes: Vec<(String, String)>,
    /// Sent as `ClientMetadata.labels`.
    pub labels: Vec<(String, String)>,
}

/// Why one sync attempt failed (the policies in force stay).
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// Transport-level failure.
    #[error("sync with {endpoint} failed: {message}")]
    Transport {
        /// The endpoint.
        endpoint: String,
        /// What happened.
        message: String,
    },
    /// The server is overloaded and said when to come back (HTTP 503 or 429, gRPC
    /// UNAVAILABLE or RESOURCE_EXHAUSTED, with `Retry-After` in seconds).
    #[error("sync with {endpoint}: server busy ({status}); next try in {retry_after:?}")]
    Busy {
        /// The endpoint.
        endpoint: String,
        /// The status the server answered.
        status: String,
        /// The server's `Retry-After`.
        retry_after: Duration,
    },
    /// The server answered something unusable.
    #[error("sync with {endpoint}: bad response: {message}")]
    BadResponse {
        /// The endpoint.
        endpoint: String,
        /// What was wrong.
        message: String,
    },
}

#[derive(Default)]
struct SyncState {
    last_hash: String,
    last_sync_nanos: u64,
    reported: HashMap<String, [i64; 10]>,
}

/// One remote source.
pub struct SyncClient {
    settings: SyncSettings,
    index: usize,
    active: Arc<ActivePolicies>,
    state: Mutex<SyncState>,
    http: hyper_util::client::legacy::Client<
        weir_tls::hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
        Full<Bytes>,
    >,
    tls: weir_tls::ClientTls,
}

/// Authenticated with every sealed policy cache (see `at_rest::seal`).
const CACHE_CONTEXT: &[u8] = b"weir policy cache v1";

/// Environment variable holding the policy cache key (64 hex digits).
pub const CACHE_KEY_ENV: &str = "WEIR_POLICY_CACHE_KEY";

/// Name of the default key file, in a sync source's `cache_dir`.
pub const CACHE_KEY_FILE: &str = "cache.key";

/// The policy cache key: `WEIR_POLICY_CACHE_KEY` when set, else the file `file` (default:
/// `cache.key` in the cache directory), created with a random key (mode 0600) when it does
/// not exist. Logs where it came from when it was created.
pub fn cache_key(file: &std::path::Path) -> Result<crate::at_rest::Key, String> {
    let (key, origin) = crate::at_rest::resolve_key(CACHE_KEY_ENV, file, true)?
        .ok_or_else(|| format!("{}: no key", file.display()))?;
    if let crate::at_rest::KeyOrigin::Created(p) = &origin {
        tracing::info!(path = %p.display(), "policy cache key created (mode 0600); the cache is encrypted with AES-256-GCM under it");
    }
    Ok(key)
}

/// Name of the file, in a sync source's `cache_dir`, holding the edge's instance id.
pub const INSTANCE_ID_FILE: &str = "instance-id";

/// The edge's `service.instance.id`, kept in `dir/instance-id` beside the policy cache, so
/// that a restarted edge keeps its identity at the control plane. A missing file, or one that
/// does not hold an id (1-64 ASCII letters, digits, `-`, `_`, `.`), gets a new random id,
/// written atomically (temporary file, then rename).
pub fn stable_instance_id(dir: &std::path::Path) -> std::io::Result<String> {
    let path = dir.join(INSTANCE_ID_FILE);
    match std::fs::read_to_string(&path) {
        Ok(s) => {
            let id = s.trim();
            let valid = !id.is_empty()
                && id.len() <= 64
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
            if valid {
                return Ok(id.to_string());
            }
            tracing::warn!(path = %path.display(), "instance id file holds no valid id; a new id replaces it");
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    std::fs::create_dir_all(dir)?;
    let id = format!("{:032x}", rand::random::<u128>());
    crate::at_rest::write_private(&path, format!("{id}\n").as_bytes())?;
    tracing::info!(path = %path.display(), instance_id = %id, "new edge instance id");
    Ok(id)
}

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.to_string())),
        }),
        ..Default::default()
    }
}

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Policies of a response as a source's list. The wire has no presence for
/// `LogRedact.replacement`; an empty one is read as the specification's default.
fn to_parsed(policies: Vec<proto::Policy>) -> Vec<ParsedPolicy> {
    policies
        .into_iter()
        .map(|mut p| {
            if let Some(proto::policy::Target::Log(l)) = &mut p.target {
                if let Some(t) = &mut l.transform {
                    for r in &mut t.redact {
                        if r.replacement.is_empty() {
                            r.replacement = "[REDACTED]".to_string();
                        }
                    }
                }
            }
            ParsedPolicy {
                id: p.id.clone(),
                policy: Ok(p),
            }
        })
        .collect()
}

impl SyncClient {
    /// A client filling slot `index` of `active`.
    /// Plain text only (`http://` endpoints).
    pub fn new(settings: SyncSettings, index: usize, active: Arc<ActivePolicies>) -> Self {
        Self::with_tls(settings, index, active, weir_tls::ClientTls::plaintext())
    }

    /// A client filling slot `index` of `active`, using `tls` for `https://` endpoints
    /// (`http://` ones stay plain text).
    pub fn with_tls(
        settings: SyncSettings,
        index: usize,
        active: Arc<ActivePolicies>,
        tls: weir_tls::ClientTls,
    ) -> Self {
        let mut settings = settings;
        if settings.cache_key.is_none() {
            if let Some(file) = &settings.cache_file {
                match cache_key(&file.with_file_name(CACHE_KEY_FILE)) {
                    Ok(k) => settings.cache_key = Some(k),
                    Err(e) => {
                        tracing::warn!(error = %e, "no policy cache key: the policy cache is not used")
                    }
                }
            }
        }
        let http =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build(tls.https_connector(weir_tls::HttpVersions::Http1And2));
        SyncClient {
            settings,
            index,
            active,
            state: Mutex::new(SyncState::default()),
            http,
            tls,
        }
    }

    /// Loads the cached response, if any. A missing, corrupt or undecryptable cache changes
    /// nothing. A plaintext cache of an older version is read once and written back
    /// encrypted. Returns whether policies were loaded.
    pub fn load_cache(&self) -> bool {
        let Some(path) = &self.settings.cache_file else {
            return false;
        };
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return false,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "policy cache not readable");
                return false;
            }
        };
        let Some(key) = &self.settings.cache_key else {
            tracing::warn!(path = %path.display(), "policy cache ignored: no cache key");
            return false;
        };
        let plaintext_file = !crate::at_rest::is_sealed(&bytes);
        let plain = if plaintext_file {
            bytes
        } else {
            match crate::at_rest::open(key, CACHE_CONTEXT, &bytes) {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "policy cache cannot be decrypted; ignored");
                    return false;
                }
            }
        };
        match proto::SyncResponse::decode(plain.as_slice()) {
            Ok(r) => {
                let n = r.policies.len();
                if plaintext_file {
                    tracing::info!(path = %path.display(), "policy cache of an older version was plaintext; rewritten encrypted");
                    self.write_cache(&r);
                }
                self.active.replace(self.index, to_parsed(r.policies));
                let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
                st.last_hash = r.hash;
                tracing::info!(path = %path.display(), policies = n, "policies loaded from cache");
                true
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "policy cache is corrupt; ignored");
                false
            }
        }
    }

    fn write_cache(&self, r: &proto::SyncResponse) {
        let Some(path) = &self.settings.cache_file else {
            return;
        };
        let Some(key) = &self.settings.cache_key else {
            return;
        };
        let sealed = crate::at_rest::seal(key, CACHE_CONTEXT, &r.encode_to_vec());
        if let Err(e) = crate::at_rest::write_private(path, &sealed) {
            tracing::warn!(path = %path.display(), error = %e, "cannot write the policy cache");
        }
    }

    /// The request for the next sync: metadata, and each policy's counts since the last
    /// successful sync.
    fn request(&self) -> (proto::SyncRequest, HashMap<String, [i64; 10]>) {
        let set = self.active.current();
        let mine: std::collections::HashSet<String> =
            self.active.ids_of(self.index).into_iter().collect();
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut now_counts = HashMap::new();
        let mut statuses = Vec::new();
        for e in set.entries.iter().filter(|e| mine.contains(&e.id)) {
            let s = &e.stats;
            let mut c = [0i64; 10];
            c[0] = s.hits.load(Ordering::Relaxed) as i64;
            c[1] = s.misses.load(Ordering::Relaxed) as i64;
            for (i, stage) in s.stages.iter().enumerate() {
                c[2 + 2 * i] = stage.hits.load(Ordering::Relaxed) as i64;
                c[3 + 2 * i] = stage.misses.load(Ordering::Relaxed) as i64;
            }
            let before = st.reported.get(&e.id).copied().unwrap_or_default();
            let d: Vec<i64> = c.iter().zip(before).map(|(a, b)| (a - b).max(0)).collect();
            let stage = |i: usize| {
                (d[2 + 2 * i] + d[3 + 2 * i] > 0).then(|| proto::TransformStageStatus {
                    hits: d[2 + 2 * i],
                    misses: d[3 + 2 * i],
                })
            };
            statuses.push(proto::PolicySyncStatus {
                id: e.id.clone(),
                match_hits: d[0],
                match_misses: d[1],
                errors: e.errors.clone(),
                remove: stage(0),
                redact: stage(1),
                rename: stage(2),
                add: stage(3),
            });
            now_counts.insert(e.id.clone(), c);
        }
        let req = proto::SyncRequest {
            client_metadata: Some(proto::ClientMetadata {
                supported_policy_stages: vec![
                    proto::PolicyStage::LogFilter as i32,
                    proto::PolicyStage::LogTransform as i32,
                    proto::PolicyStage::MetricFilter as i32,
                    proto::PolicyStage::TraceSampling as i32,
                ],
                labels: self.settings.labels.iter().map(|(k, v)| kv(k, v)).collect(),
                resource_attributes: self
                    .settings
                    .resource_attributes
                    .iter()
                    .map(|(k, v)| kv(k, v))
                    .collect(),
                supported_extensions: vec![],
            }),
            full_sync: st.last_hash.is_empty(),
            last_sync_timestamp_unix_nano: st.last_sync_nanos,
            last_successful_hash: st.last_hash.clone(),
            policy_statuses: statuses,
        };
        (req, now_counts)
    }

    async fn send(&self, req: proto::SyncRequest) -> Result<proto::SyncResponse, SyncError> {
        let endpoint = self.settings.endpoint.clone();
        let transport_err = |message: String| SyncError::Transport {
            endpoint: endpoint.clone(),
            message,
        };
        let bad = |message: String| SyncError::BadResponse {
            endpoint: endpoint.clone(),
            message,
        };
        match self.settings.transport {
            Transport::Grpc => {
                let target = tonic::transport::Endpoint::from_shared(endpoint.clone())
                    .map_err(|e| transport_err(e.to_string()))?
                    .timeout(self.settings.timeout)
                    .connect_timeout(self.settings.timeout);
                let channel = self
                    .tls
                    .connect_grpc(target)
                    .await
                    .map_err(|e| transport_err(e.to_string()))?;
                let mut client = PolicyServiceClient::new(channel);
                let mut request = tonic::Request::new(req);
                for (k, v) in &self.settings.headers {
                    if let (Ok(k), Ok(v)) = (
                        k.parse::<tonic::metadata::MetadataKey<tonic::metadata::Ascii>>(),
                        v.parse(),
                    ) {
                        request.metadata_mut().insert(k, v);
                    }
                }
                client
                    .sync(request)
                    .await
                    .map(tonic::Response::into_inner)
                    .map_err(|s| {
                        let busy = matches!(
                            s.code(),
                            tonic::Code::Unavailable | tonic::Code::ResourceExhausted
                        );
                        let retry_after = s
                            .metadata()
                            .get("retry-after")
                            .and_then(|v| v.to_str().ok())
                            .and_then(retry_after_seconds);
                        match retry_after {
                            Some(retry_after) if busy => SyncError::Busy {
                                endpoint: endpoint.clone(),
                                status: s.code().to_string(),
                                retry_after,
                            },
                            _ => transport_err(format!("{}: {}", s.code(), s.message())),
                        }
                    })
            }
            Transport::HttpProtobuf | Transport::HttpJson => {
                let json = self.settings.transport == Transport::HttpJson;
                let (ctype, body) = if json {
                    ("application/json", sync_json::encode_request(&req))
                } else {
                    ("application/x-protobuf", req.encode_to_vec())
                };
                let mut builder = http::Request::post(&endpoint).header("content-type", ctype);
                for (k, v) in &self.settings.headers {
                    builder = builder.header(k.as_str(), v.as_str());
                }
                let request = builder
                    .body(Full::new(Bytes::from(body)))
                    .map_err(|e| transport_err(e.to_string()))?;
                let resp = tokio::time::timeout(self.settings.timeout, self.http.request(request))
                    .await
                    .map_err(|_| transport_err("timed out".into()))?
                    .map_err(|e| transport_err(e.to_string()))?;
                let status = resp.status();
                if matches!(
                    status,
                    http::StatusCode::SERVICE_UNAVAILABLE | http::StatusCode::TOO_MANY_REQUESTS
                ) {
                    if let Some(retry_after) = resp
                        .headers()
                        .get(http::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(retry_after_seconds)
                    {
                        return Err(SyncError::Busy {
                            endpoint: endpoint.clone(),
                            status: format!("HTTP {status}"),
                            retry_after,
                        });
                    }
                }
                let body = tokio::time::timeout(self.settings.timeout, resp.into_body().collect())
                    .await
                    .map_err(|_| transport_err("timed out reading the body".into()))?
                    .map_err(|e| transport_err(e.to_string()))?
                    .to_bytes();
                if status == http::StatusCode::UNAUTHORIZED && !self.has_token() {
                    return Err(bad(format!(
                        "HTTP {status}: no edge token is configured (the authorization header is empty or `Bearer none`): set WEIR_EDGE_TOKEN to a token from `weir admin token create --role edge`"
                    )));
                }
                if !status.is_success() {
                    return Err(bad(format!("HTTP {status}")));
                }
                if json {
                    sync_json::decode_response(&body).map_err(|e| bad(e.to_string()))
                } else {
                    proto::SyncResponse::decode(body).map_err(|e| bad(e.to_string()))
                }
            }
        }
    }

    /// One sync round. Returns the interval the server recommends (if any).
    pub async fn sync_once(&self) -> Result<Option<Duration>, SyncError> {
        let (req, counts) = self.request();
        let resp = self.send(req).await?;
        if !resp.error_message.is_empty() {
            return Err(SyncError::BadResponse {
                endpoint: self.settings.endpoint.clone(),
                message: format!("server error: {}", resp.error_message),
            });
        }
        let interval = (resp.recommended_sync_interval_seconds > 0)
            .then(|| Duration::from_secs(u64::from(resp.recommended_sync_interval_seconds)));
        let unchanged = {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            // The statuses were delivered: the next report starts from these counts.
            st.reported = counts;
            st.last_sync_nanos = if resp.sync_timestamp_unix_nano > 0 {
                resp.sync_timestamp_unix_nano
            } else {
                now_nanos()
            };
            let same_hash = !resp.hash.is_empty() && resp.hash == st.last_hash;
            let full = resp.sync_type == proto::SyncType::Full as i32;
            same_hash || (!full && resp.policies.is_empty())
        };
        if !unchanged {
            self.write_cache(&resp);
            let n = resp.policies.len();
            let hash = resp.hash.clone();
            self.active.replace(self.index, to_parsed(resp.policies));
            self.state
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .last_hash = hash;
            tracing::info!(endpoint = %self.settings.endpoint, policies = n, "policies synced");
        }
        Ok(interval)
    }

    /// Whether an authorization header with a real token is configured.
    fn has_token(&self) -> bool {
        self.settings.headers.iter().any(|(k, v)| {
            k.eq_ignore_ascii_case("authorization") && {
                let t = v.trim();
                let t = t
                    .strip_prefix("Bearer ")
                    .or_else(|| t.strip_prefix("bearer "))
                    .unwrap_or(t)
                    .trim();
                !t.is_empty() && t != "none"
            }
        })
    }

    /// Polls until the task is aborted.
    pub async fn run(self: Arc<Self>) {
        let mut failing = false;
        loop {
            let next = match self.sync_once().await {
                Ok(i) => {
                    if failing {
                        tracing::info!(endpoint = %self.settings.endpoint, "policy sync recovered");
                        failing = false;
                    }
                    i.unwrap_or(self.settings.interval)
                }
                Err(SyncError::Busy { retry_after, .. }) => {
                    // Shed by an overloaded server: come back when it said, spread over
                    // up to half as long again so that a fleet shed together does not
                    // return together.
                    failing = true;
                    tracing::info!(endpoint = %self.settings.endpoint, ?retry_after, "control plane busy; keeping the policies in force");
                    busy_delay(retry_after, rand::random::<f64>())
                }
                Err(e) => {
                    failing = true;
                    tracing::warn!(error = %e, "policy sync failed; keeping the policies in force");
                    self.settings.interval
                }
            };
            tokio::time::sleep(next.max(Duration::from_millis(100))).await;
        }
    }
}

/// A `Retry-After` value in seconds (the HTTP-date form is not used by Weir's control plane
/// and is ignored), capped at an hour.
fn retry_after_seconds(v: &str) -> Option<Duration> {
    let secs: u64 = v.trim().parse().ok()?;
    Some(Duration::from_secs(secs.min(3600)))
}

/// How long to wait after a busy answer: `retry_after` stretched by `spread` (0..1) times
/// half of it, and never less than 100 ms.
fn busy_delay(retry_after: Duration, spread: f64) -> Duration {
    let spread = spread.clamp(0.0, 1.0);
    (retry_after + retry_after.mul_f64(spread / 2.0)).max(Duration::from_millis(100))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn retry_after_is_read_in_seconds_and_the_wait_is_spread_over_half_again() {
        assert_eq!(
            super::retry_after_seconds("7"),
            Some(Duration::from_secs(7))
        );
        assert_eq!(super::retry_after_seconds(" 0 "), Some(Duration::ZERO));
        assert_eq!(
            super::retry_after_seconds("99999"),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(
            super::retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT"),
            None
        );
        assert_eq!(super::retry_after_seconds("-1"), None);
        let d = Duration::from_secs(6);
        assert_eq!(super::busy_delay(d, 0.0), d);
        assert_eq!(super::busy_delay(d, 1.0), Duration::from_secs(9));
        assert_eq!(super::busy_delay(d, 0.5), Duration::from_millis(7500));
        assert_eq!(
            super::busy_delay(Duration::ZERO, 0.3),
            Duration::from_millis(100)
        );
    }

    #[test]
    fn instance_id_survives_restarts_and_bad_files_are_replaced() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("cache");
        let a = super::stable_instance_id(&dir).unwrap();
        assert_eq!(a.len(), 32);
        assert_eq!(super::stable_instance_id(&dir).unwrap(), a);
        std::fs::write(dir.join(super::INSTANCE_ID_FILE), "bad id\n").unwrap();
        let b = super::stable_instance_id(&dir).unwrap();
        assert_ne!(a, b);
        assert_eq!(super::stable_instance_id(&dir).unwrap(), b);
        assert_eq!(
            std::fs::read_to_string(dir.join(super::INSTANCE_ID_FILE)).unwrap(),
            format!("{b}\n")
        );
    }
}
