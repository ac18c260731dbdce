//! Who may fetch a device's file: HTTP Digest/Basic per device or group, client certificates,
//! allow-lists, the first-fetch window, and the per-source failure throttle.
//!
//! The policy comes from the device's merged settings (global → group → device), the same ones
//! its templates render from, so the credentials the server checks are the ones the templates
//! write into the phone's config (`http.username`, `http.password`):
//!
//! | setting | meaning |
//! |---|---|
//! | `http.auth` | `digest` (SHA-256 then MD5 challenge), `digest-md5`, `basic`, `none`; default `digest` when credentials are set, else `none` |
//! | `http.username`, `http.password` | the credentials |
//! | `http.allow_basic_plain` | allow Basic over plain HTTP (refused by default: it sends the password in clear) |
//! | `http.allow_from` | comma-separated CIDR blocks the device may fetch from |
//!
//! Model-scoped common files are never authenticated: they hold no secrets and unknown phones
//! must be able to read them. Passwords never reach a log line, an error or the audit trail.

pub mod digest;
pub mod throttle;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use base64::Engine as _;
use sipprov_model::{parse_cidr, Cidr, Mac, Secret, Settings};
use sipprov_store::DeviceRecord;
use subtle::ConstantTimeEq;

use crate::config::SecurityConfig;
use digest::{Algorithm, DigestError, NonceKeeper};
use throttle::{Limits, Throttle};

const BOTH: &[Algorithm] = &[Algorithm::Sha256, Algorithm::Md5];
const MD5_ONLY: &[Algorithm] = &[Algorithm::Md5];

