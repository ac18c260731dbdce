//! `/api/v1/users`: web console users (admin only), for `sipprov user add|list|passwd|rm`.
//!
//! Passwords arrive in request bodies only and are hashed before they are stored
//! ([`crate::users`]); no answer carries a password or a hash. Every change is audited
//! (`user.add`, `user.password`, `user.remove`), never with the password.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Extension;
use axum::Json;
use sipprov_api::{AddUser, SetPassword, User};

use super::{ApiError, ApiResult};
use crate::access::{audit, Actor};
use crate::users::{UserError, Users};

/// Records a user change. The users table is written by its own service, so the entry follows
/// the change; a failure to write it is logged with what it would hold.
async fn record(store: &sipprov_store::Store, actor: &Actor, action: &str, name: &str, detail: serde_json::Value) {
    let entry = audit::entry(actor, action, "user", name, detail);
    if let Err(e) = store.append_audit(&entry).await {
        tracing::error!(error = %e, actor = %entry.actor, action, user = name, "could not write an audit entry");
    }
}

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
    State(store): State<sipprov_store::Store>,
    Extension(actor): Extension<Actor>,
    super::body::Body(body): super::body::Body<AddUser>,
) -> ApiResult<(StatusCode, Json<User>)> {
    let user = users.add(&body.name, body.role, &body.password).await?;
    record(&store, &actor, "user.add", &user.name, serde_json::json!({ "role": user.role })).await;
    Ok((StatusCode::CREATED, Json(user)))
}

/// `PUT /api/v1/users/{name}/password`: also ends the user's console sessions.
pub(super) async fn set_password(
    State(users): State<Arc<Users>>,
    State(store): State<sipprov_store::Store>,
    Extension(actor): Extension<Actor>,
    Path(name): Path<String>,
    super::body::Body(body): super::body::Body<SetPassword>,
) -> ApiResult<StatusCode> {
    users.set_password(&name, &body.password).await?;
    record(&store, &actor, "user.password", &name, serde_json::json!({})).await;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /api/v1/users/{name}`: also ends the user's console sessions.
pub(super) async fn remove(
    State(users): State<Arc<Users>>,
    State(store): State<sipprov_store::Store>,
    Extension(actor): Extension<Actor>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    users.remove(&name).await?;
    record(&store, &actor, "user.remove", &name, serde_json::json!({})).await;
    Ok(StatusCode::NO_CONTENT)
}
