//! Resolves parsed conditions against an OTTL context: paths to fields, converters to
//! their implementations, enums to numbers. Everything is checked here, once, so that
//! evaluation never meets an unknown name.

mod infer;
mod vocabulary;

use std::borrow::Cow;

use regex::Regex;

use super::eval::{CBool, CVal, Case, Condition, Field, TypeCheck};
use super::parser::{BoolAst, Literal, PathAst, ValAst};
use super::value::Val;
use super::{with_hint, OttlError};
pub use infer::{compile_group, infer_statement};
pub use vocabulary::FUNCTIONS;
use vocabulary::{EDITORS, ENUMS, FIELDS, KNOWN_UNSUPPORTED};

/// An OTTL context: what one evaluation of a condition looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ctx {
    Resource,
    Scope,
    Log,
    Span,
    SpanEvent,
    Metric,
    DataPoint,
}

impl Ctx {
    /// The context's name as written in configs and path prefixes.
    pub fn name(self) -> &'static str {
        match self {
            Ctx::Resource => "resource",
            Ctx::Scope => "scope",
            Ctx::Log => "log",
            Ctx::Span => "span",
            Ctx::SpanEvent => "spanevent",
            Ctx::Metric => "metric",
            Ctx::DataPoint => "datapoint",
        }
    }

    /// Parses a context name (`instrumentation_scope` is the older name of `scope`).
    pub fn parse(s: &str) -> Option<Ctx> {
        Some(match s {
            "resource" => Ctx::Resource,
            "scope" | "instrumentation_scope" => Ctx::Scope,
            "log" => Ctx::Log,
            "span" => Ctx::Span,
            "spanevent" => Ctx::SpanEvent,
            "metric" => Ctx::Metric,
            "datapoint" => Ctx::DataPoint,
            _ => return None,
        })
    }

    /// Contexts whose paths a condition evaluated in this context may read.
    fn reaches(self) -> &'static [Ctx] {
        use Ctx::*;
        match self {
            Resource => &[Resource],
            Scope => &[Scope, Resource],
            Log => &[Log, Scope, Resource],
            Span => &[Span, Scope, Resource],
            SpanEvent => &[SpanEvent, Span, Scope, Resource],
            Metric => &[Metric, Scope, Resource],
            DataPoint => &[DataPoint, Metric, Scope, Resource],
        }
    }

    // The collector's inference priority: the most specific context mentioned wins.
    fn priority(self) -> u8 {
        match self {
            Ctx::Log => 0,
            Ctx::DataPoint => 1,
            Ctx::Metric => 2,
            Ctx::SpanEvent => 3,
            Ctx::Span => 4,
            Ctx::Scope => 5,
            Ctx::Resource => 6,
        }
    }
}

/// The signal a group of conditions filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalKind {
    Logs,
    Traces,
    Metrics,
}

impl SignalKind {
    /// The contexts this signal's conditions may use.
    pub fn contexts(self) -> &'static [Ctx] {
        match self {
            SignalKind::Logs => &[Ctx::Resource, Ctx::Scope, Ctx::Log],
            SignalKind::Traces => &[Ctx::Resource, Ctx::Scope, Ctx::Span, Ctx::SpanEvent],
            SignalKind::Metrics => &[Ctx::Resource, Ctx::Scope, Ctx::Metric, Ctx::DataPoint],
        }
    }

    /// The `transform` processor's key for this signal's statements.
    pub fn statements_key(self) -> &'static str {
        match self {
            SignalKind::Logs => "log_statements",
            SignalKind::Traces => "trace_statements",
            SignalKind::Metrics => "metric_statements",
        }
    }

    fn conditions_key(self) -> &'static str {
        match self {
            SignalKind::Logs => "log_conditions",
            SignalKind::Traces => "trace_conditions",
            SignalKind::Metrics => "metric_conditions",
        }
    }
}

/// How paths name their context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathMode {
    /// Every path carries its context (`log.body`); the group's context is inferred.
    Inferred,
    /// The context is given; paths without a prefix belong to it.
    Explicit(Ctx),
}

