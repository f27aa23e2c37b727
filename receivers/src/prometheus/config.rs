//! The receiver's config as written: Prometheus's own config format under `config:`
//! (`global`, `scrape_configs`, static targets, basic auth, authorization, TLS) with its
//! defaults, and size values such as `body_size_limit`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use weir_api::ConfigErrors;

use super::{discovery, relabel};

/// The receiver's settings: Prometheus's configuration under `config`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrometheusReceiverSettings {
    /// Prometheus's own configuration (`global`, `scrape_configs`).
    pub config: PromConfig,
}

/// The part of Prometheus's configuration the receiver uses.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromConfig {
    /// Defaults for every scrape config.
    #[serde(default)]
    pub global: Global,
    /// The jobs.
    #[serde(default)]
    pub scrape_configs: Vec<ScrapeConfig>,
}

/// `global`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Global {
    /// Default `1m`.
    #[serde(default, with = "humantime_serde")]
    pub scrape_interval: Option<Duration>,
    /// Default `10s`.
    #[serde(default, with = "humantime_serde")]
    pub scrape_timeout: Option<Duration>,
    /// Accepted; rule evaluation has no meaning here.
    #[serde(default, with = "humantime_serde")]
    pub evaluation_interval: Option<Duration>,
}

/// One `static_configs` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticConfig {
    /// `host:port` targets.
    #[serde(default)]
    pub targets: Vec<String>,
    /// Labels added to every series of these targets.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// `basic_auth`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    /// User name.
    pub username: String,
    /// Password.
    #[serde(default)]
    pub password: Option<String>,
    /// File holding the password.
    #[serde(default)]
    pub password_file: Option<String>,
}

/// `authorization`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Authorization {
    /// Scheme; default `Bearer`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// The credentials.
    #[serde(default)]
    pub credentials: Option<String>,
    /// File holding the credentials.
    #[serde(default)]
    pub credentials_file: Option<String>,
}

fn default_path() -> String {
    "/metrics".into()
}

fn default_scheme() -> String {
    "http".into()
}

fn default_true() -> bool {
    true
}

/// One `scrape_configs` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScrapeConfig {
    /// The job name (`job` label, `service.name`).
    pub job_name: String,
    /// Default: `global.scrape_interval`.
    #[serde(default, with = "humantime_serde")]
    pub scrape_interval: Option<Duration>,
    /// Default: `global.scrape_timeout`.
    #[serde(default, with = "humantime_serde")]
    pub scrape_timeout: Option<Duration>,
    /// Default `/metrics`.
    #[serde(default = "default_path")]
    pub metrics_path: String,
    /// `http` (default) or `https`.
    #[serde(default = "default_scheme")]
    pub scheme: String,
    /// Query parameters.
    #[serde(default)]
    pub params: BTreeMap<String, Vec<String>>,
    /// Scraped labels win over target labels. Default `false`.
    #[serde(default)]
    pub honor_labels: bool,
    /// Use the target's timestamps. Default `true`.
    #[serde(default = "default_true")]
    pub honor_timestamps: bool,
    /// More samples than this fail the scrape; `0` no limit.
    #[serde(default)]
    pub sample_limit: usize,
    /// Bytes; a number or `10MB`-style size. `0`: the default cap.
    #[serde(default)]
    pub body_size_limit: Option<serde_json::Value>,
    /// Basic authentication.
    #[serde(default)]
    pub basic_auth: Option<BasicAuth>,
    /// `Authorization` header.
    #[serde(default)]
    pub authorization: Option<Authorization>,
    /// The older form of `authorization: {credentials: ...}`.
    #[serde(default)]
    pub bearer_token: Option<String>,
    /// The older form of `authorization: {credentials_file: ...}`.
    #[serde(default)]
    pub bearer_token_file: Option<String>,
    /// The targets.
    #[serde(default)]
    pub static_configs: Vec<StaticConfig>,
    /// Targets read from files.
    #[serde(default)]
    pub file_sd_configs: Vec<discovery::FileSdConfig>,
    /// Rules applied to each target's labels before it is scraped.
    #[serde(default)]
    pub relabel_configs: Vec<relabel::RelabelConfig>,
    /// Rules applied to each scraped sample's labels.
    #[serde(default)]
    pub metric_relabel_configs: Vec<relabel::RelabelConfig>,
    /// TLS for `https` targets.
    #[serde(default)]
    pub tls_config: Option<PromTlsConfig>,
}

