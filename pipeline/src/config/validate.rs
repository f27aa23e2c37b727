//! Checks a merged, expanded config tree against the registry and turns it into a
//! [`ValidatedConfig`], reporting every problem at once with its YAML path.

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use weir_api::{
    ComponentId, ConfigErrors, ExporterConfig, ExtensionConfig, ProcessorConfig, ReceiverConfig,
    Registry, Signal, SignalSet,
};

use super::telemetry::{parse_telemetry, TelemetrySettings};

const TOP_LEVEL_KEYS: &[&str] = &[
    "receivers",
    "processors",
    "exporters",
    "connectors",
    "extensions",
    "service",
];
const SERVICE_KEYS: &[&str] = &["extensions", "pipelines", "telemetry"];
const PIPELINE_KEYS: &[&str] = &["receivers", "processors", "exporters"];

/// One pipeline of `service.pipelines`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineSpec {
    /// The id as written (`logs`, `traces/edge`).
    pub id: String,
    /// The signal it carries.
    pub signal: Signal,
    /// Receivers feeding it.
    pub receivers: Vec<ComponentId>,
    /// Processors in order.
    pub processors: Vec<ComponentId>,
    /// Exporters it fans out to.
    pub exporters: Vec<ComponentId>,
}

/// A config that passed every check: each component parsed by its factory.
pub struct ValidatedConfig {
    /// Receivers by id.
    pub receivers: BTreeMap<ComponentId, Box<dyn ReceiverConfig>>,
    /// Processors by id.
    pub processors: BTreeMap<ComponentId, Box<dyn ProcessorConfig>>,
    /// Exporters by id.
    pub exporters: BTreeMap<ComponentId, Box<dyn ExporterConfig>>,
    /// Extensions by id.
    pub extensions: BTreeMap<ComponentId, Box<dyn ExtensionConfig>>,
    /// `service.extensions`, in order.
    pub service_extensions: Vec<ComponentId>,
    /// `service.pipelines`, sorted by id.
    pub pipelines: Vec<PipelineSpec>,
    /// `service.telemetry`.
    pub telemetry: TelemetrySettings,
}

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

fn kind_of(v: &Value) -> &'static str {
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
fn section<'a>(
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
enum Kind {
    Receiver,
    Processor,
    Exporter,
    Extension,
}

