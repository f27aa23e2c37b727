//! Reading policies written in YAML or JSON (the specification's section 11 form, plus the
//! protobuf-JSON spellings) into the wire types of [`crate::proto`].
//!
//! Accepted: snake_case and camelCase keys; the AttributePath array, string and `{path: [...]}`
//! forms; scalar shorthands for `Value`/`NumericValue`; enum names in full
//! (`LOG_FIELD_BODY`), without their prefix in any case (`body`, `ERROR`) or as numbers.
//! Every problem of a policy is collected, each prefixed with its place in the policy
//! (`log: match[0]: gt: ...`).

use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use serde_json::Value as Json;

use crate::proto;

macro_rules! match_into {
    ($m:ident, $k:expr) => {
        $k.map(|k| match k {
            MatchKind::Exact(s) => $m::Match::Exact(s),
            MatchKind::Regex(s) => $m::Match::Regex(s),
            MatchKind::Exists(b) => $m::Match::Exists(b),
            MatchKind::StartsWith(s) => $m::Match::StartsWith(s),
            MatchKind::EndsWith(s) => $m::Match::EndsWith(s),
            MatchKind::Contains(s) => $m::Match::Contains(s),
            MatchKind::Equals(v) => $m::Match::Equals(v),
            MatchKind::Gt(v) => $m::Match::Gt(v),
            MatchKind::Gte(v) => $m::Match::Gte(v),
            MatchKind::Lt(v) => $m::Match::Lt(v),
            MatchKind::Lte(v) => $m::Match::Lte(v),
        })
    };
}

mod common;
mod log;
mod metric;
mod trace;

use common::*;
use log::log_target;
use metric::metric_target;
use trace::trace_target;

/// Problems found while reading one policy, worded `<place>: <message>`.
pub type ParseErrors = Vec<String>;

/// A policy as read from a document: its id (when readable) and either the wire form or the
/// problems that made it unreadable.
#[derive(Debug, Clone)]
pub struct ParsedPolicy {
    /// The policy id, or a placeholder naming its position when the id itself is missing.
    pub id: String,
    /// The policy, or why it could not be read.
    pub policy: Result<proto::Policy, ParseErrors>,
}

/// Labels: a mapping `{key: value}` or a list of OTLP KeyValue objects.
fn labels(v: &Json, errs: &mut ParseErrors) -> Vec<KeyValue> {
    let string = |s: String| AnyValue {
        value: Some(any_value::Value::StringValue(s)),
    };
    match v {
        Json::Object(o) => o
            .iter()
            .map(|(k, v)| KeyValue {
                key: k.clone(),
                value: Some(string(as_string(v, "labels: ", errs))),
                ..Default::default()
            })
            .collect(),
        Json::Array(a) => a
            .iter()
            .filter_map(|e| {
                let o = obj(e, "labels: ", errs)?;
                let key = get(o, "key").map(|k| as_string(k, "labels: ", errs))?;
                let value = get(o, "value").map(|v| match v {
                    Json::Object(m) => {
                        let s = m
                            .get("stringValue")
                            .or_else(|| m.get("string_value"))
                            .map(|s| as_string(s, "labels: ", errs))
                            .unwrap_or_default();
                        string(s)
                    }
                    other => string(as_string(other, "labels: ", errs)),
                });
                Some(KeyValue {
                    key,
                    value,
                    ..Default::default()
                })
            })
            .collect(),
        _ => {
            errs.push("labels: expected a mapping or a list".to_string());
            vec![]
        }
    }
}

