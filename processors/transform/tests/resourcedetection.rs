//! The `resourcedetection` processor: the Collector's test-data shapes load (the
//! detectors Weir lacks are named in the error), `env` and `system` detect exactly,
//! and `override` decides who wins.

// The OTLP builders the filter tests use (one copy for both crates).
#[path = "../../filter/tests/common/mod.rs"]
mod common;

use common::*;
use weir_api::otlp::common::v1::{any_value, KeyValue};
use weir_api::{Payload, Processor};
use weir_transform::resourcedetection::{
    fqdn_from_hosts, parse_resource_attributes, semconv_arch, DetectionPlan, DetectionProcessor,
    SystemFacts,
};

struct Fixed {
    fqdn: Result<String, String>,
}

impl SystemFacts for Fixed {
    fn hostname(&self) -> Result<String, String> {
        Ok("box1".into())
    }
    fn fqdn(&self) -> Result<String, String> {
        self.fqdn.clone()
    }
    fn os_type(&self) -> String {
        "linux".into()
    }
    fn arch(&self) -> String {
        "amd64".into()
    }
    fn host_id(&self) -> Result<String, String> {
        Ok("abc123".into())
    }
}

fn render(attrs: &[KeyValue]) -> Vec<String> {
    attrs
        .iter()
        .map(
            |kv| match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(any_value::Value::StringValue(s)) => format!("{}={s}", kv.key),
                other => format!("{}={other:?}", kv.key),
            },
        )
        .collect()
}

fn plan(src: &str) -> DetectionPlan {
    DetectionPlan::parse(&yaml(src), "processors.resourcedetection").expect("valid")
}

/// Shaped like the Collector's `processor/resourcedetectionprocessor/testdata/config.yaml`
/// (the entries for the detectors Weir has).
const COLLECTOR_SHAPED: &str = r#"
resourcedetection:
resourcedetection/system:
  detectors: [env, system]
  timeout: 2s
  override: false
  system:
    hostname_sources: [os]
  attributes: ["a", "b"]
resourcedetection/env:
  detectors: [env]
  timeout: 2s
  override: false
"#;

