//! Advice an SRE can accept unreviewed: real OTLP batches summarised by the metadata
//! processor's accumulator, merged into a real SQLite catalog, and the findings checked
//! against the safety rule, the dry-run and the savings ledger with exact numbers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use prost::Message;
use weir_api::fixtures::kv;
use weir_api::otlp::collector::logs::v1::ExportLogsServiceRequest;
use weir_api::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use weir_api::otlp::common::v1::{any_value, AnyValue, KeyValue};
use weir_api::otlp::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use weir_api::otlp::metrics::v1::{
    metric, number_data_point, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics,
};
use weir_api::otlp::resource::v1::Resource;
use weir_api::{Batch, Payload};
use weir_catalog::analysis::{Finding, WasteKind};
use weir_catalog::control::ControlPlane;
use weir_catalog::store::EdgeInfo;
use weir_summary::extract::{Accumulator, Limits};

const T0: u64 = 1_700_000_000_000_000_000;
const SEC: u64 = 1_000_000_000;
/// Every service's records span exactly one hour (the projection window).
const HOUR: u64 = 3600 * SEC;

fn sv(v: &str) -> Option<AnyValue> {
    Some(AnyValue {
        value: Some(any_value::Value::StringValue(v.into())),
    })
}

fn rec(t: u64, num: i32, text: &str, body: &str, attrs: Vec<KeyValue>) -> LogRecord {
    LogRecord {
        time_unix_nano: t,
        severity_number: num,
        severity_text: text.into(),
        body: sv(body),
        attributes: attrs,
        ..Default::default()
    }
}

fn logs(service: &str, records: Vec<LogRecord>) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![kv("service.name", service)],
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// `api`: the planted waste. Record counts are exact; every record's time is within the hour.
fn api_records() -> Vec<LogRecord> {
    let mut r = Vec::new();
    let at = |i: u64, n: u64| T0 + i * (HOUR / n);
    // 600 INFO request lines (varied), the bulk.
    for i in 0..600 {
        r.push(rec(
            at(i, 600),
            9,
            "INFO",
            &format!("request {i} served in {} ms", i % 97),
            vec![kv("http.route", "/items")],
        ));
    }
    // 300 INFO health checks, and 50 ERROR health-check failures.
    for i in 0..300 {
        r.push(rec(at(i, 300), 9, "INFO", "readiness probe ok", vec![]));
    }
    for i in 0..50 {
        r.push(rec(
            at(i, 50),
            17,
            "ERROR",
            &format!("health check failed: dependency db-{i} unreachable"),
            vec![],
        ));
    }
    // 200 DEBUG by text, 300 DEBUG by number only.
    for i in 0..200 {
        r.push(rec(
            at(i, 200),
            5,
            "DEBUG",
            &format!("cache lookup key {i} hit"),
            vec![],
        ));
    }
    for i in 0..300 {
        r.push(rec(
            at(i, 300),
            6,
            "",
            &format!("pool stats idle {i} busy 3"),
            vec![],
        ));
    }
    // 100 DEBUG authentication lines: security-relevant, never suggested for dropping.
    for i in 0..100 {
        r.push(rec(
            at(i, 100),
            5,
            "DEBUG",
            &format!("authentication succeeded for session {i}"),
            vec![],
        ));
    }
    // One ERROR body from 103 nodes, back to back: not exact repeats (node differs).
    for i in 0..103 {
        r.push(rec(
            at(1, 2) + i,
            17,
            "ERROR",
            "disk quota exceeded on volume data",
            vec![kv("node", format!("node-{i}"))],
        ));
    }
    // 800 records of one line in one second: a burst.
    for i in 0..800 {
        r.push(rec(
            at(1, 3) + i * 1_000_000,
            9,
            "INFO",
            "retrying connection to broker",
            vec![],
        ));
    }
    // The window's edges.
    r.push(rec(T0, 9, "INFO", "service started", vec![]));
    r.push(rec(T0 + HOUR, 9, "INFO", "service stopping", vec![]));
    r.sort_by_key(|x| x.time_unix_nano);
    r
}

