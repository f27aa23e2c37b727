//! `weir admin ...` and `weir audit ...`: tokens, users, keys, backups and the audit log of
//! the control plane's SQLite file.

use std::path::PathBuf;
use std::process::ExitCode;

use super::{finish, open, time_or};
use crate::auth::Role;
use crate::control::ControlPlane;

/// `weir admin ...`.
#[derive(Debug, clap::Subcommand)]
pub enum AdminCommand {
    /// API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Re-encrypt the catalog database under a new random key (stop the control plane
    /// first). The key file is replaced (the new key staged in `<key file>.new` until the
    /// database is rewritten); with WEIR_CATALOG_KEY the new key is printed instead.
    Rekey {
        /// The catalog's SQLite file.
        #[arg(long)]
        db: PathBuf,
        /// The key file (default: $WEIR_CATALOG_KEY_FILE, else <db>.key).
        #[arg(long)]
        key_file: Option<PathBuf>,
    },
    /// Online backup: a consistent, encrypted (same key) copy of the catalog database into
    /// a new file, taken while the control plane runs.
    Backup {
        /// The catalog's SQLite file.
        #[arg(long)]
        db: PathBuf,
        /// The backup file to create (must not exist).
        #[arg(long)]
        to: PathBuf,
        /// The key file (default: $WEIR_CATALOG_KEY_FILE, else <db>.key).
        #[arg(long)]
        key_file: Option<PathBuf>,
    },
    /// Replace the catalog database with a backup (stop the control plane first). The
    /// backup opens with the key of the database it came from: give that key (key file or
    /// WEIR_CATALOG_KEY).
    Restore {
        /// The catalog's SQLite file to (re)create.
        #[arg(long)]
        db: PathBuf,
        /// The backup file.
        #[arg(long)]
        from: PathBuf,
        /// The key file (default: $WEIR_CATALOG_KEY_FILE, else <db>.key).
        #[arg(long)]
        key_file: Option<PathBuf>,
        /// Replace an existing database.
        #[arg(long)]
        force: bool,
    },
    /// People who sign in to the UI and API (password + TOTP).
    #[command(subcommand)]
    User(UserCommand),
    /// Print the audit log (oldest first); `verify` checks its hash chain, `export`
    /// writes it as JSON lines.
    #[command(args_conflicts_with_subcommands = true)]
    Audit {
        /// The catalog's SQLite file.
        #[arg(long)]
        db: Option<PathBuf>,
        /// Only records after this sequence number.
        #[arg(long, default_value_t = 0)]
        since: i64,
        #[command(subcommand)]
        command: Option<AuditCommand>,
    },
}

/// `weir admin audit ...`.
#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// Recompute the tamper-evident hash chain; exit 1 naming the first record that does
    /// not hold (edited, deleted, reordered, inserted by hand, newest records cut).
    Verify {
        /// The catalog's SQLite file.
        #[arg(long)]
        db: PathBuf,
    },
    /// Write the audit log as JSON lines (each record with its hash), oldest first.
    Export {
        /// The catalog's SQLite file.
        #[arg(long)]
        db: PathBuf,
        /// Only records after this sequence number.
        #[arg(long, default_value_t = 0)]
        since: i64,
    },
}

