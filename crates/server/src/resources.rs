//! Stand-in for the file catalog (the fw-store branch replaces this file): only what the
//! firmware target and rollouts read, with the same signatures.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, RwLock};

use sipprov_model::Mac;

/// Who may download a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileAccess {
    /// Anyone.
    Open,
    /// Only the device, with its own authentication.
    Device,
}

/// One catalog entry (the fields the firmware target reads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceFile {
    /// The served file name.
    pub name: String,
    /// Firmware: the vendor id.
    pub vendor: Option<String>,
    /// Firmware: the model names it installs on.
    pub models: Vec<String>,
    /// Firmware: the version.
    pub version: Option<String>,
    /// Who may download it.
    pub access: FileAccess,
}

/// The in-memory catalog.
#[derive(Clone)]
pub struct ResourceCatalog {
    files: Arc<RwLock<BTreeMap<String, Arc<ResourceFile>>>>,
}

impl ResourceCatalog {
    /// An empty catalog.
    pub fn empty(_data_dir: &Path) -> ResourceCatalog {
        ResourceCatalog { files: Arc::default() }
    }

    /// The firmware image for `vendor`'s `model` at `version`.
    pub fn firmware_for(&self, vendor: &str, model: &str, version: &str) -> Option<Arc<ResourceFile>> {
        let files = self.files.read().unwrap_or_else(|e| e.into_inner());
        files
            .values()
            .find(|f| {
                f.vendor.as_deref() == Some(vendor)
                    && f.models.iter().any(|m| m.eq_ignore_ascii_case(model))
                    && f.version.as_deref() == Some(version)
            })
            .cloned()
    }

    /// The path a device fetches `file` at.
    pub fn url_path(&self, file: &ResourceFile, mac: Mac) -> String {
        match file.access {
            FileAccess::Open => format!("/files/{}", file.name),
            FileAccess::Device => format!("/files/{}/{}", mac.upper(), file.name),
        }
    }

    /// Puts `file` into the catalog.
    pub fn insert(&self, file: ResourceFile) {
        self.files.write().unwrap_or_else(|e| e.into_inner()).insert(file.name.clone(), Arc::new(file));
    }
}
