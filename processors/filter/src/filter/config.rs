//! The `filter` processor's config, in every form the collector accepts, and its
//! validation into a [`FilterPlan`].

use serde::Deserialize;
use weir_api::{parse_component_config, ConfigErrors};

use super::legacy::{
    parse_match_type, AttributeMatch, IncludeExclude, LibraryMatch, MatchType, Properties,
    PropertiesBuilder,
};
use crate::ottl::{compile_group, Condition, Ctx, PathMode, SignalKind};

/// How a condition that fails while evaluating is handled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ErrorMode {
    /// The processor fails for the batch; Weir then passes the batch on unfiltered (fail
    /// open) and counts the failure. (The collector drops the payload instead.)
    #[default]
    Propagate,
    /// The failing condition counts as false, a warning is logged, the rest are evaluated.
    Ignore,
    /// As `ignore`, without the log line.
    Silent,
}

/// `filter` processor config.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FilterConfig {
    /// What a runtime condition error does: `propagate` (default), `ignore`, `silent`.
    pub error_mode: ErrorMode,
    /// Log conditions with context prefixes, as strings or `{context, conditions,
    /// error_mode}` groups. Default: none.
    pub log_conditions: Option<Vec<serde_json::Value>>,
    /// Span and span event conditions, same forms. Default: none.
    pub trace_conditions: Option<Vec<serde_json::Value>>,
    /// Metric and data point conditions, same forms. Default: none.
    pub metric_conditions: Option<Vec<serde_json::Value>>,
    /// Nested form (`resource`, `log_record`) and legacy `include`/`exclude`. Default: none.
    pub logs: LogsSection,
    /// Nested form (`resource`, `span`, `spanevent`). Default: none.
    pub traces: TracesSection,
    /// Nested form (`resource`, `metric`, `datapoint`) and legacy `include`/`exclude`.
    /// Default: none.
    pub metrics: MetricsSection,
    /// Legacy span `include`/`exclude`. Default: none.
    pub spans: SpansSection,
}

/// `logs:` of the nested and legacy forms.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogsSection {
    /// Keep only matching log records. Default: none.
    pub include: Option<LogMatch>,
    /// Drop matching log records. Default: none.
    pub exclude: Option<LogMatch>,
    /// Resource-context conditions: a match drops the whole resource. Default: none.
    #[serde(deserialize_with = "weir_api::config::expression_list")]
    pub resource: Option<Vec<String>>,
    /// Log-context conditions. Default: none.
    #[serde(deserialize_with = "weir_api::config::expression_list")]
    pub log_record: Option<Vec<String>>,
}

/// `traces:` of the nested form.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TracesSection {
    /// Resource-context conditions. Default: none.
    #[serde(deserialize_with = "weir_api::config::expression_list")]
    pub resource: Option<Vec<String>>,
    /// Span-context conditions. Default: none.
    #[serde(deserialize_with = "weir_api::config::expression_list")]
    pub span: Option<Vec<String>>,
    /// Span-event-context conditions (drop the event, never the span). Default: none.
    #[serde(deserialize_with = "weir_api::config::expression_list")]
    pub spanevent: Option<Vec<String>>,
}

/// `metrics:` of the nested and legacy forms.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSection {
    /// Keep only matching metrics. Default: none.
    pub include: Option<MetricMatch>,
    /// Drop matching metrics. Default: none.
    pub exclude: Option<MetricMatch>,
    /// The collector's regexp cache settings; accepted and ignored (Weir's regexes need
    /// no cache). Default: none.
    pub regexp: Option<RegexpCache>,
    /// Resource-context conditions. Default: none.
    #[serde(deserialize_with = "weir_api::config::expression_list")]
    pub resource: Option<Vec<String>>,
    /// Metric-context conditions. Default: none.
    #[serde(deserialize_with = "weir_api::config::expression_list")]
    pub metric: Option<Vec<String>>,
    /// Data-point-context conditions; a metric left without points is dropped. Default:
    /// none.
    #[serde(deserialize_with = "weir_api::config::expression_list")]
    pub datapoint: Option<Vec<String>>,
}

/// Legacy `spans:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpansSection {
    /// Keep only matching spans. Default: none.
    pub include: Option<SpanMatch>,
    /// Drop matching spans. Default: none.
    pub exclude: Option<SpanMatch>,
}

