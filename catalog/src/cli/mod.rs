//! `weir catalog ...`, `weir admin ...` and `weir audit ...`: the control plane from the
//! command line, on the same SQLite file the `control_plane` extension serves.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::control::ControlPlane;

mod admin;

pub use admin::{run_admin, AdminCommand, AuditCommand, TokenCommand, UserCommand};

/// `weir catalog ...`.
#[derive(Debug, clap::Subcommand)]
pub enum CatalogCommand {
    /// Print the top findings as a table (service, what, volume, est. saving, policy id).
    Report {
        /// The catalog's SQLite file.
        #[arg(long)]
        db: PathBuf,
        /// How many findings to show.
        #[arg(long, default_value_t = 20)]
        top: usize,
    },
    /// Build the catalog from an existing system, read-only (GET requests only).
    #[command(subcommand)]
    Connect(ConnectCommand),
    /// Mine templates from a plain log file or OTLP JSON lines (see weir-summary).
    Mine(weir_summary::cli::MineArgs),
    /// Print everything the catalog holds about a service as JSON (data subject access
    /// and portability; audited as `cli`).
    ExportService {
        /// The catalog's SQLite file.
        #[arg(long)]
        db: PathBuf,
        /// The service.name.
        service: String,
    },
    /// Erase every stored trace of one attribute or metric value, found by its keyed
    /// hashes (exact sketches lose it, HyperLogLog sketches it may have touched are
    /// emptied, metric constant checks holding it are forgotten; audited by fingerprint).
    EraseValue {
        /// The catalog's SQLite file.
        #[arg(long)]
        db: PathBuf,
        /// The value, as text (also tried as an int, a double and a bool).
        value: String,
    },
    /// Delete everything the catalog holds about a service (audited as `cli`).
    DeleteService {
        /// The catalog's SQLite file.
        #[arg(long)]
        db: PathBuf,
        /// The service.name.
        service: String,
    },
}

/// `weir catalog connect ...`.
#[derive(Debug, clap::Subcommand)]
pub enum ConnectCommand {
    /// Read a Prometheus server's series per metric, job and label, metric metadata, rules
    /// and targets with GET requests only (never label values: they are counted in memory),
    /// store the snapshot in the catalog and print its findings (docs/PROMETHEUS-CATALOG.md).
    Prometheus(PrometheusArgs),
}

/// `weir catalog connect prometheus URL`.
#[derive(Debug, clap::Args)]
pub struct PrometheusArgs {
    /// The server's base URL, e.g. http://prometheus:9090 (with its path prefix, if any).
    pub url: String,
    /// The catalog's SQLite file (created if missing, with its key).
    #[arg(long)]
    pub db: PathBuf,
    /// The database key file (default: $WEIR_CATALOG_KEY_FILE, else <db>.key).
    #[arg(long)]
    pub key_file: Option<PathBuf>,
    /// Basic authentication user name (with --password-file).
    #[arg(long)]
    pub username: Option<String>,
    /// File holding the basic authentication password.
    #[arg(long)]
    pub password_file: Option<PathBuf>,
    /// File holding a bearer token.
    #[arg(long)]
    pub bearer_token_file: Option<PathBuf>,
    /// CA certificate file for https:// (default: the system's trusted roots).
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
    /// Cap on one API answer in bytes.
    #[arg(long, default_value_t = crate::prometheus::DEFAULT_MAX_RESPONSE_BYTES)]
    pub max_response_bytes: usize,
    /// Timeout of one request.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub timeout: std::time::Duration,
    /// How many findings to print.
    #[arg(long, default_value_t = 20)]
    pub top: usize,
}

/// With this set (a `postgres://` URL), `weir admin` and `weir catalog` commands work on the
/// control plane's PostgreSQL store (`control_plane.postgres.url`); `--db` then names the
/// key files (`<db>.audit-key`, `<db>.sketch-key`), as `storage` does in the config.
pub const POSTGRES_URL_ENV: &str = "WEIR_POSTGRES_URL";

/// With this set too (a PEM CA file), those commands reach the database over TLS only,
/// checking its certificate against that CA (as `control_plane.postgres.tls.ca_file`).
pub const POSTGRES_CA_ENV: &str = "WEIR_POSTGRES_CA_FILE";

pub(super) fn postgres_url() -> Option<String> {
    std::env::var(POSTGRES_URL_ENV)
        .ok()
        .filter(|u| !u.trim().is_empty())
}

pub(super) fn open(db: &std::path::Path) -> Result<ControlPlane, String> {
    if postgres_url().is_none() && !db.exists() {
        return Err(format!("{}: no such catalog file", db.display()));
    }
    open_or_create(db)
}

