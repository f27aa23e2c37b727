//! The catalog's endpoints: overview, services (read, export, delete), value erasure,
//! the read-only sources, edges, the sketch key and summary ingest from edges.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::json;

use super::{blocking, require, ApiError, ApiResult, ApiState};
use crate::auth::{Permission, Principal, Role};
use crate::views;

pub(super) async fn overview(
    State(s): State<ApiState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Json<serde_json::Value>> {
    require(&p, Permission::Read)?;
    blocking(move || Ok(Json(views::overview(&s.control)?))).await
}

pub(super) async fn services(
    State(s): State<ApiState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Json<serde_json::Value>> {
    require(&p, Permission::Read)?;
    blocking(move || Ok(Json(json!({"services": s.control.services()?})))).await
}

pub(super) async fn service(
    State(s): State<ApiState>,
    Extension(p): Extension<Principal>,
    Path(name): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    require(&p, Permission::Read)?;
    blocking(move || Ok(Json(views::service(&name, &s.control.service(&name)?)))).await
}

pub(super) async fn delete_service(
    State(s): State<ApiState>,
    Extension(p): Extension<Principal>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    require(&p, Permission::Admin)?;
    s.control.delete_service(&name, &p.actor())?;
    Ok(StatusCode::NO_CONTENT)
}

/// Everything stored about a service, as JSON (data subject access and portability).
pub(super) async fn export_service(
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
pub(super) struct EraseValueBody {
    value: String,
}

/// Erases every stored trace of one value (by its keyed hashes).
pub(super) async fn erase_value(
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

pub(super) async fn prometheus_sources(
    State(s): State<ApiState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Json<serde_json::Value>> {
    require(&p, Permission::Read)?;
    let snaps = s.control.store().prometheus_snapshots()?;
    Ok(Json(json!({ "sources": snaps })))
}

pub(super) async fn edges(
    State(s): State<ApiState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Json<serde_json::Value>> {
    require(&p, Permission::Read)?;
    blocking(move || Ok(Json(json!({"edges": s.control.store().edges()?})))).await
}

/// The deployment's sketch key, for edges only: not even admins read it here (an admin
/// who wants it must mint an edge token, which is audited).
pub(super) async fn sketch_key(
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

pub(super) async fn ingest(
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
