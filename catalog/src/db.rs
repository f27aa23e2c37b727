//! The store's database connection: the embedded SQLite file (SQLCipher; the default) or a
//! PostgreSQL database shared by several control-plane replicas (`postgres.url` in the
//! config), behind one API shaped like the part of rusqlite's that the store uses.
//!
//! The SQL is written once, in SQLite's dialect; on PostgreSQL each statement is
//! translated once (`dialect`): placeholders, scalar `MAX`/`MIN`, `INSERT OR IGNORE`, the
//! schema's column types, and `BEGIN IMMEDIATE`. Errors, parameters and column values
//! are rusqlite's types on both backends, so the store's code is the same for both.
//!
//! Write transactions on PostgreSQL take one transaction-scoped advisory lock (see
//! `pg::WRITE_LOCK`): as in SQLite, one writer at a time across every replica, so a
//! read-modify-write in a transaction (a staged summary merged into its stored row, the
//! audit chain's next link) never loses another replica's update.

use std::ops::Deref;

use rusqlite::ToSql;

pub(crate) use rusqlite::{params, OptionalExtension, TransactionBehavior};

mod dialect;
pub(crate) mod pg;
mod pg_tls;

/// Results of the store's statements (rusqlite's error type on both backends).
pub(crate) type Result<T, E = rusqlite::Error> = std::result::Result<T, E>;

/// Parameters of a statement: what rusqlite accepts as positional parameters.
pub(crate) trait Params {
    /// The parameters, in order.
    fn values(&self) -> Vec<&dyn ToSql>;
}

impl Params for [&(dyn ToSql + Send + Sync); 0] {
    fn values(&self) -> Vec<&dyn ToSql> {
        Vec::new()
    }
}

impl Params for &[&dyn ToSql] {
    fn values(&self) -> Vec<&dyn ToSql> {
        self.to_vec()
    }
}

macro_rules! array_params {
    ($($n:literal)+) => {$(
        impl<T: ToSql> Params for [T; $n] {
            fn values(&self) -> Vec<&dyn ToSql> {
                self.iter().map(|v| v as &dyn ToSql).collect()
            }
        }
    )+};
}
array_params!(1 2 3 4 5 6 7 8);

/// A column index (only positions are used).
pub(crate) trait ColumnIndex {
    /// The position.
    fn index(self) -> usize;
}

impl ColumnIndex for usize {
    fn index(self) -> usize {
        self
    }
}

/// One result row.
pub(crate) enum Row<'a> {
    /// A row of SQLite's, read in place.
    Sqlite(&'a rusqlite::Row<'a>),
    /// A row PostgreSQL sent, as SQLite values.
    Pg(&'a [rusqlite::types::Value]),
}

impl Row<'_> {
    /// Column `idx` as `T` (rusqlite's conversions on both backends).
    pub(crate) fn get<I: ColumnIndex, T: rusqlite::types::FromSql>(&self, idx: I) -> Result<T> {
        let i = idx.index();
        match self {
            Row::Sqlite(r) => r.get(i),
            Row::Pg(values) => {
                let v = values
                    .get(i)
                    .ok_or(rusqlite::Error::InvalidColumnIndex(i))?;
                T::column_result(v.into()).map_err(|e| match e {
                    rusqlite::types::FromSqlError::InvalidType => {
                        rusqlite::Error::InvalidColumnType(i, format!("#{i}"), v.data_type())
                    }
                    other => {
                        rusqlite::Error::FromSqlConversionFailure(i, v.data_type(), Box::new(other))
                    }
                })
            }
        }
    }
}

/// The store's connection.
pub(crate) enum Connection {
    /// The embedded SQLite file.
    Sqlite(rusqlite::Connection),
    /// A PostgreSQL database.
    Pg(Box<pg::PgConn>),
}

impl From<rusqlite::Connection> for Connection {
    fn from(c: rusqlite::Connection) -> Self {
        Connection::Sqlite(c)
    }
}

impl Connection {
    /// Runs one statement; returns the rows it changed.
    pub(crate) fn execute<P: Params>(&self, sql: &str, params: P) -> Result<usize> {
        match self {
            Connection::Sqlite(c) => c.execute(sql, rusqlite::params_from_iter(params.values())),
            Connection::Pg(c) => c.execute(sql, &params.values()),
        }
    }

    /// Runs statements separated by `;`, without parameters.
    pub(crate) fn execute_batch(&self, sql: &str) -> Result<()> {
        match self {
            Connection::Sqlite(c) => c.execute_batch(sql),
            Connection::Pg(c) => c.execute_batch(sql),
        }
    }

    /// The first row of a query, through `f`; `QueryReturnedNoRows` when there is none.
    pub(crate) fn query_row<T, P: Params, F: FnOnce(&Row<'_>) -> Result<T>>(
        &self,
        sql: &str,
        params: P,
        f: F,
    ) -> Result<T> {
        match self {
            Connection::Sqlite(c) => {
                c.query_row(sql, rusqlite::params_from_iter(params.values()), |r| {
                    f(&Row::Sqlite(r))
                })
            }
            Connection::Pg(c) => {
                let rows = c.query(sql, &params.values())?;
                match rows.first() {
                    Some(r) => f(&Row::Pg(r)),
                    None => Err(rusqlite::Error::QueryReturnedNoRows),
                }
            }
        }
    }

