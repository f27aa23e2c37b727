//! The collector's older `include`/`exclude` match properties for logs, spans and metrics
//! (`match_type: strict|regexp`), compiled into a "skip" predicate: an item is dropped when
//! an `include` does not match it or an `exclude` does.

use regex::Regex;
use serde::Deserialize;
use weir_api::otlp::common::v1::{any_value, KeyValue};
use weir_api::ConfigErrors;

use crate::ottl::value::{any_as_string, map_get};
use crate::ottl::{with_hint, Item, Record};

/// `match_type` of the legacy properties.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchType {
    Strict,
    Regexp,
}

/// One `{key, value}` entry of `resource_attributes`, `record_attributes`, `attributes`
/// or `resources`. `Key`/`Value` (as in older collector docs) are accepted too.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AttributeMatch {
    /// The attribute key. Required.
    #[serde(alias = "Key")]
    pub key: String,
    /// The value to match (strict: equal, typed; regexp: a pattern). Absent: the key only
    /// has to exist.
    #[serde(alias = "Value", default)]
    pub value: Option<serde_json::Value>,
}

/// One `libraries` entry (instrumentation scope).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LibraryMatch {
    /// Scope name to match. Required.
    #[serde(alias = "Name")]
    pub name: String,
    /// Scope version to match; absent: any version.
    #[serde(alias = "Version", default)]
    pub version: Option<String>,
}

/// A string matcher: exact text or an (unanchored, RE2-style) regex.
#[derive(Debug)]
enum StrMatch {
    Exact(String),
    Pattern(Regex),
}

impl StrMatch {
    fn matches(&self, s: &str) -> bool {
        match self {
            StrMatch::Exact(e) => e == s,
            StrMatch::Pattern(r) => r.is_match(s),
        }
    }
}

#[derive(Debug)]
enum AttrValueMatch {
    Exists,
    Exact(any_value::Value),
    Pattern(Regex),
}

#[derive(Debug)]
struct AttrMatcher {
    key: String,
    value: AttrValueMatch,
}

/// The compiled properties of one `include` or `exclude` block. Every property that is set
/// must match (AND); within a list of names, any entry may match (OR); within a list of
/// attributes, all must match.
#[derive(Debug, Default)]
pub struct Properties {
    resource_attributes: Vec<AttrMatcher>,
    record_attributes: Vec<AttrMatcher>,
    severity_texts: Vec<StrMatch>,
    bodies: Vec<StrMatch>,
    min_severity: Option<(i32, bool)>,
    services: Vec<StrMatch>,
    span_names: Vec<StrMatch>,
    span_kinds: Vec<i32>,
    libraries: Vec<(StrMatch, Option<StrMatch>)>,
    metric_names: Vec<StrMatch>,
}

/// Builds matchers, collecting every problem with its YAML path.
pub struct PropertiesBuilder<'e> {
    pub match_type: Option<MatchType>,
    pub path: String,
    pub errors: &'e mut ConfigErrors,
    pub props: Properties,
}

