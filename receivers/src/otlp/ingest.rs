//! What both transports share: the in-flight byte budget, the receiver's own metrics, and
//! handing a decoded batch to the pipeline.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use weir_api::{Batch, ComponentId, Counter, Gauge, Signal, SignalConsumers, Telemetry};

use super::status::RequestError;

/// The delay suggested to a client turned away because the in-flight budget is spent: long
/// enough for the requests ahead of it to finish.
const BUDGET_RETRY_AFTER: Duration = Duration::from_secs(1);

/// The transport a request arrived on (a metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// OTLP/gRPC.
    Grpc,
    /// OTLP/HTTP.
    Http,
    /// UDP datagrams (the jaeger receiver's agent protocols).
    Udp,
}

impl Transport {
    fn as_str(self) -> &'static str {
        match self {
            Transport::Grpc => "grpc",
            Transport::Http => "http",
            Transport::Udp => "udp",
        }
    }
}

/// Bytes of request bodies the receiver may hold at once, shared by both transports.
///
/// A request takes its share before its body is decoded (and, over HTTP, while the body
/// streams in and while it is decompressed); when the budget is spent the request is
/// answered "retry later" at once instead of waiting in memory.
#[derive(Debug, Clone)]
pub struct ByteBudget {
    semaphore: Arc<Semaphore>,
    total: u32,
    /// Bytes held now, for the operator (`weir_receiver_in_flight_bytes`).
    in_flight: Gauge,
}

impl ByteBudget {
    /// A budget of `bytes` (capped at 4 GiB - 1) that reports what is held in `in_flight`.
    pub fn new(bytes: u64, in_flight: Gauge) -> Self {
        let total = u32::try_from(bytes).unwrap_or(u32::MAX);
        ByteBudget {
            semaphore: Arc::new(Semaphore::new(total as usize)),
            total,
            in_flight,
        }
    }

    /// Bytes not held by any request now.
    pub fn available(&self) -> usize {
        self.semaphore.available_permits()
    }

    /// An empty share, grown with [`BudgetShare::take`].
    pub fn share(&self) -> BudgetShare {
        BudgetShare {
            budget: self.clone(),
            permit: None,
            held: 0,
        }
    }
}

/// The part of the budget one request holds; given back when dropped.
#[derive(Debug)]
pub struct BudgetShare {
    budget: ByteBudget,
    permit: Option<OwnedSemaphorePermit>,
    held: u32,
}

impl BudgetShare {
    /// Whether `bytes` more would fit in the budget now (a quick check before reading a
    /// body of known size; [`BudgetShare::take`] is what counts).
    pub fn would_fit(&self, bytes: u64) -> bool {
        let room = u64::from(self.budget.total - self.held);
        bytes.min(room) <= self.budget.available() as u64
    }

    /// Takes `bytes` more, or fails with a retryable error when the budget is spent. A
    /// single request is never asked for more than the whole budget, so it can always pass
    /// once it is alone.
    pub fn take(&mut self, bytes: usize) -> Result<(), RequestError> {
        let room = self.budget.total - self.held;
        let want = u32::try_from(bytes).unwrap_or(u32::MAX).min(room);
        if want == 0 {
            return Ok(());
        }
        match self.budget.semaphore.clone().try_acquire_many_owned(want) {
            Ok(p) => {
                match &mut self.permit {
                    Some(held) => held.merge(p),
                    None => self.permit = Some(p),
                }
                self.held += want;
                self.budget.in_flight.inc_by(i64::from(want));
                Ok(())
            }
            Err(_) => Err(budget_spent()),
        }
    }
}

impl Drop for BudgetShare {
    fn drop(&mut self) {
        // The permit gives the bytes back to the semaphore as it drops.
        self.budget.in_flight.dec_by(i64::from(self.held));
    }
}

/// Bodies larger than this are decoded on a blocking thread, so decoding a big request does
/// not hold up the other requests served by the same runtime thread.
const INLINE_DECODE_MAX: usize = 512 * 1024;

/// How a body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyEncoding {
    /// OTLP protobuf (`application/x-protobuf`, gRPC).
    Protobuf,
    /// OTLP/JSON (`application/json`).
    Json,
}

/// Decodes an export request body of `signal`; a protobuf batch keeps its bytes.
pub async fn decode_body(
    signal: Signal,
    encoding: BodyEncoding,
    bytes: bytes::Bytes,
) -> Result<Batch, RequestError> {
    let small = bytes.len() <= INLINE_DECODE_MAX;
    let decode = move || match encoding {
        BodyEncoding::Protobuf => {
            Batch::decode(signal, bytes).map_err(|e| RequestError::Malformed(e.to_string()))
        }
        BodyEncoding::Json => weir_api::json::decode(signal, &bytes)
            .map(Batch::new)
            .map_err(|e| {
                RequestError::Malformed(format!("invalid OTLP/JSON {signal} request: {e}"))
            }),
    };
    if small {
        return decode();
    }
    tokio::task::spawn_blocking(decode)
        .await
        .map_err(|e| RequestError::Malformed(format!("decoding the request failed: {e}")))?
}

/// The answer when the in-flight budget is spent.
pub fn budget_spent() -> RequestError {
    RequestError::Busy {
        reason: "the receiver holds as many request bytes as it may; retry later".to_string(),
        retry_after: Some(BUDGET_RETRY_AFTER),
    }
}

/// Counters of one (transport, signal).
#[derive(Clone)]
struct SignalMetrics {
    accepted_items: Counter,
    refused_items: Counter,
    refused_requests: Counter,
    request_bytes: Counter,
    unauthenticated: Counter,
}

