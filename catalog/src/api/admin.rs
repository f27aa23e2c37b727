//! The admin's endpoints: the audit log (filtered, exported, verified), people and
//! tokens.

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::json;

use super::{require, ApiError, ApiResult, ApiState};
use crate::auth::{create_token_with, Permission, Principal, Role};
use crate::control::ControlError;

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct AuditQuery {
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

pub(super) async fn audit(
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
pub(super) struct ExportQuery {
    since: i64,
}

/// The audit log as JSON lines (one record with its hash per line), oldest first.
pub(super) async fn audit_export(
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
pub(super) async fn audit_verify(
    State(s): State<ApiState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Json<serde_json::Value>> {
    require(&p, Permission::Admin)?;
    Ok(Json(match s.control.store().verify_audit()? {
        Ok(v) => json!({"ok": true, "verified": v}),
        Err(e) => json!({"ok": false, "error": e}),
    }))
}

pub(super) async fn users(
    State(s): State<ApiState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Json<serde_json::Value>> {
    require(&p, Permission::Admin)?;
    Ok(Json(json!({"users": s.control.store().users()?})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewUser {
    name: String,
    role: String,
}

/// Creates a user (or resets one): the one-time enrolment secret in the answer.
pub(super) async fn new_user(
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

pub(super) async fn disable_user(
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

pub(super) async fn tokens(
    State(s): State<ApiState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Json<serde_json::Value>> {
    require(&p, Permission::Admin)?;
    Ok(Json(json!({"tokens": s.control.store().tokens()?})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewToken {
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

pub(super) async fn new_token(
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

pub(super) async fn revoke_token(
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
