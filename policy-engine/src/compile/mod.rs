//! Validation and compilation of one policy (specification section 8.2). Every problem is
//! collected and worded `<target>: <path>: <message>`; a policy with any problem is inert.
//!
//! Here: the compiled forms, the trace `keep` and [`compile`]; `matchers.rs` compiles the
//! matchers of each signal, `log.rs` the log `keep` grammar, sample key and transform.

/// A log field selector (`$m::Field`: every log message has the same four variants) as the
/// engine's field; `$missing` stands in when none is set, which is an error.
macro_rules! log_selector {
    ($m:ident, $field:expr, $missing:expr, $place:expr, $errs:expr) => {
        match $field {
            None => {
                $errs.push($place, "missing field selector");
                $missing
            }
            Some($m::Field::LogField(f)) => log_field(*f, $place, $errs),
            Some($m::Field::LogAttribute(p)) => Field::Record(path(p, $place, $errs)),
            Some($m::Field::ResourceAttribute(p)) => Field::Resource(path(p, $place, $errs)),
            Some($m::Field::ScopeAttribute(p)) => Field::Scope(path(p, $place, $errs)),
        }
    };
}

mod log;
mod matchers;

use regex::{Regex, RegexBuilder};

use crate::matcher::Matcher;
use crate::record::Field;
use crate::sampling::RateLimiter;
use weir_policy_contract::proto;

pub use log::parse_keep;

/// Compiled regexes are capped so a hostile pattern cannot eat memory.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Builds a regex the way policies need it (search semantics, size-capped).
pub fn build_regex(pattern: &str) -> Result<Regex, regex::Error> {
    RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
}

/// The `keep` of a log policy.
#[derive(Debug)]
pub enum LogKeep {
    /// Keep every matching record.
    All,
    /// Drop every matching record.
    None,
    /// Keep about `percent` % (0 < percent < 100); keep iff randomness >= `threshold`.
    Percent {
        /// The percentage.
        percent: f64,
        /// The 56-bit rejection threshold.
        threshold: u64,
    },
    /// At most N per window (per sample-key value when a sample key is set).
    Rate(RateLimiter),
}

impl LogKeep {
    /// Restrictiveness order: lower sorts first and wins. `none` < lower percentages <
    /// rate limits < `all`. Rate limits rank after percentages because their effective
    /// fraction is unknown; a percentage is a promise about volume, a rate limit a cap.
    pub fn rank(&self) -> (u8, f64) {
        match self {
            LogKeep::None => (0, 0.0),
            LogKeep::Percent { percent, .. } => (1, *percent),
            LogKeep::Rate(_) => (2, 0.0),
            LogKeep::All => (3, 0.0),
        }
    }
}

/// One log transform step.
#[derive(Debug)]
pub enum TransformOp {
    /// Delete the field.
    Remove(Field),
    /// Replace the value, or every regex match in it.
    Redact {
        /// The field.
        field: Field,
        /// Replacement text, a template when `regex` is set.
        replacement: String,
        /// Pattern of the parts to replace.
        regex: Option<Regex>,
    },
    /// Move the value to the attribute `to` (same map for attributes; the record's
    /// attributes for a well-known field).
    Rename {
        /// Source.
        from: Field,
        /// Target key.
        to: String,
        /// Overwrite an existing target.
        upsert: bool,
    },
    /// Set a string value.
    Add {
        /// The field.
        field: Field,
        /// The value.
        value: String,
        /// Overwrite an existing value.
        upsert: bool,
    },
}

/// A log policy's transforms, each list in its normative stage.
#[derive(Debug, Default)]
pub struct LogTransform {
    /// Stage 1.
    pub remove: Vec<TransformOp>,
    /// Stage 2.
    pub redact: Vec<TransformOp>,
    /// Stage 3.
    pub rename: Vec<TransformOp>,
    /// Stage 4.
    pub add: Vec<TransformOp>,
}

impl LogTransform {
    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.remove.is_empty()
            && self.redact.is_empty()
            && self.rename.is_empty()
            && self.add.is_empty()
    }
}

