//! The log target: matchers, `keep`, `sample_key` and the transform.

use serde_json::{Map, Value as Json};

use super::common::*;
use super::ParseErrors;
use crate::proto::{self, log_add, log_matcher, log_redact, log_remove, log_sample_key};

fn log_field(v: &Json, place: &str, errs: &mut ParseErrors) -> i32 {
    parse_enum(
        v,
        "LOG_FIELD_",
        |s| proto::LogField::from_str_name(s).map(|e| e as i32),
        place,
        errs,
    )
}

/// A log field selector as read, before it becomes one of the wire's selector enums (they
/// have the same four variants in each message).
enum LogSelector {
    Field(i32),
    Log(proto::AttributePath),
    Resource(proto::AttributePath),
    Scope(proto::AttributePath),
}

const LOG_SELECTORS: [&str; 4] = [
    "log_field",
    "log_attribute",
    "resource_attribute",
    "scope_attribute",
];

/// Reads the one log field selector under `prefix` (empty, or `from_` for rename).
fn log_selector(
    o: &Map<String, Json>,
    prefix: &str,
    place: &str,
    errs: &mut ParseErrors,
) -> Option<LogSelector> {
    one_selector(
        o,
        &LOG_SELECTORS,
        prefix,
        place,
        errs,
        |key, v, p, errs| match key {
            "log_field" => LogSelector::Field(log_field(v, p, errs)),
            "log_attribute" => LogSelector::Log(attribute_path(v, p, errs)),
            "resource_attribute" => LogSelector::Resource(attribute_path(v, p, errs)),
            _ => LogSelector::Scope(attribute_path(v, p, errs)),
        },
    )
}

/// A [`LogSelector`] as the `$m::Field` selector enum of one log message.
macro_rules! log_sel_into {
    ($m:ident, $sel:expr) => {
        $sel.map(|s| match s {
            LogSelector::Field(f) => $m::Field::LogField(f),
            LogSelector::Log(p) => $m::Field::LogAttribute(p),
            LogSelector::Resource(p) => $m::Field::ResourceAttribute(p),
            LogSelector::Scope(p) => $m::Field::ScopeAttribute(p),
        })
    };
}

fn log_matcher(v: &Json, place: &str, errs: &mut ParseErrors) -> proto::LogMatcher {
    let Some(o) = obj(v, place, errs) else {
        return proto::LogMatcher::default();
    };
    check_keys(o, &matcher_keys(&LOG_SELECTORS), place, errs);
    let (negate, case_insensitive) = flags(o, place, errs);
    proto::LogMatcher {
        field: log_sel_into!(log_matcher, log_selector(o, "", place, errs)),
        r#match: match_into!(log_matcher, match_kind(o, place, errs)),
        negate,
        case_insensitive,
    }
}

pub(super) fn log_target(v: &Json, errs: &mut ParseErrors) -> proto::LogTarget {
    let place = "log: ";
    let Some(o) = obj(v, place, errs) else {
        return proto::LogTarget::default();
    };
    check_keys(
        o,
        &["match", "keep", "transform", "sample_key"],
        place,
        errs,
    );
    let matchers = matcher_list(o, "log", errs, log_matcher);
    let keep = get(o, "keep")
        .map(|k| match k {
            Json::Null => String::new(),
            other => as_string(other, "log: keep: ", errs),
        })
        .unwrap_or_default();
    let sample_key = get(o, "sample_key").and_then(|k| {
        let p = "log: sample_key: ";
        let o = obj(k, p, errs)?;
        check_keys(o, &LOG_SELECTORS, p, errs);
        Some(proto::LogSampleKey {
            field: log_sel_into!(log_sample_key, log_selector(o, "", p, errs)),
        })
    });
    let transform = get(o, "transform").map(|t| log_transform(t, errs));
    proto::LogTarget {
        r#match: matchers,
        keep,
        transform,
        sample_key,
    }
}

fn log_transform(v: &Json, errs: &mut ParseErrors) -> proto::LogTransform {
    let place = "log: transform: ";
    let mut out = proto::LogTransform::default();
    let Some(o) = obj(v, place, errs) else {
        return out;
    };
    check_keys(o, &["remove", "redact", "rename", "add"], place, errs);
    let entries = |key: &str, errs: &mut ParseErrors| -> Vec<(String, Map<String, Json>)> {
        let Some(v) = get(o, key) else { return vec![] };
        list(v, &format!("{place}{key}: "), errs)
            .iter()
            .enumerate()
            .filter_map(|(i, e)| {
                let p = format!("{place}{key}[{i}]: ");
                obj(e, &p, errs).map(|m| (p, m.clone()))
            })
            .collect()
    };
    for (p, e) in entries("remove", errs) {
        check_keys(&e, &LOG_SELECTORS, &p, errs);
        out.remove.push(proto::LogRemove {
            field: log_sel_into!(log_remove, log_selector(&e, "", &p, errs)),
        });
    }
    for (p, e) in entries("redact", errs) {
        check_keys(
            &e,
            &known(&["replacement", "regex"], &LOG_SELECTORS),
            &p,
            errs,
        );
        out.redact.push(proto::LogRedact {
            field: log_sel_into!(log_redact, log_selector(&e, "", &p, errs)),
            // The YAML default of the specification; the wire cannot tell it from "".
            replacement: get(&e, "replacement")
                .map(|r| as_string(r, &p, errs))
                .unwrap_or_else(|| "[REDACTED]".to_string()),
            regex: get(&e, "regex").map(|r| as_string(r, &p, errs)),
        });
    }
    for (p, e) in entries("rename", errs) {
        check_keys(
            &e,
            &[
                "from_log_field",
                "from_log_attribute",
                "from_resource_attribute",
                "from_scope_attribute",
                "to",
                "upsert",
            ],
            &p,
            errs,
        );
        let from = log_selector(&e, "from_", &p, errs).map(|s| {
            use proto::log_rename::From;
            match s {
                LogSelector::Field(f) => From::FromLogField(f),
                LogSelector::Log(path) => From::FromLogAttribute(path),
                LogSelector::Resource(path) => From::FromResourceAttribute(path),
                LogSelector::Scope(path) => From::FromScopeAttribute(path),
            }
        });
        out.rename.push(proto::LogRename {
            from,
            to: get(&e, "to")
                .map(|t| as_string(t, &p, errs))
                .unwrap_or_default(),
            upsert: get(&e, "upsert").is_some_and(|u| as_bool(u, &p, errs)),
        });
    }
    for (p, e) in entries("add", errs) {
        check_keys(&e, &known(&["value", "upsert"], &LOG_SELECTORS), &p, errs);
        out.add.push(proto::LogAdd {
            field: log_sel_into!(log_add, log_selector(&e, "", &p, errs)),
            value: get(&e, "value")
                .map(|t| as_string(t, &p, errs))
                .unwrap_or_default(),
            upsert: get(&e, "upsert").is_some_and(|u| as_bool(u, &p, errs)),
        });
    }
    out
}
