//! The subset of the Collector's operator expressions (`if`, router `expr`, filter `expr`,
//! recombine `is_first_entry`/`is_last_entry`, `EXPR(...)` in `add`) that Weir evaluates.
//!
//! Supported, and nothing else (anything else is a config error naming the operator and
//! the expression):
//! - values: `body`, `body.x.y`, `body["x"]`, `attributes.x`, `attributes["x.y"]`,
//!   `resource.x`, `resource["x"]` (a field that is not there is `nil`); string literals in
//!   `"..."` or `'...'` (with `\\`, `\"`, `\'`, `\n`, `\t` escapes); integers and decimals;
//!   `true`, `false`, `nil`;
//! - `==`, `!=`, `<`, `<=`, `>`, `>=` (numbers compare as numbers, strings as strings);
//! - `matches "regex"` (the right side a string literal, compiled at load), `contains`,
//!   `startsWith`, `endsWith`, `in [..list of literals..]`;
//! - `+` on strings (concatenation) and numbers;
//! - `and` / `&&`, `or` / `||`, `not` / `!`, parentheses.

use super::{Entry, Field, Val};

/// A compiled expression.
#[derive(Debug, Clone)]
pub enum Expr {
    Field(Field),
    Lit(Val),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Cmp(Cmp, Box<Expr>, Box<Expr>),
    Matches(Box<Expr>, regex::Regex),
    Contains(Box<Expr>, Box<Expr>),
    StartsWith(Box<Expr>, Box<Expr>),
    EndsWith(Box<Expr>, Box<Expr>),
    In(Box<Expr>, Vec<Val>),
    Add(Box<Expr>, Box<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Num(Val),
    Op(&'static str),
}

fn lex(s: &str) -> Result<Vec<Tok>, String> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c == b'"' || c == b'\'' {
            let mut v = String::new();
            let mut j = i + 1;
            loop {
                let Some(ch) = s[j..].chars().next() else {
                    return Err("unterminated string literal".into());
                };
                j += ch.len_utf8();
                if ch as u32 == c as u32 {
                    break;
                }
                if ch == '\\' {
                    let Some(e) = s[j..].chars().next() else {
                        return Err("unterminated string literal".into());
                    };
                    j += e.len_utf8();
                    v.push(match e {
                        'n' => '\n',
                        't' => '\t',
                        'r' => '\r',
                        other => other,
                    });
                } else {
                    v.push(ch);
                }
            }
            out.push(Tok::Str(v));
            i = j;
        } else if c.is_ascii_digit() {
            let n = b[i..]
                .iter()
                .take_while(|c| c.is_ascii_digit() || **c == b'.')
                .count();
            let t = &s[i..i + n];
            let v = if t.contains('.') {
                Val::Double(t.parse().map_err(|_| format!("bad number {t:?}"))?)
            } else {
                Val::Int(t.parse().map_err(|_| format!("bad number {t:?}"))?)
            };
            out.push(Tok::Num(v));
            i += n;
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let n = b[i..]
                .iter()
                .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
                .count();
            out.push(Tok::Ident(s[i..i + n].to_string()));
            i += n;
        } else {
            let ops = [
                "==", "!=", "<=", ">=", "&&", "||", "<", ">", "!", "(", ")", "[", "]", ".", "+",
                ",",
            ];
            let Some(op) = ops.iter().find(|o| s[i..].starts_with(**o)) else {
                return Err(format!("unexpected character {:?}", c as char));
            };
            out.push(Tok::Op(op));
            i += op.len();
        }
    }
    Ok(out)
}

struct P {
    toks: Vec<Tok>,
    at: usize,
}

