//! `count`: counts spans, span events, metrics, data points and log records, and emits the
//! counts onto a metrics pipeline, with the OpenTelemetry Collector's config and defaults.
//!
//! ```yaml
//! connectors:
//!   count:
//!     logs:
//!       my.error.log.count:
//!         description: Error+ logs.
//!         conditions: ['severity_number >= SEVERITY_NUMBER_ERROR']
//!         attributes: [{key: env, default_value: unspecified}]
//! ```
//!
//! Without a section for a kind of item, the kind's default metric is counted
//! (`trace.span.count`, `trace.span.event.count`, `metric.count`, `metric.datapoint.count`,
//! `log.record.count`); a section given replaces the default. Conditions of one metric are
//! ORed. With attributes, one data point per distinct set of values; an attribute is looked
//! up on the item, then its scope, then its resource, and an item lacking one (with no
//! `default_value`) is not counted for that metric. Counts are per request and per
//! resource: each resource of the input gets a resource of the output with its attributes,
//! one scope named after the connector, and per metric a monotonic delta sum whose points
//! carry the item count, with start and end times the earliest and latest item times (now,
//! when no item has one).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use serde::Deserialize;
use weir_api::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use weir_api::otlp::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use weir_api::otlp::metrics::v1::{
    metric::Data, number_data_point, AggregationTemporality, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum,
};
use weir_api::otlp::resource::v1::Resource;
use weir_api::{
    parse_component_config, Batch, BuildContext, BuildError, Component, ConfigErrors,
    ConnectorConfig, ConnectorFactory, ConsumeError, Consumer, FanOut, Payload, Signal, Stage,
};
use weir_filter::ottl::{compile_group, Condition, Ctx, Item, PathMode, Point, Record, SignalKind};

/// The scope of the emitted metrics, as the collector's connector names it.
pub const SCOPE_NAME: &str =
    "github.com/open-telemetry/opentelemetry-collector-contrib/connector/countconnector";

/// One counted metric as configured.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricInfo {
    /// The metric's description.
    pub description: String,
    /// OTTL conditions, ORed; none counts every item.
    #[serde(deserialize_with = "weir_api::config::expression_list")]
    pub conditions: Option<Vec<String>>,
    /// Attributes to count by.
    pub attributes: Vec<AttributeConfig>,
}

/// An attribute to count by.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttributeConfig {
    /// The attribute's key.
    #[serde(default)]
    pub key: String,
    /// The value for items without the attribute (a string, an integer or a float); without
    /// one, such items are not counted for the metric.
    #[serde(default)]
    pub default_value: Option<serde_json::Value>,
    /// Nested lookup: not supported (refused when true).
    #[serde(default)]
    pub any_depth: bool,
}

/// The `count` connector's settings: a section per kind of item.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CountSettings {
    /// Span metrics.
    pub spans: Option<BTreeMap<String, MetricInfo>>,
    /// Span event metrics.
    pub spanevents: Option<BTreeMap<String, MetricInfo>>,
    /// Metric metrics.
    pub metrics: Option<BTreeMap<String, MetricInfo>>,
    /// Data point metrics.
    pub datapoints: Option<BTreeMap<String, MetricInfo>>,
    /// Log record metrics.
    pub logs: Option<BTreeMap<String, MetricInfo>>,
}

/// The kinds of counted items: (section, default name, default description, OTTL signal,
/// context).
const KINDS: [(&str, &str, &str, SignalKind, Ctx); 5] = [
    (
        "spans",
        "trace.span.count",
        "The number of spans observed.",
        SignalKind::Traces,
        Ctx::Span,
    ),
    (
        "spanevents",
        "trace.span.event.count",
        "The number of span events observed.",
        SignalKind::Traces,
        Ctx::SpanEvent,
    ),
    (
        "metrics",
        "metric.count",
        "The number of metrics observed.",
        SignalKind::Metrics,
        Ctx::Metric,
    ),
    (
        "datapoints",
        "metric.datapoint.count",
        "The number of data points observed.",
        SignalKind::Metrics,
        Ctx::DataPoint,
    ),
    (
        "logs",
        "log.record.count",
        "The number of log records observed.",
        SignalKind::Logs,
        Ctx::Log,
    ),
];

