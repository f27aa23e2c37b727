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

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use regex::Regex;
use serde::Deserialize;
use weir_api::otlp::common::v1::{any_value, AnyValue, KeyValue};
use weir_api::otlp::metrics::v1::metric::Data;
use weir_api::otlp::metrics::v1::{
    number_data_point, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics,
};
use weir_api::{
    parse_component_config, Batch, BuildContext, BuildError, ConfigErrors, Consumer, Payload,
    ProcessError, Processor, ProcessorConfig, ProcessorFactory, Signal, SignalSet, Stage,
};
use weir_filter::ottl::value::any_as_string;
use weir_filter::ottl::with_hint;

/// One `value_actions` entry.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ValueAction {
    /// The label value to rename.
    pub value: String,
    /// Its new value.
    pub new_value: String,
}

/// One `operations` entry as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OperationConfig {
    /// add_label, update_label, delete_label_value, toggle_scalar_data_type, scale_value,
    /// aggregate_labels, aggregate_label_values. Required.
    pub action: String,
    /// The label acted on.
    pub label: String,
    /// add_label: the label added; update_label: the new name.
    pub new_label: String,
    /// aggregate_labels: the labels kept.
    #[serde(deserialize_with = "weir_api::config::string_list")]
    pub label_set: Vec<String>,
    /// sum, mean, min, max.
    pub aggregation_type: String,
    /// scale_value: the factor.
    pub experimental_scale: Option<f64>,
    /// aggregate_label_values: the values merged into `new_value`.
    #[serde(deserialize_with = "weir_api::config::string_list")]
    pub aggregated_values: Vec<String>,
    /// add_label and aggregate_label_values: the value set.
    pub new_value: String,
    /// update_label: value renames.
    pub value_actions: Vec<ValueAction>,
    /// delete_label_value: the value whose points are dropped.
    pub label_value: String,
}

/// One `transforms` entry as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TransformEntry {
    /// The metric name (strict) or pattern (regexp). Required.
    pub include: String,
    /// Deprecated name of `include`.
    pub metric_name: String,
    /// `strict` (default) or `regexp`.
    pub match_type: String,
    /// Only data points whose labels match these (strict: equal; regexp: pattern).
    pub experimental_match_labels: BTreeMap<String, String>,
    /// update, insert, combine, group. Required.
    pub action: String,
    /// The new name; `$1` / `${name}` expand regexp groups. Required for insert.
    pub new_name: String,
    /// With `group` (required there): labels set on the new resource.
    pub group_resource_labels: Option<BTreeMap<String, String>>,
    /// With `combine`: how points with equal labels and times merge (sum, mean, min, max,
    /// count, median; unset keeps the first point's value).
    pub aggregation_type: String,
    /// `lower` or `upper`: the case of expanded groups in `new_name`.
    pub submatch_case: String,
    /// Operations, in order.
    pub operations: Vec<OperationConfig>,
}

/// `metricstransform` config.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsTransformConfig {
    /// The transforms, applied in order.
    pub transforms: Vec<serde_json::Value>,
}

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

const ACTIONS: [&str; 4] = ["update", "insert", "combine", "group"];
const OPS: [&str; 7] = [
    "add_label",
    "update_label",
    "delete_label_value",
    "toggle_scalar_data_type",
    "scale_value",
    "aggregate_labels",
    "aggregate_label_values",
];

fn agg(s: &str, at: &str, errors: &mut ConfigErrors) -> Option<Agg> {
    Some(match s {
        "sum" => Agg::Sum,
        "mean" => Agg::Mean,
        "min" => Agg::Min,
        "max" => Agg::Max,
        other => {
            errors.push(
                format!("{at}.aggregation_type"),
                format!("{other:?} is not a valid aggregation_type (sum, mean, min, max)"),
            );
            return None;
        }
    })
}

