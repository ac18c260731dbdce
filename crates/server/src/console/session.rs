//! Console sessions, the login throttle, and the checks every request passes.
//!
//! A session is a random 256-bit id in a cookie (`sipprov_console`: `HttpOnly`, so scripts
//! cannot read it; `SameSite=Strict`, so no other site's page makes the browser send it;
//! `Path=/console`; `Secure` when `console.secure_cookie` says a TLS proxy publishes the
//! console). The server keeps the session (user, role, CSRF token, times) in memory, keyed by
//! the SHA-256 of the id, at most `console.max_sessions` of them (the least recently used goes
//! first), each ending after `console.session_idle_secs` unused or `console.session_max_secs`
//! after login, or at logout. A restart ends every session.
//!
//! Every POST carries the session's CSRF token in a hidden form field and comes from the
//! console's own origin (`Origin`, else `Referer`, must name the host the request was sent
//! to); [`guard_posts`] refuses any other before a handler runs, so no handler can forget it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use sha2::{Digest, Sha256};
use sipprov_api::Role;
use subtle::ConstantTimeEq;

use super::{ConsoleError, ConsoleServices};
use crate::access::Actor;
use crate::config::ConsoleConfig;

/// The session cookie's name.
pub(super) const COOKIE: &str = "sipprov_console";

/// The largest form body read (a device's settings form is a few kilobytes).
const MAX_FORM_BYTES: usize = 256 * 1024;

/// Login throttle entries kept at most (one per source address).
const MAX_THROTTLED_SOURCES: usize = 10_000;

/// One logged-in user's session.
#[derive(Clone)]
pub(super) struct Session {
    /// The user's name.
    pub(super) user: String,
    /// What the user may do.
    pub(super) role: Role,
    /// The token every form of this session carries.
    pub(super) csrf: String,
    /// When the session opened (ms since the epoch), for [`crate::users::Users::still_valid`].
    pub(super) opened_at_ms: i64,
    /// For a login with an API token: the token, kept in server memory only (never sent back),
    /// so the session ends as soon as the token is revoked.
    token: Option<String>,
    opened: Instant,
    last_used: Instant,
}

/// The sessions and the login throttle.
pub(super) struct Sessions {
    config: ConsoleConfig,
    by_hash: Mutex<HashMap<[u8; 32], Session>>,
    failures: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    hex::encode(bytes)
}

