//! The operator types: their config fields (as the Collector names them) and what they do.
// A failed entry is handed back with its error (on_error may send it on); errors are the
// rare path, so the size of the Err variant does not matter here.
#![allow(clippy::result_large_err)]

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use serde::Deserialize;
use weir_api::ConfigErrors;

use super::expr::{self, AddValue, Expr};
use super::timefmt::{self, TimeLayout, Zone};
use super::{id_list, json, Entry, Field, Root, Sent, Val};

/// An operator type with its settings and state.
#[derive(Debug, Clone)]
pub enum Kind {
    Noop,
    Json(Parser, bool),
    Regex(Parser, regex::Regex),
    KeyValue(Parser, KeyValue),
    Severity(SeverityParser),
    Time(TimeParser),
    Container(Box<Container>),
    Move(Field, Field),
    Copy(Field, Field),
    Add(Field, AddValue),
    Remove(Field),
    Flatten(Field),
    Retain(Vec<Field>),
    Router(Router),
    Filter(Expr, f64, u64),
    Recombine(Box<Recombine>),
}

/// What every parser shares: where from, where to, and the embedded blocks.
#[derive(Debug, Clone)]
pub struct Parser {
    parse_from: Field,
    parse_to: Field,
    body: Option<Field>,
    time: Option<TimeParser>,
    severity: Option<SeverityParser>,
}

#[derive(Debug, Clone)]
pub struct TimeParser {
    parse_from: Field,
    layout: TimeLayout,
}

#[derive(Debug, Clone)]
pub struct SeverityParser {
    parse_from: Field,
    mapping: HashMap<String, i32>,
    overwrite_text: bool,
}