fn compile_entry(e: &TransformEntry, at: &str, errors: &mut ConfigErrors) -> Option<Transform> {
    let before = errors.0.len();
    let include = if e.include.is_empty() {
        &e.metric_name
    } else {
        &e.include
    };
    if include.is_empty() {
        errors.push(
            format!("{at}.include"),
            "missing required field \"include\"",
        );
    }
    let regexp = match e.match_type.as_str() {
        "" | "strict" => false,
        "regexp" => true,
        other => {
            errors.push(
                format!("{at}.match_type"),
                with_hint(
                    format!("{other:?} is not a valid match_type (strict, regexp)"),
                    other,
                    ["strict", "regexp"],
                ),
            );
            false
        }
    };
    let name = if regexp {
        match Regex::new(include) {
            Ok(r) => NameMatch::Regexp(r),
            Err(err) => {
                errors.push(
                    format!("{at}.include"),
                    format!("invalid regex {include:?}: {err}"),
                );
                NameMatch::Strict(String::new())
            }
        }
    } else {
        NameMatch::Strict(include.clone())
    };
    let mut labels = Vec::new();
    for (k, v) in &e.experimental_match_labels {
        if regexp {
            match Regex::new(v) {
                Ok(r) => labels.push((k.clone(), LabelMatch::Regexp(r))),
                Err(err) => errors.push(
                    format!("{at}.experimental_match_labels.{k}"),
                    format!("invalid regex {v:?}: {err}"),
                ),
            }
        } else {
            labels.push((k.clone(), LabelMatch::Strict(v.clone())));
        }
    }
    let mut combine = None;
    let mut group = None;
    let insert = match e.action.as_str() {
        "update" => false,
        "combine" => {
            combine = Some(match e.aggregation_type.as_str() {
                "" => Merge::Keep,
                "sum" => Merge::Sum,
                "mean" => Merge::Mean,
                "min" => Merge::Min,
                "max" => Merge::Max,
                "count" => Merge::Count,
                "median" => Merge::Median,
                other => {
                    errors.push(
                        format!("{at}.aggregation_type"),
                        format!(
                            "{other:?} is not a valid aggregation_type (sum, mean, min, max, count, median)"
                        ),
                    );
                    Merge::Keep
                }
            });
            false
        }
        "insert" => {
            if e.new_name.is_empty() {
                errors.push(
                    format!("{at}.new_name"),
                    "missing required field \"new_name\" while \"action\" is insert",
                );
            }
            true
        }
        "group" => {
            match &e.group_resource_labels {
                Some(labels) => {
                    group = Some(labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                }
                None => errors.push(
                    format!("{at}.group_resource_labels"),
                    "missing required field \"group_resource_labels\" while \"action\" is group",
                ),
            }
            false
        }
        "" => {
            errors.push(format!("{at}.action"), "missing required field \"action\"");
            false
        }
        other => {
            errors.push(
                format!("{at}.action"),
                with_hint(
                    format!("{other:?} is not a valid action (update, insert, combine, group)"),
                    other,
                    ACTIONS,
                ),
            );
            false
        }
    };
    if e.group_resource_labels.is_some() && e.action != "group" {
        errors.push(
            format!("{at}.group_resource_labels"),
            "only used by action \"group\"",
        );
    }
    if !e.aggregation_type.is_empty() && e.action != "combine" {
        errors.push(
            format!("{at}.aggregation_type"),
            "only used by action \"combine\"",
        );
    }
    let upper = match e.submatch_case.as_str() {
        "" => None,
        "lower" => Some(false),
        "upper" => Some(true),
        other => {
            errors.push(
                format!("{at}.submatch_case"),
                format!("{other:?} is not a valid submatch_case (lower, upper)"),
            );
            None
        }
    };
    let mut ops = Vec::new();
    for (j, o) in e.operations.iter().enumerate() {
        let oat = format!("{at}.operations[{j}]");
        let need = |errors: &mut ConfigErrors, field: &str, empty: bool| {
            if empty {
                errors.push(
                    format!("{oat}.{field}"),
                    format!(
                        "missing required field {field:?} while \"action\" is {:?}",
                        o.action
                    ),
                );
            }
        };
        let op = match o.action.as_str() {
            "add_label" => {
                need(errors, "new_label", o.new_label.is_empty());
                need(errors, "new_value", o.new_value.is_empty());
                Op::AddLabel(o.new_label.clone(), o.new_value.clone())
            }
            "update_label" => {
                need(errors, "label", o.label.is_empty());
                let new_label = (!o.new_label.is_empty()).then(|| o.new_label.clone());
                let values = o
                    .value_actions
                    .iter()
                    .map(|v| (v.value.clone(), v.new_value.clone()))
                    .collect();
                Op::UpdateLabel(o.label.clone(), new_label, values)
            }
            "delete_label_value" => {
                need(errors, "label", o.label.is_empty());
                need(errors, "label_value", o.label_value.is_empty());
                Op::DeleteLabelValue(o.label.clone(), o.label_value.clone())
            }
            "toggle_scalar_data_type" => Op::Toggle,
            "scale_value" => match o.experimental_scale {
                Some(f) => Op::Scale(f),
                None => {
                    need(errors, "experimental_scale", true);
                    continue;
                }
            },
            "aggregate_labels" => {
                need(errors, "label_set", o.label_set.is_empty());
                match agg(&o.aggregation_type, &oat, errors) {
                    Some(a) => Op::AggregateLabels(o.label_set.clone(), a),
                    None => continue,
                }
            }
            "aggregate_label_values" => {
                need(errors, "label", o.label.is_empty());
                need(errors, "aggregated_values", o.aggregated_values.is_empty());
                need(errors, "new_value", o.new_value.is_empty());
                match agg(&o.aggregation_type, &oat, errors) {
                    Some(a) => Op::AggregateLabelValues(
                        o.label.clone(),
                        o.aggregated_values.clone(),
                        o.new_value.clone(),
                        a,
                    ),
                    None => continue,
                }
            }
            other => {
                errors.push(
                    format!("{oat}.action"),
                    with_hint(
                        format!(
                            "{other:?} is not a valid operation action ({})",
                            OPS.join(", ")
                        ),
                        other,
                        OPS,
                    ),
                );
                continue;
            }
        };
        ops.push(op);
    }
    (errors.0.len() == before).then(|| Transform {
        name,
        labels,
        insert,
        combine,
        group,
        new_name: e.new_name.clone(),
        upper,
        ops,
    })
}

/// Parses and validates the section at `path`, reporting every problem.
pub fn parse(value: &serde_json::Value, path: &str) -> Result<Vec<Transform>, ConfigErrors> {
    let cfg: MetricsTransformConfig = parse_component_config(value, path)?;
    let mut errors = ConfigErrors::default();
    let mut out = Vec::new();
    for (i, raw) in cfg.transforms.iter().enumerate() {
        let at = format!("{path}.transforms[{i}]");
        match parse_component_config::<TransformEntry>(raw, &at) {
            Ok(e) => {
                if let Some(t) = compile_entry(&e, &at, &mut errors) {
                    out.push(t);
                }
            }
            Err(e) => errors.0.extend(e.0),
        }
    }
    errors.into_result(out)
}

impl Transform {
    /// The new name for `name` when it matches, `None` when it does not.
    fn matches(&self, name: &str) -> Option<String> {
        match &self.name {
            NameMatch::Strict(s) => (s == name).then(|| {
                if self.new_name.is_empty() {
                    name.to_string()
                } else {
                    self.new_name.clone()
                }
            }),
            NameMatch::Regexp(re) => {
                let caps = re.captures(name)?;
                if self.new_name.is_empty() {
                    return Some(name.to_string());
                }
                // `$1` / `${1}` / `${name}`: each group, in the submatch case when set.
                static TEMPLATE: OnceLock<Option<Regex>> = OnceLock::new();
                let template = TEMPLATE
                    .get_or_init(|| Regex::new(r"\$(\d+|\{\w+\})").ok())
                    .as_ref()?;
                Some(
                    template
                        .replace_all(&self.new_name, |m: &regex::Captures<'_>| {
                            let key = m[1].trim_start_matches('{').trim_end_matches('}');
                            let text = match key.parse::<usize>() {
                                Ok(n) => caps.get(n).map_or("", |x| x.as_str()),
                                Err(_) => caps.name(key).map_or("", |x| x.as_str()),
                            };
                            match self.upper {
                                Some(true) => text.to_uppercase(),
                                Some(false) => text.to_lowercase(),
                                None => text.to_string(),
                            }
                        })
                        .into_owned(),
                )
            }
        }
    }

    fn point_selected(&self, attrs: &[KeyValue]) -> bool {
        self.labels.iter().all(|(k, m)| {
            let v = attrs.iter().find(|kv| kv.key == *k);
            let s = v.map(|kv| any_as_string(kv.value.as_ref()));
            match (m, s) {
                // An absent label reads as "" (the Collector's matchAttrs).
                (LabelMatch::Strict(want), None) => want.is_empty(),
                (LabelMatch::Regexp(re), None) => re.is_match(""),
                (LabelMatch::Strict(want), Some(s)) => *want == s,
                (LabelMatch::Regexp(re), Some(s)) => re.is_match(&s),
            }
        })
    }
}

