//! The `operators:` of the `filelog` receiver: the Collector's stanza operators that users
//! configure most, with its field names, defaults and entry model (a body, attributes and
//! resource that are maps of values, a timestamp and a severity).
//!
//! Operators run in the order written; each sends its entries to the operator(s) named in
//! its `output` (default: the next one; after the last one the entry becomes a log record).
//! A parse failure is handled per `on_error` (`send`, the default: logged and the entry
//! goes on unchanged; `send_quiet`: goes on, not logged; `drop`: logged and dropped;
//! `drop_quiet`), counted in `weir_receiver_operator_errors{receiver, operator}`, and
//! logged at most once per operator per [`REPORT_EVERY`] with the count of the failures
//! not logged in between. The file keeps being read either way.

pub mod expr;
mod json;
mod ops;
pub mod timefmt;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use weir_api::otlp::common::v1::{any_value, AnyValue, ArrayValue, KeyValue, KeyValueList};
use weir_api::otlp::logs::v1::LogRecord;
use weir_api::{ConfigErrors, Counter, Telemetry};

use expr::Expr;
pub use ops::Kind;

/// At most one log line per operator per this period about its failures.
pub const REPORT_EVERY: Duration = Duration::from_secs(10);

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
                map.extend(m);
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
            (true, Val::Map(m), Some(Val::Map(existing))) => existing.extend(m),
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

/// What an operator does with an entry it failed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    Send,
    SendQuiet,
    Drop,
    DropQuiet,
}

/// Rate limit of failure logs.
#[derive(Debug, Clone, Default)]
struct Report {
    last: Option<Instant>,
    suppressed: u64,
}

/// One configured operator.
#[derive(Debug, Clone)]
pub struct Op {
    pub id: String,
    pub kind: Kind,
    /// Indices of the operators the entries go to; empty: out of the receiver.
    pub outputs: Vec<usize>,
    pub on_error: OnError,
    pub cond: Option<Expr>,
    report: Report,
    errors: Option<Counter>,
}

/// The operators of one receiver, with their state (recombine buffers).
#[derive(Debug, Clone, Default)]
pub struct Pipeline {
    ops: Vec<Op>,
    receiver: String,
    /// Emptied output lists of operators, reused (one is in use per level of nesting).
    spare: Vec<Vec<Entry>>,
}

/// Where an operator sends what it produced.
pub enum Sent {
    /// To its `output`.
    Next,
    /// To the outputs of route `n` of a router (`usize::MAX`: its `default`).
    Route(usize),
}

impl Pipeline {
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Registers the error counters and names the receiver in logs.
    pub fn attach(&mut self, telemetry: &Telemetry, receiver: &str) {
        self.receiver = receiver.to_string();
        for op in &mut self.ops {
            op.errors = Some(telemetry.counter(
                "weir_receiver_operator_errors",
                "Entries a filelog operator failed on (parse errors and the like), handled per its on_error",
                &[("receiver", receiver.to_string()), ("operator", op.id.clone())],
            ));
        }
    }

    /// Runs the entries through the operators; what comes out goes to `out`.
    pub fn process(&mut self, entries: Vec<Entry>, out: &mut Vec<Entry>) {
        if self.ops.is_empty() {
            out.extend(entries);
            return;
        }
        for e in entries {
            self.run(0, e, out);
        }
    }

    /// Calls `f` with the start of each entry a recombine operator holds (the earliest
    /// line per file of each held batch).
    pub fn held(&self, f: &mut dyn FnMut(Start)) {
        for op in &self.ops {
            op.kind.held(f);
        }
    }

    /// Entries recombine operators held longer than their force_flush_period (all of them
    /// when `all`).
    pub fn flush_due(&mut self, all: bool, out: &mut Vec<Entry>) {
        for i in 0..self.ops.len() {
            let mut fwd = Vec::new();
            self.ops[i].kind.flush_due(all, &mut fwd);
            for e in fwd {
                self.dispatch(i, Sent::Next, e, out);
            }
        }
    }