/// Everything a request handler needs: the pipeline consumers, the budget, the metrics.
pub struct Ingest {
    consumers: SignalConsumers,
    /// The shared in-flight byte budget.
    pub budget: ByteBudget,
    metrics: Vec<((Transport, Signal), SignalMetrics)>,
}

impl Ingest {
    /// Registers the receiver's counters for gRPC and HTTP and every signal.
    pub fn new(
        id: &ComponentId,
        consumers: SignalConsumers,
        budget: ByteBudget,
        telemetry: &Telemetry,
    ) -> Self {
        Self::with_transports(
            id,
            consumers,
            budget,
            telemetry,
            &[Transport::Grpc, Transport::Http],
        )
    }

    /// Registers the receiver's counters for `transports` and every signal.
    pub fn with_transports(
        id: &ComponentId,
        consumers: SignalConsumers,
        budget: ByteBudget,
        telemetry: &Telemetry,
        transports: &[Transport],
    ) -> Self {
        let mut metrics = Vec::new();
        for &transport in transports {
            for signal in Signal::ALL {
                let labels = [
                    ("receiver", id.to_string()),
                    ("transport", transport.as_str().to_string()),
                    ("signal", signal.as_str().to_string()),
                ];
                let m = SignalMetrics {
                    accepted_items: telemetry.counter(
                        "weir_receiver_accepted_items",
                        "Items (log records, spans, data points) the pipeline accepted from a receiver",
                        &labels,
                    ),
                    refused_items: telemetry.counter(
                        "weir_receiver_refused_items",
                        "Items a receiver decoded but the pipeline did not accept (the client was told to retry or that the data is rejected)",
                        &labels,
                    ),
                    refused_requests: telemetry.counter(
                        "weir_receiver_refused_requests",
                        "Requests a receiver answered with an error (malformed, too large, busy, refused, rejected)",
                        &labels,
                    ),
                    request_bytes: telemetry.counter(
                        "weir_receiver_request_bytes",
                        "Request body bytes received, as sent (before decompression)",
                        &labels,
                    ),
                    unauthenticated: telemetry.counter(
                        "weir_receiver_unauthenticated_requests",
                        "Requests a receiver refused because its auth.authenticator did not accept their credentials (nothing of them was read)",
                        &labels,
                    ),
                };
                metrics.push(((transport, signal), m));
            }
        }
        Ingest {
            consumers,
            budget,
            metrics,
        }
    }

    /// Whether some pipeline takes `signal` from this receiver.
    pub fn serves(&self, signal: Signal) -> bool {
        self.consumers.get(signal).is_some()
    }

    fn metrics(&self, transport: Transport, signal: Signal) -> Option<&SignalMetrics> {
        self.metrics
            .iter()
            .find(|(k, _)| *k == (transport, signal))
            .map(|(_, m)| m)
    }

    /// The counter of request body bytes, for counting frame by frame.
    pub fn bytes_counter(&self, transport: Transport, signal: Signal) -> Option<Counter> {
        self.metrics(transport, signal)
            .map(|m| m.request_bytes.clone())
    }

    /// Counts the bytes of a request body as it arrived.
    pub fn count_bytes(&self, transport: Transport, signal: Signal, bytes: usize) {
        if let Some(m) = self.metrics(transport, signal) {
            m.request_bytes.inc_by(bytes as u64);
        }
    }

    /// Counts a request refused by the authenticator (also a refused request).
    pub fn count_unauthenticated(&self, transport: Transport, signal: Signal) {
        if let Some(m) = self.metrics(transport, signal) {
            m.unauthenticated.inc();
            m.refused_requests.inc();
        }
    }

    /// Counts a request answered with an error.
    pub fn count_refused_request(&self, transport: Transport, signal: Signal) {
        if let Some(m) = self.metrics(transport, signal) {
            m.refused_requests.inc();
        }
    }

    /// Hands a decoded batch to the pipeline and returns once it is accepted downstream.
    /// An empty batch is answered OK without bothering the pipeline.
    pub async fn deliver(&self, transport: Transport, batch: Batch) -> Result<(), RequestError> {
        let signal = batch.signal();
        let items = batch.item_count() as u64;
        if items == 0 {
            return Ok(());
        }
        let Some(consumer) = self.consumers.get(signal) else {
            return Err(RequestError::Rejected(format!(
                "no pipeline takes {signal} from this receiver"
            )));
        };
        let result = consumer.consume(batch).await;
        let metrics = self.metrics(transport, signal);
        match result {
            Ok(()) => {
                if let Some(m) = metrics {
                    m.accepted_items.inc_by(items);
                }
                Ok(())
            }
            Err(e) => {
                if let Some(m) = metrics {
                    m.refused_items.inc_by(items);
                }
                Err(RequestError::from(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_refuses_past_its_size_and_recovers_when_shares_drop() {
        let in_flight = Gauge::default();
        let budget = ByteBudget::new(100, in_flight.clone());
        let mut a = budget.share();
        a.take(60).unwrap();
        a.take(30).unwrap();
        let mut b = budget.share();
        let err = b.take(20).unwrap_err();
        assert_eq!(err.retry_after_secs(), Some(1));
        assert_eq!(in_flight.get(), 90);
        drop(a);
        b.take(20).unwrap();
        assert_eq!(budget.available(), 80);
        assert_eq!(in_flight.get(), 20);
    }

    #[test]
    fn one_request_never_needs_more_than_the_whole_budget() {
        let budget = ByteBudget::new(100, Gauge::default());
        let mut a = budget.share();
        a.take(1000).unwrap();
        a.take(5).unwrap();
        assert_eq!(budget.available(), 0);
        drop(a);
        assert_eq!(budget.available(), 100);
    }
}