fn metrics(service: &str) -> ExportMetricsServiceRequest {
    let point = |attrs: Vec<KeyValue>, v: f64| NumberDataPoint {
        attributes: attrs,
        time_unix_nano: T0,
        value: Some(number_data_point::Value::AsDouble(v)),
        ..Default::default()
    };
    let mut user = Vec::new();
    for i in 0..2000 {
        user.push(point(
            vec![
                kv("user_id", format!("u{i}")),
                kv("region", if i % 2 == 0 { "eu" } else { "us" }),
            ],
            i as f64,
        ));
    }
    let mut overflow = vec![point(vec![kv("otel.metric.overflow", "true")], 1.0)];
    for i in 0..10 {
        overflow.push(point(vec![kv("route", format!("/r{i}"))], i as f64));
    }
    let gauge = |name: &str, pts: Vec<NumberDataPoint>| Metric {
        name: name.into(),
        data: Some(metric::Data::Gauge(Gauge { data_points: pts })),
        ..Default::default()
    };
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![kv("service.name", service)],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![gauge("app.requests", user), gauge("app.routes", overflow)],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn catalog() -> (tempfile::TempDir, ControlPlane) {
    let dir = tempfile::tempdir().unwrap();
    let c = ControlPlane::open(&dir.path().join("c.db"))
        .unwrap()
        .with_policy_check(weir_catalog::component::policy_check());
    let mut acc = Accumulator::new(Limits::default());
    acc.set_key(c.sketch_key());
    acc.observe(&Batch::new(Payload::Logs(logs("api", api_records()))));
    acc.observe(&Batch::new(Payload::Metrics(metrics("api"))));
    c.ingest(&acc.take()).unwrap();
    (dir, c)
}

fn by_kind(f: &[Finding], kind: WasteKind) -> Vec<&Finding> {
    f.iter().filter(|f| f.kind == kind).collect()
}

fn drop_items(f: &Finding) -> Vec<(String, f64)> {
    f.would_drop
        .by_severity
        .iter()
        .map(|(k, a)| (k.clone(), a.items.round()))
        .collect()
}

#[test]
fn suggestions_never_drop_warn_errors_security_or_unmatchable_records() {
    let (_d, c) = catalog();
    let a = c.advice().unwrap();
    let f = &a.findings;

    // Health checks: the 300 INFO ones only; the 50 ERROR failures are kept.
    let health = by_kind(f, WasteKind::HealthCheckLogs);
    assert_eq!(health.len(), 1, "{health:#?}");
    assert!(
        health[0].title.contains("readiness probe ok"),
        "{}",
        health[0].title
    );
    assert_eq!(drop_items(health[0]), vec![("INFO".to_string(), 300.0)]);
    assert_eq!(health[0].policy["log"]["keep"], "none");

    // DEBUG: the 200 text-DEBUG records; not the 300 number-only (no severity-number matcher
    // in the specification) nor the 100 authentication lines.
    let debug = by_kind(f, WasteKind::DebugLogs);
    assert_eq!(debug.len(), 1);
    assert_eq!(drop_items(debug[0]), vec![("DEBUG".to_string(), 200.0)]);
    assert!(
        debug[0]
            .evidence
            .iter()
            .any(|e| e.starts_with("300 more records are DEBUG/TRACE by severity number only")),
        "{:?}",
        debug[0].evidence
    );
    assert!(debug[0]
        .evidence
        .iter()
        .any(|e| e.starts_with("1 security-relevant templates are left out")));
    assert_eq!(
        debug[0].would_drop.by_service.keys().collect::<Vec<_>>(),
        ["api"]
    );

    // No shown finding drops WARN+ unless it is about exactly those records with a floor.
    for x in f {
        for (sev, _) in drop_items(x) {
            if ["WARN", "ERROR", "FATAL", "UNKNOWN"]
                .iter()
                .any(|w| sev.starts_with(w))
            {
                assert!(x.title.contains("WARN/ERROR"), "{x:#?}");
                assert_ne!(x.policy["log"]["keep"], "none");
            }
        }
    }
    // The 103-node ERROR body is not "exact repeats"; the 800 identical broker lines are.
    let dups = by_kind(f, WasteKind::DuplicateBursts);
    assert_eq!(dups.len(), 1, "{dups:#?}");
    assert!(
        dups[0].evidence[0]
            .contains("\"retrying connection to broker\": 799 of 800 records repeat"),
        "{:?}",
        dups[0].evidence
    );

    // Bursts, independent of share: the 800 broker lines in one second (INFO, rate-limited
    // to 1/s: at least 799 dropped), and the 103 ERROR lines in one second, which only a
    // finding about exactly those ERROR records may rate-limit, with a floor.
    let burst = by_kind(f, WasteKind::Burst);
    assert_eq!(burst.len(), 2, "{burst:#?}");
    let broker = burst
        .iter()
        .find(|b| b.title.contains("800 records"))
        .unwrap();
    assert_eq!(broker.policy["log"]["keep"], "1/s");
    assert_eq!(drop_items(broker), vec![("INFO".to_string(), 799.0)]);
    let errors = burst
        .iter()
        .find(|b| b.title.contains("103 records"))
        .unwrap();
    assert!(errors
        .title
        .contains("its 103 WARN/ERROR records, rate-limited with a floor of 1/s"));
    assert_eq!(drop_items(errors), vec![("ERROR".to_string(), 102.0)]);
    // Same records, same policy: the duplicates finding's saving is already counted.
    assert_eq!(dups[0].saving_bytes_per_day, 0.0);
    assert_eq!(dups[0].overlaps, vec![format!("finding {}", broker.id)]);
    assert!(broker.saving_bytes_per_day > 0.0);

    // What was withheld and why: the security template is never in a finding.
    assert!(!f.iter().any(|x| x.title.contains("authentication")));
}

#[test]
fn one_ledger_everywhere_and_measured_after_enforcement() {
    let (_d, c) = catalog();
    let a = c.advice().unwrap();
    let sum: f64 = a.findings.iter().map(|f| f.saving_bytes_per_day).sum();
    assert!((a.saving_bytes_per_day - sum).abs() < 1e-6);
    let o = weir_catalog::views::overview(&c).unwrap();
    assert_eq!(
        o["saving_bytes_per_day"].as_f64().unwrap(),
        a.saving_bytes_per_day
    );
    assert!(a.saving_bytes_per_day < a.bytes_per_day);
    let report = weir_catalog::cli::report_text(&c, 100).unwrap();
    let total_line = report
        .lines()
        .find(|l| l.starts_with("TOTAL SAVING/DAY"))
        .unwrap();
    let human = |b: f64| {
        let (mut v, mut i) = (b, 0);
        while v >= 1000.0 && i < 4 {
            v /= 1000.0;
            i += 1;
        }
        format!("{v:.1} {}", ["B", "KB", "MB", "GB", "TB"][i])
    };
    assert!(
        total_line.contains(&human(a.saving_bytes_per_day)),
        "{report}"
    );
    assert!(
        report.contains("api: projected per day from the last 1h 0m of data"),
        "{report}"
    );
    // The window: exactly one hour, on every finding; identical rounds project the same.
    assert!(a.findings.iter().all(|f| f.window_seconds == 3600.0
        && f.projection == "projected per day from the last 1h 0m of data"));
    assert_eq!(c.advice().unwrap(), a);

    // Enforce DEBUG; its records leave every other finding's saving and the total drops by
    // exactly its saving.
    let debug = a
        .findings
        .iter()
        .find(|f| f.kind == WasteKind::DebugLogs)
        .unwrap()
        .clone();
    c.accept(&debug.id, false, "test").unwrap();
    let b = c.advice().unwrap();
    assert!(
        (b.saving_bytes_per_day - (a.saving_bytes_per_day - debug.saving_bytes_per_day)).abs()
            < 1e-3
    );
    assert!(b.findings.iter().all(|f| f.id != debug.id));
    let acc = b.accepted.iter().find(|f| f.id == debug.id).unwrap();
    let m = acc.measured.as_ref().unwrap();
    assert_eq!(m.mode, "enforced");
    assert_eq!(m.estimated_items_per_day.round(), 200.0 * 24.0);
    assert_eq!(
        b.services[0].covered_bytes_per_day,
        debug.saving_bytes_per_day
    );

    // An edge reports 150 hits: measured records and bytes (average DEBUG record size).
    let edge = EdgeInfo {
        instance_id: "e1".into(),
        service_name: "edge".into(),
        last_sync: 1,
        last_hash: "h".into(),
    };
    c.store()
        .record_sync(&edge, &[(debug.id.clone(), 150, 0, vec![])])
        .unwrap();
    let b = c.advice().unwrap();
    let m = b.accepted[0].measured.clone().unwrap();
    assert_eq!((m.enforced_items, m.shadow_items), (150, 0));
    let per_record = debug.would_drop.by_severity["DEBUG"].bytes / 200.0;
    assert!((m.enforced_bytes - 150.0 * per_record).abs() < 1e-6);
}

#[test]
fn attribute_removal_saving_is_what_the_engine_removes() {
    let dir = tempfile::tempdir().unwrap();
    let c = ControlPlane::open(&dir.path().join("c.db")).unwrap();
    let mut records = Vec::new();
    for i in 0..400u64 {
        records.push(rec(
            T0 + i * (HOUR / 400),
            9,
            "INFO",
            &format!("job {i} done"),
            vec![kv("host.kind", "vm"), kv("region", format!("r{}", i % 3))],
        ));
    }
    let req = logs("jobs", records);
    let mut acc = Accumulator::new(Limits::default());
    acc.set_key(c.sketch_key());
    acc.observe(&Batch::new(Payload::Logs(req.clone())));
    c.ingest(&acc.take()).unwrap();
    let a = c.advice().unwrap();
    let f = a
        .findings
        .iter()
        .find(|f| f.kind == WasteKind::ConstantAttribute)
        .unwrap();
    // Apply the suggested policy with the policy engine and measure the records' bytes.
    let set = weir_catalog::dryrun::compile(&f.policy).unwrap();
    let before: usize = req.resource_logs[0].scope_logs[0]
        .log_records
        .iter()
        .map(|r| r.encoded_len())
        .sum();
    let mut after_req = req.clone();
    let v = weir_policy_engine::evaluate::evaluate_logs(&set, &after_req, Instant::now());
    weir_policy_engine::evaluate::transform_logs(&set, &mut after_req, &v);
    let after: usize = after_req.resource_logs[0].scope_logs[0]
        .log_records
        .iter()
        .map(|r| r.encoded_len())
        .sum();
    // The one template is also "dominant" and sampled at 10% by that finding: removing the
    // attribute saves only on the 10% it keeps (the ledger counts each record once).
    let dominant = a
        .findings
        .iter()
        .find(|f| f.kind == WasteKind::DominantTemplate)
        .unwrap();
    assert_eq!(f.overlaps, vec![format!("finding {}", dominant.id)]);
    let removed = (before - after) as f64;
    assert_eq!(
        removed,
        400.0 * 19.0,
        "host.kind=vm is 19 bytes on the wire"
    );
    let per_day = 86_400.0 / f.window_seconds;
    assert!((f.gross_saving_bytes_per_day - removed * per_day).abs() < 1e-6);
    assert!(
        (f.saving_bytes_per_day - removed * 0.1 * per_day).abs() < 1e-6,
        "{f:#?}"
    );
}

#[test]
fn metric_cardinality_and_overflow() {
    let (_d, c) = catalog();
    let a = c.advice().unwrap();
    let m = by_kind(&a.findings, WasteKind::MetricCardinality);
    assert_eq!(m.len(), 2, "{m:#?}");
    let users = m.iter().find(|f| f.title.contains("app.requests")).unwrap();
    assert!(
        users.title.contains("driven by attribute user_id"),
        "{}",
        users.title
    );
    assert_eq!(users.policy["metric"]["keep"], false);
    assert_eq!(users.would_drop.by_service["api"].items, 2000.0);
    let bytes = c.service("api").unwrap().metrics.metrics["app.requests"]
        .volume
        .bytes;
    assert_eq!(users.would_drop.by_service["api"].bytes, bytes as f64);
    assert!(users
        .evidence
        .iter()
        .any(|e| e.starts_with("dropping the metric saves ~")
            && e.ends_with(&format!(
                "series and {bytes} bytes of data points in the window"
            ))));
    let over = m.iter().find(|f| f.title.contains("app.routes")).unwrap();
    assert!(over.title.contains("SDK cardinality limit hit"));
}

#[test]
fn hits_split_by_mode_and_stale_edges_marked() {
    let (_d, c) = catalog();
    let debug = c
        .findings()
        .unwrap()
        .into_iter()
        .find(|f| f.kind == WasteKind::DebugLogs)
        .unwrap();
    c.accept(&debug.id, true, "test").unwrap();
    let now = weir_catalog::store::now_secs();
    let fresh = EdgeInfo {
        instance_id: "edge-1/a".into(),
        service_name: "weir-edge".into(),
        last_sync: now,
        last_hash: "h".into(),
    };
    // Reported while the policy is in shadow mode: shadow hits.
    c.store()
        .record_sync(&fresh, &[(debug.id.clone(), 30, 0, vec![])])
        .unwrap();
    c.update_policy(&debug.id, None, None, Some(false), "test")
        .unwrap();
    // Reported once enforced: enforced hits.
    c.store()
        .record_sync(&fresh, &[(debug.id.clone(), 12, 0, vec![])])
        .unwrap();
    let old = EdgeInfo {
        instance_id: "edge-1/b".into(),
        last_sync: now - 3600,
        ..fresh.clone()
    };
    c.store().record_sync(&old, &[]).unwrap();
    let v = weir_catalog::views::policies(&c).unwrap();
    let p = &v["policies"][0];
    assert_eq!(
        (p["shadow_hits"].as_i64(), p["enforced_hits"].as_i64()),
        (Some(30), Some(12))
    );
    let per_record = debug.would_drop.by_severity["DEBUG"].bytes / 200.0;
    assert!((p["enforced_bytes"].as_f64().unwrap() - 12.0 * per_record).abs() < 1e-6);
    assert!((p["shadow_bytes"].as_f64().unwrap() - 30.0 * per_record).abs() < 1e-6);
    let edges = v["edges"].as_array().unwrap();
    let by = |id: &str| edges.iter().find(|e| e["edge"] == id).unwrap().clone();
    assert_eq!(by("edge-1/a")["stale"], false);
    assert_eq!(by("edge-1/b")["stale"], true);
    assert_eq!(by("edge-1/b")["in_sync"], false);
    assert_eq!(by("edge-1/b")["last_seen"], now - 3600);
}
