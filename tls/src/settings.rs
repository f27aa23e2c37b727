//! The `tls` settings, as in the OpenTelemetry Collector's `configtls`.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use weir_api::ConfigErrors;

/// A TLS protocol version, written `"1.2"` or `"1.3"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum TlsVersion {
    /// TLS 1.2: only when configured (`min_version: "1.2"`).
    #[serde(rename = "1.2")]
    V1_2,
    /// TLS 1.3: the default minimum.
    #[serde(rename = "1.3")]
    V1_3,
}

impl TlsVersion {
    /// The rustls versions in `min..=max`, newest first.
    pub(crate) fn range(
        min: TlsVersion,
        max: Option<TlsVersion>,
    ) -> Vec<&'static rustls::SupportedProtocolVersion> {
        let max = max.unwrap_or(TlsVersion::V1_3);
        let mut out = Vec::new();
        if min <= TlsVersion::V1_3 && TlsVersion::V1_3 <= max {
            out.push(&rustls::version::TLS13);
        }
        if min <= TlsVersion::V1_2 && TlsVersion::V1_2 <= max {
            out.push(&rustls::version::TLS12);
        }
        out
    }
}

fn default_min_version() -> TlsVersion {
    TlsVersion::V1_3
}
fn default_reload_interval() -> Duration {
    Duration::from_secs(30)
}

/// Server-side `tls` settings of a listener (a receiver, the control plane).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsServerSettings {
    /// PEM certificate chain served to clients, leaf first. Required.
    pub cert_file: String,
    /// PEM private key of the certificate (PKCS#8, PKCS#1 or SEC1). Required.
    pub key_file: String,
    /// PEM CA certificates for mTLS: when set, every client must present a certificate signed
    /// by one of them, else the handshake fails. Default: none (no client certificates asked).
    #[serde(default)]
    pub client_ca_file: Option<String>,
    /// Oldest protocol version accepted: `"1.2"` or `"1.3"`. Default: `"1.3"`.
    #[serde(default = "default_min_version")]
    pub min_version: TlsVersion,
    /// Newest protocol version accepted. Default: none (the newest, `"1.3"`).
    #[serde(default)]
    pub max_version: Option<TlsVersion>,
    /// How often, at most, the three files are checked for changes (on the next accepted
    /// connection); a change reloads them without a restart. `0s` checks on every connection.
    /// Default: 30s.
    #[serde(default = "default_reload_interval", with = "humantime_serde")]
    pub reload_interval: Duration,
}

impl TlsServerSettings {
    /// Problems found without reading files (those are read when the component is built).
    /// `path` is the YAML path of the `tls` section.
    pub fn validate(&self, path: &str) -> ConfigErrors {
        let mut errors = ConfigErrors::default();
        if self.cert_file.is_empty() {
            errors.push(format!("{path}.cert_file"), "must not be empty");
        }
        if self.key_file.is_empty() {
            errors.push(format!("{path}.key_file"), "must not be empty");
        }
        if self.client_ca_file.as_deref() == Some("") {
            errors.push(
                format!("{path}.client_ca_file"),
                "must not be empty when set",
            );
        }
        check_versions(path, self.min_version, self.max_version, &mut errors);
        errors
    }
}

/// Client-side `tls` settings of a connection (an exporter, the policy sync client).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsClientSettings {
    /// Plain text, no TLS at all (gRPC clients; HTTP clients follow the URL scheme).
    /// Default: false.
    #[serde(default)]
    pub insecure: bool,
    /// Accept any server certificate and name: the connection is encrypted but the server is
    /// not authenticated. Testing only. Default: false.
    #[serde(default)]
    pub insecure_skip_verify: bool,
    /// PEM CA certificates that server certificates must chain to. Default: none (the
    /// system's trusted roots).
    #[serde(default)]
    pub ca_file: Option<String>,
    /// The same as `ca_file`, inline PEM text. Default: none.
    #[serde(default)]
    pub ca_pem: Option<String>,
    /// Also trust the system's roots when `ca_file` or `ca_pem` is set. Default: false.
    #[serde(default)]
    pub include_system_ca_certs_pool: bool,
    /// PEM client certificate chain for mTLS (with `key_file`). Default: none.
    #[serde(default)]
    pub cert_file: Option<String>,
    /// The same as `cert_file`, inline PEM text. Default: none.
    #[serde(default)]
    pub cert_pem: Option<String>,
    /// PEM private key of the client certificate. Default: none.
    #[serde(default)]
    pub key_file: Option<String>,
    /// The same as `key_file`, inline PEM text. Default: none.
    #[serde(default)]
    pub key_pem: Option<String>,
    /// Name checked in the server certificate (and sent as SNI) instead of the endpoint's
    /// host. Default: none (the endpoint's host).
    #[serde(default)]
    pub server_name_override: Option<String>,
    /// Oldest protocol version offered: `"1.2"` or `"1.3"`. Default: `"1.3"`.
    #[serde(default)]
    pub min_version: Option<TlsVersion>,
    /// Newest protocol version offered. Default: none (the newest, `"1.3"`).
    #[serde(default)]
    pub max_version: Option<TlsVersion>,
}

