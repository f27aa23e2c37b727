//! The `probabilistic_sampler` config, with the collector's field names, defaults and
//! validation.

use serde::Deserialize;
use weir_api::{parse_component_config, ConfigErrors};

use super::otep235::MIN_SAMPLING_PROBABILITY;

/// How the sampling decision is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SamplerMode {
    /// The original FNV-1a hash of the seed and trace id (or log attribute); decisions
    /// equal the collector's bit for bit.
    HashSeed,
    /// OTEP 235: apply a fixed threshold, never raising an arriving item's probability.
    Equalizing,
    /// OTEP 235: multiply the arriving probability by the configured one.
    Proportional,
}

/// Where logs take their randomness from in `hash_seed` mode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum AttributeSource {
    /// The trace id; the `from_attribute` attribute when the trace id is empty.
    #[default]
    #[serde(rename = "traceID")]
    TraceId,
    /// Always the `from_attribute` attribute.
    #[serde(rename = "record")]
    Record,
}

fn default_true() -> bool {
    true
}
fn default_precision() -> i64 {
    4
}

/// `probabilistic_sampler` config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamplerConfig {
    /// Percentage of traces/logs kept; 0 keeps nothing, 100 or more keeps everything.
    /// Read as a 32-bit float, as the collector does. Default: 0.
    #[serde(default)]
    pub sampling_percentage: f32,
    /// Seed of the hash in `hash_seed` mode (and of attribute hashing for logs). Default: 0.
    #[serde(default)]
    pub hash_seed: u32,
    /// `hash_seed`, `equalizing` or `proportional`. Default: `hash_seed`.
    #[serde(default)]
    pub mode: Option<SamplerMode>,
    /// Drop items whose randomness cannot be read (bad tracestate, no trace id) instead of
    /// keeping them. Default: true.
    #[serde(default = "default_true")]
    pub fail_closed: bool,
    /// Hex digits of threshold written in `th` (1-14). Default: 4.
    #[serde(default = "default_precision")]
    pub sampling_precision: i64,
    /// Logs: `traceID` or `record`. Default: `traceID`.
    #[serde(default)]
    pub attribute_source: AttributeSource,
    /// Logs: attribute hashed when there is no trace id (or with `attribute_source:
    /// record`). Default: none.
    #[serde(default)]
    pub from_attribute: String,
    /// Logs: attribute holding a per-record sampling percentage that replaces the
    /// configured one. Default: none.
    #[serde(default)]
    pub sampling_priority: String,
}

impl SamplerConfig {
    /// Parses and validates the YAML section at `path`, reporting every problem.
    pub fn parse(value: &serde_json::Value, path: &str) -> Result<SamplerConfig, ConfigErrors> {
        let cfg: SamplerConfig = parse_component_config(value, path)?;
        let mut errors = ConfigErrors::default();
        let pct = f64::from(cfg.sampling_percentage);
        if !pct.is_finite() {
            errors.push(
                format!("{path}.sampling_percentage"),
                format!("sampling rate is invalid: {pct}%"),
            );
        } else if pct < 0.0 {
            errors.push(
                format!("{path}.sampling_percentage"),
                format!("sampling rate is negative: {pct}%"),
            );
        } else if pct > 0.0 && pct / 100.0 < MIN_SAMPLING_PROBABILITY {
            errors.push(
                format!("{path}.sampling_percentage"),
                format!("sampling rate is too small: {pct}%"),
            );
        }
        if cfg.sampling_precision == 0 {
            errors.push(
                format!("{path}.sampling_precision"),
                "invalid sampling precision: 0",
            );
        } else if !(1..=14).contains(&cfg.sampling_precision) {
            errors.push(
                format!("{path}.sampling_precision"),
                format!(
                    "sampling precision must be between 1 and 14: {}",
                    cfg.sampling_precision
                ),
            );
        }
        if cfg.attribute_source == AttributeSource::Record && cfg.from_attribute.is_empty() {
            errors.push(
                format!("{path}.from_attribute"),
                "attribute_source \"record\" needs from_attribute (the log attribute to hash)",
            );
        }
        errors.into_result(cfg)
    }

    /// The mode in effect (`hash_seed` when not set).
    pub fn effective_mode(&self) -> SamplerMode {
        self.mode.unwrap_or(SamplerMode::HashSeed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_are_the_collectors() {
        let c = SamplerConfig::parse(&json!({"sampling_percentage": 15.3}), "p").unwrap();
        assert_eq!(c.effective_mode(), SamplerMode::HashSeed);
        assert!(c.fail_closed);
        assert_eq!(c.sampling_precision, 4);
        assert_eq!(c.attribute_source, AttributeSource::TraceId);
        assert_eq!(c.hash_seed, 0);
    }

    #[test]
    fn invalid_values_name_their_field() {
        let cases = [
            (json!({"sampling_percentage": -1}), "p.sampling_percentage: sampling rate is negative: -1%"),
            (json!({"sampling_percentage": 1e-20}), "p.sampling_percentage: sampling rate is too small: 0.000000000000000000009999999682655225%"),
            (json!({"sampling_percentage": 1, "sampling_precision": 0}), "p.sampling_precision: invalid sampling precision: 0"),
            (json!({"sampling_percentage": 1, "sampling_precision": 15}), "p.sampling_precision: sampling precision must be between 1 and 14: 15"),
            (json!({"sampling_percentage": 1, "attribute_source": "record"}), "p.from_attribute: attribute_source \"record\" needs from_attribute (the log attribute to hash)"),
        ];
        for (v, want) in cases {
            let got = SamplerConfig::parse(&v, "p").unwrap_err().to_string();
            assert_eq!(got, want);
        }
        let e = SamplerConfig::parse(&json!({"mode": "consistent"}), "p").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("p.mode: unknown variant `consistent`"),
            "{e}"
        );
        let e = SamplerConfig::parse(&json!({"sampling_percent": 1}), "p").unwrap_err();
        assert!(
            e.to_string().contains("unknown field `sampling_percent`"),
            "{e}"
        );
    }
}
