//! SIP and SIPS URIs (RFC 3261 §19.1) and the `host[:port]` grammar shared with `Via`.
//!
//! A [`SipUri`] keeps the text it was parsed from and writes it back unchanged, so escapes
//! such as `MAC%3A0015...` are never re-encoded; the parts are views for reading.
//! [`SipUriRef`] and [`HostRef`] are the same grammar borrowing from the text, so that a
//! received message is checked without allocating; the owned types are built from them.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use crate::error::ParseError;
use crate::text::{check_percent, find_byte, is_token_char, percent_decode, split_at_byte, Params};

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

/// A [`Host`] borrowing its name from the text it was parsed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HostRef<'a> {
    /// A host name, as written.
    Name(&'a str),
    /// A dotted IPv4 address.
    V4(Ipv4Addr),
    /// An IPv6 reference (written in brackets).
    V6(Ipv6Addr),
}

impl From<HostRef<'_>> for Host {
    fn from(h: HostRef<'_>) -> Host {
        match h {
            HostRef::Name(n) => Host::Name(n.to_owned()),
            HostRef::V4(a) => Host::V4(a),
            HostRef::V6(a) => Host::V6(a),
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
    parse_hostport_ref(s).map(|(host, port)| (host.into(), port))
}

/// Parses `host[:port]` like [`parse_hostport`], borrowing a host name instead of copying it.
///
/// ```
/// use sipprov_sip::uri::{parse_hostport_ref, HostRef};
/// assert_eq!(parse_hostport_ref("pbx.example.com:5060").unwrap(), (HostRef::Name("pbx.example.com"), Some(5060)));
/// assert!(parse_hostport_ref("10.0.0.1:65536").is_err());
/// ```
pub fn parse_hostport_ref(s: &str) -> Result<(HostRef<'_>, Option<u16>), ParseError> {
    let bad = |why: &str| ParseError::BadUri(format!("{why} in host '{s}'"));
    let (host, port) = if let Some(v6) = s.strip_prefix('[') {
        let (addr, rest) = split_at_byte(v6, b']').ok_or_else(|| bad("unclosed '['"))?;
        let ip = addr.parse::<Ipv6Addr>().map_err(|_| bad("bad IPv6 address"))?;
        let port = match rest {
            "" => None,
            r => Some(r.strip_prefix(':').ok_or_else(|| bad("junk after ']'"))?),
        };
        (HostRef::V6(ip), port)
    } else {
        let (name, port) = match split_at_byte(s, b':') {
            Some((n, p)) => (n, Some(p)),
            None => (s, None),
        };
        (parse_host_name(name).ok_or_else(|| bad("bad host name"))?, port)
    };
    let port = match port {
        None => None,
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
            Some(parse_port(p).ok_or_else(|| bad("port out of range"))?)
        }
        Some(_) => return Err(bad("bad port")),
    };
    Ok((host, port))
}

/// Digits as a port, as `str::parse::<u16>` reads them (leading zeros and all), or `None` past
/// 65535. By hand: every Via and URI of every received message has a port.
fn parse_port(digits: &str) -> Option<u16> {
    digits.bytes().try_fold(0u16, |n, d| n.checked_mul(10)?.checked_add(u16::from(d.wrapping_sub(b'0'))))
}

fn parse_host_name(name: &str) -> Option<HostRef<'_>> {
    // One pass: the characters of a host name, noting whether they are all digits and dots.
    let mut dotted = true;
    for b in name.bytes() {
        if b.is_ascii_digit() || b == b'.' {
            continue;
        }
        if !(b.is_ascii_alphabetic() || b == b'-') {
            return None;
        }
        dotted = false;
    }
    if name.is_empty() {
        return None;
    }
    if dotted {
        return parse_ipv4(name).map(HostRef::V4);
    }
    Some(HostRef::Name(name))
}

