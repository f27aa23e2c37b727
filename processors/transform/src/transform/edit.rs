//! OTTL editors: compiled from a parsed statement, run on one record at a time.
//!
//! A statement runs in two steps: its condition and arguments are evaluated against the
//! record as it is (read-only, with weir-filter's evaluator), then the change is written.

use regex::Regex;
use weir_api::otlp::common::v1::{any_value, AnyValue, ArrayValue, KeyValue, KeyValueList};
use weir_filter::ottl::parser::{Key, Literal, StatementAst, ValAst};
use weir_filter::ottl::value::{to_string_like, Val};
use weir_filter::ottl::{
    eval_value, with_hint, CVal, Compiler, Condition, Ctx, Field, OttlError, Record,
};

/// A writable place: a field of the statement's own context, and keys into it.
#[derive(Debug, Clone)]
pub struct Target {
    pub field: Field,
    pub keys: Vec<Key>,
    pub text: String,
}

/// `merge_maps` strategies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    Insert,
    Update,
    Upsert,
}

/// A compiled editor call.
#[derive(Debug)]
pub enum Editor {
    Set(Target, CVal),
    DeleteKey(Target, String),
    DeleteMatchingKeys(Target, Regex),
    KeepKeys(Target, Vec<String>),
    KeepMatchingKeys(Target, Regex),
    TruncateAll(Target, usize),
    Limit(Target, usize, Vec<String>),
    ReplacePattern(Target, CVal, Regex, String),
    ReplaceAllPatterns(Target, bool, Regex, String),
    ReplaceMatch(Target, CVal, Regex, String),
    ReplaceAllMatches(Target, Regex, String),
    MergeMaps(Target, CVal, Strategy),
    /// `append`: the target as read, and the values to add.
    Append(Target, CVal, Vec<CVal>),
    /// `delete_index`: the target as read, the start index and the optional end index.
    DeleteIndex(Target, CVal, CVal, Option<CVal>),
    /// `flatten`: prefix, depth, resolve conflicts.
    Flatten(Target, String, i64, bool),
}

/// One compiled statement.
#[derive(Debug)]
pub struct Statement {
    pub editor: Editor,
    pub condition: Option<Condition>,
    pub text: String,
}

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

/// What a statement will do to the record, computed while the record is only read.
pub enum Change {
    None,
    Set(AnyValue),
    Map(Vec<KeyValue>),
}

