//! The receiver's config: the Collector's `protocols` (`grpc`, `thrift_http`,
//! `thrift_compact`, `thrift_binary`) with their defaults, and the factory that validates
//! them.

use std::sync::{Arc, Mutex};

use serde::Deserialize;
use tokio_util::sync::CancellationToken;
use weir_api::{
    parse_component_config, BuildContext, BuildError, Component, ConfigErrors, ReceiverConfig,
    ReceiverFactory, Signal, SignalConsumers, SignalSet,
};

use super::{Addresses, JaegerReceiver, MAX_IN_FLIGHT_BYTES};
use crate::otlp::config::present_or_default;
use crate::otlp::ingest::{ByteBudget, Ingest, Transport};

/// `protocols.grpc`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GrpcSettings {
    /// Default `localhost:14250`.
    pub endpoint: String,
    /// Largest message in MiB. Default 4.
    pub max_recv_msg_size_mib: u64,
    /// TLS server settings. Default none.
    pub tls: Option<weir_tls::TlsServerSettings>,
}

impl Default for GrpcSettings {
    fn default() -> Self {
        GrpcSettings {
            endpoint: "localhost:14250".into(),
            max_recv_msg_size_mib: 4,
            tls: None,
        }
    }
}

/// `protocols.thrift_http`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThriftHttpSettings {
    /// Default `localhost:14268`.
    pub endpoint: String,
    /// Largest body (also after decompression). Default 20 MiB.
    pub max_request_body_size: usize,
    /// Pass the request headers along with the batch. Default false.
    pub include_metadata: bool,
    /// TLS server settings. Default none.
    pub tls: Option<weir_tls::TlsServerSettings>,
}

impl Default for ThriftHttpSettings {
    fn default() -> Self {
        ThriftHttpSettings {
            endpoint: "localhost:14268".into(),
            max_request_body_size: 20 * 1024 * 1024,
            include_metadata: false,
            tls: None,
        }
    }
}

/// `protocols.thrift_compact` / `protocols.thrift_binary`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UdpSettings {
    /// Default `localhost:6831` (compact) / `localhost:6832` (binary).
    pub endpoint: Option<String>,
    /// Packets waiting for a worker; a packet arriving at a full queue is dropped. Default 1000.
    pub queue_size: usize,
    /// Largest packet read (longer ones are cut and fail to decode). Default 65000.
    pub max_packet_size: usize,
    /// Packets decoded and delivered at once. Default 10.
    pub workers: usize,
    /// `SO_RCVBUF` in bytes; 0 keeps the system's. Default 0.
    pub socket_buffer_size: usize,
}

impl Default for UdpSettings {
    fn default() -> Self {
        UdpSettings {
            endpoint: None,
            queue_size: 1000,
            max_packet_size: 65000,
            workers: 10,
            socket_buffer_size: 0,
        }
    }
}

/// Default `thrift_compact` endpoint.
pub const DEFAULT_COMPACT_ENDPOINT: &str = "localhost:6831";

/// Default `thrift_binary` endpoint.
pub const DEFAULT_BINARY_ENDPOINT: &str = "localhost:6832";

/// `receivers.jaeger.protocols`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Protocols {
    /// gRPC. Default off.
    #[serde(deserialize_with = "present_or_default")]
    pub grpc: Option<GrpcSettings>,
    /// Thrift over HTTP. Default off.
    #[serde(deserialize_with = "present_or_default")]
    pub thrift_http: Option<ThriftHttpSettings>,
    /// Agent UDP, Thrift compact. Default off.
    #[serde(deserialize_with = "present_or_default")]
    pub thrift_compact: Option<UdpSettings>,
    /// Agent UDP, Thrift binary. Default off.
    #[serde(deserialize_with = "present_or_default")]
    pub thrift_binary: Option<UdpSettings>,
}

/// The `jaeger` receiver's config.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JaegerReceiverSettings {
    /// The protocols served.
    #[serde(default)]
    pub protocols: Protocols,
}

/// The factory of the `jaeger` receiver type.
#[derive(Debug, Default, Clone, Copy)]
pub struct JaegerReceiverFactory;

