//! The attribute actions shared by the `attributes` and `resource` processors (the
//! Collector's `actions:` / `attributes:` lists): insert, update, upsert, delete, hash,
//! extract and convert, applied in order to one attribute map.

use regex::Regex;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use weir_api::otlp::common::v1::{any_value, AnyValue, ArrayValue, KeyValue, KeyValueList};
use weir_api::{BatchContext, ConfigErrors};
use weir_filter::ottl::value::any_as_string;
use weir_filter::ottl::with_hint;

/// One entry of `actions:` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ActionConfig {
    /// The attribute acted on. Required, except for `delete` and `hash` with a `pattern`.
    pub key: String,
    /// A literal value (its YAML type is kept) for insert/update/upsert.
    pub value: Option<serde_json::Value>,
    /// Regex: for `extract` the named groups become attributes; for `delete` and `hash`
    /// every key matching it is acted on too.
    pub pattern: String,
    /// Copy the value of this attribute (of the same map).
    pub from_attribute: String,
    /// Copy a request-context value: `metadata.<name>` (client metadata, needs the
    /// receiver's `include_metadata`), or a bare metadata name.
    pub from_context: String,
    /// `convert` target: `int`, `double` or `string`.
    pub converted_type: String,
    /// insert, update, upsert, delete, hash, extract, convert (any case). Required.
    pub action: String,
}

/// Where an action's value comes from.
#[derive(Debug, Clone)]
enum Source {
    Value(AnyValue),
    Attribute(String),
    Context(String),
}

/// `convert` targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Int,
    Double,
    Str,
}

#[derive(Debug)]
enum Op {
    Insert(Source),
    Update(Source),
    Upsert(Source),
    Delete(Option<Regex>),
    Hash(Option<Regex>),
    Extract(Regex, Vec<String>),
    Convert(Target),
}

/// One validated action.
#[derive(Debug)]
pub struct Action {
    key: String,
    op: Op,
}

const ACTIONS: [&str; 7] = [
    "insert", "update", "upsert", "delete", "hash", "extract", "convert",
];

/// Validates `actions` (found at YAML `path`, e.g. `processors.attributes/x.actions`),
/// reporting every problem of every entry.
/// Each entry is read on its own, so a bad field in one does not hide the problems of the
/// others.
pub fn compile(
    actions: &[serde_json::Value],
    path: &str,
    errors: &mut ConfigErrors,
) -> Vec<Action> {
    let mut out = Vec::new();
    for (i, raw) in actions.iter().enumerate() {
        let at = format!("{path}[{i}]");
        let a: ActionConfig = match weir_api::parse_component_config(raw, &at) {
            Ok(a) => a,
            Err(e) => {
                errors.0.extend(e.0);
                continue;
            }
        };
        if let Some(action) = compile_one(&a, &at, errors) {
            out.push(action);
        }
    }
    out
}

