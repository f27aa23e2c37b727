//! Builds the running components from a validated config.
//!
//! A receiver or exporter used by several pipelines is one shared instance; processors are
//! built once per pipeline that lists them. A receiver feeding several pipelines of one
//! signal hands each batch to a [`FanOut`] over them; a pipeline with several exporters ends
//! in a [`FanOut`] over those.
//!
//! A connector is an exporter of some pipelines and a receiver of others. Pipelines are
//! built downstream first, so that a connector instance is built with the entries of the
//! pipelines it feeds; one instance per (connector, exporter signal, receiver signal) is
//! shared by every pipeline that exports to it, as in the collector.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use async_trait::async_trait;
use weir_api::{
    Batch, BuildContext, BuildError, Component, ComponentId, ConsumeError, Consumer, Counter,
    FanOut, Signal, SignalConsumers, Stage, StartError, Telemetry,
};

use crate::config::{connector_targets, PipelineSpec, ValidatedConfig};

/// One pipeline's processor stages, first to last.
pub struct BuiltPipeline {
    /// The pipeline id (`logs/edge`).
    pub id: String,
    /// Its processors in config order.
    pub processors: Vec<(ComponentId, Arc<dyn Stage>)>,
    /// Connector instances first built for this pipeline's exporters list (each instance
    /// appears under one pipeline only).
    pub connectors: Vec<(ComponentId, Arc<dyn Stage>)>,
}

/// Every running component of a service, in the groups the lifecycle needs.
pub struct ServiceGraph {
    /// Extensions listed in `service.extensions`, in order.
    pub extensions: Vec<(ComponentId, Arc<dyn Component>)>,
    /// Exporters used by at least one pipeline (each once).
    pub exporters: Vec<(ComponentId, Arc<dyn Stage>)>,
    /// Pipelines with their processor stages, downstream pipelines (those a connector
    /// feeds) before the pipelines that feed them.
    pub pipelines: Vec<BuiltPipeline>,
    /// Receivers used by at least one pipeline (each once).
    pub receivers: Vec<(ComponentId, Arc<dyn Component>)>,
}

/// The engine-wide things every component's [`BuildContext`] carries.
#[derive(Clone)]
pub struct Environment {
    /// The process's metrics.
    pub telemetry: Telemetry,
    /// True while the service is up.
    pub ready: Arc<AtomicBool>,
    /// Where relative paths start.
    pub base_dir: PathBuf,
    /// What the components of a build share ([`weir_api::Shared`]); [`build`] gives each
    /// build a fresh one.
    pub shared: weir_api::Shared,
}

impl Environment {
    pub(crate) fn context(&self, id: &ComponentId, pipeline: Option<&str>) -> BuildContext {
        BuildContext {
            id: id.clone(),
            pipeline: pipeline.map(str::to_string),
            telemetry: self.telemetry.clone(),
            ready: self.ready.clone(),
            base_dir: self.base_dir.clone(),
            authenticators: weir_api::Authenticators::default(),
            shared: self.shared.clone(),
        }
    }
}

/// The entry of a pipeline: counts what enters and what downstream refused.
struct PipelineEntry {
    next: Arc<dyn Consumer>,
    received: Counter,
    refused: Counter,
}

#[async_trait]
impl Consumer for PipelineEntry {
    async fn consume(&self, batch: Batch) -> Result<(), ConsumeError> {
        let items = batch.item_count() as u64;
        self.received.inc_by(items);
        let result = self.next.consume(batch).await;
        if result.is_err() {
            self.refused.inc_by(items);
        }
        result
    }
}

/// Counts the items that pass on to `next`.
struct ItemCount {
    next: Arc<dyn Consumer>,
    items: Counter,
}

#[async_trait]
impl Consumer for ItemCount {
    async fn consume(&self, batch: Batch) -> Result<(), ConsumeError> {
        self.items.inc_by(batch.item_count() as u64);
        self.next.consume(batch).await
    }
}

/// A processor stage that counts the items it is given.
struct Incoming {
    stage: Arc<dyn Stage>,
    items: Counter,
}

#[async_trait]
impl Consumer for Incoming {
    async fn consume(&self, batch: Batch) -> Result<(), ConsumeError> {
        self.items.inc_by(batch.item_count() as u64);
        self.stage.consume(batch).await
    }
}

#[async_trait]
impl Component for Incoming {
    async fn start(&self) -> Result<(), StartError> {
        self.stage.start().await
    }
    async fn shutdown(&self) {
        self.stage.shutdown().await
    }
    fn server_authenticator(&self) -> Option<Arc<dyn weir_api::ServerAuthenticator>> {
        self.stage.server_authenticator()
    }
    fn client_authenticator(&self) -> Option<Arc<dyn weir_api::ClientAuthenticator>> {
        self.stage.client_authenticator()
    }
}

