//! `routing`: sends telemetry to pipelines chosen by OTTL conditions, with the OpenTelemetry
//! Collector's config.
//!
//! ```yaml
//! connectors:
//!   routing:
//!     default_pipelines: [logs/other]
//!     error_mode: ignore
//!     table:
//!       - condition: 'attributes["tenant"] == "acme"'      # context: resource (default)
//!         pipelines: [logs/acme]
//!       - context: log
//!         statement: 'route() where severity_number >= SEVERITY_NUMBER_ERROR'
//!         pipelines: [logs/errors]
//!       - context: request
//!         condition: 'request["x-tenant"] == "globex"'
//!         pipelines: [logs/globex]
//! ```
//!
//! Routes are tried in order and each unit of data goes to the first route that matches it,
//! so nothing is sent twice: a `resource` route takes whole resources, a `log`, `span`,
//! `metric` or `datapoint` route takes single items (their resource and scope go with
//! them), a `request` route takes the whole request by its client metadata (the receiver's
//! `include_metadata` must be on; keys are lower-case). What no route takes goes to
//! `default_pipelines`, or is dropped when there are none. `error_mode`: `propagate`
//! (default) refuses the request as bad data when a condition fails to evaluate; `ignore`
//! (logged) and `silent` count the failing condition as false.

use std::sync::Arc;

use async_trait::async_trait;
use serde::Deserialize;
use weir_api::otlp::collector::logs::v1::ExportLogsServiceRequest;
use weir_api::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use weir_api::otlp::collector::trace::v1::ExportTraceServiceRequest;
use weir_api::otlp::metrics::v1::{metric::Data, Metric};
use weir_api::{
    parse_component_config, Batch, BatchContext, BuildContext, BuildError, Component, ConfigErrors,
    ConnectorConfig, ConnectorFactory, ConsumeError, Consumer, FanOut, Payload, Signal, Stage,
};
use weir_filter::ottl::{compile_group, Condition, Ctx, Item, PathMode, Point, Record, SignalKind};

/// How a condition that fails while evaluating is handled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ErrorMode {
    /// The request is refused as bad data.
    #[default]
    Propagate,
    /// The condition counts as false; a warning is logged.
    Ignore,
    /// As `ignore`, without the warning.
    Silent,
}

/// One route as configured.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RouteConfig {
    /// `resource` (default), `span`, `metric`, `datapoint`, `log` or `request`.
    pub context: String,
    /// `route() where <condition>`.
    pub statement: String,
    /// An OTTL condition.
    pub condition: String,
    /// Pipelines the route sends to.
    #[serde(deserialize_with = "weir_api::config::string_list")]
    pub pipelines: Vec<String>,
}

/// The `routing` connector's settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoutingSettings {
    /// See [`ErrorMode`].
    pub error_mode: ErrorMode,
    /// Where data no route takes goes.
    #[serde(deserialize_with = "weir_api::config::string_list")]
    pub default_pipelines: Vec<String>,
    /// The routes, tried in order.
    pub table: Vec<RouteConfig>,
    /// Removed from the collector (routes always match once); accepted when true.
    pub match_once: Option<bool>,
}

/// What a route matches on.
enum Matcher {
    /// A client metadata key (lower-case) compared with a value.
    Request {
        key: String,
        value: String,
        equal: bool,
    },
    /// An OTTL condition in a context.
    Ottl { ctx: Ctx, condition: Arc<Condition> },
}

struct Route {
    matcher: Matcher,
    pipelines: Vec<String>,
    /// YAML path of the route, for messages.
    path: String,
}

/// A validated `routing` connector.
pub struct Routing {
    routes: Arc<Vec<Route>>,
    default_pipelines: Vec<String>,
    error_mode: ErrorMode,
    path: String,
}

/// Factory of the `routing` connector.
pub struct RoutingFactory;

impl ConnectorFactory for RoutingFactory {
    fn pairs(&self) -> Vec<(Signal, Signal)> {
        Signal::ALL.iter().map(|s| (*s, *s)).collect()
    }

