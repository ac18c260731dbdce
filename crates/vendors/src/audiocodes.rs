//! AudioCodes 400HD IP phones and MediaPack MP-11x / MP-124 analogue gateways.
//!
//! 400HD (400HD Series IP Phones Administrator's Manuals): `<MAC>.cfg`, `key=value` lines with slash paths,
//! account 1 = `voip/line/0`. With `provisioning.url` set the file keeps the phone on it:
//! `provisioning/method = STATIC` ("Static URL", 420HD Administrator's Manual LTRT-11950 p.48,
//! easymanua.ls/audiocodes/420hd/manual/138368?p=48) and `provisioning/configuration/url` as a
//! directory, from which the phone asks for its `<MAC>.cfg` as it does with a bare DHCP option
//! 160 URL (same page); the key and the directory form are what AudioCodes' device manager and
//! third-party templates write. Polling: `provisioning/period/*` (450HD manual p.30). The admin
//! password key is not documented.
//! MP-11x/MP-124: `<MAC>.ini` (upper case, prov.net `endpoint/audiocodes/mp/$mac.ini`), INI with
//! `[ Table ]` sections, which must end with a newline (MP-118 6.6 manual, ini file format,
//! easymanua.ls/audiocodes/mediapack-mp-118/manual?p=91); `EnableSIPRemoteReset = 1` so
//! check-sync NOTIFYs are obeyed (MP-118 6.6 manual p.470,
//! easymanua.ls/audiocodes/mediapack-mp-118/manual?p=470; MP-11x & MP-124 User's Manual
//! LTRT-65432 p.398). The gateway sends `If-Modified-Since` (same manual, §33.2.5 "Querying
//! Provisioning Server for Updated Files"), which the server handles; this module only keeps the
//! bytes stable.
//!
//! Both files define one SIP server for all lines (the 400HD's `voip/signalling/sip/*`, the
//! gateways' `PROXYNAME`/`REGISTRARIP` and `PREFIX` row), so a line whose registrar, port or
//! transport differs from the first line's is refused rather than silently served line 1's.
//! Time: both carry only a UTC offset (`system/ntp/gmt_offset`, `NTPServerUTCOffset`), so an IANA
//! zone is written as its offset when it has no daylight saving time and refused when it has.
//! Also refused when set on a device, for lack of a documented key: `admin.password` and
//! `line.N.label` (both families) and `line.N.display_name` (gateways: FXS ports have no name).
//!
//! HTTP credentials on the gateways (MP-11x & MP-124 User's Manual LTRT-65432 §33.2.4 "Access
//! Authentication with HTTP Server"): Digest takes `AUPDDigestUsername` /
//! `AUPDDigestPassword`; Basic takes them from the URL itself,
//! `AutoCmpFileUrl = 'https://<username>:<password>@<host>/<file name>'`. So with
//! `http.auth = basic` the device's `http.username` / `http.password` (its own or the ones the
//! server generated at its first fetch) are written percent-encoded into `IniFileURL`, and into
//! `AutoCmpFileUrl` only when the firmware is on the provisioning server itself (same scheme,
//! host and port): they are sipprov's credentials, not another server's. The 400HD phones get the
//! same treatment of `provisioning/configuration/url` and `provisioning/firmware/url`, since
//! their manuals name no other credential parameter; that the phones send URL credentials is
//! \[unverified\], so they are written only on an explicit `http.auth = basic` and the server
//! generates no credentials for 400HD phones ([`Vendor::http_credential_parameters`] stays
//! empty for them: a phone that cannot use them would be locked out after its first fetch).

use std::borrow::Cow;

use sipprov_model::{LineField, Mac, Settings};

use crate::events::CheckSyncEvents;
use crate::mapping::{self, one, same, ParamDef, Source};
use crate::pnp::PnpDialect;
use crate::ua::{self, is_numeric_version};
use crate::{FileScope, FileSpec, ModelInfo, UserAgentInfo, Vendor, VendorParam};

