//! The `transform` processor: OTTL statements (`editor(args) where condition`) that change
//! logs, spans, span events, metrics, data points, resources and scopes in place.
//!
//! ```yaml
//! processors:
//!   transform:
//!     error_mode: ignore
//!     log_statements:
//!       - context: log
//!         conditions: ['severity_number >= SEVERITY_NUMBER_WARN']
//!         statements:
//!           - set(attributes["alert"], true)
//!           - replace_pattern(body, "password=\\S+", "password=***")
//!     trace_statements:
//!       - 'set(span.name, ConvertCase(span.name, "lower"))'   # flat form, context inferred
//! ```
//!
//! Statements are compiled by weir-filter's OTTL front end (paths, converters,
//! conditions); the editors are this module's. A statement writes fields of its own
//! context, and of the span (from `spanevent`) or the metric (from `datapoint`);
//! `set(resource.attributes["x"], ...)` goes in a `context: resource` group.

pub mod edit;
pub mod write;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::Deserialize;
use weir_api::otlp::metrics::v1::metric::Data;
use weir_api::otlp::metrics::v1::Metric;
use weir_api::{
    parse_component_config, Batch, BuildContext, BuildError, ConfigErrors, Consumer, Payload,
    ProcessError, Processor, ProcessorConfig, ProcessorFactory, Signal, SignalSet, Stage,
};
use weir_filter::filter::ErrorMode;
use weir_filter::ottl::parser::{parse_condition, parse_statement};
use weir_filter::ottl::{
    infer_statement, Compiler, Condition, Ctx, Item, PathMode, Point, Record, SignalKind,
};

use edit::Statement;
use write::ItemMut;

/// `transform` processor config.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TransformConfig {
    /// What a failing statement does: `propagate` (default), `ignore`, `silent`.
    pub error_mode: ErrorMode,
    /// Span and span event statements: strings (context inferred) or groups.
    pub trace_statements: Vec<serde_json::Value>,
    /// Metric and data point statements.
    pub metric_statements: Vec<serde_json::Value>,
    /// Log statements.
    pub log_statements: Vec<serde_json::Value>,
    /// Rejected: Weir has no profiles signal.
    pub profile_statements: Option<serde_json::Value>,
    /// The Collector's log flattening option; only `false` is accepted.
    pub flatten_data: bool,
}

/// One `{context, conditions, statements, error_mode}` group as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GroupConfig {
    /// `resource`, `scope`, `log`, `span`, `spanevent`, `metric`, `datapoint`; absent:
    /// inferred from the path prefixes.
    pub context: Option<String>,
    /// Only items matching any of these are changed. Default: all.
    #[serde(deserialize_with = "weir_api::config::expression_list")]
    pub conditions: Option<Vec<String>>,
    /// The statements, in order. Required.
    #[serde(deserialize_with = "weir_api::config::expression_list")]
    pub statements: Option<Vec<String>>,
    /// Overrides the processor's `error_mode` for this group.
    pub error_mode: Option<ErrorMode>,
    /// Internal Collector option; accepted, no effect.
    pub shared_cache: bool,
}

/// Statements compiled for one context.
#[derive(Debug)]
pub struct Group {
    pub ctx: Ctx,
    pub conditions: Vec<Condition>,
    pub statements: Vec<Statement>,
    pub error_mode: ErrorMode,
}

/// The validated config.
#[derive(Debug, Default)]
pub struct TransformPlan {
    pub logs: Vec<Group>,
    pub traces: Vec<Group>,
    pub metrics: Vec<Group>,
}

