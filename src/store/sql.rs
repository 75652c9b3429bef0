//! One SQL for both backends: the store's queries are written once, in the dialect SQLite and
//! PostgreSQL share, and run on either connection through [`Conn`].
//!
//! The shared dialect is plain SQL with `?N` parameters, `ON CONFLICT` upserts, `RETURNING`,
//! `CAST`s where PostgreSQL cannot infer a parameter's type, and integers for flags and times
//! (both schemas store them as 64-bit integers). The few SQLite spellings PostgreSQL has no use
//! for are translated once per statement when it is prepared (see [`translate`]). What only one
//! backend has (SQLite's pragmas and planner statistics, PostgreSQL's row locks) is asked for
//! by [`Conn::dialect`] in the one method that needs it.
//!
//! PostgreSQL is reached through tokio-postgres driven by a small runtime of the store's own:
//! the store's methods are synchronous (they run on the store thread and the blocking pool,
//! like SQLite's), so each query blocks on that runtime, never on one of the daemon's workers.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::Arc;

use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};

use super::StoreError;

/// Which engine a connection talks to, for the few statements they spell differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

/// A connection to either backend.
pub(crate) enum Conn {
    Sqlite(rusqlite::Connection),
    Pg(PgConn),
}

/// A PostgreSQL connection with its prepared statements.
pub(crate) struct PgConn {
    client: tokio_postgres::Client,
    runtime: Arc<PgRuntime>,
    /// Statements by their text as written (before translation).
    statements: RefCell<HashMap<String, tokio_postgres::Statement>>,
    /// Open transaction and savepoints: a savepoint at depth 0 is a transaction of its own
    /// (PostgreSQL has no savepoint outside a transaction, where SQLite opens one).
    depth: Cell<usize>,
}

/// The runtime PostgreSQL connections of one store run on. Shut down in the background when
/// the last connection goes, so that dropping a store inside async code does not block.
pub(crate) struct PgRuntime(Option<tokio::runtime::Runtime>);

impl PgRuntime {
    pub(crate) fn new() -> Result<Arc<PgRuntime>, StoreError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("tributary-pg")
            .enable_all()
            .build()
            .map_err(StoreError::Thread)?;
        Ok(Arc::new(PgRuntime(Some(runtime))))
    }

    pub(crate) fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        match &self.0 {
            Some(runtime) => runtime.block_on(f),
            None => unreachable!("the runtime is only taken when dropped"),
        }
    }
}

impl Drop for PgRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

impl PgConn {
    /// Opens a connection on `runtime` (the connection's I/O task runs there).
    pub(crate) fn connect(
        config: &tokio_postgres::Config,
        runtime: Arc<PgRuntime>,
    ) -> Result<PgConn, tokio_postgres::Error> {
        let (client, connection) = runtime.block_on(config.connect(tokio_postgres::NoTls))?;
        if let Some(rt) = &runtime.0 {
            rt.spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!(error = %e, "PostgreSQL connection closed");
                }
            });
        }
        Ok(PgConn {
            client,
            runtime,
            statements: RefCell::new(HashMap::new()),
            depth: Cell::new(0),
        })
    }

    fn statement(&self, sql: &str) -> Result<tokio_postgres::Statement, StoreError> {
        if let Some(statement) = self.statements.borrow().get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.runtime.block_on(self.client.prepare(&translate(sql)))?;
        self.statements
            .borrow_mut()
            .insert(sql.to_string(), statement.clone());
        Ok(statement)
    }

    fn args<'p>(params: &'p [Param<'p>]) -> Vec<&'p (dyn ToSql + Sync)> {
        params.iter().map(|p| p as &(dyn ToSql + Sync)).collect()
    }
}

