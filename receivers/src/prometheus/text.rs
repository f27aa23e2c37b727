//! The Prometheus text exposition format (0.0.4) and OpenMetrics text (1.0.0, and the 0.0.1
//! that client libraries announce), parsed line by line without copying: names and label
//! values borrow the body (a value is copied only when it holds an escape). Every error
//! names its line; the caller adds the target.
//!
//! OpenMetrics differs from 0.0.4 in what the parser checks: the body must end with
//! `# EOF` (and hold nothing after it), timestamps are seconds (fractions allowed) rather
//! than milliseconds, `# UNIT` lines give units, a sample may carry an exemplar
//! (`... # {trace_id="..."} 1.5 [timestamp]`), and the types include `info`, `stateset`,
//! `gaugehistogram` and `unknown`, whose samples carry suffixes (`_total`, `_created`,
//! `_info`, `_gcount`, `_gsum`) after the family name.

use super::convert::FastMap;
use std::borrow::Cow;

/// Which text format a body is in (from its `Content-Type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `text/plain; version=0.0.4` (and anything not OpenMetrics).
    Text,
    /// `application/openmetrics-text`.
    OpenMetrics,
}

impl Format {
    /// The format a `Content-Type` header names.
    pub fn from_content_type(ct: &str) -> Format {
        if ct
            .trim_start()
            .to_ascii_lowercase()
            .starts_with("application/openmetrics-text")
        {
            Format::OpenMetrics
        } else {
            Format::Text
        }
    }
}

/// A metric family's type as declared by `# TYPE` (untyped when there is none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FamilyType {
    /// `counter`.
    Counter,
    /// `gauge`.
    Gauge,
    /// `histogram`.
    Histogram,
    /// `gaugehistogram` (OpenMetrics).
    GaugeHistogram,
    /// `summary`.
    Summary,
    /// `info` (OpenMetrics).
    Info,
    /// `stateset` (OpenMetrics).
    StateSet,
    /// `untyped`, `unknown`, or no `# TYPE` line.
    Untyped,
}

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample<'a> {
    /// The series name as written (`x_bucket`, `x_total`).
    pub name: &'a str,
    /// The sample's labels: `Exposition::labels[start..end]`.
    pub labels: (u32, u32),
    /// The text of name and labels as written (the series' identity within a target).
    pub series: &'a str,
    /// The value.
    pub value: f64,
    /// The timestamp in milliseconds, if written.
    pub timestamp_ms: Option<i64>,
    /// The exemplar, if written (OpenMetrics): an index into `Exposition::exemplars`.
    pub exemplar: Option<u32>,
}

/// An OpenMetrics exemplar.
#[derive(Debug, Clone, PartialEq)]
pub struct Exemplar<'a> {
    /// Its labels (`trace_id`, `span_id`, others).
    pub labels: Vec<(&'a str, Cow<'a, str>)>,
    /// Its value.
    pub value: f64,
    /// Its timestamp in seconds, if written.
    pub timestamp_s: Option<f64>,
}

/// Label name and value; the value is borrowed unless it held an escape.
pub type Label<'a> = (&'a str, Cow<'a, str>);

/// A parsed exposition: samples in order, and the declared types, help and units by
/// family.
#[derive(Debug, Default)]
pub struct Exposition<'a> {
    /// Samples in the order written.
    pub samples: Vec<Sample<'a>>,
    /// The labels of all samples, each sample's in a run.
    pub labels: Vec<Label<'a>>,
    /// `# TYPE` per family name.
    pub types: FastMap<&'a str, FamilyType>,
    /// `# HELP` per family name.
    pub help: FastMap<&'a str, Cow<'a, str>>,
    /// `# UNIT` per family name (OpenMetrics).
    pub units: FastMap<&'a str, &'a str>,
    /// Exemplars of samples that carried one.
    pub exemplars: Vec<Exemplar<'a>>,
    /// The format it was parsed as.
    pub format: Option<Format>,
}

impl<'a> Exposition<'a> {
    /// A sample's labels.
    pub fn labels_of(&self, s: &Sample<'a>) -> &[Label<'a>] {
        &self.labels[s.labels.0 as usize..s.labels.1 as usize]
    }
}

