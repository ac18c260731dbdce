//! Small typed headers: CSeq, Event, Subscription-State and the numeric ones.

use std::fmt;
use std::str::FromStr;

use crate::error::ParseError;
use crate::text::{is_token, Params};

/// Largest CSeq number allowed by RFC 3261 §8.1.1.5 (below 2**31).
pub const MAX_CSEQ: u32 = (1 << 31) - 1;

/// The CSeq header (RFC 3261 §20.16).
///
/// ```
/// let c: sipprov_sip::headers::CSeq = "0009  NOTIFY".parse().unwrap();
/// assert_eq!(c.seq, 9);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    /// The sequence number.
    pub seq: u32,
    /// The method.
    pub method: String,
}

impl FromStr for CSeq {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<CSeq, ParseError> {
        let (seq, method) = parse_cseq(s)?;
        Ok(CSeq { seq, method: method.to_owned() })
    }
}

/// Parses a CSeq value into its number and method, borrowing the method: what a [`CSeq`] is
/// built from, for reading a CSeq without allocating.
///
/// ```
/// use sipprov_sip::headers::parse_cseq;
/// assert_eq!(parse_cseq(" 0009  NOTIFY").unwrap(), (9, "NOTIFY"));
/// assert!(parse_cseq("2147483648 NOTIFY").is_err());
/// ```
pub fn parse_cseq(s: &str) -> Result<(u32, &str), ParseError> {
    let bad = |why: &str| ParseError::header("CSeq", format!("{why} in '{}'", s.trim()));
    let mut parts = s.split_ascii_whitespace();
    let (Some(num), Some(method), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad("expected '<number> <method>'"));
    };
    let seq = parse_number(num, u64::from(MAX_CSEQ)).ok_or_else(|| bad("sequence number is not 0..2**31"))?;
    if !is_token(method) {
        return Err(bad("method is not a token"));
    }
    // parse_number kept it within MAX_CSEQ.
    Ok((seq as u32, method))
}

impl fmt::Display for CSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.seq, self.method)
    }
}

/// Parses `1*DIGIT` no larger than `max`; overlong or signed values are refused.
pub fn parse_number(s: &str, max: u64) -> Option<u64> {
    let s = s.trim();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u64>().ok().filter(|n| *n <= max)
}

/// The Event header (RFC 6665 §8.2.1): a package name plus parameters.
///
/// ```
/// use sipprov_sip::headers::Event;
/// let e: Event = r#"check-sync; Reboot="true""#.parse().unwrap();
/// assert!(e.is("CHECK-SYNC"));
/// assert_eq!(e.param("reboot").as_deref(), Some("true"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The event package (with template, e.g. `presence.winfo`), as written.
    pub event_type: String,
    /// The parameters (`id`, `reboot`, `profile-type`, ...), raw.
    pub params: Params,
}

impl Event {
    /// True when the event type is `name` (event packages compare case-insensitively here,
    /// because phones write `Check-Sync` as often as `check-sync`).
    pub fn is(&self, name: &str) -> bool {
        self.event_type.eq_ignore_ascii_case(name)
    }

    /// A parameter value with quotes removed (`vendor="Yealink"` → `Yealink`), name compared case-insensitively.
    pub fn param(&self, name: &str) -> Option<String> {
        self.params.get_unquoted(name)
    }
}

impl FromStr for Event {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Event, ParseError> {
        let (kind, params) = split_value_params(s);
        if !is_token(kind) {
            return Err(ParseError::header("Event", format!("event type '{kind}' is not a token")));
        }
        let params = Params::parse(params).map_err(|e| ParseError::header("Event", e))?;
        Ok(Event { event_type: kind.to_owned(), params })
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.event_type, self.params)
    }
}

/// The Subscription-State header (RFC 6665 §8.2.3).
///
/// ```
/// use sipprov_sip::headers::SubscriptionState;
/// let s: SubscriptionState = "terminated;reason=timeout".parse().unwrap();
/// assert_eq!(s.state, "terminated");
/// assert_eq!(s.reason().as_deref(), Some("timeout"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionState {
    /// `active`, `pending`, `terminated` or an extension, as written.
    pub state: String,
    /// Parameters (`reason`, `expires`, `retry-after`).
    pub params: Params,
}

impl SubscriptionState {
    /// The `reason` parameter.
    pub fn reason(&self) -> Option<String> {
        self.params.get_unquoted("reason")
    }
    /// The `expires` parameter in seconds.
    pub fn expires(&self) -> Option<u32> {
        self.params.get("expires").flatten().and_then(|v| v.parse().ok())
    }
}

impl FromStr for SubscriptionState {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<SubscriptionState, ParseError> {
        let (state, params) = split_value_params(s);
        if !is_token(state) {
            return Err(ParseError::header("Subscription-State", format!("'{state}' is not a token")));
        }
        let params = Params::parse(params).map_err(|e| ParseError::header("Subscription-State", e))?;
        Ok(SubscriptionState { state: state.to_owned(), params })
    }
}

fn split_value_params(s: &str) -> (&str, &str) {
    let s = s.trim();
    match s.find(';') {
        Some(i) => (s[..i].trim(), &s[i..]),
        None => (s, ""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cseq_limits() {
        assert_eq!("2147483647 NOTIFY".parse::<CSeq>().unwrap().seq, MAX_CSEQ);
        assert!("2147483648 NOTIFY".parse::<CSeq>().is_err());
        assert!("36893488147419103232 REGISTER".parse::<CSeq>().is_err());
        assert!("-1 NOTIFY".parse::<CSeq>().is_err());
        assert!("1".parse::<CSeq>().is_err());
    }

    #[test]
    fn event_quoted_params() {
        let e: Event =
            r#"ua-profile;profile-type="device";vendor="Yealink";model="T46U";effective-by=3600"#.parse().unwrap();
        assert!(e.is("ua-profile"));
        assert_eq!(e.param("VENDOR").as_deref(), Some("Yealink"));
        assert_eq!(e.param("effective-by").as_deref(), Some("3600"));
    }
}
