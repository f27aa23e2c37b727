//! Checks a merged, expanded config tree against the registry and turns it into a
//! [`ValidatedConfig`], reporting every problem at once with its YAML path.

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use weir_api::{
    ComponentId, ConfigErrors, ConnectorConfig, ExporterConfig, ExtensionConfig, ProcessorConfig,
    ReceiverConfig, Registry, Signal, SignalSet,
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

/// A connector that passed its checks: its config and the signal pairs its type joins.
pub struct ValidConnector {
    /// The parsed config.
    pub config: Box<dyn ConnectorConfig>,
    /// (exporter pipeline signal, receiver pipeline signal) pairs the type supports.
    pub pairs: Vec<(Signal, Signal)>,
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
    /// Connectors by id.
    pub connectors: BTreeMap<ComponentId, ValidConnector>,
    /// `service.extensions`, in order.
    pub service_extensions: Vec<ComponentId>,
    /// `service.pipelines`, sorted by id.
    pub pipelines: Vec<PipelineSpec>,
    /// `service.telemetry`.
    pub telemetry: TelemetrySettings,
    /// The exporters of `service.telemetry.metrics.readers[].periodic`, with their interval.
    pub telemetry_exporters: Vec<(std::time::Duration, Box<dyn ExporterConfig>)>,
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
    Connector,
}

impl Kind {
    fn word(self) -> &'static str {
        match self {
            Kind::Receiver => "receiver",
            Kind::Processor => "processor",
            Kind::Exporter => "exporter",
            Kind::Extension => "extension",
            Kind::Connector => "connector",
        }
    }
    fn section(self) -> &'static str {
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
    let connectors: BTreeMap<ComponentId, ValidConnector> = parse_section(
        root,
        Kind::Connector,
        registry,
        |t, v, p| registry.connectors.get(t).map(|f| f.parse(v, p)),
        &mut errors,
    )
    .into_iter()
    .map(|(id, config)| {
        let pairs = registry
            .connectors
            .get(id.kind())
            .map(|f| f.pairs())
            .unwrap_or_default();
        (id, ValidConnector { config, pairs })
    })
    .collect();

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
    let configured_connectors = configured_ids(Kind::Connector);
    for id in &configured_connectors {
        for (kind, list) in [
            (Kind::Receiver, &configured_receivers),
            (Kind::Exporter, &configured_exporters),
        ] {
            if list.contains(id) {
                errors.push(
                    format!("connectors.{id}"),
                    format!(
                        "\"{id}\" is configured both as {} {} and as a connector; a pipeline could not tell which one it names",
                        if matches!(kind, Kind::Exporter) { "an" } else { "a" },
                        kind.word()
                    ),
                );
            }
        }
    }
    let is_connector = |id: &ComponentId| configured_connectors.contains(id);
    let not_connector = |_: &ComponentId| false;

    let mut service_extensions = Vec::new();
    let mut pipelines = Vec::new();
    let mut telemetry = TelemetrySettings::default();
    let mut telemetry_exporters = Vec::new();
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
                &not_connector,
            );
            if let Some(t) = service.get("telemetry") {
                match parse_telemetry(t, "service.telemetry") {
                    Ok(t) => telemetry = t,
                    Err(e) => errors.0.extend(e.0),
                }
            }
            for r in &telemetry.periodic_readers {
                match registry.exporters.get(&r.exporter_type) {
                    Some(f) => match f.parse(&r.exporter_config, &r.path) {
                        Ok(c) => telemetry_exporters.push((r.interval, c)),
                        Err(e) => errors.0.extend(e.0),
                    },
                    None => errors.push(
                        r.path.clone(),
                        format!("no {} exporter is compiled in", r.exporter_type),
                    ),
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
                            // Receivers and exporters lists may name connectors.
                            let connector_ok = !matches!(kind, Kind::Processor);
                            id_list(
                                body.get(key),
                                &format!("{path}.{key}"),
                                kind,
                                &|id| configured.contains(id),
                                signal,
                                registry,
                                errors,
                                &|id| connector_ok && is_connector(id),
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

    // An exporter's `auth.authenticator` (a client authenticator), by the same rules.
    for ec in exporters.values() {
        for (path, name) in ec.authenticator_refs() {
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
                Ok(id) if extensions.get(&id).is_some_and(|e| !e.offers_client_authenticator()) => errors.push(
                    path,
                    format!("extension \"{name}\" is not a client authenticator (use bearertokenauth)"),
                ),
                Ok(_) => {}
            }
        }
    }

    // What a processor's config gets wrong only for one signal, once per (processor, signal).
    let mut checked: Vec<(&ComponentId, Signal)> = Vec::new();
    for p in &pipelines {
        for id in &p.processors {
            if checked.contains(&(id, p.signal)) {
                continue;
            }
            checked.push((id, p.signal));
            if let Some(pc) = processors.get(id) {
                for (path, message) in pc.signal_problems(p.signal) {
                    errors.push(
                        path,
                        format!("{message} (in the {} pipeline \"{}\")", p.signal, p.id),
                    );
                }
            }
        }
    }

    check_connectors(&pipelines, &connectors, &configured_connectors, &mut errors);

    errors.into_result(ValidatedConfig {
        receivers,
        processors,
        exporters,
        extensions,
        connectors,
        service_extensions,
        pipelines,
        telemetry,
        telemetry_exporters,
    })
}

/// The pipelines a connector joins: for a pipeline that exports to it, every pipeline that
/// receives from it with a signal pair the connector supports.
pub fn connector_targets<'a>(
    pipelines: &'a [PipelineSpec],
    connector: &ComponentId,
    pairs: &[(Signal, Signal)],
    from: Signal,
) -> Vec<&'a PipelineSpec> {
    pipelines
        .iter()
        .filter(|q| q.receivers.contains(connector) && pairs.contains(&(from, q.signal)))
        .collect()
}

