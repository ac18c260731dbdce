//! `name-addr` / `addr-spec` values: From, To, Contact, Route (RFC 3261 §20.10, §25.1).

use std::fmt;
use std::str::FromStr;

use crate::error::ParseError;
use crate::text::{is_token, parse_quoted, quote, split_top, Params};
use crate::uri::{is_absolute_uri, SipUri};

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
        split_top(value, b',').map_err(|e| ParseError::header("address", e))?.into_iter().map(str::parse).collect()
    }
}

impl FromStr for NameAddr {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<NameAddr, ParseError> {
        let s = s.trim();
        let bad = |why: &str| ParseError::header("address", format!("{why} in '{s}'"));
        let (display_name, rest) = if s.starts_with('"') {
            let (name, rest) = parse_quoted(s).map_err(&bad)?;
            (Some(name), rest.trim_start())
        } else if let Some(lt) = s.find('<') {
            (token_display_name(&s[..lt]).map_err(&bad)?, &s[lt..])
        } else {
            return parse_addr_spec(s).map_err(&bad);
        };
        let inner = rest.strip_prefix('<').ok_or_else(|| bad("expected '<'"))?;
        let (uri, params) = inner.split_once('>').ok_or_else(|| bad("missing '>'"))?;
        check_uri(uri).map_err(&bad)?;
        let params = Params::parse(params).map_err(&bad)?;
        Ok(NameAddr { display_name, uri: uri.to_owned(), params })
    }
}

/// An unquoted display name is a sequence of tokens (RFC 4475 "baddn" has a comma in it).
fn token_display_name(text: &str) -> Result<Option<String>, &'static str> {
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.iter().any(|w| !is_token(w)) {
        return Err("display name is neither a quoted string nor tokens");
    }
    Ok((!words.is_empty()).then(|| words.join(" ")))
}

/// Without `<>`, the URI ends at the first ';' and may not contain ',', '?' or ';' (RFC 3261 §20.10).
fn parse_addr_spec(s: &str) -> Result<NameAddr, &'static str> {
    let (uri, params) = match s.find(';') {
        Some(i) => (s[..i].trim_end(), &s[i..]),
        None => (s, ""),
    };
    if uri.contains(['?', ',']) {
        return Err("a URI with '?' or ',' must be enclosed in <>");
    }
    check_uri(uri)?;
    Ok(NameAddr { display_name: None, uri: uri.to_owned(), params: Params::parse(params)? })
}

fn check_uri(uri: &str) -> Result<(), &'static str> {
    let is_sip = uri.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("sip:"))
        || uri.get(..5).is_some_and(|p| p.eq_ignore_ascii_case("sips:"));
    if is_sip {
        uri.parse::<SipUri>().map(|_| ()).map_err(|_| "bad SIP URI")
    } else if is_absolute_uri(uri) {
        Ok(())
    } else {
        Err("not a URI (is there whitespace inside <>?)")
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
