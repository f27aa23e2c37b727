//! The load driver: N gRPC connections sending pre-encoded requests, as fast as accepted or
//! at a fixed rate. A refused request (RESOURCE_EXHAUSTED / UNAVAILABLE) is retried after a
//! pause, as an OTLP client would, so refusals never count as loss.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tonic::transport::{Channel, Endpoint};
use weir_api::Signal;

use crate::generate::Request;
use crate::raw::{export_path, RawCodec};
use crate::sink::now_ns;

/// What the driver sent.
#[derive(Default)]
pub struct LoadStats {
    /// Requests the target accepted.
    pub requests: AtomicU64,
    /// Items in accepted requests.
    pub items: AtomicU64,
    /// Noise items (what a noise-dropping policy removes) in accepted requests.
    pub noise: AtomicU64,
    /// Requests refused with a retryable status (then retried).
    pub refused: AtomicU64,
    /// Requests that failed otherwise (not retried; they count as not sent).
    pub failed: AtomicU64,
}

/// Settings of one load run.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    /// `http://127.0.0.1:PORT` of the target's OTLP gRPC receiver.
    pub endpoint: String,
    /// Logs, traces or metrics.
    pub signal: Signal,
    /// Concurrent connections, one request in flight each.
    pub connections: usize,
    /// Items per second over all connections; 0 = as fast as accepted.
    pub rate: u64,
}

/// Drives `pool` at the target until `stop` is set.
pub async fn drive(
    plan: LoadPlan,
    pool: Arc<Vec<Request>>,
    stats: Arc<LoadStats>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<()> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..plan.connections {
        let channel: Channel = Endpoint::from_shared(plan.endpoint.clone())?
            .tcp_nodelay(true)
            .connect()
            .await?;
        let (pool, stats, stop, next) = (pool.clone(), stats.clone(), stop.clone(), next.clone());
        let signal = plan.signal;
        let per_conn_interval = if plan.rate > 0 {
            let items = pool.first().map(|r| r.items).unwrap_or(1) as f64;
            Some(Duration::from_secs_f64(
                items * plan.connections as f64 / plan.rate as f64,
            ))
        } else {
            None
        };
        tasks.push(tokio::spawn(async move {
            let mut client = tonic::client::Grpc::new(channel)
                .max_encoding_message_size(256 << 20)
                .max_decoding_message_size(256 << 20);
            let path = http::uri::PathAndQuery::from_static(export_path(signal));
            let started = Instant::now();
            let mut sent = 0u32;
            while !stop.load(Ordering::Relaxed) {
                if let Some(iv) = per_conn_interval {
                    let due = started + iv * sent;
                    tokio::time::sleep_until(due.into()).await;
                }
                let req = &pool[next.fetch_add(1, Ordering::Relaxed) % pool.len()];
                loop {
                    if client.ready().await.is_err() {
                        stats.failed.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                    let r = client
                        .unary(
                            tonic::Request::new(req.stamped(now_ns())),
                            path.clone(),
                            RawCodec,
                        )
                        .await;
                    match r {
                        Ok(_) => {
                            stats.requests.fetch_add(1, Ordering::Relaxed);
                            stats.items.fetch_add(req.items, Ordering::Relaxed);
                            stats.noise.fetch_add(req.noise, Ordering::Relaxed);
                            break;
                        }
                        Err(s)
                            if matches!(
                                s.code(),
                                tonic::Code::ResourceExhausted | tonic::Code::Unavailable
                            ) =>
                        {
                            stats.refused.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(5)).await;
                            if stop.load(Ordering::Relaxed) {
                                break;
                            }
                        }
                        Err(_) => {
                            stats.failed.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                    }
                }
                sent += 1;
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    Ok(())
}
