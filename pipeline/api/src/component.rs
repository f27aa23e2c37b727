//! Factories, parsed configs and running components.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use async_trait::async_trait;

use crate::{ComponentId, ConfigErrors, Consumer, Signal, SignalSet, Telemetry};

/// Why a component could not be built from a valid config.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The component does not handle this signal.
    #[error("{id}: does not support the {signal} signal")]
    UnsupportedSignal {
        /// The component.
        id: ComponentId,
        /// The signal it was asked for.
        signal: Signal,
    },
    /// Anything else, with its cause.
    #[error("{id}: {message}")]
    Other {
        /// The component.
        id: ComponentId,
        /// What went wrong.
        message: String,
        /// The underlying error, if any.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

impl BuildError {
    /// The catch-all error with a message and no underlying cause.
    pub fn message(id: &ComponentId, message: impl Into<String>) -> Self {
        BuildError::Other {
            id: id.clone(),
            message: message.into(),
            source: None,
        }
    }

    /// The catch-all error whose message is its cause's.
    pub fn caused_by(
        id: &ComponentId,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        BuildError::Other {
            id: id.clone(),
            message: source.to_string(),
            source: Some(Box::new(source)),
        }
    }

    /// The catch-all error: `id` could not be built because of `source`.
    pub fn other(
        id: &ComponentId,
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        BuildError::Other {
            id: id.clone(),
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }
}

/// Why a component could not start (a port in use, a file not readable).
#[derive(Debug, thiserror::Error)]
#[error("{id}: {message}")]
pub struct StartError {
    /// The component.
    pub id: ComponentId,
    /// What went wrong.
    pub message: String,
    /// The underlying error, if any.
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl StartError {
    /// A start error with a cause.
    pub fn new(
        id: &ComponentId,
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        StartError {
            id: id.clone(),
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }
}

/// What a component gets from the engine when it is built.
#[derive(Clone)]
pub struct BuildContext {
    /// The component's id as written in the config.
    pub id: ComponentId,
    /// The pipeline (`logs`, `traces/edge`) a processor is built for; `None` for receivers,
    /// exporters and extensions, which are shared.
    pub pipeline: Option<String>,
    /// The process's metric registry.
    pub telemetry: Telemetry,
    /// Whether the whole service is up (all components started, not shutting down); the
    /// health check reports it.
    pub ready: Arc<AtomicBool>,
    /// Directory that relative paths in the config are taken from (the first config file's
    /// directory, or the working directory).
    pub base_dir: PathBuf,
    /// The server authenticators the service's extensions offer (receivers' `auth`).
    pub authenticators: crate::Authenticators,
    /// State the components of this service build share, by type and name (one map per
    /// build, never process-wide): e.g. the `metadata` processors' summariser handles, which
    /// the `catalog` exporter takes from.
    pub shared: crate::Shared,
}

impl BuildContext {
    /// A context for tests and tools: a fresh registry, working directory as base.
    pub fn for_component(id: ComponentId) -> Self {
        BuildContext {
            id,
            pipeline: None,
            telemetry: Telemetry::new(),
            ready: Arc::new(AtomicBool::new(true)),
            base_dir: PathBuf::from("."),
            authenticators: crate::Authenticators::default(),
            shared: crate::Shared::new(),
        }
    }

    /// Resolves a path from the config against [`BuildContext::base_dir`].
    pub fn resolve_path(&self, p: &str) -> PathBuf {
        let path = PathBuf::from(p);
        if path.is_absolute() {
            path
        } else {
            // `./policies` under `.` is `policies`, not `././policies`.
            let rel: PathBuf = path
                .components()
                .filter(|c| !matches!(c, std::path::Component::CurDir))
                .collect();
            let joined = self.base_dir.join(rel);
            match joined.strip_prefix(".") {
                Ok(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => joined,
            }
        }
    }
}

/// Lifecycle of a running component.
#[async_trait]
pub trait Component: Send + Sync {
    /// Binds sockets, spawns tasks. Called once, exporters first, receivers last.
    async fn start(&self) -> Result<(), StartError> {
        Ok(())
    }
    /// Stops taking work and finishes what it holds (flush, drain) before returning.
    /// Called once, receivers first, exporters last; the engine bounds it by the shutdown
    /// deadline.
    async fn shutdown(&self) {}
    /// The server authenticator this component (an extension) offers to receivers that
    /// name it in `auth.authenticator`; `None` for everything else.
    fn server_authenticator(&self) -> Option<Arc<dyn crate::ServerAuthenticator>> {
        None
    }
    /// The client authenticator this component (an extension) offers to exporters that
    /// name it in `auth.authenticator`; `None` for everything else.
    fn client_authenticator(&self) -> Option<Arc<dyn crate::ClientAuthenticator>> {
        None
    }
}

/// A processor stage or an exporter: takes batches and has a lifecycle.
pub trait Stage: Consumer + Component {}
impl<T: Consumer + Component> Stage for T {}

/// Where a receiver hands each signal's batches (absent: no pipeline of that signal uses it).
#[derive(Clone, Default)]
pub struct SignalConsumers {
    /// Consumer of log batches.
    pub logs: Option<Arc<dyn Consumer>>,
    /// Consumer of trace batches.
    pub traces: Option<Arc<dyn Consumer>>,
    /// Consumer of metric batches.
    pub metrics: Option<Arc<dyn Consumer>>,
}

impl SignalConsumers {
    /// The consumer for `signal`, if any pipeline takes it.
    pub fn get(&self, signal: Signal) -> Option<&Arc<dyn Consumer>> {
        match signal {
            Signal::Logs => self.logs.as_ref(),
            Signal::Traces => self.traces.as_ref(),
            Signal::Metrics => self.metrics.as_ref(),
        }
    }
}

/// Parses a receiver's config section.
pub trait ReceiverFactory: Send + Sync {
    /// Signals this receiver type can produce.
    fn signals(&self) -> SignalSet;
    /// Parses and validates `config` (found at YAML `path`), reporting every problem.
    fn parse(
        &self,
        config: &serde_json::Value,
        path: &str,
    ) -> Result<Box<dyn ReceiverConfig>, ConfigErrors>;
}

/// A validated receiver config.
pub trait ReceiverConfig: Send + Sync {
    /// Builds the receiver; it starts serving on [`Component::start`].
    fn build(
        &self,
        ctx: &BuildContext,
        consumers: SignalConsumers,
    ) -> Result<Arc<dyn Component>, BuildError>;
    /// The extensions this receiver names in `auth.authenticator`, as `(YAML path of the
    /// field, extension id as written)`; the config check makes sure each is configured and
    /// listed in `service.extensions`.
    fn authenticator_refs(&self) -> Vec<(String, String)> {
        Vec::new()
    }
}

/// Parses a processor's config section.
pub trait ProcessorFactory: Send + Sync {
    /// Signals this processor type handles.
    fn signals(&self) -> SignalSet;
    /// Parses and validates `config` (found at YAML `path`), reporting every problem.
    fn parse(
        &self,
        config: &serde_json::Value,
        path: &str,
    ) -> Result<Box<dyn ProcessorConfig>, ConfigErrors>;
}

/// A validated processor config. Built once per pipeline that lists it.
pub trait ProcessorConfig: Send + Sync {
    /// Builds the stage for one pipeline of `signal`, in front of `next`. Synchronous
    /// processors return a [`crate::ProcessorStage`] around their [`crate::Processor`].
    fn build(
        &self,
        ctx: &BuildContext,
        signal: Signal,
        next: Arc<dyn Consumer>,
    ) -> Result<Arc<dyn Stage>, BuildError>;
    /// Problems the config has only in a pipeline of `signal` (the `attributes`
    /// processor's span-only match fields in a logs pipeline), as `(YAML path, message)`;
    /// the config check reports them for every pipeline the processor is in.
    fn signal_problems(&self, _signal: Signal) -> Vec<(String, String)> {
        Vec::new()
    }
}

/// Parses an exporter's config section.
pub trait ExporterFactory: Send + Sync {
    /// Signals this exporter type can send.
    fn signals(&self) -> SignalSet;
    /// Parses and validates `config` (found at YAML `path`), reporting every problem.
    fn parse(
        &self,
        config: &serde_json::Value,
        path: &str,
    ) -> Result<Box<dyn ExporterConfig>, ConfigErrors>;
}

/// A validated exporter config. Built once, shared by every pipeline that lists it.
pub trait ExporterConfig: Send + Sync {
    /// Builds the exporter; `consume` takes batches of any signal it supports.
    fn build(&self, ctx: &BuildContext) -> Result<Arc<dyn Stage>, BuildError>;
    /// The extensions this exporter names in `auth.authenticator`, as `(YAML path of the
    /// field, extension id as written)`; the config check makes sure each is configured,
    /// listed in `service.extensions` and a client authenticator.
    fn authenticator_refs(&self) -> Vec<(String, String)> {
        Vec::new()
    }
}

/// Parses an extension's config section.
pub trait ExtensionFactory: Send + Sync {
    /// Parses and validates `config` (found at YAML `path`), reporting every problem.
    fn parse(
        &self,
        config: &serde_json::Value,
        path: &str,
    ) -> Result<Box<dyn ExtensionConfig>, ConfigErrors>;
}

/// A validated extension config.
pub trait ExtensionConfig: Send + Sync {
    /// Builds the extension; it starts on [`Component::start`] before any pipeline.
    fn build(&self, ctx: &BuildContext) -> Result<Arc<dyn Component>, BuildError>;
    /// Whether the built extension offers a server authenticator
    /// ([`Component::server_authenticator`]), so receivers may name it in
    /// `auth.authenticator`.
    fn offers_server_authenticator(&self) -> bool {
        false
    }
    /// Whether the built extension offers a client authenticator
    /// ([`Component::client_authenticator`]), so exporters may name it in
    /// `auth.authenticator`.
    fn offers_client_authenticator(&self) -> bool {
        false
    }
}

/// Parses a connector's config section. A connector is an exporter of one pipeline and a
/// receiver of another (`connectors:` in the config).
pub trait ConnectorFactory: Send + Sync {
    /// The (exporter pipeline signal, receiver pipeline signal) pairs this type joins.
    fn pairs(&self) -> Vec<(Signal, Signal)>;
    /// Parses and validates `config` (found at YAML `path`), reporting every problem.
    fn parse(
        &self,
        config: &serde_json::Value,
        path: &str,
    ) -> Result<Box<dyn ConnectorConfig>, ConfigErrors>;
}

/// A validated connector config. One instance is built per (exporter signal, receiver
/// signal) pair the service uses, shared by every pipeline that exports to it.
pub trait ConnectorConfig: Send + Sync {
    /// Pipeline ids the config names itself (a routing table), each with the YAML path where
    /// it is written; the engine checks that each is a pipeline this connector feeds.
    fn named_pipelines(&self) -> Vec<(String, String)> {
        Vec::new()
    }
    /// Builds the instance that takes `from` batches and hands `to` batches to `outputs`:
    /// the pipelines of signal `to` that list the connector as a receiver, by pipeline id.
    fn build(
        &self,
        ctx: &BuildContext,
        from: Signal,
        to: Signal,
        outputs: Vec<(String, Arc<dyn Consumer>)>,
    ) -> Result<Arc<dyn Stage>, BuildError>;
}
