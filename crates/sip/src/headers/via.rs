//! The `Via` header (RFC 3261 §20.42) with the RFC 3581 `rport` parameter.

use std::fmt;
use std::str::FromStr;

use crate::error::ParseError;
use crate::text::{is_token, split_top, Params};
use crate::uri::{parse_hostport, Host};

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
        split_top(value, b',').map_err(|e| ParseError::header("Via", e))?.into_iter().map(str::parse).collect()
    }
}

impl FromStr for Via {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Via, ParseError> {
        let bad = |why: &str| ParseError::header("Via", format!("{why} in '{}'", s.trim()));
        let (proto, params) = match s.find(';') {
            Some(i) => (&s[..i], &s[i..]),
            None => (s, ""),
        };
        // LWS is allowed around the '/' separators (RFC 4475 "wsinv").
        let mut fields = proto.splitn(3, '/').map(str::trim);
        let (name, version, rest) = (fields.next(), fields.next(), fields.next());
        if !name.is_some_and(|n| n.eq_ignore_ascii_case("SIP")) || version != Some("2.0") {
            return Err(bad("protocol is not SIP/2.0"));
        }
        let rest = rest.ok_or_else(|| bad("missing transport"))?;
        let (transport, sent_by) = rest.split_once([' ', '\t']).ok_or_else(|| bad("missing sent-by"))?;
        if !is_token(transport) {
            return Err(bad("bad transport"));
        }
        let (host, port) = parse_hostport(sent_by.trim())?;
        let params = Params::parse(params).map_err(&bad)?;
        Ok(Via { transport: transport.to_owned(), host, port, params })
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIP/2.0/{} {}{}", self.transport, self.sent_by(), self.params)
    }
}
