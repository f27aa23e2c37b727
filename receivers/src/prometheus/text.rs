//! The Prometheus text exposition format (0.0.4), parsed line by line. Every error names
//! its line; the caller adds the target.

use std::collections::HashMap;

/// A metric family's type as declared by `# TYPE` (untyped when there is none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FamilyType {
    /// `counter`.
    Counter,
    /// `gauge`.
    Gauge,
    /// `histogram`.
    Histogram,
    /// `summary`.
    Summary,
    /// `untyped`, or no `# TYPE` line.
    Untyped,
}

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The series name as written (`x_bucket`, `x_total`).
    pub name: String,
    /// Labels in the order written.
    pub labels: Vec<(String, String)>,
    /// The value.
    pub value: f64,
    /// The timestamp in milliseconds, if written.
    pub timestamp_ms: Option<i64>,
}

/// A parsed exposition: samples in order, and the declared types and help by family.
#[derive(Debug, Default)]
pub struct Exposition {
    /// Samples in the order written.
    pub samples: Vec<Sample>,
    /// `# TYPE` per family name.
    pub types: HashMap<String, FamilyType>,
    /// `# HELP` per family name.
    pub help: HashMap<String, String>,
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

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// Parses a float as the format allows (`NaN`, `+Inf`, `-Inf`, Go float syntax).
pub fn parse_float(s: &str) -> Option<f64> {
    match s {
        "NaN" | "nan" => Some(f64::NAN),
        "+Inf" | "Inf" | "+inf" | "inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        _ => s.parse().ok(),
    }
}

/// Parses a whole exposition, stopping at `max_samples` samples (`0`: no limit) with an
/// error.
pub fn parse(text: &str, max_samples: usize) -> Result<Exposition, ParseError> {
    let mut out = Exposition::default();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim_matches(|c| c == ' ' || c == '\t' || c == '\r');
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
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
                        "untyped" => FamilyType::Untyped,
                        other => return Err(err(n, format!("unknown metric type {other:?}"))),
                    };
                    if out.types.insert(name.to_string(), t).is_some() {
                        return Err(err(n, format!("second TYPE line for {name}")));
                    }
                }
                Some("HELP") => {
                    if let Some(name) = parts.next() {
                        let help = parts.next().unwrap_or("");
                        out.help.insert(
                            name.to_string(),
                            help.replace("\\n", "\n").replace("\\\\", "\\"),
                        );
                    }
                }
                _ => {}
            }
            continue;
        }
        out.samples.push(sample(line, n)?);
        if max_samples > 0 && out.samples.len() > max_samples {
            return Err(err(
                n,
                format!("more than sample_limit {max_samples} samples"),
            ));
        }
    }
    Ok(out)
}

fn sample(line: &str, n: usize) -> Result<Sample, ParseError> {
    let name_end = line.find(|c: char| !is_name_char(c)).unwrap_or(line.len());
    let name = &line[..name_end];
    if name.is_empty() || !name.starts_with(is_name_start) {
        return Err(err(
            n,
            format!("expected a metric name, found {:?}", short(line)),
        ));
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(after) = rest.strip_prefix('{') {
        let (l, r) = label_set(after, n)?;
        labels = l;
        rest = r;
    }
    let mut fields = rest.split_ascii_whitespace();
    let value = fields
        .next()
        .ok_or_else(|| err(n, format!("{name}: no value")))?;
    let value = parse_float(value).ok_or_else(|| err(n, format!("{name}: bad value {value:?}")))?;
    let timestamp_ms = match fields.next() {
        None => None,
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
    Ok(Sample {
        name: name.to_string(),
        labels,
        value,
        timestamp_ms,
    })
}

/// Parses `a="x",b="y"}` (after the `{`); returns the labels and what follows the `}`.
/// Label pairs in the order written.
pub type Labels = Vec<(String, String)>;

fn label_set(mut s: &str, n: usize) -> Result<(Labels, &str), ParseError> {
    let mut labels: Labels = Vec::new();
    loop {
        s = s.trim_start();
        if let Some(rest) = s.strip_prefix('}') {
            return Ok((labels, rest));
        }
        let end = s.find(|c: char| !is_name_char(c)).unwrap_or(s.len());
        let name = &s[..end];
        if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) || name.contains(':') {
            return Err(err(n, format!("bad label name at {:?}", short(s))));
        }
        s = s[end..].trim_start();
        s = s
            .strip_prefix('=')
            .ok_or_else(|| err(n, format!("expected '=' after label {name}")))?
            .trim_start();
        s = s
            .strip_prefix('"')
            .ok_or_else(|| err(n, format!("label {name}: value must be quoted")))?;
        let mut value = String::new();
        let mut chars = s.char_indices();
        let close = loop {
            match chars.next() {
                None => return Err(err(n, format!("label {name}: unterminated value"))),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, c)) => {
                        value.push('\\');
                        value.push(c);
                    }
                    None => return Err(err(n, format!("label {name}: unterminated value"))),
                },
                Some((_, c)) => value.push(c),
            }
        };
        if labels.iter().any(|(k, _)| k == name) {
            return Err(err(n, format!("label {name} given twice")));
        }
        labels.push((name.to_string(), value));
        s = s[close + 1..].trim_start();
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

    #[test]
    fn parses_types_help_labels_and_timestamps() {
        let text = "# HELP x_total Things.\\nMore\n# TYPE x_total counter\nx_total{a=\"1\",b=\"q\\\"\\\\\\n\"} 3 1700000000000\n\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nup 1\nnan_one NaN\nneg{} -Inf\n";
        let e = parse(text, 0).unwrap();
        assert_eq!(e.types["x_total"], FamilyType::Counter);
        assert_eq!(e.types["h"], FamilyType::Histogram);
        assert_eq!(e.help["x_total"], "Things.\nMore");
        assert_eq!(
            e.samples[0],
            Sample {
                name: "x_total".into(),
                labels: vec![("a".into(), "1".into()), ("b".into(), "q\"\\\n".into())],
                value: 3.0,
                timestamp_ms: Some(1_700_000_000_000),
            }
        );
        assert_eq!(e.samples.len(), 5);
        assert!(e.samples[3].value.is_nan());
        assert_eq!(e.samples[4].value, f64::NEG_INFINITY);
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
            ("# TYPE x blob\n", "line 1: unknown metric type \"blob\""),
            (
                "{a=\"b\"} 1\n",
                "line 1: expected a metric name, found \"{a=\\\"b\\\"} 1\"",
            ),
            ("x{a=\"1\",a=\"2\"} 1\n", "line 1: label a given twice"),
            ("x{a=\"1} 1\n", "line 1: label a: unterminated value"),
            ("x\n", "line 1: x: no value"),
        ] {
            assert_eq!(parse(text, 0).unwrap_err().to_string(), want, "{text:?}");
        }
        assert_eq!(
            parse("a 1\nb 2\nc 3\n", 2).unwrap_err().to_string(),
            "line 3: more than sample_limit 2 samples"
        );
    }
}