/// The collector's regexp cache options (no effect here).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegexpCache {
    /// Ignored. Default: false.
    pub cacheenabled: bool,
    /// Ignored. Default: 0.
    pub cachemaxnumentries: u64,
}

/// Legacy log match properties.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogMatch {
    /// `strict` or `regexp`; required unless only `severity_number` is set.
    pub match_type: Option<String>,
    /// All must match the resource's attributes. Default: none.
    pub resource_attributes: Vec<AttributeMatch>,
    /// All must match the record's attributes. Default: none.
    pub record_attributes: Vec<AttributeMatch>,
    /// Any may match the severity text. Default: none.
    #[serde(deserialize_with = "weir_api::config::string_list")]
    pub severity_texts: Vec<String>,
    /// Minimum severity. Default: none.
    pub severity_number: Option<SeverityNumberMatch>,
    /// Any may match the body (as a string). Default: none.
    #[serde(deserialize_with = "weir_api::config::string_list")]
    pub bodies: Vec<String>,
    /// The collector's regexp cache settings (`cacheenabled`, `cachemaxnumentries`);
    /// accepted and ignored (Weir's regexes need no cache). Default: none.
    pub regexp: Option<RegexpCache>,
}

/// `severity_number: {min, match_undefined}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeverityNumberMatch {
    /// Minimum severity: 1-24 or a short name (`INFO`, `warn2`). Required.
    pub min: serde_json::Value,
    /// Whether records without a severity match. Default: false.
    #[serde(default)]
    pub match_undefined: bool,
}

/// Legacy span match properties.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpanMatch {
    /// `strict` or `regexp`. Required.
    pub match_type: Option<String>,
    /// Any may match the resource's `service.name`. Default: none.
    #[serde(deserialize_with = "weir_api::config::string_list")]
    pub services: Vec<String>,
    /// Any may match the span name. Default: none.
    #[serde(deserialize_with = "weir_api::config::string_list")]
    pub span_names: Vec<String>,
    /// Any may equal the span kind (`SPAN_KIND_SERVER` or `Server`). Default: none.
    #[serde(deserialize_with = "weir_api::config::string_list")]
    pub span_kinds: Vec<String>,
    /// All must match the span's attributes. Default: none.
    pub attributes: Vec<AttributeMatch>,
    /// All must match the resource's attributes. Default: none.
    pub resources: Vec<AttributeMatch>,
    /// Any may match the scope name (and version when given). Default: none.
    pub libraries: Vec<LibraryMatch>,
    /// The collector's regexp cache settings (`cacheenabled`, `cachemaxnumentries`);
    /// accepted and ignored (Weir's regexes need no cache). Default: none.
    pub regexp: Option<RegexpCache>,
}

/// Legacy metric match properties.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricMatch {
    /// `strict` or `regexp` (`expr` is rejected). Required.
    pub match_type: Option<String>,
    /// Any may match the metric name. Default: none.
    #[serde(deserialize_with = "weir_api::config::string_list")]
    pub metric_names: Vec<String>,
    /// All must match the resource's attributes. Default: none.
    pub resource_attributes: Vec<AttributeMatch>,
    /// `expr` expressions: rejected (not supported). Default: none.
    pub expressions: Vec<String>,
    /// The collector's regexp cache settings (`cacheenabled`, `cachemaxnumentries`);
    /// accepted and ignored (Weir's regexes need no cache). Default: none.
    pub regexp: Option<RegexpCache>,
}

/// What decides a drop in one step of a plan.
#[derive(Debug)]
pub enum Predicate {
    /// Any condition true drops.
    Conditions(Vec<Condition>),
    /// Legacy include/exclude.
    Legacy(Box<IncludeExclude>),
}

/// One step: a predicate evaluated in one context.
#[derive(Debug)]
pub struct Step {
    pub ctx: Ctx,
    pub predicate: Predicate,
    pub error_mode: ErrorMode,
}

/// The validated config: per signal, the steps applied in order.
#[derive(Debug, Default)]
pub struct FilterPlan {
    pub logs: Vec<Step>,
    pub traces: Vec<Step>,
    pub metrics: Vec<Step>,
}