/// A parameter, borrowed from the caller's values.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Param<'a> {
    Null,
    Int(i64),
    Real(f64),
    Text(&'a str),
    Blob(&'a [u8]),
}

/// What can be bound to a parameter.
pub(crate) trait ToParam {
    fn to_param(&self) -> Param<'_>;
}

macro_rules! int_param {
    ($($t:ty),*) => {$(
        impl ToParam for $t {
            fn to_param(&self) -> Param<'_> {
                // Counts and times are far below i64::MAX; a larger one saturates rather
                // than wrapping into a negative number.
                Param::Int(i64::try_from(*self).unwrap_or(i64::MAX))
            }
        }
    )*};
}
int_param!(i64, i32, u32, u16, u8, usize, u64);

impl ToParam for bool {
    fn to_param(&self) -> Param<'_> {
        Param::Int(i64::from(*self))
    }
}
impl ToParam for f64 {
    fn to_param(&self) -> Param<'_> {
        Param::Real(*self)
    }
}
impl ToParam for str {
    fn to_param(&self) -> Param<'_> {
        Param::Text(self)
    }
}
impl ToParam for String {
    fn to_param(&self) -> Param<'_> {
        Param::Text(self)
    }
}
impl ToParam for [u8] {
    fn to_param(&self) -> Param<'_> {
        Param::Blob(self)
    }
}
impl ToParam for Vec<u8> {
    fn to_param(&self) -> Param<'_> {
        Param::Blob(self)
    }
}
impl<T: ToParam + ?Sized> ToParam for &T {
    fn to_param(&self) -> Param<'_> {
        (**self).to_param()
    }
}
impl<T: ToParam> ToParam for Option<T> {
    fn to_param(&self) -> Param<'_> {
        match self {
            Some(v) => v.to_param(),
            None => Param::Null,
        }
    }
}

