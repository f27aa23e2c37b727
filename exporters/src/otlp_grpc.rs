//! `otlp_grpc` (alias `otlp`): sends batches to an OTLP/gRPC server.
//!
//! ```yaml
//! exporters:
//!   otlp:
//!     endpoint: collector:4317       # TLS; http://collector:4317 or insecure: true for plain text
//!     tls:
//!       ca_file: /etc/weir/ca.pem    # default: the system's roots (see weir-tls for every field)
//!     headers:
//!       x-tenant: acme
//!     auth:
//!       authenticator: bearertokenauth/upstream  # a client authenticator extension
//!     compression: gzip              # gzip (default) | zstd | none
//!     timeout: 5s
//!     retry_on_failure:
//!       enabled: true
//!       initial_interval: 5s
//!       max_interval: 30s
//!       max_elapsed_time: 300s
//!     sending_queue:
//!       enabled: true
//!       num_consumers: 10
//!       queue_size: 1000
//!       # Optional: keep the queue on disk so a crash or restart loses nothing
//!       # (see the `delivery` module for every field).
//!       storage: { directory: /var/lib/weir/queue/otlp, fsync: batch, max_size_mib: 1024 }
//! ```
//!
//! A batch that arrived as protobuf and was not changed is sent as the very bytes it arrived
//! as ([`Batch::to_protobuf`]), through a codec that moves bytes without encoding.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use tonic::codec::CompressionEncoding;
use tonic::metadata::{AsciiMetadataValue, MetadataKey, MetadataMap};
use tonic::transport::{Channel, Endpoint};
use weir_api::grpc_raw::{export_path, RawBytesCodec};
use weir_api::rpc_status;
use weir_api::{
    parse_component_config, Batch, BuildContext, BuildError, ConfigErrors, ExporterConfig,
    ExporterFactory, SignalSet, Stage,
};

use crate::delivery::{Delivered, Delivery, QueueSettings, RetrySettings, Sender};
use crate::otlp_settings::{
    grpc_endpoint_url, unsendable_header_names, AuthSettings, Compression, TlsSettings,
};
use crate::{otlp_response, SendError};

fn default_timeout() -> Duration {
    Duration::from_secs(5)
}

/// The `otlp_grpc` exporter's config (the collector's `otlp` exporter fields).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtlpGrpcSettings {
    /// `host:port` or `https://host:port` (TLS), `http://host:port` or `host:port` with
    /// `tls.insecure: true` (plain text). Required.
    #[serde(default)]
    pub endpoint: String,
    /// TLS client settings (weir-tls). Default: TLS on, the system's roots, TLS 1.3.
    #[serde(default)]
    pub tls: TlsSettings,
    /// gRPC metadata sent with every request. Default none.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// `gzip`, `zstd` or `none`. Default `gzip`.
    #[serde(default = "Compression::gzip")]
    pub compression: Compression,
    /// Time allowed for one attempt. Default `5s`.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Retries of retryable failures. Defaults: see [`RetrySettings`].
    #[serde(default)]
    pub retry_on_failure: RetrySettings,
    /// The sending queue. Defaults: see [`QueueSettings`].
    #[serde(default)]
    pub sending_queue: QueueSettings,
    /// HTTP/2 keepalive pings. Default none (no pings).
    #[serde(default)]
    pub keepalive: Option<KeepaliveSettings>,
    /// Overrides the `:authority` of requests (virtual hosting). Default: the endpoint's.
    #[serde(default)]
    pub authority: Option<String>,
    /// Accepted for collector configs. Weir always waits up to `timeout` for the
    /// connection, which is what `true` asks for. Default `false`.
    #[serde(default)]
    pub wait_for_ready: bool,
    /// `pick_first` or `round_robin`, accepted for collector configs. Weir keeps one HTTP/2
    /// connection per exporter to the endpoint's first address. Default `round_robin`.
    #[serde(default)]
    pub balancer_name: Option<String>,
    /// The collector's gRPC read buffer size in bytes; accepted for collector configs,
    /// no effect (Weir's HTTP/2 client sizes its own buffers). Default: absent.
    #[serde(default)]
    pub read_buffer_size: Option<u64>,
    /// The collector's gRPC write buffer size in bytes; accepted, no effect. Default: absent.
    #[serde(default)]
    pub write_buffer_size: Option<u64>,
    /// The authenticator extension that adds credentials to every call. Default: none.
    #[serde(default)]
    pub auth: Option<AuthSettings>,
}

