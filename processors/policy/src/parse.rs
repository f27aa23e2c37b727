//! Reading policies written in YAML or JSON (the specification's section 11 form, plus the
//! protobuf-JSON spellings) into the wire types of [`crate::proto`].
//!
//! Accepted: snake_case and camelCase keys; the AttributePath array, string and `{path: [...]}`
//! forms; scalar shorthands for `Value`/`NumericValue`; enum names in full
//! (`LOG_FIELD_BODY`), without their prefix in any case (`body`, `ERROR`) or as numbers.
//! Every problem of a policy is collected, each prefixed with its place in the policy
//! (`log: match[0]: gt: ...`).

use base64::Engine as _;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use serde_json::{Map, Value as Json};

use crate::proto::{
    self, log_add, log_matcher, log_redact, log_remove, log_sample_key, metric_matcher,
    trace_matcher,
};

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

/// Looks a key up under its snake_case name or its camelCase (protobuf JSON) name.
fn get<'a>(obj: &'a Map<String, Json>, key: &str) -> Option<&'a Json> {
    if let Some(v) = obj.get(key) {
        return Some(v);
    }
    obj.get(&camel(key))
}

fn camel(key: &str) -> String {
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

fn snake(key: &str) -> String {
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
fn check_keys(obj: &Map<String, Json>, known: &[&str], place: &str, errs: &mut ParseErrors) {
    for k in obj.keys() {
        if !known.contains(&snake(k).as_str()) {
            errs.push(format!("{place}unknown key {k:?}"));
        }
    }
}

fn as_string(v: &Json, place: &str, errs: &mut ParseErrors) -> String {
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

fn as_bool(v: &Json, place: &str, errs: &mut ParseErrors) -> bool {
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

fn as_u64(v: &Json) -> Option<u64> {
    match v {
        Json::Number(n) => n.as_u64(),
        Json::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Parses an enum written as its full name, its name without `prefix` (any case) or its number.
fn parse_enum(
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

/// A span status name: the policy enum's names, and OpenTelemetry's own name for code 0
/// (`STATUS_CODE_UNSET` in the trace proto, `UNSET` in the SDKs), which policy authors write
/// for "status not set".
fn span_status_code(full: &str) -> Option<i32> {
    match full {
        "SPAN_STATUS_CODE_UNSET" | "SPAN_STATUS_CODE_STATUS_CODE_UNSET" => {
            Some(proto::SpanStatusCode::Unspecified as i32)
        }
        _ => proto::SpanStatusCode::from_str_name(full).map(|e| e as i32),
    }
}

fn log_field(v: &Json, place: &str, errs: &mut ParseErrors) -> i32 {
    parse_enum(
        v,
        "LOG_FIELD_",
        |s| proto::LogField::from_str_name(s).map(|e| e as i32),
        place,
        errs,
    )
}

/// AttributePath in its canonical, array and string forms.
fn attribute_path(v: &Json, place: &str, errs: &mut ParseErrors) -> proto::AttributePath {
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
fn value(v: &Json, place: &str, errs: &mut ParseErrors) -> proto::Value {
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

fn number_value(n: &serde_json::Number) -> proto::value::Value {
    match n.as_i64() {
        Some(i) => proto::value::Value::IntValue(i),
        None => proto::value::Value::DoubleValue(n.as_f64().unwrap_or(f64::NAN)),
    }
}

fn int_literal(v: &Json) -> Option<i64> {
    match v {
        Json::Number(n) => n.as_i64(),
        Json::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn double_literal(v: &Json) -> Option<f64> {
    match v {
        Json::Number(n) => n.as_f64(),
        Json::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// `NumericValue` from a number or `{int_value|double_value}`; anything else is a parse error.
fn numeric(v: &Json, place: &str, errs: &mut ParseErrors) -> proto::NumericValue {
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

const MATCH_KEYS: [&str; 11] = [
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
enum MatchKind {
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

fn match_kind(o: &Map<String, Json>, place: &str, errs: &mut ParseErrors) -> Option<MatchKind> {
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

fn flags(o: &Map<String, Json>, place: &str, errs: &mut ParseErrors) -> (bool, bool) {
    let negate = get(o, "negate").is_some_and(|v| as_bool(v, place, errs));
    let ci = get(o, "case_insensitive").is_some_and(|v| as_bool(v, place, errs));
    (negate, ci)
}

fn obj<'a>(v: &'a Json, place: &str, errs: &mut ParseErrors) -> Option<&'a Map<String, Json>> {
    match v {
        Json::Object(o) => Some(o),
        _ => {
            errs.push(format!("{place}expected a mapping"));
            None
        }
    }
}

fn list<'a>(v: &'a Json, place: &str, errs: &mut ParseErrors) -> &'a [Json] {
    match v {
        Json::Array(a) => a,
        Json::Null => &[],
        _ => {
            errs.push(format!("{place}expected a list"));
            &[]
        }
    }
}

/// Reads the common four log selectors under `prefix` (empty, or `from_` for rename).
fn log_selector(
    o: &Map<String, Json>,
    prefix: &str,
    place: &str,
    errs: &mut ParseErrors,
) -> Option<(u8, Option<i32>, Option<proto::AttributePath>)> {
    let mut found = None;
    let mut count = 0;
    for (i, key) in [
        "log_field",
        "log_attribute",
        "resource_attribute",
        "scope_attribute",
    ]
    .iter()
    .enumerate()
    {
        let full = format!("{prefix}{key}");
        let Some(v) = get(o, &full) else { continue };
        count += 1;
        let p = format!("{place}{full}: ");
        found = Some(if i == 0 {
            (0u8, Some(log_field(v, &p, errs)), None)
        } else {
            (i as u8, None, Some(attribute_path(v, &p, errs)))
        });
    }
    if count > 1 {
        errs.push(format!("{place}more than one field selector"));
    }
    found
}

macro_rules! log_sel_into {
    ($m:ident, $sel:expr) => {
        $sel.map(|(i, f, p)| match i {
            0 => $m::Field::LogField(f.unwrap_or(0)),
            1 => $m::Field::LogAttribute(p.unwrap_or_default()),
            2 => $m::Field::ResourceAttribute(p.unwrap_or_default()),
            _ => $m::Field::ScopeAttribute(p.unwrap_or_default()),
        })
    };
}

const LOG_SELECTORS: [&str; 4] = [
    "log_field",
    "log_attribute",
    "resource_attribute",
    "scope_attribute",
];

fn known(extra: &[&'static str], base: &[&'static str]) -> Vec<&'static str> {
    let mut v = base.to_vec();
    v.extend_from_slice(extra);
    v
}

fn log_matcher(v: &Json, place: &str, errs: &mut ParseErrors) -> proto::LogMatcher {
    let Some(o) = obj(v, place, errs) else {
        return proto::LogMatcher::default();
    };
    let mut keys = known(&MATCH_KEYS, &LOG_SELECTORS);
    keys.extend(["negate", "case_insensitive"]);
    check_keys(o, &keys, place, errs);
    let (negate, case_insensitive) = flags(o, place, errs);
    proto::LogMatcher {
        field: log_sel_into!(log_matcher, log_selector(o, "", place, errs)),
        r#match: match_into!(log_matcher, match_kind(o, place, errs)),
        negate,
        case_insensitive,
    }
}

fn log_target(v: &Json, errs: &mut ParseErrors) -> proto::LogTarget {
    let place = "log: ";
    let Some(o) = obj(v, place, errs) else {
        return proto::LogTarget::default();
    };
    check_keys(
        o,
        &["match", "keep", "transform", "sample_key"],
        place,
        errs,
    );
    let matchers = get(o, "match")
        .map(|m| list(m, "log: match: ", errs))
        .unwrap_or(&[])
        .iter()
        .enumerate()
        .map(|(i, m)| log_matcher(m, &format!("log: match[{i}]: "), errs))
        .collect();
    let keep = get(o, "keep")
        .map(|k| match k {
            Json::Null => String::new(),
            other => as_string(other, "log: keep: ", errs),
        })
        .unwrap_or_default();
    let sample_key = get(o, "sample_key").and_then(|k| {
        let p = "log: sample_key: ";
        let o = obj(k, p, errs)?;
        check_keys(o, &LOG_SELECTORS, p, errs);
        Some(proto::LogSampleKey {
            field: log_sel_into!(log_sample_key, log_selector(o, "", p, errs)),
        })
    });
    let transform = get(o, "transform").map(|t| log_transform(t, errs));
    proto::LogTarget {
        r#match: matchers,
        keep,
        transform,
        sample_key,
    }
}

fn log_transform(v: &Json, errs: &mut ParseErrors) -> proto::LogTransform {
    let place = "log: transform: ";
    let mut out = proto::LogTransform::default();
    let Some(o) = obj(v, place, errs) else {
        return out;
    };
    check_keys(o, &["remove", "redact", "rename", "add"], place, errs);
    let entries = |key: &str, errs: &mut ParseErrors| -> Vec<(String, Map<String, Json>)> {
        let Some(v) = get(o, key) else { return vec![] };
        list(v, &format!("{place}{key}: "), errs)
            .iter()
            .enumerate()
            .filter_map(|(i, e)| {
                let p = format!("{place}{key}[{i}]: ");
                obj(e, &p, errs).map(|m| (p, m.clone()))
            })
            .collect()
    };
    for (p, e) in entries("remove", errs) {
        check_keys(&e, &LOG_SELECTORS, &p, errs);
        out.remove.push(proto::LogRemove {
            field: log_sel_into!(log_remove, log_selector(&e, "", &p, errs)),
        });
    }
    for (p, e) in entries("redact", errs) {
        check_keys(
            &e,
            &known(&["replacement", "regex"], &LOG_SELECTORS),
            &p,
            errs,
        );
        out.redact.push(proto::LogRedact {
            field: log_sel_into!(log_redact, log_selector(&e, "", &p, errs)),
            // The YAML default of the specification; the wire cannot tell it from "".
            replacement: get(&e, "replacement")
                .map(|r| as_string(r, &p, errs))
                .unwrap_or_else(|| "[REDACTED]".to_string()),
            regex: get(&e, "regex").map(|r| as_string(r, &p, errs)),
        });
    }
    for (p, e) in entries("rename", errs) {
        check_keys(
            &e,
            &[
                "from_log_field",
                "from_log_attribute",
                "from_resource_attribute",
                "from_scope_attribute",
                "to",
                "upsert",
            ],
            &p,
            errs,
        );
        let from = log_selector(&e, "from_", &p, errs).map(|(i, f, path)| {
            use proto::log_rename::From;
            match i {
                0 => From::FromLogField(f.unwrap_or(0)),
                1 => From::FromLogAttribute(path.unwrap_or_default()),
                2 => From::FromResourceAttribute(path.unwrap_or_default()),
                _ => From::FromScopeAttribute(path.unwrap_or_default()),
            }
        });
        out.rename.push(proto::LogRename {
            from,
            to: get(&e, "to")
                .map(|t| as_string(t, &p, errs))
                .unwrap_or_default(),
            upsert: get(&e, "upsert").is_some_and(|u| as_bool(u, &p, errs)),
        });
    }
    for (p, e) in entries("add", errs) {
        check_keys(&e, &known(&["value", "upsert"], &LOG_SELECTORS), &p, errs);
        out.add.push(proto::LogAdd {
            field: log_sel_into!(log_add, log_selector(&e, "", &p, errs)),
            value: get(&e, "value")
                .map(|t| as_string(t, &p, errs))
                .unwrap_or_default(),
            upsert: get(&e, "upsert").is_some_and(|u| as_bool(u, &p, errs)),
        });
    }
    out
}

fn metric_matcher(v: &Json, place: &str, errs: &mut ParseErrors) -> proto::MetricMatcher {
    use metric_matcher::Field;
    let Some(o) = obj(v, place, errs) else {
        return proto::MetricMatcher::default();
    };
    let selectors = [
        "metric_field",
        "datapoint_attribute",
        "resource_attribute",
        "scope_attribute",
        "metric_type",
        "aggregation_temporality",
    ];
    let mut keys = known(&MATCH_KEYS, &selectors);
    keys.extend(["negate", "case_insensitive"]);
    check_keys(o, &keys, place, errs);
    let mut field = None;
    let mut count = 0;
    for key in selectors {
        let Some(v) = get(o, key) else { continue };
        count += 1;
        let p = format!("{place}{key}: ");
        field = Some(match key {
            "metric_field" => Field::MetricField(parse_enum(
                v,
                "METRIC_FIELD_",
                |s| proto::MetricField::from_str_name(s).map(|e| e as i32),
                &p,
                errs,
            )),
            "datapoint_attribute" => Field::DatapointAttribute(attribute_path(v, &p, errs)),
            "resource_attribute" => Field::ResourceAttribute(attribute_path(v, &p, errs)),
            "scope_attribute" => Field::ScopeAttribute(attribute_path(v, &p, errs)),
            "metric_type" => Field::MetricType(parse_enum(
                v,
                "METRIC_TYPE_",
                |s| proto::MetricType::from_str_name(s).map(|e| e as i32),
                &p,
                errs,
            )),
            _ => Field::AggregationTemporality(parse_enum(
                v,
                "AGGREGATION_TEMPORALITY_",
                |s| proto::AggregationTemporality::from_str_name(s).map(|e| e as i32),
                &p,
                errs,
            )),
        });
    }
    if count > 1 {
        errs.push(format!("{place}more than one field selector"));
    }
    let (negate, case_insensitive) = flags(o, place, errs);
    proto::MetricMatcher {
        field,
        r#match: match_into!(metric_matcher, match_kind(o, place, errs)),
        negate,
        case_insensitive,
    }
}

fn metric_target(v: &Json, errs: &mut ParseErrors) -> proto::MetricTarget {
    let place = "metric: ";
    let Some(o) = obj(v, place, errs) else {
        return proto::MetricTarget::default();
    };
    check_keys(o, &["match", "keep"], place, errs);
    let matchers = get(o, "match")
        .map(|m| list(m, "metric: match: ", errs))
        .unwrap_or(&[])
        .iter()
        .enumerate()
        .map(|(i, m)| metric_matcher(m, &format!("metric: match[{i}]: "), errs))
        .collect();
    let keep = match get(o, "keep") {
        None => {
            errs.push("metric: keep: required (true or false)".to_string());
            true
        }
        Some(Json::String(s)) if s.eq_ignore_ascii_case("all") => true,
        Some(Json::String(s)) if s.eq_ignore_ascii_case("none") => false,
        Some(k) => as_bool(k, "metric: keep: ", errs),
    };
    proto::MetricTarget {
        r#match: matchers,
        keep,
    }
}

fn trace_matcher(v: &Json, place: &str, errs: &mut ParseErrors) -> proto::TraceMatcher {
    use trace_matcher::Field;
    let Some(o) = obj(v, place, errs) else {
        return proto::TraceMatcher::default();
    };
    let selectors = [
        "trace_field",
        "span_attribute",
        "resource_attribute",
        "scope_attribute",
        "span_kind",
        "span_status",
        "event_name",
        "event_attribute",
        "link_trace_id",
    ];
    let mut keys = known(&MATCH_KEYS, &selectors);
    keys.extend(["negate", "case_insensitive"]);
    check_keys(o, &keys, place, errs);
    let mut field = None;
    let mut count = 0;
    for key in selectors {
        let Some(v) = get(o, key) else { continue };
        count += 1;
        let p = format!("{place}{key}: ");
        field = Some(match key {
            "trace_field" => Field::TraceField(parse_enum(
                v,
                "TRACE_FIELD_",
                |s| proto::TraceField::from_str_name(s).map(|e| e as i32),
                &p,
                errs,
            )),
            "span_attribute" => Field::SpanAttribute(attribute_path(v, &p, errs)),
            "resource_attribute" => Field::ResourceAttribute(attribute_path(v, &p, errs)),
            "scope_attribute" => Field::ScopeAttribute(attribute_path(v, &p, errs)),
            "span_kind" => Field::SpanKind(parse_enum(
                v,
                "SPAN_KIND_",
                |s| proto::SpanKind::from_str_name(s).map(|e| e as i32),
                &p,
                errs,
            )),
            "span_status" => Field::SpanStatus(parse_enum(
                v,
                "SPAN_STATUS_CODE_",
                span_status_code,
                &p,
                errs,
            )),
            "event_name" => Field::EventName(as_string(v, &p, errs)),
            "event_attribute" => Field::EventAttribute(attribute_path(v, &p, errs)),
            _ => Field::LinkTraceId(as_string(v, &p, errs)),
        });
    }
    if count > 1 {
        errs.push(format!("{place}more than one field selector"));
    }
    let (negate, case_insensitive) = flags(o, place, errs);
    proto::TraceMatcher {
        field,
        r#match: match_into!(trace_matcher, match_kind(o, place, errs)),
        negate,
        case_insensitive,
    }
}

fn trace_target(v: &Json, errs: &mut ParseErrors) -> proto::TraceTarget {
    let place = "trace: ";
    let Some(o) = obj(v, place, errs) else {
        return proto::TraceTarget::default();
    };
    check_keys(o, &["match", "keep"], place, errs);
    let matchers = get(o, "match")
        .map(|m| list(m, "trace: match: ", errs))
        .unwrap_or(&[])
        .iter()
        .enumerate()
        .map(|(i, m)| trace_matcher(m, &format!("trace: match[{i}]: "), errs))
        .collect();
    let keep = get(o, "keep").map(|k| sampling_config(k, errs));
    proto::TraceTarget {
        r#match: matchers,
        keep,
    }
}

fn sampling_config(v: &Json, errs: &mut ParseErrors) -> proto::TraceSamplingConfig {
    let place = "trace: keep: ";
    let mut out = proto::TraceSamplingConfig::default();
    // A bare percentage ("50%" or 50) is accepted as the percentage alone.
    match v {
        Json::Number(n) => {
            out.percentage = n.as_f64().unwrap_or(f64::NAN) as f32;
            return out;
        }
        Json::String(s) => {
            match s.trim().trim_end_matches('%').parse::<f32>() {
                Ok(p) => out.percentage = p,
                Err(_) => errs.push(format!("{place}invalid value {s:?}")),
            }
            return out;
        }
        _ => {}
    }
    let Some(o) = obj(v, place, errs) else {
        return out;
    };
    check_keys(
        o,
        &[
            "percentage",
            "mode",
            "sampling_precision",
            "hash_seed",
            "fail_closed",
        ],
        place,
        errs,
    );
    match get(o, "percentage").and_then(double_literal) {
        Some(p) => out.percentage = p as f32,
        None => errs.push(format!("{place}percentage: required number")),
    }
    out.mode = get(o, "mode").map(|m| {
        parse_enum(
            m,
            "SAMPLING_MODE_",
            |s| proto::SamplingMode::from_str_name(s).map(|e| e as i32),
            &format!("{place}mode: "),
            errs,
        )
    });
    out.sampling_precision = get(o, "sampling_precision").map(|p| {
        as_u64(p)
            .and_then(|x| u32::try_from(x).ok())
            .unwrap_or_else(|| {
                errs.push(format!("{place}sampling_precision: expected an integer"));
                0
            })
    });
    out.hash_seed = get(o, "hash_seed").map(|p| {
        as_u64(p)
            .and_then(|x| u32::try_from(x).ok())
            .unwrap_or_else(|| {
                errs.push(format!("{place}hash_seed: expected an unsigned integer"));
                0
            })
    });
    out.fail_closed = get(o, "fail_closed").map(|b| as_bool(b, place, errs));
    out
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
