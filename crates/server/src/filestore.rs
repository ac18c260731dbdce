//! The file service: getting firmware and resource files into the catalog and out of it.
//!
//! An upload is validated before anything is written (name, kind, vendor, models, version,
//! access), then streamed to disk while hashed, bounded by `[files] max_upload_bytes`
//! (`blob`); the content is stored once per SHA-256 under `<data_dir>/files/sha256/`, and only
//! then is the row written, with its audit entry, in one transaction. A failure at any step
//! leaves neither a row without content nor content without a row. Removal is refused while
//! the file is in use ([`in_use`], the one place that decides it), and the content goes with
//! the last row naming it. Every change clears the render cache, so no cached file keeps
//! pointing at a removed file.
//!
//! On PostgreSQL the content is also written to the database (chunked) before the row, and
//! removed from it with the last row naming it, so every node can serve the file
//! (`resources::ResourceCatalog::ensure_content` fetches it where it is missing); a node drops
//! local content no entry names any more ([`FileStore::sweep_unnamed_content`]).
//!
//! The admin API and the web console call this service; it calls the store, the in-memory
//! catalog ([`ResourceCatalog`]), the inventory and the render cache.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::Stream;
use sipprov_model::known;
use sipprov_store::{Store, StoreError};
use sipprov_vendors::registry;

use crate::access::{audit, Actor};
use crate::cache::RenderCache;
use crate::config::FilesConfig;
use crate::inventory::Inventory;
use crate::pins::FirmwarePins;
use crate::resources::{check_name, FileAccess, ResourceCatalog, ResourceFile, ResourceKind};

mod blob;
pub mod in_use;

/// Serialises placing content + writing its row against removing a row + its content, so a
/// removal never deletes content an upload of the same bytes is about to name.
static CHANGES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// What an upload says about the file, as given (the service validates every member).
#[derive(Debug, Clone, Default)]
pub struct UploadRequest {
    /// The name to serve it under.
    pub name: String,
    /// `firmware`, `ringtone`, `wallpaper` or `language`.
    pub kind: String,
    /// The vendor id (firmware: required).
    pub vendor: Option<String>,
    /// Model names (firmware: at least one).
    pub models: Vec<String>,
    /// The version (firmware: required).
    pub version: Option<String>,
    /// `open` (default) or `device`.
    pub access: Option<String>,
}

/// Which kinds a request addresses: `/firmware` sees firmware only, `/resources` the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KindScope {
    /// Firmware images.
    Firmware,
    /// Ringtones, wallpapers and language files.
    Resources,
}

impl KindScope {
    /// Whether a file of `kind` is in this scope.
    pub fn holds(self, kind: ResourceKind) -> bool {
        (kind == ResourceKind::Firmware) == (self == KindScope::Firmware)
    }
}

