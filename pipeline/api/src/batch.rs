//! The unit of data that moves through a pipeline.

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use prost::Message;

/// One of the three OpenTelemetry signals a pipeline carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Signal {
    /// Log records.
    Logs,
    /// Spans.
    Traces,
    /// Metrics (counted by data point).
    Metrics,
}

impl Signal {
    /// All signals, in a fixed order.
    pub const ALL: [Signal; 3] = [Signal::Traces, Signal::Metrics, Signal::Logs];

    /// The name used in `service.pipelines` keys (`logs`, `traces`, `metrics`).
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Logs => "logs",
            Signal::Traces => "traces",
            Signal::Metrics => "metrics",
        }
    }

    /// Parses a pipeline signal name.
    pub fn parse(s: &str) -> Option<Signal> {
        match s {
            "logs" => Some(Signal::Logs),
            "traces" => Some(Signal::Traces),
            "metrics" => Some(Signal::Metrics),
            _ => None,
        }
    }

    /// The name of one item of this signal as used in metric names (`log_records`, ...).
    pub fn item_name(self) -> &'static str {
        match self {
            Signal::Logs => "log_records",
            Signal::Traces => "spans",
            Signal::Metrics => "metric_points",
        }
    }

    /// The signal's stable code (logs 0, traces 1, metrics 2): its index in a
    /// [`PerSignal`], and the byte that names it in files Weir writes (the exporters' queue
    /// log), so it never changes.
    pub const fn code(self) -> u8 {
        match self {
            Signal::Logs => 0,
            Signal::Traces => 1,
            Signal::Metrics => 2,
        }
    }

    /// The signal a [`Signal::code`] names.
    pub const fn from_code(code: u8) -> Option<Signal> {
        match code {
            0 => Some(Signal::Logs),
            1 => Some(Signal::Traces),
            2 => Some(Signal::Metrics),
            _ => None,
        }
    }
}

/// One value per signal, indexed by [`Signal`] (instead of hand-written signal -> index
/// mappings).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PerSignal<T>([T; 3]);

impl<T> PerSignal<T> {
    /// Builds each signal's value.
    pub fn from_fn(mut f: impl FnMut(Signal) -> T) -> Self {
        PerSignal([f(Signal::Logs), f(Signal::Traces), f(Signal::Metrics)])
    }

    /// Builds each signal's value, or the first error.
    pub fn try_from_fn<E>(mut f: impl FnMut(Signal) -> Result<T, E>) -> Result<Self, E> {
        Ok(PerSignal([
            f(Signal::Logs)?,
            f(Signal::Traces)?,
            f(Signal::Metrics)?,
        ]))
    }

    /// Each signal with its value, logs, traces, metrics.
    pub fn iter(&self) -> impl Iterator<Item = (Signal, &T)> {
        [Signal::Logs, Signal::Traces, Signal::Metrics]
            .into_iter()
            .zip(self.0.iter())
    }
}

impl<T> std::ops::Index<Signal> for PerSignal<T> {
    type Output = T;
    fn index(&self, signal: Signal) -> &T {
        &self.0[usize::from(signal.code())]
    }
}