/// Conditions compiled for one context. Any condition true means "drop".
#[derive(Debug)]
pub struct CompiledGroup {
    pub ctx: Ctx,
    pub conditions: Vec<Condition>,
}

/// A compile error and the index of the condition it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupError {
    pub index: usize,
    pub error: OttlError,
}

/// Compiles conditions, values and paths for one context (the `transform` processor
/// compiles its statements' arguments with it).
pub struct Compiler {
    ctx: Ctx,
    mode: PathMode,
}

impl Compiler {
    /// A compiler for expressions evaluated in `ctx`, paths written as `mode` says.
    pub fn new(ctx: Ctx, mode: PathMode) -> Self {
        Compiler { ctx, mode }
    }

    /// Compiles a condition, keeping `text` for error messages.
    pub fn condition(&self, ast: &BoolAst, text: &str) -> Result<Condition, OttlError> {
        Ok(Condition {
            expr: self.bool_expr(ast)?,
            text: text.to_string(),
        })
    }

    /// Resolves a path to a field and its keys.
    pub fn resolve_path(&self, p: &PathAst) -> Result<(Field, Vec<super::parser::Key>), OttlError> {
        self.path(p)
    }

    fn bool_expr(&self, ast: &BoolAst) -> Result<CBool, OttlError> {
        Ok(match ast {
            BoolAst::Or(v) => CBool::Or(v.iter().map(|a| self.bool_expr(a)).collect::<Result<_, _>>()?),
            BoolAst::And(v) => CBool::And(v.iter().map(|a| self.bool_expr(a)).collect::<Result<_, _>>()?),
            BoolAst::Not(b) => CBool::Not(Box::new(self.bool_expr(b)?)),
            BoolAst::Cmp { left, op, right } => CBool::Cmp(self.value(left)?, *op, self.value(right)?),
            BoolAst::Value(ValAst::Literal(Literal::Bool(b))) => CBool::Const(*b),
            BoolAst::Value(ValAst::Call { name, args, .. }) => match self.call(name, args)? {
                CVal::Bool(b) => *b,
                _ => {
                    return Err(OttlError::Invalid(format!(
                        "{name}(...) returns a value, not a condition; compare it (for example {name}(...) != nil)"
                    )))
                }
            },
            BoolAst::Value(ValAst::Path(p)) => {
                return Err(OttlError::Invalid(format!(
                    "path \"{}\" alone is not a condition; compare it (for example {} == true)",
                    p.text(),
                    p.text()
                )))
            }
            BoolAst::Value(_) => {
                return Err(OttlError::Invalid(
                    "a condition must be true, false, a comparison or a converter returning a bool"
                        .into(),
                ))
            }
        })
    }

    /// Compiles a value expression.
    pub fn value(&self, ast: &ValAst) -> Result<CVal, OttlError> {
        Ok(match ast {
            ValAst::Literal(l) => CVal::Lit(match l {
                Literal::Nil => Val::Nil,
                Literal::Bool(b) => Val::Bool(*b),
                Literal::Int(i) => Val::Int(*i),
                Literal::Float(f) => Val::Float(*f),
                Literal::Str(s) => Val::Str(Cow::Owned(s.clone())),
                Literal::Bytes(b) => Val::Bytes(Cow::Owned(b.clone())),
            }),
            ValAst::Enum { name, .. } => match ENUMS.iter().find(|(n, _)| n == name) {
                Some((_, v)) => CVal::Lit(Val::Int(*v)),
                None => {
                    return Err(OttlError::Invalid(with_hint(
                        format!("unknown enum \"{name}\""),
                        name,
                        ENUMS.iter().map(|(n, _)| *n),
                    )))
                }
            },
            ValAst::Path(p) => {
                let (field, keys) = self.path(p)?;
                CVal::Path(field, keys)
            }
            ValAst::Call { name, args, .. } => self.call(name, args)?,
            ValAst::List(_) => {
                return Err(OttlError::Invalid(
                    "list literals are only supported as the first argument of Concat".into(),
                ))
            }
        })
    }

