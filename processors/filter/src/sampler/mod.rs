//! The `probabilistic_sampler` processor for traces and logs, compatible with the
//! collector's.
//!
//! ```yaml
//! processors:
//!   probabilistic_sampler:
//!     sampling_percentage: 15.3
//!     hash_seed: 22            # mode: hash_seed (default)
//!   probabilistic_sampler/otep235:
//!     sampling_percentage: 10
//!     mode: equalizing         # or proportional; writes ot=th:..;rv:.. on kept spans
//!     sampling_precision: 4
//!     fail_closed: true
//!   probabilistic_sampler/logs:
//!     sampling_percentage: 15
//!     attribute_source: record
//!     from_attribute: log.id
//!     sampling_priority: priority
//! ```
//!
//! `hash_seed` mode keeps an item when `FNV-1a32(seed as 4 LE bytes ++ trace id) & 0x3fff`
//! is below `uint32(float32(percentage) * float32(163.84))`, exactly the collector's
//! arithmetic, so collectors and Weir edges sharing a seed agree on every trace. Like the
//! collector, kept spans get `ot=rv:..;th:..` in their tracestate (kept log records get
//! `sampling.randomness`/`sampling.threshold` attributes) in every mode, and a span whose
//! tracestate already carries `rv`/`th` is left to the OTEP 235 modes (in `hash_seed` mode
//! it counts as an error: dropped when `fail_closed`). `sampling.priority` on a span
//! forces keep (> 0) or drop (0).

pub mod config;
pub mod otep235;

use std::sync::Arc;

use weir_api::otlp::common::v1::{any_value, AnyValue, KeyValue};
use weir_api::otlp::logs::v1::LogRecord;
use weir_api::otlp::trace::v1::Span;
use weir_api::{
    Batch, BuildContext, BuildError, ConfigErrors, Consumer, Payload, ProcessError, Processor,
    ProcessorConfig, ProcessorFactory, Signal, SignalSet, Stage,
};

use crate::ottl::value::{any_as_string, map_get};
pub use config::{AttributeSource, SamplerConfig, SamplerMode};
use otep235::{probability_to_threshold, randomness_from_hash, Randomness, Threshold, TraceState};

/// The decision rule of the configured mode.
#[derive(Debug, Clone)]
enum Rule {
    Never,
    Hash { threshold: Threshold },
    Equalizing { threshold: Threshold },
    Proportional { ratio: f64 },
}

/// A configured sampler: decides per span or log record.
#[derive(Debug, Clone)]
pub struct Sampler {
    rule: Rule,
    seed: u32,
    precision: u32,
    fail_closed: bool,
    logs_use_trace_id: bool,
    from_attribute: Option<String>,
    priority_attribute: Option<String>,
}

/// The percentage threshold of the legacy hash: `uint32(pct * percentageScaleFactor)`,
/// computed in 32-bit floats and truncated, as in the collector.
pub fn hash_scaled_rate(percentage: f32) -> u32 {
    let pct = percentage.min(100.0);
    (pct * 163.84f32) as u32
}

