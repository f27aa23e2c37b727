//! Applying transforms to a scope's metrics: name and label matching, `update`, `insert`
//! and `group`, and the label and value operations on every point.

use std::sync::OnceLock;

use regex::Regex;
use weir_api::otlp::common::v1::{any_value, AnyValue, KeyValue};
use weir_api::otlp::metrics::v1::metric::Data;
use weir_api::otlp::metrics::v1::{number_data_point, Metric, NumberDataPoint};
use weir_filter::ottl::value::any_as_string;

use super::combine::combine;
use super::{Agg, LabelMatch, NameMatch, Op, Transform};

impl Transform {
    /// The new name for `name` when it matches, `None` when it does not.
    pub(super) fn matches(&self, name: &str) -> Option<String> {
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

    pub(super) fn point_selected(&self, attrs: &[KeyValue]) -> bool {
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

pub(super) fn str_any(s: &str) -> AnyValue {
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

pub(super) fn number_points(m: &mut Metric) -> Option<&mut Vec<NumberDataPoint>> {
    match &mut m.data {
        Some(Data::Gauge(g)) => Some(&mut g.data_points),
        Some(Data::Sum(s)) => Some(&mut s.data_points),
        _ => None,
    }
}

pub(super) fn value_f64(p: &NumberDataPoint) -> f64 {
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

pub(super) fn apply_ops(t: &Transform, m: &mut Metric) {
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

/// The attributes of every point of a metric.
pub(super) fn point_attrs(m: &Metric) -> Vec<&[KeyValue]> {
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
