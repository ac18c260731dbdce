//! The admin API's OpenAPI 3.1 document (`GET /api/v1/openapi.json`), generated from the code:
//! the request and response types of `sipprov-api` derive their schemas (`utoipa::ToSchema`)
//! and every handler carries its `#[utoipa::path]`; and its documentation page
//! (`GET /api/v1/docs`), HTML rendered here from that document with the CSS inline, so it needs
//! no network and no JavaScript.
//!
//! Both are served without a token: they describe the API and contain no device, group,
//! setting or campaign. The completeness test (`crates/sipprov/tests/openapi.rs`) walks every
//! route of [`super::route_paths`] and fails for one the document lacks.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use serde_json::Value;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

mod page;

/// The document's root: every handler and the shared schemas.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "sipprov admin API",
        description = "Devices, groups, settings and campaigns of a sipprov provisioning server. Every \
            request but /metrics, /api/v1/openapi.json and /api/v1/docs needs `Authorization: Bearer <token>`. \
            Errors are RFC 9457 problem documents (`application/problem+json`) whose `field` names the \
            request member or setting at fault."
    ),
    paths(
        super::metrics, document, page, super::cluster::status,
        super::list_devices, super::add_device, super::import::import_devices,
        super::show_device, super::patch_device, super::delete_device, super::device_log,
        super::unlock::unlock_device, super::render_device, super::uploads::list, super::uploads::show,
        super::notify_device, super::list_groups, super::show_group, super::patch_group,
        super::show_global, super::patch_global, super::list_vendors, super::summary,
        super::campaigns::list, super::campaigns::create, super::campaigns::show,
        super::campaigns::cancel, super::campaigns::retry,
        super::rollouts::list, super::rollouts::create, super::rollouts::show,
        super::rollouts::resume, super::rollouts::abort, super::rollouts::rollback,
        super::access::list_tokens, super::access::create_token, super::access::revoke_token,
        super::access::audit, super::access::device_audit,
        super::pnp::list, super::pnp::approve, super::pnp::reject,
        super::templates::list, super::templates::show, super::templates::set, super::templates::reset,
        super::templates::rollback, super::templates::preview, super::templates::diff,
        super::users::list, super::users::add, super::users::set_password, super::users::remove,
        super::directories::list, super::directories::show, super::directories::put,
        super::directories::remove, super::directories::import,
        super::files::list_firmware, super::files::upload_firmware, super::files::show_firmware,
        super::files::remove_firmware, super::files::list_resources, super::files::upload_resource,
        super::files::show_resource, super::files::remove_resource, super::files::limits,
    ),
    components(schemas(sipprov_api::Problem, sipprov_api::DeviceSort, sipprov_api::SortOrder)),
    modifiers(&BearerToken),
    security(("bearer" = [])),
    tags(
        (name = "devices", description = "the inventory, one device at a time or a page of them"),
        (name = "groups", description = "settings shared by a group's devices"),
        (name = "settings", description = "global settings, the lowest level of the merge"),
        (name = "campaigns", description = "paced check-sync or reboot over many devices"),
        (name = "rollouts", description = "firmware rollouts in waves: canary, waves, halt, resume, abort, roll back"),
        (name = "fleet", description = "the fleet at a glance"),
        (name = "access", description = "named tokens with roles, and the audit trail of every change"),
        (name = "pnp", description = "devices Plug-and-Play discovered, waiting for approval"),
        (name = "templates", description = "overrides of the built-in templates: validated, versioned"),
        (name = "files", description = "stored firmware images and resource files: upload, list, remove"),
        (name = "users", description = "web console users (admin only): who may log in, with which role"),
        (name = "directories", description = "remote phone directories: contact lists phones show, by directory.name"),
        (name = "server", description = "what the server knows and counts"),
    )
)]
struct ApiDoc;

/// Declares the `bearer` security scheme every operation refers to.
struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some("a named token (`sipprov token create`) or the bootstrap one in <data-dir>/api-token; SIPPROV_TOKEN for the CLI"))
            .build();
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

/// The document as JSON text, built once.
pub fn document_json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        let mut doc = ApiDoc::openapi();
        doc.info.version = env!("CARGO_PKG_VERSION").to_string();
        // Serialising a document built from literals cannot fail; an empty object would fail
        // the validator test loudly.
        doc.to_pretty_json().unwrap_or_else(|_| "{}".to_string())
    })
}

/// The documentation page, rendered once.
fn page_html() -> &'static str {
    static HTML: OnceLock<String> = OnceLock::new();
    HTML.get_or_init(|| page::render(&serde_json::from_str::<Value>(document_json()).unwrap_or_default()))
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "server", security(()),
    responses((status = 200, description = "the OpenAPI 3.1 document", content_type = "application/json", body = serde_json::Value)))]
pub(super) async fn document() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], document_json()).into_response()
}

/// The API's documentation page: every path, its parameters, bodies, answers and errors.
#[utoipa::path(get, path = "/api/v1/docs", tag = "server", security(()),
    responses((status = 200, description = "an HTML page (no scripts, no external assets)", content_type = "text/html", body = String)))]
pub(super) async fn page() -> Html<&'static str> {
    Html(page_html())
}
