//! Unit tests of the `file` exporter's config and backup naming.

#![allow(clippy::unwrap_used)]
use std::path::Path;

use super::rotation::{backup_path, format_timestamp, parse_timestamp};
use super::*;

#[test]
fn backup_timestamps_round_trip_in_the_collectors_layout() {
    // 2024-02-29T23-59-58.123 UTC
    let ms = 1_709_251_198_123;
    assert_eq!(format_timestamp(ms), "2024-02-29T23-59-58.123");
    assert_eq!(parse_timestamp("2024-02-29T23-59-58.123"), Some(ms));
    assert_eq!(format_timestamp(0), "1970-01-01T00-00-00.000");
    assert_eq!(parse_timestamp("2024-13-01T00-00-00.000"), None);
    assert_eq!(
        backup_path(Path::new("/x/out.jsonl"), ms),
        Path::new("/x/out-2024-02-29T23-59-58.123.jsonl")
    );
    assert_eq!(
        backup_path(Path::new("out"), 0),
        Path::new("out-1970-01-01T00-00-00.000")
    );
}

#[test]
fn integer_flush_interval_is_nanoseconds_as_in_the_collector() {
    let s: FileSettings =
        serde_json::from_value(serde_json::json!({"path": "x", "flush_interval": 5_000_000}))
            .unwrap();
    assert_eq!(s.flush_interval, Duration::from_millis(5));
    let s: FileSettings =
        serde_json::from_value(serde_json::json!({"path": "x", "flush_interval": "2s"})).unwrap();
    assert_eq!(s.flush_interval, Duration::from_secs(2));
    let e = serde_json::from_value::<FileSettings>(
        serde_json::json!({"path": "x", "flush_interval": "soon"}),
    )
    .unwrap_err();
    assert!(e.to_string().contains("\"soon\" is not a duration"), "{e}");
}
