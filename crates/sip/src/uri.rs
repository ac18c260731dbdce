//! SIP and SIPS URIs (RFC 3261 §19.1) and the `host[:port]` grammar shared with `Via`.
//!
//! A [`SipUri`] keeps the text it was parsed from and writes it back unchanged, so escapes
//! such as `MAC%3A0015...` are never re-encoded; the parts are views for reading.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use crate::error::ParseError;
use crate::text::{is_token_char, percent_decode, Params};

/// The host part of a URI or of a Via sent-by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// A host name, as written.
    Name(String),
    /// A dotted IPv4 address.
    V4(Ipv4Addr),
    /// An IPv6 reference (written in brackets).
    V6(Ipv6Addr),
}

impl Host {
    /// The address, when the host is an IP literal.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Host::Name(_) => None,
            Host::V4(a) => Some(IpAddr::V4(*a)),
            Host::V6(a) => Some(IpAddr::V6(*a)),
        }
    }
}

impl From<IpAddr> for Host {
    fn from(ip: IpAddr) -> Host {
        match ip {
            IpAddr::V4(a) => Host::V4(a),
            IpAddr::V6(a) => Host::V6(a),
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(n) => f.write_str(n),
            Host::V4(a) => write!(f, "{a}"),
            Host::V6(a) => write!(f, "[{a}]"),
        }
    }
}

/// Parses `host[:port]`, with `host` a name, an IPv4 address or an IPv6 reference.
///
/// ```
/// use sipprov_sip::uri::{parse_hostport, Host};
/// let (host, port) = parse_hostport("[2001:db8::1]:5062").unwrap();
/// assert_eq!(host, Host::V6("2001:db8::1".parse().unwrap()));
/// assert_eq!(port, Some(5062));
/// ```
pub fn parse_hostport(s: &str) -> Result<(Host, Option<u16>), ParseError> {
    let bad = |why: &str| ParseError::BadUri(format!("{why} in host '{s}'"));
    let (host, port) = if let Some(v6) = s.strip_prefix('[') {
        let (addr, rest) = v6.split_once(']').ok_or_else(|| bad("unclosed '['"))?;
        let ip = addr.parse::<Ipv6Addr>().map_err(|_| bad("bad IPv6 address"))?;
        let port = match rest {
            "" => None,
            r => Some(r.strip_prefix(':').ok_or_else(|| bad("junk after ']'"))?),
        };
        (Host::V6(ip), port)
    } else {
        let (name, port) = match s.split_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (s, None),
        };
        (parse_host_name(name).ok_or_else(|| bad("bad host name"))?, port)
    };
    let port = match port {
        None => None,
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
            Some(p.parse::<u16>().map_err(|_| bad("port out of range"))?)
        }
        Some(_) => return Err(bad("bad port")),
    };
    Ok((host, port))
}

fn parse_host_name(name: &str) -> Option<Host> {
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.') {
        return None;
    }
    if name.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return name.parse().ok().map(Host::V4);
    }
    Some(Host::Name(name.to_owned()))
}

/// A `sip:` or `sips:` URI.
///
/// ```
/// use sipprov_sip::uri::SipUri;
/// let uri: SipUri = "sip:MAC%3A001565aabbcc@224.0.1.75;transport=udp".parse().unwrap();
/// assert_eq!(uri.user(), Some("MAC%3A001565aabbcc"));
/// assert_eq!(uri.user_decoded().as_deref(), Some("MAC:001565aabbcc"));
/// assert_eq!(uri.to_string(), "sip:MAC%3A001565aabbcc@224.0.1.75;transport=udp");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipUri {
    raw: String,
    secure: bool,
    user: Option<String>,
    password: Option<String>,
    host: Host,
    port: Option<u16>,
    params: Params,
    headers: Vec<(String, String)>,
}

impl SipUri {
    /// True for `sips:`.
    pub fn is_secure(&self) -> bool {
        self.secure
    }
    /// The user part as written (escapes kept).
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }
    /// The user part with `%XX` escapes decoded (lossy for invalid UTF-8).
    pub fn user_decoded(&self) -> Option<String> {
        let raw = self.user.as_deref()?;
        percent_decode(raw).ok().map(|b| String::from_utf8_lossy(&b).into_owned())
    }
    /// The password part as written, if any (RFC 3261 discourages it).
    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }
    /// The host.
    pub fn host(&self) -> &Host {
        &self.host
    }
    /// The explicit port, if any.
    pub fn port(&self) -> Option<u16> {
        self.port
    }
    /// The URI parameters (`;transport=tcp;lr`), raw.
    pub fn params(&self) -> &Params {
        &self.params
    }
    /// The URI headers (`?Route=...&Subject=...`), raw.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }
    /// The text this URI was parsed from.
    pub fn as_str(&self) -> &str {
        &self.raw
    }
}

impl fmt::Display for SipUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl FromStr for SipUri {
    type Err = ParseError;