/// Server-wide security state: nonces, the throttle, operator unlocks.
pub struct Security {
    /// The `[security]` section it was built from.
    pub config: SecurityConfig,
    /// Digest nonces and the replay table.
    pub digest: NonceKeeper,
    /// Failures per source.
    pub throttle: Throttle,
    /// When an operator last re-opened each device's first-fetch window (epoch ms). In memory
    /// only: a restart closes re-opened windows, which fails safe.
    unlocks: Mutex<HashMap<Mac, i64>>,
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

/// The outcome for one request.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// Serve it; the text says how the requester was accepted (for the audit trail).
    Allow(&'static str),
    /// 401 with these `WWW-Authenticate` values. `failure` holds why, when it counts against the source.
    Challenge { headers: Vec<String>, failure: Option<&'static str> },
    /// 403. `failure` as above; `reason` is logged.
    Refuse { reason: &'static str, failure: bool },
}

#[derive(Debug, Clone, Copy)]
enum Scheme {
    None,
    Basic,
    Digest(&'static [Algorithm]),
}

/// A device's access policy, extracted once from its merged settings and cached until anything
/// that could change it does (the render cache's generation), so a request does no settings merge.
#[derive(Debug)]
pub struct Policy {
    scheme: Scheme,
    /// The user name and password (a [`Secret`], so this struct's `Debug` shows no password).
    credentials: Option<(String, Secret)>,
    allow_basic_plain: bool,
    allow_from: Option<Vec<Cidr>>,
}

impl Policy {
    /// Reads `http.*` from merged settings (values were validated when they were set).
    pub fn from_settings(settings: &Settings) -> Policy {
        let credentials =
            get(settings, "http.username").zip(get(settings, "http.password")).map(|(u, p)| (u.into(), Secret::new(p)));
        let scheme = match get(settings, "http.auth") {
            Some("digest") => Scheme::Digest(BOTH),
            Some("digest-md5") => Scheme::Digest(MD5_ONLY),
            Some("basic") => Scheme::Basic,
            Some(_) => Scheme::None,
            None if credentials.is_some() => Scheme::Digest(BOTH),
            None => Scheme::None,
        };
        let allow_from = get(settings, "http.allow_from")
            .map(|list| list.split(',').filter_map(|c| parse_cidr(c.trim()).ok()).map(|(net, _)| net).collect());
        Policy {
            scheme,
            credentials,
            allow_basic_plain: get(settings, "http.allow_basic_plain") == Some("1"),
            allow_from,
        }
    }
}

/// Policies by device, valid for one render-cache generation.
#[derive(Default)]
struct PolicyCache {
    generation: u64,
    policies: HashMap<Mac, Arc<Policy>>,
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
            unlocks: Mutex::new(HashMap::new()),
            policies: RwLock::new(PolicyCache::default()),
        }
    }

    /// The device's policy for cache generation `generation`, computed with `merged` on a miss.
    /// Bounded by the inventory: only known devices get here, and a new generation clears it.
    pub fn policy(&self, mac: Mac, generation: u64, merged: impl FnOnce() -> Settings) -> Arc<Policy> {
        {
            let cache = self.policies.read().unwrap_or_else(|e| e.into_inner());
            if cache.generation == generation {
                if let Some(p) = cache.policies.get(&mac) {
                    return p.clone();
                }
            }
        }
        let policy = Arc::new(Policy::from_settings(&merged()));
        let mut cache = self.policies.write().unwrap_or_else(|e| e.into_inner());
        if cache.generation != generation {
            // Only move forward: a request that read an older generation must not wipe newer entries.
            if cache.generation > generation {
                return policy;
            }
            cache.generation = generation;
            cache.policies.clear();
        }
        cache.policies.insert(mac, policy.clone());
        policy
    }

    /// Re-opens a device's first-fetch window from now (the caller records it in the store).
    pub fn unlock(&self, mac: Mac, now_ms: i64) {
        self.unlocks.lock().unwrap_or_else(|e| e.into_inner()).insert(mac, now_ms);
    }

    /// How far back a re-opened window may still be open: what a restart reloads
    /// ([`sipprov_store::Store::unlocks_since`]).
    pub fn unlocks_worth_keeping_since(&self, now_ms: i64) -> i64 {
        let window = i64::try_from(self.config.first_fetch_window_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        now_ms.saturating_sub(window)
    }

    /// Until when (epoch ms) a device may fetch without credentials, if the window is configured.
    pub fn window_closes_at(&self, device: &DeviceRecord) -> Option<i64> {
        if self.config.first_fetch_window_secs == 0 {
            return None;
        }
        let unlocked = self.unlocks.lock().unwrap_or_else(|e| e.into_inner()).get(&device.mac).copied();
        let opened = unlocked.unwrap_or(0).max(device.created_at);
        Some(opened.saturating_add(i64::try_from(self.config.first_fetch_window_secs * 1000).unwrap_or(i64::MAX)))
    }

    /// Decides whether a request for one of `device`'s own files may be served.
    pub fn decide(&self, device: &DeviceRecord, policy: &Policy, req: &RequestFacts<'_>, now_ms: i64) -> Decision {
        if let Some(nets) = &policy.allow_from {
            if !nets.iter().any(|net| net.contains(req.ip)) {
                return Decision::Refuse { reason: "source address outside http.allow_from", failure: true };
            }
        }
        if let Some(macs) = req.cert_macs {
            if macs.contains(&device.mac) {
                return Decision::Allow("client-certificate");
            }
            if !macs.is_empty() {
                return Decision::Refuse { reason: "client certificate names another device", failure: true };
            }
        }
        match (&policy.scheme, &policy.credentials) {
            (Scheme::None, _) => Decision::Allow("none"),
            (_, None) => Decision::Refuse {
                reason: "http.auth is set but http.username or http.password is missing",
                failure: false,
            },
            (scheme, Some((user, password))) => {
                self.check_credentials(scheme, (user, password.expose()), policy, device, req, now_ms)
            }
        }
    }

    fn check_credentials(
        &self,
        scheme: &Scheme,
        (user, password): (&str, &str),
        policy: &Policy,
        device: &DeviceRecord,
        req: &RequestFacts<'_>,
        now_ms: i64,
    ) -> Decision {
        if req.authorization.is_none() && self.window_closes_at(device).is_some_and(|end| now_ms < end) {
            return Decision::Allow("first-fetch-window");
        }
        match scheme {
            Scheme::None => Decision::Allow("none"),
            Scheme::Basic => {
                if !req.tls && !policy.allow_basic_plain {
                    return Decision::Refuse {
                        reason: "Basic authentication over plain HTTP is refused (use HTTPS or set http.allow_basic_plain=1)",
                        failure: false,
                    };
                }
                let challenge = |failure| Decision::Challenge {
                    headers: vec![format!("Basic realm=\"{}\", charset=\"UTF-8\"", self.config.realm)],
                    failure,
                };
                match req.authorization.and_then(|h| strip_scheme(h, "Basic")) {
                    None => challenge(None),
                    Some(b64) if basic_matches(b64, user, password) => Decision::Allow("basic"),
                    Some(_) => challenge(Some("wrong Basic credentials")),
                }
            }
            Scheme::Digest(algorithms) => {
                let Some(params) = req.authorization.and_then(|h| strip_scheme(h, "Digest")) else {
                    return self.digest_challenge(algorithms, false, None);
                };
                if params.len() > digest::MAX_HEADER {
                    return self.digest_challenge(algorithms, false, Some("oversized Digest header"));
                }
                let verified = digest::parse_params(params)
                    .and_then(|p| self.digest.verify(&p, user, password, req.method, req.uri, algorithms));
                match verified {
                    Ok(Algorithm::Sha256) => Decision::Allow("digest-sha256"),
                    Ok(Algorithm::Md5) => Decision::Allow("digest-md5"),
                    Err(DigestError::Stale) => self.digest_challenge(algorithms, true, None),
                    // A nonce from before a restart is not an attack: just challenge again.
                    Err(DigestError::UnknownNonce) => self.digest_challenge(algorithms, false, None),
                    Err(DigestError::Replay) => {
                        self.digest_challenge(algorithms, false, Some("replayed Digest nonce count"))
                    }
                    Err(DigestError::Wrong(why)) => self.digest_challenge(algorithms, false, Some(why)),
                    Err(DigestError::Malformed(_)) => {
                        self.digest_challenge(algorithms, false, Some("malformed Digest header"))
                    }
                }
            }
        }
    }

    fn digest_challenge(&self, algorithms: &[Algorithm], stale: bool, failure: Option<&'static str>) -> Decision {
        Decision::Challenge { headers: self.digest.challenges(algorithms, stale), failure }
    }

    /// What a request for a MAC the server does not know gets: the same challenge a known device
    /// with the global policy would get, so a scanner cannot tell known MACs from unknown ones;
    /// `None` (a plain 404) when the global policy asks for no authentication.
    pub fn unknown_device(&self, global: &Settings, req: &RequestFacts<'_>) -> Option<Decision> {
        let policy = Policy::from_settings(global);
        match policy.scheme {
            Scheme::None => None,
            Scheme::Basic if !req.tls && !policy.allow_basic_plain => Some(Decision::Refuse {
                reason: "Basic authentication over plain HTTP is refused (use HTTPS or set http.allow_basic_plain=1)",
                failure: true,
            }),
            Scheme::Basic => Some(Decision::Challenge {
                headers: vec![format!("Basic realm=\"{}\", charset=\"UTF-8\"", self.config.realm)],
                failure: Some("unknown device"),
            }),
            Scheme::Digest(algorithms) => Some(self.digest_challenge(algorithms, false, Some("unknown device"))),
        }
    }
}

fn get<'a>(settings: &'a Settings, key: &str) -> Option<&'a str> {
    settings.get(key).filter(|v| !v.is_empty())
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