impl FilterConfig {
    /// Parses and validates the YAML section at `path`, reporting every problem.
    pub fn parse(value: &serde_json::Value, path: &str) -> Result<FilterPlan, ConfigErrors> {
        for key in ["profiles", "profile_conditions"] {
            if value.get(key).is_some() {
                return Err(ConfigErrors::from(weir_api::ConfigError::new(
                    format!("{path}.{key}"),
                    "the profiles signal is not supported by Weir",
                )));
            }
        }
        let cfg: FilterConfig = parse_component_config(value, path)?;
        let mut errors = ConfigErrors::default();
        let plan = cfg.plan(path, &mut errors);
        errors.into_result(plan)
    }

    fn plan(&self, path: &str, errors: &mut ConfigErrors) -> FilterPlan {
        let mut plan = FilterPlan::default();
        let logs_nested = self.logs.resource.is_some() || self.logs.log_record.is_some();
        let logs_legacy = self.logs.include.is_some() || self.logs.exclude.is_some();
        let traces_nested = self.traces.resource.is_some()
            || self.traces.span.is_some()
            || self.traces.spanevent.is_some();
        let spans_legacy = self.spans.include.is_some() || self.spans.exclude.is_some();
        let metrics_nested = self.metrics.resource.is_some()
            || self.metrics.metric.is_some()
            || self.metrics.datapoint.is_some();
        let metrics_legacy = self.metrics.include.is_some() || self.metrics.exclude.is_some();

        // The same exclusions, with the same wording, as the collector's Validate.
        if self.trace_conditions.is_some() && traces_nested {
            errors.push(path, "cannot use context inferred trace conditions \"trace_conditions\" and the settings \"traces.resource\", \"traces.span\", \"traces.spanevent\" at the same time");
        }
        if self.metric_conditions.is_some() && (metrics_nested || metrics_legacy) {
            errors.push(path, "cannot use context inferred metric conditions \"metric_conditions\" and the settings \"metrics.resource\", \"metrics.metric\", \"metrics.datapoint\", \"metrics.include\", \"metrics.exclude\" at the same time");
        }
        if self.log_conditions.is_some() && (logs_nested || logs_legacy) {
            errors.push(path, "cannot use context inferred log conditions \"log_conditions\" and the settings \"logs.resource\", \"logs.log_record\", \"logs.include\", \"logs.exclude\" at the same time");
        }
        if traces_nested && spans_legacy {
            errors.push(path, "cannot use \"traces.resource\", \"traces.span\", \"traces.spanevent\" and the span settings \"spans.include\", \"spans.exclude\" at the same time");
        }
        if metrics_nested && metrics_legacy {
            errors.push(path, "cannot use \"metrics.resource\", \"metrics.metric\", \"metrics.datapoint\" and the settings \"metrics.include\", \"metrics.exclude\" at the same time");
        }
        if logs_nested && logs_legacy {
            errors.push(path, "cannot use \"logs.resource\", \"logs.log_record\" and the settings \"logs.include\", \"logs.exclude\" at the same time");
        }

        let mode = self.error_mode;
        let conds = [
            (&self.log_conditions, SignalKind::Logs, "log_conditions"),
            (
                &self.trace_conditions,
                SignalKind::Traces,
                "trace_conditions",
            ),
            (
                &self.metric_conditions,
                SignalKind::Metrics,
                "metric_conditions",
            ),
        ];
        for (list, signal, key) in conds {
            if let Some(list) = list {
                let steps = inferred_steps(list, signal, mode, &format!("{path}.{key}"), errors);
                signal_steps(&mut plan, signal).extend(steps);
            }
        }

        let nested: [(&Option<Vec<String>>, SignalKind, Ctx, &str); 8] = [
            (
                &self.logs.resource,
                SignalKind::Logs,
                Ctx::Resource,
                "logs.resource",
            ),
            (
                &self.logs.log_record,
                SignalKind::Logs,
                Ctx::Log,
                "logs.log_record",
            ),
            (
                &self.traces.resource,
                SignalKind::Traces,
                Ctx::Resource,
                "traces.resource",
            ),
            (
                &self.traces.span,
                SignalKind::Traces,
                Ctx::Span,
                "traces.span",
            ),
            (
                &self.traces.spanevent,
                SignalKind::Traces,
                Ctx::SpanEvent,
                "traces.spanevent",
            ),
            (
                &self.metrics.resource,
                SignalKind::Metrics,
                Ctx::Resource,
                "metrics.resource",
            ),
            (
                &self.metrics.metric,
                SignalKind::Metrics,
                Ctx::Metric,
                "metrics.metric",
            ),
            (
                &self.metrics.datapoint,
                SignalKind::Metrics,
                Ctx::DataPoint,
                "metrics.datapoint",
            ),
        ];
        for (list, signal, ctx, key) in nested {
            let Some(list) = list else { continue };
            if list.is_empty() {
                continue;
            }
            match compile_group(signal, PathMode::Explicit(ctx), list) {
                Ok(g) => signal_steps(&mut plan, signal).push(Step {
                    ctx,
                    predicate: Predicate::Conditions(g.conditions),
                    error_mode: mode,
                }),
                Err(e) => errors.push(format!("{path}.{key}[{}]", e.index), e.error.to_string()),
            }
        }

        if let Some(step) = self.legacy_logs(path, errors) {
            plan.logs.push(step);
        }
        if let Some(step) = self.legacy_spans(path, errors) {
            plan.traces.push(step);
        }
        if let Some(step) = self.legacy_metrics(path, errors) {
            plan.metrics.push(step);
        }
        plan
    }

