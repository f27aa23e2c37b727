//! A small PromQL reader: the series selectors of an expression, enough to tell which
//! metric names it may read. Limits: it does not parse the grammar, it scans tokens;
//! selectors are `name`, `name{...}` and `{...}`; of the matchers only those on `__name__`
//! and `job="..."` are kept; a name that is also a keyword (`sum`, `by`, `offset`, ...) or
//! a function name followed by `(` is never taken as a metric.

/// One series selector.
#[derive(Debug, Clone)]
pub struct Selector {
    /// How `__name__` is matched (`None`: no name matcher, any metric).
    pub name: Option<NameMatch>,
    /// A `job="..."` matcher.
    pub job: Option<String>,
}

/// A matcher on the metric name.
#[derive(Debug, Clone)]
pub enum NameMatch {
    /// `name` or `__name__="name"`.
    Equal(String),
    /// `__name__!="name"`.
    NotEqual(String),
    /// `__name__=~"re"` (anchored, as Prometheus does); `None` when the regex does not
    /// compile (then every name may match).
    Regex(Option<regex::Regex>),
    /// `__name__!~"re"`.
    NotRegex(Option<regex::Regex>),
}

impl Selector {
    /// Whether the selector may read the metric `name` (label matchers other than the
    /// name's are not evaluated, so "may").
    pub fn may_match(&self, name: &str) -> bool {
        match &self.name {
            None => true,
            Some(NameMatch::Equal(n)) => n == name,
            Some(NameMatch::NotEqual(n)) => n != name,
            Some(NameMatch::Regex(Some(re))) => re.is_match(name),
            Some(NameMatch::NotRegex(Some(re))) => !re.is_match(name),
            Some(NameMatch::Regex(None)) | Some(NameMatch::NotRegex(None)) => true,
        }
    }
}

const KEYWORDS: [&str; 27] = [
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
    "and",
    "or",
    "unless",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "offset",
    "bool",
    "atan2",
    "inf",
];
/// Keywords followed by a parenthesised list of label names.
const GROUPING: [&str; 6] = [
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

fn ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}
fn ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// Skips a quoted string starting at `i` (the quote); returns its content and the index
/// after it.
fn string(chars: &[char], i: usize) -> (String, usize) {
    let q = chars[i];
    let mut out = String::new();
    let mut j = i + 1;
    while j < chars.len() && chars[j] != q {
        if chars[j] == '\\' && q != '`' && j + 1 < chars.len() {
            j += 1;
            out.push(match chars[j] {
                'n' => '\n',
                't' => '\t',
                c => c,
            });
        } else {
            out.push(chars[j]);
        }
        j += 1;
    }
    (out, j + 1)
}

fn skip_ws(chars: &[char], mut i: usize) -> usize {
    while i < chars.len() && chars[i].is_whitespace() {
        i += 1;
    }
    i
}

fn regex(re: &str) -> Option<regex::Regex> {
    regex::Regex::new(&format!("^(?:{re})$")).ok()
}

/// Parses `{...}` at `i` (the brace); fills `sel`; returns the index after `}`.
fn matchers(chars: &[char], i: usize, sel: &mut Selector) -> usize {
    let mut j = i + 1;
    loop {
        j = skip_ws(chars, j);
        if j >= chars.len() {
            return j;
        }
        match chars[j] {
            '}' => return j + 1,
            ',' => {
                j += 1;
                continue;
            }
            _ => {}
        }
        let start = j;
        // A label name, or a quoted one (UTF-8 names).
        let lname = if chars[j] == '"' || chars[j] == '\'' {
            let (s, k) = string(chars, j);
            j = k;
            s
        } else {
            while j < chars.len() && ident_char(chars[j]) {
                j += 1;
            }
            chars[start..j].iter().collect()
        };
        j = skip_ws(chars, j);
        let mut op = String::new();
        while j < chars.len() && matches!(chars[j], '=' | '!' | '~') {
            op.push(chars[j]);
            j += 1;
        }
        j = skip_ws(chars, j);
        if op.is_empty() {
            // `{"name"}`: a quoted metric name.
            if sel.name.is_none() && !lname.is_empty() {
                sel.name = Some(NameMatch::Equal(lname));
            }
            if j == start {
                j += 1;
            }
            continue;
        }
        let value = if j < chars.len() && matches!(chars[j], '"' | '\'' | '`') {
            let (s, k) = string(chars, j);
            j = k;
            s
        } else {
            String::new()
        };
        if lname == "__name__" {
            sel.name = Some(match op.as_str() {
                "=" => NameMatch::Equal(value),
                "!=" => NameMatch::NotEqual(value),
                "=~" => NameMatch::Regex(regex(&value)),
                _ => NameMatch::NotRegex(regex(&value)),
            });
        } else if lname == "job" && op == "=" {
            sel.job = Some(value);
        }
    }
}

/// Every series selector of `expr`.
pub fn selectors(expr: &str) -> Vec<Selector> {
    let chars: Vec<char> = expr.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '#' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if matches!(c, '"' | '\'' | '`') {
            i = string(&chars, i).1;
        } else if c == '[' {
            // A range or subquery duration.
            while i < chars.len() && chars[i] != ']' {
                i += 1;
            }
            i += 1;
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            // Numbers and durations (`5m`, `1e3`, `0x1f`).
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
        } else if c == '{' {
            let mut sel = Selector {
                name: None,
                job: None,
            };
            i = matchers(&chars, i, &mut sel);
            out.push(sel);
        } else if ident_start(c) {
            let start = i;
            while i < chars.len() && ident_char(chars[i]) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let lower = word.to_ascii_lowercase();
            let next = skip_ws(&chars, i);
            let after = chars.get(next).copied();
            if GROUPING.contains(&lower.as_str()) {
                // `by (a, b)`: label names, not metrics.
                if after == Some('(') {
                    while i < chars.len() && chars[i] != ')' {
                        i += 1;
                    }
                    i += 1;
                }
            } else if KEYWORDS.contains(&lower.as_str()) || lower == "nan" {
                // Keywords and the NaN / Inf literals.
            } else if after == Some('(') {
                // A function call.
            } else {
                let mut sel = Selector {
                    name: Some(NameMatch::Equal(word)),
                    job: None,
                };
                if after == Some('{') {
                    i = matchers(&chars, next, &mut sel);
                }
                out.push(sel);
            }
        } else {
            i += 1;
        }
    }
    out
}
