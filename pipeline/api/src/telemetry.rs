//! Weir's own metrics, exposed in Prometheus text format by the engine.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter as PromCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge as PromGauge;
use prometheus_client::registry::Registry;

type Labels = Vec<(String, String)>;

/// A monotonically rising count (cheap to clone; clones share the value).
pub type Counter = PromCounter<u64>;
/// A value that goes up and down (cheap to clone; clones share the value).
pub type Gauge = PromGauge<i64>;

#[derive(Default)]
struct Inner {
    registry: Registry,
    counters: HashMap<String, Family<Labels, Counter>>,
    gauges: HashMap<String, Family<Labels, Gauge>>,
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
        let c = family.get_or_create(&labels(l)).clone();
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
        let g = family.get_or_create(&labels(l)).clone();
        g
    }

    /// All metrics in the Prometheus text exposition format.
    pub fn encode(&self) -> String {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &inner.registry);
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
