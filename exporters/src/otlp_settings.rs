//! Settings the two OTLP exporters share: `compression`, `tls`, and the endpoint rules that
//! follow from TLS not being available yet.

use serde::Deserialize;
use weir_api::ConfigErrors;

/// Body compression on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum Compression {
    /// gzip (the collector's default).
    Gzip,
    /// zstd.
    Zstd,
    /// No compression (`none` or an empty string).
    None,
}

impl TryFrom<String> for Compression {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        match s.as_str() {
            "gzip" => Ok(Compression::Gzip),
            "zstd" => Ok(Compression::Zstd),
            "none" | "" => Ok(Compression::None),
            other => Err(format!(
                "unsupported compression {other:?}; expected gzip, zstd or none"
            )),
        }
    }
}

impl Compression {
    /// The collector's default.
    pub fn gzip() -> Self {
        Compression::Gzip
    }

    /// The `Content-Encoding` / `grpc-encoding` token, if any.
    pub fn token(self) -> Option<&'static str> {
        match self {
            Compression::Gzip => Some("gzip"),
            Compression::Zstd => Some("zstd"),
            Compression::None => None,
        }
    }
}

/// The `tls` section. Only `insecure` is supported until Weir speaks TLS; every other field
/// is accepted by the parser so that the error can say plainly that TLS is not there yet.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsSettings {
    /// Plain text instead of TLS. Default `false` (the collector's), which Weir cannot honour
    /// yet, so a `host:port` endpoint needs `insecure: true`.
    pub insecure: bool,
    /// Not supported yet.
    pub insecure_skip_verify: Option<serde_json::Value>,
    /// Not supported yet.
    pub ca_file: Option<serde_json::Value>,
    /// Not supported yet.
    pub ca_pem: Option<serde_json::Value>,
    /// Not supported yet.
    pub cert_file: Option<serde_json::Value>,
    /// Not supported yet.
    pub cert_pem: Option<serde_json::Value>,
    /// Not supported yet.
    pub key_file: Option<serde_json::Value>,
    /// Not supported yet.
    pub key_pem: Option<serde_json::Value>,
    /// Not supported yet.
    pub min_version: Option<serde_json::Value>,
    /// Not supported yet.
    pub max_version: Option<serde_json::Value>,
    /// Not supported yet.
    pub cipher_suites: Option<serde_json::Value>,
    /// Not supported yet.
    pub curve_preferences: Option<serde_json::Value>,
    /// Not supported yet.
    pub reload_interval: Option<serde_json::Value>,
    /// Not supported yet.
    pub server_name_override: Option<serde_json::Value>,
    /// Not supported yet.
    pub include_system_ca_certs_pool: Option<serde_json::Value>,
}

impl TlsSettings {
    /// Reports every TLS field that is set, since none of them can take effect yet.
    pub fn validate(&self, path: &str, errors: &mut ConfigErrors) {
        let fields = [
            ("insecure_skip_verify", &self.insecure_skip_verify),
            ("ca_file", &self.ca_file),
            ("ca_pem", &self.ca_pem),
            ("cert_file", &self.cert_file),
            ("cert_pem", &self.cert_pem),
            ("key_file", &self.key_file),
            ("key_pem", &self.key_pem),
            ("min_version", &self.min_version),
            ("max_version", &self.max_version),
            ("cipher_suites", &self.cipher_suites),
            ("curve_preferences", &self.curve_preferences),
            ("reload_interval", &self.reload_interval),
            ("server_name_override", &self.server_name_override),
            (
                "include_system_ca_certs_pool",
                &self.include_system_ca_certs_pool,
            ),
        ];
        for (name, value) in fields {
            // `false`, `""` and `null` ask for nothing, so plain text can honour them.
            let asks_for_tls = value.as_ref().is_some_and(|v| {
                !(v.is_null() || *v == serde_json::Value::Bool(false) || v.as_str() == Some(""))
            });
            if asks_for_tls {
                errors.push(
                    format!("{path}.{name}"),
                    "TLS is not supported yet; only plain text (tls.insecure: true or an http:// endpoint) works for now",
                );
            }
        }
    }
}