/// A malformed line.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("line {line}: {message}")]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

fn err(line: usize, message: impl Into<String>) -> ParseError {
    ParseError {
        line,
        message: message.into(),
    }
}

fn is_name_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c == b':'
}

fn is_name_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b':'
}

/// Parses a float as the format allows (`NaN`, `+Inf`, `-Inf`, Go float syntax).
pub fn parse_float(s: &str) -> Option<f64> {
    match s {
        "NaN" | "nan" => Some(f64::NAN),
        "+Inf" | "Inf" | "+inf" | "inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        _ => {
            // Rust's parser takes "infinity" and "nan" spellings the formats do not.
            let b = s.as_bytes();
            if b.iter()
                .any(|c| !(c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-')))
            {
                return None;
            }
            s.parse().ok()
        }
    }
}

/// Parses a 0.0.4 text exposition, stopping at `max_samples` samples (`0`: no limit) with
/// an error.
pub fn parse(text: &str, max_samples: usize) -> Result<Exposition<'_>, ParseError> {
    parse_as(text, Format::Text, max_samples)
}

/// Parses an exposition in `format`.
pub fn parse_as(
    text: &str,
    format: Format,
    max_samples: usize,
) -> Result<Exposition<'_>, ParseError> {
    let om = format == Format::OpenMetrics;
    let mut out = Exposition {
        format: Some(format),
        ..Default::default()
    };
    let mut eof = false;
    let mut n = 0;
    for raw in text.split('\n') {
        n += 1;
        if eof {
            if raw.is_empty() {
                continue;
            }
            return Err(err(n, "content after # EOF"));
        }
        let line = if om {
            raw
        } else {
            raw.trim_matches(|c| c == ' ' || c == '\t' || c == '\r')
        };
        if line.is_empty() {
            if om && n > 1 && text.len() > raw.len() && !text.ends_with('\n') {
                return Err(err(n, "empty line"));
            }
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            if om && comment == " EOF" {
                eof = true;
                continue;
            }
            comment_line(comment, n, om, &mut out)?;
            continue;
        }
        let s = sample(line, n, om, &mut out)?;
        out.samples.push(s);
        if max_samples > 0 && out.samples.len() > max_samples {
            return Err(err(
                n,
                format!("more than sample_limit {max_samples} samples"),
            ));
        }
    }
    if om && !eof {
        return Err(err(n, "OpenMetrics body does not end with # EOF"));
    }
    Ok(out)
}

fn comment_line<'a>(
    comment: &'a str,
    n: usize,
    om: bool,
    out: &mut Exposition<'a>,
) -> Result<(), ParseError> {
    let mut parts = comment.trim_start().splitn(3, [' ', '\t']);
    match parts.next() {
        Some("TYPE") => {
            let name = parts.next().ok_or_else(|| err(n, "TYPE without a name"))?;
            let ty = parts.next().unwrap_or("").trim();
            let t = match ty {
                "counter" => FamilyType::Counter,
                "gauge" => FamilyType::Gauge,
                "histogram" => FamilyType::Histogram,
                "summary" => FamilyType::Summary,
                "untyped" if !om => FamilyType::Untyped,
                "unknown" if om => FamilyType::Untyped,
                "gaugehistogram" if om => FamilyType::GaugeHistogram,
                "info" if om => FamilyType::Info,
                "stateset" if om => FamilyType::StateSet,
                other => return Err(err(n, format!("unknown metric type {other:?}"))),
            };
            if out.types.insert(name, t).is_some() {
                return Err(err(n, format!("second TYPE line for {name}")));
            }
        }
        Some("HELP") => {
            if let Some(name) = parts.next() {
                let help = parts.next().unwrap_or("");
                let help = if help.contains('\\') {
                    Cow::Owned(unescape(help))
                } else {
                    Cow::Borrowed(help)
                };
                out.help.insert(name, help);
            }
        }
        Some("UNIT") if om => {
            let name = parts.next().ok_or_else(|| err(n, "UNIT without a name"))?;
            let unit = parts.next().unwrap_or("").trim();
            if !unit.is_empty() && !name.ends_with(&format!("_{unit}")) {
                return Err(err(
                    n,
                    format!("unit {unit:?} is not a suffix of the family name {name}"),
                ));
            }
            out.units.insert(name, unit);
        }
        _ => {}
    }
    Ok(())
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('\\') => out.push('\\'),
            Some('"') => out.push('"'),
            Some(o) => {
                out.push('\\');
                out.push(o);
            }
            None => out.push('\\'),
        }
    }
    out
}

