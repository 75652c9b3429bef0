//! `tributary store copy`: a whole store moved between SQLite and PostgreSQL, table by table,
//! row by row, ids kept, so a single node's store becomes a cluster's (and back). The one
//! place that reads both engines' rows: each column is converted to the other engine's type
//! (times in seconds or milliseconds ↔ `timestamptz`, 0/1 ↔ `boolean`, JSON text ↔ `text[]`
//! or `jsonb`).
//!
//! The copy is all or nothing: the PostgreSQL side is written in one transaction, the SQLite
//! side in one, and the source is read in one snapshot (a running daemon may go on writing).
//! The target must be empty: a copy never merges two stores. Every column of the SQLite
//! schema has its place in PostgreSQL's; the cluster's own state (leases, heartbeats, turns,
//! rendered outputs) is not copied back to SQLite, which has no use for it.

use std::path::Path;

use bytes::BytesMut;
use chrono::{DateTime, Utc};
use futures::{StreamExt, pin_mut};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};

use super::postgres::PgStore;
use super::sqlite::{from_millis, from_unix};
use super::{Database, StoreError};

/// The tables of a store, parents before children, each with the order its rows are read in.
const TABLES: &[(&str, &str)] = &[
    ("feeds", "id"),
    ("entries", "id"),
    ("tombstones", "feed_id, key"),
    ("feed_errors", "id"),
    ("hosts", "host"),
    ("outputs", "path"),
    ("settings", "name"),
    ("icons", "hash"),
    ("feed_icons", "feed_id"),
    ("announcing", "output"),
    ("announced", "output, entry_id"),
    ("deliveries", "id"),
    ("readers", "output, via, key"),
    ("subscriptions", "feed_id"),
    ("lists", "key"),
];

/// Tables whose `id` comes from a sequence in PostgreSQL: it is moved past the copied ids.
const SERIAL: &[&str] = &["feeds", "entries", "feed_errors", "deliveries"];

/// The times SQLite keeps in milliseconds (schedules compare them); the others are seconds.
const MILLIS: &[(&str, &str)] = &[
    ("feeds", "last_fetch"),
    ("feeds", "next_due"),
    ("feeds", "lease_until"),
    ("entries", "full_text_at"),
    ("deliveries", "created"),
    ("deliveries", "next_attempt"),
    ("deliveries", "failed"),
];

#[derive(Debug, thiserror::Error)]
pub(crate) enum CopyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("database {path}: {source}")]
    Sqlite {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("PostgreSQL at {target}: {source}")]
    Postgres {
        target: String,
        #[source]
        source: tokio_postgres::Error,
    },
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

/// Rows copied, per table, in [`TABLES`] order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct CopyReport {
    pub(crate) tables: Vec<(&'static str, u64)>,
}

/// What a PostgreSQL column holds, and so how SQLite's value converts to it and back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Int,
    Text,
    Bytes,
    Bool,
    /// A time: SQLite's integer in milliseconds when `true`, else seconds.
    Time(bool),
    /// `text[]`: SQLite's JSON array of strings.
    TextList,
    /// `jsonb`: SQLite's JSON text.
    Json,
}

impl Kind {
    fn pg_type(self) -> Type {
        match self {
            Kind::Int => Type::INT8,
            Kind::Text => Type::TEXT,
            Kind::Bytes => Type::BYTEA,
            Kind::Bool => Type::BOOL,
            Kind::Time(_) => Type::TIMESTAMPTZ,
            Kind::TextList => Type::TEXT_ARRAY,
            Kind::Json => Type::JSONB,
        }
    }
}

