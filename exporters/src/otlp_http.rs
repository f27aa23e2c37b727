//! `otlp_http` (alias `otlphttp`): sends batches to an OTLP/HTTP server.
//!
//! ```yaml
//! exporters:
//!   otlp_http:
//!     endpoint: http://collector:4318          # + /v1/traces, /v1/metrics, /v1/logs
//!     logs_endpoint: http://logs.example:8080/ingest   # used as it is
//!     encoding: proto                           # proto (default) | json
//!     headers:
//!       x-tenant: acme
//!     auth: { authenticator: bearertokenauth }  # a client authenticator extension
//!     compression: gzip                         # gzip (default) | zstd | none
//!     timeout: 30s
//!     retry_on_failure: { enabled: true, initial_interval: 5s }
//!     sending_queue: { enabled: true, queue_size: 1000 }
//!     # on disk instead: sending_queue: { storage: { directory: /var/lib/weir/queue/http } }
//! ```
//!
//! Retryable answers are those the OTLP specification names (429, 502, 503, 504), waiting at
//! least as long as their `Retry-After` asks; every other status is permanent.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use http::header::{HeaderMap, HeaderValue, CONTENT_ENCODING, CONTENT_TYPE};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use prost::Message;
use serde::Deserialize;
use weir_api::rpc_status;
use weir_api::{
    parse_component_config, Batch, BuildContext, BuildError, ConfigErrors, ExporterConfig,
    ExporterFactory, PerSignal, Signal, SignalSet, Stage,
};

use crate::delivery::{Delivered, Delivery, QueueSettings, RetrySettings, Sender};
use crate::otlp_settings::{
    header_map, http_endpoint_uri, unsendable_header_names, validate_headers, AuthSettings,
    Compression, TlsSettings,
};
use crate::{otlp_response, SendError};

fn default_timeout() -> Duration {
    Duration::from_secs(30)
}

/// Largest response body read from the upstream.
const MAX_RESPONSE_BYTES: usize = 4 << 20;

/// Body encoding of export requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// Binary protobuf, `application/x-protobuf` (the default).
    #[default]
    Proto,
    /// OTLP JSON, `application/json`.
    Json,
}

/// The `otlp_http` exporter's config (the collector's `otlphttp` exporter fields).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtlpHttpSettings {
    /// Base URL; `/v1/traces`, `/v1/metrics` and `/v1/logs` are appended. Required unless
    /// every signal sent has its own `*_endpoint`. Default none.
    #[serde(default)]
    pub endpoint: String,
    /// Full URL for traces, used as it is. Default: `endpoint` + `/v1/traces`.
    #[serde(default)]
    pub traces_endpoint: String,
    /// Full URL for metrics, used as it is. Default: `endpoint` + `/v1/metrics`.
    #[serde(default)]
    pub metrics_endpoint: String,
    /// Full URL for logs, used as it is. Default: `endpoint` + `/v1/logs`.
    #[serde(default)]
    pub logs_endpoint: String,
    /// `proto` or `json`. Default `proto`.
    #[serde(default)]
    pub encoding: Encoding,
    /// TLS client settings (weir-tls) for `https://` endpoints. Default: the system's roots,
    /// TLS 1.3.
    #[serde(default)]
    pub tls: TlsSettings,
    /// HTTP headers sent with every request. Default none.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// `gzip`, `zstd` or `none`. Default `gzip`.
    #[serde(default = "Compression::gzip")]
    pub compression: Compression,
    /// Time allowed for one attempt. Default `30s`.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Retries of retryable failures. Defaults: see [`RetrySettings`].
    #[serde(default)]
    pub retry_on_failure: RetrySettings,
    /// The sending queue. Defaults: see [`QueueSettings`].
    #[serde(default)]
    pub sending_queue: QueueSettings,
    /// How long an idle connection is kept for reuse. Default `90s`.
    #[serde(default = "default_idle_conn_timeout", with = "humantime_serde")]
    pub idle_conn_timeout: Duration,
    /// Idle connections kept in total; Weir talks to one host per URL, so this bounds the
    /// idle connections per host too. Default `100`.
    #[serde(default = "default_max_idle_conns")]
    pub max_idle_conns: usize,
    /// Idle connections kept per host. Default: `max_idle_conns`.
    #[serde(default)]
    pub max_idle_conns_per_host: Option<usize>,
    /// Open a new connection for every request. Default `false`.
    #[serde(default)]
    pub disable_keep_alives: bool,
    /// The profiles signal's URL: accepted for collector configs; Weir has no profiles
    /// pipelines, so nothing is sent to it. Default: absent.
    #[serde(default)]
    pub profiles_endpoint: Option<String>,
    /// The collector's HTTP read buffer size in bytes; accepted, no effect. Default: absent.
    #[serde(default)]
    pub read_buffer_size: Option<u64>,
    /// The collector's HTTP write buffer size in bytes; accepted, no effect. Default: absent.
    #[serde(default)]
    pub write_buffer_size: Option<u64>,
    /// The authenticator extension that adds credentials to every request. Default: none.
    #[serde(default)]
    pub auth: Option<AuthSettings>,
}