fn sample<'a>(
    line: &'a str,
    n: usize,
    om: bool,
    out: &mut Exposition<'a>,
) -> Result<Sample<'a>, ParseError> {
    let b = line.as_bytes();
    let name_end = b.iter().position(|c| !is_name_char(*c)).unwrap_or(b.len());
    let name = &line[..name_end];
    if name.is_empty() || !is_name_start(b[0]) {
        return Err(err(
            n,
            format!("expected a metric name, found {:?}", short(line)),
        ));
    }
    let mut rest = &line[name_end..];
    let start = out.labels.len() as u32;
    let series;
    if let Some(after) = rest.strip_prefix('{') {
        let r = label_set(after, n, &mut out.labels, start as usize)?;
        series = &line[..line.len() - r.len()];
        rest = r;
    } else {
        series = name;
    }
    let labels = (start, out.labels.len() as u32);
    let (main, exemplar) = match (om, rest.find(" # ")) {
        (true, Some(i)) => (&rest[..i], Some(&rest[i + 3..])),
        _ => (rest, None),
    };
    let mut fields = main.split_ascii_whitespace();
    let value = fields
        .next()
        .ok_or_else(|| err(n, format!("{name}: no value")))?;
    let value = parse_float(value).ok_or_else(|| err(n, format!("{name}: bad value {value:?}")))?;
    let timestamp_ms = match fields.next() {
        None => None,
        Some(t) if om => {
            let secs = parse_float(t)
                .filter(|v| v.is_finite())
                .ok_or_else(|| err(n, format!("{name}: bad timestamp {t:?}")))?;
            Some((secs * 1000.0).round() as i64)
        }
        Some(t) => Some(
            t.parse::<i64>()
                .map_err(|_| err(n, format!("{name}: bad timestamp {t:?}")))?,
        ),
    };
    if let Some(extra) = fields.next() {
        return Err(err(
            n,
            format!("{name}: unexpected {extra:?} after the timestamp"),
        ));
    }
    let exemplar = match exemplar {
        None => None,
        Some(text) => {
            let e = parse_exemplar(text, n, name)?;
            out.exemplars.push(e);
            Some(out.exemplars.len() as u32 - 1)
        }
    };
    Ok(Sample {
        name,
        labels,
        series,
        value,
        timestamp_ms,
        exemplar,
    })
}

fn parse_exemplar<'a>(text: &'a str, n: usize, name: &str) -> Result<Exemplar<'a>, ParseError> {
    let after = text
        .strip_prefix('{')
        .ok_or_else(|| err(n, format!("{name}: exemplar must start with a label set")))?;
    let mut labels = Vec::new();
    let rest = label_set(after, n, &mut labels, 0)?;
    let size: usize = labels.iter().map(|(k, v)| k.len() + v.len()).sum();
    if size > 128 {
        return Err(err(
            n,
            format!("{name}: exemplar labels longer than 128 characters"),
        ));
    }
    let mut fields = rest.split_ascii_whitespace();
    let value = fields
        .next()
        .and_then(parse_float)
        .ok_or_else(|| err(n, format!("{name}: exemplar without a valid value")))?;
    let timestamp_s = match fields.next() {
        None => None,
        Some(t) => Some(
            parse_float(t)
                .filter(|v| v.is_finite())
                .ok_or_else(|| err(n, format!("{name}: bad exemplar timestamp {t:?}")))?,
        ),
    };
    if fields.next().is_some() {
        return Err(err(
            n,
            format!("{name}: unexpected text after the exemplar"),
        ));
    }
    Ok(Exemplar {
        labels,
        value,
        timestamp_s,
    })
}

