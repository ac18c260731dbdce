//! Start-up checks that the server can record what it does.
//!
//! A server on a read-only data directory or database would serve phones and drop every
//! fetch record, history event and admin change in silence. Before listening, the server
//! writes and removes a probe file in the data directory and makes a real (rolled back) write
//! to the database; either failing stops the start with a message naming the path.

use std::io::Write;
use std::path::Path;

use sipprov_store::Store;

use crate::config::ServerConfig;
use crate::ServerError;

/// The probe file, created and removed at start.
const PROBE_FILE: &str = ".sipprov-write-probe";

/// Fails unless a file can be created, written and removed in `dir`.
pub(crate) fn check_data_dir(dir: &Path) -> Result<(), ServerError> {
    let probe = dir.join(PROBE_FILE);
    let written = std::fs::File::create(&probe).and_then(|mut f| f.write_all(b"sipprov"));
    let removed = std::fs::remove_file(&probe);
    written.and(removed).map_err(|e| ServerError::NotWritable {
        what: "data directory",
        path: dir.display().to_string(),
        reason: e.to_string(),
    })
}

/// Opens the database and proves it takes a write (see [`Store::check_writable`]); either
/// failing names the database. (A read-only PostgreSQL database already fails to open: the
/// migrations' bookkeeping writes.)
pub(crate) async fn open_database(config: &ServerConfig) -> Result<Store, ServerError> {
    let failed = |e: sipprov_store::StoreError| ServerError::NotWritable {
        what: "database",
        path: database_location(config),
        reason: e.unavailable().unwrap_or_else(|| e.to_string()),
    };
    let store = Store::open(&config.database_url()).await.map_err(|e| {
        if e.cannot_write() {
            failed(e)
        } else {
            ServerError::Store(e)
        }
    })?;
    store.check_writable().await.map_err(failed)?;
    Ok(store)
}

/// Where the database is, fit for a log or an error: the SQLite file, or the URL without
/// its credentials.
fn database_location(config: &ServerConfig) -> String {
    match &config.database_url {
        None => config.data_dir.join("sipprov.db").display().to_string(),
        Some(url) => match (url.expose().split_once("://"), url.expose().rsplit_once('@')) {
            (Some((scheme, _)), Some((_, host))) => format!("{scheme}://{host}"),
            _ => url.expose().to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_location_never_shows_credentials() {
        let mut config = ServerConfig { data_dir: "/var/lib/sipprov".into(), ..ServerConfig::default() };
        assert_eq!(database_location(&config), "/var/lib/sipprov/sipprov.db");
        config.database_url = Some(String::from("postgres://sipprov:s3cret@db.example:5432/prov").into());
        assert_eq!(database_location(&config), "postgres://db.example:5432/prov");
    }

    #[test]
    fn a_writable_directory_passes_and_keeps_no_probe() {
        let dir = tempfile::tempdir().unwrap();
        check_data_dir(dir.path()).unwrap();
        assert!(!dir.path().join(PROBE_FILE).exists());
        let missing = dir.path().join("missing");
        let err = check_data_dir(&missing).unwrap_err().to_string();
        assert!(err.starts_with(&format!("data directory {} is not writable: ", missing.display())), "{err}");
    }
}