/// Trace sampling mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SamplingMode {
    /// Trace-id (or `rv`) randomness, or a seeded hash of the trace id.
    HashSeed,
    /// Multiply the incoming probability.
    Proportional,
    /// Bring every span to the same probability.
    Equalizing,
}

/// The `keep` of a trace policy.
#[derive(Debug, Clone)]
pub struct TraceKeep {
    /// 0..=100.
    pub percent: f64,
    /// Mode.
    pub mode: SamplingMode,
    /// Hex digits of `th` (1-14).
    pub precision: u32,
    /// Seed for hash_seed mode (0: use the trace id's own randomness).
    pub seed: u32,
    /// Drop when no randomness can be found.
    pub fail_closed: bool,
}

/// What one compiled policy does, per signal.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // one per policy, never moved on the hot path
pub enum Target {
    /// A log policy.
    Log {
        /// ANDed matchers.
        matchers: Vec<Matcher>,
        /// Keep.
        keep: LogKeep,
        /// Consistent-sampling key.
        sample_key: Option<Field>,
        /// Transforms.
        transform: LogTransform,
    },
    /// A metric policy.
    Metric {
        /// ANDed matchers.
        matchers: Vec<Matcher>,
        /// `false` drops.
        keep: bool,
    },
    /// A trace policy.
    Trace {
        /// ANDed matchers.
        matchers: Vec<Matcher>,
        /// Sampling.
        keep: TraceKeep,
    },
}

impl Target {
    /// The matchers.
    pub fn matchers(&self) -> &[Matcher] {
        match self {
            Target::Log { matchers, .. }
            | Target::Metric { matchers, .. }
            | Target::Trace { matchers, .. } => matchers,
        }
    }
}

pub(crate) struct Errors {
    pub(crate) list: Vec<String>,
}

impl Errors {
    pub(crate) fn push(&mut self, place: &str, msg: impl std::fmt::Display) {
        self.list.push(format!("{place}: {msg}"));
    }
}

fn trace_keep(k: Option<&proto::TraceSamplingConfig>, errs: &mut Errors) -> TraceKeep {
    let place = "trace: keep";
    let Some(k) = k else {
        errs.push(place, "required");
        return TraceKeep {
            percent: 100.0,
            mode: SamplingMode::HashSeed,
            precision: 4,
            seed: 0,
            fail_closed: true,
        };
    };
    let percent = f64::from(k.percentage);
    if !(0.0..=100.0).contains(&percent) {
        errs.push(place, format!("percentage {percent} is outside 0..=100"));
    }
    let mode = match k.mode.map(proto::SamplingMode::try_from) {
        None
        | Some(Ok(proto::SamplingMode::Unspecified))
        | Some(Ok(proto::SamplingMode::HashSeed)) => SamplingMode::HashSeed,
        Some(Ok(proto::SamplingMode::Proportional)) => SamplingMode::Proportional,
        Some(Ok(proto::SamplingMode::Equalizing)) => SamplingMode::Equalizing,
        Some(Err(_)) => {
            errs.push(place, "unknown sampling mode");
            SamplingMode::HashSeed
        }
    };
    let precision = k.sampling_precision.unwrap_or(4);
    if !(1..=14).contains(&precision) {
        errs.push(
            place,
            format!("sampling_precision {precision} is outside 1..=14"),
        );
    }
    TraceKeep {
        percent,
        mode,
        precision: precision.clamp(1, 14),
        seed: k.hash_seed.unwrap_or(0),
        fail_closed: k.fail_closed.unwrap_or(true),
    }
}

fn matchers<M>(
    list: &[M],
    target: &str,
    errs: &mut Errors,
    one: fn(&M, &str, &mut Errors) -> Matcher,
) -> Vec<Matcher> {
    if list.is_empty() {
        errs.push(
            &format!("{target}: match"),
            "at least one matcher is required",
        );
    }
    list.iter()
        .enumerate()
        .map(|(i, m)| one(m, &format!("{target}: match[{i}]"), errs))
        .collect()
}

