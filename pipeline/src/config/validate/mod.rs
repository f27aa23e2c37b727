//! Checks a merged, expanded config tree against the registry and turns it into a
//! [`ValidatedConfig`], reporting every problem at once with its YAML path.

mod connectors;
mod sections;

pub use connectors::connector_targets;
pub use sections::suggest;

use std::collections::BTreeMap;

use connectors::check_connectors;
use sections::{check_keys, id_list, kind_of, parse_section, section, Kind};
use serde_json::{Map, Value};
use weir_api::{
    ComponentId, ConfigErrors, ConnectorConfig, ExporterConfig, ExtensionConfig, ProcessorConfig,
    ReceiverConfig, Registry, Signal,
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

#[cfg(test)]
mod tests;