fn str_any(s: &str) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::StringValue(s.to_string())),
    }
}

fn all_point_attrs(m: &mut Metric, mut f: impl FnMut(&mut Vec<KeyValue>)) {
    match &mut m.data {
        Some(Data::Gauge(g)) => g.data_points.iter_mut().for_each(|p| f(&mut p.attributes)),
        Some(Data::Sum(s)) => s.data_points.iter_mut().for_each(|p| f(&mut p.attributes)),
        Some(Data::Histogram(h)) => h.data_points.iter_mut().for_each(|p| f(&mut p.attributes)),
        Some(Data::ExponentialHistogram(h)) => {
            h.data_points.iter_mut().for_each(|p| f(&mut p.attributes))
        }
        Some(Data::Summary(s)) => s.data_points.iter_mut().for_each(|p| f(&mut p.attributes)),
        None => {}
    }
}

fn number_points(m: &mut Metric) -> Option<&mut Vec<NumberDataPoint>> {
    match &mut m.data {
        Some(Data::Gauge(g)) => Some(&mut g.data_points),
        Some(Data::Sum(s)) => Some(&mut s.data_points),
        _ => None,
    }
}

fn value_f64(p: &NumberDataPoint) -> f64 {
    match p.value {
        Some(number_data_point::Value::AsInt(i)) => i as f64,
        Some(number_data_point::Value::AsDouble(d)) => d,
        None => 0.0,
    }
}

