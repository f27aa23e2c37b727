//! The entry model the operators work on: values (the Collector's `any`), entries (body,
//! attributes, resource, timestamp, severity and where their lines started) and fields
//! (`body.a.b`, `attributes["x.y"]`), read and written in place.

use std::collections::BTreeMap;

use weir_api::otlp::common::v1::{any_value, AnyValue, ArrayValue, KeyValue, KeyValueList};
use weir_api::otlp::logs::v1::LogRecord;

/// A value of an entry (the Collector's `any`).
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Null,
    Bool(bool),
    Int(i64),
    Double(f64),
    Str(String),
    Bytes(Vec<u8>),
    List(Vec<Val>),
    Map(BTreeMap<String, Val>),
}

impl Val {
    /// From JSON; numbers that are integers become `Int`.
    pub fn from_json(v: serde_json::Value) -> Val {
        Self::from_json_with(v, true)
    }

    /// From JSON; `ints` false makes every number a `Double` (the Collector's json_parser
    /// without `parse_ints`).
    pub fn from_json_with(v: serde_json::Value, ints: bool) -> Val {
        match v {
            serde_json::Value::Null => Val::Null,
            serde_json::Value::Bool(b) => Val::Bool(b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) if ints => Val::Int(i),
                _ => Val::Double(n.as_f64().unwrap_or(0.0)),
            },
            serde_json::Value::String(s) => Val::Str(s),
            serde_json::Value::Array(a) => Val::List(
                a.into_iter()
                    .map(|x| Self::from_json_with(x, ints))
                    .collect(),
            ),
            serde_json::Value::Object(m) => Val::Map(
                m.into_iter()
                    .map(|(k, v)| (k, Self::from_json_with(v, ints)))
                    .collect(),
            ),
        }
    }

    /// The name of the value's type, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Val::Null => "nil",
            Val::Bool(_) => "bool",
            Val::Int(_) => "int",
            Val::Double(_) => "double",
            Val::Str(_) => "string",
            Val::Bytes(_) => "bytes",
            Val::List(_) => "list",
            Val::Map(_) => "map",
        }
    }

    /// As OTLP.
    pub fn to_any(&self) -> AnyValue {
        use any_value::Value as V;
        let value = match self {
            Val::Null => None,
            Val::Bool(b) => Some(V::BoolValue(*b)),
            Val::Int(i) => Some(V::IntValue(*i)),
            Val::Double(d) => Some(V::DoubleValue(*d)),
            Val::Str(s) => Some(V::StringValue(s.clone())),
            Val::Bytes(b) => Some(V::BytesValue(b.clone())),
            Val::List(l) => Some(V::ArrayValue(ArrayValue {
                values: l.iter().map(Val::to_any).collect(),
            })),
            Val::Map(m) => Some(V::KvlistValue(KeyValueList { values: kvs(m) })),
        };
        AnyValue { value }
    }
}

/// A map as OTLP key-values.
pub fn kvs(m: &BTreeMap<String, Val>) -> Vec<KeyValue> {
    m.iter()
        .map(|(k, v)| KeyValue {
            key: k.clone(),
            value: Some(v.to_any()),
            ..Default::default()
        })
        .collect()
}

/// One entry going through the operators.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub body: Val,
    pub attributes: BTreeMap<String, Val>,
    pub resource: BTreeMap<String, Val>,
    /// Nanoseconds since 1970; 0 when not set.
    pub timestamp: u64,
    pub observed: u64,
    pub severity: i32,
    pub severity_text: String,
    /// Where the lines of the entry start in their files (not part of the record): the
    /// receiver keeps its checkpoints at or before the start of any entry an operator
    /// still holds.
    pub origin: Origin,
}

/// The start of an entry's first line: `(file key, byte offset)`, as the receiver numbers
/// its files.
pub type Start = (u64, u64);

/// Where an entry's lines start: nowhere known, one file, or (an entry recombined from
/// several files) the earliest start in each file.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Origin {
    #[default]
    None,
    One(Start),
    Many(Vec<Start>),
}

impl Origin {
    /// Each `(file, offset)`.
    pub fn starts(&self) -> &[Start] {
        match self {
            Origin::None => &[],
            Origin::One(s) => std::slice::from_ref(s),
            Origin::Many(v) => v,
        }
    }