impl<T> std::ops::IndexMut<Signal> for PerSignal<T> {
    fn index_mut(&mut self, signal: Signal) -> &mut T {
        &mut self.0[usize::from(signal.code())]
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A small set of signals (which signals a component supports).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SignalSet(u8);

impl SignalSet {
    /// No signal.
    pub const NONE: SignalSet = SignalSet(0);
    /// Logs, traces and metrics.
    pub const ALL: SignalSet = SignalSet(0b111);

    fn bit(s: Signal) -> u8 {
        match s {
            Signal::Logs => 1,
            Signal::Traces => 2,
            Signal::Metrics => 4,
        }
    }

    /// A set holding exactly the given signals.
    pub fn of(signals: &[Signal]) -> SignalSet {
        SignalSet(signals.iter().fold(0, |acc, s| acc | Self::bit(*s)))
    }

    /// Whether `s` is in the set.
    pub fn contains(self, s: Signal) -> bool {
        self.0 & Self::bit(s) != 0
    }
}

/// Context that travels with a batch.
#[derive(Debug, Clone)]
pub struct BatchContext {
    /// When the receiver accepted the request.
    pub received_at: SystemTime,
    /// Client metadata (HTTP headers / gRPC metadata), only filled when the receiver's
    /// `include_metadata` is on. Keys are lower-case.
    pub metadata: Option<Arc<Vec<(String, String)>>>,
}

impl Default for BatchContext {
    fn default() -> Self {
        BatchContext {
            received_at: SystemTime::now(),
            metadata: None,
        }
    }
}

/// The decoded content of a batch: one OTLP export request of one signal.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    /// A logs export request.
    Logs(ExportLogsServiceRequest),
    /// A traces export request.
    Traces(ExportTraceServiceRequest),
    /// A metrics export request.
    Metrics(ExportMetricsServiceRequest),
}

impl Payload {
    /// An export request of `signal` with nothing in it.
    pub fn empty(signal: Signal) -> Payload {
        match signal {
            Signal::Logs => Payload::Logs(ExportLogsServiceRequest::default()),
            Signal::Traces => Payload::Traces(ExportTraceServiceRequest::default()),
            Signal::Metrics => Payload::Metrics(ExportMetricsServiceRequest::default()),
        }
    }

    /// The signal of this payload.
    pub fn signal(&self) -> Signal {
        match self {
            Payload::Logs(_) => Signal::Logs,
            Payload::Traces(_) => Signal::Traces,
            Payload::Metrics(_) => Signal::Metrics,
        }
    }

    /// Number of items: log records, spans or metric data points.
    pub fn item_count(&self) -> usize {
        match self {
            Payload::Logs(r) => r
                .resource_logs
                .iter()
                .flat_map(|rl| &rl.scope_logs)
                .map(|sl| sl.log_records.len())
                .sum(),
            Payload::Traces(r) => r
                .resource_spans
                .iter()
                .flat_map(|rs| &rs.scope_spans)
                .map(|ss| ss.spans.len())
                .sum(),
            Payload::Metrics(r) => r
                .resource_metrics
                .iter()
                .flat_map(|rm| &rm.scope_metrics)
                .flat_map(|sm| &sm.metrics)
                .map(|m| metric_point_count(m.data.as_ref()))
                .sum(),
        }
    }

    /// Encodes the payload as OTLP protobuf.
    pub fn encode_to_vec(&self) -> Vec<u8> {
        match self {
            Payload::Logs(r) => r.encode_to_vec(),
            Payload::Traces(r) => r.encode_to_vec(),
            Payload::Metrics(r) => r.encode_to_vec(),
        }
    }

    /// Length of the protobuf encoding, without encoding.
    pub fn encoded_len(&self) -> usize {
        match self {
            Payload::Logs(r) => r.encoded_len(),
            Payload::Traces(r) => r.encoded_len(),
            Payload::Metrics(r) => r.encoded_len(),
        }
    }