/// Builds every used component. Build errors of all components are collected.
pub fn build(cfg: &ValidatedConfig, env: &Environment) -> Result<ServiceGraph, Vec<BuildError>> {
    // The state this build's components share is this build's alone.
    let env = &Environment {
        shared: weir_api::Shared::new(),
        ..env.clone()
    };
    let mut errors = Vec::new();

    let mut extensions = Vec::new();
    for id in &cfg.service_extensions {
        if let Some(c) = cfg.extensions.get(id) {
            match c.build(&env.context(id, None)) {
                Ok(ext) => extensions.push((id.clone(), ext)),
                Err(e) => errors.push(e),
            }
        }
    }

    // What the extensions offer to receivers' `auth.authenticator`.
    let authenticators = weir_api::Authenticators::new(
        extensions
            .iter()
            .map(|(id, ext)| (id.clone(), ext.server_authenticator()))
            .collect(),
    )
    .with_clients(
        extensions
            .iter()
            .map(|(id, ext)| (id.clone(), ext.client_authenticator()))
            .collect(),
    );

    let mut exporters: BTreeMap<ComponentId, Arc<dyn Stage>> = BTreeMap::new();
    for pipeline in &cfg.pipelines {
        for id in &pipeline.exporters {
            if exporters.contains_key(id) || cfg.connectors.contains_key(id) {
                continue;
            }
            if let Some(c) = cfg.exporters.get(id) {
                let mut ctx = env.context(id, None);
                ctx.authenticators = authenticators.clone();
                match c.build(&ctx) {
                    Ok(exp) => {
                        exporters.insert(id.clone(), exp);
                    }
                    Err(e) => errors.push(e),
                }
            }
        }
    }

    // Pipelines are built from their end: exporters, then processors last to first; and
    // pipelines a connector feeds before the pipelines that feed it.
    let order = build_order(cfg);
    let mut pipelines = Vec::new();
    let mut heads: Vec<(Signal, &[ComponentId], Arc<dyn Consumer>)> = Vec::new();
    let mut entries: BTreeMap<&str, Arc<dyn Consumer>> = BTreeMap::new();
    let mut connector_instances: BTreeMap<(ComponentId, Signal, Signal), Arc<dyn Stage>> =
        BTreeMap::new();
    for pipeline in order {
        let mut outputs: Vec<Arc<dyn Consumer>> = Vec::new();
        let mut complete = true;
        let mut own_connectors = Vec::new();
        for id in &pipeline.exporters {
            if let Some(e) = exporters.get(id) {
                outputs.push(e.clone() as Arc<dyn Consumer>);
                continue;
            }
            let Some(c) = cfg.connectors.get(id) else {
                complete = false; // an exporter failed to build; its error is recorded
                continue;
            };
            let targets = connector_targets(&cfg.pipelines, id, &c.pairs, pipeline.signal);
            for to in Signal::ALL {
                let group: Vec<&PipelineSpec> =
                    targets.iter().copied().filter(|q| q.signal == to).collect();
                if group.is_empty() {
                    continue;
                }
                let key = (id.clone(), pipeline.signal, to);
                if let Some(instance) = connector_instances.get(&key) {
                    outputs.push(instance.clone() as Arc<dyn Consumer>);
                    continue;
                }
                let mut feeds = Vec::new();
                for q in group {
                    match entries.get(q.id.as_str()) {
                        Some(head) => feeds.push((q.id.clone(), head.clone())),
                        None => complete = false, // that pipeline failed to build
                    }
                }
                if !complete {
                    continue;
                }
                match c
                    .config
                    .build(&env.context(id, None), pipeline.signal, to, feeds)
                {
                    Ok(instance) => {
                        connector_instances.insert(key, instance.clone());
                        own_connectors.push((id.clone(), instance.clone()));
                        outputs.push(instance as Arc<dyn Consumer>);
                    }
                    Err(e) => {
                        errors.push(e);
                        complete = false;
                    }
                }
            }
        }
        if !complete || outputs.is_empty() {
            continue;
        }
        let mut next = FanOut::of(outputs);
        let mut stages = Vec::new();
        for id in pipeline.processors.iter().rev() {
            let Some(c) = cfg.processors.get(id) else {
                continue;
            };
            let labels = [
                ("processor", id.to_string()),
                ("pipeline", pipeline.id.clone()),
                ("signal", pipeline.signal.as_str().to_string()),
            ];
            // What the processor hands on (the Collector's otelcol_processor_outgoing_items).
            let outgoing: Arc<dyn Consumer> = Arc::new(ItemCount {
                next: next.clone(),
                items: env.telemetry.counter(
                    "weir_processor_outgoing_items",
                    "Items (log records, spans, metric points) a processor handed to the next stage",
                    &labels,
                ),
            });
            match c.build(
                &env.context(id, Some(&pipeline.id)),
                pipeline.signal,
                outgoing,
            ) {
                Ok(stage) => {
                    let stage: Arc<dyn Stage> = Arc::new(Incoming {
                        stage,
                        items: env.telemetry.counter(
                            "weir_processor_incoming_items",
                            "Items (log records, spans, metric points) passed to a processor",
                            &labels,
                        ),
                    });
                    next = stage.clone();
                    stages.push((id.clone(), stage));
                }
                Err(e) => errors.push(e),
            }
        }
        stages.reverse();
        let labels = [("pipeline", pipeline.id.clone())];
        let entry: Arc<dyn Consumer> = Arc::new(PipelineEntry {
            next,
            received: env.telemetry.counter(
                "weir_pipeline_received_items",
                "Items (log records, spans, metric points) that entered the pipeline",
                &labels,
            ),
            refused: env.telemetry.counter(
                "weir_pipeline_refused_items",
                "Items the pipeline did not accept (the receiver told the sender to retry or rejected)",
                &labels,
            ),
        });
        entries.insert(pipeline.id.as_str(), entry.clone());
        heads.push((pipeline.signal, &pipeline.receivers, entry));
        pipelines.push(BuiltPipeline {
            id: pipeline.id.clone(),
            processors: stages,
            connectors: own_connectors,
        });
    }

    let mut receiver_ids: Vec<&ComponentId> = Vec::new();
    for pipeline in &cfg.pipelines {
        for id in &pipeline.receivers {
            if !receiver_ids.contains(&id) && !cfg.connectors.contains_key(id) {
                receiver_ids.push(id);
            }
        }
    }
    let mut receivers = Vec::new();
    for id in receiver_ids {
        let for_signal = |signal: Signal| -> Option<Arc<dyn Consumer>> {
            let list: Vec<Arc<dyn Consumer>> = heads
                .iter()
                .filter(|(s, rs, _)| *s == signal && rs.contains(id))
                .map(|(_, _, head)| head.clone())
                .collect();
            (!list.is_empty()).then(|| FanOut::of(list))
        };
        let consumers = SignalConsumers {
            logs: for_signal(Signal::Logs),
            traces: for_signal(Signal::Traces),
            metrics: for_signal(Signal::Metrics),
        };
        if let Some(c) = cfg.receivers.get(id) {
            let mut ctx = env.context(id, None);
            ctx.authenticators = authenticators.clone();
            match c.build(&ctx, consumers) {
                Ok(r) => receivers.push((id.clone(), r)),
                Err(e) => errors.push(e),
            }
        }
    }

    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(ServiceGraph {
        extensions,
        exporters: exporters.into_iter().collect(),
        pipelines,
        receivers,
    })
}

