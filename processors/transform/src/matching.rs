//! The Collector's `include` / `exclude` match properties of the `attributes` processor
//! (`filterconfig.MatchProperties`), compiled per signal onto the filter processor's
//! legacy matcher.

use serde::Deserialize;
use weir_api::{ConfigErrors, Signal};
use weir_filter::filter::legacy::{
    parse_match_type, AttributeMatch, IncludeExclude, LibraryMatch, Properties, PropertiesBuilder,
};

/// `log_severity_number: {min, match_undefined}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeverityMatch {
    /// Lowest severity matched: 1-24 or a name (`INFO`, `WARN2`). Required.
    pub min: serde_json::Value,
    /// Whether records without a severity match. Default: false.
    #[serde(default)]
    pub match_undefined: bool,
}

/// The regexp cache options; accepted and without effect.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegexpCache {
    /// No effect. Default: false.
    pub cacheenabled: bool,
    /// No effect. Default: 0.
    pub cachemaxnumentries: u64,
}

/// One `include` or `exclude` block.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MatchProperties {
    /// `strict` or `regexp`. Required.
    pub match_type: Option<String>,
    /// Regexp cache settings (no effect).
    pub regexp: Option<RegexpCache>,
    /// Spans: any may match the resource's `service.name`.
    #[serde(deserialize_with = "weir_api::config::string_list")]
    pub services: Vec<String>,
    /// Spans: any may match the span name.
    #[serde(deserialize_with = "weir_api::config::string_list")]
    pub span_names: Vec<String>,
    /// Logs: any may match the body (as a string).
    #[serde(deserialize_with = "weir_api::config::string_list")]
    pub log_bodies: Vec<String>,
    /// Logs: any may match the severity text.
    #[serde(deserialize_with = "weir_api::config::string_list")]
    pub log_severity_texts: Vec<String>,
    /// Logs: minimum severity.
    pub log_severity_number: Option<SeverityMatch>,
    /// Metrics: any may match the metric name.
    #[serde(deserialize_with = "weir_api::config::string_list")]
    pub metric_names: Vec<String>,
    /// All must match the span's or log record's attributes.
    pub attributes: Vec<AttributeMatch>,
    /// All must match the resource's attributes.
    pub resources: Vec<AttributeMatch>,
    /// Any may match the instrumentation scope (name, optional version).
    pub libraries: Vec<LibraryMatch>,
    /// Spans: any may equal the span kind.
    #[serde(deserialize_with = "weir_api::config::string_list")]
    pub span_kinds: Vec<String>,
}

impl MatchProperties {
    fn compile(&self, signal: Signal, path: &str, errors: &mut ConfigErrors) -> Properties {
        match signal {
            Signal::Traces => {
                for (set, field) in [
                    (!self.log_bodies.is_empty(), "log_bodies"),
                    (!self.log_severity_texts.is_empty(), "log_severity_texts"),
                    (self.log_severity_number.is_some(), "log_severity_number"),
                ] {
                    if set {
                        errors.push(
                            format!("{path}.{field}"),
                            format!("{field} should not be specified for trace spans"),
                        );
                    }
                }
                if self.services.is_empty()
                    && self.span_names.is_empty()
                    && self.attributes.is_empty()
                    && self.libraries.is_empty()
                    && self.resources.is_empty()
                    && self.span_kinds.is_empty()
                {
                    errors.push(path, "for spans at least one of \"services\", \"span_names\", \"span_kinds\", \"attributes\", \"libraries\" or \"resources\" must be specified");
                }
            }
            Signal::Logs => {
                if !self.span_names.is_empty()
                    || !self.services.is_empty()
                    || !self.span_kinds.is_empty()
                {
                    errors.push(
                        path,
                        "services, span_names, and span_kinds are not valid for log records",
                    );
                }
                if self.attributes.is_empty()
                    && self.libraries.is_empty()
                    && self.resources.is_empty()
                    && self.log_bodies.is_empty()
                    && self.log_severity_texts.is_empty()
                    && self.log_severity_number.is_none()
                {
                    errors.push(path, "for logs at least one of \"attributes\", \"libraries\", \"resources\", \"log_bodies\", \"log_severity_texts\" or \"log_severity_number\" must be specified");
                }
            }
            Signal::Metrics => {}
        }
        // Only the severity-only log form may leave match_type out.
        let severity_only = signal == Signal::Logs
            && self.log_severity_number.is_some()
            && self.attributes.is_empty()
            && self.libraries.is_empty()
            && self.resources.is_empty()
            && self.log_bodies.is_empty()
            && self.log_severity_texts.is_empty();
        let match_type = if self.match_type.is_none() && severity_only {
            None
        } else {
            parse_match_type(
                self.match_type.as_deref(),
                &["strict", "regexp"],
                path,
                errors,
            )
        };
        let mut b = PropertiesBuilder {
            match_type,
            path: path.to_string(),
            errors,
            props: Properties::default(),
        };
        b.resources(&self.resources);
        match signal {
            Signal::Traces => {
                b.record_attributes("attributes", &self.attributes);
                b.services(&self.services);
                b.span_names(&self.span_names);
                b.span_kinds(&self.span_kinds);
                b.libraries(&self.libraries);
            }
            Signal::Logs => {
                b.record_attributes("attributes", &self.attributes);
                b.bodies_at("log_bodies", &self.log_bodies);
                b.severity_texts_at("log_severity_texts", &self.log_severity_texts);
                if let Some(s) = &self.log_severity_number {
                    b.min_severity_at("log_severity_number", &s.min, s.match_undefined);
                }
                b.libraries(&self.libraries);
            }
            Signal::Metrics => b.metric_names(&self.metric_names),
        }
        b.props
    }
}

/// `include` and `exclude` as written.
#[derive(Debug, Default)]
pub struct MatchConfig<'a> {
    pub include: Option<&'a MatchProperties>,
    pub exclude: Option<&'a MatchProperties>,
}

impl MatchConfig<'_> {
    /// The skip predicate for `signal`, or every problem found (paths below `path`).
    pub fn compile(&self, signal: Signal, path: &str) -> Result<IncludeExclude, ConfigErrors> {
        let mut errors = ConfigErrors::default();
        let include = self
            .include
            .map(|p| p.compile(signal, &format!("{path}.include"), &mut errors));
        let exclude = self
            .exclude
            .map(|p| p.compile(signal, &format!("{path}.exclude"), &mut errors));
        errors.into_result(IncludeExclude { include, exclude })
    }
}
