//! `prometheusremotewrite` against a scripted HTTP server on 127.0.0.1: the wire format
//! (snappy-compressed protobuf `WriteRequest`, remote-write headers), retries of 5xx and
//! 429 honouring `Retry-After`, no retry of other 4xx.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{build_exporter, metric, metrics, wait_until};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use prost::Message;
use weir_api::Batch;
use weir_exporters::prometheus_remote_write::prompb::WriteRequest;

type Reply = (u16, Vec<(&'static str, &'static str)>);
/// Status answered, request headers, decoded request, arrival.
type Seen = (u16, http::HeaderMap, WriteRequest, Instant);

#[derive(Clone, Default)]
struct Upstream {
    seen: Arc<Mutex<Vec<Seen>>>,
    replies: Arc<Mutex<VecDeque<Reply>>>,
}

impl Upstream {
    fn statuses(&self) -> Vec<u16> {
        self.seen.lock().unwrap().iter().map(|s| s.0).collect()
    }

    async fn serve(&self) -> (String, tokio::task::JoinHandle<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/api/v1/write", listener.local_addr().unwrap());
        let me = self.clone();
        let task = tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let me = me.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req: http::Request<Incoming>| {
                        let me = me.clone();
                        async move {
                            let (parts, body) = req.into_parts();
                            let wire = body.collect().await.unwrap().to_bytes();
                            let raw = snap::raw::Decoder::new().decompress_vec(&wire).unwrap();
                            let write = WriteRequest::decode(&raw[..]).unwrap();
                            let (status, headers) = me
                                .replies
                                .lock()
                                .unwrap()
                                .pop_front()
                                .unwrap_or((204, vec![]));
                            me.seen.lock().unwrap().push((
                                status,
                                parts.headers,
                                write,
                                Instant::now(),
                            ));
                            let mut r = http::Response::builder().status(status);
                            for (k, v) in headers {
                                r = r.header(k, v);
                            }
                            Ok::<_, Infallible>(r.body(Full::new(Bytes::from("no"))).unwrap())
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        (url, task)
    }
}

const SENT: &str =
    "weir_exporter_sent_items_total{exporter=\"prometheusremotewrite\",signal=\"metrics\"}";
const FAILED: &str =
    "weir_exporter_send_failed_items_total{exporter=\"prometheusremotewrite\",signal=\"metrics\"}";

#[tokio::test]
async fn wire_format_and_retries_of_5xx_and_429_with_retry_after() {
    let upstream = Upstream::default();
    *upstream.replies.lock().unwrap() = vec![
        (500, vec![]),
        (429, vec![("retry-after", "1")]),
        (503, vec![]),
    ]
    .into();
    let (url, server) = upstream.serve().await;
    let (exporter, telemetry) = build_exporter(
        "prometheusremotewrite",
        serde_json::json!({"endpoint": url, "headers": {"X-Scope-OrgID": "acme"}, "target_info": {"enabled": false}}),
    );
    exporter.start().await.unwrap();
    exporter
        .consume(Batch::new(metrics("rw", 3)))
        .await
        .unwrap();
    assert!(wait_until(Duration::from_secs(10), || metric(&telemetry, SENT) == 3.0).await);
    assert_eq!(upstream.statuses(), [500, 429, 503, 204]);
    let seen = upstream.seen.lock().unwrap().clone();
    // The retry after the 429 waited for its Retry-After.
    assert!(
        seen[2].3.duration_since(seen[1].3) >= Duration::from_secs(1),
        "{:?}",
        seen[2].3.duration_since(seen[1].3)
    );
    let (_, headers, write, _) = &seen[3];
    assert_eq!(headers["content-encoding"], "snappy");
    assert_eq!(headers["content-type"], "application/x-protobuf");
    assert_eq!(headers["x-prometheus-remote-write-version"], "0.1.0");
    assert_eq!(headers["x-scope-orgid"], "acme");
    let got: Vec<String> = write
        .timeseries
        .iter()
        .map(|ts| {
            let l: Vec<String> = ts
                .labels
                .iter()
                .map(|l| format!("{}={}", l.name, l.value))
                .collect();
            let s: Vec<String> = ts
                .samples
                .iter()
                .map(|s| format!("{}@{}", s.value, s.timestamp))
                .collect();
            format!("{} {}", l.join(","), s.join(","))
        })
        .collect();
    assert_eq!(
        got,
        [
            "__name__=rw_queue_depth_ratio,job=checkout,queue=q0 0@1700000000000",
            "__name__=rw_queue_depth_ratio,job=checkout,queue=q1 1@1700000000000",
            "__name__=rw_queue_depth_ratio,job=checkout,queue=q2 2@1700000000000",
        ]
    );
    // Every attempt carried the same request.
    assert!(seen.iter().all(|s| s.2 == *write));
    assert_eq!(metric(&telemetry, FAILED), 0.0);
    exporter.shutdown().await;
    server.abort();
}

#[tokio::test]
async fn other_4xx_are_not_retried() {
    let upstream = Upstream::default();
    *upstream.replies.lock().unwrap() = vec![(400, vec![])].into();
    let (url, server) = upstream.serve().await;
    let (exporter, telemetry) = build_exporter(
        "prometheusremotewrite",
        serde_json::json!({"endpoint": url, "target_info": {"enabled": false}}),
    );
    exporter.start().await.unwrap();
    exporter
        .consume(Batch::new(metrics("bad", 2)))
        .await
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || metric(&telemetry, FAILED)
            == 2.0)
        .await
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(upstream.statuses(), [400]);
    assert_eq!(metric(&telemetry, SENT), 0.0);
    exporter.shutdown().await;
    server.abort();
}
