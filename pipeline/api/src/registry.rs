//! The list of component types compiled into the binary.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::{
    ConnectorFactory, ExporterFactory, ExtensionFactory, ProcessorFactory, ReceiverFactory,
};

/// Component factories by type name. Each component crate exposes
/// `register(&mut Registry)`; the binary calls them in one visible list.
#[derive(Default, Clone)]
pub struct Registry {
    /// Receiver types.
    pub receivers: BTreeMap<String, Arc<dyn ReceiverFactory>>,
    /// Processor types.
    pub processors: BTreeMap<String, Arc<dyn ProcessorFactory>>,
    /// Exporter types (an alias is a second name for the same factory).
    pub exporters: BTreeMap<String, Arc<dyn ExporterFactory>>,
    /// Extension types.
    pub extensions: BTreeMap<String, Arc<dyn ExtensionFactory>>,
    /// Connector types.
    pub connectors: BTreeMap<String, Arc<dyn ConnectorFactory>>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }
    /// Adds a receiver type.
    pub fn receiver(&mut self, name: &str, f: impl ReceiverFactory + 'static) {
        self.receivers.insert(name.to_string(), Arc::new(f));
    }
    /// Adds a processor type.
    pub fn processor(&mut self, name: &str, f: impl ProcessorFactory + 'static) {
        self.processors.insert(name.to_string(), Arc::new(f));
    }
    /// Adds an exporter type under one or more names (`otlp_grpc`, `otlp`).
    pub fn exporter(&mut self, names: &[&str], f: impl ExporterFactory + 'static) {
        let f: Arc<dyn ExporterFactory> = Arc::new(f);
        for n in names {
            self.exporters.insert(n.to_string(), f.clone());
        }
    }
    /// Adds a connector type.
    pub fn connector(&mut self, name: &str, f: impl ConnectorFactory + 'static) {
        self.connectors.insert(name.to_string(), Arc::new(f));
    }
    /// Adds an extension type.
    pub fn extension(&mut self, name: &str, f: impl ExtensionFactory + 'static) {
        self.extensions.insert(name.to_string(), Arc::new(f));
    }
}