impl Sampler {
    /// Builds the sampler for a validated config.
    pub fn new(cfg: &SamplerConfig) -> Sampler {
        let pct = cfg.sampling_percentage.min(100.0);
        let precision = cfg.sampling_precision.clamp(1, 14) as u32;
        let ratio = (f64::from(pct) / 100.0).max(otep235::MIN_SAMPLING_PROBABILITY);
        let rule = if pct <= 0.0 {
            Rule::Never
        } else {
            match cfg.effective_mode() {
                SamplerMode::Equalizing => Rule::Equalizing {
                    threshold: probability_to_threshold(ratio, precision)
                        .unwrap_or(Threshold::ALWAYS),
                },
                SamplerMode::Proportional => Rule::Proportional { ratio },
                SamplerMode::HashSeed => match hash_scaled_rate(pct) {
                    0 => Rule::Never,
                    scaled => Rule::Hash {
                        threshold: Threshold::from_unsigned(
                            u64::from(otep235::NUM_HASH_BUCKETS - scaled) << 42,
                        )
                        .unwrap_or(Threshold::ALWAYS),
                    },
                },
            }
        };
        let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_string());
        Sampler {
            rule,
            seed: cfg.hash_seed,
            precision,
            fail_closed: cfg.fail_closed,
            logs_use_trace_id: cfg.attribute_source == AttributeSource::TraceId,
            from_attribute: non_empty(&cfg.from_attribute),
            priority_attribute: non_empty(&cfg.sampling_priority),
        }
    }

    fn decide(&self, arriving: Option<Threshold>) -> Threshold {
        match &self.rule {
            Rule::Never => Threshold::NEVER,
            Rule::Hash { threshold } => *threshold,
            Rule::Equalizing { threshold } => match arriving {
                Some(t) if *threshold < t => t,
                _ => *threshold,
            },
            Rule::Proportional { ratio } => {
                let incoming = arriving.map_or(1.0, Threshold::probability);
                probability_to_threshold(incoming * ratio, self.precision)
                    .unwrap_or(Threshold::NEVER)
            }
        }
    }

    fn failed(&self) -> Threshold {
        if self.fail_closed {
            Threshold::NEVER
        } else {
            Threshold::ALWAYS
        }
    }

    /// Decides one span: whether it is kept, and its new tracestate when that changes.
    pub fn span(&self, span: &Span) -> (bool, Option<String>) {
        let trace_id = id16(&span.trace_id);
        let parsed = TraceState::parse(&span.trace_state);
        // (randomness; None = missing), carrier, whether reading them failed
        let hashed = || trace_id.map(|id| randomness_from_hash(&id, self.seed));
        let (rnd, mut carrier, mut failed) = match (&self.rule, parsed) {
            (Rule::Hash { .. }, Err(_)) => (hashed(), None, true),
            (_, Err(_)) => (None, None, true),
            (Rule::Never, Ok(ts)) => (Some(Randomness::ALL_PROBABILITIES), Some(ts), false),
            (Rule::Hash { .. }, Ok(mut ts)) => {
                let rnd = hashed();
                if ts.rvalue().is_some() || ts.threshold().is_some() {
                    // Already under OTEP 235 sampling: leave the tracestate alone.
                    (rnd, None, true)
                } else {
                    ts.set_rvalue(rnd.unwrap_or(Randomness::ALL_PROBABILITIES));
                    (rnd, Some(ts), false)
                }
            }
            (_, Ok(ts)) => {
                let rnd = ts
                    .rvalue()
                    .or(trace_id.map(|id| Randomness::from_trace_id(&id)));
                (rnd, Some(ts), false)
            }
        };
        if !failed {
            failed = consistency_failed(rnd, carrier.as_mut());
        }
        let mut threshold = if failed {
            self.failed()
        } else {
            self.decide(carrier.as_ref().and_then(TraceState::threshold))
        };
        match span_priority(&span.attributes) {
            Some(true) => threshold = Threshold::ALWAYS,
            Some(false) => threshold = Threshold::NEVER,
            None => {}
        }
        let sampled = threshold.should_sample(rnd.unwrap_or(Randomness::ALL_PROBABILITIES));
        let mut new_state = None;
        if let (true, Some(mut ts)) = (sampled, carrier) {
            // A refused update (it would raise the probability) keeps the arriving value.
            let _ = ts.update_threshold(threshold);
            let s = ts.serialize();
            if s != span.trace_state {
                new_state = Some(s);
            }
        }
        (sampled, new_state)
    }

    /// Decides one log record: whether it is kept, and the sampling attributes to set on it.
    pub fn log(&self, rec: &LogRecord) -> (bool, Vec<(&'static str, Option<String>)>) {
        let trace_id = id16(&rec.trace_id);
        let parsed = LogCarrier::parse(&rec.attributes);
        let (rnd, mut carrier, mut failed) = match (&self.rule, parsed) {
            (Rule::Hash { .. }, Err(())) => (self.log_hash_randomness(rec, trace_id), None, true),
            (_, Err(())) => (None, None, true),
            (Rule::Never, Ok(c)) => (Some(Randomness::ALL_PROBABILITIES), Some(c), false),
            (Rule::Hash { .. }, Ok(mut c)) => {
                let rnd = self.log_hash_randomness(rec, trace_id);
                if c.ts.rvalue().is_some() || c.ts.threshold().is_some() {
                    (rnd, None, true)
                } else {
                    if let Some(r) = rnd {
                        c.ts.set_rvalue(r);
                        c.rvalue_set = true;
                    }
                    (rnd, Some(c), false)
                }
            }
            (_, Ok(c)) => {
                let rnd =
                    c.ts.rvalue()
                        .or(trace_id.map(|id| Randomness::from_trace_id(&id)));
                (rnd, Some(c), false)
            }
        };
        if !failed {
            let had_threshold = carrier.as_ref().is_some_and(|c| c.ts.threshold().is_some());
            failed = consistency_failed(rnd, carrier.as_mut().map(|c| &mut c.ts));
            if let Some(c) = carrier.as_mut() {
                c.threshold_cleared = had_threshold && c.ts.threshold().is_none();
            }
        }
        let mut threshold = if failed {
            self.failed()
        } else {
            self.decide(carrier.as_ref().and_then(|c| c.ts.threshold()))
        };
        if let Some(t) = self.log_priority(rec) {
            threshold = t;
        }
        let sampled = threshold.should_sample(rnd.unwrap_or(Randomness::ALL_PROBABILITIES));
        let mut changes = Vec::new();
        if let (true, Some(mut c)) = (sampled, carrier) {
            if c.rvalue_set {
                changes.push(("sampling.randomness", c.ts.rvalue().map(Randomness::rvalue)));
            }
            if c.threshold_cleared {
                changes.push(("sampling.threshold", None));
            }
            if c.ts.update_threshold(threshold).is_ok() {
                changes.push(("sampling.threshold", Some(threshold.tvalue())));
            }
        }
        (sampled, changes)
    }

    /// `hash_seed` randomness of a log record: the trace id (unless `attribute_source:
    /// record`), else the `from_attribute` value when present and non-empty.
    fn log_hash_randomness(
        &self,
        rec: &LogRecord,
        trace_id: Option<[u8; 16]>,
    ) -> Option<Randomness> {
        if self.logs_use_trace_id {
            if let Some(id) = trace_id {
                return Some(randomness_from_hash(&id, self.seed));
            }
        }
        let v = map_get(&rec.attributes, self.from_attribute.as_ref()?)?;
        let bytes = attribute_bytes(v);
        (!bytes.is_empty()).then(|| randomness_from_hash(&bytes, self.seed))
    }

    fn log_priority(&self, rec: &LogRecord) -> Option<Threshold> {
        let attr = self.priority_attribute.as_ref()?;
        let min_prob = match map_get(&rec.attributes, attr)?.value.as_ref()? {
            any_value::Value::DoubleValue(d) => d / 100.0,
            any_value::Value::IntValue(i) => *i as f64 / 100.0,
            _ => return None,
        };
        if min_prob == 0.0 {
            return None;
        }
        probability_to_threshold(min_prob, self.precision).ok()
    }
}