#[derive(Debug, Clone)]
pub struct KeyValue {
    delimiter: String,
    pair_delimiter: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Router {
    routes: Vec<Route>,
    default_raw: Vec<String>,
    default: Vec<usize>,
}

#[derive(Debug, Clone)]
struct Route {
    expr: Expr,
    attributes: BTreeMap<String, Val>,
    output_raw: Vec<String>,
    output: Vec<usize>,
}

impl Router {
    pub fn targets(&self, r: usize) -> &[usize] {
        self.routes.get(r).map_or(&self.default, |x| &x.output)
    }
    pub fn all_targets(&self) -> Vec<usize> {
        let mut v = self.default.clone();
        for r in &self.routes {
            v.extend(&r.output);
        }
        v
    }
    pub fn resolve(&mut self, mut find: impl FnMut(&str, &str) -> Option<usize>) {
        for (i, r) in self.routes.iter_mut().enumerate() {
            let field = format!("routes[{i}].output");
            r.output = r
                .output_raw
                .iter()
                .filter_map(|o| find(o, &field))
                .collect();
        }
        self.default = self
            .default_raw
            .iter()
            .filter_map(|o| find(o, "default"))
            .collect();
    }
}

/// The container operator's settings and its internal recombine (CRI partial lines).
#[derive(Debug, Clone)]
pub struct Container {
    parse_from: Field,
    format: Option<Format>,
    add_metadata: bool,
    recombine: Recombine,
    /// The Kubernetes metadata of the last `log.file.path` seen (`None`: the path did not
    /// match), so the path pattern runs once per file rather than once per line.
    metadata: Option<(String, Option<[String; 5]>)>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Format {
    Docker,
    Crio,
    Containerd,
}

#[derive(Debug, Clone)]
enum Matcher {
    Expr(Expr),
    /// `attributes.logtag == 'F'` (the container operator's).
    LogtagF,
}

#[derive(Debug, Clone)]
pub struct Recombine {
    first: bool,
    matcher: Matcher,
    max_batch_size: usize,
    max_unmatched_batch_size: usize,
    combine_field: Field,
    combine_with: String,
    source: Field,
    overwrite_newest: bool,
    force_flush: Duration,
    max_sources: usize,
    max_log_size: usize,
    batches: BTreeMap<String, RBatch>,
}

#[derive(Debug, Clone)]
struct RBatch {
    base: Entry,
    /// Where the lines of all entries in the batch start (earliest per file).
    origin: super::Origin,
    n: usize,
    text: String,
    started: Instant,
    matched: bool,
}

const DEFAULT_SOURCE: &str = "DefaultSourceIdentifier";

/// A failure and the entry (`None`: the entry is dropped whatever `on_error` says, as the
/// Collector's container operator does with CRI lines it fails on after parsing them).
type Res = Result<Sent, (String, Option<Entry>)>;

// ---------------------------------------------------------------- config

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
        Some(v) => match super::super::byte_size(v) {
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

// ---------------------------------------------------------------- processing

impl TimeParser {
    fn apply(&self, e: &mut Entry) -> Result<(), String> {
        let v = self
            .parse_from
            .get(e)
            .ok_or_else(|| format!("time: entry has no field {}", self.parse_from))?;
        e.timestamp = self.layout.parse(v).map_err(|x| format!("time: {x}"))?;
        Ok(())
    }
}

const SEVERITY_NAMES: [&str; 6] = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];

fn severity_name(n: i32) -> String {
    if !(1..=24).contains(&n) {
        return "DEFAULT".into();
    }
    let base = SEVERITY_NAMES[((n - 1) / 4) as usize];
    match (n - 1) % 4 {
        0 => base.to_string(),
        k => format!("{base}{}", k + 1),
    }
}

impl SeverityParser {
    fn apply(&self, e: &mut Entry) -> Result<(), String> {
        let v = self
            .parse_from
            .get(e)
            .ok_or_else(|| format!("severity: entry has no field {}", self.parse_from))?;
        let lower = |s: &str| -> String {
            if s.bytes().all(|b| b.is_ascii() && !b.is_ascii_uppercase()) {
                s.to_string()
            } else {
                s.to_lowercase()
            }
        };
        let (key, text): (Cow<'_, str>, String) = match v {
            Val::Str(s) if s.bytes().all(|b| b.is_ascii() && !b.is_ascii_uppercase()) => {
                (Cow::Borrowed(s.as_str()), s.clone())
            }
            Val::Str(s) => (Cow::Owned(lower(s)), s.clone()),
            Val::Int(i) => (Cow::Owned(i.to_string()), i.to_string()),
            Val::Double(d) if d.fract() == 0.0 => {
                (Cow::Owned((*d as i64).to_string()), (*d as i64).to_string())
            }
            Val::Bytes(b) => {
                let s = String::from_utf8_lossy(b).into_owned();
                (Cow::Owned(lower(&s)), s)
            }
            other => {
                return Err(format!(
                    "severity: type {} cannot be a severity",
                    other.kind()
                ))
            }
        };
        let n = self.mapping.get(key.as_ref()).copied().unwrap_or(0);
        e.severity = n;
        e.severity_text = if self.overwrite_text {
            severity_name(n)
        } else {
            text
        };
        Ok(())
    }
}

fn as_text<'a>(v: &'a Val, what: &str) -> Result<Cow<'a, str>, String> {
    match v {
        Val::Str(s) => Ok(Cow::Borrowed(s)),
        Val::Bytes(b) => Ok(String::from_utf8_lossy(b)),
        other => Err(format!("type {} cannot be parsed as {what}", other.kind())),
    }
}

/// Splits on whitespace outside of quotes.
fn split_ws(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = None;
    let mut quote: Option<char> = None;
    for (i, c) in s.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => {
                quote = Some(c);
                start.get_or_insert(i);
            }
            None if c.is_whitespace() => {
                if let Some(st) = start.take() {
                    out.push(&s[st..i]);
                }
            }
            None => {
                start.get_or_insert(i);
            }
        }
    }
    if let Some(st) = start {
        out.push(&s[st..]);
    }
    out
}

fn clean(s: &str) -> String {
    s.trim().trim_matches(|c| c == '"' || c == '\'').to_string()
}

