//! The control plane's HTTP API (JSON). Every request is authenticated with a bearer token
//! and checked against the token's role; see `openapi.json` beside this file.

use std::sync::Arc;

use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::auth::{authenticate, create_token_for, Permission, Principal, Role};
use crate::control::{ControlError, ControlPlane};
use crate::views;

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

/// Resolves the bearer token into a [`Principal`] request extension, or answers 401.
pub async fn authenticate_request(
    State(state): State<ApiState>,
    mut req: Request,
    next: Next,
) -> Response {
    let principal = if state.auth {
        let Some(token) = bearer(req.headers()) else {
            return unauthorized("missing bearer token (Authorization: Bearer <token>)");
        };
        match authenticate(state.control.store(), token) {
            Ok(Some(p)) => p,
            Ok(None) => return unauthorized("invalid or revoked token"),
            Err(e) => return ApiError::from(e).into_response(),
        }
    } else {
        Principal {
            id: "anonymous".into(),
            role: Role::Admin,
            edge: None,
        }
    };
    req.extensions_mut().insert(principal);
    next.run(req).await
}

/// For policy sync over HTTP: the token must grant [`Permission::Edge`].
pub async fn authenticate_edge(
    State(state): State<ApiState>,
    req: Request,
    next: Next,
) -> Response {
    if state.auth {
        let token = bearer(req.headers());
        match token.map(|t| authenticate(state.control.store(), t)) {
            None => return unauthorized("missing bearer token (Authorization: Bearer <token>)"),
            Some(Ok(None)) => return unauthorized("invalid or revoked token"),
            Some(Err(e)) => return ApiError::from(e).into_response(),
            Some(Ok(Some(p))) => {
                if let Err(e) = require(&p, Permission::Edge) {
                    return e.into_response();
                }
                return crate::sync::EDGE.scope(p.edge_name(), next.run(req)).await;
            }
        }
    }
    crate::sync::EDGE
        .scope("local".to_string(), next.run(req))
        .await
}

/// For policy sync over gRPC: the edge name of the `authorization: Bearer <token>`
/// metadata's edge token (or admin token).
pub fn edge_of_grpc(control: &ControlPlane, headers: &HeaderMap) -> Result<String, tonic::Status> {
    let token =
        bearer(headers).ok_or_else(|| tonic::Status::unauthenticated("missing bearer token"))?;
    match authenticate(control.store(), token) {
        Ok(Some(p)) if p.role.allows(Permission::Edge) => Ok(p.edge_name()),
        Ok(Some(p)) => Err(tonic::Status::permission_denied(format!(
            "role {} may not sync policies",
            p.role.as_str()
        ))),
        Ok(None) => Err(tonic::Status::unauthenticated("invalid or revoked token")),
        Err(e) => Err(tonic::Status::internal(e.to_string())),
    }
}

fn bearer(h: &HeaderMap) -> Option<&str> {
    h.get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

fn unauthorized(msg: &str) -> Response {
    let mut r = ApiError(StatusCode::UNAUTHORIZED, msg.to_string()).into_response();
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    r
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
        .route("/api/v1/findings", get(findings))
        .route("/api/v1/findings/{id}/accept", post(accept))
        .route("/api/v1/findings/{id}/dismiss", post(dismiss))
        .route("/api/v1/policies", get(policies).post(create_policy))
        .route(
            "/api/v1/policies/{id}",
            get(policy).put(update_policy).delete(delete_policy),
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
        .route("/api/v1/tokens", get(tokens).post(new_token))
        .route("/api/v1/tokens/{id}", axum::routing::delete(revoke_token))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            authenticate_request,
        ))
        .route("/api/v1/openapi.json", get(openapi))
        .with_state(state)
}

async fn openapi() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        include_str!("openapi.json"),
    )
}

async fn whoami(Extension(p): Extension<Principal>) -> Json<serde_json::Value> {
    Json(json!({"token_id": p.id, "role": p.role}))
}

