//! `thrift_compact` and `thrift_binary`: the agent's UDP protocols, one `emitBatch` call
//! per datagram, with rate-limited logging of packets that cannot be decoded.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;
use weir_api::otlp::collector::trace::v1::ExportTraceServiceRequest;
use weir_api::{Batch, Payload, Signal};

use super::config::UdpSettings;
use super::{convert, from_thrift, thrift};
use crate::otlp::ingest::{Ingest, Transport};

/// Decodes one agent UDP packet into OTLP.
pub fn decode_agent_packet(
    packet: &[u8],
    protocol: thrift::Protocol,
) -> Result<ExportTraceServiceRequest, String> {
    from_thrift::decode_agent_packet(packet, protocol).map(convert::thrift_to_otlp)
}

/// Logs at most one warning a minute per socket.
struct RateLimitedLog {
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLimitedLog {
    fn warn(&mut self, what: &str, error: &str) {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < Duration::from_secs(60))
        {
            self.suppressed += 1;
            return;
        }
        tracing::warn!(error = %error, suppressed = self.suppressed, "{what}: packet dropped");
        self.last = Some(now);
        self.suppressed = 0;
    }
}

pub(super) fn serve_udp(
    socket: UdpSocket,
    protocol: thrift::Protocol,
    u: &UdpSettings,
    ingest: Arc<Ingest>,
    shutdown: CancellationToken,
) -> Vec<tokio::task::JoinHandle<()>> {
    let what = match protocol {
        thrift::Protocol::Compact => "Jaeger Thrift compact",
        thrift::Protocol::Binary => "Jaeger Thrift binary",
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(u.queue_size);
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let log = Arc::new(Mutex::new(RateLimitedLog {
        last: None,
        suppressed: 0,
    }));
    let mut tasks = Vec::new();
    let max = u.max_packet_size;
    {
        let (ingest, log, shutdown) = (ingest.clone(), log.clone(), shutdown.clone());
        tasks.push(tokio::spawn(async move {
            let mut buf = vec![0u8; max];
            loop {
                let received = tokio::select! {
                    r = socket.recv_from(&mut buf) => r,
                    () = shutdown.cancelled() => break,
                };
                let n = match received {
                    Ok((n, _)) => n,
                    Err(e) => {
                        tracing::debug!(error = %e, "{what}: receive failed");
                        continue;
                    }
                };
                ingest.count_bytes(Transport::Udp, Signal::Traces, n);
                if tx.try_send(buf[..n].to_vec()).is_err() {
                    ingest.count_refused_request(Transport::Udp, Signal::Traces);
                    log.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .warn(what, "the queue is full (queue_size)");
                }
            }
            // Dropping the sender lets the workers finish what is queued, then stop.
        }));
    }
    for _ in 0..u.workers {
        let (ingest, log, rx) = (ingest.clone(), log.clone(), rx.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let packet = { rx.lock().await.recv().await };
                let Some(packet) = packet else { break };
                let outcome = match decode_agent_packet(&packet, protocol) {
                    Ok(request) => ingest
                        .deliver(Transport::Udp, Batch::new(Payload::Traces(request)))
                        .await
                        .map_err(|e| e.to_string()),
                    Err(e) => Err(e),
                };
                if let Err(e) = outcome {
                    ingest.count_refused_request(Transport::Udp, Signal::Traces);
                    log.lock().unwrap_or_else(|e| e.into_inner()).warn(what, &e);
                }
            }
        }));
    }
    tasks
}
