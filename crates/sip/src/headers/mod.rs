//! Typed views of the headers sipprov needs, parsed lazily from the raw header lines.
//!
//! Each accessor on [`Headers`] parses on demand and reports a [`ParseError`] naming the header.
//! The owned types ([`Via`], [`NameAddr`], [`CSeq`]) are built from borrowing parsers
//! ([`ViaRef`], [`NameAddrRef`], [`parse_cseq`]) that hold the grammar and allocate nothing; the
//! message parser checks every received message with those, and so do
//! [`Headers::top_via_branch`] and [`Headers::cseq_parts`].

mod misc;
mod name_addr;
mod via;

pub use misc::{parse_cseq, parse_number, CSeq, Event, SubscriptionState, MAX_CSEQ};
pub use name_addr::{NameAddr, NameAddrRef};
pub use via::{Via, ViaRef, BRANCH_MAGIC};

use std::borrow::Cow;

use crate::auth::{self, Challenge};
use crate::error::ParseError;
use crate::message::{Header, Headers};
use crate::text::{find_byte, split_top_iter, ParamsRef, SplitTop};

/// The values of one comma-separated list header (Via, Contact, Route), each parsed by a
/// borrowing parser as it is reached ([`ViaRef::parse_list`], [`NameAddrRef::parse_list`]).
///
/// Yields the values in order, or the first error, and nothing after it. The error is the one
/// splitting the whole value first would report: an unclosed quote or `<` anywhere wins over a
/// malformed value before it.
#[derive(Debug, Clone)]
pub struct ValueList<'a, T> {
    parts: SplitTop<'a>,
    /// The header name for splitting errors.
    what: &'static str,
    parse: fn(&'a str) -> Result<T, ParseError>,
}

impl<'a, T> ValueList<'a, T> {
    fn new(value: &'a str, what: &'static str, parse: fn(&'a str) -> Result<T, ParseError>) -> Self {
        ValueList { parts: split_top_iter(value, b','), what, parse }
    }
}

impl<T> Iterator for ValueList<'_, T> {
    type Item = Result<T, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        let what = self.what;
        Some(match self.parts.next()? {
            Ok(part) => (self.parse)(part).map_err(|e| self.parts.fail(e, |e| ParseError::header(what, e))),
            Err(e) => Err(ParseError::header(what, e)),
        })
    }
}

/// The first Via value of a Via header value (there is always one, maybe empty and refused).
fn first_via(value: &str) -> Result<ViaRef<'_>, ParseError> {
    ViaRef::parse_list(value).next().unwrap_or(Err(ParseError::Missing("Via")))
}

/// The addresses of a Contact header value; `*` (RFC 3261 §10.2.2) holds none.
pub(crate) fn contact_list(value: &str) -> impl Iterator<Item = Result<NameAddrRef<'_>, ParseError>> {
    (value.trim() != "*").then(|| NameAddrRef::parse_list(value)).into_iter().flatten()
}

/// Max-Forwards (0–255) of the first Max-Forwards header, if any.
pub(crate) fn max_forwards_of(h: Option<Header<'_>>) -> Result<Option<u8>, ParseError> {
    number_of("Max-Forwards", h, 255).map(|n| n.map(|n| n as u8))
}

/// The Content-Length given `count` Content-Length headers, the first being `first`.
pub(crate) fn content_length_of(count: usize, first: Option<Header<'_>>) -> Result<Option<usize>, ParseError> {
    if count > 1 {
        return Err(ParseError::Duplicate("Content-Length"));
    }
    number_of("Content-Length", first, u64::from(u32::MAX)).map(|n| n.map(|n| n as usize))
}

/// Expires in seconds of the first Expires header, if any.
pub(crate) fn expires_of(h: Option<Header<'_>>) -> Result<Option<u32>, ParseError> {
    number_of("Expires", h, u64::from(u32::MAX)).map(|n| n.map(|n| n as u32))
}

fn number_of(name: &'static str, h: Option<Header<'_>>, max: u64) -> Result<Option<u64>, ParseError> {
    match h.map(|h| h.value()) {
        None => Ok(None),
        Some(v) => parse_number(&v, max)
            .map(Some)
            .ok_or_else(|| ParseError::header(name, format!("'{v}' is not a number in 0..={max}"))),
    }
}

