//! Setting keys, their validation, and the global → group → device merge.
//!
//! Keys come in five kinds (see [`KeyKind`]): per-line account keys
//! (`line.N.field`), programmable keys (`key.N.field`, `expansion.M.key.N.field`: see
//! [`crate::keys`]), the vendor-neutral keys every phone needs
//! (`provisioning.url`, `time.zone`, …), raw vendor parameters
//! (`vendor.<raw-name>`), and free keys. Values are
//! single-line text: a newline in a value could inject extra parameters into
//! a `key = value` config file, so control characters are refused outright.
//!
//! This crate names no vendor. A key under a namespace it does not reserve (`yealink.aes_key`,
//! `fanvil.dialect`, a template's own `site.floor`) is a free key here, checked only for its
//! shape and for control characters. A crate above may own such a namespace and validate its
//! keys on top: the vendors crate does so for each vendor module's keys
//! (`sipprov_vendors::validate_setting`), and every entry point that accepts settings from
//! outside (admin API, CLI, CSV import) goes through it. The dependency points one way: model ←
//! vendors ← server.

use std::borrow::Cow;

use crate::secret::{redact_uri_password, REDACTED};
use crate::sorted_map::{Builder, SortedMap};

/// The highest line (account) number accepted in `line.N.*` keys.
pub const MAX_LINES: u32 = 99;
const MAX_KEY_LEN: usize = 128;
const MAX_VALUE_LEN: usize = 4096;

/// The fields of a `line.N.*` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LineField {
    /// Name shown on the phone and sent in From.
    DisplayName,
    /// SIP user part of the account (the extension).
    Username,
    /// Digest user name when it differs from the user part.
    AuthUsername,
    /// Digest password (a secret).
    Password,
    /// Registrar host name or address.
    Registrar,
    /// Registrar port.
    Port,
    /// `udp`, `tcp` or `tls`.
    Transport,
    /// Label on the line key, when it should differ from the user name.
    Label,
}

impl LineField {
    /// Every field, in the order templates list them.
    pub const ALL: [LineField; 8] = [
        LineField::DisplayName,
        LineField::Username,
        LineField::AuthUsername,
        LineField::Password,
        LineField::Registrar,
        LineField::Port,
        LineField::Transport,
        LineField::Label,
    ];

    /// The key segment, e.g. `auth_username`.
    pub fn name(self) -> &'static str {
        match self {
            LineField::DisplayName => "display_name",
            LineField::Username => "username",
            LineField::AuthUsername => "auth_username",
            LineField::Password => "password",
            LineField::Registrar => "registrar",
            LineField::Port => "port",
            LineField::Transport => "transport",
            LineField::Label => "label",
        }
    }

    fn parse(s: &str) -> Option<LineField> {
        LineField::ALL.into_iter().find(|f| f.name() == s)
    }
}

/// The vendor-neutral keys outside `line.N.*` that have a fixed meaning.
pub const KNOWN_KEYS: &[&str] = &[
    "provisioning.url",
    "provisioning.interval_minutes",
    "time.zone",
    "time.ntp_server",
    "admin.password",
    "firmware.url",
    // Resource files the phone downloads from the URL given (README, "Settings"); each vendor writes
    // the parameters that make its phones fetch them, or refuses the key on its devices.
    "ringtone.url",
    "wallpaper.url",
    "language.url",
    "directory.url",
    // Server-side names the server turns into the URLs above at render time (README, "Phone
    // directories and resource files"): a directory's name, and file catalog names by kind.
    "directory.name",
    "ringtone.file",
    "wallpaper.file",
    "language.file",
    // The firmware version a device should run (server-side: the catalog maps it to a file).
    "firmware.version",
    "sip.notify_reboot",
    "sip.check_sync_event",
    "sip.reboot_event",
    // The name a phone's TLS certificate must carry for check-sync over TLS: host, mac or a name.
    "sip.tls_name",
    // Provisioning security (README, "Security"): the device's HTTP credentials, which the server checks and
    // the templates also write into the vendor's config so the phone keeps authenticating.
    "http.username",
    "http.password",
    "http.auth",
    "http.allow_basic_plain",
    "http.allow_from",
    // Plug-and-Play (README, "Plug-and-Play"): `1` puts the device's HTTP credentials into the URL its PnP
    // NOTIFY carries. Off by default: that NOTIFY is unauthenticated plain UDP.
    "pnp.url_credentials",
    // `1`: the device's files are served to anyone who asks, without credentials (README, "Security"), for
    // phones that cannot authenticate. Off by default; the server logs at start-up who is open.
    "security.open_device_files",
];

/// The namespaces whose keys are all listed in [`KNOWN_KEYS`]: any other key in them is a typo
/// and refused. (`sip.*` is not among them: its free keys predate the known ones.)
pub const RESERVED_NAMESPACES: &[&str] = &[
    "provisioning",
    "time",
    "admin",
    "firmware",
    "ringtone",
    "wallpaper",
    "language",
    "directory",
    "http",
    "pnp",
    "security",
];

