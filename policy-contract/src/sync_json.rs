//! The JSON bodies of `POST /v1/policy/sync` (protobuf JSON mapping: proto field names are
//! accepted in snake_case and lowerCamelCase, enums as names or numbers, 64-bit integers as
//! strings or numbers). Policies are read by [`crate::parse`], so every shorthand works.

use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue};
use serde_json::{json, Map, Value as Json};

use crate::parse::parse_policy;
use crate::proto::{
    self, log_add, log_matcher, log_redact, log_remove, log_rename, log_sample_key, metric_matcher,
    numeric_value, trace_matcher, value,
};

/// A sync body that is not the expected JSON.
#[derive(Debug, thiserror::Error)]
#[error("invalid sync JSON: {0}")]
pub struct SyncJsonError(pub String);

fn get<'a>(o: &'a Map<String, Json>, snake: &str, camel: &str) -> Option<&'a Json> {
    o.get(snake).or_else(|| o.get(camel))
}

fn u64_of(v: Option<&Json>) -> u64 {
    match v {
        Some(Json::Number(n)) => n.as_u64().unwrap_or(0),
        Some(Json::String(s)) => s.parse().unwrap_or(0),
        _ => 0,
    }
}

fn i64_of(v: Option<&Json>) -> i64 {
    match v {
        Some(Json::Number(n)) => n.as_i64().unwrap_or(0),
        Some(Json::String(s)) => s.parse().unwrap_or(0),
        _ => 0,
    }
}

fn str_of(v: Option<&Json>) -> String {
    v.and_then(Json::as_str).unwrap_or_default().to_string()
}

fn kvs(list: &[KeyValue]) -> Json {
    Json::Array(
        list.iter()
            .map(|kv| {
                let v = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                    Some(any_value::Value::StringValue(s)) => json!({ "stringValue": s }),
                    Some(any_value::Value::BoolValue(b)) => json!({ "boolValue": b }),
                    Some(any_value::Value::IntValue(i)) => json!({ "intValue": i.to_string() }),
                    Some(any_value::Value::DoubleValue(d)) => json!({ "doubleValue": d }),
                    _ => json!({}),
                };
                json!({ "key": kv.key, "value": v })
            })
            .collect(),
    )
}

fn kvs_from(v: Option<&Json>) -> Vec<KeyValue> {
    let Some(Json::Array(a)) = v else {
        return vec![];
    };
    a.iter()
        .filter_map(|e| {
            let o = e.as_object()?;
            let value = o.get("value").and_then(Json::as_object).and_then(|v| {
                let s = get(v, "string_value", "stringValue")?.as_str()?.to_string();
                Some(opentelemetry_proto::tonic::common::v1::AnyValue {
                    value: Some(any_value::Value::StringValue(s)),
                })
            });
            Some(KeyValue {
                key: str_of(o.get("key")),
                value,
                ..Default::default()
            })
        })
        .collect()
}

/// Encodes a sync request.
pub fn encode_request(r: &proto::SyncRequest) -> Vec<u8> {
    let md = r.client_metadata.as_ref().map(|m| {
        json!({
            "supportedPolicyStages": m.supported_policy_stages.iter().map(|s| {
                proto::PolicyStage::try_from(*s).map_or("POLICY_STAGE_UNSPECIFIED", |e| e.as_str_name())
            }).collect::<Vec<_>>(),
            "labels": kvs(&m.labels),
            "resourceAttributes": kvs(&m.resource_attributes),
        })
    });
    let statuses: Vec<Json> = r
        .policy_statuses
        .iter()
        .map(|s| {
            let stage = |t: &Option<proto::TransformStageStatus>| {
                t.as_ref()
                    .map(|t| json!({"hits": t.hits.to_string(), "misses": t.misses.to_string()}))
            };
            json!({
                "id": s.id,
                "matchHits": s.match_hits.to_string(),
                "matchMisses": s.match_misses.to_string(),
                "errors": s.errors,
                "remove": stage(&s.remove),
                "redact": stage(&s.redact),
                "rename": stage(&s.rename),
                "add": stage(&s.add),
            })
        })
        .collect();
    let body = json!({
        "clientMetadata": md,
        "fullSync": r.full_sync,
        "lastSyncTimestampUnixNano": r.last_sync_timestamp_unix_nano.to_string(),
        "lastSuccessfulHash": r.last_successful_hash,
        "policyStatuses": statuses,
    });
    body.to_string().into_bytes()
}

