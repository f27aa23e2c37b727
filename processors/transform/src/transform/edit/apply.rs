//! Running a compiled statement on one record: evaluating its condition and arguments
//! into a [`Change`] (read-only), then writing that change into a map of attributes, with
//! the helpers that read, find and set values by key path.

use weir_api::otlp::common::v1::{any_value, AnyValue, ArrayValue, KeyValue, KeyValueList};
use weir_filter::ottl::parser::Key;
use weir_filter::ottl::value::{to_string_like, Val};
use weir_filter::ottl::{eval_value, CVal, Record};

use super::editors::to_any;
use super::flatten::Flattener;
use super::{Editor, Statement, Strategy, Target};

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
