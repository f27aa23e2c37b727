//! What went wrong while decoding OTLP/JSON, and where.

use std::fmt;

/// An OTLP/JSON body that could not be decoded.
///
/// The message names the place in the document as a JSON path (field names as they were
/// written in the input, list indices in brackets) and what was wrong there, e.g.
/// `resourceLogs[0].scopeLogs[1].logRecords[3].traceId: invalid hex id "zz" (expected 32 hex digits)`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JsonError {
    /// The body is not well-formed JSON (or nests deeper than 128 levels).
    #[error("invalid JSON: {source}")]
    Syntax {
        /// What the JSON parser reported, with line and column.
        #[source]
        source: serde_json::Error,
    },
    /// The body is JSON, but a value does not fit the OTLP message at `location`.
    #[error("{location}: {problem}")]
    Invalid {
        /// JSON path of the offending value, e.g. `resourceSpans[0].scopeSpans[0].spans[2].kind`;
        /// `request` for the document itself.
        location: String,
        /// What is wrong with the value.
        problem: Problem,
    },
}

impl JsonError {
    /// The JSON path of the offending value, when the body parsed as JSON.
    pub fn location(&self) -> Option<&str> {
        match self {
            JsonError::Syntax { .. } => None,
            JsonError::Invalid { location, .. } => Some(location),
        }
    }
}

/// What is wrong with one JSON value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Problem {
    /// The value has the wrong JSON type.
    #[error("expected {expected}, got {found}")]
    WrongType {
        /// What the field takes, e.g. `a string`.
        expected: &'static str,
        /// The JSON type found, e.g. `a number`.
        found: &'static str,
    },
    /// A trace or span id that is not the right number of hex digits.
    #[error("invalid hex id \"{value}\" (expected {expected_digits} hex digits)")]
    InvalidHexId {
        /// The string found (shortened when long).
        value: String,
        /// 32 for trace ids, 16 for span ids.
        expected_digits: usize,
    },
    /// A bytes value that is not base64.
    #[error("invalid base64 \"{value}\": {reason}")]
    InvalidBase64 {
        /// The string found (shortened when long).
        value: String,
        /// What the base64 decoder reported.
        reason: base64::DecodeError,
    },
    /// A number (or numeric string) that is not a valid value of the field's type.
    #[error("invalid {kind} {value}")]
    InvalidNumber {
        /// The protobuf type, e.g. `uint64`, `int32`, `double`.
        kind: &'static str,
        /// The value found, as written (strings quoted, shortened when long).
        value: String,
    },
    /// An enum given by a name that the enum does not have.
    #[error("unknown {enum_name} name \"{value}\"")]
    UnknownEnumName {
        /// The protobuf enum, e.g. `SpanKind`.
        enum_name: &'static str,
        /// The name found (shortened when long).
        value: String,
    },
    /// Two members of one `oneof` are set, e.g. both `stringValue` and `intValue`.
    #[error("both \"{first}\" and \"{second}\" are set, but only one of them is allowed")]
    OneofConflict {
        /// The member seen first.
        first: String,
        /// The member seen second.
        second: String,
    },
}

/// Where a value sits in the document: a linked list from the value up to the root, built on
/// the stack as the decoder descends, so that it costs nothing until an error renders it.
#[derive(Clone, Copy)]
pub(crate) enum Path<'a> {
    Root,
    Field(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl<'a> Path<'a> {
    pub(crate) fn field(&'a self, name: &'a str) -> Path<'a> {
        Path::Field(self, name)
    }

    pub(crate) fn index(&'a self, index: usize) -> Path<'a> {
        Path::Index(self, index)
    }

    pub(crate) fn error(&self, problem: Problem) -> JsonError {
        JsonError::Invalid {
            location: self.to_string(),
            problem,
        }
    }

    fn write_to(&self, out: &mut String) {
        match self {
            Path::Root => {}
            Path::Field(parent, name) => {
                parent.write_to(out);
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(name);
            }
            Path::Index(parent, index) => {
                parent.write_to(out);
                out.push('[');
                out.push_str(&index.to_string());
                out.push(']');
            }
        }
    }
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        self.write_to(&mut out);
        if out.is_empty() {
            f.write_str("request")
        } else {
            f.write_str(&out)
        }
    }
}

/// Longest input excerpt quoted in an error message, in characters.
const MAX_QUOTED_CHARS: usize = 64;

/// A value as an error message quotes it: shortened, so that a huge or hostile input cannot
/// make the error (and the log line it ends up in) huge, and escaped like a Rust string
/// literal, so that quotes, newlines and control characters in it cannot forge log lines.
pub(crate) fn excerpt(value: &str) -> String {
    let mut out = String::new();
    let mut chars = value.chars();
    for c in chars.by_ref().take(MAX_QUOTED_CHARS) {
        out.extend(c.escape_debug());
    }
    if chars.next().is_some() {
        out.push_str("...");
    }
    out
}
