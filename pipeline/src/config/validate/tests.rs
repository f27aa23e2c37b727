//! Every validation message, checked word for word.

use super::*;
use crate::config::parse_document;
use crate::test_components::fake_registry;

fn errors_of(yaml: &str) -> Vec<String> {
    let (registry, _) = fake_registry();
    match validate(&parse_document(yaml).unwrap(), &registry) {
        Ok(_) => Vec::new(),
        Err(e) => e.0.iter().map(|e| e.to_string()).collect(),
    }
}

const GOOD: &str = "
receivers: {otlp: {}}
processors: {batch: {size: 3}}
exporters: {debug: {}, otlp/up: {}}
extensions: {health_check: {}}
service:
  extensions: [health_check]
  pipelines:
    logs: {receivers: [otlp], processors: [batch], exporters: [debug, otlp/up]}
    traces/x: {receivers: [otlp], exporters: [otlp/up]}
";

#[test]
fn valid_config_yields_specs() {
    let (registry, _) = fake_registry();
    let cfg = validate(&parse_document(GOOD).unwrap(), &registry).unwrap();
    assert_eq!(cfg.pipelines.len(), 2);
    assert_eq!(cfg.pipelines[0].id, "logs");
    assert_eq!(cfg.pipelines[1].signal, Signal::Traces);
    assert_eq!(
        cfg.pipelines[0]
            .exporters
            .iter()
            .map(|i| i.to_string())
            .collect::<Vec<_>>(),
        vec!["debug", "otlp/up"]
    );
    assert_eq!(cfg.service_extensions.len(), 1);
    assert_eq!(cfg.receivers.len(), 1);
}

#[test]
fn unknown_keys_at_top_service_and_pipeline() {
    let yaml = "
recievers: {}
foo: 1
receivers: {otlp: {}}
exporters: {debug: {}}
service:
  pipeline: {}
  pipelines:
    logs: {receivers: [otlp], exporters: [debug], procesors: [batch]}
";
    assert_eq!(
        errors_of(yaml),
        vec![
            "foo: unknown key \"foo\" (expected one of: receivers, processors, exporters, connectors, extensions, service)",
            "recievers: unknown key \"recievers\" (did you mean \"receivers\"?)",
            "service.pipeline: unknown key \"pipeline\" (did you mean \"pipelines\"?)",
            "service.pipelines.logs.procesors: unknown key \"procesors\" (did you mean \"processors\"?)",
        ]
    );
}

fn errors_with_connectors(yaml: &str) -> Vec<String> {
    let (mut registry, _) = fake_registry();
    weir_connectors::register(&mut registry);
    match validate(&parse_document(yaml).unwrap(), &registry) {
        Ok(_) => Vec::new(),
        Err(e) => e.0.iter().map(|e| e.to_string()).collect(),
    }
}

#[test]
fn connectors_join_pipelines() {
    let yaml = "
connectors: {forward: {}, count: {}}
receivers: {otlp: {}}
exporters: {debug: {}}
service:
  pipelines:
    logs/in: {receivers: [otlp], exporters: [forward, count]}
    logs/out: {receivers: [forward], exporters: [debug]}
    metrics: {receivers: [count, otlp], exporters: [debug]}
";
    assert_eq!(errors_with_connectors(yaml), Vec::<String>::new());
    // Configured but unused: allowed, as in the collector.
    let yaml = "connectors: {forward: {}}\nreceivers: {otlp: {}}\nexporters: {debug: {}}\nservice: {pipelines: {logs: {receivers: [otlp], exporters: [debug]}}}";
    assert_eq!(errors_with_connectors(yaml), Vec::<String>::new());
}

#[test]
fn connector_used_on_one_side_only_or_for_an_unsupported_signal() {
    let yaml = "
connectors: {forward: {}, count: {}, forward/2: {}}
receivers: {otlp: {}}
exporters: {debug: {}}
service:
  pipelines:
    logs: {receivers: [otlp], exporters: [forward, count]}
    traces: {receivers: [forward, otlp], exporters: [debug]}
    metrics: {receivers: [forward/2], exporters: [debug]}
";
    assert_eq!(
        errors_with_connectors(yaml),
        vec![
            "service.pipelines.logs.exporters[0]: connector \"forward\" is used as an exporter in a logs pipeline but no pipeline of a signal it supports from logs lists it as a receiver (it joins: traces to traces, metrics to metrics, logs to logs)",
            "service.pipelines.logs.exporters[1]: connector \"count\" is used as an exporter in a logs pipeline but no pipeline of a signal it supports from logs lists it as a receiver (it joins: traces to metrics, metrics to metrics, logs to metrics)",
            "service.pipelines.metrics.receivers[0]: connector \"forward/2\" is used as a receiver in a metrics pipeline but no pipeline of a signal it supports to metrics lists it as an exporter (it joins: traces to traces, metrics to metrics, logs to logs)",
            "service.pipelines.traces.receivers[0]: connector \"forward\" is used as a receiver in a traces pipeline but no pipeline of a signal it supports to traces lists it as an exporter (it joins: traces to traces, metrics to metrics, logs to logs)",
        ]
    );
}

