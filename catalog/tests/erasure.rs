//! Erasure leaves no trace: after a service is deleted through the API (or pruned by
//! retention), none of its strings is left in any byte of any file in the data directory
//! (the database, its -wal and -shm files, the key file), while the control plane keeps
//! running with its connections open. The files are encrypted, so the scan decrypts every
//! page of the database and every frame of its -wal file with the key (live and free
//! pages alike) and searches that plaintext, besides the raw bytes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;
use weir_api::fixtures::kv;
use weir_api::otlp::common::v1::{any_value, AnyValue};
use weir_api::otlp::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use weir_api::otlp::resource::v1::Resource;
use weir_api::otlp::trace::v1::{ResourceSpans, ScopeSpans, Span};
use weir_api::{Batch, Payload};
use weir_catalog::at_rest::{decrypt_file_pages, Key};
use weir_catalog::auth::{create_token, Role};
use weir_catalog::component::app;
use weir_catalog::control::ControlPlane;
use weir_summary::{MetadataConfig, MetadataHandle};

fn sv(v: &str) -> Option<AnyValue> {
    Some(AnyValue {
        value: Some(any_value::Value::StringValue(v.into())),
    })
}

fn resource(service: &str) -> Option<Resource> {
    Some(Resource {
        attributes: vec![kv("service.name", service)],
        ..Default::default()
    })
}

/// Log lines, attribute keys and span names that carry `marker` as structure (so the
/// catalog keeps it: the point is to see it go). Markers are camelCase vocabulary words:
/// the metadata extractor stores no word that is not structure (weir-metadata's
/// `structure` module), so a nonsense marker would never be written.
fn batches(service: &str, marker: &str, round: u32) -> Vec<Batch> {
    let records = (0..50)
        .map(|i| LogRecord {
            time_unix_nano: 1_700_000_000_000_000_000 + u64::from(round) * 1000 + i,
            severity_number: 9,
            body: sv(&format!("{marker} stage finished step {i}")),
            attributes: vec![kv(&format!("{marker}.attribute"), "x")],
            ..Default::default()
        })
        .collect();
    let logs = Payload::Logs(
        weir_api::otlp::collector::logs::v1::ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: resource(service),
                scope_logs: vec![ScopeLogs {
                    log_records: records,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        },
    );
    let spans = (0..10)
        .map(|i| Span {
            name: format!("{marker} handler"),
            trace_id: vec![1; 16],
            span_id: vec![i as u8 + 1; 8],
            start_time_unix_nano: 1_700_000_000_000_000_000 + u64::from(round),
            end_time_unix_nano: 1_700_000_000_100_000_000 + u64::from(round),
            attributes: vec![kv(&format!("{marker}.span.key"), "v")],
            ..Default::default()
        })
        .collect();
    let traces = Payload::Traces(
        weir_api::otlp::collector::trace::v1::ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: resource(service),
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        },
    );
    vec![Batch::new(logs), Batch::new(traces)]
}

/// Every (file, offset) where `needle` occurs in any file under `dir`: in the raw bytes,
/// and in the pages of the database and its -wal file decrypted with `key` (every page and
/// WAL frame, live or free, decrypted without SQLite).
fn occurrences(dir: &Path, needle: &str, key: &Key) -> Vec<(String, usize)> {
    let mut hits = raw_occurrences(dir, needle);
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.display().to_string();
        if name.ends_with(".db") || name.ends_with(".db-wal") {
            let plain = decrypt_file_pages(&path, key).unwrap();
            hits.extend(find(&plain, needle).map(|i| (format!("{name} (decrypted)"), i)));
        }
    }
    hits
}

fn find<'a>(bytes: &'a [u8], needle: &'a str) -> impl Iterator<Item = usize> + 'a {
    let n = needle.as_bytes();
    bytes
        .windows(n.len())
        .enumerate()
        .filter(move |(_, w)| *w == n)
        .map(|(i, _)| i)
}

/// Every (file, offset) where `needle` occurs in the raw bytes of any file under `dir`.
fn raw_occurrences(dir: &Path, needle: &str) -> Vec<(String, usize)> {
    let mut hits = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            hits.extend(raw_occurrences(&path, needle));
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        hits.extend(find(&bytes, needle).map(|i| (path.display().to_string(), i)));
    }
    hits
}

struct Cp {
    dir: tempfile::TempDir,
    control: Arc<ControlPlane>,
    /// A second connection, as the control plane's own catalog exporter holds.
    exporter: Arc<ControlPlane>,
    app: axum::Router,
    admin: String,
}

