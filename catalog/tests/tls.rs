//! The control plane over TLS, with certificates made in the test: the real listeners on
//! 127.0.0.1, clients with the right CA, a wrong CA, no TLS, an old protocol, with and
//! without client certificates; certificate reload; the catalog exporter and gRPC sync over TLS.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::free_port;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use weir_api::otlp::common::v1::{any_value, AnyValue, KeyValue};
use weir_api::otlp::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use weir_api::otlp::resource::v1::Resource;
use weir_api::{
    Batch, BuildContext, Component, ComponentId, ExporterFactory, ExtensionFactory, Payload,
};
use weir_catalog::component::{CatalogExporterFactory, ControlPlaneFactory};
use weir_tls::rustls::version::{TLS12, TLS13};
use weir_tls::testing::{client_config, der_of, https_get, plain_http_get, TestCa, TestCert};

struct ControlPlane {
    addr: SocketAddr,
    grpc: SocketAddr,
    component: Arc<dyn Component>,
}

impl ControlPlane {
    async fn stop(self) {
        self.component.shutdown().await;
    }
}

/// Starts the `control_plane` extension with `tls` (paths inside `dir`), auth off.
async fn start(dir: &Path, tls: serde_json::Value) -> ControlPlane {
    let (http, grpc) = (free_port(), free_port());
    let config = json!({
        "endpoint": format!("127.0.0.1:{http}"),
        "grpc_endpoint": format!("127.0.0.1:{grpc}"),
        "storage": dir.join("cp.db").to_str().unwrap(),
        "auth": false,
        "tls": tls,
    });
    let parsed = ControlPlaneFactory
        .parse(&config, "extensions.control_plane")
        .unwrap();
    let component = parsed
        .build(&BuildContext::for_component(
            ComponentId::parse("control_plane").unwrap(),
        ))
        .unwrap();
    component.start().await.unwrap();
    ControlPlane {
        addr: format!("127.0.0.1:{http}").parse().unwrap(),
        grpc: format!("127.0.0.1:{grpc}").parse().unwrap(),
        component,
    }
}

/// A CA and a server certificate written to `dir`: (ca, server cert, tls settings).
fn server_files(dir: &Path) -> (TestCa, TestCert, serde_json::Value) {
    let ca = TestCa::new("Weir test CA");
    let server = ca.server_cert("control plane one");
    let (cert, key) = server.write(dir, "server");
    let tls = json!({"cert_file": cert.to_str().unwrap(), "key_file": key.to_str().unwrap()});
    (ca, server, tls)
}

#[tokio::test]
async fn tls13_client_reads_the_api_and_plain_text_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, server, tls) = server_files(dir.path());
    let cp = start(dir.path(), tls).await;

    let resp = https_get(
        cp.addr,
        client_config(&ca.cert_pem(), None, &[&TLS13]),
        "/api/v1/whoami",
    )
    .await
    .unwrap();
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert!(resp.body.contains("\"role\":\"admin\""), "{}", resp.body);
    assert_eq!(resp.server_cert, der_of(&server.cert_pem));

    // A client that does not speak TLS gets no HTTP answer at all.
    let plain = plain_http_get(cp.addr, "/api/v1/whoami").await;
    assert!(plain.is_err(), "plain text got an answer: {plain:?}");

    // A client trusting another CA refuses the server's certificate.
    let other = TestCa::new("Someone else's CA");
    let err = https_get(
        cp.addr,
        client_config(&other.cert_pem(), None, &[&TLS13]),
        "/",
    )
    .await
    .unwrap_err();
    assert!(
        err.starts_with("handshake:") && err.contains("UnknownIssuer"),
        "{err}"
    );
    cp.stop().await;
}

#[tokio::test]
async fn min_version_13_refuses_a_tls12_only_client_and_12_is_taken_when_configured() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, _server, tls) = server_files(dir.path());
    let cp = start(dir.path(), tls.clone()).await;
    let err = https_get(
        cp.addr,
        client_config(&ca.cert_pem(), None, &[&TLS12]),
        "/api/v1/whoami",
    )
    .await
    .unwrap_err();
    assert!(err.starts_with("handshake:"), "{err}");
    cp.stop().await;

    let mut tls12 = tls;
    tls12["min_version"] = json!("1.2");
    let cp = start(dir.path(), tls12).await;
    let resp = https_get(
        cp.addr,
        client_config(&ca.cert_pem(), None, &[&TLS12]),
        "/api/v1/whoami",
    )
    .await
    .unwrap();
    assert_eq!(resp.status, 200);
    cp.stop().await;
}