/// The AudioCodes vendor module.
pub struct AudioCodes;

const fn hd(name: &'static str, aliases: &'static [&'static str]) -> ModelInfo {
    ModelInfo { name, family: "400hd", aliases, common_file: None, max_lines: None }
}

const fn mp(name: &'static str, ports: u32) -> ModelInfo {
    ModelInfo { name, family: "mp11x", aliases: &[], common_file: None, max_lines: Some(ports) }
}

/// The 400HD phones (the 405HD, 420HD, 430HD, 440HD, 445HD and 450HD administrator's manuals
/// share the `<MAC>.cfg` key paths) and the MediaPack MP-11x / MP-124 gateways (MP-11x & MP-124
/// User's Manual LTRT-65432). Not accepted, for lack of a source
/// consulted here that describes their files and keys: the C4xxHD phones (sold mainly with Teams
/// firmware) and the MP-20x and MP-1288 gateways. AudioCodes sells no DECT system of its own.
static MODELS: &[ModelInfo] = &[
    hd("405HD", &["405"]),
    hd("420HD", &["420"]),
    hd("430HD", &["430"]),
    hd("440HD", &["440"]),
    hd("445HD", &["445"]),
    hd("450HD", &["450"]),
    // The number of FXS ports is the model number's last digits (MP-118 = 8 ports).
    mp("MP-112", 2),
    mp("MP-114", 4),
    mp("MP-118", 8),
    mp("MP-124", 24),
];

/// `provisioning/period/type` values (450HD manual p.30, easymanua.ls/audiocodes/450hd/manual/6718?p=30),
/// nearest to the interval.
fn period_type(v: &str) -> Option<String> {
    let minutes: u32 = v.parse().ok()?;
    Some(
        match minutes {
            0..=5 => "every5minutes",
            6..=15 => "every15minutes",
            16..=1439 => "hourly",
            1440..=10079 => "daily",
            _ => "weekly",
        }
        .into(),
    )
}

/// `provisioning/period/hourly/hours_interval`, only meaningful with the `hourly` type.
fn hours_interval(v: &str) -> Option<String> {
    let minutes: u32 = v.parse().ok()?;
    (16..1440).contains(&minutes).then(|| minutes.div_ceil(60).to_string())
}

/// The offset of `time.zone` in minutes: a fixed offset, or a named zone without daylight
/// saving time (a zone with it is refused by [`AudioCodes::validate_device`]).
fn offset_minutes(v: &str) -> Option<i32> {
    mapping::fixed_offset_minutes(v)
}

/// `system/ntp/gmt_offset` is written `+10:00` / `-03:00` in third-party 400HD templates.
fn gmt_offset(v: &str) -> Option<String> {
    let m = offset_minutes(v)?;
    Some(format!("{}{:02}:{:02}", if m < 0 { '-' } else { '+' }, m.abs() / 60, m.abs() % 60))
}

/// `NTPServerUTCOffset` is in seconds.
fn utc_offset_seconds(v: &str) -> Option<String> {
    Some((offset_minutes(v)? * 60).to_string())
}

/// Transport as a name. Unverified: the key `voip/signalling/sip/transport_protocol` was seen only
/// in third-party templates, and no AudioCodes manual consulted gives its values.
fn transport_name(v: &str) -> Option<String> {
    Some(v.to_ascii_uppercase())
}

/// `SIPTransportType`: 0 UDP, 1 TCP, 2 TLS.
fn transport_number(v: &str) -> Option<String> {
    Some(
        match v {
            "tcp" => "1",
            "tls" => "2",
            _ => "0",
        }
        .into(),
    )
}

/// An ini string value: single-quoted (MP-118 manual p.91); a quote inside a URL is escaped.
fn quoted(v: &str) -> Option<String> {
    Some(format!("'{}'", v.replace('\'', "%27")))
}

/// `IniFileURL` with the `<MAC>` placeholder the gateway expands itself (MP-118 manual p.577),
/// so periodic updates keep fetching this device's file from the provisioning base URL.
fn ini_url(v: &str) -> Option<String> {
    let base = v.trim_end_matches('/');
    quoted(&format!("{base}/<MAC>.ini"))
}

/// `provisioning/method`: a static URL instead of DHCP options (420HD manual p.48).
fn static_method(_: &str) -> Option<String> {
    Some("STATIC".into())
}

/// `provisioning/configuration/url` as a directory: the phone appends `<MAC>.cfg`.
fn directory(v: &str) -> Option<String> {
    let v = v.trim();
    Some(if v.ends_with('/') { v.to_string() } else { format!("{v}/") })
}

/// 400HD keys: `voip/line/*` from the 405HD/420HD manuals (easymanua.ls/audiocodes/405hd/manual/240349?p=98,
/// easymanua.ls/audiocodes/420hd/manual/138368?p=102), the rest from third-party templates (e.g.
/// sipXconfig's AudioCodes phone plugin), not from the manuals.
static HD_PARAMS: &[ParamDef] = &[
    ParamDef::device(Source::Key("provisioning.url"), "provisioning/method", static_method),
    ParamDef::device(Source::Key("provisioning.url"), "provisioning/configuration/url", directory),
    ParamDef::device(Source::Key("provisioning.interval_minutes"), "provisioning/period/type", period_type),
    ParamDef::device(
        Source::Key("provisioning.interval_minutes"),
        "provisioning/period/hourly/hours_interval",
        hours_interval,
    ),
    ParamDef::device(Source::Key("time.ntp_server"), "system/ntp/enabled", one),
    ParamDef::device(Source::Key("time.ntp_server"), "system/ntp/primary_server_address", same),
    ParamDef::device(Source::Key("time.zone"), "system/ntp/gmt_offset", gmt_offset),
    ParamDef::device(Source::Key("firmware.url"), "provisioning/firmware/url", same),
    ParamDef::device(Source::FirstLine(LineField::Registrar), "voip/signalling/sip/use_proxy", one),
    ParamDef::device(Source::FirstLine(LineField::Registrar), "voip/signalling/sip/proxy_address", same),
    ParamDef::device(Source::FirstLine(LineField::Port), "voip/signalling/sip/proxy_port", same),
    ParamDef::device(Source::FirstLine(LineField::Registrar), "voip/signalling/sip/sip_registrar/addr", same),
    ParamDef::device(Source::FirstLine(LineField::Transport), "voip/signalling/sip/transport_protocol", transport_name),
    ParamDef::device(Source::LineAlways, "voip/line/{i}/enabled", one),
    ParamDef::device(Source::Line(LineField::Username), "voip/line/{i}/id", same),
    ParamDef::device(Source::Line(LineField::DisplayName), "voip/line/{i}/description", same),
    ParamDef::device(Source::Line(LineField::AuthUsername), "voip/line/{i}/auth_name", same),
    ParamDef::device(Source::Line(LineField::Password), "voip/line/{i}/auth_password", same),
];

const SYSTEM: &str = "SYSTEM Params";
const SIP: &str = "SIP Params";

/// MP-11x ini parameters (MP-118 6.6 manual; SIP names from prov.net `audiocodes/mp/$mac.ini`).
/// Per-port accounts go into the `Authentication` and `TrunkGroup` tables of the template.
static MP_PARAMS: &[ParamDef] = &[
    ParamDef::device(Source::Key("provisioning.url"), "IniFileURL", ini_url).group(SYSTEM),
    ParamDef::device(Source::Key("provisioning.interval_minutes"), "AutoUpdateFrequency", same).group(SYSTEM),
    // Digest credentials for the automatic-update fetches (MP-11x manual §33.2.4).
    ParamDef::device(Source::Key("http.username"), "AUPDDigestUsername", quoted).group(SYSTEM),
    ParamDef::device(Source::Key("http.password"), "AUPDDigestPassword", quoted).group(SYSTEM),
    ParamDef::device(Source::Key("firmware.url"), "AutoCmpFileUrl", quoted).group(SYSTEM),
    ParamDef::device(Source::Key("time.ntp_server"), "NTPServerIP", same).group(SYSTEM),
    ParamDef::device(Source::Key("time.zone"), "NTPServerUTCOffset", utc_offset_seconds).group(SYSTEM),
    ParamDef::device(Source::Always, "EnableSIPRemoteReset", one).group(SIP),
    ParamDef::device(Source::FirstLine(LineField::Registrar), "ISREGISTERNEEDED", one).group(SIP),
    ParamDef::device(Source::FirstLine(LineField::Registrar), "PROXYNAME", same).group(SIP),
    ParamDef::device(Source::FirstLine(LineField::Registrar), "REGISTRARIP", same).group(SIP),
    ParamDef::device(Source::FirstLine(LineField::Registrar), "REGISTRARNAME", same).group(SIP),
    ParamDef::device(Source::FirstLine(LineField::Registrar), "SIPGATEWAYNAME", same).group(SIP),
    ParamDef::device(Source::FirstLine(LineField::Transport), "SIPTransportType", transport_number).group(SIP),
];

/// The URL parameters through which the device fetches its own file, and its firmware.
const CONFIG_URLS: &[&str] = &["IniFileURL", "provisioning/configuration/url"];
const FIRMWARE_URLS: &[&str] = &["AutoCmpFileUrl", "provisioning/firmware/url"];

/// With `http.auth = basic`, puts `user:password@` into the configuration URL, and into the
/// firmware URL when it has the provisioning URL's origin (see the module doc). A URL that
/// already carries a user part (a `vendor.` override) is left as written. Gateway values are
/// single-quoted and stay so.
fn add_basic_credentials(params: &mut [VendorParam], settings: &Settings) {
    let basic = mapping::get(settings, "http.auth").is_some_and(|a| a.eq_ignore_ascii_case("basic"));
    let (Some(username), Some(password)) =
        (mapping::get(settings, "http.username"), mapping::get(settings, "http.password"))
    else {
        return;
    };
    if !basic {
        return;
    }
    let ours = mapping::get(settings, "provisioning.url").and_then(origin);
    let credentials = crate::pnp::Credentials { username, password };
    let named = |list: &[&str], name: &str| list.iter().any(|n| n.eq_ignore_ascii_case(name));
    for p in params.iter_mut() {
        let quoted = p.value.len() >= 2 && p.value.starts_with('\'') && p.value.ends_with('\'');
        let url = if quoted { &p.value[1..p.value.len() - 1] } else { p.value.as_str() };
        let wanted =
            named(CONFIG_URLS, &p.name) || (named(FIRMWARE_URLS, &p.name) && ours.is_some() && origin(url) == ours);
        if wanted && !has_userinfo(url) {
            let with = crate::pnp::with_userinfo(url, &credentials);
            p.value = if quoted { format!("'{with}'") } else { with };
        }
    }
}

/// `scheme://host[:port]` of a URL, lower case; `None` without `://`.
fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.trim().split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    Some(format!("{scheme}://{authority}").to_ascii_lowercase())
}

