//! The deployment's sketch key: kept beside the database (0600), never in it; handed to
//! edge tokens only; summaries hashed under another key keep their counts and lose their
//! hashes when ingested.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;
use weir_api::fixtures::kv;
use weir_api::otlp::common::v1::{any_value, AnyValue};
use weir_api::otlp::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use weir_api::otlp::resource::v1::Resource;
use weir_api::{Batch, Payload};
use weir_catalog::auth::{create_token, Role};
use weir_catalog::component::app;
use weir_catalog::control::{sketch_key_path, ControlPlane};
use weir_summary::{MetadataConfig, MetadataHandle, SketchKey};

fn batch() -> Batch {
    let records = (0..40)
        .map(|i| LogRecord {
            time_unix_nano: 1_700_000_000_000_000_000 + i,
            body: Some(AnyValue {
                value: Some(any_value::Value::StringValue("user signed up".into())),
            }),
            attributes: vec![kv("user.id", format!("u{i}"))],
            ..Default::default()
        })
        .collect();
    Batch::new(Payload::Logs(
        weir_api::otlp::collector::logs::v1::ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(Resource {
                    attributes: vec![kv("service.name", "signup")],
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

async fn get(app: &axum::Router, uri: &str, token: Option<&str>) -> (StatusCode, String) {
    let mut req = Request::builder().method(Method::GET).uri(uri);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

#[tokio::test]
async fn only_edges_read_the_key_and_it_is_not_in_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cp.db");
    let control = Arc::new(ControlPlane::open(&db).unwrap());
    let key = control.sketch_key();
    // Beside the database, owner-only, the same for every opener.
    let on_disk = std::fs::read_to_string(sketch_key_path(&db)).unwrap();
    assert_eq!(on_disk.trim(), key.to_hex());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(sketch_key_path(&db))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert_eq!(ControlPlane::open(&db).unwrap().sketch_key(), key);

    let app = app(control.clone(), true, 7);
    let token = |r| create_token(control.store(), r, "t", "test").unwrap().0;
    let (st, body) = get(&app, "/api/v1/sketch-key", Some(&token(Role::Edge))).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["key"], key.to_hex());
    assert_eq!(v["id"], key.id());
    for role in [Role::Viewer, Role::Editor, Role::Admin] {
        let (st, body) = get(&app, "/api/v1/sketch-key", Some(&token(role))).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{role:?}: {body}");
        assert!(!body.contains(&key.to_hex()));
        assert!(body.contains("edge tokens only"), "{body}");
    }
    let (st, _) = get(&app, "/api/v1/sketch-key", None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);

    // Ingest data, then look for the key in every byte of the database files.
    let h = MetadataHandle::new(&MetadataConfig::default());
    h.set_key(key);
    h.observe(&batch());
    control.ingest(&h.take()).unwrap();
    let hex = key.to_hex();
    let raw = key.to_bytes();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path == sketch_key_path(&db) {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            !bytes.windows(hex.len()).any(|w| w == hex.as_bytes())
                && !bytes.windows(raw.len()).any(|w| w == raw),
            "the key is in {}",
            path.display()
        );
    }
}

#[test]
fn foreign_key_summaries_keep_counts_and_lose_hashes() {
    let dir = tempfile::tempdir().unwrap();
    let control = ControlPlane::open(&dir.path().join("cp.db")).unwrap();
    let distinct = |c: &ControlPlane| {
        let (s, _, _) = &c.catalog().unwrap()["signup"];
        (
            s.logs.volume.items,
            s.logs.attributes.item["user.id"].distinct.estimate(),
        )
    };

    let own = MetadataHandle::new(&MetadataConfig::default());
    own.set_key(control.sketch_key());
    own.observe(&batch());
    control.ingest(&own.take()).unwrap();
    assert_eq!(distinct(&control), (40, 40));

    // The same values from an edge that has not got the key yet: counted, not re-counted.
    let stranger = MetadataHandle::new(&MetadataConfig::default());
    stranger.set_key(SketchKey::random());
    stranger.observe(&batch());
    control.ingest(&stranger.take()).unwrap();
    assert_eq!(distinct(&control), (80, 40));
}
