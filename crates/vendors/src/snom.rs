//! Snom desk phones.
//!
//! # Files
//!
//! Snom wiki, "Auto Provisioning" (<https://service.snom.com/display/wiki/Auto+Provisioning>), and
//! wazo `plugins/wazo_snom/common/common.py` (`_dev_specific_filenames`).
//!
//! One XML settings file per phone, `<MAC>.xml` with an upper-case MAC (the name wazo writes).
//! When `setting_server` names no file, the phone asks for `<phoneType>.htm` and
//! `<phoneType>-<MAC>.htm`, e.g. `snomD345.htm` and `snomD345-000413A11FA7.htm`; the PnP answer
//! ([`crate::pnp`]) gives it `{mac}.xml`, which it asks for in lower case. Names are therefore
//! matched ignoring case, and the settings file is also served under `snom<model>-<MAC>.htm`.
//!
//! wazo answers `snom<model>-<MAC>.htm` with a `<setting-files>` indirection listing the absolute
//! URL of `<MAC>.xml`. sipprov serves the settings themselves under that name instead: an
//! indirection needs the server's public base URL, which a rendering does not know (the phone may
//! reach the server through a proxy, a redirect service or PnP), and it costs the phone a second
//! fetch of the same content. The model-wide `snom<model>.htm` (wazo's list of general, model and
//! language files) is not served: no source names a setting it must carry.
//!
//! # Settings
//!
//! The format is `<settings><phone-settings>` with one element per setting, `perm="R"` (read-only
//! for the user) on every element and `idx="N"` on per-account ones. Mapped, because both wazo
//! `plugins/wazo_snom/common/templates/base.tpl` and Gigaset's example of the Snom format
//! (<https://teamwork.gigaset.com/gigawiki/display/GPPPO/Configuration+files>) use the names:
//! `setting_server`, the account settings `user_active`,
//! `user_realname`, `user_name`, `user_pname`, `user_pass`, `user_host`, `user_outbound`, the
//! polling settings `prov_polling_*` (Snom wiki, "Provisioning Polling for desk phones",
//! <https://service.snom.com/display/wiki/Provisioning+Polling+for+desk+phones>) and
//! `checksync_action` (<https://service.snom.com/display/wiki/checksync_action>). `user_outbound` carries the line's
//! port and transport: `host[:port][;transport=...]`. From wazo
//! `wazo-snom/common/templates/base.tpl`: `ntp_server` (`time.ntp_server`) and the admin password
//! as `admin_mode_password` and `http_pass` (the web interface's).
//!
//! `time.zone` is written as wazo's Snom plugin writes a zone (wazo-provd-plugins,
//! `plugins/wazo_snom/common/common.py`, `_format_tzinfo` and `_format_dst_change`): `timezone`
//! empty (Snom's own codes such as `GER+1` come from a table of Snom's, not from the tz
//! database), `utc_offset` the standard offset in signed seconds, and `dst` either empty or
//! `<save seconds> <start> <end>` with each switch as `MM.WW.DD hh:mm:ss` (month, week of the
//! month with 5 for the last, weekday with Monday = 1), all computed from the tz database.
//!
//! # Firmware and resource files
//!
//! `firmware.url` is the setting `firmware` (the image's URL) with `update_policy` `auto_update`,
//! both in the device's settings file, as FusionPBX's Snom templates write them
//! (`snom/D785/{$mac}.xml`, `snom/320/{$mac}.xml`). The other way, `firmware_status` naming an
//! XML file that holds `<firmware>URL</firmware>` (wazo `snom-model-firmware.xml.tpl.btpl`),
//! would need a second generated file and the server's public base URL, and is not used.
//! `wallpaper.url` is `custom_bg_image_url` on the models FusionPBX gives it (`WALLPAPER_MODELS`).
//!
//! Refused when set on a device, because no file setting carries them: `line.N.label`,
//! `ringtone.url`, `language.url`, `directory.url` (the reasons are in the module's `unmapped`
//! table) and `wallpaper.url` on other models.
//!
//! Programmable keys ([`crate::keys`]) become `fkey`, `fkey_label` and `fkey_context` with a
//! 0-based `idx` (see `key_caps` for the sources).
//!
//! # HTTP credentials
//!
//! `http.username` / `http.password` are written as `http_client_user` / `http_client_pass`, the
//! credentials the phone sends with its own HTTP requests, settings fetches included: Tine 2.0
//! writes exactly these two elements into the settings file of each Snom phone it provisions
//! (tine20/tine20 `tine20/Voipmanager/Backend/Snom/Xml.php`, `_appendPhoneSettings`, perm `RO`),
//! having generated them per phone (`tine20/Voipmanager/Controller/Snom/Phone.php`: a 30-character
//! user and a 20-character password, "limit length because of Snom phone limitations"), and then
//! authenticates the phone's requests against them; FusionPBX's Snom 720 settings template lists
//! the same elements (`resources/templates/provision/snom/720/{$mac}.xml`). So the server may
//! generate per-device credentials for Snom phones, at most [`HTTP_PASSWORD_MAX_LEN`] characters
//! long ([`Vendor::http_password_max_len`]).
//! Which HTTP authentication schemes the phone answers is not confirmed (Tine challenges with
//! Basic): where a phone cannot answer the server's Digest challenge, set `http.auth = basic` for
//! its group.
//!
//! # Models
//!
//! Snom desk phones (the model table cites its source). Not accepted, because they are not provisioned
//! the way this module writes: the M300/M400/M700/M900 DECT bases, whose `user_host` is indexed
//! by SIP server rather than by account and whose accounts are tied to handsets by
//! `subscr_sip_ua_data_server_id` and `subscr_sip_hs_idx` (wazo
//! `plugins/wazo_snom/common_dect/templates/base.tpl`). Snom sells no ATA.
//!
//! # Raw parameters
//!
//! `vendor.<name>=<value>` writes `<name perm="R">value</name>`; `vendor.<name>.<N>` writes the
//! element with `idx="N"` (e.g. `vendor.user_dtmf_info.2=sip_info_only`), and replaces a mapped
//! account setting of the same name and index (`vendor.user_host.1=…`). Names must be XML names
//! ([`is_xml_name`]): [`Snom::validate_device`] refuses others on a Snom device, and ones inherited
//! from the global or group settings, meant for another vendor, are left out of the file.