/// True when the URL's authority has a `user@` part.
fn has_userinfo(url: &str) -> bool {
    url.split_once("://").is_some_and(|(_, rest)| rest.split(['/', '?', '#']).next().unwrap_or_default().contains('@'))
}

/// Characters that would break an ini table row (`a, b;`) or a quoted value.
pub const INI_TABLE_FORBIDDEN: &[char] = &[',', ';', '\'', '"', '[', ']'];

enum Ua<'a> {
    Phone { firmware: &'a str, detail: Option<&'a str> },
    Gateway { name: &'a str, version: &'a str, mac: &'a str },
}

/// `AUDC-IPPhone/2.2.8.61 (440HDG-Rev0; 00908F602AAC)` (fpbx `app/provision/index.php`) or the
/// gateway default `Mozilla/4.0 (compatible; AudioCodes; <NAME>;<VER>;<MAC>;<CONF>)` (AudioCodes,
/// "Querying Provisioning Server for Updated Files"; verified in the 6.8 and 7.x manuals only).
fn classify(ua: &str) -> Option<Ua<'_>> {
    let t = ua::unquote(ua);
    if t.get(..13).is_some_and(|p| p.eq_ignore_ascii_case("AUDC-IPPhone/")) {
        let rest = &t[13..];
        let (firmware, detail) = rest.split_once(' ').unwrap_or((rest, ""));
        let detail = detail.trim().strip_prefix('(').and_then(|d| d.strip_suffix(')'));
        return Some(Ua::Phone { firmware, detail });
    }
    let inner = t.strip_prefix("Mozilla/")?.split_once('(')?.1.rsplit_once(')')?.0;
    let f: Vec<&str> = inner.split(';').map(str::trim).collect();
    if f.len() < 5 || !f[0].eq_ignore_ascii_case("compatible") || !f[1].eq_ignore_ascii_case("AudioCodes") {
        return None;
    }
    Some(Ua::Gateway { name: f[2], version: f[3], mac: f[4] })
}

