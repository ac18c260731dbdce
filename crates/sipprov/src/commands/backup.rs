//! `sipprov backup FILE` and `sipprov restore FILE`: the SQLite store, copied out while the
//! server runs, and put back while it is stopped.
//!
//! A backup is written under a temporary name beside FILE (mode 0600: it holds every password
//! of the fleet), checked, flushed to disk, then renamed, so FILE is either the previous backup
//! or a complete new one, never half of one. A restore takes the data directory's lock (refused
//! while a server holds it), checks the file, copies it into the data directory under a
//! temporary name, keeps the replaced database aside, then renames the copy over the database.

use std::io::Write;
use std::path::{Path, PathBuf};

use sipprov_server::ServerConfig;

use crate::cli::DataArgs;
use crate::lock::DataDirLock;

/// The SQLite database's name in the data directory.
const DB_FILE: &str = "sipprov.db";

/// The data directory's SQLite database, from `--config` and the global `--data-dir`; refused
/// for PostgreSQL, which has its own tools.
fn sqlite_database(args: &DataArgs, data_dir: Option<&Path>) -> Result<(PathBuf, PathBuf), String> {
    let mut cfg = match &args.config {
        Some(path) => ServerConfig::from_file(path).map_err(|e| e.to_string())?,
        None => ServerConfig::default(),
    };
    if let Some(dir) = data_dir {
        cfg.data_dir = dir.to_path_buf();
    }
    if cfg.database_url.is_some() {
        return Err("database_url is set: back up and restore that database with its own tools \
                    (PostgreSQL: pg_dump and pg_restore, see the README's \"Backup and restore\")"
            .into());
    }
    let db = cfg.data_dir.join(DB_FILE);
    Ok((cfg.data_dir, db))
}

/// `sipprov backup FILE`.
pub(crate) async fn backup(file: &Path, args: &DataArgs, data_dir: Option<&Path>) -> Result<(), String> {
    let (dir, db) = sqlite_database(args, data_dir)?;
    if !db.is_file() {
        return Err(format!("no database at {}: is --data-dir (or the config's data_dir) right?", db.display()));
    }
    let tmp = temp_beside(file, "backup")?;
    let result = write_backup(&db, &tmp, file).await;
    // A read-only connection to a WAL database creates `-wal` and `-shm` when a stopped server
    // left none; made by root, they would keep the service user from opening its database.
    for side in wal_files(&db) {
        if side.exists() {
            keep_owner(&db, &side)?;
        }
    }
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    let info = result?;
    println!(
        "backup of {} written to {} ({} devices, schema {})",
        db.display(),
        file.display(),
        info.devices,
        info.schema_version
    );
    note_stored_files(&dir);
    Ok(())
}

/// Says what the backup leaves out: the content of uploaded firmware and resource files lives
/// beside the database, not in it (the database holds only their catalog rows).
fn note_stored_files(data_dir: &Path) {
    let content = sipprov_server::resources::ResourceCatalog::content_dir_of(data_dir);
    let Ok(entries) = std::fs::read_dir(&content) else { return };
    let (count, bytes) = entries
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .fold((0u64, 0u64), |(n, b), m| (n + 1, b + m.len()));
    if count > 0 {
        println!(
            "note: the content of stored firmware and resource files ({count} files, {bytes} bytes) is not in this \
             backup; copy {} too (its files never change once written)",
            content.display()
        );
    }
}

async fn write_backup(db: &Path, tmp: &Path, file: &Path) -> Result<sipprov_store::BackupInfo, String> {
    // Created empty and private first: VACUUM INTO accepts an empty file, and the copy is never
    // readable by others, not even for a moment.
    create_private(tmp).map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
    sipprov_store::snapshot_sqlite(db, tmp).await.map_err(|e| e.to_string())?;
    let info =
        sipprov_store::check_restorable(tmp).await.map_err(|e| format!("the new backup fails its check: {e}"))?;
    sync_file(tmp)?;
    std::fs::rename(tmp, file).map_err(|e| format!("cannot rename {} to {}: {e}", tmp.display(), file.display()))?;
    sync_dir_of(file)?;
    Ok(info)
}

