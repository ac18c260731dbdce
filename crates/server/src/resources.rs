//! The catalog of stored files: firmware images, ringtones, wallpapers and language files that
//! phones download, by the name they are served under.
//!
//! [`ResourceCatalog`] is the in-memory copy of the store's `resource_files` table, loaded at
//! start; every read (a render deriving `firmware.url`, the file routes) answers from memory.
//! Only the file service (`filestore`) changes it, after the store has the change. The content
//! of each file lives outside the database, addressed by its SHA-256:
//! `<data_dir>/files/sha256/<hex>` ([`ResourceCatalog::content_path`]), so identical uploads
//! under two names are stored once.
//!
//! On PostgreSQL the content is in the database too, so a node serves files uploaded through
//! another: [`ResourceCatalog::ensure_content`] fetches what this node lacks (`shared_content`).
//!
//! A foundation module: it names nothing of the server but `config`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, OnceLock, RwLock};

use sipprov_model::Mac;
use sipprov_store::{Backend, ResourceFileRecord, Store, StoreError};

mod shared_content;

/// The longest file name the catalog accepts.
pub const MAX_NAME_LEN: usize = 128;

/// What a stored file is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ResourceKind {
    /// A firmware image for some models of one vendor.
    Firmware,
    /// A ringtone.
    Ringtone,
    /// A wallpaper or logo.
    Wallpaper,
    /// A language (translation) file.
    Language,
}

impl ResourceKind {
    /// Every kind, in display order.
    pub const ALL: [ResourceKind; 4] =
        [ResourceKind::Firmware, ResourceKind::Ringtone, ResourceKind::Wallpaper, ResourceKind::Language];

    /// The stable name stored and sent.
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceKind::Firmware => "firmware",
            ResourceKind::Ringtone => "ringtone",
            ResourceKind::Wallpaper => "wallpaper",
            ResourceKind::Language => "language",
        }
    }

    /// The setting that names a file of this kind for a device (`ringtone.file`…) and the URL
    /// key the render derives from it (`ringtone.url`…); `None` for firmware, which a device
    /// names by version (`firmware.version`). The one table the registry's checks, the
    /// render and the in-use check read.
    pub fn setting_keys(self) -> Option<(&'static str, &'static str)> {
        use sipprov_model::known;
        match self {
            ResourceKind::Firmware => None,
            ResourceKind::Ringtone => Some((known::RINGTONE_FILE.name(), known::RINGTONE_URL.name())),
            ResourceKind::Wallpaper => Some((known::WALLPAPER_FILE.name(), known::WALLPAPER_URL.name())),
            ResourceKind::Language => Some((known::LANGUAGE_FILE.name(), known::LANGUAGE_URL.name())),
        }
    }
}

/// A name that is not one of the expected stable names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} must be one of {expected}, not {value:?}")]
pub struct BadName {
    /// What was parsed (`kind`, `access`).
    pub what: &'static str,
    /// The names accepted, comma-separated.
    pub expected: &'static str,
    /// What was given.
    pub value: String,
}

impl FromStr for ResourceKind {
    type Err = BadName;
    fn from_str(s: &str) -> Result<Self, BadName> {
        ResourceKind::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| BadName {
            what: "kind",
            expected: "firmware, ringtone, wallpaper, language",
            value: s.to_string(),
        })
    }
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// Who may download a stored file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FileAccess {
    /// Anyone who reaches the provisioning listener (firmware images are not secret).
    Open,
    /// Only a device, with its own authentication, under its own MAC's path.
    Device,
}

impl FileAccess {
    /// The stable name stored and sent.
    pub fn as_str(self) -> &'static str {
        match self {
            FileAccess::Open => "open",
            FileAccess::Device => "device",
        }
    }
}

impl FromStr for FileAccess {
    type Err = BadName;
    fn from_str(s: &str) -> Result<Self, BadName> {
        match s {
            "open" => Ok(FileAccess::Open),
            "device" => Ok(FileAccess::Device),
            _ => Err(BadName { what: "access", expected: "open, device", value: s.to_string() }),
        }
    }
}