impl TransformPlan {
    /// Parses and validates the section at `path`, reporting every problem of every
    /// statement.
    pub fn parse(value: &serde_json::Value, path: &str) -> Result<Self, ConfigErrors> {
        let cfg: TransformConfig = parse_component_config(value, path)?;
        let mut errors = ConfigErrors::default();
        if cfg.profile_statements.is_some() {
            errors.push(
                format!("{path}.profile_statements"),
                "the profiles signal is not supported by Weir",
            );
        }
        if cfg.flatten_data {
            errors.push(
                format!("{path}.flatten_data"),
                "flatten_data is not supported by Weir",
            );
        }
        let mut plan = TransformPlan::default();
        for (list, signal, key) in [
            (&cfg.log_statements, SignalKind::Logs, "log_statements"),
            (
                &cfg.trace_statements,
                SignalKind::Traces,
                "trace_statements",
            ),
            (
                &cfg.metric_statements,
                SignalKind::Metrics,
                "metric_statements",
            ),
        ] {
            let groups = compile_list(
                list,
                signal,
                cfg.error_mode,
                &format!("{path}.{key}"),
                &mut errors,
            );
            match signal {
                SignalKind::Logs => plan.logs = groups,
                SignalKind::Traces => plan.traces = groups,
                SignalKind::Metrics => plan.metrics = groups,
            }
        }
        errors.into_result(plan)
    }
}

fn compile_list(
    list: &[serde_json::Value],
    signal: SignalKind,
    mode: ErrorMode,
    path: &str,
    errors: &mut ConfigErrors,
) -> Vec<Group> {
    let mut groups = Vec::new();
    for (i, item) in list.iter().enumerate() {
        let at = format!("{path}[{i}]");
        if let Some(text) = item.as_str() {
            // The flat form: one statement, its context inferred from its paths.
            let st = match parse_statement(text) {
                Ok(st) => st,
                Err(e) => {
                    errors.push(at, format!("{e} in statement {text:?}"));
                    continue;
                }
            };
            let ctx = match infer_statement(signal, &st) {
                Ok(c) => c,
                Err(e) => {
                    errors.push(at, format!("{e} in statement {text:?}"));
                    continue;
                }
            };
            let compiler = Compiler::new(ctx, PathMode::Inferred);
            match edit::compile(ctx, &compiler, &st, text) {
                Ok(s) => groups.push(Group {
                    ctx,
                    conditions: Vec::new(),
                    statements: vec![s],
                    error_mode: mode,
                }),
                Err(e) => errors.push(at, format!("{e} in statement {text:?}")),
            }
            continue;
        }
        let g: GroupConfig = match parse_component_config(item, &at) {
            Ok(g) => g,
            Err(e) => {
                errors.0.extend(e.0);
                continue;
            }
        };
        let statements = g.statements.clone().unwrap_or_default();
        if statements.is_empty() {
            errors.push(
                format!("{at}.statements"),
                "at least one statement is required",
            );
            continue;
        }
        let conditions_src = g.conditions.clone().unwrap_or_default();
        // Parse everything first: the context may have to be inferred from all of it.
        let mut parsed = Vec::new();
        for (j, text) in statements.iter().enumerate() {
            match parse_statement(text) {
                Ok(st) => parsed.push((j, text.clone(), st)),
                Err(e) => errors.push(
                    format!("{at}.statements[{j}]"),
                    format!("{e} in statement {text:?}"),
                ),
            }
        }
        let (ctx, mode_paths) = match &g.context {
            Some(name) => match Ctx::parse(&name.to_ascii_lowercase()) {
                Some(c) if signal.contexts().contains(&c) => (c, PathMode::Explicit(c)),
                _ => {
                    let names: Vec<&str> = signal.contexts().iter().map(|c| c.name()).collect();
                    errors.push(
                        format!("{at}.context"),
                        with_hint_names(
                            format!(
                                "unknown context {name:?} for {} (valid: {})",
                                signal.statements_key(),
                                names.join(", ")
                            ),
                            name,
                            &names,
                        ),
                    );
                    continue;
                }
            },
            None => {
                let mut best: Option<Ctx> = None;
                let mut failed = false;
                for (j, text, st) in &parsed {
                    match infer_statement(signal, st) {
                        Ok(c) => {
                            if best.is_none_or(|b| priority(c) < priority(b)) {
                                best = Some(c)
                            }
                        }
                        Err(e) => {
                            failed = true;
                            errors.push(
                                format!("{at}.statements[{j}]"),
                                format!("{e} in statement {text:?}"),
                            );
                        }
                    }
                }
                match best {
                    Some(c) if !failed => (c, PathMode::Inferred),
                    _ => continue,
                }
            }
        };
        let compiler = Compiler::new(ctx, mode_paths);
        let mut compiled = Vec::new();
        for (j, text, st) in &parsed {
            match edit::compile(ctx, &compiler, st, text) {
                Ok(s) => compiled.push(s),
                Err(e) => errors.push(
                    format!("{at}.statements[{j}]"),
                    format!("{e} in statement {text:?}"),
                ),
            }
        }
        let mut conditions = Vec::new();
        for (j, text) in conditions_src.iter().enumerate() {
            match parse_condition(text).and_then(|ast| compiler.condition(&ast, text)) {
                Ok(c) => conditions.push(c),
                Err(e) => errors.push(
                    format!("{at}.conditions[{j}]"),
                    format!("{e} in condition {text:?}"),
                ),
            }
        }
        groups.push(Group {
            ctx,
            conditions,
            statements: compiled,
            error_mode: g.error_mode.unwrap_or(mode),
        });
    }
    groups
}

