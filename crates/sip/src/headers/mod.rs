//! Typed views of the headers sipprov needs, parsed lazily from the raw header lines.
//!
//! Each accessor on [`Headers`] parses on demand and reports a [`ParseError`] naming the header.

mod misc;
mod name_addr;
mod via;

pub use misc::{parse_number, CSeq, Event, SubscriptionState, MAX_CSEQ};
pub use name_addr::NameAddr;
pub use via::{Via, BRANCH_MAGIC};

use crate::auth::{self, Challenge};
use crate::error::ParseError;
use crate::message::Headers;

impl Headers {
    /// Every Via value, topmost first (several values per line and several lines both count).
    pub fn vias(&self) -> Result<Vec<Via>, ParseError> {
        let mut out = Vec::new();
        for h in self.get_all("Via") {
            out.extend(Via::parse_list(&h.value())?);
        }
        Ok(out)
    }

    /// The topmost Via.
    pub fn top_via(&self) -> Result<Via, ParseError> {
        self.vias()?.into_iter().next().ok_or(ParseError::Missing("Via"))
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

    /// Every Contact address; `Contact: *` yields an empty list.
    pub fn contacts(&self) -> Result<Vec<NameAddr>, ParseError> {
        let mut out = Vec::new();
        for h in self.get_all("Contact") {
            let value = h.value();
            if value.trim() != "*" {
                out.extend(NameAddr::parse_list(&value)?);
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
        self.number("Expires", u64::from(u32::MAX)).map(|n| n.map(|n| n as u32))
    }

    /// Max-Forwards (0–255), if present.
    pub fn max_forwards(&self) -> Result<Option<u8>, ParseError> {
        self.number("Max-Forwards", 255).map(|n| n.map(|n| n as u8))
    }

    /// Content-Length, if present; several Content-Length headers are refused (RFC 4475 "mcl01").
    pub fn content_length(&self) -> Result<Option<usize>, ParseError> {
        if self.get_all("Content-Length").count() > 1 {
            return Err(ParseError::Duplicate("Content-Length"));
        }
        self.number("Content-Length", u64::from(u32::MAX)).map(|n| n.map(|n| n as usize))
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

    fn number(&self, name: &'static str, max: u64) -> Result<Option<u64>, ParseError> {
        match self.value(name) {
            None => Ok(None),
            Some(v) => parse_number(&v, max)
                .map(Some)
                .ok_or_else(|| ParseError::header(name, format!("'{v}' is not a number in 0..={max}"))),
        }
    }
}
