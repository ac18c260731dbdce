//! Reading a Plug-and-Play SUBSCRIBE: the Event parameters, the dialog identifiers and the MAC,
//! wherever the vendor puts it (Request-URI, From, To or Contact user part, or the User-Agent).
//!
//! ```
//! use sipprov_server::pnp::subscribe::mac_in_user;
//! for user in ["MAC%3A001565AABBCC", "MAC%3a001565aabbcc", "MAC:001565AABBCC", "MAC=001565aabbcc", "mac001565AABBCC"] {
//!     assert_eq!(mac_in_user(user).map(|m| m.to_string()).as_deref(), Some("001565aabbcc"), "{user}");
//! }
//! assert!(mac_in_user("00000001").is_none() && mac_in_user("MAC%3A000000000000").is_none());
//! ```

use sipprov_model::Mac;
use sipprov_sip::headers::{Event, NameAddr};
use sipprov_sip::{Request, SipUri};
use sipprov_vendors::{registry, UserAgentInfo};

/// What a `ua-profile` SUBSCRIBE says, once checked.
#[derive(Debug, Clone)]
pub struct PnpSubscribe {
    /// Call-ID of the subscription dialog.
    pub call_id: String,
    /// The phone's From (with its tag): the To of our NOTIFY.
    pub from: NameAddr,
    /// The SUBSCRIBE's To, without a tag: the From of our NOTIFY (with our tag).
    pub to: NameAddr,
    /// The NOTIFY Request-URI: the phone's Contact, the dialog's remote target (RFC 3261 §12.1.1).
    pub contact: String,
    /// The Event header as received, echoed in the NOTIFY.
    pub event: String,
    /// `profile-type` (`device`, `application`, ...).
    pub profile_type: Option<String>,
    /// The vendor id: the Event `vendor` parameter or the User-Agent's vendor, lower case.
    pub vendor: Option<String>,
    /// The model: Event `model` or the User-Agent's.
    pub model: Option<String>,
    /// The firmware: Event `version` or the User-Agent's.
    pub firmware: Option<String>,
    /// The device MAC, if anything carried one.
    pub mac: Option<Mac>,
    /// The User-Agent header.
    pub user_agent: Option<String>,
}

/// Why a SUBSCRIBE is not a usable PnP request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotPnp {
    /// The Event header is missing or another package: not ours to answer.
    #[error("event is {0:?}, not ua-profile")]
    OtherEvent(Option<String>),
    /// A header the dialog needs is missing or does not parse.
    #[error("malformed SUBSCRIBE: {0}")]
    Malformed(String),
}

/// True when a SUBSCRIBE's Event header names the `ua-profile` package (any case).
pub fn is_ua_profile(req: &Request) -> bool {
    matches!(req.headers.event(), Ok(Some(e)) if e.is("ua-profile"))
}

/// Parses a SUBSCRIBE; `contact_fallback` (`sip:<source ip>:<port>`) is used when there is no Contact.
pub fn parse(req: &Request, contact_fallback: &str) -> Result<PnpSubscribe, NotPnp> {
    let bad = |what: &str, e: &dyn std::fmt::Display| NotPnp::Malformed(format!("{what}: {e}"));
    let event: Event = match req.headers.event() {
        Ok(Some(e)) if e.is("ua-profile") => e,
        Ok(other) => return Err(NotPnp::OtherEvent(other.map(|e| e.event_type))),
        Err(e) => return Err(bad("Event", &e)),
    };
    let call_id = req.headers.call_id().map_err(|e| bad("Call-ID", &e))?;
    let from = req.headers.from().map_err(|e| bad("From", &e))?;
    if from.tag().is_none() {
        return Err(NotPnp::Malformed("From has no tag".into()));
    }
    let mut to = req.headers.to().map_err(|e| bad("To", &e))?;
    to.params.0.retain(|(name, _)| !name.eq_ignore_ascii_case("tag"));
    let contact = match req.headers.contacts() {
        Ok(list) => list.into_iter().next().map(|c| c.uri).filter(|u| u.parse::<SipUri>().is_ok()),
        Err(_) => None,
    };
    let user_agent = req.headers.user_agent();
    let ua = user_agent.as_deref().and_then(|u| registry().identify_user_agent(u));
    let mac = find_mac(req, &from, &to, ua.as_ref(), user_agent.as_deref());
    Ok(PnpSubscribe {
        call_id,
        contact: contact.unwrap_or_else(|| contact_fallback.to_string()),
        profile_type: event.param("profile-type"),
        vendor: vendor(event.param("vendor"), ua.as_ref()),
        model: meaningful(event.param("model"))
            .or_else(|| ua.as_ref().and_then(|u| u.model.as_deref().map(String::from))),
        firmware: meaningful(event.param("version")).or_else(|| ua.as_ref().and_then(|u| u.firmware.clone())),
        event: event.to_string(),
        from,
        to,
        mac,
        user_agent,
    })
}