/// The `keepalive` section (the collector's names).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeepaliveSettings {
    /// Idle time after which a ping is sent. Default none.
    #[serde(default, with = "humantime_serde")]
    pub time: Option<Duration>,
    /// Wait for the ping's answer before the connection is closed. Default none (20s in
    /// the HTTP/2 stack).
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
    /// Ping even when no call is in flight. Default `false`.
    #[serde(default)]
    pub permit_without_stream: bool,
}

/// Factory of the `otlp_grpc` exporter.
pub struct OtlpGrpcFactory;

/// A validated `otlp_grpc` config.
#[derive(Debug, Clone)]
pub struct OtlpGrpcConfig {
    settings: OtlpGrpcSettings,
    url: String,
    metadata: MetadataMap,
    path: String,
}

impl ExporterFactory for OtlpGrpcFactory {
    fn signals(&self) -> SignalSet {
        SignalSet::ALL
    }

    fn parse(
        &self,
        config: &serde_json::Value,
        path: &str,
    ) -> Result<Box<dyn ExporterConfig>, ConfigErrors> {
        let settings: OtlpGrpcSettings = parse_component_config(config, path)?;
        let mut errors = ConfigErrors::default();
        let endpoint_path = format!("{path}.endpoint");
        let url = if settings.endpoint.is_empty() {
            errors.push(
                &endpoint_path,
                "is required (host:port or http://host:port)",
            );
            None
        } else {
            grpc_endpoint_url(
                &settings.endpoint,
                &settings.tls,
                &endpoint_path,
                &mut errors,
            )
        };
        errors
            .0
            .extend(settings.tls.validate(&format!("{path}.tls")).0);
        let metadata =
            metadata_from_headers(&settings.headers, &format!("{path}.headers"), &mut errors);
        if settings.timeout.is_zero() {
            errors.push(format!("{path}.timeout"), "must be greater than 0");
        }
        if let Some(name) = settings.balancer_name.as_deref() {
            if !matches!(name, "" | "pick_first" | "round_robin") {
                errors.push(
                    format!("{path}.balancer_name"),
                    format!("unknown balancer {name:?}; expected pick_first or round_robin"),
                );
            }
        }
        if let Some(authority) = settings.authority.as_deref() {
            if http::uri::Authority::try_from(authority).is_err() {
                errors.push(
                    format!("{path}.authority"),
                    format!("{authority:?} is not a valid authority"),
                );
            }
        }
        settings
            .retry_on_failure
            .validate(&format!("{path}.retry_on_failure"), &mut errors);
        settings
            .sending_queue
            .validate(&format!("{path}.sending_queue"), &mut errors);
        AuthSettings::validate(&settings.auth, path, &mut errors);
        errors.into_result(())?;
        Ok(Box::new(OtlpGrpcConfig {
            url: url.unwrap_or_default(),
            settings,
            metadata,
            path: path.to_string(),
        }))
    }
}

fn metadata_from_headers(
    headers: &BTreeMap<String, String>,
    path: &str,
    errors: &mut ConfigErrors,
) -> MetadataMap {
    let mut map = MetadataMap::new();
    for (name, value) in headers {
        // gRPC metadata keys are lower case on the wire.
        // A name no gRPC peer can receive is left out with a warning when the exporter is
        // built (see `unsendable_header_names`), so the config still loads as in the
        // collector.
        let Ok(key) = MetadataKey::from_bytes(name.to_ascii_lowercase().as_bytes()) else {
            continue;
        };
        match AsciiMetadataValue::try_from(value.as_str()) {
            Ok(v) => {
                map.insert(key, v);
            }
            Err(_) => errors.push(
                format!("{path}.{name}"),
                "value must be printable ASCII for gRPC metadata",
            ),
        }
    }
    map
}