    fn path(&self, p: &PathAst) -> Result<(Field, Vec<super::parser::Key>), OttlError> {
        let (pctx, rest, prefixed) = match Ctx::parse(&p.segments[0]) {
            Some(c) if p.segments.len() > 1 => (c, &p.segments[1..], true),
            _ => match self.mode {
                PathMode::Explicit(c) => (c, &p.segments[..], false),
                PathMode::Inferred => {
                    return Err(OttlError::Invalid(format!(
                        "path \"{}\" has no context prefix",
                        p.text()
                    )))
                }
            },
        };
        if !self.ctx.reaches().contains(&pctx) {
            return Err(OttlError::Invalid(format!(
                "path \"{}\" reads the {} context, which conditions in the {} context cannot reach",
                p.text(),
                pctx.name(),
                self.ctx.name()
            )));
        }
        let name = rest.join(".");
        let Some((_, _, field, keyed)) =
            FIELDS.iter().find(|(c, n, _, _)| *c == pctx && *n == name)
        else {
            let prefix = if prefixed {
                format!("{}.", p.segments[0])
            } else {
                String::new()
            };
            let candidates: Vec<String> = FIELDS
                .iter()
                .filter(|(c, _, _, _)| *c == pctx)
                .map(|(_, n, _, _)| format!("{prefix}{n}"))
                .collect();
            let written = format!("{prefix}{name}");
            return Err(OttlError::Invalid(with_hint(
                format!("unknown path \"{written}\" in the {} context", pctx.name()),
                &written,
                candidates.iter().map(String::as_str),
            )));
        };
        if !keyed && !p.keys.is_empty() {
            return Err(OttlError::Invalid(format!(
                "path \"{}\" does not take keys",
                p.segments.join(".")
            )));
        }
        Ok((*field, p.keys.clone()))
    }

