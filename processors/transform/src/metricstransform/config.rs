//! The processor's config as written: the Collector's `transforms:` entries and their
//! `operations:`, and their compilation into [`Transform`]s (match, action, operations),
//! naming the entry and field that is wrong.

use std::collections::BTreeMap;

use regex::Regex;
use serde::Deserialize;
use weir_api::{parse_component_config, ConfigErrors};
use weir_filter::ottl::with_hint;

use super::{Agg, LabelMatch, Merge, NameMatch, Op, Transform};

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

pub(super) fn agg(s: &str, at: &str, errors: &mut ConfigErrors) -> Option<Agg> {
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
