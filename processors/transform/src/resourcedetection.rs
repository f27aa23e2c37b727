//! The `resourcedetection` processor with the `env` and `system` detectors: attributes
//! found once, when the processor is built, are added to every resource.
//!
//! ```yaml
//! processors:
//!   resourcedetection:
//!     detectors: [env, system]
//!     override: false
//!     system:
//!       hostname_sources: [os]
//!       resource_attributes:
//!         host.arch: {enabled: true}
//! ```
//!
//! `env` reads `OTEL_RESOURCE_ATTRIBUTES` (`k=v,k2=v2`, values URL-query-unescaped as the
//! Collector does). `system` gives `host.name` (first hostname source that answers),
//! `os.type`, and when enabled `host.arch` and `host.id`. Detectors run in order; an earlier
//! detector's value wins over a later one's. `override: true` (default) replaces a
//! resource's existing value, `false` keeps it.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde::Deserialize;
use weir_api::otlp::common::v1::{any_value, AnyValue, KeyValue};
use weir_api::otlp::resource::v1::Resource;
use weir_api::{
    parse_component_config, Batch, BuildContext, BuildError, ConfigErrors, Consumer, Payload,
    ProcessError, Processor, ProcessorConfig, ProcessorFactory, Signal, SignalSet, Stage,
};
use weir_filter::ottl::with_hint;

/// `resource_attributes.<name>: {enabled}`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Enabled {
    /// Whether the attribute is set.
    pub enabled: bool,
}

/// `system:` settings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SystemConfig {
    /// Where `host.name` comes from, first that answers: `dns` (the fully qualified name
    /// from /etc/hosts), `os`. Default: `[dns, os]`.
    #[serde(deserialize_with = "weir_api::config::string_list")]
    pub hostname_sources: Vec<String>,
    /// Which attributes are set (`host.name`, `os.type` on by default).
    pub resource_attributes: std::collections::BTreeMap<String, Enabled>,
}

impl Default for SystemConfig {
    fn default() -> Self {
        SystemConfig {
            hostname_sources: vec!["dns".into(), "os".into()],
            resource_attributes: Default::default(),
        }
    }
}

/// `env:` settings (the Collector's has none either).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvConfig {}

/// `resourcedetection` processor config.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectionConfig {
    /// Detectors, in priority order: `env`, `system`. Default: `[env]`.
    #[serde(deserialize_with = "weir_api::config::string_list")]
    pub detectors: Vec<String>,
    /// Replace existing resource attributes. Default: true.
    pub r#override: bool,
    /// Detection time limit. Default: 5s (the local detectors take microseconds).
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Only these detected attributes are added. Default: all.
    #[serde(deserialize_with = "weir_api::config::opt_string_list")]
    pub attributes: Option<Vec<String>>,
    /// Periodic re-detection; only 0 (off, the default) is supported.
    #[serde(with = "humantime_serde")]
    pub refresh_interval: Duration,
    /// For network detectors; accepted, no effect on `env` and `system`.
    pub fail_on_missing_metadata: bool,
    /// `system` detector settings.
    pub system: SystemConfig,
    /// `env` detector settings (none).
    pub env: EnvConfig,
}

impl Default for DetectionConfig {
    fn default() -> Self {
        DetectionConfig {
            detectors: vec!["env".into()],
            r#override: true,
            timeout: Duration::from_secs(5),
            attributes: None,
            refresh_interval: Duration::ZERO,
            fail_on_missing_metadata: false,
            system: SystemConfig::default(),
            env: EnvConfig::default(),
        }
    }
}

// The Collector's detectors that Weir does not have: named for a clear error.
const OTHER_DETECTORS: &[&str] = &[
    "ec2",
    "ecs",
    "eks",
    "elasticbeanstalk",
    "lambda",
    "azure",
    "aks",
    "azurecontainerapps",
    "consul",
    "digitalocean",
    "docker",
    "gcp",
    "heroku",
    "hetzner",
    "ibmcloud_classic",
    "ibmcloud_vpc",
    "openshift",
    "nova",
    "oraclecloud",
    "k8s_api",
    "k8snode",
    "kubeadm",
    "akamai",
    "scaleway",
    "tencent_cvm",
    "upcloud",
    "vultr",
    "alibaba_ecs",
    "dynatrace",
];

