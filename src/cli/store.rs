//! `tributary store copy`: moving a store between SQLite and PostgreSQL.

use std::path::Path;

use super::{Status, Verbosity};
use crate::config::Secrets;
use crate::model::is_postgres;
use crate::store::postgres::{PgStore, copy};

/// Copies the store `from` into the empty store `to`, one of them PostgreSQL.
pub async fn copy(from: &str, to: &str, verbosity: Verbosity) -> Status {
    let result = match (is_postgres(from), is_postgres(to)) {
        (false, true) => match connect(to).await {
            Ok(pg) => copy::sqlite_to_postgres(Path::new(from), &pg)
                .await
                .map(|r| (r, format!("{from} → PostgreSQL {}", pg.target()))),
            Err(e) => Err(e),
        },
        (true, false) => match connect(from).await {
            Ok(pg) => copy::postgres_to_sqlite(&pg, Path::new(to))
                .await
                .map(|r| (r, format!("PostgreSQL {} → {to}", pg.target()))),
            Err(e) => Err(e),
        },
        _ => {
            eprintln!(
                "error: one side of a copy is an SQLite file and the other a PostgreSQL database \
                 (postgresql://… or host=…)"
            );
            return Status::Fatal;
        }
    };
    match result {
        Ok((report, what)) => {
            if verbosity != Verbosity::Quiet {
                let counts: Vec<String> = report
                    .tables
                    .iter()
                    .map(|(table, rows)| format!("{rows} {table}"))
                    .collect();
                outln!("copied {what}: {}", counts.join(", "));
            }
            Status::Ok
        }
        Err(e) => {
            eprintln!("error: store copy: {e}");
            Status::Fatal
        }
    }
}

/// The PostgreSQL side, its `${NAME}` references read from the environment.
async fn connect(target: &str) -> Result<PgStore, copy::CopyError> {
    let here = std::env::current_dir().unwrap_or_default();
    let url = Secrets::from_process()
        .expand(target, &here)
        .map_err(|message| copy::CopyError::Postgres(crate::store::postgres::PgError::Config(message)))?;
    let node = crate::config::default_node_name();
    Ok(PgStore::connect(&url, &node).await?)
}
