//! Log transforms (remove, redact, rename, add) applied to one record in place, and the
//! redact replacement template (`$0`, `$1`..`$99`, `${1}`, `${name}`, `$$`).

use opentelemetry_proto::tonic::common::v1::{
    any_value, AnyValue, InstrumentationScope, KeyValue, KeyValueList,
};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::resource::v1::Resource;
use regex::{Captures, Regex};

use crate::compile::TransformOp;
use crate::record::{decode_hex, Field, WellKnown};

/// Everything a log transform may touch.
pub struct LogTarget<'a> {
    /// The record.
    pub record: &'a mut LogRecord,
    /// Its resource (created on demand by `add`).
    pub resource: &'a mut Option<Resource>,
    /// Its resource entry's schema URL.
    pub resource_schema_url: &'a mut String,
    /// Its scope (created on demand by `add`).
    pub scope: &'a mut Option<InstrumentationScope>,
    /// Its scope entry's schema URL.
    pub scope_schema_url: &'a mut String,
}

fn string_value(s: String) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::StringValue(s)),
    }
}

/// Expands a replacement template for one match. Numbered references take at most two
/// digits (`$1a` is group 1 then `a`); a missing or non-participating group is empty; a `$`
/// followed by anything else is literal.
pub fn expand(caps: &Captures<'_>, template: &str, out: &mut String) {
    let b = template.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'$' {
            let next = template[i..].find('$').map_or(b.len(), |n| i + n);
            out.push_str(&template[i..next]);
            i = next;
            continue;
        }
        match b.get(i + 1) {
            Some(b'$') => {
                out.push('$');
                i += 2;
            }
            Some(b'{') => match template[i + 2..].find('}') {
                Some(end) => {
                    let name = &template[i + 2..i + 2 + end];
                    let m = match name.parse::<usize>() {
                        Ok(n) => caps.get(n),
                        Err(_) => caps.name(name),
                    };
                    if let Some(m) = m {
                        out.push_str(m.as_str());
                    }
                    i += 3 + end;
                }
                None => {
                    out.push('$');
                    i += 1;
                }
            },
            Some(d) if d.is_ascii_digit() => {
                let mut n = usize::from(d - b'0');
                let mut len = 1;
                if let Some(d2) = b.get(i + 2).filter(|c| c.is_ascii_digit()) {
                    n = n * 10 + usize::from(d2 - b'0');
                    len = 2;
                }
                if let Some(m) = caps.get(n) {
                    out.push_str(m.as_str());
                }
                i += 1 + len;
            }
            _ => {
                out.push('$');
                i += 1;
            }
        }
    }
}

/// Replaces every non-overlapping match of `re` in `s`; `None` when nothing matched.
pub fn redact_regex(re: &Regex, template: &str, s: &str) -> Option<String> {
    if !re.is_match(s) {
        return None;
    }
    Some(
        re.replace_all(s, |caps: &Captures<'_>| {
            let mut out = String::new();
            expand(caps, template, &mut out);
            out
        })
        .into_owned(),
    )
}

/// The attribute list holding the last segment of `path`, walking (and with `create`,
/// building) nested maps.
fn container<'a>(
    attrs: &'a mut Vec<KeyValue>,
    path: &[String],
    create: bool,
) -> Option<&'a mut Vec<KeyValue>> {
    let (_, parents) = path.split_last()?;
    let mut cur = attrs;
    for seg in parents {
        let pos = match cur.iter().position(|kv| kv.key == *seg) {
            Some(p) => p,
            None if create => {
                cur.push(KeyValue {
                    key: seg.clone(),
                    value: Some(AnyValue {
                        value: Some(any_value::Value::KvlistValue(KeyValueList::default())),
                    }),
                    ..Default::default()
                });
                cur.len() - 1
            }
            None => return None,
        };
        match cur[pos].value.as_mut().and_then(|v| v.value.as_mut()) {
            Some(any_value::Value::KvlistValue(list)) => cur = &mut list.values,
            _ => return None,
        }
    }
    Some(cur)
}