    fn call(&self, name: &str, args: &[ValAst]) -> Result<CVal, OttlError> {
        let arity = |n: usize| -> Result<(), OttlError> {
            if args.len() == n {
                Ok(())
            } else {
                Err(OttlError::Invalid(format!(
                    "{name} takes {n} argument{}, got {}",
                    if n == 1 { "" } else { "s" },
                    args.len()
                )))
            }
        };
        let string_lit = |i: usize, what: &str| -> Result<String, OttlError> {
            match &args[i] {
                ValAst::Literal(Literal::Str(s)) => Ok(s.clone()),
                _ => Err(OttlError::Invalid(format!(
                    "{name}: {what} must be a string literal"
                ))),
            }
        };
        let boxed = |b: CBool| CVal::Bool(Box::new(b));
        Ok(match name {
            "IsMatch" => {
                arity(2)?;
                let pattern = string_lit(1, "the pattern")?;
                let re = Regex::new(&pattern).map_err(|e| {
                    OttlError::Invalid(format!("IsMatch: invalid regex {pattern:?}: {e}"))
                })?;
                boxed(CBool::IsMatch(self.value(&args[0])?, re))
            }
            "IsRootSpan" => {
                arity(0)?;
                if !matches!(self.ctx, Ctx::Span | Ctx::SpanEvent) {
                    return Err(self.wrong_context(name, "span"));
                }
                boxed(CBool::IsRootSpan)
            }
            "HasAttrKeyOnDatapoint" => {
                arity(1)?;
                if self.ctx != Ctx::Metric {
                    return Err(self.wrong_context(name, "metric"));
                }
                boxed(CBool::HasAttrKeyOnDatapoint(string_lit(0, "the key")?))
            }
            "HasAttrOnDatapoint" => {
                arity(2)?;
                if self.ctx != Ctx::Metric {
                    return Err(self.wrong_context(name, "metric"));
                }
                boxed(CBool::HasAttrOnDatapoint(
                    string_lit(0, "the key")?,
                    string_lit(1, "the value")?,
                ))
            }
            "Len" => {
                arity(1)?;
                CVal::Len(Box::new(self.value(&args[0])?))
            }
            "String" => {
                arity(1)?;
                CVal::String(Box::new(self.value(&args[0])?))
            }
            "Int" => {
                arity(1)?;
                CVal::Int(Box::new(self.value(&args[0])?))
            }
            "Double" => {
                arity(1)?;
                CVal::Double(Box::new(self.value(&args[0])?))
            }
            "ToLowerCase" | "ToUpperCase" => {
                arity(1)?;
                let case = if name == "ToLowerCase" {
                    Case::Lower
                } else {
                    Case::Upper
                };
                CVal::Case(Box::new(self.value(&args[0])?), case)
            }
            "ConvertCase" => {
                arity(2)?;
                let to = string_lit(1, "the case")?;
                let case = match to.as_str() {
                    "lower" => Case::Lower,
                    "upper" => Case::Upper,
                    "snake" => Case::Snake,
                    "camel" => Case::Camel,
                    other => {
                        return Err(OttlError::Invalid(with_hint(
                            format!(
                                "ConvertCase: invalid case {other:?} (lower, upper, snake, camel)"
                            ),
                            other,
                            ["lower", "upper", "snake", "camel"],
                        )))
                    }
                };
                CVal::Case(Box::new(self.value(&args[0])?), case)
            }
            "SHA256" => {
                arity(1)?;
                CVal::Sha256(Box::new(self.value(&args[0])?))
            }
            "Substring" => {
                arity(3)?;
                let int_lit = |i: usize, what: &str| -> Result<i64, OttlError> {
                    match &args[i] {
                        ValAst::Literal(Literal::Int(n)) if *n >= 0 => Ok(*n),
                        _ => Err(OttlError::Invalid(format!(
                            "Substring: {what} must be a non-negative integer literal"
                        ))),
                    }
                };
                CVal::Substring(
                    Box::new(self.value(&args[0])?),
                    int_lit(1, "the start")?,
                    int_lit(2, "the length")?,
                )
            }
            "IsString" | "IsInt" | "IsDouble" | "IsBool" | "IsMap" | "IsList" => {
                arity(1)?;
                let kind = match name {
                    "IsString" => TypeCheck::Str,
                    "IsInt" => TypeCheck::Int,
                    "IsDouble" => TypeCheck::Double,
                    "IsBool" => TypeCheck::Bool,
                    "IsMap" => TypeCheck::Map,
                    _ => TypeCheck::List,
                };
                boxed(CBool::IsType(self.value(&args[0])?, kind))
            }
            "Split" => {
                arity(2)?;
                CVal::Split(
                    Box::new(self.value(&args[0])?),
                    string_lit(1, "the delimiter")?,
                )
            }
            "ParseJSON" => {
                arity(1)?;
                CVal::ParseJson(Box::new(self.value(&args[0])?))
            }
            "HasPrefix" | "HasSuffix" => {
                arity(2)?;
                let affix = string_lit(
                    1,
                    if name == "HasPrefix" {
                        "the prefix"
                    } else {
                        "the suffix"
                    },
                )?;
                boxed(CBool::Affix(
                    self.value(&args[0])?,
                    affix,
                    name == "HasPrefix",
                ))
            }
            "Concat" => {
                arity(2)?;
                let ValAst::List(items) = &args[0] else {
                    return Err(OttlError::Invalid(
                        "Concat: the first argument must be a list such as [a, b]".into(),
                    ));
                };
                let items = items
                    .iter()
                    .map(|i| self.value(i))
                    .collect::<Result<_, _>>()?;
                CVal::Concat(items, string_lit(1, "the delimiter")?)
            }
            _ if KNOWN_UNSUPPORTED.contains(&name) => {
                return Err(OttlError::Invalid(format!(
                    "function \"{name}\" is not supported by Weir's OTTL (supported: {})",
                    FUNCTIONS.join(", ")
                )))
            }
            _ if EDITORS.contains(&name) => {
                return Err(OttlError::Invalid(format!(
                    "\"{name}\" is an editor; filter conditions can only use converters"
                )))
            }
            _ => {
                return Err(OttlError::Invalid(with_hint(
                    format!("unknown function \"{name}\""),
                    name,
                    FUNCTIONS.iter().chain(KNOWN_UNSUPPORTED).copied(),
                )))
            }
        })
    }

    fn wrong_context(&self, name: &str, wanted: &str) -> OttlError {
        OttlError::Invalid(format!(
            "function \"{name}\" is only available in the {wanted} context, not in the {} context",
            self.ctx.name()
        ))
    }
}
