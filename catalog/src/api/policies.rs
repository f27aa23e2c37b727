//! Findings and the policies they become: accept (shadow or enforced) and dismiss a
//! finding; list, read, create, update and delete policies.
//!
//! A policy is written as JSON (`{"policy": {...}, "shadow": ...}`) or, with a YAML
//! content type, as the policy document itself in YAML, read by weir-policy-contract's
//! [`policy_from_yaml`]; it is read back as YAML with `Accept: application/yaml`, and every
//! policy and suggested policy in a JSON answer carries its YAML as rendered by
//! [`policy_to_yaml`] (what the UI shows and edits: the UI has no YAML code of its own).

use axum::body::Bytes;
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::json;
use weir_policy_contract::yaml::{policy_from_yaml, policy_to_yaml};

use super::{blocking, require, ApiError, ApiResult, ApiState};
use crate::auth::{Permission, Principal};
use crate::control::ControlError;
use crate::store::StoredPolicy;
use crate::views;

pub(super) async fn findings(
    State(s): State<ApiState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Json<serde_json::Value>> {
    require(&p, Permission::Read)?;
    blocking(move || {
        let mut v = crate::views::findings(&s.control)?;
        if let Some(list) = v.get_mut("findings").and_then(|f| f.as_array_mut()) {
            for f in list {
                let yaml = policy_to_yaml(&f["policy"]);
                f["policy_yaml"] = yaml.into();
            }
        }
        Ok(Json(v))
    })
    .await
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub(super) struct AcceptBody {
    shadow: bool,
}

pub(super) async fn accept(
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

pub(super) async fn dismiss(
    State(s): State<ApiState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    require(&p, Permission::EditPolicies)?;
    s.control.dismiss(&id, &p.actor())?;
    Ok(StatusCode::NO_CONTENT)
}

/// The largest policy write (JSON or YAML) taken; larger is 413.
pub(super) const MAX_POLICY_BODY: usize = 2 << 20;

/// Whether the request's body is YAML: `application/yaml`, `application/x-yaml`,
/// `text/yaml` or `text/x-yaml`, with any parameters (`; charset=utf-8`).
fn is_yaml(h: &HeaderMap) -> bool {
    h.get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            let t = v.split(';').next().unwrap_or("").trim();
            [
                "application/yaml",
                "application/x-yaml",
                "text/yaml",
                "text/x-yaml",
            ]
            .iter()
            .any(|y| t.eq_ignore_ascii_case(y))
        })
        .unwrap_or(false)
}

/// Whether the answer should be YAML: `Accept` names a YAML type and not
/// `application/json`.
fn wants_yaml(h: &HeaderMap) -> bool {
    let types: Vec<String> = h
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| {
            t.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .collect();
    let yaml = types.iter().any(|t| {
        matches!(
            t.as_str(),
            "application/yaml" | "application/x-yaml" | "text/yaml" | "text/x-yaml"
        )
    });
    yaml && !types.iter().any(|t| t == "application/json")
}

/// A policy write's body: the JSON request (`T`), or the policy document read from YAML.
pub(super) enum PolicyBody<T> {
    Json(T),
    Yaml(serde_json::Value),
}

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for PolicyBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let too_large = |status: StatusCode| {
            if status == StatusCode::PAYLOAD_TOO_LARGE {
                status
            } else {
                StatusCode::BAD_REQUEST
            }
        };
        if is_yaml(req.headers()) {
            let bytes = Bytes::from_request(req, state)
                .await
                .map_err(|e| ApiError(too_large(e.status()), e.body_text()))?;
            let text = String::from_utf8(bytes.to_vec()).map_err(|e| {
                ApiError(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "policy YAML: not UTF-8 (invalid byte at offset {})",
                        e.utf8_error().valid_up_to()
                    ),
                )
            })?;
            // Up to 2 MiB of YAML (aliases bounded by the reader's budget): read on the
            // blocking pool, not on the workers that answer syncs.
            let doc = blocking(move || {
                policy_from_yaml(&text)
                    .map_err(|e| ApiError(StatusCode::BAD_REQUEST, format!("policy YAML: {e}")))
            })
            .await?;
            return Ok(PolicyBody::Yaml(doc));
        }
        match Json::<T>::from_request(req, state).await {
            Ok(Json(t)) => Ok(PolicyBody::Json(t)),
            Err(e) => Err(ApiError(too_large(e.status()), e.body_text())),
        }
    }
}

