//! The `combine` action: metrics matched by name become one metric whose points carry the
//! name's submatches as labels, after checking the metrics can be combined (same type,
//! unit and temporality), with points at the same labels merged.

use weir_api::otlp::common::v1::KeyValue;
use weir_api::otlp::metrics::v1::metric::Data;
use weir_api::otlp::metrics::v1::{number_data_point, Metric, NumberDataPoint};
use weir_filter::ottl::value::any_as_string;

use super::operations::{apply_ops, number_points, point_attrs, str_any, value_f64};
use super::{Merge, NameMatch, Transform};

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
pub(super) fn combine(t: &Transform, merge: Merge, metrics: &mut Vec<Metric>) {
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
