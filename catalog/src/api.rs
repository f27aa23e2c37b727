//! The control plane's HTTP API (JSON). Every request is authenticated with a bearer token
//! and checked against the token's role; see `openapi.json` beside this file.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::auth::{check_token, create_token_with, Permission, Principal, Role, TokenCheck};
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

/// [`principal_of`] on the blocking pool (a token not looked up yet is read from the
/// database).
async fn principal_blocking(
    control: &Arc<ControlPlane>,
    client: Option<IpAddr>,
    headers: &HeaderMap,
) -> Result<Principal, AuthFailure> {
    let (control, headers) = (control.clone(), headers.clone());
    tokio::task::spawn_blocking(move || principal_of(&control, client, &headers))
        .await
        .unwrap_or_else(|e| {
            Err(AuthFailure::Store(crate::CatalogError::Io {
                path: "authentication task".into(),
                source: std::io::Error::other(e.to_string()),
            }))
        })
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

/// Why a request's credentials were not accepted.
#[derive(Debug)]
pub enum AuthFailure {
    /// No credentials (401).
    Missing,
    /// Wrong, revoked or expired credentials (401, with this message).
    Invalid(&'static str),
    /// The client or account is locked out after failed attempts (429).
    Locked(crate::guard::Locked),
    /// The store failed (500).
    Store(crate::CatalogError),
}

impl AuthFailure {
    /// As an HTTP response: 401 with `WWW-Authenticate`, or 429 with `Retry-After`.
    pub fn into_response(self) -> Response {
        match self {
            AuthFailure::Missing => {
                unauthorized("missing bearer token (Authorization: Bearer <token>)")
            }
            AuthFailure::Invalid(m) => unauthorized(m),
            AuthFailure::Locked(l) => {
                let mut r = ApiError(StatusCode::TOO_MANY_REQUESTS, l.to_string()).into_response();
                r.headers_mut().insert(
                    header::RETRY_AFTER,
                    header::HeaderValue::from(l.retry_after),
                );
                r
            }
            AuthFailure::Store(e) => ApiError::from(e).into_response(),
        }
    }

    /// As a gRPC status.
    pub fn into_status(self) -> tonic::Status {
        match self {
            AuthFailure::Missing => tonic::Status::unauthenticated("missing bearer token"),
            AuthFailure::Invalid(m) => tonic::Status::unauthenticated(m),
            AuthFailure::Locked(l) => {
                let mut s = tonic::Status::resource_exhausted(l.to_string());
                if let Ok(v) = l.retry_after.to_string().parse() {
                    s.metadata_mut().insert("retry-after", v);
                }
                s
            }
            AuthFailure::Store(e) => tonic::Status::internal(e.to_string()),
        }
    }
}

/// The principal of a request's bearer token from `client`, through the failed-
/// authentication limiter (`crate::guard`): a locked-out client or account is refused
/// before its credentials are checked; every failure is logged, counted and audited.
pub fn principal_of(
    control: &ControlPlane,
    client: Option<IpAddr>,
    headers: &HeaderMap,
) -> Result<Principal, AuthFailure> {
    let guard = control.guard();
    guard.check(client, None).map_err(AuthFailure::Locked)?;
    let Some(token) = bearer(headers) else {
        if let Some(session) = session_cookie(headers) {
            return match control.store().session(session) {
                Ok(Some((user, role))) => Ok(Principal {
                    id: user,
                    role,
                    edge: None,
                    user: true,
                }),
                Ok(None) => {
                    guard.failed(client, None, "invalid_session");
                    control.audit_auth_failure(client, None, "invalid_session");
                    Err(AuthFailure::Invalid(
                        "session expired or signed out: sign in again",
                    ))
                }
                Err(e) => Err(AuthFailure::Store(e)),
            };
        }
        guard.failed(client, None, "missing");
        return Err(AuthFailure::Missing);
    };
    let account = crate::guard::token_account(token);
    guard
        .check(client, account.as_deref())
        .map_err(AuthFailure::Locked)?;
    let (reason, msg) = match check_token(control.store(), token).map_err(AuthFailure::Store)? {
        TokenCheck::Valid(p) => return Ok(p),
        TokenCheck::Invalid => ("invalid_token", "invalid or revoked token"),
        TokenCheck::Expired { .. } => (
            "expired_token",
            "token expired: ask an admin for a new one (weir admin token create)",
        ),
    };
    guard.failed(client, account.as_deref(), reason);
    control.audit_auth_failure(client, account.as_deref(), reason);
    Err(AuthFailure::Invalid(msg))
}

/// The session cookie's value, if the request carries one.
pub fn session_cookie(h: &HeaderMap) -> Option<&str> {
    h.get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| {
            c.trim()
                .strip_prefix(crate::users::COOKIE)
                .and_then(|r| r.strip_prefix('='))
        })
        .filter(|v| !v.is_empty())
}

/// `%XX` escapes of a path segment decoded (as axum's `Path` decodes them).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
            if let Ok(v) = u8::from_str_radix(hex, 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn client_of(req: &Request) -> Option<IpAddr> {
    req.extensions()
        .get::<crate::guard::ClientAddr>()
        .map(|c| c.0)
}

/// Resolves the bearer token into a [`Principal`] request extension, or answers 401 (429
/// while locked out).
pub async fn authenticate_request(
    State(state): State<ApiState>,
    mut req: Request,
    next: Next,
) -> Response {
    let principal = if state.auth {
        match principal_blocking(&state.control, client_of(&req), req.headers()).await {
            Ok(p) => p,
            Err(f) => return f.into_response(),
        }
    } else {
        Principal {
            id: "anonymous".into(),
            role: Role::Admin,
            edge: None,
            user: false,
        }
    };
    // Authenticated reads are shed past `overload.read_max_in_flight` (503 + Retry-After at
    // once). Admitted only after authentication, so requests with made-up tokens (which meet
    // the per-client lockout instead) cannot take the slots of real readers.
    let _read_slot = if req.method() == axum::http::Method::GET {
        match state.control.read_gate().admit() {
            Ok(p) => Some(p),
            Err(busy) => return busy.into_response(),
        }
    } else {
        None
    };
    let client = crate::guard::client_str(client_of(&req));
    // The path read, without the query; a service's name as its keyed fingerprint, so
    // an erasure leaves no trace of the name in the (append-only) audit log.
    let read = (req.method() == axum::http::Method::GET).then(|| {
        let path = req.uri().path();
        match path.strip_prefix("/api/v1/services/") {
            Some(name) if !name.is_empty() => {
                let name = percent_decode(name);
                format!(
                    "/api/v1/services/{}",
                    state.control.service_fingerprint(&name)
                )
            }
            _ => path.to_string(),
        }
    });
    let actor = principal.actor();
    req.extensions_mut().insert(principal);
    let control = state.control.clone();
    crate::audit::scope_client(client.clone(), async move {
        let resp = next.run(req).await;
        // Every read of catalog data through the API is audited, with its outcome.
        if let Some(target) = read {
            let status = resp.status().as_u16();
            let r = tokio::task::spawn_blocking(move || {
                control.store().audit_with_client(
                    &actor,
                    &client,
                    "api.read",
                    &target,
                    None,
                    Some(json!({"status": status})),
                )
            })
            .await;
            match r {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "audit log: could not record a read"),
                Err(e) => tracing::warn!(error = %e, "audit log: could not record a read"),
            }
        }
        resp
    })
    .await
}

/// For policy sync over HTTP: the token must grant [`Permission::Edge`].
pub async fn authenticate_edge(
    State(state): State<ApiState>,
    req: Request,
    next: Next,
) -> Response {
    // Syncs are shed past `overload.sync_max_in_flight` (503 + Retry-After at once), once
    // the edge is authenticated: made-up tokens cannot take the slots of real edges.
    let admit = || state.control.sync_gate().admit();
    if state.auth {
        match principal_blocking(&state.control, client_of(&req), req.headers()).await {
            Err(f) => return f.into_response(),
            Ok(p) => {
                if let Err(e) = require(&p, Permission::Edge) {
                    return e.into_response();
                }
                let _slot = match admit() {
                    Ok(p) => p,
                    Err(busy) => return busy.into_response(),
                };
                state.control.record_edge_activity(
                    "edge.sync",
                    &p.edge_name(),
                    &p.actor(),
                    &crate::guard::client_str(client_of(&req)),
                    0,
                );
                return crate::sync::EDGE.scope(p.edge_name(), next.run(req)).await;
            }
        }
    }
    let _slot = match admit() {
        Ok(p) => p,
        Err(busy) => return busy.into_response(),
    };
    // Auth off: the sync is still audited, as the edge `local`.
    state.control.record_edge_activity(
        "edge.sync",
        "local",
        "anonymous",
        &crate::guard::client_str(client_of(&req)),
        0,
    );
    crate::sync::EDGE
        .scope("local".to_string(), next.run(req))
        .await
}

/// For policy sync over gRPC: the edge name of the `authorization: Bearer <token>`
/// metadata's edge token (or admin token), from `client`.
pub fn edge_of_grpc(
    control: &ControlPlane,
    client: Option<IpAddr>,
    headers: &HeaderMap,
) -> Result<String, tonic::Status> {
    match principal_of(control, client, headers) {
        Ok(p) if p.role.allows(Permission::Edge) => {
            control.record_edge_activity(
                "edge.sync",
                &p.edge_name(),
                &p.actor(),
                &crate::guard::client_str(client),
                0,
            );
            Ok(p.edge_name())
        }
        Ok(p) => Err(tonic::Status::permission_denied(format!(
            "role {} may not sync policies",
            p.role.as_str()
        ))),
        Err(f) => Err(f.into_status()),
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
        .route("/api/v1/services/{name}/export", get(export_service))
        .route("/api/v1/values/erase", post(erase_value))
        .route("/api/v1/findings", get(findings))
        .route("/api/v1/sources/prometheus", get(prometheus_sources))
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

async fn overview(
    State(s): State<ApiState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Json<serde_json::Value>> {
    require(&p, Permission::Read)?;
    blocking(move || Ok(Json(views::overview(&s.control)?))).await
}

async fn services(
    State(s): State<ApiState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Json<serde_json::Value>> {
    require(&p, Permission::Read)?;
    blocking(move || Ok(Json(json!({"services": s.control.services()?})))).await
}

async fn service(
    State(s): State<ApiState>,
    Extension(p): Extension<Principal>,
    Path(name): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    require(&p, Permission::Read)?;
    blocking(move || Ok(Json(views::service(&name, &s.control.service(&name)?)))).await
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

/// Everything stored about a service, as JSON (data subject access and portability).
async fn export_service(
    State(s): State<ApiState>,
    Extension(p): Extension<Principal>,
    Path(name): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    require(&p, Permission::Admin)?;
    let doc = s.control.export_service(&name)?;
    s.control.store().audit(
        &p.actor(),
        "catalog.export_service",
        &s.control.service_fingerprint(&name),
        None,
        None,
    )?;
    Ok(Json(doc))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EraseValueBody {
    value: String,
}

/// Erases every stored trace of one value (by its keyed hashes).
async fn erase_value(
    State(s): State<ApiState>,
    Extension(p): Extension<Principal>,
    Json(body): Json<EraseValueBody>,
) -> ApiResult<Json<serde_json::Value>> {
    require(&p, Permission::Admin)?;
    let out = s.control.erase_value(&body.value, &p.actor())?;
    Ok(Json(
        serde_json::to_value(out).map_err(crate::CatalogError::from)?,
    ))
}

async fn findings(
    State(s): State<ApiState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Json<serde_json::Value>> {
    require(&p, Permission::Read)?;
    blocking(move || Ok(Json(crate::views::findings(&s.control)?))).await
}

async fn prometheus_sources(
    State(s): State<ApiState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Json<serde_json::Value>> {
    require(&p, Permission::Read)?;
    let snaps = s.control.store().prometheus_snapshots()?;
    Ok(Json(json!({ "sources": snaps })))
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
    blocking(move || Ok(Json(views::policies(&s.control)?))).await
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
    blocking(move || Ok(Json(json!({"edges": s.control.store().edges()?})))).await
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
    let _slot = gate.admit().map_err(ingest_error)?;
    gate.charge(&p.id, body.len()).map_err(ingest_error)?;
    let seq = match headers.get(crate::staging::SEQ_HEADER) {
        None => None,
        Some(v) => Some(
            v.to_str()
                .map_err(|_| format!("{}: not text", crate::staging::SEQ_HEADER))
                .and_then(crate::staging::SummarySeq::parse)
                .map_err(|m| ApiError(StatusCode::BAD_REQUEST, m).into_response())?,
        ),
    };
    let edge = p.edge_name();
    let edge_audit = edge.clone();
    let client = crate::audit::current_client();
    let bytes = body.len() as u64;
    let control = s.control.clone();
    // Reading and merging are CPU work: off the async workers.
    tokio::task::spawn_blocking(move || {
        let gate = control.ingestor();
        let summary = gate.read(&body)?;
        let _will = control.store().will_persist();
        gate.store_numbered(
            control.store(),
            &control.rekeyed(&summary),
            Some(&edge),
            seq.as_ref(),
        )?;
        // Acknowledged only once on disk (group commit): the persist writes what every
        // request staged so far in one transaction, so concurrent requests share it; one
        // that finds its delta already taken waits on the persist lock until that
        // transaction ends. A duplicate is persisted too: its first delivery may have been
        // answered with an error after staging. A failed write answers 5xx (the edge sends
        // the summary again, with its number) and keeps everything staged.
        control
            .store()
            .persist()
            .map(|_| ())
            .map_err(crate::ingest::IngestError::Store)
    })
    .await
    .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response())?
    .map_err(ingest_error)?;
    s.control
        .record_edge_activity("edge.ingest", &edge_audit, &p.actor(), &client, bytes);
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
        IngestError::Busy(_) => {
            let mut r = ApiError(StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response();
            r.headers_mut().insert(
                header::RETRY_AFTER,
                header::HeaderValue::from(crate::ingest::RETRY_BUSY_SECS),
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
    /// Only records whose actor is this (`token:<id>`, `user:<name>`, `cli`, ...).
    actor: Option<String>,
    /// Only records whose action starts with this (`policy.`, `auth.failure`, ...).
    action: Option<String>,
    /// Only records from this client address.
    client: Option<String>,
    /// Only records at or after this Unix second.
    from: Option<i64>,
    /// Only records before this Unix second.
    to: Option<i64>,
}

async fn audit(
    State(s): State<ApiState>,
    Extension(p): Extension<Principal>,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Json<serde_json::Value>> {
    require(&p, Permission::Admin)?;
    let filter = crate::audit::AuditFilter {
        since: q.since,
        limit: q.limit.unwrap_or(1000).clamp(1, 10_000),
        actor: q.actor.filter(|v| !v.is_empty()),
        action: q.action.filter(|v| !v.is_empty()),
        client: q.client.filter(|v| !v.is_empty()),
        from: q.from,
        to: q.to,
    };
    let entries = s.control.store().search_audit(&filter)?;
    Ok(Json(json!({"entries": entries})))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ExportQuery {
    since: i64,
}

/// The audit log as JSON lines (one record with its hash per line), oldest first.
async fn audit_export(
    State(s): State<ApiState>,
    Extension(p): Extension<Principal>,
    Query(q): Query<ExportQuery>,
) -> ApiResult<Response> {
    require(&p, Permission::Admin)?;
    let mut out = Vec::new();
    s.control.store().export_audit(q.since, &mut out)?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-ndjson"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        out,
    )
        .into_response())
}

/// Recomputes the audit chain: `{"ok": true, ...}` or `{"ok": false, "error": ...}`.
async fn audit_verify(
    State(s): State<ApiState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Json<serde_json::Value>> {
    require(&p, Permission::Admin)?;
    Ok(Json(match s.control.store().verify_audit()? {
        Ok(v) => json!({"ok": true, "verified": v}),
        Err(e) => json!({"ok": false, "error": e}),
    }))
}

async fn users(
    State(s): State<ApiState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Json<serde_json::Value>> {
    require(&p, Permission::Admin)?;
    Ok(Json(json!({"users": s.control.store().users()?})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    name: String,
    role: String,
}

/// Creates a user (or resets one): the one-time enrolment secret in the answer.
async fn new_user(
    State(s): State<ApiState>,
    Extension(p): Extension<Principal>,
    body: Result<Json<NewUser>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    require(&p, Permission::Admin)?;
    let Json(b) = body.map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.body_text()))?;
    let role = Role::parse(&b.role).ok_or_else(|| {
        ApiError(
            StatusCode::BAD_REQUEST,
            format!("role: unknown role {:?} (viewer, editor, admin)", b.role),
        )
    })?;
    let secret = s
        .control
        .store()
        .create_user(&b.name, role, &p.actor())
        .map_err(crate::signin::user_error)?;
    Ok((
        StatusCode::CREATED,
        Json(
            json!({"name": b.name, "role": role, "enrolment_secret": secret,
            "expires_in_seconds": crate::users::ENROL_TTL_SECS}),
        ),
    ))
}

async fn disable_user(
    State(s): State<ApiState>,
    Extension(p): Extension<Principal>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    require(&p, Permission::Admin)?;
    if s.control.store().disable_user(&name, &p.actor())? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ControlError::NotFound {
            what: "user",
            id: name,
        }
        .into())
    }
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
    /// `30d`, `12h`, ... from now, or `never`. Default: 90 days, none for edge tokens.
    #[serde(default)]
    expires: Option<String>,
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
    let expires_at = match &b.expires {
        Some(e) => {
            crate::auth::parse_expires(e).map_err(|m| ApiError(StatusCode::BAD_REQUEST, m))?
        }
        None => {
            crate::auth::default_expiry(role).map(|d| crate::store::now_secs() + d.as_secs() as i64)
        }
    };
    let (token, info) = create_token_with(
        s.control.store(),
        role,
        &b.name,
        b.edge.as_deref(),
        expires_at,
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
