//! `weir catalog ...`, `weir admin ...` and `weir audit ...`: the control plane from the
//! command line, on the same SQLite file the `control_plane` extension serves.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::auth::Role;
use crate::control::ControlPlane;

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
    /// Mine templates from a plain log file or OTLP JSON lines (see weir-metadata).
    Mine(weir_metadata::cli::MineArgs),
    /// Delete everything the catalog holds about a service (audited as `cli`).
    DeleteService {
        /// The catalog's SQLite file.
        #[arg(long)]
        db: PathBuf,
        /// The service.name.
        service: String,
    },
}

/// `weir admin ...`.
#[derive(Debug, clap::Subcommand)]
pub enum AdminCommand {
    /// API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Print the audit log (oldest first).
    Audit {
        /// The catalog's SQLite file.
        #[arg(long)]
        db: PathBuf,
        /// Only records after this sequence number.
        #[arg(long, default_value_t = 0)]
        since: i64,
    },
}

/// `weir admin token ...`.
#[derive(Debug, clap::Subcommand)]
pub enum TokenCommand {
    /// Create a token and print it once (only its hash is stored).
    Create {
        /// The catalog's SQLite file.
        #[arg(long)]
        db: PathBuf,
        /// viewer, editor, admin or edge.
        #[arg(long, value_enum)]
        role: Role,
        /// A name to recognise it by.
        #[arg(long, default_value = "")]
        name: String,
        /// For `--role edge` (required there): the edge name the token reports as. The
        /// control plane records the edge's instance ids and catalog services under it,
        /// so one edge's token cannot speak for another. 1 to 64 of A-Z a-z 0-9 . _ -
        #[arg(long)]
        edge: Option<String>,
    },
    /// List tokens (ids, roles, never secrets).
    List {
        /// The catalog's SQLite file.
        #[arg(long)]
        db: PathBuf,
    },
    /// Revoke a token by id.
    Revoke {
        /// The catalog's SQLite file.
        #[arg(long)]
        db: PathBuf,
        /// The token id (the part after `weir_`).
        id: String,
    },
}

fn open(db: &std::path::Path) -> Result<ControlPlane, String> {
    if !db.exists() {
        return Err(format!("{}: no such catalog file", db.display()));
    }
    ControlPlane::open(db).map_err(|e| e.to_string())
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
        out.push_str(&format!(
            "{:<20} {:<28} {:>14} {:>14}  {}\n",
            f.service,
            what,
            human_bytes(f.bytes_per_day),
            human_bytes(f.saving_bytes_per_day),
            f.id
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

fn finish(r: Result<(), String>) -> ExitCode {
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
            weir_metadata::cli::run(weir_metadata::cli::CatalogCommand::Mine(args))
        }
        CatalogCommand::Report { db, top } => finish(open(&db).and_then(|c| {
            print!("{}", report_text(&c, top)?);
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

/// Runs `weir admin ...`.
pub fn run_admin(cmd: AdminCommand) -> ExitCode {
    finish(match cmd {
        AdminCommand::Token(TokenCommand::Create {
            db,
            role,
            name,
            edge,
        }) => {
            match (role, &edge) {
                (Role::Edge, None) => {
                    return finish(Err(
                        "an edge token is bound to an edge: add --edge NAME".into()
                    ))
                }
                (Role::Edge, Some(e)) => {
                    if let Err(m) = crate::auth::check_edge_name(e) {
                        return finish(Err(m));
                    }
                }
                (_, Some(_)) => {
                    return finish(Err("--edge is only for --role edge".into()));
                }
                _ => {}
            }
            // Creating the first token creates the file.
            ControlPlane::open(&db)
                .map_err(|e| e.to_string())
                .and_then(|c| {
                    let (token, info) = crate::auth::create_token_for(
                        c.store(),
                        role,
                        &name,
                        edge.as_deref(),
                        "cli",
                    )
                    .map_err(|e| e.to_string())?;
                    eprintln!(
                        "created {} token {} (shown once; store it now)",
                        info.role, info.id
                    );
                    println!("{token}");
                    Ok(())
                })
        }
        AdminCommand::Token(TokenCommand::List { db }) => open(&db).and_then(|c| {
            for t in c.store().tokens().map_err(|e| e.to_string())? {
                let state = if t.revoked_at.is_some() {
                    "revoked"
                } else {
                    "active"
                };
                let edge = t.edge.as_deref().unwrap_or("-");
                println!("{}\t{}\t{}\t{}\t{}", t.id, t.role, edge, state, t.name);
            }
            Ok(())
        }),
        AdminCommand::Token(TokenCommand::Revoke { db, id }) => open(&db).and_then(|c| {
            if c.store()
                .revoke_token(&id, "cli")
                .map_err(|e| e.to_string())?
            {
                println!("revoked {id}");
                Ok(())
            } else {
                Err(format!("no active token {id:?}"))
            }
        }),
        AdminCommand::Audit { db, since } => open(&db).and_then(|c| {
            for e in c
                .store()
                .audit_log(since, i64::MAX)
                .map_err(|e| e.to_string())?
            {
                println!(
                    "{}\t{}\t{}\t{}\t{}\tbefore={}\tafter={}",
                    e.seq,
                    e.at,
                    e.actor,
                    e.action,
                    e.target,
                    e.before
                        .map(|v| v.to_string())
                        .unwrap_or_else(|| "-".into()),
                    e.after.map(|v| v.to_string()).unwrap_or_else(|| "-".into())
                );
            }
            Ok(())
        }),
    })
}