/// The values `http.auth` accepts: `digest` (SHA-256 and MD5 challenges), `digest-md5` (MD5 only,
/// for firmware that stops at an algorithm it does not know), `basic`, or `none`.
pub const HTTP_AUTH_SCHEMES: &[&str] = &["digest", "digest-md5", "basic", "none"];

/// What a setting key is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyKind {
    /// `line.N.field`.
    Line {
        /// The line number, from 1.
        index: u32,
        /// Which field of the line.
        field: LineField,
    },
    /// `key.N.field` or `expansion.M.key.N.field`: a programmable key ([`crate::keys`]).
    Key {
        /// Which key: its number, and its expansion module if any.
        pos: crate::KeyPos,
        /// Which field of the key.
        field: crate::KeyField,
    },
    /// One of [`KNOWN_KEYS`].
    Known(&'static str),
    /// `vendor.<raw>`: written verbatim under the vendor's own parameter name.
    Vendor(String),
    /// Any other well-formed key: a free key for templates, or a key of a namespace another
    /// crate owns and validates (a vendor module's `yealink.*`).
    Custom,
}

/// Why a setting was refused. The message names the key, never a value: any value may be a
/// secret (a raw vendor parameter's name does not say), and errors end up in terminals and logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingError {
    /// The key itself is not acceptable.
    #[error("setting key {key:?} is malformed: {reason}")]
    BadKey {
        /// The key as given.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The key is fine, its value is not (the value is never quoted).
    #[error("setting {key:?} has an invalid value: {reason}")]
    BadValue {
        /// The key whose value was refused.
        key: String,
        /// What the value must be.
        reason: String,
    },
    /// An argument without `=`. It is not repeated: `line.1.password:hunter2` is exactly the
    /// mistake that puts a secret in it. `hint` names the key when the part before a `:` is one.
    #[error(
        "setting argument {position} is not of the form KEY=VALUE (not shown, in case it holds a secret){}",
        hint.as_ref().map(|k| format!("; to set {k}, write {k}=VALUE")).unwrap_or_default()
    )]
    NotAssignment {
        /// The argument's position, from 1.
        position: usize,
        /// The key it seems to be about, when recognisable.
        hint: Option<String>,
    },
}

impl SettingError {
    /// The error for the `position`th (1-based) argument `item`, which has no `=`.
    fn not_assignment(position: usize, item: &str) -> SettingError {
        let hint = item.split_once(':').map(|(k, _)| k.trim()).filter(|k| classify(k).is_ok()).map(str::to_string);
        SettingError::NotAssignment { position, hint }
    }
}

/// Classifies and checks a key.
///
/// ```
/// use sipprov_model::{KeyKind, LineField, Settings};
/// # use sipprov_model::SettingError;
/// assert_eq!(Settings::classify("line.2.port").unwrap(), KeyKind::Line { index: 2, field: LineField::Port });
/// assert!(Settings::classify("line.0.port").is_err());
/// assert!(Settings::classify("line.1.colour").is_err());
/// assert_eq!(Settings::classify("vendor.static.wallpaper_upload").unwrap(), KeyKind::Vendor("static.wallpaper_upload".into()));
/// ```
fn classify(key: &str) -> Result<KeyKind, SettingError> {
    let bad = |reason: &str| SettingError::BadKey { key: key.to_string(), reason: reason.to_string() };
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(bad(&format!("must be 1 to {MAX_KEY_LEN} characters")));
    }
    if let Some(raw) = key.strip_prefix("vendor.") {
        if raw.is_empty() || raw.chars().any(|c| c.is_whitespace() || c.is_control() || c == '=' || c == '"') {
            return Err(bad("a vendor parameter name must be non-empty, without spaces, quotes or '='"));
        }
        return Ok(KeyKind::Vendor(raw.to_string()));
    }
    // Bytes, not chars: a byte of a multi-byte character is never one of these either. And the
    // empty segment looked for pairwise: `str::contains` sets up a substring searcher per call,
    // which cost more than the rest of the check (every rendering classifies its keys).
    if !key.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) {
        return Err(bad("only letters, digits, '.', '_' and '-' are allowed"));
    }
    if key.starts_with('.') || key.ends_with('.') || key.as_bytes().windows(2).any(|w| w == b"..") {
        return Err(bad("empty segment between dots"));
    }
    if let Some(rest) = key.strip_prefix("line.") {
        let (index, field) = rest.split_once('.').ok_or_else(|| bad("expected line.N.FIELD"))?;
        let index: u32 = index.parse().map_err(|_| bad("the line number must be a whole number"))?;
        if !(1..=MAX_LINES).contains(&index) {
            return Err(bad(&format!("line numbers run from 1 to {MAX_LINES}")));
        }
        let field = LineField::parse(field).ok_or_else(|| {
            let names: Vec<_> = LineField::ALL.iter().map(|f| f.name()).collect();
            bad(&format!("unknown line field; known fields: {}", names.join(", ")))
        })?;
        return Ok(KeyKind::Line { index, field });
    }
    if key.starts_with("key.") || key.starts_with("expansion.") {
        let (pos, field) = crate::keys::parse_key(key).map_err(|e| bad(&e))?;
        return Ok(KeyKind::Key { pos, field });
    }
    if let Some(known) = KNOWN_KEYS.iter().find(|k| **k == key) {
        return Ok(KeyKind::Known(known));
    }
    let prefix = key.split('.').next().unwrap_or_default();
    if RESERVED_NAMESPACES.contains(&prefix) {
        return Err(bad(&format!(
            "unknown key in the reserved {prefix}.* namespace; known keys: {}",
            KNOWN_KEYS.join(", ")
        )));
    }
    Ok(KeyKind::Custom)
}

