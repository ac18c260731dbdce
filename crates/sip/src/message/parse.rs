//! The message parser: start line, header lines (folds, compact names), Content-Length framing
//! of a datagram, limits, and the checks that make a message usable (RFC 3261 §8.1.1, §20).

use std::borrow::Cow;
use std::ops::Range;

use bytes::Bytes;

use super::{canonical_name, Crlfs, Header, Headers, Message, Request, Response};
use crate::error::ParseError;
use crate::headers::{contact_list, content_length_of, expires_of, max_forwards_of, parse_cseq, NameAddrRef, ViaRef};
use crate::text::is_token;
use crate::uri::{is_absolute_uri, SipUriRef};

/// Size limits applied to every message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted message, header section and body together (default 64 KiB).
    pub max_message: usize,
    /// Most header lines accepted (default 256).
    pub max_headers: usize,
    /// Most bytes of Via header values, all of them together (default 4 KiB). A response
    /// copies every Via of its request (RFC 3261 §8.2.6), so this bounds what a request can
    /// make us echo and keep for retransmissions; a chain of proxies needs a few hundred bytes.
    pub max_via: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { max_message: 64 * 1024, max_headers: 256, max_via: 4 * 1024 }
    }
}

/// Parses one message from a datagram with the default [`Limits`].
///
/// ```
/// use sipprov_sip::message::{parse, Message};
/// let raw = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\n\
/// To: <sip:c@d>;tag=2\r\nCall-ID: x\r\nCSeq: 1 NOTIFY\r\nContent-Length: 0\r\n\r\n";
/// let Ok(Message::Response(r)) = parse(raw) else { panic!() };
/// assert_eq!(r.status, 200);
/// assert_eq!(r.headers.cseq().unwrap().unwrap().method, "NOTIFY");
/// ```
pub fn parse(data: &[u8]) -> Result<Message, ParseError> {
    parse_with(data, &Limits::default())
}

/// Parses one message with explicit limits. A missing Content-Length means "the rest of the datagram".
pub fn parse_with(data: &[u8], limits: &Limits) -> Result<Message, ParseError> {
    parse_keyed(data, limits).map(|(msg, _)| msg)
}

/// Where the two values that find a response's transaction (RFC 3261 §17.1.3: the top Via's
/// branch and the CSeq method) lie in its header text, as [`parse_keyed`] met them while checking
/// the message; `None` for one it could not point at (a folded header, or no branch), which
/// [`Headers::checked_top_via_branch`] and [`Headers::cseq_parts`] then read again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Keys {
    /// The top Via's branch, in the header text.
    pub(crate) branch: Option<Range<usize>>,
    /// The CSeq method, in the header text.
    pub(crate) method: Option<Range<usize>>,
}

/// [`parse_with`], and where the transaction keys are ([`Keys`]): the receive path would
/// otherwise parse the top Via and the CSeq a second time to match each response.
pub(crate) fn parse_keyed(data: &[u8], limits: &Limits) -> Result<(Message, Keys), ParseError> {
    if data.len() > limits.max_message {
        return Err(ParseError::TooLarge { size: data.len(), limit: limits.max_message });
    }
    // RFC 3261 §7.5: CRLFs before the start line are ignored (keep-alives on streams).
    let start = data.iter().position(|b| *b != b'\r' && *b != b'\n').unwrap_or(data.len());
    let data = &data[start..];
    // The CRLFs met on the way to the empty line are where the start line and the header lines
    // end: noted, they are not looked for a second time.
    let (head_end, crlfs) = Crlfs::find_empty_line(data);
    let head_end = head_end.ok_or(ParseError::Unterminated)?;
    let head = std::str::from_utf8(&data[..head_end]).map_err(|_| ParseError::NotUtf8)?;
    // `head.split_once("\r\n")` without building a string searcher for it.
    let (start_line, header_text) = match crlfs.first() {
        Some(at) => (&head[..at], &head[at + 2..]),
        None => (head, ""),
    };
    let base = start_line.len() + 2;
    let headers = match crlfs.after_first(base) {
        Some(noted) => Headers::parse_cut(header_text, limits.max_headers, noted)?,
        None => Headers::parse(header_text, limits.max_headers)?,
    };
    let mut msg = parse_start_line(start_line, headers)?;
    let (content_length, keys) = validate(&msg, limits)?;
    let body = frame_body(content_length, &data[head_end + 4..])?;
    match &mut msg {
        Message::Request(r) => r.body = body,
        Message::Response(r) => r.body = body,
    }
    Ok((msg, keys))
}

