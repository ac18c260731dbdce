//! `name-addr` / `addr-spec` values: From, To, Contact, Route (RFC 3261 §20.10, §25.1).

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use super::ValueList;
use crate::error::ParseError;
use crate::text::{find_byte, is_token, quote, quoted_span, split_at_byte, unescape, Params, ParamsRef};
use crate::uri::{is_absolute_uri, SipUri, SipUriRef};

/// An address with optional display name and header parameters (`tag`, `expires`, ...).
///
/// ```
/// use sipprov_sip::headers::NameAddr;
/// let a: NameAddr = r#""Yealink \"T46U\"" <sip:MAC%3A0015@h>;tag=abc"#.parse().unwrap();
/// assert_eq!(a.display_name.as_deref(), Some("Yealink \"T46U\""));
/// assert_eq!(a.tag(), Some("abc"));
/// assert_eq!(a.sip_uri().unwrap().user(), Some("MAC%3A0015"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// The display name, quotes removed and escapes decoded.
    pub display_name: Option<String>,
    /// The URI as written (any scheme).
    pub uri: String,
    /// Header parameters after the URI.
    pub params: Params,
}

impl NameAddr {
    /// `<uri>` with no display name and no parameters.
    pub fn new(uri: &str) -> NameAddr {
        NameAddr { display_name: None, uri: uri.to_owned(), params: Params::default() }
    }

    /// The `tag` parameter.
    pub fn tag(&self) -> Option<&str> {
        self.params.get("tag").flatten()
    }

    /// The URI parsed as a SIP URI.
    pub fn sip_uri(&self) -> Result<SipUri, ParseError> {
        self.uri.parse()
    }

    /// Parses a header value holding comma-separated addresses (Contact, Route).
    pub fn parse_list(value: &str) -> Result<Vec<NameAddr>, ParseError> {
        NameAddrRef::parse_list(value).map(|a| a.map(NameAddr::from)).collect()
    }
}

impl FromStr for NameAddr {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<NameAddr, ParseError> {
        NameAddrRef::parse(s).map(NameAddr::from)
    }
}

impl From<NameAddrRef<'_>> for NameAddr {
    fn from(a: NameAddrRef<'_>) -> NameAddr {
        NameAddr { display_name: a.display_name().map(Cow::into_owned), uri: a.uri.to_owned(), params: a.params.into() }
    }
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(name) = &self.display_name {
            write!(f, "{} ", quote(name))?;
        }
        write!(f, "<{}>{}", self.uri, self.params)
    }
}

/// An address borrowed from its header and checked: what a [`NameAddr`] is built from, for
/// reading an address without allocating.
///
/// ```
/// use sipprov_sip::headers::NameAddrRef;
/// let a = NameAddrRef::parse(r#""sipprov" <sip:sipprov@127.0.0.1>;tag=0123"#).unwrap();
/// assert_eq!(a.display_name().as_deref(), Some("sipprov"));
/// assert_eq!((a.uri, a.tag()), ("sip:sipprov@127.0.0.1", Some("0123")));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameAddrRef<'a> {
    display: Option<DisplayName<'a>>,
    /// The URI as written (any scheme).
    pub uri: &'a str,
    /// Header parameters after the URI, raw.
    pub params: ParamsRef<'a>,
}

