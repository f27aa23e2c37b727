//! Weir's own metrics, exposed in Prometheus text format by the engine.
//!
//! Beside Weir's `weir_*` metrics, [`Telemetry::encode_with`] writes the OpenTelemetry
//! Collector's `otelcol_*` names for the same counts (see `collector`), so dashboards and
//! alert rules built on the Collector's own metrics work unchanged.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter as PromCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge as PromGauge;
use prometheus_client::registry::Registry;

pub(crate) type Labels = Vec<(String, String)>;

pub use crate::telemetry_collector::{process_start, Exposition};

/// A monotonically rising count (cheap to clone; clones share the value).
pub type Counter = PromCounter<u64>;
/// A value that goes up and down (cheap to clone; clones share the value).
pub type Gauge = PromGauge<i64>;

/// A registered series, kept so that its Collector name can be derived at encode time.
#[derive(Clone)]
pub(crate) enum Handle {
    Counter(Counter),
    Gauge(Gauge),
}

#[derive(Default)]
struct Inner {
    registry: Registry,
    counters: HashMap<String, Family<Labels, Counter>>,
    gauges: HashMap<String, Family<Labels, Gauge>>,
    /// Every series handed out: (name, labels, handle), one entry per distinct pair.
    series: Vec<(String, Labels, Handle)>,
    index: HashMap<(String, Labels), usize>,
}

impl Inner {
    fn remember(&mut self, name: &str, labels: &Labels, handle: Handle) {
        let key = (name.to_string(), labels.clone());
        if !self.index.contains_key(&key) {
            self.index.insert(key, self.series.len());
            self.series.push((name.to_string(), labels.clone(), handle));
        }
    }
}

/// The process's metric registry. Components ask it for counters and gauges by name and
/// labels at build time and update them lock-free afterwards.
#[derive(Clone, Default)]
pub struct Telemetry {
    inner: Arc<Mutex<Inner>>,
}

fn labels(l: &[(&str, String)]) -> Labels {
    l.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

impl Telemetry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// The counter `name` (exposed as `name_total`) with these labels, created on first use.
    pub fn counter(&self, name: &str, help: &str, l: &[(&str, String)]) -> Counter {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let family = match inner.counters.get(name) {
            Some(f) => f.clone(),
            None => {
                let f = Family::<Labels, Counter>::default();
                inner.registry.register(name, help, f.clone());
                inner.counters.insert(name.to_string(), f.clone());
                f
            }
        };
        let l = labels(l);
        let c = family.get_or_create(&l).clone();
        inner.remember(name, &l, Handle::Counter(c.clone()));
        c
    }

    /// The gauge `name` with these labels, created on first use.
    pub fn gauge(&self, name: &str, help: &str, l: &[(&str, String)]) -> Gauge {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let family = match inner.gauges.get(name) {
            Some(f) => f.clone(),
            None => {
                let f = Family::<Labels, Gauge>::default();
                inner.registry.register(name, help, f.clone());
                inner.gauges.insert(name.to_string(), f.clone());
                f
            }
        };
        let l = labels(l);
        let g = family.get_or_create(&l).clone();
        inner.remember(name, &l, Handle::Gauge(g.clone()));
        g
    }

    /// All metrics in the OpenMetrics text format, the Collector's names with the default
    /// exposition settings.
    pub fn encode(&self) -> String {
        self.encode_with(&Exposition::default())
    }

    /// The Collector's metrics (`otelcol_*`, with the OTLP units and attributes) as one
    /// OTLP request with `resource`: what a periodic metric reader pushes.
    pub fn collector_otlp(
        &self,
        resource: &[(String, String)],
    ) -> crate::otlp::collector::metrics::v1::ExportMetricsServiceRequest {
        let series = self
            .inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .series
            .clone();
        crate::telemetry_collector::to_otlp(&series, resource)
    }

    /// All metrics in the OpenMetrics text format: Weir's `weir_*` metrics, then the
    /// Collector's `otelcol_*` ones (and `target_info`) shaped by `exposition`.
    pub fn encode_with(&self, exposition: &Exposition) -> String {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &inner.registry);
        let series = inner.series.clone();
        drop(inner);
        let body = out.strip_suffix("# EOF\n").unwrap_or(&out).to_string();
        let mut out = body;
        crate::telemetry_collector::write(&mut out, &series, exposition);
        out.push_str("# EOF\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_share_value_and_encode() {
        let t = Telemetry::new();
        let a = t.counter("weir_x", "help", &[("k", "v".into())]);
        let b = t.counter("weir_x", "help", &[("k", "v".into())]);
        a.inc();
        b.inc_by(2);
        t.gauge("weir_q", "queue", &[]).set(5);
        let s = t.encode();
        assert!(s.contains("weir_x_total{k=\"v\"} 3"), "{s}");
        assert!(s.contains("weir_q 5"), "{s}");
    }
}