/// True when a key holds a secret that must never appear in logs or listings.
///
/// ```
/// assert!(sipprov_model::is_secret_key("line.1.password"));
/// assert!(sipprov_model::is_secret_key("vendor.Register_Pswd"));
/// assert!(!sipprov_model::is_secret_key("line.1.username"));
/// ```
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["password", "passwd", "pswd", "secret", "aes_key", "token"].iter().any(|s| k.contains(s))
}

/// Parses a boolean setting value: `1`/`0`, `true`/`false`, `yes`/`no`, `on`/`off` (any case),
/// normalised to `"1"` or `"0"`; the error says what is accepted (never the value).
///
/// ```
/// assert_eq!(sipprov_model::parse_flag("Yes"), Ok("1"));
/// assert!(sipprov_model::parse_flag("maybe").is_err());
/// ```
pub fn parse_flag(value: &str) -> Result<&'static str, &'static str> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok("1"),
        "0" | "false" | "no" | "off" => Ok("0"),
        _ => Err("must be a boolean (1/0, true/false, yes/no, on/off)"),
    }
}

fn validate_value(key: &str, kind: &KeyKind, value: &str) -> Result<String, SettingError> {
    let bad = |reason: &str| SettingError::BadValue { key: key.to_string(), reason: reason.to_string() };
    if value.len() > MAX_VALUE_LEN {
        return Err(bad(&format!("longer than {MAX_VALUE_LEN} bytes")));
    }
    if value.chars().any(|c| c.is_control()) {
        return Err(bad("control characters (such as newlines) are not allowed"));
    }
    match kind {
        KeyKind::Key { field, .. } => crate::keys::validate_field(*field, value).map_err(|e| bad(&e)),
        KeyKind::Line { field: LineField::Port, .. } => {
            let port: u32 = value.parse().map_err(|_| bad("a port must be a number"))?;
            if !(1..=65535).contains(&port) {
                return Err(bad("a port must be between 1 and 65535"));
            }
            Ok(port.to_string())
        }
        KeyKind::Line { field: LineField::Transport, .. } => {
            let t = value.to_ascii_lowercase();
            if !["udp", "tcp", "tls"].contains(&t.as_str()) {
                return Err(bad("transport must be udp, tcp or tls"));
            }
            Ok(t)
        }
        KeyKind::Line { field: LineField::Registrar, .. } => crate::known::host_name(value).map_err(|e| bad(&e)),
        KeyKind::Known(name) => match crate::known::def(name) {
            Some(def) => (def.check)(value).map_err(|e| bad(&e)),
            None => Ok(value.to_string()),
        },
        _ => Ok(value.to_string()),
    }
}

/// Parses `ADDRESS` or `ADDRESS/PREFIX` (IPv4 or IPv6) into the network and its canonical text.
///
/// ```
/// let (net, text) = sipprov_model::parse_cidr("10.1.2.3/8").unwrap();
/// assert_eq!(text, "10.0.0.0/8");
/// assert!(net.contains("10.200.0.1".parse().unwrap()) && !net.contains("11.0.0.1".parse().unwrap()));
/// assert!(sipprov_model::parse_cidr("10.0.0.0/33").is_err());
/// ```
pub fn parse_cidr(text: &str) -> Result<(Cidr, String), CidrError> {
    let (addr, prefix) = match text.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (text, None),
    };
    let addr: std::net::IpAddr = addr.parse().map_err(|_| CidrError::NotAnAddress(text.to_string()))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        Some(p) => p
            .parse::<u8>()
            .ok()
            .filter(|p| *p <= max)
            .ok_or_else(|| CidrError::BadPrefix { text: text.to_string(), max })?,
        None => max,
    };
    let net = Cidr { addr: mask(addr, prefix), prefix };
    Ok((net, format!("{}/{}", net.addr, prefix)))
}