const SYSTEM_ATTRS: &[(&str, bool, bool)] = &[
    // (name, enabled by default, supported by Weir)
    ("host.name", true, true),
    ("os.type", true, true),
    ("host.arch", false, true),
    ("host.id", false, true),
    ("os.description", false, false),
    ("host.ip", false, false),
    ("host.mac", false, false),
    ("host.cpu.vendor.id", false, false),
    ("host.cpu.family", false, false),
    ("host.cpu.model.id", false, false),
    ("host.cpu.model.name", false, false),
    ("host.cpu.stepping", false, false),
    ("host.cpu.cache.l2.size", false, false),
];

/// A validated detection plan.
#[derive(Debug)]
pub struct DetectionPlan {
    pub detectors: Vec<String>,
    pub override_existing: bool,
    pub attributes: Option<Vec<String>>,
    pub hostname_sources: Vec<String>,
    /// System attributes to set.
    pub system_attrs: Vec<String>,
}

impl DetectionPlan {
    /// Parses and validates the section at `path`, reporting every problem.
    pub fn parse(value: &serde_json::Value, path: &str) -> Result<Self, ConfigErrors> {
        let cfg: DetectionConfig = parse_component_config(value, path)?;
        let mut errors = ConfigErrors::default();
        for (i, d) in cfg.detectors.iter().enumerate() {
            if d == "env" || d == "system" {
                continue;
            }
            let msg = if OTHER_DETECTORS.contains(&d.as_str()) {
                format!("detector {d:?} is not supported by Weir (supported: env, system)")
            } else {
                with_hint(
                    format!("invalid detector key {d:?} (supported by Weir: env, system)"),
                    d,
                    ["env", "system"],
                )
            };
            errors.push(format!("{path}.detectors[{i}]"), msg);
        }
        if !cfg.refresh_interval.is_zero() {
            errors.push(
                format!("{path}.refresh_interval"),
                "periodic re-detection is not supported by Weir (the env and system detectors do not change while it runs)",
            );
        }
        for (i, s) in cfg.system.hostname_sources.iter().enumerate() {
            match s.as_str() {
                "dns" | "os" => {}
                "cname" | "lookup" => errors.push(
                    format!("{path}.system.hostname_sources[{i}]"),
                    format!("hostname source {s:?} is not supported by Weir (supported: dns, os)"),
                ),
                other => errors.push(
                    format!("{path}.system.hostname_sources[{i}]"),
                    format!("hostname_sources contains invalid value: {other:?} (valid: dns, os, cname, lookup)"),
                ),
            }
        }
        let mut system_attrs = Vec::new();
        for (name, default_on, _) in SYSTEM_ATTRS {
            let on = cfg
                .system
                .resource_attributes
                .get(*name)
                .map_or(*default_on, |e| e.enabled);
            if on {
                system_attrs.push(name.to_string());
            }
        }
        for (name, e) in &cfg.system.resource_attributes {
            let at = format!("{path}.system.resource_attributes.{name}");
            match SYSTEM_ATTRS.iter().find(|(n, _, _)| n == name) {
                None => errors.push(
                    at,
                    with_hint(
                        format!("unknown system resource attribute {name:?}"),
                        name,
                        SYSTEM_ATTRS.iter().map(|(n, _, _)| *n),
                    ),
                ),
                Some((_, _, false)) if e.enabled => errors.push(
                    at,
                    format!("{name} is not supported by Weir's system detector (supported: host.name, os.type, host.arch, host.id)"),
                ),
                _ => {}
            }
        }
        errors.into_result(DetectionPlan {
            detectors: cfg.detectors,
            override_existing: cfg.r#override,
            attributes: cfg.attributes,
            hostname_sources: cfg.system.hostname_sources,
            system_attrs,
        })
    }

