//! Resolves parsed conditions against an OTTL context: paths to fields, converters to
//! their implementations, enums to numbers. Everything is checked here, once, so that
//! evaluation never meets an unknown name.

use std::borrow::Cow;

use regex::Regex;

use super::eval::{CBool, CVal, Case, Condition, Field, TypeCheck};
use super::parser::{parse_condition, BoolAst, Literal, PathAst, ValAst};
use super::value::Val;
use super::{with_hint, OttlError};

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

const FIELDS: &[(Ctx, &str, Field, bool)] = &[
    (Ctx::Resource, "attributes", Field::ResourceAttributes, true),
    (
        Ctx::Resource,
        "dropped_attributes_count",
        Field::ResourceDroppedAttributesCount,
        false,
    ),
    (Ctx::Scope, "name", Field::ScopeName, false),
    (Ctx::Scope, "version", Field::ScopeVersion, false),
    (Ctx::Scope, "attributes", Field::ScopeAttributes, true),
    (
        Ctx::Scope,
        "dropped_attributes_count",
        Field::ScopeDroppedAttributesCount,
        false,
    ),
    (Ctx::Log, "body", Field::LogBody, true),
    (Ctx::Log, "body.string", Field::LogBodyString, false),
    (Ctx::Log, "attributes", Field::LogAttributes, true),
    (Ctx::Log, "severity_number", Field::LogSeverityNumber, false),
    (Ctx::Log, "severity_text", Field::LogSeverityText, false),
    (Ctx::Log, "time_unix_nano", Field::LogTime, false),
    (
        Ctx::Log,
        "observed_time_unix_nano",
        Field::LogObservedTime,
        false,
    ),
    (Ctx::Log, "trace_id", Field::LogTraceId, false),
    (Ctx::Log, "trace_id.string", Field::LogTraceIdString, false),
    (Ctx::Log, "span_id", Field::LogSpanId, false),
    (Ctx::Log, "span_id.string", Field::LogSpanIdString, false),
    (Ctx::Log, "flags", Field::LogFlags, false),
    (
        Ctx::Log,
        "dropped_attributes_count",
        Field::LogDroppedAttributesCount,
        false,
    ),
    (Ctx::Log, "event_name", Field::LogEventName, false),
    (Ctx::Span, "name", Field::SpanName, false),
    (Ctx::Span, "kind", Field::SpanKind, false),
    (Ctx::Span, "kind.string", Field::SpanKindString, false),
    (Ctx::Span, "status.code", Field::SpanStatusCode, false),
    (Ctx::Span, "status.message", Field::SpanStatusMessage, false),
    (Ctx::Span, "attributes", Field::SpanAttributes, true),
    (Ctx::Span, "trace_id", Field::SpanTraceId, false),
    (
        Ctx::Span,
        "trace_id.string",
        Field::SpanTraceIdString,
        false,
    ),
    (Ctx::Span, "span_id", Field::SpanSpanId, false),
    (Ctx::Span, "span_id.string", Field::SpanSpanIdString, false),
    (Ctx::Span, "parent_span_id", Field::SpanParentSpanId, false),
    (
        Ctx::Span,
        "parent_span_id.string",
        Field::SpanParentSpanIdString,
        false,
    ),
    (Ctx::Span, "trace_state", Field::SpanTraceState, false),
    (Ctx::Span, "start_time_unix_nano", Field::SpanStart, false),
    (Ctx::Span, "end_time_unix_nano", Field::SpanEnd, false),
    (Ctx::Span, "flags", Field::SpanFlags, false),
    (
        Ctx::Span,
        "dropped_attributes_count",
        Field::SpanDroppedAttributesCount,
        false,
    ),
    (
        Ctx::Span,
        "dropped_events_count",
        Field::SpanDroppedEventsCount,
        false,
    ),
    (
        Ctx::Span,
        "dropped_links_count",
        Field::SpanDroppedLinksCount,
        false,
    ),
    (Ctx::SpanEvent, "name", Field::EventName, false),
    (Ctx::SpanEvent, "attributes", Field::EventAttributes, true),
    (Ctx::SpanEvent, "time_unix_nano", Field::EventTime, false),
    (
        Ctx::SpanEvent,
        "dropped_attributes_count",
        Field::EventDroppedAttributesCount,
        false,
    ),
    (Ctx::Metric, "name", Field::MetricName, false),
    (Ctx::Metric, "description", Field::MetricDescription, false),
    (Ctx::Metric, "unit", Field::MetricUnit, false),
    (Ctx::Metric, "type", Field::MetricType, false),
    (
        Ctx::Metric,
        "aggregation_temporality",
        Field::MetricAggregationTemporality,
        false,
    ),
    (Ctx::Metric, "is_monotonic", Field::MetricIsMonotonic, false),
    (Ctx::DataPoint, "attributes", Field::PointAttributes, true),
    (Ctx::DataPoint, "value_int", Field::PointValueInt, false),
    (
        Ctx::DataPoint,
        "value_double",
        Field::PointValueDouble,
        false,
    ),
    (
        Ctx::DataPoint,
        "start_time_unix_nano",
        Field::PointStart,
        false,
    ),
    (Ctx::DataPoint, "time_unix_nano", Field::PointTime, false),
    (Ctx::DataPoint, "flags", Field::PointFlags, false),
    (Ctx::DataPoint, "count", Field::PointCount, false),
    (Ctx::DataPoint, "sum", Field::PointSum, false),
];