impl TlsClientSettings {
    /// Problems found without reading files. `path` is the YAML path of the `tls` section.
    pub fn validate(&self, path: &str) -> ConfigErrors {
        let mut errors = ConfigErrors::default();
        for (file, pem, name) in [
            (&self.ca_file, &self.ca_pem, "ca"),
            (&self.cert_file, &self.cert_pem, "cert"),
            (&self.key_file, &self.key_pem, "key"),
        ] {
            if file.is_some() && pem.is_some() {
                errors.push(
                    format!("{path}.{name}_pem"),
                    format!("set either {name}_file or {name}_pem, not both"),
                );
            }
        }
        let has_cert = self.cert_file.is_some() || self.cert_pem.is_some();
        let has_key = self.key_file.is_some() || self.key_pem.is_some();
        if has_cert && !has_key {
            errors.push(
                format!("{path}.key_file"),
                "must be set when cert_file is set",
            );
        } else if has_key && !has_cert {
            errors.push(
                format!("{path}.cert_file"),
                "must be set when key_file is set",
            );
        }
        for (name, v) in [
            ("ca_file", &self.ca_file),
            ("ca_pem", &self.ca_pem),
            ("cert_file", &self.cert_file),
            ("cert_pem", &self.cert_pem),
            ("key_file", &self.key_file),
            ("key_pem", &self.key_pem),
            ("server_name_override", &self.server_name_override),
        ] {
            if v.as_deref() == Some("") {
                errors.push(format!("{path}.{name}"), "must not be empty when set");
            }
        }
        if self.insecure && self.insecure_skip_verify {
            errors.push(
                format!("{path}.insecure_skip_verify"),
                "has no effect with insecure: true (plain text); set only one",
            );
        }
        check_versions(
            path,
            self.min_version.unwrap_or(TlsVersion::V1_3),
            self.max_version,
            &mut errors,
        );
        errors
    }
}

fn check_versions(path: &str, min: TlsVersion, max: Option<TlsVersion>, errors: &mut ConfigErrors) {
    if let Some(max) = max {
        if max < min {
            errors.push(
                format!("{path}.max_version"),
                format!("{max:?} is older than min_version {min:?}")
                    .replace("V1_2", "\"1.2\"")
                    .replace("V1_3", "\"1.3\""),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_defaults_and_round_trip() {
        let s: TlsServerSettings =
            serde_json::from_value(serde_json::json!({"cert_file": "c.pem", "key_file": "k.pem"}))
                .unwrap();
        assert_eq!(s.min_version, TlsVersion::V1_3);
        assert_eq!(s.max_version, None);
        assert_eq!(s.reload_interval, Duration::from_secs(30));
        assert_eq!(s.client_ca_file, None);
        let back: TlsServerSettings =
            serde_json::from_value(serde_json::to_value(&s).unwrap()).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn unknown_field_and_bad_version_are_refused() {
        let e = serde_json::from_value::<TlsServerSettings>(
            serde_json::json!({"cert_file": "c", "key_file": "k", "ca_fil": "x"}),
        )
        .unwrap_err();
        assert!(e.to_string().contains("unknown field `ca_fil`"), "{e}");
        let e =
            serde_json::from_value::<TlsClientSettings>(serde_json::json!({"min_version": "1.1"}))
                .unwrap_err();
        assert!(e.to_string().contains("unknown variant `1.1`"), "{e}");
    }

    #[test]
    fn validation_names_the_paths() {
        let s = TlsServerSettings {
            cert_file: "c".into(),
            key_file: "".into(),
            client_ca_file: None,
            min_version: TlsVersion::V1_3,
            max_version: Some(TlsVersion::V1_2),
            reload_interval: Duration::ZERO,
        };
        assert_eq!(
            s.validate("extensions.control_plane.tls").to_string(),
            "extensions.control_plane.tls.key_file: must not be empty\n\
             extensions.control_plane.tls.max_version: \"1.2\" is older than min_version \"1.3\""
        );
        let c = TlsClientSettings {
            cert_file: Some("c.pem".into()),
            ..Default::default()
        };
        assert_eq!(
            c.validate("exporters.catalog.tls").to_string(),
            "exporters.catalog.tls.key_file: must be set when cert_file is set"
        );
    }

    #[test]
    fn version_ranges() {
        assert_eq!(TlsVersion::range(TlsVersion::V1_3, None).len(), 1);
        assert_eq!(TlsVersion::range(TlsVersion::V1_2, None).len(), 2);
        assert_eq!(
            TlsVersion::range(TlsVersion::V1_2, Some(TlsVersion::V1_2))[0].version,
            rustls::ProtocolVersion::TLSv1_2
        );
    }
}
