//! SIP Plug-and-Play dialects: what each vendor expects in the body of the NOTIFY that answers its
//! `Event: ua-profile` SUBSCRIBE.
//!
//! The body is one URL (`Content-Type: application/url`), but its meaning differs per vendor
//! (research `sip-protocol.md` §B.7): a directory the phone appends its own file names to
//! (Yealink, Grandstream, AudioCodes), a file URL (Gigaset), or a URL holding a macro the phone
//! expands itself (Snom `{mac}`, Panasonic `{MODEL}`). This module keeps that knowledge as data:
//! one [`PnpDialect`] per vendor id, and [`provisioning_url`] to apply it.
//!
//! ```
//! use sipprov_vendors::pnp::{provisioning_url, Credentials};
//! let mac = "001565aabbcc".parse().ok();
//! assert_eq!(provisioning_url("yealink", "http://10.0.0.1:8080", mac, None), "http://10.0.0.1:8080/");
//! let creds = Credentials { username: "u 1", password: "p@ss" };
//! assert_eq!(
//!     provisioning_url("Grandstream", "http://10.0.0.1/prov/", mac, Some(&creds)),
//!     "http://u%201:p%40ss@10.0.0.1/prov/"
//! );
//! assert_eq!(provisioning_url("gigaset", "http://h/", mac, None), "http://h/001565AABBCC.xml");
//! assert_eq!(provisioning_url("snom", "http://h/", None, None), "http://h/{mac}.xml");
//! ```

use sipprov_model::Mac;

/// How a vendor reads the URL in a PnP NOTIFY body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PnpDialect {
    /// Vendor id as in the registry (`yealink`), or a vendor without a module (`panasonic`).
    pub vendor: &'static str,
    /// What goes after the base directory (which always ends in `/`). Placeholders: `{MAC}` and
    /// `{mac}` are replaced by the device MAC (upper / lower case) when it is known; when it is
    /// not, `{mac}` is left for phones that expand it themselves (Snom), and a template using
    /// `{MAC}` falls back to the bare directory.
    pub path: &'static str,
    /// Whether the vendor accepts `user:password@` in the URL; when false the phone must get
    /// its HTTP credentials another way (Gigaset tries its MAC / MAC-ID first, research
    /// `config-formats.md` §2.4).
    pub userinfo: bool,
}

/// The dialect table. Vendors not listed get [`DEFAULT_DIALECT`].
pub const PNP_DIALECTS: &[PnpDialect] = &[
    // A directory: the phone then fetches y0000000000XX.cfg and <mac>.cfg under it (§B.7).
    PnpDialect { vendor: "yealink", path: "", userinfo: true },
    // "A valid URL must be a path with a trailing slash", anything else is silently ignored (§B.7).
    PnpDialect { vendor: "grandstream", path: "", userinfo: true },
    // Any URL its automatic provisioning accepts; a directory makes it ask for <MAC>.cfg (§B.7, seed 002).
    PnpDialect { vendor: "audiocodes", path: "", userinfo: true },
    // The file itself; sipprov serves Gigaset its <MAC>.xml (research config-formats.md §2).
    PnpDialect { vendor: "gigaset", path: "{MAC}.xml", userinfo: false },
    // The setting_server URL, `{mac}` expanded by the phone when we do not know it (§B.7, Snom wiki).
    PnpDialect { vendor: "snom", path: "{mac}.xml", userinfo: true },
    // A pre-provisioning file; `{MODEL}` is a Panasonic phone-side macro (§B.7).
    PnpDialect { vendor: "panasonic", path: "{MODEL}.cfg", userinfo: false },
    // Not documented; treated like Yealink, a base directory (§B.7).
    PnpDialect { vendor: "fanvil", path: "", userinfo: true },
    PnpDialect { vendor: "htek", path: "", userinfo: true },
];

/// The dialect of vendors sipprov knows nothing specific about: the base directory.
pub const DEFAULT_DIALECT: PnpDialect = PnpDialect { vendor: "", path: "", userinfo: false };

/// The dialect for a vendor id (case-insensitive), or [`DEFAULT_DIALECT`].
pub fn dialect(vendor: &str) -> &'static PnpDialect {
    PNP_DIALECTS.iter().find(|d| d.vendor.eq_ignore_ascii_case(vendor.trim())).unwrap_or(&DEFAULT_DIALECT)
}

/// HTTP credentials to embed in the URL. The server passes them only when the device's settings
/// opt in (`pnp.url_credentials = 1`): a PnP NOTIFY is unauthenticated plain UDP.
#[derive(Clone, Copy)]
pub struct Credentials<'a> {
    /// `http.username`.
    pub username: &'a str,
    /// `http.password`.
    pub password: &'a str,
}

/// Shows the user name only, so a debug print cannot leak the password.
impl std::fmt::Debug for Credentials<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("username", &self.username).field("password", &"***").finish()
    }
}

/// The URL to put in the NOTIFY body for a phone of `vendor`: `base` turned into a directory
/// (a trailing `/` added), then the vendor's path, and `user:password@` (percent-encoded) when
/// `credentials` are given and the vendor accepts them.
pub fn provisioning_url(vendor: &str, base: &str, mac: Option<Mac>, credentials: Option<&Credentials>) -> String {
    let d = dialect(vendor);
    let mut url = base.trim().to_string();
    if !url.ends_with('/') {
        url.push('/');
    }
    let path = match mac {
        Some(m) => d.path.replace("{MAC}", &m.upper()).replace("{mac}", &m.to_string()),
        None if d.path.contains("{MAC}") => String::new(),
        None => d.path.to_string(),
    };
    url.push_str(&path);
    match credentials.filter(|_| d.userinfo) {
        Some(c) => with_userinfo(&url, c),
        None => url,
    }
}

/// Inserts `user:password@` (percent-encoded) after the scheme; a URL without `://` is returned
/// unchanged. Also used for AudioCodes gateways' Basic credentials ([`crate::audiocodes`]).
pub(crate) fn with_userinfo(url: &str, c: &Credentials) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => format!("{scheme}://{}:{}@{rest}", encode(c.username), encode(c.password)),
        None => url.to_string(),
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters, so `:`, `@` and `/` in a
/// password cannot change how the URL splits.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_dialect_keeps_the_directory_and_places_the_mac() {
        let mac: Mac = "7c2f80e0d605".parse().unwrap();
        assert_eq!(provisioning_url("AudioCodes", "https://p.example/x", Some(mac), None), "https://p.example/x/");
        assert_eq!(provisioning_url("snom", "http://h/", Some(mac), None), "http://h/7c2f80e0d605.xml");
        assert_eq!(provisioning_url("gigaset", "http://h", None, None), "http://h/");
        assert_eq!(provisioning_url("panasonic", "http://h", Some(mac), None), "http://h/{MODEL}.cfg");
        assert_eq!(provisioning_url("nobody", "http://h", Some(mac), None), "http://h/");
    }

    #[test]
    fn credentials_only_where_the_vendor_takes_them() {
        let c = Credentials { username: "dev", password: "a:b/c" };
        assert_eq!(provisioning_url("yealink", "http://h/", None, Some(&c)), "http://dev:a%3Ab%2Fc@h/");
        assert_eq!(provisioning_url("gigaset", "http://h/", None, Some(&c)), "http://h/");
        assert_eq!(provisioning_url("yealink", "h/", None, Some(&c)), "h/");
        assert!(!format!("{c:?}").contains("a:b/c"), "Debug hides the password");
    }
}