/// A display name as written, decoded only when asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DisplayName<'a> {
    /// The text between the quotes, quoted-pairs still escaped.
    Quoted(&'a str),
    /// One or more tokens, trimmed.
    Tokens(&'a str),
}

impl<'a> NameAddrRef<'a> {
    /// Parses and checks an address exactly as `NameAddr::from_str` does.
    pub fn parse(s: &'a str) -> Result<NameAddrRef<'a>, ParseError> {
        let s = s.trim_ascii();
        let bad = |why: &str| ParseError::header("address", format!("{why} in '{s}'"));
        let (display, rest) = if s.starts_with('"') {
            let (inner, rest) = quoted_span(s).map_err(bad)?;
            (Some(DisplayName::Quoted(inner)), rest.trim_ascii_start())
        } else if let Some(lt) = find_byte(s, b'<') {
            (token_display_name(&s[..lt]).map_err(bad)?, &s[lt..])
        } else {
            return parse_addr_spec(s).map_err(bad);
        };
        let inner = rest.strip_prefix('<').ok_or_else(|| bad("expected '<'"))?;
        let (uri, params) = split_at_byte(inner, b'>').ok_or_else(|| bad("missing '>'"))?;
        check_uri(uri).map_err(bad)?;
        let params = ParamsRef::parse(params).map_err(bad)?;
        Ok(NameAddrRef { display, uri, params })
    }

    /// The addresses of a header value holding comma-separated ones (Contact, Route), each
    /// parsed as it is reached; the errors are those of [`NameAddr::parse_list`].
    pub fn parse_list(value: &'a str) -> ValueList<'a, NameAddrRef<'a>> {
        ValueList::new(value, "address", NameAddrRef::parse)
    }

    /// The display name, quotes removed and escapes decoded (borrowed when that changes nothing).
    pub fn display_name(&self) -> Option<Cow<'a, str>> {
        match self.display? {
            DisplayName::Quoted(inner) => Some(unescape(inner)),
            // Tokens are written back separated by single spaces.
            DisplayName::Tokens(t) if t.split(' ').all(|w| !w.is_empty() && !w.contains(char::is_whitespace)) => {
                Some(Cow::Borrowed(t))
            }
            DisplayName::Tokens(t) => Some(Cow::Owned(t.split_whitespace().collect::<Vec<_>>().join(" "))),
        }
    }

    /// The `tag` parameter.
    pub fn tag(&self) -> Option<&'a str> {
        self.params.get("tag").flatten()
    }
}

/// An unquoted display name is a sequence of tokens (RFC 4475 "baddn" has a comma in it).
fn token_display_name(text: &str) -> Result<Option<DisplayName<'_>>, &'static str> {
    if !text.split_whitespace().all(is_token) {
        return Err("display name is neither a quoted string nor tokens");
    }
    let text = text.trim();
    Ok((!text.is_empty()).then_some(DisplayName::Tokens(text)))
}

/// Without `<>`, the URI ends at the first ';' and may not contain ',', '?' or ';' (RFC 3261 §20.10).
fn parse_addr_spec(s: &str) -> Result<NameAddrRef<'_>, &'static str> {
    let (uri, params) = match s.find(';') {
        Some(i) => (s[..i].trim_end(), &s[i..]),
        None => (s, ""),
    };
    if uri.contains(['?', ',']) {
        return Err("a URI with '?' or ',' must be enclosed in <>");
    }
    check_uri(uri)?;
    Ok(NameAddrRef { display: None, uri, params: ParamsRef::parse(params)? })
}

fn check_uri(uri: &str) -> Result<(), &'static str> {
    let is_sip = uri.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("sip:"))
        || uri.get(..5).is_some_and(|p| p.eq_ignore_ascii_case("sips:"));
    if is_sip {
        SipUriRef::parse(uri).map(drop).map_err(|_| "bad SIP URI")
    } else if is_absolute_uri(uri) {
        Ok(())
    } else {
        Err("not a URI (is there whitespace inside <>?)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_display_names_are_single_spaced() {
        let a: NameAddr = "  J \t Rosenberg  <sip:j@h>".parse().unwrap();
        assert_eq!(a.display_name.as_deref(), Some("J Rosenberg"));
        let b = NameAddrRef::parse("J Rosenberg <sip:j@h>").unwrap();
        assert!(matches!(b.display_name(), Some(Cow::Borrowed("J Rosenberg"))));
        assert_eq!(NameAddrRef::parse("<sip:j@h>").unwrap().display_name(), None);
    }

    #[test]
    fn list_errors_are_those_of_splitting_first() {
        let err = NameAddr::parse_list(r#"bad uri, <sip:a@b>;x="open"#).unwrap_err().to_string();
        assert!(err.contains("unterminated quoted string"), "{err}");
        let err = NameAddr::parse_list("bad uri, <sip:a@b>").unwrap_err().to_string();
        assert!(err.contains("not a URI"), "{err}");
    }
}