/// Drops placeholder values: old Snom firmware sends `vendor="OEM";model="OEM"` (Snom PnP captures).
fn meaningful(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty() && !s.eq_ignore_ascii_case("oem"))
}

/// The vendor id, lower case: the Event parameter when it names a real vendor, else the
/// User-Agent's (AudioCodes 4xxHD phones send no vendor parameter).
fn vendor(param: Option<String>, ua: Option<&UserAgentInfo>) -> Option<String> {
    let param = meaningful(param).map(|v| v.to_ascii_lowercase());
    let known = param.as_deref().and_then(|v| registry().get(v)).map(|v| v.id().to_string());
    known.or_else(|| ua.map(|u| u.vendor.to_string())).or(param)
}

/// The MAC from, in order: the Request-URI user, the From, To and Contact users, the User-Agent.
fn find_mac(
    req: &Request,
    from: &NameAddr,
    to: &NameAddr,
    ua: Option<&UserAgentInfo>,
    raw_ua: Option<&str>,
) -> Option<Mac> {
    let uri_user =
        |uri: &str| uri.parse::<SipUri>().ok().and_then(|u| u.user_decoded().or(u.user().map(str::to_string)));
    let contact = req.headers.contacts().ok().and_then(|c| c.into_iter().next()).map(|c| c.uri);
    let users = [Some(req.uri.clone()), Some(from.uri.clone()), Some(to.uri.clone()), contact];
    users
        .into_iter()
        .flatten()
        .find_map(|u| uri_user(&u).as_deref().and_then(mac_in_user))
        .or_else(|| ua.and_then(|u| u.mac))
        .or_else(|| raw_ua.and_then(mac_token))
}

/// A MAC in a URI user part: `MAC` (any case), then `:`, `=`, `%3A` or nothing, then the MAC in
/// any spelling. Placeholders are refused.
pub fn mac_in_user(user: &str) -> Option<Mac> {
    let u = user.trim();
    let rest = u.get(3..).filter(|_| u.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("mac")))?;
    let rest = match rest.get(..3) {
        Some(p) if p.eq_ignore_ascii_case("%3a") => &rest[3..],
        _ => rest.strip_prefix([':', '=']).unwrap_or(rest),
    };
    rest.parse::<Mac>().ok().filter(|m| !m.is_placeholder())
}

