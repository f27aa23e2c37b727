//! The trace target: matchers and the sampling `keep`.

use serde_json::Value as Json;

use super::common::*;
use super::ParseErrors;
use crate::proto::{self, trace_matcher};

/// A span status name: the policy enum's names, and OpenTelemetry's own name for code 0
/// (`STATUS_CODE_UNSET` in the trace proto, `UNSET` in the SDKs), which policy authors write
/// for "status not set".
fn span_status_code(full: &str) -> Option<i32> {
    match full {
        "SPAN_STATUS_CODE_UNSET" | "SPAN_STATUS_CODE_STATUS_CODE_UNSET" => {
            Some(proto::SpanStatusCode::Unspecified as i32)
        }
        _ => proto::SpanStatusCode::from_str_name(full).map(|e| e as i32),
    }
}

fn trace_matcher(v: &Json, place: &str, errs: &mut ParseErrors) -> proto::TraceMatcher {
    use trace_matcher::Field;
    let Some(o) = obj(v, place, errs) else {
        return proto::TraceMatcher::default();
    };
    let selectors = [
        "trace_field",
        "span_attribute",
        "resource_attribute",
        "scope_attribute",
        "span_kind",
        "span_status",
        "event_name",
        "event_attribute",
        "link_trace_id",
    ];
    check_keys(o, &matcher_keys(&selectors), place, errs);
    let field = one_selector(
        o,
        &selectors,
        "",
        place,
        errs,
        |key, v, p, errs| match key {
            "trace_field" => Field::TraceField(parse_enum(
                v,
                "TRACE_FIELD_",
                |s| proto::TraceField::from_str_name(s).map(|e| e as i32),
                p,
                errs,
            )),
            "span_attribute" => Field::SpanAttribute(attribute_path(v, p, errs)),
            "resource_attribute" => Field::ResourceAttribute(attribute_path(v, p, errs)),
            "scope_attribute" => Field::ScopeAttribute(attribute_path(v, p, errs)),
            "span_kind" => Field::SpanKind(parse_enum(
                v,
                "SPAN_KIND_",
                |s| proto::SpanKind::from_str_name(s).map(|e| e as i32),
                p,
                errs,
            )),
            "span_status" => Field::SpanStatus(parse_enum(
                v,
                "SPAN_STATUS_CODE_",
                span_status_code,
                p,
                errs,
            )),
            "event_name" => Field::EventName(as_string(v, p, errs)),
            "event_attribute" => Field::EventAttribute(attribute_path(v, p, errs)),
            _ => Field::LinkTraceId(as_string(v, p, errs)),
        },
    );
    let (negate, case_insensitive) = flags(o, place, errs);
    proto::TraceMatcher {
        field,
        r#match: match_into!(trace_matcher, match_kind(o, place, errs)),
        negate,
        case_insensitive,
    }
}

pub(super) fn trace_target(v: &Json, errs: &mut ParseErrors) -> proto::TraceTarget {
    let place = "trace: ";
    let Some(o) = obj(v, place, errs) else {
        return proto::TraceTarget::default();
    };
    check_keys(o, &["match", "keep"], place, errs);
    let matchers = matcher_list(o, "trace", errs, trace_matcher);
    let keep = get(o, "keep").map(|k| sampling_config(k, errs));
    proto::TraceTarget {
        r#match: matchers,
        keep,
    }
}

fn sampling_config(v: &Json, errs: &mut ParseErrors) -> proto::TraceSamplingConfig {
    let place = "trace: keep: ";
    let mut out = proto::TraceSamplingConfig::default();
    // A bare percentage ("50%" or 50) is accepted as the percentage alone.
    match v {
        Json::Number(n) => {
            out.percentage = n.as_f64().unwrap_or(f64::NAN) as f32;
            return out;
        }
        Json::String(s) => {
            match s.trim().trim_end_matches('%').parse::<f32>() {
                Ok(p) => out.percentage = p,
                Err(_) => errs.push(format!("{place}invalid value {s:?}")),
            }
            return out;
        }
        _ => {}
    }
    let Some(o) = obj(v, place, errs) else {
        return out;
    };
    check_keys(
        o,
        &[
            "percentage",
            "mode",
            "sampling_precision",
            "hash_seed",
            "fail_closed",
        ],
        place,
        errs,
    );
    match get(o, "percentage").and_then(double_literal) {
        Some(p) => out.percentage = p as f32,
        None => errs.push(format!("{place}percentage: required number")),
    }
    out.mode = get(o, "mode").map(|m| {
        parse_enum(
            m,
            "SAMPLING_MODE_",
            |s| proto::SamplingMode::from_str_name(s).map(|e| e as i32),
            &format!("{place}mode: "),
            errs,
        )
    });
    out.sampling_precision = get(o, "sampling_precision").map(|p| {
        as_u64(p)
            .and_then(|x| u32::try_from(x).ok())
            .unwrap_or_else(|| {
                errs.push(format!("{place}sampling_precision: expected an integer"));
                0
            })
    });
    out.hash_seed = get(o, "hash_seed").map(|p| {
        as_u64(p)
            .and_then(|x| u32::try_from(x).ok())
            .unwrap_or_else(|| {
                errs.push(format!("{place}hash_seed: expected an unsigned integer"));
                0
            })
    });
    out.fail_closed = get(o, "fail_closed").map(|b| as_bool(b, place, errs));
    out
}
