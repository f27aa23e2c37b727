//! Periodic metric readers (`service.telemetry.metrics.readers[].periodic`): Weir's own
//! metrics, under the Collector's names, pushed over OTLP every interval and once more at
//! shutdown, with an `otlphttp` or `otlp` exporter built from the reader's settings.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinHandle;
use weir_api::{Batch, ComponentId, Payload, Stage, StartError};

use crate::config::ValidatedConfig;
use crate::graph::Environment;

/// One running pusher: its exporter, its stop signal, its task.
type Running = (Arc<dyn Stage>, Arc<Notify>, JoinHandle<()>);

/// The running pushers.
pub struct Pushers {
    running: Vec<Running>,
}

/// Builds and starts one pusher per periodic reader.
pub async fn start(config: &ValidatedConfig, env: &Environment) -> Result<Pushers, String> {
    let mut running = Vec::new();
    for (i, (interval, exporter)) in config.telemetry_exporters.iter().enumerate() {
        let id = ComponentId::parse(&format!("otlp/telemetry_{i}")).map_err(|e| e.to_string())?;
        let stage = exporter
            .build(&env.context(&id, None))
            .map_err(|e| e.to_string())?;
        stage.start().await.map_err(|e: StartError| e.to_string())?;
        let stop = Arc::new(Notify::new());
        let task = tokio::spawn(push_loop(
            stage.clone(),
            stop.clone(),
            *interval,
            env.telemetry.clone(),
            config.telemetry.resource.clone(),
        ));
        running.push((stage, stop, task));
    }
    Ok(Pushers { running })
}

async fn push(
    stage: &Arc<dyn Stage>,
    telemetry: &weir_api::Telemetry,
    resource: &[(String, String)],
) {
    let req = telemetry.collector_otlp(resource);
    if let Err(e) = stage.consume(Batch::new(Payload::Metrics(req))).await {
        tracing::warn!(error = %e, "pushing own metrics failed; the next push carries the totals");
    }
}

async fn push_loop(
    stage: Arc<dyn Stage>,
    stop: Arc<Notify>,
    interval: Duration,
    telemetry: weir_api::Telemetry,
    resource: Vec<(String, String)>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => push(&stage, &telemetry, &resource).await,
            _ = stop.notified() => {
                push(&stage, &telemetry, &resource).await;
                return;
            }
        }
    }
}

impl Pushers {
    /// Pushes once more, then stops the exporters.
    pub async fn stop(self) {
        for (stage, stop, task) in self.running {
            stop.notify_one();
            let _ = task.await;
            stage.shutdown().await;
        }
    }
}