/// Why a text is not an address or CIDR block.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    /// The part before any `/` is not an IP address.
    #[error("{0:?} is not an IP address or CIDR block")]
    NotAnAddress(String),
    /// The prefix length is not a number within the address family's bits.
    #[error("{text:?}: prefix must be 0 to {max}")]
    BadPrefix {
        /// The text given.
        text: String,
        /// 32 for IPv4, 128 for IPv6.
        max: u8,
    },
}

/// An IP network (address and prefix length), for allow-lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: std::net::IpAddr,
    prefix: u8,
}

impl Cidr {
    /// True when `ip` is inside this network (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        let ip = match ip {
            std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, std::net::IpAddr::V4),
            v4 => v4,
        };
        ip.is_ipv4() == self.addr.is_ipv4() && mask(ip, self.prefix) == self.addr
    }

    /// The network of `addr` with `prefix` bits (clamped to the family's length), e.g. an
    /// interface's address and netmask.
    pub fn new(addr: std::net::IpAddr, prefix: u8) -> Cidr {
        let prefix = prefix.min(if addr.is_ipv4() { 32 } else { 128 });
        Cidr { addr: mask(addr, prefix), prefix }
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

fn mask(ip: std::net::IpAddr, prefix: u8) -> std::net::IpAddr {
    match ip {
        std::net::IpAddr::V4(a) => {
            let m = if prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(prefix)) };
            std::net::IpAddr::V4((u32::from(a) & m).into())
        }
        std::net::IpAddr::V6(a) => {
            let m = if prefix == 0 { 0 } else { u128::MAX << (128 - u32::from(prefix)) };
            std::net::IpAddr::V6((u128::from(a) & m).into())
        }
    }
}

/// A validated set of settings at one level (global, group or device), or a merge of levels.
///
/// Kept sorted by key so iteration order, and therefore rendered output, is stable. Its `Debug`
/// redacts (see [`Settings::debug_redacts`]), so a struct holding settings can derive `Debug`.
#[derive(Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Settings(SortedMap);

impl std::fmt::Debug for Settings {
    /// Keys in full; values as [`Settings::redacted_by`] shows them with
    /// [`Settings::debug_redacts`] as the rule.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = self.redacted_by(Settings::debug_redacts);
        f.debug_map().entries(shown.iter()).finish()
    }
}

/// Where settings are read from, key by key: one level's [`Settings`], or the levels of a
/// device read through ([`Layered`]). What [`crate::known::Key::get`] and the check-sync's
/// readers take, so that a reader never needs a merged copy.
pub trait SettingsView {
    /// The value of a key.
    fn get(&self, key: &str) -> Option<&str>;
}

impl SettingsView for Settings {
    fn get(&self, key: &str) -> Option<&str> {
        Settings::get(self, key)
    }
}

/// A device's levels (global, group, device) read as their merge: each key from the last
/// level that sets it. A check-sync reads four or five keys of a device; merging even only
/// the keys it might read ([`Settings::merged_keys`]) built and packed a set per NOTIFY, and
/// looked each key up in it again, about 5,000 instructions a device of a campaign
/// (callgrind, bench/sip-instructions.sh), where reading through the levels is a search per
/// level for the keys read.
///
/// ```
/// use sipprov_model::{Settings, SettingsView};
/// let global = Settings::parse_assignments(["line.1.registrar=pbx", "time.zone=UTC+1"]).unwrap();
/// let group = Settings::parse_assignments(["time.zone=UTC+2"]).unwrap();
/// let own = Settings::parse_assignments(["line.1.registrar=pbx2"]).unwrap();
/// let levels = Settings::layered(&global, &group, &own);
/// assert_eq!(levels.get("line.1.registrar"), Some("pbx2"));
/// assert_eq!(levels.get("time.zone"), Some("UTC+2"));
/// assert_eq!(levels.get("line.1.username"), None);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Layered<'a> {
    /// Device first: the first level that sets a key wins.
    levels: [&'a Settings; 3],
}

impl<'a> Layered<'a> {
    /// The value of a key, from the last level (of global, group, device) that sets it.
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.levels.iter().find_map(|level| level.get(key))
    }
}

impl SettingsView for Layered<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        Layered::get(self, key)
    }
}

impl Settings {
    /// An empty set.
    pub fn new() -> Self {
        Settings(SortedMap::default())
    }

    /// Classifies a key, refusing malformed ones with a message naming them.
    pub fn classify(key: &str) -> Result<KeyKind, SettingError> {
        classify(key)
    }