impl PropertiesBuilder<'_> {
    fn str_matchers(&mut self, field: &str, items: &[String]) -> Vec<StrMatch> {
        let mut out = Vec::new();
        for (i, s) in items.iter().enumerate() {
            match self.match_type {
                Some(MatchType::Strict) | None => out.push(StrMatch::Exact(s.clone())),
                Some(MatchType::Regexp) => match Regex::new(s) {
                    Ok(r) => out.push(StrMatch::Pattern(r)),
                    Err(e) => self.errors.push(
                        format!("{}.{field}[{i}]", self.path),
                        format!("invalid regex {s:?}: {e}"),
                    ),
                },
            }
        }
        out
    }

    fn attr_matchers(&mut self, field: &str, items: &[AttributeMatch]) -> Vec<AttrMatcher> {
        let mut out = Vec::new();
        for (i, a) in items.iter().enumerate() {
            let at = format!("{}.{field}[{i}].value", self.path);
            let value = match (&a.value, self.match_type) {
                (None, _) | (Some(serde_json::Value::Null), _) => AttrValueMatch::Exists,
                (Some(v), Some(MatchType::Regexp)) => match v.as_str().map(Regex::new) {
                    Some(Ok(r)) => AttrValueMatch::Pattern(r),
                    Some(Err(e)) => {
                        self.errors.push(at, format!("invalid regex: {e}"));
                        continue;
                    }
                    None => {
                        self.errors
                            .push(at, "with match_type regexp the value must be a string");
                        continue;
                    }
                },
                (Some(v), _) => match json_to_any(v) {
                    Some(x) => AttrValueMatch::Exact(x),
                    None => {
                        self.errors
                            .push(at, "the value must be a string, number or bool");
                        continue;
                    }
                },
            };
            out.push(AttrMatcher {
                key: a.key.clone(),
                value,
            });
        }
        out
    }

    pub fn resource_attributes(&mut self, items: &[AttributeMatch]) {
        self.props.resource_attributes = self.attr_matchers("resource_attributes", items);
    }
    pub fn resources(&mut self, items: &[AttributeMatch]) {
        self.props.resource_attributes = self.attr_matchers("resources", items);
    }
    pub fn record_attributes(&mut self, field: &str, items: &[AttributeMatch]) {
        self.props.record_attributes = self.attr_matchers(field, items);
    }
    pub fn severity_texts(&mut self, items: &[String]) {
        self.severity_texts_at("severity_texts", items);
    }
    /// `severity_texts` written under another field name (`log_severity_texts`).
    pub fn severity_texts_at(&mut self, field: &str, items: &[String]) {
        self.props.severity_texts = self.str_matchers(field, items);
    }
    pub fn bodies(&mut self, items: &[String]) {
        self.bodies_at("bodies", items);
    }
    /// `bodies` written under another field name (`log_bodies`).
    pub fn bodies_at(&mut self, field: &str, items: &[String]) {
        self.props.bodies = self.str_matchers(field, items);
    }
    pub fn min_severity(&mut self, min: &serde_json::Value, match_undefined: bool) {
        self.min_severity_at("severity_number", min, match_undefined);
    }
    /// `severity_number` written under another field name (`log_severity_number`).
    pub fn min_severity_at(&mut self, field: &str, min: &serde_json::Value, match_undefined: bool) {
        let text = match min {
            serde_json::Value::String(s) => s.to_ascii_uppercase(),
            serde_json::Value::Number(n) => n.to_string(),
            _ => String::new(),
        };
        match severity_number(&text) {
            Some(n) => self.props.min_severity = Some((n, match_undefined)),
            None => self.errors.push(
                format!("{}.{field}.min", self.path),
                with_hint(
                    format!("{min} is not a valid severity (use 1-24 or TRACE, DEBUG, INFO, WARN, ERROR, FATAL with an optional 2-4 suffix)"),
                    &text,
                    SEVERITY_NAMES.iter().copied(),
                ),
            ),
        }
    }
    pub fn services(&mut self, items: &[String]) {
        self.props.services = self.str_matchers("services", items);
    }
    pub fn span_names(&mut self, items: &[String]) {
        self.props.span_names = self.str_matchers("span_names", items);
    }
    pub fn span_kinds(&mut self, items: &[String]) {
        for (i, k) in items.iter().enumerate() {
            match span_kind(k) {
                Some(n) => self.props.span_kinds.push(n),
                None => self.errors.push(
                    format!("{}.span_kinds[{i}]", self.path),
                    with_hint(
                        format!("unknown span kind {k:?}"),
                        k,
                        SPAN_KINDS.iter().map(|(n, _)| *n),
                    ),
                ),
            }
        }
    }
    pub fn libraries(&mut self, items: &[LibraryMatch]) {
        for (i, lib) in items.iter().enumerate() {
            let field = format!("libraries[{i}]");
            let name = self
                .str_matchers(&field, std::slice::from_ref(&lib.name))
                .pop();
            let version = lib
                .version
                .as_ref()
                .and_then(|v| self.str_matchers(&field, std::slice::from_ref(v)).pop());
            if let Some(name) = name {
                self.props.libraries.push((name, version));
            }
        }
    }
    pub fn metric_names(&mut self, items: &[String]) {
        self.props.metric_names = self.str_matchers("metric_names", items);
    }
}

const SEVERITY_NAMES: [&str; 6] = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];

fn severity_number(s: &str) -> Option<i32> {
    if let Ok(n) = s.parse::<i32>() {
        return (1..=24).contains(&n).then_some(n);
    }
    let (base, suffix) = match s.char_indices().last() {
        Some((i, c @ '2'..='4')) => (&s[..i], c as i32 - '1' as i32),
        _ => (s, 0),
    };
    let idx = SEVERITY_NAMES.iter().position(|n| *n == base)? as i32;
    Some(idx * 4 + 1 + suffix)
}

const SPAN_KINDS: [(&str, i32); 6] = [
    ("SPAN_KIND_UNSPECIFIED", 0),
    ("SPAN_KIND_INTERNAL", 1),
    ("SPAN_KIND_SERVER", 2),
    ("SPAN_KIND_CLIENT", 3),
    ("SPAN_KIND_PRODUCER", 4),
    ("SPAN_KIND_CONSUMER", 5),
];

fn span_kind(s: &str) -> Option<i32> {
    let upper = s.to_ascii_uppercase();
    SPAN_KINDS
        .iter()
        .find(|(n, _)| *n == upper || n.trim_start_matches("SPAN_KIND_") == upper)
        .map(|(_, v)| *v)
}

fn json_to_any(v: &serde_json::Value) -> Option<any_value::Value> {
    Some(match v {
        serde_json::Value::String(s) => any_value::Value::StringValue(s.clone()),
        serde_json::Value::Bool(b) => any_value::Value::BoolValue(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => any_value::Value::IntValue(i),
            None => any_value::Value::DoubleValue(n.as_f64()?),
        },
        _ => return None,
    })
}

