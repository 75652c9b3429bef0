//! `tributary store copy`: moving a store between SQLite and PostgreSQL.

use super::{Status, Verbosity};
use crate::config::Secrets;

/// Copies the store `from` into the empty store `to`, one an SQLite file and the other a
/// database server's connection string (its `${NAME}` references read from the environment).
pub(super) async fn copy(from: &str, to: &str, verbosity: Verbosity) -> Status {
    let here = std::env::current_dir().unwrap_or_default();
    let secrets = Secrets::from_process();
    let expanded = secrets
        .expand(from, &here)
        .and_then(|from| Ok((from, secrets.expand(to, &here)?)));
    let (from_url, to_url) = match expanded {
        Ok(both) => both,
        Err(message) => {
            eprintln!("error: store copy: {message}");
            return Status::Fatal;
        }
    };
    match crate::store::copy(&from_url, &to_url).await {
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
