//! `tributary init [DIR]`: a commented starter config and its data directory, for someone
//! starting from nothing, and the next commands to run.

use std::path::Path;

use super::Status;

/// The starter config (`config/starter.toml`): relative paths, no feeds yet, two outputs.
pub(crate) const STARTER: &str = include_str!("../../config/starter.toml");

pub(super) fn run(dir: &Path) -> Status {
    let config = dir.join("tributary.toml");
    if config.exists() {
        eprintln!(
            "error: {} exists already; nothing written (check it with `tributary -c {} check`)",
            config.display(),
            config.display()
        );
        return Status::Fatal;
    }
    match write_starter(&config) {
        Ok(()) => {
            let shown = config.display();
            outln!("wrote {shown} and {}/", dir.join("data").display());
            outln!("next:");
            outln!(
                "  tributary -c {shown} add https://blog.rust-lang.org/feed.xml   # or: import subscriptions.opml"
            );
            outln!(
                "  tributary -c {shown} poll                                      # fetch, store, write public/"
            );
            outln!(
                "  tributary -c {shown} run                                       # or keep polling as a service"
            );
            Status::Ok
        }
        Err(e) => {
            eprintln!("error: {e}");
            Status::Fatal
        }
    }
}

/// Writes the starter config at `config` (and the data directory beside it).
pub(crate) fn write_starter(config: &Path) -> Result<(), String> {
    let dir = config
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir.join("data"))
        .map_err(|e| format!("cannot create {}: {e}", dir.join("data").display()))?;
    crate::output::write_if_changed(config, STARTER.as_bytes())
        .map(drop)
        .map_err(|e| format!("cannot write {}: {e}", config.display()))
}