impl ExporterConfig for OtlpGrpcConfig {
    fn authenticator_refs(&self) -> Vec<(String, String)> {
        AuthSettings::refs(&self.settings.auth, &self.path)
    }

    fn build(&self, ctx: &BuildContext) -> Result<Arc<dyn Stage>, BuildError> {
        let auth = AuthSettings::resolve(&self.settings.auth, ctx)?;
        if auth.is_some() && !self.url.starts_with("https://") {
            tracing::warn!(
                exporter = %ctx.id,
                "auth.authenticator sends credentials over a plain-text connection (the collector's gRPC client refuses this; use TLS)"
            );
        }
        for name in unsendable_header_names(&self.settings.headers, true) {
            tracing::warn!(
                exporter = %ctx.id,
                header = %name,
                "headers.{name:?} is not a valid gRPC metadata key; it is not sent"
            );
        }
        let endpoint = Endpoint::from_shared(self.url.clone())
            .map_err(|e| BuildError::other(&ctx.id, format!("invalid endpoint {:?}", self.url), e))?
            .connect_timeout(self.settings.timeout)
            .tcp_nodelay(true)
            .user_agent(concat!("weir/", env!("CARGO_PKG_VERSION")))
            .map_err(|e| BuildError::other(&ctx.id, "invalid user agent", e))?;
        let endpoint = match &self.settings.keepalive {
            Some(k) => {
                let mut e = endpoint.keep_alive_while_idle(k.permit_without_stream);
                if let Some(time) = k.time {
                    e = e.http2_keep_alive_interval(time);
                }
                if let Some(timeout) = k.timeout {
                    e = e.keep_alive_timeout(timeout);
                }
                e
            }
            None => endpoint,
        };
        let endpoint = match self.settings.authority.as_deref() {
            Some(authority) => {
                let origin = format!("http://{authority}")
                    .parse::<http::Uri>()
                    .map_err(|e| {
                        BuildError::other(&ctx.id, format!("invalid authority {authority:?}"), e)
                    })?;
                endpoint.origin(origin)
            }
            None => endpoint,
        };
        let tls = if self.url.starts_with("https://") {
            self.settings
                .tls
                .load(&format!("exporters.{}.tls", ctx.id), |p| {
                    ctx.resolve_path(p)
                })
                .map_err(|e| BuildError::caused_by(&ctx.id, e))?
        } else {
            weir_tls::ClientTls::plaintext()
        };
        let sender = GrpcSender {
            url: self.url.clone(),
            endpoint,
            tls,
            channel: OnceLock::new(),
            compression: match self.settings.compression {
                Compression::Gzip => Some(CompressionEncoding::Gzip),
                Compression::Zstd => Some(CompressionEncoding::Zstd),
                Compression::None => None,
            },
            metadata: self.metadata.clone(),
            auth,
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

/// One export call per attempt over a shared channel.
struct GrpcSender {
    url: String,
    endpoint: Endpoint,
    /// TLS for `https://` endpoints (plain text otherwise).
    tls: weir_tls::ClientTls,
    /// Made on first use: a channel spawns its worker on the running Tokio runtime.
    channel: OnceLock<Channel>,
    compression: Option<CompressionEncoding>,
    metadata: MetadataMap,
    /// Adds credentials to every call (`auth.authenticator`).
    auth: Option<Arc<dyn weir_api::ClientAuthenticator>>,
    timeout: Duration,
}

impl GrpcSender {
    fn status_error(&self, status: tonic::Status) -> SendError {
        let retry_after = if status.details().is_empty() {
            None
        } else {
            rpc_status::retry_delay(status.details())
        };
        SendError::GrpcStatus {
            endpoint: self.url.clone(),
            code: status.code(),
            message: status.message().to_string(),
            retry_after,
            status,
        }
    }
}

#[async_trait]
impl Sender for GrpcSender {
    async fn send(&self, batch: &Batch) -> Result<Delivered, SendError> {
        let signal = batch.signal();
        let channel = self
            .channel
            .get_or_init(|| self.tls.grpc_channel(self.endpoint.clone()))
            .clone();
        let mut grpc = tonic::client::Grpc::new(channel)
            .accept_compressed(CompressionEncoding::Gzip)
            .accept_compressed(CompressionEncoding::Zstd);
        if let Some(c) = self.compression {
            grpc = grpc.send_compressed(c);
        }
        let mut request = tonic::Request::new(batch.to_protobuf());
        *request.metadata_mut() = self.metadata.clone();
        if let Some(auth) = &self.auth {
            let headers = auth.headers().map_err(|e| SendError::Request {
                endpoint: self.url.clone(),
                reason: format!("auth: {e}"),
                source: None,
            })?;
            let mut map = request.metadata().clone().into_headers();
            for (name, value) in headers {
                map.insert(name, value);
            }
            *request.metadata_mut() = MetadataMap::from_headers(map);
        }
        request.set_timeout(self.timeout);
        let attempt = async {
            grpc.ready().await.map_err(|e| SendError::Transport {
                endpoint: self.url.clone(),
                source: Box::new(e),
            })?;
            let path = http::uri::PathAndQuery::from_static(export_path(signal));
            grpc.unary(request, path, RawBytesCodec)
                .await
                .map_err(|status| self.status_error(status))
        };
        let response = tokio::time::timeout(self.timeout, attempt)
            .await
            .map_err(|_| SendError::Timeout {
                endpoint: self.url.clone(),
                timeout: self.timeout,
            })??;
        Ok(otlp_response::from_protobuf(signal, response.get_ref()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: serde_json::Value) -> Result<Box<dyn ExporterConfig>, ConfigErrors> {
        OtlpGrpcFactory.parse(&json, "exporters.otlp")
    }

    #[test]
    fn defaults_are_the_collectors() {
        let s: OtlpGrpcSettings =
            parse_component_config(&serde_json::json!({"endpoint": "http://h:4317"}), "p").unwrap();
        assert_eq!(s.compression, Compression::Gzip);
        assert_eq!(s.timeout, Duration::from_secs(5));
        assert_eq!(s.retry_on_failure, RetrySettings::default());
        assert_eq!(s.sending_queue, QueueSettings::default());
        assert_eq!(s.keepalive, None);
        let config = parse(serde_json::json!({
            "endpoint": "http://h:4317",
            "keepalive": {"time": "10s", "timeout": "5s", "permit_without_stream": true},
            "wait_for_ready": true,
            "balancer_name": "round_robin",
            "authority": "otel.example:443",
        }));
        assert!(config.is_ok(), "{:?}", config.err());
        let err =
            parse(serde_json::json!({"endpoint": "http://h:4317", "balancer_name": "random"}))
                .err()
                .unwrap();
        assert_eq!(
            err.to_string(),
            "exporters.otlp.balancer_name: unknown balancer \"random\"; expected pick_first or round_robin"
        );
        assert!(
            parse(serde_json::json!({"endpoint": "h:4317", "tls": {"insecure": true}})).is_ok()
        );
    }

    #[test]
    fn every_problem_is_reported_with_its_path() {
        let err = parse(serde_json::json!({
            "endpoint": "h:4317",
            "tls": {"cert_file": "/c.pem"},
            "headers": {"bad key": "v"},
            "timeout": "0s",
            "sending_queue": {"queue_size": 0},
        }))
        .err()
        .unwrap();
        let text = err.to_string();
        // A header name no peer can receive loads (as in the collector) and is left out.
        assert_eq!(err.0.len(), 3, "{text}");
        let headers = BTreeMap::from([("bad key".to_string(), "v".to_string())]);
        assert_eq!(unsendable_header_names(&headers, true), ["bad key"]);
        for want in [
            "exporters.otlp.tls.key_file: must be set when cert_file is set",
            "exporters.otlp.timeout: must be greater than 0",
            "exporters.otlp.sending_queue.queue_size: must be at least 1",
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
        let err = parse(serde_json::json!({})).err().unwrap();
        assert_eq!(
            err.to_string(),
            "exporters.otlp.endpoint: is required (host:port or http://host:port)"
        );
        let err = parse(serde_json::json!({"endpoint": "http://h:1", "compression": "snappy"}))
            .err()
            .unwrap();
        assert!(
            err.to_string()
                .starts_with("exporters.otlp.compression: unsupported compression \"snappy\""),
            "{err}"
        );
    }
}