impl fmt::Display for FileAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// One catalog entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceFile {
    /// The served file name, unique in the catalog (see [`check_name`]).
    pub name: String,
    /// What it is for.
    pub kind: ResourceKind,
    /// The content's SHA-256, lower-case hex: its address on disk and its strong ETag.
    pub sha256: String,
    /// The content's length in bytes.
    pub size: u64,
    /// Firmware: the vendor id (required); others: optional.
    pub vendor: Option<String>,
    /// Firmware: the (canonical) model names it installs on, at least one.
    pub models: Vec<String>,
    /// Firmware: the version as the phone's User-Agent reports it (required).
    pub version: Option<String>,
    /// Who may download it.
    pub access: FileAccess,
    /// When it was added (seconds since the epoch).
    pub added_at: i64,
    /// Who added it (token or console user name).
    pub added_by: String,
}

impl ResourceFile {
    /// Reads a stored row; an unknown kind or access name means the database was written by
    /// something else, hence [`StoreError::Corrupt`].
    pub fn from_record(r: ResourceFileRecord) -> Result<ResourceFile, StoreError> {
        let corrupt = |e: BadName| StoreError::Corrupt(format!("file {}: {e}", r.name));
        Ok(ResourceFile {
            kind: r.kind.parse().map_err(corrupt)?,
            access: r.access.parse().map_err(corrupt)?,
            name: r.name,
            sha256: r.sha256,
            size: r.size,
            vendor: r.vendor,
            models: r.models,
            version: r.version,
            added_at: r.added_at,
            added_by: r.added_by,
        })
    }

    /// The row the store keeps.
    pub fn to_record(&self) -> ResourceFileRecord {
        ResourceFileRecord {
            name: self.name.clone(),
            kind: self.kind.as_str().to_string(),
            sha256: self.sha256.clone(),
            size: self.size,
            vendor: self.vendor.clone(),
            models: self.models.clone(),
            version: self.version.clone(),
            access: self.access.as_str().to_string(),
            added_at: self.added_at,
            added_by: self.added_by.clone(),
        }
    }

    /// Whether this is a firmware image for `vendor`'s `model` (model names compared without
    /// regard to case).
    pub fn is_firmware_for(&self, vendor: &str, model: &str) -> bool {
        self.kind == ResourceKind::Firmware
            && self.vendor.as_deref() == Some(vendor)
            && self.models.iter().any(|m| m.eq_ignore_ascii_case(model))
    }
}

/// Checks a file name: 1 to [`MAX_NAME_LEN`] characters of letters, digits and `._+()-,`, not
/// starting with a dot. It is a URL path segment and a name phones write into their own
/// storage, so nothing that needs escaping, no `/`, no `..`.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(format!("must be 1 to {MAX_NAME_LEN} characters long"));
    }
    if name.starts_with('.') {
        return Err("must not start with '.'".into());
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._+()-,".contains(&b)) {
        return Err("may contain only letters, digits and . _ + ( ) - ,".into());
    }
    Ok(())
}

