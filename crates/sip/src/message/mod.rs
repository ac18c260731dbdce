//! The SIP message model ([`Request`], [`Response`], [`Headers`]), its parser ([`parse`]) and
//! serializer, and stream framing for TCP ([`framing`]).
//!
//! Header lines are stored as they arrived (name spelling, spacing, folds) and written back
//! byte for byte; typed views are parsed lazily by the accessors in [`crate::headers`].

mod parse;

pub mod framing;

pub use parse::{parse, parse_with, Limits};

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;

use crate::text::{split_top, unfold};

/// Full names of the compact header forms (RFC 3261 §7.3.3 and later RFCs).
const COMPACT: &[(u8, &str)] = &[
    (b'a', "Accept-Contact"),
    (b'b', "Referred-By"),
    (b'c', "Content-Type"),
    (b'd', "Request-Disposition"),
    (b'e', "Content-Encoding"),
    (b'f', "From"),
    (b'i', "Call-ID"),
    (b'j', "Reject-Contact"),
    (b'k', "Supported"),
    (b'l', "Content-Length"),
    (b'm', "Contact"),
    (b'o', "Event"),
    (b'r', "Refer-To"),
    (b's', "Subject"),
    (b't', "To"),
    (b'u', "Allow-Events"),
    (b'v', "Via"),
    (b'x', "Session-Expires"),
    (b'y', "Identity"),
];

/// The long form of a header name: `v` → `Via`; other names are returned unchanged.
pub fn canonical_name(name: &str) -> &str {
    match name.as_bytes() {
        [c] => COMPACT.iter().find(|(k, _)| *k == c.to_ascii_lowercase()).map_or(name, |(_, long)| long),
        _ => name,
    }
}

/// One header line, kept as written.
///
/// ```
/// use sipprov_sip::message::Header;
/// let h = Header::new("Event", "check-sync;reboot=false");
/// assert!(h.is("o"));
/// assert_eq!(h.to_string(), "Event: check-sync;reboot=false");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    raw: String,
    name_end: usize,
    value_start: usize,
}

impl Header {
    /// A new header written as `Name: value`.
    pub fn new(name: &str, value: &str) -> Header {
        Header { raw: format!("{name}: {value}"), name_end: name.len(), value_start: name.len() + 1 }
    }

    /// Wraps a raw line (folds included, no final CRLF); `name_end` and `value_start` index into it.
    pub(crate) fn from_raw(raw: String, name_end: usize, value_start: usize) -> Header {
        Header { raw, name_end, value_start }
    }

    /// The name as written (maybe compact).
    pub fn name(&self) -> &str {
        &self.raw[..self.name_end]
    }

    /// True when this header is `name`, comparing long forms case-insensitively.
    pub fn is(&self, name: &str) -> bool {
        canonical_name(self.name()).eq_ignore_ascii_case(canonical_name(name))
    }

    /// The value as written, folds included.
    pub fn raw_value(&self) -> &str {
        &self.raw[self.value_start..]
    }

    /// The value with folds replaced by a space and outer whitespace trimmed.
    pub fn value(&self) -> Cow<'_, str> {
        match unfold(self.raw_value()) {
            Cow::Borrowed(s) => Cow::Borrowed(s.trim()),
            Cow::Owned(s) => Cow::Owned(s.trim().to_owned()),
        }
    }
}

impl fmt::Display for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

/// The header section of a message, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(Vec<Header>);

impl Headers {
    /// An empty header section.
    pub fn new() -> Headers {
        Headers(Vec::new())
    }

    /// All headers in order.
    pub fn iter(&self) -> impl Iterator<Item = &Header> {
        self.0.iter()
    }

    /// Number of header lines.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there is no header.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The first header called `name` (compact forms match their long form).
    pub fn get(&self, name: &str) -> Option<&Header> {
        self.0.iter().find(|h| h.is(name))
    }