/// Evaluates the statement's condition and the values it writes. `Ok(None)`: the
/// condition is false.
pub fn prepare(st: &Statement, rec: &Record<'_>) -> Result<Option<Change>, String> {
    if let Some(c) = &st.condition {
        if !c.eval(rec).map_err(|e| e.message)? {
            return Ok(None);
        }
    }
    let string_of = |v: &CVal| -> Result<Option<String>, String> {
        let v = eval_value(v, rec)?;
        Ok(match v {
            Val::Str(s) => Some(s.into_owned()),
            _ => None,
        })
    };
    Ok(Some(match &st.editor {
        Editor::Set(_, v) => match to_any(&eval_value(v, rec)?) {
            Some(a) => Change::Set(a),
            // The Collector's set does nothing with a nil value.
            None => Change::None,
        },
        Editor::ReplacePattern(_, read, re, repl) => match string_of(read)? {
            Some(s) if re.is_match(&s) => {
                Change::Set(str_any(re.replace_all(&s, repl.as_str()).into_owned()))
            }
            _ => Change::None,
        },
        Editor::ReplaceMatch(_, read, glob, repl) => match string_of(read)? {
            Some(s) if glob.is_match(&s) => Change::Set(str_any(repl.clone())),
            _ => Change::None,
        },
        Editor::MergeMaps(_, src, _) => match eval_value(src, rec)? {
            Val::Map(m) => Change::Map(m.to_vec()),
            Val::Nil => Change::None,
            other => {
                return Err(format!(
                    "merge_maps: the source is a {}, not a map",
                    other.type_name()
                ))
            }
        },
        Editor::Append(_, read, values) => {
            // The target's items (a list), or the target itself (a scalar), then the values.
            let mut items: Vec<AnyValue> = match eval_value(read, rec)? {
                Val::Nil => Vec::new(),
                Val::List(l) => l.into_owned(),
                Val::Map(_) => return Err("append: unsupported type of target field: map".into()),
                scalar => to_any(&scalar).into_iter().collect(),
            };
            for v in values {
                items.push(to_any(&eval_value(v, rec)?).unwrap_or_default());
            }
            Change::Set(AnyValue {
                value: Some(any_value::Value::ArrayValue(ArrayValue { values: items })),
            })
        }
        Editor::DeleteIndex(_, read, start, end) => {
            let index = |v: &CVal, what: &str| -> Result<i64, String> {
                match eval_value(v, rec)? {
                    Val::Int(i) => Ok(i),
                    other => Err(format!(
                        "delete_index: {what} must be an int, got {}",
                        other.type_name()
                    )),
                }
            };
            let mut items: Vec<AnyValue> = match eval_value(read, rec)? {
                Val::List(l) => l.into_owned(),
                other => {
                    return Err(format!(
                        "delete_index: the target is a {}, not a list",
                        other.type_name()
                    ))
                }
            };
            let len = items.len() as i64;
            let start = index(start, "the start index")?;
            let end = match end {
                Some(e) => index(e, "the end index")?,
                None => start.saturating_add(1),
            };
            // The Collector's checks, in its order and words.
            if !(start == 0 && end == len) {
                if start < 0 || start >= len {
                    return Err(format!(
                        "startIndex {start} out of bounds for slice of length {len}"
                    ));
                }
                if end < start {
                    return Err(format!(
                        "endIndex {end} cannot be less than startIndex {start}"
                    ));
                }
                if end > len {
                    return Err(format!(
                        "deletion range [{start}:{end}] out of bounds for slice of length {len}"
                    ));
                }
            }
            items.drain(start as usize..end as usize);
            Change::Set(AnyValue {
                value: Some(any_value::Value::ArrayValue(ArrayValue { values: items })),
            })
        }
        _ => Change::None,
    }))
}

fn str_any(s: String) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::StringValue(s)),
    }
}

/// Makes sure `v` holds a map and returns it (an absent value becomes an empty map; any
/// other value is replaced, as pdata's `SetEmptyMap` does).
fn as_map(v: &mut AnyValue) -> &mut Vec<KeyValue> {
    if !matches!(v.value, Some(any_value::Value::KvlistValue(_))) {
        v.value = Some(any_value::Value::KvlistValue(KeyValueList::default()));
    }
    match &mut v.value {
        Some(any_value::Value::KvlistValue(m)) => &mut m.values,
        _ => unreachable!("set just above"),
    }
}

/// The map at `keys` below `root`: `None` when a step is absent or not a map.
pub fn map_at<'m>(root: &'m mut Vec<KeyValue>, keys: &[Key]) -> Option<&'m mut Vec<KeyValue>> {
    let Some((first, rest)) = keys.split_first() else {
        return Some(root);
    };
    let Key::Str(k) = first else { return None };
    let kv = root.iter_mut().find(|kv| kv.key == *k)?;
    match kv.value.as_mut().and_then(|v| v.value.as_mut()) {
        Some(any_value::Value::KvlistValue(m)) => map_at(&mut m.values, rest),
        _ => None,
    }
}

/// Sets the value at `keys` (at least one) below `root`, creating maps on the way.
pub fn set_at(root: &mut Vec<KeyValue>, keys: &[Key], value: AnyValue) -> Result<(), String> {
    let Some((first, rest)) = keys.split_first() else {
        return Ok(());
    };
    let Key::Str(k) = first else {
        return Err("setting a list element by index is not supported".into());
    };
    let pos = match root.iter().position(|kv| kv.key == *k) {
        Some(p) => p,
        None => {
            root.push(KeyValue {
                key: k.clone(),
                value: Some(AnyValue::default()),
                ..Default::default()
            });
            root.len() - 1
        }
    };
    let slot = root[pos].value.get_or_insert_with(AnyValue::default);
    if rest.is_empty() {
        *slot = value;
        Ok(())
    } else {
        set_at(as_map(slot), rest, value)
    }
}