/// A dotted IPv4 address, exactly as `Ipv4Addr::from_str` reads one: four decimal octets of one
/// to three digits, none above 255, no leading zero (RFC 6943 §3.1.1: no octal). By hand,
/// since it is the host of nearly every Via and URI received; the test below holds it to std.
fn parse_ipv4(s: &str) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    // One pass over the bytes: the octet being read, its value, its digits, and whether its
    // first digit is a 0 (then it may have no other).
    let (mut at, mut value, mut digits, mut zero) = (0usize, 0u16, 0usize, false);
    for &b in s.as_bytes() {
        if b == b'.' {
            if digits == 0 {
                return None;
            }
            *octets.get_mut(at)? = u8::try_from(value).ok()?;
            (at, value, digits) = (at + 1, 0, 0);
        } else if b.is_ascii_digit() {
            if digits == 0 {
                zero = b == b'0';
            } else if zero || digits == 3 {
                return None;
            }
            digits += 1;
            value = value * 10 + u16::from(b - b'0');
        } else {
            return None;
        }
    }
    if at != 3 || digits == 0 {
        return None;
    }
    octets[3] = u8::try_from(value).ok()?;
    Some(Ipv4Addr::from(octets))
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
#[derive(Clone, PartialEq, Eq)]
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

impl std::fmt::Debug for SipUri {
    /// The parts, with a password (RFC 3261 §19.1.1 `user:password@`) shown as `********`;
    /// the raw text is left out since it holds the password too.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SipUri")
            .field("secure", &self.secure)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "********"))
            .field("host", &self.host)
            .field("port", &self.port)
            .field("params", &self.params)
            .field("headers", &self.headers)
            .finish()
    }
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
        SipUriRef::parse(raw).map(SipUri::from)
    }
}

impl From<SipUriRef<'_>> for SipUri {
    fn from(u: SipUriRef<'_>) -> SipUri {
        let own = |(n, v): (&str, Option<&str>)| (n.to_owned(), v.map(str::to_owned));
        SipUri {
            raw: u.raw.to_owned(),
            secure: u.secure,
            user: u.user.map(str::to_owned),
            password: u.password.map(str::to_owned),
            host: u.host.into(),
            port: u.port,
            params: Params(u.params().map(own).collect()),
            headers: u.headers().map(|(n, v)| (n.to_owned(), v.to_owned())).collect(),
        }
    }
}

/// Bytes no part of a SIP URI may hold: controls, space, non-ASCII and the characters RFC 2396
/// §2.4.3 excludes from URIs. A table, one load per byte: every URI received passes here.
const URI_FORBIDDEN: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c <= b' ' || c >= 0x7f || matches!(c, b'<' | b'>' | b'"' | b'{' | b'}' | b'|' | b'\\' | b'^' | b'`');
        b += 1;
    }
    table
};

/// A `sip:` or `sips:` URI borrowed from its text, every part checked: what a [`SipUri`] is
/// built from, for reading a URI without allocating.
///
/// ```
/// use sipprov_sip::uri::{HostRef, SipUriRef};
/// let u = SipUriRef::parse("sip:1234@127.0.0.1:5070;transport=udp?Subject=hi").unwrap();
/// assert_eq!((u.user(), u.host(), u.port()), (Some("1234"), HostRef::V4([127, 0, 0, 1].into()), Some(5070)));
/// assert_eq!(u.params().collect::<Vec<_>>(), [("transport", Some("udp"))]);
/// assert_eq!(u.headers().collect::<Vec<_>>(), [("Subject", "hi")]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SipUriRef<'a> {
    raw: &'a str,
    secure: bool,
    user: Option<&'a str>,
    password: Option<&'a str>,
    host: HostRef<'a>,
    port: Option<u16>,
    /// From the first ';' after the host to the '?' or the end; checked by `uri_params_ok`.
    params: &'a str,
    /// After the '?', checked by `uri_headers_ok`.
    headers: Option<&'a str>,
}