    fn run(&mut self, i: usize, e: Entry, out: &mut Vec<Entry>) {
        let op = &mut self.ops[i];
        if let Some(c) = &op.cond {
            if !c.test(&e) {
                self.dispatch(i, Sent::Next, e, out);
                return;
            }
        }
        let mut fwd = self.spare.pop().unwrap_or_default();
        match op.kind.process(e, &mut fwd) {
            Ok(sent) => {
                let route = match sent {
                    Sent::Next => None,
                    Sent::Route(r) => Some(r),
                };
                for e in fwd.drain(..) {
                    self.dispatch(i, route.map_or(Sent::Next, Sent::Route), e, out);
                }
            }
            Err((msg, e)) => {
                let send = self.fail(i, &msg);
                for e in fwd.drain(..) {
                    self.dispatch(i, Sent::Next, e, out);
                }
                if let Some(e) = e.filter(|_| send) {
                    self.dispatch(i, Sent::Next, e, out);
                }
            }
        }
        self.spare.push(fwd);
    }

    /// Counts and (rate-limited) logs a failure; whether the entry goes on.
    fn fail(&mut self, i: usize, msg: &str) -> bool {
        let receiver = self.receiver.clone();
        let op = &mut self.ops[i];
        if let Some(c) = &op.errors {
            c.inc();
        }
        let quiet = matches!(op.on_error, OnError::SendQuiet | OnError::DropQuiet);
        if quiet {
            tracing::debug!(receiver = %receiver, operator = %op.id, error = %msg, "operator failed on an entry");
        } else {
            let due = op.report.last.is_none_or(|t| t.elapsed() >= REPORT_EVERY);
            if due {
                tracing::warn!(
                    receiver = %receiver,
                    operator = %op.id,
                    error = %msg,
                    not_logged_since_last = op.report.suppressed,
                    on_error = ?op.on_error,
                    "operator failed on an entry (at most one such line per operator per 10 s)"
                );
                op.report = Report {
                    last: Some(Instant::now()),
                    suppressed: 0,
                };
            } else {
                op.report.suppressed += 1;
            }
        }
        matches!(op.on_error, OnError::Send | OnError::SendQuiet)
    }

    fn dispatch(&mut self, i: usize, sent: Sent, e: Entry, out: &mut Vec<Entry>) {
        let n = self.targets(i, &sent).len();
        if n == 0 {
            out.push(e);
            return;
        }
        let mut e = Some(e);
        for k in 0..n {
            let t = self.targets(i, &sent)[k];
            let x = if k + 1 == n { e.take() } else { e.clone() };
            if let Some(x) = x {
                self.run(t, x, out);
            }
        }
    }

    fn targets(&self, i: usize, sent: &Sent) -> &[usize] {
        let op = &self.ops[i];
        match (sent, &op.kind) {
            (Sent::Route(r), Kind::Router(router)) => router.targets(*r),
            _ => &op.outputs,
        }
    }
}

fn on_error(v: &str) -> Option<OnError> {
    Some(match v {
        "send" => OnError::Send,
        "send_quiet" => OnError::SendQuiet,
        "drop" => OnError::Drop,
        "drop_quiet" => OnError::DropQuiet,
        _ => return None,
    })
}

/// A list of operator ids (`output: id` or `output: [a, b]`).
pub fn id_list(v: &serde_json::Value) -> Result<Vec<String>, String> {
    match v {
        serde_json::Value::String(s) => Ok(vec![s.clone()]),
        serde_json::Value::Array(a) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("{x} is not an operator id"))
            })
            .collect(),
        other => Err(format!("{other} is not an operator id or a list of them")),
    }
}

