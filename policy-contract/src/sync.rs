//! The control-plane side of `PolicyService.Sync`, as building blocks: a [`PolicyStore`]
//! trait that answers one sync, a tonic service over it ([`grpc_service`]) and an axum
//! router for `POST /v1/policy/sync` with protobuf or JSON bodies ([`http_router`]).
//! [`StaticPolicyStore`] is a ready store serving one list of policies.

use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use prost::Message;

use crate::proto::{self, policy_service_server};
use crate::sync_json;

pub use crate::canonical::policies_hash;

/// Answers sync requests. Implemented by whatever stores policies (the catalog, a file).
#[async_trait::async_trait]
pub trait PolicyStore: Send + Sync + 'static {
    /// Handles one sync: record the client's statuses, return the policies it should run.
    async fn sync(&self, request: proto::SyncRequest)
        -> Result<proto::SyncResponse, tonic::Status>;
}

/// The tonic service for a store.
pub struct PolicyGrpc<S: PolicyStore>(pub Arc<S>);

#[async_trait::async_trait]
impl<S: PolicyStore> policy_service_server::PolicyService for PolicyGrpc<S> {
    async fn sync(
        &self,
        request: tonic::Request<proto::SyncRequest>,
    ) -> Result<tonic::Response<proto::SyncResponse>, tonic::Status> {
        self.0
            .sync(request.into_inner())
            .await
            .map(tonic::Response::new)
    }
}

/// A gRPC server for `store`, to add to a `tonic::transport::Server`.
pub fn grpc_service<S: PolicyStore>(
    store: Arc<S>,
) -> policy_service_server::PolicyServiceServer<PolicyGrpc<S>> {
    policy_service_server::PolicyServiceServer::new(PolicyGrpc(store))
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

async fn handle<S: PolicyStore>(store: Arc<S>, headers: HeaderMap, body: Bytes) -> Response {
    let json = is_json(&headers);
    let request = if json {
        sync_json::decode_request(&body).map_err(|e| e.to_string())
    } else {
        proto::SyncRequest::decode(body).map_err(|e| e.to_string())
    };
    let request = match request {
        Ok(r) => r,
        Err(e) => {
            return (StatusCode::BAD_REQUEST, format!("invalid SyncRequest: {e}")).into_response()
        }
    };
    match store.sync(request).await {
        Ok(resp) if json => (
            [(header::CONTENT_TYPE, "application/json")],
            sync_json::encode_response(&resp),
        )
            .into_response(),
        Ok(resp) => (
            [(header::CONTENT_TYPE, "application/x-protobuf")],
            resp.encode_to_vec(),
        )
            .into_response(),
        Err(status) => (
            match status.code() {
                tonic::Code::InvalidArgument => StatusCode::BAD_REQUEST,
                tonic::Code::Unauthenticated => StatusCode::UNAUTHORIZED,
                tonic::Code::PermissionDenied => StatusCode::FORBIDDEN,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            },
            status.message().to_string(),
        )
            .into_response(),
    }
}

/// An axum router serving `POST /v1/policy/sync` from `store`.
pub fn http_router<S: PolicyStore>(store: Arc<S>) -> axum::Router {
    axum::Router::new().route(
        "/v1/policy/sync",
        post(move |headers: HeaderMap, body: Bytes| handle(store.clone(), headers, body)),
    )
}

/// A store serving one replaceable list of policies, remembering the last statuses each
/// client reported (by `service.instance.id`).
#[derive(Default)]
pub struct StaticPolicyStore {
    inner: Mutex<StaticInner>,
}

#[derive(Default)]
struct StaticInner {
    policies: Vec<proto::Policy>,
    hash: String,
    interval_seconds: u32,
    requests: Vec<proto::SyncRequest>,
}

impl StaticPolicyStore {
    /// A store serving `policies`, recommending `interval_seconds` between polls.
    pub fn new(policies: Vec<proto::Policy>, interval_seconds: u32) -> Self {
        let store = StaticPolicyStore::default();
        store.set_policies(policies);
        store
            .inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .interval_seconds = interval_seconds;
        store
    }

    /// Replaces the served list.
    pub fn set_policies(&self, policies: Vec<proto::Policy>) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.hash = policies_hash(&policies);
        inner.policies = policies;
    }

    /// Every request received so far (for inspection by tests and the catalog).
    pub fn requests(&self) -> Vec<proto::SyncRequest> {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .requests
            .clone()
    }
}

#[async_trait::async_trait]
impl PolicyStore for StaticPolicyStore {
    async fn sync(
        &self,
        request: proto::SyncRequest,
    ) -> Result<proto::SyncResponse, tonic::Status> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let unchanged = !request.full_sync && request.last_successful_hash == inner.hash;
        inner.requests.push(request);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Ok(proto::SyncResponse {
            // Unchanged: the same hash and no list tells the client to keep what it has.
            policies: if unchanged {
                vec![]
            } else {
                inner.policies.clone()
            },
            hash: inner.hash.clone(),
            sync_timestamp_unix_nano: now,
            recommended_sync_interval_seconds: inner.interval_seconds,
            sync_type: if unchanged {
                proto::SyncType::Unspecified as i32
            } else {
                proto::SyncType::Full as i32
            },
            error_message: String::new(),
            extension_configs: vec![],
        })
    }
}
