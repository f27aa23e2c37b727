//! Drops log records whose severity number is below `min_severity` (default 9, INFO).
//!
//! ```yaml
//! processors:
//!   wasm/severity:
//!     module: severity_filter.wasm
//!     config: { min_severity: 13 }   # keep WARN and above
//! ```
//! Records with no severity (0) are kept unless `drop_unset: true`. With `service: checkout`
//! only records whose resource has `service.name` = `checkout` are filtered ("drop DEBUG of
//! one service"); other services' records are all kept.

use weir_wasm_sdk::{export, Error, Logs, Processor};

struct SeverityFilter {
    min_severity: i32,
    drop_unset: bool,
    service: Option<String>,
}

impl Processor for SeverityFilter {
    fn init(config: &weir_wasm_sdk::serde_json::Value) -> Result<Self, Error> {
        let min_severity = match &config["min_severity"] {
            v if v.is_null() => 9,
            v => v
                .as_i64()
                .filter(|n| (0..=24).contains(n))
                .ok_or_else(|| Error::new(format!("min_severity must be 0..24, got {v}")))?
                as i32,
        };
        Ok(SeverityFilter {
            min_severity,
            drop_unset: config["drop_unset"].as_bool().unwrap_or(false),
            service: config["service"].as_str().map(str::to_string),
        })
    }

    fn process_logs(&mut self, logs: &mut Logs<'_>) -> Result<(), Error> {
        logs.retain_view(|record| {
            if let Some(service) = &self.service {
                if record.resource().attribute_str("service.name") != Some(service) {
                    return true;
                }
            }
            let severity = record.severity_number();
            (severity == 0 && !self.drop_unset) || severity >= self.min_severity
        })
    }
}

export!(SeverityFilter, logs);
