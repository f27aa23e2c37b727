//! Reading the component sections (`receivers:`, `processors:`, ...): component ids and
//! their types, unknown keys and types with a "did you mean" suggestion, and the id
//! lists of a pipeline.

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use weir_api::{ComponentId, ConfigErrors, Registry, Signal, SignalSet};

/// The closest of `candidates` to `word`, if close enough to be a likely typo.
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn unknown_key(key: &str, allowed: &[&str]) -> String {
    match suggest(key, allowed.iter().copied()) {
        Some(s) => format!("unknown key \"{key}\" (did you mean \"{s}\"?)"),
        None => format!(
            "unknown key \"{key}\" (expected one of: {})",
            allowed.join(", ")
        ),
    }
}

pub(super) fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

/// The map at `key` of `parent`; absent or null is empty; anything else is an error.
pub(super) fn section<'a>(
    parent: &'a Map<String, Value>,
    key: &str,
    path: &str,
    errors: &mut ConfigErrors,
) -> Option<&'a Map<String, Value>> {
    match parent.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) => Some(m),
        Some(other) => {
            errors.push(path, format!("expected a map, found {}", kind_of(other)));
            None
        }
    }
}

/// The four kinds of component sections, for messages and lookups.
#[derive(Clone, Copy)]
pub(super) enum Kind {
    Receiver,
    Processor,
    Exporter,
    Extension,
    Connector,
}

impl Kind {
    pub(super) fn word(self) -> &'static str {
        match self {
            Kind::Receiver => "receiver",
            Kind::Processor => "processor",
            Kind::Exporter => "exporter",
            Kind::Extension => "extension",
            Kind::Connector => "connector",
        }
    }
    pub(super) fn section(self) -> &'static str {
        match self {
            Kind::Receiver => "receivers",
            Kind::Processor => "processors",
            Kind::Exporter => "exporters",
            Kind::Extension => "extensions",
            Kind::Connector => "connectors",
        }
    }
    fn types(self, r: &Registry) -> Vec<&str> {
        match self {
            Kind::Receiver => r.receivers.keys().map(String::as_str).collect(),
            Kind::Processor => r.processors.keys().map(String::as_str).collect(),
            Kind::Exporter => r.exporters.keys().map(String::as_str).collect(),
            Kind::Extension => r.extensions.keys().map(String::as_str).collect(),
            Kind::Connector => r.connectors.keys().map(String::as_str).collect(),
        }
    }
    /// Signals supported by type `t`; `None` when the type is unknown.
    fn signals(self, r: &Registry, t: &str) -> Option<SignalSet> {
        match self {
            Kind::Receiver => r.receivers.get(t).map(|f| f.signals()),
            Kind::Processor => r.processors.get(t).map(|f| f.signals()),
            Kind::Exporter => r.exporters.get(t).map(|f| f.signals()),
            Kind::Extension => r.extensions.get(t).map(|_| SignalSet::NONE),
            // A connector's signals depend on the pipeline at its other end: checked apart.
            Kind::Connector => None,
        }
    }
}

fn unknown_type(kind: Kind, t: &str, registry: &Registry) -> String {
    let known = kind.types(registry);
    match suggest(t, known.iter().copied()) {
        Some(s) => format!(
            "unknown {} type \"{t}\" (did you mean \"{s}\"?)",
            kind.word()
        ),
        None if known.is_empty() => format!(
            "unknown {} type \"{t}\" (no {} types are compiled in)",
            kind.word(),
            kind.word()
        ),
        None => format!(
            "unknown {} type \"{t}\" (known types: {})",
            kind.word(),
            known.join(", ")
        ),
    }
}

/// Parses every component of one section with its factory.
pub(super) fn parse_section<C: ?Sized>(
    root: &Map<String, Value>,
    kind: Kind,
    registry: &Registry,
    parse: impl Fn(&str, &Value, &str) -> Option<Result<Box<C>, ConfigErrors>>,
    errors: &mut ConfigErrors,
) -> BTreeMap<ComponentId, Box<C>> {
    let mut out = BTreeMap::new();
    let Some(map) = section(root, kind.section(), kind.section(), errors) else {
        return out;
    };
    for (raw_id, cfg) in map {
        let path = format!("{}.{raw_id}", kind.section());
        let id = match ComponentId::parse(raw_id) {
            Ok(id) => id,
            Err(message) => {
                errors.push(path, message);
                continue;
            }
        };
        match parse(id.kind(), cfg, &path) {
            None => errors.push(path, unknown_type(kind, id.kind(), registry)),
            Some(Ok(c)) => {
                out.insert(id, c);
            }
            Some(Err(e)) => errors.0.extend(e.0),
        }
    }
    out
}

/// A list of component ids at `path`, each checked to be configured (in `configured`),
/// listed once, and (when `signal` is given) able to handle the signal.
#[allow(clippy::too_many_arguments)]
pub(super) fn id_list(
    value: Option<&Value>,
    path: &str,
    kind: Kind,
    configured: &dyn Fn(&ComponentId) -> bool,
    signal: Option<Signal>,
    registry: &Registry,
    errors: &mut ConfigErrors,
    is_connector: &dyn Fn(&ComponentId) -> bool,
) -> Vec<ComponentId> {
    let items = match value {
        None | Some(Value::Null) => return Vec::new(),
        Some(Value::Array(items)) => items,
        Some(other) => {
            errors.push(
                path,
                format!(
                    "expected a list of {} ids, found {}",
                    kind.word(),
                    kind_of(other)
                ),
            );
            return Vec::new();
        }
    };
    let mut ids: Vec<ComponentId> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let item_path = format!("{path}[{i}]");
        let Value::String(raw) = item else {
            errors.push(
                item_path,
                format!("expected a {} id, found {}", kind.word(), kind_of(item)),
            );
            continue;
        };
        let id = match ComponentId::parse(raw) {
            Ok(id) => id,
            Err(message) => {
                errors.push(item_path, message);
                continue;
            }
        };
        if let Some(first) = ids.iter().position(|x| *x == id) {
            errors.push(
                item_path,
                format!(
                    "{} \"{id}\" is listed twice (first at [{first}])",
                    kind.word()
                ),
            );
            continue;
        }
        if !configured(&id) && !is_connector(&id) {
            errors.push(
                item_path,
                format!(
                    "{} \"{id}\" is not configured under {}",
                    kind.word(),
                    kind.section()
                ),
            );
        } else if is_connector(&id) {
            // Checked with the pipeline at the connector's other end, below.
        } else if let Some(signal) = signal {
            if let Some(signals) = kind.signals(registry, id.kind()) {
                if !signals.contains(signal) {
                    errors.push(
                        item_path,
                        format!(
                            "{} \"{id}\" does not support the {signal} signal",
                            kind.word()
                        ),
                    );
                }
            }
        }
        ids.push(id);
    }
    ids
}

pub(super) fn check_keys(
    map: &Map<String, Value>,
    path: &str,
    allowed: &[&str],
    errors: &mut ConfigErrors,
) {
    for key in map.keys() {
        if !allowed.contains(&key.as_str()) {
            let p = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            errors.push(p, unknown_key(key, allowed));
        }
    }
}