use sipprov_model::tz::Switch;
use sipprov_model::{KeyType, LineField, Mac, Settings};

use crate::directory::{self, Contact, DirectoryFile};
use crate::events::CheckSyncEvents;
use crate::mapping::{self, same, ParamDef, Source};
use crate::pnp::PnpDialect;
use crate::shape::OneXmlFile;
use crate::ua::{self, is_numeric_version};
use crate::{FileScope, FileSpec, ModelInfo, UserAgentInfo, Vendor, VendorParam};

/// The Snom vendor module.
pub struct Snom;

/// The longest HTTP client password a Snom phone is known to keep (see the module doc).
pub const HTTP_PASSWORD_MAX_LEN: usize = 20;

const fn desk(name: &'static str) -> ModelInfo {
    ModelInfo { name, family: "desk", aliases: &[], common_file: None, max_lines: None }
}

/// Desk phones whose settings file wazo-provd-plugins writes from the one template this module
/// follows (`plugins/wazo_snom/common/templates/base.tpl`), listed in its firmware plugins'
/// `MODELS` (`plugins/wazo_snom/v*/entry.py`, e.g. `v10_1_215_13`, `v8_9_3_60`): D1xx, D3xx,
/// D7xx, D8xx, the older 3xx/7xx/8xx, the MeetingPoint `MP` and the PA1 paging amplifier (their
/// `MP.tpl` and `PA1.tpl` include `base.tpl` unchanged, `v8_7_5_35/entry.py`); the User-Agent
/// samples in wazo `plugins/wazo_snom/common/common.py` add the D785, 710, 320 and 720. Left out: the M-series DECT bases (module doc).
static MODELS: &[ModelInfo] = &[
    desk("D120"),
    desk("D140"),
    desk("D150"),
    desk("D305"),
    desk("D315"),
    desk("D335"),
    desk("D345"),
    desk("D375"),
    desk("D385"),
    desk("D712"),
    desk("D713"),
    desk("D717"),
    desk("D735"),
    desk("D745"),
    desk("D765"),
    desk("D785"),
    desk("D810"),
    desk("D812"),
    desk("D815"),
    desk("D862"),
    desk("D865"),
    desk("D892"),
    desk("300"),
    desk("320"),
    desk("370"),
    desk("710"),
    desk("715"),
    desk("720"),
    desk("725"),
    desk("760"),
    desk("820"),
    desk("821"),
    desk("870"),
    desk("MP"),
    desk("PA1"),
];

