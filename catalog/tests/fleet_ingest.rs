//! Ingest at fleet scale, through a real server on loopback: a summary is merged once
//! however its connections die and however often it is sent again with its number; an
//! overloaded control plane sheds ingest, policy syncs and page reads with 503 +
//! Retry-After; sync answers "unchanged" from the cached policy set; staged summaries and
//! sync reports reach the file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::AsyncWriteExt;
use weir_catalog::auth::{create_token_for, Role};
use weir_catalog::component::{app, policy_check};
use weir_catalog::control::ControlPlane;
use weir_catalog::ingest::IngestConfig;
use weir_catalog::shed::OverloadConfig;
use weir_catalog::store::Store;
use weir_summary::summary::{CatalogSummary, ServiceSummary};

mod common;
use common::{exchange, exchange_raw_from};

struct Server {
    _dir: tempfile::TempDir,
    db: std::path::PathBuf,
    control: Arc<ControlPlane>,
    addr: SocketAddr,
    edge: String,
    admin: String,
}

async fn serve(config: IngestConfig) -> Server {
    serve_with(config, OverloadConfig::default()).await
}

async fn serve_with(config: IngestConfig, overload: OverloadConfig) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cp.db");
    let control = Arc::new(
        ControlPlane::open(&db)
            .unwrap()
            .with_policy_check(policy_check())
            .with_ingest(config, &weir_api::Telemetry::new())
            .with_overload(overload),
    );
    let edge = create_token_for(control.store(), Role::Edge, "e", Some("edge-1"), "test")
        .unwrap()
        .0;
    let admin = create_token_for(control.store(), Role::Admin, "a", None, "test")
        .unwrap()
        .0;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = app(control.clone(), true, 30);
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    Server {
        _dir: dir,
        db,
        control,
        addr,
        edge,
        admin,
    }
}

/// A summary of `service` with `items` log records.
fn summary(service: &str, items: u64) -> String {
    let mut s = ServiceSummary::default();
    s.logs.volume.items = items;
    s.logs.volume.bytes = items * 100;
    let mut c = CatalogSummary::default();
    c.services.insert(service.to_string(), s);
    serde_json::to_string(&c).unwrap()
}