fn pair_list(pairs: &[(Signal, Signal)]) -> String {
    pairs
        .iter()
        .map(|(a, b)| format!("{a} to {b}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The rules of connectors: each one used as an exporter feeds at least one pipeline it
/// supports, each one used as a receiver is fed by one, the pipelines a connector's config
/// names are pipelines it feeds, and no chain of connectors leads a pipeline back to itself.
fn check_connectors(
    pipelines: &[PipelineSpec],
    connectors: &BTreeMap<ComponentId, ValidConnector>,
    configured: &[ComponentId],
    errors: &mut ConfigErrors,
) {
    for p in pipelines {
        for (i, id) in p.exporters.iter().enumerate() {
            if !configured.contains(id) {
                continue;
            }
            let Some(c) = connectors.get(id) else {
                continue; // its own parse error is reported
            };
            if connector_targets(pipelines, id, &c.pairs, p.signal).is_empty() {
                errors.push(
                    format!("service.pipelines.{}.exporters[{i}]", p.id),
                    format!(
                        "connector \"{id}\" is used as an exporter in a {} pipeline but no pipeline of a signal it supports from {} lists it as a receiver (it joins: {})",
                        p.signal,
                        p.signal,
                        pair_list(&c.pairs)
                    ),
                );
            }
        }
        for (i, id) in p.receivers.iter().enumerate() {
            if !configured.contains(id) {
                continue;
            }
            let Some(c) = connectors.get(id) else {
                continue;
            };
            let fed = pipelines
                .iter()
                .any(|up| up.exporters.contains(id) && c.pairs.contains(&(up.signal, p.signal)));
            if !fed {
                errors.push(
                    format!("service.pipelines.{}.receivers[{i}]", p.id),
                    format!(
                        "connector \"{id}\" is used as a receiver in a {} pipeline but no pipeline of a signal it supports to {} lists it as an exporter (it joins: {})",
                        p.signal,
                        p.signal,
                        pair_list(&c.pairs)
                    ),
                );
            }
        }
    }
    for (id, c) in connectors {
        for (path, pipeline) in c.config.named_pipelines() {
            match pipelines.iter().find(|p| p.id == pipeline) {
                None => errors.push(path, format!("pipeline \"{pipeline}\" does not exist")),
                Some(p) if !p.receivers.contains(id) => errors.push(
                    path,
                    format!(
                        "pipeline \"{pipeline}\" does not list connector \"{id}\" as a receiver"
                    ),
                ),
                Some(_) => {}
            }
        }
    }
    if let Some(cycle) = find_cycle(pipelines, connectors) {
        errors.push(
            "service.pipelines",
            format!("connectors make a cycle: {}", cycle.join(" -> ")),
        );
    }
}

/// A cycle of pipelines through connectors, written `logs/a -> [forward] -> logs/b -> ...`.
fn find_cycle(
    pipelines: &[PipelineSpec],
    connectors: &BTreeMap<ComponentId, ValidConnector>,
) -> Option<Vec<String>> {
    // Edges: pipeline index -> (connector id, pipeline index).
    let edges: Vec<Vec<(&ComponentId, usize)>> = pipelines
        .iter()
        .map(|p| {
            let mut out = Vec::new();
            for id in &p.exporters {
                if let Some(c) = connectors.get(id) {
                    for q in connector_targets(pipelines, id, &c.pairs, p.signal) {
                        if let Some(j) = pipelines.iter().position(|x| x.id == q.id) {
                            out.push((id, j));
                        }
                    }
                }
            }
            out
        })
        .collect();
    // 0 unvisited, 1 on the stack, 2 done.
    let mut state = vec![0u8; pipelines.len()];
    let mut stack: Vec<(usize, Option<&ComponentId>)> = Vec::new();
    fn visit<'a>(
        i: usize,
        via: Option<&'a ComponentId>,
        edges: &[Vec<(&'a ComponentId, usize)>],
        state: &mut [u8],
        stack: &mut Vec<(usize, Option<&'a ComponentId>)>,
    ) -> Option<(usize, &'a ComponentId)> {
        state[i] = 1;
        stack.push((i, via));
        for &(c, j) in &edges[i] {
            if state[j] == 1 {
                return Some((j, c));
            }
            if state[j] == 0 {
                if let Some(found) = visit(j, Some(c), edges, state, stack) {
                    return Some(found);
                }
            }
        }
        stack.pop();
        state[i] = 2;
        None
    }
    for start in 0..pipelines.len() {
        if state[start] != 0 {
            continue;
        }
        if let Some((back_to, closing)) = visit(start, None, &edges, &mut state, &mut stack) {
            let from = stack.iter().position(|(i, _)| *i == back_to).unwrap_or(0);
            let mut out = Vec::new();
            for (k, (i, via)) in stack[from..].iter().enumerate() {
                if k > 0 {
                    if let Some(c) = via {
                        out.push(format!("[{c}]"));
                    }
                }
                out.push(pipelines[*i].id.clone());
            }
            out.push(format!("[{closing}]"));
            out.push(pipelines[back_to].id.clone());
            return Some(out);
        }
    }
    None
}

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;