fn frame_body(content_length: Option<usize>, rest: &[u8]) -> Result<Bytes, ParseError> {
    match content_length {
        None => Ok(Bytes::copy_from_slice(rest)),
        Some(declared) if declared > rest.len() => Err(ParseError::BodyTooShort { declared, available: rest.len() }),
        // Bytes beyond Content-Length in a datagram are discarded (RFC 3261 §18.3).
        Some(declared) => Ok(Bytes::copy_from_slice(&rest[..declared])),
    }
}

fn parse_start_line(line: &str, headers: Headers) -> Result<Message, ParseError> {
    let body = Bytes::new();
    if line.starts_with("SIP/") || line.starts_with("sip/") {
        return parse_status_line(line, headers);
    }
    let parts: Vec<&str> = line.split(' ').collect();
    let [method, uri, version] = parts[..] else {
        return Err(ParseError::StartLine(format!(
            "request line needs exactly 3 fields separated by one SP: '{line}'"
        )));
    };
    if !is_token(method) {
        return Err(ParseError::StartLine(format!("method '{method}' is not a token")));
    }
    check_request_uri(uri)?;
    check_version(version)?;
    Ok(Message::Request(Request { method: method.to_owned(), uri: uri.to_owned(), headers, body }))
}

fn parse_status_line(line: &str, headers: Headers) -> Result<Message, ParseError> {
    let body = Bytes::new();
    let (version, rest) = line.split_once(' ').unwrap_or((line, ""));
    check_version(version)?;
    let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
    let status = match code.as_bytes() {
        [a, b, c] if a.is_ascii_digit() && b.is_ascii_digit() && c.is_ascii_digit() => code.parse::<u16>().ok(),
        _ => None,
    };
    let status = status
        .filter(|s| (100..700).contains(s))
        .ok_or_else(|| ParseError::StartLine(format!("status code '{code}' is not 100-699")))?;
    Ok(Message::Response(Response { status, reason: reason.to_owned(), headers, body }))
}

fn check_version(v: &str) -> Result<(), ParseError> {
    if v.eq_ignore_ascii_case("SIP/2.0") {
        Ok(())
    } else {
        Err(ParseError::Version(v.to_owned()))
    }
}

fn check_request_uri(uri: &str) -> Result<(), ParseError> {
    let scheme = uri.split_once(':').map(|(s, _)| s);
    if scheme.is_some_and(|s| s.eq_ignore_ascii_case("sip") || s.eq_ignore_ascii_case("sips")) {
        // RFC 3261 §19.1.1: headers are not allowed in a Request-URI (RFC 4475 "escruri").
        if SipUriRef::parse(uri)?.has_headers() {
            return Err(ParseError::BadUri(format!("Request-URI carries URI headers: '{uri}'")));
        }
        return Ok(());
    }
    if is_absolute_uri(uri) {
        Ok(())
    } else {
        Err(ParseError::BadUri(format!("Request-URI is not a URI: '{uri}'")))
    }
}

/// The checks every message must pass before a transaction layer may use it; returns the
/// Content-Length, if any, checked last as [`Headers::content_length`] does, and the [`Keys`].
///
/// They parse with the borrowing parsers, so a message whose headers are not folded is checked
/// without allocating, and the header section is walked once ([`Gathered`]). Errors are
/// reported in a fixed order, the order of the checks below.
fn validate(msg: &Message, limits: &Limits) -> Result<(Option<usize>, Keys), ParseError> {
    let headers = msg.headers();
    let g = Gathered::from(headers);
    g.call_id.only("Call-ID")?;
    let cseq = g.cseq.only("CSeq")?;
    let from = g.from.only("From")?;
    let to = g.to.only("To")?;
    if let Some(e) = g.via_error {
        return Err(e);
    }
    if g.vias == 0 {
        return Err(ParseError::Missing("Via"));
    }
    if g.via_bytes > limits.max_via {
        return Err(ParseError::HeaderTooLarge { name: "Via", size: g.via_bytes, limit: limits.max_via });
    }
    NameAddrRef::parse(&from.value())?;
    NameAddrRef::parse(&to.value())?;
    if let Some(e) = g.contact_error {
        return Err(e);
    }
    let cseq = cseq.value();
    let (_, method) = parse_cseq(&cseq)?;
    let keys = Keys {
        branch: g.top_branch,
        method: matches!(cseq, Cow::Borrowed(_)).then(|| headers.span_of(method)).flatten(),
    };
    if let Message::Request(r) = msg {
        if method != r.method {
            return Err(ParseError::MethodMismatch { method: r.method.clone(), cseq: method.to_owned() });
        }
    }
    if g.max_forwards.count > 1 {
        return Err(ParseError::Duplicate("Max-Forwards"));
    }
    max_forwards_of(g.max_forwards.first)?;
    expires_of(g.expires.first)?;
    check_date(g.date.first)?;
    Ok((content_length_of(g.content_length.count, g.content_length.first)?, keys))
}

