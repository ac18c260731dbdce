//! `/api/v1/templates`: template overrides as versions, through the template service
//! ([`crate::templates::Templates`]). Changing a template is an admin action (the role check
//! sits with the API's authentication).
//!
//! | method | path | what |
//! |---|---|---|
//! | GET | /api/v1/templates | every built-in template, overridden or not, current version |
//! | GET, PUT, DELETE | /api/v1/templates/{vendor}/{file} | show; new version; back to built-in |
//! | POST | /api/v1/templates/{vendor}/{file}/preview | the bytes a device would receive, secrets masked |
//! | GET | /api/v1/templates/{vendor}/{file}/diff?from=N&to=M | unified diff |
//! | POST | /api/v1/templates/{vendor}/{file}/rollback | an earlier version again, as a new version |

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::{Extension, Json};
use serde::Deserialize;
use sipprov_api::{
    PreviewTemplate, RollbackTemplate, SetTemplate, TemplateChanged, TemplateDetail, TemplateDiff, TemplateSummary,
    PROBLEM_CONTENT_TYPE,
};

use super::body::Body;
use super::{ApiError, ApiServices};
use crate::access::Actor;
use crate::templates::{Change, TemplateError, Templates};

/// The largest override accepted: far above any built-in template, far below what could hurt.
const MAX_BODY: usize = 256 * 1024;

/// The template routes, part of the admin router's table (behind its authentication).
pub(super) fn routes() -> Vec<(&'static str, MethodRouter<ApiServices>)> {
    vec![
        ("/api/v1/templates", get(list)),
        ("/api/v1/templates/{vendor}/{file}", get(show).put(set).delete(reset)),
        ("/api/v1/templates/{vendor}/{file}/preview", post(preview)),
        ("/api/v1/templates/{vendor}/{file}/diff", get(diff)),
        ("/api/v1/templates/{vendor}/{file}/rollback", post(rollback)),
    ]
}

fn service(s: &ApiServices) -> Templates {
    Templates::new(s.store.clone(), s.files.clone(), s.inventory.clone())
}

/// A refusal as a problem document; an invalid body carries its line and column.
fn refused(e: TemplateError) -> Response {
    let e = match e {
        TemplateError::Store(e) => return ApiError::from(e).into_response(),
        e => e,
    };
    let (status, field) = match &e {
        TemplateError::UnknownVendor { .. } => (StatusCode::NOT_FOUND, "vendor"),
        TemplateError::UnknownTemplate { .. } => (StatusCode::NOT_FOUND, "file"),
        TemplateError::UnknownVersion { .. } => (StatusCode::NOT_FOUND, "version"),
        TemplateError::Invalid(..) => (StatusCode::UNPROCESSABLE_ENTITY, "body"),
        TemplateError::Device(_) => (StatusCode::UNPROCESSABLE_ENTITY, "device"),
        TemplateError::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, "store"),
    };
    let mut problem = ApiError::new(status, e.to_string()).at(field).problem();
    if let TemplateError::Invalid(err, _) = &e {
        problem.line = err.line;
        problem.column = err.column;
    }
    (status, [(header::CONTENT_TYPE, PROBLEM_CONTENT_TYPE)], Json(problem)).into_response()
}

type Answer<T> = Result<T, Response>;

#[utoipa::path(get, path = "/api/v1/templates", operation_id = "list_templates", tag = "templates",
    responses((status = 200, description = "every built-in template, whether an override serves, its current version", body = Vec<sipprov_api::TemplateSummary>), (status = 401, description = "missing or wrong bearer token", body = sipprov_api::Problem, content_type = "application/problem+json")))]
async fn list(State(s): State<ApiServices>) -> Answer<Json<Vec<TemplateSummary>>> {
    service(&s).list().await.map(Json).map_err(|e| ApiError::from(e).into_response())
}