fn on(_: &str) -> Option<String> {
    Some("on".into())
}

/// Relative polling: every `prov_polling_period` seconds (Snom wiki, "Provisioning Polling for desk
/// phones").
fn rel(_: &str) -> Option<String> {
    Some("rel".into())
}

/// `provisioning.interval_minutes` is validated as a whole number of minutes.
fn seconds(minutes: &str) -> Option<String> {
    minutes.parse::<u64>().ok().map(|m| (m * 60).to_string())
}

/// `checksync_action` (firmware 10.1.180 and later) forces `reboot`, `factory-reset`,
/// `reregister`, `sync` or `delete-contacts` whatever the NOTIFY asks for; empty follows the
/// NOTIFY (https://service.snom.com/display/wiki/checksync_action). By default it is written
/// empty, so `check-sync;reboot=true` reboots and `reboot=false` re-provisions (and a `sync`
/// left by an earlier file is cleared); `sip.notify_reboot = 0` writes `sync`: never reboot.
fn checksync_action(v: &str) -> Option<String> {
    Some(if v == "0" { "sync" } else { "" }.into())
}

const REBOOT_PARAM: &str = "checksync_action";

/// `timezone` empty, so the phone follows `utc_offset` and `dst` instead of a Snom zone code.
fn no_snom_code(zone: &str) -> Option<String> {
    mapping::zone_rules(zone).map(|_| String::new())
}

/// `utc_offset`: the standard offset in seconds, signed (`+3600`, `-18000`).
fn utc_offset(zone: &str) -> Option<String> {
    Some(format!("{:+}", mapping::zone_rules(zone)?.std_offset_seconds))
}

/// `dst`: empty for a zone without daylight saving, else `3600 03.05.07 02:00:00 10.05.07
/// 03:00:00` (saving, start, end; see the module doc).
fn dst_rule(zone: &str) -> Option<String> {
    let rules = mapping::zone_rules(zone)?;
    let Some(dst) = rules.dst else { return Some(String::new()) };
    let switch = |sw: Switch| {
        let t = sw.time_seconds;
        format!(
            "{:02}.{:02}.{:02} {:02}:{:02}:{:02}",
            sw.month,
            sw.week,
            sw.weekday_from_monday1(),
            t / 3600,
            t % 3600 / 60,
            t % 60
        )
    };
    Some(format!("{} {} {}", dst.offset_seconds - rules.std_offset_seconds, switch(dst.start), switch(dst.end)))
}

/// Names from wazo `plugins/wazo_snom/common/templates/base.tpl`. Line rows carry the
/// account number as `.{n}`, turned into `idx="{n}"` by [`Snom::parameters`].
static PARAMS: &[ParamDef] = &[
    ParamDef::device(Source::Key("provisioning.url"), "setting_server", same),
    ParamDef::device(Source::Key("provisioning.interval_minutes"), "prov_polling_enabled", on),
    ParamDef::device(Source::Key("provisioning.interval_minutes"), "prov_polling_mode", rel),
    ParamDef::device(Source::Key("provisioning.interval_minutes"), "prov_polling_period", seconds),
    ParamDef::device(Source::Key("sip.notify_reboot"), REBOOT_PARAM, checksync_action).or("1"),
    ParamDef::device(Source::Key("time.ntp_server"), "ntp_server", same),
    // The firmware image's URL in `firmware`, fetched and installed with `update_policy`
    // `auto_update` (fpbx `snom/D785/{$mac}.xml` and `snom/320/{$mac}.xml`, "Updates").
    ParamDef::device(Source::Key("firmware.url"), "update_policy", auto_update),
    ParamDef::device(Source::Key("firmware.url"), "firmware", same),
    ParamDef::device(Source::Key("time.zone"), "timezone", no_snom_code),
    ParamDef::device(Source::Key("time.zone"), "utc_offset", utc_offset),
    ParamDef::device(Source::Key("time.zone"), "dst", dst_rule),
    ParamDef::device(Source::Key("admin.password"), "admin_mode_password", same),
    ParamDef::device(Source::Key("admin.password"), "http_pass", same),
    // The credentials the phone sends with its own HTTP requests (module doc, "HTTP credentials").
    ParamDef::device(Source::Key("http.username"), "http_client_user", same),
    ParamDef::device(Source::Key("http.password"), "http_client_pass", same),
    ParamDef::device(Source::LineAlways, "user_active.{n}", on),
    ParamDef::device(Source::Line(LineField::DisplayName), "user_realname.{n}", same),
    ParamDef::device(Source::Line(LineField::Username), "user_name.{n}", same),
    ParamDef::device(Source::Line(LineField::AuthUsername), "user_pname.{n}", same),
    ParamDef::device(Source::Line(LineField::Password), "user_pass.{n}", same),
    ParamDef::device(Source::Line(LineField::Registrar), "user_host.{n}", same),
];