    fn parse(
        &self,
        config: &serde_json::Value,
        path: &str,
    ) -> Result<Box<dyn ConnectorConfig>, ConfigErrors> {
        let s: RoutingSettings = parse_component_config(config, path)?;
        let mut errors = ConfigErrors::default();
        if s.match_once == Some(false) {
            errors.push(
                format!("{path}.match_once"),
                "match_once: false is no longer supported (the collector removed it): each unit of data goes to the first matching route",
            );
        }
        if s.table.is_empty() {
            errors.push(
                format!("{path}.table"),
                "the routing table is empty: give at least one route",
            );
        }
        let mut routes = Vec::new();
        for (i, r) in s.table.iter().enumerate() {
            let rpath = format!("{path}.table[{i}]");
            if r.pipelines.is_empty() {
                errors.push(
                    format!("{rpath}.pipelines"),
                    "a route needs at least one pipeline",
                );
            }
            let (text, text_path) = match (r.statement.trim(), r.condition.trim()) {
                ("", "") => {
                    errors.push(rpath.clone(), "a route needs a condition or a statement");
                    continue;
                }
                (st, c) if !st.is_empty() && !c.is_empty() => {
                    errors.push(
                        rpath.clone(),
                        "a route takes a condition or a statement, not both",
                    );
                    continue;
                }
                ("", c) => (c.to_string(), format!("{rpath}.condition")),
                (st, _) => match statement_condition(st) {
                    Ok(c) => (c, format!("{rpath}.statement")),
                    Err(m) => {
                        errors.push(format!("{rpath}.statement"), m);
                        continue;
                    }
                },
            };
            let context = if r.context.is_empty() {
                "resource"
            } else {
                r.context.as_str()
            };
            let matcher = match context {
                "request" => {
                    if !r.statement.trim().is_empty() {
                        errors.push(
                            format!("{rpath}.statement"),
                            "the request context takes a condition, not a statement",
                        );
                        continue;
                    }
                    match request_condition(&text) {
                        Ok((key, value, equal)) => Matcher::Request { key, value, equal },
                        Err(m) => {
                            errors.push(text_path, m);
                            continue;
                        }
                    }
                }
                other => {
                    let (ctx, signal) = match other {
                        "resource" => (Ctx::Resource, SignalKind::Logs),
                        "log" => (Ctx::Log, SignalKind::Logs),
                        "span" => (Ctx::Span, SignalKind::Traces),
                        "metric" => (Ctx::Metric, SignalKind::Metrics),
                        "datapoint" => (Ctx::DataPoint, SignalKind::Metrics),
                        _ => {
                            errors.push(
                                format!("{rpath}.context"),
                                format!("invalid context \"{other}\" (expected resource, span, metric, datapoint, log or request)"),
                            );
                            continue;
                        }
                    };
                    match compile_group(signal, PathMode::Explicit(ctx), &[text]) {
                        Ok(mut g) => match g.conditions.pop() {
                            Some(c) => Matcher::Ottl {
                                ctx,
                                condition: Arc::new(c),
                            },
                            None => continue,
                        },
                        Err(e) => {
                            errors.push(text_path, e.error.to_string());
                            continue;
                        }
                    }
                }
            };
            routes.push(Route {
                matcher,
                pipelines: r.pipelines.clone(),
                path: rpath,
            });
        }
        errors.into_result(())?;
        Ok(Box::new(Routing {
            routes: Arc::new(routes),
            default_pipelines: s.default_pipelines,
            error_mode: s.error_mode,
            path: path.to_string(),
        }))
    }
}

/// The condition of `route() where <condition>`.
fn statement_condition(st: &str) -> Result<String, String> {
    let rest = st
        .strip_prefix("route()")
        .ok_or_else(|| format!("expected \"route() where <condition>\", found {st:?}"))?
        .trim_start();
    if rest.is_empty() {
        // `route()` alone routes everything.
        return Ok("true".to_string());
    }
    let cond = rest
        .strip_prefix("where")
        .filter(|c| c.starts_with(char::is_whitespace))
        .ok_or_else(|| format!("expected \"where\" after route(), found {rest:?}"))?;
    Ok(cond.trim().to_string())
}

/// `request["key"] == "value"` (or `!=`): (lower-case key, value, whether equal).
fn request_condition(c: &str) -> Result<(String, String, bool), String> {
    let err = || {
        format!("a request condition is request[\"<metadata key>\"] == \"<value>\" (or !=), found {c:?}")
    };
    let rest = c.trim().strip_prefix("request[").ok_or_else(err)?;
    let (key, rest) = quoted(rest).ok_or_else(err)?;
    let rest = rest
        .trim_start()
        .strip_prefix(']')
        .ok_or_else(err)?
        .trim_start();
    let (equal, rest) = if let Some(r) = rest.strip_prefix("==") {
        (true, r)
    } else if let Some(r) = rest.strip_prefix("!=") {
        (false, r)
    } else {
        return Err(err());
    };
    let (value, rest) = quoted(rest.trim_start()).ok_or_else(err)?;
    if !rest.trim().is_empty() {
        return Err(err());
    }
    Ok((key.to_ascii_lowercase(), value, equal))
}

