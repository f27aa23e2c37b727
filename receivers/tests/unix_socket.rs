//! `transport: unix`: the OTLP receiver on Unix domain sockets (the endpoint is the socket's
//! path), for gRPC and HTTP, with real clients connecting over the sockets.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use prost::Message;
use tokio::net::UnixStream;
use weir_api::otlp::collector::logs::v1::logs_service_client::LogsServiceClient;
use weir_api::Component;

#[tokio::test]
async fn grpc_and_http_on_unix_sockets_take_requests_and_remove_the_sockets() {
    let dir = tempfile::tempdir().unwrap();
    let grpc_path = dir.path().join("otlp-grpc.sock");
    let http_path = dir.path().join("otlp-http.sock");
    // A stale socket file (nobody accepts on it) is replaced.
    drop(std::os::unix::net::UnixListener::bind(&grpc_path).unwrap());
    assert!(grpc_path.exists());
    let r = start(
        serde_json::json!({"protocols": {
            "grpc": {"endpoint": grpc_path.to_str().unwrap(), "transport": "unix"},
            "http": {"endpoint": http_path.to_str().unwrap(), "transport": "unix"},
        }}),
        &["logs"],
    )
    .await;

    // gRPC over the socket, with tonic.
    let path = grpc_path.clone();
    let channel = tonic::transport::Endpoint::from_static("http://localhost")
        .connect_with_connector(tower::service_fn(move |_: http::Uri| {
            let path = path.clone();
            async move { Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(path).await?)) }
        }))
        .await
        .unwrap();
    LogsServiceClient::new(channel)
        .export(logs(3))
        .await
        .unwrap();

    // HTTP/1.1 over the socket, with hyper.
    let stream = UnixStream::connect(&http_path).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let request = http::Request::post("/v1/logs")
        .header("host", "localhost")
        .header("content-type", "application/x-protobuf")
        .body(Full::new(Bytes::from(logs(4).encode_to_vec())))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let _ = response.into_body().collect().await.unwrap();

    let got: usize = r.recorder.take().iter().map(|b| b.item_count()).sum();
    assert_eq!(got, 7);
    for (transport, n) in [("grpc", 3), ("http", 4)] {
        assert_eq!(
            metric_value(
                &r.telemetry,
                &format!("weir_receiver_accepted_items_total{{receiver=\"otlp\",transport=\"{transport}\",signal=\"logs\"}}")
            ),
            n,
            "{transport}"
        );
    }

    // A second receiver on a live socket fails to start, naming the socket.
    let cfg = weir_receivers::otlp::OtlpReceiverFactory
        .parse_config(
            &serde_json::json!({"protocols": {"http": {"endpoint": http_path.to_str().unwrap(), "transport": "unix"}}}),
            "receivers.otlp",
        )
        .unwrap();
    let ctx =
        weir_api::BuildContext::for_component(weir_api::ComponentId::parse("otlp/2").unwrap());
    let second = cfg
        .build_receiver(&ctx, weir_api::SignalConsumers::default())
        .unwrap();
    let err = second.start().await.err().unwrap().to_string();
    assert!(
        err.contains(&format!(
            "cannot listen for OTLP/HTTP on the unix socket {}",
            http_path.display()
        )),
        "{err}"
    );

    r.receiver.shutdown().await;
    assert!(!grpc_path.exists());
    assert!(!http_path.exists());
}

#[test]
fn unix_transport_needs_a_path_and_other_transports_are_named() {
    let err = weir_receivers::otlp::OtlpReceiverFactory
        .parse_config(
            &serde_json::json!({"protocols": {
                "grpc": {"endpoint": "", "transport": "unix"},
                "http": {"endpoint": "127.0.0.1:4318", "transport": "udp"},
            }}),
            "receivers.otlp",
        )
        .err()
        .unwrap();
    assert_eq!(
        err.to_string(),
        "receivers.otlp.protocols.grpc.endpoint: must be the socket's path with transport: unix\n\
         receivers.otlp.protocols.http.transport: unsupported transport \"udp\" (expected \"tcp\" or \"unix\")"
    );
}