impl Parser {
    /// The shared flow: value from parse_from, parsed, set at parse_to, then body,
    /// timestamp and severity.
    fn run(
        &self,
        mut e: Entry,
        f: impl FnOnce(&Val) -> Result<Val, String>,
        fwd: &mut Vec<Entry>,
    ) -> Res {
        let Some(v) = self.parse_from.get(&e) else {
            return Err((
                format!("entry has no field {} to parse", self.parse_from),
                Some(e),
            ));
        };
        let parsed = match f(v) {
            Ok(p) => p,
            Err(x) => return Err((x, Some(e))),
        };
        self.parse_to.set(&mut e, parsed);
        if let Some(b) = &self.body {
            if let Some(v) = b.get(&e).cloned() {
                e.body = v;
            }
        }
        if let Some(t) = &self.time {
            if let Err(x) = t.apply(&mut e) {
                return Err((x, Some(e)));
            }
        }
        if let Some(s) = &self.severity {
            if let Err(x) = s.apply(&mut e) {
                return Err((x, Some(e)));
            }
        }
        fwd.push(e);
        Ok(Sent::Next)
    }
}

impl Kind {
    pub fn process(&mut self, mut e: Entry, fwd: &mut Vec<Entry>) -> Res {
        match self {
            Kind::Noop => {
                fwd.push(e);
                Ok(Sent::Next)
            }
            Kind::Json(p, ints) => {
                let ints = *ints;
                p.run(
                    e,
                    |v| {
                        let text = as_text(v, "JSON")?;
                        match json::parse(&text, ints) {
                            Ok(m @ Val::Map(_)) => Ok(m),
                            // Named as an integer-keeping parse names it.
                            Ok(_) => Err(format!(
                                "json: {} is not a JSON object",
                                json::parse(&text, true).map_or("nil", |v| v.kind())
                            )),
                            Err(x) => Err(format!("json: {x}")),
                        }
                    },
                    fwd,
                )
            }
            Kind::Regex(p, re) => p.run(
                e,
                |v| {
                    let text = as_text(v, "regex")?;
                    let caps = re.captures(&text).ok_or("regex pattern does not match")?;
                    let mut m = BTreeMap::new();
                    for name in re.capture_names().flatten() {
                        let s = caps.name(name).map_or("", |c| c.as_str());
                        m.insert(name.to_string(), Val::Str(s.to_string()));
                    }
                    Ok(Val::Map(m))
                },
                fwd,
            ),
            Kind::KeyValue(p, kv) => p.run(
                e,
                |v| {
                    let text = as_text(v, "key-value pairs")?;
                    let pairs: Vec<&str> = match &kv.pair_delimiter {
                        None => split_ws(&text),
                        Some(d) => text
                            .split(d.as_str())
                            .filter(|s| !s.trim().is_empty())
                            .collect(),
                    };
                    let mut m = BTreeMap::new();
                    let mut bad = Vec::new();
                    for pair in pairs {
                        match pair.split_once(kv.delimiter.as_str()) {
                            Some((k, v)) => {
                                m.insert(clean(k), Val::Str(clean(v)));
                            }
                            None => bad.push(pair.to_string()),
                        }
                    }
                    if !bad.is_empty() {
                        return Err(format!(
                            "expected {:?} to split by {:?}",
                            bad[0], kv.delimiter
                        ));
                    }
                    Ok(Val::Map(m))
                },
                fwd,
            ),
            Kind::Severity(s) => match s.apply(&mut e) {
                Ok(()) => {
                    fwd.push(e);
                    Ok(Sent::Next)
                }
                Err(x) => Err((x, Some(e))),
            },
            Kind::Time(t) => match t.apply(&mut e) {
                Ok(()) => {
                    fwd.push(e);
                    Ok(Sent::Next)
                }
                Err(x) => Err((x, Some(e))),
            },
            Kind::Container(c) => c.process(e, fwd),
            Kind::Move(from, to) => match from.delete(&mut e) {
                Some(v) => {
                    to.set(&mut e, v);
                    fwd.push(e);
                    Ok(Sent::Next)
                }
                None => Err((format!("move: field {from} does not exist"), Some(e))),
            },
            Kind::Copy(from, to) => match from.get_owned(&e) {
                Some(v) => {
                    to.set(&mut e, v);
                    fwd.push(e);
                    Ok(Sent::Next)
                }
                None => Err((format!("copy: field {from} does not exist"), Some(e))),
            },
            Kind::Add(f, v) => {
                let v = v.value(&e);
                f.set(&mut e, v);
                fwd.push(e);
                Ok(Sent::Next)
            }
            Kind::Remove(f) => match f.delete(&mut e) {
                Some(_) => {
                    fwd.push(e);
                    Ok(Sent::Next)
                }
                None => Err((format!("remove: field {f} does not exist"), Some(e))),
            },
            Kind::Flatten(f) => match f.get(&e) {
                Some(Val::Map(_)) => {
                    let Some(Val::Map(inner)) = f.delete(&mut e) else {
                        return Err((format!("flatten: field {f} is not a map"), Some(e)));
                    };
                    let parent = &f.keys[..f.keys.len() - 1];
                    for (k, v) in inner {
                        let mut keys = parent.to_vec();
                        keys.push(k);
                        Field {
                            root: Root::Body,
                            keys,
                        }
                        .set(&mut e, v);
                    }
                    fwd.push(e);
                    Ok(Sent::Next)
                }
                Some(other) => Err((
                    format!("flatten: field {f} is a {}, not a map", other.kind()),
                    Some(e),
                )),
                None => Err((format!("flatten: field {f} does not exist"), Some(e))),
            },
            Kind::Retain(fields) => {
                let mut out = Entry {
                    body: e.body.clone(),
                    attributes: e.attributes.clone(),
                    resource: e.resource.clone(),
                    ..e.clone()
                };
                for root in [Root::Body, Root::Attributes, Root::Resource] {
                    let keep: Vec<&Field> = fields.iter().filter(|f| f.root == root).collect();
                    if keep.is_empty() {
                        continue;
                    }
                    match root {
                        Root::Body => out.body = Val::Map(BTreeMap::new()),
                        Root::Attributes => out.attributes.clear(),
                        Root::Resource => out.resource.clear(),
                    }
                    for f in keep {
                        if let Some(v) = f.get_owned(&e) {
                            f.set(&mut out, v);
                        }
                    }
                }
                fwd.push(out);
                Ok(Sent::Next)
            }
            Kind::Router(r) => {
                for (i, route) in r.routes.iter().enumerate() {
                    if route.expr.test(&e) {
                        for (k, v) in &route.attributes {
                            e.attributes.insert(k.clone(), v.clone());
                        }
                        fwd.push(e);
                        return Ok(Sent::Route(i));
                    }
                }
                if !r.default.is_empty() {
                    fwd.push(e);
                }
                Ok(Sent::Route(usize::MAX))
            }
            Kind::Filter(x, ratio, state) => {
                if x.test(&e) {
                    // xorshift64: uniform enough for a sampling ratio.
                    *state ^= *state << 13;
                    *state ^= *state >> 7;
                    *state ^= *state << 17;
                    let u = (*state >> 11) as f64 / (1u64 << 53) as f64;
                    if u < *ratio {
                        return Ok(Sent::Next);
                    }
                }
                fwd.push(e);
                Ok(Sent::Next)
            }
            Kind::Recombine(r) => {
                r.process(e, fwd);
                Ok(Sent::Next)
            }
        }
    }

