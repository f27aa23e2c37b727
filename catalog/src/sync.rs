//! Serving `PolicyService.Sync` to edges from the control plane's policy store: the
//! enabled policies (shadow ones labelled), their hash, the recommended interval; each
//! sync records the edge and adds its per-policy hits and misses. Each policy is read once,
//! when it is written: the store keeps its canonical form (shadow label included) and hash.
//! The served set is built from those forms once per change of the policies (it is cached
//! with its hash); an edge that already has
//! it is answered "unchanged" (no policies, the same hash); the edge's row and counts are
//! buffered and written with the store's next persist, not by each sync.

use std::sync::Arc;

use weir_policy_contract::canonical::{set_hash, Canonical};
use weir_policy_contract::proto;
use weir_policy_contract::sync::PolicyStore;

use crate::control::ControlPlane;
use crate::store::{now_secs, EdgeInfo};

/// The policy set served to edges, built once per change of the policies.
pub struct Served {
    /// The policies on the wire.
    pub policies: Vec<proto::Policy>,
    /// Their hash.
    pub hash: String,
    /// Their ids.
    pub ids: std::collections::HashSet<String>,
}

/// The control plane as a policy provider.
pub struct CatalogPolicyStore {
    /// The control plane.
    pub control: Arc<ControlPlane>,
    /// Seconds edges are told to wait between syncs.
    pub interval_seconds: u32,
}

fn attr(kvs: &[weir_api::otlp::common::v1::KeyValue], key: &str) -> Option<String> {
    use weir_api::otlp::common::v1::any_value::Value;
    kvs.iter().find(|k| k.key == key).and_then(|k| {
        match k.value.as_ref().and_then(|v| v.value.as_ref()) {
            Some(Value::StringValue(s)) => Some(s.clone()),
            _ => None,
        }
    })
}

tokio::task_local! {
    /// The edge name of the sync being served (set by the authentication in front of the
    /// HTTP route and the gRPC service; `local` when auth is off).
    pub static EDGE: String;
}

/// Longest `service.instance.id` (and `service.name`) a sync may report, in bytes.
pub const MAX_INSTANCE_ID_BYTES: usize = 256;
/// Largest hit or miss count one sync may report for one policy (2^40).
pub const MAX_HITS_PER_REPORT: i64 = 1 << 40;
/// Errors kept per policy status, and bytes kept per error.
pub const MAX_STATUS_ERRORS: usize = 16;
/// Bytes kept of each reported error.
pub const MAX_STATUS_ERROR_BYTES: usize = 512;

