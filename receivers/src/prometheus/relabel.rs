//! Prometheus relabelling (`relabel_configs`, `metric_relabel_configs`) with Prometheus's
//! semantics: the regex is anchored at both ends, `source_labels` values are joined with
//! `separator`, `$1`/`${name}` in `replacement` (and in `target_label` for `replace`)
//! expand to the captures, an empty result deletes the target label.
//!
//! Actions: `replace` (default), `keep`, `drop`, `keepequal`, `dropequal`, `labelmap`,
//! `labeldrop`, `labelkeep`, `lowercase`, `uppercase`. `hashmod` is refused.

use std::collections::BTreeMap;

use regex::Regex;
use serde::Deserialize;
use weir_api::ConfigErrors;

fn default_separator() -> String {
    ";".into()
}

fn default_regex() -> String {
    "(.*)".into()
}

fn default_replacement() -> String {
    "$1".into()
}

fn default_action() -> String {
    "replace".into()
}

/// One relabel rule as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelabelConfig {
    /// Labels whose values are joined.
    #[serde(default)]
    pub source_labels: Vec<String>,
    /// Joins the source values. Default `;`.
    #[serde(default = "default_separator")]
    pub separator: String,
    /// The label written by `replace`, `lowercase`, `uppercase`, compared by the `*equal`
    /// actions.
    #[serde(default)]
    pub target_label: String,
    /// Default `(.*)`.
    #[serde(default = "default_regex")]
    pub regex: String,
    /// `hashmod` only (refused).
    #[serde(default)]
    pub modulus: u64,
    /// Default `$1`.
    #[serde(default = "default_replacement")]
    pub replacement: String,
    /// Default `replace`.
    #[serde(default = "default_action")]
    pub action: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Replace,
    Keep,
    Drop,
    KeepEqual,
    DropEqual,
    LabelMap,
    LabelDrop,
    LabelKeep,
    Lowercase,
    Uppercase,
}

/// A checked rule.
#[derive(Debug, Clone)]
pub struct Rule {
    source_labels: Vec<String>,
    separator: String,
    target_label: String,
    regex: Regex,
    replacement: String,
    action: Action,
}

/// Checks rules, reporting each problem under `path[i]`.
pub fn compile(rules: &[RelabelConfig], path: &str, errors: &mut ConfigErrors) -> Vec<Rule> {
    let mut out = Vec::new();
    for (i, r) in rules.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let action = match r.action.to_ascii_lowercase().as_str() {
            "replace" => Action::Replace,
            "keep" => Action::Keep,
            "drop" => Action::Drop,
            "keepequal" => Action::KeepEqual,
            "dropequal" => Action::DropEqual,
            "labelmap" => Action::LabelMap,
            "labeldrop" => Action::LabelDrop,
            "labelkeep" => Action::LabelKeep,
            "lowercase" => Action::Lowercase,
            "uppercase" => Action::Uppercase,
            "hashmod" => {
                errors.push(
                    format!("{p}.action"),
                    "hashmod is not supported by weir yet",
                );
                continue;
            }
            other => {
                errors.push(
                    format!("{p}.action"),
                    format!("unknown relabel action {other:?}"),
                );
                continue;
            }
        };
        let regex = match Regex::new(&format!("^(?:{})$", r.regex)) {
            Ok(re) => re,
            Err(e) => {
                errors.push(
                    format!("{p}.regex"),
                    format!("{:?} is not a valid regex: {e}", r.regex),
                );
                continue;
            }
        };
        let needs_target = matches!(
            action,
            Action::Replace
                | Action::KeepEqual
                | Action::DropEqual
                | Action::Lowercase
                | Action::Uppercase
        );
        if needs_target && r.target_label.is_empty() {
            errors.push(
                format!("{p}.target_label"),
                format!("is required for action {}", r.action),
            );
            continue;
        }
        out.push(Rule {
            source_labels: r.source_labels.clone(),
            separator: r.separator.clone(),
            target_label: r.target_label.clone(),
            regex,
            replacement: r.replacement.clone(),
            action,
        });
    }
    out
}

fn valid_label_name(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(f) if f.is_ascii_alphabetic() || f == '_')
        && c.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Applies `rules` to `labels`; `false` when the series (or target) is dropped.
