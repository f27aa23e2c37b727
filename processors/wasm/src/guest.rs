//! One live guest instance and the host side of the Weir ABI (see `wasm-sdk/ABI.md`).

use std::fmt;
use std::time::Duration;

use wasmtime::{
    Caller, Engine, Instance, InstancePre, Linker, Memory, Module, ResourceLimiter, Store, Trap,
    TypedFunc,
};
use weir_api::Signal;

use crate::engine::deadline_ticks;
use crate::error::WasmError;

/// The ABI version this host speaks; a guest's `weir_abi_version` must return it.
pub const ABI_VERSION: i32 = 1;

/// Log lines one call may write through `weir_log`; more are dropped so a chatty guest cannot
/// flood the process log.
const MAX_LOG_LINES_PER_CALL: u32 = 32;
/// Longest guest log line kept, in bytes.
const MAX_LOG_LINE: usize = 1024;
/// Table growth allowed to a guest (function pointers; a few thousand is plenty).
const MAX_TABLE_ELEMENTS: usize = 100_000;

/// Why a guest call failed. Each is a label value of `weir_wasm_failures_total{cause}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureCause {
    /// The guest trapped (unreachable, out-of-bounds access, stack overflow...).
    Trap,
    /// The call ran past `timeout`.
    Timeout,
    /// The guest tried to grow its memory past `memory_limit_mib`.
    OutOfMemory,
    /// The guest panicked (the SDK reports the panic through `weir_panic`, then traps).
    GuestPanic,
    /// The guest returned the error code (it could not process the batch).
    GuestError,
    /// The answer was not valid: unknown return code, output outside guest memory, a verdict
    /// that is neither 0 nor 1, a wrong verdict count, replacement bytes that do not decode.
    MalformedOutput,
    /// The answer was larger than allowed: more output bytes or more items than the input.
    OversizedOutput,
    /// The module does not export `weir_process_<signal>` for this pipeline's signal.
    MissingExport,
    /// A fresh instance could not be created or its `weir_init` failed.
    Instantiate,
}

impl FailureCause {
    /// Every cause, for registering counters up front.
    pub const ALL: [FailureCause; 9] = [
        FailureCause::Trap,
        FailureCause::Timeout,
        FailureCause::OutOfMemory,
        FailureCause::GuestPanic,
        FailureCause::GuestError,
        FailureCause::MalformedOutput,
        FailureCause::OversizedOutput,
        FailureCause::MissingExport,
        FailureCause::Instantiate,
    ];

    /// The metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureCause::Trap => "trap",
            FailureCause::Timeout => "timeout",
            FailureCause::OutOfMemory => "out_of_memory",
            FailureCause::GuestPanic => "guest_panic",
            FailureCause::GuestError => "guest_error",
            FailureCause::MalformedOutput => "malformed_output",
            FailureCause::OversizedOutput => "oversized_output",
            FailureCause::MissingExport => "missing_export",
            FailureCause::Instantiate => "instantiate",
        }
    }
}

impl fmt::Display for FailureCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed guest call: the cause and a detail for the log line.
#[derive(Debug)]
pub(crate) struct Failure {
    pub cause: FailureCause,
    pub detail: String,
}

impl Failure {
    pub(crate) fn new(cause: FailureCause, detail: impl Into<String>) -> Self {
        Failure {
            cause,
            detail: detail.into(),
        }
    }
}

/// What a successful call answered. Output slices are copied out of guest memory.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum GuestAnswer {
    /// Forward the batch as it is.
    Unchanged,
    /// One byte per item in canonical order: 1 keep, 0 drop.
    Verdicts(Vec<u8>),
    /// A replacement export request of the same signal, protobuf-encoded.
    Replacement(Vec<u8>),
}

