//! The bootstrap admin API token: created on first start, readable only by its owner.
//!
//! It is the local CLI's credential and holds the `admin` role (actor `admin` in the audit
//! trail); it creates the named tokens with roles that scripts and people use instead
//! (`crate::access::Tokens`). Whoever can read the data directory is an administrator.

use std::io::Write;
use std::path::Path;

/// Name of the token file inside the data directory.
pub(crate) const TOKEN_FILE: &str = "api-token";

/// Reads the token from the data directory, creating a random one (mode 0600) if absent.
pub(crate) fn load_or_create(data_dir: &Path) -> std::io::Result<String> {
    let path = data_dir.join(TOKEN_FILE);
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let token = existing.trim().to_string();
        if token.len() >= 32 {
            return Ok(token);
        }
    }
    let bytes: [u8; 32] = rand::random();
    let token = hex::encode(bytes);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&path)?;
    // `mode` applies only to a new file; a short token rewritten in place must not stay readable.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(token.as_bytes())?;
    file.write_all(b"\n")?;
    Ok(token)
}