/// `weir admin user ...`.
#[derive(Debug, clap::Subcommand)]
pub enum UserCommand {
    /// Create a user (or reset one's password and authenticator) and print a one-time
    /// enrolment secret, valid 24 h: the user opens the UI, chooses "Enrol", sets a
    /// password and adds the TOTP secret to an authenticator app.
    Create {
        /// The catalog's SQLite file.
        #[arg(long)]
        db: PathBuf,
        /// viewer, editor or admin.
        #[arg(long, value_enum)]
        role: Role,
        /// The user name: 1 to 64 of A-Z a-z 0-9 . _ - @
        name: String,
    },
    /// List users (name, role, state, last sign-in).
    List {
        /// The catalog's SQLite file.
        #[arg(long)]
        db: PathBuf,
    },
    /// Disable a user and end its sessions.
    Disable {
        /// The catalog's SQLite file.
        #[arg(long)]
        db: PathBuf,
        /// The user name.
        name: String,
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
        /// How long the token lives: `30d`, `12h`, ... or `never`. Default: 90 days for
        /// viewer, editor and admin; never for edge tokens (rotate them by creating a new
        /// one and revoking the old).
        #[arg(long)]
        expires: Option<String>,
    },
    /// List tokens (id, role, edge, state, expiry, last use, name; never secrets).
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

/// Runs `weir admin ...`.
pub fn run_admin(cmd: AdminCommand) -> ExitCode {
    if matches!(
        cmd,
        AdminCommand::Rekey { .. } | AdminCommand::Backup { .. } | AdminCommand::Restore { .. }
    ) && super::postgres_url().is_some()
    {
        return finish(Err(format!(
            "rekey, backup and restore are for the SQLite file; {} is set: the store is in \
             PostgreSQL, back it up with PostgreSQL's tools (pg_dump, base backups)",
            super::POSTGRES_URL_ENV
        )));
    }
    finish(match cmd {
        AdminCommand::Token(TokenCommand::Create {
            db,
            role,
            name,
            edge,
            expires,
        }) => {
            let expires_at = match expires.as_deref().map(crate::auth::parse_expires) {
                Some(Ok(e)) => e,
                Some(Err(m)) => return finish(Err(m)),
                None => crate::auth::default_expiry(role)
                    .map(|d| crate::store::now_secs() + d.as_secs() as i64),
            };
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
            super::open_or_create(&db)
                .and_then(|c| {
                    if let crate::at_rest::KeyOrigin::Created(p) = c.store().key_origin() {
                        eprintln!(
                            "created the database key {} (mode 0600): the catalog is encrypted under it; keep it apart from backups",
                            p.display()
                        );
                    }
                    let (token, info) = crate::auth::create_token_with(
                        c.store(),
                        role,
                        &name,
                        edge.as_deref(),
                        expires_at,
                        "cli",
                    )
                    .map_err(|e| e.to_string())?;
                    eprintln!(
                        "created {} token {} expiring {} (shown once; store it now)",
                        info.role,
                        info.id,
                        time_or(info.expires_at, "never")
                    );
                    println!("{token}");
                    Ok(())
                })
        }
        AdminCommand::Token(TokenCommand::List { db }) => open(&db).and_then(|c| {
            let now = crate::store::now_secs();
            println!("ID\tROLE\tEDGE\tSTATE\tEXPIRES\tLAST_USED\tNAME");
            for t in c.store().tokens().map_err(|e| e.to_string())? {
                let state = if t.revoked_at.is_some() {
                    "revoked"
                } else if t.expires_at.is_some_and(|e| e <= now) {
                    "expired"
                } else {
                    "active"
                };
                let edge = t.edge.as_deref().unwrap_or("-");
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    t.id,
                    t.role,
                    edge,
                    state,
                    time_or(t.expires_at, "never"),
                    time_or(t.last_used_at, "never"),
                    t.name
                );
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
        AdminCommand::Rekey { db, key_file } => (|| {
            let (key, origin) =
                crate::at_rest::rekey(&db, key_file.as_deref()).map_err(|e| e.to_string())?;
            match origin {
                crate::at_rest::KeyOrigin::Env(var) => {
                    eprintln!(
                        "{} re-encrypted; set {var} to the new key (shown once):",
                        db.display()
                    );
                    println!("{}", key.to_hex());
                }
                _ => {
                    let file = crate::at_rest::key_path(&db, key_file.as_deref());
                    println!(
                        "{} re-encrypted under a new key, written to {}",
                        db.display(),
                        file.display()
                    );
                }
            }
            Ok(())
        })(),
        AdminCommand::Backup { db, to, key_file } => (|| {
            if !db.exists() {
                return Err(format!("{}: no such catalog file", db.display()));
            }
            let (key, _, _) =
                crate::at_rest::key_for(&db, key_file.as_deref()).map_err(|e| e.to_string())?;
            let counts = crate::at_rest::backup(&db, &key, &to).map_err(|e| e.to_string())?;
            println!(
                "backed up {} to {} (encrypted with its key; verified)",
                db.display(),
                to.display()
            );
            for (t, n) in counts {
                println!("  {t}\t{n}");
            }
            Ok(())
        })(),
        AdminCommand::Restore {
            db,
            from,
            key_file,
            force,
        } => (|| {
            let file = crate::at_rest::key_path(&db, key_file.as_deref());
            let (key, _) = weir_tls::at_rest::resolve_key(crate::at_rest::KEY_ENV, &file, false)?
                .ok_or_else(|| format!(
                    "no key: the backup opens with the key of the database it came from; put that key file at {} (or --key-file, or set {})",
                    file.display(),
                    crate::at_rest::KEY_ENV
                ))?;
            // The sketch key and the audit key live beside the database, not in it: the
            // restored catalog needs those of the database the backup came from.
            let missing: Vec<String> = [
                crate::control::sketch_key_path(&db),
                crate::audit::key_path(&db),
            ]
            .iter()
            .filter(|p| !p.exists())
            .map(|p| p.display().to_string())
            .collect();
            if !missing.is_empty() {
                return Err(format!(
                    "restore needs the key files of the database the backup came from beside it; missing: {}",
                    missing.join(", ")
                ));
            }
            let counts =
                crate::at_rest::restore(&db, &key, &from, force).map_err(|e| e.to_string())?;
            // The anchor named the replaced database's newest audit record: anchor the
            // restored one's, then check its chain with the audit key.
            let _ = std::fs::remove_file(crate::audit::anchor_path(&db));
            let c = ControlPlane::open_with_key_file(&db, key_file.as_deref())
                .map_err(|e| e.to_string())?;
            c.store()
                .audit(
                    "cli",
                    "catalog.restore",
                    &from.display().to_string(),
                    None,
                    None,
                )
                .map_err(|e| e.to_string())?;
            let verdict = c.store().verify_audit().map_err(|e| e.to_string())?;
            println!(
                "restored {} from {} (verified; audit chain {})",
                db.display(),
                from.display(),
                match &verdict {
                    Ok(_) => "intact".to_string(),
                    Err(e) => format!("BROKEN: {e}"),
                }
            );
            for (t, n) in counts {
                println!("  {t}\t{n}");
            }
            verdict.map(|_| ())
        })(),
        AdminCommand::User(UserCommand::Create { db, role, name }) => super::open_or_create(&db)
            .and_then(|c| {
                let secret = c
                    .store()
                    .create_user(&name, role, "cli")
                    .map_err(|e| e.to_string())?;
                eprintln!(
                    "user {name} ({}) can enrol with this secret within 24 h (shown once): open the UI, choose Enrol",
                    role.as_str()
                );
                println!("{secret}");
                Ok(())
            }),
        AdminCommand::User(UserCommand::List { db }) => open(&db).and_then(|c| {
            println!("NAME\tROLE\tSTATE\tLAST_SIGN_IN");
            for u in c.store().users().map_err(|e| e.to_string())? {
                println!(
                    "{}\t{}\t{}\t{}",
                    u.name,
                    u.role,
                    u.state,
                    time_or(u.last_sign_in, "never")
                );
            }
            Ok(())
        }),
        AdminCommand::User(UserCommand::Disable { db, name }) => open(&db).and_then(|c| {
            if c.store()
                .disable_user(&name, "cli")
                .map_err(|e| e.to_string())?
            {
                println!("disabled {name}");
                Ok(())
            } else {
                Err(format!("no active user {name:?}"))
            }
        }),
        AdminCommand::Audit {
            command: Some(AuditCommand::Verify { db }),
            ..
        } => open(&db).and_then(|c| match c.store().verify_audit() {
            Ok(Ok(v)) => {
                println!(
                    "audit log intact: {} records ({} to {}), anchored at {}",
                    v.records,
                    v.first_seq,
                    v.last_seq,
                    v.anchored_seq
                        .map_or_else(|| "none yet".to_string(), |s| s.to_string())
                );
                Ok(())
            }
            Ok(Err(why)) => Err(format!("audit log TAMPERED: {why}")),
            Err(e) => Err(e.to_string()),
        }),
        AdminCommand::Audit {
            command: Some(AuditCommand::Export { db, since }),
            ..
        } => open(&db).and_then(|c| {
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            c.store()
                .export_audit(since, &mut out)
                .map_err(|e| e.to_string())?;
            std::io::Write::flush(&mut out).map_err(|e| e.to_string())?;
            Ok(())
        }),
        AdminCommand::Audit {
            db: None,
            command: None,
            ..
        } => Err("weir admin audit: give --db FILE (or a subcommand: verify, export)".into()),
        AdminCommand::Audit {
            db: Some(db),
            since,
            command: None,
        } => open(&db).and_then(|c| {
            for e in c
                .store()
                .audit_log(since, i64::MAX)
                .map_err(|e| e.to_string())?
            {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\tbefore={}\tafter={}",
                    e.seq,
                    e.at,
                    e.actor,
                    e.client.as_deref().unwrap_or("-"),
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
