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
fn bad_settings_are_named_all_at_once() {
    let mut registry = Registry::new();
    weir_exporters::register(&mut registry);
    let err = registry.exporters["file"]
        .parse(
            &serde_json::json!({
                "append": true,
                "compression": "gzip",
                "rotation": {"max_megabytes": 0},
                "group_by": {"enabled": true, "resource_attribute": ""},
            }),
            "exporters.file",
        )
        .err()
        .unwrap();
    assert_eq!(
        err.to_string(),
        "exporters.file.path: is required\n\
         exporters.file.compression: unsupported compression \"gzip\"; expected zstd or none\n\
         exporters.file.append: append and rotation enabled at the same time is not supported\n\
         exporters.file.rotation.max_megabytes: must be greater than 0\n\
         exporters.file.path: must contain exactly one * when group_by is enabled\n\
         exporters.file.group_by.resource_attribute: must not be empty when group_by is enabled"
    );
    // The collector's shapes load: rotation with defaults, zstd, an integer flush_interval,
    // group_by switched off.
    for ok in [
        serde_json::json!({"path": "a", "rotation": {}}),
        serde_json::json!({"path": "a", "rotation": {"max_megabytes": 10, "max_days": 3, "max_backups": 3, "localtime": true}, "compression": "zstd", "flush_interval": 5}),
        serde_json::json!({"path": "a", "group_by": {"enabled": false, "resource_attribute": "x"}, "format": "proto"}),
    ] {
        if let Err(e) = registry.exporters["file"].parse(&ok, "exporters.file") {
            panic!("{ok}: {e}");
        }
    }
}

/// Log record `seq` attributes in one JSON-lines file, in order.
fn seqs_in_json_lines(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let payload = weir_api::json::decode(Signal::Logs, line.as_bytes()).unwrap();
        let weir_api::Payload::Logs(req) = payload else {
            panic!("not logs")
        };
        for rl in req.resource_logs {
            for sl in rl.scope_logs {
                for r in sl.log_records {
                    let v = r.attributes[0].value.clone().unwrap().value.unwrap();
                    let opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(s) =
                        v
                    else {
                        panic!()
                    };
                    out.push(s);
                }
            }
        }
    }
    out
}

/// The backups of `dir/out.jsonl` (`out-<timestamp>.jsonl`), oldest first.
fn backups(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            name.starts_with("out-")
                && name.ends_with(".jsonl")
                && name.len() == "out-2006-01-02T15-04-05.000.jsonl".len()
        })
        .collect();
    found.sort();
    found
}

#[tokio::test]
async fn rotation_rolls_over_by_size_without_losing_or_repeating_a_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.jsonl");
    let config = |max_backups: usize| {
        serde_json::json!({
            "path": path.to_str().unwrap(),
            "rotation": {"max_megabytes": 1, "max_backups": max_backups},
            "flush_interval": 0,
        })
    };
    let (exporter, telemetry) = build_exporter("file", config(100));
    exporter.start().await.unwrap();
    // 300 batches of 50 records: about 3.5 MiB of JSON lines.
    let batches = 300;
    for b in 0..batches {
        exporter
            .consume(Batch::new(logs(&format!("b{b}"), 50)))
            .await
            .unwrap();
    }
    exporter.shutdown().await;
    let rolled = backups(dir.path());
    assert!(rolled.len() >= 3, "{rolled:?}");
    let mut files = rolled.clone();
    files.push(path.clone());
    let mut seen = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        assert!(
            text.len() as u64 <= 1024 * 1024,
            "{}: {}",
            f.display(),
            text.len()
        );
        assert!(text.ends_with('\n'), "{} ends mid-record", f.display());
        seen.extend(seqs_in_json_lines(&text));
    }
    let want: Vec<String> = (0..batches)
        .flat_map(|b| (0..50).map(move |i| format!("b{b}-{i}")))
        .collect();
    assert_eq!(seen.len(), want.len());
    assert_eq!(
        seen, want,
        "records in order across the backups, then the file"
    );
    assert_eq!(
        metric(
            &telemetry,
            "weir_exporter_sent_items_total{exporter=\"file\",signal=\"logs\"}"
        ),
        (batches * 50) as f64
    );

    // A restart continues the file; max_backups: 1 keeps only the newest backup.
    let (exporter, _) = build_exporter("file", config(1));
    exporter.start().await.unwrap();
    let before = std::fs::read_to_string(&path).unwrap();
    let mut extra = 0;
    // Until the first rollover after the restart, which prunes the older backups.
    while backups(dir.path()).len() != 1 {
        assert!(extra < 200, "never rolled over");
        exporter
            .consume(Batch::new(logs(&format!("c{extra}"), 50)))
            .await
            .unwrap();
        extra += 1;
    }
    exporter.shutdown().await;
    let kept = backups(dir.path());
    assert_eq!(kept.len(), 1, "{kept:?}");
    // The one backup is the file as it was before the restart, continued.
    let backup_text = std::fs::read_to_string(&kept[0]).unwrap();
    assert!(backup_text.starts_with(&before));
    let mut after: Vec<String> = seqs_in_json_lines(&backup_text);
    after.extend(seqs_in_json_lines(&std::fs::read_to_string(&path).unwrap()));
    let before_seqs = seqs_in_json_lines(&before);
    let want_after: Vec<String> = before_seqs
        .into_iter()
        .chain((0..extra).flat_map(|b| (0..50).map(move |i| format!("c{b}-{i}"))))
        .collect();
    assert_eq!(after, want_after);
}

