//! Who may fetch a device's file: HTTP Digest/Basic per device or group, client certificates,
//! allow-lists, the first-fetch window, open groups, and the per-source failure throttle.
//!
//! The policy comes from the device's merged settings (global → group → device), the same ones
//! its templates render from, so the credentials the server checks are the ones the templates
//! write into the phone's config (`http.username`, `http.password`):
//!
//! | setting | meaning |
//! |---|---|
//! | `http.auth` | `digest` (SHA-256 then MD5 challenge, the default), `digest-md5`, `basic`, `none` (no password opens the file) |
//! | `http.username`, `http.password` | the credentials; when neither is set and the vendor's file can carry them, the server generates them at the first fetch ([`window`]) |
//! | `http.allow_basic_plain` | allow Basic over plain HTTP (refused by default: it sends the password in clear) |
//! | `http.allow_from` | comma-separated CIDR blocks the device may fetch from |
//! | `security.open_device_files` | `1`: served to anyone without credentials (phones that cannot authenticate) |
//!
//! A device's files are closed by default: without credentials, a certificate or an open group,
//! only its first-fetch window lets a requester in. A device with no credentials is checked
//! against credentials nobody knows, and a MAC the server does not know gets what a device with
//! the global policy would get ([`Security::unknown_device`]), so until a requester
//! authenticates, known and unknown MACs get the same answers and count the same against it.
//!
//! Model-scoped common files are never authenticated: they hold no secrets and unknown phones
//! must be able to read them. Passwords never reach a log line, an error or the audit trail.

pub mod digest;
mod policy;
pub mod posture;
pub mod shared;
pub mod throttle;
pub mod window;

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use base64::Engine as _;
use sipprov_model::{Mac, MacMap};
use sipprov_store::DeviceRecord;
use subtle::ConstantTimeEq;

use crate::config::SecurityConfig;
use digest::{Algorithm, DigestError, NonceKeeper};
pub use policy::Policy;
use policy::Scheme;
use throttle::{Limits, Throttle};
use window::Windows;

/// Server-wide security state: nonces, the throttle, first-fetch windows.
pub struct Security {
    /// The `[security]` section it was built from.
    pub config: SecurityConfig,
    /// Digest nonces and the replay table.
    pub digest: NonceKeeper,
    /// Failures per source.
    pub throttle: Throttle,
    /// First-fetch windows re-opened and used, and generated credentials.
    pub windows: Windows,
    /// What a device without credentials is checked against: random per process and never
    /// disclosed, so no answer or count tells such a device from one with credentials.
    nobody: (String, String),
    policies: RwLock<PolicyCache>,
}

/// What the request brings that authentication looks at.
pub struct RequestFacts<'a> {
    /// `GET` or `HEAD` (Digest hashes it).
    pub method: &'a str,
    /// The request target as sent (path and query): Digest's `uri` must equal it.
    pub uri: &'a str,
    /// The `Authorization` header, if any (never logged).
    pub authorization: Option<&'a str>,
    /// Whether the request came over TLS.
    pub tls: bool,
    /// MACs named by a verified client certificate (`None`: no certificate).
    pub cert_macs: Option<&'a [Mac]>,
    /// The source address, for allow-lists and the throttle.
    pub ip: IpAddr,
}

/// Why a request was not let in; every one counts against the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    /// Logged and recorded (never a credential).
    pub reason: &'static str,
    /// No credentials were offered (or only a nonce that expired): what a phone's first,
    /// unauthenticated try looks like. Its successful retry as the same device takes one such
    /// failure back ([`throttle::Throttle::forgive`]), so phones behind one NAT never add up to a
    /// block.
    pub unauthenticated: bool,
}

/// The outcome for one request.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// Serve it; the text says how the requester was accepted (for the audit trail).
    Allow(&'static str),
    /// Serve it if the first-fetch window that opened at `opened_at` can still be claimed.
    FirstFetch {
        /// When the window opened (ms since the epoch), the claim's key.
        opened_at: i64,
    },
    /// 401 with these `WWW-Authenticate` values.
    Challenge {
        /// One `WWW-Authenticate` value per scheme offered.
        headers: Vec<String>,
        /// What the throttle counts.
        failure: Failure,
    },
    /// 403.
    Refuse(Failure),
}

