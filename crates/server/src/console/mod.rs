//! The web console: server-rendered pages for operators, on the admin listener under
//! `/console/` (`/` redirects there).
//!
//! Pages are minijinja templates and one stylesheet, embedded in the binary
//! (`include_str!`); one small script (`console.js`) follows campaign progress over
//! server-sent events and nothing needs it: every page works, and every action is a plain form,
//! without JavaScript. Every answer carries a strict Content-Security-Policy (`default-src
//! 'self'`, no inline script or style) and is never cached.
//!
//! Handlers call the server's services directly, never the admin API over HTTP: reads from the
//! [`Inventory`], the [`Files`] core, the [`CampaignEngine`] and the [`Store`] (history);
//! every change through the [`Registry`], the [`Notifier`], the campaign engine or the template
//! service, with the same validation the API applies.
//!
//! Who may do what (`session::Viewer::require`, checked by every action): `read-only` sees
//! everything and changes nothing; `operator` re-provisions, reboots, unlocks, runs campaigns,
//! approves Plug-and-Play devices, and edits device and group settings; `admin` also edits the
//! global settings and templates. Logging in, sessions and the CSRF and origin checks are in
//! `session` and `login`.
//!
//! One module per page group: `overview`, `devices` (list, device page and its actions),
//! `add_device`, `settings` (groups and global settings), `campaigns`, `pnp`, `templates`,
//! `files` (stored firmware and resource files: list, upload, remove).

mod add_device;
mod campaigns;
mod devices;
mod files;
mod login;
mod overview;
mod pnp;
mod session;
mod settings;
mod templates;
mod view;

use std::sync::{Arc, OnceLock};

use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use minijinja::Environment;
use sipprov_store::Store;

use crate::access::Tokens;
use crate::auth::Security;
use crate::campaign::CampaignEngine;
use crate::config::ConsoleConfig;
use crate::discoveries::Discoveries;
use crate::fetchlog::FetchLog;
use crate::files::Files;
use crate::filestore::FileStore;
use crate::inventory::Inventory;
use crate::notify::Notifier;
use crate::registry::Registry;
use crate::users::Users;

/// What the console's pages read and change.
pub struct ConsoleServices {
    /// History, campaigns.
    pub store: Store,
    /// Devices, groups, global settings, in memory.
    pub inventory: Arc<Inventory>,
    /// What phones receive (the device page shows it).
    pub files: Arc<Files>,
    /// The one write path for devices, groups and global settings.
    pub registry: Arc<Registry>,
    /// Re-provision and reboot.
    pub notifier: Arc<Notifier>,
    /// Campaigns: preview, create, cancel, retry.
    pub campaigns: Arc<CampaignEngine>,
    /// First-fetch windows (unlock) and the phone throttle.
    pub security: Arc<Security>,
    /// The history sink (unlocks are recorded there).
    pub events: FetchLog,
    /// Console users (login).
    pub users: Arc<Users>,
    /// API tokens (a login with a token instead of a user and password).
    pub tokens: Arc<Tokens>,
    /// Plug-and-Play discoveries: list, approve, reject.
    pub discoveries: Arc<Discoveries>,
    /// Stored firmware and resource files: list, upload, remove.
    pub filestore: Arc<FileStore>,
    sessions: session::Sessions,
}

impl ConsoleServices {
    /// The console over the server's services, with `config`'s session limits.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Store,
        inventory: Arc<Inventory>,
        files: Arc<Files>,
        registry: Arc<Registry>,
        notifier: Arc<Notifier>,
        campaigns: Arc<CampaignEngine>,
        security: Arc<Security>,
        events: FetchLog,
        users: Arc<Users>,
        tokens: Arc<Tokens>,
        discoveries: Arc<Discoveries>,
        filestore: Arc<FileStore>,
        config: ConsoleConfig,
    ) -> ConsoleServices {
        ConsoleServices {
            store,
            inventory,
            files,
            registry,
            notifier,
            campaigns,
            security,
            events,
            users,
            tokens,
            discoveries,
            filestore,
            sessions: session::Sessions::new(config),
        }
    }
}