    /// The value of a known key, read as its kind ([`crate::known`]).
    pub fn get_key<K: crate::known::ValueKind>(&self, key: &crate::known::Key<K>) -> Option<K::Value<'_>> {
        key.get(self)
    }

    /// Validates a key and value, returning the normalised value (`TCP` → `tcp`).
    ///
    /// ```
    /// use sipprov_model::Settings;
    /// assert_eq!(Settings::validate("line.1.transport", "TLS").unwrap(), "tls");
    /// assert!(Settings::validate("line.1.port", "70000").is_err());
    /// assert!(Settings::validate("time.zone", "a\nb").is_err());
    /// ```
    pub fn validate(key: &str, value: &str) -> Result<String, SettingError> {
        let kind = classify(key)?;
        validate_value(key, &kind, value)
    }

    /// Sets a key after validation; an empty value removes the key.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), SettingError> {
        if value.is_empty() {
            classify(key)?;
            self.0.remove(key);
            return Ok(());
        }
        let value = Self::validate(key, value)?;
        self.0.insert(key, value);
        Ok(())
    }

    /// Parses `KEY=VALUE` assignments (the CLI form) into a validated set.
    /// An empty value (`KEY=`) is kept as an empty string, meaning "remove".
    ///
    /// ```
    /// let s = sipprov_model::Settings::parse_assignments(["line.1.username=1001", "time.zone="]).unwrap();
    /// assert_eq!(s.get("line.1.username"), Some("1001"));
    /// assert_eq!(s.get("time.zone"), Some(""));
    /// ```
    pub fn parse_assignments<'a>(items: impl IntoIterator<Item = &'a str>) -> Result<Settings, SettingError> {
        let mut out = Builder::default();
        for (i, item) in items.into_iter().enumerate() {
            let (key, value) = item.split_once('=').ok_or_else(|| SettingError::not_assignment(i + 1, item))?;
            let key = key.trim();
            let value = if value.is_empty() {
                classify(key)?;
                String::new()
            } else {
                Self::validate(key, value)?
            };
            out.insert(key, value);
        }
        Ok(Settings(out.finish()))
    }

    /// Applies a patch: each empty value removes the key, others overwrite it.
    pub fn apply(&mut self, patch: &Settings) {
        if patch.is_empty() {
            return;
        }
        let applied = {
            let mut out = Builder::with_capacity(self.len() + patch.len());
            for (k, v) in self.0.entries() {
                out.insert_shared(k, Cow::Borrowed(v));
            }
            for (k, v) in patch.0.entries() {
                if v.is_empty() {
                    out.remove(k.as_str());
                } else {
                    out.insert_shared(k, Cow::Borrowed(v));
                }
            }
            out.finish()
        };
        self.0 = applied;
    }

    /// Re-validates every entry (used on data read from outside, e.g. JSON from the API).
    pub fn validated(self) -> Result<Settings, SettingError> {
        let mut out = Builder::with_capacity(self.len());
        for (k, v) in self.0.entries() {
            let v = if v.is_empty() {
                classify(k.as_str())?;
                Cow::Borrowed(v)
            } else {
                Cow::Owned(Self::validate(k.as_str(), v)?)
            };
            out.insert_shared(k, v);
        }
        Ok(Settings(out.finish()))
    }

    /// Like [`Settings::merged`] for a few keys only: a check-sync needs half a dozen of a
    /// device's settings, not a copy of all of them.
    ///
    /// ```
    /// use sipprov_model::Settings;
    /// let global = Settings::parse_assignments(["line.1.registrar=pbx", "time.zone=UTC+1"]).unwrap();
    /// let own = Settings::parse_assignments(["line.1.registrar=pbx2"]).unwrap();
    /// let some = Settings::merged_keys([&global, &own], &["line.1.registrar"]);
    /// assert_eq!(some.get("line.1.registrar"), Some("pbx2"));
    /// assert_eq!(some.get("time.zone"), None);
    /// ```
    ///
    /// Each key is looked for from the last level back and copied once, from the level that
    /// wins (a campaign merges these for every device it notifies).
    pub fn merged_keys<'a, L>(levels: L, keys: &[&str]) -> Settings
    where
        L: IntoIterator<Item = &'a Settings>,
        L::IntoIter: DoubleEndedIterator + Clone,
    {
        let levels = levels.into_iter();
        let mut out = Builder::with_capacity(keys.len());
        for key in keys {
            if let Some((k, v)) = levels.clone().rev().find_map(|level| level.0.entry(key)) {
                out.insert_shared(k, Cow::Borrowed(v));
            }
        }
        Settings(out.finish())
    }

    /// The levels `global`, `group`, `device` read key by key as their merge would read
    /// ([`Settings::merged`]), without building it: see [`Layered`].
    pub fn layered<'a>(global: &'a Settings, group: &'a Settings, device: &'a Settings) -> Layered<'a> {
        Layered { levels: [device, group, global] }
    }

    /// Merges levels in order; later levels win.
    pub fn merged<'a>(levels: impl IntoIterator<Item = &'a Settings>) -> Settings {
        let mut out = Builder::default();
        for level in levels {
            for (k, v) in level.0.entries() {
                out.insert_shared(k, Cow::Borrowed(v));
            }
        }
        Settings(out.finish())
    }

    /// The value of a key.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key)
    }

    /// Whether any of `keys` is set here. For the few keys a device sets, comparing each with
    /// `keys` (most differ in length, a single comparison) costs less than a search per key.
    ///
    /// ```
    /// # use sipprov_model::Settings;
    /// let s = Settings::parse_assignments(["line.1.username=1001"]).unwrap();
    /// assert!(s.sets_any(&["http.username", "line.1.username"]));
    /// assert!(!s.sets_any(&["http.username"]));
    /// ```
    pub fn sets_any(&self, keys: &[&str]) -> bool {
        self.0.keys().any(|k| keys.contains(&k))
    }

    /// Iterates in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter()
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Releases spare capacity (for sets kept in memory for a long time).
    pub fn shrink_to_fit(&mut self) {
        self.0.shrink_to_fit();
    }

    /// A copy for listings: the value of every key `is_secret` names is replaced by `********`
    /// (an empty value, meaning "remove", is kept), and a password in any other value that is
    /// a URI (`https://user:pw@host/`) is replaced too. The rule comes from the caller because
    /// only the vendor modules know which raw `vendor.<name>` parameters are secret
    /// (`sipprov_vendors::is_secret_setting`).
    ///
    /// ```
    /// use sipprov_model::{is_secret_key, Settings};
    /// let s = Settings::parse_assignments(["line.1.password=hunter2", "line.1.username=1001",
    ///     "provisioning.url=https://u:pw@prov.example.com/"]).unwrap();
    /// let r = s.redacted_by(is_secret_key);
    /// assert_eq!(r.get("line.1.password"), Some("********"));
    /// assert_eq!(r.get("line.1.username"), Some("1001"));
    /// assert_eq!(r.get("provisioning.url"), Some("https://u:********@prov.example.com/"));
    /// ```
    pub fn redacted_by(&self, is_secret: impl Fn(&str) -> bool) -> Settings {
        let mut out = Builder::with_capacity(self.len());
        for (k, v) in self.0.entries() {
            let shown = if v.is_empty() {
                Cow::Borrowed("")
            } else if is_secret(k.as_str()) {
                Cow::Borrowed(REDACTED)
            } else {
                redact_uri_password(v)
            };
            out.insert_shared(k, shown);
        }
        Settings(out.finish())
    }

    /// The rule `Debug` redacts by: secret key names ([`is_secret_key`]) and every raw
    /// `vendor.<name>` parameter, since this crate cannot tell which raw names a vendor treats
    /// as secret.
    pub fn debug_redacts(key: &str) -> bool {
        is_secret_key(key) || key.starts_with("vendor.")
    }

    /// The programmable keys with at least one `key.N.*` or `expansion.M.key.N.*` setting (an
    /// empty value, a removal marker, does not count): the phone's keys first, then each
    /// module's, each in key order.
    ///
    /// ```
    /// use sipprov_model::{KeyPos, Settings};
    /// let s = Settings::parse_assignments(["key.10.type=blf", "expansion.1.key.2.type=line", "key.2.type=line"]).unwrap();
    /// let at = |module, index| KeyPos { module, index };
    /// assert_eq!(s.key_positions(), [at(None, 2), at(None, 10), at(Some(1), 2)]);
    /// ```
    pub fn key_positions(&self) -> Vec<crate::KeyPos> {
        let mut out: Vec<crate::KeyPos> = self
            .0
            .iter()
            .filter(|(k, v)| !v.is_empty() && (k.starts_with("key.") || k.starts_with("expansion.")))
            .filter_map(|(k, _)| match classify(k) {
                Ok(KeyKind::Key { pos, .. }) => Some(pos),
                _ => None,
            })
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The line numbers that have at least one `line.N.*` key, ascending.
    ///
    /// Only keys under `line.` are classified (no other key is a line's): every rendering asks
    /// for its lines, and a full check of each of its keys was a tenth of the rendering.
    pub fn line_indexes(&self) -> Vec<u32> {
        let mut idx: Vec<u32> = self
            .0
            .keys()
            .filter(|k| k.starts_with("line."))
            .filter_map(|k| match classify(k) {
                Ok(KeyKind::Line { index, .. }) => Some(index),
                _ => None,
            })
            .collect();
        idx.dedup();
        idx.sort_unstable();
        idx.dedup();
        idx
    }
}