impl<'a> SipUriRef<'a> {
    /// Parses and checks a `sip:`/`sips:` URI exactly as `SipUri::from_str` does.
    pub fn parse(raw: &'a str) -> Result<SipUriRef<'a>, ParseError> {
        match parse_plain(raw) {
            Some(plain) => Ok(plain),
            None => SipUriRef::parse_general(raw),
        }
    }

    /// [`SipUriRef::parse`] for any URI: the scheme, a scan for forbidden characters, then the
    /// userinfo, headers, parameters and host cut apart and each checked.
    fn parse_general(raw: &'a str) -> Result<SipUriRef<'a>, ParseError> {
        let bad = |why: &str| ParseError::BadUri(format!("{why}: '{raw}'"));
        let (scheme, rest) = split_at_byte(raw, b':').ok_or_else(|| bad("missing scheme"))?;
        let secure = if scheme.eq_ignore_ascii_case("sip") {
            false
        } else if scheme.eq_ignore_ascii_case("sips") {
            true
        } else {
            return Err(bad("not a sip/sips URI"));
        };
        if rest.bytes().any(|b| URI_FORBIDDEN[usize::from(b)]) {
            return Err(bad("forbidden character"));
        }
        // The user part may itself contain '?' and ';' (RFC 4475 "intmeth", "semiuri"), so the
        // userinfo is cut at '@' first and only the remainder is split into params and headers.
        let (userinfo, after) = match find_byte(rest, b'@') {
            Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
            None => (None, rest),
        };
        let (before_headers, headers) = match split_at_byte(after, b'?') {
            Some((_, h)) if !uri_headers_ok(h) => return Err(bad("bad URI headers")),
            Some((b, h)) => (b, Some(h)),
            None => (after, None),
        };
        let (hostport, params) = match find_byte(before_headers, b';') {
            Some(i) => (&before_headers[..i], &before_headers[i..]),
            None => (before_headers, ""),
        };
        if !uri_params_ok(params) {
            return Err(bad("bad URI parameter"));
        }
        let (host, port) = parse_hostport_ref(hostport)?;
        let (user, password) = split_userinfo(userinfo).ok_or_else(|| bad("bad user part"))?;
        Ok(SipUriRef { raw, secure, user, password, host, port, params, headers })
    }

    /// True for `sips:`.
    pub fn is_secure(&self) -> bool {
        self.secure
    }
    /// The user part as written (escapes kept).
    pub fn user(&self) -> Option<&'a str> {
        self.user
    }
    /// The password part as written, if any.
    pub fn password(&self) -> Option<&'a str> {
        self.password
    }
    /// The host.
    pub fn host(&self) -> HostRef<'a> {
        self.host
    }
    /// The explicit port, if any.
    pub fn port(&self) -> Option<u16> {
        self.port
    }
    /// The URI parameters in order, raw.
    pub fn params(&self) -> impl Iterator<Item = (&'a str, Option<&'a str>)> + 'a {
        uri_params(self.params)
    }
    /// The URI headers in order, raw; none without a '?'.
    pub fn headers(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        // Checked by `parse`: every header has its '='.
        self.headers.into_iter().flat_map(uri_headers).flatten()
    }
    /// True when the URI carries headers (a '?' part, which is never empty).
    pub fn has_headers(&self) -> bool {
        self.headers.is_some()
    }
    /// The text this URI was parsed from.
    pub fn as_str(&self) -> &'a str {
        self.raw
    }
}

impl fmt::Display for SipUriRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.raw)
    }
}

/// Bytes of a user part the one-pass reader ([`parse_plain`]) takes: RFC 3261 §25.1's
/// `unreserved` and the `user-unreserved` marks other than `;`, `?` and `/`. Never `%`, `:` or
/// `@`, so such a user needs no escape check, has no password and ends at the first `@`.
const USER_PLAIN: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')' | b'&' | b'=' | b'+' | b'$' | b','
            );
        b += 1;
    }
    table
};

