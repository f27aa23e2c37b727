//! Building operators from their config: each type's fields as the Collector names them,
//! checked, with every problem named by its path.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde::Deserialize;
use weir_api::ConfigErrors;

use super::super::expr::{self, AddValue};
use super::super::timefmt::{self, TimeLayout, Zone};
use super::super::{id_list, Field, Root, Val};
use super::{
    Container, Format, KeyValue, Kind, Matcher, Parser, Recombine, Route, Router, SeverityParser,
    TimeParser,
};

fn field(
    v: Option<&serde_json::Value>,
    default: Option<Field>,
    rootable: bool,
    at: &str,
    name: &str,
    errors: &mut ConfigErrors,
) -> Option<Field> {
    match v {
        None => {
            if default.is_none() {
                errors.push(format!("{at}.{name}"), "required");
            }
            default
        }
        Some(serde_json::Value::String(s)) => match Field::parse(s, rootable) {
            Ok(f) => Some(f),
            Err(e) => {
                errors.push(format!("{at}.{name}"), e);
                None
            }
        },
        Some(other) => {
            errors.push(
                format!("{at}.{name}"),
                format!("{other} is not a field name"),
            );
            None
        }
    }
}

/// Checks that `m` has only `allowed` keys.
fn only(
    m: &serde_json::Map<String, serde_json::Value>,
    allowed: &[&str],
    at: &str,
    errors: &mut ConfigErrors,
) {
    for k in m.keys() {
        if !allowed.contains(&k.as_str()) {
            errors.push(
                format!("{at}.{k}"),
                format!(
                    "unknown field of this operator (it has: {}, and id, type, output, on_error, if)",
                    allowed.join(", ")
                ),
            );
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TimeCfg {
    #[serde(default)]
    parse_from: Option<String>,
    #[serde(default = "d_strptime")]
    layout_type: String,
    #[serde(default)]
    layout: Option<String>,
    #[serde(default)]
    location: Option<String>,
}
fn d_strptime() -> String {
    "strptime".into()
}

fn time_parser(v: &serde_json::Value, at: &str, errors: &mut ConfigErrors) -> Option<TimeParser> {
    let c: TimeCfg = match serde_json::from_value(v.clone()) {
        Ok(c) => c,
        Err(e) => {
            errors.push(at.to_string(), e.to_string());
            return None;
        }
    };
    let parse_from = match &c.parse_from {
        Some(s) => match Field::parse(s, false) {
            Ok(f) => f,
            Err(e) => {
                errors.push(format!("{at}.parse_from"), e);
                return None;
            }
        },
        None => {
            errors.push(format!("{at}.parse_from"), "required");
            return None;
        }
    };
    let Some(layout) = c.layout.clone() else {
        errors.push(format!("{at}.layout"), "required");
        return None;
    };
    let zone = match Zone::named(c.location.as_deref().unwrap_or("")) {
        Ok(z) => z,
        Err(e) => {
            errors.push(format!("{at}.location"), e);
            return None;
        }
    };
    let compiled = match c.layout_type.as_str() {
        "strptime" => timefmt::strptime(&layout).map(|l| TimeLayout::Pattern(l, zone)),
        "gotime" => timefmt::gotime(&layout).map(|l| TimeLayout::Pattern(l, zone)),
        "epoch" => timefmt::epoch(&layout),
        other => Err(format!("{other:?} is not one of strptime, gotime, epoch")),
    };
    match compiled {
        Ok(layout) => Some(TimeParser { parse_from, layout }),
        Err(e) => {
            let f = if c.layout_type == "strptime"
                || c.layout_type == "gotime"
                || c.layout_type == "epoch"
            {
                "layout"
            } else {
                "layout_type"
            };
            errors.push(format!("{at}.{f}"), e);
            None
        }
    }
}

/// Severity numbers by the Collector's names (`info`, `warn2`, `error`, `17`).
fn builtin(preset: &str) -> HashMap<String, i32> {
    let mut m = HashMap::new();
    if preset == "none" {
        return m;
    }
    for (base, name) in [
        (1, "trace"),
        (5, "debug"),
        (9, "info"),
        (13, "warn"),
        (17, "error"),
        (21, "fatal"),
    ] {
        for k in 0..4 {
            let n = base + k;
            let key = if k == 0 {
                name.to_string()
            } else {
                format!("{name}{}", k + 1)
            };
            m.insert(key, n);
            m.insert(n.to_string(), n);
        }
    }
    if preset != "otel" && preset != "aliases" {
        for (k, n) in [
            ("warning", 13),
            ("warning2", 14),
            ("warning3", 15),
            ("warning4", 16),
            ("err", 17),
            ("err2", 18),
            ("err3", 19),
            ("err4", 20),
        ] {
            m.insert(k.into(), n);
        }
    }
    m
}

fn severity_parser(
    v: &serde_json::Value,
    at: &str,
    errors: &mut ConfigErrors,
) -> Option<SeverityParser> {
    let Some(m) = v.as_object() else {
        errors.push(at.to_string(), "must be a map");
        return None;
    };
    only(
        m,
        &["parse_from", "preset", "mapping", "overwrite_text"],
        at,
        errors,
    );
    let parse_from = field(m.get("parse_from"), None, false, at, "parse_from", errors)?;
    let preset = m
        .get("preset")
        .and_then(|p| p.as_str())
        .unwrap_or("default");
    if !matches!(preset, "default" | "none" | "otel" | "aliases") {
        errors.push(
            format!("{at}.preset"),
            format!("{preset:?} is not one of default, none, otel"),
        );
    }
    let mut mapping = builtin(preset);
    let aliases = builtin("aliases");
    if let Some(map) = m.get("mapping") {
        let Some(map) = map.as_object() else {
            errors.push(
                format!("{at}.mapping"),
                "must be a map of severity to values",
            );
            return None;
        };
        for (sev, vals) in map {
            let Some(&n) = aliases.get(&sev.to_ascii_lowercase()) else {
                errors.push(format!("{at}.mapping.{sev}"), format!("{sev:?} is not a severity (trace, debug, info, warn, error, fatal, with 2-4 suffixes, or 1-24)"));
                continue;
            };
            let list: Vec<&serde_json::Value> = match vals {
                serde_json::Value::Array(a) => a.iter().collect(),
                other => vec![other],
            };
            for v in list {
                match v {
                    serde_json::Value::String(s) => match s.as_str() {
                        "2xx" | "3xx" | "4xx" | "5xx" => {
                            let base = (s.as_bytes()[0] - b'0') as i64 * 100;
                            for c in base..base + 100 {
                                mapping.insert(c.to_string(), n);
                            }
                        }
                        _ => {
                            mapping.insert(s.to_lowercase(), n);
                        }
                    },
                    serde_json::Value::Number(x) if x.is_i64() => {
                        mapping.insert(x.to_string(), n);
                    }
                    serde_json::Value::Object(r) if r.get("min").and_then(|x| x.as_i64()).is_some() && r.get("max").and_then(|x| x.as_i64()).is_some() => {
                        let a = r["min"].as_i64().unwrap_or(0);
                        let b = r["max"].as_i64().unwrap_or(0);
                        for c in a.min(b)..=a.max(b) {
                            mapping.insert(c.to_string(), n);
                        }
                    }
                    other => errors.push(format!("{at}.mapping.{sev}"), format!("{other} cannot be parsed as a severity (a string, an integer, a list of them, or {{min, max}})")),
                }
            }
        }
    }
    let overwrite_text = m
        .get("overwrite_text")
        .and_then(|b| b.as_bool())
        .unwrap_or(false);
    Some(SeverityParser {
        parse_from,
        mapping,
        overwrite_text,
    })
}

const PARSER_FIELDS: &[&str] = &["parse_from", "parse_to", "body", "timestamp", "severity"];

fn parser(
    m: &serde_json::Map<String, serde_json::Value>,
    extra: &[&str],
    at: &str,
    errors: &mut ConfigErrors,
) -> Option<Parser> {
    let mut allowed: Vec<&str> = PARSER_FIELDS.to_vec();
    allowed.extend_from_slice(extra);
    only(m, &allowed, at, errors);
    let parse_from = field(
        m.get("parse_from"),
        Some(Field::body()),
        false,
        at,
        "parse_from",
        errors,
    )?;
    let parse_to = field(
        m.get("parse_to"),
        Some(Field {
            root: Root::Attributes,
            keys: vec![],
        }),
        true,
        at,
        "parse_to",
        errors,
    )?;
    let body = match m.get("body") {
        None => None,
        Some(v) => Some(field(Some(v), None, false, at, "body", errors)?),
    };
    let time = match m.get("timestamp") {
        None => None,
        Some(v) => Some(time_parser(v, &format!("{at}.timestamp"), errors)?),
    };
    let severity = match m.get("severity") {
        None => None,
        Some(v) => Some(severity_parser(v, &format!("{at}.severity"), errors)?),
    };
    Some(Parser {
        parse_from,
        parse_to,
        body,
        time,
        severity,
    })
}

fn str_field(
    m: &serde_json::Map<String, serde_json::Value>,
    k: &str,
    at: &str,
    errors: &mut ConfigErrors,
) -> Option<String> {
    match m.get(k) {
        None => None,
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(other) => {
            errors.push(format!("{at}.{k}"), format!("{other} is not a string"));
            None
        }
    }
}

fn size_field(
    m: &serde_json::Map<String, serde_json::Value>,
    k: &str,
    at: &str,
    errors: &mut ConfigErrors,
) -> usize {
    match m.get(k) {
        None => 0,
        Some(v) => match crate::filelog::config::byte_size(v) {
            Ok(n) => n,
            Err(e) => {
                errors.push(format!("{at}.{k}"), e);
                0
            }
        },
    }
}

fn recombine(
    m: &serde_json::Map<String, serde_json::Value>,
    at: &str,
    errors: &mut ConfigErrors,
) -> Option<Recombine> {
    only(
        m,
        &[
            "combine_field",
            "is_first_entry",
            "is_last_entry",
            "max_batch_size",
            "max_unmatched_batch_size",
            "combine_with",
            "source_identifier",
            "overwrite_with",
            "force_flush_period",
            "max_sources",
            "max_log_size",
        ],
        at,
        errors,
    );
    let combine_field = field(
        m.get("combine_field"),
        None,
        false,
        at,
        "combine_field",
        errors,
    )?;
    let first_s = str_field(m, "is_first_entry", at, errors);
    let last_s = str_field(m, "is_last_entry", at, errors);
    let (first, src) = match (first_s, last_s) {
        (Some(f), None) => (true, f),
        (None, Some(l)) => (false, l),
        (Some(_), Some(_)) => {
            errors.push(
                format!("{at}.is_first_entry"),
                "only one of is_first_entry and is_last_entry can be set",
            );
            return None;
        }
        (None, None) => {
            errors.push(
                format!("{at}.is_first_entry"),
                "one of is_first_entry and is_last_entry must be set",
            );
            return None;
        }
    };
    let which = if first {
        "is_first_entry"
    } else {
        "is_last_entry"
    };
    let matcher = match expr::compile(&src) {
        Ok(e) => Matcher::Expr(e),
        Err(e) => {
            errors.push(
                format!("{at}.{which}"),
                format!("expression {src:?} is not supported: {e}"),
            );
            return None;
        }
    };
    let int = |k: &str, d: usize, errors: &mut ConfigErrors| match m.get(k) {
        None => d,
        Some(v) => match v.as_u64() {
            Some(n) => n as usize,
            None => {
                errors.push(
                    format!("{at}.{k}"),
                    format!("{v} is not a non-negative integer"),
                );
                d
            }
        },
    };
    let max_batch_size = int("max_batch_size", 1000, errors);
    let max_unmatched_batch_size = int("max_unmatched_batch_size", 100, errors);
    let max_sources = int("max_sources", 1000, errors);
    let source = field(
        m.get("source_identifier"),
        Some(Field::attr("file.path")),
        false,
        at,
        "source_identifier",
        errors,
    )?;
    let overwrite_newest = match str_field(m, "overwrite_with", at, errors).as_deref() {
        None | Some("oldest") => false,
        Some("newest") => true,
        Some(other) => {
            errors.push(
                format!("{at}.overwrite_with"),
                format!("{other:?} is not one of oldest, newest"),
            );
            false
        }
    };
    let force_flush = match m.get("force_flush_period") {
        None => Duration::from_secs(5),
        Some(v) => match v.as_str().map(humantime::parse_duration) {
            Some(Ok(d)) => d,
            _ => {
                errors.push(
                    format!("{at}.force_flush_period"),
                    format!("{v} is not a duration"),
                );
                Duration::from_secs(5)
            }
        },
    };
    Some(Recombine {
        first,
        matcher,
        max_batch_size,
        max_unmatched_batch_size,
        combine_field,
        combine_with: str_field(m, "combine_with", at, errors).unwrap_or_else(|| "\n".into()),
        source,
        overwrite_newest,
        force_flush,
        max_sources: max_sources.max(1),
        max_log_size: size_field(m, "max_log_size", at, errors),
        batches: BTreeMap::new(),
    })
}

/// Builds an operator of type `kind` from the rest of its fields.
pub fn build_kind(
    kind: &str,
    v: serde_json::Value,
    at: &str,
    errors: &mut ConfigErrors,
) -> Option<Kind> {
    let m = v.as_object().cloned().unwrap_or_default();
    let before = errors.0.len();
    let k = match kind {
        "noop" => {
            only(&m, &[], at, errors);
            Kind::Noop
        }
        "json_parser" => {
            let p = parser(&m, &["parse_ints"], at, errors)?;
            Kind::Json(
                p,
                m.get("parse_ints")
                    .and_then(|b| b.as_bool())
                    .unwrap_or(false),
            )
        }
        "regex_parser" => {
            let p = parser(&m, &["regex", "cache"], at, errors)?;
            let Some(src) = str_field(&m, "regex", at, errors) else {
                errors.push(format!("{at}.regex"), "required");
                return None;
            };
            let re = match regex::Regex::new(&src) {
                Ok(r) => r,
                Err(e) => {
                    errors.push(format!("{at}.regex"), format!("{src:?}: {e}"));
                    return None;
                }
            };
            if re.capture_names().flatten().next().is_none() {
                errors.push(
                    format!("{at}.regex"),
                    "no named capture groups in the regex ((?P<name>...))",
                );
            }
            Kind::Regex(p, re)
        }
        "key_value_parser" => {
            let p = parser(&m, &["delimiter", "pair_delimiter"], at, errors)?;
            let delimiter = str_field(&m, "delimiter", at, errors).unwrap_or_else(|| "=".into());
            let pair_delimiter = str_field(&m, "pair_delimiter", at, errors);
            if delimiter.is_empty() {
                errors.push(format!("{at}.delimiter"), "must not be empty");
            }
            if pair_delimiter.as_deref() == Some(delimiter.as_str()) {
                errors.push(format!("{at}.pair_delimiter"), "must differ from delimiter");
            }
            if pair_delimiter.as_deref() == Some("") {
                errors.push(format!("{at}.pair_delimiter"), "must not be empty");
            }
            Kind::KeyValue(
                p,
                KeyValue {
                    delimiter,
                    pair_delimiter,
                },
            )
        }
        "severity_parser" => Kind::Severity(severity_parser(&v, at, errors)?),
        "time_parser" => Kind::Time(time_parser(&v, at, errors)?),
        "container" => {
            only(
                &m,
                &[
                    "format",
                    "add_metadata_from_filepath",
                    "max_log_size",
                    "parse_from",
                ],
                at,
                errors,
            );
            let parse_from = field(
                m.get("parse_from"),
                Some(Field::body()),
                false,
                at,
                "parse_from",
                errors,
            )?;
            let format = match str_field(&m, "format", at, errors).as_deref() {
                None | Some("") => None,
                Some("docker") => Some(Format::Docker),
                Some("crio") => Some(Format::Crio),
                Some("containerd") => Some(Format::Containerd),
                Some(other) => {
                    errors.push(
                        format!("{at}.format"),
                        format!("{other:?} is not one of docker, crio, containerd"),
                    );
                    None
                }
            };
            let add_metadata = m
                .get("add_metadata_from_filepath")
                .and_then(|b| b.as_bool())
                .unwrap_or(true);
            Kind::Container(Box::new(Container {
                parse_from,
                format,
                add_metadata,
                recombine: Recombine {
                    first: false,
                    matcher: Matcher::LogtagF,
                    max_batch_size: 1000,
                    max_unmatched_batch_size: 100,
                    combine_field: Field::body(),
                    combine_with: String::new(),
                    source: Field::attr("log.file.path"),
                    overwrite_newest: false,
                    force_flush: Duration::from_secs(5),
                    max_sources: 1000,
                    max_log_size: size_field(&m, "max_log_size", at, errors),
                    batches: BTreeMap::new(),
                },
                metadata: None,
            }))
        }
        "move" | "copy" => {
            only(&m, &["from", "to"], at, errors);
            let from = field(m.get("from"), None, true, at, "from", errors);
            let to = field(m.get("to"), None, true, at, "to", errors);
            let (from, to) = (from?, to?);
            if kind == "move" {
                Kind::Move(from, to)
            } else {
                Kind::Copy(from, to)
            }
        }
        "add" => {
            only(&m, &["field", "value"], at, errors);
            let f = field(m.get("field"), None, true, at, "field", errors)?;
            let Some(value) = m.get("value") else {
                errors.push(format!("{at}.value"), "required");
                return None;
            };
            match AddValue::from_config(value) {
                Ok(v) => Kind::Add(f, v),
                Err(e) => {
                    errors.push(format!("{at}.value"), format!("not supported: {e}"));
                    return None;
                }
            }
        }
        "remove" => {
            only(&m, &["field"], at, errors);
            Kind::Remove(field(m.get("field"), None, true, at, "field", errors)?)
        }
        "flatten" => {
            only(&m, &["field"], at, errors);
            let f = field(m.get("field"), None, false, at, "field", errors)?;
            if f.root != Root::Body || f.keys.is_empty() {
                errors.push(
                    format!("{at}.field"),
                    "must be a field inside the body (body.x)",
                );
                return None;
            }
            Kind::Flatten(f)
        }
        "retain" => {
            only(&m, &["fields"], at, errors);
            let Some(list) = m.get("fields").and_then(|l| l.as_array()) else {
                errors.push(format!("{at}.fields"), "required: a list of fields");
                return None;
            };
            let mut fields = Vec::new();
            for (i, f) in list.iter().enumerate() {
                if let Some(f) = field(Some(f), None, false, at, &format!("fields[{i}]"), errors) {
                    fields.push(f);
                }
            }
            Kind::Retain(fields)
        }
        "router" => {
            only(&m, &["routes", "default"], at, errors);
            let default_raw = match m.get("default") {
                None => vec![],
                Some(v) => id_list(v).unwrap_or_else(|e| {
                    errors.push(format!("{at}.default"), e);
                    vec![]
                }),
            };
            let mut routes = Vec::new();
            for (i, r) in m
                .get("routes")
                .and_then(|r| r.as_array())
                .into_iter()
                .flatten()
                .enumerate()
            {
                let rat = format!("{at}.routes[{i}]");
                let Some(rm) = r.as_object() else {
                    errors.push(rat, "a route is a map with expr and output");
                    continue;
                };
                only(rm, &["expr", "output", "attributes"], &rat, errors);
                let Some(src) = str_field(rm, "expr", &rat, errors) else {
                    errors.push(format!("{rat}.expr"), "required");
                    continue;
                };
                let e = match expr::compile(&src) {
                    Ok(e) => e,
                    Err(e) => {
                        errors.push(
                            format!("{rat}.expr"),
                            format!("expression {src:?} is not supported: {e}"),
                        );
                        continue;
                    }
                };
                let output_raw = match rm.get("output") {
                    Some(v) => id_list(v).unwrap_or_else(|e| {
                        errors.push(format!("{rat}.output"), e);
                        vec![]
                    }),
                    None => {
                        errors.push(format!("{rat}.output"), "required");
                        vec![]
                    }
                };
                let attributes = match rm.get("attributes") {
                    None => BTreeMap::new(),
                    Some(serde_json::Value::Object(a)) => a
                        .iter()
                        .map(|(k, v)| (k.clone(), Val::from_json(v.clone())))
                        .collect(),
                    Some(other) => {
                        errors.push(format!("{rat}.attributes"), format!("{other} is not a map"));
                        BTreeMap::new()
                    }
                };
                routes.push(Route {
                    expr: e,
                    attributes,
                    output_raw,
                    output: vec![],
                });
            }
            if routes.is_empty() && !m.contains_key("routes") {
                errors.push(format!("{at}.routes"), "required: at least one route");
            }
            Kind::Router(Router {
                routes,
                default_raw,
                default: vec![],
            })
        }
        "filter" => {
            only(&m, &["expr", "drop_ratio"], at, errors);
            let Some(src) = str_field(&m, "expr", at, errors) else {
                errors.push(format!("{at}.expr"), "required");
                return None;
            };
            let e = match expr::compile(&src) {
                Ok(e) => e,
                Err(e) => {
                    errors.push(
                        format!("{at}.expr"),
                        format!("expression {src:?} is not supported: {e}"),
                    );
                    return None;
                }
            };
            let ratio = m.get("drop_ratio").map_or(Some(1.0), |v| v.as_f64());
            match ratio {
                Some(r) if (0.0..=1.0).contains(&r) => Kind::Filter(e, r, 0x9e37_79b9_7f4a_7c15),
                _ => {
                    errors.push(format!("{at}.drop_ratio"), "must be a number from 0 to 1");
                    return None;
                }
            }
        }
        "recombine" => Kind::Recombine(Box::new(recombine(&m, at, errors)?)),
        other => {
            errors.push(
                format!("{at}.type"),
                format!("operator type {other:?} is not supported by weir's filelog receiver (it has: container, json_parser, regex_parser, key_value_parser, severity_parser, time_parser, move, copy, add, remove, flatten, retain, router, filter, recombine, noop)"),
            );
            return None;
        }
    };
    (errors.0.len() == before).then_some(k)
}
