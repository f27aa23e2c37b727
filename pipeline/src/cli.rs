//! The command line: `weir [run] --config FILE... --set k=v`, `weir validate`,
//! `weir components`, `weir print-config`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use weir_api::{ConfigErrors, Registry, Signal, SignalSet};

use crate::config::{
    self, ConfigSource, LoadedConfig, LogEncoding, LogLevel, ProcessResolver, ValidatedConfig,
};
use crate::logging;
use crate::runtime::{self, RunSettings, Stopped};

/// Weir: an OpenTelemetry-native telemetry pipeline.
#[derive(Debug, Parser)]
#[command(name = "weir", version, about, args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// Running without a subcommand is `weir run`.
    #[command(flatten)]
    pub run: RunArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The collector's feature gates (`--feature-gates=+gate,-other`). Weir has none: each
    /// gate named is accepted and reported as ignored, so collector command lines run.
    #[arg(
        long = "feature-gates",
        value_name = "GATES",
        global = true,
        value_delimiter = ','
    )]
    pub feature_gates: Vec<String>,
}

/// Where the config comes from.
#[derive(Debug, Args, Clone, Default)]
pub struct ConfigArgs {
    /// A config file (or `file:PATH`, `env:VAR`, `yaml:INLINE`); repeat to merge several in
    /// order. Without it, the built-in configs/default.yaml is used.
    #[arg(long = "config", value_name = "FILE")]
    pub config: Vec<String>,
    /// Override one value after merging, e.g. `processors.batch.timeout=2s`; repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

/// Arguments of `weir run`.
#[derive(Debug, Args, Clone)]
pub struct RunArgs {
    /// The config.
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Longest time a shutdown (flush and drain) may take after SIGTERM/SIGINT.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    pub shutdown_timeout: Duration,
}

/// Subcommands. Other crates provide theirs as clap `Subcommand` enums (`weir policy ...`
/// from weir-policy; `weir catalog ...` from the catalog crate goes here the same way), each
/// dispatched in [`run`].
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the pipelines (the default).
    Run(RunArgs),
    /// Check a config and list every problem, one per line as `path: message`.
    Validate(ConfigArgs),
    /// List the component types compiled in, with the signals each handles.
    Components,
    /// Print the merged, expanded config with secrets redacted.
    PrintConfig(ConfigArgs),
    /// Evaluate and check policies with the policy engine (weir-policy).
    #[command(subcommand)]
    Policy(weir_policy::cli::PolicyCommand),
    /// The catalog: `report` (top findings), `mine` (templates of a log file),
    /// `delete-service`.
    #[command(subcommand)]
    Catalog(weir_catalog::cli::CatalogCommand),
    /// Control-plane administration: API tokens and the audit log.
    #[command(subcommand)]
    Admin(weir_catalog::cli::AdminCommand),
    /// Run a WASM processor module on a file (`weir wasm run`).
    #[command(subcommand)]
    Wasm(WasmCommand),
}

/// `weir wasm ...`.
#[derive(Debug, Subcommand)]
pub enum WasmCommand {
    /// Run a module on one OTLP batch from a file, as the `wasm` processor would, write the
    /// result and print the verdict counts (kept, dropped, replaced).
    Run(WasmRunArgs),
}