/// Merges points with equal attribute sets (after `relabel`), in first-seen order.
fn aggregate(points: &mut Vec<NumberDataPoint>, agg: Agg) {
    let mut groups: Vec<(Vec<String>, NumberDataPoint, usize)> = Vec::new();
    for p in points.drain(..) {
        let mut key: Vec<String> = p
            .attributes
            .iter()
            .map(|kv| format!("{}={}", kv.key, any_as_string(kv.value.as_ref())))
            .collect();
        key.sort();
        match groups.iter_mut().find(|(k, _, _)| *k == key) {
            Some((_, acc, n)) => {
                *n += 1;
                let is_int = matches!(acc.value, Some(number_data_point::Value::AsInt(_)))
                    && matches!(p.value, Some(number_data_point::Value::AsInt(_)));
                let (a, b) = (value_f64(acc), value_f64(&p));
                let v = match agg {
                    Agg::Sum | Agg::Mean => a + b,
                    Agg::Min => a.min(b),
                    Agg::Max => a.max(b),
                };
                acc.value = Some(if is_int {
                    number_data_point::Value::AsInt(v as i64)
                } else {
                    number_data_point::Value::AsDouble(v)
                });
                acc.start_time_unix_nano = acc.start_time_unix_nano.min(p.start_time_unix_nano);
                acc.time_unix_nano = acc.time_unix_nano.max(p.time_unix_nano);
            }
            None => groups.push((key, p, 1)),
        }
    }
    for (_, mut p, n) in groups {
        if agg == Agg::Mean && n > 1 {
            let mean = value_f64(&p) / n as f64;
            p.value = Some(match p.value {
                Some(number_data_point::Value::AsInt(_)) => {
                    number_data_point::Value::AsInt(mean as i64)
                }
                _ => number_data_point::Value::AsDouble(mean),
            });
        }
        points.push(p);
    }
}

