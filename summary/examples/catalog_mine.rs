//! `weir catalog mine` without the `weir` binary, for trying the miner on a file:
//!
//! ```text
//! cargo run --release -p weir-summary --example catalog_mine -- app.log [--assignments]
//! ```

use clap::Parser;
use weir_summary::cli::{run, CatalogCommand, MineArgs};

/// Mine log templates from a file and print them with their counts.
#[derive(Parser)]
#[command(name = "catalog_mine")]
struct Cli {
    #[command(flatten)]
    args: MineArgs,
}

fn main() -> std::process::ExitCode {
    run(CatalogCommand::Mine(Cli::parse().args))
}