/// Opens the store, creating a SQLite file that is not there yet.
pub(super) fn open_or_create(db: &std::path::Path) -> Result<ControlPlane, String> {
    match postgres_url() {
        Some(url) => {
            let tls = match std::env::var(POSTGRES_CA_ENV)
                .ok()
                .filter(|f| !f.is_empty())
            {
                Some(ca) => weir_tls::TlsClientSettings {
                    ca_file: Some(ca),
                    ..Default::default()
                }
                .load(POSTGRES_CA_ENV, |p: &str| std::path::PathBuf::from(p))
                .map_err(|e| e.to_string())?
                .rustls_config(),
                None => None,
            };
            ControlPlane::open_postgres_tls(&url, db, tls)
                .map_err(|e| format!("{POSTGRES_URL_ENV}: {e}"))
        }
        None => ControlPlane::open(db).map_err(|e| e.to_string()),
    }
}

fn human_bytes(b: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = b;
    let mut i = 0;
    while v >= 1000.0 && i + 1 < UNITS.len() {
        v /= 1000.0;
        i += 1;
    }
    format!("{v:.1} {}", UNITS[i])
}

/// The `catalog report` table: the same ledger as the overview, findings page and API.
pub fn report_text(c: &ControlPlane, top: usize) -> Result<String, String> {
    let advice = c.advice().map_err(|e| e.to_string())?;
    let findings = &advice.findings;
    let mut out = format!(
        "{:<20} {:<28} {:>14} {:>14}  {}\n",
        "SERVICE", "WHAT", "VOLUME/DAY", "SAVING/DAY", "SUGGESTED POLICY"
    );
    for f in findings.iter().take(top) {
        let what = serde_json::to_value(f.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let (volume, saving) = match &f.series {
            Some(s) => (
                format!("{} series", s.series),
                format!("{} series", s.saving_series),
            ),
            None => (
                human_bytes(f.bytes_per_day),
                human_bytes(f.saving_bytes_per_day),
            ),
        };
        out.push_str(&format!(
            "{:<20} {:<28} {:>14} {:>14}  {}\n",
            f.service, what, volume, saving, f.id
        ));
    }
    if findings.is_empty() {
        out.push_str("(no findings)\n");
    }
    out.push_str(&format!(
        "TOTAL SAVING/DAY {} of {} ({} findings; each record counted once; existing policies subtracted)\n",
        human_bytes(advice.saving_bytes_per_day),
        human_bytes(advice.bytes_per_day),
        findings.len()
    ));
    // Services whose edges counted part of a signal without reading it: its findings are
    // estimated from the part read (their evidence says so).
    for l in &advice.services {
        for note in &l.notes {
            out.push_str(&format!("ESTIMATE {}: {note}\n", l.service));
        }
    }
    let prometheus = prometheus_text(c)?;
    if !prometheus.is_empty() {
        out.push_str(&format!(
            "TOTAL SAVING PROMETHEUS {} series (series, not bytes; each series counted once; existing policies subtracted)\n",
            advice.saving_series
        ));
    }
    for l in &advice.services {
        out.push_str(&format!(
            "  {}: {}\n",
            l.service,
            format_args!(
                "projected per day from the last {} of data",
                crate::advice::human_window(l.window_seconds)
            )
        ));
    }
    out.push_str(&prometheus);
    for f in &advice.accepted {
        if let Some(m) = &f.measured {
            out.push_str(&format!(
                "ACCEPTED {} ({}): estimated {}/day; measured {} records ({}) enforced, {} records ({}) in shadow\n",
                f.id,
                m.mode,
                human_bytes(m.estimated_bytes_per_day),
                m.enforced_items,
                human_bytes(m.enforced_bytes),
                m.shadow_items,
                human_bytes(m.shadow_bytes)
            ));
        }
    }
    Ok(out)
}

/// `weir catalog connect prometheus`: one snapshot into the store, then the report.
pub fn connect_prometheus(args: &PrometheusArgs) -> Result<(), String> {
    crate::prometheus::check_url(&args.url)?;
    let auth = crate::prometheus::PromAuth::from_files(
        args.username.as_deref(),
        args.password_file.as_deref(),
        args.bearer_token_file.as_deref(),
    )?;
    let settings = weir_tls::TlsClientSettings {
        ca_file: args.ca_file.as_ref().map(|p| p.display().to_string()),
        ..Default::default()
    };
    let tls = settings
        .load("--ca-file", |p: &str| PathBuf::from(p))
        .map_err(|e| e.to_string())?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    // Read first: nothing is created when the server cannot be read.
    let snap = rt.block_on(async {
        let client = crate::prometheus::PromClient::new(
            &args.url,
            auth,
            &tls,
            args.max_response_bytes,
            args.timeout,
        )?;
        crate::prometheus::collect(&client, &Default::default(), crate::store::now_secs())
            .await
            .map_err(|e| e.to_string())
    })?;
    let control = ControlPlane::open_with_key_file(&args.db, args.key_file.as_deref())
        .map_err(|e| e.to_string())?;
    if let crate::at_rest::KeyOrigin::Created(p) = control.store().key_origin() {
        eprintln!(
            "created the database key {} (mode 0600): the catalog is encrypted under it; keep it apart from backups",
            p.display()
        );
    }
    control
        .store()
        .put_prometheus_snapshot(&snap)
        .map_err(|e| e.to_string())?;
    control
        .store()
        .audit("cli", "source.prometheus.read", &snap.source, None, None)
        .map_err(|e| e.to_string())?;
    println!(
        "read {}: {} metrics, {} series ({} in the TSDB head), {} jobs, {} recording and {} alerting rules",
        snap.source,
        snap.metrics.len(),
        snap.series(),
        snap.head_series,
        snap.jobs.len(),
        snap.rules.recording,
        snap.rules.alerting
    );
    for n in &snap.notes {
        println!("note: {n}");
    }
    print!("{}", report_text(&control, args.top)?);
    Ok(())
}

/// The Prometheus sources' part of the report: series per job.
fn prometheus_text(c: &ControlPlane) -> Result<String, String> {
    let snaps = c
        .store()
        .prometheus_snapshots()
        .map_err(|e| e.to_string())?;
    let mut out = String::new();
    for s in &snaps {
        out.push_str(&format!(
            "PROMETHEUS {} read {}: {} series, {} metrics\n",
            s.source,
            time_or(Some(s.fetched_at), "never"),
            s.series(),
            s.metrics.len()
        ));
        out.push_str(&format!(
            "  {:<28} {:>8} {:>10} {:>12} {:>7}\n",
            "JOB", "TARGETS", "SERIES", "SAMPLES/SCRAPE", "SHARE"
        ));
        let mut labels: Vec<_> = s.label_value_counts.iter().collect();
        labels.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let top: Vec<String> = labels
            .iter()
            .take(5)
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        out.push_str(&format!(
            "  label names with the most values: {}\n",
            top.join(", ")
        ));
        let mut jobs: Vec<_> = s.jobs.iter().collect();
        jobs.sort_by(|a, b| b.1.series.cmp(&a.1.series).then(a.0.cmp(b.0)));
        for (job, j) in jobs {
            out.push_str(&format!(
                "  {:<28} {:>8} {:>10} {:>12} {:>6.1}%\n",
                if job.is_empty() {
                    "(no job label)"
                } else {
                    job
                },
                format!("{}/{}", j.targets_up, j.targets),
                j.series,
                j.samples_per_scrape,
                100.0 * j.series as f64 / s.series().max(1) as f64
            ));
        }
    }
    Ok(out)
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ`, or `none` when absent.
pub(super) fn time_or(t: Option<i64>, none: &str) -> String {
    match t {
        Some(t) => humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(t.max(0) as u64),
        )
        .to_string(),
        None => none.to_string(),
    }
}

pub(super) fn finish(r: Result<(), String>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `weir catalog ...`.
pub fn run_catalog(cmd: CatalogCommand) -> ExitCode {
    match cmd {
        CatalogCommand::Mine(args) => {
            weir_summary::cli::run(weir_summary::cli::CatalogCommand::Mine(args))
        }
        CatalogCommand::Connect(ConnectCommand::Prometheus(args)) => {
            finish(connect_prometheus(&args))
        }
        CatalogCommand::Report { db, top } => finish(open(&db).and_then(|c| {
            print!("{}", report_text(&c, top)?);
            Ok(())
        })),
        CatalogCommand::ExportService { db, service } => finish(open(&db).and_then(|c| {
            let doc = c.export_service(&service).map_err(|e| e.to_string())?;
            c.store()
                .audit(
                    "cli",
                    "catalog.export_service",
                    &c.service_fingerprint(&service),
                    None,
                    None,
                )
                .map_err(|e| e.to_string())?;
            println!(
                "{}",
                serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?
            );
            Ok(())
        })),
        CatalogCommand::EraseValue { db, value } => finish(open(&db).and_then(|c| {
            let out = c.erase_value(&value, "cli").map_err(|e| e.to_string())?;
            println!(
                "{}",
                serde_json::to_string_pretty(&out).map_err(|e| e.to_string())?
            );
            Ok(())
        })),
        CatalogCommand::DeleteService { db, service } => finish(open(&db).and_then(|c| {
            let n = c
                .delete_service(&service, "cli")
                .map_err(|e| e.to_string())?;
            println!("deleted {n} catalog entries of {service}");
            Ok(())
        })),
    }
}