/// Policies by device, valid for one render-cache generation.
///
/// Every device that fetched has an entry, so a million devices means a million entries: each
/// is a MAC and a pointer (a [`MacMap`] slot), and equal policies are one shared value. Most
/// devices inherit their access settings from their group or the global ones, so a fleet has a
/// few distinct policies; one allocation per device (about 128 bytes with its two strings'
/// headers) was 150 MB at a million.
#[derive(Default)]
struct PolicyCache {
    generation: u64,
    policies: MacMap<Arc<Policy>>,
    /// The distinct policies of this generation, at most [`MAX_SHARED_POLICIES`]: devices with
    /// credentials of their own each have their own policy, which sharing cannot help, and they
    /// must not make the set as large as the fleet.
    distinct: HashSet<Arc<Policy>>,
}

/// How many distinct policies are shared per generation (see [`PolicyCache`]); one more is kept
/// by its device alone.
const MAX_SHARED_POLICIES: usize = 1024;

impl PolicyCache {
    /// The shared copy of `policy` when there is one (or it becomes one), else `policy`.
    fn shared(&mut self, policy: Policy) -> Arc<Policy> {
        if let Some(same) = self.distinct.get(&policy) {
            return same.clone();
        }
        let policy = Arc::new(policy);
        if self.distinct.len() < MAX_SHARED_POLICIES {
            self.distinct.insert(policy.clone());
        }
        policy
    }
}

impl Security {
    /// Security state for a server with this configuration.
    pub fn new(config: &SecurityConfig) -> Security {
        let limits = Limits {
            max_failures: config.max_failures,
            window: Duration::from_secs(config.failure_window_secs),
            block: Duration::from_secs(config.block_secs),
        };
        Security {
            config: config.clone(),
            digest: NonceKeeper::new(&config.realm, config.nonce_lifetime_secs),
            throttle: Throttle::new(limits),
            windows: Windows::default(),
            nobody: (format!("nobody-{}", window::random_password()), window::random_password()),
            policies: RwLock::new(PolicyCache::default()),
        }
    }

    /// Adds the device's generated credentials (`window`) to `settings` when these name neither
    /// `http.username` nor `http.password` and the device's file can carry them.
    pub fn add_generated_credentials(&self, device: &DeviceRecord, settings: &mut sipprov_model::Settings) {
        use sipprov_model::known::{HTTP_PASSWORD, HTTP_USERNAME};
        let named = |key| settings.get_key(key).is_some_and(|v: &str| !v.is_empty());
        if named(&HTTP_USERNAME) || named(&HTTP_PASSWORD) {
            return;
        }
        let Some(generated) = self.windows.generated(device.mac) else { return };
        if crate::catalog::can_carry_credentials(device) {
            // Generated values are plain letters and digits, which every key accepts.
            let _ = settings.set(HTTP_USERNAME.name(), &generated.username);
            let _ = settings.set(HTTP_PASSWORD.name(), &generated.password);
        }
    }

    /// The device's policy for cache generation `generation`, computed with `merged` on a miss.
    /// Bounded by the inventory: only known devices get here, and a new generation clears it.
    pub fn policy(&self, mac: Mac, generation: u64, merged: impl FnOnce() -> sipprov_model::Settings) -> Arc<Policy> {
        {
            let cache = self.policies.read().unwrap_or_else(|e| e.into_inner());
            if cache.generation == generation {
                if let Some(p) = cache.policies.get(&mac) {
                    return p.clone();
                }
            }
        }
        let policy = Policy::from_settings(&merged());
        let mut cache = self.policies.write().unwrap_or_else(|e| e.into_inner());
        if cache.generation != generation {
            // Only move forward: a request that read an older generation must not wipe newer entries.
            if cache.generation > generation {
                return Arc::new(policy);
            }
            cache.generation = generation;
            cache.policies.clear();
            cache.distinct.clear();
        }
        let policy = cache.shared(policy);
        cache.policies.insert(mac, policy.clone());
        policy
    }

    /// Re-opens a device's first-fetch window from now (the caller records it in the store).
    pub fn unlock(&self, mac: Mac, now_ms: i64) {
        self.windows.unlock(mac, now_ms);
    }

