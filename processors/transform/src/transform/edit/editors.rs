//! Compiling a parsed statement into an [`Editor`]: the editors OTTL knows (and the ones
//! named but not supported), which paths can be written, argument checks, and glob
//! patterns as regexes.

use regex::Regex;
use weir_api::otlp::common::v1::{any_value, AnyValue, ArrayValue, KeyValueList};
use weir_filter::ottl::parser::{Literal, StatementAst, ValAst};
use weir_filter::ottl::value::Val;
use weir_filter::ottl::{with_hint, Compiler, Ctx, Field, OttlError};

use super::{Editor, Statement, Strategy, Target};

/// Editors this processor implements.
pub const EDITORS: &[&str] = &[
    "set",
    "delete_key",
    "delete_matching_keys",
    "keep_keys",
    "keep_matching_keys",
    "truncate_all",
    "limit",
    "replace_pattern",
    "replace_all_patterns",
    "replace_match",
    "replace_all_matches",
    "merge_maps",
    "append",
    "delete_index",
    "flatten",
];

// The Collector's other editors: named so the error says "not supported".
const KNOWN_UNSUPPORTED: &[&str] = &["route"];

/// The fields a statement may write, per context (the map-valued ones take keys).
fn writable(ctx: Ctx, f: Field) -> bool {
    use Field::*;
    match ctx {
        Ctx::Resource => matches!(f, ResourceAttributes),
        Ctx::Scope => matches!(f, ScopeAttributes | ScopeName | ScopeVersion),
        Ctx::Log => matches!(
            f,
            LogBody
                | LogAttributes
                | LogSeverityNumber
                | LogSeverityText
                | LogTime
                | LogObservedTime
                | LogEventName
                | LogFlags
        ),
        Ctx::Span => matches!(
            f,
            SpanName
                | SpanKind
                | SpanStatusCode
                | SpanStatusMessage
                | SpanAttributes
                | SpanTraceState
                | SpanStart
                | SpanEnd
        ),
        Ctx::SpanEvent => {
            matches!(f, EventName | EventAttributes | EventTime) || writable(Ctx::Span, f)
        }
        Ctx::Metric => matches!(f, MetricName | MetricDescription | MetricUnit),
        Ctx::DataPoint => {
            matches!(f, PointAttributes | PointValueInt | PointValueDouble)
                || writable(Ctx::Metric, f)
        }
    }
}

/// Whether a field is a map (attributes) or may hold one (a log body).
fn map_field(f: Field) -> bool {
    use Field::*;
    matches!(
        f,
        ResourceAttributes
            | ScopeAttributes
            | LogAttributes
            | LogBody
            | SpanAttributes
            | EventAttributes
            | PointAttributes
    )
}

