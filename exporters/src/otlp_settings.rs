//! Settings the two OTLP exporters share: `compression`, `tls`, and the endpoint rules.

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

/// The `auth` section: the extension (a client authenticator, e.g. `bearertokenauth`) that
/// adds credentials to every request, as the collector's `configauth`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// The extension id, e.g. `bearertokenauth/upstream`. Required.
    #[serde(default)]
    pub authenticator: String,
}

impl AuthSettings {
    /// `(YAML path, extension id)` for the config check; `path` is the exporter's path.
    pub fn refs(auth: &Option<AuthSettings>, path: &str) -> Vec<(String, String)> {
        auth.iter()
            .map(|a| {
                (
                    format!("{path}.auth.authenticator"),
                    a.authenticator.clone(),
                )
            })
            .collect()
    }

    /// Reports an empty `authenticator`.
    pub fn validate(auth: &Option<AuthSettings>, path: &str, errors: &mut ConfigErrors) {
        if let Some(a) = auth {
            if a.authenticator.trim().is_empty() {
                errors.push(
                    format!("{path}.auth.authenticator"),
                    "is required (the id of an authenticator extension, e.g. bearertokenauth)",
                );
            }
        }
    }

    /// The client authenticator named, from the service's extensions.
    pub fn resolve(
        auth: &Option<AuthSettings>,
        ctx: &weir_api::BuildContext,
    ) -> Result<Option<std::sync::Arc<dyn weir_api::ClientAuthenticator>>, weir_api::BuildError>
    {
        match auth {
            None => Ok(None),
            Some(a) => ctx
                .authenticators
                .client(
                    &ctx.id,
                    &format!("exporters.{}.auth.authenticator", ctx.id),
                    &a.authenticator,
                )
                .map(Some),
        }
    }
}

/// The `tls` section: weir-tls client settings (`insecure`, `insecure_skip_verify`, `ca_file`,
/// `ca_pem`, `cert_file`, `key_file`, `server_name_override`, `min_version`, ...).
pub use weir_tls::TlsClientSettings as TlsSettings;

/// Builds the URL of a gRPC endpoint written as `host:port`, `http://host:port` or
/// `https://host:port`: `host:port` means TLS (`https://`) unless `tls.insecure: true`, as
/// in the collector; `http://` is plain text.
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
    let url = if endpoint.starts_with("http://") || endpoint.starts_with("https://") {
        endpoint.to_string()
    } else if endpoint.contains("://") {
        errors.push(
            path,
            format!("{endpoint:?}: unsupported scheme; write host:port, http:// or https://"),
        );
        return None;
    } else if tls.insecure {
        format!("http://{endpoint}")
    } else {
        format!("https://{endpoint}")
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

/// Checks an HTTP endpoint (`https://host:port[/path]`, or `http://` for plain text).
pub fn http_endpoint_uri(url: &str, path: &str, errors: &mut ConfigErrors) -> Option<http::Uri> {
    if !url.starts_with("http://") && !url.starts_with("https://") {
        errors.push(
            path,
            format!(
                "{url:?} must start with https:// or http:// (for example https://localhost:4318)"
            ),
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

/// The configured header names no peer can receive (`"can you have a . here?"`): the
/// collector loads such configs, so Weir does too, leaves these out and warns when the
/// exporter is built. `grpc`: gRPC metadata keys (`[0-9a-z-_.]` after lower-casing).
pub fn unsendable_header_names(
    headers: &std::collections::BTreeMap<String, String>,
    grpc: bool,
) -> Vec<&str> {
    headers
        .keys()
        .filter(|name| {
            if grpc {
                tonic::metadata::MetadataKey::<tonic::metadata::Ascii>::from_bytes(
                    name.to_ascii_lowercase().as_bytes(),
                )
                .is_err()
            } else {
                http::HeaderName::from_bytes(name.as_bytes()).is_err()
            }
        })
        .map(String::as_str)
        .collect()
}

/// Checks `headers` values, reporting each bad one (names: [`unsendable_header_names`]).
pub fn validate_headers(
    headers: &std::collections::BTreeMap<String, String>,
    path: &str,
    errors: &mut ConfigErrors,
) {
    for (name, value) in headers {
        if http::HeaderValue::from_str(value).is_err() {
            errors.push(
                format!("{path}.{name}"),
                "value holds characters a header cannot carry",
            );
        }
    }
}

/// The configured `headers` as an HTTP header map: the sendable ones (a name or value that
/// cannot be sent is reported by [`unsendable_header_names`] / [`validate_headers`]).
pub fn header_map(headers: &std::collections::BTreeMap<String, String>) -> http::HeaderMap {
    let mut map = http::HeaderMap::new();
    for (name, value) in headers {
        if let (Ok(n), Ok(v)) = (
            http::HeaderName::from_bytes(name.as_bytes()),
            http::HeaderValue::from_str(value),
        ) {
            map.insert(n, v);
        }
    }
    map
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
        let url = |e: &str, tls: &TlsSettings, errors: &mut ConfigErrors| {
            grpc_endpoint_url(e, tls, "exporters.otlp.endpoint", errors)
        };
        let tls = TlsSettings::default();
        assert_eq!(
            url("collector:4317", &insecure, &mut errors).as_deref(),
            Some("http://collector:4317")
        );
        assert_eq!(
            url("collector:4317", &tls, &mut errors).as_deref(),
            Some("https://collector:4317")
        );
        assert_eq!(
            url("http://collector:4317", &tls, &mut errors).as_deref(),
            Some("http://collector:4317")
        );
        assert_eq!(
            url("https://collector:4317", &tls, &mut errors).as_deref(),
            Some("https://collector:4317")
        );
        assert!(errors.is_empty(), "{errors}");
        assert!(url("unix://x", &tls, &mut errors).is_none());
        assert_eq!(
            errors.to_string(),
            "exporters.otlp.endpoint: \"unix://x\": unsupported scheme; write host:port, http:// or https://"
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