/// Per-store state the host functions and the memory limiter see.
pub(crate) struct HostState {
    module: String,
    memory_limit: usize,
    /// Bytes of linear memory and table the instance holds, all memories and tables
    /// together: the one budget `memory_limit` caps.
    reserved: usize,
    /// Log lines left in the current rate window, and when that window started.
    log_budget: (u32, std::time::Instant),
    /// Set when the limiter refused a growth, so the resulting trap reads as out-of-memory.
    hit_memory_limit: bool,
    /// The panic message a guest reported through `weir_panic`.
    panic_message: Option<String>,
    /// The region the guest named through `weir_output` during the current call.
    output: Option<(u32, u32)>,
    log_lines: u32,
    /// The last error-level line the guest logged, quoted when `weir_init` fails.
    last_error: Option<String>,
}

impl ResourceLimiter for HostState {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self
            .reserved
            .saturating_sub(current)
            .saturating_add(desired);
        if total > self.memory_limit {
            self.hit_memory_limit = true;
            // A trap rather than a failed `memory.grow`: a Rust guest would abort on the
            // failed growth anyway, and a trap names the cause precisely.
            return Err(wasmtime::Error::msg("memory_limit_mib reached"));
        }
        self.reserved = total;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // A table element is a pointer-sized slot; tables share the memory budget.
        let size = std::mem::size_of::<usize>();
        let total = self
            .reserved
            .saturating_sub(current.saturating_mul(size))
            .saturating_add(desired.saturating_mul(size));
        if desired > MAX_TABLE_ELEMENTS || total > self.memory_limit {
            return Ok(false);
        }
        self.reserved = total;
        Ok(true)
    }
}

/// Log lines one instance may write per second (across calls); more are dropped.
const MAX_LOG_LINES_PER_SECOND: u32 = 20;

/// `text` on one line: control characters (newlines, carriage returns, escapes) written
/// as `\n`, `\r`, `\u{..}`, so guest text cannot start a line of its own or drive a
/// terminal.
pub(crate) fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&c.escape_unicode().to_string()),
            c => out.push(c),
        }
    }
    out
}

/// Reads `len` bytes at `ptr` of the caller's exported memory, or `None` when out of bounds.
fn guest_bytes(caller: &mut Caller<'_, HostState>, ptr: i32, len: i32) -> Option<Vec<u8>> {
    let memory = caller.get_export("memory")?.into_memory()?;
    let data = memory.data(&caller);
    let start = usize::try_from(ptr as u32).ok()?;
    let len = usize::try_from(len as u32).ok()?;
    data.get(start..start.checked_add(len)?).map(<[u8]>::to_vec)
}

/// The linker with the host functions of ABI v1. Nothing else is linked: no WASI, so a guest
/// importing files, sockets, clocks or the environment fails to instantiate.
pub(crate) fn linker(engine: &Engine) -> Result<Linker<HostState>, wasmtime::Error> {
    let mut linker = Linker::new(engine);
    linker.func_wrap(
        "weir",
        "weir_log",
        |mut caller: Caller<'_, HostState>, level: i32, ptr: i32, len: i32| {
            if caller.data().log_lines >= MAX_LOG_LINES_PER_CALL {
                return;
            }
            caller.data_mut().log_lines += 1;
            // Across calls too: at most MAX_LOG_LINES_PER_SECOND per instance.
            let (left, since) = caller.data().log_budget;
            let now = std::time::Instant::now();
            let left = if now.duration_since(since) >= std::time::Duration::from_secs(1) {
                caller.data_mut().log_budget = (MAX_LOG_LINES_PER_SECOND, now);
                MAX_LOG_LINES_PER_SECOND
            } else {
                left
            };
            if left == 0 {
                return;
            }
            caller.data_mut().log_budget.0 = left - 1;
            let capped = len.clamp(0, MAX_LOG_LINE as i32);
            let Some(bytes) = guest_bytes(&mut caller, ptr, capped) else {
                return;
            };
            let text = one_line(&String::from_utf8_lossy(&bytes));
            if level >= 4 {
                caller.data_mut().last_error = Some(text.clone());
            }
            // Guest output is a field of a Weir line, never the line itself: it cannot
            // forge Weir's own log lines, and it is marked with the module it came from.
            let guest = caller.data().module.as_str();
            match level {
                i32::MIN..=0 => {
                    tracing::trace!(target: "weir_wasm::guest", guest, text, "guest log")
                }
                1 => tracing::debug!(target: "weir_wasm::guest", guest, text, "guest log"),
                2 => tracing::info!(target: "weir_wasm::guest", guest, text, "guest log"),
                3 => tracing::warn!(target: "weir_wasm::guest", guest, text, "guest log"),
                _ => tracing::error!(target: "weir_wasm::guest", guest, text, "guest log"),
            }
        },
    )?;
    linker.func_wrap(
        "weir",
        "weir_output",
        |mut caller: Caller<'_, HostState>, ptr: i32, len: i32| {
            caller.data_mut().output = Some((ptr as u32, len as u32));
        },
    )?;
    linker.func_wrap(
        "weir",
        "weir_panic",
        |mut caller: Caller<'_, HostState>, ptr: i32, len: i32| {
            let capped = len.clamp(0, MAX_LOG_LINE as i32);
            let message = guest_bytes(&mut caller, ptr, capped)
                // Kept to one line: it ends up inside a log line's field.
                .map(|b| one_line(&String::from_utf8_lossy(&b)))
                .unwrap_or_else(|| "(message outside guest memory)".to_string());
            caller.data_mut().panic_message = Some(message);
        },
    )?;
    Ok(linker)
}