#[utoipa::path(get, path = "/api/v1/templates/{vendor}/{file}", operation_id = "show_template", tag = "templates",
    params(("vendor" = String, Path, description = "vendor id, e.g. yealink"), ("file" = String, Path, description = "template file, e.g. mac.cfg.j2")),
    responses((status = 200, description = "the built-in body, the current override and every version", body = sipprov_api::TemplateDetail), (status = 401, description = "missing or wrong bearer token", body = sipprov_api::Problem, content_type = "application/problem+json"), (status = 404, description = "no such vendor or template", body = sipprov_api::Problem, content_type = "application/problem+json")))]
async fn show(
    State(s): State<ApiServices>,
    Path((vendor, file)): Path<(String, String)>,
) -> Answer<Json<TemplateDetail>> {
    service(&s).show(&vendor, &file).await.map(Json).map_err(refused)
}

#[utoipa::path(put, path = "/api/v1/templates/{vendor}/{file}", operation_id = "set_template", tag = "templates",
    params(("vendor" = String, Path, description = "vendor id, e.g. yealink"), ("file" = String, Path, description = "template file, e.g. mac.cfg.j2")),
    request_body = sipprov_api::SetTemplate,
    responses((status = 200, description = "saved as a new version, serving now", body = sipprov_api::TemplateChanged), (status = 401, description = "missing or wrong bearer token", body = sipprov_api::Problem, content_type = "application/problem+json"), (status = 403, description = "the token's role falls short; the problem names both roles", body = sipprov_api::Problem, content_type = "application/problem+json"), (status = 404, description = "no such vendor or template", body = sipprov_api::Problem, content_type = "application/problem+json"), (status = 422, description = "refused by validation: `field` (and `line`, `column` for a template) name what is wrong", body = sipprov_api::Problem, content_type = "application/problem+json")))]
async fn set(
    State(s): State<ApiServices>,
    Extension(actor): Extension<Actor>,
    Path((vendor, file)): Path<(String, String)>,
    Body(req): Body<SetTemplate>,
) -> Answer<Json<TemplateChanged>> {
    if req.body.len() > MAX_BODY {
        let e = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, format!("template over {MAX_BODY} bytes"));
        return Err(e.at("body").into_response());
    }
    let name = format!("{vendor}/{file}");
    let change = Change { name: &name, actor: &actor, comment: req.comment.as_deref() };
    let version = service(&s).set(change, &req.body, req.device).await.map_err(refused)?;
    Ok(Json(TemplateChanged { name, version }))
}

/// `?comment=` for `DELETE`, which has no body.
#[derive(Deserialize)]
struct ResetQuery {
    comment: Option<String>,
}

#[utoipa::path(delete, path = "/api/v1/templates/{vendor}/{file}", operation_id = "reset_template", tag = "templates",
    params(("vendor" = String, Path, description = "vendor id, e.g. yealink"), ("file" = String, Path, description = "template file, e.g. mac.cfg.j2"), ("comment" = Option<String>, Query, description = "why, recorded with the version")),
    responses((status = 200, description = "the built-in serves again (recorded as a version)", body = sipprov_api::TemplateChanged), (status = 401, description = "missing or wrong bearer token", body = sipprov_api::Problem, content_type = "application/problem+json"), (status = 403, description = "the token's role falls short; the problem names both roles", body = sipprov_api::Problem, content_type = "application/problem+json"), (status = 404, description = "no such vendor or template", body = sipprov_api::Problem, content_type = "application/problem+json")))]
async fn reset(
    State(s): State<ApiServices>,
    Extension(actor): Extension<Actor>,
    Path((vendor, file)): Path<(String, String)>,
    Query(q): Query<ResetQuery>,
) -> Answer<Json<TemplateChanged>> {
    let name = format!("{vendor}/{file}");
    let change = Change { name: &name, actor: &actor, comment: q.comment.as_deref() };
    let version = service(&s).reset(change).await.map_err(refused)?;
    Ok(Json(TemplateChanged { name, version }))
}

