//! The control plane's knowledge of a service's traffic as *units*: classes of records a
//! policy cannot tell apart from what the catalog holds. Logs: one unit per template and
//! severity class (number and text as sent). Spans: one per span name and kind. Metrics: one
//! per metric name. Each unit carries its records, bytes, severity, whether it is
//! security-relevant, and a synthetic record for dry-runs ([`crate::dryrun`]).

use serde::{Deserialize, Serialize};
use weir_api::otlp::logs::v1::LogRecord;
use weir_api::otlp::trace::v1::Span;
use weir_summary::summary::{parse_severity_class, Seen, ServiceSummary, Volume};

use crate::dryrun::{instance, kv, metric_sample, Sample};

/// How much of one signal's volume a service's item-level data describes. An edge that
/// had no CPU to spare counted some batches without reading them (`unsummarised`): the
/// volume stays exact, but templates, severities, attributes, span and metric names (and
/// so the units) describe only `volume - unsummarised`, the *read* part. Shares are taken of
/// the read part; volumes and savings estimated from units are scaled up to the whole volume
/// by [`ReadPart::items_scale`] and [`ReadPart::bytes_scale`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadPart {
    /// The signal's volume (exact).
    pub volume: Volume,
    /// The part of it counted without being read.
    pub unsummarised: Volume,
}

impl ReadPart {
    /// The logs of `s`.
    pub fn logs(s: &ServiceSummary) -> ReadPart {
        ReadPart {
            volume: s.logs.volume,
            unsummarised: s.logs.unsummarised,
        }
    }

    /// The traces of `s`.
    pub fn traces(s: &ServiceSummary) -> ReadPart {
        ReadPart {
            volume: s.traces.volume,
            unsummarised: s.traces.unsummarised,
        }
    }

    /// The metrics of `s`.
    pub fn metrics(s: &ServiceSummary) -> ReadPart {
        ReadPart {
            volume: s.metrics.volume,
            unsummarised: s.metrics.unsummarised,
        }
    }

    /// By signal name (`logs`, `traces`, `metrics`; anything else: nothing unsummarised).
    pub fn of(s: &ServiceSummary, signal: &str) -> ReadPart {
        match signal {
            "logs" => ReadPart::logs(s),
            "traces" => ReadPart::traces(s),
            "metrics" => ReadPart::metrics(s),
            _ => ReadPart::default(),
        }
    }

    /// The part read: what the item-level data describes.
    pub fn read(&self) -> Volume {
        Volume {
            items: self.volume.items.saturating_sub(self.unsummarised.items),
            bytes: self.volume.bytes.saturating_sub(self.unsummarised.bytes),
        }
    }

    /// Every item was read (the figures are not estimates).
    pub fn is_whole(&self) -> bool {
        self.unsummarised.is_zero()
    }

    /// Part of the volume was counted and none of it was read: there is nothing to
    /// estimate from.
    pub fn nothing_read(&self) -> bool {
        !self.is_whole() && self.read().items == 0
    }

    /// Items in all per item read: `volume.items / read.items` (1 when everything was read,
    /// 0 when nothing was).
    pub fn items_scale(&self) -> f64 {
        if self.unsummarised.items == 0 {
            1.0
        } else if self.read().items == 0 {
            0.0
        } else {
            self.volume.items as f64 / self.read().items as f64
        }
    }

    /// Bytes in all per byte read: `volume.bytes / read.bytes` (1 when every byte was read;
    /// the items' scale when no byte was read but items were).
    pub fn bytes_scale(&self) -> f64 {
        if self.unsummarised.bytes == 0 {
            1.0
        } else if self.read().bytes == 0 {
            self.items_scale()
        } else {
            self.volume.bytes as f64 / self.read().bytes as f64
        }
    }

    /// Share of the items that was read (1 when the volume is empty).
    pub fn read_share(&self) -> f64 {
        if self.volume.items == 0 {
            1.0
        } else {
            self.read().items as f64 / self.volume.items as f64
        }
    }

    /// The unsummarised part as the API shows it.
    pub fn unsummarised_view(&self) -> Unsummarised {
        Unsummarised {
            items: self.unsummarised.items,
            bytes: self.unsummarised.bytes,
            share_of_items: if self.volume.items == 0 {
                0.0
            } else {
                self.unsummarised.items as f64 / self.volume.items as f64
            },
        }
    }

    /// The evidence line of a figure estimated from the read part (`None` when everything
    /// was read): "estimated from 62% of records read (the edge counted the rest without
    /// reading them)".
    pub fn estimate_note(&self, noun: &str) -> Option<String> {
        if self.is_whole() {
            return None;
        }
        Some(format!(
            "estimated from {} of {noun} read (the edge counted the rest without reading them): counts and shares are of the {} {noun} read; volumes and savings per day are scaled up to all {} {noun}",
            percent(self.read_share()),
            self.read().items,
            self.volume.items
        ))
    }
}

/// A share as a person reads it: "62%", "0.4%" under 10%, never "100%" for less than all
/// and never "0%" for more than none.
pub fn percent(share: f64) -> String {
    let p = 100.0 * share;
    let p = if p > 0.0 && p < 100.0 {
        p.clamp(0.1, 99.9)
    } else {
        p
    };
    if (p > 0.0 && p < 10.0) || (p > 99.0 && p < 100.0) {
        format!("{p:.1}%")
    } else {
        format!("{p:.0}%")
    }
}