/// One compiled metric definition.
struct MetricDef {
    name: String,
    description: String,
    conditions: Option<Vec<Condition>>,
    attributes: Vec<(String, Option<AnyValue>)>,
}

/// The compiled definitions, by kind (the order of [`KINDS`]).
struct Defs([Vec<MetricDef>; 5]);

/// Factory of the `count` connector.
pub struct CountFactory;

impl ConnectorFactory for CountFactory {
    fn pairs(&self) -> Vec<(Signal, Signal)> {
        vec![
            (Signal::Traces, Signal::Metrics),
            (Signal::Metrics, Signal::Metrics),
            (Signal::Logs, Signal::Metrics),
        ]
    }

    fn parse(
        &self,
        config: &serde_json::Value,
        path: &str,
    ) -> Result<Box<dyn ConnectorConfig>, ConfigErrors> {
        let settings: CountSettings = parse_component_config(config, path)?;
        let defs = compile(&settings, path)?;
        Ok(Box::new(Count {
            defs: Arc::new(defs),
        }))
    }
}

fn default_value(v: &serde_json::Value) -> Result<Option<AnyValue>, String> {
    let value = match v {
        serde_json::Value::Null => return Ok(None),
        serde_json::Value::String(s) if s.is_empty() => return Ok(None),
        serde_json::Value::String(s) => any_value::Value::StringValue(s.clone()),
        serde_json::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                if i == 0 {
                    return Ok(None);
                }
                any_value::Value::IntValue(i)
            } else {
                match n.as_f64() {
                    Some(f) if f != 0.0 => any_value::Value::DoubleValue(f),
                    _ => return Ok(None),
                }
            }
        }
        other => {
            return Err(format!(
                "default_value must be a string, an integer or a float, found {}",
                match other {
                    serde_json::Value::Bool(_) => "a boolean",
                    serde_json::Value::Array(_) => "a list",
                    _ => "a map",
                }
            ))
        }
    };
    Ok(Some(AnyValue { value: Some(value) }))
}

fn compile(s: &CountSettings, path: &str) -> Result<Defs, ConfigErrors> {
    let mut errors = ConfigErrors::default();
    let sections = [&s.spans, &s.spanevents, &s.metrics, &s.datapoints, &s.logs];
    let mut out: [Vec<MetricDef>; 5] = Default::default();
    for (k, (section, default_name, default_desc, signal, ctx)) in KINDS.iter().enumerate() {
        let Some(map) = sections[k] else {
            out[k].push(MetricDef {
                name: default_name.to_string(),
                description: default_desc.to_string(),
                conditions: None,
                attributes: Vec::new(),
            });
            continue;
        };
        for (name, info) in map {
            let mpath = format!("{path}.{section}.{name}");
            if name.trim().is_empty() {
                errors.push(format!("{path}.{section}"), "metric name missing");
                continue;
            }
            let conditions = match info.conditions.as_deref() {
                None | Some([]) => None,
                Some(list) => match compile_group(*signal, PathMode::Explicit(*ctx), list) {
                    Ok(g) => Some(g.conditions),
                    Err(e) => {
                        errors.push(
                            format!("{mpath}.conditions[{}]", e.index),
                            e.error.to_string(),
                        );
                        None
                    }
                },
            };
            if *section == "metrics" && !info.attributes.is_empty() {
                errors.push(
                    format!("{mpath}.attributes"),
                    "attributes are not supported for metrics (a metric has none; count data points instead)",
                );
            }
            let mut attributes = Vec::new();
            for (i, a) in info.attributes.iter().enumerate() {
                let apath = format!("{mpath}.attributes[{i}]");
                if a.key.is_empty() {
                    errors.push(format!("{apath}.key"), "attribute key missing");
                }
                if a.any_depth {
                    errors.push(
                        format!("{apath}.any_depth"),
                        "any_depth is not supported: the attribute is looked up on the item, its scope and its resource",
                    );
                }
                let dv = match a.default_value.as_ref().map(default_value) {
                    None => None,
                    Some(Ok(v)) => v,
                    Some(Err(m)) => {
                        errors.push(format!("{apath}.default_value"), m);
                        None
                    }
                };
                attributes.push((a.key.clone(), dv));
            }
            out[k].push(MetricDef {
                name: name.clone(),
                description: info.description.clone(),
                conditions,
                attributes,
            });
        }
    }
    errors.into_result(Defs(out))
}

