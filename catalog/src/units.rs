//! The control plane's knowledge of a service's traffic as *units*: classes of records a
//! policy cannot tell apart from what the catalog holds. Logs: one unit per template and
//! severity class (number and text as sent). Spans: one per span name and kind. Metrics: one
//! per metric name. Each unit carries its records, bytes, severity, whether it is
//! security-relevant, and a synthetic record for dry-runs ([`crate::dryrun`]).

use weir_api::otlp::logs::v1::LogRecord;
use weir_api::otlp::trace::v1::Span;
use weir_summary::summary::{parse_severity_class, Seen, ServiceSummary};

use crate::dryrun::{instance, kv, metric_sample, Sample};

/// Severity of a unit, from its number when set (1-24), else from its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// No severity at all.
    Unspecified,
    /// TRACE.
    Trace,
    /// DEBUG.
    Debug,
    /// INFO.
    Info,
    /// WARN.
    Warn,
    /// ERROR (spans with an error status count here).
    Error,
    /// FATAL.
    Fatal,
    /// Not known (a text that is not a severity word, or past the class cap): treated as
    /// WARN or above.
    Unknown,
}

impl Severity {
    /// From a severity number and text, as the metadata processor counts them.
    pub fn of(number: i32, text: &str) -> Severity {
        match number {
            1..=4 => Severity::Trace,
            5..=8 => Severity::Debug,
            9..=12 => Severity::Info,
            13..=16 => Severity::Warn,
            17..=20 => Severity::Error,
            21..=24 => Severity::Fatal,
            _ => match text.as_bytes().first().map(u8::to_ascii_lowercase) {
                None => Severity::Unspecified,
                Some(b't') => Severity::Trace,
                Some(b'd') => Severity::Debug,
                Some(b'i') | Some(b'n') => Severity::Info,
                Some(b'w') => Severity::Warn,
                Some(b'e') => Severity::Error,
                Some(b'f') | Some(b'c') | Some(b'a') => Severity::Fatal,
                _ => Severity::Unknown,
            },
        }
    }

    /// WARN, ERROR, FATAL or unknown: records a suggestion protects.
    pub fn protected(self) -> bool {
        self >= Severity::Warn
    }

    /// Upper-case name.
    pub fn name(self) -> &'static str {
        match self {
            Severity::Unspecified => "UNSPECIFIED",
            Severity::Trace => "TRACE",
            Severity::Debug => "DEBUG",
            Severity::Info => "INFO",
            Severity::Warn => "WARN",
            Severity::Error => "ERROR",
            Severity::Fatal => "FATAL",
            Severity::Unknown => "UNKNOWN",
        }
    }
}

/// Words in a template that make its records security-relevant (matched case-insensitively
/// as substrings): authentication, authorisation and audit events.
pub const SECURITY_WORDS: [&str; 19] = [
    "auth", // authentication, authorization, authorisation, oauth, authority
    "login",
    "logon",
    "logged in",
    "logout",
    "password",
    "passwd",
    "credential",
    "permission",
    "denied",
    "forbidden",
    "sudo",
    "privilege",
    "audit",
    "session opened",
    "session closed",
    "invalid user",
    "kerberos",
    "pam_",
];

/// Parts of attribute keys that make records carrying them security-relevant.
pub const SECURITY_KEY_PARTS: [&str; 5] = ["auth", "audit", "login", "security", "enduser."];

/// Whether a template text or attribute keys mark security-relevant events.
pub fn is_security<'a>(template: &str, keys: impl IntoIterator<Item = &'a String>) -> bool {
    let t = template.to_ascii_lowercase();
    SECURITY_WORDS.iter().any(|w| t.contains(w))
        || keys.into_iter().any(|k| {
            let k = k.to_ascii_lowercase();
            SECURITY_KEY_PARTS.iter().any(|p| k.contains(p))
        })
}

/// One unit of traffic.
#[derive(Debug, Clone)]
pub struct Unit {
    /// Stable key: `log:<template id>:<class>`, `span:<name>:<kind>`, `metric:<name>`.
    pub key: String,
    /// `logs`, `traces` or `metrics`.
    pub signal: &'static str,
    /// Template id, span name or metric name.
    pub group: String,
    /// Records (spans, data points).
    pub items: u64,
    /// Their encoded bytes.
    pub bytes: u64,
    /// Severity.
    pub severity: Severity,
    /// The severity text as sent ("" when absent, "?" when not a severity word).
    pub text: String,
    /// Severity given only as a number (no text).
    pub number_only: bool,
    /// Authentication, authorisation or audit events.
    pub security: bool,
    /// Attribute keys its records carry (logs: the template's keys).
    pub keys: Vec<String>,
    /// The synthetic record for dry-runs.
    pub sample: Sample,
    /// Logs: the most records of its template within one second.
    pub peak_per_second: u64,
}

impl Unit {
    /// Severity as shown in a dry-run breakdown: `DEBUG`, `DEBUG (number only)`, ...
    pub fn severity_label(&self) -> String {
        if self.number_only {
            format!("{} (number only)", self.severity.name())
        } else {
            self.severity.name().to_string()
        }
    }
}