    /// Runs the detectors with the given environment lookup and system facts.
    pub fn detect_with(
        &self,
        env: impl Fn(&str) -> Option<String>,
        sys: &dyn SystemFacts,
    ) -> Result<Vec<KeyValue>, String> {
        let mut out: Vec<KeyValue> = Vec::new();
        // An earlier detector's value wins.
        let mut add = |k: &str, v: AnyValue| {
            if !out.iter().any(|kv| kv.key == k) {
                out.push(KeyValue {
                    key: k.to_string(),
                    value: Some(v),
                    ..Default::default()
                });
            }
        };
        for d in &self.detectors {
            match d.as_str() {
                "env" => {
                    if let Some(raw) = env("OTEL_RESOURCE_ATTRIBUTES") {
                        for (k, v) in parse_resource_attributes(&raw)? {
                            add(&k, str_value(v));
                        }
                    }
                }
                "system" => {
                    for name in &self.system_attrs {
                        let v = match name.as_str() {
                            "host.name" => {
                                let mut found = None;
                                let mut why = Vec::new();
                                for s in &self.hostname_sources {
                                    let r = if s == "dns" {
                                        sys.fqdn()
                                    } else {
                                        sys.hostname()
                                    };
                                    match r {
                                        Ok(h) => {
                                            found = Some(h);
                                            break;
                                        }
                                        Err(e) => why.push(format!("{s}: {e}")),
                                    }
                                }
                                match found {
                                    Some(h) => h,
                                    None => {
                                        return Err(format!(
                                            "system detector: no hostname source answered ({})",
                                            why.join("; ")
                                        ))
                                    }
                                }
                            }
                            "os.type" => sys.os_type(),
                            "host.arch" => sys.arch(),
                            "host.id" => match sys.host_id() {
                                Ok(id) => id,
                                Err(e) => return Err(format!("system detector: host.id: {e}")),
                            },
                            _ => continue,
                        };
                        add(name, str_value(v));
                    }
                }
                _ => {}
            }
        }
        if let Some(keep) = &self.attributes {
            out.retain(|kv| keep.contains(&kv.key));
        }
        Ok(out)
    }
}

fn str_value(s: String) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::StringValue(s)),
    }
}

/// Parses `OTEL_RESOURCE_ATTRIBUTES`: comma-separated `key=value` pairs, both trimmed,
/// values unescaped as a URL query component (`%XX`, `+` as a space).
pub fn parse_resource_attributes(raw: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    if raw.trim().is_empty() {
        return Ok(out);
    }
    for pair in raw.split(',') {
        let Some((k, v)) = pair.split_once('=') else {
            return Err(format!(
                "OTEL_RESOURCE_ATTRIBUTES: invalid resource format in attribute: {pair:?} (want key=value)"
            ));
        };
        let v = query_unescape(v.trim()).map_err(|e| {
            format!("OTEL_RESOURCE_ATTRIBUTES: invalid value in attribute {pair:?}: {e}")
        })?;
        out.push((k.trim().to_string(), v));
    }
    Ok(out)
}

fn query_unescape(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = b
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok());
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(x) => out.push(x),
                    None => {
                        return Err(format!(
                            "invalid URL escape {:?}",
                            &s[i..(i + 3).min(s.len())]
                        ))
                    }
                }
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| "not UTF-8 after unescaping".to_string())
}

/// What the `system` detector reads from the machine (a trait so tests can give fixed
/// answers).
pub trait SystemFacts {
    /// The OS hostname.
    fn hostname(&self) -> Result<String, String>;
    /// The fully qualified hostname.
    fn fqdn(&self) -> Result<String, String>;
    /// `os.type` in semantic-convention spelling (`linux`, `darwin`, `windows`).
    fn os_type(&self) -> String;
    /// `host.arch` in semantic-convention spelling (`amd64`, `arm64`).
    fn arch(&self) -> String;
    /// The machine id.
    fn host_id(&self) -> Result<String, String>;
}

/// The real machine.
pub struct LocalSystem;

impl SystemFacts for LocalSystem {
    fn hostname(&self) -> Result<String, String> {
        // What Go's os.Hostname reads on Linux.
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_string())
            .map_err(|e| format!("reading /proc/sys/kernel/hostname: {e}"))
            .and_then(|h| {
                if h.is_empty() {
                    Err("empty hostname".into())
                } else {
                    Ok(h)
                }
            })
    }

    fn fqdn(&self) -> Result<String, String> {
        let host = self.hostname()?;
        let hosts = std::fs::read_to_string("/etc/hosts")
            .map_err(|e| format!("reading /etc/hosts: {e}"))?;
        fqdn_from_hosts(&host, &hosts).ok_or_else(|| {
            format!("{host:?} has no entry in /etc/hosts (DNS lookups are not done by Weir)")
        })
    }

    fn os_type(&self) -> String {
        match std::env::consts::OS {
            "macos" => "darwin".into(),
            other => other.to_string(),
        }
    }

    fn arch(&self) -> String {
        semconv_arch(std::env::consts::ARCH)
    }

    fn host_id(&self) -> Result<String, String> {
        for p in ["/etc/machine-id", "/var/lib/dbus/machine-id"] {
            if let Ok(s) = std::fs::read_to_string(p) {
                let s = s.trim();
                if !s.is_empty() {
                    return Ok(s.to_string());
                }
            }
        }
        Err("no /etc/machine-id or /var/lib/dbus/machine-id".into())
    }
}