impl AudioCodes {
    fn info(&self, model: Option<&str>, firmware: Option<&str>, mac: Option<Mac>) -> UserAgentInfo {
        let model = model
            .filter(|m| !m.is_empty())
            .map(|m| self.model(m).map_or(Cow::Owned(m.to_string()), |i| Cow::Borrowed(i.name)));
        let firmware = firmware.filter(|f| !f.is_empty()).map(str::to_string);
        UserAgentInfo { vendor: "audiocodes", model, firmware, mac }
    }
}

/// AudioCodes parameters holding secrets: the 400HD line password `voip/line/N/auth_password`
/// (405HD administrator's manual p.98, easymanua.ls/audiocodes/405hd/manual/240349?p=98) and the
/// gateways' provisioning credentials `AUPDDigestPassword`, `AUPDUserPassword` (Mediant 1000B
/// manual p.838, easymanua.ls/audiocodes/mediant-1000b/manual?p=838).
pub const SECRET_PARAMS: &[&str] = &["voip/line/{n}/auth_password", "AUPDDigestPassword", "AUPDUserPassword"];

/// The default templates, compiled in (an admin overrides them by name, see [`crate::render`]).
static TEMPLATES: &[(&str, &str)] = &[
    ("audiocodes/400hd.cfg.j2", include_str!("../templates/audiocodes/400hd.cfg.j2")),
    ("audiocodes/mp11x.ini.j2", include_str!("../templates/audiocodes/mp11x.ini.j2")),
];