    fn legacy_logs(&self, path: &str, errors: &mut ConfigErrors) -> Option<Step> {
        let mut ie = IncludeExclude::default();
        for (which, m) in [
            ("include", &self.logs.include),
            ("exclude", &self.logs.exclude),
        ] {
            let Some(m) = m else { continue };
            let at = format!("{path}.logs.{which}");
            let only_severity = m.resource_attributes.is_empty()
                && m.record_attributes.is_empty()
                && m.severity_texts.is_empty()
                && m.bodies.is_empty();
            if only_severity && m.severity_number.is_none() {
                continue; // empty properties are ignored, as in the collector
            }
            let match_type = if only_severity && m.match_type.is_none() {
                Some(MatchType::Strict)
            } else {
                parse_match_type(m.match_type.as_deref(), &["strict", "regexp"], &at, errors)
            };
            let mut b = PropertiesBuilder {
                match_type,
                path: at,
                errors,
                props: Properties::default(),
            };
            b.resource_attributes(&m.resource_attributes);
            b.record_attributes("record_attributes", &m.record_attributes);
            b.severity_texts(&m.severity_texts);
            b.bodies(&m.bodies);
            if let Some(s) = &m.severity_number {
                b.min_severity(&s.min, s.match_undefined);
            }
            set_side(&mut ie, which, b.props);
        }
        legacy_step(ie, Ctx::Log, self.error_mode)
    }

    fn legacy_spans(&self, path: &str, errors: &mut ConfigErrors) -> Option<Step> {
        let mut ie = IncludeExclude::default();
        for (which, m) in [
            ("include", &self.spans.include),
            ("exclude", &self.spans.exclude),
        ] {
            let Some(m) = m else { continue };
            let at = format!("{path}.spans.{which}");
            if m.services.is_empty()
                && m.span_names.is_empty()
                && m.span_kinds.is_empty()
                && m.attributes.is_empty()
                && m.resources.is_empty()
                && m.libraries.is_empty()
            {
                errors.push(&at, "at least one of \"services\", \"span_names\", \"span_kinds\", \"attributes\", \"resources\" or \"libraries\" must be specified");
                continue;
            }
            let match_type =
                parse_match_type(m.match_type.as_deref(), &["strict", "regexp"], &at, errors);
            let mut b = PropertiesBuilder {
                match_type,
                path: at,
                errors,
                props: Properties::default(),
            };
            b.services(&m.services);
            b.span_names(&m.span_names);
            b.span_kinds(&m.span_kinds);
            b.record_attributes("attributes", &m.attributes);
            b.resources(&m.resources);
            b.libraries(&m.libraries);
            set_side(&mut ie, which, b.props);
        }
        legacy_step(ie, Ctx::Span, self.error_mode)
    }

    fn legacy_metrics(&self, path: &str, errors: &mut ConfigErrors) -> Option<Step> {
        let mut ie = IncludeExclude::default();
        for (which, m) in [
            ("include", &self.metrics.include),
            ("exclude", &self.metrics.exclude),
        ] {
            let Some(m) = m else { continue };
            let at = format!("{path}.metrics.{which}");
            let match_type = parse_match_type(
                m.match_type.as_deref(),
                &["strict", "regexp", "expr"],
                &at,
                errors,
            );
            if !m.expressions.is_empty() && match_type.is_some() {
                errors.push(format!("{at}.expressions"), "expressions are only read with match_type \"expr\", which is not supported; write them as metric_conditions");
            }
            let mut b = PropertiesBuilder {
                match_type,
                path: at,
                errors,
                props: Properties::default(),
            };
            b.metric_names(&m.metric_names);
            b.resource_attributes(&m.resource_attributes);
            set_side(&mut ie, which, b.props);
        }
        legacy_step(ie, Ctx::Metric, self.error_mode)
    }
}