/// One value on its way to PostgreSQL, typed by the target column.
#[derive(Debug)]
enum Cell {
    Int(Option<i64>),
    Text(Option<String>),
    Bytes(Option<Vec<u8>>),
    Bool(Option<bool>),
    Time(Option<DateTime<Utc>>),
    TextList(Option<Vec<String>>),
    Json(Option<serde_json::Value>),
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
            Cell::Bool(v) => v.to_sql(ty, out),
            Cell::Time(v) => v.to_sql(ty, out),
            Cell::TextList(v) => v.to_sql(ty, out),
            Cell::Json(v) => v.to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// The columns of `table` in PostgreSQL, with what each holds.
async fn pg_columns(
    client: &tokio_postgres::Transaction<'_>,
    table: &str,
) -> Result<Vec<(String, Kind)>, tokio_postgres::Error> {
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
            let name: String = r.get(0);
            let kind = match r.get::<_, &str>(1) {
                "bigint" | "integer" => Kind::Int,
                "bytea" => Kind::Bytes,
                "boolean" => Kind::Bool,
                "timestamp with time zone" => Kind::Time(MILLIS.contains(&(table, name.as_str()))),
                "ARRAY" => Kind::TextList,
                "jsonb" | "json" => Kind::Json,
                _ => Kind::Text,
            };
            (name, kind)
        })
        .collect())
}

/// What each of SQLite's `columns` holds in PostgreSQL: every one must have its place.
fn kinds(table: &str, columns: &[String], pg: &[(String, Kind)]) -> Result<Vec<Kind>, CopyError> {
    columns
        .iter()
        .map(|column| {
            pg.iter()
                .find(|(name, _)| name == column)
                .map(|(_, kind)| *kind)
                .ok_or_else(|| CopyError::Column {
                    table: table.to_string(),
                    column: column.clone(),
                })
        })
        .collect()
}

fn sqlite_columns(conn: &rusqlite::Connection, table: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare("SELECT name FROM pragma_table_info(?1) ORDER BY cid")?;
    stmt.query_map([table], |r| r.get(0))?.collect()
}

fn cell(table: &str, column: &str, kind: Kind, value: rusqlite::types::Value) -> Result<Cell, CopyError> {
    use rusqlite::types::Value;
    let wrong = || CopyError::Value {
        table: table.to_string(),
        column: column.to_string(),
        target: kind.pg_type().to_string(),
    };
    Ok(match (kind, value) {
        (Kind::Int, Value::Null) => Cell::Int(None),
        (Kind::Int, Value::Integer(i)) => Cell::Int(Some(i)),
        (Kind::Int, Value::Text(s)) => Cell::Int(Some(s.parse().map_err(|_| wrong())?)),
        (Kind::Text, Value::Null) => Cell::Text(None),
        (Kind::Text, Value::Text(s)) => Cell::Text(Some(s)),
        (Kind::Text, Value::Integer(i)) => Cell::Text(Some(i.to_string())),
        (Kind::Bytes, Value::Null) => Cell::Bytes(None),
        (Kind::Bytes, Value::Blob(b)) => Cell::Bytes(Some(b)),
        (Kind::Bytes, Value::Text(s)) => Cell::Bytes(Some(s.into_bytes())),
        (Kind::Bool, Value::Null) => Cell::Bool(None),
        (Kind::Bool, Value::Integer(i)) => Cell::Bool(Some(i != 0)),
        (Kind::Time(_), Value::Null) => Cell::Time(None),
        (Kind::Time(true), Value::Integer(i)) => Cell::Time(Some(from_millis(i))),
        (Kind::Time(false), Value::Integer(i)) => Cell::Time(Some(from_unix(i))),
        (Kind::TextList, Value::Null) => Cell::TextList(None),
        (Kind::TextList, Value::Text(s)) => {
            Cell::TextList(Some(serde_json::from_str(&s).map_err(|_| wrong())?))
        }
        (Kind::Json, Value::Null) => Cell::Json(None),
        (Kind::Json, Value::Text(s)) => Cell::Json(Some(serde_json::from_str(&s).map_err(|_| wrong())?)),
        _ => return Err(wrong()),
    })
}