/// The pipelines in build order: every pipeline after all the pipelines its connectors
/// feed (validation has rejected cycles), otherwise in id order.
fn build_order(cfg: &ValidatedConfig) -> Vec<&PipelineSpec> {
    fn visit<'a>(
        p: &'a PipelineSpec,
        cfg: &'a ValidatedConfig,
        seen: &mut Vec<&'a str>,
        out: &mut Vec<&'a PipelineSpec>,
    ) {
        if seen.contains(&p.id.as_str()) {
            return;
        }
        seen.push(&p.id);
        for id in &p.exporters {
            if let Some(c) = cfg.connectors.get(id) {
                for q in connector_targets(&cfg.pipelines, id, &c.pairs, p.signal) {
                    visit(q, cfg, seen, out);
                }
            }
        }
        out.push(p);
    }
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for p in &cfg.pipelines {
        visit(p, cfg, &mut seen, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse_document, validate};
    use crate::test_components::fake_registry;
    use weir_api::otlp::collector::logs::v1::ExportLogsServiceRequest;
    use weir_api::otlp::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use weir_api::Payload;

    fn logs(n: usize) -> Batch {
        Batch::new(Payload::Logs(ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs {
                    log_records: vec![LogRecord::default(); n],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }))
    }

    const TWO_PIPELINES: &str = "
receivers: {otlp: {}, logsrcv: {}}
processors: {batch: {}}
exporters: {debug: {}, otlp/up: {}, nop: {}}
service:
  pipelines:
    logs/a: {receivers: [otlp], processors: [batch], exporters: [debug, otlp/up]}
    logs/b: {receivers: [otlp, logsrcv], processors: [batch], exporters: [otlp/up]}
    traces: {receivers: [otlp], exporters: [debug]}
";

    #[tokio::test]
    async fn shared_receivers_and_exporters_per_pipeline_processors() {
        let (registry, journal) = fake_registry();
        let cfg = validate(&parse_document(TWO_PIPELINES).unwrap(), &registry).unwrap();
        let env = Environment {
            telemetry: Telemetry::new(),
            ready: Arc::new(AtomicBool::new(false)),
            base_dir: ".".into(),
            shared: weir_api::Shared::new(),
        };
        let graph = build(&cfg, &env).unwrap();
        let mut builds = journal.builds.lock().unwrap().clone();
        builds.sort();
        assert_eq!(
            builds,
            vec![
                "exporter:debug",
                "exporter:otlp/up",
                "processor:batch@logs/a",
                "processor:batch@logs/b",
                "receiver:logsrcv",
                "receiver:otlp",
            ]
        );
        assert_eq!(graph.receivers.len(), 2);
        assert_eq!(graph.exporters.len(), 2);

        // One batch into the shared otlp receiver reaches both logs pipelines: debug once
        // (logs/a) and otlp/up twice (logs/a and logs/b).
        let consumers = journal
            .receivers
            .lock()
            .unwrap()
            .iter()
            .find(|(id, _)| id == "otlp")
            .unwrap()
            .1
            .clone();
        assert!(consumers.metrics.is_none());
        consumers.logs.unwrap().consume(logs(3)).await.unwrap();
        let mut exported = journal.exported.lock().unwrap().clone();
        exported.sort();
        assert_eq!(
            exported,
            vec![
                ("debug".to_string(), 3),
                ("otlp/up".to_string(), 3),
                ("otlp/up".to_string(), 3)
            ]
        );
        assert_eq!(
            journal.processed.load(std::sync::atomic::Ordering::SeqCst),
            2
        );

        // logsrcv feeds only logs/b.
        let consumers = journal
            .receivers
            .lock()
            .unwrap()
            .iter()
            .find(|(id, _)| id == "logsrcv")
            .unwrap()
            .1
            .clone();
        consumers.logs.unwrap().consume(logs(2)).await.unwrap();
        assert_eq!(journal.exported.lock().unwrap().len(), 4);
        let text = env.telemetry.encode();
        assert!(
            text.contains("weir_pipeline_received_items_total{pipeline=\"logs/b\"} 5"),
            "{text}"
        );
        assert!(
            text.contains("weir_pipeline_received_items_total{pipeline=\"logs/a\"} 3"),
            "{text}"
        );
    }

    const CONNECTED: &str = "
receivers: {otlp: {}}
processors: {batch: {}}
exporters: {debug: {}, otlp/up: {}}
connectors: {forward: {}, count: {}}
service:
  pipelines:
    logs/in: {receivers: [otlp], exporters: [forward, count, debug]}
    logs/out: {receivers: [forward], processors: [batch], exporters: [otlp/up]}
    metrics/counts: {receivers: [count], exporters: [debug]}
    traces: {receivers: [otlp], exporters: [count]}
";

    #[tokio::test]
    async fn connectors_feed_downstream_pipelines_built_first() {
        let (mut registry, journal) = fake_registry();
        weir_connectors::register(&mut registry);
        let cfg = validate(&parse_document(CONNECTED).unwrap(), &registry).unwrap();
        let env = Environment {
            telemetry: Telemetry::new(),
            ready: Arc::new(AtomicBool::new(false)),
            base_dir: ".".into(),
            shared: weir_api::Shared::new(),
        };
        let graph = build(&cfg, &env).unwrap();
        // Downstream pipelines come first; one count instance per exporter signal.
        let order: Vec<&str> = graph.pipelines.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(
            order,
            vec!["logs/out", "metrics/counts", "logs/in", "traces"]
        );
        let connectors: Vec<String> = graph
            .pipelines
            .iter()
            .flat_map(|p| {
                p.connectors
                    .iter()
                    .map(move |(id, _)| format!("{id}@{}", p.id))
            })
            .collect();
        assert_eq!(
            connectors,
            vec!["forward@logs/in", "count@logs/in", "count@traces"]
        );
        // Connectors are not receivers or exporters of the graph.
        assert_eq!(graph.receivers.len(), 1);
        assert_eq!(graph.exporters.len(), 2);

        let consumers = journal.receivers.lock().unwrap()[0].1.clone();
        consumers.logs.unwrap().consume(logs(4)).await.unwrap();
        let mut exported = journal.exported.lock().unwrap().clone();
        exported.sort();
        // debug: the 4 records (logs/in) and 1 count point (metrics/counts); otlp/up: the
        // 4 records forwarded through logs/out.
        assert_eq!(
            exported,
            vec![
                ("debug".to_string(), 1),
                ("debug".to_string(), 4),
                ("otlp/up".to_string(), 4)
            ]
        );
        let text = env.telemetry.encode();
        for line in [
            "weir_pipeline_received_items_total{pipeline=\"logs/in\"} 4",
            "weir_pipeline_received_items_total{pipeline=\"logs/out\"} 4",
            "weir_pipeline_received_items_total{pipeline=\"metrics/counts\"} 1",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
    }
}
