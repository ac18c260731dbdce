//! Remote phone directories: the named contact lists a device shows, kept in memory over the
//! store and rendered per device in its vendor's format ([`sipprov_vendors::Vendor::directory`]).
//!
//! A write (an API `PUT`, a CSV import) validates every contact first ([`sipprov_model::contact`]),
//! then replaces the directory's contacts whole in one store transaction with its audit entry,
//! then the in-memory copy, and drops the directory's cached renderings, so the next fetch gets
//! the new content under a new ETag. A directory a setting names (`directory.name` at any level)
//! cannot be removed; a `directory.name` must name a directory when it is written (the
//! registry asks [`Directories::exists`]).

pub mod csv;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};

use sipprov_model::contact::{check_contacts, check_directory_name, Contact, MAX_CONTACTS};
use sipprov_model::known;
use sipprov_store::{DirectoryRecord, Store, StoreError};
use sipprov_vendors::Vendor;

use crate::access::{audit, Actor};
use crate::cache::{content_hash, Served};
use crate::inventory::Inventory;

/// Why a directory write was refused or failed; nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// The request is wrong; `field` names the member at fault (`name`, `contacts[3].office`).
    #[error("{message}")]
    Invalid {
        /// The member at fault.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// No directory of that name.
    #[error("no directory named {0:?}")]
    NotFound(String),
    /// The directory is named by settings (the message says where) and cannot be removed.
    #[error("{0}")]
    InUse(String),
    /// The store refused or failed it ([`StoreError::Limit`] for the bound on directories).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The directories, in memory, with their renderings by vendor.
pub struct Directories {
    store: Store,
    inventory: Arc<Inventory>,
    by_name: RwLock<BTreeMap<String, Arc<DirectoryRecord>>>,
    /// Rendered files by (directory, vendor id): at most `MAX_DIRECTORIES` × vendors entries.
    rendered: Mutex<HashMap<(String, &'static str), Arc<Served>>>,
}

impl Directories {
    /// Loads every directory from the store.
    pub async fn load(store: Store, inventory: Arc<Inventory>) -> Result<Directories, StoreError> {
        let by_name = store.list_directories().await?.into_iter().map(|d| (d.name.clone(), Arc::new(d))).collect();
        Ok(Directories { store, inventory, by_name: RwLock::new(by_name), rendered: Mutex::default() })
    }

    /// Reads every directory from the store again and drops the renderings (another node
    /// changed one).
    pub async fn reload(&self) -> Result<(), StoreError> {
        let by_name = self.store.list_directories().await?.into_iter().map(|d| (d.name.clone(), Arc::new(d))).collect();
        *self.by_name.write().unwrap_or_else(|e| e.into_inner()) = by_name;
        self.rendered.lock().unwrap_or_else(|e| e.into_inner()).clear();
        Ok(())
    }

    /// Every directory, by name.
    pub fn list(&self) -> Vec<Arc<DirectoryRecord>> {
        self.by_name.read().unwrap_or_else(|e| e.into_inner()).values().cloned().collect()
    }

    /// One directory.
    pub fn get(&self, name: &str) -> Option<Arc<DirectoryRecord>> {
        self.by_name.read().unwrap_or_else(|e| e.into_inner()).get(name).cloned()
    }

    /// True when a directory of that name exists.
    pub fn exists(&self, name: &str) -> bool {
        self.by_name.read().unwrap_or_else(|e| e.into_inner()).contains_key(name)
    }

    /// Creates directory `name` or replaces its contacts, after checking the name, the bound
    /// and every contact; audited as `directory.put` with the count and `source` (`api`,
    /// `csv`), never the contacts themselves (personal data).
    pub async fn put(
        &self,
        actor: &Actor,
        name: &str,
        contacts: Vec<Contact>,
        source: &str,
    ) -> Result<Arc<DirectoryRecord>, DirectoryError> {
        check_directory_name(name).map_err(|message| DirectoryError::Invalid { field: "name".into(), message })?;
        if contacts.len() > MAX_CONTACTS {
            let message = format!("{} contacts: a directory holds at most {MAX_CONTACTS}", contacts.len());
            return Err(DirectoryError::Invalid { field: "contacts".into(), message });
        }
        let contacts: Vec<Contact> = contacts.into_iter().map(Contact::normalized).collect();
        check_contacts(&contacts).map_err(|(position, message)| {
            let (member, rest) = message.split_once(": ").unwrap_or(("contacts", message.as_str()));
            DirectoryError::Invalid {
                field: format!("contacts[{}].{member}", position - 1),
                message: format!("contact {position}: {member}: {rest}"),
            }
        })?;
        let entry = audit::entry(
            actor,
            "directory.put",
            "directory",
            name,
            serde_json::json!({ "contacts": contacts.len(), "source": source }),
        );
        let stored = Arc::new(self.store.put_directory(name, &contacts, &entry).await?);
        self.by_name.write().unwrap_or_else(|e| e.into_inner()).insert(name.to_string(), stored.clone());
        self.forget_renderings(name);
        Ok(stored)
    }

    /// Removes directory `name`, refused while a setting names it; audited as `directory.rm`.
    pub async fn remove(&self, actor: &Actor, name: &str) -> Result<(), DirectoryError> {
        if !self.exists(name) {
            return Err(DirectoryError::NotFound(name.to_string()));
        }
        let users = self.inventory.levels_with(known::DIRECTORY_NAME.name(), name);
        if !users.is_empty() {
            return Err(DirectoryError::InUse(format!(
                "directory {name:?} is named by directory.name on {}; change those settings first",
                users.join(", ")
            )));
        }
        let entry = audit::entry(actor, "directory.rm", "directory", name, serde_json::json!({}));
        if !self.store.delete_directory(name, &entry).await? {
            return Err(DirectoryError::NotFound(name.to_string()));
        }
        self.by_name.write().unwrap_or_else(|e| e.into_inner()).remove(name);
        self.forget_renderings(name);
        Ok(())
    }

    /// Directory `name` in `vendor`'s format, rendered once per content: `None` when there is
    /// no such directory or the vendor has no directory format. Its `Last-Modified` is the
    /// directory's last change; its ETag the hash of the bytes.
    pub fn served(&self, name: &str, vendor: &'static dyn Vendor) -> Option<Arc<Served>> {
        let key = (name.to_string(), vendor.id());
        if let Some(hit) = self.rendered.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return Some(hit.clone());
        }
        let directory = self.get(name)?;
        let file = vendor.directory(&directory.contacts)?;
        let hash = content_hash(&file.bytes);
        let served =
            Arc::new(Served::new(format!("{name}.xml"), file.bytes, file.content_type, hash, directory.updated_at));
        let mut rendered = self.rendered.lock().unwrap_or_else(|e| e.into_inner());
        // A write between our read and now has dropped the key; storing an older rendering
        // under it would serve stale contacts, so store only what is still current.
        if self.get(name).is_some_and(|d| Arc::ptr_eq(&d, &directory)) {
            rendered.insert(key, served.clone());
        }
        Some(served)
    }

    fn forget_renderings(&self, name: &str) {
        self.rendered.lock().unwrap_or_else(|e| e.into_inner()).retain(|(n, _), _| n != name);
    }
}