    /// Removes resource and scope entries left with no items (after a drop).
    pub fn prune_empty(&mut self) {
        match self {
            Payload::Logs(r) => {
                for rl in &mut r.resource_logs {
                    rl.scope_logs.retain(|sl| !sl.log_records.is_empty());
                }
                r.resource_logs.retain(|rl| !rl.scope_logs.is_empty());
            }
            Payload::Traces(r) => {
                for rs in &mut r.resource_spans {
                    rs.scope_spans.retain(|ss| !ss.spans.is_empty());
                }
                r.resource_spans.retain(|rs| !rs.scope_spans.is_empty());
            }
            Payload::Metrics(r) => {
                for rm in &mut r.resource_metrics {
                    for sm in &mut rm.scope_metrics {
                        sm.metrics
                            .retain(|m| metric_point_count(m.data.as_ref()) > 0);
                    }
                    rm.scope_metrics.retain(|sm| !sm.metrics.is_empty());
                }
                r.resource_metrics.retain(|rm| !rm.scope_metrics.is_empty());
            }
        }
    }
}

/// Number of data points in one metric.
pub fn metric_point_count(data: Option<&Data>) -> usize {
    match data {
        None => 0,
        Some(Data::Gauge(g)) => g.data_points.len(),
        Some(Data::Sum(s)) => s.data_points.len(),
        Some(Data::Histogram(h)) => h.data_points.len(),
        Some(Data::ExponentialHistogram(h)) => h.data_points.len(),
        Some(Data::Summary(s)) => s.data_points.len(),
    }
}

/// A protobuf body that did not decode as the signal's export request.
#[derive(Debug, thiserror::Error)]
#[error("invalid OTLP {signal} protobuf: {source}")]
pub struct DecodeError {
    /// The signal the body was expected to hold.
    pub signal: Signal,
    /// What prost reported.
    #[source]
    pub source: prost::DecodeError,
}

/// One OTLP request's worth of one signal, plus its context.
///
/// A batch received as protobuf remembers its bytes for as long as nobody asks for mutable
/// access to the payload, so an exporter can forward an unchanged batch without encoding it
/// again. A batch received as protobuf is not even decoded until something reads its payload:
/// the receiver only checks the bytes and counts the items (log records, spans, metric data
/// points; [`crate::wire_check`]), so a pipeline whose processors never look at the items
/// (forwarding, sampling by rate, routing, a WASM module, which is handed the bytes) never
/// builds them.
#[derive(Debug, Clone)]
pub struct Batch {
    signal: Signal,
    /// The decoded payload. Empty while only the bytes are known; decoded from `encoded` the
    /// first time something reads it.
    decoded: OnceLock<Decoded>,
    /// The protobuf bytes the batch arrived as (or that were spliced from them), for as long
    /// as they describe the payload.
    encoded: Option<Bytes>,
    /// The number of items in `encoded`; meaningful only while `encoded` is `Some`.
    encoded_items: usize,
    /// Receive time and client metadata.
    pub context: BatchContext,
}

/// A batch's decoded payload.
#[derive(Debug, Clone)]
struct Decoded {
    payload: Payload,
    /// The bytes failed to decode and `payload` is an empty stand-in: the bytes stay what
    /// the batch is (see [`Batch::payload`]).
    stand_in: bool,
}

impl Decoded {
    fn of(payload: Payload) -> OnceLock<Decoded> {
        OnceLock::from(Decoded {
            payload,
            stand_in: false,
        })
    }
}

impl Batch {
    /// A batch around a payload built in memory.
    pub fn new(payload: Payload) -> Batch {
        Batch {
            signal: payload.signal(),
            decoded: Decoded::of(payload),
            encoded: None,
            encoded_items: 0,
            context: BatchContext::default(),
        }
    }

    /// A batch around an export request of `signal` with `items` items that Weir's own
    /// encoder wrote (a receiver that builds requests from what it parsed, such as
    /// `filelog`): taken without the receipt check [`Batch::decode`] makes of outside
    /// bytes, which would cost a second walk over every record. Debug builds (every test)
    /// still run the check and assert that it agrees, so an encoder bug fails its tests.
    pub fn from_own_encoding(signal: Signal, bytes: Bytes, items: usize) -> Batch {
        debug_assert_eq!(
            crate::wire_check::count_items(signal, &bytes),
            Some(items),
            "bytes from Weir's own encoder do not pass the receipt check"
        );
        Batch {
            signal,
            decoded: OnceLock::new(),
            encoded: Some(bytes),
            encoded_items: items,
            context: BatchContext::default(),
        }
    }

