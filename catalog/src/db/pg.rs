//! The PostgreSQL backend: one blocking client per store (the `postgres` crate), statements
//! translated from SQLite's dialect (`super::dialect`) and prepared once, parameters and
//! columns carried as SQLite values and converted to and from the types PostgreSQL infers.
//!
//! The client blocks on a runtime of its own, which cannot run inside another runtime's
//! context (the control plane's threads, blocking pool included, are in one): the client
//! lives on a thread of its own, and each round trip is handed to it and waited for.

use std::cell::Cell;
use std::collections::HashMap;
use std::error::Error as StdError;
use std::fmt;
use std::str::FromStr;
use std::sync::mpsc;
use std::time::Duration;

use bytes::BytesMut;
use postgres::types::{FromSql, IsNull, ToSql, Type};
use rusqlite::types::{ToSqlOutput, Value, ValueRef};

use super::dialect::{self, TxEffect};

/// The advisory lock every write transaction takes (`pg_advisory_xact_lock`): one writer at
/// a time across every replica, as SQLite has one writer at a time.
pub(crate) const WRITE_LOCK: i64 = 0x5745_4952_5354_4f52; // "WEIRSTOR"

/// Tables whose changes other replicas must see (their caches are dropped).
const TABLES: &[&str] = &[
    "summaries",
    "edge_services",
    "ingest_streams",
    "policies",
    "edges",
    "policy_status",
    "tokens",
    "prometheus_sources",
    "dismissed",
    "audit",
    "users",
    "sessions",
];

/// A failure of PostgreSQL or of the connection to it, as the store reports it.
#[derive(Debug)]
pub(crate) struct PgError(pub(crate) String);

impl fmt::Display for PgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for PgError {}

fn err(msg: impl Into<String>) -> rusqlite::Error {
    rusqlite::Error::ToSqlConversionFailure(Box::new(PgError(msg.into())))
}

fn pg_err(e: &postgres::Error) -> rusqlite::Error {
    match e.as_db_error() {
        Some(db) => {
            let mut m = format!("PostgreSQL: {} ({})", db.message(), db.code().code());
            if let Some(d) = db.detail() {
                m.push_str(&format!("; {d}"));
            }
            err(m)
        }
        None => err(format!("PostgreSQL: {e}")),
    }
}

/// Where a configuration connects to, for messages (never the password).
pub(crate) fn describe(cfg: &postgres::Config) -> String {
    let hosts: Vec<String> = cfg
        .get_hosts()
        .iter()
        .zip(cfg.get_ports().iter().chain(std::iter::repeat(&5432)))
        .map(|(h, p)| match h {
            postgres::config::Host::Tcp(h) => format!("{h}:{p}"),
            postgres::config::Host::Unix(d) => format!("{}:{p} (socket)", d.display()),
        })
        .collect();
    format!(
        "{} database {:?} as {:?}",
        if hosts.is_empty() {
            "localhost:5432".to_string()
        } else {
            hosts.join(",")
        },
        cfg.get_dbname().unwrap_or("(user name)"),
        cfg.get_user().unwrap_or("(process user)"),
    )
}

/// A value bound to a parameter: converted to the type PostgreSQL inferred for it.
#[derive(Debug)]
struct Param(Value);

impl ToSql for Param {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        match &self.0 {
            Value::Null => Ok(IsNull::Yes),
            Value::Integer(i) => match *ty {
                Type::INT8 => i.to_sql(ty, out),
                Type::INT4 => i32::try_from(*i)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(*i)?.to_sql(ty, out),
                Type::BOOL => (*i != 0).to_sql(ty, out),
                Type::FLOAT8 => (*i as f64).to_sql(ty, out),
                Type::FLOAT4 => (*i as f32).to_sql(ty, out),
                _ => i.to_string().to_sql(&Type::TEXT, out),
            },
            Value::Real(f) => match *ty {
                Type::FLOAT4 => (*f as f32).to_sql(ty, out),
                Type::FLOAT8 => f.to_sql(ty, out),
                _ => f.to_string().to_sql(&Type::TEXT, out),
            },
            Value::Text(s) => match *ty {
                Type::BYTEA => s.as_bytes().to_sql(ty, out),
                _ => s.as_str().to_sql(&Type::TEXT, out),
            },
            Value::Blob(b) => match *ty {
                Type::BYTEA => b.as_slice().to_sql(ty, out),
                _ => Err(format!("a BLOB value for a parameter of type {ty}").into()),
            },
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

/// A column read back, as a SQLite value.
struct Column(Value);

impl<'a> FromSql<'a> for Column {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn StdError + Sync + Send>> {
        Ok(Column(match *ty {
            Type::INT8 => Value::Integer(i64::from_sql(ty, raw)?),
            Type::INT4 => Value::Integer(i32::from_sql(ty, raw)?.into()),
            Type::INT2 => Value::Integer(i16::from_sql(ty, raw)?.into()),
            Type::BOOL => Value::Integer(bool::from_sql(ty, raw)?.into()),
            Type::FLOAT8 => Value::Real(f64::from_sql(ty, raw)?),
            Type::FLOAT4 => Value::Real(f32::from_sql(ty, raw)?.into()),
            Type::BYTEA => Value::Blob(raw.to_vec()),
            _ => Value::Text(String::from_sql(&Type::TEXT, raw)?),
        }))
    }

