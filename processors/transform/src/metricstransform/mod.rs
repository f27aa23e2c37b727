//! The `metricstransform` processor: renames metrics, copies them under a new name, and
//! edits their labels and values, configured as the Collector's `transforms:` list.
//!
//! ```yaml
//! processors:
//!   metricstransform:
//!     transforms:
//!       - include: ^system\.cpu\.(.*)$
//!         match_type: regexp
//!         action: update
//!         new_name: cpu.$1
//!         operations:
//!           - {action: add_label, new_label: source, new_value: host}
//!           - {action: aggregate_labels, label_set: [state], aggregation_type: sum}
//! ```
//!
//! Actions `update`, `insert`, `group` and `combine` (gauge and sum metrics); operations
//! `add_label`, `update_label`, `delete_label_value`, `toggle_scalar_data_type`,
//! `scale_value`, `aggregate_labels`, `aggregate_label_values` (the last two on gauge and sum
//! points).

mod combine;
mod config;
mod operations;

use std::sync::Arc;

use regex::Regex;
use weir_api::otlp::common::v1::KeyValue;
use weir_api::otlp::metrics::v1::{ResourceMetrics, ScopeMetrics};
use weir_api::{
    Batch, BuildContext, BuildError, ConfigErrors, Consumer, Payload, ProcessError, Processor,
    ProcessorConfig, ProcessorFactory, Signal, SignalSet, Stage,
};

pub use config::{parse, MetricsTransformConfig, OperationConfig, TransformEntry, ValueAction};
use operations::str_any;
pub use operations::{apply, Grouped};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Agg {
    Sum,
    Mean,
    Min,
    Max,
}

#[derive(Debug)]
enum Op {
    AddLabel(String, String),
    UpdateLabel(String, Option<String>, Vec<(String, String)>),
    DeleteLabelValue(String, String),
    Toggle,
    Scale(f64),
    AggregateLabels(Vec<String>, Agg),
    AggregateLabelValues(String, Vec<String>, String, Agg),
}

#[derive(Debug)]
enum NameMatch {
    Strict(String),
    Regexp(Regex),
}

#[derive(Debug)]
enum LabelMatch {
    Strict(String),
    Regexp(Regex),
}

/// How `combine` merges points (the Collector's aggregateutil types; `Keep` when unset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Merge {
    Keep,
    Sum,
    Mean,
    Min,
    Max,
    Count,
    Median,
}

/// One validated transform.
#[derive(Debug)]
pub struct Transform {
    name: NameMatch,
    labels: Vec<(String, LabelMatch)>,
    insert: bool,
    /// `Some` for action combine.
    combine: Option<Merge>,
    /// `Some` for action group: the resource labels of the new resource.
    group: Option<Vec<(String, String)>>,
    new_name: String,
    upper: Option<bool>,
    ops: Vec<Op>,
}

/// Factory of the `metricstransform` processor type (metrics only, as in the Collector).
pub struct MetricsTransformFactory;

impl ProcessorFactory for MetricsTransformFactory {
    fn signals(&self) -> SignalSet {
        SignalSet::of(&[Signal::Metrics])
    }

    fn parse(
        &self,
        config: &serde_json::Value,
        path: &str,
    ) -> Result<Box<dyn ProcessorConfig>, ConfigErrors> {
        Ok(Box::new(MtConfig {
            processor: Arc::new(MetricsTransformProcessor {
                transforms: parse(config, path)?,
            }),
        }))
    }
}

struct MtConfig {
    processor: Arc<MetricsTransformProcessor>,
}

impl ProcessorConfig for MtConfig {
    fn build(
        &self,
        ctx: &BuildContext,
        signal: Signal,
        next: Arc<dyn Consumer>,
    ) -> Result<Arc<dyn Stage>, BuildError> {
        Ok(crate::stage::guarded(
            ctx,
            signal,
            self.processor.clone(),
            next,
        ))
    }
}

/// The running `metricstransform` processor.
pub struct MetricsTransformProcessor {
    transforms: Vec<Transform>,
}

impl MetricsTransformProcessor {
    /// Parses `config` (as found at YAML `path`); for tests and tools.
    pub fn from_config(config: &serde_json::Value, path: &str) -> Result<Self, ConfigErrors> {
        Ok(MetricsTransformProcessor {
            transforms: parse(config, path)?,
        })
    }
}

impl Processor for MetricsTransformProcessor {
    fn process(&self, batch: &mut Batch) -> Result<(), ProcessError> {
        if let Payload::Metrics(req) = batch.payload_mut() {
            let mut new_resources = Vec::new();
            for rm in &mut req.resource_metrics {
                for sm in &mut rm.scope_metrics {
                    for (labels, metrics) in apply(&self.transforms, &mut sm.metrics) {
                        // A copy of the resource with the labels, and of the scope.
                        let mut resource = rm.resource.clone().unwrap_or_default();
                        for (k, v) in labels {
                            match resource.attributes.iter_mut().find(|kv| kv.key == k) {
                                Some(kv) => kv.value = Some(str_any(&v)),
                                None => resource.attributes.push(KeyValue {
                                    key: k,
                                    value: Some(str_any(&v)),
                                    ..Default::default()
                                }),
                            }
                        }
                        new_resources.push(ResourceMetrics {
                            resource: Some(resource),
                            scope_metrics: vec![ScopeMetrics {
                                scope: sm.scope.clone(),
                                metrics,
                                ..Default::default()
                            }],
                            ..Default::default()
                        });
                    }
                }
                // As in the Collector: a scope left without metrics goes, then a resource
                // left without scopes.
                rm.scope_metrics.retain(|sm| !sm.metrics.is_empty());
            }
            req.resource_metrics
                .retain(|rm| !rm.scope_metrics.is_empty());
            req.resource_metrics.extend(new_resources);
        }
        Ok(())
    }
}