#[test]
fn connector_cycles_are_rejected_with_the_path() {
    let yaml = "
connectors: {forward/a: {}, forward/b: {}}
receivers: {otlp: {}}
exporters: {debug: {}}
service:
  pipelines:
    logs/1: {receivers: [otlp, forward/b], exporters: [forward/a]}
    logs/2: {receivers: [forward/a], exporters: [forward/b, debug]}
";
    assert_eq!(
        errors_with_connectors(yaml),
        vec!["service.pipelines: connectors make a cycle: logs/1 -> [forward/a] -> logs/2 -> [forward/b] -> logs/1"]
    );
}

#[test]
fn connector_config_errors_unknown_types_and_clashing_ids() {
    let yaml = "
connectors:
  forwrd: {}
  count: {logs: {my.count: {conditions: ['severity_number >>= 3'], attributes: [{default_value: x}]}}}
  routing: {table: [{condition: 'attributes[\"a\"] == \"b\"', pipelines: [logs/nope, logs]}], default_pipelines: [logs/out]}
receivers: {otlp: {}}
exporters: {debug: {}}
service:
  pipelines:
    logs: {receivers: [otlp], exporters: [routing, count]}
    logs/out: {receivers: [otlp], exporters: [debug]}
    metrics: {receivers: [count], exporters: [debug]}
";
    assert_eq!(
        errors_with_connectors(yaml),
        vec![
            "connectors.count.logs.my.count.conditions[0]: syntax error at column 18: expected a value, found \">=\"",
            "connectors.count.logs.my.count.attributes[0].key: attribute key missing",
            "connectors.forwrd: unknown connector type \"forwrd\" (did you mean \"forward\"?)",
            "service.pipelines.logs.exporters[0]: connector \"routing\" is used as an exporter in a logs pipeline but no pipeline of a signal it supports from logs lists it as a receiver (it joins: traces to traces, metrics to metrics, logs to logs)",
            "connectors.routing.default_pipelines[0]: pipeline \"logs/out\" does not list connector \"routing\" as a receiver",
            "connectors.routing.table[0].pipelines[0]: pipeline \"logs/nope\" does not exist",
            "connectors.routing.table[0].pipelines[1]: pipeline \"logs\" does not list connector \"routing\" as a receiver",
        ]
    );
    // One id in two sections: a pipeline could not tell which one it names.
    let yaml = "
connectors: {forward: {}}
receivers: {otlp: {}, forward: {}}
exporters: {debug: {}}
service: {pipelines: {logs: {receivers: [otlp], exporters: [debug]}}}
";
    assert_eq!(
        errors_with_connectors(yaml),
        vec![
            "receivers.forward: unknown receiver type \"forward\" (known types: logsrcv, otlp)",
            "connectors.forward: \"forward\" is configured both as a receiver and as a connector; a pipeline could not tell which one it names",
        ]
    );
}

#[test]
fn unknown_types_with_and_without_suggestion() {
    let yaml = "
receivers: {otlpp: {}, kafka/x: {}}
processors: {bacth: {}}
exporters: {debg: {}, otlp: {}}
extensions: {zpages: {}}
service: {pipelines: {logs: {receivers: [otlpp], exporters: [otlp]}}}
";
    assert_eq!(
        errors_of(yaml),
        vec![
            "receivers.kafka/x: unknown receiver type \"kafka\" (known types: logsrcv, otlp)",
            "receivers.otlpp: unknown receiver type \"otlpp\" (did you mean \"otlp\"?)",
            "processors.bacth: unknown processor type \"bacth\" (did you mean \"batch\"?)",
            "exporters.debg: unknown exporter type \"debg\" (did you mean \"debug\"?)",
            "extensions.zpages: unknown extension type \"zpages\" (known types: health_check)",
        ]
    );
}

#[test]
fn invalid_ids_in_sections_and_pipelines() {
    let yaml = "
receivers: {'otlp x': {}, otlp: {}}
exporters: {debug/: {}, debug: {}}
service: {pipelines: {logs: {receivers: [otlp, /in], exporters: [debug]}}}
";
    assert_eq!(
        errors_of(yaml),
        vec![
            "receivers.otlp x: invalid component id \"otlp x\": the type may only hold letters, digits and '_'",
            "exporters.debug/: invalid component id \"debug/\": the name after '/' is empty",
            "service.pipelines.logs.receivers[1]: invalid component id \"/in\": the type part is empty",
        ]
    );
}

#[test]
fn component_config_errors_come_from_the_factory() {
    let yaml = "
receivers: {otlp: {sise: 1}}
processors: {batch: {size: -1}}
exporters: {debug: {}}
service: {pipelines: {logs: {receivers: [otlp], processors: [batch], exporters: [debug]}}}
";
    let errs = errors_of(yaml);
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(
        errs[0].starts_with("receivers.otlp.sise: unknown field `sise`, expected `size`"),
        "{}",
        errs[0]
    );
    assert!(
        errs[1].starts_with("processors.batch.size: invalid value: integer `-1`"),
        "{}",
        errs[1]
    );
}