    pub fn held(&self, f: &mut dyn FnMut(super::Start)) {
        let r = match self {
            Kind::Recombine(r) => r,
            Kind::Container(c) => &c.recombine,
            _ => return,
        };
        for b in r.batches.values() {
            for s in b.origin.starts() {
                f(*s);
            }
        }
    }

    pub fn flush_due(&mut self, all: bool, fwd: &mut Vec<Entry>) {
        match self {
            Kind::Recombine(r) => r.flush_due(all, fwd),
            Kind::Container(c) => c.recombine.flush_due(all, fwd),
            _ => {}
        }
    }
}

impl Recombine {
    fn matches(&self, e: &Entry) -> bool {
        match &self.matcher {
            Matcher::Expr(x) => x.test(e),
            Matcher::LogtagF => matches!(e.attributes.get("logtag"), Some(Val::Str(s)) if s == "F"),
        }
    }

    fn process(&mut self, e: Entry, fwd: &mut Vec<Entry>) {
        let m = self.matches(&e);
        if m && !self.first {
            // An entry that ends a batch while none is open for its source goes on as
            // `add` then `flush` would send it, without opening one.
            let alone = {
                let source = match self.source.get(&e) {
                    Some(Val::Str(s)) if !s.is_empty() => s.as_str(),
                    _ => DEFAULT_SOURCE,
                };
                !self.batches.contains_key(source) && self.batches.len() < self.max_sources
            };
            if alone {
                let mut e = e;
                if !matches!(self.combine_field.get(&e), Some(Val::Str(_))) {
                    self.combine_field.set(&mut e, Val::Str(String::new()));
                }
                fwd.push(e);
                return;
            }
        }
        let source = match self.source.get(&e) {
            Some(Val::Str(s)) if !s.is_empty() => s.clone(),
            _ => DEFAULT_SOURCE.to_string(),
        };
        if m && self.first {
            self.flush(&source, fwd);
            self.add(e, &source, m, fwd);
        } else if m {
            self.add(e, &source, m, fwd);
            self.flush(&source, fwd);
        } else {
            self.add(e, &source, m, fwd);
        }
    }