fn ingest_request(token: &str, seq: Option<&str>, body: &str) -> Vec<u8> {
    let mut head = format!(
        "POST /api/v1/ingest HTTP/1.1\r\nhost: cp\r\nconnection: close\r\nauthorization: Bearer {token}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
        body.len()
    );
    if let Some(s) = seq {
        head.push_str(&format!("x-weir-summary-seq: {s}\r\n"));
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}

async fn get(addr: SocketAddr, token: &str, path: &str) -> serde_json::Value {
    let req = format!(
        "GET {path} HTTP/1.1\r\nhost: cp\r\nconnection: close\r\nauthorization: Bearer {token}\r\n\r\n"
    );
    let (status, _, body) = exchange(addr, req.as_bytes()).await;
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

async fn logs_items(srv: &Server, service: &str) -> u64 {
    let v = get(srv.addr, &srv.admin, "/api/v1/services").await;
    v["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["service"] == service)
        .map_or(0, |s| s["logs_items"].as_u64().unwrap())
}

#[tokio::test]
async fn killed_connections_and_retries_never_count_a_summary_twice() {
    let srv = serve(IngestConfig::default()).await;
    let body = summary("checkout", 7);
    let rounds = 12u64;
    for n in 1..=rounds {
        let seq = format!("run-a:{n}");
        let req = ingest_request(&srv.edge, Some(&seq), &body);
        // Killed mid-body: the server never sees the whole summary.
        {
            let mut s = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
            s.write_all(&req[..req.len() - body.len() / 2])
                .await
                .unwrap();
            drop(s);
        }
        // Killed after the whole request, before the answer: it may or may not be merged.
        {
            let mut s = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
            s.write_all(&req).await.unwrap();
            s.shutdown().await.unwrap();
            drop(s);
        }
        // Sent again with its number until acknowledged, then once more.
        let (status, _, b) = exchange(srv.addr, &req).await;
        assert_eq!(status, 204, "round {n}: {b}");
        let (status, _, b) = exchange(srv.addr, &req).await;
        assert_eq!(status, 204, "round {n}, duplicate: {b}");
    }
    assert_eq!(logs_items(&srv, "checkout").await, rounds * 7);
    // A new stream (the edge restarted) starts its numbers again and is counted.
    let req = ingest_request(&srv.edge, Some("run-b:1"), &body);
    assert_eq!(exchange(srv.addr, &req).await.0, 204);
    assert_eq!(logs_items(&srv, "checkout").await, (rounds + 1) * 7);
    // An older number of a stream is a duplicate too.
    let req = ingest_request(&srv.edge, Some("run-a:3"), &body);
    assert_eq!(exchange(srv.addr, &req).await.0, 204);
    assert_eq!(logs_items(&srv, "checkout").await, (rounds + 1) * 7);
    // Unnumbered summaries (older edges) are merged each time.
    let req = ingest_request(&srv.edge, None, &body);
    assert_eq!(exchange(srv.addr, &req).await.0, 204);
    assert_eq!(logs_items(&srv, "checkout").await, (rounds + 2) * 7);

    // The numbers outlive the process: after a restart a duplicate is still refused.
    let Server {
        _dir,
        db,
        control,
        edge,
        ..
    } = srv;
    drop(control);
    let store = Store::open(&db).unwrap();
    let rows = store.summaries().unwrap();
    let stored: ServiceSummary = serde_json::from_str(&rows[0].2).unwrap();
    assert_eq!(stored.logs.volume.items, (rounds + 2) * 7);
    drop(store);
    let control = ControlPlane::open(&db).unwrap();
    let c: CatalogSummary = serde_json::from_str(&summary("checkout", 7)).unwrap();
    let seq = weir_catalog::staging::SummarySeq::parse("run-a:12").unwrap();
    let r = control
        .ingestor()
        .store_numbered(control.store(), &c, Some("edge-1"), Some(&seq))
        .unwrap();
    assert_eq!(r, weir_catalog::staging::Staging::Duplicate);
    let _ = edge;
}

#[tokio::test]
async fn bad_sequence_headers_are_refused_naming_the_header() {
    let srv = serve(IngestConfig::default()).await;
    let body = summary("cart", 1);
    for bad in ["7", "run:0", "run:x", ":3", "has space:1"] {
        let req = ingest_request(&srv.edge, Some(bad), &body);
        let (status, _, b) = exchange(srv.addr, &req).await;
        assert_eq!(status, 400, "{bad}: {b}");
        assert!(b.contains("x-weir-summary-seq"), "{bad}: {b}");
    }
    assert_eq!(logs_items(&srv, "cart").await, 0);
}

#[tokio::test]
async fn overload_is_shed_with_503_and_retry_after() {
    let srv = serve(IngestConfig {
        max_in_flight: 2,
        ..IngestConfig::default()
    })
    .await;
    let body = summary("payments", 5);
    let req = ingest_request(&srv.edge, Some("s:1"), &body);
    // Two requests in flight (held here): the third is shed at once.
    let a = srv.control.ingestor().admit().unwrap();
    let b = srv.control.ingestor().admit().unwrap();
    let (status, head, text) = exchange(srv.addr, &req).await;
    assert_eq!(status, 503, "{text}");
    assert!(
        head.to_ascii_lowercase().contains("retry-after: 5"),
        "{head}"
    );
    assert!(text.contains("busy"), "{text}");
    assert_eq!(logs_items(&srv, "payments").await, 0);
    drop((a, b));
    // Sent again with the same number, it is taken, once.
    assert_eq!(exchange(srv.addr, &req).await.0, 204);
    assert_eq!(exchange(srv.addr, &req).await.0, 204);
    assert_eq!(logs_items(&srv, "payments").await, 5);
}

#[tokio::test]
async fn sync_answers_unchanged_from_the_cached_set_and_buffers_status() {
    use prost::Message;
    use weir_policy_contract::proto;
    let srv = serve(IngestConfig::default()).await;
    srv.control
        .create_policy(
            serde_json::json!({"id": "drop-debug", "name": "drop debug", "log": {"match": [{"log_field": "severity_text", "exact": "DEBUG"}], "keep": "none"}}),
            false,
            "test",
        )
        .unwrap();
    let sync = |hash: &str, hits: i64| {
        let req = proto::SyncRequest {
            last_successful_hash: hash.to_string(),
            policy_statuses: vec![proto::PolicySyncStatus {
                id: "drop-debug".into(),
                match_hits: hits,
                ..Default::default()
            }],
            ..Default::default()
        }
        .encode_to_vec();
        let mut out = format!(
            "POST /v1/policy/sync HTTP/1.1\r\nhost: cp\r\nconnection: close\r\nauthorization: Bearer {}\r\ncontent-type: application/x-protobuf\r\ncontent-length: {}\r\n\r\n",
            srv.edge,
            req.len()
        )
        .into_bytes();
        out.extend_from_slice(&req);
        out
    };
    let answer = |req: Vec<u8>| async move {
        let (status, _, body) = exchange_raw_from(None, srv.addr, &req).await;
        assert_eq!(status, 200);
        proto::SyncResponse::decode(body.as_slice()).unwrap()
    };
    let first = answer(sync("", 0)).await;
    assert_eq!(first.policies.len(), 1);
    assert_eq!(first.sync_type, proto::SyncType::Full as i32);
    for _ in 0..3 {
        let r = answer(sync(&first.hash, 4)).await;
        assert!(r.policies.is_empty(), "unchanged: no list");
        assert_eq!(r.hash, first.hash);
        assert_eq!(r.sync_type, proto::SyncType::Unspecified as i32);
    }
    // A changed policy set is served in full again.
    srv.control
        .update_policy("drop-debug", None, None, Some(true), "test")
        .unwrap();
    let r = answer(sync(&first.hash, 0)).await;
    assert_eq!(r.policies.len(), 1);
    assert_ne!(r.hash, first.hash);
    // The buffered counts add up: 3 x 4 enforced hits, written before the mode changed.
    let st = srv.control.store().policy_statuses().unwrap();
    assert_eq!((st[0].hits, st[0].shadow_hits), (12, 0), "{st:?}");
    assert_eq!(srv.control.store().edges().unwrap().len(), 1);
    let v = get(srv.addr, &srv.admin, "/api/v1/edges").await;
    assert!(v.to_string().contains("edge-1/unknown"), "{v}");
}

#[tokio::test]
async fn a_revoked_token_is_refused_at_once_and_one_revoked_elsewhere_within_seconds() {
    let srv = serve(IngestConfig::default()).await;
    let body = summary("auth", 1);
    let ok = ingest_request(&srv.edge, None, &body);
    assert_eq!(exchange(srv.addr, &ok).await.0, 204);
    // Revoked through this process: refused on the next request.
    let id = srv
        .control
        .store()
        .tokens()
        .unwrap()
        .into_iter()
        .find(|t| t.role == "edge")
        .unwrap()
        .id;
    assert!(srv.control.store().revoke_token(&id, "test").unwrap());
    let (status, _, b) = exchange(srv.addr, &ok).await;
    assert_eq!(status, 401, "{b}");
    // A second edge token, revoked by another process (another connection to the file):
    // refused once the change is seen (it is looked for at least once a second).
    let other = create_token_for(srv.control.store(), Role::Edge, "e2", Some("edge-2"), "t")
        .unwrap()
        .0;
    let req = ingest_request(&other, None, &body);
    assert_eq!(exchange(srv.addr, &req).await.0, 204);
    let elsewhere = Store::open(&srv.db).unwrap();
    let id2 = elsewhere
        .tokens()
        .unwrap()
        .into_iter()
        .find(|t| t.edge.as_deref() == Some("edge-2"))
        .unwrap()
        .id;
    assert!(elsewhere.revoke_token(&id2, "cli").unwrap());
    // Looked for at least once a second: refused within a few seconds (the bound leaves
    // room for a loaded machine; the loop ends at the first 401).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let (status, _, _) = exchange(srv.addr, &req).await;
        if status == 401 {
            break;
        }
        assert_eq!(status, 204);
        assert!(
            std::time::Instant::now() < deadline,
            "a token revoked by another connection was still taken after 5s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // A view of the catalog looks for other connections' changes at once: a token revoked
    // elsewhere is refused on the very next request after one.
    let other = create_token_for(srv.control.store(), Role::Edge, "e3", Some("edge-3"), "t")
        .unwrap()
        .0;
    let req = ingest_request(&other, None, &body);
    assert_eq!(exchange(srv.addr, &req).await.0, 204);
    let id3 = elsewhere
        .tokens()
        .unwrap()
        .into_iter()
        .find(|t| t.edge.as_deref() == Some("edge-3"))
        .unwrap()
        .id;
    assert!(elsewhere.revoke_token(&id3, "cli").unwrap());
    get(srv.addr, &srv.admin, "/api/v1/findings").await;
    assert_eq!(exchange(srv.addr, &req).await.0, 401);
}

#[tokio::test]
async fn syncs_and_page_reads_are_shed_with_503_and_retry_after() {
    let srv = serve_with(
        IngestConfig::default(),
        OverloadConfig {
            sync_max_in_flight: 1,
            read_max_in_flight: 1,
            retry_after: std::time::Duration::from_secs(7),
        },
    )
    .await;
    let sync = {
        let body = b"";
        let mut out = format!(
            "POST /v1/policy/sync HTTP/1.1\r\nhost: cp\r\nconnection: close\r\nauthorization: Bearer {}\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n",
            srv.edge
        )
        .into_bytes();
        out.extend_from_slice(body);
        out
    };
    let page = |path: &str| {
        format!(
            "GET {path} HTTP/1.1\r\nhost: cp\r\nconnection: close\r\nauthorization: Bearer {}\r\n\r\n",
            srv.admin
        )
        .into_bytes()
    };
    let retry_after = |head: &str| {
        head.lines().find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("retry-after: ")
                .map(str::to_string)
        })
    };
    // One sync being served (held here): the next is shed at once, reads are not.
    let held = srv.control.sync_gate().admit().unwrap();
    let (status, head, body) = exchange(srv.addr, &sync).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(retry_after(&head).as_deref(), Some("7"), "{head}");
    assert!(body.contains("busy"), "{body}");
    // Admission comes after authentication: a made-up token is refused as such (401), it
    // never reaches, nor waits for, a slot of a real edge.
    let forged = String::from_utf8(sync.clone())
        .unwrap()
        .replace(&srv.edge, "weir_forged_token_0000");
    let (status, _, body) = exchange(srv.addr, forged.as_bytes()).await;
    assert_eq!(status, 401, "{body}");
    let (status, _, body) = exchange(srv.addr, &page("/api/v1/overview")).await;
    assert_eq!(status, 200, "{body}");
    drop(held);
    assert_eq!(exchange(srv.addr, &sync).await.0, 200);
    // One read being served: every page is shed, ingest and sync are not.
    let held = srv.control.read_gate().admit().unwrap();
    for path in ["/api/v1/overview", "/api/v1/services", "/api/v1/findings"] {
        let (status, head, body) = exchange(srv.addr, &page(path)).await;
        assert_eq!(status, 503, "{path}: {body}");
        assert_eq!(retry_after(&head).as_deref(), Some("7"), "{path}: {head}");
    }
    let forged = String::from_utf8(page("/api/v1/overview"))
        .unwrap()
        .replace(&srv.admin, "weir_forged_token_0001");
    let (status, _, body) = exchange(srv.addr, forged.as_bytes()).await;
    assert_eq!(
        status, 401,
        "a made-up token is refused before any slot: {body}"
    );
    let req = ingest_request(&srv.edge, Some("s:1"), &summary("orders", 3));
    assert_eq!(exchange(srv.addr, &req).await.0, 204);
    assert_eq!(exchange(srv.addr, &sync).await.0, 200);
    drop(held);
    assert_eq!(logs_items(&srv, "orders").await, 3);
    assert_eq!(srv.control.sync_gate().in_flight(), 0);
    assert_eq!(srv.control.read_gate().in_flight(), 0);
}
