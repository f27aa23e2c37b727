//! `otlp_grpc` against real gRPC servers on 127.0.0.1: what arrives (every signal, exact
//! records, headers, compression, byte-for-byte forwarding) and TLS.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::{build_exporter, logs, metric, metrics, traces, wait_until};
use prost::Message;
use tonic::codec::CompressionEncoding;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};
use weir_api::grpc_raw::RawBytesCodec;
use weir_api::otlp::collector::logs::v1::logs_service_server::LogsServiceServer;
use weir_api::{Batch, Payload, Signal};

use common::upstream::*;

#[tokio::test]
async fn delivers_exact_records_of_every_signal_with_gzip_and_headers() {
    let upstream = Upstream::default();
    let (addr, server) = upstream.serve().await;
    let (exporter, telemetry) = build_exporter(
        "otlp",
        serde_json::json!({
            "endpoint": addr.to_string(),
            "tls": {"insecure": true},
            "headers": {"X-Tenant": "acme", "authorization": "Bearer t0k"},
        }),
    );
    exporter.start().await.unwrap();
    let sent = vec![logs("a", 3), traces("b", 2), metrics("c", 4)];
    for p in &sent {
        exporter.consume(Batch::new(p.clone())).await.unwrap();
    }
    assert!(wait_until(Duration::from_secs(10), || upstream.items() == 9).await);
    exporter.shutdown().await;
    let mut got = upstream.payloads();
    got.sort_by_key(|p| p.signal());
    let mut want = sent.clone();
    want.sort_by_key(|p| p.signal());
    assert_eq!(got, want);
    for (_, headers) in upstream.received.lock().unwrap().iter() {
        let get = |k: &str| {
            headers
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("x-tenant"), Some("acme"));
        assert_eq!(get("authorization"), Some("Bearer t0k"));
        assert_eq!(get("grpc-encoding"), Some("gzip"));
        let agent = get("user-agent").unwrap();
        assert!(
            agent.starts_with(concat!("weir/", env!("CARGO_PKG_VERSION"))),
            "{agent}"
        );
    }
    for (signal, n) in [("logs", 3.0), ("traces", 2.0), ("metrics", 4.0)] {
        let series =
            format!("weir_exporter_sent_items_total{{exporter=\"otlp\",signal=\"{signal}\"}}");
        assert_eq!(metric(&telemetry, &series), n, "{series}");
    }
    server.abort();
}

#[tokio::test]
async fn zstd_and_no_compression_are_honoured() {
    for (compression, want) in [("zstd", Some("zstd")), ("none", None)] {
        let upstream = Upstream::default();
        let (addr, server) = upstream.serve().await;
        let (exporter, _) = build_exporter(
            "otlp_grpc",
            serde_json::json!({"endpoint": format!("http://{addr}"), "compression": compression}),
        );
        exporter.start().await.unwrap();
        exporter.consume(Batch::new(logs("z", 2))).await.unwrap();
        assert!(wait_until(Duration::from_secs(10), || upstream.items() == 2).await);
        let (payload, headers) = upstream.received.lock().unwrap()[0].clone();
        let encoding = headers
            .iter()
            .find(|(k, _)| k == "grpc-encoding")
            .map(|(_, v)| v.as_str());
        assert_eq!(encoding, want, "{compression}");
        assert_eq!(payload, logs("z", 2));
        exporter.shutdown().await;
        server.abort();
    }
}

/// A gRPC server that records each message's bytes exactly as they arrived.
#[derive(Clone, Default)]
struct RawLogsServer {
    bodies: Arc<Mutex<Vec<Bytes>>>,
}

impl tonic::server::NamedService for RawLogsServer {
    const NAME: &'static str = "opentelemetry.proto.collector.logs.v1.LogsService";
}

struct RecordBytes(Arc<Mutex<Vec<Bytes>>>);

impl tonic::server::UnaryService<Bytes> for RecordBytes {
    type Response = Bytes;
    type Future = std::future::Ready<Result<Response<Bytes>, Status>>;
    fn call(&mut self, request: Request<Bytes>) -> Self::Future {
        self.0.lock().unwrap().push(request.into_inner());
        std::future::ready(Ok(Response::new(Bytes::new())))
    }
}

