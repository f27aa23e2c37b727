//! Drops the records a rule matches: the sandboxed twin of a policy with `keep: none` on a
//! matcher. For logs the rule looks at one field; for spans at the name or an attribute; for
//! metrics at the metric name (`field: name`), dropping all its data points.
//!
//! ```yaml
//! processors:
//!   wasm/drop_health:
//!     module: drop_matching.wasm
//!     config:
//!       field: attributes.http.route   # body | severity_text | name | attributes.<key>
//!       equals: /healthz               # or: contains: "..."  or: severity_below: 9
//! ```
//! Several of `equals`, `contains`, `severity_below` all have to hold (AND), like the
//! matchers of one policy. For metrics, `field: name` drops whole metrics and
//! `field: attributes.<key>` drops the data points whose attribute matches.

use weir_wasm_sdk::{export, Error, LogRecordView, Logs, Metrics, Processor, SpanView, Spans};

enum Field {
    Body,
    SeverityText,
    Name,
    Attribute(String),
}

struct DropMatching {
    field: Option<Field>,
    equals: Option<String>,
    contains: Option<String>,
    severity_below: Option<i32>,
}

impl DropMatching {
    fn text_matches(&self, value: Option<&str>) -> bool {
        if self.field.is_none() {
            return true;
        }
        let Some(v) = value else {
            return false;
        };
        self.equals.as_deref().is_none_or(|e| v == e)
            && self.contains.as_deref().is_none_or(|c| v.contains(c))
    }

    fn log_matches(&self, r: &LogRecordView<'_>) -> bool {
        let value = match &self.field {
            None => None,
            Some(Field::Body) => r.body_str(),
            Some(Field::SeverityText) => Some(r.severity_text()),
            Some(Field::Name) => None,
            Some(Field::Attribute(k)) => r.attribute_str(k),
        };
        self.text_matches(value) && self.severity_below.is_none_or(|s| r.severity_number() < s)
    }

    fn span_matches(&self, s: &SpanView<'_>) -> bool {
        let value = match &self.field {
            None => None,
            Some(Field::Name) => Some(s.name()),
            Some(Field::Attribute(k)) => s.attribute_str(k),
            Some(_) => None,
        };
        self.text_matches(value) && self.severity_below.is_none()
    }
}

impl Processor for DropMatching {
    fn init(config: &weir_wasm_sdk::serde_json::Value) -> Result<Self, Error> {
        let text = |k: &str| config[k].as_str().map(str::to_string);
        let field = match config["field"].as_str() {
            None => None,
            Some("body") => Some(Field::Body),
            Some("severity_text") => Some(Field::SeverityText),
            Some("name") => Some(Field::Name),
            Some(f) => match f.strip_prefix("attributes.") {
                Some(k) => Some(Field::Attribute(k.to_string())),
                None => {
                    return Err(Error::new(format!(
                        "field must be body, severity_text, name or attributes.<key>, got {f:?}"
                    )))
                }
            },
        };
        let rule = DropMatching {
            equals: text("equals"),
            contains: text("contains"),
            severity_below: config["severity_below"].as_i64().map(|n| n as i32),
            field,
        };
        if rule.field.is_some() != (rule.equals.is_some() || rule.contains.is_some()) {
            return Err(Error::new(
                "field needs equals or contains, and they need field",
            ));
        }
        if rule.field.is_none() && rule.severity_below.is_none() {
            return Err(Error::new(
                "an empty rule would drop everything; give field or severity_below",
            ));
        }
        Ok(rule)
    }

    fn process_logs(&mut self, logs: &mut Logs<'_>) -> Result<(), Error> {
        logs.retain_view(|r| !self.log_matches(r))
    }

    fn process_spans(&mut self, spans: &mut Spans<'_>) -> Result<(), Error> {
        spans.retain_view(|s| !self.span_matches(s))
    }

    fn process_metrics(&mut self, metrics: &mut Metrics<'_>) -> Result<(), Error> {
        // Both read the bytes in place (no decode) and answer with verdicts.
        match &self.field {
            Some(Field::Name) => {
                metrics.retain_metrics_view(|m| !self.text_matches(Some(m.name())))
            }
            Some(Field::Attribute(k)) => {
                metrics.retain_points_view(|p| !self.text_matches(p.attribute_str(k)))
            }
            _ => Ok(()),
        }
    }
}

export!(DropMatching);