/// Why a file could not be added or removed.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// A request member is wrong; nothing was written.
    #[error("{field}: {message}")]
    Invalid {
        /// The member at fault (`name`, `kind`, `vendor`, `models`, `version`, `access`).
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// The name, or for firmware the vendor/model/version, is taken.
    #[error("{0}")]
    Duplicate(String),
    /// The upload is larger than `[files] max_upload_bytes`; nothing stayed on disk.
    #[error("the file is larger than the upload limit of {limit} bytes ([files] max_upload_bytes)")]
    TooLarge {
        /// The limit, in bytes.
        limit: u64,
    },
    /// No such file.
    #[error("no file named {0:?}")]
    NotFound(String),
    /// Something still uses the file; nothing was removed.
    #[error("file {name} is in use: {}", reasons.join("; "))]
    InUse {
        /// The file.
        name: String,
        /// What uses it ([`in_use::in_use`]).
        reasons: Vec<String>,
    },
    /// The upload's body failed (the client went away, a malformed form).
    #[error("the upload did not arrive whole: {0}")]
    Body(String),
    /// The disk failed.
    #[error("cannot store the file: {0}")]
    Io(#[from] std::io::Error),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn invalid(field: &'static str, message: impl Into<String>) -> FileError {
    FileError::Invalid { field, message: message.into() }
}

/// The file service. Cheap to share behind an `Arc`.
pub struct FileStore {
    store: Store,
    catalog: ResourceCatalog,
    inventory: Arc<Inventory>,
    cache: Arc<RenderCache>,
    max_upload_bytes: u64,
    /// The rollouts' pins: a pinned device uses its pin's firmware (see [`Self::with_pins`]).
    pins: Option<Arc<FirmwarePins>>,
}

impl FileStore {
    /// The service over the catalog; removes what a crash left behind: temporary uploads, and
    /// content no catalog entry names (placed, but its row never committed).
    pub fn new(
        store: Store,
        catalog: ResourceCatalog,
        inventory: Arc<Inventory>,
        cache: Arc<RenderCache>,
        config: &FilesConfig,
    ) -> FileStore {
        let swept = blob::sweep_temporaries(catalog.content_dir());
        let orphans = blob::sweep_orphans(catalog.content_dir(), |sha| catalog.names_content(sha));
        if swept + orphans > 0 {
            tracing::info!(swept, orphans, "removed unfinished uploads left by an earlier run");
        }
        FileStore { store, catalog, inventory, cache, max_upload_bytes: config.max_upload_bytes, pins: None }
    }

    /// The service that also refuses to remove a firmware image a rollout has pinned devices to.
    pub fn with_pins(self, pins: Arc<FirmwarePins>) -> FileStore {
        FileStore { pins: Some(pins), ..self }
    }

    /// The in-memory catalog.
    pub fn catalog(&self) -> &ResourceCatalog {
        &self.catalog
    }

    /// The upload limit in bytes (`[files] max_upload_bytes`).
    pub fn max_upload_bytes(&self) -> u64 {
        self.max_upload_bytes
    }

    /// The file named `name` if it is in `scope`.
    pub fn get(&self, scope: KindScope, name: &str) -> Option<Arc<ResourceFile>> {
        self.catalog.by_name(name).filter(|f| scope.holds(f.kind))
    }

    /// Every file in `scope`, by name.
    pub fn list(&self, scope: KindScope) -> Vec<Arc<ResourceFile>> {
        self.catalog.list().into_iter().filter(|f| scope.holds(f.kind)).collect()
    }

    /// What still uses `file` (empty: it may be removed). See [`in_use`] for the rules and
    /// where to add one.
    pub fn in_use(&self, file: &ResourceFile) -> Vec<String> {
        in_use::in_use(&in_use::InUseSources { inventory: &self.inventory, pins: self.pins.as_deref() }, file)
    }

    /// Validates `request`, streams `body` to disk, and adds the file, audited as `actor`.
    pub async fn add<S, E>(
        &self,
        actor: &Actor,
        request: UploadRequest,
        body: S,
    ) -> Result<Arc<ResourceFile>, FileError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let mut file = validate(request)?;
        self.check_free(&file)?;
        blob::ensure_dir(self.catalog.content_dir())?;
        let staged =
            blob::stage(self.catalog.content_dir(), body, self.max_upload_bytes).await.map_err(|e| match e {
                blob::StreamFailure::TooLarge => FileError::TooLarge { limit: self.max_upload_bytes },
                blob::StreamFailure::Body(why) => FileError::Body(why),
                blob::StreamFailure::Io(e) => FileError::Io(e),
            })?;
        (file.sha256, file.size) = (staged.sha256.clone(), staged.size);
        file.added_at = sipprov_store::now_ms() / 1000;
        file.added_by = actor.name.clone();

        let _turn = CHANGES.lock().await;
        self.check_free(&file)?;
        let created = staged.place(self.catalog.content_dir())?;
        if let Err(e) = self.share_content(&file).await {
            if created && !self.catalog.names_content(&file.sha256) {
                blob::remove(self.catalog.content_dir(), &file.sha256)?;
            }
            return Err(e);
        }
        let entry = audit::entry(actor, "file.add", "file", &file.name, detail(&file));
        let stored = self.store.insert_resource_file(&file.to_record(), &entry).await;
        if !matches!(stored, Ok(true)) {
            if created && !self.catalog.names_content(&file.sha256) {
                blob::remove(self.catalog.content_dir(), &file.sha256)?;
            }
            stored?;
            return Err(FileError::Duplicate(format!("a file named {} exists", file.name)));
        }
        let file = Arc::new(file);
        self.catalog.insert((*file).clone());
        self.cache.invalidate_all();
        tracing::info!(name = %file.name, kind = %file.kind, sha256 = %file.sha256, size = file.size, actor = %actor.name, "file added");
        Ok(file)
    }

    /// Removes the file named `name` (in `scope`), audited as `actor`; refused while it is in
    /// use. Its content goes when no other file names it.
    pub async fn remove(&self, actor: &Actor, scope: KindScope, name: &str) -> Result<Arc<ResourceFile>, FileError> {
        let _turn = CHANGES.lock().await;
        let file = self.get(scope, name).ok_or_else(|| FileError::NotFound(name.to_string()))?;
        let reasons = self.in_use(&file);
        if !reasons.is_empty() {
            return Err(FileError::InUse { name: file.name.clone(), reasons });
        }
        let entry = audit::entry(actor, "file.remove", "file", &file.name, detail(&file));
        let Some(removed) = self.store.delete_resource_file(name, &entry).await? else {
            self.catalog.remove(name);
            return Err(FileError::NotFound(name.to_string()));
        };
        self.catalog.remove(name);
        self.cache.invalidate_all();
        if removed.last_reference {
            if let Some(store) = self.catalog.shared_store() {
                store.delete_blob(&file.sha256).await?;
            }
            blob::remove(self.catalog.content_dir(), &file.sha256)?;
        }
        tracing::info!(name = %file.name, sha256 = %file.sha256, actor = %actor.name, "file removed");
        Ok(file)
    }

    /// On PostgreSQL, writes the content placed for `file` to the database, so the other nodes
    /// can fetch it (once per SHA-256), before its catalog row names it.
    async fn share_content(&self, file: &ResourceFile) -> Result<(), FileError> {
        let Some(store) = self.catalog.shared_store() else { return Ok(()) };
        store.put_blob_from_file(&file.sha256, &self.catalog.content_path(file)).await?;
        Ok(())
    }

    /// Removes content no catalog entry names any more (another node removed its last file),
    /// holding the turn of adds and removals so content about to be named is never taken.
    pub async fn sweep_unnamed_content(&self) -> usize {
        let _turn = CHANGES.lock().await;
        blob::sweep_orphans(self.catalog.content_dir(), |sha| self.catalog.names_content(sha))
    }

    /// Refuses a name that is taken, and a firmware image for a vendor, model and version that
    /// another image already covers (a device would have two to choose from).
    fn check_free(&self, file: &ResourceFile) -> Result<(), FileError> {
        if self.catalog.by_name(&file.name).is_some() {
            return Err(FileError::Duplicate(format!("a file named {} exists", file.name)));
        }
        let (Some(vendor), Some(version)) = (&file.vendor, &file.version) else { return Ok(()) };
        for model in &file.models {
            if let Some(other) = self.catalog.firmware_for(vendor, model, version) {
                return Err(FileError::Duplicate(format!(
                    "{} already holds {vendor} {model} firmware {version}",
                    other.name
                )));
            }
        }
        Ok(())
    }
}

