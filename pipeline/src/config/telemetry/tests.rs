//! Unit tests of `service.telemetry` parsing: defaults, log and metrics settings,
//! readers, and the errors for what is wrong.

use super::*;
use serde_json::json;

#[test]
fn defaults() {
    assert_eq!(
        parse_telemetry(&Value::Null, "service.telemetry").unwrap(),
        TelemetrySettings::default()
    );
}

#[test]
fn readers_address_level_and_logs() {
    let v = json!({
        "logs": {"level": "debug", "encoding": "json", "sampling": {"initial": 10}},
        "metrics": {"readers": [{"pull": {"exporter": {"prometheus": {"host": "0.0.0.0", "port": 9999}}}}]}
    });
    let t = parse_telemetry(&v, "service.telemetry").unwrap();
    assert_eq!(t.log_level, LogLevel::Debug);
    assert_eq!(t.log_encoding, LogEncoding::Json);
    assert_eq!(t.metrics_addresses, vec!["0.0.0.0:9999"]);
    let t = parse_telemetry(
        &json!({"metrics": {"address": "127.0.0.1:1234", "level": "detailed"}}),
        "s",
    )
    .unwrap();
    assert_eq!(t.metrics_addresses, vec!["127.0.0.1:1234"]);
    let t = parse_telemetry(&json!({"metrics": {"level": "none"}}), "s").unwrap();
    assert!(t.metrics_addresses.is_empty());
}

#[test]
fn errors_have_paths() {
    let e = parse_telemetry(&json!({"logs": {"level": "loud"}}), "service.telemetry").unwrap_err();
    assert_eq!(e.0[0].path, "service.telemetry.logs.level");
    assert!(
        e.0[0].message.starts_with("unknown variant `loud`"),
        "{}",
        e.0[0].message
    );
    let e = parse_telemetry(
        &json!({"metrics": {"readers": [{"periodic": {"exporter": {"otlp": {"protocol": "udp", "endpoint": "x", "temporality_preference": "delta"}}}}]}}),
        "service.telemetry",
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "service.telemetry.metrics.readers[0].periodic.exporter.otlp.temporality_preference: only cumulative is supported for Weir's own metrics, found \"delta\"\nservice.telemetry.metrics.readers[0].periodic.exporter.otlp.protocol: unknown protocol \"udp\": expected http/protobuf, http/json or grpc"
    );
}

#[test]
fn periodic_readers_become_otlp_exporters() {
    let v = json!({"metrics": {"readers": [
        {"periodic": {"interval": 5000, "exporter": {"otlp": {
            "protocol": "http/protobuf", "endpoint": "https://m.example:4318/v1/metrics",
            "headers": [{"name": "x-key", "value": "k"}], "headers_list": "a=1, b=2",
            "compression": "gzip", "timeout": 2000, "certificate": "/ca.pem"}}}},
        {"periodic": {"exporter": {"otlp": {"protocol": "grpc", "endpoint": "http://127.0.0.1:4317", "insecure": true}}}}
    ]}});
    let t = parse_telemetry(&v, "service.telemetry").unwrap();
    assert!(
        t.metrics_addresses.is_empty(),
        "readers given: no default endpoint"
    );
    assert_eq!(t.periodic_readers.len(), 2);
    let http = &t.periodic_readers[0];
    assert_eq!(http.interval, std::time::Duration::from_secs(5));
    assert_eq!(http.exporter_type, "otlphttp");
    assert_eq!(
        http.exporter_config,
        json!({"metrics_endpoint": "https://m.example:4318/v1/metrics", "encoding": "proto",
               "headers": {"x-key": "k", "a": "1", "b": "2"}, "compression": "gzip",
               "timeout": "2000ms", "tls": {"ca_file": "/ca.pem"},
               "sending_queue": {"enabled": false}, "retry_on_failure": {"enabled": false}})
    );
    let grpc = &t.periodic_readers[1];
    assert_eq!(grpc.interval, std::time::Duration::from_secs(60));
    assert_eq!(grpc.exporter_type, "otlp");
    assert_eq!(grpc.exporter_config["endpoint"], "http://127.0.0.1:4317");
    assert_eq!(grpc.exporter_config["tls"], json!({"insecure": true}));
    assert_eq!(grpc.exporter_config["compression"], "none");
}

