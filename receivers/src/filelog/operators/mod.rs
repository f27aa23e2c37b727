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

mod entry;
pub mod expr;
mod json;
mod ops;
pub mod timefmt;

use std::time::{Duration, Instant};

use weir_api::{ConfigErrors, Counter, Telemetry};

pub use entry::{kvs, Entry, Field, Origin, Root, Start, Val};
use expr::Expr;
pub use ops::Kind;

/// At most one log line per operator per this period about its failures.
pub const REPORT_EVERY: Duration = Duration::from_secs(10);

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
    pub fn process(&mut self, entries: impl IntoIterator<Item = Entry>, out: &mut Vec<Entry>) {
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
