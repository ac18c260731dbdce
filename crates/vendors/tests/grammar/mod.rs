//! The line grammars of the vendors' non-XML files, shared by the golden-file test and the
//! every-model render test: a value that breaks a file's syntax (a newline, a stray `=`) shows
//! up as a line of the wrong shape.

#![allow(dead_code)]

/// The first line that `ok` rejects, or a missing final newline.
pub(crate) fn first_bad_line(text: &str, ok: fn(&str) -> bool) -> Option<String> {
    if !text.ends_with('\n') {
        return Some("does not end with a newline".into());
    }
    text.lines().find(|l| !ok(l)).map(|l| format!("bad line {l:?}"))
}

/// The grammar of a vendor's non-XML file with extension `ext`; `None` when the file is XML.
/// Panics for a combination no grammar covers, so a new format cannot go unchecked.
pub(crate) fn line_grammar(vendor: &str, ext: &str) -> Option<fn(&str) -> bool> {
    match (vendor, ext) {
        (_, "xml") => None,
        // Fanvil's `.cfg` files are XML in either dialect, and so are Polycom's.
        ("fanvil" | "polycom", "cfg") => None,
        ("yealink", "cfg") => Some(yealink_line),
        ("audiocodes", "cfg") => Some(audiocodes_hd_line),
        ("audiocodes", "ini") => Some(ini_line),
        other => panic!("no grammar for {other:?}"),
    }
}

fn is_name(name: &str, extra: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || extra.contains(c))
}

/// Yealink: the `#!version:1.0.0.1` header, then `name = value` (names with `.` and `_`).
pub(crate) fn yealink_line(line: &str) -> bool {
    line == "#!version:1.0.0.1" || line.split_once(" = ").is_some_and(|(k, _)| is_name(k, "._-"))
}

/// AudioCodes 400HD: `path/to/key=value`.
pub(crate) fn audiocodes_hd_line(line: &str) -> bool {
    line.split_once('=').is_some_and(|(k, _)| is_name(k, "/_."))
}

/// AudioCodes ini: blank, `;` comments, `[Section]` / `[ Table ]` / `[ \Table ]`, `Key = value`,
/// `FORMAT ... ;` and `Table N = cells;`.
pub(crate) fn ini_line(line: &str) -> bool {
    let t = line.trim();
    t.is_empty()
        || t.starts_with(';')
        || (t.starts_with('[') && t.ends_with(']'))
        || (t.starts_with("FORMAT ") && t.ends_with(';'))
        || t.split_once(" = ").is_some_and(|(k, v)| {
            let mut words = k.split(' ');
            let name_ok = words.next().is_some_and(|n| is_name(n, "_"));
            let index_ok = words.all(|w| w.bytes().all(|b| b.is_ascii_digit()));
            name_ok && index_ok && (k.split(' ').count() == 1 || v.ends_with(';'))
        })
}
