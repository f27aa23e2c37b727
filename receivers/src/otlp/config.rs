//! The `otlp` receiver's config: the collector's field names and defaults, validated with
//! YAML paths.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};
use weir_api::{parse_component_config, ConfigErrors};

/// 1 MiB.
const MIB: u64 = 1024 * 1024;

/// `receivers.otlp`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OtlpReceiverSettings {
    /// The protocols to serve. Default: none (at least one must be given, as in the
    /// collector; an empty `grpc:` or `http:` entry enables it with its defaults).
    pub protocols: Protocols,
    /// Weir extension: bytes of request bodies (compressed and decompressed) the receiver
    /// holds at once across both protocols, in MiB. A request that would go past it is
    /// answered "retry later" (HTTP 503 + Retry-After, gRPC RESOURCE_EXHAUSTED + RetryInfo)
    /// instead of being buffered. Default: 64.
    pub max_in_flight_mib: Option<u64>,
}

/// `receivers.otlp.protocols`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Protocols {
    /// OTLP/gRPC. Default: off.
    #[serde(
        deserialize_with = "present_or_default",
        skip_serializing_if = "Option::is_none"
    )]
    pub grpc: Option<GrpcSettings>,
    /// OTLP/HTTP. Default: off.
    #[serde(
        deserialize_with = "present_or_default",
        skip_serializing_if = "Option::is_none"
    )]
    pub http: Option<HttpSettings>,
}

/// `receivers.otlp.protocols.grpc`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct GrpcSettings {
    /// `host:port` to listen on, or the socket's path with `transport: unix`. Default:
    /// `localhost:4317`.
    pub endpoint: String,
    /// `tcp` or `unix` (a Unix domain socket at `endpoint`). Default: `tcp`.
    pub transport: String,
    /// Largest request message accepted (after decompression), in MiB. Default: 4.
    pub max_recv_msg_size_mib: u64,
    /// Most concurrent HTTP/2 streams per connection (0: unlimited). Default: unlimited.
    pub max_concurrent_streams: Option<u32>,
    /// HTTP/2 keepalive settings. Default: none.
    pub keepalive: Option<KeepaliveSettings>,
    /// Copy the request's gRPC metadata into the batch context. Default: false.
    pub include_metadata: bool,
    /// Accepted for collector compatibility; Weir sizes its read buffers itself.
    /// Default: absent.
    pub read_buffer_size: Option<u64>,
    /// Accepted for collector compatibility; Weir sizes its write buffers itself.
    /// Default: absent.
    pub write_buffer_size: Option<u64>,
    /// TLS (weir-tls server settings: `cert_file`, `key_file`, `client_ca_file` for mTLS,
    /// `min_version` (default "1.3"), `max_version`, `reload_interval`). Default: absent
    /// (plain text).
    pub tls: Option<weir_tls::TlsServerSettings>,
    /// The server authenticator every request must pass (`authenticator: <extension id>`:
    /// `bearertokenauth`, or `control_plane` for the control plane's own tokens). Default:
    /// absent (no authentication).
    pub auth: Option<AuthSettings>,
}

impl Default for GrpcSettings {
    fn default() -> Self {
        GrpcSettings {
            endpoint: "localhost:4317".to_string(),
            transport: "tcp".to_string(),
            max_recv_msg_size_mib: 4,
            max_concurrent_streams: None,
            keepalive: None,
            include_metadata: false,
            read_buffer_size: None,
            write_buffer_size: None,
            tls: None,
            auth: None,
        }
    }
}

impl GrpcSettings {
    /// The message size limit in bytes.
    pub fn max_recv_msg_size(&self) -> usize {
        usize::try_from(self.max_recv_msg_size_mib.saturating_mul(MIB)).unwrap_or(usize::MAX)
    }
}