/// Validates and compiles a policy's target. Errors are worded as the specification's
/// section 8.4 shows (`log: match[0]: invalid regex "([bad"`).
pub fn compile(policy: &proto::Policy) -> Result<Target, Vec<String>> {
    let mut errs = Errors { list: vec![] };
    let target = match &policy.target {
        None => {
            errs.list.push("policy has no target".to_string());
            None
        }
        Some(proto::policy::Target::Log(l)) => {
            let matchers = matchers(&l.r#match, "log", &mut errs, matchers::log_matcher);
            let keep = parse_keep(&l.keep).unwrap_or_else(|| {
                errs.push("log: keep", format!("invalid value {:?}", l.keep));
                LogKeep::All
            });
            let sample_key = l.sample_key.as_ref().map(|k| log::sample_key(k, &mut errs));
            let transform = l
                .transform
                .as_ref()
                .map(|t| log::transform(t, &mut errs))
                .unwrap_or_default();
            Some(Target::Log {
                matchers,
                keep,
                sample_key,
                transform,
            })
        }
        Some(proto::policy::Target::Metric(m)) => Some(Target::Metric {
            matchers: matchers(&m.r#match, "metric", &mut errs, matchers::metric_matcher),
            keep: m.keep,
        }),
        Some(proto::policy::Target::Trace(t)) => Some(Target::Trace {
            matchers: matchers(&t.r#match, "trace", &mut errs, matchers::trace_matcher),
            keep: trace_keep(t.keep.as_ref(), &mut errs),
        }),
    };
    match target {
        Some(t) if errs.list.is_empty() => Ok(t),
        _ => Err(errs.list),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_policy_contract::parse::parse_document;

    fn errors(doc: &str) -> Vec<String> {
        let p = parse_document(doc, "t").unwrap().remove(0).policy.unwrap();
        compile(&p).unwrap_err()
    }

    #[test]
    fn keep_grammar() {
        for ok in [
            "all", "none", "", "50%", ".01%", "0%", "100%", "1/s", "100/s", "1/5s", "1/300s",
            "10/5m", "1/m",
        ] {
            assert!(parse_keep(ok).is_some(), "{ok}");
        }
        for bad in [
            "banana",
            "1.5/s",
            "1/0.5m",
            "101%",
            "-1%",
            "0/s",
            "1/0s",
            "5/h",
            "50",
            "%",
            // Multi-byte characters where the unit is read (they panicked the parser).
            "10/é",
            "1/5ś",
            "1/\u{1F600}",
        ] {
            assert!(parse_keep(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn every_error_of_a_policy_is_reported_with_its_place() {
        let errs = errors(
            r#"{"id":"x","name":"x","log":{"match":[
                {"log_field":"body","regex":"([bad"},
                {"log_attribute":[],"exists":true},
                {"log_attribute":"k","equals":{"hex_value":"xyz"}},
                {"log_field":"body"}],
              "keep":"1.5/s",
              "transform":{"redact":[{"log_field":"body","regex":"(["}],"rename":[{"from_log_attribute":"a","to":""}]}}}"#,
        );
        assert_eq!(
            errs,
            vec![
                r#"log: match[0]: invalid regex "([bad""#,
                "log: match[1]: attribute has empty path",
                r#"log: match[2]: invalid hex_value "xyz""#,
                "log: match[3]: missing match type",
                r#"log: keep: invalid value "1.5/s""#,
                r#"log: transform: redact[0]: invalid regex "([""#,
                "log: transform: rename[0]: to must not be empty",
            ]
        );
    }

    #[test]
    fn trace_keep_validation() {
        let errs = errors(
            r#"{"id":"x","name":"x","trace":{"match":[{"span_kind":"unspecified"}],"keep":{"percentage":150,"sampling_precision":20}}}"#,
        );
        assert_eq!(
            errs,
            vec![
                "trace: match[0]: span_kind is unspecified",
                "trace: keep: percentage 150 is outside 0..=100",
                "trace: keep: sampling_precision 20 is outside 1..=14",
            ]
        );
    }
}