impl LogTarget<'_> {
    fn attrs(&mut self, field: &Field, create: bool) -> Option<(&mut Vec<KeyValue>, Vec<String>)> {
        let (list, path) = match field {
            Field::Record(p) => (&mut self.record.attributes, p),
            Field::Resource(p) => {
                if self.resource.is_none() && !create {
                    return None;
                }
                (
                    &mut self
                        .resource
                        .get_or_insert_with(Default::default)
                        .attributes,
                    p,
                )
            }
            Field::Scope(p) => {
                if self.scope.is_none() && !create {
                    return None;
                }
                (
                    &mut self.scope.get_or_insert_with(Default::default).attributes,
                    p,
                )
            }
            Field::Well(_) => return None,
        };
        let last = path.last()?.clone();
        container(list, path, create).map(|c| (c, vec![last]))
    }

    fn well_string(&mut self, w: WellKnown) -> Option<&mut String> {
        match w {
            WellKnown::SeverityText => Some(&mut self.record.severity_text),
            WellKnown::EventName => Some(&mut self.record.event_name),
            WellKnown::ResourceSchemaUrl => Some(self.resource_schema_url),
            WellKnown::ScopeSchemaUrl => Some(self.scope_schema_url),
            _ => None,
        }
    }

    fn well_bytes(&mut self, w: WellKnown) -> Option<&mut Vec<u8>> {
        match w {
            WellKnown::TraceId => Some(&mut self.record.trace_id),
            WellKnown::SpanId => Some(&mut self.record.span_id),
            _ => None,
        }
    }

    /// Takes a well-known field's value out, leaving it empty.
    fn take_well(&mut self, w: WellKnown) -> Option<AnyValue> {
        if w == WellKnown::Body {
            return self.record.body.take();
        }
        if let Some(s) = self.well_string(w) {
            return (!s.is_empty()).then(|| string_value(std::mem::take(s)));
        }
        let b = self.well_bytes(w)?;
        (!b.is_empty()).then(|| AnyValue {
            value: Some(any_value::Value::BytesValue(std::mem::take(b))),
        })
    }

    /// Applies one op; returns whether it changed or selected something (transform hit).
    pub fn apply(&mut self, op: &TransformOp) -> bool {
        match op {
            TransformOp::Remove(f) => self.remove(f),
            TransformOp::Redact {
                field,
                replacement,
                regex,
            } => self.redact(field, replacement, regex.as_ref()),
            TransformOp::Rename { from, to, upsert } => self.rename(from, to, *upsert),
            TransformOp::Add {
                field,
                value,
                upsert,
            } => self.add(field, value, *upsert),
        }
    }

    fn remove(&mut self, f: &Field) -> bool {
        if let Field::Well(w) = f {
            return self.take_well(*w).is_some();
        }
        let Some((list, key)) = self.attrs(f, false) else {
            return false;
        };
        let before = list.len();
        list.retain(|kv| kv.key != key[0]);
        list.len() != before
    }

    fn redact(&mut self, f: &Field, replacement: &str, regex: Option<&Regex>) -> bool {
        let value: &mut AnyValue = match f {
            Field::Well(WellKnown::Body) => match self.record.body.as_mut() {
                Some(v) => v,
                None => return false,
            },
            Field::Well(w) => {
                if let Some(s) = self.well_string(*w) {
                    if s.is_empty() {
                        return false;
                    }
                    let new = match regex {
                        None => Some(replacement.to_string()),
                        Some(re) => redact_regex(re, replacement, s),
                    };
                    return match new {
                        Some(n) => {
                            *s = n;
                            true
                        }
                        None => false,
                    };
                }
                // Identifiers cannot hold text: redacting one clears it.
                return match self.well_bytes(*w) {
                    Some(b) if !b.is_empty() && regex.is_none() => {
                        b.clear();
                        true
                    }
                    _ => false,
                };
            }
            _ => {
                let Some((list, key)) = self.attrs(f, false) else {
                    return false;
                };
                match list
                    .iter_mut()
                    .find(|kv| kv.key == key[0])
                    .and_then(|kv| kv.value.as_mut())
                {
                    Some(v) => v,
                    None => return false,
                }
            }
        };
        match regex {
            None => {
                *value = string_value(replacement.to_string());
                true
            }
            Some(re) => match &value.value {
                Some(any_value::Value::StringValue(s)) => match redact_regex(re, replacement, s) {
                    Some(n) => {
                        *value = string_value(n);
                        true
                    }
                    None => false,
                },
                _ => false,
            },
        }
    }

    fn rename(&mut self, from: &Field, to: &str, upsert: bool) -> bool {
        if let Field::Well(w) = from {
            // A well-known field moves into the record's attributes under `to`.
            let target_exists = self.record.attributes.iter().any(|kv| kv.key == to);
            if target_exists && !upsert {
                return false;
            }
            let Some(v) = self.take_well(*w) else {
                return false;
            };
            let attrs = &mut self.record.attributes;
            attrs.retain(|kv| kv.key != to);
            attrs.push(KeyValue {
                key: to.to_string(),
                value: Some(v),
                ..Default::default()
            });
            return true;
        }
        let Some((list, key)) = self.attrs(from, false) else {
            return false;
        };
        let Some(pos) = list.iter().position(|kv| kv.key == key[0]) else {
            return false;
        };
        if key[0] == to {
            return true;
        }
        if !upsert && list.iter().any(|kv| kv.key == to) {
            return false;
        }
        let mut kv = list.remove(pos);
        list.retain(|x| x.key != to);
        kv.key = to.to_string();
        list.push(kv);
        true
    }

    fn add(&mut self, f: &Field, value: &str, upsert: bool) -> bool {
        if let Field::Well(w) = f {
            if *w == WellKnown::Body {
                let exists = self.record.body.as_ref().is_some_and(|b| b.value.is_some());
                if exists && !upsert {
                    return false;
                }
                self.record.body = Some(string_value(value.to_string()));
                return true;
            }
            if let Some(s) = self.well_string(*w) {
                if !s.is_empty() && !upsert {
                    return false;
                }
                *s = value.to_string();
                return true;
            }
            return match (self.well_bytes(*w), decode_hex(value)) {
                (Some(b), Some(new)) if b.is_empty() || upsert => {
                    *b = new;
                    true
                }
                _ => false,
            };
        }
        let Some((list, key)) = self.attrs(f, true) else {
            return false;
        };
        match list.iter_mut().find(|kv| kv.key == key[0]) {
            Some(kv) if upsert => {
                kv.value = Some(string_value(value.to_string()));
                true
            }
            Some(_) => false,
            None => {
                list.push(KeyValue {
                    key: key[0].clone(),
                    value: Some(string_value(value.to_string())),
                    ..Default::default()
                });
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redact(pattern: &str, template: &str, s: &str) -> Option<String> {
        redact_regex(&Regex::new(pattern).unwrap(), template, s)
    }

    #[test]
    fn templates() {
        assert_eq!(
            redact(r"(?i)^(bearer\s+).+$", "$1[REDACTED]", "Bearer abc.def").as_deref(),
            Some("Bearer [REDACTED]")
        );
        assert_eq!(
            redact(
                r"^([0-9]{9,15})([0-9]{4})$",
                "[REDACTED]$2",
                "4111111111111111"
            )
            .as_deref(),
            Some("[REDACTED]1111")
        );
        assert_eq!(
            redact(
                r"(?P<scheme>https?)://[^/\s]+",
                "${scheme}://[REDACTED]",
                "see https://x.io/a"
            )
            .as_deref(),
            Some("see https://[REDACTED]/a")
        );
        assert_eq!(
            redact("USD [0-9]+", "$$[X]", "pay USD 12").as_deref(),
            Some("pay $[X]")
        );
        assert_eq!(
            redact("(a)", "$1b|$0|${1}|$9|$", "a").as_deref(),
            Some("ab|a|a||$")
        );
        assert_eq!(
            redact("[0-9]+", "#", "a1b22c333").as_deref(),
            Some("a#b#c#")
        );
        assert_eq!(redact("z", "#", "abc"), None);
    }

    #[test]
    fn nested_add_creates_maps_and_rename_moves_to_end() {
        let mut rec = LogRecord::default();
        let (mut res, mut scope) = (None, None);
        let (mut a, mut b) = (String::new(), String::new());
        let mut t = LogTarget {
            record: &mut rec,
            resource: &mut res,
            resource_schema_url: &mut a,
            scope: &mut scope,
            scope_schema_url: &mut b,
        };
        let path = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(t.add(&Field::Record(path(&["x"])), "1", false));
        assert!(t.add(&Field::Record(path(&["http", "method"])), "GET", false));
        assert!(!t.add(&Field::Record(path(&["http", "method"])), "PUT", false));
        assert!(t.rename(&Field::Record(path(&["x"])), "y", false));
        let keys: Vec<_> = rec.attributes.iter().map(|kv| kv.key.as_str()).collect();
        assert_eq!(keys, ["http", "y"]);
        assert_eq!(
            crate::record::lookup(&rec.attributes, &path(&["http", "method"])),
            Some(&string_value("GET".into()))
        );
    }
}