/// How many headers of one name there are, and the first of them.
#[derive(Default, Clone, Copy)]
struct Seen<'a> {
    count: usize,
    first: Option<Header<'a>>,
}

impl<'a> Seen<'a> {
    fn add(&mut self, h: Header<'a>) {
        self.count += 1;
        self.first.get_or_insert(h);
    }

    /// The header of a name that must appear exactly once.
    fn only(&self, name: &'static str) -> Result<Header<'a>, ParseError> {
        match (self.count, self.first) {
            (1, Some(h)) => Ok(h),
            (0, _) | (_, None) => Err(ParseError::Missing(name)),
            _ => Err(ParseError::Duplicate(name)),
        }
    }
}

/// What [`validate`] needs from the header section, gathered in one pass instead of one search
/// per name. Via and Contact values are parsed as they are met; their first error is kept and
/// reported in its turn.
#[derive(Default)]
struct Gathered<'a> {
    call_id: Seen<'a>,
    cseq: Seen<'a>,
    from: Seen<'a>,
    to: Seen<'a>,
    max_forwards: Seen<'a>,
    expires: Seen<'a>,
    date: Seen<'a>,
    content_length: Seen<'a>,
    vias: usize,
    via_bytes: usize,
    via_error: Option<ParseError>,
    /// The branch of the first Via value of the first Via header, in the header text.
    top_branch: Option<Range<usize>>,
    contact_error: Option<ParseError>,
}

impl<'a> From<&'a Headers> for Gathered<'a> {
    fn from(headers: &'a Headers) -> Gathered<'a> {
        let mut g = Gathered::default();
        for h in headers.iter() {
            // Header::is compares long forms case-insensitively; this is that, once per line.
            let name = canonical_name(h.name());
            let is = |long: &str| name.eq_ignore_ascii_case(long);
            if is("Via") {
                g.vias += 1;
                g.via_bytes = g.via_bytes.saturating_add(h.raw_value().trim().len());
                if g.via_error.is_none() {
                    let value = h.value();
                    let mut vias = ViaRef::parse_list(&value);
                    if g.vias == 1 {
                        // The top Via: its branch is the transaction's key (RFC 3261 §17.1.3).
                        match vias.next() {
                            Some(Ok(top)) => {
                                let borrowed = matches!(value, Cow::Borrowed(_));
                                g.top_branch = top.branch().filter(|_| borrowed).and_then(|b| headers.span_of(b));
                            }
                            Some(Err(e)) => g.via_error = Some(e),
                            None => {}
                        }
                    }
                    if g.via_error.is_none() {
                        g.via_error = vias.find_map(Result::err);
                    }
                }
            } else if is("From") {
                g.from.add(h);
            } else if is("To") {
                g.to.add(h);
            } else if is("Call-ID") {
                g.call_id.add(h);
            } else if is("CSeq") {
                g.cseq.add(h);
            } else if is("Contact") {
                if g.contact_error.is_none() {
                    g.contact_error = contact_list(&h.value()).find_map(Result::err);
                }
            } else if is("Max-Forwards") {
                g.max_forwards.add(h);
            } else if is("Expires") {
                g.expires.add(h);
            } else if is("Date") {
                g.date.add(h);
            } else if is("Content-Length") {
                g.content_length.add(h);
            }
        }
        g
    }
}

