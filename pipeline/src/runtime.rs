//! The service lifecycle: build, start, run until told to stop, shut down within a deadline.
//!
//! Start order: own metrics endpoint, extensions, exporters, processors (each pipeline from
//! its end), receivers; then the service is ready. Shutdown order is the reverse, so data in
//! flight moves downstream: the service stops being ready, receivers stop taking data,
//! processors flush (first to last), exporters drain, extensions stop.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use weir_api::{Component, ComponentId, Telemetry};

use crate::config::ValidatedConfig;
use crate::graph::{self, Environment, ServiceGraph};
use crate::metrics_server::{start_metrics, HttpServer};

/// Why the service could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A component could not be built.
    #[error("cannot build the service:\n{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"))]
    Build(Vec<weir_api::BuildError>),
    /// A component could not start (the ones started before it were shut down again).
    #[error("cannot start the service: {0}")]
    Start(#[source] weir_api::StartError),
    /// A periodic metric reader's exporter could not be built or started.
    #[error("cannot push own metrics: {0}")]
    Push(String),
    /// The own metrics endpoint could not listen.
    #[error("cannot serve own metrics on {address}: {source}")]
    Metrics {
        /// The configured address.
        address: String,
        /// Why binding failed.
        #[source]
        source: std::io::Error,
    },
}

/// How the service ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// Every component finished its shutdown within the deadline.
    Clean,
    /// The deadline passed first; what was still held may be lost.
    DeadlineExceeded,
    /// A second SIGTERM/SIGINT cut the shutdown short.
    Forced,
}

/// Settings of one run.
#[derive(Debug, Clone)]
pub struct RunSettings {
    /// Longest time the whole shutdown may take.
    pub shutdown_timeout: Duration,
    /// Whether a second SIGTERM/SIGINT during shutdown stops at once (the binary: yes).
    pub force_on_second_signal: bool,
}

/// A component with its id and role, in lifecycle order.
struct Member {
    role: &'static str,
    id: String,
    component: Arc<dyn Component>,
}

fn members(graph: &ServiceGraph) -> Vec<Vec<Member>> {
    let m = |role, id: &ComponentId, component: Arc<dyn Component>| Member {
        role,
        id: id.to_string(),
        component,
    };
    let extensions = graph
        .extensions
        .iter()
        .map(|(id, c)| m("extension", id, c.clone()))
        .collect();
    let exporters = graph
        .exporters
        .iter()
        .map(|(id, c)| m("exporter", id, c.clone() as Arc<dyn Component>))
        .collect();
    // Processors start from the end of each pipeline so that a stage never starts before
    // the stage it hands data to.
    let processors = graph
        .pipelines
        .iter()
        .flat_map(|p| {
            // A pipeline's connectors come after its last processor: they start before it
            // and stop after it.
            let connectors = p.connectors.iter().map(move |(id, c)| Member {
                role: "connector",
                id: format!("{id} after {}", p.id),
                component: c.clone() as Arc<dyn Component>,
            });
            connectors.chain(p.processors.iter().rev().map(move |(id, c)| Member {
                role: "processor",
                id: format!("{id} in {}", p.id),
                component: c.clone() as Arc<dyn Component>,
            }))
        })
        .collect();
    let receivers = graph
        .receivers
        .iter()
        .map(|(id, c)| m("receiver", id, c.clone()))
        .collect();
    vec![extensions, exporters, processors, receivers]
}