    fn add(&mut self, mut e: Entry, source: &str, m: bool, fwd: &mut Vec<Entry>) {
        let origin = std::mem::take(&mut e.origin);
        let piece = match self.combine_field.get(&e) {
            Some(Val::Str(s)) => Some(s.clone()),
            _ => None,
        };
        if !self.batches.contains_key(source) && self.batches.len() >= self.max_sources {
            tracing::warn!(
                "recombine: too many sources; flushing all batched entries (raise max_sources)"
            );
            self.flush_due(true, fwd);
        }
        let newest = self.overwrite_newest;
        let b = match self.batches.get_mut(source) {
            Some(b) => {
                b.n += 1;
                if newest {
                    b.base = e;
                }
                b
            }
            None => self.batches.entry(source.to_string()).or_insert(RBatch {
                base: e,
                origin: super::Origin::None,
                n: 1,
                text: String::new(),
                started: Instant::now(),
                matched: false,
            }),
        };
        b.matched |= m;
        b.origin.merge(&origin);
        if let Some(p) = piece {
            if !b.text.is_empty() {
                b.text.push_str(&self.combine_with);
            }
            b.text.push_str(&p);
        }
        if (self.max_log_size > 0 && b.text.len() > self.max_log_size)
            || (self.max_batch_size > 0 && b.n >= self.max_batch_size)
            || (!b.matched
                && self.max_unmatched_batch_size > 0
                && b.n >= self.max_unmatched_batch_size)
        {
            self.flush(source, fwd);
        }
    }

    fn flush(&mut self, source: &str, fwd: &mut Vec<Entry>) {
        if let Some(b) = self.batches.remove(source) {
            let mut e = b.base;
            e.origin = b.origin;
            self.combine_field.set(&mut e, Val::Str(b.text));
            fwd.push(e);
        }
    }

    fn flush_due(&mut self, all: bool, fwd: &mut Vec<Entry>) {
        let due: Vec<String> = self
            .batches
            .iter()
            .filter(|(_, b)| all || b.started.elapsed() >= self.force_flush)
            .map(|(k, _)| k.clone())
            .collect();
        for s in due {
            self.flush(&s, fwd);
        }
    }
}

fn path_re() -> &'static regex::Regex {
    static R: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    R.get_or_init(|| {
        regex::Regex::new(r"^.*(/|\\)(?P<namespace>[^_]+)_(?P<pod_name>[^_]+)_(?P<uid>[a-f0-9\-]+)(/|\\)(?P<container_name>[^\._]+)(/|\\)(?P<restart_count>\d+)\.log$")
            .expect("static regex")
    })
}
fn layout_utc() -> &'static timefmt::Layout {
    static L: std::sync::OnceLock<timefmt::Layout> = std::sync::OnceLock::new();
    L.get_or_init(|| timefmt::gotime("2006-01-02T15:04:05.999Z").expect("static layout"))
}
fn layout_crio() -> &'static (timefmt::Layout, Zone) {
    static L: std::sync::OnceLock<(timefmt::Layout, Zone)> = std::sync::OnceLock::new();
    L.get_or_init(|| {
        (
            timefmt::gotime("2006-01-02T15:04:05.999999999Z07:00").expect("static layout"),
            Zone::named("Local").unwrap_or(Zone::Utc),
        )
    })
}

