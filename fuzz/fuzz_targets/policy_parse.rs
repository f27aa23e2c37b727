//! Arbitrary text through the policy document reader (YAML or JSON), the compiler and the
//! set builder, then the compiled set over one small batch of each signal. Nothing may
//! panic, and:
//! - a document that is not policies is an error naming the source;
//! - every policy read has an id (its position when it has none), and a policy that cannot
//!   be read has at least one non-empty error;
//! - a policy that reads either compiles or has errors, each naming its place in the policy
//!   (`log: ...`, `metric: ...`, `trace: ...`); its protobuf form (what policy sync sends)
//!   reads back to the same encoding and compiles the same way;
//! - in the set, policies are sorted by id, ids are unique, and invalid ones are inert;
//! - evaluating the set never adds items, and drops exactly as many as it reports.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use prost::Message;
use weir_api::{json, Batch, Signal};
use weir_policy_engine::compile::compile;
use weir_policy_engine::set::PolicySet;
use weir_policy_engine::stats::StatsRegistry;
use weir_policy_contract::parse::{parse_document, parse_protobuf_policy};

const SOURCE: &str = "fuzz.yaml";

const LOGS: &str = r#"{"resourceLogs":[{"resource":{"attributes":[
  {"key":"service.name","value":{"stringValue":"checkout"}}]},
 "scopeLogs":[{"scope":{"name":"app"},"logRecords":[
  {"severityNumber":9,"severityText":"INFO","body":{"stringValue":"GET /health 200"},
   "attributes":[{"key":"user_id","value":{"intValue":"200"}}],
   "traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174"},
  {"severityNumber":17,"severityText":"ERROR","body":{"stringValue":"card 4111111111111111 declined"},
   "attributes":[{"key":"http.status","value":{"intValue":"502"}},
                 {"key":"nested","value":{"kvlistValue":{"values":[{"key":"a","value":{"boolValue":true}}]}}}]},
  {"body":{"stringValue":"debug: cache miss"},"eventName":"cache"}]}]}]}"#;

const TRACES: &str = r#"{"resourceSpans":[{"resource":{"attributes":[
  {"key":"service.name","value":{"stringValue":"api"}}]},
 "scopeSpans":[{"scope":{"name":"http"},"spans":[
  {"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"GET /users",
   "kind":2,"traceState":"ot=th:8","status":{"code":2},
   "attributes":[{"key":"http.route","value":{"stringValue":"/users"}}],
   "events":[{"name":"exception"}]},
  {"traceId":"00000000000000000000000000000001","spanId":"0000000000000002","name":"db",
   "kind":3,"parentSpanId":"eee19b7ec3c1b174"}]}]}]}"#;

const METRICS: &str = r#"{"resourceMetrics":[{"resource":{"attributes":[
  {"key":"host.name","value":{"stringValue":"h1"}}]},
 "scopeMetrics":[{"scope":{"name":"m"},"metrics":[
  {"name":"http.requests","unit":"1","sum":{"aggregationTemporality":2,"isMonotonic":true,
   "dataPoints":[{"asInt":"5","attributes":[{"key":"route","value":{"stringValue":"/a"}}]},
                 {"asInt":"7"}]}},
  {"name":"cpu","gauge":{"dataPoints":[{"asDouble":0.5}]}},
  {"name":"latency","histogram":{"aggregationTemporality":1,
   "dataPoints":[{"count":"2","sum":3.0,"bucketCounts":["1","1"],"explicitBounds":[1.0]}]}}]}]}]}"#;

fn batches() -> &'static [Batch; 3] {
    static BATCHES: OnceLock<[Batch; 3]> = OnceLock::new();
    BATCHES.get_or_init(|| {
        let batch = |signal, text: &str| match json::decode(signal, text.as_bytes()) {
            Ok(p) => Batch::new(p),
            Err(e) => panic!("the fixed {signal} batch does not decode: {e}"),
        };
        [
            batch(Signal::Logs, LOGS),
            batch(Signal::Traces, TRACES),
            batch(Signal::Metrics, METRICS),
        ]
    })
}

fn named(error: &str) -> bool {
    ["log: ", "metric: ", "trace: "]
        .iter()
        .any(|p| error.starts_with(p))
        || error == "policy has no target"
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let policies = match parse_document(text, SOURCE) {
        Ok(p) => p,
        Err(e) => {
            let message = e.to_string();
            assert!(
                message.starts_with(&format!("{SOURCE}: ")),
                "document error without its source: {message}"
            );
            return;
        }
    };
    for parsed in &policies {
        assert!(!parsed.id.is_empty(), "a policy without a name: {parsed:?}");
        let policy = match &parsed.policy {
            Err(errors) => {
                assert!(
                    !errors.is_empty(),
                    "{}: unreadable without an error",
                    parsed.id
                );
                assert!(
                    errors.iter().all(|e| !e.is_empty()),
                    "{}: empty error",
                    parsed.id
                );
                continue;
            }
            Ok(p) => p,
        };
        let compiled = compile(policy);
        if let Err(errors) = &compiled {
            assert!(!errors.is_empty(), "{}: no compile error", parsed.id);
            for e in errors {
                assert!(named(e), "{}: error names no place: {e:?}", parsed.id);
            }
        }
        let wire = policy.encode_to_vec();
        let again = parse_protobuf_policy(&wire, SOURCE);
        let again = match again.policy {
            Ok(p) => p,
            Err(e) => panic!("{}: its protobuf form does not read back: {e:?}", parsed.id),
        };
        assert_eq!(
            again.encode_to_vec(),
            wire,
            "{}: protobuf round trip",
            parsed.id
        );
        assert_eq!(
            compile(&again).is_ok(),
            compiled.is_ok(),
            "{}: compiles differently from its protobuf form",
            parsed.id
        );
    }

    let count = policies.len();
    let set = PolicySet::build(policies, &StatsRegistry::new());
    assert!(set.entries.len() <= count);
    for pair in set.entries.windows(2) {
        assert!(pair[0].id < pair[1].id, "entries not sorted or duplicated");
    }
    for entry in &set.entries {
        if !entry.errors.is_empty() {
            assert!(!entry.active(), "{}: invalid yet active", entry.id);
        }
    }
    for batch in batches() {
        let mut batch = batch.clone();
        let before = batch.item_count();
        let outcome = weir_policy_engine::run::process(&set, &mut batch, false);
        assert!(outcome.dropped <= before, "dropped more than there was");
        assert_eq!(
            batch.item_count(),
            before - outcome.dropped,
            "{} items: reported {} dropped",
            batch.signal(),
            outcome.dropped
        );
    }
});