/// Column `i` of a PostgreSQL row as SQLite keeps it.
fn sqlite_value(
    row: &tokio_postgres::Row,
    i: usize,
    kind: Kind,
) -> Result<rusqlite::types::Value, tokio_postgres::Error> {
    use rusqlite::types::Value;
    Ok(match kind {
        Kind::Int => row
            .try_get::<_, Option<i64>>(i)?
            .map_or(Value::Null, Value::Integer),
        Kind::Text => row
            .try_get::<_, Option<String>>(i)?
            .map_or(Value::Null, Value::Text),
        Kind::Bytes => row
            .try_get::<_, Option<Vec<u8>>>(i)?
            .map_or(Value::Null, Value::Blob),
        Kind::Bool => row
            .try_get::<_, Option<bool>>(i)?
            .map_or(Value::Null, |b| Value::Integer(i64::from(b))),
        Kind::Time(millis) => row
            .try_get::<_, Option<DateTime<Utc>>>(i)?
            .map_or(Value::Null, |t| {
                Value::Integer(if millis {
                    t.timestamp_millis()
                } else {
                    t.timestamp()
                })
            }),
        Kind::TextList => row
            .try_get::<_, Option<Vec<String>>>(i)?
            .map_or(Value::Null, |l| Value::Text(serde_json::json!(l).to_string())),
        Kind::Json => row
            .try_get::<_, Option<serde_json::Value>>(i)?
            .map_or(Value::Null, |v| Value::Text(v.to_string())),
    })
}