fn id_hash(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

impl Sessions {
    /// No sessions yet.
    pub(super) fn new(config: ConsoleConfig) -> Sessions {
        Sessions { config, by_hash: Mutex::new(HashMap::new()), failures: Mutex::new(HashMap::new()) }
    }

    fn idle(&self) -> Duration {
        Duration::from_secs(self.config.session_idle_secs)
    }

    fn max_age(&self) -> Duration {
        Duration::from_secs(self.config.session_max_secs)
    }

    fn alive(&self, s: &Session, now: Instant) -> bool {
        now.duration_since(s.last_used) < self.idle() && now.duration_since(s.opened) < self.max_age()
    }

    /// Opens a session and returns its id (for the cookie only; the server keeps its hash).
    pub(super) fn open(&self, user: String, role: Role, token: Option<String>) -> String {
        let id = random_hex();
        let now = Instant::now();
        let session = Session {
            user,
            role,
            csrf: random_hex(),
            opened_at_ms: sipprov_store::now_ms(),
            token,
            opened: now,
            last_used: now,
        };
        let mut map = lock(&self.by_hash);
        map.retain(|_, s| self.alive(s, now));
        while map.len() >= self.config.max_sessions {
            let Some(oldest) = map.iter().min_by_key(|(_, s)| s.last_used).map(|(k, _)| *k) else { break };
            map.remove(&oldest);
        }
        map.insert(id_hash(&id), session);
        id
    }

    /// The live session of `id`, marked used now; an expired one is removed.
    pub(super) fn touch(&self, id: &str) -> Option<Session> {
        let now = Instant::now();
        let mut map = lock(&self.by_hash);
        let key = id_hash(id);
        let session = map.get_mut(&key)?;
        if !self.alive(session, now) {
            map.remove(&key);
            return None;
        }
        session.last_used = now;
        Some(session.clone())
    }

    /// Ends the session of `id`.
    pub(super) fn close(&self, id: &str) {
        lock(&self.by_hash).remove(&id_hash(id));
    }

    /// Whether `source` failed too often lately to try again now.
    pub(super) fn login_blocked(&self, source: IpAddr) -> bool {
        let window = Duration::from_secs(self.config.login_window_secs);
        let map = lock(&self.failures);
        map.get(&source).is_some_and(|(start, n)| start.elapsed() < window && *n >= self.config.login_failures)
    }

    /// Counts a failed login of `source`.
    pub(super) fn login_failed(&self, source: IpAddr) {
        let window = Duration::from_secs(self.config.login_window_secs);
        let now = Instant::now();
        let mut map = lock(&self.failures);
        if map.len() >= MAX_THROTTLED_SOURCES && !map.contains_key(&source) {
            map.retain(|_, (start, _)| now.duration_since(*start) < window);
            if map.len() >= MAX_THROTTLED_SOURCES {
                // Full of sources failing right now: forget the oldest rather than grow.
                if let Some(oldest) = map.iter().min_by_key(|(_, (start, _))| *start).map(|(ip, _)| *ip) {
                    map.remove(&oldest);
                }
            }
        }
        let entry = map.entry(source).or_insert((now, 0));
        if now.duration_since(entry.0) >= window {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }

    /// Forgets a source's failures after it logged in.
    pub(super) fn login_succeeded(&self, source: IpAddr) {
        lock(&self.failures).remove(&source);
    }

    /// The `Set-Cookie` value that gives the browser `id`.
    pub(super) fn cookie(&self, id: &str) -> String {
        let secure = if self.config.secure_cookie { "; Secure" } else { "" };
        format!(
            "{COOKIE}={id}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
            self.config.session_max_secs
        )
    }

    /// The `Set-Cookie` value that makes the browser forget the session.
    pub(super) fn cleared_cookie(&self) -> String {
        let secure = if self.config.secure_cookie { "; Secure" } else { "" };
        format!("{COOKIE}=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0{secure}")
    }
}

/// The session id the request's cookie carries, if any.
pub(super) fn cookie_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| *name == COOKIE && value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(|(_, value)| value.to_string())
}

/// The logged-in user a page is shown to. Extracting it redirects to the login page when the
/// request has no live session.
#[derive(Clone)]
pub(super) struct Viewer {
    /// The session.
    pub(super) session: Session,
}

impl Viewer {
    /// Refuses (403) unless the viewer's role grants what `needed` grants.
    pub(super) fn require(&self, needed: Role) -> Result<(), ConsoleError> {
        if self.session.role.at_least(needed) {
            Ok(())
        } else {
            Err(ConsoleError::new(
                StatusCode::FORBIDDEN,
                format!("this needs the {needed} role; {} is {}", self.session.user, self.session.role),
            ))
        }
    }

    /// Whether the viewer may do operator work (for showing or hiding buttons).
    pub(super) fn can(&self, needed: Role) -> bool {
        self.session.role.at_least(needed)
    }

    /// Who the audit trail names for this viewer's changes: the console user, or the API
    /// token's name for a token login.
    pub(super) fn actor(&self) -> Actor {
        Actor { name: self.session.user.clone(), role: self.session.role }
    }
}

impl FromRequestParts<Arc<ConsoleServices>> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, c: &Arc<ConsoleServices>) -> Result<Viewer, Response> {
        let session = cookie_id(&parts.headers).and_then(|id| c.sessions.touch(&id)).filter(|s| match &s.token {
            // A token session lives only as long as its token, with the token's current role.
            Some(token) => c.tokens.authenticate(token).is_some_and(|a| a.name == s.user && a.role == s.role),
            None => c.users.still_valid(&s.user, s.opened_at_ms),
        });
        match session {
            Some(session) => Ok(Viewer { session }),
            None => Err(Redirect::to("/console/login").into_response()),
        }
    }
}

/// Whether `Origin` (else `Referer`) names the host this request was sent to. A browser sends
/// `Origin` with every POST; a request with neither header is refused, since the console has
/// only its own forms to post.
pub(super) fn same_origin(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else { return false };
    let from = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER))
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let rest = from.strip_prefix("http://").or_else(|| from.strip_prefix("https://")).unwrap_or_default();
    let authority = rest.split('/').next().unwrap_or_default();
    !authority.is_empty() && authority.eq_ignore_ascii_case(host)
}

/// The `csrf` member of a URL-encoded form body.
fn form_token(body: &[u8]) -> Option<String> {
    form_urlencoded_pairs(body).find(|(k, _)| k == "csrf").map(|(_, v)| v)
}