/// Applies a map editor to `map`; `change` carries what [`prepare`] computed.
pub fn edit_map(editor: &Editor, map: &mut Vec<KeyValue>, change: Change) {
    match editor {
        Editor::Flatten(_, prefix, depth, conflicts) => {
            let mut f = Flattener {
                out: Vec::new(),
                seen: std::collections::HashMap::new(),
                conflicts: *conflicts,
                max: *depth,
            };
            f.map(std::mem::take(map), prefix, 0);
            *map = f.out;
        }
        Editor::DeleteKey(_, k) => map.retain(|kv| kv.key != *k),
        Editor::DeleteMatchingKeys(_, re) => map.retain(|kv| !re.is_match(&kv.key)),
        Editor::KeepKeys(_, keys) => map.retain(|kv| keys.contains(&kv.key)),
        Editor::KeepMatchingKeys(_, re) => map.retain(|kv| re.is_match(&kv.key)),
        Editor::TruncateAll(_, limit) => {
            for kv in map.iter_mut() {
                if let Some(AnyValue {
                    value: Some(any_value::Value::StringValue(s)),
                }) = &mut kv.value
                {
                    if s.len() > *limit {
                        // At a character boundary at or below the limit (the Collector cuts
                        // bytes and may split a character).
                        let mut end = *limit;
                        while !s.is_char_boundary(end) {
                            end -= 1;
                        }
                        s.truncate(end);
                    }
                }
            }
        }
        Editor::Limit(_, limit, priority) => {
            if map.len() > *limit {
                let mut keep = vec![false; map.len()];
                let mut n = 0;
                for (i, kv) in map.iter().enumerate() {
                    if priority.contains(&kv.key) && n < *limit {
                        keep[i] = true;
                        n += 1;
                    }
                }
                for k in keep.iter_mut() {
                    if n >= *limit {
                        break;
                    }
                    if !*k {
                        *k = true;
                        n += 1;
                    }
                }
                let mut it = keep.iter();
                map.retain(|_| *it.next().unwrap_or(&false));
            }
        }
        Editor::ReplaceAllPatterns(_, keys, re, repl) => {
            if *keys {
                for kv in map.iter_mut() {
                    if re.is_match(&kv.key) {
                        kv.key = re.replace_all(&kv.key, repl.as_str()).into_owned();
                    }
                }
            } else {
                for kv in map.iter_mut() {
                    if let Some(AnyValue {
                        value: Some(any_value::Value::StringValue(s)),
                    }) = &mut kv.value
                    {
                        if re.is_match(s) {
                            *s = re.replace_all(s, repl.as_str()).into_owned();
                        }
                    }
                }
            }
        }
        Editor::ReplaceAllMatches(_, glob, repl) => {
            for kv in map.iter_mut() {
                if let Some(AnyValue {
                    value: Some(any_value::Value::StringValue(s)),
                }) = &mut kv.value
                {
                    if glob.is_match(s) {
                        *s = repl.clone();
                    }
                }
            }
        }
        Editor::MergeMaps(_, _, strategy) => {
            let Change::Map(src) = change else { return };
            for kv in src {
                let pos = map.iter().position(|x| x.key == kv.key);
                match (pos, strategy) {
                    (Some(p), Strategy::Update | Strategy::Upsert) => map[p].value = kv.value,
                    (None, Strategy::Insert | Strategy::Upsert) => map.push(kv),
                    _ => {}
                }
            }
        }
        Editor::Set(..)
        | Editor::ReplacePattern(..)
        | Editor::ReplaceMatch(..)
        | Editor::Append(..)
        | Editor::DeleteIndex(..) => {}
    }
}

/// The target of any editor.
pub fn target(editor: &Editor) -> &Target {
    match editor {
        Editor::Set(t, _)
        | Editor::DeleteKey(t, _)
        | Editor::DeleteMatchingKeys(t, _)
        | Editor::KeepKeys(t, _)
        | Editor::KeepMatchingKeys(t, _)
        | Editor::TruncateAll(t, _)
        | Editor::Limit(t, _, _)
        | Editor::ReplacePattern(t, _, _, _)
        | Editor::ReplaceAllPatterns(t, _, _, _)
        | Editor::ReplaceMatch(t, _, _, _)
        | Editor::ReplaceAllMatches(t, _, _)
        | Editor::MergeMaps(t, _, _)
        | Editor::Append(t, _, _)
        | Editor::DeleteIndex(t, _, _, _)
        | Editor::Flatten(t, _, _, _) => t,
    }
}

