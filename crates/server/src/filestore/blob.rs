//! Content-addressed blobs on disk: an upload is streamed into a temporary file in the content
//! directory while it is hashed, then renamed to its SHA-256. A rename within one directory is
//! atomic, so a blob under its final name is always complete; identical content lands on the
//! same name and is kept once.

use std::io;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

/// The prefix of temporary upload files; a name starting with it is never a blob (blobs are
/// 64 hex digits), so start-up can sweep what a crash left.
const TEMP_PREFIX: &str = ".upload-";

/// Why streaming an upload into a temporary file failed.
#[derive(Debug)]
pub(crate) enum StreamFailure {
    /// More than the limit arrived.
    TooLarge,
    /// The client's body failed (connection cut, malformed multipart).
    Body(String),
    /// The disk failed.
    Io(io::Error),
}

/// A finished upload in its temporary file, hashed; the file is removed when this is dropped
/// unless [`Staged::place`] moved it into place.
pub(crate) struct Staged {
    temp: TempFile,
    /// Lower-case hex SHA-256 of the content.
    pub(crate) sha256: String,
    /// Its length in bytes.
    pub(crate) size: u64,
}

/// A temporary file removed on drop: an upload cut off by the client (its request future
/// dropped), refused for size, or failing on disk leaves nothing behind.
struct TempFile {
    path: PathBuf,
    keep: bool,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.keep {
            if let Err(e) = std::fs::remove_file(&self.path) {
                if e.kind() != io::ErrorKind::NotFound {
                    tracing::warn!(path = %self.path.display(), error = %e, "cannot remove a temporary upload");
                }
            }
        }
    }
}

/// Creates the content directory and its parent, owner and group only (0750): blobs may be
/// device-only files.
pub(crate) fn ensure_dir(dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for d in [Some(dir), dir.parent()].into_iter().flatten() {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o750))?;
        }
    }
    Ok(())
}

/// Removes temporary uploads a crash left in `dir`; returns how many.
pub(crate) fn sweep_temporaries(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(TEMP_PREFIX))
        .filter(|e| std::fs::remove_file(e.path()).is_ok())
        .count()
}

/// Streams `body` into a new temporary file in `dir` (mode 0640), hashing as it goes, and
/// stops at the first chunk past `limit` bytes. Memory holds one chunk at a time.
pub(crate) async fn stage<S, E>(dir: &Path, mut body: S, limit: u64) -> Result<Staged, StreamFailure>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let (mut file, temp) = create_temp(dir).await.map_err(StreamFailure::Io)?;
    let mut hasher = Sha256::new();
    let mut size: u64 = 0;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| StreamFailure::Body(e.to_string()))?;
        size = size.saturating_add(chunk.len() as u64);
        if size > limit {
            return Err(StreamFailure::TooLarge);
        }
        hasher.update(&chunk);
        file.write_all(&chunk).await.map_err(StreamFailure::Io)?;
    }
    file.sync_all().await.map_err(StreamFailure::Io)?;
    Ok(Staged { temp, sha256: hex::encode(hasher.finalize()), size })
}

async fn create_temp(dir: &Path) -> io::Result<(tokio::fs::File, TempFile)> {
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o640);
    loop {
        let path = dir.join(format!("{TEMP_PREFIX}{:016x}", rand::random::<u64>()));
        match options.open(&path).await {
            Ok(file) => {
                let temp = TempFile { path, keep: false };
                // Exactly 0640 whatever the umask: the group may read (a web server serving the
                // directory), nobody else.
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    file.set_permissions(std::fs::Permissions::from_mode(0o640)).await?;
                }
                return Ok((file, temp));
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

impl Staged {
    /// Moves the content to `<dir>/<sha256>`; true when this created the blob, false when
    /// identical content was there already (the temporary file is then dropped).
    pub(crate) fn place(mut self, dir: &Path) -> io::Result<bool> {
        let target = dir.join(&self.sha256);
        if target.is_file() {
            return Ok(false);
        }
        std::fs::rename(&self.temp.path, &target)?;
        self.temp.keep = true;
        Ok(true)
    }
}

/// Removes the blob `<dir>/<sha256>`; one already gone is no error.
pub(crate) fn remove(dir: &Path, sha256: &str) -> io::Result<()> {
    match std::fs::remove_file(dir.join(sha256)) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(parts: &[&'static [u8]]) -> impl Stream<Item = Result<Bytes, String>> + Unpin {
        futures_util::stream::iter(parts.iter().map(|p| Ok(Bytes::from_static(p))).collect::<Vec<_>>())
    }

    #[tokio::test]
    async fn a_staged_upload_is_hashed_and_placed_once() {
        let dir = tempfile::tempdir().unwrap();
        let staged = stage(dir.path(), chunks(&[b"hello ", b"world"]), 100).await.unwrap();
        // sha256("hello world")
        assert_eq!(staged.sha256, "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9");
        assert_eq!(staged.size, 11);
        assert!(staged.place(dir.path()).unwrap(), "new content");
        let again = stage(dir.path(), chunks(&[b"hello world"]), 100).await.unwrap();
        assert!(!again.place(dir.path()).unwrap(), "identical content is kept once");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[tokio::test]
    async fn a_refused_or_cut_upload_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(stage(dir.path(), chunks(&[b"12345", b"6"]), 5).await, Err(StreamFailure::TooLarge)));
        let cut = futures_util::stream::iter(vec![Ok(Bytes::from_static(b"x")), Err("reset".to_string())]);
        assert!(matches!(stage(dir.path(), cut, 5).await, Err(StreamFailure::Body(_))));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
