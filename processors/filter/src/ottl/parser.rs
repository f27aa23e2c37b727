//! Recursive-descent parser for OTTL boolean conditions.
//!
//! Grammar (the subset of the collector's OTTL that filter conditions use):
//!
//! ```text
//! condition  := or_expr EOF
//! or_expr    := and_expr ("or" and_expr)*
//! and_expr   := term ("and" term)*
//! term       := "not" term | "(" or_expr ")" | value (cmp_op value)?
//! value      := literal | path | ENUM | Converter "(" args ")" | "[" values "]"
//! path       := ident ("." ident)* ("[" (string | int) "]")*
//! literal    := string | int | float | true | false | nil | 0x<hex>
//! ```

use super::lexer::{tokenize, CmpOp, Token, TokenKind};
use super::OttlError;

/// A parsed boolean expression.
#[derive(Debug, Clone, PartialEq)]
pub enum BoolAst {
    Or(Vec<BoolAst>),
    And(Vec<BoolAst>),
    Not(Box<BoolAst>),
    Cmp {
        left: ValAst,
        op: CmpOp,
        right: ValAst,
    },
    /// A value standing alone: must be `true`/`false` or a converter returning a bool.
    Value(ValAst),
}

/// A parsed value expression.
#[derive(Debug, Clone, PartialEq)]
pub enum ValAst {
    Literal(Literal),
    Path(PathAst),
    Enum {
        name: String,
        at: usize,
    },
    Call {
        name: String,
        at: usize,
        args: Vec<ValAst>,
    },
    List(Vec<ValAst>),
}

/// A literal as written.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
}

/// A path such as `resource.attributes["k"]["inner"]`.
#[derive(Debug, Clone, PartialEq)]
pub struct PathAst {
    pub segments: Vec<String>,
    pub keys: Vec<Key>,
    pub at: usize,
}

impl PathAst {
    /// The path as it would be written (for messages).
    pub fn text(&self) -> String {
        let mut s = self.segments.join(".");
        for k in &self.keys {
            match k {
                Key::Str(k) => s.push_str(&format!("[{k:?}]")),
                Key::Int(i) => s.push_str(&format!("[{i}]")),
            }
        }
        s
    }
}

/// A map key or list index after a path.
#[derive(Debug, Clone, PartialEq)]
pub enum Key {
    Str(String),
    Int(i64),
}

/// Parses one condition.
pub fn parse_condition(src: &str) -> Result<BoolAst, OttlError> {
    let tokens = tokenize(src)?;
    let mut p = Parser {
        tokens,
        pos: 0,
        depth: 0,
    };
    if p.peek() == &TokenKind::Eof {
        return Err(OttlError::syntax(0, "the condition is empty"));
    }
    let expr = p.or_expr()?;
    match p.peek() {
        TokenKind::Eof => Ok(expr),
        TokenKind::Math(c) => Err(OttlError::unsupported(format!(
            "math expressions (\"{c}\") are not supported in filter conditions"
        ))),
        other => Err(OttlError::syntax(
            p.at(),
            format!("unexpected {} after a complete condition", other.describe()),
        )),
    }
}

/// A parsed OTTL statement: `editor(args) [where condition]`.
#[derive(Debug, Clone, PartialEq)]
pub struct StatementAst {
    pub editor: String,
    pub at: usize,
    pub args: Vec<ValAst>,
    pub condition: Option<BoolAst>,
}