    /// Adds the starts of `other`, keeping the earliest per file.
    pub fn merge(&mut self, other: &Origin) {
        for &(file, at) in other.starts() {
            match self {
                Origin::None => *self = Origin::One((file, at)),
                Origin::One((f, a)) if *f == file => *a = (*a).min(at),
                Origin::One(first) => *self = Origin::Many(vec![*first, (file, at)]),
                Origin::Many(v) => match v.iter_mut().find(|(f, _)| *f == file) {
                    Some((_, a)) => *a = (*a).min(at),
                    None => v.push((file, at)),
                },
            }
        }
    }
}

impl Entry {
    pub fn new(body: Val) -> Entry {
        Entry {
            body,
            attributes: BTreeMap::new(),
            resource: BTreeMap::new(),
            timestamp: 0,
            observed: 0,
            severity: 0,
            severity_text: String::new(),
            origin: Origin::None,
        }
    }

    /// As an OTLP log record (the resource is handed on separately).
    pub fn into_record(self) -> LogRecord {
        LogRecord {
            time_unix_nano: self.timestamp,
            observed_time_unix_nano: self.observed,
            severity_number: self.severity,
            severity_text: self.severity_text,
            body: match self.body {
                Val::Null => None,
                b => Some(b.to_any()),
            },
            attributes: kvs(&self.attributes),
            ..Default::default()
        }
    }
}

/// Which part of an entry a field is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Root {
    Body,
    Attributes,
    Resource,
}

/// A field of an entry: `body`, `body.a.b`, `attributes["x.y"]`, `resource.k`.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub root: Root,
    pub keys: Vec<String>,
}

impl Field {
    pub fn new(root: &str, keys: Vec<String>) -> Field {
        let root = match root {
            "attributes" => Root::Attributes,
            "resource" => Root::Resource,
            _ => Root::Body,
        };
        Field { root, keys }
    }

    pub fn body() -> Field {
        Field {
            root: Root::Body,
            keys: vec![],
        }
    }

    pub fn attr(key: &str) -> Field {
        Field {
            root: Root::Attributes,
            keys: vec![key.to_string()],
        }
    }

    /// Parses the Collector's field syntax. `rootable`: `attributes` / `resource` alone are
    /// allowed (the whole map).
    pub fn parse(s: &str, rootable: bool) -> Result<Field, String> {
        let mut keys: Vec<String> = Vec::new();
        let b = s.as_bytes();
        let mut i = 0;
        let mut start = 0;
        let mut plain = true;
        while i < b.len() {
            match b[i] {
                b'.' if plain => {
                    keys.push(s[start..i].to_string());
                    start = i + 1;
                    i += 1;
                }
                b'[' => {
                    if plain && i > start {
                        keys.push(s[start..i].to_string());
                    }
                    let q = *b.get(i + 1).ok_or("unclosed [")?;
                    if q != b'"' && q != b'\'' {
                        return Err(format!(
                            "{s:?}: keys in brackets must be quoted (attributes[\"a.b\"])"
                        ));
                    }
                    let close = s[i + 2..]
                        .find(q as char)
                        .ok_or_else(|| format!("{s:?}: unclosed quote"))?;
                    keys.push(s[i + 2..i + 2 + close].to_string());
                    i = i + 2 + close + 1;
                    if b.get(i) != Some(&b']') {
                        return Err(format!("{s:?}: expected ] after the quoted key"));
                    }
                    i += 1;
                    match b.get(i) {
                        None => {}
                        Some(b'.') => {
                            i += 1;
                        }
                        Some(b'[') => {}
                        Some(_) => {
                            return Err(format!(
                                "{s:?}: a bracketed key must be followed by . or ["
                            ))
                        }
                    }
                    start = i;
                    plain = !matches!(b.get(i), Some(b'['));
                    if !plain {
                        continue;
                    }
                }
                _ => {
                    plain = true;
                    i += 1;
                }
            }
        }
        if start < b.len() {
            keys.push(s[start..].to_string());
        }
        if keys.is_empty() || keys.iter().any(|k| k.is_empty()) {
            return Err(format!("{s:?} is not a field (e.g. body, body.msg, attributes[\"log.file.path\"], resource.host)"));
        }
        let root = keys.remove(0);
        let root = match root.as_str() {
            "body" => Root::Body,
            "attributes" => Root::Attributes,
            "resource" => Root::Resource,
            other => {
                return Err(format!(
                    "{s:?}: unrecognized prefix {other:?} (a field starts with body, attributes or resource)"
                ))
            }
        };
        if root != Root::Body && keys.is_empty() && !rootable {
            return Err(format!("{s:?}: needs a key here (e.g. {s}.name)"));
        }
        Ok(Field { root, keys })
    }