fn attrs_match(matchers: &[AttrMatcher], attrs: &[KeyValue]) -> bool {
    matchers.iter().all(|m| {
        if !attrs.iter().any(|kv| kv.key == m.key) {
            return false;
        }
        let value = map_get(attrs, &m.key);
        match &m.value {
            AttrValueMatch::Exists => true,
            AttrValueMatch::Exact(want) => value.and_then(|v| v.value.as_ref()) == Some(want),
            // The collector's regexp matcher only reads scalar attributes.
            AttrValueMatch::Pattern(r) => match value.and_then(|v| v.value.as_ref()) {
                Some(
                    any_value::Value::StringValue(_)
                    | any_value::Value::BoolValue(_)
                    | any_value::Value::IntValue(_)
                    | any_value::Value::DoubleValue(_),
                ) => r.is_match(&any_as_string(value)),
                _ => false,
            },
        }
    })
}

impl Properties {
    /// Whether the record matches every property that is set.
    pub fn matches(&self, rec: &Record<'_>) -> bool {
        let resource_attrs: &[KeyValue] = rec.resource.map_or(&[], |r| &r.attributes);
        if !attrs_match(&self.resource_attributes, resource_attrs) {
            return false;
        }
        if !self.services.is_empty() {
            let service = match map_get(resource_attrs, "service.name") {
                Some(v) => any_as_string(Some(v)),
                // What the collector's span matcher compares when the resource has none.
                None => "<nil-service-name>".to_string(),
            };
            if !self.services.iter().any(|m| m.matches(&service)) {
                return false;
            }
        }
        if !self.libraries.is_empty() {
            let (name, version) = rec
                .scope
                .map_or(("", ""), |s| (&s.name[..], &s.version[..]));
            let ok = self
                .libraries
                .iter()
                .any(|(n, v)| n.matches(name) && v.as_ref().is_none_or(|v| v.matches(version)));
            if !ok {
                return false;
            }
        }
        match rec.item {
            Item::Log(l) => {
                if !attrs_match(&self.record_attributes, &l.attributes) {
                    return false;
                }
                if !self.severity_texts.is_empty()
                    && !self
                        .severity_texts
                        .iter()
                        .any(|m| m.matches(&l.severity_text))
                {
                    return false;
                }
                if !self.bodies.is_empty() {
                    let body = any_as_string(l.body.as_ref());
                    if !self.bodies.iter().any(|m| m.matches(&body)) {
                        return false;
                    }
                }
                if let Some((min, match_undefined)) = self.min_severity {
                    let n = l.severity_number;
                    let ok = if n == 0 { match_undefined } else { n >= min };
                    if !ok {
                        return false;
                    }
                }
                true
            }
            Item::Span(s) => {
                attrs_match(&self.record_attributes, &s.attributes)
                    && (self.span_names.is_empty()
                        || self.span_names.iter().any(|m| m.matches(&s.name)))
                    && (self.span_kinds.is_empty() || self.span_kinds.contains(&s.kind))
            }
            Item::Metric(m) => {
                self.metric_names.is_empty() || self.metric_names.iter().any(|x| x.matches(&m.name))
            }
            _ => true,
        }
    }
}

/// An include/exclude pair as a skip predicate.
#[derive(Debug, Default)]
pub struct IncludeExclude {
    pub include: Option<Properties>,
    pub exclude: Option<Properties>,
}

impl IncludeExclude {
    /// Whether the item is dropped.
    pub fn skip(&self, rec: &Record<'_>) -> bool {
        if let Some(inc) = &self.include {
            if !inc.matches(rec) {
                return true;
            }
        }
        if let Some(exc) = &self.exclude {
            if exc.matches(rec) {
                return true;
            }
        }
        false
    }
}

/// Parses a `match_type` value; `expr` is recognised for metrics and reported as
/// unsupported by the caller.
pub fn parse_match_type(
    raw: Option<&str>,
    allowed: &[&str],
    path: &str,
    errors: &mut ConfigErrors,
) -> Option<MatchType> {
    match raw {
        Some("strict") => Some(MatchType::Strict),
        Some("regexp") => Some(MatchType::Regexp),
        Some("expr") if allowed.contains(&"expr") => {
            errors.push(
                format!("{path}.match_type"),
                "match_type \"expr\" (antonmedv/expr expressions) is not supported; write the expressions as metric_conditions",
            );
            None
        }
        other => {
            let got = other.unwrap_or("");
            errors.push(
                format!("{path}.match_type"),
                with_hint(
                    format!(
                        "unrecognized match_type {got:?}, valid types are: {}",
                        allowed.join(", ")
                    ),
                    got,
                    allowed.iter().copied(),
                ),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_names_and_numbers() {
        assert_eq!(severity_number("INFO"), Some(9));
        assert_eq!(severity_number("WARN3"), Some(15));
        assert_eq!(severity_number("FATAL4"), Some(24));
        assert_eq!(severity_number("TRACE"), Some(1));
        assert_eq!(severity_number("17"), Some(17));
        assert_eq!(severity_number("25"), None);
        assert_eq!(severity_number("INFO5"), None);
        assert_eq!(severity_number("NOTICE"), None);
    }

    #[test]
    fn span_kind_names() {
        assert_eq!(span_kind("SPAN_KIND_SERVER"), Some(2));
        assert_eq!(span_kind("client"), Some(3));
        assert_eq!(span_kind("SERVERR"), None);
    }
}