/// Builds the `http://` URL of a gRPC endpoint written as `host:port` or `http://host:port`.
/// `https://`, and `host:port` without `tls.insecure: true`, would need TLS: reported.
pub fn grpc_endpoint_url(
    endpoint: &str,
    tls: &TlsSettings,
    path: &str,
    errors: &mut ConfigErrors,
) -> Option<String> {
    let endpoint = endpoint.trim();
    if endpoint.is_empty() {
        errors.push(path, "must not be empty");
        return None;
    }
    if endpoint.starts_with("https://") {
        errors.push(
            path,
            format!(
                "{endpoint:?} uses TLS, which is not supported yet; use http://... for plain text"
            ),
        );
        return None;
    }
    let url = if endpoint.starts_with("http://") {
        endpoint.to_string()
    } else if endpoint.contains("://") {
        errors.push(
            path,
            format!("{endpoint:?}: unsupported scheme; write host:port or http://host:port"),
        );
        return None;
    } else if tls.insecure {
        format!("http://{endpoint}")
    } else {
        errors.push(
            path,
            format!(
                "{endpoint:?} without a scheme means TLS, which is not supported yet; set tls.insecure: true (plain text) or write http://{endpoint}"
            ),
        );
        return None;
    };
    match url.parse::<http::Uri>() {
        Ok(uri) if uri.host().is_some() => Some(url),
        Ok(_) => {
            errors.push(path, format!("{endpoint:?} has no host"));
            None
        }
        Err(e) => {
            errors.push(path, format!("{endpoint:?} is not a valid address: {e}"));
            None
        }
    }
}

/// Checks an HTTP endpoint (`http://host:port[/path]`); `https://` needs TLS: reported.
pub fn http_endpoint_uri(url: &str, path: &str, errors: &mut ConfigErrors) -> Option<http::Uri> {
    if url.starts_with("https://") {
        errors.push(
            path,
            format!("{url:?} uses TLS, which is not supported yet; use http://... for plain text"),
        );
        return None;
    }
    if !url.starts_with("http://") {
        errors.push(
            path,
            format!("{url:?} must start with http:// (for example http://localhost:4318)"),
        );
        return None;
    }
    match url.parse::<http::Uri>() {
        Ok(uri) if uri.host().is_some() => Some(uri),
        Ok(_) => {
            errors.push(path, format!("{url:?} has no host"));
            None
        }
        Err(e) => {
            errors.push(path, format!("{url:?} is not a valid URL: {e}"));
            None
        }
    }
}

/// Checks `headers` names and values, reporting each bad one.
pub fn validate_headers(
    headers: &std::collections::BTreeMap<String, String>,
    path: &str,
    errors: &mut ConfigErrors,
) {
    for (name, value) in headers {
        if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            errors.push(format!("{path}.{name}"), "is not a valid header name");
        }
        if http::HeaderValue::from_str(value).is_err() {
            errors.push(
                format!("{path}.{name}"),
                "value holds characters a header cannot carry",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_endpoints() {
        let insecure = TlsSettings {
            insecure: true,
            ..Default::default()
        };
        let mut errors = ConfigErrors::default();
        assert_eq!(
            grpc_endpoint_url("collector:4317", &insecure, "p", &mut errors).as_deref(),
            Some("http://collector:4317")
        );
        assert_eq!(
            grpc_endpoint_url(
                "http://collector:4317",
                &TlsSettings::default(),
                "p",
                &mut errors
            )
            .as_deref(),
            Some("http://collector:4317")
        );
        assert!(errors.is_empty(), "{errors}");
        assert!(grpc_endpoint_url(
            "collector:4317",
            &TlsSettings::default(),
            "exporters.otlp.endpoint",
            &mut errors
        )
        .is_none());
        assert!(grpc_endpoint_url(
            "https://collector:4317",
            &insecure,
            "exporters.otlp.endpoint",
            &mut errors
        )
        .is_none());
        assert_eq!(
            errors.to_string(),
            "exporters.otlp.endpoint: \"collector:4317\" without a scheme means TLS, which is not supported yet; set tls.insecure: true (plain text) or write http://collector:4317\n\
             exporters.otlp.endpoint: \"https://collector:4317\" uses TLS, which is not supported yet; use http://... for plain text"
        );
    }

    #[test]
    fn tls_files_are_reported_as_unsupported() {
        let tls: TlsSettings = serde_json::from_value(serde_json::json!({
            "insecure": true,
            "ca_file": "/ca.pem",
            "insecure_skip_verify": false,
            "cert_file": "",
        }))
        .unwrap();
        let mut errors = ConfigErrors::default();
        tls.validate("exporters.otlp.tls", &mut errors);
        assert_eq!(
            errors.to_string(),
            "exporters.otlp.tls.ca_file: TLS is not supported yet; only plain text (tls.insecure: true or an http:// endpoint) works for now"
        );
    }

    #[test]
    fn compression_names() {
        let c: Compression = serde_json::from_value(serde_json::json!("")).unwrap();
        assert_eq!(c, Compression::None);
        let err = serde_json::from_value::<Compression>(serde_json::json!("snappy")).unwrap_err();
        assert!(
            err.to_string()
                .contains("unsupported compression \"snappy\"; expected gzip, zstd or none"),
            "{err}"
        );
    }
}