impl JaegerReceiverFactory {
    /// Parses and validates the config at YAML `path`, keeping its concrete type.
    pub fn parse_config(
        &self,
        config: &serde_json::Value,
        path: &str,
    ) -> Result<JaegerReceiverConfig, ConfigErrors> {
        let settings: JaegerReceiverSettings = parse_component_config(config, path)?;
        let mut errors = ConfigErrors::default();
        let p = &settings.protocols;
        let pp = format!("{path}.protocols");
        if p.grpc.is_none()
            && p.thrift_http.is_none()
            && p.thrift_compact.is_none()
            && p.thrift_binary.is_none()
        {
            errors.push(
                pp.clone(),
                "must specify at least one protocol (grpc, thrift_http, thrift_compact, thrift_binary)",
            );
        }
        if let Some(g) = &p.grpc {
            if g.endpoint.trim().is_empty() {
                errors.push(format!("{pp}.grpc.endpoint"), "must not be empty");
            }
            if g.max_recv_msg_size_mib == 0 {
                errors.push(
                    format!("{pp}.grpc.max_recv_msg_size_mib"),
                    "must be greater than 0",
                );
            }
            if let Some(tls) = &g.tls {
                errors.0.extend(tls.validate(&format!("{pp}.grpc.tls")).0);
            }
        }
        if let Some(h) = &p.thrift_http {
            if h.endpoint.trim().is_empty() {
                errors.push(format!("{pp}.thrift_http.endpoint"), "must not be empty");
            }
            if h.max_request_body_size == 0 {
                errors.push(
                    format!("{pp}.thrift_http.max_request_body_size"),
                    "must be greater than 0",
                );
            }
            if let Some(tls) = &h.tls {
                errors
                    .0
                    .extend(tls.validate(&format!("{pp}.thrift_http.tls")).0);
            }
        }
        for (name, u) in [
            ("thrift_compact", p.thrift_compact.as_ref()),
            ("thrift_binary", p.thrift_binary.as_ref()),
        ] {
            let Some(u) = u else { continue };
            if u.endpoint.as_deref().is_some_and(|e| e.trim().is_empty()) {
                errors.push(format!("{pp}.{name}.endpoint"), "must not be empty");
            }
            for (field, v) in [
                ("queue_size", u.queue_size),
                ("max_packet_size", u.max_packet_size),
                ("workers", u.workers),
            ] {
                if v == 0 {
                    errors.push(format!("{pp}.{name}.{field}"), "must be greater than 0");
                }
            }
            if u.max_packet_size > 65535 {
                errors.push(
                    format!("{pp}.{name}.max_packet_size"),
                    "must be at most 65535 (a UDP datagram)",
                );
            }
        }
        errors.into_result(JaegerReceiverConfig { settings })
    }
}

impl ReceiverFactory for JaegerReceiverFactory {
    fn signals(&self) -> SignalSet {
        SignalSet::of(&[Signal::Traces])
    }

    fn parse(
        &self,
        config: &serde_json::Value,
        path: &str,
    ) -> Result<Box<dyn ReceiverConfig>, ConfigErrors> {
        Ok(Box::new(self.parse_config(config, path)?))
    }
}

/// A validated `jaeger` receiver config.
#[derive(Debug, Clone)]
pub struct JaegerReceiverConfig {
    settings: JaegerReceiverSettings,
}

impl JaegerReceiverConfig {
    /// Builds the receiver with its concrete type.
    pub fn build_receiver(
        &self,
        ctx: &BuildContext,
        consumers: SignalConsumers,
    ) -> Arc<JaegerReceiver> {
        let in_flight = ctx.telemetry.gauge(
            "weir_receiver_in_flight_bytes",
            "Request bytes (as received and decompressed) a receiver holds now, against its max_in_flight_mib",
            &[("receiver", ctx.id.to_string())],
        );
        let budget = ByteBudget::new(MAX_IN_FLIGHT_BYTES, in_flight);
        let ingest = Ingest::with_transports(
            &ctx.id,
            consumers,
            budget,
            &ctx.telemetry,
            &[Transport::Grpc, Transport::Http, Transport::Udp],
        );
        Arc::new(JaegerReceiver {
            id: ctx.id.clone(),
            base_dir: ctx.base_dir.clone(),
            settings: self.settings.clone(),
            ingest: Arc::new(ingest),
            shutdown: CancellationToken::new(),
            tasks: Mutex::new(Vec::new()),
            addresses: Addresses::default(),
        })
    }
}

impl ReceiverConfig for JaegerReceiverConfig {
    fn build(
        &self,
        ctx: &BuildContext,
        consumers: SignalConsumers,
    ) -> Result<Arc<dyn Component>, BuildError> {
        Ok(self.build_receiver(ctx, consumers))
    }
}