fn extensions(v: &Json, errs: &mut ParseErrors) -> Vec<proto::Extension> {
    list(v, "extensions: ", errs)
        .iter()
        .enumerate()
        .filter_map(|(i, e)| {
            let p = format!("extensions[{i}]: ");
            let o = obj(e, &p, errs)?;
            check_keys(o, &["type", "version", "config", "mode"], &p, errs);
            // The YAML form writes config as a mapping; it travels as opaque bytes, kept here
            // as its JSON text.
            let config = match get(o, "config") {
                None | Some(Json::Null) => vec![],
                Some(Json::String(s)) => s.clone().into_bytes(),
                Some(other) => other.to_string().into_bytes(),
            };
            Some(proto::Extension {
                r#type: get(o, "type")
                    .map(|t| as_string(t, &p, errs))
                    .unwrap_or_default(),
                version: get(o, "version")
                    .map(|t| as_string(t, &p, errs))
                    .unwrap_or_default(),
                config,
                mode: get(o, "mode")
                    .map(|m| {
                        parse_enum(
                            m,
                            "EXTENSION_MODE_",
                            |s| proto::ExtensionMode::from_str_name(s).map(|e| e as i32),
                            &format!("{p}mode: "),
                            errs,
                        )
                    })
                    .unwrap_or(0),
            })
        })
        .collect()
}

/// Reads one policy object. `position` names it in errors when it has no id.
pub fn parse_policy(v: &Json, position: &str) -> ParsedPolicy {
    let mut errs = ParseErrors::new();
    let Json::Object(o) = v else {
        return ParsedPolicy {
            id: position.to_string(),
            policy: Err(vec!["expected a policy mapping".to_string()]),
        };
    };
    let id = match get(o, "id") {
        Some(v) => as_string(v, "id: ", &mut errs),
        None => {
            errs.push("id: required".to_string());
            String::new()
        }
    };
    check_keys(
        o,
        &[
            "id",
            "name",
            "description",
            "enabled",
            "created_at_unix_nano",
            "modified_at_unix_nano",
            "labels",
            "extensions",
            "log",
            "metric",
            "trace",
        ],
        "",
        &mut errs,
    );
    let mut policy = proto::Policy {
        id: id.clone(),
        name: get(o, "name")
            .map(|v| as_string(v, "name: ", &mut errs))
            .unwrap_or_default(),
        description: get(o, "description")
            .map(|v| as_string(v, "description: ", &mut errs))
            .unwrap_or_default(),
        enabled: get(o, "enabled").is_none_or(|v| as_bool(v, "enabled: ", &mut errs)),
        created_at_unix_nano: get(o, "created_at_unix_nano").and_then(as_u64).unwrap_or(0),
        modified_at_unix_nano: get(o, "modified_at_unix_nano")
            .and_then(as_u64)
            .unwrap_or(0),
        labels: get(o, "labels")
            .map(|l| labels(l, &mut errs))
            .unwrap_or_default(),
        target: None,
        extensions: get(o, "extensions")
            .map(|e| extensions(e, &mut errs))
            .unwrap_or_default(),
    };
    let mut targets = 0;
    if let Some(t) = get(o, "log") {
        targets += 1;
        policy.target = Some(proto::policy::Target::Log(log_target(t, &mut errs)));
    }
    if let Some(t) = get(o, "metric") {
        targets += 1;
        policy.target = Some(proto::policy::Target::Metric(metric_target(t, &mut errs)));
    }
    if let Some(t) = get(o, "trace") {
        targets += 1;
        policy.target = Some(proto::policy::Target::Trace(trace_target(t, &mut errs)));
    }
    if targets == 0 {
        errs.push("a target (log, metric or trace) is required".to_string());
    } else if targets > 1 {
        errs.push("exactly one target (log, metric or trace) is allowed".to_string());
    }
    let id = if id.is_empty() {
        position.to_string()
    } else {
        id
    };
    ParsedPolicy {
        id,
        policy: if errs.is_empty() {
            Ok(policy)
        } else {
            Err(errs)
        },
    }
}

/// Reads one protobuf-encoded `Policy`. The wire has no presence for `enabled`: a policy
/// that leaves it out is disabled, as the wire says (specification section 15 item 1).
pub fn parse_protobuf_policy(bytes: &[u8], position: &str) -> ParsedPolicy {
    use prost::Message;
    match proto::Policy::decode(bytes) {
        Ok(p) => ParsedPolicy {
            id: p.id.clone(),
            policy: Ok(p),
        },
        Err(e) => ParsedPolicy {
            id: position.to_string(),
            policy: Err(vec![format!("invalid protobuf: {e}")]),
        },
    }
}