impl P {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at)
    }
    fn eat_op(&mut self, op: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Op(o)) if *o == op) {
            self.at += 1;
            true
        } else {
            false
        }
    }
    fn eat_word(&mut self, w: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Ident(i)) if i == w) {
            self.at += 1;
            true
        } else {
            false
        }
    }
    fn or(&mut self) -> Result<Expr, String> {
        let mut l = self.and()?;
        while self.eat_op("||") || self.eat_word("or") {
            l = Expr::Or(Box::new(l), Box::new(self.and()?));
        }
        Ok(l)
    }
    fn and(&mut self) -> Result<Expr, String> {
        let mut l = self.not()?;
        while self.eat_op("&&") || self.eat_word("and") {
            l = Expr::And(Box::new(l), Box::new(self.not()?));
        }
        Ok(l)
    }
    fn not(&mut self) -> Result<Expr, String> {
        if self.eat_op("!") || self.eat_word("not") {
            return Ok(Expr::Not(Box::new(self.not()?)));
        }
        self.cmp()
    }
    fn cmp(&mut self) -> Result<Expr, String> {
        let l = self.sum()?;
        let ops = [
            ("==", Cmp::Eq),
            ("!=", Cmp::Ne),
            ("<=", Cmp::Le),
            (">=", Cmp::Ge),
            ("<", Cmp::Lt),
            (">", Cmp::Gt),
        ];
        for (o, c) in ops {
            if self.eat_op(o) {
                return Ok(Expr::Cmp(c, Box::new(l), Box::new(self.sum()?)));
            }
        }
        if self.eat_word("matches") {
            let Some(Tok::Str(re)) = self.peek().cloned() else {
                return Err("`matches` needs a string literal (the regex) on its right".into());
            };
            self.at += 1;
            let re = regex::Regex::new(&re).map_err(|e| format!("regex {re:?}: {e}"))?;
            return Ok(Expr::Matches(Box::new(l), re));
        }
        if self.eat_word("contains") {
            return Ok(Expr::Contains(Box::new(l), Box::new(self.sum()?)));
        }
        if self.eat_word("startsWith") {
            return Ok(Expr::StartsWith(Box::new(l), Box::new(self.sum()?)));
        }
        if self.eat_word("endsWith") {
            return Ok(Expr::EndsWith(Box::new(l), Box::new(self.sum()?)));
        }
        if self.eat_word("in") {
            if !self.eat_op("[") {
                return Err("`in` needs a list of literals: in [\"a\", \"b\"]".into());
            }
            let mut list = Vec::new();
            loop {
                if self.eat_op("]") {
                    break;
                }
                match self.primary()? {
                    Expr::Lit(v) => list.push(v),
                    _ => return Err("`in` lists may hold literals only".into()),
                }
                if !self.eat_op(",") && !matches!(self.peek(), Some(Tok::Op("]"))) {
                    return Err("expected , or ] in the list".into());
                }
            }
            return Ok(Expr::In(Box::new(l), list));
        }
        Ok(l)
    }
    fn sum(&mut self) -> Result<Expr, String> {
        let mut l = self.primary()?;
        while self.eat_op("+") {
            l = Expr::Add(Box::new(l), Box::new(self.primary()?));
        }
        Ok(l)
    }
    fn primary(&mut self) -> Result<Expr, String> {
        let Some(t) = self.peek().cloned() else {
            return Err("the expression ends too early".into());
        };
        self.at += 1;
        match t {
            Tok::Str(s) => Ok(Expr::Lit(Val::Str(s))),
            Tok::Num(n) => Ok(Expr::Lit(n)),
            Tok::Op("(") => {
                let e = self.or()?;
                if !self.eat_op(")") {
                    return Err("missing )".into());
                }
                Ok(e)
            }
            Tok::Ident(w) => match w.as_str() {
                "true" => Ok(Expr::Lit(Val::Bool(true))),
                "false" => Ok(Expr::Lit(Val::Bool(false))),
                "nil" => Ok(Expr::Lit(Val::Null)),
                "body" | "attributes" | "resource" => {
                    let mut keys = Vec::new();
                    loop {
                        if self.eat_op(".") {
                            match self.peek().cloned() {
                                Some(Tok::Ident(k)) => {
                                    self.at += 1;
                                    keys.push(k);
                                }
                                _ => return Err(format!("expected a name after {w}.")),
                            }
                        } else if self.eat_op("[") {
                            match self.peek().cloned() {
                                Some(Tok::Str(k)) => {
                                    self.at += 1;
                                    keys.push(k);
                                }
                                _ => return Err("expected a quoted key in [...]".into()),
                            }
                            if !self.eat_op("]") {
                                return Err("missing ]".into());
                            }
                        } else {
                            break;
                        }
                    }
                    if w != "body" && keys.is_empty() {
                        return Err(format!("{w} needs a key ({w}.name or {w}[\"name\"])"));
                    }
                    Ok(Expr::Field(Field::new(&w, keys)))
                }
                other => Err(format!(
                    "{other:?} is not supported by weir's expressions (they know body, attributes, resource, literals, == != < <= > >=, matches, contains, startsWith, endsWith, in, +, and/or/not)"
                )),
            },
            Tok::Op(o) => Err(format!("unexpected {o:?}")),
        }
    }
}

