//! The `weir` binary: parses the command line and hands over to the engine.

use clap::Parser;

mod allocator;

fn main() -> std::process::ExitCode {
    weir_processors::memory_limiter::set_memory_release(allocator::release);
    let cli = weir::cli::Cli::parse();
    weir::cli::run(cli)
}
