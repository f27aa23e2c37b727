//! Property: arbitrary summaries (well-formed, malformed, hostile sketches, huge counts,
//! long names, many entries) read by the ingest gate and merged into a real SQLite store
//! never panic, and what is stored never exceeds the store's caps and always reads back.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use serde_json::{json, Value};
use weir_catalog::control::ControlPlane;
use weir_catalog::ingest::IngestConfig;
use weir_summary::validate::SummaryLimits;

fn small_limits() -> IngestConfig {
    IngestConfig {
        max_services: 6,
        max_services_per_edge: 4,
        max_service_bytes: 64 * 1024,
        limits: SummaryLimits {
            max_services: 3,
            max_templates: 4,
            max_names: 4,
            max_attribute_keys: 4,
            max_keys_per_entry: 4,
            max_name_bytes: 40,
            max_template_bytes: 200,
            max_count: 1 << 40,
        },
        ..IngestConfig::default()
    }
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec!["api", "db", "web", "q", "x", ""]).prop_map(str::to_string),
        "[a-z]{1,60}",
    ]
}

fn count() -> impl Strategy<Value = Value> {
    prop_oneof![
        12 => (0u64..1000).prop_map(Value::from),
        1 => any::<u64>().prop_map(Value::from),
        1 => Just(json!(-1)),
        1 => Just(json!(1.5)),
    ]
}

/// A distinct-count sketch's wire form: real ones, and words and registers at random.
fn distinct() -> impl Strategy<Value = Value> {
    prop_oneof![
        20 => Just(json!([0, null])),
        1 => any::<u64>().prop_map(|w| json!([w, null])),
        1 => (any::<u64>(), prop::collection::vec(any::<u32>(), 0..140))
            .prop_map(|(w, r)| json!([w, r])),
        1 => (prop::collection::vec(any::<u32>(), 771..772)).prop_map(|r| json!([3, r])),
        1 => (0u32..40).prop_map(|n| {
            // A real HyperLogLog form with zeros/sum consistent (all registers zero).
            let mut r = vec![0u32; 771];
            r[0] = 4096;
            r[1] = 4096f32.to_bits();
            if n > 0 {
                r[2] = n; // one register set, now inconsistent with zeros/sum
            }
            json!([3, r])
        }),
    ]
}

/// A duration sketch's wire form (the DDSketch crate's): real settings with hostile
/// stores, and hostile settings.
fn duration() -> impl Strategy<Value = Value> {
    let store = (
        prop::collection::vec(0u64..5, 0..40),
        any::<u64>(),
        any::<i32>(),
        any::<i32>(),
        prop_oneof![Just(-2000i32), Just(0), Just(1300), any::<i32>()],
        prop_oneof![Just(2048usize), any::<usize>()],
        any::<bool>(),
    )
        .prop_map(|(bins, count, min_key, max_key, offset, bin_limit, c)| {
            let real: u64 = bins.iter().sum();
            json!({"bins": bins, "count": if c { real } else { count }, "min_key": min_key,
                   "max_key": max_key, "offset": offset, "bin_limit": bin_limit,
                   "is_collapsed": c})
        });
    let config = serde_json::to_value(sketches_config()).unwrap();
    prop_oneof![
        6 => Just(Value::Null),
        2 => (store.clone(), store, any::<bool>(), -1e6f64..1e6, -1e6f64..1e6, 0u64..10).prop_map(
            move |(s, n, hostile_cfg, min, max, z)| {
                let mut cfg = config.clone();
                if hostile_cfg && z == 0 {
                    cfg["max_num_bins"] = json!(u32::MAX);
                    cfg["offset"] = json!(i32::MAX);
                }
                json!({"config": cfg, "store": s, "negative_store": n, "min": min,
                       "max": max, "sum": 0.0, "zero_count": z})
            }
        ),
    ]
}

fn sketches_config() -> Value {
    // The settings a real sketch carries, taken from one.
    let mut d = weir_summary::sketch::DurationSketch::new();
    d.add_ms(1.0);
    serde_json::to_value(&d).unwrap()["config"].clone()
}

fn service() -> impl Strategy<Value = Value> {
    let template = (
        name(),
        "[a-z <*>]{0,300}",
        count(),
        prop::collection::vec(name(), 0..6),
    )
        .prop_map(|(id, t, c, keys)| {
            (
                id,
                json!({"template": t, "count": c, "attribute_keys": keys}),
            )
        });
    let span = (name(), duration(), count())
        .prop_map(|(n, d, c)| (n, json!({"volume": {"items": c}, "duration_ms": d})));
    let attr =
        (name(), distinct(), count()).prop_map(|(k, d, c)| (k, json!({"items": c, "distinct": d})));
    let metric = (
        name(),
        distinct(),
        prop::collection::vec((name(), distinct()), 0..3),
    )
        .prop_map(|(n, s, keys)| {
            let keys: serde_json::Map<String, Value> = keys.into_iter().collect();
            (
                n,
                json!({"kind": "sum", "series": s, "attribute_keys": keys}),
            )
        });
    (
        prop::collection::vec(template, 0..7),
        prop::collection::vec(span, 0..6),
        prop::collection::vec(attr, 0..6),
        prop::collection::vec(metric, 0..6),
        count(),
    )
        .prop_map(|(t, s, a, m, items)| {
            let obj = |v: Vec<(String, Value)>| Value::Object(v.into_iter().collect());
            json!({
                "logs": {"volume": {"items": items}, "templates": obj(t),
                         "attributes": {"item": obj(a.clone())}},
                "traces": {"spans": obj(s)},
                "metrics": {"metrics": obj(m), "attributes": {"resource": obj(a)}},
            })
        })
}

