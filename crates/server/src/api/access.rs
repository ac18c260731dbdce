//! Named API tokens (`/api/v1/tokens`, admin only) and the audit trail (`/api/v1/audit`,
//! `/api/v1/devices/{mac}/audit`).

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Deserialize;
use sipprov_api::{AuditEntry, CreateToken, CreatedToken, TokenInfo};
use sipprov_store::{AuditQuery, AuditRecord, Store};

use super::{parse_mac, ApiError, ApiResult};
use crate::access::{Actor, TokenError, Tokens};

/// The most entries one audit answer holds; page further with `before`.
const AUDIT_LIMIT_MAX: i64 = 1000;
/// Entries answered when no `limit` is given.
const AUDIT_LIMIT_DEFAULT: i64 = 100;

impl From<TokenError> for ApiError {
    fn from(e: TokenError) -> ApiError {
        match e {
            TokenError::BadName(msg) => ApiError::new(StatusCode::BAD_REQUEST, msg).at("name"),
            TokenError::NotFound(_) => ApiError::new(StatusCode::NOT_FOUND, e.to_string()).at("name"),
            TokenError::Store(e) => ApiError::from(e),
        }
    }
}

/// `GET /api/v1/tokens`: names, roles and dates, never a token nor its hash.
#[utoipa::path(get, path = "/api/v1/tokens", operation_id = "list_tokens", tag = "access",
    responses((status = 200, description = "every named token: name, role, dates; never the token", body = Vec<sipprov_api::TokenInfo>), (status = 401, description = "missing or wrong bearer token", body = sipprov_api::Problem, content_type = "application/problem+json"), (status = 403, description = "the token's role falls short; the problem names both roles", body = sipprov_api::Problem, content_type = "application/problem+json")))]
pub(super) async fn list_tokens(State(tokens): State<Arc<Tokens>>) -> ApiResult<Json<Vec<TokenInfo>>> {
    Ok(Json(tokens.list().await?))
}

/// `POST /api/v1/tokens`: the answer holds the token, shown this once.
#[utoipa::path(post, path = "/api/v1/tokens", operation_id = "create_token", tag = "access",
    request_body = sipprov_api::CreateToken,
    responses((status = 201, description = "the token, shown this once", body = sipprov_api::CreatedToken), (status = 400, description = "a malformed request; `field` names the member at fault", body = sipprov_api::Problem, content_type = "application/problem+json"), (status = 401, description = "missing or wrong bearer token", body = sipprov_api::Problem, content_type = "application/problem+json"), (status = 403, description = "the token's role falls short; the problem names both roles", body = sipprov_api::Problem, content_type = "application/problem+json"), (status = 409, description = "a token of that name exists", body = sipprov_api::Problem, content_type = "application/problem+json")))]
pub(super) async fn create_token(
    State(tokens): State<Arc<Tokens>>,
    Extension(actor): Extension<Actor>,
    super::body::Body(body): super::body::Body<CreateToken>,
) -> ApiResult<(StatusCode, Json<CreatedToken>)> {
    let created = tokens.create(&actor, &body.name, body.role).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// `DELETE /api/v1/tokens/{name}`: refused from the next request on.
#[utoipa::path(delete, path = "/api/v1/tokens/{name}", operation_id = "revoke_token", tag = "access",
    params(("name" = String, Path, description = "the token's name")),
    responses((status = 204, description = "revoked: refused from the next request on"), (status = 401, description = "missing or wrong bearer token", body = sipprov_api::Problem, content_type = "application/problem+json"), (status = 403, description = "the token's role falls short; the problem names both roles", body = sipprov_api::Problem, content_type = "application/problem+json"), (status = 404, description = "no token of that name", body = sipprov_api::Problem, content_type = "application/problem+json")))]