impl FromIterator<(String, String)> for Settings {
    /// Collects without validation; call [`Settings::validated`] on untrusted input.
    fn from_iter<T: IntoIterator<Item = (String, String)>>(iter: T) -> Self {
        Settings(iter.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_name_is_host_mac_or_a_name() {
        assert_eq!(Settings::validate("sip.tls_name", "MAC").unwrap(), "mac");
        assert_eq!(Settings::validate("sip.tls_name", " Host ").unwrap(), "host");
        assert_eq!(Settings::validate("sip.tls_name", "phone7.example.com").unwrap(), "phone7.example.com");
        assert_eq!(Settings::validate("sip.tls_name", "[2001:db8::7]").unwrap(), "[2001:db8::7]");
        let bad = Settings::validate("sip.tls_name", "two words").unwrap_err().to_string();
        assert!(bad.contains("sip.tls_name") && bad.contains("host, mac"), "{bad}");
    }

    #[test]
    fn merged_keys_are_the_full_merge_restricted_to_the_keys() {
        let g = Settings::parse_assignments(["time.zone=UTC", "line.1.registrar=a", "line.1.password=g"]).unwrap();
        let grp = Settings::parse_assignments(["line.1.registrar=b", "time.zone=UTC+1"]).unwrap();
        let dev = Settings::parse_assignments(["line.1.username=1001", "line.1.registrar=c"]).unwrap();
        let none = Settings::new();
        let keys = ["line.1.username", "line.1.registrar", "time.zone", "line.1.password", "line.2.username"];
        for levels in [vec![&g, &grp, &dev], vec![&g, &none, &dev], vec![&dev, &grp, &g], vec![&g], vec![]] {
            let full = Settings::merged(levels.iter().copied());
            for n in 0..=keys.len() {
                let some = Settings::merged_keys(levels.iter().copied(), &keys[..n]);
                let want: Vec<_> = full.iter().filter(|(k, _)| keys[..n].contains(k)).collect();
                assert_eq!(some.iter().collect::<Vec<_>>(), want);
            }
        }
        // A key asked twice is there once.
        let twice = Settings::merged_keys([&g, &dev], &["line.1.registrar", "line.1.registrar"]);
        assert_eq!(twice.iter().collect::<Vec<_>>(), [("line.1.registrar", "c")]);
    }

    #[test]
    fn layered_reads_each_key_as_the_merge_has_it() {
        let g = Settings::parse_assignments(["time.zone=UTC", "line.1.registrar=a", "line.1.password=g"]).unwrap();
        let grp = Settings::parse_assignments(["line.1.registrar=b", "time.zone=UTC+1", "line.1.username="]).unwrap();
        let dev = Settings::parse_assignments(["line.1.username=1001", "line.1.registrar=c", "time.zone="]).unwrap();
        let none = Settings::new();
        let keys = ["line.1.username", "line.1.registrar", "time.zone", "line.1.password", "line.2.username"];
        let sets = [&g, &grp, &dev, &none];
        for global in sets {
            for group in sets {
                for device in sets {
                    let full = Settings::merged([global, group, device]);
                    let levels = Settings::layered(global, group, device);
                    for key in keys {
                        assert_eq!(levels.get(key), full.get(key), "{key}");
                        assert_eq!(SettingsView::get(&levels, key), full.get(key), "{key}");
                    }
                }
            }
        }
    }

    #[test]
    fn merge_order_is_global_group_device() {
        let g = Settings::parse_assignments(["time.zone=UTC", "line.1.registrar=a"]).unwrap();
        let grp = Settings::parse_assignments(["line.1.registrar=b"]).unwrap();
        let dev = Settings::parse_assignments(["line.1.username=1001"]).unwrap();
        let m = Settings::merged([&g, &grp, &dev]);
        assert_eq!(m.get("line.1.registrar"), Some("b"));
        assert_eq!(m.get("time.zone"), Some("UTC"));
        assert_eq!(m.get("line.1.username"), Some("1001"));
    }

    #[test]
    fn errors_name_the_key_but_not_secret_values() {
        let e = Settings::validate("line.1.password", "x\ny").unwrap_err().to_string();
        assert!(e.contains("line.1.password") && !e.contains("x\ny"), "{e}");
        let e = Settings::parse_assignments(["time.zone=UTC", "nonsense"]).unwrap_err().to_string();
        assert!(e.contains("argument 2") && !e.contains("nonsense"), "{e}");
        let e = Settings::parse_assignments(["line.1.password:hunter2"]).unwrap_err().to_string();
        assert!(e.contains("line.1.password=VALUE") && !e.contains("hunter2"), "{e}");
        let e = Settings::parse_assignments(["vendor.P2 hunter2:x"]).unwrap_err().to_string();
        assert!(!e.contains("hunter2"), "{e}");
        let e = Settings::classify("provisioning.urll").unwrap_err().to_string();
        assert!(e.contains("provisioning.urll"), "{e}");
    }

    #[test]
    fn empty_value_removes() {
        let mut s = Settings::parse_assignments(["time.zone=UTC"]).unwrap();
        s.apply(&Settings::parse_assignments(["time.zone="]).unwrap());
        assert!(s.is_empty());
    }

    #[test]
    fn redaction_hides_only_secrets() {
        let s = Settings::parse_assignments(["line.1.password=hunter2", "line.1.username=1001", "time.zone="]).unwrap();
        let r = s.redacted_by(is_secret_key);
        assert_eq!(r.get("line.1.password"), Some("********"));
        assert_eq!(r.get("line.1.username"), Some("1001"));
        assert_eq!(r.get("time.zone"), Some(""), "a removal stays visible as one");
    }

    #[test]
    fn debug_redacts_secret_keys_raw_vendor_values_and_url_passwords() {
        let s = Settings::parse_assignments([
            "line.1.password=hunter2",
            "vendor.P2=adminpw",
            "vendor.user_pass.2=snompw",
            "provisioning.url=https://prov:urlpw@p.example.com/",
            "line.1.username=1001",
        ])
        .unwrap();
        let shown = format!("{s:?} {s:#?}");
        for secret in ["hunter2", "adminpw", "snompw", "urlpw"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("1001") && shown.contains("vendor.P2"), "{shown}");
    }

    #[test]
    fn security_keys_are_validated_without_echoing_secrets() {
        assert_eq!(Settings::validate("http.auth", "Digest").unwrap(), "digest");
        assert!(Settings::validate("http.auth", "ntlm").is_err());
        assert_eq!(Settings::validate("http.allow_from", "10.1.2.3/8, ::1").unwrap(), "10.0.0.0/8,::1/128");
        assert!(Settings::validate("http.allow_from", "10.0.0.0/40").is_err());
        assert!(Settings::validate("http.username", "a\"b").is_err());
        assert!(is_secret_key("device.aes_key"));
        assert!(Settings::classify("http.usrname").is_err(), "typos in the http.* namespace are refused");
        assert_eq!(Settings::validate("pnp.url_credentials", "yes").unwrap(), "1");
        assert!(Settings::validate("pnp.url_credentials", "maybe").is_err());
        assert!(Settings::classify("pnp.url_credential").is_err(), "typos in the pnp.* namespace are refused");
        assert_eq!(Settings::validate("security.open_device_files", "yes").unwrap(), "1");
        assert!(Settings::classify("security.open_files").is_err());
        assert!(is_secret_key("http.password") && is_secret_key("x.aes_key"));
    }

    #[test]
    fn keys_outside_the_reserved_namespaces_are_free() {
        // Vendor namespaces are validated by the vendors crate, not here.
        assert_eq!(Settings::classify("acme.colour").unwrap(), KeyKind::Custom);
        assert_eq!(Settings::validate("acme.colour", "Blue").unwrap(), "Blue");
        assert!(Settings::validate("acme.colour", "a\nb").is_err(), "control characters are refused everywhere");
        for ns in RESERVED_NAMESPACES {
            assert!(Settings::classify(&format!("{ns}.typo_x")).is_err(), "{ns}");
        }
    }

    #[test]
    fn time_zones_are_offsets_or_iana_names() {
        assert_eq!(Settings::validate("time.zone", "europe/berlin").unwrap(), "Europe/Berlin");
        assert_eq!(Settings::validate("time.zone", " +1 ").unwrap(), "+1");
        let e = Settings::validate("time.zone", "Berlin").unwrap_err().to_string();
        assert!(e.contains("time.zone") && e.contains("IANA"), "{e}");
        assert!(Settings::validate("time.zone", "Europe/Atlantis").is_err());
    }

    #[test]
    fn programmable_keys_are_classified_and_validated() {
        use crate::{KeyField, KeyPos};
        assert_eq!(
            Settings::classify("expansion.2.key.7.value").unwrap(),
            KeyKind::Key { pos: KeyPos { module: Some(2), index: 7 }, field: KeyField::Value }
        );
        let e = Settings::classify("key.500.type").unwrap_err().to_string();
        assert!(e.contains("key.500.type") && e.contains("1 to 128"), "{e}");
        assert!(Settings::classify("key.1.colour").is_err());
        assert_eq!(Settings::validate("key.1.type", "Speed_Dial").unwrap(), "speed_dial");
        let e = Settings::validate("key.1.type", "intercom").unwrap_err().to_string();
        assert!(e.contains("key.1.type") && e.contains("blf"), "{e}");
        assert!(Settings::validate("key.1.line", "100").is_err());
        assert!(Settings::validate("key.1.value", "1002\nkey.2.type=line").is_err());
        let removal = Settings::parse_assignments(["key.3.type=", "key.1.type=line"]).unwrap();
        assert_eq!(removal.key_positions(), [KeyPos { module: None, index: 1 }]);
    }

    #[test]
    fn line_indexes_sorted_unique() {
        let s = Settings::parse_assignments(["line.2.username=a", "line.10.username=b", "line.2.password=c"]).unwrap();
        assert_eq!(s.line_indexes(), vec![2, 10]);
    }
}
