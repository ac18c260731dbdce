//! The error returned when a SIP message, header or URI is refused. Every variant says why,
//! so that a log line (or a 400 reason phrase) tells the operator what was wrong.

use thiserror::Error;

/// Why a message, header or URI was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    /// The message is larger than the configured limit.
    #[error("message of {size} bytes exceeds the {limit}-byte limit")]
    TooLarge {
        /// Bytes received (or buffered) so far.
        size: usize,
        /// The limit in force.
        limit: usize,
    },
    /// Header fields of one name are larger, together, than the configured limit.
    #[error("{name} headers of {size} bytes exceed the {limit}-byte limit")]
    HeaderTooLarge {
        /// The header name.
        name: &'static str,
        /// Bytes of their values.
        size: usize,
        /// The limit in force.
        limit: usize,
    },
    /// More header lines than the configured limit.
    #[error("more than {0} header fields")]
    TooManyHeaders(usize),
    /// No empty line ends the header section.
    #[error("header section is not terminated by an empty line")]
    Unterminated,
    /// The request or status line is malformed.
    #[error("bad start line: {0}")]
    StartLine(String),
    /// The SIP version is not SIP/2.0.
    #[error("unsupported SIP version '{0}'")]
    Version(String),
    /// A header line or value is malformed.
    #[error("bad {name} header: {reason}")]
    Header {
        /// The header name as written.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A mandatory header is missing.
    #[error("missing mandatory {0} header")]
    Missing(&'static str),
    /// A header that may appear only once appears several times.
    #[error("{0} header appears more than once")]
    Duplicate(&'static str),
    /// The CSeq method differs from the request method.
    #[error("CSeq method '{cseq}' does not match request method '{method}'")]
    MethodMismatch {
        /// Method of the request line.
        method: String,
        /// Method of the CSeq header.
        cseq: String,
    },
    /// Content-Length claims more bytes than the datagram holds.
    #[error("Content-Length is {declared} but only {available} body bytes arrived")]
    BodyTooShort {
        /// Declared Content-Length.
        declared: usize,
        /// Bytes present after the header section.
        available: usize,
    },
    /// A stream message lacks Content-Length (RFC 3261 §18.3).
    #[error("Content-Length is mandatory on stream transports")]
    NoContentLength,
    /// A URI is malformed.
    #[error("bad URI: {0}")]
    BadUri(String),
    /// The header section is not valid UTF-8.
    #[error("header section is not valid UTF-8")]
    NotUtf8,
}

impl ParseError {
    /// Shorthand for [`ParseError::Header`].
    pub fn header(name: &str, reason: impl Into<String>) -> ParseError {
        ParseError::Header { name: name.to_owned(), reason: reason.into() }
    }
}
