//! A guest's `weir_log` lines cannot forge Weir's log: each is one line (newlines escaped),
//! cut to 1 KiB of guest text, marked as guest output with the module, at most 32 per call and
//! 20 per second per instance.
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

/// What the guest logs: a forged Weir line after a newline, then 2,000 bytes of `A`.
const PREFIX: &str = "line one\nFORGED 2026-01-01T00:00:00Z ERROR weir: fake\r\n";

/// A guest that calls `weir_log` `calls` times per batch with the text above.
fn chatty(calls: u32) -> String {
    let text = format!("{PREFIX}{}", "A".repeat(2000));
    let escaped = text.replace('\n', "\\n").replace('\r', "\\r");
    format!(
        r#"(module
  (import "weir" "weir_log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 2)
  (data (i32.const 4096) "{escaped}")
  (func (export "weir_abi_version") (result i32) i32.const 1)
  (func (export "weir_alloc") (param i32) (result i32) i32.const 16384)
  (func (export "weir_process_logs") (param $ptr i32) (param $len i32) (result i32)
    (local $i i32)
    (loop $again
      (call $log (i32.const 2) (i32.const 4096) (i32.const {len}))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $again (i32.lt_u (local.get $i) (i32.const {calls}))))
    i32.const 0))"#,
        len = text.len()
    )
}

#[tokio::test]
async fn guest_lines_are_one_line_capped_marked_and_rate_limited() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    // Guests run on the blocking pool, not this thread: the subscriber must be global (this
    // test binary holds only this test).
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let path = wat_module(&dir, "chatty", &chatty(100));
    let module = path.display().to_string();
    let h = harness(json!({"module": module, "timeout": "10s"}), Signal::Logs);
    // Two batches right after each other: 100 calls each, one instance, within one second.
    for _ in 0..2 {
        assert_eq!(
            h.run(logs_batch(vec![record("x", 9)])).await[0].item_count(),
            1
        );
    }
    assert_eq!(h.failures("guest_panic") + h.failures("malformed"), 0);

    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let guest: Vec<&str> = text.lines().filter(|l| l.contains("guest log")).collect();
    // 100 calls in the first batch: the per-call cap (32) and the per-second cap (20) leave
    // 20; the second batch, within the same second, adds none.
    assert_eq!(guest.len(), 20, "{text}");
    // Nothing the guest wrote starts a line of its own.
    for l in text.lines() {
        assert!(
            !l.contains("FORGED") || l.contains("guest log"),
            "a guest line escaped its field: {l}"
        );
        assert!(!l.starts_with("FORGED"), "{l}");
    }
    let kept_as = 1024 - PREFIX.len();
    for l in &guest {
        assert!(l.contains("INFO"), "{l}");
        assert!(l.contains("guest="), "not marked as guest output: {l}");
        assert!(l.contains("chatty"), "the module is not named: {l}");
        // Escaped by weir_log (and once more by the formatter's quoting of the field): the
        // guest's text stays on this line.
        assert!(
            l.contains("line one") && l.contains(r"nFORGED") && l.contains(r"fake\"),
            "newline not escaped: {l}"
        );
        // Cut to 1 KiB of guest text: exactly the As that fit after the prefix (the run of
        // As the guest wrote; other fields, such as a temporary path, may hold an A too).
        let run = l.split(|c| c != 'A').map(str::len).max().unwrap_or(0);
        assert_eq!(run, kept_as, "{l}");
    }
}