/// A validated `count` connector.
pub struct Count {
    defs: Arc<Defs>,
}

impl ConnectorConfig for Count {
    fn build(
        &self,
        ctx: &BuildContext,
        _from: Signal,
        _to: Signal,
        outputs: Vec<(String, Arc<dyn Consumer>)>,
    ) -> Result<Arc<dyn Stage>, BuildError> {
        Ok(Arc::new(CountStage {
            id: ctx.id.to_string(),
            defs: self.defs.clone(),
            next: FanOut::of(outputs.into_iter().map(|(_, c)| c).collect()),
        }))
    }
}

struct CountStage {
    id: String,
    defs: Arc<Defs>,
    next: Arc<dyn Consumer>,
}

/// Counts of one metric definition by attribute set, in order of first sight.
#[derive(Default)]
struct Tally {
    index: BTreeMap<Vec<u8>, usize>,
    points: Vec<(Vec<KeyValue>, u64)>,
}

/// The counters of one resource of the input.
struct Counter<'d> {
    defs: &'d [MetricDef],
    tallies: Vec<Tally>,
    start: u64,
    end: u64,
}

impl<'d> Counter<'d> {
    fn new(defs: &'d [MetricDef]) -> Self {
        Counter {
            defs,
            tallies: defs.iter().map(|_| Tally::default()).collect(),
            start: 0,
            end: 0,
        }
    }

    fn time(&mut self, t: u64) {
        if t == 0 {
            return;
        }
        if self.start == 0 {
            self.start = t;
            self.end = t;
        } else {
            self.start = self.start.min(t);
            self.end = self.end.max(t);
        }
    }