fn summary() -> impl Strategy<Value = Value> {
    prop::collection::vec((name(), service()), 0..5)
        .prop_map(|s| json!({"services": Value::Object(s.into_iter().collect())}))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_summaries_never_panic_nor_exceed_the_caps(
        bodies in prop::collection::vec(summary(), 1..5),
        edges in prop::collection::vec(prop::sample::select(vec!["a", "b"]), 5),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let config = small_limits();
        let caps = config.limits.store_caps();
        let control = ControlPlane::open(&dir.path().join("c.db"))
            .unwrap()
            .with_ingest(config.clone(), &weir_api::Telemetry::new());
        let gate = control.ingestor();
        for (body, edge) in bodies.iter().zip(&edges) {
            let bytes = serde_json::to_vec(body).unwrap();
            let before = control.store().summaries().unwrap();
            match gate.read(&bytes) {
                Ok(s) => {
                    if gate.store(control.store(), &s, Some(edge)).is_err() {
                        // Refused whole: nothing of it stored.
                        prop_assert_eq!(&before, &control.store().summaries().unwrap());
                    }
                }
                Err(e) => {
                    prop_assert!(e.to_string().starts_with("invalid catalog summary: "), "{}", e);
                    prop_assert_eq!(&before, &control.store().summaries().unwrap());
                }
            }
        }
        let catalog = control.catalog().unwrap();
        prop_assert_eq!(catalog.len(), control.store().summaries().unwrap().len());
        prop_assert!(catalog.len() <= config.max_services);
        for (_, (s, _, _)) in catalog {
            prop_assert!(s.logs.templates.len() <= caps.templates);
            prop_assert!(s.traces.spans.len() <= caps.names);
            prop_assert!(s.metrics.metrics.len() <= caps.names);
            for a in [&s.logs.attributes, &s.traces.attributes, &s.metrics.attributes] {
                prop_assert!(a.item.len() <= caps.attribute_keys);
                prop_assert!(a.resource.len() <= caps.attribute_keys);
                for sch in a.item.values().chain(a.resource.values()) {
                    let _ = sch.distinct.estimate();
                }
            }
            for sp in s.traces.spans.values() {
                let _ = sp.duration_ms.quantile_ms(0.99);
                prop_assert!(sp.duration_ms.count() <= 1 << 53);
            }
            for m in s.metrics.metrics.values() {
                let _ = m.series.estimate();
            }
        }
        // Views over what is stored work too.
        control.services().unwrap();
        control.findings().unwrap();
    }
}

/// The crash of the issue: a duration sketch whose bin limit, offset and bins are huge.
#[test]
fn a_sketch_built_to_allocate_gigabytes_is_refused_naming_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let control = ControlPlane::open(&dir.path().join("c.db")).unwrap();
    let mut cfg = sketches_config();
    cfg["max_num_bins"] = json!(u32::MAX);
    let store = json!({"bins": [1], "count": 1, "min_key": 2147483000, "max_key": 2147483000,
        "offset": 2147483000, "bin_limit": 8589934592u64, "is_collapsed": false});
    let empty = json!({"bins": [], "count": 0, "min_key": 0, "max_key": 0, "offset": 0,
        "bin_limit": 2048, "is_collapsed": false});
    let body = json!({"services": {"api": {"traces": {"spans": {"GET /": {"duration_ms":
        {"config": cfg, "store": store, "negative_store": empty, "min": 1.0, "max": 1.0,
         "sum": 1.0, "zero_count": 0}}}}}}});
    let e = control
        .ingestor()
        .read(&serde_json::to_vec(&body).unwrap())
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.starts_with("invalid catalog summary: services.api.traces.spans.GET /.duration_ms: duration sketch: config"),
        "{e}"
    );
    // Real settings, out-of-range keys: refused too.
    let mut body = body;
    body["services"]["api"]["traces"]["spans"]["GET /"]["duration_ms"]["config"] =
        sketches_config();
    let e = control
        .ingestor()
        .read(&serde_json::to_vec(&body).unwrap())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("store.bins[0]: key out of range"), "{e}");
    assert!(control.store().summaries().unwrap().is_empty());
}

/// A row stored by an older build with a sketch that no longer reads (the "poison" of the
/// issue) does not fail later merges into its service: it is replaced, once.
#[test]
fn a_poisoned_stored_row_does_not_block_later_merges() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.db");
    let control = ControlPlane::open(&path).unwrap();
    let ok = json!({"services": {"api": {"logs": {"volume": {"items": 5, "bytes": 50}}}}});
    let s = control
        .ingestor()
        .read(&serde_json::to_vec(&ok).unwrap())
        .unwrap();
    control
        .ingestor()
        .store(control.store(), &s, Some("e1"))
        .unwrap();
    control
        .store()
        .merge_summary("api", "all", 1, |_| Ok(POISONED.to_string()))
        .unwrap();
    assert!(
        control.catalog().unwrap().is_empty(),
        "the poisoned row is skipped in views"
    );
    control
        .ingestor()
        .store(control.store(), &s, Some("e1"))
        .unwrap();
    control
        .ingestor()
        .store(control.store(), &s, Some("e1"))
        .unwrap();
    let cat = control.catalog().unwrap();
    assert_eq!(cat["api"].0.logs.volume.items, 10);
}

/// A sketch with an out-of-bounds index, as an older build stored it.
const POISONED: &str = r#"{"traces":{"spans":{"x":{"duration_ms":{"config":{},"store":{"bins":[1],"count":1,"min_key":0,"max_key":99999,"offset":0,"bin_limit":1,"is_collapsed":false}}}}}}"#;
