//! Writing the series store as a scrape answer: the Prometheus text format 0.0.4 and
//! OpenMetrics 1.0 (timestamps, escaping, `# HELP`/`# TYPE` lines, samples).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Instant;

use super::{Kind, Labels, Series, State, Value};
use crate::prom_naming::format_float;

impl State {
    /// The exposition, expiring what is too old first.
    pub(super) fn render(&self, open_metrics: bool) -> String {
        let now = Instant::now();
        let o = &self.options;
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let expiration = o.expiration;
        inner
            .series
            .retain(|_, s| now.duration_since(s.updated) < expiration);
        inner
            .families
            .retain(|_, f| now.duration_since(f.seen) < expiration);
        let mut by_family: BTreeMap<&str, Vec<&Series>> = BTreeMap::new();
        let mut targets: BTreeMap<(String, String), &Labels> = BTreeMap::new();
        for s in inner.series.values() {
            by_family.entry(&s.family).or_default().push(s);
            if let Some(t) = &s.target {
                let get = |n: &str| {
                    t.iter()
                        .find(|(k, _)| k == n)
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default()
                };
                targets.entry((get("job"), get("instance"))).or_insert(t);
            }
        }
        let mut out = String::with_capacity(4096);
        if !targets.is_empty() {
            let name = if o.namespace.is_empty() {
                "target_info".to_string()
            } else {
                format!("{}_target_info", o.namespace)
            };
            let _ = writeln!(out, "# HELP {name} Target metadata");
            let _ = writeln!(out, "# TYPE {name} gauge");
            for labels in targets.values() {
                write_sample(&mut out, &name, labels, None, "1", None);
            }
        }
        for (family, mut series) in by_family {
            series.sort_by(|a, b| a.labels.cmp(&b.labels));
            let Some(f) = inner.families.get(family) else {
                continue;
            };
            let meta_name = if open_metrics && f.kind == Kind::Counter {
                family.strip_suffix("_total").unwrap_or(family)
            } else {
                family
            };
            if !f.help.is_empty() {
                let _ = writeln!(out, "# HELP {meta_name} {}", escape_help(&f.help));
            }
            let _ = writeln!(out, "# TYPE {meta_name} {}", f.kind.as_str());
            for s in series {
                let ts = o.send_timestamps.then_some(s.time_ns);
                let ts = ts.map(|ns| timestamp(ns, open_metrics));
                let ts = ts.as_deref();
                let created = (open_metrics && s.start_ns > 0).then(|| seconds(s.start_ns));
                match &s.value {
                    Value::Number(v) => {
                        let name = if open_metrics && f.kind == Kind::Counter {
                            format!("{meta_name}_total")
                        } else {
                            family.to_string()
                        };
                        write_sample(&mut out, &name, &s.labels, None, &format_float(*v), ts);
                        if f.kind == Kind::Counter {
                            if let Some(c) = &created {
                                let n = format!("{meta_name}_created");
                                write_sample(&mut out, &n, &s.labels, None, c, ts);
                            }
                        }
                    }
                    Value::Histogram {
                        count,
                        sum,
                        bounds,
                        counts,
                    } => {
                        let bucket = format!("{family}_bucket");
                        let mut order: Vec<usize> = (0..bounds.len()).collect();
                        order.sort_by(|&a, &b| bounds[a].total_cmp(&bounds[b]));
                        order.dedup_by(|a, b| bounds[*a] == bounds[*b]);
                        let mut cumulative = 0u64;
                        for i in order {
                            if bounds[i].is_infinite() && bounds[i] > 0.0 {
                                continue;
                            }
                            cumulative += counts.get(i).copied().unwrap_or(0);
                            let le = format_float(bounds[i]);
                            write_sample(
                                &mut out,
                                &bucket,
                                &s.labels,
                                Some(("le", &le)),
                                &cumulative.to_string(),
                                ts,
                            );
                        }
                        write_sample(
                            &mut out,
                            &bucket,
                            &s.labels,
                            Some(("le", "+Inf")),
                            &count.to_string(),
                            ts,
                        );
                        let n = format!("{family}_sum");
                        write_sample(&mut out, &n, &s.labels, None, &format_float(*sum), ts);
                        let n = format!("{family}_count");
                        write_sample(&mut out, &n, &s.labels, None, &count.to_string(), ts);
                        if let Some(c) = &created {
                            let n = format!("{family}_created");
                            write_sample(&mut out, &n, &s.labels, None, c, ts);
                        }
                    }
                    Value::Summary {
                        count,
                        sum,
                        quantiles,
                    } => {
                        for (q, v) in quantiles {
                            let qs = format_float(*q);
                            write_sample(
                                &mut out,
                                family,
                                &s.labels,
                                Some(("quantile", &qs)),
                                &format_float(*v),
                                ts,
                            );
                        }
                        let n = format!("{family}_sum");
                        write_sample(&mut out, &n, &s.labels, None, &format_float(*sum), ts);
                        let n = format!("{family}_count");
                        write_sample(&mut out, &n, &s.labels, None, &count.to_string(), ts);
                        if let Some(c) = &created {
                            let n = format!("{family}_created");
                            write_sample(&mut out, &n, &s.labels, None, c, ts);
                        }
                    }
                }
            }
        }
        if open_metrics {
            out.push_str("# EOF\n");
        }
        out
    }
}

pub(super) fn timestamp(ns: u64, open_metrics: bool) -> String {
    if open_metrics {
        seconds(ns / 1_000_000 * 1_000_000)
    } else {
        (ns / 1_000_000).to_string()
    }
}

/// Nanoseconds as exact decimal seconds (`1700000000.25`), as OpenMetrics writes times; a
/// float conversion would round.
pub(super) fn seconds(ns: u64) -> String {
    let (secs, frac) = (ns / 1_000_000_000, ns % 1_000_000_000);
    if frac == 0 {
        return secs.to_string();
    }
    let digits = format!("{frac:09}");
    format!("{secs}.{}", digits.trim_end_matches('0'))
}

fn escape_help(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\n', "\\n")
}

fn escape_label_value(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn write_sample(
    out: &mut String,
    name: &str,
    labels: &[(String, String)],
    extra: Option<(&str, &str)>,
    value: &str,
    ts: Option<&str>,
) {
    out.push_str(name);
    if !labels.is_empty() || extra.is_some() {
        out.push('{');
        let mut first = true;
        for (k, v) in labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain(extra)
        {
            if !first {
                out.push(',');
            }
            first = false;
            out.push_str(k);
            out.push_str("=\"");
            escape_label_value(v, out);
            out.push('"');
        }
        out.push('}');
    }
    out.push(' ');
    out.push_str(value);
    if let Some(ts) = ts {
        out.push(' ');
        out.push_str(ts);
    }
    out.push('\n');
}
