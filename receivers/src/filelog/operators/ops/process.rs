//! What the parsers and the simple operators do to an entry: the shared parser flow
//! (parse_from, parse_to, body, time, severity) and `Kind::process`.

use std::borrow::Cow;
use std::collections::BTreeMap;

use super::super::{json, Entry, Field, Root, Sent, Val};
use super::{Kind, Parser, Res, SeverityParser, TimeParser};

impl TimeParser {
    fn apply(&self, e: &mut Entry) -> Result<(), String> {
        let v = self
            .parse_from
            .get(e)
            .ok_or_else(|| format!("time: entry has no field {}", self.parse_from))?;
        e.timestamp = self.layout.parse(v).map_err(|x| format!("time: {x}"))?;
        Ok(())
    }
}

const SEVERITY_NAMES: [&str; 6] = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];

pub(super) fn severity_name(n: i32) -> String {
    if !(1..=24).contains(&n) {
        return "DEFAULT".into();
    }
    let base = SEVERITY_NAMES[((n - 1) / 4) as usize];
    match (n - 1) % 4 {
        0 => base.to_string(),
        k => format!("{base}{}", k + 1),
    }
}

impl SeverityParser {
    fn apply(&self, e: &mut Entry) -> Result<(), String> {
        let v = self
            .parse_from
            .get(e)
            .ok_or_else(|| format!("severity: entry has no field {}", self.parse_from))?;
        let lower = |s: &str| -> String {
            if s.bytes().all(|b| b.is_ascii() && !b.is_ascii_uppercase()) {
                s.to_string()
            } else {
                s.to_lowercase()
            }
        };
        let (key, text): (Cow<'_, str>, String) = match v {
            Val::Str(s) if s.bytes().all(|b| b.is_ascii() && !b.is_ascii_uppercase()) => {
                (Cow::Borrowed(s.as_str()), s.clone())
            }
            Val::Str(s) => (Cow::Owned(lower(s)), s.clone()),
            Val::Int(i) => (Cow::Owned(i.to_string()), i.to_string()),
            Val::Double(d) if d.fract() == 0.0 => {
                (Cow::Owned((*d as i64).to_string()), (*d as i64).to_string())
            }
            Val::Bytes(b) => {
                let s = String::from_utf8_lossy(b).into_owned();
                (Cow::Owned(lower(&s)), s)
            }
            other => {
                return Err(format!(
                    "severity: type {} cannot be a severity",
                    other.kind()
                ))
            }
        };
        let n = self.mapping.get(key.as_ref()).copied().unwrap_or(0);
        e.severity = n;
        e.severity_text = if self.overwrite_text {
            severity_name(n)
        } else {
            text
        };
        Ok(())
    }
}

fn as_text<'a>(v: &'a Val, what: &str) -> Result<Cow<'a, str>, String> {
    match v {
        Val::Str(s) => Ok(Cow::Borrowed(s)),
        Val::Bytes(b) => Ok(String::from_utf8_lossy(b)),
        other => Err(format!("type {} cannot be parsed as {what}", other.kind())),
    }
}

/// Splits on whitespace outside of quotes.
fn split_ws(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = None;
    let mut quote: Option<char> = None;
    for (i, c) in s.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => {
                quote = Some(c);
                start.get_or_insert(i);
            }
            None if c.is_whitespace() => {
                if let Some(st) = start.take() {
                    out.push(&s[st..i]);
                }
            }
            None => {
                start.get_or_insert(i);
            }
        }
    }
    if let Some(st) = start {
        out.push(&s[st..]);
    }
    out
}

fn clean(s: &str) -> String {
    s.trim().trim_matches(|c| c == '"' || c == '\'').to_string()
}