#[tokio::test]
async fn mtls_requires_a_client_certificate_from_the_client_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, _server, mut tls) = server_files(dir.path());
    let client_ca = TestCa::new("Weir edges CA");
    tls["client_ca_file"] = json!(client_ca
        .write(dir.path(), "edges-ca.pem")
        .to_str()
        .unwrap());
    let cp = start(dir.path(), tls).await;
    let trust = ca.cert_pem();

    let err = https_get(
        cp.addr,
        client_config(&trust, None, &[&TLS13]),
        "/api/v1/whoami",
    )
    .await
    .unwrap_err();
    // TLS 1.3: the client finishes its side of the handshake first, so the server's alert
    // arrives as the answer to the request.
    assert!(err.contains("CertificateRequired"), "{err}");

    let stranger = TestCa::new("Not the edges CA").client_cert("edge-x");
    let err = https_get(
        cp.addr,
        client_config(&trust, Some(&stranger), &[&TLS13]),
        "/api/v1/whoami",
    )
    .await
    .unwrap_err();
    assert!(
        err.contains("UnknownCA") || err.contains("BadCertificate"),
        "{err}"
    );

    let edge = client_ca.client_cert("edge-1");
    let resp = https_get(
        cp.addr,
        client_config(&trust, Some(&edge), &[&TLS13]),
        "/api/v1/whoami",
    )
    .await
    .unwrap();
    assert_eq!(resp.status, 200);
    cp.stop().await;
}

#[tokio::test]
async fn replaced_certificate_is_served_without_restart_and_a_broken_one_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, first, mut tls) = server_files(dir.path());
    tls["reload_interval"] = json!("0s");
    let cp = start(dir.path(), tls).await;
    let config = client_config(&ca.cert_pem(), None, &[&TLS13]);
    let resp = https_get(cp.addr, config.clone(), "/api/v1/whoami")
        .await
        .unwrap();
    assert_eq!(resp.server_cert, der_of(&first.cert_pem));

    // A half-written replacement (certificate without its key) keeps the old one in service.
    std::fs::write(
        dir.path().join("server.pem"),
        "-----BEGIN CERTIFICATE-----\nAAAA",
    )
    .unwrap();
    let resp = https_get(cp.addr, config.clone(), "/api/v1/whoami")
        .await
        .unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.server_cert, der_of(&first.cert_pem));

    // The full replacement is picked up on the next connection.
    let second = ca.server_cert("control plane two");
    second.write(dir.path(), "server");
    let resp = https_get(cp.addr, config, "/api/v1/whoami").await.unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.server_cert, der_of(&second.cert_pem));
    assert_ne!(resp.server_cert, der_of(&first.cert_pem));
    cp.stop().await;
}

#[tokio::test]
async fn missing_certificate_file_is_named_with_its_yaml_path() {
    let dir = tempfile::tempdir().unwrap();
    let config = json!({
        "storage": dir.path().join("cp.db").to_str().unwrap(),
        "tls": {"cert_file": "nope.pem", "key_file": "nope-key.pem"},
    });
    let parsed = ControlPlaneFactory
        .parse(&config, "extensions.control_plane")
        .unwrap();
    let mut ctx = BuildContext::for_component(ComponentId::parse("control_plane").unwrap());
    ctx.base_dir = dir.path().to_path_buf();
    let err = parsed.build(&ctx).err().unwrap().to_string();
    let expected = format!(
        "control_plane: extensions.control_plane.tls.cert_file: cannot read {:?}: No such file or directory (os error 2)",
        dir.path().join("nope.pem")
    );
    assert_eq!(err, expected);

    let bad = json!({"tls": {"cert_file": "c.pem", "key_file": "k.pem", "min_version": "1.3", "max_version": "1.2", "color": 1}});
    let errors = ControlPlaneFactory
        .parse(&bad, "extensions.control_plane")
        .err()
        .unwrap()
        .to_string();
    assert!(
        errors.contains("extensions.control_plane.tls") && errors.contains("color"),
        "{errors}"
    );
}