/// A value as a string for the string fields (`name`, `severity_text`): strings only.
pub fn as_str(v: &AnyValue) -> Option<String> {
    match &v.value {
        Some(any_value::Value::StringValue(s)) => Some(s.clone()),
        _ => None,
    }
}

/// A value as an int for the numeric fields.
pub fn as_int(v: &AnyValue) -> Option<i64> {
    match &v.value {
        Some(any_value::Value::IntValue(i)) => Some(*i),
        _ => None,
    }
}

/// A value rendered for messages.
pub fn describe(v: &AnyValue) -> String {
    to_string_like(&Val::from_any(v))
        .map(|s| s.into_owned())
        .unwrap_or_else(|| "nil".into())
}

/// The Collector's `flatten`: nested maps become `a.b` keys and list items `a.0`, to `max`
/// levels; with `conflicts`, a key already written gets `.0`, `.1`, ... suffixes (list items
/// then go under the list's own key, as the Collector does).
struct Flattener {
    out: Vec<KeyValue>,
    seen: std::collections::HashMap<String, usize>,
    conflicts: bool,
    max: i64,
}

impl Flattener {
    fn put(&mut self, key: String, value: Option<AnyValue>) {
        match self.out.iter_mut().find(|kv| kv.key == key) {
            Some(kv) => kv.value = value,
            None => self.out.push(KeyValue {
                key,
                value,
                ..Default::default()
            }),
        }
    }

    fn put_checked(&mut self, key: String, value: Option<AnyValue>) {
        if !self.conflicts {
            return self.put(key, value);
        }
        if self.out.iter().any(|kv| kv.key == key) {
            let n = self.seen.entry(key.clone()).or_insert(0);
            let new_key = format!("{key}.{n}");
            *n += 1;
            self.put(new_key, value);
        } else {
            self.seen.insert(key.clone(), 0);
            self.put(key, value);
        }
    }

    fn map(&mut self, m: Vec<KeyValue>, prefix: &str, depth: i64) {
        let prefix = if prefix.is_empty() {
            String::new()
        } else {
            format!("{prefix}.")
        };
        for kv in m {
            self.value(kv.key, kv.value, depth, &prefix);
        }
    }

    /// Items of a list inside a list: the Collector adds no `.` between the prefix and the
    /// index here (`a.0` then `0` gives `a.00`).
    fn list(&mut self, items: Vec<AnyValue>, prefix: &str, depth: i64) {
        for (i, v) in items.into_iter().enumerate() {
            self.value(i.to_string(), Some(v), depth + 1, prefix);
        }
    }

    fn value(&mut self, k: String, v: Option<AnyValue>, depth: i64, prefix: &str) {
        use any_value::Value as V;
        match v.and_then(|v| v.value) {
            Some(V::KvlistValue(m)) if depth < self.max => {
                self.map(m.values, &format!("{prefix}{k}"), depth + 1)
            }
            Some(V::ArrayValue(a)) if depth < self.max => {
                for (i, item) in a.values.into_iter().enumerate() {
                    let at = format!("{prefix}{k}.{i}");
                    match item.value {
                        Some(V::KvlistValue(m)) if depth + 1 < self.max => {
                            self.map(m.values, &at, depth + 2)
                        }
                        Some(V::ArrayValue(inner)) if depth + 1 < self.max => {
                            self.list(inner.values, &at, depth + 2)
                        }
                        other => {
                            let item = Some(AnyValue { value: other });
                            if self.conflicts {
                                self.put_checked(format!("{prefix}{k}"), item);
                            } else {
                                self.put(at, item);
                            }
                        }
                    }
                }
            }
            other => self.put_checked(format!("{prefix}{k}"), Some(AnyValue { value: other })),
        }
    }
}
