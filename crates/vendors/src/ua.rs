//! Small helpers shared by the User-Agent parsers.

use std::borrow::Cow;

use sipprov_model::Mac;

/// Trims whitespace and one pair of surrounding double quotes (Gigaset sends them quoted).
pub(crate) fn unquote(ua: &str) -> &str {
    let t = ua.trim();
    t.strip_prefix('"').and_then(|s| s.strip_suffix('"')).unwrap_or(t).trim()
}

/// True for a dotted version made of digits, e.g. `66.86.0.15`. Tested on bytes: a first
/// character that is not ASCII starts with a byte that is not a digit either.
pub(crate) fn is_numeric_version(s: &str) -> bool {
    let b = s.as_bytes();
    b.first().is_some_and(u8::is_ascii_digit) && b.iter().all(|&c| matches!(c, b'0'..=b'9' | b'.'))
}

/// A MAC in any accepted spelling, refusing placeholders. (`Mac::from_str` trims its input.)
pub(crate) fn mac(s: &str) -> Option<Mac> {
    s.parse::<Mac>().ok().filter(|m| !m.is_placeholder())
}

/// A MAC written as exactly 12 hex digits (the form inside file names), refusing placeholders.
pub(crate) fn plain_mac(s: &str) -> Option<Mac> {
    Mac::from_plain_hex(s).filter(|m| !m.is_placeholder())
}

/// The MAC in a file name of the form `<12 hex>.<ext>` (any case), for one of `exts`.
pub(crate) fn mac_file(file_name: &str, exts: &[&str]) -> Option<Mac> {
    let (stem, ext) = file_name.rsplit_once('.')?;
    if !exts.iter().any(|e| e.eq_ignore_ascii_case(ext)) {
        return None;
    }
    plain_mac(stem)
}

/// What a vendor's UA parser finds: the model as the UA spells it, the firmware, the MAC.
pub(crate) type Parsed = (Option<String>, Option<String>, Option<Mac>);

/// The [`UserAgentInfo`](crate::UserAgentInfo) of `vendor` for what its parser found, the
/// model canonical when the vendor knows it ([`Vendor::model`](crate::Vendor::model)).
pub(crate) fn info(vendor: &dyn crate::Vendor, (model, firmware, mac): Parsed) -> crate::UserAgentInfo {
    let model = model.map(|m| vendor.model(&m).map_or(Cow::Owned(m), |known| Cow::Borrowed(known.name)));
    crate::UserAgentInfo { vendor: vendor.id(), model, firmware, mac }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_versions_are_what_they_were() {
        let before =
            |s: &str| s.starts_with(|c: char| c.is_ascii_digit()) && s.bytes().all(|b| b.is_ascii_digit() || b == b'.');
        for s in ["66.86.0.15", "1", "1.", ".1", "", "a1", "1a", "\u{661}.1", "1.\u{661}", "9..9", "66 86", "\u{e9}"] {
            assert_eq!(is_numeric_version(s), before(s), "{s:?}");
        }
    }

    #[test]
    fn mac_file_names() {
        assert_eq!(mac_file("001565AABBCC.cfg", &["cfg"]).unwrap().to_string(), "001565aabbcc");
        assert!(mac_file("000000000000.cfg", &["cfg"]).is_none());
        assert!(mac_file("ffffffffffff.cfg", &["cfg"]).is_none());
        assert!(mac_file("001565aabbcc.boot", &["cfg"]).is_none());
        assert!(mac_file("001565aabbcc-local.cfg", &["cfg"]).is_none());
        assert!(mac_file("y000000000066.cfg", &["cfg"]).is_none());
    }

    #[test]
    fn quotes_and_versions() {
        assert_eq!(unquote(" \"a b\" "), "a b");
        assert!(is_numeric_version("28.72.0.1") && !is_numeric_version("28.1a") && !is_numeric_version(""));
    }
}