fn compile_one(a: &ActionConfig, at: &str, errors: &mut ConfigErrors) -> Option<Action> {
    let before = errors.0.len();
    let name = a.action.to_ascii_lowercase();
    if name.is_empty() {
        errors.push(
            format!("{at}.action"),
            format!(
                "missing required field \"action\" (one of {})",
                ACTIONS.join(", ")
            ),
        );
        return None;
    }
    if !ACTIONS.contains(&name.as_str()) {
        errors.push(
            format!("{at}.action"),
            with_hint(
                format!(
                    "unsupported action {:?} (one of {})",
                    a.action,
                    ACTIONS.join(", ")
                ),
                &name,
                ACTIONS,
            ),
        );
        return None;
    }
    let pattern_ok = name == "delete" || name == "hash";
    if a.key.is_empty() && (!pattern_ok || a.pattern.is_empty()) {
        let msg = if pattern_ok {
            "missing required field: at least one of \"key\" and \"pattern\" has to be set"
        } else {
            "missing required field \"key\""
        };
        errors.push(format!("{at}.key"), msg);
    }
    let value = match &a.value {
        None | Some(serde_json::Value::Null) => None,
        Some(v) => Some(json_to_any(v)),
    };
    let sources = usize::from(value.is_some())
        + usize::from(!a.from_attribute.is_empty())
        + usize::from(!a.from_context.is_empty());
    let not_used = |errors: &mut ConfigErrors, field: &str| {
        errors.push(
            format!("{at}.{field}"),
            format!("action \"{name}\" does not use the \"{field}\" field; remove it"),
        );
    };
    let op = match name.as_str() {
        "insert" | "update" | "upsert" => {
            if sources == 0 {
                errors.push(
                    at.to_string(),
                    format!("action \"{name}\" needs one of \"value\", \"from_attribute\" or \"from_context\""),
                );
            } else if sources > 1 {
                errors.push(
                    at.to_string(),
                    "only one of \"value\", \"from_attribute\" and \"from_context\" may be set",
                );
            }
            if !a.pattern.is_empty() {
                not_used(errors, "pattern");
            }
            if !a.converted_type.is_empty() {
                not_used(errors, "converted_type");
            }
            let source = if let Some(v) = value {
                Source::Value(v)
            } else if !a.from_attribute.is_empty() {
                Source::Attribute(a.from_attribute.clone())
            } else {
                Source::Context(a.from_context.clone())
            };
            match name.as_str() {
                "insert" => Op::Insert(source),
                "update" => Op::Update(source),
                _ => Op::Upsert(source),
            }
        }
        "delete" | "hash" => {
            if value.is_some() {
                not_used(errors, "value");
            }
            if !a.from_attribute.is_empty() {
                not_used(errors, "from_attribute");
            }
            if !a.converted_type.is_empty() {
                not_used(errors, "converted_type");
            }
            let re = if a.pattern.is_empty() {
                None
            } else {
                match Regex::new(&a.pattern) {
                    Ok(r) => Some(r),
                    Err(e) => {
                        errors.push(
                            format!("{at}.pattern"),
                            format!("invalid regex {:?}: {e}", a.pattern),
                        );
                        None
                    }
                }
            };
            if name == "delete" {
                Op::Delete(re)
            } else {
                Op::Hash(re)
            }
        }
        "extract" => {
            if sources > 0 {
                errors.push(
                    at.to_string(),
                    "action \"extract\" takes no value source (\"value\", \"from_attribute\", \"from_context\")",
                );
            }
            if !a.converted_type.is_empty() {
                not_used(errors, "converted_type");
            }
            if a.pattern.is_empty() {
                errors.push(
                    format!("{at}.pattern"),
                    "missing required field \"pattern\" for action \"extract\"",
                );
                return None;
            }
            let re = match Regex::new(&a.pattern) {
                Ok(r) => r,
                Err(e) => {
                    errors.push(
                        format!("{at}.pattern"),
                        format!("invalid regex {:?}: {e}", a.pattern),
                    );
                    return None;
                }
            };
            let names: Vec<Option<&str>> = re.capture_names().skip(1).collect();
            if names.is_empty() {
                errors.push(
                    format!("{at}.pattern"),
                    "the pattern has no named groups ((?P<name>...)); extract needs them",
                );
                return None;
            }
            if names.iter().any(Option::is_none) {
                errors.push(
                    format!("{at}.pattern"),
                    "every group of an extract pattern must be named ((?P<name>...))",
                );
                return None;
            }
            let names = names.into_iter().flatten().map(str::to_string).collect();
            Op::Extract(re, names)
        }
        _ => {
            if sources > 0 || !a.pattern.is_empty() {
                errors.push(
                    at.to_string(),
                    "action \"convert\" takes no value source and no \"pattern\"",
                );
            }
            let target = match a.converted_type.as_str() {
                "int" => Target::Int,
                "double" => Target::Double,
                "string" => Target::Str,
                "" => {
                    errors.push(
                        format!("{at}.converted_type"),
                        "missing required field \"converted_type\" (int, double or string) for action \"convert\"",
                    );
                    return None;
                }
                other => {
                    errors.push(
                        format!("{at}.converted_type"),
                        with_hint(
                            format!("invalid converted_type {other:?} (int, double or string)"),
                            other,
                            ["int", "double", "string"],
                        ),
                    );
                    return None;
                }
            };
            Op::Convert(target)
        }
    };
    (errors.0.len() == before).then(|| Action {
        key: a.key.clone(),
        op,
    })
}