    fn from_sql_null(_: &Type) -> Result<Self, Box<dyn StdError + Sync + Send>> {
        Ok(Column(Value::Null))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

fn to_value(p: &dyn rusqlite::ToSql) -> rusqlite::Result<Value> {
    Ok(match rusqlite::ToSql::to_sql(p)? {
        ToSqlOutput::Owned(v) => v,
        ToSqlOutput::Borrowed(r) => match r {
            ValueRef::Null => Value::Null,
            ValueRef::Integer(i) => Value::Integer(i),
            ValueRef::Real(f) => Value::Real(f),
            ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
            ValueRef::Blob(b) => Value::Blob(b.to_vec()),
        },
        other => return Err(err(format!("unsupported parameter value {other:?}"))),
    })
}

/// The client and what goes with it, owned by the connection's thread.
struct Inner {
    client: postgres::Client,
    statements: HashMap<String, postgres::Statement>,
    config: postgres::Config,
    writer: String,
    tls: Tls,
}

/// Why a round trip failed.
enum Fail {
    Pg(postgres::Error),
    Lost(String),
}

impl From<postgres::Error> for Fail {
    fn from(e: postgres::Error) -> Self {
        Fail::Pg(e)
    }
}

type Job = Box<dyn FnOnce(&mut Inner) + Send>;

/// A connection to the PostgreSQL database.
pub(crate) struct PgConn {
    /// Where it connects to, for messages.
    shown: String,
    /// Round trips for the client's thread (which ends when this is dropped).
    jobs: mpsc::Sender<Job>,
    /// This connection's name in `weir_changes` (random per connection).
    writer: String,
    /// The path the key files are named after.
    files: String,
    in_tx: Cell<bool>,
    /// A statement of the open transaction failed: COMMIT rolls back and fails.
    tx_failed: Cell<bool>,
}

impl PgConn {
    /// Connects to `url` (a `postgres://` URL or `key=value` settings); `files` names the
    /// key files (the `storage` path).
    pub(crate) fn connect(url: &str, files: &str, tls: Tls) -> Result<PgConn, String> {
        let mut config = postgres::Config::from_str(url)
            .map_err(|e| format!("postgres.url is not a PostgreSQL connection URL: {e}"))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        if config.get_application_name().is_none() {
            config.application_name("weir-control-plane");
        }
        let mut rnd = [0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut rnd);
        let writer: String = rnd.iter().map(|b| format!("{b:02x}")).collect();
        let client = connect_client(&config, &writer, &tls)?;
        let shown = describe(&config);
        let mut inner = Inner {
            client,
            statements: HashMap::new(),
            config,
            writer: writer.clone(),
            tls,
        };
        let (jobs, todo) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("weir-postgres".into())
            .spawn(move || {
                for job in todo {
                    // A panic fails that round trip only (its answer is never sent).
                    let run = std::panic::AssertUnwindSafe(|| job(&mut inner));
                    let _ = std::panic::catch_unwind(run);
                }
            })
            .map_err(|e| format!("cannot start the PostgreSQL client's thread: {e}"))?;
        Ok(PgConn {
            shown,
            jobs,
            writer,
            files: files.to_string(),
            in_tx: Cell::new(false),
            tx_failed: Cell::new(false),
        })
    }

    pub(crate) fn files(&self) -> &str {
        &self.files
    }

    pub(crate) fn in_transaction(&self) -> bool {
        self.in_tx.get()
    }

    /// Runs `f` on the client's thread and waits for it: reconnects first when the
    /// connection was lost outside a transaction (within one, the transaction is gone: every
    /// statement fails until it ends).
    fn with_client<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Inner) -> Result<R, postgres::Error> + Send + 'static,
    ) -> rusqlite::Result<R> {
        let in_tx = self.in_tx.get();
        let (done, answer) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |inner: &mut Inner| {
            let r = (|| -> Result<R, Fail> {
                if inner.client.is_closed() {
                    let shown = describe(&inner.config);
                    if in_tx {
                        return Err(Fail::Lost(format!(
                            "PostgreSQL: the connection to {shown} was lost in a transaction"
                        )));
                    }
                    inner.client = connect_client(&inner.config, &inner.writer, &inner.tls)
                        .map_err(Fail::Lost)?;
                    inner.statements.clear();
                    tracing::warn!(database = %shown, "catalog store: reconnected to PostgreSQL");
                }
                Ok(f(inner)?)
            })();
            let _ = done.send(r);
        });
        let gone = || {
            err(format!(
                "PostgreSQL: the round trip to {} failed (the client's thread ended or panicked)",
                self.shown
            ))
        };
        self.jobs.send(job).map_err(|_| gone())?;
        let r = answer.recv().map_err(|_| gone())?;
        r.map_err(|e| {
            if self.in_tx.get() {
                self.tx_failed.set(true);
            }
            match e {
                Fail::Pg(e) => pg_err(&e),
                Fail::Lost(m) => err(m),
            }
        })
    }