/// `sipprov restore FILE`.
pub(crate) async fn restore(file: &Path, args: &DataArgs, data_dir: Option<&Path>) -> Result<(), String> {
    let (dir, db) = sqlite_database(args, data_dir)?;
    sipprov_server::datadir::create(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    // Held until the swap is done: no server can start on a half-restored directory.
    let _lock = DataDirLock::acquire(&dir).map_err(|e| format!("restore refused: {e}"))?;
    let info = sipprov_store::check_restorable(file).await.map_err(|e| format!("restore refused: {e}"))?;
    let tmp = dir.join(format!(".{DB_FILE}.restore-{}", std::process::id()));
    let result = swap_in(file, &tmp, &db);
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    let aside = result?;
    println!(
        "restored {} into {} ({} devices, schema {})",
        file.display(),
        db.display(),
        info.devices,
        info.schema_version
    );
    if info.schema_version < info.binary_version {
        println!("the server migrates it to schema {} when it starts", info.binary_version);
    }
    if let Some(aside) = aside {
        println!("the replaced database is kept as {}", aside.display());
    }
    Ok(())
}

/// Copies `file` to `tmp`, moves the current database (and its WAL) aside, and renames `tmp`
/// over the database. Returns where the old database went.
fn swap_in(file: &Path, tmp: &Path, db: &Path) -> Result<Option<PathBuf>, String> {
    copy_private(file, tmp)?;
    // The restored file keeps the owner of the one it replaces (or of the data directory): a
    // restore run as root must not leave a database the service user cannot open.
    let owner = if db.exists() { db } else { db.parent().unwrap_or(Path::new(".")) };
    keep_owner(owner, tmp)?;
    let aside = if db.exists() { Some(set_aside(db)?) } else { None };
    std::fs::rename(tmp, db).map_err(|e| format!("cannot rename {} to {}: {e}", tmp.display(), db.display()))?;
    sync_dir_of(db)?;
    Ok(aside)
}

/// Keeps the current database as `sipprov.db.before-restore-SECONDS`, with its `-wal` and
/// `-shm` files under the matching names: a WAL left beside the restored file would be replayed
/// into it. The database itself is hard-linked, so the final rename replaces it atomically.
fn set_aside(db: &Path) -> Result<PathBuf, String> {
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let aside = db.with_file_name(format!("{DB_FILE}.before-restore-{stamp}"));
    if let Err(e) = std::fs::hard_link(db, &aside) {
        // A file system without hard links: a plain rename; the lock keeps servers out meanwhile.
        std::fs::rename(db, &aside).map_err(|r| format!("cannot keep {} aside: {e}; {r}", db.display()))?;
    }
    for (side, to) in wal_files(db).into_iter().zip(wal_files(&aside)) {
        if side.exists() {
            std::fs::rename(&side, &to).map_err(|e| format!("cannot move {} aside: {e}", side.display()))?;
        }
    }
    Ok(aside)
}

/// The `-wal` and `-shm` files SQLite keeps beside a WAL-mode database.
fn wal_files(db: &Path) -> [PathBuf; 2] {
    ["-wal", "-shm"].map(|suffix| PathBuf::from(format!("{}{suffix}", db.display())))
}

/// A fresh temporary name in FILE's directory (so the final rename stays on one file system).
fn temp_beside(file: &Path, what: &str) -> Result<PathBuf, String> {
    let name = file.file_name().ok_or_else(|| format!("{} is not a file name", file.display()))?;
    Ok(file.with_file_name(format!(".{}.{what}-{}", name.to_string_lossy(), std::process::id())))
}

fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

fn copy_private(from: &Path, to: &Path) -> Result<(), String> {
    let mut source = std::fs::File::open(from).map_err(|e| format!("cannot read {}: {e}", from.display()))?;
    let mut target = create_private(to).map_err(|e| format!("cannot create {}: {e}", to.display()))?;
    std::io::copy(&mut source, &mut target).map_err(|e| format!("cannot copy to {}: {e}", to.display()))?;
    target.flush().and_then(|()| target.sync_all()).map_err(|e| format!("cannot flush {}: {e}", to.display()))
}

#[cfg(unix)]
fn keep_owner(from: &Path, to: &Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let (old, new) = match (std::fs::metadata(from), std::fs::metadata(to)) {
        (Ok(old), Ok(new)) => (old, new),
        _ => return Ok(()),
    };
    if (old.uid(), old.gid()) == (new.uid(), new.gid()) {
        return Ok(());
    }
    std::os::unix::fs::chown(to, Some(old.uid()), Some(old.gid())).map_err(|e| {
        format!("cannot give {} the owner of {} ({}:{}): {e}", to.display(), from.display(), old.uid(), old.gid())
    })
}

#[cfg(not(unix))]
fn keep_owner(_from: &Path, _to: &Path) -> Result<(), String> {
    Ok(())
}

fn sync_file(path: &Path) -> Result<(), String> {
    std::fs::File::open(path).and_then(|f| f.sync_all()).map_err(|e| format!("cannot flush {}: {e}", path.display()))
}

/// Makes a rename in `path`'s directory durable.
fn sync_dir_of(path: &Path) -> Result<(), String> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    #[cfg(unix)]
    {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| format!("cannot flush {}: {e}", dir.display()))?;
    }
    Ok(())
}
