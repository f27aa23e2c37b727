//! Arbitrary text through the OTTL condition parser and compiler of the `filter` processor.
//! Nothing may panic nor overflow the stack (nesting is bounded by `parser::MAX_DEPTH`), and:
//! - a syntax error points inside the text (its byte offset is at most the length);
//! - a parsed condition, written back out by [`write_bool`] (the grammar's canonical form),
//!   parses to the same tree, positions aside: the parser loses or
//!   invents nothing (string escapes, negative and float literals, bytes, keys);
//! - compiling it for every signal, with the context inferred and with each context given,
//!   either succeeds or blames condition 0, the only one there is.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir_filter::ottl::lexer::CmpOp;
use weir_filter::ottl::parser::{parse_condition, BoolAst, Key, Literal, PathAst, ValAst};
use weir_filter::ottl::{compile_group, OttlError, PathMode, SignalKind};

fn op(o: CmpOp) -> &'static str {
    match o {
        CmpOp::Eq => "==",
        CmpOp::Ne => "!=",
        CmpOp::Lt => "<",
        CmpOp::Le => "<=",
        CmpOp::Gt => ">",
        CmpOp::Ge => ">=",
    }
}

/// A string literal in the lexer's escapes: `\"`, `\\`, `\n`, `\t`, `\r`.
fn write_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A float the lexer reads back to the same value: it needs a `.`, and an overflowing
/// literal (`1.0e999`) is how an infinity is written.
fn write_float(f: f64, out: &mut String) {
    if f.is_infinite() {
        out.push_str(if f > 0.0 { "1.0e999" } else { "-1.0e999" });
        return;
    }
    let s = format!("{f:e}");
    match s.split_once('e') {
        Some((mantissa, exp)) if !mantissa.contains('.') => {
            out.push_str(&format!("{mantissa}.0e{exp}"))
        }
        _ => out.push_str(&s),
    }
}

fn write_val(v: &ValAst, out: &mut String) {
    match v {
        ValAst::Literal(Literal::Nil) => out.push_str("nil"),
        ValAst::Literal(Literal::Bool(b)) => out.push_str(if *b { "true" } else { "false" }),
        ValAst::Literal(Literal::Int(i)) => out.push_str(&i.to_string()),
        ValAst::Literal(Literal::Float(f)) => write_float(*f, out),
        ValAst::Literal(Literal::Str(s)) => write_str(s, out),
        ValAst::Literal(Literal::Bytes(b)) => {
            out.push_str("0x");
            for byte in b {
                out.push_str(&format!("{byte:02x}"));
            }
        }
        ValAst::Path(p) => {
            out.push_str(&p.segments.join("."));
            for k in &p.keys {
                out.push('[');
                match k {
                    Key::Str(s) => write_str(s, out),
                    Key::Int(i) => out.push_str(&i.to_string()),
                }
                out.push(']');
            }
        }
        ValAst::Enum { name, .. } => out.push_str(name),
        ValAst::Call { name, args, .. } => {
            out.push_str(name);
            write_list(args, "(", ")", out);
        }
        ValAst::List(items) => write_list(items, "[", "]", out),
    }
}

fn write_list(items: &[ValAst], open: &str, close: &str, out: &mut String) {
    out.push_str(open);
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write_val(item, out);
    }
    out.push_str(close);
}

/// The condition in canonical form: parentheses only where the tree needs them (an `or`
/// inside an `or` or an `and`, an `and` inside an `and`, either under `not`), so the form is
/// never nested deeper than the text it came from.
fn write_bool(b: &BoolAst, out: &mut String) {
    fn grouped(b: &BoolAst, parens: bool, out: &mut String) {
        if parens {
            out.push('(');
            write_bool(b, out);
            out.push(')');
        } else {
            write_bool(b, out);
        }
    }
    match b {
        BoolAst::Or(items) => {
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(" or ");
                }
                grouped(item, matches!(item, BoolAst::Or(_)), out);
            }
        }
        BoolAst::And(items) => {
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(" and ");
                }
                grouped(item, matches!(item, BoolAst::Or(_) | BoolAst::And(_)), out);
            }
        }
        BoolAst::Not(inner) => {
            out.push_str("not ");
            grouped(
                inner,
                matches!(**inner, BoolAst::Or(_) | BoolAst::And(_)),
                out,
            );
        }
        BoolAst::Cmp { left, op: o, right } => {
            write_val(left, out);
            out.push(' ');
            out.push_str(op(*o));
            out.push(' ');
            write_val(right, out);
        }
        BoolAst::Value(v) => write_val(v, out),
    }
}

/// The tree with every source position set to 0.
fn without_positions(b: &BoolAst) -> BoolAst {
    fn val(v: &ValAst) -> ValAst {
        match v {
            ValAst::Path(p) => ValAst::Path(PathAst { at: 0, ..p.clone() }),
            ValAst::Enum { name, .. } => ValAst::Enum {
                name: name.clone(),
                at: 0,
            },
            ValAst::Call { name, args, .. } => ValAst::Call {
                name: name.clone(),
                at: 0,
                args: args.iter().map(val).collect(),
            },
            ValAst::List(items) => ValAst::List(items.iter().map(val).collect()),
            ValAst::Literal(l) => ValAst::Literal(l.clone()),
        }
    }
    match b {
        BoolAst::Or(items) => BoolAst::Or(items.iter().map(without_positions).collect()),
        BoolAst::And(items) => BoolAst::And(items.iter().map(without_positions).collect()),
        BoolAst::Not(inner) => BoolAst::Not(Box::new(without_positions(inner))),
        BoolAst::Cmp { left, op, right } => BoolAst::Cmp {
            left: val(left),
            op: *op,
            right: val(right),
        },
        BoolAst::Value(v) => BoolAst::Value(val(v)),
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let ast = match parse_condition(text) {
        Ok(ast) => ast,
        Err(OttlError::Syntax { at, message }) => {
            assert!(
                at <= text.len(),
                "error offset {at} past the end: {message}"
            );
            assert!(!message.is_empty());
            return;
        }
        Err(OttlError::Invalid(message)) => {
            assert!(!message.is_empty());
            return;
        }
    };
    let mut canonical = String::new();
    write_bool(&ast, &mut canonical);
    let again = parse_condition(&canonical)
        .unwrap_or_else(|e| panic!("canonical form {canonical:?} does not parse: {e}"));
    assert_eq!(
        without_positions(&again),
        without_positions(&ast),
        "canonical form {canonical:?} parses to another tree"
    );

    let sources = [text.to_string()];
    for signal in [SignalKind::Logs, SignalKind::Traces, SignalKind::Metrics] {
        let modes = std::iter::once(PathMode::Inferred)
            .chain(signal.contexts().iter().map(|c| PathMode::Explicit(*c)));
        for mode in modes {
            if let Err(e) = compile_group(signal, mode, &sources) {
                assert_eq!(e.index, 0, "{signal:?} {mode:?}: {e:?}");
                assert!(!e.error.to_string().is_empty());
            }
        }
    }
});
