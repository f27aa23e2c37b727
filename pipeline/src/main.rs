//! The `weir` binary: parses the command line and hands over to the engine.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = weir::cli::Cli::parse();
    weir::cli::run(cli)
}
