//! The one wasmtime engine every WASM processor shares, and the thread that drives its epoch.

use std::sync::OnceLock;
use std::time::Duration;

use wasmtime::{Config, Engine, OptLevel};

/// How often the epoch advances. A call's deadline is a whole number of ticks, so a timeout
/// is enforced to within one tick.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(5);

/// The process-wide engine. Compiled modules are tied to the engine they were compiled with,
/// and one engine means one ticker thread however many modules are loaded.
pub(crate) fn shared_engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let mut config = Config::new();
        config
            .epoch_interruption(true)
            .cranelift_opt_level(OptLevel::Speed)
            // Traces stay readable without the cost of capturing a wasm backtrace on each trap.
            .wasm_backtrace_max_frames(None)
            // Proposals that would let a guest get round memory_limit_mib or the epoch
            // deadline stay off: several memories (the limiter also counts all memories
            // of an instance together), 64-bit memories, custom page sizes, stack
            // switching. Threads and GC are not compiled in.
            .wasm_multi_memory(false)
            .wasm_memory64(false)
            .wasm_custom_page_sizes(false)
            .wasm_stack_switching(false);
        let engine = match Engine::new(&config) {
            Ok(e) => e,
            // These settings are supported on every platform wasmtime compiles for; should
            // that ever change, fall back to the defaults rather than refuse to start.
            Err(e) => {
                tracing::error!(error = %e, "wasmtime rejected the engine settings; using defaults");
                Engine::default()
            }
        };
        let ticking = engine.weak();
        let spawned = std::thread::Builder::new()
            .name("weir-wasm-epoch".into())
            .spawn(move || loop {
                std::thread::sleep(EPOCH_TICK);
                match ticking.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => break,
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the WASM epoch thread; guest deadlines will not fire");
        }
        engine
    })
}

/// The deadline in epoch ticks for a call bounded by `timeout`: rounded up, plus one because
/// the current tick may be about to end.
pub(crate) fn deadline_ticks(timeout: Duration) -> u64 {
    let tick = EPOCH_TICK.as_nanos();
    let ticks = timeout.as_nanos().div_ceil(tick);
    u64::try_from(ticks).unwrap_or(u64::MAX / 2).max(1) + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_round_up_and_add_one_tick() {
        assert_eq!(deadline_ticks(Duration::from_millis(100)), 21);
        assert_eq!(deadline_ticks(Duration::from_millis(1)), 2);
        assert_eq!(deadline_ticks(Duration::ZERO), 2);
    }
}