    /// Takes an OTLP protobuf export request of `signal`, keeping the bytes for forwarding.
    /// The bytes are checked, not decoded (see the type's documentation); a body that is not
    /// a valid request is refused here, with prost's explanation.
    pub fn decode(signal: Signal, bytes: Bytes) -> Result<Batch, DecodeError> {
        if let Some(items) = crate::wire_check::count_items(signal, &bytes) {
            return Ok(Batch {
                signal,
                decoded: OnceLock::new(),
                encoded: Some(bytes),
                encoded_items: items,
                context: BatchContext::default(),
            });
        }
        // A body the check refused: prost decides, and names the error.
        let payload =
            decode_payload(signal, &bytes).map_err(|source| DecodeError { signal, source })?;
        Ok(Batch {
            signal,
            encoded_items: payload.item_count(),
            decoded: Decoded::of(payload),
            encoded: Some(bytes),
            context: BatchContext::default(),
        })
    }

    /// Merges batches of one signal that all still hold their protobuf bytes into one, by
    /// concatenating the bytes: an export request's resource list is its only field, and
    /// protobuf merges a repeated field by appending, so the result is the request with all
    /// the resource entries in order, and nothing is decoded. The first batch's context is
    /// kept. Gives the batches back, untouched, when one of them has no bytes (it was
    /// changed in memory) or the signals differ.
    pub fn concat_encoded(batches: Vec<Batch>) -> Result<Batch, Vec<Batch>> {
        let Some(first) = batches.first() else {
            return Err(batches);
        };
        let signal = first.signal;
        if batches
            .iter()
            .any(|b| b.signal != signal || b.encoded.is_none())
        {
            return Err(batches);
        }
        let len = batches
            .iter()
            .filter_map(|b| b.encoded.as_ref())
            .map(Bytes::len)
            .sum();
        let mut bytes = bytes::BytesMut::with_capacity(len);
        let mut items = 0;
        for b in &batches {
            if let Some(encoded) = &b.encoded {
                bytes.extend_from_slice(encoded);
                items += b.encoded_items;
            }
        }
        let context = first.context.clone();
        Ok(Batch {
            signal,
            decoded: OnceLock::new(),
            encoded: Some(bytes.freeze()),
            encoded_items: items,
            context,
        })
    }

    /// The signal of this batch.
    pub fn signal(&self) -> Signal {
        self.signal
    }

    /// Read access to the payload, decoding it on first use.
    ///
    /// The receipt check accepts only what prost accepts (the `otlp_proto_decode` fuzz target
    /// asserts it), so decoding checked bytes does not fail. Were it ever to, the error is
    /// logged and processors see an empty stand-in while the bytes stay what the batch is:
    /// counted, spliced and forwarded unchanged, whatever a processor does to the stand-in
    /// (fail open).
    pub fn payload(&self) -> &Payload {
        &self.decoded.get_or_init(|| self.decode_encoded()).payload
    }

    fn decode_encoded(&self) -> Decoded {
        let Some(bytes) = &self.encoded else {
            // Not reached: a batch without bytes is created decoded.
            return Decoded {
                payload: Payload::empty(self.signal),
                stand_in: false,
            };
        };
        match decode_payload(self.signal, bytes) {
            Ok(payload) => Decoded {
                payload,
                stand_in: false,
            },
            Err(e) => {
                tracing::error!(
                    signal = %self.signal,
                    error = %e,
                    "a request that passed the protobuf check failed to decode; \
                     processors see it empty, it is forwarded unchanged"
                );
                Decoded {
                    payload: Payload::empty(self.signal),
                    stand_in: true,
                }
            }
        }
    }

    /// Write access to the payload. Forgets the original bytes: the batch will be encoded
    /// again when exported. Ask for it only when something will really change.
    pub fn payload_mut(&mut self) -> &mut Payload {
        let stand_in = self.decoded.get_or_init(|| self.decode_encoded()).stand_in;
        if !stand_in {
            self.encoded = None;
        }
        match self.decoded.get_mut() {
            Some(decoded) => &mut decoded.payload,
            None => unreachable!("the payload was decoded just above"),
        }
    }