/// The fields of a CRI-O (`containerd` false) or containerd line as the patterns
/// `^(?P<time>[^ Z]+) (?P<stream>stdout|stderr) (?P<logtag>[^ ]*) ?(?P<log>.*)$` and
/// `^(?P<time>[^ ^Z]+Z) (?P<stream>stdout|stderr) (?P<logtag>[^ ]*) ?(?P<log>.*)$` capture
/// them (`None` where they do not match), found without running them: the time, the stream,
/// the log tag and where the log starts.
fn cri_fields(s: &str, containerd: bool) -> Option<(&str, &'static str, &str, usize)> {
    // The time holds no space, so it ends at the first one.
    let sp = s.find(' ')?;
    let time = &s[..sp];
    if containerd {
        let t = time.strip_suffix('Z')?;
        if t.is_empty() || t.contains(['^', 'Z']) {
            return None;
        }
    } else if time.is_empty() || time.contains('Z') {
        return None;
    }
    let rest = &s[sp + 1..];
    let stream = if rest.starts_with("stdout ") {
        "stdout"
    } else if rest.starts_with("stderr ") {
        "stderr"
    } else {
        return None;
    };
    let tag_at = sp + 1 + stream.len() + 1;
    let tag_len = s[tag_at..].find(' ').unwrap_or(s.len() - tag_at);
    let mut log_at = tag_at + tag_len;
    if s.as_bytes().get(log_at) == Some(&b' ') {
        log_at += 1;
    }
    // `.` does not match a newline, and `$` is the end of the text.
    if s[log_at..].contains('\n') {
        return None;
    }
    Some((time, stream, &s[tag_at..tag_at + tag_len], log_at))
}

/// Parses the time of a container line.
fn container_time(format: Format, s: &str) -> Result<u64, String> {
    if format == Format::Crio {
        let (l, z) = layout_crio();
        l.parse(s, z)
    } else {
        layout_utc().parse(s, &Zone::Utc)
    }
}

impl Container {
    fn process(&mut self, mut e: Entry, fwd: &mut Vec<Entry>) -> Res {
        let raw = match self.parse_from.get(&e) {
            Some(Val::Str(s)) => s,
            Some(other) => {
                let k = other.kind();
                return Err((
                    format!("container: type {k} cannot be parsed as container logs"),
                    Some(e),
                ));
            }
            None => {
                return Err((
                    format!("container: entry has no field {}", self.parse_from),
                    Some(e),
                ))
            }
        };
        let format = match self.format {
            Some(f) => f,
            None if raw.starts_with('{') => Format::Docker,
            None if cri_fields(raw, false).is_some() => Format::Crio,
            None if cri_fields(raw, true).is_some() => Format::Containerd,
            None => {
                return Err((
                    "container: failed to detect a valid container log format".into(),
                    Some(e),
                ))
            }
        };
        if format != Format::Docker {
            // A CRI line the operator fails on is dropped whatever on_error says.
            let Some((time, stream, logtag, log_at)) =
                cri_fields(raw, format == Format::Containerd)
            else {
                let name = if format == Format::Crio {
                    "crio"
                } else {
                    "containerd"
                };
                return Err((
                    format!("container: {name} log: regex pattern does not match"),
                    None,
                ));
            };
            let t = container_time(format, time)
                .map_err(|x| (format!("container: failed to parse time: {x}"), None))?;
            let logtag = logtag.to_string();
            let log = if self.parse_from == Field::body() {
                // The log is the end of the body: cut the body's front off in place.
                match std::mem::replace(&mut e.body, Val::Null) {
                    Val::Str(mut b) => {
                        b.drain(..log_at);
                        b
                    }
                    _ => String::new(),
                }
            } else {
                raw[log_at..].to_string()
            };
            // As if the four captures were set on the attributes and time, log and stream
            // then moved away (so attributes of those names are gone).
            e.attributes.remove("time");
            e.attributes.remove("log");
            e.attributes.remove("stream");
            e.attributes.insert("logtag".into(), Val::Str(logtag));
            e.timestamp = t;
            e.body = Val::Str(log);
            e.attributes
                .insert("log.iostream".into(), Val::Str(stream.to_string()));
            self.add_metadata(&mut e).map_err(|(msg, _)| (msg, None))?;
            self.recombine.process(e, fwd);
            return Ok(Sent::Next);
        }
        let parsed = match json::parse(raw, false) {
            Ok(m @ Val::Map(_)) => m,
            Ok(_) => {
                return Err((
                    "container: docker log line is not a JSON object".into(),
                    Some(e),
                ))
            }
            Err(x) => return Err((format!("container: docker log line: {x}"), Some(e))),
        };
        Field {
            root: Root::Attributes,
            keys: vec![],
        }
        .set(&mut e, parsed);
        self.after_docker(e, fwd)
    }