/// `receivers.otlp.protocols.{grpc,http}.auth`, as the collector's `configauth`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// The id of the extension that authenticates requests (`bearertokenauth`,
    /// `bearertokenauth/name`, `control_plane`). It must be configured and listed in
    /// `service.extensions`.
    pub authenticator: String,
}

/// `receivers.otlp.protocols.grpc.keepalive`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct KeepaliveSettings {
    /// Server-side keepalive. Default: none.
    pub server_parameters: Option<KeepaliveServerParameters>,
    /// The collector's client ping policy (`min_time`, `permit_without_stream`). Accepted
    /// and not enforced: Weir's HTTP/2 server applies its own ping-flood protection rather
    /// than this policy. Default: absent.
    pub enforcement_policy: Option<KeepaliveEnforcementPolicy>,
}

/// `receivers.otlp.protocols.grpc.keepalive.enforcement_policy` (accepted, not enforced).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct KeepaliveEnforcementPolicy {
    /// Shortest interval between client pings the collector tolerates. Default: absent.
    #[serde(with = "humantime_serde")]
    pub min_time: Option<Duration>,
    /// Whether the collector tolerates pings without open streams. Default: false.
    pub permit_without_stream: bool,
}

/// `receivers.otlp.protocols.grpc.keepalive.server_parameters`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct KeepaliveServerParameters {
    /// The collector's idle-connection limit. Accepted and not enforced (idle connections
    /// are closed by `max_connection_age` when set). Default: absent.
    #[serde(with = "humantime_serde")]
    pub max_connection_idle: Option<Duration>,
    /// Close a connection after this age. Default: never.
    #[serde(with = "humantime_serde")]
    pub max_connection_age: Option<Duration>,
    /// Grace period after `max_connection_age` for open calls. Default: unlimited.
    #[serde(with = "humantime_serde")]
    pub max_connection_age_grace: Option<Duration>,
    /// Ping an idle connection after this long. Default: no pings.
    #[serde(with = "humantime_serde")]
    pub time: Option<Duration>,
    /// Close the connection when a ping is not answered within this. Default: 20s.
    #[serde(with = "humantime_serde")]
    pub timeout: Option<Duration>,
}

/// `receivers.otlp.protocols.http`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    /// `host:port` to listen on, or the socket's path with `transport: unix`. Default:
    /// `localhost:4318`.
    pub endpoint: String,
    /// `tcp` or `unix` (a Unix domain socket at `endpoint`). Default: `tcp`.
    pub transport: String,
    /// Path of trace exports. Default: `/v1/traces`.
    pub traces_url_path: String,
    /// Path of metric exports. Default: `/v1/metrics`.
    pub metrics_url_path: String,
    /// Path of log exports. Default: `/v1/logs`.
    pub logs_url_path: String,
    /// Largest request body, in bytes, both as received and after decompression.
    /// Default: 20971520 (20 MiB).
    pub max_request_body_size: u64,
    /// Cross-origin requests from browsers. Default: off.
    pub cors: Option<CorsSettings>,
    /// Longest time to receive a request's headers. Default: 1m.
    #[serde(with = "humantime_serde")]
    pub read_header_timeout: Option<Duration>,
    /// Longest time to receive a request's body once its headers are in (answered 408
    /// when exceeded). Default: none (as the collector).
    #[serde(with = "humantime_serde")]
    pub read_timeout: Option<Duration>,
    /// Copy the request headers into the batch context. Default: false.
    pub include_metadata: bool,
    /// Accepted for collector compatibility; idle connections are closed by hyper's own
    /// keep-alive handling. Default: absent.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Option<Duration>,
    /// Accepted for collector compatibility; responses are small and written at once.
    /// Default: absent.
    #[serde(with = "humantime_serde")]
    pub write_timeout: Option<Duration>,
    /// Content-Encodings accepted. Weir always accepts gzip, zstd and deflate; a list naming
    /// anything else is rejected. Default: absent (all three).
    #[serde(deserialize_with = "weir_api::config::opt_string_list")]
    pub compression_algorithms: Option<Vec<String>>,
    /// TLS (weir-tls server settings: `cert_file`, `key_file`, `client_ca_file` for mTLS,
    /// `min_version` (default "1.3"), `max_version`, `reload_interval`). Default: absent
    /// (plain text).
    pub tls: Option<weir_tls::TlsServerSettings>,
    /// The server authenticator every request must pass (`authenticator: <extension id>`:
    /// `bearertokenauth`, or `control_plane` for the control plane's own tokens). Default:
    /// absent (no authentication).
    pub auth: Option<AuthSettings>,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            endpoint: "localhost:4318".to_string(),
            transport: "tcp".to_string(),
            traces_url_path: "/v1/traces".to_string(),
            metrics_url_path: "/v1/metrics".to_string(),
            logs_url_path: "/v1/logs".to_string(),
            max_request_body_size: 20 * MIB,
            cors: None,
            read_header_timeout: Some(Duration::from_secs(60)),
            read_timeout: None,
            include_metadata: false,
            idle_timeout: None,
            write_timeout: None,
            compression_algorithms: None,
            tls: None,
            auth: None,
        }
    }
}

