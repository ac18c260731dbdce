//! The SIP message model ([`Request`], [`Response`], [`Headers`]), its parser ([`parse`]) and
//! serializer, and stream framing for TCP ([`framing`]).
//!
//! Header lines are stored as they arrived (name spelling, spacing, folds) and written back
//! byte for byte; typed views are parsed lazily by the accessors in [`crate::headers`].

mod parse;

pub mod framing;

pub use parse::{parse, parse_with, Limits};
pub(crate) use parse::{parse_keyed, Keys};

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;

use crate::text::{split_top, trim, unfold};

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

/// One header line as written, borrowed from its [`Headers`].
///
/// ```
/// use sipprov_sip::message::Headers;
/// let mut headers = Headers::new();
/// headers.push("o", "check-sync;reboot=false");
/// let h = headers.get("Event").unwrap();
/// assert!(h.is("event"));
/// assert_eq!(h.name(), "o");
/// assert_eq!(h.to_string(), "o: check-sync;reboot=false");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    raw: &'a str,
    name_end: usize,
    value_start: usize,
}

impl<'a> Header<'a> {
    /// The name as written (maybe compact).
    pub fn name(&self) -> &'a str {
        &self.raw[..self.name_end]
    }

    /// True when this header is `name`, comparing long forms case-insensitively.
    pub fn is(&self, name: &str) -> bool {
        canonical_name(self.name()).eq_ignore_ascii_case(canonical_name(name))
    }

    /// The value as written, folds included.
    pub fn raw_value(&self) -> &'a str {
        &self.raw[self.value_start..]
    }

    /// The whole line as written, folds included, without its final CRLF.
    pub fn raw(&self) -> &'a str {
        self.raw
    }

    /// The value with folds replaced by a space and outer whitespace trimmed.
    pub fn value(&self) -> Cow<'a, str> {
        match unfold(self.raw_value()) {
            Cow::Borrowed(s) => Cow::Borrowed(trim(s)),
            Cow::Owned(s) => Cow::Owned(trim(&s).to_owned()),
        }
    }
}

impl fmt::Display for Header<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.raw)
    }
}

/// Where one header line sits in [`Headers::text`].
#[derive(Debug, Clone, Copy)]
struct Line {
    start: usize,
    name_end: usize,
    value_start: usize,
    end: usize,
}

/// The header section of a message, in order.
///
/// All lines live in one string, each found by its offsets: parsing a message copies its
/// header section once, and building one appends to one buffer, instead of allocating a
/// string per line (thousands of NOTIFYs per second go through here). A replaced or removed
/// line leaves its old text behind unreferenced until the message is dropped.
#[derive(Clone, Default)]
pub struct Headers {
    text: String,
    lines: Vec<Line>,
}

impl PartialEq for Headers {
    fn eq(&self, other: &Headers) -> bool {
        self.iter().map(|h| h.raw).eq(other.iter().map(|h| h.raw))
    }
}

impl Eq for Headers {}

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter().map(|h| h.raw)).finish()
    }
}

impl Headers {
    /// An empty header section.
    pub fn new() -> Headers {
        Headers::default()
    }

    /// An empty header section with room for `bytes` of text in `lines` lines.
    pub fn with_capacity(bytes: usize, lines: usize) -> Headers {
        Headers { text: String::with_capacity(bytes), lines: Vec::with_capacity(lines) }
    }

    /// Takes the header section of a received message, `text` being its lines joined by CRLF
    /// (folds included, no final CRLF); fails on a line that is not `name: value`.
    pub(crate) fn parse(text: &str, max_lines: usize) -> Result<Headers, crate::ParseError> {
        Headers::parse_cut(text, max_lines, find_crlf)
    }

