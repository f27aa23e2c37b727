//! OTTL editors: compiled from a parsed statement, run on one record at a time.
//!
//! A statement runs in two steps: its condition and arguments are evaluated against the
//! record as it is (read-only, with weir-filter's evaluator), then the change is written.

mod apply;
mod editors;
mod flatten;

use regex::Regex;
use weir_filter::ottl::parser::Key;
use weir_filter::ottl::{CVal, Condition, Field};

pub use apply::{as_int, as_str, describe, edit_map, map_at, prepare, set_at, target, Change};
pub use editors::{compile, to_any, EDITORS};

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
