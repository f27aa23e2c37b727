//! OTLP/HTTP against a real receiver on 127.0.0.1: bodies, encodings, status codes, CORS,
//! refusals and the in-flight budget.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use prost::Message;
use weir_api::otlp::collector::logs::v1::ExportLogsServiceRequest;
use weir_api::rpc_status::{RetryInfo, RpcStatus};
use weir_api::{Component, Payload};

const PROTO: &str = "application/x-protobuf";

fn http_only(extra: serde_json::Value) -> serde_json::Value {
    let mut http = serde_json::json!({"endpoint": "127.0.0.1:0"});
    if let serde_json::Value::Object(m) = extra {
        for (k, v) in m {
            http[k] = v;
        }
    }
    serde_json::json!({"protocols": {"http": http}})
}

async fn good_logs_request(r: &Running) {
    let a = post(r.http(), "/v1/logs", PROTO, None, logs(2).encode_to_vec()).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    let got = r.recorder.take();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].item_count(), 2);
}

#[tokio::test]
async fn protobuf_bodies_of_every_signal_arrive_exactly_and_keep_their_bytes() {
    let r = start(
        http_only(serde_json::json!({})),
        &["logs", "traces", "metrics"],
    )
    .await;
    let logs_body = logs(3).encode_to_vec();
    let a = post(r.http(), "/v1/logs", PROTO, None, logs_body.clone()).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.header("content-type"), Some(PROTO));
    assert!(a.body.is_empty(), "an empty ExportLogsServiceResponse");
    let a = post(
        r.http(),
        "/v1/traces",
        PROTO,
        None,
        traces(2).encode_to_vec(),
    )
    .await;
    assert_eq!(a.status, 200);
    let a = post(
        r.http(),
        "/v1/metrics",
        PROTO,
        None,
        metrics(4).encode_to_vec(),
    )
    .await;
    assert_eq!(a.status, 200);

    let got = r.recorder.take();
    assert_eq!(got.len(), 3);
    assert_eq!(got[0].payload(), &Payload::Logs(logs(3)));
    assert_eq!(got[0].original_bytes().map(|b| b.to_vec()), Some(logs_body));
    assert_eq!(got[1].payload(), &Payload::Traces(traces(2)));
    assert_eq!(got[2].payload(), &Payload::Metrics(metrics(4)));
    assert_eq!(
        metric_value(
            &r.telemetry,
            "weir_receiver_accepted_items_total{receiver=\"otlp\",transport=\"http\",signal=\"metrics\"}"
        ),
        4
    );
    r.receiver.shutdown().await;
}

#[tokio::test]
async fn gzip_zstd_and_deflate_bodies_decode() {
    let r = start(http_only(serde_json::json!({})), &["logs"]).await;
    let body = logs(5).encode_to_vec();
    let zstd_body = zstd::encode_all(&body[..], 3).unwrap();
    let deflate_body = {
        use std::io::Write;
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(&body).unwrap();
        e.finish().unwrap()
    };
    for (enc, compressed) in [
        ("gzip", gzip(&body)),
        ("zstd", zstd_body),
        ("deflate", deflate_body),
    ] {
        let a = post(r.http(), "/v1/logs", PROTO, Some(enc), compressed).await;
        assert_eq!(a.status, 200, "{enc}: {:?}", a.body);
        let got = r.recorder.take();
        assert_eq!(got[0].payload(), &Payload::Logs(logs(5)), "{enc}");
    }
    r.receiver.shutdown().await;
}

