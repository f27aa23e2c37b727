//! Limits on a summary received from outside (an edge POSTing to the control plane), and
//! the check against them. Sketches are checked as they are read (see `sketch_wire`);
//! this checks everything else: how many services, templates, names and keys, how long
//! each name is, and that every count is at most [`SummaryLimits::max_count`].
//!
//! A summary either passes whole or is refused whole: the caller stores nothing of a
//! summary with a violation.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::summary::{
    AttributeSchemas, CatalogSummary, MergeCaps, ServiceSummary, Volume, MAX_KEYS_PER_ENTRY,
};

/// Limits on one summary (one ingest request). Defaults are several times what an edge
/// with the `metadata` defaults sends (2,000 templates and names, 256 keys, 1,000
/// services), so a real edge never meets them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SummaryLimits {
    /// Services in one summary. Default: 1000.
    pub max_services: usize,
    /// Log templates per service. Default: 5000.
    pub max_templates: usize,
    /// Span names, and metric names, per service. Default: 5000.
    pub max_names: usize,
    /// Attribute keys per service, signal and location. Default: 1000.
    pub max_attribute_keys: usize,
    /// Attribute keys listed per template, span name or metric. Default: 64.
    pub max_keys_per_entry: usize,
    /// Bytes of a service name, attribute key, span or metric name, unit or template id.
    /// Default: 1024.
    pub max_name_bytes: usize,
    /// Bytes of a template's text. Default: 16384.
    pub max_template_bytes: usize,
    /// Largest value of any count (items, bytes, severities, ...). Default: 2^53.
    pub max_count: u64,
}

impl Default for SummaryLimits {
    fn default() -> Self {
        SummaryLimits {
            max_services: 1000,
            max_templates: 5000,
            max_names: 5000,
            max_attribute_keys: 1000,
            max_keys_per_entry: MAX_KEYS_PER_ENTRY,
            max_name_bytes: 1024,
            max_template_bytes: 16 * 1024,
            max_count: 1 << 53,
        }
    }
}

impl SummaryLimits {
    /// The caps a stored catalog merges under: per service as many entries as twice one
    /// request may bring (so a service's entries stay bounded whatever edges send).
    pub fn store_caps(&self) -> MergeCaps {
        MergeCaps {
            services: usize::MAX,
            templates: self.max_templates.saturating_mul(2),
            names: self.max_names.saturating_mul(2),
            attribute_keys: self.max_attribute_keys.saturating_mul(2),
        }
    }
}

/// One limit a summary broke: where (a JSON path) and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct Violation {
    /// JSON path of the field, e.g. `services["api"].logs.templates["ab12"].template`.
    pub path: String,
    /// What is wrong, with the limit.
    pub message: String,
    /// A short label for metrics: `too_many`, `too_long`, `count`, `empty`, `invalid`.
    pub kind: &'static str,
}

/// Checks `summary` against `limits`; returns the first violations found (at most 20).
pub fn validate(summary: &CatalogSummary, limits: &SummaryLimits) -> Vec<Violation> {
    let mut c = Check {
        limits,
        out: Vec::new(),
    };
    if summary.sketch_key_id.len() > 64 {
        c.push(
            "sketch_key_id".into(),
            "too_long",
            format!("{} bytes, the limit is 64", summary.sketch_key_id.len()),
        );
    }
    c.count("evicted_templates", summary.evicted_templates);
    c.count("evicted_keys", summary.evicted_keys);
    c.len("services", summary.services.len(), limits.max_services);
    for (name, s) in &summary.services {
        if c.full() {
            break;
        }
        let at = format!("services[{}]", quote(name));
        c.name(&at, name, limits.max_name_bytes);
        c.service(&at, s);
    }
    c.out
}

/// A JSON-style quoted key, cut to 64 characters so a long name cannot flood a message.
/// 16 lower-case hex digits, as [`crate::summary::template_id`] writes them.
fn is_template_id(s: &str) -> bool {
    s.len() == 16
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn quote(s: &str) -> String {
    let cut: String = s.chars().take(64).collect();
    let more = if cut.len() < s.len() { "..." } else { "" };
    format!("{:?}", format!("{cut}{more}"))
}

struct Check<'a> {
    limits: &'a SummaryLimits,
    out: Vec<Violation>,
}