impl HttpSettings {
    /// The body size limit in bytes.
    pub fn max_body_size(&self) -> usize {
        usize::try_from(self.max_request_body_size).unwrap_or(usize::MAX)
    }
}

/// `receivers.otlp.protocols.http.cors`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CorsSettings {
    /// Origins allowed to send requests; `*` matches any run of characters
    /// (`https://*.example.com`), a lone `*` any origin. Default: none (CORS off).
    #[serde(deserialize_with = "weir_api::config::string_list")]
    pub allowed_origins: Vec<String>,
    /// Request headers allowed besides the CORS-safelisted ones and `Content-Type`,
    /// `Content-Encoding`, `X-Requested-With`; `*` allows any. Default: none.
    #[serde(deserialize_with = "weir_api::config::string_list")]
    pub allowed_headers: Vec<String>,
    /// Response headers a browser script may read (`Access-Control-Expose-Headers` on the
    /// answers to allowed origins). Default: none.
    #[serde(deserialize_with = "weir_api::config::string_list")]
    pub exposed_headers: Vec<String>,
    /// Seconds a browser may cache a preflight answer. Default: unset (browser default).
    pub max_age: Option<u64>,
}

/// Missing field: `None`; present (even as an empty `grpc:`): the settings, with defaults
/// filling what is not written.
pub(crate) fn present_or_default<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Some(Option::<T>::deserialize(d)?.unwrap_or_default()))
}

/// Checks what serde cannot: addresses, paths, reserved fields, at least one protocol.
pub fn validate(cfg: &OtlpReceiverSettings, path: &str) -> ConfigErrors {
    let mut errors = ConfigErrors::default();
    let protocols = format!("{path}.protocols");
    if cfg.protocols.grpc.is_none() && cfg.protocols.http.is_none() {
        errors.push(
            &protocols,
            "must specify at least one protocol (grpc or http) when using the OTLP receiver",
        );
    }
    if cfg.max_in_flight_mib == Some(0) {
        errors.push(
            format!("{path}.max_in_flight_mib"),
            "must be at least 1 (MiB)",
        );
    }
    if let Some(grpc) = &cfg.protocols.grpc {
        validate_grpc(grpc, &format!("{protocols}.grpc"), &mut errors);
    }
    if let Some(http) = &cfg.protocols.http {
        validate_http(http, &format!("{protocols}.http"), &mut errors);
    }
    errors
}