/// Parses one statement (as the `transform` processor takes them).
pub fn parse_statement(src: &str) -> Result<StatementAst, OttlError> {
    let tokens = tokenize(src)?;
    let mut p = Parser {
        tokens,
        pos: 0,
        depth: 0,
    };
    if p.peek() == &TokenKind::Eof {
        return Err(OttlError::syntax(0, "the statement is empty"));
    }
    let at = p.at();
    let editor = match p.bump() {
        TokenKind::Ident(name) => name,
        other => {
            return Err(OttlError::syntax(
                at,
                format!(
                    "expected an editor such as set(...), found {}",
                    other.describe()
                ),
            ))
        }
    };
    p.expect(TokenKind::LParen, "\"(\" after the editor name")?;
    let args = p.list_items(TokenKind::RParen, "\")\"")?;
    let condition = if p.is_keyword("where") {
        p.bump();
        Some(p.or_expr()?)
    } else {
        None
    };
    match p.peek() {
        TokenKind::Eof => Ok(StatementAst {
            editor,
            at,
            args,
            condition,
        }),
        other => Err(OttlError::syntax(
            p.at(),
            format!(
                "unexpected {} after a complete statement (conditions follow \"where\")",
                other.describe()
            ),
        )),
    }
}

/// Deepest nesting of `not`, parentheses, lists and converter calls a condition may use. The
/// parser, compiler and evaluator recurse once per level: without a bound, a condition of a
/// few thousand `(` overflows the stack and aborts the process.
pub const MAX_DEPTH: usize = 64;

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    /// Current nesting (`term` and `value` calls in progress).
    depth: usize,
}

impl Parser {
    fn peek(&self) -> &TokenKind {
        &self.tokens[self.pos.min(self.tokens.len() - 1)].kind
    }
    fn at(&self) -> usize {
        self.tokens[self.pos.min(self.tokens.len() - 1)].at
    }
    fn bump(&mut self) -> TokenKind {
        let t = self.peek().clone();
        if self.pos < self.tokens.len() - 1 {
            self.pos += 1;
        }
        t
    }
    fn is_keyword(&self, kw: &str) -> bool {
        matches!(self.peek(), TokenKind::Ident(s) if s == kw)
    }
    fn expect(&mut self, kind: TokenKind, what: &str) -> Result<(), OttlError> {
        if *self.peek() == kind {
            self.bump();
            Ok(())
        } else {
            Err(OttlError::syntax(
                self.at(),
                format!("expected {what}, found {}", self.peek().describe()),
            ))
        }
    }

    fn or_expr(&mut self) -> Result<BoolAst, OttlError> {
        let mut items = vec![self.and_expr()?];
        while self.is_keyword("or") {
            self.bump();
            items.push(self.and_expr()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            BoolAst::Or(items)
        })
    }

    fn and_expr(&mut self) -> Result<BoolAst, OttlError> {
        let mut items = vec![self.term()?];
        while self.is_keyword("and") {
            self.bump();
            items.push(self.term()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            BoolAst::And(items)
        })
    }

    /// Runs one level of nesting, refusing to go deeper than [`MAX_DEPTH`].
    fn nested<T>(
        &mut self,
        parse: impl FnOnce(&mut Self) -> Result<T, OttlError>,
    ) -> Result<T, OttlError> {
        if self.depth >= MAX_DEPTH {
            return Err(OttlError::syntax(
                self.at(),
                format!("the condition nests deeper than {MAX_DEPTH} levels"),
            ));
        }
        self.depth += 1;
        let result = parse(self);
        self.depth -= 1;
        result
    }

    fn term(&mut self) -> Result<BoolAst, OttlError> {
        self.nested(Self::term_at_depth)
    }

    fn term_at_depth(&mut self) -> Result<BoolAst, OttlError> {
        if self.is_keyword("not") {
            self.bump();
            return Ok(BoolAst::Not(Box::new(self.term()?)));
        }
        if self.peek() == &TokenKind::LParen {
            self.bump();
            let inner = self.or_expr()?;
            self.expect(TokenKind::RParen, "\")\"")?;
            return Ok(inner);
        }
        let left = self.value()?;
        match self.peek().clone() {
            TokenKind::Cmp(op) => {
                self.bump();
                let right = self.value()?;
                if let TokenKind::Cmp(_) = self.peek() {
                    return Err(OttlError::syntax(
                        self.at(),
                        "comparisons cannot be chained; join them with \"and\"",
                    ));
                }
                Ok(BoolAst::Cmp { left, op, right })
            }
            _ => Ok(BoolAst::Value(left)),
        }
    }