impl Check<'_> {
    fn full(&self) -> bool {
        self.out.len() >= 20
    }

    fn push(&mut self, path: String, kind: &'static str, message: String) {
        if !self.full() {
            self.out.push(Violation {
                path,
                message,
                kind,
            });
        }
    }

    fn count(&mut self, path: impl std::fmt::Display, n: u64) {
        if n > self.limits.max_count {
            self.push(
                path.to_string(),
                "count",
                format!("{n} is above the limit {}", self.limits.max_count),
            );
        }
    }

    fn len(&mut self, path: &str, n: usize, max: usize) {
        if n > max {
            self.push(
                path.to_string(),
                "too_many",
                format!("{n} entries, the limit is {max}"),
            );
        }
    }

    fn name(&mut self, path: &str, name: &str, max: usize) {
        if name.is_empty() {
            self.push(path.to_string(), "empty", "empty name".into());
        } else if name.len() > max {
            self.push(
                path.to_string(),
                "too_long",
                format!("{} bytes, the limit is {max}", name.len()),
            );
        }
    }

    /// With a part unsummarised, what the item-level entries (templates, span names, metric
    /// names) count is at most the part read, `volume - unsummarised`: a catalog scales
    /// their estimates by `volume / read`, so more would claim savings past the volume.
    fn entries_within_read(&mut self, at: &str, what: &str, volume: &Volume, u: &Volume, n: u64) {
        // Checked where estimates are scaled (a summary read whole is taken as before).
        let read = volume.items.saturating_sub(u.items);
        if !u.is_zero() && n > read {
            self.push(
                at.to_string(),
                "invalid",
                format!("{n} {what} counted in entries, more than the {read} read (volume - unsummarised)"),
            );
        }
    }

    /// `unsummarised` is a part of `volume`: never more items or bytes.
    fn unsummarised(&mut self, at: &str, volume: &Volume, u: &Volume) {
        self.volume(&format!("{at}.unsummarised"), u);
        if u.items > volume.items || u.bytes > volume.bytes {
            self.push(
                format!("{at}.unsummarised"),
                "invalid",
                format!(
                    "{} items / {} bytes, more than the {} items / {} bytes of {at}.volume",
                    u.items, u.bytes, volume.items, volume.bytes
                ),
            );
        }
    }

    fn volume(&mut self, at: &str, v: &Volume) {
        self.count(format_args!("{at}.items"), v.items);
        self.count(format_args!("{at}.bytes"), v.bytes);
    }

    fn counts<const N: usize>(&mut self, at: &str, fields: [(&str, u64); N]) {
        for (f, n) in fields {
            self.count(format_args!("{at}.{f}"), n);
        }
    }

    /// Severity classes: at most the cap plus the overflow class, each key as the metadata
    /// processor writes it (so no arbitrary severity text is stored).
    fn severity_classes(&mut self, at: &str, m: &BTreeMap<String, Volume>) {
        use crate::summary::{
            parse_severity_class, severity_class_key, MAX_SEVERITY_CLASSES, OVERFLOW_SEVERITY_CLASS,
        };
        self.len(at, m.len(), MAX_SEVERITY_CLASSES + 1);
        for (k, v) in m.iter().take(MAX_SEVERITY_CLASSES + 1) {
            let canonical = k == OVERFLOW_SEVERITY_CLASS
                || parse_severity_class(k).is_some_and(|(n, t)| severity_class_key(n, t) == *k);
            if !canonical {
                self.push(
                    format!("{at}[{}]", quote(k)),
                    "invalid",
                    "not a severity class (\"<number 0-24>|<severity word>\")".into(),
                );
            }
            self.volume(&format!("{at}[{}]", quote(k)), v);
        }
    }

    fn keys(&mut self, at: &str, keys: &BTreeSet<String>) {
        self.len(at, keys.len(), self.limits.max_keys_per_entry);
        for k in keys.iter().take(self.limits.max_keys_per_entry) {
            self.name(
                &format!("{at}[{}]", quote(k)),
                k,
                self.limits.max_name_bytes,
            );
        }
    }

    fn map<V>(&mut self, at: &str, map: &BTreeMap<String, V>, max: usize) -> bool {
        self.len(at, map.len(), max);
        for k in map.keys() {
            self.name(
                &format!("{at}[{}]", quote(k)),
                k,
                self.limits.max_name_bytes,
            );
            if self.full() {
                break;
            }
        }
        map.len() <= max && !self.full()
    }

    fn attributes(&mut self, at: &str, a: &AttributeSchemas) {
        for (loc, map) in [("resource", &a.resource), ("item", &a.item)] {
            let at = format!("{at}.{loc}");
            if !self.map(&at, map, self.limits.max_attribute_keys) {
                continue;
            }
            for (k, s) in map {
                let at = format!("{at}[{}]", quote(k));
                let t = &s.types;
                self.counts(
                    &at,
                    [
                        ("items", s.items),
                        ("bytes", s.bytes),
                        ("types.string", t.string),
                        ("types.bool", t.bool),
                        ("types.int", t.int),
                        ("types.double", t.double),
                        ("types.array", t.array),
                        ("types.kvlist", t.kvlist),
                        ("types.bytes", t.bytes),
                        ("types.empty", t.empty),
                    ],
                );
            }
        }
    }

    fn severity(&mut self, at: &str, m: &crate::summary::SeverityMix) {
        self.counts(
            at,
            [
                ("trace", m.trace),
                ("debug", m.debug),
                ("info", m.info),
                ("warn", m.warn),
                ("error", m.error),
                ("fatal", m.fatal),
                ("unspecified", m.unspecified),
            ],
        );
    }

    fn service(&mut self, at: &str, s: &ServiceSummary) {
        let l = &s.logs;
        let lat = format!("{at}.logs");
        self.volume(&format!("{lat}.volume"), &l.volume);
        self.unsummarised(&lat, &l.volume, &l.unsummarised);
        let n = l
            .templates
            .values()
            .fold(0u64, |a, t| a.saturating_add(t.count));
        self.entries_within_read(
            &format!("{lat}.templates"),
            "records",
            &l.volume,
            &l.unsummarised,
            n,
        );
        self.severity(&format!("{lat}.severity"), &l.severity);
        self.attributes(&format!("{lat}.attributes"), &l.attributes);
        let tat = format!("{lat}.templates");
        if self.map(&tat, &l.templates, self.limits.max_templates) {
            for (id, t) in &l.templates {
                let at = format!("{tat}[{}]", quote(id));
                if t.template.len() > self.limits.max_template_bytes {
                    self.push(
                        format!("{at}.template"),
                        "too_long",
                        format!(
                            "{} bytes, the limit is {}",
                            t.template.len(),
                            self.limits.max_template_bytes
                        ),
                    );
                }
                self.counts(
                    &at,
                    [
                        ("count", t.count),
                        ("bytes", t.bytes),
                        ("duplicates", t.duplicates),
                        ("peak_per_second", t.peak_per_second),
                    ],
                );
                self.severity(&format!("{at}.severity"), &t.severity);
                self.keys(&format!("{at}.attribute_keys"), &t.attribute_keys);
                self.severity_classes(&format!("{at}.severities"), &t.severities);
            }
        }
        let rat = format!("{lat}.retired");
        self.len(&rat, l.retired.len(), self.limits.max_templates);
        for (old, new) in l.retired.iter().take(self.limits.max_templates) {
            if !is_template_id(old) || !is_template_id(new) {
                self.push(
                    format!("{rat}[{}]", quote(old)),
                    "invalid",
                    "a retired template id and the id it merged into are 16 hex digits".into(),
                );
            }
            if self.full() {
                break;
            }
        }

        let tr = &s.traces;
        let trat = format!("{at}.traces");
        self.volume(&format!("{trat}.volume"), &tr.volume);
        self.unsummarised(&trat, &tr.volume, &tr.unsummarised);
        let n = tr
            .spans
            .values()
            .fold(0u64, |a, x| a.saturating_add(x.volume.items));
        self.entries_within_read(
            &format!("{trat}.spans"),
            "spans",
            &tr.volume,
            &tr.unsummarised,
            n,
        );
        self.attributes(&format!("{trat}.attributes"), &tr.attributes);
        let sat = format!("{trat}.spans");
        if self.map(&sat, &tr.spans, self.limits.max_names) {
            for (name, sp) in &tr.spans {
                let at = format!("{sat}[{}]", quote(name));
                self.volume(&format!("{at}.volume"), &sp.volume);
                let (k, st) = (&sp.kinds, &sp.status);
                self.counts(
                    &at,
                    [
                        ("kinds.unspecified", k.unspecified),
                        ("kinds.internal", k.internal),
                        ("kinds.server", k.server),
                        ("kinds.client", k.client),
                        ("kinds.producer", k.producer),
                        ("kinds.consumer", k.consumer),
                        ("status.unset", st.unset),
                        ("status.ok", st.ok),
                        ("status.error", st.error),
                        ("roots", sp.roots),
                        ("childless_in_batch", sp.childless_in_batch),
                    ],
                );
                self.keys(&format!("{at}.attribute_keys"), &sp.attribute_keys);
            }
        }

        let m = &s.metrics;
        let mat = format!("{at}.metrics");
        self.volume(&format!("{mat}.volume"), &m.volume);
        self.unsummarised(&mat, &m.volume, &m.unsummarised);
        let n = m
            .metrics
            .values()
            .fold(0u64, |a, x| a.saturating_add(x.volume.items));
        self.entries_within_read(
            &format!("{mat}.metrics"),
            "data points",
            &m.volume,
            &m.unsummarised,
            n,
        );
        self.attributes(&format!("{mat}.attributes"), &m.attributes);
        let nat = format!("{mat}.metrics");
        if self.map(&nat, &m.metrics, self.limits.max_names) {
            for (name, ms) in &m.metrics {
                let at = format!("{nat}[{}]", quote(name));
                self.volume(&format!("{at}.volume"), &ms.volume);
                if ms.unit.len() > self.limits.max_name_bytes {
                    self.push(
                        format!("{at}.unit"),
                        "too_long",
                        format!(
                            "{} bytes, the limit is {}",
                            ms.unit.len(),
                            self.limits.max_name_bytes
                        ),
                    );
                }
                let kat = format!("{at}.attribute_keys");
                self.map(&kat, &ms.attribute_keys, self.limits.max_keys_per_entry);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summary::TemplateSummary;

    fn one(service: &str) -> CatalogSummary {
        let mut s = CatalogSummary::default();
        s.services.insert(service.into(), ServiceSummary::default());
        s
    }

    #[test]
    fn a_summary_an_edge_sends_passes() {
        let mut s = one("checkout");
        let svc = s.services.get_mut("checkout").unwrap();
        svc.logs.volume = Volume {
            items: 10,
            bytes: 1000,
        };
        svc.logs.templates.insert(
            "00ff".into(),
            TemplateSummary {
                template: "user <*> logged in".into(),
                count: 10,
                ..Default::default()
            },
        );
        assert_eq!(validate(&s, &SummaryLimits::default()), []);
    }

    #[test]
    fn unsummarised_is_a_part_of_the_volume() {
        let mut s = one("checkout");
        let svc = s.services.get_mut("checkout").unwrap();
        svc.traces.volume = Volume {
            items: 10,
            bytes: 1000,
        };
        svc.traces.unsummarised = Volume {
            items: 10,
            bytes: 1000,
        };
        assert_eq!(validate(&s, &SummaryLimits::default()), []);
        let svc = s.services.get_mut("checkout").unwrap();
        svc.traces.unsummarised.items = 11;
        svc.metrics.unsummarised.bytes = 1;
        let v = validate(&s, &SummaryLimits::default());
        let got: Vec<_> = v
            .iter()
            .map(|v| (v.path.as_str(), v.message.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "services[\"checkout\"].traces.unsummarised",
                    "11 items / 1000 bytes, more than the 10 items / 1000 bytes of \
                     services[\"checkout\"].traces.volume"
                ),
                (
                    "services[\"checkout\"].metrics.unsummarised",
                    "0 items / 1 bytes, more than the 0 items / 0 bytes of \
                     services[\"checkout\"].metrics.volume"
                ),
            ]
        );
    }

    #[test]
    fn entries_count_at_most_what_was_read() {
        let mut s = one("checkout");
        let logs = &mut s.services.get_mut("checkout").unwrap().logs;
        logs.volume = Volume {
            items: 100,
            bytes: 1000,
        };
        logs.unsummarised = Volume {
            items: 90,
            bytes: 900,
        };
        logs.templates.insert(
            "00ff".into(),
            TemplateSummary {
                template: "user <*> logged in".into(),
                count: 10,
                ..Default::default()
            },
        );
        assert_eq!(validate(&s, &SummaryLimits::default()), []);
        let logs = &mut s.services.get_mut("checkout").unwrap().logs;
        logs.templates.get_mut("00ff").unwrap().count = 11;
        let v = validate(&s, &SummaryLimits::default());
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].path, "services[\"checkout\"].logs.templates");
        assert_eq!(
            v[0].message,
            "11 records counted in entries, more than the 10 read (volume - unsummarised)"
        );
    }

    #[test]
    fn each_limit_names_its_field() {
        let limits = SummaryLimits {
            max_services: 2,
            max_templates: 1,
            ..Default::default()
        };
        let mut s = one("a");
        s.services.insert("b".into(), ServiceSummary::default());
        s.services.insert("c".into(), ServiceSummary::default());
        let v = validate(&s, &limits);
        assert_eq!(v[0].path, "services");
        assert_eq!(v[0].message, "3 entries, the limit is 2");

        let mut s = one(&"x".repeat(2000));
        let v = validate(&s, &limits);
        assert!(v[0].path.starts_with("services[\"xxxx"), "{}", v[0].path);
        assert!(v[0].path.ends_with("...\"]"), "{}", v[0].path);
        assert_eq!(v[0].kind, "too_long");
        s = one("a");
        let logs = &mut s.services.get_mut("a").unwrap().logs;
        logs.volume.bytes = u64::MAX;
        for id in ["t1", "t2"] {
            logs.templates.insert(id.into(), TemplateSummary::default());
        }
        let v = validate(&s, &limits);
        let paths: Vec<_> = v.iter().map(|v| v.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "services[\"a\"].logs.volume.bytes",
                "services[\"a\"].logs.templates"
            ]
        );
        let mut s = one("a");
        s.services.get_mut("a").unwrap().logs.templates.insert(
            "t".into(),
            TemplateSummary {
                template: "y".repeat(20_000),
                ..Default::default()
            },
        );
        let v = validate(&s, &SummaryLimits::default());
        assert_eq!(v[0].path, "services[\"a\"].logs.templates[\"t\"].template");
        assert!(validate(&one(""), &limits)[0].message.contains("empty"));
    }

    #[test]
    fn retired_ids_are_template_ids() {
        let mut s = one("a");
        s.services
            .get_mut("a")
            .unwrap()
            .logs
            .retired
            .insert("0123456789abcdef".into(), "fedcba9876543210".into());
        assert!(validate(&s, &SummaryLimits::default()).is_empty());
        s.services
            .get_mut("a")
            .unwrap()
            .logs
            .retired
            .insert("alice@corp.com".into(), "fedcba9876543210".into());
        let v = validate(&s, &SummaryLimits::default());
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(
            v[0].path,
            "services[\"a\"].logs.retired[\"alice@corp.com\"]"
        );
    }
}
