//! `weir catalog mine`: the template miner on a file, for trying it on real logs.
//!
//! ```text
//! weir catalog mine app.log                 # templates with counts, most frequent first
//! weir catalog mine app.log --assignments   # one template id per input line, in order
//! ```
//!
//! Input is a plain log file (one message per line) or OTLP/JSON lines (one
//! `ExportLogsServiceRequest` per line, as the collector's file exporter writes); each line
//! is taken as OTLP/JSON when it starts with `{` and decodes as such, and then each of its
//! log records' bodies is mined (so `--assignments` prints one id per record). `-` reads
//! standard input.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use weir_api::otlp::common::v1::any_value::Value;

use crate::drain::{MinerConfig, TemplateMiner};
use crate::error::MetadataError;

/// The `weir catalog` subcommands of this crate.
#[derive(Debug, clap::Subcommand)]
pub enum CatalogCommand {
    /// Mine log templates from a file and print them with their counts.
    Mine(MineArgs),
}

/// Arguments of `weir catalog mine`.
#[derive(Debug, Clone, clap::Args)]
pub struct MineArgs {
    /// Log file: plain text (one message per line) or OTLP/JSON lines; `-` for stdin.
    pub file: PathBuf,
    /// Print, for each input line (or OTLP log record) in order, the id of its template.
    #[arg(long)]
    pub assignments: bool,
    /// Templates kept at most (least recently seen evicted beyond).
    #[arg(long, default_value_t = 100_000)]
    pub max_templates: usize,
    /// Share of word tokens that must agree for a line to join a template.
    #[arg(long, default_value_t = MinerConfig::default().similarity_threshold)]
    pub similarity_threshold: f64,
}

/// Runs a `weir catalog` subcommand of this crate; errors go to stderr.
pub fn run(cmd: CatalogCommand) -> ExitCode {
    match cmd {
        CatalogCommand::Mine(args) => match run_mine(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("weir catalog mine: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

/// `weir catalog mine` on the file named in `args`, printing to stdout.
pub fn run_mine(args: &MineArgs) -> Result<(), MetadataError> {
    let stdout = io::stdout();
    let out = BufWriter::new(stdout.lock());
    if args.file.as_os_str() == "-" {
        mine(io::stdin().lock(), args, out)
    } else {
        let file = File::open(&args.file).map_err(|source| MetadataError::Read {
            path: args.file.clone(),
            source,
        })?;
        mine(BufReader::new(file), args, out)
    }
}

/// Mines every line of `input` and writes the templates (or assignments) to `out`.
pub fn mine(
    mut input: impl BufRead,
    args: &MineArgs,
    mut out: impl Write,
) -> Result<(), MetadataError> {
    let mut miner = TemplateMiner::new(MinerConfig {
        max_templates: args.max_templates.max(1),
        similarity_threshold: args.similarity_threshold,
        ..MinerConfig::default()
    });
    let read_err = |source| MetadataError::Read {
        path: args.file.clone(),
        source,
    };
    let mut raw = Vec::with_capacity(4096);
    loop {
        raw.clear();
        if input.read_until(b'\n', &mut raw).map_err(read_err)? == 0 {
            break;
        }
        let line = String::from_utf8_lossy(&raw);
        let line = line.trim_end_matches(['\n', '\r']);
        let otlp = line
            .trim_start()
            .starts_with('{')
            .then(|| weir_api::json::decode_logs(line.as_bytes()).ok())
            .flatten();
        match otlp {
            Some(req) => {
                let records = req
                    .resource_logs
                    .iter()
                    .flat_map(|r| &r.scope_logs)
                    .flat_map(|s| &s.log_records);
                for r in records {
                    let body = match r.body.as_ref().and_then(|b| b.value.as_ref()) {
                        Some(Value::StringValue(s)) => s.as_str(),
                        _ => "",
                    };
                    let a = miner.add(body);
                    if args.assignments {
                        writeln!(out, "{}", a.id).map_err(MetadataError::Write)?;
                    }
                }
            }
            None => {
                let a = miner.add(line);
                if args.assignments {
                    writeln!(out, "{}", a.id).map_err(MetadataError::Write)?;
                }
            }
        }
    }
    if !args.assignments {
        let mut templates = miner.templates();
        templates.sort_by(|a, b| b.2.cmp(&a.2).then(a.1.cmp(&b.1)));
        for (_, id, count, text) in templates {
            writeln!(out, "{count}\t{id}\t{text}").map_err(MetadataError::Write)?;
        }
    }
    out.flush().map_err(MetadataError::Write)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(assignments: bool) -> MineArgs {
        MineArgs {
            file: PathBuf::from("test.log"),
            assignments,
            max_templates: 100,
            similarity_threshold: 0.6,
        }
    }

    const PLAIN: &str = "Connected to 10.0.0.1 in 12 ms\n\
        disk full on node7\n\
        Connected to 10.0.0.9 in 3 ms\r\n\
        Connected to 10.0.0.4 in 5 ms";

    #[test]
    fn prints_templates_by_count() {
        let mut out = Vec::new();
        mine(PLAIN.as_bytes(), &args(false), &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "3\t1\tConnected to <*> in <*> ms\n1\t2\tdisk full on <*>\n"
        );
    }

    #[test]
    fn prints_one_assignment_per_line() {
        let mut out = Vec::new();
        mine(PLAIN.as_bytes(), &args(true), &mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "1\n2\n1\n1\n");
    }

    #[test]
    fn reads_otlp_json_lines() {
        let line = r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"stringValue":"user 42 logged out"}},{"body":{"stringValue":"user 7 logged out"}}]}]}]}"#;
        let input = format!("{line}\nplain line here\n");
        let mut out = Vec::new();
        mine(input.as_bytes(), &args(true), &mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "1\n1\n2\n");
    }

    #[test]
    fn missing_file_names_the_file() {
        let a = MineArgs {
            file: PathBuf::from("/nonexistent/x.log"),
            ..args(false)
        };
        let e = run_mine(&a).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("cannot read /nonexistent/x.log: "),
            "{e}"
        );
    }
}