/// `tls_config`, with Prometheus's field names.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromTlsConfig {
    /// CA certificates (PEM file) that the target's certificate must chain to.
    #[serde(default)]
    pub ca_file: Option<String>,
    /// The same, inline PEM.
    #[serde(default)]
    pub ca: Option<String>,
    /// Client certificate (PEM file), with `key_file`.
    #[serde(default)]
    pub cert_file: Option<String>,
    /// The same, inline PEM.
    #[serde(default)]
    pub cert: Option<String>,
    /// Client key (PEM file).
    #[serde(default)]
    pub key_file: Option<String>,
    /// The same, inline PEM.
    #[serde(default)]
    pub key: Option<String>,
    /// The name checked in the target's certificate (and sent as SNI).
    #[serde(default)]
    pub server_name: Option<String>,
    /// Accept any certificate. Default `false`.
    #[serde(default)]
    pub insecure_skip_verify: bool,
    /// `TLS12` (default) or `TLS13`.
    #[serde(default)]
    pub min_version: Option<String>,
    /// `TLS12` or `TLS13` (default: the newest).
    #[serde(default)]
    pub max_version: Option<String>,
}

impl PromTlsConfig {
    /// weir's client TLS settings for this config; problems pushed under `path`.
    pub(super) fn settings(
        &self,
        path: &str,
        errors: &mut ConfigErrors,
    ) -> weir_tls::TlsClientSettings {
        let version = |v: &Option<String>, name: &str, errors: &mut ConfigErrors| match v.as_deref()
        {
            None => None,
            Some("TLS12") => Some(weir_tls::TlsVersion::V1_2),
            Some("TLS13") => Some(weir_tls::TlsVersion::V1_3),
            Some(other) => {
                errors.push(
                    format!("{path}.{name}"),
                    format!("{other:?}: weir supports TLS12 and TLS13"),
                );
                None
            }
        };
        for (file, inline, name) in [
            (&self.ca_file, &self.ca, "ca"),
            (&self.cert_file, &self.cert, "cert"),
            (&self.key_file, &self.key, "key"),
        ] {
            if file.is_some() && inline.is_some() {
                errors.push(
                    format!("{path}.{name}"),
                    format!("set {name} or {name}_file, not both"),
                );
            }
        }
        let has_cert = self.cert_file.is_some() || self.cert.is_some();
        let has_key = self.key_file.is_some() || self.key.is_some();
        if has_cert != has_key {
            errors.push(
                format!("{path}.{}", if has_cert { "key_file" } else { "cert_file" }),
                "a client certificate needs both cert_file (or cert) and key_file (or key)",
            );
        }
        weir_tls::TlsClientSettings {
            insecure_skip_verify: self.insecure_skip_verify,
            ca_file: self.ca_file.clone(),
            ca_pem: self.ca.clone(),
            cert_file: self.cert_file.clone(),
            cert_pem: self.cert.clone(),
            key_file: self.key_file.clone(),
            key_pem: self.key.clone(),
            server_name_override: self.server_name.clone(),
            min_version: Some(
                version(&self.min_version, "min_version", errors)
                    .unwrap_or(weir_tls::TlsVersion::V1_2),
            ),
            max_version: version(&self.max_version, "max_version", errors),
            ..Default::default()
        }
    }
}

/// Parses `10MB`, `1GiB`, `512KB`, `1000` (bytes).
pub(super) fn parse_size(v: &serde_json::Value) -> Option<u64> {
    if let Some(n) = v.as_u64() {
        return Some(n);
    }
    let s = v.as_str()?.trim();
    let digits = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(digits);
    let num: f64 = num.parse().ok()?;
    let mult: f64 = match unit.trim() {
        "" | "B" => 1.0,
        "KB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    Some((num * mult) as u64)
}