    /// [`Headers::parse`] with each CRLF given by `next_crlf(bytes, at)`, which must find what
    /// `find_crlf(bytes, at)` finds; it is asked for them in order, each time from two bytes
    /// after the previous one. A received message's were found while the end of its header
    /// section was looked for ([`Crlfs`]).
    pub(crate) fn parse_cut(
        text: &str,
        max_lines: usize,
        mut next_crlf: impl FnMut(&[u8], usize) -> Option<usize>,
    ) -> Result<Headers, crate::ParseError> {
        let mut headers = Headers::with_capacity(text.len(), text.len() / 24 + 1);
        headers.text.push_str(text);
        // Physical lines are cut at each CRLF, as `text.split("\r\n")` would (an empty text has
        // none); a line starting with a space or tab continues the previous one.
        let bytes = text.as_bytes();
        let mut at = 0;
        while !text.is_empty() {
            let end = next_crlf(bytes, at).unwrap_or(bytes.len());
            if matches!(bytes[at..end].first(), Some(b' ' | b'\t')) {
                let last = headers.lines.last_mut();
                let last = last.ok_or_else(|| crate::ParseError::StartLine("folded line after start line".into()))?;
                last.end = end;
            } else {
                if headers.lines.len() >= max_lines {
                    return Err(crate::ParseError::TooManyHeaders(max_lines));
                }
                headers.lines.push(Line { start: at, name_end: at, value_start: at, end });
            }
            if end == bytes.len() {
                break;
            }
            at = end + 2;
        }
        for line in &mut headers.lines {
            let raw = &text[line.start..line.end];
            let colon = crate::text::find_byte(raw, b':')
                .ok_or_else(|| crate::ParseError::header(raw, "no ':' in header line"))?;
            // `trim_end_matches([' ', '\t'])` by byte: both are ASCII, so the cut is on a char boundary.
            let name_len =
                raw.as_bytes()[..colon].iter().rposition(|b| !matches!(b, b' ' | b'\t')).map_or(0, |i| i + 1);
            let name = &raw[..name_len];
            if !crate::text::is_token(name) {
                return Err(crate::ParseError::header(name, "header name is not a token"));
            }
            line.name_end = line.start + name.len();
            line.value_start = line.start + colon + 1;
        }
        Ok(headers)
    }