/// A YAML value as an attribute value, keeping its type (lists and maps too).
pub fn json_to_any(v: &serde_json::Value) -> AnyValue {
    use serde_json::Value as J;
    let value = match v {
        J::Null => None,
        J::Bool(b) => Some(any_value::Value::BoolValue(*b)),
        J::Number(n) => Some(match n.as_i64() {
            Some(i) => any_value::Value::IntValue(i),
            None => any_value::Value::DoubleValue(n.as_f64().unwrap_or(f64::NAN)),
        }),
        J::String(s) => Some(any_value::Value::StringValue(s.clone())),
        J::Array(items) => Some(any_value::Value::ArrayValue(ArrayValue {
            values: items.iter().map(json_to_any).collect(),
        })),
        J::Object(m) => Some(any_value::Value::KvlistValue(KeyValueList {
            values: m
                .iter()
                .map(|(k, v)| KeyValue {
                    key: k.clone(),
                    value: Some(json_to_any(v)),
                    ..Default::default()
                })
                .collect(),
        })),
    };
    AnyValue { value }
}

fn str_value(s: String) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::StringValue(s)),
    }
}

fn position(attrs: &[KeyValue], key: &str) -> Option<usize> {
    attrs.iter().position(|kv| kv.key == key)
}

/// Sets `key` to `value`, replacing the first entry with that key or appending.
pub fn put(attrs: &mut Vec<KeyValue>, key: &str, value: AnyValue) {
    match position(attrs, key) {
        Some(i) => attrs[i].value = Some(value),
        None => attrs.push(KeyValue {
            key: key.to_string(),
            value: Some(value),
            ..Default::default()
        }),
    }
}

/// A request-context value for `from_context`: client metadata values joined with `;`.
fn context_value(ctx: &BatchContext, key: &str) -> Option<AnyValue> {
    let name = key.strip_prefix("metadata.").unwrap_or(key);
    if key.starts_with("auth.") || key == "client.address" {
        // Weir does not carry the authenticator's attributes or the peer address with a
        // batch, so these never resolve (the action is skipped, as when absent).
        return None;
    }
    let meta = ctx.metadata.as_ref()?;
    let name = name.to_ascii_lowercase();
    let vals: Vec<&str> = meta
        .iter()
        .filter(|(k, _)| *k == name)
        .map(|(_, v)| v.as_str())
        .collect();
    (!vals.is_empty()).then(|| str_value(vals.join(";")))
}

fn source_value(src: &Source, attrs: &[KeyValue], ctx: &BatchContext) -> Option<AnyValue> {
    match src {
        Source::Value(v) => Some(v.clone()),
        Source::Attribute(k) => {
            position(attrs, k).map(|i| attrs[i].value.clone().unwrap_or_default())
        }
        Source::Context(k) => context_value(ctx, k),
    }
}

/// The SHA-256 (hex) of a scalar value's bytes as the Collector hashes them: strings as
/// UTF-8, bools as one byte, ints and doubles as 8 little-endian bytes; anything else
/// becomes the empty string.
pub fn hash_value(v: &AnyValue) -> AnyValue {
    let bytes: Option<Vec<u8>> = match &v.value {
        Some(any_value::Value::StringValue(s)) => Some(s.as_bytes().to_vec()),
        Some(any_value::Value::BoolValue(b)) => Some(vec![u8::from(*b)]),
        Some(any_value::Value::IntValue(i)) => Some(i.to_le_bytes().to_vec()),
        Some(any_value::Value::DoubleValue(d)) => Some(d.to_bits().to_le_bytes().to_vec()),
        _ => None,
    };
    str_value(bytes.map(|b| hex(&Sha256::digest(b))).unwrap_or_default())
}