fn apply_ops(t: &Transform, m: &mut Metric) {
    for op in &t.ops {
        match op {
            Op::AddLabel(k, v) => all_point_attrs(m, |a| {
                if !a.iter().any(|kv| kv.key == *k) {
                    a.push(KeyValue {
                        key: k.clone(),
                        value: Some(str_any(v)),
                        ..Default::default()
                    });
                }
            }),
            Op::UpdateLabel(label, new_label, values) => all_point_attrs(m, |a| {
                if !t.point_selected(a) {
                    return;
                }
                let Some(kv) = a.iter_mut().find(|kv| kv.key == *label) else {
                    return;
                };
                let old = any_as_string(kv.value.as_ref());
                if let Some(n) = new_label {
                    kv.key = n.clone();
                }
                if let Some((_, nv)) = values.iter().find(|(v, _)| *v == old) {
                    kv.value = Some(str_any(nv));
                }
                if let Some(n) = new_label {
                    // A label already named like the new one is replaced, as pdata's Put does.
                    let mut seen = false;
                    a.retain(|x| {
                        if x.key != *n {
                            return true;
                        }
                        let keep = !seen;
                        seen = true;
                        keep
                    });
                }
            }),
            Op::DeleteLabelValue(label, value) => {
                let drop = |a: &[KeyValue]| {
                    a.iter()
                        .any(|kv| kv.key == *label && any_as_string(kv.value.as_ref()) == *value)
                };
                match &mut m.data {
                    Some(Data::Gauge(g)) => g.data_points.retain(|p| !drop(&p.attributes)),
                    Some(Data::Sum(s)) => s.data_points.retain(|p| !drop(&p.attributes)),
                    Some(Data::Histogram(h)) => h.data_points.retain(|p| !drop(&p.attributes)),
                    Some(Data::ExponentialHistogram(h)) => {
                        h.data_points.retain(|p| !drop(&p.attributes))
                    }
                    Some(Data::Summary(s)) => s.data_points.retain(|p| !drop(&p.attributes)),
                    None => {}
                }
            }
            Op::Toggle => {
                if let Some(points) = number_points(m) {
                    for p in points.iter_mut() {
                        p.value = match p.value {
                            Some(number_data_point::Value::AsInt(i)) => {
                                Some(number_data_point::Value::AsDouble(i as f64))
                            }
                            Some(number_data_point::Value::AsDouble(d)) => {
                                Some(number_data_point::Value::AsInt(d as i64))
                            }
                            None => None,
                        };
                    }
                }
            }
            Op::Scale(f) => {
                let sel: Vec<bool> = number_points(m)
                    .map(|ps| ps.iter().map(|p| t.point_selected(&p.attributes)).collect())
                    .unwrap_or_default();
                if let Some(points) = number_points(m) {
                    for (p, on) in points.iter_mut().zip(sel) {
                        if !on {
                            continue;
                        }
                        p.value = match p.value {
                            Some(number_data_point::Value::AsInt(i)) => {
                                Some(number_data_point::Value::AsInt((i as f64 * f) as i64))
                            }
                            Some(number_data_point::Value::AsDouble(d)) => {
                                Some(number_data_point::Value::AsDouble(d * f))
                            }
                            None => None,
                        };
                    }
                }
            }
            Op::AggregateLabels(keep, a) => {
                if let Some(points) = number_points(m) {
                    for p in points.iter_mut() {
                        p.attributes.retain(|kv| keep.contains(&kv.key));
                    }
                    aggregate(points, *a);
                }
            }
            Op::AggregateLabelValues(label, values, new_value, a) => {
                if let Some(points) = number_points(m) {
                    for p in points.iter_mut() {
                        for kv in p.attributes.iter_mut() {
                            if kv.key == *label
                                && values.contains(&any_as_string(kv.value.as_ref()))
                            {
                                kv.value = Some(str_any(new_value));
                            }
                        }
                    }
                    aggregate(points, *a);
                }
            }
        }
    }
}

