//! `/api/v1/users`: web console users (admin only), for `sipprov user add|list|passwd|rm`.
//!
//! Passwords arrive in request bodies only and are hashed before they are stored
//! ([`crate::users`]); no answer carries a password or a hash. Every change is audited in
//! its own transaction (`user.add`, `user.password`, `user.remove`), never with the password.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Extension;
use axum::Json;
use sipprov_api::{AddUser, SetPassword, User};

use super::{ApiError, ApiResult};
use crate::access::Actor;
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
#[utoipa::path(get, path = "/api/v1/users", operation_id = "list_users", tag = "users",
    responses((status = 200, description = "every console user, by name (no password or hash)", body = Vec<sipprov_api::User>), (status = 401, description = "missing or wrong bearer token", body = sipprov_api::Problem, content_type = "application/problem+json"), (status = 403, description = "the token's role falls short; the problem names both roles", body = sipprov_api::Problem, content_type = "application/problem+json")))]
pub(super) async fn list(State(users): State<Arc<Users>>) -> ApiResult<Json<Vec<User>>> {
    Ok(Json(users.list().await?))
}

/// `POST /api/v1/users`.
#[utoipa::path(post, path = "/api/v1/users", operation_id = "add_user", tag = "users",
    request_body = sipprov_api::AddUser,
    responses((status = 201, description = "the user, created", body = sipprov_api::User), (status = 400, description = "a malformed request; `field` names the member at fault", body = sipprov_api::Problem, content_type = "application/problem+json"), (status = 401, description = "missing or wrong bearer token", body = sipprov_api::Problem, content_type = "application/problem+json"), (status = 403, description = "the token's role falls short; the problem names both roles", body = sipprov_api::Problem, content_type = "application/problem+json"), (status = 409, description = "a user of that name exists", body = sipprov_api::Problem, content_type = "application/problem+json")))]
pub(super) async fn add(
    State(users): State<Arc<Users>>,
    Extension(actor): Extension<Actor>,
    super::body::Body(body): super::body::Body<AddUser>,
) -> ApiResult<(StatusCode, Json<User>)> {
    let user = users.add(&actor, &body.name, body.role, &body.password).await?;
    Ok((StatusCode::CREATED, Json(user)))
}

/// `PUT /api/v1/users/{name}/password`: also ends the user's console sessions.
#[utoipa::path(put, path = "/api/v1/users/{name}/password", operation_id = "set_user_password", tag = "users",
    params(("name" = String, Path, description = "the user's login name")),
    request_body = sipprov_api::SetPassword,
    responses((status = 204, description = "changed; the user's console sessions are closed"), (status = 400, description = "a malformed request; `field` names the member at fault", body = sipprov_api::Problem, content_type = "application/problem+json"), (status = 401, description = "missing or wrong bearer token", body = sipprov_api::Problem, content_type = "application/problem+json"), (status = 403, description = "the token's role falls short; the problem names both roles", body = sipprov_api::Problem, content_type = "application/problem+json"), (status = 404, description = "no such user", body = sipprov_api::Problem, content_type = "application/problem+json")))]
pub(super) async fn set_password(
    State(users): State<Arc<Users>>,
    Extension(actor): Extension<Actor>,
    Path(name): Path<String>,
    super::body::Body(body): super::body::Body<SetPassword>,
) -> ApiResult<StatusCode> {
    users.set_password(&actor, &name, &body.password).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /api/v1/users/{name}`: also ends the user's console sessions.
#[utoipa::path(delete, path = "/api/v1/users/{name}", operation_id = "remove_user", tag = "users",
    params(("name" = String, Path, description = "the user's login name")),
    responses((status = 204, description = "removed; the user's console sessions are closed"), (status = 401, description = "missing or wrong bearer token", body = sipprov_api::Problem, content_type = "application/problem+json"), (status = 403, description = "the token's role falls short; the problem names both roles", body = sipprov_api::Problem, content_type = "application/problem+json"), (status = 404, description = "no such user", body = sipprov_api::Problem, content_type = "application/problem+json")))]
pub(super) async fn remove(
    State(users): State<Arc<Users>>,
    Extension(actor): Extension<Actor>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    users.remove(&actor, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
