//! The `attributes` processor: the Collector's attribute actions on span, log record and
//! metric data point attributes, optionally limited by `include` / `exclude`.
//!
//! ```yaml
//! processors:
//!   attributes/redact:
//!     include:
//!       match_type: regexp
//!       services: ["auth.*"]
//!     actions:
//!       - key: password
//!         action: update
//!         value: obfuscated
//!       - key: user.email
//!         action: hash
//! ```
//!
//! `include`/`exclude` are checked per span or log record (per metric for metrics, on
//! `metric_names` and `resources`). Which match fields a signal accepts is the
//! Collector's rule (no `log_bodies` for spans, no `services` for logs); the config check
//! reports it for each pipeline of that signal the processor is in.

use std::sync::Arc;

use serde::Deserialize;
use weir_api::otlp::metrics::v1::metric::Data;
use weir_api::otlp::metrics::v1::Metric;
use weir_api::{
    parse_component_config, Batch, BatchContext, BuildContext, BuildError, ConfigErrors, Consumer,
    Payload, ProcessError, Processor, ProcessorConfig, ProcessorFactory, Signal, SignalSet, Stage,
};
use weir_filter::filter::legacy::IncludeExclude;
use weir_filter::ottl::{Item, Record};

use crate::attraction::{self, Action};
use crate::matching::{MatchConfig, MatchProperties};

/// `attributes` processor config.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AttributesConfig {
    /// Only items matching these properties are processed. Default: all.
    pub include: Option<MatchProperties>,
    /// Items matching these properties are not processed. Default: none.
    pub exclude: Option<MatchProperties>,
    /// The actions (see [`attraction::ActionConfig`]), applied in order. Required
    /// (non-empty).
    pub actions: Vec<serde_json::Value>,
}

/// The validated config: the actions, and per signal the match predicate or why the
/// include/exclude does not fit that signal.
pub struct AttributesPlan {
    pub actions: Vec<Action>,
    pub logs: Result<IncludeExclude, ConfigErrors>,
    pub traces: Result<IncludeExclude, ConfigErrors>,
    pub metrics: Result<IncludeExclude, ConfigErrors>,
}

impl AttributesPlan {
    /// Parses and validates the section at `path`, reporting every problem.
    pub fn parse(value: &serde_json::Value, path: &str) -> Result<Self, ConfigErrors> {
        let cfg: AttributesConfig = parse_component_config(value, path)?;
        let mut errors = ConfigErrors::default();
        if cfg.actions.is_empty() {
            errors.push(
                format!("{path}.actions"),
                "missing required field \"actions\"",
            );
        }
        let actions = attraction::compile(&cfg.actions, &format!("{path}.actions"), &mut errors);
        let m = MatchConfig {
            include: cfg.include.as_ref(),
            exclude: cfg.exclude.as_ref(),
        };
        // A bad regex or match_type is wrong for every signal: report it now. What only
        // one signal rejects waits for a pipeline of that signal.
        let per: Vec<Result<IncludeExclude, ConfigErrors>> =
            [Signal::Logs, Signal::Traces, Signal::Metrics]
                .iter()
                .map(|s| m.compile(*s, path))
                .collect();
        let common: Vec<_> = match &per[..] {
            [Err(a), Err(b), Err(c)] => {
                a.0.iter()
                    .filter(|e| b.0.contains(e) && c.0.contains(e))
                    .cloned()
                    .collect()
            }
            _ => Vec::new(),
        };
        errors.0.extend(common);
        let mut per = per.into_iter();
        let mut next = || per.next().unwrap_or_else(|| Ok(IncludeExclude::default()));
        let plan = AttributesPlan {
            actions,
            logs: next(),
            traces: next(),
            metrics: next(),
        };
        errors.into_result(plan)
    }
}

/// Factory of the `attributes` processor type.
pub struct AttributesFactory;

impl ProcessorFactory for AttributesFactory {
    fn signals(&self) -> SignalSet {
        SignalSet::ALL
    }

    fn parse(
        &self,
        config: &serde_json::Value,
        path: &str,
    ) -> Result<Box<dyn ProcessorConfig>, ConfigErrors> {
        Ok(Box::new(AttributesProcessorConfig {
            plan: Arc::new(AttributesPlan::parse(config, path)?),
        }))
    }
}

struct AttributesProcessorConfig {
    plan: Arc<AttributesPlan>,
}

