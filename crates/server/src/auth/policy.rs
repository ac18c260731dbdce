//! A device's access policy, read from its merged settings.

use sipprov_model::known::{self, HttpAuth};
use sipprov_model::{parse_cidr, Cidr, Settings};

use super::digest::Algorithm;

pub(super) const BOTH: &[Algorithm] = &[Algorithm::Sha256, Algorithm::Md5];
const MD5_ONLY: &[Algorithm] = &[Algorithm::Md5];

/// How a requester proves it holds the credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Scheme {
    Basic,
    Digest(&'static [Algorithm]),
}

/// A device's access policy, extracted once from its merged settings (generated credentials
/// included) and cached until anything that could change it does. Its `Debug` never shows the
/// password. Equal policies are one shared value in the cache (`PolicyCache`): every device
/// that inherits its group's settings has its group's policy.
#[derive(PartialEq, Eq)]
pub struct Policy {
    pub(super) scheme: Scheme,
    /// `None`: the device has no credentials (none set, none generated, or `http.auth=none`), so
    /// no password can open it; it is checked against credentials nobody knows, which makes it
    /// answer exactly as a device with credentials would.
    pub(super) credentials: Option<(String, String)>,
    pub(super) allow_basic_plain: bool,
    pub(super) allow_from: Option<Vec<Cidr>>,
    /// `security.open_device_files = 1`: served to anyone, without credentials.
    pub(super) open: bool,
}

impl Policy {
    /// Reads `http.*` and `security.open_device_files` from merged settings (values were
    /// validated when they were set).
    pub fn from_settings(settings: &Settings) -> Policy {
        let credentials = get(settings, &known::HTTP_USERNAME)
            .zip(get(settings, &known::HTTP_PASSWORD))
            .map(|(u, p)| (u.into(), p.into()));
        let (scheme, credentials) = match settings.get_key(&known::HTTP_AUTH) {
            Some(HttpAuth::DigestMd5) => (Scheme::Digest(MD5_ONLY), credentials),
            Some(HttpAuth::Basic) => (Scheme::Basic, credentials),
            // No password scheme: only a certificate, the first-fetch window or an open group.
            Some(HttpAuth::None) => (Scheme::Digest(BOTH), None),
            Some(HttpAuth::Digest) | None => (Scheme::Digest(BOTH), credentials),
        };
        let allow_from = get(settings, &known::HTTP_ALLOW_FROM)
            .map(|list| list.split(',').filter_map(|c| parse_cidr(c.trim()).ok()).map(|(net, _)| net).collect());
        Policy {
            scheme,
            credentials,
            allow_basic_plain: settings.get_key(&known::HTTP_ALLOW_BASIC_PLAIN) == Some(true),
            allow_from,
            open: settings.get_key(&known::OPEN_DEVICE_FILES) == Some(true),
        }
    }

    /// True when nothing but the first-fetch window or a client certificate lets a requester
    /// in: no credentials and not open.
    pub fn is_locked(&self) -> bool {
        self.credentials.is_none() && !self.open
    }

    /// True when the files are served to anyone (`security.open_device_files = 1`).
    pub fn is_open(&self) -> bool {
        self.open
    }
}

/// Equal policies hash equally: every field but the allow-list's networks, of which only the
/// count (a device's own allow-list is rare; equality still compares them).
impl std::hash::Hash for Policy {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.scheme.hash(state);
        self.credentials.hash(state);
        self.allow_basic_plain.hash(state);
        self.allow_from.as_ref().map(Vec::len).hash(state);
        self.open.hash(state);
    }
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy")
            .field("scheme", &self.scheme)
            .field("username", &self.credentials.as_ref().map(|(user, _)| user))
            .field("password", &self.credentials.as_ref().map(|_| "********"))
            .field("allow_basic_plain", &self.allow_basic_plain)
            .field("allow_from", &self.allow_from)
            .field("open", &self.open)
            .finish()
    }
}

/// A text key's value, an empty one counting as unset.
fn get<'a>(settings: &'a Settings, key: &known::Key<known::Text>) -> Option<&'a str> {
    settings.get_key(key).filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    #[test]
    fn debug_hides_the_password() {
        let settings =
            sipprov_model::Settings::parse_assignments(["http.username=u", "http.password=hunter22"]).unwrap();
        let text = format!("{:?}", super::Policy::from_settings(&settings));
        assert!(text.contains("\"u\"") && !text.contains("hunter22"), "{text}");
    }
}
