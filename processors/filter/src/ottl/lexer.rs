//! Tokens of the OTTL condition subset.

use super::OttlError;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl CmpOp {
    /// The operator with its operands swapped (`a < b` is `b > a`).
    pub fn reversed(self) -> CmpOp {
        match self {
            CmpOp::Lt => CmpOp::Gt,
            CmpOp::Le => CmpOp::Ge,
            CmpOp::Gt => CmpOp::Lt,
            CmpOp::Ge => CmpOp::Le,
            other => other,
        }
    }
}

/// One token and the byte offset it starts at.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub kind: TokenKind,
    pub at: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TokenKind {
    Ident(String),
    Str(String),
    Int(i64),
    Float(f64),
    Bytes(Vec<u8>),
    Cmp(CmpOp),
    LParen,
    RParen,
    LBracket,
    RBracket,
    LBrace,
    RBrace,
    Comma,
    Dot,
    /// `+ - * /`: math expressions are outside the supported subset; kept as a token so
    /// the parser can say so instead of reporting a confusing syntax error.
    Math(char),
    Eof,
}

impl TokenKind {
    pub fn describe(&self) -> String {
        match self {
            TokenKind::Ident(s) => format!("{s:?}"),
            TokenKind::Str(s) => format!("string {s:?}"),
            TokenKind::Int(i) => format!("number {i}"),
            TokenKind::Float(f) => format!("number {f}"),
            TokenKind::Bytes(_) => "bytes literal".to_string(),
            TokenKind::Cmp(op) => format!("{:?}", op_text(*op)),
            TokenKind::LParen => "\"(\"".into(),
            TokenKind::RParen => "\")\"".into(),
            TokenKind::LBracket => "\"[\"".into(),
            TokenKind::RBracket => "\"]\"".into(),
            TokenKind::LBrace => "\"{\"".into(),
            TokenKind::RBrace => "\"}\"".into(),
            TokenKind::Comma => "\",\"".into(),
            TokenKind::Dot => "\".\"".into(),
            TokenKind::Math(c) => format!("\"{c}\""),
            TokenKind::Eof => "end of condition".into(),
        }
    }
}

fn op_text(op: CmpOp) -> &'static str {
    match op {
        CmpOp::Eq => "==",
        CmpOp::Ne => "!=",
        CmpOp::Lt => "<",
        CmpOp::Le => "<=",
        CmpOp::Gt => ">",
        CmpOp::Ge => ">=",
    }
}