/// Whether `hex` is a SHA-256 in the catalog's spelling (64 lower-case hex digits): only such a
/// string may become a path under the content directory.
pub fn is_sha256_hex(hex: &str) -> bool {
    hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The in-memory catalog. Cheap to clone; reads never touch the database.
#[derive(Clone)]
pub struct ResourceCatalog {
    inner: Arc<Inner>,
}

struct Inner {
    /// `<data_dir>/files/sha256`.
    content_dir: PathBuf,
    files: RwLock<BTreeMap<String, Arc<ResourceFile>>>,
    /// On PostgreSQL: where content this node lacks is fetched from.
    shared: OnceLock<shared_content::SharedContent>,
}

impl ResourceCatalog {
    /// The content directory under `data_dir`: `<data_dir>/files/sha256`.
    pub fn content_dir_of(data_dir: &Path) -> PathBuf {
        data_dir.join("files").join("sha256")
    }

    /// An empty catalog whose content lives under `data_dir`.
    pub fn empty(data_dir: &Path) -> ResourceCatalog {
        let inner = Inner {
            content_dir: Self::content_dir_of(data_dir),
            files: RwLock::new(BTreeMap::new()),
            shared: OnceLock::new(),
        };
        ResourceCatalog { inner: Arc::new(inner) }
    }

    /// The catalog as the store has it. A row whose content is missing on disk is kept (it
    /// shows in listings; serving it fails) and logged, so an operator restoring a database
    /// without its files learns it at start.
    pub async fn load(store: &Store, data_dir: &Path) -> Result<ResourceCatalog, StoreError> {
        let catalog = ResourceCatalog::empty(data_dir);
        if store.backend() == Backend::Postgres {
            let _ = catalog.inner.shared.set(shared_content::SharedContent::new(store.clone()));
        }
        for record in store.resource_files().await? {
            let file = ResourceFile::from_record(record)?;
            // On PostgreSQL missing content is fetched from the database when first asked for.
            if catalog.inner.shared.get().is_none() && !catalog.content_path(&file).is_file() {
                tracing::warn!(file = %file.name, sha256 = %file.sha256, "stored file's content is missing on disk");
            }
            catalog.insert(file);
        }
        Ok(catalog)
    }

    /// Replaces the catalog with the store's rows (another node added or removed a file).
    pub async fn reload(&self, store: &Store) -> Result<(), StoreError> {
        let mut files = BTreeMap::new();
        for record in store.resource_files().await? {
            let file = ResourceFile::from_record(record)?;
            files.insert(file.name.clone(), Arc::new(file));
        }
        *self.inner.files.write().unwrap_or_else(|e| e.into_inner()) = files;
        Ok(())
    }

    /// The entry named `name`.
    pub fn by_name(&self, name: &str) -> Option<Arc<ResourceFile>> {
        self.read().get(name).cloned()
    }

    /// The firmware image for `vendor`'s `model` at `version`, if one was uploaded.
    pub fn firmware_for(&self, vendor: &str, model: &str, version: &str) -> Option<Arc<ResourceFile>> {
        self.read()
            .values()
            .find(|f| f.is_firmware_for(vendor, model) && f.version.as_deref() == Some(version))
            .cloned()
    }

    /// Every entry, by name.
    pub fn list(&self) -> Vec<Arc<ResourceFile>> {
        self.read().values().cloned().collect()
    }

    /// Where a file's content lives: `<data_dir>/files/sha256/<hex>` (mode 0640).
    pub fn content_path(&self, file: &ResourceFile) -> PathBuf {
        self.inner.content_dir.join(&file.sha256)
    }

    /// Where `file`'s content is on this node, fetched first from the database when this node
    /// lacks it (PostgreSQL; see `shared_content`, which checks its size and SHA-256).
    pub async fn ensure_content(&self, file: &ResourceFile) -> std::io::Result<PathBuf> {
        match self.inner.shared.get() {
            Some(shared) => shared.ensure(&self.inner.content_dir, &file.sha256, file.size).await,
            None => Ok(self.content_path(file)),
        }
    }

    /// The store file content is shared through, on PostgreSQL.
    pub fn shared_store(&self) -> Option<&Store> {
        self.inner.shared.get().map(|s| &s.store)
    }

    /// The content directory, `<data_dir>/files/sha256` (mode 0750).
    pub fn content_dir(&self) -> &Path {
        &self.inner.content_dir
    }

    /// The path a device fetches `file` at on the provisioning listener: `/files/<name>` for an
    /// open file, `/files/<MAC12 upper>/<name>` for one served only to that device.
    pub fn url_path(&self, file: &ResourceFile, mac: Mac) -> String {
        match file.access {
            FileAccess::Open => format!("/files/{}", file.name),
            FileAccess::Device => format!("/files/{}/{}", mac.upper(), file.name),
        }
    }

    /// Puts `file` into the in-memory copy. Only the file service calls it, after the store
    /// committed the row.
    pub fn insert(&self, file: ResourceFile) {
        self.write().insert(file.name.clone(), Arc::new(file));
    }

    /// Takes the entry named `name` out of the in-memory copy. Only the file service calls it,
    /// after the store committed the removal.
    pub fn remove(&self, name: &str) -> Option<Arc<ResourceFile>> {
        self.write().remove(name)
    }

    /// Whether any entry names content `sha256`.
    pub fn names_content(&self, sha256: &str) -> bool {
        self.read().values().any(|f| f.sha256 == sha256)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<ResourceFile>>> {
        // A panic while holding the lock cannot leave the map half-written: every write is one
        // insert or remove.
        self.inner.files.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Arc<ResourceFile>>> {
        self.inner.files.write().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn firmware(name: &str, models: &[&str], version: &str, access: FileAccess) -> ResourceFile {
        ResourceFile {
            name: name.into(),
            kind: ResourceKind::Firmware,
            sha256: "ab".repeat(32),
            size: 3,
            vendor: Some("yealink".into()),
            models: models.iter().map(|m| m.to_string()).collect(),
            version: Some(version.into()),
            access,
            added_at: 1,
            added_by: "admin".into(),
        }
    }

    #[test]
    fn names_are_checked_for_charset_length_and_leading_dot() {
        for good in ["T46S-66.86.0.160.rom", "fw(1)+b,c_d.bin", &"a".repeat(MAX_NAME_LEN)] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", ".hidden", "a/b", "..", "a b", "ä.rom", "a%2f", &"a".repeat(MAX_NAME_LEN + 1)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn kinds_and_access_read_their_stable_names_only() {
        for kind in ResourceKind::ALL {
            assert_eq!(kind.as_str().parse::<ResourceKind>().unwrap(), kind);
        }
        let err = "logo".parse::<ResourceKind>().unwrap_err().to_string();
        assert!(err.contains("kind") && err.contains("wallpaper") && err.contains("logo"), "{err}");
        assert_eq!("device".parse::<FileAccess>().unwrap(), FileAccess::Device);
        assert!("public".parse::<FileAccess>().unwrap_err().to_string().contains("open, device"));
    }

    #[test]
    fn lookups_answer_from_memory_and_paths_follow_the_access_policy() {
        let dir = Path::new("/var/lib/sipprov");
        let catalog = ResourceCatalog::empty(dir);
        catalog.insert(firmware("a.rom", &["T46S", "T48S"], "66.86.0.160", FileAccess::Open));
        catalog.insert(firmware("b.rom", &["T46S"], "66.86.0.170", FileAccess::Device));
        assert_eq!(catalog.firmware_for("yealink", "t48s", "66.86.0.160").unwrap().name, "a.rom");
        assert_eq!(catalog.firmware_for("yealink", "T46S", "66.86.0.170").unwrap().name, "b.rom");
        assert!(catalog.firmware_for("yealink", "T48S", "66.86.0.170").is_none());
        assert!(catalog.firmware_for("snom", "T46S", "66.86.0.160").is_none());
        let names: Vec<_> = catalog.list().iter().map(|f| f.name.clone()).collect();
        assert_eq!(names, ["a.rom", "b.rom"]);

        let mac: Mac = "001565aabbcc".parse().unwrap();
        let a = catalog.by_name("a.rom").unwrap();
        let b = catalog.by_name("b.rom").unwrap();
        assert_eq!(catalog.url_path(&a, mac), "/files/a.rom");
        assert_eq!(catalog.url_path(&b, mac), "/files/001565AABBCC/b.rom");
        assert_eq!(catalog.content_path(&a), dir.join("files/sha256").join("ab".repeat(32)));
        assert!(catalog.names_content(&"ab".repeat(32)));
        catalog.remove("a.rom");
        catalog.remove("b.rom");
        assert!(!catalog.names_content(&"ab".repeat(32)) && catalog.list().is_empty());
    }

    #[test]
    fn rows_round_trip_and_unknown_names_are_corrupt() {
        let file = firmware("a.rom", &["T46S"], "1", FileAccess::Device);
        assert_eq!(ResourceFile::from_record(file.to_record()).unwrap(), file);
        let mut bad = file.to_record();
        bad.kind = "logo".into();
        assert!(matches!(ResourceFile::from_record(bad), Err(StoreError::Corrupt(_))));
    }
}