    /// Every header called `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Header> + 'a {
        self.0.iter().filter(move |h| h.is(name))
    }

    /// The unfolded value of the first `name` header.
    pub fn value(&self, name: &str) -> Option<Cow<'_, str>> {
        self.get(name).map(Header::value)
    }

    /// All comma-separated values of every `name` header (for list headers such as Via or Contact).
    pub fn list(&self, name: &str) -> Result<Vec<String>, crate::ParseError> {
        let mut out = Vec::new();
        for h in self.get_all(name) {
            let value = h.value();
            let parts = split_top(&value, b',').map_err(|e| crate::ParseError::header(h.name(), e))?;
            out.extend(parts.into_iter().map(|p| p.trim().to_owned()));
        }
        Ok(out)
    }

    /// Appends a header.
    pub fn push(&mut self, name: &str, value: &str) {
        self.0.push(Header::new(name, value));
    }

    /// Inserts a header before all others (used for Via).
    pub fn push_front(&mut self, name: &str, value: &str) {
        self.0.insert(0, Header::new(name, value));
    }

    /// Appends an already built header.
    pub fn push_header(&mut self, h: Header) {
        self.0.push(h);
    }

    /// Removes every `name` header; returns how many were removed.
    pub fn remove(&mut self, name: &str) -> usize {
        let before = self.0.len();
        self.0.retain(|h| !h.is(name));
        before - self.0.len()
    }

    /// Replaces every `name` header with a single one, at the place of the first.
    pub fn set(&mut self, name: &str, value: &str) {
        match self.0.iter().position(|h| h.is(name)) {
            Some(i) => {
                self.0[i] = Header::new(name, value);
                let mut seen = 0;
                self.0.retain(|h| {
                    let keep = !h.is(name) || seen == 0;
                    if h.is(name) {
                        seen += 1;
                    }
                    keep
                });
            }
            None => self.0.push(Header::new(name, value)),
        }
    }

    /// Replaces the topmost value of a list header (e.g. the top Via), keeping the other values.
    pub fn replace_first_value(&mut self, name: &str, value: &str) -> Result<(), crate::ParseError> {
        let Some(i) = self.0.iter().position(|h| h.is(name)) else {
            self.push_front(name, value);
            return Ok(());
        };
        let old = self.0[i].value().into_owned();
        let parts = split_top(&old, b',').map_err(|e| crate::ParseError::header(name, e))?;
        let mut new = value.to_owned();
        for rest in parts.iter().skip(1) {
            new.push_str(", ");
            new.push_str(rest.trim());
        }
        let written = self.0[i].name().to_owned();
        self.0[i] = Header::new(&written, &new);
        Ok(())
    }

    /// Bytes [`Headers::write_to`] writes.
    fn wire_len(&self) -> usize {
        self.0.iter().map(|h| h.raw.len() + 2).sum()
    }

    fn write_to(&self, out: &mut Vec<u8>) {
        for h in &self.0 {
            out.extend_from_slice(h.raw.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }
}

/// A SIP request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The method, e.g. `NOTIFY` (case-sensitive, RFC 3261 §7.1).
    pub method: String,
    /// The Request-URI as written.
    pub uri: String,
    /// The header section.
    pub headers: Headers,
    /// The body (its length is what Content-Length must say).
    pub body: Bytes,
}

/// A SIP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code (100–699).
    pub status: u16,
    /// The reason phrase (may be empty).
    pub reason: String,
    /// The header section.
    pub headers: Headers,
    /// The body.
    pub body: Bytes,
}

/// A request or a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A request.
    Request(Request),
    /// A response.
    Response(Response),
}

impl Message {
    /// The header section.
    pub fn headers(&self) -> &Headers {
        match self {
            Message::Request(r) => &r.headers,
            Message::Response(r) => &r.headers,
        }
    }

    /// Serializes the message.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Message::Request(r) => r.to_bytes(),
            Message::Response(r) => r.to_bytes(),
        }
    }
}

impl Request {
    /// A request with no headers and an empty body.
    pub fn new(method: &str, uri: &str) -> Request {
        Request { method: method.to_owned(), uri: uri.to_owned(), headers: Headers::new(), body: Bytes::new() }
    }

    /// Serializes the request; headers are written exactly as stored.
    ///
    /// ```
    /// let mut r = sipprov_sip::Request::new("OPTIONS", "sip:a@b");
    /// r.headers.push("Content-Length", "0");
    /// assert_eq!(r.to_bytes(), b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 0\r\n\r\n");
    /// ```
    pub fn to_bytes(&self) -> Vec<u8> {
        // Sized exactly, so that building a message never reallocates.
        let line = self.method.len() + self.uri.len() + 12;
        let mut out = Vec::with_capacity(line + self.headers.wire_len() + 2 + self.body.len());
        for part in [self.method.as_bytes(), b" ", self.uri.as_bytes(), b" SIP/2.0\r\n"] {
            out.extend_from_slice(part);
        }
        self.headers.write_to(&mut out);
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
        out
    }
}

impl Response {
    /// A response with no headers and an empty body.
    pub fn new(status: u16, reason: &str) -> Response {
        Response { status, reason: reason.to_owned(), headers: Headers::new(), body: Bytes::new() }
    }

    /// Serializes the response; headers are written exactly as stored.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + self.body.len());
        out.extend_from_slice(format!("SIP/2.0 {} {}\r\n", self.status, self.reason).as_bytes());
        self.headers.write_to(&mut out);
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
        out
    }

    /// True for 1xx.
    pub fn is_provisional(&self) -> bool {
        self.status < 200
    }
}

/// Standard reason phrases for the status codes sipprov sends or reports.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Trying",
        180 => "Ringing",
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        489 => "Bad Event",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "Version Not Supported",
        _ => "",
    }
}