fn control_plane() -> Cp {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("catalog.db");
    let control = Arc::new(ControlPlane::open(&db).unwrap());
    let exporter = Arc::new(ControlPlane::open(&db).unwrap());
    let admin = create_token(control.store(), Role::Admin, "a", "test")
        .unwrap()
        .0;
    let app = app(control.clone(), true, 7);
    Cp {
        dir,
        control,
        exporter,
        app,
        admin,
    }
}

impl Cp {
    fn key(&self) -> Key {
        self.control.store().key().clone()
    }

    /// Several rounds, so older versions of every row went through the WAL and free pages.
    fn feed(&self, service: &str, marker: &str) {
        let handle = MetadataHandle::new(&MetadataConfig::default());
        handle.set_key(self.control.sketch_key());
        for round in 0..4 {
            for b in batches(service, marker, round) {
                handle.observe(&b);
            }
            self.exporter.ingest(&handle.take()).unwrap();
        }
    }

    async fn delete(&self, service: &str) -> StatusCode {
        let req = Request::builder()
            .method(Method::DELETE)
            .uri(format!("/api/v1/services/{service}"))
            .header("authorization", format!("Bearer {}", self.admin))
            .body(Body::empty())
            .unwrap();
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let _ = resp.into_body().collect().await.unwrap();
        status
    }
}

#[tokio::test]
async fn deleting_a_service_leaves_none_of_its_strings_in_any_file() {
    let cp = control_plane();
    let (gone, kept) = ("QuietGoneMarker", "PurpleKeptMarker");
    cp.feed("erase-me-svc-7f3a", gone);
    cp.feed("stays-svc-2b9c", kept);
    // The strings are in the files before: the scan of the decrypted pages finds what is
    // there; the raw bytes hold none of them (the files are encrypted).
    for needle in [gone, "erase-me-svc-7f3a", kept] {
        assert!(
            !occurrences(cp.dir.path(), needle, &cp.key()).is_empty(),
            "{needle} not written at all"
        );
        let raw = raw_occurrences(cp.dir.path(), needle);
        assert!(
            raw.is_empty(),
            "{needle} readable without the key at {raw:?}"
        );
    }

    assert_eq!(cp.delete("erase-me-svc-7f3a").await, StatusCode::NO_CONTENT);

    for needle in [gone, "erase-me-svc-7f3a", "erase-me"] {
        let hits = occurrences(cp.dir.path(), needle, &cp.key());
        assert!(hits.is_empty(), "{needle} left after deletion at {hits:?}");
    }
    // The other service is intact and still served.
    assert!(!occurrences(cp.dir.path(), kept, &cp.key()).is_empty());
    let services = cp.control.services().unwrap();
    assert_eq!(services.len(), 1, "{services:?}");
    // The deletion is audited without the name.
    let log = cp.control.store().audit_log(0, 100).unwrap();
    let entry = log
        .iter()
        .find(|e| e.action == "catalog.delete_service")
        .expect("deletion audited");
    assert!(entry.target.starts_with("service#"), "{}", entry.target);
    // New data after the erasure is stored as usual.
    cp.feed("stays-svc-2b9c", "AfterwardsMarker");
    assert!(!occurrences(cp.dir.path(), "AfterwardsMarker", &cp.key()).is_empty());
}

#[tokio::test]
async fn retention_prune_leaves_none_of_the_pruned_strings() {
    let cp = control_plane();
    cp.feed("old-svc-91ab", "PrunedQuietMarker");
    assert!(!occurrences(cp.dir.path(), "PrunedQuietMarker", &cp.key()).is_empty());
    let n = cp
        .control
        .store()
        .prune_unseen_since(weir_catalog::store::now_secs() + 10)
        .unwrap();
    assert_eq!(n, 1);
    for needle in ["PrunedQuietMarker", "old-svc-91ab"] {
        let hits = occurrences(cp.dir.path(), needle, &cp.key());
        assert!(hits.is_empty(), "{needle} left after pruning at {hits:?}");
    }
}

impl Cp {
    async fn get(&self, path: &str, token: &str) -> (StatusCode, serde_json::Value) {
        let req = Request::builder()
            .uri(path)
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap();
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
        )
    }
}

