//! `spanmetrics`: aggregates request, error and duration (R.E.D.) metrics from spans and
//! emits them on a metrics pipeline, with the OpenTelemetry Collector's config and defaults.
//!
//! ```yaml
//! connectors:
//!   spanmetrics:
//!     histogram:
//!       explicit: {buckets: [100us, 1ms, 2ms, 6ms, 10ms, 100ms, 250ms]}
//!     dimensions:
//!       - {name: http.method, default: GET}
//!       - name: http.status_code
//!     exclude_dimensions: ['status.code']
//!     aggregation_temporality: AGGREGATION_TEMPORALITY_CUMULATIVE
//!     metrics_flush_interval: 15s
//! ```
//!
//! Every span of a resource that has `service.name` is counted in `<namespace>.calls` (a
//! monotonic sum) and observed in `<namespace>.duration` (an explicit or exponential
//! histogram in `ms` or `s`), per distinct set of dimensions: `service.name`, `span.name`,
//! `span.kind`, `status.code` (minus `exclude_dimensions`), then each configured dimension
//! found on the span, else on its resource, else its `default` (a dimension with neither is
//! left out). With `events.enabled`, span events are counted in `<namespace>.events`.
//! Series are kept per resource (keyed by all its attributes, or by
//! `resource_metrics_key_attributes`) and emitted every `metrics_flush_interval` (and once at
//! shutdown) in a scope named `spanmetricsconnector`. Cumulative series keep their start time
//! across flushes; delta series are cleared at each flush and the next one starts where the
//! last ended.

mod aggregate;
mod config;
mod plan;
mod series;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_trait::async_trait;
use weir_api::otlp::common::v1::KeyValue;
use weir_api::{
    parse_component_config, Batch, BuildContext, BuildError, Component, ConfigErrors,
    ConnectorConfig, ConnectorFactory, ConsumeError, Consumer, FanOut, Signal, Stage, StartError,
};

pub use config::{
    parse_go_duration, DimensionConfig, EventsConfig, ExemplarsConfig, ExplicitConfig,
    ExponentialConfig, GoDuration, HistogramConfig, SpanMetricsSettings,
};
use plan::{compile, Plan};
use series::{HistState, MetricSeries};

/// The scope of the emitted metrics, as the collector's connector names it.
pub const SCOPE_NAME: &str = "spanmetricsconnector";

/// The default namespace (prefix) of the metric names.
pub const DEFAULT_NAMESPACE: &str = "traces.span.metrics";

/// The default explicit bucket bounds, in milliseconds.
pub const DEFAULT_BUCKETS_MS: [f64; 16] = [
    2.0, 4.0, 6.0, 8.0, 10.0, 50.0, 100.0, 200.0, 400.0, 800.0, 1000.0, 1400.0, 2000.0, 5000.0,
    10_000.0, 15_000.0,
];

/// The default largest number of buckets of an exponential histogram.
pub const DEFAULT_EXPONENTIAL_MAX_SIZE: i64 = 160;

/// The attribute of the series that takes what exceeds `aggregation_cardinality_limit`.
pub const OVERFLOW_KEY: &str = "otel.metric.overflow";

const SERVICE_NAME: &str = "service.name";

const SPAN_NAME: &str = "span.name";

const SPAN_KIND: &str = "span.kind";

const STATUS_CODE: &str = "status.code";

const SCOPE_NAME_KEY: &str = "span.instrumentation.scope.name";

const SCOPE_VERSION_KEY: &str = "span.instrumentation.scope.version";

const RESERVED: [&str; 4] = [SERVICE_NAME, SPAN_KIND, STATUS_CODE, SPAN_NAME];

const DELTA: &str = "AGGREGATION_TEMPORALITY_DELTA";

const CUMULATIVE: &str = "AGGREGATION_TEMPORALITY_CUMULATIVE";

/// The largest scale an exponential histogram starts at (as the Collector's).
const MAX_SCALE: i32 = 20;

/// Factory of the `spanmetrics` connector.
pub struct SpanMetricsFactory;

impl ConnectorFactory for SpanMetricsFactory {
    fn pairs(&self) -> Vec<(Signal, Signal)> {
        vec![(Signal::Traces, Signal::Metrics)]
    }

    fn parse(
        &self,
        config: &serde_json::Value,
        path: &str,
    ) -> Result<Box<dyn ConnectorConfig>, ConfigErrors> {
        let settings: SpanMetricsSettings = parse_component_config(config, path)?;
        let plan = compile(&settings, path)?;
        Ok(Box::new(SpanMetrics {
            plan: Arc::new(plan),
        }))
    }
}

/// A validated `spanmetrics` connector.
pub struct SpanMetrics {
    plan: Arc<Plan>,
}

impl ConnectorConfig for SpanMetrics {
    fn build(
        &self,
        ctx: &BuildContext,
        _from: Signal,
        _to: Signal,
        outputs: Vec<(String, Arc<dyn Consumer>)>,
    ) -> Result<Arc<dyn Stage>, BuildError> {
        Ok(Arc::new(SpanMetricsStage {
            inner: Arc::new(Inner {
                id: ctx.id.to_string(),
                plan: self.plan.clone(),
                state: Mutex::new(State::default()),
                next: FanOut::of(outputs.into_iter().map(|(_, c)| c).collect()),
            }),
            ticker: Mutex::new(None),
        }))
    }
}

/// The running connector.
pub struct SpanMetricsStage {
    inner: Arc<Inner>,
    ticker: Mutex<Option<(tokio::task::JoinHandle<()>, Arc<tokio::sync::Notify>)>>,
}

struct Inner {
    id: String,
    plan: Arc<Plan>,
    state: Mutex<State>,
    next: Arc<dyn Consumer>,
}

/// The series of one resource.
struct ResourceEntry {
    attributes: Vec<KeyValue>,
    calls: MetricSeries<u64>,
    durations: MetricSeries<HistState>,
    events: MetricSeries<u64>,
    last_seen: Instant,
    last_used: u64,
}

#[derive(Default)]
struct State {
    resources: HashMap<Vec<u8>, ResourceEntry>,
    order: Vec<Vec<u8>>,
    tick: u64,
    /// Delta series: the time of their last flush, by metric key (least recently used
    /// dropped beyond the cache size).
    last_delta: HashMap<Vec<u8>, (u64, u64)>,
}

impl SpanMetricsStage {
    /// Emits the current metrics now (as a flush tick does).
    pub async fn flush(&self) {
        self.inner.flush().await;
    }
}

#[async_trait]
impl Consumer for SpanMetricsStage {
    async fn consume(&self, batch: Batch) -> Result<(), ConsumeError> {
        self.inner.aggregate(batch.payload());
        Ok(())
    }
}

#[async_trait]
impl Component for SpanMetricsStage {
    async fn start(&self) -> Result<(), StartError> {
        let inner = self.inner.clone();
        let stop = Arc::new(tokio::sync::Notify::new());
        let stopped = stop.clone();
        let period = inner.plan.flush;
        let task = tokio::spawn(async move {
            let mut interval =
                tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = interval.tick() => inner.flush().await,
                    _ = stopped.notified() => return,
                }
            }
        });
        *self.ticker.lock().unwrap_or_else(|p| p.into_inner()) = Some((task, stop));
        Ok(())
    }

    async fn shutdown(&self) {
        let ticker = self.ticker.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some((task, stop)) = ticker {
            stop.notify_one();
            let _ = task.await;
        }
        // What was aggregated since the last tick is emitted once more on the way out.
        self.inner.flush().await;
    }
}