    /// Drops the log records, spans or metric data points whose flag in `keep` is `false`
    /// (items numbered in encounter order, resource by resource, scope by scope, and for
    /// metrics metric by metric; a missing flag keeps its item), then the entries left empty
    /// (metrics without points, scope and resource entries without items). A batch still
    /// holding the bytes it arrived as gets its new encoding by copying the byte ranges of
    /// what stays ([`crate::splice`], [`crate::metric_splice`]), so it is not encoded again
    /// on export (nor decoded, if nothing decoded it yet); a decoded payload is edited to
    /// match. Returns `true` (kept for callers written when metrics were refused).
    pub fn retain_items(&mut self, keep: &[bool]) -> bool {
        let spliced = self.encoded.as_ref().and_then(|b| match self.signal {
            Signal::Metrics => crate::metric_splice::retain_metric_points(b, keep)
                .map(|r| r.bytes)
                .ok(),
            _ => crate::splice::retain_items(b, keep),
        });
        let spliced = match (spliced, self.is_decoded()) {
            // Nothing decoded: the bytes are all there is to change.
            (Some(bytes), false) => {
                let dropped = keep
                    .iter()
                    .take(self.encoded_items)
                    .filter(|k| !**k)
                    .count();
                self.encoded_items -= dropped;
                self.encoded = Some(Bytes::from(bytes));
                return true;
            }
            (spliced, _) => spliced,
        };
        let mut i = 0usize;
        let mut flag = || {
            let k = keep.get(i).copied().unwrap_or(true);
            i += 1;
            k
        };
        let payload = self.payload_mut();
        match payload {
            Payload::Logs(r) => r
                .resource_logs
                .iter_mut()
                .flat_map(|rl| rl.scope_logs.iter_mut())
                .for_each(|sl| sl.log_records.retain(|_| flag())),
            Payload::Traces(r) => r
                .resource_spans
                .iter_mut()
                .flat_map(|rs| rs.scope_spans.iter_mut())
                .for_each(|ss| ss.spans.retain(|_| flag())),
            Payload::Metrics(r) => r
                .resource_metrics
                .iter_mut()
                .flat_map(|rm| rm.scope_metrics.iter_mut())
                .flat_map(|sm| sm.metrics.iter_mut())
                .for_each(|m| match &mut m.data {
                    None => {}
                    Some(Data::Gauge(g)) => g.data_points.retain(|_| flag()),
                    Some(Data::Sum(s)) => s.data_points.retain(|_| flag()),
                    Some(Data::Histogram(h)) => h.data_points.retain(|_| flag()),
                    Some(Data::ExponentialHistogram(h)) => h.data_points.retain(|_| flag()),
                    Some(Data::Summary(s)) => s.data_points.retain(|_| flag()),
                }),
        }
        payload.prune_empty();
        if let Some(bytes) = spliced {
            self.encoded_items = payload.item_count();
            self.encoded = Some(Bytes::from(bytes));
        }
        true
    }

    /// Takes the payload out (empty for bytes that failed to decode, see [`Self::payload`]).
    pub fn into_payload(self) -> Payload {
        self.payload();
        match self.decoded.into_inner() {
            Some(decoded) => decoded.payload,
            None => unreachable!("the payload was decoded just above"),
        }
    }

    /// Number of items (log records, spans, metric data points).
    pub fn item_count(&self) -> usize {
        match self.encoded {
            Some(_) => self.encoded_items,
            None => self.payload().item_count(),
        }
    }

    /// Whether the batch holds no items.
    pub fn is_empty(&self) -> bool {
        self.item_count() == 0
    }

    /// Whether the payload has been decoded (a batch built in memory always is; one received
    /// as protobuf, or merged from received batches, is once something read it).
    pub fn is_decoded(&self) -> bool {
        self.decoded.get().is_some_and(|d| !d.stand_in)
    }

    /// The protobuf bytes the batch arrived as, when it is unchanged since.
    pub fn original_bytes(&self) -> Option<&Bytes> {
        self.encoded.as_ref()
    }

    /// The protobuf encoding: the original bytes when unchanged, else a fresh encoding.
    pub fn to_protobuf(&self) -> Bytes {
        match &self.encoded {
            Some(b) => b.clone(),
            None => Bytes::from(self.payload().encode_to_vec()),
        }
    }