impl tonic::codegen::Service<http::Request<tonic::body::Body>> for RawLogsServer {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = tonic::codegen::BoxFuture<Self::Response, Infallible>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let bodies = self.bodies.clone();
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(RawBytesCodec)
                .accept_compressed(CompressionEncoding::Gzip);
            Ok(grpc.unary(RecordBytes(bodies), request).await)
        })
    }
}

#[tokio::test]
async fn unchanged_batch_is_forwarded_byte_for_byte() {
    let server = RawLogsServer::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let svc = server.clone();
    let handle = tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(svc)
            .serve_with_incoming(TcpIncoming::from(listener))
            .await
            .unwrap();
    });
    // Bytes that decoding and encoding again would change: an unknown field (number 99)
    // after the request, which prost drops when it decodes.
    let Payload::Logs(request) = logs("raw", 2) else {
        unreachable!()
    };
    let mut original = request.encode_to_vec();
    original.extend_from_slice(&[0x98, 0x06, 0x01]);
    let original = Bytes::from(original);
    let batch = Batch::decode(Signal::Logs, original.clone()).unwrap();
    assert_ne!(Bytes::from(batch.payload().encode_to_vec()), original);

    let (exporter, _) = build_exporter(
        "otlp",
        serde_json::json!({"endpoint": format!("http://{addr}")}),
    );
    exporter.start().await.unwrap();
    exporter.consume(batch).await.unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || server
            .bodies
            .lock()
            .unwrap()
            .len()
            == 1)
        .await
    );
    assert_eq!(server.bodies.lock().unwrap()[0], original);

    // A changed batch is encoded afresh.
    let mut changed = Batch::decode(Signal::Logs, original.clone()).unwrap();
    let _ = changed.payload_mut();
    exporter.consume(changed).await.unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || server
            .bodies
            .lock()
            .unwrap()
            .len()
            == 2)
        .await
    );
    assert_eq!(
        server.bodies.lock().unwrap()[1],
        Bytes::from(request.encode_to_vec())
    );
    exporter.shutdown().await;
    handle.abort();
}

/// A server certificate for localhost from a fresh CA, written to `dir`: the server's TLS
/// config (ALPN `alpn`) and the CA file a client must trust.
fn upstream_tls(dir: &std::path::Path, alpn: weir_tls::Alpn) -> (weir_tls::ServerTls, String) {
    let ca = weir_tls::testing::TestCa::new("upstream CA");
    let (cert, key) = ca.server_cert("upstream").write(dir, "server");
    let settings = weir_tls::TlsServerSettings {
        cert_file: cert.to_str().unwrap().into(),
        key_file: key.to_str().unwrap().into(),
        client_ca_file: None,
        min_version: weir_tls::TlsVersion::V1_3,
        max_version: None,
        reload_interval: Duration::from_secs(30),
    };
    let tls = settings.load("tls", |p| p.into(), alpn).unwrap();
    (tls, ca.write(dir, "ca.pem").to_str().unwrap().to_string())
}

#[tokio::test]
async fn delivers_over_tls_to_a_server_its_ca_file_trusts() {
    let dir = tempfile::tempdir().unwrap();
    let (tls, ca_file) = upstream_tls(dir.path(), weir_tls::Alpn::Grpc);
    let upstream = Upstream::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let logs_service = LogsServiceServer::new(upstream.clone());
    let server = tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(logs_service)
            .serve_with_incoming(tls.incoming(listener))
            .await
            .unwrap();
    });
    // No scheme and no `insecure`: TLS, as in the collector.
    let (exporter, _telemetry) = build_exporter(
        "otlp",
        serde_json::json!({"endpoint": format!("localhost:{port}"), "tls": {"ca_file": ca_file}, "compression": "none"}),
    );
    exporter.start().await.unwrap();
    exporter.consume(Batch::new(logs("tls", 3))).await.unwrap();
    assert!(wait_until(Duration::from_secs(10), || upstream.items() == 3).await);
    exporter.shutdown().await;
    assert_eq!(upstream.payloads(), vec![logs("tls", 3)]);
    server.abort();
}