    /// Time, moves and Kubernetes metadata after a docker line was parsed into the
    /// attributes.
    fn after_docker(&mut self, mut e: Entry, fwd: &mut Vec<Entry>) -> Res {
        // time -> timestamp (the attribute is removed, as with the Collector's default
        // feature gate filelog.container.removeOriginalTimeField)
        let t = match e.attributes.get("time") {
            Some(Val::Str(s)) => container_time(Format::Docker, s),
            _ => Err("no time field".to_string()),
        };
        match t {
            Ok(ns) => e.timestamp = ns,
            Err(x) => return Err((format!("container: failed to parse time: {x}"), Some(e))),
        }
        e.attributes.remove("time");
        match e.attributes.remove("log") {
            Some(v) => e.body = v,
            None => return Err(("container: move: field log does not exist".into(), Some(e))),
        }
        match e.attributes.remove("stream") {
            Some(v) => {
                e.attributes.insert("log.iostream".into(), v);
            }
            None => {
                return Err((
                    "container: move: field stream does not exist".into(),
                    Some(e),
                ))
            }
        }
        if let Err((msg, _)) = self.add_metadata(&mut e) {
            return Err((msg, Some(e)));
        }
        fwd.push(e);
        Ok(Sent::Next)
    }

    /// The Kubernetes metadata from `log.file.path` onto the resource (with
    /// `add_metadata_from_filepath`).
    fn add_metadata(&mut self, e: &mut Entry) -> Result<(), (String, Option<Entry>)> {
        if !self.add_metadata {
            return Ok(());
        }
        let path = match e.attributes.get("log.file.path") {
            Some(Val::Str(p)) => p,
            _ => return Err(("container: no log.file.path attribute for the Kubernetes metadata (set include_file_path: true, or add_metadata_from_filepath: false)".into(), None)),
        };
        if self.metadata.as_ref().map(|(p, _)| p) != Some(path) {
            let values = path_re().captures(path).map(|c| {
                [
                    "container_name",
                    "namespace",
                    "pod_name",
                    "restart_count",
                    "uid",
                ]
                .map(|g| c.name(g).map_or("", |x| x.as_str()).to_string())
            });
            self.metadata = Some((path.clone(), values));
        }
        let Some((_, Some(values))) = &self.metadata else {
            return Err((format!("container: {path:?} is not a /var/log/pods/<namespace>_<pod>_<uid>/<container>/<n>.log path"), None));
        };
        for (k, v) in [
            "k8s.container.name",
            "k8s.namespace.name",
            "k8s.pod.name",
            "k8s.container.restart_count",
            "k8s.pod.uid",
        ]
        .iter()
        .zip(values)
        {
            e.resource.insert((*k).into(), Val::Str(v.clone()));
        }
        Ok(())
    }
}

#[cfg(test)]
pub(super) fn severity_name_for_tests(n: i32) -> String {
    severity_name(n)
}