    fn values(params: &[&dyn rusqlite::ToSql]) -> rusqlite::Result<Vec<Param>> {
        params
            .iter()
            .map(|p| to_value(*p).map(Param))
            .collect::<rusqlite::Result<Vec<_>>>()
    }

    /// Runs one statement with parameters; returns the rows it changed.
    pub(crate) fn execute(
        &self,
        sql: &str,
        params: &[&dyn rusqlite::ToSql],
    ) -> rusqlite::Result<usize> {
        let values = Self::values(params)?;
        // A write outside a transaction takes the write lock too (in one of its own).
        let locked = !self.in_tx.get() && is_write(sql);
        let sql = sql.to_string();
        self.with_client(move |inner| {
            let st = prepared(inner, &sql)?;
            let refs: Vec<&(dyn ToSql + Sync)> =
                values.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
            if !locked {
                return inner.client.execute(&st, &refs);
            }
            let mut tx = inner.client.transaction()?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK])?;
            let n = tx.execute(&st, &refs)?;
            tx.commit()?;
            Ok(n)
        })
        .map(|n| n as usize)
    }

    /// Runs a query; every row as SQLite values.
    pub(crate) fn query(
        &self,
        sql: &str,
        params: &[&dyn rusqlite::ToSql],
    ) -> rusqlite::Result<Vec<Vec<Value>>> {
        let values = Self::values(params)?;
        let sql = sql.to_string();
        self.with_client(move |inner| {
            let st = prepared(inner, &sql)?;
            let refs: Vec<&(dyn ToSql + Sync)> =
                values.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
            let rows = inner.client.query(&st, &refs)?;
            rows.iter()
                .map(|r| {
                    (0..r.len())
                        .map(|i| r.try_get::<_, Column>(i).map(|c| c.0))
                        .collect::<Result<Vec<_>, _>>()
                })
                .collect()
        })
    }

    /// Runs a batch without parameters (translated; `BEGIN` takes the write lock).
    pub(crate) fn execute_batch(&self, sql: &str) -> rusqlite::Result<()> {
        let (translated, effect) = dialect::batch(sql, WRITE_LOCK);
        if effect == TxEffect::End && self.in_tx.get() {
            let failed = self.tx_failed.replace(false);
            let commit = translated.trim_start().starts_with("COMMIT")
                || translated.trim_start().starts_with("END");
            // A transaction with a failed statement is rolled back (PostgreSQL would
            // answer COMMIT with a rollback), and a COMMIT of it fails.
            let sql = if failed {
                "ROLLBACK".to_string()
            } else {
                translated
            };
            let r = self.with_client(move |inner| inner.client.batch_execute(&sql));
            self.in_tx.set(false);
            self.tx_failed.set(false);
            if failed && commit {
                return Err(err(
                    "PostgreSQL: the transaction was rolled back (a statement in it failed)",
                ));
            }
            return r.or_else(|e| {
                if commit {
                    Err(e)
                } else {
                    // The connection is gone: so is the transaction.
                    Ok(())
                }
            });
        }
        if effect == TxEffect::Begin {
            self.tx_failed.set(false);
        }
        let r = self.with_client(move |inner| inner.client.batch_execute(&translated));
        match (r, effect) {
            (Ok(()), TxEffect::Begin) => {
                self.in_tx.set(true);
                Ok(())
            }
            (Err(e), TxEffect::Begin) => {
                // BEGIN may have gone through and the lock not: end what was begun.
                let _ = self.with_client(|inner| inner.client.batch_execute("ROLLBACK"));
                Err(e)
            }
            (r, _) => r,
        }
    }

    /// A raw PostgreSQL batch (the PostgreSQL-only parts of the schema).
    pub(crate) fn execute_native(&self, sql: &str) -> rusqlite::Result<()> {
        let sql = sql.to_string();
        self.with_client(move |inner| inner.client.batch_execute(&sql))
    }

    /// The other connections' changes (see `super::Connection::data_version`).
    pub(crate) fn data_version(&self) -> rusqlite::Result<i64> {
        let rows = self.query(
            "SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) FROM weir_changes WHERE writer <> ?1",
            &[&self.writer],
        )?;
        match rows.first().and_then(|r| r.first()) {
            Some(Value::Integer(n)) => Ok(*n),
            _ => Err(err("PostgreSQL: weir_changes answered no number")),
        }
    }

    /// The PostgreSQL-only parts of the schema: the change counters and their triggers,
    /// and the audit log's append-only triggers. Run in the migration transaction.
    pub(crate) fn install_native(&self) -> rusqlite::Result<()> {
        let mut sql = String::from(
            "CREATE TABLE IF NOT EXISTS weir_changes (writer TEXT PRIMARY KEY, n BIGINT NOT NULL);
             CREATE OR REPLACE FUNCTION weir_note_change() RETURNS trigger LANGUAGE plpgsql AS $f$
             BEGIN
               INSERT INTO weir_changes (writer, n)
                 VALUES (COALESCE(NULLIF(current_setting('weir.writer', true), ''), 'other'), 1)
                 ON CONFLICT (writer) DO UPDATE SET n = weir_changes.n + 1;
               RETURN NULL;
             END $f$;
             CREATE OR REPLACE FUNCTION weir_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $f$
             BEGIN
               IF current_setting('weir.audit_maintenance', true) = 'on' THEN
                 IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
                 RETURN NEW;
               END IF;
               RAISE EXCEPTION 'the audit log is append-only';
             END $f$;
             CREATE OR REPLACE TRIGGER audit_no_update BEFORE UPDATE ON audit
               FOR EACH ROW EXECUTE FUNCTION weir_audit_append_only();
             CREATE OR REPLACE TRIGGER audit_no_delete BEFORE DELETE ON audit
               FOR EACH ROW EXECUTE FUNCTION weir_audit_append_only();
            ",
        );
        for t in TABLES {
            sql.push_str(&format!(
                "CREATE OR REPLACE TRIGGER weir_changes_{t} AFTER INSERT OR UPDATE OR DELETE ON {t}
                   FOR EACH STATEMENT EXECUTE FUNCTION weir_note_change();\n"
            ));
        }
        self.execute_native(&sql)
    }
}