/// `auto_update`: install the image `firmware` names without asking.
fn auto_update(_: &str) -> Option<String> {
    Some("auto_update".into())
}

/// The wallpaper: `custom_bg_image_url` (fpbx `snom/<model>/{$mac}.xml`, `snom_wallpaper_url`),
/// on the models whose fpbx template carries it ([`WALLPAPER_MODELS`]).
static WALLPAPER_PARAMS: &[ParamDef] = &[ParamDef::device(Source::Key("wallpaper.url"), "custom_bg_image_url", same)];

/// The models whose fpbx settings template writes `custom_bg_image_url`.
pub const WALLPAPER_MODELS: &[&str] = &["D375", "D385", "D717", "D735", "D765", "D785", "D812", "D815", "D862", "D865"];

/// `user_outbound` in the form `pbx.example.com:5060;transport=udp` (host, port, transport), with the
/// port or the transport left out when the line does not set it; `None` when it sets neither
/// (`user_host` alone says it all) or has no registrar (refused by [`Snom::validate_device`]).
fn outbound(settings: &Settings, n: u32) -> Option<String> {
    let f = |field| mapping::line_value(settings, n, field);
    let (port, transport) = (f(LineField::Port), f(LineField::Transport));
    if port.is_none() && transport.is_none() {
        return None;
    }
    let mut out = f(LineField::Registrar)?;
    if let Some(port) = port {
        out.push_str(&format!(":{port}"));
    }
    if let Some(t) = transport {
        out.push_str(&format!(";transport={t}"));
    }
    Some(out)
}

/// True for a name usable as an XML element name here: an ASCII letter or `_`, then letters,
/// digits, `_`, `-` or `.`.
///
/// ```
/// use sipprov_vendors::snom::is_xml_name;
/// assert!(is_xml_name("user_dtmf_info") && is_xml_name("fkey.3"));
/// assert!(!is_xml_name("1abc") && !is_xml_name("a<b") && !is_xml_name(""));
/// ```
pub fn is_xml_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// Splits `name.N` into the element name and its `idx`.
fn split_idx(name: &str) -> Option<(&str, u32)> {
    let (base, idx) = name.rsplit_once('.')?;
    if base.is_empty() || idx.is_empty() || !idx.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((base, idx.parse().ok()?))
}

/// What a Snom file carries as function keys: `fkey` (0-based `idx`) with `line`, `blf <value>`,
/// `speed <value>` and, on the models wazo gives call-park orbits to, `orbit <value>` (wazo
/// `wazo_snom/common/common.py`, `_add_fkeys`; fusionpbx `app/devices/resources/classes/snom.php`
/// lists the same key words); the label as `fkey_label` and the account as `fkey_context` (the
/// indexed settings behind the `label` and `context` attributes wazo writes; symcon/Snom
/// `SnomDeskphone/module.php` saves `fkey<N>` with `fkey_label<N>`). Key counts and expansion
/// modules are not mapped: no source here gives them per model.
fn key_caps(model: &ModelInfo) -> crate::keys::KeyCaps {
    const WITH_PARK: &[KeyType] = &[KeyType::Line, KeyType::Blf, KeyType::SpeedDial, KeyType::Park];
    // wazo writes `orbit` on the 710, 715, 720, 725, 760 and D765 only.
    let park = matches!(model.name, "710" | "715" | "720" | "725" | "760" | "D765");
    crate::keys::KeyCaps {
        types: if park { WITH_PARK } else { &WITH_PARK[..3] },
        keys: None,
        modules: 0,
        module_keys: None,
        line_on_every_type: true,
    }
}