/// Parses `a="x",b="y"}` (after the `{`) into `labels` (those from `from` on are this
/// set's, checked for repeats); returns what follows the `}`.
fn label_set<'a>(
    mut s: &'a str,
    n: usize,
    labels: &mut Vec<Label<'a>>,
    from: usize,
) -> Result<&'a str, ParseError> {
    loop {
        s = s.trim_start_matches([' ', '\t']);
        if let Some(rest) = s.strip_prefix('}') {
            return Ok(rest);
        }
        let b = s.as_bytes();
        let end = b.iter().position(|c| !is_name_char(*c)).unwrap_or(b.len());
        let name = &s[..end];
        if name.is_empty() || b[0].is_ascii_digit() || name.contains(':') {
            return Err(err(n, format!("bad label name at {:?}", short(s))));
        }
        s = s[end..].trim_start_matches([' ', '\t']);
        s = s
            .strip_prefix('=')
            .ok_or_else(|| err(n, format!("expected '=' after label {name}")))?
            .trim_start_matches([' ', '\t']);
        s = s
            .strip_prefix('"')
            .ok_or_else(|| err(n, format!("label {name}: value must be quoted")))?;
        let vb = s.as_bytes();
        let mut i = 0;
        let mut escaped = false;
        let close = loop {
            match vb.get(i) {
                None => return Err(err(n, format!("label {name}: unterminated value"))),
                Some(b'"') => break i,
                Some(b'\\') => {
                    escaped = true;
                    if i + 1 >= vb.len() {
                        return Err(err(n, format!("label {name}: unterminated value")));
                    }
                    i += 2;
                }
                Some(_) => i += 1,
            }
        };
        let raw = &s[..close];
        let value = if escaped {
            Cow::Owned(unescape(raw))
        } else {
            Cow::Borrowed(raw)
        };
        if labels[from..].iter().any(|(k, _)| *k == name) {
            return Err(err(n, format!("label {name} given twice")));
        }
        labels.push((name, value));
        s = s[close + 1..].trim_start_matches([' ', '\t']);
        if let Some(rest) = s.strip_prefix(',') {
            s = rest;
        } else if !s.starts_with('}') {
            return Err(err(n, format!("expected ',' or '}}' at {:?}", short(s))));
        }
    }
}

