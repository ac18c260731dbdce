//! Secrets that must not leak through formatting, and the redaction of credentials in text.
//!
//! A [`Secret`] prints as `********` through both `Debug` and `Display`, so a struct holding one
//! can derive `Debug` and a stray `{:?}` in a log line shows nothing. The value is reached only
//! through [`Secret::expose`], which makes every use visible in review.
//!
//! [`redact_uri_password`] hides the password part of a URI's user information
//! (`sip:1001:pw@host`, `https://user:pw@host/`), for contacts and URL-valued settings shown
//! in listings.

use std::borrow::Cow;
use std::fmt;

/// What every redacted value is replaced with: fixed, so its length tells nothing.
pub const REDACTED: &str = "********";

/// A string that formats as [`REDACTED`]; [`Secret::expose`] gives the value.
///
/// ```
/// use sipprov_model::Secret;
/// let s = Secret::new("hunter2");
/// assert_eq!(format!("{s} {s:?}"), "******** ********");
/// assert_eq!(s.expose(), "hunter2");
/// let parsed: Secret = "pw".parse().unwrap();
/// assert_eq!(parsed.expose(), "pw");
/// ```
///
/// It deserializes from a plain string (configuration files) but deliberately does not
/// serialize: writing it out must go through `expose`.
#[derive(Clone, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value itself: for the one place that needs it (a digest, a file sent to its device).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Consumes the wrapper, returning the value.
    pub fn into_inner(self) -> String {
        self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;

    /// For command-line parsers (clap) that build values with `FromStr`.
    fn from_str(s: &str) -> Result<Secret, Self::Err> {
        Ok(Secret::new(s))
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Secret {
        Secret(value)
    }
}

/// The text with the password of its URI user information replaced by [`REDACTED`]; unchanged
/// when it has none. Understands `sip:`/`sips:` URIs (RFC 3261 §19.1.1 `user:password@host`)
/// and URLs with an authority (`scheme://user:password@host/...`, RFC 3986 §3.2.1).
///
/// ```
/// use sipprov_model::redact_uri_password as r;
/// assert_eq!(r("sip:1001:s3cret@192.0.2.10:5060"), "sip:1001:********@192.0.2.10:5060");
/// assert_eq!(r("SIPS:1001:s3cret@pbx.example.com;transport=tls"), "SIPS:1001:********@pbx.example.com;transport=tls");
/// assert_eq!(r("https://prov:s3cret@prov.example.com/y/"), "https://prov:********@prov.example.com/y/");
/// assert_eq!(r("sip:1001@192.0.2.10:5060"), "sip:1001@192.0.2.10:5060");
/// assert_eq!(r("sip:192.0.2.10:5060"), "sip:192.0.2.10:5060");
/// assert_eq!(r("https://prov.example.com/a@b:c"), "https://prov.example.com/a@b:c");
/// assert_eq!(r("plain text"), "plain text");
/// ```
pub fn redact_uri_password(text: &str) -> Cow<'_, str> {
    let Some((start, sip)) = userinfo_start(text) else { return Cow::Borrowed(text) };
    let rest = &text[start..];
    // A SIP URI's user information ends at its first '@' (RFC 3261 §25.1: the user part has no
    // unescaped '@'); a URL's is the part of the authority before its last '@', and the
    // authority ends at the path, query or fragment (RFC 3986 §3.2).
    let at = if sip {
        rest.find('@')
    } else {
        let end_of_authority = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        rest[..end_of_authority].rfind('@')
    };
    let Some(at) = at else { return Cow::Borrowed(text) };
    let Some(colon) = rest[..at].find(':') else { return Cow::Borrowed(text) };
    let (user_end, pass_end) = (start + colon + 1, start + at);
    Cow::Owned(format!("{}{REDACTED}{}", &text[..user_end], &text[pass_end..]))
}

/// Where the user information of `text` would begin if it is a URI that can carry one, and
/// whether it is a SIP URI.
fn userinfo_start(text: &str) -> Option<(usize, bool)> {
    let lower_prefix = |p: &str| text.get(..p.len()).is_some_and(|h| h.eq_ignore_ascii_case(p));
    if lower_prefix("sip:") {
        return Some((4, true));
    }
    if lower_prefix("sips:") {
        return Some((5, true));
    }
    let scheme_end = text.find("://")?;
    let scheme = &text[..scheme_end];
    let is_scheme = scheme.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    is_scheme.then_some((scheme_end + 3, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    #[allow(dead_code)]
    struct Holder {
        user: String,
        password: Secret,
    }

    #[test]
    fn a_struct_deriving_debug_shows_no_secret() {
        let h = Holder { user: "1001".into(), password: Secret::new("hunter2") };
        let shown = format!("{h:?} {h:#?}");
        assert!(shown.contains("1001") && !shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn sip_user_params_and_headers_keep_their_shape() {
        assert_eq!(redact_uri_password("sip:a:b@h;transport=tcp?x=y@z"), "sip:a:********@h;transport=tcp?x=y@z");
        assert_eq!(redact_uri_password("sip:a:b@h"), "sip:a:********@h");
        assert_eq!(redact_uri_password("ftp://u@h/"), "ftp://u@h/");
        // Characters a password should not hold unescaped still do not leak it.
        assert_eq!(redact_uri_password("sip:1001:a/b?c@h"), "sip:1001:********@h");
    }
}
