//! The SIP stack's layers depend one way (ARCHITECTURE.md, "The SIP stack"): message syntax at
//! the bottom, then the transports, then the transaction layer, then the endpoint that wires
//! them. This test reads the `crate::` and `super::` paths of every source file and fails when
//! a module names one above it: a transport naming the transaction layer or the endpoint, the
//! transaction layer naming the endpoint, or one client-transaction driver naming the other.
//!
//! Comment lines are skipped; everything else counts, `use` lines and paths written inline
//! alike, so a violation cannot hide in a function body.

use std::path::Path;

use sipprov_testkit::layering::{paths_after, sources, without_comments};

/// Message syntax: the modules every layer may use.
const SYNTAX: &[&str] = &["text", "error", "logsafe", "uri", "auth", "headers", "message", "ParseError"];
/// Helpers with no layer of their own, allowed to the transports (routing) or above.
const TRANSPORT_EXTRA: &[&str] = &["route"];
/// What the transaction layer may use besides the syntax: the layer below and helpers.
const TRANSACTION_EXTRA: &[&str] = &["route", "transport", "admission", "builder", "transaction"];
/// The two client-transaction drivers: only `transaction/mod.rs` may name both.
const DRIVERS: &[&str] = &["client", "batch"];

/// What a file under `src/` may name with `crate::`, by where it sits; `None` when unchecked.
fn allowed_for(relative: &str) -> Option<Vec<&'static str>> {
    let top = relative.split('/').next().unwrap_or_default().trim_end_matches(".rs");
    let extra: &[&str] = match top {
        "text" | "error" | "logsafe" | "uri" | "auth" | "headers" | "message" | "route" | "admission" => &[],
        "transport" => TRANSPORT_EXTRA,
        "builder" => &["transport"],
        "transaction" => TRANSACTION_EXTRA,
        _ => return None,
    };
    Some(SYNTAX.iter().chain(extra).copied().collect())
}

/// Every layering violation in the file at `relative` (under `src/`) whose code is `code`.
fn violations(relative: &str, code: &str) -> Vec<String> {
    let mut found = Vec::new();
    if let Some(allowed) = allowed_for(relative) {
        for name in paths_after(code, "crate::") {
            if !allowed.contains(&name.as_str()) {
                found.push(format!("{relative} names crate::{name}, a layer above it"));
            }
        }
    }
    if code.contains("super::super") {
        found.push(format!("{relative} reaches up with super::super"));
    }
    if let Some(file) = relative.strip_prefix("transaction/") {
        let own = file.trim_end_matches(".rs");
        if own != "mod" {
            let named = paths_after(code, "super::").into_iter().chain(paths_after(code, "transaction::"));
            for name in named.filter(|n| DRIVERS.contains(&n.as_str()) && n != own) {
                found.push(format!("{relative} names the driver {name}: shared pieces belong in a lower module"));
            }
        }
    }
    found
}

#[test]
fn the_layers_depend_one_way() {
    let mut checked = 0;
    let mut found = Vec::new();
    for (relative, code) in sources(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src")) {
        checked += usize::from(allowed_for(&relative).is_some());
        found.extend(violations(&relative, &code));
    }
    assert!(checked >= 20, "only {checked} files checked: were the modules moved?");
    assert!(found.is_empty(), "layering violated:\n{}", found.join("\n"));
}

#[test]
fn the_check_catches_upward_paths() {
    let v = violations("transport/udp.rs", "use crate::endpoint::Inner;");
    assert_eq!(v.len(), 1, "{v:?}");
    let v = violations(
        "transport/mod.rs",
        "use crate::{message::Limits, dispatch::admit};\nfn f() { crate::Endpoint::x() }",
    );
    assert_eq!(v.len(), 2, "{v:?}");
    assert_eq!(violations("transaction/layer.rs", "use crate::{transport::{Target, Transports}, endpoint};").len(), 1);
    assert_eq!(violations("transaction/client.rs", "use super::batch::BatchInbox;").len(), 1);
    assert_eq!(violations("transaction/table.rs", "use super::{inbox::Mailbox, client::run};").len(), 1);
    assert_eq!(violations("transport/tcp.rs", "use super::super::endpoint;").len(), 1);
    assert!(violations("transaction/mod.rs", "pub use batch::{BatchRequest, BatchResult};").is_empty());
    assert!(violations("transport/stream.rs", "use crate::message::framing::StreamFramer;").is_empty());
    let commented = without_comments("//! Wired by [`crate::endpoint`].\nuse crate::text::push_ip; // not crate::x");
    assert_eq!(violations("transport/mod.rs", &commented).len(), 1, "a trailing comment still counts");
    assert!(violations("transport/mod.rs", &without_comments("/// See [`crate::Endpoint`].")).is_empty());
    assert!(violations("endpoint/mod.rs", "use crate::transaction::batch;").is_empty(), "the endpoint may use all");
}
