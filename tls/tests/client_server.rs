//! weir-tls end to end on 127.0.0.1: `ServerTls::serve_http` with an axum router, dialed by
//! `ClientTls::https_connector` as a hyper client; file errors as the user sees them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use weir_tls::testing::{TestCa, TestCert};
use weir_tls::{Alpn, ClientTls, HttpVersions, TlsClientSettings, TlsServerSettings, TlsVersion};

fn server_settings(dir: &Path, cert: &TestCert, client_ca: Option<&TestCa>) -> TlsServerSettings {
    let (cert_file, key_file) = cert.write(dir, "server");
    TlsServerSettings {
        cert_file: cert_file.to_str().unwrap().into(),
        key_file: key_file.to_str().unwrap().into(),
        client_ca_file: client_ca.map(|ca| ca.write(dir, "client-ca.pem").to_str().unwrap().into()),
        min_version: TlsVersion::V1_3,
        max_version: None,
        reload_interval: Duration::from_secs(30),
    }
}

/// Serves `GET /` -> "hello over tls" until the returned sender is dropped.
async fn serve(settings: &TlsServerSettings) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let tls = settings
        .load(
            "receivers.otlp.protocols.http.tls",
            |p| p.into(),
            Alpn::Http,
        )
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route("/", axum::routing::get(|| async { "hello over tls" }));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        tls.serve_http(
            listener,
            hyper_util::service::TowerToHyperService::new(app),
            async move {
                let _ = rx.await;
            },
        )
        .await
    });
    (addr, tx)
}

async fn get(client: &ClientTls, url: &str) -> Result<(u16, String), String> {
    let http = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build::<_, Full<bytes::Bytes>>(client.https_connector(HttpVersions::Http1And2));
    let fut = async {
        let resp = http
            .get(url.parse().unwrap())
            .await
            .map_err(|e| format!("{e:?}"))?;
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    };
    tokio::time::timeout(Duration::from_secs(5), fut)
        .await
        .map_err(|_| "timed out".to_string())?
}

#[tokio::test]
async fn hyper_client_with_ca_file_and_client_cert_talks_to_an_mtls_server() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("server CA");
    let edges = TestCa::new("edges CA");
    let (addr, _stop) = serve(&server_settings(
        dir.path(),
        &ca.server_cert("srv"),
        Some(&edges),
    ))
    .await;
    let ca_file = ca.write(dir.path(), "ca.pem");
    let (cert, key) = edges.client_cert("edge-1").write(dir.path(), "edge");
    let url = format!("https://localhost:{}/", addr.port());

    let with_cert = TlsClientSettings {
        ca_file: Some(ca_file.to_str().unwrap().into()),
        cert_file: Some(cert.to_str().unwrap().into()),
        key_file: Some(key.to_str().unwrap().into()),
        ..Default::default()
    };
    let client = with_cert
        .load("exporters.otlphttp.tls", |p| p.into())
        .unwrap();
    assert_eq!(
        get(&client, &url).await.unwrap(),
        (200, "hello over tls".to_string())
    );

    let without_cert = TlsClientSettings {
        ca_file: Some(ca_file.to_str().unwrap().into()),
        ..Default::default()
    };
    let client = without_cert
        .load("exporters.otlphttp.tls", |p| p.into())
        .unwrap();
    assert!(get(&client, &url).await.is_err());
}

#[tokio::test]
async fn server_name_override_and_insecure_skip_verify() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("server CA");
    let (addr, _stop) = serve(&server_settings(dir.path(), &ca.server_cert("srv"), None)).await;
    let ca_file = ca.write(dir.path(), "ca.pem");
    // Dialed by IP: with an override, the override is the name checked in the certificate.
    let url = format!("https://127.0.0.1:{}/", addr.port());
    let wrong_name = TlsClientSettings {
        ca_file: Some(ca_file.to_str().unwrap().into()),
        server_name_override: Some("collector.example".into()),
        ..Default::default()
    }
    .load("tls", |p| p.into())
    .unwrap();
    let err = get(&wrong_name, &url).await.unwrap_err();
    assert!(err.contains("NotValidForName"), "{err}");
    let right_name = TlsClientSettings {
        ca_file: Some(ca_file.to_str().unwrap().into()),
        server_name_override: Some("localhost".into()),
        ..Default::default()
    }
    .load("tls", |p| p.into())
    .unwrap();
    assert_eq!(get(&right_name, &url).await.unwrap().0, 200);

    // No CA given and the test CA is not a system root: refused, unless verification is off.
    let system_roots = TlsClientSettings::default()
        .load("tls", |p| p.into())
        .unwrap();
    let err = get(&system_roots, &url).await.unwrap_err();
    assert!(err.contains("UnknownIssuer"), "{err}");
    let skip = TlsClientSettings {
        insecure_skip_verify: true,
        ..Default::default()
    }
    .load("tls", |p| p.into())
    .unwrap();
    assert_eq!(get(&skip, &url).await.unwrap().0, 200);
}