pub fn apply(rules: &[Rule], labels: &mut BTreeMap<String, String>) -> bool {
    for r in rules {
        let value = r
            .source_labels
            .iter()
            .map(|l| labels.get(l).map(String::as_str).unwrap_or(""))
            .collect::<Vec<_>>()
            .join(&r.separator);
        match r.action {
            Action::Keep => {
                if !r.regex.is_match(&value) {
                    return false;
                }
            }
            Action::Drop => {
                if r.regex.is_match(&value) {
                    return false;
                }
            }
            Action::KeepEqual => {
                if labels
                    .get(&r.target_label)
                    .map(String::as_str)
                    .unwrap_or("")
                    != value
                {
                    return false;
                }
            }
            Action::DropEqual => {
                if labels
                    .get(&r.target_label)
                    .map(String::as_str)
                    .unwrap_or("")
                    == value
                {
                    return false;
                }
            }
            Action::Replace => {
                let Some(caps) = r.regex.captures(&value) else {
                    continue;
                };
                let mut target = String::new();
                caps.expand(&r.target_label, &mut target);
                if !valid_label_name(&target) {
                    continue;
                }
                let mut res = String::new();
                caps.expand(&r.replacement, &mut res);
                if res.is_empty() {
                    labels.remove(&target);
                } else {
                    labels.insert(target, res);
                }
            }
            Action::Lowercase => {
                labels.insert(r.target_label.clone(), value.to_lowercase());
            }
            Action::Uppercase => {
                labels.insert(r.target_label.clone(), value.to_uppercase());
            }
            Action::LabelMap => {
                let add: Vec<(String, String)> = labels
                    .iter()
                    .filter_map(|(k, v)| {
                        let caps = r.regex.captures(k)?;
                        let mut name = String::new();
                        caps.expand(&r.replacement, &mut name);
                        Some((name, v.clone()))
                    })
                    .collect();
                labels.extend(add);
            }
            Action::LabelDrop => labels.retain(|k, _| !r.regex.is_match(k)),
            Action::LabelKeep => labels.retain(|k, _| r.regex.is_match(k)),
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(v: serde_json::Value) -> Vec<Rule> {
        let configs: Vec<RelabelConfig> = serde_json::from_value(v).unwrap();
        let mut errors = ConfigErrors::default();
        let out = compile(&configs, "r", &mut errors);
        assert!(errors.is_empty(), "{errors}");
        out
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn prometheus_semantics() {
        let r = rules(serde_json::json!([
            {"source_labels": ["__address__"], "regex": "([^:]+):(\\d+)", "target_label": "host", "replacement": "${1}"},
            {"source_labels": ["a", "b"], "separator": "-", "target_label": "ab"},
            {"regex": "__meta_(.+)", "action": "labelmap"},
            {"regex": "__meta_.*", "action": "labeldrop"},
            {"source_labels": ["zone"], "target_label": "zone_upper", "action": "uppercase"},
            {"source_labels": ["gone"], "regex": "", "target_label": "b"},
        ]));
        let mut l = labels(&[
            ("__address__", "node1:9100"),
            ("a", "x"),
            ("b", "y"),
            ("__meta_zone", "eu"),
        ]);
        assert!(apply(&r, &mut l));
        assert_eq!(
            l,
            labels(&[
                ("__address__", "node1:9100"),
                ("a", "x"),
                ("ab", "x-y"),
                ("host", "node1"),
                ("zone", "eu"),
                ("zone_upper", "EU"),
            ])
        );
        // keep / drop are anchored: "node" does not match "node1".
        let keep = rules(
            serde_json::json!([{"source_labels": ["__name__"], "regex": "node", "action": "keep"}]),
        );
        assert!(!apply(&keep, &mut labels(&[("__name__", "node1")])));
        assert!(apply(&keep, &mut labels(&[("__name__", "node")])));
        let drop = rules(
            serde_json::json!([{"source_labels": ["__name__"], "regex": "go_.*", "action": "drop"}]),
        );
        assert!(!apply(&drop, &mut labels(&[("__name__", "go_threads")])));
        assert!(apply(&drop, &mut labels(&[("__name__", "node_load1")])));
        let keepequal = rules(
            serde_json::json!([{"source_labels": ["a"], "target_label": "b", "action": "keepequal"}]),
        );
        assert!(apply(&keepequal, &mut labels(&[("a", "1"), ("b", "1")])));
        assert!(!apply(&keepequal, &mut labels(&[("a", "1"), ("b", "2")])));
    }

    #[test]
    fn problems_are_named() {
        let configs: Vec<RelabelConfig> = serde_json::from_value(serde_json::json!([
            {"action": "hashmod", "modulus": 4, "target_label": "x"},
            {"regex": "(", "target_label": "x"},
            {"action": "replace"},
            {"action": "explode"},
        ]))
        .unwrap();
        let mut errors = ConfigErrors::default();
        compile(&configs, "p.relabel_configs", &mut errors);
        let text = errors.to_string();
        for want in [
            "p.relabel_configs[0].action: hashmod is not supported by weir yet",
            "p.relabel_configs[1].regex: \"(\" is not a valid regex",
            "p.relabel_configs[2].target_label: is required for action replace",
            "p.relabel_configs[3].action: unknown relabel action \"explode\"",
        ] {
            assert!(text.contains(want), "missing {want:?} in {text}");
        }
    }
}