fn hex(b: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        let _ = write!(s, "{x:02x}");
    }
    s
}

fn convert(v: &mut AnyValue, target: Target) {
    use any_value::Value as V;
    let new = match (target, &v.value) {
        (Target::Str, Some(V::StringValue(_))) => return,
        (Target::Str, _) => V::StringValue(any_as_string(Some(v))),
        (Target::Int, Some(V::DoubleValue(d))) => V::IntValue(*d as i64),
        (Target::Int, Some(V::BoolValue(b))) => V::IntValue(i64::from(*b)),
        (Target::Int, Some(V::StringValue(s))) => match s.parse::<i64>() {
            Ok(n) => V::IntValue(n),
            Err(_) => return,
        },
        (Target::Double, Some(V::IntValue(i))) => V::DoubleValue(*i as f64),
        (Target::Double, Some(V::BoolValue(b))) => V::DoubleValue(f64::from(u8::from(*b))),
        (Target::Double, Some(V::StringValue(s))) => match parse_go_float(s) {
            Some(n) => V::DoubleValue(n),
            None => return,
        },
        _ => return,
    };
    v.value = Some(new);
}

/// Parses a float as Go's `ParseFloat` does for the common forms (decimal, exponent,
/// `Inf`, `NaN`); Rust's parser accepts the same set apart from spelling of the specials.
fn parse_go_float(s: &str) -> Option<f64> {
    s.parse::<f64>().ok()
}

/// Applies `actions` in order to `attrs`.
pub fn apply(actions: &[Action], attrs: &mut Vec<KeyValue>, ctx: &BatchContext) {
    for a in actions {
        match &a.op {
            Op::Insert(src) => {
                if position(attrs, &a.key).is_none() {
                    if let Some(v) = source_value(src, attrs, ctx) {
                        put(attrs, &a.key, v);
                    }
                }
            }
            Op::Update(src) => {
                if let Some(i) = position(attrs, &a.key) {
                    if let Some(v) = source_value(src, attrs, ctx) {
                        attrs[i].value = Some(v);
                    }
                }
            }
            Op::Upsert(src) => {
                if let Some(v) = source_value(src, attrs, ctx) {
                    put(attrs, &a.key, v);
                }
            }
            Op::Delete(re) => {
                attrs.retain(|kv| {
                    kv.key != a.key && !re.as_ref().is_some_and(|r| r.is_match(&kv.key))
                });
            }
            Op::Hash(re) => {
                // As in the Collector: the key first, then every key matching the pattern
                // (a key that also matches the pattern is hashed twice).
                let hash = |kv: &mut KeyValue| {
                    let v = kv.value.take().unwrap_or_default();
                    kv.value = Some(hash_value(&v));
                };
                if let Some(i) = position(attrs, &a.key) {
                    hash(&mut attrs[i]);
                }
                if let Some(re) = re {
                    attrs
                        .iter_mut()
                        .filter(|kv| re.is_match(&kv.key))
                        .for_each(hash);
                }
            }
            Op::Extract(re, names) => {
                let Some(i) = position(attrs, &a.key) else {
                    continue;
                };
                let Some(any_value::Value::StringValue(s)) =
                    attrs[i].value.as_ref().and_then(|v| v.value.as_ref())
                else {
                    continue;
                };
                let Some(caps) = re.captures(s) else {
                    continue;
                };
                let found: Vec<(String, String)> = names
                    .iter()
                    .enumerate()
                    .map(|(g, n)| {
                        let text = caps.get(g + 1).map_or("", |m| m.as_str());
                        (n.clone(), text.to_string())
                    })
                    .collect();
                for (n, text) in found {
                    put(attrs, &n, str_value(text));
                }
            }
            Op::Convert(t) => {
                if let Some(i) = position(attrs, &a.key) {
                    let v = attrs[i].value.get_or_insert_with(AnyValue::default);
                    convert(v, *t);
                }
            }
        }
    }
}