    /// How far back a re-opened or used window still matters: what a restart reloads
    /// ([`sipprov_store::Store::unlocks_since`], [`sipprov_store::Store::first_fetches_since`]).
    pub fn unlocks_worth_keeping_since(&self, now_ms: i64) -> i64 {
        now_ms.saturating_sub(self.window_ms())
    }

    fn window_ms(&self) -> i64 {
        i64::try_from(self.config.first_fetch_window_secs.saturating_mul(1000)).unwrap_or(i64::MAX)
    }

    /// Until when (epoch ms) the device's current window lasts, used or not; `None` when windows
    /// are off.
    pub fn window_closes_at(&self, device: &DeviceRecord) -> Option<i64> {
        if self.config.first_fetch_window_secs == 0 {
            return None;
        }
        Some(self.windows.opened_at(device).saturating_add(self.window_ms()))
    }

    /// When the device's first-fetch window opened, if it is open at `now_ms` and not used yet.
    pub fn open_window(&self, device: &DeviceRecord, now_ms: i64) -> Option<i64> {
        let closes = self.window_closes_at(device)?;
        let opened = self.windows.opened_at(device);
        (now_ms < closes && !self.windows.is_used(device.mac, opened)).then_some(opened)
    }

    /// Decides whether a request for one of `mac`'s own files may be served. `window` is when
    /// its open first-fetch window opened ([`Security::open_window`]), if it has one.
    pub fn decide(&self, mac: Mac, policy: &Policy, req: &RequestFacts<'_>, window: Option<i64>) -> Decision {
        let failed = |reason| Failure { reason, unauthenticated: false };
        if let Some(nets) = &policy.allow_from {
            if !nets.iter().any(|net| net.contains(req.ip)) {
                return Decision::Refuse(failed("source address outside http.allow_from"));
            }
        }
        if let Some(macs) = req.cert_macs {
            if macs.contains(&mac) {
                return Decision::Allow("client-certificate");
            }
            if !macs.is_empty() {
                return Decision::Refuse(failed("client certificate names another device"));
            }
        }
        if policy.open {
            return Decision::Allow("open");
        }
        // Only a GET uses the window: a HEAD would close it without delivering anything.
        if let Some(opened_at) = window.filter(|_| req.authorization.is_none() && req.method == "GET") {
            return Decision::FirstFetch { opened_at };
        }
        let (user, password) = match &policy.credentials {
            Some((u, p)) => (u.as_str(), p.as_str()),
            None => (self.nobody.0.as_str(), self.nobody.1.as_str()),
        };
        self.check_credentials(policy, (user, password), req)
    }

    fn check_credentials(&self, policy: &Policy, (user, password): (&str, &str), req: &RequestFacts<'_>) -> Decision {
        let unauthenticated = |reason| Failure { reason, unauthenticated: true };
        let failed = |reason| Failure { reason, unauthenticated: false };
        match policy.scheme {
            Scheme::Basic => {
                if !req.tls && !policy.allow_basic_plain {
                    return Decision::Refuse(Failure {
                        reason: "Basic authentication over plain HTTP is refused (use HTTPS or set http.allow_basic_plain=1)",
                        unauthenticated: req.authorization.is_none(),
                    });
                }
                let challenge = |failure| Decision::Challenge {
                    headers: vec![format!("Basic realm=\"{}\", charset=\"UTF-8\"", self.config.realm)],
                    failure,
                };
                match req.authorization.and_then(|h| strip_scheme(h, "Basic")) {
                    None => challenge(unauthenticated("no credentials")),
                    Some(b64) if basic_matches(b64, user, password) => Decision::Allow("basic"),
                    Some(_) => challenge(failed("wrong Basic credentials")),
                }
            }
            Scheme::Digest(algorithms) => {
                let Some(params) = req.authorization.and_then(|h| strip_scheme(h, "Digest")) else {
                    return self.digest_challenge(algorithms, false, unauthenticated("no credentials"));
                };
                if params.len() > digest::MAX_HEADER {
                    return self.digest_challenge(algorithms, false, failed("oversized Digest header"));
                }
                let verified = digest::parse_params(params)
                    .and_then(|p| self.digest.verify(&p, user, password, req.method, req.uri, algorithms));
                match verified {
                    Ok(Algorithm::Sha256) => Decision::Allow("digest-sha256"),
                    Ok(Algorithm::Md5) => Decision::Allow("digest-md5"),
                    Err(DigestError::Stale) => self.digest_challenge(algorithms, true, unauthenticated("stale nonce")),
                    // A nonce from before a restart is not an attack: just challenge again.
                    Err(DigestError::UnknownNonce) => {
                        self.digest_challenge(algorithms, false, unauthenticated("unknown nonce"))
                    }
                    Err(DigestError::Replay) => {
                        self.digest_challenge(algorithms, false, failed("replayed Digest nonce count"))
                    }
                    Err(DigestError::Wrong(why)) => self.digest_challenge(algorithms, false, failed(why)),
                    Err(DigestError::Malformed(_)) => {
                        self.digest_challenge(algorithms, false, failed("malformed Digest header"))
                    }
                }
            }
        }
    }