/// Rust's architecture names in the semantic conventions' spelling (Go's GOARCH as the
/// Collector maps it).
pub fn semconv_arch(rust: &str) -> String {
    match rust {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "x86",
        "arm" => "arm32",
        "powerpc64" => "ppc64",
        "powerpc" => "ppc32",
        "s390x" => "s390x",
        other => other,
    }
    .to_string()
}

/// The canonical (first) name of the /etc/hosts line that lists `host`, if that name
/// is qualified or differs from `host`.
pub fn fqdn_from_hosts(host: &str, hosts: &str) -> Option<String> {
    for line in hosts.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut fields = line.split_whitespace();
        let Some(_addr) = fields.next() else { continue };
        let names: Vec<&str> = fields.collect();
        if names.iter().any(|n| n.eq_ignore_ascii_case(host)) {
            return names.first().map(|s| s.to_string());
        }
    }
    None
}

/// Merges detected attributes into a resource.
pub fn merge(detected: &[KeyValue], resource: &mut Resource, override_existing: bool) {
    for kv in detected {
        match resource.attributes.iter().position(|x| x.key == kv.key) {
            Some(i) if override_existing => resource.attributes[i].value = kv.value.clone(),
            Some(_) => {}
            None => resource.attributes.push(kv.clone()),
        }
    }
}

/// Factory of the `resourcedetection` processor type.
pub struct DetectionFactory;

impl ProcessorFactory for DetectionFactory {
    fn signals(&self) -> SignalSet {
        SignalSet::ALL
    }

    fn parse(
        &self,
        config: &serde_json::Value,
        path: &str,
    ) -> Result<Box<dyn ProcessorConfig>, ConfigErrors> {
        Ok(Box::new(DetectionProcessorConfig {
            plan: DetectionPlan::parse(config, path)?,
            detected: OnceLock::new(),
        }))
    }
}

struct DetectionProcessorConfig {
    plan: DetectionPlan,
    /// Detected once, shared by every pipeline the processor is in.
    detected: OnceLock<Result<Arc<Vec<KeyValue>>, String>>,
}

impl ProcessorConfig for DetectionProcessorConfig {
    fn build(
        &self,
        ctx: &BuildContext,
        signal: Signal,
        next: Arc<dyn Consumer>,
    ) -> Result<Arc<dyn Stage>, BuildError> {
        let detected = self
            .detected
            .get_or_init(|| {
                self.plan
                    .detect_with(|k| std::env::var(k).ok(), &LocalSystem)
                    .map(Arc::new)
            })
            .clone()
            .map_err(|message| BuildError::message(&ctx.id, message))?;
        tracing::info!(processor = %ctx.id, attributes = detected.len(), "resource detected");
        let processor = Arc::new(DetectionProcessor {
            detected,
            override_existing: self.plan.override_existing,
        });
        Ok(crate::stage::guarded(ctx, signal, processor, next))
    }
}

/// The running `resourcedetection` processor.
pub struct DetectionProcessor {
    detected: Arc<Vec<KeyValue>>,
    override_existing: bool,
}

impl DetectionProcessor {
    /// A processor adding `detected`; for tests and tools.
    pub fn new(detected: Vec<KeyValue>, override_existing: bool) -> Self {
        DetectionProcessor {
            detected: Arc::new(detected),
            override_existing,
        }
    }
}

impl Processor for DetectionProcessor {
    fn process(&self, batch: &mut Batch) -> Result<(), ProcessError> {
        if self.detected.is_empty() {
            return Ok(());
        }
        let apply = |r: &mut Option<Resource>| {
            merge(
                &self.detected,
                r.get_or_insert_with(Resource::default),
                self.override_existing,
            )
        };
        match batch.payload_mut() {
            Payload::Logs(req) => req
                .resource_logs
                .iter_mut()
                .for_each(|x| apply(&mut x.resource)),
            Payload::Traces(req) => req
                .resource_spans
                .iter_mut()
                .for_each(|x| apply(&mut x.resource)),
            Payload::Metrics(req) => req
                .resource_metrics
                .iter_mut()
                .for_each(|x| apply(&mut x.resource)),
        }
        Ok(())
    }
}