    fn value(&mut self) -> Result<ValAst, OttlError> {
        self.nested(Self::value_at_depth)
    }

    fn value_at_depth(&mut self) -> Result<ValAst, OttlError> {
        let at = self.at();
        match self.bump() {
            TokenKind::Str(s) => Ok(ValAst::Literal(Literal::Str(s))),
            TokenKind::Int(i) => Ok(ValAst::Literal(Literal::Int(i))),
            TokenKind::Float(f) => Ok(ValAst::Literal(Literal::Float(f))),
            TokenKind::Bytes(b) => Ok(ValAst::Literal(Literal::Bytes(b))),
            TokenKind::LBracket => {
                let items = self.list_items(TokenKind::RBracket, "\"]\"")?;
                Ok(ValAst::List(items))
            }
            TokenKind::LBrace => Err(OttlError::unsupported(
                "map literals (\"{...}\") are not supported in filter conditions",
            )),
            TokenKind::Ident(name) => match name.as_str() {
                "true" => Ok(ValAst::Literal(Literal::Bool(true))),
                "false" => Ok(ValAst::Literal(Literal::Bool(false))),
                "nil" => Ok(ValAst::Literal(Literal::Nil)),
                "and" | "or" | "not" => Err(OttlError::syntax(
                    at,
                    format!("expected a value, found the keyword \"{name}\""),
                )),
                _ if self.peek() == &TokenKind::LParen => {
                    self.bump();
                    let args = self.list_items(TokenKind::RParen, "\")\"")?;
                    if self.peek() == &TokenKind::LBracket {
                        return Err(OttlError::unsupported(format!(
                            "indexing the result of {name}(...) is not supported"
                        )));
                    }
                    Ok(ValAst::Call { name, at, args })
                }
                _ if name.starts_with(|c: char| c.is_ascii_uppercase()) => {
                    Ok(ValAst::Enum { name, at })
                }
                _ => self.path_rest(name, at),
            },
            TokenKind::Math(c) => Err(OttlError::unsupported(format!(
                "math expressions (\"{c}\") are not supported in filter conditions"
            ))),
            other => Err(OttlError::syntax(
                at,
                format!("expected a value, found {}", other.describe()),
            )),
        }
    }

    fn path_rest(&mut self, first: String, at: usize) -> Result<ValAst, OttlError> {
        let mut segments = vec![first];
        while self.peek() == &TokenKind::Dot {
            self.bump();
            let seg_at = self.at();
            match self.bump() {
                TokenKind::Ident(s) => segments.push(s),
                other => {
                    return Err(OttlError::syntax(
                        seg_at,
                        format!(
                            "expected a field name after \".\", found {}",
                            other.describe()
                        ),
                    ))
                }
            }
        }
        let mut keys = Vec::new();
        while self.peek() == &TokenKind::LBracket {
            self.bump();
            let key_at = self.at();
            match self.bump() {
                TokenKind::Str(s) => keys.push(Key::Str(s)),
                TokenKind::Int(i) => keys.push(Key::Int(i)),
                other => {
                    return Err(OttlError::syntax(
                        key_at,
                        format!(
                            "expected a string key or an integer index, found {}",
                            other.describe()
                        ),
                    ))
                }
            }
            self.expect(TokenKind::RBracket, "\"]\"")?;
            if self.peek() == &TokenKind::Dot {
                return Err(OttlError::syntax(
                    self.at(),
                    "a field cannot follow a key (\"[...]\"); keys come last in a path",
                ));
            }
        }
        Ok(ValAst::Path(PathAst { segments, keys, at }))
    }