/// The common shape of a SIP URI in one pass over its bytes: `sip:` or `sips:`, an optional
/// user of [`USER_PLAIN`] bytes and `@`, a host name or dotted IPv4 address, an optional port,
/// and nothing else (no password, escape, parameter or header). What every From and To of a
/// campaign's responses holds, and a device's contact: the general reader cut it apart with a
/// scan and a search for each of `@`, `?` and `;`, about 1,200 instructions a URI
/// (callgrind), where this takes about 700.
///
/// `None` for anything else, which the general reader then reads (or refuses) as before; what
/// this reads is exactly what the general reader makes of the same text (held by
/// `plain_uris_read_as_the_general_reader_reads_them`).
fn parse_plain(raw: &str) -> Option<SipUriRef<'_>> {
    let b = raw.as_bytes();
    let (secure, start) = if b.get(..4).is_some_and(|s| s.eq_ignore_ascii_case(b"sip:")) {
        (false, 4)
    } else if b.get(..5).is_some_and(|s| s.eq_ignore_ascii_case(b"sips:")) {
        (true, 5)
    } else {
        return None;
    };
    let rest = &b[start..];
    let user_len = rest.iter().position(|&c| !USER_PLAIN[usize::from(c)]).unwrap_or(rest.len());
    let (user, host_at) = match rest.get(user_len) {
        Some(b'@') if user_len > 0 => (Some(&raw[start..start + user_len]), start + user_len + 1),
        _ => (None, start),
    };
    // The host: the bytes `parse_host_name` takes, noting whether they are all digits and dots.
    let (mut end, mut dotted) = (host_at, true);
    while let Some(&c) = b.get(end) {
        if c.is_ascii_alphabetic() || c == b'-' {
            dotted = false;
        } else if !(c.is_ascii_digit() || c == b'.') {
            break;
        }
        end += 1;
    }
    if end == host_at {
        return None;
    }
    let name = &raw[host_at..end];
    let host = if dotted { HostRef::V4(parse_ipv4(name)?) } else { HostRef::Name(name) };
    let port = match &b[end..] {
        [] => None,
        [b':', digits @ ..] if !digits.is_empty() && digits.iter().all(u8::is_ascii_digit) => {
            Some(parse_port(&raw[end + 1..])?)
        }
        _ => return None,
    };
    Some(SipUriRef { raw, secure, user, password: None, host, port, params: "", headers: None })
}

type UserInfo<'a> = (Option<&'a str>, Option<&'a str>);

fn split_userinfo(userinfo: Option<&str>) -> Option<UserInfo<'_>> {
    let Some(info) = userinfo else { return Some((None, None)) };
    let (user, password) = match split_at_byte(info, b':') {
        Some((u, p)) => (u, Some(p)),
        None => (info, None),
    };
    if user.is_empty() || check_percent(user).is_err() || password.is_some_and(|p| check_percent(p).is_err()) {
        return None;
    }
    Some((Some(user), password))
}

fn uri_param_char(b: u8) -> bool {
    is_token_char(b) || matches!(b, b'[' | b']' | b'/' | b':' | b'&' | b'+' | b'$' | b'(' | b')')
}

/// The `;name[=value]` URI parameters of `s` (empty or starting with ';').
fn uri_params(s: &str) -> impl Iterator<Item = (&str, Option<&str>)> {
    s.split(';').skip(1).map(|part| match part.split_once('=') {
        Some((n, v)) => (n, Some(v)),
        None => (part, None),
    })
}

fn uri_params_ok(s: &str) -> bool {
    let ok = |t: &str| !t.is_empty() && t.bytes().all(uri_param_char) && check_percent(t).is_ok();
    uri_params(s).all(|(name, value)| ok(name) && value.is_none_or(ok))
}

/// The `name=value` URI headers of `s` (the text after '?'); `None` for one without '='.
fn uri_headers(s: &str) -> impl Iterator<Item = Option<(&str, &str)>> {
    s.split('&').map(|h| h.split_once('='))
}

