//! The weir binary's allocator, and the one place Weir calls into it directly.
//!
//! The hot path allocates and frees many small objects per record (decoded strings, attribute
//! vectors); glibc's malloc spent a third of the policy stage's time in its own bookkeeping
//! (a perf profile of 2026-11-29, in BENCHMARKS.md of that date). mimalloc's per-thread free
//! lists make that a small share. Its arenas are committed as used, not up front
//! (.cargo/config.toml), so RSS stays as with glibc.
//!
//! mimalloc keeps pages whose data was freed resident until the thread that owns them
//! allocates again, and returns free arena memory to the OS only after a delay and only when
//! some thread allocates. `memory_limiter` limits resident memory, so after a backlog drained
//! those retained pages kept it refusing data for seconds with nothing queued. [`release`],
//! installed with `memory_limiter::set_memory_release`, hands them back when a reading is
//! above the soft limit.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

// The only function declared here. mimalloc.h (the v3 sources vendored by libmimalloc-sys
// 0.1.49): `void mi_collect(bool force)`. The symbol is in the static library that the
// `mimalloc` crate links for the global allocator above, so it is always present in this
// binary. Declared directly rather than through libmimalloc-sys's `extended` feature, which
// would add a dependency for this one symbol.
#[allow(unsafe_code)]
extern "C" {
    fn mi_collect(force: bool);
}

/// Returns freed memory to the OS: frees the calling thread's empty pages and, with `force`,
/// purges every arena's free memory at once (process-wide, not only this thread's) instead of
/// after mimalloc's purge delay.
#[allow(unsafe_code)]
pub fn release() {
    // SAFETY: mi_collect takes no pointers and has no preconditions: it may be called from any
    // thread at any time (it only visits the calling thread's heap and the shared arenas,
    // under mimalloc's own synchronisation). Rust's `bool` has the ABI of C's `bool`, the
    // argument's type in the C declaration.
    unsafe { mi_collect(true) }
}
