//! `prometheus`: serves the latest value of every metric series on a pull endpoint
//! (`GET /metrics`) for a Prometheus server to scrape, with the Collector's config fields,
//! defaults and naming (see [`crate::prom_naming`]).
//!
//! ```yaml
//! exporters:
//!   prometheus:
//!     endpoint: 0.0.0.0:8889           # required; served path /metrics
//!     namespace: shop                  # prefix of every name; default none
//!     const_labels: { region: eu }     # added to every series; default none
//!     send_timestamps: false           # write each point's timestamp; default false
//!     metric_expiration: 5m            # series not updated for this long go; default 5m
//!     resource_to_telemetry_conversion: { enabled: false }  # resource attributes as labels
//!     enable_open_metrics: false       # answer OpenMetrics when the scraper asks; default false
//!     add_metric_suffixes: true        # unit, _total and _ratio suffixes; default true
//!     translation_strategy: UnderscoreEscapingWithSuffixes  # or ...WithoutSuffixes
//! ```
//!
//! As in the Collector: monotonic sums are counters (delta sums are added up into a
//! cumulative value when each point starts where the last ended), non-monotonic
//! cumulative sums and gauges are gauges, non-monotonic delta sums and sums of unspecified
//! temporality are dropped; histograms (delta ones added up the same way) and summaries are
//! served with their `_bucket`/`_sum`/`_count` and `quantile` series. Every series carries its
//! point's attributes, `otel_scope_name`, `otel_scope_version`, `job`
//! (`service.namespace/service.name`) and `instance` (`service.instance.id`); a resource
//! with both a job and an instance also gets a `target_info` series (value 1) labelled with
//! its other attributes. A point older than the one held is ignored; a point flagged "no
//! recorded value" removes its series. A name reused with another type is dropped, with a
//! warning. Exponential histograms are not served (dropped with a warning).

mod accumulate;
mod config;
mod exposition;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::task::JoinHandle;
use weir_api::{
    Batch, Component, ComponentId, ConsumeError, Consumer, Counter, Payload, StartError,
};

pub use config::{PrometheusConfig, PrometheusFactory, PrometheusSettings, ResourceToTelemetry};

struct Options {
    namespace: String,
    add_suffixes: bool,
    const_labels: Vec<(String, String)>,
    resource_labels: bool,
    send_timestamps: bool,
    expiration: Duration,
    open_metrics: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
    Summary,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
            Kind::Summary => "summary",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Value {
    Number(f64),
    Histogram {
        count: u64,
        sum: f64,
        /// Upper bounds, as sent.
        bounds: Vec<f64>,
        /// Per-bucket (not cumulative) counts; one more than `bounds`.
        counts: Vec<u64>,
    },
    Summary {
        count: u64,
        sum: f64,
        quantiles: Vec<(f64, f64)>,
    },
}

/// Label pairs.
type Labels = Vec<(String, String)>;

struct Series {
    family: String,
    /// Sorted by name, empty values left out.
    labels: Vec<(String, String)>,
    value: Value,
    start_ns: u64,
    time_ns: u64,
    updated: Instant,
    /// `target_info` labels of the series' resource (it has a job and an instance).
    target: Option<Arc<Vec<(String, String)>>>,
}

struct Family {
    kind: Kind,
    help: String,
    seen: Instant,
}

#[derive(Default)]
struct Inner {
    series: HashMap<String, Series>,
    families: HashMap<String, Family>,
    /// Metric names already warned about (bounded), so a steady stream of one bad metric
    /// logs once.
    warned: HashSet<String>,
}

struct State {
    options: Options,
    inner: Mutex<Inner>,
}

/// Why a point was not taken.
enum Skip {
    /// Older than the point held, or no change: not an error.
    Stale,
    /// Dropped, with the reason.
    Dropped(String),
}

/// The running `prometheus` exporter.
pub struct PrometheusExporter {
    id: ComponentId,
    address: String,
    state: Arc<State>,
    server: Mutex<Option<JoinHandle<()>>>,
    accepted: Counter,
    dropped: Counter,
}

impl PrometheusExporter {
    /// The exposition as a scrape would get it (text format 0.0.4).
    pub fn render_text(&self) -> String {
        self.state.render(false)
    }
}

#[async_trait]
impl Consumer for PrometheusExporter {
    async fn consume(&self, batch: Batch) -> Result<(), ConsumeError> {
        let Payload::Metrics(req) = batch.payload() else {
            return Ok(());
        };
        let (taken, dropped) = self.state.accumulate(&req.resource_metrics);
        self.accepted.inc_by(taken);
        self.dropped.inc_by(dropped);
        Ok(())
    }
}

const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

const OPEN_METRICS_FORMAT: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

fn respond(state: &State, req: &http::Request<Incoming>) -> http::Response<Full<Bytes>> {
    let plain = |status: http::StatusCode, text: &str| {
        let mut r = http::Response::new(Full::new(Bytes::from(text.to_string())));
        *r.status_mut() = status;
        r
    };
    if req.uri().path() != "/metrics" {
        return plain(http::StatusCode::NOT_FOUND, "404 page not found\n");
    }
    if req.method() != http::Method::GET && req.method() != http::Method::HEAD {
        return plain(http::StatusCode::METHOD_NOT_ALLOWED, "GET /metrics\n");
    }
    let header = |name: http::header::HeaderName| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let open_metrics = state.options.open_metrics
        && header(http::header::ACCEPT).contains("application/openmetrics-text");
    let body = state.render(open_metrics);
    let gzip = header(http::header::ACCEPT_ENCODING)
        .split(',')
        .any(|e| e.split(';').next().map(str::trim) == Some("gzip"));
    let (body, encoding) = if gzip {
        let mut enc = flate2::write::GzEncoder::new(
            Vec::with_capacity(body.len() / 4),
            flate2::Compression::fast(),
        );
        match enc.write_all(body.as_bytes()).and_then(|_| enc.finish()) {
            Ok(z) => (Bytes::from(z), Some("gzip")),
            Err(_) => (Bytes::from(body), None),
        }
    } else {
        (Bytes::from(body), None)
    };
    let mut r = http::Response::new(Full::new(body));
    let h = r.headers_mut();
    h.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(if open_metrics {
            OPEN_METRICS_FORMAT
        } else {
            TEXT_FORMAT
        }),
    );
    if let Some(e) = encoding {
        h.insert(
            http::header::CONTENT_ENCODING,
            http::HeaderValue::from_static(e),
        );
    }
    r
}

#[async_trait]
impl Component for PrometheusExporter {
    async fn start(&self) -> Result<(), StartError> {
        let listener = tokio::net::TcpListener::bind(&self.address)
            .await
            .map_err(|e| {
                StartError::new(&self.id, format!("cannot listen on {}", self.address), e)
            })?;
        let state = self.state.clone();
        let id = self.id.clone();
        let task = tokio::spawn(async move {
            loop {
                let (stream, _) = match listener.accept().await {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(exporter = %id, error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let state = state.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req: http::Request<Incoming>| {
                        let r = respond(&state, &req);
                        async move { Ok::<_, Infallible>(r) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .header_read_timeout(Duration::from_secs(10))
                        .timer(hyper_util::rt::TokioTimer::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        *self.server.lock().unwrap_or_else(|e| e.into_inner()) = Some(task);
        tracing::info!(exporter = %self.id, address = %self.address, "serving /metrics");
        Ok(())
    }

    async fn shutdown(&self) {
        if let Some(task) = self.server.lock().unwrap_or_else(|e| e.into_inner()).take() {
            task.abort();
        }
    }
}