pub(super) async fn revoke_token(
    State(tokens): State<Arc<Tokens>>,
    Extension(actor): Extension<Actor>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    tokens.revoke(&actor, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The filters of `GET /api/v1/audit`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AuditFilter {
    actor: Option<String>,
    /// A MAC, group, token or campaign id, or `global`.
    target: Option<String>,
    /// ms since the epoch.
    since: Option<i64>,
    /// The id of the previous page's last entry.
    before: Option<i64>,
    limit: Option<i64>,
}

fn limit(given: Option<i64>) -> ApiResult<i64> {
    match given.unwrap_or(AUDIT_LIMIT_DEFAULT) {
        n if (1..=AUDIT_LIMIT_MAX).contains(&n) => Ok(n),
        _ => Err(ApiError::new(StatusCode::BAD_REQUEST, format!("limit must be between 1 and {AUDIT_LIMIT_MAX}"))
            .at("limit")),
    }
}

/// `GET /api/v1/audit`: newest first.
#[utoipa::path(get, path = "/api/v1/audit", operation_id = "list_audit", tag = "access",
    params(("actor" = Option<String>, Query, description = "only this actor's changes"), ("target" = Option<String>, Query, description = "a MAC, group, token, template or campaign id, or `global`"), ("since" = Option<i64>, Query, description = "ms since the epoch"), ("before" = Option<i64>, Query, description = "the id of the previous page's last entry"), ("limit" = Option<i64>, Query, description = "1 to 1000, 100 by default")),
    responses((status = 200, description = "entries, newest first", body = Vec<sipprov_api::AuditEntry>), (status = 400, description = "a malformed request; `field` names the member at fault", body = sipprov_api::Problem, content_type = "application/problem+json"), (status = 401, description = "missing or wrong bearer token", body = sipprov_api::Problem, content_type = "application/problem+json")))]
pub(super) async fn audit(
    State(store): State<Store>,
    Query(filter): Query<AuditFilter>,
) -> ApiResult<Json<Vec<AuditEntry>>> {
    let query = AuditQuery {
        actor: filter.actor,
        target: filter.target,
        since: filter.since,
        before: filter.before,
        limit: limit(filter.limit)?,
        ..AuditQuery::default()
    };
    Ok(Json(store.list_audit(&query).await?.into_iter().map(view).collect()))
}

/// The filters of `GET /api/v1/devices/{mac}/audit`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DeviceAuditFilter {
    before: Option<i64>,
    limit: Option<i64>,
}

/// `GET /api/v1/devices/{mac}/audit`: the device's own entries and the imports that listed it,
/// newest first. A removed device's trail stays readable.
#[utoipa::path(get, path = "/api/v1/devices/{mac}/audit", operation_id = "device_audit", tag = "devices",
    params(("mac" = String, Path, description = "the device's MAC, any common spelling"), ("before" = Option<i64>, Query, description = "the id of the previous page's last entry"), ("limit" = Option<i64>, Query, description = "1 to 1000, 100 by default")),
    responses((status = 200, description = "the device's entries and the imports that listed it, newest first", body = Vec<sipprov_api::AuditEntry>), (status = 400, description = "a malformed request; `field` names the member at fault", body = sipprov_api::Problem, content_type = "application/problem+json"), (status = 401, description = "missing or wrong bearer token", body = sipprov_api::Problem, content_type = "application/problem+json")))]
pub(super) async fn device_audit(
    State(store): State<Store>,
    Path(mac): Path<String>,
    Query(filter): Query<DeviceAuditFilter>,
) -> ApiResult<Json<Vec<AuditEntry>>> {
    let query = AuditQuery {
        device: Some(parse_mac(&mac)?),
        before: filter.before,
        limit: limit(filter.limit)?,
        ..AuditQuery::default()
    };
    Ok(Json(store.list_audit(&query).await?.into_iter().map(view).collect()))
}

fn view(r: AuditRecord) -> AuditEntry {
    AuditEntry {
        id: r.id,
        at: r.at,
        actor: r.actor,
        action: r.action,
        target_kind: r.target_kind,
        target: r.target,
        detail: r.detail,
    }
}