/// What the audit trail records of a file.
fn detail(file: &ResourceFile) -> serde_json::Value {
    serde_json::json!({
        "kind": file.kind.as_str(), "sha256": file.sha256, "size": file.size, "vendor": file.vendor,
        "models": file.models, "version": file.version, "access": file.access.as_str(),
    })
}

/// Checks every member of `request` and returns the file it describes (content not yet known).
fn validate(request: UploadRequest) -> Result<ResourceFile, FileError> {
    check_name(&request.name).map_err(|m| invalid("name", format!("file name {m}")))?;
    let kind: ResourceKind =
        request.kind.parse().map_err(|e: crate::resources::BadName| invalid("kind", e.to_string()))?;
    let access = match request.access.as_deref().filter(|a| !a.is_empty()) {
        None => FileAccess::Open,
        Some(a) => a.parse().map_err(|e: crate::resources::BadName| invalid("access", e.to_string()))?,
    };
    let vendor = request.vendor.filter(|v| !v.is_empty());
    let models = canonical_models(vendor.as_deref(), &request.models)?;
    let version = request.version.filter(|v| !v.is_empty());
    if kind == ResourceKind::Firmware {
        if vendor.is_none() {
            return Err(invalid("vendor", "a firmware file needs the vendor it is for"));
        }
        if models.is_empty() {
            return Err(invalid("models", "a firmware file needs the models it installs on"));
        }
        let Some(v) = &version else {
            return Err(invalid("version", "a firmware file needs its version, as the phone reports it"));
        };
        known::FIRMWARE_VERSION.check(v).map_err(|e| invalid("version", e.to_string()))?;
    } else if version.is_some() {
        return Err(invalid("version", "only a firmware file has a version"));
    }
    Ok(ResourceFile {
        name: request.name,
        kind,
        sha256: String::new(),
        size: 0,
        vendor,
        models,
        version,
        access,
        added_at: 0,
        added_by: String::new(),
    })
}