/// Records, spans or data points of one signal counted without being read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Unsummarised {
    /// Items counted without being read.
    pub items: u64,
    /// Their encoded bytes.
    pub bytes: u64,
    /// Their share of the signal's items (0 to 1).
    pub share_of_items: f64,
}

/// [`Unsummarised`] per signal.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct UnsummarisedSignals {
    /// Log records.
    pub logs: Unsummarised,
    /// Spans.
    pub traces: Unsummarised,
    /// Metric data points.
    pub metrics: Unsummarised,
}

impl UnsummarisedSignals {
    /// The unsummarised parts of `s`.
    pub fn of(s: &ServiceSummary) -> UnsummarisedSignals {
        UnsummarisedSignals {
            logs: ReadPart::logs(s).unsummarised_view(),
            traces: ReadPart::traces(s).unsummarised_view(),
            metrics: ReadPart::metrics(s).unsummarised_view(),
        }
    }
}

/// What a person should know about a service's estimates: per signal with an unsummarised
/// part, how much was read, or that nothing was (so nothing is suggested from its content).
pub fn read_notes(s: &ServiceSummary) -> Vec<String> {
    [
        ("logs", "log records", ReadPart::logs(s)),
        ("traces", "spans", ReadPart::traces(s)),
        ("metrics", "data points", ReadPart::metrics(s)),
    ]
    .into_iter()
    .filter(|(_, _, r)| !r.is_whole())
    .map(|(signal, noun, r)| {
        if r.nothing_read() {
            format!(
                "{signal}: none of the {} {noun} were read (the edge counted them without reading them): nothing is suggested from their content",
                r.volume.items
            )
        } else {
            format!(
                "{signal}: {} of the {} {noun} were read ({}; the edge counted the rest without reading them): estimates from them are scaled up to all {noun}",
                r.read().items,
                r.volume.items,
                percent(r.read_share())
            )
        }
    })
    .collect()
}

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
    /// Items in all per item of the unit (its signal's [`ReadPart::items_scale`]).
    pub items_scale: f64,
    /// Bytes in all per byte of the unit (its signal's [`ReadPart::bytes_scale`]).
    pub bytes_scale: f64,
}

impl Unit {
    /// Its items estimated over the signal's whole volume (`items` when all were read).
    pub fn est_items(&self) -> f64 {
        self.items as f64 * self.items_scale
    }

    /// Its bytes estimated over the signal's whole volume (`bytes` when all were read).
    pub fn est_bytes(&self) -> f64 {
        self.bytes as f64 * self.bytes_scale
    }

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
    // Batches counted without being read have no record times: their receive times.
    add(&s.unsummarised_seen);
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
    let scales = |r: ReadPart| (r.items_scale(), r.bytes_scale());
    let (log_items, log_bytes) = scales(ReadPart::logs(s));
    let (span_items, span_bytes) = scales(ReadPart::traces(s));
    let (point_items, point_bytes) = scales(ReadPart::metrics(s));
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
                items_scale: log_items,
                bytes_scale: log_bytes,
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
                items_scale: span_items,
                bytes_scale: span_bytes,
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
            items_scale: point_items,
            bytes_scale: point_bytes,
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
    fn read_part_scales_and_shares() {
        let v = |items, bytes| Volume { items, bytes };
        let whole = ReadPart {
            volume: v(1000, 100_000),
            unsummarised: v(0, 0),
        };
        assert!(whole.is_whole() && !whole.nothing_read());
        assert_eq!((whole.items_scale(), whole.bytes_scale()), (1.0, 1.0));
        assert_eq!(whole.estimate_note("records"), None);
        let part = ReadPart {
            volume: v(1000, 100_000),
            unsummarised: v(750, 50_000),
        };
        assert_eq!(part.read(), v(250, 50_000));
        assert_eq!((part.items_scale(), part.bytes_scale()), (4.0, 2.0));
        assert_eq!(part.read_share(), 0.25);
        assert_eq!(part.unsummarised_view().share_of_items, 0.75);
        assert!(part
            .estimate_note("records")
            .unwrap()
            .starts_with("estimated from 25% of records read (the edge counted the rest"));
        let none = ReadPart {
            volume: v(10, 1000),
            unsummarised: v(10, 1000),
        };
        assert!(none.nothing_read());
        assert_eq!((none.items_scale(), none.bytes_scale()), (0.0, 0.0));
        // Items read but their bytes all counted unread: bytes scale like items.
        let odd = ReadPart {
            volume: v(10, 1000),
            unsummarised: v(5, 1000),
        };
        assert_eq!(odd.bytes_scale(), 2.0);
    }

    #[test]
    fn percents_never_round_to_all_or_none() {
        assert_eq!(percent(0.62), "62%");
        assert_eq!(percent(0.9996), "99.9%");
        assert_eq!(percent(0.00001), "0.1%");
        assert_eq!(percent(0.05), "5.0%");
        assert_eq!(percent(1.0), "100%");
        assert_eq!(percent(0.0), "0%");
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