/// A double-quoted string at the start of `s` (with `\"` and `\\` escapes) and the rest.
fn quoted(s: &str) -> Option<(String, &str)> {
    let body = s.strip_prefix('"')?;
    let mut out = String::new();
    let mut chars = body.char_indices();
    while let Some((i, ch)) = chars.next() {
        match ch {
            '\\' => out.push(chars.next()?.1),
            '"' => return Some((out, &body[i + 1..])),
            c => out.push(c),
        }
    }
    None
}

impl ConnectorConfig for Routing {
    fn named_pipelines(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = self
            .default_pipelines
            .iter()
            .enumerate()
            .map(|(i, p)| (format!("{}.default_pipelines[{i}]", self.path), p.clone()))
            .collect();
        for r in self.routes.iter() {
            for (i, p) in r.pipelines.iter().enumerate() {
                out.push((format!("{}.pipelines[{i}]", r.path), p.clone()));
            }
        }
        out
    }

    fn build(
        &self,
        ctx: &BuildContext,
        from: Signal,
        _to: Signal,
        outputs: Vec<(String, Arc<dyn Consumer>)>,
    ) -> Result<Arc<dyn Stage>, BuildError> {
        let pick = |names: &[String]| -> Option<Arc<dyn Consumer>> {
            let list: Vec<Arc<dyn Consumer>> = outputs
                .iter()
                .filter(|(id, _)| names.contains(id))
                .map(|(_, c)| c.clone())
                .collect();
            (!list.is_empty()).then(|| FanOut::of(list))
        };
        let mut routes = Vec::new();
        for (i, r) in self.routes.iter().enumerate() {
            if let Matcher::Ottl { ctx: c, .. } = &r.matcher {
                let fits = match c {
                    Ctx::Resource => true,
                    Ctx::Log => from == Signal::Logs,
                    Ctx::Span => from == Signal::Traces,
                    Ctx::Metric | Ctx::DataPoint => from == Signal::Metrics,
                    _ => false,
                };
                if !fits {
                    return Err(BuildError::message(
                        &ctx.id,
                        format!("{}: the {} context cannot route {from}", r.path, c.name()),
                    ));
                }
            }
            // A route whose pipelines are all of another signal does not apply here.
            if let Some(consumer) = pick(&r.pipelines) {
                routes.push((i, consumer));
            }
        }
        Ok(Arc::new(RoutingStage {
            id: ctx.id.to_string(),
            table: self.routes.clone(),
            routes,
            default: pick(&self.default_pipelines),
            error_mode: self.error_mode,
        }))
    }
}

struct RoutingStage {
    id: String,
    table: Arc<Vec<Route>>,
    /// (index in `table`, consumer) of the routes that apply to this signal.
    routes: Vec<(usize, Arc<dyn Consumer>)>,
    default: Option<Arc<dyn Consumer>>,
    error_mode: ErrorMode,
}

/// Evaluation state for one request: the first error in propagate mode, failures counted.
struct Eval {
    mode: ErrorMode,
    error: Option<String>,
    failures: usize,
}

impl Eval {
    fn test(&mut self, c: &Condition, rec: &Record<'_>) -> bool {
        match c.eval(rec) {
            Ok(b) => b,
            Err(e) => {
                self.failures += 1;
                if self.mode == ErrorMode::Propagate && self.error.is_none() {
                    self.error = Some(e.to_string());
                }
                false
            }
        }
    }
}

fn request_matches(ctx: &BatchContext, key: &str, value: &str, equal: bool) -> bool {
    let found = ctx
        .metadata
        .as_ref()
        .and_then(|m| m.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()));
    match found {
        Some(v) => (v == value) == equal,
        None => !equal,
    }
}

/// Moves the units of `rest` that `route` matches into a new payload of the same signal.
fn take(rest: &mut Payload, ctx: Ctx, c: &Condition, ev: &mut Eval) -> Payload {
    let mut out = Payload::empty(rest.signal());
    match (rest, &mut out) {
        (Payload::Logs(r), Payload::Logs(o)) => take_logs(r, o, ctx, c, ev),
        (Payload::Traces(r), Payload::Traces(o)) => take_traces(r, o, ctx, c, ev),
        (Payload::Metrics(r), Payload::Metrics(o)) => take_metrics(r, o, ctx, c, ev),
        _ => {}
    }
    out
}