/// The console's routes, to merge into the admin listener's router.
pub fn router(services: ConsoleServices) -> Router {
    let c = Arc::new(services);
    Router::new()
        .route("/", get(|| async { Redirect::to("/console/") }))
        .route("/console", get(|| async { Redirect::to("/console/") }))
        .route("/console/", get(overview::page))
        .route("/console/login", get(login::form).post(login::submit))
        .route("/console/logout", post(login::logout))
        .route("/console/assets/console.css", get(|| asset(CSS, "text/css; charset=utf-8")))
        .route("/console/assets/console.js", get(|| asset(JS, "text/javascript; charset=utf-8")))
        .merge(add_device::routes())
        .merge(devices::routes())
        .merge(settings::routes())
        .merge(campaigns::routes())
        .merge(pnp::routes())
        .merge(templates::routes())
        .merge(files::routes())
        .layer(middleware::from_fn_with_state(c.clone(), session::guard_posts))
        .layer(middleware::from_fn(security_headers))
        .with_state(c)
}

/// The console's shared handler state.
type Ctx = axum::extract::State<Arc<ConsoleServices>>;

const CSS: &str = include_str!("assets/console.css");
const JS: &str = include_str!("assets/console.js");

async fn asset(body: &'static str, content_type: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// The policy every console answer carries: only the console's own files, no inline script or
/// style, no framing, forms posting only to the console.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

async fn security_headers(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let h = response.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    response
}

/// The embedded templates, loaded once.
fn templates() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        for (name, source) in [
            ("base.html", include_str!("templates/base.html")),
            ("macros.html", include_str!("templates/macros.html")),
            ("login.html", include_str!("templates/login.html")),
            ("error.html", include_str!("templates/error.html")),
            ("overview.html", include_str!("templates/overview.html")),
            ("devices.html", include_str!("templates/devices.html")),
            ("device.html", include_str!("templates/device.html")),
            ("add_device.html", include_str!("templates/add_device.html")),
            ("confirm.html", include_str!("templates/confirm.html")),
            ("groups.html", include_str!("templates/groups.html")),
            ("settings.html", include_str!("templates/settings.html")),
            ("campaigns.html", include_str!("templates/campaigns.html")),
            ("campaign.html", include_str!("templates/campaign.html")),
            ("preview.html", include_str!("templates/preview.html")),
            ("pnp.html", include_str!("templates/pnp.html")),
            ("template_list.html", include_str!("templates/template_list.html")),
            ("template.html", include_str!("templates/template.html")),
            ("files.html", include_str!("templates/files.html")),
        ] {
            if let Err(e) = env.add_template(name, source) {
                // The templates are part of the binary and tested; a broken one is a bug.
                tracing::error!(template = name, error = %e, "console template does not parse");
            }
        }
        env.add_filter("time", view::time_filter);
        env
    })
}

/// Renders the page `name` with `ctx`.
fn render(name: &str, ctx: serde_json::Value) -> Result<Response, ConsoleError> {
    let html = templates()
        .get_template(name)
        .and_then(|t| t.render(minijinja::Value::from(minijinja::value::Serde(&ctx))))
        .map_err(|e| {
            tracing::error!(template = name, error = %e, "console page failed to render");
            ConsoleError::new(StatusCode::INTERNAL_SERVER_ERROR, "this page failed to render; the server log says why")
        })?;
    Ok(Html(html).into_response())
}

/// A console failure shown as a page: the status and what went wrong.
#[derive(Debug)]
pub(crate) struct ConsoleError {
    status: StatusCode,
    message: String,
}

impl ConsoleError {
    /// A failure with `status` and a message for the operator (never a secret).
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> ConsoleError {
        ConsoleError { status, message: message.into() }
    }

    fn not_found(what: impl Into<String>) -> ConsoleError {
        ConsoleError::new(StatusCode::NOT_FOUND, what)
    }
}

impl From<sipprov_store::StoreError> for ConsoleError {
    fn from(e: sipprov_store::StoreError) -> ConsoleError {
        if let Some(message) = e.unavailable() {
            return ConsoleError::new(StatusCode::SERVICE_UNAVAILABLE, message);
        }
        tracing::error!(error = %e, "store failure in the console");
        ConsoleError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let ctx = serde_json::json!({ "status": self.status.as_u16(), "message": self.message });
        let body = templates()
            .get_template("error.html")
            .and_then(|t| t.render(minijinja::Value::from(minijinja::value::Serde(&ctx))))
            .unwrap_or_else(|_| "The console failed; the server log says why.".to_string());
        (self.status, Html(body)).into_response()
    }
}

type Page = Result<Response, ConsoleError>;
