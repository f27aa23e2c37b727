//! PolicyService.Sync between an edge (SyncClient) and test control planes on 127.0.0.1:
//! cache used while the control plane is down, new sets taken when it is up, garbage and
//! corrupt caches never removing the policies in force, statuses reported as deltas.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use weir_policy::active::ActivePolicies;
use weir_policy::parse::parse_document;
use weir_policy::proto;
use weir_policy::server::{grpc_service, http_router, StaticPolicyStore};
use weir_policy::sync_client::{SyncClient, SyncSettings, Transport};
use weir_policy_engine::stats::StatsRegistry;

fn policy(id: &str, severity: &str) -> proto::Policy {
    let doc = format!(
        "id: {id}\nname: {id}\nlog:\n  match:\n    - {{log_field: severity_text, exact: {severity}}}\n  keep: none\n"
    );
    parse_document(&doc, "t").unwrap().remove(0).policy.unwrap()
}

fn settings(
    endpoint: String,
    transport: Transport,
    cache: Option<std::path::PathBuf>,
) -> SyncSettings {
    SyncSettings {
        endpoint,
        transport,
        interval: Duration::from_secs(60),
        timeout: Duration::from_secs(2),
        headers: vec![("x-edge-token".into(), "t0k".into())],
        cache_file: cache,
        cache_key: None,
        resource_attributes: vec![
            ("service.name".into(), "edge-test".into()),
            ("service.instance.id".into(), "i-1".into()),
        ],
        labels: vec![("region".into(), "eu".into())],
    }
}

fn ids(active: &ActivePolicies) -> Vec<String> {
    active
        .current()
        .entries
        .iter()
        .map(|e| e.id.clone())
        .collect()
}

async fn serve_http(store: Arc<StaticPolicyStore>) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        axum::serve(listener, http_router(store)).await.unwrap();
    });
    (format!("http://{addr}/v1/policy/sync"), task)
}

/// A free port with nothing listening (bound, then released).
async fn dead_endpoint() -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    format!("http://{addr}/v1/policy/sync")
}

#[tokio::test]
async fn cache_bridges_an_outage_and_new_sets_replace_it() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache").join("policy-0.pb");

    // 1. A first edge syncs successfully and leaves the cache behind.
    let store = Arc::new(StaticPolicyStore::new(
        vec![policy("drop-debug", "DEBUG")],
        30,
    ));
    let (url, server) = serve_http(store.clone()).await;
    let first = Arc::new(ActivePolicies::new(1, StatsRegistry::new()));
    let client = SyncClient::new(
        settings(url.clone(), Transport::HttpProtobuf, Some(cache.clone())),
        0,
        first.clone(),
    );
    let interval = client.sync_once().await.unwrap();
    assert_eq!(interval, Some(Duration::from_secs(30)));
    assert_eq!(ids(&first), ["drop-debug"]);
    assert!(cache.exists());
    server.abort();

    // 2. An edge starting while the control plane is down enforces the cached set.
    let dead = dead_endpoint().await;
    let edge = Arc::new(ActivePolicies::new(1, StatsRegistry::new()));
    let client = SyncClient::new(
        settings(dead, Transport::HttpProtobuf, Some(cache.clone())),
        0,
        edge.clone(),
    );
    assert!(client.load_cache());
    assert_eq!(ids(&edge), ["drop-debug"]);
    let err = client.sync_once().await.unwrap_err();
    assert!(
        err.to_string().starts_with("sync with http://127.0.0.1:"),
        "{err}"
    );
    assert_eq!(ids(&edge), ["drop-debug"], "a failed sync removed policies");

    // 3. The control plane comes up with a new set: it replaces the cached one.
    store.set_policies(vec![
        policy("drop-info", "INFO"),
        policy("drop-warn", "WARN"),
    ]);
    let (url, server) = serve_http(store.clone()).await;
    let client = SyncClient::new(
        settings(url, Transport::HttpProtobuf, Some(cache.clone())),
        0,
        edge.clone(),
    );
    client.load_cache();
    client.sync_once().await.unwrap();
    assert_eq!(ids(&edge), ["drop-info", "drop-warn"]);
    // The first request of this client carried the cached hash; the server saw a change.
    let reqs = store.requests();
    let last = reqs.last().unwrap();
    assert!(!last.full_sync);
    assert_ne!(last.last_successful_hash, "");
    let md = last.client_metadata.as_ref().unwrap();
    assert_eq!(md.supported_policy_stages.len(), 4);
    assert!(md
        .resource_attributes
        .iter()
        .any(|kv| kv.key == "service.instance.id"));

    // 4. The cache now holds the new set.
    let later = Arc::new(ActivePolicies::new(1, StatsRegistry::new()));
    let reader = SyncClient::new(
        settings(
            dead_endpoint().await,
            Transport::HttpProtobuf,
            Some(cache.clone()),
        ),
        0,
        later.clone(),
    );
    assert!(reader.load_cache());
    assert_eq!(ids(&later), ["drop-info", "drop-warn"]);
    server.abort();
}

