//! The JSON reading every part of a policy shares: keys in either spelling, scalars, enums,
//! attribute paths, values, the match types and the single field selector of a matcher.

use base64::Engine as _;
use serde_json::{Map, Value as Json};

use super::ParseErrors;
use crate::proto;

/// Looks a key up under its snake_case name or its camelCase (protobuf JSON) name.
pub(super) fn get<'a>(obj: &'a Map<String, Json>, key: &str) -> Option<&'a Json> {
    if let Some(v) = obj.get(key) {
        return Some(v);
    }
    obj.get(&camel(key))
}

pub(super) fn camel(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut upper = false;
    for c in key.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

pub(super) fn snake(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 4);
    for c in key.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Reports keys of `obj` not in `known` (compared in snake_case).
pub(super) fn check_keys(
    obj: &Map<String, Json>,
    known: &[&str],
    place: &str,
    errs: &mut ParseErrors,
) {
    for k in obj.keys() {
        if !known.contains(&snake(k).as_str()) {
            errs.push(format!("{place}unknown key {k:?}"));
        }
    }
}

pub(super) fn as_string(v: &Json, place: &str, errs: &mut ParseErrors) -> String {
    match v {
        Json::String(s) => s.clone(),
        Json::Number(n) => n.to_string(),
        Json::Bool(b) => b.to_string(),
        _ => {
            errs.push(format!("{place}expected a string"));
            String::new()
        }
    }
}

pub(super) fn as_bool(v: &Json, place: &str, errs: &mut ParseErrors) -> bool {
    match v {
        Json::Bool(b) => *b,
        Json::String(s) if s.eq_ignore_ascii_case("true") => true,
        Json::String(s) if s.eq_ignore_ascii_case("false") => false,
        _ => {
            errs.push(format!("{place}expected true or false"));
            false
        }
    }
}

pub(super) fn as_u64(v: &Json) -> Option<u64> {
    match v {
        Json::Number(n) => n.as_u64(),
        Json::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Parses an enum written as its full name, its name without `prefix` (any case) or its number.
pub(super) fn parse_enum(
    v: &Json,
    prefix: &str,
    from_name: fn(&str) -> Option<i32>,
    place: &str,
    errs: &mut ParseErrors,
) -> i32 {
    match v {
        Json::Number(n) => match n.as_i64().and_then(|i| i32::try_from(i).ok()) {
            Some(i) => i,
            None => {
                errs.push(format!("{place}invalid enum value {n}"));
                0
            }
        },
        Json::String(s) => {
            let upper = s.trim().to_ascii_uppercase();
            let full = if upper.starts_with(prefix) {
                upper
            } else {
                format!("{prefix}{upper}")
            };
            match from_name(&full) {
                Some(i) => i,
                None => {
                    errs.push(format!("{place}unknown value {s:?}"));
                    0
                }
            }
        }
        _ => {
            errs.push(format!("{place}expected an enum name"));
            0
        }
    }
}

/// AttributePath in its canonical, array and string forms.
pub(super) fn attribute_path(
    v: &Json,
    place: &str,
    errs: &mut ParseErrors,
) -> proto::AttributePath {
    let list = match v {
        Json::String(s) => {
            return proto::AttributePath {
                path: vec![s.clone()],
            }
        }
        Json::Array(a) => a,
        Json::Object(o) => match get(o, "path") {
            Some(Json::Array(a)) => a,
            Some(Json::String(s)) => {
                return proto::AttributePath {
                    path: vec![s.clone()],
                }
            }
            _ => {
                errs.push(format!("{place}expected a path list"));
                return proto::AttributePath::default();
            }
        },
        _ => {
            errs.push(format!("{place}expected an attribute path"));
            return proto::AttributePath::default();
        }
    };
    let mut path = Vec::with_capacity(list.len());
    for seg in list {
        match seg {
            Json::String(s) => path.push(s.clone()),
            _ => errs.push(format!("{place}path segments must be strings")),
        }
    }
    proto::AttributePath { path }
}

/// `Value` from a scalar shorthand or the canonical mapping.
pub(super) fn value(v: &Json, place: &str, errs: &mut ParseErrors) -> proto::Value {
    use proto::value::Value as V;
    let inner = match v {
        Json::Bool(b) => Some(V::BoolValue(*b)),
        Json::Number(n) => Some(number_value(n)),
        Json::String(s) => Some(V::StringValue(s.clone())),
        Json::Object(o) => {
            check_keys(
                o,
                &[
                    "bool_value",
                    "int_value",
                    "double_value",
                    "bytes_value",
                    "hex_value",
                    "string_value",
                ],
                place,
                errs,
            );
            let mut out = None;
            let mut count = 0;
            if let Some(x) = get(o, "bool_value") {
                count += 1;
                out = Some(V::BoolValue(as_bool(x, place, errs)));
            }
            if let Some(x) = get(o, "int_value") {
                count += 1;
                out = int_literal(x).map(V::IntValue);
                if out.is_none() {
                    errs.push(format!("{place}int_value: expected an integer"));
                }
            }
            if let Some(x) = get(o, "double_value") {
                count += 1;
                out = double_literal(x).map(V::DoubleValue);
                if out.is_none() {
                    errs.push(format!("{place}double_value: expected a number"));
                }
            }
            if let Some(x) = get(o, "bytes_value") {
                count += 1;
                let s = as_string(x, place, errs);
                match base64::engine::general_purpose::STANDARD.decode(s.trim()) {
                    Ok(b) => out = Some(V::BytesValue(b)),
                    Err(_) => errs.push(format!("{place}bytes_value: invalid base64 {s:?}")),
                }
            }
            if let Some(x) = get(o, "hex_value") {
                count += 1;
                out = Some(V::HexValue(as_string(x, place, errs)));
            }
            if let Some(x) = get(o, "string_value") {
                count += 1;
                out = Some(V::StringValue(as_string(x, place, errs)));
            }
            if count > 1 {
                errs.push(format!("{place}more than one value variant set"));
            }
            out
        }
        _ => {
            errs.push(format!("{place}expected a scalar or a typed value mapping"));
            None
        }
    };
    proto::Value { value: inner }
}

pub(super) fn number_value(n: &serde_json::Number) -> proto::value::Value {
    match n.as_i64() {
        Some(i) => proto::value::Value::IntValue(i),
        None => proto::value::Value::DoubleValue(n.as_f64().unwrap_or(f64::NAN)),
    }
}

pub(super) fn int_literal(v: &Json) -> Option<i64> {
    match v {
        Json::Number(n) => n.as_i64(),
        Json::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

pub(super) fn double_literal(v: &Json) -> Option<f64> {
    match v {
        Json::Number(n) => n.as_f64(),
        Json::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// `NumericValue` from a number or `{int_value|double_value}`; anything else is a parse error.
pub(super) fn numeric(v: &Json, place: &str, errs: &mut ParseErrors) -> proto::NumericValue {
    use proto::numeric_value::Value as N;
    let inner = match v {
        Json::Number(n) => Some(match n.as_i64() {
            Some(i) => N::IntValue(i),
            None => N::DoubleValue(n.as_f64().unwrap_or(f64::NAN)),
        }),
        Json::Object(o) => {
            check_keys(o, &["int_value", "double_value"], place, errs);
            if let Some(x) = get(o, "int_value") {
                int_literal(x).map(N::IntValue).or_else(|| {
                    errs.push(format!("{place}int_value: expected an integer"));
                    None
                })
            } else if let Some(x) = get(o, "double_value") {
                double_literal(x).map(N::DoubleValue).or_else(|| {
                    errs.push(format!("{place}double_value: expected a number"));
                    None
                })
            } else {
                None
            }
        }
        _ => {
            errs.push(format!("{place}expected a number, got {v}"));
            None
        }
    };
    proto::NumericValue { value: inner }
}

pub(super) const MATCH_KEYS: [&str; 11] = [
    "exact",
    "regex",
    "exists",
    "starts_with",
    "ends_with",
    "contains",
    "equals",
    "gt",
    "gte",
    "lt",
    "lte",
];

/// The match-type part shared by the three matcher kinds.
pub(super) enum MatchKind {
    Exact(String),
    Regex(String),
    Exists(bool),
    StartsWith(String),
    EndsWith(String),
    Contains(String),
    Equals(proto::Value),
    Gt(proto::NumericValue),
    Gte(proto::NumericValue),
    Lt(proto::NumericValue),
    Lte(proto::NumericValue),
}

pub(super) fn match_kind(
    o: &Map<String, Json>,
    place: &str,
    errs: &mut ParseErrors,
) -> Option<MatchKind> {
    let mut found = None;
    let mut count = 0;
    for key in MATCH_KEYS {
        let Some(v) = get(o, key) else { continue };
        count += 1;
        let p = format!("{place}{key}: ");
        found = Some(match key {
            "exact" => MatchKind::Exact(as_string(v, &p, errs)),
            "regex" => MatchKind::Regex(as_string(v, &p, errs)),
            "exists" => MatchKind::Exists(as_bool(v, &p, errs)),
            "starts_with" => MatchKind::StartsWith(as_string(v, &p, errs)),
            "ends_with" => MatchKind::EndsWith(as_string(v, &p, errs)),
            "contains" => MatchKind::Contains(as_string(v, &p, errs)),
            "equals" => MatchKind::Equals(value(v, &p, errs)),
            "gt" => MatchKind::Gt(numeric(v, &p, errs)),
            "gte" => MatchKind::Gte(numeric(v, &p, errs)),
            "lt" => MatchKind::Lt(numeric(v, &p, errs)),
            _ => MatchKind::Lte(numeric(v, &p, errs)),
        });
    }
    if count > 1 {
        errs.push(format!("{place}more than one match type"));
    }
    found
}

pub(super) fn flags(o: &Map<String, Json>, place: &str, errs: &mut ParseErrors) -> (bool, bool) {
    let negate = get(o, "negate").is_some_and(|v| as_bool(v, place, errs));
    let ci = get(o, "case_insensitive").is_some_and(|v| as_bool(v, place, errs));
    (negate, ci)
}

pub(super) fn obj<'a>(
    v: &'a Json,
    place: &str,
    errs: &mut ParseErrors,
) -> Option<&'a Map<String, Json>> {
    match v {
        Json::Object(o) => Some(o),
        _ => {
            errs.push(format!("{place}expected a mapping"));
            None
        }
    }
}

pub(super) fn list<'a>(v: &'a Json, place: &str, errs: &mut ParseErrors) -> &'a [Json] {
    match v {
        Json::Array(a) => a,
        Json::Null => &[],
        _ => {
            errs.push(format!("{place}expected a list"));
            &[]
        }
    }
}

pub(super) fn known(extra: &[&'static str], base: &[&'static str]) -> Vec<&'static str> {
    let mut v = base.to_vec();
    v.extend_from_slice(extra);
    v
}

/// The keys a matcher may have: its field selectors, the match types and the two flags.
pub(super) fn matcher_keys(selectors: &[&'static str]) -> Vec<&'static str> {
    let mut keys = known(&MATCH_KEYS, selectors);
    keys.extend(["negate", "case_insensitive"]);
    keys
}

/// The one field selector of `o` among `selectors` (each looked up as `prefix` + name), read
/// by `read` with its place; more than one is an error (the last one read is kept).
pub(super) fn one_selector<F>(
    o: &Map<String, Json>,
    selectors: &[&str],
    prefix: &str,
    place: &str,
    errs: &mut ParseErrors,
    mut read: impl FnMut(&str, &Json, &str, &mut ParseErrors) -> F,
) -> Option<F> {
    let mut found = None;
    let mut count = 0;
    for key in selectors {
        let full = format!("{prefix}{key}");
        let Some(v) = get(o, &full) else { continue };
        count += 1;
        found = Some(read(key, v, &format!("{place}{full}: "), errs));
    }
    if count > 1 {
        errs.push(format!("{place}more than one field selector"));
    }
    found
}

/// A target's `match` list, each matcher read by `one` with its place
/// (`<target>: match[<i>]: `).
pub(super) fn matcher_list<M>(
    o: &Map<String, Json>,
    target: &str,
    errs: &mut ParseErrors,
    one: fn(&Json, &str, &mut ParseErrors) -> M,
) -> Vec<M> {
    get(o, "match")
        .map(|m| list(m, &format!("{target}: match: "), errs))
        .unwrap_or(&[])
        .iter()
        .enumerate()
        .map(|(i, m)| one(m, &format!("{target}: match[{i}]: "), errs))
        .collect()
}