fn form_urlencoded_pairs(body: &[u8]) -> impl Iterator<Item = (String, String)> + '_ {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body).unwrap_or_default().into_iter()
}

/// Whether `given` is `session`'s CSRF token (compared in constant time).
pub(super) fn csrf_matches(session: &Session, given: &str) -> bool {
    bool::from(given.as_bytes().ct_eq(session.csrf.as_bytes()))
}

/// Refuses every console POST that does not come from the console's own origin or, past the
/// login form, does not carry its session's CSRF token. Runs before any handler. The one
/// exception is the file upload form (`files::UPLOAD_PATH`), streamed rather than read here:
/// a session is still required, and its handler checks the token before reading the file.
pub(super) async fn guard_posts(State(c): State<Arc<ConsoleServices>>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    if !same_origin(req.headers()) {
        tracing::warn!(path = %req.uri().path(), "console POST refused: not from the console's origin");
        return ConsoleError::new(
            StatusCode::FORBIDDEN,
            "refused: this form was not sent from the console's own pages",
        )
        .into_response();
    }
    if req.uri().path() == "/console/login" {
        return next.run(req).await;
    }
    let session = cookie_id(req.headers()).and_then(|id| c.sessions.touch(&id));
    if req.uri().path() == super::files::UPLOAD_PATH {
        // A file upload is streamed, never read whole here: its handler checks the token, the
        // form's first field, before it reads the file.
        return match session {
            Some(_) => next.run(req).await,
            None => Redirect::to("/console/login").into_response(),
        };
    }
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_FORM_BYTES).await else {
        return ConsoleError::new(StatusCode::PAYLOAD_TOO_LARGE, "the form is too large").into_response();
    };
    let Some(session) = session else { return Redirect::to("/console/login").into_response() };
    let given = form_token(&bytes).unwrap_or_default();
    if !csrf_matches(&session, &given) {
        tracing::warn!(path = %parts.uri.path(), user = %session.user, "console POST refused: CSRF token missing or wrong");
        return ConsoleError::new(
            StatusCode::FORBIDDEN,
            "refused: the form's security token is missing or stale; reload the page and try again",
        )
        .into_response();
    }
    next.run(Request::from_parts(parts, axum::body::Body::from(bytes))).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ConsoleConfig {
        ConsoleConfig { max_sessions: 2, ..ConsoleConfig::default() }
    }

    #[test]
    fn sessions_are_bounded_and_closed() {
        let s = Sessions::new(config());
        let a = s.open("a".into(), Role::Admin, None);
        let b = s.open("b".into(), Role::Operator, None);
        assert!(s.touch(&b).is_some());
        let c = s.open("c".into(), Role::ReadOnly, None);
        assert!(s.touch(&a).is_none(), "the least recently used session made room");
        assert_eq!(s.touch(&c).map(|x| x.role), Some(Role::ReadOnly));
        s.close(&c);
        assert!(s.touch(&c).is_none());
        assert_eq!(a.len(), 64, "256 bits in hex");
    }

    #[test]
    fn the_cookie_carries_its_flags() {
        let s = Sessions::new(ConsoleConfig { secure_cookie: true, ..config() });
        let c = s.cookie("ab");
        for flag in ["HttpOnly", "SameSite=Strict", "Path=/console", "Secure"] {
            assert!(c.contains(flag), "{c}");
        }
        assert!(!Sessions::new(config()).cookie("ab").contains("Secure"));
    }

    #[test]
    fn the_throttle_counts_per_source() {
        let s = Sessions::new(ConsoleConfig { login_failures: 2, ..config() });
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        s.login_failed(ip);
        assert!(!s.login_blocked(ip));
        s.login_failed(ip);
        assert!(s.login_blocked(ip));
        assert!(!s.login_blocked("127.0.0.2".parse().unwrap()));
        s.login_succeeded(ip);
        assert!(!s.login_blocked(ip));
    }

    #[test]
    fn origins_are_compared_with_the_host() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, "127.0.0.1:8081".parse().unwrap());
        assert!(!same_origin(&h), "neither Origin nor Referer");
        h.insert(header::REFERER, "http://127.0.0.1:8081/console/devices".parse().unwrap());
        assert!(same_origin(&h));
        h.insert(header::ORIGIN, "http://evil.example".parse().unwrap());
        assert!(!same_origin(&h), "Origin wins over Referer");
        h.insert(header::ORIGIN, "http://127.0.0.1:8081".parse().unwrap());
        assert!(same_origin(&h));
    }
}
