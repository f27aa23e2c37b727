//! A subset of the OpenTelemetry Transformation Language (OTTL): boolean conditions as the
//! collector's `filter` processor takes them, compiled once into an evaluator that walks
//! the OTLP records in place.
//!
//! Supported: paths `attributes["k"]` (nested keys and list indexes), `resource.*`,
//! `scope.*` / `instrumentation_scope.*`, and the fields of the log, span, span event,
//! metric and data point contexts (see [`compile`]'s field table); literals (strings,
//! ints, floats, bools, `nil`, `0x..` bytes); `== != < <= > >=`; `and`, `or`, `not`,
//! parentheses; converters `IsMatch`, `IsRootSpan`, `HasAttrKeyOnDatapoint`,
//! `HasAttrOnDatapoint`, `Len`, `Concat`, `String`, `Int`, `Double`, `ConvertCase`,
//! `ToLowerCase`, `ToUpperCase`, `SHA256`, `Substring`, `HasPrefix`, `HasSuffix`, `IsString`,
//! `IsInt`, `IsDouble`, `IsBool`, `IsMap`, `IsList`, `Split`, `ParseJSON`; the `SEVERITY_NUMBER_*`,
//! `SPAN_KIND_*`, `STATUS_CODE_*`, `METRIC_DATA_TYPE_*` and `AGGREGATION_TEMPORALITY_*`
//! enums. Statements (`editor(args) where condition`) parse with
//! [`parser::parse_statement`]; the `transform` processor (weir-transform) compiles their
//! editors. Everything else (math, other converters, map literals) is rejected when the
//! config is validated, never ignored.

pub mod compile;
pub mod eval;
pub mod lexer;
pub mod parser;
pub mod value;

pub use compile::{
    compile_group, infer_statement, CompiledGroup, Compiler, Ctx, GroupError, PathMode, SignalKind,
};
pub use eval::{eval_value, CVal, Condition, EvalError, Field, Item, Point, Record};

use std::fmt;

/// Why a condition was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OttlError {
    /// The text is not a well-formed condition. `at` is a byte offset.
    Syntax { at: usize, message: String },
    /// Well-formed, but names something unknown or unsupported.
    Invalid(String),
}

impl OttlError {
    pub(crate) fn syntax(at: usize, message: impl Into<String>) -> Self {
        OttlError::Syntax {
            at,
            message: message.into(),
        }
    }
    pub(crate) fn unsupported(message: impl Into<String>) -> Self {
        OttlError::Invalid(message.into())
    }
}

impl fmt::Display for OttlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OttlError::Syntax { at, message } => {
                write!(f, "syntax error at column {}: {message}", at + 1)
            }
            OttlError::Invalid(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for OttlError {}

/// The closest candidate to `word` when it is a plausible typo (edit distance at most 2,
/// or a third of the word), for "did you mean" hints.
pub fn suggest<'c>(word: &str, candidates: impl IntoIterator<Item = &'c str>) -> Option<&'c str> {
    let w = word.to_ascii_lowercase();
    let limit = (word.len() / 3).max(2);
    candidates
        .into_iter()
        .map(|c| (edit_distance(&w, &c.to_ascii_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// `message` with ` (did you mean "x"?)` appended when a close candidate exists.
pub fn with_hint<'c>(
    message: String,
    word: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> String {
    match suggest(word, candidates) {
        Some(s) => format!("{message} (did you mean \"{s}\"?)"),
        None => message,
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_find_typos_only() {
        let names = ["IsMatch", "IsRootSpan", "Len", "Concat"];
        assert_eq!(suggest("IsMach", names), Some("IsMatch"));
        assert_eq!(suggest("ismatch", names), Some("IsMatch"));
        assert_eq!(suggest("Lenn", names), Some("Len"));
        assert_eq!(suggest("Substring", names), None);
    }
}