    /// Size of the protobuf encoding in bytes.
    pub fn encoded_len(&self) -> usize {
        match &self.encoded {
            Some(b) => b.len(),
            None => self.payload().encoded_len(),
        }
    }
}

/// prost's decoding of an export request of `signal`.
fn decode_payload(signal: Signal, bytes: &Bytes) -> Result<Payload, prost::DecodeError> {
    match signal {
        Signal::Logs => ExportLogsServiceRequest::decode(bytes.clone()).map(Payload::Logs),
        Signal::Traces => ExportTraceServiceRequest::decode(bytes.clone()).map(Payload::Traces),
        Signal::Metrics => ExportMetricsServiceRequest::decode(bytes.clone()).map(Payload::Metrics),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn signal_codes_are_stable_and_index_per_signal_values() {
        // The codes name signals in the exporters' queue log on disk: they never change.
        assert_eq!(
            [Signal::Logs, Signal::Traces, Signal::Metrics].map(Signal::code),
            [0, 1, 2]
        );
        for s in Signal::ALL {
            assert_eq!(Signal::from_code(s.code()), Some(s));
        }
        assert_eq!(Signal::from_code(3), None);
        let mut names = PerSignal::from_fn(Signal::as_str);
        assert_eq!(names[Signal::Traces], "traces");
        names[Signal::Metrics] = "m";
        let all: Vec<_> = names.iter().map(|(s, n)| (s, *n)).collect();
        assert_eq!(
            all,
            [
                (Signal::Logs, "logs"),
                (Signal::Traces, "traces"),
                (Signal::Metrics, "m")
            ]
        );
        let failed: Result<PerSignal<u8>, Signal> =
            PerSignal::try_from_fn(|s| if s == Signal::Traces { Err(s) } else { Ok(1) });
        assert_eq!(failed, Err(Signal::Traces));
    }

    use super::*;
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};

    fn logs(n: usize) -> ExportLogsServiceRequest {
        ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs {
                    log_records: vec![LogRecord::default(); n],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    #[test]
    fn decode_keeps_bytes_until_mutated() {
        let bytes = Bytes::from(logs(3).encode_to_vec());
        let mut b = Batch::decode(Signal::Logs, bytes.clone()).unwrap();
        assert_eq!(b.item_count(), 3);
        assert_eq!(b.original_bytes(), Some(&bytes));
        assert_eq!(b.to_protobuf(), bytes);
        let _ = b.payload_mut();
        assert!(b.original_bytes().is_none());
        assert_eq!(b.to_protobuf(), bytes);
    }

    #[test]
    fn bytes_that_fail_to_decode_are_forwarded_unchanged() {
        // Checked bytes prost refuses cannot come through `decode` (the check and prost
        // agree), so the batch is built directly: a resource entry cut short.
        let bytes = Bytes::from_static(&[0x0a, 0x05, 0x12]);
        let mut b = Batch {
            signal: Signal::Logs,
            decoded: OnceLock::new(),
            encoded: Some(bytes.clone()),
            encoded_items: 3,
            context: BatchContext::default(),
        };
        assert_eq!(b.payload().item_count(), 0);
        assert!(!b.is_decoded());
        // A processor's change to the stand-in is not exported.
        if let Payload::Logs(r) = b.payload_mut() {
            r.resource_logs.push(Default::default());
        }
        assert_eq!(b.to_protobuf(), bytes);
        assert_eq!(b.item_count(), 3);
        assert!(b.retain_items(&[true, true, true]));
        assert_eq!(b.item_count(), 3);
    }

    #[test]
    fn decode_error_names_signal() {
        let err = Batch::decode(Signal::Traces, Bytes::from_static(&[0xff, 0xff])).unwrap_err();
        assert!(
            err.to_string().starts_with("invalid OTLP traces protobuf"),
            "{err}"
        );
    }

    #[test]
    fn prune_removes_empty_containers() {
        let mut p = Payload::Logs(logs(0));
        p.prune_empty();
        match p {
            Payload::Logs(r) => assert!(r.resource_logs.is_empty()),
            _ => unreachable!(),
        }
    }
}