const ENUMS: &[(&str, i64)] = &[
    ("SEVERITY_NUMBER_UNSPECIFIED", 0),
    ("SEVERITY_NUMBER_TRACE", 1),
    ("SEVERITY_NUMBER_TRACE2", 2),
    ("SEVERITY_NUMBER_TRACE3", 3),
    ("SEVERITY_NUMBER_TRACE4", 4),
    ("SEVERITY_NUMBER_DEBUG", 5),
    ("SEVERITY_NUMBER_DEBUG2", 6),
    ("SEVERITY_NUMBER_DEBUG3", 7),
    ("SEVERITY_NUMBER_DEBUG4", 8),
    ("SEVERITY_NUMBER_INFO", 9),
    ("SEVERITY_NUMBER_INFO2", 10),
    ("SEVERITY_NUMBER_INFO3", 11),
    ("SEVERITY_NUMBER_INFO4", 12),
    ("SEVERITY_NUMBER_WARN", 13),
    ("SEVERITY_NUMBER_WARN2", 14),
    ("SEVERITY_NUMBER_WARN3", 15),
    ("SEVERITY_NUMBER_WARN4", 16),
    ("SEVERITY_NUMBER_ERROR", 17),
    ("SEVERITY_NUMBER_ERROR2", 18),
    ("SEVERITY_NUMBER_ERROR3", 19),
    ("SEVERITY_NUMBER_ERROR4", 20),
    ("SEVERITY_NUMBER_FATAL", 21),
    ("SEVERITY_NUMBER_FATAL2", 22),
    ("SEVERITY_NUMBER_FATAL3", 23),
    ("SEVERITY_NUMBER_FATAL4", 24),
    ("SPAN_KIND_UNSPECIFIED", 0),
    ("SPAN_KIND_INTERNAL", 1),
    ("SPAN_KIND_SERVER", 2),
    ("SPAN_KIND_CLIENT", 3),
    ("SPAN_KIND_PRODUCER", 4),
    ("SPAN_KIND_CONSUMER", 5),
    ("STATUS_CODE_UNSET", 0),
    ("STATUS_CODE_OK", 1),
    ("STATUS_CODE_ERROR", 2),
    ("METRIC_DATA_TYPE_NONE", 0),
    ("METRIC_DATA_TYPE_GAUGE", 1),
    ("METRIC_DATA_TYPE_SUM", 2),
    ("METRIC_DATA_TYPE_HISTOGRAM", 3),
    ("METRIC_DATA_TYPE_EXPONENTIAL_HISTOGRAM", 4),
    ("METRIC_DATA_TYPE_SUMMARY", 5),
    ("AGGREGATION_TEMPORALITY_UNSPECIFIED", 0),
    ("AGGREGATION_TEMPORALITY_DELTA", 1),
    ("AGGREGATION_TEMPORALITY_CUMULATIVE", 2),
];

/// Converters this evaluator implements.
pub const FUNCTIONS: &[&str] = &[
    "IsMatch",
    "IsRootSpan",
    "HasAttrKeyOnDatapoint",
    "HasAttrOnDatapoint",
    "Len",
    "Concat",
    "String",
    "Int",
    "Double",
    "ConvertCase",
    "ToLowerCase",
    "ToUpperCase",
    "SHA256",
    "Substring",
    "HasPrefix",
    "HasSuffix",
    "IsString",
    "IsInt",
    "IsDouble",
    "IsBool",
    "IsMap",
    "IsList",
    "Split",
    "ParseJSON",
];

// OTTL converters that exist in the collector but not here: named so the error says
// "not supported" rather than "unknown".
const KNOWN_UNSUPPORTED: &[&str] = &[
    "Base64Decode",
    "Contains",
    "Day",
    "Duration",
    "ExtractPatterns",
    "FNV",
    "Format",
    "FormatTime",
    "GetXML",
    "Hex",
    "Hour",
    "Index",
    "IsValidLuhn",
    "Keys",
    "Log",
    "MD5",
    "Month",
    "Murmur3Hash",
    "Nanosecond",
    "Now",
    "ParseCSV",
    "ParseKeyValue",
    "ParseSimplifiedXML",
    "ParseXML",
    "SHA1",
    "SHA512",
    "SliceToMap",
    "Sort",
    "SpanID",
    "Time",
    "ToKeyValueString",
    "TraceID",
    "TruncateTime",
    "URL",
    "UUID",
    "Unix",
    "UnixMicro",
    "UnixMilli",
    "UnixNano",
    "UnixSeconds",
    "UserAgent",
    "Values",
    "Weekday",
    "Year",
];

const EDITORS: &[&str] = &[
    "set",
    "delete_key",
    "delete_matching_keys",
    "keep_keys",
    "keep_matching_keys",
    "truncate_all",
    "limit",
    "replace_pattern",
    "replace_all_patterns",
    "replace_match",
    "replace_all_matches",
    "merge_maps",
    "flatten",
    "append",
    "route",
];

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
    st: &super::parser::StatementAst,
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