/// `params![a, b, …]`: the parameters of one statement.
macro_rules! params {
    ($($p:expr),* $(,)?) => {
        &[$($crate::store::sql::ToParam::to_param(&$p)),*] as &[$crate::store::sql::Param<'_>]
    };
}
pub(crate) use params;

impl rusqlite::ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match *self {
            Param::Null => ValueRef::Null,
            Param::Int(i) => ValueRef::Integer(i),
            Param::Real(f) => ValueRef::Real(f),
            Param::Text(s) => ValueRef::Text(s.as_bytes()),
            Param::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

impl ToSql for Param<'_> {
    /// Binds to the type PostgreSQL inferred for the parameter: integers also to `INT4`,
    /// `BOOL` (a flag, as SQLite keeps them) and floats, so one statement serves both.
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match *self {
            Param::Null => Ok(IsNull::Yes),
            Param::Int(i) => match *ty {
                Type::BOOL => (i != 0).to_sql(ty, out),
                Type::INT4 => i32::try_from(i)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(i)?.to_sql(ty, out),
                Type::FLOAT8 => (i as f64).to_sql(ty, out),
                Type::TEXT | Type::VARCHAR => i.to_string().to_sql(ty, out),
                _ => i.to_sql(ty, out),
            },
            Param::Real(f) => f.to_sql(ty, out),
            Param::Text(s) => s.to_sql(ty, out),
            Param::Blob(b) => b.to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// One result row of either backend.
pub(crate) enum Row<'a> {
    Sqlite(&'a rusqlite::Row<'a>),
    Pg(&'a tokio_postgres::Row),
}

impl Row<'_> {
    /// Column `i`, as `T`.
    pub(crate) fn get<T: Column>(&self, i: usize) -> Result<T, StoreError> {
        match self {
            Row::Sqlite(row) => Ok(T::from_sqlite(row, i)?),
            Row::Pg(row) => T::from_pg(row, i),
        }
    }

    /// Column `i` as text without copying it, for a scan that keeps few of the rows it reads.
    pub(crate) fn with_str<R>(&self, i: usize, f: impl FnOnce(&str) -> R) -> Result<R, StoreError> {
        match self {
            Row::Sqlite(row) => Ok(f(row.get_ref(i)?.as_str().map_err(rusqlite::Error::from)?)),
            Row::Pg(row) => Ok(f(row.try_get::<_, &str>(i)?)),
        }
    }
}

/// A value a column is read as.
pub(crate) trait Column: Sized {
    fn from_sqlite(row: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Self>;
    fn from_pg(row: &tokio_postgres::Row, i: usize) -> Result<Self, StoreError>;
}

/// An integer column of PostgreSQL, whatever its width; booleans (what comparisons return)
/// read as 0 and 1, as SQLite returns them.
fn pg_int(row: &tokio_postgres::Row, i: usize) -> Result<Option<i64>, StoreError> {
    let ty = row.columns().get(i).map(|c| c.type_().clone());
    Ok(match ty {
        Some(Type::INT4) => row.try_get::<_, Option<i32>>(i)?.map(i64::from),
        Some(Type::INT2) => row.try_get::<_, Option<i16>>(i)?.map(i64::from),
        Some(Type::BOOL) => row.try_get::<_, Option<bool>>(i)?.map(i64::from),
        _ => row.try_get::<_, Option<i64>>(i)?,
    })
}

fn out_of_range(i: usize, value: i64) -> StoreError {
    StoreError::Column(format!("column {i}: {value} is out of range"))
}

macro_rules! int_column {
    ($($t:ty),*) => {$(
        impl Column for $t {
            fn from_sqlite(row: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Self> {
                row.get(i)
            }
            fn from_pg(row: &tokio_postgres::Row, i: usize) -> Result<Self, StoreError> {
                let v = pg_int(row, i)?
                    .ok_or_else(|| StoreError::Column(format!("column {i} is NULL")))?;
                <$t>::try_from(v).map_err(|_| out_of_range(i, v))
            }
        }
        impl Column for Option<$t> {
            fn from_sqlite(row: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Self> {
                row.get(i)
            }
            fn from_pg(row: &tokio_postgres::Row, i: usize) -> Result<Self, StoreError> {
                pg_int(row, i)?
                    .map(|v| <$t>::try_from(v).map_err(|_| out_of_range(i, v)))
                    .transpose()
            }
        }
    )*};
}
int_column!(i64, u32, u16, u8);

impl Column for bool {
    fn from_sqlite(row: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Self> {
        row.get(i)
    }
    fn from_pg(row: &tokio_postgres::Row, i: usize) -> Result<Self, StoreError> {
        Ok(pg_int(row, i)?.is_some_and(|v| v != 0))
    }
}

macro_rules! plain_column {
    ($($t:ty),*) => {$(
        impl Column for $t {
            fn from_sqlite(row: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Self> {
                row.get(i)
            }
            fn from_pg(row: &tokio_postgres::Row, i: usize) -> Result<Self, StoreError> {
                Ok(row.try_get(i)?)
            }
        }
    )*};
}
plain_column!(String, Option<String>, Vec<u8>, Option<Vec<u8>>, f64, Option<f64>);

impl Conn {
    pub(crate) fn dialect(&self) -> Dialect {
        match self {
            Conn::Sqlite(_) => Dialect::Sqlite,
            Conn::Pg(_) => Dialect::Postgres,
        }
    }

    /// The SQLite connection, for what only SQLite has (pragmas, checkpoints).
    pub(crate) fn sqlite(&self) -> Option<&rusqlite::Connection> {
        match self {
            Conn::Sqlite(conn) => Some(conn),
            Conn::Pg(_) => None,
        }
    }

    pub(crate) fn sqlite_mut(&mut self) -> Option<&mut rusqlite::Connection> {
        match self {
            Conn::Sqlite(conn) => Some(conn),
            Conn::Pg(_) => None,
        }
    }

    /// Runs one statement; returns the number of rows it changed.
    pub(crate) fn execute(&self, sql: &str, params: &[Param<'_>]) -> Result<usize, StoreError> {
        match self {
            Conn::Sqlite(conn) => Ok(conn
                .prepare_cached(sql)?
                .execute(rusqlite::params_from_iter(params.iter()))?),
            Conn::Pg(pg) => {
                let statement = pg.statement(sql)?;
                let changed = pg
                    .runtime
                    .block_on(pg.client.execute(&statement, &PgConn::args(params)))?;
                Ok(usize::try_from(changed).unwrap_or(usize::MAX))
            }
        }
    }

    /// Hands each row to `each` until it breaks.
    pub(crate) fn each(
        &self,
        sql: &str,
        params: &[Param<'_>],
        mut each: impl FnMut(&Row<'_>) -> Result<ControlFlow<()>, StoreError>,
    ) -> Result<(), StoreError> {
        match self {
            Conn::Sqlite(conn) => {
                let mut stmt = conn.prepare_cached(sql)?;
                let mut rows = stmt.query(rusqlite::params_from_iter(params.iter()))?;
                while let Some(row) = rows.next()? {
                    if each(&Row::Sqlite(row))?.is_break() {
                        break;
                    }
                }
                Ok(())
            }
            Conn::Pg(pg) => {
                // Read whole before `each` sees a row: `each` may query again, and on one
                // connection the second answer queues behind the rest of the first. (Scans
                // that can be long read in pages; see `Store::candidates`.)
                let statement = pg.statement(sql)?;
                let rows = pg
                    .runtime
                    .block_on(pg.client.query(&statement, &PgConn::args(params)))?;
                for row in &rows {
                    if each(&Row::Pg(row))?.is_break() {
                        break;
                    }
                }
                Ok(())
            }
        }
    }

    /// Every row, as `f` reads it.
    pub(crate) fn query<T>(
        &self,
        sql: &str,
        params: &[Param<'_>],
        mut f: impl FnMut(&Row<'_>) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let mut out = Vec::new();
        self.each(sql, params, |row| {
            out.push(f(row)?);
            Ok(ControlFlow::Continue(()))
        })?;
        Ok(out)
    }

    /// The first row, if there is one.
    pub(crate) fn query_opt<T>(
        &self,
        sql: &str,
        params: &[Param<'_>],
        f: impl FnOnce(&Row<'_>) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        let mut f = Some(f);
        let mut out = None;
        self.each(sql, params, |row| {
            if let Some(f) = f.take() {
                out = Some(f(row)?);
            }
            Ok(ControlFlow::Break(()))
        })?;
        Ok(out)
    }

    /// The first row, which must exist.
    pub(crate) fn query_one<T>(
        &self,
        sql: &str,
        params: &[Param<'_>],
        f: impl FnOnce(&Row<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.query_opt(sql, params, f)?
            .ok_or(StoreError::Sqlite(rusqlite::Error::QueryReturnedNoRows))
    }

    /// Runs statements without parameters.
    pub(crate) fn batch(&self, sql: &str) -> Result<(), StoreError> {
        match self {
            Conn::Sqlite(conn) => Ok(conn.execute_batch(sql)?),
            Conn::Pg(pg) => Ok(pg.runtime.block_on(pg.client.batch_execute(sql))?),
        }
    }

    /// Starts the store thread's group transaction.
    pub(crate) fn begin(&self) -> Result<(), StoreError> {
        match self {
            // Takes the write lock now, so a busy database is waited for here, not halfway
            // through the group.
            Conn::Sqlite(conn) => Ok(conn.execute_batch("BEGIN IMMEDIATE")?),
            Conn::Pg(pg) => {
                self.batch("BEGIN")?;
                pg.depth.set(1);
                Ok(())
            }
        }
    }

    /// Commits the group transaction (rolled back when the commit fails).
    pub(crate) fn commit(&self) -> Result<(), StoreError> {
        if let Conn::Pg(pg) = self {
            pg.depth.set(0);
        }
        if let Err(e) = self.batch("COMMIT") {
            let _ = self.batch("ROLLBACK");
            return Err(e);
        }
        Ok(())
    }

    /// Runs `f` in a savepoint: all of it is kept, or (on an error) none of it. Nests inside
    /// the store thread's group transaction.
    pub(crate) fn savepoint<R>(
        &self,
        f: impl FnOnce(&Conn) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        self.open_savepoint()?;
        let result = f(self);
        self.close_savepoint(result.is_ok())?;
        result
    }

    pub(crate) fn open_savepoint(&self) -> Result<(), StoreError> {
        match self {
            // Prepared once, like every statement: a write job opens one, and parsing it
            // each time cost a warm round of 1,000 feeds a third of its time.
            Conn::Sqlite(_) => {
                self.execute("SAVEPOINT tributary", params![])?;
            }
            Conn::Pg(pg) => {
                self.batch(if pg.depth.get() == 0 {
                    "BEGIN"
                } else {
                    "SAVEPOINT tributary"
                })?;
                pg.depth.set(pg.depth.get() + 1);
            }
        }
        Ok(())
    }

    /// Ends the innermost savepoint, keeping its work or undoing it.
    pub(crate) fn close_savepoint(&self, keep: bool) -> Result<(), StoreError> {
        let outermost = match self {
            Conn::Pg(pg) => {
                pg.depth.set(pg.depth.get().saturating_sub(1));
                pg.depth.get() == 0
            }
            Conn::Sqlite(_) => false,
        };
        match (outermost, keep, self) {
            (true, true, _) => self.commit(),
            (true, false, _) => self.batch("ROLLBACK"),
            (false, true, Conn::Sqlite(_)) => self.execute("RELEASE tributary", params![]).map(drop),
            (false, false, Conn::Sqlite(_)) => {
                self.execute("ROLLBACK TO tributary", params![])?;
                self.execute("RELEASE tributary", params![]).map(drop)
            }
            (false, true, Conn::Pg(_)) => self.batch("RELEASE tributary"),
            (false, false, Conn::Pg(_)) => self.batch("ROLLBACK TO tributary; RELEASE tributary"),
        }
    }
}

/// The statement as PostgreSQL spells it: `$N` parameters for `?N`, and without what only
/// SQLite's planner uses (`INDEXED BY` hints, the unary `+` that keeps a column off an
/// index). `json_each(?N)`, a parameter holding a JSON array, becomes
/// `json_array_elements_text`, whose column is also named `value`.
pub(crate) fn translate(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut rest = sql;
    while let Some(c) = rest.chars().next() {
        if c == '\'' {
            // A string literal, copied as it is.
            let end = rest[1..].find('\'').map_or(rest.len(), |i| i + 2);
            out.push_str(&rest[..end]);
            rest = &rest[end..];
        } else if let Some(after) = rest.strip_prefix("INDEXED BY ") {
            let name_end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            rest = &after[name_end..];
        } else if let Some(after) = rest.strip_prefix("json_each(") {
            out.push_str("json_array_elements_text(CAST(");
            let close = after.find(')').unwrap_or(after.len());
            out.push_str(&translate(&after[..close]));
            out.push_str(" AS TEXT)::json");
            rest = &after[close..];
        } else if rest.starts_with("+?") {
            rest = &rest[1..];
        } else if c == '?' {
            out.push('$');
            rest = &rest[1..];
        } else {
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_are_translated_for_postgres() {
        assert_eq!(
            translate(
                "SELECT id FROM entries INDEXED BY entries_by_link WHERE canonical_link = +?1 AND k = '?x'"
            ),
            "SELECT id FROM entries  WHERE canonical_link = $1 AND k = '?x'"
        );
        assert_eq!(
            translate("WHERE id IN (SELECT CAST(value AS BIGINT) FROM json_each(?12))"),
            "WHERE id IN (SELECT CAST(value AS BIGINT) FROM json_array_elements_text(CAST($12 AS TEXT)::json))"
        );
    }
}
