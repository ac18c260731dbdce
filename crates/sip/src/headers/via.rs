//! The `Via` header (RFC 3261 §20.42) with the RFC 3581 `rport` parameter.

use std::fmt;
use std::str::FromStr;

use super::ValueList;
use crate::error::ParseError;
use crate::text::{find_byte, is_token, split_at_byte, Params, ParamsRef};
use crate::uri::{parse_hostport_ref, Host, HostRef};

/// The RFC 3261 branch magic cookie.
pub const BRANCH_MAGIC: &str = "z9hG4bK";

/// One Via value.
///
/// ```
/// use sipprov_sip::headers::Via;
/// let v: Via = "SIP / 2.0 / UDP [2001:db8::1]:5062;branch=z9hG4bK1;rport".parse().unwrap();
/// assert_eq!(v.transport, "UDP");
/// assert_eq!(v.port, Some(5062));
/// assert_eq!(v.rport(), Some(None));
/// assert_eq!(v.to_string(), "SIP/2.0/UDP [2001:db8::1]:5062;branch=z9hG4bK1;rport");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// Transport token as written (`UDP`, `TCP`, `TLS`, ...).
    pub transport: String,
    /// The sent-by host.
    pub host: Host,
    /// The sent-by port, if written.
    pub port: Option<u16>,
    /// Parameters (`branch`, `received`, `rport`, ...), raw.
    pub params: Params,
}

impl Via {
    /// A Via for us: `SIP/2.0/<transport> host:port;branch=...;rport`.
    pub fn new(transport: &str, host: Host, port: Option<u16>, branch: &str) -> Via {
        let mut params = Params::default();
        params.set("branch", Some(branch));
        params.set("rport", None);
        Via { transport: transport.to_owned(), host, port, params }
    }

    /// The branch parameter.
    pub fn branch(&self) -> Option<&str> {
        self.params.get("branch").flatten()
    }

    /// The `received` parameter.
    pub fn received(&self) -> Option<&str> {
        self.params.get("received").flatten()
    }

    /// `None` without rport, `Some(None)` for a bare `;rport`, `Some(Some(port))` when filled in.
    pub fn rport(&self) -> Option<Option<u16>> {
        self.params.get("rport").map(|v| v.and_then(|p| p.parse().ok()))
    }

    /// The sent-by as `host[:port]` text.
    pub fn sent_by(&self) -> String {
        match self.port {
            Some(p) => format!("{}:{p}", self.host),
            None => self.host.to_string(),
        }
    }

    /// Parses a Via header value holding one or more comma-separated Vias.
    pub fn parse_list(value: &str) -> Result<Vec<Via>, ParseError> {
        ViaRef::parse_list(value).map(|v| v.map(Via::from)).collect()
    }
}

impl FromStr for Via {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Via, ParseError> {
        ViaRef::parse(s).map(Via::from)
    }
}

impl From<ViaRef<'_>> for Via {
    fn from(v: ViaRef<'_>) -> Via {
        Via { transport: v.transport.to_owned(), host: v.host.into(), port: v.port, params: v.params.into() }
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIP/2.0/{} {}{}", self.transport, self.sent_by(), self.params)
    }
}

/// One Via value borrowed from its header and checked: what a [`Via`] is built from, for
/// reading a Via without allocating.
///
/// ```
/// use sipprov_sip::headers::ViaRef;
/// let v = ViaRef::parse("SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bK1f;rport=40000").unwrap();
/// assert_eq!((v.transport, v.port, v.branch()), ("UDP", Some(40000), Some("z9hG4bK1f")));
/// let all: Result<Vec<_>, _> = ViaRef::parse_list("SIP/2.0/TCP a, SIP/2.0/UDP b").collect();
/// assert_eq!(all.unwrap()[1].transport, "UDP");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ViaRef<'a> {
    /// Transport token as written.
    pub transport: &'a str,
    /// The sent-by host.
    pub host: HostRef<'a>,
    /// The sent-by port, if written.
    pub port: Option<u16>,
    /// Parameters, raw.
    pub params: ParamsRef<'a>,
    /// The branch parameter, found while the parameters were checked: each response's
    /// transaction is found by it (RFC 3261 §17.1.3), so it is not looked up again.
    branch: Option<&'a str>,
}

impl<'a> ViaRef<'a> {
    /// Parses and checks one Via value exactly as `Via::from_str` does.
    pub fn parse(s: &'a str) -> Result<ViaRef<'a>, ParseError> {
        let bad = |why: &str| ParseError::header("Via", format!("{why} in '{}'", s.trim()));
        let (proto, params) = match find_byte(s, b';') {
            Some(i) => (&s[..i], &s[i..]),
            None => (s, ""),
        };
        // LWS is allowed around the '/' separators (RFC 4475 "wsinv"). The fields of
        // `proto.splitn(3, '/')`, cut by byte: every Via received is read here.
        let (name, after) = match split_at_byte(proto, b'/') {
            Some((name, after)) => (name, Some(after)),
            None => (proto, None),
        };
        let (version, rest) = match after.map(|after| split_at_byte(after, b'/').ok_or(after)) {
            Some(Ok((version, rest))) => (Some(version), Some(rest)),
            Some(Err(version)) => (Some(version), None),
            None => (None, None),
        };
        if !name.trim_ascii().eq_ignore_ascii_case("SIP") || version.map(str::trim_ascii) != Some("2.0") {
            return Err(bad("protocol is not SIP/2.0"));
        }
        let rest = rest.map(str::trim_ascii).ok_or_else(|| bad("missing transport"))?;
        let gap = rest.bytes().position(|b| b == b' ' || b == b'\t').ok_or_else(|| bad("missing sent-by"))?;
        let (transport, sent_by) = (&rest[..gap], &rest[gap + 1..]);
        if !is_token(transport) {
            return Err(bad("bad transport"));
        }
        let (host, port) = parse_hostport_ref(sent_by.trim_ascii())?;
        let (params, branch) = ParamsRef::parse_finding(params, "branch").map_err(bad)?;
        Ok(ViaRef { transport, host, port, params, branch: branch.flatten() })
    }

    /// The Vias of a header value holding one or more comma-separated ones, each parsed as it
    /// is reached; the errors are those of [`Via::parse_list`].
    pub fn parse_list(value: &'a str) -> ValueList<'a, ViaRef<'a>> {
        ValueList::new(value, "Via", ViaRef::parse)
    }

    /// The branch parameter.
    pub fn branch(&self) -> Option<&'a str> {
        self.branch
    }
}

#[cfg(test)]
mod tests {
    use super::ViaRef;

    #[test]
    fn the_branch_found_while_checking_is_the_branch_looked_up() {
        let vias = [
            "SIP/2.0/UDP h;branch=z9hG4bK1;rport",
            "SIP/2.0/UDP h;rport;BRANCH=z9hG4bK2;branch=z9hG4bK3",
            "SIP/2.0/UDP h;branch;branch=z9hG4bK4",
            "SIP/2.0/UDP h;x=\";branch=no\"",
            "SIP/2.0/UDP h",
        ];
        for via in vias {
            let v = ViaRef::parse(via).unwrap();
            assert_eq!(v.branch(), v.params.get("branch").flatten(), "{via}");
        }
    }
}
