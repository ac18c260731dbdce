//! The server's modules depend one way (ARCHITECTURE.md, "The server"). This test reads the
//! `crate::` paths of every source file under `src/`, attributes each file to its top-level
//! module, and fails when a module names one its row of [`LAYERS`] does not allow; it also
//! fails when a top-level module is missing from the table (a new module must be placed), and
//! when the table itself allows a cycle.
//!
//! Comment lines are skipped; everything else counts, `use` lines and paths written inline
//! alike, so a violation cannot hide in a function body.
//!
//! The layers, bottom to top:
//! - **foundation**: configuration, metrics, the in-memory inventory and render cache, what the
//!   vendors crate says about a device (`catalog`), the event sink (`fetchlog`), phone access
//!   (`auth`), console users (`users`), connection handling (`listener`, `tls`, `sip_tls`), start-up helpers;
//! - **services**: the provisioning core (`files`), the device registry (`registry`), the
//!   notifier (`notify`), the campaign engine (`campaign`), template overrides (`templates`);
//! - **edges**: what the network reaches: the phone router (`provision`), the admin API
//!   (`api`), the web console (`console`), PnP (`pnp`) and the SIP service that hands it requests (`sip_service`);
//! - **wiring**: builds everything in order and may name every module.

use std::collections::BTreeSet;
use std::path::Path;

use sipprov_testkit::layering::{paths_after, sources, without_comments};

/// Items of the crate root every module may name: the error type, the configuration re-export
/// and the check-sync crate re-exported as a module.
const ROOT_ITEMS: &[&str] = &["ServerError", "ServerConfig", "checksync"];

/// Each top-level module and the modules it may name with `crate::`.
const LAYERS: &[(&str, &[&str])] = &[
    // Foundation.
    ("config", &[]),
    ("metrics", &[]),
    ("catalog", &[]),
    ("cache", &[]),
    ("inventory", &[]),
    ("seen", &[]),
    ("token", &[]),
    ("node", &[]),
    ("runtime", &[]),
    ("lease", &["node"]),
    ("datadir", &["token"]),
    ("writable", &["config"]),
    ("fetchlog", &["cache", "config", "metrics", "seen"]),
    ("auth", &["catalog", "config", "inventory"]),
    ("listener", &["config", "metrics"]),
    ("tls", &["config", "listener"]),
    ("sip_tls", &["config", "tls"]),
    ("resources", &["config"]),
    ("pins", &["cache"]),
    // Services.
    ("access", &[]),
    ("users", &["access"]),
    ("files", &["auth", "cache", "catalog", "fetchlog", "inventory", "metrics", "pins", "resources"]),
    ("directories", &["access", "cache", "inventory"]),
    ("registry", &["access", "auth", "cache", "directories", "inventory", "resources"]),
    ("discoveries", &["access", "inventory", "registry"]),
    ("notify", &["fetchlog", "inventory", "metrics"]),
    ("campaign", &["access", "fetchlog", "files", "inventory", "lease", "metrics", "notify"]),
    ("templates", &["access", "files", "inventory"]),
    ("filestore", &["access", "cache", "config", "inventory", "pins", "resources"]),
    ("rollout", &["access", "catalog", "fetchlog", "files", "inventory", "lease", "notify", "pins", "registry"]),
    ("listing", &["inventory", "seen"]),
    ("summary", &["auth", "campaign", "inventory", "listing", "seen"]),
    ("unlock", &["access", "auth", "fetchlog"]),
    // The cluster follower reloads the in-memory copies the services keep; only wiring and the
    // API (its status) name it.
    (
        "cluster",
        &[
            "access",
            "auth",
            "cache",
            "directories",
            "files",
            "inventory",
            "pins",
            "resources",
            "seen",
            "templates",
            "users",
        ],
    ),
    // Edges.
    (
        "provision",
        &[
            "auth",
            "cache",
            "catalog",
            "config",
            "directories",
            "fetchlog",
            "files",
            "inventory",
            "listener",
            "metrics",
            "resources",
        ],
    ),
    ("pnp", &["access", "auth", "config", "discoveries", "fetchlog", "inventory", "metrics", "registry"]),
    ("sip_service", &["config", "listener", "pnp", "sip_tls"]),
    (
        "api",
        &[
            "access",
            "auth",
            "campaign",
            "cluster",
            "directories",
            "discoveries",
            "fetchlog",
            "files",
            "filestore",
            "inventory",
            "listing",
            "metrics",
            "notify",
            "registry",
            "resources",
            "rollout",
            "summary",
            "templates",
            "unlock",
            "users",
        ],
    ),
    (
        "console",
        &[
            "access",
            "auth",
            "campaign",
            "config",
            "directories",
            "discoveries",
            "fetchlog",
            "files",
            "filestore",
            "inventory",
            "listing",
            "notify",
            "registry",
            "resources",
            "rollout",
            "seen",
            "summary",
            "templates",
            "unlock",
            "users",
        ],
    ),
];