fn logs(service: &str, n: usize) -> Batch {
    let s = |v: &str| {
        Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.to_string())),
        })
    };
    let records = (0..n)
        .map(|i| LogRecord {
            time_unix_nano: 1_700_000_000_000_000_000 + i as u64,
            severity_text: "INFO".into(),
            severity_number: 9,
            body: s(&format!("user {i} logged in")),
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
async fn catalog_exporter_ships_over_tls_and_refuses_an_untrusted_server() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, _server, tls) = server_files(dir.path());
    let cp = start(dir.path(), tls).await;
    let ca_file = ca.write(dir.path(), "ca.pem");
    let other_ca = TestCa::new("Someone else's CA").write(dir.path(), "other-ca.pem");
    let key_file = dir.path().join("edge-sketch.key");

    let export = |ca: &Path, service: &'static str| {
        let config = json!({
            "endpoint": format!("https://localhost:{}", cp.addr.port()),
            "tls": {"ca_file": ca.to_str().unwrap()},
            "flush_interval": "1h",
            "sketch_key_file": key_file.to_str().unwrap(),
        });
        async move {
            let exporter = CatalogExporterFactory
                .parse(&config, "exporters.catalog")
                .unwrap()
                .build(&BuildContext::for_component(
                    ComponentId::parse("catalog").unwrap(),
                ))
                .unwrap();
            exporter.start().await.unwrap();
            exporter.consume(logs(service, 3)).await.unwrap();
            exporter.shutdown().await; // flushes
        }
    };
    export(&other_ca, "untrusted-svc").await;
    export(&ca_file, "checkout").await;

    let resp = https_get(
        cp.addr,
        client_config(&ca.cert_pem(), None, &[&TLS13]),
        "/api/v1/services",
    )
    .await
    .unwrap();
    assert_eq!(resp.status, 200);
    let services: serde_json::Value = serde_json::from_str(&resp.body).unwrap();
    let names: Vec<&str> = services["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["service"].as_str().or(s["name"].as_str()).unwrap())
        .collect();
    assert_eq!(names, vec!["checkout"], "{}", resp.body);
    cp.stop().await;
}

