//! Metric findings: metrics that never change, and metrics with very many series (series
//! counted per metric and per data-point attribute key by mergeable distinct-count sketches
//! the edges ship), with the attribute that drives the series and the SDK's overflow marker.

use weir_summary::summary::ServiceSummary;

use crate::analysis::{metric_policy, short_hash, Candidate, Thresholds, WasteKind};
use crate::units::{ReadPart, Unit};

/// The attribute OpenTelemetry SDKs put on the data point that absorbs measurements past
/// their cardinality limit.
pub const OVERFLOW_ATTRIBUTE: &str = "otel.metric.overflow";

/// Adds the metric candidates of one service to `out`.
pub fn candidates(
    service: &str,
    s: &ServiceSummary,
    units: &[Unit],
    t: &Thresholds,
    out: &mut Vec<Candidate>,
) {
    // Counts are of the data points read; the bytes a drop saves are scaled up to all
    // data points when the edge counted some without reading them.
    let read = ReadPart::metrics(s);
    let points = if read.is_whole() {
        "data points"
    } else {
        "data points read"
    };
    for (name, m) in &s.metrics.metrics {
        let claims: Vec<bool> = units
            .iter()
            .map(|u| u.signal == "metrics" && &u.group == name)
            .collect();
        if m.volume.items >= t.min_items && m.constant.is_constant() {
            let id = format!("constant-metric-{}", short_hash(&[service, name]));
            out.push(Candidate {
                id: id.clone(),
                kind: WasteKind::ConstantMetric,
                signal: "metrics",
                title: format!("{service}: metric {name} never changes"),
                evidence: vec![format!("{} {points}, all the same value", m.volume.items)],
                policy: metric_policy(
                    &id,
                    &format!("Drop constant metric {name} from {service}"),
                    "Suggested by the Weir catalog: a metric that never changes carries no information.",
                    service,
                    name,
                ),
                claims,
                about_warn: false,
                removal: None,
            });
            continue;
        }
        let series = m.series.estimate();
        let overflow = m.attribute_keys.contains_key(OVERFLOW_ATTRIBUTE);
        if series < t.metric_series_min && !overflow {
            continue;
        }
        let dominant = m
            .attribute_keys
            .iter()
            .filter(|(k, _)| k.as_str() != OVERFLOW_ATTRIBUTE)
            .map(|(k, d)| (k, d.estimate()))
            .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(a.0)));
        let mut evidence = vec![format!(
            "~{series} series over {} {points} ({} bytes)",
            m.volume.items, m.volume.bytes
        )];
        let mut title = format!("{service}: metric {name} has ~{series} series");
        if let Some((key, distinct)) = dominant {
            evidence.push(format!(
                "attribute {key} has ~{distinct} distinct values: it drives {:.0}% of the series",
                100.0 * (distinct as f64 / series.max(1) as f64).min(1.0)
            ));
            if distinct * 2 >= series {
                title = format!("{title}, driven by attribute {key}");
            }
        }
        if overflow {
            evidence.push(format!("the SDK hit its cardinality limit: data points carry {OVERFLOW_ATTRIBUTE} (measurements past the limit are merged into one series)"));
            title = format!("{title} (SDK cardinality limit hit)");
        }
        evidence.push(if read.is_whole() {
            format!(
                "dropping the metric saves ~{series} series and {} bytes of data points in the window",
                m.volume.bytes
            )
        } else {
            format!(
                "dropping the metric saves ~{series} series and ~{:.0} bytes of data points in the window (estimated from the data points read)",
                m.volume.bytes as f64 * read.bytes_scale()
            )
        });
        if let Some((key, distinct)) = dominant {
            evidence.push(format!(
                "removing {key} at the source would leave about {} series",
                (series / distinct.max(1)).max(1)
            ));
        }
        evidence.push("the policy specification cannot remove a data-point attribute (metric policies have no transforms): remove the attribute in the instrumentation, or drop the metric with this policy".into());
        let id = format!("metric-cardinality-{}", short_hash(&[service, name]));
        out.push(Candidate {
            id: id.clone(),
            kind: WasteKind::MetricCardinality,
            signal: "metrics",
            title,
            evidence,
            policy: metric_policy(
                &id,
                &format!("Drop high-cardinality metric {name} from {service}"),
                "Suggested by the Weir catalog: one metric with very many series.",
                service,
                name,
            ),
            claims,
            about_warn: false,
            removal: None,
        });
    }
}