/// Runs the service until `shutdown` resolves, then stops it within the deadline.
pub async fn run(
    config: &ValidatedConfig,
    base_dir: std::path::PathBuf,
    settings: RunSettings,
    shutdown: impl Future<Output = ()>,
) -> Result<Stopped, RunError> {
    let env = Environment {
        telemetry: Telemetry::new(),
        ready: Arc::new(AtomicBool::new(false)),
        base_dir,
        shared: weir_api::Shared::new(),
    };
    // From here on SIGHUP reloads (policy files, WASM modules) instead of killing the process.
    let hangups = reload_on_hangup();
    let _stop_hangups = AbortOnDrop(hangups);
    let mut metrics_servers = Vec::new();
    weir_api::process_start();
    for (i, address) in config.telemetry.metrics_addresses.iter().enumerate() {
        let exposition = config
            .telemetry
            .metrics_expositions
            .get(i)
            .cloned()
            .unwrap_or_default();
        match start_metrics(address, env.telemetry.clone(), exposition).await {
            Ok(s) => {
                tracing::info!(address = %s.local_addr(), "serving own metrics at /metrics");
                metrics_servers.push(s);
            }
            Err(source) => {
                stop_servers(&mut metrics_servers).await;
                return Err(RunError::Metrics {
                    address: address.clone(),
                    source,
                });
            }
        }
    }
    crate::extensions::zpages::register_service(
        &env.ready,
        crate::extensions::zpages::ServiceSnapshot::of(config),
    );
    let graph = match graph::build(config, &env) {
        Ok(g) => g,
        Err(e) => {
            crate::extensions::zpages::unregister_service(&env.ready);
            stop_servers(&mut metrics_servers).await;
            return Err(RunError::Build(e));
        }
    };
    let groups = members(&graph);

    let mut started: Vec<&Member> = Vec::new();
    for member in groups.iter().flatten() {
        tracing::debug!(role = member.role, id = %member.id, "starting");
        if let Err(e) = member.component.start().await {
            tracing::error!(role = member.role, id = %member.id, error = %e, "start failed; shutting down what started");
            stop_in_order(
                started.into_iter().rev().collect(),
                settings.shutdown_timeout,
            )
            .await;
            stop_servers(&mut metrics_servers).await;
            crate::extensions::zpages::unregister_service(&env.ready);
            return Err(RunError::Start(e));
        }
        started.push(member);
    }
    let pushers = match crate::telemetry_push::start(config, &env).await {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %e, "cannot start pushing own metrics; shutting down");
            stop_in_order_grouped(&groups, settings.shutdown_timeout).await;
            stop_servers(&mut metrics_servers).await;
            crate::extensions::zpages::unregister_service(&env.ready);
            return Err(RunError::Push(e));
        }
    };
    env.ready.store(true, Ordering::SeqCst);
    tracing::info!(
        pipelines = graph.pipelines.len(),
        "everything is ready; Weir is running"
    );

    shutdown.await;
    tracing::info!(deadline = ?settings.shutdown_timeout, "shutting down");
    env.ready.store(false, Ordering::SeqCst);
    let stopping = stop_in_order_grouped(&groups, settings.shutdown_timeout);
    let outcome = if settings.force_on_second_signal {
        tokio::select! {
            outcome = stopping => outcome,
            _ = termination_signal() => {
                tracing::warn!("second signal during shutdown; stopping now, data still held may be lost");
                Stopped::Forced
            }
        }
    } else {
        stopping.await
    };
    // The last push of own metrics gets its own bounded time, like the drain before it.
    if tokio::time::timeout(settings.shutdown_timeout, pushers.stop())
        .await
        .is_err()
    {
        tracing::warn!("the last push of own metrics did not finish in time");
    }
    stop_servers(&mut metrics_servers).await;
    crate::extensions::zpages::unregister_service(&env.ready);
    Ok(outcome)
}

async fn stop_servers(servers: &mut [HttpServer]) {
    for s in servers {
        s.stop().await;
    }
}

/// Shuts the groups down in reverse start order: receivers, processors, exporters,
/// extensions. Components of one group stop concurrently, except processors, which stop
/// first to last per pipeline so that each flush lands in a stage still running.
async fn stop_in_order_grouped(groups: &[Vec<Member>], deadline: Duration) -> Stopped {
    let work = async {
        for (i, group) in groups.iter().enumerate().rev() {
            let is_processors = i == 2;
            if is_processors {
                // Processors were listed last-to-first per pipeline; stop them first-to-last.
                for member in group.iter().rev() {
                    stop_one(member).await;
                }
            } else {
                join_all(group.iter().map(stop_one)).await;
            }
        }
    };
    match tokio::time::timeout(deadline, work).await {
        Ok(()) => {
            tracing::info!("shutdown complete");
            Stopped::Clean
        }
        Err(_) => {
            tracing::error!(deadline = ?deadline, "shutdown deadline exceeded; data still held by components may be lost");
            Stopped::DeadlineExceeded
        }
    }
}