/// Export name of the batch entry point for `signal`.
pub(crate) fn process_export(signal: Signal) -> &'static str {
    match signal {
        Signal::Logs => "weir_process_logs",
        Signal::Traces => "weir_process_traces",
        Signal::Metrics => "weir_process_metrics",
    }
}

/// Checks that `module` exports ABI v1 (memory, version, alloc, at least one entry point with
/// the right types), without running it. Returns the signals it has entry points for.
pub(crate) fn check_exports(module: &Module, path: &str) -> Result<Vec<Signal>, WasmError> {
    use wasmtime::{ExternType, ValType};
    let abi = |message: String| WasmError::Abi {
        path: path.to_string(),
        message,
    };
    let func = |name: &str| match module.get_export(name) {
        Some(ExternType::Func(f)) => Some(f),
        _ => None,
    };
    let types = |f: &wasmtime::FuncType| {
        let p: Vec<String> = f.params().map(|t| val_name(&t)).collect();
        let r: Vec<String> = f.results().map(|t| val_name(&t)).collect();
        (p, r)
    };
    fn val_name(t: &ValType) -> String {
        match t {
            ValType::I32 => "i32".into(),
            ValType::I64 => "i64".into(),
            other => format!("{other}"),
        }
    }
    let want = |name: &str, params: &[&str], results: &[&str], required: bool| match func(name) {
        None if required => Err(abi(format!("does not export the function `{name}`"))),
        None => Ok(false),
        Some(f) => {
            let (p, r) = types(&f);
            if p != params || r != results {
                Err(abi(format!(
                    "`{name}` has type ({}) -> ({}), expected ({}) -> ({})",
                    p.join(", "),
                    r.join(", "),
                    params.join(", "),
                    results.join(", ")
                )))
            } else {
                Ok(true)
            }
        }
    };
    if !matches!(module.get_export("memory"), Some(ExternType::Memory(_))) {
        return Err(abi("does not export its linear memory as `memory`".into()));
    }
    want("weir_abi_version", &[], &["i32"], true)?;
    want("weir_alloc", &["i32"], &["i32"], true)?;
    want("weir_init", &["i32", "i32"], &["i32"], false)?;
    let mut entry_points = Vec::new();
    for signal in Signal::ALL {
        if want(process_export(signal), &["i32", "i32"], &["i32"], false)? {
            entry_points.push(signal);
        }
    }
    if entry_points.is_empty() {
        return Err(abi(
            "exports none of weir_process_logs, weir_process_traces, weir_process_metrics".into(),
        ));
    }
    Ok(entry_points)
}

/// Everything needed to make fresh instances of one module.
pub(crate) struct GuestTemplate {
    pub module_name: String,
    pub pre: InstancePre<HostState>,
    pub config_json: Vec<u8>,
    pub memory_limit: usize,
    pub timeout: Duration,
}

