//! Logging in and out, with a user name and password or with an API token.
//!
//! A login answers the same for an unknown user, a wrong password and an unknown token ("wrong
//! user name, password or token"); a user login costs the same work either way ([`crate::users::Users::verify`]), so the form cannot be used
//! to find out which names exist. A source that failed `console.login_failures` times within
//! `console.login_window_secs` is refused (429) until the window passes, whatever it sends.

use std::net::SocketAddr;

use axum::extract::ConnectInfo;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;

use super::session::cookie_id;
use super::{render, ConsoleError, Ctx, Page};

/// The login form's fields.
#[derive(Deserialize)]
pub(super) struct LoginForm {
    #[serde(default)]
    user: String,
    #[serde(default)]
    password: String,
    /// An API token instead of user and password: the session gets the token's name and role
    /// and ends when the token is revoked.
    #[serde(default)]
    token: String,
}

/// `GET /console/login`.
pub(super) async fn form() -> Page {
    render("login.html", serde_json::json!({}))
}

/// `POST /console/login`: opens a session and goes to the overview, or shows the form again.
pub(super) async fn submit(
    axum::extract::State(c): Ctx,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(login): Form<LoginForm>,
) -> Page {
    let source = peer.ip();
    if c.sessions.login_blocked(source) {
        tracing::warn!(%source, "console login refused: too many failures from this source");
        let ctx = serde_json::json!({ "error": "Too many failed logins from your address; wait a few minutes and try again.", "user": login.user });
        let mut response = render("login.html", ctx)?;
        *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
        return Ok(response);
    }
    let token = login.token.trim();
    let found = if token.is_empty() {
        let user = c.users.verify(&login.user, &login.password).await.map_err(|e| {
            tracing::error!(error = %e, "console login failed");
            ConsoleError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the login could not be checked; the server log says why",
            )
        })?;
        user.map(|u| (u.name, u.role, None))
    } else {
        c.tokens.authenticate(token).map(|a| (a.name, a.role, Some(token.to_string())))
    };
    let Some((name, role, token)) = found else {
        c.sessions.login_failed(source);
        tracing::warn!(%source, "console login failed");
        let ctx = serde_json::json!({ "error": "Wrong user name, password or token.", "user": login.user });
        let mut response = render("login.html", ctx)?;
        *response.status_mut() = StatusCode::UNAUTHORIZED;
        return Ok(response);
    };
    c.sessions.login_succeeded(source);
    let with = if token.is_some() { "API token" } else { "password" };
    tracing::info!(user = %name, %role, %source, with, "console login");
    // A new id at every login (never one the browser brought), and the session it had ends.
    if let Some(old) = cookie_id(&headers) {
        c.sessions.close(&old);
    }
    let id = c.sessions.open(name, role, token);
    Ok(([(header::SET_COOKIE, c.sessions.cookie(&id))], Redirect::to("/console/")).into_response())
}

/// `POST /console/logout`: ends the session (the CSRF check ran before).
pub(super) async fn logout(axum::extract::State(c): Ctx, headers: HeaderMap) -> Response {
    if let Some(id) = cookie_id(&headers) {
        c.sessions.close(&id);
    }
    ([(header::SET_COOKIE, c.sessions.cleared_cookie())], Redirect::to("/console/login")).into_response()
}