fn default_idle_conn_timeout() -> Duration {
    Duration::from_secs(90)
}

fn default_max_idle_conns() -> usize {
    100
}

/// Factory of the `otlp_http` exporter.
pub struct OtlpHttpFactory;

/// A validated `otlp_http` config.
#[derive(Debug, Clone)]
pub struct OtlpHttpConfig {
    settings: OtlpHttpSettings,
    /// Target URL per signal (logs, traces, metrics), when one is configured.
    urls: PerSignal<Option<http::Uri>>,
    headers: HeaderMap,
    path: String,
}

impl ExporterFactory for OtlpHttpFactory {
    fn signals(&self) -> SignalSet {
        SignalSet::ALL
    }

    fn parse(
        &self,
        config: &serde_json::Value,
        path: &str,
    ) -> Result<Box<dyn ExporterConfig>, ConfigErrors> {
        let s: OtlpHttpSettings = parse_component_config(config, path)?;
        let mut errors = ConfigErrors::default();
        if s.endpoint.is_empty()
            && s.traces_endpoint.is_empty()
            && s.metrics_endpoint.is_empty()
            && s.logs_endpoint.is_empty()
        {
            errors.push(
                format!("{path}.endpoint"),
                "is required unless traces_endpoint, metrics_endpoint or logs_endpoint is set",
            );
        }
        let base_ok = !s.endpoint.is_empty()
            && http_endpoint_uri(&s.endpoint, &format!("{path}.endpoint"), &mut errors).is_some();
        let mut urls: PerSignal<Option<http::Uri>> = PerSignal::default();
        for (signal, own) in [
            (Signal::Logs, &s.logs_endpoint),
            (Signal::Traces, &s.traces_endpoint),
            (Signal::Metrics, &s.metrics_endpoint),
        ] {
            urls[signal] = if !own.is_empty() {
                http_endpoint_uri(own, &format!("{path}.{signal}_endpoint"), &mut errors)
            } else if base_ok {
                // The base is valid, so appending a path keeps it valid.
                signal_url(&s.endpoint, own, signal)
                    .and_then(|url| http_endpoint_uri(&url, path, &mut ConfigErrors::default()))
            } else {
                None
            };
        }
        errors.0.extend(s.tls.validate(&format!("{path}.tls")).0);
        validate_headers(&s.headers, &format!("{path}.headers"), &mut errors);
        if s.timeout.is_zero() {
            errors.push(format!("{path}.timeout"), "must be greater than 0");
        }
        s.retry_on_failure
            .validate(&format!("{path}.retry_on_failure"), &mut errors);
        s.sending_queue
            .validate(&format!("{path}.sending_queue"), &mut errors);
        let headers = header_map(&s.headers);
        AuthSettings::validate(&s.auth, path, &mut errors);
        errors.into_result(())?;
        Ok(Box::new(OtlpHttpConfig {
            settings: s,
            urls,
            headers,
            path: path.to_string(),
        }))
    }
}