impl Kind {
    fn word(self) -> &'static str {
        match self {
            Kind::Receiver => "receiver",
            Kind::Processor => "processor",
            Kind::Exporter => "exporter",
            Kind::Extension => "extension",
        }
    }
    fn section(self) -> &'static str {
        match self {
            Kind::Receiver => "receivers",
            Kind::Processor => "processors",
            Kind::Exporter => "exporters",
            Kind::Extension => "extensions",
        }
    }
    fn types(self, r: &Registry) -> Vec<&str> {
        match self {
            Kind::Receiver => r.receivers.keys().map(String::as_str).collect(),
            Kind::Processor => r.processors.keys().map(String::as_str).collect(),
            Kind::Exporter => r.exporters.keys().map(String::as_str).collect(),
            Kind::Extension => r.extensions.keys().map(String::as_str).collect(),
        }
    }
    /// Signals supported by type `t`; `None` when the type is unknown.
    fn signals(self, r: &Registry, t: &str) -> Option<SignalSet> {
        match self {
            Kind::Receiver => r.receivers.get(t).map(|f| f.signals()),
            Kind::Processor => r.processors.get(t).map(|f| f.signals()),
            Kind::Exporter => r.exporters.get(t).map(|f| f.signals()),
            Kind::Extension => r.extensions.get(t).map(|_| SignalSet::NONE),
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
fn parse_section<C: ?Sized>(
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
fn id_list(
    value: Option<&Value>,
    path: &str,
    kind: Kind,
    configured: &dyn Fn(&ComponentId) -> bool,
    signal: Option<Signal>,
    registry: &Registry,
    errors: &mut ConfigErrors,
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
        if !configured(&id) {
            errors.push(
                item_path,
                format!(
                    "{} \"{id}\" is not configured under {}",
                    kind.word(),
                    kind.section()
                ),
            );
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

fn check_keys(map: &Map<String, Value>, path: &str, allowed: &[&str], errors: &mut ConfigErrors) {
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

/// Validates a whole config tree.
pub fn validate(tree: &Value, registry: &Registry) -> Result<ValidatedConfig, ConfigErrors> {
    let mut errors = ConfigErrors::default();
    let empty = Map::new();
    let root = match tree {
        Value::Object(m) => m,
        Value::Null => &empty,
        other => {
            errors.push(
                "(root)",
                format!("a config must be a map, found {}", kind_of(other)),
            );
            return Err(errors);
        }
    };
    check_keys(root, "", TOP_LEVEL_KEYS, &mut errors);
    if let Some(connectors) = section(root, "connectors", "connectors", &mut errors) {
        if !connectors.is_empty() {
            errors.push("connectors", "connectors are not supported yet");
        }
    }

    let receivers = parse_section(
        root,
        Kind::Receiver,
        registry,
        |t, v, p| registry.receivers.get(t).map(|f| f.parse(v, p)),
        &mut errors,
    );
    let processors = parse_section(
        root,
        Kind::Processor,
        registry,
        |t, v, p| registry.processors.get(t).map(|f| f.parse(v, p)),
        &mut errors,
    );
    let exporters = parse_section(
        root,
        Kind::Exporter,
        registry,
        |t, v, p| registry.exporters.get(t).map(|f| f.parse(v, p)),
        &mut errors,
    );
    let extensions = parse_section(
        root,
        Kind::Extension,
        registry,
        |t, v, p| registry.extensions.get(t).map(|f| f.parse(v, p)),
        &mut errors,
    );

    // A component whose own config failed to parse is still "configured": report its parse
    // error, not a second "not configured" error at every pipeline that uses it.
    let configured_ids = |kind: Kind| -> Vec<ComponentId> {
        root.get(kind.section())
            .and_then(Value::as_object)
            .map(|m| {
                m.keys()
                    .filter_map(|k| ComponentId::parse(k).ok())
                    .collect()
            })
            .unwrap_or_default()
    };
    let configured_receivers = configured_ids(Kind::Receiver);
    let configured_processors = configured_ids(Kind::Processor);
    let configured_exporters = configured_ids(Kind::Exporter);
    let configured_extensions = configured_ids(Kind::Extension);

    let mut service_extensions = Vec::new();
    let mut pipelines = Vec::new();
    let mut telemetry = TelemetrySettings::default();
    match root.get("service") {
        None | Some(Value::Null) => errors.push(
            "service.pipelines",
            "the service must have at least one pipeline",
        ),
        Some(Value::Object(service)) => {
            check_keys(service, "service", SERVICE_KEYS, &mut errors);
            service_extensions = id_list(
                service.get("extensions"),
                "service.extensions",
                Kind::Extension,
                &|id| configured_extensions.contains(id),
                None,
                registry,
                &mut errors,
            );
            if let Some(t) = service.get("telemetry") {
                match parse_telemetry(t, "service.telemetry") {
                    Ok(t) => telemetry = t,
                    Err(e) => errors.0.extend(e.0),
                }
            }
            match section(service, "pipelines", "service.pipelines", &mut errors) {
                Some(map) if !map.is_empty() => {
                    for (pid, body) in map {
                        let path = format!("service.pipelines.{pid}");
                        let signal_name = pid.split_once('/').map_or(pid.as_str(), |(s, _)| s);
                        let signal = Signal::parse(signal_name);
                        match signal {
                            None => errors.push(
                                path.clone(),
                                format!("unknown signal \"{signal_name}\" in pipeline id (expected traces, metrics or logs, optionally followed by /name)"),
                            ),
                            Some(_) if pid.ends_with('/') => {
                                errors.push(path.clone(), "the pipeline name after '/' is empty")
                            }
                            Some(_) => {}
                        }
                        let body = match body {
                            Value::Object(m) => m,
                            other => {
                                errors.push(
                                    path,
                                    format!("expected a map, found {}", kind_of(other)),
                                );
                                continue;
                            }
                        };
                        check_keys(body, &path, PIPELINE_KEYS, &mut errors);
                        let list = |key: &str,
                                    kind: Kind,
                                    configured: &Vec<ComponentId>,
                                    errors: &mut ConfigErrors| {
                            id_list(
                                body.get(key),
                                &format!("{path}.{key}"),
                                kind,
                                &|id| configured.contains(id),
                                signal,
                                registry,
                                errors,
                            )
                        };
                        let r = list(
                            "receivers",
                            Kind::Receiver,
                            &configured_receivers,
                            &mut errors,
                        );
                        let p = list(
                            "processors",
                            Kind::Processor,
                            &configured_processors,
                            &mut errors,
                        );
                        let e = list(
                            "exporters",
                            Kind::Exporter,
                            &configured_exporters,
                            &mut errors,
                        );
                        if r.is_empty()
                            && !matches!(body.get("receivers"), Some(Value::Array(a)) if !a.is_empty())
                        {
                            errors.push(
                                format!("{path}.receivers"),
                                "a pipeline needs at least one receiver",
                            );
                        }
                        if e.is_empty()
                            && !matches!(body.get("exporters"), Some(Value::Array(a)) if !a.is_empty())
                        {
                            errors.push(
                                format!("{path}.exporters"),
                                "a pipeline needs at least one exporter",
                            );
                        }
                        if let Some(signal) = signal {
                            pipelines.push(PipelineSpec {
                                id: pid.clone(),
                                signal,
                                receivers: r,
                                processors: p,
                                exporters: e,
                            });
                        }
                    }
                }
                _ => errors.push(
                    "service.pipelines",
                    "the service must have at least one pipeline",
                ),
            }
        }
        Some(other) => errors.push(
            "service",
            format!("expected a map, found {}", kind_of(other)),
        ),
    }

    // A receiver's `auth.authenticator` names an extension that must be configured and
    // started (listed in service.extensions), as in the collector.
    for rc in receivers.values() {
        for (path, name) in rc.authenticator_refs() {
            match ComponentId::parse(&name) {
                Err(e) => errors.push(path, e),
                Ok(id) if !configured_extensions.contains(&id) => errors.push(
                    path,
                    format!("extension \"{name}\" is not configured (add it under extensions: and to service.extensions)"),
                ),
                Ok(id) if !service_extensions.contains(&id) => errors.push(
                    path,
                    format!("extension \"{name}\" is configured but not listed in service.extensions"),
                ),
                Ok(id) if extensions.get(&id).is_some_and(|e| !e.offers_server_authenticator()) => errors.push(
                    path,
                    format!("extension \"{name}\" is not a server authenticator (use bearertokenauth or control_plane)"),
                ),
                Ok(_) => {}
            }
        }
    }

    errors.into_result(ValidatedConfig {
        receivers,
        processors,
        exporters,
        extensions,
        service_extensions,
        pipelines,
        telemetry,
    })
}

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;