fn take_logs(
    r: &mut ExportLogsServiceRequest,
    o: &mut ExportLogsServiceRequest,
    ctx: Ctx,
    c: &Condition,
    ev: &mut Eval,
) {
    if ctx == Ctx::Resource {
        let all = std::mem::take(&mut r.resource_logs);
        for rl in all {
            let rec = Record {
                resource: rl.resource.as_ref(),
                scope: None,
                item: Item::None,
            };
            if ev.test(c, &rec) {
                o.resource_logs.push(rl);
            } else {
                r.resource_logs.push(rl);
            }
        }
        return;
    }
    for rl in &mut r.resource_logs {
        let resource = rl.resource.as_ref();
        let mut taken_scopes = Vec::new();
        for sl in &mut rl.scope_logs {
            let records = std::mem::take(&mut sl.log_records);
            let mut taken = Vec::new();
            for lr in records {
                let rec = Record {
                    resource,
                    scope: sl.scope.as_ref(),
                    item: Item::Log(&lr),
                };
                if ev.test(c, &rec) {
                    taken.push(lr);
                } else {
                    sl.log_records.push(lr);
                }
            }
            if !taken.is_empty() {
                let mut t = sl.clone();
                t.log_records = taken;
                taken_scopes.push(t);
            }
        }
        if !taken_scopes.is_empty() {
            let mut t = rl.clone();
            t.scope_logs = taken_scopes;
            o.resource_logs.push(t);
        }
    }
}

fn take_traces(
    r: &mut ExportTraceServiceRequest,
    o: &mut ExportTraceServiceRequest,
    ctx: Ctx,
    c: &Condition,
    ev: &mut Eval,
) {
    if ctx == Ctx::Resource {
        let all = std::mem::take(&mut r.resource_spans);
        for rs in all {
            let rec = Record {
                resource: rs.resource.as_ref(),
                scope: None,
                item: Item::None,
            };
            if ev.test(c, &rec) {
                o.resource_spans.push(rs);
            } else {
                r.resource_spans.push(rs);
            }
        }
        return;
    }
    for rs in &mut r.resource_spans {
        let resource = rs.resource.as_ref();
        let mut taken_scopes = Vec::new();
        for ss in &mut rs.scope_spans {
            let spans = std::mem::take(&mut ss.spans);
            let mut taken = Vec::new();
            for span in spans {
                let rec = Record {
                    resource,
                    scope: ss.scope.as_ref(),
                    item: Item::Span(&span),
                };
                if ev.test(c, &rec) {
                    taken.push(span);
                } else {
                    ss.spans.push(span);
                }
            }
            if !taken.is_empty() {
                let mut t = ss.clone();
                t.spans = taken;
                taken_scopes.push(t);
            }
        }
        if !taken_scopes.is_empty() {
            let mut t = rs.clone();
            t.scope_spans = taken_scopes;
            o.resource_spans.push(t);
        }
    }
}

fn take_metrics(
    r: &mut ExportMetricsServiceRequest,
    o: &mut ExportMetricsServiceRequest,
    ctx: Ctx,
    c: &Condition,
    ev: &mut Eval,
) {
    if ctx == Ctx::Resource {
        let all = std::mem::take(&mut r.resource_metrics);
        for rm in all {
            let rec = Record {
                resource: rm.resource.as_ref(),
                scope: None,
                item: Item::None,
            };
            if ev.test(c, &rec) {
                o.resource_metrics.push(rm);
            } else {
                r.resource_metrics.push(rm);
            }
        }
        return;
    }
    for rm in &mut r.resource_metrics {
        let resource = rm.resource.as_ref();
        let mut taken_scopes = Vec::new();
        for sm in &mut rm.scope_metrics {
            let scope = sm.scope.as_ref();
            let metrics = std::mem::take(&mut sm.metrics);
            let mut taken = Vec::new();
            for mut metric in metrics {
                if ctx == Ctx::Metric {
                    let rec = Record {
                        resource,
                        scope,
                        item: Item::Metric(&metric),
                    };
                    if ev.test(c, &rec) {
                        taken.push(metric);
                    } else {
                        sm.metrics.push(metric);
                    }
                    continue;
                }
                let (t, kept) = split_points(&mut metric, |m, p| {
                    let rec = Record {
                        resource,
                        scope,
                        item: Item::DataPoint(m, p),
                    };
                    ev.test(c, &rec)
                });
                if let Some(t) = t {
                    taken.push(t);
                }
                if kept {
                    sm.metrics.push(metric);
                }
            }
            if !taken.is_empty() {
                let mut t = sm.clone();
                t.metrics = taken;
                taken_scopes.push(t);
            }
        }
        if !taken_scopes.is_empty() {
            let mut t = rm.clone();
            t.scope_metrics = taken_scopes;
            o.resource_metrics.push(t);
        }
    }
}

