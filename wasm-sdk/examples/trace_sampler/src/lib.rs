//! Keeps one trace in `one_in` (default 10), deciding by the trace id so that all spans of a
//! trace, on every Weir instance, share the decision. The last 8 bytes of a W3C trace id are
//! random, so their value modulo `one_in` picks traces evenly.
//!
//! ```yaml
//! processors:
//!   wasm/sample:
//!     module: trace_sampler.wasm
//!     config: { one_in: 4 }
//! ```
//! Spans without a valid 16-byte trace id are kept.

use weir_wasm_sdk::{export, Error, Processor, Spans};

struct TraceSampler {
    one_in: u64,
}

fn keep(trace_id: &[u8], one_in: u64) -> bool {
    let Ok(id) = <[u8; 16]>::try_from(trace_id) else {
        return true;
    };
    let mut low = [0u8; 8];
    low.copy_from_slice(&id[8..]);
    u64::from_be_bytes(low) % one_in == 0
}

impl Processor for TraceSampler {
    fn init(config: &weir_wasm_sdk::serde_json::Value) -> Result<Self, Error> {
        let one_in = match &config["one_in"] {
            v if v.is_null() => 10,
            v => v.as_u64().filter(|n| *n >= 1).ok_or_else(|| {
                Error::new(format!("one_in must be a whole number >= 1, got {v}"))
            })?,
        };
        Ok(TraceSampler { one_in })
    }

    fn process_spans(&mut self, spans: &mut Spans<'_>) -> Result<(), Error> {
        spans.retain_view(|span| keep(span.trace_id(), self.one_in))
    }
}

export!(TraceSampler, traces);