/// Decodes a sync request.
pub fn decode_request(body: &[u8]) -> Result<proto::SyncRequest, SyncJsonError> {
    let v: Json = serde_json::from_slice(body).map_err(|e| SyncJsonError(e.to_string()))?;
    let o = v
        .as_object()
        .ok_or_else(|| SyncJsonError("expected an object".into()))?;
    let client_metadata = get(o, "client_metadata", "clientMetadata")
        .and_then(Json::as_object)
        .map(|m| proto::ClientMetadata {
            supported_policy_stages: match get(
                m,
                "supported_policy_stages",
                "supportedPolicyStages",
            ) {
                Some(Json::Array(a)) => a
                    .iter()
                    .map(|s| match s {
                        Json::String(n) => {
                            proto::PolicyStage::from_str_name(n).map_or(0, |e| e as i32)
                        }
                        other => i64_of(Some(other)) as i32,
                    })
                    .collect(),
                _ => vec![],
            },
            labels: kvs_from(m.get("labels")),
            resource_attributes: kvs_from(get(m, "resource_attributes", "resourceAttributes")),
            supported_extensions: vec![],
        });
    let policy_statuses = match get(o, "policy_statuses", "policyStatuses") {
        Some(Json::Array(a)) => a
            .iter()
            .filter_map(Json::as_object)
            .map(|s| {
                let stage = |k: &str| {
                    s.get(k)
                        .and_then(Json::as_object)
                        .map(|t| proto::TransformStageStatus {
                            hits: i64_of(t.get("hits")),
                            misses: i64_of(t.get("misses")),
                        })
                };
                proto::PolicySyncStatus {
                    id: str_of(s.get("id")),
                    match_hits: i64_of(get(s, "match_hits", "matchHits")),
                    match_misses: i64_of(get(s, "match_misses", "matchMisses")),
                    errors: match s.get("errors") {
                        Some(Json::Array(e)) => e
                            .iter()
                            .filter_map(|x| x.as_str().map(str::to_string))
                            .collect(),
                        _ => vec![],
                    },
                    remove: stage("remove"),
                    redact: stage("redact"),
                    rename: stage("rename"),
                    add: stage("add"),
                }
            })
            .collect(),
        _ => vec![],
    };
    Ok(proto::SyncRequest {
        client_metadata,
        full_sync: get(o, "full_sync", "fullSync")
            .and_then(Json::as_bool)
            .unwrap_or(false),
        last_sync_timestamp_unix_nano: u64_of(get(
            o,
            "last_sync_timestamp_unix_nano",
            "lastSyncTimestampUnixNano",
        )),
        last_successful_hash: str_of(get(o, "last_successful_hash", "lastSuccessfulHash")),
        policy_statuses,
    })
}