/// Arguments of `weir wasm run`.
#[derive(Debug, Args)]
pub struct WasmRunArgs {
    /// The `.wasm` module.
    #[arg(long)]
    pub module: PathBuf,
    /// The batch's signal: logs, traces or metrics.
    #[arg(long)]
    pub signal: String,
    /// The input batch: OTLP/JSON (`.json`) or protobuf (`.pb`, `.bin`, `.binpb`).
    #[arg(long)]
    pub input: PathBuf,
    /// Where the result goes, encoded by its extension like the input.
    #[arg(long)]
    pub output: PathBuf,
    /// Encoding of both files when their extensions do not say: json or protobuf.
    #[arg(long)]
    pub format: Option<String>,
    /// The guest config (the processor's `config:`) as JSON.
    #[arg(long, default_value = "null")]
    pub config: String,
    /// Deadline for the call (and for init).
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

fn wasm_run(args: &WasmRunArgs) -> Result<String, String> {
    use weir_wasm::FileFormat;
    let signal = match args.signal.as_str() {
        "logs" => Signal::Logs,
        "traces" => Signal::Traces,
        "metrics" => Signal::Metrics,
        other => {
            return Err(format!(
                "--signal: `{other}` is not logs, traces or metrics"
            ))
        }
    };
    let forced = match args.format.as_deref() {
        None => None,
        Some("json") => Some(FileFormat::Json),
        Some("protobuf" | "proto" | "pb") => Some(FileFormat::Protobuf),
        Some(other) => return Err(format!("--format: `{other}` is not json or protobuf")),
    };
    let format_of = |flag: &str, path: &PathBuf| {
        FileFormat::from_path(path).or(forced).ok_or_else(|| {
            format!(
                "{flag} {}: cannot tell the encoding from the extension (.json or .pb); \
                 give --format json|protobuf",
                path.display()
            )
        })
    };
    let in_format = format_of("--input", &args.input)?;
    let out_format = format_of("--output", &args.output)?;
    let config: serde_json::Value =
        serde_json::from_str(&args.config).map_err(|e| format!("--config is not JSON: {e}"))?;
    let input =
        std::fs::read(&args.input).map_err(|e| format!("--input {}: {e}", args.input.display()))?;
    let (out, counts) = weir_wasm::run_file(
        &args.module,
        config,
        signal,
        &input,
        in_format,
        out_format,
        args.timeout,
    )?;
    std::fs::write(&args.output, out)
        .map_err(|e| format!("--output {}: {e}", args.output.display()))?;
    Ok(format!(
        "{} items in: kept {}, dropped {}, replaced {}",
        counts.input, counts.kept, counts.dropped, counts.replaced
    ))
}

fn print_errors(errors: &ConfigErrors) {
    for e in &errors.0 {
        eprintln!("{e}");
    }
}

/// Loads the sources with a temporary stderr logger, so that expansion warnings (an unset
/// variable) are shown before the configured logger exists.
fn load(args: &ConfigArgs) -> Result<LoadedConfig, ConfigErrors> {
    let sources: Vec<ConfigSource> = args
        .config
        .iter()
        .map(|a| ConfigSource::from_arg(a))
        .collect();
    let subscriber = logging::subscriber(LogLevel::Warn, LogEncoding::Console);
    tracing::subscriber::with_default(subscriber, || {
        config::load(&sources, &args.set, &ProcessResolver)
    })
}

fn load_and_validate(
    args: &ConfigArgs,
    registry: &Registry,
) -> Result<(LoadedConfig, ValidatedConfig), ConfigErrors> {
    let loaded = load(args)?;
    let validated = config::validate(&loaded.tree, registry)?;
    Ok((loaded, validated))
}

/// The stability level `weir components` shows for a component type: Weir's own
/// assessment, in the Collector's words (`Beta` for the core path, `Deprecated` for
/// aliases kept for old configs, `Alpha` for the rest).
fn stability(kind: &str, name: &str) -> &'static str {
    match (kind, name) {
        ("receiver", "otlp" | "nop")
        | ("processor", "batch" | "memory_limiter")
        | (
            "exporter",
            "otlp" | "otlp_grpc" | "otlphttp" | "otlp_http" | "debug" | "file" | "nop",
        )
        | ("extension", "health_check") => "Beta",
        ("exporter", "logging") => "Deprecated",
        _ => "Alpha",
    }
}

fn signal_stability(out: &mut String, kind: &str, name: &str, signals: SignalSet) {
    out.push_str(&format!(
        "    - name: {name}\n      module: weir {}\n      stability:\n",
        env!("CARGO_PKG_VERSION")
    ));
    for s in [Signal::Logs, Signal::Metrics, Signal::Traces] {
        let level = if signals.contains(s) {
            stability(kind, name)
        } else {
            "Undefined"
        };
        out.push_str(&format!("        {}: {level}\n", s.as_str()));
    }
}

