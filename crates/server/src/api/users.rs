//! `/api/v1/users`: web console users (admin only), for `sipprov user add|list|passwd|rm`.
//!
//! Passwords arrive in request bodies only and are hashed before they are stored
//! ([`crate::users`]); no answer carries a password or a hash.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use sipprov_api::{AddUser, SetPassword, User};

use super::{ApiError, ApiResult};
use crate::users::{UserError, Users};

impl From<UserError> for ApiError {
    fn from(e: UserError) -> ApiError {
        match e {
            UserError::Invalid { field, message } => ApiError::new(StatusCode::BAD_REQUEST, message).at(field),
            UserError::Taken(_) => ApiError::new(StatusCode::CONFLICT, e.to_string()).at("name"),
            UserError::NotFound(_) => ApiError::new(StatusCode::NOT_FOUND, e.to_string()).at("name"),
            UserError::Store(e) => ApiError::from(e),
            UserError::Hash(_) => {
                tracing::error!(error = %e, "console user request failed");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
            }
        }
    }
}

/// `GET /api/v1/users`.
pub(super) async fn list(State(users): State<Arc<Users>>) -> ApiResult<Json<Vec<User>>> {
    Ok(Json(users.list().await?))
}

/// `POST /api/v1/users`.
pub(super) async fn add(
    State(users): State<Arc<Users>>,
    super::body::Body(body): super::body::Body<AddUser>,
) -> ApiResult<(StatusCode, Json<User>)> {
    Ok((StatusCode::CREATED, Json(users.add(&body.name, body.role, &body.password).await?)))
}

/// `PUT /api/v1/users/{name}/password`: also ends the user's console sessions.
pub(super) async fn set_password(
    State(users): State<Arc<Users>>,
    Path(name): Path<String>,
    super::body::Body(body): super::body::Body<SetPassword>,
) -> ApiResult<StatusCode> {
    users.set_password(&name, &body.password).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /api/v1/users/{name}`: also ends the user's console sessions.
pub(super) async fn remove(State(users): State<Arc<Users>>, Path(name): Path<String>) -> ApiResult<StatusCode> {
    users.remove(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}