/// One key's settings, named `name.<idx>` so that [`Snom::parameters`] turns the index into the
/// `idx` attribute as for account settings, and a `vendor.fkey.<idx>` setting replaces them.
fn key_params(key: &crate::keys::ProgKey) -> Vec<VendorParam> {
    let idx = key.pos.index - 1;
    let row = |name: &str, value: String| VendorParam { name: format!("{name}.{idx}"), value, line: None, group: "" };
    let value = key.value.as_deref().unwrap_or_default();
    let function = match key.kind {
        KeyType::Line => "line".to_string(),
        KeyType::Blf => format!("blf {value}"),
        KeyType::SpeedDial => format!("speed {value}"),
        KeyType::Park => format!("orbit {value}"),
    };
    let mut out = vec![row("fkey", function)];
    out.extend(key.line.map(|n| row("fkey_context", n.to_string())));
    out.extend(key.label.clone().map(|l| row("fkey_label", l)));
    out
}

/// Parses `Mozilla/4.0 (compatible; snomD785-SIP 10.1.33.33 2010.12-00004-g9ba52f5 000413922D24 SXM:0 UXM:0)`;
/// firmware downloads may send `snom720 8.7.5.35` with neither `-SIP` nor a MAC (samples in wazo
/// `plugins/wazo_snom/common/common.py`; wazo PR #33 appends `?mac=` to firmware URLs for this).
fn parse(ua: &str) -> Option<(Option<String>, Option<String>, Option<Mac>)> {
    let inner = ua.split_once("(compatible; snom")?.1.trim_end_matches(')');
    let mut tokens = inner.split_whitespace();
    let model = tokens.next()?.trim_end_matches("-SIP");
    let firmware = tokens.next().filter(|v| is_numeric_version(v));
    let mac = tokens.find_map(ua::plain_mac);
    let some = |s: &str| Some(s.to_string()).filter(|s| !s.is_empty());
    Some((some(model), firmware.and_then(some), mac))
}

/// The MAC in `snom<model>-<MAC>.htm` (any case); the model is letters and digits.
fn htm_mac(file_name: &str) -> Option<Mac> {
    let (stem, ext) = file_name.rsplit_once('.')?;
    if !ext.eq_ignore_ascii_case("htm") {
        return None;
    }
    let (phone_type, mac) = stem.split_once('-')?;
    let model = phone_type.get(..4).filter(|p| p.eq_ignore_ascii_case("snom")).and(phone_type.get(4..))?;
    if model.is_empty() || !model.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    ua::plain_mac(mac)
}

/// Snom settings holding secrets, each also as `name.N` (the `idx` form): the account
/// password `user_pass` and the web and admin-mode passwords `http_pass`, `admin_mode_password`,
/// `webserver_admin_password`, `webserver_user_password` (wazo
/// `wazo-snom/common/templates/base.tpl`), `http_basic_pass`, `http_engineer_pass` (wazo
/// `wazo-snom/common_dect/templates/base-new.tpl`), `admin_mode_password_confirm` (its
/// confirmation field, as third-party templates write it), and `http_client_pass` (the phone's own
/// HTTP client password, see the module doc).
pub const SECRET_PARAMS: &[&str] = &[
    "user_pass",
    "http_pass",
    "http_client_pass",
    "http_basic_pass",
    "http_engineer_pass",
    "admin_mode_password",
    "admin_mode_password_confirm",
    "webserver_admin_password",
    "webserver_user_password",
];

/// The default templates, compiled in (an admin overrides them by name, see [`crate::render`]).
static TEMPLATES: &[(&str, &str)] = &[("snom/settings.xml.j2", include_str!("../templates/snom/settings.xml.j2"))];

/// One `<MAC>.xml` per phone, raw names that are XML names.
static SHAPE: OneXmlFile = OneXmlFile {
    vendor: "Snom",
    check_lines: mapping::check_max_lines,
    template: "snom/settings.xml.j2",
    is_raw_name: is_xml_name,
    raw_name_rule: "a Snom setting name must start with a letter or '_' and contain only letters, \
                    digits, '_', '-' and '.'",
    unmapped: &[
        ("line.N.label", "no verified Snom setting for a line label"),
        (
            "ringtone.url",
            "no consulted source gives a setting that downloads a ring tone (ring_sound and \
             internal_ringer_file take the phone's own tones)",
        ),
        (
            "language.url",
            "the phone takes a language by name (language, web_language); no consulted source gives a setting \
             that downloads a language file",
        ),
        (
            "directory.url",
            "a Snom desk phone's directory is the <tbook> section of its settings file (fpbx \
             snom/300/{$mac}.xml), or an XML browser URL on a function key; no consulted source gives a \
             setting that downloads a directory file",
        ),
    ],
};