    fn map_of<'a>(&self, e: &'a Entry) -> &'a BTreeMap<String, Val> {
        match self.root {
            Root::Attributes => &e.attributes,
            _ => &e.resource,
        }
    }

    fn map_of_mut<'a>(&self, e: &'a mut Entry) -> &'a mut BTreeMap<String, Val> {
        match self.root {
            Root::Attributes => &mut e.attributes,
            _ => &mut e.resource,
        }
    }

    /// The value at the field (the root maps of attributes/resource are not values).
    pub fn get<'a>(&self, e: &'a Entry) -> Option<&'a Val> {
        let (mut cur, keys) = match self.root {
            Root::Body => (&e.body, &self.keys[..]),
            _ => {
                let (first, rest) = self.keys.split_first()?;
                (self.map_of(e).get(first)?, rest)
            }
        };
        for k in keys {
            match cur {
                Val::Map(m) => cur = m.get(k)?,
                _ => return None,
            }
        }
        Some(cur)
    }

    /// A copy of the value, with `attributes` / `resource` alone as a map.
    pub fn get_owned(&self, e: &Entry) -> Option<Val> {
        if self.root != Root::Body && self.keys.is_empty() {
            return Some(Val::Map(self.map_of(e).clone()));
        }
        self.get(e).cloned()
    }

    /// Sets the value. A map set on attributes or resource is merged into the map there
    /// (as the Collector does); parent maps are created.
    pub fn set(&self, e: &mut Entry, v: Val) {
        if self.root == Root::Body && self.keys.is_empty() {
            e.body = v;
            return;
        }
        let merge = self.root != Root::Body;
        let (mut map, keys): (&mut BTreeMap<String, Val>, &[String]) = match self.root {
            Root::Body => {
                if !matches!(e.body, Val::Map(_)) {
                    e.body = Val::Map(BTreeMap::new());
                }
                let Val::Map(m) = &mut e.body else {
                    return;
                };
                (m, &self.keys[..])
            }
            _ => (self.map_of_mut(e), &self.keys[..]),
        };
        if keys.is_empty() {
            // attributes / resource alone: merge a map, ignore anything else.
            if let Val::Map(m) = v {
                merge_into(map, m);
            }
            return;
        }
        let (last, parents) = keys.split_last().unwrap_or((&keys[0], &[]));
        for k in parents {
            let slot = map
                .entry(k.clone())
                .or_insert_with(|| Val::Map(BTreeMap::new()));
            if !matches!(slot, Val::Map(_)) {
                *slot = Val::Map(BTreeMap::new());
            }
            let Val::Map(m) = slot else { return };
            map = m;
        }
        match (merge, v, map.get_mut(last)) {
            (true, Val::Map(m), Some(Val::Map(existing))) => merge_into(existing, m),
            (_, v, _) => {
                map.insert(last.clone(), v);
            }
        }
    }

    /// Removes the value and returns it (`attributes` / `resource` alone: all of it).
    pub fn delete(&self, e: &mut Entry) -> Option<Val> {
        if self.keys.is_empty() {
            return match self.root {
                Root::Body => Some(std::mem::replace(&mut e.body, Val::Null)),
                _ => Some(Val::Map(std::mem::take(self.map_of_mut(e)))),
            };
        }
        let (last, parents) = self.keys.split_last()?;
        let mut map: &mut BTreeMap<String, Val> = match self.root {
            Root::Body => match &mut e.body {
                Val::Map(m) => m,
                _ => return None,
            },
            _ => self.map_of_mut(e),
        };
        for k in parents {
            match map.get_mut(k) {
                Some(Val::Map(m)) => map = m,
                _ => return None,
            }
        }
        map.remove(last)
    }
}

impl std::fmt::Display for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let root = match self.root {
            Root::Body => "body",
            Root::Attributes => "attributes",
            Root::Resource => "resource",
        };
        write!(f, "{root}")?;
        for k in &self.keys {
            if k.contains('.') {
                write!(f, "[\"{k}\"]")?;
            } else {
                write!(f, ".{k}")?;
            }
        }
        Ok(())
    }
}

/// `map.extend(m)` (values of `m` win), inserting the smaller map into the bigger one: a
/// parsed line merged into attributes that hold only the file's name is one insertion,
/// not one per parsed key.
fn merge_into(map: &mut BTreeMap<String, Val>, mut m: BTreeMap<String, Val>) {
    if map.len() >= m.len() {
        map.extend(m);
        return;
    }
    for (k, v) in std::mem::take(map) {
        m.entry(k).or_insert(v);
    }
    *map = m;
}