impl Parser {
    /// The shared flow: value from parse_from, parsed, set at parse_to, then body,
    /// timestamp and severity.
    fn run(
        &self,
        mut e: Entry,
        f: impl FnOnce(&Val) -> Result<Val, String>,
        fwd: &mut Vec<Entry>,
    ) -> Res {
        let Some(v) = self.parse_from.get(&e) else {
            return Err((
                format!("entry has no field {} to parse", self.parse_from),
                Some(e),
            ));
        };
        let parsed = match f(v) {
            Ok(p) => p,
            Err(x) => return Err((x, Some(e))),
        };
        self.parse_to.set(&mut e, parsed);
        if let Some(b) = &self.body {
            if let Some(v) = b.get(&e).cloned() {
                e.body = v;
            }
        }
        if let Some(t) = &self.time {
            if let Err(x) = t.apply(&mut e) {
                return Err((x, Some(e)));
            }
        }
        if let Some(s) = &self.severity {
            if let Err(x) = s.apply(&mut e) {
                return Err((x, Some(e)));
            }
        }
        fwd.push(e);
        Ok(Sent::Next)
    }
}

impl Kind {
    pub fn process(&mut self, mut e: Entry, fwd: &mut Vec<Entry>) -> Res {
        match self {
            Kind::Noop => {
                fwd.push(e);
                Ok(Sent::Next)
            }
            Kind::Json(p, ints) => {
                let ints = *ints;
                p.run(
                    e,
                    |v| {
                        let text = as_text(v, "JSON")?;
                        match json::parse(&text, ints) {
                            Ok(m @ Val::Map(_)) => Ok(m),
                            // Named as an integer-keeping parse names it.
                            Ok(_) => Err(format!(
                                "json: {} is not a JSON object",
                                json::parse(&text, true).map_or("nil", |v| v.kind())
                            )),
                            Err(x) => Err(format!("json: {x}")),
                        }
                    },
                    fwd,
                )
            }
            Kind::Regex(p, re) => p.run(
                e,
                |v| {
                    let text = as_text(v, "regex")?;
                    let caps = re.captures(&text).ok_or("regex pattern does not match")?;
                    let mut m = BTreeMap::new();
                    for name in re.capture_names().flatten() {
                        let s = caps.name(name).map_or("", |c| c.as_str());
                        m.insert(name.to_string(), Val::Str(s.to_string()));
                    }
                    Ok(Val::Map(m))
                },
                fwd,
            ),
            Kind::KeyValue(p, kv) => p.run(
                e,
                |v| {
                    let text = as_text(v, "key-value pairs")?;
                    let pairs: Vec<&str> = match &kv.pair_delimiter {
                        None => split_ws(&text),
                        Some(d) => text
                            .split(d.as_str())
                            .filter(|s| !s.trim().is_empty())
                            .collect(),
                    };
                    let mut m = BTreeMap::new();
                    let mut bad = Vec::new();
                    for pair in pairs {
                        match pair.split_once(kv.delimiter.as_str()) {
                            Some((k, v)) => {
                                m.insert(clean(k), Val::Str(clean(v)));
                            }
                            None => bad.push(pair.to_string()),
                        }
                    }
                    if !bad.is_empty() {
                        return Err(format!(
                            "expected {:?} to split by {:?}",
                            bad[0], kv.delimiter
                        ));
                    }
                    Ok(Val::Map(m))
                },
                fwd,
            ),
            Kind::Severity(s) => match s.apply(&mut e) {
                Ok(()) => {
                    fwd.push(e);
                    Ok(Sent::Next)
                }
                Err(x) => Err((x, Some(e))),
            },
            Kind::Time(t) => match t.apply(&mut e) {
                Ok(()) => {
                    fwd.push(e);
                    Ok(Sent::Next)
                }
                Err(x) => Err((x, Some(e))),
            },
            Kind::Container(c) => c.process(e, fwd),
            Kind::Move(from, to) => match from.delete(&mut e) {
                Some(v) => {
                    to.set(&mut e, v);
                    fwd.push(e);
                    Ok(Sent::Next)
                }
                None => Err((format!("move: field {from} does not exist"), Some(e))),
            },
            Kind::Copy(from, to) => match from.get_owned(&e) {
                Some(v) => {
                    to.set(&mut e, v);
                    fwd.push(e);
                    Ok(Sent::Next)
                }
                None => Err((format!("copy: field {from} does not exist"), Some(e))),
            },
            Kind::Add(f, v) => {
                let v = v.value(&e);
                f.set(&mut e, v);
                fwd.push(e);
                Ok(Sent::Next)
            }
            Kind::Remove(f) => match f.delete(&mut e) {
                Some(_) => {
                    fwd.push(e);
                    Ok(Sent::Next)
                }
                None => Err((format!("remove: field {f} does not exist"), Some(e))),
            },
            Kind::Flatten(f) => match f.get(&e) {
                Some(Val::Map(_)) => {
                    let Some(Val::Map(inner)) = f.delete(&mut e) else {
                        return Err((format!("flatten: field {f} is not a map"), Some(e)));
                    };
                    let parent = &f.keys[..f.keys.len() - 1];
                    for (k, v) in inner {
                        let mut keys = parent.to_vec();
                        keys.push(k);
                        Field {
                            root: Root::Body,
                            keys,
                        }
                        .set(&mut e, v);
                    }
                    fwd.push(e);
                    Ok(Sent::Next)
                }
                Some(other) => Err((
                    format!("flatten: field {f} is a {}, not a map", other.kind()),
                    Some(e),
                )),
                None => Err((format!("flatten: field {f} does not exist"), Some(e))),
            },
            Kind::Retain(fields) => {
                let mut out = Entry {
                    body: e.body.clone(),
                    attributes: e.attributes.clone(),
                    resource: e.resource.clone(),
                    ..e.clone()
                };
                for root in [Root::Body, Root::Attributes, Root::Resource] {
                    let keep: Vec<&Field> = fields.iter().filter(|f| f.root == root).collect();
                    if keep.is_empty() {
                        continue;
                    }
                    match root {
                        Root::Body => out.body = Val::Map(BTreeMap::new()),
                        Root::Attributes => out.attributes.clear(),
                        Root::Resource => out.resource.clear(),
                    }
                    for f in keep {
                        if let Some(v) = f.get_owned(&e) {
                            f.set(&mut out, v);
                        }
                    }
                }
                fwd.push(out);
                Ok(Sent::Next)
            }
            Kind::Router(r) => {
                for (i, route) in r.routes.iter().enumerate() {
                    if route.expr.test(&e) {
                        for (k, v) in &route.attributes {
                            e.attributes.insert(k.clone(), v.clone());
                        }
                        fwd.push(e);
                        return Ok(Sent::Route(i));
                    }
                }
                if !r.default.is_empty() {
                    fwd.push(e);
                }
                Ok(Sent::Route(usize::MAX))
            }
            Kind::Filter(x, ratio, state) => {
                if x.test(&e) {
                    // xorshift64: uniform enough for a sampling ratio.
                    *state ^= *state << 13;
                    *state ^= *state >> 7;
                    *state ^= *state << 17;
                    let u = (*state >> 11) as f64 / (1u64 << 53) as f64;
                    if u < *ratio {
                        return Ok(Sent::Next);
                    }
                }
                fwd.push(e);
                Ok(Sent::Next)
            }
            Kind::Recombine(r) => {
                r.process(e, fwd);
                Ok(Sent::Next)
            }
        }
    }

    pub fn held(&self, f: &mut dyn FnMut(super::super::Start)) {
        let r = match self {
            Kind::Recombine(r) => r,
            Kind::Container(c) => &c.recombine,
            _ => return,
        };
        for b in r.batches.values() {
            for s in b.origin.starts() {
                f(*s);
            }
        }
    }

    pub fn flush_due(&mut self, all: bool, fwd: &mut Vec<Entry>) {
        match self {
            Kind::Recombine(r) => r.flush_due(all, fwd),
            Kind::Container(c) => c.recombine.flush_due(all, fwd),
            _ => {}
        }
    }
}