fn cut(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// Builds the served set from the canonical forms the store keeps (see
/// [`ControlPlane::served_set`]): each is decoded, none is read again from its document,
/// and the hash is taken over the stored forms.
pub fn build_served(forms: &[(String, Vec<u8>)]) -> Served {
    let mut policies = Vec::with_capacity(forms.len());
    let mut served_forms = Vec::with_capacity(forms.len());
    for (id, bytes) in forms {
        match Canonical::decode(bytes) {
            Ok(p) => {
                policies.push(p);
                served_forms.push(bytes.as_slice());
            }
            // Only a damaged database gets here: the form was encoded when it was stored.
            Err(error) => {
                tracing::warn!(policy = %id, %error, "stored policy form does not decode; not served")
            }
        }
    }
    Served {
        hash: set_hash(served_forms),
        ids: policies.iter().map(|p| p.id.clone()).collect(),
        policies,
    }
}

/// Serves one sync for `edge` (blocking: SQLite when the policies changed). The instance id is recorded as
/// `<edge>/<service.instance.id>`, so one edge can never report as another; statuses of
/// policies the control plane does not serve are ignored; negative or oversized counts
/// refuse the sync (INVALID_ARGUMENT) with the field named.
pub fn sync_blocking(
    control: &ControlPlane,
    edge: &str,
    request: proto::SyncRequest,
    interval_seconds: u32,
) -> Result<proto::SyncResponse, tonic::Status> {
    let served = control
        .served_set()
        .map_err(|e| tonic::Status::internal(e.to_string()))?;
    let hash = served.hash.clone();
    let meta = request.client_metadata.unwrap_or_default();
    let named = |key: &str| -> Result<Option<String>, tonic::Status> {
        match attr(&meta.resource_attributes, key) {
            Some(v) if v.len() > MAX_INSTANCE_ID_BYTES => Err(tonic::Status::invalid_argument(format!(
                "client_metadata.resource_attributes[{key}]: {} bytes, the limit is {MAX_INSTANCE_ID_BYTES}",
                v.len()
            ))),
            v => Ok(v),
        }
    };
    let instance = named("service.instance.id")?.unwrap_or_else(|| "unknown".into());
    let service = named("service.name")?.unwrap_or_default();
    let mut statuses = Vec::new();
    if !request.full_sync {
        for (i, s) in request.policy_statuses.iter().enumerate() {
            for (field, n) in [
                ("match_hits", s.match_hits),
                ("match_misses", s.match_misses),
            ] {
                if !(0..=MAX_HITS_PER_REPORT).contains(&n) {
                    return Err(tonic::Status::invalid_argument(format!(
                        "policy_statuses[{i}].{field}: {n} is outside 0..={MAX_HITS_PER_REPORT}"
                    )));
                }
            }
            if !served.ids.contains(&s.id) {
                continue;
            }
            let errors = s
                .errors
                .iter()
                .take(MAX_STATUS_ERRORS)
                .map(|e| cut(e, MAX_STATUS_ERROR_BYTES))
                .collect();
            statuses.push((s.id.clone(), s.match_hits, s.match_misses, errors));
        }
    }
    let info = EdgeInfo {
        instance_id: format!("{edge}/{instance}"),
        service_name: service,
        last_sync: now_secs(),
        last_hash: hash.clone(),
    };
    control.store().stage_sync(&info, &statuses);
    // Unchanged: no list and the same hash tell the edge to keep what it runs.
    let unchanged = !request.full_sync && request.last_successful_hash == hash;
    Ok(proto::SyncResponse {
        policies: if unchanged {
            Vec::new()
        } else {
            served.policies.clone()
        },
        hash,
        sync_timestamp_unix_nano: (now_secs() as u64) * 1_000_000_000,
        recommended_sync_interval_seconds: interval_seconds,
        sync_type: if unchanged {
            proto::SyncType::Unspecified as i32
        } else {
            proto::SyncType::Full as i32
        },
        ..Default::default()
    })
}

#[async_trait::async_trait]
impl PolicyStore for CatalogPolicyStore {
    async fn sync(
        &self,
        request: proto::SyncRequest,
    ) -> Result<proto::SyncResponse, tonic::Status> {
        let control = self.control.clone();
        let interval = self.interval_seconds;
        let edge = EDGE
            .try_with(Clone::clone)
            .unwrap_or_else(|_| "local".into());
        tokio::task::spawn_blocking(move || sync_blocking(&control, &edge, request, interval))
            .await
            .map_err(|e| tonic::Status::internal(e.to_string()))?
    }
}

/// Authentication in front of the gRPC `PolicyService`: an edge token (or admin) in
/// `authorization: Bearer <token>`, whose edge name the sync then runs under.
#[derive(Clone)]
pub struct EdgeAuth<S> {
    inner: S,
    control: Arc<ControlPlane>,
    auth: bool,
}

impl<S> EdgeAuth<S> {
    /// Wraps `inner`; with `auth` false every caller is the edge `local`.
    pub fn new(inner: S, control: Arc<ControlPlane>, auth: bool) -> Self {
        EdgeAuth {
            inner,
            control,
            auth,
        }
    }
}

impl<S: tonic::server::NamedService> tonic::server::NamedService for EdgeAuth<S> {
    const NAME: &'static str = S::NAME;
}

type GrpcResponse = http::Response<tonic::body::Body>;

impl<S, B> tower::Service<http::Request<B>> for EdgeAuth<S>
where
    S: tower::Service<http::Request<B>, Response = GrpcResponse, Error = std::convert::Infallible>,
    S::Future: Send + 'static,
{
    type Response = GrpcResponse;
    type Error = std::convert::Infallible;
    type Future = std::pin::Pin<
        Box<
            dyn std::future::Future<Output = Result<GrpcResponse, std::convert::Infallible>> + Send,
        >,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let edge = if self.auth {
            let client = req
                .extensions()
                .get::<tonic::transport::server::TcpConnectInfo>()
                .and_then(|i| i.remote_addr())
                .map(|a| a.ip());
            match crate::api::edge_of_grpc(&self.control, client, req.headers()) {
                Ok(e) => e,
                Err(status) => return Box::pin(async move { Ok(status.into_http()) }),
            }
        } else {
            // Auth off: the sync is still audited, as the edge `local`.
            let client = req
                .extensions()
                .get::<tonic::transport::server::TcpConnectInfo>()
                .and_then(|i| i.remote_addr())
                .map(|a| a.ip());
            self.control.record_edge_activity(
                "edge.sync",
                "local",
                "anonymous",
                &crate::guard::client_str(client),
                0,
            );
            "local".to_string()
        };
        // Shed past `overload.sync_max_in_flight`: UNAVAILABLE with retry-after, once the
        // edge is authenticated (made-up tokens cannot take the slots of real edges).
        let slot = match self.control.sync_gate().admit() {
            Ok(p) => p,
            Err(busy) => {
                let status = busy.into_status();
                return Box::pin(async move { Ok(status.into_http()) });
            }
        };
        let call = EDGE.scope(edge, self.inner.call(req));
        Box::pin(async move {
            let r = call.await;
            drop(slot);
            r
        })
    }
}