fn priority(c: Ctx) -> u8 {
    match c {
        Ctx::Log => 0,
        Ctx::DataPoint => 1,
        Ctx::Metric => 2,
        Ctx::SpanEvent => 3,
        Ctx::Span => 4,
        Ctx::Scope => 5,
        Ctx::Resource => 6,
    }
}

fn with_hint_names(msg: String, word: &str, names: &[&str]) -> String {
    weir_filter::ottl::with_hint(msg, word, names.iter().copied())
}

/// Factory of the `transform` processor type.
pub struct TransformFactory;

impl ProcessorFactory for TransformFactory {
    fn signals(&self) -> SignalSet {
        SignalSet::ALL
    }

    fn parse(
        &self,
        config: &serde_json::Value,
        path: &str,
    ) -> Result<Box<dyn ProcessorConfig>, ConfigErrors> {
        Ok(Box::new(TransformProcessorConfig {
            plan: Arc::new(TransformPlan::parse(config, path)?),
        }))
    }
}

struct TransformProcessorConfig {
    plan: Arc<TransformPlan>,
}

impl ProcessorConfig for TransformProcessorConfig {
    fn build(
        &self,
        ctx: &BuildContext,
        signal: Signal,
        next: Arc<dyn Consumer>,
    ) -> Result<Arc<dyn Stage>, BuildError> {
        let processor = Arc::new(TransformProcessor {
            plan: self.plan.clone(),
            ignored: AtomicU64::new(0),
        });
        Ok(crate::stage::guarded(ctx, signal, processor, next))
    }
}

/// The running `transform` processor.
pub struct TransformProcessor {
    plan: Arc<TransformPlan>,
    ignored: AtomicU64,
}

impl TransformProcessor {
    /// Parses `config` (as found at YAML `path`); for tests and tools.
    pub fn from_config(config: &serde_json::Value, path: &str) -> Result<Self, ConfigErrors> {
        Ok(TransformProcessor {
            plan: Arc::new(TransformPlan::parse(config, path)?),
            ignored: AtomicU64::new(0),
        })
    }

    /// Handles a failed statement under `mode`: `Err` stops the batch (propagate).
    fn failed(&self, mode: ErrorMode, st: &Statement, message: String) -> Result<(), String> {
        match mode {
            ErrorMode::Propagate => Err(format!("statement {:?} failed: {message}", st.text)),
            ErrorMode::Ignore => {
                let n = self.ignored.fetch_add(1, Ordering::Relaxed);
                if n.is_multiple_of(1000) {
                    tracing::warn!(statement = %st.text, error = %message, ignored_so_far = n + 1, "transform statement failed; skipped (error_mode: ignore)");
                }
                Ok(())
            }
            ErrorMode::Silent => Ok(()),
        }
    }
}