/// Parses and validates `receivers.<id>` (at YAML `path`). When parsing finds problems,
/// a protocol section that parses on its own is still validated, so one run of
/// `weir validate` lists the problems of both.
pub fn parse(value: &serde_json::Value, path: &str) -> Result<OtlpReceiverSettings, ConfigErrors> {
    let mut errors = match parse_component_config::<OtlpReceiverSettings>(value, path) {
        Ok(cfg) => return validate(&cfg, path).into_result(cfg),
        Err(e) => e,
    };
    let protocols = value.get("protocols");
    if let Some(grpc) = protocols.and_then(|p| p.get("grpc")) {
        let p = format!("{path}.protocols.grpc");
        if let Ok(g) = parse_component_config::<GrpcSettings>(grpc, &p) {
            validate_grpc(&g, &p, &mut errors);
        }
    }
    if let Some(http) = protocols.and_then(|p| p.get("http")) {
        let p = format!("{path}.protocols.http");
        if let Ok(h) = parse_component_config::<HttpSettings>(http, &p) {
            validate_http(&h, &p, &mut errors);
        }
    }
    Err(errors)
}

fn validate_grpc(grpc: &GrpcSettings, p: &str, errors: &mut ConfigErrors) {
    {
        check_transport(&grpc.transport, &grpc.endpoint, p, errors);
        if grpc.transport == "unix" && grpc.tls.is_some() {
            errors.push(
                format!("{p}.tls"),
                "TLS over a unix socket is not supported for gRPC; remove tls or use transport: tcp",
            );
        }
        if grpc.max_recv_msg_size_mib == 0 {
            errors.push(format!("{p}.max_recv_msg_size_mib"), "must be at least 1");
        }
        if let Some(tls) = &grpc.tls {
            errors.0.extend(tls.validate(&format!("{p}.tls")).0);
        }
        check_auth(errors, p, grpc.auth.as_ref());
    }
}

fn validate_http(http: &HttpSettings, p: &str, errors: &mut ConfigErrors) {
    {
        check_transport(&http.transport, &http.endpoint, p, errors);
        if http.max_request_body_size == 0 {
            errors.push(format!("{p}.max_request_body_size"), "must be at least 1");
        }
        let paths = [
            ("traces_url_path", &http.traces_url_path),
            ("metrics_url_path", &http.metrics_url_path),
            ("logs_url_path", &http.logs_url_path),
        ];
        for (i, (name, value)) in paths.iter().enumerate() {
            if value.is_empty() || value.contains(['?', '#', ' ']) {
                errors.push(format!("{p}.{name}"), format!("invalid URL path {value:?}"));
            }
            for (other, other_value) in &paths[..i] {
                if sanitize_url_path(value) == sanitize_url_path(other_value) {
                    errors.push(
                        format!("{p}.{name}"),
                        format!("{value:?} is already used by {other}"),
                    );
                }
            }
        }
        for (i, alg) in http.compression_algorithms.iter().flatten().enumerate() {
            if !matches!(alg.as_str(), "gzip" | "zstd" | "deflate" | "zlib") {
                errors.push(
                    format!("{p}.compression_algorithms[{i}]"),
                    format!("{alg:?} is not supported (gzip, zstd, deflate)"),
                );
            }
        }
        if let Some(cors) = &http.cors {
            for (i, h) in cors.exposed_headers.iter().enumerate() {
                if http::HeaderName::from_bytes(h.as_bytes()).is_err() {
                    errors.push(
                        format!("{p}.cors.exposed_headers[{i}]"),
                        format!("{h:?} is not a valid header name"),
                    );
                }
            }
        }
        if let Some(tls) = &http.tls {
            errors.0.extend(tls.validate(&format!("{p}.tls")).0);
        }
        check_auth(errors, p, http.auth.as_ref());
    }
}

fn check_auth(errors: &mut ConfigErrors, path: &str, auth: Option<&AuthSettings>) {
    if let Some(a) = auth {
        if let Err(e) = weir_api::ComponentId::parse(&a.authenticator) {
            errors.push(format!("{path}.auth.authenticator"), e);
        }
    }
}

/// The collector prefixes a URL path without a leading slash with one.
pub fn sanitize_url_path(p: &str) -> String {
    if p.starts_with('/') {
        p.to_string()
    } else {
        format!("/{p}")
    }
}

