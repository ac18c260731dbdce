//! Every admin API error as an RFC 9457 problem document (`application/problem+json`).
//!
//! Handlers fail with an [`ApiError`] (a status, a detail, and the request member or setting key
//! at fault); it answers [`sipprov_api::Problem`]. What axum itself refuses before a handler
//! runs (a malformed path or query, a method the route does not take, a body over the limit, a
//! route that does not exist) is turned into the same document by [`every_error_a_problem`], so
//! a client has one error format to read.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sipprov_api::{Problem, PROBLEM_CONTENT_TYPE};
use sipprov_store::StoreError;

use super::validate::Invalid;

/// An API error: a status, a message that names what is wrong, and the field at fault.
#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status answered.
    pub status: StatusCode,
    /// What is wrong, for a human; never a value that might be a secret.
    pub detail: String,
    /// The request member or setting key at fault, if any.
    pub field: Option<String>,
}

impl ApiError {
    /// An error with `status` and `detail`, naming no field.
    pub fn new(status: StatusCode, detail: impl Into<String>) -> ApiError {
        ApiError { status, detail: detail.into(), field: None }
    }

    /// The same error, naming the request member or setting key at fault.
    pub fn at(mut self, field: &str) -> ApiError {
        self.field = Some(field.to_string());
        self
    }

    /// The problem document this error answers.
    pub fn problem(&self) -> Problem {
        Problem { field: self.field.clone(), ..Problem::new(self.status.as_u16(), self.detail.clone()) }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        problem_response(&self.problem())
    }
}

impl From<Invalid> for ApiError {
    /// A refused request: 400, naming its field.
    fn from(e: Invalid) -> ApiError {
        ApiError { status: StatusCode::BAD_REQUEST, detail: e.message, field: e.field }
    }
}

impl From<crate::registry::Refused> for ApiError {
    /// A change the registry refused: 400 with why; or the store's failure, as below.
    fn from(e: crate::registry::Refused) -> ApiError {
        match e {
            crate::registry::Refused::Invalid(detail) => ApiError::new(StatusCode::BAD_REQUEST, detail),
            crate::registry::Refused::Store(e) => ApiError::from(e),
        }
    }
}

impl From<StoreError> for ApiError {
    /// A database that cannot write or be reached answers 503 with what failed (`database write
    /// failed: database or disk is full`): the request changed nothing and may be repeated once
    /// the cause is fixed; the server recovers by itself.
    fn from(e: StoreError) -> Self {
        if let Some(message) = e.unavailable() {
            tracing::warn!(error = %e, "admin request failed: the database cannot take it");
            return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message);
        }
        let (status, field) = match e {
            StoreError::DuplicateDevice(_) => (StatusCode::CONFLICT, Some("mac")),
            StoreError::DeviceNotFound(_) => (StatusCode::NOT_FOUND, Some("mac")),
            StoreError::GroupNotFound(_) => (StatusCode::NOT_FOUND, Some("group")),
            StoreError::Duplicate(_) => (StatusCode::CONFLICT, Some("name")),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, None),
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %e, "store failure in admin API");
        }
        ApiError { status, detail: e.to_string(), field: field.map(String::from) }
    }
}

/// A problem document as a response with its status and media type.
fn problem_response(problem: &Problem) -> Response {
    let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = serde_json::to_vec(problem).unwrap_or_default();
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_CONTENT_TYPE))], body).into_response()
}

/// The answer for a path the admin API does not have.
pub(super) async fn no_route(req: Request) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, format!("the admin API has no {}", req.uri().path()))
}

/// What is read of an error body axum wrote (its rejections are one line).
const MAX_ERROR_BODY: usize = 16 * 1024;

/// Turns every error response that is not already a problem document into one: the original
/// status and headers (an `Allow` of a 405 stays), and its text, with any value serde quoted
/// taken out, as the detail.
pub(super) async fn every_error_a_problem(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    let is_problem =
        response.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes() == PROBLEM_CONTENT_TYPE.as_bytes());
    if !(status.is_client_error() || status.is_server_error()) || is_problem {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, MAX_ERROR_BODY).await.unwrap_or_default();
    let text = super::body::without_values(String::from_utf8_lossy(&text).trim());
    let detail = if text.is_empty() { status.canonical_reason().unwrap_or("error").to_string() } else { text };
    let problem = Problem::new(status.as_u16(), detail);
    let body = serde_json::to_vec(&problem).unwrap_or_default();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_CONTENT_TYPE));
    Response::from_parts(parts, Body::from(body))
}