/// Decodes a sync response. A policy that does not parse is an error of the whole response
/// (a control plane must not send what it cannot describe), so the policies in force stay.
pub fn decode_response(body: &[u8]) -> Result<proto::SyncResponse, SyncJsonError> {
    let v: Json = serde_json::from_slice(body).map_err(|e| SyncJsonError(e.to_string()))?;
    let o = v
        .as_object()
        .ok_or_else(|| SyncJsonError("expected an object".into()))?;
    let mut policies = vec![];
    if let Some(Json::Array(a)) = o.get("policies") {
        for (i, p) in a.iter().enumerate() {
            let parsed = parse_policy(p, &format!("policies[{i}]"));
            match parsed.policy {
                Ok(p) => policies.push(p),
                Err(e) => {
                    return Err(SyncJsonError(format!(
                        "policies[{i}] ({}): {}",
                        parsed.id,
                        e.join("; ")
                    )))
                }
            }
        }
    }
    let sync_type = match get(o, "sync_type", "syncType") {
        Some(Json::String(s)) => proto::SyncType::from_str_name(s).map_or(0, |e| e as i32),
        other => i64_of(other) as i32,
    };
    Ok(proto::SyncResponse {
        policies,
        hash: str_of(o.get("hash")),
        sync_timestamp_unix_nano: u64_of(get(
            o,
            "sync_timestamp_unix_nano",
            "syncTimestampUnixNano",
        )),
        recommended_sync_interval_seconds: u64_of(get(
            o,
            "recommended_sync_interval_seconds",
            "recommendedSyncIntervalSeconds",
        )) as u32,
        sync_type,
        error_message: str_of(get(o, "error_message", "errorMessage")),
        extension_configs: vec![],
    })
}

fn path(p: &proto::AttributePath) -> Json {
    json!({ "path": p.path })
}

fn enum_name(n: Option<&'static str>) -> Json {
    n.map_or(Json::Null, |s| Json::String(s.to_string()))
}

fn match_json<M>(o: &mut Map<String, Json>, m: Option<M>, negate: bool, ci: bool)
where
    M: Into<Match>,
{
    if let Some(m) = m {
        let (k, v) = m.into().json();
        o.insert(k.to_string(), v);
    }
    if negate {
        o.insert("negate".into(), Json::Bool(true));
    }
    if ci {
        o.insert("case_insensitive".into(), Json::Bool(true));
    }
}