/// Compiles `src`.
pub fn compile(src: &str) -> Result<Expr, String> {
    let mut p = P {
        toks: lex(src)?,
        at: 0,
    };
    let e = p.or()?;
    if p.at != p.toks.len() {
        return Err(format!(
            "unexpected {:?} after the expression",
            p.toks[p.at]
        ));
    }
    Ok(e)
}

fn num(v: &Val) -> Option<f64> {
    match v {
        Val::Int(i) => Some(*i as f64),
        Val::Double(d) => Some(*d),
        _ => None,
    }
}

fn text(v: &Val) -> Option<&str> {
    match v {
        Val::Str(s) => Some(s),
        _ => None,
    }
}

fn equal(a: &Val, b: &Val) -> bool {
    match (num(a), num(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

impl Expr {
    /// The value of the expression for `e`.
    pub fn eval(&self, e: &Entry) -> Val {
        match self {
            Expr::Field(f) => f.get(e).cloned().unwrap_or(Val::Null),
            Expr::Lit(v) => v.clone(),
            Expr::Not(x) => Val::Bool(!x.test(e)),
            Expr::And(a, b) => Val::Bool(a.test(e) && b.test(e)),
            Expr::Or(a, b) => Val::Bool(a.test(e) || b.test(e)),
            Expr::Cmp(c, a, b) => {
                let (a, b) = (a.eval(e), b.eval(e));
                let ord = match (num(&a), num(&b), text(&a), text(&b)) {
                    (Some(x), Some(y), _, _) => x.partial_cmp(&y),
                    (_, _, Some(x), Some(y)) => Some(x.cmp(y)),
                    _ => None,
                };
                Val::Bool(match c {
                    Cmp::Eq => equal(&a, &b),
                    Cmp::Ne => !equal(&a, &b),
                    Cmp::Lt => ord == Some(std::cmp::Ordering::Less),
                    Cmp::Le => matches!(
                        ord,
                        Some(std::cmp::Ordering::Less | std::cmp::Ordering::Equal)
                    ),
                    Cmp::Gt => ord == Some(std::cmp::Ordering::Greater),
                    Cmp::Ge => matches!(
                        ord,
                        Some(std::cmp::Ordering::Greater | std::cmp::Ordering::Equal)
                    ),
                })
            }
            Expr::Matches(a, re) => Val::Bool(matches!(a.eval(e), Val::Str(s) if re.is_match(&s))),
            Expr::Contains(a, b) => Val::Bool(match (a.eval(e), b.eval(e)) {
                (Val::Str(x), Val::Str(y)) => x.contains(&y),
                (Val::List(l), y) => l.iter().any(|v| equal(v, &y)),
                (Val::Map(m), Val::Str(k)) => m.contains_key(&k),
                _ => false,
            }),
            Expr::StartsWith(a, b) => Val::Bool(
                matches!((a.eval(e), b.eval(e)), (Val::Str(x), Val::Str(y)) if x.starts_with(&y)),
            ),
            Expr::EndsWith(a, b) => Val::Bool(
                matches!((a.eval(e), b.eval(e)), (Val::Str(x), Val::Str(y)) if x.ends_with(&y)),
            ),
            Expr::In(a, list) => {
                let v = a.eval(e);
                Val::Bool(list.iter().any(|x| equal(x, &v)))
            }
            Expr::Add(a, b) => match (a.eval(e), b.eval(e)) {
                (Val::Str(x), Val::Str(y)) => Val::Str(x + &y),
                (Val::Int(x), Val::Int(y)) => Val::Int(x.wrapping_add(y)),
                (x, y) => match (num(&x), num(&y)) {
                    (Some(x), Some(y)) => Val::Double(x + y),
                    _ => Val::Null,
                },
            },
        }
    }

    /// Whether the expression is `true` for `e` (anything but `true` is false).
    pub fn test(&self, e: &Entry) -> bool {
        matches!(self.eval(e), Val::Bool(true))
    }
}

/// A value for `add`: a literal, or `EXPR(...)` evaluated per entry.
#[derive(Debug, Clone)]
pub enum AddValue {
    Lit(Val),
    Expr(Expr),
}

impl AddValue {
    pub fn from_config(v: &serde_json::Value) -> Result<AddValue, String> {
        if let Some(s) = v.as_str() {
            if let Some(inner) = s.strip_prefix("EXPR(").and_then(|r| r.strip_suffix(')')) {
                return compile(inner)
                    .map(AddValue::Expr)
                    .map_err(|e| format!("EXPR({inner}): {e}"));
            }
        }
        Ok(AddValue::Lit(Val::from_json(v.clone())))
    }
    pub fn value(&self, e: &Entry) -> Val {
        match self {
            AddValue::Lit(v) => v.clone(),
            AddValue::Expr(x) => x.eval(e),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn entry() -> Entry {
        let mut e = Entry::new(Val::Str("ERROR: disk full".into()));
        e.attributes.insert("level".into(), Val::Str("warn".into()));
        e.attributes
            .insert("log.file.path".into(), Val::Str("/var/log/a.log".into()));
        e.attributes.insert("code".into(), Val::Int(503));
        e.resource
            .insert("service.name".into(), Val::Str("api".into()));
        e
    }

    fn t(src: &str) -> bool {
        compile(src).unwrap().test(&entry())
    }

    #[test]
    fn the_supported_subset() {
        assert!(t(r#"body matches "^ERROR""#));
        assert!(!t(r#"body matches "^INFO""#));
        assert!(t(r#"attributes.level == "warn""#));
        assert!(t(r#"attributes["log.file.path"] endsWith '.log'"#));
        assert!(t(
            r#"resource["service.name"] == 'api' and not (attributes.level == 'info')"#
        ));
        assert!(t(r#"attributes.code >= 500 && attributes.code < 600"#));
        assert!(t(r#"attributes.missing == nil"#));
        assert!(t(r#"attributes.level in ["warn", "error"] || false"#));
        assert!(t(r#"body contains "disk" and body startsWith "ERR""#));
        assert!(!t(r#"attributes.missing == "x""#));
        assert_eq!(
            compile(r#"attributes.level + "-" + resource["service.name"]"#)
                .unwrap()
                .eval(&entry()),
            Val::Str("warn-api".into())
        );
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            r#"type(body) == "string""#,
            r#"body matches attributes.re"#,
            r#"env("HOME") == "x""#,
            r#"attributes == nil"#,
            r#"body =~ "x""#,
            r#"(body == "x""#,
            r#"body matches "(""#,
        ] {
            assert!(compile(bad).is_err(), "{bad}");
        }
    }
}
