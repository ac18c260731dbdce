//! The data directory's lock: `sipprov serve` holds it for its whole life, and `sipprov restore`
//! takes it before replacing the database, so a restore never swaps the file under a running
//! server and a server cannot start in the middle of a restore.
//!
//! It is an advisory exclusive lock (`File::try_lock`, `flock(2)` on Linux) on `DATA_DIR/sipprov.lock`. The kernel drops it when the holder
//! exits, however it exits (even SIGKILL), so a crash leaves no stale lock to clean by hand;
//! the file itself stays and means nothing on its own.

use std::fs::File;
use std::path::{Path, PathBuf};

/// The lock file's name in the data directory.
pub(crate) const LOCK_FILE: &str = "sipprov.lock";

/// A held lock on a data directory; released when dropped (or when the process ends).
#[derive(Debug)]
pub(crate) struct DataDirLock {
    _file: File,
}

/// Why the lock could not be taken.
#[derive(Debug)]
pub(crate) enum LockError {
    /// Another process holds it: a server is using the directory (or a restore is running).
    Held(PathBuf),
    /// The lock file could not be opened or locked.
    Io(PathBuf, std::io::Error),
}

impl std::fmt::Display for LockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LockError::Held(dir) => write!(
                f,
                "a sipprov server (or a restore) is using the data directory {}; stop it first",
                dir.display()
            ),
            LockError::Io(path, e) => write!(f, "cannot lock {}: {e}", path.display()),
        }
    }
}

impl DataDirLock {
    /// Takes the lock on `dir` without waiting.
    pub(crate) fn acquire(dir: &Path) -> Result<DataDirLock, LockError> {
        let path = dir.join(LOCK_FILE);
        let file = open_or_create(&path, dir).map_err(|e| LockError::Io(path.clone(), e))?;
        match file.try_lock() {
            Ok(()) => Ok(DataDirLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(LockError::Held(dir.to_path_buf())),
            Err(std::fs::TryLockError::Error(e)) => Err(LockError::Io(path, e)),
        }
    }
}

/// Opens the lock file for reading (all a lock needs), creating it if missing. The file is
/// empty and not secret (mode 0644 inside the 0700 directory), and one created by root (a
/// restore run by the administrator) is given to the directory's owner, so the service user can
/// still open it.
fn open_or_create(path: &Path, dir: &Path) -> std::io::Result<File> {
    match File::open(path) {
        Ok(file) => return Ok(file),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        Err(_) => {}
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o644);
    }
    let file = options.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(d), Ok(f)) = (std::fs::metadata(dir), file.metadata()) {
            if (d.uid(), d.gid()) != (f.uid(), f.gid()) {
                std::os::unix::fs::chown(path, Some(d.uid()), Some(d.gid()))?;
            }
        }
    }
    Ok(file)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataDirLock::acquire(dir.path()).unwrap();
        assert!(matches!(DataDirLock::acquire(dir.path()), Err(LockError::Held(_))));
        drop(first);
        DataDirLock::acquire(dir.path()).unwrap();
    }
}