/// One `group` transform's result for a scope: the labels for the new resource and the
/// metrics taken out of the scope (possibly none: the Collector still adds the resource).
pub type Grouped = (Vec<(String, String)>, Vec<Metric>);

/// Applies `transforms` to one scope's metrics: `update` in place, `insert` appends a
/// changed copy (matched against the metrics as they arrived), `combine` merges, `group`
/// takes the matching metrics out (returned, one entry per group transform, in order).
pub fn apply(transforms: &[Transform], metrics: &mut Vec<Metric>) -> Vec<Grouped> {
    let mut grouped = Vec::new();
    for t in transforms {
        if let Some(merge) = t.combine {
            combine(t, merge, metrics);
            continue;
        }
        if let Some(labels) = &t.group {
            grouped.push((labels.clone(), extract(t, metrics)));
            continue;
        }
        let n = metrics.len();
        for i in 0..n {
            let Some(new_name) = t.matches(&metrics[i].name) else {
                continue;
            };
            if t.insert {
                let mut copy = metrics[i].clone();
                copy.name = new_name;
                apply_ops(t, &mut copy);
                metrics.push(copy);
            } else {
                metrics[i].name = new_name;
                apply_ops(t, &mut metrics[i]);
            }
        }
    }
    grouped
}

/// Takes out the metrics whose name matches and that have a point matching the labels (or
/// no points), keeping only their matching points, as the Collector's group does.
fn extract(t: &Transform, metrics: &mut Vec<Metric>) -> Vec<Metric> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < metrics.len() {
        let m = &metrics[i];
        let attrs = point_attrs(m);
        let hit = t.matches(&m.name).is_some()
            && (attrs.is_empty() || attrs.iter().any(|a| t.point_selected(a)));
        if !hit {
            i += 1;
            continue;
        }
        let mut m = metrics.remove(i);
        let keep = |a: &[KeyValue]| t.point_selected(a);
        match &mut m.data {
            Some(Data::Gauge(g)) => g.data_points.retain(|p| keep(&p.attributes)),
            Some(Data::Sum(s)) => s.data_points.retain(|p| keep(&p.attributes)),
            Some(Data::Histogram(h)) => h.data_points.retain(|p| keep(&p.attributes)),
            Some(Data::ExponentialHistogram(h)) => h.data_points.retain(|p| keep(&p.attributes)),
            Some(Data::Summary(s)) => s.data_points.retain(|p| keep(&p.attributes)),
            None => {}
        }
        out.push(m);
    }
    out
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

/// The attributes of every point of a metric.
fn point_attrs(m: &Metric) -> Vec<&[KeyValue]> {
    match &m.data {
        Some(Data::Gauge(g)) => g.data_points.iter().map(|p| &p.attributes[..]).collect(),
        Some(Data::Sum(s)) => s.data_points.iter().map(|p| &p.attributes[..]).collect(),
        Some(Data::Histogram(h)) => h.data_points.iter().map(|p| &p.attributes[..]).collect(),
        Some(Data::ExponentialHistogram(h)) => {
            h.data_points.iter().map(|p| &p.attributes[..]).collect()
        }
        Some(Data::Summary(s)) => s.data_points.iter().map(|p| &p.attributes[..]).collect(),
        None => Vec::new(),
    }
}

/// Why metrics cannot be combined (the Collector's checks), or `None`.
fn combine_problem(ms: &[&Metric]) -> Option<String> {
    use std::collections::BTreeSet;
    let keys = |m: &Metric| -> BTreeSet<String> {
        point_attrs(m)
            .into_iter()
            .flat_map(|a| a.iter().map(|kv| kv.key.clone()))
            .collect()
    };
    let first = ms.first()?;
    for m in ms {
        match &m.data {
            Some(Data::Summary(_)) => {
                return Some(format!("summary metric {} cannot be combined", m.name))
            }
            // Weir merges number points only.
            Some(Data::Histogram(_) | Data::ExponentialHistogram(_)) => {
                return Some(format!(
                    "histogram metric {} is not combined by Weir",
                    m.name
                ))
            }
            _ => {}
        }
        let same_type = match (&first.data, &m.data) {
            (Some(Data::Gauge(_)), Some(Data::Gauge(_))) => true,
            (Some(Data::Sum(a)), Some(Data::Sum(b))) => {
                a.aggregation_temporality == b.aggregation_temporality
                    && a.is_monotonic == b.is_monotonic
            }
            (None, None) => true,
            _ => false,
        };
        if !same_type || first.unit != m.unit || keys(first) != keys(m) {
            return Some(format!(
                "metrics {} and {} differ in type, temporality, monotonicity, unit or attributes",
                first.name, m.name
            ));
        }
    }
    None
}