#[tokio::test]
async fn grpc_policy_sync_over_tls() {
    use weir_policy_contract::proto::policy_service_client::PolicyServiceClient;
    let dir = tempfile::tempdir().unwrap();
    let (ca, _server, tls) = server_files(dir.path());
    let cp = start(dir.path(), tls).await;
    let ca_file = ca.write(dir.path(), "ca.pem");
    let endpoint =
        tonic::transport::Endpoint::from_shared(format!("https://localhost:{}", cp.grpc.port()))
            .unwrap()
            .connect_timeout(Duration::from_secs(5));

    let good = weir_tls::TlsClientSettings {
        ca_file: Some(ca_file.to_str().unwrap().into()),
        ..Default::default()
    }
    .load("tls", |p| p.into())
    .unwrap();
    let channel = good.connect_grpc(endpoint.clone()).await.unwrap();
    let resp = PolicyServiceClient::new(channel)
        .sync(weir_policy_contract::proto::SyncRequest::default())
        .await
        .unwrap();
    assert_eq!(resp.get_ref().recommended_sync_interval_seconds, 30);

    let plain = weir_tls::ClientTls::plaintext();
    let plain_endpoint =
        tonic::transport::Endpoint::from_shared(format!("http://localhost:{}", cp.grpc.port()))
            .unwrap()
            .timeout(Duration::from_secs(5));
    let channel = plain.grpc_channel(plain_endpoint);
    let err = PolicyServiceClient::new(channel)
        .sync(weir_policy_contract::proto::SyncRequest::default())
        .await
        .unwrap_err();
    assert_ne!(err.code(), tonic::Code::Ok);
    cp.stop().await;
    // The TLS sync is in the audit log (auth off: as the edge `local`) with the client
    // address of the gRPC connection, written when the control plane stopped.
    let store = weir_catalog::store::Store::open(&dir.path().join("cp.db")).unwrap();
    let mut syncs = Vec::new();
    for _ in 0..100 {
        syncs = store
            .audit_log(0, 100)
            .unwrap()
            .into_iter()
            .filter(|e| e.action == "edge.sync")
            .collect();
        if !syncs.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(syncs.len(), 1, "{syncs:?}");
    assert_eq!(syncs[0].target, "local");
    assert_eq!(syncs[0].client.as_deref(), Some("127.0.0.1"));
    assert_eq!(syncs[0].after.as_ref().unwrap()["count"], 1);
}

fn sync_settings(
    endpoint: String,
    transport: weir_policy::sync_client::Transport,
) -> weir_policy::sync_client::SyncSettings {
    weir_policy::sync_client::SyncSettings {
        endpoint,
        transport,
        interval: Duration::from_secs(60),
        timeout: Duration::from_secs(5),
        headers: vec![],
        cache_file: None,
        cache_key: None,
        resource_attributes: vec![("service.name".into(), "edge-tls".into())],
        labels: vec![],
    }
}

#[tokio::test]
async fn edge_policy_sync_over_tls_http_and_grpc() {
    use weir_policy::active::ActivePolicies;
    use weir_policy::sync_client::{SyncClient, Transport};
    use weir_policy_engine::stats::StatsRegistry;
    let dir = tempfile::tempdir().unwrap();
    let (ca, _server, tls) = server_files(dir.path());
    let cp = start(dir.path(), tls).await;
    let ca_file = ca.write(dir.path(), "ca.pem");
    let trusting = weir_tls::TlsClientSettings {
        ca_file: Some(ca_file.to_str().unwrap().into()),
        ..Default::default()
    };
    let http_url = format!("https://localhost:{}/v1/policy/sync", cp.addr.port());
    let grpc_url = format!("https://localhost:{}", cp.grpc.port());
    for (url, transport) in [
        (&http_url, Transport::HttpProtobuf),
        (&grpc_url, Transport::Grpc),
    ] {
        let active = Arc::new(ActivePolicies::new(1, StatsRegistry::new()));
        let client = SyncClient::with_tls(
            sync_settings(url.clone(), transport),
            0,
            active.clone(),
            trusting.load("tls", |p| p.into()).unwrap(),
        );
        // The control plane recommends its sync_interval (30s) to edges.
        let interval = client.sync_once().await.unwrap();
        assert_eq!(interval, Some(Duration::from_secs(30)), "{transport:?}");

        // The same edge without the CA (system roots) does not get through.
        let untrusting = SyncClient::with_tls(
            sync_settings(url.clone(), transport),
            0,
            active,
            weir_tls::TlsClientSettings::default()
                .load("tls", |p| p.into())
                .unwrap(),
        );
        assert!(untrusting.sync_once().await.is_err(), "{transport:?}");
    }
    cp.stop().await;
}

#[test]
fn policy_processor_names_a_missing_ca_file() {
    use weir_api::ProcessorFactory;
    let config = json!({"sources": [{"grpc": {
        "endpoint": "https://cp:4320",
        "tls": {"ca_file": "/nonexistent/ca.pem"},
    }}]});
    let parsed = weir_policy::processor::PolicyFactory
        .parse(&config, "processors.policy")
        .unwrap();
    let ctx = BuildContext::for_component(ComponentId::parse("policy").unwrap());
    let err = parsed
        .build(&ctx, weir_api::Signal::Logs, Arc::new(Discard))
        .err()
        .unwrap()
        .to_string();
    assert_eq!(
        err,
        "policy: processors.policy.sources[0].grpc.tls.ca_file: cannot read \"/nonexistent/ca.pem\": No such file or directory (os error 2)"
    );
    let plain_with_tls = json!({"sources": [{"http": {
        "endpoint": "http://cp:8080",
        "tls": {"ca_file": "ca.pem"},
    }}]});
    let err = weir_policy::processor::PolicyFactory
        .parse(&plain_with_tls, "processors.policy")
        .err()
        .unwrap()
        .to_string();
    assert_eq!(
        err,
        "processors.policy.sources[0].http.tls: is set but the endpoint is http:// (use https://)"
    );
}

struct Discard;

#[async_trait::async_trait]
impl weir_api::Consumer for Discard {
    async fn consume(&self, _batch: Batch) -> Result<(), weir_api::ConsumeError> {
        Ok(())
    }
}