    fn list_items(&mut self, close: TokenKind, what: &str) -> Result<Vec<ValAst>, OttlError> {
        let mut items = Vec::new();
        if *self.peek() == close {
            self.bump();
            return Ok(items);
        }
        loop {
            items.push(self.value()?);
            match self.peek() {
                TokenKind::Comma => {
                    self.bump();
                }
                k if *k == close => {
                    self.bump();
                    return Ok(items);
                }
                TokenKind::Cmp(_) => {
                    return Err(OttlError::unsupported(
                        "comparisons as function arguments are not supported",
                    ))
                }
                other => {
                    return Err(OttlError::syntax(
                        self.at(),
                        format!("expected \",\" or {what}, found {}", other.describe()),
                    ))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(segs: &[&str], keys: Vec<Key>) -> ValAst {
        ValAst::Path(PathAst {
            segments: segs.iter().map(|s| s.to_string()).collect(),
            keys,
            at: 0,
        })
    }

    fn strip(v: BoolAst) -> BoolAst {
        // Offsets are checked in their own test; compare structure here.
        fn val(v: ValAst) -> ValAst {
            match v {
                ValAst::Path(mut p) => {
                    p.at = 0;
                    ValAst::Path(p)
                }
                ValAst::Enum { name, .. } => ValAst::Enum { name, at: 0 },
                ValAst::Call { name, args, .. } => ValAst::Call {
                    name,
                    at: 0,
                    args: args.into_iter().map(val).collect(),
                },
                ValAst::List(items) => ValAst::List(items.into_iter().map(val).collect()),
                other => other,
            }
        }
        match v {
            BoolAst::Or(v) => BoolAst::Or(v.into_iter().map(strip).collect()),
            BoolAst::And(v) => BoolAst::And(v.into_iter().map(strip).collect()),
            BoolAst::Not(b) => BoolAst::Not(Box::new(strip(*b))),
            BoolAst::Cmp { left, op, right } => BoolAst::Cmp {
                left: val(left),
                op,
                right: val(right),
            },
            BoolAst::Value(v) => BoolAst::Value(val(v)),
        }
    }

    #[test]
    fn precedence_not_over_and_over_or() {
        let ast = strip(parse_condition("not a == 1 or b == 2 and c == 3").unwrap());
        let cmp = |n: &str, i: i64| BoolAst::Cmp {
            left: path(&[n], vec![]),
            op: CmpOp::Eq,
            right: ValAst::Literal(Literal::Int(i)),
        };
        assert_eq!(
            ast,
            BoolAst::Or(vec![
                BoolAst::Not(Box::new(cmp("a", 1))),
                BoolAst::And(vec![cmp("b", 2), cmp("c", 3)]),
            ])
        );
    }

    #[test]
    fn parentheses_group() {
        let ast = strip(parse_condition("(a == 1 or b == 2) and true").unwrap());
        match ast {
            BoolAst::And(items) => {
                assert!(matches!(items[0], BoolAst::Or(_)));
                assert_eq!(
                    items[1],
                    BoolAst::Value(ValAst::Literal(Literal::Bool(true)))
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn paths_keys_calls_enums_lists() {
        let ast = strip(
            parse_condition(
                r#"Concat([attributes["a"]["b"], "x"], "-") == "1" and kind != SPAN_KIND_SERVER and attributes["l"][0] == nil"#,
            )
            .unwrap(),
        );
        let BoolAst::And(items) = ast else { panic!() };
        assert_eq!(
            items[0],
            BoolAst::Cmp {
                left: ValAst::Call {
                    name: "Concat".into(),
                    at: 0,
                    args: vec![
                        ValAst::List(vec![
                            path(
                                &["attributes"],
                                vec![Key::Str("a".into()), Key::Str("b".into())]
                            ),
                            ValAst::Literal(Literal::Str("x".into())),
                        ]),
                        ValAst::Literal(Literal::Str("-".into())),
                    ],
                },
                op: CmpOp::Eq,
                right: ValAst::Literal(Literal::Str("1".into())),
            }
        );
        assert_eq!(
            items[1],
            BoolAst::Cmp {
                left: path(&["kind"], vec![]),
                op: CmpOp::Ne,
                right: ValAst::Enum {
                    name: "SPAN_KIND_SERVER".into(),
                    at: 0
                },
            }
        );
        assert_eq!(
            items[2],
            BoolAst::Cmp {
                left: path(&["attributes"], vec![Key::Str("l".into()), Key::Int(0)]),
                op: CmpOp::Eq,
                right: ValAst::Literal(Literal::Nil),
            }
        );
    }

    #[test]
    fn statements_parse_with_and_without_where() {
        let st =
            parse_statement(r#"set(attributes["a"], Concat([name, "x"], "-")) where name == "n""#)
                .unwrap();
        assert_eq!(st.editor, "set");
        assert_eq!(st.args.len(), 2);
        assert!(matches!(&st.args[0], ValAst::Path(p) if p.text() == r#"attributes["a"]"#));
        assert!(matches!(&st.args[1], ValAst::Call { name, .. } if name == "Concat"));
        assert!(matches!(
            st.condition,
            Some(BoolAst::Cmp { op: CmpOp::Eq, .. })
        ));
        let st = parse_statement(r#"keep_keys(attributes, ["a", "b"])"#).unwrap();
        assert_eq!(st.condition, None);
        assert!(matches!(&st.args[1], ValAst::List(items) if items.len() == 2));
        let cases = [
            ("", "syntax error at column 1: the statement is empty"),
            (
                "\"x\"",
                "syntax error at column 1: expected an editor such as set(...), found string \"x\"",
            ),
            (
                "set",
                "syntax error at column 4: expected \"(\" after the editor name, found end of condition",
            ),
            (
                "set(a, 1) name == 1",
                "syntax error at column 11: unexpected \"name\" after a complete statement (conditions follow \"where\")",
            ),
        ];
        for (src, want) in cases {
            assert_eq!(
                parse_statement(src).unwrap_err().to_string(),
                want,
                "for {src:?}"
            );
        }
    }

    #[test]
    fn every_operator_parses() {
        for (text, op) in [
            ("==", CmpOp::Eq),
            ("!=", CmpOp::Ne),
            ("<", CmpOp::Lt),
            ("<=", CmpOp::Le),
            (">", CmpOp::Gt),
            (">=", CmpOp::Ge),
        ] {
            let ast = parse_condition(&format!("severity_number {text} 9")).unwrap();
            assert!(
                matches!(ast, BoolAst::Cmp { op: o, .. } if o == op),
                "{text}"
            );
        }
    }

    #[test]
    fn syntax_errors_are_precise() {
        let cases = [
            ("", "syntax error at column 1: the condition is empty"),
            (
                "name ==",
                "syntax error at column 8: expected a value, found end of condition",
            ),
            (
                "(name == \"a\"",
                "syntax error at column 13: expected \")\", found end of condition",
            ),
            (
                "a == 1 b == 2",
                "syntax error at column 8: unexpected \"b\" after a complete condition",
            ),
            (
                "a < b < c",
                "syntax error at column 7: comparisons cannot be chained; join them with \"and\"",
            ),
            (
                "attributes[k] == 1",
                "syntax error at column 12: expected a string key or an integer index, found \"k\"",
            ),
            (
                "value_int + 1 > 2",
                "math expressions (\"+\") are not supported in filter conditions",
            ),
            (
                "IsMatch(body, \"x\")[0]",
                "indexing the result of IsMatch(...) is not supported",
            ),
            (
                "attributes == {}",
                "map literals (\"{...}\") are not supported in filter conditions",
            ),
        ];
        for (src, want) in cases {
            let got = parse_condition(src).unwrap_err().to_string();
            assert_eq!(got, want, "for {src:?}");
        }
    }
}