/// Access and portability: one API call (admins only) returns everything stored about a
/// service as JSON; after the erasure nothing is left to export, and neither the export
/// nor the erasure left the name in the audit log or the files.
#[tokio::test]
async fn a_service_exports_as_json_for_admins_and_nothing_remains_after_erasure() {
    let cp = control_plane();
    cp.feed("export-svc-4c1d", "QuietKeptMarker");
    cp.feed("other-svc-77aa", "PurpleGoneMarker");
    let viewer = create_token(cp.control.store(), Role::Viewer, "v", "test")
        .unwrap()
        .0;
    let (st, _) = cp
        .get("/api/v1/services/export-svc-4c1d/export", &viewer)
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, doc) = cp
        .get("/api/v1/services/export-svc-4c1d/export", &cp.admin)
        .await;
    assert_eq!(st, StatusCode::OK, "{doc}");
    assert_eq!(doc["service"], "export-svc-4c1d");
    let signals: Vec<&str> = doc["summaries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["signal"].as_str().unwrap())
        .collect();
    assert_eq!(signals, ["all"]);
    let summary = &doc["summaries"][0]["summary"];
    assert!(
        summary["logs"]["volume"]["items"].as_u64().unwrap() > 0,
        "{summary}"
    );
    assert!(
        summary["traces"]["volume"]["items"].as_u64().unwrap() > 0,
        "{summary}"
    );
    let text = doc.to_string();
    assert!(
        text.contains("QuietKeptMarker"),
        "the export holds the templates: {}",
        doc["summaries"]
    );
    assert!(
        !text.contains("PurpleGoneMarker"),
        "another service's data exported"
    );
    // The same document as the library call (the CLI prints this).
    let mut lib = cp.control.export_service("export-svc-4c1d").unwrap();
    let mut api = doc.clone();
    for d in [&mut lib, &mut api] {
        d.as_object_mut().unwrap().remove("exported_at");
        d.as_object_mut().unwrap().remove("audit");
    }
    assert_eq!(lib, api);

    assert_eq!(cp.delete("export-svc-4c1d").await, StatusCode::NO_CONTENT);
    // Only the audit's fingerprinted records (the export, the erasure) remain.
    let (st, doc) = cp
        .get("/api/v1/services/export-svc-4c1d/export", &cp.admin)
        .await;
    assert_eq!(st, StatusCode::OK, "{doc}");
    assert!(doc["summaries"].as_array().unwrap().is_empty(), "{doc}");
    assert!(doc["findings"].as_array().unwrap().is_empty(), "{doc}");
    let actions: Vec<&str> = doc["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["catalog.export_service", "catalog.delete_service"]
    );
    let (st, _) = cp
        .get("/api/v1/services/never-seen-svc/export", &cp.admin)
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    cp.control.store().scrub().unwrap();
    for needle in ["export-svc-4c1d", "QuietKeptMarker"] {
        let hits = occurrences(cp.dir.path(), needle, &cp.key());
        assert!(hits.is_empty(), "{needle} left at {hits:?}");
    }
    let log = cp.control.store().audit_log(0, 100).unwrap();
    let fp = cp.control.service_fingerprint("export-svc-4c1d");
    assert!(log
        .iter()
        .any(|e| e.action == "catalog.export_service" && e.target == fp));
}