/// Runs a group on one item: `$rec` builds the read-only record (re-built for every
/// statement, so each sees the previous one's change), `$item` the writable one.
macro_rules! run_item {
    ($self:expr, $g:expr, $rec:expr, $item:expr) => {{
        let mut selected = $g.conditions.is_empty();
        if !selected {
            let rec = $rec;
            for c in &$g.conditions {
                match c.eval(&rec) {
                    Ok(true) => {
                        selected = true;
                        break;
                    }
                    Ok(false) => {}
                    Err(e) => {
                        if $g.error_mode == ErrorMode::Propagate {
                            return Err(e.to_string());
                        }
                    }
                }
            }
        }
        if selected {
            for st in &$g.statements {
                let prepared = {
                    let rec = $rec;
                    edit::prepare(st, &rec)
                };
                let result = match prepared {
                    Ok(Some(change)) => write::apply(st, change, $item),
                    Ok(None) => Ok(()),
                    Err(e) => Err(e),
                };
                if let Err(e) = result {
                    $self.failed($g.error_mode, st, e)?;
                }
            }
        }
    }};
}

fn rec<'a>(
    resource: &'a Option<weir_api::otlp::resource::v1::Resource>,
    scope: &'a Option<weir_api::otlp::common::v1::InstrumentationScope>,
    item: Item<'a>,
) -> Record<'a> {
    Record {
        resource: resource.as_ref(),
        scope: scope.as_ref(),
        item,
    }
}

static NO_SCOPE: Option<weir_api::otlp::common::v1::InstrumentationScope> = None;

fn point_count(m: &Metric) -> usize {
    match &m.data {
        Some(Data::Gauge(g)) => g.data_points.len(),
        Some(Data::Sum(s)) => s.data_points.len(),
        Some(Data::Histogram(h)) => h.data_points.len(),
        Some(Data::ExponentialHistogram(h)) => h.data_points.len(),
        Some(Data::Summary(s)) => s.data_points.len(),
        None => 0,
    }
}

fn point_ref(m: &Metric, i: usize) -> Point<'_> {
    match &m.data {
        Some(Data::Gauge(g)) => Point::Number(&g.data_points[i]),
        Some(Data::Sum(s)) => Point::Number(&s.data_points[i]),
        Some(Data::Histogram(h)) => Point::Histogram(&h.data_points[i]),
        Some(Data::ExponentialHistogram(h)) => Point::ExpHistogram(&h.data_points[i]),
        Some(Data::Summary(s)) => Point::Summary(&s.data_points[i]),
        None => unreachable!("a metric without data has no points"),
    }
}

pub(crate) fn point_mut(m: &mut Metric, i: usize) -> ItemMut<'_> {
    match &mut m.data {
        Some(Data::Gauge(g)) => ItemMut::Number(&mut g.data_points[i]),
        Some(Data::Sum(s)) => ItemMut::Number(&mut s.data_points[i]),
        Some(Data::Histogram(h)) => ItemMut::PointAttrs(&mut h.data_points[i].attributes),
        Some(Data::ExponentialHistogram(h)) => {
            ItemMut::PointAttrs(&mut h.data_points[i].attributes)
        }
        Some(Data::Summary(s)) => ItemMut::PointAttrs(&mut s.data_points[i].attributes),
        None => unreachable!("a metric without data has no points"),
    }
}