/// TLS settings of a connection: `None` for plain text.
pub(crate) type Tls = Option<std::sync::Arc<weir_tls::rustls::ClientConfig>>;

fn connect_client(
    config: &postgres::Config,
    writer: &str,
    tls: &Tls,
) -> Result<postgres::Client, String> {
    let run = || -> Result<postgres::Client, postgres::Error> {
        let mut client = match tls {
            Some(c) => {
                // With TLS configured, never without it.
                let mut config = config.clone();
                config.ssl_mode(postgres::config::SslMode::Require);
                config.connect(super::pg_tls::MakeRustls(c.clone()))?
            }
            None => config.connect(postgres::NoTls)?,
        };
        client.execute("SELECT set_config('weir.writer', $1, false)", &[&writer])?;
        Ok(client)
    };
    let r = if tokio::runtime::Handle::try_current().is_ok() {
        std::thread::scope(|s| {
            s.spawn(run)
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    } else {
        run()
    };
    r.map_err(|e| {
        let why = match e.as_db_error() {
            Some(db) => format!("{} ({})", db.message(), db.code().code()),
            None => match e.source() {
                Some(s) => format!("{e}: {s}"),
                None => e.to_string(),
            },
        };
        format!(
            "cannot connect to PostgreSQL at {}: {why}",
            describe(config)
        )
    })
}

fn is_write(sql: &str) -> bool {
    let first = sql.split_whitespace().next().unwrap_or("");
    ["INSERT", "UPDATE", "DELETE"]
        .iter()
        .any(|w| first.eq_ignore_ascii_case(w))
}

fn prepared(inner: &mut Inner, sql: &str) -> Result<postgres::Statement, postgres::Error> {
    if let Some(st) = inner.statements.get(sql) {
        return Ok(st.clone());
    }
    let st = inner.client.prepare(&dialect::statement(sql))?;
    if inner.statements.len() > 512 {
        inner.statements.clear();
    }
    inner.statements.insert(sql.to_string(), st.clone());
    Ok(st)
}