/// Checks an arriving threshold against the randomness; an inconsistent one is cleared.
/// Returns whether the item failed (no randomness, or inconsistent).
fn consistency_failed(rnd: Option<Randomness>, carrier: Option<&mut TraceState>) -> bool {
    let Some(rnd) = rnd else { return true };
    if let Some(ts) = carrier {
        if let Some(t) = ts.threshold() {
            if !t.should_sample(rnd) {
                ts.clear_threshold();
                return true;
            }
        }
    }
    false
}

/// A non-empty (not all-zero) 16-byte trace id.
fn id16(id: &[u8]) -> Option<[u8; 16]> {
    let id: [u8; 16] = id.try_into().ok()?;
    id.iter().any(|b| *b != 0).then_some(id)
}

fn attribute_bytes(v: &AnyValue) -> Vec<u8> {
    match &v.value {
        Some(any_value::Value::BytesValue(b)) => b.clone(),
        _ => any_as_string(Some(v)).into_bytes(),
    }
}

/// OpenTracing's `sampling.priority`: Some(true) keeps, Some(false) drops.
fn span_priority(attrs: &[KeyValue]) -> Option<bool> {
    let v = match map_get(attrs, "sampling.priority")?.value.as_ref()? {
        any_value::Value::IntValue(i) => *i as f64,
        any_value::Value::DoubleValue(d) => *d,
        any_value::Value::StringValue(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    if v == 0.0 {
        Some(false)
    } else if v > 0.0 {
        Some(true)
    } else {
        None
    }
}

/// Sampling state of a log record, carried in its `sampling.threshold` and
/// `sampling.randomness` attributes.
struct LogCarrier {
    ts: TraceState,
    rvalue_set: bool,
    threshold_cleared: bool,
}

impl LogCarrier {
    fn parse(attrs: &[KeyValue]) -> Result<LogCarrier, ()> {
        let mut ts = TraceState::default();
        let text = |key: &str| match map_get(attrs, key).and_then(|v| v.value.as_ref()) {
            Some(any_value::Value::StringValue(s)) if !s.is_empty() => Some(s.as_str()),
            _ => None,
        };
        if let Some(t) = text("sampling.threshold") {
            ts.update_threshold(Threshold::from_tvalue(t).map_err(|_| ())?)
                .map_err(|_| ())?;
        }
        if let Some(r) = text("sampling.randomness") {
            ts.set_rvalue(Randomness::from_rvalue(r).map_err(|_| ())?);
        }
        Ok(LogCarrier {
            ts,
            rvalue_set: false,
            threshold_cleared: false,
        })
    }
}

fn put_str(attrs: &mut Vec<KeyValue>, key: &str, value: Option<String>) {
    match value {
        None => attrs.retain(|kv| kv.key != key),
        Some(v) => {
            let value = Some(AnyValue {
                value: Some(any_value::Value::StringValue(v)),
            });
            match attrs.iter_mut().find(|kv| kv.key == key) {
                Some(kv) => kv.value = value,
                None => attrs.push(KeyValue {
                    key: key.to_string(),
                    value,
                    ..Default::default()
                }),
            }
        }
    }
}

/// The running processor.
pub struct SamplerProcessor {
    sampler: Sampler,
}

impl SamplerProcessor {
    pub fn new(sampler: Sampler) -> Self {
        SamplerProcessor { sampler }
    }
}

impl Processor for SamplerProcessor {
    fn process(&self, batch: &mut Batch) -> Result<(), ProcessError> {
        match batch.payload() {
            Payload::Traces(req) => {
                let decisions: Vec<(bool, Option<String>)> = req
                    .resource_spans
                    .iter()
                    .flat_map(|rs| &rs.scope_spans)
                    .flat_map(|ss| &ss.spans)
                    .map(|s| self.sampler.span(s))
                    .collect();
                if decisions.iter().all(|(keep, ts)| *keep && ts.is_none()) {
                    return Ok(());
                }
                let Payload::Traces(req) = batch.payload_mut() else {
                    return Ok(());
                };
                let mut it = decisions.into_iter();
                for rs in &mut req.resource_spans {
                    for ss in &mut rs.scope_spans {
                        ss.spans.retain_mut(|span| match it.next() {
                            Some((keep, ts)) => {
                                if let (true, Some(ts)) = (keep, ts) {
                                    span.trace_state = ts;
                                }
                                keep
                            }
                            None => true,
                        });
                    }
                    rs.scope_spans.retain(|ss| !ss.spans.is_empty());
                }
                req.resource_spans.retain(|rs| !rs.scope_spans.is_empty());
            }
            Payload::Logs(req) => {
                let decisions: Vec<_> = req
                    .resource_logs
                    .iter()
                    .flat_map(|rl| &rl.scope_logs)
                    .flat_map(|sl| &sl.log_records)
                    .map(|l| self.sampler.log(l))
                    .collect();
                if decisions.iter().all(|(keep, ch)| *keep && ch.is_empty()) {
                    return Ok(());
                }
                let Payload::Logs(req) = batch.payload_mut() else {
                    return Ok(());
                };
                let mut it = decisions.into_iter();
                for rl in &mut req.resource_logs {
                    for sl in &mut rl.scope_logs {
                        sl.log_records.retain_mut(|rec| match it.next() {
                            Some((keep, changes)) => {
                                for (k, v) in changes {
                                    put_str(&mut rec.attributes, k, v);
                                }
                                keep
                            }
                            None => true,
                        });
                    }
                    rl.scope_logs.retain(|sl| !sl.log_records.is_empty());
                }
                req.resource_logs.retain(|rl| !rl.scope_logs.is_empty());
            }
            // The factory only offers traces and logs.
            Payload::Metrics(_) => {}
        }
        Ok(())
    }
}

/// Factory of the `probabilistic_sampler` processor type.
pub struct SamplerFactory;

impl ProcessorFactory for SamplerFactory {
    fn signals(&self) -> SignalSet {
        SignalSet::of(&[Signal::Traces, Signal::Logs])
    }

    fn parse(
        &self,
        config: &serde_json::Value,
        path: &str,
    ) -> Result<Box<dyn ProcessorConfig>, ConfigErrors> {
        let cfg = SamplerConfig::parse(config, path)?;
        Ok(Box::new(SamplerProcessorConfig {
            sampler: Sampler::new(&cfg),
        }))
    }
}

struct SamplerProcessorConfig {
    sampler: Sampler,
}

impl ProcessorConfig for SamplerProcessorConfig {
    fn build(
        &self,
        ctx: &BuildContext,
        signal: Signal,
        next: Arc<dyn Consumer>,
    ) -> Result<Arc<dyn Stage>, BuildError> {
        if signal == Signal::Metrics {
            return Err(BuildError::UnsupportedSignal {
                id: ctx.id.clone(),
                signal,
            });
        }
        let processor = Arc::new(SamplerProcessor::new(self.sampler.clone()));
        Ok(crate::stage::guarded(ctx, signal, processor, next))
    }
}
