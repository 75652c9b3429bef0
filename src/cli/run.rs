//! `tributary run`: the long-running service. Unix signals become daemon controls: SIGTERM and
//! SIGINT stop (a second one exits at once), SIGHUP reloads the config.

use std::path::Path;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use super::Status;
use crate::daemon::{self, Control};

pub(super) async fn run(config_path: &Path) -> Status {
    let (tx, rx) = mpsc::channel(8);
    let signals = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) {
        (Ok(term), Ok(int), Ok(hup)) => (term, int, hup),
        _ => {
            eprintln!("error: cannot install signal handlers");
            return Status::Fatal;
        }
    };
    tokio::spawn(forward_signals(signals, tx));
    match daemon::run(config_path, rx).await {
        Ok(()) => Status::Ok,
        Err(e) => {
            // One line, through the log (the journal's priority, one record).
            tracing::error!("{e}");
            Status::Fatal
        }
    }
}

async fn forward_signals(
    (mut term, mut int, mut hup): (
        tokio::signal::unix::Signal,
        tokio::signal::unix::Signal,
        tokio::signal::unix::Signal,
    ),
    tx: mpsc::Sender<Control>,
) {
    loop {
        let control = tokio::select! {
            _ = term.recv() => Control::Stop,
            _ = int.recv() => Control::Stop,
            _ = hup.recv() => Control::Reload,
        };
        if tx.send(control).await.is_err() {
            return;
        }
    }
}
