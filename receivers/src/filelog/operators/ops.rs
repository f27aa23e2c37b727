//! The operator types and their settings. Building them from config is in `config`, what
//! they do to an entry in `process`, and the two stateful operators' run time in `recombine`
//! and `container`.
// A failed entry is handed back with its error (on_error may send it on); errors are the
// rare path, so the size of the Err variant does not matter here.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use super::expr::{AddValue, Expr};
use super::timefmt::TimeLayout;
use super::{Entry, Field, Sent, Val};

mod config;
mod container;
mod process;
mod recombine;

pub use config::build_kind;

/// An operator type with its settings and state.
#[derive(Debug, Clone)]
pub enum Kind {
    Noop,
    Json(Parser, bool),
    Regex(Parser, regex::Regex),
    KeyValue(Parser, KeyValue),
    Severity(SeverityParser),
    Time(TimeParser),
    Container(Box<Container>),
    Move(Field, Field),
    Copy(Field, Field),
    Add(Field, AddValue),
    Remove(Field),
    Flatten(Field),
    Retain(Vec<Field>),
    Router(Router),
    Filter(Expr, f64, u64),
    Recombine(Box<Recombine>),
}

/// What every parser shares: where from, where to, and the embedded blocks.
#[derive(Debug, Clone)]
pub struct Parser {
    parse_from: Field,
    parse_to: Field,
    body: Option<Field>,
    time: Option<TimeParser>,
    severity: Option<SeverityParser>,
}

#[derive(Debug, Clone)]
pub struct TimeParser {
    parse_from: Field,
    layout: TimeLayout,
}

#[derive(Debug, Clone)]
pub struct SeverityParser {
    parse_from: Field,
    mapping: HashMap<String, i32>,
    overwrite_text: bool,
}

#[derive(Debug, Clone)]
pub struct KeyValue {
    delimiter: String,
    pair_delimiter: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Router {
    routes: Vec<Route>,
    default_raw: Vec<String>,
    default: Vec<usize>,
}

#[derive(Debug, Clone)]
struct Route {
    expr: Expr,
    attributes: BTreeMap<String, Val>,
    output_raw: Vec<String>,
    output: Vec<usize>,
}

impl Router {
    pub fn targets(&self, r: usize) -> &[usize] {
        self.routes.get(r).map_or(&self.default, |x| &x.output)
    }
    pub fn all_targets(&self) -> Vec<usize> {
        let mut v = self.default.clone();
        for r in &self.routes {
            v.extend(&r.output);
        }
        v
    }
    pub fn resolve(&mut self, mut find: impl FnMut(&str, &str) -> Option<usize>) {
        for (i, r) in self.routes.iter_mut().enumerate() {
            let field = format!("routes[{i}].output");
            r.output = r
                .output_raw
                .iter()
                .filter_map(|o| find(o, &field))
                .collect();
        }
        self.default = self
            .default_raw
            .iter()
            .filter_map(|o| find(o, "default"))
            .collect();
    }
}

/// The container operator's settings and its internal recombine (CRI partial lines).
#[derive(Debug, Clone)]
pub struct Container {
    parse_from: Field,
    format: Option<Format>,
    add_metadata: bool,
    recombine: Recombine,
    /// The Kubernetes metadata of the last `log.file.path` seen (`None`: the path did not
    /// match), so the path pattern runs once per file rather than once per line.
    metadata: Option<(String, Option<[String; 5]>)>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Format {
    Docker,
    Crio,
    Containerd,
}

#[derive(Debug, Clone)]
enum Matcher {
    Expr(Expr),
    /// `attributes.logtag == 'F'` (the container operator's).
    LogtagF,
}

#[derive(Debug, Clone)]
pub struct Recombine {
    first: bool,
    matcher: Matcher,
    max_batch_size: usize,
    max_unmatched_batch_size: usize,
    combine_field: Field,
    combine_with: String,
    source: Field,
    overwrite_newest: bool,
    force_flush: Duration,
    max_sources: usize,
    max_log_size: usize,
    batches: BTreeMap<String, RBatch>,
}

#[derive(Debug, Clone)]
struct RBatch {
    base: Entry,
    /// Where the lines of all entries in the batch start (earliest per file).
    origin: super::Origin,
    n: usize,
    text: String,
    started: Instant,
    matched: bool,
}

const DEFAULT_SOURCE: &str = "DefaultSourceIdentifier";

/// A failure and the entry (`None`: the entry is dropped whatever `on_error` says, as the
/// Collector's container operator does with CRI lines it fails on after parsing them).
type Res = Result<Sent, (String, Option<Entry>)>;

#[cfg(test)]
pub(super) fn severity_name_for_tests(n: i32) -> String {
    process::severity_name(n)
}