/// The `weir components` text: the Collector's `components` YAML (build info, then each
/// kind's types sorted by name with the stability per signal or signal pair; `Undefined`
/// where a type does not handle one), and the config providers.
pub fn components_text(registry: &Registry) -> String {
    let mut out = format!(
        "buildinfo:\n    command: weir\n    description: Weir, an OpenTelemetry-native telemetry pipeline\n    version: {}\n",
        env!("CARGO_PKG_VERSION")
    );
    out.push_str("receivers:\n");
    for (name, f) in &registry.receivers {
        signal_stability(&mut out, "receiver", name, f.signals());
    }
    out.push_str("processors:\n");
    for (name, f) in &registry.processors {
        signal_stability(&mut out, "processor", name, f.signals());
    }
    out.push_str("exporters:\n");
    for (name, f) in &registry.exporters {
        signal_stability(&mut out, "exporter", name, f.signals());
    }
    out.push_str("connectors:\n");
    for (name, f) in &registry.connectors {
        out.push_str(&format!(
            "    - name: {name}\n      module: weir {}\n      stability:\n",
            env!("CARGO_PKG_VERSION")
        ));
        let pairs = f.pairs();
        for from in [Signal::Logs, Signal::Metrics, Signal::Traces] {
            for to in [Signal::Logs, Signal::Metrics, Signal::Traces] {
                let level = if pairs.contains(&(from, to)) {
                    stability("connector", name)
                } else {
                    "Undefined"
                };
                out.push_str(&format!(
                    "        {}-to-{}: {level}\n",
                    from.as_str(),
                    to.as_str()
                ));
            }
        }
    }
    out.push_str("extensions:\n");
    for name in registry.extensions.keys() {
        out.push_str(&format!(
            "    - name: {name}\n      module: weir {}\n      stability:\n        extension: {}\n",
            env!("CARGO_PKG_VERSION"),
            stability("extension", name)
        ));
    }
    out.push_str("providers:\n");
    for scheme in ["env", "file", "http", "https", "yaml"] {
        out.push_str(&format!(
            "    - scheme: {scheme}\n      module: weir {}\n",
            env!("CARGO_PKG_VERSION")
        ));
    }
    out
}

fn run_service(args: &RunArgs, registry: &Registry) -> ExitCode {
    let (loaded, validated) = match load_and_validate(&args.config, registry) {
        Ok(v) => v,
        Err(errors) => {
            print_errors(&errors);
            return ExitCode::FAILURE;
        }
    };
    logging::init(
        validated.telemetry.log_level,
        validated.telemetry.log_encoding,
    );
    let tokio = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let settings = RunSettings {
        shutdown_timeout: args.shutdown_timeout,
        force_on_second_signal: true,
    };
    let result = tokio.block_on(runtime::run(
        &validated,
        loaded.base_dir,
        settings,
        runtime::termination_signal(),
    ));
    // Components may leave tasks that would outlive the deadline; do not wait for them.
    tokio.shutdown_timeout(Duration::from_millis(100));
    match result {
        Ok(Stopped::Clean) => ExitCode::SUCCESS,
        Ok(Stopped::DeadlineExceeded | Stopped::Forced) => ExitCode::FAILURE,
        Err(e) => {
            tracing::error!(error = %e, "Weir could not run");
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> ExitCode {
    let registry = crate::registry();
    let gates: Vec<&str> = cli
        .feature_gates
        .iter()
        .map(|g| g.trim())
        .filter(|g| !g.is_empty())
        .collect();
    if !gates.is_empty() {
        eprintln!(
            "weir: --feature-gates: Weir has no feature gates; ignored: {}",
            gates.join(", ")
        );
    }
    match cli.command {
        None => run_service(&cli.run, &registry),
        Some(Command::Run(args)) => run_service(&args, &registry),
        Some(Command::Validate(args)) => match load_and_validate(&args, &registry) {
            Ok((_, v)) => {
                println!("the config is valid: {} pipeline(s)", v.pipelines.len());
                ExitCode::SUCCESS
            }
            Err(errors) => {
                print_errors(&errors);
                ExitCode::FAILURE
            }
        },
        Some(Command::Policy(cmd)) => weir_policy::cli::run(cmd),
        Some(Command::Catalog(cmd)) => weir_catalog::cli::run_catalog(cmd),
        Some(Command::Admin(cmd)) => weir_catalog::cli::run_admin(cmd),
        Some(Command::Wasm(WasmCommand::Run(args))) => match wasm_run(&args) {
            Ok(summary) => {
                println!("{summary}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("weir wasm run: {e}");
                ExitCode::FAILURE
            }
        },
        Some(Command::Components) => {
            print!("{}", components_text(&registry));
            ExitCode::SUCCESS
        }
        Some(Command::PrintConfig(args)) => match load(&args) {
            Ok(mut loaded) => {
                config::redact(&mut loaded.tree);
                match serde_saphyr::to_string(&loaded.tree) {
                    Ok(text) => {
                        print!("{text}");
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("cannot print the config: {e}");
                        ExitCode::FAILURE
                    }
                }
            }
            Err(errors) => {
                print_errors(&errors);
                ExitCode::FAILURE
            }
        },
    }
}