async fn stop_in_order(members: Vec<&Member>, deadline: Duration) {
    let work = async {
        for m in members {
            stop_one(m).await;
        }
    };
    let _ = tokio::time::timeout(deadline, work).await;
}

async fn stop_one(member: &Member) {
    tracing::debug!(role = member.role, id = %member.id, "stopping");
    member.component.shutdown().await;
}

/// Aborts the task when dropped (however `run` returns).
struct AbortOnDrop(Option<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(t) = self.0.take() {
            t.abort();
        }
    }
}

/// Reloads everything registered in [`weir_api::reload`] and logs one line with the outcome.
pub async fn reload_registered(trigger: &str) -> Vec<weir_api::reload::ReloadOutcome> {
    let outcomes = tokio::task::spawn_blocking(weir_api::reload::reload_all)
        .await
        .unwrap_or_default();
    let reloaded = outcomes.iter().filter(|o| o.result == Ok(true)).count();
    let unchanged = outcomes.iter().filter(|o| o.result == Ok(false)).count();
    let refused: Vec<String> = outcomes
        .iter()
        .filter_map(|o| o.result.as_ref().err().map(|e| format!("{}: {e}", o.what)))
        .collect();
    if refused.is_empty() {
        tracing::info!(
            trigger,
            reloaded,
            unchanged,
            refused = 0,
            "reload done (policy files and WASM modules; the service config is not reloaded, restart to apply it)"
        );
    } else {
        tracing::warn!(
            trigger,
            reloaded,
            unchanged,
            refused = refused.len(),
            errors = %refused.join("; "),
            "reload done; what was refused keeps its version in force (the service config is not reloaded, restart to apply it)"
        );
    }
    outcomes
}

/// Listens for SIGHUP and reloads on each one. `None` where there is no SIGHUP.
fn reload_on_hangup() -> Option<tokio::task::JoinHandle<()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::hangup()) {
            Ok(mut hup) => Some(tokio::spawn(async move {
                while hup.recv().await.is_some() {
                    tracing::info!("received SIGHUP; reloading policy files and WASM modules");
                    reload_registered("SIGHUP").await;
                }
            })),
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGHUP; SIGHUP will stop Weir");
                None
            }
        }
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
pub async fn termination_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => tracing::info!("received SIGTERM"),
                    _ = tokio::signal::ctrl_c() => tracing::info!("received SIGINT"),
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops Weir");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse_document, validate};
    use crate::test_components::fake_registry;

    #[tokio::test]
    async fn starts_in_order_and_stops_in_reverse() {
        let (registry, journal) = fake_registry();
        let yaml = "
extensions: {health_check: {}}
receivers: {otlp: {}}
processors: {batch: {}, logsonly: {}}
exporters: {debug: {}}
service:
  extensions: [health_check]
  telemetry: {metrics: {address: '127.0.0.1:0'}}
  pipelines:
    logs: {receivers: [otlp], processors: [batch, logsonly], exporters: [debug]}
";
        let cfg = validate(&parse_document(yaml).unwrap(), &registry).unwrap();
        let outcome = run(
            &cfg,
            ".".into(),
            RunSettings {
                shutdown_timeout: Duration::from_secs(5),
                force_on_second_signal: false,
            },
            async {},
        )
        .await
        .unwrap();
        assert_eq!(outcome, Stopped::Clean);
        assert_eq!(
            *journal.events.lock().unwrap(),
            vec![
                "start:health_check",
                "start:debug",
                "start:logsonly@logs",
                "start:batch@logs",
                "start:otlp",
                "stop:otlp",
                "stop:batch@logs",
                "stop:logsonly@logs",
                "stop:debug",
                "stop:health_check",
            ]
        );
    }
}