fn short(s: &str) -> &str {
    match s.char_indices().nth(40) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(e: &Exposition, s: &Sample) -> Vec<(String, String)> {
        e.labels_of(s)
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_types_help_labels_and_timestamps() {
        let text = "# HELP x_total Things.\\nMore\n# TYPE x_total counter\nx_total{a=\"1\",b=\"q\\\"\\\\\\n\"} 3 1700000000000\n\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nup 1\nnan_one NaN\nneg{} -Inf\n";
        let e = parse(text, 0).unwrap();
        assert_eq!(e.types["x_total"], FamilyType::Counter);
        assert_eq!(e.types["h"], FamilyType::Histogram);
        assert_eq!(e.help["x_total"], "Things.\nMore");
        let s = &e.samples[0];
        assert_eq!(
            (s.name, s.series, s.value, s.timestamp_ms),
            (
                "x_total",
                "x_total{a=\"1\",b=\"q\\\"\\\\\\n\"}",
                3.0,
                Some(1_700_000_000_000)
            )
        );
        assert_eq!(
            owned(&e, s),
            vec![
                ("a".to_string(), "1".to_string()),
                ("b".to_string(), "q\"\\\n".to_string())
            ]
        );
        assert_eq!(e.samples.len(), 5);
        assert!(e.samples[3].value.is_nan());
        assert_eq!(e.samples[4].value, f64::NEG_INFINITY);
        assert_eq!(e.samples[4].series, "neg{}");
        assert!(owned(&e, &e.samples[4]).is_empty());
    }

    #[test]
    fn errors_name_the_line() {
        for (text, want) in [
            (
                "ok 1\nbad{a=1} 2\n",
                "line 2: label a: value must be quoted",
            ),
            ("x{a=\"1\" 2\n", "line 1: expected ',' or '}' at \"2\""),
            (
                "x 1 2 3\n",
                "line 1: x: unexpected \"3\" after the timestamp",
            ),
            ("x abc\n", "line 1: x: bad value \"abc\""),
            ("x infinity\n", "line 1: x: bad value \"infinity\""),
            ("# TYPE x blob\n", "line 1: unknown metric type \"blob\""),
            ("# TYPE x info\n", "line 1: unknown metric type \"info\""),
            (
                "{a=\"b\"} 1\n",
                "line 1: expected a metric name, found \"{a=\\\"b\\\"} 1\"",
            ),
            ("x{a=\"1\",a=\"2\"} 1\n", "line 1: label a given twice"),
            ("x{a=\"1} 1\n", "line 1: label a: unterminated value"),
            ("x{a=\"1\\", "line 1: label a: unterminated value"),
            ("x\n", "line 1: x: no value"),
        ] {
            assert_eq!(parse(text, 0).unwrap_err().to_string(), want, "{text:?}");
        }
        assert_eq!(
            parse("a 1\nb 2\nc 3\n", 2).unwrap_err().to_string(),
            "line 3: more than sample_limit 2 samples"
        );
    }

    #[test]
    fn parses_openmetrics() {
        let text = "# TYPE req counter\n# HELP req Requests \\\"served\\\".\nreq_total{code=\"200\"} 7.0 1700000000.5 # {trace_id=\"0af7651916cd43dd8448eb211c80319c\"} 1.0 1700000000.25\nreq_created{code=\"200\"} 1.7e+09\n# TYPE t_celsius gauge\n# UNIT t_celsius celsius\nt_celsius 21.5\n# TYPE b info\nb_info{v=\"1\"} 1\n# TYPE s stateset\ns{s=\"a\"} 1\n# TYPE q gaugehistogram\nq_bucket{le=\"+Inf\"} 5\nq_gcount 5\nq_gsum 9\n# TYPE u unknown\nu 1\n# EOF\n";
        let e = parse_as(text, Format::OpenMetrics, 0).unwrap();
        assert_eq!(e.types["req"], FamilyType::Counter);
        assert_eq!(e.types["b"], FamilyType::Info);
        assert_eq!(e.types["s"], FamilyType::StateSet);
        assert_eq!(e.types["q"], FamilyType::GaugeHistogram);
        assert_eq!(e.types["u"], FamilyType::Untyped);
        assert_eq!(e.units["t_celsius"], "celsius");
        assert_eq!(e.help["req"], "Requests \"served\".");
        let s = &e.samples[0];
        assert_eq!(
            (s.name, s.value, s.timestamp_ms, s.exemplar),
            ("req_total", 7.0, Some(1_700_000_000_500), Some(0))
        );
        assert_eq!(
            e.exemplars[0],
            Exemplar {
                labels: vec![(
                    "trace_id",
                    Cow::Borrowed("0af7651916cd43dd8448eb211c80319c")
                )],
                value: 1.0,
                timestamp_s: Some(1_700_000_000.25),
            }
        );
        assert_eq!(e.samples.len(), 9);
        // Missing EOF, content after it, a unit that is not the name's suffix, and the
        // text format's "untyped", are errors.
        for (text, want) in [
            ("a 1\n", "line 2: OpenMetrics body does not end with # EOF"),
            ("# EOF\na 1\n", "line 2: content after # EOF"),
            (
                "# TYPE a gauge\n# UNIT a seconds\n# EOF\n",
                "line 2: unit \"seconds\" is not a suffix of the family name a",
            ),
            (
                "# TYPE a untyped\n# EOF\n",
                "line 1: unknown metric type \"untyped\"",
            ),
            (
                "a 1 # trace_id=\"x\" 1\n# EOF\n",
                "line 1: a: exemplar must start with a label set",
            ),
            ("a 1 12x\n# EOF\n", "line 1: a: bad timestamp \"12x\""),
        ] {
            assert_eq!(
                parse_as(text, Format::OpenMetrics, 0)
                    .unwrap_err()
                    .to_string(),
                want,
                "{text:?}"
            );
        }
        assert_eq!(
            Format::from_content_type("application/openmetrics-text; version=0.0.1; charset=utf-8"),
            Format::OpenMetrics
        );
        assert_eq!(
            Format::from_content_type("text/plain; version=0.0.4"),
            Format::Text
        );
    }
}
