//! Policies written and read as YAML through the control plane's real router: the
//! document in YAML on create and update (`application/yaml`, `text/yaml`), read back as
//! YAML (`Accept: application/yaml`) and in JSON answers (`yaml`); YAML errors with their
//! line and column, field errors as for JSON, and bodies over the limit.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;
use weir_catalog::auth::{create_token_for, Role};
use weir_catalog::component::{app, policy_check};
use weir_catalog::control::ControlPlane;

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
    let tokens = [Role::Viewer, Role::Editor]
        .into_iter()
        .map(|r| {
            (
                r,
                create_token_for(control.store(), r, "t", None, "test")
                    .unwrap()
                    .0,
            )
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

    /// A JSON GET: (status, body).
    async fn get_json(&self, uri: &str, token: &str) -> (StatusCode, serde_json::Value) {
        let (st, _, body) = raw(self, Method::GET, uri, token, &[], vec![]).await;
        (
            st,
            serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
        )
    }
}

/// One request with a raw body and the given headers: (status, content type, body text).
async fn raw(
    e: &Env,
    method: Method,
    uri: &str,
    token: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (StatusCode, String, String) {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {token}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = e
        .app
        .clone()
        .oneshot(req.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, ct, String::from_utf8_lossy(&bytes).into_owned())
}

const YAML: (&str, &str) = ("content-type", "application/yaml");

/// The YAML the control plane renders for the policy `y1` (its canonical editing form).
const Y1: &str = "id: y1
name: drop debug
log:
  match:
    - log_field: severity_text
      exact: DEBUG
    - log_attribute: answer
      exact: no
  keep: none
";

#[tokio::test]
async fn policies_are_written_as_yaml_and_read_back_as_yaml() {
    let e = env();
    let ed = e.token(Role::Editor).to_string();
    // Written as people write it: keys in any order, a comment, `no` (a string in YAML 1.2).
    let text = "# drops debug\nname: drop debug\nid: y1\nlog:\n  keep: none\n  match:\n  - exact: DEBUG\n    log_field: severity_text\n  - {log_attribute: answer, exact: no}\n";
    let (st, ct, body) = raw(
        &e,
        Method::POST,
        "/api/v1/policies?shadow=true",
        &ed,
        &[YAML],
        text.into(),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    assert!(ct.starts_with("application/json"), "{ct}");
    let created: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(created["shadow"], true);
    assert_eq!(created["yaml"], Y1);
    let stored = e.control.store().policy("y1").unwrap().unwrap();
    assert_eq!(
        stored.body,
        serde_json::json!({"id": "y1", "name": "drop debug", "log": {"keep": "none", "match": [
            {"exact": "DEBUG", "log_field": "severity_text"},
            {"log_attribute": "answer", "exact": "no"}]}})
    );
    assert!(stored.shadow);

    // Read back as YAML: exactly the rendering, which reads back to the same document.
    let viewer = e.token(Role::Viewer).to_string();
    let (st, ct, yaml) = raw(
        &e,
        Method::GET,
        "/api/v1/policies/y1",
        &viewer,
        &[("accept", "application/yaml")],
        vec![],
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(ct, "application/yaml; charset=utf-8");
    assert_eq!(yaml, Y1);
    // JSON when JSON is asked for too; the JSON carries the YAML.
    let (_, ct, json) = raw(
        &e,
        Method::GET,
        "/api/v1/policies/y1",
        &viewer,
        &[("accept", "application/json, application/yaml")],
        vec![],
    )
    .await;
    assert!(ct.starts_with("application/json"), "{ct}");
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["yaml"], Y1);
    assert_eq!(json["body"], stored.body);
    let (_, list) = e.get_json("/api/v1/policies", &viewer).await;
    assert_eq!(list["policies"][0]["policy"]["yaml"], Y1);

    // Updated as YAML (text/yaml with a charset), the switches as query parameters.
    let edited = Y1.replace("name: drop debug", "name: drop debug (edited)");
    let (st, _, body) = raw(
        &e,
        Method::PUT,
        "/api/v1/policies/y1?enabled=false",
        &ed,
        &[("content-type", "text/yaml; charset=utf-8")],
        edited.clone().into(),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let p = e.control.store().policy("y1").unwrap().unwrap();
    assert_eq!(p.name, "drop debug (edited)");
    assert!(!p.enabled);
    assert!(p.shadow, "shadow is left as it was");
    let (_, _, yaml) = raw(
        &e,
        Method::GET,
        "/api/v1/policies/y1",
        &viewer,
        &[("accept", "text/yaml")],
        vec![],
    )
    .await;
    assert_eq!(yaml, edited);

    // JSON is still taken as before.
    let doc = serde_json::json!({"policy": {"id": "j1", "name": "j", "log": {"match": [{"log_field": "body", "contains": "x"}], "keep": "none"}}});
    let (st, _, body) = raw(
        &e,
        Method::POST,
        "/api/v1/policies",
        &ed,
        &[("content-type", "application/json")],
        doc.to_string().into(),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    let (_, _, yaml) = raw(
        &e,
        Method::GET,
        "/api/v1/policies/j1",
        &viewer,
        &[("accept", "application/yaml")],
        vec![],
    )
    .await;
    assert_eq!(
        yaml,
        "id: j1\nname: j\nlog:\n  match:\n    - log_field: body\n      contains: x\n  keep: none\n"
    );
    // The audit log has each write.
    let actions: Vec<String> = e
        .control
        .store()
        .audit_log(0, 100)
        .unwrap()
        .into_iter()
        .map(|a| a.action)
        .collect();
    assert_eq!(
        actions.iter().filter(|a| *a == "policy.create").count(),
        2,
        "{actions:?}"
    );
    assert!(
        actions.contains(&"policy.update".to_string()),
        "{actions:?}"
    );
}

#[tokio::test]
async fn invalid_policy_yaml_is_400_naming_the_line_and_column_or_the_field() {
    let e = env();
    let ed = e.token(Role::Editor).to_string();
    let post = |text: &'static [u8]| {
        let ed = ed.clone();
        let e = &e;
        async move {
            raw(
                e,
                Method::POST,
                "/api/v1/policies",
                &ed,
                &[YAML],
                text.to_vec(),
            )
            .await
        }
    };
    let error = |body: &str| -> String {
        serde_json::from_str::<serde_json::Value>(body).unwrap()["error"]
            .as_str()
            .unwrap()
            .to_string()
    };
    // Not YAML: the line and column of the problem.
    let (st, _, body) = post(b"id: x\nname: y\n  log: z\n").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let msg = error(&body);
    assert!(msg.starts_with("policy YAML: line 3 column "), "{msg}");
    // A key twice.
    let (st, _, body) = post(b"id: x\nname: y\nid: z\n").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let msg = error(&body);
    assert!(
        msg.starts_with("policy YAML: line 3 column 1: ") && msg.contains("duplicate"),
        "{msg}"
    );
    // YAML, but not a policy document.
    let (st, _, body) = post(b"- a\n- b\n").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(error(&body), "policy YAML: line 1 column 1: a policy document is a mapping (id, name, and log, metric or trace), not a list");
    // Valid YAML, invalid policy: the policy and the field, as for JSON.
    let (st, _, body) = post(b"id: bad\nname: bad\nlog:\n  match:\n    - log_field: body\n      regex: \"([bad\"\n  keep: none\n").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let msg = error(&body);
    assert!(
        msg.starts_with("policy bad: ") && msg.contains("invalid regex"),
        "{msg}"
    );
    // Not UTF-8.
    let (st, _, body) = post(b"id: \xff\n").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(
        error(&body),
        "policy YAML: not UTF-8 (invalid byte at offset 4)"
    );
    // A switch in the query of a JSON write is refused, not ignored.
    let doc = serde_json::json!({"policy": {"id": "q", "name": "q", "log": {"match": [{"log_field": "body", "contains": "x"}], "keep": "none"}}});
    let (st, _, body) = raw(
        &e,
        Method::POST,
        "/api/v1/policies?shadow=true",
        &ed,
        &[("content-type", "application/json")],
        doc.to_string().into(),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(
        error(&body),
        "query parameter shadow: with a JSON body, shadow is a field of the body"
    );
    // A role that may not edit gets 403 whatever the body.
    let viewer = e.token(Role::Viewer).to_string();
    let (st, _, _) = raw(
        &e,
        Method::POST,
        "/api/v1/policies",
        &viewer,
        &[YAML],
        b"id: [".to_vec(),
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert!(e.control.store().policies().unwrap().is_empty());
}

#[tokio::test]
async fn oversized_policy_bodies_are_413_as_yaml_and_as_json() {
    let e = env();
    let ed = e.token(Role::Editor).to_string();
    // 2 MiB is the limit; one byte more of comment is refused before it is read as YAML.
    let mut yaml = b"id: big\nname: big\nlog:\n  match:\n    - log_field: body\n      contains: x\n  keep: none\n#".to_vec();
    yaml.resize(2 << 20, b'x');
    let (st, _, body) = raw(
        &e,
        Method::POST,
        "/api/v1/policies",
        &ed,
        &[YAML],
        yaml.clone(),
    )
    .await;
    assert_eq!(
        st,
        StatusCode::CREATED,
        "exactly the limit is taken: {body}"
    );
    yaml.push(b'x');
    let (st, _, body) = raw(&e, Method::PUT, "/api/v1/policies/big", &ed, &[YAML], yaml).await;
    assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    let mut json = br#"{"policy": {"id": "big2", "name": "n", "log": {"match": [{"log_field": "body", "contains": "x"}], "keep": "none"}}}"#.to_vec();
    json.resize((2 << 20) + 1, b' ');
    let (st, _, body) = raw(
        &e,
        Method::POST,
        "/api/v1/policies",
        &ed,
        &[("content-type", "application/json")],
        json,
    )
    .await;
    assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    let ids: Vec<String> = e
        .control
        .store()
        .policies()
        .unwrap()
        .into_iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(ids, vec!["big".to_string()]);
}