/// Splits the data points of `metric` by `pred`: returns a copy of the metric holding the
/// matching points (if any), and whether `metric` keeps any point.
fn split_points(
    metric: &mut Metric,
    mut pred: impl FnMut(&Metric, Point<'_>) -> bool,
) -> (Option<Metric>, bool) {
    macro_rules! split {
        ($variant:ident, $point:ident) => {{
            let points = match metric.data.as_mut() {
                Some(Data::$variant(d)) => std::mem::take(&mut d.data_points),
                _ => return (None, true),
            };
            // The predicate reads the metric's other fields through a shell without points.
            let shell = Metric {
                data: Some(Data::$variant(Default::default())),
                ..clone_without_data(metric)
            };
            let mut taken = Vec::new();
            let mut kept = Vec::new();
            for p in points {
                if pred(&shell, Point::$point(&p)) {
                    taken.push(p);
                } else {
                    kept.push(p);
                }
            }
            let base = clone_without_data(metric);
            let Some(Data::$variant(d)) = metric.data.as_mut() else {
                return (None, true);
            };
            let any_kept = !kept.is_empty();
            let mut copy = None;
            if !taken.is_empty() {
                let mut data = d.clone();
                data.data_points = taken;
                copy = Some(Metric {
                    data: Some(Data::$variant(data)),
                    ..base
                });
            }
            d.data_points = kept;
            (copy, any_kept)
        }};
    }
    match &metric.data {
        Some(Data::Gauge(_)) => split!(Gauge, Number),
        Some(Data::Sum(_)) => split!(Sum, Number),
        Some(Data::Histogram(_)) => split!(Histogram, Histogram),
        Some(Data::ExponentialHistogram(_)) => split!(ExponentialHistogram, ExpHistogram),
        Some(Data::Summary(_)) => split!(Summary, Summary),
        None => (None, true),
    }
}

/// A copy of `m` without its data points.
fn clone_without_data(m: &Metric) -> Metric {
    Metric {
        name: m.name.clone(),
        description: m.description.clone(),
        unit: m.unit.clone(),
        metadata: m.metadata.clone(),
        data: None,
    }
}

#[async_trait]
impl Consumer for RoutingStage {
    async fn consume(&self, batch: Batch) -> Result<(), ConsumeError> {
        let context = batch.context.clone();
        let mut rest = batch.into_payload();
        let mut ev = Eval {
            mode: self.error_mode,
            error: None,
            failures: 0,
        };
        let mut sends: Vec<(Arc<dyn Consumer>, Payload)> = Vec::new();
        for (i, consumer) in &self.routes {
            if rest.item_count() == 0 {
                break;
            }
            let route = &self.table[*i];
            let taken = match &route.matcher {
                Matcher::Request { key, value, equal } => {
                    if request_matches(&context, key, value, *equal) {
                        let signal = rest.signal();
                        std::mem::replace(&mut rest, Payload::empty(signal))
                    } else {
                        continue;
                    }
                }
                Matcher::Ottl { ctx, condition } => {
                    let mut t = take(&mut rest, *ctx, condition, &mut ev);
                    t.prune_empty();
                    rest.prune_empty();
                    t
                }
            };
            if taken.item_count() > 0 {
                sends.push((consumer.clone(), taken));
            }
        }
        if let Some(e) = ev.error {
            return Err(ConsumeError::Rejected {
                component: self.id.clone(),
                reason: format!("a routing condition failed: {e}"),
            });
        }
        if ev.failures > 0 && self.error_mode == ErrorMode::Ignore {
            tracing::warn!(
                connector = %self.id,
                failures = ev.failures,
                "routing: conditions failed to evaluate and counted as false"
            );
        }
        if rest.item_count() > 0 {
            if let Some(d) = &self.default {
                sends.push((d.clone(), rest));
            }
        }
        let mut first_err = None;
        for (consumer, payload) in sends {
            let mut b = Batch::new(payload);
            b.context = context.clone();
            if let Err(e) = consumer.consume(b).await {
                first_err.get_or_insert(e);
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Component for RoutingStage {}