/// The span of time a service's data covers (record times; all signals).
pub fn service_seen(s: &ServiceSummary) -> Seen {
    let mut seen = Seen::default();
    let mut add = |x: &Seen| {
        seen.observe(x.first_unix_nano);
        seen.observe(x.last_unix_nano);
    };
    s.logs.templates.values().for_each(|t| add(&t.seen));
    s.traces.spans.values().for_each(|t| add(&t.seen));
    s.metrics.metrics.values().for_each(|t| add(&t.seen));
    seen
}

/// The projection window of a service in seconds: the span of its record times, at least
/// one minute.
pub fn window_seconds(s: &ServiceSummary) -> f64 {
    let seen = service_seen(s);
    (seen.last_unix_nano.saturating_sub(seen.first_unix_nano) as f64 / 1e9).max(60.0)
}

/// The units of one service.
pub fn units_of(s: &ServiceSummary) -> Vec<Unit> {
    let mut out = Vec::new();
    for (tid, t) in &s.logs.templates {
        let keys: Vec<String> = t.attribute_keys.iter().cloned().collect();
        let security = is_security(&t.template, &t.attribute_keys);
        let body = instance(&t.template);
        // Templates from edges that predate severity classes: one unit from the mix.
        let classes: Vec<(String, u64, u64)> = if t.severities.is_empty() {
            vec![("0|".to_string(), t.count, t.bytes)]
        } else {
            t.severities
                .iter()
                .map(|(k, v)| (k.clone(), v.items, v.bytes))
                .collect()
        };
        for (class, items, bytes) in classes {
            let (number, text, severity) = match parse_severity_class(&class) {
                Some((n, txt)) => (n, txt.to_string(), Severity::of(n, txt)),
                None => (0, "?".to_string(), Severity::Unknown),
            };
            let severity = if text == "?" {
                Severity::Unknown.max(severity)
            } else {
                severity
            };
            let record = LogRecord {
                body: Some(weir_api::otlp::common::v1::AnyValue {
                    value: Some(weir_api::otlp::common::v1::any_value::Value::StringValue(
                        body.clone(),
                    )),
                }),
                severity_number: number,
                severity_text: text.clone(),
                attributes: keys.iter().map(|k| kv(k)).collect(),
                ..Default::default()
            };
            out.push(Unit {
                key: format!("log:{tid}:{class}"),
                signal: "logs",
                group: tid.clone(),
                items,
                bytes,
                severity,
                number_only: number != 0 && text.is_empty(),
                text,
                security,
                keys: keys.clone(),
                sample: Sample::Log(record),
                peak_per_second: t.peak_per_second,
            });
        }
    }
    for (name, sp) in &s.traces.spans {
        let k = &sp.kinds;
        let kinds = [
            (0, k.unspecified),
            (1, k.internal),
            (2, k.server),
            (3, k.client),
            (4, k.producer),
            (5, k.consumer),
        ];
        let total = sp.volume.items.max(1);
        let keys: Vec<String> = sp.attribute_keys.iter().cloned().collect();
        for (kind, n) in kinds.into_iter().filter(|(_, n)| *n > 0) {
            out.push(Unit {
                key: format!("span:{name}:{kind}"),
                signal: "traces",
                group: name.clone(),
                items: n,
                bytes: sp.volume.bytes * n / total,
                severity: if sp.status.error > 0 {
                    Severity::Error
                } else {
                    Severity::Unspecified
                },
                text: String::new(),
                number_only: false,
                security: is_security(name, &sp.attribute_keys),
                keys: keys.clone(),
                sample: Sample::Span(Span {
                    name: instance(name),
                    kind,
                    trace_id: vec![1; 16],
                    span_id: vec![1; 8],
                    attributes: keys.iter().map(|k| kv(k)).collect(),
                    ..Default::default()
                }),
                peak_per_second: 0,
            });
        }
    }
    for (name, m) in &s.metrics.metrics {
        let keys: Vec<String> = m.attribute_keys.keys().cloned().collect();
        out.push(Unit {
            key: format!("metric:{name}"),
            signal: "metrics",
            group: name.clone(),
            items: m.volume.items,
            bytes: m.volume.bytes,
            severity: Severity::Unspecified,
            text: String::new(),
            number_only: false,
            security: false,
            sample: Sample::Metric(metric_sample(name, &keys)),
            keys,
            peak_per_second: 0,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_from_number_wins_over_text() {
        assert_eq!(Severity::of(17, "info"), Severity::Error);
        assert_eq!(Severity::of(0, "Warning"), Severity::Warn);
        assert_eq!(Severity::of(0, ""), Severity::Unspecified);
        assert_eq!(Severity::of(6, ""), Severity::Debug);
        assert!(Severity::of(0, "?").protected());
        assert!(!Severity::of(9, "").protected());
    }

    #[test]
    fn security_from_words_and_keys() {
        assert!(is_security("Failed password for <*> from <*>", []));
        assert!(is_security("pam_unix(sshd:auth): check pass", []));
        assert!(is_security("GET <*>", &["enduser.id".to_string()]));
        assert!(!is_security(
            "GET /healthz 200",
            &["http.route".to_string()]
        ));
    }
}