async fn overview(
    State(s): State<ApiState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Json<serde_json::Value>> {
    require(&p, Permission::Read)?;
    Ok(Json(views::overview(&s.control)?))
}

async fn services(
    State(s): State<ApiState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Json<serde_json::Value>> {
    require(&p, Permission::Read)?;
    Ok(Json(json!({"services": s.control.services()?})))
}

async fn service(
    State(s): State<ApiState>,
    Extension(p): Extension<Principal>,
    Path(name): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    require(&p, Permission::Read)?;
    Ok(Json(views::service(&name, &s.control.service(&name)?)))
}

async fn delete_service(
    State(s): State<ApiState>,
    Extension(p): Extension<Principal>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    require(&p, Permission::Admin)?;
    s.control.delete_service(&name, &p.actor())?;
    Ok(StatusCode::NO_CONTENT)
}

async fn findings(
    State(s): State<ApiState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Json<serde_json::Value>> {
    require(&p, Permission::Read)?;
    Ok(Json(crate::views::findings(&s.control)?))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct AcceptBody {
    shadow: bool,
}

async fn accept(
    State(s): State<ApiState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    body: Option<Json<AcceptBody>>,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    require(&p, Permission::EditPolicies)?;
    let shadow = body.map(|b| b.0.shadow).unwrap_or(false);
    let pol = s.control.accept(&id, shadow, &p.actor())?;
    Ok((StatusCode::CREATED, Json(json!(pol))))
}

async fn dismiss(
    State(s): State<ApiState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    require(&p, Permission::EditPolicies)?;
    s.control.dismiss(&id, &p.actor())?;
    Ok(StatusCode::NO_CONTENT)
}

async fn policies(
    State(s): State<ApiState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Json<serde_json::Value>> {
    require(&p, Permission::Read)?;
    Ok(Json(views::policies(&s.control)?))
}

async fn policy(
    State(s): State<ApiState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    require(&p, Permission::Read)?;
    let pol = s
        .control
        .store()
        .policy(&id)?
        .ok_or_else(|| ControlError::NotFound {
            what: "policy",
            id: id.clone(),
        })?;
    Ok(Json(json!(pol)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreatePolicy {
    policy: serde_json::Value,
    #[serde(default)]
    shadow: bool,
}

async fn create_policy(
    State(s): State<ApiState>,
    Extension(p): Extension<Principal>,
    body: Result<Json<CreatePolicy>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    require(&p, Permission::EditPolicies)?;
    let Json(body) = body.map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.body_text()))?;
    let pol = s
        .control
        .create_policy(body.policy, body.shadow, &p.actor())?;
    Ok((StatusCode::CREATED, Json(json!(pol))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdatePolicy {
    policy: Option<serde_json::Value>,
    enabled: Option<bool>,
    shadow: Option<bool>,
}

async fn update_policy(
    State(s): State<ApiState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    body: Result<Json<UpdatePolicy>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Json<serde_json::Value>> {
    require(&p, Permission::EditPolicies)?;
    let Json(b) = body.map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.body_text()))?;
    let pol = s
        .control
        .update_policy(&id, b.policy, b.enabled, b.shadow, &p.actor())?;
    Ok(Json(json!(pol)))
}

async fn delete_policy(
    State(s): State<ApiState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    require(&p, Permission::EditPolicies)?;
    s.control.delete_policy(&id, &p.actor())?;
    Ok(StatusCode::NO_CONTENT)
}

async fn edges(
    State(s): State<ApiState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Json<serde_json::Value>> {
    require(&p, Permission::Read)?;
    Ok(Json(json!({"edges": s.control.store().edges()?})))
}

/// The deployment's sketch key, for edges only: not even admins read it here (an admin
/// who wants it must mint an edge token, which is audited).
async fn sketch_key(
    State(s): State<ApiState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Response> {
    if s.auth && p.role != Role::Edge {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            format!(
                "role {} may not read the sketch key (edge tokens only)",
                p.role.as_str()
            ),
        ));
    }
    let key = s.control.sketch_key();
    let mut r = Json(json!({"key": key.to_hex(), "id": key.id()})).into_response();
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    Ok(r)
}

async fn ingest(
    State(s): State<ApiState>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<StatusCode, Response> {
    require(&p, Permission::Edge).map_err(IntoResponse::into_response)?;
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.starts_with("application/json") {
        return Err(ApiError(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("ingest takes application/json, not {ct:?}"),
        )
        .into_response());
    }
    let gate = s.control.ingestor();
    gate.charge(&p.id, body.len()).map_err(ingest_error)?;
    let edge = p.edge_name();
    let control = s.control.clone();
    // Reading and merging are CPU and disk work: off the async workers.
    tokio::task::spawn_blocking(move || {
        let gate = control.ingestor();
        let summary = gate.read(&body)?;
        gate.store(control.store(), &control.rekeyed(&summary), Some(&edge))
    })
    .await
    .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response())?
    .map_err(ingest_error)?;
    Ok(StatusCode::NO_CONTENT)
}

fn ingest_error(e: crate::ingest::IngestError) -> Response {
    use crate::ingest::IngestError;
    match e {
        IngestError::Invalid(m) => ApiError(StatusCode::BAD_REQUEST, m).into_response(),
        IngestError::Quota { retry_after, .. } => {
            let mut r = ApiError(StatusCode::TOO_MANY_REQUESTS, e.to_string()).into_response();
            r.headers_mut().insert(
                header::RETRY_AFTER,
                header::HeaderValue::from(retry_after.as_secs()),
            );
            r
        }
        IngestError::Store(e) => ApiError::from(e).into_response(),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct AuditQuery {
    since: i64,
    limit: Option<i64>,
}

async fn audit(
    State(s): State<ApiState>,
    Extension(p): Extension<Principal>,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Json<serde_json::Value>> {
    require(&p, Permission::Admin)?;
    let entries = s
        .control
        .store()
        .audit_log(q.since, q.limit.unwrap_or(1000).clamp(1, 10_000))?;
    Ok(Json(json!({"entries": entries})))
}

async fn tokens(
    State(s): State<ApiState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Json<serde_json::Value>> {
    require(&p, Permission::Admin)?;
    Ok(Json(json!({"tokens": s.control.store().tokens()?})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewToken {
    role: String,
    #[serde(default)]
    name: String,
    /// The edge name an edge token is bound to (required for role `edge`).
    #[serde(default)]
    edge: Option<String>,
}

async fn new_token(
    State(s): State<ApiState>,
    Extension(p): Extension<Principal>,
    body: Result<Json<NewToken>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    require(&p, Permission::Admin)?;
    let Json(b) = body.map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.body_text()))?;
    let role = Role::parse(&b.role).ok_or_else(|| {
        ApiError(
            StatusCode::BAD_REQUEST,
            format!(
                "role: unknown role {:?} (viewer, editor, admin, edge)",
                b.role
            ),
        )
    })?;
    if role == Role::Edge && b.edge.is_none() {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "edge: an edge token is bound to an edge; give its name".into(),
        ));
    }
    let (token, info) = create_token_for(
        s.control.store(),
        role,
        &b.name,
        b.edge.as_deref(),
        &p.actor(),
    )?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"token": token, "info": info})),
    ))
}

async fn revoke_token(
    State(s): State<ApiState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    require(&p, Permission::Admin)?;
    if s.control.store().revoke_token(&id, &p.actor())? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ControlError::NotFound { what: "token", id }.into())
    }
}
