//! Framing of SIP messages on a byte stream (TCP and TLS): RFC 3261 §18.3.
//!
//! The header section ends at the first empty line; Content-Length, mandatory on streams, gives
//! the body size. CRLF keep-alives between messages (RFC 5626 §3.5.1) are skipped.

use bytes::{Buf, Bytes, BytesMut};
use memchr::memmem;

use super::parse::Limits;
use crate::error::ParseError;
use crate::headers::parse_number;

/// Accumulates stream bytes and cuts them into whole messages.
///
/// ```
/// use sipprov_sip::message::framing::StreamFramer;
/// let mut f = StreamFramer::default();
/// f.extend(b"\r\n\r\nOPTIONS sip:a SIP/2.0\r\nContent-Length: 2\r\n\r\nhi");
/// assert!(f.next_message().unwrap().unwrap().ends_with(b"hi"));
/// assert!(f.next_message().unwrap().is_none());
/// ```
#[derive(Debug, Default)]
pub struct StreamFramer {
    buf: BytesMut,
    limits: Limits,
}

impl StreamFramer {
    /// A framer with explicit limits.
    pub fn with_limits(limits: Limits) -> StreamFramer {
        StreamFramer { buf: BytesMut::new(), limits }
    }

    /// Appends received bytes.
    pub fn extend(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete message, `Ok(None)` when more bytes are needed. An error means the
    /// stream cannot be re-synchronised and the connection should be closed.
    pub fn next_message(&mut self) -> Result<Option<Bytes>, ParseError> {
        let skip = self.buf.iter().position(|b| *b != b'\r' && *b != b'\n').unwrap_or(self.buf.len());
        self.buf.advance(skip);
        let Some(head_end) = memmem::find(&self.buf, b"\r\n\r\n") else {
            return self.check_size(self.buf.len()).map(|_| None);
        };
        let body_len = content_length(&self.buf[..head_end])?;
        let total = head_end + 4 + body_len;
        self.check_size(total)?;
        if self.buf.len() < total {
            return Ok(None);
        }
        Ok(Some(self.buf.split_to(total).freeze()))
    }

    /// True when part of a message is buffered: after [`StreamFramer::next_message`] returned
    /// `Ok(None)`, the bytes left are the start of a message (keep-alive CRLFs are skipped).
    pub fn is_mid_message(&self) -> bool {
        !self.buf.is_empty()
    }

    fn check_size(&self, size: usize) -> Result<(), ParseError> {
        if size > self.limits.max_message {
            return Err(ParseError::TooLarge { size, limit: self.limits.max_message });
        }
        Ok(())
    }
}

/// Finds Content-Length (or `l`) in a raw header section without parsing anything else.
fn content_length(head: &[u8]) -> Result<usize, ParseError> {
    let text = std::str::from_utf8(head).map_err(|_| ParseError::NotUtf8)?;
    let mut found = None;
    for line in text.split("\r\n").skip(1) {
        let Some((name, value)) = line.split_once(':') else { continue };
        let name = name.trim_end();
        if name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("l") {
            if found.is_some() {
                return Err(ParseError::Duplicate("Content-Length"));
            }
            let n = parse_number(value, u64::from(u32::MAX))
                .ok_or_else(|| ParseError::header(name, format!("'{}' is not a length", value.trim())))?;
            found = Some(n as usize);
        }
    }
    found.ok_or(ParseError::NoContentLength)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"NOTIFY sip:a@b SIP/2.0\r\nl: 3\r\n\r\nabc";

    #[test]
    fn reassembles_byte_by_byte_and_back_to_back() {
        let mut f = StreamFramer::default();
        let mut out = Vec::new();
        for b in MSG.iter().chain(b"\r\n").chain(MSG) {
            f.extend(&[*b]);
            while let Some(m) = f.next_message().unwrap() {
                out.push(m);
            }
        }
        assert_eq!(out.len(), 2);
        assert!(out.iter().all(|m| m.as_ref() == MSG));
    }

    #[test]
    fn refuses_what_cannot_be_framed() {
        let cases: [(&[u8], &str); 3] = [
            (b"NOTIFY sip:a@b SIP/2.0\r\nVia: x\r\n\r\n", "mandatory"),
            (b"NOTIFY sip:a@b SIP/2.0\r\nl: 1\r\nContent-Length: 1\r\n\r\nx", "more than once"),
            (b"NOTIFY sip:a@b SIP/2.0\r\nContent-Length: -1\r\n\r\n", "not a length"),
        ];
        for (data, why) in cases {
            let mut f = StreamFramer::default();
            f.extend(data);
            let e = f.next_message().unwrap_err().to_string();
            assert!(e.contains(why), "{e}");
        }
    }

    #[test]
    fn limits_buffered_size() {
        let mut f = StreamFramer::with_limits(Limits { max_message: 100, max_headers: 10, ..Limits::default() });
        f.extend(&[b'a'; 101]);
        assert!(matches!(f.next_message(), Err(ParseError::TooLarge { .. })));
        let mut f = StreamFramer::with_limits(Limits { max_message: 100, max_headers: 10, ..Limits::default() });
        f.extend(b"NOTIFY sip:a@b SIP/2.0\r\nl: 500\r\n\r\n");
        assert!(matches!(f.next_message(), Err(ParseError::TooLarge { .. })), "declared body too large");
    }
}