#[test]
fn file_errors_name_the_yaml_path_and_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let settings = TlsServerSettings {
        cert_file: "x.pem".into(),
        key_file: "x-key.pem".into(),
        client_ca_file: None,
        min_version: TlsVersion::V1_3,
        max_version: None,
        reload_interval: Duration::from_secs(30),
    };
    let err = settings
        .load("extensions.control_plane.tls", |p| p.into(), Alpn::Http)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "extensions.control_plane.tls.cert_file: cannot read \"x.pem\": No such file or directory (os error 2)"
    );

    // A certificate file that holds a key, and a key that does not match the certificate.
    let ca = TestCa::new("ca");
    let (cert, key) = ca.server_cert("a").write(dir.path(), "a");
    let swapped = TlsServerSettings {
        cert_file: key.to_str().unwrap().into(),
        key_file: key.to_str().unwrap().into(),
        ..settings.clone()
    };
    let err = swapped.load("tls", |p| p.into(), Alpn::Http).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("tls.cert_file: {key:?} holds no PEM certificate")
    );
    let (_, other_key) = ca.server_cert("b").write(dir.path(), "b");
    let mismatched = TlsServerSettings {
        cert_file: cert.to_str().unwrap().into(),
        key_file: other_key.to_str().unwrap().into(),
        ..settings.clone()
    };
    let err = mismatched
        .load("tls", |p| p.into(), Alpn::Http)
        .unwrap_err();
    assert!(err.to_string().starts_with("tls.cert_file: "), "{err}");

    let client = TlsClientSettings {
        ca_file: Some(cert.to_str().unwrap().into()),
        server_name_override: Some("not a name!".into()),
        ..Default::default()
    };
    let err = client.load("exporters.otlp.tls", |p| p.into()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "exporters.otlp.tls.server_name_override: \"not a name!\" is not a DNS name or IP address"
    );
}

#[tokio::test]
async fn inline_pem_settings_work_like_files() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("server CA");
    let edges = TestCa::new("edges CA");
    let (addr, _stop) = serve(&server_settings(
        dir.path(),
        &ca.server_cert("srv"),
        Some(&edges),
    ))
    .await;
    let edge = edges.client_cert("edge-inline");
    let settings: TlsClientSettings = serde_json::from_value(serde_json::json!({
        "ca_pem": ca.cert_pem(),
        "cert_pem": edge.cert_pem,
        "key_pem": edge.key_pem,
    }))
    .unwrap();
    assert!(settings.validate("tls").is_empty());
    let client = settings.load("tls", |p| p.into()).unwrap();
    let url = format!("https://localhost:{}/", addr.port());
    assert_eq!(
        get(&client, &url).await.unwrap(),
        (200, "hello over tls".to_string())
    );

    let broken = TlsClientSettings {
        ca_pem: Some("not pem".into()),
        ..Default::default()
    };
    assert_eq!(
        broken
            .load("exporters.otlp.tls", |p| p.into())
            .unwrap_err()
            .to_string(),
        "exporters.otlp.tls.ca_pem: holds no PEM certificate"
    );
    let both = TlsClientSettings {
        ca_file: Some("ca.pem".into()),
        ca_pem: Some(ca.cert_pem()),
        ..Default::default()
    };
    assert_eq!(
        both.validate("exporters.otlp.tls").to_string(),
        "exporters.otlp.tls.ca_pem: set either ca_file or ca_pem, not both"
    );
}