#[utoipa::path(post, path = "/api/v1/templates/{vendor}/{file}/rollback", operation_id = "rollback_template", tag = "templates",
    params(("vendor" = String, Path, description = "vendor id, e.g. yealink"), ("file" = String, Path, description = "template file, e.g. mac.cfg.j2")),
    request_body = sipprov_api::RollbackTemplate,
    responses((status = 200, description = "the earlier version, current again as a new version", body = sipprov_api::TemplateChanged), (status = 401, description = "missing or wrong bearer token", body = sipprov_api::Problem, content_type = "application/problem+json"), (status = 403, description = "the token's role falls short; the problem names both roles", body = sipprov_api::Problem, content_type = "application/problem+json"), (status = 404, description = "no such vendor, template or version", body = sipprov_api::Problem, content_type = "application/problem+json"), (status = 422, description = "refused by validation: `field` (and `line`, `column` for a template) name what is wrong", body = sipprov_api::Problem, content_type = "application/problem+json")))]
async fn rollback(
    State(s): State<ApiServices>,
    Extension(actor): Extension<Actor>,
    Path((vendor, file)): Path<(String, String)>,
    Body(req): Body<RollbackTemplate>,
) -> Answer<Json<TemplateChanged>> {
    let name = format!("{vendor}/{file}");
    let comment = req.comment.unwrap_or_else(|| format!("rollback to version {}", req.version));
    let change = Change { name: &name, actor: &actor, comment: Some(&comment) };
    let version = service(&s).rollback(change, req.version).await.map_err(refused)?;
    Ok(Json(TemplateChanged { name, version }))
}

#[utoipa::path(post, path = "/api/v1/templates/{vendor}/{file}/preview", operation_id = "preview_template", tag = "templates",
    params(("vendor" = String, Path, description = "vendor id, e.g. yealink"), ("file" = String, Path, description = "template file, e.g. mac.cfg.j2")),
    request_body = sipprov_api::PreviewTemplate,
    responses((status = 200, description = "the bytes the device would receive, secrets masked", body = String), (status = 401, description = "missing or wrong bearer token", body = sipprov_api::Problem, content_type = "application/problem+json"), (status = 403, description = "the token's role falls short; the problem names both roles", body = sipprov_api::Problem, content_type = "application/problem+json"), (status = 404, description = "no such vendor, template or device", body = sipprov_api::Problem, content_type = "application/problem+json"), (status = 422, description = "refused by validation: `field` (and `line`, `column` for a template) name what is wrong", body = sipprov_api::Problem, content_type = "application/problem+json")))]
async fn preview(
    State(s): State<ApiServices>,
    Path((vendor, file)): Path<(String, String)>,
    Body(req): Body<PreviewTemplate>,
) -> Answer<Response> {
    let (bytes, content_type) =
        service(&s).preview(&vendor, &file, req.device, req.body.as_deref()).map_err(refused)?;
    Ok(([(header::CONTENT_TYPE, content_type)], bytes).into_response())
}

/// `?from=N&to=M`: versions; the built-in and the current one when absent.
#[derive(Deserialize)]
struct DiffQuery {
    from: Option<i64>,
    to: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/templates/{vendor}/{file}/diff", operation_id = "diff_template", tag = "templates",
    params(("vendor" = String, Path, description = "vendor id, e.g. yealink"), ("file" = String, Path, description = "template file, e.g. mac.cfg.j2"), ("from" = Option<i64>, Query, description = "old side: a version (the built-in when absent)"), ("to" = Option<i64>, Query, description = "new side: a version (the current one when absent)")),
    responses((status = 200, description = "a unified diff", body = sipprov_api::TemplateDiff), (status = 401, description = "missing or wrong bearer token", body = sipprov_api::Problem, content_type = "application/problem+json"), (status = 404, description = "no such vendor, template or version", body = sipprov_api::Problem, content_type = "application/problem+json")))]
async fn diff(
    State(s): State<ApiServices>,
    Path((vendor, file)): Path<(String, String)>,
    Query(q): Query<DiffQuery>,
) -> Answer<Json<TemplateDiff>> {
    service(&s).diff(&vendor, &file, q.from, q.to).await.map(Json).map_err(refused)
}
