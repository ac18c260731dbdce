//! The vendor-neutral setting keys with a fixed meaning, as typed constants: each [`Key`]
//! carries its name, the check its values pass when they are set, and how a consumer reads a
//! stored value, so no consumer retypes a key's name or re-parses its value.
//!
//! ```
//! use sipprov_model::known::{self, HttpAuth};
//! use sipprov_model::Settings;
//! let s = Settings::parse_assignments(["http.auth=Digest-MD5", "security.open_device_files=yes"]).unwrap();
//! assert_eq!(s.get_key(&known::HTTP_AUTH), Some(HttpAuth::DigestMd5));
//! assert_eq!(s.get_key(&known::OPEN_DEVICE_FILES), Some(true));
//! assert_eq!(s.get_key(&known::HTTP_USERNAME), None);
//! assert_eq!(known::HTTP_AUTH.name(), "http.auth");
//! ```
//!
//! Vendor modules declare their own keys (`yealink.*`, `fanvil.*`) in the vendors crate; per-line
//! keys (`line.N.*`) and programmable keys (`key.N.*`) are families, described by
//! [`crate::LineField`] and [`crate::keys`].

use std::marker::PhantomData;

use crate::settings::{parse_cidr, parse_flag};

/// How a key's stored (validated) value is read.
pub trait ValueKind {
    /// What a read gives.
    type Value<'a>;
    /// Reads a stored value; `None` when it does not read as this kind (it was validated when
    /// set, so only a hand-edited store gets there).
    fn read(stored: &str) -> Option<Self::Value<'_>>;
}

/// A text value, read as it is stored.
#[derive(Debug, Clone, Copy)]
pub struct Text;

impl ValueKind for Text {
    type Value<'a> = &'a str;
    fn read(stored: &str) -> Option<&str> {
        Some(stored)
    }
}

/// A boolean, stored as `1` or `0` (see [`crate::parse_flag`] for what is accepted).
#[derive(Debug, Clone, Copy)]
pub struct Flag;

impl ValueKind for Flag {
    type Value<'a> = bool;
    fn read(stored: &str) -> Option<bool> {
        parse_flag(stored).ok().map(|f| f == "1")
    }
}

/// `http.auth`: how a device authenticates its fetches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpAuth {
    /// Digest, SHA-256 and MD5 challenges (the default).
    Digest,
    /// Digest with MD5 only, for firmware that stops at an algorithm it does not know.
    DigestMd5,
    /// Basic.
    Basic,
    /// No password: only a client certificate, the first-fetch window or an open group.
    None,
}

impl HttpAuth {
    /// Every scheme.
    pub const ALL: [HttpAuth; 4] = [HttpAuth::Digest, HttpAuth::DigestMd5, HttpAuth::Basic, HttpAuth::None];

    /// The value `http.auth` takes.
    pub fn as_str(self) -> &'static str {
        match self {
            HttpAuth::Digest => "digest",
            HttpAuth::DigestMd5 => "digest-md5",
            HttpAuth::Basic => "basic",
            HttpAuth::None => "none",
        }
    }
}

impl ValueKind for HttpAuth {
    type Value<'a> = HttpAuth;
    fn read(stored: &str) -> Option<HttpAuth> {
        HttpAuth::ALL.into_iter().find(|a| a.as_str().eq_ignore_ascii_case(stored))
    }
}

/// A known key's name and check, whatever its kind: the table [`crate::Settings`] validates by.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeyDef {
    /// The key, e.g. `http.auth`.
    pub(crate) name: &'static str,
    /// Validates a value, returning it normalised; the error says what the value must be and
    /// never repeats it.
    pub(crate) check: fn(&str) -> Result<String, String>,
}

/// A vendor-neutral setting key with a fixed meaning, whose values read as `K`.
#[derive(Debug)]
pub struct Key<K> {
    def: KeyDef,
    kind: PhantomData<fn() -> K>,
}

impl<K: ValueKind> Key<K> {
    const fn new(name: &'static str, check: fn(&str) -> Result<String, String>) -> Key<K> {
        Key { def: KeyDef { name, check }, kind: PhantomData }
    }

    /// The key, e.g. `http.auth`.
    pub const fn name(&self) -> &'static str {
        self.def.name
    }

    /// Validates a value for this key, returning it normalised; the error names the key and
    /// says what the value must be, never repeating it.
    pub fn check(&self, value: &str) -> Result<String, crate::SettingError> {
        (self.def.check)(value)
            .map_err(|reason| crate::SettingError::BadValue { key: self.def.name.to_string(), reason })
    }

    /// The key's value in `settings` (one level, or a device's levels read through), read as
    /// its kind.
    pub fn get<'a, S: crate::SettingsView + ?Sized>(&self, settings: &'a S) -> Option<K::Value<'a>> {
        settings.get(self.def.name).and_then(K::read)
    }
}

