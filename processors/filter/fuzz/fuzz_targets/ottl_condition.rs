//! Any text must compile to a condition or a config error, never a panic, in every context.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir_filter::ottl::{compile_group, Ctx, PathMode, SignalKind};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let conditions = vec![text.to_string()];
    for (signal, ctx) in [
        (SignalKind::Logs, Ctx::Log),
        (SignalKind::Traces, Ctx::SpanEvent),
        (SignalKind::Metrics, Ctx::DataPoint),
    ] {
        let _ = compile_group(signal, PathMode::Explicit(ctx), &conditions);
        let _ = compile_group(signal, PathMode::Inferred, &conditions);
    }
});
