//! The `filter` processor: drops logs, spans, span events, metrics and data points that
//! match OTTL conditions, accepting the collector's config as users already have it.
//!
//! ```yaml
//! processors:
//!   filter/noise:
//!     error_mode: ignore
//!     log_conditions:
//!       - 'IsMatch(log.body, ".*healthcheck.*")'
//!       - 'log.severity_number < SEVERITY_NUMBER_INFO'
//!     trace_conditions:
//!       - context: span
//!         conditions:
//!           - 'attributes["http.route"] == "/ready"'
//!     metrics:                      # the nested form is accepted too
//!       datapoint:
//!         - 'metric.name == "queue.size" and value_int == 0'
//! ```
//!
//! Forms accepted: the current `log_conditions` / `trace_conditions` /
//! `metric_conditions` (strings with context prefixes, or `{context, conditions,
//! error_mode}` groups); the nested `logs.log_record`, `logs.resource`, `traces.span`,
//! `traces.spanevent`, `traces.resource`, `metrics.metric`, `metrics.datapoint`,
//! `metrics.resource`; and the legacy `logs.include/exclude`, `spans.include/exclude` and
//! `metrics.include/exclude` (`match_type: strict|regexp`). Not accepted (a validation
//! error, never ignored): `profiles`, `match_type: expr`, OTTL beyond the subset described
//! in [`crate::ottl`].
//!
//! Drop semantics follow the collector: any true condition drops the item; a resource or
//! scope condition drops everything under it; a span event condition drops only the event;
//! a metric whose data points are all dropped is dropped; a container emptied by the
//! filter is removed. Errors: with `error_mode: propagate` (default) a failing condition
//! makes the processor fail for the batch, which Weir passes on unfiltered (fail open)
//! and counts in `weir_processor_failures_total`; `ignore` and `silent` count the failing
//! condition as false.
//!
//! The conditions run on this crate's own OTTL evaluator. Conditions that are plain
//! attribute/field equality, regex or existence tests could later be compiled onto the
//! policy engine's matcher (and its multi-pattern prefilter); the evaluator stays the
//! reference for everything else.

mod apply;
pub mod config;
pub mod legacy;

use std::sync::Arc;

use weir_api::{
    Batch, BuildContext, BuildError, ConfigErrors, Consumer, Payload, ProcessError, Processor,
    ProcessorConfig, ProcessorFactory, Signal, SignalSet, Stage,
};

pub use apply::IgnoredErrors;
pub use config::{ErrorMode, FilterConfig, FilterPlan};

/// Factory of the `filter` processor type.
pub struct FilterFactory;

impl ProcessorFactory for FilterFactory {
    fn signals(&self) -> SignalSet {
        SignalSet::ALL
    }

    fn parse(
        &self,
        config: &serde_json::Value,
        path: &str,
    ) -> Result<Box<dyn ProcessorConfig>, ConfigErrors> {
        let plan = FilterConfig::parse(config, path)?;
        Ok(Box::new(FilterProcessorConfig {
            plan: Arc::new(plan),
        }))
    }
}

struct FilterProcessorConfig {
    plan: Arc<FilterPlan>,
}

impl ProcessorConfig for FilterProcessorConfig {
    fn build(
        &self,
        ctx: &BuildContext,
        signal: Signal,
        next: Arc<dyn Consumer>,
    ) -> Result<Arc<dyn Stage>, BuildError> {
        let processor = Arc::new(FilterProcessor::new(self.plan.clone()));
        Ok(crate::stage::guarded(ctx, signal, processor, next))
    }
}

/// The running `filter` processor.
pub struct FilterProcessor {
    plan: Arc<FilterPlan>,
    ignored: IgnoredErrors,
}

impl FilterProcessor {
    /// A processor applying `plan`.
    pub fn new(plan: Arc<FilterPlan>) -> Self {
        FilterProcessor {
            plan,
            ignored: IgnoredErrors::default(),
        }
    }

    /// Parses `config` (as found at YAML `path`) into a processor; for tests and tools.
    pub fn from_config(config: &serde_json::Value, path: &str) -> Result<Self, ConfigErrors> {
        Ok(Self::new(Arc::new(FilterConfig::parse(config, path)?)))
    }
}

impl Processor for FilterProcessor {
    fn process(&self, batch: &mut Batch) -> Result<(), ProcessError> {
        let plan = &self.plan;
        match batch.payload() {
            Payload::Logs(req) => {
                let apply = apply::filter_logs(&plan.logs, req, &self.ignored)
                    .map_err(ProcessError::new)?;
                // Only a real drop touches the payload, so unchanged batches keep their bytes.
                if let Some(apply) = apply {
                    if let Payload::Logs(req) = batch.payload_mut() {
                        apply(req);
                    }
                }
            }
            Payload::Traces(req) => {
                let apply = apply::filter_traces(&plan.traces, req, &self.ignored)
                    .map_err(ProcessError::new)?;
                // Only a real drop touches the payload, so unchanged batches keep their bytes.
                if let Some(apply) = apply {
                    if let Payload::Traces(req) = batch.payload_mut() {
                        apply(req);
                    }
                }
            }
            Payload::Metrics(req) => {
                let apply = apply::filter_metrics(&plan.metrics, req, &self.ignored)
                    .map_err(ProcessError::new)?;
                // Only a real drop touches the payload, so unchanged batches keep their bytes.
                if let Some(apply) = apply {
                    if let Payload::Metrics(req) = batch.payload_mut() {
                        apply(req);
                    }
                }
            }
        }
        Ok(())
    }
}