fn uri_headers_ok(s: &str) -> bool {
    uri_headers(s)
        .all(|h| h.is_some_and(|(n, v)| !n.is_empty() && check_percent(n).is_ok() && check_percent(v).is_ok()))
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
    fn debug_hides_the_password() {
        let u: SipUri = "sip:1001:hunter2@192.0.2.10:5060".parse().unwrap();
        let shown = format!("{u:?}");
        assert!(!shown.contains("hunter2") && shown.contains("1001") && shown.contains("********"), "{shown}");
    }

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
        for bad in [
            "sip:",
            "sip:user@",
            "sip:a b",
            "sip:host:99999",
            "http://x",
            "sip:%zz@h",
            "sip:%+41@h",
            "sip:h;x=%+f",
            "sip:[::1",
        ] {
            assert!(bad.parse::<SipUri>().is_err(), "{bad}");
        }
        for (bad, why) in [("sip:h?", "headers"), ("sip:h;a=%", "parameter"), ("sip:u:%1@h", "user part")] {
            let err = SipUriRef::parse(bad).unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn hosts_and_ports_read_as_std_reads_them() {
        let alphabet = [b'0', b'1', b'2', b'5', b'9', b'.', b'a', b'-'];
        let mut cases: Vec<String> = ["255.255.255.255", "256.1.1.1", "1.2.3.4.5", "01.2.3.4", "0.0.0.0", "1..2.3"]
            .into_iter()
            .map(str::to_owned)
            .collect();
        // Every string of up to seven bytes over the bytes that matter, and longer dotted ones.
        cases.extend(crate::text::every_string(&alphabet, 7));
        for _ in 0..20_000 {
            let octet = || match rand::random::<u8>() % 4 {
                0 => rand::random::<u8>().to_string(),
                1 => format!("0{}", rand::random::<u8>() % 10),
                2 => (rand::random::<u16>() % 1000).to_string(),
                _ => String::new(),
            };
            cases.push((0..3 + rand::random::<u8>() % 3).map(|_| octet()).collect::<Vec<_>>().join("."));
        }
        for s in &cases {
            assert_eq!(parse_ipv4(s), s.parse::<Ipv4Addr>().ok(), "{s:?}");
            if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
                assert_eq!(parse_port(s), s.parse::<u16>().ok(), "{s:?}");
            }
        }
        for port in ["0", "5060", "65535", "65536", "0000065535", "99999", "100000000000000000000"] {
            assert_eq!(parse_port(port), port.parse::<u16>().ok(), "{port}");
        }
    }

    #[test]
    fn plain_uris_read_as_the_general_reader_reads_them() {
        // Every string of up to four bytes over the bytes that matter after each of these
        // prefixes, of up to six over fewer after `sip:`, and of up to six over the scheme's.
        let alphabet = [b'a', b'Z', b'0', b'9', b'.', b'-', b'@', b':', b'_', b'%', b';', b'?', b' ', b'<'];
        let mut cases = Vec::new();
        for tail in crate::text::every_string(&alphabet, 4) {
            for prefix in ["sip:", "SIPS:", "sip:1@", "sip:1@1.2.3.4", "sips:a@h", "sipx:", "si"] {
                cases.push(format!("{prefix}{tail}"));
            }
        }
        cases.extend(crate::text::every_string(b"a0.@:-", 6).iter().map(|tail| format!("sip:{tail}")));
        cases.extend(crate::text::every_string(b"sip:@1.a", 6));
        let more = [
            "sip:100@127.0.0.1:5060",
            "sip:sipprov@127.0.0.1",
            "sip:1@256.0.0.1",
            "sip:1@01.2.3.4:5060",
            "sip:1@1.2.3.4:65536",
            "sip:1@1.2.3.4:065535",
            "sips:u@h.example.com:5061",
            "sip:x!~*'()&=+$,@h",
            "sip:h",
            "sip:@h",
            "sip:u@",
            "sip:u@h:",
            "sip:u@h:1:2",
            "sip:u@-",
            "sip:u@.",
            "sip:u@1.2.3.4.",
            "sip:é@h",
            "sip:u@hé",
            "sip:u@h\0",
        ];
        cases.extend(more.iter().map(|s| s.to_string()));
        let mut plain = 0;
        for s in &cases {
            let general = SipUriRef::parse_general(s);
            if let Some(fast) = parse_plain(s) {
                plain += 1;
                assert_eq!(Ok(fast), general, "{s:?}");
            }
            assert_eq!(SipUriRef::parse(s), general, "{s:?}");
        }
        assert!(plain > 10_000, "the one-pass reader took {plain} of {}", cases.len());
        for s in &more[..2] {
            assert!(parse_plain(s).is_some(), "{s}");
        }
    }

    #[test]
    fn owned_and_borrowed_agree() {
        let raw = "SIP:u;x=1@h.example:5060;lr;maddr=[::1]?A=1&B=";
        let b = SipUriRef::parse(raw).unwrap();
        let u: SipUri = raw.parse().unwrap();
        assert_eq!((b.user(), Host::from(b.host()), b.port()), (u.user(), u.host().clone(), u.port()));
        assert_eq!(u.params().0.len(), 2);
        assert_eq!(u.headers(), [("A".to_owned(), "1".to_owned()), ("B".to_owned(), String::new())]);
    }
}
