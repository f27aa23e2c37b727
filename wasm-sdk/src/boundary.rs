//! The guest side of the ABI: buffers, host imports and the entry points the export macro
//! forwards to. Not for direct use.

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::thread::LocalKey;

use crate::batch::{Answer, Logs, Metrics, Spans};
use crate::{log, Error, Level, Processor};

/// The ABI version this SDK speaks.
pub const ABI_VERSION: i32 = 1;

/// Return codes of `weir_process_*` and `weir_init`.
const UNCHANGED: i32 = 0;
const VERDICTS: i32 = 1;
const REPLACEMENT: i32 = 2;
const FAILED: i32 = -1;

#[cfg(target_arch = "wasm32")]
mod imports {
    #[link(wasm_import_module = "weir")]
    extern "C" {
        pub fn weir_log(level: i32, ptr: i32, len: i32);
        pub fn weir_output(ptr: i32, len: i32);
        pub fn weir_panic(ptr: i32, len: i32);
    }
}

/// Converts a guest address to the ABI's i32 (wasm32 addresses fit by definition).
fn addr(bytes: &[u8]) -> i32 {
    bytes.as_ptr() as usize as i32
}

fn len_i32(bytes: &[u8]) -> i32 {
    i32::try_from(bytes.len()).unwrap_or(i32::MAX)
}

pub(crate) fn host_log(level: Level, message: &str) {
    #[cfg(target_arch = "wasm32")]
    // SAFETY: the host reads `len` bytes at `ptr` of our memory, which `message` holds.
    #[allow(unsafe_code)]
    unsafe {
        imports::weir_log(
            level as i32,
            addr(message.as_bytes()),
            len_i32(message.as_bytes()),
        );
    }
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("[{level:?}] {message}");
}

fn host_output(bytes: &[u8]) {
    #[cfg(target_arch = "wasm32")]
    // SAFETY: the host only records the region; `bytes` lives in OUTPUT until the next call.
    #[allow(unsafe_code)]
    unsafe {
        imports::weir_output(addr(bytes), len_i32(bytes));
    }
    #[cfg(not(target_arch = "wasm32"))]
    let _ = (addr(bytes), len_i32(bytes));
}

fn host_panic(message: &str) {
    #[cfg(target_arch = "wasm32")]
    // SAFETY: as in `host_log`.
    #[allow(unsafe_code)]
    unsafe {
        imports::weir_panic(addr(message.as_bytes()), len_i32(message.as_bytes()));
    }
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("guest panic: {message}");
}

thread_local! {
    /// Where the host writes the batch (or config). Grown, never shrunk, so a long-lived
    /// instance stops allocating after its first batches.
    static INPUT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    /// The answer the host reads after a call returns.
    static OUTPUT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// `weir_alloc`: a buffer of at least `len` bytes for the host to write into.
pub fn alloc(len: i32) -> i32 {
    let Ok(len) = usize::try_from(len) else {
        return 0;
    };
    INPUT.with_borrow_mut(|buf| {
        if buf.len() < len {
            buf.resize(len, 0);
        }
        addr(buf)
    })
}

/// Runs `f` on the `len` input bytes at `ptr`, which must be the buffer `alloc` handed out.
fn with_input<R>(ptr: i32, len: i32, f: impl FnOnce(&[u8]) -> R) -> Option<R> {
    let buf = INPUT.with_borrow_mut(std::mem::take);
    let len = usize::try_from(len).ok();
    let result = match len {
        Some(len) if ptr == addr(&buf) && len <= buf.len() => Some(f(&buf[..len])),
        _ => None,
    };
    INPUT.with_borrow_mut(|slot| *slot = buf);
    result
}

fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        // One line: "<message> (at <file>:<line>)", the way a log line should read.
        let message = info.payload_as_str().unwrap_or("(no message)");
        let text = match info.location() {
            Some(at) => format!("{message} (at {}:{})", at.file(), at.line()),
            None => message.to_string(),
        };
        host_panic(&text);
    }));
}

/// The processor instance behind the exports, made by `weir_init`.
pub type Slot<P> = LocalKey<RefCell<Option<P>>>;

/// `weir_init`: parses the config JSON and builds the processor.
pub fn init<P: Processor>(slot: &'static Slot<P>, ptr: i32, len: i32) -> i32 {
    install_panic_hook();
    let made = with_input(ptr, len, |bytes| {
        let config = if bytes.is_empty() {
            Ok(serde_json::Value::Null)
        } else {
            serde_json::from_slice(bytes)
        };
        match config {
            Ok(config) => P::init(&config),
            Err(e) => Err(Error::new(format!("config is not JSON: {e}"))),
        }
    });
    match made {
        Some(Ok(p)) => {
            slot.with_borrow_mut(|s| *s = Some(p));
            UNCHANGED
        }
        Some(Err(e)) => {
            log(Level::Error, &format!("init failed: {e}"));
            FAILED
        }
        None => FAILED,
    }
}

fn answer(result: Result<Answer, Error>) -> i32 {
    match result {
        Ok(Answer::Unchanged) => UNCHANGED,
        Ok(Answer::Verdicts(v)) => OUTPUT.with_borrow_mut(|out| {
            *out = v;
            host_output(out);
            VERDICTS
        }),
        Ok(Answer::Replacement(bytes)) => OUTPUT.with_borrow_mut(|out| {
            *out = bytes;
            host_output(out);
            REPLACEMENT
        }),
        Err(e) => {
            log(Level::Error, &e.to_string());
            FAILED
        }
    }
}

/// Runs one `process_*` with the processor from `slot`, catching panics where the target
/// unwinds (on wasm32 a panic aborts; the hook has told the host why).
fn run<P: Processor>(
    slot: &'static Slot<P>,
    ptr: i32,
    len: i32,
    f: impl FnOnce(&mut P, &[u8]) -> Result<Answer, Error>,
) -> i32 {
    let result = catch_unwind(AssertUnwindSafe(|| {
        slot.with_borrow_mut(|p| match p {
            Some(p) => with_input(ptr, len, |bytes| f(p, bytes))
                .unwrap_or_else(|| Err(Error::new("input is not the buffer weir_alloc returned"))),
            None => Err(Error::new("weir_init was not called")),
        })
    }));
    match result {
        Ok(r) => answer(r),
        Err(_) => FAILED,
    }
}

/// `weir_process_logs`.
pub fn process_logs<P: Processor>(slot: &'static Slot<P>, ptr: i32, len: i32) -> i32 {
    run(slot, ptr, len, |p, bytes| {
        let mut logs = Logs::from_protobuf(bytes);
        p.process_logs(&mut logs)?;
        Ok(logs.finish())
    })
}

/// `weir_process_traces`.
pub fn process_traces<P: Processor>(slot: &'static Slot<P>, ptr: i32, len: i32) -> i32 {
    run(slot, ptr, len, |p, bytes| {
        let mut spans = Spans::from_protobuf(bytes);
        p.process_spans(&mut spans)?;
        Ok(spans.finish())
    })
}

/// `weir_process_metrics`.
pub fn process_metrics<P: Processor>(slot: &'static Slot<P>, ptr: i32, len: i32) -> i32 {
    run(slot, ptr, len, |p, bytes| {
        let mut metrics = Metrics::from_protobuf(bytes);
        p.process_metrics(&mut metrics)?;
        Ok(metrics.finish())
    })
}