#[tokio::test]
async fn garbage_responses_and_corrupt_caches_keep_the_policies_in_force() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("policy.pb");
    std::fs::write(&cache, b"\xff\xff\xffnot protobuf").unwrap();

    let edge = Arc::new(ActivePolicies::new(2, StatsRegistry::new()));
    // Slot 1 holds a locally loaded policy that must survive whatever slot 0 does.
    edge.replace(1, parse_document(&serde_json::to_string(&serde_json::json!(
        {"id": "local", "name": "local", "log": {"match": [{"log_field": "body", "exists": true}], "keep": "none"}}
    )).unwrap(), "local").unwrap());

    // A server that answers 200 with garbage, then with a JSON body for a protobuf client.
    let app = axum::Router::new().route(
        "/v1/policy/sync",
        axum::routing::post(|| async { "this is not a SyncResponse \u{1}\u{2}" }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let client = SyncClient::new(
        settings(
            format!("http://{addr}/v1/policy/sync"),
            Transport::HttpProtobuf,
            Some(cache.clone()),
        ),
        0,
        edge.clone(),
    );
    assert!(!client.load_cache(), "a corrupt cache must be ignored");
    // Seed slot 0 from a good response first, through a real store.
    let store = Arc::new(StaticPolicyStore::new(vec![policy("synced", "DEBUG")], 0));
    let (good_url, good) = serve_http(store).await;
    SyncClient::new(
        settings(good_url, Transport::HttpProtobuf, None),
        0,
        edge.clone(),
    )
    .sync_once()
    .await
    .unwrap();
    assert_eq!(ids(&edge), ["local", "synced"]);

    let err = client.sync_once().await.unwrap_err();
    assert!(err.to_string().contains("bad response"), "{err}");
    assert_eq!(ids(&edge), ["local", "synced"]);
    // The corrupt cache was not replaced by anything from the garbage response.
    assert_eq!(std::fs::read(&cache).unwrap(), b"\xff\xff\xffnot protobuf");

    let json_client = SyncClient::new(
        settings(
            format!("http://{addr}/v1/policy/sync"),
            Transport::HttpJson,
            None,
        ),
        0,
        edge.clone(),
    );
    assert!(json_client.sync_once().await.is_err());
    assert_eq!(ids(&edge), ["local", "synced"]);
    server.abort();
    good.abort();
}

#[tokio::test]
async fn json_sync_reports_hits_as_deltas_and_honours_the_hash() {
    let store = Arc::new(StaticPolicyStore::new(
        vec![policy("drop-debug", "DEBUG")],
        0,
    ));
    let (url, server) = serve_http(store.clone()).await;
    let stats = StatsRegistry::new();
    let edge = Arc::new(ActivePolicies::new(1, stats.clone()));
    let client = SyncClient::new(settings(url, Transport::HttpJson, None), 0, edge.clone());
    client.sync_once().await.unwrap();
    assert_eq!(ids(&edge), ["drop-debug"]);
    let set_before = edge.current();

    stats.get("drop-debug").hit();
    stats.get("drop-debug").hit();
    stats.get("drop-debug").miss();
    client.sync_once().await.unwrap();
    // Same hash: nothing was rebuilt.
    assert!(Arc::ptr_eq(&set_before, &edge.current()));
    stats.get("drop-debug").hit();
    client.sync_once().await.unwrap();

    let reqs = store.requests();
    assert_eq!(reqs.len(), 3);
    assert!(reqs[0].full_sync);
    assert!(!reqs[1].full_sync);
    let status = |r: &proto::SyncRequest| {
        let s = r
            .policy_statuses
            .iter()
            .find(|s| s.id == "drop-debug")
            .unwrap();
        (s.match_hits, s.match_misses)
    };
    assert_eq!(status(&reqs[1]), (2, 1));
    assert_eq!(status(&reqs[2]), (1, 0));
    server.abort();
}

#[tokio::test]
async fn grpc_sync_round_trip_with_metadata() {
    let store = Arc::new(StaticPolicyStore::new(
        vec![policy("drop-debug", "DEBUG"), policy("drop-trace", "TRACE")],
        5,
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let svc = grpc_service(store.clone());
    let server = tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(svc)
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
            .await
            .unwrap();
    });
    let edge = Arc::new(ActivePolicies::new(1, StatsRegistry::new()));
    let client = SyncClient::new(
        settings(format!("http://{addr}"), Transport::Grpc, None),
        0,
        edge.clone(),
    );
    let interval = client.sync_once().await.unwrap();
    assert_eq!(interval, Some(Duration::from_secs(5)));
    assert_eq!(ids(&edge), ["drop-debug", "drop-trace"]);
    let md = store.requests()[0].client_metadata.clone().unwrap();
    assert_eq!(md.labels[0].key, "region");
    server.abort();
}

/// The edge's policy cache is encrypted (AES-256-GCM) under a key kept in an owner-only
/// file; the cache file is owner-only too; a changed byte or another key makes the edge
/// ignore it; a plaintext cache of an older version is read once and rewritten encrypted.
#[tokio::test]
async fn the_policy_cache_is_encrypted_owner_only_and_tamper_evident() {
    use prost::Message;
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache").join("policy-0.pb");
    let key_file = dir.path().join("cache").join("cache.key");
    let store = Arc::new(StaticPolicyStore::new(
        vec![policy("drop-debug-SecretPolicyName", "DEBUG")],
        30,
    ));
    let (url, server) = serve_http(store.clone()).await;
    let first = Arc::new(ActivePolicies::new(1, StatsRegistry::new()));
    let client = SyncClient::new(
        settings(url.clone(), Transport::HttpProtobuf, Some(cache.clone())),
        0,
        first.clone(),
    );
    client.sync_once().await.unwrap();
    server.abort();
    let sealed = std::fs::read(&cache).unwrap();
    assert!(sealed.starts_with(weir_policy::at_rest::SEALED_MAGIC));
    assert!(
        !sealed.windows(6).any(|w| w == b"Secret"),
        "policy text readable in the cache file"
    );
    for f in [&cache, &key_file] {
        let mode = std::fs::metadata(f).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{}", f.display());
    }
    // Decrypting with the key file's key gives the policies back (the test is not vacuous).
    let key = weir_policy::at_rest::load_key_file(&key_file)
        .unwrap()
        .unwrap();
    let plain = weir_policy::at_rest::open(&key, b"weir policy cache v1", &sealed).unwrap();
    let resp = proto::SyncResponse::decode(plain.as_slice()).unwrap();
    assert_eq!(resp.policies[0].id, "drop-debug-SecretPolicyName");

    let load = |s: SyncSettings| {
        let edge = Arc::new(ActivePolicies::new(1, StatsRegistry::new()));
        let c = SyncClient::new(s, 0, edge.clone());
        (c.load_cache(), ids(&edge))
    };
    let dead = dead_endpoint().await;
    assert_eq!(
        load(settings(
            dead.clone(),
            Transport::HttpProtobuf,
            Some(cache.clone())
        )),
        (true, vec!["drop-debug-SecretPolicyName".to_string()])
    );
    // Another key: ignored.
    let mut other = settings(dead.clone(), Transport::HttpProtobuf, Some(cache.clone()));
    other.cache_key = Some(weir_policy::at_rest::Key::random());
    assert_eq!(load(other), (false, vec![]));
    // One changed byte: ignored.
    let mut bad = sealed.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0x40;
    std::fs::write(&cache, &bad).unwrap();
    assert_eq!(
        load(settings(
            dead.clone(),
            Transport::HttpProtobuf,
            Some(cache.clone())
        )),
        (false, vec![])
    );
    // A plaintext cache of an older version: loaded, then rewritten encrypted.
    std::fs::write(&cache, resp.encode_to_vec()).unwrap();
    assert_eq!(
        load(settings(dead, Transport::HttpProtobuf, Some(cache.clone()))),
        (true, vec!["drop-debug-SecretPolicyName".to_string()])
    );
    let rewritten = std::fs::read(&cache).unwrap();
    assert!(rewritten.starts_with(weir_policy::at_rest::SEALED_MAGIC));
    assert!(!rewritten.windows(6).any(|w| w == b"Secret"));
}

/// An overloaded control plane answers 503 (or 429) with `Retry-After`: the edge reports it
/// busy with the server's delay, keeps the policies in force, and syncs normally once the
/// server answers again; a 503 without `Retry-After` stays an ordinary failure.
#[tokio::test]
async fn a_busy_control_plane_is_told_apart_and_its_retry_after_is_kept() {
    use weir_policy::sync_client::SyncError;
    let answers = Arc::new(std::sync::Mutex::new(vec![
        (503u16, Some("7")),
        (429, Some("2")),
        (503, None),
    ]));
    let app = axum::Router::new().route(
        "/v1/policy/sync",
        axum::routing::post({
            let answers = answers.clone();
            move || {
                let (status, retry_after) = answers.lock().unwrap().remove(0);
                async move {
                    let mut resp = axum::http::Response::builder().status(status);
                    if let Some(r) = retry_after {
                        resp = resp.header("retry-after", r);
                    }
                    resp.body(axum::body::Body::from("busy")).unwrap()
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let edge = Arc::new(ActivePolicies::new(1, StatsRegistry::new()));
    let store = Arc::new(StaticPolicyStore::new(vec![policy("kept", "DEBUG")], 0));
    let (good_url, good) = serve_http(store).await;
    SyncClient::new(
        settings(good_url, Transport::HttpProtobuf, None),
        0,
        edge.clone(),
    )
    .sync_once()
    .await
    .unwrap();
    let client = SyncClient::new(
        settings(
            format!("http://{addr}/v1/policy/sync"),
            Transport::HttpProtobuf,
            None,
        ),
        0,
        edge.clone(),
    );
    for (status, secs) in [("503", 7), ("429", 2)] {
        match client.sync_once().await.unwrap_err() {
            SyncError::Busy {
                status: s,
                retry_after,
                ..
            } => {
                assert!(s.contains(status), "{s}");
                assert_eq!(retry_after, Duration::from_secs(secs));
            }
            other => panic!("expected busy, got {other}"),
        }
        assert_eq!(ids(&edge), ["kept"]);
    }
    let err = client.sync_once().await.unwrap_err();
    assert!(
        matches!(err, SyncError::BadResponse { .. }) && err.to_string().contains("503"),
        "{err}"
    );
    assert_eq!(ids(&edge), ["kept"]);
    server.abort();
    good.abort();
}