impl Vendor for AudioCodes {
    fn id(&self) -> &'static str {
        "audiocodes"
    }

    fn check_sync_events(&self) -> CheckSyncEvents {
        // "AudioCodes proprietary value" check-sync;reboot=false, needs EnableSIPRemoteReset=1.
        CheckSyncEvents::check_sync("MP-11x user manual 33.2; Mediant 1000B manual")
    }

    fn pnp_dialect(&self) -> PnpDialect {
        // Any URL its automatic provisioning accepts; a directory makes it ask for <MAC>.cfg.
        PnpDialect::DIRECTORY
    }

    fn templates(&self) -> &'static [(&'static str, &'static str)] {
        TEMPLATES
    }

    fn secret_params(&self) -> &'static [&'static str] {
        SECRET_PARAMS
    }

    fn display_name(&self) -> &'static str {
        "AudioCodes"
    }

    fn models(&self) -> &'static [ModelInfo] {
        MODELS
    }

    /// Accepts UA spellings such as `440HDG-Rev0` (G = gigabit variant, same configuration).
    fn model(&self, name: &str) -> Option<&'static ModelInfo> {
        let mut n = mapping::normalize(name);
        if let Some(pos) = n.find("REV") {
            n.truncate(pos);
        }
        let n = n.strip_prefix("AUDIOCODES").unwrap_or(&n);
        let n = n.strip_suffix("FXS").unwrap_or(n);
        let n = if n.ends_with("HDG") { &n[..n.len() - 1] } else { n };
        mapping::find_model(MODELS, n)
    }

    fn parse_user_agent(&self, ua: &str) -> Option<UserAgentInfo> {
        Some(match classify(ua)? {
            Ua::Phone { firmware, detail } => {
                let (model, mac) = detail.map_or((None, None), |d| {
                    let (m, mac) = d.split_once(';').unwrap_or((d, ""));
                    (Some(m.trim()), ua::plain_mac(mac.trim()))
                });
                self.info(model, Some(firmware), mac)
            }
            Ua::Gateway { name, version, mac } => {
                let version = Some(version).filter(|v| is_numeric_version(v) || v.contains('.'));
                self.info(Some(name).filter(|n| !n.starts_with('<')), version, ua::plain_mac(mac))
            }
        })
    }

    fn device_files(&self, model: &'static ModelInfo, mac: Mac) -> Vec<FileSpec> {
        let (ext, template) = match model.family {
            "mp11x" => ("ini", "audiocodes/mp11x.ini.j2"),
            _ => ("cfg", "audiocodes/400hd.cfg.j2"),
        };
        vec![FileSpec {
            name: format!("{}.{ext}", mac.upper()),
            aliases: Vec::new(),
            template,
            scope: FileScope::Device,
            content_type: "text/plain",
            name_pattern: None,
        }]
    }

    fn mac_in_file_name(&self, file_name: &str) -> Option<Mac> {
        ua::mac_file(file_name, &["cfg", "ini"])
    }

    fn model_file(&self, _file_name: &str, _ua_model: Option<&str>) -> Option<(&'static ModelInfo, FileSpec)> {
        None
    }

    fn parameters(&self, model: &'static ModelInfo, settings: &Settings, scope: FileScope) -> Vec<VendorParam> {
        match model.family {
            "mp11x" => {
                let mut params = mapping::build(MP_PARAMS, settings, scope, SIP);
                if scope == FileScope::Device {
                    add_basic_credentials(&mut params, settings);
                }
                params
            }
            _ => {
                let mut params = mapping::build(HD_PARAMS, settings, scope, "");
                if scope == FileScope::Device {
                    add_basic_credentials(&mut params, settings);
                }
                params
            }
        }
    }

    /// Gateways: refused when a `vendor.EnableSIPRemoteReset = 0` override makes the gateway
    /// ignore check-sync, or when `sip.notify_reboot = 0` (no gateway parameter re-provisions
    /// but never reboots, so there the server alone honours it).
    fn reboot_refusal(&self, model: &'static ModelInfo, settings: &Settings) -> Option<String> {
        let params = self.parameters(model, settings, FileScope::Device);
        let by_file = match model.family {
            "mp11x" => mapping::reboot_refused_by(&params, settings, "EnableSIPRemoteReset", |v| v.trim() == "1"),
            _ => None,
        };
        by_file.or_else(|| mapping::reboot_refused_by_setting(settings))
    }

    /// On gateways, line fields end up in ini table rows, where `,` `;` and quotes are syntax.
    fn validate_device(&self, model: &'static ModelInfo, settings: &Settings) -> Result<(), crate::Refused> {
        mapping::check_max_lines(model, settings)?;
        let no_keys = match model.family {
            "mp11x" => "a gateway has no programmable keys",
            _ => "not mapped yet: no verified 400HD parameter names for programmable keys; set vendor.<section/key>",
        };
        crate::keys::check_device(settings, "AudioCodes", model, Err(no_keys))?;
        mapping::check_one_server(settings, &format!("the {} file", model.name))?;
        mapping::refuse_zone_with_dst(settings, &format!("the {} file", model.name))?;
        let mut unmapped = vec![
            ("admin.password", "the admin password key is not documented"),
            ("line.N.label", "no documented key for a line label"),
            ("ringtone.url", "no consulted source names a ring tone download key"),
            ("wallpaper.url", "no consulted source names a wallpaper download key"),
            ("language.url", "no consulted source names a language file download key"),
            ("directory.url", "no consulted source names a directory download key"),
        ];
        if model.family == "mp11x" {
            unmapped.push(("line.N.display_name", "an FXS port has no display name in the ini file"));
        }
        mapping::refuse_unmapped(settings, "AudioCodes", &unmapped)?;
        if model.family != "mp11x" {
            return Ok(());
        }
        for n in settings.line_indexes() {
            for field in [LineField::Username, LineField::AuthUsername, LineField::Password, LineField::Registrar] {
                if mapping::line_value(settings, n, field).is_some_and(|v| v.contains(INI_TABLE_FORBIDDEN)) {
                    return Err(crate::Refused(format!(
                        "line.{n}.{} contains one of , ; ' \" [ ] which the {} ini table syntax cannot carry",
                        field.name(),
                        model.name
                    )));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_secret_row_is_declared() {
        assert_eq!(mapping::undeclared_secret_rows(HD_PARAMS, |n| AudioCodes.is_secret_param(n)), Vec::<String>::new());
        assert_eq!(mapping::undeclared_secret_rows(MP_PARAMS, |n| AudioCodes.is_secret_param(n)), Vec::<String>::new());
    }
}

#[cfg(test)]
mod basic_tests {
    use super::*;

    fn urls(items: &[&str]) -> (Option<String>, Option<String>) {
        let settings = Settings::parse_assignments(items.iter().copied()).unwrap();
        let params = AudioCodes.parameters(AudioCodes.model("MP-118").unwrap(), &settings, FileScope::Device);
        let value = |n: &str| params.iter().find(|p| p.name == n).map(|p| p.value.clone());
        (value("IniFileURL"), value("AutoCmpFileUrl"))
    }

    const BASE: [&str; 4] =
        ["provisioning.url=https://p.example:8443/prov", "http.username=gw", "http.password=a b", "http.auth=basic"];

    #[test]
    fn basic_credentials_go_into_our_urls_only() {
        let theirs = [&BASE[..], &["firmware.url=https://cdn.example/fw.cmp"]].concat();
        assert_eq!(
            urls(&theirs),
            (
                Some("'https://gw:a%20b@p.example:8443/prov/<MAC>.ini'".into()),
                Some("'https://cdn.example/fw.cmp'".into())
            )
        );
        let ours = [&BASE[..], &["firmware.url=https://P.example:8443/fw.cmp"]].concat();
        assert_eq!(urls(&ours).1.as_deref(), Some("'https://gw:a%20b@P.example:8443/fw.cmp'"));
        // Digest (the default) keeps them out of the URL.
        assert_eq!(urls(&BASE[..3]).0.as_deref(), Some("'https://p.example:8443/prov/<MAC>.ini'"));
        // A URL that already names a user is the operator's.
        let own = [&BASE[..], &["vendor.IniFileURL='https://x@p.example/a.ini'"]].concat();
        assert_eq!(urls(&own).0.as_deref(), Some("'https://x@p.example/a.ini'"));
    }
}

#[cfg(test)]
mod credential_tests {
    use crate::registry;

    #[test]
    fn only_the_mp11x_gateways_carry_http_credentials() {
        let v = registry().get("audiocodes").unwrap();
        assert_eq!(
            v.http_credential_parameters(v.model("MP-118").unwrap()),
            ["AUPDDigestUsername", "AUPDDigestPassword"]
        );
        assert!(v.http_credential_parameters(v.model("440HD").unwrap()).is_empty());
        let w = registry().get("yealink").unwrap();
        assert_eq!(w.http_credential_parameters(w.model("W60B").unwrap()).len(), 2);
    }
}