/// `combine`: the matching metrics (their matching points) become one metric named
/// `new_name`, with the name's regexp groups as labels and points of equal labels and
/// times merged, as in the Collector. Metrics that cannot be combined are left as they are.
fn combine(t: &Transform, merge: Merge, metrics: &mut Vec<Metric>) {
    let matched: Vec<usize> = (0..metrics.len())
        .filter(|&i| {
            let m = &metrics[i];
            t.matches(&m.name).is_some() && {
                let attrs = point_attrs(m);
                attrs.is_empty() || attrs.iter().any(|a| t.point_selected(a))
            }
        })
        .collect();
    if matched.is_empty() {
        return;
    }
    let refs: Vec<&Metric> = matched.iter().map(|&i| &metrics[i]).collect();
    if combine_problem(&refs).is_some() {
        return;
    }
    // Take the matching points out.
    let mut taken: Vec<(String, Vec<NumberDataPoint>)> = Vec::new();
    for &i in &matched {
        let m = &mut metrics[i];
        let name = m.name.clone();
        let Some(points) = number_points(m) else {
            taken.push((name, Vec::new()));
            continue;
        };
        let (pick, keep): (Vec<_>, Vec<_>) = points
            .drain(..)
            .partition(|p| t.point_selected(&p.attributes));
        *points = keep;
        taken.push((name, pick));
    }
    let first = metrics[matched[0]].clone();
    // The Collector removes every matched metric, dropping its points that did not match.
    for &i in matched.iter().rev() {
        metrics.remove(i);
    }

    let mut combined = Metric {
        name: t.matches(&t.new_name).unwrap_or_else(|| t.new_name.clone()),
        description: first.description.clone(),
        unit: first.unit.clone(),
        data: first.data.clone(),
        ..Default::default()
    };
    let delta = matches!(&first.data, Some(Data::Sum(s)) if s.aggregation_temporality == 1);
    let mut all = Vec::new();
    for (name, mut points) in taken {
        if let NameMatch::Regexp(re) = &t.name {
            if let Some(caps) = re.captures(&name) {
                let names: Vec<Option<&str>> = re.capture_names().collect();
                for (g, label) in names.iter().enumerate().skip(1) {
                    let Some(text) = caps.get(g).map(|x| x.as_str()) else {
                        continue;
                    };
                    let text = match t.upper {
                        Some(true) => text.to_uppercase(),
                        Some(false) => text.to_lowercase(),
                        None => text.to_string(),
                    };
                    if text.is_empty() {
                        continue;
                    }
                    let key = label.map_or_else(|| format!("${g}"), str::to_string);
                    for p in &mut points {
                        match p.attributes.iter_mut().find(|kv| kv.key == key) {
                            Some(kv) => kv.value = Some(str_any(&text)),
                            None => p.attributes.push(KeyValue {
                                key: key.clone(),
                                value: Some(str_any(&text)),
                                ..Default::default()
                            }),
                        }
                    }
                }
            }
        }
        all.extend(points);
    }
    let merged = merge_points(all, merge, delta);
    let was_empty = merged.is_empty();
    if let Some(points) = number_points(&mut combined) {
        *points = merged;
    }
    apply_ops(t, &mut combined);
    if was_empty || number_points(&mut combined).is_some_and(|p| !p.is_empty()) {
        metrics.push(combined);
    }
}