/// Splits a condition into tokens; the last token is always `Eof`.
pub fn tokenize(src: &str) -> Result<Vec<Token>, OttlError> {
    let bytes = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let at = i;
        let simple = |kind: TokenKind| Token { kind, at };
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'(' => {
                out.push(simple(TokenKind::LParen));
                i += 1
            }
            b')' => {
                out.push(simple(TokenKind::RParen));
                i += 1
            }
            b'[' => {
                out.push(simple(TokenKind::LBracket));
                i += 1
            }
            b']' => {
                out.push(simple(TokenKind::RBracket));
                i += 1
            }
            b'{' => {
                out.push(simple(TokenKind::LBrace));
                i += 1
            }
            b'}' => {
                out.push(simple(TokenKind::RBrace));
                i += 1
            }
            b',' => {
                out.push(simple(TokenKind::Comma));
                i += 1
            }
            b'=' | b'!' | b'<' | b'>' => {
                let next = bytes.get(i + 1).copied();
                let (op, len) = match (c, next) {
                    (b'=', Some(b'=')) => (CmpOp::Eq, 2),
                    (b'!', Some(b'=')) => (CmpOp::Ne, 2),
                    (b'<', Some(b'=')) => (CmpOp::Le, 2),
                    (b'>', Some(b'=')) => (CmpOp::Ge, 2),
                    (b'<', _) => (CmpOp::Lt, 1),
                    (b'>', _) => (CmpOp::Gt, 1),
                    (b'=', _) => {
                        return Err(OttlError::syntax(
                            at,
                            "\"=\" is not an operator (use \"==\")",
                        ))
                    }
                    _ => {
                        return Err(OttlError::syntax(
                            at,
                            "\"!\" is not an operator (use \"not\" or \"!=\")",
                        ))
                    }
                };
                out.push(simple(TokenKind::Cmp(op)));
                i += len;
            }
            b'"' => {
                let (s, end) = lex_string(src, i)?;
                out.push(simple(TokenKind::Str(s)));
                i = end;
            }
            b'0' if matches!(bytes.get(i + 1), Some(b'x') | Some(b'X')) => {
                let start = i + 2;
                let mut end = start;
                while end < bytes.len() && bytes[end].is_ascii_hexdigit() {
                    end += 1;
                }
                let hex = &src[start..end];
                if hex.is_empty() || !hex.len().is_multiple_of(2) {
                    return Err(OttlError::syntax(
                        at,
                        "a bytes literal needs an even number of hex digits after 0x",
                    ));
                }
                out.push(simple(TokenKind::Bytes(decode_hex(hex))));
                i = end;
            }
            b'0'..=b'9' | b'.' => {
                let (kind, end) = lex_number(src, i, i)?;
                out.push(simple(kind));
                i = end;
            }
            b'-' | b'+'
                if matches!(bytes.get(i + 1), Some(b'0'..=b'9') | Some(b'.'))
                    && !ends_value(out.last()) =>
            {
                let (kind, end) = lex_number(src, i, i + 1)?;
                out.push(simple(kind));
                i = end;
            }
            b'+' | b'-' | b'*' | b'/' => {
                out.push(simple(TokenKind::Math(c as char)));
                i += 1;
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let mut end = i;
                while end < bytes.len()
                    && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_')
                {
                    end += 1;
                }
                out.push(simple(TokenKind::Ident(src[i..end].to_string())));
                i = end;
            }
            _ => {
                let ch = src[i..].chars().next().unwrap_or('?');
                return Err(OttlError::syntax(
                    at,
                    format!("unexpected character {ch:?}"),
                ));
            }
        }
        // A dot directly after an identifier or "]" separates path segments; elsewhere it
        // starts a number (handled above).
        if i < bytes.len() && bytes[i] == b'.' {
            if let Some(Token {
                kind: TokenKind::Ident(_) | TokenKind::RBracket,
                ..
            }) = out.last()
            {
                out.push(Token {
                    kind: TokenKind::Dot,
                    at: i,
                });
                i += 1;
            }
        }
    }
    out.push(Token {
        kind: TokenKind::Eof,
        at: src.len(),
    });
    Ok(out)
}

/// Whether the previous token ends a value, so a following `-` would be subtraction.
fn ends_value(prev: Option<&Token>) -> bool {
    matches!(
        prev.map(|t| &t.kind),
        Some(
            TokenKind::Ident(_)
                | TokenKind::Str(_)
                | TokenKind::Int(_)
                | TokenKind::Float(_)
                | TokenKind::Bytes(_)
                | TokenKind::RParen
                | TokenKind::RBracket
        )
    )
}

fn lex_number(src: &str, start: usize, digits: usize) -> Result<(TokenKind, usize), OttlError> {
    let bytes = src.as_bytes();
    let mut end = digits;
    let mut is_float = false;
    while end < bytes.len() && bytes[end].is_ascii_digit() {
        end += 1;
    }
    if end < bytes.len() && bytes[end] == b'.' {
        is_float = true;
        end += 1;
        let frac = end;
        while end < bytes.len() && bytes[end].is_ascii_digit() {
            end += 1;
        }
        if end == frac {
            return Err(OttlError::syntax(
                start,
                "a number needs digits after \".\"",
            ));
        }
        if end < bytes.len() && (bytes[end] == b'e' || bytes[end] == b'E') {
            let mut e = end + 1;
            if e < bytes.len() && (bytes[e] == b'+' || bytes[e] == b'-') {
                e += 1;
            }
            let exp_digits = e;
            while e < bytes.len() && bytes[e].is_ascii_digit() {
                e += 1;
            }
            if e > exp_digits {
                end = e;
            }
        }
    }
    let text = &src[start..end];
    let kind = if is_float {
        let v: f64 = text
            .parse()
            .map_err(|_| OttlError::syntax(start, format!("invalid number {text:?}")))?;
        TokenKind::Float(v)
    } else {
        let v: i64 = text
            .parse()
            .map_err(|_| OttlError::syntax(start, format!("integer {text:?} is out of range")))?;
        TokenKind::Int(v)
    };
    Ok((kind, end))
}

