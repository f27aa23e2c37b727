//! Statement groups without an explicit context: inferring the context from the paths the
//! statements and conditions use, as the Collector does, and compiling the group in it.

use super::vocabulary::FIELDS;
use super::{CompiledGroup, Compiler, Ctx, GroupError, PathMode, SignalKind};
use crate::ottl::eval::Condition;
use crate::ottl::parser::{parse_condition, BoolAst, PathAst, ValAst};
use crate::ottl::OttlError;

/// Parses and compiles one group of conditions (one `{context, conditions}` entry, or one
/// nested list such as `logs.log_record`).
pub fn compile_group(
    signal: SignalKind,
    mode: PathMode,
    sources: &[String],
) -> Result<CompiledGroup, GroupError> {
    let at = |index: usize| move |error: OttlError| GroupError { index, error };
    let mut asts = Vec::with_capacity(sources.len());
    for (i, src) in sources.iter().enumerate() {
        asts.push(parse_condition(src).map_err(at(i))?);
    }
    let ctx = match mode {
        PathMode::Explicit(c) => {
            if !signal.contexts().contains(&c) {
                return Err(GroupError {
                    index: 0,
                    error: OttlError::Invalid(format!(
                        "context \"{}\" is not available in {} (valid: {})",
                        c.name(),
                        signal.conditions_key(),
                        context_list(signal)
                    )),
                });
            }
            c
        }
        PathMode::Inferred => infer(signal, &asts)?,
    };
    let compiler = Compiler { ctx, mode };
    let mut conditions = Vec::with_capacity(asts.len());
    for (i, (ast, src)) in asts.iter().zip(sources).enumerate() {
        conditions.push(Condition {
            expr: compiler.bool_expr(ast).map_err(at(i))?,
            text: src.clone(),
        });
    }
    Ok(CompiledGroup { ctx, conditions })
}

fn context_list(signal: SignalKind) -> String {
    signal
        .contexts()
        .iter()
        .map(|c| c.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Infers the group's context from the path prefixes (and context-bound converters),
/// choosing the most specific one, as the collector's parser collection does.
fn infer(signal: SignalKind, asts: &[BoolAst]) -> Result<Ctx, GroupError> {
    let mut best: Option<Ctx> = None;
    for (index, ast) in asts.iter().enumerate() {
        let mut found = Vec::new();
        collect_contexts(ast, signal, &mut found).map_err(|error| GroupError { index, error })?;
        for c in found {
            if !signal.contexts().contains(&c) {
                return Err(GroupError {
                    index,
                    error: OttlError::Invalid(format!(
                        "context \"{}\" is not available in {} (valid: {})",
                        c.name(),
                        signal.conditions_key(),
                        context_list(signal)
                    )),
                });
            }
            if best.is_none_or(|b| c.priority() < b.priority()) {
                best = Some(c);
            }
        }
    }
    best.ok_or_else(|| GroupError {
        index: 0,
        error: OttlError::Invalid(format!(
            "cannot infer the context of these conditions: prefix paths with one of {}",
            context_list(signal)
        )),
    })
}

/// Infers the context of one statement (its editor arguments and `where` condition) from
/// its path prefixes, the most specific one winning.
pub fn infer_statement(
    signal: SignalKind,
    st: &crate::ottl::parser::StatementAst,
) -> Result<Ctx, OttlError> {
    let mut found = Vec::new();
    // The prefix messages name the filter's key; statements have their own.
    let rename = |e: OttlError| match e {
        OttlError::Invalid(m) => {
            OttlError::Invalid(m.replace(signal.conditions_key(), signal.statements_key()))
        }
        other => other,
    };
    for a in &st.args {
        collect_val_contexts(a, signal, &mut found).map_err(rename)?;
    }
    if let Some(c) = &st.condition {
        collect_contexts(c, signal, &mut found).map_err(rename)?;
    }
    let mut best: Option<Ctx> = None;
    for c in found {
        if !signal.contexts().contains(&c) {
            return Err(OttlError::Invalid(format!(
                "context \"{}\" is not available for {} (valid: {})",
                c.name(),
                signal.statements_key(),
                context_list(signal)
            )));
        }
        if best.is_none_or(|b| c.priority() < b.priority()) {
            best = Some(c);
        }
    }
    best.ok_or_else(|| {
        OttlError::Invalid(format!(
            "cannot infer the context of this statement: prefix paths with one of {}",
            context_list(signal)
        ))
    })
}

fn collect_contexts(
    ast: &BoolAst,
    signal: SignalKind,
    out: &mut Vec<Ctx>,
) -> Result<(), OttlError> {
    match ast {
        BoolAst::Or(v) | BoolAst::And(v) => {
            v.iter().try_for_each(|a| collect_contexts(a, signal, out))
        }
        BoolAst::Not(b) => collect_contexts(b, signal, out),
        BoolAst::Cmp { left, right, .. } => {
            collect_val_contexts(left, signal, out)?;
            collect_val_contexts(right, signal, out)
        }
        BoolAst::Value(v) => collect_val_contexts(v, signal, out),
    }
}

fn collect_val_contexts(
    v: &ValAst,
    signal: SignalKind,
    out: &mut Vec<Ctx>,
) -> Result<(), OttlError> {
    match v {
        ValAst::Path(p) => {
            let first = p.segments[0].as_str();
            match Ctx::parse(first) {
                Some(c) if p.segments.len() > 1 => {
                    out.push(c);
                    Ok(())
                }
                _ => Err(missing_prefix(p, signal)),
            }
        }
        ValAst::Call { name, args, .. } => {
            match name.as_str() {
                "HasAttrKeyOnDatapoint" | "HasAttrOnDatapoint" => out.push(Ctx::Metric),
                "IsRootSpan" => out.push(Ctx::Span),
                _ => {}
            }
            args.iter()
                .try_for_each(|a| collect_val_contexts(a, signal, out))
        }
        ValAst::List(items) => items
            .iter()
            .try_for_each(|a| collect_val_contexts(a, signal, out)),
        ValAst::Literal(_) | ValAst::Enum { .. } => Ok(()),
    }
}

fn missing_prefix(p: &PathAst, signal: SignalKind) -> OttlError {
    let name = p.segments.join(".");
    let mut contexts: Vec<Ctx> = signal.contexts().to_vec();
    contexts.sort_by_key(|c| c.priority());
    let hint = contexts
        .iter()
        .find(|c| FIELDS.iter().any(|(fc, n, _, _)| fc == *c && *n == name))
        .map(|c| format!(" (did you mean \"{}.{}\"?)", c.name(), p.text()))
        .unwrap_or_else(|| format!(" (prefix it with one of {})", context_list(signal)));
    OttlError::Invalid(format!(
        "path \"{}\" has no context prefix; {} needs one{hint}",
        p.text(),
        signal.conditions_key()
    ))
}
