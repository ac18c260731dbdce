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
//!   (`auth`), connection handling (`listener`, `tls`, `sip_tls`), start-up helpers;
//! - **services**: the provisioning core (`files`), the device registry (`registry`), the
//!   notifier (`notify`), the campaign engine (`campaign`);
//! - **edges**: what the network reaches: the phone router (`provision`), the admin API
//!   (`api`), PnP (`pnp`) and the SIP service that hands it requests (`sip_service`);
//! - **wiring**: builds everything in order and may name every module.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

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
    ("token", &[]),
    ("datadir", &["token"]),
    ("writable", &["config"]),
    ("fetchlog", &["config", "metrics"]),
    ("auth", &["catalog", "config", "inventory"]),
    ("listener", &["config", "metrics"]),
    ("tls", &["config", "listener"]),
    ("sip_tls", &["config", "tls"]),
    // Services.
    ("files", &["auth", "cache", "catalog", "fetchlog", "inventory", "metrics"]),
    ("registry", &["auth", "cache", "inventory"]),
    ("notify", &["fetchlog", "inventory"]),
    ("campaign", &["fetchlog", "files", "inventory", "notify"]),
    // Edges.
    ("provision", &["auth", "cache", "catalog", "config", "fetchlog", "files", "inventory", "listener", "metrics"]),
    ("pnp", &["auth", "config", "fetchlog", "inventory", "registry"]),
    ("sip_service", &["config", "listener", "pnp", "sip_tls"]),
    ("api", &["auth", "campaign", "fetchlog", "files", "inventory", "metrics", "notify", "registry"]),
];

/// Modules that may name any other: the crate root's module list and the wiring.
const UNCHECKED: &[&str] = &["lib", "wiring"];

/// The first segment of every path that follows `prefix` (`crate::`) in `code`, each item of a
/// `{...}` group counted.
fn segments_after(code: &str, prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find(prefix) {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + prefix.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            out.extend(group_items(group).into_iter().map(|item| first_segment(&item)));
        } else {
            out.push(first_segment(rest));
        }
    }
    out.retain(|s| !s.is_empty() && s != "self");
    out
}

/// The top-level items of a `{...}` group whose opening brace was just consumed.
fn group_items(group: &str) -> Vec<String> {
    let (mut depth, mut items, mut item) = (0usize, Vec::new(), String::new());
    for c in group.chars() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(std::mem::take(&mut item));
                continue;
            }
            _ => {}
        }
        item.push(c);
    }
    items.push(item);
    items
}

fn first_segment(path: &str) -> String {
    path.trim_start().chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '*').collect()
}

/// The text without its comment lines (doc comments may name any module).
fn without_comments(text: &str) -> String {
    text.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n")
}

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
    for name in segments_after(code, "crate::") {
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

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())).flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn the_server_modules_depend_one_way() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut checked = 0;
    let mut found = Vec::new();
    for path in &files {
        let relative = path.strip_prefix(&src).unwrap_or(path).to_string_lossy().replace('\\', "/");
        checked += usize::from(!UNCHECKED.contains(&module_of(&relative)));
        let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        found.extend(violations(&relative, &without_comments(&text)));
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