impl Headers {
    /// Every Via value, topmost first (several values per line and several lines both count).
    pub fn vias(&self) -> Result<Vec<Via>, ParseError> {
        let mut out = Vec::new();
        for h in self.get_all("Via") {
            for via in ViaRef::parse_list(&h.value()) {
                out.push(via?.into());
            }
        }
        Ok(out)
    }

    /// The topmost Via: the first value of the first Via header (the others are not parsed).
    pub fn top_via(&self) -> Result<Via, ParseError> {
        let value = self.value("Via").ok_or(ParseError::Missing("Via"))?;
        first_via(&value).map(Via::from)
    }

    /// The branch parameter of the topmost Via, parsed like [`Headers::top_via`] but without
    /// building a [`Via`]: borrowed from the message unless the Via header is folded.
    ///
    /// `Ok(None)` when the topmost Via has no branch; an error when there is no Via or the
    /// topmost one is malformed.
    ///
    /// ```
    /// use sipprov_sip::message::Headers;
    /// let mut h = Headers::new();
    /// h.push("Via", "SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1, SIP/2.0/UDP 10.0.0.2;branch=z9hG4bK2");
    /// assert_eq!(h.top_via_branch().unwrap().as_deref(), Some("z9hG4bK1"));
    /// h.set("Via", "SIP/2.0/UDP 10.0.0.1");
    /// assert_eq!(h.top_via_branch().unwrap(), None);
    /// assert!(Headers::new().top_via_branch().is_err());
    /// ```
    pub fn top_via_branch(&self) -> Result<Option<Cow<'_, str>>, ParseError> {
        Ok(match self.value("Via").ok_or(ParseError::Missing("Via"))? {
            Cow::Borrowed(v) => first_via(v)?.branch().map(Cow::Borrowed),
            Cow::Owned(v) => first_via(&v)?.branch().map(|b| Cow::Owned(b.to_owned())),
        })
    }

    /// The branch of the topmost Via of a message that [`crate::message::parse`] accepted:
    /// only the parameters are read, the rest of the Via having been checked then. This is
    /// how each response finds its transaction.
    pub(crate) fn checked_top_via_branch(&self) -> Option<Cow<'_, str>> {
        fn branch(value: &str) -> Option<&str> {
            let first = split_top_iter(value, b',').next()?.ok()?;
            // Neither the protocol nor the sent-by may hold a ';'.
            let params = &first[find_byte(first, b';')?..];
            ParamsRef::parse(params).ok()?.get("branch").flatten()
        }
        match self.value("Via")? {
            Cow::Borrowed(v) => branch(v).map(Cow::Borrowed),
            Cow::Owned(v) => branch(&v).map(|b| Cow::Owned(b.to_owned())),
        }
    }

    /// The From header.
    pub fn from(&self) -> Result<NameAddr, ParseError> {
        self.value("From").ok_or(ParseError::Missing("From"))?.parse()
    }

    /// The To header.
    pub fn to(&self) -> Result<NameAddr, ParseError> {
        self.value("To").ok_or(ParseError::Missing("To"))?.parse()
    }

    /// The Call-ID, as written.
    pub fn call_id(&self) -> Result<String, ParseError> {
        self.value("Call-ID").map(|v| v.into_owned()).ok_or(ParseError::Missing("Call-ID"))
    }

    /// The CSeq, if present.
    pub fn cseq(&self) -> Result<Option<CSeq>, ParseError> {
        self.value("CSeq").map(|v| v.parse()).transpose()
    }

    /// The CSeq number and method, if present, parsed like [`Headers::cseq`] but without
    /// building a [`CSeq`]: the method is borrowed from the message unless the header is folded.
    ///
    /// ```
    /// use sipprov_sip::message::Headers;
    /// let mut h = Headers::new();
    /// assert_eq!(h.cseq_parts().unwrap(), None);
    /// h.push("CSeq", "20 NOTIFY");
    /// assert_eq!(h.cseq_parts().unwrap(), Some((20, "NOTIFY".into())));
    /// h.set("CSeq", "NOTIFY 20");
    /// assert!(h.cseq_parts().is_err());
    /// ```
    pub fn cseq_parts(&self) -> Result<Option<(u32, Cow<'_, str>)>, ParseError> {
        Ok(match self.value("CSeq") {
            None => None,
            Some(Cow::Borrowed(v)) => parse_cseq(v).map(|(seq, method)| Some((seq, Cow::Borrowed(method))))?,
            Some(Cow::Owned(v)) => parse_cseq(&v).map(|(seq, method)| Some((seq, Cow::Owned(method.to_owned()))))?,
        })
    }

    /// Every Contact address; `Contact: *` yields an empty list.
    pub fn contacts(&self) -> Result<Vec<NameAddr>, ParseError> {
        let mut out = Vec::new();
        for h in self.get_all("Contact") {
            for contact in contact_list(&h.value()) {
                out.push(contact?.into());
            }
        }
        Ok(out)
    }

    /// The Event header, if present.
    pub fn event(&self) -> Result<Option<Event>, ParseError> {
        self.value("Event").map(|v| v.parse()).transpose()
    }

    /// The Subscription-State header, if present.
    pub fn subscription_state(&self) -> Result<Option<SubscriptionState>, ParseError> {
        self.value("Subscription-State").map(|v| v.parse()).transpose()
    }

    /// Expires in seconds (RFC 3261 §20.19), if present.
    pub fn expires(&self) -> Result<Option<u32>, ParseError> {
        expires_of(self.get("Expires"))
    }

    /// Max-Forwards (0–255), if present.
    pub fn max_forwards(&self) -> Result<Option<u8>, ParseError> {
        max_forwards_of(self.get("Max-Forwards"))
    }

    /// Content-Length, if present; several Content-Length headers are refused (RFC 4475 "mcl01").
    pub fn content_length(&self) -> Result<Option<usize>, ParseError> {
        content_length_of(self.get_all("Content-Length").count(), self.get("Content-Length"))
    }

    /// Content-Type, as written.
    pub fn content_type(&self) -> Option<String> {
        self.value("Content-Type").map(|v| v.into_owned())
    }

    /// User-Agent, as written.
    pub fn user_agent(&self) -> Option<String> {
        self.value("User-Agent").map(|v| v.into_owned())
    }

    /// Every challenge of every WWW-Authenticate header, in order.
    pub fn www_authenticate(&self) -> Result<Vec<Challenge>, ParseError> {
        self.challenges("WWW-Authenticate")
    }

    /// Every challenge of every Proxy-Authenticate header, in order.
    pub fn proxy_authenticate(&self) -> Result<Vec<Challenge>, ParseError> {
        self.challenges("Proxy-Authenticate")
    }

    /// The credentials of every Authorization header.
    pub fn authorization(&self) -> Result<Vec<Challenge>, ParseError> {
        self.challenges("Authorization")
    }

    /// The credentials of every Proxy-Authorization header.
    pub fn proxy_authorization(&self) -> Result<Vec<Challenge>, ParseError> {
        self.challenges("Proxy-Authorization")
    }

    fn challenges(&self, name: &'static str) -> Result<Vec<Challenge>, ParseError> {
        let mut out = Vec::new();
        for h in self.get_all(name) {
            out.extend(auth::parse_challenges(&h.value()).map_err(|e| ParseError::header(name, e.to_string()))?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use crate::message::Headers;

    #[test]
    fn checked_branch_is_the_branch_of_the_full_parse() {
        let vias = [
            "SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1",
            "SIP/2.0/UDP 10.0.0.1:5060;rport=5060;branch=z9hG4bKa;received=10.0.0.9, SIP/2.0/TCP b;branch=z9hG4bKb",
            "SIP / 2.0 / UDP [2001:db8::1]:5060 ; BRANCH = z9hG4bKc ; x=\";branch=no\"",
            "SIP/2.0/UDP 10.0.0.1;x=\"a,b;branch=no\";branch=z9hG4bKd",
            "SIP/2.0/UDP 10.0.0.1;rport",
            "SIP/2.0/UDP 10.0.0.1",
        ];
        for via in vias {
            let mut h = Headers::new();
            h.push("v", via);
            let full = h.top_via_branch().unwrap();
            assert_eq!(h.checked_top_via_branch(), full, "{via}");
        }
        let mut folded = Headers::new();
        folded.push("Via", "SIP/2.0/UDP 10.0.0.1\r\n ;branch=z9hG4bKe");
        assert_eq!(folded.checked_top_via_branch().as_deref(), Some("z9hG4bKe"));
    }
}