/// A live instance in its own store, reused across batches until a call fails.
pub(crate) struct GuestInstance {
    store: Store<HostState>,
    memory: Memory,
    alloc: TypedFunc<i32, i32>,
    process: Option<TypedFunc<(i32, i32), i32>>,
    deadline: u64,
}

impl GuestInstance {
    /// Instantiates the module, checks its ABI version and hands it its config.
    pub(crate) fn new(template: &GuestTemplate, signal: Signal) -> Result<Self, Failure> {
        let engine = template.pre.module().engine();
        let state = HostState {
            module: template.module_name.clone(),
            memory_limit: template.memory_limit,
            reserved: 0,
            log_budget: (MAX_LOG_LINES_PER_SECOND, std::time::Instant::now()),
            hit_memory_limit: false,
            panic_message: None,
            output: None,
            log_lines: 0,
            last_error: None,
        };
        let mut store = Store::new(engine, state);
        store.limiter(|s| s as &mut dyn ResourceLimiter);
        let deadline = deadline_ticks(template.timeout);
        store.set_epoch_deadline(deadline);
        let instance = template
            .pre
            .instantiate(&mut store)
            .map_err(|e| classify(&store, &e, "instantiating"))?;
        let missing = |what: &str| Failure::new(FailureCause::Instantiate, what.to_string());
        let memory = instance
            .get_memory(&mut store, "memory")
            .ok_or_else(|| missing("no memory export"))?;
        let alloc = typed(&instance, &mut store, "weir_alloc")
            .ok_or_else(|| missing("no weir_alloc export"))?;
        let version: TypedFunc<(), i32> = typed(&instance, &mut store, "weir_abi_version")
            .ok_or_else(|| missing("no weir_abi_version export"))?;
        let process = typed(&instance, &mut store, process_export(signal));
        let mut guest = GuestInstance {
            store,
            memory,
            alloc,
            process,
            deadline,
        };
        let v = guest.call(|store| version.call(store, ()), "weir_abi_version")?;
        if v != ABI_VERSION {
            return Err(Failure::new(
                FailureCause::Instantiate,
                format!("guest speaks ABI version {v}, this host speaks {ABI_VERSION}"),
            ));
        }
        let init: Option<TypedFunc<(i32, i32), i32>> =
            typed(&instance, &mut guest.store, "weir_init");
        if let Some(init) = init {
            let (ptr, len) = guest.write_input(&template.config_json)?;
            let code = guest.call(|store| init.call(store, (ptr, len)), "weir_init")?;
            if code != 0 {
                let why = match guest.store.data().last_error.as_deref() {
                    Some(line) => format!(": {line}"),
                    None => String::new(),
                };
                return Err(Failure::new(
                    FailureCause::Instantiate,
                    format!("weir_init rejected the config (code {code}){why}"),
                ));
            }
        }
        Ok(guest)
    }

    /// Whether the module has an entry point for this instance's signal.
    pub(crate) fn has_entry_point(&self) -> bool {
        self.process.is_some()
    }

    /// Runs one call with a fresh deadline and per-call state, classifying any error.
    fn call<R>(
        &mut self,
        f: impl FnOnce(&mut Store<HostState>) -> wasmtime::Result<R>,
        what: &str,
    ) -> Result<R, Failure> {
        self.store.set_epoch_deadline(self.deadline);
        let state = self.store.data_mut();
        state.output = None;
        state.log_lines = 0;
        state.last_error = None;
        f(&mut self.store).map_err(|e| classify(&self.store, &e, what))
    }

    /// Asks the guest for a buffer and copies `bytes` into it.
    fn write_input(&mut self, bytes: &[u8]) -> Result<(i32, i32), Failure> {
        let len = i32::try_from(bytes.len())
            .map_err(|_| Failure::new(FailureCause::OversizedOutput, "input larger than 2 GiB"))?;
        let alloc = self.alloc.clone();
        let ptr = self.call(|store| alloc.call(store, len), "weir_alloc")?;
        let start = ptr as u32 as usize;
        let region = self
            .memory
            .data_mut(&mut self.store)
            .get_mut(start..start + bytes.len())
            .filter(|_| ptr != 0);
        match region {
            Some(region) => {
                region.copy_from_slice(bytes);
                Ok((ptr, len))
            }
            None => Err(Failure::new(
                FailureCause::MalformedOutput,
                format!("weir_alloc({len}) returned {ptr:#x}, not a usable region of guest memory"),
            )),
        }
    }

