//! The data directory's permissions.
//!
//! The directory holds the database (every SIP and admin password of the fleet) and the admin
//! API token, so it is created readable by its owner only (0700), and so are the files in it
//! (the API token and the SQLite database are created 0600; SQLite gives its `-wal` and `-shm`
//! files the database's mode). A directory or file that already exists is left as the
//! operator made it, but start-up warns, naming the path and the `chmod` that fixes it.

use std::path::{Path, PathBuf};

/// The files in the data directory that hold secrets.
const SECRET_FILES: &[&str] = &["sipprov.db", "sipprov.db-wal", "sipprov.db-shm", crate::token::TOKEN_FILE];

/// Creates the data directory (and missing parents) with mode 0700; an existing one is kept.
pub fn create(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// One path that other users can read, with what fixes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exposed {
    /// The directory or file.
    pub path: PathBuf,
    /// Its permission bits, e.g. `0o755`.
    pub mode: u32,
    /// The mode it should have: 0700 for the directory, 0600 for files.
    pub wanted: u32,
}

impl std::fmt::Display for Exposed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} is accessible to other users (mode {:04o}) and holds the fleet's passwords; fix: chmod {:o} {}",
            self.path.display(),
            self.mode,
            self.wanted,
            self.path.display()
        )
    }
}

/// The data directory and secret files in it that grant any access to group or others.
pub fn exposed(dir: &Path) -> Vec<Exposed> {
    let mut out = Vec::new();
    check(dir, 0o700, &mut out);
    for name in SECRET_FILES {
        check(&dir.join(name), 0o600, &mut out);
    }
    out
}

/// Logs one warning per [`exposed`] path.
pub fn warn_if_exposed(dir: &Path) {
    for e in exposed(dir) {
        tracing::warn!(path = %e.path.display(), mode = format!("{:04o}", e.mode), "{e}");
    }
}

#[cfg(unix)]
fn check(path: &Path, wanted: u32, out: &mut Vec<Exposed>) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::metadata(path) else { return };
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        out.push(Exposed { path: path.to_path_buf(), mode, wanted });
    }
}

#[cfg(not(unix))]
fn check(_path: &Path, _wanted: u32, _out: &mut Vec<Exposed>) {}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn created_private_and_open_ones_are_named() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/data");
        create(&dir).unwrap();
        assert_eq!((mode(&dir), mode(&tmp.path().join("a"))), (0o700, 0o700));
        assert!(exposed(&dir).is_empty());

        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(dir.join("sipprov.db"), "").unwrap();
        std::fs::set_permissions(dir.join("sipprov.db"), std::fs::Permissions::from_mode(0o644)).unwrap();
        let found = exposed(&dir);
        assert_eq!(found.len(), 2, "{found:?}");
        let text = found.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n");
        assert!(text.contains(&format!("chmod 700 {}", dir.display())), "{text}");
        assert!(text.contains(&format!("chmod 600 {}", dir.join("sipprov.db").display())), "{text}");
        assert!(text.contains("mode 0755") && text.contains("mode 0644"), "{text}");
    }
}
