//! Arbitrary bytes as the body of `POST /api/v1/ingest`: the ingest gate's read (JSON with
//! paths, sketches checked and rebuilt, the summary limits), then the merge into a real
//! SQLite store (in memory) under the store's caps. Nothing may panic, and:
//! - a refused body is an `invalid catalog summary: ...` error and stores nothing;
//! - what is stored reads back, and never holds more than the caps allow;
//! - sketches read from it answer estimates and quantiles without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir_catalog::ingest::{merge_into, IngestConfig, Ingestor};
use weir_catalog::store::Store;
use weir_summary::summary::ServiceSummary;

fuzz_target!(|data: &[u8]| {
    let config = IngestConfig::default();
    let gate = Ingestor::new(config.clone(), &weir_api::Telemetry::new());
    let summary = match gate.read(data) {
        Ok(s) => s,
        Err(e) => {
            let m = e.to_string();
            assert!(m.starts_with("invalid catalog summary: ") || m.starts_with("body: "), "{m}");
            return;
        }
    };
    let store = match Store::open(std::path::Path::new(":memory:")) {
        Ok(s) => s,
        Err(e) => panic!("in-memory store: {e}"),
    };
    // Twice: the second merges into what the first stored.
    for _ in 0..2 {
        if let Err(e) = merge_into(&store, &summary, Some("fuzz"), &config) {
            assert!(store.summaries().map(|r| r.len()).unwrap_or(0) <= config.max_services, "{e}");
            return;
        }
    }
    let caps = config.limits.store_caps();
    for (service, _, body, _, _) in store.summaries().unwrap_or_default() {
        let s: ServiceSummary = match serde_json::from_str(&body) {
            Ok(s) => s,
            Err(e) => panic!("{service}: a stored row does not read back: {e}"),
        };
        assert!(s.logs.templates.len() <= caps.templates);
        assert!(s.traces.spans.len() <= caps.names);
        assert!(s.metrics.metrics.len() <= caps.names);
        assert!(body.len() <= config.max_service_bytes.saturating_mul(2));
        for sp in s.traces.spans.values() {
            let _ = sp.duration_ms.quantile_ms(0.5);
        }
        for a in s.logs.attributes.item.values() {
            let _ = a.distinct.estimate();
        }
    }
});