#[tokio::test]
async fn json_bodies_decode_and_are_answered_in_json() {
    let r = start(http_only(serde_json::json!({})), &["logs"]).await;
    let body = br#"{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"web"}}]},
        "scopeLogs":[{"logRecords":[{"timeUnixNano":"1700000000000000001","severityNumber":9,
        "traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174",
        "body":{"stringValue":"hello"},"attributes":[{"key":"n","value":{"intValue":"42"}}]}]}]}]}"#;
    let a = post(
        r.http(),
        "/v1/logs",
        "application/json",
        Some("gzip"),
        gzip(body),
    )
    .await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert_eq!(a.header("content-type"), Some("application/json"));
    assert_eq!(&a.body[..], b"{}");
    let got = r.recorder.take();
    let Payload::Logs(req) = got[0].payload() else {
        panic!("not logs")
    };
    let rec = &req.resource_logs[0].scope_logs[0].log_records[0];
    assert_eq!(rec.time_unix_nano, 1_700_000_000_000_000_001);
    assert_eq!(rec.severity_number, 9);
    assert_eq!(hex(&rec.trace_id), "5b8efff798038103d269b633813fc60c");
    assert_eq!(hex(&rec.span_id), "eee19b7ec3c1b174");
    assert_eq!(
        rec.attributes[0].value.as_ref().unwrap().value,
        Some(weir_api::otlp::common::v1::any_value::Value::IntValue(42))
    );

    let a = post(
        r.http(),
        "/v1/logs",
        "application/json",
        None,
        b"{\"resourceLogs\":[{".to_vec(),
    )
    .await;
    assert_eq!(a.status, 400);
    let status: serde_json::Value = serde_json::from_slice(&a.body).unwrap();
    assert_eq!(status["code"], 3);
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .starts_with("invalid OTLP/JSON logs request: invalid JSON"),
        "{status}"
    );
    r.receiver.shutdown().await;
}

#[tokio::test]
async fn json_traces_and_metrics_arrive_exactly() {
    let r = start(http_only(serde_json::json!({})), &["traces", "metrics"]).await;
    let body = weir_api::json::encode_traces(&traces(3));
    let a = post(
        r.http(),
        "/v1/traces",
        "application/json; charset=utf-8",
        None,
        body,
    )
    .await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    let body = weir_api::json::encode_metrics(&metrics(2));
    let a = post(
        r.http(),
        "/v1/metrics",
        "application/json",
        Some("zstd"),
        zstd::encode_all(&body[..], 3).unwrap(),
    )
    .await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    let got = r.recorder.take();
    assert_eq!(got[0].payload(), &Payload::Traces(traces(3)));
    assert_eq!(got[1].payload(), &Payload::Metrics(metrics(2)));
    r.receiver.shutdown().await;
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[tokio::test]
async fn bad_requests_get_the_collectors_status_codes_and_the_server_keeps_serving() {
    let r = start(
        http_only(serde_json::json!({"max_request_body_size": 4096})),
        &["logs"],
    )
    .await;

    // Malformed protobuf: 400 with a google.rpc.Status naming the problem.
    let a = post(
        r.http(),
        "/v1/logs",
        PROTO,
        None,
        vec![0x0a, 0xff, 0xff, 0xff],
    )
    .await;
    assert_eq!(a.status, 400);
    let status = RpcStatus::decode(a.body.clone()).unwrap();
    assert_eq!(status.code, 3);
    assert!(
        status.message.starts_with("invalid OTLP logs protobuf:"),
        "{}",
        status.message
    );
    good_logs_request(&r).await;

    // Wrong content type: 415.
    let a = post(r.http(), "/v1/logs", "text/plain", None, b"hi".to_vec()).await;
    assert_eq!(a.status, 415);
    assert_eq!(
        &a.body[..],
        b"415 unsupported media type, supported: [application/json, application/x-protobuf]"
    );
    good_logs_request(&r).await;

    // Wrong method: 405 with Allow.
    let a = send(r.http(), "GET", "/v1/logs", &[], vec![]).await;
    assert_eq!(a.status, 405);
    assert_eq!(a.header("allow"), Some("POST"));
    good_logs_request(&r).await;

    // Unknown path, and a signal no pipeline takes: 404.
    let a = post(r.http(), "/v2/logs", PROTO, None, logs(1).encode_to_vec()).await;
    assert_eq!(a.status, 404);
    let a = post(
        r.http(),
        "/v1/traces",
        PROTO,
        None,
        traces(1).encode_to_vec(),
    )
    .await;
    assert_eq!(a.status, 404);
    good_logs_request(&r).await;

    // Oversized body: 413.
    let a = post(r.http(), "/v1/logs", PROTO, None, logs(200).encode_to_vec()).await;
    assert_eq!(a.status, 413);
    assert_eq!(
        RpcStatus::decode(a.body.clone()).unwrap().message,
        "request body is larger than max_request_body_size (4096 bytes)"
    );
    good_logs_request(&r).await;

    // A gzip bomb (1 MiB of zeros in ~1 KiB) stops at the limit: 413.
    let bomb = gzip(&vec![0u8; 1024 * 1024]);
    assert!(bomb.len() < 4096);
    let a = post(r.http(), "/v1/logs", PROTO, Some("gzip"), bomb).await;
    assert_eq!(a.status, 413);
    assert_eq!(
        RpcStatus::decode(a.body.clone()).unwrap().message,
        "decompressed request body is larger than max_request_body_size (4096 bytes)"
    );
    good_logs_request(&r).await;

    // Corrupt gzip and an unknown encoding: 400.
    let a = post(
        r.http(),
        "/v1/logs",
        PROTO,
        Some("gzip"),
        b"not gzip".to_vec(),
    )
    .await;
    assert_eq!(a.status, 400);
    let a = post(r.http(), "/v1/logs", PROTO, Some("br"), vec![1]).await;
    assert_eq!(a.status, 400);
    assert_eq!(
        RpcStatus::decode(a.body.clone()).unwrap().message,
        "unsupported Content-Encoding \"br\" (supported: gzip, zstd, deflate)"
    );
    good_logs_request(&r).await;

    assert_eq!(
        metric_value(
            &r.telemetry,
            "weir_receiver_refused_requests_total{receiver=\"otlp\",transport=\"http\",signal=\"logs\"}"
        ),
        5
    );
    r.receiver.shutdown().await;
}

#[tokio::test]
async fn refusals_are_503_with_retry_after_and_rejections_400() {
    let r = start(http_only(serde_json::json!({})), &["logs"]).await;
    r.recorder
        .answer_next(Answer::Refuse(Some(Duration::from_secs(7))));
    let a = post(r.http(), "/v1/logs", PROTO, None, logs(3).encode_to_vec()).await;
    assert_eq!(a.status, 503);
    assert_eq!(a.header("retry-after"), Some("7"));
    let status = RpcStatus::decode(a.body.clone()).unwrap();
    assert_eq!(status.code, 8);
    assert_eq!(
        status.message,
        "memory_limiter: cannot accept data now: memory usage is above the soft limit"
    );
    let info = RetryInfo::decode(status.details[0].value.as_slice()).unwrap();
    assert_eq!(info.retry_delay.unwrap().seconds, 7);

    r.recorder.answer_next(Answer::Refuse(None));
    let a = post(
        r.http(),
        "/v1/logs",
        "application/json",
        None,
        br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{}]}]}]}"#.to_vec(),
    )
    .await;
    assert_eq!(a.status, 503);
    assert_eq!(a.header("retry-after"), None);
    let status: serde_json::Value = serde_json::from_slice(&a.body).unwrap();
    assert_eq!(status["code"], 14);

    r.recorder.answer_next(Answer::Reject);
    let a = post(r.http(), "/v1/logs", PROTO, None, logs(2).encode_to_vec()).await;
    assert_eq!(a.status, 400);
    assert_eq!(
        RpcStatus::decode(a.body.clone()).unwrap().message,
        "policy: rejected data: not allowed"
    );

    assert!(r.recorder.take().is_empty());
    assert_eq!(
        metric_value(
            &r.telemetry,
            "weir_receiver_refused_items_total{receiver=\"otlp\",transport=\"http\",signal=\"logs\"}"
        ),
        6
    );
    good_logs_request(&r).await;
    r.receiver.shutdown().await;
}

