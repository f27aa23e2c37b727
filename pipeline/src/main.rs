//! The `weir` binary: parses the command line and hands over to the engine.

use clap::Parser;

// The hot path allocates and frees many small objects per record (decoded strings, attribute
// vectors); glibc's malloc spent a third of the policy stage's time in its own bookkeeping
// (BENCHMARKS.md). mimalloc's per-thread free lists make that a small share. Its arenas are
// committed as used, not up front (.cargo/config.toml), so RSS stays as with glibc.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = weir::cli::Cli::parse();
    weir::cli::run(cli)
}