/// Checks `host:port` (host may be empty for all interfaces, or a bracketed IPv6 address).
/// `transport` and the `endpoint` it takes: `host:port` for tcp, a path for unix.
fn check_transport(transport: &str, endpoint: &str, p: &str, errors: &mut ConfigErrors) {
    match transport {
        "tcp" | "" => {
            if let Err(e) = check_endpoint(endpoint) {
                errors.push(format!("{p}.endpoint"), e);
            }
        }
        "unix" => {
            if endpoint.trim().is_empty() {
                errors.push(
                    format!("{p}.endpoint"),
                    "must be the socket's path with transport: unix",
                );
            }
        }
        other => errors.push(
            format!("{p}.transport"),
            format!("unsupported transport {other:?} (expected \"tcp\" or \"unix\")"),
        ),
    }
}

fn check_endpoint(endpoint: &str) -> Result<(), String> {
    let Some((host, port)) = endpoint.rsplit_once(':') else {
        return Err(format!("invalid address {endpoint:?}: expected host:port"));
    };
    if port.parse::<u16>().is_err() {
        return Err(format!(
            "invalid address {endpoint:?}: port {port:?} is not a number from 0 to 65535"
        ));
    }
    if host.contains(':') && !(host.starts_with('[') && host.ends_with(']')) {
        return Err(format!(
            "invalid address {endpoint:?}: an IPv6 host must be written in brackets"
        ));
    }
    if host.contains(['/', ' ']) {
        return Err(format!(
            "invalid address {endpoint:?}: invalid host {host:?}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: serde_json::Value) -> Result<OtlpReceiverSettings, Vec<String>> {
        super::parse(&yaml, "receivers.otlp")
            .map_err(|errors| errors.0.iter().map(|e| e.to_string()).collect())
    }

    #[test]
    fn empty_protocol_entries_enable_defaults() {
        let cfg = parse(serde_json::json!({"protocols": {"grpc": null, "http": null}})).unwrap();
        assert_eq!(cfg.protocols.grpc, Some(GrpcSettings::default()));
        let http = cfg.protocols.http.unwrap();
        assert_eq!(http.endpoint, "localhost:4318");
        assert_eq!(http.max_request_body_size, 20 * 1024 * 1024);
        assert_eq!(http.logs_url_path, "/v1/logs");
        assert_eq!(
            cfg.protocols.grpc.unwrap().max_recv_msg_size(),
            4 * 1024 * 1024
        );
    }

    #[test]
    fn no_protocol_is_an_error() {
        assert_eq!(
            parse(serde_json::Value::Null).unwrap_err(),
            vec!["receivers.otlp.protocols: must specify at least one protocol (grpc or http) when using the OTLP receiver"]
        );
    }

    #[test]
    fn every_problem_is_reported_with_its_path() {
        let errors = parse(serde_json::json!({"protocols": {
            "grpc": {"endpoint": "x:y", "tls": {"cert_file": "a", "key_file": ""}},
            "http": {"endpoint": "nohost", "logs_url_path": "/v1/traces", "auth": {"authenticator": "bearer-token/x"}}
        }}))
        .unwrap_err();
        assert_eq!(
            errors,
            vec![
                "receivers.otlp.protocols.grpc.endpoint: invalid address \"x:y\": port \"y\" is not a number from 0 to 65535",
                "receivers.otlp.protocols.grpc.tls.key_file: must not be empty",
                "receivers.otlp.protocols.http.endpoint: invalid address \"nohost\": expected host:port",
                "receivers.otlp.protocols.http.logs_url_path: \"/v1/traces\" is already used by traces_url_path",
                "receivers.otlp.protocols.http.auth.authenticator: invalid component id \"bearer-token/x\": the type may only hold letters, digits and '_'",
            ]
        );
    }

    #[test]
    fn unknown_fields_name_their_path() {
        let errors =
            parse(serde_json::json!({"protocols": {"http": {"endpoit": "a:1"}}})).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].starts_with("receivers.otlp.protocols.http.endpoit: unknown field `endpoit`, expected one of `endpoint`"),
            "{errors:?}"
        );
    }

    #[test]
    fn a_bad_field_in_one_protocol_does_not_hide_the_other_protocols_problems() {
        let errors = parse(serde_json::json!({"protocols": {
            "grpc": {"endpoint": "x:y", "tls": {"cert_file": "", "key_file": "k"}},
            "http": {"endpoit": 1}
        }}))
        .unwrap_err();
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(
            errors[0].starts_with("receivers.otlp.protocols.http.endpoit: unknown field"),
            "{errors:?}"
        );
        assert_eq!(
            errors[1],
            "receivers.otlp.protocols.grpc.endpoint: invalid address \"x:y\": port \"y\" is not a number from 0 to 65535"
        );
        assert_eq!(
            errors[2],
            "receivers.otlp.protocols.grpc.tls.cert_file: must not be empty"
        );
    }

    #[test]
    fn keepalive_and_cors_parse() {
        let cfg = parse(serde_json::json!({"protocols": {
            "grpc": {"keepalive": {"server_parameters": {"time": "30s", "timeout": "5s"}}},
            "http": {"cors": {"allowed_origins": ["https://*.example.com"], "max_age": 600}}
        }}))
        .unwrap();
        let sp = cfg
            .protocols
            .grpc
            .unwrap()
            .keepalive
            .unwrap()
            .server_parameters
            .unwrap();
        assert_eq!(sp.time, Some(Duration::from_secs(30)));
        let cors = cfg.protocols.http.unwrap().cors.unwrap();
        assert_eq!(cors.allowed_origins, vec!["https://*.example.com"]);
        assert_eq!(cors.max_age, Some(600));
    }

    #[test]
    fn settings_round_trip() {
        let cfg = parse(serde_json::json!({"max_in_flight_mib": 8, "protocols": {
            "grpc": {"include_metadata": true, "max_concurrent_streams": 16,
                     "keepalive": {"server_parameters": {"max_connection_age": "1m"}}},
            "http": {"read_timeout": "5s", "cors": {"allowed_origins": ["*"]}}
        }}))
        .unwrap();
        let grpc_only = parse(serde_json::json!({"protocols": {"grpc": null}})).unwrap();
        let value = serde_json::to_value(&grpc_only).unwrap();
        assert_eq!(parse(value).unwrap(), grpc_only);
        let value = serde_json::to_value(&cfg).unwrap();
        assert_eq!(parse(value).unwrap(), cfg);
    }

    #[test]
    fn ipv6_and_all_interfaces_endpoints_are_valid() {
        assert!(check_endpoint("[::1]:4317").is_ok());
        assert!(check_endpoint(":4317").is_ok());
        assert!(check_endpoint("::1:4317").is_err());
    }

    #[test]
    fn collector_tuning_fields_are_accepted() {
        let v = serde_json::json!({"protocols": {
            "grpc": {"read_buffer_size": 524288, "write_buffer_size": 0},
            "http": {"idle_timeout": "30s", "write_timeout": "10s",
                     "compression_algorithms": ["gzip", "zstd", "deflate"]}}});
        let cfg: OtlpReceiverSettings =
            weir_api::parse_component_config(&v, "receivers.otlp").unwrap();
        assert!(validate(&cfg, "receivers.otlp").is_empty());
        let v = serde_json::json!({"protocols": {"http": {"compression_algorithms": ["snappy"]}}});
        let cfg: OtlpReceiverSettings =
            weir_api::parse_component_config(&v, "receivers.otlp").unwrap();
        assert_eq!(
            validate(&cfg, "receivers.otlp").to_string(),
            "receivers.otlp.protocols.http.compression_algorithms[0]: \"snappy\" is not supported (gzip, zstd, deflate)"
        );
    }
}
