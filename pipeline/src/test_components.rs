//! Fake component factories for the engine's unit tests: they record what was built and
//! what passed through, so tests can assert sharing and ordering exactly.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::Value;
use weir_api::*;

/// What the fakes record.
#[derive(Default)]
pub struct Journal {
    /// Component builds, as `kind:id` (`receiver:otlp`, `processor:batch@logs`).
    pub builds: Mutex<Vec<String>>,
    /// Lifecycle events, as `start:id` / `stop:id`.
    pub events: Mutex<Vec<String>>,
    /// Items that reached each exporter, as (exporter id, item count).
    pub exported: Mutex<Vec<(String, usize)>>,
    /// Receivers as built, to push data through them.
    pub receivers: Mutex<Vec<(String, SignalConsumers)>>,
    /// Number of batches seen by processors.
    pub processed: AtomicUsize,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct FakeConfig {
    /// Default: 0.
    size: u32,
}

struct FakeFactory {
    signals: SignalSet,
    journal: Arc<Journal>,
}

struct Fake {
    journal: Arc<Journal>,
    id: String,
    next: Option<Arc<dyn Consumer>>,
}

#[async_trait]
impl Component for Fake {
    async fn start(&self) -> Result<(), StartError> {
        self.journal
            .events
            .lock()
            .unwrap()
            .push(format!("start:{}", self.id));
        Ok(())
    }
    async fn shutdown(&self) {
        self.journal
            .events
            .lock()
            .unwrap()
            .push(format!("stop:{}", self.id));
    }
}

#[async_trait]
impl Consumer for Fake {
    async fn consume(&self, batch: Batch) -> Result<(), ConsumeError> {
        match &self.next {
            Some(next) => {
                self.journal.processed.fetch_add(1, Ordering::SeqCst);
                next.consume(batch).await
            }
            None => {
                self.journal
                    .exported
                    .lock()
                    .unwrap()
                    .push((self.id.clone(), batch.item_count()));
                Ok(())
            }
        }
    }
}

struct FakeParsed(Arc<Journal>);

fn parse(v: &Value, path: &str, journal: &Arc<Journal>) -> Result<FakeParsed, ConfigErrors> {
    let _: FakeConfig = parse_component_config(v, path)?;
    Ok(FakeParsed(journal.clone()))
}

impl ReceiverFactory for FakeFactory {
    fn signals(&self) -> SignalSet {
        self.signals
    }
    fn parse(&self, c: &Value, p: &str) -> Result<Box<dyn ReceiverConfig>, ConfigErrors> {
        Ok(Box::new(parse(c, p, &self.journal)?))
    }
}
impl ProcessorFactory for FakeFactory {
    fn signals(&self) -> SignalSet {
        self.signals
    }
    fn parse(&self, c: &Value, p: &str) -> Result<Box<dyn ProcessorConfig>, ConfigErrors> {
        Ok(Box::new(parse(c, p, &self.journal)?))
    }
}
impl ExporterFactory for FakeFactory {
    fn signals(&self) -> SignalSet {
        self.signals
    }
    fn parse(&self, c: &Value, p: &str) -> Result<Box<dyn ExporterConfig>, ConfigErrors> {
        Ok(Box::new(parse(c, p, &self.journal)?))
    }
}
impl ExtensionFactory for FakeFactory {
    fn parse(&self, c: &Value, p: &str) -> Result<Box<dyn ExtensionConfig>, ConfigErrors> {
        Ok(Box::new(parse(c, p, &self.journal)?))
    }
}

impl ReceiverConfig for FakeParsed {
    fn build(
        &self,
        ctx: &BuildContext,
        consumers: SignalConsumers,
    ) -> Result<Arc<dyn Component>, BuildError> {
        self.0
            .builds
            .lock()
            .unwrap()
            .push(format!("receiver:{}", ctx.id));
        self.0
            .receivers
            .lock()
            .unwrap()
            .push((ctx.id.to_string(), consumers));
        Ok(Arc::new(Fake {
            journal: self.0.clone(),
            id: ctx.id.to_string(),
            next: None,
        }))
    }
}
impl ProcessorConfig for FakeParsed {
    fn build(
        &self,
        ctx: &BuildContext,
        _signal: Signal,
        next: Arc<dyn Consumer>,
    ) -> Result<Arc<dyn Stage>, BuildError> {
        let pipeline = ctx.pipeline.clone().unwrap_or_default();
        self.0
            .builds
            .lock()
            .unwrap()
            .push(format!("processor:{}@{pipeline}", ctx.id));
        Ok(Arc::new(Fake {
            journal: self.0.clone(),
            id: format!("{}@{pipeline}", ctx.id),
            next: Some(next),
        }))
    }
}
impl ExporterConfig for FakeParsed {
    fn build(&self, ctx: &BuildContext) -> Result<Arc<dyn Stage>, BuildError> {
        self.0
            .builds
            .lock()
            .unwrap()
            .push(format!("exporter:{}", ctx.id));
        Ok(Arc::new(Fake {
            journal: self.0.clone(),
            id: ctx.id.to_string(),
            next: None,
        }))
    }
}
impl ExtensionConfig for FakeParsed {
    fn build(&self, ctx: &BuildContext) -> Result<Arc<dyn Component>, BuildError> {
        self.0
            .builds
            .lock()
            .unwrap()
            .push(format!("extension:{}", ctx.id));
        Ok(Arc::new(Fake {
            journal: self.0.clone(),
            id: ctx.id.to_string(),
            next: None,
        }))
    }
}

/// A registry of fakes: receivers `otlp` (all signals) and `logsrcv` (logs only); processors
/// `batch` (all) and `logsonly` (logs); exporters `debug`, `nop`, `otlp_grpc` alias `otlp`
/// (all); extension `health_check`.
pub fn fake_registry() -> (Registry, Arc<Journal>) {
    let journal = Arc::new(Journal::default());
    let f = |signals| FakeFactory {
        signals,
        journal: journal.clone(),
    };
    let mut r = Registry::new();
    r.receiver("otlp", f(SignalSet::ALL));
    r.receiver("logsrcv", f(SignalSet::of(&[Signal::Logs])));
    r.processor("batch", f(SignalSet::ALL));
    r.processor("logsonly", f(SignalSet::of(&[Signal::Logs])));
    r.exporter(&["debug"], f(SignalSet::ALL));
    r.exporter(&["nop"], f(SignalSet::ALL));
    r.exporter(&["otlp_grpc", "otlp"], f(SignalSet::ALL));
    r.extension("health_check", f(SignalSet::NONE));
    (r, journal)
}