impl ProcessorConfig for AttributesProcessorConfig {
    fn build(
        &self,
        ctx: &BuildContext,
        signal: Signal,
        next: Arc<dyn Consumer>,
    ) -> Result<Arc<dyn Stage>, BuildError> {
        if let Err(e) = self.plan.matcher(signal) {
            return Err(BuildError::message(
                &ctx.id,
                format!(
                    "include/exclude do not fit the {} signal: {e}",
                    signal.as_str()
                ),
            ));
        }
        let processor = Arc::new(AttributesProcessor {
            plan: self.plan.clone(),
        });
        Ok(crate::stage::guarded(ctx, signal, processor, next))
    }

    fn signal_problems(&self, signal: Signal) -> Vec<(String, String)> {
        self.problems(signal)
    }
}

impl AttributesProcessorConfig {
    fn problems(&self, signal: Signal) -> Vec<(String, String)> {
        match self.plan.matcher(signal) {
            Ok(_) => Vec::new(),
            Err(e) => {
                e.0.iter()
                    .map(|e| (e.path.clone(), e.message.clone()))
                    .collect()
            }
        }
    }
}

impl AttributesPlan {
    fn matcher(&self, signal: Signal) -> Result<&IncludeExclude, &ConfigErrors> {
        match signal {
            Signal::Logs => self.logs.as_ref(),
            Signal::Traces => self.traces.as_ref(),
            Signal::Metrics => self.metrics.as_ref(),
        }
    }
}

/// The running `attributes` processor.
pub struct AttributesProcessor {
    plan: Arc<AttributesPlan>,
}

impl AttributesProcessor {
    /// Parses `config` (as found at YAML `path`); for tests and tools.
    pub fn from_config(config: &serde_json::Value, path: &str) -> Result<Self, ConfigErrors> {
        Ok(AttributesProcessor {
            plan: Arc::new(AttributesPlan::parse(config, path)?),
        })
    }
}

impl Processor for AttributesProcessor {
    fn process(&self, batch: &mut Batch) -> Result<(), ProcessError> {
        let ctx = batch.context.clone();
        let signal = batch.signal();
        let Ok(ie) = self.plan.matcher(signal) else {
            return Err(ProcessError::new(std::io::Error::other(
                "include/exclude do not fit this signal",
            )));
        };
        let actions = &self.plan.actions;
        match batch.payload_mut() {
            Payload::Logs(req) => {
                for rl in &mut req.resource_logs {
                    let resource = rl.resource.as_ref();
                    for sl in &mut rl.scope_logs {
                        let scope = sl.scope.as_ref();
                        for lr in &mut sl.log_records {
                            let rec = Record {
                                resource,
                                scope,
                                item: Item::Log(lr),
                            };
                            if !ie.skip(&rec) {
                                attraction::apply(actions, &mut lr.attributes, &ctx);
                            }
                        }
                    }
                }
            }
            Payload::Traces(req) => {
                for rs in &mut req.resource_spans {
                    let resource = rs.resource.as_ref();
                    for ss in &mut rs.scope_spans {
                        let scope = ss.scope.as_ref();
                        for span in &mut ss.spans {
                            let rec = Record {
                                resource,
                                scope,
                                item: Item::Span(span),
                            };
                            if !ie.skip(&rec) {
                                attraction::apply(actions, &mut span.attributes, &ctx);
                            }
                        }
                    }
                }
            }
            Payload::Metrics(req) => {
                for rm in &mut req.resource_metrics {
                    let resource = rm.resource.as_ref();
                    for sm in &mut rm.scope_metrics {
                        let scope = sm.scope.as_ref();
                        for m in &mut sm.metrics {
                            let rec = Record {
                                resource,
                                scope,
                                item: Item::Metric(m),
                            };
                            if !ie.skip(&rec) {
                                apply_points(actions, m, &ctx);
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// Applies `actions` to the attributes of every data point of `m`.
pub(crate) fn apply_points(actions: &[Action], m: &mut Metric, ctx: &BatchContext) {
    match &mut m.data {
        Some(Data::Gauge(g)) => g
            .data_points
            .iter_mut()
            .for_each(|p| attraction::apply(actions, &mut p.attributes, ctx)),
        Some(Data::Sum(s)) => s
            .data_points
            .iter_mut()
            .for_each(|p| attraction::apply(actions, &mut p.attributes, ctx)),
        Some(Data::Histogram(h)) => h
            .data_points
            .iter_mut()
            .for_each(|p| attraction::apply(actions, &mut p.attributes, ctx)),
        Some(Data::ExponentialHistogram(h)) => h
            .data_points
            .iter_mut()
            .for_each(|p| attraction::apply(actions, &mut p.attributes, ctx)),
        Some(Data::Summary(s)) => s
            .data_points
            .iter_mut()
            .for_each(|p| attraction::apply(actions, &mut p.attributes, ctx)),
        None => {}
    }
}
