//! Several nodes, one fleet: what keeps a node's in-memory copies in step with the changes the
//! other nodes make on the same PostgreSQL database, and the registry of those nodes.
//!
//! Every change a node keeps in memory is written to the store with a change-feed row in the
//! same transaction ([`sipprov_store::Change`]); PostgreSQL's `NOTIFY` at commit wakes every
//! node's [`follower`], which reads the new rows and reloads what each names from the store
//! into the in-memory copies (inventory, render cache, templates, directories, tokens, users,
//! the file catalog, firmware pins, first-fetch windows). A fallback poll covers a missed
//! notification; a lost listening connection, or a position older than the feed keeps, makes
//! the node reload everything. The [`heartbeat`] task writes the node's row in
//! `cluster_nodes`, which `GET /api/v1/cluster` and `sipprov cluster status` list.
//!
//! On SQLite there is one node: the heartbeat runs (the status shows that node), the follower
//! does not.

pub mod follower;
pub mod heartbeat;

use std::sync::Arc;

use sipprov_store::Store;

use crate::access::Tokens;
use crate::auth::Security;
use crate::cache::RenderCache;
use crate::directories::Directories;
use crate::files::Files;
use crate::inventory::Inventory;
use crate::pins::FirmwarePins;
use crate::resources::ResourceCatalog;
use crate::seen::SeenIndex;
use crate::users::Users;

/// The in-memory copies a change from another node may touch, over the store they are
/// reloaded from.
pub struct Replicas {
    /// Where everything is reloaded from.
    pub store: Store,
    /// Devices, groups, global settings.
    pub inventory: Arc<Inventory>,
    /// Rendered files, dropped when what they were rendered from changed.
    pub cache: Arc<RenderCache>,
    /// The provisioning core (template overrides are installed into it).
    pub files: Arc<Files>,
    /// Remote phone directories.
    pub directories: Arc<Directories>,
    /// Named API tokens.
    pub tokens: Arc<Tokens>,
    /// Console users (sessions of a changed user end).
    pub users: Arc<Users>,
    /// The stored files' catalog.
    pub resources: ResourceCatalog,
    /// Firmware pins of rollouts.
    pub pins: Arc<FirmwarePins>,
    /// First-fetch windows and generated credentials.
    pub security: Arc<Security>,
    /// What each device fetched last (listings).
    pub seen: Arc<SeenIndex>,
}
