//! Check-sync stays usable without the server (ARCHITECTURE.md, the crate table): this crate
//! depends on no crate above it, and the one-shot `sipprov notify` takes check-sync from here,
//! not from the server's modules.

use std::fs;
use std::path::Path;

/// Workspace crates check-sync must not depend on: they sit above it.
const ABOVE: &[&str] = &["sipprov-server", "sipprov-store", "sipprov-testkit", "sipprov "];

fn read(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The names in the `[dependencies]` table of a Cargo.toml.
fn dependencies(manifest: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut inside = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            inside = line == "[dependencies]";
        } else if inside && !line.is_empty() && !line.starts_with('#') {
            let name = line.split(['=', '.']).next().unwrap_or_default().trim();
            names.push(format!("{name} "));
        }
    }
    names
}

#[test]
fn check_sync_depends_on_nothing_above_it() {
    let deps = dependencies(&read("Cargo.toml"));
    assert!(deps.iter().any(|d| d == "sipprov-sip "), "the manifest was not read: {deps:?}");
    let above: Vec<&String> = deps.iter().filter(|d| ABOVE.iter().any(|a| d.starts_with(a))).collect();
    assert!(above.is_empty(), "sipprov-checksync depends on {above:?}, above it");
}

#[test]
fn sipprov_notify_takes_check_sync_from_this_crate() {
    let command = read("../sipprov/src/commands/notify.rs");
    assert!(command.contains("sipprov_checksync"), "sipprov notify no longer uses sipprov-checksync");
    for server_path in ["sipprov_server::checksync", "sipprov_server::notify"] {
        assert!(!command.contains(server_path), "sipprov notify reaches into the server: {server_path}");
    }
}

#[test]
fn the_manifest_reader_sees_a_server_dependency() {
    let manifest = "[package]\nname = \"x\"\n\n[dependencies]\nsipprov-sip.workspace = true\nsipprov-server = { path = \"../server\" }\n\n[dev-dependencies]\nsipprov-testkit.workspace = true\n";
    let deps = dependencies(manifest);
    assert_eq!(deps, ["sipprov-sip ", "sipprov-server "]);
}
