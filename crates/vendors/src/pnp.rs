//! SIP Plug-and-Play dialects: what each vendor expects in the body of the NOTIFY that answers its
//! `Event: ua-profile` SUBSCRIBE.
//!
//! The body is one URL (`Content-Type: application/url`), but its meaning differs per vendor
//! (RFC 6080 §8.4 leaves it to the device): a directory the phone appends its own file names to
//! (Yealink, Grandstream, AudioCodes), a file URL (Gigaset), or a URL holding a macro the phone
//! expands itself (Snom `{mac}`, Panasonic `{MODEL}`). Each vendor module states its
//! [`PnpDialect`] ([`Vendor::pnp_dialect`](crate::Vendor::pnp_dialect)), vendors without a module
//! theirs in [`crate::others`], and [`provisioning_url`] applies it.
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
    /// What goes after the base directory (which always ends in `/`). Placeholders: `{MAC}` and
    /// `{mac}` are replaced by the device MAC (upper / lower case) when it is known; when it is
    /// not, `{mac}` is left for phones that expand it themselves (Snom), and a template using
    /// `{MAC}` falls back to the bare directory.
    pub path: &'static str,
    /// Whether the vendor accepts `user:password@` in the URL; when false the phone must get
    /// its HTTP credentials another way (Gigaset tries its MAC / MAC-ID first).
    pub userinfo: bool,
}

impl PnpDialect {
    /// The base directory, nothing appended, no credentials in the URL: what sipprov sends
    /// vendors it knows nothing specific about.
    pub const DEFAULT: PnpDialect = PnpDialect { path: "", userinfo: false };
    /// The base directory, credentials accepted in the URL (Yealink, Grandstream, AudioCodes).
    pub const DIRECTORY: PnpDialect = PnpDialect { path: "", userinfo: true };
}

/// The dialect for a vendor id (case-insensitive): the module's, else that of a vendor without
/// a module, else [`PnpDialect::DEFAULT`].
///
/// ```
/// use sipprov_vendors::pnp::{dialect, PnpDialect};
/// assert_eq!(dialect("Gigaset").path, "{MAC}.xml");
/// assert_eq!(dialect("panasonic").path, "{MODEL}.cfg");
/// assert_eq!(dialect("acme"), PnpDialect::DEFAULT);
/// ```
pub fn dialect(vendor: &str) -> PnpDialect {
    let id = vendor.trim();
    if let Some(v) = crate::registry().get(id) {
        return v.pnp_dialect();
    }
    crate::others::OTHERS.iter().find(|o| o.id.eq_ignore_ascii_case(id)).map_or(PnpDialect::DEFAULT, |o| o.pnp)
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