/// Logs of `service` whose attribute `customer.id` takes `values`, and a gauge whose only
/// value is `gauge`.
fn valued(service: &str, values: &[&str], gauge: i64) -> Vec<Batch> {
    use weir_api::otlp::metrics::v1::{
        metric, number_data_point, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics,
    };
    let records = values
        .iter()
        .enumerate()
        .map(|(i, v)| LogRecord {
            time_unix_nano: 1_700_000_000_000_000_000 + i as u64,
            severity_number: 9,
            body: sv("order accepted"),
            attributes: vec![kv("customer.id", v)],
            ..Default::default()
        })
        .collect();
    let logs = Payload::Logs(
        weir_api::otlp::collector::logs::v1::ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: resource(service),
                scope_logs: vec![ScopeLogs {
                    log_records: records,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        },
    );
    let metrics = Payload::Metrics(
        weir_api::otlp::collector::metrics::v1::ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: resource(service),
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![Metric {
                        name: "queue.depth".into(),
                        data: Some(metric::Data::Gauge(Gauge {
                            data_points: (0..3)
                                .map(|i| NumberDataPoint {
                                    time_unix_nano: 1_700_000_000_000_000_000 + i,
                                    value: Some(number_data_point::Value::AsInt(gauge)),
                                    attributes: vec![kv("customer.id", values[0])],
                                    ..Default::default()
                                })
                                .collect(),
                        })),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        },
    );
    vec![Batch::new(logs), Batch::new(metrics)]
}

/// Erasure of one value by its keyed hash: the exact sketches lose it (the distinct count
/// drops by one, the other values stay), the metric's constant check and its attribute
/// pair sketch forget it, and the audit names it by a fingerprint only.
#[tokio::test]
async fn a_value_is_erased_by_its_keyed_hash_from_every_sketch() {
    let cp = control_plane();
    let values = [
        "cust-1001",
        "cust-1002",
        "cust-1003",
        "cust-1004",
        "cust-1005",
    ];
    let handle = MetadataHandle::new(&MetadataConfig::default());
    handle.set_key(cp.control.sketch_key());
    for b in valued("shop-svc", &values, 4242) {
        handle.observe(&b);
    }
    cp.exporter.ingest(&handle.take()).unwrap();
    let distinct = |cp: &Cp| {
        let s = cp.control.service("shop-svc").unwrap();
        s.logs.attributes.item["customer.id"].distinct.estimate()
    };
    assert_eq!(distinct(&cp), 5);
    let constant = |cp: &Cp| {
        let s = cp.control.service("shop-svc").unwrap();
        s.metrics.metrics["queue.depth"].constant.value_hash
    };
    assert!(constant(&cp).is_some());

    let req = |value: &str, token: &str| {
        Request::builder()
            .method(Method::POST)
            .uri("/api/v1/values/erase")
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(Body::from(
                serde_json::json!({ "value": value }).to_string(),
            ))
            .unwrap()
    };
    let viewer = create_token(cp.control.store(), Role::Viewer, "v", "test")
        .unwrap()
        .0;
    let resp = cp
        .app
        .clone()
        .oneshot(req("cust-1003", &viewer))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let resp = cp
        .app
        .clone()
        .oneshot(req("cust-1003", &cp.admin))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let out: serde_json::Value =
        serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(out["removed_from_sketches"], 1, "{out}");
    assert_eq!(out["constants_forgotten"], 0, "{out}");
    assert_eq!(distinct(&cp), 4, "the other values stay");
    // Again: nothing left to remove.
    let again = cp.control.erase_value("cust-1003", "test").unwrap();
    assert_eq!(again.removed_from_sketches + again.sketches_reset, 0);
    // The gauge's only value and its attribute: the constant check and the pair sketch
    // forget them.
    let out = cp.control.erase_value("4242", "test").unwrap();
    assert_eq!(out.constants_forgotten, 1, "{out:?}");
    assert!(constant(&cp).is_none());
    let series = |cp: &Cp| {
        let s = cp.control.service("shop-svc").unwrap();
        s.metrics.metrics["queue.depth"].series.estimate()
    };
    assert_eq!(series(&cp), 1);
    let out = cp.control.erase_value("cust-1001", "test").unwrap();
    assert!(out.removed_from_sketches >= 2, "{out:?}");
    assert_eq!(distinct(&cp), 3);
    // The gauge's one series carried cust-1001: its series sketch is emptied.
    assert_eq!(series(&cp), 0);
    assert!(out.sketches_reset >= 1, "{out:?}");
    // Past 128 values the sketch is a HyperLogLog: a register cannot forget one value,
    // so the sketch the value may have touched is emptied.
    let many: Vec<String> = (0..300).map(|i| format!("big-{i}")).collect();
    let many_refs: Vec<&str> = many.iter().map(String::as_str).collect();
    for b in valued("big-svc", &many_refs, 7) {
        handle.observe(&b);
    }
    cp.exporter.ingest(&handle.take()).unwrap();
    let big = |cp: &Cp| {
        let s = cp.control.service("big-svc").unwrap();
        s.logs.attributes.item["customer.id"].distinct.estimate()
    };
    assert!(big(&cp) > 250, "{}", big(&cp));
    let out = cp.control.erase_value("big-17", "test").unwrap();
    assert!(out.sketches_reset >= 1, "{out:?}");
    assert_eq!(big(&cp), 0);
    assert_eq!(distinct(&cp), 3, "other services' sketches untouched");
    let log = cp.control.store().audit_log(0, 100).unwrap();
    assert!(log
        .iter()
        .filter(|e| e.action == "catalog.erase_value")
        .all(|e| e.target.starts_with("value#") && !e.target.contains("cust")));
}
