//! The control plane's HTTP API (JSON). Every request is authenticated with a bearer token
//! and checked against the token's role; see `openapi.json` beside this file.
//!
//! Here: the state, errors, the role check and the routes. Authentication is in `authn`,
//! the handlers in `catalog`, `policies` (with findings) and `admin`.

use std::sync::Arc;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde_json::json;

use crate::auth::{Permission, Principal};
use crate::control::{ControlError, ControlPlane};

mod admin;
mod authn;
mod catalog;
mod policies;

use admin::{
    audit, audit_export, audit_verify, disable_user, new_token, new_user, revoke_token, tokens,
    users,
};
pub use authn::{
    authenticate_edge, authenticate_request, edge_of_grpc, principal_of, session_cookie,
    AuthFailure,
};
use catalog::{
    delete_service, edges, erase_value, export_service, ingest, overview, prometheus_sources,
    service, services, sketch_key,
};
use policies::{
    accept, create_policy, delete_policy, dismiss, findings, policies, policy, update_policy,
};

/// Shared state of the API.
#[derive(Clone)]
pub struct ApiState {
    /// The control plane.
    pub control: Arc<ControlPlane>,
    /// When false, every request is treated as an admin (local trials only).
    pub auth: bool,
}

/// An API error: a status and a message, sent as `{"error": message}`.
#[derive(Debug)]
pub struct ApiError(pub StatusCode, pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({"error": self.1}))).into_response()
    }
}

impl From<ControlError> for ApiError {
    fn from(e: ControlError) -> Self {
        let status = match &e {
            ControlError::NotFound { .. } => StatusCode::NOT_FOUND,
            ControlError::Invalid(_) => StatusCode::BAD_REQUEST,
            ControlError::Conflict { .. } => StatusCode::CONFLICT,
            ControlError::Store(crate::CatalogError::Limit(_)) => StatusCode::BAD_REQUEST,
            ControlError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %e, "control plane request failed");
        }
        ApiError(status, e.to_string())
    }
}

impl From<crate::CatalogError> for ApiError {
    fn from(e: crate::CatalogError) -> Self {
        ControlError::Store(e).into()
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// Runs a handler's store and CPU work on the blocking pool, not on the async workers
/// (which keep accepting connections, answering syncs and shedding meanwhile).
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        ApiError(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("request task failed: {e}"),
        )
    })?
}

fn require(p: &Principal, need: Permission) -> ApiResult<()> {
    if p.role.allows(need) {
        Ok(())
    } else {
        Err(ApiError(
            StatusCode::FORBIDDEN,
            format!("role {} may not do this ({need:?} needed)", p.role.as_str()),
        ))
    }
}

/// The API routes (authenticated), to be merged into the control plane's server.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/api/v1/whoami", get(whoami))
        .route("/api/v1/overview", get(overview))
        .route("/api/v1/services", get(services))
        .route(
            "/api/v1/services/{name}",
            get(service).delete(delete_service),
        )
        .route("/api/v1/services/{name}/export", get(export_service))
        .route("/api/v1/values/erase", post(erase_value))
        .route("/api/v1/findings", get(findings))
        .route("/api/v1/sources/prometheus", get(prometheus_sources))
        .route("/api/v1/findings/{id}/accept", post(accept))
        .route("/api/v1/findings/{id}/dismiss", post(dismiss))
        .route(
            "/api/v1/policies",
            get(policies)
                .post(create_policy)
                .layer(axum::extract::DefaultBodyLimit::max(
                    policies::MAX_POLICY_BODY,
                )),
        )
        .route(
            "/api/v1/policies/{id}",
            get(policy).put(update_policy).delete(delete_policy).layer(
                axum::extract::DefaultBodyLimit::max(policies::MAX_POLICY_BODY),
            ),
        )
        .route("/api/v1/edges", get(edges))
        .route(
            "/api/v1/ingest",
            post(ingest).layer(axum::extract::DefaultBodyLimit::max(
                state.control.ingestor().config().max_request_bytes,
            )),
        )
        .route("/api/v1/sketch-key", get(sketch_key))
        .route("/api/v1/audit", get(audit))
        .route("/api/v1/audit/export", get(audit_export))
        .route("/api/v1/audit/verify", get(audit_verify))
        .route("/api/v1/users", get(users).post(new_user))
        .route("/api/v1/users/{name}", axum::routing::delete(disable_user))
        .route("/api/v1/sign-out", post(crate::signin::sign_out))
        .route("/api/v1/tokens", get(tokens).post(new_token))
        .route("/api/v1/tokens/{id}", axum::routing::delete(revoke_token))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            authenticate_request,
        ))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/sign-in", post(crate::signin::sign_in))
        .route("/auth/oidc/login", get(crate::oidc::login))
        .route("/auth/oidc/callback", get(crate::oidc::callback))
        .route("/api/v1/enrol/start", post(crate::signin::enrol_start))
        .route("/api/v1/enrol/finish", post(crate::signin::enrol_finish))
        .with_state(state)
}

async fn openapi() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        include_str!("openapi.json"),
    )
}

async fn whoami(Extension(p): Extension<Principal>) -> Json<serde_json::Value> {
    if p.user {
        Json(json!({"user": p.id, "role": p.role}))
    } else {
        Json(json!({"token_id": p.id, "role": p.role}))
    }
}