/// A document that is not YAML/JSON at all, or not shaped like policies.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    /// Not valid YAML (JSON is YAML too).
    #[error("{source_name}: not valid YAML or JSON: {message}")]
    Syntax {
        /// File name or other label of the document.
        source_name: String,
        /// What the YAML parser said.
        message: String,
    },
    /// Valid syntax, but neither a policy, a list of them nor `{policies: [...]}`.
    #[error("{source_name}: expected a policy, a list of policies or {{\"policies\": [...]}}")]
    Shape {
        /// File name or other label of the document.
        source_name: String,
    },
}

/// Reads a YAML or JSON document holding `{"policies": [...]}`, a list of policies or a
/// single policy. `source_name` labels positions (`file.yaml#2`) of policies without an id.
pub fn parse_document(text: &str, source_name: &str) -> Result<Vec<ParsedPolicy>, DocumentError> {
    let doc: Json = match serde_json::from_str(text) {
        Ok(v) => v,
        // YAML 1.2 booleans only: `n`, `no`, `on`, `y` stay strings (attribute keys, values).
        Err(_) => serde_saphyr::from_str_with_options(
            text,
            serde_saphyr::options! { strict_booleans: true },
        )
        .map_err(|e| DocumentError::Syntax {
            source_name: source_name.to_string(),
            message: e.to_string(),
        })?,
    };
    let items: Vec<&Json> = match &doc {
        Json::Object(o) if o.contains_key("policies") => match o.get("policies") {
            Some(Json::Array(a)) => a.iter().collect(),
            Some(Json::Null) => vec![],
            _ => {
                return Err(DocumentError::Shape {
                    source_name: source_name.to_string(),
                })
            }
        },
        Json::Object(_) => vec![&doc],
        Json::Array(a) => a.iter().collect(),
        Json::Null => vec![],
        _ => {
            return Err(DocumentError::Shape {
                source_name: source_name.to_string(),
            })
        }
    };
    Ok(items
        .into_iter()
        .enumerate()
        .map(|(i, v)| parse_policy(v, &format!("{source_name}#{i}")))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::log_matcher;

    #[test]
    fn shorthands_and_camel_case() {
        let doc = r#"
id: p
name: P
log:
  match:
    - log_attribute: user_id
      equals: 200
    - resourceAttribute: {path: ["a", "b"]}
      gte: {int_value: "5"}
    - log_field: severity_text
      equals: "true"
  keep: 50%
"#;
        let p = parse_document(doc, "t").unwrap().remove(0);
        let pol = p.policy.unwrap();
        let Some(proto::policy::Target::Log(l)) = pol.target else {
            panic!()
        };
        assert_eq!(l.keep, "50%");
        assert!(matches!(
            l.r#match[0].r#match,
            Some(log_matcher::Match::Equals(proto::Value {
                value: Some(proto::value::Value::IntValue(200))
            }))
        ));
        assert!(matches!(
            &l.r#match[1].field,
            Some(log_matcher::Field::ResourceAttribute(p)) if p.path == ["a", "b"]
        ));
        assert!(matches!(
            &l.r#match[2].r#match,
            Some(log_matcher::Match::Equals(proto::Value {
                value: Some(proto::value::Value::StringValue(s))
            })) if s == "true"
        ));
        assert!(pol.enabled);
    }

    #[test]
    fn non_numeric_comparison_is_a_parse_error() {
        let doc = r#"{"id":"x","name":"x","log":{"match":[{"log_field":"body","gt":"abc"}],"keep":"none"}}"#;
        let p = parse_document(doc, "t").unwrap().remove(0);
        assert_eq!(p.id, "x");
        assert_eq!(
            p.policy.unwrap_err(),
            vec![r#"log: match[0]: gt: expected a number, got "abc""#.to_string()]
        );
    }

    #[test]
    fn unknown_keys_are_reported() {
        let doc = r#"{"id":"x","name":"x","log":{"match":[{"log_feld":"body","exists":true}],"keep":"none"}}"#;
        let errs = parse_document(doc, "t")
            .unwrap()
            .remove(0)
            .policy
            .unwrap_err();
        assert_eq!(
            errs,
            vec![r#"log: match[0]: unknown key "log_feld""#.to_string()]
        );
    }
}