    /// Hands the encoded batch to the guest and returns its answer. `max_output` caps the
    /// replacement bytes it may return.
    pub(crate) fn process(
        &mut self,
        input: &[u8],
        max_output: usize,
    ) -> Result<GuestAnswer, Failure> {
        let Some(process) = self.process.clone() else {
            return Err(Failure::new(
                FailureCause::MissingExport,
                "the module has no entry point for this signal",
            ));
        };
        let (ptr, len) = self.write_input(input)?;
        let code = self.call(|store| process.call(store, (ptr, len)), "processing")?;
        let output = self.store.data().output;
        let read = |guest: &Self, limit: usize| -> Result<Vec<u8>, Failure> {
            let Some((ptr, len)) = output else {
                return Err(Failure::new(
                    FailureCause::MalformedOutput,
                    format!("returned code {code} without calling weir_output"),
                ));
            };
            let (start, len) = (ptr as usize, len as usize);
            if len > limit {
                return Err(Failure::new(
                    FailureCause::OversizedOutput,
                    format!("answered {len} bytes, the limit for this batch is {limit}"),
                ));
            }
            guest
                .memory
                .data(&guest.store)
                .get(start..start + len)
                .map(<[u8]>::to_vec)
                .ok_or_else(|| {
                    Failure::new(
                        FailureCause::MalformedOutput,
                        format!("output at {start:#x}+{len} lies outside guest memory"),
                    )
                })
        };
        match code {
            0 => Ok(GuestAnswer::Unchanged),
            1 => read(self, usize::MAX).map(GuestAnswer::Verdicts),
            2 => read(self, max_output).map(GuestAnswer::Replacement),
            -1 => {
                let state = self.store.data();
                Err(match (&state.panic_message, &state.last_error) {
                    (Some(panic), _) => Failure::new(FailureCause::GuestPanic, panic.clone()),
                    (None, Some(line)) => Failure::new(
                        FailureCause::GuestError,
                        format!("the guest could not process the batch: {line}"),
                    ),
                    (None, None) => Failure::new(
                        FailureCause::GuestError,
                        "the guest reported that it could not process the batch",
                    ),
                })
            }
            other => Err(Failure::new(
                FailureCause::MalformedOutput,
                format!("unknown return code {other}"),
            )),
        }
    }
}

fn typed<P: wasmtime::WasmParams, R: wasmtime::WasmResults>(
    instance: &Instance,
    store: &mut Store<HostState>,
    name: &str,
) -> Option<TypedFunc<P, R>> {
    instance.get_typed_func::<P, R>(&mut *store, name).ok()
}

/// Names the cause of a failed call from what the store saw and what wasmtime returned.
fn classify(store: &Store<HostState>, e: &wasmtime::Error, what: &str) -> Failure {
    let state = store.data();
    if state.hit_memory_limit {
        return Failure::new(
            FailureCause::OutOfMemory,
            format!("{what}: grew past memory_limit_mib"),
        );
    }
    if let Some(message) = &state.panic_message {
        return Failure::new(FailureCause::GuestPanic, format!("{what}: {message}"));
    }
    match e.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => {
            Failure::new(FailureCause::Timeout, format!("{what}: ran past timeout"))
        }
        Some(trap) => Failure::new(FailureCause::Trap, format!("{what}: {trap}")),
        None if what == "instantiating" => {
            Failure::new(FailureCause::Instantiate, format!("{what}: {e}"))
        }
        None => Failure::new(FailureCause::Trap, format!("{what}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[test]
    fn guest_text_stays_on_one_line() {
        assert_eq!(
            one_line("ok\n2026-01-01T00:00:00Z ERROR weir: forged\r\x1b[31m"),
            "ok\\n2026-01-01T00:00:00Z ERROR weir: forged\\r\\u{1b}[31m"
        );
        assert_eq!(one_line("plain ünïcode"), "plain ünïcode");
    }
}
