//! `file` exporter: what it writes reads back as the same data.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{build_exporter, logs, metric, metrics, traces, wait_until};
use weir_api::{Batch, Registry, Signal};

/// Splits the collector's length-prefixed format into messages.
fn split_records(mut data: &[u8]) -> Vec<Bytes> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let len = u32::from_be_bytes(data[..4].try_into().unwrap()) as usize;
        out.push(Bytes::copy_from_slice(&data[4..4 + len]));
        data = &data[4 + len..];
    }
    out
}

#[tokio::test]
async fn proto_output_decodes_back_to_the_same_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out/telemetry.bin");
    let (exporter, telemetry) = build_exporter(
        "file",
        serde_json::json!({"path": path.to_str().unwrap(), "format": "proto"}),
    );
    exporter.start().await.unwrap();
    let sent = [
        (Signal::Logs, logs("f", 3)),
        (Signal::Traces, traces("f", 2)),
        (Signal::Metrics, metrics("f", 4)),
    ];
    for (_, p) in &sent {
        exporter.consume(Batch::new(p.clone())).await.unwrap();
    }
    exporter.shutdown().await;
    let records = split_records(&std::fs::read(&path).unwrap());
    assert_eq!(records.len(), 3);
    for ((signal, payload), bytes) in sent.iter().zip(records) {
        assert_eq!(
            &Batch::decode(*signal, bytes).unwrap().into_payload(),
            payload
        );
    }
    assert_eq!(
        metric(
            &telemetry,
            "weir_exporter_sent_items_total{exporter=\"file\",signal=\"metrics\"}"
        ),
        4.0
    );
}

#[tokio::test]
async fn json_lines_decode_back_to_the_same_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("telemetry.jsonl");
    let (exporter, _) = build_exporter("file", serde_json::json!({"path": path.to_str().unwrap()}));
    exporter.start().await.unwrap();
    let sent = [
        (Signal::Logs, logs("j", 2)),
        (Signal::Traces, traces("j", 3)),
        (Signal::Metrics, metrics("j", 1)),
    ];
    for (_, p) in &sent {
        exporter.consume(Batch::new(p.clone())).await.unwrap();
    }
    exporter.shutdown().await;
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(text.ends_with('\n'));
    assert!(lines[0].starts_with("{\"resourceLogs\":"), "{}", lines[0]);
    for ((signal, payload), line) in sent.iter().zip(lines) {
        assert_eq!(
            &weir_api::json::decode(*signal, line.as_bytes()).unwrap(),
            payload
        );
    }
}

#[tokio::test]
async fn flushes_on_interval_and_appends_or_truncates() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.bin");
    let config = |append: bool| serde_json::json!({"path": path.to_str().unwrap(), "format": "proto", "flush_interval": "50ms", "append": append});
    let (exporter, _) = build_exporter("file", config(false));
    exporter.start().await.unwrap();
    exporter.consume(Batch::new(logs("one", 1))).await.unwrap();
    // Flushed by the interval, before shutdown.
    assert!(
        wait_until(Duration::from_secs(5), || std::fs::read(&path)
            .map(|d| !d.is_empty())
            .unwrap_or(false))
        .await
    );
    exporter.shutdown().await;

    let (exporter, _) = build_exporter("file", config(true));
    exporter.start().await.unwrap();
    exporter.consume(Batch::new(logs("two", 1))).await.unwrap();
    exporter.shutdown().await;
    assert_eq!(
        split_records(&std::fs::read(&path).unwrap()).len(),
        2,
        "append keeps earlier data"
    );

    let (exporter, _) = build_exporter("file", config(false));
    exporter.start().await.unwrap();
    exporter
        .consume(Batch::new(logs("three", 1)))
        .await
        .unwrap();
    exporter.shutdown().await;
    let records = split_records(&std::fs::read(&path).unwrap());
    assert_eq!(records.len(), 1, "append: false truncates");
    assert_eq!(
        Batch::decode(Signal::Logs, records[0].clone())
            .unwrap()
            .into_payload(),
        logs("three", 1)
    );
}

#[test]
fn unsupported_settings_are_named() {
    let mut registry = Registry::new();
    weir_exporters::register(&mut registry);
    let err = registry.exporters["file"]
        .parse(
            &serde_json::json!({"format": "proto", "rotation": {"max_megabytes": 10}, "group_by": {"enabled": true}}),
            "exporters.file",
        )
        .err()
        .unwrap();
    assert_eq!(
        err.to_string(),
        "exporters.file.path: is required\n\
         exporters.file.rotation: file rotation is not supported yet; rotate with an external tool (logrotate copytruncate) or remove `rotation`\n\
         exporters.file.group_by: group_by is not supported yet; remove it"
    );
}

#[tokio::test]
async fn unopenable_path_fails_start_with_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("a-file");
    std::fs::write(&blocker, b"x").unwrap();
    let path = blocker.join("sub/out.bin");
    let (exporter, _) = build_exporter(
        "file",
        serde_json::json!({"path": path.to_str().unwrap(), "format": "proto"}),
    );
    let err = exporter.start().await.err().unwrap();
    assert!(
        err.to_string().starts_with(&format!(
            "file: cannot create {}",
            blocker.join("sub").display()
        )),
        "{err}"
    );
}