impl ExporterConfig for OtlpHttpConfig {
    fn authenticator_refs(&self) -> Vec<(String, String)> {
        AuthSettings::refs(&self.settings.auth, &self.path)
    }

    fn build(&self, ctx: &BuildContext) -> Result<Arc<dyn Stage>, BuildError> {
        let auth = AuthSettings::resolve(&self.settings.auth, ctx)?;
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(self.settings.timeout));
        let idle_per_host = if self.settings.disable_keep_alives {
            0
        } else {
            self.settings
                .max_idle_conns_per_host
                .unwrap_or(self.settings.max_idle_conns)
                .min(self.settings.max_idle_conns)
        };
        let uses_tls = self
            .urls
            .iter()
            .filter_map(|(_, url)| url.as_ref())
            .any(|u| u.scheme_str() == Some("https"));
        let tls = if uses_tls {
            self.settings
                .tls
                .load(&format!("exporters.{}.tls", ctx.id), |p| {
                    ctx.resolve_path(p)
                })
                .map_err(|e| BuildError::caused_by(&ctx.id, e))?
        } else {
            weir_tls::ClientTls::plaintext()
        };
        for name in unsendable_header_names(&self.settings.headers, false) {
            tracing::warn!(
                exporter = %ctx.id,
                header = %name,
                "headers.{name:?} is not a valid HTTP header name; it is not sent"
            );
        }
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(self.settings.idle_conn_timeout)
            .pool_max_idle_per_host(idle_per_host)
            .build(tls.https_connector_with(connector, weir_tls::HttpVersions::Http1And2));
        let sender = HttpSender {
            client,
            urls: self.urls.clone(),
            headers: self.headers.clone(),
            auth,
            encoding: self.settings.encoding,
            compression: self.settings.compression,
            timeout: self.settings.timeout,
        };
        let delivery: Arc<dyn Stage> = Arc::new(Delivery::new(
            &ctx.id,
            Arc::new(sender),
            self.settings.retry_on_failure.clone(),
            self.settings.sending_queue.clone(),
            &ctx.telemetry,
        ));
        crate::delivery::with_queue_batch(ctx, &self.settings.sending_queue, delivery)
    }
}

/// The URL a signal is sent to: its own `*_endpoint` as it is, else the base `endpoint`
/// with `/v1/<signal>` appended (as the collector does).
fn signal_url(endpoint: &str, own: &str, signal: Signal) -> Option<String> {
    if !own.is_empty() {
        Some(own.to_string())
    } else if endpoint.is_empty() {
        None
    } else if endpoint.ends_with('/') {
        Some(format!("{endpoint}v1/{signal}"))
    } else {
        Some(format!("{endpoint}/v1/{signal}"))
    }
}

/// One POST per attempt.
struct HttpSender {
    client: Client<weir_tls::hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
    urls: PerSignal<Option<http::Uri>>,
    headers: HeaderMap,
    /// Adds credentials to every request (`auth.authenticator`).
    auth: Option<Arc<dyn weir_api::ClientAuthenticator>>,
    encoding: Encoding,
    compression: Compression,
    timeout: Duration,
}

impl HttpSender {
    fn body(&self, batch: &Batch, url: &str) -> Result<Bytes, SendError> {
        let raw = match self.encoding {
            Encoding::Proto => batch.to_protobuf(),
            Encoding::Json => Bytes::from(weir_api::json::encode(batch.payload())),
        };
        compress(self.compression, raw).map_err(|e| SendError::Request {
            endpoint: url.to_string(),
            reason: format!(
                "{} compression failed",
                self.compression.token().unwrap_or("")
            ),
            source: Some(Box::new(e)),
        })
    }
}

