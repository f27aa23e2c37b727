//! The UI's files through the real router: served without a token at `/` and `/ui/...`
//! with their media types and a same-origin-only content security policy, while every
//! data route still answers 401 without one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;
use weir_catalog::component::app;
use weir_catalog::control::ControlPlane;

async fn get(app: &axum::Router, uri: &str) -> (StatusCode, axum::http::HeaderMap, String) {
    let resp = app
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn ui_files_need_no_token_and_data_still_does() {
    let dir = tempfile::tempdir().unwrap();
    let control = Arc::new(ControlPlane::open(&dir.path().join("cp.db")).unwrap());
    let app = app(control, true, 30);

    let (st, h, body) = get(&app, "/").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(h["content-type"], "text/html; charset=utf-8");
    assert!(body.contains(r#"<script type="module" src="/ui/app.js"></script>"#));
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("connect-src 'self'"));
    assert_eq!(h["x-content-type-options"], "nosniff");

    for name in weir_catalog::ui::asset_names() {
        let (st, h, body) = get(&app, &format!("/ui/{name}")).await;
        assert_eq!(st, StatusCode::OK, "{name}");
        assert!(!body.is_empty(), "{name}");
        let want = match name.rsplit('.').next().unwrap() {
            "js" => "text/javascript; charset=utf-8",
            "css" => "text/css; charset=utf-8",
            _ => "text/html; charset=utf-8",
        };
        assert_eq!(h["content-type"], want, "{name}");
    }
    let (st, _, body) = get(&app, "/ui/secrets.db").await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_eq!(body, "no UI file \"secrets.db\"");
    let (st, _, _) = get(&app, "/ui/../cp.db").await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    let (st, _, body) = get(&app, "/api/v1/overview").await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert!(body.contains("missing bearer token"), "{body}");
}
