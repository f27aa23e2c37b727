//! The OTLP receiver over TLS (gRPC and HTTP) with certificates made in the test: the data
//! arrives over TLS, plain text and clients that do not trust the server are refused, mTLS
//! asks for a client certificate.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use http_body_util::Full;
use prost::Message;
use weir_api::otlp::collector::logs::v1::logs_service_client::LogsServiceClient;
use weir_tls::testing::{plain_http_get, TestCa};
use weir_tls::{ClientTls, HttpVersions, TlsClientSettings};

struct Pki {
    dir: tempfile::TempDir,
    ca: TestCa,
    edges: TestCa,
}

fn pki() -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("server CA");
    ca.server_cert("receiver").write(dir.path(), "server");
    let edges = TestCa::new("clients CA");
    edges.write(dir.path(), "clients-ca.pem");
    ca.write(dir.path(), "ca.pem");
    Pki { dir, ca, edges }
}

fn tls_config(pki: &Pki, mtls: bool) -> serde_json::Value {
    let path = |f: &str| pki.dir.path().join(f).to_str().unwrap().to_string();
    let mut tls =
        serde_json::json!({"cert_file": path("server.pem"), "key_file": path("server-key.pem")});
    if mtls {
        tls["client_ca_file"] = path("clients-ca.pem").into();
    }
    serde_json::json!({"protocols": {
        "grpc": {"endpoint": "127.0.0.1:0", "tls": tls},
        "http": {"endpoint": "127.0.0.1:0", "tls": tls},
    }})
}

fn client(pki: &Pki, with_cert: bool) -> ClientTls {
    let path = |f: &str| pki.dir.path().join(f).to_str().unwrap().to_string();
    let mut settings = TlsClientSettings {
        ca_file: Some(path("ca.pem")),
        ..Default::default()
    };
    if with_cert {
        pki.edges.client_cert("edge").write(pki.dir.path(), "edge");
        settings.cert_file = Some(path("edge.pem"));
        settings.key_file = Some(path("edge-key.pem"));
    }
    settings.load("tls", |p| p.into()).unwrap()
}

async fn post_logs(tls: &ClientTls, port: u16, n: usize) -> Result<u16, String> {
    let http = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build::<_, Full<Bytes>>(tls.https_connector(HttpVersions::Http1And2));
    let req = http::Request::post(format!("https://localhost:{port}/v1/logs"))
        .header("content-type", "application/x-protobuf")
        .body(Full::new(Bytes::from(logs(n).encode_to_vec())))
        .unwrap();
    match tokio::time::timeout(Duration::from_secs(5), http.request(req)).await {
        Ok(Ok(resp)) => Ok(resp.status().as_u16()),
        Ok(Err(e)) => Err(format!("{e:?}")),
        Err(_) => Err("timed out".into()),
    }
}

fn records(r: &Running) -> usize {
    r.recorder.take().iter().map(|b| b.item_count()).sum()
}

#[tokio::test]
async fn otlp_over_tls_arrives_and_plain_text_is_refused() {
    let pki = pki();
    let r = start(tls_config(&pki, false), &["logs"]).await;
    let tls = client(&pki, false);

    let port = r.http().port();
    assert_eq!(post_logs(&tls, port, 3).await, Ok(200));
    assert_eq!(records(&r), 3);

    let grpc_port = r.receiver.grpc_address().unwrap().port();
    let endpoint =
        tonic::transport::Endpoint::from_shared(format!("https://localhost:{grpc_port}"))
            .unwrap()
            .timeout(Duration::from_secs(5));
    let channel = tls.connect_grpc(endpoint).await.unwrap();
    LogsServiceClient::new(channel)
        .export(logs(2))
        .await
        .unwrap();
    assert_eq!(records(&r), 2);

    // Plain text: no HTTP answer, and a plain gRPC call fails; nothing more arrives.
    assert!(plain_http_get(r.http(), "/v1/logs").await.is_err());
    let plain = LogsServiceClient::connect(format!("http://127.0.0.1:{grpc_port}")).await;
    if let Ok(mut c) = plain {
        assert!(c.export(logs(1)).await.is_err());
    }
    // A client trusting another CA.
    let stranger = TlsClientSettings {
        ca_pem: Some(TestCa::new("other").cert_pem()),
        ..Default::default()
    }
    .load("tls", |p| p.into())
    .unwrap();
    assert!(post_logs(&stranger, port, 1).await.is_err());
    assert_eq!(records(&r), 0);
    let _ = &pki.ca;
}

#[tokio::test]
async fn mtls_receiver_takes_only_clients_with_a_certificate_from_its_ca() {
    let pki = pki();
    let r = start(tls_config(&pki, true), &["logs"]).await;
    let port = r.http().port();
    assert!(post_logs(&client(&pki, false), port, 1).await.is_err());
    assert_eq!(post_logs(&client(&pki, true), port, 4).await, Ok(200));
    assert_eq!(records(&r), 4);
}