#[test]
fn collector_shaped_configs_load_and_others_are_named() {
    let all = yaml(COLLECTOR_SHAPED);
    let map = all.as_object().expect("map");
    assert_eq!(map.len(), 3);
    for (name, section) in map {
        DetectionPlan::parse(section, &format!("processors.{name}"))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let default = DetectionPlan::parse(&serde_json::Value::Null, "p").expect("defaults");
    assert_eq!(default.detectors, ["env"]);
    assert!(default.override_existing);
    assert_eq!(default.hostname_sources, ["dns", "os"]);
    assert_eq!(default.system_attrs, ["host.name", "os.type"]);

    let err = DetectionPlan::parse(
        &yaml(
            r#"
detectors: [env, gcp, sytem]
refresh_interval: 1m
system:
  hostname_sources: [invalid_source, cname]
  resource_attributes:
    host.ip: {enabled: true}
    host.nme: {enabled: true}
"#,
        ),
        "processors.resourcedetection/invalid",
    )
    .expect_err("rejected");
    let got: Vec<String> = err.0.iter().map(|e| e.to_string()).collect();
    assert_eq!(
        got,
        vec![
            "processors.resourcedetection/invalid.detectors[1]: detector \"gcp\" is not supported by Weir (supported: env, system)",
            "processors.resourcedetection/invalid.detectors[2]: invalid detector key \"sytem\" (supported by Weir: env, system) (did you mean \"system\"?)",
            "processors.resourcedetection/invalid.refresh_interval: periodic re-detection is not supported by Weir (the env and system detectors do not change while it runs)",
            "processors.resourcedetection/invalid.system.hostname_sources[0]: hostname_sources contains invalid value: \"invalid_source\" (valid: dns, os, cname, lookup)",
            "processors.resourcedetection/invalid.system.hostname_sources[1]: hostname source \"cname\" is not supported by Weir (supported: dns, os)",
            "processors.resourcedetection/invalid.system.resource_attributes.host.ip: host.ip is not supported by Weir's system detector (supported: host.name, os.type, host.arch, host.id)",
            "processors.resourcedetection/invalid.system.resource_attributes.host.nme: unknown system resource attribute \"host.nme\" (did you mean \"host.name\"?)",
        ]
    );
}

#[test]
fn env_detector_parses_and_unescapes() {
    assert_eq!(
        parse_resource_attributes(" service.name = api , team=a%2Cb,note=x+y").expect("valid"),
        vec![
            ("service.name".to_string(), "api".to_string()),
            ("team".to_string(), "a,b".to_string()),
            ("note".to_string(), "x y".to_string()),
        ]
    );
    assert_eq!(
        parse_resource_attributes("a=1,broken").expect_err("no ="),
        "OTEL_RESOURCE_ATTRIBUTES: invalid resource format in attribute: \"broken\" (want key=value)"
    );
    assert_eq!(
        parse_resource_attributes("a=%zz").expect_err("bad escape"),
        "OTEL_RESOURCE_ATTRIBUTES: invalid value in attribute \"a=%zz\": invalid URL escape \"%zz\""
    );
}

#[test]
fn system_detector_sources_and_enabled_flags() {
    let env =
        |k: &str| (k == "OTEL_RESOURCE_ATTRIBUTES").then(|| "host.name=from-env,k=v".to_string());
    let facts = Fixed {
        fqdn: Err("no entry".into()),
    };
    // env first: its host.name wins over the system detector's.
    let p = plan("{detectors: [env, system], system: {resource_attributes: {host.arch: {enabled: true}, host.id: {enabled: true}, os.type: {enabled: false}}}}");
    assert_eq!(
        render(&p.detect_with(env, &facts).expect("detects")),
        vec![
            "host.name=from-env",
            "k=v",
            "host.arch=amd64",
            "host.id=abc123"
        ]
    );
    // system first, dns failing: falls back to os.
    let p = plan("{detectors: [system, env]}");
    assert_eq!(
        render(&p.detect_with(env, &facts).expect("detects")),
        vec!["host.name=box1", "os.type=linux", "k=v"]
    );
    let facts = Fixed {
        fqdn: Ok("box1.example.com".into()),
    };
    assert_eq!(
        render(&p.detect_with(|_| None, &facts).expect("detects")),
        vec!["host.name=box1.example.com", "os.type=linux"]
    );
    // The deprecated attributes filter.
    let p = plan("{detectors: [env, system], attributes: [k, os.type]}");
    assert_eq!(
        render(&p.detect_with(env, &facts).expect("detects")),
        vec!["k=v", "os.type=linux"]
    );
    // Only dns, failing: an error naming the source.
    let p = plan("{detectors: [system], system: {hostname_sources: [dns]}}");
    let facts = Fixed {
        fqdn: Err("no entry".into()),
    };
    assert_eq!(
        p.detect_with(|_| None, &facts).expect_err("no hostname"),
        "system detector: no hostname source answered (dns: no entry)"
    );
}

#[test]
fn hosts_file_and_arch_names() {
    let hosts = "127.0.0.1 localhost\n# comment box1\n10.0.0.5 box1.corp.example box1 # main\n";
    assert_eq!(
        fqdn_from_hosts("box1", hosts).as_deref(),
        Some("box1.corp.example")
    );
    assert_eq!(fqdn_from_hosts("other", hosts), None);
    assert_eq!(semconv_arch("x86_64"), "amd64");
    assert_eq!(semconv_arch("aarch64"), "arm64");
}

#[test]
fn override_decides_existing_values() {
    let detected = vec![kv("host.name", s("box1")), kv("os.type", s("linux"))];
    for (over, want) in [
        (
            true,
            vec!["host.name=box1", "service.name=a", "os.type=linux"],
        ),
        (
            false,
            vec!["host.name=mine", "service.name=a", "os.type=linux"],
        ),
    ] {
        let p = DetectionProcessor::new(detected.clone(), over);
        let mut batch = logs_batch(vec![(
            vec![kv("host.name", s("mine")), kv("service.name", s("a"))],
            "lib",
            vec![log("x", 9, vec![])],
        )]);
        p.process(&mut batch).expect("processes");
        let Payload::Logs(req) = batch.payload() else {
            panic!()
        };
        let res = req.resource_logs[0].resource.as_ref().expect("resource");
        assert_eq!(render(&res.attributes), want, "override {over}");
    }
}
