//! `tributary store copy`: a whole store moved between SQLite and PostgreSQL, table by table,
//! row by row, ids kept, so a single node's store becomes a cluster's (and back).
//!
//! The copy is all or nothing: the PostgreSQL side is written in one transaction, the SQLite
//! side in one, and the source is read in one snapshot (a running daemon may go on writing).
//! The target must be empty: a copy never merges two stores. Every column of the SQLite
//! schema has its place in PostgreSQL's; the cluster's own state (leases, heartbeats, turns,
//! rendered outputs) is not copied back to SQLite, which has no use for it.

use std::path::Path;

use bytes::BytesMut;
use futures::{StreamExt, pin_mut};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};

use super::{PgError, PgStore};
use crate::store::{Store, StoreError};

/// The tables of a store, parents before children, each with the order its rows are read in.
const TABLES: &[(&str, &str)] = &[
    ("feeds", "id"),
    ("entries", "id"),
    ("tombstones", "feed_id, key"),
    ("feed_errors", "id"),
    ("hosts", "host"),
    ("outputs", "path"),
    ("settings", "name"),
];

/// Tables whose `id` comes from a sequence in PostgreSQL: it is moved past the copied ids.
const SERIAL: &[&str] = &["feeds", "entries", "feed_errors"];

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error(transparent)]
    Sqlite(#[from] StoreError),
    #[error(transparent)]
    Postgres(#[from] PgError),
    #[error("the target already holds {0} feeds; a copy goes into an empty store only")]
    NotEmpty(i64),
    #[error("column {table}.{column} has no place in the target's schema; nothing was copied")]
    Column { table: String, column: String },
    #[error("{table}.{column} holds a value of the wrong kind for {target}")]
    Value {
        table: String,
        column: String,
        target: String,
    },
}

impl From<rusqlite::Error> for CopyError {
    fn from(e: rusqlite::Error) -> CopyError {
        CopyError::Sqlite(StoreError::from(e))
    }
}

impl From<tokio_postgres::Error> for CopyError {
    fn from(e: tokio_postgres::Error) -> CopyError {
        CopyError::Postgres(PgError::Db(e))
    }
}

/// Rows copied, per table, in [`TABLES`] order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyReport {
    pub tables: Vec<(&'static str, u64)>,
}

/// One value on its way to PostgreSQL, typed by the target column.
#[derive(Debug)]
enum Cell {
    Int(Option<i64>),
    Text(Option<String>),
    Bytes(Option<Vec<u8>>),
}

impl ToSql for Cell {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Cell::Int(v) => v.to_sql(ty, out),
            Cell::Text(v) => v.to_sql(ty, out),
            Cell::Bytes(v) => v.to_sql(ty, out),
        }
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::INT8 || *ty == Type::TEXT || *ty == Type::BYTEA
    }

    to_sql_checked!();
}

/// The columns of `table` in PostgreSQL, with their types.
async fn pg_columns(
    client: &tokio_postgres::Transaction<'_>,
    table: &str,
) -> Result<Vec<(String, Type)>, CopyError> {
    let rows = client
        .query(
            "SELECT column_name, data_type FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
            &[&table],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let ty = match r.get::<_, &str>(1) {
                "bigint" => Type::INT8,
                "bytea" => Type::BYTEA,
                _ => Type::TEXT,
            };
            (r.get(0), ty)
        })
        .collect())
}

/// The PostgreSQL type of each of SQLite's `columns`: every one must have its place.
fn pg_types(table: &str, columns: &[String], pg: &[(String, Type)]) -> Result<Vec<Type>, CopyError> {
    columns
        .iter()
        .map(|column| {
            pg.iter()
                .find(|(name, _)| name == column)
                .map(|(_, ty)| ty.clone())
                .ok_or_else(|| CopyError::Column {
                    table: table.to_string(),
                    column: column.clone(),
                })
        })
        .collect()
}

fn sqlite_columns(conn: &rusqlite::Connection, table: &str) -> Result<Vec<String>, CopyError> {
    let mut stmt = conn.prepare("SELECT name FROM pragma_table_info(?1) ORDER BY cid")?;
    let names = stmt
        .query_map([table], |r| r.get(0))?
        .collect::<Result<Vec<String>, _>>()?;
    Ok(names)
}

fn cell(table: &str, column: &str, ty: &Type, value: rusqlite::types::Value) -> Result<Cell, CopyError> {
    use rusqlite::types::Value;
    let wrong = || CopyError::Value {
        table: table.to_string(),
        column: column.to_string(),
        target: ty.to_string(),
    };
    Ok(match (ty, value) {
        (t, Value::Null) if *t == Type::INT8 => Cell::Int(None),
        (t, Value::Null) if *t == Type::BYTEA => Cell::Bytes(None),
        (_, Value::Null) => Cell::Text(None),
        (t, Value::Integer(i)) if *t == Type::INT8 => Cell::Int(Some(i)),
        (t, Value::Integer(i)) if *t == Type::TEXT => Cell::Text(Some(i.to_string())),
        (t, Value::Text(s)) if *t == Type::TEXT => Cell::Text(Some(s)),
        (t, Value::Text(s)) if *t == Type::INT8 => Cell::Int(Some(s.parse().map_err(|_| wrong())?)),
        (t, Value::Blob(b)) if *t == Type::BYTEA => Cell::Bytes(Some(b)),
        (t, Value::Text(s)) if *t == Type::BYTEA => Cell::Bytes(Some(s.into_bytes())),
        _ => return Err(wrong()),
    })
}