/// RFC 3261 §20.17: a Date is an RFC 1123 date and always in GMT (RFC 4475 "baddate").
fn check_date(date: Option<Header<'_>>) -> Result<(), ParseError> {
    match date.map(|h| h.value()) {
        Some(d) if !d.ends_with(" GMT") => Err(ParseError::header("Date", format!("'{d}' is not in GMT"))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(extra: &str) -> String {
        format!(
            "OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:c@d>;tag=1\r\nTo: <sip:a@b>\r\n\
             Call-ID: x\r\nCSeq: 1 OPTIONS\r\n{extra}\r\n"
        )
    }

    #[test]
    fn limits_are_enforced() {
        let many: String = (0..300).map(|i| format!("X-{i}: v\r\n")).collect();
        assert_eq!(parse(base(&many).as_bytes()), Err(ParseError::TooManyHeaders(256)));
        let big = format!("X-Big: {}\r\n", "a".repeat(70_000));
        assert!(matches!(parse(base(&big).as_bytes()), Err(ParseError::TooLarge { .. })));
        let tight = Limits { max_headers: 5, ..Limits::default() };
        assert!(parse_with(base("").as_bytes(), &tight).is_ok());
        assert!(parse_with(base("X: 1\r\n").as_bytes(), &tight).is_err());
    }

    #[test]
    fn oversized_via_headers_are_refused_whether_one_or_many() {
        let long_via = format!("Via: SIP/2.0/UDP h;branch=z9hG4bK2;x={}\r\n", "a".repeat(5000));
        let err = parse(base(&long_via).as_bytes()).unwrap_err();
        assert!(matches!(err, ParseError::HeaderTooLarge { name: "Via", limit: 4096, .. }), "{err}");
        let many: String =
            (0..40).map(|i| format!("Via: SIP/2.0/UDP proxy{i}.example.com;branch=z9hG4bK{i:0>80}\r\n")).collect();
        assert!(matches!(parse(base(&many).as_bytes()), Err(ParseError::HeaderTooLarge { .. })));
        let few: String =
            (0..8).map(|i| format!("Via: SIP/2.0/UDP proxy{i}.example.com;branch=z9hG4bK{i:0>80}\r\n")).collect();
        assert!(parse(base(&few).as_bytes()).is_ok(), "a chain of proxies fits");
    }

    #[test]
    fn refusals_say_why() {
        let cases = [
            (base("").replace("\r\n\r\n", "\r\n"), "not terminated"),
            (base("Bad Name: x\r\n"), "not a token"),
            (base("NoColon\r\n"), "no ':'"),
            (base("Max-Forwards: 256\r\n"), "Max-Forwards"),
            (format!(" {}", base("")), "exactly 3 fields"),
            (base("").replace("Via: SIP/2.0/UDP h;branch=z9hG4bK1\r\n", ""), "Via"),
        ];
        for (text, why) in cases {
            let err = parse(text.as_bytes()).unwrap_err().to_string();
            assert!(err.contains(why), "'{err}' should mention '{why}'");
        }
        assert_eq!(parse(b"OPTIONS sip:a@b SIP/2.0\r\nX: \xff\r\n\r\n"), Err(ParseError::NotUtf8));
    }

    #[test]
    fn keys_point_at_what_the_accessors_read() {
        let response = |via: &str, cseq: &str| {
            format!("SIP/2.0 200 OK\r\n{via}From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: x\r\n{cseq}\r\n")
        };
        let cases = [
            ("Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1;rport\r\n", "CSeq: 1 NOTIFY\r\n", true, true),
            (
                "v: SIP/2.0/UDP h;BRANCH=z9hG4bKa, SIP/2.0/UDP b;branch=z9hG4bKb\r\nVia: SIP/2.0/UDP c;branch=x\r\n",
                "CSeq:  7  OPTIONS \r\n",
                true,
                true,
            ),
            (
                "Via: SIP/2.0/UDP 10.0.0.1\r\nVia: SIP/2.0/UDP 10.0.0.2;branch=z9hG4bK2\r\n",
                "CSeq: 1 NOTIFY\r\n",
                false,
                true,
            ),
            ("Via: SIP/2.0/UDP 10.0.0.1\r\n ;branch=z9hG4bKfold\r\n", "CSeq: 1\r\n NOTIFY\r\n", false, false),
        ];
        for (via, cseq, has_branch, has_method) in cases {
            let text = response(via, cseq);
            let (Message::Response(r), keys) = parse_keyed(text.as_bytes(), &Limits::default()).unwrap() else {
                panic!("{text}")
            };
            let branch = keys.branch.clone().and_then(|span| r.headers.text_at(span));
            let method = keys.method.clone().and_then(|span| r.headers.text_at(span));
            assert_eq!((branch.is_some(), method.is_some()), (has_branch, has_method), "{text}");
            if let Some(branch) = branch {
                assert_eq!(Some(branch), r.headers.checked_top_via_branch().as_deref(), "{text}");
            }
            if let Some(method) = method {
                assert_eq!(Some(method), r.headers.cseq_parts().unwrap().map(|(_, m)| m).as_deref(), "{text}");
            }
        }
        let bad_top = response("Via: SIP/2.0/UDP 10.0.0.1;branch=\r\n", "CSeq: 1 NOTIFY\r\n");
        assert_eq!(parse_keyed(bad_top.as_bytes(), &Limits::default()).map(drop), parse(bad_top.as_bytes()).map(drop));
        assert!(parse(bad_top.as_bytes()).is_err());
    }

    #[test]
    fn leading_crlf_and_bare_body() {
        let text = format!("\r\n\r\n{}hello", base(""));
        let Ok(Message::Request(r)) = parse(text.as_bytes()) else { panic!() };
        assert_eq!(&r.body[..], b"hello", "no Content-Length on a datagram: the rest is the body");
    }
}