impl Vendor for Snom {
    /// Snom's XML minibrowser directory: `<SnomIPPhoneDirectory>`, a `<Title>`, then
    /// name-number pairs, one `<DirectoryEntry>` (`<Name>`, `<Telephone>`) per number (Snom's
    /// XML minibrowser reference, "SnomIPPhoneDirectory": "a directory of name-number pairs from
    /// which you can select one to call").
    fn directory(&self, contacts: &[Contact]) -> Option<DirectoryFile> {
        Some(directory::name_telephone("SnomIPPhoneDirectory", Some("Directory"), contacts, true))
    }

    fn id(&self) -> &'static str {
        "snom"
    }

    fn check_sync_events(&self) -> CheckSyncEvents {
        CheckSyncEvents::check_sync("asterisk pjsip_notify.conf.sample snom-check-cfg / snom-reboot")
    }

    fn pnp_dialect(&self) -> PnpDialect {
        // The setting_server URL, `{mac}` expanded by the phone when sipprov does not know it (Snom wiki).
        PnpDialect { path: "{mac}.xml", userinfo: true }
    }

    fn templates(&self) -> &'static [(&'static str, &'static str)] {
        TEMPLATES
    }

    fn secret_params(&self) -> &'static [&'static str] {
        SECRET_PARAMS
    }

    fn http_password_max_len(&self) -> Option<usize> {
        Some(HTTP_PASSWORD_MAX_LEN)
    }

    /// `name.N` is the setting `name` of account `N` (`split_idx`), as secret as `name`.
    fn is_secret_param(&self, name: &str) -> bool {
        let base = split_idx(name).map_or(name, |(base, _)| base);
        SECRET_PARAMS.iter().any(|p| mapping::name_matches(p, base))
    }

    fn display_name(&self) -> &'static str {
        "Snom"
    }

    fn models(&self) -> &'static [ModelInfo] {
        MODELS
    }

    /// Accepts the phone type as the UA and file names spell it (`snomD345`).
    fn model(&self, name: &str) -> Option<&'static ModelInfo> {
        let n = mapping::normalize(name);
        mapping::find_model(MODELS, n.strip_prefix("SNOM").unwrap_or(&n))
    }

    fn parse_user_agent(&self, ua: &str) -> Option<UserAgentInfo> {
        parse(ua::unquote(ua)).map(|parsed| ua::info(self, parsed))
    }

    fn device_files(&self, model: &'static ModelInfo, mac: Mac) -> Vec<FileSpec> {
        SHAPE.device_file(format!("{}.xml", mac.upper()), vec![format!("snom{}-{}.htm", model.name, mac.upper())])
    }

    fn mac_in_file_name(&self, file_name: &str) -> Option<Mac> {
        OneXmlFile::mac_in_file_name(file_name, "").or_else(|| htm_mac(file_name))
    }

    fn model_file(&self, _file_name: &str, _ua_model: Option<&str>) -> Option<(&'static ModelInfo, FileSpec)> {
        // `snom<model>.htm` is not served (see the module documentation).
        None
    }

    /// The table rows, `user_outbound` after each line's `user_host` unless a `vendor.` setting
    /// names it, then `name.N` split into `name` with `line = Some(N)` (the `idx` attribute).
    fn parameters(&self, model: &'static ModelInfo, settings: &Settings, scope: FileScope) -> Vec<VendorParam> {
        let keys = |out: &mut Vec<VendorParam>| {
            if WALLPAPER_MODELS.contains(&model.name) {
                let at = out.iter().position(|p| p.line.is_some()).unwrap_or(out.len());
                out.splice(at..at, mapping::key_rows(WALLPAPER_PARAMS, settings, scope));
            }
            if scope == FileScope::Device {
                out.extend(crate::keys::supported(settings, &key_caps(model)).iter().flat_map(key_params));
            }
        };
        let mut params = mapping::build_with(PARAMS, settings, scope, "", keys);
        if scope == FileScope::Device {
            for n in settings.line_indexes() {
                let name = format!("user_outbound.{n}");
                let Some(value) = outbound(settings, n).filter(|_| !mapping::overridden(settings, &name)) else {
                    continue;
                };
                let host = format!("user_host.{n}");
                let at = params.iter().position(|p| p.name == host).map_or(params.len(), |i| i + 1);
                params.insert(at, VendorParam { name, value, line: Some(n), group: "" });
            }
        }
        for p in &mut params {
            if let Some((base, idx)) = split_idx(&p.name) {
                (p.name, p.line) = (base.to_string(), Some(idx));
            }
        }
        SHAPE.own_params(params)
    }

    /// Refused when the file's `checksync_action` forces anything but following the NOTIFY
    /// (empty) or `reboot`.
    fn reboot_refusal(&self, model: &'static ModelInfo, settings: &Settings) -> Option<String> {
        let params = self.parameters(model, settings, FileScope::Device);
        mapping::reboot_refused_by(&params, settings, REBOOT_PARAM, |v| matches!(v.trim(), "" | "reboot"))
    }

    fn validate_device(&self, model: &'static ModelInfo, settings: &Settings) -> Result<(), crate::Refused> {
        SHAPE.validate_device(model, settings, || {
            crate::keys::check_device(settings, "Snom", model, Ok(key_caps(model)))?;
            if !WALLPAPER_MODELS.contains(&model.name) && mapping::get(settings, "wallpaper.url").is_some() {
                return Err(crate::Refused(format!(
                    "wallpaper.url cannot be provisioned on the Snom {}: no consulted source gives this model \
                     custom_bg_image_url",
                    model.name
                )));
            }
            Ok(mapping::check_server_fields_need_registrar(settings, "Snom")?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values checked against the tz database's rules: the EU switches on the last Sunday of
    /// March at 02:00 and of October at 03:00, the US on the second Sunday of March and the
    /// first of November at 02:00; Japan has no daylight saving.
    #[test]
    fn time_zones_in_snom_form() {
        assert_eq!(utc_offset("Europe/Berlin").as_deref(), Some("+3600"));
        assert_eq!(dst_rule("Europe/Berlin").as_deref(), Some("3600 03.05.07 02:00:00 10.05.07 03:00:00"));
        assert_eq!(utc_offset("America/New_York").as_deref(), Some("-18000"));
        assert_eq!(dst_rule("America/New_York").as_deref(), Some("3600 03.02.07 02:00:00 11.01.07 02:00:00"));
        assert_eq!(utc_offset("Asia/Tokyo").as_deref(), Some("+32400"));
        assert_eq!(dst_rule("Asia/Tokyo").as_deref(), Some(""));
        assert_eq!(no_snom_code("+5").as_deref(), Some(""));
        assert_eq!(utc_offset("+5").as_deref(), Some("+18000"));
    }

    #[test]
    fn every_secret_row_is_declared() {
        assert_eq!(mapping::undeclared_secret_rows(PARAMS, |n| Snom.is_secret_param(n)), Vec::<String>::new());
    }

    #[test]
    fn outbound_carries_port_and_transport_alone_or_together() {
        let s = |items: &[&str]| Settings::parse_assignments(items.iter().copied()).unwrap();
        let host = "line.1.registrar=pbx";
        assert_eq!(outbound(&s(&[host, "line.1.transport=tls"]), 1).as_deref(), Some("pbx;transport=tls"));
        assert_eq!(outbound(&s(&[host, "line.1.port=5062"]), 1).as_deref(), Some("pbx:5062"));
        assert_eq!(
            outbound(&s(&[host, "line.1.port=5061", "line.1.transport=tls"]), 1).as_deref(),
            Some("pbx:5061;transport=tls")
        );
        assert_eq!(outbound(&s(&[host]), 1), None);
    }

    #[test]
    fn index_suffixes() {
        assert_eq!(split_idx("user_host.2"), Some(("user_host", 2)));
        assert_eq!(split_idx("a.b"), None);
        assert_eq!(split_idx(".1"), None);
        assert_eq!(split_idx("user_host"), None);
    }

    #[test]
    fn htm_names() {
        assert!(htm_mac("snomD345-000413A11FA7.htm").is_some());
        assert!(htm_mac("SNOM710-000413741767.HTM").is_some());
        assert!(htm_mac("snom-000413A11FA7.htm").is_none());
        assert!(htm_mac("snomD345.htm").is_none());
        assert!(htm_mac("snomD345-000000000000.htm").is_none());
        assert!(htm_mac("snomD345-000413A11FA7.xml").is_none());
        assert!(htm_mac("snomD3_45-000413A11FA7.htm").is_none());
        assert!(htm_mac("yealink-000413A11FA7.htm").is_none());
    }
}