/// Compiles one parsed statement for context `ctx`.
pub fn compile(
    ctx: Ctx,
    compiler: &Compiler,
    st: &StatementAst,
    text: &str,
) -> Result<Statement, OttlError> {
    let name = st.editor.as_str();
    let args = &st.args;
    let arity = |min: usize, max: usize| -> Result<(), OttlError> {
        if args.len() < min || args.len() > max {
            let want = if min == max {
                format!("{min}")
            } else {
                format!("{min} to {max}")
            };
            return Err(OttlError::Invalid(format!(
                "{name} takes {want} arguments, got {}",
                args.len()
            )));
        }
        Ok(())
    };
    let target = |i: usize, want_map: bool| -> Result<Target, OttlError> {
        let ValAst::Path(p) = &args[i] else {
            return Err(OttlError::Invalid(format!(
                "{name}: argument {} must be a path (such as attributes[\"key\"])",
                i + 1
            )));
        };
        let (field, keys) = compiler.resolve_path(p)?;
        if !writable(ctx, field) {
            return Err(OttlError::Invalid(format!(
                "{name}: path \"{}\" cannot be written in the {} context by Weir's transform (a statement writes its own context, and the span from span events or the metric from data points; use a group with the context of the path)",
                p.text(),
                ctx.name()
            )));
        }
        if want_map && !map_field(field) {
            return Err(OttlError::Invalid(format!(
                "{name}: path \"{}\" is not a map",
                p.text()
            )));
        }
        Ok(Target {
            field,
            keys,
            text: p.text(),
        })
    };
    let string = |i: usize, what: &str| -> Result<String, OttlError> {
        match &args[i] {
            ValAst::Literal(Literal::Str(s)) => Ok(s.clone()),
            _ => Err(OttlError::Invalid(format!(
                "{name}: {what} must be a string literal"
            ))),
        }
    };
    let int = |i: usize, what: &str| -> Result<usize, OttlError> {
        match &args[i] {
            ValAst::Literal(Literal::Int(n)) if *n >= 0 => Ok(*n as usize),
            _ => Err(OttlError::Invalid(format!(
                "{name}: {what} must be a non-negative integer literal"
            ))),
        }
    };
    let regex = |i: usize| -> Result<Regex, OttlError> {
        let pattern = string(i, "the pattern")?;
        Regex::new(&pattern)
            .map_err(|e| OttlError::Invalid(format!("{name}: invalid regex {pattern:?}: {e}")))
    };
    let glob = |i: usize| -> Result<Regex, OttlError> {
        let pattern = string(i, "the pattern")?;
        glob_regex(&pattern)
            .map_err(|e| OttlError::Invalid(format!("{name}: invalid pattern {pattern:?}: {e}")))
    };
    let editor = match name {
        "set" => {
            arity(2, 2)?;
            Editor::Set(target(0, false)?, compiler.value(&args[1])?)
        }
        "delete_key" => {
            arity(2, 2)?;
            Editor::DeleteKey(target(0, true)?, string(1, "the key")?)
        }
        "delete_matching_keys" => {
            arity(2, 2)?;
            Editor::DeleteMatchingKeys(target(0, true)?, regex(1)?)
        }
        "keep_keys" => {
            arity(2, 2)?;
            let ValAst::List(items) = &args[1] else {
                return Err(OttlError::Invalid(
                    "keep_keys: the keys must be a list of strings such as [\"a\", \"b\"]".into(),
                ));
            };
            let mut keys = Vec::new();
            for it in items {
                match it {
                    ValAst::Literal(Literal::Str(s)) => keys.push(s.clone()),
                    _ => {
                        return Err(OttlError::Invalid(
                            "keep_keys: every key must be a string literal".into(),
                        ))
                    }
                }
            }
            Editor::KeepKeys(target(0, true)?, keys)
        }
        "keep_matching_keys" => {
            arity(2, 2)?;
            Editor::KeepMatchingKeys(target(0, true)?, regex(1)?)
        }
        "truncate_all" => {
            arity(2, 2)?;
            Editor::TruncateAll(target(0, true)?, int(1, "the limit")?)
        }
        "limit" => {
            arity(2, 3)?;
            let mut priority = Vec::new();
            if let Some(ValAst::List(items)) = args.get(2) {
                for it in items {
                    match it {
                        ValAst::Literal(Literal::Str(s)) => priority.push(s.clone()),
                        _ => {
                            return Err(OttlError::Invalid(
                                "limit: every priority key must be a string literal".into(),
                            ))
                        }
                    }
                }
            } else if args.len() == 3 {
                return Err(OttlError::Invalid(
                    "limit: the priority keys must be a list of strings".into(),
                ));
            }
            let n = int(1, "the limit")?;
            if priority.len() > n {
                return Err(OttlError::Invalid(format!(
                    "limit: {} priority keys are more than the limit {n}",
                    priority.len()
                )));
            }
            Editor::Limit(target(0, true)?, n, priority)
        }
        "replace_pattern" | "replace_match" => {
            arity(3, 4)?;
            if args.len() == 4 {
                return Err(OttlError::Invalid(format!(
                    "{name}: the optional function argument is not supported by Weir"
                )));
            }
            let t = target(0, false)?;
            let read = compiler.value(&args[0])?;
            // Go's replacement syntax (`$1`, `${name}`, `$$`) is the regex crate's.
            let repl = string(2, "the replacement")?;
            if name == "replace_pattern" {
                Editor::ReplacePattern(t, read, regex(1)?, repl)
            } else {
                Editor::ReplaceMatch(t, read, glob(1)?, repl)
            }
        }
        "replace_all_patterns" => {
            arity(4, 5)?;
            if args.len() == 5 {
                return Err(OttlError::Invalid(
                    "replace_all_patterns: the optional function argument is not supported by Weir"
                        .into(),
                ));
            }
            let mode = string(1, "the mode")?;
            let keys = match mode.as_str() {
                "key" => true,
                "value" => false,
                other => {
                    return Err(OttlError::Invalid(format!(
                        "replace_all_patterns: invalid mode {other:?} (key or value)"
                    )))
                }
            };
            Editor::ReplaceAllPatterns(
                target(0, true)?,
                keys,
                regex(2)?,
                string(3, "the replacement")?,
            )
        }
        "replace_all_matches" => {
            arity(3, 4)?;
            if args.len() == 4 {
                return Err(OttlError::Invalid(
                    "replace_all_matches: the optional function argument is not supported by Weir"
                        .into(),
                ));
            }
            Editor::ReplaceAllMatches(target(0, true)?, glob(1)?, string(2, "the replacement")?)
        }
        "merge_maps" => {
            arity(3, 3)?;
            let strategy = match string(2, "the strategy")?.as_str() {
                "insert" => Strategy::Insert,
                "update" => Strategy::Update,
                "upsert" => Strategy::Upsert,
                other => {
                    return Err(OttlError::Invalid(format!(
                        "merge_maps: invalid strategy {other:?} (insert, update or upsert)"
                    )))
                }
            };
            Editor::MergeMaps(target(0, true)?, compiler.value(&args[1])?, strategy)
        }
        "append" => {
            // append(target, value) or append(target, value, [values...]); the Collector's
            // named form `values = [...]` is not parsed by Weir's OTTL.
            arity(2, 3)?;
            let mut values = vec![compiler.value(&args[1])?];
            if let Some(list) = args.get(2) {
                let ValAst::List(items) = list else {
                    return Err(OttlError::Invalid(
                        "append: the values must be a list such as [\"a\", \"b\"]".into(),
                    ));
                };
                for it in items {
                    values.push(compiler.value(it)?);
                }
            }
            Editor::Append(target(0, false)?, compiler.value(&args[0])?, values)
        }
        "flatten" => {
            arity(1, 4)?;
            let prefix = match args.get(1) {
                Some(_) => string(1, "the prefix")?,
                None => String::new(),
            };
            let depth = match args.get(2) {
                Some(ValAst::Literal(Literal::Int(d))) if *d >= 1 => *d,
                Some(ValAst::Literal(Literal::Int(d))) => {
                    return Err(OttlError::Invalid(format!(
                        "invalid depth '{d}' for flatten function, must be greater than 0"
                    )))
                }
                Some(_) => {
                    return Err(OttlError::Invalid(
                        "flatten: the depth must be an integer literal".into(),
                    ))
                }
                None => i64::MAX,
            };
            let conflicts = match args.get(3) {
                Some(ValAst::Literal(Literal::Bool(b))) => *b,
                Some(_) => {
                    return Err(OttlError::Invalid(
                        "flatten: resolveConflicts must be true or false".into(),
                    ))
                }
                None => false,
            };
            Editor::Flatten(target(0, true)?, prefix, depth, conflicts)
        }
        "delete_index" => {
            arity(2, 3)?;
            let end = match args.get(2) {
                Some(a) => Some(compiler.value(a)?),
                None => None,
            };
            Editor::DeleteIndex(
                target(0, false)?,
                compiler.value(&args[0])?,
                compiler.value(&args[1])?,
                end,
            )
        }
        _ if KNOWN_UNSUPPORTED.contains(&name) => {
            return Err(OttlError::Invalid(format!(
                "editor \"{name}\" is not supported by Weir's transform (supported: {})",
                EDITORS.join(", ")
            )))
        }
        _ => {
            return Err(OttlError::Invalid(with_hint(
                format!(
                    "unknown editor \"{name}\" (supported: {})",
                    EDITORS.join(", ")
                ),
                name,
                EDITORS.iter().copied(),
            )))
        }
    };
    let condition = match &st.condition {
        Some(c) => Some(compiler.condition(c, text)?),
        None => None,
    };
    Ok(Statement {
        editor,
        condition,
        text: text.to_string(),
    })
}