#[tokio::test]
async fn zstd_output_decompresses_to_the_exact_requests() {
    let dir = tempfile::tempdir().unwrap();
    for format in ["json", "proto"] {
        let path = dir.path().join(format!("out.{format}.zst"));
        let (exporter, _) = build_exporter(
            "file",
            serde_json::json!({"path": path.to_str().unwrap(), "format": format, "compression": "zstd"}),
        );
        exporter.start().await.unwrap();
        let sent = [
            (Signal::Logs, logs("z", 30)),
            (Signal::Traces, traces("z", 7)),
            (Signal::Metrics, metrics("z", 5)),
            (Signal::Logs, logs("y", 1)),
        ];
        for (_, p) in &sent {
            exporter.consume(Batch::new(p.clone())).await.unwrap();
        }
        exporter.shutdown().await;
        let frames = split_records(&std::fs::read(&path).unwrap());
        assert_eq!(frames.len(), sent.len(), "{format}");
        for ((signal, payload), frame) in sent.iter().zip(frames) {
            // Each frame is one zstd frame holding one request.
            assert_eq!(&frame[..4], &[0x28, 0xb5, 0x2f, 0xfd], "zstd magic");
            let raw = zstd::stream::decode_all(&frame[..]).unwrap();
            let got = if format == "json" {
                weir_api::json::decode(*signal, &raw).unwrap()
            } else {
                Batch::decode(*signal, Bytes::from(raw))
                    .unwrap()
                    .into_payload()
            };
            assert_eq!(&got, payload, "{format}");
        }
    }
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

#[tokio::test]
async fn group_by_writes_each_resource_to_the_file_its_attribute_names() {
    use weir_api::otlp::collector::logs::v1::ExportLogsServiceRequest;
    use weir_api::otlp::common::v1::{any_value, AnyValue, KeyValue};
    use weir_api::Payload;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out/*.jsonl");
    let (exporter, telemetry) = build_exporter(
        "file",
        serde_json::json!({"path": path.to_str().unwrap(), "flush_interval": 0,
            "group_by": {"enabled": true, "resource_attribute": "tenant", "max_open_files": 1}}),
    );
    exporter.start().await.unwrap();
    // One request of five resources: tenant a, tenant b/../c, tenant ../../up, no tenant,
    // and a numeric tenant (left out, as in the collector).
    let with = |tenant: Option<any_value::Value>, tag: &str, n: usize| {
        let Payload::Logs(mut r) = logs(tag, n) else {
            unreachable!()
        };
        let rl = &mut r.resource_logs[0];
        if let Some(v) = tenant {
            rl.resource.as_mut().unwrap().attributes.push(KeyValue {
                key: "tenant".into(),
                value: Some(AnyValue { value: Some(v) }),
                ..Default::default()
            });
        }
        rl.clone()
    };
    let s = |v: &str| Some(any_value::Value::StringValue(v.into()));
    let request = |parts: Vec<weir_api::otlp::logs::v1::ResourceLogs>| {
        Batch::new(Payload::Logs(ExportLogsServiceRequest {
            resource_logs: parts,
        }))
    };
    exporter
        .consume(request(vec![
            with(s("a"), "a1", 2),
            with(s("b/../c"), "bc", 3),
            with(s("../../up"), "up", 1),
            with(None, "none", 4),
            with(Some(any_value::Value::IntValue(7)), "int", 5),
        ]))
        .await
        .unwrap();
    // `a` again after it was closed (max_open_files 1): appended, not truncated.
    exporter
        .consume(request(vec![with(s("a"), "a2", 1)]))
        .await
        .unwrap();
    exporter.shutdown().await;
    let read = |rel: &str| {
        let text = std::fs::read_to_string(dir.path().join(rel)).unwrap();
        seqs_in_json_lines(&text)
    };
    assert_eq!(read("out/a.jsonl"), ["a1-0", "a1-1", "a2-0"]);
    assert_eq!(read("out/b/c.jsonl"), ["bc-0", "bc-1", "bc-2"]);
    assert_eq!(read("out/up.jsonl"), ["up-0"]);
    let mut names: Vec<String> = walk(&dir.path().join("out"));
    names.sort();
    assert_eq!(names, ["a.jsonl", "b/c.jsonl", "up.jsonl"]);
    assert!(!dir.path().join("up.jsonl").exists());
    assert_eq!(
        metric(
            &telemetry,
            "weir_exporter_sent_items_total{exporter=\"file\",signal=\"logs\"}"
        ),
        7.0
    );
}

/// Files under `root`, relative, with `/`.
fn walk(root: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(root).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if p.is_dir() {
            out.extend(walk(&p).into_iter().map(|n| format!("{name}/{n}")));
        } else {
            out.push(name);
        }
    }
    out
}