    /// A statement to run with [`Statement::query_map`].
    pub(crate) fn prepare(&self, sql: &str) -> Result<Statement<'_>> {
        match self {
            Connection::Sqlite(c) => Ok(Statement::Sqlite(c.prepare(sql)?)),
            Connection::Pg(c) => Ok(Statement::Pg {
                conn: c,
                sql: sql.to_string(),
            }),
        }
    }

    /// Begins a deferred transaction (rolled back when dropped uncommitted).
    pub(crate) fn transaction(&mut self) -> Result<Transaction<'_>> {
        self.transaction_with_behavior(TransactionBehavior::Deferred)
    }

    /// Begins a deferred transaction on a shared reference (the caller makes sure no other
    /// one is open on this connection).
    pub(crate) fn unchecked_transaction(&self) -> Result<Transaction<'_>> {
        self.execute_batch("BEGIN DEFERRED")?;
        Ok(Transaction { conn: self })
    }

    /// Begins a transaction; `Immediate` takes the write lock at once. On PostgreSQL
    /// every transaction takes the store's write lock at once.
    pub(crate) fn transaction_with_behavior(
        &mut self,
        behavior: TransactionBehavior,
    ) -> Result<Transaction<'_>> {
        let begin = match behavior {
            TransactionBehavior::Deferred => "BEGIN DEFERRED",
            TransactionBehavior::Immediate => "BEGIN IMMEDIATE",
            TransactionBehavior::Exclusive => "BEGIN EXCLUSIVE",
            _ => "BEGIN IMMEDIATE",
        };
        self.execute_batch(begin)?;
        Ok(Transaction { conn: self })
    }

    /// The SQLite file's path (`None` in memory); on PostgreSQL, the path the key files
    /// are named after (`storage`).
    pub(crate) fn path(&self) -> Option<&str> {
        match self {
            Connection::Sqlite(c) => c.path(),
            Connection::Pg(c) => Some(c.files()),
        }
    }

    /// No transaction is open.
    pub(crate) fn is_autocommit(&self) -> bool {
        match self {
            Connection::Sqlite(c) => c.is_autocommit(),
            Connection::Pg(c) => !c.in_transaction(),
        }
    }

    /// The SQLite connection, for what only SQLite has (keys, pragmas, backups).
    pub(crate) fn sqlite(&self) -> Option<&rusqlite::Connection> {
        match self {
            Connection::Sqlite(c) => Some(c),
            Connection::Pg(_) => None,
        }
    }

    /// Whether this is a PostgreSQL database.
    pub(crate) fn is_postgres(&self) -> bool {
        matches!(self, Connection::Pg(_))
    }

    /// A number that changes when another connection (another process, another replica)
    /// commits a change: SQLite's `PRAGMA data_version`; on PostgreSQL, the sum of the
    /// other connections' change counters (`weir_changes`, kept by triggers).
    pub(crate) fn data_version(&self) -> Result<i64> {
        match self {
            Connection::Sqlite(c) => c.query_row("PRAGMA data_version", [], |r| r.get(0)),
            Connection::Pg(c) => c.data_version(),
        }
    }

    /// Adds a column to a table made by an older build (no-op when it exists).
    pub(crate) fn add_column(&self, table: &str, column: &str, ty: &str) -> Result<()> {
        match self {
            Connection::Sqlite(c) => {
                let mut st = c.prepare(&format!("PRAGMA table_info({table})"))?;
                let names = st.query_map([], |r| r.get::<_, String>(1))?;
                for n in names {
                    if n? == column {
                        return Ok(());
                    }
                }
                c.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {ty}"))
            }
            Connection::Pg(c) => c.execute_batch(&format!(
                "ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {ty}"
            )),
        }
    }
}

/// A prepared statement.
pub(crate) enum Statement<'c> {
    /// SQLite's.
    Sqlite(rusqlite::Statement<'c>),
    /// PostgreSQL's (prepared once per connection when first run).
    Pg {
        /// The connection.
        conn: &'c pg::PgConn,
        /// The statement in SQLite's dialect.
        sql: String,
    },
}

impl Statement<'_> {
    /// Every row, through `f`.
    pub(crate) fn query_map<T, P: Params, F: FnMut(&Row<'_>) -> Result<T>>(
        &mut self,
        params: P,
        mut f: F,
    ) -> Result<std::vec::IntoIter<Result<T>>> {
        match self {
            Statement::Sqlite(st) => {
                let rows = st
                    .query_map(rusqlite::params_from_iter(params.values()), |r| {
                        f(&Row::Sqlite(r))
                    })?
                    .collect::<Vec<_>>();
                Ok(rows.into_iter())
            }
            Statement::Pg { conn, sql } => {
                let rows = conn.query(sql, &params.values())?;
                Ok(rows
                    .iter()
                    .map(|r| f(&Row::Pg(r)))
                    .collect::<Vec<_>>()
                    .into_iter())
            }
        }
    }
}

/// An open transaction: rolled back when dropped without [`Transaction::commit`].
pub(crate) struct Transaction<'c> {
    conn: &'c Connection,
}

impl Transaction<'_> {
    /// Commits.
    pub(crate) fn commit(self) -> Result<()> {
        let r = self.conn.execute_batch("COMMIT");
        if r.is_ok() {
            std::mem::forget(self);
        }
        r
    }
}

impl Deref for Transaction<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        if !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}