/// Where phones fetch their files from (`http://` or `https://`).
pub const PROVISIONING_URL: Key<Text> = Key::new("provisioning.url", http_url);
/// How often phones re-fetch, in minutes (1 to 525600).
pub const PROVISIONING_INTERVAL_MINUTES: Key<Text> = Key::new("provisioning.interval_minutes", interval_minutes);
/// The time zone: a UTC offset or an IANA zone name.
pub const TIME_ZONE: Key<Text> = Key::new("time.zone", time_zone);
/// The NTP server's host name or address.
pub const TIME_NTP_SERVER: Key<Text> = Key::new("time.ntp_server", host_name);
/// The phone's web admin password (a secret).
pub const ADMIN_PASSWORD: Key<Text> = Key::new("admin.password", any);
/// Where phones fetch firmware from (`http://` or `https://`).
pub const FIRMWARE_URL: Key<Text> = Key::new("firmware.url", http_url);
/// The ringtone file the phone downloads and installs (`http://` or `https://`).
pub const RINGTONE_URL: Key<Text> = Key::new("ringtone.url", http_url);
/// The wallpaper (background or logo image) the phone downloads (`http://` or `https://`).
pub const WALLPAPER_URL: Key<Text> = Key::new("wallpaper.url", http_url);
/// The language (GUI translation) file the phone downloads (`http://` or `https://`).
pub const LANGUAGE_URL: Key<Text> = Key::new("language.url", http_url);
/// The remote phone directory (contacts) the phone downloads (`http://` or `https://`).
pub const DIRECTORY_URL: Key<Text> = Key::new("directory.url", http_url);
/// The remote phone directory a device shows (a directory's name; server-side: the server
/// serves it per device and derives `directory.url` from it).
pub const DIRECTORY_NAME: Key<Text> = Key::new("directory.name", directory_name);
/// The ringtone from the file catalog (a catalog file's name; server-side: the server derives
/// `ringtone.url` from it).
pub const RINGTONE_FILE: Key<Text> = Key::new("ringtone.file", catalog_file);
/// The wallpaper or logo from the file catalog (derives `wallpaper.url`).
pub const WALLPAPER_FILE: Key<Text> = Key::new("wallpaper.file", catalog_file);
/// The language file from the file catalog (derives `language.url`).
pub const LANGUAGE_FILE: Key<Text> = Key::new("language.file", catalog_file);
/// The firmware version a device should run, as its User-Agent reports it (`66.86.0.160`):
/// server-side, no vendor writes it; the server derives `firmware.url` from it and the file
/// catalog refuses to remove a firmware file a device still targets.
pub const FIRMWARE_VERSION: Key<Text> = Key::new("firmware.version", firmware_version);
/// Whether check-sync may reboot the device (default on).
pub const SIP_NOTIFY_REBOOT: Key<Flag> = Key::new("sip.notify_reboot", flag);
/// The Event header of a check-sync NOTIFY, instead of the vendor's.
pub const SIP_CHECK_SYNC_EVENT: Key<Text> = Key::new("sip.check_sync_event", event_header);
/// The Event header of a reboot NOTIFY, instead of the vendor's.
pub const SIP_REBOOT_EVENT: Key<Text> = Key::new("sip.reboot_event", event_header);
/// The name a phone's TLS certificate must carry for check-sync over TLS: `host`, `mac` or a name.
pub const SIP_TLS_NAME: Key<Text> = Key::new("sip.tls_name", tls_name);
/// The device's HTTP user name, which the server checks and the templates write for the phone.
pub const HTTP_USERNAME: Key<Text> = Key::new("http.username", http_username);
/// The device's HTTP password (a secret).
pub const HTTP_PASSWORD: Key<Text> = Key::new("http.password", http_password);
/// How the device authenticates its fetches.
pub const HTTP_AUTH: Key<HttpAuth> = Key::new("http.auth", http_auth);
/// Whether Basic is accepted over plain HTTP (off by default: it sends the password in clear).
pub const HTTP_ALLOW_BASIC_PLAIN: Key<Flag> = Key::new("http.allow_basic_plain", flag);
/// The addresses (CIDR blocks) the device may fetch from, comma-separated.
pub const HTTP_ALLOW_FROM: Key<Text> = Key::new("http.allow_from", allow_from);
/// Whether the device's PnP answer carries its HTTP credentials in the URL (off by default:
/// that NOTIFY is unauthenticated plain UDP).
pub const PNP_URL_CREDENTIALS: Key<Flag> = Key::new("pnp.url_credentials", flag);
/// Whether the device's files are served to anyone, without credentials (off by default).
pub const OPEN_DEVICE_FILES: Key<Flag> = Key::new("security.open_device_files", flag);