/// A stored policy as the API answers it: its fields, and `yaml`, its document as YAML.
fn policy_json(pol: &StoredPolicy) -> serde_json::Value {
    let mut v = json!(pol);
    v["yaml"] = policy_to_yaml(&pol.body).into();
    v
}

pub(super) async fn policies(
    State(s): State<ApiState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Json<serde_json::Value>> {
    require(&p, Permission::Read)?;
    blocking(move || {
        let mut v = views::policies(&s.control)?;
        if let Some(list) = v.get_mut("policies").and_then(|l| l.as_array_mut()) {
            for e in list {
                let yaml = policy_to_yaml(&e["policy"]["body"]);
                e["policy"]["yaml"] = yaml.into();
            }
        }
        Ok(Json(v))
    })
    .await
}

pub(super) async fn policy(
    State(s): State<ApiState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    require(&p, Permission::Read)?;
    let pol = s
        .control
        .store()
        .policy(&id)?
        .ok_or_else(|| ControlError::NotFound {
            what: "policy",
            id: id.clone(),
        })?;
    if wants_yaml(&headers) {
        return Ok((
            [(header::CONTENT_TYPE, "application/yaml; charset=utf-8")],
            policy_to_yaml(&pol.body),
        )
            .into_response());
    }
    Ok(Json(policy_json(&pol)).into_response())
}

/// Query of a write whose body is YAML (the document alone): the switches a JSON body
/// carries as fields.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct Switches {
    enabled: Option<bool>,
    shadow: Option<bool>,
}

fn switches(
    q: Result<Query<Switches>, axum::extract::rejection::QueryRejection>,
    yaml: bool,
    allowed: &[&str],
) -> ApiResult<Switches> {
    let Query(q) = q.map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.body_text()))?;
    let given = [
        ("enabled", q.enabled.is_some()),
        ("shadow", q.shadow.is_some()),
    ];
    for (name, set) in given {
        if set && !(yaml && allowed.contains(&name)) {
            return Err(ApiError(
                StatusCode::BAD_REQUEST,
                if yaml {
                    format!("query parameter {name} is not taken here")
                } else {
                    format!(
                        "query parameter {name}: with a JSON body, {name} is a field of the body"
                    )
                },
            ));
        }
    }
    Ok(q)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CreatePolicy {
    policy: serde_json::Value,
    #[serde(default)]
    shadow: bool,
}

pub(super) async fn create_policy(
    State(s): State<ApiState>,
    Extension(p): Extension<Principal>,
    q: Result<Query<Switches>, axum::extract::rejection::QueryRejection>,
    body: Result<PolicyBody<CreatePolicy>, ApiError>,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    require(&p, Permission::EditPolicies)?;
    let body = body?;
    let q = switches(q, matches!(body, PolicyBody::Yaml(_)), &["shadow"])?;
    let (doc, shadow) = match body {
        PolicyBody::Json(b) => (b.policy, b.shadow),
        PolicyBody::Yaml(doc) => (doc, q.shadow.unwrap_or(false)),
    };
    let pol = s.control.create_policy(doc, shadow, &p.actor())?;
    Ok((StatusCode::CREATED, Json(policy_json(&pol))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct UpdatePolicy {
    policy: Option<serde_json::Value>,
    enabled: Option<bool>,
    shadow: Option<bool>,
}

pub(super) async fn update_policy(
    State(s): State<ApiState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    q: Result<Query<Switches>, axum::extract::rejection::QueryRejection>,
    body: Result<PolicyBody<UpdatePolicy>, ApiError>,
) -> ApiResult<Json<serde_json::Value>> {
    require(&p, Permission::EditPolicies)?;
    let body = body?;
    let q = switches(
        q,
        matches!(body, PolicyBody::Yaml(_)),
        &["enabled", "shadow"],
    )?;
    let b = match body {
        PolicyBody::Json(b) => b,
        PolicyBody::Yaml(doc) => UpdatePolicy {
            policy: Some(doc),
            enabled: q.enabled,
            shadow: q.shadow,
        },
    };
    let pol = s
        .control
        .update_policy(&id, b.policy, b.enabled, b.shadow, &p.actor())?;
    Ok(Json(policy_json(&pol)))
}

pub(super) async fn delete_policy(
    State(s): State<ApiState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    require(&p, Permission::EditPolicies)?;
    s.control.delete_policy(&id, &p.actor())?;
    Ok(StatusCode::NO_CONTENT)
}
