//! Reading a crate's sources for its layering tests: which module paths each file names.
//!
//! The SIP stack and the server each keep a test with their own table of who may call whom;
//! both read their `src/` tree the same way, with these functions.
//!
//! ```
//! use sipprov_testkit::layering::paths_after;
//! let code = "use crate::{transport::{Target, Transports}, endpoint};\nfn f() { crate::Endpoint::x() }";
//! assert_eq!(paths_after(code, "crate::"), ["transport", "endpoint", "Endpoint"]);
//! ```

use std::fs;
use std::path::Path;

/// The first segment of every path that follows `prefix` (`crate::`, `super::`...) in `code`,
/// each item of a `{...}` group counted; `self` is left out.
pub fn paths_after(code: &str, prefix: &str) -> Vec<String> {
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

/// The text without its comment lines: a doc comment may name any module.
pub fn without_comments(text: &str) -> String {
    text.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n")
}

/// Every `.rs` file under `src`, as its path relative to `src` (with `/`) and its code without
/// comment lines, in path order. Panics on a file it cannot read: the test must not pass by
/// seeing less.
pub fn sources(src: &Path) -> Vec<(String, String)> {
    let mut files = Vec::new();
    collect(src, &mut files);
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let relative = path.strip_prefix(src).unwrap_or(&path).to_string_lossy().replace('\\', "/");
            let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (relative, without_comments(&text))
        })
        .collect()
}

fn collect(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())).flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}