/// Reads a double-quoted string starting at `start`. `\"`, `\\`, `\n`, `\t` and `\r` are
/// escapes; any other backslash is kept as written so that regex patterns such as `"\d+"`
/// reach the regex engine intact.
fn lex_string(src: &str, start: usize) -> Result<(String, usize), OttlError> {
    let mut out = String::new();
    let mut chars = src[start + 1..].char_indices();
    while let Some((off, c)) = chars.next() {
        match c {
            '"' => return Ok((out, start + 1 + off + 1)),
            '\\' => match chars.next() {
                Some((_, '"')) => out.push('"'),
                Some((_, '\\')) => out.push('\\'),
                Some((_, 'n')) => out.push('\n'),
                Some((_, 't')) => out.push('\t'),
                Some((_, 'r')) => out.push('\r'),
                Some((_, other)) => {
                    out.push('\\');
                    out.push(other);
                }
                None => break,
            },
            c => out.push(c),
        }
    }
    Err(OttlError::syntax(start, "string is not closed with '\"'"))
}

fn decode_hex(hex: &str) -> Vec<u8> {
    hex.as_bytes()
        .chunks(2)
        .map(|p| (hex_val(p[0]) << 4) | hex_val(p[1]))
        .collect()
}

fn hex_val(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => c - b'A' + 10,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(s: &str) -> Vec<TokenKind> {
        tokenize(s).unwrap().into_iter().map(|t| t.kind).collect()
    }

    #[test]
    fn tokens_of_a_typical_condition() {
        assert_eq!(
            kinds(r#"resource.attributes["k"] >= -1.5e3 and x != 0xCAFE"#),
            vec![
                TokenKind::Ident("resource".into()),
                TokenKind::Dot,
                TokenKind::Ident("attributes".into()),
                TokenKind::LBracket,
                TokenKind::Str("k".into()),
                TokenKind::RBracket,
                TokenKind::Cmp(CmpOp::Ge),
                TokenKind::Float(-1500.0),
                TokenKind::Ident("and".into()),
                TokenKind::Ident("x".into()),
                TokenKind::Cmp(CmpOp::Ne),
                TokenKind::Bytes(vec![0xca, 0xfe]),
                TokenKind::Eof,
            ]
        );
    }

    #[test]
    fn string_escapes_keep_regex_backslashes() {
        assert_eq!(
            kinds(r#""a\"b\\c\d""#)[0],
            TokenKind::Str("a\"b\\c\\d".into())
        );
    }

    #[test]
    fn lexer_errors_name_the_column() {
        let e = tokenize("name = \"x\"").unwrap_err();
        assert_eq!(
            e.to_string(),
            "syntax error at column 6: \"=\" is not an operator (use \"==\")"
        );
        let e = tokenize("x == 0xABC").unwrap_err();
        assert!(e.to_string().contains("even number of hex digits"), "{e}");
        let e = tokenize("x == \"open").unwrap_err();
        assert!(e.to_string().contains("not closed"), "{e}");
    }

    #[test]
    fn minus_after_a_value_is_math() {
        assert_eq!(
            kinds("a -1"),
            vec![
                TokenKind::Ident("a".into()),
                TokenKind::Math('-'),
                TokenKind::Int(1),
                TokenKind::Eof
            ]
        );
    }
}