    fn view(&self, line: &Line) -> Header<'_> {
        Header {
            raw: &self.text[line.start..line.end],
            name_end: line.name_end - line.start,
            value_start: line.value_start - line.start,
        }
    }

    /// All headers in order.
    pub fn iter(&self) -> impl Iterator<Item = Header<'_>> + '_ {
        self.lines.iter().map(|l| self.view(l))
    }

    /// Number of header lines.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// True when there is no header.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// The first header called `name` (compact forms match their long form).
    pub fn get(&self, name: &str) -> Option<Header<'_>> {
        self.iter().find(|h| h.is(name))
    }

    /// Every header called `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = Header<'a>> + 'a {
        self.iter().filter(move |h| h.is(name))
    }

    /// The unfolded value of the first `name` header.
    pub fn value(&self, name: &str) -> Option<Cow<'_, str>> {
        self.get(name).map(|h| h.value())
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

    /// Writes `name: value` at the end of the text and returns where it is.
    fn append(&mut self, name: &str, value: &str) -> Line {
        let start = self.text.len();
        for part in [name, ": ", value] {
            self.text.push_str(part);
        }
        Line { start, name_end: start + name.len(), value_start: start + name.len() + 1, end: self.text.len() }
    }

    /// Appends a header whose value is written by `format_args!` straight into the header
    /// text, without an intermediate string.
    ///
    /// ```
    /// let mut h = sipprov_sip::message::Headers::new();
    /// h.push_fmt("CSeq", format_args!("{} {}", 7, "NOTIFY"));
    /// assert_eq!(h.value("CSeq").as_deref(), Some("7 NOTIFY"));
    /// ```
    pub fn push_fmt(&mut self, name: &str, value: fmt::Arguments<'_>) {
        use std::fmt::Write;
        let start = self.text.len();
        self.text.push_str(name);
        self.text.push_str(": ");
        // Writing into a String cannot fail.
        let _ = self.text.write_fmt(value);
        let line =
            Line { start, name_end: start + name.len(), value_start: start + name.len() + 1, end: self.text.len() };
        self.lines.push(line);
    }

    /// Appends a header whose value `write` appends to the header text itself, for values
    /// assembled from parts without an intermediate string or the formatting machinery.
    ///
    /// ```
    /// let mut h = sipprov_sip::message::Headers::new();
    /// h.push_with("CSeq", |out| {
    ///     sipprov_sip::text::push_decimal(out, 7);
    ///     out.push_str(" NOTIFY");
    /// });
    /// assert_eq!(h.value("CSeq").as_deref(), Some("7 NOTIFY"));
    /// ```
    pub fn push_with(&mut self, name: &str, write: impl FnOnce(&mut String)) {
        let line = self.append_line(name, write);
        self.lines.push(line);
    }

    /// Appends `name: <what write writes>` to the header text and returns its line, for the
    /// caller to put in its place among the lines.
    fn append_line(&mut self, name: &str, write: impl FnOnce(&mut String)) -> Line {
        let start = self.text.len();
        self.text.push_str(name);
        self.text.push_str(": ");
        write(&mut self.text);
        Line { start, name_end: start + name.len(), value_start: start + name.len() + 1, end: self.text.len() }
    }

    /// Where `part`, a slice of this section's text (a header value borrowed from it, or part
    /// of one), lies in that text; `None` for text held elsewhere.
    pub(crate) fn span_of(&self, part: &str) -> Option<std::ops::Range<usize>> {
        // Addresses compared as numbers: a live string held elsewhere cannot lie inside this one.
        let start = (part.as_ptr() as usize).checked_sub(self.text.as_ptr() as usize)?;
        let end = start.checked_add(part.len())?;
        (end <= self.text.len()).then_some(start..end)
    }

    /// The text at `span` (from [`Headers::span_of`] on this same section), if it is there.
    pub(crate) fn text_at(&self, span: std::ops::Range<usize>) -> Option<&str> {
        self.text.get(span)
    }

    /// Bytes of header text held, for sizing a buffer that will take a copy.
    pub(crate) fn text_len(&self) -> usize {
        self.text.len()
    }

    /// Appends a header.
    pub fn push(&mut self, name: &str, value: &str) {
        let line = self.append(name, value);
        self.lines.push(line);
    }

    /// Inserts a header before all others (used for Via).
    pub fn push_front(&mut self, name: &str, value: &str) {
        let line = self.append(name, value);
        self.lines.insert(0, line);
    }

    /// Appends a copy of a header line, as written (e.g. one of a request's, into its response).
    pub fn push_header(&mut self, h: Header<'_>) {
        let start = self.text.len();
        self.text.push_str(h.raw);
        let line =
            Line { start, name_end: start + h.name_end, value_start: start + h.value_start, end: self.text.len() };
        self.lines.push(line);
    }

    /// Removes every `name` header; returns how many were removed.
    pub fn remove(&mut self, name: &str) -> usize {
        let before = self.lines.len();
        let text = &self.text;
        self.lines.retain(|l| !Headers::line_is(text, l, name));
        before - self.lines.len()
    }

    fn line_is(text: &str, line: &Line, name: &str) -> bool {
        canonical_name(&text[line.start..line.name_end]).eq_ignore_ascii_case(canonical_name(name))
    }

    fn position(&self, name: &str) -> Option<usize> {
        self.lines.iter().position(|l| Headers::line_is(&self.text, l, name))
    }

    /// Replaces every `name` header with a single one, at the place of the first.
    pub fn set(&mut self, name: &str, value: &str) {
        let Some(i) = self.position(name) else { return self.push(name, value) };
        let line = self.append(name, value);
        self.lines[i] = line;
        let text = &self.text;
        let mut index = 0;
        self.lines.retain(|l| {
            let keep = index <= i || !Headers::line_is(text, l, name);
            index += 1;
            keep
        });
    }

    /// [`Headers::replace_first_value`] with a value that `write` appends to the header text
    /// itself: in the usual case (a line holding one value, or none) without an intermediate
    /// string. Each request a client transaction sends has its Via stamped this way.
    pub(crate) fn replace_first_value_with(
        &mut self,
        name: &str,
        write: impl FnOnce(&mut String),
    ) -> Result<(), crate::ParseError> {
        let single = match self.position(name) {
            None => Some(None),
            Some(i) => {
                let raw = self.view(&self.lines[i]).raw_value();
                memchr::memchr3(b',', b'"', b'\n', raw.as_bytes()).is_none().then_some(Some(i))
            }
        };
        let Some(at) = single else {
            let mut value = String::new();
            write(&mut value);
            return self.replace_first_value(name, &value);
        };
        let line = self.append_line(name, write);
        match at {
            Some(i) => self.lines[i] = line,
            None => self.lines.insert(0, line),
        }
        Ok(())
    }

    /// Replaces the topmost value of a list header (e.g. the top Via), keeping the other values.
    pub fn replace_first_value(&mut self, name: &str, value: &str) -> Result<(), crate::ParseError> {
        let Some(i) = self.position(name) else {
            self.push_front(name, value);
            return Ok(());
        };
        let old = self.view(&self.lines[i]);
        // A line holding a single value (the usual case) is replaced whole. One memchr3 rather
        // than `contains` with a set of chars, which tests each char against each of the set.
        if memchr::memchr3(b',', b'"', b'\n', old.raw_value().as_bytes()).is_none() {
            let line = self.append(name, value);
            self.lines[i] = line;
            return Ok(());
        }
        let written = old.name().to_owned();
        let old = old.value();
        let parts = split_top(&old, b',').map_err(|e| crate::ParseError::header(name, e))?;
        let mut new = value.to_owned();
        for rest in parts.iter().skip(1) {
            new.push_str(", ");
            new.push_str(rest.trim());
        }
        let line = self.append(&written, &new);
        self.lines[i] = line;
        Ok(())
    }

    /// Bytes [`Headers::write_to`] writes.
    fn wire_len(&self) -> usize {
        self.lines.iter().map(|l| l.end - l.start + 2).sum()
    }

    fn write_to(&self, out: &mut Vec<u8>) {
        for l in &self.lines {
            out.extend_from_slice(&self.text.as_bytes()[l.start..l.end]);
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

/// Where the first empty line (`CRLF CRLF`, RFC 3261 §7) at or after `from` starts:
/// `memmem::find(bytes, b"\r\n\r\n")`, by jumping from one CRLF to the next. A received
/// datagram's header section is a dozen short lines, and `memmem::find` built a searcher for
/// each message (about 650 instructions, more than the search). Received messages go through
/// [`Crlfs::find_empty_line`], the same search noting the CRLFs; this one is what the tests
/// hold that to.
#[cfg(test)]
fn find_empty_line(bytes: &[u8], mut from: usize) -> Option<usize> {
    while let Some(at) = find_crlf(bytes, from) {
        if bytes.get(at + 2..at + 4) == Some(b"\r\n") {
            return Some(at);
        }
        // CRLFs cannot overlap: the byte after this one's '\r' is its '\n'.
        from = at + 2;
    }
    None
}

/// The CRLFs [`Crlfs::find_empty_line`] met before the empty line, in order: the start line's
/// end and each header line's. Up to [`Crlfs::ROOM`] are kept; past that, `all` is false and
/// the lines are found again.
pub(crate) struct Crlfs {
    at: [usize; Crlfs::ROOM],
    len: usize,
    all: bool,
}

impl Crlfs {
    /// A response has about a dozen lines.
    const ROOM: usize = 32;

    /// Where the first empty line (`CRLF CRLF`, RFC 3261 §7) starts, by jumping from one CRLF
    /// to the next, as `find_empty_line` finds it, noting each CRLF it passes: where the
    /// header section's lines end is then known without a second search
    /// (`crlfs_noted_are_those_found_again`).
    pub(crate) fn find_empty_line(bytes: &[u8]) -> (Option<usize>, Crlfs) {
        let mut crlfs = Crlfs { at: [0; Crlfs::ROOM], len: 0, all: true };
        let mut from = 0;
        while let Some(at) = find_crlf(bytes, from) {
            if bytes.get(at + 2..at + 4) == Some(b"\r\n") {
                return (Some(at), crlfs);
            }
            match crlfs.at.get_mut(crlfs.len) {
                Some(slot) => {
                    *slot = at;
                    crlfs.len += 1;
                }
                None => crlfs.all = false,
            }
            from = at + 2;
        }
        (None, crlfs)
    }

    /// The first CRLF, where the start line ends: what `find_crlf(head, 0)` finds in the text
    /// before the empty line.
    pub(crate) fn first(&self) -> Option<usize> {
        self.at[..self.len].first().copied()
    }

    /// The CRLFs after the first, counted from `base` (two bytes after the first): those of
    /// the header lines, for [`Headers::parse_cut`]; `None` when not all were kept.
    pub(crate) fn after_first(&self, base: usize) -> Option<impl FnMut(&[u8], usize) -> Option<usize> + '_> {
        let mut rest = self.at.get(1..self.len).unwrap_or_default().iter();
        self.all.then_some(move |_: &[u8], _: usize| rest.next().map(|at| at - base))
    }
}

/// Where the next CRLF at or after `from` starts.
pub(crate) fn find_crlf(bytes: &[u8], mut from: usize) -> Option<usize> {
    while let Some(i) = memchr::memchr(b'\r', &bytes[from..]) {
        let at = from + i;
        if bytes.get(at + 1) == Some(&b'\n') {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::{find_crlf, find_empty_line, Crlfs, Headers};

    /// Every string of up to eight bytes of `\r`, `\n`, a space and a letter, and texts of
    /// more lines than are kept: the CRLFs noted on the way to the empty line are those the
    /// searches find again, and the headers cut at them are the same.
    #[test]
    fn crlfs_noted_are_those_found_again() {
        let mut texts = crate::text::every_string(b"\r\n a", 8);
        for lines in [0, 1, 30, 31, 32, 33, 34, 40] {
            let mut t = String::from("SIP/2.0 200 OK");
            for i in 0..lines {
                t.push_str(&format!("\r\nX-{i}: {i}"));
                if i % 7 == 3 {
                    t.push_str("\r\n folded");
                }
            }
            texts.push(t.clone() + "\r\n\r\n");
            texts.push(t);
        }
        for text in &texts {
            let bytes = text.as_bytes();
            let (end, crlfs) = Crlfs::find_empty_line(bytes);
            assert_eq!(end, find_empty_line(bytes, 0), "{text:?}");
            let Some(end) = end else { continue };
            let head = &text[..end];
            assert_eq!(crlfs.first(), find_crlf(head.as_bytes(), 0), "{text:?}");
            let Some(first) = crlfs.first() else { continue };
            let header_text = &head[first + 2..];
            let again = Headers::parse(header_text, 100).map(|h| format!("{h:?}")).map_err(|e| e.to_string());
            match crlfs.after_first(first + 2) {
                Some(noted) => {
                    let cut = Headers::parse_cut(header_text, 100, noted);
                    assert_eq!(cut.map(|h| format!("{h:?}")).map_err(|e| e.to_string()), again, "{text:?}");
                }
                None => assert!(text.matches("\r\n").count() > Crlfs::ROOM, "{text:?}"),
            };
        }
    }

    /// Every string of up to eight bytes of `\r`, `\n`, a space and a letter: the two searches
    /// find what `memmem::find` and `str::split_once` found.
    #[test]
    fn crlf_searches_find_what_the_general_searches_found() {
        let alphabet = [b'\r', b'\n', b' ', b'a'];
        let mut text = Vec::new();
        for len in 0..=8u32 {
            for mut n in 0..4usize.pow(len) {
                text.clear();
                for _ in 0..len {
                    text.push(alphabet[n % 4]);
                    n /= 4;
                }
                assert_eq!(find_empty_line(&text, 0), memchr::memmem::find(&text, b"\r\n\r\n"), "{text:?}");
                let s = std::str::from_utf8(&text).unwrap();
                let split = find_crlf(&text, 0).map(|at| (&s[..at], &s[at + 2..]));
                assert_eq!(split, s.split_once("\r\n"), "{text:?}");
            }
        }
    }

    #[test]
    fn replacing_the_first_value_in_place_is_replacing_it() {
        let lines: [&[(&str, &str)]; 5] = [
            &[],
            &[("Via", "SIP/2.0/UDP a;branch=z9hG4bK1"), ("To", "<sip:x@y>")],
            &[("To", "<sip:x@y>"), ("v", "SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/UDP b;branch=z9hG4bK2")],
            &[("Via", "SIP/2.0/UDP a;x=\"q\""), ("Via", "SIP/2.0/UDP c")],
            &[("Via", "SIP/2.0/UDP a\r\n ;branch=z9hG4bKf")],
        ];
        for lines in lines {
            let mut by_value = Headers::new();
            for (name, value) in lines {
                by_value.push(name, value);
            }
            let mut in_place = by_value.clone();
            by_value.replace_first_value("Via", "SIP/2.0/UDP new;branch=z9hG4bKn").unwrap();
            in_place.replace_first_value_with("Via", |out| out.push_str("SIP/2.0/UDP new;branch=z9hG4bKn")).unwrap();
            assert_eq!(in_place, by_value, "{lines:?}");
            assert_eq!(in_place.vias().unwrap(), by_value.vias().unwrap());
        }
    }
}