/// Copies the SQLite store at `from` into the (empty) PostgreSQL store `to`.
pub async fn sqlite_to_postgres(from: &Path, to: &PgStore) -> Result<CopyReport, CopyError> {
    let mut source = Store::open_reader(from)?;
    let conn: &rusqlite::Connection = source.sqlite_conn().ok_or(StoreError::Closed)?;
    // One snapshot of the source, however long the copy takes.
    conn.execute_batch("BEGIN")?;
    let mut client = to.client().await?;
    let tx = client.transaction().await?;
    let feeds: i64 = tx.query_one("SELECT COUNT(*) FROM feeds", &[]).await?.get(0);
    if feeds > 0 {
        return Err(CopyError::NotEmpty(feeds));
    }
    // The schema puts its own defaults in `settings`: the source's replace them.
    tx.execute("DELETE FROM settings", &[]).await?;
    let mut report = CopyReport::default();
    for (table, order) in TABLES {
        let columns = sqlite_columns(conn, table)?;
        let types = pg_types(table, &columns, &pg_columns(&tx, table).await?)?;
        let list = columns.join(", ");
        let sink = tx
            .copy_in(&format!("COPY {table} ({list}) FROM STDIN BINARY"))
            .await?;
        let writer = BinaryCopyInWriter::new(sink, &types);
        pin_mut!(writer);
        let mut stmt = conn.prepare(&format!("SELECT {list} FROM {table} ORDER BY {order}"))?;
        let mut rows = stmt.query([])?;
        let mut copied = 0u64;
        while let Some(row) = rows.next()? {
            let mut cells = Vec::with_capacity(columns.len());
            for (i, (column, ty)) in columns.iter().zip(&types).enumerate() {
                cells.push(cell(table, column, ty, row.get(i)?)?);
            }
            let refs: Vec<&(dyn ToSql + Sync)> = cells.iter().map(|c| c as &(dyn ToSql + Sync)).collect();
            writer.as_mut().write(&refs).await?;
            copied += 1;
        }
        writer.finish().await?;
        report.tables.push((table, copied));
    }
    for table in SERIAL {
        tx.query_one(
            &format!(
                "SELECT setval(pg_get_serial_sequence('{table}', 'id'), GREATEST(COALESCE(MAX(id), 0), 1), \
                 MAX(id) IS NOT NULL) FROM {table}"
            ),
            &[],
        )
        .await?;
    }
    tx.commit().await?;
    conn.execute_batch("COMMIT")?;
    Ok(report)
}

/// Copies the PostgreSQL store `from` into a new (or empty) SQLite store at `to`.
pub async fn postgres_to_sqlite(from: &PgStore, to: &Path) -> Result<CopyReport, CopyError> {
    let mut target = Store::open(to)?;
    let target = target.sqlite_conn().ok_or(StoreError::Closed)?;
    let feeds: i64 = target.query_row("SELECT COUNT(*) FROM feeds", [], |r| r.get(0))?;
    if feeds > 0 {
        return Err(CopyError::NotEmpty(feeds));
    }
    let mut client = from.client().await?;
    // Repeatable read: one snapshot of the source while nodes go on writing.
    let source = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;
    let tx = target.transaction()?;
    tx.execute("DELETE FROM settings", [])?;
    let mut report = CopyReport::default();
    for (table, order) in TABLES {
        let columns = sqlite_columns(&tx, table)?;
        let types = pg_types(table, &columns, &pg_columns(&source, table).await?)?;
        let list = columns.join(", ");
        let placeholders: Vec<String> = (1..=columns.len()).map(|i| format!("?{i}")).collect();
        let mut insert = tx.prepare(&format!(
            "INSERT INTO {table} ({list}) VALUES ({})",
            placeholders.join(", ")
        ))?;
        let no_params: [&(dyn ToSql + Sync); 0] = [];
        let rows = source
            .query_raw(&format!("SELECT {list} FROM {table} ORDER BY {order}"), no_params)
            .await?;
        pin_mut!(rows);
        let mut copied = 0u64;
        while let Some(row) = rows.next().await {
            let row = row?;
            let mut values = Vec::with_capacity(types.len());
            for (i, ty) in types.iter().enumerate() {
                use rusqlite::types::Value;
                values.push(if *ty == Type::INT8 {
                    row.try_get::<_, Option<i64>>(i)?
                        .map_or(Value::Null, Value::Integer)
                } else if *ty == Type::BYTEA {
                    row.try_get::<_, Option<Vec<u8>>>(i)?
                        .map_or(Value::Null, Value::Blob)
                } else {
                    row.try_get::<_, Option<String>>(i)?
                        .map_or(Value::Null, Value::Text)
                });
            }
            insert.execute(rusqlite::params_from_iter(values))?;
            copied += 1;
        }
        report.tables.push((table, copied));
    }
    drop(source);
    tx.commit()?;
    Ok(report)
}