/// The vendor's canonical names of `models` (`SIP-T46S` → `T46S`), without repeats; every one
/// must be a model of `vendor`, which must be registered.
fn canonical_models(vendor: Option<&str>, models: &[String]) -> Result<Vec<String>, FileError> {
    let Some(vendor) = vendor else {
        if models.iter().any(|m| !m.trim().is_empty()) {
            return Err(invalid("models", "models are given with the vendor they belong to"));
        }
        return Ok(Vec::new());
    };
    let Some(v) = registry().get(vendor) else {
        let known: Vec<&str> = registry().vendors().iter().map(|v| v.id()).collect();
        return Err(invalid("vendor", format!("unknown vendor {vendor:?}; known vendors: {}", known.join(", "))));
    };
    let mut out: Vec<String> = Vec::new();
    for name in models.iter().flat_map(|m| m.split(',')).map(str::trim).filter(|m| !m.is_empty()) {
        let Some(model) = v.model(name) else {
            let known: Vec<&str> = v.models().iter().map(|m| m.name).collect();
            return Err(invalid(
                "models",
                format!("{name:?} is not a {vendor} model; known {vendor} models: {}", known.join(", ")),
            ));
        };
        if !out.iter().any(|m| m == model.name) {
            out.push(model.name.to_string());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn firmware(vendor: &str, models: &[&str], version: &str) -> UploadRequest {
        UploadRequest {
            name: "fw.rom".into(),
            kind: "firmware".into(),
            vendor: Some(vendor.into()),
            models: models.iter().map(|m| m.to_string()).collect(),
            version: Some(version.into()),
            access: None,
        }
    }

    fn field_of(r: Result<ResourceFile, FileError>) -> (&'static str, String) {
        match r {
            Err(FileError::Invalid { field, message }) => (field, message),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn firmware_needs_a_known_vendor_its_models_and_a_version() {
        let ok = validate(firmware("yealink", &["SIP-T46S", "t48s", "T46S"], "66.86.0.160")).unwrap();
        assert_eq!(ok.models, ["T46S", "T48S"], "canonical, without repeats");
        assert_eq!(ok.access, FileAccess::Open);

        let (field, message) = field_of(validate(firmware("acme", &["X"], "1")));
        assert!(field == "vendor" && message.contains("yealink"), "{message}");
        let (field, message) = field_of(validate(firmware("yealink", &["T99Z"], "1")));
        assert!(field == "models" && message.contains("T99Z") && message.contains("T46S"), "{message}");
        assert_eq!(field_of(validate(firmware("yealink", &[], "1"))).0, "models");
        assert_eq!(field_of(validate(firmware("yealink", &["T46S"], "1 0"))).0, "version");
        assert_eq!(
            field_of(validate(UploadRequest { version: None, ..firmware("yealink", &["T46S"], "1") })).0,
            "version"
        );
        assert_eq!(
            field_of(validate(UploadRequest { name: "../x".into(), ..firmware("yealink", &["T46S"], "1") })).0,
            "name"
        );
        let bad_access = UploadRequest { access: Some("public".into()), ..firmware("yealink", &["T46S"], "1") };
        assert_eq!(field_of(validate(bad_access)).0, "access");
    }

    #[test]
    fn other_kinds_take_no_version_and_models_only_with_a_vendor() {
        let tone = UploadRequest { name: "ring.wav".into(), kind: "ringtone".into(), ..Default::default() };
        assert_eq!(validate(tone.clone()).unwrap().kind, ResourceKind::Ringtone);
        assert_eq!(field_of(validate(UploadRequest { kind: "logo".into(), ..tone.clone() })).0, "kind");
        assert_eq!(field_of(validate(UploadRequest { version: Some("1".into()), ..tone.clone() })).0, "version");
        assert_eq!(field_of(validate(UploadRequest { models: vec!["T46S".into()], ..tone })).0, "models");
    }

    #[test]
    fn scopes_split_firmware_from_the_rest() {
        assert!(KindScope::Firmware.holds(ResourceKind::Firmware));
        assert!(!KindScope::Firmware.holds(ResourceKind::Ringtone));
        assert!(KindScope::Resources.holds(ResourceKind::Language));
        assert!(!KindScope::Resources.holds(ResourceKind::Firmware));
    }
}