    fn from_str(raw: &str) -> Result<SipUri, ParseError> {
        let bad = |why: &str| ParseError::BadUri(format!("{why}: '{raw}'"));
        let (scheme, rest) = raw.split_once(':').ok_or_else(|| bad("missing scheme"))?;
        let secure = match scheme.to_ascii_lowercase().as_str() {
            "sip" => false,
            "sips" => true,
            _ => return Err(bad("not a sip/sips URI")),
        };
        if rest.bytes().any(|b| b <= b' ' || b"<>\"{}|\\^`".contains(&b) || b >= 0x7f) {
            return Err(bad("forbidden character"));
        }
        // The user part may itself contain '?' and ';' (RFC 4475 "intmeth", "semiuri"), so the
        // userinfo is cut at '@' first and only the remainder is split into params and headers.
        let (userinfo, after) = match rest.find('@') {
            Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
            None => (None, rest),
        };
        let (before_headers, headers) = match after.split_once('?') {
            Some((b, h)) => (b, parse_uri_headers(h).ok_or_else(|| bad("bad URI headers"))?),
            None => (after, Vec::new()),
        };
        let (hostport, params) = match before_headers.find(';') {
            Some(i) => (&before_headers[..i], &before_headers[i..]),
            None => (before_headers, ""),
        };
        let params = parse_uri_params(params).ok_or_else(|| bad("bad URI parameter"))?;
        let (host, port) = parse_hostport(hostport)?;
        let (user, password) = split_userinfo(userinfo).ok_or_else(|| bad("bad user part"))?;
        Ok(SipUri { raw: raw.to_owned(), secure, user, password, host, port, params, headers })
    }
}

type UserInfo = (Option<String>, Option<String>);

fn split_userinfo(userinfo: Option<&str>) -> Option<UserInfo> {
    let Some(info) = userinfo else { return Some((None, None)) };
    let (user, password) = match info.split_once(':') {
        Some((u, p)) => (u, Some(p)),
        None => (info, None),
    };
    if user.is_empty() || percent_decode(user).is_err() || password.is_some_and(|p| percent_decode(p).is_err()) {
        return None;
    }
    Some((Some(user.to_owned()), password.map(str::to_owned)))
}

fn uri_param_char(b: u8) -> bool {
    is_token_char(b) || b"[]/:&+$()".contains(&b)
}

fn parse_uri_params(s: &str) -> Option<Params> {
    let mut out = Vec::new();
    for part in s.split(';').skip(1) {
        let (name, value) = match part.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (part, None),
        };
        let ok = |t: &str| !t.is_empty() && t.bytes().all(uri_param_char) && percent_decode(t).is_ok();
        if !ok(name) || value.is_some_and(|v| !ok(v)) {
            return None;
        }
        out.push((name.to_owned(), value.map(str::to_owned)));
    }
    Some(Params(out))
}

fn parse_uri_headers(s: &str) -> Option<Vec<(String, String)>> {
    s.split('&')
        .map(|h| {
            let (n, v) = h.split_once('=')?;
            (!n.is_empty() && percent_decode(n).is_ok() && percent_decode(v).is_ok())
                .then(|| (n.to_owned(), v.to_owned()))
        })
        .collect()
}

/// Checks the generic `absoluteURI` shape (`scheme ":" opaque`) used for non-SIP URIs such as
/// `tel:`, `http:` or RFC 4475's `nobodyKnowsThisScheme:totallyopaquecontent`.
pub fn is_absolute_uri(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once(':') else { return false };
    let mut sb = scheme.bytes();
    sb.next().is_some_and(|b| b.is_ascii_alphabetic())
        && sb.all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        && !rest.is_empty()
        && !rest.bytes().any(|b| b <= b' ' || b"<>\"".contains(&b) || b == 0x7f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_parts() {
        let u: SipUri = "sips:alice:pw@[2001:db8::1]:5061;transport=tls;lr?Subject=hi&X=%3C".parse().unwrap();
        assert!(u.is_secure());
        assert_eq!(u.user(), Some("alice"));
        assert_eq!(u.password(), Some("pw"));
        assert_eq!(u.port(), Some(5061));
        assert_eq!(u.params().get("lr"), Some(None));
        assert_eq!(u.headers().len(), 2);
    }

    #[test]
    fn keeps_escapes() {
        let raw = "sip:sips%3Auser%40example.com@example.net";
        let u: SipUri = raw.parse().unwrap();
        assert_eq!(u.to_string(), raw);
        assert_eq!(u.user_decoded().unwrap(), "sips:user@example.com");
    }

    #[test]
    fn refuses_garbage() {
        for bad in ["sip:", "sip:user@", "sip:a b", "sip:host:99999", "http://x", "sip:%zz@h", "sip:[::1"] {
            assert!(bad.parse::<SipUri>().is_err(), "{bad}");
        }
    }
}