#[test]
fn references_twice_and_signals() {
    let yaml = "
receivers: {otlp: {}, logsrcv: {}}
processors: {batch: {}, logsonly: {}}
exporters: {debug: {}}
extensions: {health_check: {}}
service:
  extensions: [health_check, health_check/b, health_check]
  pipelines:
    traces:
      receivers: [otlp, logsrcv, otlp/missing]
      processors: [batch, logsonly, batch, memory_limiter]
      exporters: [debug, nop]
";
    assert_eq!(
        errors_of(yaml),
        vec![
            "service.extensions[1]: extension \"health_check/b\" is not configured under extensions",
            "service.extensions[2]: extension \"health_check\" is listed twice (first at [0])",
            "service.pipelines.traces.receivers[1]: receiver \"logsrcv\" does not support the traces signal",
            "service.pipelines.traces.receivers[2]: receiver \"otlp/missing\" is not configured under receivers",
            "service.pipelines.traces.processors[1]: processor \"logsonly\" does not support the traces signal",
            "service.pipelines.traces.processors[2]: processor \"batch\" is listed twice (first at [0])",
            "service.pipelines.traces.processors[3]: processor \"memory_limiter\" is not configured under processors",
            "service.pipelines.traces.exporters[1]: exporter \"nop\" is not configured under exporters",
        ]
    );
}

#[test]
fn pipelines_need_receivers_exporters_and_a_known_signal() {
    let yaml = "
receivers: {otlp: {}}
exporters: {debug: {}}
service:
  pipelines:
    logs: {processors: []}
    profiles: {receivers: [otlp], exporters: [debug]}
    metrics/: {receivers: [otlp], exporters: [debug]}
    traces: [otlp]
";
    assert_eq!(
        errors_of(yaml),
        vec![
            "service.pipelines.logs.receivers: a pipeline needs at least one receiver",
            "service.pipelines.logs.exporters: a pipeline needs at least one exporter",
            "service.pipelines.metrics/: the pipeline name after '/' is empty",
            "service.pipelines.profiles: unknown signal \"profiles\" in pipeline id (expected traces, metrics or logs, optionally followed by /name)",
            "service.pipelines.traces: expected a map, found a list",
        ]
    );
}

#[test]
fn missing_service_or_pipelines() {
    assert_eq!(
        errors_of("receivers: {otlp: {}}"),
        vec!["service.pipelines: the service must have at least one pipeline"]
    );
    assert_eq!(
        errors_of("service: {pipelines: {}}"),
        vec!["service.pipelines: the service must have at least one pipeline"]
    );
    assert_eq!(
        errors_of("service: [a]"),
        vec!["service: expected a map, found a list"]
    );
    assert_eq!(
        errors_of("receivers: [otlp]\nservice: {pipelines: {logs: {receivers: otlp, exporters: [debug]}}}\nexporters: {debug: {}}"),
        vec![
            "receivers: expected a map, found a list",
            "service.pipelines.logs.receivers: expected a list of receiver ids, found a string",
            "service.pipelines.logs.receivers: a pipeline needs at least one receiver",
        ]
    );
}

#[test]
fn telemetry_errors_are_collected_with_the_rest() {
    let yaml = "
receivers: {otlp: {}}
exporters: {debug: {}}
service:
  telemetry: {logs: {levl: debug}}
  pipelines: {logs: {receivers: [otlp], exporters: [debg]}}
";
    let errs = errors_of(yaml);
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(
        errs[0].starts_with("service.telemetry.logs.levl: unknown field `levl`"),
        "{}",
        errs[0]
    );
    assert_eq!(
        errs[1],
        "service.pipelines.logs.exporters[0]: exporter \"debg\" is not configured under exporters"
    );
}

#[test]
fn suggestions() {
    assert_eq!(
        suggest("recievers", ["receivers", "exporters"]),
        Some("receivers")
    );
    assert_eq!(suggest("zzz", ["receivers", "exporters"]), None);
}

#[test]
fn shapes_of_lists_and_documents() {
    let (registry, _) = fake_registry();
    let err = validate(&serde_json::json!(["a"]), &registry)
        .err()
        .unwrap();
    assert_eq!(
        err.to_string(),
        "(root): a config must be a map, found a list"
    );
    let yaml = "
receivers: {otlp: {}}
exporters: {debug: {}}
extensions: {health_check: {}}
service:
  extensions: {health_check: {}}
  pipelines: {logs: {receivers: [otlp, 5], exporters: [debug]}}
";
    assert_eq!(
        errors_of(yaml),
        vec![
            "service.extensions: expected a list of extension ids, found a map",
            "service.pipelines.logs.receivers[1]: expected a receiver id, found a number",
        ]
    );
}

#[test]
fn telemetry_reader_shape() {
    let yaml = "
receivers: {otlp: {}}
exporters: {debug: {}}
service:
  telemetry: {metrics: {readers: [{}]}}
  pipelines: {logs: {receivers: [otlp], exporters: [debug]}}
";
    assert_eq!(
        errors_of(yaml),
        vec![
            "service.telemetry.metrics.readers[0]: a reader needs exactly one of pull or periodic"
        ]
    );
}
