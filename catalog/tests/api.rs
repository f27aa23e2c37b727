//! The control plane's HTTP API through the real router: every role against every
//! endpoint, 401s, and the catalog -> finding -> accepted policy -> edge sync path.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use prost::Message;
use tower::ServiceExt;
use weir_api::otlp::common::v1::{any_value, AnyValue, KeyValue};
use weir_api::otlp::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use weir_api::otlp::resource::v1::Resource;
use weir_api::{Batch, Payload};
use weir_catalog::auth::{create_token_for, Role};
use weir_catalog::component::{app, policy_check};
use weir_catalog::control::ControlPlane;
use weir_policy_contract::proto;
use weir_summary::{MetadataConfig, MetadataHandle};

struct Env {
    _dir: tempfile::TempDir,
    control: Arc<ControlPlane>,
    app: axum::Router,
    tokens: Vec<(Role, String)>,
}

fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let control = Arc::new(
        ControlPlane::open(&dir.path().join("cp.db"))
            .unwrap()
            .with_policy_check(policy_check()),
    );
    let tokens = [Role::Viewer, Role::Editor, Role::Admin, Role::Edge]
        .into_iter()
        .map(|r| {
            let edge = (r == Role::Edge).then_some("edge-a");
            let t = create_token_for(control.store(), r, "t", edge, "test").unwrap();
            (r, t.0)
        })
        .collect();
    let app = app(control.clone(), true, 7);
    Env {
        _dir: dir,
        control,
        app,
        tokens,
    }
}

impl Env {
    fn token(&self, r: Role) -> &str {
        &self.tokens.iter().find(|(role, _)| *role == r).unwrap().1
    }