/// Modules that may name any other: the crate root's module list and the wiring.
const UNCHECKED: &[&str] = &["lib", "wiring"];

/// The top-level module a file under `src/` belongs to.
fn module_of(relative: &str) -> &str {
    relative.split('/').next().unwrap_or_default().trim_end_matches(".rs")
}

/// Every violation in the file at `relative` (under `src/`) whose code is `code`.
fn violations(relative: &str, code: &str) -> Vec<String> {
    let module = module_of(relative);
    if UNCHECKED.contains(&module) {
        return Vec::new();
    }
    let Some((_, allowed)) = LAYERS.iter().find(|(name, _)| *name == module) else {
        return vec![format!("{relative}: module {module} is not in the layering table; place it")];
    };
    let mut found = Vec::new();
    for name in paths_after(code, "crate::") {
        if name != module && !allowed.contains(&name.as_str()) && !ROOT_ITEMS.contains(&name.as_str()) {
            found.push(format!("{relative} names crate::{name}, which module {module} may not call"));
        }
    }
    if code.contains("super::super") {
        found.push(format!("{relative} reaches up with super::super"));
    }
    found
}

/// The modules of `table` left after repeatedly removing those that name only removed ones:
/// empty when the table is acyclic.
fn cyclic(table: &[(&str, &[&str])]) -> BTreeSet<String> {
    let mut left: BTreeSet<&str> = table.iter().map(|(m, _)| *m).collect();
    loop {
        let ready: Vec<&str> = table
            .iter()
            .filter(|(m, deps)| left.contains(m) && deps.iter().all(|d| !left.contains(d) || d == m))
            .map(|(m, _)| *m)
            .collect();
        if ready.is_empty() {
            return left.into_iter().map(str::to_string).collect();
        }
        for m in ready {
            left.remove(m);
        }
    }
}

#[test]
fn the_server_modules_depend_one_way() {
    let mut checked = 0;
    let mut found = Vec::new();
    for (relative, code) in sources(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src")) {
        checked += usize::from(!UNCHECKED.contains(&module_of(&relative)));
        found.extend(violations(&relative, &code));
    }
    assert!(checked >= 40, "only {checked} files checked: were the modules moved?");
    assert!(found.is_empty(), "layering violated:\n{}", found.join("\n"));
}

#[test]
fn the_table_has_no_cycle_and_names_only_known_modules() {
    assert!(cyclic(LAYERS).is_empty(), "the layering table allows a cycle among {:?}", cyclic(LAYERS));
    let known: BTreeSet<&str> = LAYERS.iter().map(|(m, _)| *m).collect();
    for (module, deps) in LAYERS {
        for dep in *deps {
            assert!(known.contains(dep), "{module} may name {dep}, which is not in the table");
        }
    }
}

#[test]
fn the_check_catches_what_it_must() {
    // An edge named from a service, and a service named from the foundation.
    assert_eq!(violations("notify.rs", "use crate::api::ApiError;").len(), 1);
    assert_eq!(violations("auth/posture.rs", "use crate::files::Files;").len(), 1);
    // PnP calling into the admin API, as it once did for validation.
    assert_eq!(violations("pnp/policy.rs", "fn f() { crate::api::validate_new_device() }").len(), 1);
    // Config depending on the modules it configures.
    assert_eq!(violations("config.rs", "pub pnp: crate::pnp::PnpConfig,").len(), 1);
    // Groups count item by item; a trailing comment still counts; doc comments do not.
    assert_eq!(violations("registry.rs", "use crate::{inventory::Inventory, notify, campaign::X};").len(), 2);
    assert_eq!(violations("files.rs", &without_comments("use crate::inventory::Inventory; // crate::x")).len(), 1);
    assert!(violations("files.rs", &without_comments("/// Built by [`crate::wiring`].")).is_empty());
    assert_eq!(violations("tls/mod.rs", "use super::super::provision;").len(), 1);
    // A module of its own, the root items, and the wiring are fine; an unplaced module is not.
    assert!(violations("api/import.rs", "use crate::api::x; use crate::ServerError;").is_empty());
    assert!(violations("wiring.rs", "use crate::api::ApiServices;").is_empty());
    assert_eq!(violations("newthing.rs", "").len(), 1);
    // A table with a cycle is caught.
    let bad: &[(&str, &[&str])] = &[("a", &["b"]), ("b", &["c"]), ("c", &["a"]), ("d", &[])];
    assert_eq!(cyclic(bad).len(), 3);
}