/// A glob (`*` any run, `?` one character, `[...]` a class) as an anchored regex.
fn glob_regex(pattern: &str) -> Result<Regex, regex::Error> {
    let mut re = String::from("^");
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' => re.push_str(".*"),
            '?' => re.push('.'),
            '[' => {
                re.push('[');
                if chars.peek() == Some(&'!') {
                    chars.next();
                    re.push('^');
                }
                for c in chars.by_ref() {
                    if c == ']' {
                        break;
                    }
                    if c == '\\' || c == '[' {
                        re.push('\\');
                    }
                    re.push(c);
                }
                re.push(']');
            }
            '\\' => {
                if let Some(n) = chars.next() {
                    re.push_str(&regex::escape(&n.to_string()));
                }
            }
            other => re.push_str(&regex::escape(&other.to_string())),
        }
    }
    re.push('$');
    Regex::new(&re)
}

/// An evaluated value as an owned attribute value (`None` for nil).
pub fn to_any(v: &Val<'_>) -> Option<AnyValue> {
    use any_value::Value as V;
    let value = match v {
        Val::Nil => return None,
        Val::Bool(b) => V::BoolValue(*b),
        Val::Int(i) => V::IntValue(*i),
        Val::Float(f) => V::DoubleValue(*f),
        Val::Str(s) => V::StringValue(s.to_string()),
        Val::Bytes(b) => V::BytesValue(b.to_vec()),
        Val::AttrBytes(b) => V::BytesValue(b.to_vec()),
        Val::Map(m) => V::KvlistValue(KeyValueList { values: m.to_vec() }),
        Val::List(l) => V::ArrayValue(ArrayValue { values: l.to_vec() }),
    };
    Some(AnyValue { value: Some(value) })
}