    fn update(
        &mut self,
        own: &[KeyValue],
        scope: &[KeyValue],
        resource: &[KeyValue],
        rec: &Record<'_>,
        failures: &mut usize,
    ) {
        'defs: for (d, def) in self.defs.iter().enumerate() {
            let mut attrs = Vec::with_capacity(def.attributes.len());
            for (key, default) in &def.attributes {
                let found = [own, scope, resource]
                    .iter()
                    .find_map(|list| list.iter().find(|kv| &kv.key == key))
                    .and_then(|kv| kv.value.clone());
                match found.or_else(|| default.clone()) {
                    Some(v) => attrs.push(KeyValue {
                        key: key.clone(),
                        value: Some(normalise(v)),
                        ..Default::default()
                    }),
                    None => continue 'defs,
                }
            }
            if let Some(conditions) = &def.conditions {
                let mut matched = false;
                for c in conditions {
                    match c.eval(rec) {
                        Ok(true) => {
                            matched = true;
                            break;
                        }
                        Ok(false) => {}
                        Err(_) => *failures += 1,
                    }
                }
                if !matched {
                    continue;
                }
            }
            let key = encode_key(&attrs);
            let tally = &mut self.tallies[d];
            match tally.index.get(&key) {
                Some(&i) => tally.points[i].1 += 1,
                None => {
                    tally.index.insert(key, tally.points.len());
                    tally.points.push((attrs, 1));
                }
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.tallies.iter().all(|t| t.points.is_empty())
    }

    fn append_to(self, metrics: &mut Vec<Metric>) {
        let (start, end) = if self.start == 0 {
            let now = now_nanos();
            (now, now)
        } else {
            (self.start, self.end)
        };
        for (def, tally) in self.defs.iter().zip(self.tallies) {
            if tally.points.is_empty() {
                continue;
            }
            metrics.push(Metric {
                name: def.name.clone(),
                description: def.description.clone(),
                data: Some(Data::Sum(Sum {
                    data_points: tally
                        .points
                        .into_iter()
                        .map(|(attributes, n)| NumberDataPoint {
                            attributes,
                            start_time_unix_nano: start,
                            time_unix_nano: end,
                            value: Some(number_data_point::Value::AsInt(
                                i64::try_from(n).unwrap_or(i64::MAX),
                            )),
                            ..Default::default()
                        })
                        .collect(),
                    aggregation_temporality: AggregationTemporality::Delta as i32,
                    is_monotonic: true,
                })),
                ..Default::default()
            });
        }
    }
}

/// An attribute value as the collector's connector emits it: integers and floats keep
/// their type, everything else becomes its string form.
fn normalise(v: AnyValue) -> AnyValue {
    match &v.value {
        Some(any_value::Value::IntValue(_))
        | Some(any_value::Value::DoubleValue(_))
        | Some(any_value::Value::StringValue(_)) => v,
        _ => AnyValue {
            value: Some(any_value::Value::StringValue(
                weir_filter::ottl::value::any_as_string(Some(&v)),
            )),
        },
    }
}

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn resource_attrs(r: Option<&Resource>) -> &[KeyValue] {
    r.map(|r| r.attributes.as_slice()).unwrap_or(&[])
}

fn scope_attrs(s: Option<&InstrumentationScope>) -> &[KeyValue] {
    s.map(|s| s.attributes.as_slice()).unwrap_or(&[])
}

fn output_resource(resource: Option<&Resource>, metrics: Vec<Metric>) -> ResourceMetrics {
    ResourceMetrics {
        resource: Some(Resource {
            attributes: resource_attrs(resource).to_vec(),
            ..Default::default()
        }),
        scope_metrics: vec![ScopeMetrics {
            scope: Some(InstrumentationScope {
                name: SCOPE_NAME.to_string(),
                ..Default::default()
            }),
            metrics,
            ..Default::default()
        }],
        ..Default::default()
    }
}

impl CountStage {
    /// The counts of one request, and how many condition evaluations failed.
    fn count(&self, payload: &Payload) -> (ExportMetricsServiceRequest, usize) {
        let mut out = ExportMetricsServiceRequest::default();
        let mut failures = 0;
        let d = &self.defs.0;
        match payload {
            Payload::Traces(req) => {
                for rs in &req.resource_spans {
                    let res = rs.resource.as_ref();
                    let mut spans = Counter::new(&d[0]);
                    let mut events = Counter::new(&d[1]);
                    for ss in &rs.scope_spans {
                        let scope = ss.scope.as_ref();
                        for span in &ss.spans {
                            spans.time(span.start_time_unix_nano);
                            spans.time(span.end_time_unix_nano);
                            let rec = Record {
                                resource: res,
                                scope,
                                item: Item::Span(span),
                            };
                            spans.update(
                                &span.attributes,
                                scope_attrs(scope),
                                resource_attrs(res),
                                &rec,
                                &mut failures,
                            );
                            for event in &span.events {
                                events.time(event.time_unix_nano);
                                let rec = Record {
                                    resource: res,
                                    scope,
                                    item: Item::SpanEvent(span, event),
                                };
                                events.update(
                                    &event.attributes,
                                    scope_attrs(scope),
                                    resource_attrs(res),
                                    &rec,
                                    &mut failures,
                                );
                            }
                        }
                    }
                    if spans.is_empty() && events.is_empty() {
                        continue;
                    }
                    let mut metrics = Vec::new();
                    spans.append_to(&mut metrics);
                    events.append_to(&mut metrics);
                    out.resource_metrics.push(output_resource(res, metrics));
                }
            }
            Payload::Metrics(req) => {
                for rm in &req.resource_metrics {
                    let res = rm.resource.as_ref();
                    let mut metric_counter = Counter::new(&d[2]);
                    let mut points = Counter::new(&d[3]);
                    for sm in &rm.scope_metrics {
                        let scope = sm.scope.as_ref();
                        for metric in &sm.metrics {
                            let rec = Record {
                                resource: res,
                                scope,
                                item: Item::Metric(metric),
                            };
                            metric_counter.update(
                                &[],
                                scope_attrs(scope),
                                resource_attrs(res),
                                &rec,
                                &mut failures,
                            );
                            for_each_point(metric, |point, attrs, t| {
                                points.time(t);
                                let rec = Record {
                                    resource: res,
                                    scope,
                                    item: Item::DataPoint(metric, point),
                                };
                                points.update(
                                    attrs,
                                    scope_attrs(scope),
                                    resource_attrs(res),
                                    &rec,
                                    &mut failures,
                                );
                            });
                        }
                    }
                    if metric_counter.is_empty() && points.is_empty() {
                        continue;
                    }
                    let mut metrics = Vec::new();
                    metric_counter.append_to(&mut metrics);
                    points.append_to(&mut metrics);
                    out.resource_metrics.push(output_resource(res, metrics));
                }
            }
            Payload::Logs(req) => {
                for rl in &req.resource_logs {
                    let res = rl.resource.as_ref();
                    let mut logs = Counter::new(&d[4]);
                    for sl in &rl.scope_logs {
                        let scope = sl.scope.as_ref();
                        for record in &sl.log_records {
                            logs.time(record.time_unix_nano);
                            let rec = Record {
                                resource: res,
                                scope,
                                item: Item::Log(record),
                            };
                            logs.update(
                                &record.attributes,
                                scope_attrs(scope),
                                resource_attrs(res),
                                &rec,
                                &mut failures,
                            );
                        }
                    }
                    if logs.is_empty() {
                        continue;
                    }
                    let mut metrics = Vec::new();
                    logs.append_to(&mut metrics);
                    out.resource_metrics.push(output_resource(res, metrics));
                }
            }
        }
        (out, failures)
    }
}

/// Calls `f` with each data point of `metric`, its attributes and its time.
fn for_each_point<'m>(metric: &'m Metric, mut f: impl FnMut(Point<'m>, &'m [KeyValue], u64)) {
    match &metric.data {
        Some(Data::Gauge(g)) => {
            for p in &g.data_points {
                f(Point::Number(p), &p.attributes, p.time_unix_nano);
            }
        }
        Some(Data::Sum(s)) => {
            for p in &s.data_points {
                f(Point::Number(p), &p.attributes, p.time_unix_nano);
            }
        }
        Some(Data::Histogram(h)) => {
            for p in &h.data_points {
                f(Point::Histogram(p), &p.attributes, p.time_unix_nano);
            }
        }
        Some(Data::ExponentialHistogram(h)) => {
            for p in &h.data_points {
                f(Point::ExpHistogram(p), &p.attributes, p.time_unix_nano);
            }
        }
        Some(Data::Summary(s)) => {
            for p in &s.data_points {
                f(Point::Summary(p), &p.attributes, p.time_unix_nano);
            }
        }
        None => {}
    }
}

#[async_trait]
impl Consumer for CountStage {
    async fn consume(&self, batch: Batch) -> Result<(), ConsumeError> {
        let (counts, failures) = self.count(batch.payload());
        if failures > 0 {
            tracing::warn!(
                connector = %self.id,
                failures,
                "count: conditions failed to evaluate; those items were not counted"
            );
        }
        if counts.resource_metrics.is_empty() {
            return Ok(());
        }
        let mut out = Batch::new(Payload::Metrics(counts));
        out.context = batch.context.clone();
        self.next.consume(out).await
    }
}

impl Component for CountStage {}

/// A byte key for a list of attributes (exact: the protobuf encoding of each pair).
fn encode_key(attrs: &[KeyValue]) -> Vec<u8> {
    use prost::Message;
    let mut out = Vec::new();
    for kv in attrs {
        let bytes = kv.encode_to_vec();
        out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        out.extend_from_slice(&bytes);
    }
    out
}
