//! The metric target: matchers and `keep`.

use serde_json::Value as Json;

use super::common::*;
use super::ParseErrors;
use crate::proto::{self, metric_matcher};

fn metric_matcher(v: &Json, place: &str, errs: &mut ParseErrors) -> proto::MetricMatcher {
    use metric_matcher::Field;
    let Some(o) = obj(v, place, errs) else {
        return proto::MetricMatcher::default();
    };
    let selectors = [
        "metric_field",
        "datapoint_attribute",
        "resource_attribute",
        "scope_attribute",
        "metric_type",
        "aggregation_temporality",
    ];
    check_keys(o, &matcher_keys(&selectors), place, errs);
    let field = one_selector(
        o,
        &selectors,
        "",
        place,
        errs,
        |key, v, p, errs| match key {
            "metric_field" => Field::MetricField(parse_enum(
                v,
                "METRIC_FIELD_",
                |s| proto::MetricField::from_str_name(s).map(|e| e as i32),
                p,
                errs,
            )),
            "datapoint_attribute" => Field::DatapointAttribute(attribute_path(v, p, errs)),
            "resource_attribute" => Field::ResourceAttribute(attribute_path(v, p, errs)),
            "scope_attribute" => Field::ScopeAttribute(attribute_path(v, p, errs)),
            "metric_type" => Field::MetricType(parse_enum(
                v,
                "METRIC_TYPE_",
                |s| proto::MetricType::from_str_name(s).map(|e| e as i32),
                p,
                errs,
            )),
            _ => Field::AggregationTemporality(parse_enum(
                v,
                "AGGREGATION_TEMPORALITY_",
                |s| proto::AggregationTemporality::from_str_name(s).map(|e| e as i32),
                p,
                errs,
            )),
        },
    );
    let (negate, case_insensitive) = flags(o, place, errs);
    proto::MetricMatcher {
        field,
        r#match: match_into!(metric_matcher, match_kind(o, place, errs)),
        negate,
        case_insensitive,
    }
}

pub(super) fn metric_target(v: &Json, errs: &mut ParseErrors) -> proto::MetricTarget {
    let place = "metric: ";
    let Some(o) = obj(v, place, errs) else {
        return proto::MetricTarget::default();
    };
    check_keys(o, &["match", "keep"], place, errs);
    let matchers = matcher_list(o, "metric", errs, metric_matcher);
    let keep = match get(o, "keep") {
        None => {
            errs.push("metric: keep: required (true or false)".to_string());
            true
        }
        Some(Json::String(s)) if s.eq_ignore_ascii_case("all") => true,
        Some(Json::String(s)) if s.eq_ignore_ascii_case("none") => false,
        Some(k) => as_bool(k, "metric: keep: ", errs),
    };
    proto::MetricTarget {
        r#match: matchers,
        keep,
    }
}
