//! The failure log line names the module and the cause, and repeats are rate-limited.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::*;
use serde_json::json;
use weir_api::Signal;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn one_line_names_module_and_cause_then_repeats_are_counted_not_logged() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    // #[tokio::test] runs everything on this thread, so a thread-local default suffices.
    let _guard = tracing::subscriber::set_default(subscriber);

    let module = example_wasm("chaos").display().to_string();
    let h = harness(
        json!({"module": module, "config": {"mode": "panic"}}),
        Signal::Logs,
    );
    for _ in 0..3 {
        assert_eq!(
            h.run(logs_batch(vec![record("x", 9)])).await[0].item_count(),
            1
        );
    }
    assert_eq!(h.failures("guest_panic"), 3);

    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("WASM guest failed"))
        .collect();
    assert_eq!(lines.len(), 1, "{text}");
    let line = lines[0];
    assert!(line.contains("WARN"), "{line}");
    assert!(
        line.contains(&format!("module=\"{module}\""))
            || line.contains(&format!("module={module}")),
        "{line}"
    );
    assert!(line.contains("cause=guest_panic"), "{line}");
    assert!(
        line.contains("chaos: panic on batch 1 (at chaos/src/lib.rs:"),
        "{line}"
    );
    assert!(
        line.contains("batch passed on unprocessed; instance replaced"),
        "{line}"
    );
}