/// Every known key, in [`crate::KNOWN_KEYS`] order.
pub(crate) const ALL: &[KeyDef] = &[
    PROVISIONING_URL.def,
    PROVISIONING_INTERVAL_MINUTES.def,
    TIME_ZONE.def,
    TIME_NTP_SERVER.def,
    ADMIN_PASSWORD.def,
    FIRMWARE_URL.def,
    RINGTONE_URL.def,
    WALLPAPER_URL.def,
    LANGUAGE_URL.def,
    DIRECTORY_URL.def,
    DIRECTORY_NAME.def,
    RINGTONE_FILE.def,
    WALLPAPER_FILE.def,
    LANGUAGE_FILE.def,
    FIRMWARE_VERSION.def,
    SIP_NOTIFY_REBOOT.def,
    SIP_CHECK_SYNC_EVENT.def,
    SIP_REBOOT_EVENT.def,
    SIP_TLS_NAME.def,
    HTTP_USERNAME.def,
    HTTP_PASSWORD.def,
    HTTP_AUTH.def,
    HTTP_ALLOW_BASIC_PLAIN.def,
    HTTP_ALLOW_FROM.def,
    PNP_URL_CREDENTIALS.def,
    OPEN_DEVICE_FILES.def,
];

/// The definition of a known key, by name.
pub(crate) fn def(name: &str) -> Option<&'static KeyDef> {
    ALL.iter().find(|d| d.name == name)
}

fn any(value: &str) -> Result<String, String> {
    Ok(value.to_string())
}

fn flag(value: &str) -> Result<String, String> {
    parse_flag(value).map(str::to_string).map_err(str::to_string)
}

/// A host name or address (also `line.N.registrar`).
pub(crate) fn host_name(value: &str) -> Result<String, String> {
    if value.contains(char::is_whitespace) {
        return Err("a host name cannot contain spaces".into());
    }
    Ok(value.to_string())
}

fn http_url(value: &str) -> Result<String, String> {
    let lower = value.to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) || value.contains(char::is_whitespace) {
        return Err("must be an http:// or https:// URL without spaces".into());
    }
    Ok(value.to_string())
}

/// A directory's name ([`crate::contact::check_directory_name`]); whether it exists is the
/// server's check, where the setting is written.
fn directory_name(value: &str) -> Result<String, String> {
    crate::contact::check_directory_name(value.trim())?;
    Ok(value.trim().to_string())
}

/// A file catalog name: 1 to 128 of letters, digits and `._+()-,`, not starting with `.`;
/// whether the catalog holds it, and of the right kind, is the server's check.
fn catalog_file(value: &str) -> Result<String, String> {
    let v = value.trim();
    let ok = !v.is_empty()
        && v.len() <= 128
        && !v.starts_with('.')
        && v.chars().all(|c| c.is_ascii_alphanumeric() || "._+()-,".contains(c));
    if ok {
        Ok(v.to_string())
    } else {
        Err("must be a file catalog name: 1 to 128 letters, digits or ._+()-,".into())
    }
}

/// A firmware version as phones report it: a short token that is safe in a file name and a URL.
fn firmware_version(value: &str) -> Result<String, String> {
    let ok = (1..=64).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if !ok {
        return Err("must be 1 to 64 characters of letters, digits, '.', '_' and '-' (such as 66.86.0.160)".into());
    }
    Ok(value.to_string())
}

fn time_zone(value: &str) -> Result<String, String> {
    match crate::tz::Zone::parse(value) {
        Some(crate::tz::Zone::Named(name)) => {
            crate::tz::ZoneRules::current(&name).map(|_| name).map_err(|e| e.to_string())
        }
        Some(crate::tz::Zone::Offset(_)) => Ok(value.trim().to_string()),
        None => Err("must be a UTC offset such as +1, -5 or +5:30, or an IANA zone name such as Europe/Berlin".into()),
    }
}

fn interval_minutes(value: &str) -> Result<String, String> {
    let minutes: u32 = value.parse().map_err(|_| "must be a whole number of minutes".to_string())?;
    if !(1..=525_600).contains(&minutes) {
        return Err("must be between 1 and 525600 minutes".into());
    }
    Ok(minutes.to_string())
}