/// Groups points by labels and time (and start time for delta sums), then merges each
/// group into its first point as the Collector's aggregateutil does: the first point's
/// value type is kept, the earliest start time wins.
fn merge_points(points: Vec<NumberDataPoint>, merge: Merge, delta: bool) -> Vec<NumberDataPoint> {
    let mut groups: Vec<(Vec<String>, u64, u64, Vec<NumberDataPoint>)> = Vec::new();
    for p in points {
        let mut key: Vec<String> = p
            .attributes
            .iter()
            .map(|kv| format!("{}={}", kv.key, any_as_string(kv.value.as_ref())))
            .collect();
        key.sort();
        let start = if delta { p.start_time_unix_nano } else { 0 };
        match groups
            .iter_mut()
            .find(|(k, t, s, _)| *k == key && *t == p.time_unix_nano && *s == start)
        {
            Some((_, _, _, g)) => g.push(p),
            None => groups.push((key, p.time_unix_nano, start, vec![p])),
        }
    }
    groups
        .into_iter()
        .map(|(_, _, _, g)| merge_group(g, merge))
        .collect()
}

fn merge_group(group: Vec<NumberDataPoint>, merge: Merge) -> NumberDataPoint {
    let n = group.len();
    let mut it = group.into_iter();
    let mut dp = it.next().expect("a group has a point");
    let rest: Vec<NumberDataPoint> = it.collect();
    for p in &rest {
        dp.start_time_unix_nano = dp.start_time_unix_nano.min(p.start_time_unix_nano);
    }
    match dp.value {
        Some(number_data_point::Value::AsInt(first)) => {
            // A double point read as an int: its int field (0) for sums, truncated otherwise.
            let int_field = |p: &NumberDataPoint| match p.value {
                Some(number_data_point::Value::AsInt(i)) => i,
                _ => 0,
            };
            let truncated = |p: &NumberDataPoint| match p.value {
                Some(number_data_point::Value::AsInt(i)) => i,
                Some(number_data_point::Value::AsDouble(d)) => d as i64,
                None => 0,
            };
            let v = match merge {
                Merge::Keep => first,
                Merge::Sum => rest.iter().fold(first, |a, p| a.wrapping_add(int_field(p))),
                Merge::Mean => {
                    rest.iter().fold(first, |a, p| a.wrapping_add(int_field(p))) / n as i64
                }
                Merge::Min => rest.iter().map(truncated).fold(first, i64::min),
                Merge::Max => rest.iter().map(truncated).fold(first, i64::max),
                Merge::Count => {
                    if rest.is_empty() {
                        first
                    } else {
                        n as i64
                    }
                }
                Merge::Median => {
                    let mut all: Vec<i64> = std::iter::once(first)
                        .chain(rest.iter().map(truncated))
                        .collect();
                    all.sort_unstable();
                    let mid = all.len() / 2;
                    if all.len() % 2 == 1 {
                        all[mid]
                    } else {
                        (all[mid - 1] + all[mid]) / 2
                    }
                }
            };
            dp.value = Some(number_data_point::Value::AsInt(v));
        }
        Some(number_data_point::Value::AsDouble(first)) => {
            let v = match merge {
                Merge::Keep => first,
                Merge::Sum => first + rest.iter().map(value_f64).sum::<f64>(),
                Merge::Mean => (first + rest.iter().map(value_f64).sum::<f64>()) / n as f64,
                Merge::Min => rest.iter().map(value_f64).fold(first, f64::min),
                Merge::Max => rest.iter().map(value_f64).fold(first, f64::max),
                Merge::Count => {
                    if rest.is_empty() {
                        first
                    } else {
                        n as f64
                    }
                }
                Merge::Median => {
                    let mut all: Vec<f64> = std::iter::once(first)
                        .chain(rest.iter().map(value_f64))
                        .collect();
                    all.sort_by(f64::total_cmp);
                    let mid = all.len() / 2;
                    if all.len() % 2 == 1 {
                        all[mid]
                    } else {
                        (all[mid - 1] + all[mid]) / 2.0
                    }
                }
            };
            dp.value = Some(number_data_point::Value::AsDouble(v));
        }
        None => {}
    }
    dp
}