fn set_side(ie: &mut IncludeExclude, which: &str, props: Properties) {
    if which == "include" {
        ie.include = Some(props);
    } else {
        ie.exclude = Some(props);
    }
}

fn legacy_step(ie: IncludeExclude, ctx: Ctx, error_mode: ErrorMode) -> Option<Step> {
    (ie.include.is_some() || ie.exclude.is_some()).then_some(Step {
        ctx,
        predicate: Predicate::Legacy(Box::new(ie)),
        error_mode,
    })
}

fn signal_steps(plan: &mut FilterPlan, signal: SignalKind) -> &mut Vec<Step> {
    match signal {
        SignalKind::Logs => &mut plan.logs,
        SignalKind::Traces => &mut plan.traces,
        SignalKind::Metrics => &mut plan.metrics,
    }
}

/// `*_conditions`: either all strings (one group, context inferred) or all
/// `{context, conditions, error_mode}` objects (one group each).
fn inferred_steps(
    list: &[serde_json::Value],
    signal: SignalKind,
    default_mode: ErrorMode,
    path: &str,
    errors: &mut ConfigErrors,
) -> Vec<Step> {
    let mut steps = Vec::new();
    if list.is_empty() {
        return steps;
    }
    let strings = list.iter().filter(|v| v.is_string()).count();
    if strings != 0 && strings != list.len() {
        errors.push(path, "configuring multiple configuration styles is not supported, please use only Basic configuration (a list of strings) or only Advanced configuration (a list of {context, conditions})");
        return steps;
    }
    if strings == list.len() {
        let sources: Vec<String> = list
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect();
        match compile_group(signal, PathMode::Inferred, &sources) {
            Ok(g) => steps.push(Step {
                ctx: g.ctx,
                predicate: Predicate::Conditions(g.conditions),
                error_mode: default_mode,
            }),
            Err(e) => errors.push(format!("{path}[{}]", e.index), e.error.to_string()),
        }
        return steps;
    }
    for (i, v) in list.iter().enumerate() {
        let at = format!("{path}[{i}]");
        let group: ConditionGroup = match parse_component_config(v, &at) {
            Ok(g) => g,
            Err(e) => {
                errors.0.extend(e.0);
                continue;
            }
        };
        let mode = match group.context.as_deref().map(str::to_ascii_lowercase) {
            None => PathMode::Inferred,
            Some(c) => match Ctx::parse(&c) {
                Some(ctx) => PathMode::Explicit(ctx),
                None => {
                    let names: Vec<&str> = signal.contexts().iter().map(|c| c.name()).collect();
                    errors.push(
                        format!("{at}.context"),
                        crate::ottl::with_hint(
                            format!("unknown context {c:?} (valid: {})", names.join(", ")),
                            &c,
                            names.iter().copied(),
                        ),
                    );
                    continue;
                }
            },
        };
        if group.conditions.is_empty() {
            errors.push(
                format!("{at}.conditions"),
                "at least one condition is required",
            );
            continue;
        }
        match compile_group(signal, mode, &group.conditions) {
            Ok(g) => steps.push(Step {
                ctx: g.ctx,
                predicate: Predicate::Conditions(g.conditions),
                error_mode: group.error_mode.unwrap_or(default_mode),
            }),
            Err(e) => errors.push(format!("{at}.conditions[{}]", e.index), e.error.to_string()),
        }
    }
    steps
}

/// One `{context, conditions, error_mode}` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConditionGroup {
    /// `resource`, `scope`, `log`, `span`, `spanevent`, `metric` or `datapoint`; absent:
    /// inferred from the path prefixes.
    #[serde(default)]
    context: Option<String>,
    /// OTTL conditions; any true drops. Required.
    #[serde(default)]
    conditions: Vec<String>,
    /// Overrides the processor's `error_mode` for this group. Default: the processor's.
    #[serde(default)]
    error_mode: Option<ErrorMode>,
}