/// An Event header value: a token, then ;params. No spaces inside, no commas.
fn event_header(value: &str) -> Result<String, String> {
    let ok = !value.is_empty()
        && value.split(';').next().is_some_and(|t| !t.is_empty())
        && !value.contains(|c: char| c.is_whitespace() || c == ',');
    if !ok {
        return Err("must be an Event header value such as check-sync;reboot=false".into());
    }
    Ok(value.to_string())
}

fn tls_name(value: &str) -> Result<String, String> {
    let v = value.trim();
    let lower = v.to_ascii_lowercase();
    if lower == "host" || lower == "mac" {
        return Ok(lower);
    }
    // Otherwise a host name or address the certificate names.
    let ok = !v.is_empty() && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b));
    if !ok {
        return Err("must be host, mac, or the name the phone's TLS certificate carries".into());
    }
    Ok(v.to_string())
}

fn http_auth(value: &str) -> Result<String, String> {
    match HttpAuth::read(value) {
        Some(auth) => Ok(auth.as_str().to_string()),
        None => Err(format!("must be one of {}", crate::HTTP_AUTH_SCHEMES.join(", "))),
    }
}

/// A Digest username travels in a quoted-string; a quote or backslash there is an interop trap.
fn http_username(value: &str) -> Result<String, String> {
    if value.contains(['"', '\\', ':']) || value.trim() != value {
        return Err("must not contain quotes, backslashes, ':' or surrounding spaces".into());
    }
    Ok(value.to_string())
}

/// Basic joins user:password; the message never repeats the value.
fn http_password(value: &str) -> Result<String, String> {
    if value.trim() != value {
        return Err("must not start or end with spaces".into());
    }
    Ok(value.to_string())
}

fn allow_from(value: &str) -> Result<String, String> {
    let mut out = Vec::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        out.push(parse_cidr(item).map_err(|e| e.to_string())?.1);
    }
    if out.is_empty() {
        return Err("expected a comma-separated list of addresses or CIDR blocks".into());
    }
    Ok(out.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_the_list_of_known_keys() {
        let names: Vec<_> = ALL.iter().map(|d| d.name).collect();
        assert_eq!(names, crate::KNOWN_KEYS);
        let schemes: Vec<_> = HttpAuth::ALL.iter().map(|a| a.as_str()).collect();
        assert_eq!(schemes, crate::HTTP_AUTH_SCHEMES);
    }

    #[test]
    fn values_read_as_their_kind() {
        let s =
            crate::Settings::parse_assignments(["sip.notify_reboot=off", "http.auth=NONE", "time.zone=+1"]).unwrap();
        assert_eq!(SIP_NOTIFY_REBOOT.get(&s), Some(false));
        assert_eq!(HTTP_AUTH.get(&s), Some(HttpAuth::None));
        assert_eq!(TIME_ZONE.get(&s), Some("+1"));
        let err = HTTP_AUTH.check("ntlm").unwrap_err().to_string();
        assert!(err.contains("http.auth") && err.contains("digest-md5") && !err.contains("ntlm"), "{err}");
        assert_eq!(HTTP_ALLOW_FROM.check("10.1.2.3/8, ::1").unwrap(), "10.0.0.0/8,::1/128");
    }

    #[test]
    fn a_firmware_version_is_a_short_safe_token() {
        assert_eq!(FIRMWARE_VERSION.check("66.86.0.160").unwrap(), "66.86.0.160");
        assert_eq!(FIRMWARE_VERSION.check("V10_2-rc.1").unwrap(), "V10_2-rc.1");
        for bad in ["", "1.0 beta", "../x", "1/2", &"9".repeat(65)] {
            let err = FIRMWARE_VERSION.check(bad).unwrap_err().to_string();
            assert!(err.contains("firmware.version") && err.contains("1 to 64"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn resource_urls_are_checked_like_the_firmware_url() {
        for key in [&FIRMWARE_URL, &RINGTONE_URL, &WALLPAPER_URL, &LANGUAGE_URL, &DIRECTORY_URL] {
            assert_eq!(key.check("https://f.example/files/x.bin").unwrap(), "https://f.example/files/x.bin");
            for bad in ["ftp://f.example/x", "f.example/x", "https://f.example/a b"] {
                let err = key.check(bad).unwrap_err().to_string();
                assert!(err.contains(key.name()) && err.contains("http"), "{err}");
            }
        }
        // Their namespaces are reserved: a typo is refused, not kept as a free key.
        let err = crate::Settings::parse_assignments(["ringtone.ulr=https://f.example/r.wav"]).unwrap_err();
        assert!(err.to_string().contains("ringtone.ulr"), "{err}");
    }
}