/// The match-type part of any matcher, for encoding.
pub struct Match(&'static str, Json);

impl Match {
    fn json(self) -> (&'static str, Json) {
        (self.0, self.1)
    }
}

fn value_json(v: &proto::Value) -> Json {
    match &v.value {
        Some(value::Value::BoolValue(b)) => json!({ "bool_value": b }),
        Some(value::Value::IntValue(i)) => json!({ "int_value": i.to_string() }),
        Some(value::Value::DoubleValue(d)) => json!({ "double_value": d }),
        Some(value::Value::BytesValue(b)) => {
            use base64::Engine as _;
            json!({ "bytes_value": base64::engine::general_purpose::STANDARD.encode(b) })
        }
        Some(value::Value::HexValue(h)) => json!({ "hex_value": h }),
        Some(value::Value::StringValue(s)) => json!({ "string_value": s }),
        None => json!({}),
    }
}

fn numeric_json(v: &proto::NumericValue) -> Json {
    match v.value {
        Some(numeric_value::Value::IntValue(i)) => json!({ "int_value": i.to_string() }),
        Some(numeric_value::Value::DoubleValue(d)) => json!({ "double_value": d }),
        None => json!({}),
    }
}

macro_rules! match_from {
    ($m:ident) => {
        impl From<&$m::Match> for Match {
            fn from(m: &$m::Match) -> Match {
                match m {
                    $m::Match::Exact(s) => Match("exact", json!(s)),
                    $m::Match::Regex(s) => Match("regex", json!(s)),
                    $m::Match::Exists(b) => Match("exists", json!(b)),
                    $m::Match::StartsWith(s) => Match("starts_with", json!(s)),
                    $m::Match::EndsWith(s) => Match("ends_with", json!(s)),
                    $m::Match::Contains(s) => Match("contains", json!(s)),
                    $m::Match::Equals(v) => Match("equals", value_json(v)),
                    $m::Match::Gt(v) => Match("gt", numeric_json(v)),
                    $m::Match::Gte(v) => Match("gte", numeric_json(v)),
                    $m::Match::Lt(v) => Match("lt", numeric_json(v)),
                    $m::Match::Lte(v) => Match("lte", numeric_json(v)),
                }
            }
        }
    };
}
match_from!(log_matcher);
match_from!(metric_matcher);
match_from!(trace_matcher);

fn log_field_name(f: i32) -> Json {
    enum_name(proto::LogField::try_from(f).ok().map(|e| e.as_str_name()))
}

macro_rules! log_sel {
    ($m:ident, $o:expr, $f:expr, $prefix:expr) => {
        match $f {
            Some($m::Field::LogField(f)) => {
                $o.insert(format!("{}log_field", $prefix), log_field_name(*f));
            }
            Some($m::Field::LogAttribute(p)) => {
                $o.insert(format!("{}log_attribute", $prefix), path(p));
            }
            Some($m::Field::ResourceAttribute(p)) => {
                $o.insert(format!("{}resource_attribute", $prefix), path(p));
            }
            Some($m::Field::ScopeAttribute(p)) => {
                $o.insert(format!("{}scope_attribute", $prefix), path(p));
            }
            None => {}
        }
    };
}

fn log_json(l: &proto::LogTarget) -> Json {
    let matchers: Vec<Json> = l
        .r#match
        .iter()
        .map(|m| {
            let mut o = Map::new();
            log_sel!(log_matcher, o, &m.field, "");
            match_json(&mut o, m.r#match.as_ref(), m.negate, m.case_insensitive);
            Json::Object(o)
        })
        .collect();
    let mut out = Map::new();
    out.insert("match".into(), Json::Array(matchers));
    out.insert("keep".into(), json!(l.keep));
    if let Some(k) = &l.sample_key {
        let mut o = Map::new();
        log_sel!(log_sample_key, o, &k.field, "");
        out.insert("sample_key".into(), Json::Object(o));
    }
    if let Some(t) = &l.transform {
        let remove: Vec<Json> = t
            .remove
            .iter()
            .map(|r| {
                let mut o = Map::new();
                log_sel!(log_remove, o, &r.field, "");
                Json::Object(o)
            })
            .collect();
        let redact: Vec<Json> = t
            .redact
            .iter()
            .map(|r| {
                let mut o = Map::new();
                log_sel!(log_redact, o, &r.field, "");
                o.insert("replacement".into(), json!(r.replacement));
                if let Some(re) = &r.regex {
                    o.insert("regex".into(), json!(re));
                }
                Json::Object(o)
            })
            .collect();
        let rename: Vec<Json> = t
            .rename
            .iter()
            .map(|r| {
                let mut o = Map::new();
                match &r.from {
                    Some(log_rename::From::FromLogField(f)) => {
                        o.insert("from_log_field".into(), log_field_name(*f));
                    }
                    Some(log_rename::From::FromLogAttribute(p)) => {
                        o.insert("from_log_attribute".into(), path(p));
                    }
                    Some(log_rename::From::FromResourceAttribute(p)) => {
                        o.insert("from_resource_attribute".into(), path(p));
                    }
                    Some(log_rename::From::FromScopeAttribute(p)) => {
                        o.insert("from_scope_attribute".into(), path(p));
                    }
                    None => {}
                }
                o.insert("to".into(), json!(r.to));
                o.insert("upsert".into(), json!(r.upsert));
                Json::Object(o)
            })
            .collect();
        let add: Vec<Json> = t
            .add
            .iter()
            .map(|a| {
                let mut o = Map::new();
                log_sel!(log_add, o, &a.field, "");
                o.insert("value".into(), json!(a.value));
                o.insert("upsert".into(), json!(a.upsert));
                Json::Object(o)
            })
            .collect();
        out.insert(
            "transform".into(),
            json!({"remove": remove, "redact": redact, "rename": rename, "add": add}),
        );
    }
    Json::Object(out)
}

fn metric_json(m: &proto::MetricTarget) -> Json {
    use metric_matcher::Field as F;
    let matchers: Vec<Json> = m
        .r#match
        .iter()
        .map(|x| {
            let mut o = Map::new();
            match &x.field {
                Some(F::MetricField(f)) => {
                    o.insert(
                        "metric_field".into(),
                        enum_name(
                            proto::MetricField::try_from(*f)
                                .ok()
                                .map(|e| e.as_str_name()),
                        ),
                    );
                }
                Some(F::DatapointAttribute(p)) => {
                    o.insert("datapoint_attribute".into(), path(p));
                }
                Some(F::ResourceAttribute(p)) => {
                    o.insert("resource_attribute".into(), path(p));
                }
                Some(F::ScopeAttribute(p)) => {
                    o.insert("scope_attribute".into(), path(p));
                }
                Some(F::MetricType(t)) => {
                    o.insert(
                        "metric_type".into(),
                        enum_name(
                            proto::MetricType::try_from(*t)
                                .ok()
                                .map(|e| e.as_str_name()),
                        ),
                    );
                }
                Some(F::AggregationTemporality(t)) => {
                    o.insert(
                        "aggregation_temporality".into(),
                        enum_name(
                            proto::AggregationTemporality::try_from(*t)
                                .ok()
                                .map(|e| e.as_str_name()),
                        ),
                    );
                }
                None => {}
            }
            match_json(&mut o, x.r#match.as_ref(), x.negate, x.case_insensitive);
            Json::Object(o)
        })
        .collect();
    json!({ "match": matchers, "keep": m.keep })
}

fn trace_json(t: &proto::TraceTarget) -> Json {
    use trace_matcher::Field as F;
    let matchers: Vec<Json> = t
        .r#match
        .iter()
        .map(|x| {
            let mut o = Map::new();
            let (k, v) = match &x.field {
                Some(F::TraceField(f)) => (
                    "trace_field",
                    enum_name(
                        proto::TraceField::try_from(*f)
                            .ok()
                            .map(|e| e.as_str_name()),
                    ),
                ),
                Some(F::SpanAttribute(p)) => ("span_attribute", path(p)),
                Some(F::ResourceAttribute(p)) => ("resource_attribute", path(p)),
                Some(F::ScopeAttribute(p)) => ("scope_attribute", path(p)),
                Some(F::SpanKind(k)) => (
                    "span_kind",
                    enum_name(proto::SpanKind::try_from(*k).ok().map(|e| e.as_str_name())),
                ),
                Some(F::SpanStatus(s)) => (
                    "span_status",
                    enum_name(
                        proto::SpanStatusCode::try_from(*s)
                            .ok()
                            .map(|e| e.as_str_name()),
                    ),
                ),
                Some(F::EventName(n)) => ("event_name", json!(n)),
                Some(F::EventAttribute(p)) => ("event_attribute", path(p)),
                Some(F::LinkTraceId(h)) => ("link_trace_id", json!(h)),
                None => ("", Json::Null),
            };
            if !k.is_empty() {
                o.insert(k.into(), v);
            }
            match_json(&mut o, x.r#match.as_ref(), x.negate, x.case_insensitive);
            Json::Object(o)
        })
        .collect();
    let keep = t.keep.as_ref().map(|k| {
        let mut o = Map::new();
        o.insert("percentage".into(), json!(k.percentage));
        if let Some(m) = k.mode {
            o.insert(
                "mode".into(),
                enum_name(
                    proto::SamplingMode::try_from(m)
                        .ok()
                        .map(|e| e.as_str_name()),
                ),
            );
        }
        if let Some(p) = k.sampling_precision {
            o.insert("sampling_precision".into(), json!(p));
        }
        if let Some(s) = k.hash_seed {
            o.insert("hash_seed".into(), json!(s));
        }
        if let Some(f) = k.fail_closed {
            o.insert("fail_closed".into(), json!(f));
        }
        Json::Object(o)
    });
    json!({ "match": matchers, "keep": keep })
}

/// A policy in the JSON form [`crate::parse`] reads (and protobuf JSON parsers accept).
pub fn policy_json(p: &proto::Policy) -> Json {
    let mut o = Map::new();
    o.insert("id".into(), json!(p.id));
    o.insert("name".into(), json!(p.name));
    if !p.description.is_empty() {
        o.insert("description".into(), json!(p.description));
    }
    o.insert("enabled".into(), json!(p.enabled));
    if !p.labels.is_empty() {
        o.insert("labels".into(), kvs(&p.labels));
    }
    match &p.target {
        Some(proto::policy::Target::Log(l)) => {
            o.insert("log".into(), log_json(l));
        }
        Some(proto::policy::Target::Metric(m)) => {
            o.insert("metric".into(), metric_json(m));
        }
        Some(proto::policy::Target::Trace(t)) => {
            o.insert("trace".into(), trace_json(t));
        }
        None => {}
    }
    Json::Object(o)
}

/// Encodes a sync response.
pub fn encode_response(r: &proto::SyncResponse) -> Vec<u8> {
    json!({
        "policies": r.policies.iter().map(policy_json).collect::<Vec<_>>(),
        "hash": r.hash,
        "syncTimestampUnixNano": r.sync_timestamp_unix_nano.to_string(),
        "recommendedSyncIntervalSeconds": r.recommended_sync_interval_seconds,
        "syncType": proto::SyncType::try_from(r.sync_type).map_or("SYNC_TYPE_UNSPECIFIED", |e| e.as_str_name()),
        "errorMessage": r.error_message,
    })
    .to_string()
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{parse_document, parse_protobuf_policy};
    use prost::Message;

    const DOC: &str = r#"
policies:
  - id: scrub
    name: Scrub
    labels: {team: core}
    log:
      match:
        - {log_attribute: [http, status], gte: 500}
        - {resource_attribute: service.name, equals: api, case_insensitive: true}
        - {log_field: body, regex: "token=", negate: true}
      keep: 25%
      sample_key: {log_field: trace_id}
      transform:
        remove: [{log_attribute: tmp}]
        redact: [{log_field: body, regex: "t=(\\w+)", replacement: "t=$1"}]
        rename: [{from_scope_attribute: a, to: b, upsert: true}]
        add: [{resource_attribute: [x, y], value: "1"}]
  - id: m
    name: M
    enabled: false
    metric:
      match: [{metric_type: histogram}, {aggregation_temporality: delta, negate: true}, {datapoint_attribute: k, equals: {hex_value: "0aff"}}]
      keep: false
  - id: t
    name: T
    trace:
      match: [{span_kind: server}, {event_name: exception}, {link_trace_id: "00ff"}, {trace_field: name, lt: 3.5}]
      keep: {percentage: 12.5, mode: equalizing, sampling_precision: 6, hash_seed: 7, fail_closed: false}
"#;

    #[test]
    fn json_and_protobuf_round_trips_keep_every_field() {
        let policies: Vec<proto::Policy> = parse_document(DOC, "t")
            .unwrap()
            .into_iter()
            .map(|p| p.policy.unwrap())
            .collect();
        let resp = proto::SyncResponse {
            policies: policies.clone(),
            hash: "h1".into(),
            sync_type: proto::SyncType::Full as i32,
            recommended_sync_interval_seconds: 9,
            ..Default::default()
        };
        let back = decode_response(&encode_response(&resp)).unwrap();
        assert_eq!(back, resp);
        for p in &policies {
            let bytes = p.encode_to_vec();
            assert_eq!(parse_protobuf_policy(&bytes, "x").policy.unwrap(), *p);
        }
        assert!(decode_response(b"{\"policies\": [{\"id\": \"x\"}]}").is_err());
    }
}