impl TransformProcessor {
    fn run(&self, batch: &mut Batch) -> Result<(), String> {
        let plan = &self.plan;
        match batch.payload_mut() {
            Payload::Logs(req) => {
                for g in &plan.logs {
                    for rl in &mut req.resource_logs {
                        if g.ctx == Ctx::Resource {
                            run_item!(
                                self,
                                g,
                                rec(&rl.resource, &NO_SCOPE, Item::None),
                                ItemMut::Resource(rl.resource.get_or_insert_with(Default::default))
                            );
                            continue;
                        }
                        let resource = &rl.resource;
                        for sl in &mut rl.scope_logs {
                            if g.ctx == Ctx::Scope {
                                run_item!(
                                    self,
                                    g,
                                    rec(resource, &sl.scope, Item::None),
                                    ItemMut::Scope(sl.scope.get_or_insert_with(Default::default))
                                );
                                continue;
                            }
                            let scope = &sl.scope;
                            for lr in &mut sl.log_records {
                                run_item!(
                                    self,
                                    g,
                                    rec(resource, scope, Item::Log(&*lr)),
                                    ItemMut::Log(&mut *lr)
                                );
                            }
                        }
                    }
                }
            }
            Payload::Traces(req) => {
                for g in &plan.traces {
                    for rs in &mut req.resource_spans {
                        if g.ctx == Ctx::Resource {
                            run_item!(
                                self,
                                g,
                                rec(&rs.resource, &NO_SCOPE, Item::None),
                                ItemMut::Resource(rs.resource.get_or_insert_with(Default::default))
                            );
                            continue;
                        }
                        let resource = &rs.resource;
                        for ss in &mut rs.scope_spans {
                            if g.ctx == Ctx::Scope {
                                run_item!(
                                    self,
                                    g,
                                    rec(resource, &ss.scope, Item::None),
                                    ItemMut::Scope(ss.scope.get_or_insert_with(Default::default))
                                );
                                continue;
                            }
                            let scope = &ss.scope;
                            for span in &mut ss.spans {
                                if g.ctx == Ctx::Span {
                                    run_item!(
                                        self,
                                        g,
                                        rec(resource, scope, Item::Span(&*span)),
                                        ItemMut::Span(&mut *span)
                                    );
                                    continue;
                                }
                                for i in 0..span.events.len() {
                                    run_item!(
                                        self,
                                        g,
                                        rec(
                                            resource,
                                            scope,
                                            Item::SpanEvent(&*span, &span.events[i])
                                        ),
                                        ItemMut::SpanEvent(&mut *span, i)
                                    );
                                }
                            }
                        }
                    }
                }
            }
            Payload::Metrics(req) => {
                for g in &plan.metrics {
                    for rm in &mut req.resource_metrics {
                        if g.ctx == Ctx::Resource {
                            run_item!(
                                self,
                                g,
                                rec(&rm.resource, &NO_SCOPE, Item::None),
                                ItemMut::Resource(rm.resource.get_or_insert_with(Default::default))
                            );
                            continue;
                        }
                        let resource = &rm.resource;
                        for sm in &mut rm.scope_metrics {
                            if g.ctx == Ctx::Scope {
                                run_item!(
                                    self,
                                    g,
                                    rec(resource, &sm.scope, Item::None),
                                    ItemMut::Scope(sm.scope.get_or_insert_with(Default::default))
                                );
                                continue;
                            }
                            let scope = &sm.scope;
                            for m in &mut sm.metrics {
                                if g.ctx == Ctx::Metric {
                                    run_item!(
                                        self,
                                        g,
                                        rec(resource, scope, Item::Metric(&*m)),
                                        ItemMut::Metric(&mut *m)
                                    );
                                    continue;
                                }
                                for i in 0..point_count(m) {
                                    run_item!(
                                        self,
                                        g,
                                        rec(
                                            resource,
                                            scope,
                                            Item::DataPoint(&*m, point_ref(&*m, i))
                                        ),
                                        ItemMut::Point(&mut *m, i)
                                    );
                                }
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

impl Processor for TransformProcessor {
    fn process(&self, batch: &mut Batch) -> Result<(), ProcessError> {
        self.run(batch)
            .map_err(|e| ProcessError::new(std::io::Error::other(e)))
    }
}
