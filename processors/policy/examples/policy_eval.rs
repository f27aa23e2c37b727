//! `weir policy ...` as a standalone program, for running the conformance suite against this
//! crate alone: `policy_eval eval --policies P --input I --output O --stats S --signal log`.

use clap::Parser;
use weir_policy::cli::{run, PolicyCommand};

#[derive(Parser)]
#[command(name = "policy_eval")]
struct Args {
    #[command(subcommand)]
    command: PolicyCommand,
}

fn main() -> std::process::ExitCode {
    run(Args::parse().command)
}
