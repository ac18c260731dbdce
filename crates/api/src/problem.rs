//! The error document of the admin API: an RFC 9457 problem detail.

use serde::{Deserialize, Serialize};

/// The media type of a [`Problem`] (RFC 9457 §3).
pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// `about:blank`: the problem is what the status code says (RFC 9457 §4.2.1); `title` is then
/// the status code's reason phrase.
const ABOUT_BLANK: &str = "about:blank";

/// What every admin API error answers, as `application/problem+json` (RFC 9457).
///
/// `type` is `about:blank` (RFC 9457 §4.2.1): the status code carries the kind of problem
/// (400 invalid request, 401 no or wrong token, 404 unknown device, group, campaign or file,
/// 409 conflict with the current state, 422 a request the server understood but cannot carry
/// out, 503 the database cannot take it), and `detail` says what exactly, without quoting any
/// value that might be a secret. The extension member `field` names the request member or
/// setting key at fault, when there is one.
///
/// ```
/// use sipprov_api::Problem;
/// let p = Problem::new(400, "setting \"line.1.port\" has an invalid value: not a port").with_field("line.1.port");
/// let json = serde_json::to_value(&p).unwrap();
/// assert_eq!(json["type"], "about:blank");
/// assert_eq!(json["title"], "Bad Request");
/// assert_eq!(json["field"], "line.1.port");
/// assert_eq!(p.to_string(), "setting \"line.1.port\" has an invalid value: not a port (field line.1.port)");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI reference naming the problem type; `about:blank` when absent (RFC 9457 §3.1.1).
    #[serde(rename = "type", default = "about_blank")]
    pub problem_type: String,
    /// A short summary of the problem type: the status code's reason phrase.
    #[serde(default)]
    pub title: String,
    /// The HTTP status code, repeated for clients that lost it (RFC 9457 §3.1.2).
    pub status: u16,
    /// What is wrong with this request, for a human: what the CLI prints.
    #[serde(default)]
    pub detail: String,
    /// The request member or setting key at fault (`mac`, `vendor`, `line.1.port`…), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The 1-based line at fault in a submitted text (a template override), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// The 1-based column at fault in that line, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
}

fn about_blank() -> String {
    ABOUT_BLANK.to_string()
}

impl Problem {
    /// A problem with status `status` and `detail`; `title` is the status's reason phrase.
    pub fn new(status: u16, detail: impl Into<String>) -> Problem {
        Problem {
            problem_type: about_blank(),
            title: reason_phrase(status).to_string(),
            status,
            detail: detail.into(),
            field: None,
            line: None,
            column: None,
        }
    }

    /// The same problem, naming the request member or setting key at fault.
    pub fn with_field(mut self, field: impl Into<String>) -> Problem {
        self.field = Some(field.into());
        self
    }
}

impl std::fmt::Display for Problem {
    /// The detail (or the title when there is none), and the field at fault.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = if self.detail.is_empty() { &self.title } else { &self.detail };
        f.write_str(text)?;
        match &self.field {
            Some(field) => write!(f, " (field {field})"),
            None => Ok(()),
        }
    }
}

/// The reason phrases of the status codes the admin API uses (RFC 9110 §15).
fn reason_phrase(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Content",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        s if s < 500 => "Client Error",
        _ => "Server Error",
    }
}
