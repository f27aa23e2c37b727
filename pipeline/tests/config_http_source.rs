//! `--config http://...` and `--config https://...` (the collector's http and https config
//! providers), against real servers on loopback, run through the `weir` binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::SocketAddr;

use axum::body::Body;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use support::*;

fn output(cmd: &mut std::process::Command) -> (i32, String, String) {
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

const CONFIG: &str = "receivers:
  nop: {}
exporters:
  nop: {}
service:
  telemetry:
    metrics: {level: none}
  pipelines:
    logs: {receivers: [nop], exporters: [nop]}
";

fn router() -> Router {
    Router::new()
        .route("/ok.yaml", get(|| async { CONFIG }))
        .route(
            "/traces.yaml",
            get(|| async {
                "service:\n  pipelines:\n    traces: {receivers: [nop], exporters: [nop]}\n"
            }),
        )
        .route(
            "/moved",
            get(|| async { (StatusCode::FOUND, [(header::LOCATION, "/ok.yaml")]).into_response() }),
        )
        .route("/exporters.yaml", get(|| async { "nop: {}\n" }))
        .route("/bad.yaml", get(|| async { "receivers: [1,\n" }))
        .route(
            "/big",
            get(|| async { vec![b'#'; weir::config::HTTP_MAX_BODY + 1] }),
        )
        .route(
            "/bigstream",
            get(|| async {
                // No Content-Length: the limit must hold while reading.
                let chunks = (0..17).map(|_| Ok::<_, std::io::Error>(vec![b'#'; 1024 * 1024]));
                Response::new(Body::from_stream(futures::stream::iter(chunks)))
            }),
        )
}

/// Serves `router()` on loopback (plain HTTP) on a thread of its own.
fn serve_plain() -> (SocketAddr, tokio::runtime::Runtime) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move { axum::serve(listener, router()).await });
    (addr, rt)
}

#[test]
fn http_source_loads_follows_redirects_and_merges_with_other_sources() {
    let (addr, _rt) = serve_plain();
    let (code, stdout, stderr) = output(
        weir()
            .arg("validate")
            .arg("--config")
            .arg(format!("http://{addr}/ok.yaml")),
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, "the config is valid: 1 pipeline(s)\n");

    // A redirect to the same config, merged with a second http source adding a pipeline.
    let (code, stdout, stderr) = output(
        weir()
            .arg("validate")
            .arg("--config")
            .arg(format!("http://{addr}/moved"))
            .arg("--config")
            .arg(format!("http://{addr}/traces.yaml")),
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, "the config is valid: 2 pipeline(s)\n");

    // `${http://...}` inside a value: the body replaces the reference.
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "ref.yaml",
        &CONFIG.replace(
            "exporters:\n  nop: {}\n",
            &format!("exporters: ${{http://{addr}/exporters.yaml}}\n"),
        ),
    );
    assert!(std::fs::read_to_string(&cfg).unwrap().contains("${http://"));
    let (code, stdout, stderr) = output(weir().arg("validate").arg("--config").arg(&cfg));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, "the config is valid: 1 pipeline(s)\n");
}

#[test]
fn http_source_errors_name_the_uri_and_are_all_reported() {
    let (addr, _rt) = serve_plain();
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let uris = [
        format!("http://{addr}/missing.yaml"),
        format!("http://{addr}/bad.yaml"),
        format!("http://{addr}/big"),
        format!("http://{addr}/bigstream"),
        format!("http://{closed}/cfg.yaml"),
    ];
    let mut cmd = weir();
    cmd.arg("validate");
    for u in &uris {
        cmd.arg("--config").arg(u);
    }
    let (code, stdout, stderr) = output(&mut cmd);
    assert_eq!(code, 1, "{stdout}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 5, "{stderr}");
    assert_eq!(
        lines[0],
        format!(
            "{}: cannot fetch the config from {:?}: status 404 (200 is required)",
            uris[0], uris[0]
        )
    );
    assert!(lines[1].starts_with(&format!("{}: ", uris[1])), "{stderr}");
    assert!(lines[1].contains("line 1"), "{stderr}");
    let limit = weir::config::HTTP_MAX_BODY;
    for (line, uri) in lines[2..4].iter().zip(&uris[2..4]) {
        assert_eq!(
            *line,
            format!("{uri}: the config from {uri:?} is larger than the limit of {limit} bytes")
        );
    }
    assert!(
        lines[4].starts_with(&format!(
            "{}: cannot fetch the config from {:?}: ",
            uris[4], uris[4]
        )),
        "{stderr}"
    );
    assert!(lines[4].contains("onnection refused"), "{stderr}");
}

#[test]
fn https_source_verifies_the_server_against_the_trusted_roots() {
    use weir_tls::testing::TestCa;
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("weir config test CA");
    let (cert, key) = ca.server_cert("localhost").write(dir.path(), "server");
    let ca_file = write(dir.path(), "ca.pem", &ca.cert_pem());
    let other_ca = write(dir.path(), "other.pem", &TestCa::new("other").cert_pem());
    let settings = weir_tls::TlsServerSettings {
        cert_file: cert.display().to_string(),
        key_file: key.display().to_string(),
        client_ca_file: None,
        min_version: weir_tls::TlsVersion::V1_2,
        max_version: None,
        reload_interval: std::time::Duration::from_secs(30),
    };
    let tls = settings
        .load(
            "tls",
            |p: &str| std::path::PathBuf::from(p),
            weir_tls::Alpn::Http,
        )
        .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    rt.spawn(async move {
        let service = hyper_util::service::TowerToHyperService::new(router());
        tls.serve_http(listener, service, std::future::pending())
            .await
    });
    let uri = format!("https://localhost:{port}/ok.yaml");

    // Roots that hold the test CA (SSL_CERT_FILE, as Go's system pool honours it).
    let (code, stdout, stderr) = output(
        weir()
            .env("SSL_CERT_FILE", &ca_file)
            .env_remove("SSL_CERT_DIR")
            .args(["validate", "--config", &uri]),
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, "the config is valid: 1 pipeline(s)\n");

    // Roots without it: the certificate is refused and the error names the URI.
    let (code, _, stderr) = output(
        weir()
            .env("SSL_CERT_FILE", &other_ca)
            .env("SSL_CERT_DIR", dir.path().join("none"))
            .args(["validate", "--config", &uri]),
    );
    assert_eq!(code, 1);
    assert!(
        stderr.starts_with(&format!("{uri}: cannot fetch the config from {uri:?}: ")),
        "{stderr}"
    );
    assert!(stderr.contains("UnknownIssuer"), "{stderr}");
}