    /// Whether [`Security::confirm`] may change `decision`: an allowed Digest answer when the
    /// nonce counts are shared with other nodes. Anything else it returns as it is, so a caller
    /// may skip it (and its future).
    pub fn confirms(&self, policy: &Policy, decision: &Decision) -> bool {
        self.digest.shares_counts()
            && matches!((decision, policy.scheme), (Decision::Allow(how), Scheme::Digest(_)) if how.starts_with("digest"))
    }

    /// On PostgreSQL, checks with the other nodes that a Digest acceptance from
    /// [`Security::decide`] is not a replay (see [`NonceKeeper::confirm_count`]); turns it into
    /// the challenge a replay (or a nonce the full table cannot take) gets otherwise. Any other
    /// decision passes unchanged.
    pub async fn confirm(&self, policy: &Policy, req: &RequestFacts<'_>, decision: Decision) -> Decision {
        let (Decision::Allow(how), Scheme::Digest(algorithms)) = (&decision, policy.scheme) else { return decision };
        if !how.starts_with("digest") {
            return decision;
        }
        let Some(params) = req.authorization.and_then(|h| strip_scheme(h, "Digest")) else { return decision };
        match self.digest.confirm_count(params).await {
            Ok(()) => decision,
            Err(DigestError::Stale) => {
                self.digest_challenge(algorithms, true, Failure { reason: "stale nonce", unauthenticated: true })
            }
            Err(_) => self.digest_challenge(
                algorithms,
                false,
                Failure { reason: "replayed Digest nonce count", unauthenticated: false },
            ),
        }
    }

    fn digest_challenge(&self, algorithms: &[Algorithm], stale: bool, failure: Failure) -> Decision {
        Decision::Challenge { headers: self.digest.challenges(algorithms, stale), failure }
    }

    /// What a request naming `mac`, which the server does not know, gets: exactly what a known
    /// device with the global policy, no credentials of its own and no open window would get
    /// (401, or 403), so a scanner cannot tell known MACs from unknown ones. `None` (a plain
    /// 404) only for a requester that got past that policy: its certificate names `mac`, it
    /// knows the global credentials, or device files are open to all. Either way the request
    /// counts against the source (the caller counts it).
    pub fn unknown_device(
        &self,
        global: &sipprov_model::Settings,
        mac: Mac,
        req: &RequestFacts<'_>,
    ) -> Option<Decision> {
        let policy = Policy::from_settings(global);
        match self.decide(mac, &policy, req, None) {
            Decision::Allow(_) | Decision::FirstFetch { .. } => None,
            other => Some(other),
        }
    }
}

/// The part after `Scheme ` when the header uses that scheme (case-insensitive).
fn strip_scheme<'a>(header: &'a str, scheme: &str) -> Option<&'a str> {
    let header = header.trim_start();
    let head = header.get(..scheme.len())?;
    let rest = &header[scheme.len()..];
    (head.eq_ignore_ascii_case(scheme) && rest.starts_with(' ')).then(|| rest.trim())
}

fn basic_matches(b64: &str, user: &str, password: &str) -> bool {
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(b64.trim()) else { return false };
    let expected = format!("{user}:{password}");
    bool::from(decoded.as_slice().ct_eq(expected.as_bytes()))
}

#[cfg(test)]
mod tests;
