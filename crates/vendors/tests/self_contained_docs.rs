//! Comments and docs cite primary sources, never notes that are not in the repository.
//!
//! The project's working notes (the research files `config-formats.md`, `sip-protocol.md`,
//! `anchors.md`, `rust-crates.md`, the numbered seed documents) and its issue tracker live outside
//! the repository, so a comment that points there ("research §1.4", "seed 004", "issue 13",
//! "§B.2") tells a reader nothing. Facts are cited by their primary source instead: an RFC
//! section, a vendor guide by title (and URL where known), a peer project's file path, or the
//! repository's own README / ARCHITECTURE.md / docs. This test walks every text file of the
//! repository (but `target/`, hidden directories and itself) and fails naming each file and line
//! that points at the notes.

use std::path::{Path, PathBuf};

/// Extensions of the files that carry comments or docs (sources, templates, scenarios, scripts,
/// golden outputs).
const TEXT_EXTENSIONS: &[&str] =
    &["rs", "j2", "toml", "sh", "md", "xml", "py", "lua", "sip", "txt", "yml", "yaml", "cfg", "ini", "tpl", "htm"];

/// Phrases that only ever name the out-of-repository notes (matched ignoring case).
const NOTE_NAMES: &[&str] =
    &["research", "config-formats", "sip-protocol.md", "anchors.md", "rust-crates", "shared/seeds"];

/// Why `line` points at notes outside the repository, or `None` when it does not.
fn private_reference(line: &str) -> Option<String> {
    let lower = line.to_ascii_lowercase();
    if let Some(name) = NOTE_NAMES.iter().find(|n| lower.contains(*n)) {
        return Some(format!("names the project's notes (`{name}`)"));
    }
    for prefix in ["seed ", "seed_", "issue ", "issue #", "issue-", "issues "] {
        if followed_by_digit(&lower, prefix) {
            return Some(format!("cites a seed document or tracker issue (`{}<number>`)", prefix.trim_end()));
        }
    }
    // The notes number their sections §B.2, §3a...; RFC sections (`RFC 3261 §17.1.2`) and manual
    // sections (`§33.2.4`) are numeric and stay.
    if section_letter_ref(line) {
        return Some("cites a lettered section of the notes (`§B.2`, `§3a`)".into());
    }
    None
}

/// Whether `prefix` occurs in `text` directly followed by an ASCII digit.
fn followed_by_digit(text: &str, prefix: &str) -> bool {
    text.match_indices(prefix).any(|(i, _)| text[i + prefix.len()..].starts_with(|c: char| c.is_ascii_digit()))
}

/// `§` then an upper-case letter, a dot and a digit (`§B.4`), or digits then `a`/`b` not followed
/// by another letter or digit (`§3a`, `§3b`), unless an RFC is named right before it (an RFC
/// appendix, `RFC 3261 §A.1`).
fn section_letter_ref(line: &str) -> bool {
    line.match_indices('§').any(|(i, _)| {
        let mut before = line[..i].split_whitespace().rev();
        let number = before.next().is_some_and(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_digit()));
        if number && before.next().is_some_and(|w| w.eq_ignore_ascii_case("rfc")) {
            return false;
        }
        let rest = &line.as_bytes()[i + '§'.len_utf8()..];
        let lettered = rest.len() >= 3 && rest[0].is_ascii_uppercase() && rest[1] == b'.' && rest[2].is_ascii_digit();
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        let suffixed = digits > 0
            && matches!(rest.get(digits), Some(b'a' | b'b'))
            && !rest.get(digits + 1).is_some_and(|b| b.is_ascii_alphanumeric());
        lettered || suffixed
    })
}

/// The repository's root: two levels above this crate.
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repository root")
}

/// Every text file under `dir`, skipping `target/` and hidden directories.
fn text_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            if name != "target" && !name.starts_with('.') {
                text_files(&path, out);
            }
        } else if path.extension().and_then(|e| e.to_str()).is_some_and(|e| TEXT_EXTENSIONS.contains(&e)) {
            out.push(path);
        }
    }
}

#[test]
fn no_comment_or_doc_points_at_notes_outside_the_repository() {
    let root = repo_root();
    let this_file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/self_contained_docs.rs");
    let this_file = this_file.canonicalize().expect("this test's own file");
    let mut files = Vec::new();
    text_files(&root, &mut files);
    assert!(files.iter().any(|f| f.ends_with("crates/vendors/src/lib.rs")), "the walk missed the sources: {root:?}");
    let mut found = Vec::new();
    for file in files.iter().filter(|f| **f != this_file) {
        let Ok(text) = std::fs::read_to_string(file) else { continue };
        for (n, line) in text.lines().enumerate() {
            if let Some(why) = private_reference(line) {
                let shown = file.strip_prefix(&root).unwrap_or(file).display();
                found.push(format!("{shown}:{}: {why}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "cite the primary source (RFC section, vendor guide, peer project file, or this repository's \
         docs) instead of the project's notes or tracker:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_check_catches_note_references_and_passes_primary_sources() {
    for bad in [
        "//! Yealink AES (research `config-formats.md` §1.4).",
        "// Digest credentials (MP-11x manual, seed 004).",
        "/// Named time zones (issue 13): each vendor's own spelling",
        "/// Issue #12 item 11: GET, a change within the same second",
        "(commit after the issue-12 merges)",
        "/// The NOTIFY in the SUBSCRIBE's dialog (§B.4, the RFC-correct form)",
        "/// The 400HD phones (§3a: the 405HD, 420HD)",
        "<!-- Gigaset N870 (anchors.md §4) -->",
        "fn seed_002_subscribe_without_a_mac() {",
        "see `../shared/research/rust-crates.md`",
    ] {
        assert!(private_reference(bad).is_some(), "not caught: {bad}");
    }
    for good in [
        "/// Responses are matched by top Via branch and CSeq method (RFC 3261 §17.1.3).",
        "//! HTTP credentials (MP-11x & MP-124 User's Manual LTRT-65432 §33.2.4).",
        "/// ETag of it (weak comparison, §8.8.3.2), or a date",
        "/// RFC 6080 §8.4 leaves the body's meaning to the device",
        "// RFC 3261 §A.1 (an appendix), in an RFC-correct message",
        "    let mut seed = 0x2545_f491_4f6c_dd1du64;",
        "math.randomseed(42)",
        "Digest nonces are HMACs of the issue time under a per-process secret",
        "/// A cache seeded with the change times the store remembers.",
    ] {
        assert_eq!(private_reference(good), None, "wrongly caught: {good}");
    }
}
