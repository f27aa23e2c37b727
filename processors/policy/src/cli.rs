//! `weir policy ...`: run the policy engine on files.
//!
//! `weir policy eval --policies P --input I --output O --stats S --signal log|metric|trace`
//! evaluates one OTLP/JSON batch with the same engine as the `policy` processor and writes
//! what survives (OTLP/JSON) and per-policy statistics:
//! `{"policies": [{"policy_id", "hits", "misses" (omitted when 0), "errors" (omitted when
//! none)}]}`, sorted by id, listing the policies that matched something or have errors.
//!
//! `weir policy validate --policies P` lists every problem of every policy and exits 1 when
//! there is any.

use std::path::PathBuf;
use std::process::ExitCode;

use serde::Serialize;
use weir_api::{json, Batch, Signal};

use crate::load::load_path;
use weir_policy_engine::set::PolicySet;
use weir_policy_engine::stats::StatsRegistry;

/// `weir policy` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum PolicyCommand {
    /// Evaluate policies on one OTLP/JSON batch.
    Eval(EvalArgs),
    /// Check policy files and list every problem.
    Validate(ValidateArgs),
}

/// The signal of the input batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SignalArg {
    /// Logs.
    Log,
    /// Metrics.
    Metric,
    /// Traces.
    Trace,
}

/// Arguments of `weir policy eval`.
#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// Policy file (`{"policies": [...]}`, a list, or one policy; YAML or JSON) or directory.
    #[arg(long)]
    pub policies: PathBuf,
    /// OTLP/JSON export request to evaluate.
    #[arg(long)]
    pub input: PathBuf,
    /// Where to write the surviving telemetry (OTLP/JSON).
    #[arg(long)]
    pub output: PathBuf,
    /// Where to write per-policy statistics (JSON).
    #[arg(long)]
    pub stats: Option<PathBuf>,
    /// Signal of the input.
    #[arg(long, value_enum)]
    pub signal: SignalArg,
}

/// Arguments of `weir policy validate`.
#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// Policy file or directory.
    #[arg(long)]
    pub policies: PathBuf,
}

/// Why `eval` failed.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The input is not OTLP/JSON of the signal.
    #[error("{path}: {source}")]
    Input {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: json::JsonError,
    },
    /// The policy path could not be read at all.
    #[error("{0}")]
    Policies(#[from] crate::load::LoadError),
}

/// One line of the stats file.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct PolicyStatsLine {
    /// Policy id.
    pub policy_id: String,
    /// Match hits.
    pub hits: u64,
    /// Match misses, omitted when 0.
    #[serde(skip_serializing_if = "is_zero")]
    pub misses: u64,
    /// Parse and compile errors, omitted when none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The stats file's content.
#[derive(Debug, Serialize)]
pub struct StatsFile {
    /// Policies that matched something or have errors, sorted by id.
    pub policies: Vec<PolicyStatsLine>,
}

/// Builds the stats of a set (entries are already sorted by id).
pub fn stats_of(set: &PolicySet) -> StatsFile {
    let policies = set
        .entries
        .iter()
        .filter(|e| e.enabled)
        .filter_map(|e| {
            let (hits, misses) = e.stats.counts();
            (hits + misses > 0 || !e.errors.is_empty()).then(|| PolicyStatsLine {
                policy_id: e.id.clone(),
                hits,
                misses,
                errors: e.errors.clone(),
            })
        })
        .collect();
    StatsFile { policies }
}

fn read(path: &PathBuf) -> Result<Vec<u8>, EvalError> {
    std::fs::read(path).map_err(|source| EvalError::Io {
        path: path.clone(),
        source,
    })
}

fn write(path: &PathBuf, bytes: &[u8]) -> Result<(), EvalError> {
    std::fs::write(path, bytes).map_err(|source| EvalError::Io {
        path: path.clone(),
        source,
    })
}

/// Runs `eval`.
pub fn eval(args: &EvalArgs) -> Result<StatsFile, EvalError> {
    let loaded = load_path(&args.policies);
    for e in &loaded.errors {
        eprintln!("warning: {e}");
    }
    if loaded.policies.is_empty() {
        if let Some(e) = loaded.errors.into_iter().next() {
            return Err(e.into());
        }
    }
    let set = PolicySet::build(loaded.policies, &StatsRegistry::new());
    let body = read(&args.input)?;
    let input_err = |source| EvalError::Input {
        path: args.input.clone(),
        source,
    };
    let signal = match args.signal {
        SignalArg::Log => Signal::Logs,
        SignalArg::Metric => Signal::Metrics,
        SignalArg::Trace => Signal::Traces,
    };
    let payload = json::decode(signal, &body).map_err(input_err)?;
    // Evaluated as a receiver hands a request on: protobuf bytes, checked, not decoded, so
    // the evaluation on the bytes (raw_logs, raw_traces) is what the conformance cases
    // exercise.
    let mut batch = match Batch::decode(signal, payload.encode_to_vec().into()) {
        Ok(batch) => batch,
        // Not reached: prost's own encoding always passes the check.
        Err(_) => Batch::new(payload),
    };
    weir_policy_engine::run::process(&set, &mut batch, false);
    let out = json::encode(batch.payload());
    write(&args.output, &out)?;
    let stats = stats_of(&set);
    if let Some(p) = &args.stats {
        // Serializing plain strings and numbers cannot fail.
        let text = serde_json::to_vec(&stats).unwrap_or_default();
        write(p, &text)?;
    }
    Ok(stats)
}

/// Runs `validate`: prints each problem, returns how many policies are invalid.
pub fn validate(args: &ValidateArgs) -> usize {
    let loaded = load_path(&args.policies);
    let mut bad = loaded.errors.len();
    for e in &loaded.errors {
        println!("{e}");
    }
    let set = PolicySet::build(loaded.policies, &StatsRegistry::new());
    for e in &set.entries {
        for err in &e.errors {
            println!("{}: {err}", e.id);
        }
        if !e.errors.is_empty() {
            bad += 1;
        }
    }
    println!(
        "{} policies, {} valid, {} with problems",
        set.entries.len(),
        set.entries.iter().filter(|e| e.errors.is_empty()).count(),
        bad
    );
    bad
}

/// Runs a `weir policy` subcommand.
pub fn run(cmd: PolicyCommand) -> ExitCode {
    match cmd {
        PolicyCommand::Eval(args) => match eval(&args) {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        PolicyCommand::Validate(args) => {
            if validate(&args) == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