/// Compresses a request body.
pub fn compress(compression: Compression, body: Bytes) -> std::io::Result<Bytes> {
    match compression {
        Compression::None => Ok(body),
        Compression::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(
                Vec::with_capacity(body.len() / 4),
                flate2::Compression::fast(),
            );
            enc.write_all(&body)?;
            Ok(Bytes::from(enc.finish()?))
        }
        Compression::Zstd => Ok(Bytes::from(zstd::bulk::compress(&body, 3)?)),
    }
}

fn no_url_reason(signal: Signal) -> String {
    format!("no URL for {signal}: set endpoint or {signal}_endpoint")
}

#[async_trait]
impl Sender for HttpSender {
    fn cannot_send(&self, signal: Signal) -> Option<String> {
        self.urls[signal].is_none().then(|| no_url_reason(signal))
    }

    async fn send(&self, batch: &Batch) -> Result<Delivered, SendError> {
        let signal = batch.signal();
        let Some(uri) = &self.urls[signal] else {
            return Err(SendError::Request {
                endpoint: String::new(),
                reason: no_url_reason(signal),
                source: None,
            });
        };
        let url = uri.to_string();
        let body = self.body(batch, &url)?;
        let mut request = http::Request::post(uri.clone())
            .body(Full::new(body))
            .map_err(|e| SendError::Request {
                endpoint: url.clone(),
                reason: "invalid request".into(),
                source: Some(Box::new(e)),
            })?;
        let h = request.headers_mut();
        h.extend(self.headers.clone());
        if let Some(auth) = &self.auth {
            let credentials = auth.headers().map_err(|e| SendError::Request {
                endpoint: url.clone(),
                reason: format!("auth: {e}"),
                source: None,
            })?;
            for (name, value) in credentials {
                h.insert(name, value);
            }
        }
        let content_type = match self.encoding {
            Encoding::Proto => "application/x-protobuf",
            Encoding::Json => "application/json",
        };
        h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        if let Some(token) = self.compression.token() {
            h.insert(CONTENT_ENCODING, HeaderValue::from_static(token));
        }
        h.entry(http::header::USER_AGENT)
            .or_insert(HeaderValue::from_static(concat!(
                "weir/",
                env!("CARGO_PKG_VERSION")
            )));
        let attempt = async {
            let response =
                self.client
                    .request(request)
                    .await
                    .map_err(|e| SendError::Transport {
                        endpoint: url.clone(),
                        source: Box::new(e),
                    })?;
            let (parts, body) = response.into_parts();
            // An answer is a small status or partial success; cap what a broken upstream
            // could make Weir hold.
            let body = Limited::new(body, MAX_RESPONSE_BYTES)
                .collect()
                .await
                .map_err(|e| SendError::Transport {
                    endpoint: url.clone(),
                    source: e,
                })?;
            Ok::<_, SendError>((parts, body.to_bytes()))
        };
        let (parts, body) = tokio::time::timeout(self.timeout, attempt)
            .await
            .map_err(|_| SendError::Timeout {
                endpoint: url.clone(),
                timeout: self.timeout,
            })??;
        let is_json = parts
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("json"));
        if parts.status.is_success() {
            return Ok(if is_json {
                otlp_response::from_json(signal, &body)
            } else {
                otlp_response::from_protobuf(signal, &body)
            });
        }
        Err(SendError::HttpStatus {
            url,
            status: parts.status.as_u16(),
            message: error_message(&body, is_json),
            retry_after: parts
                .headers
                .get(http::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, SystemTime::now())),
        })
    }
}

/// The message of an error body: a `google.rpc.Status` (protobuf or JSON), else the text.
fn error_message(body: &[u8], is_json: bool) -> String {
    if is_json {
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
            if let Some(m) = v["message"].as_str() {
                return m.to_string();
            }
        }
    } else if let Ok(status) = rpc_status::RpcStatus::decode(body) {
        if !status.message.is_empty() {
            return status.message;
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    match text.char_indices().nth(200) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_string(),
    }
}

