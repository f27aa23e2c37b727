//! Keeps whole traces that matter, samples the rest: within each batch, every span of a
//! trace that has a span with status ERROR, an `exception` event, or a span slower than
//! `slow_ms` is kept; spans of other traces are kept for `sample_percent` of trace ids
//! (decided by the trace id, so all spans of a trace share the decision on every Weir).
//! Services listed in `always_keep` (resource `service.name`) are never sampled.
//!
//! ```yaml
//! processors:
//!   wasm/tail:
//!     module: tail_keeper.wasm
//!     config: { slow_ms: 500, sample_percent: 10, always_keep: [payments] }
//!     on_error: pass     # sampling: on failure keep everything rather than lose errors
//! ```
//!
//! The decision is per batch (put a `batch` or `groupbytrace` stage before it for whole
//! traces); it reads spans in place and answers with verdicts, so nothing is decoded.

use std::collections::HashSet;

use weir_wasm_sdk::{export, Error, Processor, SpanView, Spans};

/// The processor: its config.
pub struct TailKeeper {
    slow_nanos: u64,
    /// Keep a trace when the low 64 bits of its id modulo 10,000 fall below this.
    sample_below: u64,
    always_keep: Vec<String>,
}

fn interesting(span: &SpanView<'_>, slow_nanos: u64) -> bool {
    span.is_error()
        || span.duration_nanos() >= slow_nanos
        || span.events().any(|e| e.name() == "exception")
}

fn sampled(trace_id: &[u8], sample_below: u64) -> bool {
    let Ok(id) = <[u8; 16]>::try_from(trace_id) else {
        return true;
    };
    let mut low = [0u8; 8];
    low.copy_from_slice(&id[8..]);
    u64::from_be_bytes(low) % 10_000 < sample_below
}

impl Processor for TailKeeper {
    fn init(config: &weir_wasm_sdk::serde_json::Value) -> Result<Self, Error> {
        let slow_ms = match &config["slow_ms"] {
            v if v.is_null() => 1_000,
            v => v
                .as_u64()
                .ok_or_else(|| Error::new(format!("slow_ms must be a whole number, got {v}")))?,
        };
        let percent = match &config["sample_percent"] {
            v if v.is_null() => 10.0,
            v => v
                .as_f64()
                .filter(|p| (0.0..=100.0).contains(p))
                .ok_or_else(|| Error::new(format!("sample_percent must be 0..100, got {v}")))?,
        };
        let always_keep = match &config["always_keep"] {
            v if v.is_null() => Vec::new(),
            v => v
                .as_array()
                .and_then(|a| a.iter().map(|s| s.as_str().map(str::to_string)).collect())
                .ok_or_else(|| {
                    Error::new(format!(
                        "always_keep must be a list of service names, got {v}"
                    ))
                })?,
        };
        Ok(TailKeeper {
            slow_nanos: slow_ms.saturating_mul(1_000_000),
            sample_below: (percent * 100.0).round() as u64,
            always_keep,
        })
    }

    fn process_spans(&mut self, spans: &mut Spans<'_>) -> Result<(), Error> {
        // Pass 1: the traces worth keeping whole. retain_view visits every span once, in
        // order; keeping everything here records no drop.
        let mut keep_traces: HashSet<Vec<u8>> = HashSet::new();
        spans.retain_view(|s| {
            if interesting(s, self.slow_nanos) {
                keep_traces.insert(s.trace_id().to_vec());
            }
            true
        })?;
        // Pass 2: the verdicts.
        spans.retain_view(|s| {
            let service = s.resource().attribute_str("service.name").unwrap_or("");
            self.always_keep.iter().any(|k| k == service)
                || keep_traces.contains(s.trace_id())
                || sampled(s.trace_id(), self.sample_below)
        })
    }
}

export!(TailKeeper, traces);

#[cfg(test)]
mod tests {
    use super::*;
    use weir_wasm_sdk::otlp::trace::v1::{span::Event, status::StatusCode, Span, Status};
    use weir_wasm_sdk::serde_json::json;
    use weir_wasm_sdk::testing::{kv, run_spans, span, traces_request};

    /// A trace id whose low 64 bits are `low` (sampled when `low % 10_000 < 100 * percent`).
    fn trace(low: u64) -> [u8; 16] {
        let mut id = [7u8; 16];
        id[8..].copy_from_slice(&low.to_be_bytes());
        id
    }

    fn timed(name: &str, trace_id: [u8; 16], millis: u64) -> Span {
        Span {
            start_time_unix_nano: 1_000_000_000,
            end_time_unix_nano: 1_000_000_000 + millis * 1_000_000,
            ..span(name, trace_id, [1; 8])
        }
    }

    #[test]
    fn keeps_error_slow_and_exception_traces_whole_and_samples_the_rest() {
        let mut p = TailKeeper::init(&json!({"slow_ms": 500, "sample_percent": 10})).unwrap();
        let error = Span {
            status: Some(Status {
                code: StatusCode::Error as i32,
                message: "boom".into(),
            }),
            ..timed("error", trace(1), 5)
        };
        let exception = Span {
            events: vec![Event {
                name: "exception".into(),
                ..Default::default()
            }],
            ..timed("exception", trace(2), 5)
        };
        let batch = traces_request(
            vec![kv("service.name", "shop")],
            vec![
                timed("error-sibling", trace(1), 5),
                error,
                timed("slow", trace(3), 900),
                timed("slow-sibling", trace(3), 1),
                exception,
                timed("sampled-in", trace(999), 1),   // 999 < 1000
                timed("sampled-out", trace(1000), 1), // 1000 >= 1000
            ],
        );
        let out = run_spans(&mut p, &batch).unwrap();
        assert_eq!(
            out.span_names(),
            [
                "error-sibling",
                "error",
                "slow",
                "slow-sibling",
                "exception",
                "sampled-in"
            ]
        );
        assert_eq!((out.kept, out.dropped), (6, 1));
    }

    #[test]
    fn always_keep_services_are_never_sampled() {
        let mut p =
            TailKeeper::init(&json!({"sample_percent": 0, "always_keep": ["payments"]})).unwrap();
        let mut batch = traces_request(
            vec![kv("service.name", "payments")],
            vec![timed("pay", trace(5), 1)],
        );
        batch.resource_spans.extend(
            traces_request(
                vec![kv("service.name", "web")],
                vec![timed("page", trace(5), 1)],
            )
            .resource_spans,
        );
        let out = run_spans(&mut p, &batch).unwrap();
        assert_eq!(out.span_names(), ["pay"]);
    }
}
