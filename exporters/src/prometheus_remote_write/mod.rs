//! `prometheusremotewrite`: sends metrics to a Prometheus remote-write endpoint (a
//! protobuf `WriteRequest`, snappy-compressed, remote-write 1.0), with the Collector's
//! config fields, defaults and naming (see [`crate::prom_naming`]).
//!
//! ```yaml
//! exporters:
//!   prometheusremotewrite:
//!     endpoint: http://prometheus:9090/api/v1/write    # required
//!     headers: { X-Scope-OrgID: acme }
//!     namespace: shop
//!     external_labels: { cluster: eu-1 }           # added unless a series has the label
//!     resource_to_telemetry_conversion: { enabled: false }
//!     add_metric_suffixes: true
//!     send_metadata: false                         # also send type/help/unit metadata
//!     target_info: { enabled: true }
//!     max_batch_size_bytes: 3000000                # split bigger requests
//!     remote_write_queue: { enabled: true, queue_size: 10000, num_consumers: 5 }
//!     retry_on_failure: { enabled: true, initial_interval: 50ms, max_interval: 200ms, max_elapsed_time: 1m }
//!     timeout: 5s
//!     tls: { ca_file: ca.pem }                     # for https:// endpoints
//! ```
//!
//! Each batch becomes one or more `WriteRequest`s (split at `max_batch_size_bytes`, a
//! series never split across two); `num_consumers` of them are sent at once. Batches
//! leave the queue one at a time, in order, so a series' samples reach the server in time
//! order. 5xx and 429 answers (waiting at least as long as `Retry-After` asks), timeouts
//! and connection failures are retried; any other 4xx is permanent (the batch is dropped,
//! logged and counted). As in the Collector, delta sums and delta histograms cannot be
//! written (they are dropped with a warning), exponential histograms are not supported
//! (dropped with a warning), and a point flagged "no recorded value" is written as
//! Prometheus's stale marker.

mod config;
#[cfg(test)]
mod tests;
mod translate;

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use http::header::{HeaderMap, HeaderValue, CONTENT_ENCODING, CONTENT_TYPE};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use prost::Message;
use weir_api::Batch;

pub use config::{
    RemoteWriteConfig, RemoteWriteFactory, RemoteWriteQueue, RemoteWriteSettings,
    ResourceToTelemetry, TargetInfo,
};
use translate::Translator;
pub use translate::STALE_NAN;

use crate::delivery::{Delivered, Sender};
use crate::SendError;

/// Prometheus's remote-write protobuf messages (`prompb`), the fields remote-write 1.0
/// uses.
pub mod prompb {
    /// One request: series and, optionally, metadata.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct WriteRequest {
        /// The series.
        #[prost(message, repeated, tag = "1")]
        pub timeseries: Vec<TimeSeries>,
        /// Metric metadata (`send_metadata`).
        #[prost(message, repeated, tag = "3")]
        pub metadata: Vec<MetricMetadata>,
    }

    /// A series: its labels (sorted by name, `__name__` included) and samples in time order.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TimeSeries {
        /// Labels.
        #[prost(message, repeated, tag = "1")]
        pub labels: Vec<Label>,
        /// Samples.
        #[prost(message, repeated, tag = "2")]
        pub samples: Vec<Sample>,
    }

    /// A label.
    #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Message)]
    pub struct Label {
        /// Name.
        #[prost(string, tag = "1")]
        pub name: String,
        /// Value.
        #[prost(string, tag = "2")]
        pub value: String,
    }

    /// A sample.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Sample {
        /// Value.
        #[prost(double, tag = "1")]
        pub value: f64,
        /// Milliseconds since the epoch.
        #[prost(int64, tag = "2")]
        pub timestamp: i64,
    }

    /// Metadata of one metric family.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct MetricMetadata {
        /// 1 counter, 2 gauge, 3 histogram, 5 summary, 6 info.
        #[prost(int32, tag = "1")]
        pub r#type: i32,
        /// The family name.
        #[prost(string, tag = "2")]
        pub metric_family_name: String,
        /// Help text.
        #[prost(string, tag = "4")]
        pub help: String,
        /// Unit.
        #[prost(string, tag = "5")]
        pub unit: String,
    }
}

/// Sends the requests of one batch, `concurrency` at a time.
struct RemoteWriteSender {
    client: Client<weir_tls::hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
    uri: http::Uri,
    headers: HeaderMap,
    timeout: Duration,
    concurrency: usize,
    translator: Translator,
    exporter: String,
}

/// Largest response body read.
const MAX_RESPONSE_BYTES: usize = 64 << 10;

impl RemoteWriteSender {
    async fn post(&self, body: Bytes) -> Result<(), SendError> {
        let url = self.uri.to_string();
        let mut request = http::Request::post(self.uri.clone())
            .body(Full::new(body))
            .map_err(|e| SendError::Request {
                endpoint: url.clone(),
                reason: "invalid request".into(),
                source: Some(Box::new(e)),
            })?;
        let h = request.headers_mut();
        h.extend(self.headers.clone());
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-protobuf"),
        );
        h.insert(CONTENT_ENCODING, HeaderValue::from_static("snappy"));
        h.insert(
            "X-Prometheus-Remote-Write-Version",
            HeaderValue::from_static("0.1.0"),
        );
        h.entry(http::header::USER_AGENT)
            .or_insert(HeaderValue::from_static(concat!(
                "weir/",
                env!("CARGO_PKG_VERSION")
            )));
        let attempt = async {
            let response =
                self.client
                    .request(request)
                    .await
                    .map_err(|e| SendError::Transport {
                        endpoint: url.clone(),
                        source: Box::new(e),
                    })?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, MAX_RESPONSE_BYTES)
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            Ok::<_, SendError>((parts, body))
        };
        let (parts, body) = tokio::time::timeout(self.timeout, attempt)
            .await
            .map_err(|_| SendError::Timeout {
                endpoint: url.clone(),
                timeout: self.timeout,
            })??;
        if parts.status.is_success() {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&body);
        let text = text.trim();
        let message = match text.char_indices().nth(300) {
            Some((cut, _)) => format!("{}...", &text[..cut]),
            None => text.to_string(),
        };
        Err(SendError::RemoteWriteStatus {
            url,
            status: parts.status.as_u16(),
            message,
            retry_after: parts
                .headers
                .get(http::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| crate::otlp_http::parse_retry_after(v, SystemTime::now())),
        })
    }
}

#[async_trait]
impl Sender for RemoteWriteSender {
    async fn send(&self, batch: &Batch) -> Result<Delivered, SendError> {
        let (requests, dropped) = self.translator.requests(batch);
        let mut bodies = Vec::with_capacity(requests.len());
        for r in &requests {
            let raw = r.encode_to_vec();
            let z =
                snap::raw::Encoder::new()
                    .compress_vec(&raw)
                    .map_err(|e| SendError::Request {
                        endpoint: self.uri.to_string(),
                        reason: "snappy compression failed".into(),
                        source: Some(Box::new(e)),
                    })?;
            bodies.push(Bytes::from(z));
        }
        for chunk in bodies.chunks(self.concurrency.max(1)) {
            let results =
                futures::future::join_all(chunk.iter().map(|b| self.post(b.clone()))).await;
            // The first failure decides: a retry sends the whole batch again, which the
            // server takes as duplicates of what it already has.
            for r in results {
                r?;
            }
        }
        Ok(Delivered {
            rejected_items: dropped,
            message: if dropped > 0 {
                format!(
                    "{}: {dropped} points cannot be written as Prometheus series (see the warnings)",
                    self.exporter
                )
            } else {
                String::new()
            },
        })
    }
}