/// A lone 12-hex-digit token in a User-Agent no vendor parser knows (e.g. `Htek UC912 2.0.4 001fc1aabbcc`).
fn mac_token(ua: &str) -> Option<Mac> {
    ua.split(|c: char| !c.is_ascii_alphanumeric()).find_map(|t| Mac::from_plain_hex(t).filter(|m| !m.is_placeholder()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sipprov_sip::Message;

    fn request(text: &str) -> Request {
        let text = text.replace('\n', "\r\n");
        match sipprov_sip::message::parse(text.as_bytes()) {
            Ok(Message::Request(r)) => r,
            other => panic!("test message does not parse: {other:?}"),
        }
    }

    #[test]
    fn audiocodes_manual_subscribe_without_vendor_or_mac() {
        let req = request(
            "SUBSCRIBE sip:224.0.1.75:5060 SIP/2.0\nFrom: <sip:00000001@10.13.2.37:5060>;tag=87a5a8-25020d0a\n\
             To: <sip:224.0.1.75:5060>\nCall-ID: 8884c8-25020d0a\nCSeq: 1 SUBSCRIBE\n\
             Via: SIP/2.0/UDP 10.13.2.37:5060;rport;branch=z9hG4bK-386d4398\nExpires: 0\n\
             Event: ua-profile;profile-type=\"application\";model=\"440HD\";version=\"2.2.2\"\n\
             Accept: application/url\nContact: <sip:00000001@10.13.2.37:5060>\nUser-Agent: AUDC-IPPhone/2.2.2\n\
             Content-Length: 0\n\n",
        );
        let s = parse(&req, "sip:10.13.2.37:5060").unwrap();
        assert_eq!(s.vendor.as_deref(), Some("audiocodes"));
        assert_eq!((s.model.as_deref(), s.firmware.as_deref()), (Some("440HD"), Some("2.2.2")));
        assert_eq!(s.profile_type.as_deref(), Some("application"));
        assert_eq!(s.mac, None);
        assert_eq!(s.contact, "sip:00000001@10.13.2.37:5060");
        assert_eq!(s.to.to_string(), "<sip:224.0.1.75:5060>");
    }

    #[test]
    fn mac_from_from_user_and_user_agent_and_quirky_event() {
        let req = request(
            "SUBSCRIBE sip:224.0.1.75 SIP/2.0\nf: <sip:MAC=00304fa99948@224.0.1.75>;tag=1\nt: <sip:x@224.0.1.75>\n\
             i: c1\nCSeq: 1 SUBSCRIBE\nv: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bK1\n\
             Event:UA-Profile;Profile-Type=device;VENDOR=PLANET\nContent-Length: 0\n\n",
        );
        let s = parse(&req, "sip:10.0.0.9:5060").unwrap();
        assert_eq!(s.mac.unwrap().to_string(), "00304fa99948");
        assert_eq!(s.vendor.as_deref(), Some("planet"));
        assert_eq!(s.contact, "sip:10.0.0.9:5060");
        let ua = "AUDC-IPPhone/2.2.8.61 (440HDG-Rev0; 00908F602AAC)";
        let req = request(&format!(
            "SUBSCRIBE sip:224.0.1.75:5060 SIP/2.0\nFrom: <sip:1@h>;tag=a\nTo: <sip:224.0.1.75:5060>\nCall-ID: c\n\
             CSeq: 1 SUBSCRIBE\nVia: SIP/2.0/UDP 10.0.0.9;branch=z9hG4bK2\nEvent: ua-profile\nUser-Agent: {ua}\n\
             Content-Length: 0\n\n"
        ));
        assert_eq!(parse(&req, "sip:x").unwrap().mac.unwrap().to_string(), "00908f602aac");
    }

    #[test]
    fn refusals() {
        let req = request(
            "SUBSCRIBE sip:a@b SIP/2.0\nFrom: <sip:a@b>;tag=1\nTo: <sip:a@b>\nCall-ID: c\nCSeq: 1 SUBSCRIBE\n\
             Via: SIP/2.0/UDP 10.0.0.9;branch=z9hG4bK3\nEvent: presence\nContent-Length: 0\n\n",
        );
        assert_eq!(parse(&req, "sip:x").unwrap_err(), NotPnp::OtherEvent(Some("presence".into())));
        let req = request(
            "SUBSCRIBE sip:a@b SIP/2.0\nFrom: <sip:a@b>\nTo: <sip:a@b>\nCall-ID: c\nCSeq: 1 SUBSCRIBE\n\
             Via: SIP/2.0/UDP 10.0.0.9;branch=z9hG4bK3\nEvent: ua-profile\nContent-Length: 0\n\n",
        );
        assert!(matches!(parse(&req, "sip:x"), Err(NotPnp::Malformed(_))));
        assert_eq!(mac_token("Htek UC912 2.0.4 001fc1aabbcc").unwrap().to_string(), "001fc1aabbcc");
        assert!(mac_token("Foo 1.2 ffffffffffff").is_none() && mac_token("Foo 00156").is_none());
    }
}