/// Copies the SQLite store at `from` into the (empty) PostgreSQL store `to`.
pub(crate) async fn sqlite_to_postgres(from: &Path, to: &PgStore) -> Result<CopyReport, CopyError> {
    let shown = from.display().to_string();
    let lite = |source| CopyError::Sqlite {
        path: shown.clone(),
        source,
    };
    let target = to.describe().to_string();
    let pg = |source| CopyError::Postgres {
        target: target.clone(),
        source,
    };
    // The schema brought up to date first, by the store itself.
    super::sqlite::SqliteStore::open(from).await?.close().await;
    let conn = rusqlite::Connection::open_with_flags(from, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(lite)?;
    // One snapshot of the source, however long the copy takes.
    conn.execute_batch("BEGIN").map_err(lite)?;
    let mut client = to.client().await?;
    let tx = client.transaction().await.map_err(pg)?;
    let feeds: i64 = tx
        .query_one("SELECT COUNT(*) FROM feeds", &[])
        .await
        .map_err(pg)?
        .get(0);
    if feeds > 0 {
        return Err(CopyError::NotEmpty(feeds));
    }
    // The schema puts its own defaults in `settings`: the source's replace them.
    tx.execute("DELETE FROM settings", &[]).await.map_err(pg)?;
    let mut report = CopyReport::default();
    for (table, order) in TABLES {
        let columns = sqlite_columns(&conn, table).map_err(lite)?;
        let kinds = kinds(table, &columns, &pg_columns(&tx, table).await.map_err(pg)?)?;
        let types: Vec<Type> = kinds.iter().map(|k| k.pg_type()).collect();
        let list = columns.join(", ");
        let sink = tx
            .copy_in(&format!("COPY {table} ({list}) FROM STDIN BINARY"))
            .await
            .map_err(pg)?;
        let writer = BinaryCopyInWriter::new(sink, &types);
        pin_mut!(writer);
        let mut stmt = conn
            .prepare(&format!("SELECT {list} FROM {table} ORDER BY {order}"))
            .map_err(lite)?;
        let mut rows = stmt.query([]).map_err(lite)?;
        let mut copied = 0u64;
        while let Some(row) = rows.next().map_err(lite)? {
            let mut cells = Vec::with_capacity(columns.len());
            for (i, (column, kind)) in columns.iter().zip(&kinds).enumerate() {
                cells.push(cell(table, column, *kind, row.get(i).map_err(lite)?)?);
            }
            let refs: Vec<&(dyn ToSql + Sync)> = cells.iter().map(|c| c as &(dyn ToSql + Sync)).collect();
            writer.as_mut().write(&refs).await.map_err(pg)?;
            copied += 1;
        }
        writer.finish().await.map_err(pg)?;
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
        .await
        .map_err(pg)?;
    }
    tx.commit().await.map_err(pg)?;
    conn.execute_batch("COMMIT").map_err(lite)?;
    Ok(report)
}

/// Copies the PostgreSQL store `from` into a new (or empty) SQLite store at `to`.
pub(crate) async fn postgres_to_sqlite(from: &PgStore, to: &Path) -> Result<CopyReport, CopyError> {
    let shown = to.display().to_string();
    let lite = |source| CopyError::Sqlite {
        path: shown.clone(),
        source,
    };
    let source_name = from.describe().to_string();
    let pg = |source| CopyError::Postgres {
        target: source_name.clone(),
        source,
    };
    super::sqlite::SqliteStore::open(to).await?.close().await;
    let mut target = rusqlite::Connection::open(to).map_err(lite)?;
    let feeds: i64 = target
        .query_row("SELECT COUNT(*) FROM feeds", [], |r| r.get(0))
        .map_err(lite)?;
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
        .await
        .map_err(pg)?;
    let tx = target.transaction().map_err(lite)?;
    tx.execute("DELETE FROM settings", []).map_err(lite)?;
    let mut report = CopyReport::default();
    for (table, order) in TABLES {
        let columns = sqlite_columns(&tx, table).map_err(lite)?;
        let kinds = kinds(table, &columns, &pg_columns(&source, table).await.map_err(pg)?)?;
        let list = columns.join(", ");
        let placeholders: Vec<String> = (1..=columns.len()).map(|i| format!("?{i}")).collect();
        let mut insert = tx
            .prepare(&format!(
                "INSERT INTO {table} ({list}) VALUES ({})",
                placeholders.join(", ")
            ))
            .map_err(lite)?;
        let no_params: [&(dyn ToSql + Sync); 0] = [];
        let rows = source
            .query_raw(&format!("SELECT {list} FROM {table} ORDER BY {order}"), no_params)
            .await
            .map_err(pg)?;
        pin_mut!(rows);
        let mut copied = 0u64;
        while let Some(row) = rows.next().await {
            let row = row.map_err(pg)?;
            let values = kinds
                .iter()
                .enumerate()
                .map(|(i, kind)| sqlite_value(&row, i, *kind))
                .collect::<Result<Vec<_>, _>>()
                .map_err(pg)?;
            insert.execute(rusqlite::params_from_iter(values)).map_err(lite)?;
            copied += 1;
        }
        report.tables.push((table, copied));
    }
    drop(source);
    tx.commit().map_err(lite)?;
    Ok(report)
}

/// Copies the store `from` into the empty store `to`: one an SQLite file, the other a
/// PostgreSQL connection string (its `${NAME}` references read already).
pub(crate) async fn copy(from: &str, to: &str) -> Result<(CopyReport, String), CopyError> {
    let node = format!("copy-{}", std::process::id());
    match (crate::model::is_server_url(from), crate::model::is_server_url(to)) {
        (false, true) => {
            let pg = PgStore::connect(to, &node).await?;
            let report = sqlite_to_postgres(Path::new(from), &pg).await?;
            Ok((report, format!("{from} → PostgreSQL {}", pg.describe())))
        }
        (true, false) => {
            let pg = PgStore::connect(from, &node).await?;
            let report = postgres_to_sqlite(&pg, Path::new(to)).await?;
            Ok((report, format!("PostgreSQL {} → {to}", pg.describe())))
        }
        _ => Err(CopyError::Store(StoreError::Invalid(
            "one side of a copy is an SQLite file and the other a PostgreSQL database \
             (postgresql://… or host=…)"
                .into(),
        ))),
    }
}