#[tokio::test]
async fn empty_requests_are_answered_without_the_pipeline() {
    let r = start(http_only(serde_json::json!({})), &["logs"]).await;
    r.recorder.answer_next(Answer::Reject);
    let a = post(r.http(), "/v1/logs", PROTO, None, vec![]).await;
    assert_eq!(a.status, 200);
    let a = post(
        r.http(),
        "/v1/logs",
        "application/json",
        None,
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(a.status, 200);
    assert!(r.recorder.take().is_empty());
    // The queued rejection is still unused: the consumer was never called.
    assert_eq!(r.recorder.answers.lock().unwrap().len(), 1);
    r.receiver.shutdown().await;
}

#[tokio::test]
async fn in_flight_budget_turns_a_burst_away_with_503() {
    // 1 MiB budget; a request held in the pipeline keeps its ~600 KiB share.
    let r = start(
        serde_json::json!({"protocols": {"http": {"endpoint": "127.0.0.1:0"}}, "max_in_flight_mib": 1}),
        &["logs"],
    )
    .await;
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    *r.recorder.gate.lock().unwrap() = Some(gate.clone());
    let big = ExportLogsServiceRequest {
        resource_logs: vec![weir_api::otlp::logs::v1::ResourceLogs {
            scope_logs: vec![weir_api::otlp::logs::v1::ScopeLogs {
                log_records: vec![weir_api::otlp::logs::v1::LogRecord {
                    severity_text: "x".repeat(600 * 1024),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec();
    let addr = r.http();
    let body = big.clone();
    let held = tokio::spawn(async move { post(addr, "/v1/logs", PROTO, None, body).await });
    // Wait until the first request is inside the pipeline, holding its share.
    r.recorder.wait_entered(1).await;
    let a = post(r.http(), "/v1/logs", PROTO, None, big.clone()).await;
    assert_eq!(a.status, 503);
    assert_eq!(a.header("retry-after"), Some("1"));
    assert_eq!(
        RpcStatus::decode(a.body.clone()).unwrap().message,
        "the receiver holds as many request bytes as it may; retry later"
    );
    let in_flight = "weir_receiver_in_flight_bytes{receiver=\"otlp\"}";
    assert_eq!(metric_value(&r.telemetry, in_flight), big.len() as u64);
    gate.add_permits(10);
    assert_eq!(held.await.unwrap().status, 200);
    assert_eq!(metric_value(&r.telemetry, in_flight), 0);
    // The share came back: the same request now passes.
    let a = post(r.http(), "/v1/logs", PROTO, None, big).await;
    assert_eq!(a.status, 200);
    assert_eq!(r.recorder.take().len(), 2);
    r.receiver.shutdown().await;
}

#[tokio::test]
async fn cors_preflight_and_allowed_origin() {
    let r = start(
        http_only(serde_json::json!({"cors": {
            "allowed_origins": ["https://*.example.com"],
            "allowed_headers": ["X-Custom"],
            "max_age": 600
        }})),
        &["logs"],
    )
    .await;
    let a = send(
        r.http(),
        "OPTIONS",
        "/v1/logs",
        &[
            ("origin", "https://app.example.com"),
            ("access-control-request-method", "POST"),
            ("access-control-request-headers", "content-type, x-custom"),
        ],
        vec![],
    )
    .await;
    assert_eq!(a.status, 204);
    assert_eq!(
        a.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert_eq!(a.header("access-control-allow-methods"), Some("POST"));
    assert_eq!(
        a.header("access-control-allow-headers"),
        Some("content-type, x-custom")
    );
    assert_eq!(a.header("access-control-max-age"), Some("600"));

    // Not an allowed origin, or a header not allowed: no allow headers.
    for (origin, hdrs) in [
        ("https://evil.test", "content-type"),
        ("https://app.example.com", "x-other"),
    ] {
        let a = send(
            r.http(),
            "OPTIONS",
            "/v1/logs",
            &[
                ("origin", origin),
                ("access-control-request-method", "POST"),
                ("access-control-request-headers", hdrs),
            ],
            vec![],
        )
        .await;
        assert_eq!(a.status, 204);
        assert_eq!(
            a.header("access-control-allow-origin"),
            None,
            "{origin} {hdrs}"
        );
    }

    // The actual request carries the allow-origin header.
    let a = send(
        r.http(),
        "POST",
        "/v1/logs",
        &[
            ("origin", "https://app.example.com"),
            ("content-type", PROTO),
        ],
        logs(1).encode_to_vec(),
    )
    .await;
    assert_eq!(a.status, 200);
    assert_eq!(
        a.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    r.receiver.shutdown().await;
}

#[tokio::test]
async fn cors_lists_may_be_comma_separated_strings_and_exposed_headers_are_sent() {
    // The collector's loader splits a string on ',' where a list is expected.
    let r = start(
        http_only(serde_json::json!({"cors": {
            "allowed_origins": "https://a.example.com, https://b.example.com",
            "exposed_headers": "X-Trace-Id,Retry-After"
        }})),
        &["logs"],
    )
    .await;
    for origin in ["https://a.example.com", "https://b.example.com"] {
        let a = send(
            r.http(),
            "POST",
            "/v1/logs",
            &[("origin", origin), ("content-type", PROTO)],
            logs(1).encode_to_vec(),
        )
        .await;
        assert_eq!(a.status, 200);
        assert_eq!(a.header("access-control-allow-origin"), Some(origin));
        assert_eq!(
            a.header("access-control-expose-headers"),
            Some("X-Trace-Id, Retry-After")
        );
    }
    let a = send(
        r.http(),
        "POST",
        "/v1/logs",
        &[("origin", "https://c.example.com"), ("content-type", PROTO)],
        logs(1).encode_to_vec(),
    )
    .await;
    assert_eq!(a.status, 200);
    assert_eq!(a.header("access-control-allow-origin"), None);
    assert_eq!(a.header("access-control-expose-headers"), None);
    assert_eq!(r.recorder.take().len(), 3);
    r.receiver.shutdown().await;
}

#[tokio::test]
async fn custom_paths_and_metadata() {
    let r = start(
        http_only(serde_json::json!({"logs_url_path": "ingest/logs", "include_metadata": true})),
        &["logs"],
    )
    .await;
    let a = send(
        r.http(),
        "POST",
        "/ingest/logs",
        &[("content-type", PROTO), ("X-Tenant", "acme")],
        logs(1).encode_to_vec(),
    )
    .await;
    assert_eq!(a.status, 200);
    let a = post(r.http(), "/v1/logs", PROTO, None, logs(1).encode_to_vec()).await;
    assert_eq!(a.status, 404);
    let got = r.recorder.take();
    let md = got[0].context.metadata.as_ref().unwrap();
    assert!(
        md.contains(&("x-tenant".to_string(), "acme".to_string())),
        "{md:?}"
    );
    r.receiver.shutdown().await;
}

#[tokio::test]
async fn shutdown_finishes_in_flight_requests_then_stops_listening() {
    let r = start(http_only(serde_json::json!({})), &["logs"]).await;
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    *r.recorder.gate.lock().unwrap() = Some(gate.clone());
    let addr = r.http();
    let in_flight =
        tokio::spawn(
            async move { post(addr, "/v1/logs", PROTO, None, logs(4).encode_to_vec()).await },
        );
    r.recorder.wait_entered(1).await;
    let receiver = r.receiver.clone();
    let stopping = tokio::spawn(async move { receiver.shutdown().await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !stopping.is_finished(),
        "shutdown waits for the open request"
    );
    gate.add_permits(1);
    assert_eq!(in_flight.await.unwrap().status, 200);
    tokio::time::timeout(Duration::from_secs(5), stopping)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.recorder.take()[0].item_count(), 4);
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn a_port_in_use_fails_the_start_with_the_endpoint_named() {
    let first = start(http_only(serde_json::json!({})), &["logs"]).await;
    let taken = first.http().to_string();
    let cfg = weir_receivers::otlp::OtlpReceiverFactory
        .parse_config(
            &serde_json::json!({"protocols": {"http": {"endpoint": taken}}}),
            "receivers.otlp",
        )
        .unwrap();
    let ctx =
        weir_api::BuildContext::for_component(weir_api::ComponentId::parse("otlp/second").unwrap());
    let second = cfg
        .build_receiver(&ctx, weir_api::SignalConsumers::default())
        .unwrap();
    let err = second.start().await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("otlp/second: cannot listen for OTLP/HTTP on {taken}")
    );
    first.receiver.shutdown().await;
}

#[tokio::test]
async fn a_body_that_does_not_arrive_within_read_timeout_is_408() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let r = start(
        http_only(serde_json::json!({"read_timeout": "300ms"})),
        &["logs"],
    )
    .await;
    let mut stream = tokio::net::TcpStream::connect(r.http()).await.unwrap();
    stream
        .write_all(
            b"POST /v1/logs HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-protobuf\r\ncontent-length: 100\r\n\r\n0123456789",
        )
        .await
        .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer))
        .await
        .expect("no answer within 5s")
        .unwrap();
    let text = String::from_utf8_lossy(&answer);
    assert!(
        text.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
        "{text}"
    );
    good_logs_request(&r).await;
    r.receiver.shutdown().await;
}

#[tokio::test]
async fn localhost_listens_on_ipv4_loopback_as_the_collector_does() {
    let r = start(
        serde_json::json!({"protocols": {"http": {"endpoint": "localhost:0"}}}),
        &["logs"],
    )
    .await;
    assert_eq!(r.http().ip(), std::net::Ipv4Addr::LOCALHOST);
    good_logs_request(&r).await;
    r.receiver.shutdown().await;
}