#[test]
fn the_collectors_migration_test_data_loads() {
    // service/telemetry/otelconftelemetry/internal/migration/testdata: schema 0.2 (headers
    // as a map) and 0.3 (a list), a capitalised level, an endpoint without a scheme.
    let v02 = json!({"readers": [
        {"periodic": {"exporter": {"otlp": {"protocol": "http/protobuf", "endpoint": "127.0.0.1:4317",
            "headers": {"key1": "value1", "key2": "value2"}}}}},
        {"pull": {"exporter": {"prometheus": {"host": "127.0.0.1", "port": 8902}}}}]});
    let t = parse_telemetry(&json!({"metrics": v02}), "service.telemetry").unwrap();
    let r = &t.periodic_readers[0];
    assert_eq!(
        r.exporter_config["metrics_endpoint"],
        "https://127.0.0.1:4317/v1/metrics"
    );
    assert_eq!(
        r.exporter_config["headers"],
        json!({"key1": "value1", "key2": "value2"})
    );
    assert_eq!(t.metrics_addresses, vec!["127.0.0.1:8902"]);
    let v03 = json!({"level": "Detailed", "readers": [
        {"periodic": {"exporter": {"otlp": {"protocol": "http/protobuf", "endpoint": "https://127.0.0.1:4317",
            "headers": [{"name": "key1", "value": "value1"}]}}}},
        {"pull": {"exporter": {"prometheus": {"host": "127.0.0.1", "port": 8902,
            "without_scope_info": true, "without_type_suffix": true, "without_units": true}}}}]});
    let t = parse_telemetry(&json!({"metrics": v03}), "service.telemetry").unwrap();
    assert_eq!(
        t.periodic_readers[0].exporter_config["metrics_endpoint"],
        "https://127.0.0.1:4317/v1/metrics"
    );
    assert_eq!(
        t.periodic_readers[0].exporter_config["headers"],
        json!({"key1": "value1"})
    );
    assert!(t.metrics_expositions[0].without_units);
    let t = parse_telemetry(
        &json!({"metrics": {"readers": [{"periodic": {"exporter": {"otlp_grpc": {"endpoint": "http://c:4317"}}}}]}}),
        "s",
    )
    .unwrap();
    assert_eq!(t.periodic_readers[0].exporter_type, "otlp");
    let e = parse_telemetry(
        &json!({"metrics": {"level": "loud", "readers": [{"periodic": {"exporter": {}}}]}}),
        "s",
    )
    .unwrap_err();
    assert_eq!(e.0[0].path, "s.metrics.level");
    assert!(
        e.0[0]
            .message
            .contains("expected none, basic, normal or detailed"),
        "{e}"
    );
}

#[test]
fn pull_reader_settings_and_resource_shape_the_exposition() {
    let v = json!({
        "resource": {"service.name": "gw", "service.instance.id": null, "region": "eu", "n": 3},
        "metrics": {"readers": [{"pull": {"exporter": {"prometheus": {
            "host": "127.0.0.1", "port": 9464, "without_units": true,
            "without_type_suffix": true, "without_scope_info": true,
            "with_resource_constant_labels": {"included": ["service.name", "region"], "excluded": ["region"]}}}}}]}
    });
    let t = parse_telemetry(&v, "service.telemetry").unwrap();
    let keys: Vec<&str> = t.resource.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, vec!["service.version", "n", "region", "service.name"]);
    assert_eq!(t.metrics_addresses, vec!["127.0.0.1:9464"]);
    let x = &t.metrics_expositions[0];
    assert!(x.without_units && x.without_type_suffix && x.without_scope_info);
    assert_eq!(
        x.constant_labels,
        vec![("service_name".to_string(), "gw".to_string())]
    );
    assert_eq!(x.resource, t.resource);
    let d = TelemetrySettings::default();
    assert!(!d.metrics_expositions[0].without_units);
    assert_eq!(
        d.resource[0],
        ("service.name".to_string(), "weir".to_string())
    );
    assert_eq!(d.resource[2].0, "service.instance.id");
    assert_eq!(d.resource[2].1.len(), 36, "a UUID");
    let e = parse_telemetry(&json!({"resource": {"k": [1]}}), "service.telemetry").unwrap_err();
    assert_eq!(e.0[0].path, "service.telemetry.resource.k");
}
