//! The message parser: start line, header lines (folds, compact names), Content-Length framing
//! of a datagram, limits, and the checks that make a message usable (RFC 3261 §8.1.1, §20).

use bytes::Bytes;
use memchr::memmem;

use super::{Headers, Message, Request, Response};
use crate::error::ParseError;
use crate::text::is_token;
use crate::uri::{is_absolute_uri, SipUri};

/// Size limits applied to every message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted message, header section and body together (default 64 KiB).
    pub max_message: usize,
    /// Most header lines accepted (default 256).
    pub max_headers: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { max_message: 64 * 1024, max_headers: 256 }
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
    if data.len() > limits.max_message {
        return Err(ParseError::TooLarge { size: data.len(), limit: limits.max_message });
    }
    // RFC 3261 §7.5: CRLFs before the start line are ignored (keep-alives on streams).
    let start = data.iter().position(|b| *b != b'\r' && *b != b'\n').unwrap_or(data.len());
    let data = &data[start..];
    let head_end = memmem::find(data, b"\r\n\r\n").ok_or(ParseError::Unterminated)?;
    let head = std::str::from_utf8(&data[..head_end]).map_err(|_| ParseError::NotUtf8)?;
    let (start_line, header_text) = head.split_once("\r\n").unwrap_or((head, ""));
    let headers = Headers::parse(header_text, limits.max_headers)?;
    let mut msg = parse_start_line(start_line, headers)?;
    validate(&msg)?;
    let body = frame_body(msg.headers(), &data[head_end + 4..])?;
    match &mut msg {
        Message::Request(r) => r.body = body,
        Message::Response(r) => r.body = body,
    }
    Ok(msg)
}

fn frame_body(headers: &Headers, rest: &[u8]) -> Result<Bytes, ParseError> {
    match headers.content_length()? {
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
    let scheme = uri.split_once(':').map(|(s, _)| s.to_ascii_lowercase());
    if matches!(scheme.as_deref(), Some("sip" | "sips")) {
        let parsed: SipUri = uri.parse()?;
        // RFC 3261 §19.1.1: headers are not allowed in a Request-URI (RFC 4475 "escruri").
        if !parsed.headers().is_empty() {
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

/// The checks every message must pass before a transaction layer may use it.
fn validate(msg: &Message) -> Result<(), ParseError> {
    let h = msg.headers();
    for name in ["Call-ID", "CSeq", "From", "To"] {
        match h.get_all(name).count() {
            0 => return Err(ParseError::Missing(name)),
            1 => {}
            _ => return Err(ParseError::Duplicate(name)),
        }
    }
    if h.vias()?.is_empty() {
        return Err(ParseError::Missing("Via"));
    }
    h.from()?;
    h.to()?;
    h.contacts()?;
    let cseq = h.cseq()?.ok_or(ParseError::Missing("CSeq"))?;
    if let Message::Request(r) = msg {
        if cseq.method != r.method {
            return Err(ParseError::MethodMismatch { method: r.method.clone(), cseq: cseq.method });
        }
    }
    if h.get_all("Max-Forwards").count() > 1 {
        return Err(ParseError::Duplicate("Max-Forwards"));
    }
    h.max_forwards()?;
    h.expires()?;
    check_date(h)
}

/// RFC 3261 §20.17: a Date is an RFC 1123 date and always in GMT (RFC 4475 "baddate").
fn check_date(h: &Headers) -> Result<(), ParseError> {
    match h.value("Date") {
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
        let tight = Limits { max_message: 64 * 1024, max_headers: 5 };
        assert!(parse_with(base("").as_bytes(), &tight).is_ok());
        assert!(parse_with(base("X: 1\r\n").as_bytes(), &tight).is_err());
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
    fn leading_crlf_and_bare_body() {
        let text = format!("\r\n\r\n{}hello", base(""));
        let Ok(Message::Request(r)) = parse(text.as_bytes()) else { panic!() };
        assert_eq!(&r.body[..], b"hello", "no Content-Length on a datagram: the rest is the body");
    }
}
