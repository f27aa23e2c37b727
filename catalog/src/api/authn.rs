//! Who is calling: bearer tokens and session cookies checked for every API request and
//! for edges' policy syncs (HTTP and gRPC), with the failed-authentication limits of
//! `crate::guard` and the 401 answers.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{require, ApiError, ApiState};
use crate::auth::{check_token, Permission, Principal, Role, TokenCheck};
use crate::control::ControlPlane;

/// [`principal_of`] on the blocking pool (a token not looked up yet is read from the
/// database).
pub(super) async fn principal_blocking(
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