/// Builds the operators of `raw` (the `operators:` list of the receiver at `path`);
/// problems go to `errors`, each naming the operator (index and id) and the field.
pub fn build(raw: &[serde_json::Value], path: &str, errors: &mut ConfigErrors) -> Pipeline {
    let mut ops: Vec<Op> = Vec::new();
    let mut outputs_raw: Vec<Option<Vec<String>>> = Vec::new();
    let before = errors.0.len();
    for (i, v) in raw.iter().enumerate() {
        let at = format!("{path}.operators[{i}]");
        let Some(map) = v.as_object() else {
            errors.push(at, "an operator is a map with at least `type`");
            continue;
        };
        let mut map = map.clone();
        let Some(kind) = map
            .remove("type")
            .and_then(|t| t.as_str().map(str::to_string))
        else {
            errors.push(format!("{at}.type"), "required: the operator's type");
            continue;
        };
        let id = match map.remove("id") {
            None => kind.clone(),
            Some(serde_json::Value::String(s)) if !s.is_empty() => s,
            Some(other) => {
                errors.push(format!("{at}.id"), format!("{other} is not an operator id"));
                kind.clone()
            }
        };
        let at = format!("{at} (id {id:?})");
        if ops.iter().any(|o| o.id == id) {
            errors.push(
                format!("{at}.id"),
                format!("operator id {id:?} is used twice; give one an `id`"),
            );
        }
        let output = match map.remove("output") {
            None => None,
            Some(v) => match id_list(&v) {
                Ok(l) => Some(l),
                Err(e) => {
                    errors.push(format!("{at}.output"), e);
                    None
                }
            },
        };
        let on_err = match map.remove("on_error") {
            None => OnError::Send,
            Some(serde_json::Value::String(s)) => on_error(&s).unwrap_or_else(|| {
                errors.push(
                    format!("{at}.on_error"),
                    format!("{s:?} is not one of send, send_quiet, drop, drop_quiet"),
                );
                OnError::Send
            }),
            Some(other) => {
                errors.push(format!("{at}.on_error"), format!("{other} is not a string"));
                OnError::Send
            }
        };
        let cond = match map.remove("if") {
            None => None,
            Some(serde_json::Value::String(s)) if kind != "router" => match expr::compile(&s) {
                Ok(e) => Some(e),
                Err(e) => {
                    errors.push(
                        format!("{at}.if"),
                        format!("expression {s:?} is not supported: {e}"),
                    );
                    None
                }
            },
            Some(_) => {
                errors.push(
                    format!("{at}.if"),
                    "must be an expression string (router has none)",
                );
                None
            }
        };
        let Some(k) = ops::build_kind(&kind, serde_json::Value::Object(map), &at, errors) else {
            continue;
        };
        ops.push(Op {
            id,
            kind: k,
            outputs: Vec::new(),
            on_error: on_err,
            cond,
            report: Report::default(),
            errors: None,
        });
        outputs_raw.push(output);
    }
    if errors.0.len() > before {
        return Pipeline::default();
    }
    // Resolve ids to indices.
    let ids: Vec<String> = ops.iter().map(|o| o.id.clone()).collect();
    let find = |name: &str, at: &str, field: &str, errors: &mut ConfigErrors| -> Option<usize> {
        let r = ids.iter().position(|x| x == name);
        if r.is_none() {
            errors.push(
                format!("{at}.{field}"),
                format!("no operator has id {name:?} (ids: {})", ids.join(", ")),
            );
        }
        r
    };
    let n = ops.len();
    for i in 0..n {
        let at = format!("{path}.operators[{i}] (id {:?})", ops[i].id);
        ops[i].outputs = match &outputs_raw[i] {
            Some(list) => list
                .iter()
                .filter_map(|o| find(o, &at, "output", errors))
                .collect(),
            None if i + 1 < n => vec![i + 1],
            None => vec![],
        };
        if let Kind::Router(r) = &mut ops[i].kind {
            r.resolve(|name, field| find(name, &at, field, errors));
        }
    }
    let p = Pipeline {
        ops,
        receiver: String::new(),
        spare: Vec::new(),
    };
    if let Some(cycle) = p.cycle() {
        errors.push(
            format!("{path}.operators"),
            format!("the outputs form a loop through operator {cycle:?}"),
        );
    }
    p
}

impl Pipeline {
    fn edges(&self, i: usize) -> Vec<usize> {
        let mut v = self.ops[i].outputs.clone();
        if let Kind::Router(r) = &self.ops[i].kind {
            v.extend(r.all_targets());
        }
        v
    }

    /// An operator on a loop of outputs, if any.
    fn cycle(&self) -> Option<String> {
        // 0 unvisited, 1 on the stack, 2 done
        fn visit(p: &Pipeline, i: usize, state: &mut [u8]) -> Option<usize> {
            state[i] = 1;
            for t in p.edges(i) {
                if state[t] == 1 {
                    return Some(t);
                }
                if state[t] == 0 {
                    if let Some(c) = visit(p, t, state) {
                        return Some(c);
                    }
                }
            }
            state[i] = 2;
            None
        }
        let mut state = vec![0u8; self.ops.len()];
        for i in 0..self.ops.len() {
            if state[i] == 0 {
                if let Some(c) = visit(self, i, &mut state) {
                    return Some(self.ops[c].id.clone());
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests;