/// `Retry-After` as delay-seconds or an HTTP date (RFC 9110 10.2.3).
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: serde_json::Value) -> Result<Box<dyn ExporterConfig>, ConfigErrors> {
        OtlpHttpFactory.parse(&json, "exporters.otlphttp")
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(
            parse_retry_after(&later, now),
            Some(Duration::from_secs(30))
        );
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(parse_retry_after(&earlier, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn error_bodies() {
        let status = rpc_status::RpcStatus {
            code: 3,
            message: "field x invalid".into(),
            details: vec![],
        };
        assert_eq!(
            error_message(&status.encode_to_vec(), false),
            "field x invalid"
        );
        assert_eq!(
            error_message(br#"{"code":3,"message":"bad json"}"#, true),
            "bad json"
        );
        assert_eq!(error_message(b"  plain failure\n", false), "plain failure");
    }

    #[test]
    fn signal_urls_follow_the_collector() {
        assert_eq!(
            signal_url("http://h:4318", "", Signal::Traces).unwrap(),
            "http://h:4318/v1/traces"
        );
        assert_eq!(
            signal_url("http://h:4318/base/", "", Signal::Logs).unwrap(),
            "http://h:4318/base/v1/logs"
        );
        assert_eq!(
            signal_url("http://h:4318", "http://m:9/in", Signal::Metrics).unwrap(),
            "http://m:9/in"
        );
        assert_eq!(signal_url("", "", Signal::Metrics), None);
    }

    #[test]
    fn every_problem_is_reported_with_its_path() {
        let err = parse(serde_json::json!({
            "endpoint": "ftp://h:4318",
            "logs_endpoint": "h:4318/logs",
            "headers": {"x-ok": "fine", "bad\nname": "v"},
            "timeout": "0s",
            "retry_on_failure": {"multiplier": 0.1},
        }))
        .err()
        .unwrap();
        let text = err.to_string();
        for want in [
            "exporters.otlphttp.endpoint: \"ftp://h:4318\" must start with https:// or http://",
            "exporters.otlphttp.logs_endpoint: \"h:4318/logs\" must start with https:// or http://",
            "exporters.otlphttp.timeout: must be greater than 0",
            "exporters.otlphttp.retry_on_failure.multiplier: must be at least 1, got 0.1",
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
        assert_eq!(err.0.len(), 4, "{text}");
        let err = parse(serde_json::json!({"encoding": "xml", "endpoint": "http://h"}))
            .err()
            .unwrap();
        assert!(
            err.to_string().starts_with(
                "exporters.otlphttp.encoding: unknown variant `xml`, expected `proto` or `json`"
            ),
            "{err}"
        );
        let ok = parse(serde_json::json!({
            "endpoint": "http://h:4318",
            "idle_conn_timeout": "30s",
            "max_idle_conns": 10,
            "max_idle_conns_per_host": 2,
            "disable_keep_alives": true,
        }));
        assert!(ok.is_ok(), "{:?}", ok.err());
        let err = parse(serde_json::json!({"endpoint": "http://h:4318", "proxy_url": "http://p"}))
            .err()
            .unwrap();
        assert!(
            err.to_string()
                .starts_with("exporters.otlphttp.proxy_url: unknown field `proxy_url`"),
            "{err}"
        );
        let err = parse(serde_json::json!({})).err().unwrap();
        assert_eq!(
            err.to_string(),
            "exporters.otlphttp.endpoint: is required unless traces_endpoint, metrics_endpoint or logs_endpoint is set"
        );
    }

    #[test]
    fn compression_round_trips() {
        use std::io::Read;
        let body = Bytes::from(vec![b'x'; 1000]);
        let gz = compress(Compression::Gzip, body.clone()).unwrap();
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, body);
        let zs = compress(Compression::Zstd, body.clone()).unwrap();
        assert_eq!(zstd::decode_all(&zs[..]).unwrap(), body);
        assert_eq!(compress(Compression::None, body.clone()).unwrap(), body);
    }
}