    async fn call(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> (StatusCode, serde_json::Value) {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let body = match body {
            Some(b) => {
                req = req.header("content-type", "application/json");
                Body::from(b.to_string())
            }
            None => Body::empty(),
        };
        let resp = self
            .app
            .clone()
            .oneshot(req.body(body).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        (status, json)
    }
}

fn s(v: &str) -> Option<AnyValue> {
    Some(AnyValue {
        value: Some(any_value::Value::StringValue(v.to_string())),
    })
}

fn logs(service: &str, bodies: &[(&str, &str)]) -> Batch {
    let records = bodies
        .iter()
        .enumerate()
        .map(|(i, (sev, body))| LogRecord {
            time_unix_nano: 1_700_000_000_000_000_000 + i as u64 * 1_000_000_000,
            severity_text: sev.to_string(),
            severity_number: if *sev == "DEBUG" { 5 } else { 9 },
            body: s(body),
            ..Default::default()
        })
        .collect();
    Batch::new(Payload::Logs(
        weir_api::otlp::collector::logs::v1::ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(Resource {
                    attributes: vec![KeyValue {
                        key: "service.name".into(),
                        value: s(service),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
                scope_logs: vec![ScopeLogs {
                    log_records: records,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        },
    ))
}

#[tokio::test]
async fn missing_or_invalid_token_is_401() {
    let e = env();
    let (st, body) = e.call(Method::GET, "/api/v1/services", None, None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert!(body["error"]
        .as_str()
        .unwrap()
        .contains("missing bearer token"));
    let (st, body) = e
        .call(
            Method::GET,
            "/api/v1/services",
            Some("weir_nope_nope"),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "invalid or revoked token");
}

#[tokio::test]
async fn every_role_against_every_endpoint() {
    let e = env();
    let policy = serde_json::json!({"policy": {"id": "p-{n}", "name": "drop debug",
        "log": {"match": [{"log_field": "severity_text", "exact": "DEBUG"}], "keep": "none"}}});
    // (method, uri, body, roles allowed)
    let cases: Vec<(Method, &str, Option<serde_json::Value>, &[Role])> = vec![
        (
            Method::GET,
            "/api/v1/services",
            None,
            &[Role::Viewer, Role::Editor, Role::Admin],
        ),
        (
            Method::GET,
            "/api/v1/overview",
            None,
            &[Role::Viewer, Role::Editor, Role::Admin],
        ),
        (
            Method::GET,
            "/api/v1/findings",
            None,
            &[Role::Viewer, Role::Editor, Role::Admin],
        ),
        (
            Method::GET,
            "/api/v1/policies",
            None,
            &[Role::Viewer, Role::Editor, Role::Admin],
        ),
        (
            Method::GET,
            "/api/v1/edges",
            None,
            &[Role::Viewer, Role::Editor, Role::Admin],
        ),
        (
            Method::POST,
            "/api/v1/policies",
            Some(policy.clone()),
            &[Role::Editor, Role::Admin],
        ),
        (Method::GET, "/api/v1/audit", None, &[Role::Admin]),
        (Method::GET, "/api/v1/tokens", None, &[Role::Admin]),
        (
            Method::POST,
            "/api/v1/tokens",
            Some(serde_json::json!({"role": "viewer"})),
            &[Role::Admin],
        ),
        (
            Method::POST,
            "/api/v1/ingest",
            Some(serde_json::json!({"services": {}})),
            &[Role::Edge, Role::Admin],
        ),
    ];
    let mut n = 0;
    for (method, uri, body, allowed) in cases {
        for role in [Role::Viewer, Role::Editor, Role::Admin, Role::Edge] {
            n += 1;
            let body = body.clone().map(|b| {
                serde_json::from_str(&b.to_string().replace("{n}", &n.to_string())).unwrap()
            });
            let (st, resp) = e.call(method.clone(), uri, Some(e.token(role)), body).await;
            if allowed.contains(&role) {
                assert!(st.is_success(), "{role:?} {method} {uri}: {st} {resp}");
            } else {
                assert_eq!(st, StatusCode::FORBIDDEN, "{role:?} {method} {uri}: {resp}");
                assert!(resp["error"]
                    .as_str()
                    .unwrap()
                    .starts_with(&format!("role {}", role.as_str())));
            }
        }
    }
    // Sync: only edge (and admin) tokens.
    for role in [Role::Viewer, Role::Editor, Role::Admin, Role::Edge] {
        let req = Request::post("/v1/policy/sync")
            .header("authorization", format!("Bearer {}", e.token(role)))
            .header("content-type", "application/x-protobuf")
            .body(Body::from(proto::SyncRequest::default().encode_to_vec()))
            .unwrap();
        let st = e.app.clone().oneshot(req).await.unwrap().status();
        let ok = matches!(role, Role::Edge | Role::Admin);
        assert_eq!(st.is_success(), ok, "{role:?}: {st}");
        if !ok {
            assert_eq!(st, StatusCode::FORBIDDEN);
        }
    }
}

#[tokio::test]
async fn invalid_policy_is_400_with_the_engine_message_and_duplicates_409() {
    let e = env();
    let ed = Some(e.token(Role::Editor));
    let bad = serde_json::json!({"policy": {"id": "bad", "name": "bad",
        "log": {"match": [{"log_field": "body", "regex": "([bad"}], "keep": "none"}}});
    let (st, body) = e
        .call(Method::POST, "/api/v1/policies", ed, Some(bad))
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let msg = body["error"].as_str().unwrap();
    assert!(
        msg.starts_with("policy bad: ") && msg.contains("invalid regex"),
        "{msg}"
    );
    let good = serde_json::json!({"policy": {"id": "g", "name": "g",
        "log": {"match": [{"log_field": "body", "contains": "x"}], "keep": "none"}}});
    assert_eq!(
        e.call(Method::POST, "/api/v1/policies", ed, Some(good.clone()))
            .await
            .0,
        StatusCode::CREATED
    );
    let (st, body) = e
        .call(Method::POST, "/api/v1/policies", ed, Some(good))
        .await;
    assert_eq!(st, StatusCode::CONFLICT);
    assert_eq!(body["error"], "policy \"g\" already exists");
    let (st, _) = e
        .call(Method::DELETE, "/api/v1/policies/nope", ed, None)
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn finding_to_policy_to_edge_sync_with_hits_and_audit() {
    let e = env();
    // The catalog learns from real batches through the summariser.
    let handle = MetadataHandle::new(&MetadataConfig::default());
    let mut bodies = Vec::new();
    for i in 0..300 {
        bodies.push(("DEBUG", format!("cache lookup key=user:{i} hit=true")));
        bodies.push(("INFO", format!("order {i} placed")));
    }
    let refs: Vec<(&str, &str)> = bodies.iter().map(|(a, b)| (*a, b.as_str())).collect();
    handle.observe(&logs("checkout", &refs));
    let summary = handle.take();
    let (st, _) = e
        .call(
            Method::POST,
            "/api/v1/ingest",
            Some(e.token(Role::Edge)),
            Some(serde_json::to_value(&summary).unwrap()),
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);

    let (_, f) = e
        .call(
            Method::GET,
            "/api/v1/findings",
            Some(e.token(Role::Viewer)),
            None,
        )
        .await;
    let findings = f["findings"].as_array().unwrap();
    let debug = findings
        .iter()
        .find(|f| f["kind"] == "debug_logs" && f["service"] == "checkout")
        .unwrap_or_else(|| panic!("no debug finding in {f}"));
    assert!(debug["evidence"][0]
        .as_str()
        .unwrap()
        .starts_with("300 of 600 log records"));
    assert!(debug["saving_bytes_per_day"].as_f64().unwrap() > 0.0);
    let id = debug["id"].as_str().unwrap().to_string();

    // Overlapping findings never claim more saving than a service's volume.
    let (_, o) = e
        .call(
            Method::GET,
            "/api/v1/overview",
            Some(e.token(Role::Viewer)),
            None,
        )
        .await;
    let svc = &o["services"][0];
    assert_eq!(svc["service"], "checkout");
    let saving = svc["saving_bytes_per_day"].as_f64().unwrap();
    assert!(
        saving > 0.0 && saving <= svc["bytes_per_day"].as_f64().unwrap(),
        "{o}"
    );
    assert_eq!(o["saving_bytes_per_day"].as_f64().unwrap(), saving);

    let (st, pol) = e
        .call(
            Method::POST,
            &format!("/api/v1/findings/{id}/accept"),
            Some(e.token(Role::Editor)),
            Some(serde_json::json!({"shadow": true})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{pol}");
    assert_eq!(pol["shadow"], true);
    // Accepted findings leave the list.
    let (_, f) = e
        .call(
            Method::GET,
            "/api/v1/findings",
            Some(e.token(Role::Viewer)),
            None,
        )
        .await;
    assert!(f["findings"]
        .as_array()
        .unwrap()
        .iter()
        .all(|x| x["id"] != id.as_str()));

    // An edge syncs: gets the policy (with the shadow label), then reports hits.
    let sync = |statuses: Vec<proto::PolicySyncStatus>| {
        let req = proto::SyncRequest {
            client_metadata: Some(proto::ClientMetadata {
                resource_attributes: vec![
                    KeyValue {
                        key: "service.instance.id".into(),
                        value: s("edge-1"),
                        ..Default::default()
                    },
                    KeyValue {
                        key: "service.name".into(),
                        value: s("weir-edge"),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }),
            policy_statuses: statuses,
            ..Default::default()
        };
        Request::post("/v1/policy/sync")
            .header("authorization", format!("Bearer {}", e.token(Role::Edge)))
            .header("content-type", "application/x-protobuf")
            .body(Body::from(req.encode_to_vec()))
            .unwrap()
    };
    let resp = e.app.clone().oneshot(sync(vec![])).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let r = proto::SyncResponse::decode(body).unwrap();
    assert_eq!(r.policies.len(), 1);
    assert_eq!(r.policies[0].id, id);
    assert_eq!(r.recommended_sync_interval_seconds, 7);
    assert!(r.policies[0].labels.iter().any(|l| l.key == "weir.shadow"));
    let status = proto::PolicySyncStatus {
        id: id.clone(),
        match_hits: 42,
        match_misses: 8,
        ..Default::default()
    };
    assert_eq!(
        e.app
            .clone()
            .oneshot(sync(vec![status]))
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );

    let (_, p) = e
        .call(
            Method::GET,
            "/api/v1/policies",
            Some(e.token(Role::Viewer)),
            None,
        )
        .await;
    assert_eq!(p["policies"][0]["hits"], 42);
    assert_eq!(p["policies"][0]["misses"], 8);
    // Recorded under the token's edge name: one edge cannot report as another.
    assert_eq!(p["edges"][0]["edge"], "edge-a/edge-1");
    assert_eq!(p["edges"][0]["in_sync"], true);

    // Enforce it: the audit log has the accept and the update, with before/after.
    let (st, _) = e
        .call(
            Method::PUT,
            &format!("/api/v1/policies/{id}"),
            Some(e.token(Role::Editor)),
            Some(serde_json::json!({"shadow": false})),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let (_, a) = e
        .call(
            Method::GET,
            "/api/v1/audit",
            Some(e.token(Role::Admin)),
            None,
        )
        .await;
    let all = a["entries"].as_array().unwrap();
    // Reads are audited too (each GET above, by its token); the changes are these.
    let reads: Vec<&str> = all
        .iter()
        .filter(|x| x["action"] == "api.read")
        .map(|x| x["target"].as_str().unwrap())
        .collect();
    assert!(reads.contains(&"/api/v1/findings"), "{reads:?}");
    let entries: Vec<&serde_json::Value> =
        all.iter().filter(|x| x["action"] != "api.read").collect();
    let actions: Vec<&str> = entries
        .iter()
        .map(|x| x["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.ends_with(&["suggestion.accept", "policy.update"]),
        "{actions:?}"
    );
    let last = *entries.last().unwrap();
    assert_eq!(last["before"]["shadow"], true);
    assert_eq!(last["after"]["shadow"], false);
    assert!(last["actor"].as_str().unwrap().starts_with("token:"));
    assert_eq!(e.control.store().policies().unwrap().len(), 1);
}

#[tokio::test]
async fn openapi_lists_every_route_and_needs_no_token() {
    let e = env();
    let (st, doc) = e
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.0.3");
    for path in [
        "/api/v1/services",
        "/api/v1/findings/{id}/accept",
        "/api/v1/policies/{id}",
        "/api/v1/audit",
        "/api/v1/audit/export",
        "/api/v1/audit/verify",
        "/api/v1/users",
        "/api/v1/users/{name}",
        "/api/v1/sign-in",
        "/auth/oidc/login",
        "/auth/oidc/callback",
        "/api/v1/sign-out",
        "/api/v1/enrol/start",
        "/api/v1/enrol/finish",
        "/api/v1/tokens",
        "/v1/policy/sync",
        "/api/v1/ingest",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} missing");
    }
}
